//! The vault's events: how bytes move between the vault and the store.
//!
//! Reads are ranged `GET`s of the object. Writes are different: an object is replaced whole,
//! never patched, so the vault's `on_write_data` (one call per dirty range) cannot store
//! anything by itself. The drive uploads a file whole ([`crate::upload`]) and only then
//! flushes it in the vault; while that flush runs, `on_write_data` acknowledges the file's
//! ranges, since the object already holds them. Any other `on_write_data` (the vault's own
//! flush under size pressure, say) answers `RWRESULT_FAILURE`, so the data stays dirty until
//! the drive uploads it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use fsgate_cache::{Events, ReadDataParams, RwResult, WriteDataParams};

use crate::store::{Remote, StoreError};

/// The vault's events over one store.
pub struct Transfer {
    remote: Arc<Remote>,
    /// Files whose content the store holds now: their flush is acknowledged.
    uploaded: Mutex<HashSet<String>>,
}

impl Transfer {
    /// Events fetching from `remote`.
    pub fn new(remote: Arc<Remote>) -> Self {
        Self {
            remote,
            uploaded: Mutex::new(HashSet::new()),
        }
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
