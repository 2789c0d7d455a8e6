//! The volume's events and the drive's own (errors, worker threads).

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::with_result_code;

/// `on_mount`: the drive is mounted and about to serve.
#[pyclass(module = "fsgate", name = "MountParams")]
pub(crate) struct MountParams {
    /// The primary mounting point.
    #[pyo3(get)]
    pub(crate) mounting_point: Py<PyString>,
    /// Non-zero fails the mount.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_unmount`: the drive is being unmounted.
#[pyclass(module = "fsgate", name = "UnmountParams")]
pub(crate) struct UnmountParams {
    /// The primary mounting point.
    #[pyo3(get)]
    pub(crate) mounting_point: Py<PyString>,
    /// Only logged.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_get_volume_size`: `statfs`.
#[pyclass(module = "fsgate", name = "GetVolumeSizeParams")]
pub(crate) struct GetVolumeSizeParams {
    /// Output: the size in sectors.
    #[pyo3(get, set)]
    pub(crate) total_sectors: u64,
    /// Output: free sectors.
    #[pyo3(get, set)]
    pub(crate) available_sectors: u64,
    /// The sector size (`SectorSize`).
    #[pyo3(get)]
    pub(crate) sector_size: u32,
    /// Output: number of files (`f_files`).
    #[pyo3(get, set)]
    pub(crate) total_files: u64,
    /// Output: free file slots (`f_ffree`).
    #[pyo3(get, set)]
    pub(crate) free_files: u64,
    /// Non-zero fails `statfs`.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_get_volume_label`: once at mount; the label becomes the mount's source name.
#[pyclass(module = "fsgate", name = "GetVolumeLabelParams")]
pub(crate) struct GetVolumeLabelParams {
    /// Output: the label.
    #[pyo3(get, set)]
    pub(crate) buffer: String,
    /// Non-zero fails the mount.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_get_volume_id`: once at mount.
#[pyclass(module = "fsgate", name = "GetVolumeIdParams")]
pub(crate) struct GetVolumeIdParams {
    /// Output: the volume's serial number.
    #[pyo3(get, set)]
    pub(crate) volume_id: u32,
    /// Non-zero fails the mount.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

with_result_code!(
    MountParams,
    UnmountParams,
    GetVolumeSizeParams,
    GetVolumeLabelParams,
    GetVolumeIdParams,
);

/// `on_error`: a handler raised, or the library hit an error no caller can be told.
#[pyclass(module = "fsgate", name = "ErrorParams")]
pub(crate) struct ErrorParams {
    /// The reference's code (`ERROR_GEN_FAILURE`, 31, for an exception in a handler).
    #[pyo3(get)]
    pub(crate) error_code: u32,
    /// What happened, with the event's name and the exception.
    #[pyo3(get)]
    pub(crate) description: String,
}

impl ErrorParams {
    /// The params of one error.
    pub(crate) fn new(error_code: u32, description: &str) -> Self {
        Self {
            error_code,
            description: description.to_string(),
        }
    }
}

/// `on_worker_thread_creation`, `on_worker_thread_termination`: fire on the thread itself.
#[pyclass(module = "fsgate", name = "WorkerThreadParams")]
pub(crate) struct WorkerThreadParams {}
