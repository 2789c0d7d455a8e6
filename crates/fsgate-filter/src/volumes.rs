//! Volumes on Linux are mounts: parsed from `/proc/self/mountinfo`, watched for changes
//! with `poll(POLLPRI)` (the kernel raises it when the mount table changes).

use std::path::{Path, PathBuf};

/// One mount, as the filter attaches to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Mount id (unique while mounted).
    pub mount_id: u64,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Filesystem type (`ext4`, `tmpfs`, …).
    pub fs_type: String,
    /// The mount source (`/dev/loop3`, `tmpfs`, …).
    pub source: String,
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of `/proc/<pid>/mountinfo`.
pub fn parse_mountinfo(text: &str) -> Vec<Volume> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(Volume {
                mount_id: l.first()?.parse().ok()?,
                mount_point: PathBuf::from(unescape(l.get(4)?)),
                fs_type: r.first()?.to_string(),
                source: unescape(r.get(1)?),
            })
        })
        .collect()
}

/// The mounts of this process's namespace now.
pub fn current() -> std::io::Result<Vec<Volume>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// The mount holding `path` (the longest mount point that is a prefix of it; the last one
/// mounted wins when several share a mount point).
pub fn holding<'a>(volumes: &'a [Volume], path: &Path) -> Option<&'a Volume> {
    volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| path.starts_with(&v.mount_point))
        .max_by_key(|(i, v)| (v.mount_point.as_os_str().len(), *i))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
        30 22 0:40 / /tmp/a\\040b rw - tmpfs fsgate-test rw,size=1024k\n\
        31 30 7:3 / /tmp/a\\040b/img rw - ext4 /dev/loop3 rw\n";

    #[test]
    fn parses_ids_points_types_and_escapes() {
        let v = parse_mountinfo(INFO);
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].mount_id, 30);
        assert_eq!(v[1].mount_point, PathBuf::from("/tmp/a b"));
        assert_eq!(v[1].fs_type, "tmpfs");
        assert_eq!(v[2].source, "/dev/loop3");
    }

    #[test]
    fn finds_the_innermost_mount() {
        let v = parse_mountinfo(INFO);
        assert_eq!(
            holding(&v, Path::new("/tmp/a b/img/f")).unwrap().mount_id,
            31
        );
        assert_eq!(holding(&v, Path::new("/tmp/a b/x")).unwrap().mount_id, 30);
        assert_eq!(holding(&v, Path::new("/etc")).unwrap().mount_id, 22);
    }
}
