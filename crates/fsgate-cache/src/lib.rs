//! The cache vault: file data cached by ranges between an application and external
//! storage (the reference's `CBCache`).
//!
//! A [`Vault`] is one file on disk holding, per file id, an application-defined size, the
//! byte ranges cached so far, and tags. A virtual drive over slow or remote storage calls
//! [`Vault::file_read`] and [`Vault::file_write`] from its own read and write handlers; the
//! vault answers from what it holds and fires the application's [`Events`] to fetch what it
//! lacks ([`Events::on_read_data`]) and to flush what was written
//! ([`Events::on_write_data`]), after a delay on its write-back thread or when asked.
//!
//! ```
//! use fsgate_cache::{Events, FlushMode, ReadDataParams, RwResult, Vault, VaultOptions, WriteDataParams};
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//!
//! /// External storage: here a shared map of byte vectors; for a drive, an object store.
//! #[derive(Clone, Default)]
//! struct Remote(Arc<Mutex<HashMap<String, Vec<u8>>>>);
//!
//! impl Events for Remote {
//!     fn on_read_data(&self, p: &mut ReadDataParams<'_>) {
//!         let files = self.0.lock().unwrap();
//!         let Some(data) = files.get(p.file_id) else {
//!             p.result_code = RwResult::RWRESULT_FILE_FAILURE;
//!             return;
//!         };
//!         let start = (p.position as usize).min(data.len());
//!         let n = (data.len() - start).min(p.buffer.len());
//!         p.buffer[..n].copy_from_slice(&data[start..start + n]);
//!         p.bytes_read = n;
//!         if n < p.buffer.len() {
//!             p.result_code = RwResult::RWRESULT_RANGE_BEYOND_EOF;
//!         }
//!     }
//!     fn on_write_data(&self, p: &mut WriteDataParams<'_>) {
//!         let mut files = self.0.lock().unwrap();
//!         let data = files.entry(p.file_id.to_owned()).or_default();
//!         data.resize(p.size as usize, 0);
//!         let end = p.position as usize + p.buffer.len();
//!         data[p.position as usize..end].copy_from_slice(p.buffer);
//!         p.bytes_written = p.buffer.len();
//!     }
//! }
//!
//! # fn main() -> fsgate_core::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let remote = Remote::default();
//! remote.0.lock().unwrap().insert("/docs/a.txt".into(), b"hello, world".to_vec());
//! let vault = Vault::open(dir.path().join("vault.redb"), VaultOptions::default(), remote.clone())?;
//!
//! // The drive's open handler: the external file is 12 bytes long.
//! vault.file_open("/docs/a.txt", Some(12))?;
//! // Its read handler: the first read fetches the block, later ones come from the vault.
//! let mut buf = [0u8; 5];
//! assert_eq!(vault.file_read("/docs/a.txt", 0, &mut buf)?, 5);
//! assert_eq!(&buf, b"hello");
//! // Its write handler: the bytes stay in the vault, dirty, until flushed.
//! vault.file_write("/docs/a.txt", 7, b"vault!")?;
//! assert_eq!(remote.0.lock().unwrap()["/docs/a.txt"], b"hello, world");
//! // Its close handler: flush now (FlushMode::Delayed would leave it to the write-back thread).
//! vault.file_close_ex("/docs/a.txt", FlushMode::Immediate)?;
//! assert_eq!(remote.0.lock().unwrap()["/docs/a.txt"], b"hello, vault!");
//! # Ok(()) }
//! ```
//!
//! # Reference names
//!
//! | reference | fsgate-cache |
//! |---|---|
//! | `OpenCache` / `CloseCache` | [`Vault::open`] / [`Vault::close_cache`] |
//! | `FileOpen`, `FileOpenEx` / `FileClose`, `FileCloseEx` | [`Vault::file_open`], [`Vault::file_open_ex`] / [`Vault::file_close`], [`Vault::file_close_ex`] |
//! | `FileRead`, `FileWrite`, `FileGetSize`, `FileSetSize`, `FileFlush` | [`Vault::file_read`], [`Vault::file_write`], [`Vault::file_get_size`], [`Vault::file_set_size`], [`Vault::file_flush`] |
//! | `FileExists`, `FileDelete`, `FileChangeId`, `FileGetStatus` | [`Vault::file_exists`], [`Vault::file_delete`], [`Vault::file_change_id`], [`Vault::file_get_status`] |
//! | `FileTagSet`, `FileTagGet`, `FileTagGetSize`, `FileTagExists`, `FileTagDelete` | [`Vault::file_tag_set`], … and [`Vault::file_tag_enumerate`] |
//! | `EnumerateCachedFiles` with `ENUM_MODE_*` | [`Vault::enumerate_cached_files`] with [`EnumMode`] |
//! | `ResetErrorState`, `CheckAndRepair` | [`Vault::reset_error_state`], [`Vault::check_and_repair`] |
//! | `ReadData`, `WriteData`, `Error` events | [`Events::on_read_data`], [`Events::on_write_data`], [`Events::on_error`] |
//! | `JournalingMode`, `FlushAfterTime`, size limit | [`VaultOptions`] |
//!
//! Errors are [`fsgate_core::Error`]s with the reference's codes: `ERROR_FILE_NOT_FOUND` (2)
//! for an unknown id, `ERROR_INVALID_HANDLE` (6) for a read or write of a file not open,
//! `ERROR_INVALID_PARAMETER` (87) naming the argument, `ERROR_EA_NOT_FOUND` (276) for a
//! missing tag, `ERROR_INVALID_DATA` (13, `EBADMSG`) for corruption, `ERROR_DISK_FULL` (112)
//! at the size limit, `ERROR_SHARING_VIOLATION` (32) for a vault open twice,
//! `ERROR_NOT_READY` (21) after `close_cache`; transfer failures map as [`RwResult`] says.
//!
//! # Storage: an index in redb and a data file beside it
//! A vault at `PATH` is two files. `PATH` is a [redb](https://docs.rs/redb) database (a
//! maintained, pure-Rust embedded key-value store with ACID transactions on a
//! copy-on-write B-tree) holding the index: file records, tags, and per block its byte
//! ranges and where its bytes are. `PATH.data` holds the block bytes, each block in a slot
//! of block-size bytes at `slot × block size`. Every vault modification is one redb
//! transaction, recovered at every open whatever the journaling mode: that *is* the
//! reference's journal, without a journal format of our own to get wrong.
//!
//! Why the bytes are not in redb: a read of cached data would then cost, per block, a
//! B-tree lookup and a fresh allocation that redb reads the value into, before the copy to
//! the caller. From a plain file a read costs one `pread` straight into the caller's buffer
//! for each run of blocks in consecutive slots, and a CRC per block; slots for the blocks
//! one transaction writes (a fetched window, a large write) are taken in one run when
//! there is one, so a sequential file usually is one run. A write no longer rewrites its
//! block through the B-tree either: the bytes go out with one `pwritev` per run.
//!
//! How the two files stay consistent: blocks are written copy-on-write. A transaction
//! writes a block's new bytes into a free slot, then commits the index entry naming that
//! slot with the bytes' length and CRC; the slot the block used before is given up only
//! after the commit. A crash at any point leaves the committed index naming slots whose
//! bytes were written before it, and the open rebuilds the free slots from the index (a
//! slot written by a transaction that never committed is free again). A given-up slot is
//! written again only when no read that planned before it was given up is still copying out
//! of it, and, without journaling, after the next sync (so the last durable index never
//! names a slot that was rewritten since). Freed slots are reused first; runs of freed
//! slots are given back to the file system with `fallocate(PUNCH_HOLE)`, and a free tail is
//! cut off, so the data file holds about what the vault holds.
//!
//! Without journaling, commits use redb's `Durability::Eventual` over redb's file backend
//! with its eventual sync made a no-op: redb has written the commit's pages and header with
//! `pwrite` before it asks for that sync, so the commit is in the kernel's page cache when
//! it returns and a killed process loses nothing; redb's header slots and checksums roll a
//! commit cut short by the kill back to the previous one. The data file's bytes are in the
//! page cache before that commit in the same way. (redb's own `Durability::None` would not
//! do: it writes no header until the next durable commit, so a kill loses every commit
//! since.) With journaling, every commit fdatasyncs the data file, then commits with
//! `Durability::Immediate` (fdatasync of the index). A sync without journaling (see
//! [`VaultOptions::journaling`]) does the same.
//!
//! A vault of format 1 (block bytes inside the redb file, before this layout) is converted
//! when opened, in the open's transaction: its blocks are copied into the data file and
//! its data table dropped, so unflushed data survives the upgrade, and a crash during it
//! leaves the vault in format 1 to be converted at the next open. The redb file keeps its
//! size (redb reuses the freed pages for the index).
//!
//! # Corruption
//! Every index record and tag carries a CRC-32 over its kind, key and bytes; each block's
//! index entry carries the CRC-32 of its bytes and key. The index is checked at
//! [`Vault::open`] (a corrupt index fails the open), block data and tags when read: a block
//! whose bytes fail their CRC, or that the data file ends before, is reported with
//! `ERROR_INVALID_DATA`, never served. [`Vault::check_and_repair`] checks everything and
//! drops what fails.
//!
//! # Deviations from the reference
//! - One vault is a redb index and a data file beside it; the reference's vault file
//!   format, encryption, compression and `CacheDirectory`/`CacheFile` split are not
//!   implemented.
//! - Journaling off commits each change atomically, written to the file without an
//!   fsync: it survives a kill of the process, not a power loss, which can leave the file
//!   unopenable (see [`VaultOptions::journaling`] for exactly what survives what). On, every
//!   change is fsynced.
//! - `FileOpen`'s prefetch and `FileContext`, pinning, purging (`PurgeAfter*`), statistics
//!   and the `Progress`/`Log`/cleanup events are not implemented; flush policy is the delay
//!   ([`VaultOptions::flush_delay`]) plus explicit flushes; `FlushAfterSize` is not.
//! - `EnumerateCachedFiles` returns the ids at once (a `Vec`) instead of an enumeration
//!   handle; `file_tag_enumerate` lists tag ids.
//! - A write past the end of a file extends its size (the reference leaves sizes to the
//!   application); `file_set_size` without `fetch_missing_data` is a local change that is
//!   flushed.
//! - Error states are kept in memory: reopening the vault clears them.
//! - Added: [`Vault::file_purge`] drops a file's clean data when the application learns the
//!   external file changed; [`Vault::file_prefetch`] fetches a range without reading it (a
//!   drive's read-ahead).
//! - `ReadData`/`WriteData` carry no `Flags` (no continuous/random read hints).
//! - Case-insensitive ids compare after Unicode lower-casing, and the case mode is fixed
//!   when the vault is created.

mod backend;
mod data_file;
mod error;
mod events;
#[cfg(feature = "fault-injection")]
mod fault;
mod flush;
mod io;
mod migrate;
mod options;
mod range_set;
mod record;
mod repair;
mod slots;
mod status;
mod tags;
mod vault;

pub use error::{ERROR_FILE_INVALID, ERROR_RETRY};
pub use events::{Events, ReadDataParams, RwResult, WriteDataParams};
pub use options::VaultOptions;
pub use repair::{CorruptBlock, RepairReport};
pub use status::{EnumMode, FileStatus, FlushMode};
pub use tags::{TAG_ID_MAX, TAG_ID_MIN, TAG_SIZE_MAX};
pub use vault::Vault;
