//! The object store seen from the drive's threads: every call blocks on a small tokio
//! runtime of the drive's own.
//!
//! `object_store` is async; the drive's events run on the library's worker threads, which
//! are plain threads. [`Remote`] owns a multi-threaded tokio runtime with two workers (they
//! drive the HTTP connections) and each call `block_on`s its future from the calling worker
//! thread, so events for different files wait on the store in parallel, and a slow store
//! holds up only the events that need it.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use fsgate_core::{code, Error, Result};
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, PutPayload, WriteMultipart};
use tokio::runtime::Runtime;

/// Objects at most this large are uploaded with one `PUT`; larger ones in parts of this
/// size (S3's smallest part is 5 MiB).
pub const PART_SIZE: usize = 8 << 20;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// An object's metadata as the drive uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: SystemTime,
    /// What identifies this version of the object: its ETag (or version id), else its size
    /// and time. A different value means different content.
    pub version: String,
}

impl ObjectInfo {
    fn from_meta(meta: &ObjectMeta) -> Self {
        let modified = SystemTime::from(meta.last_modified);
        let version = meta
            .e_tag
            .clone()
            .or_else(|| meta.version.clone())
            .unwrap_or_else(|| format!("{}@{}", meta.size, meta.last_modified.to_rfc3339()));
        Self {
            size: meta.size,
            modified,
            version,
        }
    }
}

/// One level of a listing: the objects right under a prefix and the prefixes one level
/// down, by their last path segment.
#[derive(Debug, Default)]
pub struct Level {
    /// Objects right under the prefix.
    pub objects: Vec<(String, ObjectInfo)>,
    /// Prefixes one level down (directories).
    pub prefixes: Vec<String>,
}

/// The store and the runtime its calls run on.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    runtime: Runtime,
}

/// What a failed store call means to the drive.
#[derive(Debug)]
pub enum StoreError {
    /// The object does not exist.
    NotFound,
    /// Anything else: the store is unreachable, refused, or failed.
    Failed(Error),
}

impl StoreError {
    fn of(what: &str, key: &str, e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound,
            e => StoreError::Failed(Error::from_code(
                code::ERROR_NOT_READY,
                format!("{what} {key:?}: {e}"),
            )),
        }
    }

    /// As an fsgate error: `ERROR_FILE_NOT_FOUND` naming `key`, or the failure.
    pub fn into_error(self, key: &str) -> Error {
        match self {
            StoreError::NotFound => Error::from_code(
                code::ERROR_FILE_NOT_FOUND,
                format!("{key:?} is not in the store"),
            ),
            StoreError::Failed(e) => e,
        }
    }
}

/// The result of a store call.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// A store key from a drive key (`a/b`, never a leading `/`).
fn path(key: &str) -> StorePath {
    StorePath::from(key)
}

impl Remote {
    /// Wraps `store` with a runtime of its own.
    pub fn new(store: Arc<dyn ObjectStore>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fsgate-remote-io")
            .on_thread_start(fsgate_core::threads::block_application_signals)
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the object store runtime", e))?;
        Ok(Self { store, runtime })
    }

