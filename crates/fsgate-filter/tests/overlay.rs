//! The overlay backend through the kernel: an instrumented filter mounted over a directory
//! the test creates; the test process's own calls go through the overlay like anyone's.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use fsgate_core::{Error, Result};
use fsgate_filter::events::{
    Context, ContextKind, ControlEvent, DirectoryEntry, FileRequest, FilterEvents, Hooks,
    MonitorEvents,
};
use fsgate_filter::filter::FileFilter;
use fsgate_filter::rules::{AccessFlags, ControlFlags, NotifyFlags};
use fsgate_testkit::{is_mounted, lazy_unmount, require_root, wait_for};

/// Everything the instrumented filter saw.
#[derive(Default)]
struct Seen {
    /// Contexts alive now, by kind.
    alive: Mutex<Vec<ContextKind>>,
    /// `on_cleanup_context` calls, by kind.
    cleaned: Mutex<Vec<ContextKind>>,
    /// The After events seen.
    after: Mutex<Vec<AfterSeen>>,
    /// Opens the Before handler is holding (for the timeout test).
    stuck: Mutex<Option<mpsc::Receiver<()>>>,
    created: AtomicUsize,
    /// Writes an isolated open without a backend handed to `on_before_write_file`.
    events_written: Mutex<Vec<(u64, Vec<u8>)>>,
}

/// What an isolated open of a `*.evt` file without a backend reads: the events' content.
const FROM_EVENTS: &[u8] = b"served by the events, not the disk";

/// Whether `e` comes from a process other than this test's: the child processes the
/// isolation tests run (the test process itself sees the files as they are).
fn from_child(pid: u32) -> bool {
    pid != std::process::id()
}

/// One After event: (event, file name, result code, event context).
type AfterSeen = (String, String, i32, Option<u32>);

/// A context that counts itself.
struct Tracked {
    kind: ContextKind,
    seen: Arc<Seen>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut alive = self.seen.alive.lock().unwrap();
        if let Some(i) = alive.iter().position(|k| *k == self.kind) {
            alive.remove(i);
        }
    }
}

#[derive(Clone, Default)]
struct Lab {
    seen: Arc<Seen>,
}

impl Lab {
    fn track(&self, kind: ContextKind) -> Context {
        self.seen.alive.lock().unwrap().push(kind);
        self.seen.created.fetch_add(1, Ordering::SeqCst);
        Box::new(Tracked {
            kind,
            seen: Arc::clone(&self.seen),
        })
    }

    fn after(&self, event: &str, r: &FileRequest<'_>) {
        let context = r
            .event_context
            .as_ref()
            .and_then(|c| c.downcast_ref::<u32>())
            .copied();
        self.seen.after.lock().unwrap().push((
            event.into(),
            r.file_name.into(),
            r.result_code,
            context,
        ));
    }
}

impl Hooks for Lab {}
impl MonitorEvents for Lab {}

impl FilterEvents for Lab {
    fn on_before_create_file(&self, e: &mut ControlEvent) -> Result<()> {
        if from_child(e.process_id) && e.file_name.ends_with(".srv.evt") {
            e.process_request = false;
        }
        if from_child(e.process_id) && e.file_name.ends_with(".iso") {
            (e.isolate, e.backend_file_name) = (true, format!("{}.alt", e.file_name));
        }
        Ok(())
    }

    fn on_before_open_file(&self, e: &mut ControlEvent) -> Result<()> {
        if from_child(e.process_id) {
            // Served by the handler; another file, no file (the events), the file itself.
            if e.file_name.ends_with(".srv.evt") {
                e.process_request = false;
            } else if e.file_name.ends_with(".iso") {
                (e.isolate, e.backend_file_name) = (true, format!("{}.alt", e.file_name));
            } else if e.file_name.ends_with(".evt") {
                (e.isolate, e.backend_file_name) = (true, String::new());
            } else if e.file_name.ends_with(".isoctx") {
                e.isolate = true;
            }
        }
        if e.file_name.ends_with(".blocked") {
            return Err(Error::from_errno(libc::EXDEV, "blocked by the test"));
        }
        if e.file_name.ends_with(".stuck") {
            // Taken out first: the lock must not be held while the handler waits.
            let held = self.seen.stuck.lock().unwrap().take();
            if let Some(rx) = held {
                let _ = rx.recv();
            }
        }
        Ok(())
    }

