//! The Python `VirtualDrive` class (the reference's `CBFS`).

use std::path::PathBuf;
use std::sync::Arc;

use fsgate_vfs::{ChangeAction, Options};
use pyo3::prelude::*;

use crate::error::{check, to_py};
use crate::events::PyEvents;
use crate::hooks::{Event, Hooks};

type Drive = fsgate_vfs::VirtualDrive<PyEvents>;

/// An event-driven virtual filesystem: set `on_*` handlers, then mount on an empty
/// directory (`mount`, or the reference's `create_storage`, `mount_media`,
/// `add_mounting_point`). Every method that fails raises `FsgateError`.
#[pyclass(module = "fsgate._fsgate", name = "VirtualDrive", subclass)]
pub(crate) struct VirtualDrive {
    hooks: Arc<Hooks>,
    /// `None` only while being dropped.
    drive: Option<Drive>,
    /// The timeout `mount_media` recorded for the mount `add_mounting_point` makes.
    media_timeout_ms: u32,
}

impl VirtualDrive {
    fn drive(&self, py: Python<'_>) -> PyResult<&Drive> {
        self.drive.as_ref().ok_or_else(|| {
            to_py(
                py,
                &fsgate_core::Error::not_ready("the drive is being released"),
            )
        })
    }
}

#[pymethods]
impl VirtualDrive {
    /// The `on_*` event properties the class offers.
    #[classattr]
    #[allow(non_snake_case)]
    fn EVENTS() -> Vec<&'static str> {
        Event::ALL.iter().map(|e| e.name()).collect()
    }

    #[new]
    fn new() -> Self {
        let hooks = Arc::new(Hooks::default());
        let events = PyEvents {
            hooks: Arc::clone(&hooks),
        };
        Self {
            hooks,
            drive: Some(Drive::new(events, Options::default())),
            media_timeout_ms: 0,
        }
    }

    /// The handler of an event (`"on_read_file"`), or `None`.
    fn get_event_hook(&self, py: Python<'_>, event: &str) -> PyResult<Option<Py<PyAny>>> {
        let event = check(py, Event::from_name(event))?;
        Ok(self.hooks.get(event).map(|h| h.clone_ref(py)))
    }

    /// Sets (or with `None` removes) the handler of an event; takes effect for the next
    /// event, mounted or not.
    fn set_event_hook(
        &self,
        py: Python<'_>,
        event: &str,
        handler: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let event = check(py, Event::from_name(event))?;
        let handler = handler.filter(|h| !h.is_none(py));
        if let Some(h) = &handler {
            if !h.bind(py).is_callable() {
                return Err(to_py(
                    py,
                    &fsgate_core::Error::invalid_argument(
                        event.name(),
                        "the handler must be callable (or None)",
                    ),
                ));
            }
        }
        check(py, self.hooks.set(event, handler))
    }

    /// `config("Name=Value")` sets a setting, `config("Name")` reads it (the reference's
    /// names: `FireAllOpenCloseEvents`, `SerializeEvents`, `MetadataCacheTimeout`, …).
    fn config(&self, py: Python<'_>, configuration_string: &str) -> PyResult<String> {
        let drive = self.drive(py)?;
        check(py, drive.config(configuration_string))
    }

    /// Mounts on `mounting_point` (an existing empty directory). `timeout` in ms bounds
    /// every event (0: none, else ≥ 3000). The GIL is released while mounting.
    #[pyo3(signature = (mounting_point, timeout = 0))]
    fn mount(&self, py: Python<'_>, mounting_point: PathBuf, timeout: u32) -> PyResult<()> {
        let drive = self.drive(py)?;
        check(py, py.detach(|| drive.mount(&mounting_point, timeout)))
    }

    /// Unmounts every mounting point, waits for running events, releases every context.
    /// The GIL is released meanwhile, so handlers still running can finish.
    fn unmount(&self, py: Python<'_>) -> PyResult<()> {
        let drive = self.drive(py)?;
        check(py, py.detach(|| drive.unmount()))
    }

    /// Reference sequence: a no-op (FUSE needs no storage object before mounting).
    fn create_storage(&self) {}

    /// Reference sequence: a no-op (there is no driver to load).
    #[pyo3(signature = (product_guid = ""))]
    fn initialize(&self, product_guid: &str) {
        let _ = product_guid;
    }

    /// Reference sequence: records `timeout` (ms) for the mount that the first
    /// `add_mounting_point` makes (a FUSE mount needs its directory).
    #[pyo3(signature = (timeout = 0))]
    fn mount_media(&mut self, timeout: u32) {
        self.media_timeout_ms = timeout;
    }

    /// The first call mounts the drive there (with `mount_media`'s timeout); later ones add
    /// bind mounts of it. `flags` and `authentication_id` have no Linux meaning.
    #[pyo3(signature = (mounting_point, flags = 0, authentication_id = 0))]
    fn add_mounting_point(
        &self,
        py: Python<'_>,
        mounting_point: PathBuf,
        flags: u32,
        authentication_id: u64,
    ) -> PyResult<()> {
        let _ = (flags, authentication_id);
        let drive = self.drive(py)?;
        let timeout = self.media_timeout_ms;
        check(
            py,
            py.detach(|| {
                if drive.active() {
                    drive.add_mounting_point(&mounting_point)
                } else {
                    drive.mount(&mounting_point, timeout)
                }
            }),
        )
    }

    /// Removes a mounting point `add_mounting_point` added after the first.
    #[pyo3(signature = (mounting_point, flags = 0, authentication_id = 0))]
    fn delete_mounting_point(
        &self,
        py: Python<'_>,
        mounting_point: PathBuf,
        flags: u32,
        authentication_id: u64,
    ) -> PyResult<()> {
        let _ = (flags, authentication_id);
        let drive = self.drive(py)?;
        check(
            py,
            py.detach(|| drive.delete_mounting_point(&mounting_point)),
        )
    }

    /// Reference sequence: unmounts (`force_unmount` has no other meaning: FUSE unmounts
    /// lazily).
    #[pyo3(signature = (force_unmount = false))]
    fn unmount_media(&self, py: Python<'_>, force_unmount: bool) -> PyResult<()> {
        let _ = force_unmount;
        self.unmount(py)
    }

    /// Reference sequence: unmounts if mounted; nothing else to delete.
    #[pyo3(signature = (force_unmount = false))]
    fn delete_storage(&self, py: Python<'_>, force_unmount: bool) -> PyResult<()> {
        let _ = force_unmount;
        self.unmount(py)
    }

    /// Whether the drive is mounted and serving.
    #[getter]
    fn active(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.drive(py)?.active())
    }

    /// How routed handles (`route_to_file`) are served: `"passthrough"` (by the kernel) or
    /// `"library"`; code 21 when not mounted.
    #[getter]
    fn route_mode(&self, py: Python<'_>) -> PyResult<&'static str> {
        let mode = check(py, self.drive(py)?.route_mode())?;
        Ok(match mode {
            fsgate_vfs::RouteMode::Passthrough => "passthrough",
            fsgate_vfs::RouteMode::Library => "library",
        })
    }

    /// The mounting points, the primary first.
    #[getter]
    fn mounting_points(&self, py: Python<'_>) -> PyResult<Vec<PathBuf>> {
        Ok(self.drive(py)?.mounting_points())
    }

    /// `FireAllOpenCloseEvents`.
    #[getter]
    fn fire_all_open_close_events(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self
            .config(py, "FireAllOpenCloseEvents")?
            .eq_ignore_ascii_case("true"))
    }
    #[setter]
    fn set_fire_all_open_close_events(&self, py: Python<'_>, value: bool) -> PyResult<()> {
        check(py, self.drive(py)?.set_fire_all_open_close_events(value))
    }

    /// `SerializeEvents`.
    #[getter]
    fn serialize_events(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self
            .config(py, "SerializeEvents")?
            .eq_ignore_ascii_case("true"))
    }
    #[setter]
    fn set_serialize_events(&self, py: Python<'_>, value: bool) -> PyResult<()> {
        check(py, self.drive(py)?.set_serialize_events(value))
    }

    /// Tells the kernel `file_name` was added (`action` 1), removed (2) or modified (3)
    /// behind its back.
    fn notify_directory_change(
        &self,
        py: Python<'_>,
        file_name: PathBuf,
        action: u32,
    ) -> PyResult<()> {
        let action = match action {
            1 => ChangeAction::Added,
            2 => ChangeAction::Removed,
            3 => ChangeAction::Modified,
            other => {
                return Err(to_py(
                    py,
                    &fsgate_core::Error::invalid_argument(
                        "action",
                        format!("{other} is not 1 (added), 2 (removed) or 3 (modified)"),
                    ),
                ))
            }
        };
        let drive = self.drive(py)?;
        check(
            py,
            py.detach(|| drive.notify_directory_change(&file_name, action)),
        )
    }

    /// Tells the kernel the data or attributes of `file_name` changed behind its back.
    fn notify_file_change(&self, py: Python<'_>, file_name: PathBuf) -> PyResult<()> {
        let drive = self.drive(py)?;
        check(py, py.detach(|| drive.notify_file_change(&file_name)))
    }

    /// Inside a handler: the process that made the request.
    fn get_originator_process_id(&self, py: Python<'_>) -> PyResult<u32> {
        check(py, fsgate_vfs::get_originator_process_id())
    }

    /// Inside a handler: the name of the process that made the request.
    fn get_originator_process_name(&self, py: Python<'_>) -> PyResult<String> {
        check(py, fsgate_vfs::get_originator_process_name())
    }

    /// Inside a handler: the thread that made the request.
    fn get_originator_thread_id(&self, py: Python<'_>) -> PyResult<u32> {
        check(py, fsgate_vfs::get_originator_thread_id())
    }

    /// Inside a handler: the credentials of the process that made the request (the
    /// reference's token), a `Credentials` object.
    fn get_originator_token(&self, py: Python<'_>) -> PyResult<crate::token::Credentials> {
        check(py, fsgate_vfs::get_originator_token()).map(crate::token::Credentials::from)
    }

    /// The credentials of the process that opened a handle (`params.handle_info`);
    /// `FsgateError` (2) once it has exited.
    fn get_handle_creator_token(
        &self,
        py: Python<'_>,
        handle_info: &crate::params::HandleInfo,
    ) -> PyResult<crate::token::Credentials> {
        check(py, handle_info.inner.get_handle_creator_token()).map(crate::token::Credentials::from)
    }

    /// The pid of the process that opened a handle (`params.handle_info`).
    fn get_handle_creator_process_id(&self, handle_info: &crate::params::HandleInfo) -> u32 {
        handle_info.get_handle_creator_process_id()
    }

    /// The thread that opened a handle.
    fn get_handle_creator_thread_id(&self, handle_info: &crate::params::HandleInfo) -> u32 {
        handle_info.get_handle_creator_thread_id()
    }

    /// The short name of the process that opened a handle.
    fn get_handle_creator_process_name(
        &self,
        py: Python<'_>,
        handle_info: &crate::params::HandleInfo,
    ) -> PyResult<String> {
        handle_info.get_handle_creator_process_name(py)
    }

    /// Inside a handler: restarts its deadline `milliseconds` from now (0: none).
    fn reset_timeout(&self, py: Python<'_>, milliseconds: u32) -> PyResult<bool> {
        check(py, self.drive(py)?.reset_timeout(milliseconds)).map(|()| true)
    }
}

impl Drop for VirtualDrive {
    fn drop(&mut self) {
        // Dropping the Rust drive unmounts it and waits for running handlers, which need
        // the GIL this thread may hold (the object is being collected): detach meanwhile.
        if let Some(drive) = self.drive.take() {
            // During interpreter shutdown `try_attach` runs nothing and drops `drive` as is.
            let _ = Python::try_attach(|py| py.detach(|| drop(drive)));
        }
    }
}
