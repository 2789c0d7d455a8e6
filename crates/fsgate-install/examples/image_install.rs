//! Installs fsgate into an image directory, prints what happened, then removes it again.
//!
//! ```text
//! cargo run -p fsgate-install --example image_install -- /tmp/image /usr/bin/fsgate
//! ```
//!
//! The second argument is the helper binary to package (any executable works for a trial).
//! Everything is written under the image directory; the running system is not touched.

use std::path::PathBuf;

use fsgate_install::{Installer, Package};

fn main() -> fsgate_core::Result<()> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(root), Some(helper)) = (args.next(), args.next()) else {
        eprintln!("usage: image_install ROOT HELPER_BINARY");
        std::process::exit(2);
    };
    let package = root.join("fsgate.pkg");
    std::fs::create_dir_all(&root).map_err(|e| fsgate_core::Error::io("creating root", e))?;
    let manifest = Package::build(&package, &helper)?;
    println!("built {} (version {})", package.display(), manifest.version);

    let guid = "{6FA3C0A1-0D2B-4C6E-9F10-AA00BB11CC22}";
    let installer = Installer::new(&root);
    let report = installer.install_with_report(&package, guid, "", 0)?;
    println!("{:?} into {}", report.action, report.install_dir);
    for f in &report.missing_facilities {
        println!("missing on this kernel: {}: {}", f.facility, f.detail);
    }
    println!(
        "status {} version {:#018x}",
        installer.get_driver_status(guid)?,
        installer.get_driver_version(guid)?
    );
    let reboot = installer.uninstall(&package, guid, "", 0)?;
    println!("uninstalled; reboot needed: {reboot}");
    Ok(())
}
