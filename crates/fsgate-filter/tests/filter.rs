//! FileFilter on a private tmpfs: access rules, control events, timeouts, stop.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fsgate_core::{Error, Result};
use fsgate_filter::events::{ControlEvent, FilterEvents, Hooks, MonitorEvents};
use fsgate_filter::filter::{get_originator_process_id, FileFilter};
use fsgate_filter::rules::{AccessFlags, ControlFlags, NotifyFlags};
use fsgate_testkit::{require_root, TmpfsMount};

#[derive(Default, Clone)]
struct App {
    seen: Arc<Mutex<Vec<(String, u32)>>>,
    denied: Arc<Mutex<Vec<String>>>,
    errors: Arc<Mutex<Vec<(u32, String)>>>,
    deny_names: Vec<&'static str>,
    isolate_names: Vec<&'static str>,
    sleep: Option<Duration>,
}

impl MonitorEvents for App {}
impl Hooks for App {
    fn on_error(&self, code: u32, description: &str) {
        self.errors.lock().unwrap().push((code, description.into()));
    }
}
impl FilterEvents for App {
    fn on_before_open_file(&self, e: &mut ControlEvent) -> Result<()> {
        let pid = get_originator_process_id()?;
        assert_eq!(pid, e.process_id);
        // Direct file operation: the filter reads the very file it is asked about.
        std::fs::read(&e.file_name).map_err(|err| Error::io("reading", err))?;
        self.seen.lock().unwrap().push((e.file_name.clone(), pid));
        if let Some(d) = self.sleep {
            std::thread::sleep(d);
        }
        if self.deny_names.iter().any(|n| e.file_name.ends_with(n)) {
            return Err(Error::from_errno(libc::EACCES, "denied by test"));
        }
        if self.isolate_names.iter().any(|n| e.file_name.ends_with(n)) {
            e.isolate = true;
        }
        Ok(())
    }
    fn on_access_denied(&self, e: &ControlEvent) {
        self.denied.lock().unwrap().push(e.file_name.clone());
    }
}

fn cat(path: &std::path::Path) -> (bool, String, String) {
    let out = Command::new("cat")
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn access_rules_deny_without_callback_and_leave_others_alone() {
    require_root!("fanotify permission groups need root");
    let mnt = TmpfsMount::new();
    let secret = mnt.path().join("secret.key");
    let open = mnt.path().join("notes.txt");
    std::fs::write(&secret, b"k").unwrap();
    std::fs::write(&open, b"n").unwrap();
    let app = App::default();
    let f = FileFilter::new(app.clone());
    let root = mnt.path().display();
    f.add_filter_rule(
        &format!("{root}/*.key"),
        AccessFlags::ACCESS_WRITE_ONLY,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )
    .unwrap();
    f.add_filter_rule(
        &format!("{root}/*.txt"),
        AccessFlags::ACCESS_READ_ONLY,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )
    .unwrap();
    f.start_filter(0).unwrap();
    let (ok, out, err) = cat(&secret);
    assert!(
        !ok && out.is_empty() && err.contains("Operation not permitted"),
        "{err}"
    );
    assert_eq!(cat(&open), (true, "n".into(), String::new()));
    let w = Command::new("sh")
        .arg("-c")
        .arg(format!("echo x > {}", open.display()))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!w.status.success());
    assert!(String::from_utf8_lossy(&w.stderr).contains("Operation not permitted"));
    // The filter's own process is never filtered.
    assert_eq!(std::fs::read(&secret).unwrap(), b"k");
    std::thread::sleep(Duration::from_millis(200));
    f.stop_filter().unwrap();
    assert!(app.seen.lock().unwrap().is_empty());
    let denied = app.denied.lock().unwrap().clone();
    assert_eq!(
        denied.iter().filter(|d| d.ends_with("secret.key")).count(),
        1,
        "{denied:?}"
    );
    assert_eq!(
        denied.iter().filter(|d| d.ends_with("notes.txt")).count(),
        1,
        "{denied:?}"
    );
    assert_eq!(cat(&secret), (true, "k".into(), String::new()));
}