    fn on_after_open_file(&self, r: &mut FileRequest<'_>) -> Result<()> {
        if r.file_name.ends_with(".refused-after") {
            r.result_code = libc::EMFILE;
            return Ok(());
        }
        if r.file_name.ends_with(".ctx") || r.file_name.ends_with(".isoctx") {
            if r.file_context.is_none() {
                *r.file_context = Some(self.track(ContextKind::File));
            }
            *r.handle_context = Some(self.track(ContextKind::Handle));
        }
        Ok(())
    }

    fn on_before_write_file(&self, r: &mut FileRequest<'_>) -> Result<()> {
        if r.file_name.ends_with(".evt") {
            let written = (r.offset, r.buffer.clone());
            self.seen.events_written.lock().unwrap().push(written);
            r.process_request = false;
        }
        if r.file_name.ends_with(".upper") {
            r.buffer.make_ascii_uppercase();
        }
        Ok(())
    }

    fn on_before_query_file_info(&self, r: &mut FileRequest<'_>) -> Result<()> {
        if r.file_name.ends_with(".evt") {
            r.size = Some(FROM_EVENTS.len() as u64);
        }
        Ok(())
    }

    fn on_after_read_file(&self, r: &mut FileRequest<'_>) -> Result<()> {
        if r.file_name.ends_with(".evt") && r.buffer.is_empty() {
            let start = (r.offset as usize).min(FROM_EVENTS.len());
            let end = (start + r.length).min(FROM_EVENTS.len());
            r.buffer = FROM_EVENTS[start..end].to_vec();
        }
        if r.file_name.ends_with(".quiet") {
            r.buffer.make_ascii_lowercase();
        }
        Ok(())
    }

    fn on_after_enumerate_directory(&self, r: &mut FileRequest<'_>) -> Result<()> {
        if r.file_name.ends_with("/listing") {
            r.entries.retain(|e| e.name != "hidden.txt");
            r.entries.push(DirectoryEntry {
                name: "ghost.txt".into(),
                kind: fsgate_vfs::FileKind::File,
                file_id: 0,
            });
            *r.enumeration_context = Some(self.track(ContextKind::Enumeration));
        }
        Ok(())
    }

    fn on_before_delete_file(&self, r: &mut FileRequest<'_>) -> Result<()> {
        if r.file_name.ends_with(".busy") {
            return Err(Error::from_errno(libc::ETXTBSY, "busy by the test"));
        }
        r.event_context = Some(Box::new(42u32));
        Ok(())
    }

    fn on_after_delete_file(&self, r: &mut FileRequest<'_>) -> Result<()> {
        self.after("after_delete_file", r);
        Ok(())
    }

    fn on_cleanup_context(&self, kind: ContextKind, _context: &mut Context) {
        self.seen.cleaned.lock().unwrap().push(kind);
    }
}

