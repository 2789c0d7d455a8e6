//! [`ProcessFilter`]: the reference's process filter class on Linux.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use fsgate_core::dispatch::{self, Dispatcher, Hooks, Options, Timeout};
use fsgate_core::listener::Listener;
use fsgate_core::originator::Credentials;
use fsgate_core::settings::{parse_bool, Request, Value};
use fsgate_core::shutdown::{self, Executor};
use fsgate_core::sync::lock;
use fsgate_core::{code, Error, Result, Settings};
use fsgate_registry::Installation;
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use crate::events::{EventsToFire, ProcessEvents};
use crate::exec_control::ExecControl;
use crate::exec_records::ExecRecords;
use crate::handle_ops;
use crate::proc_connector::ProcConnector;
use crate::rules::ProcessId;
use crate::settings::{names::LOGGING_ENABLED, ProcessSettings, FIXED_WHILE_ACTIVE};
use crate::shared::{Shared, State};
use crate::snapshot::{self, RunningProcess};
use crate::table::ProcessTable;
use crate::tracker;

/// The connector socket's receive queue: room for about 30,000 records (a record costs
/// about 1 KiB of kernel accounting), enough for a storm of several thousand processes
/// while the reader is descheduled.
const RECV_BUFFER: usize = 32 << 20;

/// The default altitude the reference documents.
const DEFAULT_ALTITUDE: &str = "400055";

/// What runs while the filter is active.
struct Running {
    reader: Option<Listener>,
    exec_control: Option<ExecControl>,
    /// The tracepoint programs, while `EventsToFire` asks for handle operations.
    handle_ops: Option<handle_ops::HandleTracer>,
    /// The exec record program, when `EventsToFire` asked for creations at the start and the
    /// kernel loads it (the connector reader holds its records).
    exec_tracer: Option<fsgate_bpf::Tracer>,
    dispatcher: Arc<Dispatcher>,
}

/// The initialized product.
struct Product {
    installation: Installation,
    guid: String,
}

/// Monitors process and thread creation and termination, and can refuse program images
/// before they run. See the [crate](crate) docs for how each part maps to Linux.
pub struct ProcessFilter {
    shared: Arc<Shared>,
    settings: Settings,
    product: Mutex<Option<Product>>,
    running: Mutex<Option<Running>>,
    active: AtomicBool,
    altitude: Mutex<String>,
    strict_altitude: AtomicBool,
    serialize_events: AtomicBool,
    tag: AtomicI64,
    snapshot: Mutex<Vec<RunningProcess>>,
    exec_paths: Mutex<Vec<String>>,
}

fn outside_events(method: &str) -> Result<()> {
    if dispatch::in_event() {
        return Err(Error::from_code(
            code::ERROR_INVALID_FUNCTION,
            format!("{method} cannot be called within events"),
        ));
    }
    Ok(())
}

impl ProcessFilter {
    /// A filter whose events go to `events`. Nothing is attached until
    /// [`start_filter`](Self::start_filter).
    pub fn new(events: Arc<dyn ProcessEvents>) -> Self {
        Self {
            shared: Arc::new(Shared::new(events)),
            settings: ProcessSettings::default().settings(),
            product: Mutex::new(None),
            running: Mutex::new(None),
            active: AtomicBool::new(false),
            altitude: Mutex::new(DEFAULT_ALTITUDE.to_string()),
            strict_altitude: AtomicBool::new(false),
            serialize_events: AtomicBool::new(false),
            tag: AtomicI64::new(0),
            snapshot: Mutex::new(Vec::new()),
            exec_paths: Mutex::new(Vec::new()),
        }
    }

    // ----- properties -----

    /// `active`: whether [`start_filter`](Self::start_filter) attached the filter.
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// `altitude`. Kept and reported only: Linux has no filter stack for process events.
    /// Every listener receives every connector record, and fanotify answers the permission
    /// groups of one class in the order they were created, a denial by any of them winning;
    /// so between fsgate process filters on one machine the altitude orders nothing.
    pub fn altitude(&self) -> String {
        lock(&self.altitude).clone()
    }

