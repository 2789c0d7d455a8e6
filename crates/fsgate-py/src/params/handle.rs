//! `HandleInfo`: who opened a handle, as the create, open, cleanup and close events give it.

use pyo3::prelude::*;

use crate::error::check;

/// The reference's handle information: pass it to the drive's `get_handle_creator_*`
/// methods, or call them on it. Valid for the handle's whole life.
#[pyclass(module = "fsgate", name = "HandleInfo", frozen)]
pub(crate) struct HandleInfo {
    pub(crate) inner: fsgate_vfs::HandleInfo,
}

impl HandleInfo {
    /// The Python object for one handle.
    pub(crate) fn new(py: Python<'_>, inner: fsgate_vfs::HandleInfo) -> PyResult<Py<Self>> {
        Py::new(py, Self { inner })
    }
}

#[pymethods]
impl HandleInfo {
    /// The kernel's id of the handle.
    #[getter]
    fn handle_id(&self) -> u64 {
        self.inner.handle_id
    }

    /// The pid of the process that opened the handle.
    pub(crate) fn get_handle_creator_process_id(&self) -> u32 {
        self.inner.get_handle_creator_process_id()
    }

    /// The thread that opened the handle.
    pub(crate) fn get_handle_creator_thread_id(&self) -> u32 {
        self.inner.creator.tid
    }

    /// The short name of the process that opened the handle; `FsgateError` (2) once it has
    /// exited.
    pub(crate) fn get_handle_creator_process_name(&self, py: Python<'_>) -> PyResult<String> {
        check(py, self.inner.get_handle_creator_process_name())
    }
}
