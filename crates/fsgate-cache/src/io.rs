//! Reading, writing and resizing files: blocks, fetching gaps through `on_read_data`, and
//! eviction of clean blocks under the size limit.

use std::ops::Range;
use std::time::Instant;

use fsgate_core::{Error, Result};
use redb::{ReadableTable, WriteTransaction};

use crate::error::{file_failure, full, modified, not_open, permanent_failure, storage, transient};
use crate::events::{ReadDataParams, RwResult};
use crate::range_set::RangeSet;
use crate::record::{
    decode_data, encode_data, held_bytes, BlockIndex, BlockMeta, FileNum, FileRecord,
};
use crate::vault::{Inner, State, Vault, BLOCKS, DATA};

/// Largest range one `on_read_data` asks for.
const MAX_TRANSFER: u64 = 8 << 20;

/// Bytes fetched from external storage for one range.
struct Fetched {
    position: u64,
    bytes: Vec<u8>,
    /// `RWRESULT_RANGE_BEYOND_EOF`: external storage ends here.
    eof: Option<u64>,
}

/// One block's part of a byte range.
struct Piece {
    block: BlockIndex,
    /// Offsets within the block.
    within: Range<u32>,
    /// Offset of the piece in the range.
    offset: usize,
}

/// A read's copy out of the vault, planned under the lock and run without it.
struct CopyPlan {
    txn: redb::ReadTransaction,
    num: FileNum,
    /// Each block piece of the read, with the bytes its block held (`None`: none).
    blocks: Vec<(Piece, Option<RangeSet>)>,
}

impl CopyPlan {
    /// Copies the planned bytes into `out` (as long as the read): held bytes, zeros
    /// elsewhere. Each block's checksum is checked first; a block that fails it fails the
    /// read with `ERROR_INVALID_DATA`.
    fn copy_into(self, out: &mut [u8]) -> Result<()> {
        let data = self
            .txn
            .open_table(DATA)
            .map_err(|e| storage("opening the data table", e))?;
        for (piece, present) in &self.blocks {
            let dst = &mut out
                [piece.offset..piece.offset + (piece.within.end - piece.within.start) as usize];
            let Some(present) = present else {
                dst.fill(0);
                continue;
            };
            let value = data
                .get((self.num.0, piece.block.0))
                .map_err(|e| storage("reading a block", e))?;
            let bytes = held_bytes(
                self.num,
                piece.block,
                value.as_ref().map(|v| v.value()),
                present,
            )?;
            let mut cursor = piece.within.start;
            for r in present.ranges() {
                let s = r.start.max(piece.within.start);
                let e = r.end.min(piece.within.end);
                if s >= e {
                    continue;
                }
                dst[(cursor - piece.within.start) as usize..(s - piece.within.start) as usize]
                    .fill(0);
                dst[(s - piece.within.start) as usize..(e - piece.within.start) as usize]
                    .copy_from_slice(&bytes[s as usize..e as usize]);
                cursor = e;
            }
            dst[(cursor - piece.within.start) as usize..].fill(0);
        }
        Ok(())
    }
}

/// Splits `range` of a file into block pieces.
fn pieces(block_size: u64, range: Range<u64>) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos < range.end {
        let block = pos / block_size;
        let block_start = block * block_size;
        let end = range.end.min(block_start + block_size);
        out.push(Piece {
            block: BlockIndex(block),
            // Both offsets are below the block size, a u32.
            within: (pos - block_start) as u32..(end - block_start) as u32,
            offset: (pos - range.start) as usize,
        });
        pos = end;
    }
    out
}

/// Reads a block's stored bytes (checked) in a write transaction.
fn load_block(txn: &WriteTransaction, file: FileNum, block: BlockIndex) -> Result<Vec<u8>> {
    let data = txn
        .open_table(DATA)
        .map_err(|e| storage("opening the data table", e))?;
    let value = data
        .get((file.0, block.0))
        .map_err(|e| storage("reading a block", e))?;
    match value {
        Some(v) => decode_data(file, block, v.value()).map(<[u8]>::to_vec),
        None => Ok(Vec::new()),
    }
}