    /// Sets `altitude` (decimal digits, at most 20).
    pub fn set_altitude(&self, value: &str) -> Result<()> {
        if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_argument(
                "altitude",
                format!("'{value}' is not a decimal altitude"),
            ));
        }
        *lock(&self.altitude) = value.to_string();
        Ok(())
    }

    /// `strict_altitude`: kept and reported; never fails a start (see [`altitude`](Self::altitude)).
    pub fn strict_altitude(&self) -> bool {
        self.strict_altitude.load(Ordering::Relaxed)
    }

    /// Sets `strict_altitude`.
    pub fn set_strict_altitude(&self, value: bool) {
        self.strict_altitude.store(value, Ordering::Relaxed);
    }

    /// `serialize_events`: fire every event on one worker thread.
    pub fn serialize_events(&self) -> bool {
        self.serialize_events.load(Ordering::Relaxed)
    }

    /// Sets `serialize_events`; `ERROR_CONNECTION_ACTIVE` (1230) while active.
    pub fn set_serialize_events(&self, value: bool) -> Result<()> {
        self.not_while_active("serialize_events")?;
        self.serialize_events.store(value, Ordering::Relaxed);
        Ok(())
    }

    /// `tag`: application data.
    pub fn tag(&self) -> i64 {
        self.tag.load(Ordering::Relaxed)
    }

    /// Sets `tag`.
    pub fn set_tag(&self, value: i64) {
        self.tag.store(value, Ordering::Relaxed);
    }

    /// `track_command_line`: fill command lines in snapshots and creation events.
    pub fn track_command_line(&self) -> bool {
        self.shared.track_command_line.load(Ordering::Relaxed)
    }

    /// Sets `track_command_line`; `ERROR_CONNECTION_ACTIVE` (1230) while active.
    pub fn set_track_command_line(&self, value: bool) -> Result<()> {
        self.not_while_active("track_command_line")?;
        self.shared
            .track_command_line
            .store(value, Ordering::Relaxed);
        Ok(())
    }

    /// `running_process_count`: entries in the current snapshot.
    pub fn running_process_count(&self) -> usize {
        lock(&self.snapshot).len()
    }

    /// `running_process_process_id`; `None` past the end.
    pub fn running_process_process_id(&self, index: usize) -> Option<u32> {
        lock(&self.snapshot).get(index).map(|p| p.process_id)
    }

    /// `running_process_process_name`; `None` past the end.
    pub fn running_process_process_name(&self, index: usize) -> Option<String> {
        lock(&self.snapshot)
            .get(index)
            .map(|p| p.process_name.clone())
    }

    /// `running_process_command_line`; `None` past the end.
    pub fn running_process_command_line(&self, index: usize) -> Option<String> {
        lock(&self.snapshot)
            .get(index)
            .map(|p| p.command_line.clone())
    }

    /// The whole snapshot.
    pub fn running_processes(&self) -> Vec<RunningProcess> {
        lock(&self.snapshot).clone()
    }

    // ----- deployment -----

    /// `initialize`: checks that fsgate is installed for `product_guid` on this machine
    /// (`ERROR_FILE_NOT_FOUND` (2) if not, `ERROR_INVALID_KERNEL_INFO_VERSION` (340) if the
    /// installed version is older than this library).
    pub fn initialize(&self, product_guid: &str) -> Result<()> {
        self.initialize_with(Installation::system(), product_guid)
    }

    /// `initialize` against an installer of the caller's choice (an installation under a
    /// temporary root, in tests).
    pub fn initialize_with(
        &self,
        installation: impl Into<Installation>,
        product_guid: &str,
    ) -> Result<()> {
        let installation = installation.into();
        installation.verify_installed(product_guid)?;
        match fsgate_registry::logging_enabled(installation.root()) {
            Ok(on) => self.set_logging_flag(on)?,
            Err(e) => tracing::warn!("LoggingEnabled stays off: {e}"),
        }
        *lock(&self.product) = Some(Product {
            installation,
            guid: product_guid.to_string(),
        });
        Ok(())
    }

    /// `install`: installs fsgate's system files from `cab_file_name` (the package);
    /// returns whether a reboot is needed. Needs this crate's `installer` feature (the
    /// package installer).
    #[cfg(feature = "installer")]
    pub fn install(
        &self,
        cab_file_name: &Path,
        product_guid: &str,
        path_to_install: &str,
        flags: u32,
    ) -> Result<bool> {
        outside_events("install")?;
        fsgate_install::Installer::system().install(
            cab_file_name,
            product_guid,
            path_to_install,
            flags,
        )
    }

    /// `uninstall`; returns whether a reboot is needed. Needs the `installer` feature.
    #[cfg(feature = "installer")]
    pub fn uninstall(
        &self,
        cab_file_name: &Path,
        product_guid: &str,
        installed_path: &str,
        flags: u32,
    ) -> Result<bool> {
        outside_events("uninstall")?;
        fsgate_install::Installer::system().uninstall(
            cab_file_name,
            product_guid,
            installed_path,
            flags,
        )
    }

    /// `get_driver_status`: NOT_PRESENT (0), STOPPED (1) or RUNNING (4).
    pub fn get_driver_status(&self, product_guid: &str) -> Result<u32> {
        outside_events("get_driver_status")?;
        Installation::system().get_driver_status(product_guid)
    }

    /// `get_driver_version`: four 16-bit parts in 64 bits; 0 when not installed.
    pub fn get_driver_version(&self, product_guid: &str) -> Result<u64> {
        outside_events("get_driver_version")?;
        Installation::system().get_driver_version(product_guid)
    }

    // ----- exec control -----

    /// Linux extension: puts the mount holding `path` under exec control, so that
    /// `on_process_creation` fires before images on that mount run and can refuse them.
    /// Takes effect at once when active. Needs `CAP_SYS_ADMIN`. Every exec on the mount
    /// waits for the filter's answer (at most the event timeout when one is set): mark only
    /// mounts whose executables the application means to control. A kernel build without
    /// fanotify permission events (`CONFIG_FANOTIFY_ACCESS_PERMISSIONS` off) refuses the
    /// mark: `ERROR_NOT_SUPPORTED` (50) from this method while active, else from
    /// [`start_filter`](Self::start_filter), which then starts nothing.
    pub fn add_controlled_exec_path(&self, path: &str) -> Result<()> {
        if !Path::new(path).exists() {
            return Err(Error::from_code(
                code::ERROR_PATH_NOT_FOUND,
                format!("invalid path: '{path}' does not exist"),
            ));
        }
        if let Some(r) = lock(&self.running).as_ref() {
            if let Some(ec) = r.exec_control.as_ref() {
                ec.mark(path)?;
            }
        }
        lock(&self.exec_paths).push(path.to_string());
        Ok(())
    }

    // ----- start / stop -----

    /// `start_filter`: attaches to the kernel (the process connector, and the exec control
    /// group when paths were given) and starts firing events. `timeout_ms` is how long a
    /// handler may hold an exec: 0 or at least 3000.
    ///
    /// Errors: `ERROR_FILE_NOT_FOUND` (2) when the installation went away, `ERROR_NOT_READY`
    /// (21) before `initialize`, `ERROR_CONNECTION_ACTIVE` (1230) when already active,
    /// `ERROR_IMPLEMENTATION_LIMIT` (1292) for a bad timeout, `ERROR_NOT_SUPPORTED` (50) for
    /// exec control on a kernel build without fanotify permission events,
    /// `ERROR_PRIVILEGE_NOT_HELD` (1314) without `CAP_SYS_ADMIN` for exec control, or (errno
    /// `EPERM`, the message naming `CAP_NET_ADMIN`) when the kernel refuses to let this
    /// process join the connector group.
    ///
    /// Whether a caller without `CAP_NET_ADMIN` may listen to the connector depends on the
    /// kernel build, not on its version alone: mainline Linux 6.6 and later accept it;
    /// earlier kernels and some later builds refuse it. Most refuse the join, and this
    /// method fails with 1314 and starts nothing. A build that accepts the join but refuses
    /// the listen request answers asynchronously: this method succeeds and `on_error`
    /// reports 1314 right after the start, naming `CAP_NET_ADMIN`; process events are then
    /// not guaranteed. With `CAP_NET_ADMIN` (root) every kernel accepts the listener.
    pub fn start_filter(&self, timeout_ms: u32) -> Result<()> {
        outside_events("start_filter")?;
        {
            let product = lock(&self.product);
            let Some(p) = product.as_ref() else {
                return Err(Error::not_ready(
                    "start_filter: call initialize(product_guid) first",
                ));
            };
            p.installation.verify_installed(&p.guid)?;
        }
        let mut running = lock(&self.running);
        if running.is_some() {
            return Err(Error::from_code(
                code::ERROR_CONNECTION_ACTIVE,
                "start_filter: the filter is already active",
            ));
        }
        let timeout = Timeout::from_millis(timeout_ms)?;
        let options = self.dispatch_options(timeout)?;
        let connector = ProcConnector::open(RECV_BUFFER)?;
        let exec_paths = lock(&self.exec_paths).clone();
        let mut exec_control = if exec_paths.is_empty() {
            None
        } else {
            Some(ExecControl::new(&exec_paths)?)
        };
        let dispatcher = Arc::new(Dispatcher::new(
            options,
            Arc::clone(&self.shared.events) as Arc<dyn Hooks>,
        )?);
        let events = EventsToFire(self.shared.events_to_fire.load(Ordering::Relaxed));
        // Exact exec records where the kernel loads the program; else names from /proc.
        let (exec_tracer, records) = if events.contains(EventsToFire::PROCESS_CREATION) {
            match ExecRecords::start() {
                Ok((tracer, records)) => (Some(tracer), Some(records)),
                Err(e) => {
                    tracing::info!("process creations named from /proc: {e}");
                    (None, None)
                }
            }
        } else {
            (None, None)
        };
        *self.shared.lock() = State {
            table: ProcessTable::load(),
            ..State::default()
        };
        let reader = tracker::spawn(
            connector,
            records,
            Arc::clone(&self.shared),
            Arc::clone(&dispatcher),
        )?;
        let mut run = Running {
            reader: Some(reader),
            exec_control: None,
            handle_ops: None,
            exec_tracer,
            dispatcher: Arc::clone(&dispatcher),
        };
        if handle_ops::wanted(events) {
            match handle_ops::HandleTracer::start(&self.shared, &dispatcher) {
                Ok(tracer) => run.handle_ops = Some(tracer),
                Err(e) => {
                    stop_running(run);
                    return Err(e);
                }
            }
        }
        if let Some(ec) = exec_control.as_mut() {
            if let Err(e) = ec.start(Arc::clone(&self.shared), dispatcher) {
                stop_running(run);
                return Err(e);
            }
        }
        run.exec_control = exec_control;
        *running = Some(run);
        self.active.store(true, Ordering::Release);
        Ok(())
    }

    /// `stop_filter`: detaches from the kernel, allows every exec still held, then waits
    /// until every handler that is running or queued has returned. Rules are dropped.
    /// Does nothing when not active; refused inside an event (it would wait for itself).
    pub fn stop_filter(&self) -> Result<()> {
        outside_events("stop_filter")?;
        let run = lock(&self.running).take();
        if let Some(run) = run {
            self.active.store(false, Ordering::Release);
            stop_running(run);
            *self.shared.lock() = State::default();
        }
        Ok(())
    }

    fn dispatch_options(&self, timeout: Timeout) -> Result<Options> {
        let mut options = Options {
            timeout,
            serialize_events: self.serialize_events(),
            name: "fsgate-process".into(),
            ..Options::default()
        };
        let s = ProcessSettings::from_settings(&self.settings)?;
        if s.max_worker_thread_count > 0 {
            options.max_workers = s.max_worker_thread_count;
        }
        if s.min_worker_thread_count > 0 {
            options.min_workers = s.min_worker_thread_count;
        }
        options.min_workers = options.min_workers.min(options.max_workers);
        if s.worker_initial_stack_size > 0 {
            options.stack_size = Some(s.worker_initial_stack_size);
        }
        Ok(options)
    }

    fn not_while_active(&self, what: &str) -> Result<()> {
        outside_events(what)?;
        if self.active() {
            return Err(Error::from_code(
                code::ERROR_CONNECTION_ACTIVE,
                format!("{what} cannot be changed while the filter is active"),
            ));
        }
        Ok(())
    }

    fn require_active(&self, method: &str) -> Result<()> {
        if !self.active() {
            return Err(Error::not_ready(format!(
                "{method} can be called only while the filter is active (after start_filter)"
            )));
        }
        Ok(())
    }

    // ----- rules -----

    /// `add_filtered_process_by_id`: fire events for requests by `process_id` (-1: every
    /// process) and, with `include_children`, by its descendants. Requires `active`.
    pub fn add_filtered_process_by_id(
        &self,
        process_id: i64,
        include_children: bool,
    ) -> Result<()> {
        self.add_by_id(process_id, include_children, true)
    }

    /// `add_ignored_process_by_id`: never fire events for requests by `process_id` (-1:
    /// every process) and, with `include_children`, its descendants; wins over filtered
    /// rules. Requires `active`.
    pub fn add_ignored_process_by_id(&self, process_id: i64, include_children: bool) -> Result<()> {
        self.add_by_id(process_id, include_children, false)
    }

    /// `remove_filtered_process_by_id`; `ERROR_FILE_NOT_FOUND` (2) for an id without a rule.
    pub fn remove_filtered_process_by_id(&self, process_id: i64) -> Result<()> {
        self.require_active("remove_filtered_process_by_id")?;
        let id = ProcessId::from_raw(process_id)?;
        self.shared.lock().rules.filtered.remove_id(id)?;
        self.sync_kernel_rules()
    }

    /// `remove_ignored_process_by_id`; `ERROR_FILE_NOT_FOUND` (2) for an id without a rule.
    pub fn remove_ignored_process_by_id(&self, process_id: i64) -> Result<()> {
        self.require_active("remove_ignored_process_by_id")?;
        let id = ProcessId::from_raw(process_id)?;
        self.shared.lock().rules.ignored.remove_id(id)?;
        self.sync_kernel_rules()
    }

    /// `add_filtered_process_by_name`: fire events for requests by processes whose image
    /// matches `process_name` (a file name, or a full path when it contains `/`; `*` and `?`
    /// allowed) and, with `include_children`, their descendants. Requires `active`.
    pub fn add_filtered_process_by_name(
        &self,
        process_name: &str,
        include_children: bool,
    ) -> Result<()> {
        self.require_active("add_filtered_process_by_name")?;
        let mut st = self.shared.lock();
        let State { table, rules, .. } = &mut *st;
        rules
            .filtered
            .add_name(process_name, include_children, table)?;
        drop(st);
        self.sync_kernel_rules()
    }

    /// `add_ignored_process_by_name`: like
    /// [`add_filtered_process_by_name`](Self::add_filtered_process_by_name), for the
    /// ignored list. Requires `active`.
    pub fn add_ignored_process_by_name(
        &self,
        process_name: &str,
        include_children: bool,
    ) -> Result<()> {
        self.require_active("add_ignored_process_by_name")?;
        let mut st = self.shared.lock();
        let State { table, rules, .. } = &mut *st;
        rules
            .ignored
            .add_name(process_name, include_children, table)?;
        drop(st);
        self.sync_kernel_rules()
    }

    /// `remove_filtered_process_by_name`; `ERROR_FILE_NOT_FOUND` (2) for a name without a
    /// rule.
    pub fn remove_filtered_process_by_name(&self, process_name: &str) -> Result<()> {
        self.require_active("remove_filtered_process_by_name")?;
        self.shared
            .lock()
            .rules
            .filtered
            .remove_name(process_name)?;
        self.sync_kernel_rules()
    }

    /// `remove_ignored_process_by_name`; `ERROR_FILE_NOT_FOUND` (2) for a name without a rule.
    pub fn remove_ignored_process_by_name(&self, process_name: &str) -> Result<()> {
        self.require_active("remove_ignored_process_by_name")?;
        self.shared.lock().rules.ignored.remove_name(process_name)?;
        self.sync_kernel_rules()
    }

    fn add_by_id(&self, process_id: i64, include_children: bool, filtered: bool) -> Result<()> {
        self.require_active(if filtered {
            "add_filtered_process_by_id"
        } else {
            "add_ignored_process_by_id"
        })?;
        let id = ProcessId::from_raw(process_id)?;
        let pidfd = match id {
            ProcessId::All => None,
            ProcessId::Pid(pid) => Some(open_pidfd(pid)?),
        };
        let mut st = self.shared.lock();
        let State { table, rules, .. } = &mut *st;
        let list = if filtered {
            &mut rules.filtered
        } else {
            &mut rules.ignored
        };
        list.add_id(id, include_children, pidfd, table);
        drop(st);
        self.sync_kernel_rules()
    }

    /// Gives the rules by id to the tracepoint programs, when they are loaded (see
    /// `handle_ops`).
    fn sync_kernel_rules(&self) -> Result<()> {
        if let Some(tracer) = lock(&self.running)
            .as_mut()
            .and_then(|r| r.handle_ops.as_mut())
        {
            tracer.sync(&self.shared.lock())?;
        }
        Ok(())
    }

    /// Linux extension: how many handle operation records the kernel sent to user space
    /// since handle operations were asked for, before the rules were checked again here; 0
    /// when none are traced. With every filtered rule by process id or plain image name
    /// (see the crate docs), it counts only operations by or on selected processes (and
    /// those the kernel could not attribute): the rules are evaluated in the kernel.
    pub fn handle_records_delivered(&self) -> u64 {
        lock(&self.running)
            .as_ref()
            .and_then(|r| r.handle_ops.as_ref())
            .map_or(0, |t| t.delivered_records())
    }

    // ----- snapshot, names, tokens -----

    /// `create_running_processes_snapshot`: records every running process for the
    /// `running_process_*` accessors (command lines only when `track_command_line` is on),
    /// replacing an earlier snapshot. Works without `initialize`: it reads only `/proc`.
    pub fn create_running_processes_snapshot(&self) -> Result<()> {
        outside_events("create_running_processes_snapshot")?;
        let fresh = snapshot::take(self.track_command_line());
        *lock(&self.snapshot) = fresh;
        Ok(())
    }

    /// `close_running_processes_snapshot`: drops the snapshot (`running_process_count`
    /// becomes 0).
    pub fn close_running_processes_snapshot(&self) -> Result<()> {
        outside_events("close_running_processes_snapshot")?;
        lock(&self.snapshot).clear();
        Ok(())
    }

    /// `get_process_name`: the full path of the image `process_id` runs; "" when there is
    /// no such process or it has no image (kernel threads).
    pub fn get_process_name(&self, process_id: u32) -> String {
        std::fs::read_link(format!("/proc/{process_id}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `get_originator_token`: the credentials of the process that made the request the
    /// current event reports (for a creation, the creating process), read from
    /// `/proc/<pid>/status`. `ERROR_NO_CALLBACK_ACTIVE` (614) outside an event;
    /// `ERROR_FILE_NOT_FOUND` (2) when that process has already exited.
    pub fn get_originator_token(&self) -> Result<Credentials> {
        fsgate_core::originator::get_originator_token()
    }

    /// `reset_timeout`: restarts the current handler's deadline at `timeout_ms` (0: none).
    /// `ERROR_NO_CALLBACK_ACTIVE` (614) outside an event.
    pub fn reset_timeout(&self, timeout_ms: u32) -> Result<()> {
        dispatch::reset_timeout(timeout_ms)
    }

    // ----- config, shutdown -----

    /// `config("NAME=VALUE")` sets, `config("NAME")` reads: `EventsToFire`,
    /// `FilterOwnRequests`, `MaxWorkerThreadCount`, `MinWorkerThreadCount`,
    /// `WorkerInitialStackSize` (the last three fixed while active), `LoggingEnabled`,
    /// `DenyExpiredEvents`, `BuildInfo`, `LicenseInfo`, and the Linux extension
    /// `TraceHandleSyscalls` (fixed while active; see the crate docs).
    ///
    /// `LoggingEnabled` is persistent, as in the reference: it lives in the installation's
    /// settings file (`<root>/etc/fsgate/fsgate.conf`, see
    /// [`fsgate_registry::logging_enabled`]) of the installation given to `initialize`, so it
    /// needs `initialize` first (`ERROR_NOT_READY` (21) otherwise), and setting it needs
    /// write access to that file. `initialize` loads it.
    pub fn config(&self, configuration_string: &str) -> Result<String> {
        let request = Request::parse(configuration_string)?;
        let (Request::Get(name) | Request::Set(name, _)) = request;
        if name.eq_ignore_ascii_case(LOGGING_ENABLED) {
            return self.config_logging(request);
        }
        if let Some((name, _)) = configuration_string.split_once('=') {
            let name = name.trim();
            if FIXED_WHILE_ACTIVE
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
            {
                self.not_while_active(name)?;
            }
        }
        let out = self.settings.config(configuration_string)?;
        let s = ProcessSettings::from_settings(&self.settings)?;
        self.shared.events_to_fire.store(
            EventsToFire::from_setting(s.events_to_fire).0,
            Ordering::Relaxed,
        );
        self.shared
            .filter_own_requests
            .store(s.filter_own_requests, Ordering::Relaxed);
        self.shared
            .trace_handle_syscalls
            .store(s.trace_handle_syscalls, Ordering::Relaxed);
        self.shared
            .deny_expired_events
            .store(s.deny_expired_events, Ordering::Relaxed);
        // Handle operations asked for while active: load the programs now.
        if handle_ops::wanted(EventsToFire::from_setting(s.events_to_fire)) {
            if let Some(run) = lock(&self.running).as_mut() {
                if run.handle_ops.is_none() {
                    let mut tracer =
                        handle_ops::HandleTracer::start(&self.shared, &run.dispatcher)?;
                    tracer.sync(&self.shared.lock())?;
                    run.handle_ops = Some(tracer);
                }
            }
        }
        Ok(out)
    }

    /// `config` for `LoggingEnabled`: reads or writes the installation's settings file.
    fn config_logging(&self, request: Request<'_>) -> Result<String> {
        let root = lock(&self.product)
            .as_ref()
            .map(|p| p.installation.root().to_path_buf())
            .ok_or_else(|| {
                Error::not_ready(
                    "config LoggingEnabled: call initialize(product_guid) first; the setting is \
                     stored in the installation",
                )
            })?;
        let on = match request {
            Request::Set(_, value) => {
                let on = parse_bool(LOGGING_ENABLED, value)?;
                fsgate_registry::set_logging_enabled(&root, on)?;
                on
            }
            Request::Get(_) => fsgate_registry::logging_enabled(&root)?,
        };
        self.set_logging_flag(on)?;
        self.settings.config(LOGGING_ENABLED)
    }

    fn set_logging_flag(&self, on: bool) -> Result<()> {
        self.settings.set(LOGGING_ENABLED, Value::Bool(on))?;
        self.shared.logging_enabled.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// `shutdown_system` through the real machine; see
    /// [`shutdown_system_with`](Self::shutdown_system_with).
    pub fn shutdown_system(
        &self,
        shutdown_prompt: &str,
        timeout: u32,
        force_close_apps: bool,
        reboot: bool,
    ) -> Result<bool> {
        self.shutdown_system_with(
            &shutdown::System,
            shutdown_prompt,
            timeout,
            force_close_apps,
            reboot,
        )
    }

    /// `shutdown_system` carried out by `executor`: `Ok(false)` without `CAP_SYS_BOOT`,
    /// `Ok(true)` once the system accepted. Refused inside events.
    pub fn shutdown_system_with(
        &self,
        executor: &dyn Executor,
        shutdown_prompt: &str,
        timeout: u32,
        force_close_apps: bool,
        reboot: bool,
    ) -> Result<bool> {
        outside_events("shutdown_system")?;
        shutdown::shutdown_system(
            &shutdown::Request {
                shutdown_prompt: shutdown_prompt.to_string(),
                timeout,
                force_close_apps,
                reboot,
            },
            executor,
        )
    }
}

impl Drop for ProcessFilter {
    fn drop(&mut self) {
        if let Some(run) = lock(&self.running).take() {
            stop_running(run);
        }
    }
}

fn stop_running(mut run: Running) {
    if let Some(reader) = run.reader.take() {
        reader.stop();
    }
    if let Some(mut ec) = run.exec_control.take() {
        ec.stop();
    }
    // The reader, which drained its records, has stopped.
    drop(run.exec_tracer.take());
    // Unloads the programs; the events it already queued still run before the shutdown.
    drop(run.handle_ops.take());
    run.dispatcher.shutdown();
}

/// A pidfd on `pid`: the rule's hold on that very process (reference: "PID Reuse").
fn open_pidfd(pid: u32) -> Result<OwnedFd> {
    let not_found = || {
        Error::from_code(
            code::ERROR_INVALID_PARAMETER,
            format!("invalid process_id: no process {pid} is running"),
        )
    };
    let p = Pid::from_raw(pid as i32).ok_or_else(not_found)?;
    pidfd_open(p, PidfdFlags::empty()).map_err(|e| {
        if e == rustix::io::Errno::SRCH {
            not_found()
        } else {
            Error::io(format!("pidfd_open({pid})"), e.into())
        }
    })
}
