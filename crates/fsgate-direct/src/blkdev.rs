//! Block-device ioctls and the positioned transfers every handle uses.
//!
//! The only `unsafe` here is the `BLKGETSIZE64` ioctl, which rustix has no wrapper for;
//! `BLKSSZGET` and `BLKPBSZGET` go through rustix's safe wrappers.
//!
//! References: `ioctl_blk*` in `include/uapi/linux/fs.h`, pread(2), pwrite(2).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rustix::ioctl::{self, opcode, Getter};

/// `BLKGETSIZE64`: the device size in bytes (`_IOR(0x12, 114, size_t)`).
const BLKGETSIZE64: ioctl::Opcode = opcode::read::<u64>(0x12, 114);

/// A block device's geometry as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Logical sector size (`BLKSSZGET`): the unit of addressing and of `O_DIRECT` alignment.
    pub logical_sector_size: u32,
    /// Physical sector size (`BLKPBSZGET`): the unit the device writes atomically.
    pub physical_sector_size: u32,
    /// Size in bytes (`BLKGETSIZE64`).
    pub size_bytes: u64,
}

/// Reads the geometry of the block device open on `file`.
pub fn geometry(file: &File) -> io::Result<Geometry> {
    let logical_sector_size = rustix::fs::ioctl_blksszget(file)?;
    let physical_sector_size = rustix::fs::ioctl_blkpbszget(file)?;
    // SAFETY: BLKGETSIZE64 writes exactly one u64 into the Getter's output, which matches the
    // opcode's declared size; the descriptor is a valid open block device.
    let size_bytes = unsafe { ioctl::ioctl(file, Getter::<BLKGETSIZE64, u64>::new()) }?;
    Ok(Geometry {
        logical_sector_size,
        physical_sector_size,
        size_bytes,
    })
}

/// Fills `buf` from `offset`, retrying short reads and `EINTR`; `UnexpectedEof` if the file
/// ends first.
pub fn read_full_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the device ended at byte {offset}"),
                ))
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf` at `offset`, retrying short writes and `EINTR`.
pub fn write_full_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write_at(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("the device accepted no bytes at byte {offset}"),
                ))
            }
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
