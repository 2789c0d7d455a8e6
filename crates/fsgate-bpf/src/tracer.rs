//! The tracer: loads the programs, keeps their links, and reads the ring buffer on a thread.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use bitflags::bitflags;
use fsgate_core::{Error, Result};
use libbpf_rs::{Link, MapCore, MapFlags, Object, ObjectBuilder, ProgramType, RingBufferBuilder};
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::error::{bpf_refused, enforcement_unsupported, libbpf_errno};
use crate::event::{Event, ExecRecord};
use crate::name_rules::{self, NameRule, RuleList};
use crate::wire::{self, ThreadProcess};

/// The compiled programs (`src/bpf/tracer.bpf.c`, built by `build.rs`).
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));

/// Map values of `ignored_pids` / `filtered_pids` (`RULE_*` in the C source).
const RULE_CHILDREN: u8 = 1;
const RULE_INHERITED: u8 = 2;
const RULE_BY_NAME: u8 = 4;

/// The ring buffers' sizes: room for about 300,000 handle operation records, or 3,000 exec
/// records of a few hundred bytes each, while the reader is descheduled. A ring that is not
/// used gets one page.
const RING_BYTES: u32 = 16 << 20;
const UNUSED_RING_BYTES: u32 = 4096;

/// The syscall tracepoint programs (`sys_enter_*` remembers a call, `sys_exit_*` sends it
/// with its result).
const SYSCALL_PROGRAMS: &[&str] = &[
    "enter_ptrace",
    "enter_process_vm_readv",
    "enter_process_vm_writev",
    "enter_pidfd_getfd",
    "exit_ptrace",
    "exit_process_vm_readv",
    "exit_process_vm_writev",
    "exit_pidfd_getfd",
];
/// Signals, on the BTF-enabled tracepoint (tried first) or the classic one.
const SIGNAL_BTF: &str = "signal_generate_btf";
const SIGNAL_CLASSIC: &str = "signal_generate_tp";
const EXEC_PROGRAM: &str = "sched_exec";
/// Matches rules by name when a process execs.
const NAME_PROGRAM: &str = "sched_exec_names";
/// Keep rules inherited by children, and drop entries of exited threads.
const LIFETIME_PROGRAMS: &[&str] = &["sched_fork", "sched_exit"];

/// How signals are seen: `signal/signal_generate` as a BTF-enabled tracepoint, or as a
/// classic one on kernels that refuse the former.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignalHook {
    Btf,
    Classic,
}

impl SignalHook {
    fn program(self) -> &'static str {
        match self {
            Self::Btf => SIGNAL_BTF,
            Self::Classic => SIGNAL_CLASSIC,
        }
    }
}

bitflags! {
    /// Which records the kernel side sends. Only the programs of the kinds asked for are
    /// loaded and attached (plus the small ones that keep rules current at fork, exec and
    /// exit), so a kind not asked for costs nothing.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct EventKinds: u32 {
        /// [`Event::HandleOperation`].
        const HANDLE_OPERATIONS = 1;
        /// [`Event::Exec`].
        const EXEC = 2;
    }
}

/// A process-id rule: the process, and whether processes it forks later inherit the rule
/// (the reference's `include_children`). Inherited entries live in the kernel map until the
/// child exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PidRule {
    /// The process (thread group) id.
    pub process_id: u32,
    /// Whether children forked after the rule was set get it too.
    pub include_children: bool,
}

/// How to start a [`Tracer`].
#[derive(Clone, Debug)]
pub struct TracerBuilder {
    events: EventKinds,
    ignored: Vec<PidRule>,
    filtered: Vec<PidRule>,
    enforce: bool,
    syscalls: bool,
    exec_of_every_process: bool,
    ignored_names: Vec<NameRule>,
    filtered_names: Vec<NameRule>,
}

impl Default for TracerBuilder {
    fn default() -> Self {
        Self {
            events: EventKinds::all(),
            ignored: Vec::new(),
            filtered: Vec::new(),
            enforce: false,
            syscalls: true,
            exec_of_every_process: false,
            ignored_names: Vec::new(),
            filtered_names: Vec::new(),
        }
    }
}

impl TracerBuilder {
    /// Every event kind, no rules: every handle operation and exec on the system is reported.
    pub fn new() -> Self {
        Self::default()
    }

