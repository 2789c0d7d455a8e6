//! `DirectStream` (the reference's `CBFSDirectStream`): a volume as a Python binary stream.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Mutex, MutexGuard};

use fsgate_core::{code, Error, Result};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::error::check;

/// A seekable byte stream over an open volume (`DirectAccess.open_volume_as_stream`), with
/// the methods of Python's binary streams. Transfers into or out of `bytes` and
/// owned buffers run with the GIL released; a `bytearray` is read into or written from in
/// place with the GIL held.
#[pyclass(module = "fsgate._fsgate", name = "DirectStream")]
pub(crate) struct DirectStream {
    inner: Mutex<Option<fsgate_direct::DirectStream>>,
}

impl DirectStream {
    pub(crate) fn new(stream: fsgate_direct::DirectStream) -> Self {
        Self {
            inner: Mutex::new(Some(stream)),
        }
    }

    /// Runs `f` on the open stream; `ERROR_INVALID_HANDLE` (6) once closed. Never call it
    /// while waiting for the GIL could be needed by the lock's holder: the lock is only taken
    /// by code that does not attach while holding it.
    fn with<T>(&self, f: impl FnOnce(&mut fsgate_direct::DirectStream) -> Result<T>) -> Result<T> {
        let mut slot: MutexGuard<'_, _> = self
            .inner
            .lock()
            .map_err(|_| Error::from_code(code::ERROR_INTERNAL_ERROR, "stream poisoned"))?;
        match slot.as_mut() {
            Some(s) => f(s),
            None => Err(Error::from_code(
                code::ERROR_INVALID_HANDLE,
                "the stream is closed",
            )),
        }
    }
}

/// An I/O error of the stream as an fsgate error.
fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(what, e)
}

/// Reads until `buf` is full or the end.
fn read_full(s: &mut fsgate_direct::DirectStream, buf: &mut [u8]) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match s.read(&mut buf[done..]).map_err(io("reading the stream"))? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

#[pymethods]
impl DirectStream {
    /// The length in bytes.
    #[getter]
    fn length(&self, py: Python<'_>) -> PyResult<u64> {
        check(py, self.with(|s| s.length()))
    }

    /// Always true.
    fn readable(&self) -> bool {
        true
    }

    /// Whether the volume was opened for writing.
    fn writable(&self, py: Python<'_>) -> PyResult<bool> {
        check(py, self.with(|s| Ok(s.writable())))
    }

    /// The reference's spelling of `writable`.
    fn writeable(&self, py: Python<'_>) -> PyResult<bool> {
        self.writable(py)
    }

    /// Always true.
    fn seekable(&self) -> bool {
        true
    }

    /// The current position.
    fn tell(&self, py: Python<'_>) -> PyResult<u64> {
        check(py, self.with(|s| Ok(s.tell())))
    }

    /// Moves to `offset` from the start (`whence` 0), the current position (1) or the end
    /// (2); returns the new position.
    #[pyo3(signature = (offset, whence = 0))]
    fn seek(&self, py: Python<'_>, offset: i64, whence: i32) -> PyResult<u64> {
        let to = match whence {
            0 => match u64::try_from(offset) {
                Ok(o) => SeekFrom::Start(o),
                Err(_) => {
                    let e = Error::invalid_argument("offset", "negative with SEEK_SET");
                    return Err(crate::error::to_py(py, &e));
                }
            },
            1 => SeekFrom::Current(offset),
            2 => SeekFrom::End(offset),
            other => {
                let e = Error::invalid_argument("whence", format!("{other} is not 0, 1 or 2"));
                return Err(crate::error::to_py(py, &e));
            }
        };
        check(
            py,
            py.detach(|| self.with(|s| s.seek(to).map_err(io("seeking")))),
        )
    }

