//! Installing, upgrading and removing under temporary roots, through real files, real
//! processes and the real registry lock.

mod common;

use fsgate_testkit::require_root;
use std::fs;

use common::*;
use fsgate_core::code;
use fsgate_install::{
    flags::*, InstallAction, Version, MODULE_STATUS_NOT_PRESENT, MODULE_STATUS_STOPPED,
};

#[test]
fn install_writes_helper_unit_snippets_and_registration() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let pkg = fx.package("1.2.0.0");
    let inst = fx.installer();
    let report = inst.install_with_report(&pkg, GUID_A, "", 0).unwrap();
    assert_eq!(report.action, InstallAction::Installed);
    assert_eq!(report.install_dir, "/usr/lib/fsgate/1");
    assert!(!report.reboot_needed);
    assert!(report.reboot_reasons.is_empty());
    assert_eq!(
        fs::read(fx.path("/usr/lib/fsgate/1/fsgate")).unwrap(),
        fs::read("/bin/sleep").unwrap()
    );
    let unit = fs::read_to_string(fx.path("/usr/lib/systemd/system/fsgate-1.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/lib/fsgate/1/fsgate --version\n"),
        "{unit}"
    );
    assert_eq!(
        fs::read_link(fx.path("/etc/systemd/system/multi-user.target.wants/fsgate-1.service"))
            .unwrap()
            .to_str()
            .unwrap(),
        "/usr/lib/systemd/system/fsgate-1.service"
    );
    assert!(
        fs::read_to_string(fx.path("/usr/lib/modules-load.d/fsgate.conf"))
            .unwrap()
            .lines()
            .any(|l| l == "fuse")
    );
    assert!(
        fs::read_to_string(fx.path("/usr/lib/tmpfiles.d/fsgate.conf"))
            .unwrap()
            .contains("c /dev/fuse 0666 root root - 10:229")
    );
    let reg = fx.registry();
    assert_eq!(reg["products"][0]["product_guid"], GUID_A);
    assert_eq!(reg["products"][0]["major"], 1);
    assert_eq!(inst.get_driver_version(GUID_A).unwrap(), v("1.2.0.0"));
    assert_eq!(
        inst.get_driver_status(GUID_A).unwrap(),
        MODULE_STATUS_STOPPED
    );
    assert_eq!(inst.get_driver_version(GUID_B).unwrap(), 0);
    assert_eq!(
        inst.get_driver_status(GUID_B).unwrap(),
        MODULE_STATUS_NOT_PRESENT
    );
}

#[test]
fn guid_must_be_braced_registry_format() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let pkg = fx.package("1.0.0.0");
    let e = fx
        .installer()
        .install(&pkg, "11111111-2222-3333-4444-555555555555", "", 0)
        .unwrap_err();
    assert_eq!(e.code(), code::ERROR_INVALID_PARAMETER);
    assert!(e.message().contains("product_guid"), "{}", e.message());
    assert!(!fx.path("/var/lib/fsgate/registry.json").exists());
}

#[test]
fn lowercase_guid_names_the_same_product() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let pkg = fx.package("1.0.0.0");
    let inst = fx.installer();
    inst.install(&pkg, &GUID_B.to_lowercase(), "", 0).unwrap();
    assert_eq!(inst.get_driver_version(GUID_B).unwrap(), v("1.0.0.0"));
}

#[test]
fn verify_installed_reports_2_then_340_then_ok() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    let e = inst.verify_installed(GUID_A).unwrap_err();
    assert_eq!(e.code(), code::ERROR_FILE_NOT_FOUND);
    let lib = Version::current();
    let older = Version::from_u64(lib.to_u64() - 1);
    if lib.to_u64() > 0 && older.major == lib.major {
        inst.install(&fx.package(&older.to_string()), GUID_A, "", 0)
            .unwrap();
        let e = inst.verify_installed(GUID_A).unwrap_err();
        assert_eq!(e.code(), code::ERROR_INVALID_KERNEL_INFO_VERSION);
    }
    inst.install(&fx.package(&lib.to_string()), GUID_A, "", 0)
        .unwrap();
    inst.verify_installed(GUID_A).unwrap();
    assert_eq!(
        inst.verify_installed(GUID_B).unwrap_err().code(),
        code::ERROR_FILE_NOT_FOUND
    );
}

#[test]
fn two_products_share_files_until_the_last_uninstall() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let pkg = fx.package("1.0.0.0");
    let inst = fx.installer();
    inst.install(&pkg, GUID_A, "", 0).unwrap();
    inst.install(&pkg, GUID_B, "", 0).unwrap();
    assert!(!inst.uninstall(&pkg, GUID_A, "", 0).unwrap());
    assert!(fx.path("/usr/lib/fsgate/1/fsgate").is_file());
    assert!(fx
        .path("/usr/lib/systemd/system/fsgate-1.service")
        .is_file());
    assert_eq!(inst.get_driver_version(GUID_A).unwrap(), 0);
    assert_eq!(inst.get_driver_version(GUID_B).unwrap(), v("1.0.0.0"));
    let report = inst.uninstall_with_report(&pkg, GUID_B, "", 0).unwrap();
    assert_eq!(report.removed_majors, vec![1]);
    assert!(!report.reboot_needed);
    for gone in [
        "/usr/lib/fsgate",
        "/usr/lib/systemd/system/fsgate-1.service",
        "/etc/systemd/system/multi-user.target.wants/fsgate-1.service",
        "/usr/lib/modules-load.d/fsgate.conf",
        "/usr/lib/tmpfiles.d/fsgate.conf",
    ] {
        assert!(!fx.path(gone).exists(), "{gone} is still there");
    }
    assert_eq!(fx.registry()["products"].as_array().unwrap().len(), 0);
    assert!(!inst.uninstall(&pkg, GUID_B, "", 0).unwrap());
}

