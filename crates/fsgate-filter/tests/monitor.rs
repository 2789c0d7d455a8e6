//! FileMonitor on a private tmpfs: event names, paths, pids and order.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use fsgate_core::{code, Result};
use fsgate_filter::events::{AttachToVolume, Hooks, MonitorEvents, NotifyEvent, NotifyKind};
use fsgate_filter::monitor::FileMonitor;
use fsgate_filter::rules::NotifyFlags;
use fsgate_filter::volumes::Volume;
use fsgate_testkit::{mount_tmpfs, require_root, unmount, wait_for, TmpfsMount};

/// Holds `on_before_filter_attach_to_volume` for mounts named `gate` until released.
#[derive(Clone)]
struct Gate {
    entered: Arc<Mutex<Sender<()>>>,
    release: Arc<Mutex<Receiver<()>>>,
}

#[derive(Default, Clone)]
struct Log {
    events: Arc<Mutex<Vec<NotifyEvent>>>,
    errors: Arc<Mutex<Vec<(u32, String)>>>,
    /// ("attach" | "detach", mount point) in firing order.
    volumes: Arc<Mutex<Vec<(&'static str, PathBuf)>>>,
    gate: Option<Gate>,
}

impl MonitorEvents for Log {
    fn on_notify(&self, e: &NotifyEvent) -> Result<()> {
        self.events.lock().unwrap().push(e.clone());
        Ok(())
    }
    fn on_before_filter_attach_to_volume(&self, p: &mut AttachToVolume) -> Result<()> {
        let name = p.volume.mount_point.file_name().unwrap_or_default();
        if name == "skipme" {
            p.skip_volume = true;
        }
        if let (Some(g), true) = (&self.gate, name == "gate") {
            g.entered.lock().unwrap().send(()).unwrap();
            g.release.lock().unwrap().recv().unwrap();
        }
        Ok(())
    }
    fn on_after_filter_attach_to_volume(&self, v: &Volume) {
        self.volumes
            .lock()
            .unwrap()
            .push(("attach", v.mount_point.clone()));
    }
    fn on_after_filter_detach_from_volume(&self, v: &Volume) {
        self.volumes
            .lock()
            .unwrap()
            .push(("detach", v.mount_point.clone()));
    }
}
impl Hooks for Log {
    fn on_error(&self, code: u32, description: &str) {
        self.errors
            .lock()
            .unwrap()
            .push((code, description.to_string()));
    }
}

fn settle(m: &FileMonitor<Log>) {
    std::thread::sleep(std::time::Duration::from_millis(300));
    m.stop_filter().unwrap();
}

#[test]
fn scripted_workload_fires_each_event_with_names_pids_and_order() {
    require_root!("needs root");
    let mnt = TmpfsMount::new();
    let log = Log::default();
    let m = FileMonitor::new(log.clone());
    let root = mnt.path().display().to_string();
    m.add_filter_rule(&format!("{root}/*"), NotifyFlags::FS_NE_ALL)
        .unwrap();
    m.set_serialize_events(true);
    m.start_filter().unwrap();
    let a = mnt.path().join("a.txt");
    // The kernel merges identical unread events of one file and process; pausing between
    // steps lets the listener read each step's events before the next step queues more.
    let step = || std::thread::sleep(std::time::Duration::from_millis(150));
    std::fs::create_dir(mnt.path().join("dir")).unwrap();
    step();
    std::fs::write(&a, b"hello").unwrap();
    step();
    assert_eq!(std::fs::read(&a).unwrap(), b"hello");
    step();
    std::fs::set_permissions(&a, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    step();
    std::fs::rename(&a, mnt.path().join("dir/b.txt")).unwrap();
    step();
    std::fs::remove_file(mnt.path().join("dir/b.txt")).unwrap();
    settle(&m);
    let me = std::process::id();
    let events = log.events.lock().unwrap().clone();
    for e in &events {
        assert_eq!(e.process_id, me, "{e:?}");
        assert_eq!(e.user_id, Some(0));
    }
    let got: Vec<(NotifyKind, String, Option<String>)> = events
        .iter()
        .filter(|e| !e.directory || e.kind == NotifyKind::CreateFile)
        .map(|e| {
            (
                e.kind,
                e.file_name.replace(&root, ""),
                e.new_file_name.as_ref().map(|n| n.replace(&root, "")),
            )
        })
        .collect();
    use NotifyKind::*;
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        vec![
            (CreateFile, s("/dir"), None),
            (CreateFile, s("/a.txt"), None),
            (OpenFile, s("/a.txt"), None),
            (WriteFile, s("/a.txt"), None),
            (CloseFile, s("/a.txt"), None),
            (OpenFile, s("/a.txt"), None),
            (ReadFile, s("/a.txt"), None),
            (CloseFile, s("/a.txt"), None),
            (SetFileAttributes, s("/a.txt"), None),
            (RenameOrMoveFile, s("/a.txt"), Some(s("/dir/b.txt"))),
            (DeleteFile, s("/dir/b.txt"), None),
        ]
    );
    let closes: Vec<bool> = events
        .iter()
        .filter(|e| e.kind == CloseFile)
        .map(|e| e.modified)
        .collect();
    assert_eq!(closes, vec![true, false]);
    assert!(log.errors.lock().unwrap().is_empty());
}

#[test]
fn mounts_appearing_and_disappearing_attach_and_detach_while_running() {
    require_root!("needs root");
    let mnt = TmpfsMount::new();
    let log = Log::default();
    let m = FileMonitor::new(log.clone());
    let root = mnt.path().display().to_string();
    m.add_filter_rule(&format!("{root}/*"), NotifyFlags::FS_NE_CREATE)
        .unwrap();
    m.start_filter().unwrap();
    assert_eq!(
        *log.volumes.lock().unwrap(),
        vec![("attach", mnt.path().to_path_buf())]
    );

    let sub = mnt.path().join("sub");
    let skipped = mnt.path().join("skipme");
    std::fs::create_dir(&skipped).unwrap();
    mount_tmpfs(&skipped, 8);
    std::fs::create_dir(&sub).unwrap();
    mount_tmpfs(&sub, 8);
    wait_for("the attach of sub", || {
        log.volumes
            .lock()
            .unwrap()
            .contains(&("attach", sub.clone()))
    });
    std::fs::write(skipped.join("hidden.txt"), b"x").unwrap();
    std::fs::write(sub.join("new.txt"), b"x").unwrap();
    let new_file = sub.join("new.txt").display().to_string();
    wait_for("the create in sub", || {
        log.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.file_name == new_file && e.kind == NotifyKind::CreateFile)
    });

