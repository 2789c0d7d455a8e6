//! Volumes: block devices and disk image files opened for sector access.
//!
//! A [`VolumeHandle`] owns the descriptor and closes it on drop. Block devices are opened with
//! `O_DIRECT | O_EXCL`: `O_EXCL` on a block device is Linux's volume lock — it fails with
//! `EBUSY` while the device (or one of its partitions) is mounted, claimed by device-mapper or
//! md, or opened with `O_EXCL` by someone else. Image files take an exclusive `flock` instead
//! and use `O_DIRECT` when their filesystem supports it (tmpfs does not; the page cache is then
//! used).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use fsgate_core::{code, Error, Result};

use crate::align::AlignedBuf;
use crate::blkdev::{self, Geometry};
use crate::error::{on_error, privilege_error, ErrorHook};
use crate::flags::wants_write;
use crate::mounts::{self, Unmounted};

/// The logical sector size reported for image files: 512 bytes, what partition tables and
/// disk image tools assume for an image that carries no geometry.
pub const IMAGE_SECTOR_SIZE: u32 = 512;

/// Largest bounce buffer used for an unaligned transfer (1 MiB).
const BOUNCE_CHUNK: usize = 1 << 20;

/// What a volume is backed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeKind {
    /// A block device (`/dev/sdX`, `/dev/loopN`, `/dev/mapper/…`).
    BlockDevice {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A regular file holding a disk image.
    ImageFile,
}

/// An open volume: a block device or an image file, locked against other exclusive users.
pub struct VolumeHandle {
    file: File,
    path: PathBuf,
    kind: VolumeKind,
    geometry: Geometry,
    writable: bool,
    direct: bool,
    hook: Option<ErrorHook>,
}

impl VolumeHandle {
    /// Opens `volume_name` for sector access; see `DirectAccess::open_volume`.
    pub(crate) fn open(
        volume_name: &str,
        desired_access: u32,
        force_unmount: bool,
        hook: Option<ErrorHook>,
    ) -> Result<Self> {
        if volume_name.is_empty() {
            return Err(Error::invalid_argument("volume_name", "is empty"));
        }
        let path = PathBuf::from(volume_name);
        let meta = std::fs::metadata(&path)
            .map_err(|e| open_error(&path, e, "look up the volume's path"))?;
        let writable = wants_write(desired_access);
        let file_type = meta.file_type();
        if file_type.is_block_device() {
            let rdev = meta.rdev();
            let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
            let file = open_block_device(&path, writable, force_unmount, major, minor)?;
            let geometry = blkdev::geometry(&file)
                .map_err(|e| Error::io(format!("reading the geometry of {}", path.display()), e))?;
            Ok(Self {
                file,
                path,
                kind: VolumeKind::BlockDevice { major, minor },
                geometry,
                writable,
                direct: true,
                hook,
            })
        } else if file_type.is_file() {
            let (file, direct) = open_image(&path, writable)?;
            let geometry = Geometry {
                logical_sector_size: IMAGE_SECTOR_SIZE,
                physical_sector_size: (meta.blksize() as u32).max(IMAGE_SECTOR_SIZE),
                size_bytes: meta.len(),
            };
            Ok(Self {
                file,
                path,
                kind: VolumeKind::ImageFile,
                geometry,
                writable,
                direct,
                hook,
            })
        } else {
            Err(Error::invalid_argument(
                "volume_name",
                format!("{volume_name} is neither a block device nor a regular image file"),
            ))
        }
    }

    /// The path the volume was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a block device or an image file.
    pub fn kind(&self) -> VolumeKind {
        self.kind
    }

    /// Whether the volume was opened for writing.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The logical sector size: the device's (512, or 4096 on 4Kn disks and loop devices made
    /// with `--sector-size 4096`); [`IMAGE_SECTOR_SIZE`] for image files.
    pub fn sector_size(&self) -> u32 {
        self.geometry.logical_sector_size
    }

    /// The physical sector size: the device's `BLKPBSZGET`; for image files the block size of
    /// the filesystem holding the image (at least 512).
    pub fn physical_sector_size(&self) -> u32 {
        self.geometry.physical_sector_size
    }

    /// Whole sectors on the volume (a trailing partial sector of an image file is not counted
    /// and cannot be addressed by sector).
    pub fn sector_count(&self) -> u64 {
        self.geometry.size_bytes / u64::from(self.sector_size())
    }

