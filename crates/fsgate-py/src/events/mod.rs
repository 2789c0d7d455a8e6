//! `PyEvents`: the Rust drive's events, each answered by the Python handler set for it.
//!
//! An event whose `on_*` property is unset does what the Rust trait does unhandled, without
//! attaching to the interpreter. A handled event attaches (taking the GIL), builds its
//! params object, calls the handler, reads the outputs back and detaches.

use std::sync::Arc;

use fsgate_core::{code, Error, Result};
use fsgate_vfs::params as rs;
use fsgate_vfs::Events;
use pyo3::prelude::*;

use crate::buffer::{with_readonly_view, with_writable_view};
use crate::context::{fill_slot, read_slot, write_file_context, write_slot, PyContext};
use crate::hooks::{Event, Hooks};
use crate::params::{self as py_params, name, InfoValues};

/// The events of a Python drive.
pub(crate) struct PyEvents {
    pub(crate) hooks: Arc<Hooks>,
}

/// Opens the real file a handler routed a handle to, with the access of the caller's open
/// `flags`; `create_mode` (a create event) creates it with those permission bits.
fn open_route(
    path: &std::path::Path,
    flags: i32,
    create_mode: Option<u32>,
) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let access = flags & libc::O_ACCMODE;
    let mut options = std::fs::OpenOptions::new();
    options
        .read(access != libc::O_WRONLY)
        .write(access != libc::O_RDONLY);
    if let Some(mode) = create_mode {
        options.custom_flags(libc::O_CREAT).mode(mode);
    }
    options
        .open(path)
        .map_err(|e| Error::io(format!("route_to_file: opening {}", path.display()), e))
}

/// The error of an event left unhandled whose default refuses (`EOPNOTSUPP`).
fn not_supported(event: Event) -> Error {
    Error::from_code(
        code::ERROR_NOT_SUPPORTED,
        format!("{} is not handled by this drive", event.name()),
    )
}

impl PyEvents {
    /// Runs `f` with the interpreter attached and the handler of `event`; `unhandled` when
    /// none is set. A Python error while preparing the params or reading them back is
    /// reported like a handler's exception.
    fn fire(
        &self,
        event: Event,
        unhandled: impl FnOnce() -> Result<()>,
        f: impl FnOnce(Python<'_>, &Py<PyAny>) -> PyResult<Result<()>>,
    ) -> Result<()> {
        let Some(handler) = self.hooks.get(event) else {
            return unhandled();
        };
        crate::attach::attach(|py| match f(py, &handler) {
            Ok(r) => r,
            Err(e) => Err(self.hooks.exception(py, event, e)),
        })
    }

    /// Fires a thread event (no params but an empty object, no result).
    fn thread_event(&self, event: Event) {
        if let Some(handler) = self.hooks.get(event) {
            crate::attach::attach(|py| {
                if let Err(e) = handler.call1(py, (py_params::WorkerThreadParams {},)) {
                    let _ = self.hooks.exception(py, event, e);
                }
            });
        }
    }
}

/// `Ok(r)` when `r` is `Ok` after a Python step, else the step's error: lets a closure use
/// `?` on both Python errors and event results.
macro_rules! call {
    ($self:ident, $py:ident, $event:expr, $handler:ident, $params:expr) => {
        match $self.hooks.call($py, $event, $handler, $params) {
            Ok(object) => object,
            Err(e) => return Ok(Err(e)),
        }
    };
}

mod copy;
mod eas;
mod links;
mod listing;

impl Events for PyEvents {
    type FileContext = PyContext;
    type HandleContext = PyContext;
    type EnumerationContext = PyContext;

    fn on_mount(&self, p: &mut rs::MountParams) -> Result<()> {
        self.fire(
            Event::Mount,
            || Ok(()),
            |py, h| {
                let params = py_params::MountParams {
                    mounting_point: name(py, &p.mounting_point)?,
                    result_code: 0,
                };
                call!(self, py, Event::Mount, h, params);
                Ok(Ok(()))
            },
        )
    }

    fn on_unmount(&self, p: &mut rs::UnmountParams) -> Result<()> {
        self.fire(
            Event::Unmount,
            || Ok(()),
            |py, h| {
                let params = py_params::UnmountParams {
                    mounting_point: name(py, &p.mounting_point)?,
                    result_code: 0,
                };
                call!(self, py, Event::Unmount, h, params);
                Ok(Ok(()))
            },
        )
    }

