//! The VFS engine: the reference's path-based events over an inode-based namespace, with
//! no FUSE type in sight.
//!
//! The engine owns everything a drive keeps between requests: the inode ↔ path table
//! ([`namespace`]), open files with their contexts and handles ([`handles`]), the handles
//! serving descriptors the kernel opened by itself ([`implicit`]), and fsgate's own caches
//! (the metadata budgets and the user-mode block cache, [`crate::cache`]). Each operation is
//! one method taking plain Rust values — paths, [`Ino`], [`Fh`], open flags as integers,
//! [`FileInfo`] — and returning a [`Result`]; the `ops_*` modules hold them, grouped by what
//! they touch (names, metadata, data).
//!
//! The FUSE layer ([`crate::wire`]) decodes a request, resolves its path here, submits one
//! of these methods to the dispatcher under the path's [`SerialKey`], and encodes what it
//! returns. So the engine runs, and is tested, without a mount and without root; the filter
//! overlay and the remote drive are meant to drive it the same way.
//!
//! An operation that changes the namespace is two calls: the event (run as the request's
//! job) and the table update (run by the request's completion, only when the event
//! returned in time — a job that timed out has its late result dropped, contexts included,
//! which is exactly "the late result is ignored").

mod acl;
pub(crate) mod handles;
pub(crate) mod implicit;
pub(crate) mod namespace;
mod ops_data;
mod ops_meta;
mod ops_names;
mod privileges;
#[cfg(test)]
mod tests;

use std::ffi::{OsStr, OsString};
use std::hash::BuildHasher;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use foldhash::fast::FixedState;
use fsgate_core::dispatch::SerialKey;
use fsgate_core::{code, Error, Originator, Result};

use crate::buffers::Buffers;
use crate::cache::{BlockCache, Budget};
use crate::events::Events;
use crate::options::{FileCache, Options};
use crate::params::*;

pub(crate) use handles::{Backing, Caching, Fh, Handle, NewHandle, Opened};
pub(crate) use namespace::{join, Ino, Inodes};
pub(crate) use ops_data::{read_at_most, Read, WriteMode};
pub(crate) use ops_meta::{AttributesChanged, Changes};
pub(crate) use privileges::{write_takes_privileges, Cause};

/// Locks that survive a handler's panic: a poisoned lock still holds the application's
/// data, so the engine keeps serving it (`lock_mut` for events that may change a context,
/// `lock_ref` for reads, which may run beside other reads of the file).
pub(crate) use fsgate_core::sync::{lock, read as lock_ref, write as lock_mut};

/// A file context, shared by the file's handles: empty until the drive's first open or
/// create of the file stores one.
pub(crate) type FileCtx<E> = Arc<RwLock<Option<<E as Events>::FileContext>>>;

/// A file context slot for a file's first open, empty.
pub(crate) fn new_file_ctx<F>() -> Arc<RwLock<Option<F>>> {
    Arc::new(RwLock::new(None))
}

/// The longest name a directory entry may have, in bytes (`f_namemax`, as on ext4).
pub(crate) const NAME_MAX: usize = 255;

/// The serialization key of a path: one file, one key.
pub(crate) fn serial_key(path: &Path) -> SerialKey {
    // The same path must give the same key on every thread, so the hasher's seed is fixed.
    // u64::MAX is the dispatcher's serialize_events key.
    SerialKey(FixedState::with_seed(0).hash_one(path.as_os_str().as_bytes()) >> 1)
}

/// The originator of events no caller's request fires (a handle closed at unmount or
/// evicted past the implicit-handle limit): the kernel, pid, tid, uid and gid 0.
pub(crate) fn kernel_originator() -> Originator {
    Originator::of_thread(0, 0, 0)
}

/// `ERROR_FILE_NOT_FOUND` for `path`.
pub(crate) fn not_found(path: &Path) -> Error {
    Error::from_code(
        code::ERROR_FILE_NOT_FOUND,
        format!("{} does not exist", path.display()),
    )
}

/// The reference's access bits for Linux open flags.
pub(crate) fn desired_access(flags: i32) -> u32 {
    let mut a = match flags & libc::O_ACCMODE {
        libc::O_WRONLY => access::FILE_WRITE_DATA,
        libc::O_RDWR => access::FILE_READ_DATA | access::FILE_WRITE_DATA,
        _ => access::FILE_READ_DATA,
    };
    if flags & libc::O_APPEND != 0 {
        a |= access::FILE_APPEND_DATA;
    }
    a
}

