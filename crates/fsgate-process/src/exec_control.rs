//! Exec control: `on_process_creation` before a program image runs, with the power to refuse
//! it, through fanotify `FAN_OPEN_EXEC_PERM` marks on the mounts holding the images.
//!
//! The kernel raises the permission event when `execve` opens the image, and holds the
//! calling process until the filter answers. The reader thread here decides from the rules
//! (matched against the process that created the exec-ing process) whether the event fires;
//! if not, it allows at once. Otherwise the handler runs on the dispatcher and its result is
//! the verdict: `Ok` allows, `Err` denies (the caller's `execve` fails with `EPERM`; fanotify
//! content groups cannot choose another errno). Every held event is answered exactly once:
//! by its handler, at its deadline (allowed, or denied when `DenyExpiredEvents` is set), or
//! allowed by [`ExecControl::stop`], whichever comes first.
//!
//! The creation event of an exec fires once: from here when the image lies on a marked
//! mount, and the connector's exec record for that process is then skipped; from the
//! connector otherwise. A program's ELF interpreter (`ld-linux`) is opened for execution
//! too: when it lies on a marked mount it raises a second permission event for the same
//! exec, which fires a second `on_process_creation` naming the interpreter.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fsgate_core::dispatch::{Dispatcher, Outcome, SerialKey, Task};
use fsgate_core::listener::{Flow, Interest, Listener, Source};
use fsgate_core::{code, Error, Result};
use fsgate_fanotify::{
    Class, EventBuffer, EventMask, Group, HeldEvents, InitFlags, MarkAction, MarkFlags, MarkType,
    Permission, Response,
};

use crate::events::{EventsToFire, ProcessCreation};
use crate::shared::{originator_of, Shared, EVENTS_LOST};
use crate::table::read_ppid;

/// A fanotify group with `FAN_OPEN_EXEC_PERM` marks and its reader thread.
pub struct ExecControl {
    group: Arc<Group>,
    held: Arc<HeldEvents>,
    listener: Option<Listener>,
}

impl ExecControl {
    /// Creates the group and marks the mount holding each of `paths`.
    ///
    /// Errors: `ERROR_PRIVILEGE_NOT_HELD` (1314) without `CAP_SYS_ADMIN`;
    /// `ERROR_NOT_SUPPORTED` (50) on a kernel build without fanotify permission events (see
    /// [`mark`](Self::mark)).
    pub fn new(paths: &[String]) -> Result<Self> {
        let group = Group::new(
            Class::Content,
            InitFlags::CLOEXEC | InitFlags::NONBLOCK | InitFlags::UNLIMITED_QUEUE,
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE,
        )
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::EPERM) {
                Error::new(
                    code::ERROR_PRIVILEGE_NOT_HELD,
                    libc::EPERM,
                    "exec control needs CAP_SYS_ADMIN for a fanotify permission group",
                )
            } else if e.raw_os_error() == Some(libc::EINVAL) {
                no_permission_events("a permission group", &e)
            } else {
                Error::io("creating the exec control fanotify group", e)
            }
        })?;
        let control = Self {
            group: Arc::new(group),
            held: Arc::default(),
            listener: None,
        };
        for path in paths {
            control.mark(path)?;
        }
        Ok(control)
    }

    /// Marks the mount holding `path`.
    ///
    /// Errors: `ERROR_NOT_SUPPORTED` (50, errno `EOPNOTSUPP`) naming
    /// `CONFIG_FANOTIFY_ACCESS_PERMISSIONS` when the kernel refuses a permission mark with
    /// `EINVAL` (a build without fanotify permission events); other errors with their errno.
    pub fn mark(&self, path: &str) -> Result<()> {
        self.group
            .mark(
                MarkAction::Add,
                MarkType::Mount,
                MarkFlags::empty(),
                EventMask::OPEN_EXEC_PERM,
                None,
                Some(Path::new(path)),
            )
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::EINVAL) {
                    no_permission_events(&format!("the mark on the mount holding {path}"), &e)
                } else {
                    Error::io(
                        format!("marking the mount holding {path} for exec control"),
                        e,
                    )
                }
            })
    }

    /// Starts the reader thread.
    pub fn start(&mut self, shared: Arc<Shared>, dispatcher: Arc<Dispatcher>) -> Result<()> {
        let reader = Reader {
            group: Arc::clone(&self.group),
            held: Arc::clone(&self.held),
            shared,
            dispatcher,
            buf: EventBuffer::default(),
        };
        self.listener = Some(Listener::spawn("fsgate-exec-control", reader)?);
        Ok(())
    }

    /// Stops reading and allows every exec still held. Handlers still running finish on
    /// their own; their verdicts are dropped.
    pub fn stop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.stop();
        }
        self.held.release(Response::allow());
    }
}

