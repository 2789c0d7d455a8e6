//! The vault: opening, the in-memory index over the redb tables, and the file lifecycle.
//!
//! # Locking
//! One mutex guards the in-memory index ([`State`]) and every redb write transaction is
//! begun and committed while holding it, so the index and the tables change together and a
//! redb writer never waits for the mutex. Events run with the mutex released: a read
//! gathers the gaps, fires `on_read_data` for them unlocked, then merges the answers under
//! the mutex into the bytes still missing (so a fetch never overwrites what a write put
//! there meanwhile), unless the file's epoch moved (a cut or a completed flush changed
//! what external storage holds); a flush snapshots the dirty bytes with each block's
//! generation and marks clean only blocks whose generation did not move, and flushes of
//! one file take turns.
//!
//! Writes to the data file, and the free-slot map ([`SlotMap`]), are under the mutex too.
//! A read of cached data plans under it (which slots, pinned) and reads the data file
//! without it; a slot given up meanwhile keeps its bytes until the pin is dropped.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use fsgate_core::error::code;
use fsgate_core::{Error, Result};
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};

use crate::backend::ProcessSafeFile;
use crate::data_file::DataFile;
use crate::error::{closed, corrupt, file_not_found, not_open, storage};
use crate::events::Events;
use crate::options::VaultOptions;
use crate::record::{decode_u64, BlockIndex, BlockMeta, FileNum, FileRecord};
use crate::slots::{Slot, SlotMap};
use crate::status::{EnumMode, FileStatus, FlushMode};

/// Settings: format version, case sensitivity, block size, next file number.
pub(crate) const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
/// File key (the id, case-folded when ids are case-insensitive) → [`FileRecord`].
pub(crate) const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
/// (file number, block index) → [`BlockMeta`], which names the block's slot in the data
/// file.
pub(crate) const BLOCKS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("blocks");
/// (file number, tag id) → the tag's bytes, sealed.
pub(crate) const TAGS: TableDefinition<(u64, u16), &[u8]> = TableDefinition::new("tags");

/// 1: block bytes in a redb table (converted at open, see `crate::migrate`); 2: in the data
/// file beside the index.
const FORMAT_VERSION: u64 = 2;

/// A cache vault: file data cached by ranges between an application (typically a virtual
/// drive) and external storage. See the [crate docs](crate) for an example.
///
/// All methods take `&self` and may be called from many threads at once.
pub struct Vault {
    pub(crate) inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

pub(crate) struct Inner {
    pub(crate) db: Database,
    pub(crate) data: DataFile,
    pub(crate) events: Box<dyn Events>,
    pub(crate) options: VaultOptions,
    pub(crate) state: Mutex<State>,
    /// Wakes the write-back thread (to close, or because a delay was armed).
    pub(crate) wake: Condvar,
    /// Signalled when a file's flush ends, for a flush of the same file waiting its turn.
    pub(crate) flushed: Condvar,
}

/// The in-memory index, rebuilt from the tables at open.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) files: HashMap<String, FileState>,
    pub(crate) keys: HashMap<FileNum, String>,
    pub(crate) blocks: HashMap<(FileNum, BlockIndex), BlockState>,
    /// Clean, evictable blocks by last use.
    pub(crate) lru: BTreeSet<(u64, FileNum, BlockIndex)>,
    pub(crate) tick: u64,
    /// Bytes of block data stored.
    pub(crate) current_size: u64,
    pub(crate) next_num: u64,
    /// `RWRESULT_PERMANENT_FAILURE` was reported and not reset.
    pub(crate) global_error: bool,
    pub(crate) closed: bool,
    /// Every commit so far is durable (journaling off commits without fsync until a sync).
    pub(crate) durable: bool,
    /// The data file's free slots.
    pub(crate) slots: SlotMap,
}

pub(crate) struct FileState {
    pub(crate) record: FileRecord,
    pub(crate) open_count: u32,
    /// `RWRESULT_FILE_FAILURE` was reported and not reset.
    pub(crate) error: bool,
    /// When the write-back thread may flush this file; `None`: it does not.
    pub(crate) flush_due: Option<Instant>,
    pub(crate) blocks: BTreeSet<BlockIndex>,
    pub(crate) dirty_bytes: u64,
    /// A flush of this file is sending data. Flushes of one file take turns: two at once
    /// could deliver an older snapshot after a newer one that was already marked clean.
    pub(crate) flushing: bool,
    /// Bumped whenever what external storage holds for the file changes under a fetch (a
    /// cut, a grow, a completed flush, an external modification): a fetch that started in
    /// another epoch is dropped instead of merged.
    pub(crate) epoch: u64,
}

