//! The Python `ProcessFilter` class (the reference's `CBProcess`) over `fsgate-process`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fsgate_core::{code, Error, Result};
use fsgate_process as rs;
use pyo3::prelude::*;

use crate::error::{check, from_handler_exception, from_result_code, to_py};
use crate::hooks::EventParams;
use crate::params::{with_result_code, ErrorParams, WorkerThreadParams};

/// The events a Python process filter can handle. The handle-operation events fire from
/// kernel tracepoints when `EventsToFire` asks for them (see
/// `fsgate_process::HandleOperation`).
const EVENTS: &[&str] = &[
    "on_process_creation",
    "on_process_termination",
    "on_thread_creation",
    "on_thread_termination",
    "on_process_handle_operation",
    "on_thread_handle_operation",
    "on_error",
    "on_worker_thread_creation",
    "on_worker_thread_termination",
];

/// `on_process_creation`: a program image starts (or, under exec control, is about to;
/// `result_code` then refuses it).
#[pyclass(module = "fsgate", name = "ProcessCreationParams")]
pub(crate) struct ProcessCreationParams {
    /// The process running the new image.
    #[pyo3(get)]
    process_id: u32,
    /// Its parent.
    #[pyo3(get)]
    parent_process_id: u32,
    /// The process whose fork created it.
    #[pyo3(get)]
    creating_process_id: u32,
    /// The thread that forked (0 if before the filter started).
    #[pyo3(get)]
    creating_thread_id: u32,
    /// The full path of the image now running.
    #[pyo3(get)]
    process_name: String,
    /// The image file the exec opened.
    #[pyo3(get)]
    image_file_name: String,
    /// Whether `image_file_name` is a full path.
    #[pyo3(get)]
    file_open_name_available: bool,
    /// The command line (with `track_command_line`).
    #[pyo3(get)]
    command_line: String,
    /// Non-zero refuses the exec under exec control; ignored for notifications.
    #[pyo3(get, set)]
    result_code: i64,
}

/// `on_process_termination`: a process ended.
#[pyclass(module = "fsgate", name = "ProcessTerminationParams")]
pub(crate) struct ProcessTerminationParams {
    /// The process that ended.
    #[pyo3(get)]
    process_id: u32,
    /// The image it was running.
    #[pyo3(get)]
    process_name: String,
    /// Ignored (nothing to refuse).
    #[pyo3(get, set)]
    result_code: i64,
}

/// `on_thread_creation`: a process created a thread.
#[pyclass(module = "fsgate", name = "ThreadCreationParams")]
pub(crate) struct ThreadCreationParams {
    /// The thread's process.
    #[pyo3(get)]
    process_id: u32,
    /// The new thread.
    #[pyo3(get)]
    thread_id: u32,
    /// The creating process.
    #[pyo3(get)]
    creating_process_id: u32,
    /// The creating thread.
    #[pyo3(get)]
    creating_thread_id: u32,
    /// Ignored (nothing to refuse).
    #[pyo3(get, set)]
    result_code: i64,
}

/// `on_thread_termination`: a thread other than the main one exited.
#[pyclass(module = "fsgate", name = "ThreadTerminationParams")]
pub(crate) struct ThreadTerminationParams {
    /// The thread's process.
    #[pyo3(get)]
    process_id: u32,
    /// The thread.
    #[pyo3(get)]
    thread_id: u32,
    /// Ignored.
    #[pyo3(get, set)]
    result_code: i64,
}

/// `on_process_handle_operation` / `on_thread_handle_operation`: a signal, `ptrace`
/// request, memory access or descriptor copy aimed at a process or thread, after its system
/// call returned. Lowering `desired_access` cannot take back what happened: it is reported
/// through `on_error` with code 50.
#[pyclass(module = "fsgate", name = "HandleOperationParams")]
pub(crate) struct HandleOperationParams {
    /// Whether a descriptor was copied out of the process (`pidfd_getfd`).
    #[pyo3(get)]
    duplication: bool,
    /// The process acted on.
    #[pyo3(get)]
    process_id: u32,
    /// The thread acted on (thread operations; else 0).
    #[pyo3(get)]
    thread_id: u32,
    /// The process that made the call.
    #[pyo3(get)]
    originator_process_id: u32,
    /// The thread that made the call.
    #[pyo3(get)]
    originator_thread_id: u32,
    /// For a duplication, the process the descriptor came from.
    #[pyo3(get)]
    source_process_id: u32,
    /// For a duplication, the process that received it.
    #[pyo3(get)]
    target_process_id: u32,
    /// The access the operation asked for (the reference's `PROCESS_*`/`THREAD_*` bits).
    #[pyo3(get)]
    original_desired_access: u32,
    /// The access it got: the asked access when the call succeeded, 0 when it failed.
    #[pyo3(get, set)]
    desired_access: u32,
    /// Ignored.
    #[pyo3(get, set)]
    result_code: i64,
}

