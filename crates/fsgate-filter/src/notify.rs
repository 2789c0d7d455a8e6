//! The notification engine shared by [`FileMonitor`](crate::monitor::FileMonitor) and
//! [`FileFilter`](crate::filter::FileFilter): a fanotify group reporting file ids, directory
//! ids and names, marked on whole filesystems, and the reader that turns its events into
//! `on_notify_*` calls.
//!
//! The group is created with `FAN_UNLIMITED_QUEUE` (the reference's notification queue is
//! not artificially limited; fsgate needs root anyway). A kernel that refuses it gets the
//! default queue of 16384 events, and an overflow of that queue fires `on_error` with
//! `ERROR_INSUFFICIENT_BUFFER`: events are never lost silently.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use fsgate_core::dispatch::{Dispatcher, SerialKey, Task};
use fsgate_core::listener::{Flow, Interest, Listener, Source};
use fsgate_core::originator::{self, Originator};
use fsgate_core::sync::{lock, read, wait};
use fsgate_core::{code, Error, Result};
use fsgate_fanotify::{
    fd_path, open_by_handle_at, Class, Event, EventBuffer, EventMask, Fid, FidKind, Group,
    InitFlags, MarkType,
};

use crate::attach::{self, Marks, Root};
use crate::class::{hash, Lookups};
use crate::events::{MonitorEvents, NotifyEvent, NotifyKind};
use crate::group;
use crate::open_request::uid_of;
use crate::rules::{NotifyFlags, Rules};
use crate::volumes::Volume;

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

/// The running notification side of a class.
pub(crate) struct NotifyEngine {
    marks: Arc<Mutex<Marks>>,
    listener: Listener,
}

/// What the reader thread needs to turn events into notifications and follow the mount
/// table.
struct Watch<H: ?Sized> {
    group: Arc<Group>,
    marks: Arc<Mutex<Marks>>,
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

fn fid_fsid(fsid: [i32; 2]) -> u64 {
    u64::from(fsid[0] as u32) | (u64::from(fsid[1] as u32) << 32)
}

/// The notification group: unlimited queue where the kernel allows it.
fn notification_group() -> Result<Group> {
    let flags = InitFlags::CLOEXEC | InitFlags::REPORT_FID | InitFlags::REPORT_DFID_NAME;
    let event_f_flags = libc::O_RDONLY | libc::O_LARGEFILE;
    Group::new(
        Class::Notif,
        flags | InitFlags::UNLIMITED_QUEUE,
        event_f_flags,
    )
    .or_else(|_| Group::new(Class::Notif, flags, event_f_flags))
    .map_err(|e| Error::io("creating the fanotify notification group (needs root)", e))
}

impl NotifyEngine {
    /// Creates the group, marks the volumes `rules` name and starts the reader.
    pub(crate) fn start<H: MonitorEvents + ?Sized>(
        handler: Arc<H>,
        rules: Arc<RwLock<Rules>>,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<Self> {
        let group = Arc::new(notification_group()?);
        let mountinfo = File::open("/proc/self/mountinfo")
            .map_err(|e| Error::io("opening /proc/self/mountinfo", e))?;
        let marks = Arc::new(Mutex::new(Marks::new(
            Arc::clone(&group),
            MarkType::Filesystem,
            true,
        )));
        refresh(&*handler, &rules, &marks)?;
        let watch = Watch {
            group,
            marks: Arc::clone(&marks),
            handler,
            rules,
            dispatcher,
            in_flight: Arc::default(),
            mountinfo,
            buf: EventBuffer::new(256 * 1024),
        };
        Ok(Self {
            listener: Listener::spawn("fsgate-monitor-reader", watch)?,
            marks,
        })
    }

    /// The group's marks, for [`refresh`] without holding the class's own lock.
    pub(crate) fn marks(&self) -> Arc<Mutex<Marks>> {
        Arc::clone(&self.marks)
    }

    /// Stops reading; returns the volumes that were attached.
    pub(crate) fn stop(self) -> Vec<Volume> {
        self.listener.stop();
        lock(&self.marks).take_attached()
    }
}

/// The rules changed (or the engine starts): re-marks for the events they now ask for and
/// attaches the volumes they now name. Volume events fire from here, so callers hold no
/// lock of their own that a handler could need.
pub(crate) fn refresh<H: MonitorEvents + ?Sized>(
    handler: &H,
    rules: &RwLock<Rules>,
    marks: &Mutex<Marks>,
) -> Result<()> {
    let (mask, volumes) = {
        let r = read(rules);
        (
            kernel_mask(r.standard.all_flags().notify),
            attach::volumes_for(&r.standard)?,
        )
    };
    lock(marks).update(handler, mask, volumes);
    Ok(())
}

impl<H: MonitorEvents + ?Sized> Watch<H> {
    /// The mount table changed. The handlers of volume events run here, on the reader
    /// thread, after the handlers of every notification read before, so events of a new
    /// volume are read only after `on_after_filter_attach_to_volume` returns.
    fn follow_mounts(&mut self) {
        self.in_flight.wait();
        attach::follow_mounts(&*self.handler, &self.rules, &self.marks);
    }

    fn read(&mut self) {
        let events = group::read(&*self.handler, &self.group, &mut self.buf);
        let mut cache = BatchCache::default();
        let marks = lock(&self.marks);
        for event in events {
            if event.is_overflow() {
                self.handler.on_error(
                    code::ERROR_INSUFFICIENT_BUFFER,
                    "the kernel's fanotify event queue overflowed: notification events were lost",
                );
                continue;
            }
            let r = read(&self.rules);
            for n in to_notifications(&event, marks.roots(), &r, &mut cache) {
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
        group::wait_failed(&*self.handler, &e);
    }
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
