//! `VirtualDrive`: create, mount, add and remove mounting points, unmount.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use fsgate_core::{code, threads, Error, Result, Settings};

pub use crate::change::ChangeAction;
use crate::events::Events;
use crate::mounted::Mounted;
use crate::options::Options;

/// An event-driven virtual filesystem: the reference's virtual drive class on FUSE.
///
/// Create it with the application's [`Events`], [`mount`](Self::mount) it on an empty
/// directory, and every process on the machine uses it through ordinary system calls while
/// the events answer. Dropping it unmounts.
pub struct VirtualDrive<E: Events> {
    events: Arc<E>,
    settings: Settings,
    mounted: Mutex<Option<Mounted<E>>>,
}

impl<E: Events> VirtualDrive<E> {
    /// A drive whose requests `events` answer. Nothing is mounted yet.
    pub fn new(events: E, options: Options) -> Self {
        Self {
            events: Arc::new(events),
            settings: options.settings(),
            mounted: Mutex::new(None),
        }
    }

    /// The application's events object.
    pub fn events(&self) -> &Arc<E> {
        &self.events
    }

    /// `config("NAME=VALUE")` sets a setting, `config("NAME")` reads one; names are those of
    /// [`Options`] in the reference's spelling (`FireAllOpenCloseEvents`, `SerializeEvents`,
    /// `MinWorkerThreadCount`, `MaxWorkerThreadCount`, `FuseReaderThreadCount`,
    /// `MetadataCacheTimeout` (ms), `MetadataCacheEnabled`, `MetadataCacheSize`,
    /// `NonExistentFilesCacheEnabled`, `NonExistentFilesCacheSize`, `FileCache` (`System`,
    /// `None`, `UserMode`), `FileCachePolicyWriteThrough`, `UserModeFileCacheSize` (bytes),
    /// `UseFileIds`, `UseHardLinks`, `ReadOnly`, `SectorSize`,
    /// `DefaultPermissions`, read-only `BuildInfo`, `LicenseInfo`). Values take effect at the
    /// next [`mount`](Self::mount).
    pub fn config(&self, text: &str) -> Result<String> {
        let before = self.settings.config(text.split('=').next().unwrap_or(text));
        let answer = self.settings.config(text)?;
        if let (Err(e), Ok(old)) = (Options::from_settings(&self.settings), before) {
            // A value the table took but the options refuse (an unknown `FileCache` name).
            let name = text.split('=').next().unwrap_or(text);
            self.settings.config(&format!("{name}={old}"))?;
            return Err(e);
        }
        Ok(answer)
    }

    /// How routed handles (`route_to_file`) are served on the mounted drive: by the kernel
    /// (passthrough) or by the library; `ERROR_NOT_READY` (21) when not mounted.
    pub fn route_mode(&self) -> Result<crate::route::RouteMode> {
        self.with_mounted("route_mode", |m| Ok(m.route_mode()))
    }

    /// How the kernel's requests reach the mounted drive: io_uring or `/dev/fuse`, and why
    /// not io_uring; `ERROR_NOT_READY` (21) when not mounted.
    pub fn transport(&self) -> Result<crate::transport::Transport> {
        self.with_mounted("transport", |m| Ok(m.transport()))
    }

    /// `fire_all_open_close_events` (see [`Options`]); takes effect at the next mount.
    pub fn set_fire_all_open_close_events(&self, value: bool) -> Result<()> {
        self.settings.set(
            crate::options::names::FIRE_ALL,
            fsgate_core::settings::Value::Bool(value),
        )
    }

    /// `serialize_events` (see [`Options`]); takes effect at the next mount.
    pub fn set_serialize_events(&self, value: bool) -> Result<()> {
        self.settings.set(
            crate::options::names::SERIALIZE,
            fsgate_core::settings::Value::Bool(value),
        )
    }

