//! The few mount system calls the drive makes itself (bind mounts for extra mounting points,
//! unmounting, the watcher that removes a bind mount when the serving process dies), with
//! `unsafe` confined here.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// `statfs.f_type` of a FUSE mount.
const FUSE_SUPER_MAGIC: libc::c_long = 0x6573_5546;

/// A small child process that lazily unmounts one mounting point when the serving process
/// dies: FUSE's `auto_unmount` helper removes only the primary mount, and only one served
/// through `/dev/fuse`; a bind mount, or a mount served over io_uring, of a dead server would
/// otherwise stay behind (every access failing).
///
/// The child holds the read end of a pipe whose write end only this process has. When this
/// process exits — however it exits, `SIGKILL` included — the kernel closes the write end,
/// the child's `read` returns 0 and it unmounts. [`disarm`](Self::disarm) (normal unmount)
/// writes one byte first, and the child exits without touching the mount. Before unmounting,
/// the child checks that the path still shows a FUSE mount or a dead one (`statfs` failing),
/// so a mount someone else put there since is left alone. The child closes
/// every other descriptor it inherited (standard streams and `/dev/fuse` clones included),
/// so it never keeps the FUSE connection or a reader's pipe alive, and leaves the process
/// group so a terminal's `SIGINT` spares it.
pub(crate) struct UnmountWatcher {
    pid: libc::pid_t,
    pipe: Option<OwnedFd>,
}

impl UnmountWatcher {
    /// Starts the watcher for `target`.
    pub(crate) fn start(target: &Path) -> Result<Self> {
        let path = c_path(target)?;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Error::io(
                "creating the unmount watcher's pipe",
                io::Error::last_os_error(),
            ));
        }
        let [read_end, write_end] = fds;
        // SAFETY: fork has no preconditions. In the child only async-signal-safe calls follow
        // (setpgid, close, syscall(close_range), read, statfs, umount2, _exit), on memory allocated
        // before the fork, as required after forking a multi-threaded process.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above; every pointer is to the live CString or a local byte.
            unsafe {
                libc::setpgid(0, 0);
                libc::close(write_end);
                if read_end > 0 {
                    libc::syscall(libc::SYS_close_range, 0u32, (read_end - 1) as u32, 0u32);
                }
                libc::syscall(libc::SYS_close_range, (read_end + 1) as u32, u32::MAX, 0u32);
                let mut byte = 0u8;
                let n = loop {
                    let n = libc::read(read_end, (&mut byte as *mut u8).cast(), 1);
                    if n >= 0 || *libc::__errno_location() != libc::EINTR {
                        break n;
                    }
                };
                let mut fs: libc::statfs = std::mem::zeroed();
                if n == 0
                    && (libc::statfs(path.as_ptr(), &mut fs) != 0 || fs.f_type == FUSE_SUPER_MAGIC)
                {
                    libc::umount2(path.as_ptr(), libc::MNT_DETACH);
                }
                libc::_exit(0);
            }
        }
        // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
        let (read_end, write_end) = unsafe {
            (
                OwnedFd::from_raw_fd(read_end),
                OwnedFd::from_raw_fd(write_end),
            )
        };
        drop(read_end);
        if pid < 0 {
            return Err(Error::io(
                "starting the unmount watcher",
                io::Error::last_os_error(),
            ));
        }
        Ok(Self {
            pid,
            pipe: Some(write_end),
        })
    }

    /// Tells the watcher the mounting point is being removed normally, and reaps it.
    pub(crate) fn disarm(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(pipe) = self.pipe.take() else {
            return;
        };
        let byte = 1u8;
        // SAFETY: `pipe` is a live descriptor and `byte` is readable. A watcher that already
        // died makes this fail with EPIPE (SIGPIPE is ignored by Rust programs), which is fine.
        unsafe { libc::write(pipe.as_raw_fd(), (&byte as *const u8).cast(), 1) };
        drop(pipe);
        let mut status = 0;
        // SAFETY: `self.pid` is our own child, not reaped yet.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

impl Drop for UnmountWatcher {
    fn drop(&mut self) {
        self.stop();
    }
}
