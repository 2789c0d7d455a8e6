//! The parameter structs the events receive: the reference's inputs (read them) and outputs
//! (write them), with Linux meanings.
//!
//! Every `file_name` is a full path inside the drive with `/` separators, starting at the
//! drive's root: `/`, `/a.txt`, `/dir/b`. Names are bytes, as Linux has them: a
//! [`Path`] (and [`OsStr`] for attribute names) carries every name the kernel allows,
//! UTF-8 or not, so any name round-trips; call `to_str()` on it where only UTF-8 will do.
//! A name longer than 255 bytes fails with `ENAMETOOLONG` before any event fires.
//!
//! Contexts are the drive's own values with no bound but `Send + Sync`: `on_create_file`
//! and `on_open_file` store them in their `file_context` and `handle_context` slots, and
//! every later event of that file or handle sees them as `Some`. A slot left empty stays
//! `None` (the reference's null context); a handle opened without an event (a later open
//! while `fire_all_open_close_events` is off) has no handle context.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fsgate_core::originator::Credentials;
use fsgate_core::{Originator, Result};

/// Reference attribute flags (`FILE_ATTRIBUTE_*`) that [`CreateFileParams::attributes`] and
/// [`OpenFileParams::attributes`] carry; on Linux only the kind of object is meaningful.
pub mod attributes {
    /// The object is read-only (the request had no write access bits in its mode).
    pub const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
    /// The object is a directory (`mkdir`, `opendir`).
    pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
    /// A plain file.
    pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
    /// The object is a symbolic link (the reference stores links as reparse points).
    pub const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
}

/// Reference access bits (`FILE_READ_DATA`, …) that `desired_access` carries, derived from the
/// Linux open flags: `O_RDONLY` → read, `O_WRONLY` → write, `O_RDWR` → both, `O_APPEND` adds
/// append.
pub mod access {
    /// Read data (`O_RDONLY`, `O_RDWR`).
    pub const FILE_READ_DATA: u32 = 0x1;
    /// Write data (`O_WRONLY`, `O_RDWR`).
    pub const FILE_WRITE_DATA: u32 = 0x2;
    /// Append data (`O_APPEND`).
    pub const FILE_APPEND_DATA: u32 = 0x4;
}

/// What kind of object a name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (its target comes from `on_get_symbolic_link_target`).
    Symlink,
    /// A named pipe (`mkfifo`). The kernel serves its data between the processes that open
    /// it; the drive only stores the name and its metadata.
    Fifo,
    /// A Unix domain socket's name (`bind` of an `AF_UNIX` socket). Connections go through
    /// the kernel; the drive only stores the name and its metadata.
    Socket,
    /// A character device node (`mknod S_IFCHR`); [`FileInfo::rdev`] says which device.
    /// Opening it opens the device, not anything the drive serves.
    CharDevice,
    /// A block device node (`mknod S_IFBLK`); [`FileInfo::rdev`] says which device.
    BlockDevice,
}

impl FileKind {
    /// The kind of a Linux `st_mode` (its `S_IFMT` bits); `None` for bits that name no kind.
    pub fn from_mode(mode: u32) -> Option<Self> {
        Some(match mode & libc::S_IFMT {
            libc::S_IFREG => Self::File,
            libc::S_IFDIR => Self::Directory,
            libc::S_IFLNK => Self::Symlink,
            libc::S_IFIFO => Self::Fifo,
            libc::S_IFSOCK => Self::Socket,
            libc::S_IFCHR => Self::CharDevice,
            libc::S_IFBLK => Self::BlockDevice,
            _ => return None,
        })
    }

    /// The `S_IFMT` bits of this kind, as `st_mode` and `mknod(2)` carry them.
    pub fn mode_bits(self) -> u32 {
        match self {
            Self::File => libc::S_IFREG,
            Self::Directory => libc::S_IFDIR,
            Self::Symlink => libc::S_IFLNK,
            Self::Fifo => libc::S_IFIFO,
            Self::Socket => libc::S_IFSOCK,
            Self::CharDevice => libc::S_IFCHR,
            Self::BlockDevice => libc::S_IFBLK,
        }
    }

    /// Whether this is a FIFO, socket or device node: an object whose data the drive never
    /// serves (`mknod` creates it; reads and writes go to the kernel object it names).
    pub fn is_special(self) -> bool {
        matches!(
            self,
            Self::Fifo | Self::Socket | Self::CharDevice | Self::BlockDevice
        )
    }
}