    /// The size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.geometry.size_bytes
    }

    /// The underlying descriptor, for callers that need ioctls fsgate does not wrap.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads `sector_count` sectors from `starting_sector` into the start of `buffer`, which
    /// must hold at least `sector_count * sector_size` bytes. Any slice works; an aligned one
    /// (see [`AlignedBuf`]) is read into directly, others go through an aligned bounce buffer.
    pub fn read_sectors(
        &self,
        starting_sector: u64,
        sector_count: u64,
        buffer: &mut [u8],
    ) -> Result<()> {
        let (offset, len) = self.check_span(starting_sector, sector_count, buffer.len())?;
        self.read_aligned(offset, &mut buffer[..len])
    }

    /// Writes `sector_count` sectors from the start of `buffer` at `starting_sector`;
    /// `ERROR_ACCESS_DENIED` (5) when the volume was opened read-only.
    pub fn write_sectors(
        &self,
        starting_sector: u64,
        sector_count: u64,
        buffer: &[u8],
    ) -> Result<()> {
        self.check_writable()?;
        let (offset, len) = self.check_span(starting_sector, sector_count, buffer.len())?;
        self.write_aligned(offset, &buffer[..len])
    }

    /// Reads `buffer.len()` bytes at any byte `offset` (sector alignment is handled inside);
    /// returns the bytes read, fewer only at the end of the volume.
    pub fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<usize> {
        let size = self.geometry.size_bytes;
        if offset >= size || buffer.is_empty() {
            return Ok(0);
        }
        let len = (size - offset).min(buffer.len() as u64) as usize;
        let buffer = &mut buffer[..len];
        let ss = u64::from(self.sector_size());
        if offset % ss == 0 && len as u64 % ss == 0 {
            self.read_aligned(offset, buffer)?;
            return Ok(len);
        }
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let start = pos - pos % ss;
            let end = (pos + (len - done) as u64).div_ceil(ss) * ss;
            let span = (end - start).min(BOUNCE_CHUNK as u64);
            let mut bounce = AlignedBuf::zeroed(span as usize)?;
            self.read_span(start, &mut bounce)?;
            let skip = (pos - start) as usize;
            let n = (span as usize - skip).min(len - done);
            buffer[done..done + n].copy_from_slice(&bounce[skip..skip + n]);
            done += n;
        }
        Ok(len)
    }

    /// Writes `buffer` at any byte `offset`, reading and rewriting the partial sectors at
    /// either end; returns the bytes written, fewer only at the end of the volume (a volume
    /// never grows).
    pub fn write_at(&self, offset: u64, buffer: &[u8]) -> Result<usize> {
        self.check_writable()?;
        let size = self.geometry.size_bytes;
        if buffer.is_empty() {
            return Ok(0);
        }
        if offset >= size {
            return Err(Error::from_errno(
                libc::ENOSPC,
                format!(
                    "writing at byte {offset} of {}: the volume ends at byte {size}",
                    self.path.display()
                ),
            ));
        }
        let len = (size - offset).min(buffer.len() as u64) as usize;
        let buffer = &buffer[..len];
        let ss = u64::from(self.sector_size());
        if offset % ss == 0 && len as u64 % ss == 0 {
            self.write_aligned(offset, buffer)?;
            return Ok(len);
        }
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let start = pos - pos % ss;
            let end =
                ((pos + (len - done) as u64).div_ceil(ss) * ss).min(start + BOUNCE_CHUNK as u64);
            let span = (end - start) as usize;
            let mut bounce = AlignedBuf::zeroed(span)?;
            let skip = (pos - start) as usize;
            let n = (span - skip).min(len - done);
            let ss = ss as usize;
            if skip != 0 {
                self.read_span(start, &mut bounce[..ss])?;
            }
            if (skip + n) % ss != 0 {
                let last = span - ss;
                if last != 0 || skip == 0 {
                    self.read_span(start + last as u64, &mut bounce[last..])?;
                }
            }
            bounce[skip..skip + n].copy_from_slice(&buffer[done..done + n]);
            self.write_span(start, &bounce)?;
            done += n;
        }
        Ok(len)
    }

    /// Forces written data to the device (`fdatasync`).
    pub fn flush(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(format!("flushing {}", self.path.display()), e))
    }

    fn check_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::from_code(
                code::ERROR_ACCESS_DENIED,
                format!(
                    "{} was opened read-only (desired_access has no GENERIC_WRITE)",
                    self.path.display()
                ),
            ))
        }
    }

    /// Checks a sector span against the volume and the buffer; returns its byte offset and
    /// length.
    fn check_span(
        &self,
        starting_sector: u64,
        sector_count: u64,
        buffer_len: usize,
    ) -> Result<(u64, usize)> {
        let count = self.sector_count();
        let end = starting_sector.checked_add(sector_count);
        if end.is_none_or(|end| end > count) {
            return Err(Error::invalid_argument(
                "starting_sector",
                format!(
                    "sectors {starting_sector}..{starting_sector}+{sector_count} go beyond the end of {} ({count} sectors)",
                    self.path.display()
                ),
            ));
        }
        let ss = u64::from(self.sector_size());
        let len = sector_count * ss;
        if (buffer_len as u64) < len {
            return Err(Error::from_code(
                code::ERROR_INSUFFICIENT_BUFFER,
                format!(
                    "invalid buffer: it holds {buffer_len} bytes, {sector_count} sectors of {ss} bytes need {len}"
                ),
            ));
        }
        Ok((starting_sector * ss, len as usize))
    }

    /// Reads a sector-aligned span into any buffer, bouncing when the buffer is misaligned.
    fn read_aligned(&self, offset: u64, buffer: &mut [u8]) -> Result<()> {
        if !self.direct || AlignedBuf::is_aligned(buffer, self.sector_size() as usize) {
            return self.read_span(offset, buffer);
        }
        let mut bounce = AlignedBuf::zeroed(buffer.len().min(BOUNCE_CHUNK))?;
        for (i, chunk) in buffer.chunks_mut(BOUNCE_CHUNK).enumerate() {
            let staged = &mut bounce[..chunk.len()];
            self.read_span(offset + (i * BOUNCE_CHUNK) as u64, staged)?;
            chunk.copy_from_slice(staged);
        }
        Ok(())
    }

    /// Writes a sector-aligned span from any buffer, bouncing when the buffer is misaligned.
    fn write_aligned(&self, offset: u64, buffer: &[u8]) -> Result<()> {
        if !self.direct || AlignedBuf::is_aligned(buffer, self.sector_size() as usize) {
            return self.write_span(offset, buffer);
        }
        let mut bounce = AlignedBuf::zeroed(buffer.len().min(BOUNCE_CHUNK))?;
        for (i, chunk) in buffer.chunks(BOUNCE_CHUNK).enumerate() {
            let staged = &mut bounce[..chunk.len()];
            staged.copy_from_slice(chunk);
            self.write_span(offset + (i * BOUNCE_CHUNK) as u64, staged)?;
        }
        Ok(())
    }

    fn read_span(&self, offset: u64, buffer: &mut [u8]) -> Result<()> {
        blkdev::read_full_at(&self.file, buffer, offset).map_err(|e| {
            Error::io(
                format!(
                    "reading {} bytes at byte {offset} of {}",
                    buffer.len(),
                    self.path.display()
                ),
                e,
            )
        })
    }

    fn write_span(&self, offset: u64, buffer: &[u8]) -> Result<()> {
        blkdev::write_full_at(&self.file, buffer, offset).map_err(|e| {
            Error::io(
                format!(
                    "writing {} bytes at byte {offset} of {}",
                    buffer.len(),
                    self.path.display()
                ),
                e,
            )
        })
    }
}

