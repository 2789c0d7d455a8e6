//! Typed flags for `fanotify_init(2)` and `fanotify_mark(2)`.

use bitflags::bitflags;

/// `FAN_PRE_ACCESS`: pre-content access event (include/uapi/linux/fanotify.h, Linux 6.14).
pub const FAN_PRE_ACCESS: u64 = 0x0010_0000;

/// The notification class of a group: it decides which events it may receive and in which
/// order listeners of different classes are asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Notifications only (`FAN_CLASS_NOTIF`); the only class that may report file ids.
    Notif,
    /// Permission events, after the file content is final (`FAN_CLASS_CONTENT`).
    Content,
    /// Permission and pre-content events, before the content is final
    /// (`FAN_CLASS_PRE_CONTENT`); needed for [`EventMask::PRE_ACCESS`].
    PreContent,
}

impl Class {
    pub(crate) fn bits(self) -> libc::c_uint {
        match self {
            Class::Notif => libc::FAN_CLASS_NOTIF,
            Class::Content => libc::FAN_CLASS_CONTENT,
            Class::PreContent => libc::FAN_CLASS_PRE_CONTENT,
        }
    }
}

bitflags! {
    /// Group flags for `fanotify_init(2)` (the class is passed separately).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct InitFlags: libc::c_uint {
        /// Close the group descriptor on exec.
        const CLOEXEC = libc::FAN_CLOEXEC;
        /// Reads return `EAGAIN` instead of blocking.
        const NONBLOCK = libc::FAN_NONBLOCK;
        /// No limit on the event queue (default 16384 events, then `FAN_Q_OVERFLOW`).
        const UNLIMITED_QUEUE = libc::FAN_UNLIMITED_QUEUE;
        /// No limit on the number of marks.
        const UNLIMITED_MARKS = libc::FAN_UNLIMITED_MARKS;
        /// Allow [`Response::audit`](crate::Response) to log verdicts to the audit subsystem.
        const ENABLE_AUDIT = libc::FAN_ENABLE_AUDIT;
        /// Add a pidfd record to every event (Linux 5.15).
        const REPORT_PIDFD = libc::FAN_REPORT_PIDFD;
        /// Report the thread id instead of the process id.
        const REPORT_TID = libc::FAN_REPORT_TID;
        /// Report file ids (handles) instead of open descriptors (notification class only).
        const REPORT_FID = libc::FAN_REPORT_FID;
        /// Report the id of the directory holding the object.
        const REPORT_DIR_FID = libc::FAN_REPORT_DIR_FID;
        /// Report the name of the object inside that directory (with `REPORT_DIR_FID`).
        const REPORT_NAME = libc::FAN_REPORT_NAME;
        /// Report the target's id too for directory entry events.
        const REPORT_TARGET_FID = libc::FAN_REPORT_TARGET_FID;
        /// `REPORT_DIR_FID | REPORT_NAME`.
        const REPORT_DFID_NAME = libc::FAN_REPORT_DFID_NAME;
    }
}

