//! [`DirectAccess`]: the reference's direct access class.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use fsgate_core::shutdown::{self, Executor, Request, System};
use fsgate_core::{Error, Result, Settings};
use fsgate_registry::Installation;

use crate::error::{ErrorEventParams, ErrorHook};
use crate::file::{self, FileHolder};
use crate::flags::wants_write;
use crate::memory::MemoryHandle;
use crate::stream::DirectStream;
use crate::volume::{VolumeHandle, VolumeInfo};

/// Direct access to disks, volumes, image files, files and physical memory.
///
/// Call [`initialize`](Self::initialize) first: until it succeeds, every method except the
/// installation ones (`install`, `uninstall`, `get_driver_status`, `get_driver_version`,
/// `shutdown_system`) fails with `ERROR_NOT_READY` (21). Handles and streams, once opened,
/// stay usable on their own.
///
/// `install` and `uninstall` need the package installer and exist only with this crate's
/// `installer` feature; the rest reads the installation through `fsgate-registry`.
pub struct DirectAccess {
    installation: Installation,
    initialized: AtomicBool,
    tag: AtomicI64,
    settings: Settings,
    on_error: Mutex<Option<ErrorHook>>,
}

impl Default for DirectAccess {
    fn default() -> Self {
        Self::new()
    }
}

impl DirectAccess {
    /// A class instance whose installation methods work on this machine
    /// ([`Installation::system`]: `/`, or `$FSGATE_ROOT`).
    pub fn new() -> Self {
        Self::with_installer(Installation::system())
    }

    /// A class instance whose installation methods and [`initialize`](Self::initialize) use
    /// the installation under another root (for example an image being built); takes an
    /// [`Installation`] or an `fsgate_install::Installer`.
    pub fn with_installer(installation: impl Into<Installation>) -> Self {
        Self {
            installation: installation.into(),
            initialized: AtomicBool::new(false),
            tag: AtomicI64::new(0),
            settings: Settings::new().with_build_info(),
            on_error: Mutex::new(None),
        }
    }

    /// Initializes the class: checks that fsgate was installed for `product_guid` (registry
    /// format, `{XXXXXXXX-…}`) in this instance's installation. `ERROR_FILE_NOT_FOUND` (2) when it
    /// was not, `ERROR_INVALID_KERNEL_INFO_VERSION` (340) when the installed version is older
    /// than this library.
    pub fn initialize(&self, product_guid: &str) -> Result<()> {
        self.check_installed(&self.installation, product_guid)
    }

    /// [`initialize`](Self::initialize) against another installation root (an
    /// [`Installation`] or an `fsgate_install::Installer`).
    pub fn initialize_with(
        &self,
        installation: impl Into<Installation>,
        product_guid: &str,
    ) -> Result<()> {
        self.check_installed(&installation.into(), product_guid)
    }

    fn check_installed(&self, installation: &Installation, product_guid: &str) -> Result<()> {
        installation
            .verify_installed(product_guid)
            .map_err(|e| e.context("initialize"))?;
        self.initialized.store(true, Ordering::Release);
        Ok(())
    }

    /// Installs (or upgrades) fsgate's system files from `cab_file_name` (fsgate's package);
    /// returns whether a reboot is needed. See `fsgate_install::Installer::install`.
    #[cfg(feature = "installer")]
    pub fn install(
        &self,
        cab_file_name: &str,
        product_guid: &str,
        path_to_install: &str,
        flags: u32,
    ) -> Result<bool> {
        fsgate_install::Installer::new(self.installation.root()).install(
            std::path::Path::new(cab_file_name),
            product_guid,
            path_to_install,
            flags,
        )
    }

    /// Removes `product_guid`'s installation; returns whether a reboot is needed.
    #[cfg(feature = "installer")]
    pub fn uninstall(
        &self,
        cab_file_name: &str,
        product_guid: &str,
        installed_path: &str,
        flags: u32,
    ) -> Result<bool> {
        fsgate_install::Installer::new(self.installation.root()).uninstall(
            std::path::Path::new(cab_file_name),
            product_guid,
            installed_path,
            flags,
        )
    }

