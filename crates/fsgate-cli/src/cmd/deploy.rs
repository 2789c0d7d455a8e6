//! `fsgate package|install|uninstall|status`: argument parsing and output over
//! `fsgate_install`.

use std::path::PathBuf;

use clap::Args;
use fsgate_core::{Error, Result};
use fsgate_install::flags::{parse_install_flags, parse_uninstall_flags};
use fsgate_install::{Installer, Package, Version};
use serde_json::{json, Map, Value};

use crate::output::Printer;

/// `fsgate package OUTFILE`.
#[derive(Args)]
pub struct PackageArgs {
    /// Where to write the package (this executable becomes its helper binary).
    pub outfile: PathBuf,
}

/// `fsgate install PACKAGE --product-guid GUID [--root DIR] [--flags FLAGS]`.
#[derive(Args)]
pub struct InstallArgs {
    /// The package file (built by `fsgate package`).
    pub package: PathBuf,
    /// The product's GUID in registry format: {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}.
    #[arg(long)]
    pub product_guid: String,
    /// Install under this directory instead of `/` (image builds, tests); the running system
    /// is then never touched.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// A number (decimal or 0x hex) or INSTALL_* names joined by `|` or `,`.
    #[arg(long, default_value = "0")]
    pub flags: String,
    /// Where to install; empty means `/usr/lib/fsgate/<major>`.
    #[arg(long, default_value = "")]
    pub path_to_install: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `fsgate uninstall PACKAGE --product-guid GUID [--root DIR] [--flags FLAGS]`.
#[derive(Args)]
pub struct UninstallArgs {
    /// The package file passed to `fsgate install`.
    pub package: PathBuf,
    /// The product's GUID.
    #[arg(long)]
    pub product_guid: String,
    /// The alternative root passed to `fsgate install`.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// A number or UNINSTALL_VERSION_* names joined by `|` or `,` (0 means CURRENT).
    #[arg(long, default_value = "0")]
    pub flags: String,
    /// The path passed as --path-to-install, if any.
    #[arg(long, default_value = "")]
    pub installed_path: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `fsgate status --product-guid GUID [--root DIR] [--json]`.
#[derive(Args)]
pub struct StatusArgs {
    /// The product GUID.
    #[arg(long)]
    pub product_guid: String,
    /// The alternative root passed to `fsgate install`.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Print one JSON object with `status` and `version`.
    #[arg(long)]
    pub json: bool,
}

fn installer(root: Option<PathBuf>) -> Installer {
    root.map_or_else(Installer::system, Installer::new)
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn encoding(e: serde_json::Error) -> Error {
    Error::from_code(
        fsgate_core::code::ERROR_INTERNAL_ERROR,
        format!("encoding the report: {e}"),
    )
}

/// Runs `fsgate package`.
pub fn package(args: PackageArgs) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this executable", e))?;
    let manifest = Package::build(&args.outfile, &exe)?;
    println!(
        "package {} version {} ({} files)",
        args.outfile.display(),
        manifest.version,
        manifest.files.len()
    );
    Ok(())
}

/// Runs `fsgate install`.
pub fn install(args: InstallArgs) -> Result<()> {
    let flags = parse_install_flags(&args.flags)?;
    let report = installer(args.root).install_with_report(
        &args.package,
        &args.product_guid,
        &args.path_to_install,
        flags,
    )?;
    let value = serde_json::to_value(&report).map_err(encoding)?;
    if args.json {
        println!("{value}");
    } else {
        println!(
            "{:?}: fsgate {} in {} for {}",
            report.action, report.installed_version, report.install_dir, report.product_guid
        );
        for f in &report.missing_facilities {
            println!("missing facility: {}: {}", f.facility, f.detail);
        }
        for r in &report.reboot_reasons {
            println!("reboot needed: {r}");
        }
    }
    Ok(())
}

/// Runs `fsgate uninstall`.
pub fn uninstall(args: UninstallArgs) -> Result<()> {
    let flags = parse_uninstall_flags(&args.flags)?;
    let report = installer(args.root).uninstall_with_report(
        &args.package,
        &args.product_guid,
        &args.installed_path,
        flags,
    )?;
    let value = serde_json::to_value(&report).map_err(encoding)?;
    if args.json {
        println!("{value}");
    } else {
        println!(
            "unregistered majors {:?}, removed majors {:?}",
            report.unregistered_majors, report.removed_majors
        );
        for r in &report.reboot_reasons {
            println!("reboot needed: {r}");
        }
    }
    Ok(())
}

/// Runs `fsgate status`.
pub fn status(args: StatusArgs) -> Result<()> {
    let inst = installer(args.root);
    let status = inst.get_driver_status(&args.product_guid)?;
    let version = inst.get_driver_version(&args.product_guid)?;
    let name = match status {
        fsgate_install::MODULE_STATUS_RUNNING => "running",
        fsgate_install::MODULE_STATUS_STOPPED => "stopped",
        _ => "not_present",
    };
    Printer { json: args.json }.event(
        "status",
        fields(json!({
            "product_guid": args.product_guid,
            "status": status,
            "status_name": name,
            "version": version,
            "version_text": Version::from_u64(version).to_string(),
        })),
    );
    Ok(())
}