/// A file's metadata, as `on_get_file_info` and `on_enumerate_directory` report it, and as
/// the create and set-attribute events report what they made (their `info`).
///
/// For `on_get_file_info` and `on_enumerate_directory` the library pre-fills every field
/// before the event fires: kind `File`, mode `0o644` (`0o755` for directories), the serving
/// process's uid and gid, one link (two for directories), size 0, every time the moment the
/// drive was mounted, `file_id` 0; each create and set-attribute params struct says what
/// its `info` starts as. A handler changes only what it knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// File, directory, symbolic link, FIFO, socket or device node.
    pub kind: FileKind,
    /// Permission bits (`0o7777`), what `stat` shows in `st_mode` besides the kind.
    pub mode: u32,
    /// Owner (`st_uid`).
    pub uid: u32,
    /// Group (`st_gid`).
    pub gid: u32,
    /// Size in bytes (`st_size`).
    pub size: u64,
    /// Space the file occupies in bytes; `st_blocks` is this divided by 512, rounded up.
    /// `None` means "same as `size`" (a drive that does not track holes).
    pub allocation_size: Option<u64>,
    /// Number of names the file has (`st_nlink`).
    pub hard_link_count: u32,
    /// Creation time (not shown by `stat`; kept for the reference's parity).
    pub creation_time: SystemTime,
    /// Last access (`st_atime`).
    pub last_access_time: SystemTime,
    /// Last data change (`st_mtime`).
    pub last_write_time: SystemTime,
    /// Last metadata change (`st_ctime`).
    pub change_time: SystemTime,
    /// The file's id. With [`Options::use_file_ids`](crate::Options) it is the inode number
    /// `stat` and `readdir` show (never 0 or 1; the root is always 1). Otherwise
    /// informational: the kernel sees the library's own inode numbers, which stay stable for
    /// a path while the kernel knows it.
    pub file_id: u64,
    /// The device a [`FileKind::CharDevice`] or [`FileKind::BlockDevice`] node names, as
    /// `makedev(major, minor)` encodes it (`st_rdev`); 0 for every other kind.
    pub rdev: u32,
}

impl FileInfo {
    /// Defaults for a `kind` object owned by `uid`/`gid` with all times at `time`.
    pub fn new(kind: FileKind, uid: u32, gid: u32, time: SystemTime) -> Self {
        let dir = kind == FileKind::Directory;
        Self {
            kind,
            mode: if dir { 0o755 } else { 0o644 },
            uid,
            gid,
            size: 0,
            allocation_size: None,
            hard_link_count: if dir { 2 } else { 1 },
            creation_time: time,
            last_access_time: time,
            last_write_time: time,
            change_time: time,
            file_id: 0,
            rdev: 0,
        }
    }
}

/// Who opened a handle: the reference's `HandleInfo`, valid for the handle's whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleInfo {
    /// The id the kernel uses for this handle (unique while the handle is open).
    pub handle_id: u64,
    /// The process that opened the handle, with the uid and gid it opened it with.
    pub creator: Originator,
}

impl HandleInfo {
    /// `get_handle_creator_process_id`: the pid of the process that opened the handle.
    pub fn get_handle_creator_process_id(&self) -> u32 {
        self.creator.pid()
    }

    /// `get_handle_creator_process_name`: the short name of the process that opened the
    /// handle; an error naming the pid if it has exited.
    pub fn get_handle_creator_process_name(&self) -> Result<String> {
        self.creator.process_name()
    }

    /// `get_handle_creator_token`: the credentials of the process that opened the handle.
    pub fn get_handle_creator_token(&self) -> Result<Credentials> {
        self.creator.credentials()
    }
}

/// `on_mount`: the drive has been mounted and is about to serve requests.
///
/// Fired by the library, not by a caller's request, so it has no `originator`.
#[derive(Debug)]
pub struct MountParams {
    /// The primary mounting point.
    pub mounting_point: std::path::PathBuf,
}

/// `on_unmount`: the drive is being unmounted; no event fires after this one.
///
/// Fired by the library, not by a caller's request, so it has no `originator`.
#[derive(Debug)]
pub struct UnmountParams {
    /// The primary mounting point.
    pub mounting_point: std::path::PathBuf,
}