impl Drop for VolumeHandle {
    /// A writable volume is flushed (`fdatasync`) before it closes; a failure there cannot be
    /// returned, so it fires `on_error`.
    fn drop(&mut self) {
        if self.writable {
            if let Err(e) = self.flush() {
                on_error(self.hook.as_ref(), &e);
            }
        }
    }
}

impl std::fmt::Debug for VolumeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeHandle")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("geometry", &self.geometry)
            .field("writable", &self.writable)
            .finish()
    }
}

fn open_error(path: &Path, err: io::Error, what: &str) -> Error {
    match err.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => privilege_error(
            err,
            format!("opening {}: permission denied; to {what} the process needs root (CAP_DAC_OVERRIDE for the device node, CAP_SYS_ADMIN to unmount)", path.display()),
        ),
        _ => Error::io(format!("opening {}", path.display()), err),
    }
}

fn open_block_device(
    path: &Path,
    writable: bool,
    force_unmount: bool,
    major: u32,
    minor: u32,
) -> Result<File> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(libc::O_DIRECT | libc::O_EXCL)
            .open(path)
    };
    let err = match open() {
        Ok(file) => return Ok(file),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => e,
        Err(e) => return Err(open_error(path, e, "open the device")),
    };
    let points = mounts::mount_points(major, minor)
        .map_err(|e| Error::io("reading /proc/thread-self/mountinfo", e))?;
    if !force_unmount || points.is_empty() {
        return Err(busy_error(path, &points, major, minor, force_unmount, err));
    }
    let mut lazy = Vec::new();
    for point in points.iter().rev() {
        match mounts::unmount(point) {
            Ok(Unmounted::Cleanly) => tracing::info!(mount_point = %point.display(), "unmounted"),
            Ok(Unmounted::Lazily) => lazy.push(point.display().to_string()),
            Err(e) => {
                return Err(open_error(path, e, "unmount it")
                    .context(format!("force_unmount: unmounting {}", point.display())))
            }
        }
    }
    open().map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) && !lazy.is_empty() {
            Error::from_errno(
                libc::EBUSY,
                format!(
                    "opening {}: still in use: {} had open files and was detached lazily; the device is released when they are closed",
                    path.display(),
                    lazy.join(", ")
                ),
            )
        } else if e.raw_os_error() == Some(libc::EBUSY) {
            busy_error(path, &[], major, minor, true, e)
        } else {
            open_error(path, e, "open the device")
        }
    })
}