    /// `MODULE_STATUS_NOT_PRESENT` (0), `MODULE_STATUS_STOPPED` (1) or
    /// `MODULE_STATUS_RUNNING` (4).
    pub fn get_driver_status(&self, product_guid: &str) -> Result<u32> {
        self.installation.get_driver_status(product_guid)
    }

    /// The installed version as four 16-bit parts in 64 bits; 0 when not installed.
    pub fn get_driver_version(&self, product_guid: &str) -> Result<u64> {
        self.installation.get_driver_version(product_guid)
    }

    /// Application-defined data.
    pub fn tag(&self) -> i64 {
        self.tag.load(Ordering::Relaxed)
    }

    /// Sets the application-defined data.
    pub fn set_tag(&self, value: i64) {
        self.tag.store(value, Ordering::Relaxed);
    }

    /// `config("NAME")` reads and `config("NAME=VALUE")` sets a setting: this class has
    /// `BuildInfo` and `LicenseInfo`, both read-only.
    pub fn config(&self, configuration_string: &str) -> Result<String> {
        self.settings.config(configuration_string)
    }

    /// Sets the `on_error` handler. The class fires no other events, so the only errors with
    /// no caller to return to are flushes that fail while a writable volume or volume stream
    /// is dropped; they fire here.
    pub fn set_on_error(&self, handler: impl Fn(&ErrorEventParams) + Send + Sync + 'static) {
        if let Ok(mut hook) = self.on_error.lock() {
            *hook = Some(Arc::new(handler));
        }
    }

    /// Opens a volume: a block device (`/dev/sdX`, `/dev/loopN`, `/dev/disk/by-…/…`,
    /// `/dev/mapper/…`) or a disk image file.
    ///
    /// `desired_access` with any write right (`GENERIC_WRITE`, …) opens read-write, otherwise
    /// read-only. The volume is locked: a block device is opened `O_EXCL | O_DIRECT`, which
    /// fails with `ERROR_BUSY` (170, `EBUSY`) and a message naming the mount points while the
    /// device or one of its partitions is mounted. With `force_unmount`, those mounts (as this
    /// thread's mount namespace sees them) are unmounted first — lazily (`MNT_DETACH`) when a
    /// mount is busy, in which case the device stays claimed until its last open file closes
    /// and the open still fails, saying so. An image file takes an exclusive `flock`.
    /// Permission errors are `ERROR_PRIVILEGE_NOT_HELD` (1314) naming the capability.
    pub fn open_volume(
        &self,
        volume_name: &str,
        desired_access: u32,
        force_unmount: bool,
    ) -> Result<VolumeHandle> {
        self.ready("open_volume")?;
        VolumeHandle::open(volume_name, desired_access, force_unmount, self.hook())
    }

    /// Describes a volume without locking it (an addition to the reference, for
    /// `fsgate disk info`): geometry, the mount points of the device and its partitions as this
    /// thread's mount namespace sees them, and the sysfs model.
    pub fn get_volume_info(&self, volume_name: &str) -> Result<VolumeInfo> {
        self.ready("get_volume_info")?;
        VolumeInfo::query(volume_name)
    }

    /// [`open_volume`](Self::open_volume) as a [`DirectStream`].
    pub fn open_volume_as_stream(
        &self,
        volume_name: &str,
        desired_access: u32,
        force_unmount: bool,
    ) -> Result<DirectStream> {
        self.open_volume(volume_name, desired_access, force_unmount)
            .map(DirectStream::volume)
    }

    /// The number of whole sectors on the volume.
    pub fn get_sector_count(&self, volume_handle: &VolumeHandle) -> Result<u64> {
        self.ready("get_sector_count")?;
        Ok(volume_handle.sector_count())
    }

