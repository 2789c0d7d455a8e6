//! The event dispatcher: where every fsgate class runs its application's event handlers.
//!
//! A class that receives a request from the kernel (a FUSE request, a fanotify permission
//! event, a process connector message) [`dispatch`](Dispatcher::dispatch)es a [`Task`]: the
//! handler to run, where and how, and a completion that answers the kernel. The dispatcher guarantees:
//!
//! - handlers run on worker threads, never on the thread that created the dispatcher; with
//!   [`Task::run_here_if_idle`] and an `inline_limit`, a job whose file is
//!   idle may run on the thread that received the request (a FUSE reader thread), which saves
//!   two thread switches per event; the pool starts
//!   `min_workers` threads, grows to `max_workers` when every worker is busy, and shrinks back
//!   after [`IDLE_EXIT`] without work; `on_worker_thread_creation` / `_termination` fire on
//!   the worker itself;
//! - jobs with the same [`SerialKey`] (a file) run one at a time, in submission order; jobs
//!   with different keys or no key run in parallel; `serialize_events` puts every job under
//!   one key. The exception is [`Hold::Shared`] (reads of a file with `SerializeAccess`
//!   off): such jobs of one key whose ranges do not overlap run side by side, and still after
//!   every earlier job they cannot run beside;
//! - the completion runs exactly once. With a timeout, the deadline counts from submission,
//!   so the kernel's caller never waits longer than the timeout. A job that has not returned
//!   by its deadline is completed with [`Outcome::TimedOut`] by the watchdog thread; its key is
//!   released so later events for that file proceed, and its late result is dropped. A
//!   handler may push its deadline back with [`reset_timeout`]. A job that expires while
//!   still queued never runs;
//! - a panicking handler is caught: `on_error` fires and the job completes with
//!   [`Outcome::Panicked`]. The worker survives.

use std::any::Any;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::marker::PhantomData;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use foldhash::HashMap;

use crate::error::{code, Error, Result};
use crate::originator::Originator;
use crate::sync::{lock, wait};
use crate::threads;

/// How long a worker above the minimum waits for work before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

/// The smallest non-zero timeout the reference allows, in milliseconds.
pub const MIN_TIMEOUT_MS: u32 = 3000;

/// An event timeout: 0 (none) or at least 3000 ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeout(u32);

impl Timeout {
    /// No timeout: handlers may take as long as they like.
    pub const NONE: Timeout = Timeout(0);

    /// A timeout of `ms` milliseconds; anything but 0 or ≥ 3000 is
    /// `ERROR_IMPLEMENTATION_LIMIT` (1292).
    pub fn from_millis(ms: u32) -> Result<Self> {
        if ms != 0 && ms < MIN_TIMEOUT_MS {
            return Err(Error::from_code(
                code::ERROR_IMPLEMENTATION_LIMIT,
                format!(
                    "invalid timeout: {ms} ms; use 0 (no timeout) or at least {MIN_TIMEOUT_MS} ms"
                ),
            ));
        }
        Ok(Self(ms))
    }

    /// The timeout in milliseconds (0: none).
    pub fn as_millis(self) -> u32 {
        self.0
    }

    fn duration(self) -> Option<Duration> {
        (self.0 != 0).then(|| Duration::from_millis(u64::from(self.0)))
    }
}

/// Jobs with equal keys run one at a time in submission order (a key names a file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialKey(pub u64);

/// How a job holds its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Alone: no other job of the key runs beside it. Every job but a shared read.
    Exclusive,
    /// Beside other shared jobs of the key whose ranges do not overlap this one.
    Shared(Range<u64>),
}

/// A job and how it is to run: what [`Dispatcher::dispatch`] takes.
///
/// ```
/// use std::sync::Arc;
/// use fsgate_core::dispatch::{Dispatcher, NoHooks, Options, Outcome, SerialKey, Task};
///
/// let dispatcher = Dispatcher::new(Options::default(), Arc::new(NoHooks))?;
/// // One file's event: it runs after the earlier jobs of key 7, on a worker.
/// dispatcher.dispatch(Task::new(|| 2 + 2).key(SerialKey(7)).then(|outcome| {
///     assert_eq!(outcome, Outcome::Done(4));
/// }));
/// // The same, waiting for the outcome.
/// let outcome = dispatcher.call(Task::new(|| 2 + 2).key(SerialKey(7)));
/// assert_eq!(outcome, Outcome::Done(4));
/// # Ok::<(), fsgate_core::Error>(())
/// ```
///
/// By default a job has no key (it runs beside every other job), holds its key
/// exclusively, has no originator, runs on a worker, and nothing waits for its outcome.
#[must_use = "a task does nothing until it is dispatched"]
pub struct Task<J, C = ()> {
    job: J,
    complete: C,
    key: Option<SerialKey>,
    hold: Hold,
    originator: Option<Originator>,
    may_run_here: bool,
}

impl<J> Task<J> {
    /// A task that runs `job`.
    pub fn new(job: J) -> Self {
        Self {
            job,
            complete: (),
            key: None,
            hold: Hold::Exclusive,
            originator: None,
            may_run_here: false,
        }
    }
}