/// A directory the test created, with the filter's overlay on it: dropped (unmounted)
/// before the directory goes, and lazily unmounted if a test panics with it mounted.
struct Overlaid {
    filter: FileFilter<Lab>,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Overlaid {
    /// Every control flag on everything under the directory (and the directory itself).
    fn start(prepare: impl FnOnce(&Path)) -> Self {
        Self::start_with(prepare, |_, _| {})
    }

    fn start_with(
        prepare: impl FnOnce(&Path),
        configure: impl FnOnce(&FileFilter<Lab>, &str),
    ) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        prepare(&dir);
        let filter = FileFilter::new(Lab::default());
        let root = dir.display().to_string();
        let all = ControlFlags::FS_CE_BEFORE_OPEN
            | ControlFlags::FS_CE_BEFORE_CREATE
            | ControlFlags::FS_CE_AFTER_OPEN
            | ControlFlags::FS_CE_BEFORE_WRITE
            | ControlFlags::FS_CE_AFTER_READ
            | ControlFlags::FS_CE_AFTER_ENUMERATE_DIRECTORY
            | ControlFlags::FS_CE_BEFORE_DELETE
            | ControlFlags::FS_CE_AFTER_DELETE;
        for mask in [root.clone(), format!("{root}/*")] {
            filter
                .add_filter_rule(&mask, AccessFlags::empty(), all, NotifyFlags::empty())
                .unwrap();
        }
        configure(&filter, &root);
        filter.start_filter(0).unwrap();
        assert!(is_mounted(&dir));
        Self {
            filter,
            dir,
            _tmp: tmp,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn seen(&self) -> &Seen {
        &self.filter.handler().seen
    }
}

impl Drop for Overlaid {
    fn drop(&mut self) {
        let _ = self.filter.stop_filter();
        if is_mounted(&self.dir) {
            lazy_unmount(&self.dir);
        }
    }
}

fn errno_of(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[test]
fn a_before_handlers_error_is_the_errno_the_caller_sees() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|d| {
        std::fs::write(d.join("a.blocked"), b"x").unwrap();
        std::fs::write(d.join("b.busy"), b"x").unwrap();
    });
    let open = std::fs::File::open(o.path("a.blocked")).unwrap_err();
    assert_eq!(errno_of(open), libc::EXDEV);
    let delete = std::fs::remove_file(o.path("b.busy")).unwrap_err();
    assert_eq!(errno_of(delete), libc::ETXTBSY);
    assert!(o.path("b.busy").exists());
}

#[test]
fn an_after_handler_changes_the_result() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|d| std::fs::write(d.join("c.refused-after"), b"x").unwrap());
    let open = std::fs::File::open(o.path("c.refused-after")).unwrap_err();
    assert_eq!(errno_of(open), libc::EMFILE);
}

#[test]
fn data_changed_in_flight_lands_and_reads_back_changed() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|d| std::fs::write(d.join("t.quiet"), b"LOUD Words").unwrap());
    std::fs::write(o.path("w.upper"), b"make me big").unwrap();
    assert_eq!(std::fs::read(o.path("t.quiet")).unwrap(), b"loud words");
    let dir = o.dir.clone();
    o.filter.stop_filter().unwrap();
    assert!(!is_mounted(&dir));
    // Below the overlay: the write landed changed, the read was changed only on its way.
    assert_eq!(std::fs::read(dir.join("w.upper")).unwrap(), b"MAKE ME BIG");
    assert_eq!(std::fs::read(dir.join("t.quiet")).unwrap(), b"LOUD Words");
}

#[test]
fn after_enumeration_hides_and_adds_entries() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|d| {
        std::fs::create_dir(d.join("listing")).unwrap();
        for n in ["hidden.txt", "shown.txt"] {
            std::fs::write(d.join("listing").join(n), b"x").unwrap();
        }
    });
    let names: BTreeSet<String> = std::fs::read_dir(o.path("listing"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["ghost.txt".to_string(), "shown.txt".to_string()])
    );
    wait_for("the enumeration context's cleanup", || {
        o.seen()
            .cleaned
            .lock()
            .unwrap()
            .contains(&ContextKind::Enumeration)
    });
    assert!(!o
        .seen()
        .alive
        .lock()
        .unwrap()
        .contains(&ContextKind::Enumeration));
}