    /// The logical sector size in bytes (see [`VolumeHandle::sector_size`]).
    pub fn get_sector_size(&self, volume_handle: &VolumeHandle) -> Result<u32> {
        self.ready("get_sector_size")?;
        Ok(volume_handle.sector_size())
    }

    /// The physical sector size in bytes (see [`VolumeHandle::physical_sector_size`]).
    pub fn get_physical_sector_size(&self, volume_handle: &VolumeHandle) -> Result<u32> {
        self.ready("get_physical_sector_size")?;
        Ok(volume_handle.physical_sector_size())
    }

    /// Reads `sector_count` sectors from `starting_sector` into `buffer` (at least
    /// `sector_count * sector_size` bytes, else `ERROR_INSUFFICIENT_BUFFER` (122)); a span
    /// past the end is `ERROR_INVALID_PARAMETER` (87) naming `starting_sector`. Transfers use
    /// `O_DIRECT`; short transfers are retried.
    pub fn read_sectors(
        &self,
        volume_handle: &VolumeHandle,
        starting_sector: u64,
        sector_count: u64,
        buffer: &mut [u8],
    ) -> Result<()> {
        self.ready("read_sectors")?;
        volume_handle.read_sectors(starting_sector, sector_count, buffer)
    }

    /// Writes `sector_count` sectors from `buffer` at `starting_sector`; the same checks as
    /// [`read_sectors`](Self::read_sectors), and `ERROR_ACCESS_DENIED` (5) on a volume opened
    /// read-only.
    pub fn write_sectors(
        &self,
        volume_handle: &VolumeHandle,
        starting_sector: u64,
        sector_count: u64,
        buffer: &[u8],
    ) -> Result<()> {
        self.ready("write_sectors")?;
        volume_handle.write_sectors(starting_sector, sector_count, buffer)
    }

    /// Creates or opens a file or (with `FILE_FLAG_BACKUP_SEMANTICS`) a directory.
    ///
    /// Linux meaning of the arguments (constants in [`crate::flags`]):
    /// - `desired_access`: any write right opens `O_RDWR` (`FILE_APPEND_DATA` alone:
    ///   `O_RDWR | O_APPEND`), otherwise `O_RDONLY`;
    /// - `creation_disposition`: `CREATE_NEW` → `O_CREAT | O_EXCL` (`ERROR_FILE_EXISTS` (80)
    ///   if present), `CREATE_ALWAYS` → `O_CREAT | O_TRUNC`, `OPEN_EXISTING` → plain open
    ///   (`ERROR_FILE_NOT_FOUND` (2) if absent), `OPEN_ALWAYS` → `O_CREAT`,
    ///   `TRUNCATE_EXISTING` → `O_TRUNC` (needs write access);
    /// - `flags_and_attributes`: `FILE_FLAG_NO_BUFFERING` → `O_DIRECT`,
    ///   `FILE_FLAG_WRITE_THROUGH` → `O_DSYNC`, `FILE_FLAG_OPEN_REPARSE_POINT` →
    ///   `O_NOFOLLOW`, the access-pattern flags → `posix_fadvise`, `FILE_ATTRIBUTE_READONLY`
    ///   → mode 0444 for a new file (0644 otherwise, less the umask); the other known bits
    ///   are accepted and ignored, unknown bits are `ERROR_INVALID_PARAMETER` (87).
    ///
    /// What goes past an ordinary open: the file is opened `O_NOATIME` (reads leave no
    /// access-time trace) when the caller owns it or holds `CAP_FOWNER`; when the ordinary
    /// open fails with `EACCES`, the file is opened by handle (`name_to_handle_at` +
    /// `open_by_handle_at`, which needs `CAP_DAC_READ_SEARCH` and checks no directory on the
    /// way). Linux always checks the file's own mode against the access asked for: writing a
    /// file the mode forbids needs `CAP_DAC_OVERRIDE`, and its absence is
    /// `ERROR_PRIVILEGE_NOT_HELD` (1314). Linux has no share modes, so a file another
    /// process has open is never "locked" against this open.
    pub fn create_file(
        &self,
        file_name: &str,
        desired_access: u32,
        creation_disposition: u32,
        flags_and_attributes: u32,
    ) -> Result<File> {
        self.ready("create_file")?;
        file::create_file(
            file_name,
            desired_access,
            creation_disposition,
            flags_and_attributes,
        )
    }

