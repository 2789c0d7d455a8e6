//! The events the file monitor and the file filter share: each answered by the Python
//! handler set for it, with its params classes (notifications, control events, volumes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fsgate_core::{code, Error, Result};
use fsgate_filter::events::{
    AttachToVolume, ControlEvent, FilterEvents, HydrateFile, MonitorEvents, NotifyEvent, NotifyKind,
};
use fsgate_filter::volumes::Volume;
use pyo3::prelude::*;

use crate::buffer::with_writable_view;
use crate::error::{from_handler_exception, from_result_code, to_py};
use crate::params::{ErrorParams, WorkerThreadParams};

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

/// The params of the control events (`on_before_create_file`, `on_before_open_file`,
/// `on_before_read_file`, `on_before_execute`) and of `on_access_denied`: the request the
/// calling process waits on. A non-zero `result_code` (or an exception) denies it.
#[pyclass(module = "fsgate", name = "ControlParams")]
pub(crate) struct ControlParams {
    /// The full path of the file.
    #[pyo3(get)]
    file_name: String,
    /// The process that made the request.
    #[pyo3(get)]
    process_id: u32,
    /// Its thread that made it.
    #[pyo3(get)]
    thread_id: u32,
    /// Its name (`/proc/<pid>/comm`).
    #[pyo3(get)]
    process_name: String,
    /// For opens: read access was asked for.
    #[pyo3(get)]
    read_access: bool,
    /// For opens: write access (or truncation) was asked for.
    #[pyo3(get)]
    write_access: bool,
    /// 0 allows; any other code denies (the caller gets `EPERM`, the one errno a fanotify
    /// content filter can answer with). Ignored in `on_access_denied`.
    #[pyo3(get, set)]
    result_code: i64,
    /// `Isolate` (create and open, overlay backend): set it to give this open its own view
    /// of the file, served from `backend_file_name`. On the fanotify backend such an open is
    /// refused.
    #[pyo3(get, set)]
    isolate: bool,
    /// `BackendFileName` (with `isolate`): the file itself (the default), another file's
    /// full path, or empty (the events provide everything).
    #[pyo3(get, set)]
    backend_file_name: String,
    /// `ProcessRequest` (create and open, overlay backend): False serves the open in the
    /// handler (nothing reaches the directory; the events serve the open's requests). On
    /// the fanotify backend such an open is refused.
    #[pyo3(get, set)]
    process_request: bool,
}

#[pymethods]
impl ControlParams {
    /// The reference's `desired_access` of an open, from the two flags above:
    /// `FILE_READ_DATA` (1) and `FILE_WRITE_DATA` (2), as the virtual drive's create and
    /// open events report it.
    #[getter]
    fn desired_access(&self) -> u32 {
        u32::from(self.read_access) | (u32::from(self.write_access) << 1)
    }
}

impl ControlParams {
    fn new(e: &ControlEvent) -> Self {
        Self {
            file_name: e.file_name.clone(),
            process_id: e.process_id,
            thread_id: e.thread_id,
            process_name: e.process_name.clone(),
            read_access: e.read_access,
            write_access: e.write_access,
            result_code: 0,
            isolate: e.isolate,
            backend_file_name: e.backend_file_name.clone(),
            process_request: e.process_request,
        }
    }
}

/// The params of `on_hydrate_file` (fsgate addition): a process reads a range of a
/// placeholder that is not filled yet; put the range's bytes into `buffer`.
#[pyclass(module = "fsgate", name = "HydrateFileParams")]
pub(crate) struct HydrateFileParams {
    /// The placeholder's full path.
    #[pyo3(get)]
    file_name: String,
    /// Where the range starts in the file.
    #[pyo3(get)]
    offset: u64,
    /// The placeholder's final size.
    #[pyo3(get)]
    file_size: u64,
    /// The process whose access needs the data.
    #[pyo3(get)]
    process_id: u32,
    /// A writable `memoryview` of the range's length, zeroed: fill it. Released when the
    /// handler returns (copy slices you keep).
    #[pyo3(get)]
    buffer: Py<PyAny>,
    /// Non-zero fails the reader's call with that code's errno where the kernel lets a
    /// filter choose it (`ENOSPC`, `EIO`, `EPERM`, …; `EIO` otherwise).
    #[pyo3(get, set)]
    result_code: i64,
}