bitflags! {
    /// Event bits: what a mark subscribes to and what an event reports.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct EventMask: u64 {
        /// A file was read.
        const ACCESS = libc::FAN_ACCESS;
        /// A file was written.
        const MODIFY = libc::FAN_MODIFY;
        /// Metadata changed.
        const ATTRIB = libc::FAN_ATTRIB;
        /// A file opened for writing was closed.
        const CLOSE_WRITE = libc::FAN_CLOSE_WRITE;
        /// A file opened read-only was closed.
        const CLOSE_NOWRITE = libc::FAN_CLOSE_NOWRITE;
        /// A file or directory was opened.
        const OPEN = libc::FAN_OPEN;
        /// An entry was moved out of a watched directory.
        const MOVED_FROM = libc::FAN_MOVED_FROM;
        /// An entry was moved into a watched directory.
        const MOVED_TO = libc::FAN_MOVED_TO;
        /// An entry was created.
        const CREATE = libc::FAN_CREATE;
        /// An entry was deleted.
        const DELETE = libc::FAN_DELETE;
        /// The watched object itself was deleted.
        const DELETE_SELF = libc::FAN_DELETE_SELF;
        /// The watched object itself was moved.
        const MOVE_SELF = libc::FAN_MOVE_SELF;
        /// A file was opened for execution.
        const OPEN_EXEC = libc::FAN_OPEN_EXEC;
        /// The event queue overflowed: events were lost.
        const Q_OVERFLOW = libc::FAN_Q_OVERFLOW;
        /// A filesystem error was reported.
        const FS_ERROR = libc::FAN_FS_ERROR;
        /// Permission to open (the opener waits for the answer).
        const OPEN_PERM = libc::FAN_OPEN_PERM;
        /// Permission to read (the reader waits for the answer).
        const ACCESS_PERM = libc::FAN_ACCESS_PERM;
        /// Permission to open for execution (the exec waits for the answer).
        const OPEN_EXEC_PERM = libc::FAN_OPEN_EXEC_PERM;
        /// Pre-content access: fill a range before the access proceeds (Linux 6.14).
        const PRE_ACCESS = FAN_PRE_ACCESS;
        /// Report events on the children of a marked directory.
        const EVENT_ON_CHILD = libc::FAN_EVENT_ON_CHILD;
        /// An entry was renamed (old and new names in one event, Linux 5.17).
        const RENAME = libc::FAN_RENAME;
        /// The event concerns a directory (and subscribes to directory events).
        const ONDIR = libc::FAN_ONDIR;
    }
}

impl EventMask {
    /// The events a listener must answer (they come as a [`Permission`](crate::Permission)).
    pub const PERMISSION: EventMask = EventMask::OPEN_PERM
        .union(EventMask::ACCESS_PERM)
        .union(EventMask::OPEN_EXEC_PERM)
        .union(EventMask::PRE_ACCESS);

    /// Whether the event holds the caller until it is answered.
    pub fn needs_response(self) -> bool {
        self.intersects(Self::PERMISSION)
    }
}

/// What a `fanotify_mark(2)` call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkAction {
    /// Add the mask to the mark (create it if needed).
    Add,
    /// Remove the mask from the mark.
    Remove,
    /// Remove every mark of the given [`MarkType`] from the group.
    Flush,
}

/// What a mark is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkType {
    /// One inode (a file, or a directory and with `EVENT_ON_CHILD` its entries).
    Inode,
    /// The mount holding the path (FID groups cannot subscribe to directory entry events
    /// on a mount: use [`MarkType::Filesystem`] for those).
    Mount,
    /// The whole filesystem (superblock) holding the path, through every mount.
    Filesystem,
}

impl MarkType {
    pub(crate) fn bits(self) -> libc::c_uint {
        match self {
            MarkType::Inode => libc::FAN_MARK_INODE,
            MarkType::Mount => libc::FAN_MARK_MOUNT,
            MarkType::Filesystem => libc::FAN_MARK_FILESYSTEM,
        }
    }
}

bitflags! {
    /// Extra `fanotify_mark(2)` flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MarkFlags: libc::c_uint {
        /// Do not follow a final symlink.
        const DONT_FOLLOW = libc::FAN_MARK_DONT_FOLLOW;
        /// Fail unless the path is a directory.
        const ONLYDIR = libc::FAN_MARK_ONLYDIR;
        /// The mask is an ignore mask (legacy form).
        const IGNORED_MASK = libc::FAN_MARK_IGNORED_MASK;
        /// The ignore mask survives modification of the file.
        const IGNORED_SURV_MODIFY = libc::FAN_MARK_IGNORED_SURV_MODIFY;
        /// The inode mark may be evicted with the inode (Linux 5.19).
        const EVICTABLE = libc::FAN_MARK_EVICTABLE;
        /// The mask is an ignore mask that can also ignore directory events (Linux 6.0).
        const IGNORE = libc::FAN_MARK_IGNORE;
    }
}
