//! `fsgate filter` on the overlay backend (`--deny-delete`, `--deny-rename`, `--hide`, and
//! the fanotify flags once an overlay serves them), driven by real programs (`rm`, `mv`,
//! `unlink`, `rmdir`, `sh`, `ls`, `cat`) on a directory each test creates.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use fsgate_testkit::{is_mounted, lazy_unmount, wait_for, ReadyLine};

/// Whether the tests can mount; prints why a test skips when not.
fn require_root(test: &str) -> bool {
    let root = fsgate_testkit::is_root();
    if !root {
        eprintln!("{test}: skipped, the overlay's FUSE mount needs root");
    }
    root
}

/// A running `fsgate filter DIR …` over a fresh directory: killed by its pid and the
/// overlay lazily unmounted on drop, so a failing test leaves nothing behind.
struct ServedFilter {
    child: Option<Child>,
    ready: ReadyLine,
    dir: PathBuf,
    // Declared last: removed after `Drop::drop` has unmounted.
    _tmp: tempfile::TempDir,
}

impl ServedFilter {
    /// Creates the directory, lets `prepare` fill it, and starts the filter with `args`.
    fn start(args: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        prepare(&dir);
        let mut child = Command::new(env!("CARGO_BIN_EXE_fsgate"))
            .arg("filter")
            .arg(&dir)
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let ready = ReadyLine::watch(child.stderr.take().unwrap());
        let served = Self {
            child: Some(child),
            ready,
            dir,
            _tmp: tmp,
        };
        let line = served
            .ready
            .wait()
            .unwrap_or_else(|text| panic!("fsgate filter exited before ready:\n{text}"));
        assert!(line.contains("overlay on"), "{line}");
        assert!(
            is_mounted(&served.dir),
            "no overlay on {}",
            served.dir.display()
        );
        served
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Sends `signal` and waits; returns the exit status and the JSON lines printed.
    fn stop_with(&mut self, signal: i32) -> (ExitStatus, Vec<serde_json::Value>) {
        let child = self.child.take().unwrap();
        // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out.status, events)
    }

    /// SIGTERM: asserts exit 0 and that the overlay is gone; returns the JSON events.
    fn stop(&mut self) -> Vec<serde_json::Value> {
        let (status, events) = self.stop_with(libc::SIGTERM);
        assert_eq!(status.code(), Some(0), "stderr:\n{}", self.ready.text());
        assert!(!is_mounted(&self.dir), "the overlay outlived the filter");
        events
    }
}

impl Drop for ServedFilter {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
        if is_mounted(&self.dir) {
            lazy_unmount(&self.dir);
        }
    }
}