    /// [`create_file`](Self::create_file) as a [`DirectStream`].
    pub fn create_file_as_stream(
        &self,
        file_name: &str,
        desired_access: u32,
        creation_disposition: u32,
        flags_and_attributes: u32,
    ) -> Result<DirectStream> {
        let file = self.create_file(
            file_name,
            desired_access,
            creation_disposition,
            flags_and_attributes,
        )?;
        Ok(DirectStream::file(file, wants_write(desired_access)))
    }

    /// Deletes `file_name` (not a directory).
    ///
    /// Linux removes a name even while processes have the file open: they keep reading and
    /// writing the now nameless file until they close it, and its space is freed then. Linux
    /// offers no way to close another process's descriptors, so `close_open_handles` cannot
    /// invalidate them; instead it makes this method return every holder (`process_id`,
    /// `fd`, found by scanning `/proc/*/fd` before the deletion) so the caller can act on them
    /// (for example signal those processes). Without it the list is empty. Memory mappings
    /// are not reported.
    pub fn delete_file(
        &self,
        file_name: &str,
        close_open_handles: bool,
    ) -> Result<Vec<FileHolder>> {
        self.ready("delete_file")?;
        file::delete_file(file_name, close_open_handles)
    }

    /// Opens physical memory read-only (see [`crate::memory`] for the kernel doors and their
    /// errors).
    pub fn open_memory(&self) -> Result<MemoryHandle> {
        self.ready("open_memory")?;
        MemoryHandle::open()
    }

    /// [`open_memory`](Self::open_memory) as a read-only [`DirectStream`] whose position is
    /// the physical address.
    pub fn open_memory_as_stream(&self) -> Result<DirectStream> {
        self.open_memory().map(DirectStream::memory)
    }

    /// Shuts down or (with `reboot`) reboots the system through systemd's `shutdown` (message
    /// `shutdown_prompt`, delay `timeout` seconds rounded up to whole minutes) or, without
    /// systemd, `reboot(2)`. `Ok(false)` when the process lacks `CAP_SYS_BOOT`.
    /// `force_close_apps` is what Linux always does. See [`fsgate_core::shutdown`].
    pub fn shutdown_system(
        &self,
        shutdown_prompt: &str,
        timeout: u32,
        force_close_apps: bool,
        reboot: bool,
    ) -> Result<bool> {
        self.shutdown_system_with(&System, shutdown_prompt, timeout, force_close_apps, reboot)
    }

    /// [`shutdown_system`](Self::shutdown_system) carried out by `executor` (tests record the
    /// decision instead of running it).
    pub fn shutdown_system_with(
        &self,
        executor: &dyn Executor,
        shutdown_prompt: &str,
        timeout: u32,
        force_close_apps: bool,
        reboot: bool,
    ) -> Result<bool> {
        let request = Request {
            shutdown_prompt: shutdown_prompt.to_string(),
            timeout,
            force_close_apps,
            reboot,
        };
        shutdown::shutdown_system(&request, executor)
    }

    fn ready(&self, method: &str) -> Result<()> {
        if self.initialized.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Error::not_ready(format!(
                "{method}: the class is not initialized (call initialize(product_guid) first)"
            )))
        }
    }

    fn hook(&self) -> Option<ErrorHook> {
        self.on_error.lock().ok().and_then(|h| h.clone())
    }
}
