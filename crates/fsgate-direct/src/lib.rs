//! Direct access to disks, volumes, image files, files and physical memory: the reference's
//! direct access class on Linux, as [`DirectAccess`].
//!
//! ```no_run
//! use fsgate_direct::{flags::GENERIC_READ, AlignedBuf, DirectAccess};
//!
//! let direct = DirectAccess::new();
//! direct.initialize("{1FAD0EF2-9A03-4B87-B4BC-645B7035ED90}")?;
//! let volume = direct.open_volume("/dev/loop0", GENERIC_READ, false)?;
//! let mut buf = AlignedBuf::zeroed(8 * direct.get_sector_size(&volume)? as usize)?;
//! direct.read_sectors(&volume, 0, 8, &mut buf)?;
//! # Ok::<(), fsgate_core::Error>(())
//! ```
//!
//! # Linux mapping
//!
//! | reference | Linux |
//! |---|---|
//! | volume handle, `CloseHandle` | [`VolumeHandle`], closed on drop |
//! | volume lock | `O_EXCL` on the block device (`EBUSY` while mounted or claimed); `flock` on image files |
//! | `ForceUnmount` | `umount2` of the device's and its partitions' mounts in the caller's mount namespace, `MNT_DETACH` when busy |
//! | sector size, sector count | `BLKSSZGET`, `BLKPBSZGET`, `BLKGETSIZE64`; image files: 512-byte sectors |
//! | unbuffered sector I/O | `O_DIRECT` with 4096-aligned bounce buffers ([`AlignedBuf`]) when the caller's slice is not aligned |
//! | `create_file` past access restrictions | `O_NOATIME`, open by handle with `CAP_DAC_READ_SEARCH` |
//! | `delete_file` closing handles | not possible on Linux: the holders are reported instead |
//! | physical memory | `/proc/kcore` direct-map segments, else `/dev/mem` |
//! | `shutdown_system` | [`fsgate_core::shutdown`]: systemd's `shutdown`, else `reboot(2)` |
//! | install, driver status and version | [`fsgate_registry::Installation`] (status, version, `initialize`); `install` and `uninstall` with the `installer` feature (`fsgate_install::Installer`) |
//! | `CBFSDirectStream` | [`DirectStream`] (`Read`, `Write`, `Seek`) |
//!
//! # Deviations
//!
//! - Methods return owned handles and streams instead of integers; errors are
//!   [`fsgate_core::Error`] values (errno + the reference's code) instead of
//!   `INVALID_HANDLE_VALUE`.
//! - Permission errors on opens are `ERROR_PRIVILEGE_NOT_HELD` (1314) with the capability
//!   named, for root too (a user namespace or an LSM can refuse root).
//! - `get_physical_sector_size` is an addition: Linux reports both sizes.
//! - `on_error` fires only for flushes that fail when a writable volume is dropped, since the
//!   class fires no other events.

mod access;
pub mod align;
mod blkdev;
mod error;
mod fhandle;
mod file;
pub mod flags;
pub mod memory;
mod mounts;
mod stream;
mod volume;

pub use access::DirectAccess;
pub use align::AlignedBuf;
pub use error::ErrorEventParams;
pub use file::FileHolder;
pub use memory::{MemoryHandle, MemoryRange, MemorySource};
pub use stream::DirectStream;
pub use volume::{VolumeHandle, VolumeInfo, VolumeKind, IMAGE_SECTOR_SIZE};