    unmount(&sub);
    wait_for("the detach of sub", || {
        log.volumes
            .lock()
            .unwrap()
            .contains(&("detach", sub.clone()))
    });
    unmount(&skipped);
    m.stop_filter().unwrap();

    assert_eq!(
        *log.volumes.lock().unwrap(),
        vec![
            ("attach", mnt.path().to_path_buf()),
            ("attach", sub.clone()),
            ("detach", sub.clone()),
            ("detach", mnt.path().to_path_buf()),
        ]
    );
    let names: Vec<String> = log
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.file_name.clone())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("hidden.txt")),
        "a skipped volume fired events: {names:?}"
    );
    assert!(log.errors.lock().unwrap().is_empty());
}

/// Whether this kernel gives a notification group an unlimited queue (it may refuse
/// `FAN_UNLIMITED_QUEUE`; the monitor then falls back to the default queue of 16384 events
/// and reports its overflow).
fn kernel_allows_unlimited_queue() -> bool {
    use fsgate_fanotify::{Class, Group, InitFlags};
    Group::new(
        Class::Notif,
        InitFlags::CLOEXEC
            | InitFlags::REPORT_FID
            | InitFlags::REPORT_DFID_NAME
            | InitFlags::UNLIMITED_QUEUE,
        libc::O_RDONLY,
    )
    .is_ok()
}

#[test]
fn a_burst_beyond_the_default_queue_loses_nothing_or_is_reported() {
    require_root!("needs root");
    let mnt = TmpfsMount::new();
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let log = Log {
        gate: Some(Gate {
            entered: Arc::new(Mutex::new(entered_tx)),
            release: Arc::new(Mutex::new(release_rx)),
        }),
        ..Default::default()
    };
    let m = FileMonitor::new(log.clone());
    let root = mnt.path().display().to_string();
    m.add_filter_rule(&format!("{root}/*"), NotifyFlags::FS_NE_CREATE)
        .unwrap();
    m.start_filter().unwrap();
    // The reader thread asks about new volumes itself: holding that question keeps it
    // from reading while more events queue than the default queue (16384) holds.
    let gate = mnt.path().join("gate");
    std::fs::create_dir(&gate).unwrap();
    mount_tmpfs(&gate, 8);
    entered.recv().unwrap();
    const FILES: usize = 20_000;
    for i in 0..FILES {
        std::fs::File::create(mnt.path().join(format!("f{i:05}"))).unwrap();
    }
    release.send(()).unwrap();
    let creates = || {
        log.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == NotifyKind::CreateFile && e.file_name.contains("/f"))
            .count()
    };
    if kernel_allows_unlimited_queue() {
        wait_for("every create", || creates() == FILES);
        unmount(&gate);
        m.stop_filter().unwrap();
        assert_eq!(creates(), FILES);
        assert!(log.errors.lock().unwrap().is_empty());
        return;
    }
    wait_for("the overflow report", || {
        !log.errors.lock().unwrap().is_empty()
    });
    unmount(&gate);
    m.stop_filter().unwrap();
    let errors = log.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, code::ERROR_INSUFFICIENT_BUFFER);
    assert!(errors[0].1.contains("overflowed"), "{errors:?}");
    assert!(creates() < FILES, "all {FILES} events arrived, none lost");
    assert!(
        creates() >= 16_000,
        "the queued events before the overflow: {}",
        creates()
    );
}
