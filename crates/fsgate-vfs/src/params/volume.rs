//! The volume's events: mount, unmount, size, label and id.

use super::*;

/// `on_mount`: the drive has been mounted and is about to serve requests.
///
/// Fired by the library, not by a caller's request, so it has no `originator`.
#[derive(Debug)]
pub struct MountParams {
    /// The primary mounting point.
    pub mounting_point: std::path::PathBuf,
}

/// `on_unmount`: the drive is being unmounted; no event fires after this one.
///
/// Fired by the library, not by a caller's request, so it has no `originator`.
#[derive(Debug)]
pub struct UnmountParams {
    /// The primary mounting point.
    pub mounting_point: std::path::PathBuf,
}

/// `on_get_volume_size`: `statfs` / `df`.
#[derive(Debug)]
pub struct GetVolumeSizeParams {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// Output: the volume size in sectors (`f_blocks`). Pre-filled with 0.
    pub total_sectors: u64,
    /// Output: free sectors (`f_bfree` and `f_bavail`). Pre-filled with 0.
    pub available_sectors: u64,
    /// Input: the sector size in bytes, from [`Options::sector_size`](crate::Options).
    pub sector_size: u32,
    /// Output: the number of files (`f_files`). Pre-filled with 0.
    pub total_files: u64,
    /// Output: free file slots (`f_ffree`). Pre-filled with 0.
    pub free_files: u64,
}

/// `on_get_volume_label`: fires once at mount; the label becomes the mount's source name,
/// shown in `/proc/self/mountinfo` and by `df` (Linux has no per-request label query).
///
/// Fired by the library, not by a caller's request, so it has no `originator`.
#[derive(Debug, Default)]
pub struct GetVolumeLabelParams {
    /// Output: the label. Empty: the source name is `fsgate`.
    pub buffer: String,
}

/// `on_get_volume_id`: fires once at mount; [`VirtualDrive::volume_id`](crate::VirtualDrive)
/// reports it (the kernel's `statfs` has no field a FUSE server can fill with it).
///
/// Fired by the library, not by a caller's request, so it has no `originator`.
#[derive(Debug, Default)]
pub struct GetVolumeIdParams {
    /// Output: the volume's serial number.
    pub volume_id: u32,
}
