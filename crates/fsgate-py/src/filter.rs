//! The Python `FileFilter` class (the reference's `CBFilter`) over `fsgate-filter`: access
//! rules the listener enforces itself, control events a Python handler answers while the
//! calling process waits, and the monitor's notifications.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fsgate_filter::filter::{self as rs, FileFilter as RsFilter};
use fsgate_filter::rules::{AccessFlags, ControlFlags, NotifyFlags};
use pyo3::prelude::*;

use crate::error::check;
use crate::filter_events::{Handlers, PyFilterEvents};
use crate::rules::{access_flags, control_flags, notify_flags, qualifiers};

/// The filter's events: the control events, the notifications, the volume events,
/// `on_access_denied` and `on_hydrate_file` (fsgate additions), `on_error` and the worker
/// thread events.
const EVENTS: &[&str] = &[
    "on_before_create_file",
    "on_before_open_file",
    "on_before_read_file",
    "on_before_execute",
    "on_access_denied",
    "on_hydrate_file",
    "on_notify_create_file",
    "on_notify_open_file",
    "on_notify_execute_file",
    "on_notify_read_file",
    "on_notify_write_file",
    "on_notify_set_file_attributes",
    "on_notify_close_file",
    "on_notify_rename_or_move_file",
    "on_notify_delete_file",
    "on_before_filter_attach_to_volume",
    "on_after_filter_attach_to_volume",
    "on_after_filter_detach_from_volume",
    "on_error",
    "on_worker_thread_creation",
    "on_worker_thread_termination",
];

/// The three flag words of a rule, checked.
fn flags(
    py: Python<'_>,
    access: u64,
    control: u64,
    notify: u64,
) -> PyResult<(AccessFlags, ControlFlags, NotifyFlags)> {
    Ok((
        access_flags(py, access)?,
        control_flags(py, control)?,
        notify_flags(py, notify)?,
    ))
}

/// A file filter on whole mounts (fanotify permission events): add rules (`mask`,
/// `ACCESS_*`, `FS_CE_*`, `FS_NE_*` flags), set `on_before_*` / `on_notify_*` handlers,
/// `start_filter()`. The filter's own process is never filtered.
#[pyclass(module = "fsgate._fsgate", name = "FileFilter", subclass)]
pub(crate) struct FileFilter {
    handlers: Arc<Handlers>,
    inner: Arc<RsFilter<PyFilterEvents>>,
    serialize_events: AtomicBool,
}

