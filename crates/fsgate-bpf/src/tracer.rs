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
use crate::event::Event;
use crate::wire::{self, ThreadProcess};

/// The compiled programs (`src/bpf/tracer.bpf.c`, built by `build.rs`).
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tracer.bpf.o"));

/// Map values of `ignored_pids` / `filtered_pids` (`RULE_*` in the C source).
const RULE_CHILDREN: u8 = 1;

bitflags! {
    /// Which records the kernel side sends. Both kinds are loaded and attached either way;
    /// a kind not asked for is dropped in the kernel before it costs a record.
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
}

impl Default for TracerBuilder {
    fn default() -> Self {
        Self {
            events: EventKinds::all(),
            ignored: Vec::new(),
            filtered: Vec::new(),
            enforce: false,
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
        Tracer::start(self, handler)
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
    filter_rules: Mutex<usize>,
}

impl Tracer {
    fn start<F>(builder: TracerBuilder, mut handler: F) -> Result<Self>
    where
        F: FnMut(Event) + Send + 'static,
    {
        probe_kernel()?;
        crate::tracefs::ensure_mounted()?;
        let open = ObjectBuilder::default()
            .open_memory(OBJECT)
            .map_err(|e| bpf_refused("opening the BPF object", libbpf_errno(&e)))?;
        let object = open
            .load()
            .map_err(|e| bpf_refused("loading the BPF programs", libbpf_errno(&e)))?;

        let filter_count = builder.filtered.len();
        let settings = settings_value(builder.events, filter_count > 0);
        update(&object, "settings", &0u32.to_ne_bytes(), &settings)?;
        for rule in &builder.ignored {
            insert_rule(&object, "ignored_pids", *rule)?;
        }
        for rule in &builder.filtered {
            insert_rule(&object, "filtered_pids", *rule)?;
        }

        let malformed = Arc::new(AtomicU64::new(0));
        let ring = {
            let events = find_map(&object, "events")?;
            let mut ring = RingBufferBuilder::new();
            let malformed = Arc::clone(&malformed);
            ring.add(&events, move |data: &[u8]| {
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

        let mut links = Vec::new();
        for program in object.progs_mut() {
            let name = program.name().to_string_lossy().into_owned();
            let link = program
                .attach()
                .map_err(|e| bpf_refused(&format!("attaching {name}"), libbpf_errno(&e)))?;
            links.push(link);
        }

        let stop = Arc::new(
            rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| Error::io("creating the reader's stop eventfd", e.into()))?,
        );
        let reader_stop = Arc::clone(&stop);
        let reader = std::thread::Builder::new()
            .name("fsgate-bpf-reader".into())
            .spawn(move || read_until_stopped(&ring, reader_stop.as_fd()))
            .map_err(|e| Error::io("starting the ring buffer reader thread", e))?;

        Ok(Self {
            links,
            object,
            stop,
            reader: Some(reader),
            malformed,
            filter_rules: Mutex::new(filter_count),
        })
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
        *count += 1;
        self.set_filter_active(*count > 0)
    }

    /// Removes a filter rule; `ERROR_FILE_NOT_FOUND` (2) when the process had none. With the
    /// last one gone, everything not ignored is reported again.
    pub fn remove_filtered(&self, process_id: u32) -> Result<()> {
        let mut count = self.filter_rules.lock().unwrap_or_else(|e| e.into_inner());
        remove_rule(&self.object, "filtered_pids", process_id)?;
        *count = count.saturating_sub(1);
        self.set_filter_active(*count > 0)
    }

    fn set_filter_active(&self, active: bool) -> Result<()> {
        let map = find_map(&self.object, "settings")?;
        let current = map
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| bpf_refused("reading the settings map", libbpf_errno(&e)))?
            .unwrap_or_else(|| vec![0; 8]);
        let events = current
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_ne_bytes);
        update(
            &self.object,
            "settings",
            &0u32.to_ne_bytes(),
            &settings_value(EventKinds::from_bits_truncate(events), active),
        )
    }

    /// The kernel ids of the loaded programs (as `bpftool prog list` shows them).
    pub fn program_ids(&self) -> Vec<u32> {
        self.object
            .progs()
            .filter_map(|p| libbpf_rs::Program::id_from_fd(p.as_fd()).ok())
            .collect()
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

/// Detects at run time whether the kernel loads tracepoint programs at all, so a refusing
/// kernel gets one clear error rather than a verifier log.
fn probe_kernel() -> Result<()> {
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

fn settings_value(events: EventKinds, filter_active: bool) -> [u8; 8] {
    let mut value = [0u8; 8];
    value[..4].copy_from_slice(&u32::from(filter_active).to_ne_bytes());
    value[4..].copy_from_slice(&events.bits().to_ne_bytes());
    value
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
