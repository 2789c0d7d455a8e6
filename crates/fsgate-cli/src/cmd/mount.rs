//! `fsgate mount memory|mirror` and `fsgate unmount` (being written: see the VFS issue).

use clap::{Args, Subcommand};
use fsgate_core::{Error, Result};

/// Which sample drive to mount.
#[derive(Subcommand)]
pub enum MountCommand {
    /// An in-memory drive.
    Memory {
        /// An existing empty directory.
        mountpoint: std::path::PathBuf,
        /// Print each event.
        #[arg(long)]
        log_events: bool,
        /// Print events as JSON lines.
        #[arg(long)]
        json: bool,
    },
}

/// `fsgate unmount MOUNTPOINT`.
#[derive(Args)]
pub struct UnmountArgs {
    /// The mount point.
    pub mountpoint: std::path::PathBuf,
}

/// Runs a mount command.
pub fn run(_command: MountCommand) -> Result<()> {
    Err(Error::not_ready("fsgate mount is not built yet"))
}

/// Runs `fsgate unmount`.
pub fn unmount(_args: UnmountArgs) -> Result<()> {
    Err(Error::not_ready("fsgate unmount is not built yet"))
}