impl FileState {
    /// Holds bytes or a size external storage has not seen.
    pub(crate) fn changed(&self) -> bool {
        self.dirty_bytes > 0 || self.record.size_dirty
    }
}

pub(crate) struct BlockState {
    pub(crate) meta: BlockMeta,
    pub(crate) tick: u64,
}

impl BlockState {
    /// Bytes of the block's stored value (its data runs to the end of its last range).
    pub(crate) fn stored_len(&self) -> u64 {
        u64::from(self.meta.present.end())
    }
}

impl State {
    pub(crate) fn file(&self, key: &str, file_id: &str) -> Result<&FileState> {
        self.files.get(key).ok_or_else(|| file_not_found(file_id))
    }

    pub(crate) fn file_mut(&mut self, key: &str, file_id: &str) -> Result<&mut FileState> {
        self.files
            .get_mut(key)
            .ok_or_else(|| file_not_found(file_id))
    }

    pub(crate) fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Replaces (or, with `None`, removes) a block in the index, keeping sizes, dirty counts
    /// and the LRU in step. Called after the commit that made the change: a slot the block
    /// no longer uses is given up.
    pub(crate) fn set_block(&mut self, file: FileNum, block: BlockIndex, new: Option<BlockMeta>) {
        let tick = self.next_tick();
        let key = (file, block);
        let new_slot = new.as_ref().and_then(|m| m.stored).map(|s| s.slot);
        if let Some(old) = self.blocks.remove(&key) {
            self.current_size -= old.stored_len();
            if let Some(old_slot) = old.meta.stored.map(|s| s.slot) {
                if Some(old_slot) != new_slot {
                    self.slots.release(old_slot);
                }
            }
            self.lru.remove(&(old.tick, file, block));
            if let Some(f) = self.keys.get(&file).and_then(|k| self.files.get_mut(k)) {
                f.dirty_bytes -= old.meta.dirty.len();
                f.blocks.remove(&block);
            }
        }
        let Some(meta) = new else { return };
        let local = self
            .keys
            .get(&file)
            .and_then(|k| self.files.get(k))
            .is_none_or(|f| f.record.local);
        let state = BlockState { meta, tick };
        self.current_size += state.stored_len();
        if !local && state.meta.dirty.is_empty() {
            self.lru.insert((tick, file, block));
        }
        if let Some(f) = self.keys.get(&file).and_then(|k| self.files.get_mut(k)) {
            f.dirty_bytes += state.meta.dirty.len();
            f.blocks.insert(block);
        }
        self.blocks.insert(key, state);
    }

    /// Marks a block used now, for the LRU.
    pub(crate) fn touch(&mut self, file: FileNum, block: BlockIndex) {
        let tick = self.next_tick();
        if let Some(b) = self.blocks.get_mut(&(file, block)) {
            if self.lru.remove(&(b.tick, file, block)) {
                self.lru.insert((tick, file, block));
            }
            b.tick = tick;
        }
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key a file id is stored under.
    pub(crate) fn key_of(&self, file_id: &str) -> String {
        if self.options.case_sensitive {
            file_id.to_owned()
        } else {
            file_id.to_lowercase()
        }
    }

    pub(crate) fn block_size(&self) -> u64 {
        u64::from(self.options.block_size)
    }

    /// A write transaction with the durability the journaling mode asks for.
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction> {
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| storage("beginning a vault transaction", e))?;
        txn.set_durability(if self.options.journaling {
            Durability::Immediate
        } else {
            // Survives a kill of the process without an fsync (see `crate::backend`).
            Durability::Eventual
        });
        Ok(txn)
    }

