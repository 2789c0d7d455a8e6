//! Errors, panics, timeouts, concurrency, mounting-point checks and cleanup after SIGKILL,
//! through a real FUSE mount and ordinary system calls.

mod common;
use common::utf8;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{mounted, root, wait_for, Guard};
use fsgate_core::{code, Error, Result};
use fsgate_vfs::*;

/// A drive whose files behave as their names say.
#[derive(Default)]
struct Behaving {
    errors: Mutex<Vec<(u32, String)>>,
    active: AtomicUsize,
    max_active: AtomicUsize,
    panics: AtomicUsize,
    barrier: Option<Arc<Barrier>>,
    read_threads: Mutex<Vec<String>>,
}

const FILES: &[&str] = &[
    "/f", "/deny", "/panic", "/slow", "/reset", "/p1", "/p2", "/serial",
];

impl Events for Behaving {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        if FILES.contains(&utf8(p.file_name)) {
            p.file_exists = true;
            p.info.size = if utf8(p.file_name) == "/serial" {
                4 << 20
            } else {
                4
            };
        }
        Ok(())
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, (), ()>) -> Result<()> {
        if utf8(p.file_name) == "/deny" {
            return Err(Error::from_code(
                code::ERROR_ACCESS_DENIED,
                "denied by the drive",
            ));
        }
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
        match utf8(p.file_name) {
            "/panic" => {
                self.panics.fetch_add(1, Ordering::SeqCst);
                panic!("handler exploded")
            }
            "/slow" => thread::sleep(Duration::from_millis(4500)),
            "/reset" => {
                thread::sleep(Duration::from_millis(2000));
                reset_timeout(3000)?;
                thread::sleep(Duration::from_millis(2000));
            }
            "/p1" | "/p2" => {
                if let Some(b) = &self.barrier {
                    b.wait();
                }
            }
            "/serial" => {
                let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_active.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(50));
                self.active.fetch_sub(1, Ordering::SeqCst);
            }
            _ => {}
        }
        let name = thread::current().name().unwrap_or("").to_string();
        self.read_threads.lock().unwrap().push(name);
        let n = p.buffer.len().min(4);
        p.buffer[..n].copy_from_slice(&b"data"[..n]);
        p.bytes_read = if utf8(p.file_name) == "/serial" {
            p.buffer.len()
        } else {
            n
        };
        Ok(())
    }
}

impl Hooks for Behaving {
    fn on_error(&self, code: u32, description: &str) {
        self.errors
            .lock()
            .unwrap()
            .push((code, description.to_string()));
    }
}

fn reset_timeout(ms: u32) -> Result<()> {
    fsgate_core::dispatch::reset_timeout(ms)
}

fn mount(events: Behaving, timeout_ms: u32) -> (tempfile::TempDir, Guard, VirtualDrive<Behaving>) {
    let dir = tempfile::tempdir().unwrap();
    let guard = Guard(dir.path().to_path_buf());
    let drive = VirtualDrive::new(events, Options::default());
    drive.mount(dir.path(), timeout_ms).unwrap();
    (dir, guard, drive)
}

fn read(path: &Path) -> std::io::Result<String> {
    let mut s = String::new();
    std::fs::File::open(path)?.read_to_string(&mut s)?;
    Ok(s)
}

#[test]
fn handler_errors_reach_the_caller_as_errno() {
    if !root("handler_errors_reach_the_caller_as_errno") {
        return;
    }
    let (dir, _g, drive) = mount(Behaving::default(), 0);
    assert!(drive.active());
    assert_eq!(read(&dir.path().join("f")).unwrap(), "data");
    let denied = std::fs::File::open(dir.path().join("deny")).unwrap_err();
    assert_eq!(denied.raw_os_error(), Some(libc::EACCES));
    let missing = std::fs::metadata(dir.path().join("missing")).unwrap_err();
    assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
    let create = std::fs::File::create(dir.path().join("new")).unwrap_err();
    assert_eq!(create.raw_os_error(), Some(libc::EOPNOTSUPP));
}

