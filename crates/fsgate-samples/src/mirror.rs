//! The mirror drive: shows a real directory (the *source*) through the `fsgate-vfs` events,
//! written only against the public API. It is a sample to read and copy: every event is a
//! few lines over one or two system calls on the source, all made through rustix.
//!
//! # Design
//!
//! **One directory descriptor.** The drive opens the source once, `O_PATH | O_DIRECTORY`,
//! and every event works relative to it with the `*at` system calls (`openat`, `fstatat`,
//! `mkdirat`, `mknodat`, `renameat2`, `linkat`, `symlinkat`, `readlinkat`, `unlinkat`,
//! `fchmodat`, `fchownat`, `utimensat`). A path `/a/b` of the drive is `a/b` under the
//! descriptor; `/` is `.`. The source may be renamed or moved while mounted: the descriptor
//! follows it. The kernel walks paths on the mount itself (it asks
//! `on_get_symbolic_link_target` and resolves links), so the paths the events get never go
//! through a link; the final component is never followed (`AT_SYMLINK_NOFOLLOW`,
//! `O_NOFOLLOW`).
//!
//! **Any depth.** On the mount only each name is limited (255 bytes): a process that walks
//! down with `openat` reaches paths far longer than `PATH_MAX` (4,096 bytes with the NUL),
//! the most one system call takes. A path that fits goes to the source in one call; a longer
//! one is reached by opening its directories first (`O_PATH | O_DIRECTORY | O_NOFOLLOW`,
//! as many whole components per call as fit) and naming its last component relative to the
//! last of them. The drive never puts anything in front of an event's path, so every path
//! that is legal on the mount works in the source.
//!
//! **Identity.** The drive mounts with `use_file_ids`: each object's inode number on the
//! mount is its inode number in the source, so hard links in the source are hard links on
//! the mount and `ls -i` agrees with the source. The source must be one filesystem (inode
//! numbers of submounts could collide).
//!
//! **Ownership and permissions.** The kernel checks permissions on the mount
//! (`default_permissions`) against the mode, owner and group the source reports, so the
//! drive acts as root on the source. New objects (files, directories, links, FIFOs, sockets,
//! device nodes) get the caller's uid, and the caller's gid unless the parent directory is
//! set-group-ID, in which case the source filesystem has already given them the directory's
//! group (and, for directories, the set-group-ID bit), exactly as it would for a local
//! caller. Set-user-ID and set-group-ID bits the caller asked for survive the change of
//! owner (the kernel has already dropped those it may not set). The kernel has applied the
//! caller's umask to every mode the events get; the drive leaves the serving process's own
//! umask alone, and gives an object the source created with fewer permission bits than
//! asked (that umask took some) the asked bits with one `chmod`.
//!
//! **Names are bytes.** Every name goes to the source as the bytes the caller used, and
//! listings, link targets and attribute names come back the same way: a name that is not
//! UTF-8 round-trips.
//!
//! **Data.** `on_open_file`/`on_create_file` open the source file read-write (or with the
//! caller's access when the source refuses that) into the handle context; reads and writes
//! are `pread`/`pwrite` on it. A name that already exists is opened `O_PATH` first and
//! checked with `fstat`: only a regular file is then opened for its data, anew through
//! `/proc/self/fd/N` so that it is the very object checked. Anything else fails (`EISDIR`,
//! `ELOOP`, and `ENXIO` for FIFOs, sockets and devices, what `open(2)` says of a socket):
//! opening a FIFO would block the event until a writer came, opening a device would act on
//! the device. With `passthrough` ([`MirrorDrive::new`]) the handle is also routed to that
//! file (`route_to_file`), so the kernel reads and writes the source file directly and the
//! drive sees no read or write events at all.
//!
//! **Special files.** `mkfifo`, `mknod` and `bind` of an `AF_UNIX` socket on the mount reach
//! `on_create_file` with their kind, and the drive makes the same object in the source with
//! `mknodat` (device nodes with their device number). Their data never passes through the
//! drive: the kernel serves a FIFO's and a socket's data on the mount itself, between the
//! processes that use them there (a FIFO on the mount and the same FIFO in the source are two
//! different pipes), and opens a device node's device. The drive keeps their names and
//! metadata, and changes those (`chmod`, `chown`, times, xattrs) without opening them.
//!
//! **Space and copies.** `fallocate` goes to a writable descriptor of the source file (the
//! open file's own, or one opened from it). Mode 0 and `FALLOC_FL_KEEP_SIZE`
//! (`on_set_allocation_size`) reserve from offset 0 to the end of the asked range, since the
//! event carries only that end: holes before the range are filled too, which `fallocate(2)`
//! allows. `FALLOC_FL_PUNCH_HOLE` and `FALLOC_FL_ZERO_RANGE` (`on_zeroize_file_range`) pass
//! as they came. `copy_file_range` (`on_copy_file_range`) is the source's own
//! `copy_file_range(2)` between the two handles' descriptors: the bytes never pass through
//! the drive, and the source filesystem shares extents where it can (btrfs, XFS). With
//! `passthrough` these still come to the drive as events.
//!
//! **Extended attributes** go through an `O_PATH | O_NOFOLLOW` descriptor of the object,
//! named `/proc/self/fd/N` to the `*xattr` calls, which reach the object itself: a link,
//! never its target; a FIFO or device, without opening it.
//!
//! **Times.** The source filesystem keeps every time; the drive only forwards explicit
//! `utimensat` calls.
//!
//! **Changes made directly in the source** (not through the mount) reach the kernel's
//! caches when they expire: names and attributes within the metadata timeout (10 s by
//! default), data when the kernel then sees a new size or modification time. A program
//! that changes the source and wants the mount to agree at once calls
//! `notify_directory_change`/`notify_file_change` on the drive.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fsgate_core::{Error, Originator, Result};
use fsgate_vfs::{
    CopyFileRangeParams, CreateFileParams, CreateHardLinkParams, CreateSymbolicLinkParams,
    DeleteFileParams, EnumerateDirectoryParams, Events, ExchangeFilesParams, FileInfo, FileKind,
    FlushFileParams, GetEaParams, GetFileInfoParams, GetSymbolicLinkTargetParams,
    GetVolumeLabelParams, GetVolumeSizeParams, Hooks, IsDirectoryEmptyParams, ListEasParams,
    OpenFileParams, ReadFileParams, RemoveEaParams, RenameOrMoveFileParams,
    SetAllocationSizeParams, SetEaParams, SetFileAttributesParams, SetFileSecurityParams,
    SetFileSizeParams, WriteFileParams, ZeroizeFileRangeParams,
};
use rustix::fs::{
    self as sys, AtFlags, FallocateFlags, FileType, Mode, OFlags, RenameFlags, Stat, Timespec,
    Timestamps, XattrFlags,
};
use rustix::io::Errno;