with_result_code!(
    ProcessCreationParams,
    ProcessTerminationParams,
    ThreadCreationParams,
    ThreadTerminationParams,
    HandleOperationParams,
);

/// The handlers of one filter, shared with its events.
#[derive(Default)]
struct Handlers(Mutex<HashMap<&'static str, Arc<Py<PyAny>>>>);

impl Handlers {
    fn get(&self, event: &str) -> Option<Arc<Py<PyAny>>> {
        self.0.lock().ok()?.get(event).cloned()
    }
}

/// The filter's events, each answered by the Python handler set for it.
struct PyProcessEvents {
    handlers: Arc<Handlers>,
}

impl PyProcessEvents {
    /// Calls the handler of `event` with `params`; an exception fails it as
    /// [`Self::exception`] says; a non-zero `result_code` is that code's error. Unset: `Ok`, without
    /// attaching to the interpreter.
    fn fire<P: EventParams>(&self, event: &'static str, params: impl FnOnce() -> P) -> Result<()> {
        let Some(handler) = self.handlers.get(event) else {
            return Ok(());
        };
        crate::attach::attach(|py| {
            let fail = |e: PyErr| self.exception(py, event, e);
            let object = Bound::new(py, params()).map_err(fail)?;
            handler.call1(py, (object.clone(),)).map_err(fail)?;
            let code = object
                .try_borrow()
                .map_err(|e| fail(e.into()))?
                .result_code();
            from_result_code(code, event)
        })
    }

    /// The error an exception in the handler of `event` fails the request with (see
    /// [`from_handler_exception`]); an unexpected one is reported through `on_error`.
    fn exception(&self, py: Python<'_>, event: &str, e: PyErr) -> Error {
        let (error, unexpected) = from_handler_exception(py, event, &e);
        if unexpected {
            let text = error.message().to_string();
            self.report(py, code::ERROR_GEN_FAILURE, &text, Some(e));
        }
        error
    }

    fn report(&self, py: Python<'_>, error_code: u32, description: &str, e: Option<PyErr>) {
        match self.handlers.get("on_error") {
            Some(handler) => {
                if let Err(e) = handler.call1(py, (ErrorParams::new(error_code, description),)) {
                    e.write_unraisable(py, None);
                }
            }
            None => match e {
                Some(e) => e.display(py),
                None => eprintln!("fsgate: process filter error {error_code}: {description}"),
            },
        }
    }

    fn thread_event(&self, event: &'static str) {
        if let Some(handler) = self.handlers.get(event) {
            crate::attach::attach(|py| {
                if let Err(e) = handler.call1(py, (WorkerThreadParams {},)) {
                    self.report(
                        py,
                        code::ERROR_GEN_FAILURE,
                        &format!("{event} raised {e}"),
                        Some(e),
                    );
                }
            });
        }
    }
}

impl rs::ProcessEvents for PyProcessEvents {
    fn on_process_creation(&self, e: &mut rs::ProcessCreation) -> Result<()> {
        self.fire("on_process_creation", || ProcessCreationParams {
            process_id: e.process_id,
            parent_process_id: e.parent_process_id,
            creating_process_id: e.creating_process_id,
            creating_thread_id: e.creating_thread_id,
            process_name: e.process_name.clone(),
            image_file_name: e.image_file_name.clone(),
            file_open_name_available: e.file_open_name_available,
            command_line: e.command_line.clone(),
            result_code: 0,
        })
    }

    fn on_process_termination(&self, e: &rs::ProcessTermination) -> Result<()> {
        self.fire("on_process_termination", || ProcessTerminationParams {
            process_id: e.process_id,
            process_name: e.process_name.clone(),
            result_code: 0,
        })
    }

    fn on_thread_creation(&self, e: &rs::ThreadCreation) -> Result<()> {
        self.fire("on_thread_creation", || ThreadCreationParams {
            process_id: e.process_id,
            thread_id: e.thread_id,
            creating_process_id: e.creating_process_id,
            creating_thread_id: e.creating_thread_id,
            result_code: 0,
        })
    }

    fn on_thread_termination(&self, e: &rs::ThreadTermination) -> Result<()> {
        self.fire("on_thread_termination", || ThreadTerminationParams {
            process_id: e.process_id,
            thread_id: e.thread_id,
            result_code: 0,
        })
    }

    fn on_process_handle_operation(&self, e: &mut rs::HandleOperation) -> Result<()> {
        self.handle_operation("on_process_handle_operation", e)
    }

    fn on_thread_handle_operation(&self, e: &mut rs::HandleOperation) -> Result<()> {
        self.handle_operation("on_thread_handle_operation", e)
    }
}

impl PyProcessEvents {
    /// Fires a handle operation event and hands back the `desired_access` the handler left.
    fn handle_operation(&self, event: &'static str, e: &mut rs::HandleOperation) -> Result<()> {
        let Some(handler) = self.handlers.get(event) else {
            return Ok(());
        };
        crate::attach::attach(|py| {
            let fail = |e: PyErr| self.exception(py, event, e);
            let params = HandleOperationParams {
                duplication: e.duplication,
                process_id: e.process_id,
                thread_id: e.thread_id,
                originator_process_id: e.originator_process_id,
                originator_thread_id: e.originator_thread_id,
                source_process_id: e.source_process_id,
                target_process_id: e.target_process_id,
                original_desired_access: e.original_desired_access,
                desired_access: e.desired_access,
                result_code: 0,
            };
            let object = Bound::new(py, params).map_err(fail)?;
            handler.call1(py, (object.clone(),)).map_err(fail)?;
            e.desired_access = object
                .try_borrow()
                .map_err(|err| fail(err.into()))?
                .desired_access;
            Ok(())
        })
    }
}

impl fsgate_core::dispatch::Hooks for PyProcessEvents {
    fn on_worker_thread_creation(&self) {
        self.thread_event("on_worker_thread_creation");
    }

    fn on_worker_thread_termination(&self) {
        self.thread_event("on_worker_thread_termination");
        crate::attach::release_thread_state();
    }

    fn on_error(&self, error_code: u32, description: &str) {
        if self.handlers.get("on_error").is_some() {
            crate::attach::attach(|py| self.report(py, error_code, description, None));
        } else {
            eprintln!("fsgate: process filter error {error_code}: {description}");
        }
    }
}

/// Process and thread events from the kernel: `initialize(product_guid)`, set `on_*`
/// handlers, `start_filter`, then choose the processes (`add_filtered_process_by_id(-1,
/// True)` for all).
#[pyclass(module = "fsgate._fsgate", name = "ProcessFilter", subclass)]
pub(crate) struct ProcessFilter {
    handlers: Arc<Handlers>,
    inner: Arc<rs::ProcessFilter>,
}

#[pymethods]
impl ProcessFilter {
    /// The `on_*` event properties the class offers.
    #[classattr]
    #[allow(non_snake_case)]
    fn EVENTS() -> Vec<&'static str> {
        EVENTS.to_vec()
    }

    #[new]
    fn new() -> Self {
        let handlers = Arc::new(Handlers::default());
        let events = PyProcessEvents {
            handlers: Arc::clone(&handlers),
        };
        Self {
            handlers,
            inner: Arc::new(rs::ProcessFilter::new(Arc::new(events))),
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

    /// Checks that fsgate is installed for `product_guid`.
    fn initialize(&self, py: Python<'_>, product_guid: &str) -> PyResult<()> {
        check(py, self.inner.initialize(product_guid))
    }

    /// Installs fsgate's system files from a package (`build_package`).
    #[pyo3(signature = (cab_file_name, product_guid, path_to_install = "", flags = 0))]
    fn install(
        &self,
        py: Python<'_>,
        cab_file_name: &str,
        product_guid: &str,
        path_to_install: &str,
        flags: u32,
    ) -> PyResult<bool> {
        let inner = &self.inner;
        check(
            py,
            py.detach(|| {
                inner.install(
                    std::path::Path::new(cab_file_name),
                    product_guid,
                    path_to_install,
                    flags,
                )
            }),
        )
    }

    /// Removes fsgate's system files a package installed; whether a reboot is needed.
    #[pyo3(signature = (cab_file_name, product_guid, installed_path = "", flags = 0))]
    fn uninstall(
        &self,
        py: Python<'_>,
        cab_file_name: &str,
        product_guid: &str,
        installed_path: &str,
        flags: u32,
    ) -> PyResult<bool> {
        let inner = &self.inner;
        check(
            py,
            py.detach(|| {
                inner.uninstall(
                    std::path::Path::new(cab_file_name),
                    product_guid,
                    installed_path,
                    flags,
                )
            }),
        )
    }

    /// 0 not present, 1 stopped, 4 running.
    fn get_driver_status(&self, py: Python<'_>, product_guid: &str) -> PyResult<u32> {
        check(py, self.inner.get_driver_status(product_guid))
    }

    /// The installed version, four 16-bit parts in 64 bits; 0 when not installed.
    fn get_driver_version(&self, py: Python<'_>, product_guid: &str) -> PyResult<u64> {
        check(py, self.inner.get_driver_version(product_guid))
    }

    /// The altitude (decimal digits): kept and reported only, since Linux has no filter
    /// stack for process events to order.
    #[getter]
    fn altitude(&self) -> String {
        self.inner.altitude()
    }
    #[setter]
    fn set_altitude(&self, py: Python<'_>, value: &str) -> PyResult<()> {
        check(py, self.inner.set_altitude(value))
    }

    /// `strict_altitude`: kept and reported; never fails a start.
    #[getter]
    fn strict_altitude(&self) -> bool {
        self.inner.strict_altitude()
    }
    #[setter]
    fn set_strict_altitude(&self, value: bool) {
        self.inner.set_strict_altitude(value);
    }

    /// Whether every event fires on one worker thread; error 1230 when set while active.
    #[getter]
    fn serialize_events(&self) -> bool {
        self.inner.serialize_events()
    }
    #[setter]
    fn set_serialize_events(&self, py: Python<'_>, value: bool) -> PyResult<()> {
        check(py, self.inner.set_serialize_events(value))
    }

    /// Inside a handler: the credentials of the process whose operation fired it, a
    /// `Credentials` object (the reference's token).
    fn get_originator_token(&self, py: Python<'_>) -> PyResult<crate::token::Credentials> {
        check(py, self.inner.get_originator_token()).map(crate::token::Credentials::from)
    }

    /// Attaches to the kernel and starts firing events; `timeout` (ms) bounds how long a
    /// handler may hold an exec (0 or ≥ 3000).
    #[pyo3(signature = (timeout = 0))]
    fn start_filter(&self, py: Python<'_>, timeout: u32) -> PyResult<()> {
        let inner = &self.inner;
        check(py, py.detach(|| inner.start_filter(timeout)))
    }

    /// Stops the events (waits for running handlers with the GIL released).
    fn stop_filter(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &self.inner;
        check(py, py.detach(|| inner.stop_filter()))
    }

    /// Whether the filter is started.
    #[getter]
    fn active(&self) -> bool {
        self.inner.active()
    }

    /// Fire events for `process_id` (-1: every process), and its descendants.
    #[pyo3(signature = (process_id, include_children = false))]
    fn add_filtered_process_by_id(
        &self,
        py: Python<'_>,
        process_id: i64,
        include_children: bool,
    ) -> PyResult<()> {
        check(
            py,
            self.inner
                .add_filtered_process_by_id(process_id, include_children),
        )
    }

    /// Never fire events for `process_id` (-1: every process), and its descendants.
    #[pyo3(signature = (process_id, include_children = false))]
    fn add_ignored_process_by_id(
        &self,
        py: Python<'_>,
        process_id: i64,
        include_children: bool,
    ) -> PyResult<()> {
        check(
            py,
            self.inner
                .add_ignored_process_by_id(process_id, include_children),
        )
    }

    /// Removes a filtered-process rule.
    fn remove_filtered_process_by_id(&self, py: Python<'_>, process_id: i64) -> PyResult<()> {
        check(py, self.inner.remove_filtered_process_by_id(process_id))
    }

    /// Removes an ignored-process rule.
    fn remove_ignored_process_by_id(&self, py: Python<'_>, process_id: i64) -> PyResult<()> {
        check(py, self.inner.remove_ignored_process_by_id(process_id))
    }

    /// Fire events for processes whose image matches `process_name` (`*`, `?` allowed).
    #[pyo3(signature = (process_name, include_children = false))]
    fn add_filtered_process_by_name(
        &self,
        py: Python<'_>,
        process_name: &str,
        include_children: bool,
    ) -> PyResult<()> {
        check(
            py,
            self.inner
                .add_filtered_process_by_name(process_name, include_children),
        )
    }

    /// Never fire events for processes whose image matches `process_name`.
    #[pyo3(signature = (process_name, include_children = false))]
    fn add_ignored_process_by_name(
        &self,
        py: Python<'_>,
        process_name: &str,
        include_children: bool,
    ) -> PyResult<()> {
        check(
            py,
            self.inner
                .add_ignored_process_by_name(process_name, include_children),
        )
    }

    /// Removes a filtered-name rule.
    fn remove_filtered_process_by_name(&self, py: Python<'_>, process_name: &str) -> PyResult<()> {
        check(py, self.inner.remove_filtered_process_by_name(process_name))
    }

    /// Removes an ignored-name rule.
    fn remove_ignored_process_by_name(&self, py: Python<'_>, process_name: &str) -> PyResult<()> {
        check(py, self.inner.remove_ignored_process_by_name(process_name))
    }

    /// Puts the mount holding `path` under exec control (`on_process_creation` can refuse).
    fn add_controlled_exec_path(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        check(py, self.inner.add_controlled_exec_path(path))
    }

    /// The full path of the image `process_id` runs.
    fn get_process_name(&self, process_id: u32) -> String {
        self.inner.get_process_name(process_id)
    }

    /// Takes a snapshot of the running processes (`get_running_process_*`).
    fn create_running_processes_snapshot(&self, py: Python<'_>) -> PyResult<()> {
        check(py, self.inner.create_running_processes_snapshot())
    }

    /// Drops the snapshot.
    fn close_running_processes_snapshot(&self, py: Python<'_>) -> PyResult<()> {
        check(py, self.inner.close_running_processes_snapshot())
    }

    /// Number of processes in the snapshot.
    fn get_running_process_count(&self) -> usize {
        self.inner.running_process_count()
    }

    /// The pid of snapshot entry `running_process_index`.
    fn get_running_process_process_id(&self, running_process_index: usize) -> Option<u32> {
        self.inner.running_process_process_id(running_process_index)
    }

    /// The image of snapshot entry `running_process_index`.
    fn get_running_process_process_name(&self, running_process_index: usize) -> Option<String> {
        self.inner
            .running_process_process_name(running_process_index)
    }

    /// The command line of snapshot entry `running_process_index`.
    fn get_running_process_command_line(&self, running_process_index: usize) -> Option<String> {
        self.inner
            .running_process_command_line(running_process_index)
    }

    /// `TrackCommandLine`: fill `command_line` in the events.
    #[getter]
    fn track_command_line(&self) -> bool {
        self.inner.track_command_line()
    }
    #[setter]
    fn set_track_command_line(&self, py: Python<'_>, value: bool) -> PyResult<()> {
        check(py, self.inner.set_track_command_line(value))
    }

    /// Application-defined data.
    #[getter]
    fn tag(&self) -> i64 {
        self.inner.tag()
    }
    #[setter]
    fn set_tag(&self, value: i64) {
        self.inner.set_tag(value);
    }

    /// Settings (`config("Name=Value")`, `config("Name")`).
    fn config(&self, py: Python<'_>, configuration_string: &str) -> PyResult<String> {
        check(py, self.inner.config(configuration_string))
    }

    /// Inside a handler: restarts its deadline.
    fn reset_timeout(&self, py: Python<'_>, timeout: u32) -> PyResult<bool> {
        check(py, self.inner.reset_timeout(timeout)).map(|()| true)
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

impl Drop for ProcessFilter {
    fn drop(&mut self) {
        // Stopping waits for running handlers, which need the GIL this thread may hold.
        if self.inner.active() {
            let inner = Arc::clone(&self.inner);
            let _ = Python::try_attach(|py| py.detach(|| inner.stop_filter()));
        }
    }
}

/// Registers the class and its params with the reference's names as aliases.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ProcessFilter>()?;
    for (class, alias) in [
        (
            m.py().get_type::<ProcessCreationParams>(),
            "CBProcessProcessCreationEventParams",
        ),
        (
            m.py().get_type::<ProcessTerminationParams>(),
            "CBProcessProcessTerminationEventParams",
        ),
        (
            m.py().get_type::<ThreadCreationParams>(),
            "CBProcessThreadCreationEventParams",
        ),
        (
            m.py().get_type::<ThreadTerminationParams>(),
            "CBProcessThreadTerminationEventParams",
        ),
        (
            m.py().get_type::<HandleOperationParams>(),
            "CBProcessProcessHandleOperationEventParams",
        ),
        (
            m.py().get_type::<ErrorParams>(),
            "CBProcessErrorEventParams",
        ),
    ] {
        m.add(class.name()?.to_string(), &class)?;
        m.add(alias, class)?;
    }
    Ok(())
}
