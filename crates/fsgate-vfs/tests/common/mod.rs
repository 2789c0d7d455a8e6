//! Helpers shared by the integration tests: root check and a mount guard.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Whether the test can mount (root, and `/dev/fuse` present); prints why it skips
/// otherwise.
pub fn root(test: &str) -> bool {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("{test}: skipped, needs /dev/fuse");
        return false;
    }
    fsgate_testkit::require_root("FUSE mounts need root")
}

/// Whether `dir` is a mount point now.
pub fn mounted(dir: &Path) -> bool {
    fsgate_testkit::is_mounted(dir)
}

/// Lazily unmounts its directory on drop, so a panicking test leaves no mount behind.
pub struct Guard(pub PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        fsgate_testkit::lazy_unmount(&self.0);
    }
}

/// Polls `f` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A drive mounted on `mnt` in a temporary directory. Dropping it unmounts (the guard does so
/// lazily even if the test panicked), then removes the directory.
pub struct Mounted<E: fsgate_vfs::Events> {
    pub drive: fsgate_vfs::VirtualDrive<E>,
    pub dir: PathBuf,
    _guard: Guard,
    /// The temporary directory holding the mount point and whatever else the test put there.
    pub tmp: tempfile::TempDir,
}

/// Mounts the drive that `make` builds (it gets the temporary directory, to put backing files
/// in) with `options`; `None` when this machine cannot mount (see [`root`]).
pub fn mount<E: fsgate_vfs::Events>(
    test: &str,
    options: fsgate_vfs::Options,
    make: impl FnOnce(&Path) -> E,
) -> Option<Mounted<E>> {
    if !root(test) {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let drive = fsgate_vfs::VirtualDrive::new(make(tmp.path()), options);
    drive.mount(&dir, 0).unwrap();
    Some(Mounted {
        drive,
        _guard: Guard(dir.clone()),
        dir,
        tmp,
    })
}

/// The value of an event counter.
pub fn count(n: &std::sync::atomic::AtomicUsize) -> usize {
    n.load(std::sync::atomic::Ordering::SeqCst)
}

/// A name an event carries, as UTF-8: every name these tests use is.
pub fn utf8(name: &Path) -> &str {
    name.to_str().expect("test names are UTF-8")
}
