//! The installer library driven from other processes: a C setup program through the shared
//! library, eight installers running at once, an unprivileged caller, and a helper binary
//! that is running when it is uninstalled.

mod c_installer;
mod common;

use fsgate_testkit::require_root;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use c_installer::CInstaller;
use common::*;
use fsgate_core::code;

#[test]
fn c_program_installs_and_uninstalls_through_the_shared_library() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let pkg = fx.package("1.2.3.4");
    let c = CInstaller::build();
    let out = c
        .command("roundtrip", fx.root.path(), &pkg, GUID_A)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "version=0001000200030004 status=1\n\
         after_uninstall version=0 verify=2\n\
         bad_guid rc=87 whole_message=1 mentions_product_guid=1\n",
    );
}

#[test]
fn eight_concurrent_installer_processes_keep_every_registration() {
    require_root!("installing needs root (run as root, as CI does)");
    let fx = Fixture::new();
    let pkg = fx.package("1.0.0.0");
    let c = CInstaller::build();
    let guids: Vec<String> = (0..8)
        .map(|i| format!("{{{i:08X}-0000-4000-8000-00000000000{i}}}"))
        .collect();
    let children: Vec<_> = guids
        .iter()
        .map(|g| {
            c.command("install", fx.root.path(), &pkg, g)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "rc=0 reboot=0\n");
    }
    let reg = fx.registry();
    let mut found: Vec<String> = reg["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["product_guid"].as_str().unwrap().to_string())
        .collect();
    found.sort();
    assert_eq!(found, guids);
    let inst = fx.installer();
    for g in &guids {
        assert_eq!(inst.get_driver_version(g).unwrap(), v("1.0.0.0"));
    }
}

#[test]
fn unprivileged_caller_gets_1314_and_changes_nothing() {
    require_root!("installing needs root (run as root, as CI does)");
    // nobody can reach the program, the library, the package and the root, and may write
    // in the root: only the library's privilege check stands in its way.
    let fx = Fixture::reachable();
    std::fs::set_permissions(fx.root.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let pkg = fx.package("1.0.0.0");
    let c = CInstaller::build();
    let mut cmd = c.command("install", fx.root.path(), &pkg, GUID_A);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("rc={} reboot=-1\n", code::ERROR_PRIVILEGE_NOT_HELD),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert_eq!(std::fs::read_dir(fx.root.path()).unwrap().count(), 0);
}

#[test]
fn running_helper_is_removed_at_next_boot_and_reboot_is_needed() {
    require_root!("installing needs root (run as root, as CI does)");
    // The installed helper runs from the root: it must allow running programs.
    let fx = Fixture::reachable();
    let pkg = fx.package("1.0.0.0");
    let inst = fx.installer();
    inst.install(&pkg, GUID_A, "", 0).unwrap();
    let helper = fx.path("/usr/lib/fsgate/1/fsgate");
    // The installed helper is a copy of sleep; run it. A fork elsewhere in this test process
    // may briefly hold a descriptor open for writing (ETXTBSY): retry.
    let mut child = (0..50)
        .find_map(|_| match Command::new(&helper).arg("60").spawn() {
            Ok(c) => Some(c),
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                None
            }
            Err(e) => panic!("running the helper: {e}"),
        })
        .expect("the helper stayed busy");
    let report = inst.uninstall_with_report(&pkg, GUID_A, "", 0);
    child.kill().unwrap();
    child.wait().unwrap();
    let report = report.unwrap();
    assert!(report.reboot_needed);
    assert_eq!(
        report.scheduled_removals,
        vec!["/usr/lib/fsgate/1".to_string()]
    );
    assert_eq!(
        inst.last_reboot_reasons(),
        vec!["/usr/lib/fsgate/1 is in use and is removed at the next boot".to_string()]
    );
    assert!(helper.is_file());
    let pending =
        std::fs::read_to_string(fx.path("/etc/tmpfiles.d/fsgate-pending-removal.conf")).unwrap();
    assert!(
        pending.lines().any(|l| l == "R /usr/lib/fsgate/1"),
        "{pending}"
    );
    assert_eq!(inst.get_driver_version(GUID_A).unwrap(), 0);

    // Installing again before the reboot cancels the scheduled removal.
    assert!(!inst.install(&pkg, GUID_A, "", 0).unwrap());
    assert!(inst.last_reboot_reasons().is_empty());
    assert!(!fx
        .path("/etc/tmpfiles.d/fsgate-pending-removal.conf")
        .exists());
    assert_eq!(inst.get_driver_version(GUID_A).unwrap(), v("1.0.0.0"));
}
