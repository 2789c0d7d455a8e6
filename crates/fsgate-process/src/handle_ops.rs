//! Process and thread handle operations, from kernel tracepoints (`fsgate-bpf`).
//!
//! Linux has no process handles, but it has the operations the reference's handles exist
//! for: signals (`kill`, `tgkill`, `tkill`, `pidfd_send_signal`), `ptrace`, reading and
//! writing another process's memory (`process_vm_readv`/`writev`) and copying its
//! descriptors (`pidfd_getfd`). When `EventsToFire` asks for handle operations,
//! `start_filter` loads `fsgate-bpf`'s tracepoint programs, and each such operation fires
//! `on_process_handle_operation` or `on_thread_handle_operation`: the desired access is what
//! the operation asks for (the table in `fsgate_bpf::access`; a signal is fatal, asking for
//! `PROCESS_TERMINATE`, only when the target neither catches nor ignores it), the granted
//! access ([`HandleOperation::desired_access`] as the handler receives it) is the same when
//! the call succeeded and none when it failed.
//!
//! Signals are seen where the kernel generates them (`signal/signal_generate`), once per
//! process or thread signalled, so a signal loop pays nothing on its other system calls;
//! signal 0 and signals the kernel refused (`EPERM`, `ESRCH`) generate nothing and are not
//! reported. `ptrace`, `process_vm_readv`/`writev` and `pidfd_getfd` are seen at their
//! system call's entry and exit, with failures reported (nothing granted); attaching those
//! system call tracepoints puts every system call of every process on the kernel's traced
//! path while the filter runs (see bench/bpf for the cost).
//!
//! They are notifications: the kernel refuses the BPF LSM programs that could refuse the
//! operations, so a handler that changes `desired_access` gets `ERROR_NOT_SUPPORTED` (50)
//! through `on_error`, naming the operation. The filter's own process is ignored in the
//! kernel (unless `FilterOwnRequests`), and so are the rules by process id: ignored ids
//! always, filtered ids when every filtered rule is by id (a rule by name or for every
//! process needs the image, which only user space knows), so unrelated operations never
//! reach user space. Every rule is checked again when the event arrives, and a process that
//! exited in between is judged by the rules that selected it when it exited (the operations
//! come from another kernel source than the exit record).

use std::collections::HashMap;
use std::sync::Arc;

use fsgate_bpf::{Event, EventKinds, PidRule, Tracer, TracerBuilder};
use fsgate_core::dispatch::Dispatcher;
use fsgate_core::Result;

use crate::events::{EventsToFire, HandleOperation};
use crate::rules::Rules;
use crate::shared::Shared;

/// Whether `EventsToFire` asks for either handle operation event.
pub(crate) fn wanted(events: EventsToFire) -> bool {
    events.contains(EventsToFire::PROCESS_HANDLE_OPERATION)
        || events.contains(EventsToFire::THREAD_HANDLE_OPERATION)
}

/// Loads the programs and fires the handle operation events on `dispatcher`.
fn start(shared: &Arc<Shared>, dispatcher: &Arc<Dispatcher>) -> Result<Tracer> {
    let mut builder = TracerBuilder::new().events(EventKinds::HANDLE_OPERATIONS);
    if !shared
        .filter_own_requests
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        builder = builder.ignore(PidRule {
            process_id: shared.own_pid,
            include_children: false,
        });
    }
    let shared = Arc::clone(shared);
    let dispatcher = Arc::clone(dispatcher);
    builder.start(move |event| {
        if let Event::HandleOperation(op) = event {
            fire(&shared, &dispatcher, op);
        }
    })
}

/// Fires the event for `op` when `EventsToFire` and the rules select it.
fn fire(shared: &Arc<Shared>, dispatcher: &Dispatcher, op: fsgate_bpf::HandleOperation) {
    let thread = op.is_thread_operation();
    let flag = if thread {
        EventsToFire::THREAD_HANDLE_OPERATION
    } else {
        EventsToFire::PROCESS_HANDLE_OPERATION
    };
    let originator = op.originator_process_id;
    if !shared.fires(flag) {
        return;
    }
    let selected = {
        let state = shared.lock();
        shared.selects(&state, originator) || state.departed.selected(originator)
    };
    if !selected {
        return;
    }
    let asked = op.desired_access.bits();
    let mut event = HandleOperation {
        duplication: op.duplication,
        process_id: op.process_id,
        thread_id: op.thread_id,
        originator_process_id: originator,
        originator_thread_id: op.originator_thread_id,
        source_process_id: op.source_process_id,
        target_process_id: op.target_process_id,
        original_desired_access: asked,
        desired_access: op.granted_access.bits(),
    };
    let what = if thread {
        "thread_handle_operation"
    } else {
        "process_handle_operation"
    };
    shared.notify(dispatcher, originator, originator, what, move |h| {
        let granted = event.desired_access;
        if thread {
            h.on_thread_handle_operation(&mut event)?;
        } else {
            h.on_process_handle_operation(&mut event)?;
        }
        if event.desired_access == granted {
            return Ok(());
        }
        let restricted = op.check_desired_access(event.desired_access);
        if let Err(e) = &restricted {
            h.on_error(e.code(), e.message());
        }
        restricted
    });
}

/// The programs and the rules by id they were given.
pub(crate) struct HandleTracer {
    tracer: Tracer,
    /// Ignored ids in the kernel map, with whether children inherit them.
    ignored: HashMap<u32, bool>,
    /// Filtered ids in the kernel map.
    filtered: HashMap<u32, bool>,
}

impl HandleTracer {
    /// Loads the programs (see [`start`]) with no rules by id yet.
    pub(crate) fn start(shared: &Arc<Shared>, dispatcher: &Arc<Dispatcher>) -> Result<Self> {
        Ok(Self {
            tracer: start(shared, dispatcher)?,
            ignored: HashMap::new(),
            filtered: HashMap::new(),
        })
    }

    /// Makes the kernel's maps hold `rules`' ids: ignored ids always, filtered ids when
    /// every filtered rule is by id.
    pub(crate) fn sync(&mut self, rules: &Rules) -> Result<()> {
        let ignored: HashMap<u32, bool> = rules.ignored.id_rules().collect();
        let filtered: HashMap<u32, bool> = if rules.filtered.by_id_only() {
            rules.filtered.id_rules().collect()
        } else {
            HashMap::new()
        };
        // An id whose rule changed is removed and added again, so the kernel map and the
        // tracer's count of filter rules stay in step.
        for (&pid, old) in &self.ignored {
            if ignored.get(&pid) != Some(old) {
                gone(self.tracer.remove_ignored(pid))?;
            }
        }
        for (&pid, &include_children) in &ignored {
            if self.ignored.get(&pid) != Some(&include_children) {
                self.tracer.add_ignored(PidRule {
                    process_id: pid,
                    include_children,
                })?;
            }
        }
        for (&pid, old) in &self.filtered {
            if filtered.get(&pid) != Some(old) {
                gone(self.tracer.remove_filtered(pid))?;
            }
        }
        for (&pid, &include_children) in &filtered {
            if self.filtered.get(&pid) != Some(&include_children) {
                self.tracer.add_filtered(PidRule {
                    process_id: pid,
                    include_children,
                })?;
            }
        }
        self.ignored = ignored;
        self.filtered = filtered;
        Ok(())
    }
}

/// A removal's result, where a rule the kernel no longer holds is as good as removed.
fn gone(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if e.code() == fsgate_core::code::ERROR_FILE_NOT_FOUND => Ok(()),
        r => r,
    }
}
