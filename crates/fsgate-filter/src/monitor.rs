//! `FileMonitor`: notification events from a fanotify group that reports file ids,
//! directory ids and names, marked on whole filesystems.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use fsgate_core::dispatch::{Dispatcher, Options, SerialKey, Task};
use fsgate_core::listener::{Flow, Interest, Listener, Source};
use fsgate_core::mask::Requestor;
use fsgate_core::originator::{self, Originator};
use fsgate_core::sync::{lock, read, wait, write};
use fsgate_core::{code, Error, Result};
use fsgate_fanotify::{
    fd_path, open_by_handle_at, Class, Event, EventBuffer, EventMask, Fid, FidKind, Group,
    InitFlags, MarkAction, MarkFlags, MarkType,
};

use crate::attach::{self, HookAdapter};
use crate::events::{MonitorEvents, NotifyEvent, NotifyKind};
use crate::open_request::uid_of;
use crate::rules::{FileFacts, NotifyFlags, Qualifiers, RuleFlags, Rules, Subject};
use crate::volumes::{self, Volume};

fn kernel_mask(notify: NotifyFlags) -> EventMask {
    let mut m = EventMask::empty();
    let pairs = [
        (NotifyFlags::FS_NE_CREATE, EventMask::CREATE),
        (NotifyFlags::FS_NE_OPEN, EventMask::OPEN),
        (NotifyFlags::FS_NE_EXECUTE, EventMask::OPEN_EXEC),
        (NotifyFlags::FS_NE_READ, EventMask::ACCESS),
        (NotifyFlags::FS_NE_WRITE, EventMask::MODIFY),
        (NotifyFlags::FS_NE_SET_ATTRIBUTES, EventMask::ATTRIB),
        (
            NotifyFlags::FS_NE_CLOSE,
            EventMask::CLOSE_WRITE.union(EventMask::CLOSE_NOWRITE),
        ),
        (NotifyFlags::FS_NE_RENAME, EventMask::RENAME),
        (NotifyFlags::FS_NE_DELETE, EventMask::DELETE),
    ];
    for (n, k) in pairs {
        if notify.contains(n) {
            m |= k;
        }
    }
    if !m.is_empty() {
        m |= EventMask::ONDIR;
    }
    m
}

fn kinds_of(mask: EventMask) -> impl Iterator<Item = (NotifyKind, NotifyFlags)> {
    NotifyKind::ALL.into_iter().filter_map(move |k| {
        let (bits, flag) = match k {
            NotifyKind::CreateFile => (EventMask::CREATE, NotifyFlags::FS_NE_CREATE),
            NotifyKind::OpenFile => (EventMask::OPEN, NotifyFlags::FS_NE_OPEN),
            NotifyKind::ExecuteFile => (EventMask::OPEN_EXEC, NotifyFlags::FS_NE_EXECUTE),
            NotifyKind::ReadFile => (EventMask::ACCESS, NotifyFlags::FS_NE_READ),
            NotifyKind::WriteFile => (EventMask::MODIFY, NotifyFlags::FS_NE_WRITE),
            NotifyKind::SetFileAttributes => (EventMask::ATTRIB, NotifyFlags::FS_NE_SET_ATTRIBUTES),
            NotifyKind::CloseFile => (
                EventMask::CLOSE_WRITE | EventMask::CLOSE_NOWRITE,
                NotifyFlags::FS_NE_CLOSE,
            ),
            NotifyKind::RenameOrMoveFile => (EventMask::RENAME, NotifyFlags::FS_NE_RENAME),
            NotifyKind::DeleteFile => (EventMask::DELETE, NotifyFlags::FS_NE_DELETE),
        };
        mask.intersects(bits).then_some((k, flag))
    })
}

/// A mount the engine resolves handles through: a detached clone of it
/// (`open_tree(OPEN_TREE_CLONE)`), which keeps the filesystem reachable for
/// `open_by_handle_at` without making the original mount busy, so `umount` still works.
/// Paths resolved through the clone are relative to the mount's root.
struct Root {
    mount_id: u64,
    mount_point: PathBuf,
    fsid: u64,
    fd: File,
}

