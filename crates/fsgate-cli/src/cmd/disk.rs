//! `fsgate disk …` (being written: see the direct access issue).

use clap::Subcommand;
use fsgate_core::{Error, Result};

/// Disk subcommands.
#[derive(Subcommand)]
pub enum DiskCommand {
    /// Sector counts and sizes of a device or image.
    Info {
        /// Device or image file.
        device: std::path::PathBuf,
    },
}

/// Runs a disk command.
pub fn run(_command: DiskCommand) -> Result<()> {
    Err(Error::not_ready("fsgate disk is not built yet"))
}