/// Runs a program in `dir`.
fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Asserts that the program failed and said "Permission denied" (`EACCES`).
fn assert_refused(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what} succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Permission denied"), "{what}: {err}");
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn denials(events: &[serde_json::Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "access_denied")
        .map(|e| {
            (
                e["operation"].as_str().unwrap().to_string(),
                e["file_name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn deny_delete_refuses_rm_unlink_and_rmdir_with_eacces() {
    if !require_root("deny_delete_refuses_rm_unlink_and_rmdir_with_eacces") {
        return;
    }
    let mut f = ServedFilter::start(&["--deny-delete", "*.keep"], |d| {
        std::fs::write(d.join("a.keep"), b"precious").unwrap();
        std::fs::create_dir(d.join("box.keep")).unwrap();
        std::fs::write(d.join("other.txt"), b"x").unwrap();
    });
    // Processes started after the mount are inside it (their cwd is resolved then).
    assert_refused(&run(&f.dir, "rm", &["-f", "a.keep"]), "rm a.keep");
    assert_refused(&run(&f.dir, "unlink", &["a.keep"]), "unlink a.keep");
    assert_refused(&run(&f.dir, "rmdir", &["box.keep"]), "rmdir box.keep");
    let file = cpath(&f.path("a.keep"));
    // SAFETY: unlink on a valid C string.
    let unlinked = unsafe { libc::unlink(file.as_ptr()) };
    assert_eq!((unlinked, errno()), (-1, libc::EACCES));
    let dir = cpath(&f.path("box.keep"));
    // SAFETY: rmdir on a valid C string.
    let removed = unsafe { libc::rmdir(dir.as_ptr()) };
    assert_eq!((removed, errno()), (-1, libc::EACCES));
    assert!(run(&f.dir, "rm", &["other.txt"]).status.success());
    assert_eq!(std::fs::read(f.path("a.keep")).unwrap(), b"precious");
    let dir = f.dir.clone();
    let events = f.stop();
    assert!(dir.join("a.keep").exists() && dir.join("box.keep").is_dir());
    assert!(!dir.join("other.txt").exists());
    let shown = dir.join("a.keep").display().to_string();
    assert!(
        denials(&events).contains(&("delete_file".into(), shown)),
        "{events:?}"
    );
}

#[test]
fn deny_rename_refuses_mv_away_and_rename_over() {
    if !require_root("deny_rename_refuses_mv_away_and_rename_over") {
        return;
    }
    let mut f = ServedFilter::start(&["--deny-rename", "*.keep"], |d| {
        std::fs::write(d.join("a.keep"), b"keep").unwrap();
        std::fs::write(d.join("b.txt"), b"b").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
    });
    assert_refused(&run(&f.dir, "mv", &["a.keep", "z.txt"]), "mv away");
    assert_refused(
        &run(&f.dir, "mv", &["a.keep", "sub/"]),
        "mv into a directory",
    );
    assert_refused(&run(&f.dir, "mv", &["-f", "b.txt", "a.keep"]), "mv over");
    // SAFETY: rename on valid C strings.
    let over = unsafe {
        libc::rename(
            cpath(&f.path("b.txt")).as_ptr(),
            cpath(&f.path("a.keep")).as_ptr(),
        )
    };
    assert_eq!((over, errno()), (-1, libc::EACCES));
    assert!(run(&f.dir, "mv", &["b.txt", "c.txt"]).status.success());
    assert_eq!(std::fs::read(f.path("a.keep")).unwrap(), b"keep");
    let dir = f.dir.clone();
    f.stop();
    assert_eq!(std::fs::read(dir.join("a.keep")).unwrap(), b"keep");
    assert_eq!(std::fs::read(dir.join("c.txt")).unwrap(), b"b");
}

#[test]
fn a_denied_create_leaves_nothing_behind() {
    if !require_root("a_denied_create_leaves_nothing_behind") {
        return;
    }
    // --deny-delete puts the fanotify flags on the overlay too.
    let mut f = ServedFilter::start(&["--deny-write", "*.txt", "--deny-delete", "*.keep"], |d| {
        std::fs::write(d.join("old.txt"), b"old").unwrap();
    });
    let out = run(&f.dir, "sh", &["-c", "echo hi > new.txt"]);
    assert_refused(&out, "echo > new.txt");
    assert_eq!(
        std::fs::metadata(f.path("new.txt"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOENT)
    );
    assert_refused(
        &run(&f.dir, "sh", &["-c", "echo hi > old.txt"]),
        "truncate old.txt",
    );
    assert_eq!(std::fs::read(f.path("old.txt")).unwrap(), b"old");
    assert!(run(&f.dir, "sh", &["-c", "echo hi > new.log"])
        .status
        .success());
    let dir = f.dir.clone();
    let events = f.stop();
    assert!(
        !dir.join("new.txt").exists(),
        "the refused create left a file"
    );
    assert_eq!(std::fs::read(dir.join("old.txt")).unwrap(), b"old");
    assert_eq!(std::fs::read(dir.join("new.log")).unwrap(), b"hi\n");
    let shown = dir.join("new.txt").display().to_string();
    assert!(
        denials(&events).contains(&("before_create_file".into(), shown)),
        "{events:?}"
    );
}

#[test]
fn hidden_files_vanish_from_listings_and_lookups() {
    if !require_root("hidden_files_vanish_from_listings_and_lookups") {
        return;
    }
    let mut f = ServedFilter::start(&["--hide", "*secret*"], |d| {
        std::fs::write(d.join("secret.txt"), b"s").unwrap();
        std::fs::write(d.join("plain.txt"), b"p").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/secret.db"), b"s").unwrap();
        std::fs::write(d.join("sub/open.db"), b"o").unwrap();
    });
    let ls = run(&f.dir, "ls", &["-A", ".", "sub"]);
    let listed = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.status.success(), "{ls:?}");
    assert!(!listed.contains("secret"), "{listed}");
    assert!(
        listed.contains("plain.txt") && listed.contains("open.db"),
        "{listed}"
    );
    let cat = run(&f.dir, "cat", &["secret.txt"]);
    assert!(
        String::from_utf8_lossy(&cat.stderr).contains("No such file"),
        "{cat:?}"
    );
    assert_eq!(
        std::fs::metadata(f.path("sub/secret.db"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOENT)
    );
    let dir = f.dir.clone();
    f.stop();
    assert_eq!(std::fs::read(dir.join("secret.txt")).unwrap(), b"s");
}

#[test]
fn sigkill_of_the_filter_leaves_a_plain_directory_with_every_write() {
    if !require_root("sigkill_of_the_filter_leaves_a_plain_directory_with_every_write") {
        return;
    }
    let mut f = ServedFilter::start(&["--deny-delete", "*.keep"], |d| {
        std::fs::write(d.join("a.keep"), b"a").unwrap();
    });
    let data = fsgate_testkit::pattern(3 << 20, 16);
    std::fs::write(f.path("big.bin"), &data).unwrap();
    assert!(run(&f.dir, "sh", &["-c", "echo line >> a.keep"])
        .status
        .success());
    let (status, _) = f.stop_with(libc::SIGKILL);
    assert_eq!(status.code(), None, "the filter was killed");
    let dir = f.dir.clone();
    wait_for("the overlay to go after SIGKILL", || !is_mounted(&dir));
    assert_eq!(std::fs::read(dir.join("big.bin")).unwrap(), data);
    assert_eq!(std::fs::read(dir.join("a.keep")).unwrap(), b"aline\n");
    // The plain directory is usable again, protection gone with the filter.
    std::fs::write(dir.join("after.txt"), b"ok").unwrap();
    std::fs::remove_file(dir.join("a.keep")).unwrap();
    assert_eq!(std::fs::read(dir.join("after.txt")).unwrap(), b"ok");
    assert!(f.pid() == 0);
}

#[test]
fn a_redirect_serves_another_file_under_the_asked_name() {
    if !require_root("a_redirect_serves_another_file_under_the_asked_name") {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("real.cfg");
    std::fs::write(&target, b"from the target\n").unwrap();
    let redirect = format!("*.cfg={}", target.display());
    let mut f = ServedFilter::start(&["--redirect", &redirect], |d| {
        std::fs::write(d.join("app.cfg"), b"lower\n").unwrap();
        std::fs::write(d.join("plain.txt"), b"plain\n").unwrap();
    });
    let cat = run(&f.dir, "cat", &["app.cfg", "missing.cfg", "plain.txt"]);
    assert!(cat.status.success(), "{cat:?}");
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout),
        "from the target\nfrom the target\nplain\n"
    );
    // Writes go to the target too.
    assert!(run(&f.dir, "sh", &["-c", "echo changed > app.cfg"])
        .status
        .success());
    assert_eq!(std::fs::read(&target).unwrap(), b"changed\n");
    let dir = f.dir.clone();
    f.stop();
    assert_eq!(std::fs::read(dir.join("app.cfg")).unwrap(), b"lower\n");
}

#[test]
fn a_virtual_file_is_listed_by_ls_and_read_by_cat() {
    if !require_root("a_virtual_file_is_listed_by_ls_and_read_by_cat") {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let source = outside.path().join("source.txt");
    std::fs::write(&source, b"served by the filter\n").unwrap();
    let spec = format!("notes.txt={}", source.display());
    let mut f = ServedFilter::start(&["--virtual-file", &spec], |d| {
        std::fs::write(d.join("real.txt"), b"real\n").unwrap();
    });
    let ls = run(&f.dir, "ls", &["-l"]);
    let listed = String::from_utf8_lossy(&ls.stdout);
    assert!(
        listed.contains("notes.txt") && listed.contains("real.txt"),
        "{listed}"
    );
    assert!(
        listed.contains(" 21 "),
        "the listed size is the source's: {listed}"
    );
    let cat = run(&f.dir, "cat", &["notes.txt"]);
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout),
        "served by the filter\n",
        "{cat:?}"
    );
    assert_refused(
        &run(&f.dir, "sh", &["-c", "echo x >> notes.txt"]),
        "append to a virtual file",
    );
    let dir = f.dir.clone();
    f.stop();
    assert!(
        !dir.join("notes.txt").exists(),
        "a virtual file never exists on disk"
    );
}

#[test]
fn the_overlay_serves_the_fanotify_flags_too() {
    if !require_root("the_overlay_serves_the_fanotify_flags_too") {
        return;
    }
    let mut f = ServedFilter::start(
        &[
            "--overlay",
            "--deny-exec",
            "blocked",
            "--deny-read",
            "*.key",
        ],
        |d| {
            for name in ["blocked", "allowed"] {
                std::fs::copy("/bin/true", d.join(name)).unwrap();
            }
            std::fs::write(d.join("a.key"), b"k").unwrap();
        },
    );
    let blocked = Command::new(f.path("blocked")).status().unwrap_err();
    assert_eq!(blocked.raw_os_error(), Some(libc::EACCES));
    assert!(Command::new(f.path("allowed")).status().unwrap().success());
    let read = std::fs::read(f.path("a.key")).unwrap_err();
    assert_eq!(read.raw_os_error(), Some(libc::EACCES));
    // Reading the program is not executing it.
    assert!(std::fs::read(f.path("blocked")).is_ok());
    let events = f.stop();
    let operations: Vec<String> = denials(&events).into_iter().map(|(op, _)| op).collect();
    assert!(
        operations.contains(&"before_execute".to_string()),
        "{events:?}"
    );
    assert!(
        operations.contains(&"before_open_file".to_string()),
        "{events:?}"
    );
}
