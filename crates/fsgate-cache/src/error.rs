//! The errors the vault returns, with the reference's codes.
//!
//! Codes come from [`fsgate_core::error::code`] where it has one; the two it lacks are
//! defined here with their Win32 values.

use fsgate_core::error::code;
use fsgate_core::Error;

/// `ERROR_FILE_INVALID` (1006): the file changed outside the vault (or, for
/// `RWRESULT_FILE_MODIFIED_LOCALLY`, inside it) while a transfer ran. errno `ESTALE`.
pub const ERROR_FILE_INVALID: u32 = 1006;

/// `ERROR_RETRY` (1237): a transient transfer failure; the same call may succeed later.
/// errno `EAGAIN`.
pub const ERROR_RETRY: u32 = 1237;

/// The file id is not in the vault.
pub(crate) fn file_not_found(file_id: &str) -> Error {
    Error::from_code(
        code::ERROR_FILE_NOT_FOUND,
        format!("file {file_id:?} is not in the vault"),
    )
}

/// The call needs the file opened with `file_open`.
pub(crate) fn not_open(method: &str, file_id: &str) -> Error {
    Error::from_code(
        code::ERROR_INVALID_HANDLE,
        format!("{method}: file {file_id:?} is not open"),
    )
}

/// A record or block whose checksum does not match: never served.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::from_code(
        code::ERROR_INVALID_DATA,
        format!("vault corruption: {what} fails its checksum"),
    )
}

/// An error of the storage engine while doing `what`.
pub(crate) fn storage(what: &str, err: impl std::fmt::Display) -> Error {
    Error::from_code(code::ERROR_GEN_FAILURE, format!("{what}: {err}"))
}

/// The vault was closed.
pub(crate) fn closed(method: &str) -> Error {
    Error::not_ready(format!("{method}: the vault is closed"))
}

/// `RWRESULT_FAILURE`: transient.
pub(crate) fn transient(event: &str, file_id: &str) -> Error {
    Error::new(
        ERROR_RETRY,
        libc::EAGAIN,
        format!("{event} for {file_id:?} failed for a transient reason"),
    )
}

/// The file is in the error state (`RWRESULT_FILE_FAILURE`).
pub(crate) fn file_failure(file_id: &str) -> Error {
    Error::from_code(
        code::ERROR_GEN_FAILURE,
        format!(
            "external file {file_id:?} failed; no request is sent for it until reset_error_state"
        ),
    )
}

/// The vault is in the global error state (`RWRESULT_PERMANENT_FAILURE`).
pub(crate) fn permanent_failure() -> Error {
    Error::new(
        code::ERROR_NOT_READY,
        libc::EIO,
        "external storage failed; no request is sent until reset_error_state(None)",
    )
}

/// `RWRESULT_FILE_MODIFIED_EXTERNALLY` / `_LOCALLY`.
pub(crate) fn modified(file_id: &str, where_: &str) -> Error {
    Error::new(
        ERROR_FILE_INVALID,
        libc::ESTALE,
        format!("file {file_id:?} was modified {where_} during the transfer"),
    )
}

/// The size limit is reached and only dirty data is left to evict.
pub(crate) fn full(limit: u64) -> Error {
    Error::from_code(
        code::ERROR_DISK_FULL,
        format!(
            "the vault's size limit of {limit} bytes is reached by unflushed data, which is never evicted"
        ),
    )
}