#[test]
fn file_and_handle_contexts_live_from_first_open_to_last_close() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|d| std::fs::write(d.join("x.ctx"), b"0123").unwrap());
    let count = |k| {
        o.seen()
            .alive
            .lock()
            .unwrap()
            .iter()
            .filter(|a| **a == k)
            .count()
    };
    let cleaned = |k| {
        o.seen()
            .cleaned
            .lock()
            .unwrap()
            .iter()
            .filter(|a| **a == k)
            .count()
    };
    // 1. A opens: FX, HXA.
    let mut a = std::fs::File::open(o.path("x.ctx")).unwrap();
    assert_eq!(
        (count(ContextKind::File), count(ContextKind::Handle)),
        (1, 1)
    );
    // 2. B opens: HXB.
    let b = std::fs::File::open(o.path("x.ctx")).unwrap();
    assert_eq!(
        (count(ContextKind::File), count(ContextKind::Handle)),
        (1, 2)
    );
    // 3. B closes: HXB goes (releases are asynchronous).
    drop(b);
    wait_for("HXB's cleanup", || cleaned(ContextKind::Handle) == 1);
    assert_eq!(
        (count(ContextKind::File), count(ContextKind::Handle)),
        (1, 1)
    );
    let mut text = String::new();
    a.read_to_string(&mut text).unwrap();
    assert_eq!(text, "0123");
    // 5. A closes: HXA and FX go, cleanup before drop.
    drop(a);
    wait_for("FX's cleanup", || cleaned(ContextKind::File) == 1);
    assert_eq!(
        (count(ContextKind::File), count(ContextKind::Handle)),
        (0, 0)
    );
    assert_eq!(cleaned(ContextKind::Handle), 2);
    assert_eq!(o.seen().created.load(Ordering::SeqCst), 3);
}

#[test]
fn event_contexts_and_process_failed_requests_reach_the_after_event() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|d| {
        std::fs::write(d.join("gone.txt"), b"x").unwrap();
        std::fs::create_dir(d.join("full")).unwrap();
        std::fs::write(d.join("full/inside"), b"x").unwrap();
    });
    std::fs::remove_file(o.path("gone.txt")).unwrap();
    let failed = std::fs::remove_dir(o.path("full")).unwrap_err();
    assert_eq!(errno_of(failed), libc::ENOTEMPTY);
    o.filter.set_process_failed_requests(true).unwrap();
    assert_eq!(o.filter.config("ProcessFailedRequests").unwrap(), "True");
    let failed = std::fs::remove_dir(o.path("full")).unwrap_err();
    assert_eq!(errno_of(failed), libc::ENOTEMPTY);
    let root = o.dir.display().to_string();
    assert_eq!(
        *o.seen().after.lock().unwrap(),
        vec![
            (
                "after_delete_file".into(),
                format!("{root}/gone.txt"),
                0,
                Some(42)
            ),
            (
                "after_delete_file".into(),
                format!("{root}/full"),
                libc::ENOTEMPTY,
                Some(42)
            ),
        ]
    );
}

#[test]
fn backend_overlay_serves_access_rules_with_eacces() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start_with(
        |d| std::fs::write(d.join("ro.txt"), b"ro").unwrap(),
        |f, root| {
            f.config("Backend=Overlay").unwrap();
            assert!(f.config("Backend=Sideways").is_err());
            f.add_filter_rule(
                &format!("{root}/*.txt"),
                AccessFlags::ACCESS_READ_ONLY,
                ControlFlags::empty(),
                NotifyFlags::empty(),
            )
            .unwrap();
        },
    );
    assert_eq!(o.filter.overlay_directories().len(), 1);
    let write = std::fs::OpenOptions::new()
        .write(true)
        .open(o.path("ro.txt"))
        .unwrap_err();
    assert_eq!(errno_of(write), libc::EACCES);
    let create = std::fs::File::create(o.path("new.txt")).unwrap_err();
    assert_eq!(errno_of(create), libc::EACCES);
    assert!(!o.path("new.txt").exists());
    assert_eq!(std::fs::read(o.path("ro.txt")).unwrap(), b"ro");
}

