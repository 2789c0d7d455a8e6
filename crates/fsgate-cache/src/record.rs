//! The byte layout of every value the vault stores, each sealed with a CRC-32.
//!
//! A checksum covers the record's kind, its key and its payload, so a byte flipped in a
//! value, or a value that ends up under another key, fails the check. redb checks its own
//! pages only when it repairs a database after a crash; these checksums are what catch a
//! flipped byte in a vault that was closed cleanly.

use fsgate_core::Result;

use crate::error::corrupt;
use crate::range_set::RangeSet;
use crate::slots::Slot;

/// Which kind of record a checksum seals, so equal bytes of two kinds do not pass for each
/// other.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Kind {
    File = 1,
    Block = 2,
    Data = 3,
    Tag = 4,
}

fn checksum(kind: Kind, key: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind as u8]);
    hasher.update(key);
    hasher.update(payload);
    hasher.finalize()
}

/// `payload` followed by its checksum.
fn seal(kind: Kind, key: &[u8], mut payload: Vec<u8>) -> Vec<u8> {
    let sum = checksum(kind, key, &payload);
    payload.extend_from_slice(&sum.to_le_bytes());
    payload
}

/// The payload of a sealed value, or the corruption error naming `what`.
fn open<'a>(
    kind: Kind,
    key: &[u8],
    value: &'a [u8],
    what: &dyn Fn() -> String,
) -> Result<&'a [u8]> {
    let Some(split) = value.len().checked_sub(4) else {
        return Err(corrupt(what()));
    };
    let (payload, sum) = value.split_at(split);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(sum);
    if u32::from_le_bytes(stored) == checksum(kind, key, payload) {
        Ok(payload)
    } else {
        Err(corrupt(what()))
    }
}

/// A little-endian reader over a payload that already passed its checksum; running short
/// still means corruption (a record written by another format).
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'a dyn Fn() -> String,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.bytes.len() < n {
            return Err(corrupt((self.what)()));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn u32(&mut self) -> Result<u32> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(buf))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn ranges(&mut self) -> Result<RangeSet> {
        let count = self.u32()?;
        let mut set = RangeSet::default();
        for _ in 0..count {
            let start = self.u32()?;
            let end = self.u32()?;
            set.insert(start..end);
        }
        Ok(set)
    }
}

fn put_ranges(out: &mut Vec<u8>, set: &RangeSet) {
    let count = u32::try_from(set.ranges().len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for r in set.ranges() {
        out.extend_from_slice(&r.start.to_le_bytes());
        out.extend_from_slice(&r.end.to_le_bytes());
    }
}

/// The number the vault gives a file id, used in the keys of its blocks and tags; it stays
/// the same when the id changes (`file_change_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct FileNum(pub(crate) u64);

/// A block's index in its file: byte offset / block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BlockIndex(pub(crate) u64);

/// What the vault keeps about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileRecord {
    /// The number in the keys of its blocks and tags.
    pub(crate) num: FileNum,
    /// The id as the application spelt it (the key may be case-folded).
    pub(crate) id: String,
    /// The application-defined size.
    pub(crate) size: u64,
    /// Never read from or written to external storage.
    pub(crate) local: bool,
    /// The size changed since the last flush, which must tell the external file.
    pub(crate) size_dirty: bool,
    /// External storage holds nothing at or after this offset (learnt from
    /// `RWRESULT_RANGE_BEYOND_EOF`, or from a shrink not yet flushed): missing bytes there
    /// read as zeros without a request.
    pub(crate) external_eof: Option<u64>,
}

const FLAG_LOCAL: u8 = 1;
const FLAG_SIZE_DIRTY: u8 = 2;

impl FileRecord {
    pub(crate) fn encode(&self, key: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.id.len());
        out.extend_from_slice(&self.num.0.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        let mut flags = 0;
        if self.local {
            flags |= FLAG_LOCAL;
        }
        if self.size_dirty {
            flags |= FLAG_SIZE_DIRTY;
        }
        out.push(flags);
        out.extend_from_slice(&self.external_eof.unwrap_or(u64::MAX).to_le_bytes());
        out.extend_from_slice(self.id.as_bytes());
        seal(Kind::File, key.as_bytes(), out)
    }