/// `on_get_volume_size`: `statfs` / `df`.
#[derive(Debug)]
pub struct GetVolumeSizeParams {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// Output: the volume size in sectors (`f_blocks`). Pre-filled with 0.
    pub total_sectors: u64,
    /// Output: free sectors (`f_bfree` and `f_bavail`). Pre-filled with 0.
    pub available_sectors: u64,
    /// Input: the sector size in bytes, from [`Options::sector_size`](crate::Options).
    pub sector_size: u32,
    /// Output: the number of files (`f_files`). Pre-filled with 0.
    pub total_files: u64,
    /// Output: free file slots (`f_ffree`). Pre-filled with 0.
    pub free_files: u64,
}

/// `on_get_volume_label`: fires once at mount; the label becomes the mount's source name,
/// shown in `/proc/self/mountinfo` and by `df` (Linux has no per-request label query).
///
/// Fired by the library, not by a caller's request, so it has no `originator`.
#[derive(Debug, Default)]
pub struct GetVolumeLabelParams {
    /// Output: the label. Empty: the source name is `fsgate`.
    pub buffer: String,
}

/// `on_get_volume_id`: fires once at mount; [`VirtualDrive::volume_id`](crate::VirtualDrive)
/// reports it (the kernel's `statfs` has no field a FUSE server can fill with it).
///
/// Fired by the library, not by a caller's request, so it has no `originator`.
#[derive(Debug, Default)]
pub struct GetVolumeIdParams {
    /// Output: the volume's serial number.
    pub volume_id: u32,
}

/// `on_create_file`: a new file (`open(O_CREAT)` on a missing name, `creat`, `mknod`),
/// directory (`mkdir`), FIFO (`mkfifo`), socket name (`bind` of an `AF_UNIX` socket) or device
/// node (`mknod`). [`kind`](Self::kind) says which.
#[derive(Debug)]
pub struct CreateFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path to create.
    pub file_name: &'a Path,
    /// [`access`] bits from the open flags; `FILE_WRITE_DATA` for `mkdir` and `mknod`.
    pub desired_access: u32,
    /// [`attributes`]: `FILE_ATTRIBUTE_DIRECTORY` for `mkdir`, otherwise
    /// `FILE_ATTRIBUTE_NORMAL`.
    pub attributes: u32,
    /// What to create: [`FileKind::File`] for `open(O_CREAT)`, `creat` and `mknod S_IFREG`,
    /// [`FileKind::Directory`] for `mkdir`, the special kinds for `mkfifo`, `bind` and
    /// `mknod`. A drive that cannot store a kind fails the event (`EPERM` is what
    /// `mknod(2)` reports for an unsupported kind).
    pub kind: FileKind,
    /// For [`FileKind::CharDevice`] and [`FileKind::BlockDevice`]: the device number
    /// (`makedev(major, minor)`) to report as `st_rdev`; 0 otherwise.
    pub rdev: u32,
    /// Permission bits the caller asked for, with its umask already applied.
    pub mode: u32,
    /// The raw Linux open flags (`O_EXCL`, `O_APPEND`, …); 0 for `mkdir` and `mknod`.
    pub flags: i32,
    /// Output: the new object's attributes, as `stat` will show them. Pre-filled with the
    /// engine's defaults (`kind`, `rdev`, `mode`, the caller's uid and gid,
    /// every time now); set [`info_filled`](Self::info_filled) once filled.
    pub info: FileInfo,
    /// Output: whether the handler filled [`info`](Self::info). Pre-filled with false. When
    /// true the library answers the kernel with `info` and fires no `on_get_file_info`;
    /// when false (drives written before this field existed) it asks `on_get_file_info`
    /// after the event, one more event per request.
    pub info_filled: bool,
    /// Who is creating the file; the handle the caller gets (for `mkdir` and `mknod`, the
    /// handle is closed at once after this event).
    pub handle_info: HandleInfo,
    /// Output: the new file's context (this is the file's first open). Empty on entry;
    /// what the handler stores here every later event of the file sees. Dropped at once if
    /// the event fails.
    pub file_context: &'a mut Option<F>,
    /// Output: the new handle's context. Empty on entry; dropped at once if the event fails.
    pub handle_context: &'a mut Option<H>,
    pub(crate) route: Option<crate::route::Route>,
}

