//! The mirror drive: shows a real directory (the *source*) through the `fsgate-vfs` events,
//! written only against the public API. It is a sample to read and copy: every event is a
//! few lines over one system call on the source.
//!
//! # Design
//!
//! **One directory descriptor.** The drive opens the source once, `O_PATH | O_DIRECTORY`,
//! and every event works relative to it with the `*at` system calls (`openat`, `fstatat`,
//! `mkdirat`, `renameat2`, `linkat`, `symlinkat`, `readlinkat`, `unlinkat`, `fchmodat`,
//! `fchownat`, `utimensat`); extended attributes go through `/proc/self/fd/N/…` with the
//! `l*xattr` calls so links are never followed. A path `/a/b` of the drive is `a/b` under
//! the descriptor; `/` is `.`. The source may be renamed or moved while mounted: the
//! descriptor follows it. The kernel walks paths on the mount itself (it asks
//! `on_get_symbolic_link_target` and resolves links), so the paths the events get never
//! go through a link; the final component is never followed (`AT_SYMLINK_NOFOLLOW`,
//! `O_NOFOLLOW`).
//!
//! **Identity.** The drive mounts with `use_file_ids`: each object's inode number on the
//! mount is its inode number in the source, so hard links in the source are hard links on
//! the mount and `ls -i` agrees with the source. The source must be one filesystem (inode
//! numbers of submounts could collide).
//!
//! **Ownership and permissions.** The kernel checks permissions on the mount
//! (`default_permissions`) against the mode, owner and group the source reports, so the
//! drive acts as root on the source. New objects get the caller's uid, and the caller's gid
//! unless the parent directory is set-group-ID, in which case the source filesystem has
//! already given them the directory's group (and, for directories, the set-group-ID bit),
//! exactly as it would for a local caller. The process umask is 0 (the kernel has applied
//! the caller's umask to every mode the events get).
//!
//! **Data.** `on_open_file`/`on_create_file` open the source file read-write (or with the
//! caller's access when the source refuses that) into the handle context; reads and writes
//! are `pread`/`pwrite` on it. With `--passthrough` the handle is also routed to that file
//! (`route_to_file`), so the kernel reads and writes the source file directly and the
//! drive sees no read or write events at all.
//!
//! **Times.** The source filesystem keeps every time; the drive only forwards explicit
//! `utimensat` calls.
//!
//! **Changes made directly in the source** (not through the mount) reach the kernel's
//! caches when they expire: names and attributes within the metadata timeout (10 s by
//! default), data when the kernel then sees a new size or modification time. A program
//! that changes the source and wants the mount to agree at once calls
//! `notify_directory_change`/`notify_file_change` on the drive.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fsgate_core::{Error, Result};
use fsgate_vfs::attributes;
use fsgate_vfs::{
    CleanupFileParams, CloseFileParams, CreateFileParams, CreateHardLinkParams,
    CreateSymbolicLinkParams, DeleteFileParams, EnumerateDirectoryParams, Events, FileInfo,
    FileKind, FlushFileParams, GetEaParams, GetFileInfoParams, GetSymbolicLinkTargetParams,
    GetVolumeLabelParams, GetVolumeSizeParams, IsDirectoryEmptyParams, ListEasParams,
    OpenFileParams, ReadFileParams, RemoveEaParams, RenameOrMoveFileParams,
    SetAllocationSizeParams, SetEaParams, SetFileAttributesParams, SetFileSecurityParams,
    SetFileSizeParams, WriteFileParams,
};
use serde_json::{Map, Value};

use crate::output::Printer;

/// The mirror drive over one source directory.
pub struct MirrorDrive {
    root: OwnedFd,
    passthrough: bool,
    log: Option<Printer>,
}

/// A directory listing: the entries read at its first call, handed out one per call.
#[derive(Default)]
pub struct Listing {
    entries: Vec<(String, FileKind, u64)>,
    next: usize,
}

