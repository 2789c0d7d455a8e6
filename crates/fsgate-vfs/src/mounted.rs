//! A mounted drive: its FUSE session, dispatcher and mounting points.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fsgate_core::dispatch::{self, Dispatcher, Hooks, Outcome, Task, Timeout};
use fsgate_core::{code, threads, Error, Result};
use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier, SessionACL};

use crate::change::ChangeAction;
use crate::engine::{join, Engine, Ino};
use crate::events::Events;
use crate::options::{names, Options};
use crate::params::{GetVolumeIdParams, GetVolumeLabelParams, MountParams, UnmountParams};
use crate::route::RouteMode;
use crate::sys::{self, Unmounted};
use crate::transport::Transport;
use crate::wire::FuseFs;

/// Checks that `path` is an existing directory, empty unless `contents_allowed`; errors
/// name the path.
pub(crate) fn check_mounting_point(path: &Path, contents_allowed: bool) -> Result<PathBuf> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::from_code(
                code::ERROR_PATH_NOT_FOUND,
                format!("mounting point {shown} does not exist; create an empty directory first"),
            )
        } else {
            Error::io(format!("checking mounting point {shown}"), e)
        }
    })?;
    if !meta.is_dir() {
        return Err(Error::from_code(
            code::ERROR_DIRECTORY,
            format!("mounting point {shown} is not a directory"),
        ));
    }
    let mut entries = std::fs::read_dir(path)
        .map_err(|e| Error::io(format!("listing mounting point {shown}"), e))?;
    if !contents_allowed && entries.next().is_some() {
        return Err(Error::from_code(
            code::ERROR_DIR_NOT_EMPTY,
            format!("mounting point {shown} is not empty"),
        ));
    }
    std::fs::canonicalize(path).map_err(|e| Error::io(format!("resolving {shown}"), e))
}

/// Runs one event outside any request (mount-time queries, `on_mount`, `on_unmount`).
fn call<T: Send + 'static>(
    d: &Dispatcher,
    what: &str,
    job: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match d.call(Task::new(job)) {
        Outcome::Done(r) => r,
        Outcome::TimedOut => Err(Error::from_code(
            code::ERROR_TIMEOUT,
            format!("{what} did not return before the timeout"),
        )),
        Outcome::Panicked(m) => Err(Error::from_code(
            code::ERROR_INTERNAL_ERROR,
            format!("{what} panicked: {m}"),
        )),
        Outcome::Cancelled => Err(Error::not_ready(format!("{what}: the drive is stopping"))),
    }
}

/// The serving state of a mounted drive.
pub(crate) struct Mounted<E: Events> {
    engine: Arc<Engine<E>>,
    dispatcher: Arc<Dispatcher>,
    session: Option<BackgroundSession>,
    notifier: Notifier,
    primary: PathBuf,
    /// Extra mounting points, each with the watcher that removes it if this process dies.
    extra: Vec<(PathBuf, sys::UnmountWatcher)>,
    /// For a server running as root, the watcher that removes the primary mounting point if
    /// this process dies (see `mount`).
    primary_watcher: Option<sys::UnmountWatcher>,
    /// The kernel's number for this mount's FUSE connection, to end it by force.
    connection: Option<u32>,
    volume_id: u32,
    transport: Transport,
}