    /// Mounts the drive at `mounting_point`, which must be an existing empty directory,
    /// and starts serving. `timeout_ms` bounds every event: 0 (none) or ≥ 3000, otherwise
    /// `ERROR_IMPLEMENTATION_LIMIT` (1292); a request whose handler outlives it fails with
    /// `EIO` and the handler's late result is ignored.
    ///
    /// Fires `on_get_volume_label`, `on_get_volume_id` and then `on_mount` (a failing
    /// `on_mount` unmounts again and is returned). Returns once the kernel has accepted the
    /// mount, so processes can use it at once. Errors: already mounted
    /// (`ERROR_CONNECTION_ACTIVE`, 1230); a missing path (`ENOENT`), not a directory
    /// (`ENOTDIR`) or a non-empty directory (`ENOTEMPTY`), each naming the path; no FUSE
    /// (`/dev/fuse` missing: `ERROR_FS_DRIVER_REQUIRED`, 588).
    ///
    /// If the process dies without unmounting, the mount goes away by itself: as root the
    /// library mounts with `mount(2)` and starts a small watcher process that unmounts when
    /// this process is gone, once it has checked that the path still holds this very mount.
    /// A mount taken off its path from outside (`umount -l`) is never looked for there
    /// again: neither stopping the drive nor its watcher unmounts a mount made on the path
    /// since (on kernels before 6.8, which give mounts no identity of their own, the watcher
    /// can take such a mount for its own when it got the same device number).
    pub fn mount(&self, mounting_point: impl AsRef<Path>, timeout_ms: u32) -> Result<()> {
        let mut slot = self.lock()?;
        if slot.is_some() {
            return Err(Error::from_code(
                code::ERROR_CONNECTION_ACTIVE,
                "mount: the drive is already mounted; unmount it first",
            ));
        }
        let options = Options::from_settings(&self.settings)?;
        // The FUSE readers, the dispatcher's workers and the watchers all start from here
        // and inherit the mask: the application's signals stay the application's.
        let mounted = threads::with_application_signals_blocked(|| {
            Mounted::start(
                Arc::clone(&self.events),
                options,
                mounting_point.as_ref(),
                timeout_ms,
            )
        })?;
        *slot = Some(mounted);
        Ok(())
    }

    /// [`unmount`](Self::unmount), then, if requests are still waiting for their handlers
    /// `grace` later (a handler blocked with no timeout), ends the drive's FUSE connection
    /// so that nobody stays blocked: those callers fail at once with `ECONNABORTED`, and
    /// every later request on files still open under the detached mount with `ENOTCONN` (with plain
    /// `unmount` they would keep being served until closed). The blocked handlers run on;
    /// their results are dropped. Ending the connection needs root (it writes to
    /// `/sys/fs/fuse/connections/N/abort`, and mounts that control filesystem when it is
    /// missing, leaving it mounted); a failure to do so is returned after the unmount.
    pub fn unmount_releasing(&self, grace: std::time::Duration) -> Result<()> {
        let taken = self.lock()?.take();
        match taken {
            Some(m) => m.stop_releasing(grace),
            None => Ok(()),
        }
    }

    /// Whether the drive is mounted and serving (false after [`unmount`](Self::unmount) or
    /// once the kernel has dropped the connection, e.g. after an external `umount`).
    pub fn active(&self) -> bool {
        self.lock()
            .map(|m| m.as_ref().is_some_and(Mounted::serving))
            .unwrap_or(false)
    }

