//! `MemoryHandle`: physical memory opened read-only by `DirectAccess.open_memory`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::check;

/// Physical memory, read by physical address. The handle is released with the object.
#[pyclass(module = "fsgate._fsgate", name = "MemoryHandle", frozen)]
pub(crate) struct MemoryHandle {
    inner: fsgate_direct::MemoryHandle,
}

impl MemoryHandle {
    pub(crate) fn new(inner: fsgate_direct::MemoryHandle) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl MemoryHandle {
    /// Which kernel file serves the reads: `"kcore"` or `"mem"`.
    #[getter]
    fn source(&self) -> &'static str {
        match self.inner.source() {
            fsgate_direct::MemorySource::Kcore => "kcore",
            fsgate_direct::MemorySource::DevMem => "mem",
        }
    }

    /// The readable runs of RAM as `(physical_address, length)` pairs, in address order.
    #[getter]
    fn ranges(&self) -> Vec<(u64, u64)> {
        self.inner
            .ranges()
            .iter()
            .map(|r| (r.physical_address, r.length))
            .collect()
    }

    /// One past the highest readable physical address.
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size()
    }

    /// Reads up to `length` bytes at `physical_address` (fewer when the run of RAM ends
    /// first); an address outside RAM raises code 87, a read the kernel refuses 1314.
    fn read(&self, py: Python<'_>, physical_address: u64, length: usize) -> PyResult<Py<PyBytes>> {
        let mut buffer = vec![0u8; length];
        let inner = &self.inner;
        let n = check(
            py,
            py.detach(|| inner.read_at(physical_address, &mut buffer)),
        )?;
        Ok(PyBytes::new(py, &buffer[..n]).unbind())
    }
}
