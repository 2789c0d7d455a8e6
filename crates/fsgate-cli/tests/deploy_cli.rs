//! `fsgate package|install|status|uninstall` end to end under a temporary root.

use std::path::Path;
use std::process::{Command, Output};

const GUID: &str = "{0F5A7E11-2B3C-4D5E-8F90-A1B2C3D4E5F6}";

fn fsgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fsgate"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn status(root: &Path) -> serde_json::Value {
    let out = ok(fsgate(&[
        "status",
        "--product-guid",
        GUID,
        "--root",
        root.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(out.lines().count(), 1, "{out}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn package_install_status_uninstall_round_trip() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("package_install_status_uninstall_round_trip: skipped, install needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let pkg = work.path().join("fsgate.pkg");
    let pkg_s = pkg.to_str().unwrap();
    let root_s = root.path().to_str().unwrap();
    let out = ok(fsgate(&["package", pkg_s]));
    assert!(
        out.starts_with(&format!("package {pkg_s} version ")),
        "{out}"
    );

    let before = status(root.path());
    assert_eq!(before["event"], "status");
    assert_eq!(before["status"], 0);
    assert_eq!(before["version"], 0);

    let out = ok(fsgate(&[
        "install",
        pkg_s,
        "--product-guid",
        GUID,
        "--root",
        root_s,
        "--flags",
        "INSTALL_KEEP_START_TYPE|0x10000",
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["action"], "installed");
    assert_eq!(report["reboot_needed"], false);
    let helper = root.path().join("usr/lib/fsgate/0/fsgate");
    assert_eq!(
        std::fs::read(&helper).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_fsgate")).unwrap()
    );

    let after = status(root.path());
    assert_eq!(
        after["status"], 1,
        "an image root is never running: {after}"
    );
    let v = after["version"].as_u64().unwrap();
    assert_eq!(v >> 48, 0);
    assert_eq!(after["version_text"], report["installed_version"]);
    assert!(v > 0);

    ok(fsgate(&[
        "uninstall",
        pkg_s,
        "--product-guid",
        GUID,
        "--root",
        root_s,
        "--flags",
        "UNINSTALL_VERSION_ALL",
    ]));
    assert!(!helper.exists());
    let gone = status(root.path());
    assert_eq!(gone["status"], 0);
    assert_eq!(gone["version"], 0);
}

#[test]
fn bad_guid_and_flags_fail_with_the_argument_named() {
    let work = tempfile::tempdir().unwrap();
    let out = fsgate(&[
        "status",
        "--product-guid",
        "nope",
        "--root",
        work.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("product_guid"));
    let out = fsgate(&[
        "install",
        "/nonexistent.pkg",
        "--product-guid",
        GUID,
        "--root",
        work.path().to_str().unwrap(),
        "--flags",
        "INSTALL_BOGUS",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flags") && err.contains("INSTALL_BOGUS"),
        "{err}"
    );
}