fn clone_mount(path: &Path) -> std::io::Result<File> {
    use rustix::mount::{open_tree, OpenTreeFlags};
    let fd = open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    // open_tree gives an O_PATH descriptor, which open_by_handle_at refuses (EBADF): open
    // the clone's root for real; it keeps the clone (and only the clone) alive.
    let root = rustix::fs::openat(
        &fd,
        ".",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    Ok(File::from(root))
}

/// The running notification side, shared by [`FileMonitor`] and the filter.
pub(crate) struct NotifyEngine {
    listener: Listener,
    attached: Arc<Mutex<Vec<Volume>>>,
}

/// The group, its volumes and what it needs to turn events into notifications; owned by
/// the reader thread, which also follows the mount table.
struct Watch<H: ?Sized> {
    group: Group,
    mask: EventMask,
    roots: Vec<Root>,
    attached: Arc<Mutex<Vec<Volume>>>,
    handler: Arc<H>,
    rules: Arc<RwLock<Rules>>,
    dispatcher: Arc<Dispatcher>,
    in_flight: Arc<InFlight>,
    mountinfo: File,
    buf: EventBuffer,
}

/// Notification jobs submitted and not yet completed. Volume events wait for them, so an
/// application sees the events of files before those of a mount made after them.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    done: Condvar,
}

impl InFlight {
    fn start(&self) {
        *lock(&self.count) += 1;
    }

    fn finish(&self) {
        let mut count = lock(&self.count);
        *count -= 1;
        if *count == 0 {
            self.done.notify_all();
        }
    }

    fn wait(&self) {
        let mut count = lock(&self.count);
        while *count > 0 {
            count = wait(&self.done, count);
        }
    }
}

fn fsid_of(f: &File) -> std::io::Result<u64> {
    Ok(rustix::fs::fstatvfs(f)?.f_fsid)
}

fn fid_fsid(fsid: [i32; 2]) -> u64 {
    u64::from(fsid[0] as u32) | (u64::from(fsid[1] as u32) << 32)
}

impl NotifyEngine {
    pub(crate) fn start<H: MonitorEvents + ?Sized>(
        handler: Arc<H>,
        rules: Arc<RwLock<Rules>>,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<Self> {
        let (mask, volumes) = {
            let r = read(&rules);
            (
                kernel_mask(r.standard.all_flags().notify),
                attach::volumes_for(&r.standard)?,
            )
        };
        let group = Group::new(
            Class::Notif,
            InitFlags::CLOEXEC | InitFlags::REPORT_FID | InitFlags::REPORT_DFID_NAME,
            libc::O_RDONLY | libc::O_LARGEFILE,
        )
        .map_err(|e| Error::io("creating the fanotify notification group (needs root)", e))?;
        let mountinfo = File::open("/proc/self/mountinfo")
            .map_err(|e| Error::io("opening /proc/self/mountinfo", e))?;
        let attached = Arc::new(Mutex::new(Vec::new()));
        let mut watch = Watch {
            group,
            mask,
            roots: Vec::new(),
            attached: Arc::clone(&attached),
            handler,
            rules,
            dispatcher,
            in_flight: Arc::default(),
            mountinfo,
            buf: EventBuffer::new(256 * 1024),
        };
        watch.attach(volumes);
        Ok(Self {
            listener: Listener::spawn("fsgate-monitor-reader", watch)?,
            attached,
        })
    }

    /// Stops reading; returns the volumes that were attached.
    pub(crate) fn stop(self) -> Vec<Volume> {
        self.listener.stop();
        std::mem::take(&mut *lock(&self.attached))
    }
}

impl<H: MonitorEvents + ?Sized> Watch<H> {
    /// Offers `candidates` to the application and marks the filesystems it keeps.
    fn attach(&mut self, candidates: Vec<Volume>) {
        let (group, mask, roots) = (&self.group, self.mask, &mut self.roots);
        let mut attached = lock(&self.attached);
        attach::attach(&*self.handler, candidates, &mut attached, |v: &Volume| {
            let p = &v.mount_point;
            group.mark(
                MarkAction::Add,
                MarkType::Filesystem,
                MarkFlags::empty(),
                mask,
                None,
                Some(p),
            )?;
            let fd = clone_mount(p)?;
            roots.push(Root {
                mount_id: v.mount_id,
                mount_point: p.clone(),
                fsid: fsid_of(&fd)?,
                fd,
            });
            Ok(())
        });
    }

