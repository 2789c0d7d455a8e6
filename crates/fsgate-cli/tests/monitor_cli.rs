//! `fsgate monitor` and `fsgate filter` against a private tmpfs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        assert!(Command::new("mount")
            .args(["-t", "tmpfs", "fsgate-cli-test"])
            .arg(&path)
            .status()
            .unwrap()
            .success());
        let t = Self { _dir: dir, path };
        assert!(Command::new("mount")
            .arg("--make-private")
            .arg(&t.path)
            .status()
            .unwrap()
            .success());
        t
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn spawn_ready(args: &[&str], path: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fsgate"))
        .args(args)
        .arg(path)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready:"), "first stderr line: {line}");
    child
}

fn stop(child: Child) -> Vec<serde_json::Value> {
    // SAFETY: kill on the pid of the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn monitor_prints_create_write_rename_delete_as_json() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Tmpfs::new();
    let child = spawn_ready(
        &["monitor", "--events", "create,write,rename,delete"],
        &t.path,
    );
    let a = t.path.join("a.txt");
    let step = || std::thread::sleep(std::time::Duration::from_millis(150));
    std::fs::write(&a, b"x").unwrap();
    step();
    std::fs::rename(&a, t.path.join("b.txt")).unwrap();
    step();
    std::fs::remove_file(t.path.join("b.txt")).unwrap();
    step();
    let events = stop(child);
    let got: Vec<(String, String, Option<String>)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["file_name"].as_str().unwrap().to_string(),
                e["new_file_name"].as_str().map(str::to_string),
            )
        })
        .collect();
    let p = |n: &str| t.path.join(n).display().to_string();
    assert_eq!(
        got,
        vec![
            ("notify_create_file".into(), p("a.txt"), None),
            ("notify_write_file".into(), p("a.txt"), None),
            (
                "notify_rename_or_move_file".into(),
                p("a.txt"),
                Some(p("b.txt"))
            ),
            ("notify_delete_file".into(), p("b.txt"), None),
        ]
    );
    for e in &events {
        assert_eq!(e["process_id"].as_u64().unwrap(), std::process::id() as u64);
        assert!(e["process_name"].is_string());
    }
}

#[test]
fn filter_denies_reads_of_matching_files_and_prints_each_denial() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Tmpfs::new();
    std::fs::write(t.path.join("s.key"), b"k").unwrap();
    std::fs::write(t.path.join("ok.txt"), b"o").unwrap();
    let child = spawn_ready(&["filter", "--deny-read", "*.key"], &t.path);
    let denied = Command::new("cat")
        .arg(t.path.join("s.key"))
        .output()
        .unwrap();
    let allowed = Command::new("cat")
        .arg(t.path.join("ok.txt"))
        .output()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let events = stop(child);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Operation not permitted"));
    assert_eq!(allowed.stdout, b"o");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "access_denied");
    assert_eq!(
        events[0]["file_name"],
        t.path.join("s.key").display().to_string()
    );
    assert_eq!(events[0]["process_name"], "cat");
}

#[test]
fn monitor_reports_volumes_mounted_and_unmounted_under_the_path() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Tmpfs::new();
    let child = spawn_ready(&["monitor", "--events", "create,volume"], &t.path);
    let sub = t.path.join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert!(Command::new("mount")
        .args(["-t", "tmpfs", "fsgate-cli-sub"])
        .arg(&sub)
        .status()
        .unwrap()
        .success());
    let step = || std::thread::sleep(std::time::Duration::from_millis(300));
    step();
    std::fs::write(sub.join("n.txt"), b"x").unwrap();
    step();
    assert!(
        Command::new("umount").arg(&sub).status().unwrap().success(),
        "the monitor must not keep the new mount busy"
    );
    step();
    let events = stop(child);
    let got: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let name = e["file_name"].as_str().or(e["volume_name"].as_str());
            (
                e["event"].as_str().unwrap().to_string(),
                name.unwrap().to_string(),
            )
        })
        .collect();
    let p = |n: &str| t.path.join(n).display().to_string();
    let root = t.path.display().to_string();
    assert_eq!(
        got,
        vec![
            ("after_filter_attach_to_volume".into(), root.clone()),
            ("notify_create_file".into(), p("sub")),
            ("after_filter_attach_to_volume".into(), p("sub")),
            ("notify_create_file".into(), p("sub/n.txt")),
            ("after_filter_detach_from_volume".into(), p("sub")),
            ("after_filter_detach_from_volume".into(), root),
        ]
    );
    assert_eq!(events[2]["file_system"], "tmpfs");
}
