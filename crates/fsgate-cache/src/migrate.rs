//! Converting a vault of format 1, whose block bytes were values of a redb table, to the
//! data file (see the [crate docs](crate#storage-an-index-in-redb-and-a-data-file-beside-it)).

use fsgate_core::Result;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use crate::data_file::DataFile;
use crate::error::storage;
use crate::record::{data_checksum, open_format_1_data, BlockIndex, BlockMeta, FileNum, Stored};
use crate::slots::Slot;
use crate::vault::BLOCKS;

/// Format 1's (file number, block index) → the block's bytes, sealed.
const FORMAT_1_DATA: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("data");

/// Copies every block of a format-1 vault into `data` (emptied first: what an earlier,
/// interrupted conversion wrote there), in key order so that each file's blocks are in
/// consecutive slots, points its index entry at its slot, and drops the old table; all in
/// `txn`, the open's transaction. A block whose bytes failed their checksum, or were
/// missing, keeps failing it: reading it reports `ERROR_INVALID_DATA` as format 1 did.
pub(crate) fn from_format_1(txn: &WriteTransaction, data: &DataFile) -> Result<()> {
    data.truncate(0)?;
    {
        let mut metas = txn
            .open_table(BLOCKS)
            .map_err(|e| storage("opening the block table", e))?;
        let values = txn
            .open_table(FORMAT_1_DATA)
            .map_err(|e| storage("opening the format-1 data table", e))?;
        let mut keys = Vec::new();
        for entry in metas.iter().map_err(|e| storage("reading blocks", e))? {
            let (k, _) = entry.map_err(|e| storage("reading blocks", e))?;
            keys.push(k.value());
        }
        for (slot, (f, b)) in keys.into_iter().enumerate() {
            let (file, block) = (FileNum(f), BlockIndex(b));
            let mut meta = match metas
                .get((f, b))
                .map_err(|e| storage("reading a block", e))?
            {
                Some(v) => BlockMeta::decode(file, block, v.value())?,
                None => continue,
            };
            let value = values
                .get((f, b))
                .map_err(|e| storage("reading a format-1 block", e))?;
            let (bytes, good) = match &value {
                Some(v) => open_format_1_data(file, block, v.value()),
                None => (&[][..], false),
            };
            let len = meta.present.end();
            let mut bytes = bytes.to_vec();
            let good = good && bytes.len() >= len as usize;
            bytes.resize(len as usize, 0);
            let crc = data_checksum(file, block, &bytes);
            let slot = Slot(slot as u64);
            data.write(slot, &[&bytes])?;
            meta.stored = Some(Stored {
                slot,
                len,
                crc: if good { crc } else { !crc },
            });
            metas
                .insert((f, b), meta.encode(file, block).as_slice())
                .map_err(|e| storage("writing a block index entry", e))?;
        }
    }
    txn.delete_table(FORMAT_1_DATA)
        .map_err(|e| storage("dropping the format-1 data table", e))?;
    data.sync()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use redb::Database;

    use super::*;
    use crate::events::{Events, ReadDataParams, RwResult, WriteDataParams};
    use crate::record::{seal_format_1_data, FileRecord};
    use crate::vault::{FILES, SETTINGS, TAGS};
    use crate::{FileStatus, FlushMode, Vault, VaultOptions};

    /// A flushed range: its position and bytes.
    type Range = (u64, Vec<u8>);

    /// External storage that holds nothing and records what is flushed to it.
    #[derive(Clone, Default)]
    struct Flushed(Arc<Mutex<Vec<Range>>>);

    impl Events for Flushed {
        fn on_read_data(&self, p: &mut ReadDataParams<'_>) {
            p.result_code = RwResult::RWRESULT_RANGE_BEYOND_EOF;
        }
        fn on_write_data(&self, p: &mut WriteDataParams<'_>) {
            if let Ok(mut flushed) = self.0.lock() {
                flushed.push((p.position, p.buffer.to_vec()));
            }
            p.bytes_written = p.buffer.len();
        }
    }

    /// Writes a format-1 vault at `path` holding file "a" (#1, 3 blocks of 4 KiB, the
    /// middle one dirty) and file "b" (#2, one block whose stored bytes are corrupt).
    fn format_1_vault(path: &std::path::Path) -> Vec<Vec<u8>> {
        let db = Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        let blocks: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i + 1; 4096]).collect();
        {
            let mut settings = txn.open_table(SETTINGS).unwrap();
            for (name, value) in [
                ("format", 1u64),
                ("case_sensitive", 1),
                ("block_size", 4096),
                ("next_file_num", 3),
            ] {
                settings
                    .insert(name, value.to_le_bytes().as_slice())
                    .unwrap();
            }
            let mut files = txn.open_table(FILES).unwrap();
            for (id, num) in [("a", 1), ("b", 2)] {
                let record = FileRecord {
                    num: FileNum(num),
                    id: id.into(),
                    size: if num == 1 { 3 * 4096 } else { 4096 },
                    local: false,
                    size_dirty: false,
                    external_eof: None,
                };
                files.insert(id, record.encode(id).as_slice()).unwrap();
            }
            let mut metas = txn.open_table(BLOCKS).unwrap();
            let mut values = txn.open_table(FORMAT_1_DATA).unwrap();
            for (i, (f, b)) in [(1, 0), (1, 1), (1, 2), (2, 0)].into_iter().enumerate() {
                let mut meta = BlockMeta::default();
                meta.present.insert(0..4096);
                if (f, b) == (1, 1) {
                    meta.dirty.insert(0..4096);
                }
                let key = (FileNum(f), BlockIndex(b));
                metas
                    .insert((f, b), meta.encode(key.0, key.1).as_slice())
                    .unwrap();
                let mut sealed = seal_format_1_data(key.0, key.1, &blocks[i]);
                if f == 2 {
                    sealed[100] ^= 1;
                }
                values.insert((f, b), sealed.as_slice()).unwrap();
            }
            txn.open_table(TAGS).unwrap();
        }
        txn.commit().unwrap();
        blocks
    }

    #[test]
    fn a_format_1_vault_is_converted_with_its_unflushed_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.vault");
        let blocks = format_1_vault(&path);
        let options = VaultOptions {
            flush_delay: std::time::Duration::ZERO,
            block_size: 4096,
            ..VaultOptions::default()
        };
        let remote = Flushed::default();
        {
            let vault = Vault::open(&path, options.clone(), remote.clone()).unwrap();
            vault.file_open("a", None).unwrap();
            assert_eq!(
                vault.file_get_status("a").unwrap(),
                FileStatus::OPEN | FileStatus::CHANGED
            );
            let mut buf = vec![0u8; 3 * 4096];
            vault.file_read("a", 0, &mut buf).unwrap();
            assert_eq!(buf, blocks[..3].concat());
            vault.file_open("b", None).unwrap();
            let err = vault.file_read("b", 0, &mut buf[..4096]).unwrap_err();
            assert_eq!(
                err.code(),
                fsgate_core::error::code::ERROR_INVALID_DATA,
                "{err}"
            );
        }
        // Converted once: the second open finds format 2.
        let vault = Vault::open(&path, options, remote.clone()).unwrap();
        vault.file_open("a", None).unwrap();
        vault.file_flush("a", FlushMode::Immediate).unwrap();
        assert_eq!(*remote.0.lock().unwrap(), vec![(4096, blocks[1].clone())]);
        assert_eq!(vault.check_and_repair().unwrap().corrupt_blocks.len(), 1);
    }
}