    /// The mount table changed: detach the volumes that are gone, attach the new ones the
    /// rules name. The handlers of volume events run here, on the reader thread, after the
    /// handlers of every notification read before, so events of a new volume are read only
    /// after `on_after_filter_attach_to_volume` returns.
    fn follow_mounts(&mut self) {
        self.in_flight.wait();
        let now = match volumes::current() {
            Ok(v) => v,
            Err(e) => {
                self.handler.on_error(e.code(), e.message());
                return;
            }
        };
        let gone: Vec<Volume> = {
            let mut attached = lock(&self.attached);
            let (kept, gone) = std::mem::take(&mut *attached)
                .into_iter()
                .partition(|a| now.iter().any(|v| v.mount_id == a.mount_id));
            *attached = kept;
            gone
        };
        for v in &gone {
            self.roots.retain(|r| r.mount_id != v.mount_id);
            self.handler.on_after_filter_detach_from_volume(v);
        }
        let candidates = {
            let r = read(&self.rules);
            attach::volumes_in(&r.standard, &now)
        };
        self.attach(candidates);
    }

    fn read(&mut self) {
        let events = match self.group.read_events(&mut self.buf) {
            Ok(ev) => ev,
            Err(e) => {
                self.handler
                    .on_error(code::ERROR_GEN_FAILURE, &format!("reading fanotify: {e}"));
                return;
            }
        };
        let mut cache = BatchCache::default();
        for event in events {
            if event.is_overflow() {
                self.handler.on_error(
                    code::ERROR_INSUFFICIENT_BUFFER,
                    "the kernel's fanotify event queue overflowed: notification events were lost",
                );
                continue;
            }
            let r = read(&self.rules);
            for n in to_notifications(&event, &self.roots, &r, &mut cache) {
                let key = SerialKey(hash(&n.file_name));
                let origin =
                    Originator::of_process(n.process_id, n.user_id.unwrap_or(u32::MAX), u32::MAX);
                let job_handler = Arc::clone(&self.handler);
                let in_flight = Arc::clone(&self.in_flight);
                in_flight.start();
                self.dispatcher.dispatch(
                    Task::new(move || job_handler.fire_notify(&n))
                        .key(key)
                        .originator(origin)
                        .then(move |_| in_flight.finish()),
                );
            }
        }
    }
}

impl<H: MonitorEvents + ?Sized> Source for Watch<H> {
    fn descriptors(&self) -> Vec<(BorrowedFd<'_>, Interest)> {
        vec![
            (self.group.as_fd(), Interest::Readable),
            (self.mountinfo.as_fd(), Interest::Priority),
        ]
    }

    fn ready(&mut self, ready: &[bool]) -> Flow {
        // Events queued before the mount table changed happened before the change.
        if ready.first() == Some(&true) {
            self.read();
        }
        if ready.get(1) == Some(&true) {
            self.follow_mounts();
        }
        Flow::Continue
    }

