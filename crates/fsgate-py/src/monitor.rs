//! The Python `FileMonitor` class (the reference's `CBMonitor`) over `fsgate-filter`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fsgate_core::{code, Error, Result};
use fsgate_filter::events::{MonitorEvents, NotifyEvent};
use fsgate_filter::monitor::FileMonitor as RsMonitor;
use fsgate_filter::rules::NotifyFlags;
use pyo3::prelude::*;

use crate::error::{check, to_py};
use crate::params::ErrorParams;

/// The monitor's events: one per notification kind (`on_` + the kind's event name), and
/// `on_error`.
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
    "on_error",
];

/// Every `on_notify_*` event's params: what happened to which file, and who did it.
#[pyclass(module = "fsgate", name = "NotifyParams")]
pub(crate) struct NotifyParams {
    /// The full path (`ID|<hex>` when it no longer resolves).
    #[pyo3(get)]
    file_name: String,
    /// The new path of a rename; `None` otherwise.
    #[pyo3(get)]
    new_file_name: Option<String>,
    /// Whether the object is a directory.
    #[pyo3(get)]
    directory: bool,
    /// For close: whether the handle had been opened for writing.
    #[pyo3(get)]
    modified: bool,
    /// The process that did it.
    #[pyo3(get)]
    process_id: u32,
    /// Its name (empty once it exited).
    #[pyo3(get)]
    process_name: String,
    /// Its real uid (`None` once it exited).
    #[pyo3(get)]
    user_id: Option<u32>,
    /// Ignored: the operation already happened.
    #[pyo3(get, set)]
    result_code: i64,
}

