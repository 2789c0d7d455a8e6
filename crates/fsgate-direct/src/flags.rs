//! The reference's numeric arguments: desired access, creation dispositions, flags and
//! attributes, driver status. Values are the reference's (Win32) values, so code ported from
//! it keeps its constants; each constant says what it means on Linux.

/// Read access (`O_RDONLY`, or the read half of `O_RDWR`).
pub const GENERIC_READ: u32 = 0x8000_0000;
/// Write access (`O_RDWR`; fsgate never opens write-only, a volume needs reads for
/// read-modify-write).
pub const GENERIC_WRITE: u32 = 0x4000_0000;
/// Execute access: on Linux the same as read access for an open.
pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
/// All access: read and write.
pub const GENERIC_ALL: u32 = 0x1000_0000;
/// Read the file's data (the specific right behind `GENERIC_READ`).
pub const FILE_READ_DATA: u32 = 0x0001;
/// Write the file's data (the specific right behind `GENERIC_WRITE`).
pub const FILE_WRITE_DATA: u32 = 0x0002;
/// Append to the file: `O_RDWR | O_APPEND` when it is the only write right asked for.
pub const FILE_APPEND_DATA: u32 = 0x0004;

/// Create a new file; fail with `ERROR_FILE_EXISTS` (80) if it exists (`O_CREAT | O_EXCL`).
pub const CREATE_NEW: u32 = 1;
/// Create a new file or truncate an existing one (`O_CREAT | O_TRUNC`).
pub const CREATE_ALWAYS: u32 = 2;
/// Open an existing file; fail with `ERROR_FILE_NOT_FOUND` (2) otherwise (no `O_CREAT`).
pub const OPEN_EXISTING: u32 = 3;
/// Open the file, creating it if missing (`O_CREAT`).
pub const OPEN_ALWAYS: u32 = 4;
/// Open an existing file and truncate it to zero bytes (`O_TRUNC`); needs write access.
pub const TRUNCATE_EXISTING: u32 = 5;

/// A file created by `create_file` gets mode 0444 instead of 0644.
pub const FILE_ATTRIBUTE_READONLY: u32 = 0x0000_0001;
/// Accepted and ignored: Linux has no hidden attribute (a leading dot is a naming convention).
pub const FILE_ATTRIBUTE_HIDDEN: u32 = 0x0000_0002;
/// Accepted and ignored: Linux has no system attribute.
pub const FILE_ATTRIBUTE_SYSTEM: u32 = 0x0000_0004;
/// Accepted and ignored: Linux has no archive attribute.
pub const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x0000_0020;
/// No attributes: the ordinary 0644 mode for a created file.
pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x0000_0080;
/// Accepted and ignored: whether a file is temporary is up to the filesystem and the caller.
pub const FILE_ATTRIBUTE_TEMPORARY: u32 = 0x0000_0100;
/// Opening a directory is allowed (`O_DIRECTORY` is then accepted; without this flag a
/// directory is refused with `ERROR_ACCESS_DENIED` (5), as on the reference's platform).
pub const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
/// Do not follow a final symbolic link (`O_NOFOLLOW`): the link itself is the object.
pub const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
/// Accepted and ignored: every Linux descriptor can be used for asynchronous I/O.
pub const FILE_FLAG_OVERLAPPED: u32 = 0x4000_0000;
/// Bypass the page cache (`O_DIRECT`): transfers must then be aligned, as on the reference's
/// platform.
pub const FILE_FLAG_NO_BUFFERING: u32 = 0x2000_0000;
/// Writes reach the device before they return (`O_DSYNC`).
pub const FILE_FLAG_WRITE_THROUGH: u32 = 0x8000_0000;
/// Random access hint (`posix_fadvise(POSIX_FADV_RANDOM)`).
pub const FILE_FLAG_RANDOM_ACCESS: u32 = 0x1000_0000;
/// Sequential access hint (`posix_fadvise(POSIX_FADV_SEQUENTIAL)`).
pub const FILE_FLAG_SEQUENTIAL_SCAN: u32 = 0x0800_0000;
/// Accepted and ignored: Linux names are always case-sensitive.
pub const FILE_FLAG_POSIX_SEMANTICS: u32 = 0x0100_0000;

/// Every bit `create_file` understands; any other bit is refused with
/// `ERROR_INVALID_PARAMETER` (87) naming it.
pub const KNOWN_FLAGS_AND_ATTRIBUTES: u32 = FILE_ATTRIBUTE_READONLY
    | FILE_ATTRIBUTE_HIDDEN
    | FILE_ATTRIBUTE_SYSTEM
    | FILE_ATTRIBUTE_ARCHIVE
    | FILE_ATTRIBUTE_NORMAL
    | FILE_ATTRIBUTE_TEMPORARY
    | FILE_FLAG_BACKUP_SEMANTICS
    | FILE_FLAG_OPEN_REPARSE_POINT
    | FILE_FLAG_OVERLAPPED
    | FILE_FLAG_NO_BUFFERING
    | FILE_FLAG_WRITE_THROUGH
    | FILE_FLAG_RANDOM_ACCESS
    | FILE_FLAG_SEQUENTIAL_SCAN
    | FILE_FLAG_POSIX_SEMANTICS;

/// `get_driver_status`: fsgate is not installed for the product GUID.
pub const MODULE_STATUS_NOT_PRESENT: u32 = 0;
/// `get_driver_status`: installed, but its service is stopped.
pub const MODULE_STATUS_STOPPED: u32 = 1;
/// `get_driver_status`: installed and running.
pub const MODULE_STATUS_RUNNING: u32 = 4;

/// Whether `desired_access` asks for any write right.
pub fn wants_write(desired_access: u32) -> bool {
    desired_access & (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA | FILE_APPEND_DATA) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_rights_are_recognised() {
        assert!(!wants_write(GENERIC_READ));
        assert!(!wants_write(FILE_READ_DATA | GENERIC_EXECUTE));
        assert!(wants_write(GENERIC_WRITE));
        assert!(wants_write(GENERIC_READ | GENERIC_WRITE));
        assert!(wants_write(GENERIC_ALL));
        assert!(wants_write(FILE_APPEND_DATA));
    }
}