    pub(crate) fn decode(key: &str, value: &[u8]) -> Result<Self> {
        let what = || format!("the record of file key {key:?}");
        let payload = open(Kind::File, key.as_bytes(), value, &what)?;
        let mut r = Reader {
            bytes: payload,
            what: &what,
        };
        let num = FileNum(r.u64()?);
        let size = r.u64()?;
        let flags = r.u8()?;
        let eof = r.u64()?;
        let id = String::from_utf8(r.bytes.to_vec()).map_err(|_| corrupt(what()))?;
        Ok(Self {
            num,
            id,
            size,
            local: flags & FLAG_LOCAL != 0,
            size_dirty: flags & FLAG_SIZE_DIRTY != 0,
            external_eof: (eof != u64::MAX).then_some(eof),
        })
    }
}

fn block_key_bytes(file: FileNum, block: BlockIndex) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&file.0.to_le_bytes());
    key[8..].copy_from_slice(&block.0.to_le_bytes());
    key
}

/// Where a block's bytes are in the data file, and their checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) slot: Slot,
    /// Bytes in the slot (the end of the block's last held range).
    pub(crate) len: u32,
    /// [`data_checksum`] of those bytes.
    pub(crate) crc: u32,
}

/// What the vault keeps about one block besides its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    /// Bumped by every write, so a flush that raced a write does not mark the new bytes clean.
    pub(crate) generation: u64,
    /// Bytes held in the vault.
    pub(crate) present: RangeSet,
    /// Bytes written locally and not yet flushed (a subset of `present`).
    pub(crate) dirty: RangeSet,
    /// Its bytes in the data file; `None` until they are written there.
    pub(crate) stored: Option<Stored>,
}

impl BlockMeta {
    pub(crate) fn encode(&self, file: FileNum, block: BlockIndex) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(32 + 8 * (self.present.ranges().len() + self.dirty.ranges().len()));
        out.extend_from_slice(&self.generation.to_le_bytes());
        put_ranges(&mut out, &self.present);
        put_ranges(&mut out, &self.dirty);
        if let Some(stored) = &self.stored {
            out.extend_from_slice(&stored.slot.0.to_le_bytes());
            out.extend_from_slice(&stored.len.to_le_bytes());
            out.extend_from_slice(&stored.crc.to_le_bytes());
        }
        seal(Kind::Block, &block_key_bytes(file, block), out)
    }

    pub(crate) fn decode(file: FileNum, block: BlockIndex, value: &[u8]) -> Result<Self> {
        let what = || format!("the index of block {} of file #{}", block.0, file.0);
        let payload = open(Kind::Block, &block_key_bytes(file, block), value, &what)?;
        let mut r = Reader {
            bytes: payload,
            what: &what,
        };
        let generation = r.u64()?;
        let present = r.ranges()?;
        let dirty = r.ranges()?;
        let stored = if r.bytes.is_empty() {
            None
        } else {
            Some(Stored {
                slot: Slot(r.u64()?),
                len: r.u32()?,
                crc: r.u32()?,
            })
        };
        Ok(Self {
            generation,
            present,
            dirty,
            stored,
        })
    }
}

/// The checksum of a block's bytes, over its key too, so the bytes of another block (an
/// index entry naming the wrong slot) fail it.
pub(crate) fn data_checksum(file: FileNum, block: BlockIndex, bytes: &[u8]) -> u32 {
    checksum(Kind::Data, &block_key_bytes(file, block), bytes)
}

/// Checks bytes read from a block's slot against its index entry: `None` when the data
/// file ended before them.
pub(crate) fn check_data(
    file: FileNum,
    block: BlockIndex,
    stored: &Stored,
    bytes: Option<&[u8]>,
) -> Result<()> {
    let what = || format!("the data of block {} of file #{}", block.0, file.0);
    match bytes {
        None => Err(corrupt(format!("{} (missing from the data file)", what()))),
        Some(b)
            if b.len() != stored.len as usize || data_checksum(file, block, b) != stored.crc =>
        {
            Err(corrupt(what()))
        }
        Some(_) => Ok(()),
    }
}

