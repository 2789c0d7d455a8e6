//! Rule forms against the real kernel, with child processes as requestors: per-process
//! masks (`name|mask`, `~pid|mask`), inverted masks (`||mask`) and passthrough rules, for
//! the monitor's notifications and the filter's access rules; and rules changed while a
//! filter or monitor runs, which take effect at once (the kernel mask and the attached
//! volumes follow every rule change: new event kinds, paths on mounts not attached at start,
//! the first notify rule of a filter started without one).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use fsgate_core::Result;
use fsgate_filter::events::{FilterEvents, Hooks, MonitorEvents, NotifyEvent, NotifyKind};
use fsgate_filter::filter::FileFilter;
use fsgate_filter::monitor::FileMonitor;
use fsgate_filter::rules::{AccessFlags, ControlFlags, NotifyFlags};
use fsgate_testkit::{require_root, wait_for, TmpfsMount};

#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<NotifyEvent>>>);

impl MonitorEvents for Log {
    fn on_notify(&self, e: &NotifyEvent) -> Result<()> {
        self.0.lock().unwrap().push(e.clone());
        Ok(())
    }
}
impl Hooks for Log {}
impl FilterEvents for Log {}

impl Log {
    fn opens_by(&self, pid: u32) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == NotifyKind::OpenFile && e.process_id == pid)
            .count()
    }
    fn saw(&self, kind: NotifyKind, path: &Path) -> bool {
        let path = path.display().to_string();
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.kind == kind && e.file_name == path)
    }
    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.file_name.clone())
            .collect()
    }
}

/// Waits until process `pid` holds `file` open.
fn wait_open(pid: u32, file: &Path) {
    wait_for(&format!("{pid} opening {}", file.display()), || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == file))
            })
            .unwrap_or(false)
    });
}

/// A child that is killed (by its pid) and reaped when dropped.
struct Kid(Child);