/// One drive's engine: its events, namespace, open files and caches.
pub(crate) struct Engine<E: Events> {
    /// The application's events.
    pub(crate) events: Arc<E>,
    /// The options the drive was mounted with.
    pub(crate) options: Options,
    /// The inode ↔ path table.
    pub(crate) inodes: Mutex<Inodes>,
    /// Open files, handles and implicit handles.
    opens: Mutex<handles::Opens<E>>,
    /// Held while an implicit handle is made, so each inode gets one.
    implicit_opening: Mutex<()>,
    /// How many implicit handles may stay open (see [`implicit::default_limit`]).
    implicit_limit: usize,
    next_fh: AtomicU64,
    /// The mounting user and group, the owner of objects the drive does not describe.
    pub(crate) owner: (u32, u32),
    mounted_at: SystemTime,
    /// Whether the kernel accepted passthrough at `INIT` (see [`crate::route`]).
    pub(crate) passthrough: AtomicBool,
    /// Whether the kernel accepted `FUSE_HANDLE_KILLPRIV_V2` at `INIT`: the engine clears
    /// privileges on chown (see [`privileges`]).
    pub(crate) kills_privileges: AtomicBool,
    /// How many open inodes have handles that bypass the kernel's caches
    /// (`use_direct_io`): while none has, [`ttl`](Self::ttl) looks at no open file.
    direct_files: AtomicUsize,
    entries: Mutex<Budget>,
    negatives: Mutex<Budget>,
    blocks: Mutex<BlockCache>,
    /// `READ` buffers, reused across requests.
    pub(crate) buffers: Buffers,
}

impl<E: Events> Engine<E> {
    /// An engine over `events` with nothing looked up or open yet.
    pub(crate) fn new(events: Arc<E>, options: Options) -> Self {
        Self {
            events,
            inodes: Mutex::new(Inodes::default()),
            implicit_opening: Mutex::new(()),
            implicit_limit: implicit::default_limit(),
            opens: Mutex::new(handles::Opens::default()),
            next_fh: AtomicU64::new(1),
            owner: crate::sys::owner(),
            mounted_at: SystemTime::now(),
            passthrough: AtomicBool::new(false),
            kills_privileges: AtomicBool::new(false),
            direct_files: AtomicUsize::new(0),
            entries: Mutex::new(Budget::new(options.metadata_cache_size)),
            negatives: Mutex::new(Budget::new(options.non_existent_files_cache_size)),
            buffers: Buffers::default(),
            blocks: Mutex::new(BlockCache::new(
                if options.file_cache == FileCache::UserMode {
                    options.user_mode_file_cache_size
                } else {
                    0
                },
            )),
            options,
        }
    }

