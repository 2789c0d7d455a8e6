//! Safe wrapper over Linux fanotify, shared by fsgate's file filter, file monitor and
//! process filter.
//!
//! - [`Group`] is a fanotify group (`fanotify_init(2)`): [`Group::mark`] attaches it to
//!   inodes, mounts or whole filesystems (`fanotify_mark(2)`), [`Group::read_events`] parses
//!   what the kernel queued into owned [`Event`]s (descriptors become [`OwnedFd`]s and close
//!   when dropped); a permission event comes as a [`Permission`], which owns its descriptor:
//!   [`Permission::answer`] consumes it, and dropping it unanswered allows the operation.
//! - [`open_by_handle_at`] and [`fd_path`] turn the ids and descriptors of events into paths.
//!
//! The wire format is parsed in [`record`] (pure code, unit-tested on byte buffers); every
//! `unsafe` block lives in the private `sys` module. Constants the `libc` crate lacks
//! (`FAN_PRE_ACCESS`, `FAN_EVENT_INFO_TYPE_RANGE`, `FAN_DENY_ERRNO`) are defined here with
//! the kernel header they come from.
//!
//! Kernel facts a caller must know:
//! - only the notification class can report file ids ([`InitFlags::REPORT_FID`]); permission
//!   groups always get an open descriptor per event;
//! - a permission event holds the calling process until it is answered, including those
//!   raised by the listener's own process (fanotify does not skip the listener's own opens);
//!   [`Permission`] answers every one, allowing those that are dropped;
//! - descriptors of events are opened with `FMODE_NONOTIFY`: I/O through them raises no
//!   further events, which is how a filter reads or fills the very file it is asked about;
//! - a custom errno in a denial ([`Response::deny_with`]) needs Linux 6.13 and a pre-content
//!   group, and only `EIO EPERM EBUSY ETXTBSY EAGAIN ENOSPC EDQUOT` are accepted; otherwise
//!   [`Permission::answer`] falls back to a plain denial, which the caller sees as `EPERM`.

mod flags;
mod permission;
pub mod record;
mod sys;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use flags::{Class, EventMask, InitFlags, MarkAction, MarkFlags, MarkType, FAN_PRE_ACCESS};
pub use permission::{Held, HeldEvents, Permission};
pub use record::{Fid, FidKind, FileHandle};

use permission::Respond;

/// `FAN_ERRNO_SHIFT` (include/uapi/linux/fanotify.h, Linux 6.13): `FAN_DENY_ERRNO(e)` is
/// `FAN_DENY | (e << 24)`.
const FAN_ERRNO_SHIFT: u32 = 24;

/// A fanotify group: the descriptor the kernel queues events on.
#[derive(Debug)]
pub struct Group {
    inner: Arc<Inner>,
}

/// The group's descriptor, shared with the [`Permission`]s read from it so they can answer
/// after the reader moved on.
#[derive(Debug)]
struct Inner {
    fd: OwnedFd,
    deny_errno_supported: AtomicBool,
}

/// An info record of an event, with descriptors owned.
#[derive(Debug)]
pub enum Info {
    /// A file id, directory id, or directory id and name.
    Fid(Fid),
    /// A pidfd for the originator (groups with [`InitFlags::REPORT_PIDFD`]); `None` when the
    /// process had already exited or the kernel could not make one.
    Pidfd(Option<OwnedFd>),
    /// A filesystem error (`FAN_FS_ERROR`).
    Error {
        /// errno of the first error.
        error: i32,
        /// Errors merged into this event.
        count: u32,
    },
    /// The byte range a pre-content event asks for.
    Range {
        /// First byte.
        offset: u64,
        /// Length (0: the whole file).
        count: u64,
    },
    /// A record type this library does not know yet.
    Other {
        /// `info_type`.
        info_type: u8,
        /// The record body.
        bytes: Vec<u8>,
    },
}

/// One event, owning its descriptors.
#[derive(Debug)]
pub struct Event {
    /// What happened.
    pub mask: EventMask,
    /// Process id (or thread id with [`InitFlags::REPORT_TID`]) of the originator.
    pub pid: i32,
    /// The object, opened for the listener, of a notification event (not for FID groups
    /// or overflow events). A permission event's descriptor is in
    /// [`permission`](Self::permission).
    pub fd: Option<OwnedFd>,
    /// For a permission event: the pending verdict, owning the object's descriptor.
    /// Dropping it unanswered allows the operation.
    pub permission: Option<Permission>,
    /// Info records in kernel order.
    pub infos: Vec<Info>,
}

