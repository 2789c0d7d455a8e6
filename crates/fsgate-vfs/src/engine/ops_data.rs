//! Operations on data: read (through the user-mode block cache when it is on), write,
//! cleanup, flush, allocation and zeroing, copies between files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use fsgate_core::{Originator, Result};

use super::{lock, lock_mut, lock_ref, Cause, Engine, Handle, Ino};
use crate::cache::BLOCK;
use crate::events::Events;
use crate::params::*;

/// A `READ` handler's data: in a buffer to send, or already in the reply's own buffer.
pub(crate) enum Read {
    /// In this buffer (from the pool, or the user-mode cache).
    Copied(Vec<u8>),
    /// This many bytes, in the buffer the request came with.
    InPlace(usize),
}

/// Reads up to `buf.len()` bytes at `offset`, fewer only at the end of the file.
pub(crate) fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// What the kernel says of a `WRITE` besides its data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WriteMode {
    /// The writer lacks `CAP_FSETID`: clear privileges first (`FUSE_WRITE_KILL_SUIDGID`).
    pub(crate) kill_privileges: bool,
    /// The kernel writes back pages it cached (`FUSE_WRITE_CACHE`).
    pub(crate) write_back: bool,
}

impl<E: Events> Engine<E> {
    /// `READ` into `buffer`: `on_read_file` with the contexts shared, as reads of one file
    /// may run side by side; returns how many bytes it filled.
    pub(crate) fn read(
        &self,
        h: &Handle<E>,
        path: &Path,
        offset: u64,
        buffer: &mut [u8],
        who: Originator,
    ) -> Result<usize> {
        let fc = lock_ref(&h.file);
        let st = lock_ref(&h.state);
        let mut p = ReadFileParams {
            originator: who,
            file_name: path,
            position: offset,
            buffer,
            bytes_read: 0,
            file_context: fc.as_ref(),
            handle_context: st.context.as_ref(),
        };
        self.events.on_read_file(&mut p)?;
        Ok(p.bytes_read.min(p.buffer.len()))
    }

    /// `READ` under `FileCache=UserMode`: whole blocks from the cache, missing ones from
    /// `on_read_file` (one aligned block each), then the asked-for range.
    pub(crate) fn cached_read(
        &self,
        h: &Handle<E>,
        path: &Path,
        offset: u64,
        size: u32,
        who: Originator,
    ) -> Result<Vec<u8>> {
        let fc = lock_ref(&h.file);
        let st = lock_ref(&h.state);
        let ino = h.ino;
        let end = offset.saturating_add(u64::from(size));
        let mut out = Vec::with_capacity(size as usize);
        let mut block = Vec::new();
        let mut index = offset / BLOCK;
        while index.saturating_mul(BLOCK) < end {
            let start = index * BLOCK;
            if lock(&self.blocks).get(ino, index, &mut block).is_none() {
                block.clear();
                block.resize(BLOCK as usize, 0);
                let mut p = ReadFileParams {
                    originator: who,
                    file_name: path,
                    position: start,
                    buffer: &mut block,
                    bytes_read: 0,
                    file_context: fc.as_ref(),
                    handle_context: st.context.as_ref(),
                };
                self.events.on_read_file(&mut p)?;
                let n = p.bytes_read.min(BLOCK as usize);
                block.truncate(n);
                lock(&self.blocks).put(ino, index, &block);
            }
            let from = (offset.max(start) - start) as usize;
            let to = ((end.min(start + BLOCK)) - start) as usize;
            if from < block.len() {
                out.extend_from_slice(&block[from..to.min(block.len())]);
            }
            if (block.len() as u64) < BLOCK {
                break;
            }
            index += 1;
        }
        Ok(out)
    }

    /// `WRITE`: `on_write_file`; returns how many bytes it took. Privileges are cleared
    /// first when `how` says so, as ext4 does (see [`super::privileges`]).
    pub(crate) fn write(
        &self,
        h: &Handle<E>,
        path: &Path,
        offset: u64,
        data: &[u8],
        how: WriteMode,
        who: Originator,
    ) -> Result<usize> {
        if how.kill_privileges {
            let doomed = self.doomed_privileges(h.ino, path, Cause::Write, who)?;
            self.clear_privileges(h.ino, path, doomed, None, who)?;
        }
        let mut fc = lock_mut(&h.file);
        let mut st = lock_mut(&h.state);
        let mut p = WriteFileParams {
            originator: who,
            file_name: path,
            position: offset,
            buffer: data,
            write_back: how.write_back,
            bytes_written: 0,
            file_context: fc.as_mut(),
            handle_context: st.context.as_mut(),
        };
        self.events.on_write_file(&mut p)?;
        let n = p.bytes_written.min(data.len());
        if self.user_mode_cache() {
            lock(&self.blocks).invalidate(h.ino, offset, offset.saturating_add(n as u64));
        }
        Ok(n)
    }

