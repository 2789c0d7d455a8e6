//! A drive served by the real `fsgate` binary for the mirror and conformance tests: spawns
//! `fsgate mount …`, waits for its `ready:` line, and cleans up even when a test panics (kill
//! by pid, lazy unmount).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;

pub use fsgate_testkit::{is_mounted, lazy_unmount};

/// The `fsgate` binary built for this test run.
pub const FSGATE: &str = env!("CARGO_BIN_EXE_fsgate");

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

/// An ext4 filesystem in a sparse 256 MiB image file, loop-mounted on a directory, unmounted
/// on drop (the loop device goes with the last reference, `mount -o loop` sets it to
/// autoclear). Blocks are 4 KiB, the unit `fallocate`'s collapse and insert modes align to
/// on every drive; there is no journal, which changes nothing a caller observes but makes
/// each `fsync` and `msync` cost a write instead of a journal commit.
pub struct Ext4(pub PathBuf);

impl Ext4 {
    /// Makes `image` an ext4 filesystem and mounts it on the existing directory `dir`.
    pub fn mount(image: &Path, dir: &Path) -> Self {
        let file = std::fs::File::create(image).unwrap();
        file.set_len(256 << 20).unwrap();
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "4096", "-O", "^has_journal"])
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
        let mut command = Command::new(FSGATE);
        fsgate_testkit::limit_descriptors(&mut command, limit);
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
        Self::memory_with(mountpoint, &[])
    }

    /// `fsgate mount memory MOUNTPOINT --config IoUringThreadsPerQueue=2`.
    pub fn memory_over_io_uring(mountpoint: &Path) -> Self {
        Self::memory_with(mountpoint, &["IoUringThreadsPerQueue=2"])
    }

    /// `fsgate mount memory MOUNTPOINT --config SETTING…` (`FileCache=None`, …).
    pub fn memory_with(mountpoint: &Path, settings: &[&str]) -> Self {
        let mut args: Vec<&std::ffi::OsStr> = vec!["memory".as_ref(), mountpoint.as_os_str()];
        for setting in settings {
            args.push("--config".as_ref());
            args.push(setting.as_ref());
        }
        Self::spawn(&args, mountpoint)
    }

    /// `fsgate mount mirror SOURCE MOUNTPOINT [--passthrough]`.
    pub fn mirror(source: &Path, mountpoint: &Path, passthrough: bool) -> Self {
        Self::mirror_with(source, mountpoint, passthrough, &[])
    }

    /// `fsgate mount mirror SOURCE MOUNTPOINT [--passthrough] --config SETTING…`.
    pub fn mirror_with(
        source: &Path,
        mountpoint: &Path,
        passthrough: bool,
        settings: &[&str],
    ) -> Self {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "mirror".as_ref(),
            source.as_os_str(),
            mountpoint.as_os_str(),
        ];
        if passthrough {
            args.push("--passthrough".as_ref());
        }
        for setting in settings {
            args.push("--config".as_ref());
            args.push(setting.as_ref());
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

/// A way of serving a sample drive that the conformance and random-operations tests run on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DriveMode {
    /// `fsgate mount memory`.
    Memory,
    /// `fsgate mount memory --config IoUringThreadsPerQueue=2` (over `/dev/fuse` where the
    /// kernel offers no FUSE io_uring).
    MemoryOverIoUring,
    /// `fsgate mount memory --config FileCache=None`: no page cache, every read and write
    /// reaches the drive.
    MemoryWithoutCache,
    /// `fsgate mount memory --config FileCachePolicyWriteThrough=true`: every write reaches
    /// the drive before it returns (the memory drive's default is the kernel's writeback
    /// cache), as on drives whose files change behind the kernel's back.
    MemoryWriteThrough,
    /// `fsgate mount mirror SOURCE` over a directory of the ext4 filesystem.
    Mirror,
    /// `fsgate mount mirror SOURCE --passthrough` (the kernel's FUSE passthrough).
    MirrorPassthrough,
    /// `fsgate mount mirror SOURCE --config FileCache=None`.
    MirrorWithoutCache,
}

impl DriveMode {
    /// Every mode.
    pub const ALL: [DriveMode; 7] = [
        DriveMode::Memory,
        DriveMode::MemoryOverIoUring,
        DriveMode::MemoryWithoutCache,
        DriveMode::MemoryWriteThrough,
        DriveMode::Mirror,
        DriveMode::MirrorPassthrough,
        DriveMode::MirrorWithoutCache,
    ];

