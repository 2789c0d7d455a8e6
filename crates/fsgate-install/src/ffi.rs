//! The C ABI installer library (`libfsgate_install.so`, header `include/fsgate_install.h`):
//! the analog of the reference's installer DLL `*A` functions, for setup programs written in
//! other languages.
//!
//! Every function takes UTF-8, NUL-terminated strings. `root` may be NULL for the live system
//! (`$FSGATE_ROOT` or `/`). Each returns 0 on success or the Win32-style error code the Rust
//! API reports (1314, 87, 2, 13, 340, …); [`fsgate_last_error`] then gives the message.
//! Outputs are written only on success. A panic never crosses the boundary: it becomes
//! `ERROR_INTERNAL_ERROR` (1359).

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::path::Path;

use fsgate_core::{code, Error, Result};

use crate::Installer;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Reads a required C string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn text<'a>(argument: &str, ptr: *const c_char) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid_argument(argument, "is NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| Error::invalid_argument(argument, "is not valid UTF-8"))
}

/// The installer for a `root` argument (NULL: the live system).
///
/// # Safety
/// As [`text`].
unsafe fn installer(root: *const c_char) -> Result<Installer> {
    if root.is_null() {
        Ok(Installer::system())
    } else {
        // SAFETY: forwarded contract.
        Ok(Installer::new(unsafe { text("root", root) }?))
    }
}

/// Runs `f`, records its error message and returns its code (0 on success).
fn call(f: impl FnOnce() -> Result<()>) -> u32 {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::from_code(
            code::ERROR_INTERNAL_ERROR,
            "the installer library panicked",
        ))
    });
    let (rc, message) = match outcome {
        Ok(()) => (0, String::new()),
        Err(e) => (e.code(), e.to_string()),
    };
    LAST_ERROR.with(|l| *l.borrow_mut() = message);
    rc
}

/// `install`: installs the package for the product; `*reboot_needed` (may be NULL) is set to
/// 1 when a reboot is needed, else 0.
///
/// # Safety
/// String arguments are NULL (root only) or valid NUL-terminated strings; `reboot_needed` is
/// NULL or points to writable memory for an `int`.
#[no_mangle]
pub unsafe extern "C" fn fsgate_install(
    root: *const c_char,
    package_path: *const c_char,
    product_guid: *const c_char,
    path_to_install: *const c_char,
    flags: u32,
    reboot_needed: *mut c_int,
) -> u32 {
    call(|| {
        // SAFETY: the caller's contract covers every pointer read here.
        let (inst, pkg, guid, path) = unsafe {
            (
                installer(root)?,
                text("package_path", package_path)?,
                text("product_guid", product_guid)?,
                text("path_to_install", path_to_install)?,
            )
        };
        let reboot = inst.install(Path::new(pkg), guid, path, flags)?;
        if !reboot_needed.is_null() {
            // SAFETY: non-NULL and writable per the caller's contract.
            unsafe { *reboot_needed = c_int::from(reboot) };
        }
        Ok(())
    })
}

/// `uninstall`: removes the product's installation; `*reboot_needed` as for
/// [`fsgate_install`].
///
/// # Safety
/// As [`fsgate_install`].
#[no_mangle]
pub unsafe extern "C" fn fsgate_uninstall(
    root: *const c_char,
    package_path: *const c_char,
    product_guid: *const c_char,
    installed_path: *const c_char,
    flags: u32,
    reboot_needed: *mut c_int,
) -> u32 {
    call(|| {
        // SAFETY: the caller's contract covers every pointer read here.
        let (inst, pkg, guid, path) = unsafe {
            (
                installer(root)?,
                text("package_path", package_path)?,
                text("product_guid", product_guid)?,
                text("installed_path", installed_path)?,
            )
        };
        let reboot = inst.uninstall(Path::new(pkg), guid, path, flags)?;
        if !reboot_needed.is_null() {
            // SAFETY: non-NULL and writable per the caller's contract.
            unsafe { *reboot_needed = c_int::from(reboot) };
        }
        Ok(())
    })
}