impl<J, C> Task<J, C> {
    /// Runs the job in turn with the other jobs of `key` (one file's events).
    pub fn key(mut self, key: SerialKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Holds the key as `hold` says ([`Hold::Exclusive`] unless set; without a key,
    /// nothing to hold).
    pub fn hold(mut self, hold: Hold) -> Self {
        self.hold = hold;
        self
    }

    /// What [`current_originator`] returns inside the handler.
    pub fn originator(mut self, originator: Originator) -> Self {
        self.originator = Some(originator);
        self
    }

    /// Whether the job may run on the dispatching thread when its key is idle (see
    /// [`Dispatcher::dispatch`]); a thread that must not block (an io_uring thread whose
    /// queue has no other idle thread) says no.
    pub fn run_here_if_idle(mut self, allowed: bool) -> Self {
        self.may_run_here = allowed;
        self
    }

    /// Calls `complete` with the job's [`Outcome`], exactly once.
    pub fn then<C2>(self, complete: C2) -> Task<J, C2> {
        Task {
            job: self.job,
            complete,
            key: self.key,
            hold: self.hold,
            originator: self.originator,
            may_run_here: self.may_run_here,
        }
    }
}

/// A key's jobs: those running now (one exclusive, or shared ones with their ranges) and
/// those waiting, in submission order. An exclusive job allocates nothing here.
#[derive(Default)]
struct KeyJobs {
    exclusive: Option<u64>,
    shared: Vec<(u64, Range<u64>)>,
    waiting: VecDeque<Job>,
}

impl KeyJobs {
    /// Whether a job holding `hold` may start now, beside the running ones.
    fn admits(&self, hold: &Hold) -> bool {
        self.exclusive.is_none()
            && match hold {
                Hold::Exclusive => self.shared.is_empty(),
                Hold::Shared(r) => self
                    .shared
                    .iter()
                    .all(|(_, s)| r.end <= s.start || s.end <= r.start),
            }
    }

    fn start(&mut self, state: &JobState) {
        match &state.hold {
            Hold::Exclusive => self.exclusive = Some(state.id),
            Hold::Shared(r) => self.shared.push((state.id, r.clone())),
        }
    }

    fn finish(&mut self, id: u64) {
        if self.exclusive == Some(id) {
            self.exclusive = None;
        } else {
            self.shared.retain(|(s, _)| *s != id);
        }
    }

    fn idle(&self) -> bool {
        self.exclusive.is_none() && self.shared.is_empty() && self.waiting.is_empty()
    }
}

/// The key every job shares under `serialize_events`.
const GLOBAL_KEY: SerialKey = SerialKey(u64::MAX);

/// How a job ended, as its completion sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The handler returned this value in time.
    Done(T),
    /// The deadline passed first; the handler's result, when it comes, is dropped.
    TimedOut,
    /// The handler panicked with this message.
    Panicked(String),
    /// The dispatcher was shut down before the job could run.
    Cancelled,
}

/// The hooks every class shares: worker thread creation and termination, and errors outside
/// any handler's reach. Every class's event trait (`MonitorEvents`, `FilterEvents`,
/// `ProcessEvents`) extends it, so an application implements it once per handler type (an
/// empty `impl Hooks for MyHandler {}` keeps the defaults) and the dispatcher calls the
/// application directly.
pub trait Hooks: Send + Sync {
    /// Fires on a new worker thread before it runs any job.
    fn on_worker_thread_creation(&self) {}
    /// Fires on a worker thread just before it exits.
    fn on_worker_thread_termination(&self) {}
    /// Something failed outside a handler's reach: a handler panicked (code
    /// `ERROR_INTERNAL_ERROR`, message with the panic text), the kernel dropped events, a
    /// kernel source failed. The default logs it as a warning through `tracing`.
    fn on_error(&self, code: u32, description: &str) {
        tracing::warn!(code, description, "fsgate error");
    }
}

/// Hooks that do nothing.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// Pool size, serialization and timeout.
#[derive(Clone, Debug)]
pub struct Options {
    /// Threads kept even when idle (`MinWorkerThreadCount`).
    pub min_workers: usize,
    /// Upper bound on threads (`MaxWorkerThreadCount`).
    pub max_workers: usize,
    /// Run every job under one key (`serialize_events`).
    pub serialize_events: bool,
    /// Deadline for each handler.
    pub timeout: Timeout,
    /// Worker stack size in bytes (`WorkerInitialStackSize`); `None`: the std default.
    pub stack_size: Option<usize>,
    /// Prefix of worker thread names.
    pub name: String,
    /// How many jobs [`Task::run_here_if_idle`] lets run at once on their dispatching
    /// threads; 0 (the default) never does. Only used without a timeout.
    pub inline_limit: usize,
}

impl Default for Options {
    /// `min_workers` = max(cores, 4), `max_workers` = 4 × cores, no timeout.
    fn default() -> Self {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            min_workers: cores.max(4),
            max_workers: (4 * cores).max(cores.max(4)),
            serialize_events: false,
            timeout: Timeout::NONE,
            stack_size: None,
            name: "fsgate-worker".into(),
            inline_limit: 0,
        }
    }
}

impl Options {
    /// Checks the counts: `max_workers` ≥ 1 and ≥ `min_workers`.
    pub fn validate(&self) -> Result<()> {
        if self.max_workers == 0 {
            return Err(Error::invalid_argument(
                "MaxWorkerThreadCount",
                "must be at least 1",
            ));
        }
        if self.min_workers > self.max_workers {
            return Err(Error::invalid_argument(
                "MinWorkerThreadCount",
                format!(
                    "{} exceeds MaxWorkerThreadCount {}",
                    self.min_workers, self.max_workers
                ),
            ));
        }
        Ok(())
    }
}

/// What a running handler can see about its own request.
struct JobState {
    id: u64,
    deadline: Mutex<Option<Instant>>,
    finished: AtomicBool,
    started: AtomicBool,
    /// Runs on its submitting thread, not on a worker.
    inline: AtomicBool,
    key: Option<SerialKey>,
    hold: Hold,
    key_released: AtomicBool,
    /// No longer counted as outstanding.
    retired: AtomicBool,
    originator: Option<Originator>,
    /// Taken by whichever comes first: the handler's return, or the watchdog, which then
    /// completes the job with [`Outcome::TimedOut`].
    expire: Mutex<Option<Arc<dyn Expire>>>,
    /// In `Inner::live`, where the watchdog finds it: from submission when there is a
    /// timeout, else from the first `reset_timeout` that sets a deadline.
    watched: AtomicBool,
}

/// Runs a job's handler, calls its argument once the handler has returned, then completes.
type RunJob = dyn FnOnce(&dyn Fn()) + Send;

/// A job's completion, run once by whoever takes it: the job's end, the watchdog, or shutdown.
struct Completion<T, C> {
    complete: Mutex<Option<C>>,
    outcome: PhantomData<fn(T)>,
}

impl<T, C: FnOnce(Outcome<T>)> Completion<T, C> {
    fn new(complete: C) -> Self {
        Self {
            complete: Mutex::new(Some(complete)),
            outcome: PhantomData,
        }
    }