/// Stores a block's bytes and index entry.
fn store_block(
    txn: &WriteTransaction,
    file: FileNum,
    block: BlockIndex,
    meta: &BlockMeta,
    bytes: &[u8],
) -> Result<()> {
    let mut data = txn
        .open_table(DATA)
        .map_err(|e| storage("opening the data table", e))?;
    let mut metas = txn
        .open_table(BLOCKS)
        .map_err(|e| storage("opening the block table", e))?;
    if meta.present.is_empty() {
        data.remove((file.0, block.0))
            .map_err(|e| storage("removing a block", e))?;
        metas
            .remove((file.0, block.0))
            .map_err(|e| storage("removing a block", e))?;
    } else {
        data.insert(
            (file.0, block.0),
            encode_data(file, block, bytes).as_slice(),
        )
        .map_err(|e| storage("writing a block", e))?;
        metas
            .insert((file.0, block.0), meta.encode(file, block).as_slice())
            .map_err(|e| storage("writing a block index entry", e))?;
    }
    Ok(())
}

impl Inner {
    /// The byte ranges of `range` that must come from external storage: not in the vault and
    /// before the external file's known end. Empty for local files.
    fn gaps(&self, state: &State, record: &FileRecord, range: Range<u64>) -> Vec<Range<u64>> {
        if record.local {
            return Vec::new();
        }
        let end = range.end.min(record.external_eof.unwrap_or(u64::MAX));
        if range.start >= end {
            return Vec::new();
        }
        let bs = self.block_size();
        let mut out: Vec<Range<u64>> = Vec::new();
        for piece in pieces(bs, range.start..end) {
            let base = piece.block.0 * bs;
            let gaps = match state.blocks.get(&(record.num, piece.block)) {
                Some(b) => b.meta.present.gaps(piece.within.clone()),
                None => vec![piece.within.clone()],
            };
            for g in gaps {
                let abs = base + u64::from(g.start)..base + u64::from(g.end);
                match out.last_mut() {
                    Some(last) if last.end == abs.start => last.end = abs.end,
                    _ => out.push(abs),
                }
            }
        }
        out
    }

    /// Fails when a request for the file may not be sent.
    fn check_requests_allowed(state: &State, key: &str, file_id: &str) -> Result<()> {
        if state.global_error {
            return Err(permanent_failure());
        }
        if state.file(key, file_id)?.error {
            return Err(file_failure(file_id));
        }
        Ok(())
    }

    /// Asks the application for `range`, applying its result code to the error states.
    fn fetch(&self, key: &str, file_id: &str, size: u64, range: Range<u64>) -> Result<Fetched> {
        let len = (range.end - range.start) as usize;
        let mut buffer = vec![0u8; len];
        let mut params = ReadDataParams {
            file_id,
            size,
            position: range.start,
            buffer: &mut buffer,
            bytes_read: 0,
            result_code: RwResult::RWRESULT_SUCCESS,
        };
        self.events.on_read_data(&mut params);
        let n = params.bytes_read.min(len);
        let result = params.result_code;
        buffer.truncate(n);
        let fetched = |eof| Fetched {
            position: range.start,
            bytes: buffer,
            eof,
        };
        match result {
            RwResult::RWRESULT_SUCCESS | RwResult::RWRESULT_PARTIAL if n > 0 => Ok(fetched(None)),
            RwResult::RWRESULT_RANGE_BEYOND_EOF => Ok(fetched(Some(range.start + n as u64))),
            RwResult::RWRESULT_FILE_MODIFIED_EXTERNALLY => {
                let mut state = self.lock();
                self.drop_clean(&mut state, key)?;
                Err(modified(file_id, "externally"))
            }
            RwResult::RWRESULT_FILE_MODIFIED_LOCALLY => Err(modified(file_id, "locally")),
            RwResult::RWRESULT_FILE_FAILURE => {
                if let Some(f) = self.lock().files.get_mut(key) {
                    f.error = true;
                }
                Err(file_failure(file_id))
            }
            RwResult::RWRESULT_PERMANENT_FAILURE => {
                self.lock().global_error = true;
                Err(permanent_failure())
            }
            _ => Err(transient("on_read_data", file_id)),
        }
    }