impl<F, H> CreateFileParams<'_, F, H> {
    /// `route_to_file`: the handle being created reads and writes `file` (the real file that
    /// corresponds to this one, opened with the access the caller asked for) instead of
    /// firing `on_read_file`/`on_write_file`; see [`crate::route`]. `flags`:
    /// [`ROUTE_CLOSE_EVENT`](crate::route::ROUTE_CLOSE_EVENT) or 0. Has no effect for
    /// `mkdir` and `mknod`. Calling it again replaces the earlier file.
    pub fn route_to_file(&mut self, file: std::fs::File, flags: u32) {
        self.route = Some(crate::route::Route { file, flags });
    }
}

/// `on_open_file`: an existing file or directory is opened (`open` without creating,
/// `opendir`). With `fire_all_open_close_events` off, fires only for the first open of a file.
#[derive(Debug)]
pub struct OpenFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path being opened.
    pub file_name: &'a Path,
    /// [`access`] bits from the open flags.
    pub desired_access: u32,
    /// [`attributes`]: `FILE_ATTRIBUTE_DIRECTORY` for `opendir`, otherwise
    /// `FILE_ATTRIBUTE_NORMAL`.
    pub attributes: u32,
    /// What is opened: [`FileKind::Directory`] for `opendir`, otherwise the kind the
    /// library's inode table knows for the name (from `on_get_file_info`), usually
    /// [`FileKind::File`]. There is no share mode: Linux opens share everything, so a drive
    /// that wants exclusive opens refuses the second open itself (for example with
    /// `ERROR_SHARING_VIOLATION`, which callers see as `ETXTBSY`).
    pub kind: FileKind,
    /// The raw Linux open flags. `O_TRUNC` has already been applied through
    /// `on_set_file_size(0)` before this event.
    pub flags: i32,
    /// Who is opening the file.
    pub handle_info: HandleInfo,
    /// The file's context: empty on the file's first open (store one here), what the
    /// first open stored otherwise. What the handler stores on a first open is dropped at
    /// once if the event fails.
    pub file_context: &'a mut Option<F>,
    /// Output: the new handle's context. Empty on entry; dropped at once if the event fails.
    pub handle_context: &'a mut Option<H>,
    pub(crate) route: Option<crate::route::Route>,
}

impl<F, H> OpenFileParams<'_, F, H> {
    /// `route_to_file`: this handle reads and writes `file` (the real file that corresponds
    /// to this one, opened with the access the caller asked for) instead of firing
    /// `on_read_file`/`on_write_file`; see [`crate::route`]. `flags`:
    /// [`ROUTE_CLOSE_EVENT`](crate::route::ROUTE_CLOSE_EVENT) or 0. Ignored for directories.
    /// With `fire_all_open_close_events` off, only the first open fires this event, so only
    /// it can route.
    pub fn route_to_file(&mut self, file: std::fs::File, flags: u32) {
        self.route = Some(crate::route::Route { file, flags });
    }
}

/// `on_cleanup_file`: a descriptor of the handle was closed (`close(2)`, FUSE `FLUSH`). Fires
/// once per `close` of each duplicate; the handle itself lives on until `on_close_file`.
/// Never fires when [`Options::fire_cleanup_events`](crate::Options::fire_cleanup_events) is
/// off.
#[derive(Debug)]
pub struct CleanupFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path (its last known name, even if it was deleted while open).
    pub file_name: &'a Path,
    /// The handle being cleaned up.
    pub handle_info: HandleInfo,
    /// The file's context.
    pub file_context: Option<&'a mut F>,
    /// The handle's context.
    pub handle_context: Option<&'a mut H>,
}

/// `on_close_file`: a handle was released (FUSE `RELEASE`/`RELEASEDIR`: the last descriptor
/// referring to it is gone). With `fire_all_open_close_events` off, fires only for the last
/// release of the file. The handle context is dropped right after this event; the file
/// context too when this is the file's last handle.
#[derive(Debug)]
pub struct CloseFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path (its last known name, even if it was deleted while open).
    pub file_name: &'a Path,
    /// The handle being closed.
    pub handle_info: HandleInfo,
    /// Whether this is the file's last open handle (its context is dropped after the event).
    pub last_handle: bool,
    /// The file's context.
    pub file_context: Option<&'a mut F>,
    /// The handle's context.
    pub handle_context: Option<&'a mut H>,
}