    /// The primary mounting point and then the extra ones, in the order they were added.
    pub fn mounting_points(&self) -> Vec<PathBuf> {
        self.lock()
            .map(|m| m.as_ref().map(Mounted::mounting_points).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Makes the mounted drive also visible at `mounting_point` (an existing empty
    /// directory), as a bind mount of the same mount: both show the same files and fire the
    /// same events. Errors as for [`mount`](Self::mount); `ERROR_NOT_READY` (21) when not
    /// mounted.
    pub fn add_mounting_point(&self, mounting_point: impl AsRef<Path>) -> Result<()> {
        self.with_mounted("add_mounting_point", |m| {
            m.add_mounting_point(mounting_point.as_ref())
        })
    }

    /// Removes a mounting point added with [`add_mounting_point`](Self::add_mounting_point)
    /// (lazily: processes with files open under it keep them). The primary mounting point
    /// goes only with [`unmount`](Self::unmount); naming it or an unknown path is
    /// `ERROR_INVALID_PARAMETER` naming the path.
    pub fn delete_mounting_point(&self, mounting_point: impl AsRef<Path>) -> Result<()> {
        self.with_mounted("delete_mounting_point", |m| {
            m.delete_mounting_point(mounting_point.as_ref())
        })
    }

    /// The volume id `on_get_volume_id` reported at mount; `ERROR_NOT_READY` when not
    /// mounted.
    pub fn volume_id(&self) -> Result<u32> {
        self.with_mounted("volume_id", |m| Ok(m.volume_id()))
    }

    /// Unmounts every mounting point and stops serving: fires `on_unmount`, detaches the
    /// mounts (lazily: processes inside them see `ENOTCONN` from then on), waits for
    /// running events to finish (those past their timeout are abandoned), and drops every
    /// context left. Doing it when not mounted is a no-op. Dropping the drive does the same.
    pub fn unmount(&self) -> Result<()> {
        let taken = self.lock()?.take();
        match taken {
            Some(m) => m.stop(),
            None => Ok(()),
        }
    }

    /// Tells the kernel that `file_name` (a full path in the drive) was added, removed or
    /// modified behind its back, so it forgets what it cached about the name (including a
    /// negative entry) and, for a modification, the object's attributes and data (kernel
    /// pages and the user-mode cache). Nothing happens for names the kernel never looked
    /// up. Outside event handlers the kernel has forgotten when this returns; inside one the
    /// invalidation is sent from another thread and this returns at once (the kernel may be
    /// holding the directory for the very request being answered).
    pub fn notify_directory_change(
        &self,
        file_name: impl AsRef<Path>,
        action: ChangeAction,
    ) -> Result<()> {
        self.with_mounted("notify_directory_change", |m| {
            m.notify_directory_change(file_name.as_ref(), action)
        })
    }

    /// Tells the kernel that the data or attributes of `file_name` changed behind its back,
    /// so cached pages and attributes are dropped. A no-op for files the kernel does not know.
    pub fn notify_file_change(&self, file_name: impl AsRef<Path>) -> Result<()> {
        self.with_mounted("notify_file_change", |m| {
            m.notify_file_change(file_name.as_ref())
        })
    }

    /// `get_originator_process_id`; see [`crate::originator`].
    pub fn get_originator_process_id(&self) -> Result<u32> {
        crate::originator::get_originator_process_id()
    }

    /// `get_originator_process_name`; see [`crate::originator`].
    pub fn get_originator_process_name(&self) -> Result<String> {
        crate::originator::get_originator_process_name()
    }

    /// `get_originator_token`; see [`crate::originator`].
    pub fn get_originator_token(&self) -> Result<fsgate_core::originator::Credentials> {
        crate::originator::get_originator_token()
    }

    /// `reset_timeout`: inside an event, restarts its deadline at `ms` from now (0: none);
    /// elsewhere error 614.
    pub fn reset_timeout(&self, ms: u32) -> Result<()> {
        fsgate_core::dispatch::reset_timeout(ms)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Option<Mounted<E>>>> {
        self.mounted
            .lock()
            .map_err(|_| Error::from_code(code::ERROR_INTERNAL_ERROR, "drive state poisoned"))
    }

    fn with_mounted<T>(
        &self,
        method: &str,
        f: impl FnOnce(&mut Mounted<E>) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.lock()?;
        match slot.as_mut() {
            Some(m) => f(m),
            None => Err(Error::not_ready(format!(
                "{method}: the drive is not mounted"
            ))),
        }
    }
}

impl<E: Events> Drop for VirtualDrive<E> {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            tracing::warn!("unmounting on drop: {e}");
        }
    }
}
