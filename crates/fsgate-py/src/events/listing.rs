//! Directory listings: one event per entry, and the end of a listing.

use fsgate_core::{Error, Result};
use fsgate_vfs::params as rs;

use super::PyEvents;
use crate::context::{fill_slot, read_slot, write_slot, PyContext};
use crate::hooks::Event;
use crate::params::{self as py_params, name, InfoValues};

impl PyEvents {
    pub(super) fn enumerate_directory(
        &self,
        p: &mut rs::EnumerateDirectoryParams<'_, PyContext, PyContext, PyContext>,
    ) -> Result<()> {
        let event = Event::EnumerateDirectory;
        self.fire(
            event,
            || Ok(()),
            |py, h| {
                let params = py_params::EnumerateDirectoryParams {
                    directory_name: name(py, p.directory_name)?,
                    mask: p.mask.to_string(),
                    case_sensitive: p.case_sensitive,
                    restart: p.restart,
                    file_found: false,
                    file_name: None,
                    info: InfoValues::from_info(&p.info),
                    directory_context: read_slot(py, p.file_context.as_deref()),
                    handle_context: read_slot(py, p.handle_context.as_deref()),
                    enumeration_context: read_slot(py, p.enumeration_context.as_ref()),
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let mut o = o.borrow_mut();
                fill_slot(py, p.enumeration_context, o.enumeration_context.take());
                let name_ = event.name();
                if let Err(e) = write_slot(
                    py,
                    p.file_context.as_deref_mut(),
                    o.directory_context.take(),
                    "directory_context",
                    name_,
                )
                .and_then(|()| {
                    write_slot(
                        py,
                        p.handle_context.as_deref_mut(),
                        o.handle_context.take(),
                        "handle_context",
                        name_,
                    )
                }) {
                    return Ok(Err(e));
                }
                p.file_found = o.file_found;
                if o.file_found {
                    let Some(entry) = o.file_name.as_ref() else {
                        return Ok(Err(Error::invalid_argument(
                            "file_name",
                            "on_enumerate_directory set file_found without a file_name",
                        )));
                    };
                    p.file_name = entry.extract(py)?;
                    o.info.store(&mut p.info);
                }
                Ok(Ok(()))
            },
        )
    }

    pub(super) fn close_directory_enumeration(
        &self,
        p: &mut rs::CloseDirectoryEnumerationParams<'_, PyContext, PyContext>,
    ) -> Result<()> {
        let event = Event::CloseDirectoryEnumeration;
        self.fire(
            event,
            || Ok(()),
            |py, h| {
                let params = py_params::CloseDirectoryEnumerationParams {
                    directory_name: name(py, p.directory_name)?,
                    directory_context: read_slot(py, p.file_context.as_deref()),
                    enumeration_context: read_slot(py, p.enumeration_context.as_deref()),
                    result_code: 0,
                };
                call!(self, py, event, h, params);
                Ok(Ok(()))
            },
        )
    }
}
