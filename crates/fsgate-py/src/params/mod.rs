//! The params objects handlers receive: one Python class per event, with the reference's
//! property names (getters; setters for what the handler answers).
//!
//! Each object holds copies of the event's inputs and the handler's outputs; the event
//! reads the outputs back after the handler returns, so an object kept past its handler is
//! harmless (changing it then changes nothing). Names are `str` decoded as `os.fsdecode`
//! does (undecodable bytes become lone surrogates), and names a handler sets are encoded
//! back the same way, so every byte name round-trips. Contexts are the objects stored.

use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::PyString;

mod changes;
mod data;
mod eas;
mod handle;
mod info;
mod links;
mod open;
mod volume;

pub(crate) use changes::*;
pub(crate) use data::*;
pub(crate) use eas::*;
pub(crate) use handle::*;
pub(crate) use info::*;
pub(crate) use links::*;
pub(crate) use open::*;
pub(crate) use volume::*;

/// A path as Python's `os.fsdecode` gives it.
pub(crate) fn name(py: Python<'_>, path: &Path) -> PyResult<Py<PyString>> {
    os_name(py, path.as_os_str())
}

/// A name (an attribute's) as Python's `os.fsdecode` gives it.
pub(crate) fn os_name(py: Python<'_>, name: &std::ffi::OsStr) -> PyResult<Py<PyString>> {
    Ok(name.into_pyobject(py)?.unbind())
}

/// Implements [`EventParams`](crate::hooks::EventParams) for classes with a `result_code`.
macro_rules! with_result_code {
    ($($class:ty),* $(,)?) => {
        $(impl crate::hooks::EventParams for $class {
            fn result_code(&self) -> i64 {
                self.result_code
            }
        })*
    };
}
pub(crate) use with_result_code;

/// Every params class with its fsgate name and the reference's (`CBFS…EventParams`), for
/// the module to register.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! classes {
        ($($class:ty => $alias:literal,)*) => {
            $(
                m.add_class::<$class>()?;
                m.add($alias, m.py().get_type::<$class>())?;
            )*
        };
    }
    classes! {
        MountParams => "CBFSMountEventParams",
        UnmountParams => "CBFSUnmountEventParams",
        GetVolumeSizeParams => "CBFSGetVolumeSizeEventParams",
        GetVolumeLabelParams => "CBFSGetVolumeLabelEventParams",
        GetVolumeIdParams => "CBFSGetVolumeIdEventParams",
        ErrorParams => "CBFSErrorEventParams",
        WorkerThreadParams => "CBFSWorkerThreadCreationEventParams",
        CreateFileParams => "CBFSCreateFileEventParams",
        OpenFileParams => "CBFSOpenFileEventParams",
        CleanupFileParams => "CBFSCleanupFileEventParams",
        CloseFileParams => "CBFSCloseFileEventParams",
        GetFileInfoParams => "CBFSGetFileInfoEventParams",
        EnumerateDirectoryParams => "CBFSEnumerateDirectoryEventParams",
        CloseDirectoryEnumerationParams => "CBFSCloseDirectoryEnumerationEventParams",
        ReadFileParams => "CBFSReadFileEventParams",
        WriteFileParams => "CBFSWriteFileEventParams",
        SetFileSizeParams => "CBFSSetFileSizeEventParams",
        SetAllocationSizeParams => "CBFSSetAllocationSizeEventParams",
        SetFileAttributesParams => "CBFSSetFileAttributesEventParams",
        RenameOrMoveFileParams => "CBFSRenameOrMoveFileEventParams",
        CanFileBeDeletedParams => "CBFSCanFileBeDeletedEventParams",
        DeleteFileParams => "CBFSDeleteFileEventParams",
        IsDirectoryEmptyParams => "CBFSIsDirectoryEmptyEventParams",
        FlushFileParams => "CBFSFlushFileEventParams",
        SetFileSecurityParams => "CBFSSetFileSecurityEventParams",
        CreateHardLinkParams => "CBFSCreateHardLinkEventParams",
        CreateSymbolicLinkParams => "CBFSCreateSymbolicLinkEventParams",
        GetSymbolicLinkTargetParams => "CBFSGetSymbolicLinkTargetEventParams",
        ExchangeFilesParams => "CBFSExchangeFilesEventParams",
        ZeroizeFileRangeParams => "CBFSZeroizeFileRangeEventParams",
        CopyFileRangeParams => "CBFSCopyFileRangeEventParams",
        GetEaParams => "CBFSGetEaEventParams",
        SetEaParams => "CBFSSetEaEventParams",
        ListEasParams => "CBFSListEasEventParams",
        RemoveEaParams => "CBFSRemoveEaEventParams",
    }
    m.add_class::<HandleInfo>()?;
    m.add(
        "CBFSWorkerThreadTerminationEventParams",
        m.py().get_type::<WorkerThreadParams>(),
    )?;
    Ok(())
}
