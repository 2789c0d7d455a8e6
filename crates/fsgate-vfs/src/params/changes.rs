//! Changes to an object: attributes and owner, renames, deletes, links, and flushes.

use super::*;

/// `on_set_file_attributes`: `chmod`, `utimensat`, `touch`. `None` fields are unchanged.
#[derive(Debug)]
pub struct SetFileAttributesParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// New permission bits (`0o7777`).
    pub mode: Option<u32>,
    /// New creation time.
    pub creation_time: Option<SystemTime>,
    /// New access time (`UTIME_NOW` arrives as the current time).
    pub last_access_time: Option<SystemTime>,
    /// New modification time.
    pub last_write_time: Option<SystemTime>,
    /// New change time.
    pub change_time: Option<SystemTime>,
    /// Output: the file's attributes after the change, as `stat` will show them. Pre-filled with
    /// defaults for the file's kind with the new values applied (the library does not know the
    /// rest). When the same `SETATTR` also fires `on_set_file_security`, that event's `info`
    /// counts. Ignored when the library itself clears set-id bits before a write (that request's
    /// answer is the write); set [`info_filled`](Self::info_filled) once filled.
    pub info: FileInfo,
    /// Output: whether the handler filled [`info`](Self::info). Pre-filled with false. When
    /// true the library answers the kernel with `info` and fires no `on_get_file_info`;
    /// when false it asks `on_get_file_info` after the event, one more event per request.
    pub info_filled: bool,
    /// The file's context, when the file is open.
    pub file_context: Option<&'a mut F>,
}

/// `on_set_file_security`: `chown`/`chgrp` (Linux ownership instead of a security
/// descriptor). `None` fields are unchanged.
#[derive(Debug)]
pub struct SetFileSecurityParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// New owner uid.
    pub owner: Option<u32>,
    /// New group gid.
    pub group: Option<u32>,
    /// Output: the file's attributes after the change, as `stat` will show them. Pre-filled with
    /// defaults for the file's kind with the new owner and group applied (the library does not know
    /// the rest); set [`info_filled`](Self::info_filled) once filled.
    pub info: FileInfo,
    /// Output: whether the handler filled [`info`](Self::info). Pre-filled with false. When
    /// true the library answers the kernel with `info` and fires no `on_get_file_info`;
    /// when false it asks `on_get_file_info` after the event, one more event per request.
    pub info_filled: bool,
    /// The file's context, when the file is open.
    pub file_context: Option<&'a mut F>,
}

/// `on_rename_or_move_file`: `rename`, `renameat2`.
#[derive(Debug)]
pub struct RenameOrMoveFileParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The current path.
    pub file_name: &'a Path,
    /// The new path (possibly in another directory).
    pub new_file_name: &'a Path,
    /// Whether an existing `new_file_name` is to be replaced (false for
    /// `RENAME_NOREPLACE`; the kernel has already refused that case when it knew the target
    /// existed). A replaced directory is empty: the kernel checks that through
    /// `on_is_directory_empty` first.
    pub replace_existing: bool,
    /// The file's context, when the file is open.
    pub file_context: Option<&'a mut F>,
}

/// `on_exchange_files`: `renameat2(RENAME_EXCHANGE)`: both names exist and trade places
/// atomically (a directory moves with everything in it). The kernel has checked that
/// neither lies inside the other.
#[derive(Debug)]
pub struct ExchangeFilesParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// One path.
    pub file_name: &'a Path,
    /// The other path (possibly in another directory).
    pub new_file_name: &'a Path,
}

/// `on_can_file_be_deleted`: fires before `on_delete_file`; leaving `can_be_deleted` true
/// lets the deletion go on, false fails it with `EACCES`.
#[derive(Debug)]
pub struct CanFileBeDeletedParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path to delete.
    pub file_name: &'a Path,
    /// Whether it is a directory (`rmdir`) or not (`unlink`).
    pub is_directory: bool,
    /// Output: whether it may be deleted. Pre-filled with true.
    pub can_be_deleted: bool,
    /// The file's context, when the file is open.
    pub file_context: Option<&'a mut F>,
}

/// `on_delete_file`: `unlink`, `rmdir`. On Linux the name goes at once (there is no
/// delete-on-close); handles still open keep working on the file context and keep getting
/// events under the old name until they close.
#[derive(Debug)]
pub struct DeleteFileParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path to delete.
    pub file_name: &'a Path,
    /// Whether it is a directory (`rmdir`, already checked empty) or not.
    pub is_directory: bool,
    /// The file's context, when the file is open.
    pub file_context: Option<&'a mut F>,
}

/// `on_is_directory_empty`: fires before `rmdir` and before a rename onto a directory.
/// Leaving `is_empty` unset lets the library find out by listing the directory through
/// `on_enumerate_directory` (with a fresh enumeration context).
#[derive(Debug)]
pub struct IsDirectoryEmptyParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The directory.
    pub directory_name: &'a Path,
    /// Output: whether it has no entries. A non-empty directory fails `rmdir` with
    /// `ENOTEMPTY`. Pre-filled with `None`.
    pub is_empty: Option<bool>,
}

/// `on_flush_file`: `fsync`, `fdatasync` (for files and directories).
#[derive(Debug)]
pub struct FlushFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// True for `fdatasync`: only data needs to reach storage, not metadata.
    pub data_only: bool,
    /// The file's context.
    pub file_context: Option<&'a mut F>,
    /// The context of the handle being synced.
    pub handle_context: Option<&'a mut H>,
}

/// `on_create_hard_link`: `link`: give the existing file `file_name` the additional name
/// `link_name`.
#[derive(Debug)]
pub struct CreateHardLinkParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The existing file.
    pub file_name: &'a Path,
    /// The new name.
    pub link_name: &'a Path,
    /// Output: the attributes of the file both names now share, as `stat` will show them.
    /// Pre-filled with defaults for the file's kind (owned by the mounting user; the library does
    /// not know the file's); set [`info_filled`](Self::info_filled) once filled.
    pub info: FileInfo,
    /// Output: whether the handler filled [`info`](Self::info). Pre-filled with false. When
    /// true the library answers the kernel with `info` and fires no `on_get_file_info`;
    /// when false it asks `on_get_file_info` after the event, one more event per request.
    pub info_filled: bool,
}

/// `on_create_symbolic_link`: `symlink`: create `file_name` as a link to `target`. The
/// reference stores links as reparse points; this is its Linux form.
#[derive(Debug)]
pub struct CreateSymbolicLinkParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The link to create.
    pub file_name: &'a Path,
    /// What it points to, verbatim (relative or absolute; never resolved by the library).
    pub target: &'a Path,
    /// Output: the new link's attributes, as `stat` will show them. Pre-filled with kind
    /// [`FileKind::Symlink`], mode `0o777`, the caller's uid and gid, size the target's length in
    /// bytes, every time now; set [`info_filled`](Self::info_filled) once filled.
    pub info: FileInfo,
    /// Output: whether the handler filled [`info`](Self::info). Pre-filled with false. When
    /// true the library answers the kernel with `info` and fires no `on_get_file_info`;
    /// when false it asks `on_get_file_info` after the event, one more event per request.
    pub info_filled: bool,
}

/// `on_get_symbolic_link_target`: `readlink`, and every path walk through a link.
#[derive(Debug)]
pub struct GetSymbolicLinkTargetParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The link.
    pub file_name: &'a Path,
    /// Output: the link's target.
    pub target: PathBuf,
}
