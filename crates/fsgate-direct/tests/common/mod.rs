//! What the integration tests share: an initialized `DirectAccess` (installed for real under
//! a temporary root), loop devices and mounts with Drop guards, privilege-dropped children.
//!
//! A privilege-dropped child runs as another user, who may not be able to reach the checkout,
//! `target/`, `$HOME` or `$TMPDIR` (a clone in a private directory, a private
//! `CARGO_TARGET_DIR`): everything it uses (a copy of this test binary, the installation)
//! lives in a [`reachable_tempdir`].

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use fsgate_direct::DirectAccess;
use fsgate_install::{Installer, Package};
use tempfile::TempDir;

#[path = "../../../fsgate-install/tests/common/other_users.rs"]
mod other_users;
pub use other_users::reachable_tempdir;

pub const GUID: &str = "{3C1F9A2E-7B44-4D0A-9E21-5F6A7B8C9D0E}";

/// fsgate installed for [`GUID`] under a fresh temporary root that every user can reach
/// (see [`reachable_tempdir`]), so privilege-dropped children can initialize against it too.
pub fn install_root() -> TempDir {
    let root = reachable_tempdir();
    let package = root.path().join("fsgate.pkg");
    Package::build(&package, Path::new("/bin/true")).unwrap();
    Installer::new(root.path().join("sys"))
        .install(&package, GUID, "", 0)
        .unwrap();
    root
}

/// An initialized `DirectAccess` against an installation under `root`.
pub fn initialized_in(root: &Path) -> DirectAccess {
    let direct = DirectAccess::with_installer(Installer::new(root.join("sys")));
    direct.initialize(GUID).unwrap();
    direct
}

/// An initialized `DirectAccess` and the temporary root it was installed under.
pub fn initialized() -> (DirectAccess, TempDir) {
    let root = install_root();
    let direct = initialized_in(root.path());
    (direct, root)
}

/// Runs the tests that take it one at a time. A volume's lock is its exclusive open, and a
/// process that forks meanwhile (another test starting `losetup`, `mkfs` or `dd`) holds a
/// copy of the descriptor until the child's `exec`: a test that closes a volume and opens it
/// again at once could find it still locked, by its own neighbour.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A loop device over a fresh image file, detached on drop.
pub struct LoopDevice {
    pub device: PathBuf,
    pub image: PathBuf,
    _dir: TempDir,
}

impl LoopDevice {
    /// `size` bytes of zeros attached with `losetup --find --show [--sector-size N]`.
    pub fn new(size: u64, sector_size: Option<u32>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(size)
            .unwrap();
        let mut cmd = Command::new("losetup");
        cmd.args(["--find", "--show"]);
        if let Some(ss) = sector_size {
            cmd.args(["--sector-size", &ss.to_string()]);
        }
        let out = cmd.arg(&image).output().unwrap();
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let device = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        Self {
            device,
            image,
            _dir: dir,
        }
    }

    pub fn name(&self) -> &str {
        self.device.to_str().unwrap()
    }

    pub fn mkfs_ext4(&self) {
        let st = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&self.device)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

/// Runs `body` on a new thread that has its own private mount namespace, so its mounts
/// vanish with it even if the test panics.
pub fn in_private_mount_namespace<T: Send + 'static>(
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare and mount with constant arguments affect only this thread's
        // namespace.
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare(CLONE_NEWNS)");
            assert_eq!(
                libc::mount(
                    c"none".as_ptr(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null()
                ),
                0,
                "making / private"
            );
        }
        body()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A mount made with mount(8) from the calling thread, unmounted (lazily) on drop.
pub struct Mounted {
    pub point: PathBuf,
    _dir: TempDir,
}

impl Mounted {
    pub fn new(device: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("mnt");
        std::fs::create_dir(&point).unwrap();
        let st = Command::new("mount")
            .arg(device)
            .arg(&point)
            .status()
            .unwrap();
        assert!(st.success(), "mount failed");
        Self { point, _dir: dir }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.point)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `count` sectors of `sector_size` bytes from `device` starting at `sector`, read by dd.
pub fn dd_read(device: &Path, sector: u64, count: u64, sector_size: u32) -> Vec<u8> {
    let out = Command::new("dd")
        .arg(format!("if={}", device.display()))
        .arg(format!("bs={sector_size}"))
        .arg(format!("skip={sector}"))
        .arg(format!("count={count}"))
        .arg("iflag=direct")
        .arg("status=none")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[allow(unused_imports)]
pub use fsgate_testkit::pattern;

/// Environment variable that tells a re-executed test binary it is the unprivileged child.
pub const CHILD_ENV: &str = "FSGATE_DIRECT_CHILD";

/// Re-runs test `name` of this test binary as uid/gid 65534 with only the capabilities in
/// `caps` (setpriv syntax, e.g. "+dac_read_search" or "" for none), passing `args` in
/// [`CHILD_ENV`]; returns its exit status and output. The child runs a copy of the binary in
/// a [`reachable_tempdir`]: the original under `target/` may be out of its reach.
pub fn run_unprivileged(name: &str, caps: &str, args: &str) -> std::process::Output {
    let dir = reachable_tempdir();
    let exe = dir.path().join("test-binary");
    // cp writes the copy in its own process: a copy written by this multi-threaded process
    // could still be open for writing in a child forked meanwhile, and fail with ETXTBSY.
    let copied = Command::new("cp")
        .arg(std::env::current_exe().unwrap())
        .arg(&exe)
        .status()
        .unwrap();
    assert!(
        copied.success(),
        "copying the test binary to {}",
        exe.display()
    );
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    if caps.is_empty() {
        cmd.args(["--inh-caps=-all", "--bounding-set=-all"]);
    } else {
        cmd.arg(format!("--inh-caps=-all,{caps}"))
            .arg(format!("--ambient-caps=-all,{caps}"));
    }
    cmd.arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, args)
        .current_dir(dir.path())
        .output()
        .unwrap()
}