    /// Report only these kinds.
    pub fn events(mut self, events: EventKinds) -> Self {
        self.events = events;
        self
    }

    /// Never report what `rule.process_id` does (operations it makes, images it execs).
    /// Evaluated in the kernel: its operations never reach user space.
    pub fn ignore(mut self, rule: PidRule) -> Self {
        self.ignored.push(rule);
        self
    }

    /// Report only operations made by or aimed at filtered processes, and execs of filtered
    /// processes. With no filter rule, everything not ignored is reported.
    pub fn filter(mut self, rule: PidRule) -> Self {
        self.filtered.push(rule);
        self
    }

    /// Never report what processes running an image of this plain name do (see
    /// [`name_rules`](crate::name_rules); [`start`](Self::start) refuses another name with
    /// `ERROR_INVALID_PARAMETER` (87)). Processes already running are matched when they
    /// next exec, or through [`Tracer::add_name_match`].
    pub fn ignore_name(mut self, rule: NameRule) -> Self {
        self.ignored_names.push(rule);
        self
    }

    /// Report only operations by or on processes running an image of this plain name (and
    /// other filtered processes), as [`filter`](Self::filter) does for ids.
    pub fn filter_name(mut self, rule: NameRule) -> Self {
        self.filtered_names.push(rule);
        self
    }

    /// Whether `ptrace`, `process_vm_readv`/`writev` and `pidfd_getfd` are traced (the
    /// default). They have no tracepoint but their system calls', and attaching any system
    /// call tracepoint puts every system call of every process on the kernel's slower traced
    /// path (`TIF_SYSCALL_TRACEPOINT`), whether or not it is one of these. Off, only signals
    /// are reported (from `signal/signal_generate`, which costs nothing outside signal
    /// generation): bench/bpf/run.sh measures both.
    pub fn trace_syscalls(mut self, on: bool) -> Self {
        self.syscalls = on;
        self
    }

    /// Whether exec records are sent for every process, whatever the ignore and filter rules
    /// (which then apply to handle operations only). Off by default.
    pub fn exec_of_every_process(mut self, on: bool) -> Self {
        self.exec_of_every_process = on;
        self
    }

    /// Ask for enforcement (refusing or restricting operations). [`start`](Self::start) then
    /// fails with [`enforcement_unsupported`]: the kernel cannot refuse these operations for
    /// fsgate.
    pub fn enforce(mut self, enforce: bool) -> Self {
        self.enforce = enforce;
        self
    }

    /// Loads and attaches the programs, then calls `handler` for every event on a reader
    /// thread, in the order the kernel wrote them. A handler that panics loses that event;
    /// the next ones still come.
    ///
    /// Errors: [`enforcement_unsupported`] when enforcement was asked for;
    /// `ERROR_NOT_SUPPORTED` (50) when tracefs cannot be mounted or the kernel refuses BPF
    /// tracepoint programs (with the kernel's errno); `ERROR_PRIVILEGE_NOT_HELD` (1314) when
    /// the caller lacks the capabilities to load them.
    pub fn start<F>(self, handler: F) -> Result<Tracer>
    where
        F: FnMut(Event) + Send + 'static,
    {
        if self.enforce {
            return Err(enforcement_unsupported("enforce"));
        }
        Tracer::start(self, handler, None)
    }

    /// Like [`start`](Self::start), but exec records are not given to `handler`: they wait
    /// in the returned [`ExecReader`] until its owner drains them. The kernel writes an exec's
    /// record before it sends the process connector's exec record, so a connector reader
    /// that drains the [`ExecReader`] when it meets an exec finds that exec's record there.
    pub fn start_with_exec_reader<F>(self, handler: F) -> Result<(Tracer, ExecReader)>
    where
        F: FnMut(Event) + Send + 'static,
    {
        if self.enforce {
            return Err(enforcement_unsupported("enforce"));
        }
        let queue = Arc::new(Mutex::new(Vec::new()));
        let mut tracer = Tracer::start(self, handler, Some(Arc::clone(&queue)))?;
        let ring = tracer
            .exec_ring
            .take()
            .ok_or_else(|| bpf_refused("setting up the exec record ring buffer", libc::EINVAL))?;
        Ok((tracer, ExecReader { ring, queue }))
    }

