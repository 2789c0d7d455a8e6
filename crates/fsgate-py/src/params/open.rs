//! Opening and closing: create, open, cleanup, close, file info and listings.

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::{info_properties, with_result_code, InfoValues};

/// `on_create_file`: a file (`open(O_CREAT)`), directory (`mkdir`, `attributes` has
/// `FILE_ATTRIBUTE_DIRECTORY`) or special file is created.
#[pyclass(module = "fsgate", name = "CreateFileParams")]
pub(crate) struct CreateFileParams {
    /// Who opened the handle (`get_handle_creator_process_id()` …).
    #[pyo3(get)]
    pub(crate) handle_info: Py<super::HandleInfo>,
    /// What `route_to_file` asked for: the real file's path and the flags.
    pub(crate) route: Option<(std::path::PathBuf, u32)>,
    /// The path to create (`/dir/name`).
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// `FILE_READ_DATA` (1), `FILE_WRITE_DATA` (2), `FILE_APPEND_DATA` (4) from the flags.
    #[pyo3(get)]
    pub(crate) desired_access: u32,
    /// 0x10 for a directory, 0x80 otherwise.
    #[pyo3(get)]
    pub(crate) attributes: u32,
    /// Permission bits asked for, umask applied.
    #[pyo3(get)]
    pub(crate) mode: u32,
    /// The Linux open flags.
    #[pyo3(get)]
    pub(crate) flags: i32,
    /// The kernel's id of the new handle.
    #[pyo3(get)]
    pub(crate) handle_id: u64,
    /// Output (an fsgate addition): set it to say the new object's attributes are what the
    /// library assumes — the requested kind and `mode`, the caller's owner and group, size
    /// 0, every time now — which answers the kernel without the `on_get_file_info` that
    /// otherwise follows (one event fewer per create).
    #[pyo3(get, set)]
    pub(crate) info_filled: bool,
    /// Output: the file's context, any object (this is the file's first open).
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Output: the handle's context, any object.
    #[pyo3(get, set)]
    pub(crate) handle_context: Option<Py<PyAny>>,
    /// Non-zero fails the call: a reference code (5 → `EACCES`) or `-errno`.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_open_file`: an existing file or directory is opened.
#[pyclass(module = "fsgate", name = "OpenFileParams")]
pub(crate) struct OpenFileParams {
    /// Who opened the handle (`get_handle_creator_process_id()` …).
    #[pyo3(get)]
    pub(crate) handle_info: Py<super::HandleInfo>,
    /// What `route_to_file` asked for: the real file's path and the flags.
    pub(crate) route: Option<(std::path::PathBuf, u32)>,
    /// The path opened.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// Access bits, as for create.
    #[pyo3(get)]
    pub(crate) desired_access: u32,
    /// 0x10 for `opendir`, 0x80 otherwise.
    #[pyo3(get)]
    pub(crate) attributes: u32,
    /// The Linux open flags.
    #[pyo3(get)]
    pub(crate) flags: i32,
    /// The kernel's id of the new handle.
    #[pyo3(get)]
    pub(crate) handle_id: u64,
    /// The file's context: `None` at its first open (set one), the stored one otherwise.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Output: the handle's context.
    #[pyo3(get, set)]
    pub(crate) handle_context: Option<Py<PyAny>>,
    /// Non-zero fails the open.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_cleanup_file`: a descriptor was closed (`close(2)`).
#[pyclass(module = "fsgate", name = "CleanupFileParams")]
pub(crate) struct CleanupFileParams {
    /// Who opened the handle (`get_handle_creator_process_id()` …).
    #[pyo3(get)]
    pub(crate) handle_info: Py<super::HandleInfo>,
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// The file's context.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// The handle's context.
    #[pyo3(get, set)]
    pub(crate) handle_context: Option<Py<PyAny>>,
    /// Non-zero: `close` reports the error.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_close_file`: a handle was released; its context is released after this event, the
/// file's too when `last_handle`.
#[pyclass(module = "fsgate", name = "CloseFileParams")]
pub(crate) struct CloseFileParams {
    /// Who opened the handle (`get_handle_creator_process_id()` …).
    #[pyo3(get)]
    pub(crate) handle_info: Py<super::HandleInfo>,
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// Whether this is the file's last handle.
    #[pyo3(get)]
    pub(crate) last_handle: bool,
    /// The file's context.
    #[pyo3(get)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// The handle's context.
    #[pyo3(get)]
    pub(crate) handle_context: Option<Py<PyAny>>,
    /// Only logged.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_get_file_info`: lookup and `stat`. Set `file_exists` and the metadata.
#[pyclass(module = "fsgate", name = "GetFileInfoParams")]
pub(crate) struct GetFileInfoParams {
    /// The path asked about.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// Output: whether it exists (false: `ENOENT`).
    #[pyo3(get, set)]
    pub(crate) file_exists: bool,
    pub(crate) info: InfoValues,
    /// The file's context when it is open.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Non-zero fails the lookup.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_enumerate_directory`: one entry per call until `file_found` stays false.
#[pyclass(module = "fsgate", name = "EnumerateDirectoryParams")]
pub(crate) struct EnumerateDirectoryParams {
    /// The directory listed.
    #[pyo3(get)]
    pub(crate) directory_name: Py<PyString>,
    /// Always `*`.
    #[pyo3(get)]
    pub(crate) mask: String,
    /// Always true.
    #[pyo3(get)]
    pub(crate) case_sensitive: bool,
    /// True at the listing's first call.
    #[pyo3(get)]
    pub(crate) restart: bool,
    /// Output: whether this call found an entry.
    #[pyo3(get, set)]
    pub(crate) file_found: bool,
    /// Output: the entry's name (not a path).
    #[pyo3(get, set)]
    pub(crate) file_name: Option<Py<PyAny>>,
    pub(crate) info: InfoValues,
    /// The directory's context.
    #[pyo3(get, set)]
    pub(crate) directory_context: Option<Py<PyAny>>,
    /// The directory handle's context.
    #[pyo3(get, set)]
    pub(crate) handle_context: Option<Py<PyAny>>,
    /// The listing's context: `None` at its first call (store a cursor), kept until
    /// `on_close_directory_enumeration`.
    #[pyo3(get, set)]
    pub(crate) enumeration_context: Option<Py<PyAny>>,
    /// Non-zero fails the listing.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_close_directory_enumeration`: a listing ended; its context is released after.
#[pyclass(module = "fsgate", name = "CloseDirectoryEnumerationParams")]
pub(crate) struct CloseDirectoryEnumerationParams {
    /// The directory listed.
    #[pyo3(get)]
    pub(crate) directory_name: Py<PyString>,
    /// The directory's context.
    #[pyo3(get)]
    pub(crate) directory_context: Option<Py<PyAny>>,
    /// The listing's context.
    #[pyo3(get)]
    pub(crate) enumeration_context: Option<Py<PyAny>>,
    /// Only logged.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `route_to_file(path, flags=0)` on the create and open params.
macro_rules! route_method {
    ($class:ty) => {
        #[pymethods]
        impl $class {
            /// Routes this handle to the real file at `path` (opened with the access the
            /// caller asked for; a create creates it): its reads and writes go there
            /// without `on_read_file`/`on_write_file` (through the kernel's FUSE passthrough
            /// where available). `flags`: `ROUTE_CLOSE_EVENT` (1) keeps the close events.
            #[pyo3(signature = (path, flags = 0))]
            fn route_to_file(&mut self, path: std::path::PathBuf, flags: u32) {
                self.route = Some((path, flags));
            }
        }
    };
}
route_method!(CreateFileParams);
route_method!(OpenFileParams);

with_result_code!(
    CreateFileParams,
    OpenFileParams,
    CleanupFileParams,
    CloseFileParams,
    GetFileInfoParams,
    EnumerateDirectoryParams,
    CloseDirectoryEnumerationParams,
);
info_properties!(GetFileInfoParams);
info_properties!(EnumerateDirectoryParams);