/// The source file a handle reads and writes; `None` for directories.
type OpenSource = Option<Arc<File>>;

/// The source file of an open file (its first handle's descriptor, shared), for
/// `on_get_file_info` after the name is gone; `None` for directories.
type OpenFile = Option<Arc<File>>;

impl MirrorDrive {
    /// A drive mirroring `source` (an existing directory). With `passthrough`, every opened
    /// file is routed to its source file; with `log`, each event is printed after it ran.
    /// Sets the process umask to 0 (see the module docs).
    pub fn new(source: &Path, passthrough: bool, log: Option<Printer>) -> Result<Self> {
        let root = at::open_dir(source).map_err(|e| {
            Error::from_errno(
                e.raw_os_error().unwrap_or(libc::EIO),
                format!("SOURCE {}: {e}", source.display()),
            )
        })?;
        // SAFETY: umask has no preconditions and cannot fail.
        unsafe { libc::umask(0) };
        Ok(Self {
            root,
            passthrough,
            log,
        })
    }

    fn fd(&self) -> RawFd {
        self.root.as_raw_fd()
    }

    /// Prints `event` when logging; returns `result` unchanged.
    fn report<T>(&self, event: &str, name: &str, result: Result<T>) -> Result<T> {
        if let Some(printer) = self.log {
            let mut map = Map::new();
            map.insert("file_name".into(), Value::String(name.into()));
            if let Ok(pid) = fsgate_vfs::get_originator_process_id() {
                map.insert("process_id".into(), pid.into());
            }
            let code = result.as_ref().err().map_or(0, Error::code);
            map.insert("result_code".into(), code.into());
            printer.event(event, map);
        }
        result
    }

    /// Opens the source file for a handle: read-write when the source allows it (the
    /// kernel's write-back may write through any handle), else with the caller's access.
    fn open_source(&self, rel: &CStr, flags: i32, create: Option<u32>) -> Result<File> {
        let extra = match create {
            Some(_) => libc::O_CREAT | (flags & libc::O_EXCL),
            None => 0,
        };
        let mode = create.unwrap_or(0);
        let base = libc::O_NOFOLLOW | libc::O_CLOEXEC | extra;
        match at::open(self.fd(), rel, base | libc::O_RDWR, mode) {
            Ok(f) => Ok(f),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::EISDIR | libc::ETXTBSY)
                ) =>
            {
                at::open(self.fd(), rel, base | (flags & libc::O_ACCMODE), mode)
                    .map_err(|e| os_error("open", rel, e))
            }
            Err(e) => Err(os_error("open", rel, e)),
        }
    }

    /// Gives a new object the caller's ownership (see the module docs).
    fn own(&self, rel: &CStr) -> Result<()> {
        let uid = fsgate_vfs::get_originator_user_id()?;
        let gid = fsgate_vfs::get_originator_group_id()?;
        let parent_setgid = at::stat(self.fd(), &parent_of(rel))
            .map(|st| st.st_mode & libc::S_ISGID != 0)
            .unwrap_or(false);
        let gid = if parent_setgid { None } else { Some(gid) };
        at::chown(self.fd(), rel, Some(uid), gid).map_err(|e| os_error("chown", rel, e))
    }

    fn create(&self, p: &mut CreateFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let rel = relative(p.file_name)?;
        if p.attributes & attributes::FILE_ATTRIBUTE_DIRECTORY != 0 {
            // The source applies mkdir's own rules: the sticky bit is kept, the
            // set-group-ID bit comes from the parent.
            at::mkdir(self.fd(), &rel, p.mode).map_err(|e| os_error("mkdir", &rel, e))?;
            return self.own(&rel);
        }
        let file = self.open_source(&rel, p.flags, Some(p.mode))?;
        self.own(&rel)?;
        if p.flags & libc::O_TRUNC != 0 {
            file.set_len(0).map_err(|e| os_error("truncate", &rel, e))?;
        }
        self.route(&file, |f| p.route_to_file(f, 0))?;
        *p.handle_context = Some(remember(p.file_context, file));
        Ok(())
    }

    fn open(&self, p: &mut OpenFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        if p.attributes & attributes::FILE_ATTRIBUTE_DIRECTORY != 0 {
            return Ok(());
        }
        let rel = relative(p.file_name)?;
        let file = self.open_source(&rel, p.flags, None)?;
        self.route(&file, |f| p.route_to_file(f, 0))?;
        *p.handle_context = Some(remember(p.file_context, file));
        Ok(())
    }

    /// With `--passthrough`, routes the handle to (a duplicate of) its source file.
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
        let listing = &mut *p.enumeration_context;
        if p.restart {
            let rel = relative(p.directory_name)?;
            *listing = Listing {
                entries: at::list(self.fd(), &rel).map_err(|e| os_error("list", &rel, e))?,
                next: 0,
            };
        }
        if let Some((name, kind, id)) = listing.entries.get(listing.next) {
            listing.next += 1;
            p.file_found = true;
            p.file_name.clone_from(name);
            p.info.kind = *kind;
            p.info.file_id = *id;
        }
        Ok(())
    }

    fn set_attributes(&self, p: &SetFileAttributesParams<'_, OpenFile>) -> Result<()> {
        let rel = relative(p.file_name)?;
        if let Some(mode) = p.mode {
            at::chmod(self.fd(), &rel, mode).map_err(|e| os_error("chmod", &rel, e))?;
        }
        if p.last_access_time.is_some() || p.last_write_time.is_some() {
            at::utimens(self.fd(), &rel, p.last_access_time, p.last_write_time)
                .map_err(|e| os_error("utimensat", &rel, e))?;
        }
        Ok(())
    }

    /// The file a size or allocation change goes through: a fresh write-only descriptor.
    fn writable(&self, name: &str) -> Result<File> {
        let rel = relative(name)?;
        at::open(
            self.fd(),
            &rel,
            libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| os_error("open", &rel, e))
    }
}

