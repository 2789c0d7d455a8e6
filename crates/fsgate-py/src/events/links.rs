//! Links, owners, exchanges and zeroed ranges.

use fsgate_core::{Error, Result};
use fsgate_vfs::params as rs;

use super::{not_supported, PyEvents};
use crate::context::{read_slot, write_file_context, PyContext};
use crate::hooks::Event;
use crate::params::{self as py_params, name, InfoValues};

/// `errno` naming the unhandled event, for the events whose default is a specific errno.
fn unhandled(errno: i32, event: Event) -> Error {
    Error::from_errno(
        errno,
        format!("{} is not handled by this drive", event.name()),
    )
}

impl PyEvents {
    pub(super) fn set_file_security(
        &self,
        p: &mut rs::SetFileSecurityParams<'_, PyContext>,
    ) -> Result<()> {
        let event = Event::SetFileSecurity;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::SetFileSecurityParams {
                    file_name: name(py, p.file_name)?,
                    owner: p.owner,
                    group: p.group,
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

    pub(super) fn create_hard_link(&self, p: &mut rs::CreateHardLinkParams<'_>) -> Result<()> {
        let event = Event::CreateHardLink;
        self.fire(
            event,
            || Err(unhandled(libc::EPERM, event)),
            |py, h| {
                let params = py_params::CreateHardLinkParams {
                    file_name: name(py, p.file_name)?,
                    link_name: name(py, p.link_name)?,
                    info: InfoValues::from_info(&p.info),
                    info_filled: false,
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let o = o.borrow();
                if o.info_filled {
                    o.info.store(&mut p.info);
                    p.info_filled = true;
                }
                Ok(Ok(()))
            },
        )
    }

    pub(super) fn create_symbolic_link(
        &self,
        p: &mut rs::CreateSymbolicLinkParams<'_>,
    ) -> Result<()> {
        let event = Event::CreateSymbolicLink;
        self.fire(
            event,
            || Err(unhandled(libc::EPERM, event)),
            |py, h| {
                let params = py_params::CreateSymbolicLinkParams {
                    file_name: name(py, p.file_name)?,
                    target: name(py, p.target)?,
                    info: InfoValues::from_info(&p.info),
                    info_filled: false,
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let o = o.borrow();
                if o.info_filled {
                    o.info.store(&mut p.info);
                    p.info_filled = true;
                }
                Ok(Ok(()))
            },
        )
    }

    pub(super) fn get_symbolic_link_target(
        &self,
        p: &mut rs::GetSymbolicLinkTargetParams<'_>,
    ) -> Result<()> {
        let event = Event::GetSymbolicLinkTarget;
        self.fire(
            event,
            || Err(unhandled(libc::EINVAL, event)),
            |py, h| {
                let params = py_params::GetSymbolicLinkTargetParams {
                    file_name: name(py, p.file_name)?,
                    target: None,
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let o = o.borrow();
                let Some(target) = o.target.as_ref() else {
                    return Ok(Err(Error::invalid_argument(
                        "target",
                        "on_get_symbolic_link_target left it unset",
                    )));
                };
                p.target = target.extract(py)?;
                Ok(Ok(()))
            },
        )
    }

    pub(super) fn exchange_files(&self, p: &mut rs::ExchangeFilesParams<'_>) -> Result<()> {
        let event = Event::ExchangeFiles;
        self.fire(
            event,
            || Err(unhandled(libc::EINVAL, event)),
            |py, h| {
                let params = py_params::ExchangeFilesParams {
                    file_name: name(py, p.file_name)?,
                    new_file_name: name(py, p.new_file_name)?,
                    result_code: 0,
                };
                call!(self, py, event, h, params);
                Ok(Ok(()))
            },
        )
    }

    pub(super) fn zeroize_file_range(
        &self,
        p: &mut rs::ZeroizeFileRangeParams<'_, PyContext>,
    ) -> Result<()> {
        let event = Event::ZeroizeFileRange;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::ZeroizeFileRangeParams {
                    file_name: name(py, p.file_name)?,
                    position: p.position,
                    length: p.length,
                    deallocate: p.deallocate,
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
}