/// The handlers of one monitor, shared with its events.
#[derive(Default)]
struct Handlers(Mutex<HashMap<&'static str, Arc<Py<PyAny>>>>);

impl Handlers {
    fn get(&self, event: &str) -> Option<Arc<Py<PyAny>>> {
        self.0.lock().ok()?.get(event).cloned()
    }
}

struct PyMonitorEvents {
    handlers: Arc<Handlers>,
}

impl PyMonitorEvents {
    fn report(&self, py: Python<'_>, error_code: u32, description: &str, e: Option<PyErr>) {
        match self.handlers.get("on_error") {
            Some(handler) => {
                if let Err(e) = handler.call1(py, (ErrorParams::new(error_code, description),)) {
                    e.write_unraisable(py, None);
                }
            }
            None => match e {
                Some(e) => e.display(py),
                None => eprintln!("fsgate: file monitor error {error_code}: {description}"),
            },
        }
    }
}

impl MonitorEvents for PyMonitorEvents {
    fn on_notify(&self, e: &NotifyEvent) -> Result<()> {
        let name = format!("on_{}", e.kind.event_name());
        let Some(handler) = self.handlers.get(&name) else {
            return Ok(());
        };
        crate::attach::attach(|py| {
            let params = NotifyParams {
                file_name: e.file_name.clone(),
                new_file_name: e.new_file_name.clone(),
                directory: e.directory,
                modified: e.modified,
                process_id: e.process_id,
                process_name: e.process_name.clone(),
                user_id: e.user_id,
                result_code: 0,
            };
            match handler.call1(py, (params,)) {
                Ok(_) => Ok(()),
                Err(err) => {
                    let text = format!("{name} raised {err}");
                    self.report(py, code::ERROR_GEN_FAILURE, &text, Some(err));
                    Err(Error::from_errno(libc::EIO, text))
                }
            }
        })
    }
}

impl fsgate_core::dispatch::Hooks for PyMonitorEvents {
    fn on_worker_thread_termination(&self) {
        crate::attach::release_thread_state();
    }

    fn on_error(&self, error_code: u32, description: &str) {
        if self.handlers.get("on_error").is_some() {
            crate::attach::attach(|py| self.report(py, error_code, description, None));
        } else {
            eprintln!("fsgate: file monitor error {error_code}: {description}");
        }
    }
}

/// Notifications of file operations on whole mounts (fanotify): add filter rules (`mask`,
/// `FS_NE_*` flags), set `on_notify_*` handlers, `start_filter()`.
#[pyclass(module = "fsgate._fsgate", name = "FileMonitor", subclass)]
pub(crate) struct FileMonitor {
    handlers: Arc<Handlers>,
    inner: Arc<RsMonitor<PyMonitorEvents>>,
}

/// `flags` as notification flags, or `ERROR_INVALID_PARAMETER` naming the unknown bits.
fn to_notify_flags(py: Python<'_>, flags: u64) -> PyResult<NotifyFlags> {
    NotifyFlags::from_bits(flags).ok_or_else(|| {
        let e = Error::invalid_argument("notify_flags", format!("unknown bits in {flags:#x}"));
        to_py(py, &e)
    })
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
        let events = PyMonitorEvents {
            handlers: Arc::clone(&handlers),
        };
        Self {
            handlers,
            inner: Arc::new(RsMonitor::new(events)),
        }
    }

    /// The handler of an event, or `None`.
    fn get_event_hook(&self, py: Python<'_>, event: &str) -> PyResult<Option<Py<PyAny>>> {
        let name = event_name(py, event)?;
        Ok(self.handlers.get(name).map(|h| h.clone_ref(py)))
    }

    /// Sets (or with `None` removes) the handler of an event.
    fn set_event_hook(
        &self,
        py: Python<'_>,
        event: &str,
        handler: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let name = event_name(py, event)?;
        let handler = handler.filter(|h| !h.is_none(py));
        if handler.as_ref().is_some_and(|h| !h.bind(py).is_callable()) {
            let e = Error::invalid_argument(name, "the handler must be callable (or None)");
            return Err(to_py(py, &e));
        }
        let mut slots = self.handlers.0.lock().map_err(|_| {
            to_py(
                py,
                &Error::from_code(code::ERROR_INTERNAL_ERROR, "handlers poisoned"),
            )
        })?;
        match handler {
            Some(h) => slots.insert(name, Arc::new(h)),
            None => slots.remove(name),
        };
        Ok(())
    }

    /// Notifies `notify_flags` events for files matching `mask` (`/data/*.txt`).
    fn add_filter_rule(&self, py: Python<'_>, mask: &str, notify_flags: u64) -> PyResult<()> {
        let flags = to_notify_flags(py, notify_flags)?;
        check(py, self.inner.add_filter_rule(mask, flags))
    }

    /// Removes a filter rule; whether one was there.
    fn delete_filter_rule(&self, py: Python<'_>, mask: &str, notify_flags: u64) -> PyResult<bool> {
        let flags = to_notify_flags(py, notify_flags)?;
        Ok(self.inner.delete_filter_rule(mask, flags))
    }

    /// Removes every filter rule.
    fn delete_all_filter_rules(&self) {
        self.inner.delete_all_filter_rules();
    }

    /// Files matching `mask` fire none of `notify_flags`.
    fn add_passthrough_rule(&self, py: Python<'_>, mask: &str, notify_flags: u64) -> PyResult<()> {
        let flags = to_notify_flags(py, notify_flags)?;
        check(py, self.inner.add_passthrough_rule(mask, flags))
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

/// `event` as one of [`EVENTS`], or `ERROR_INVALID_PARAMETER` naming it.
fn event_name(py: Python<'_>, event: &str) -> PyResult<&'static str> {
    EVENTS.iter().copied().find(|e| *e == event).ok_or_else(|| {
        to_py(
            py,
            &Error::invalid_argument("event", format!("no event named {event}")),
        )
    })
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

/// Registers the class, its params and the reference's names.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FileMonitor>()?;
    m.add_class::<NotifyParams>()?;
    let params = m.py().get_type::<NotifyParams>();
    for kind in [
        "CreateFile",
        "OpenFile",
        "ExecuteFile",
        "ReadFile",
        "WriteFile",
        "SetFileAttributes",
        "CloseFile",
        "RenameOrMoveFile",
        "DeleteFile",
    ] {
        m.add(format!("CBMonitorNotify{kind}EventParams"), &params)?;
    }
    m.add(
        "CBMonitorErrorEventParams",
        m.py().get_type::<ErrorParams>(),
    )?;
    Ok(())
}