/// A block's bytes as format 1 stored them in a redb table (sealed with their checksum):
/// the bytes, and whether they pass the checksum.
pub(crate) fn open_format_1_data(file: FileNum, block: BlockIndex, value: &[u8]) -> (&[u8], bool) {
    let what = String::new;
    match open(Kind::Data, &block_key_bytes(file, block), value, &what) {
        Ok(bytes) => (bytes, true),
        Err(_) => (&value[..value.len().saturating_sub(4)], false),
    }
}

/// A block's bytes as format 1 stored them, for the conversion's tests.
#[cfg(test)]
pub(crate) fn seal_format_1_data(file: FileNum, block: BlockIndex, bytes: &[u8]) -> Vec<u8> {
    seal(Kind::Data, &block_key_bytes(file, block), bytes.to_vec())
}

fn tag_key_bytes(file: FileNum, tag: u16) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[..8].copy_from_slice(&file.0.to_le_bytes());
    key[8..].copy_from_slice(&tag.to_le_bytes());
    key
}

/// A tag's bytes, sealed.
pub(crate) fn encode_tag(file: FileNum, tag: u16, bytes: &[u8]) -> Vec<u8> {
    seal(Kind::Tag, &tag_key_bytes(file, tag), bytes.to_vec())
}

/// A tag's bytes, or the corruption error.
pub(crate) fn decode_tag(file: FileNum, tag: u16, value: &[u8]) -> Result<Vec<u8>> {
    let what = || format!("tag {tag:#06x} of file #{}", file.0);
    open(Kind::Tag, &tag_key_bytes(file, tag), value, &what).map(<[u8]>::to_vec)
}

/// Parses a little-endian `u64` kept in the vault's settings table.
pub(crate) fn decode_u64(name: &str, value: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| corrupt(format!("setting {name:?}")))?;
    Ok(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_record_round_trips_and_detects_a_flipped_byte() {
        let record = FileRecord {
            num: FileNum(7),
            id: "Dir/File.txt".into(),
            size: 12345,
            local: true,
            size_dirty: true,
            external_eof: Some(99),
        };
        let mut bytes = record.encode("dir/file.txt");
        assert_eq!(
            FileRecord::decode("dir/file.txt", &bytes).ok(),
            Some(record)
        );
        bytes[3] ^= 0x10;
        let err = FileRecord::decode("dir/file.txt", &bytes).err();
        assert_eq!(
            err.map(|e| e.code()),
            Some(fsgate_core::error::code::ERROR_INVALID_DATA)
        );
    }

    #[test]
    fn data_under_another_key_fails_its_checksum() {
        let stored = Stored {
            slot: Slot(4),
            len: 5,
            crc: data_checksum(FileNum(1), BlockIndex(2), b"hello"),
        };
        assert!(check_data(FileNum(1), BlockIndex(2), &stored, Some(b"hello")).is_ok());
        assert!(check_data(FileNum(1), BlockIndex(3), &stored, Some(b"hello")).is_err());
        assert!(check_data(FileNum(1), BlockIndex(2), &stored, Some(b"hellO")).is_err());
        assert!(check_data(FileNum(1), BlockIndex(2), &stored, Some(b"hell")).is_err());
        assert!(check_data(FileNum(1), BlockIndex(2), &stored, None).is_err());
    }

    #[test]
    fn block_meta_round_trips() {
        let mut meta = BlockMeta {
            generation: 4,
            ..BlockMeta::default()
        };
        meta.present.insert(0..10);
        meta.present.insert(20..30);
        meta.dirty.insert(22..25);
        meta.stored = Some(Stored {
            slot: Slot(17),
            len: 30,
            crc: 0xdead_beef,
        });
        let bytes = meta.encode(FileNum(3), BlockIndex(9));
        assert_eq!(
            BlockMeta::decode(FileNum(3), BlockIndex(9), &bytes).ok(),
            Some(meta)
        );
    }
}
