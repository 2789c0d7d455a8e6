//! Extended attributes.

use std::ffi::OsString;

use fsgate_core::Result;
use fsgate_vfs::params as rs;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{not_supported, PyEvents};
use crate::hooks::Event;
use crate::params::{self as py_params, name, os_name};

impl PyEvents {
    pub(super) fn get_ea(&self, p: &mut rs::GetEaParams<'_>) -> Result<()> {
        let event = Event::GetEa;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::GetEaParams {
                    file_name: name(py, p.file_name)?,
                    name: os_name(py, p.name)?,
                    value: None,
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let o = o.borrow();
                p.value = match o.value.as_ref() {
                    Some(v) => v.extract(py)?,
                    None => Vec::new(),
                };
                Ok(Ok(()))
            },
        )
    }

    pub(super) fn set_ea(&self, p: &mut rs::SetEaParams<'_>) -> Result<()> {
        let event = Event::SetEa;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::SetEaParams {
                    file_name: name(py, p.file_name)?,
                    name: os_name(py, p.name)?,
                    value: PyBytes::new(py, p.value).unbind(),
                    create_only: p.create_only,
                    replace_only: p.replace_only,
                    result_code: 0,
                };
                call!(self, py, event, h, params);
                Ok(Ok(()))
            },
        )
    }

    pub(super) fn list_eas(&self, p: &mut rs::ListEasParams<'_>) -> Result<()> {
        let event = Event::ListEas;
        self.fire(
            event,
            || Ok(()),
            |py, h| {
                let params = py_params::ListEasParams {
                    file_name: name(py, p.file_name)?,
                    names: None,
                    result_code: 0,
                };
                let o = call!(self, py, event, h, params);
                let o = o.borrow();
                if let Some(names) = o.names.as_ref() {
                    p.names = names
                        .bind(py)
                        .try_iter()?
                        .map(|n| n.and_then(|n| n.extract::<OsString>()))
                        .collect::<PyResult<_>>()?;
                }
                Ok(Ok(()))
            },
        )
    }

    pub(super) fn remove_ea(&self, p: &mut rs::RemoveEaParams<'_>) -> Result<()> {
        let event = Event::RemoveEa;
        self.fire(
            event,
            || Err(not_supported(event)),
            |py, h| {
                let params = py_params::RemoveEaParams {
                    file_name: name(py, p.file_name)?,
                    name: os_name(py, p.name)?,
                    result_code: 0,
                };
                call!(self, py, event, h, params);
                Ok(Ok(()))
            },
        )
    }
}
