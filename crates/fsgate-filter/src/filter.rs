//! `FileFilter`: control events and access rules from fanotify permission events, plus the
//! monitor's notifications for rules with notify flags.
//!
//! The permission group reports thread ids, so the open flags of the caller can be read from
//! `/proc/<tid>/syscall` while it waits (see [`crate::open_request`]). Verdicts:
//! access rules are decided on the reader thread without calling the application; control
//! events run on the dispatcher and their completion writes the answer: `Ok` allows, `Err`
//! denies, a timeout allows or denies per `DenyExpiredEvents`, a panic denies (a handler that
//! crashed cannot have approved), a cancelled job (stop) allows. Denials reach the caller as
//! `EPERM`. The library's own process is never filtered (its events are allowed on the
//! reader thread), so a handler may open and read the very file it is asked about.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use fsgate_core::dispatch::{Dispatcher, Hooks, Outcome, SerialKey, Task, Timeout};
use fsgate_core::listener::{Flow, Interest, Listener, Source};
use fsgate_core::originator::{self, Originator};
use fsgate_core::{code, Error, Result};
use fsgate_fanotify::{
    fd_path, Class, Event, EventBuffer, EventMask, Group, HeldEvents, InitFlags, MarkAction,
    MarkFlags, MarkType, Response,
};

use fsgate_core::sync::{lock, read, write};

use crate::attach::{self, Marks};
use crate::class::{hash, ClassCore, Lookups, RuleList};
use crate::events::{ControlEvent, ControlKind, FilterEvents};
use crate::group;
use crate::notify::{self, NotifyEngine};
use crate::open_request::open_request;
use crate::overlay::{self, Overlay, Shared};
use crate::placeholder::{self, PlaceholderEngine};
use crate::reparse::{ReparseRule, ReparseRules};
use crate::rules::{AccessFlags, ControlFlags, NotifyFlags, Qualifiers, RuleFlags, Rules};
use crate::settings::{Backend, FilterSettings};

fn permission_mask(flags: RuleFlags) -> EventMask {
    let mut m = EventMask::empty();
    let a = flags.access;
    let c = flags.control;
    if a.intersects(
        AccessFlags::ACCESS_READ_ONLY
            | AccessFlags::ACCESS_WRITE_ONLY
            | AccessFlags::ACCESS_DENY_ALL,
    ) || c.intersects(ControlFlags::FS_CE_BEFORE_OPEN | ControlFlags::FS_CE_BEFORE_CREATE)
    {
        m |= EventMask::OPEN_PERM;
    }
    if a.contains(AccessFlags::ACCESS_WRITE_ONLY) || c.contains(ControlFlags::FS_CE_BEFORE_READ) {
        m |= EventMask::ACCESS_PERM;
    }
    if a.contains(AccessFlags::ACCESS_EXECUTE_PROTECT)
        || c.contains(ControlFlags::FS_CE_BEFORE_EXECUTE)
    {
        m |= EventMask::OPEN_EXEC_PERM;
    }
    m
}

struct Running {
    listener: Listener,
    group: Arc<Group>,
    held: Arc<HeldEvents>,
    dispatcher: Arc<Dispatcher>,
    /// Started with the first rule that has notify flags.
    notify: Option<NotifyEngine>,
    placeholders: Option<PlaceholderEngine>,
    /// The permission group's marks.
    marks: Arc<Mutex<Marks>>,
}

/// The overlays of a filter running on the overlay backend.
struct OverlayRun<H: FilterEvents> {
    overlays: Vec<Overlay<H>>,
    /// Where their Notify events and `on_access_denied` run.
    notify: Arc<Dispatcher>,
}

/// The filter class: on fanotify, or on overlays (see [`crate::overlay`]). See the
/// [module](self) docs for fanotify's verdicts.
pub struct FileFilter<H: FilterEvents> {
    core: ClassCore<H>,
    running: Mutex<Option<Running>>,
    overlay: Mutex<Option<OverlayRun<H>>>,
    /// Directories to mount overlays on whatever the rules say.
    overlay_directories: Mutex<Vec<std::path::PathBuf>>,
    reparse: Arc<RwLock<ReparseRules>>,
    virtual_files: Arc<RwLock<crate::overlay::virtual_files::VirtualFiles>>,
    /// What `create_reparse_rules_snapshot` took, until `close_reparse_rules_snapshot`.
    reparse_snapshot: Mutex<Vec<ReparseRule>>,
    process_failed_requests: Arc<std::sync::atomic::AtomicBool>,
}