    fn failed(&mut self, e: std::io::Error) {
        self.handler
            .on_error(code::ERROR_GEN_FAILURE, &format!("polling fanotify: {e}"));
    }
}

pub(crate) fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Lookups shared by the events of one read of the group: the path of each handle and the
/// name and uid of each pid. A read covers an instant of activity, and these lookups
/// describe the system when the listener handles the events anyway; the cache lives for
/// one read only, so a renamed directory or a reused pid shows at the next read. This is
/// what lets the reader drain the kernel's queue as fast as a busy workload fills it.
#[derive(Default)]
struct BatchCache {
    paths: HashMap<([i32; 2], i32, Vec<u8>), Option<PathBuf>>,
    processes: HashMap<u32, (String, Option<u32>)>,
}

impl BatchCache {
    /// The path of the object `fid`'s handle names, through the matching volume's clone.
    fn handle_path(&mut self, roots: &[Root], fid: &Fid) -> Option<PathBuf> {
        let key = (fid.fsid, fid.handle.handle_type, fid.handle.bytes.clone());
        self.paths
            .entry(key)
            .or_insert_with(|| {
                let want = fid_fsid(fid.fsid);
                roots.iter().filter(|r| r.fsid == want).find_map(|root| {
                    let fd = open_by_handle_at(root.fd.as_fd(), &fid.handle, libc::O_PATH).ok()?;
                    let p = fd_path(fd.as_fd()).ok()?;
                    let rel = p.strip_prefix("/").unwrap_or(&p);
                    Some(if rel.as_os_str().is_empty() {
                        root.mount_point.clone()
                    } else {
                        root.mount_point.join(rel)
                    })
                })
            })
            .clone()
    }

    fn process(&mut self, pid: u32) -> (String, Option<u32>) {
        self.processes
            .entry(pid)
            .or_insert_with(|| {
                (
                    originator::process_name(pid).unwrap_or_default(),
                    uid_of(pid),
                )
            })
            .clone()
    }
}

fn resolve(roots: &[Root], event: &Event, kind: FidKind, cache: &mut BatchCache) -> Option<String> {
    let fid = event.fid(kind)?;
    if let Some(base) = cache.handle_path(roots, fid) {
        let full = match &fid.name {
            Some(n) if n != "." => base.join(n),
            _ => base,
        };
        return Some(full.display().to_string());
    }
    let handle = event.fid(FidKind::Object).unwrap_or(fid);
    Some(format!("ID|{}", handle.handle.to_hex()))
}

/// The requestor image and file facts, looked up only when the rules need them.
pub(crate) struct Lookups {
    pub image: Option<String>,
    pub facts: Option<FileFacts>,
}

impl Lookups {
    pub(crate) fn new(
        rules: &Rules,
        pid: u32,
        path: &str,
        meta: impl FnOnce() -> Option<std::fs::Metadata>,
    ) -> Self {
        let image = rules
            .needs_process()
            .then(|| {
                originator::image_path(pid)
                    .or_else(|_| originator::process_name(pid))
                    .ok()
            })
            .flatten();
        let facts = rules
            .needs_facts()
            .then(|| meta().map(|m| FileFacts::from_metadata(path, &m)))
            .flatten();
        Self { image, facts }
    }

