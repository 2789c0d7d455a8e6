//! The remote drive: the `fsgate-vfs` events over an object store, with file data in an
//! `fsgate-cache` vault.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fsgate_cache::{EnumMode, FileStatus, FlushMode, Vault, VaultOptions};
use fsgate_core::{code, Error, Result};
use fsgate_vfs::{
    CleanupFileParams, CloseDirectoryEnumerationParams, CloseFileParams, CreateFileParams,
    DeleteFileParams, EnumerateDirectoryParams, Events, FileInfo, FileKind, FlushFileParams,
    GetFileInfoParams, GetVolumeLabelParams, GetVolumeSizeParams, Hooks, IsDirectoryEmptyParams,
    OpenFileParams, ReadFileParams, RenameOrMoveFileParams, SetFileAttributesParams,
    SetFileSizeParams, UnmountParams, WriteFileParams,
};

use crate::meta::{parent_of, Entry, MetaCache};
use crate::store::{ObjectInfo, Remote, StoreError};
use crate::transfer::Transfer;
use crate::uploads::{UploadQueue, UPLOAD_THREADS};
use crate::Location;

/// The object that keeps an empty directory: `DIR/.fsgate-directory`, zero bytes. Listings
/// never show it; any prefix with objects under it is a directory whether or not it has one.
pub const DIRECTORY_MARKER: &str = ".fsgate-directory";

/// The vault tag holding the version (ETag) of the object a file's clean data came from.
const VERSION_TAG: u16 = 0x0001;

/// Bytes fetched ahead of a sequential reader, in one request.
const READ_AHEAD: u64 = 8 << 20;

/// The vault id prefix of files deleted or replaced while open (`\0` is in no object key):
/// their holders keep using them there, and a mount drops those a kill left behind.
const SET_ASIDE: &str = "\0deleted/";

/// How a long upload is going, for a progress display.
#[derive(Clone, Copy, Debug)]
pub struct UploadProgress<'a> {
    /// The object's key.
    pub key: &'a str,
    /// Bytes handed to the store so far.
    pub done: u64,
    /// The file's size.
    pub total: u64,
}

/// Called as uploads go: once per part, and once at the end.
pub type ProgressFn = Arc<dyn Fn(UploadProgress<'_>) + Send + Sync>;

/// How the drive is set up.
#[derive(Clone)]
pub struct RemoteOptions {
    /// Where the objects are.
    pub location: Location,
    /// The vault's file (created if missing). Files left with unflushed data by an earlier
    /// mount with this vault (orphans) are uploaded when the drive starts.
    pub vault_path: std::path::PathBuf,
    /// The vault's options. Its `flush_delay` is ignored: the drive uploads files itself
    /// (queued at close, or at close with [`Uploads::AtClose`], and at `fsync`).
    pub vault: VaultOptions,
    /// How long the drive trusts what it learnt of a name (a `HEAD` or a listing) before it
    /// asks the store again. The kernel's own cache adds at most as long again, so a file
    /// another mount closes shows here within twice this; the CLI gives each half of its
    /// `--metadata-timeout`.
    pub metadata_timeout: Duration,
    /// Called as files are uploaded.
    pub progress: Option<ProgressFn>,
    /// When a closed file goes to the store: [`Uploads::Background`] (the default) or
    /// [`Uploads::AtClose`].
    pub uploads: Uploads,
    /// With [`Uploads::Background`], how long a closed file waits before its upload starts
    /// (the reference's flush delay). A file closed again meanwhile is uploaded once, and
    /// uploads do not compete with a burst of writes for the machine; other mounts see the
    /// file this much later. Unmounting starts the waiting uploads at once.
    pub upload_delay: Duration,
}

/// When a file closed with changes is uploaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Uploads {
    /// `close` returns once the file's data is in the vault, and the upload runs on one of
    /// the drive's upload threads, several at once. A failed upload is logged and retried;
    /// one cut short by the end of the process is an orphan uploaded at the next mount.
    /// Other mounts see the file once its upload is done. `fsync` waits for the upload and
    /// returns its error.
    #[default]
    Background,
    /// `close` waits for the file's upload and returns its error, as `fsync` does: a file
    /// is in the store when `close` returns, at one upload's round trips per `close`.
    AtClose,
}

/// A file open on the drive: shared by its handles (the file context), and listed by key so
/// that a rename of its directory reaches it.
pub struct OpenFile {
    state: Mutex<FileState>,
    /// Held by the file's upload, and by a rename or delete of it, so they take turns.
    turn: Mutex<()>,
}

struct FileState {
    /// The object's key now (renames change it).
    key: String,
    /// Holds bytes or a size the store does not have yet.
    dirty: bool,
    /// Deleted while open: never uploaded, dropped from the vault at its last close.
    deleted: bool,
    /// Last data change (the object's time until the first write).
    modified: SystemTime,
    /// Bumped by every change of its data or size: an upload that read an older version
    /// leaves the file dirty.
    version: u64,
    /// Users: the engine's file contexts holding it, and a truncate by name while it runs
    /// (at 0 only its upload keeps it).
    users: u32,
    /// Waiting in the upload queue (or for a retry).
    queued: bool,
    /// Upload threads on it (a second one waits for the first's turn).
    uploading: u32,
    /// Its open in the vault (one per `OpenFile`) is not closed yet.
    vault_open: bool,
}