#[test]
fn tampered_package_installs_nothing() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let pkg = fx.package_with("1.0.0.0", std::path::Path::new("/bin/true"));
    let mut bytes = fs::read(&pkg).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&pkg, &bytes).unwrap();
    let e = fx.installer().install(&pkg, GUID_A, "", 0).unwrap_err();
    assert_eq!(e.code(), code::ERROR_INVALID_DATA, "{e}");
    assert_eq!(fs::read_dir(fx.root.path()).unwrap().count(), 0);
}

#[test]
fn upgrade_same_major_replaces_older_minor() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    inst.install(
        &fx.package_with("2.1.0.0", std::path::Path::new("/bin/true")),
        GUID_A,
        "",
        0,
    )
    .unwrap();
    let r = inst
        .install_with_report(&fx.package("2.3.0.0"), GUID_B, "", 0)
        .unwrap();
    assert_eq!(r.action, InstallAction::Upgraded);
    assert_eq!(
        fs::read(fx.path("/usr/lib/fsgate/2/fsgate")).unwrap(),
        fs::read("/bin/sleep").unwrap()
    );
    assert_eq!(inst.get_driver_version(GUID_A).unwrap(), v("2.3.0.0"));
    assert_eq!(inst.get_driver_version(GUID_B).unwrap(), v("2.3.0.0"));
}

#[test]
fn newer_installed_minor_is_left_unchanged() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    inst.install(&fx.package("2.5.0.0"), GUID_A, "", 0).unwrap();
    let r = inst
        .install_with_report(
            &fx.package_with("2.4.0.0", std::path::Path::new("/bin/true")),
            GUID_B,
            "",
            0,
        )
        .unwrap();
    assert_eq!(r.action, InstallAction::Unchanged);
    assert_eq!(r.installed_version, "2.5.0.0");
    assert_eq!(
        fs::read(fx.path("/usr/lib/fsgate/2/fsgate")).unwrap(),
        fs::read("/bin/sleep").unwrap()
    );
    assert_eq!(inst.get_driver_version(GUID_B).unwrap(), v("2.5.0.0"));
}

#[test]
fn same_version_is_rewritten_only_with_overwrite_flag() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    let pkg = fx.package("3.0.0.0");
    inst.install(&pkg, GUID_A, "", 0).unwrap();
    let helper = fx.path("/usr/lib/fsgate/3/fsgate");
    fs::write(&helper, b"damaged").unwrap();
    let r = inst.install_with_report(&pkg, GUID_A, "", 0).unwrap();
    assert_eq!(r.action, InstallAction::Unchanged);
    assert_eq!(fs::read(&helper).unwrap(), b"damaged");
    let r = inst
        .install_with_report(&pkg, GUID_A, "", INSTALL_OVERWRITE_SAME_VERSION)
        .unwrap();
    assert_eq!(r.action, InstallAction::Overwritten);
    assert_eq!(fs::read(&helper).unwrap(), fs::read("/bin/sleep").unwrap());
}

#[test]
fn two_majors_live_side_by_side_and_remove_old_versions_folds_them() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    inst.install(&fx.package("1.4.0.0"), GUID_A, "", 0).unwrap();
    inst.install(&fx.package("2.0.0.0"), GUID_B, "", 0).unwrap();
    assert!(fx.path("/usr/lib/fsgate/1/fsgate").is_file());
    assert!(fx.path("/usr/lib/fsgate/2/fsgate").is_file());
    assert!(fx
        .path("/usr/lib/systemd/system/fsgate-1.service")
        .is_file());
    assert!(fx
        .path("/usr/lib/systemd/system/fsgate-2.service")
        .is_file());
    assert_eq!(inst.get_driver_version(GUID_A).unwrap(), v("1.4.0.0"));
    assert_eq!(inst.get_driver_version(GUID_B).unwrap(), v("2.0.0.0"));

    let r = inst
        .install_with_report(
            &fx.package("2.0.0.0"),
            GUID_B,
            "",
            INSTALL_REMOVE_OLD_VERSIONS,
        )
        .unwrap();
    assert_eq!(r.removed_majors, vec![1]);
    assert!(!fx.path("/usr/lib/fsgate/1").exists());
    assert!(!fx.path("/usr/lib/systemd/system/fsgate-1.service").exists());
    assert_eq!(inst.get_driver_version(GUID_A).unwrap(), v("2.0.0.0"));
}

