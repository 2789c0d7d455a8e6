//! FileMonitor on a private tmpfs: event names, paths, pids and order.

mod common;

use std::sync::{Arc, Mutex};

use common::{is_root, TmpfsMount};
use fsgate_core::Result;
use fsgate_filter::events::{MonitorEvents, NotifyEvent, NotifyKind};
use fsgate_filter::monitor::FileMonitor;
use fsgate_filter::rules::NotifyFlags;

#[derive(Default, Clone)]
struct Log {
    events: Arc<Mutex<Vec<NotifyEvent>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl MonitorEvents for Log {
    fn on_notify(&self, e: &NotifyEvent) -> Result<()> {
        self.events.lock().unwrap().push(e.clone());
        Ok(())
    }
    fn on_error(&self, _code: u32, description: &str) {
        self.errors.lock().unwrap().push(description.to_string());
    }
}

fn settle(m: &FileMonitor<Log>) {
    std::thread::sleep(std::time::Duration::from_millis(300));
    m.stop_filter().unwrap();
}

#[test]
fn scripted_workload_fires_each_event_with_names_pids_and_order() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
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
