//! Extended attributes.

use super::*;

/// `on_get_ea`: `getxattr`. Not found: fail with `ERROR_EA_NOT_FOUND` (`ENODATA`).
#[derive(Debug)]
pub struct GetEaParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The attribute's full name (`user.comment`).
    pub name: &'a OsStr,
    /// Output: the value.
    pub value: Vec<u8>,
}

/// `on_set_ea`: `setxattr`.
#[derive(Debug)]
pub struct SetEaParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The attribute's full name.
    pub name: &'a OsStr,
    /// The new value.
    pub value: &'a [u8],
    /// `XATTR_CREATE`: fail with `EEXIST` if the attribute exists.
    pub create_only: bool,
    /// `XATTR_REPLACE`: fail with `ENODATA` if it does not.
    pub replace_only: bool,
}

/// `on_list_eas`: `listxattr`.
#[derive(Debug)]
pub struct ListEasParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// Output: the attribute names. Pre-filled empty.
    pub names: Vec<OsString>,
}

/// `on_remove_ea`: `removexattr`. Not found: fail with `ERROR_EA_NOT_FOUND` (`ENODATA`).
#[derive(Debug)]
pub struct RemoveEaParams<'a> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The attribute's full name.
    pub name: &'a OsStr,
}