fn busy_error(
    path: &Path,
    points: &[PathBuf],
    major: u32,
    minor: u32,
    forced: bool,
    err: io::Error,
) -> Error {
    let holders = mounts::holders(major, minor);
    let reason = if !points.is_empty() {
        let list: Vec<_> = points.iter().map(|p| p.display().to_string()).collect();
        format!(
            "in use: mounted at {} (pass force_unmount to unmount it first)",
            list.join(", ")
        )
    } else if !holders.is_empty() {
        format!("in use: held by {}", holders.join(", "))
    } else if forced {
        "in use: opened exclusively by another process or mounted in another mount namespace (nothing to unmount here)".to_string()
    } else {
        "in use: opened exclusively by another process or mounted in another mount namespace"
            .to_string()
    };
    Error::from_errno(
        err.raw_os_error().unwrap_or(libc::EBUSY),
        format!("opening {}: {reason}", path.display()),
    )
}

fn open_image(path: &Path, writable: bool) -> Result<(File, bool)> {
    let open = |direct: bool| {
        OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(path)
    };
    let (file, direct) = match open(true) {
        Ok(f) => (f, true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (
            open(false).map_err(|e| open_error(path, e, "open the image"))?,
            false,
        ),
        Err(e) => return Err(open_error(path, e, "open the image")),
    };
    use rustix::fs::{flock, FlockOperation};
    flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|e| {
        if e == rustix::io::Errno::WOULDBLOCK {
            Error::from_errno(
                libc::EBUSY,
                format!(
                    "opening {}: in use: another process holds its lock",
                    path.display()
                ),
            )
        } else {
            Error::io(format!("locking {}", path.display()), e.into())
        }
    })?;
    Ok((file, direct))
}

/// What `fsgate disk info` shows: geometry, mounts and model, read without taking the lock
/// (so a mounted device can be described).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Whole sectors.
    pub sector_count: u64,
    /// Logical sector size in bytes.
    pub sector_size: u32,
    /// Physical sector size in bytes.
    pub physical_sector_size: u32,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Where the device and its partitions are mounted (empty for image files).
    pub mount_points: Vec<PathBuf>,
    /// The model from sysfs, when the driver reports one.
    pub model: Option<String>,
}

impl VolumeInfo {
    /// Describes `volume_name` (a block device or an image file), opening it read-only without
    /// `O_EXCL`.
    pub(crate) fn query(volume_name: &str) -> Result<Self> {
        let path = Path::new(volume_name);
        let meta = std::fs::metadata(path)
            .map_err(|e| open_error(path, e, "look up the volume's path"))?;
        if meta.file_type().is_block_device() {
            let file = File::open(path).map_err(|e| open_error(path, e, "open the device"))?;
            let g = blkdev::geometry(&file)
                .map_err(|e| Error::io(format!("reading the geometry of {}", path.display()), e))?;
            let (major, minor) = (
                rustix::fs::major(meta.rdev()),
                rustix::fs::minor(meta.rdev()),
            );
            Ok(Self {
                sector_count: g.size_bytes / u64::from(g.logical_sector_size),
                sector_size: g.logical_sector_size,
                physical_sector_size: g.physical_sector_size,
                size_bytes: g.size_bytes,
                mount_points: mounts::mount_points(major, minor)
                    .map_err(|e| Error::io("reading /proc/thread-self/mountinfo", e))?,
                model: mounts::model(major, minor),
            })
        } else if meta.is_file() {
            Ok(Self {
                sector_count: meta.len() / u64::from(IMAGE_SECTOR_SIZE),
                sector_size: IMAGE_SECTOR_SIZE,
                physical_sector_size: (meta.blksize() as u32).max(IMAGE_SECTOR_SIZE),
                size_bytes: meta.len(),
                mount_points: Vec::new(),
                model: None,
            })
        } else {
            Err(Error::invalid_argument(
                "volume_name",
                format!("{volume_name} is neither a block device nor a regular image file"),
            ))
        }
    }
}
