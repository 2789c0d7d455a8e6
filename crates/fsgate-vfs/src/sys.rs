//! The few mount system calls the drive makes itself (bind mounts for extra mounting points,
//! unmounting, the watcher that removes a bind mount when the serving process dies), with
//! `unsafe` confined here.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use fsgate_core::mountinfo::MountEntry;
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

/// The identity of one mount, never given to another while the system runs
/// (`STATX_MNT_ID_UNIQUE`, Linux 6.8+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MountId(u64);

/// `STATX_MNT_ID_UNIQUE`, which rustix does not name yet.
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

impl MountId {
    /// The identity of the mount on top of `path`, or `None` where the kernel gives mounts
    /// none (before Linux 6.8) or `path` cannot be reached. It is read without asking the
    /// filesystem (`AT_STATX_DONT_SYNC`: no FUSE request, so a dead or not yet serving
    /// server cannot hold it up), and allocates nothing, so the unmount watcher's child may
    /// call it after `fork`.
    pub(crate) fn of(path: &CStr) -> Option<Self> {
        let st = rustix::fs::statx(
            rustix::fs::CWD,
            path,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW | rustix::fs::AtFlags::STATX_DONT_SYNC,
            rustix::fs::StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE),
        )
        .ok()?;
        (st.stx_mask & STATX_MNT_ID_UNIQUE != 0).then_some(Self(st.stx_mnt_id))
    }
}

