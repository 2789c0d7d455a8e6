//! What fsgate's integration tests share (dev-only, never published).
//!
//! - [`require_root()`] and [`require_root!`]: whether the test runs as root, printing the skip and its reason
//!   (naming the test) when it does not;
//! - [`TmpfsMount`], [`Ext4Mount`]: private filesystems on fresh temporary directories,
//!   lazily unmounted when the guard drops, also when the test panics;
//! - [`mount_tmpfs`], [`unmount`], [`lazy_unmount`], [`is_mounted`]: plain mount helpers;
//! - [`wait_for`]: poll a condition (with a generous guard so a broken build fails instead of
//!   hanging; never a performance bound);
//! - [`ReadyLine`]: wait for a server's `ready:` line on its stderr, keeping all it printed;
//! - [`limit_descriptors`]: start a server with a small descriptor limit.
//!
//! Helpers panic on failure: they are test code, and a panic is the failure report.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether the test can run as root; when it cannot, prints `<test>: skipped, <why>` so the
/// skip shows in the output. The test's name is the harness's thread name.
pub fn require_root(why: &str) -> bool {
    let root = is_root();
    if !root {
        let thread = std::thread::current();
        eprintln!("{}: skipped, {why}", thread.name().unwrap_or("this test"));
    }
    root
}

/// Returns from the calling test unless it runs as root, printing the skip (see
/// [`require_root()`]).
#[macro_export]
macro_rules! require_root {
    ($why:expr) => {
        if !$crate::require_root($why) {
            return;
        }
    };
}

/// Runs `command`, panicking with `what` unless it succeeds.
fn run(command: &mut Command, what: &str) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(status.success(), "{what}: {status}");
}

/// Mounts a fresh tmpfs of `size_mib` MiB on the existing directory `at`, made private so no
/// mount event propagates out of it.
pub fn mount_tmpfs(at: &Path, size_mib: u64) {
    run(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_mib}m"))
            .arg("fsgate-test")
            .arg(at),
        &format!("mount tmpfs on {}", at.display()),
    );
    make_private(at);
}

fn make_private(at: &Path) {
    run(
        Command::new("mount").arg("--make-private").arg(at),
        &format!("make {} private", at.display()),
    );
}

/// Unmounts `at` now (not lazily), panicking when that fails.
pub fn unmount(at: &Path) {
    rustix::mount::unmount(at, rustix::mount::UnmountFlags::empty())
        .unwrap_or_else(|e| panic!("umount {}: {e}", at.display()));
}

/// Detaches the mount on `at` (`umount2(MNT_DETACH)`), ignoring errors: cleanup only.
pub fn lazy_unmount(at: &Path) {
    let _ = rustix::mount::unmount(at, rustix::mount::UnmountFlags::DETACH);
}

/// Whether `path` is a mount point now (`/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let Some(wanted) = path.to_str() else {
        return false;
    };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| mount_point == wanted)
}

/// A private tmpfs (64 MiB) on a fresh temporary directory, lazily unmounted on drop.
pub struct TmpfsMount {
    path: PathBuf,
    // Dropped after `Drop::drop` has unmounted.
    _dir: tempfile::TempDir,
}

impl TmpfsMount {
    /// Mounts it.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let path = dir.path().to_path_buf();
        let guard = Self { path, _dir: dir };
        mount_tmpfs(&guard.path, 64);
        guard
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for TmpfsMount {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        lazy_unmount(&self.path);
    }
}

/// A private ext4 filesystem on a loop device (`mount -o loop` sets autoclear, so the device
/// is detached once the lazy unmount on drop lets go of it).
pub struct Ext4Mount {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ext4Mount {
    /// Makes and mounts a filesystem of `size_mib` MiB.
    pub fn new(size_mib: u64) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(size_mib << 20))
            .unwrap_or_else(|e| panic!("creating {}: {e}", image.display()));
        run(
            Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image),
            &format!("mkfs.ext4 {}", image.display()),
        );
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        run(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(&path),
            &format!("mount {} on {}", image.display(), path.display()),
        );
        let guard = Self { path, _dir: dir };
        make_private(&guard.path);
        guard
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Ext4Mount {
    fn drop(&mut self) {
        lazy_unmount(&self.path);
    }
}

/// How long [`wait_for`] polls before it fails the test: a guard against a broken build
/// hanging the suite, far above any expected wait.
pub const WAIT_GUARD: Duration = Duration::from_secs(30);

/// Polls `cond` every 20 ms until it holds; panics naming `what` after [`WAIT_GUARD`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT_GUARD, "never saw {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server's stderr, read on a thread: the first line starting with `ready: ` is handed to
/// [`wait`](Self::wait), and everything is kept for [`text`](Self::text).
pub struct ReadyLine {
    ready: mpsc::Receiver<String>,
    text: Arc<Mutex<String>>,
}

impl ReadyLine {
    /// Starts reading `stderr` (a child's piped stderr).
    pub fn watch(stderr: impl Read + Send + 'static) -> Self {
        let (tx, ready) = mpsc::channel();
        let text = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&text);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ready: ") {
                    let _ = tx.send(line.clone());
                }
                collected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&(line + "\n"));
            }
        });
        Self { ready, text }
    }

    /// Waits for the `ready:` line; `Err` with everything printed when the stream ended
    /// first (the server exited). The sender goes away with the stream, so this cannot wait
    /// forever on a server that exits.
    pub fn wait(&self) -> Result<String, String> {
        self.ready.recv().map_err(|_| self.text())
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `len` deterministic pseudo-random bytes for `seed` (xorshift): the same bytes on every run,
/// different for every seed.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Makes the process `command` starts begin with at most `limit` open descriptors
/// (`RLIMIT_NOFILE`, soft and hard limit).
pub fn limit_descriptors(command: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    let limit = rustix::process::Rlimit {
        current: Some(limit),
        maximum: Some(limit),
    };
    // SAFETY: between fork and exec the closure makes one system call (prlimit64) on a
    // value it owns, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            rustix::process::setrlimit(rustix::process::Resource::Nofile, limit)
                .map_err(std::io::Error::from)
        });
    }
}