impl Event {
    /// The id record of the given kind, if the event carries one.
    pub fn fid(&self, kind: FidKind) -> Option<&Fid> {
        self.infos.iter().find_map(|i| match i {
            Info::Fid(f) if f.kind == kind => Some(f),
            _ => None,
        })
    }

    /// The range of a pre-content event.
    pub fn range(&self) -> Option<(u64, u64)> {
        self.infos.iter().find_map(|i| match i {
            Info::Range { offset, count } => Some((*offset, *count)),
            _ => None,
        })
    }

    /// Whether the kernel reported an overflowed queue (events were lost before this one).
    pub fn is_overflow(&self) -> bool {
        self.mask.contains(EventMask::Q_OVERFLOW)
    }

    /// The object the event is about: the descriptor of a notification or of a pending
    /// permission event.
    pub fn object(&self) -> Option<BorrowedFd<'_>> {
        match (&self.fd, &self.permission) {
            (Some(fd), _) => Some(fd.as_fd()),
            (None, Some(p)) => Some(p.as_fd()),
            (None, None) => None,
        }
    }
}

/// The verdict for a permission event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    allow: bool,
    errno: i32,
    audit: bool,
}

impl Response {
    /// Let the operation proceed.
    pub const fn allow() -> Self {
        Self {
            allow: true,
            errno: 0,
            audit: false,
        }
    }

    /// Fail the operation with `EPERM`.
    pub const fn deny() -> Self {
        Self {
            allow: false,
            errno: 0,
            audit: false,
        }
    }

    /// Fail the operation with `errno` where the kernel allows it (see the crate docs),
    /// with `EPERM` elsewhere.
    pub const fn deny_with(errno: i32) -> Self {
        Self {
            allow: false,
            errno,
            audit: false,
        }
    }

    /// Also log the verdict to the audit subsystem (group needs [`InitFlags::ENABLE_AUDIT`]).
    pub const fn audit(mut self) -> Self {
        self.audit = true;
        self
    }

    /// Whether this verdict allows.
    pub const fn is_allow(&self) -> bool {
        self.allow
    }

    fn bits(&self, with_errno: bool) -> u32 {
        let mut bits = if self.allow {
            libc::FAN_ALLOW
        } else {
            libc::FAN_DENY
        };
        if !self.allow && with_errno && self.errno > 0 {
            bits |= ((self.errno as u32) & 0xff) << FAN_ERRNO_SHIFT;
        }
        if self.audit {
            bits |= libc::FAN_AUDIT;
        }
        bits
    }
}

/// A reusable buffer for [`Group::read_events`].
pub struct EventBuffer(Vec<u8>);

impl EventBuffer {
    /// A buffer of `len` bytes (at least 4096; 64 KiB reads a few hundred events at once).
    pub fn new(len: usize) -> Self {
        Self(vec![0; len.max(4096)])
    }
}

impl Default for EventBuffer {
    fn default() -> Self {
        Self::new(64 * 1024)
    }
}

impl Group {
    /// Creates a group (`fanotify_init(2)`). `event_f_flags` are the `open(2)` flags of the
    /// descriptors events carry (`O_RDONLY`, `O_RDWR` for a filter that fills files,
    /// `O_LARGEFILE`, `O_CLOEXEC` …). Needs `CAP_SYS_ADMIN` for anything but the
    /// unprivileged FID subset.
    ///
    /// References: fanotify_init(2).
    pub fn new(class: Class, flags: InitFlags, event_f_flags: i32) -> io::Result<Self> {
        let fd = sys::fanotify_init(class.bits() | flags.bits(), event_f_flags as libc::c_uint)?;
        Ok(Self {
            inner: Arc::new(Inner {
                fd,
                deny_errno_supported: AtomicBool::new(true),
            }),
        })
    }

    /// Adds, removes or flushes a mark (`fanotify_mark(2)`). The object is `path` relative
    /// to `dirfd` (`None`: the current directory), or `dirfd` itself when `path` is `None`.
    /// For [`MarkAction::Flush`] only `target` matters.
    ///
    /// References: fanotify_mark(2).
    pub fn mark(
        &self,
        action: MarkAction,
        target: MarkType,
        flags: MarkFlags,
        mask: EventMask,
        dirfd: Option<BorrowedFd<'_>>,
        path: Option<&Path>,
    ) -> io::Result<()> {
        let action_bits = match action {
            MarkAction::Add => libc::FAN_MARK_ADD,
            MarkAction::Remove => libc::FAN_MARK_REMOVE,
            MarkAction::Flush => libc::FAN_MARK_FLUSH,
        };
        let bits = action_bits | target.bits() | flags.bits();
        if action == MarkAction::Flush {
            return sys::fanotify_mark(self.as_fd(), bits, 0, None, None);
        }
        sys::fanotify_mark(self.as_fd(), bits, mask.bits(), dirfd, path)
    }

