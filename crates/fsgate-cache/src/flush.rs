//! Write-back: flushing dirty bytes through `on_write_data`, on demand and on the
//! background thread after the flush delay.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fsgate_core::{Error, Result};

use crate::error::{file_failure, modified, permanent_failure, storage, transient};
use crate::events::{RwResult, WriteDataParams};
use crate::record::{BlockIndex, BlockMeta};
use crate::status::FlushMode;
use crate::vault::{Inner, Vault, BLOCKS};

/// Largest run of dirty bytes one `on_write_data` carries.
const MAX_TRANSFER: usize = 8 << 20;

/// Dirty bytes one flush pass reads into memory; a file with more is flushed in passes.
const FLUSH_BATCH: u64 = 64 << 20;

/// A run of adjacent dirty bytes and the block parts it came from.
struct Extent {
    position: u64,
    bytes: Vec<u8>,
    /// (block, its generation at the snapshot, dirty range within the block, offset in
    /// `bytes`).
    parts: Vec<(BlockIndex, u64, Range<u32>, usize)>,
}

impl Inner {
    /// Flushes one file now. Files that are local, unchanged or gone are a no-op.
    pub(crate) fn flush_file(&self, key: &str, file_id: &str) -> Result<()> {
        let num = {
            let mut state = self.lock();
            loop {
                self.check_open(&state, "file_flush")?;
                match state.files.get(key) {
                    None => return Ok(()),
                    Some(f) if f.flushing => {
                        state = self.flushed.wait(state).unwrap_or_else(|p| p.into_inner());
                    }
                    Some(_) => break,
                }
            }
            let file = state.file_mut(key, file_id)?;
            file.flushing = true;
            file.record.num
        };
        let result = (|| {
            while self.flush_batch(key, file_id)? {}
            Ok(())
        })();
        // The file may have a new key by now (file_change_id): find it by number.
        let mut state = self.lock();
        if let Some(f) = state
            .keys
            .get(&num)
            .cloned()
            .and_then(|k| state.files.get_mut(&k))
        {
            f.flushing = false;
        }
        drop(state);
        self.flushed.notify_all();
        result
    }

