//! Deployment of fsgate's system pieces (being written: see the deployment issue).
//!
//! The public surface below is fixed so that other classes can delegate to it; bodies are
//! filled in by the deployment work.

use std::path::{Path, PathBuf};

use fsgate_core::{Error, Result};

/// Installs, upgrades and removes fsgate's system files for products identified by GUIDs.
pub struct Installer {
    root: PathBuf,
}

impl Installer {
    /// An installer working under `root` (`/` for the real system; a temporary directory for
    /// tests and image builds, in which case nothing outside it is touched).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The installer for this machine: the root is `$FSGATE_ROOT` when set, else `/`.
    pub fn system() -> Self {
        Self::new(std::env::var_os("FSGATE_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Installs the package for `product_guid`; returns whether a reboot is needed.
    pub fn install(
        &self,
        _package_path: &Path,
        _product_guid: &str,
        _path_to_install: &str,
        _flags: u32,
    ) -> Result<bool> {
        Err(Error::not_ready("install is not built yet"))
    }

    /// Removes `product_guid`'s installation; returns whether a reboot is needed.
    pub fn uninstall(
        &self,
        _package_path: &Path,
        _product_guid: &str,
        _installed_path: &str,
        _flags: u32,
    ) -> Result<bool> {
        Err(Error::not_ready("uninstall is not built yet"))
    }

    /// NOT_PRESENT (0), STOPPED (1) or RUNNING (4).
    pub fn get_driver_status(&self, _product_guid: &str) -> Result<u32> {
        Err(Error::not_ready("get_driver_status is not built yet"))
    }

    /// The installed version as four 16-bit parts in 64 bits; 0 when not installed.
    pub fn get_driver_version(&self, _product_guid: &str) -> Result<u64> {
        Err(Error::not_ready("get_driver_version is not built yet"))
    }

    /// What every class's `initialize(product_guid)` calls: `ERROR_FILE_NOT_FOUND` (2) when the
    /// GUID has not installed fsgate, `ERROR_INVALID_KERNEL_INFO_VERSION` (340) when the
    /// installed version is older than this library.
    pub fn verify_installed(&self, _product_guid: &str) -> Result<()> {
        Err(Error::not_ready("verify_installed is not built yet"))
    }
}