impl<E: Events> Mounted<E> {
    pub(crate) fn start(
        events: Arc<E>,
        options: Options,
        mounting_point: &Path,
        timeout_ms: u32,
    ) -> Result<Self> {
        let timeout = Timeout::from_millis(timeout_ms)?;
        let primary = check_mounting_point(mounting_point, options.mount_over_contents)?;
        if !Path::new("/dev/fuse").exists() {
            return Err(Error::from_code(
                code::ERROR_FS_DRIVER_REQUIRED,
                "/dev/fuse is missing: load the fuse kernel module (modprobe fuse)",
            ));
        }
        let defaults = dispatch::Options::default();
        let mut d = dispatch::Options {
            serialize_events: options.serialize_events,
            timeout,
            name: "fsgate-vfs".into(),
            // Without a timeout, a request whose file is idle runs on the reader thread that
            // received it; one reader always stays free to read the next request.
            inline_limit: options.fuse_reader_thread_count.saturating_sub(1),
            ..defaults.clone()
        };
        if options.min_worker_thread_count > 0 {
            d.min_workers = options.min_worker_thread_count;
        }
        if options.max_worker_thread_count > 0 {
            d.max_workers = options.max_worker_thread_count;
        }
        d.max_workers = d.max_workers.max(d.min_workers);
        let dispatcher = Arc::new(Dispatcher::new(d, Arc::clone(&events) as Arc<dyn Hooks>)?);

        let e = Arc::clone(&events);
        let label = call(&dispatcher, "on_get_volume_label", move || {
            let mut p = GetVolumeLabelParams::default();
            e.on_get_volume_label(&mut p).map(|()| p.buffer)
        })?;
        let e = Arc::clone(&events);
        let volume_id = call(&dispatcher, "on_get_volume_id", move || {
            let mut p = GetVolumeIdParams::default();
            e.on_get_volume_id(&mut p).map(|()| p.volume_id)
        })?;

        let root = sys::owner().0 == 0;
        let source = if label.is_empty() {
            "fsgate".to_string()
        } else {
            label
        };
        for (wanted, name) in [
            (options.allow_devices, names::ALLOW_DEVICES),
            (options.allow_set_id, names::ALLOW_SET_ID),
        ] {
            if wanted && !root {
                return Err(Error::from_code(
                    code::ERROR_PRIVILEGE_NOT_HELD,
                    format!(
                        "{name}: only a server running as root may mount without nodev and nosuid"
                    ),
                ));
            }
        }
        let mut mount_options = vec![
            MountOption::FSName(source),
            MountOption::Subtype("fsgate".into()),
            if options.allow_devices {
                MountOption::Dev
            } else {
                MountOption::NoDev
            },
            if options.allow_set_id {
                MountOption::Suid
            } else {
                MountOption::NoSuid
            },
        ];
        if options.default_permissions {
            mount_options.push(MountOption::DefaultPermissions);
        }
        if options.read_only {
            mount_options.push(MountOption::RO);
        }
        let mut config = Config::default();
        if root {
            // As root the drive mounts with mount(2) itself, for every user (allow_other).
            // A killed process leaves no dead mount: the watcher started below unmounts when
            // the process is gone. fusermount3's auto_unmount helper is not used: once our
            // connection closed it unmounted whatever FUSE mount it found at the path, even
            // one mounted there since (a drive restarted on the same path lost its mount).
            config.acl = SessionACL::All;
        }
        config.mount_options = mount_options;
        config.n_threads = Some(options.fuse_reader_thread_count.max(1));
        config.clone_fd = true;
        // A dead server's io_uring entries keep the connection alive a while after its death;
        // only root can run the watcher that aborts it and unmounts.
        let wants_uring = options.io_uring_threads_per_queue > 0;
        config.io_uring_threads_per_queue = if root {
            options.io_uring_threads_per_queue
        } else {
            0
        };
        config.io_uring_idle_priority = options.io_uring_idle_priority;

        let engine = Arc::new(Engine::new(Arc::clone(&events), options));
        let slot = crate::wire::NotifierSlot::default();
        let fs = FuseFs::new(
            Arc::clone(&engine),
            Arc::clone(&dispatcher),
            Arc::clone(&slot),
        );
        let session = fuser::Session::new(fs, &primary, &config)
            .map_err(|e| Error::io(format!("mounting on {}", primary.display()), e))?;
        let notifier = session.notifier();
        // Set before the reader threads start: no request is served yet.
        let _ = slot.set(notifier.clone());
        let transport = match session.transport() {
            fuser::Transport::DevFuse { .. } if !root && wants_uring => Transport::DevFuse {
                reason: "io_uring is used only by a server running as root".into(),
            },
            t => Transport::from(t),
        };
        // The watcher unmounts when this process is gone, after checking that the path
        // still holds this very mount; only root may unmount (a user's mount stays until
        // `fusermount3 -u`).
        let primary_watcher = if root {
            Some(sys::UnmountWatcher::start(&primary)?)
        } else {
            None
        };
        raise_readahead(&primary);
        let connection = sys::connection_of(&primary).ok();
        let session = session
            .spawn()
            .map_err(|e| Error::io("starting the FUSE reader threads", e))?;
        let mut mounted = Self {
            engine,
            dispatcher,
            session: Some(session),
            notifier,
            primary: primary.clone(),
            extra: Vec::new(),
            primary_watcher,
            connection,
            volume_id,
            transport,
        };
        let e = Arc::clone(&events);
        let mounted_result = call(&mounted.dispatcher, "on_mount", move || {
            e.on_mount(&mut MountParams {
                mounting_point: primary,
            })
        });
        if let Err(err) = mounted_result {
            mounted.detach_all();
            return Err(err);
        }
        Ok(mounted)
    }