impl<H: FilterEvents> FileFilter<H> {
    /// A stopped filter with no rules.
    pub fn new(handler: H) -> Self {
        Self {
            core: ClassCore::new(handler, FilterSettings::default().settings()),
            running: Mutex::new(None),
            overlay: Mutex::new(None),
            overlay_directories: Mutex::new(Vec::new()),
            reparse: Arc::new(RwLock::new(ReparseRules::default())),
            virtual_files: Arc::new(RwLock::new(Default::default())),
            reparse_snapshot: Mutex::new(Vec::new()),
            process_failed_requests: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// The application's handler.
    pub fn handler(&self) -> &H {
        &self.core.handler
    }

    /// Brings a running filter in line with the rules as they are now: the permission
    /// group is re-marked for the events they ask for and attached to the volumes they name,
    /// and the notification engine starts with the first notify rule (or follows the change).
    ///
    /// The class's lock is not held while volumes are attached (their handlers may call
    /// into this filter).
    fn refresh(&self) -> Result<()> {
        let Some((marks, notify_marks, dispatcher)) = lock(&self.running).as_ref().map(|r| {
            (
                Arc::clone(&r.marks),
                r.notify.as_ref().map(NotifyEngine::marks),
                Arc::clone(&r.dispatcher),
            )
        }) else {
            return Ok(());
        };
        let notify_wanted = self.mark_permissions(&marks)?;
        if let Some(notify_marks) = notify_marks {
            return notify::refresh(&*self.core.handler, &self.core.rules, &notify_marks);
        }
        if !notify_wanted {
            return Ok(());
        }
        let engine = self.start_notifications(dispatcher)?;
        let mut running = lock(&self.running);
        match running.as_mut() {
            Some(r) if r.notify.is_none() => r.notify = Some(engine),
            // Stopped meanwhile, or another rule change started notifications first.
            _ => {
                drop(running);
                for v in &engine.stop() {
                    self.core.handler.on_after_filter_detach_from_volume(v);
                }
            }
        }
        Ok(())
    }

    /// Re-marks the permission group for the rules as they are now; returns whether they
    /// ask for notifications.
    fn mark_permissions(&self, marks: &Mutex<Marks>) -> Result<bool> {
        let (all, volumes) = {
            let rules = read(&self.core.rules);
            (
                rules.standard.all_flags(),
                attach::volumes_for(&rules.standard)?,
            )
        };
        lock(marks).update(&*self.core.handler, permission_mask(all), volumes);
        Ok(!all.notify.is_empty())
    }

    fn start_notifications(&self, dispatcher: Arc<Dispatcher>) -> Result<NotifyEngine> {
        NotifyEngine::start(
            Arc::clone(&self.core.handler),
            Arc::clone(&self.core.rules),
            dispatcher,
        )
    }

    /// Refuses what no backend serves, and, while fanotify runs, what only the overlay
    /// serves.
    fn check(&self, flags: RuleFlags) -> Result<()> {
        if overlay::needs_overlay(flags) && lock(&self.running).is_some() {
            return Err(Error::from_code(
                code::ERROR_NOT_SUPPORTED,
                "flags: the filter runs on fanotify, which cannot serve this rule (delete or rename protection, or an overlay event); stop it and start it again to move to the overlay backend",
            ));
        }
        Ok(())
    }

    /// Adds a standard rule (aggregated per mask): access flags are enforced without
    /// callbacks, control flags fire Before events, notify flags fire Notify events.
    pub fn add_filter_rule(
        &self,
        mask: &str,
        access: AccessFlags,
        control: ControlFlags,
        notify: NotifyFlags,
    ) -> Result<()> {
        self.add_filter_rule_ex(mask, access, control, notify, Qualifiers::default())
    }

    /// [`add_filter_rule`](Self::add_filter_rule) with size and attribute qualifiers.
    pub fn add_filter_rule_ex(
        &self,
        mask: &str,
        access: AccessFlags,
        control: ControlFlags,
        notify: NotifyFlags,
        q: Qualifiers,
    ) -> Result<()> {
        let flags = RuleFlags {
            access,
            control,
            notify,
        };
        self.check(flags)?;
        self.core.add_rule(RuleList::Standard, mask, flags, q)?;
        self.refresh()
    }

    /// Removes flags from the rule with this mask; true when it existed.
    pub fn delete_filter_rule(
        &self,
        mask: &str,
        access: AccessFlags,
        control: ControlFlags,
        notify: NotifyFlags,
    ) -> bool {
        let flags = RuleFlags {
            access,
            control,
            notify,
        };
        let existed = self.core.delete_rule(RuleList::Standard, mask, Some(flags));
        self.core.report(self.refresh());
        existed
    }

    /// Removes every standard and access rule.
    pub fn delete_all_filter_rules(&self) {
        self.core.delete_all_rules(RuleList::Standard);
        self.core.report(self.refresh());
    }

    /// Excludes matching files from the given events and access restrictions.
    pub fn add_passthrough_rule(
        &self,
        mask: &str,
        access: AccessFlags,
        control: ControlFlags,
        notify: NotifyFlags,
    ) -> Result<()> {
        self.add_passthrough_rule_ex(mask, access, control, notify, Qualifiers::default())
    }

    /// [`add_passthrough_rule`](Self::add_passthrough_rule) with qualifiers.
    pub fn add_passthrough_rule_ex(
        &self,
        mask: &str,
        access: AccessFlags,
        control: ControlFlags,
        notify: NotifyFlags,
        q: Qualifiers,
    ) -> Result<()> {
        let flags = RuleFlags {
            access,
            control,
            notify,
        };
        self.core.add_rule(RuleList::Passthrough, mask, flags, q)
    }

    /// Removes a passthrough rule; true when it existed.
    pub fn delete_passthrough_rule(&self, mask: &str) -> bool {
        self.core.delete_rule(RuleList::Passthrough, mask, None)
    }

    /// Removes every passthrough rule.
    pub fn delete_all_passthrough_rules(&self) {
        self.core.delete_all_rules(RuleList::Passthrough);
    }

    /// Fires every event on one worker (`serialize_events`).
    pub fn set_serialize_events(&self, on: bool) {
        self.core.set_serialize_events(on);
    }

    /// `config("NAME=VALUE")` / `config("NAME")`: `DenyExpiredEvents`, `FilterOwnRequests`
    /// (read-only false: the listener's own requests are never filtered),
    /// `MinWorkerThreadCount`, `MaxWorkerThreadCount`, `Backend` (`Auto`, `Overlay`,
    /// `Fanotify`; see [`crate::overlay`]), `ProcessFailedRequests`, `BuildInfo`,
    /// `LicenseInfo`.
    pub fn config(&self, text: &str) -> Result<String> {
        if let Some((name, value)) = text.split_once('=') {
            if name.eq_ignore_ascii_case(crate::settings::filter_names::BACKEND) {
                Backend::parse(value)?;
            }
        }
        let answer = self.core.settings.config(text)?;
        if let Ok(s) = FilterSettings::from_settings(&self.core.settings) {
            self.process_failed_requests.store(
                s.process_failed_requests,
                std::sync::atomic::Ordering::SeqCst,
            );
        }
        Ok(answer)
    }

    /// `process_failed_requests`: whether the overlay's After events fire for operations
    /// that failed (with their `result_code`), so that an event context or a cleanup is
    /// never missed. Default false. Takes effect at once.
    pub fn set_process_failed_requests(&self, on: bool) -> Result<()> {
        self.config(&format!(
            "{}={on}",
            crate::settings::filter_names::PROCESS_FAILED_REQUESTS
        ))
        .map(|_| ())
    }

    /// Whether the filter is running (on either backend).
    pub fn active(&self) -> bool {
        lock(&self.running).is_some() || lock(&self.overlay).is_some()
    }

    /// The directories overlays are mounted on while the filter runs on the overlay
    /// backend, with how their untouched files are served (kernel passthrough or the
    /// library); empty on fanotify.
    pub fn overlay_directories(&self) -> Vec<(std::path::PathBuf, fsgate_vfs::RouteMode)> {
        lock(&self.overlay)
            .as_ref()
            .map(|run| {
                run.overlays
                    .iter()
                    .filter_map(|o| o.route_mode().ok().map(|m| (o.root(), m)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Serves `directory` with an overlay from the next `start_filter` on, even when no rule
    /// names it (with no rule at all, the overlay is a plain mirror: what processes pay for
    /// the overlay itself). Selects the overlay backend (`Backend=Fanotify` then refuses to
    /// start). A path that is not an existing directory is `ERROR_DIRECTORY` naming it.
    pub fn add_overlay_directory(&self, directory: impl AsRef<Path>) -> Result<()> {
        let directory = directory.as_ref();
        if !directory.is_dir() {
            return Err(Error::from_code(
                code::ERROR_DIRECTORY,
                format!("{} is not an existing directory", directory.display()),
            ));
        }
        lock(&self.overlay_directories).push(directory.to_path_buf());
        Ok(())
    }

    /// `add_reparse_rule`: redirects every access to a name matching `mask` to `new_mask`
    /// (see [`crate::reparse`] for the forms). Served by the overlay backend: the rule's
    /// directory gets an overlay at the next `start_filter`, and a running overlay applies
    /// it to names the kernel looks up from then on (names it cached keep their answer for
    /// up to the metadata timeout, 10 s). While fanotify runs it is refused.
    pub fn add_reparse_rule(&self, mask: &str, new_mask: &str) -> Result<()> {
        if lock(&self.running).is_some() {
            return Err(Error::from_code(
                code::ERROR_NOT_SUPPORTED,
                "add_reparse_rule: the filter runs on fanotify, which cannot redirect; stop it and start it again to move to the overlay backend",
            ));
        }
        write(&self.reparse).add(mask, new_mask)
    }

    /// `delete_reparse_rule`: removes the rule for `mask`; whether it existed.
    pub fn delete_reparse_rule(&self, mask: &str) -> bool {
        write(&self.reparse).delete(mask)
    }

    /// `delete_all_reparse_rules`.
    pub fn delete_all_reparse_rules(&self) {
        write(&self.reparse).clear();
    }

    /// `get_reparse_rule_by_mask`: the rule for `mask`; `ERROR_FILE_NOT_FOUND` naming it
    /// when there is none.
    pub fn get_reparse_rule_by_mask(&self, mask: &str) -> Result<ReparseRule> {
        read(&self.reparse).get(mask).ok_or_else(|| {
            Error::from_code(
                code::ERROR_FILE_NOT_FOUND,
                format!("no reparse rule for the mask '{mask}'"),
            )
        })
    }

    /// `create_reparse_rules_snapshot`: the reparse rules as they are now, kept (and
    /// returned) until [`close_reparse_rules_snapshot`](Self::close_reparse_rules_snapshot).
    pub fn create_reparse_rules_snapshot(&self) -> Vec<ReparseRule> {
        let snapshot = read(&self.reparse).snapshot();
        lock(&self.reparse_snapshot).clone_from(&snapshot);
        snapshot
    }

    /// `close_reparse_rules_snapshot`: drops the snapshot.
    pub fn close_reparse_rules_snapshot(&self) {
        lock(&self.reparse_snapshot).clear();
    }

    /// `add_virtual_file`: makes `file_name` (a full path under a filtered directory) appear
    /// in listings and open, as a read-only file of `size` bytes that exists only in the
    /// application: `on_before_query_file_info` (its size and mode), `on_before_open_file`
    /// and `on_after_read_file` (an empty buffer to fill with the data asked for) always
    /// fire for it, and `on_before_delete_file` for its deletion, after which it is gone.
    /// Served by the overlay (its directory gets one at the next `start_filter`). A name
    /// the kernel has already found missing appears within the metadata timeout (10 s).
    pub fn add_virtual_file(&self, file_name: &str, size: u64) -> Result<()> {
        let parent = Path::new(file_name).parent().filter(|p| p.is_dir());
        if !file_name.starts_with('/') || parent.is_none() {
            return Err(Error::invalid_argument(
                "file_name",
                format!("'{file_name}' is not a full path in an existing directory"),
            ));
        }
        write(&self.virtual_files).insert(file_name.to_string(), size);
        Ok(())
    }

    /// `remove_virtual_file`: the file disappears; whether it existed.
    pub fn remove_virtual_file(&self, file_name: &str) -> bool {
        write(&self.virtual_files).remove(file_name).is_some()
    }

    /// `create_file_direct`: opens (or, with `O_CREAT` in `flags`, creates with `mode`)
    /// `file_name` without being filtered: under an overlay, the lower file through the
    /// overlay's own descriptor; elsewhere the path as it is (see [`crate::direct`]). The
    /// filter must be running (error 21). Errors carry the errno of the open.
    pub fn create_file_direct(
        &self,
        file_name: &str,
        flags: i32,
        mode: u32,
    ) -> Result<std::fs::File> {
        if !self.active() {
            return Err(Error::not_ready(
                "create_file_direct: the filter is not running",
            ));
        }
        let opened = lock(&self.overlay).as_ref().and_then(|run| {
            run.overlays
                .iter()
                .find_map(|o| o.open_direct(file_name, flags, mode))
        });
        opened
            .unwrap_or_else(|| crate::direct::open_plain(file_name, flags, mode))
            .map_err(|e| crate::direct::failed("create_file_direct", file_name, e))
    }

    /// `set_file_size_direct` on a file from [`create_file_direct`](Self::create_file_direct).
    pub fn set_file_size_direct(&self, file: &std::fs::File, size: u64) -> Result<()> {
        crate::direct::set_file_size(file, size)
    }

    /// `query_file_information_direct` on a file from
    /// [`create_file_direct`](Self::create_file_direct).
    pub fn query_file_information_direct(&self, file: &std::fs::File) -> Result<std::fs::Metadata> {
        crate::direct::query_file_information(file)
    }

    /// `query_file_security_direct`: owner, group and permission bits.
    pub fn query_file_security_direct(
        &self,
        file: &std::fs::File,
    ) -> Result<crate::direct::FileSecurity> {
        crate::direct::query_file_security(file)
    }

    /// `set_file_security_direct`: changes what is `Some` of owner, group and mode.
    pub fn set_file_security_direct(
        &self,
        file: &std::fs::File,
        owner: Option<u32>,
        group: Option<u32>,
        mode: Option<u32>,
    ) -> Result<()> {
        crate::direct::set_file_security(file, owner, group, mode)
    }

    /// Whether `start_filter` would run the overlay backend.
    fn wants_overlay(&self) -> Result<bool> {
        let settings = FilterSettings::from_settings(&self.core.settings)?;
        let all = read(&self.core.rules).standard.all_flags();
        let asked = !lock(&self.overlay_directories).is_empty()
            || !read(&self.reparse).is_empty()
            || !read(&self.virtual_files).is_empty();
        match Backend::parse(&settings.backend)? {
            Backend::Overlay => Ok(true),
            Backend::Auto => Ok(asked || overlay::needs_overlay(all)),
            Backend::Fanotify if asked || overlay::needs_overlay(all) => Err(Error::from_code(
                code::ERROR_NOT_SUPPORTED,
                "Backend=Fanotify: a rule needs the overlay backend (delete or rename protection, or an overlay event)",
            )),
            Backend::Fanotify => Ok(false),
        }
    }

    /// Mounts an overlay over each rule's leading directory.
    fn start_overlays(&self, timeout_ms: u32) -> Result<()> {
        let timeout = Timeout::from_millis(timeout_ms)?;
        let mut slot = lock(&self.overlay);
        if slot.is_some() || lock(&self.running).is_some() {
            return Err(Error::from_code(
                code::ERROR_CONNECTION_ACTIVE,
                "the filter is already running",
            ));
        }
        let (roots, all) = {
            let rules = read(&self.core.rules);
            let mut extra = lock(&self.overlay_directories).clone();
            extra.extend(
                read(&self.virtual_files)
                    .keys()
                    .filter_map(|f| Path::new(f).parent().map(Path::to_path_buf)),
            );
            extra.extend(
                read(&self.reparse)
                    .directories()
                    .into_iter()
                    .map(std::path::PathBuf::from),
            );
            (
                overlay::overlay_roots(&rules, &extra)?,
                rules.standard.all_flags(),
            )
        };
        if roots.is_empty() {
            return Err(Error::invalid_argument(
                "rules",
                "the overlay backend needs at least one rule with a leading directory",
            ));
        }
        let options = self
            .core
            .dispatcher_options(timeout, "fsgate-filter-notify")?;
        let notify = Arc::new(Dispatcher::new(
            options,
            Arc::clone(&self.core.handler) as Arc<dyn Hooks>,
        )?);
        let mut overlays = Vec::new();
        for root in &roots {
            let shared = Shared {
                handler: Arc::clone(&self.core.handler),
                rules: Arc::clone(&self.core.rules),
                process_failed_requests: Arc::clone(&self.process_failed_requests),
                notify: Arc::clone(&notify),
                reparse: Arc::clone(&self.reparse),
                virtual_files: Arc::clone(&self.virtual_files),
            };
            match Overlay::start(shared, root, overlay::wants_cleanup(all), timeout_ms) {
                Ok(o) => overlays.push(o),
                Err(e) => {
                    for o in overlays {
                        let _ = o.stop();
                    }
                    return Err(e);
                }
            }
        }
        *slot = Some(OverlayRun { overlays, notify });
        Ok(())
    }

    /// Starts filtering. `timeout_ms` is 0 (none) or ≥ 3000 (else error 1292). Without
    /// rules the filter only serves placeholders.
    ///
    /// The backend is chosen here (see [`crate::overlay`]): with `Backend=Overlay`, or a rule
    /// that needs it, an overlay is mounted over each rule's leading directory.
    pub fn start_filter(&self, timeout_ms: u32) -> Result<()> {
        if self.wants_overlay()? {
            return self.start_overlays(timeout_ms);
        }
        let timeout = Timeout::from_millis(timeout_ms)?;
        let mut running = lock(&self.running);
        if running.is_some() {
            return Err(Error::from_code(
                code::ERROR_CONNECTION_ACTIVE,
                "the filter is already running",
            ));
        }
        let options = self.core.dispatcher_options(timeout, "fsgate-filter")?;
        let dispatcher = Arc::new(Dispatcher::new(
            options,
            Arc::clone(&self.core.handler) as Arc<dyn Hooks>,
        )?);
        let group = Arc::new(
            Group::new(
                Class::Content,
                InitFlags::CLOEXEC | InitFlags::REPORT_TID,
                libc::O_RDONLY | libc::O_LARGEFILE,
            )
            .map_err(|e| Error::io("creating the fanotify permission group (needs root)", e))?,
        );
        let marks = Arc::new(Mutex::new(Marks::new(
            Arc::clone(&group),
            MarkType::Mount,
            false,
        )));
        let mountinfo = std::fs::File::open("/proc/self/mountinfo")
            .map_err(|e| Error::io("opening /proc/self/mountinfo", e))?;
        let notify = if self.mark_permissions(&marks)? {
            Some(self.start_notifications(Arc::clone(&dispatcher))?)
        } else {
            None
        };
        let held = Arc::new(HeldEvents::default());
        let ctx = Reader {
            group: Arc::clone(&group),
            held: Arc::clone(&held),
            handler: Arc::clone(&self.core.handler),
            rules: Arc::clone(&self.core.rules),
            dispatcher: Arc::clone(&dispatcher),
            deny_expired: FilterSettings::from_settings(&self.core.settings)?.deny_expired_events,
            own_pid: std::process::id(),
            marks: Arc::clone(&marks),
            mountinfo,
            buf: EventBuffer::default(),
        };
        *running = Some(Running {
            listener: Listener::spawn("fsgate-filter-reader", ctx)?,
            group,
            held,
            dispatcher,
            notify,
            placeholders: None,
            marks,
        });
        Ok(())
    }

    /// Creates `file_name` as a placeholder of `size` bytes (a new sparse file carrying
    /// [`placeholder::PLACEHOLDER_XATTR`]) and serves it: the first access to each range
    /// fires [`on_hydrate_file`](FilterEvents::on_hydrate_file). The filter must be running
    /// (error 21 otherwise); a filesystem or kernel without pre-content events gives
    /// `ERROR_NOT_SUPPORTED` / `EOPNOTSUPP` naming the requirement, and the file is removed.
    pub fn create_placeholder(&self, file_name: &str, size: u64) -> Result<()> {
        let path = Path::new(file_name);
        self.with_placeholders(|engine| {
            let file = placeholder::create(path, size)?;
            engine.add(path, &file, size).inspect_err(|_| {
                let _ = std::fs::remove_file(path);
            })
        })
    }

    /// Serves an existing placeholder (one carrying [`placeholder::PLACEHOLDER_XATTR`], e.g.
    /// created before a restart); returns its size. The filter must be running.
    pub fn register_placeholder(&self, file_name: &str) -> Result<u64> {
        let path = Path::new(file_name);
        self.with_placeholders(|engine| {
            let (file, size) = placeholder::open(path)?;
            engine.add(path, &file, size)?;
            Ok(size)
        })
    }

    fn with_placeholders<T>(&self, f: impl FnOnce(&PlaceholderEngine) -> Result<T>) -> Result<T> {
        let mut running = lock(&self.running);
        let Some(r) = running.as_mut() else {
            return Err(Error::not_ready(
                "the filter is not running: call start_filter before adding placeholders",
            ));
        };
        if r.placeholders.is_none() {
            r.placeholders = Some(PlaceholderEngine::start(
                Arc::clone(&self.core.handler),
                Arc::clone(&r.dispatcher),
            )?);
        }
        match &r.placeholders {
            Some(engine) => f(engine),
            None => Err(Error::not_ready("the placeholder engine did not start")),
        }
    }

    /// Stops filtering: removes the marks, answers every held permission event with allow
    /// (its handler's late result is ignored), detaches the volumes. Returns without waiting
    /// for handlers still running; their threads end when they return.
    ///
    /// On the overlay backend, unmounts every overlay so the directories are plain again;
    /// requests still in a handler [`STOP_GRACE`](crate::overlay::STOP_GRACE) later fail with
    /// `ECONNABORTED`, so no caller stays blocked.
    pub fn stop_filter(&self) -> Result<()> {
        if let Some(run) = lock(&self.overlay).take() {
            let mut first = Ok(());
            for o in run.overlays {
                if let Err(e) = o.stop() {
                    first = first.and(Err(e));
                }
            }
            drain(run.notify);
            return first;
        }
        let Some(mut r) = lock(&self.running).take() else {
            return Ok(());
        };
        for t in [MarkType::Mount, MarkType::Filesystem, MarkType::Inode] {
            let _ = r.group.mark(
                MarkAction::Flush,
                t,
                MarkFlags::empty(),
                EventMask::empty(),
                None,
                None,
            );
        }
        if let Some(p) = r.placeholders.take() {
            p.stop();
        }
        r.listener.stop();
        r.held.release(Response::allow());
        let mut volumes = lock(&r.marks).take_attached();
        if let Some(n) = r.notify.take() {
            for v in n.stop() {
                if !volumes.iter().any(|a| a.mount_id == v.mount_id) {
                    volumes.push(v);
                }
            }
        }
        drain(r.dispatcher);
        for v in &volumes {
            self.core.handler.on_after_filter_detach_from_volume(v);
        }
        Ok(())
    }
}

/// Drops `value` — a dispatcher or notification queue still finishing its events — on a
/// thread of its own, so `stop_filter` returns without waiting for handlers.
fn drain<T: Send + 'static>(value: T) {
    let builder = std::thread::Builder::new().name("fsgate-filter-drain".into());
    let _ = fsgate_core::threads::spawn(builder, move || drop(value));
}

impl<H: FilterEvents> Drop for FileFilter<H> {
    fn drop(&mut self) {
        let _ = self.stop_filter();
    }
}

struct Reader<H: FilterEvents> {
    group: Arc<Group>,
    held: Arc<HeldEvents>,
    handler: Arc<H>,
    rules: Arc<RwLock<Rules>>,
    dispatcher: Arc<Dispatcher>,
    deny_expired: bool,
    own_pid: u32,
    /// The permission group's marks, shared with the class (rule changes).
    marks: Arc<Mutex<Marks>>,
    mountinfo: std::fs::File,
    buf: EventBuffer,
}

impl<H: FilterEvents> Source for Reader<H> {
    fn descriptors(&self) -> Vec<(BorrowedFd<'_>, Interest)> {
        vec![
            (self.group.as_fd(), Interest::Readable),
            (self.mountinfo.as_fd(), Interest::Priority),
        ]
    }

    fn ready(&mut self, ready: &[bool]) -> Flow {
        if ready.get(1) == Some(&true) {
            attach::follow_mounts(&*self.handler, &self.rules, &self.marks);
        }
        if ready.first() == Some(&true) {
            for event in group::read(&*self.handler, &self.group, &mut self.buf) {
                self.decide(event);
            }
        }
        Flow::Continue
    }

    fn failed(&mut self, e: std::io::Error) {
        group::wait_failed(&*self.handler, &e);
    }
}

impl<H: FilterEvents> Reader<H> {
    /// Decides one permission event. Every early return drops the event, which allows it.
    fn decide(&self, mut event: Event) {
        let Some(permission) = event.permission.take() else {
            return;
        };
        let tid = event.pid.max(0) as u32;
        let pid = originator::thread_group_id(tid).unwrap_or(tid);
        if pid == self.own_pid {
            return;
        }
        let Ok(path) = fd_path(permission.as_fd()).map(|p| p.display().to_string()) else {
            return;
        };
        let flags = {
            let rules = read(&self.rules);
            let lookups = Lookups::new(&rules, pid, &path, || std::fs::metadata(&path).ok());
            rules.evaluate(&lookups.subject(&path, pid))
        };
        let (a, c) = (flags.access, flags.control);
        let mut ev = ControlEvent {
            kind: ControlKind::OpenFile,
            file_name: path,
            process_id: pid,
            thread_id: tid,
            process_name: String::new(),
            read_access: false,
            write_access: false,
            isolate: false,
            backend_file_name: String::new(),
            process_request: true,
        };
        ev.backend_file_name.clone_from(&ev.file_name);
        let (deny, callback) = if event.mask.contains(EventMask::OPEN_EXEC_PERM) {
            ev.kind = ControlKind::Execute;
            (
                a.contains(AccessFlags::ACCESS_EXECUTE_PROTECT),
                c.contains(ControlFlags::FS_CE_BEFORE_EXECUTE),
            )
        } else if event.mask.contains(EventMask::ACCESS_PERM) {
            ev.kind = ControlKind::ReadFile;
            ev.read_access = true;
            (
                a.contains(AccessFlags::ACCESS_WRITE_ONLY),
                c.contains(ControlFlags::FS_CE_BEFORE_READ),
            )
        } else {
            let req = open_request(tid);
            ev.read_access = req.read;
            ev.write_access = req.write;
            ev.kind = if req.create_new {
                ControlKind::CreateFile
            } else {
                ControlKind::OpenFile
            };
            let wanted = if req.create_new {
                ControlFlags::FS_CE_BEFORE_CREATE
            } else {
                ControlFlags::FS_CE_BEFORE_OPEN
            };
            let deny = a.contains(AccessFlags::ACCESS_DENY_ALL)
                || (a.contains(AccessFlags::ACCESS_READ_ONLY) && req.write)
                || (a.contains(AccessFlags::ACCESS_WRITE_ONLY) && req.read);
            // Reference: callbacks for create/open take precedence over access flags.
            let callback = c.contains(wanted);
            (deny && !callback, callback)
        };
        if deny || callback {
            ev.process_name = originator::process_name(pid).unwrap_or_default();
        }
        if deny {
            let _ = permission.answer(Response::deny());
            let h = Arc::clone(&self.handler);
            self.dispatcher
                .dispatch(Task::new(move || h.on_access_denied(&ev)).then(|_| {}));
            return;
        }
        if !callback {
            return;
        }
        let creds = originator::credentials(pid).ok();
        let origin = Originator::new(
            pid,
            tid,
            creds.as_ref().map_or(u32::MAX, |c| c.euid),
            creds.as_ref().map_or(u32::MAX, |c| c.egid),
        );
        let h = Arc::clone(&self.handler);
        let deny_expired = self.deny_expired;
        let held = self.held.hold(permission);
        let key = SerialKey(hash(&ev.file_name));
        self.dispatcher.dispatch(
            Task::new(move || match ev.kind {
                ControlKind::CreateFile | ControlKind::OpenFile => {
                    let mut ev = ev;
                    if ev.kind == ControlKind::CreateFile {
                        h.on_before_create_file(&mut ev)?;
                    } else {
                        h.on_before_open_file(&mut ev)?;
                    }
                    if ev.isolate || !ev.process_request {
                        // fanotify cannot give one process other content nor let a handler
                        // serve an open: refuse rather than show the real file to a process
                        // meant to see something else.
                        let what = if ev.isolate {
                            "isolation"
                        } else {
                            "serving an open in its handler (process_request = false)"
                        };
                        let e = fsgate_core::Error::from_code(
                            fsgate_core::code::ERROR_NOT_SUPPORTED,
                            format!(
                                "{}: {what} needs the overlay backend (config(\"Backend=Overlay\")); the open is refused",
                                ev.file_name
                            ),
                        );
                        h.on_error(e.code(), &e.to_string());
                        return Err(e);
                    }
                    Ok(())
                }
                ControlKind::ReadFile => h.on_before_read_file(&ev),
                ControlKind::Execute => h.on_before_execute(&ev),
                // Only the overlay refuses these, and it fires no Before event for them here.
                ControlKind::DeleteFile
                | ControlKind::RenameOrMoveFile
                | ControlKind::SetFileSize => Ok(()),
            })
            .key(key)
            .originator(origin)
            .then(move |outcome| {
                let response = match outcome {
                    Outcome::Done(Ok(())) | Outcome::Cancelled => Response::allow(),
                    Outcome::Done(Err(_)) | Outcome::Panicked(_) => Response::deny(),
                    Outcome::TimedOut if deny_expired => Response::deny(),
                    Outcome::TimedOut => Response::allow(),
                };
                let _ = held.answer(response);
            }),
        );
    }
}

/// The reference's `get_originator_*` methods: inside a control event, who made the
/// request; elsewhere error 614.
pub use fsgate_core::originator::{
    get_originator_group_id, get_originator_process_id, get_originator_process_name,
    get_originator_thread_id, get_originator_token, get_originator_user_id,
};
