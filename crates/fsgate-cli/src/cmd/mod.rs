//! One module per group of subcommands.

pub mod deploy;
pub mod disk;
pub mod monitor;
pub mod mount;
pub mod process;
pub mod product;
