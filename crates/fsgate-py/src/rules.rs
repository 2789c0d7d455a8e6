//! The arguments of the rule methods of the file monitor and the file filter: flag words and
//! `add_filter_rule_ex` qualifiers, checked and converted to `fsgate_filter::rules` types.

use fsgate_core::Error;
use fsgate_filter::rules::{AccessFlags, ControlFlags, NotifyFlags, Qualifiers};
use pyo3::prelude::*;

use crate::error::to_py;

/// `ERROR_INVALID_PARAMETER` naming `argument` and its bits no flag has.
fn unknown_bits(py: Python<'_>, argument: &str, value: u64) -> PyErr {
    to_py(
        py,
        &Error::invalid_argument(argument, format!("unknown bits in {value:#x}")),
    )
}

/// `notify_flags` (`FS_NE_*`), or error 87 naming the unknown bits.
pub(crate) fn notify_flags(py: Python<'_>, value: u64) -> PyResult<NotifyFlags> {
    NotifyFlags::from_bits(value).ok_or_else(|| unknown_bits(py, "notify_flags", value))
}

/// `control_flags` (`FS_CE_*`), or error 87 naming the unknown bits.
pub(crate) fn control_flags(py: Python<'_>, value: u64) -> PyResult<ControlFlags> {
    ControlFlags::from_bits(value).ok_or_else(|| unknown_bits(py, "control_flags", value))
}

/// `access_flags` (`ACCESS_*`), or error 87 naming the unknown bits.
pub(crate) fn access_flags(py: Python<'_>, value: u64) -> PyResult<AccessFlags> {
    u32::try_from(value)
        .ok()
        .and_then(AccessFlags::from_bits)
        .ok_or_else(|| unknown_bits(py, "access_flags", value))
}

/// A size bound: -1 is none (the reference's "no limit"); other negative values are error
/// 87 naming `argument`.
fn size_bound(py: Python<'_>, argument: &str, value: i64) -> PyResult<Option<u64>> {
    match value {
        -1 => Ok(None),
        v => u64::try_from(v).map(Some).map_err(|_| {
            to_py(
                py,
                &Error::invalid_argument(argument, format!("{v} is neither a size nor -1")),
            )
        }),
    }
}

/// The qualifiers of an `_ex` rule: sizes (inclusive, -1 for no bound) and the attribute
/// bits the file must have (`include_attributes`) and must not have (`exclude_attributes`).
pub(crate) fn qualifiers(
    py: Python<'_>,
    min_size: i64,
    max_size: i64,
    include_attributes: u32,
    exclude_attributes: u32,
) -> PyResult<Qualifiers> {
    let q = Qualifiers {
        min_size: size_bound(py, "min_size", min_size)?,
        max_size: size_bound(py, "max_size", max_size)?,
        include_attributes,
        exclude_attributes,
    };
    if let (Some(min), Some(max)) = (q.min_size, q.max_size) {
        if min > max {
            return Err(to_py(
                py,
                &Error::invalid_argument("min_size", format!("{min} is above max_size {max}")),
            ));
        }
    }
    Ok(q)
}