#[test]
fn a_handler_past_the_timeout_releases_its_caller_with_eio() {
    require_root!("the overlay's FUSE mount needs root");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f.stuck"), b"x").unwrap();
    let filter = FileFilter::new(Lab::default());
    let (release, held) = mpsc::channel();
    *filter.handler().seen.stuck.lock().unwrap() = Some(held);
    filter
        .add_filter_rule(
            &format!("{}/*", dir.display()),
            AccessFlags::ACCESS_DELETE_PROTECT,
            ControlFlags::FS_CE_BEFORE_OPEN,
            NotifyFlags::empty(),
        )
        .unwrap();
    filter.start_filter(3000).unwrap();
    let guard = scopeguard(&dir);
    let open = std::fs::File::open(dir.join("f.stuck")).unwrap_err();
    assert_eq!(errno_of(open), libc::EIO);
    release.send(()).unwrap();
    filter.stop_filter().unwrap();
    assert!(!is_mounted(&dir));
    drop(guard);
    assert_eq!(std::fs::read(dir.join("f.stuck")).unwrap(), b"x");
}

#[test]
fn stop_releases_a_caller_blocked_in_a_handler_with_no_timeout() {
    require_root!("the overlay's FUSE mount needs root");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f.stuck"), b"x").unwrap();
    let filter = FileFilter::new(Lab::default());
    let (release, held) = mpsc::channel();
    *filter.handler().seen.stuck.lock().unwrap() = Some(held);
    filter
        .add_filter_rule(
            &format!("{}/*", dir.display()),
            AccessFlags::ACCESS_DELETE_PROTECT,
            ControlFlags::FS_CE_BEFORE_OPEN,
            NotifyFlags::empty(),
        )
        .unwrap();
    filter.start_filter(0).unwrap();
    let guard = scopeguard(&dir);
    let path = dir.join("f.stuck");
    let opener = std::thread::spawn(move || std::fs::File::open(path).map(drop).map_err(errno_of));
    // The handler holds the open until it is released: wait until it is in it.
    wait_for("the open in its handler", || {
        filter.handler().seen.stuck.lock().unwrap().is_none()
    });
    filter.stop_filter().unwrap();
    // The kernel fails a request it waited on when its connection is ended.
    assert_eq!(opener.join().unwrap(), Err(libc::ECONNABORTED));
    assert!(!is_mounted(&dir));
    release.send(()).unwrap();
    drop(guard);
    assert_eq!(std::fs::read(dir.join("f.stuck")).unwrap(), b"x");
}

/// Lazily unmounts `dir` on drop if it is still mounted (a test that panicked).
fn scopeguard(dir: &Path) -> impl Drop + '_ {
    struct Guard<'a>(&'a Path);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            if is_mounted(self.0) {
                lazy_unmount(self.0);
            }
        }
    }
    Guard(dir)
}

#[test]
fn names_keep_their_bytes_through_the_overlay() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|_| {});
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.bin");
    let mut f = std::fs::File::create(o.dir.join(name)).unwrap();
    f.write_all(b"bytes").unwrap();
    drop(f);
    assert_eq!(std::fs::read(o.dir.join(name)).unwrap(), b"bytes");
}

