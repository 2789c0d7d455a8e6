//! The vault's events: how bytes move between the vault and the store.
//!
//! Reads are ranged `GET`s of the object. Writes are different: an object is replaced whole,
//! never patched, so the vault's `on_write_data` (one call per dirty range) cannot store
//! anything by itself. The drive uploads a file whole ([`crate::upload`]) and only then
//! flushes it in the vault; while that flush runs, `on_write_data` acknowledges the file's
//! ranges, since the object already holds them. Any other `on_write_data` (the vault's own
//! flush under size pressure, say) answers `RWRESULT_FAILURE`, so the data stays dirty until
//! the drive uploads it.
//!
//! Large reads (the drive's read-ahead windows) come from one open-ended `GET` per file that
//! the next window continues, as long as it starts where the last one ended: one request
//! per sequential pass instead of one per window (some servers re-read the whole object for
//! each ranged request). The drive drops a file's stream whenever the object changes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fsgate_cache::{Events, ReadDataParams, RwResult, WriteDataParams};
use futures::stream::BoxStream;

use crate::store::{Remote, StoreError};

/// The vault's events over one store.
pub struct Transfer {
    remote: Arc<Remote>,
    /// Files whose content the store holds now: their flush is acknowledged.
    uploaded: Mutex<HashSet<String>>,
    /// Open sequential `GET`s by key.
    streams: Mutex<HashMap<String, Stream>>,
}

/// An open-ended `GET` being read.
struct Stream {
    /// The object offset of the next byte it gives (`leftover` first).
    position: u64,
    body: BoxStream<'static, object_store::Result<Bytes>>,
    leftover: Bytes,
}

/// Reads at least this large are served from a stream.
const STREAMED_READ: usize = 1 << 20;

/// Streams kept open at most (each holds a connection).
const MAX_STREAMS: usize = 16;

impl Transfer {
    /// Events fetching from `remote`.
    pub fn new(remote: Arc<Remote>) -> Self {
        Self {
            remote,
            uploaded: Mutex::new(HashSet::new()),
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stream>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops `key`'s stream: its object changed, or is gone.
    pub fn forget_stream(&self, key: &str) {
        self.streams().remove(key);
    }

    /// Fills `buffer` from `key`'s stream at `position` (opening one there unless the open
    /// one is at it); returns the bytes filled, fewer at the object's end. Never holds the
    /// streams' lock while waiting on the store.
    fn read_streamed(
        &self,
        key: &str,
        position: u64,
        buffer: &mut [u8],
    ) -> Result<usize, StoreError> {
        let taken = self
            .streams()
            .remove(key)
            .filter(|s| s.position == position);
        let mut stream = match taken {
            Some(stream) => stream,
            None => Stream {
                position,
                body: self.remote.get_from(key, position)?,
                leftover: Bytes::new(),
            },
        };
        let mut filled = 0;
        let mut ended = false;
        while filled < buffer.len() {
            if stream.leftover.is_empty() {
                match self.remote.next_chunk(key, &mut stream.body) {
                    Some(chunk) => stream.leftover = chunk?,
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            let n = stream.leftover.len().min(buffer.len() - filled);
            buffer[filled..filled + n].copy_from_slice(&stream.leftover[..n]);
            stream.leftover = stream.leftover.slice(n..);
            filled += n;
        }
        stream.position += filled as u64;
        if !ended {
            let mut streams = self.streams();
            if streams.len() >= MAX_STREAMS {
                streams.clear();
            }
            streams.insert(key.to_owned(), stream);
        }
        Ok(filled)
    }

    fn uploaded(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.uploaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `flush` (the vault's flush of `key`) with `key`'s ranges acknowledged.
    pub fn acknowledging<T>(&self, key: &str, flush: impl FnOnce() -> T) -> T {
        self.uploaded().insert(key.to_owned());
        let result = flush();
        self.uploaded().remove(key);
        result
    }
}

impl Events for Transfer {
    fn on_read_data(&self, p: &mut ReadDataParams<'_>) {
        if p.buffer.len() >= STREAMED_READ {
            match self.read_streamed(p.file_id, p.position, p.buffer) {
                Ok(n) => {
                    p.bytes_read = n;
                    if n < p.buffer.len() {
                        p.result_code = RwResult::RWRESULT_RANGE_BEYOND_EOF;
                    }
                    return;
                }
                // Not there, or the stream broke: ask for the range alone below.
                Err(e) => tracing::debug!("streaming {:?}: {e:?}", p.file_id),
            }
        }
        let end = p.position + p.buffer.len() as u64;
        match self.remote.get_range(p.file_id, p.position..end) {
            Ok(bytes) => {
                let n = bytes.len().min(p.buffer.len());
                p.buffer[..n].copy_from_slice(&bytes[..n]);
                p.bytes_read = n;
                if n < p.buffer.len() {
                    p.result_code = RwResult::RWRESULT_RANGE_BEYOND_EOF;
                }
            }
            // A file made on the drive and not uploaded yet, or cut short in the store: its
            // bytes past what the store holds read as zeros.
            Err(StoreError::NotFound) => {
                p.result_code = RwResult::RWRESULT_RANGE_BEYOND_EOF;
            }
            Err(StoreError::Failed(e)) => {
                tracing::warn!("reading {:?}: {e}", p.file_id);
                p.result_code = RwResult::RWRESULT_FAILURE;
            }
        }
    }

    fn on_write_data(&self, p: &mut WriteDataParams<'_>) {
        if self.uploaded().contains(p.file_id) {
            p.bytes_written = p.buffer.len();
        } else {
            p.result_code = RwResult::RWRESULT_FAILURE;
        }
    }

    fn on_error(&self, file_id: &str, error: &fsgate_core::Error) {
        tracing::debug!("vault flush of {file_id:?} left for the drive's upload: {error}");
    }
}
