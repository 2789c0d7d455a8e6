//! `fsgate package|install|uninstall|status` (being written: see the deployment issue).

use clap::Args;
use fsgate_core::{Error, Result};

/// `fsgate package OUTFILE`.
#[derive(Args)]
pub struct PackageArgs {
    /// Where to write the package.
    pub outfile: std::path::PathBuf,
}

/// `fsgate install PACKAGE --product-guid GUID`.
#[derive(Args)]
pub struct InstallArgs {
    /// The package file.
    pub package: std::path::PathBuf,
}

/// `fsgate uninstall PACKAGE --product-guid GUID`.
#[derive(Args)]
pub struct UninstallArgs {
    /// The package file.
    pub package: std::path::PathBuf,
}

/// `fsgate status --product-guid GUID`.
#[derive(Args)]
pub struct StatusArgs {
    /// The product GUID.
    #[arg(long)]
    pub product_guid: String,
}

/// Runs `fsgate package`.
pub fn package(_args: PackageArgs) -> Result<()> {
    Err(Error::not_ready("fsgate package is not built yet"))
}

/// Runs `fsgate install`.
pub fn install(_args: InstallArgs) -> Result<()> {
    Err(Error::not_ready("fsgate install is not built yet"))
}

/// Runs `fsgate uninstall`.
pub fn uninstall(_args: UninstallArgs) -> Result<()> {
    Err(Error::not_ready("fsgate uninstall is not built yet"))
}

/// Runs `fsgate status`.
pub fn status(_args: StatusArgs) -> Result<()> {
    Err(Error::not_ready("fsgate status is not built yet"))
}
