//! [`Installation`]: the read side of an fsgate installation under one root.

use std::path::{Path, PathBuf};

use fsgate_core::{code, Error, Result};

use crate::layout::Layout;
use crate::registry::{installed_version, Registry};
use crate::version::Version;
use crate::{facilities, guid, service};

/// `get_driver_status`: nothing installed for the product (or its files are gone).
pub const MODULE_STATUS_NOT_PRESENT: u32 = 0x0000_0000;
/// `get_driver_status`: installed, but the service is not running (always the answer under an
/// alternative root, which is not a running system).
pub const MODULE_STATUS_STOPPED: u32 = 0x0000_0001;
/// `get_driver_status`: installed and running.
pub const MODULE_STATUS_RUNNING: u32 = 0x0000_0004;

/// The helper binary's name inside an install directory.
pub const HELPER_NAME: &str = "fsgate";

/// An fsgate installation under a root directory (`/` for this machine, or an image being
/// built): what is installed for each ProductGUID and whether it runs. Reads only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    root: PathBuf,
}

impl Installation {
    /// The installation under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The installation on this machine: the root is `$FSGATE_ROOT` when set, else `/`.
    pub fn system() -> Self {
        Self::new(std::env::var_os("FSGATE_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `get_driver_status`: [`MODULE_STATUS_NOT_PRESENT`], [`MODULE_STATUS_STOPPED`] or
    /// [`MODULE_STATUS_RUNNING`]. Errors: a malformed GUID (`ERROR_INVALID_PARAMETER`), a
    /// registry that does not parse (`ERROR_INVALID_DATA`).
    pub fn get_driver_status(&self, product_guid: &str) -> Result<u32> {
        let guid = guid::normalize(product_guid)?;
        let layout = Layout::new(&self.root);
        let registry = Registry::load(&layout.registry_file())?;
        let Some(r) = registry
            .of_product(&guid)
            .into_iter()
            .find(|r| layout.host(&r.install_dir).join(HELPER_NAME).is_file())
        else {
            return Ok(MODULE_STATUS_NOT_PRESENT);
        };
        let running = if service::systemd_manages(&layout) {
            service::is_active(&layout, r.major)
        } else {
            layout.is_live_system() && facilities::fuse().is_ok()
        };
        Ok(if running {
            MODULE_STATUS_RUNNING
        } else {
            MODULE_STATUS_STOPPED
        })
    }

    /// The highest version installed for the product as four 16-bit parts in 64 bits; 0 when
    /// not installed.
    pub fn get_driver_version(&self, product_guid: &str) -> Result<u64> {
        let guid = guid::normalize(product_guid)?;
        let layout = Layout::new(&self.root);
        let registry = Registry::load(&layout.registry_file())?;
        Ok(registry
            .of_product(&guid)
            .iter()
            .filter_map(|r| installed_version(&layout.host(&r.install_dir)))
            .max()
            .map_or(0, Version::to_u64))
    }

    /// What every class's `initialize(product_guid)` calls: `ERROR_FILE_NOT_FOUND` (2) when the
    /// GUID has not installed fsgate, `ERROR_INVALID_KERNEL_INFO_VERSION` (340) when the
    /// installed version is older than this library.
    pub fn verify_installed(&self, product_guid: &str) -> Result<()> {
        let installed = self.get_driver_version(product_guid)?;
        if installed == 0 {
            return Err(Error::from_code(
                code::ERROR_FILE_NOT_FOUND,
                format!(
                    "fsgate is not installed for product {product_guid} under {}; \
                     call install with this ProductGUID first",
                    self.root.display()
                ),
            ));
        }
        let library = Version::current();
        if installed < library.to_u64() {
            return Err(Error::from_code(
                code::ERROR_INVALID_KERNEL_INFO_VERSION,
                format!(
                    "the installed fsgate {} is older than this library ({library}); \
                     install the newer package",
                    Version::from_u64(installed)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "{6FA3C0A1-0D2B-4C6E-9F10-AA00BB11CC22}";

    #[test]
    fn an_empty_root_has_nothing_installed() {
        let root = tempfile::tempdir().unwrap();
        let i = Installation::new(root.path());
        assert_eq!(
            i.get_driver_status(GUID).unwrap(),
            MODULE_STATUS_NOT_PRESENT
        );
        assert_eq!(i.get_driver_version(GUID).unwrap(), 0);
        let e = i.verify_installed(GUID).unwrap_err();
        assert_eq!(e.code(), code::ERROR_FILE_NOT_FOUND);
        assert!(e.message().contains(GUID), "{}", e.message());
    }

    #[test]
    fn a_malformed_guid_is_refused() {
        let root = tempfile::tempdir().unwrap();
        assert!(Installation::new(root.path())
            .get_driver_version("nope")
            .is_err());
    }
}
