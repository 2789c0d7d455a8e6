//! Shared fixtures: an installed product under a temporary root, a private tmpfs holding
//! uniquely named copies of small programs, and a handler that records events.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use fsgate_core::Result;
use fsgate_install::{Installer, Package};
use fsgate_process::{
    ProcessCreation, ProcessEvents, ProcessFilter, ProcessTermination, ThreadCreation,
    ThreadTermination,
};

pub const GUID: &str = "{5A1E0C4F-7D3B-4E2A-9C61-0F2B8D4E6A10}";

/// Whether the test can run; prints why it skips otherwise.
pub fn is_root(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!(
            "{test}: skipped, the process connector and fanotify need root (CI runs as root)"
        );
    }
    root
}

/// fsgate installed for [`GUID`] under a temporary root.
pub struct Product {
    pub root: tempfile::TempDir,
}

impl Product {
    pub fn install() -> Self {
        let root = tempfile::tempdir().unwrap();
        let pkg = root.path().join("fsgate.pkg");
        Package::build(&pkg, Path::new("/bin/sleep")).unwrap();
        Installer::new(root.path())
            .install(&pkg, GUID, "", 0)
            .unwrap();
        Self { root }
    }

    pub fn installer(&self) -> Installer {
        Installer::new(self.root.path())
    }
}

/// A tmpfs mounted on a temporary directory, unmounted on drop (also on panic).
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        rustix::mount::mount(
            "fsgate-process-test",
            dir.path(),
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `program` in under `name` (made unique by the caller), executable.
    pub fn copy(&self, program: &str, name: &str) -> PathBuf {
        let to = self.dir.path().join(name);
        std::fs::copy(program, &to).unwrap();
        to
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.dir.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Created(ProcessCreation),
    Terminated(ProcessTermination),
    ThreadCreated(ThreadCreation),
    ThreadTerminated(ThreadTermination),
    Error(u32, String),
}

type Decide = dyn Fn(&ProcessCreation) -> Result<()> + Send + Sync;

/// Records every event; `decide` answers creations.
pub struct Recorder {
    pub seen: Mutex<Vec<Seen>>,
    changed: Condvar,
    decide: Box<Decide>,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Self::deciding(|_| Ok(()))
    }

    pub fn deciding(
        decide: impl Fn(&ProcessCreation) -> Result<()> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            decide: Box::new(decide),
        })
    }

    fn push(&self, s: Seen) {
        self.seen.lock().unwrap().push(s);
        self.changed.notify_all();
    }

    pub fn snapshot(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `count` of the recorded events satisfy `pred`, or until nothing new
    /// arrived for 10 s; returns the matching events.
    pub fn wait_for(&self, count: usize, pred: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        let mut seen = self.seen.lock().unwrap();
        let mut last_len = seen.len();
        let mut last_change = Instant::now();
        loop {
            let hits: Vec<Seen> = seen.iter().filter(|s| pred(s)).cloned().collect();
            if hits.len() >= count || last_change.elapsed() > Duration::from_secs(10) {
                return hits;
            }
            seen = self
                .changed
                .wait_timeout(seen, Duration::from_millis(200))
                .unwrap()
                .0;
            if seen.len() != last_len {
                last_len = seen.len();
                last_change = Instant::now();
            }
        }
    }

    /// The events matching `pred` after giving stragglers a moment to arrive.
    pub fn settled(&self, pred: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        std::thread::sleep(Duration::from_millis(500));
        self.snapshot().into_iter().filter(|s| pred(s)).collect()
    }
}

impl ProcessEvents for Recorder {
    fn on_process_creation(&self, event: &mut ProcessCreation) -> Result<()> {
        let verdict = (self.decide)(event);
        self.push(Seen::Created(event.clone()));
        verdict
    }
    fn on_process_termination(&self, event: &ProcessTermination) -> Result<()> {
        self.push(Seen::Terminated(event.clone()));
        Ok(())
    }
    fn on_thread_creation(&self, event: &ThreadCreation) -> Result<()> {
        self.push(Seen::ThreadCreated(event.clone()));
        Ok(())
    }
    fn on_thread_termination(&self, event: &ThreadTermination) -> Result<()> {
        self.push(Seen::ThreadTerminated(event.clone()));
        Ok(())
    }
    fn on_error(&self, error_code: u32, description: &str) {
        self.push(Seen::Error(error_code, description.to_string()));
    }
}

/// An initialized filter over `events`, with `EventsToFire=-1`.
pub fn filter(product: &Product, events: Arc<dyn ProcessEvents>) -> ProcessFilter {
    let f = ProcessFilter::new(events);
    f.initialize_with(product.installer(), GUID).unwrap();
    f.config("EventsToFire=-1").unwrap();
    f
}

pub fn created_image(s: &Seen, image: &Path) -> bool {
    matches!(s, Seen::Created(c) if Path::new(&c.image_file_name) == image)
}