    pub(crate) fn subject<'a>(&'a self, path: &'a str, pid: u32) -> Subject<'a> {
        Subject {
            path,
            requestor: self.image.as_deref().map(|image| Requestor { pid, image }),
            facts: self.facts,
        }
    }
}

fn to_notifications(
    event: &Event,
    roots: &[Root],
    rules: &Rules,
    cache: &mut BatchCache,
) -> Vec<NotifyEvent> {
    let pid = event.pid.max(0) as u32;
    let rename = event.mask.contains(EventMask::RENAME);
    let (file_name, new_file_name) = if rename {
        (
            resolve(roots, event, FidKind::OldDirName, cache).unwrap_or_default(),
            resolve(roots, event, FidKind::NewDirName, cache),
        )
    } else {
        let name = resolve(roots, event, FidKind::DirName, cache)
            .or_else(|| resolve(roots, event, FidKind::Object, cache))
            .unwrap_or_default();
        (name, None)
    };
    let lookups = Lookups::new(rules, pid, &file_name, || {
        std::fs::metadata(&file_name).ok()
    });
    let mut flags = rules.evaluate(&lookups.subject(&file_name, pid)).notify;
    if let Some(new) = &new_file_name {
        // A move into a watched tree counts as well as a move out of it.
        let l2 = Lookups::new(rules, pid, new, || std::fs::metadata(new).ok());
        flags |= rules.evaluate(&l2.subject(new, pid)).notify & NotifyFlags::FS_NE_RENAME;
    }
    if flags.is_empty() {
        return Vec::new();
    }
    let (process_name, user_id) = cache.process(pid);
    kinds_of(event.mask)
        .filter(|(_, f)| flags.contains(*f))
        .map(|(kind, _)| NotifyEvent {
            kind,
            file_name: file_name.clone(),
            new_file_name: new_file_name.clone(),
            directory: event.mask.contains(EventMask::ONDIR),
            modified: event.mask.contains(EventMask::CLOSE_WRITE),
            process_id: pid,
            process_name: process_name.clone(),
            user_id,
        })
        .collect()
}

/// Settings shared by the monitor and the filter.
pub(crate) fn base_settings() -> fsgate_core::settings::Settings {
    use fsgate_core::settings::{Kind, Settings, Value};
    let d = Options::default();
    Settings::new()
        .with(
            "MinWorkerThreadCount",
            Kind::Int { min: 0, max: 1024 },
            Value::Int(d.min_workers as i64),
        )
        .with(
            "MaxWorkerThreadCount",
            Kind::Int { min: 0, max: 1024 },
            Value::Int(d.max_workers as i64),
        )
        .with_build_info()
}

pub(crate) fn dispatcher_options(
    settings: &fsgate_core::settings::Settings,
    serialize_events: bool,
    timeout: fsgate_core::dispatch::Timeout,
    name: &str,
) -> Result<Options> {
    let d = Options::default();
    let min = settings.get_int("MinWorkerThreadCount")?;
    let max = settings.get_int("MaxWorkerThreadCount")?;
    Ok(Options {
        min_workers: if min == 0 {
            d.min_workers
        } else {
            min as usize
        },
        max_workers: if max == 0 {
            d.max_workers
        } else {
            max as usize
        },
        serialize_events,
        timeout,
        stack_size: None,
        name: name.into(),
        ..d
    })
}

/// The monitor class: notification events for files matching its rules.
///
/// Add rules with notification flags, then [`start_filter`](Self::start_filter). The
/// monitor marks the filesystem of each mount its masks name (every mount for a mask
/// without a leading path, and the mounts below that path), so it sees changes made through
/// any mount of it; masks then select the events. Mounts that appear or go away while it
/// runs are attached and detached as they do (volume events fire on the reader thread). Events are fired on worker threads; events for one file keep their
/// order, and with `serialize_events` all events keep kernel order.
pub struct FileMonitor<H: MonitorEvents> {
    handler: Arc<H>,
    rules: Arc<RwLock<Rules>>,
    settings: fsgate_core::settings::Settings,
    serialize_events: AtomicBool,
    running: Mutex<Option<(NotifyEngine, Arc<Dispatcher>)>>,
}

impl<H: MonitorEvents> FileMonitor<H> {
    /// A stopped monitor with no rules.
    pub fn new(handler: H) -> Self {
        Self {
            handler: Arc::new(handler),
            rules: Arc::new(RwLock::new(Rules::default())),
            settings: base_settings(),
            serialize_events: AtomicBool::new(false),
            running: Mutex::new(None),
        }
    }

    /// The application's handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Adds notification flags for files matching `mask` (aggregated per mask). Rules added
    /// while running apply to the volumes attached at start.
    pub fn add_filter_rule(&self, mask: &str, notify_flags: NotifyFlags) -> Result<()> {
        self.add_filter_rule_ex(mask, notify_flags, Qualifiers::default())
    }

    /// [`add_filter_rule`](Self::add_filter_rule) with size and attribute qualifiers.
    pub fn add_filter_rule_ex(
        &self,
        mask: &str,
        notify_flags: NotifyFlags,
        q: Qualifiers,
    ) -> Result<()> {
        let flags = RuleFlags {
            notify: notify_flags,
            ..Default::default()
        };
        write(&self.rules).standard.add(mask, flags, q)
    }

