//! Extended attributes (`getxattr`, `setxattr`, `listxattr`, `removexattr`).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::with_result_code;

/// `on_get_ea`: the value of attribute `name` (`user.comment`). A missing attribute:
/// `result_code = -errno.ENODATA`.
#[pyclass(module = "fsgate", name = "GetEaParams")]
pub(crate) struct GetEaParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// The attribute's name.
    #[pyo3(get)]
    pub(crate) name: Py<PyString>,
    /// Output: the value (`bytes`).
    #[pyo3(get, set)]
    pub(crate) value: Option<Py<PyAny>>,
    /// Non-zero fails the call.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_set_ea`: set attribute `name` to `value`.
#[pyclass(module = "fsgate", name = "SetEaParams")]
pub(crate) struct SetEaParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// The attribute's name.
    #[pyo3(get)]
    pub(crate) name: Py<PyString>,
    /// The value.
    #[pyo3(get)]
    pub(crate) value: Py<PyBytes>,
    /// `XATTR_CREATE`: fail (`-errno.EEXIST`) if it exists.
    #[pyo3(get)]
    pub(crate) create_only: bool,
    /// `XATTR_REPLACE`: fail (`-errno.ENODATA`) if it does not.
    #[pyo3(get)]
    pub(crate) replace_only: bool,
    /// Non-zero fails the call.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_list_eas`: the names of the file's attributes.
#[pyclass(module = "fsgate", name = "ListEasParams")]
pub(crate) struct ListEasParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// Output: the names (an iterable of `str`).
    #[pyo3(get, set)]
    pub(crate) names: Option<Py<PyAny>>,
    /// Non-zero fails the call.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

/// `on_remove_ea`: remove attribute `name`.
#[pyclass(module = "fsgate", name = "RemoveEaParams")]
pub(crate) struct RemoveEaParams {
    /// The file's path.
    #[pyo3(get)]
    pub(crate) file_name: Py<PyString>,
    /// The attribute's name.
    #[pyo3(get)]
    pub(crate) name: Py<PyString>,
    /// Non-zero fails the call.
    #[pyo3(get, set)]
    pub(crate) result_code: i64,
}

with_result_code!(GetEaParams, SetEaParams, ListEasParams, RemoveEaParams);
