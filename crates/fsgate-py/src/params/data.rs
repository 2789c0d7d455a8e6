//! A file's data: reads, writes, size and space.

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::with_result_code;

/// `on_read_file`: fill `buffer` (a writable `memoryview` of `bytes_to_read` bytes over the
/// library's buffer, valid during the handler only) from `position`; set `bytes_read`.
#[pyclass(module = "fsgate", name = "ReadFileParams")]
pub(crate) struct ReadFileParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// Offset in the file.
    #[pyo3(get)]
    pub(crate) position: u64,
    /// Where the data goes; released after the handler (copy slices you keep).
    #[pyo3(get)]
    pub(crate) buffer: Py<PyAny>,
    /// Bytes asked for (`len(buffer)`).
    #[pyo3(get)]
    pub(crate) bytes_to_read: usize,
    /// Output: bytes put in `buffer`; fewer than asked means end of file.
    #[pyo3(get, set)]
    pub(crate) bytes_read: usize,
    /// The file's context (shared with concurrent reads).
    #[pyo3(get)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// The handle's context.
    #[pyo3(get)]
    pub(crate) handle_context: Option<Py<PyAny>>,
    /// Non-zero fails the read.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_write_file`: store `buffer` (a read-only `memoryview` over the library's buffer,
/// valid during the handler only) at `position`; set `bytes_written`.
#[pyclass(module = "fsgate", name = "WriteFileParams")]
pub(crate) struct WriteFileParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// Offset in the file.
    #[pyo3(get)]
    pub(crate) position: u64,
    /// The data; released after the handler (copy slices you keep).
    #[pyo3(get)]
    pub(crate) buffer: Py<PyAny>,
    /// `len(buffer)`.
    #[pyo3(get)]
    pub(crate) bytes_to_write: usize,
    /// Whether the kernel writes back cached pages (leave the times alone then).
    #[pyo3(get)]
    pub(crate) write_back: bool,
    /// Output: bytes written; the caller's `write` returns it.
    #[pyo3(get, set)]
    pub(crate) bytes_written: usize,
    /// The file's context.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// The handle's context.
    #[pyo3(get, set)]
    pub(crate) handle_context: Option<Py<PyAny>>,
    /// Non-zero fails the write.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_set_file_size`: `truncate`, `open(O_TRUNC)`.
#[pyclass(module = "fsgate", name = "SetFileSizeParams")]
pub(crate) struct SetFileSizeParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// The new size.
    #[pyo3(get)]
    pub(crate) size: u64,
    /// The file's context when it is open.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Non-zero fails the call.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_set_allocation_size`: `fallocate`.
#[pyclass(module = "fsgate", name = "SetAllocationSizeParams")]
pub(crate) struct SetAllocationSizeParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// Bytes to reserve from offset 0.
    #[pyo3(get)]
    pub(crate) allocation_size: u64,
    /// Leave the file size as it is.
    #[pyo3(get)]
    pub(crate) keep_size: bool,
    /// The file's context.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Non-zero fails the call.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

with_result_code!(
    ReadFileParams,
    WriteFileParams,
    SetFileSizeParams,
    SetAllocationSizeParams,
);

/// `on_copy_file_range`: `copy_file_range(2)` between open files of the drive; unhandled,
/// the kernel copies through reads and writes.
#[pyclass(module = "fsgate", name = "CopyFileRangeParams")]
pub(crate) struct CopyFileRangeParams {
    /// The file read from.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// Where reading starts.
    #[pyo3(get)]
    pub(crate) position: u64,
    /// The source file's context.
    #[pyo3(get)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// The source handle's context.
    #[pyo3(get)]
    pub(crate) handle_context: Option<Py<PyAny>>,
    /// The file written to (may be `file_name`).
    #[pyo3(get)]
    pub(crate) target_file_name: Py<PyString>,
    /// Where writing starts.
    #[pyo3(get)]
    pub(crate) target_position: u64,
    /// The target handle's context.
    #[pyo3(get)]
    pub(crate) target_handle_context: Option<Py<PyAny>>,
    /// Bytes to copy at most.
    #[pyo3(get)]
    pub(crate) length: u64,
    /// Output: bytes copied (fewer only at the source's end).
    #[pyo3(get, set)]
    pub(crate) bytes_copied: u64,
    /// Non-zero fails the copy.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

with_result_code!(CopyFileRangeParams);