#[test]
fn direct_operations_reach_the_lower_files_unfiltered() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start_with(
        |d| std::fs::write(d.join("ro.txt"), b"ro").unwrap(),
        |f, root| {
            f.add_filter_rule(
                &format!("{root}/*.txt"),
                AccessFlags::ACCESS_READ_ONLY | AccessFlags::ACCESS_DELETE_PROTECT,
                ControlFlags::empty(),
                NotifyFlags::empty(),
            )
            .unwrap();
        },
    );
    let refused = std::fs::File::create(o.path("made.txt")).unwrap_err();
    assert_eq!(errno_of(refused), libc::EACCES);
    let name = o.path("direct.txt").display().to_string();
    let file = o
        .filter
        .create_file_direct(&name, libc::O_RDWR | libc::O_CREAT, 0o640)
        .unwrap();
    o.filter.set_file_size_direct(&file, 4096).unwrap();
    assert_eq!(
        o.filter.query_file_information_direct(&file).unwrap().len(),
        4096
    );
    o.filter
        .set_file_security_direct(&file, None, None, Some(0o600))
        .unwrap();
    assert_eq!(
        o.filter.query_file_security_direct(&file).unwrap().mode,
        0o600
    );
    // The overlay shows what the direct operations did.
    assert_eq!(std::fs::metadata(&name).unwrap().len(), 4096);
    let ro = o
        .filter
        .create_file_direct(
            &o.path("ro.txt").display().to_string(),
            libc::O_WRONLY | libc::O_TRUNC,
            0,
        )
        .unwrap();
    drop(ro);
    assert_eq!(std::fs::metadata(o.path("ro.txt")).unwrap().len(), 0);
}

#[test]
fn reparse_rules_redirect_and_are_listed_by_their_snapshot() {
    require_root!("the overlay's FUSE mount needs root");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("target.bin"), b"target").unwrap();
    let o = Overlaid::start_with(
        |d| std::fs::write(d.join("a.bin"), b"a").unwrap(),
        |f, root| {
            let target = outside.path().join("target.bin").display().to_string();
            f.add_reparse_rule(&format!("{root}/*.bin"), &target)
                .unwrap();
            let snapshot = f.create_reparse_rules_snapshot();
            assert_eq!(snapshot.len(), 1);
            assert_eq!(
                f.get_reparse_rule_by_mask(&snapshot[0].mask)
                    .unwrap()
                    .new_mask,
                target
            );
            f.close_reparse_rules_snapshot();
            assert!(f.get_reparse_rule_by_mask("/nothing").is_err());
        },
    );
    assert_eq!(std::fs::read(o.path("a.bin")).unwrap(), b"target");
    assert_eq!(std::fs::read(o.path("b.bin")).unwrap(), b"target");
    assert!(o
        .filter
        .delete_reparse_rule(&format!("{}/*.bin", o.dir.display())));
}

/// Records the Notify events the overlay fires.
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<Vec<(String, String)>>>);

impl Hooks for Notes {}
impl MonitorEvents for Notes {
    fn on_notify(&self, e: &fsgate_filter::events::NotifyEvent) -> Result<()> {
        self.0
            .lock()
            .unwrap()
            .push((e.kind.event_name().into(), e.file_name.clone()));
        Ok(())
    }
}
impl FilterEvents for Notes {}

#[test]
fn notify_events_follow_each_operation_asynchronously() {
    require_root!("the overlay's FUSE mount needs root");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    let filter = FileFilter::new(Notes::default());
    let root = dir.display().to_string();
    filter
        .add_filter_rule(
            &format!("{root}/*"),
            AccessFlags::empty(),
            ControlFlags::empty(),
            NotifyFlags::FS_NE_ALL,
        )
        .unwrap();
    filter.config("Backend=Overlay").unwrap();
    filter.start_filter(0).unwrap();
    let guard = scopeguard(&dir);
    std::fs::write(dir.join("n.txt"), b"n").unwrap();
    std::fs::rename(dir.join("n.txt"), dir.join("m.txt")).unwrap();
    std::fs::remove_file(dir.join("m.txt")).unwrap();
    let notes = Arc::clone(&filter.handler().0);
    let expected = [
        ("notify_create_file", "n.txt"),
        ("notify_write_file", "n.txt"),
        ("notify_close_file", "n.txt"),
        ("notify_rename_or_move_file", "n.txt"),
        ("notify_delete_file", "m.txt"),
    ];
    let shown = Arc::clone(&notes);
    let _report = Reporter(move || format!("{:?}", shown.lock().unwrap()));
    wait_for("every notification", || {
        let seen = notes.lock().unwrap();
        expected
            .iter()
            .all(|(e, n)| seen.contains(&(e.to_string(), format!("{root}/{n}"))))
    });
    filter.stop_filter().unwrap();
    drop(guard);
}