    /// Like [`start`](Self::start), delivering events through a channel instead. The channel
    /// closes once the tracer is dropped and every event read before is delivered.
    pub fn start_channel(self) -> Result<(Tracer, mpsc::Receiver<Event>)> {
        let (sender, receiver) = mpsc::channel();
        let tracer = self.start(move |event| {
            // A closed receiver only means nobody listens any more.
            let _ = sender.send(event);
        })?;
        Ok((tracer, receiver))
    }
}

/// Loaded and attached tracepoint programs and the thread reading their ring buffer.
///
/// Everything is owned by this value and by the process: dropping it (or the process
/// ending, even by `SIGKILL`) closes the links and the programs, maps and ring buffer go
/// with them. Nothing is pinned.
pub struct Tracer {
    // Fields drop in this order: the reader has stopped (in `drop`) before the links and
    // the object go.
    links: Vec<Link>,
    object: Object,
    stop: Arc<OwnedFd>,
    reader: Option<JoinHandle<()>>,
    malformed: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
    /// Filter rules by id and by name: a filter is active while there is one.
    filter_rules: Mutex<FilterRules>,
    /// The exec ring, until [`TracerBuilder::start_with_exec_reader`] takes it.
    exec_ring: Option<libbpf_rs::RingBuffer<'static>>,
    signal_hook: Option<SignalHook>,
}

/// Exec records kept apart from a [`Tracer`]'s handler, for a reader that must see an exec's
/// record at a point of its own choosing (see [`TracerBuilder::start_with_exec_reader`]).
/// Records stay in the kernel's ring buffer until [`drain`](Self::drain) is called; a ring
/// left undrained fills up and then loses records (counted by [`Tracer::lost_records`]).
pub struct ExecReader {
    ring: libbpf_rs::RingBuffer<'static>,
    queue: Arc<Mutex<Vec<ExecRecord>>>,
}