    /// Commits `txn`, made by `operation`.
    pub(crate) fn commit(
        &self,
        state: &mut State,
        txn: WriteTransaction,
        operation: &'static str,
    ) -> Result<()> {
        #[cfg(feature = "fault-injection")]
        crate::fault::before_commit(operation);
        if self.options.journaling {
            // The index about to be durable may name bytes written in this transaction.
            self.data.sync()?;
        }
        txn.commit()
            .map_err(|e| storage(&format!("committing {operation}"), e))?;
        if !self.options.journaling {
            state.durable = false;
        }
        Ok(())
    }

    /// Makes every commit so far durable (a no-op with journaling on).
    pub(crate) fn sync(&self, state: &mut State) -> Result<()> {
        if state.durable {
            return Ok(());
        }
        self.data.sync()?;
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| storage("beginning a vault sync", e))?;
        txn.set_durability(Durability::Immediate);
        txn.commit().map_err(|e| storage("syncing the vault", e))?;
        state.durable = true;
        state.slots.synced();
        self.reclaim(state)
    }

    /// Frees the slots in limbo nothing can need any more, giving their disk space back, and
    /// cuts the data file after its last used slot.
    pub(crate) fn reclaim(&self, state: &mut State) -> Result<()> {
        let freed = state.slots.reclaim();
        for (first, count) in freed.holes {
            if freed.end.is_none_or(|end| first.0 < end) {
                self.data.punch(first, count);
            }
        }
        match freed.end {
            Some(end) => self.data.truncate(end),
            None => Ok(()),
        }
    }

    /// Takes `n` slots of the data file for the blocks a transaction writes.
    pub(crate) fn allocate(&self, state: &mut State, n: u64) -> Result<Vec<Slot>> {
        self.reclaim(state)?;
        Ok(state.slots.allocate(n))
    }

    /// Fails when the vault is closed.
    pub(crate) fn check_open(&self, state: &State, method: &str) -> Result<()> {
        if state.closed {
            Err(closed(method))
        } else {
            Ok(())
        }
    }

    /// Writes a file's record.
    pub(crate) fn put_record(txn: &WriteTransaction, key: &str, record: &FileRecord) -> Result<()> {
        let mut files = txn
            .open_table(FILES)
            .map_err(|e| storage("opening the file table", e))?;
        files
            .insert(key, record.encode(key).as_slice())
            .map_err(|e| storage("writing a file record", e))?;
        Ok(())
    }
}

fn db_error(path: &Path, err: redb::DatabaseError) -> Error {
    match err {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::from_code(
            code::ERROR_SHARING_VIOLATION,
            format!(
                "vault {}: already open in this or another process",
                path.display()
            ),
        ),
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(what)) => {
            corrupt(format!("vault {} ({what})", path.display()))
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
            Error::io(format!("opening vault {}", path.display()), io)
        }
        other => storage(&format!("opening vault {}", path.display()), other),
    }
}