    fn finish(&self, outcome: Outcome<T>) {
        let complete = lock(&self.complete).take();
        if let Some(c) = complete {
            c(outcome);
        }
    }
}

/// What the watchdog does to a job whose deadline passed.
trait Expire: Send + Sync {
    fn expire(&self);
}

impl<T, C: FnOnce(Outcome<T>) + Send> Expire for Completion<T, C> {
    fn expire(&self) {
        self.finish(Outcome::TimedOut);
    }
}

struct Job {
    state: Arc<JobState>,
    run: Box<RunJob>,
}

#[derive(Default)]
struct Queues {
    ready: VecDeque<Job>,
    keys: HashMap<SerialKey, KeyJobs>,
    workers: usize,
    idle: usize,
    /// Workers still running a handler whose request already expired.
    stuck: usize,
    /// Jobs running now on their submitting threads.
    inline: usize,
    outstanding: usize,
    /// Threads waiting on `drained`: without any, completing a job makes no wake-up call.
    drain_waiters: usize,
    shutting_down: bool,
}

struct Inner {
    options: Options,
    hooks: Arc<dyn Hooks>,
    queues: Mutex<Queues>,
    work: Condvar,
    drained: Condvar,
    deadlines: Mutex<BinaryHeap<Reverse<(Instant, u64)>>>,
    watch: Condvar,
    /// Jobs the watchdog may have to expire (see `JobState::watched`).
    live: Mutex<HashMap<u64, Arc<JobState>>>,
    next_id: AtomicU64,
}

/// A worker pool with per-key serialization and a timeout watchdog.
pub struct Dispatcher {
    inner: Arc<Inner>,
}

thread_local! {
    static CURRENT: RefCell<Option<(Arc<Inner>, Arc<JobState>)>> = const { RefCell::new(None) };
}

impl Dispatcher {
    /// Starts the pool's minimum threads and the watchdog.
    pub fn new(options: Options, hooks: Arc<dyn Hooks>) -> Result<Self> {
        options.validate()?;
        let inner = Arc::new(Inner {
            options,
            hooks,
            queues: Mutex::new(Queues::default()),
            work: Condvar::new(),
            drained: Condvar::new(),
            deadlines: Mutex::new(BinaryHeap::new()),
            watch: Condvar::new(),
            live: Mutex::new(HashMap::default()),
            next_id: AtomicU64::new(1),
        });
        for _ in 0..inner.options.min_workers {
            let mut q = lock(&inner.queues);
            Inner::spawn_worker(&inner, &mut q)?;
        }
        let weak = Arc::downgrade(&inner);
        let builder = thread::Builder::new().name(format!("{}-watchdog", inner.options.name));
        threads::spawn(builder, move || watchdog(weak))
            .map_err(|e| Error::io("starting the dispatcher watchdog thread", e))?;
        Ok(Self { inner })
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Runs `task`: its job on a worker, or right here on the calling thread when the task
    /// allows it ([`Task::run_here_if_idle`]), there is no timeout, its key is idle and fewer
    /// than `inline_limit` jobs run this way already — which saves two thread switches per
    /// event. Everything a handler can see — serialization, [`current_originator`],
    /// [`reset_timeout`], panics caught — is the same on either thread. The completion
    /// receives the job's [`Outcome`] exactly once: where the job ran, or (after a timeout)
    /// on the watchdog thread, or here with [`Outcome::Cancelled`] after
    /// [`shutdown`](Self::shutdown).
    pub fn dispatch<T, J, C>(&self, task: Task<J, C>)
    where
        T: Send + 'static,
        J: FnOnce() -> T + Send + 'static,
        C: FnOnce(Outcome<T>) + Send + 'static,
    {
        let inline = task.may_run_here && self.may_inline();
        self.enqueue(
            task.key,
            task.hold,
            task.originator,
            task.job,
            task.complete,
            inline,
        );
    }

    /// [`dispatch`](Self::dispatch)es `task` and waits for its outcome.
    pub fn call<T, J>(&self, task: Task<J>) -> Outcome<T>
    where
        T: Send + 'static,
        J: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.dispatch(task.then(move |o| {
            let _ = tx.send(o);
        }));
        rx.recv().unwrap_or(Outcome::Cancelled)
    }

    fn may_inline(&self) -> bool {
        self.inner.options.inline_limit > 0 && self.inner.options.timeout == Timeout::NONE
    }

    fn enqueue<T, J, C>(
        &self,
        key: Option<SerialKey>,
        hold: Hold,
        originator: Option<Originator>,
        job: J,
        complete: C,
        inline: bool,
    ) where
        T: Send + 'static,
        J: FnOnce() -> T + Send + 'static,
        C: FnOnce(Outcome<T>) + Send + 'static,
    {
        let (key, hold) = if self.inner.options.serialize_events {
            (Some(GLOBAL_KEY), Hold::Exclusive)
        } else {
            (key, hold)
        };
        let slot = Arc::new(Completion::new(complete));
        let cancel_slot = Arc::clone(&slot);
        let state = Arc::new(JobState {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            deadline: Mutex::new(None),
            finished: AtomicBool::new(false),
            started: AtomicBool::new(false),
            inline: AtomicBool::new(false),
            key,
            hold,
            key_released: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            originator,
            watched: AtomicBool::new(false),
            expire: Mutex::new(Some(Arc::clone(&slot) as Arc<dyn Expire>)),
        });
        let hooks = Arc::clone(&self.inner.hooks);
        let run = Box::new(move |handler_returned: &dyn Fn()| {
            let outcome = match catch_unwind(AssertUnwindSafe(job)) {
                Ok(v) => Outcome::Done(v),
                Err(payload) => {
                    let message = panic_message(payload.as_ref());
                    let guarded = catch_unwind(AssertUnwindSafe(|| {
                        hooks.on_error(
                            code::ERROR_INTERNAL_ERROR,
                            &format!("event handler panicked: {message}"),
                        )
                    }));
                    if guarded.is_err() {
                        tracing::error!("on_error panicked while reporting: {message}");
                    }
                    Outcome::Panicked(message)
                }
            };
            handler_returned();
            slot.finish(outcome);
        });
        let job = Job { state, run };
        let inner = &self.inner;
        let mut q = lock(&inner.queues);
        if q.shutting_down {
            drop(q);
            cancel_slot.finish(Outcome::Cancelled);
            return;
        }
        q.outstanding += 1;
        inner.arm(&job.state);
        let here = inline && q.inline < inner.options.inline_limit;
        if let Some(k) = key {
            let jobs = q.keys.entry(k).or_default();
            if !jobs.waiting.is_empty() || !jobs.admits(&job.state.hold) {
                jobs.waiting.push_back(job);
                return;
            }
            jobs.start(&job.state);
        }
        if here {
            q.inline += 1;
            drop(q);
            inner.run_here(job);
        } else {
            inner.make_ready(&mut q, job);
        }
    }

