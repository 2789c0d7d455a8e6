//! Rules changed while a filter or monitor runs take effect at once: the kernel mask and the
//! attached volumes follow every rule change (new event kinds, paths on mounts not attached
//! at start, the first notify rule of a filter started without one).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use fsgate_core::Result;
use fsgate_filter::events::{FilterEvents, MonitorEvents, NotifyEvent, NotifyKind};
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
impl FilterEvents for Log {}

impl Log {
    fn saw(&self, kind: NotifyKind, path: &Path) -> bool {
        let path = path.display().to_string();
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.kind == kind && e.file_name == path)
    }
}

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