impl Vault {
    /// Opens the vault at `path`, creating it if missing (the reference's `OpenCache`): the
    /// index at `path` and the block data beside it at `path` with `.data` added (see the
    /// [crate docs](crate#storage-an-index-in-redb-and-a-data-file-beside-it)).
    ///
    /// Opening recovers what a crash left: an interrupted transaction is rolled back whole,
    /// whatever the journaling mode, and the data file's slots no committed entry names are
    /// free again. Files with unflushed data come back as orphans
    /// ([`EnumMode::Orphan`]). Every record of the index is checked against its checksum:
    /// a corrupt index fails the open with `ERROR_INVALID_DATA`; corrupt block data is found
    /// when read (the read fails with `ERROR_INVALID_DATA`) or by
    /// [`check_and_repair`](Self::check_and_repair).
    ///
    /// Errors: `ERROR_SHARING_VIOLATION` when the vault is open already (one process, one
    /// `Vault`, at a time); `ERROR_INVALID_PARAMETER` for a bad block size or a case
    /// sensitivity other than the vault's. A vault of format 1 (block data inside the index
    /// file, from before the data file) is converted in the open's transaction.
    pub fn open(
        path: impl AsRef<Path>,
        options: VaultOptions,
        events: impl Events,
    ) -> Result<Self> {
        let path = path.as_ref();
        let bs = options.block_size;
        if !bs.is_power_of_two() || !(4096..=1 << 20).contains(&bs) {
            return Err(Error::invalid_argument(
                "block_size",
                format!("{bs} is not a power of two from 4096 to 1048576"),
            ));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(format!("opening vault {}", path.display()), e))?;
        let backend = ProcessSafeFile::new(file).map_err(|e| db_error(path, e))?;
        let db = Database::builder()
            .create_with_backend(backend)
            .map_err(|e| db_error(path, e))?;
        let mut options = options;
        let mut state = State {
            durable: true,
            ..State::default()
        };
        let txn = db
            .begin_write()
            .map_err(|e| storage("beginning the open transaction", e))?;
        let mut migrate = false;
        {
            let mut settings = txn
                .open_table(SETTINGS)
                .map_err(|e| storage("opening the settings table", e))?;
            let stored = |name: &str| -> Result<Option<u64>> {
                match settings
                    .get(name)
                    .map_err(|e| storage("reading settings", e))?
                {
                    Some(v) => decode_u64(name, v.value()).map(Some),
                    None => Ok(None),
                }
            };
            match stored("format")? {
                Some(format @ (1 | FORMAT_VERSION)) => {
                    migrate = format == 1;
                    let case = stored("case_sensitive")?.unwrap_or(1) == 1;
                    if case != options.case_sensitive {
                        return Err(Error::invalid_argument(
                            "case_sensitive",
                            format!(
                                "vault {} was created with case_sensitive = {case}",
                                path.display()
                            ),
                        ));
                    }
                    let stored_bs = stored("block_size")?.unwrap_or(u64::from(bs));
                    options.block_size =
                        u32::try_from(stored_bs).map_err(|_| corrupt("setting \"block_size\""))?;
                    state.next_num = stored("next_file_num")?.unwrap_or(1);
                }
                Some(other) => {
                    return Err(Error::from_code(
                        code::ERROR_NOT_SUPPORTED,
                        format!(
                            "vault {} has format {other}; this version reads {FORMAT_VERSION}",
                            path.display()
                        ),
                    ))
                }
                None => {
                    let mut put = |name: &str, value: u64| {
                        settings
                            .insert(name, value.to_le_bytes().as_slice())
                            .map(|_| ())
                            .map_err(|e| storage("writing settings", e))
                    };
                    put("format", FORMAT_VERSION)?;
                    put("case_sensitive", u64::from(options.case_sensitive))?;
                    put("block_size", u64::from(bs))?;
                    put("next_file_num", 1)?;
                    state.next_num = 1;
                }
            }
            if migrate {
                settings
                    .insert("format", FORMAT_VERSION.to_le_bytes().as_slice())
                    .map_err(|e| storage("writing settings", e))?;
            }
            // Create the other tables so that read transactions find them.
            txn.open_table(FILES)
                .map_err(|e| storage("creating tables", e))?;
            txn.open_table(BLOCKS)
                .map_err(|e| storage("creating tables", e))?;
            txn.open_table(TAGS)
                .map_err(|e| storage("creating tables", e))?;
        }
        // Opened after the index, whose lock keeps a second vault from opening it.
        let data = DataFile::open(DataFile::path_of(path), u64::from(options.block_size))?;
        if migrate {
            crate::migrate::from_format_1(&txn, &data)?;
        }
        txn.commit()
            .map_err(|e| storage("committing the open transaction", e))?;
        load_index(&db, &data, options.journaling, &mut state)?;
        let inner = Arc::new(Inner {
            db,
            data,
            events: Box::new(events),
            options,
            state: Mutex::new(state),
            wake: Condvar::new(),
            flushed: Condvar::new(),
        });
        let flusher = crate::flush::spawn_write_back(&inner)?;
        Ok(Self {
            inner,
            flusher: Mutex::new(flusher),
        })
    }

    /// The options in force (the block size is the vault's own).
    pub fn options(&self) -> &VaultOptions {
        &self.inner.options
    }

    /// Bytes of file data the vault stores now.
    pub fn current_size(&self) -> u64 {
        self.inner.lock().current_size
    }