    /// Jobs submitted and not yet completed.
    pub fn outstanding(&self) -> usize {
        lock(&self.inner.queues).outstanding
    }

    /// Worker threads alive now.
    pub fn worker_count(&self) -> usize {
        lock(&self.inner.queues).workers
    }

    /// Blocks until every submitted job has completed (returned or expired).
    pub fn wait_idle(&self) {
        let mut q = lock(&self.inner.queues);
        q.drain_waiters += 1;
        while q.outstanding > 0 {
            q = wait(&self.inner.drained, q);
        }
        q.drain_waiters -= 1;
    }

    /// Refuses new jobs (they complete with [`Outcome::Cancelled`]), waits for every queued
    /// and running job to complete and for the workers to exit (their termination hooks have
    /// fired on return). A handler stuck past its timeout has already been completed and does
    /// not hold this up (its thread exits when the handler returns); with no timeout this
    /// waits for it.
    pub fn shutdown(&self) {
        lock(&self.inner.queues).shutting_down = true;
        self.inner.work.notify_all();
        self.wait_idle();
        let mut q = lock(&self.inner.queues);
        q.drain_waiters += 1;
        while q.workers > q.stuck {
            self.inner.work.notify_all();
            q = self
                .inner
                .drained
                .wait_timeout(q, Duration::from_millis(100))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        q.drain_waiters -= 1;
        drop(q);
        self.inner.watch.notify_all();
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    fn make_ready(self: &Arc<Self>, q: &mut Queues, job: Job) {
        q.ready.push_back(job);
        if q.ready.len() > q.idle && q.workers < self.options.max_workers {
            if let Err(e) = Inner::spawn_worker(self, q) {
                tracing::warn!("cannot add a worker thread: {e}");
            }
        }
        // Workers count themselves idle under this lock before they wait, so none is missed;
        // a busy pool is spared a wake-up call per job.
        if q.idle > 0 {
            self.work.notify_one();
        }
    }

    fn spawn_worker(inner: &Arc<Inner>, q: &mut Queues) -> Result<()> {
        let mut builder = thread::Builder::new().name(inner.options.name.clone());
        if let Some(size) = inner.options.stack_size {
            builder = builder.stack_size(size);
        }
        let me = Arc::clone(inner);
        threads::spawn(builder, move || worker(me))
            .map_err(|e| Error::io("starting a worker thread", e))?;
        q.workers += 1;
        Ok(())
    }

    /// Runs a job on the calling thread (see [`Task::run_here_if_idle`]).
    fn run_here(self: &Arc<Self>, job: Job) {
        job.state.inline.store(true, Ordering::Release);
        self.run_job(job);
        lock(&self.queues).inline -= 1;
    }

    /// Runs a job with the handler's thread-local state set. Its key goes on as soon as the
    /// handler returns, before the completion runs: a caller answered by the completion
    /// often sends the file's next request at once (`OPEN` then `RELEASE`, `LOOKUP` then
    /// `CREATE`), and that request should find the key idle rather than wait for a worker.
    fn run_job(self: &Arc<Self>, job: Job) {
        job.state.started.store(true, Ordering::Release);
        let previous = CURRENT.with(|c| {
            c.borrow_mut()
                .replace((Arc::clone(self), Arc::clone(&job.state)))
        });
        let state = &job.state;
        (job.run)(&|| {
            // Under the expire lock, so the watchdog either expired the job (and counted a
            // worker as stuck) or never will.
            let expired = {
                let mut expire = lock(&state.expire);
                state.finished.store(true, Ordering::Release);
                expire.take().is_none()
            };
            if expired && !state.inline.load(Ordering::Acquire) {
                let mut q = lock(&self.queues);
                q.stuck = q.stuck.saturating_sub(1);
            }
            self.release_key(state);
        });
        CURRENT.with(|c| *c.borrow_mut() = previous);
        self.retire(state);
    }

    /// Arms the watchdog for a job submitted now: the caller never waits longer than the
    /// timeout, whether the job is running or still queued behind its key.
    fn arm(&self, state: &Arc<JobState>) {
        if let Some(d) = self.options.timeout.duration() {
            self.watch_job(state);
            let at = Instant::now() + d;
            *lock(&state.deadline) = Some(at);
            lock(&self.deadlines).push(Reverse((at, state.id)));
            self.watch.notify_one();
        }
    }

    /// Lets the watchdog find `state` by its id.
    fn watch_job(&self, state: &Arc<JobState>) {
        if !state.watched.swap(true, Ordering::AcqRel) {
            lock(&self.live).insert(state.id, Arc::clone(state));
        }
    }

    /// The job's handler returned or it expired: let the next job of its key run.
    fn release_key(self: &Arc<Self>, state: &JobState) {
        if state.key_released.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(k) = state.key else { return };
        let mut q = lock(&self.queues);
        let mut start = Vec::new();
        if let Some(jobs) = q.keys.get_mut(&k) {
            jobs.finish(state.id);
            // A job that expired while it waited never runs.
            jobs.waiting.retain(|j| j.state.id != state.id);
            // The waiting jobs start in order, as long as each fits beside those running.
            while let Some(next) = jobs.waiting.front() {
                if !jobs.admits(&next.state.hold) {
                    break;
                }
                let Some(job) = jobs.waiting.pop_front() else {
                    break;
                };
                jobs.start(&job.state);
                start.push(job);
            }
            if jobs.idle() {
                q.keys.remove(&k);
            }
        }
        for job in start {
            self.make_ready(&mut q, job);
        }
    }

    /// The job is complete (answered, or expired): it no longer counts as outstanding.
    fn retire(&self, state: &JobState) {
        if state.retired.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut q = lock(&self.queues);
        q.outstanding = q.outstanding.saturating_sub(1);
        if q.outstanding == 0 && q.drain_waiters > 0 {
            self.drained.notify_all();
        }
        drop(q);
        if state.watched.load(Ordering::Acquire) {
            lock(&self.live).remove(&state.id);
        }
    }
}

fn worker(inner: Arc<Inner>) {
    let hooks = Arc::clone(&inner.hooks);
    if catch_unwind(AssertUnwindSafe(|| hooks.on_worker_thread_creation())).is_err() {
        tracing::error!("on_worker_thread_creation panicked");
    }
    loop {
        let job = {
            let mut q = lock(&inner.queues);
            loop {
                if let Some(job) = q.ready.pop_front() {
                    break Some(job);
                }
                if q.shutting_down {
                    break None;
                }
                q.idle += 1;
                let (guard, timeout) = inner
                    .work
                    .wait_timeout(q, IDLE_EXIT)
                    .unwrap_or_else(|p| p.into_inner());
                q = guard;
                q.idle -= 1;
                if timeout.timed_out()
                    && q.ready.is_empty()
                    && q.workers > inner.options.min_workers
                {
                    break None;
                }
            }
        };
        let Some(job) = job else { break };
        if lock(&job.state.expire).is_none() {
            // Expired while queued: its request was already answered, so the handler must
            // not run (it could apply a change the caller was told failed).
            continue;
        }
        inner.run_job(job);
    }
    if catch_unwind(AssertUnwindSafe(|| hooks.on_worker_thread_termination())).is_err() {
        tracing::error!("on_worker_thread_termination panicked");
    }
    lock(&inner.queues).workers -= 1;
    inner.drained.notify_all();
}

fn watchdog(weak: std::sync::Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let due = {
            let mut heap = lock(&inner.deadlines);
            let now = Instant::now();
            match heap.peek() {
                Some(Reverse((at, _))) if *at <= now => heap.pop().map(|Reverse((_, id))| id),
                next => {
                    let wait = next
                        .map(|Reverse((at, _))| at.saturating_duration_since(now))
                        .unwrap_or(Duration::from_millis(500))
                        .min(Duration::from_millis(500));
                    let _ = inner.watch.wait_timeout(heap, wait);
                    None
                }
            }
        };
        let Some(id) = due else {
            if lock(&inner.queues).shutting_down && lock(&inner.live).is_empty() {
                return;
            }
            continue;
        };
        let Some(state) = lock(&inner.live).get(&id).cloned() else {
            continue;
        };
        if state.finished.load(Ordering::Acquire) {
            continue;
        }
        let deadline = *lock(&state.deadline);
        match deadline {
            Some(at) if at <= Instant::now() => {
                let expire = {
                    let mut slot = lock(&state.expire);
                    let expire = slot.take();
                    if expire.is_some()
                        && state.started.load(Ordering::Acquire)
                        && !state.inline.load(Ordering::Acquire)
                    {
                        lock(&inner.queues).stuck += 1;
                    }
                    expire
                };
                if let Some(expire) = expire {
                    tracing::warn!("event {id} timed out; completing its request");
                    expire.expire();
                    inner.release_key(&state);
                    inner.retire(&state);
                }
            }
            // Extended by reset_timeout (a newer heap entry exists) or disabled.
            _ => {}
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

/// Restarts the current event's deadline at `ms` from now (0: no deadline any more).
///
/// Only inside an event handler; elsewhere `ERROR_NO_CALLBACK_ACTIVE` (614). A value other
/// than 0 or ≥ 3000 is `ERROR_IMPLEMENTATION_LIMIT` (1292). After the deadline already
/// passed, the request has been completed and this is `ERROR_TIMEOUT`.
pub fn reset_timeout(ms: u32) -> Result<()> {
    let timeout = Timeout::from_millis(ms)?;
    CURRENT.with(|c| {
        let current = c.borrow();
        let Some((inner, state)) = current.as_ref() else {
            return Err(Error::no_callback_active("reset_timeout"));
        };
        if lock(&state.expire).is_none() {
            return Err(Error::from_code(
                code::ERROR_TIMEOUT,
                "reset_timeout: the event already timed out and its request was completed",
            ));
        }
        let mut deadline = lock(&state.deadline);
        match timeout.duration() {
            None => *deadline = None,
            Some(d) => {
                inner.watch_job(state);
                let at = Instant::now() + d;
                *deadline = Some(at);
                lock(&inner.deadlines).push(Reverse((at, state.id)));
                inner.watch.notify_one();
            }
        }
        Ok(())
    })
}

/// The originator of the request whose handler is running on this thread; outside a handler
/// (or for a request without one) `ERROR_NO_CALLBACK_ACTIVE` (614), naming `method`.
pub fn current_originator(method: &str) -> Result<Originator> {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|(_, s)| s.originator)
            .ok_or_else(|| Error::no_callback_active(method))
    })
}

/// Whether this thread is running an event handler now.
pub fn in_event() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    /// A task for `job` under `key` for `who`, when given.
    fn task<J>(key: Option<SerialKey>, who: Option<Originator>, job: J) -> Task<J> {
        let mut task = Task::new(job);
        if let Some(key) = key {
            task = task.key(key);
        }
        if let Some(who) = who {
            task = task.originator(who);
        }
        task
    }