    /// Merges fetched bytes into the parts of their blocks the vault does not hold.
    fn merge(
        &self,
        state: &mut State,
        key: &str,
        file_id: &str,
        fetched: &[Fetched],
    ) -> Result<()> {
        let bs = self.block_size();
        let mut record = state.file(key, file_id)?.record.clone();
        let num = record.num;
        let txn = self.begin_write()?;
        let mut changed = Vec::new();
        let mut record_changed = false;
        for f in fetched {
            if let Some(eof) = f.eof {
                if record.external_eof.is_none_or(|e| eof < e) {
                    record.external_eof = Some(eof);
                    record_changed = true;
                }
            }
            // Bytes past the external end (a shrink not yet flushed) are not the file's.
            let end = (f.position + f.bytes.len() as u64)
                .min(record.size)
                .min(record.external_eof.unwrap_or(u64::MAX));
            if f.position >= end {
                continue;
            }
            for piece in pieces(bs, f.position..end) {
                let mut meta = state
                    .blocks
                    .get(&(num, piece.block))
                    .map(|b| b.meta.clone())
                    .unwrap_or_default();
                let gaps = meta.present.gaps(piece.within.clone());
                if gaps.is_empty() {
                    continue;
                }
                let mut bytes = load_block(&txn, num, piece.block)?;
                let need = piece.within.end as usize;
                if bytes.len() < need {
                    bytes.resize(need, 0);
                }
                for g in gaps {
                    let src = piece.offset + (g.start - piece.within.start) as usize;
                    let n = (g.end - g.start) as usize;
                    bytes[g.start as usize..g.end as usize].copy_from_slice(&f.bytes[src..src + n]);
                    meta.present.insert(g);
                }
                store_block(&txn, num, piece.block, &meta, &bytes)?;
                changed.push((piece.block, meta));
            }
        }
        if record_changed {
            Inner::put_record(&txn, key, &record)?;
        }
        self.commit(state, txn, "file_read")?;
        for (block, meta) in changed {
            state.set_block(num, block, Some(meta));
        }
        if let Some(f) = state.files.get_mut(key) {
            f.record.external_eof = record.external_eof;
        }
        Ok(())
    }

    /// Fetches every gap of `range` from external storage into the vault.
    pub(crate) fn fill(&self, key: &str, file_id: &str, range: Range<u64>) -> Result<()> {
        loop {
            let (gaps, size, limit, epoch) = {
                let state = self.lock();
                self.check_open(&state, "file_read")?;
                let file = state.file(key, file_id)?;
                let epoch = file.epoch;
                let record = &file.record;
                let range = range.start.min(record.size)..range.end.min(record.size);
                let gaps = self.gaps(&state, record, range);
                if gaps.is_empty() {
                    return Ok(());
                }
                Self::check_requests_allowed(&state, key, file_id)?;
                let limit = record.size.min(record.external_eof.unwrap_or(u64::MAX));
                (gaps, record.size, limit, epoch)
            };
            // Ask for whole blocks (clamped to the file), at most MAX_TRANSFER at a time.
            let bs = self.block_size();
            let mut requests: Vec<Range<u64>> = Vec::new();
            for g in gaps {
                let start = g.start / bs * bs;
                let end = g.end.div_ceil(bs).saturating_mul(bs).min(limit);
                match requests.last_mut() {
                    Some(last) if last.end >= start && end - last.start <= MAX_TRANSFER => {
                        last.end = last.end.max(end);
                    }
                    _ => {
                        let mut s = start;
                        while s < end {
                            let e = end.min(s + MAX_TRANSFER);
                            requests.push(s..e);
                            s = e;
                        }
                    }
                }
            }
            // Each answer is merged before the next request, so a fill holds at most one
            // request's bytes in memory.
            for r in requests {
                let fetched = self.fetch(key, file_id, size, r)?;
                let eof = fetched.eof.is_some();
                let mut state = self.lock();
                self.check_open(&state, "file_read")?;
                if state.file(key, file_id)?.epoch != epoch {
                    // The file was cut or flushed meanwhile: these bytes may be stale.
                    break;
                }
                self.merge(&mut state, key, file_id, std::slice::from_ref(&fetched))?;
                if eof {
                    break;
                }
            }
        }
    }

