//! [`Permission`]: a permission event that owns its descriptor until it is answered.
//!
//! The kernel holds the process that raised a permission event until the group writes a
//! verdict naming the event's descriptor. A [`Permission`] carries that descriptor and the
//! way back to its group, so the verdict can only be written while the descriptor is open,
//! and only once: [`Permission::answer`] consumes the event, and dropping an event that was
//! never answered allows the operation. No code path (an early return, a panic unwinding
//! through a handler, a listener that stops) can leave a process blocked on an event its
//! listener forgot.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, Weak};

use fsgate_core::sync::lock;

use crate::Response;

/// Where a verdict is written: the group the event was read from.
pub(crate) trait Respond: Send + Sync {
    /// Writes `response` for the event whose descriptor is `fd`.
    fn respond(&self, fd: RawFd, response: Response) -> io::Result<()>;
}

/// A permission event waiting for its verdict.
///
/// Owns the event's descriptor (the object the calling process is opening, reading or
/// executing, opened for the listener with `FMODE_NONOTIFY`). [`answer`](Self::answer)
/// writes the verdict and closes the descriptor; dropping an unanswered event writes
/// [`Response::allow`] first, so a dropped event never leaves a process blocked.
#[derive(Debug)]
pub struct Permission {
    // Declared before `fd`: fields drop in order, so the allow of an unanswered event is
    // written while its descriptor is still open.
    verdict: Unanswered,
    fd: OwnedFd,
}

/// Writes the allow of a dropped, unanswered event.
struct Unanswered {
    group: Arc<dyn Respond>,
    fd: RawFd,
    answered: bool,
}

impl std::fmt::Debug for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unanswered").field("fd", &self.fd).finish()
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.group.respond(self.fd, Response::allow());
        }
    }
}

impl Permission {
    pub(crate) fn new(group: Arc<dyn Respond>, fd: OwnedFd) -> Self {
        Self {
            verdict: Unanswered {
                group,
                fd: fd.as_raw_fd(),
                answered: false,
            },
            fd,
        }
    }

    /// Writes the verdict and closes the descriptor. A denial with an errno the kernel
    /// refuses is written as a plain denial (see the crate docs). An error is the kernel's
    /// refusal of the write; the event is consumed either way.
    ///
    /// References: fanotify(7) "Monitoring filesystems for permission events".
    pub fn answer(self, response: Response) -> io::Result<()> {
        let Permission { mut verdict, fd } = self;
        verdict.answered = true;
        verdict.group.respond(fd.as_raw_fd(), response)
    }
}

impl AsFd for Permission {
    /// The event's object, open as long as the event is unanswered.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A [`Permission`] a job owns while a set of [`HeldEvents`] can still release it.
///
/// The job answers it with [`answer`](Self::answer); if the set is released first, the job's
/// later answer does nothing. Dropping it unanswered allows, like a [`Permission`].
#[derive(Debug)]
pub struct Held(Arc<Mutex<Option<Permission>>>);

impl Held {
    /// Answers the event unless [`HeldEvents::release`] already did. The error is the
    /// kernel's refusal of the write.
    pub fn answer(self, response: Response) -> io::Result<()> {
        let permission = lock(&self.0).take();
        match permission {
            Some(p) => p.answer(response),
            None => Ok(()),
        }
    }
}

/// The permission events a listener's jobs hold, so that stopping the listener can answer
/// them all at once without waiting for the jobs. Keeps only weak references: an event
/// answered or dropped by its job leaves the set by itself.
#[derive(Debug, Default)]
pub struct HeldEvents(Mutex<Vec<Weak<Mutex<Option<Permission>>>>>);

impl HeldEvents {
    /// Hands `permission` to a job, keeping the right to release it.
    pub fn hold(&self, permission: Permission) -> Held {
        let slot = Arc::new(Mutex::new(Some(permission)));
        let mut all = lock(&self.0);
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&slot));
        Held(slot)
    }

    /// Answers every event still held with `response`; the jobs' later answers do nothing.
    pub fn release(&self, response: Response) {
        let all = std::mem::take(&mut *lock(&self.0));
        for slot in all.iter().filter_map(Weak::upgrade) {
            let permission = lock(&slot).take();
            if let Some(p) = permission {
                let _ = p.answer(response);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the verdicts written, with whether the descriptor was still open then.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(RawFd, Response, bool)>>);

    impl Respond for Recorder {
        fn respond(&self, fd: RawFd, response: Response) -> io::Result<()> {
            let open = std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok();
            lock(&self.0).push((fd, response, open));
            Ok(())
        }
    }

    fn event(recorder: &Arc<Recorder>) -> (Permission, RawFd) {
        let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let raw = fd.as_raw_fd();
        (
            Permission::new(Arc::clone(recorder) as Arc<dyn Respond>, fd),
            raw,
        )
    }

    fn written(recorder: &Recorder) -> Vec<(RawFd, Response, bool)> {
        recorder.0.lock().unwrap().clone()
    }

    #[test]
    fn dropping_an_unanswered_event_allows_it_once_while_its_descriptor_is_open() {
        let recorder = Arc::new(Recorder::default());
        let (permission, raw) = event(&recorder);
        drop(permission);
        assert_eq!(written(&recorder), vec![(raw, Response::allow(), true)]);
    }

    #[test]
    fn answering_writes_that_verdict_once_and_the_drop_adds_nothing() {
        let recorder = Arc::new(Recorder::default());
        let (permission, raw) = event(&recorder);
        permission.answer(Response::deny_with(libc::EIO)).unwrap();
        assert_eq!(
            written(&recorder),
            vec![(raw, Response::deny_with(libc::EIO), true)]
        );
    }

    #[test]
    fn an_event_dropped_by_a_panic_is_allowed() {
        let recorder = Arc::new(Recorder::default());
        let (permission, raw) = event(&recorder);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = permission;
            panic!("handler failed");
        }));
        assert!(unwound.is_err());
        assert_eq!(written(&recorder), vec![(raw, Response::allow(), true)]);
    }

    #[test]
    fn releasing_held_events_answers_them_once_and_the_jobs_answer_is_ignored() {
        let recorder = Arc::new(Recorder::default());
        let set = HeldEvents::default();
        let (a, raw_a) = event(&recorder);
        let (b, raw_b) = event(&recorder);
        let held_a = set.hold(a);
        let held_b = set.hold(b);
        held_b.answer(Response::deny()).unwrap();
        set.release(Response::allow());
        held_a.answer(Response::deny()).unwrap();
        assert_eq!(
            written(&recorder),
            vec![
                (raw_b, Response::deny(), true),
                (raw_a, Response::allow(), true)
            ]
        );
    }

    #[test]
    fn a_held_event_dropped_by_its_job_allows_and_leaves_the_set() {
        let recorder = Arc::new(Recorder::default());
        let set = HeldEvents::default();
        let (a, raw_a) = event(&recorder);
        drop(set.hold(a));
        set.release(Response::deny());
        assert_eq!(written(&recorder), vec![(raw_a, Response::allow(), true)]);
    }
}