    /// A new handle id.
    fn next_handle_id(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// The entry and attribute timeout for one answer of `on_get_file_info` about `ino`.
    /// Zero while the inode has a handle open with direct I/O (`use_direct_io`): the drive
    /// may then answer each caller differently.
    pub(crate) fn ttl(&self, ino: Ino) -> Duration {
        if !self.options.metadata_cache_enabled || self.has_direct_handles(ino) {
            return Duration::ZERO;
        }
        lock(&self.entries).grant(ino.0, self.options.metadata_cache_timeout)
    }

    /// Whether `ino` has a handle open with direct I/O.
    fn has_direct_handles(&self, ino: Ino) -> bool {
        self.direct_files.load(Ordering::Relaxed) > 0
            && lock(&self.opens)
                .files
                .get(&ino)
                .is_some_and(|f| f.direct_handles > 0)
    }

    /// The timeout for a negative entry of `path`; `None` when it is not to be cached.
    pub(crate) fn negative_ttl(&self, path: &Path) -> Option<Duration> {
        if !self.options.non_existent_files_cache_enabled {
            return None;
        }
        let ttl =
            lock(&self.negatives).grant(serial_key(path).0, self.options.metadata_cache_timeout);
        (!ttl.is_zero()).then_some(ttl)
    }

    /// The kernel inode number for an object `on_get_file_info` described at `path`; its
    /// attributes are what the kernel is told (see [`privileges`]).
    pub(crate) fn inode_for(&self, path: &Path, info: &FileInfo) -> Result<Ino> {
        let mut inodes = lock(&self.inodes);
        let ino = if self.options.use_file_ids {
            inodes
                .lookup_id(path, info.kind, info.file_id)
                .ok_or_else(|| {
                    Error::from_errno(
                        libc::EIO,
                        format!(
                            "{}: file id {} is reserved (0 and 1, the root's, are not valid ids)",
                            path.display(),
                            info.file_id
                        ),
                    )
                })?
        } else {
            inodes.lookup(path, info.kind)
        };
        if let Some(p) = inodes.privileges(ino) {
            p.attributes = Some((info.mode, info.gid));
        }
        Ok(ino)
    }

    /// Forgets what the user-mode cache holds for `path`'s inode.
    pub(crate) fn drop_cached_blocks(&self, path: &Path) {
        if self.options.file_cache != FileCache::UserMode {
            return;
        }
        if let Some(ino) = lock(&self.inodes).find(path) {
            lock(&self.blocks).invalidate_file(ino);
        }
    }

    /// What an object looks like before `on_get_file_info` says otherwise: owned by the
    /// mounting user, all times the mount's.
    pub(crate) fn default_info(&self, kind: FileKind) -> FileInfo {
        FileInfo::new(kind, self.owner.0, self.owner.1, self.mounted_at)
    }

    /// The path events use for `ino`; `ESTALE` for an inode the table does not know.
    pub(crate) fn path_of(&self, ino: Ino) -> Result<PathBuf> {
        lock(&self.inodes)
            .path(ino)
            .map(Path::to_path_buf)
            .ok_or_else(|| Error::from_errno(libc::ESTALE, format!("unknown inode {}", ino.0)))
    }

    /// The path of `ino` and an extended attribute's name, for the xattr requests.
    pub(crate) fn attribute_of(&self, ino: Ino, name: &OsStr) -> Result<(PathBuf, OsString)> {
        Ok((self.path_of(ino)?, name.to_owned()))
    }

    /// The path of `name` in directory `parent`. A name longer than [`NAME_MAX`] bytes fails
    /// with `ENAMETOOLONG` before any event fires, as on ext4 (the kernel leaves that check
    /// to the filesystem).
    pub(crate) fn child(&self, parent: Ino, name: &OsStr) -> Result<PathBuf> {
        if name.len() > NAME_MAX {
            return Err(Error::from_errno(
                libc::ENAMETOOLONG,
                format!(
                    "file name: {} bytes, more than the {NAME_MAX} a name may have",
                    name.len()
                ),
            ));
        }
        Ok(join(&self.path_of(parent)?, name))
    }

    /// The file context of `path` when the file is open.
    fn open_context(&self, path: &Path) -> Option<FileCtx<E>> {
        let ino = lock(&self.inodes).find(path)?;
        self.file_context(ino)
    }

    /// The file context of inode `ino` when the file is open, else of the file open at
    /// `path`: an open file whose name was deleted has a context but no name the table
    /// knows.
    fn context_of(&self, ino: Ino, path: &Path) -> Option<FileCtx<E>> {
        self.file_context(ino).or_else(|| self.open_context(path))
    }

    /// The file context of inode `ino` when the file is open.
    fn file_context(&self, ino: Ino) -> Option<FileCtx<E>> {
        lock(&self.opens)
            .files
            .get(&ino)
            .map(|f| Arc::clone(&f.context))
    }

    /// Whether the kernel opens files without asking (`KernelOpensFiles`, which only the
    /// page cache allows: direct I/O and fsgate's own cache need every open).
    pub(crate) fn kernel_opens(&self) -> bool {
        self.options.kernel_opens_files && self.options.file_cache == FileCache::System
    }

    /// Whether reads go through fsgate's own block cache (`FileCache=UserMode`).
    pub(crate) fn user_mode_cache(&self) -> bool {
        self.options.file_cache == FileCache::UserMode
    }

    /// Fires `on_get_file_info`; `None` when the file does not exist (`/` always does).
    pub(crate) fn file_info(&self, path: &Path, who: Originator) -> Result<Option<FileInfo>> {
        self.file_info_of(None, path, who)
    }

    /// `on_get_file_info` for `path`, with the file context of inode `ino` when it is open
    /// (an open file whose name was deleted has a context but no name the table knows).
    pub(crate) fn file_info_of(
        &self,
        ino: Option<Ino>,
        path: &Path,
        who: Originator,
    ) -> Result<Option<FileInfo>> {
        let context = match ino {
            Some(ino) => self.context_of(ino, path),
            None => self.open_context(path),
        };
        let mut guard = context.as_ref().map(|c| lock_mut(c));
        let mut p = GetFileInfoParams {
            originator: who,
            file_name: path,
            file_exists: false,
            info: self.default_info(FileKind::File),
            file_context: guard.as_deref_mut().and_then(Option::as_mut),
        };
        self.events.on_get_file_info(&mut p)?;
        if p.file_exists {
            Ok(Some(p.info))
        } else if path.as_os_str() == "/" {
            Ok(Some(self.default_info(FileKind::Directory)))
        } else {
            Ok(None)
        }
    }

    /// The attributes of a name that must exist after a successful create: what the event
    /// `reported` (its handler filled its `info`), else `on_get_file_info` of `path`, else
    /// the defaults for `kind`.
    fn created_info(
        &self,
        path: &Path,
        reported: Option<FileInfo>,
        kind: FileKind,
        who: Originator,
    ) -> Result<FileInfo> {
        if let Some(info) = reported {
            return Ok(info);
        }
        Ok(self
            .file_info(path, who)?
            .unwrap_or_else(|| self.default_info(kind)))
    }

    /// What a create's `info` holds before its handler fills it: a `kind` object with
    /// permission bits `mode`, owned by the caller, every time now.
    fn new_object_info(&self, kind: FileKind, mode: u32, who: Originator) -> FileInfo {
        FileInfo {
            mode: mode & 0o7777,
            ..FileInfo::new(kind, who.uid, who.gid, SystemTime::now())
        }
    }

    /// The kind the inode table records for `path`; a file when it knows nothing.
    fn kind_of(&self, path: &Path) -> FileKind {
        let inodes = lock(&self.inodes);
        inodes
            .find(path)
            .and_then(|i| inodes.kind(i))
            .unwrap_or(FileKind::File)
    }
}