impl ExecReader {
    /// Every exec record the kernel has written so far, in order; does not block.
    pub fn drain(&mut self) -> Vec<ExecRecord> {
        // A failing consume leaves the records where they are; the next drain retries.
        let _ = self.ring.consume();
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Where exec records go: to the handler, or to an [`ExecReader`]'s queue.
type ExecQueue = Option<Arc<Mutex<Vec<ExecRecord>>>>;

impl Tracer {
    fn start<F>(builder: TracerBuilder, mut handler: F, exec_queue: ExecQueue) -> Result<Self>
    where
        F: FnMut(Event) + Send + 'static,
    {
        probe_kernel()?;
        crate::tracefs::ensure_mounted()?;
        // The BTF-enabled signal tracepoint is cheaper; a kernel that refuses it (loading or
        // attaching) gets the classic one.
        let mut hook = SignalHook::Btf;
        let (object, links) = loop {
            match load_and_attach(&builder, hook, exec_queue.is_some()) {
                Ok(loaded) => break loaded,
                Err(e)
                    if hook == SignalHook::Btf
                        && builder.events.contains(EventKinds::HANDLE_OPERATIONS) =>
                {
                    tracing::debug!("signals from the classic tracepoint: {e}");
                    hook = SignalHook::Classic;
                }
                Err(e) => return Err(e),
            }
        };
        let signal_hook = builder
            .events
            .contains(EventKinds::HANDLE_OPERATIONS)
            .then_some(hook);

        // The rules go in before the settings that turn reporting on (the programs are
        // attached already, and report nothing while the settings are zero).
        for rule in &builder.ignored {
            insert_rule(&object, "ignored_pids", *rule)?;
        }
        for rule in &builder.filtered {
            insert_rule(&object, "filtered_pids", *rule)?;
        }
        write_name_rules(&object, &builder.ignored_names, &builder.filtered_names)?;
        let filter_rules = FilterRules {
            ids: builder.filtered.len(),
            names: builder.filtered_names.len(),
        };
        let settings = settings_value(
            builder.events,
            filter_rules.active(),
            builder.exec_of_every_process,
            exec_queue.is_some(),
        );
        update(&object, "settings", &0u32.to_ne_bytes(), &settings)?;

        let malformed = Arc::new(AtomicU64::new(0));
        let delivered = Arc::new(AtomicU64::new(0));
        let ring = {
            let events = find_map(&object, "events")?;
            let mut ring = RingBufferBuilder::new();
            let malformed = Arc::clone(&malformed);
            let delivered = Arc::clone(&delivered);
            ring.add(&events, move |data: &[u8]| {
                delivered.fetch_add(1, Ordering::Relaxed);
                match wire::decode(data, &ProcThreads) {
                    Ok(event) => {
                        // A panicking handler loses this event only.
                        let _ = catch_unwind(AssertUnwindSafe(|| handler(event)));
                    }
                    Err(_) => {
                        malformed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                0
            })
            .map_err(|e| bpf_refused("setting up the ring buffer", libbpf_errno(&e)))?;
            ring.build()
                .map_err(|e| bpf_refused("setting up the ring buffer", libbpf_errno(&e)))?
        };
        let exec_ring = match exec_queue {
            None => None,
            Some(queue) => {
                let map = find_map(&object, "exec_events")?;
                let mut ring = RingBufferBuilder::new();
                let malformed = Arc::clone(&malformed);
                ring.add(&map, move |data: &[u8]| {
                    match wire::decode(data, &ProcThreads) {
                        Ok(Event::Exec(exec)) => {
                            queue.lock().unwrap_or_else(|e| e.into_inner()).push(exec)
                        }
                        Ok(Event::HandleOperation(_)) | Err(_) => {
                            malformed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    0
                })
                .map_err(|e| bpf_refused("setting up the exec ring buffer", libbpf_errno(&e)))?;
                Some(ring.build().map_err(|e| {
                    bpf_refused("setting up the exec ring buffer", libbpf_errno(&e))
                })?)
            }
        };

        let stop = Arc::new(
            rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| Error::io("creating the reader's stop eventfd", e.into()))?,
        );
        let reader_stop = Arc::clone(&stop);
        let builder = std::thread::Builder::new().name("fsgate-bpf-reader".into());
        let reader = fsgate_core::threads::spawn(builder, move || {
            read_until_stopped(&ring, reader_stop.as_fd())
        })
        .map_err(|e| Error::io("starting the ring buffer reader thread", e))?;

        Ok(Self {
            links,
            object,
            stop,
            reader: Some(reader),
            malformed,
            delivered,
            filter_rules: Mutex::new(filter_rules),
            exec_ring,
            signal_hook,
        })
    }

    /// Whether signals are seen through the BTF-enabled `signal_generate` tracepoint (`true`)
    /// or the classic one a kernel that refuses it gets (`false`); `None` when handle
    /// operations were not asked for. The classic program finds the target by its thread id
    /// with the `bpf_task_from_pid` kfunc (Linux 6.2+): on an older kernel that also refuses
    /// BTF-enabled tracepoints, signals are not reported (only this machine kind's kernel,
    /// which takes the BTF-enabled one, is tested).
    pub fn signals_from_btf_tracepoint(&self) -> Option<bool> {
        self.signal_hook.map(|h| h == SignalHook::Btf)
    }

    /// Stops reporting what `rule.process_id` does, from now on.
    pub fn add_ignored(&self, rule: PidRule) -> Result<()> {
        insert_rule(&self.object, "ignored_pids", rule)
    }

    /// Removes an ignore rule; `ERROR_FILE_NOT_FOUND` (2) when the process had none.
    pub fn remove_ignored(&self, process_id: u32) -> Result<()> {
        remove_rule(&self.object, "ignored_pids", process_id)
    }

    /// Adds a filter rule: from now on only filtered processes' operations and execs (and
    /// operations aimed at them) are reported.
    pub fn add_filtered(&self, rule: PidRule) -> Result<()> {
        let mut count = self.filter_rules.lock().unwrap_or_else(|e| e.into_inner());
        insert_rule(&self.object, "filtered_pids", rule)?;
        count.ids += 1;
        self.set_filter_active(count.active())
    }

    /// Removes a filter rule; `ERROR_FILE_NOT_FOUND` (2) when the process had none. With the
    /// last one gone, everything not ignored is reported again.
    pub fn remove_filtered(&self, process_id: u32) -> Result<()> {
        let mut count = self.filter_rules.lock().unwrap_or_else(|e| e.into_inner());
        remove_rule(&self.object, "filtered_pids", process_id)?;
        count.ids = count.ids.saturating_sub(1);
        self.set_filter_active(count.active())
    }

    /// Replaces every rule by name with `ignored` and `filtered` (each a plain name: see
    /// [`name_rules`](crate::name_rules); anything else is `ERROR_INVALID_PARAMETER` (87)
    /// and changes nothing). Processes already running are not matched here: they are
    /// matched when they next exec, or given with [`add_name_match`](Self::add_name_match).
    /// With a filtered name, only what filtered processes do (or suffer) is reported.
    pub fn set_name_rules(&self, ignored: &[NameRule], filtered: &[NameRule]) -> Result<()> {
        let mut count = self.filter_rules.lock().unwrap_or_else(|e| e.into_inner());
        write_name_rules(&self.object, ignored, filtered)?;
        count.names = filtered.len();
        self.set_filter_active(count.active())
    }

    /// Marks running process `process_id` as matched by a rule by name of `list` (as the
    /// kernel does at exec): it leaves the list when it execs an image of another name or
    /// exits. With `include_children`, processes it forks from now on get the rule. A
    /// process already in the list keeps its entry.
    pub fn add_name_match(
        &self,
        list: RuleList,
        process_id: u32,
        include_children: bool,
    ) -> Result<()> {
        let value = RULE_BY_NAME | if include_children { RULE_CHILDREN } else { 0 };
        insert_new(&self.object, list.pid_map(), process_id, value)
    }

    /// Marks running process `process_id` as a descendant covered by a rule of `list` with
    /// `include_children` (as the kernel does at fork): it stays in the list until it exits,
    /// whatever it execs, and passes the rule to the processes it forks. A process already
    /// in the list keeps its entry.
    pub fn add_descendant(&self, list: RuleList, process_id: u32) -> Result<()> {
        insert_new(
            &self.object,
            list.pid_map(),
            process_id,
            RULE_CHILDREN | RULE_INHERITED,
        )
    }

    /// Removes every process of `list` that is there through a rule by name or as a
    /// descendant (the entries of rules by id stay), for a caller that rebuilds them after
    /// its rules by name changed.
    pub fn clear_derived(&self, list: RuleList) -> Result<()> {
        let map = find_map(&self.object, list.pid_map())?;
        let keys: Vec<Vec<u8>> = map.keys().collect();
        for key in keys {
            let derived = map
                .lookup(&key, MapFlags::ANY)
                .ok()
                .flatten()
                .and_then(|v| v.first().copied())
                .is_some_and(|v| v & (RULE_BY_NAME | RULE_INHERITED) != 0);
            if derived {
                // A key gone meanwhile (its process exited) is as good as deleted.
                let _ = map.delete(&key);
            }
        }
        Ok(())
    }

    fn set_filter_active(&self, active: bool) -> Result<()> {
        let map = find_map(&self.object, "settings")?;
        let current = map
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| bpf_refused("reading the settings map", libbpf_errno(&e)))?
            .unwrap_or_else(|| vec![0; SETTINGS_BYTES]);
        let mut value = current;
        value.resize(SETTINGS_BYTES, 0);
        value[..4].copy_from_slice(&u32::from(active).to_ne_bytes());
        update(&self.object, "settings", &0u32.to_ne_bytes(), &value)
    }

    /// The kernel ids of the loaded programs (as `bpftool prog list` shows them).
    pub fn program_ids(&self) -> Vec<u32> {
        self.object
            .progs()
            .filter_map(|p| libbpf_rs::Program::id_from_fd(p.as_fd()).ok())
            .collect()
    }

    /// How many records the kernel side has sent to this tracer's handler so far (exec
    /// records read through an [`ExecReader`] not included): what the rules in the kernel
    /// let through.
    pub fn delivered_records(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// How many records were lost: the ring buffer was full because the handler fell behind
    /// (the reference's "events lost", code 1460), or a record could not be decoded.
    pub fn lost_records(&self) -> u64 {
        let kernel = find_map(&self.object, "lost_records")
            .ok()
            .and_then(|m| m.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok().flatten())
            .and_then(|v| v.get(..8).and_then(|b| b.try_into().ok()))
            .map_or(0, u64::from_ne_bytes);
        kernel + self.malformed.load(Ordering::Relaxed)
    }

    /// Stops the tracer: every record written before is delivered, then the programs are
    /// detached and unloaded. Dropping the tracer does the same.
    pub fn stop(self) {}
}

impl Drop for Tracer {
    fn drop(&mut self) {
        // Wake the reader: it drains what is left and returns.
        let _ = rustix::io::write(&*self.stop, &1u64.to_ne_bytes());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.links.clear();
    }
}

/// Polls the ring buffer and the stop eventfd; no timer: the thread sleeps until a record
/// or the stop request comes.
fn read_until_stopped(ring: &libbpf_rs::RingBuffer<'static>, stop: BorrowedFd<'_>) {
    // SAFETY: the epoll fd belongs to `ring`, which outlives this borrow (it is only used
    // inside this function while `ring` is borrowed).
    let ring_fd = unsafe { BorrowedFd::borrow_raw(ring.epoll_fd()) };
    loop {
        let mut fds = [
            PollFd::new(&ring_fd, PollFlags::IN),
            PollFd::new(&stop, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        let stopping = !fds[1].revents().is_empty();
        // A failing consume means the ring buffer is unusable; nothing more will come.
        if ring.consume().is_err() || stopping {
            return;
        }
    }
}

/// Whether this kernel loads BPF tracepoint programs for this caller, probed with a trivial
/// program: `Ok` means a [`TracerBuilder::start`] that fails has another reason than the
/// kernel's refusal. Errors are those of [`TracerBuilder::start`] for a refusing kernel:
/// `ERROR_NOT_SUPPORTED` (50), or `ERROR_PRIVILEGE_NOT_HELD` (1314) for a caller without
/// the capabilities.
pub fn probe_kernel() -> Result<()> {
    match ProgramType::Tracepoint.is_supported() {
        Ok(true) => Ok(()),
        Ok(false) => Err(bpf_refused(
            "probing BPF tracepoint program support",
            libc::EPERM,
        )),
        Err(e) => Err(bpf_refused(
            "probing BPF tracepoint program support",
            libbpf_errno(&e),
        )),
    }
}

/// `struct settings` in the C source: four `u32`s.
const SETTINGS_BYTES: usize = 16;

fn settings_value(
    events: EventKinds,
    filter_active: bool,
    exec_all: bool,
    exec_ring: bool,
) -> [u8; SETTINGS_BYTES] {
    let mut value = [0u8; SETTINGS_BYTES];
    value[..4].copy_from_slice(&u32::from(filter_active).to_ne_bytes());
    value[4..8].copy_from_slice(&events.bits().to_ne_bytes());
    value[8..12].copy_from_slice(&u32::from(exec_all).to_ne_bytes());
    value[12..].copy_from_slice(&u32::from(exec_ring).to_ne_bytes());
    value
}

/// The programs `builder` needs, with signals on `hook`.
fn wanted_programs(builder: &TracerBuilder, hook: SignalHook) -> Vec<&'static str> {
    let mut names = LIFETIME_PROGRAMS.to_vec();
    names.push(NAME_PROGRAM);
    if builder.events.contains(EventKinds::HANDLE_OPERATIONS) {
        names.push(hook.program());
        if builder.syscalls {
            names.extend_from_slice(SYSCALL_PROGRAMS);
        }
    }
    if builder.events.contains(EventKinds::EXEC) {
        names.push(EXEC_PROGRAM);
    }
    names
}

/// Opens the object, loads only the programs `builder` needs (the others are never
/// verified nor attached: an unattached syscall tracepoint costs nothing), sizes the rings,
/// and attaches.
fn load_and_attach(
    builder: &TracerBuilder,
    hook: SignalHook,
    exec_apart: bool,
) -> Result<(Object, Vec<Link>)> {
    let wanted = wanted_programs(builder, hook);
    let mut open = ObjectBuilder::default()
        .open_memory(OBJECT)
        .map_err(|e| bpf_refused("opening the BPF object", libbpf_errno(&e)))?;
    for mut program in open.progs_mut() {
        let name = program.name().to_string_lossy().into_owned();
        program.set_autoload(wanted.contains(&name.as_str()));
    }
    let handle = builder.events.contains(EventKinds::HANDLE_OPERATIONS);
    let exec = builder.events.contains(EventKinds::EXEC);
    for mut map in open.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        let used = match name.as_str() {
            "events" => handle || (exec && !exec_apart),
            "exec_events" => exec && exec_apart,
            _ => continue,
        };
        let size = if used { RING_BYTES } else { UNUSED_RING_BYTES };
        map.set_max_entries(size)
            .map_err(|e| bpf_refused(&format!("sizing map {name}"), libbpf_errno(&e)))?;
    }
    let object = open
        .load()
        .map_err(|e| bpf_refused("loading the BPF programs", libbpf_errno(&e)))?;
    let mut links = Vec::new();
    for program in object.progs_mut() {
        let name = program.name().to_string_lossy().into_owned();
        if !wanted.contains(&name.as_str()) {
            continue;
        }
        let link = program
            .attach()
            .map_err(|e| bpf_refused(&format!("attaching {name}"), libbpf_errno(&e)))?;
        links.push(link);
    }
    Ok((object, links))
}

fn find_map<'o>(object: &'o Object, name: &str) -> Result<libbpf_rs::Map<'o>> {
    object
        .maps()
        .find(|m| m.name() == name)
        .ok_or_else(|| bpf_refused(&format!("finding map {name}"), libc::ENOENT))
}

fn update(object: &Object, map: &str, key: &[u8], value: &[u8]) -> Result<()> {
    find_map(object, map)?
        .update(key, value, MapFlags::ANY)
        .map_err(|e| bpf_refused(&format!("updating map {map}"), libbpf_errno(&e)))
}

/// The filter rules a tracer holds in the kernel.
#[derive(Debug, Default)]
struct FilterRules {
    ids: usize,
    names: usize,
}

impl FilterRules {
    fn active(&self) -> bool {
        self.ids + self.names > 0
    }
}

/// Replaces the kernel's rules by name; `ERROR_INVALID_PARAMETER` (87), changing nothing,
/// for a name the kernel cannot match.
fn write_name_rules(object: &Object, ignored: &[NameRule], filtered: &[NameRule]) -> Result<()> {
    let mut bits: std::collections::HashMap<[u8; name_rules::NAME_KEY], u8> =
        std::collections::HashMap::new();
    for (list, rules) in [(RuleList::Ignored, ignored), (RuleList::Filtered, filtered)] {
        for rule in rules {
            *bits.entry(name_rules::key(&rule.name)?).or_default() |=
                list.name_bits(rule.include_children);
        }
    }
    let map = find_map(object, "name_rules")?;
    let old: Vec<Vec<u8>> = map.keys().collect();
    for key in old {
        // A key gone meanwhile is as good as deleted.
        let _ = map.delete(&key);
    }
    for (key, value) in &bits {
        map.update(key, &[*value], MapFlags::ANY)
            .map_err(|e| bpf_refused("updating map name_rules", libbpf_errno(&e)))?;
    }
    Ok(())
}

/// Adds `process_id` to `map` unless it is there already.
fn insert_new(object: &Object, map: &str, process_id: u32, value: u8) -> Result<()> {
    if process_id == 0 {
        return Err(Error::invalid_argument(
            "process_id",
            "0 is not a process (the idle task)",
        ));
    }
    match find_map(object, map)?.update(&process_id.to_ne_bytes(), &[value], MapFlags::NO_EXIST) {
        Ok(()) => Ok(()),
        Err(e) if libbpf_errno(&e) == libc::EEXIST => Ok(()),
        Err(e) => Err(bpf_refused(
            &format!("updating map {map}"),
            libbpf_errno(&e),
        )),
    }
}

fn insert_rule(object: &Object, map: &str, rule: PidRule) -> Result<()> {
    if rule.process_id == 0 {
        return Err(Error::invalid_argument(
            "process_id",
            "0 is not a process (the idle task)",
        ));
    }
    let value = if rule.include_children {
        RULE_CHILDREN
    } else {
        0
    };
    update(object, map, &rule.process_id.to_ne_bytes(), &[value])
}

fn remove_rule(object: &Object, map: &str, process_id: u32) -> Result<()> {
    find_map(object, map)?
        .delete(&process_id.to_ne_bytes())
        .map_err(|_| {
            Error::from_code(
                fsgate_core::code::ERROR_FILE_NOT_FOUND,
                format!("process {process_id} has no rule in {map}"),
            )
        })
}

/// Looks a thread's process up in `/proc/<tid>/status` (the `Tgid:` line).
struct ProcThreads;

impl ThreadProcess for ProcThreads {
    fn process_of(&self, thread_id: u32) -> Option<u32> {
        let status = std::fs::read_to_string(format!("/proc/{thread_id}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Tgid:"))
            .and_then(|v| v.trim().parse().ok())
    }
}