    /// Waits up to `timeout_ms` (negative: forever) for events; true when some are queued.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<bool> {
        Ok(sys::poll_one(self.as_fd(), libc::POLLIN, timeout_ms)? & libc::POLLIN != 0)
    }

    /// Reads the queued events (blocking unless the group is [`InitFlags::NONBLOCK`]; then
    /// an empty queue gives `Ok(vec![])`). Every descriptor in the result is owned: dropping
    /// an event closes them, and allows a permission event that was not answered.
    ///
    /// References: fanotify(7).
    pub fn read_events(&self, buf: &mut EventBuffer) -> io::Result<Vec<Event>> {
        let n = match sys::read(self.as_fd(), &mut buf.0) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let (raw, error) = record::parse_events(&buf.0[..n]);
        let events: Vec<Event> = raw.into_iter().map(|r| self.own(r)).collect();
        match error {
            None => Ok(events),
            // Dropping the events read before the bad record allows their permissions, so
            // no process stays blocked.
            Some(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    fn own(&self, raw: record::RawEvent) -> Event {
        let mask = EventMask::from_bits_retain(raw.mask);
        let fd = (raw.fd >= 0).then(|| sys::own_event_fd(raw.fd));
        let (fd, permission) = match fd {
            Some(fd) if mask.needs_response() => (
                None,
                Some(Permission::new(
                    Arc::clone(&self.inner) as Arc<dyn Respond>,
                    fd,
                )),
            ),
            fd => (fd, None),
        };
        let infos = raw
            .infos
            .into_iter()
            .map(|i| match i {
                record::RawInfo::Fid(f) => Info::Fid(f),
                record::RawInfo::Pidfd(p) => Info::Pidfd((p >= 0).then(|| sys::own_event_fd(p))),
                record::RawInfo::Error { error, count } => Info::Error { error, count },
                record::RawInfo::Range { offset, count } => Info::Range { offset, count },
                record::RawInfo::Other { info_type, bytes } => Info::Other { info_type, bytes },
            })
            .collect();
        Event {
            mask,
            pid: raw.pid,
            fd,
            permission,
            infos,
        }
    }
}

impl Respond for Inner {
    /// A denial with an errno the kernel refuses (before 6.13, or outside a pre-content
    /// group) is retried as a plain denial (`EPERM` for the caller); the fallback is
    /// remembered for this group.
    fn respond(&self, fd: RawFd, response: Response) -> io::Result<()> {
        let with_errno = self.deny_errno_supported.load(Ordering::Relaxed);
        match sys::write_response(self.fd.as_fd(), fd, response.bits(with_errno)) {
            Err(e)
                if e.raw_os_error() == Some(libc::EINVAL)
                    && !response.allow
                    && response.errno > 0
                    && with_errno =>
            {
                self.deny_errno_supported.store(false, Ordering::Relaxed);
                sys::write_response(self.fd.as_fd(), fd, response.bits(false))
            }
            other => other,
        }
    }
}

impl AsFd for Group {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.fd.as_fd()
    }
}

/// Opens the object a handle names on the filesystem holding `mount_fd` (any descriptor on
/// that filesystem, typically its mount root opened `O_PATH`). `flags` are `open(2)` flags;
/// `O_PATH` is enough to learn the path. Fails with `ESTALE` when the object is gone.
/// Needs `CAP_DAC_READ_SEARCH`.
///
/// References: open_by_handle_at(2).
pub fn open_by_handle_at(
    mount_fd: BorrowedFd<'_>,
    handle: &FileHandle,
    flags: i32,
) -> io::Result<OwnedFd> {
    sys::open_by_handle_at(mount_fd, handle, flags)
}

/// The path of an open descriptor, from `/proc/self/fd` (what the kernel's `d_path` says;
/// a deleted file ends with " (deleted)").
pub fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The full path an id record names: the directory resolved through `mount_fd`, joined
/// with the record's name ("." names the directory itself).
pub fn fid_path(mount_fd: BorrowedFd<'_>, fid: &Fid) -> io::Result<PathBuf> {
    let dir = open_by_handle_at(mount_fd, &fid.handle, libc::O_PATH)?;
    let base = fd_path(dir.as_fd())?;
    Ok(match &fid.name {
        Some(n) if n != "." => base.join(n),
        _ => base,
    })
}
