//! Private tmpfs and ext4 mounts for tests: mounted on a fresh temp dir, made private so
//! nothing propagates, and lazily unmounted when the guard drops (also on panic); and a
//! probe of what the running kernel build allows on them (it decides which documented
//! outcome a test asserts; a test never skips on it).

#![allow(dead_code)] // each test binary uses a different subset of these guards
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use fsgate_fanotify::{Class, EventMask, Group, InitFlags, MarkAction, MarkFlags, MarkType};

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

/// Whether the kernel accepts a fanotify pre-content mark (`FAN_PRE_ACCESS`, Linux 6.14; the
/// filesystem must allow it) on a regular file in `dir`: asked with plain fanotify calls on
/// a scratch file that is removed again. Panics when the kernel build has no pre-content
/// groups at all: fsgate-filter does not document what its filters do then.
pub fn kernel_allows_pre_content_marks_in(dir: &Path) -> bool {
    let scratch = dir.join(".fsgate-pre-content-probe");
    let file = std::fs::File::create(&scratch).unwrap();
    let group = Group::new(
        Class::PreContent,
        InitFlags::CLOEXEC,
        libc::O_RDWR | libc::O_LARGEFILE,
    )
    .unwrap_or_else(|e| {
        panic!(
            "fanotify_init(FAN_CLASS_PRE_CONTENT) failed ({e}): this kernel build has no \
             fanotify permission events"
        )
    });
    let marked = group.mark(
        MarkAction::Add,
        MarkType::Inode,
        MarkFlags::empty(),
        EventMask::PRE_ACCESS,
        Some(file.as_fd()),
        None,
    );
    drop(group);
    drop(file);
    std::fs::remove_file(&scratch).unwrap();
    match marked {
        Ok(()) => true,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => false,
        Err(e) => panic!("marking {} for FAN_PRE_ACCESS: {e}", scratch.display()),
    }
}
