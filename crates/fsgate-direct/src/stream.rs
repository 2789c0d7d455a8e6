//! [`DirectStream`]: the reference's stream type over a volume, a file or physical memory.
//!
//! It implements `Read`, `Seek` and (when writable) `Write` at any byte position and length;
//! on a volume, partial sectors are read, patched and rewritten underneath. Properties and
//! methods keep the reference's names: `length`, `readable`, `writable`, `seekable`, `tell`,
//! `truncate`, `flush`, `close`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use fsgate_core::{code, Error, Result};

use crate::memory::MemoryHandle;
use crate::volume::VolumeHandle;

enum Backend {
    Volume(VolumeHandle),
    File { file: File, writable: bool },
    Memory(MemoryHandle),
}

/// A seekable byte stream over a volume, a file or physical memory.
pub struct DirectStream {
    backend: Backend,
    position: u64,
}

impl DirectStream {
    pub(crate) fn volume(volume: VolumeHandle) -> Self {
        Self {
            backend: Backend::Volume(volume),
            position: 0,
        }
    }

    pub(crate) fn file(file: File, writable: bool) -> Self {
        Self {
            backend: Backend::File { file, writable },
            position: 0,
        }
    }

    pub(crate) fn memory(memory: MemoryHandle) -> Self {
        Self {
            backend: Backend::Memory(memory),
            position: 0,
        }
    }

    /// The length in bytes: the volume's size, the file's current size, or one past the
    /// highest physical RAM address.
    pub fn length(&self) -> Result<u64> {
        match &self.backend {
            Backend::Volume(v) => Ok(v.size_bytes()),
            Backend::File { file, .. } => file
                .metadata()
                .map(|m| m.len())
                .map_err(|e| Error::io("reading the stream's file length", e)),
            Backend::Memory(m) => Ok(m.size()),
        }
    }

    /// Whether the stream supports reading: always (fsgate never opens write-only, since a
    /// volume needs reads for read-modify-write and Linux's `O_RDWR` covers both).
    pub fn readable(&self) -> bool {
        true
    }

    /// Whether the stream supports writing: a volume or file opened with write access;
    /// never physical memory.
    pub fn writable(&self) -> bool {
        match &self.backend {
            Backend::Volume(v) => v.is_writable(),
            Backend::File { writable, .. } => *writable,
            Backend::Memory(_) => false,
        }
    }

    /// Whether the stream supports seeking: always.
    pub fn seekable(&self) -> bool {
        true
    }

    /// The current position.
    pub fn tell(&self) -> u64 {
        self.position
    }

    /// Sets the length to `size` (or to the current position when `None`) and returns it.
    /// Only files can change length; on a volume or memory it is `ERROR_NOT_SUPPORTED` (50).
    pub fn truncate(&mut self, size: Option<u64>) -> Result<u64> {
        let size = size.unwrap_or(self.position);
        match &self.backend {
            Backend::File {
                file,
                writable: true,
                ..
            } => {
                file.set_len(size)
                    .map_err(|e| Error::io(format!("truncating the stream to {size} bytes"), e))?;
                Ok(size)
            }
            Backend::File { .. } => Err(Error::from_code(
                code::ERROR_ACCESS_DENIED,
                "truncate: the file was opened without write access",
            )),
            Backend::Volume(_) | Backend::Memory(_) => Err(Error::from_code(
                code::ERROR_NOT_SUPPORTED,
                "truncate: a volume or physical memory has a fixed length",
            )),
        }
    }

    /// Flushes and closes the stream, returning the flush's error if any (dropping a writable
    /// volume stream flushes too, but can only report a failure through `on_error`).
    pub fn close(mut self) -> Result<()> {
        self.sync()
    }

    fn sync(&mut self) -> Result<()> {
        match &self.backend {
            Backend::Volume(v) if v.is_writable() => v.flush(),
            Backend::File {
                file,
                writable: true,
                ..
            } => file
                .sync_data()
                .map_err(|e| Error::io("flushing the stream's file", e)),
            _ => Ok(()),
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = match &self.backend {
            Backend::Volume(v) => v.read_at(self.position, buf)?,
            Backend::File { file, .. } => file
                .read_at(buf, self.position)
                .map_err(|e| Error::io(format!("reading at byte {}", self.position), e))?,
            Backend::Memory(m) => {
                if self.position >= m.size() || buf.is_empty() {
                    0
                } else {
                    m.read_at(self.position, buf)?
                }
            }
        };
        self.position += n as u64;
        Ok(n)
    }

    fn write_inner(&mut self, buf: &[u8]) -> Result<usize> {
        if !self.writable() {
            return Err(Error::from_code(
                code::ERROR_ACCESS_DENIED,
                "write: the stream is read-only",
            ));
        }
        let n = match &self.backend {
            Backend::Volume(v) => v.write_at(self.position, buf)?,
            Backend::File { file, .. } => file
                .write_at(buf, self.position)
                .map_err(|e| Error::io(format!("writing at byte {}", self.position), e))?,
            Backend::Memory(_) => 0,
        };
        self.position += n as u64;
        Ok(n)
    }
}

impl Read for DirectStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf).map_err(io::Error::from)
    }
}

impl Write for DirectStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf).map_err(io::Error::from)
    }

    /// Forces written data to storage (`fdatasync`), as the reference's `flush` does.
    fn flush(&mut self) -> io::Result<()> {
        self.sync().map_err(io::Error::from)
    }
}

impl Seek for DirectStream {
    /// Positions may go past the end: reads there return 0 bytes, and writes extend a file
    /// but fail on a volume.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match pos {
            SeekFrom::Start(p) => (p, 0),
            SeekFrom::Current(d) => (self.position, d),
            SeekFrom::End(d) => (self.length().map_err(io::Error::from)?, d),
        };
        let target = base.checked_add_signed(delta).ok_or_else(|| {
            io::Error::from(Error::invalid_argument(
                "offset",
                format!("seeking by {delta} from {base} leaves the stream"),
            ))
        })?;
        self.position = target;
        Ok(target)
    }
}

impl std::fmt::Debug for DirectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.backend {
            Backend::Volume(_) => "volume",
            Backend::File { .. } => "file",
            Backend::Memory(_) => "memory",
        };
        f.debug_struct("DirectStream")
            .field("backend", &kind)
            .field("position", &self.position)
            .finish()
    }
}