/// The mirror drive over one source directory.
pub struct MirrorDrive {
    root: OwnedFd,
    passthrough: bool,
}

/// A directory listing: the entries read at its first call, handed out one per call.
pub struct Listing {
    entries: Vec<ListedEntry>,
    next: usize,
}

/// One entry of a source directory, as its listing reports it.
struct ListedEntry {
    name: OsString,
    kind: FileKind,
    file_id: u64,
}

/// The source file a handle reads and writes (directories store none).
type OpenSource = Arc<File>;

/// The source file of an open file (its first handle's descriptor, shared), for
/// `on_get_file_info` and size changes after the name is gone (directories store none).
type OpenFile = Arc<File>;

/// The longest path one system call takes, in bytes: `PATH_MAX` less its NUL.
const LONGEST_CALL_PATH: usize = libc::PATH_MAX as usize - 1;

/// Where an event's object is in the source: a directory and a path relative to it, ready
/// for the `*at` calls (see "Any depth" in the module docs).
struct SourcePath<'a> {
    dir: SourceDir<'a>,
    rel: CString,
}

/// The directory a [`SourcePath`] is relative to.
enum SourceDir<'a> {
    /// The source's own descriptor: the path fits in one call.
    Root(BorrowedFd<'a>),
    /// The last directory on the way to a path too long for one call.
    Opened(OwnedFd),
}

impl AsFd for SourceDir<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            SourceDir::Root(fd) => *fd,
            SourceDir::Opened(fd) => fd.as_fd(),
        }
    }
}