/// The `fsgate-vfs` events, each over one system call on the source.
impl Events for MirrorDrive {
    type FileContext = OpenFile;
    type HandleContext = OpenSource;
    type EnumerationContext = Listing;

    fn on_get_volume_label(&self, p: &mut GetVolumeLabelParams) -> Result<()> {
        p.buffer = "fsgate-mirror".into();
        Ok(())
    }

    fn on_get_volume_size(&self, p: &mut GetVolumeSizeParams) -> Result<()> {
        let st = at::statvfs(self.fd()).map_err(|e| Error::io("statvfs of the source", e))?;
        let to_sectors =
            |blocks: u64| blocks.saturating_mul(st.f_frsize) / u64::from(p.sector_size);
        p.total_sectors = to_sectors(st.f_blocks);
        p.available_sectors = to_sectors(st.f_bavail);
        p.total_files = st.f_files;
        p.free_files = st.f_ffree;
        Ok(())
    }

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, OpenFile>) -> Result<()> {
        // An open file is asked through its descriptor: it may have lost its name.
        if let Some(Some(file)) = p.file_context.as_deref() {
            let st = at::fstat(file).map_err(|e| Error::io(format!("fstat {}", p.file_name), e))?;
            p.file_exists = true;
            p.info = file_info(&st);
            return Ok(());
        }
        let rel = relative(p.file_name)?;
        match at::stat(self.fd(), &rel) {
            Ok(st) => {
                p.file_exists = true;
                p.info = file_info(&st);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(os_error("stat", &rel, e)),
        }
    }

    fn on_create_file(&self, p: &mut CreateFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let r = self.create(p);
        self.report("create_file", p.file_name, r)
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let r = self.open(p);
        self.report("open_file", p.file_name, r)
    }

    fn on_cleanup_file(&self, p: &mut CleanupFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        self.report("cleanup_file", p.file_name, Ok(()))
    }

    fn on_close_file(&self, p: &mut CloseFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        self.report("close_file", p.file_name, Ok(()))
    }

    fn on_enumerate_directory(
        &self,
        p: &mut EnumerateDirectoryParams<'_, OpenFile, OpenSource, Listing>,
    ) -> Result<()> {
        let r = self.enumerate(p);
        if r.is_err() || p.restart {
            return self.report("enumerate_directory", p.directory_name, r);
        }
        r
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let file = p.handle_context.as_ref().ok_or_else(|| {
            Error::from_errno(libc::EBADF, format!("{} is not open", p.file_name))
        })?;
        let mut done = 0;
        while done < p.buffer.len() {
            match file.read_at(&mut p.buffer[done..], p.position + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("reading {}", p.file_name), e)),
            }
        }
        p.bytes_read = done;
        Ok(())
    }

    fn on_write_file(&self, p: &mut WriteFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let file = p.handle_context.as_ref().ok_or_else(|| {
            Error::from_errno(libc::EBADF, format!("{} is not open", p.file_name))
        })?;
        file.write_all_at(p.buffer, p.position)
            .map_err(|e| Error::io(format!("writing {}", p.file_name), e))?;
        p.bytes_written = p.buffer.len();
        Ok(())
    }

    fn on_set_file_size(&self, p: &mut SetFileSizeParams<'_, OpenFile>) -> Result<()> {
        let r = self
            .writable(p.file_name)
            .and_then(|f| f.set_len(p.size).map_err(|e| Error::io("truncate", e)));
        self.report("set_file_size", p.file_name, r)
    }

    fn on_set_allocation_size(&self, p: &mut SetAllocationSizeParams<'_, OpenFile>) -> Result<()> {
        let r = self.writable(p.file_name).and_then(|f| {
            at::allocate(&f, p.allocation_size).map_err(|e| Error::io("fallocate", e))
        });
        self.report("set_allocation_size", p.file_name, r)
    }

    fn on_set_file_attributes(&self, p: &mut SetFileAttributesParams<'_, OpenFile>) -> Result<()> {
        let r = self.set_attributes(p);
        self.report("set_file_attributes", p.file_name, r)
    }

    fn on_set_file_security(&self, p: &mut SetFileSecurityParams<'_, OpenFile>) -> Result<()> {
        let r = relative(p.file_name).and_then(|rel| {
            at::chown(self.fd(), &rel, p.owner, p.group).map_err(|e| os_error("chown", &rel, e))
        });
        self.report("set_file_security", p.file_name, r)
    }

    fn on_rename_or_move_file(&self, p: &mut RenameOrMoveFileParams<'_, OpenFile>) -> Result<()> {
        let r = (|| {
            let (from, to) = (relative(p.file_name)?, relative(p.new_file_name)?);
            at::rename(self.fd(), &from, &to, !p.replace_existing)
                .map_err(|e| os_error("rename", &from, e))
        })();
        self.report("rename_or_move_file", p.file_name, r)
    }

    /// Says "empty" without looking: the source's own `unlinkat(AT_REMOVEDIR)` and
    /// `renameat` refuse a non-empty directory with `ENOTEMPTY`, atomically, where a listing
    /// first would cost five system calls and could be stale by the time of the delete.
    fn on_is_directory_empty(&self, p: &mut IsDirectoryEmptyParams<'_>) -> Result<()> {
        p.is_empty = Some(true);
        Ok(())
    }

    fn on_delete_file(&self, p: &mut DeleteFileParams<'_, OpenFile>) -> Result<()> {
        let r = relative(p.file_name).and_then(|rel| {
            at::unlink(self.fd(), &rel, p.is_directory).map_err(|e| os_error("unlink", &rel, e))
        });
        self.report("delete_file", p.file_name, r)
    }

    fn on_flush_file(&self, p: &mut FlushFileParams<'_, OpenFile, OpenSource>) -> Result<()> {
        let r = match p.handle_context.as_ref() {
            Some(f) if p.data_only => f.sync_data(),
            Some(f) => f.sync_all(),
            // A directory: sync it through a descriptor of its own.
            None => relative(p.file_name)
                .and_then(|rel| {
                    at::open(
                        self.fd(),
                        &rel,
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                        0,
                    )
                    .map_err(|e| os_error("open", &rel, e))
                })
                .map_err(|e| io::Error::from_raw_os_error(e.errno()))
                .and_then(|d| d.sync_all()),
        }
        .map_err(|e| Error::io(format!("fsync {}", p.file_name), e));
        self.report("flush_file", p.file_name, r)
    }

    fn on_create_hard_link(&self, p: &mut CreateHardLinkParams<'_>) -> Result<()> {
        let r = (|| {
            let (from, to) = (relative(p.file_name)?, relative(p.link_name)?);
            at::link(self.fd(), &from, &to).map_err(|e| os_error("link", &to, e))
        })();
        self.report("create_hard_link", p.link_name, r)
    }

    fn on_create_symbolic_link(&self, p: &mut CreateSymbolicLinkParams<'_>) -> Result<()> {
        let r = (|| {
            let rel = relative(p.file_name)?;
            let target = c_string(p.target)?;
            at::symlink(&target, self.fd(), &rel).map_err(|e| os_error("symlink", &rel, e))?;
            self.own(&rel)
        })();
        self.report("create_symbolic_link", p.file_name, r)
    }

    fn on_get_symbolic_link_target(&self, p: &mut GetSymbolicLinkTargetParams<'_>) -> Result<()> {
        let rel = relative(p.file_name)?;
        let target = at::readlink(self.fd(), &rel).map_err(|e| os_error("readlink", &rel, e))?;
        p.target = String::from_utf8(target).map_err(|_| {
            Error::invalid_argument(
                "symbolic link target",
                format!("{} is not UTF-8", p.file_name),
            )
        })?;
        Ok(())
    }

    fn on_get_ea(&self, p: &mut GetEaParams<'_>) -> Result<()> {
        let (path, name) = (self.proc_path(p.file_name)?, c_string(p.name)?);
        p.value = at::get_xattr(&path, &name).map_err(|e| os_error("getxattr", &name, e))?;
        Ok(())
    }

    fn on_set_ea(&self, p: &mut SetEaParams<'_>) -> Result<()> {
        let (path, name) = (self.proc_path(p.file_name)?, c_string(p.name)?);
        let flags = if p.create_only {
            libc::XATTR_CREATE
        } else if p.replace_only {
            libc::XATTR_REPLACE
        } else {
            0
        };
        let r =
            at::set_xattr(&path, &name, p.value, flags).map_err(|e| os_error("setxattr", &name, e));
        self.report("set_ea", p.file_name, r)
    }

    fn on_list_eas(&self, p: &mut ListEasParams<'_>) -> Result<()> {
        let path = self.proc_path(p.file_name)?;
        let names = at::list_xattr(&path).map_err(|e| os_error("listxattr", &path, e))?;
        p.names = names
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        Ok(())
    }

    fn on_remove_ea(&self, p: &mut RemoveEaParams<'_>) -> Result<()> {
        let (path, name) = (self.proc_path(p.file_name)?, c_string(p.name)?);
        let r = at::remove_xattr(&path, &name).map_err(|e| os_error("removexattr", &name, e));
        self.report("remove_ea", p.file_name, r)
    }
}

