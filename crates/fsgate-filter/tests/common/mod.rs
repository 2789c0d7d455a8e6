//! Private tmpfs mounts for tests: mounted on a fresh temp dir, made private so nothing
//! propagates, and lazily unmounted when the guard drops (also on panic).

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub struct TmpfsMount {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl TmpfsMount {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "fsgate-test"])
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs on {}", path.display());
        let guard = Self { _dir: dir, path };
        let ok = Command::new("mount")
            .arg("--make-private")
            .arg(&guard.path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "make {} private", guard.path.display());
        guard
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
