//! Extended logging: `LoggingEnabled`, persisted by the installer, is read by every command.

use std::path::Path;
use std::process::Command;

const FSGATE: &str = env!("CARGO_BIN_EXE_fsgate");

fn status_stderr(root: &Path) -> String {
    let out = Command::new(FSGATE)
        .args([
            "status",
            "--product-guid",
            "{00000000-0000-0000-0000-000000000001}",
        ])
        .env("FSGATE_ROOT", root)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn logging_enabled_sends_to_the_system_log_or_says_why_not() {
    let root = tempfile::tempdir().unwrap();
    assert!(!status_stderr(root.path()).contains("LoggingEnabled"));
    fsgate_install::set_logging_enabled(root.path(), true).unwrap();
    let stderr = status_stderr(root.path());
    if Path::new("/dev/log").exists() {
        assert!(!stderr.contains("cannot be reached"), "{stderr}");
    } else {
        assert!(
            stderr.contains("LoggingEnabled is on but /dev/log cannot be reached"),
            "{stderr}"
        );
    }
}
