//! Rules by image name that the kernel side matches itself.
//!
//! The kernel matches a *plain* name: no `/`, no `*` or `?`, 1 to 63 bytes. It compares it,
//! byte for byte (case-sensitive, as Linux names are), with the last component of the image
//! a process runs (the file `/proc/<pid>/exe` names: a symbolic link run by its link name is
//! matched by its target's name; a script by its interpreter's), when the process execs, and
//! adds the process to the ignored or filtered processes; a process that execs an image of
//! another name leaves them again, and a process it forks before exec is matched as it is.
//! A name with a wildcard or a directory cannot be matched this way: the caller matches it
//! in user space (for a filter rule, by reporting everything not ignored and choosing there).

use fsgate_core::{Error, Result};

/// The key length of the kernel's `name_rules` map (`NAME_KEY` in the C source).
pub(crate) const NAME_KEY: usize = 64;

/// Bits of a `name_rules` value (`NAME_*` in the C source).
pub(crate) const NAME_FILTERED: u8 = 1;
pub(crate) const NAME_FILTERED_CHILDREN: u8 = 2;
pub(crate) const NAME_IGNORED: u8 = 4;
pub(crate) const NAME_IGNORED_CHILDREN: u8 = 8;

/// Which list a rule is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleList {
    /// Never reported (wins over filtered).
    Ignored,
    /// Reported when a filter is active.
    Filtered,
}

impl RuleList {
    /// The kernel map of the processes in this list.
    pub(crate) fn pid_map(self) -> &'static str {
        match self {
            Self::Ignored => "ignored_pids",
            Self::Filtered => "filtered_pids",
        }
    }

    /// The `name_rules` bits of a rule in this list.
    pub(crate) fn name_bits(self, include_children: bool) -> u8 {
        match (self, include_children) {
            (Self::Ignored, false) => NAME_IGNORED,
            (Self::Ignored, true) => NAME_IGNORED | NAME_IGNORED_CHILDREN,
            (Self::Filtered, false) => NAME_FILTERED,
            (Self::Filtered, true) => NAME_FILTERED | NAME_FILTERED_CHILDREN,
        }
    }
}

/// A rule by image name, as the kernel matches it (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameRule {
    /// The plain name (see [`is_kernel_matchable`]).
    pub name: String,
    /// Whether processes a matching process forks get the rule too, whatever they exec.
    pub include_children: bool,
}

/// Whether the kernel can match `name` itself: no `/`, no `*` or `?`, 1 to 63 bytes.
pub fn is_kernel_matchable(name: &str) -> bool {
    !name.is_empty() && name.len() < NAME_KEY && !name.contains(['/', '*', '?', '\0'])
}

/// The `name_rules` key of `name`, NUL-padded; an invalid argument when the kernel cannot
/// match it.
pub(crate) fn key(name: &str) -> Result<[u8; NAME_KEY]> {
    if !is_kernel_matchable(name) {
        return Err(Error::invalid_argument(
            "name",
            format!(
                "'{}' is not a plain image name of 1 to {} bytes without '/', '*' or '?': \
                 the kernel matches only those",
                name.escape_debug(),
                NAME_KEY - 1
            ),
        ));
    }
    let mut key = [0u8; NAME_KEY];
    key[..name.len()].copy_from_slice(name.as_bytes());
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_names_are_matched_in_the_kernel() {
        assert!(is_kernel_matchable("sshd"));
        assert!(is_kernel_matchable(&"x".repeat(63)));
        for other in [
            "",
            "ss*",
            "s?hd",
            "/usr/sbin/sshd",
            "bin/sshd",
            &"x".repeat(64),
        ] {
            assert!(!is_kernel_matchable(other), "{other}");
            let e = key(other).expect_err("not matchable");
            assert!(e.message().starts_with("invalid name"), "{e}");
        }
        let k = key("sshd").unwrap();
        assert_eq!(&k[..5], b"sshd\0");
        assert_eq!(k.len(), 64);
    }

    #[test]
    fn each_list_has_its_bits() {
        assert_eq!(RuleList::Ignored.name_bits(true), 12);
        assert_eq!(RuleList::Filtered.name_bits(false), 1);
        assert_eq!(RuleList::Filtered.pid_map(), "filtered_pids");
    }
}