    pub(crate) fn serving(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.guard.is_finished())
    }

    pub(crate) fn mounting_points(&self) -> Vec<PathBuf> {
        std::iter::once(self.primary.clone())
            .chain(self.extra.iter().map(|(p, _)| p.clone()))
            .collect()
    }

    pub(crate) fn add_mounting_point(&mut self, path: &Path) -> Result<()> {
        let target = check_mounting_point(path, false)?;
        sys::bind_mount(&self.primary, &target)?;
        match sys::UnmountWatcher::start(&target) {
            Ok(w) => {
                self.extra.push((target, w));
                Ok(())
            }
            Err(e) => {
                if let Err(u) = sys::unmount(&target, None) {
                    tracing::warn!("{u}");
                }
                Err(e)
            }
        }
    }

    pub(crate) fn delete_mounting_point(&mut self, path: &Path) -> Result<()> {
        let wanted = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if wanted == self.primary {
            return Err(Error::invalid_argument(
                "mounting point",
                format!(
                    "{} is the primary mounting point; use unmount",
                    path.display()
                ),
            ));
        }
        let Some(i) = self.extra.iter().position(|(p, _)| *p == wanted) else {
            return Err(Error::invalid_argument(
                "mounting point",
                format!("{} is not a mounting point of this drive", path.display()),
            ));
        };
        let (path, watcher) = self.extra.remove(i);
        let id = watcher.mount_id();
        watcher.disarm();
        sys::unmount(&path, id)?;
        Ok(())
    }

    pub(crate) fn volume_id(&self) -> u32 {
        self.volume_id
    }

    pub(crate) fn notify_directory_change(
        &self,
        file_name: &Path,
        action: ChangeAction,
    ) -> Result<()> {
        let split = file_name
            .has_root()
            .then(|| file_name.parent().zip(file_name.file_name()))
            .flatten();
        let Some((parent, name)) = split else {
            return Err(Error::invalid_argument(
                "file_name",
                format!(
                    "{} is not a full path naming an entry below /",
                    file_name.display()
                ),
            ));
        };
        if action != ChangeAction::Added {
            self.engine.drop_cached_blocks(file_name);
        }
        let (parent_ino, ino) = {
            let mut inodes = self.engine.inodes.lock().unwrap_or_else(|p| p.into_inner());
            let found = (inodes.find(parent), inodes.find(&join(parent, name)));
            if action == ChangeAction::Removed {
                inodes.unlink(file_name);
            }
            found
        };
        let mut notices = Vec::new();
        if let Some(p) = parent_ino {
            notices.push(Notice::Entry(p, name.to_owned()));
            if action != ChangeAction::Modified {
                // The directory's cached listing changed too.
                notices.push(Notice::Inode(p));
            }
        }
        if let (ChangeAction::Modified, Some(i)) = (action, ino) {
            self.engine.forget_privileges(i);
            notices.push(Notice::Inode(i));
        }
        self.send(notices)
    }

    /// Sends invalidations to the kernel. Inside an event handler they go from a separate
    /// thread without waiting: the kernel may hold the directory's lock for the very request
    /// the handler is answering, and an invalidation waits for that lock.
    fn send(&self, notices: Vec<Notice>) -> Result<()> {
        let notifier = self.notifier.clone();
        let deliver = move || -> Result<()> {
            for n in notices {
                ignore_unknown(match &n {
                    Notice::Entry(parent, name) => {
                        notifier.inval_entry(INodeNo::from(*parent), name.as_ref())
                    }
                    Notice::Inode(ino) => notifier.inval_inode(INodeNo::from(*ino), 0, 0),
                })?;
            }
            Ok(())
        };
        if dispatch::in_event() {
            let builder = std::thread::Builder::new().name("fsgate-notify".into());
            threads::spawn(builder, move || {
                if let Err(e) = deliver() {
                    tracing::warn!("{e}");
                }
            })
            .map_err(|e| Error::io("starting a notification thread", e))?;
            Ok(())
        } else {
            deliver()
        }
    }

    pub(crate) fn transport(&self) -> Transport {
        self.transport.clone()
    }

    pub(crate) fn route_mode(&self) -> RouteMode {
        if self.engine.passthrough.load(Ordering::Relaxed) {
            RouteMode::Passthrough
        } else {
            RouteMode::Library
        }
    }

    pub(crate) fn notify_file_change(&self, file_name: &Path) -> Result<()> {
        self.engine.drop_cached_blocks(file_name);
        let ino = self
            .engine
            .inodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .find(file_name);
        match ino {
            Some(i) => {
                self.engine.forget_privileges(i);
                self.send(vec![Notice::Inode(i)])
            }
            None => Ok(()),
        }
    }

    /// Fires `on_unmount`, then unmounts everything and ends the session.
    pub(crate) fn stop(mut self) -> Result<()> {
        let e = Arc::clone(&self.engine.events);
        let primary = self.primary.clone();
        if let Err(err) = call(&self.dispatcher, "on_unmount", move || {
            e.on_unmount(&mut UnmountParams {
                mounting_point: primary,
            })
        }) {
            tracing::warn!("on_unmount: {err}");
        }
        self.detach_all();
        Ok(())
    }

    /// [`stop`](Self::stop), then, when requests are still waiting for handlers `grace`
    /// later, ends the FUSE connection so their callers fail at once (see
    /// [`VirtualDrive::unmount_releasing`](crate::VirtualDrive::unmount_releasing)).
    pub(crate) fn stop_releasing(self, grace: Duration) -> Result<()> {
        let connection = self.connection;
        self.stop()?;
        let Some(connection) = connection else {
            return Ok(());
        };
        sys::mount_control_fs();
        let deadline = Instant::now() + grace;
        loop {
            match sys::waiting_requests(connection) {
                Some(0) => return Ok(()),
                Some(_) if Instant::now() >= deadline => break,
                Some(_) => std::thread::sleep(Duration::from_millis(10)),
                // Not listed: the connection is gone (its last file closed), unless the
                // control filesystem is missing, which the abort below reports.
                None if sys::control_fs_mounted() => return Ok(()),
                None => break,
            }
        }
        sys::abort_connection(connection)
    }

    /// Unmounts everything and ends the session, once: `stop` and then `Drop` both call it,
    /// and the path may hold someone else's mount by the second call.
    fn detach_all(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        for (p, watcher) in self.extra.drain(..) {
            let id = watcher.mount_id();
            watcher.disarm();
            if let Err(e) = sys::unmount(&p, id) {
                tracing::warn!("{e}");
            }
        }
        let mut primary_id = None;
        if let Some(watcher) = self.primary_watcher.take() {
            primary_id = watcher.mount_id();
            watcher.disarm();
        }
        // A mount taken off the path from outside is not ours to look for there any more.
        let primary = sys::unmount(&self.primary, primary_id);
        match primary {
            // The kernel ended the connection: the reader threads have returned or will
            // at once, and with them every event.
            Ok(Unmounted::Clean) | Ok(Unmounted::NotMounted) => {
                if let Err(e) = session.join() {
                    tracing::warn!("FUSE session ended with: {e}");
                }
                self.engine.close_implicit_handles();
            }
            // Files are still open under a detached mount: the session keeps serving them
            // and ends by itself after the last one closes.
            Ok(Unmounted::Detached) => join_later(session),
            Err(e) => {
                tracing::warn!("{e}");
                join_later(session);
            }
        }
    }
}