#[test]
fn handler_err_denies_and_ok_allows_with_originator() {
    require_root!("fanotify permission groups need root");
    let mnt = TmpfsMount::new();
    std::fs::write(mnt.path().join("a.txt"), b"a").unwrap();
    std::fs::write(mnt.path().join("b.txt"), b"b").unwrap();
    let app = App {
        deny_names: vec!["b.txt"],
        ..Default::default()
    };
    let f = FileFilter::new(app.clone());
    f.add_filter_rule(
        &format!("{}/*", mnt.path().display()),
        AccessFlags::empty(),
        ControlFlags::FS_CE_BEFORE_OPEN,
        NotifyFlags::empty(),
    )
    .unwrap();
    f.start_filter(0).unwrap();
    let child_a = cat(&mnt.path().join("a.txt"));
    let child_b = cat(&mnt.path().join("b.txt"));
    f.stop_filter().unwrap();
    assert_eq!(child_a, (true, "a".into(), String::new()));
    assert!(
        !child_b.0 && child_b.2.contains("Operation not permitted"),
        "{child_b:?}"
    );
    let seen = app.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].0.ends_with("a.txt") && seen[1].0.ends_with("b.txt"));
    assert_ne!(seen[0].1, std::process::id());
}

#[test]
fn an_open_isolated_on_the_fanotify_backend_is_refused_and_reported() {
    require_root!("fanotify permission groups need root");
    let mnt = TmpfsMount::new();
    std::fs::write(mnt.path().join("plain.txt"), b"p").unwrap();
    std::fs::write(mnt.path().join("iso.txt"), b"i").unwrap();
    let app = App {
        isolate_names: vec!["iso.txt"],
        ..Default::default()
    };
    let f = FileFilter::new(app.clone());
    f.add_filter_rule(
        &format!("{}/*", mnt.path().display()),
        AccessFlags::empty(),
        ControlFlags::FS_CE_BEFORE_OPEN,
        NotifyFlags::empty(),
    )
    .unwrap();
    f.start_filter(0).unwrap();
    let plain = cat(&mnt.path().join("plain.txt"));
    let isolated = cat(&mnt.path().join("iso.txt"));
    f.stop_filter().unwrap();
    assert_eq!(plain, (true, "p".into(), String::new()));
    // fanotify cannot show one process other content: the open is refused, not served
    // with the real file.
    assert!(
        !isolated.0 && isolated.1.is_empty() && isolated.2.contains("Operation not permitted"),
        "{isolated:?}"
    );
    let errors = app.errors.lock().unwrap().clone();
    assert!(
        errors.iter().any(
            |(code, text)| *code == fsgate_core::code::ERROR_NOT_SUPPORTED
                && text.contains("iso.txt")
                && text.contains("Backend=Overlay")
        ),
        "{errors:?}"
    );
}

