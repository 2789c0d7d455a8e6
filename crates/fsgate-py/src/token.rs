//! `Credentials`: what the `get_*_token` methods return (the reference's access token):
//! the ids and capabilities of the process behind a request.

use pyo3::prelude::*;

/// A process's credentials, read from `/proc/<pid>/status` when the method was called.
#[pyclass(module = "fsgate", name = "Credentials", frozen)]
pub(crate) struct Credentials {
    /// Real user id.
    #[pyo3(get)]
    uid: u32,
    /// Effective user id.
    #[pyo3(get)]
    euid: u32,
    /// Real group id.
    #[pyo3(get)]
    gid: u32,
    /// Effective group id.
    #[pyo3(get)]
    egid: u32,
    /// Supplementary groups.
    #[pyo3(get)]
    groups: Vec<u32>,
    /// Effective capabilities, as the kernel's bit mask (bit `n` is capability `n`,
    /// `CAP_SYS_ADMIN` is 21).
    #[pyo3(get)]
    capabilities: u64,
}

impl From<fsgate_core::originator::Credentials> for Credentials {
    fn from(c: fsgate_core::originator::Credentials) -> Self {
        Self {
            uid: c.uid,
            euid: c.euid,
            gid: c.gid,
            egid: c.egid,
            groups: c.groups,
            capabilities: c.capabilities,
        }
    }
}

#[pymethods]
impl Credentials {
    fn __repr__(&self) -> String {
        format!(
            "Credentials(uid={}, euid={}, gid={}, egid={}, groups={:?}, capabilities={:#x})",
            self.uid, self.euid, self.gid, self.egid, self.groups, self.capabilities
        )
    }
}

/// Registers the class.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Credentials>()
}
