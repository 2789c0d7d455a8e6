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
//! path while the filter runs (see bench/bpf for the cost); the Linux extension setting
//! `TraceHandleSyscalls=False` leaves them out, reporting signals only.
//!
//! They are notifications: the kernel refuses the BPF LSM programs that could refuse the
//! operations, so a handler that changes `desired_access` gets `ERROR_NOT_SUPPORTED` (50)
//! through `on_error`, naming the operation. The filter's own process is ignored in the
//! kernel (unless `FilterOwnRequests`), and so are the rules by process id and by plain
//! image name (no `/`, `*` or `?`; matched in the kernel at exec against the last component
//! of the image `/proc/<pid>/exe` names, see `fsgate_bpf::name_rules`): ignored ones always,
//! filtered ones when every filtered rule is of those kinds. A rule for every process (-1)
//! or by a name with a wildcard or a directory is matched in user space only: while there is
//! such a filtered rule, every operation not ignored in the kernel reaches user space, which
//! chooses. Otherwise unrelated operations never reach user space. Every rule is checked
//! again when the event arrives, and a process that exited in between is judged by the rules
//! that selected it when it exited (the operations come from another kernel source than the
//! exit record). When the rules by name change, the kernel's list of matched processes is
//! rebuilt from the process table; an exec racing with that rebuild may be matched in user
//! space only, so its operations may be missed until its next exec.

use std::collections::HashMap;
use std::sync::Arc;

use fsgate_bpf::{Event, EventKinds, NameRule, PidRule, RuleList, Tracer, TracerBuilder};
use fsgate_core::dispatch::Dispatcher;
use fsgate_core::Result;

use crate::events::{EventsToFire, HandleOperation};
use crate::shared::{Shared, State};

/// Whether `EventsToFire` asks for either handle operation event.
pub(crate) fn wanted(events: EventsToFire) -> bool {
    events.contains(EventsToFire::PROCESS_HANDLE_OPERATION)
        || events.contains(EventsToFire::THREAD_HANDLE_OPERATION)
}

/// Loads the programs and fires the handle operation events on `dispatcher`.
fn start(shared: &Arc<Shared>, dispatcher: &Arc<Dispatcher>) -> Result<Tracer> {
    let mut builder = TracerBuilder::new()
        .events(EventKinds::HANDLE_OPERATIONS)
        .trace_syscalls(
            shared
                .trace_handle_syscalls
                .load(std::sync::atomic::Ordering::Relaxed),
        );
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
        shared.selects(&state, originator)
            || state.departed.selected(originator)
            // The kernel matched it (its exec may not have reached the table yet: the exec
            // record and this one come from different kernel sources); the ignored rules
            // still apply.
            || (op.originator_filtered && shared.not_ignored(&state, originator))
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

/// The programs and the rules by id and by name they were given.
pub(crate) struct HandleTracer {
    tracer: Tracer,
    /// Ignored ids in the kernel map, with whether children inherit them.
    ignored: HashMap<u32, bool>,
    /// Filtered ids in the kernel map.
    filtered: HashMap<u32, bool>,
    /// The plain names in the kernel map.
    names: KernelNames,
}

/// The rules by plain name the kernel holds: each name with whether children inherit it.
#[derive(Debug, Default, PartialEq, Eq)]
struct KernelNames {
    ignored: Vec<(String, bool)>,
    filtered: Vec<(String, bool)>,
}

impl HandleTracer {
    /// Loads the programs (see [`start`]) with no rules by id yet.
    pub(crate) fn start(shared: &Arc<Shared>, dispatcher: &Arc<Dispatcher>) -> Result<Self> {
        Ok(Self {
            tracer: start(shared, dispatcher)?,
            ignored: HashMap::new(),
            filtered: HashMap::new(),
            names: KernelNames::default(),
        })
    }

    /// How many handle operation records the kernel side sent to user space.
    pub(crate) fn delivered_records(&self) -> u64 {
        self.tracer.delivered_records()
    }

    /// Makes the kernel's maps hold the rules of `state` it can decide: ignored ids and
    /// plain names always, filtered ones when every filtered rule is of those kinds.
    pub(crate) fn sync(&mut self, state: &State) -> Result<()> {
        let rules = &state.rules;
        let decidable = rules.filtered.kernel_decidable();
        let ignored: HashMap<u32, bool> = rules.ignored.id_rules().collect();
        let filtered: HashMap<u32, bool> = if decidable {
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
        let names = KernelNames {
            ignored: rules.ignored.plain_names(),
            filtered: if decidable {
                rules.filtered.plain_names()
            } else {
                Vec::new()
            },
        };
        if names != self.names {
            self.set_names(&names)?;
            self.names = names;
        }
        self.seed(state)
    }

    /// Gives the kernel the rules by plain name, and empties its lists of processes matched
    /// by name or covered as descendants (entries by id stay) for [`seed`](Self::seed).
    fn set_names(&mut self, names: &KernelNames) -> Result<()> {
        let to_rules = |names: &[(String, bool)]| -> Vec<NameRule> {
            names
                .iter()
                .map(|(name, include_children)| NameRule {
                    name: name.clone(),
                    include_children: *include_children,
                })
                .collect()
        };
        self.tracer
            .set_name_rules(&to_rules(&names.ignored), &to_rules(&names.filtered))?;
        self.tracer.clear_derived(RuleList::Ignored)?;
        self.tracer.clear_derived(RuleList::Filtered)
    }

    /// Adds to the kernel's lists the running processes the kernel did not see start: those
    /// the rules by plain name match now, and the descendants of rules with
    /// `include_children` (which the kernel follows only through forks after it got the
    /// rule). Processes already listed keep their entries.
    fn seed(&mut self, state: &State) -> Result<()> {
        let lists = [
            (RuleList::Ignored, &state.rules.ignored, true),
            (
                RuleList::Filtered,
                &state.rules.filtered,
                state.rules.filtered.kernel_decidable(),
            ),
        ];
        for (list, rules, in_kernel) in lists {
            if !in_kernel {
                continue;
            }
            for (pid, include_children) in rules.plain_name_matches(&state.table) {
                self.tracer.add_name_match(list, pid, include_children)?;
            }
            for pid in rules.descendants() {
                self.tracer.add_descendant(list, pid)?;
            }
        }
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