/// The params of the volume events: a mount the class attaches to or detaches from.
#[pyclass(module = "fsgate", name = "VolumeParams")]
pub(crate) struct VolumeParams {
    /// Where the volume is mounted (the reference's volume name).
    #[pyo3(get)]
    volume_name: String,
    /// Its filesystem type (`ext4`, `tmpfs`, …).
    #[pyo3(get)]
    file_system: String,
    /// Its mount source (`/dev/loop3`, `tmpfs`, …).
    #[pyo3(get)]
    source: String,
    /// The kernel's mount id.
    #[pyo3(get)]
    mount_id: u64,
    /// In `on_before_filter_attach_to_volume`: set to leave this volume alone.
    #[pyo3(get, set)]
    skip_volume: bool,
}

impl VolumeParams {
    fn new(v: &Volume) -> Self {
        Self {
            volume_name: v.mount_point.display().to_string(),
            file_system: v.fs_type.clone(),
            source: v.source.clone(),
            mount_id: v.mount_id,
            skip_volume: false,
        }
    }
}

/// The handlers of one monitor or filter, shared with its events.
#[derive(Default)]
pub(crate) struct Handlers(Mutex<HashMap<&'static str, Arc<Py<PyAny>>>>);

impl Handlers {
    fn get(&self, event: &str) -> Option<Arc<Py<PyAny>>> {
        self.0.lock().ok()?.get(event).cloned()
    }

    /// The handler of `event` (one of `events`), or `None`.
    pub(crate) fn hook(
        &self,
        py: Python<'_>,
        events: &[&'static str],
        event: &str,
    ) -> PyResult<Option<Py<PyAny>>> {
        let name = event_name(py, events, event)?;
        Ok(self.get(name).map(|h| h.clone_ref(py)))
    }

    /// Sets (or with `None` removes) the handler of `event` (one of `events`).
    pub(crate) fn set(
        &self,
        py: Python<'_>,
        events: &[&'static str],
        event: &str,
        handler: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let name = event_name(py, events, event)?;
        let handler = handler.filter(|h| !h.is_none(py));
        if handler.as_ref().is_some_and(|h| !h.bind(py).is_callable()) {
            let e = Error::invalid_argument(name, "the handler must be callable (or None)");
            return Err(to_py(py, &e));
        }
        let mut slots = self.0.lock().map_err(|_| {
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
}

/// `event` as one of `events`, or `ERROR_INVALID_PARAMETER` naming it.
fn event_name(py: Python<'_>, events: &[&'static str], event: &str) -> PyResult<&'static str> {
    events.iter().copied().find(|e| *e == event).ok_or_else(|| {
        to_py(
            py,
            &Error::invalid_argument("event", format!("no event named {event}")),
        )
    })
}

/// The Rust events of a Python monitor or filter: each fires the Python handler set for it;
/// an unset one does the Rust default without attaching to the interpreter.
pub(crate) struct PyFilterEvents {
    pub(crate) handlers: Arc<Handlers>,
    /// The class, for errors printed without an `on_error` handler.
    class: &'static str,
}

impl PyFilterEvents {
    /// Events answered by `handlers`; `class` names the class in errors printed to stderr.
    pub(crate) fn new(handlers: Arc<Handlers>, class: &'static str) -> Self {
        Self { handlers, class }
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
                None => eprintln!("fsgate: {} error {error_code}: {description}", self.class),
            },
        }
    }

    /// Calls the handler of `event` with `params` and returns what it left in the params;
    /// `None` when no handler is set. An exception is the error
    /// [`from_handler_exception`] makes of it (an unexpected one fires `on_error`).
    fn fire<P, R>(
        &self,
        event: &'static str,
        params: impl FnOnce() -> P,
        outputs: impl FnOnce(&P) -> R,
    ) -> Option<Result<R>>
    where
        P: pyo3::PyClass + Into<pyo3::PyClassInitializer<P>>,
    {
        let handler = self.handlers.get(event)?;
        Some(crate::attach::attach(|py| {
            let fail = |e: PyErr| {
                let (error, unexpected) = from_handler_exception(py, event, &e);
                if unexpected {
                    let text = error.message().to_string();
                    self.report(py, code::ERROR_GEN_FAILURE, &text, Some(e));
                }
                error
            };
            let object = Bound::new(py, params()).map_err(fail)?;
            handler.call1(py, (object.clone(),)).map_err(fail)?;
            let borrowed = object.try_borrow().map_err(|e| fail(e.into()))?;
            Ok(outputs(&borrowed))
        }))
    }

    /// Fires a control event: `Ok` allows the request, `Err` denies it.
    fn control(&self, event: &'static str, e: &ControlEvent) -> Result<()> {
        match self.fire(event, || ControlParams::new(e), |p| p.result_code) {
            None => Ok(()),
            Some(r) => from_result_code(r?, event),
        }
    }

    /// Fires `on_before_create_file` or `on_before_open_file`: as [`Self::control`], and
    /// what the handler left in `isolate`, `backend_file_name` and `process_request` goes
    /// back to the request.
    fn control_open(&self, event: &'static str, e: &mut ControlEvent) -> Result<()> {
        let outputs = |p: &ControlParams| {
            (
                p.result_code,
                p.isolate,
                p.backend_file_name.clone(),
                p.process_request,
            )
        };
        match self.fire(event, || ControlParams::new(e), outputs) {
            None => Ok(()),
            Some(r) => {
                let (code, isolate, backend, process_request) = r?;
                (e.isolate, e.backend_file_name, e.process_request) =
                    (isolate, backend, process_request);
                from_result_code(code, event)
            }
        }
    }

    /// Fires an event whose result nothing can act on (thread, volume and access-denied
    /// events): an unexpected exception has been reported by [`Self::fire`]; a deliberate
    /// failure (`FsgateError`, `result_code`) is ignored, as the reference ignores the
    /// result of events the system does not wait for.
    fn notify_only<P>(&self, event: &'static str, params: impl FnOnce() -> P)
    where
        P: pyo3::PyClass + Into<pyo3::PyClassInitializer<P>>,
    {
        let _ = self.fire(event, params, |_| ());
    }
}

impl MonitorEvents for PyFilterEvents {
    fn on_notify(&self, e: &NotifyEvent) -> Result<()> {
        let event = match e.kind {
            NotifyKind::CreateFile => "on_notify_create_file",
            NotifyKind::OpenFile => "on_notify_open_file",
            NotifyKind::ExecuteFile => "on_notify_execute_file",
            NotifyKind::ReadFile => "on_notify_read_file",
            NotifyKind::WriteFile => "on_notify_write_file",
            NotifyKind::SetFileAttributes => "on_notify_set_file_attributes",
            NotifyKind::CloseFile => "on_notify_close_file",
            NotifyKind::RenameOrMoveFile => "on_notify_rename_or_move_file",
            NotifyKind::DeleteFile => "on_notify_delete_file",
        };
        let params = || NotifyParams {
            file_name: e.file_name.clone(),
            new_file_name: e.new_file_name.clone(),
            directory: e.directory,
            modified: e.modified,
            process_id: e.process_id,
            process_name: e.process_name.clone(),
            user_id: e.user_id,
            result_code: 0,
        };
        self.fire(event, params, |_| ()).unwrap_or(Ok(()))
    }

    fn on_before_filter_attach_to_volume(&self, p: &mut AttachToVolume) -> Result<()> {
        let event = "on_before_filter_attach_to_volume";
        match self.fire(event, || VolumeParams::new(&p.volume), |v| v.skip_volume) {
            None => Ok(()),
            Some(skip) => {
                p.skip_volume = skip?;
                Ok(())
            }
        }
    }

    fn on_after_filter_attach_to_volume(&self, volume: &Volume) {
        self.notify_only("on_after_filter_attach_to_volume", || {
            VolumeParams::new(volume)
        });
    }

    fn on_after_filter_detach_from_volume(&self, volume: &Volume) {
        self.notify_only("on_after_filter_detach_from_volume", || {
            VolumeParams::new(volume)
        });
    }
}

impl FilterEvents for PyFilterEvents {
    fn on_before_create_file(&self, e: &mut ControlEvent) -> Result<()> {
        self.control_open("on_before_create_file", e)
    }

    fn on_before_open_file(&self, e: &mut ControlEvent) -> Result<()> {
        self.control_open("on_before_open_file", e)
    }

    fn on_before_read_file(&self, e: &ControlEvent) -> Result<()> {
        self.control("on_before_read_file", e)
    }

    fn on_before_execute(&self, e: &ControlEvent) -> Result<()> {
        self.control("on_before_execute", e)
    }

    fn on_hydrate_file(&self, e: &mut HydrateFile) -> Result<()> {
        let event = "on_hydrate_file";
        let Some(handler) = self.handlers.get(event) else {
            return Err(Error::from_code(
                code::ERROR_NOT_SUPPORTED,
                format!("no on_hydrate_file handler for {}", e.file_name),
            ));
        };
        let (file_name, offset, file_size, process_id) =
            (e.file_name.clone(), e.offset, e.file_size, e.process_id);
        crate::attach::attach(|py| {
            let fail = |err: PyErr| {
                let (error, unexpected) = from_handler_exception(py, event, &err);
                if unexpected {
                    let text = error.message().to_string();
                    self.report(py, code::ERROR_GEN_FAILURE, &text, Some(err));
                }
                error
            };
            let outcome = with_writable_view(py, &mut e.buffer, |view| {
                let params = HydrateFileParams {
                    file_name,
                    offset,
                    file_size,
                    process_id,
                    buffer: view.clone().unbind(),
                    result_code: 0,
                };
                let object = Bound::new(py, params)?;
                handler.call1(py, (object.clone(),))?;
                let code = object.try_borrow()?.result_code;
                Ok::<_, PyErr>(code)
            });
            match outcome.and_then(|r| r) {
                Ok(code) => from_result_code(code, event),
                Err(err) => Err(fail(err)),
            }
        })
    }

    fn on_access_denied(&self, e: &ControlEvent) {
        self.notify_only("on_access_denied", || ControlParams::new(e));
    }
}

impl fsgate_core::dispatch::Hooks for PyFilterEvents {
    fn on_worker_thread_creation(&self) {
        self.notify_only("on_worker_thread_creation", || WorkerThreadParams {});
    }

    fn on_worker_thread_termination(&self) {
        self.notify_only("on_worker_thread_termination", || WorkerThreadParams {});
        crate::attach::release_thread_state();
    }

    fn on_error(&self, error_code: u32, description: &str) {
        if self.handlers.get("on_error").is_some() {
            crate::attach::attach(|py| self.report(py, error_code, description, None));
        } else {
            eprintln!("fsgate: {} error {error_code}: {description}", self.class);
        }
    }
}

/// Registers the params classes and the reference's names for them (`CBMonitor…` and
/// `CBFilter…EventParams`).
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NotifyParams>()?;
    m.add_class::<ControlParams>()?;
    m.add_class::<VolumeParams>()?;
    m.add_class::<HydrateFileParams>()?;
    let py = m.py();
    for class in ["CBMonitor", "CBFilter"] {
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
            m.add(
                format!("{class}Notify{kind}EventParams"),
                py.get_type::<NotifyParams>(),
            )?;
        }
        for kind in [
            "BeforeFilterAttachToVolume",
            "AfterFilterAttachToVolume",
            "AfterFilterDetachFromVolume",
        ] {
            m.add(
                format!("{class}{kind}EventParams"),
                py.get_type::<VolumeParams>(),
            )?;
        }
        m.add(
            format!("{class}ErrorEventParams"),
            py.get_type::<ErrorParams>(),
        )?;
        m.add(
            format!("{class}WorkerThreadCreationEventParams"),
            py.get_type::<WorkerThreadParams>(),
        )?;
        m.add(
            format!("{class}WorkerThreadTerminationEventParams"),
            py.get_type::<WorkerThreadParams>(),
        )?;
    }
    for kind in ["BeforeCreateFile", "BeforeOpenFile", "BeforeReadFile"] {
        m.add(
            format!("CBFilter{kind}EventParams"),
            py.get_type::<ControlParams>(),
        )?;
    }
    Ok(())
}
