//! External storage for the tests: files as byte vectors, with scripted result codes.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use fsgate_cache::{Events, ReadDataParams, RwResult, Vault, VaultOptions, WriteDataParams};

/// One event the vault fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Read {
        file_id: String,
        position: u64,
        len: usize,
    },
    Write {
        file_id: String,
        position: u64,
        len: usize,
        size: u64,
    },
}

/// In-memory external storage.
#[derive(Default)]
pub struct Remote {
    pub files: Mutex<HashMap<String, Vec<u8>>>,
    /// Result codes the next events report, in order; an empty queue means behave normally.
    pub script: Mutex<VecDeque<RwResult>>,
    pub calls: Mutex<Vec<Call>>,
    /// `on_error` calls: file id and error code.
    pub errors: Mutex<Vec<(String, u32)>>,
}

impl Remote {
    pub fn put(&self, id: &str, data: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(id.to_owned(), data.to_vec());
    }

    pub fn get(&self, id: &str) -> Option<Vec<u8>> {
        self.files.lock().unwrap().get(id).cloned()
    }

    pub fn script(&self, codes: &[RwResult]) {
        self.script.lock().unwrap().extend(codes.iter().copied());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    pub fn reads(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Read { .. }))
            .count()
    }

    pub fn writes(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Write { .. }))
            .count()
    }
}

/// The vault's handle on a [`Remote`].
pub struct Shared(pub Arc<Remote>);

impl Events for Shared {
    fn on_read_data(&self, p: &mut ReadDataParams<'_>) {
        let remote = &self.0;
        remote.calls.lock().unwrap().push(Call::Read {
            file_id: p.file_id.to_owned(),
            position: p.position,
            len: p.buffer.len(),
        });
        let scripted = remote.script.lock().unwrap().pop_front();
        let files = remote.files.lock().unwrap();
        let data = files.get(p.file_id).cloned().unwrap_or_default();
        let start = (p.position as usize).min(data.len());
        let mut n = (data.len() - start).min(p.buffer.len());
        match scripted {
            None | Some(RwResult::RWRESULT_SUCCESS) | Some(RwResult::RWRESULT_RANGE_BEYOND_EOF) => {
                if n < p.buffer.len() {
                    p.result_code = RwResult::RWRESULT_RANGE_BEYOND_EOF;
                }
            }
            Some(RwResult::RWRESULT_PARTIAL) => {
                n = n.div_ceil(2);
                p.result_code = RwResult::RWRESULT_PARTIAL;
            }
            Some(code) => {
                p.result_code = code;
                return;
            }
        }
        p.buffer[..n].copy_from_slice(&data[start..start + n]);
        p.bytes_read = n;
    }

    fn on_write_data(&self, p: &mut WriteDataParams<'_>) {
        let remote = &self.0;
        remote.calls.lock().unwrap().push(Call::Write {
            file_id: p.file_id.to_owned(),
            position: p.position,
            len: p.buffer.len(),
            size: p.size,
        });
        let scripted = remote.script.lock().unwrap().pop_front();
        let mut n = p.buffer.len();
        match scripted {
            None | Some(RwResult::RWRESULT_SUCCESS) => {}
            Some(RwResult::RWRESULT_PARTIAL) => {
                n = n.div_ceil(2);
                p.result_code = RwResult::RWRESULT_PARTIAL;
            }
            Some(code) => {
                p.result_code = code;
                return;
            }
        }
        let mut files = remote.files.lock().unwrap();
        let data = files.entry(p.file_id.to_owned()).or_default();
        data.resize(p.size as usize, 0);
        let pos = p.position as usize;
        data[pos..pos + n].copy_from_slice(&p.buffer[..n]);
        p.bytes_written = n;
    }

    fn on_error(&self, file_id: &str, error: &fsgate_core::Error) {
        self.0
            .errors
            .lock()
            .unwrap()
            .push((file_id.to_owned(), error.code()));
    }
}

/// Options for tests: no background flushing unless a test asks, small blocks.
pub fn options() -> VaultOptions {
    VaultOptions {
        flush_delay: std::time::Duration::ZERO,
        block_size: 4096,
        ..VaultOptions::default()
    }
}

/// A vault in a fresh directory over a fresh remote.
pub fn vault(options: VaultOptions) -> (tempfile::TempDir, Arc<Remote>, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let remote = Arc::new(Remote::default());
    let vault = Vault::open(
        dir.path().join("vault.redb"),
        options,
        Shared(remote.clone()),
    )
    .unwrap();
    (dir, remote, vault)
}

/// Deterministic bytes for a seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    fsgate_testkit::pattern(len, seed)
}