    fn on_get_volume_size(&self, p: &mut rs::GetVolumeSizeParams) -> Result<()> {
        self.fire(
            Event::GetVolumeSize,
            || Ok(()),
            |py, h| {
                let params = py_params::GetVolumeSizeParams {
                    total_sectors: p.total_sectors,
                    available_sectors: p.available_sectors,
                    sector_size: p.sector_size,
                    total_files: p.total_files,
                    free_files: p.free_files,
                    result_code: 0,
                };
                let o = call!(self, py, Event::GetVolumeSize, h, params);
                let o = o.borrow();
                p.total_sectors = o.total_sectors;
                p.available_sectors = o.available_sectors;
                p.total_files = o.total_files;
                p.free_files = o.free_files;
                Ok(Ok(()))
            },
        )
    }

    fn on_get_volume_label(&self, p: &mut rs::GetVolumeLabelParams) -> Result<()> {
        self.fire(
            Event::GetVolumeLabel,
            || Ok(()),
            |py, h| {
                let params = py_params::GetVolumeLabelParams {
                    buffer: p.buffer.clone(),
                    result_code: 0,
                };
                let o = call!(self, py, Event::GetVolumeLabel, h, params);
                p.buffer = o.borrow().buffer.clone();
                Ok(Ok(()))
            },
        )
    }

    fn on_get_volume_id(&self, p: &mut rs::GetVolumeIdParams) -> Result<()> {
        self.fire(
            Event::GetVolumeId,
            || Ok(()),
            |py, h| {
                let params = py_params::GetVolumeIdParams {
                    volume_id: p.volume_id,
                    result_code: 0,
                };
                let o = call!(self, py, Event::GetVolumeId, h, params);
                p.volume_id = o.borrow().volume_id;
                Ok(Ok(()))
            },
        )
    }

    fn on_create_file(&self, p: &mut rs::CreateFileParams<'_, PyContext, PyContext>) -> Result<()> {
        let event = Event::CreateFile;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::CreateFileParams {
                    handle_info: py_params::HandleInfo::new(py, p.handle_info)?,
                    route: None,
                    file_name: name(py, p.file_name)?,
                    desired_access: p.desired_access,
                    attributes: p.attributes,
                    mode: p.mode,
                    flags: p.flags,
                    handle_id: p.handle_info.handle_id,
                    info_filled: p.info_filled,
                    file_context: read_slot(py, p.file_context.as_ref()),
                    handle_context: read_slot(py, p.handle_context.as_ref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let mut o = o.borrow_mut();
                p.info_filled = o.info_filled;
                fill_slot(py, p.file_context, o.file_context.take());
                fill_slot(py, p.handle_context, o.handle_context.take());
                if let Some((path, flags)) = o.route.take() {
                    match open_route(&path, p.flags, Some(p.mode)) {
                        Ok(file) => p.route_to_file(file, flags),
                        Err(e) => return Ok(Err(e)),
                    }
                }
                Ok(Ok(()))
            },
        )
    }

