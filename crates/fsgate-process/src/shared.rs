//! What the filter's kernel readers and its API share while the filter is active.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fsgate_core::dispatch::{Dispatcher, Outcome, SerialKey, Task};
use fsgate_core::{code, Originator};

use crate::events::{EventsToFire, ProcessEvents};
use crate::rules::Rules;
use crate::table::ProcessTable;

/// The process table and the rules, changed together under one lock.
#[derive(Default)]
pub struct State {
    /// Live processes.
    pub table: ProcessTable,
    /// Filtered and ignored rules.
    pub rules: Rules,
    /// The images whose permission events fired `on_process_creation` for each process
    /// since its last exec record, so that the connector's record of that exec does not fire
    /// it again. Keyed by image as well as pid: an allowed exec that then failed (a bad
    /// format, a missing interpreter) leaves its image here, and the process's next
    /// successful exec of another image must still fire.
    pub exec_fired: HashMap<u32, Vec<String>>,
    /// Processes the rules selected when they exited, for events that report what they did
    /// just before (handle operations come from another kernel source, and may arrive
    /// after the connector's exit record dropped the process's rules).
    pub departed: Departed,
}

/// Processes selected at their exit, each remembered for [`Departed::GRACE`].
#[derive(Debug, Default)]
pub struct Departed(HashMap<u32, Instant>);

impl Departed {
    /// How long an exited process's selection is remembered: far longer than any event
    /// takes to arrive, far shorter than the kernel takes to hand its pid to another
    /// process (it cycles through `pid_max`, 4 million by default, first).
    pub const GRACE: Duration = Duration::from_secs(10);

    /// `pid` exited while selected.
    pub fn record(&mut self, pid: u32) {
        self.0.retain(|_, at| at.elapsed() < Self::GRACE);
        self.0.insert(pid, Instant::now());
    }

    /// Whether `pid` exited while selected, within the grace period.
    pub fn selected(&self, pid: u32) -> bool {
        self.0
            .get(&pid)
            .is_some_and(|at| at.elapsed() < Self::GRACE)
    }
}

/// Settings the readers consult on every event, and the application's handlers.
pub struct Shared {
    /// Table, rules and exec bookkeeping.
    pub state: Mutex<State>,
    /// `EventsToFire`.
    pub events_to_fire: AtomicU32,
    /// `FilterOwnRequests`.
    pub filter_own_requests: AtomicBool,
    /// `TraceHandleSyscalls`.
    pub trace_handle_syscalls: AtomicBool,
    /// `track_command_line`.
    pub track_command_line: AtomicBool,
    /// `DenyExpiredEvents`.
    pub deny_expired_events: AtomicBool,
    /// `LoggingEnabled`.
    pub logging_enabled: AtomicBool,
    /// This process: its requests are skipped unless `FilterOwnRequests` is set.
    pub own_pid: u32,
    /// The application's handlers.
    pub events: Arc<dyn ProcessEvents>,
}

impl Shared {
    /// Fresh shared state for `events`.
    pub fn new(events: Arc<dyn ProcessEvents>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            events_to_fire: AtomicU32::new(0),
            filter_own_requests: AtomicBool::new(false),
            trace_handle_syscalls: AtomicBool::new(true),
            track_command_line: AtomicBool::new(false),
            deny_expired_events: AtomicBool::new(false),
            logging_enabled: AtomicBool::new(false),
            own_pid: std::process::id(),
            events,
        }
    }

    /// The table and rules.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        fsgate_core::sync::lock(&self.state)
    }

    /// Whether `flag` is in `EventsToFire`.
    pub fn fires(&self, flag: EventsToFire) -> bool {
        EventsToFire(self.events_to_fire.load(Ordering::Relaxed)).contains(flag)
    }

    /// Whether a request made by `pid` fires events: the rules select it, and it is not
    /// this process unless `FilterOwnRequests` is on.
    pub fn selects(&self, state: &State, pid: u32) -> bool {
        if pid == self.own_pid && !self.filter_own_requests.load(Ordering::Relaxed) {
            return false;
        }
        state.rules.selects(pid, state.table.image(pid))
    }

    /// Whether no ignored rule covers `pid` (and it is not this process unless
    /// `FilterOwnRequests`): [`selects`](Self::selects) without the filtered rules.
    pub fn not_ignored(&self, state: &State, pid: u32) -> bool {
        if pid == self.own_pid && !self.filter_own_requests.load(Ordering::Relaxed) {
            return false;
        }
        !state.rules.ignored.covers(pid, state.table.image(pid))
    }

    /// Runs a notification handler for process `tgid` on the dispatcher; its result is
    /// only logged (the kernel has already done what the event reports).
    pub fn notify(
        self: &Arc<Self>,
        dispatcher: &Dispatcher,
        tgid: u32,
        originator: u32,
        what: &'static str,
        job: impl FnOnce(&dyn ProcessEvents) -> fsgate_core::Result<()> + Send + 'static,
    ) {
        if self.logging_enabled.load(Ordering::Relaxed) {
            tracing::info!("{what}: process {tgid}");
        }
        let me = Arc::clone(self);
        dispatcher.dispatch(
            Task::new(move || job(me.events.as_ref()))
                .key(SerialKey(u64::from(tgid)))
                .originator(originator_of(originator))
                .then(move |outcome| match outcome {
                    Outcome::Done(Ok(())) | Outcome::Panicked(_) => {}
                    Outcome::Done(Err(e)) => tracing::debug!("{what} handler for {tgid}: {e}"),
                    Outcome::TimedOut => tracing::warn!("{what} handler for {tgid} timed out"),
                    Outcome::Cancelled => tracing::debug!("{what} for {tgid} cancelled: stopping"),
                }),
        );
    }

    /// Fires `on_error` on a worker.
    pub fn error(self: &Arc<Self>, dispatcher: &Dispatcher, error_code: u32, description: String) {
        tracing::warn!("{description} (error {error_code})");
        let me = Arc::clone(self);
        dispatcher
            .dispatch(Task::new(move || me.events.on_error(error_code, &description)).then(|_| {}));
    }
}

/// The originator the dispatcher hands to `get_originator_token`: only the process id is
/// meaningful; credentials are read from `/proc/<pid>` when asked.
pub fn originator_of(pid: u32) -> Originator {
    Originator::of_process(pid, u32::MAX, u32::MAX)
}

/// The code `on_error` reports when the kernel dropped events because the filter fell
/// behind (its receive queue overflowed).
pub const EVENTS_LOST: u32 = code::ERROR_INSUFFICIENT_BUFFER;