#[test]
fn expired_event_is_released_or_denied_at_the_deadline() {
    require_root!("fanotify permission groups need root");
    for deny_expired in [false, true] {
        let mnt = TmpfsMount::new();
        std::fs::write(mnt.path().join("slow.txt"), b"s").unwrap();
        let app = App {
            sleep: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let f = FileFilter::new(app.clone());
        f.config(&format!("DenyExpiredEvents={deny_expired}"))
            .unwrap();
        f.add_filter_rule(
            &format!("{}/*", mnt.path().display()),
            AccessFlags::empty(),
            ControlFlags::FS_CE_BEFORE_OPEN,
            NotifyFlags::empty(),
        )
        .unwrap();
        f.start_filter(3000).unwrap();
        let t = Instant::now();
        let (ok, out, _) = cat(&mnt.path().join("slow.txt"));
        assert!(
            t.elapsed() >= Duration::from_millis(2900),
            "answered before the deadline"
        );
        assert_eq!(ok, !deny_expired);
        assert_eq!(out, if deny_expired { "" } else { "s" });
        f.stop_filter().unwrap();
    }
}

#[test]
fn stopping_releases_every_held_event() {
    require_root!("fanotify permission groups need root");
    let mnt = TmpfsMount::new();
    std::fs::write(mnt.path().join("held.txt"), b"h").unwrap();
    let app = App {
        sleep: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let f = FileFilter::new(app.clone());
    f.add_filter_rule(
        &format!("{}/*", mnt.path().display()),
        AccessFlags::empty(),
        ControlFlags::FS_CE_BEFORE_OPEN,
        NotifyFlags::empty(),
    )
    .unwrap();
    f.start_filter(0).unwrap();
    let child = Command::new("cat")
        .arg(mnt.path().join("held.txt"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    while app.seen.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    f.stop_filter().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"h");
}

#[test]
fn bad_timeouts_and_overlay_rules_on_fanotify_are_refused() {
    let f = FileFilter::new(App::default());
    assert_eq!(f.start_filter(1000).unwrap_err().code(), 1292);
    // Delete protection is the overlay's: a stopped filter takes the rule, and a filter told
    // to stay on fanotify refuses to start with it.
    f.add_filter_rule(
        "/x/*",
        AccessFlags::ACCESS_DELETE_PROTECT,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )
    .unwrap();
    f.config("Backend=Fanotify").unwrap();
    let e = f.start_filter(0).unwrap_err();
    assert_eq!(e.code(), fsgate_core::code::ERROR_NOT_SUPPORTED);
    assert!(e.message().contains("Backend=Fanotify"), "{e}");
    assert!(!f.active());
    assert_eq!(get_originator_process_id().unwrap_err().code(), 614);
}

#[derive(Default, Clone)]
struct Volumes(Arc<Mutex<Vec<(&'static str, std::path::PathBuf)>>>);

impl MonitorEvents for Volumes {
    fn on_after_filter_attach_to_volume(&self, v: &fsgate_filter::volumes::Volume) {
        self.0
            .lock()
            .unwrap()
            .push(("attach", v.mount_point.clone()));
    }
    fn on_after_filter_detach_from_volume(&self, v: &fsgate_filter::volumes::Volume) {
        self.0
            .lock()
            .unwrap()
            .push(("detach", v.mount_point.clone()));
    }
}
impl Hooks for Volumes {}
impl FilterEvents for Volumes {}

#[test]
fn access_rules_reach_mounts_that_appear_while_running() {
    require_root!("fanotify permission groups need root");
    let mnt = TmpfsMount::new();
    let vols = Volumes::default();
    let f = FileFilter::new(vols.clone());
    f.add_filter_rule(
        &format!("{}/*.key", mnt.path().display()),
        AccessFlags::ACCESS_WRITE_ONLY,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )
    .unwrap();
    f.start_filter(0).unwrap();
    let sub = mnt.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert!(Command::new("mount")
        .args(["-t", "tmpfs", "fsgate-sub"])
        .arg(&sub)
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    while !vols.0.lock().unwrap().contains(&("attach", sub.clone())) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sub never attached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(sub.join("new.key"), b"k").unwrap();
    std::fs::write(sub.join("new.txt"), b"t").unwrap();
    let (ok, out, err) = cat(&sub.join("new.key"));
    assert!(
        !ok && out.is_empty() && err.contains("Operation not permitted"),
        "{err}"
    );
    assert_eq!(cat(&sub.join("new.txt")), (true, "t".into(), String::new()));
    // The listener closes each event's descriptor just after answering it, so the mount can
    // be busy for that instant after `cat` returns; it must not stay busy.
    let unmounting = Instant::now();
    while !Command::new("umount").arg(&sub).status().unwrap().success() {
        assert!(
            unmounting.elapsed() < Duration::from_secs(10),
            "the filter must not keep the mount busy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    while !vols.0.lock().unwrap().contains(&("detach", sub.clone())) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sub never detached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    f.stop_filter().unwrap();
    assert_eq!(
        *vols.0.lock().unwrap(),
        vec![
            ("attach", mnt.path().to_path_buf()),
            ("attach", sub.clone()),
            ("detach", sub),
            ("detach", mnt.path().to_path_buf()),
        ]
    );
}