impl Drop for ExecControl {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The exec control group's reader.
struct Reader {
    group: Arc<Group>,
    held: Arc<HeldEvents>,
    shared: Arc<Shared>,
    dispatcher: Arc<Dispatcher>,
    buf: EventBuffer,
}

impl Source for Reader {
    fn descriptors(&self) -> Vec<(BorrowedFd<'_>, Interest)> {
        vec![(self.group.as_fd(), Interest::Readable)]
    }

    fn ready(&mut self, _ready: &[bool]) -> Flow {
        let (shared, dispatcher) = (&self.shared, &*self.dispatcher);
        let events = match self.group.read_events(&mut self.buf) {
            Ok(events) => events,
            Err(e) => {
                shared.error(
                    dispatcher,
                    code::ERROR_GEN_FAILURE,
                    format!("exec control: {e}"),
                );
                return Flow::Continue;
            }
        };
        for mut ev in events {
            if ev.is_overflow() {
                shared.error(
                    dispatcher,
                    EVENTS_LOST,
                    "the exec control queue overflowed: execs were allowed unseen".into(),
                );
                continue;
            }
            let Some(p) = ev.permission.take() else {
                continue;
            };
            permission(&self.held, shared, dispatcher, ev.pid as u32, p);
        }
        Flow::Continue
    }

    fn failed(&mut self, e: std::io::Error) {
        self.shared.error(
            &self.dispatcher,
            code::ERROR_GEN_FAILURE,
            format!("exec control: {e}"),
        );
    }
}

/// Decides one held exec: allow at once (dropping the event allows it), or fire
/// `on_process_creation` and answer with its verdict.
fn permission(
    held: &HeldEvents,
    shared: &Arc<Shared>,
    dispatcher: &Dispatcher,
    pid: u32,
    permission: Permission,
) {
    let image = fsgate_fanotify::fd_path(permission.as_fd())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let decision = {
        let mut st = shared.lock();
        let (ppid, creator, creator_thread) = match st.table.get(pid) {
            Some(i) => (
                i.ppid,
                if i.creator != 0 { i.creator } else { i.ppid },
                i.creator_thread,
            ),
            None => {
                let ppid = read_ppid(pid).unwrap_or(0);
                (ppid, ppid, 0)
            }
        };
        let fire = shared.fires(EventsToFire::PROCESS_CREATION) && shared.selects(&st, creator);
        if fire {
            st.exec_fired.entry(pid).or_default().push(image.clone());
        }
        fire.then_some((ppid, creator, creator_thread))
    };
    let Some((ppid, creator, creator_thread)) = decision else {
        return;
    };
    let mut ev = ProcessCreation {
        process_id: pid,
        parent_process_id: ppid,
        creating_process_id: creator,
        creating_thread_id: creator_thread,
        file_open_name_available: image.starts_with('/'),
        process_name: image.clone(),
        image_file_name: image,
        command_line: String::new(),
    };
    let me = Arc::clone(shared);
    let deny_expired = shared.deny_expired_events.load(Ordering::Relaxed);
    let held = held.hold(permission);
    let after = Arc::clone(shared);
    let denied_image = ev.image_file_name.clone();
    dispatcher.dispatch(
        Task::new(move || me.events.on_process_creation(&mut ev))
            .key(SerialKey(u64::from(pid)))
            .originator(originator_of(creator))
            .then(move |outcome| {
                let allow = match outcome {
                    Outcome::Done(Ok(())) | Outcome::Cancelled => true,
                    Outcome::Done(Err(e)) => {
                        tracing::debug!("exec by process {pid} denied: {e}");
                        false
                    }
                    Outcome::TimedOut => !deny_expired,
                    Outcome::Panicked(_) => false,
                };
                if !allow {
                    forget_fired(&mut after.lock().exec_fired, pid, &denied_image);
                }
                let response = if allow {
                    Response::allow()
                } else {
                    Response::deny()
                };
                if let Err(e) = held.answer(response) {
                    tracing::error!("answering an exec permission event: {e}");
                }
            }),
    );
}

/// Drops one `image` from the images fired for `pid` (a denied exec never gets a record).
fn forget_fired(fired: &mut HashMap<u32, Vec<String>>, pid: u32, image: &str) {
    if let Some(images) = fired.get_mut(&pid) {
        if let Some(i) = images.iter().position(|x| x == image) {
            images.remove(i);
        }
        if images.is_empty() {
            fired.remove(&pid);
        }
    }
}

/// `ERROR_NOT_SUPPORTED` for a kernel build without fanotify permission events, which
/// refuses `what` with `EINVAL`.
fn no_permission_events(what: &str, e: &std::io::Error) -> Error {
    Error::new(
        code::ERROR_NOT_SUPPORTED,
        libc::EOPNOTSUPP,
        format!(
            "exec control needs fanotify permission events (FAN_OPEN_EXEC_PERM, \
             CONFIG_FANOTIFY_ACCESS_PERMISSIONS); this kernel build refused {what} ({e})"
        ),
    )
}
