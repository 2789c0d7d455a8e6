//! Reading, writing and resizing files: blocks, fetching gaps through `on_read_data`, and
//! eviction of clean blocks under the size limit.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Instant;

use fsgate_core::{Error, Result};
use redb::WriteTransaction;

use crate::error::{file_failure, full, modified, not_open, permanent_failure, storage, transient};
use crate::events::{ReadDataParams, RwResult};
use crate::range_set::RangeSet;
use crate::record::{
    check_data, data_checksum, BlockIndex, BlockMeta, FileNum, FileRecord, Stored,
};
use crate::slots::Slot;
use crate::vault::{Inner, State, Vault, BLOCKS};

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

impl Piece {
    fn len(&self) -> usize {
        (self.within.end - self.within.start) as usize
    }
}

/// What a read found of one block in the index.
enum Held {
    /// Nothing: the piece reads as zeros.
    Nothing,
    /// Bytes from the block's start to the end of its slot's bytes, and zeros after.
    Prefix(Stored),
    /// These ranges of its slot's bytes, and zeros elsewhere.
    Ranges(RangeSet, Stored),
}

/// A read's copy out of the data file, planned under the lock and run without it. The plan
/// pins the slots it names, so they keep their bytes until it is dropped.
struct CopyPlan<'a> {
    inner: &'a Inner,
    pin: u64,
    num: FileNum,
    blocks: Vec<(Piece, Held)>,
}

impl Drop for CopyPlan<'_> {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.slots.unpin(self.pin);
        if let Err(e) = self.inner.reclaim(&mut state) {
            tracing::warn!("freeing vault slots: {e}");
        }
    }
}