    /// `FLUSH` (each `close(2)`): `on_cleanup_file`.
    pub(crate) fn cleanup(&self, h: &Handle<E>, path: &Path, who: Originator) -> Result<()> {
        let mut fc = lock_mut(&h.file);
        let mut st = lock_mut(&h.state);
        let mut p = CleanupFileParams {
            originator: who,
            file_name: path,
            handle_info: h.info,
            file_context: fc.as_mut(),
            handle_context: st.context.as_mut(),
        };
        self.events.on_cleanup_file(&mut p)
    }

    /// `FSYNC`, `FSYNCDIR`: `on_flush_file`.
    pub(crate) fn sync(
        &self,
        h: &Handle<E>,
        path: &Path,
        data_only: bool,
        who: Originator,
    ) -> Result<()> {
        let mut fc = lock_mut(&h.file);
        let mut st = lock_mut(&h.state);
        let mut p = FlushFileParams {
            originator: who,
            file_name: path,
            data_only,
            file_context: fc.as_mut(),
            handle_context: st.context.as_mut(),
        };
        self.events.on_flush_file(&mut p)
    }

    /// `FALLOCATE` with `mode` (the wire has refused modes other than 0,
    /// `FALLOC_FL_KEEP_SIZE`, `FALLOC_FL_PUNCH_HOLE` and `FALLOC_FL_ZERO_RANGE`): zeroing
    /// fires `on_zeroize_file_range`, the rest `on_set_allocation_size`.
    pub(crate) fn allocate(
        &self,
        ino: Ino,
        path: &Path,
        offset: u64,
        length: u64,
        mode: i32,
        who: Originator,
    ) -> Result<()> {
        let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        let context = self.context_of(ino, path);
        let mut guard = context.as_ref().map(|c| lock_mut(c));
        if mode & (libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE) != 0 {
            let mut p = ZeroizeFileRangeParams {
                originator: who,
                file_name: path,
                position: offset,
                length,
                deallocate: mode & libc::FALLOC_FL_PUNCH_HOLE != 0,
                keep_size,
                file_context: guard.as_deref_mut().and_then(Option::as_mut),
            };
            self.events.on_zeroize_file_range(&mut p)?;
            self.drop_cached_blocks(path);
            return Ok(());
        }
        let mut p = SetAllocationSizeParams {
            originator: who,
            file_name: path,
            allocation_size: offset.saturating_add(length),
            keep_size,
            file_context: guard.as_deref_mut().and_then(Option::as_mut),
        };
        self.events.on_set_allocation_size(&mut p)
    }

    /// `COPY_FILE_RANGE`: `on_copy_file_range` with both handles' contexts; returns how
    /// many bytes it copied.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn copy_range(
        &self,
        source: &Handle<E>,
        source_path: &Path,
        offset_in: u64,
        target: &Handle<E>,
        target_path: &Path,
        offset_out: u64,
        len: u64,
        who: Originator,
    ) -> Result<u64> {
        let fc = lock_ref(&source.file);
        // Read locks only, taken in one global order so that two copies in opposite
        // directions cannot wait for each other behind a writer.
        let same = Arc::ptr_eq(&source.state, &target.state);
        let source_first = same || Arc::as_ptr(&source.state) < Arc::as_ptr(&target.state);
        let first = lock_ref(if source_first {
            &source.state
        } else {
            &target.state
        });
        let second = (!same).then(|| {
            lock_ref(if source_first {
                &target.state
            } else {
                &source.state
            })
        });
        let (from, to) = match &second {
            None => (&first.context, &first.context),
            Some(second) if source_first => (&first.context, &second.context),
            Some(second) => (&second.context, &first.context),
        };
        let mut p = CopyFileRangeParams {
            originator: who,
            file_name: source_path,
            position: offset_in,
            file_context: fc.as_ref(),
            handle_context: from.as_ref(),
            target_file_name: target_path,
            target_position: offset_out,
            target_handle_context: to.as_ref(),
            length: len,
            bytes_copied: 0,
        };
        self.events.on_copy_file_range(&mut p)?;
        let n = p.bytes_copied.min(len);
        if self.user_mode_cache() {
            lock(&self.blocks).invalidate(target.ino, offset_out, offset_out.saturating_add(n));
        }
        Ok(n)
    }
}
