//! Whether a file is in use by a running process: executed (`/proc/<pid>/exe`) or mapped
//! (`/proc/<pid>/maps`, which also covers shared libraries). Files compare by device and
//! inode, so a path reached through another name still matches.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The pids of processes that execute or map `path`; empty when none or when `path` is gone.
pub fn users_of(path: &Path) -> Vec<u32> {
    let Ok(target) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let (dev, ino) = (target.dev(), target.ino());
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in proc_dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let executes =
            std::fs::metadata(dir.join("exe")).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
        if executes || maps_inode(&dir.join("maps"), dev, ino) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether a `maps` file has a mapping of (`dev`, `ino`). Its device column is
/// `major:minor` in hex.
fn maps_inode(maps: &Path, dev: u64, ino: u64) -> bool {
    let Ok(text) = std::fs::read_to_string(maps) else {
        return false;
    };
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    text.lines().any(|line| {
        let mut cols = line.split_whitespace().skip(3);
        let (Some(d), Some(i)) = (cols.next(), cols.next()) else {
            return false;
        };
        let Some((ma, mi)) = d.split_once(':') else {
            return false;
        };
        i.parse::<u64>() == Ok(ino)
            && u32::from_str_radix(ma, 16) == Ok(major)
            && u32::from_str_radix(mi, 16) == Ok(minor)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_executable_is_in_use_by_this_process() {
        let exe = std::env::current_exe().unwrap();
        assert!(users_of(&exe).contains(&std::process::id()));
    }

    #[test]
    fn an_unused_file_has_no_users() {
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(users_of(f.path()).is_empty());
    }
}