#[test]
fn uninstall_version_flags_select_majors() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    let p1 = fx.package("1.0.0.0");
    let p2 = fx.package("2.0.0.0");
    inst.install(&p1, GUID_A, "", 0).unwrap();
    inst.install(&p2, GUID_A, "", 0).unwrap();
    let r = inst
        .uninstall_with_report(&p2, GUID_A, "", UNINSTALL_VERSION_PREVIOUS)
        .unwrap();
    assert_eq!(r.unregistered_majors, vec![1]);
    assert!(!fx.path("/usr/lib/fsgate/1").exists());
    assert!(fx.path("/usr/lib/fsgate/2/fsgate").is_file());
    inst.install(&p1, GUID_A, "", 0).unwrap();
    let r = inst
        .uninstall_with_report(&p2, GUID_A, "", UNINSTALL_VERSION_ALL)
        .unwrap();
    assert_eq!(r.unregistered_majors, vec![2, 1]);
    assert!(!fx.path("/usr/lib/fsgate").exists());
    assert_eq!(inst.get_driver_version(GUID_A).unwrap(), 0);
}

#[test]
fn keep_start_type_preserves_a_disabled_service() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    inst.install(&fx.package("1.0.0.0"), GUID_A, "", 0).unwrap();
    let link = fx.path("/etc/systemd/system/multi-user.target.wants/fsgate-1.service");
    fs::remove_file(&link).unwrap();
    inst.install(&fx.package("1.1.0.0"), GUID_A, "", INSTALL_KEEP_START_TYPE)
        .unwrap();
    assert!(
        link.symlink_metadata().is_err(),
        "the disabled service was enabled"
    );
    inst.install(&fx.package("1.2.0.0"), GUID_A, "", 0).unwrap();
    assert!(
        link.symlink_metadata().is_ok(),
        "the start type was not reset"
    );
}

#[test]
fn other_install_flags_become_persistent_settings() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    inst.install(
        &fx.package("1.0.0.0"),
        GUID_A,
        "",
        INSTALL_ALWAYS_PREPARE_FILES | INSTALL_FORCE_SECURITY_CHECKS,
    )
    .unwrap();
    let root = fx.root.path();
    use fsgate_install::config::get_bool;
    assert_eq!(get_bool(root, "AlwaysPrepareFiles").unwrap(), Some(true));
    assert_eq!(get_bool(root, "ForceSecurityChecks").unwrap(), Some(true));
    assert_eq!(
        get_bool(root, "ForceAppPermissionCheck").unwrap(),
        Some(false)
    );
    assert_eq!(
        get_bool(root, "SendRequestsViaDriverStack").unwrap(),
        Some(false)
    );
    assert!(!fsgate_install::logging_enabled(root).unwrap());
    fsgate_install::set_logging_enabled(root, true).unwrap();
    assert!(fs::read_to_string(fx.path("/etc/fsgate/fsgate.conf"))
        .unwrap()
        .contains("LoggingEnabled=true\n"));
    assert!(fsgate_install::logging_enabled(root).unwrap());
}

#[test]
fn custom_path_to_install_is_used_and_checked_on_uninstall() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    let pkg = fx.package("1.0.0.0");
    inst.install(&pkg, GUID_A, "/opt/vendor/fsgate", 0).unwrap();
    assert!(fx.path("/opt/vendor/fsgate/fsgate").is_file());
    let unit = fs::read_to_string(fx.path("/usr/lib/systemd/system/fsgate-1.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/vendor/fsgate/fsgate --version"));
    let e = inst.uninstall(&pkg, GUID_A, "/opt/other", 0).unwrap_err();
    assert!(e.message().contains("installed_path"), "{}", e.message());
    inst.uninstall(&pkg, GUID_A, "/opt/vendor/fsgate", 0)
        .unwrap();
    assert!(!fx.path("/opt/vendor/fsgate/fsgate").exists());
    let e = inst.install(&pkg, GUID_A, "relative/dir", 0).unwrap_err();
    assert!(e.message().contains("path_to_install"));
}

#[test]
fn truncated_registry_is_an_error_and_kept_byte_for_byte() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let inst = fx.installer();
    let pkg = fx.package("1.0.0.0");
    inst.install(&pkg, GUID_A, "", 0).unwrap();
    let path = fx.path("/var/lib/fsgate/registry.json");
    let full = fs::read(&path).unwrap();
    let truncated = &full[..full.len() / 2];
    fs::write(&path, truncated).unwrap();
    for e in [
        inst.install(&pkg, GUID_B, "", 0).unwrap_err(),
        inst.uninstall(&pkg, GUID_A, "", 0).unwrap_err(),
        inst.get_driver_version(GUID_A).unwrap_err(),
    ] {
        assert_eq!(e.code(), code::ERROR_INVALID_DATA);
        assert!(e.message().contains("registry.json") && e.message().contains("corrupt"));
    }
    assert_eq!(fs::read(&path).unwrap(), truncated);
    assert!(fx.path("/usr/lib/fsgate/1/fsgate").is_file());
}
