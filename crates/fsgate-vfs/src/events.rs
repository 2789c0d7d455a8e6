//! The events trait a virtual drive implements.
//!
//! Every method takes `&self` (events for different files run in parallel on the
//! dispatcher's workers) and a `&mut` parameter struct, and returns
//! `fsgate_core::Result<()>`. `Err(e)` fails the caller's system call with `e.errno()`:
//! `Error::from_code(code::ERROR_ACCESS_DENIED, …)` → `EACCES`,
//! `ERROR_FILE_NOT_FOUND` → `ENOENT`, `ERROR_ALREADY_EXISTS` → `EEXIST`,
//! `ERROR_DIR_NOT_EMPTY` → `ENOTEMPTY`, or any `Error::from_errno(libc::E…)`. A handler
//! that panics fails the request with `EIO` and fires `on_error`; a handler that outlives
//! the mount's timeout fails it with `EIO` and its late result is dropped.
//!
//! Each default method does what the reference says happens when the event is not handled;
//! its doc says what the caller sees then.
//!
//! Events that create or change a name — `on_create_file`, `on_create_symbolic_link`,
//! `on_create_hard_link`, `on_set_file_size`, `on_set_file_attributes`,
//! `on_set_file_security` — have an output `info` with an `info_filled` flag, as the
//! reference's create fills the file info: a handler that fills it answers the kernel's
//! request itself; one that does not makes the library fire `on_get_file_info` after it.

use fsgate_core::dispatch::Hooks;
use fsgate_core::{code, Error, Result};

use crate::params::*;

/// `ERROR_NOT_SUPPORTED` (`EOPNOTSUPP`) naming the event a drive did not implement.
fn not_supported(event: &str) -> Error {
    Error::from_code(
        code::ERROR_NOT_SUPPORTED,
        format!("{event} is not handled by this drive"),
    )
}

