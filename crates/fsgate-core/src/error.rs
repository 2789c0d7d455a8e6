//! The error type every fsgate class returns.
//!
//! An [`Error`] carries three things: the errno the kernel and callers on Linux understand, the
//! Win32-style code the reference documentation names for the same situation (so code ported
//! from the reference keeps its `match` arms), and a message that names the argument and the
//! reason. Handlers may fail with either kind of code; [`Error::from_code`] and
//! [`Error::from_errno`] fill in the other half from the table in [`code`].

use std::fmt;
use std::io;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Win32-style result codes the reference documents, with the errno each maps to.
///
/// Both directions go through one table, [`TABLE`](code::TABLE), so a code survives a round
/// trip through an errno wherever the mapping is one-to-one.
pub mod code {
    /// No error.
    pub const ERROR_SUCCESS: u32 = 0;
    /// Incorrect function: the operation is not supported.
    pub const ERROR_INVALID_FUNCTION: u32 = 1;
    /// The file or object was not found.
    pub const ERROR_FILE_NOT_FOUND: u32 = 2;
    /// A directory on the path was not found.
    pub const ERROR_PATH_NOT_FOUND: u32 = 3;
    /// Too many open files.
    pub const ERROR_TOO_MANY_OPEN_FILES: u32 = 4;
    /// Access denied.
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    /// An invalid handle.
    pub const ERROR_INVALID_HANDLE: u32 = 6;
    /// Not enough memory.
    pub const ERROR_NOT_ENOUGH_MEMORY: u32 = 8;
    /// Write-protected medium or read-only object.
    pub const ERROR_WRITE_PROTECT: u32 = 19;
    /// The class was not initialized, or the device is not ready.
    pub const ERROR_NOT_READY: u32 = 21;
    /// A general I/O failure.
    pub const ERROR_GEN_FAILURE: u32 = 31;
    /// A sharing violation: the object is in use.
    pub const ERROR_SHARING_VIOLATION: u32 = 32;
    /// End of file reached.
    pub const ERROR_HANDLE_EOF: u32 = 38;
    /// The request is not supported.
    pub const ERROR_NOT_SUPPORTED: u32 = 50;
    /// The file exists.
    pub const ERROR_FILE_EXISTS: u32 = 80;
    /// An invalid parameter.
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    /// Not enough space on the disk.
    pub const ERROR_DISK_FULL: u32 = 112;
    /// The buffer passed is too small.
    pub const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
    /// The name is syntactically invalid.
    pub const ERROR_INVALID_NAME: u32 = 123;
    /// The directory is not empty.
    pub const ERROR_DIR_NOT_EMPTY: u32 = 145;
    /// The object is busy (locked or mounted).
    pub const ERROR_BUSY: u32 = 170;
    /// The object already exists.
    pub const ERROR_ALREADY_EXISTS: u32 = 183;
    /// The name is too long.
    pub const ERROR_FILENAME_EXCED_RANGE: u32 = 206;
    /// The timeout expired before the operation completed.
    pub const ERROR_TIMEOUT: u32 = 1460;
    /// The directory name is invalid (the object is not a directory).
    pub const ERROR_DIRECTORY: u32 = 267;
    /// The installed kernel-side part is older than the library.
    pub const ERROR_INVALID_KERNEL_INFO_VERSION: u32 = 340;
    /// The class failed to initialize for an internal reason.
    pub const ERROR_APP_INIT_FAILURE: u32 = 575;
    /// The required system module is not installed for the product GUID.
    pub const ERROR_FS_DRIVER_REQUIRED: u32 = 588;
    /// A method that works only inside an event handler was called outside one.
    pub const ERROR_NO_CALLBACK_ACTIVE: u32 = 614;
    /// The operation was cancelled.
    pub const ERROR_CANCELLED: u32 = 1223;
    /// The filter or mount is already active.
    pub const ERROR_CONNECTION_ACTIVE: u32 = 1230;
    /// A value is outside what the implementation supports (a timeout below 3 seconds).
    pub const ERROR_IMPLEMENTATION_LIMIT: u32 = 1292;
    /// The process lacks a privilege (a capability on Linux) the operation needs.
    pub const ERROR_PRIVILEGE_NOT_HELD: u32 = 1314;
    /// Internal error.
    pub const ERROR_INTERNAL_ERROR: u32 = 1359;
    /// The file cannot be accessed as asked (on Linux: it is a directory).
    pub const ERROR_CANT_ACCESS_FILE: u32 = 1920;
    /// Too many links.
    pub const ERROR_TOO_MANY_LINKS: u32 = 1142;
    /// Not the same device (a rename across filesystems).
    pub const ERROR_NOT_SAME_DEVICE: u32 = 17;
    /// Invalid data (for example a corrupt file).
    pub const ERROR_INVALID_DATA: u32 = 13;
    /// The attribute (extended attribute) does not exist.
    pub const ERROR_EA_NOT_FOUND: u32 = 276;
    /// The symbolic link cannot be followed (loop).
    pub const ERROR_CANT_RESOLVE_FILENAME: u32 = 1921;
    /// A read-only filesystem.
    pub const ERROR_FILE_READ_ONLY: u32 = 6009;