/// Prints what a closure says when dropped during a panic (what a failed wait saw).
struct Reporter<F: Fn() -> String>(F);

impl<F: Fn() -> String> Drop for Reporter<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("seen: {}", (self.0)());
        }
    }
}

/// Runs `script` with `sh` in `dir`; its standard output (it must succeed).
fn sh(dir: &Path, script: &str) -> Vec<u8> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The size `stat` of `name` in `dir` reports to a process that has it open (on its
/// standard input: the shell opens it and becomes `stat`), as text.
fn size_seen_by_a_child(dir: &Path, name: &str) -> String {
    let out = sh(dir, &format!("exec stat -L -c %s {name} < {name}"));
    String::from_utf8(out).unwrap().trim().to_string()
}

#[test]
fn isolated_processes_see_their_backend_file_and_others_the_file_itself() {
    require_root!("the overlay's FUSE mount needs root");
    const REAL: &[u8] = b"real content";
    const ALT: &[u8] = b"the isolated view of it";
    let o = Overlaid::start(|d| {
        std::fs::write(d.join("data.iso"), REAL).unwrap();
        std::fs::write(d.join("data.iso.alt"), ALT).unwrap();
    });
    // The test process reads the file first: its pages are in the page cache.
    assert_eq!(std::fs::read(o.path("data.iso")).unwrap(), REAL);
    // A child's opens are isolated to data.iso.alt: what it reads and the size its stat
    // shows are the backend's.
    assert_eq!(sh(&o.dir, "cat data.iso"), ALT);
    assert_eq!(
        size_seen_by_a_child(&o.dir, "data.iso"),
        ALT.len().to_string()
    );
    // This process still sees the file itself, bytes and size.
    assert_eq!(std::fs::read(o.path("data.iso")).unwrap(), REAL);
    assert_eq!(
        std::fs::metadata(o.path("data.iso")).unwrap().len(),
        REAL.len() as u64
    );

    // A child's write (truncating) lands in the backend, not in the file.
    sh(&o.dir, "printf 'written by the child' > data.iso");
    assert_eq!(sh(&o.dir, "cat data.iso"), b"written by the child");
    assert_eq!(size_seen_by_a_child(&o.dir, "data.iso"), "20");
    // An append lands at the backend's end, whatever size the kernel last knew.
    assert_eq!(std::fs::read(o.path("data.iso")).unwrap(), REAL);
    sh(&o.dir, "printf ', then more' >> data.iso");
    assert_eq!(
        sh(&o.dir, "cat data.iso"),
        b"written by the child, then more"
    );
    let mut open = std::fs::File::open(o.path("data.iso")).unwrap();
    let mut read = Vec::new();
    open.read_to_end(&mut read).unwrap();
    assert_eq!(read, REAL, "the other process still sees the original");
    assert_eq!(open.metadata().unwrap().len(), REAL.len() as u64);
    drop(open);

    let dir = o.dir.clone();
    o.filter.stop_filter().unwrap();
    assert_eq!(std::fs::read(dir.join("data.iso")).unwrap(), REAL);
    assert_eq!(
        std::fs::read(dir.join("data.iso.alt")).unwrap(),
        b"written by the child, then more"
    );
}

#[test]
fn an_isolated_open_without_a_backend_file_is_served_by_the_events() {
    require_root!("the overlay's FUSE mount needs root");
    const REAL: &[u8] = b"on disk bytes";
    let o = Overlaid::start(|d| std::fs::write(d.join("data.evt"), REAL).unwrap());
    // The child's size and bytes come from on_before_query_file_info and
    // on_after_read_file, which fire without a rule asking for them.
    assert_eq!(
        size_seen_by_a_child(&o.dir, "data.evt"),
        FROM_EVENTS.len().to_string()
    );
    assert_eq!(sh(&o.dir, "cat data.evt"), FROM_EVENTS);
    assert_eq!(
        sh(&o.dir, "dd if=data.evt bs=1 skip=10 count=9 2>/dev/null"),
        b"the event"
    );
    // Its write reaches on_before_write_file and nothing else.
    sh(&o.dir, "printf abc 1<> data.evt");
    assert_eq!(
        *o.seen().events_written.lock().unwrap(),
        [(0, b"abc".to_vec())]
    );
    // This process sees the file on disk, unchanged.
    assert_eq!(std::fs::read(o.path("data.evt")).unwrap(), REAL);
    assert_eq!(
        std::fs::metadata(o.path("data.evt")).unwrap().len(),
        REAL.len() as u64
    );
}

#[test]
fn each_isolated_open_has_its_own_file_context_until_it_closes() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|d| std::fs::write(d.join("x.isoctx"), b"same file").unwrap());
    let alive = |k| {
        o.seen()
            .alive
            .lock()
            .unwrap()
            .iter()
            .filter(|a| **a == k)
            .count()
    };
    let cleaned = |k| {
        o.seen()
            .cleaned
            .lock()
            .unwrap()
            .iter()
            .filter(|a| **a == k)
            .count()
    };
    // A child holds two isolated opens of the file (backend: the file itself) until told.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("exec 3< x.isoctx 4< x.isoctx; cat <&3; echo; read x")
        .current_dir(&o.dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "same file\n", "the backend is the file itself");
    assert_eq!(
        (alive(ContextKind::File), alive(ContextKind::Handle)),
        (2, 2),
        "one file context per isolated open"
    );
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(child.wait().unwrap().success());
    wait_for("the isolated opens' contexts to go", || {
        alive(ContextKind::File) == 0 && alive(ContextKind::Handle) == 0
    });
    assert_eq!(
        (cleaned(ContextKind::File), cleaned(ContextKind::Handle)),
        (2, 2)
    );
}