#[pymethods]
impl FileFilter {
    /// The `on_*` event properties the class offers.
    #[classattr]
    #[allow(non_snake_case)]
    fn EVENTS() -> Vec<&'static str> {
        EVENTS.to_vec()
    }

    #[new]
    fn new() -> Self {
        let handlers = Arc::new(Handlers::default());
        let events = PyFilterEvents::new(Arc::clone(&handlers), "file filter");
        Self {
            handlers,
            inner: Arc::new(RsFilter::new(events)),
            serialize_events: AtomicBool::new(false),
        }
    }

    /// The handler of an event, or `None`.
    fn get_event_hook(&self, py: Python<'_>, event: &str) -> PyResult<Option<Py<PyAny>>> {
        self.handlers.hook(py, EVENTS, event)
    }

    /// Sets (or with `None` removes) the handler of an event.
    fn set_event_hook(
        &self,
        py: Python<'_>,
        event: &str,
        handler: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        self.handlers.set(py, EVENTS, event, handler)
    }

    /// Adds a rule for files matching `mask` (aggregated per mask): `access_flags` are
    /// enforced by the listener without a handler (a denied call fails with `EPERM`),
    /// `control_flags` fire `on_before_*`, `notify_flags` fire `on_notify_*`. Delete and
    /// rename protection and `FS_CE_REPARSE_FILENAME` are served by the overlay backend,
    /// which the filter then picks when it starts (its other events are not offered in
    /// Python yet). Returns True.
    fn add_filter_rule(
        &self,
        py: Python<'_>,
        mask: &str,
        access_flags: u64,
        control_flags: u64,
        notify_flags: u64,
    ) -> PyResult<bool> {
        let (a, c, n) = flags(py, access_flags, control_flags, notify_flags)?;
        check(py, py.detach(|| self.inner.add_filter_rule(mask, a, c, n))).map(|()| true)
    }

    /// `add_filter_rule` for files that also satisfy the qualifiers: size bounds (inclusive,
    /// -1 for none) and attributes they must have and must not have.
    #[pyo3(signature = (mask, access_flags, control_flags, notify_flags, min_size=-1, max_size=-1, include_attributes=0, exclude_attributes=0))]
    #[allow(clippy::too_many_arguments)] // the reference's parameters, one Python argument each
    fn add_filter_rule_ex(
        &self,
        py: Python<'_>,
        mask: &str,
        access_flags: u64,
        control_flags: u64,
        notify_flags: u64,
        min_size: i64,
        max_size: i64,
        include_attributes: u32,
        exclude_attributes: u32,
    ) -> PyResult<bool> {
        let (a, c, n) = flags(py, access_flags, control_flags, notify_flags)?;
        let q = qualifiers(
            py,
            min_size,
            max_size,
            include_attributes,
            exclude_attributes,
        )?;
        check(
            py,
            py.detach(|| self.inner.add_filter_rule_ex(mask, a, c, n, q)),
        )
        .map(|()| true)
    }

    /// Removes flags from the rule with this mask (the rule goes when none are left);
    /// whether it existed.
    fn delete_filter_rule(
        &self,
        py: Python<'_>,
        mask: &str,
        access_flags: u64,
        control_flags: u64,
        notify_flags: u64,
    ) -> PyResult<bool> {
        let (a, c, n) = flags(py, access_flags, control_flags, notify_flags)?;
        Ok(py.detach(|| self.inner.delete_filter_rule(mask, a, c, n)))
    }

    /// Removes every filter and access rule.
    fn delete_all_filter_rules(&self, py: Python<'_>) {
        py.detach(|| self.inner.delete_all_filter_rules());
    }

    /// Files matching `mask` are excluded from these access restrictions and events.
    fn add_passthrough_rule(
        &self,
        py: Python<'_>,
        mask: &str,
        access_flags: u64,
        control_flags: u64,
        notify_flags: u64,
    ) -> PyResult<bool> {
        let (a, c, n) = flags(py, access_flags, control_flags, notify_flags)?;
        check(py, self.inner.add_passthrough_rule(mask, a, c, n)).map(|()| true)
    }

    /// `add_passthrough_rule` with the qualifiers of `add_filter_rule_ex`.
    #[pyo3(signature = (mask, access_flags, control_flags, notify_flags, min_size=-1, max_size=-1, include_attributes=0, exclude_attributes=0))]
    #[allow(clippy::too_many_arguments)] // the reference's parameters, one Python argument each
    fn add_passthrough_rule_ex(
        &self,
        py: Python<'_>,
        mask: &str,
        access_flags: u64,
        control_flags: u64,
        notify_flags: u64,
        min_size: i64,
        max_size: i64,
        include_attributes: u32,
        exclude_attributes: u32,
    ) -> PyResult<bool> {
        let (a, c, n) = flags(py, access_flags, control_flags, notify_flags)?;
        let q = qualifiers(
            py,
            min_size,
            max_size,
            include_attributes,
            exclude_attributes,
        )?;
        check(py, self.inner.add_passthrough_rule_ex(mask, a, c, n, q)).map(|()| true)
    }

    /// Removes a passthrough rule; whether it existed.
    fn delete_passthrough_rule(&self, mask: &str) -> bool {
        self.inner.delete_passthrough_rule(mask)
    }

    /// Removes every passthrough rule.
    fn delete_all_passthrough_rules(&self) {
        self.inner.delete_all_passthrough_rules();
    }

    /// Whether every event fires on one worker thread (set before `start_filter`).
    #[getter]
    fn serialize_events(&self) -> bool {
        self.serialize_events.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_serialize_events(&self, value: bool) {
        self.serialize_events.store(value, Ordering::Relaxed);
        self.inner.set_serialize_events(value);
    }

    /// Starts filtering. `timeout` (milliseconds) is 0 (none) or at least 3000 (else error
    /// 1292); a control event still running when it expires is allowed, or denied with
    /// `config("DenyExpiredEvents=true")`.
    #[pyo3(signature = (timeout=0))]
    fn start_filter(&self, py: Python<'_>, timeout: u32) -> PyResult<()> {
        let inner = &self.inner;
        check(py, py.detach(|| inner.start_filter(timeout)))
    }

    /// Stops filtering: held requests are allowed; handlers still running finish on their
    /// threads, their results ignored.
    fn stop_filter(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        check(py, py.detach(|| inner.stop_filter()))
    }

    /// Whether the filter is running.
    #[getter]
    fn active(&self) -> bool {
        self.inner.active()
    }

    /// Settings (`config("Name=Value")`, `config("Name")`): `DenyExpiredEvents`,
    /// `FilterOwnRequests` (read-only, false), `MinWorkerThreadCount`,
    /// `MaxWorkerThreadCount`, `BuildInfo`, `LicenseInfo`.
    fn config(&self, py: Python<'_>, configuration_string: &str) -> PyResult<String> {
        check(py, self.inner.config(configuration_string))
    }

    /// Creates `file_name` as a placeholder of `size` bytes (a sparse file marked with the
    /// `user.fsgate.placeholder` extended attribute) and serves it: the first access to each
    /// range fires `on_hydrate_file`, whose bytes the reader then gets. The filter must be
    /// running (code 21); a filesystem or kernel without pre-content events (Linux 6.14;
    /// ext4, xfs, btrfs) raises code 50 naming the requirement, and the file is removed.
    fn create_placeholder(&self, py: Python<'_>, file_name: &str, size: u64) -> PyResult<()> {
        let inner = &self.inner;
        check(py, py.detach(|| inner.create_placeholder(file_name, size)))
    }

    /// Serves an existing placeholder (created before a restart); returns its size.
    fn register_placeholder(&self, py: Python<'_>, file_name: &str) -> PyResult<u64> {
        let inner = &self.inner;
        check(py, py.detach(|| inner.register_placeholder(file_name)))
    }

    /// Inside a control event: restarts its timeout with `milliseconds` (error 614
    /// elsewhere).
    fn reset_timeout(&self, py: Python<'_>, milliseconds: u32) -> PyResult<bool> {
        check(py, fsgate_core::dispatch::reset_timeout(milliseconds)).map(|()| true)
    }

    /// Inside a control event: the pid of the process that made the request (error 614
    /// elsewhere).
    fn get_originator_process_id(&self, py: Python<'_>) -> PyResult<u32> {
        check(py, rs::get_originator_process_id())
    }

    /// Inside a control event: the thread that made the request.
    fn get_originator_thread_id(&self, py: Python<'_>) -> PyResult<u32> {
        check(py, rs::get_originator_thread_id())
    }

    /// Inside a control event: the name of the process that made the request.
    fn get_originator_process_name(&self, py: Python<'_>) -> PyResult<String> {
        check(py, rs::get_originator_process_name())
    }

    /// Inside a control event: the effective uid of the request.
    fn get_originator_user_id(&self, py: Python<'_>) -> PyResult<u32> {
        check(py, rs::get_originator_user_id())
    }

    /// Inside a control event: the effective gid of the request.
    fn get_originator_group_id(&self, py: Python<'_>) -> PyResult<u32> {
        check(py, rs::get_originator_group_id())
    }

    /// Inside a control event: the requesting process's credentials as a `Credentials`
    /// object (the reference's token).
    fn get_originator_token(&self, py: Python<'_>) -> PyResult<crate::token::Credentials> {
        check(py, rs::get_originator_token()).map(crate::token::Credentials::from)
    }
}

impl Drop for FileFilter {
    fn drop(&mut self) {
        if self.inner.active() {
            let inner = Arc::clone(&self.inner);
            let _ = Python::try_attach(|py| py.detach(|| inner.stop_filter()));
        }
    }
}

/// Registers the class.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FileFilter>()
}