    /// `(code, errno)` pairs. For codes, the first row with that code gives its errno; for
    /// errnos, the first row with that errno gives its code.
    pub const TABLE: &[(u32, i32)] = &[
        (ERROR_SUCCESS, 0),
        (ERROR_INVALID_FUNCTION, libc::ENOSYS),
        (ERROR_FILE_NOT_FOUND, libc::ENOENT),
        (ERROR_PATH_NOT_FOUND, libc::ENOENT),
        (ERROR_TOO_MANY_OPEN_FILES, libc::EMFILE),
        (ERROR_ACCESS_DENIED, libc::EACCES),
        (ERROR_INVALID_HANDLE, libc::EBADF),
        (ERROR_NOT_ENOUGH_MEMORY, libc::ENOMEM),
        (ERROR_FILE_READ_ONLY, libc::EROFS),
        (ERROR_WRITE_PROTECT, libc::EROFS),
        (ERROR_NOT_READY, libc::ENODEV),
        (ERROR_GEN_FAILURE, libc::EIO),
        (ERROR_SHARING_VIOLATION, libc::ETXTBSY),
        (ERROR_HANDLE_EOF, libc::ENODATA),
        (ERROR_NOT_SUPPORTED, libc::EOPNOTSUPP),
        (ERROR_ALREADY_EXISTS, libc::EEXIST),
        (ERROR_FILE_EXISTS, libc::EEXIST),
        (ERROR_INVALID_PARAMETER, libc::EINVAL),
        (ERROR_DISK_FULL, libc::ENOSPC),
        (ERROR_INSUFFICIENT_BUFFER, libc::ERANGE),
        (ERROR_INVALID_NAME, libc::EINVAL),
        (ERROR_DIR_NOT_EMPTY, libc::ENOTEMPTY),
        (ERROR_BUSY, libc::EBUSY),
        (ERROR_FILENAME_EXCED_RANGE, libc::ENAMETOOLONG),
        (ERROR_DIRECTORY, libc::ENOTDIR),
        (ERROR_CANT_ACCESS_FILE, libc::EISDIR),
        (ERROR_TOO_MANY_LINKS, libc::EMLINK),
        (ERROR_NOT_SAME_DEVICE, libc::EXDEV),
        (ERROR_INVALID_DATA, libc::EBADMSG),
        (ERROR_EA_NOT_FOUND, libc::ENODATA),
        (ERROR_CANT_RESOLVE_FILENAME, libc::ELOOP),
        (ERROR_TIMEOUT, libc::ETIMEDOUT),
        (ERROR_CANCELLED, libc::ECANCELED),
        (ERROR_CONNECTION_ACTIVE, libc::EALREADY),
        (ERROR_IMPLEMENTATION_LIMIT, libc::EINVAL),
        (ERROR_PRIVILEGE_NOT_HELD, libc::EPERM),
        (ERROR_NO_CALLBACK_ACTIVE, libc::EINVAL),
        (ERROR_INVALID_KERNEL_INFO_VERSION, libc::EPROTO),
        (ERROR_APP_INIT_FAILURE, libc::ENODEV),
        (ERROR_FS_DRIVER_REQUIRED, libc::ENODEV),
        (ERROR_INTERNAL_ERROR, libc::EIO),
    ];

    /// The errno for a Win32-style code; `EIO` for a code the table does not know.
    pub fn errno_for(code: u32) -> i32 {
        TABLE
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(libc::EIO, |(_, e)| *e)
    }

    /// The Win32-style code for an errno; `ERROR_GEN_FAILURE` for an errno the table does not
    /// know.
    pub fn code_for(errno: i32) -> u32 {
        TABLE
            .iter()
            .find(|(_, e)| *e == errno)
            .map_or(ERROR_GEN_FAILURE, |(c, _)| *c)
    }
}

/// An fsgate error: errno, Win32-style code and a message naming the argument and the reason.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    errno: i32,
    code: u32,
    message: String,
}

impl Error {
    /// An error with both codes given explicitly.
    pub fn new(code: u32, errno: i32, message: impl Into<String>) -> Self {
        Self {
            errno,
            code,
            message: message.into(),
        }
    }