    /// Flushes at most [`FLUSH_BATCH`] dirty bytes of a file (so a flush holds no more in
    /// memory); returns whether it left dirty bytes it did not look at.
    fn flush_batch(&self, key: &str, file_id: &str) -> Result<bool> {
        let bs = self.block_size();
        let (extents, size, size_dirty, eof, num, id, more) = {
            let mut state = self.lock();
            self.check_open(&state, "file_flush")?;
            let Some(file) = state.files.get(key) else {
                return Ok(false);
            };
            if file.record.local || !file.changed() {
                return Ok(false);
            }
            if state.global_error {
                return Err(permanent_failure());
            }
            if file.error {
                return Err(file_failure(file_id));
            }
            let num = file.record.num;
            let mut extents: Vec<Extent> = Vec::new();
            let mut taken = 0u64;
            let mut more = false;
            for &b in &file.blocks {
                let Some(block) = state.blocks.get(&(num, b)) else {
                    continue;
                };
                if block.meta.dirty.is_empty() {
                    continue;
                }
                if taken >= FLUSH_BATCH {
                    more = true;
                    break;
                }
                taken += block.meta.dirty.len();
                let bytes = self.load_block(num, b, Some(&block.meta))?;
                for r in block.meta.dirty.ranges() {
                    let position = b.0 * bs + u64::from(r.start);
                    let chunk = &bytes[r.start as usize..r.end as usize];
                    match extents.last_mut() {
                        Some(last)
                            if last.position + last.bytes.len() as u64 == position
                                && last.bytes.len() + chunk.len() <= MAX_TRANSFER =>
                        {
                            last.parts.push((
                                b,
                                block.meta.generation,
                                r.clone(),
                                last.bytes.len(),
                            ));
                            last.bytes.extend_from_slice(chunk);
                        }
                        _ => extents.push(Extent {
                            position,
                            bytes: chunk.to_vec(),
                            parts: vec![(b, block.meta.generation, r.clone(), 0)],
                        }),
                    }
                }
            }
            let size = file.record.size;
            let size_dirty = file.record.size_dirty;
            let eof = file.record.external_eof;
            let id = file.record.id.clone();
            if let Some(f) = state.files.get_mut(key) {
                f.flush_due = None;
            }
            (extents, size, size_dirty, eof, num, id, more)
        };

        // Bytes past a shrink not yet flushed read as zeros here but may still be old bytes
        // there: cut the external file at that point first, so growing it again gives zeros.
        let mut error: Option<Error> = None;
        // Not needed when the dirty bytes about to be sent cover all of it.
        let covered = |from: u64| {
            let mut cursor = from;
            for e in &extents {
                let end = e.position + e.bytes.len() as u64;
                if e.position <= cursor && cursor < end {
                    cursor = end;
                }
            }
            cursor >= size
        };
        if let Some(cut) = eof.filter(|e| *e < size && !covered(*e)) {
            let mut done = 0;
            if let Err(e) = self.send(key, &id, cut, cut, &[], &mut done) {
                error = Some(e);
            }
        }
        // Send the extents; `flushed[i]` is how many bytes of extent i external storage took.
        let mut flushed = vec![0usize; extents.len()];
        for (i, extent) in extents.iter().enumerate() {
            if error.is_some() {
                break;
            }
            if let Err(e) = self.send(
                key,
                &id,
                size,
                extent.position,
                &extent.bytes,
                &mut flushed[i],
            ) {
                error = Some(e);
            }
        }
        if error.is_none() && extents.is_empty() && size_dirty {
            let mut done = 0;
            if let Err(e) = self.send(key, &id, size, size, &[], &mut done) {
                error = Some(e);
            }
        }

        let mut state = self.lock();
        self.check_open(&state, "file_flush")?;
        let Some(file) = state.files.get(key) else {
            return error.map_or(Ok(false), Err);
        };
        if file.record.num != num {
            return error.map_or(Ok(false), Err);
        }
        let mut record = file.record.clone();
        let mut changed: BTreeMap<BlockIndex, BlockMeta> = BTreeMap::new();
        for (extent, &done) in extents.iter().zip(&flushed) {
            for (block, generation, range, offset) in &extent.parts {
                let Some(current) = state.blocks.get(&(num, *block)) else {
                    continue;
                };
                if current.meta.generation != *generation || *offset >= done {
                    continue;
                }
                let taken = (done - offset).min((range.end - range.start) as usize) as u32;
                changed
                    .entry(*block)
                    .or_insert_with(|| current.meta.clone())
                    .dirty
                    .remove(range.start..range.start + taken);
            }
        }
        let txn = self.begin_write()?;
        {
            let mut metas = txn
                .open_table(BLOCKS)
                .map_err(|e| storage("opening the block table", e))?;
            for (block, meta) in &changed {
                metas
                    .insert((num.0, block.0), meta.encode(num, *block).as_slice())
                    .map_err(|e| storage("writing a block index entry", e))?;
            }
        }
        let all_sent = error.is_none()
            && flushed
                .iter()
                .zip(&extents)
                .all(|(d, e)| *d == e.bytes.len());
        // Everything sent and nothing changed meanwhile: the external file now equals the
        // vault's view, size and zeros included.
        let record_changed = all_sent
            && record.size == size
            && record.external_eof == eof
            && (record.size_dirty || record.external_eof.is_some());
        if record_changed {
            record.size_dirty = false;
            record.external_eof = None;
            Inner::put_record(&txn, key, &record)?;
        }
        // Not synced: losing this commit (a power loss) only means flushing again.
        self.commit(&mut state, txn, "file_flush")?;
        for (block, meta) in changed {
            state.set_block(num, block, Some(meta));
        }
        let delay = self.options.flush_delay;
        let global_error = state.global_error;
        if let Some(f) = state.files.get_mut(key) {
            if record_changed {
                f.record.size_dirty = false;
                f.record.external_eof = None;
                f.epoch += 1;
            }
            // What is left (written meanwhile, or not taken after a transient failure) goes
            // after another delay; error states wait for their reset instead.
            let retry = error.is_some() || f.open_count > 0;
            if f.changed() && retry && !f.error && !global_error && f.flush_due.is_none() {
                f.flush_due = Some(Instant::now() + delay);
            }
        }
        error.map_or(Ok(more), Err)
    }

    /// Fires `on_write_data` until `bytes` are all taken; `done` counts what was.
    fn send(
        &self,
        key: &str,
        file_id: &str,
        size: u64,
        position: u64,
        bytes: &[u8],
        done: &mut usize,
    ) -> Result<()> {
        loop {
            let mut params = WriteDataParams {
                file_id,
                size,
                position: position + *done as u64,
                buffer: &bytes[*done..],
                bytes_written: 0,
                result_code: RwResult::RWRESULT_SUCCESS,
            };
            self.events.on_write_data(&mut params);
            let n = params.bytes_written.min(bytes.len() - *done);
            match params.result_code {
                RwResult::RWRESULT_SUCCESS | RwResult::RWRESULT_PARTIAL => {
                    if bytes.is_empty() {
                        return Ok(());
                    }
                    if n == 0 {
                        return Err(transient("on_write_data", file_id));
                    }
                    *done += n;
                    if *done == bytes.len() {
                        return Ok(());
                    }
                }
                RwResult::RWRESULT_FILE_MODIFIED_EXTERNALLY => {
                    return Err(modified(file_id, "externally"))
                }
                RwResult::RWRESULT_FILE_MODIFIED_LOCALLY => {
                    return Err(modified(file_id, "locally"))
                }
                RwResult::RWRESULT_FILE_FAILURE => {
                    if let Some(f) = self.lock().files.get_mut(key) {
                        f.error = true;
                    }
                    return Err(file_failure(file_id));
                }
                RwResult::RWRESULT_PERMANENT_FAILURE => {
                    self.lock().global_error = true;
                    return Err(permanent_failure());
                }
                _ => return Err(transient("on_write_data", file_id)),
            }
        }
    }

