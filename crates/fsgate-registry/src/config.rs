//! fsgate's persistent system settings: `<root>/etc/fsgate/fsgate.conf`, one `Name=Value`
//! per line (`#` starts a comment). It holds `LoggingEnabled` (extended logging) and the
//! install flags that the reference turns into settings (`SendRequestsViaDriverStack`,
//! `AlwaysPrepareFiles`, `ForceAppPermissionCheck`, `ForceSecurityChecks`). Booleans accept
//! the reference's spellings (`true`/`false`, `1`/`0`, `yes`/`no`, …).
//!
//! Unlike the reference, toggling `LoggingEnabled` needs no reboot: classes read it when they
//! initialize.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fsgate_core::settings::parse_bool;
use fsgate_core::{code, Error, Result};

/// The name of the extended logging setting.
pub const LOGGING_ENABLED: &str = "LoggingEnabled";

/// The settings file under `root`.
pub fn config_path(root: &Path) -> PathBuf {
    root.join("etc/fsgate/fsgate.conf")
}

/// The settings in the file; an absent file is an empty table.
pub fn load(root: &Path) -> Result<BTreeMap<String, String>> {
    let path = config_path(root);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let mut table = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').ok_or_else(|| {
            Error::from_code(
                code::ERROR_INVALID_DATA,
                format!(
                    "{} line {}: {line:?} is not Name=Value",
                    path.display(),
                    n + 1
                ),
            )
        })?;
        table.insert(name.trim().to_string(), value.trim().to_string());
    }
    Ok(table)
}

/// Sets `values` in the file, keeping every other setting; written atomically.
pub fn store(root: &Path, values: &[(&str, bool)]) -> Result<()> {
    let mut table = load(root)?;
    for (name, value) in values {
        table.insert((*name).to_string(), value.to_string());
    }
    let mut text = String::from("# fsgate system settings (written by fsgate-install)\n");
    for (name, value) in &table {
        text.push_str(&format!("{name}={value}\n"));
    }
    crate::fsutil::write_atomic(&config_path(root), text.as_bytes(), 0o644)
}

/// A boolean setting, or `None` when it was never set.
pub fn get_bool(root: &Path, name: &str) -> Result<Option<bool>> {
    load(root)?
        .get(name)
        .map(|v| parse_bool(name, v))
        .transpose()
}

/// Whether extended logging is on (`LoggingEnabled`, default off). Classes call this when
/// they initialize; when it is true they send their `tracing` output to journald or syslog.
pub fn logging_enabled(root: &Path) -> Result<bool> {
    Ok(get_bool(root, LOGGING_ENABLED)?.unwrap_or(false))
}

/// Turns extended logging on or off for every class on this system (or image under `root`).
pub fn set_logging_enabled(root: &Path, enabled: bool) -> Result<()> {
    store(root, &[(LOGGING_ENABLED, enabled)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_raw(root: &Path, text: &str) {
        let path = config_path(root);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn logging_enabled_round_trips_and_keeps_other_settings() {
        let root = tempfile::tempdir().unwrap();
        assert!(!logging_enabled(root.path()).unwrap());
        store(root.path(), &[("AlwaysPrepareFiles", true)]).unwrap();
        set_logging_enabled(root.path(), true).unwrap();
        assert!(logging_enabled(root.path()).unwrap());
        assert_eq!(
            get_bool(root.path(), "AlwaysPrepareFiles").unwrap(),
            Some(true)
        );
        set_logging_enabled(root.path(), false).unwrap();
        assert!(!logging_enabled(root.path()).unwrap());
    }

    #[test]
    fn accepts_reference_spellings_and_refuses_garbage() {
        let root = tempfile::tempdir().unwrap();
        write_raw(root.path(), "# c\nLoggingEnabled = yes\n");
        assert!(logging_enabled(root.path()).unwrap());
        write_raw(root.path(), "LoggingEnabled\n");
        let e = logging_enabled(root.path()).unwrap_err();
        assert_eq!(e.code(), code::ERROR_INVALID_DATA);
    }
}