/// `get_driver_status`: writes 0 (not present), 1 (stopped) or 4 (running) to `*status`.
///
/// # Safety
/// Strings as for [`fsgate_install`]; `status` points to writable memory for a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn fsgate_get_driver_status(
    root: *const c_char,
    product_guid: *const c_char,
    status: *mut u32,
) -> u32 {
    call(|| {
        if status.is_null() {
            return Err(Error::invalid_argument("status", "is NULL"));
        }
        // SAFETY: the caller's contract covers the strings.
        let (inst, guid) = unsafe { (installer(root)?, text("product_guid", product_guid)?) };
        let value = inst.get_driver_status(guid)?;
        // SAFETY: non-NULL and writable per the caller's contract.
        unsafe { *status = value };
        Ok(())
    })
}

/// `get_driver_version`: writes the four-part 64-bit version (0 when not installed) to
/// `*version`.
///
/// # Safety
/// Strings as for [`fsgate_install`]; `version` points to writable memory for a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn fsgate_get_driver_version(
    root: *const c_char,
    product_guid: *const c_char,
    version: *mut u64,
) -> u32 {
    call(|| {
        if version.is_null() {
            return Err(Error::invalid_argument("version", "is NULL"));
        }
        // SAFETY: the caller's contract covers the strings.
        let (inst, guid) = unsafe { (installer(root)?, text("product_guid", product_guid)?) };
        let value = inst.get_driver_version(guid)?;
        // SAFETY: non-NULL and writable per the caller's contract.
        unsafe { *version = value };
        Ok(())
    })
}

/// The `initialize` check: 0 when installed and not older than this library, else 2 or 340.
///
/// # Safety
/// Strings as for [`fsgate_install`].
#[no_mangle]
pub unsafe extern "C" fn fsgate_verify_installed(
    root: *const c_char,
    product_guid: *const c_char,
) -> u32 {
    call(|| {
        // SAFETY: the caller's contract covers the strings.
        let (inst, guid) = unsafe { (installer(root)?, text("product_guid", product_guid)?) };
        inst.verify_installed(guid)
    })
}

/// Copies the calling thread's last error message (empty after a success) into `buffer`,
/// NUL-terminated and truncated to `size` bytes; returns the message length without the NUL,
/// like `snprintf`, so a caller can size a buffer. `buffer` may be NULL when `size` is 0.
///
/// # Safety
/// `buffer` is NULL or points to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn fsgate_last_error(buffer: *mut c_char, size: usize) -> usize {
    LAST_ERROR.with(|l| {
        let message = l.borrow();
        let bytes = message.as_bytes();
        if !buffer.is_null() && size > 0 {
            let n = bytes.len().min(size - 1);
            // SAFETY: buffer has `size` writable bytes and n + 1 <= size; the source is a
            // live String that does not overlap the caller's buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), n);
                *buffer.add(n) = 0;
            }
        }
        bytes.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_bad_arguments_return_87_with_a_message() {
        // SAFETY: every pointer is a NUL-terminated literal or null, as the function allows.
        let rc = unsafe {
            fsgate_install(
                c"/nonexistent".as_ptr(),
                std::ptr::null(),
                c"{x}".as_ptr(),
                c"".as_ptr(),
                0,
                std::ptr::null_mut(),
            )
        };
        if rustix::process::geteuid().is_root() {
            assert_eq!(rc, code::ERROR_INVALID_PARAMETER);
            let mut buf = [0 as c_char; 8];
            // SAFETY: `buf` is writable for `buf.len()` bytes.
            let len = unsafe { fsgate_last_error(buf.as_mut_ptr(), buf.len()) };
            assert!(len > 7);
            // SAFETY: fsgate_last_error NUL-terminates what it writes into `buf`.
            let short = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
            assert_eq!(short.len(), 7);
        } else {
            assert_eq!(rc, code::ERROR_PRIVILEGE_NOT_HELD);
        }
        let mut v = 7u64;
        // SAFETY: NUL-terminated literals and a valid pointer to `v`.
        let rc =
            unsafe { fsgate_get_driver_version(c"/nonexistent".as_ptr(), c"{x}".as_ptr(), &mut v) };
        assert_eq!(rc, code::ERROR_INVALID_PARAMETER);
        assert_eq!(v, 7);
    }
}