    fn options(min: usize, max: usize, timeout_ms: u32) -> Options {
        Options {
            min_workers: min,
            max_workers: max,
            timeout: Timeout::from_millis(timeout_ms).unwrap(),
            ..Options::default()
        }
    }

    #[derive(Default)]
    struct Counting {
        created: AtomicUsize,
        terminated: AtomicUsize,
        errors: Mutex<Vec<(u32, String)>>,
        creation_threads: Mutex<Vec<thread::ThreadId>>,
    }

    impl Hooks for Counting {
        fn on_worker_thread_creation(&self) {
            self.created.fetch_add(1, Ordering::SeqCst);
            lock(&self.creation_threads).push(thread::current().id());
        }
        fn on_worker_thread_termination(&self) {
            self.terminated.fetch_add(1, Ordering::SeqCst);
        }
        fn on_error(&self, code: u32, description: &str) {
            lock(&self.errors).push((code, description.to_string()));
        }
    }

    #[test]
    fn timeouts_below_three_seconds_are_refused() {
        assert!(Timeout::from_millis(0).is_ok());
        assert!(Timeout::from_millis(3000).is_ok());
        let e = Timeout::from_millis(2999).unwrap_err();
        assert_eq!(e.code(), code::ERROR_IMPLEMENTATION_LIMIT);
        assert!(e.message().contains("2999"));
    }

