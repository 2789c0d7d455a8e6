//! A served drive for integration tests: spawns the real `fsgate` binary, waits for its
//! `ready:` line, and guarantees cleanup — a test that panics still kills the server (by its
//! pid) and lazily unmounts, so it leaves no mount behind.

#![allow(dead_code)]

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use fsgate_testkit::{is_mounted, lazy_unmount};

/// The `fsgate` binary built for this test run.
pub const FSGATE: &str = env!("CARGO_BIN_EXE_fsgate");

/// Whether the tests run as root; prints why a test skips when not.
pub fn require_root(test: &str) -> bool {
    let root = fsgate_testkit::is_root();
    if !root {
        eprintln!("{test}: skipped, FUSE mounts in these tests need root");
    }
    root
}

/// A running `fsgate mount …` process and its mount point.
pub struct ServedDrive {
    child: Option<Child>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    mountpoint: PathBuf,
    // Declared last: dropped after `Drop::drop` has unmounted.
    _dir: tempfile::TempDir,
}

impl ServedDrive {
    /// Mounts the memory drive on a fresh temporary directory with extra `flags`
    /// (`--log-events`, `--json`) and waits for `ready:`. Panics with the server's stderr if
    /// it exits before it is ready.
    pub fn memory(flags: &[&str]) -> Self {
        Self::memory_with_descriptors(flags, None)
    }

    /// [`memory`](Self::memory), the server's descriptor limit (`RLIMIT_NOFILE`) set to
    /// `limit` when given.
    pub fn memory_with_descriptors(flags: &[&str], limit: Option<u64>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).unwrap();
        let logs = flags.contains(&"--log-events");
        let mut command = Command::new(FSGATE);
        command
            .arg("mount")
            .arg("memory")
            .arg(&mountpoint)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(if logs { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::piped());
        if let Some(limit) = limit {
            fsgate_testkit::limit_descriptors(&mut command, limit);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = out.read_to_end(&mut bytes);
                bytes
            })
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let err_pipe = child.stderr.take().unwrap();
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ready: ") {
                    let _ = ready_tx.send(line.clone());
                }
                collected.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut drive = ServedDrive {
            child: Some(child),
            stdout,
            stderr,
            mountpoint,
            _dir: dir,
        };
        // The sender goes away when the server closes stderr, so this cannot wait forever.
        match ready_rx.recv() {
            Ok(line) => assert_eq!(
                line,
                format!(
                    "ready: mounted memory drive at {}",
                    drive.mountpoint.display()
                )
            ),
            Err(_) => {
                let status = drive.child.as_mut().unwrap().wait().unwrap();
                panic!(
                    "fsgate exited ({status}) before it was ready; stderr:\n{}",
                    drive.stderr()
                );
            }
        }
        drive
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.mountpoint
    }

    /// A path inside the drive.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.mountpoint.join(relative)
    }

    /// The server's process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// What the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `signal` to the server and waits for it; returns its exit status and everything
    /// it printed on stdout.
    pub fn stop_with(&mut self, signal: i32) -> (ExitStatus, Vec<u8>) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        let stdout = self
            .stdout
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        (status, stdout)
    }

    /// SIGTERM, then asserts a clean exit (status 0) and that the mount is gone. Returns stdout.
    pub fn stop(mut self) -> Vec<u8> {
        let (status, stdout) = self.stop_with(libc::SIGTERM);
        assert_eq!(status.code(), Some(0), "stderr:\n{}", self.stderr());
        assert!(
            !is_mounted(&self.mountpoint),
            "{} is still mounted after SIGTERM",
            self.mountpoint.display()
        );
        stdout
    }
}

impl Drop for ServedDrive {
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

/// Polls `/proc/self/mountinfo` until `path` is no longer a mount point, for at most `limit`.
/// Returns whether it went away.
pub fn wait_unmounted(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while is_mounted(path) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// A path as a C string for libc calls.
pub fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// The errno of the last failed libc call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}
