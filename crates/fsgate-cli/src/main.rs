//! `fsgate`: the command line over the fsgate libraries.
//!
//! This crate only parses arguments and formats output; every behaviour lives in a library
//! crate. The subcommands and flags are a contract (DESIGN §4): scripts and tests rely on
//! them. Long-running commands print `ready: …` on stderr once attached and exit 0 after
//! SIGINT or SIGTERM, having cleaned up.

mod cmd;
mod output;
mod syslog;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Virtual filesystems, file and process filters, and direct disk access for Linux.
#[derive(Parser)]
#[command(name = "fsgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mount a sample virtual drive and serve it until SIGINT/SIGTERM.
    #[command(subcommand)]
    Mount(cmd::mount::MountCommand),
    /// Unmount a drive mounted by fsgate (or any FUSE mount).
    Unmount(cmd::mount::UnmountArgs),
    /// Read and write disks, volumes and image files directly.
    #[command(subcommand)]
    Disk(cmd::disk::DiskCommand),
    /// List, watch and deny processes.
    #[command(subcommand)]
    Process(cmd::process::ProcessCommand),
    /// Print every file event under the given paths.
    Monitor(cmd::monitor::MonitorArgs),
    /// Enforce access rules under a path, printing each denial.
    Filter(cmd::monitor::FilterArgs),
    /// Build the installable package of fsgate's system files.
    Package(cmd::deploy::PackageArgs),
    /// Install fsgate's system files for a product.
    Install(cmd::deploy::InstallArgs),
    /// Remove a product's installation of fsgate's system files.
    Uninstall(cmd::deploy::UninstallArgs),
    /// Report whether fsgate is installed for a product, and which version.
    Status(cmd::deploy::StatusArgs),
}

fn main() -> ExitCode {
    output::init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mount(c) => cmd::mount::run(c),
        Command::Unmount(a) => cmd::mount::unmount(a),
        Command::Disk(c) => cmd::disk::run(c),
        Command::Process(c) => cmd::process::run(c),
        Command::Monitor(a) => cmd::monitor::monitor(a),
        Command::Filter(a) => cmd::monitor::filter(a),
        Command::Package(a) => cmd::deploy::package(a),
        Command::Install(a) => cmd::deploy::install(a),
        Command::Uninstall(a) => cmd::deploy::uninstall(a),
        Command::Status(a) => cmd::deploy::status(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fsgate: {e}");
            ExitCode::FAILURE
        }
    }
}