impl Kid {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tail -f file` run from an executable named `image` (a copy of tail): it opens the file
/// and stays alive, so the monitor can read its image when it handles the event.
fn follow(image: &Path, file: &Path) -> Kid {
    Kid(Command::new(image)
        .arg("-f")
        .arg(file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap())
}

/// A shell that waits for a line on stdin, then opens `file` itself and sleeps.
fn opener_on_cue(file: &Path) -> Kid {
    Kid(Command::new("sh")
        .arg("-c")
        .arg("read go; exec 3<\"$0\"; exec sleep 60")
        .arg(file)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap())
}

fn cue(kid: &mut Kid) {
    use std::io::Write;
    kid.0.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
}

#[test]
fn name_mask_selects_the_requestor_by_image_name() {
    require_root!("fanotify groups need root");
    let mnt = TmpfsMount::new();
    let bin = tempfile::tempdir().unwrap();
    let watched = bin.path().join("watched");
    let other = bin.path().join("other");
    std::fs::copy("/usr/bin/tail", &watched).unwrap();
    std::fs::copy("/usr/bin/tail", &other).unwrap();
    let file = mnt.path().join("data.txt");
    std::fs::write(&file, b"x\n").unwrap();
    let log = Log::default();
    let m = FileMonitor::new(log.clone());
    m.add_filter_rule(
        &format!("watched|{}/*", mnt.path().display()),
        NotifyFlags::FS_NE_OPEN,
    )
    .unwrap();
    m.set_serialize_events(true);
    m.start_filter().unwrap();
    let b = follow(&other, &file);
    wait_open(b.pid(), &file);
    let a = follow(&watched, &file);
    wait_open(a.pid(), &file);
    // Events are fired in kernel order: once `watched`'s open is seen, `other`'s (queued
    // first) has been judged.
    wait_for("the open by watched", || log.opens_by(a.pid()) == 1);
    m.stop_filter().unwrap();
    assert_eq!(log.opens_by(b.pid()), 0);
    let e = log.0.lock().unwrap()[0].clone();
    assert_eq!(e.process_name, "watched");
    assert_eq!(e.file_name, file.display().to_string());
}

#[test]
fn excluded_pid_mask_leaves_out_that_process_only() {
    require_root!("fanotify groups need root");
    let mnt = TmpfsMount::new();
    let file = mnt.path().join("data.txt");
    std::fs::write(&file, b"x").unwrap();
    let mut excluded = opener_on_cue(&file);
    let mut included = opener_on_cue(&file);
    let log = Log::default();
    let m = FileMonitor::new(log.clone());
    m.add_filter_rule(
        &format!("~{}|{}/*", excluded.pid(), mnt.path().display()),
        NotifyFlags::FS_NE_OPEN,
    )
    .unwrap();
    m.set_serialize_events(true);
    m.start_filter().unwrap();
    cue(&mut excluded);
    wait_open(excluded.pid(), &file);
    cue(&mut included);
    wait_open(included.pid(), &file);
    wait_for("the open by the included shell", || {
        log.opens_by(included.pid()) == 1
    });
    m.stop_filter().unwrap();
    assert_eq!(log.opens_by(excluded.pid()), 0);
}

#[test]
fn inverted_mask_reports_everything_but_what_it_names() {
    require_root!("fanotify groups need root");
    let mnt = TmpfsMount::new();
    let log = Log::default();
    let m = FileMonitor::new(log.clone());
    let root = mnt.path().display().to_string();
    m.add_filter_rule(&format!("||{root}/*.log"), NotifyFlags::FS_NE_CREATE)
        .unwrap();
    m.set_serialize_events(true);
    m.start_filter().unwrap();
    for name in ["b.log", "a.txt", "c.log", "d.bin"] {
        std::fs::write(mnt.path().join(name), b"x").unwrap();
    }
    let last = format!("{root}/d.bin");
    wait_for("the create of d.bin", || log.names().contains(&last));
    m.stop_filter().unwrap();
    let mut names: Vec<String> = log
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix(&root).map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(names, vec!["/a.txt", "/d.bin"]);
}

#[test]
fn passthrough_rules_exclude_files_from_notifications() {
    require_root!("fanotify groups need root");
    let mnt = TmpfsMount::new();
    let log = Log::default();
    let m = FileMonitor::new(log.clone());
    let root = mnt.path().display().to_string();
    m.add_filter_rule(&format!("{root}/*"), NotifyFlags::FS_NE_ALL)
        .unwrap();
    m.add_passthrough_rule(&format!("{root}/cache/*"), NotifyFlags::FS_NE_ALL)
        .unwrap();
    m.set_serialize_events(true);
    m.start_filter().unwrap();
    std::fs::create_dir(mnt.path().join("cache")).unwrap();
    std::fs::write(mnt.path().join("cache/tmp.bin"), b"x").unwrap();
    std::fs::write(mnt.path().join("kept.txt"), b"x").unwrap();
    let kept = format!("{root}/kept.txt");
    wait_for("the close of kept.txt", || {
        log.0
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.file_name == kept && e.kind == NotifyKind::CloseFile)
    });
    m.stop_filter().unwrap();
    let names = log.names();
    assert!(
        !names.iter().any(|n| n.contains("/cache/")),
        "passthrough files reported: {names:?}"
    );
    assert!(names.contains(&format!("{root}/cache")), "{names:?}");
}

fn cat_with(image: &str, path: &Path) -> std::process::Output {
    Command::new(image)
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn per_process_access_rule_denies_only_that_image_and_passthrough_exempts() {
    require_root!("fanotify groups need root");
    let mnt = TmpfsMount::new();
    let key = mnt.path().join("secret.key");
    let public = mnt.path().join("public.key");
    std::fs::write(&key, b"k").unwrap();
    std::fs::write(&public, b"p").unwrap();
    let f = FileFilter::new(Log::default());
    let root = mnt.path().display();
    f.add_filter_rule(
        &format!("cat|{root}/*.key"),
        AccessFlags::ACCESS_WRITE_ONLY,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )
    .unwrap();
    f.add_passthrough_rule(
        &format!("{root}/public.*"),
        AccessFlags::ACCESS_WRITE_ONLY,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )
    .unwrap();
    f.start_filter(0).unwrap();
    let by_cat = cat_with("cat", &key);
    let by_head = cat_with("head", &key);
    let public_by_cat = cat_with("cat", &public);
    f.stop_filter().unwrap();
    assert!(!by_cat.status.success());
    assert!(by_cat.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&by_cat.stderr).contains("Operation not permitted"),
        "{by_cat:?}"
    );
    assert!(by_head.status.success(), "{by_head:?}");
    assert_eq!(by_head.stdout, b"k");
    assert!(public_by_cat.status.success(), "{public_by_cat:?}");
    assert_eq!(public_by_cat.stdout, b"p");
}

// ----- rules changed while running -----

/// Runs `program args` in a child (the filter never filters its own process); returns
/// whether it succeeded and its stderr.
fn run(program: &Path, args: &[&Path]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mask_under(dir: &Path) -> String {
    format!("{}/*", dir.display())
}

#[test]
fn a_filter_started_without_notify_rules_notifies_once_one_is_added() {
    require_root!("fanotify groups need root");
    let mnt = TmpfsMount::new();
    let f = FileFilter::new(Log::default());
    f.start_filter(0).unwrap();
    let before = mnt.path().join("before.txt");
    std::fs::write(&before, b"x").unwrap();

    f.add_filter_rule(
        &mask_under(mnt.path()),
        AccessFlags::empty(),
        ControlFlags::empty(),
        NotifyFlags::FS_NE_CREATE,
    )
    .unwrap();
    let after = mnt.path().join("after.txt");
    std::fs::write(&after, b"y").unwrap();
    wait_for("the create after the rule", || {
        f.handler().saw(NotifyKind::CreateFile, &after)
    });
    f.stop_filter().unwrap();
    assert!(!f.handler().saw(NotifyKind::CreateFile, &before));
}

#[test]
fn a_filter_rule_added_while_running_reaches_a_new_mount_and_a_new_event_kind() {
    require_root!("fanotify groups need root");
    let first = TmpfsMount::new();
    let second = TmpfsMount::new();
    let secret = second.path().join("secret");
    std::fs::write(&secret, b"data").unwrap();
    let program = first.path().join("true");
    std::fs::copy("/bin/true", &program).unwrap();

    let f = FileFilter::new(Log::default());
    f.add_filter_rule(
        &format!("{}/*.txt", first.path().display()),
        AccessFlags::ACCESS_READ_ONLY,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )
    .unwrap();
    f.start_filter(0).unwrap();
    let cat = Path::new("/bin/cat");
    assert!(
        run(cat, &[&secret]).0,
        "the second mount is not filtered yet"
    );
    assert!(run(&program, &[]).0, "execution is not filtered yet");

    // A path on a mount the filter was not attached to.
    f.add_filter_rule(
        &mask_under(second.path()),
        AccessFlags::ACCESS_DENY_ALL,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )
    .unwrap();
    let (ok, stderr) = run(cat, &[&secret]);
    assert!(!ok);
    assert!(
        stderr.contains("Operation not permitted"),
        "cat said: {stderr}"
    );

    // An event kind the permission group was not marked for.
    f.add_filter_rule(
        &mask_under(first.path()),
        AccessFlags::ACCESS_EXECUTE_PROTECT,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )
    .unwrap();
    let denied = Command::new(&program).status();
    match denied {
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
        Ok(status) => panic!(
            "{} ran ({status}) under execute protection",
            program.display()
        ),
    }

    // Removing the rules removes their effect too.
    f.delete_all_filter_rules();
    assert!(run(cat, &[&secret]).0);
    assert!(run(&program, &[]).0);
    f.stop_filter().unwrap();
}

#[test]
fn a_monitor_rule_added_while_running_reaches_a_new_mount_and_a_new_event_kind() {
    require_root!("fanotify groups need root");
    let first = TmpfsMount::new();
    let second = TmpfsMount::new();
    let m = FileMonitor::new(Log::default());
    m.add_filter_rule(&mask_under(first.path()), NotifyFlags::FS_NE_CREATE)
        .unwrap();
    m.start_filter().unwrap();

    m.add_filter_rule(&mask_under(second.path()), NotifyFlags::FS_NE_DELETE)
        .unwrap();
    let file = second.path().join("gone.txt");
    std::fs::write(&file, b"x").unwrap();
    std::fs::remove_file(&file).unwrap();
    wait_for("the delete on the second mount", || {
        m.handler().saw(NotifyKind::DeleteFile, &file)
    });
    m.stop_filter().unwrap();
    // Only the kinds each mask asked for.
    assert!(!m.handler().saw(NotifyKind::CreateFile, &file));
}