    #[test]
    fn bad_worker_counts_are_refused() {
        let e = Dispatcher::new(options(8, 2, 0), Arc::new(NoHooks))
            .err()
            .unwrap();
        assert!(e.message().contains("MinWorkerThreadCount"));
        assert!(Dispatcher::new(options(0, 0, 0), Arc::new(NoHooks)).is_err());
    }

    #[test]
    fn handlers_run_on_workers_and_hooks_fire_on_them() {
        let hooks = Arc::new(Counting::default());
        let d = Dispatcher::new(options(2, 4, 0), hooks.clone()).unwrap();
        let me = thread::current().id();
        let ran_on = match d.call(Task::new(|| thread::current().id())) {
            Outcome::Done(id) => id,
            other => panic!("{other:?}"),
        };
        assert_ne!(ran_on, me);
        drop(d);
        assert!(hooks.created.load(Ordering::SeqCst) >= 2);
        assert_eq!(
            hooks.created.load(Ordering::SeqCst),
            hooks.terminated.load(Ordering::SeqCst)
        );
        assert!(!lock(&hooks.creation_threads).contains(&me));
    }

    #[test]
    fn same_key_runs_in_order_one_at_a_time() {
        let d = Dispatcher::new(options(4, 8, 0), Arc::new(NoHooks)).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let overlap = Arc::new(AtomicBool::new(false));
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let (running, overlap, order) = (running.clone(), overlap.clone(), order.clone());
            d.dispatch(
                Task::new(move || {
                    if running.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlap.store(true, Ordering::SeqCst);
                    }
                    thread::sleep(Duration::from_millis(1));
                    lock(&order).push(i);
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .key(SerialKey(7))
                .then(|_| {}),
            );
        }
        d.wait_idle();
        assert!(!overlap.load(Ordering::SeqCst));
        assert_eq!(*lock(&order), (0..50).collect::<Vec<_>>());
    }

    /// Two jobs that each wait for the other can only both finish if they run in parallel.
    fn rendezvous(d: &Dispatcher, a: Option<SerialKey>, b: Option<SerialKey>) -> bool {
        let (tx1, rx1) = mpsc::channel::<()>();
        let (tx2, rx2) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let done2 = done_tx.clone();
        d.dispatch(
            task(a, None, move || {
                let _ = tx1.send(());
                rx2.recv_timeout(Duration::from_secs(2)).is_ok()
            })
            .then(move |o| {
                let _ = done_tx.send(o == Outcome::Done(true));
            }),
        );
        d.dispatch(
            task(b, None, move || {
                let _ = tx2.send(());
                rx1.recv_timeout(Duration::from_secs(2)).is_ok()
            })
            .then(move |o| {
                let _ = done2.send(o == Outcome::Done(true));
            }),
        );
        let r1 = done_rx.recv().unwrap();
        let r2 = done_rx.recv().unwrap();
        r1 && r2
    }

    #[test]
    fn different_keys_run_in_parallel() {
        let d = Dispatcher::new(options(2, 4, 0), Arc::new(NoHooks)).unwrap();
        assert!(rendezvous(&d, Some(SerialKey(1)), Some(SerialKey(2))));
        assert!(rendezvous(&d, None, None));
    }

    #[test]
    fn serialize_events_runs_one_job_at_a_time() {
        let mut o = options(2, 4, 0);
        o.serialize_events = true;
        let d = Dispatcher::new(o, Arc::new(NoHooks)).unwrap();
        assert!(!rendezvous(&d, Some(SerialKey(1)), Some(SerialKey(2))));
    }

    #[test]
    fn pool_grows_when_workers_are_busy() {
        let d = Dispatcher::new(options(1, 3, 0), Arc::new(NoHooks)).unwrap();
        assert!(rendezvous(&d, None, None));
        assert!(d.worker_count() >= 2);
    }

    #[test]
    fn blocked_handler_completes_at_deadline_and_pool_serves_others() {
        let d = Dispatcher::new(options(1, 4, 3000), Arc::new(NoHooks)).unwrap();
        let (_hold, blocked) = mpsc::channel::<()>();
        let (tx, rx) = mpsc::channel();
        let started = Instant::now();
        d.dispatch(
            Task::new(move || blocked.recv().is_ok())
                .key(SerialKey(1))
                .then(move |o| {
                    let _ = tx.send((o, started.elapsed()));
                }),
        );
        // Another file keeps working while the first handler is stuck.
        assert_eq!(d.call(Task::new(|| 5).key(SerialKey(2))), Outcome::Done(5));
        let (outcome, elapsed) = rx.recv().unwrap();
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(elapsed >= Duration::from_millis(3000), "{elapsed:?}");
        // Once the stuck handler has expired, the file is served again.
        assert_eq!(d.call(Task::new(|| 6).key(SerialKey(1))), Outcome::Done(6));
    }