/// A virtual drive's behaviour: the reference's events.
///
/// The hooks every class shares — `on_error` (a handler panicked or the library hit an
/// error it cannot report to a caller; unhandled, it is logged through `tracing`) and worker
/// thread creation and termination — come from [`Hooks`], which a drive implements too (an
/// empty `impl Hooks for MyDrive {}` keeps the defaults).
///
/// Contexts are typed and built by the drive: `on_create_file` and `on_open_file` store
/// the file's and the handle's in their params' slots, `on_enumerate_directory` stores the
/// listing's at its first call; the library drops each just after its last event (see the
/// crate docs for the table), and one stored by an event that fails at once. A slot left
/// empty is `None` in later events. Put `Arc`s, open backend handles or listing cursors in
/// them; their `Drop` is the cleanup.
pub trait Events: Hooks + Send + Sync + 'static {
    /// Per open file or directory: stored by its first open, dropped after its last close.
    type FileContext: Send + Sync + 'static;
    /// Per handle (each `open`/`opendir` that fires an open event): dropped after its
    /// `on_close_file`.
    type HandleContext: Send + Sync + 'static;
    /// Per directory listing: dropped after its `on_close_directory_enumeration`.
    type EnumerationContext: Send + Sync + 'static;

    /// The drive was mounted; fires before any other event. Failing it fails `mount`.
    fn on_mount(&self, _p: &mut MountParams) -> Result<()> {
        Ok(())
    }

    /// The drive is being unmounted; no event fires after it. Its result is only logged.
    fn on_unmount(&self, _p: &mut UnmountParams) -> Result<()> {
        Ok(())
    }

    /// `statfs`. Unhandled: a volume of 0 sectors, 0 free.
    fn on_get_volume_size(&self, _p: &mut GetVolumeSizeParams) -> Result<()> {
        Ok(())
    }

    /// Fires once at mount. Unhandled: the source name is `fsgate`.
    fn on_get_volume_label(&self, _p: &mut GetVolumeLabelParams) -> Result<()> {
        Ok(())
    }

    /// Fires once at mount. Unhandled: volume id 0.
    fn on_get_volume_id(&self, _p: &mut GetVolumeIdParams) -> Result<()> {
        Ok(())
    }

    /// A file or directory is created. Unhandled: `EOPNOTSUPP` (nothing can be created).
    fn on_create_file(
        &self,
        _p: &mut CreateFileParams<'_, Self::FileContext, Self::HandleContext>,
    ) -> Result<()> {
        Err(not_supported("on_create_file"))
    }

    /// An existing file or directory is opened. Unhandled: the open succeeds.
    fn on_open_file(
        &self,
        _p: &mut OpenFileParams<'_, Self::FileContext, Self::HandleContext>,
    ) -> Result<()> {
        Ok(())
    }

    /// A descriptor was closed. Unhandled: nothing happens. The result is ignored by the
    /// kernel for most callers (`close` reports it, but the descriptor is gone either way).
    /// A drive that leaves this unhandled should also turn off
    /// [`Options::fire_cleanup_events`](crate::Options::fire_cleanup_events): each close is
    /// then one kernel round trip cheaper.
    fn on_cleanup_file(
        &self,
        _p: &mut CleanupFileParams<'_, Self::FileContext, Self::HandleContext>,
    ) -> Result<()> {
        Ok(())
    }

    /// A handle was released. Unhandled: nothing happens. The result is only logged (the
    /// kernel does not wait for releases).
    fn on_close_file(
        &self,
        _p: &mut CloseFileParams<'_, Self::FileContext, Self::HandleContext>,
    ) -> Result<()> {
        Ok(())
    }

    /// Lookup and `stat`. Unhandled: only `/` exists.
    fn on_get_file_info(&self, _p: &mut GetFileInfoParams<'_, Self::FileContext>) -> Result<()> {
        Ok(())
    }

    /// One entry of a listing. Unhandled: every directory is empty.
    fn on_enumerate_directory(
        &self,
        _p: &mut EnumerateDirectoryParams<
            '_,
            Self::FileContext,
            Self::HandleContext,
            Self::EnumerationContext,
        >,
    ) -> Result<()> {
        Ok(())
    }

    /// A listing ended. Unhandled: nothing happens; the result is only logged.
    fn on_close_directory_enumeration(
        &self,
        _p: &mut CloseDirectoryEnumerationParams<'_, Self::FileContext, Self::EnumerationContext>,
    ) -> Result<()> {
        Ok(())
    }

    /// Read data. Unhandled: `EOPNOTSUPP`.
    fn on_read_file(
        &self,
        _p: &mut ReadFileParams<'_, Self::FileContext, Self::HandleContext>,
    ) -> Result<()> {
        Err(not_supported("on_read_file"))
    }

    /// Write data. Unhandled: `EOPNOTSUPP`.
    fn on_write_file(
        &self,
        _p: &mut WriteFileParams<'_, Self::FileContext, Self::HandleContext>,
    ) -> Result<()> {
        Err(not_supported("on_write_file"))
    }

    /// Change the size. Unhandled: `EOPNOTSUPP` (so `open(O_TRUNC)` of a non-empty file
    /// fails too).
    fn on_set_file_size(&self, _p: &mut SetFileSizeParams<'_, Self::FileContext>) -> Result<()> {
        Err(not_supported("on_set_file_size"))
    }

    /// Reserve space. Unhandled: `EOPNOTSUPP` (`posix_fallocate` then falls back to
    /// writing zeros).
    fn on_set_allocation_size(
        &self,
        _p: &mut SetAllocationSizeParams<'_, Self::FileContext>,
    ) -> Result<()> {
        Err(not_supported("on_set_allocation_size"))
    }

    /// Zero a range, giving its space back or not (`fallocate` with
    /// `FALLOC_FL_PUNCH_HOLE` or `FALLOC_FL_ZERO_RANGE`). Unhandled: `EOPNOTSUPP`, which
    /// callers such as `fallocate --punch-hole` report as unsupported.
    fn on_zeroize_file_range(
        &self,
        _p: &mut ZeroizeFileRangeParams<'_, Self::FileContext>,
    ) -> Result<()> {
        Err(not_supported("on_zeroize_file_range"))
    }

    /// Copy bytes between open files of the drive (`copy_file_range(2)`). Unhandled:
    /// `ENOSYS`, which tells the kernel to copy with reads and writes from then on (the
    /// caller sees a working copy either way).
    fn on_copy_file_range(
        &self,
        _p: &mut CopyFileRangeParams<'_, Self::FileContext, Self::HandleContext>,
    ) -> Result<()> {
        Err(Error::from_errno(
            libc::ENOSYS,
            "on_copy_file_range is not handled by this drive",
        ))
    }

    /// Change mode bits or times. Unhandled: `EOPNOTSUPP`.
    fn on_set_file_attributes(
        &self,
        _p: &mut SetFileAttributesParams<'_, Self::FileContext>,
    ) -> Result<()> {
        Err(not_supported("on_set_file_attributes"))
    }

    /// Change owner or group. Unhandled: `EOPNOTSUPP`.
    fn on_set_file_security(
        &self,
        _p: &mut SetFileSecurityParams<'_, Self::FileContext>,
    ) -> Result<()> {
        Err(not_supported("on_set_file_security"))
    }

    /// Rename or move. Unhandled: `EOPNOTSUPP`.
    fn on_rename_or_move_file(
        &self,
        _p: &mut RenameOrMoveFileParams<'_, Self::FileContext>,
    ) -> Result<()> {
        Err(not_supported("on_rename_or_move_file"))
    }

    /// Two names trade places (`renameat2` with `RENAME_EXCHANGE`). Unhandled: `EINVAL`,
    /// what `renameat2(2)` reports on filesystems without exchanges.
    fn on_exchange_files(&self, _p: &mut ExchangeFilesParams<'_>) -> Result<()> {
        Err(Error::from_errno(
            libc::EINVAL,
            "on_exchange_files is not handled by this drive",
        ))
    }

    /// Whether a deletion may go on. Unhandled: it may.
    fn on_can_file_be_deleted(
        &self,
        _p: &mut CanFileBeDeletedParams<'_, Self::FileContext>,
    ) -> Result<()> {
        Ok(())
    }

    /// Delete. Unhandled: `EOPNOTSUPP`.
    fn on_delete_file(&self, _p: &mut DeleteFileParams<'_, Self::FileContext>) -> Result<()> {
        Err(not_supported("on_delete_file"))
    }

    /// Whether a directory is empty. Unhandled: the library lists it to find out.
    fn on_is_directory_empty(&self, _p: &mut IsDirectoryEmptyParams<'_>) -> Result<()> {
        Ok(())
    }

    /// `fsync`, `fdatasync` (of a file or a directory): make what the drive was given
    /// durable. The kernel has already written back the file's cached pages. Unhandled: the
    /// drive has nothing to persist. It answers `ENOSYS`, which no caller sees (`fsync`
    /// returns 0): the kernel then stops sending fsyncs to the mount, so later ones cost no
    /// request at all. A drive that persists anything must handle this event.
    fn on_flush_file(
        &self,
        _p: &mut FlushFileParams<'_, Self::FileContext, Self::HandleContext>,
    ) -> Result<()> {
        Err(Error::from_errno(
            libc::ENOSYS,
            "on_flush_file is not handled: the drive has nothing to persist",
        ))
    }

    /// `link`. Unhandled: `EPERM` (what `link(2)` reports on filesystems without hard
    /// links).
    fn on_create_hard_link(&self, _p: &mut CreateHardLinkParams<'_>) -> Result<()> {
        Err(Error::from_errno(
            libc::EPERM,
            "on_create_hard_link is not handled by this drive",
        ))
    }

    /// `symlink`. Unhandled: `EPERM` (what `symlink(2)` reports on filesystems without
    /// links).
    fn on_create_symbolic_link(&self, _p: &mut CreateSymbolicLinkParams<'_>) -> Result<()> {
        Err(Error::from_errno(
            libc::EPERM,
            "on_create_symbolic_link is not handled by this drive",
        ))
    }

    /// `readlink`. Unhandled: `EINVAL` (not a link).
    fn on_get_symbolic_link_target(&self, _p: &mut GetSymbolicLinkTargetParams<'_>) -> Result<()> {
        Err(Error::from_errno(
            libc::EINVAL,
            "on_get_symbolic_link_target is not handled by this drive",
        ))
    }

    /// `getxattr`. Unhandled: `EOPNOTSUPP`.
    fn on_get_ea(&self, _p: &mut GetEaParams<'_>) -> Result<()> {
        Err(not_supported("on_get_ea"))
    }

    /// `setxattr`. Unhandled: `EOPNOTSUPP`.
    fn on_set_ea(&self, _p: &mut SetEaParams<'_>) -> Result<()> {
        Err(not_supported("on_set_ea"))
    }

    /// `listxattr`. Unhandled: no attributes.
    fn on_list_eas(&self, _p: &mut ListEasParams<'_>) -> Result<()> {
        Ok(())
    }

    /// `removexattr`. Unhandled: `EOPNOTSUPP`.
    fn on_remove_ea(&self, _p: &mut RemoveEaParams<'_>) -> Result<()> {
        Err(not_supported("on_remove_ea"))
    }
}
