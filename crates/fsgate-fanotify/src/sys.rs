//! The only module with `unsafe`: the raw fanotify, `open_by_handle_at(2)` and descriptor
//! calls, each wrapped in a safe function over owned or borrowed descriptors.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::record::FileHandle;

/// `fanotify_init(2)`.
pub(crate) fn fanotify_init(
    flags: libc::c_uint,
    event_f_flags: libc::c_uint,
) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; a non-negative return is a new descriptor
    // that nothing else owns.
    let fd = unsafe { libc::fanotify_init(flags, event_f_flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fanotify_mark(2)`; `dirfd` None means `AT_FDCWD`, `path` None means `dirfd` itself.
pub(crate) fn fanotify_mark(
    group: BorrowedFd<'_>,
    flags: libc::c_uint,
    mask: u64,
    dirfd: Option<BorrowedFd<'_>>,
    path: Option<&Path>,
) -> io::Result<()> {
    let cpath = path
        .map(|p| CString::new(p.as_os_str().as_bytes()))
        .transpose()
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let dirfd = dirfd.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let path_ptr = cpath.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: `group` and `dirfd` are live descriptors for the duration of the call;
    // `path_ptr` is null or points to a NUL-terminated string that outlives the call.
    let rc = unsafe { libc::fanotify_mark(group.as_raw_fd(), flags, mask, dirfd, path_ptr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `read(2)` into `buf`; returns the number of bytes read.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable region of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Writes one `struct fanotify_response` to the group.
pub(crate) fn write_response(group: BorrowedFd<'_>, fd: RawFd, response: u32) -> io::Result<()> {
    let r = libc::fanotify_response { fd, response };
    let len = std::mem::size_of::<libc::fanotify_response>();
    // SAFETY: `r` is a plain repr(C) struct that lives across the call; we pass its size.
    let n = unsafe {
        libc::write(
            group.as_raw_fd(),
            (&r as *const libc::fanotify_response).cast(),
            len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes ownership of a descriptor the kernel installed in our table for an event.
pub(crate) fn own_event_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in this process for this event and nothing else
    // refers to it; the caller passes each event descriptor here exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `open_by_handle_at(2)`: opens the object a file handle names, on the filesystem of
/// `mount_fd` (needs `CAP_DAC_READ_SEARCH`).
pub(crate) fn open_by_handle_at(
    mount_fd: BorrowedFd<'_>,
    handle: &FileHandle,
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }, built in a
    // u32 buffer so it has the struct's 4-byte alignment.
    let words = 2 + handle.bytes.len().div_ceil(4);
    let mut buf = vec![0u32; words];
    buf[0] = handle.bytes.len() as u32;
    buf[1] = handle.handle_type as u32;
    for (i, b) in handle.bytes.iter().enumerate() {
        let word = 2 + i / 4;
        let mut bytes = buf[word].to_ne_bytes();
        bytes[i % 4] = *b;
        buf[word] = u32::from_ne_bytes(bytes);
    }
    // SAFETY: `buf` holds a complete, aligned `struct file_handle` whose `handle_bytes`
    // matches the trailing bytes; it outlives the call; `mount_fd` is live.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            buf.as_mut_ptr().cast::<libc::file_handle>(),
            flags | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor returned by the kernel, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `poll(2)` on one descriptor; returns the `revents` bits (0 on timeout). `timeout_ms` < 0
/// waits forever. `EINTR` is reported as a timeout so callers re-check their stop flag.
pub(crate) fn poll_one(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    timeout_ms: i32,
) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid pollfd array of length 1 that lives across the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(pfd.revents)
}
