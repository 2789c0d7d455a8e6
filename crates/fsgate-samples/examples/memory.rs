//! Mounts the memory drive until Ctrl-C: the start of a drive of your own.
//!
//! Run as root on an existing empty directory:
//! `cargo run -p fsgate-samples --example memory -- /mnt/memory` (add `--log` to print each
//! event as a JSON line), then use `/mnt/memory` from another shell.
//!
//! The drive is one value implementing [`Events`]; [`VirtualDrive`] mounts it and runs its
//! events; [`Logged`] wraps any drive to print what it answers.

use fsgate_core::Result;
use fsgate_samples::memory::MemoryDrive;
use fsgate_vfs::{Events, LogFormat, Logged, Options, VirtualDrive};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let log = args.iter().any(|a| a == "--log");
    let Some(mountpoint) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: memory MOUNTPOINT [--log]");
        std::process::exit(2);
    };
    let drive = MemoryDrive::new();
    if log {
        serve(
            Logged::new(drive, LogFormat::Json, std::io::stdout()),
            mountpoint,
        )
    } else {
        serve(drive, mountpoint)
    }
}

/// Mounts `events` at `mountpoint` and serves until SIGINT or SIGTERM, then unmounts.
fn serve(events: impl Events, mountpoint: &str) -> Result<()> {
    // Catch the signals before mounting, so that Ctrl-C always unmounts.
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| fsgate_core::Error::io("catching SIGINT and SIGTERM", e))?;
    let options = Options {
        // The drive's own inode numbers are what `stat` shows.
        use_file_ids: true,
        ..Options::default()
    };
    let drive = VirtualDrive::new(events, options);
    drive.mount(mountpoint, 0)?;
    eprintln!("mounted at {mountpoint}; Ctrl-C unmounts");
    signals.forever().next();
    drive.unmount()
}
