//! `FsgateError`: the one exception every failing method raises, and result codes from handlers.

use fsgate_core::{code, Error, Result};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The Python class `fsgate.FsgateError`, defined in `fsgate/_errors.py` so that Python code
/// can raise and construct it like any exception; looked up once.
fn error_class(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    CLASS.import(py, "fsgate._errors", "FsgateError")
}

/// The Python exception for an fsgate error: `FsgateError(code, message)` with the
/// reference's code. Falls back to `OSError(errno, message)` only if the package's own
/// module cannot be imported (a broken installation).
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    match error_class(py) {
        Ok(class) => match class.call1((e.code(), e.message().to_string())) {
            Ok(value) => PyErr::from_value(value),
            Err(err) => err,
        },
        Err(_) => pyo3::exceptions::PyOSError::new_err((e.errno(), e.message().to_string())),
    }
}

/// Converts an fsgate result for returning to Python.
pub(crate) fn check<T>(py: Python<'_>, r: Result<T>) -> PyResult<T> {
    r.map_err(|e| to_py(py, &e))
}

/// What a handler's `result_code` means: 0 success; a positive value is one of the
/// reference's (Win32-style) codes, failing the request with its errno (5 →`EACCES`); a
/// negative value is a negated Linux errno (`-errno.ENOENT`), as the reference's FUSE
/// edition accepts.
pub(crate) fn from_result_code(result_code: i64, event: &str) -> Result<()> {
    let message = || format!("{event} set result_code {result_code}");
    if result_code == 0 {
        return Ok(());
    }
    if result_code < 0 {
        let errno = i32::try_from(result_code.unsigned_abs()).unwrap_or(libc::EIO);
        Err(Error::from_errno(errno, message()))
    } else {
        let code = u32::try_from(result_code).unwrap_or(code::ERROR_GEN_FAILURE);
        Err(Error::from_code(code, message()))
    }
}

/// The error a handler's exception fails its request with, and whether the exception was
/// unexpected (to be reported through `on_error`):
///
/// - `FsgateError(code, message)` is a deliberate result, like setting `result_code` to
///   `code`: a reference code (5 → `EACCES`) or a negated errno; not reported;
/// - an `OSError` carrying an errno (`FileNotFoundError(errno.ENOENT, ...)`) fails the
///   request with that errno; not reported;
/// - anything else (including `FsgateError` with code 0, which names no failure) fails it
///   with `EIO` and is reported.
pub(crate) fn from_handler_exception(py: Python<'_>, event: &str, e: &PyErr) -> (Error, bool) {
    let value = e.value(py);
    let deliberate = error_class(py)
        .ok()
        .filter(|class| value.is_instance(class).unwrap_or(false))
        .and_then(|_| {
            let code = value.getattr("code").ok()?.extract::<i64>().ok()?;
            let message = value
                .getattr("message")
                .ok()
                .and_then(|m| m.str().ok().map(|m| m.to_string()))
                .unwrap_or_default();
            from_result_code(code, event)
                .err()
                .map(|err| Error::new(err.code(), err.errno(), format!("{event}: {message}")))
        })
        .or_else(|| {
            if !e.is_instance_of::<pyo3::exceptions::PyOSError>(py) {
                return None;
            }
            let errno = value.getattr("errno").ok()?.extract::<i32>().ok()?;
            (errno > 0).then(|| Error::from_errno(errno, format!("{event} raised {e}")))
        });
    match deliberate {
        Some(error) => (error, false),
        None => (
            Error::from_errno(libc::EIO, format!("{event} raised {e}")),
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_errnos() {
        assert!(from_result_code(0, "e").is_ok());
        let denied = from_result_code(5, "e").unwrap_err();
        assert_eq!((denied.code(), denied.errno()), (5, libc::EACCES));
        let missing = from_result_code(-i64::from(libc::ENOENT), "e").unwrap_err();
        assert_eq!(missing.errno(), libc::ENOENT);
        let unknown = from_result_code(99_999, "e").unwrap_err();
        assert_eq!(unknown.errno(), libc::EIO);
        let huge = from_result_code(i64::MIN, "e").unwrap_err();
        assert_eq!(huge.errno(), libc::EIO);
    }
}
