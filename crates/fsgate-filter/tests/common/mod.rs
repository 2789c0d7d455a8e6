//! Private tmpfs mounts for tests: mounted on a fresh temp dir, made private so nothing
//! propagates, and lazily unmounted when the guard drops (also on panic).

#![allow(dead_code)] // each test binary uses a different subset of these guards
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

/// A private ext4 filesystem on a loop device (`mount -o loop` sets autoclear, so the device
/// is detached once the lazy unmount in `Drop` lets go of it).
pub struct Ext4Mount {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Ext4Mount {
    pub fn new(size_mib: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(size_mib << 20)
            .unwrap();
        let ok = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&image)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfs.ext4 {}", image.display());
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount {} on {}", image.display(), path.display());
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

impl Drop for Ext4Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