impl MirrorDrive {
    /// `/proc/self/fd/N/a/b`: the source object as a path the `l*xattr` calls accept.
    fn proc_path(&self, name: &str) -> Result<CString> {
        let rel = relative(name)?;
        let mut path = format!("/proc/self/fd/{}/", self.fd()).into_bytes();
        path.extend_from_slice(rel.to_bytes());
        CString::new(path).map_err(|_| Error::invalid_argument("file name", "contains a NUL byte"))
    }
}

/// Shares the first handle's descriptor with the file context; returns the handle's.
fn remember(context: &mut OpenFile, file: File) -> Arc<File> {
    let file = Arc::new(file);
    if context.is_none() {
        *context = Some(Arc::clone(&file));
    }
    file
}

/// The drive path `/a/b` as `a/b` relative to the source descriptor (`/` is `.`).
fn relative(name: &str) -> Result<CString> {
    let rel = name.trim_start_matches('/');
    c_string(if rel.is_empty() { "." } else { rel })
}

fn c_string(s: &str) -> Result<CString> {
    CString::new(s)
        .map_err(|_| Error::invalid_argument("name", format!("{s:?} contains a NUL byte")))
}

/// `a/b` → `a`; `a` → `.`.
fn parent_of(rel: &CStr) -> CString {
    let bytes = rel.to_bytes();
    match bytes.iter().rposition(|b| *b == b'/') {
        Some(i) => CString::new(&bytes[..i]).unwrap_or_else(|_| c".".into()),
        None => c".".into(),
    }
}