/// `on_get_file_info`: a lookup or `stat`. Set `file_exists` and fill `info`; leaving
/// `file_exists` false makes the name not exist (`ENOENT`), except for `/`, which always
/// exists as a directory.
#[derive(Debug)]
pub struct GetFileInfoParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path asked about.
    pub file_name: &'a Path,
    /// Output: whether the file exists. Pre-filled with false.
    pub file_exists: bool,
    /// Output: its metadata, pre-filled with defaults (see [`FileInfo`]).
    pub info: FileInfo,
    /// The file's context, when the file is open.
    pub file_context: Option<&'a mut F>,
}

/// `on_enumerate_directory`: fires repeatedly for one listing, once per entry, until a
/// handler leaves `file_found` false. `.` and `..` are added by the library.
#[derive(Debug)]
pub struct EnumerateDirectoryParams<'a, F, H, N> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The directory being listed.
    pub directory_name: &'a Path,
    /// The entries wanted: always `*` on Linux (the kernel filters nothing).
    pub mask: &'a str,
    /// Whether names compare case-sensitively: always true on Linux.
    pub case_sensitive: bool,
    /// True on the first call of a listing (start from the first entry).
    pub restart: bool,
    /// Output: whether this call found an entry. Pre-filled with false.
    pub file_found: bool,
    /// Output: the entry's name (a name, not a path). Must be non-empty and contain no `/`.
    pub file_name: OsString,
    /// Output: the entry's metadata; only `kind` and `file_id` reach a plain `readdir`.
    pub info: FileInfo,
    /// The directory's context (the directory is open while it is listed).
    pub file_context: Option<&'a mut F>,
    /// The context of the directory handle being read.
    pub handle_context: Option<&'a mut H>,
    /// The listing's context: empty at the listing's first `on_enumerate_directory` (store
    /// a cursor here); kept between its calls and dropped after
    /// `on_close_directory_enumeration`.
    pub enumeration_context: &'a mut Option<N>,
}

/// `on_close_directory_enumeration`: a listing ended (`closedir`); its context is dropped
/// right after.
#[derive(Debug)]
pub struct CloseDirectoryEnumerationParams<'a, F, N> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The directory that was listed.
    pub directory_name: &'a Path,
    /// The directory's context.
    pub file_context: Option<&'a mut F>,
    /// The listing's context.
    pub enumeration_context: Option<&'a mut N>,
}

/// `on_read_file`: read `buffer.len()` bytes at `position`.
#[derive(Debug)]
pub struct ReadFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// Offset in the file.
    pub position: u64,
    /// Where to put the data; its length is the number of bytes asked for. Its contents on
    /// entry are unspecified (buffers are reused between reads): only the first
    /// `bytes_read` bytes are sent.
    pub buffer: &'a mut [u8],
    /// Output: bytes put in `buffer`. Fewer than asked means end of file. Pre-filled with 0.
    pub bytes_read: usize,
    /// The file's context, shared: with `SerializeAccess` off other reads of the file may
    /// run at the same time (keep what a read changes behind the context's own lock).
    pub file_context: Option<&'a F>,
    /// The context of the handle the kernel reads through (for page-cache reads, any open
    /// handle of the file), shared like the file's.
    pub handle_context: Option<&'a H>,
}

/// `on_write_file`: write `buffer` at `position`.
#[derive(Debug)]
pub struct WriteFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// Offset in the file (for `O_APPEND` handles the kernel has already put it at the end).
    pub position: u64,
    /// The data.
    pub buffer: &'a [u8],
    /// Output: bytes written; the caller's `write` returns this. Pre-filled with 0.
    pub bytes_written: usize,
    /// The file's context.
    pub file_context: Option<&'a mut F>,
    /// The context of the handle the kernel writes through.
    pub handle_context: Option<&'a mut H>,
}

/// `on_set_file_size`: `truncate`, `ftruncate`, `open(O_TRUNC)`.
#[derive(Debug)]
pub struct SetFileSizeParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The new size: the file is cut or extended with zeros.
    pub size: u64,
    /// Output: the file's attributes after the change, as `stat` will show them. Pre-filled with
    /// defaults for the file's kind with the new `size` (the library does not know the rest). When
    /// the same `SETATTR` also fires `on_set_file_attributes` or `on_set_file_security`, the last
    /// event's `info` counts; set [`info_filled`](Self::info_filled) once filled.
    pub info: FileInfo,
    /// Output: whether the handler filled [`info`](Self::info). Pre-filled with false. When
    /// true the library answers the kernel with `info` and fires no `on_get_file_info`;
    /// when false it asks `on_get_file_info` after the event, one more event per request.
    pub info_filled: bool,
    /// The file's context, when the file is open.
    pub file_context: Option<&'a mut F>,
}

