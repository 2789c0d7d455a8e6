//! The `on_error` event and the privilege error every open shares.

use std::io;
use std::sync::Arc;

use fsgate_core::{code, Error};

/// Parameters of `on_error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorEventParams {
    /// The Win32-style code of the error.
    pub error_code: u32,
    /// What failed and why.
    pub description: String,
}

/// An `on_error` handler.
pub type ErrorHook = Arc<dyn Fn(&ErrorEventParams) + Send + Sync>;

/// Fires `on_error` for an error that has no caller to return to.
pub(crate) fn on_error(hook: Option<&ErrorHook>, error: &Error) {
    tracing::warn!(%error, "unhandled error");
    if let Some(hook) = hook {
        hook(&ErrorEventParams {
            error_code: error.code(),
            description: error.to_string(),
        });
    }
}

/// `ERROR_PRIVILEGE_NOT_HELD` (1314) for a permission error from the kernel, whoever the
/// caller is (root can meet it too, inside a user namespace or under an LSM); `message` names
/// the capability that is missing. The errno stays the kernel's.
pub(crate) fn privilege_error(err: io::Error, message: String) -> Error {
    Error::new(
        code::ERROR_PRIVILEGE_NOT_HELD,
        err.raw_os_error().unwrap_or(libc::EPERM),
        message,
    )
}
