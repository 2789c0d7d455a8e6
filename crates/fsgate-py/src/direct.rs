//! The Python `DirectAccess` class (the reference's `CBDirect`) and its volume handles.

use std::sync::{Arc, Mutex};

use fsgate_core::{code, Error};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::error::{check, to_py};
use crate::params::ErrorParams;

/// An open volume (`open_volume`): a block device or an image file, locked against other
/// exclusive users until `close()` (or the end of a `with` block, or collection).
#[pyclass(module = "fsgate._fsgate", name = "VolumeHandle")]
pub(crate) struct VolumeHandle {
    inner: Mutex<Option<Arc<fsgate_direct::VolumeHandle>>>,
}

impl VolumeHandle {
    /// The open handle, or `ERROR_INVALID_HANDLE` (6) once closed.
    fn get(&self, py: Python<'_>) -> PyResult<Arc<fsgate_direct::VolumeHandle>> {
        let slot = self.inner.lock().map_err(|_| {
            to_py(
                py,
                &Error::from_code(code::ERROR_INTERNAL_ERROR, "volume handle poisoned"),
            )
        })?;
        slot.clone().ok_or_else(|| {
            to_py(
                py,
                &Error::from_code(code::ERROR_INVALID_HANDLE, "the volume handle is closed"),
            )
        })
    }
}

#[pymethods]
impl VolumeHandle {
    /// Closes the volume (a transfer running on another thread finishes first). Closing twice
    /// does nothing.
    fn close(&self) {
        if let Ok(mut slot) = self.inner.lock() {
            slot.take();
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }

    /// The device or image path.
    #[getter]
    fn path(&self, py: Python<'_>) -> PyResult<std::path::PathBuf> {
        Ok(self.get(py)?.path().to_path_buf())
    }

    /// Whether the volume was opened for writing.
    #[getter]
    fn writable(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.get(py)?.is_writable())
    }
}

/// Direct access to disks, volumes and image files: `initialize(product_guid)` (fsgate must
/// be installed for it, see `install`), then `open_volume` and sector I/O.
#[pyclass(module = "fsgate._fsgate", name = "DirectAccess", subclass)]
pub(crate) struct DirectAccess {
    inner: Arc<fsgate_direct::DirectAccess>,
    on_error: Arc<Mutex<Option<Py<PyAny>>>>,
}

#[pymethods]
impl DirectAccess {
    /// An instance whose installation root is `$FSGATE_ROOT` (read now), else `/`.
    #[new]
    fn new() -> Self {
        let inner = Arc::new(fsgate_direct::DirectAccess::new());
        let on_error: Arc<Mutex<Option<Py<PyAny>>>> = Arc::default();
        let hook = Arc::clone(&on_error);
        inner.set_on_error(move |e| {
            Python::attach(|py| {
                let handler = hook
                    .lock()
                    .ok()
                    .and_then(|h| h.as_ref().map(|h| h.clone_ref(py)));
                if let Some(handler) = handler {
                    if let Err(err) =
                        handler.call1(py, (ErrorParams::new(e.error_code, &e.description),))
                    {
                        err.write_unraisable(py, None);
                    }
                }
            })
        });
        Self { inner, on_error }
    }

    /// Checks that fsgate is installed for `product_guid`; every other method but the
    /// installation ones fails with code 21 until this succeeds.
    fn initialize(&self, py: Python<'_>, product_guid: &str) -> PyResult<()> {
        check(py, self.inner.initialize(product_guid))
    }

    /// Installs fsgate's system files from a package (`build_package`); returns whether a
    /// reboot is needed.
    #[pyo3(signature = (cab_file_name, product_guid, path_to_install = "", flags = 0))]
    fn install(
        &self,
        py: Python<'_>,
        cab_file_name: &str,
        product_guid: &str,
        path_to_install: &str,
        flags: u32,
    ) -> PyResult<bool> {
        let inner = &self.inner;
        check(
            py,
            py.detach(|| inner.install(cab_file_name, product_guid, path_to_install, flags)),
        )
    }

    /// Removes `product_guid`'s installation; returns whether a reboot is needed.
    #[pyo3(signature = (cab_file_name, product_guid, installed_path = "", flags = 0))]
    fn uninstall(
        &self,
        py: Python<'_>,
        cab_file_name: &str,
        product_guid: &str,
        installed_path: &str,
        flags: u32,
    ) -> PyResult<bool> {
        let inner = &self.inner;
        check(
            py,
            py.detach(|| inner.uninstall(cab_file_name, product_guid, installed_path, flags)),
        )
    }

    /// 0 not present, 1 stopped, 4 running.
    fn get_driver_status(&self, py: Python<'_>, product_guid: &str) -> PyResult<u32> {
        check(py, self.inner.get_driver_status(product_guid))
    }

