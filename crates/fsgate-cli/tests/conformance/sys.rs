//! Safe wrappers over the system calls the conformance checks and the random-operations test
//! make that std does not offer: special files, `*at` calls relative to a directory
//! descriptor, `renameat2`, `utimensat` with `UTIME_NOW`/`UTIME_OMIT`, `fallocate`,
//! `copy_file_range` and `mmap`. Each takes paths and borrowed descriptors and returns
//! `io::Result`; the `unsafe` stays in here, one `// SAFETY:` line per block.

#![allow(dead_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `path` as a C string (panics on an interior NUL, which no test path has).
pub fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cvt_size(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// The errno's symbolic name (`ENOENT`), or `errno N` for one this table lacks.
pub fn errno_name(n: i32) -> String {
    let known = [
        (libc::EPERM, "EPERM"),
        (libc::ENOENT, "ENOENT"),
        (libc::EIO, "EIO"),
        (libc::ENXIO, "ENXIO"),
        (libc::EBADF, "EBADF"),
        (libc::EAGAIN, "EAGAIN"),
        (libc::ENOMEM, "ENOMEM"),
        (libc::EACCES, "EACCES"),
        (libc::EFAULT, "EFAULT"),
        (libc::EBUSY, "EBUSY"),
        (libc::EEXIST, "EEXIST"),
        (libc::EXDEV, "EXDEV"),
        (libc::ENODEV, "ENODEV"),
        (libc::ENOTDIR, "ENOTDIR"),
        (libc::EISDIR, "EISDIR"),
        (libc::EINVAL, "EINVAL"),
        (libc::ETXTBSY, "ETXTBSY"),
        (libc::EFBIG, "EFBIG"),
        (libc::ENOSPC, "ENOSPC"),
        (libc::ESPIPE, "ESPIPE"),
        (libc::EROFS, "EROFS"),
        (libc::EMLINK, "EMLINK"),
        (libc::ENAMETOOLONG, "ENAMETOOLONG"),
        (libc::ENOSYS, "ENOSYS"),
        (libc::ENOTEMPTY, "ENOTEMPTY"),
        (libc::ELOOP, "ELOOP"),
        (libc::ENODATA, "ENODATA"),
        (libc::ENOTSOCK, "ENOTSOCK"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::EADDRINUSE, "EADDRINUSE"),
        (libc::ECONNREFUSED, "ECONNREFUSED"),
        (libc::ENOTCONN, "ENOTCONN"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == n)
        .map_or_else(|| format!("errno {n}"), |(_, s)| s.to_string())
}

/// The errno name of an error from a system call (`no errno` for an error std made up).
pub fn error_name(err: &io::Error) -> String {
    err.raw_os_error()
        .map_or_else(|| format!("no errno ({err})"), errno_name)
}

/// `mknod(path, mode, makedev(major, minor))`: `mode` carries the `S_IF*` type bits.
pub fn mknod(path: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let p = cstring(path);
    // SAFETY: `p` is a NUL-terminated path; mknod reads nothing else.
    cvt(unsafe { libc::mknod(p.as_ptr(), mode, libc::makedev(major, minor)) }).map(drop)
}

/// `mkfifo(path, mode)`.
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let p = cstring(path);
    // SAFETY: `p` is a NUL-terminated path.
    cvt(unsafe { libc::mkfifo(p.as_ptr(), mode) }).map(drop)
}

/// `open(path, flags, mode)` with any flags, including those std refuses to combine
/// (`O_RDONLY|O_TRUNC`) or does not offer (`O_PATH`).
pub fn open(path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    openat(None, path, flags, mode)
}

/// `openat(dir, path, flags | O_CLOEXEC, mode)`; `None` for `AT_FDCWD`.
pub fn openat(dir: Option<BorrowedFd>, path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let p = cstring(path);
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `p` is NUL-terminated; `dirfd` is AT_FDCWD or a descriptor borrowed for the call.
    let fd = cvt(unsafe { libc::openat(dirfd, p.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mkdirat(dir, path, mode)`.
pub fn mkdirat(dir: BorrowedFd, path: &Path, mode: u32) -> io::Result<()> {
    let p = cstring(path);
    // SAFETY: `p` is NUL-terminated; `dir` is a descriptor borrowed for the call.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), p.as_ptr(), mode) }).map(drop)
}

/// `fstatat(dir, path, AT_SYMLINK_NOFOLLOW)`; `None` for `AT_FDCWD`.
pub fn lstatat(dir: Option<BorrowedFd>, path: &Path) -> io::Result<libc::stat> {
    let p = cstring(path);
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is NUL-terminated, `st` is writable, `dirfd` is valid for the call.
    cvt(unsafe { libc::fstatat(dirfd, p.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// `unlinkat(dir, path, flags)` (`AT_REMOVEDIR` for a directory); `None` for `AT_FDCWD`.
pub fn unlinkat(dir: Option<BorrowedFd>, path: &Path, flags: i32) -> io::Result<()> {
    let p = cstring(path);
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `p` is NUL-terminated; `dirfd` is valid for the call.
    cvt(unsafe { libc::unlinkat(dirfd, p.as_ptr(), flags) }).map(drop)
}

/// `renameat2(AT_FDCWD, from, AT_FDCWD, to, flags)` (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
pub fn rename2(from: &Path, to: &Path, flags: u32) -> io::Result<()> {
    let (f, t) = (cstring(from), cstring(to));
    // SAFETY: both paths are NUL-terminated.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    cvt(rc).map(drop)
}

/// `fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW)`: changes a symlink's own mode
/// where the filesystem allows it.
pub fn chmod_nofollow(path: &Path, mode: u32) -> io::Result<()> {
    let p = cstring(path);
    // SAFETY: `p` is NUL-terminated.
    cvt(unsafe { libc::fchmodat(libc::AT_FDCWD, p.as_ptr(), mode, libc::AT_SYMLINK_NOFOLLOW) })
        .map(drop)
}

/// `truncate(path, len)`.
pub fn truncate(path: &Path, len: i64) -> io::Result<()> {
    let p = cstring(path);
    // SAFETY: `p` is NUL-terminated.
    cvt(unsafe { libc::truncate(p.as_ptr(), len) }).map(drop)
}

/// `f_namemax` of `statvfs(path)`.
pub fn name_max(path: &Path) -> io::Result<u64> {
    let p = cstring(path);
    // SAFETY: an all-zero `statvfs` is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is NUL-terminated and `st` is writable.
    cvt(unsafe { libc::statvfs(p.as_ptr(), &mut st) })?;
    Ok(st.f_namemax)
}

/// One time of a `utimensat` call.
#[derive(Clone, Copy)]
pub enum SetTime {
    /// `UTIME_NOW`.
    Now,
    /// `UTIME_OMIT`: leave this time as it is.
    Omit,
    /// An explicit time, seconds and nanoseconds since the epoch.
    At(i64, i64),
}

impl SetTime {
    fn timespec(self) -> libc::timespec {
        let (tv_sec, tv_nsec) = match self {
            SetTime::Now => (0, libc::UTIME_NOW),
            SetTime::Omit => (0, libc::UTIME_OMIT),
            SetTime::At(s, ns) => (s, ns),
        };
        libc::timespec { tv_sec, tv_nsec }
    }
}

/// `utimensat(AT_FDCWD, path, [atime, mtime], AT_SYMLINK_NOFOLLOW)`.
pub fn utimes_nofollow(path: &Path, atime: SetTime, mtime: SetTime) -> io::Result<()> {
    let p = cstring(path);
    let times = [atime.timespec(), mtime.timespec()];
    // SAFETY: `p` is NUL-terminated and `times` holds the two timespecs utimensat reads.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            p.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    cvt(rc).map(drop)
}

/// `fallocate(fd, mode, offset, len)`.
pub fn fallocate(fd: BorrowedFd, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate only reads its integer arguments; `fd` is valid for the call.
    cvt(unsafe { libc::fallocate(fd.as_raw_fd(), mode, offset as i64, len as i64) }).map(drop)
}

/// `copy_file_range(from, off_in, to, off_out, len, 0)`: `None` offsets use and advance
/// the descriptors' file offsets. Returns the bytes copied.
pub fn copy_file_range(
    from: BorrowedFd,
    off_in: Option<u64>,
    to: BorrowedFd,
    off_out: Option<u64>,
    len: usize,
) -> io::Result<usize> {
    let mut in_at = off_in.map(|o| o as i64);
    let mut out_at = off_out.map(|o| o as i64);
    let ptr = |o: &mut Option<i64>| o.as_mut().map_or(std::ptr::null_mut(), |o| o as *mut i64);
    // SAFETY: the offsets are null or point to locals that outlive the call; the
    // descriptors are borrowed for the call.
    let n = unsafe {
        libc::copy_file_range(
            from.as_raw_fd(),
            ptr(&mut in_at),
            to.as_raw_fd(),
            ptr(&mut out_at),
            len,
            0,
        )
    };
    cvt_size(n)
}

/// `posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)`: drops the file's clean pages from the page
/// cache, so the next reads come from the filesystem (or the drive) itself.
pub fn drop_cached_pages(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: posix_fadvise only reads its integer arguments; `fd` is valid for the call.
    match unsafe { libc::posix_fadvise(fd.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) } {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// `lseek(fd, 0, SEEK_CUR)`: the file offset.
pub fn file_offset(fd: BorrowedFd) -> io::Result<u64> {
    // SAFETY: lseek only reads its integer arguments; `fd` is valid for the call.
    let at = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_CUR) };
    if at < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(at as u64)
    }
}

/// A memory mapping of part of a file, unmapped on drop.
pub struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    /// `mmap(NULL, len, prot, flags, fd, offset)`: `offset` must be page-aligned and `len`
    /// non-zero. Only bytes below the file's size may be touched (past it: SIGBUS).
    pub fn new(fd: BorrowedFd, offset: u64, len: usize, prot: i32, flags: i32) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel (NULL hint) aliases no Rust object.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                flags,
                fd.as_raw_fd(),
                offset as i64,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { addr, len })
    }

    /// The mapped bytes (the mapping must be readable).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `addr` maps `len` bytes for the life of `self`; other processes may
        // change a shared mapping's bytes, which the tests only read as plain data.
        unsafe { std::slice::from_raw_parts(self.addr.cast(), self.len) }
    }

    /// The mapped bytes, writable (the mapping must be writable).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes this the only slice of them.
        unsafe { std::slice::from_raw_parts_mut(self.addr.cast(), self.len) }
    }

    /// `msync(MS_SYNC)`: writes the mapping's dirty pages to the file.
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: `addr`/`len` are exactly this mapping.
        cvt(unsafe { libc::msync(self.addr, self.len, libc::MS_SYNC) }).map(drop)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` are exactly this mapping, and no slice of it outlives `self`.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

/// `pread` into all of `buf`, stopping early only at end of file; returns the bytes read.
pub fn read_fully_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
