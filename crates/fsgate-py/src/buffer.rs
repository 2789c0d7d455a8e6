//! Read and write buffers as `memoryview`s over the Rust buffer, for one handler call.

use std::os::raw::c_int;

use pyo3::ffi;
use pyo3::prelude::*;

/// `PyBUF_READ` and `PyBUF_WRITE` from CPython's `object.h` (stable values; pyo3-ffi
/// exposes them only outside the limited API before Python 3.11).
const PYBUF_READ: c_int = 0x100;
const PYBUF_WRITE: c_int = 0x200;

/// A `memoryview` over `len` bytes at `ptr`, writable or not. Private: only the two safe
/// wrappers below call it, each with a borrowed slice that outlives the view.
///
/// # Safety
/// `ptr..ptr+len` must stay valid (and, for a writable view, unaliased) until the view is
/// released.
unsafe fn raw_view<'py>(
    py: Python<'py>,
    ptr: *mut u8,
    len: usize,
    writable: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let len = isize::try_from(len)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("buffer too large"))?;
    let flags: c_int = if writable { PYBUF_WRITE } else { PYBUF_READ };
    // SAFETY: the caller keeps the memory valid until the view is released;
    // `PyMemoryView_FromMemory` returns a new reference or NULL with an exception set, which
    // `from_owned_ptr_or_err` takes over; the interpreter is attached (`py`).
    unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyMemoryView_FromMemory(ptr.cast(), len, flags))
    }
}

/// Runs `f` with a view of the view and releases the view when `f` returns: from then on
/// the view (kept by the handler or not) raises `ValueError` on use.
///
/// One case Python does not let a release cover: a *slice* of the view (`p.buffer[2:]`)
/// kept past the handler still points at the buffer, which the library reuses; handlers
/// must copy (`bytes(p.buffer[2:])`) what they keep. A view the handler exported
/// elsewhere (`numpy.frombuffer`) makes the release fail with `BufferError`, and the
/// request fails with `EIO`.
fn with_view<R>(view: Bound<'_, PyAny>, f: impl FnOnce(&Bound<'_, PyAny>) -> R) -> PyResult<R> {
    let guard = Release(Some(view));
    let r = guard.0.as_ref().map(f);
    guard.release()?;
    r.ok_or_else(|| pyo3::exceptions::PySystemError::new_err("buffer view missing"))
}

/// Releases its view when dropped, so that even a panic in the handler's call cannot leave a
/// view over a buffer the library is about to reuse.
struct Release<'py>(Option<Bound<'py, PyAny>>);

impl Release<'_> {
    /// Releases the view now, reporting a failed release (`BufferError`: exported elsewhere).
    fn release(mut self) -> PyResult<()> {
        match self.0.take() {
            Some(view) => view.call_method0("release").map(drop),
            None => Ok(()),
        }
    }
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if let Some(view) = self.0.take() {
            let _ = view.call_method0("release");
        }
    }
}

/// `f` with a read-only `memoryview` over `data` (write events), released after `f`.
pub(crate) fn with_readonly_view<R>(
    py: Python<'_>,
    data: &[u8],
    f: impl FnOnce(&Bound<'_, PyAny>) -> R,
) -> PyResult<R> {
    // SAFETY: `data` is borrowed for this whole call and `with_view` releases the view
    // before returning; the view is read-only, matching the shared borrow.
    let view = unsafe { raw_view(py, data.as_ptr().cast_mut(), data.len(), false)? };
    with_view(view, f)
}

/// `f` with a writable `memoryview` over `data` (read events), released after `f`.
pub(crate) fn with_writable_view<R>(
    py: Python<'_>,
    data: &mut [u8],
    f: impl FnOnce(&Bound<'_, PyAny>) -> R,
) -> PyResult<R> {
    // SAFETY: `data` is mutably borrowed for this whole call (nothing else reads or writes
    // it meanwhile) and `with_view` releases the view before returning.
    let view = unsafe { raw_view(py, data.as_mut_ptr(), data.len(), true)? };
    with_view(view, f)
}