    /// The installed version, four 16-bit parts in 64 bits; 0 when not installed.
    fn get_driver_version(&self, py: Python<'_>, product_guid: &str) -> PyResult<u64> {
        check(py, self.inner.get_driver_version(product_guid))
    }

    /// Application-defined data.
    #[getter]
    fn tag(&self) -> i64 {
        self.inner.tag()
    }
    #[setter]
    fn set_tag(&self, value: i64) {
        self.inner.set_tag(value);
    }

    /// `BuildInfo`, `LicenseInfo` (read-only).
    fn config(&self, py: Python<'_>, configuration_string: &str) -> PyResult<String> {
        check(py, self.inner.config(configuration_string))
    }

    /// The `on_error` handler (`ErrorParams`: `error_code`, `description`).
    #[getter]
    fn on_error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.on_error
            .lock()
            .ok()
            .and_then(|h| h.as_ref().map(|h| h.clone_ref(py)))
    }
    #[setter]
    fn set_on_error(&self, handler: Option<Py<PyAny>>) {
        if let Ok(mut slot) = self.on_error.lock() {
            *slot = handler;
        }
    }

    /// Opens a volume (`/dev/loop0`, `/dev/sdb1`, an image file) with `GENERIC_READ`
    /// (0x80000000) and/or `GENERIC_WRITE` (0x40000000); `force_unmount` unmounts its
    /// mounts first. The GIL is released while opening.
    #[pyo3(signature = (volume_name, desired_access, force_unmount = false))]
    fn open_volume(
        &self,
        py: Python<'_>,
        volume_name: &str,
        desired_access: u32,
        force_unmount: bool,
    ) -> PyResult<VolumeHandle> {
        let inner = &self.inner;
        let handle = check(
            py,
            py.detach(|| inner.open_volume(volume_name, desired_access, force_unmount)),
        )?;
        Ok(VolumeHandle {
            inner: Mutex::new(Some(Arc::new(handle))),
        })
    }

    /// `open_volume` as a `DirectStream` (the reference's `CBFSDirectStream`).
    #[pyo3(signature = (volume_name, desired_access, force_unmount = false))]
    fn open_volume_as_stream(
        &self,
        py: Python<'_>,
        volume_name: &str,
        desired_access: u32,
        force_unmount: bool,
    ) -> PyResult<crate::stream::DirectStream> {
        let inner = &self.inner;
        let stream = check(
            py,
            py.detach(|| inner.open_volume_as_stream(volume_name, desired_access, force_unmount)),
        )?;
        Ok(crate::stream::DirectStream::new(stream))
    }

    /// Opens or creates a file with the reference's `desired_access`, `creation_disposition`
    /// and `flags_and_attributes` (mapped as `fsgate_direct::DirectAccess::create_file`
    /// says); returns a file descriptor the caller owns (`os.read`, `os.fdopen`,
    /// `os.close`): the Linux form of the reference's handle.
    #[pyo3(signature = (file_name, desired_access, creation_disposition, flags_and_attributes = 0))]
    fn create_file(
        &self,
        py: Python<'_>,
        file_name: &str,
        desired_access: u32,
        creation_disposition: u32,
        flags_and_attributes: u32,
    ) -> PyResult<i32> {
        let inner = &self.inner;
        let file = check(
            py,
            py.detach(|| {
                inner.create_file(
                    file_name,
                    desired_access,
                    creation_disposition,
                    flags_and_attributes,
                )
            }),
        )?;
        Ok(std::os::fd::IntoRawFd::into_raw_fd(file))
    }

    /// `create_file` as a `DirectStream`.
    #[pyo3(signature = (file_name, desired_access, creation_disposition, flags_and_attributes = 0))]
    fn create_file_as_stream(
        &self,
        py: Python<'_>,
        file_name: &str,
        desired_access: u32,
        creation_disposition: u32,
        flags_and_attributes: u32,
    ) -> PyResult<crate::stream::DirectStream> {
        let inner = &self.inner;
        let stream = check(
            py,
            py.detach(|| {
                inner.create_file_as_stream(
                    file_name,
                    desired_access,
                    creation_disposition,
                    flags_and_attributes,
                )
            }),
        )?;
        Ok(crate::stream::DirectStream::new(stream))
    }

    /// Deletes a file (not a directory). Linux removes the name even while processes hold
    /// the file open; with `close_open_handles` the holders found before the deletion are
    /// returned as `(process_id, fd)` pairs (Linux cannot close them), else the list is
    /// empty.
    #[pyo3(signature = (file_name, close_open_handles = false))]
    fn delete_file(
        &self,
        py: Python<'_>,
        file_name: &str,
        close_open_handles: bool,
    ) -> PyResult<Vec<(u32, i32)>> {
        let inner = &self.inner;
        let holders = check(
            py,
            py.detach(|| inner.delete_file(file_name, close_open_handles)),
        )?;
        Ok(holders.iter().map(|h| (h.process_id, h.fd)).collect())
    }

    /// Opens physical memory read-only as a `MemoryHandle` (`/proc/kcore`, else `/dev/mem`;
    /// code 50 when the kernel has neither, 1314 without the privilege).
    fn open_memory(&self, py: Python<'_>) -> PyResult<crate::memory::MemoryHandle> {
        check(py, self.inner.open_memory()).map(crate::memory::MemoryHandle::new)
    }

    /// `open_memory` as a read-only `DirectStream` whose position is the physical address.
    fn open_memory_as_stream(&self, py: Python<'_>) -> PyResult<crate::stream::DirectStream> {
        check(py, self.inner.open_memory_as_stream()).map(crate::stream::DirectStream::new)
    }

    /// The number of whole sectors.
    fn get_sector_count(&self, py: Python<'_>, volume_handle: &VolumeHandle) -> PyResult<u64> {
        check(py, self.inner.get_sector_count(&*volume_handle.get(py)?))
    }

    /// The logical sector size in bytes.
    fn get_sector_size(&self, py: Python<'_>, volume_handle: &VolumeHandle) -> PyResult<u32> {
        check(py, self.inner.get_sector_size(&*volume_handle.get(py)?))
    }

    /// The physical sector size in bytes (an fsgate addition).
    fn get_physical_sector_size(
        &self,
        py: Python<'_>,
        volume_handle: &VolumeHandle,
    ) -> PyResult<u32> {
        check(
            py,
            self.inner
                .get_physical_sector_size(&*volume_handle.get(py)?),
        )
    }

    /// Reads `sector_count` sectors from `starting_sector` into `buffer`, a `bytearray` of at
    /// least `sector_count * sector_size` bytes, filled in place (no copy). Other writable
    /// buffers (`memoryview`, `array`, numpy) are filled through one copy: the stable ABI
    /// this wheel targets (CPython 3.9) has no buffer protocol. The GIL stays held during the
    /// transfer (nothing else may resize or touch the `bytearray` meanwhile).
    fn read_sectors(
        &self,
        py: Python<'_>,
        volume_handle: &VolumeHandle,
        starting_sector: u64,
        sector_count: u64,
        buffer: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let volume = volume_handle.get(py)?;
        if let Ok(array) = buffer.cast::<PyByteArray>() {
            // SAFETY: the GIL is held for the whole use of the slice and no Python code runs
            // meanwhile, so nothing can resize, free or access the bytearray's storage.
            let bytes = unsafe { array.as_bytes_mut() };
            return check(
                py,
                self.inner
                    .read_sectors(&volume, starting_sector, sector_count, bytes),
            );
        }
        let view = py
            .import("builtins")?
            .getattr("memoryview")?
            .call1((buffer,))?
            .call_method1("cast", ("B",))?;
        let mut data = vec![0u8; view.len()?];
        let inner = &self.inner;
        check(
            py,
            py.detach(|| inner.read_sectors(&volume, starting_sector, sector_count, &mut data)),
        )?;
        let end = isize::try_from(data.len()).unwrap_or(isize::MAX);
        view.set_item(
            pyo3::types::PySlice::new(py, 0, end, 1),
            PyBytes::new(py, &data),
        )?;
        view.call_method0("release").map(drop)
    }

    /// Writes `sector_count` sectors from `buffer` at `starting_sector`. `bytes` are written
    /// in place with the GIL released (they are immutable); a `bytearray` in place with the
    /// GIL held; other buffers through one copy.
    fn write_sectors(
        &self,
        py: Python<'_>,
        volume_handle: &VolumeHandle,
        starting_sector: u64,
        sector_count: u64,
        buffer: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let volume = volume_handle.get(py)?;
        let inner = &self.inner;
        if let Ok(bytes) = buffer.cast::<PyBytes>() {
            let owned: Py<PyBytes> = bytes.clone().unbind();
            let data = owned.as_bytes(py);
            return check(
                py,
                py.detach(|| inner.write_sectors(&volume, starting_sector, sector_count, data)),
            );
        }
        if let Ok(array) = buffer.cast::<PyByteArray>() {
            // SAFETY: the GIL is held for the whole use of the slice and no Python code runs
            // meanwhile, so nothing can resize, free or change the bytearray's storage.
            let data = unsafe { array.as_bytes() };
            return check(
                py,
                inner.write_sectors(&volume, starting_sector, sector_count, data),
            );
        }
        let data: Vec<u8> = py
            .import("builtins")?
            .getattr("bytes")?
            .call1((buffer,))?
            .extract()?;
        check(
            py,
            py.detach(|| inner.write_sectors(&volume, starting_sector, sector_count, &data)),
        )
    }
}
