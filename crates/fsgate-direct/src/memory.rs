//! Read-only physical memory, by physical address.
//!
//! Two kernel doors exist, tried in this order:
//!
//! 1. `/proc/kcore` (`CONFIG_PROC_KCORE`): an ELF core image of the kernel's address space.
//!    Its `PT_LOAD` segments for RAM carry the physical address they map in `p_paddr` (other
//!    segments, such as vmalloc, carry `-1`), so physical address `pa` inside a segment is at
//!    file offset `p_offset + (pa - p_paddr)`. Needs `CAP_SYS_RAWIO`.
//! 2. `/dev/mem` (`CONFIG_DEVMEM`): the file offset is the physical address. With
//!    `CONFIG_STRICT_DEVMEM` the kernel refuses reads of RAM beyond the first megabyte; such a
//!    read is reported as `ERROR_PRIVILEGE_NOT_HELD` (1314). RAM ranges come from
//!    `/proc/iomem` ("System RAM" lines), which shows real addresses to root only.
//!
//! When neither file exists, opening fails with `ERROR_NOT_SUPPORTED` (50) naming both kernel
//! options. Addresses outside RAM are refused rather than read as zeros.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use fsgate_core::{code, Error, Result};

use crate::error::privilege_error;

/// Which kernel file serves the reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemorySource {
    /// `/proc/kcore`'s direct-map segments.
    Kcore,
    /// `/dev/mem`.
    DevMem,
}

/// A run of physical memory and where its bytes are in the source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange {
    /// First physical address.
    pub physical_address: u64,
    /// Length in bytes.
    pub length: u64,
    /// File offset of `physical_address` in the source file.
    pub file_offset: u64,
}

/// Read-only access to physical memory; closes on drop.
#[derive(Debug)]
pub struct MemoryHandle {
    file: File,
    source: MemorySource,
    ranges: Vec<MemoryRange>,
}

impl MemoryHandle {
    /// Opens physical memory through `/proc/kcore`, else `/dev/mem`.
    pub(crate) fn open() -> Result<Self> {
        match Self::open_kcore(Path::new("/proc/kcore")) {
            Err(e) if e.errno() == libc::ENOENT => {}
            other => return other,
        }
        match Self::open_dev_mem(Path::new("/dev/mem")) {
            Err(e) if e.errno() == libc::ENOENT => Err(Error::from_code(
                code::ERROR_NOT_SUPPORTED,
                "open_memory: this kernel offers no physical memory access: /proc/kcore is absent (CONFIG_PROC_KCORE) and /dev/mem is absent (CONFIG_DEVMEM)",
            )),
            other => other,
        }
    }

    fn open_kcore(path: &Path) -> Result<Self> {
        let file = open_source(path)?;
        let mut header = [0u8; 64];
        file.read_exact_at(&mut header, 0)
            .map_err(|e| Error::io("reading the ELF header of /proc/kcore", e))?;
        let (phoff, phentsize, phnum) = parse_elf_header(&header)?;
        let mut table = vec![0u8; phentsize * phnum];
        file.read_exact_at(&mut table, phoff)
            .map_err(|e| Error::io("reading the program headers of /proc/kcore", e))?;
        let ranges = parse_kcore_segments(&table, phentsize);
        if ranges.is_empty() {
            return Err(Error::from_code(
                code::ERROR_NOT_SUPPORTED,
                "open_memory: /proc/kcore has no segment with a physical address",
            ));
        }
        Ok(Self {
            file,
            source: MemorySource::Kcore,
            ranges,
        })
    }

    fn open_dev_mem(path: &Path) -> Result<Self> {
        let file = open_source(path)?;
        let iomem = std::fs::read_to_string("/proc/iomem")
            .map_err(|e| Error::io("reading /proc/iomem", e))?;
        let ranges = parse_iomem_ram(&iomem);
        if ranges
            .iter()
            .all(|r| r.physical_address == 0 && r.length <= 1)
        {
            return Err(privilege_error(
                io::Error::from_raw_os_error(libc::EPERM),
                "open_memory: /proc/iomem hides addresses; reading physical memory needs root (CAP_SYS_ADMIN, CAP_SYS_RAWIO)".into(),
            ));
        }
        Ok(Self {
            file,
            source: MemorySource::DevMem,
            ranges,
        })
    }

    /// Which kernel file serves the reads.
    pub fn source(&self) -> MemorySource {
        self.source
    }

    /// The readable runs of physical memory, in address order.
    pub fn ranges(&self) -> &[MemoryRange] {
        &self.ranges
    }

    /// One past the highest readable physical address: the length of a memory stream.
    pub fn size(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| r.physical_address + r.length)
            .max()
            .unwrap_or(0)
    }

    /// Reads physical memory at `physical_address` into `buffer`; returns the bytes read,
    /// fewer than asked when the run of RAM ends first. An address outside RAM is
    /// `ERROR_INVALID_PARAMETER` (87).
    pub fn read_at(&self, physical_address: u64, buffer: &mut [u8]) -> Result<usize> {
        let range = self
            .ranges
            .iter()
            .find(|r| {
                physical_address >= r.physical_address
                    && physical_address - r.physical_address < r.length
            })
            .ok_or_else(|| {
                Error::invalid_argument(
                    "physical_address",
                    format!("{physical_address:#x} is not in readable RAM"),
                )
            })?;
        let inside = physical_address - range.physical_address;
        let len = (range.length - inside).min(buffer.len() as u64) as usize;
        let offset = range.file_offset + inside;
        self.file
            .read_exact_at(&mut buffer[..len], offset)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => privilege_error(
                    e,
                    format!("open_memory: the kernel refused to read {physical_address:#x} (CONFIG_STRICT_DEVMEM allows only the first megabyte of RAM through /dev/mem)"),
                ),
                _ => Error::io(format!("reading physical memory at {physical_address:#x}"), e),
            })?;
        Ok(len)
    }
}

