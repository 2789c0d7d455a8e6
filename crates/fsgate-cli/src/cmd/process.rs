//! `fsgate process …` (being written: see the process filter issue).

use clap::Subcommand;
use fsgate_core::{Error, Result};

/// Process subcommands.
#[derive(Subcommand)]
pub enum ProcessCommand {
    /// List running processes.
    List,
}

/// Runs a process command.
pub fn run(_command: ProcessCommand) -> Result<()> {
    Err(Error::not_ready("fsgate process is not built yet"))
}
