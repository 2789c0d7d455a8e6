//! A drive served by the real `fsgate` binary for the mirror and conformance tests: spawns
//! `fsgate mount …`, waits for its `ready:` line, and cleans up even when a test panics (kill
//! by pid, lazy unmount).

#![allow(dead_code)]

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;

/// The `fsgate` binary built for this test run.
pub const FSGATE: &str = env!("CARGO_BIN_EXE_fsgate");

/// Whether the test runs as root; prints why it skips otherwise.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("{test}: skipped, FUSE and tmpfs mounts need root");
    }
    root
}

/// `umount2(path, MNT_DETACH)`, ignoring errors (cleanup only).
pub fn lazy_unmount(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
}

/// Whether `path` is a mount point (`/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let wanted = path.to_str().unwrap();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| mount_point == wanted)
}

/// A tmpfs mounted on a directory, unmounted on drop.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    /// Mounts a fresh tmpfs (mode 0755) on the existing directory `dir`.
    pub fn mount(dir: &Path) -> Self {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0755,size=512m", "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mounting tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        lazy_unmount(&self.0);
    }
}

/// An ext4 filesystem in a 64 MiB image file, loop-mounted on a directory, unmounted on drop
/// (the loop device goes with the last reference, `mount -o loop` sets it to autoclear).
pub struct Ext4(pub PathBuf);

impl Ext4 {
    /// Makes `image` an ext4 filesystem and mounts it on the existing directory `dir`.
    pub fn mount(image: &Path, dir: &Path) -> Self {
        let file = std::fs::File::create(image).unwrap();
        file.set_len(64 << 20).unwrap();
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(image)
            .status()
            .unwrap();
        assert!(made.success(), "mkfs.ext4 {}", image.display());
        let mounted = Command::new("mount")
            .args(["-o", "loop"])
            .arg(image)
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            mounted.success(),
            "mounting {} on {}",
            image.display(),
            dir.display()
        );
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Ext4(dir.to_path_buf())
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        lazy_unmount(&self.0);
    }
}

/// A running `fsgate mount …` and its mount point.
pub struct Served {
    child: Option<Child>,
    /// The mount point.
    pub mountpoint: PathBuf,
    /// The `ready:` line.
    pub ready: String,
}

impl Served {
    /// Runs `fsgate mount ARGS… MOUNTPOINT`-style `args` (the mount point among them) and
    /// waits for `ready:`; panics with the server's stderr if it exits first.
    pub fn spawn(args: &[&std::ffi::OsStr], mountpoint: &Path) -> Self {
        Self::spawn_with(Command::new(FSGATE), args, mountpoint)
    }

    /// [`spawn`](Self::spawn) with at most `limit` open descriptors (soft and hard limit).
    pub fn spawn_with_descriptor_limit(
        args: &[&std::ffi::OsStr],
        mountpoint: &Path,
        limit: u64,
    ) -> Self {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(FSGATE);
        let rlimit = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: setrlimit is async-signal-safe and only reads `rlimit`, a copy.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        Self::spawn_with(command, args, mountpoint)
    }

    fn spawn_with(mut command: Command, args: &[&std::ffi::OsStr], mountpoint: &Path) -> Self {
        let mut child = command
            .arg("mount")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut seen = String::new();
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ready: ") {
                    let _ = tx.send(Ok(line.clone()));
                }
                seen.push_str(&line);
                seen.push('\n');
            }
            let _ = tx.send(Err(seen));
        });
        let mut served = Served {
            child: Some(child),
            mountpoint: mountpoint.to_path_buf(),
            ready: String::new(),
        };
        match rx.recv().unwrap() {
            Ok(line) => served.ready = line,
            Err(stderr) => panic!("fsgate exited before it was ready:\n{stderr}"),
        }
        served
    }

    /// `fsgate mount memory MOUNTPOINT`.
    pub fn memory(mountpoint: &Path) -> Self {
        Self::spawn(&["memory".as_ref(), mountpoint.as_os_str()], mountpoint)
    }

    /// `fsgate mount memory MOUNTPOINT --config IoUringThreadsPerQueue=2`.
    pub fn memory_over_io_uring(mountpoint: &Path) -> Self {
        Self::spawn(
            &[
                "memory".as_ref(),
                mountpoint.as_os_str(),
                "--config".as_ref(),
                "IoUringThreadsPerQueue=2".as_ref(),
            ],
            mountpoint,
        )
    }

    /// `fsgate mount mirror SOURCE MOUNTPOINT [--passthrough]`.
    pub fn mirror(source: &Path, mountpoint: &Path, passthrough: bool) -> Self {
        let mut args = vec![
            "mirror".as_ref(),
            source.as_os_str(),
            mountpoint.as_os_str(),
        ];
        if passthrough {
            args.push("--passthrough".as_ref());
        }
        Self::spawn(&args, mountpoint)
    }

    /// A path inside the drive.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.mountpoint.join(relative)
    }

    /// SIGTERM; returns the exit status once the server is gone.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
        if is_mounted(&self.mountpoint) {
            lazy_unmount(&self.mountpoint);
        }
    }
}