impl CopyPlan<'_> {
    /// Copies the planned bytes into `out` (as long as the read): held bytes, zeros
    /// elsewhere. Blocks held from their start that lie in consecutive slots are read with
    /// one `pread` straight into `out`; each block's checksum is checked, and a block that
    /// fails it fails the read with `ERROR_INVALID_DATA`. Ends the plan, and its pin.
    fn copy_into(self, out: &mut [u8]) -> Result<()> {
        let bs = self.inner.block_size();
        let mut scratch = Vec::new();
        let mut i = 0;
        while i < self.blocks.len() {
            let (piece, held) = &self.blocks[i];
            let dst = &mut out[piece.offset..piece.offset + piece.len()];
            match held {
                Held::Nothing => {
                    dst.fill(0);
                    i += 1;
                }
                Held::Prefix(first)
                    if piece.within.start == 0 && piece.len() >= first.len as usize =>
                {
                    // The run of blocks after it in the next slots, each filling its slot
                    // but the last.
                    let mut run = 1;
                    let mut last = *first;
                    while let Some((next, Held::Prefix(s))) = self.blocks.get(i + run) {
                        if u64::from(last.len) != bs
                            || s.slot.0 != last.slot.0 + 1
                            || next.len() < s.len as usize
                        {
                            break;
                        }
                        last = *s;
                        run += 1;
                    }
                    let start = piece.offset;
                    let len = (run as u64 - 1) * bs + u64::from(last.len);
                    let whole = self
                        .inner
                        .data
                        .read(first.slot, &mut out[start..start + len as usize])?;
                    for (k, (p, h)) in self.blocks[i..i + run].iter().enumerate() {
                        let Held::Prefix(s) = h else { continue };
                        let at = start + k * bs as usize;
                        let bytes = &mut out[at..at + p.len()];
                        if whole {
                            check_data(self.num, p.block, s, Some(&bytes[..s.len as usize]))?;
                        } else {
                            // The file ended inside the run: find the block that is short.
                            self.inner
                                .read_checked(self.num, p.block, s, &mut scratch)?;
                            bytes[..s.len as usize].copy_from_slice(&scratch);
                        }
                        bytes[s.len as usize..].fill(0);
                    }
                    i += run;
                }
                Held::Prefix(stored) => {
                    self.inner
                        .read_checked(self.num, piece.block, stored, &mut scratch)?;
                    let start = piece.within.start as usize;
                    let n = (piece.within.end.min(stored.len) as usize).saturating_sub(start);
                    if n > 0 {
                        dst[..n].copy_from_slice(&scratch[start..start + n]);
                    }
                    dst[n..].fill(0);
                    i += 1;
                }
                Held::Ranges(present, stored) => {
                    self.inner
                        .read_checked(self.num, piece.block, stored, &mut scratch)?;
                    let mut cursor = piece.within.start;
                    for r in present.ranges() {
                        let s = r.start.max(piece.within.start);
                        let e = r.end.min(piece.within.end);
                        if s >= e {
                            continue;
                        }
                        dst[(cursor - piece.within.start) as usize
                            ..(s - piece.within.start) as usize]
                            .fill(0);
                        dst[(s - piece.within.start) as usize..(e - piece.within.start) as usize]
                            .copy_from_slice(&scratch[s as usize..e as usize]);
                        cursor = e;
                    }
                    dst[(cursor - piece.within.start) as usize..].fill(0);
                    i += 1;
                }
            }
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

/// A block's new state in a transaction: its index entry (without its slot yet) and the
/// bytes its slot is to hold, borrowed from the caller's buffer when they are a slice of it.
pub(crate) struct NewBlock<'a> {
    pub(crate) block: BlockIndex,
    pub(crate) meta: BlockMeta,
    pub(crate) bytes: Cow<'a, [u8]>,
}

/// Removes blocks' index entries in `txn`; their slots are given up when
/// [`State::set_block`] drops them after the commit.
pub(crate) fn remove_blocks(
    txn: &WriteTransaction,
    blocks: &[(FileNum, BlockIndex)],
) -> Result<()> {
    let mut metas = txn
        .open_table(BLOCKS)
        .map_err(|e| storage("opening the block table", e))?;
    for (file, block) in blocks {
        metas
            .remove((file.0, block.0))
            .map_err(|e| storage("removing a block", e))?;
    }
    Ok(())
}

impl Inner {
    /// Reads a block's stored bytes into `buf` (resized to them) and checks them.
    pub(crate) fn read_checked(
        &self,
        num: FileNum,
        block: BlockIndex,
        stored: &Stored,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        buf.clear();
        buf.resize(stored.len as usize, 0);
        let whole = self.data.read(stored.slot, buf)?;
        check_data(num, block, stored, whole.then_some(&buf[..]))
    }

    /// A block's stored bytes, checked (empty for a block not stored).
    pub(crate) fn load_block(
        &self,
        num: FileNum,
        block: BlockIndex,
        meta: Option<&BlockMeta>,
    ) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        if let Some(stored) = meta.and_then(|m| m.stored.as_ref()) {
            self.read_checked(num, block, stored, &mut buf)?;
        }
        Ok(buf)
    }

    /// [`load_block`](Self::load_block), zero-extended to at least `end` bytes, for a write
    /// or fetch into `..end`.
    fn load_block_to(
        &self,
        num: FileNum,
        block: BlockIndex,
        meta: Option<&BlockMeta>,
        end: u32,
    ) -> Result<Vec<u8>> {
        let mut bytes = self.load_block(num, block, meta)?;
        if bytes.len() < end as usize {
            bytes.resize(end as usize, 0);
        }
        Ok(bytes)
    }

    /// `block` again with `meta`: its stored bytes, checked against `old`, or none when `meta`
    /// holds nothing (the block leaves the index).
    fn rewritten(
        &self,
        num: FileNum,
        block: BlockIndex,
        meta: BlockMeta,
        old: &BlockMeta,
    ) -> Result<NewBlock<'static>> {
        let bytes = if meta.present.is_empty() {
            Vec::new()
        } else {
            self.load_block(num, block, Some(old))?
        };
        Ok(NewBlock {
            block,
            meta,
            bytes: Cow::Owned(bytes),
        })
    }

    /// Writes `blocks` in `txn`: the bytes of each into a fresh slot of the data file (runs
    /// of consecutive slots with one `pwritev`), its index entry naming the slot; a block
    /// holding nothing leaves the index. Returns the entries to apply with
    /// [`State::set_block`] once `txn` commits, which gives up the slots they replace.
    ///
    /// Slots taken for a transaction that then fails stay unused until the vault is opened
    /// again.
    pub(crate) fn store_blocks(
        &self,
        state: &mut State,
        txn: &WriteTransaction,
        num: FileNum,
        mut blocks: Vec<NewBlock<'_>>,
    ) -> Result<Vec<(BlockIndex, Option<BlockMeta>)>> {
        let stored = blocks.iter().filter(|b| !b.meta.present.is_empty()).count();
        let mut slots = self.allocate(state, stored as u64)?.into_iter();
        for b in &mut blocks {
            if b.meta.present.is_empty() {
                b.meta.stored = None;
                continue;
            }
            let len = b.meta.present.end() as usize;
            match &mut b.bytes {
                Cow::Borrowed(bytes) if bytes.len() >= len => *bytes = &bytes[..len],
                bytes => bytes.to_mut().resize(len, 0),
            }
            let Some(slot) = slots.next() else {
                return Err(storage("allocating vault slots", "too few slots"));
            };
            b.meta.stored = Some(Stored {
                slot,
                len: len as u32,
                crc: data_checksum(num, b.block, &b.bytes),
            });
        }
        let bs = self.block_size();
        let mut run: Vec<&[u8]> = Vec::new();
        let mut run_start = Slot(0);
        let mut run_full = false;
        for b in &blocks {
            let Some(s) = b.meta.stored else { continue };
            if run.is_empty() || !run_full || s.slot.0 != run_start.0 + run.len() as u64 {
                if !run.is_empty() {
                    self.data.write(run_start, &run)?;
                    run.clear();
                }
                run_start = s.slot;
            }
            run.push(&b.bytes);
            run_full = u64::from(s.len) == bs;
        }
        if !run.is_empty() {
            self.data.write(run_start, &run)?;
        }
        let mut metas = txn
            .open_table(BLOCKS)
            .map_err(|e| storage("opening the block table", e))?;
        let mut out = Vec::with_capacity(blocks.len());
        for b in blocks {
            if b.meta.present.is_empty() {
                metas
                    .remove((num.0, b.block.0))
                    .map_err(|e| storage("removing a block", e))?;
                out.push((b.block, None));
            } else {
                metas
                    .insert((num.0, b.block.0), b.meta.encode(num, b.block).as_slice())
                    .map_err(|e| storage("writing a block index entry", e))?;
                out.push((b.block, Some(b.meta)));
            }
        }
        Ok(out)
    }
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
    fn merge(&self, state: &mut State, key: &str, file_id: &str, f: &Fetched) -> Result<()> {
        let bs = self.block_size();
        let mut record = state.file(key, file_id)?.record.clone();
        let num = record.num;
        let mut record_changed = false;
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
        let mut news = Vec::new();
        for piece in pieces(bs, f.position..end.max(f.position)) {
            let old = state.blocks.get(&(num, piece.block)).map(|b| &b.meta);
            let mut meta = old.cloned().unwrap_or_default();
            let gaps = meta.present.gaps(piece.within.clone());
            if gaps.is_empty() {
                continue;
            }
            let src = &f.bytes[piece.offset..piece.offset + piece.len()];
            let bytes = if meta.stored.is_none() && piece.within.start == 0 {
                // A new block from its start: its bytes are the fetched ones, no copy.
                meta.present.insert(piece.within.clone());
                Cow::Borrowed(src)
            } else {
                let mut bytes = self.load_block_to(num, piece.block, old, piece.within.end)?;
                for g in gaps {
                    let from = (g.start - piece.within.start) as usize;
                    let n = (g.end - g.start) as usize;
                    bytes[g.start as usize..g.end as usize].copy_from_slice(&src[from..from + n]);
                    meta.present.insert(g);
                }
                Cow::Owned(bytes)
            };
            news.push(NewBlock {
                block: piece.block,
                meta,
                bytes,
            });
        }
        if news.is_empty() && !record_changed {
            return Ok(());
        }
        let txn = self.begin_write()?;
        let changed = self.store_blocks(state, &txn, num, news)?;
        if record_changed {
            Inner::put_record(&txn, key, &record)?;
        }
        self.commit(state, txn, "file_read")?;
        for (block, meta) in changed {
            state.set_block(num, block, meta);
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
                self.merge(&mut state, key, file_id, &fetched)?;
                if eof {
                    break;
                }
            }
        }
    }

    /// What a read of `len` bytes at `position` copies out, taken under the lock: the slots
    /// and ranges of the blocks it covers, marked used, and a pin that keeps those slots'
    /// bytes until the plan is dropped (a write meanwhile puts its bytes in other slots).
    /// The copy itself ([`CopyPlan::copy_into`]) runs without the lock, so reads of cached
    /// data do not wait for each other nor for writers.
    fn plan_copy(
        &self,
        state: &mut State,
        num: FileNum,
        position: u64,
        len: usize,
    ) -> CopyPlan<'_> {
        let bs = self.block_size();
        let mut blocks = Vec::new();
        for piece in pieces(bs, position..position + len as u64) {
            let held = match state.blocks.get(&(num, piece.block)) {
                Some(b) => match (b.meta.stored, b.meta.present.ranges()) {
                    (Some(stored), [only]) if only.start == 0 => Held::Prefix(stored),
                    (Some(stored), _) => Held::Ranges(b.meta.present.clone(), stored),
                    (None, _) => Held::Nothing,
                },
                None => Held::Nothing,
            };
            if !matches!(held, Held::Nothing) {
                state.touch(num, piece.block);
            }
            blocks.push((piece, held));
        }
        CopyPlan {
            inner: self,
            pin: state.slots.pin(),
            num,
            blocks,
        }
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
            remove_blocks(&txn, &victims)?;
            self.commit(state, txn, "evict")?;
            for (file, block) in victims {
                state.set_block(file, block, None);
            }
            self.reclaim(state)?;
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
        let mut news = Vec::new();
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
                stored: None,
            };
            news.push(self.rewritten(num, b, meta, &block.meta)?);
        }
        if news.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write()?;
        let changed = self.store_blocks(state, &txn, num, news)?;
        self.commit(state, txn, "drop_clean")?;
        for (b, meta) in changed {
            state.set_block(num, b, meta);
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
        let mut news = Vec::new();
        if size < old {
            let first_gone = size.div_ceil(bs);
            for &b in file.blocks.range(BlockIndex(size / bs)..) {
                let Some(state_block) = state.blocks.get(&(num, b)) else {
                    continue;
                };
                let mut meta = state_block.meta.clone();
                if b.0 >= first_gone {
                    meta.present = RangeSet::default();
                } else {
                    let cut = (size - b.0 * bs) as u32;
                    meta.present.truncate(cut);
                    meta.dirty.truncate(cut);
                    meta.generation += 1;
                }
                news.push(self.rewritten(num, b, meta, &state_block.meta)?);
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
        let txn = self.begin_write()?;
        let changed = self.store_blocks(state, &txn, num, news)?;
        Inner::put_record(&txn, key, &record)?;
        self.commit(state, txn, "file_set_size")?;
        for (b, meta) in changed {
            state.set_block(num, b, meta);
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
        let mut news = Vec::with_capacity(pieces.len());
        for piece in &pieces {
            let old = state.blocks.get(&(num, piece.block)).map(|b| &b.meta);
            let mut meta = old.cloned().unwrap_or_default();
            let src = &data[piece.offset..piece.offset + piece.len()];
            let old_len = meta.stored.map_or(0, |s| s.len);
            let bytes = if piece.within.start == 0 && piece.within.end >= old_len {
                // Every stored byte is overwritten: the block's bytes are the written ones.
                Cow::Borrowed(src)
            } else {
                let mut bytes = self.load_block_to(num, piece.block, old, piece.within.end)?;
                bytes[piece.within.start as usize..piece.within.end as usize].copy_from_slice(src);
                Cow::Owned(bytes)
            };
            meta.present.insert(piece.within.clone());
            if !record.local {
                meta.dirty.insert(piece.within.clone());
            }
            meta.generation += 1;
            news.push(NewBlock {
                block: piece.block,
                meta,
                bytes,
            });
        }
        let txn = self.begin_write()?;
        let changed = self.store_blocks(state, &txn, num, news)?;
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
            state.set_block(num, block, meta);
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
            break (inner.plan_copy(&mut state, num, position, n), n);
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
