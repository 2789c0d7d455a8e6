//! The data file beside the index: block bytes in fixed-size slots, read and written with
//! `pread`/`pwritev` at `slot × block size`, never through the index's B-tree.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use fsgate_core::{Error, Result};

use crate::slots::Slot;

/// Buffers one `pwritev` takes at most (Linux's `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 512;

/// The vault's data file (see the [crate docs](crate#storage-an-index-in-redb-and-a-data-file-beside-it)).
pub(crate) struct DataFile {
    file: File,
    path: PathBuf,
    slot_size: u64,
    /// Written since the last [`sync`](Self::sync).
    unsynced: AtomicBool,
}

impl DataFile {
    /// The data file of the vault at `vault`: `vault` with `.data` added to its name.
    pub(crate) fn path_of(vault: &Path) -> PathBuf {
        let mut name = vault.as_os_str().to_owned();
        name.push(".data");
        PathBuf::from(name)
    }

    /// Opens (creating) the data file at `path` with slots of `slot_size` bytes.
    pub(crate) fn open(path: PathBuf, slot_size: u64) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(format!("opening vault data file {}", path.display()), e))?;
        Ok(Self {
            file,
            path,
            slot_size,
            unsynced: AtomicBool::new(false),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, what: &str, e: io::Error) -> Error {
        Error::io(format!("{what} vault data file {}", self.path.display()), e)
    }

    fn offset(&self, slot: Slot) -> u64 {
        slot.0 * self.slot_size
    }

    /// Fills `buf` from the slots starting at `first` (consecutive slots are contiguous in the
    /// file). `Ok(false)`: the file ends before `buf` is full (an index naming bytes that are
    /// not there, which the caller reports as corruption).
    pub(crate) fn read(&self, first: Slot, buf: &mut [u8]) -> Result<bool> {
        match self.file.read_exact_at(buf, self.offset(first)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(self.error("reading", e)),
        }
    }

    /// Writes `bufs` into consecutive slots from `first`: every buffer but the last fills its
    /// slot.
    pub(crate) fn write(&self, first: Slot, bufs: &[&[u8]]) -> Result<()> {
        self.unsynced.store(true, Ordering::Release);
        let mut offset = self.offset(first);
        for chunk in bufs.chunks(MAX_IOVECS) {
            let mut iov: Vec<libc::iovec> = chunk
                .iter()
                .map(|b| libc::iovec {
                    iov_base: b.as_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                })
                .collect();
            let mut pending = &mut iov[..];
            while !pending.is_empty() {
                let Ok(off) = libc::off_t::try_from(offset) else {
                    return Err(self.error("writing", io::Error::from_raw_os_error(libc::EFBIG)));
                };
                let count = pending.len() as libc::c_int;
                // SAFETY: every iovec points into a live slice of `bufs` with its length;
                // pwritev only reads them.
                let n =
                    unsafe { libc::pwritev(self.file.as_raw_fd(), pending.as_ptr(), count, off) };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(self.error("writing", e));
                }
                if n == 0 {
                    return Err(self.error("writing", io::ErrorKind::WriteZero.into()));
                }
                let mut n = n as usize;
                offset += n as u64;
                // Skip what was written: whole buffers, then the start of a partial one.
                while let Some(first) = pending.first_mut() {
                    if n < first.iov_len {
                        // SAFETY: `n` is within the buffer.
                        first.iov_base = unsafe { first.iov_base.cast::<u8>().add(n) }.cast();
                        first.iov_len -= n;
                        break;
                    }
                    n -= first.iov_len;
                    pending = &mut pending[1..];
                }
            }
        }
        Ok(())
    }

    /// Makes every write so far durable (fdatasync), when there was one since the last call.
    pub(crate) fn sync(&self) -> Result<()> {
        if self.unsynced.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.file.sync_data() {
                self.unsynced.store(true, Ordering::Release);
                return Err(self.error("syncing", e));
            }
        }
        Ok(())
    }

    /// Gives the disk space of `count` slots from `first` back to the file system
    /// (`fallocate(PUNCH_HOLE)`); the file keeps its length and the slots read as zeros.
    /// File systems without hole punching keep the space, which the slots' reuse bounds.
    pub(crate) fn punch(&self, first: Slot, count: u64) {
        let (Ok(off), Ok(len)) = (
            libc::off_t::try_from(self.offset(first)),
            libc::off_t::try_from(count * self.slot_size),
        ) else {
            return;
        };
        // SAFETY: a plain syscall on an open descriptor.
        let r = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                len,
            )
        };
        if r != 0 {
            tracing::debug!(
                "punching a hole in {}: {}",
                self.path.display(),
                io::Error::last_os_error()
            );
        }
    }

    /// Cuts the file after `slots` slots.
    pub(crate) fn truncate(&self, slots: u64) -> Result<()> {
        let len = slots * self.slot_size;
        let current = self
            .file
            .metadata()
            .map_err(|e| self.error("reading the length of", e))?
            .len();
        if current > len {
            self.file
                .set_len(len)
                .map_err(|e| self.error("truncating", e))?;
        }
        Ok(())
    }
}
