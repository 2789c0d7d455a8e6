//! Who uses a block device: its mounts (from `/proc/thread-self/mountinfo`, matched by
//! `major:minor`, including the device's partitions) and its holders (device-mapper, md, …
//! from sysfs), and unmounting for `force_unmount`.
//!
//! `thread-self` rather than `self`: a thread that entered its own mount namespace
//! (`unshare(CLONE_NEWNS)`) sees its own mounts, which `/proc/self` (the thread-group leader's
//! view) would miss.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One mount of a block device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The device's `major:minor`.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Where it is mounted.
    pub mount_point: PathBuf,
}

/// Parses mountinfo text (proc(5)) into its mounts, in the kernel's order (parents first).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let dev = fields.nth(2)?;
            let mount_point = fields.nth(1)?;
            let (major, minor) = dev.split_once(':')?;
            Some(Mount {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                mount_point: PathBuf::from(unescape(mount_point)),
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
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

/// `major:minor` of the device and of each of its partitions (from
/// `/sys/dev/block/M:m/*/partition`).
pub fn device_and_partitions(major: u32, minor: u32) -> Vec<(u32, u32)> {
    let mut devices = vec![(major, minor)];
    let Ok(entries) = fs::read_dir(format!("/sys/dev/block/{major}:{minor}")) else {
        return devices;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.join("partition").exists() {
            continue;
        }
        if let Some(dev) = fs::read_to_string(dir.join("dev"))
            .ok()
            .and_then(|s| parse_dev(s.trim()))
        {
            devices.push(dev);
        }
    }
    devices
}

fn parse_dev(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The mount points of the device `major:minor` and of its partitions, as this thread sees
/// them, in mount order.
pub fn mount_points(major: u32, minor: u32) -> io::Result<Vec<PathBuf>> {
    let devices = device_and_partitions(major, minor);
    let text = fs::read_to_string("/proc/thread-self/mountinfo")?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .filter(|m| devices.contains(&(m.major, m.minor)))
        .map(|m| m.mount_point)
        .collect())
}

/// Names of the kernel devices holding `major:minor` (`/sys/dev/block/M:m/holders`), such as
/// `dm-0` for a device-mapper target built on it.
pub fn holders(major: u32, minor: u32) -> Vec<String> {
    fs::read_dir(format!("/sys/dev/block/{major}:{minor}/holders"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The device model from sysfs (`/sys/dev/block/M:m/device/model`), when the driver reports
/// one; for a partition, the model of its disk.
pub fn model(major: u32, minor: u32) -> Option<String> {
    let base = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    [base.join("device/model"), base.join("../device/model")]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// How a mount point went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmounted {
    /// An ordinary `umount2(path, 0)`: the filesystem is gone.
    Cleanly,
    /// Busy, so detached lazily (`MNT_DETACH`): the name is gone at once, the filesystem (and
    /// its claim on the device) lives until its last open file is closed.
    Lazily,
}

/// Unmounts `mount_point`, lazily when it is busy.
pub fn unmount(mount_point: &Path) -> io::Result<Unmounted> {
    use rustix::mount::{unmount, UnmountFlags};
    match unmount(mount_point, UnmountFlags::empty()) {
        Ok(()) => Ok(Unmounted::Cleanly),
        Err(rustix::io::Errno::BUSY) => {
            unmount(mount_point, UnmountFlags::DETACH)?;
            Ok(Unmounted::Lazily)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 0:32 / /tmp rw shared:2 - tmpfs tmpfs rw
60 35 7:3 / /tmp/my\\040disk rw,relatime - ext4 /dev/loop3 rw
61 35 7:3 /sub /tmp/bind rw,relatime - ext4 /dev/loop3 rw
62 35 259:1 / /mnt/p1 rw - ext4 /dev/nvme0n1p1 rw
";

    #[test]
    fn mountinfo_gives_devices_and_unescaped_points() {
        let mounts = parse_mountinfo(SAMPLE);
        assert_eq!(mounts.len(), 5);
        assert_eq!(
            mounts[2],
            Mount {
                major: 7,
                minor: 3,
                mount_point: PathBuf::from("/tmp/my disk")
            }
        );
        let loop3: Vec<_> = mounts
            .iter()
            .filter(|m| (m.major, m.minor) == (7, 3))
            .map(|m| m.mount_point.clone())
            .collect();
        assert_eq!(loop3, [PathBuf::from("/tmp/my disk"), "/tmp/bind".into()]);
    }

    #[test]
    fn unescape_handles_all_escapes_and_plain_backslashes() {
        assert_eq!(unescape(r"a\040b\011c\012d\134e"), "a b\tc\nd\\e");
        assert_eq!(unescape(r"x\9y\"), r"x\9y\");
        assert_eq!(parse_dev("7:12"), Some((7, 12)));
        assert_eq!(parse_dev("7"), None);
    }
}