    /// What a read of `len` bytes at `position` copies out, taken under the lock: a redb
    /// read transaction begun while the index matches the tables (every commit is made
    /// under the lock), and the index entries of the blocks it covers, marked used. The
    /// copy itself ([`CopyPlan::copy_into`]) runs without the lock, so reads of cached data
    /// do not wait for each other nor for writers.
    fn plan_copy(
        &self,
        state: &mut State,
        num: FileNum,
        position: u64,
        len: usize,
    ) -> Result<CopyPlan> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| storage("beginning a read", e))?;
        let bs = self.block_size();
        let mut blocks = Vec::new();
        for piece in pieces(bs, position..position + len as u64) {
            let meta = state
                .blocks
                .get(&(num, piece.block))
                .map(|b| b.meta.present.clone());
            if meta.is_some() {
                state.touch(num, piece.block);
            }
            blocks.push((piece, meta));
        }
        Ok(CopyPlan { txn, num, blocks })
    }

    /// Evicts least recently used clean blocks, other than those of `keep` (the blocks about
    /// to be written, whose stored size `needed` counts on), until `needed` more bytes fit
    /// under the size limit. Returns whether they fit.
    pub(crate) fn make_room(
        &self,
        state: &mut State,
        needed: u64,
        keep: &[(FileNum, BlockIndex)],
    ) -> Result<bool> {
        let limit = self.options.size_limit;
        if limit == 0 || state.current_size + needed <= limit {
            return Ok(true);
        }
        let mut excess = state.current_size + needed - limit;
        let mut victims = Vec::new();
        for &(_, file, block) in &state.lru {
            if excess == 0 {
                break;
            }
            if keep.contains(&(file, block)) {
                continue;
            }
            let len = state
                .blocks
                .get(&(file, block))
                .map_or(0, |b| b.stored_len());
            excess = excess.saturating_sub(len);
            victims.push((file, block));
        }
        if !victims.is_empty() {
            let txn = self.begin_write()?;
            for &(file, block) in &victims {
                store_block(&txn, file, block, &BlockMeta::default(), &[])?;
            }
            self.commit(state, txn, "evict")?;
            for (file, block) in victims {
                state.set_block(file, block, None);
            }
        }
        Ok(excess == 0)
    }

    /// Brings the vault back under its size limit after a fill. Filling in blocks that hold
    /// dirty bytes grows what cannot be evicted, so when evicting clean blocks is not enough
    /// this flushes and evicts what became clean; with storage unreachable the limit stays
    /// passed.
    fn settle_size(&self) -> Result<()> {
        {
            let mut state = self.lock();
            self.check_open(&state, "file_read")?;
            if self.make_room(&mut state, 0, &[])? {
                return Ok(());
            }
        }
        let _ = self.flush_all();
        let mut state = self.lock();
        self.check_open(&state, "file_read")?;
        self.make_room(&mut state, 0, &[]).map(|_| ())
    }

    /// Drops the file's clean bytes (after `RWRESULT_FILE_MODIFIED_EXTERNALLY`, or
    /// `file_purge`): clean blocks go, blocks holding dirty bytes keep only those. Local
    /// files hold the only copy of their data and keep it.
    fn drop_clean(&self, state: &mut State, key: &str) -> Result<()> {
        let Some(file) = state.files.get_mut(key) else {
            return Ok(());
        };
        if file.record.local {
            return Ok(());
        }
        file.epoch += 1;
        let num = file.record.num;
        let blocks: Vec<BlockIndex> = file.blocks.iter().copied().collect();
        let txn = self.begin_write()?;
        let mut changed = Vec::new();
        for b in blocks {
            let Some(block) = state.blocks.get(&(num, b)) else {
                continue;
            };
            if block.meta.present == block.meta.dirty {
                continue;
            }
            let meta = BlockMeta {
                generation: block.meta.generation,
                present: block.meta.dirty.clone(),
                dirty: block.meta.dirty.clone(),
            };
            let mut bytes = if meta.present.is_empty() {
                Vec::new()
            } else {
                load_block(&txn, num, b)?
            };
            bytes.truncate(meta.present.end() as usize);
            store_block(&txn, num, b, &meta, &bytes)?;
            changed.push((b, meta));
        }
        if changed.is_empty() {
            return Ok(());
        }
        self.commit(state, txn, "drop_clean")?;
        for (b, meta) in changed {
            state.set_block(num, b, Some(meta).filter(|m| !m.present.is_empty()));
        }
        Ok(())
    }

    /// Sets a file's size. Shrinking drops the bytes past the new end (dirty ones too) and
    /// remembers that external storage holds nothing there the application can see;
    /// `external` growth (the application reports the external file's size) forgets that.
    pub(crate) fn resize(
        &self,
        state: &mut State,
        key: &str,
        file_id: &str,
        size: u64,
        external: bool,
    ) -> Result<()> {
        let bs = self.block_size();
        let file = state.file(key, file_id)?;
        let mut record = file.record.clone();
        let num = record.num;
        let old = record.size;
        if size == old {
            return Ok(());
        }
        let mut changed = Vec::new();
        let txn = self.begin_write()?;
        if size < old {
            let first_gone = size.div_ceil(bs);
            for &b in file.blocks.range(BlockIndex(size / bs)..) {
                if b.0 >= first_gone {
                    store_block(&txn, num, b, &BlockMeta::default(), &[])?;
                    changed.push((b, None));
                } else {
                    let cut = (size - b.0 * bs) as u32;
                    let Some(state_block) = state.blocks.get(&(num, b)) else {
                        continue;
                    };
                    let mut meta = state_block.meta.clone();
                    meta.present.truncate(cut);
                    meta.dirty.truncate(cut);
                    meta.generation += 1;
                    let mut bytes = load_block(&txn, num, b)?;
                    bytes.truncate(meta.present.end() as usize);
                    store_block(&txn, num, b, &meta, &bytes)?;
                    changed.push((b, Some(meta)));
                }
            }
            if !record.local {
                record.external_eof = Some(record.external_eof.map_or(size, |e| e.min(size)));
            }
        } else if external {
            record.external_eof = None;
        } else if !record.local {
            // A local grow: the new bytes are zeros, whatever external storage holds there.
            record.external_eof = Some(record.external_eof.map_or(old, |e| e.min(old)));
        }
        record.size = size;
        record.size_dirty = !record.local && (record.size_dirty || !external);
        Inner::put_record(&txn, key, &record)?;
        self.commit(state, txn, "file_set_size")?;
        for (b, meta) in changed {
            state.set_block(num, b, meta.filter(|m| !m.present.is_empty()));
        }
        let delay = self.options.flush_delay;
        if let Some(f) = state.files.get_mut(key) {
            f.record = record;
            f.epoch += 1;
            if f.changed() && f.flush_due.is_none() && f.open_count > 0 {
                f.flush_due = Some(Instant::now() + delay);
            }
        }
        Ok(())
    }

    /// Writes `data` at `position` in one transaction, or fails with `ERROR_DISK_FULL`
    /// when the size limit leaves no room.
    fn write_once(
        &self,
        state: &mut State,
        key: &str,
        file_id: &str,
        position: u64,
        data: &[u8],
    ) -> Result<()> {
        let bs = self.block_size();
        let file = state.file(key, file_id)?;
        if file.open_count == 0 {
            return Err(not_open("file_write", file_id));
        }
        let mut record = file.record.clone();
        let num = record.num;
        let end = position + data.len() as u64;
        let pieces = pieces(bs, position..end);
        let growth: u64 = pieces
            .iter()
            .map(|p| {
                let stored = state
                    .blocks
                    .get(&(num, p.block))
                    .map_or(0, |b| b.stored_len());
                u64::from(p.within.end).saturating_sub(stored)
            })
            .sum();
        let keep: Vec<(FileNum, BlockIndex)> = pieces.iter().map(|p| (num, p.block)).collect();
        if !self.make_room(state, growth, &keep)? {
            return Err(full(self.options.size_limit));
        }
        let txn = self.begin_write()?;
        let mut changed = Vec::with_capacity(pieces.len());
        for piece in &pieces {
            let mut meta = state
                .blocks
                .get(&(num, piece.block))
                .map(|b| b.meta.clone())
                .unwrap_or_default();
            let mut bytes = load_block(&txn, num, piece.block)?;
            let need = piece.within.end as usize;
            if bytes.len() < need {
                bytes.resize(need, 0);
            }
            let len = (piece.within.end - piece.within.start) as usize;
            bytes[piece.within.start as usize..need]
                .copy_from_slice(&data[piece.offset..piece.offset + len]);
            meta.present.insert(piece.within.clone());
            if !record.local {
                meta.dirty.insert(piece.within.clone());
            }
            meta.generation += 1;
            store_block(&txn, num, piece.block, &meta, &bytes)?;
            changed.push((piece.block, meta));
        }
        let extends = end > record.size;
        if extends {
            if !record.local {
                // Bytes between the old end and the write are zeros, not external bytes.
                let old = record.size;
                record.external_eof = Some(record.external_eof.map_or(old, |e| e.min(old)));
            }
            record.size = end;
            record.size_dirty = !record.local;
            Inner::put_record(&txn, key, &record)?;
        }
        self.commit(state, txn, "file_write")?;
        for (block, meta) in changed {
            state.set_block(num, block, Some(meta));
        }
        let delay = self.options.flush_delay;
        if let Some(f) = state.files.get_mut(key) {
            f.record = record;
            if extends {
                f.epoch += 1;
            }
            if f.changed() && f.flush_due.is_none() {
                f.flush_due = Some(Instant::now() + delay);
            }
        }
        Ok(())
    }
}

