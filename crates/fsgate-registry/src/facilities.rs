//! The kernel facilities fsgate stands on, probed on the running kernel.
//!
//! | facility | probe |
//! |---|---|
//! | FUSE | `/dev/fuse` is a character device and `/proc/filesystems` lists `fuse` |
//! | fanotify with permission events | `fanotify_init(FAN_CLASS_CONTENT)` succeeds |
//! | process connector | a `NETLINK_CONNECTOR` socket binds to the `CN_IDX_PROC` group |
//! | BPF LSM | `/sys/kernel/security/lsm` lists `bpf` |
//!
//! Probing creates and closes a descriptor; it changes nothing on the system, so it also runs
//! when installing under an alternative root (it then describes the kernel the installer runs
//! on, not the image's future kernel).

use std::fmt;
use std::os::fd::{FromRawFd, OwnedFd};

use serde::Serialize;

/// One kernel facility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Facility {
    /// FUSE: virtual drives and overlays.
    Fuse,
    /// fanotify permission events: file and process filters.
    FanotifyPermissions,
    /// The netlink process connector: process notifications.
    ProcConnector,
    /// BPF LSM: later protection rules.
    BpfLsm,
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Facility::Fuse => "FUSE",
            Facility::FanotifyPermissions => "fanotify permission events",
            Facility::ProcConnector => "netlink process connector",
            Facility::BpfLsm => "BPF LSM",
        })
    }
}

/// The probe result of one facility.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FacilityStatus {
    /// Which facility.
    pub facility: Facility,
    /// Whether it is usable now.
    pub available: bool,
    /// Why not (empty when available).
    pub detail: String,
}

/// Probes every facility.
pub fn check_all() -> Vec<FacilityStatus> {
    vec![
        status(Facility::Fuse, fuse()),
        status(Facility::FanotifyPermissions, fanotify_permissions()),
        status(Facility::ProcConnector, proc_connector()),
        status(Facility::BpfLsm, bpf_lsm()),
    ]
}

fn status(facility: Facility, probe: Result<(), String>) -> FacilityStatus {
    FacilityStatus {
        facility,
        available: probe.is_ok(),
        detail: probe.err().unwrap_or_default(),
    }
}

/// Whether FUSE is usable now: the device exists and the kernel knows the filesystem type.
pub fn fuse() -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let dev = std::fs::metadata("/dev/fuse").map_err(|e| format!("/dev/fuse is missing ({e})"))?;
    if !dev.file_type().is_char_device() {
        return Err("/dev/fuse is not a character device".into());
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems")
        .map_err(|e| format!("cannot read /proc/filesystems ({e})"))?;
    if filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("fuse"))
    {
        Ok(())
    } else {
        Err("the fuse module is not loaded (/proc/filesystems does not list fuse)".into())
    }
}

fn fanotify_permissions() -> Result<(), String> {
    // SAFETY: fanotify_init takes two integer flag sets and returns a new descriptor or -1;
    // it touches no memory of ours.
    let fd = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC,
            (libc::O_RDONLY | libc::O_LARGEFILE) as libc::c_uint,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("fanotify_init(FAN_CLASS_CONTENT) failed ({e})"));
    }
    // SAFETY: fd was just returned by fanotify_init and is owned by nobody else.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

fn proc_connector() -> Result<(), String> {
    const NETLINK_CONNECTOR: libc::c_int = 11;
    const CN_IDX_PROC: u32 = 1;
    // SAFETY: socket takes integers and returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_CONNECTOR,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("NETLINK_CONNECTOR socket failed ({e})"));
    }
    // SAFETY: fd was just returned by socket and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = CN_IDX_PROC;
    // SAFETY: addr is a valid sockaddr_nl that outlives the call, and the length passed is
    // its size; fd is an open socket.
    let rc = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("binding to the proc connector group failed ({e})"));
    }
    Ok(())
}

fn bpf_lsm() -> Result<(), String> {
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").map_err(|e| {
        format!("cannot read /sys/kernel/security/lsm ({e}); is securityfs mounted?")
    })?;
    if lsm.trim().split(',').any(|m| m == "bpf") {
        Ok(())
    } else {
        Err(format!(
            "the active LSMs are {:?}; add bpf to the lsm= kernel parameter",
            lsm.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_facility_is_reported_once_with_a_reason_when_missing() {
        let all = check_all();
        assert_eq!(all.len(), 4);
        for s in &all {
            assert_eq!(s.available, s.detail.is_empty(), "{s:?}");
        }
    }

    #[test]
    fn fuse_matches_the_device_node() {
        if std::path::Path::new("/dev/fuse").exists()
            && std::fs::read_to_string("/proc/filesystems")
                .unwrap()
                .contains("\tfuse\n")
        {
            assert_eq!(fuse(), Ok(()));
        } else {
            assert!(fuse().is_err());
        }
    }
}