#[test]
fn panicking_handler_gives_eio_fires_on_error_and_the_mount_keeps_working() {
    if !root("panicking_handler_gives_eio_fires_on_error_and_the_mount_keeps_working") {
        return;
    }
    let (dir, _g, drive) = mount(Behaving::default(), 0);
    let e = read(&dir.path().join("panic")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    let errors = drive.events().errors.lock().unwrap().clone();
    // One on_error per panicking request (the kernel retries a failed page read once).
    let panics = drive.events().panics.load(Ordering::SeqCst);
    assert!(panics >= 1);
    assert_eq!(errors.len(), panics, "{errors:?}");
    for (c, description) in &errors {
        assert_eq!(*c, code::ERROR_INTERNAL_ERROR);
        assert!(description.contains("handler exploded"), "{description}");
    }
    assert_eq!(read(&dir.path().join("f")).unwrap(), "data");
}

#[test]
fn handler_past_the_timeout_fails_with_eio_while_other_files_keep_working() {
    if !root("handler_past_the_timeout_fails_with_eio_while_other_files_keep_working") {
        return;
    }
    let (dir, _g, _drive) = mount(Behaving::default(), 3000);
    let slow = dir.path().join("slow");
    let started = Instant::now();
    let t = thread::spawn(move || (read(&slow), started.elapsed()));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(read(&dir.path().join("f")).unwrap(), "data");
    assert!(
        !t.is_finished(),
        "the slow read must still be pending while /f is served"
    );
    let (r, elapsed) = t.join().unwrap();
    assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EIO));
    assert!(elapsed >= Duration::from_millis(3000), "{elapsed:?}");
}

#[test]
fn reset_timeout_extends_the_deadline() {
    if !root("reset_timeout_extends_the_deadline") {
        return;
    }
    let (dir, _g, _drive) = mount(Behaving::default(), 3000);
    let started = Instant::now();
    assert_eq!(read(&dir.path().join("reset")).unwrap(), "data");
    assert!(started.elapsed() >= Duration::from_millis(4000));
    let outside = reset_timeout(5000).unwrap_err();
    assert_eq!(outside.code(), code::ERROR_NO_CALLBACK_ACTIVE);
}

#[test]
fn different_files_are_served_in_parallel() {
    if !root("different_files_are_served_in_parallel") {
        return;
    }
    // Each read waits for the other at a barrier: both finish only if they run at once.
    let events = Behaving {
        barrier: Some(Arc::new(Barrier::new(2))),
        ..Behaving::default()
    };
    let (dir, _g, _drive) = mount(events, 0);
    let (a, b) = (dir.path().join("p1"), dir.path().join("p2"));
    let t = thread::spawn(move || read(&a));
    assert_eq!(read(&b).unwrap(), "data");
    assert_eq!(t.join().unwrap().unwrap(), "data");
}

#[test]
fn one_files_events_are_serialized() {
    if !root("one_files_events_are_serialized") {
        return;
    }
    let (dir, _g, drive) = mount(Behaving::default(), 0);
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            let path = dir.path().join("serial");
            thread::spawn(move || {
                use std::os::unix::fs::FileExt;
                let f = std::fs::File::open(path).unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                f.read_at(&mut buf, i * (1 << 20)).unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 64 * 1024);
    }
    assert_eq!(drive.events().max_active.load(Ordering::SeqCst), 1);
}

/// The names of the threads that ran `on_read_file` for `/f`, read 20 times through the
/// mount without the page cache (every read reaches the drive).
fn read_thread_names(timeout_ms: u32) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard(dir.path().to_path_buf());
    let options = Options {
        file_cache: FileCache::None,
        ..Options::default()
    };
    let drive = VirtualDrive::new(Behaving::default(), options);
    drive.mount(dir.path(), timeout_ms).unwrap();
    for _ in 0..20 {
        // One read of the file's 4 bytes: with direct I/O the kernel does not stop at the
        // size, and this drive answers any offset, so reading to EOF would never end.
        let mut buf = [0u8; 4];
        std::fs::File::open(dir.path().join("f"))
            .unwrap()
            .read_exact(&mut buf)
            .unwrap();
        assert_eq!(&buf, b"data");
    }
    let names = drive.events().read_threads.lock().unwrap().clone();
    assert!(names.len() >= 20, "{names:?}");
    names
}