    /// Opens a file, creating it when missing (the reference's `FileOpenEx`). Each open needs
    /// one close.
    ///
    /// `file_size`: for a new file its size (`None`: 0); for a file in the vault, `Some`
    /// changes its size as [`file_set_size`](Self::file_set_size) without fetching would,
    /// except that growing also forgets a known end of the external file, and `None` keeps the
    /// vault's size (pass `None` to reopen an orphan). `local`: the file never touches
    /// external storage; it must match an existing file's (`ERROR_INVALID_PARAMETER`).
    pub fn file_open_ex(&self, file_id: &str, file_size: Option<u64>, local: bool) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        let mut state = inner.lock();
        inner.check_open(&state, "file_open")?;
        if let Some(file) = state.files.get(&key) {
            if file.record.local != local {
                return Err(Error::invalid_argument(
                    "local",
                    format!(
                        "file {file_id:?} is in the vault with local = {}",
                        file.record.local
                    ),
                ));
            }
            if let Some(size) = file_size.filter(|s| *s != file.record.size) {
                inner.resize(&mut state, &key, file_id, size, true)?;
            }
            state.file_mut(&key, file_id)?.open_count += 1;
            return Ok(());
        }
        let record = FileRecord {
            num: FileNum(state.next_num),
            id: file_id.to_owned(),
            size: file_size.unwrap_or(0),
            local,
            size_dirty: false,
            external_eof: None,
        };
        let txn = inner.begin_write()?;
        Inner::put_record(&txn, &key, &record)?;
        {
            let mut settings = txn
                .open_table(SETTINGS)
                .map_err(|e| storage("opening the settings table", e))?;
            settings
                .insert("next_file_num", (record.num.0 + 1).to_le_bytes().as_slice())
                .map_err(|e| storage("writing settings", e))?;
        }
        inner.commit(&mut state, txn, "file_open")?;
        state.next_num = record.num.0 + 1;
        state.keys.insert(record.num, key.clone());
        state.files.insert(
            key,
            FileState {
                record,
                open_count: 1,
                error: false,
                flush_due: None,
                blocks: BTreeSet::new(),
                dirty_bytes: 0,
                flushing: false,
                epoch: 0,
            },
        );
        Ok(())
    }

    /// [`file_open_ex`](Self::file_open_ex) of a file kept in external storage (not local).
    pub fn file_open(&self, file_id: &str, file_size: Option<u64>) -> Result<()> {
        self.file_open_ex(file_id, file_size, false)
    }

    /// Closes one open of a file (the reference's `FileCloseEx`). `flush`:
    /// [`FlushMode::Immediate`] flushes now and returns the flush's error (the file is closed
    /// all the same); [`FlushMode::Delayed`] leaves it to the write-back thread;
    /// [`FlushMode::None`] leaves unflushed data as it is: closed by its last open, the file
    /// is then an orphan until opened or flushed.
    pub fn file_close_ex(&self, file_id: &str, flush: FlushMode) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        {
            let mut state = inner.lock();
            inner.check_open(&state, "file_close")?;
            let delay = inner.options.flush_delay;
            let file = state.file_mut(&key, file_id)?;
            if file.open_count == 0 {
                return Err(not_open("file_close", file_id));
            }
            file.open_count -= 1;
            match flush {
                FlushMode::Immediate => {}
                FlushMode::Delayed => {
                    if file.changed() && file.flush_due.is_none() {
                        file.flush_due = Some(Instant::now() + delay);
                    }
                }
                FlushMode::None => {
                    if file.open_count == 0 {
                        file.flush_due = None;
                    }
                }
            }
        }
        if flush == FlushMode::Immediate {
            self.inner.flush_file(&key, file_id)?;
        }
        Ok(())
    }

    /// [`file_close_ex`](Self::file_close_ex) with [`FlushMode::Delayed`].
    pub fn file_close(&self, file_id: &str) -> Result<()> {
        self.file_close_ex(file_id, FlushMode::Delayed)
    }

    /// Whether the vault holds the file.
    pub fn file_exists(&self, file_id: &str) -> Result<bool> {
        let key = self.inner.key_of(file_id);
        let state = self.inner.lock();
        self.inner.check_open(&state, "file_exists")?;
        Ok(state.files.contains_key(&key))
    }

    /// The file's application-defined size.
    pub fn file_get_size(&self, file_id: &str) -> Result<u64> {
        let key = self.inner.key_of(file_id);
        let state = self.inner.lock();
        self.inner.check_open(&state, "file_get_size")?;
        Ok(state.file(&key, file_id)?.record.size)
    }

    /// What the vault knows about the file's state.
    pub fn file_get_status(&self, file_id: &str) -> Result<FileStatus> {
        let key = self.inner.key_of(file_id);
        let state = self.inner.lock();
        self.inner.check_open(&state, "file_get_status")?;
        Ok(status_of(state.file(&key, file_id)?))
    }

    /// Removes the file with its data (flushed or not) and tags. Opens of it end: later calls
    /// with its id fail with `ERROR_FILE_NOT_FOUND` until it is opened again.
    pub fn file_delete(&self, file_id: &str) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        let mut state = inner.lock();
        inner.check_open(&state, "file_delete")?;
        let file = state.file(&key, file_id)?;
        let num = file.record.num;
        let blocks: Vec<BlockIndex> = file.blocks.iter().copied().collect();
        let txn = inner.begin_write()?;
        {
            let mut files = txn
                .open_table(FILES)
                .map_err(|e| storage("opening the file table", e))?;
            files
                .remove(key.as_str())
                .map_err(|e| storage("removing a file record", e))?;
            let mut metas = txn
                .open_table(BLOCKS)
                .map_err(|e| storage("opening the block table", e))?;
            for b in &blocks {
                metas
                    .remove((num.0, b.0))
                    .map_err(|e| storage("removing a block", e))?;
            }
            let mut tags = txn
                .open_table(TAGS)
                .map_err(|e| storage("opening the tag table", e))?;
            tags.retain_in((num.0, 0)..=(num.0, u16::MAX), |_, _| false)
                .map_err(|e| storage("removing tags", e))?;
        }
        inner.commit(&mut state, txn, "file_delete")?;
        for b in blocks {
            state.set_block(num, b, None);
        }
        state.files.remove(&key);
        state.keys.remove(&num);
        inner.reclaim(&mut state)
    }

    /// Gives a file a new id (a rename), keeping its data, tags, state and opens. Fails with
    /// `ERROR_ALREADY_EXISTS` when another file has the new id.
    pub fn file_change_id(&self, file_id: &str, new_file_id: &str) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        let new_key = inner.key_of(new_file_id);
        let mut state = inner.lock();
        inner.check_open(&state, "file_change_id")?;
        if new_key != key && state.files.contains_key(&new_key) {
            return Err(Error::from_code(
                code::ERROR_ALREADY_EXISTS,
                format!("file_change_id: file {new_file_id:?} is in the vault already"),
            ));
        }
        let mut record = state.file(&key, file_id)?.record.clone();
        record.id = new_file_id.to_owned();
        let txn = inner.begin_write()?;
        {
            let mut files = txn
                .open_table(FILES)
                .map_err(|e| storage("opening the file table", e))?;
            files
                .remove(key.as_str())
                .map_err(|e| storage("removing a file record", e))?;
        }
        Inner::put_record(&txn, &new_key, &record)?;
        inner.commit(&mut state, txn, "file_change_id")?;
        if let Some(mut file) = state.files.remove(&key) {
            file.record = record;
            state.keys.insert(file.record.num, new_key.clone());
            state.files.insert(new_key, file);
        }
        Ok(())
    }

    /// The ids of the files `mode` selects, sorted (the reference's `EnumerateCachedFiles`).
    pub fn enumerate_cached_files(&self, mode: EnumMode) -> Result<Vec<String>> {
        let state = self.inner.lock();
        self.inner.check_open(&state, "enumerate_cached_files")?;
        let mut ids: Vec<String> = state
            .files
            .values()
            .filter(|f| {
                let status = status_of(f);
                match mode {
                    EnumMode::All => true,
                    EnumMode::Changed => status.contains(FileStatus::CHANGED),
                    EnumMode::Unchanged => !status.contains(FileStatus::CHANGED),
                    EnumMode::Local => status.contains(FileStatus::LOCAL),
                    EnumMode::Orphan => status.contains(FileStatus::ORPHAN),
                }
            })
            .map(|f| f.record.id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Ends an error state so requests are sent again: `Some(id)` that of one file
    /// (`RWRESULT_FILE_FAILURE`), `None` the vault's (`RWRESULT_PERMANENT_FAILURE`).
    pub fn reset_error_state(&self, file_id: Option<&str>) -> Result<()> {
        let mut state = self.inner.lock();
        self.inner.check_open(&state, "reset_error_state")?;
        match file_id {
            None => state.global_error = false,
            Some(id) => {
                let key = self.inner.key_of(id);
                state.file_mut(&key, id)?.error = false;
            }
        }
        Ok(())
    }

    /// Flushes (`FlushMode::Immediate`) or schedules (`Delayed`) every changed file, orphans
    /// included, then closes the vault (the reference's `CloseCache`). Data that could not be
    /// flushed stays in the vault and its files are orphans at the next open. Later calls fail
    /// with `ERROR_NOT_READY`. Returns the first flush error.
    pub fn close_cache(&self, flush: FlushMode) -> Result<()> {
        let result = match flush {
            FlushMode::Immediate => self.flush_cache(),
            FlushMode::Delayed | FlushMode::None => Ok(()),
        };
        self.shut_down()?;
        result
    }

    fn shut_down(&self) -> Result<()> {
        {
            let mut state = self.inner.lock();
            if state.closed {
                return Ok(());
            }
            state.closed = true;
            self.inner.sync(&mut state)?;
        }
        self.inner.wake.notify_all();
        let handle = self
            .flusher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        Ok(())
    }
}

impl Drop for Vault {
    /// Stops the write-back thread and makes every commit durable; flushes nothing.
    fn drop(&mut self) {
        if let Err(e) = self.shut_down() {
            tracing::warn!("closing the vault: {e}");
        }
    }
}

pub(crate) fn status_of(file: &FileState) -> FileStatus {
    let mut status = FileStatus::empty();
    if file.open_count > 0 {
        status |= FileStatus::OPEN;
    }
    if file.changed() {
        status |= FileStatus::CHANGED;
        if file.open_count == 0 {
            status |= FileStatus::ORPHAN;
        }
    }
    if file.record.local {
        status |= FileStatus::LOCAL;
    }
    if file.error {
        status |= FileStatus::ERROR;
    }
    status
}

/// Rebuilds the in-memory index from the tables, checking every record, and the data file's
/// free slots from it (what a transaction that never committed wrote is free again); cuts
/// the data file after its last used slot.
fn load_index(db: &Database, data: &DataFile, journaling: bool, state: &mut State) -> Result<()> {
    let txn = db
        .begin_read()
        .map_err(|e| storage("beginning the index load", e))?;
    let files = txn
        .open_table(FILES)
        .map_err(|e| storage("opening the file table", e))?;
    for entry in files.iter().map_err(|e| storage("reading files", e))? {
        let (k, v) = entry.map_err(|e| storage("reading files", e))?;
        let key = k.value().to_owned();
        let record = FileRecord::decode(&key, v.value())?;
        state.keys.insert(record.num, key.clone());
        state.files.insert(
            key,
            FileState {
                record,
                open_count: 0,
                error: false,
                flush_due: None,
                blocks: BTreeSet::new(),
                dirty_bytes: 0,
                flushing: false,
                epoch: 0,
            },
        );
    }
    let blocks = txn
        .open_table(BLOCKS)
        .map_err(|e| storage("opening the block table", e))?;
    for entry in blocks.iter().map_err(|e| storage("reading blocks", e))? {
        let (k, v) = entry.map_err(|e| storage("reading blocks", e))?;
        let (file, block) = k.value();
        let (file, block) = (FileNum(file), BlockIndex(block));
        let meta = BlockMeta::decode(file, block, v.value())?;
        if !state.keys.contains_key(&file) {
            return Err(corrupt(format!(
                "block {} names file #{} that the vault does not hold, so the index",
                block.0, file.0
            )));
        }
        if meta.present.is_empty() || meta.stored.map(|s| s.len) != Some(meta.present.end()) {
            return Err(corrupt(format!(
                "the index of block {} of file #{} (its data does not match its ranges)",
                block.0, file.0
            )));
        }
        state.set_block(file, block, Some(meta));
    }
    let used = state
        .blocks
        .values()
        .filter_map(|b| b.meta.stored.map(|s| s.slot))
        .collect();
    state.slots = SlotMap::rebuild(journaling, used).map_err(|slot| {
        corrupt(format!(
            "the index of {} (two blocks name slot {})",
            data.path().display(),
            slot.0
        ))
    })?;
    data.truncate(state.slots.end())
}