    /// An error from a Win32-style code; the errno comes from the table.
    pub fn from_code(code: u32, message: impl Into<String>) -> Self {
        Self::new(code, code::errno_for(code), message)
    }

    /// An error from an errno; the Win32-style code comes from the table.
    pub fn from_errno(errno: i32, message: impl Into<String>) -> Self {
        Self::new(code::code_for(errno), errno, message)
    }

    /// `ERROR_INVALID_PARAMETER` naming the argument and why its value is refused.
    pub fn invalid_argument(argument: &str, reason: impl fmt::Display) -> Self {
        Self::from_code(
            code::ERROR_INVALID_PARAMETER,
            format!("invalid {argument}: {reason}"),
        )
    }

    /// An error from an `io::Error` raised while doing `what` (for example
    /// `"opening /dev/loop0"`). Permission errors become `ERROR_PRIVILEGE_NOT_HELD` (1314) when
    /// the caller is not root, so the reference's "privileges missing" code shows up as users
    /// expect; the errno stays the kernel's.
    pub fn io(what: impl fmt::Display, err: io::Error) -> Self {
        let errno = err.raw_os_error().unwrap_or(libc::EIO);
        let code = if matches!(errno, libc::EPERM | libc::EACCES) && !is_root() {
            code::ERROR_PRIVILEGE_NOT_HELD
        } else {
            code::code_for(errno)
        };
        Self::new(code, errno, format!("{what}: {err}"))
    }

    /// `ERROR_NO_CALLBACK_ACTIVE` (614) for a method called outside an event handler.
    pub fn no_callback_active(method: &str) -> Self {
        Self::from_code(
            code::ERROR_NO_CALLBACK_ACTIVE,
            format!("{method} can only be called inside an event handler"),
        )
    }

    /// `ERROR_NOT_READY` (21) for a method called before `initialize`, or on an inactive object.
    pub fn not_ready(what: impl fmt::Display) -> Self {
        Self::from_code(code::ERROR_NOT_READY, what.to_string())
    }

    /// The errno a caller on Linux sees.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The Win32-style code the reference documents.
    pub fn code(&self) -> u32 {
        self.code
    }

    /// The message, which names the argument and the reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context: ` put before its message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

/// Whether the effective user is root.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (error {}, {})",
            self.message,
            self.code,
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.code)
            .field("errno", &self.errno)
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(io::Error::from_raw_os_error(e.errno).kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_errnos_both_ways() {
        assert_eq!(code::errno_for(code::ERROR_ACCESS_DENIED), libc::EACCES);
        assert_eq!(code::errno_for(code::ERROR_FILE_NOT_FOUND), libc::ENOENT);
        assert_eq!(code::errno_for(code::ERROR_ALREADY_EXISTS), libc::EEXIST);
        assert_eq!(code::errno_for(code::ERROR_DIR_NOT_EMPTY), libc::ENOTEMPTY);
        assert_eq!(code::errno_for(code::ERROR_PRIVILEGE_NOT_HELD), libc::EPERM);
        assert_eq!(code::code_for(libc::EACCES), code::ERROR_ACCESS_DENIED);
        assert_eq!(code::code_for(libc::ENOENT), code::ERROR_FILE_NOT_FOUND);
        assert_eq!(code::code_for(libc::EEXIST), code::ERROR_ALREADY_EXISTS);
        assert_eq!(code::code_for(libc::ENOTEMPTY), code::ERROR_DIR_NOT_EMPTY);
        assert_eq!(code::code_for(libc::EPERM), code::ERROR_PRIVILEGE_NOT_HELD);
    }

    #[test]
    fn unknown_values_fall_back() {
        assert_eq!(code::errno_for(99_999), libc::EIO);
        assert_eq!(code::code_for(libc::ECHRNG), code::ERROR_GEN_FAILURE);
    }

    #[test]
    fn invalid_argument_names_argument_and_reason() {
        let e = Error::invalid_argument("timeout", "must be 0 or at least 3000 ms");
        assert_eq!(e.code(), code::ERROR_INVALID_PARAMETER);
        assert_eq!(e.errno(), libc::EINVAL);
        assert_eq!(
            e.message(),
            "invalid timeout: must be 0 or at least 3000 ms"
        );
        assert!(e.to_string().contains("error 87"));
    }

    #[test]
    fn io_errors_keep_errno() {
        let e = Error::io("opening x", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.errno(), libc::ENOENT);
        assert_eq!(e.code(), code::ERROR_FILE_NOT_FOUND);
        assert!(e.message().starts_with("opening x: "));
        let back: io::Error = e.into();
        assert_eq!(back.kind(), io::ErrorKind::NotFound);
    }
}