/// Unmounts `path`: plainly if possible, lazily (`MNT_DETACH`) if busy. With `ours`, only
/// when the mount on top of `path` is still that one: a drive whose mount was taken off its
/// path from outside (`umount -l`) must not unmount what was mounted there since.
pub(crate) fn unmount(path: &Path, ours: Option<MountId>) -> Result<Unmounted> {
    let p = c_path(path)?;
    if let (Some(ours), Some(now)) = (ours, MountId::of(&p)) {
        if now != ours {
            return Ok(Unmounted::NotMounted);
        }
    }
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

/// Where the kernel's FUSE control filesystem (`fusectl`) shows each connection.
const CONNECTIONS: &str = "/sys/fs/fuse/connections";

/// The number of the FUSE connection that serves the mount at `path` (its directory under
/// `/sys/fs/fuse/connections`), read from `/proc/self/mountinfo` without touching the mount.
pub(crate) fn connection_of(path: &Path) -> Result<u32> {
    fuse_mount_entry(path).map(|(_, connection)| connection)
}

/// Requests of `connection` the kernel still waits on a server's answer for; `None` when
/// the control filesystem is not mounted (or the connection is gone).
pub(crate) fn waiting_requests(connection: u32) -> Option<u64> {
    std::fs::read_to_string(format!("{CONNECTIONS}/{connection}/waiting"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether the kernel's FUSE control filesystem is mounted at `/sys/fs/fuse/connections`.
pub(crate) fn control_fs_mounted() -> bool {
    const FUSECTL_SUPER_MAGIC: libc::c_long = 0x6573_5543;
    // SAFETY: statfs fills the zeroed struct it is given; the path is a literal.
    unsafe {
        let mut fs = std::mem::zeroed::<libc::statfs>();
        libc::statfs(c"/sys/fs/fuse/connections".as_ptr(), &mut fs) == 0
            && fs.f_type == FUSECTL_SUPER_MAGIC
    }
}

/// Mounts the kernel's FUSE control filesystem at `/sys/fs/fuse/connections` unless it is
/// there (systemd mounts it at boot; root only). A failure shows as `None` from
/// [`waiting_requests`] and an error from [`abort_connection`].
pub(crate) fn mount_control_fs() {
    if control_fs_mounted() {
        return;
    }
    // SAFETY: every pointer is to a NUL-terminated literal, and mount takes no data.
    unsafe {
        libc::mount(
            c"fusectl".as_ptr(),
            c"/sys/fs/fuse/connections".as_ptr(),
            c"fusectl".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
}

/// Ends `connection`: every request still waiting for an answer fails at once with
/// `ECONNABORTED`, and every later request on it with `ENOTCONN`.
pub(crate) fn abort_connection(connection: u32) -> Result<()> {
    let abort = format!("{CONNECTIONS}/{connection}/abort");
    std::fs::write(&abort, b"1").map_err(|e| {
        Error::io(
            format!("aborting FUSE connection {connection} ({abort})"),
            e,
        )
    })
}

/// The effective uid and gid of this process.
pub(crate) fn owner() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// How `/proc/self/mountinfo` names the FUSE mount at `path`: its ` MAJOR:MINOR ROOT
/// MOUNTPOINT ` fields (escaped as the kernel escapes them), and the number of its FUSE
/// connection (`/sys/fs/fuse/connections/N`).
fn fuse_mount_entry(path: &Path) -> Result<(Vec<u8>, u32)> {
    fuse_entry_in(&fsgate_core::mountinfo::current()?, path).ok_or_else(|| {
        Error::invalid_argument(
            "mounting point",
            format!("{} is not a FUSE mount", path.display()),
        )
    })
}

/// [`fuse_mount_entry`] in `mounts`: the topmost mount at `path` when it is a FUSE one
/// (type `fuse`, as `mount(2)` by root makes it, or `fuse.SUBTYPE`).
fn fuse_entry_in(mounts: &[MountEntry], path: &Path) -> Option<(Vec<u8>, u32)> {
    // The last entry at the path is the one on top.
    let m = mounts.iter().rev().find(|m| m.mount_point == path)?;
    let fuse = m.fs_type == "fuse" || m.fs_type.starts_with("fuse.");
    // A FUSE connection's device is an anonymous one, major 0.
    if !fuse || m.major != 0 {
        return None;
    }
    let mut entry = format!(" {}:{} ", m.major, m.minor).into_bytes();
    for part in [&m.root, &m.mount_point] {
        for &b in part.as_os_str().as_bytes() {
            match b {
                b' ' | b'\t' | b'\n' | b'\\' => {
                    entry.extend_from_slice(format!("\\{b:03o}").as_bytes())
                }
                _ => entry.push(b),
            }
        }
        entry.push(b' ');
    }
    Some((entry, m.minor))
}

/// Whether `needle` occurs in what `fd` reads, in `buf`-sized pieces (nothing allocated:
/// the unmount watcher's child calls it after `fork`); `buf` must be longer than `needle`.
fn fd_contains(fd: libc::c_int, needle: &[u8], buf: &mut [u8]) -> bool {
    let keep = needle.len().saturating_sub(1);
    if needle.is_empty() || buf.len() <= keep {
        return false;
    }
    let mut carried = 0;
    loop {
        // SAFETY: the range written is inside `buf`.
        let n = unsafe { libc::read(fd, buf[carried..].as_mut_ptr().cast(), buf.len() - carried) };
        if n <= 0 {
            return false;
        }
        let end = carried + n as usize;
        if buf[..end].windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        let from = end.saturating_sub(keep);
        buf.copy_within(from..end, 0);
        carried = end - from;
    }
}

/// A small child process that lazily unmounts one mounting point when the serving process
/// dies, so a mount (or bind mount) of a dead server does not stay behind with every access
/// failing. It replaces fusermount3's `auto_unmount` helper, which removed only the primary
/// mount, only when it found the connection already dead (a mount served over io_uring
/// outlives its server a while), and whatever FUSE mount it then found at the path.
///
/// The child holds the read end of a pipe whose write end only this process has. When this
/// process exits — however it exits, `SIGKILL` included — the kernel closes the write end,
/// the child's `read` returns 0 and it unmounts. [`disarm`](Self::disarm) (normal unmount)
/// writes one byte first, and the child exits without touching the mount. Before unmounting,
/// the child checks in `/proc/self/mountinfo` that the path still holds the same FUSE mount
/// (nothing on the mount itself, which could block on the dead server) and, on Linux 6.8+,
/// that its [`MountId`] is the one watched, so a mount someone else put there since is left
/// alone (before 6.8, a mount made there after the watched one was taken off the path from
/// outside, `umount -l`, can get its device number and be taken for it); it then aborts the mount's FUSE connection through
/// `/sys/fs/fuse/connections` when that is mounted (a dead server's io_uring entries can
/// otherwise keep the connection, and any process waiting on it, alive). The child closes
/// every other descriptor it inherited (standard streams and `/dev/fuse` clones included),
/// so it never keeps the FUSE connection or a reader's pipe alive, and leaves the process
/// group so a terminal's `SIGINT` spares it.
pub(crate) struct UnmountWatcher {
    pid: libc::pid_t,
    pipe: Option<OwnedFd>,
    /// The watched mount's identity, where the kernel gives one.
    id: Option<MountId>,
}

impl UnmountWatcher {
    /// Starts the watcher for `target`.
    pub(crate) fn start(target: &Path) -> Result<Self> {
        let path = c_path(target)?;
        let (entry, connection) = fuse_mount_entry(target)?;
        let id = MountId::of(&path);
        let abort = CString::new(format!("/sys/fs/fuse/connections/{connection}/abort"))
            .map_err(|_| Error::invalid_argument("mounting point", "bad connection number"))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Error::io(
                "creating the unmount watcher's pipe",
                io::Error::last_os_error(),
            ));
        }
        let [read_end, write_end] = fds;
        // SAFETY: sigemptyset only writes the set it is given.
        let no_signals = unsafe {
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            set
        };
        // SAFETY: fork has no preconditions. In the child only async-signal-safe calls follow
        // (sigprocmask, setpgid, close, syscall(close_range), open, read, write, umount2,
        // _exit), on memory allocated before the fork, as required after forking a
        // multi-threaded process.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above; every pointer is to the live CString, the local signal set
            // or a local byte.
            unsafe {
                // The mount's threads block the application's signals (fsgate_core::threads)
                // and a fork inherits the mask: the watcher answers signals like any process.
                libc::sigprocmask(libc::SIG_SETMASK, &no_signals, std::ptr::null_mut());
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
                if n == 0 {
                    let info = libc::open(c"/proc/self/mountinfo".as_ptr(), libc::O_RDONLY);
                    let listed = info >= 0 && fd_contains(info, &entry, &mut buf);
                    libc::close(info);
                    // A device number is given again once its mount is gone; where the
                    // kernel gives mounts an identity of their own, it decides.
                    let ours = listed
                        && match (id, MountId::of(&path)) {
                            (Some(id), Some(now)) => id == now,
                            _ => true,
                        };
                    if ours {
                        let a = libc::open(abort.as_ptr(), libc::O_WRONLY);
                        if a >= 0 {
                            libc::write(a, b"1".as_ptr().cast(), 1);
                            libc::close(a);
                        }
                        libc::umount2(path.as_ptr(), libc::MNT_DETACH);
                    }
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
            id,
        })
    }

    /// The identity of the mount watched, where the kernel gives one (see [`MountId`]).
    pub(crate) fn mount_id(&self) -> Option<MountId> {
        self.id
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn search(text: &[u8], needle: &[u8], buf_len: usize) -> bool {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text).unwrap();
        let f = std::fs::File::open(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap();
        fd_contains(f.as_raw_fd(), needle, &mut vec![0; buf_len])
    }

    #[test]
    fn the_fuse_mount_on_top_of_a_path_is_found_with_either_type_name() {
        let text = "36 35 0:48 / /tmp/a rw - fuse.fsgate x rw\n\
                    37 35 0:49 / /tmp/b\\040c rw shared:5 - fuse x rw\n\
                    38 36 0:50 / /tmp/a rw - tmpfs tmpfs rw\n\
                    39 35 7:3 / /tmp/d rw - fuseblk /dev/loop3 rw\n";
        let mounts = fsgate_core::mountinfo::parse(text);
        assert_eq!(
            fuse_entry_in(&mounts, Path::new("/tmp/b c")),
            Some((b" 0:49 / /tmp/b\\040c ".to_vec(), 49)),
            "type fuse, as root's mount(2) makes it; the space escaped as the kernel does"
        );
        assert_eq!(
            fuse_entry_in(&mounts[..1], Path::new("/tmp/a")),
            Some((b" 0:48 / /tmp/a ".to_vec(), 48))
        );
        assert_eq!(
            fuse_entry_in(&mounts, Path::new("/tmp/a")),
            None,
            "a tmpfs mounted over the FUSE mount is on top"
        );
        assert_eq!(
            fuse_entry_in(&mounts, Path::new("/tmp/d")),
            None,
            "not a connection"
        );
        assert_eq!(fuse_entry_in(&mounts, Path::new("/tmp/e")), None);
    }

    #[test]
    fn a_needle_is_found_across_read_boundaries() {
        let text = b"36 35 0:48 / /tmp/a rw - fuse.fsgate x\n37 35 0:49 / /tmp/b rw - fuse x\n";
        assert!(
            !search(text, b"a long needle", 5),
            "a buffer shorter than the needle"
        );
        for buf_len in [16, 23, 64, 4096] {
            assert!(
                search(text, b" 0:49 / /tmp/b ", buf_len),
                "buffer {buf_len}"
            );
            assert!(
                search(text, b" 0:48 / /tmp/a ", buf_len),
                "buffer {buf_len}"
            );
            assert!(
                !search(text, b" 0:48 / /tmp/b ", buf_len),
                "buffer {buf_len}"
            );
        }
    }

    #[test]
    fn a_path_that_is_no_fuse_mount_is_refused() {
        let e = fuse_mount_entry(Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("is not a FUSE mount"), "{e}");
    }
}