#[test]
fn without_a_timeout_idle_files_are_served_on_the_reader_thread() {
    // The dispatcher's workers are named "fsgate-vfs"; FUSE reader threads are not. A read
    // that finds its file busy (the kernel may send two at once) is queued to a worker, so
    // not every read runs inline, but reads of an idle file do.
    let inline = read_thread_names(0);
    assert!(inline.iter().any(|n| n != "fsgate-vfs"), "{inline:?}");
    // With a timeout, a stuck handler must never hold a reader: workers run every event.
    let timed = read_thread_names(3000);
    assert!(timed.iter().all(|n| n == "fsgate-vfs"), "{timed:?}");
}

#[test]
fn mounting_on_a_missing_or_non_empty_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let drive = VirtualDrive::new(Behaving::default(), Options::default());
    let e = drive.mount(&missing, 0).unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT);
    assert!(e.message().contains(&missing.display().to_string()), "{e}");
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let e = drive.mount(dir.path(), 0).unwrap_err();
    assert_eq!(e.errno(), libc::ENOTEMPTY);
    assert!(e.message().contains("not empty"), "{e}");
    let e = drive.mount(dir.path().join("file"), 0).unwrap_err();
    assert_eq!(e.errno(), libc::ENOTDIR);
    let empty = tempfile::tempdir().unwrap();
    let e = drive.mount(empty.path(), 1000).unwrap_err();
    assert_eq!(e.code(), code::ERROR_IMPLEMENTATION_LIMIT);
    assert!(!drive.active());
}

#[test]
fn extra_mounting_points_show_the_same_drive() {
    if !root("extra_mounting_points_show_the_same_drive") {
        return;
    }
    let (dir, _g, drive) = mount(Behaving::default(), 0);
    let extra = tempfile::tempdir().unwrap();
    let _g2 = Guard(extra.path().to_path_buf());
    drive.add_mounting_point(extra.path()).unwrap();
    assert_eq!(read(&extra.path().join("f")).unwrap(), "data");
    assert_eq!(drive.mounting_points().len(), 2);
    drive.delete_mounting_point(extra.path()).unwrap();
    assert!(!mounted(extra.path()));
    assert!(drive.delete_mounting_point(dir.path()).is_err());
    drive.unmount().unwrap();
    assert!(!mounted(dir.path()));
    assert!(!drive.active());
}