#[test]
fn an_isolated_create_makes_the_name_and_writes_the_backend() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|_| {});
    // The child creates new.iso isolated to new.iso.alt (which does not exist yet).
    sh(&o.dir, "printf 'kept apart' > new.iso");
    assert_eq!(sh(&o.dir, "cat new.iso"), b"kept apart");
    // The name exists for everyone, empty; the data went to the backend.
    assert_eq!(std::fs::read(o.path("new.iso")).unwrap(), b"");
    let dir = o.dir.clone();
    o.filter.stop_filter().unwrap();
    assert_eq!(std::fs::read(dir.join("new.iso")).unwrap(), b"");
    assert_eq!(
        std::fs::read(dir.join("new.iso.alt")).unwrap(),
        b"kept apart"
    );
}

#[test]
fn a_before_handler_that_clears_process_request_serves_the_open_itself() {
    require_root!("the overlay's FUSE mount needs root");
    let o = Overlaid::start(|d| std::fs::write(d.join("on.srv.evt"), b"disk").unwrap());
    // An open the handler serves: the child reads what the events give.
    assert_eq!(sh(&o.dir, "cat on.srv.evt"), FROM_EVENTS);
    // A create the handler serves: nothing is made on disk, the write reaches the events,
    // and for the creating process the file exists with the events' size.
    assert_eq!(
        sh(
            &o.dir,
            "exec 3> new.srv.evt; printf abc >&3; exec stat -c %s new.srv.evt"
        ),
        b"34\n"
    );
    assert_eq!(
        *o.seen().events_written.lock().unwrap(),
        [(0, b"abc".to_vec())]
    );
    assert_eq!(
        errno_of(std::fs::metadata(o.path("new.srv.evt")).unwrap_err()),
        libc::ENOENT
    );
    assert_eq!(std::fs::read(o.path("on.srv.evt")).unwrap(), b"disk");
    let dir = o.dir.clone();
    o.filter.stop_filter().unwrap();
    assert!(!dir.join("new.srv.evt").exists());
}