    #[test]
    fn event_queued_behind_a_busy_file_expires_without_running() {
        let d = Dispatcher::new(options(1, 4, 3000), Arc::new(NoHooks)).unwrap();
        let (release, blocked) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        d.dispatch(
            Task::new(move || {
                // No deadline for this one: it holds the file until released.
                reset_timeout(0).unwrap();
                let _ = started_tx.send(());
                blocked.recv().is_ok()
            })
            .key(SerialKey(1))
            .then(move |o| {
                let _ = tx.send(o);
            }),
        );
        started_rx.recv().unwrap();
        let queued_ran = Arc::new(AtomicBool::new(false));
        let flag = queued_ran.clone();
        let queued =
            d.call(Task::new(move || flag.store(true, Ordering::SeqCst)).key(SerialKey(1)));
        assert_eq!(queued, Outcome::TimedOut);
        release.send(()).unwrap();
        assert_eq!(rx.recv().unwrap(), Outcome::Done(true));
        assert!(!queued_ran.load(Ordering::SeqCst));
        assert_eq!(d.call(Task::new(|| 6).key(SerialKey(1))), Outcome::Done(6));
    }

    #[test]
    fn reset_timeout_extends_the_deadline() {
        let d = Dispatcher::new(options(1, 2, 3000), Arc::new(NoHooks)).unwrap();
        let outcome = d.call(Task::new(|| {
            thread::sleep(Duration::from_millis(2000));
            reset_timeout(3000).unwrap();
            thread::sleep(Duration::from_millis(2000));
            "finished"
        }));
        assert_eq!(outcome, Outcome::Done("finished"));
    }

    #[test]
    fn reset_timeout_outside_a_handler_is_614() {
        assert_eq!(
            reset_timeout(5000).unwrap_err().code(),
            code::ERROR_NO_CALLBACK_ACTIVE
        );
        let d = Dispatcher::new(options(1, 2, 0), Arc::new(NoHooks)).unwrap();
        let inside = d.call(Task::new(|| reset_timeout(100).map_err(|e| e.code())));
        assert_eq!(inside, Outcome::Done(Err(code::ERROR_IMPLEMENTATION_LIMIT)));
    }