/// Not a test of its own: the serving process for `killed_server_leaves_no_mount`, run as a
/// child of the test binary when `FSGATE_VFS_SERVE` names a directory.
#[test]
fn helper_serving_process() {
    let Ok(dir) = std::env::var("FSGATE_VFS_SERVE") else {
        return;
    };
    let options = Options {
        io_uring_threads_per_queue: std::env::var("FSGATE_VFS_URING")
            .map_or(0, |n| n.parse().unwrap()),
        ..Options::default()
    };
    let drive = VirtualDrive::new(Behaving::default(), options);
    drive.mount(&dir, 0).unwrap();
    if let Ok(extra) = std::env::var("FSGATE_VFS_EXTRA") {
        drive.add_mounting_point(extra).unwrap();
    }
    eprintln!("ready: {dir}");
    loop {
        thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn killed_server_leaves_no_mount() {
    killed_server_leaves_no_mount_over("killed_server_leaves_no_mount", 0);
}

/// Over io_uring, the dead server's ring entries keep its connection alive for a moment
/// after its death; the drive's watcher aborts the connection and unmounts.
#[test]
fn killed_io_uring_server_leaves_no_mount() {
    killed_server_leaves_no_mount_over("killed_io_uring_server_leaves_no_mount", 2);
}

fn killed_server_leaves_no_mount_over(test: &str, io_uring_threads_per_queue: usize) {
    if !root(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _g = Guard(dir.path().to_path_buf());
    let mut child = serve_in_a_child(dir.path(), io_uring_threads_per_queue, None);
    assert!(
        wait_for(Duration::from_secs(30), || mounted(dir.path())),
        "child never mounted"
    );
    assert_eq!(read(&dir.path().join("f")).unwrap(), "data");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || !mounted(dir.path())),
        "the mount outlived its killed server"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn killed_server_leaves_no_extra_mounting_point() {
    if !root("killed_server_leaves_no_extra_mounting_point") {
        return;
    }
    let (primary, extra) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let _g = (
        Guard(primary.path().to_path_buf()),
        Guard(extra.path().to_path_buf()),
    );
    let mut child = serve_in_a_child(primary.path(), 0, Some(extra.path()));
    assert!(
        wait_for(Duration::from_secs(30), || mounted(extra.path())),
        "child never added the mounting point"
    );
    assert_eq!(read(&extra.path().join("f")).unwrap(), "data");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || !mounted(extra.path())
            && !mounted(primary.path())),
        "a mounting point outlived its killed server"
    );
    assert_eq!(std::fs::read_dir(extra.path()).unwrap().count(), 0);
}

/// A drive whose mount was taken off its path from outside (`umount -l`) does not, when it
/// stops or dies, unmount the drive mounted on that path since: on Linux 6.8+ each mount has
/// an identity of its own (`STATX_MNT_ID_UNIQUE`), while the device number the earlier mount
/// had is given to the new one. Before 6.8 the kernel gives no such identity, and the crate
/// documents that the new mount may go (this is checked, not skipped).
#[test]
fn a_drive_taken_off_its_path_leaves_the_next_mount_there_alone() {
    if !root("a_drive_taken_off_its_path_leaves_the_next_mount_there_alone") {
        return;
    }
    let unique_ids = rustix::fs::statx(
        rustix::fs::CWD,
        "/",
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::from_bits_retain(0x4000),
    )
    .unwrap()
    .stx_mask
        & 0x4000
        != 0;
    if !unique_ids {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        eprintln!("kernel {release}: no unique mount ids; the documented limit applies");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _g = Guard(dir.path().to_path_buf());
    let umount_lazily = || {
        let status = Command::new("umount")
            .arg("-l")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    };

    // The earlier drive stops normally.
    let earlier = VirtualDrive::new(Behaving::default(), Options::default());
    earlier.mount(dir.path(), 0).unwrap();
    umount_lazily();
    let next = VirtualDrive::new(Behaving::default(), Options::default());
    next.mount(dir.path(), 0).unwrap();
    earlier.unmount().unwrap();
    assert!(
        mounted(dir.path()),
        "the earlier drive's stop took the next mount"
    );
    assert_eq!(read(&dir.path().join("f")).unwrap(), "data");

    // The earlier drive's process is killed: its watcher decides.
    umount_lazily();
    next.unmount().unwrap();
    let mut killed = serve_in_a_child(dir.path(), 0, None);
    assert!(
        wait_for(Duration::from_secs(30), || mounted(dir.path())),
        "child never mounted"
    );
    umount_lazily();
    let last = VirtualDrive::new(Behaving::default(), Options::default());
    last.mount(dir.path(), 0).unwrap();
    killed.kill().unwrap();
    killed.wait().unwrap();
    // The killed server's watcher acts as the process dies; it has had time to.
    thread::sleep(Duration::from_secs(1));
    assert!(
        mounted(dir.path()),
        "the killed drive's watcher took the next mount"
    );
    assert_eq!(read(&dir.path().join("f")).unwrap(), "data");
    last.unmount().unwrap();
}

/// Runs `helper_serving_process` in a child process serving `dir` (with
/// `io_uring_threads_per_queue`, and `extra` as a second mounting point).
fn serve_in_a_child(dir: &Path, io_uring_threads_per_queue: usize, extra: Option<&Path>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "helper_serving_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FSGATE_VFS_SERVE", dir)
        .env("FSGATE_VFS_URING", io_uring_threads_per_queue.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(extra) = extra {
        command.env("FSGATE_VFS_EXTRA", extra);
    }
    command.spawn().unwrap()
}
