//! ProductGUIDs in the registry format with braces: `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`.

use fsgate_core::{Error, Result};

/// Checks that `guid` is in registry format with braces and returns it in upper case, the
/// form the registry stores, so that `{abc…}` and `{ABC…}` name the same product.
pub fn normalize(guid: &str) -> Result<String> {
    let bad = |reason: &str| {
        Error::invalid_argument(
            "product_guid",
            format!(
                "{guid:?} {reason}; expected registry format with braces, \
                 {{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}}"
            ),
        )
    };
    let inner = guid
        .strip_prefix('{')
        .and_then(|g| g.strip_suffix('}'))
        .ok_or_else(|| bad("is not enclosed in braces"))?;
    let groups: Vec<&str> = inner.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12] {
        return Err(bad("does not have groups of 8-4-4-4-12 digits"));
    }
    if !inner.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
        return Err(bad("contains a character that is not a hexadecimal digit"));
    }
    Ok(guid.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fsgate_core::code;

    #[test]
    fn accepts_braced_guid_and_uppercases_it() {
        assert_eq!(
            normalize("{6fa3c0a1-0d2b-4c6e-9f10-aa00bb11cc22}").unwrap(),
            "{6FA3C0A1-0D2B-4C6E-9F10-AA00BB11CC22}"
        );
    }

    #[test]
    fn refuses_missing_braces_wrong_groups_and_non_hex() {
        for bad in [
            "6fa3c0a1-0d2b-4c6e-9f10-aa00bb11cc22",
            "{6fa3c0a1-0d2b-4c6e-9f10-aa00bb11cc2}",
            "{6fa3c0a10d2b-4c6e-9f10-aa00bb11cc22}",
            "{6fa3c0a1-0d2b-4c6e-9f10-aa00bb11cczz}",
            "",
        ] {
            let e = normalize(bad).unwrap_err();
            assert_eq!(e.code(), code::ERROR_INVALID_PARAMETER, "{bad}");
            assert!(e.message().contains("product_guid"), "{}", e.message());
        }
    }
}
