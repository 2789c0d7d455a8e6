//! The reference's install and uninstall flags, and parsing them from text
//! (`0x5`, `5`, `INSTALL_REMOVE_OLD_VERSIONS|INSTALL_OVERWRITE_SAME_VERSION`, or names joined
//! with `,`).
//!
//! The value `0x4` has two names in the reference: `INSTALL_OVERWRITE_SAME_VERSION` (virtual
//! drive class) and `INSTALL_REQUESTS_VIA_DRIVER_STACK` (filter classes). fsgate has one
//! installer for every class, so `0x4` does both: files of the same version are overwritten,
//! and the `SendRequestsViaDriverStack` setting is persisted as true.

use fsgate_core::{Error, Result};

/// Uninstall fsgate files of older majors (their registrations move to the new major).
pub const INSTALL_REMOVE_OLD_VERSIONS: u32 = 0x0000_0001;
/// Keep the service's enabled state ("start type") when it was installed before.
pub const INSTALL_KEEP_START_TYPE: u32 = 0x0000_0002;
/// Install files even when the installed version is the same.
pub const INSTALL_OVERWRITE_SAME_VERSION: u32 = 0x0000_0004;
/// The filter classes' name for `0x4`: persisted as `SendRequestsViaDriverStack`.
pub const INSTALL_REQUESTS_VIA_DRIVER_STACK: u32 = 0x0000_0004;
/// Persisted as `AlwaysPrepareFiles`.
pub const INSTALL_ALWAYS_PREPARE_FILES: u32 = 0x0001_0000;
/// Persisted as `ForceAppPermissionCheck`.
pub const INSTALL_FORCE_APP_PERMISSION_CHECK: u32 = 0x0002_0000;
/// Persisted as `ForceSecurityChecks`.
pub const INSTALL_FORCE_SECURITY_CHECKS: u32 = 0x0004_0000;

/// Remove the product's registrations of majors older than the package's.
pub const UNINSTALL_VERSION_PREVIOUS: u32 = 0x0000_0001;
/// Remove the product's registration of the package's major (what flags 0 mean too).
pub const UNINSTALL_VERSION_CURRENT: u32 = 0x0000_0002;
/// Both of the above.
pub const UNINSTALL_VERSION_ALL: u32 = 0x0000_0003;

/// Install flags that become persistent settings under `/etc/fsgate/fsgate.conf`, with the
/// reference's setting names.
pub const PERSISTED_INSTALL_FLAGS: &[(u32, &str)] = &[
    (
        INSTALL_REQUESTS_VIA_DRIVER_STACK,
        "SendRequestsViaDriverStack",
    ),
    (INSTALL_ALWAYS_PREPARE_FILES, "AlwaysPrepareFiles"),
    (
        INSTALL_FORCE_APP_PERMISSION_CHECK,
        "ForceAppPermissionCheck",
    ),
    (INSTALL_FORCE_SECURITY_CHECKS, "ForceSecurityChecks"),
];

const INSTALL_NAMES: &[(&str, u32)] = &[
    ("INSTALL_REMOVE_OLD_VERSIONS", INSTALL_REMOVE_OLD_VERSIONS),
    ("INSTALL_KEEP_START_TYPE", INSTALL_KEEP_START_TYPE),
    (
        "INSTALL_OVERWRITE_SAME_VERSION",
        INSTALL_OVERWRITE_SAME_VERSION,
    ),
    (
        "INSTALL_REQUESTS_VIA_DRIVER_STACK",
        INSTALL_REQUESTS_VIA_DRIVER_STACK,
    ),
    ("INSTALL_ALWAYS_PREPARE_FILES", INSTALL_ALWAYS_PREPARE_FILES),
    (
        "INSTALL_FORCE_APP_PERMISSION_CHECK",
        INSTALL_FORCE_APP_PERMISSION_CHECK,
    ),
    (
        "INSTALL_FORCE_SECURITY_CHECKS",
        INSTALL_FORCE_SECURITY_CHECKS,
    ),
];

const UNINSTALL_NAMES: &[(&str, u32)] = &[
    ("UNINSTALL_VERSION_PREVIOUS", UNINSTALL_VERSION_PREVIOUS),
    ("UNINSTALL_VERSION_CURRENT", UNINSTALL_VERSION_CURRENT),
    ("UNINSTALL_VERSION_ALL", UNINSTALL_VERSION_ALL),
];

/// All install flags the installer knows; other bits are refused.
pub const INSTALL_FLAGS_MASK: u32 = INSTALL_REMOVE_OLD_VERSIONS
    | INSTALL_KEEP_START_TYPE
    | INSTALL_OVERWRITE_SAME_VERSION
    | INSTALL_ALWAYS_PREPARE_FILES
    | INSTALL_FORCE_APP_PERMISSION_CHECK
    | INSTALL_FORCE_SECURITY_CHECKS;

/// Parses install flags: numbers (decimal or `0x` hex) and `INSTALL_*` names joined by `|`
/// or `,`; an empty string is 0.
pub fn parse_install_flags(text: &str) -> Result<u32> {
    parse(text, INSTALL_NAMES)
}

/// Parses uninstall flags: numbers and `UNINSTALL_VERSION_*` names joined by `|` or `,`.
pub fn parse_uninstall_flags(text: &str) -> Result<u32> {
    parse(text, UNINSTALL_NAMES)
}

fn parse(text: &str, names: &[(&str, u32)]) -> Result<u32> {
    let mut flags = 0u32;
    for item in text.split(['|', ',']).map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let number = match item.strip_prefix("0x").or_else(|| item.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => item.parse::<u32>().ok(),
        };
        let value = number
            .or_else(|| {
                names
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(item))
                    .map(|&(_, v)| v)
            })
            .ok_or_else(|| {
                let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                Error::invalid_argument(
                    "flags",
                    format!(
                        "{item:?} is neither a number nor one of {}",
                        known.join(", ")
                    ),
                )
            })?;
        flags |= value;
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_names_and_mixtures() {
        assert_eq!(parse_install_flags("").unwrap(), 0);
        assert_eq!(parse_install_flags("5").unwrap(), 5);
        assert_eq!(parse_install_flags("0x10000").unwrap(), 0x10000);
        assert_eq!(
            parse_install_flags("INSTALL_REMOVE_OLD_VERSIONS|install_keep_start_type").unwrap(),
            3
        );
        assert_eq!(
            parse_install_flags("INSTALL_OVERWRITE_SAME_VERSION, 0x20000").unwrap(),
            0x20004
        );
        assert_eq!(parse_uninstall_flags("UNINSTALL_VERSION_ALL").unwrap(), 3);
    }

    #[test]
    fn refuses_unknown_names_naming_the_argument() {
        let e = parse_install_flags("INSTALL_FOO").unwrap_err();
        assert!(e.message().contains("flags") && e.message().contains("INSTALL_FOO"));
        assert!(parse_uninstall_flags("INSTALL_KEEP_START_TYPE").is_err());
    }
}