/// An errno error naming the operation and the object.
fn os_error(op: &str, what: &CStr, e: io::Error) -> Error {
    Error::from_errno(
        e.raw_os_error().unwrap_or(libc::EIO),
        format!(
            "{op} {}: {e}",
            OsStr::from_bytes(what.to_bytes()).to_string_lossy()
        ),
    )
}

fn time(sec: i64, nsec: i64) -> SystemTime {
    let nanos = Duration::from_nanos(u64::try_from(nsec).unwrap_or(0));
    if sec >= 0 {
        UNIX_EPOCH + Duration::from_secs(sec as u64) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + nanos
    }
}

/// What `stat` of the source says, as the events report it.
fn file_info(st: &libc::stat) -> FileInfo {
    let kind = FileKind::from_mode(st.st_mode).unwrap_or(FileKind::File);
    let mtime = time(st.st_mtime, st.st_mtime_nsec);
    FileInfo {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        allocation_size: Some((st.st_blocks as u64).saturating_mul(512)),
        hard_link_count: st.st_nlink as u32,
        creation_time: mtime,
        last_access_time: time(st.st_atime, st.st_atime_nsec),
        last_write_time: mtime,
        change_time: time(st.st_ctime, st.st_ctime_nsec),
        file_id: st.st_ino,
        rdev: u32::try_from(st.st_rdev).unwrap_or(0),
    }
}