    #[test]
    fn panicking_handler_fires_on_error_and_pool_survives() {
        let hooks = Arc::new(Counting::default());
        let d = Dispatcher::new(options(1, 1, 0), hooks.clone()).unwrap();
        let o: Outcome<()> = d.call(Task::new(|| panic!("boom")));
        assert_eq!(o, Outcome::Panicked("boom".into()));
        let errors = lock(&hooks.errors).clone();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, code::ERROR_INTERNAL_ERROR);
        assert!(errors[0].1.contains("boom"));
        assert_eq!(d.call(Task::new(|| 1)), Outcome::Done(1));
    }

    #[test]
    fn originator_is_visible_only_inside_handlers() {
        let d = Dispatcher::new(options(1, 1, 0), Arc::new(NoHooks)).unwrap();
        let who = Originator::of_process(42, 1000, 100);
        let seen =
            d.call(Task::new(|| current_originator("get_originator_process_id")).originator(who));
        assert_eq!(seen, Outcome::Done(Ok(who)));
        assert!(!in_event());
        let e = current_originator("get_originator_process_id").unwrap_err();
        assert_eq!(e.code(), code::ERROR_NO_CALLBACK_ACTIVE);
        assert!(e.message().contains("get_originator_process_id"));
    }

    fn inline_options(limit: usize, timeout_ms: u32) -> Options {
        Options {
            inline_limit: limit,
            ..options(1, 4, timeout_ms)
        }
    }

    /// Dispatches a job that may run here and returns (the thread the job ran on, its outcome).
    fn dispatch_here(
        d: &Dispatcher,
        key: Option<SerialKey>,
        who: Option<Originator>,
    ) -> (thread::ThreadId, Outcome<Result<Originator>>) {
        let (tx, rx) = mpsc::channel();
        d.dispatch(
            task(key, who, || {
                (thread::current().id(), current_originator("test"))
            })
            .run_here_if_idle(true)
            .then(move |o| {
                let _ = tx.send(o);
            }),
        );
        match rx.recv().unwrap() {
            Outcome::Done((id, r)) => (id, Outcome::Done(r)),
            Outcome::TimedOut => (thread::current().id(), Outcome::TimedOut),
            Outcome::Panicked(m) => (thread::current().id(), Outcome::Panicked(m)),
            Outcome::Cancelled => (thread::current().id(), Outcome::Cancelled),
        }
    }

    #[test]
    fn a_job_runs_on_the_caller_when_the_file_is_idle() {
        let d = Dispatcher::new(inline_options(2, 0), Arc::new(NoHooks)).unwrap();
        let who = Originator::of_process(7, 8, 9);
        let (ran_on, outcome) = dispatch_here(&d, Some(SerialKey(1)), Some(who));
        assert_eq!(ran_on, thread::current().id());
        assert_eq!(outcome, Outcome::Done(Ok(who)));
        assert!(!in_event());
    }

    #[test]
    fn a_job_that_may_run_here_queues_behind_a_busy_file_in_order() {
        let d = Dispatcher::new(inline_options(2, 0), Arc::new(NoHooks)).unwrap();
        let (release, blocked) = mpsc::channel::<()>();
        let order = Arc::new(Mutex::new(Vec::new()));
        let o1 = order.clone();
        d.dispatch(
            Task::new(move || {
                let _ = blocked.recv();
                lock(&o1).push(1);
            })
            .key(SerialKey(1))
            .then(|_| {}),
        );
        let o2 = order.clone();
        let me = thread::current().id();
        let (tx, rx) = mpsc::channel();
        d.dispatch(
            Task::new(move || {
                lock(&o2).push(2);
                thread::current().id()
            })
            .key(SerialKey(1))
            .run_here_if_idle(true)
            .then(move |o| {
                let _ = tx.send(o);
            }),
        );
        release.send(()).unwrap();
        match rx.recv().unwrap() {
            Outcome::Done(id) => assert_ne!(id, me),
            other => panic!("{other:?}"),
        }
        assert_eq!(*lock(&order), vec![1, 2]);
    }

    #[test]
    fn running_here_respects_the_inline_limit_and_timeouts() {
        let d = Arc::new(Dispatcher::new(inline_options(1, 0), Arc::new(NoHooks)).unwrap());
        let inner = d.clone();
        let outer_thread = thread::current().id();
        let (ran_on, _) = {
            let (tx, rx) = mpsc::channel();
            d.dispatch(
                Task::new(move || dispatch_here(&inner, Some(SerialKey(2)), None))
                    .key(SerialKey(1))
                    .run_here_if_idle(true)
                    .then(move |o| {
                        let _ = tx.send(o);
                    }),
            );
            match rx.recv().unwrap() {
                Outcome::Done(r) => r,
                other => panic!("{other:?}"),
            }
        };
        // The outer job took the only inline slot, so the nested one went to a worker.
        assert_ne!(ran_on, outer_thread);
        let timed = Dispatcher::new(inline_options(2, 3000), Arc::new(NoHooks)).unwrap();
        let (ran_on, _) = dispatch_here(&timed, Some(SerialKey(1)), None);
        assert_ne!(ran_on, thread::current().id());
    }

    #[test]
    fn a_caller_that_must_stay_free_gets_a_worker() {
        let d = Dispatcher::new(inline_options(2, 0), Arc::new(NoHooks)).unwrap();
        let (tx, rx) = mpsc::channel();
        d.dispatch(
            Task::new(|| thread::current().id())
                .key(SerialKey(1))
                .run_here_if_idle(false)
                .then(move |o| {
                    let _ = tx.send(o);
                }),
        );
        match rx.recv().unwrap() {
            Outcome::Done(id) => assert_ne!(id, thread::current().id()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_files_key_is_free_once_its_handler_returned_even_before_its_answer() {
        // FUSE answers a request in the completion; the caller's next request for the same
        // file can arrive before the completion ends and must run inline, not on a worker.
        let d = Arc::new(Dispatcher::new(inline_options(2, 0), Arc::new(NoHooks)).unwrap());
        let inner = d.clone();
        let (tx, rx) = mpsc::channel();
        d.dispatch(
            Task::new(|| ())
                .key(SerialKey(1))
                .run_here_if_idle(true)
                .then(move |_| {
                    inner.dispatch(
                        Task::new(|| thread::current().id())
                            .key(SerialKey(1))
                            .run_here_if_idle(true)
                            .then(move |o| {
                                let _ = tx.send(o);
                            }),
                    );
                }),
        );
        assert_eq!(rx.recv().unwrap(), Outcome::Done(thread::current().id()));
        d.wait_idle();
        assert_eq!(d.outstanding(), 0);
    }

    /// Runs a job under `hold` of key 1 that records `name` in `log` when it starts, then
    /// waits for the returned gate to open (at most 10 s) and records `name` again when it
    /// ends.
    fn gated(
        d: &Dispatcher,
        hold: Hold,
        name: &'static str,
        log: &Arc<Mutex<Vec<String>>>,
    ) -> mpsc::Sender<()> {
        let (open, gate) = mpsc::channel();
        let log = log.clone();
        let job = move || {
            lock(&log).push(format!("{name} start"));
            let _ = gate.recv_timeout(Duration::from_secs(10));
            lock(&log).push(format!("{name} end"));
        };
        match hold {
            Hold::Exclusive => d.dispatch(Task::new(job).key(SerialKey(1)).then(|_| {})),
            Hold::Shared(r) => d.dispatch(
                Task::new(job)
                    .key(SerialKey(1))
                    .hold(Hold::Shared(r))
                    .run_here_if_idle(true)
                    .then(|_| {}),
            ),
        }
        open
    }

    fn wait_logged(log: &Arc<Mutex<Vec<String>>>, entry: &str) {
        let start = Instant::now();
        while !lock(log).iter().any(|e| e == entry) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "never logged {entry}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn shared_jobs_of_a_key_run_side_by_side_unless_their_ranges_overlap() {
        let d = Dispatcher::new(options(4, 8, 0), Arc::new(NoHooks)).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let open_a = gated(&d, Hold::Shared(0..4096), "a", &log);
        let open_b = gated(&d, Hold::Shared(4096..8192), "b", &log);
        let open_c = gated(&d, Hold::Shared(4000..4100), "c", &log);
        wait_logged(&log, "a start");
        wait_logged(&log, "b start");
        // c overlaps both: it waits until both ended.
        open_a.send(()).unwrap();
        wait_logged(&log, "a end");
        assert!(
            !lock(&log).iter().any(|e| e == "c start"),
            "{:?}",
            lock(&log)
        );
        open_b.send(()).unwrap();
        open_c.send(()).unwrap();
        d.wait_idle();
        let log = lock(&log).clone();
        let at = |e: &str| log.iter().position(|x| x == e).unwrap();
        assert!(
            at("b start") < at("a end"),
            "a and b ran side by side: {log:?}"
        );
        assert!(at("c start") > at("b end"), "{log:?}");
    }

    #[test]
    fn a_shared_job_never_overtakes_an_earlier_exclusive_one() {
        let d = Dispatcher::new(options(4, 8, 0), Arc::new(NoHooks)).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let open_read = gated(&d, Hold::Shared(0..10), "read", &log);
        wait_logged(&log, "read start");
        let open_write = gated(&d, Hold::Exclusive, "write", &log);
        // Compatible with the running read, but submitted after the write.
        let open_later = gated(&d, Hold::Shared(20..30), "later", &log);
        thread::sleep(Duration::from_millis(50));
        assert_eq!(*lock(&log), vec!["read start"]);
        open_read.send(()).unwrap();
        wait_logged(&log, "write start");
        open_write.send(()).unwrap();
        open_later.send(()).unwrap();
        d.wait_idle();
        assert_eq!(
            *lock(&log),
            vec![
                "read start",
                "read end",
                "write start",
                "write end",
                "later start",
                "later end"
            ]
        );
    }

    #[test]
    fn jobs_after_shutdown_are_cancelled() {
        let d = Dispatcher::new(options(1, 1, 0), Arc::new(NoHooks)).unwrap();
        d.shutdown();
        assert_eq!(d.call(Task::new(|| 1)), Outcome::Cancelled);
    }
}
