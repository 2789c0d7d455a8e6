//! Process and thread handle operations, from kernel tracepoints (`fsgate-bpf`).
//!
//! Linux has no process handles, but it has the operations the reference's handles exist
//! for: signals (`kill`, `tgkill`, `tkill`, `pidfd_send_signal`), `ptrace`, reading and
//! writing another process's memory (`process_vm_readv`/`writev`) and copying its
//! descriptors (`pidfd_getfd`). When `EventsToFire` asks for handle operations,
//! `start_filter` loads `fsgate-bpf`'s tracepoint programs, and each such system call fires
//! `on_process_handle_operation` or `on_thread_handle_operation` once it returned: the
//! desired access is what the operation asks for (the table in `fsgate_bpf::access`), the
//! granted access ([`HandleOperation::desired_access`] as the handler receives it) is the
//! same when the call succeeded and none when it failed.
//!
//! They are notifications: the kernel refuses the BPF LSM programs that could refuse the
//! operations, so a handler that changes `desired_access` gets `ERROR_NOT_SUPPORTED` (50)
//! through `on_error`, naming the operation. The filter's own process is ignored in the
//! kernel (unless `FilterOwnRequests`); the rules are checked when the event arrives, and a
//! process that exited in between is judged by the rules that selected it when it exited
//! (the operations come from another kernel source than the exit record).

use std::sync::Arc;

use fsgate_bpf::{Event, EventKinds, PidRule, Tracer, TracerBuilder};
use fsgate_core::dispatch::Dispatcher;
use fsgate_core::Result;

use crate::events::{EventsToFire, HandleOperation};
use crate::shared::Shared;

/// Whether `EventsToFire` asks for either handle operation event.
pub(crate) fn wanted(events: EventsToFire) -> bool {
    events.contains(EventsToFire::PROCESS_HANDLE_OPERATION)
        || events.contains(EventsToFire::THREAD_HANDLE_OPERATION)
}

/// Loads the programs and fires the handle operation events on `dispatcher`.
pub(crate) fn start(shared: &Arc<Shared>, dispatcher: &Arc<Dispatcher>) -> Result<Tracer> {
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