/// Waits for `session` to end on a thread of its own: a detached mount keeps serving the
/// files still open under it.
fn join_later(session: BackgroundSession) {
    let joiner = std::thread::Builder::new().name("fsgate-session-end".into());
    if let Err(e) = threads::spawn(joiner, move || session.join()) {
        tracing::warn!("cannot wait for the detached FUSE session to end: {e}");
    }
}

impl<E: Events> Drop for Mounted<E> {
    fn drop(&mut self) {
        self.detach_all();
    }
}

/// One invalidation for the kernel.
enum Notice {
    /// Forget the name in the directory.
    Entry(Ino, OsString),
    /// Forget the attributes and cached data of the inode.
    Inode(Ino),
}

/// The kernel answers `ENOENT` for notifications about objects it does not cache: fine.
fn ignore_unknown(r: std::io::Result<()>) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(Error::io("notifying the kernel", e)),
    }
}

/// How far the kernel reads ahead on a drive: 1 MiB, so a sequential read reaches the drive
/// in 1 MiB requests rather than the kernel's default 128 KiB (`INIT` can only lower it).
const READ_AHEAD_KB: u32 = 1024;

/// Raises the readahead of the mount at `mount_point` (its `/sys/class/bdi` entry) to
/// [`READ_AHEAD_KB`]. Only root may; otherwise, or without sysfs, the kernel's default stays.
fn raise_readahead(mount_point: &Path) {
    let mounts = match fsgate_core::mountinfo::current() {
        Ok(m) => m,
        Err(e) => return tracing::debug!("readahead left as it is: {e}"),
    };
    let Some(m) = mounts.iter().rev().find(|m| m.mount_point == mount_point) else {
        return tracing::debug!(
            "readahead left as it is: {} not in the mount table",
            mount_point.display()
        );
    };
    let knob = format!("/sys/class/bdi/{}:{}/read_ahead_kb", m.major, m.minor);
    if let Err(e) = std::fs::write(&knob, READ_AHEAD_KB.to_string()) {
        tracing::debug!("readahead left as it is: {knob}: {e}");
    }
}
