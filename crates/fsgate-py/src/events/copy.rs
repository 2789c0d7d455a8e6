//! Copies between open files.

use fsgate_core::{Error, Result};
use fsgate_vfs::params as rs;

use super::PyEvents;
use crate::context::{read_slot, PyContext};
use crate::hooks::Event;
use crate::params::{self as py_params, name};

impl PyEvents {
    pub(super) fn copy_file_range(
        &self,
        p: &mut rs::CopyFileRangeParams<'_, PyContext, PyContext>,
    ) -> Result<()> {
        let event = Event::CopyFileRange;
        let unhandled = || {
            Err(Error::from_errno(
                libc::ENOSYS,
                "on_copy_file_range is not handled by this drive",
            ))
        };
        self.fire(event, unhandled, |py, h| {
            let params = py_params::CopyFileRangeParams {
                file_name: name(py, p.file_name)?,
                position: p.position,
                file_context: read_slot(py, p.file_context),
                handle_context: read_slot(py, p.handle_context),
                target_file_name: name(py, p.target_file_name)?,
                target_position: p.target_position,
                target_handle_context: read_slot(py, p.target_handle_context),
                length: p.length,
                bytes_copied: 0,
                result_code: 0,
            };
            let o = call!(self, py, event, h, params);
            let copied = o.borrow().bytes_copied;
            if copied > p.length {
                return Ok(Err(Error::invalid_argument(
                    "bytes_copied",
                    format!("{copied} is more than the {} bytes asked for", p.length),
                )));
            }
            p.bytes_copied = copied;
            Ok(Ok(()))
        })
    }
}
