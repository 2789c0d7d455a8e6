//! The Python `FileMonitor` class (the reference's `CBMonitor`) over `fsgate-filter`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fsgate_filter::monitor::FileMonitor as RsMonitor;
use pyo3::prelude::*;

use crate::error::check;
use crate::filter_events::{Handlers, PyFilterEvents};
use crate::rules::{notify_flags as notify_flags_of, qualifiers};

/// The monitor's events: one per notification kind (`on_` + the kind's event name), the
/// volume events, `on_error` and the worker thread events.
const EVENTS: &[&str] = &[
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

/// Notifications of file operations on whole mounts (fanotify): add filter rules (`mask`,
/// `FS_NE_*` flags), set `on_notify_*` handlers, `start_filter()`.
#[pyclass(module = "fsgate._fsgate", name = "FileMonitor", subclass)]
pub(crate) struct FileMonitor {
    handlers: Arc<Handlers>,
    inner: Arc<RsMonitor<PyFilterEvents>>,
    serialize_events: AtomicBool,
}

#[pymethods]
impl FileMonitor {
    /// The `on_*` event properties the class offers.
    #[classattr]
    #[allow(non_snake_case)]
    fn EVENTS() -> Vec<&'static str> {
        EVENTS.to_vec()
    }

    #[new]
    fn new() -> Self {
        let handlers = Arc::new(Handlers::default());
        let events = PyFilterEvents::new(Arc::clone(&handlers), "file monitor");
        Self {
            handlers,
            inner: Arc::new(RsMonitor::new(events)),
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

    /// Notifies `notify_flags` events for files matching `mask` (`/data/*.txt`).
    fn add_filter_rule(&self, py: Python<'_>, mask: &str, notify_flags: u64) -> PyResult<()> {
        let flags = notify_flags_of(py, notify_flags)?;
        check(py, self.inner.add_filter_rule(mask, flags))
    }

    /// `add_filter_rule` for files that also satisfy the qualifiers: size bounds (inclusive,
    /// -1 for none) and attributes they must have and must not have
    /// (`FILE_ATTRIBUTE_READONLY`, `_HIDDEN`, `_DIRECTORY`, `_NORMAL`).
    #[pyo3(signature = (mask, notify_flags, min_size=-1, max_size=-1, include_attributes=0, exclude_attributes=0))]
    #[allow(clippy::too_many_arguments)] // the reference's parameters, one Python argument each
    fn add_filter_rule_ex(
        &self,
        py: Python<'_>,
        mask: &str,
        notify_flags: u64,
        min_size: i64,
        max_size: i64,
        include_attributes: u32,
        exclude_attributes: u32,
    ) -> PyResult<()> {
        let flags = notify_flags_of(py, notify_flags)?;
        let q = qualifiers(
            py,
            min_size,
            max_size,
            include_attributes,
            exclude_attributes,
        )?;
        check(py, self.inner.add_filter_rule_ex(mask, flags, q))
    }

    /// Removes flags from a filter rule; whether one was there.
    fn delete_filter_rule(&self, py: Python<'_>, mask: &str, notify_flags: u64) -> PyResult<bool> {
        let flags = notify_flags_of(py, notify_flags)?;
        Ok(self.inner.delete_filter_rule(mask, flags))
    }

    /// Removes every filter rule.
    fn delete_all_filter_rules(&self) {
        self.inner.delete_all_filter_rules();
    }

    /// Files matching `mask` fire none of `notify_flags`.
    fn add_passthrough_rule(&self, py: Python<'_>, mask: &str, notify_flags: u64) -> PyResult<()> {
        let flags = notify_flags_of(py, notify_flags)?;
        check(py, self.inner.add_passthrough_rule(mask, flags))
    }

    /// `add_passthrough_rule` with the qualifiers of `add_filter_rule_ex`.
    #[pyo3(signature = (mask, notify_flags, min_size=-1, max_size=-1, include_attributes=0, exclude_attributes=0))]
    #[allow(clippy::too_many_arguments)] // the reference's parameters, one Python argument each
    fn add_passthrough_rule_ex(
        &self,
        py: Python<'_>,
        mask: &str,
        notify_flags: u64,
        min_size: i64,
        max_size: i64,
        include_attributes: u32,
        exclude_attributes: u32,
    ) -> PyResult<()> {
        let flags = notify_flags_of(py, notify_flags)?;
        let q = qualifiers(
            py,
            min_size,
            max_size,
            include_attributes,
            exclude_attributes,
        )?;
        check(py, self.inner.add_passthrough_rule_ex(mask, flags, q))
    }

    /// Removes a passthrough rule; whether one was there.
    fn delete_passthrough_rule(&self, mask: &str) -> bool {
        self.inner.delete_passthrough_rule(mask)
    }

    /// Removes every passthrough rule.
    fn delete_all_passthrough_rules(&self) {
        self.inner.delete_all_passthrough_rules();
    }

    /// Whether every event fires on one worker thread, in kernel order (set before
    /// `start_filter`).
    #[getter]
    fn serialize_events(&self) -> bool {
        self.serialize_events.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_serialize_events(&self, value: bool) {
        self.serialize_events.store(value, Ordering::Relaxed);
        self.inner.set_serialize_events(value);
    }

    /// Starts the notifications (the GIL is released meanwhile).
    fn start_filter(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        check(py, py.detach(|| inner.start_filter()))
    }

    /// Stops them, waiting for running handlers with the GIL released.
    fn stop_filter(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        check(py, py.detach(|| inner.stop_filter()))
    }

    /// Whether the monitor is running.
    #[getter]
    fn active(&self) -> bool {
        self.inner.active()
    }

    /// Settings (`config("Name=Value")`, `config("Name")`).
    fn config(&self, py: Python<'_>, configuration_string: &str) -> PyResult<String> {
        check(py, self.inner.config(configuration_string))
    }
}

impl Drop for FileMonitor {
    fn drop(&mut self) {
        // Stopping waits for running handlers, which need the GIL this thread may hold.
        if self.inner.active() {
            let inner = Arc::clone(&self.inner);
            let _ = Python::try_attach(|py| py.detach(|| inner.stop_filter()));
        }
    }
}

/// Registers the class.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FileMonitor>()
}