fn open_source(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => privilege_error(
            e,
            format!(
                "open_memory: opening {} needs root (CAP_SYS_RAWIO)",
                path.display()
            ),
        ),
        _ => Error::io(format!("opening {}", path.display()), e),
    })
}

/// Checks a 64-byte ELF64 little-endian header; returns `(e_phoff, e_phentsize, e_phnum)`.
pub(crate) fn parse_elf_header(header: &[u8; 64]) -> Result<(u64, usize, usize)> {
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(Error::from_code(
            code::ERROR_INVALID_DATA,
            "open_memory: /proc/kcore is not a 64-bit little-endian ELF file",
        ));
    }
    let phoff = u64::from_le_bytes(header[32..40].try_into().unwrap_or_default());
    let phentsize = usize::from(u16::from_le_bytes([header[54], header[55]]));
    let phnum = usize::from(u16::from_le_bytes([header[56], header[57]]));
    if phentsize < 56 {
        return Err(Error::from_code(
            code::ERROR_INVALID_DATA,
            format!("open_memory: /proc/kcore program headers are {phentsize} bytes, expected 56"),
        ));
    }
    Ok((phoff, phentsize, phnum))
}

/// The `PT_LOAD` segments of a kcore program header table that carry a physical address,
/// sorted by address.
pub(crate) fn parse_kcore_segments(table: &[u8], phentsize: usize) -> Vec<MemoryRange> {
    let u64_at = |e: &[u8], at: usize| {
        e.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let mut ranges: Vec<_> = table
        .chunks_exact(phentsize)
        .filter(|e| e[..4] == 1u32.to_le_bytes())
        .map(|e| MemoryRange {
            physical_address: u64_at(e, 24),
            length: u64_at(e, 40),
            file_offset: u64_at(e, 8),
        })
        .filter(|r| r.physical_address != u64::MAX && r.length != 0)
        .collect();
    ranges.sort_by_key(|r| r.physical_address);
    ranges
}

/// The top-level "System RAM" ranges of `/proc/iomem`, as `/dev/mem` ranges.
pub(crate) fn parse_iomem_ram(text: &str) -> Vec<MemoryRange> {
    text.lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| {
            let (span, name) = l.split_once(" : ")?;
            if name.trim() != "System RAM" {
                return None;
            }
            let (start, end) = span.split_once('-')?;
            let start = u64::from_str_radix(start.trim(), 16).ok()?;
            let end = u64::from_str_radix(end.trim(), 16).ok()?;
            Some(MemoryRange {
                physical_address: start,
                length: end.checked_sub(start)? + 1,
                file_offset: start,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phdr(p_type: u32, offset: u64, paddr: u64, memsz: u64) -> Vec<u8> {
        let mut e = vec![0u8; 56];
        e[..4].copy_from_slice(&p_type.to_le_bytes());
        e[8..16].copy_from_slice(&offset.to_le_bytes());
        e[24..32].copy_from_slice(&paddr.to_le_bytes());
        e[32..40].copy_from_slice(&memsz.to_le_bytes());
        e[40..48].copy_from_slice(&memsz.to_le_bytes());
        e
    }

    #[test]
    fn kcore_segments_keep_physical_loads_only() {
        let mut table = phdr(4, 0x100, 0, 0x40); // PT_NOTE
        table.extend(phdr(1, 0x2000_0000, u64::MAX, 0x1000)); // vmalloc
        table.extend(phdr(1, 0x9000_0000, 0x1_0000_0000, 0x4000_0000));
        table.extend(phdr(1, 0x8000_0000, 0x1000, 0x9e000));
        let ranges = parse_kcore_segments(&table, 56);
        assert_eq!(
            ranges,
            [
                MemoryRange {
                    physical_address: 0x1000,
                    length: 0x9e000,
                    file_offset: 0x8000_0000
                },
                MemoryRange {
                    physical_address: 0x1_0000_0000,
                    length: 0x4000_0000,
                    file_offset: 0x9000_0000
                },
            ]
        );
    }

    #[test]
    fn elf_header_is_checked() {
        let mut h = [0u8; 64];
        assert_eq!(
            parse_elf_header(&h).unwrap_err().code(),
            code::ERROR_INVALID_DATA
        );
        h[..6].copy_from_slice(b"\x7fELF\x02\x01");
        h[32..40].copy_from_slice(&64u64.to_le_bytes());
        h[54..56].copy_from_slice(&56u16.to_le_bytes());
        h[56..58].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(parse_elf_header(&h).unwrap(), (64, 56, 3));
    }

    #[test]
    fn iomem_gives_top_level_system_ram() {
        let text = "\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
000a0000-000bffff : PCI Bus 0000:00
00100000-bfffffff : System RAM
  01000000-01ffffff : Kernel code
100000000-63fffffff : System RAM
";
        let ranges = parse_iomem_ram(text);
        assert_eq!(ranges.len(), 3);
        assert_eq!(ranges[0].physical_address, 0x1000);
        assert_eq!(ranges[0].length, 0x9ec00);
        assert_eq!(ranges[2].file_offset, 0x1_0000_0000);
        assert_eq!(ranges[2].length, 0x5_4000_0000);
    }
}