    /// Removes flags from the rule with this mask; true when it existed.
    pub fn delete_filter_rule(&self, mask: &str, notify_flags: NotifyFlags) -> bool {
        let flags = RuleFlags {
            notify: notify_flags,
            ..Default::default()
        };
        write(&self.rules).standard.delete(mask, Some(flags))
    }

    /// Removes every standard rule.
    pub fn delete_all_filter_rules(&self) {
        write(&self.rules).standard.clear();
    }

    /// Excludes files matching `mask` from the given notifications.
    pub fn add_passthrough_rule(&self, mask: &str, notify_flags: NotifyFlags) -> Result<()> {
        self.add_passthrough_rule_ex(mask, notify_flags, Qualifiers::default())
    }

    /// [`add_passthrough_rule`](Self::add_passthrough_rule) with qualifiers.
    pub fn add_passthrough_rule_ex(
        &self,
        mask: &str,
        notify_flags: NotifyFlags,
        q: Qualifiers,
    ) -> Result<()> {
        let flags = RuleFlags {
            notify: notify_flags,
            ..Default::default()
        };
        write(&self.rules).passthrough.add(mask, flags, q)
    }

    /// Removes a passthrough rule; true when it existed.
    pub fn delete_passthrough_rule(&self, mask: &str) -> bool {
        write(&self.rules).passthrough.delete(mask, None)
    }

    /// Removes every passthrough rule.
    pub fn delete_all_passthrough_rules(&self) {
        write(&self.rules).passthrough.clear();
    }

    /// Fires every event on one worker, in kernel order (`serialize_events`).
    pub fn set_serialize_events(&self, on: bool) {
        self.serialize_events.store(on, Ordering::SeqCst);
    }

    /// `config("NAME=VALUE")` / `config("NAME")`: `MinWorkerThreadCount`,
    /// `MaxWorkerThreadCount` (0: automatic), `BuildInfo`, `LicenseInfo`.
    pub fn config(&self, text: &str) -> Result<String> {
        self.settings.config(text)
    }

    /// Whether the monitor is running.
    pub fn active(&self) -> bool {
        lock(&self.running).is_some()
    }

    /// Creates the group, attaches volumes and starts firing events. Error 1230 when already
    /// running; an `invalid_argument` error without rules.
    pub fn start_filter(&self) -> Result<()> {
        let mut running = lock(&self.running);
        if running.is_some() {
            return Err(Error::from_code(
                code::ERROR_CONNECTION_ACTIVE,
                "the monitor is already running",
            ));
        }
        if read(&self.rules).standard.is_empty() {
            return Err(Error::invalid_argument(
                "rules",
                "add at least one filter rule before start_filter",
            ));
        }
        let options = dispatcher_options(
            &self.settings,
            self.serialize_events.load(Ordering::SeqCst),
            fsgate_core::dispatch::Timeout::NONE,
            "fsgate-monitor",
        )?;
        let dispatcher = Arc::new(Dispatcher::new(
            options,
            Arc::new(HookAdapter(Arc::clone(&self.handler))),
        )?);
        let engine = NotifyEngine::start(
            Arc::clone(&self.handler),
            Arc::clone(&self.rules),
            Arc::clone(&dispatcher),
        )?;
        *running = Some((engine, dispatcher));
        Ok(())
    }

    /// Stops reading, fires the events already read, detaches every volume.
    pub fn stop_filter(&self) -> Result<()> {
        let Some((engine, dispatcher)) = lock(&self.running).take() else {
            return Ok(());
        };
        let volumes = engine.stop();
        dispatcher.wait_idle();
        for v in &volumes {
            self.handler.on_after_filter_detach_from_volume(v);
        }
        Ok(())
    }
}

impl<H: MonitorEvents> Drop for FileMonitor<H> {
    fn drop(&mut self) {
        let _ = self.stop_filter();
    }
}
