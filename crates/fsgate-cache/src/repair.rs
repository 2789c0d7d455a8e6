//! Checking every stored byte against its checksum, and dropping what fails.

use fsgate_core::Result;
use redb::ReadableTable;

use crate::error::storage;
use fsgate_core::error::code;

use crate::io::remove_blocks;
use crate::record::{decode_tag, BlockIndex, BlockMeta, FileNum};
use crate::vault::{Vault, TAGS};

/// A block [`Vault::check_and_repair`] found corrupt and dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptBlock {
    /// The file it belonged to.
    pub file_id: String,
    /// Its offset in the file.
    pub position: u64,
    /// Bytes lost with it: its unflushed bytes, or for a local file all it held; 0 for a
    /// clean block, which is fetched again when read.
    pub bytes_lost: u64,
}

/// What [`Vault::check_and_repair`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Blocks checked.
    pub blocks_checked: u64,
    /// Blocks that failed their checksum, now dropped.
    pub corrupt_blocks: Vec<CorruptBlock>,
    /// Tags that failed their checksum, now deleted: (file id, tag id).
    pub corrupt_tags: Vec<(String, u16)>,
}

impl Vault {
    /// Reads every block and tag, checks each against its checksum and drops those that fail
    /// (the reference's `CheckAndRepair`). A dropped clean block is fetched again when read;
    /// a dropped dirty block loses its unflushed bytes, which the report counts. Reads touch
    /// every byte of the vault, so this takes as long as reading it.
    pub fn check_and_repair(&self) -> Result<RepairReport> {
        let inner = &*self.inner;
        let mut state = inner.lock();
        inner.check_open(&state, "check_and_repair")?;
        let mut report = RepairReport::default();
        let mut bad_blocks: Vec<(FileNum, BlockIndex)> = Vec::new();
        let mut bad_tags: Vec<(FileNum, u16)> = Vec::new();
        {
            let mut keys: Vec<(FileNum, BlockIndex)> = state.blocks.keys().copied().collect();
            keys.sort();
            let mut buf = Vec::new();
            for (file, block) in keys {
                report.blocks_checked += 1;
                let stored = state.blocks.get(&(file, block)).and_then(|b| b.meta.stored);
                let good = match stored {
                    Some(s) => match inner.read_checked(file, block, &s, &mut buf) {
                        Ok(()) => true,
                        Err(e) if e.code() == code::ERROR_INVALID_DATA => false,
                        Err(e) => return Err(e),
                    },
                    None => false,
                };
                if !good {
                    bad_blocks.push((file, block));
                }
            }
            let txn = inner
                .db
                .begin_read()
                .map_err(|e| storage("beginning a check", e))?;
            let tags = txn
                .open_table(TAGS)
                .map_err(|e| storage("opening the tag table", e))?;
            for entry in tags.iter().map_err(|e| storage("reading tags", e))? {
                let (k, v) = entry.map_err(|e| storage("reading tags", e))?;
                let (file, tag) = k.value();
                if decode_tag(FileNum(file), tag, v.value()).is_err() {
                    bad_tags.push((FileNum(file), tag));
                }
            }
        }
        if bad_blocks.is_empty() && bad_tags.is_empty() {
            return Ok(report);
        }
        let txn = inner.begin_write()?;
        {
            remove_blocks(&txn, &bad_blocks)?;
            let mut tags = txn
                .open_table(TAGS)
                .map_err(|e| storage("opening the tag table", e))?;
            for &(file, tag) in &bad_tags {
                tags.remove((file.0, tag))
                    .map_err(|e| storage("removing a tag", e))?;
            }
        }
        inner.commit(&mut state, txn, "check_and_repair")?;
        let bs = inner.block_size();
        let id_of = |state: &crate::vault::State, file: FileNum| {
            state
                .keys
                .get(&file)
                .and_then(|k| state.files.get(k))
                .map(|f| f.record.id.clone())
                .unwrap_or_default()
        };
        for (file, block) in bad_blocks {
            let local = state
                .keys
                .get(&file)
                .and_then(|k| state.files.get(k))
                .is_some_and(|f| f.record.local);
            let lost = state.blocks.get(&(file, block)).map_or(0, |b| {
                if local {
                    b.meta.present.len()
                } else {
                    b.meta.dirty.len()
                }
            });
            report.corrupt_blocks.push(CorruptBlock {
                file_id: id_of(&state, file),
                position: block.0 * bs,
                bytes_lost: lost,
            });
            state.set_block(file, block, None::<BlockMeta>);
        }
        for (file, tag) in bad_tags {
            report.corrupt_tags.push((id_of(&state, file), tag));
        }
        inner.reclaim(&mut state)?;
        Ok(report)
    }
}
