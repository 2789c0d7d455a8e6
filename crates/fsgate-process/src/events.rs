//! The events a [`ProcessFilter`](crate::ProcessFilter) fires, their parameters, and the
//! `EventsToFire` flags that switch them on.
//!
//! An application implements [`ProcessEvents`]; every method has a default that does what
//! the reference says happens when the event is not handled (nothing, and the operation goes
//! ahead). Handlers run on the filter's worker threads. Events of one process (its creation,
//! its threads, its termination) run one at a time in the order the kernel reported them;
//! events of different processes run in parallel unless `serialize_events` is set.

pub use fsgate_core::dispatch::Hooks;
use fsgate_core::Result;

/// Which events the filter fires (the `EventsToFire` setting). The default is
/// [`NONE`](Self::NONE): nothing fires until the application asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventsToFire(pub u32);

impl EventsToFire {
    /// `PROC_EVT_NONE`: no events.
    pub const NONE: Self = Self(0);
    /// `PROC_EVT_PROCESS_CREATION`: [`ProcessEvents::on_process_creation`].
    pub const PROCESS_CREATION: Self = Self(0x1);
    /// `PROC_EVT_PROCESS_TERMINATION`: [`ProcessEvents::on_process_termination`].
    pub const PROCESS_TERMINATION: Self = Self(0x2);
    /// `PROC_EVT_PROCESS_HANDLE_OPERATION`: from kernel tracepoints (see
    /// [`HandleOperation`]).
    pub const PROCESS_HANDLE_OPERATION: Self = Self(0x4);
    /// `PROC_EVT_THREAD_CREATION`: [`ProcessEvents::on_thread_creation`].
    pub const THREAD_CREATION: Self = Self(0x8);
    /// `PROC_EVT_THREAD_TERMINATION`: [`ProcessEvents::on_thread_termination`].
    pub const THREAD_TERMINATION: Self = Self(0x10);
    /// `PROC_EVT_THREAD_HANDLE_OPERATION`: from kernel tracepoints (see
    /// [`HandleOperation`]).
    pub const THREAD_HANDLE_OPERATION: Self = Self(0x20);
    /// `PROC_EVT_ALL` (the reference's -1): every event.
    pub const ALL: Self = Self(u32::MAX);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The value as the `EventsToFire` setting reads it (`PROC_EVT_ALL` is -1).
    pub fn as_setting(self) -> i64 {
        i64::from(self.0 as i32)
    }

    /// The flags for a setting value (-1: all).
    pub fn from_setting(value: i64) -> Self {
        Self(value as u32)
    }
}

/// `on_process_creation`: a program image is about to run (exec control) or has just
/// started running (notification).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessCreation {
    /// The process running the new image.
    pub process_id: u32,
    /// Its parent.
    pub parent_process_id: u32,
    /// The process that created it: the one whose fork produced it (its parent unless it was
    /// reparented, or itself when a process execs without forking first is not possible to
    /// tell apart: then the parent).
    pub creating_process_id: u32,
    /// The thread that called fork/clone; 0 when the fork happened before the filter started.
    pub creating_thread_id: u32,
    /// What [`get_process_name`](crate::ProcessFilter::get_process_name) returns for the
    /// process: the full path of the image now running.
    pub process_name: String,
    /// The image file the exec opened, as a full path.
    pub image_file_name: String,
    /// Whether `image_file_name` is a full path (false only when it is unknown: BPF was
    /// refused and the process had already exited).
    pub file_open_name_available: bool,
    /// The new command line, arguments joined by spaces; filled only when
    /// `track_command_line` is on, from the exact exec record the kernel wrote at exec time
    /// (see the crate docs). Where the kernel refuses BPF programs it is read from
    /// `/proc/<pid>/cmdline` when the event is prepared, and is empty for a process that
    /// already exited. Under exec control the event fires before the exec replaced the
    /// command line, so it is empty there.
    pub command_line: String,
}

/// `on_process_termination`: a process's last thread exited (fires once per process).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessTermination {
    /// The process that ended.
    pub process_id: u32,
    /// The full path of the image it was running, as known when it ended.
    pub process_name: String,
}

/// `on_thread_creation`: a process created a thread (fires after the kernel created it; it
/// cannot be refused).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadCreation {
    /// The process the new thread belongs to.
    pub process_id: u32,
    /// The new thread's id.
    pub thread_id: u32,
    /// The process that created it.
    pub creating_process_id: u32,
    /// The thread that created it.
    pub creating_thread_id: u32,
}

