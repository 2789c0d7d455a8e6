//! Changes to an object: attributes, renames, deletes, flushes.

use std::time::SystemTime;

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::with_result_code;

/// `on_set_file_attributes`: `chmod`, `utimensat`. `None` properties are unchanged.
#[pyclass(module = "fsgate", name = "SetFileAttributesParams")]
pub(crate) struct SetFileAttributesParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// New permission bits.
    #[pyo3(get)]
    pub(crate) mode: Option<u32>,
    /// New creation time.
    #[pyo3(get)]
    pub(crate) creation_time: Option<SystemTime>,
    /// New access time.
    #[pyo3(get)]
    pub(crate) last_access_time: Option<SystemTime>,
    /// New modification time.
    #[pyo3(get)]
    pub(crate) last_write_time: Option<SystemTime>,
    /// New change time.
    #[pyo3(get)]
    pub(crate) change_time: Option<SystemTime>,
    /// The file's context when it is open.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Non-zero fails the call.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_rename_or_move_file`: `rename`.
#[pyclass(module = "fsgate", name = "RenameOrMoveFileParams")]
pub(crate) struct RenameOrMoveFileParams {
    /// The current path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// The new path.
    #[pyo3(get)]
    pub(crate) new_file_name: Py<PyString>,
    /// Whether an existing `new_file_name` is replaced.
    #[pyo3(get)]
    pub(crate) replace_existing: bool,
    /// The file's context when it is open.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Non-zero fails the rename.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_can_file_be_deleted`: before `on_delete_file`; `can_be_deleted = False` fails the
/// deletion with `EACCES`.
#[pyclass(module = "fsgate", name = "CanFileBeDeletedParams")]
pub(crate) struct CanFileBeDeletedParams {
    /// The path to delete.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// `rmdir` or `unlink`.
    #[pyo3(get)]
    pub(crate) is_directory: bool,
    /// Output: whether it may be deleted (true on entry).
    #[pyo3(get, set)]
    pub(crate) can_be_deleted: bool,
    /// The file's context when it is open.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Non-zero fails the deletion.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_delete_file`: `unlink`, `rmdir`.
#[pyclass(module = "fsgate", name = "DeleteFileParams")]
pub(crate) struct DeleteFileParams {
    /// The path to delete.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// `rmdir` (already checked empty) or `unlink`.
    #[pyo3(get)]
    pub(crate) is_directory: bool,
    /// The file's context when it is open.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Non-zero fails the deletion.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_is_directory_empty`: before `rmdir`; unset, the library lists the directory.
#[pyclass(module = "fsgate", name = "IsDirectoryEmptyParams")]
pub(crate) struct IsDirectoryEmptyParams {
    /// The directory.
    #[pyo3(get)]
    pub(crate) directory_name: Py<PyString>,
    /// Output: whether it is empty; `None`: ask `on_enumerate_directory`.
    #[pyo3(get, set)]
    pub(crate) is_empty: Option<bool>,
    /// Non-zero fails the call.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_flush_file`: `fsync`, `fdatasync`.
#[pyclass(module = "fsgate", name = "FlushFileParams")]
pub(crate) struct FlushFileParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// `fdatasync`: only data must be durable.
    #[pyo3(get)]
    pub(crate) data_only: bool,
    /// The file's context.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// The handle's context.
    #[pyo3(get, set)]
    pub(crate) handle_context: Option<Py<PyAny>>,
    /// Non-zero fails `fsync`.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

with_result_code!(
    SetFileAttributesParams,
    RenameOrMoveFileParams,
    CanFileBeDeletedParams,
    DeleteFileParams,
    IsDirectoryEmptyParams,
    FlushFileParams,
);
