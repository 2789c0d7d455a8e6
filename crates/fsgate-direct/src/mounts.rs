//! Who uses a block device: its mounts (from `/proc/thread-self/mountinfo`, matched by
//! `major:minor`, including the device's partitions) and its holders (device-mapper, md, …
//! from sysfs), and unmounting for `force_unmount`.
//!
//! The table itself comes from `fsgate_core::mountinfo`, which reads this thread's view
//! (`/proc/thread-self/mountinfo`), so a thread in its own mount namespace sees its mounts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use fsgate_core::mountinfo;

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
    Ok(mountinfo::current()
        .map_err(io::Error::from)?
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

    #[test]
    fn dev_numbers_parse() {
        assert_eq!(parse_dev("7:12"), Some((7, 12)));
        assert_eq!(parse_dev("7"), None);
    }
}