    /// Up to `n` bytes from the current position (all to the end when `n` is -1).
    #[pyo3(signature = (n = -1))]
    fn read<'py>(&self, py: Python<'py>, n: i64) -> PyResult<Bound<'py, PyBytes>> {
        let data = check(
            py,
            py.detach(|| {
                self.with(|s| {
                    let want = match u64::try_from(n) {
                        Ok(n) => n,
                        Err(_) => s.length()?.saturating_sub(s.tell()),
                    };
                    let want = usize::try_from(want)
                        .map_err(|_| Error::invalid_argument("n", "larger than memory"))?;
                    let mut buf = vec![0u8; want];
                    let got = read_full(s, &mut buf)?;
                    buf.truncate(got);
                    Ok(buf)
                })
            }),
        )?;
        Ok(PyBytes::new(py, &data))
    }

    /// Everything from the current position to the end.
    fn readall<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.read(py, -1)
    }

    /// Reads up to `len(b)` bytes into `b` (a `bytearray` in place, another writable buffer
    /// through one copy); returns how many.
    fn readinto(&self, py: Python<'_>, b: &Bound<'_, PyAny>) -> PyResult<usize> {
        if let Ok(array) = b.cast::<PyByteArray>() {
            // SAFETY: the GIL is held for the whole use of the slice and no Python code runs
            // meanwhile, so nothing can resize, free or access the bytearray's storage.
            let bytes = unsafe { array.as_bytes_mut() };
            return check(py, self.with(|s| read_full(s, bytes)));
        }
        let view = py
            .import("builtins")?
            .getattr("memoryview")?
            .call1((b,))?
            .call_method1("cast", ("B",))?;
        let mut data = vec![0u8; view.len()?];
        let got = check(py, py.detach(|| self.with(|s| read_full(s, &mut data))))?;
        let end = isize::try_from(got).unwrap_or(isize::MAX);
        view.set_item(
            pyo3::types::PySlice::new(py, 0, end, 1),
            PyBytes::new(py, &data[..got]),
        )?;
        view.call_method0("release")?;
        Ok(got)
    }

    /// Writes `b` (`bytes` in place with the GIL released, a `bytearray` in place, other
    /// buffers through one copy); returns how many bytes were written.
    fn write(&self, py: Python<'_>, b: &Bound<'_, PyAny>) -> PyResult<usize> {
        let all = |s: &mut fsgate_direct::DirectStream, data: &[u8]| {
            s.write_all(data).map_err(io("writing the stream"))?;
            Ok(data.len())
        };
        if let Ok(bytes) = b.cast::<PyBytes>() {
            let owned: Py<PyBytes> = bytes.clone().unbind();
            let data = owned.as_bytes(py);
            return check(py, py.detach(|| self.with(|s| all(s, data))));
        }
        if let Ok(array) = b.cast::<PyByteArray>() {
            // SAFETY: the GIL is held for the whole use of the slice and no Python code runs
            // meanwhile, so nothing can resize, free or change the bytearray's storage.
            let data = unsafe { array.as_bytes() };
            return check(py, self.with(|s| all(s, data)));
        }
        let data: Vec<u8> = py
            .import("builtins")?
            .getattr("bytes")?
            .call1((b,))?
            .extract()?;
        check(py, py.detach(|| self.with(|s| all(s, &data))))
    }

    /// Sets the length (files only; a volume's is fixed: code 50).
    #[pyo3(signature = (size = None))]
    fn truncate(&self, py: Python<'_>, size: Option<u64>) -> PyResult<u64> {
        check(py, py.detach(|| self.with(|s| s.truncate(size))))
    }

    /// Writes out what the stream buffers.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        check(
            py,
            py.detach(|| self.with(|s| s.flush().map_err(io("flushing")))),
        )
    }

    /// Flushes and closes; closing twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .inner
            .lock()
            .map_err(|_| Error::from_code(code::ERROR_INTERNAL_ERROR, "stream poisoned"))
            .map(|mut slot| slot.take());
        match check(py, taken)? {
            Some(stream) => check(py, py.detach(|| stream.close())),
            None => Ok(()),
        }
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().map(|s| s.is_none()).unwrap_or(true)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.close(py)
    }
}
