//! The few mount system calls the drive makes itself (bind mounts for extra mounting points,
//! unmounting), with `unsafe` confined here.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use fsgate_core::{Error, Result};

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::invalid_argument(
            "mounting point",
            format!("{} contains a NUL byte", path.display()),
        )
    })
}

/// Bind-mounts `source` (a mounted drive's root) on `target`.
pub(crate) fn bind_mount(source: &Path, target: &Path) -> Result<()> {
    let (s, t) = (c_path(source)?, c_path(target)?);
    // SAFETY: both pointers come from live CStrings; the filesystem type and data may be
    // null for MS_BIND.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::io(
            format!("bind-mounting {} on {}", source.display(), target.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// How [`unmount`] went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unmounted {
    /// Gone at once.
    Clean,
    /// Busy: detached lazily; it goes when its last user does.
    Detached,
    /// Nothing was mounted there (already unmounted).
    NotMounted,
}

/// Unmounts `path`: plainly if possible, lazily (`MNT_DETACH`) if busy.
pub(crate) fn unmount(path: &Path) -> Result<Unmounted> {
    let p = c_path(path)?;
    // SAFETY: `p` is a live CString.
    if unsafe { libc::umount2(p.as_ptr(), 0) } == 0 {
        return Ok(Unmounted::Clean);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOENT) => return Ok(Unmounted::NotMounted),
        Some(libc::EBUSY) => {}
        _ => return Err(Error::io(format!("unmounting {}", path.display()), err)),
    }
    // SAFETY: as above.
    if unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(Unmounted::Detached)
    } else {
        Err(Error::io(
            format!("detaching {}", path.display()),
            io::Error::last_os_error(),
        ))
    }
}

/// The effective uid and gid of this process.
pub(crate) fn owner() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}
