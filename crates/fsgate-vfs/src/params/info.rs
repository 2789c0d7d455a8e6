//! What objects and handles are: kinds, metadata, handle identity and the reference's flag values.

use super::*;

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
    /// The thread that opened the handle, with the uid and gid it opened it with. Its
    /// process is looked up when asked, not at every open: an open costs no lookup.
    pub creator: Originator,
}

impl HandleInfo {
    /// `get_handle_creator_process_id`: the pid of the process that opened the handle,
    /// looked up now from the opening thread: exact during the open or create event and
    /// whenever that thread is still alive or was its process's main thread; once another
    /// thread that opened the handle has exited, its thread id.
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
