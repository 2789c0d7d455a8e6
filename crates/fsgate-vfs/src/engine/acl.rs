//! POSIX access ACLs set as the extended attribute `system.posix_acl_access` (`setfacl`,
//! `cp -a` and `rsync -A` through libacl), which on ext4 and tmpfs set the permission bits.
//!
//! The drives are mounted without FUSE's POSIX ACL support, so the kernel hands the
//! attribute to the drive like any other and enforces only the mode. The engine gives it the
//! meaning it has on ext4: the owner's entry, the group's (the mask's, when the ACL has named
//! entries) and others' become the mode's permission bits, through the drive's own `chmod`
//! event. An ACL the mode says all of (three entries) is not stored, and one stored before
//! goes, as ext4 does; a longer one is also stored, as any attribute, for `getfacl` (the
//! kernel does not enforce its named entries). The set-group-ID bit is left as it is.
//! Removing either ACL from a file that has none succeeds, as on ext4. An ACL of no entries
//! is that removal: Linux 6.2 and later send it to the drive as one, earlier kernels pass
//! the bare header, which the engine takes the same way.

use fsgate_core::{Error, Result};

/// The attribute's name.
pub(crate) const ACCESS: &str = "system.posix_acl_access";

/// The default ACL's attribute, which new objects in a directory inherit.
const DEFAULT: &str = "system.posix_acl_default";

/// Whether `name` is one of the two POSIX ACL attributes.
pub(crate) fn is_acl(name: &std::ffi::OsStr) -> bool {
    name == ACCESS || name == DEFAULT
}

/// The only version of the attribute's layout (`POSIX_ACL_XATTR_VERSION`).
const VERSION: u32 = 2;

/// Entry tags (`ACL_USER_OBJ` and the rest, acl(5)).
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// Whether `value` is an ACL of no entries (the bare header): a removal of the ACL.
pub(crate) fn is_empty(value: &[u8]) -> bool {
    value == VERSION.to_le_bytes()
}

/// What an access ACL says of the mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AccessAcl {
    /// The permission bits it gives (`rwxrwxrwx`).
    pub(crate) permissions: u32,
    /// Whether the mode says all of it: only the owner's, the group's and others' entries.
    pub(crate) minimal: bool,
}

impl AccessAcl {
    /// Reads the attribute's value: a little-endian version 2, then 8-byte entries (tag,
    /// permissions, id). `EINVAL` when it is not a valid access ACL (the kernel's answer
    /// on ext4).
    pub(crate) fn parse(value: &[u8]) -> Result<Self> {
        let invalid = |why: &str| {
            Error::from_errno(
                libc::EINVAL,
                format!("{ACCESS}: not a valid access ACL: {why}"),
            )
        };
        let (version, entries) = value
            .split_first_chunk::<4>()
            .ok_or_else(|| invalid("shorter than its header"))?;
        if u32::from_le_bytes(*version) != VERSION {
            return Err(invalid("not version 2"));
        }
        if entries.is_empty() || entries.len() % 8 != 0 {
            return Err(invalid("not a whole number of entries"));
        }
        let (mut user_obj, mut group_obj, mut mask, mut other) = (None, None, None, None);
        let mut named = false;
        for entry in entries.chunks_exact(8) {
            let tag = u16::from_le_bytes([entry[0], entry[1]]);
            let perm = u32::from(u16::from_le_bytes([entry[2], entry[3]]));
            if perm > 0o7 {
                return Err(invalid("permissions beyond rwx"));
            }
            let slot = match tag {
                USER_OBJ => &mut user_obj,
                GROUP_OBJ => &mut group_obj,
                MASK => &mut mask,
                OTHER => &mut other,
                USER | GROUP => {
                    named = true;
                    continue;
                }
                _ => return Err(invalid("unknown entry tag")),
            };
            if slot.replace(perm).is_some() {
                return Err(invalid("a repeated entry"));
            }
        }
        let (Some(user_obj), Some(group_obj), Some(other)) = (user_obj, group_obj, other) else {
            return Err(invalid("the owner's, group's or others' entry is missing"));
        };
        if named && mask.is_none() {
            return Err(invalid("named entries without a mask"));
        }
        Ok(Self {
            permissions: user_obj << 6 | mask.unwrap_or(group_obj) << 3 | other,
            minimal: !named && mask.is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16)]) -> Vec<u8> {
        let mut v = VERSION.to_le_bytes().to_vec();
        for &(tag, perm) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        v
    }

    #[test]
    fn a_minimal_acl_is_the_mode() {
        // What `cp -a` sets for a 0644 file (seen with strace).
        let value = b"\x02\0\0\0\x01\0\x06\0\xff\xff\xff\xff\x04\0\x04\0\xff\xff\xff\xff\x20\0\x04\0\xff\xff\xff\xff";
        assert_eq!(
            AccessAcl::parse(value).unwrap(),
            AccessAcl {
                permissions: 0o644,
                minimal: true
            }
        );
    }

    #[test]
    fn with_named_entries_the_mask_gives_the_group_bits() {
        let value = acl(&[
            (USER_OBJ, 7),
            (USER, 6),
            (GROUP_OBJ, 5),
            (MASK, 4),
            (OTHER, 0),
        ]);
        assert_eq!(
            AccessAcl::parse(&value).unwrap(),
            AccessAcl {
                permissions: 0o740,
                minimal: false
            }
        );
    }

    #[test]
    fn the_bare_header_is_an_acl_of_no_entries() {
        assert!(is_empty(&acl(&[])));
        assert!(!is_empty(&acl(&[
            (USER_OBJ, 7),
            (GROUP_OBJ, 5),
            (OTHER, 0)
        ])));
    }

    #[test]
    fn malformed_acls_are_einval() {
        for bad in [
            Vec::new(),
            b"\x01\0\0\0".to_vec(),
            acl(&[]),
            acl(&[(USER_OBJ, 7), (GROUP_OBJ, 5)]),
            acl(&[(USER_OBJ, 7), (USER_OBJ, 7), (GROUP_OBJ, 5), (OTHER, 0)]),
            acl(&[(USER_OBJ, 7), (USER, 6), (GROUP_OBJ, 5), (OTHER, 0)]),
            acl(&[(USER_OBJ, 8), (GROUP_OBJ, 5), (OTHER, 0)]),
            acl(&[(USER_OBJ, 7), (0x40, 5), (GROUP_OBJ, 5), (OTHER, 0)]),
            acl(&[(USER_OBJ, 7), (GROUP_OBJ, 5), (OTHER, 0)])[..27].to_vec(),
        ] {
            assert_eq!(
                AccessAcl::parse(&bad).unwrap_err().errno(),
                libc::EINVAL,
                "{bad:?}"
            );
        }
    }
}
