//! Opening a file by handle: name_to_handle_at(2) then open_by_handle_at(2).
//!
//! `open_by_handle_at` needs `CAP_DAC_READ_SEARCH`; it opens the inode a handle names without
//! walking a path, so no directory permission is checked on the way. The file's own
//! permission bits still apply to the access asked for.
//!
//! References: name_to_handle_at(2), open_by_handle_at(2).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `MAX_HANDLE_SZ` from `include/linux/exportfs.h`.
const MAX_HANDLE_SZ: usize = 128;

/// `struct file_handle` with room for the largest handle.
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE_SZ],
}

/// Opens `path` by handle with open(2) `flags`; `mount_dir` is any descriptor on the same
/// filesystem (the kernel uses it only to find the mount). Symbolic links are followed unless
/// `flags` holds `O_NOFOLLOW`.
pub fn open_by_handle(mount_dir: &OwnedFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let name = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut handle = FileHandle {
        handle_bytes: MAX_HANDLE_SZ as u32,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE_SZ],
    };
    let mut mount_id: libc::c_int = 0;
    let follow = if flags & libc::O_NOFOLLOW != 0 {
        0
    } else {
        libc::AT_SYMLINK_FOLLOW
    };
    // SAFETY: name is NUL-terminated; handle is a struct file_handle whose handle_bytes says
    // how much room f_handle has; mount_id is a valid int to write to.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            name.as_ptr(),
            &mut handle as *mut FileHandle,
            &mut mount_id as *mut libc::c_int,
            follow,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: mount_dir is an open descriptor; handle was filled in by name_to_handle_at.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount_dir.as_raw_fd(),
            &mut handle as *mut FileHandle,
            flags | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_by_handle_at returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}