impl OpenFile {
    fn new(key: &str, dirty: bool, modified: SystemTime) -> Self {
        Self {
            state: Mutex::new(FileState {
                key: key.to_owned(),
                dirty,
                deleted: false,
                modified,
                version: 0,
                users: 1,
                queued: false,
                uploading: 0,
                vault_open: true,
            }),
            turn: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn turn(&self) -> MutexGuard<'_, ()> {
        self.turn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The object's key now.
    pub fn key(&self) -> String {
        self.lock().key.clone()
    }
}

/// Where a handle's sequential reads have been fetched to.
pub struct ReadAhead {
    state: Mutex<ReadState>,
}

#[derive(Default)]
struct ReadState {
    /// Where the next read starts if the reader is sequential.
    next: u64,
    /// Bytes before this are in the vault, or being fetched by `pending`.
    fetched_to: u64,
    /// The window being fetched in the background, and its thread.
    pending: Option<(u64, std::thread::JoinHandle<()>)>,
}

/// A directory listing: the entries found at its first call, handed out one per call.
pub struct Listing {
    entries: Vec<(OsString, FileInfo)>,
    next: usize,
}

/// The drive.
pub struct RemoteDrive {
    core: Arc<DriveCore>,
    /// The upload threads.
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl std::ops::Deref for RemoteDrive {
    type Target = DriveCore;

    fn deref(&self) -> &DriveCore {
        &self.core
    }
}

/// The drive's state, shared with its upload threads.
pub struct DriveCore {
    remote: Arc<Remote>,
    transfer: Arc<Transfer>,
    vault: Arc<Vault>,
    meta: MetaCache,
    /// Open files by key.
    open: Mutex<HashMap<String, Arc<OpenFile>>>,
    progress: Option<ProgressFn>,
    uploads_at_close: bool,
    /// Files closed with changes, waiting for their upload.
    uploads: UploadQueue<Arc<OpenFile>>,
    /// Numbers the files set aside (see [`SET_ASIDE`]).
    set_aside: AtomicU64,
    uid: u32,
    gid: u32,
}

/// The store key of a drive path: `/a/b` → `a/b`, `/` → ``. Fails with `ERROR_INVALID_NAME`
/// for a name that is not UTF-8 (object keys are).
fn key_of(path: &Path) -> Result<String> {
    let text = path.to_str().ok_or_else(|| {
        Error::from_code(
            code::ERROR_INVALID_NAME,
            format!("{}: object keys are UTF-8", path.display()),
        )
    })?;
    Ok(text.trim_matches('/').to_owned())
}

fn marker_of(dir: &str) -> String {
    if dir.is_empty() {
        DIRECTORY_MARKER.to_owned()
    } else {
        format!("{dir}/{DIRECTORY_MARKER}")
    }
}

fn under(dir: &str, key: &str) -> bool {
    dir.is_empty() || key.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

fn not_found(key: &str) -> Error {
    Error::from_code(code::ERROR_FILE_NOT_FOUND, format!("{key:?}: no such file"))
}

impl RemoteDrive {
    /// Opens the store and the vault, then uploads the vault's orphans (files an earlier
    /// mount left with unflushed data); an orphan that cannot be uploaded now stays in the
    /// vault for the next mount, and is reported in the log.
    pub fn new(options: RemoteOptions) -> Result<Self> {
        let remote = Arc::new(Remote::new(options.location.open()?)?);
        let transfer = Arc::new(Transfer::new(Arc::clone(&remote)));
        let vault_options = VaultOptions {
            flush_delay: Duration::ZERO,
            ..options.vault
        };
        if let Some(dir) = options.vault_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("--cache {}", dir.display()), e))?;
        }
        let vault = Vault::open(
            &options.vault_path,
            vault_options,
            SharedTransfer(Arc::clone(&transfer)),
        )
        .map_err(|e| e.context(format!("--cache {}", options.vault_path.display())))?;
        let core = Arc::new(DriveCore {
            remote,
            transfer,
            vault: Arc::new(vault),
            meta: MetaCache::new(options.metadata_timeout),
            open: Mutex::new(HashMap::new()),
            progress: options.progress,
            uploads_at_close: options.uploads == Uploads::AtClose,
            uploads: UploadQueue::new(options.upload_delay),
            set_aside: AtomicU64::new(0),
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        });
        let drive = Self {
            core,
            workers: Mutex::new(Vec::new()),
        };
        if !drive.uploads_at_close {
            let mut workers = drive.workers.lock().unwrap_or_else(|p| p.into_inner());
            for _ in 0..UPLOAD_THREADS {
                let core = Arc::clone(&drive.core);
                let builder = std::thread::Builder::new().name("fsgate-upload".into());
                let handle = fsgate_core::threads::spawn(builder, move || core.serve_uploads())
                    .map_err(|e| Error::io("starting an upload thread", e))?;
                workers.push(handle);
            }
        }
        Ok(drive)
    }

    /// Waits for the queued uploads (saying so in the log when there are any), tries once
    /// more those that failed, then stops the upload threads. Files still not uploaded stay
    /// in the vault, orphans for the next mount.
    fn finish_uploads(&self) {
        let pending = self.uploads.pending();
        if pending > 0 {
            tracing::warn!("unmounting: waiting for {pending} upload(s) to finish");
        }
        for file in self.uploads.drain() {
            if let Err(e) = self.upload(&file) {
                let key = file.key();
                tracing::warn!("{key:?} stays in the vault, uploaded at the next mount: {e}");
            }
            file.lock().queued = false;
            if let Err(e) = self.release(&file) {
                tracing::warn!("closing {:?} in the vault: {e}", file.key());
            }
        }
        self.uploads.stop();
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in workers {
            let _ = handle.join();
        }
    }

    /// Uploads every orphan of the vault; returns the keys uploaded. The first failure is
    /// returned after trying them all (those files stay orphans).
    pub fn upload_orphans(&self) -> Result<Vec<String>> {
        let mut uploaded = Vec::new();
        let mut first_error = None;
        for key in self.vault.enumerate_cached_files(EnumMode::All)? {
            if key.starts_with(SET_ASIDE) {
                // Deleted while open when the last mount ended: nothing to upload.
                self.vault.file_delete(&key)?;
            }
        }
        for key in self.vault.enumerate_cached_files(EnumMode::Orphan)? {
            match self.upload_orphan(&key) {
                Ok(()) => uploaded.push(key),
                Err(e) => {
                    tracing::warn!("orphan {key:?} stays in the vault: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(uploaded),
        }
    }

    fn upload_orphan(&self, key: &str) -> Result<()> {
        self.vault.file_open(key, None)?;
        let file = OpenFile::new(key, true, SystemTime::now());
        let result = self.upload(&file);
        self.vault.file_close_ex(key, FlushMode::None)?;
        result
    }

    /// The vault (for tests and tools: its status and cached files).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }
}

impl Drop for RemoteDrive {
    fn drop(&mut self) {
        self.finish_uploads();
    }
}

impl DriveCore {
    /// An upload thread: uploads queued files until the queue stops.
    fn serve_uploads(&self) {
        while let Some(file) = self.uploads.next() {
            {
                let mut state = file.lock();
                state.queued = false;
                state.uploading += 1;
            }
            let result = self.upload(&file);
            let failed = {
                let mut state = file.lock();
                state.uploading -= 1;
                match result {
                    Ok(()) => None,
                    // Queued again meanwhile (written and closed): that upload comes next.
                    Err(_) if state.queued => None,
                    Err(e) => {
                        tracing::warn!(
                            "uploading {:?} (tried again in a few seconds): {e}",
                            state.key
                        );
                        state.queued = true;
                        Some(Arc::clone(&file))
                    }
                }
            };
            self.uploads.finished(failed);
            if let Err(e) = self.release(&file) {
                tracing::warn!("closing {:?} in the vault: {e}", file.key());
            }
        }
    }

    /// Queues `file`'s upload unless it has no changes or is queued already.
    fn queue_upload(&self, file: &Arc<OpenFile>) {
        {
            let mut state = file.lock();
            if !state.dirty || state.deleted || state.queued {
                return;
            }
            state.queued = true;
        }
        self.uploads.push(Arc::clone(file));
    }

    fn open_files(&self) -> MutexGuard<'_, HashMap<String, Arc<OpenFile>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dir_info(&self) -> FileInfo {
        FileInfo::new(
            FileKind::Directory,
            self.uid,
            self.gid,
            SystemTime::UNIX_EPOCH,
        )
    }

    fn file_info(&self, size: u64, modified: SystemTime) -> FileInfo {
        let mut info = FileInfo::new(FileKind::File, self.uid, self.gid, modified);
        info.size = size;
        info
    }

    fn open_info(&self, file: &OpenFile) -> Result<FileInfo> {
        let state = file.lock();
        let size = self.vault.file_get_size(&state.key)?;
        Ok(self.file_info(size, state.modified))
    }

    /// What `key` is: from the cache when fresh, else from the store (a `HEAD`, then a
    /// one-key listing under it for a directory). When the store cannot be reached, a file
    /// the vault holds is still a file (its data is served from the vault).
    fn lookup(&self, key: &str) -> Result<Entry> {
        if key.is_empty() {
            return Ok(Entry::Directory);
        }
        if let Some(entry) = self.meta.get(key) {
            return Ok(entry);
        }
        let asked = self.meta.asking();
        let entry = match self.remote.head(key) {
            Ok(info) => Entry::File(info),
            Err(StoreError::NotFound) => match self.remote.list_all(key, 1) {
                Ok(keys) if keys.is_empty() => Entry::Missing,
                Ok(_) => Entry::Directory,
                Err(e) => return Err(e.into_error(key)),
            },
            Err(StoreError::Failed(e)) => {
                if self.vault.file_exists(key)? {
                    tracing::debug!("{key:?} served from the vault: {e}");
                    let size = self.vault.file_get_size(key)?;
                    return Ok(Entry::File(ObjectInfo {
                        size,
                        modified: SystemTime::UNIX_EPOCH,
                        version: String::new(),
                    }));
                }
                return Err(e);
            }
        };
        self.meta.learn(key, entry.clone(), asked);
        Ok(entry)
    }

    /// The file the drive holds under `key` (closed and waiting for its upload, say), in use
    /// again.
    fn reuse(&self, key: &str) -> Option<Arc<OpenFile>> {
        let open = self.open_files();
        let file = open.get(key)?;
        file.lock().users += 1;
        Some(Arc::clone(file))
    }

    /// Opens `key` in the vault for a first handle, agreeing with the store: clean data of
    /// another version of the object is dropped; unflushed data (an orphan) is kept and
    /// makes the file dirty, so it is uploaded at close (the last upload wins).
    fn open_key(
        &self,
        key: &str,
        object: Option<&ObjectInfo>,
        created: bool,
    ) -> Result<Arc<OpenFile>> {
        if let Some(file) = self.reuse(key) {
            return Ok(file);
        }
        let mut open = self.open_files();
        if let Some(file) = open.get(key) {
            file.lock().users += 1;
            return Ok(Arc::clone(file));
        }
        let mut dirty = created;
        let mut modified = object.map_or_else(SystemTime::now, |o| o.modified);
        if self.vault.file_exists(key)? {
            let status = self.vault.file_get_status(key)?;
            let version = self.vault.file_tag_get(key, VERSION_TAG).ok();
            let offline = object.is_some_and(|o| o.version.is_empty());
            if created {
                self.vault.file_delete(key)?;
            } else if status.contains(FileStatus::CHANGED) {
                dirty = true;
                modified = SystemTime::now();
            } else if !offline && version.as_deref() != object.map(|o| o.version.as_bytes()) {
                self.vault.file_delete(key)?;
                self.transfer.forget_stream(key);
            }
        }
        if self.vault.file_exists(key)? {
            self.vault.file_open(key, None)?;
        } else {
            self.vault
                .file_open(key, Some(object.map_or(0, |o| o.size)))?;
            if let Some(o) = object.filter(|o| !o.version.is_empty()) {
                self.vault
                    .file_tag_set(key, VERSION_TAG, o.version.as_bytes())?;
            }
        }
        let file = Arc::new(OpenFile::new(key, dirty, modified));
        open.insert(key.to_owned(), Arc::clone(&file));
        Ok(file)
    }

    /// Its last handle closed: the drive lets `file` go now, or after its upload.
    fn close_file(&self, file: &Arc<OpenFile>) -> Result<()> {
        {
            let mut state = file.lock();
            state.users = state.users.saturating_sub(1);
        }
        self.release(file)
    }

    /// Lets `file` go once no handle and no upload needs it: out of the open files, closed
    /// in the vault without flushing (data that could not be uploaded stays there, an
    /// orphan), and dropped from the vault when it was deleted.
    fn release(&self, file: &Arc<OpenFile>) -> Result<()> {
        let mut open = self.open_files();
        let mut state = file.lock();
        // A deleted file's upload never touches the vault again (see `cancel`).
        let uploads = !state.deleted && (state.queued || state.uploading > 0);
        if state.users > 0 || uploads || !state.vault_open {
            return Ok(());
        }
        if open.get(&state.key).is_some_and(|f| Arc::ptr_eq(f, file)) {
            open.remove(&state.key);
        }
        // The open files' lock is held until the vault file is closed: an open of the same
        // name meanwhile would otherwise have its own vault open closed here.
        state.vault_open = false;
        self.vault.file_close_ex(&state.key, FlushMode::None)?;
        if state.deleted && self.vault.file_exists(&state.key)? {
            let status = self.vault.file_get_status(&state.key)?;
            if !status.contains(FileStatus::OPEN) {
                self.vault.file_delete(&state.key)?;
            }
        }
        Ok(())
    }

    /// Uploads `file` whole when it holds changes the store lacks, then marks its data
    /// clean in the vault; waits for an upload of the file already running (and for a
    /// rename or delete of it). A failure leaves it dirty.
    fn upload(&self, file: &OpenFile) -> Result<()> {
        let _turn = file.turn();
        self.upload_in_turn(file)
    }

    /// [`upload`](Self::upload) for a caller holding the file's turn. Writes to the file go
    /// on meanwhile: when one lands before the upload ends, the file stays dirty (the
    /// uploaded object holds every byte written before the upload began, perhaps some
    /// newer ones), and its next close or `fsync` uploads it again.
    fn upload_in_turn(&self, file: &OpenFile) -> Result<()> {
        let (key, version, modified) = {
            let state = file.lock();
            if !state.dirty || state.deleted {
                return Ok(());
            }
            (state.key.clone(), state.version, state.modified)
        };
        let size = self.vault.file_get_size(&key)?;
        let progress = |done| {
            if let Some(report) = &self.progress {
                report(UploadProgress {
                    key: &key,
                    done,
                    total: size,
                });
            }
        };
        let e_tag = self
            .remote
            .upload(
                &key,
                size,
                |offset, buffer| self.read_exact(&key, offset, buffer),
                progress,
            )
            .map_err(|e| e.into_error(&key))?;
        self.transfer.forget_stream(&key);
        let mut state = file.lock();
        if state.deleted {
            return Ok(());
        }
        self.meta.forget_entry(&key);
        if state.version != version {
            return Ok(());
        }
        // Writes wait for the file's lock: nothing lands between this check and the flush.
        self.transfer
            .acknowledging(&key, || self.vault.file_flush(&key, FlushMode::Immediate))?;
        state.dirty = false;
        let info = ObjectInfo {
            size,
            modified,
            version: e_tag.clone().unwrap_or_default(),
        };
        match e_tag {
            Some(tag) => self.vault.file_tag_set(&key, VERSION_TAG, tag.as_bytes())?,
            None => {
                if self.vault.file_tag_exists(&key, VERSION_TAG)? {
                    self.vault.file_tag_delete(&key, VERSION_TAG)?;
                }
            }
        }
        self.meta.put(&key, Entry::File(info));
        Ok(())
    }

    /// Reads all of `buffer` from the vault at `offset`.
    fn read_exact(&self, key: &str, offset: u64, buffer: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buffer.len() {
            let n = self
                .vault
                .file_read(key, offset + done as u64, &mut buffer[done..])?;
            if n == 0 {
                return Err(Error::from_code(
                    code::ERROR_HANDLE_EOF,
                    format!("{key:?} ended at {} while uploading", offset + done as u64),
                ));
            }
            done += n;
        }
        Ok(())
    }

    /// Keeps a sequential reader's next bytes coming in windows of [`READ_AHEAD`]: the
    /// window holding a read is fetched in one request (at once, when the read finds it
    /// missing), and the one after it on a thread of its own while the reader consumes the
    /// current one. A read waits for a background fetch that covers it rather than asking
    /// for the same bytes again. Reads more than a window away from the last one are random:
    /// they fetch only the blocks they need.
    fn read_ahead(&self, key: &str, ahead: &ReadAhead, position: u64, len: u64) -> Result<()> {
        let end = position + len;
        let mut state = ahead.state.lock().unwrap_or_else(|e| e.into_inner());
        let sequential = position.abs_diff(state.next) <= READ_AHEAD;
        state.next = end;
        if !sequential {
            return Ok(());
        }
        if let Some((start, handle)) = state.pending.take() {
            if start < end {
                let _ = handle.join();
            } else {
                state.pending = Some((start, handle));
            }
        }
        if end > state.fetched_to {
            let from = position.max(state.fetched_to);
            let to = end.max(from + READ_AHEAD);
            self.vault.file_prefetch(key, from..to)?;
            state.fetched_to = to;
        }
        let size = self.vault.file_get_size(key)?;
        if state.pending.is_none() && state.fetched_to < size && state.fetched_to < end + READ_AHEAD
        {
            let (vault, key) = (Arc::clone(&self.vault), key.to_owned());
            let from = state.fetched_to;
            let to = from + READ_AHEAD;
            let builder = std::thread::Builder::new().name("fsgate-read-ahead".into());
            let handle = fsgate_core::threads::spawn(builder, move || {
                if let Err(e) = vault.file_prefetch(&key, from..to) {
                    tracing::debug!("reading {key:?} ahead: {e}");
                }
            })
            .map_err(|e| Error::io("starting a read-ahead thread", e))?;
            state.fetched_to = to;
            state.pending = Some((from, handle));
        }
        Ok(())
    }

    /// The open file behind an event: its context, else the one open under `key`.
    fn opened(&self, context: Option<&Arc<OpenFile>>, key: &str) -> Option<Arc<OpenFile>> {
        context
            .cloned()
            .or_else(|| self.open_files().get(key).cloned())
    }

    fn list(&self, dir: &str) -> Result<Vec<(OsString, FileInfo)>> {
        // Files made here and not uploaded yet, and open files whose size changed. Taken
        // before the listing: a file the drive lets go after this was uploaded before it
        // let go, so the listing that follows holds it.
        let open: Vec<(String, Arc<OpenFile>)> = self
            .open_files()
            .iter()
            .filter(|(k, _)| parent_of(k) == dir && !k.is_empty())
            .map(|(k, f)| (k.clone(), Arc::clone(f)))
            .collect();
        let asked = self.meta.asking();
        let level = self.remote.list_level(dir).map_err(|e| e.into_error(dir))?;
        let join = |name: &str| {
            if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            }
        };
        let mut entries: Vec<(OsString, FileInfo)> = Vec::new();
        let mut cached = Vec::new();
        for name in &level.prefixes {
            entries.push((name.into(), self.dir_info()));
            cached.push((join(name), Entry::Directory));
        }
        for (name, info) in &level.objects {
            if name == DIRECTORY_MARKER || level.prefixes.contains(name) {
                continue;
            }
            entries.push((name.into(), self.file_info(info.size, info.modified)));
            cached.push((join(name), Entry::File(info.clone())));
        }
        let mut index: HashMap<OsString, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        for (key, file) in open {
            if file.lock().deleted {
                continue;
            }
            let name = OsString::from(key.rsplit('/').next().unwrap_or(&key));
            // Gone from the vault meanwhile (deleted): the listing has what is left.
            let Ok(info) = self.open_info(&file) else {
                continue;
            };
            match index.get(&name) {
                Some(&i) => entries[i].1 = info,
                None => {
                    index.insert(name.clone(), entries.len());
                    entries.push((name, info));
                }
            }
        }
        self.meta.learn_listing(dir, cached, asked);
        Ok(entries)
    }

    /// Whether directory `dir` has anything but its marker.
    fn has_children(&self, dir: &str) -> Result<bool> {
        let keys = self
            .remote
            .list_all(dir, 2)
            .map_err(|e| e.into_error(dir))?;
        let marker = marker_of(dir);
        let local = self.open_files().keys().any(|k| under(dir, k) && k != dir);
        Ok(local || keys.iter().any(|k| *k != marker))
    }

    fn rename_file(&self, from: &str, to: &str, context: Option<&Arc<OpenFile>>) -> Result<()> {
        let file = self.opened(context, from);
        let _turn = file.as_ref().map(|f| f.turn());
        if let Some(file) = &file {
            self.upload_in_turn(file)?;
        }
        let target = self.open_files().get(to).cloned();
        if let Some(target) = target.filter(|t| file.as_ref().is_none_or(|f| !Arc::ptr_eq(f, t))) {
            // Replaced: its upload, if one runs, ends before the copy lands.
            self.cancel(&target)?;
        }
        match self.remote.copy(from, to) {
            Ok(()) => self.remote.delete(from).map_err(|e| e.into_error(from))?,
            // Never uploaded (made here, empty and closed without a write cannot happen: a
            // new file is dirty until uploaded); nothing to move in the store.
            Err(StoreError::NotFound) => {}
            Err(StoreError::Failed(e)) => return Err(e),
        }
        self.move_in_vault(from, to, file.clone())
    }

    /// Drops `file` (deleted, or replaced by a rename): never uploaded from now on, its
    /// running upload waited for, and let go when no handle has it open. A file still open
    /// is first read whole into the vault, then set aside there under an id no object can
    /// have ([`SET_ASIDE`]): its holders read and write it there, as POSIX keeps an unlinked
    /// file for its open descriptors, while its name is free for a new file; its last close
    /// drops it.
    fn cancel(&self, file: &Arc<OpenFile>) -> Result<()> {
        file.lock().deleted = true;
        // Holding the turn, no upload of it runs (one that starts later finds it deleted),
        // so its vault file goes now, before the name is used again.
        let _turn = file.turn();
        self.release(file)?;
        let key = {
            let state = file.lock();
            if !state.vault_open || state.key.starts_with(SET_ASIDE) {
                return Ok(());
            }
            state.key.clone()
        };
        // The object goes next: what its holders may still read is fetched now.
        let size = self.vault.file_get_size(&key)?;
        if let Err(e) = self.vault.file_prefetch(&key, 0..size) {
            tracing::warn!("{key:?} deleted while open, not all of it cached: {e}");
        }
        let mut state = file.lock();
        if state.vault_open && !state.key.starts_with(SET_ASIDE) {
            let n = self.set_aside.fetch_add(1, Ordering::Relaxed);
            let aside = format!("{SET_ASIDE}{n}");
            self.vault.file_change_id(&state.key, &aside)?;
            self.transfer.forget_stream(&state.key);
            state.key = aside;
        }
        Ok(())
    }

    /// Moves the vault's file and the open file from `from` to `to`, dropping what was at
    /// `to`.
    fn move_in_vault(&self, from: &str, to: &str, file: Option<Arc<OpenFile>>) -> Result<()> {
        let mut open = self.open_files();
        if let Some(replaced) = open.remove(to) {
            replaced.lock().deleted = true;
        } else if self.vault.file_exists(to)? {
            self.vault.file_delete(to)?;
        }
        if self.vault.file_exists(from)? {
            self.vault.file_change_id(from, to)?;
        }
        if let Some(file) = file {
            if open.get(from).is_some_and(|f| Arc::ptr_eq(f, &file)) {
                open.remove(from);
            }
            let mut state = file.lock();
            state.key = to.to_owned();
            // A file let go meanwhile (its upload ended) is opened afresh by its next user.
            if state.vault_open {
                drop(state);
                open.insert(to.to_owned(), file);
            }
        }
        drop(open);
        self.transfer.forget_stream(from);
        self.transfer.forget_stream(to);
        self.meta.forget(from);
        self.meta.forget(to);
        Ok(())
    }

    fn rename_directory(&self, from: &str, to: &str) -> Result<()> {
        let files: Vec<Arc<OpenFile>> = self
            .open_files()
            .iter()
            .filter(|(k, _)| under(from, k))
            .map(|(_, f)| Arc::clone(f))
            .collect();
        let _turns: Vec<MutexGuard<'_, ()>> = files.iter().map(|f| f.turn()).collect();
        for file in &files {
            self.upload_in_turn(file)?;
        }
        let keys = self
            .remote
            .list_all(from, usize::MAX)
            .map_err(|e| e.into_error(from))?;
        let moved = |key: &str| format!("{to}{}", &key[from.len()..]);
        for key in &keys {
            self.remote
                .copy(key, &moved(key))
                .map_err(|e| e.into_error(key))?;
            self.remote.delete(key).map_err(|e| e.into_error(key))?;
        }
        for key in self.vault.enumerate_cached_files(EnumMode::All)? {
            if under(from, &key) {
                let file = self.open_files().get(&key).cloned();
                self.move_in_vault(&key, &moved(&key), file)?;
            }
        }
        self.meta.forget_tree(from);
        self.meta.forget_tree(to);
        Ok(())
    }
}

/// The vault's events, shared with the drive (which flushes through them).
struct SharedTransfer(Arc<Transfer>);

impl fsgate_cache::Events for SharedTransfer {
    fn on_read_data(&self, p: &mut fsgate_cache::ReadDataParams<'_>) {
        self.0.on_read_data(p);
    }

    fn on_write_data(&self, p: &mut fsgate_cache::WriteDataParams<'_>) {
        self.0.on_write_data(p);
    }

    fn on_error(&self, file_id: &str, error: &Error) {
        self.0.on_error(file_id, error);
    }
}

impl Hooks for RemoteDrive {}

impl Events for RemoteDrive {
    type FileContext = Arc<OpenFile>;
    type HandleContext = ReadAhead;
    type EnumerationContext = Listing;

    fn on_unmount(&self, _p: &mut UnmountParams) -> Result<()> {
        self.finish_uploads();
        // Files still open: their last changes were never queued.
        let files: Vec<Arc<OpenFile>> = self.open_files().values().cloned().collect();
        for file in files {
            if file.lock().users == 0 {
                continue;
            }
            if let Err(e) = self.upload(&file) {
                let key = file.key();
                tracing::warn!("{key:?} stays in the vault, uploaded at the next mount: {e}");
            }
        }
        Ok(())
    }

    fn on_get_volume_size(&self, p: &mut GetVolumeSizeParams) -> Result<()> {
        // An object store has no size: a petabyte, nearly all free.
        p.sector_size = 4096;
        p.total_sectors = 1 << 38;
        p.available_sectors = 1 << 38;
        p.total_files = 1 << 32;
        p.free_files = 1 << 32;
        Ok(())
    }

    fn on_get_volume_label(&self, p: &mut GetVolumeLabelParams) -> Result<()> {
        p.buffer = "fsgate-remote".to_owned();
        Ok(())
    }

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, Arc<OpenFile>>) -> Result<()> {
        let key = key_of(p.file_name)?;
        if let Some(file) = self.opened(p.file_context.as_deref(), &key) {
            if !file.lock().deleted || p.file_context.is_some() {
                p.info = self.open_info(&file)?;
                p.file_exists = true;
                return Ok(());
            }
        }
        match self.lookup(&key)? {
            Entry::File(info) => {
                p.info = self.file_info(info.size, info.modified);
                p.file_exists = true;
            }
            Entry::Directory => {
                p.info = self.dir_info();
                p.file_exists = true;
            }
            Entry::Missing => {}
        }
        Ok(())
    }

    fn on_enumerate_directory(
        &self,
        p: &mut EnumerateDirectoryParams<'_, Arc<OpenFile>, ReadAhead, Listing>,
    ) -> Result<()> {
        if p.restart || p.enumeration_context.is_none() {
            let dir = key_of(p.directory_name)?;
            let entries = self.list(&dir)?;
            *p.enumeration_context = Some(Listing { entries, next: 0 });
        }
        let Some(listing) = p.enumeration_context.as_mut() else {
            return Ok(());
        };
        if let Some((name, info)) = listing.entries.get(listing.next) {
            listing.next += 1;
            p.file_found = true;
            p.file_name.clone_from(name);
            p.info = info.clone();
        }
        Ok(())
    }

    fn on_close_directory_enumeration(
        &self,
        _p: &mut CloseDirectoryEnumerationParams<'_, Arc<OpenFile>, Listing>,
    ) -> Result<()> {
        Ok(())
    }

    fn on_create_file(&self, p: &mut CreateFileParams<'_, Arc<OpenFile>, ReadAhead>) -> Result<()> {
        let key = key_of(p.file_name)?;
        match p.kind {
            FileKind::Directory => {
                let marker = marker_of(&key);
                self.remote
                    .put(&marker, bytes::Bytes::new())
                    .map_err(|e| e.into_error(&marker))?;
                self.meta.put(&key, Entry::Directory);
                // The kernel found nothing under this name before it asked for the
                // directory, so it is empty: names looked up in it are missing without a
                // request (for the metadata timeout, as any listing).
                self.meta.put_listing(&key, []);
                p.info = self.dir_info();
                p.info_filled = true;
                Ok(())
            }
            FileKind::File => {
                let file = self.open_key(&key, None, true)?;
                self.meta.forget_entry(&key);
                p.info = self.open_info(&file)?;
                p.info_filled = true;
                *p.file_context = Some(file);
                *p.handle_context = Some(ReadAhead {
                    state: Mutex::new(ReadState::default()),
                });
                Ok(())
            }
            _ => Err(Error::from_errno(
                libc::EPERM,
                format!(
                    "create {}: an object store holds files and directories only",
                    p.file_name.display()
                ),
            )),
        }
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, Arc<OpenFile>, ReadAhead>) -> Result<()> {
        if p.kind == FileKind::Directory {
            return Ok(());
        }
        if p.file_context.is_none() {
            let key = key_of(p.file_name)?;
            if let Some(file) = self.reuse(&key) {
                *p.file_context = Some(file);
                *p.handle_context = Some(ReadAhead {
                    state: Mutex::new(ReadState::default()),
                });
                return Ok(());
            }
            let object = match self.lookup(&key)? {
                Entry::File(info) => info,
                Entry::Missing => return Err(not_found(&key)),
                Entry::Directory => return Ok(()),
            };
            *p.file_context = Some(self.open_key(&key, Some(&object), false)?);
        }
        *p.handle_context = Some(ReadAhead {
            state: Mutex::new(ReadState::default()),
        });
        Ok(())
    }

    fn on_cleanup_file(
        &self,
        p: &mut CleanupFileParams<'_, Arc<OpenFile>, ReadAhead>,
    ) -> Result<()> {
        match p.file_context.as_deref() {
            Some(file) if self.uploads_at_close => self.upload(file),
            Some(file) => {
                self.queue_upload(file);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn on_close_file(&self, p: &mut CloseFileParams<'_, Arc<OpenFile>, ReadAhead>) -> Result<()> {
        match p.file_context.as_deref() {
            Some(file) if p.last_handle => self.close_file(file),
            _ => Ok(()),
        }
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, Arc<OpenFile>, ReadAhead>) -> Result<()> {
        let file = p
            .file_context
            .ok_or_else(|| not_found(&p.file_name.display().to_string()))?;
        let key = file.key();
        if let Some(ahead) = p.handle_context {
            self.read_ahead(&key, ahead, p.position, p.buffer.len() as u64)?;
        }
        p.bytes_read = self.vault.file_read(&key, p.position, p.buffer)?;
        Ok(())
    }

    fn on_write_file(&self, p: &mut WriteFileParams<'_, Arc<OpenFile>, ReadAhead>) -> Result<()> {
        let file = p
            .file_context
            .as_deref()
            .ok_or_else(|| not_found(&p.file_name.display().to_string()))?;
        let mut state = file.lock();
        self.vault.file_write(&state.key, p.position, p.buffer)?;
        state.dirty = true;
        state.version += 1;
        state.modified = SystemTime::now();
        p.bytes_written = p.buffer.len();
        Ok(())
    }

    fn on_set_file_size(&self, p: &mut SetFileSizeParams<'_, Arc<OpenFile>>) -> Result<()> {
        let key = key_of(p.file_name)?;
        let held = p.file_context.as_deref().cloned();
        let (file, temporary) = match held.or_else(|| self.reuse(&key)) {
            Some(file) if p.file_context.is_some() => (file, false),
            // Held by the drive only (its upload), now by this truncate too.
            Some(file) => (file, true),
            None => {
                let object = match self.lookup(&key)? {
                    Entry::File(info) => info,
                    _ => return Err(not_found(&key)),
                };
                (self.open_key(&key, Some(&object), false)?, true)
            }
        };
        let result = (|| {
            {
                let mut state = file.lock();
                self.vault.file_set_size(&state.key, p.size, false)?;
                state.dirty = true;
                state.version += 1;
                state.modified = SystemTime::now();
            }
            if temporary && self.uploads_at_close {
                self.upload(&file)?;
            } else if temporary {
                self.queue_upload(&file);
            }
            p.info = self.open_info(&file)?;
            p.info_filled = true;
            Ok(())
        })();
        if temporary {
            self.close_file(&file)?;
        }
        result
    }

    fn on_set_file_attributes(
        &self,
        _p: &mut SetFileAttributesParams<'_, Arc<OpenFile>>,
    ) -> Result<()> {
        // Objects have no mode and no settable times: accepted and dropped, so `touch` and
        // `cp -p` work (the module docs say so).
        Ok(())
    }

    fn on_rename_or_move_file(
        &self,
        p: &mut RenameOrMoveFileParams<'_, Arc<OpenFile>>,
    ) -> Result<()> {
        let from = key_of(p.file_name)?;
        let to = key_of(p.new_file_name)?;
        let context = p.file_context.as_deref();
        let is_file = context.is_some()
            || self.open_files().contains_key(&from)
            || matches!(self.lookup(&from)?, Entry::File(_));
        if is_file {
            self.rename_file(&from, &to, context)
        } else {
            self.rename_directory(&from, &to)
        }
    }

    fn on_delete_file(&self, p: &mut DeleteFileParams<'_, Arc<OpenFile>>) -> Result<()> {
        let key = key_of(p.file_name)?;
        if p.is_directory {
            if self.has_children(&key)? {
                return Err(Error::from_code(
                    code::ERROR_DIR_NOT_EMPTY,
                    format!("{key:?} is not empty"),
                ));
            }
            let marker = marker_of(&key);
            self.remote
                .delete(&marker)
                .map_err(|e| e.into_error(&marker))?;
            self.meta.forget_tree(&key);
            return Ok(());
        }
        let file = self.opened(p.file_context.as_deref(), &key);
        if let Some(file) = &file {
            // Its upload, if one runs, ends before the object is deleted.
            self.cancel(file)?;
            let mut open = self.open_files();
            if open.get(&key).is_some_and(|f| Arc::ptr_eq(f, file)) {
                open.remove(&key);
            }
        } else if self.vault.file_exists(&key)? {
            self.vault.file_delete(&key)?;
        }
        self.remote.delete(&key).map_err(|e| e.into_error(&key))?;
        self.transfer.forget_stream(&key);
        self.meta.put(&key, Entry::Missing);
        Ok(())
    }

    fn on_is_directory_empty(&self, p: &mut IsDirectoryEmptyParams<'_>) -> Result<()> {
        let key = key_of(p.directory_name)?;
        p.is_empty = Some(!self.has_children(&key)?);
        Ok(())
    }

    fn on_flush_file(&self, p: &mut FlushFileParams<'_, Arc<OpenFile>, ReadAhead>) -> Result<()> {
        match p.file_context.as_deref() {
            Some(file) => self.upload(file),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_paths_are_keys_without_slashes_at_either_end() {
        assert_eq!(key_of(Path::new("/")).unwrap(), "");
        assert_eq!(key_of(Path::new("/a/b")).unwrap(), "a/b");
    }

    #[test]
    fn names_that_are_not_utf8_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let name = Path::new(std::ffi::OsStr::from_bytes(b"/a\xff"));
        assert_eq!(key_of(name).unwrap_err().code(), code::ERROR_INVALID_NAME);
    }

    #[test]
    fn markers_sit_inside_their_directory() {
        assert_eq!(marker_of(""), DIRECTORY_MARKER);
        assert_eq!(marker_of("a/b"), format!("a/b/{DIRECTORY_MARKER}"));
    }

    #[test]
    fn under_means_inside_the_directory_not_a_longer_name() {
        assert!(under("a", "a/b"));
        assert!(under("", "a"));
        assert!(!under("a", "ab/c"));
        assert!(!under("a", "a"));
    }
}