    /// The object at `key`.
    pub fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        self.runtime
            .block_on(self.store.head(&path(key)))
            .map(|m| ObjectInfo::from_meta(&m))
            .map_err(|e| StoreError::of("head", key, e))
    }

    /// Bytes `range` of the object at `key`; fewer at its end.
    pub fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        self.runtime
            .block_on(self.store.get_range(&path(key), range))
            .map_err(|e| StoreError::of("get", key, e))
    }

    /// The object at `key` from `offset` to its end, as a stream of chunks: one `GET` that
    /// a sequential reader keeps reading from (see [`next_chunk`](Self::next_chunk)).
    pub fn get_from(
        &self,
        key: &str,
        offset: u64,
    ) -> StoreResult<BoxStream<'static, object_store::Result<Bytes>>> {
        let options = GetOptions {
            range: Some(GetRange::Offset(offset)),
            ..GetOptions::default()
        };
        self.runtime
            .block_on(self.store.get_opts(&path(key), options))
            .map(|r| r.into_stream())
            .map_err(|e| StoreError::of("get", key, e))
    }

    /// The next chunk of a [`get_from`](Self::get_from) stream; `None` at its end.
    pub fn next_chunk(
        &self,
        key: &str,
        stream: &mut BoxStream<'static, object_store::Result<Bytes>>,
    ) -> Option<StoreResult<Bytes>> {
        self.runtime
            .block_on(stream.next())
            .map(|r| r.map_err(|e| StoreError::of("get", key, e)))
    }

    /// Objects and prefixes right under `dir` (`""`: the root).
    pub fn list_level(&self, dir: &str) -> StoreResult<Level> {
        let prefix = (!dir.is_empty()).then(|| path(dir));
        let listed = self
            .runtime
            .block_on(self.store.list_with_delimiter(prefix.as_ref()))
            .map_err(|e| StoreError::of("list", dir, e))?;
        let name = |p: &StorePath| p.filename().map(str::to_owned);
        Ok(Level {
            objects: listed
                .objects
                .iter()
                .filter_map(|m| Some((name(&m.location)?, ObjectInfo::from_meta(m))))
                .collect(),
            prefixes: listed.common_prefixes.iter().filter_map(name).collect(),
        })
    }

    /// Every object under `dir` at any depth, by key, at most `limit` of them.
    pub fn list_all(&self, dir: &str, limit: usize) -> StoreResult<Vec<String>> {
        let prefix = path(dir);
        self.runtime.block_on(async {
            let mut stream = self.store.list(Some(&prefix)).take(limit);
            let mut keys = Vec::new();
            while let Some(item) = stream.next().await {
                let meta = item.map_err(|e| StoreError::of("list", dir, e))?;
                keys.push(meta.location.to_string());
            }
            Ok(keys)
        })
    }

    /// Stores `data` as the object at `key` with one request; returns its ETag when the
    /// store reports one.
    pub fn put(&self, key: &str, data: Bytes) -> StoreResult<Option<String>> {
        self.runtime
            .block_on(self.store.put(&path(key), PutPayload::from_bytes(data)))
            .map(|r| r.e_tag)
            .map_err(|e| StoreError::of("put", key, e))
    }

    /// Stores `size` bytes as the object at `key`, reading them with `read(offset, buffer)`
    /// (which fills `buffer` whole) in parts of [`PART_SIZE`]: one `PUT` when they fit in one
    /// part, else a multipart upload with a few parts in flight, aborted on failure. Calls
    /// `progress(bytes_done)` after each part is handed over. Returns the new object's ETag
    /// when the store reports one.
    pub fn upload(
        &self,
        key: &str,
        size: u64,
        mut read: impl FnMut(u64, &mut [u8]) -> Result<()>,
        mut progress: impl FnMut(u64),
    ) -> StoreResult<Option<String>> {
        if size <= PART_SIZE as u64 {
            let mut data = vec![0u8; size as usize];
            read(0, &mut data).map_err(StoreError::Failed)?;
            let e_tag = self.put(key, Bytes::from(data))?;
            progress(size);
            return Ok(e_tag);
        }
        let location = path(key);
        self.runtime.block_on(async {
            let upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(|e| StoreError::of("start upload", key, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut offset = 0u64;
            while offset < size {
                let n = (size - offset).min(PART_SIZE as u64) as usize;
                let mut part = vec![0u8; n];
                if let Err(e) = read(offset, &mut part) {
                    let _ = writer.abort().await;
                    return Err(StoreError::Failed(e));
                }
                if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    let _ = writer.abort().await;
                    return Err(StoreError::of("upload", key, e));
                }
                writer.put(Bytes::from(part));
                offset += n as u64;
                progress(offset);
            }
            writer
                .finish()
                .await
                .map(|r| r.e_tag)
                .map_err(|e| StoreError::of("finish upload", key, e))
        })
    }

    /// Copies the object at `from` to `to`, replacing what is there.
    pub fn copy(&self, from: &str, to: &str) -> StoreResult<()> {
        self.runtime
            .block_on(self.store.copy(&path(from), &path(to)))
            .map_err(|e| StoreError::of("copy", from, e))
    }

    /// Deletes the object at `key`; one that is not there is no error.
    pub fn delete(&self, key: &str) -> StoreResult<()> {
        match self.runtime.block_on(self.store.delete(&path(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::of("delete", key, e)),
        }
    }
}
