//! Links, owners, exchanges and zeroed ranges.

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::{info_properties, with_result_code, InfoValues};

/// `on_set_file_security`: `chown`, `chgrp` (Linux owners instead of a security
/// descriptor). `None` properties are unchanged.
#[pyclass(module = "fsgate", name = "SetFileSecurityParams")]
pub(crate) struct SetFileSecurityParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// New owner uid.
    #[pyo3(get)]
    pub(crate) owner: Option<u32>,
    /// New group gid.
    #[pyo3(get)]
    pub(crate) group: Option<u32>,
    /// The file's context when it is open.
    #[pyo3(get, set)]
    pub(crate) file_context: Option<Py<PyAny>>,
    /// Non-zero fails the call.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_create_hard_link`: `link`: give `file_name` the additional name `link_name`.
#[pyclass(module = "fsgate", name = "CreateHardLinkParams")]
pub(crate) struct CreateHardLinkParams {
    /// The existing file.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// The new name.
    #[pyo3(get)]
    pub(crate) link_name: Py<PyString>,
    /// Output: the new link's metadata (`attributes`, `size`, `mode`, `uid`, times, …,
    /// pre-filled with what the library assumes); set `info_filled` to answer the kernel with
    /// it instead of the `on_get_file_info` that otherwise follows.
    pub(crate) info: InfoValues,
    /// Output: whether the handler filled the metadata properties.
    #[pyo3(get, set)]
    pub(crate) info_filled: bool,
    /// Non-zero fails `link`.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_create_symbolic_link`: `symlink`: create `file_name` pointing at `target`.
#[pyclass(module = "fsgate", name = "CreateSymbolicLinkParams")]
pub(crate) struct CreateSymbolicLinkParams {
    /// The link to create.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// What it points to, verbatim.
    #[pyo3(get)]
    pub(crate) target: Py<PyString>,
    /// Output: the new link's metadata (`attributes`, `size`, `mode`, `uid`, times, …,
    /// pre-filled with what the library assumes); set `info_filled` to answer the kernel with
    /// it instead of the `on_get_file_info` that otherwise follows.
    pub(crate) info: InfoValues,
    /// Output: whether the handler filled the metadata properties.
    #[pyo3(get, set)]
    pub(crate) info_filled: bool,
    /// Non-zero fails `symlink`.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_get_symbolic_link_target`: `readlink` and path walks through a link.
#[pyclass(module = "fsgate", name = "GetSymbolicLinkTargetParams")]
pub(crate) struct GetSymbolicLinkTargetParams {
    /// The link.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// Output: the link's target (a `str`, non-UTF-8 bytes as `os.fsdecode` gives them).
    #[pyo3(get, set)]
    pub(crate) target: Option<Py<PyAny>>,
    /// Non-zero fails `readlink`.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_exchange_files`: `renameat2(RENAME_EXCHANGE)`: the two names trade places.
#[pyclass(module = "fsgate", name = "ExchangeFilesParams")]
pub(crate) struct ExchangeFilesParams {
    /// One path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// The other path.
    #[pyo3(get)]
    pub(crate) new_file_name: Py<PyString>,
    /// Non-zero fails the exchange.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_zeroize_file_range`: `fallocate` punching a hole or zeroing a range.
#[pyclass(module = "fsgate", name = "ZeroizeFileRangeParams")]
pub(crate) struct ZeroizeFileRangeParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// The first byte.
    #[pyo3(get)]
    pub(crate) position: u64,
    /// The range's length.
    #[pyo3(get)]
    pub(crate) length: u64,
    /// Whether the space is given back (a hole).
    #[pyo3(get)]
    pub(crate) deallocate: bool,
    /// Whether a range past the end leaves the size alone.
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
    SetFileSecurityParams,
    CreateHardLinkParams,
    CreateSymbolicLinkParams,
    GetSymbolicLinkTargetParams,
    ExchangeFilesParams,
    ZeroizeFileRangeParams,
);

info_properties!(CreateHardLinkParams);
info_properties!(CreateSymbolicLinkParams);
