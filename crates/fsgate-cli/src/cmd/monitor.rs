//! `fsgate monitor` and `fsgate filter` (being written: see the file filter issue).

use clap::Args;
use fsgate_core::{Error, Result};

/// `fsgate monitor PATH...`.
#[derive(Args)]
pub struct MonitorArgs {
    /// Paths to watch.
    pub paths: Vec<std::path::PathBuf>,
}

/// `fsgate filter PATH ...`.
#[derive(Args)]
pub struct FilterArgs {
    /// The path to enforce rules under.
    pub path: std::path::PathBuf,
}

/// Runs `fsgate monitor`.
pub fn monitor(_args: MonitorArgs) -> Result<()> {
    Err(Error::not_ready("fsgate monitor is not built yet"))
}

/// Runs `fsgate filter`.
pub fn filter(_args: FilterArgs) -> Result<()> {
    Err(Error::not_ready("fsgate filter is not built yet"))
}
