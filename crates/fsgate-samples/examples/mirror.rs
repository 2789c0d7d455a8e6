//! Mounts a mirror of a directory until Ctrl-C: every change on the mount lands in the
//! source directory.
//!
//! Run as root: `cargo run -p fsgate-samples --example mirror -- SOURCE MOUNTPOINT`
//! (MOUNTPOINT an existing empty directory), then compare `ls -li SOURCE` and
//! `ls -li MOUNTPOINT` from another shell: same files, same inode numbers.

use fsgate_core::{Error, Result};
use fsgate_samples::mirror::MirrorDrive;
use fsgate_vfs::{Options, VirtualDrive};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, mountpoint] = &args[..] else {
        eprintln!("usage: mirror SOURCE MOUNTPOINT");
        std::process::exit(2);
    };
    // Catch the signals before mounting, so that Ctrl-C always unmounts.
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).map_err(|e| Error::io("catching SIGINT and SIGTERM", e))?;
    // `true` would route every opened file to its source file (FUSE passthrough).
    let mirror = MirrorDrive::new(source.as_ref(), false)?;
    let options = Options {
        // The source's inode numbers are what `stat` on the mount shows.
        use_file_ids: true,
        ..Options::default()
    };
    let drive = VirtualDrive::new(mirror, options);
    drive.mount(mountpoint, 0)?;
    eprintln!("mirroring {source} at {mountpoint}; Ctrl-C unmounts");
    signals.forever().next();
    drive.unmount()
}