/// `on_set_allocation_size`: `fallocate` with mode 0 or `FALLOC_FL_KEEP_SIZE` asks for
/// space up to `allocation_size` bytes. Without `keep_size` the file size grows to it too
/// (never shrinks), as `fallocate(2)` requires; the new bytes read as zeros.
#[derive(Debug)]
pub struct SetAllocationSizeParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// Bytes to reserve from offset 0 (the end of the requested range).
    pub allocation_size: u64,
    /// `FALLOC_FL_KEEP_SIZE`: reserve the space but leave the file size as it is.
    pub keep_size: bool,
    /// The file's context (the file is open).
    pub file_context: Option<&'a mut F>,
}

/// `on_zeroize_file_range`: `fallocate` with `FALLOC_FL_PUNCH_HOLE` or
/// `FALLOC_FL_ZERO_RANGE`: bytes `position..position + length` read as zeros afterwards.
#[derive(Debug)]
pub struct ZeroizeFileRangeParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The first byte of the range.
    pub position: u64,
    /// The range's length in bytes (never 0).
    pub length: u64,
    /// `FALLOC_FL_PUNCH_HOLE`: the range's space is given back (a sparse file's hole);
    /// otherwise (`FALLOC_FL_ZERO_RANGE`) it stays allocated.
    pub deallocate: bool,
    /// `FALLOC_FL_KEEP_SIZE` (always set with `deallocate`): a range past the end does not
    /// grow the file. Without it, the file grows to `position + length` if it was smaller.
    pub keep_size: bool,
    /// The file's context (the file is open).
    pub file_context: Option<&'a mut F>,
}

/// `on_copy_file_range`: `copy_file_range(2)` between two open files of the drive (or
/// within one). A drive that can copy without moving the bytes through the caller (the
/// mirror, with the source filesystem's own `copy_file_range`) handles it; otherwise the
/// kernel copies with reads and writes.
#[derive(Debug)]
pub struct CopyFileRangeParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path of the file read from.
    pub file_name: &'a Path,
    /// Where reading starts.
    pub position: u64,
    /// The context of the file read from.
    pub file_context: Option<&'a F>,
    /// The context of the handle read from.
    pub handle_context: Option<&'a H>,
    /// The path of the file written to (may equal `file_name`).
    pub target_file_name: &'a Path,
    /// Where writing starts.
    pub target_position: u64,
    /// The context of the handle written to (may be the same handle as `handle_context`).
    pub target_handle_context: Option<&'a H>,
    /// How many bytes to copy at most.
    pub length: u64,
    /// Output: bytes copied (fewer than `length` only at the end of the source; 0 when
    /// `position` is at or past it).
    pub bytes_copied: u64,
}

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

/// `on_get_ea`: `getxattr`. Not found: fail with `ERROR_EA_NOT_FOUND` (`ENODATA`).
#[derive(Debug)]
pub struct GetEaParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The attribute's full name (`user.comment`).
    pub name: &'a OsStr,
    /// Output: the value.
    pub value: Vec<u8>,
}

/// `on_set_ea`: `setxattr`.
#[derive(Debug)]
pub struct SetEaParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The attribute's full name.
    pub name: &'a OsStr,
    /// The new value.
    pub value: &'a [u8],
    /// `XATTR_CREATE`: fail with `EEXIST` if the attribute exists.
    pub create_only: bool,
    /// `XATTR_REPLACE`: fail with `ENODATA` if it does not.
    pub replace_only: bool,
}

/// `on_list_eas`: `listxattr`.
#[derive(Debug)]
pub struct ListEasParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// Output: the attribute names. Pre-filled empty.
    pub names: Vec<OsString>,
}

/// `on_remove_ea`: `removexattr`. Not found: fail with `ERROR_EA_NOT_FOUND` (`ENODATA`).
#[derive(Debug)]
pub struct RemoveEaParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The attribute's full name.
    pub name: &'a OsStr,
}