    fn on_open_file(&self, p: &mut rs::OpenFileParams<'_, PyContext, PyContext>) -> Result<()> {
        let event = Event::OpenFile;
        self.fire(
            event,
            || Ok(()),
            |py, h| {
                let params = py_params::OpenFileParams {
                    handle_info: py_params::HandleInfo::new(py, p.handle_info)?,
                    route: None,
                    file_name: name(py, p.file_name)?,
                    desired_access: p.desired_access,
                    attributes: p.attributes,
                    flags: p.flags,
                    handle_id: p.handle_info.handle_id,
                    file_context: read_slot(py, p.file_context.as_ref()),
                    handle_context: read_slot(py, p.handle_context.as_ref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let mut o = o.borrow_mut();
                fill_slot(py, p.file_context, o.file_context.take());
                fill_slot(py, p.handle_context, o.handle_context.take());
                if let Some((path, flags)) = o.route.take() {
                    match open_route(&path, p.flags, None) {
                        Ok(file) => p.route_to_file(file, flags),
                        Err(e) => return Ok(Err(e)),
                    }
                }
                Ok(Ok(()))
            },
        )
    }

    fn on_cleanup_file(
        &self,
        p: &mut rs::CleanupFileParams<'_, PyContext, PyContext>,
    ) -> Result<()> {
        let event = Event::CleanupFile;
        self.fire(
            event,
            || Ok(()),
            |py, h| {
                let params = py_params::CleanupFileParams {
                    handle_info: py_params::HandleInfo::new(py, p.handle_info)?,
                    file_name: name(py, p.file_name)?,
                    file_context: read_slot(py, p.file_context.as_deref()),
                    handle_context: read_slot(py, p.handle_context.as_deref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let mut o = o.borrow_mut();
                let name = event.name();
                Ok(write_slot(
                    py,
                    p.file_context.as_deref_mut(),
                    o.file_context.take(),
                    "file_context",
                    name,
                )
                .and_then(|()| {
                    write_slot(
                        py,
                        p.handle_context.as_deref_mut(),
                        o.handle_context.take(),
                        "handle_context",
                        name,
                    )
                }))
            },
        )
    }

    fn on_close_file(&self, p: &mut rs::CloseFileParams<'_, PyContext, PyContext>) -> Result<()> {
        let event = Event::CloseFile;
        self.fire(
            event,
            || Ok(()),
            |py, h| {
                let params = py_params::CloseFileParams {
                    handle_info: py_params::HandleInfo::new(py, p.handle_info)?,
                    file_name: name(py, p.file_name)?,
                    last_handle: p.last_handle,
                    file_context: read_slot(py, p.file_context.as_deref()),
                    handle_context: read_slot(py, p.handle_context.as_deref()),
                    result_code: 0,
                };
                call!(self, py, event, h, params);
                Ok(Ok(()))
            },
        )
    }

    fn on_get_file_info(&self, p: &mut rs::GetFileInfoParams<'_, PyContext>) -> Result<()> {
        let event = Event::GetFileInfo;
        self.fire(
            event,
            || Ok(()),
            |py, h| {
                let params = py_params::GetFileInfoParams {
                    file_name: name(py, p.file_name)?,
                    file_exists: p.file_exists,
                    info: InfoValues::from_info(&p.info),
                    file_context: read_slot(py, p.file_context.as_deref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let mut o = o.borrow_mut();
                p.file_exists = o.file_exists;
                o.info.store(&mut p.info);
                Ok(write_file_context(
                    py,
                    p.file_context.as_deref_mut(),
                    o.file_context.take(),
                    event.name(),
                ))
            },
        )
    }

    fn on_enumerate_directory(
        &self,
        p: &mut rs::EnumerateDirectoryParams<'_, PyContext, PyContext, PyContext>,
    ) -> Result<()> {
        self.enumerate_directory(p)
    }

    fn on_close_directory_enumeration(
        &self,
        p: &mut rs::CloseDirectoryEnumerationParams<'_, PyContext, PyContext>,
    ) -> Result<()> {
        self.close_directory_enumeration(p)
    }

    fn on_read_file(&self, p: &mut rs::ReadFileParams<'_, PyContext, PyContext>) -> Result<()> {
        let event = Event::ReadFile;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let file_name = name(py, p.file_name)?;
                let file_context = read_slot(py, p.file_context);
                let handle_context = read_slot(py, p.handle_context);
                let (position, len) = (p.position, p.buffer.len());
                let read = with_writable_view(py, p.buffer, |view| {
                    let params = py_params::ReadFileParams {
                        file_name,
                        position,
                        buffer: view.clone().unbind(),
                        bytes_to_read: len,
                        bytes_read: 0,
                        file_context,
                        handle_context,
                        result_code: 0,
                    };
                    self.hooks
                        .call(py, event, h, params)
                        .map(|o| o.borrow().bytes_read)
                })?;
                Ok(read.and_then(|n| {
                    if n > len {
                        return Err(Error::invalid_argument(
                            "bytes_read",
                            format!("{n} is more than the {len} bytes asked for"),
                        ));
                    }
                    p.bytes_read = n;
                    Ok(())
                }))
            },
        )
    }

    fn on_write_file(&self, p: &mut rs::WriteFileParams<'_, PyContext, PyContext>) -> Result<()> {
        let event = Event::WriteFile;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let file_name = name(py, p.file_name)?;
                let file_context = read_slot(py, p.file_context.as_deref());
                let handle_context = read_slot(py, p.handle_context.as_deref());
                let (position, len, write_back) = (p.position, p.buffer.len(), p.write_back);
                let written = with_readonly_view(py, p.buffer, |view| {
                    let params = py_params::WriteFileParams {
                        file_name,
                        position,
                        buffer: view.clone().unbind(),
                        bytes_to_write: len,
                        write_back,
                        bytes_written: 0,
                        file_context,
                        handle_context,
                        result_code: 0,
                    };
                    self.hooks.call(py, event, h, params).map(|o| {
                        let mut o = o.borrow_mut();
                        (
                            o.bytes_written,
                            o.file_context.take(),
                            o.handle_context.take(),
                        )
                    })
                })?;
                Ok(written.and_then(|(n, file_context, handle_context)| {
                    if n > len {
                        return Err(Error::invalid_argument(
                            "bytes_written",
                            format!("{n} is more than the {len} bytes given"),
                        ));
                    }
                    p.bytes_written = n;
                    write_file_context(
                        py,
                        p.file_context.as_deref_mut(),
                        file_context,
                        event.name(),
                    )?;
                    write_slot(
                        py,
                        p.handle_context.as_deref_mut(),
                        handle_context,
                        "handle_context",
                        event.name(),
                    )
                }))
            },
        )
    }

    fn on_set_file_size(&self, p: &mut rs::SetFileSizeParams<'_, PyContext>) -> Result<()> {
        let event = Event::SetFileSize;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::SetFileSizeParams {
                    file_name: name(py, p.file_name)?,
                    size: p.size,
                    file_context: read_slot(py, p.file_context.as_deref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let v = o.borrow_mut().file_context.take();
                Ok(write_file_context(
                    py,
                    p.file_context.as_deref_mut(),
                    v,
                    event.name(),
                ))
            },
        )
    }

    fn on_set_allocation_size(
        &self,
        p: &mut rs::SetAllocationSizeParams<'_, PyContext>,
    ) -> Result<()> {
        let event = Event::SetAllocationSize;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::SetAllocationSizeParams {
                    file_name: name(py, p.file_name)?,
                    allocation_size: p.allocation_size,
                    keep_size: p.keep_size,
                    file_context: read_slot(py, p.file_context.as_deref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let v = o.borrow_mut().file_context.take();
                Ok(write_file_context(
                    py,
                    p.file_context.as_deref_mut(),
                    v,
                    event.name(),
                ))
            },
        )
    }

    fn on_set_file_attributes(
        &self,
        p: &mut rs::SetFileAttributesParams<'_, PyContext>,
    ) -> Result<()> {
        let event = Event::SetFileAttributes;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::SetFileAttributesParams {
                    file_name: name(py, p.file_name)?,
                    mode: p.mode,
                    creation_time: p.creation_time,
                    last_access_time: p.last_access_time,
                    last_write_time: p.last_write_time,
                    change_time: p.change_time,
                    file_context: read_slot(py, p.file_context.as_deref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let v = o.borrow_mut().file_context.take();
                Ok(write_file_context(
                    py,
                    p.file_context.as_deref_mut(),
                    v,
                    event.name(),
                ))
            },
        )
    }

    fn on_rename_or_move_file(
        &self,
        p: &mut rs::RenameOrMoveFileParams<'_, PyContext>,
    ) -> Result<()> {
        let event = Event::RenameOrMoveFile;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::RenameOrMoveFileParams {
                    file_name: name(py, p.file_name)?,
                    new_file_name: name(py, p.new_file_name)?,
                    replace_existing: p.replace_existing,
                    file_context: read_slot(py, p.file_context.as_deref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let v = o.borrow_mut().file_context.take();
                Ok(write_file_context(
                    py,
                    p.file_context.as_deref_mut(),
                    v,
                    event.name(),
                ))
            },
        )
    }

    fn on_can_file_be_deleted(
        &self,
        p: &mut rs::CanFileBeDeletedParams<'_, PyContext>,
    ) -> Result<()> {
        let event = Event::CanFileBeDeleted;
        self.fire(
            event,
            || Ok(()),
            |py, h| {
                let params = py_params::CanFileBeDeletedParams {
                    file_name: name(py, p.file_name)?,
                    is_directory: p.is_directory,
                    can_be_deleted: p.can_be_deleted,
                    file_context: read_slot(py, p.file_context.as_deref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let mut o = o.borrow_mut();
                p.can_be_deleted = o.can_be_deleted;
                Ok(write_file_context(
                    py,
                    p.file_context.as_deref_mut(),
                    o.file_context.take(),
                    event.name(),
                ))
            },
        )
    }

    fn on_delete_file(&self, p: &mut rs::DeleteFileParams<'_, PyContext>) -> Result<()> {
        let event = Event::DeleteFile;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::DeleteFileParams {
                    file_name: name(py, p.file_name)?,
                    is_directory: p.is_directory,
                    file_context: read_slot(py, p.file_context.as_deref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let v = o.borrow_mut().file_context.take();
                Ok(write_file_context(
                    py,
                    p.file_context.as_deref_mut(),
                    v,
                    event.name(),
                ))
            },
        )
    }

    fn on_is_directory_empty(&self, p: &mut rs::IsDirectoryEmptyParams<'_>) -> Result<()> {
        let event = Event::IsDirectoryEmpty;
        self.fire(
            event,
            || Ok(()),
            |py, h| {
                let params = py_params::IsDirectoryEmptyParams {
                    directory_name: name(py, p.directory_name)?,
                    is_empty: p.is_empty,
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                p.is_empty = o.borrow().is_empty;
                Ok(Ok(()))
            },
        )
    }

    fn on_flush_file(&self, p: &mut rs::FlushFileParams<'_, PyContext, PyContext>) -> Result<()> {
        let event = Event::FlushFile;
        let unhandled = || {
            Err(Error::from_errno(
                libc::ENOSYS,
                "on_flush_file is not handled: the drive has nothing to persist",
            ))
        };
        self.fire(event, unhandled, |py, h| {
            let params = py_params::FlushFileParams {
                file_name: name(py, p.file_name)?,
                data_only: p.data_only,
                file_context: read_slot(py, p.file_context.as_deref()),
                handle_context: read_slot(py, p.handle_context.as_deref()),
                result_code: 0,
            };
            let o = call!(self, py, event, h, params);
            let mut o = o.borrow_mut();
            let n = event.name();
            Ok(write_slot(
                py,
                p.file_context.as_deref_mut(),
                o.file_context.take(),
                "file_context",
                n,
            )
            .and_then(|()| {
                write_slot(
                    py,
                    p.handle_context.as_deref_mut(),
                    o.handle_context.take(),
                    "handle_context",
                    n,
                )
            }))
        })
    }

    fn on_set_file_security(&self, p: &mut rs::SetFileSecurityParams<'_, PyContext>) -> Result<()> {
        self.set_file_security(p)
    }

    fn on_create_hard_link(&self, p: &mut rs::CreateHardLinkParams<'_>) -> Result<()> {
        self.create_hard_link(p)
    }

    fn on_create_symbolic_link(&self, p: &mut rs::CreateSymbolicLinkParams<'_>) -> Result<()> {
        self.create_symbolic_link(p)
    }

    fn on_get_symbolic_link_target(
        &self,
        p: &mut rs::GetSymbolicLinkTargetParams<'_>,
    ) -> Result<()> {
        self.get_symbolic_link_target(p)
    }

    fn on_exchange_files(&self, p: &mut rs::ExchangeFilesParams<'_>) -> Result<()> {
        self.exchange_files(p)
    }

    fn on_zeroize_file_range(
        &self,
        p: &mut rs::ZeroizeFileRangeParams<'_, PyContext>,
    ) -> Result<()> {
        self.zeroize_file_range(p)
    }

    fn on_copy_file_range(
        &self,
        p: &mut rs::CopyFileRangeParams<'_, PyContext, PyContext>,
    ) -> Result<()> {
        self.copy_file_range(p)
    }

    fn on_get_ea(&self, p: &mut rs::GetEaParams<'_>) -> Result<()> {
        self.get_ea(p)
    }

    fn on_set_ea(&self, p: &mut rs::SetEaParams<'_>) -> Result<()> {
        self.set_ea(p)
    }

    fn on_list_eas(&self, p: &mut rs::ListEasParams<'_>) -> Result<()> {
        self.list_eas(p)
    }

    fn on_remove_ea(&self, p: &mut rs::RemoveEaParams<'_>) -> Result<()> {
        self.remove_ea(p)
    }
}

impl fsgate_vfs::Hooks for PyEvents {
    fn on_error(&self, error_code: u32, description: &str) {
        if self.hooks.get(Event::Error).is_some() {
            crate::attach::attach(|py| self.hooks.report_error(py, error_code, description, None));
        } else {
            eprintln!("fsgate: virtual drive error {error_code}: {description}");
        }
    }

    fn on_worker_thread_creation(&self) {
        self.thread_event(Event::WorkerThreadCreation);
    }

    fn on_worker_thread_termination(&self) {
        self.thread_event(Event::WorkerThreadTermination);
        crate::attach::release_thread_state();
    }
}