impl MirrorDrive {
    /// A drive mirroring `source` (an existing directory). With `passthrough`, every opened
    /// file is routed to its source file.
    pub fn new(source: &Path, passthrough: bool) -> Result<Self> {
        let root = sys::open(
            source,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            Error::from_errno(
                e.raw_os_error(),
                format!("SOURCE {}: {}", source.display(), io::Error::from(e)),
            )
        })?;
        Ok(Self { root, passthrough })
    }

    /// Where the drive path `name` (`/a/b`) is in the source: relative to the source's
    /// descriptor when it fits in one call, else relative to its parent directory, opened
    /// on the way.
    fn locate(&self, name: &Path) -> io::Result<SourcePath<'_>> {
        let bytes = name.as_os_str().as_bytes();
        let start = bytes.iter().position(|b| *b != b'/').unwrap_or(bytes.len());
        let rel = match &bytes[start..] {
            b"" => b".",
            rel => rel,
        };
        let root = self.root.as_fd();
        let (steps, last) = split_for_calls(rel)?;
        let mut dir = SourceDir::Root(root);
        for step in steps {
            let next = sys::openat(
                &dir,
                c_path(step)?,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            dir = SourceDir::Opened(next);
        }
        Ok(SourcePath {
            dir,
            rel: c_path(last)?,
        })
    }

    /// Opens the existing regular file at `at` for a handle: read-write when the source
    /// allows it (the kernel's write-back may write through any handle), else with the
    /// access of `flags`. Anything but a regular file is refused without being opened (see
    /// "Data" in the module docs).
    fn open_existing(&self, at: &SourcePath<'_>, name: &Path, flags: i32) -> Result<File> {
        let path = sys::openat(
            &at.dir,
            &at.rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| failed("open", name, e.into()))?;
        let st = sys::fstat(&path).map_err(|e| failed("fstat", name, e.into()))?;
        let (errno, what) = match FileKind::from_mode(st.st_mode) {
            Some(FileKind::File) => {
                return reopen(path.as_fd(), flags).map_err(|e| failed("open", name, e))
            }
            Some(FileKind::Directory) => (libc::EISDIR, "a directory"),
            Some(FileKind::Symlink) => (libc::ELOOP, "a symbolic link"),
            Some(FileKind::Fifo) => (libc::ENXIO, "a FIFO"),
            Some(FileKind::Socket) => (libc::ENXIO, "a socket"),
            Some(FileKind::CharDevice) => (libc::ENXIO, "a character device"),
            Some(FileKind::BlockDevice) => (libc::ENXIO, "a block device"),
            None => (libc::ENXIO, "an object of no known kind"),
        };
        Err(Error::from_errno(
            errno,
            format!(
                "open {}: {what} in the source (the mirror opens regular files only)",
                name.display()
            ),
        ))
    }

    /// Creates the regular file at `at` for a handle, with `mode`; read-write when the
    /// source allows it, else with the access of `flags`. A name that already exists in the
    /// source (made there since the kernel looked) is opened as an existing file, unless the
    /// creation is `exclusive`. Also says whether the file is new.
    fn create_file(
        &self,
        at: &SourcePath<'_>,
        name: &Path,
        flags: i32,
        mode: u32,
        exclusive: bool,
    ) -> Result<(File, bool)> {
        let create = OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(mode);
        let created = match sys::openat(&at.dir, &at.rel, create | OFlags::RDWR, mode) {
            Err(e) if access_refused(e) => {
                sys::openat(&at.dir, &at.rel, create | access_of(flags), mode)
            }
            created => created,
        };
        match created {
            Ok(fd) => Ok((File::from(fd), true)),
            Err(Errno::EXIST) if !exclusive => Ok((self.open_existing(at, name, flags)?, false)),
            Err(e) => Err(failed("create", name, e.into())),
        }
    }

    /// Gives a new object the ownership of `caller`, the event's originator, and the
    /// permission bits of `mode` when the process umask took some (see the module docs;
    /// `None` for links, which have no mode of their own). `chown` clears the set-user-ID
    /// and set-group-ID bits of anything but a directory, even root's, so an object that
    /// needs a new owner gets those bits back: the kernel has already dropped the ones the
    /// caller may not set.
    fn own(
        &self,
        at: &SourcePath<'_>,
        name: &Path,
        caller: Originator,
        mode: Option<u32>,
    ) -> Result<()> {
        let (uid, gid) = (caller.uid, caller.gid);
        let st = sys::statat(&at.dir, &at.rel, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| failed("stat", name, e.into()))?;
        // Under a set-group-ID parent the object keeps the group it was given; the parent is
        // looked at only when that group is not the caller's anyway.
        let parent_setgid = || {
            sys::statat(&at.dir, parent_of(&at.rel), AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|p| p.st_mode & libc::S_ISGID != 0)
        };
        let gid = if st.st_gid != gid && parent_setgid() {
            st.st_gid
        } else {
            gid
        };
        let owned = (st.st_uid, st.st_gid) == (uid, gid);
        let permissions = mode.map_or(st.st_mode & 0o777, |m| m & 0o777);
        let masked = st.st_mode & 0o777 != permissions;
        if owned && !masked {
            return Ok(());
        }
        if !owned {
            self.chown_new(at, name, uid, gid)?;
        }
        let set_id = st.st_mode & (libc::S_ISUID | libc::S_ISGID) != 0;
        let directory = FileKind::from_mode(st.st_mode) == Some(FileKind::Directory);
        if masked || (!owned && set_id && !directory) {
            let mode = Mode::from_raw_mode((st.st_mode & 0o7000) | permissions);
            sys::chmodat(&at.dir, &at.rel, mode, AtFlags::empty())
                .map_err(|e| failed("chmod", name, e.into()))?;
        }
        Ok(())
    }

    /// `chown` of a new object to `uid`/`gid`, not following a link.
    fn chown_new(&self, at: &SourcePath<'_>, name: &Path, uid: u32, gid: u32) -> Result<()> {
        sys::chownat(
            &at.dir,
            &at.rel,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| failed("chown", name, e.into()))
    }

    /// `name`'s attributes after an event changed or created it, as `on_get_file_info`
    /// reports them (through `open`, the file's descriptor, when it has one), for the
    /// event's `info`; `None` when they cannot be read, which leaves the library to ask
    /// `on_get_file_info`.
    fn stat_after(&self, name: &Path, open: Option<&OpenFile>) -> Option<FileInfo> {
        if let Some(file) = open {
            return sys::fstat(file).ok().map(|st| file_info(&st));
        }
        let at = self.locate(name).ok()?;
        sys::statat(&at.dir, &at.rel, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| file_info(&st))
    }

    fn create(&self, p: &mut CreateFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let name = p.file_name;
        let at = self.locate(name).map_err(|e| failed("create", name, e))?;
        let mode = Mode::from_raw_mode(p.mode);
        match p.kind {
            FileKind::Directory => {
                // The source applies mkdir's own rules: the sticky bit is kept, the
                // set-group-ID bit comes from the parent.
                sys::mkdirat(&at.dir, &at.rel, mode)
                    .map_err(|e| failed("mkdir", name, e.into()))?;
                self.own(&at, name, p.originator, Some(p.mode))
            }
            FileKind::File => {
                // `mknod` (no open flags) and `O_EXCL` must not take an existing name.
                let exclusive = p.flags & (libc::O_CREAT | libc::O_EXCL) != libc::O_CREAT;
                let (file, new) = self.create_file(&at, name, p.flags, p.mode, exclusive)?;
                self.own(&at, name, p.originator, Some(p.mode))?;
                // A file made just now is empty already.
                if !new && p.flags & libc::O_TRUNC != 0 {
                    file.set_len(0).map_err(|e| failed("truncate", name, e))?;
                }
                self.route(&file, |f| p.route_to_file(f, 0))?;
                *p.handle_context = Some(remember(p.file_context, file));
                Ok(())
            }
            FileKind::Symlink => Err(Error::from_errno(
                libc::EPERM,
                format!(
                    "create {}: links are made by on_create_symbolic_link",
                    name.display()
                ),
            )),
            kind => {
                let dev = if matches!(kind, FileKind::CharDevice | FileKind::BlockDevice) {
                    u64::from(p.rdev)
                } else {
                    0
                };
                let file_type = FileType::from_raw_mode(kind.mode_bits());
                sys::mknodat(&at.dir, &at.rel, file_type, mode, dev)
                    .map_err(|e| failed("mknod", name, e.into()))?;
                self.own(&at, name, p.originator, Some(p.mode))
            }
        }
    }

    fn open(&self, p: &mut OpenFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        if p.attributes & fsgate_vfs::attributes::FILE_ATTRIBUTE_DIRECTORY != 0 {
            return Ok(());
        }
        let name = p.file_name;
        let at = self.locate(name).map_err(|e| failed("open", name, e))?;
        let file = self.open_existing(&at, name, p.flags)?;
        self.route(&file, |f| p.route_to_file(f, 0))?;
        *p.handle_context = Some(remember(p.file_context, file));
        Ok(())
    }

    /// With `passthrough`, routes the handle to (a duplicate of) its source file.
    fn route(&self, file: &File, route: impl FnOnce(File)) -> Result<()> {
        if self.passthrough {
            route(file.try_clone().map_err(|e| Error::io("dup", e))?);
        }
        Ok(())
    }

    fn enumerate(
        &self,
        p: &mut EnumerateDirectoryParams<'_, OpenFile, OpenSource, Listing>,
    ) -> Result<()> {
        if p.restart || p.enumeration_context.is_none() {
            let name = p.directory_name;
            let entries = self
                .locate(name)
                .and_then(|at| list(&at))
                .map_err(|e| failed("list", name, e))?;
            *p.enumeration_context = Some(Listing { entries, next: 0 });
        }
        let Some(listing) = p.enumeration_context.as_mut() else {
            return Ok(());
        };
        if let Some(entry) = listing.entries.get(listing.next) {
            listing.next += 1;
            p.file_found = true;
            p.file_name.clone_from(&entry.name);
            p.info.kind = entry.kind;
            p.info.file_id = entry.file_id;
        }
        Ok(())
    }

    fn set_attributes(&self, p: &SetFileAttributesParams<'_, OpenFile>) -> Result<()> {
        let name = p.file_name;
        let context = p.file_context.as_deref();
        if let Some(mode) = p.mode {
            let mode = Mode::from_raw_mode(mode);
            self.by_name_or_descriptor(
                name,
                context,
                |at| sys::chmodat(&at.dir, &at.rel, mode, AtFlags::empty()),
                |file| sys::fchmod(file, mode),
            )
            .map_err(|e| failed("chmod", name, e))?;
        }
        if p.last_access_time.is_some() || p.last_write_time.is_some() {
            let times = Timestamps {
                last_access: timespec(p.last_access_time),
                last_modification: timespec(p.last_write_time),
            };
            self.by_name_or_descriptor(
                name,
                context,
                |at| sys::utimensat(&at.dir, &at.rel, &times, AtFlags::SYMLINK_NOFOLLOW),
                |file| sys::futimens(file, &times),
            )
            .map_err(|e| failed("utimensat", name, e))?;
        }
        Ok(())
    }

    /// Runs `by_descriptor` on the open file's source descriptor when the file is open
    /// (`context`), else `by_name` on the source object at `name`. The descriptor is the
    /// very file: its name may be gone (deleted while open), or name another file since.
    fn by_name_or_descriptor(
        &self,
        name: &Path,
        context: Option<&OpenFile>,
        by_name: impl FnOnce(&SourcePath<'_>) -> rustix::io::Result<()>,
        by_descriptor: impl FnOnce(&File) -> rustix::io::Result<()>,
    ) -> io::Result<()> {
        match context {
            Some(file) => by_descriptor(file).map_err(io::Error::from),
            None => self
                .locate(name)
                .and_then(|at| by_name(&at).map_err(io::Error::from)),
        }
    }

    /// A writable descriptor of the file a size or space change goes to: the open file's
    /// own when it is writable, else one opened from it (through `/proc/self/fd/N`, so a
    /// file that lost its name still works), else one opened by name.
    fn writable(&self, name: &Path, context: Option<&OpenFile>) -> Result<Arc<File>> {
        if let Some(file) = context {
            let access = sys::fcntl_getfl(file).map_err(|e| failed("fcntl", name, e.into()))?;
            if access & OFlags::ACCMODE != OFlags::RDONLY {
                return Ok(Arc::clone(file));
            }
            return reopen(file.as_fd(), libc::O_WRONLY)
                .map(Arc::new)
                .map_err(|e| failed("open", name, e));
        }
        let at = self.locate(name).map_err(|e| failed("open", name, e))?;
        self.open_existing(&at, name, libc::O_WRONLY).map(Arc::new)
    }

    /// An `O_PATH | O_NOFOLLOW` descriptor of the object at `name` for the `*xattr` calls,
    /// and the `/proc/self/fd/N` path they name it by (see the module docs).
    fn xattr_target(&self, name: &Path) -> Result<(OwnedFd, String)> {
        let fd = self
            .locate(name)
            .and_then(|at| {
                Ok(sys::openat(
                    &at.dir,
                    &at.rel,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?)
            })
            .map_err(|e| failed("open", name, e))?;
        let path = proc_fd_path(fd.as_fd());
        Ok((fd, path))
    }

    fn copy_range(&self, p: &mut CopyFileRangeParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let from = p.handle_context.ok_or_else(|| not_open(p.file_name))?;
        let to = p
            .target_handle_context
            .ok_or_else(|| not_open(p.target_file_name))?;
        let (mut position, mut target_position) = (p.position, p.target_position);
        let mut copied = 0;
        while copied < p.length {
            let chunk = usize::try_from(p.length - copied).unwrap_or(usize::MAX);
            match sys::copy_file_range(
                from,
                Some(&mut position),
                to,
                Some(&mut target_position),
                chunk,
            ) {
                Ok(0) => break,
                Ok(n) => copied += n as u64,
                Err(Errno::INTR) => {}
                // What was copied stays copied: report it, as a short write does.
                Err(_) if copied > 0 => break,
                Err(e) => {
                    return Err(failed(
                        "copy_file_range",
                        format!(
                            "{} to {}",
                            p.file_name.display(),
                            p.target_file_name.display()
                        ),
                        e.into(),
                    ))
                }
            }
        }
        p.bytes_copied = copied;
        Ok(())
    }
}

/// The `fsgate-vfs` events, each over one system call on the source.
impl Hooks for MirrorDrive {}

impl Events for MirrorDrive {
    type FileContext = OpenFile;
    type HandleContext = OpenSource;
    type EnumerationContext = Listing;

    fn on_get_volume_label(&self, p: &mut GetVolumeLabelParams) -> Result<()> {
        p.buffer = "fsgate-mirror".into();
        Ok(())
    }

    fn on_get_volume_size(&self, p: &mut GetVolumeSizeParams) -> Result<()> {
        let st =
            sys::fstatvfs(&self.root).map_err(|e| Error::io("statvfs of the source", e.into()))?;
        let to_sectors =
            |blocks: u64| blocks.saturating_mul(st.f_frsize) / u64::from(p.sector_size);
        p.total_sectors = to_sectors(st.f_blocks);
        p.available_sectors = to_sectors(st.f_bavail);
        p.total_files = st.f_files;
        p.free_files = st.f_ffree;
        Ok(())
    }

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, OpenFile>) -> Result<()> {
        let name = p.file_name;
        // An open file is asked through its descriptor: it may have lost its name.
        if let Some(file) = p.file_context.as_deref() {
            let st = sys::fstat(file).map_err(|e| failed("fstat", name, e.into()))?;
            p.file_exists = true;
            p.info = file_info(&st);
            return Ok(());
        }
        let found = self
            .locate(name)
            .and_then(|at| Ok(sys::statat(&at.dir, &at.rel, AtFlags::SYMLINK_NOFOLLOW)?));
        match found {
            Ok(st) => {
                p.file_exists = true;
                p.info = file_info(&st);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(failed("stat", name, e)),
        }
    }

    fn on_create_file(&self, p: &mut CreateFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        self.create(p)?;
        if let Some(info) = self.stat_after(p.file_name, p.file_context.as_ref()) {
            (p.info, p.info_filled) = (info, true);
        }
        Ok(())
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        self.open(p)
    }

    fn on_enumerate_directory(
        &self,
        p: &mut EnumerateDirectoryParams<'_, OpenFile, OpenSource, Listing>,
    ) -> Result<()> {
        self.enumerate(p)
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let file = p.handle_context.ok_or_else(|| not_open(p.file_name))?;
        let mut done = 0;
        while done < p.buffer.len() {
            match file.read_at(&mut p.buffer[done..], p.position + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(failed("read", p.file_name, e)),
            }
        }
        p.bytes_read = done;
        Ok(())
    }

    fn on_write_file(&self, p: &mut WriteFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let file = p
            .handle_context
            .as_deref()
            .ok_or_else(|| not_open(p.file_name))?;
        file.write_all_at(p.buffer, p.position)
            .map_err(|e| failed("write", p.file_name, e))?;
        p.bytes_written = p.buffer.len();
        Ok(())
    }

    fn on_set_file_size(&self, p: &mut SetFileSizeParams<'_, OpenFile>) -> Result<()> {
        let name = p.file_name;
        self.writable(name, p.file_context.as_deref())
            .and_then(|f| f.set_len(p.size).map_err(|e| failed("truncate", name, e)))?;
        if let Some(info) = self.stat_after(name, p.file_context.as_deref()) {
            (p.info, p.info_filled) = (info, true);
        }
        Ok(())
    }

    /// Reserves from offset 0 to `allocation_size` (see "Space and copies" in the module
    /// docs).
    fn on_set_allocation_size(&self, p: &mut SetAllocationSizeParams<'_, OpenFile>) -> Result<()> {
        let name = p.file_name;
        let mode = if p.keep_size {
            FallocateFlags::KEEP_SIZE
        } else {
            FallocateFlags::empty()
        };
        match p.allocation_size {
            0 => Ok(()),
            size => self
                .writable(name, p.file_context.as_deref())
                .and_then(|f| {
                    sys::fallocate(&*f, mode, 0, size)
                        .map_err(|e| failed("fallocate", name, e.into()))
                }),
        }
    }

    fn on_zeroize_file_range(&self, p: &mut ZeroizeFileRangeParams<'_, OpenFile>) -> Result<()> {
        let name = p.file_name;
        let mode = match (p.deallocate, p.keep_size) {
            // fallocate(2) takes a hole only with KEEP_SIZE.
            (true, _) => FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            (false, true) => FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
            (false, false) => FallocateFlags::ZERO_RANGE,
        };
        self.writable(name, p.file_context.as_deref())
            .and_then(|f| {
                sys::fallocate(&*f, mode, p.position, p.length)
                    .map_err(|e| failed("fallocate", name, e.into()))
            })
    }

    fn on_copy_file_range(
        &self,
        p: &mut CopyFileRangeParams<'_, OpenFile, OpenSource>,
    ) -> Result<()> {
        self.copy_range(p)
    }

    fn on_set_file_attributes(&self, p: &mut SetFileAttributesParams<'_, OpenFile>) -> Result<()> {
        self.set_attributes(p)?;
        if let Some(info) = self.stat_after(p.file_name, p.file_context.as_deref()) {
            (p.info, p.info_filled) = (info, true);
        }
        Ok(())
    }

    fn on_set_file_security(&self, p: &mut SetFileSecurityParams<'_, OpenFile>) -> Result<()> {
        let name = p.file_name;
        let uid = p.owner.map(rustix::fs::Uid::from_raw);
        let gid = p.group.map(rustix::fs::Gid::from_raw);
        self.by_name_or_descriptor(
            name,
            p.file_context.as_deref(),
            |at| sys::chownat(&at.dir, &at.rel, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
            |file| sys::fchown(file, uid, gid),
        )
        .map_err(|e| failed("chown", name, e))?;
        if let Some(info) = self.stat_after(name, p.file_context.as_deref()) {
            (p.info, p.info_filled) = (info, true);
        }
        Ok(())
    }

    fn on_rename_or_move_file(&self, p: &mut RenameOrMoveFileParams<'_, OpenFile>) -> Result<()> {
        let name = p.file_name;
        (|| -> io::Result<()> {
            let (from, to) = (self.locate(name)?, self.locate(p.new_file_name)?);
            let flags = if p.replace_existing {
                RenameFlags::empty()
            } else {
                RenameFlags::NOREPLACE
            };
            Ok(sys::renameat_with(
                &from.dir, &from.rel, &to.dir, &to.rel, flags,
            )?)
        })()
        .map_err(|e| failed("rename", name, e))
    }

    fn on_exchange_files(&self, p: &mut ExchangeFilesParams<'_>) -> Result<()> {
        let name = p.file_name;
        (|| -> io::Result<()> {
            let (a, b) = (self.locate(name)?, self.locate(p.new_file_name)?);
            Ok(sys::renameat_with(
                &a.dir,
                &a.rel,
                &b.dir,
                &b.rel,
                RenameFlags::EXCHANGE,
            )?)
        })()
        .map_err(|e| failed("exchange", name, e))
    }

    /// Says "empty" without looking: the source's own `unlinkat(AT_REMOVEDIR)` and
    /// `renameat` refuse a non-empty directory with `ENOTEMPTY`, atomically, where a listing
    /// first would cost five system calls and could be stale by the time of the delete.
    fn on_is_directory_empty(&self, p: &mut IsDirectoryEmptyParams<'_>) -> Result<()> {
        p.is_empty = Some(true);
        Ok(())
    }

    fn on_delete_file(&self, p: &mut DeleteFileParams<'_, OpenFile>) -> Result<()> {
        let name = p.file_name;
        let flags = if p.is_directory {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        self.locate(name)
            .and_then(|at| Ok(sys::unlinkat(&at.dir, &at.rel, flags)?))
            .map_err(|e| failed("unlink", name, e))
    }

    fn on_flush_file(&self, p: &mut FlushFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let name = p.file_name;
        match p.handle_context.as_deref() {
            Some(f) if p.data_only => f.sync_data(),
            Some(f) => f.sync_all(),
            // A directory: sync it through a descriptor of its own, `fdatasync` for the
            // caller's `fdatasync` (SQLite's directory sync after creating its journal) as
            // ext4 would have received it.
            None => self.locate(name).and_then(|at| {
                let dir = sys::openat(
                    &at.dir,
                    &at.rel,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let synced = if p.data_only {
                    sys::fdatasync(&dir)
                } else {
                    sys::fsync(&dir)
                };
                Ok(synced?)
            }),
        }
        .map_err(|e| failed("fsync", name, e))
    }

    fn on_create_hard_link(&self, p: &mut CreateHardLinkParams<'_>) -> Result<()> {
        (|| -> io::Result<()> {
            let (from, to) = (self.locate(p.file_name)?, self.locate(p.link_name)?);
            Ok(sys::linkat(
                &from.dir,
                &from.rel,
                &to.dir,
                &to.rel,
                AtFlags::empty(),
            )?)
        })()
        .map_err(|e| failed("link", p.link_name, e))?;
        if let Some(info) = self.stat_after(p.link_name, None) {
            (p.info, p.info_filled) = (info, true);
        }
        Ok(())
    }

    fn on_create_symbolic_link(&self, p: &mut CreateSymbolicLinkParams<'_>) -> Result<()> {
        let name = p.file_name;
        let at = self.locate(name).map_err(|e| failed("symlink", name, e))?;
        let target =
            c_path(p.target.as_os_str().as_bytes()).map_err(|e| failed("symlink", name, e))?;
        sys::symlinkat(&target, &at.dir, &at.rel).map_err(|e| failed("symlink", name, e.into()))?;
        self.own(&at, name, p.originator, None)?;
        if let Some(info) = self.stat_after(name, None) {
            (p.info, p.info_filled) = (info, true);
        }
        Ok(())
    }

    fn on_get_symbolic_link_target(&self, p: &mut GetSymbolicLinkTargetParams<'_>) -> Result<()> {
        let name = p.file_name;
        let target = self
            .locate(name)
            .and_then(|at| Ok(sys::readlinkat(&at.dir, &at.rel, Vec::new())?))
            .map_err(|e| failed("readlink", name, e))?;
        p.target = PathBuf::from(OsString::from_vec(target.into_bytes()));
        Ok(())
    }

    fn on_get_ea(&self, p: &mut GetEaParams<'_>) -> Result<()> {
        let (_fd, path) = self.xattr_target(p.file_name)?;
        p.value = xattr_value(&path, p.name)
            .map_err(|e| failed("getxattr", attribute(p.file_name, p.name), e))?;
        Ok(())
    }

    fn on_set_ea(&self, p: &mut SetEaParams<'_>) -> Result<()> {
        let flags = if p.create_only {
            XattrFlags::CREATE
        } else if p.replace_only {
            XattrFlags::REPLACE
        } else {
            XattrFlags::empty()
        };
        self.xattr_target(p.file_name).and_then(|(_fd, path)| {
            sys::setxattr(path.as_str(), p.name, p.value, flags)
                .map_err(|e| failed("setxattr", attribute(p.file_name, p.name), e.into()))
        })
    }

    fn on_list_eas(&self, p: &mut ListEasParams<'_>) -> Result<()> {
        let (_fd, path) = self.xattr_target(p.file_name)?;
        let names = sized(
            || sys::listxattr_query(path.as_str()),
            |buf| sys::listxattr(path.as_str(), buf),
        )
        .map_err(|e| failed("listxattr", p.file_name, e))?;
        p.names = names
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| OsString::from_vec(n.to_vec()))
            .collect();
        Ok(())
    }

    fn on_remove_ea(&self, p: &mut RemoveEaParams<'_>) -> Result<()> {
        self.xattr_target(p.file_name).and_then(|(_fd, path)| {
            sys::removexattr(path.as_str(), p.name)
                .map_err(|e| failed("removexattr", attribute(p.file_name, p.name), e.into()))
        })
    }
}

/// Shares the first handle's descriptor with the file context; returns the handle's.
fn remember(context: &mut Option<OpenFile>, file: File) -> Arc<File> {
    let file = Arc::new(file);
    if context.is_none() {
        *context = Some(Arc::clone(&file));
    }
    file
}

/// Splits a relative path into the directories to open one call at a time and what is left
/// for the last call: no directories when the whole path fits in one call, else as many
/// whole components per directory step as fit, and the last component. `ENAMETOOLONG` only
/// for a component no call could take.
fn split_for_calls(rel: &[u8]) -> io::Result<(Vec<&[u8]>, &[u8])> {
    let too_long = || io::Error::from_raw_os_error(libc::ENAMETOOLONG);
    if rel.len() <= LONGEST_CALL_PATH {
        return Ok((Vec::new(), rel));
    }
    let slash = rel.iter().rposition(|b| *b == b'/').ok_or_else(too_long)?;
    let (mut rest, last) = (&rel[..slash], &rel[slash + 1..]);
    let mut steps = Vec::new();
    while rest.len() > LONGEST_CALL_PATH {
        let cut = rest[..=LONGEST_CALL_PATH]
            .iter()
            .rposition(|b| *b == b'/')
            .ok_or_else(too_long)?;
        steps.push(&rest[..cut]);
        rest = &rest[cut + 1..];
    }
    steps.push(rest);
    if last.len() > LONGEST_CALL_PATH {
        return Err(too_long());
    }
    Ok((steps, last))
}

/// Opens the object `fd` refers to (an `O_PATH` descriptor or any other) anew, through
/// `/proc/self/fd/N`: read-write when the source allows it, else with the access of
/// `flags`.
fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<File> {
    let path = proc_fd_path(fd);
    let open = |access| sys::open(path.as_str(), access | OFlags::CLOEXEC, Mode::empty());
    let opened = match open(OFlags::RDWR) {
        Err(e) if access_refused(e) => open(access_of(flags)),
        opened => opened,
    };
    Ok(File::from(opened?))
}

/// Whether opening read-write failed for a reason that opening with less access may not
/// have (a read-only file, filesystem or running executable).
fn access_refused(e: Errno) -> bool {
    matches!(e, Errno::ACCESS | Errno::PERM | Errno::ROFS | Errno::TXTBSY)
}

/// The access mode bits (`O_RDONLY`, `O_WRONLY`, `O_RDWR`) of raw open flags.
fn access_of(flags: i32) -> OFlags {
    OFlags::from_bits_truncate(flags as u32) & OFlags::ACCMODE
}

/// `/proc/self/fd/N`: a path that reaches what descriptor `fd` refers to.
fn proc_fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The entries of the directory at `at` (without `.` and `..`).
fn list(at: &SourcePath<'_>) -> io::Result<Vec<ListedEntry>> {
    let fd = sys::openat(
        &at.dir,
        &at.rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = sys::Dir::new(fd)?;
    let mut entries = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let kind = match entry.file_type() {
            // The filesystem does not say (`DT_UNKNOWN`): ask `stat`.
            FileType::Unknown => sys::statat(dir.fd()?, name, AtFlags::SYMLINK_NOFOLLOW)
                .ok()
                .and_then(|st| FileKind::from_mode(st.st_mode)),
            known => FileKind::from_mode(known.as_raw_mode()),
        };
        entries.push(ListedEntry {
            name: OsString::from_vec(name.to_bytes().to_vec()),
            kind: kind.unwrap_or(FileKind::File),
            file_id: entry.ino(),
        });
    }
    Ok(entries)
}

/// The value of the extended attribute `name` of the object `/proc/self/fd/N` names.
fn xattr_value(path: &str, name: &OsStr) -> io::Result<Vec<u8>> {
    sized(
        || sys::getxattr_query(path, name),
        |buf| sys::getxattr(path, name, buf),
    )
}

/// Fills a buffer as large as `query` says `fill` needs, asking again while the value grows
/// between the two calls (`ERANGE`).
fn sized(
    query: impl Fn() -> rustix::io::Result<usize>,
    fill: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Vec<u8>> {
    loop {
        let size = query()?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0; size];
        match fill(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// A path as a C string; a NUL byte in it is `EINVAL` (the kernel never sends one).
fn c_path(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `a/b` → `a`; `a` → `.`.
fn parent_of(rel: &CStr) -> &[u8] {
    let bytes = rel.to_bytes();
    match bytes.iter().rposition(|b| *b == b'/') {
        Some(i) => &bytes[..i],
        None => b".",
    }
}

/// An errno error naming the operation, what it was done to (a drive path, or several
/// described in a string), and the reason.
fn failed(op: &str, what: impl AsRef<OsStr>, e: io::Error) -> Error {
    let what = Path::new(what.as_ref()).display();
    Error::from_errno(
        e.raw_os_error().unwrap_or(libc::EIO),
        format!("{op} {what}: {e}"),
    )
}

/// `EBADF` for a data event on a handle with no source file.
fn not_open(name: &Path) -> Error {
    Error::from_errno(libc::EBADF, format!("{} is not open", name.display()))
}

/// An extended attribute `name` of `file`, as errors name it.
fn attribute(file: &Path, name: &OsStr) -> String {
    format!("{} {}", file.display(), name.to_string_lossy())
}

fn time(sec: i64, nsec: u64) -> SystemTime {
    let nanos = Duration::from_nanos(nsec);
    if sec >= 0 {
        UNIX_EPOCH + Duration::from_secs(sec.unsigned_abs()) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + nanos
    }
}

/// A time for `utimensat`; `None` leaves it alone (`UTIME_OMIT`).
fn timespec(t: Option<SystemTime>) -> Timespec {
    let Some(t) = t else {
        return Timespec {
            tv_sec: 0,
            tv_nsec: sys::UTIME_OMIT,
        };
    };
    let (tv_sec, tv_nsec) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            i64::from(d.subsec_nanos()),
        ),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (
                -i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                i64::from(d.subsec_nanos()),
            );
            if n == 0 {
                (s, 0)
            } else {
                (s - 1, 1_000_000_000 - n)
            }
        }
    };
    Timespec { tv_sec, tv_nsec }
}

/// What `stat` of the source says, as the events report it.
// `Stat`'s field types differ between architectures, so some conversions are to the same
// type on this one.
#[allow(clippy::useless_conversion)]
fn file_info(st: &Stat) -> FileInfo {
    let kind = FileKind::from_mode(st.st_mode).unwrap_or(FileKind::File);
    let mtime = time(i64::from(st.st_mtime), u64::from(st.st_mtime_nsec));
    FileInfo {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: u64::try_from(st.st_size).unwrap_or(0),
        allocation_size: Some(u64::try_from(st.st_blocks).unwrap_or(0).saturating_mul(512)),
        hard_link_count: u32::try_from(st.st_nlink).unwrap_or(u32::MAX),
        creation_time: mtime,
        last_access_time: time(i64::from(st.st_atime), u64::from(st.st_atime_nsec)),
        last_write_time: mtime,
        change_time: time(i64::from(st.st_ctime), u64::from(st.st_ctime_nsec)),
        file_id: u64::from(st.st_ino),
        rdev: u32::try_from(st.st_rdev).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `depth` components of `width` bytes each, joined by `/`.
    fn deep(depth: usize, width: usize) -> Vec<u8> {
        let component = vec![b'd'; width];
        vec![component; depth].join(&b'/')
    }

    #[test]
    fn a_path_that_fits_one_call_goes_whole() {
        let rel = deep(16, 255);
        assert_eq!(rel.len(), 4095);
        let (steps, last) = split_for_calls(&rel).unwrap();
        assert!(steps.is_empty());
        assert_eq!(last, &rel[..]);
    }

    #[test]
    fn a_longer_path_is_walked_in_steps_that_each_fit_one_call() {
        for (depth, width) in [(17, 255), (40, 255), (3000, 1), (700, 20)] {
            let rel = deep(depth, width);
            let (steps, last) = split_for_calls(&rel).unwrap();
            assert!(!steps.is_empty(), "{depth}×{width}");
            assert!(steps.iter().all(|s| !s.is_empty() && s.len() <= 4095));
            assert_eq!(last, &vec![b'd'; width][..]);
            let mut joined = steps.join(&b'/');
            joined.push(b'/');
            joined.extend_from_slice(last);
            assert_eq!(joined, rel, "the steps and the last name make up the path");
        }
    }

    #[test]
    fn a_component_no_call_takes_is_enametoolong() {
        let rel = vec![b'x'; 5000];
        let e = split_for_calls(&rel).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG));
    }

    #[test]
    fn the_parent_of_a_name_is_its_directory_or_dot() {
        assert_eq!(parent_of(c"a/b/c"), b"a/b");
        assert_eq!(parent_of(c"a"), b".");
    }

    #[test]
    fn times_before_1970_keep_positive_nanoseconds() {
        let t = UNIX_EPOCH - Duration::from_millis(1500);
        let ts = timespec(Some(t));
        assert_eq!((ts.tv_sec, ts.tv_nsec), (-2, 500_000_000));
        assert_eq!(time(ts.tv_sec, ts.tv_nsec as u64), t);
        assert_eq!(timespec(None).tv_nsec, sys::UTIME_OMIT);
    }
}