/// Safe wrappers over the `*at` system calls the drive makes, relative to a directory
/// descriptor; `unsafe` stays here.
mod at {
    use super::*;

    fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    }

    /// `open(path, O_PATH | O_DIRECTORY)`: the source's descriptor.
    pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `c` is a live NUL-terminated string.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// `openat(2)`.
    pub fn open(dir: RawFd, rel: &CStr, flags: i32, mode: u32) -> io::Result<File> {
        // SAFETY: `rel` is NUL-terminated; `dir` is a live descriptor owned by the drive.
        let fd = check(unsafe { libc::openat(dir, rel.as_ptr(), flags, mode) })?;
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// `fstatat(2)` without following a final link.
    pub fn stat(dir: RawFd, rel: &CStr) -> io::Result<libc::stat> {
        // SAFETY: an all-zero `stat` is a valid value for the kernel to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `rel` is NUL-terminated and `st` is writable for the call.
        check(unsafe { libc::fstatat(dir, rel.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(st)
    }

    /// `fstat(2)`.
    pub fn fstat(file: &File) -> io::Result<libc::stat> {
        // SAFETY: an all-zero `stat` is a valid value for the kernel to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `file` is a live descriptor and `st` is writable for the call.
        check(unsafe { libc::fstat(file.as_raw_fd(), &mut st) })?;
        Ok(st)
    }

    /// `fstatvfs(2)`.
    pub fn statvfs(dir: RawFd) -> io::Result<libc::statvfs> {
        // SAFETY: an all-zero `statvfs` is valid for the kernel to overwrite.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is writable for the call.
        check(unsafe { libc::fstatvfs(dir, &mut st) })?;
        Ok(st)
    }

    /// `mkdirat(2)`.
    pub fn mkdir(dir: RawFd, rel: &CStr, mode: u32) -> io::Result<()> {
        // SAFETY: `rel` is NUL-terminated.
        check(unsafe { libc::mkdirat(dir, rel.as_ptr(), mode) }).map(drop)
    }

    /// `fchmodat(2)`.
    pub fn chmod(dir: RawFd, rel: &CStr, mode: u32) -> io::Result<()> {
        // SAFETY: `rel` is NUL-terminated.
        check(unsafe { libc::fchmodat(dir, rel.as_ptr(), mode, 0) }).map(drop)
    }

    /// `fchownat(2)` without following a final link; `None` leaves that id alone.
    pub fn chown(dir: RawFd, rel: &CStr, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let (u, g) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
        // SAFETY: `rel` is NUL-terminated; -1 (u32::MAX) means "unchanged".
        check(unsafe { libc::fchownat(dir, rel.as_ptr(), u, g, libc::AT_SYMLINK_NOFOLLOW) })
            .map(drop)
    }

    fn timespec(t: Option<SystemTime>) -> libc::timespec {
        match t {
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            Some(t) => {
                let (sec, nsec) = match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
                    Err(e) => {
                        let d = e.duration();
                        let (s, n) = (-(d.as_secs() as i64), i64::from(d.subsec_nanos()));
                        if n == 0 {
                            (s, 0)
                        } else {
                            (s - 1, 1_000_000_000 - n)
                        }
                    }
                };
                libc::timespec {
                    tv_sec: sec,
                    tv_nsec: nsec,
                }
            }
        }
    }

    /// `utimensat(2)` without following a final link; `None` leaves that time alone.
    pub fn utimens(
        dir: RawFd,
        rel: &CStr,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> io::Result<()> {
        let times = [timespec(atime), timespec(mtime)];
        // SAFETY: `rel` is NUL-terminated and `times` holds two timespecs.
        check(unsafe {
            libc::utimensat(dir, rel.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW)
        })
        .map(drop)
    }

    /// `renameat2(2)`, with `RENAME_NOREPLACE` when `no_replace`.
    pub fn rename(dir: RawFd, from: &CStr, to: &CStr, no_replace: bool) -> io::Result<()> {
        let flags = if no_replace {
            libc::RENAME_NOREPLACE
        } else {
            0
        };
        // SAFETY: both names are NUL-terminated.
        check(unsafe { libc::renameat2(dir, from.as_ptr(), dir, to.as_ptr(), flags) }).map(drop)
    }

    /// `unlinkat(2)`; `AT_REMOVEDIR` for directories.
    pub fn unlink(dir: RawFd, rel: &CStr, directory: bool) -> io::Result<()> {
        let flags = if directory { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: `rel` is NUL-terminated.
        check(unsafe { libc::unlinkat(dir, rel.as_ptr(), flags) }).map(drop)
    }

    /// `linkat(2)`, not following a link named by `from`.
    pub fn link(dir: RawFd, from: &CStr, to: &CStr) -> io::Result<()> {
        // SAFETY: both names are NUL-terminated.
        check(unsafe { libc::linkat(dir, from.as_ptr(), dir, to.as_ptr(), 0) }).map(drop)
    }

    /// `symlinkat(2)`.
    pub fn symlink(target: &CStr, dir: RawFd, rel: &CStr) -> io::Result<()> {
        // SAFETY: both strings are NUL-terminated.
        check(unsafe { libc::symlinkat(target.as_ptr(), dir, rel.as_ptr()) }).map(drop)
    }

    /// `readlinkat(2)`.
    pub fn readlink(dir: RawFd, rel: &CStr) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: `buf` is writable for `buf.len()` bytes.
        let n = unsafe { libc::readlinkat(dir, rel.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// `fallocate(2)` mode 0 from 0 to `len`.
    pub fn allocate(file: &File, len: u64) -> io::Result<()> {
        let len = i64::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: `file` is a live descriptor.
        check(unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) }).map(drop)
    }

    /// The entries of a directory (without `.` and `..`): name, kind, inode number.
    pub fn list(dir: RawFd, rel: &CStr) -> io::Result<Vec<(String, FileKind, u64)>> {
        let d = open(
            dir,
            rel,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )?;
        let fd = d.as_raw_fd();
        // SAFETY: fdopendir takes over `fd` on success; `d` is forgotten then so it is closed
        // once, by closedir.
        let stream = unsafe { libc::fdopendir(fd) };
        if stream.is_null() {
            return Err(io::Error::last_os_error());
        }
        std::mem::forget(d);
        let mut out = Vec::new();
        loop {
            // SAFETY: `stream` is a live DIR*; readdir returns null at the end.
            let entry = unsafe { libc::readdir64(stream) };
            if entry.is_null() {
                break;
            }
            // SAFETY: a non-null entry points to a dirent64 valid until the next readdir.
            let (name, d_type, ino) = unsafe {
                let e = &*entry;
                (
                    CStr::from_ptr(e.d_name.as_ptr()).to_bytes().to_vec(),
                    e.d_type,
                    e.d_ino,
                )
            };
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match d_type {
                libc::DT_DIR => FileKind::Directory,
                libc::DT_LNK => FileKind::Symlink,
                _ => FileKind::File,
            };
            out.push((String::from_utf8_lossy(&name).into_owned(), kind, ino));
        }
        // SAFETY: `stream` is live and closed exactly once.
        unsafe { libc::closedir(stream) };
        Ok(out)
    }

    /// Calls `f(buffer, size)` once to learn the size and again to fill the buffer.
    fn sized(mut f: impl FnMut(*mut libc::c_void, usize) -> isize) -> io::Result<Vec<u8>> {
        loop {
            let n = f(std::ptr::null_mut(), 0);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut buf = vec![0u8; n as usize];
            let m = f(buf.as_mut_ptr().cast(), buf.len());
            if m >= 0 {
                buf.truncate(m as usize);
                return Ok(buf);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ERANGE) {
                return Err(e);
            }
        }
    }

    /// `lgetxattr(2)`.
    pub fn get_xattr(path: &CStr, name: &CStr) -> io::Result<Vec<u8>> {
        // SAFETY: both strings are NUL-terminated; the buffer pointer/size pair is valid.
        sized(|b, n| unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), b, n) })
    }

    /// `llistxattr(2)`.
    pub fn list_xattr(path: &CStr) -> io::Result<Vec<u8>> {
        // SAFETY: `path` is NUL-terminated; the buffer pointer/size pair is valid.
        sized(|b, n| unsafe { libc::llistxattr(path.as_ptr(), b.cast(), n) })
    }

    /// `lsetxattr(2)`.
    pub fn set_xattr(path: &CStr, name: &CStr, value: &[u8], flags: i32) -> io::Result<()> {
        // SAFETY: both strings are NUL-terminated; `value` is readable for its length.
        check(unsafe {
            libc::lsetxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                flags,
            )
        })
        .map(drop)
    }

    /// `lremovexattr(2)`.
    pub fn remove_xattr(path: &CStr, name: &CStr) -> io::Result<()> {
        // SAFETY: both strings are NUL-terminated.
        check(unsafe { libc::lremovexattr(path.as_ptr(), name.as_ptr()) }).map(drop)
    }
}