impl Vault {
    /// Reads the file's bytes at `position` into `buffer` and returns how many were read:
    /// `buffer.len()`, or fewer at the end of the file's size (0 at or past it). The file must
    /// be open (`ERROR_INVALID_HANDLE`).
    ///
    /// Bytes the vault does not hold are fetched first with `on_read_data`, in whole blocks;
    /// bytes of local files, and past a known end of the external file, read as zeros. A
    /// fetch's failure fails the read with the code its result maps to (see [`RwResult`]);
    /// a block whose checksum fails gives `ERROR_INVALID_DATA`, never its bytes.
    pub fn file_read(&self, file_id: &str, position: u64, buffer: &mut [u8]) -> Result<usize> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        let end = position.saturating_add(buffer.len() as u64);
        let mut fetched = false;
        let (plan, n) = loop {
            let mut state = inner.lock();
            inner.check_open(&state, "file_read")?;
            let file = state.file(&key, file_id)?;
            if file.open_count == 0 {
                return Err(not_open("file_read", file_id));
            }
            let record = &file.record;
            let num = record.num;
            let size = record.size;
            // Fetch what is missing once; bytes a racing cut or eviction took meanwhile
            // read as zeros or are fetched by the next read, as before the fetch.
            if !fetched
                && !inner
                    .gaps(&state, record, position.min(size)..end.min(size))
                    .is_empty()
            {
                drop(state);
                inner.fill(&key, file_id, position..end)?;
                fetched = true;
                continue;
            }
            let n = size.saturating_sub(position).min(buffer.len() as u64) as usize;
            break (inner.plan_copy(&mut state, num, position, n)?, n);
        };
        plan.copy_into(&mut buffer[..n])?;
        if fetched {
            inner.settle_size()?;
        }
        Ok(n)
    }

    /// Fetches the bytes of `range` the vault does not hold yet (clamped to the file's size)
    /// with `on_read_data`, as a read of that range would, without copying anything out: a
    /// drive reading a file sequentially asks for the next few MiB in one request instead of
    /// a request per read. The file must be open. Not in the reference (its `FileOpen`
    /// prefetches whole files).
    pub fn file_prefetch(&self, file_id: &str, range: std::ops::Range<u64>) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        {
            let state = inner.lock();
            inner.check_open(&state, "file_prefetch")?;
            if state.file(&key, file_id)?.open_count == 0 {
                return Err(not_open("file_prefetch", file_id));
            }
        }
        inner.fill(&key, file_id, range)?;
        inner.settle_size()
    }

    /// Writes `data` at `position`, all of it or nothing, and marks it dirty (local files: kept,
    /// never dirty). A write past the end extends the file's size. The file must be open.
    ///
    /// The bytes are in the vault when this returns (durable at once with journaling on) and
    /// reach external storage at the next flush. When the size limit leaves no room after
    /// evicting every clean block, the vault flushes all files once and evicts again; still
    /// no room fails with `ERROR_DISK_FULL`.
    pub fn file_write(&self, file_id: &str, position: u64, data: &[u8]) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        if position.checked_add(data.len() as u64).is_none() {
            return Err(Error::invalid_argument(
                "position",
                "position + length overflows",
            ));
        }
        let first = {
            let mut state = inner.lock();
            inner.check_open(&state, "file_write")?;
            inner.write_once(&mut state, &key, file_id, position, data)
        };
        match first {
            Err(e) if e.code() == fsgate_core::error::code::ERROR_DISK_FULL => {
                let _ = inner.flush_all();
                let mut state = inner.lock();
                inner.check_open(&state, "file_write")?;
                inner.write_once(&mut state, &key, file_id, position, data)
            }
            other => other,
        }
    }

    /// Drops the file's clean cached bytes, so the next reads fetch them again; unflushed
    /// bytes, the size and tags stay (a local file keeps everything). For an application that learns the external file
    /// changed (a new version in an object store) — what `RWRESULT_FILE_MODIFIED_EXTERNALLY`
    /// does from inside a read. Not in the reference.
    pub fn file_purge(&self, file_id: &str) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        let mut state = inner.lock();
        inner.check_open(&state, "file_purge")?;
        state.file(&key, file_id)?;
        inner.drop_clean(&mut state, &key)
    }

    /// Sets the file's application-defined size (the reference's `FileSetSize`). Shrinking
    /// drops the bytes past the new end. Without `fetch_missing_data` the change is local
    /// (a truncate): bytes a grow adds read as zeros, and the new size is flushed to external
    /// storage (in `on_write_data`'s `size`, after cutting the external file where a shrink
    /// left it). With it the size is external storage's (it changed there): nothing is
    /// flushed for it, and a grow fetches the new bytes now with `on_read_data`.
    pub fn file_set_size(&self, file_id: &str, size: u64, fetch_missing_data: bool) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        let old = {
            let mut state = inner.lock();
            inner.check_open(&state, "file_set_size")?;
            let old = state.file(&key, file_id)?.record.size;
            inner.resize(&mut state, &key, file_id, size, fetch_missing_data)?;
            old
        };
        if fetch_missing_data && size > old {
            inner.fill(&key, file_id, old..size)?;
            inner.settle_size()?;
        }
        Ok(())
    }
}