/// `on_thread_termination`: a thread other than the process's main thread exited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadTermination {
    /// The process the thread belonged to.
    pub process_id: u32,
    /// The thread's id.
    pub thread_id: u32,
}

/// `on_process_handle_operation` / `on_thread_handle_operation`: a signal, `ptrace`
/// request, memory read or write, or descriptor copy aimed at a process or thread, reported
/// from kernel tracepoints once its system call returned (see the crate docs, "Handle
/// operations"). The access bits are the reference's (`PROCESS_TERMINATE`, `PROCESS_VM_READ`,
/// …; the full table is in `fsgate_bpf::access`). It is a notification: the operation has
/// happened, and a handler that lowers `desired_access` gets `ERROR_NOT_SUPPORTED` (50)
/// through `on_error`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandleOperation {
    /// Whether an existing handle was being duplicated.
    pub duplication: bool,
    /// The process the handle is for.
    pub process_id: u32,
    /// The thread the handle is for (thread handles only).
    pub thread_id: u32,
    /// The process asking for the handle.
    pub originator_process_id: u32,
    /// The thread asking for the handle.
    pub originator_thread_id: u32,
    /// Source process of a duplication.
    pub source_process_id: u32,
    /// Target process of a duplication.
    pub target_process_id: u32,
    /// The access the operation asked for.
    pub original_desired_access: u32,
    /// The access the operation got: `original_desired_access` when its system call
    /// succeeded, 0 when it failed. Changing it cannot take back what happened (50).
    pub desired_access: u32,
}

/// The application's handlers. Every method has a default: do nothing, let the operation go
/// ahead. Worker threads and errors outside a handler's control (a handler panic, events the
/// kernel dropped because the filter fell behind, a failed kernel source) go to the
/// [`Hooks`] every class shares.
pub trait ProcessEvents: Hooks + Send + Sync + 'static {
    /// A program image starts in a process whose creator matches the rules.
    ///
    /// Under exec control (the image lies on a controlled path, see
    /// [`add_controlled_exec_path`](crate::ProcessFilter::add_controlled_exec_path)) this
    /// fires before the image runs and `Err` refuses it: the caller's `execve` fails with
    /// the error's errno when it is `EPERM`, else with `EACCES` (fanotify can only deny).
    /// Elsewhere it fires from the process connector just after the exec, and `Err` is only
    /// logged.
    fn on_process_creation(&self, _event: &mut ProcessCreation) -> Result<()> {
        Ok(())
    }

    /// A process whose own id or image matches the rules ended. `Err` is logged and ignored.
    fn on_process_termination(&self, _event: &ProcessTermination) -> Result<()> {
        Ok(())
    }

    /// A process matching the rules created a thread. `Err` is logged and ignored.
    fn on_thread_creation(&self, _event: &ThreadCreation) -> Result<()> {
        Ok(())
    }

    /// A thread of a process matching the rules ended. `Err` is logged and ignored.
    fn on_thread_termination(&self, _event: &ThreadTermination) -> Result<()> {
        Ok(())
    }

    /// A handle operation on a process (a signal to it, `ptrace` attach, memory access, a
    /// descriptor copy) by a process matching the rules, when `EventsToFire` asks for it.
    /// `Err` is logged and ignored (see [`HandleOperation`]).
    fn on_process_handle_operation(&self, _event: &mut HandleOperation) -> Result<()> {
        Ok(())
    }

    /// A handle operation on a thread (`tgkill`, `tkill`, `ptrace` requests on a traced
    /// thread) by a process matching the rules, when `EventsToFire` asks for it. `Err` is
    /// logged and ignored.
    fn on_thread_handle_operation(&self, _event: &mut HandleOperation) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_to_fire_flags_match_the_reference() {
        assert_eq!(EventsToFire::default(), EventsToFire::NONE);
        assert_eq!(EventsToFire::ALL.as_setting(), -1);
        assert_eq!(EventsToFire::from_setting(-1), EventsToFire::ALL);
        let both = EventsToFire::PROCESS_CREATION.union(EventsToFire::THREAD_TERMINATION);
        assert_eq!(both.as_setting(), 0x11);
        assert!(both.contains(EventsToFire::PROCESS_CREATION));
        assert!(!both.contains(EventsToFire::PROCESS_TERMINATION));
        assert!(EventsToFire::ALL.contains(EventsToFire::THREAD_HANDLE_OPERATION));
    }
}
