//! The mount table, from `/proc/thread-self/mountinfo` (proc(5)).
//!
//! Every class that cares which filesystem holds a path — the volume lock of direct access,
//! the volumes a file filter attaches to, the mounts an exec filter marks, the CLI's
//! `unmount` — reads the table through this one parser.
//!
//! `thread-self` rather than `self`: a thread that entered its own mount namespace
//! (`unshare(CLONE_NEWNS)`) sees its own mounts, which `/proc/self` (the thread-group
//! leader's view) would miss.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One line of mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount id (unique while mounted).
    pub mount_id: u64,
    /// The parent mount's id.
    pub parent_id: u64,
    /// Major number of the filesystem's device (`st_dev`).
    pub major: u32,
    /// Minor number of the filesystem's device.
    pub minor: u32,
    /// The directory of the filesystem that forms the mount's root (not `/` for bind mounts).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Filesystem type (`ext4`, `tmpfs`, `fuse.fsgate`, …).
    pub fs_type: String,
    /// The mount source (`/dev/loop3`, `tmpfs`, …).
    pub source: String,
}

/// Parses mountinfo text into its mounts, in the kernel's order (parents first). Lines that
/// do not have the documented shape are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let mut r = right.split(' ');
    let mount_id = l.next()?.parse().ok()?;
    let parent_id = l.next()?.parse().ok()?;
    let (major, minor) = l.next()?.split_once(':')?;
    let root = PathBuf::from(unescape(l.next()?));
    let mount_point = PathBuf::from(unescape(l.next()?));
    Some(MountEntry {
        mount_id,
        parent_id,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root,
        mount_point,
        fs_type: unescape(r.next()?),
        source: unescape(r.next()?),
    })
}

/// The mounts this thread sees now.
pub fn current() -> Result<Vec<MountEntry>> {
    fs::read_to_string("/proc/thread-self/mountinfo")
        .map(|t| parse(&t))
        .map_err(|e| Error::io("reading /proc/thread-self/mountinfo", e))
}

/// The mount holding `path`: the longest mount point that is a prefix of it; the last one
/// mounted wins when several share a mount point (it hides the others).
pub fn holding<'a>(mounts: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.as_os_str().len(), *i))
        .map(|(_, m)| m)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
        30 22 0:40 / /tmp/a\\040b rw - tmpfs fsgate-test rw,size=1024k\n\
        31 22 0:41 /sub /mnt/x rw shared:5 master:2 - fuse.fsgate fsgate-memory rw\n\
        31 30 0:42 / /tmp/a\\040b rw - tmpfs second rw\n\
        garbage line\n";

    #[test]
    fn parses_ids_devices_points_types_and_escapes() {
        let m = parse(INFO);
        assert_eq!(m.len(), 4);
        assert_eq!((m[0].mount_id, m[0].parent_id), (22, 1));
        assert_eq!((m[0].major, m[0].minor), (8, 1));
        assert_eq!(m[1].mount_point, PathBuf::from("/tmp/a b"));
        assert_eq!(m[2].root, PathBuf::from("/sub"));
        assert_eq!(m[2].fs_type, "fuse.fsgate");
        assert_eq!(m[2].source, "fsgate-memory");
    }

    #[test]
    fn holding_prefers_the_longest_and_newest_mount_point() {
        let m = parse(INFO);
        assert_eq!(
            holding(&m, Path::new("/tmp/a b/f")).map(|m| m.source.as_str()),
            Some("second")
        );
        assert_eq!(
            holding(&m, Path::new("/etc/passwd")).map(|m| m.mount_id),
            Some(22)
        );
        assert_eq!(
            holding(&m, Path::new("/tmp/a bc")).map(|m| m.mount_id),
            Some(22)
        );
    }

    #[test]
    fn unescape_handles_all_escapes_and_plain_backslashes() {
        assert_eq!(unescape(r"a\040b\011c\012d\134e"), "a b\tc\nd\\e");
        assert_eq!(unescape(r"a\b\0"), r"a\b\0");
    }

    #[test]
    fn reads_this_threads_table() {
        let m = current().unwrap();
        assert!(m.iter().any(|m| m.mount_point == Path::new("/")));
    }
}