    /// The target's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            DriveMode::Memory => "memory",
            DriveMode::MemoryOverIoUring => "memory io_uring",
            DriveMode::MemoryWithoutCache => "memory FileCache=None",
            DriveMode::MemoryWriteThrough => "memory write-through",
            DriveMode::Mirror => "mirror",
            DriveMode::MirrorPassthrough => "mirror --passthrough",
            DriveMode::MirrorWithoutCache => "mirror FileCache=None",
        }
    }

    /// A short directory name for its mount point (socket paths must stay short).
    fn dir_name(self) -> &'static str {
        match self {
            DriveMode::Memory => "memory",
            DriveMode::MemoryOverIoUring => "memory-uring",
            DriveMode::MemoryWithoutCache => "memory-nocache",
            DriveMode::MemoryWriteThrough => "memory-wt",
            DriveMode::Mirror => "mirror",
            DriveMode::MirrorPassthrough => "mirror-pt",
            DriveMode::MirrorWithoutCache => "mirror-nocache",
        }
    }

    /// Serves this mode at `mountpoint`; mirrors show `source`.
    fn serve(self, source: &Path, mountpoint: &Path) -> Served {
        let served = match self {
            DriveMode::Memory => Served::memory(mountpoint),
            DriveMode::MemoryOverIoUring => Served::memory_over_io_uring(mountpoint),
            DriveMode::MemoryWithoutCache => Served::memory_with(mountpoint, &["FileCache=None"]),
            DriveMode::MemoryWriteThrough => {
                Served::memory_with(mountpoint, &["FileCachePolicyWriteThrough=true"])
            }
            DriveMode::Mirror => Served::mirror(source, mountpoint, false),
            DriveMode::MirrorPassthrough => Served::mirror(source, mountpoint, true),
            DriveMode::MirrorWithoutCache => {
                Served::mirror_with(source, mountpoint, false, &["FileCache=None"])
            }
        };
        match self {
            DriveMode::MirrorPassthrough => assert!(
                served.ready.ends_with("(passthrough: kernel)"),
                "{}",
                served.ready
            ),
            DriveMode::MemoryOverIoUring => {
                let offered = std::fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
                    .is_ok_and(|v| v.trim() == "Y");
                assert_eq!(
                    served.ready.contains("over io_uring"),
                    offered,
                    "{}",
                    served.ready
                );
            }
            _ => {}
        }
        served
    }
}

/// One place a test runs: a directory on a native filesystem or in a drive.
pub struct Target {
    /// `ext4`, `tmpfs` or the drive mode's name.
    pub name: &'static str,
    /// An empty directory, reachable by every user, for the test's files.
    pub root: PathBuf,
    /// The drive mode, `None` for a native filesystem.
    pub mode: Option<DriveMode>,
}

/// ext4 (the reference, always first), tmpfs and drives in the given modes, each with an
/// empty directory that every user can reach, all under one temporary directory. Mirrors
/// show directories of the same ext4 filesystem. Dropping it stops the drives and unmounts
/// everything.
pub struct Targets {
    /// ext4, tmpfs, then the drives in the order asked for.
    pub list: Vec<Target>,
    servers: Vec<Served>,
    _ext4: Ext4,
    _tmpfs: Tmpfs,
    _tmp: tempfile::TempDir,
}

impl Targets {
    /// Mounts ext4, tmpfs and a drive in each of `modes` (root only).
    pub fn mount(modes: &[DriveMode]) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = |parent: &Path, name: &str| {
            let p = parent.join(name);
            std::fs::create_dir(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        // The image lives in memory (on the tmpfs, outside its test directory): a `fsync` or
        // `msync` on ext4, or on a mirror of it, then waits for memory, not for a disk.
        let tmpfs = Tmpfs::mount(&dir(tmp.path(), "tmpfs"));
        let ext4 = Ext4::mount(&tmpfs.0.join("ext4.img"), &dir(tmp.path(), "ext4"));
        let mut list = vec![
            Target {
                name: "ext4",
                root: dir(&ext4.0, "native"),
                mode: None,
            },
            Target {
                name: "tmpfs",
                root: dir(&tmpfs.0, "native"),
                mode: None,
            },
        ];
        let sources = dir(&ext4.0, "sources");
        let mounts = dir(tmp.path(), "mnt");
        let mut servers = Vec::new();
        for &mode in modes {
            let source = dir(&sources, mode.dir_name());
            let served = mode.serve(&source, &dir(&mounts, mode.dir_name()));
            list.push(Target {
                name: mode.name(),
                root: served.mountpoint.clone(),
                mode: Some(mode),
            });
            servers.push(served);
        }
        Targets {
            list,
            servers,
            _ext4: ext4,
            _tmpfs: tmpfs,
            _tmp: tmp,
        }
    }

    /// Stops every drive with SIGTERM; panics unless each exits with status 0.
    pub fn stop(mut self) {
        for served in self.servers.drain(..) {
            let name = served.mountpoint.display().to_string();
            let status = served.stop();
            assert_eq!(status.code(), Some(0), "the drive at {name}: {status}");
        }
    }
}