    /// Flushes every changed file, orphans included; returns the first error after trying
    /// them all.
    pub(crate) fn flush_all(&self) -> Result<()> {
        let files: Vec<(String, String)> = {
            let state = self.lock();
            self.check_open(&state, "flush_cache")?;
            state
                .files
                .iter()
                .filter(|(_, f)| f.changed() && !f.record.local)
                .map(|(k, f)| (k.clone(), f.record.id.clone()))
                .collect()
        };
        let mut first = None;
        for (key, id) in files {
            if let Err(e) = self.flush_file(&key, &id) {
                first.get_or_insert(e);
            }
        }
        let mut state = self.lock();
        self.sync(&mut state)?;
        first.map_or(Ok(()), Err)
    }

    /// One pass of the write-back thread: flushes the files whose delay has passed. Returns
    /// false once the vault is closed.
    fn write_back_pass(&self) -> bool {
        let now = Instant::now();
        let due: Vec<(String, String)> = {
            let mut state = self.lock();
            if state.closed {
                return false;
            }
            let due = state
                .files
                .iter()
                .filter(|(_, f)| f.flush_due.is_some_and(|t| t <= now) && !f.error)
                .map(|(k, f)| (k.clone(), f.record.id.clone()))
                .collect();
            if let Err(e) = self.sync(&mut state) {
                tracing::warn!("syncing the vault: {e}");
            }
            due
        };
        for (key, id) in due {
            if self.lock().closed {
                return false;
            }
            if let Err(e) = self.flush_file(&key, &id) {
                self.events.on_error(&id, &e);
            }
        }
        true
    }
}

/// Starts the write-back thread (none when the flush delay is zero and journaling is on,
/// so there is nothing to do in the background).
pub(crate) fn spawn_write_back(inner: &Arc<Inner>) -> Result<Option<JoinHandle<()>>> {
    let delay = inner.options.flush_delay;
    if delay.is_zero() && inner.options.journaling {
        return Ok(None);
    }
    let tick = if delay.is_zero() {
        Duration::from_secs(1)
    } else {
        (delay / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    };
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let builder = std::thread::Builder::new().name("fsgate-cache-write-back".into());
    fsgate_core::threads::spawn(builder, move || loop {
        let Some(inner) = weak.upgrade() else { return };
        {
            let state = inner.lock();
            if state.closed {
                return;
            }
            let (state, _) = inner
                .wake
                .wait_timeout(state, tick)
                .unwrap_or_else(|p| p.into_inner());
            if state.closed {
                return;
            }
        }
        if delay.is_zero() {
            let mut state = inner.lock();
            if let Err(e) = inner.sync(&mut state) {
                tracing::warn!("syncing the vault: {e}");
            }
        } else if !inner.write_back_pass() {
            return;
        }
    })
    .map(Some)
    .map_err(|e| Error::io("starting the write-back thread", e))
}

impl Vault {
    /// Flushes the file's unflushed bytes and size to external storage with `on_write_data`
    /// (the reference's `FileFlush`): [`FlushMode::Immediate`] now, returning the transfer's
    /// error (the data stays dirty then); [`FlushMode::Delayed`] by the write-back thread
    /// after the flush delay. Works on closed files too (orphans). Either way, every vault
    /// change so far becomes durable.
    pub fn file_flush(&self, file_id: &str, mode: FlushMode) -> Result<()> {
        let inner = &*self.inner;
        let key = inner.key_of(file_id);
        {
            let mut state = inner.lock();
            inner.check_open(&state, "file_flush")?;
            let delay = inner.options.flush_delay;
            let file = state.file_mut(&key, file_id)?;
            if mode == FlushMode::Delayed && file.changed() && file.flush_due.is_none() {
                file.flush_due = Some(Instant::now() + delay);
            }
            inner.sync(&mut state)?;
        }
        match mode {
            FlushMode::Immediate => inner.flush_file(&key, file_id),
            FlushMode::Delayed | FlushMode::None => Ok(()),
        }
    }

    /// Flushes every changed file now, orphans included, and makes the vault durable.
    /// Returns the first error after trying every file.
    pub fn flush_cache(&self) -> Result<()> {
        self.inner.flush_all()
    }
}
