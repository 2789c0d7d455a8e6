//! The FUSE glue: turns fuser's inode-based requests into the reference's path-based events.
//!
//! Each request is resolved to a path on the reader thread (a table lookup), then submitted
//! to the dispatcher under a [`SerialKey`] derived from that path, so one file's events run
//! in order and different files run in parallel. The job fires the events and returns what
//! the reply needs; the completion sends the reply. A job that times out has its reply sent
//! with `EIO` by the dispatcher's watchdog, and whatever it returns later — new contexts
//! included — is dropped, which is exactly "the late result is ignored".
//!
//! Contexts live in [`Opens`]: a file context per inode with its handle count, a handle
//! entry per kernel file handle (handle context, listing with its enumeration context).
//! They are inserted only when the kernel gets the handle, and removed after the last
//! event that may use them.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::File;
use std::hash::BuildHasher;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use foldhash::fast::FixedState;
use foldhash::{HashMap, HashSet};
use fsgate_core::dispatch::{Dispatcher, Hold, Outcome, SerialKey};
use fsgate_core::{code, originator, Error, Originator, Result};
use fuser::{
    BackingId, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyIoctl,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::buffers::Buffers;
use crate::cache::{BlockCache, Budget, BLOCK};
use crate::events::Events;
use crate::inodes::{join, Inodes};
use crate::options::{FileCache, Options};
use crate::params::*;
use crate::route::{Route, ROUTE_CLOSE_EVENT};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a handler panicked while holding a context; the context is still
    // the application's data, so keep serving it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A context for an event that may change it. Poisoning is recovered as for [`lock`].
fn lock_mut<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// A context for a read, which may run beside other reads of the file (`SerializeAccess`
/// off).
fn lock_ref<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

type FileCtx<E> = Arc<RwLock<<E as Events>::FileContext>>;

/// One entry of a listing: name, kind, the application's file id.
type Entry = (String, FileKind, u64);

/// A directory listing gathered at the first read of a handle.
struct Listing<E: Events> {
    context: E::EnumerationContext,
    /// Shared with each `READDIR` answer, which copies only the entries that fit.
    entries: Arc<Vec<Entry>>,
}

/// What a handle holds besides its file's context.
struct HandleState<E: Events> {
    context: E::HandleContext,
    listing: Option<Listing<E>>,
}

struct Handle<E: Events> {
    ino: u64,
    file: FileCtx<E>,
    state: Arc<RwLock<HandleState<E>>>,
    info: HandleInfo,
    directory: bool,
    /// The path at open time, for events after the kernel forgot the inode's name.
    opened_as: String,
    /// The backing file when an open routed the handle and the library serves its I/O.
    routed: Option<Arc<File>>,
    /// Whether the handle was routed with close events off.
    silent_close: bool,
}

impl<E: Events> Clone for Handle<E> {
    fn clone(&self) -> Self {
        Self {
            ino: self.ino,
            file: Arc::clone(&self.file),
            state: Arc::clone(&self.state),
            info: self.info,
            directory: self.directory,
            opened_as: self.opened_as.clone(),
            routed: self.routed.clone(),
            silent_close: self.silent_close,
        }
    }
}

struct OpenFile<E: Events> {
    context: FileCtx<E>,
    handles: usize,
    /// The kernel's backing file registration while the file has passthrough handles; the
    /// kernel demands one backing file per inode, so later opens reuse it.
    backing: Option<Arc<BackingId>>,
}

struct Opens<E: Events> {
    files: HashMap<u64, OpenFile<E>>,
    handles: HashMap<u64, Handle<E>>,
    /// With `KernelOpensFiles`: the handle serving each inode's descriptors that the kernel
    /// opened without asking the drive.
    implicit: HashMap<u64, u64>,
    /// The inodes of `implicit`, oldest first (some may have closed since).
    implicit_order: VecDeque<u64>,
}

/// A handle that an open or create produced, registered once the kernel gets it.
struct NewHandle<E: Events> {
    file: FileCtx<E>,
    state: HandleState<E>,
    info: HandleInfo,
    directory: bool,
    route: Option<Route>,
}

/// How a registered handle is to be answered.
enum Opened {
    /// A plain open with these flags.
    Plain(FopenFlags),
    /// The kernel serves the handle from this backing file, with these flags.
    Passthrough(Arc<BackingId>, FopenFlags),
}

/// What the glue shares between the reader threads and the workers.
pub(crate) struct Core<E: Events> {
    pub(crate) events: Arc<E>,
    options: Options,
    pub(crate) inodes: Mutex<Inodes>,
    opens: Mutex<Opens<E>>,
    /// Held while an implicit handle is made, so each inode gets one.
    implicit_opening: Mutex<()>,
    /// How many implicit handles may stay open (see [`implicit_limit`]).
    implicit_limit: usize,
    next_fh: AtomicU64,
    owner: (u32, u32),
    mounted_at: SystemTime,
    /// Whether the kernel accepted passthrough at `INIT` (see [`crate::route`]).
    pub(crate) passthrough: AtomicBool,
    entries: Mutex<Budget>,
    negatives: Mutex<Budget>,
    blocks: Mutex<BlockCache>,
    buffers: Buffers,
}

/// How many implicit handles (`KernelOpensFiles`) stay open at most: half the process's
/// descriptor limit, at least 64. The kernel keeps an inode, and so its implicit handle, as
/// long as it caches it, which for a tree read once can be every file in it; a drive that
/// holds a descriptor per handle (the mirror) would run out. Past the limit the oldest
/// handles no request is using close, and a later request for their file opens it again.
fn implicit_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limits into `limit`, which it may.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    (soft / 2).max(64)
}

/// The longest name a directory entry may have, in bytes (`f_namemax`, as on ext4).
const NAME_MAX: usize = 255;

/// The serialization key of a path: one file, one key.
fn key(path: &str) -> SerialKey {
    // The same path must give the same key on every thread, so the hasher's seed is fixed.
    // u64::MAX is the dispatcher's serialize_events key.
    SerialKey(FixedState::with_seed(0).hash_one(path) >> 1)
}

/// The thread whose request this is (FUSE names the thread; its process is looked up only
/// when an event asks, see [`Originator::pid`]).
fn originator(req: &Request) -> Originator {
    Originator::of_thread(req.pid(), req.uid(), req.gid())
}

fn errno(e: &Error) -> Errno {
    Errno::from_i32(e.errno())
}

fn not_found(path: &str) -> Error {
    Error::from_code(code::ERROR_FILE_NOT_FOUND, format!("{path} does not exist"))
}

fn bad_handle(fh: u64) -> Error {
    Error::from_code(
        code::ERROR_INVALID_HANDLE,
        format!("unknown file handle {fh}"),
    )
}

fn to_str<'a>(name: &'a OsStr, what: &str) -> Result<&'a str> {
    name.to_str()
        .ok_or_else(|| Error::invalid_argument(what, format!("{name:?} is not UTF-8")))
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::File => FileType::RegularFile,
        FileKind::Directory => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// The reference's access bits for Linux open flags.
fn desired_access(flags: i32) -> u32 {
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

/// Replies that can carry an error.
trait Fail: Send + 'static {
    fn fail(self, e: Errno);
}

macro_rules! fail {
    ($($t:ty),*) => {$(impl Fail for $t { fn fail(self, e: Errno) { self.error(e) } })*};
}
fail!(
    ReplyEmpty,
    ReplyData,
    ReplyEntry,
    ReplyAttr,
    ReplyOpen,
    ReplyWrite,
    ReplyStatfs,
    ReplyCreate,
    ReplyDirectory,
    ReplyXattr
);

impl<E: Events> Core<E> {
    pub(crate) fn new(events: Arc<E>, options: Options) -> Self {
        Self {
            events,
            inodes: Mutex::new(Inodes::default()),
            implicit_opening: Mutex::new(()),
            implicit_limit: implicit_limit(),
            opens: Mutex::new(Opens {
                files: HashMap::default(),
                handles: HashMap::default(),
                implicit: HashMap::default(),
                implicit_order: VecDeque::new(),
            }),
            next_fh: AtomicU64::new(1),
            owner: crate::sys::owner(),
            mounted_at: SystemTime::now(),
            passthrough: AtomicBool::new(false),
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

    /// The entry and attribute timeout for one answer of `on_get_file_info` about `ino`.
    fn ttl(&self, ino: u64) -> Duration {
        if !self.options.metadata_cache_enabled {
            return Duration::ZERO;
        }
        lock(&self.entries).grant(ino, self.options.metadata_cache_timeout)
    }

    /// The timeout for a negative entry of `path`; `None` when it is not to be cached.
    fn negative_ttl(&self, path: &str) -> Option<Duration> {
        if !self.options.non_existent_files_cache_enabled {
            return None;
        }
        let ttl = lock(&self.negatives).grant(key(path).0, self.options.metadata_cache_timeout);
        (!ttl.is_zero()).then_some(ttl)
    }

    /// The kernel inode number for an object `on_get_file_info` described at `path`.
    fn inode_for(&self, path: &str, info: &FileInfo) -> Result<u64> {
        let mut inodes = lock(&self.inodes);
        if self.options.use_file_ids {
            inodes
                .lookup_id(path, info.kind, info.file_id)
                .ok_or_else(|| {
                    Error::from_errno(
                        libc::EIO,
                        format!(
                        "{path}: file id {} is reserved (0 and 1, the root's, are not valid ids)",
                        info.file_id
                    ),
                    )
                })
        } else {
            Ok(inodes.lookup(path, info.kind))
        }
    }

    /// Forgets what the user-mode cache holds for `path`'s inode.
    pub(crate) fn drop_cached_blocks(&self, path: &str) {
        if self.options.file_cache != FileCache::UserMode {
            return;
        }
        if let Some(ino) = lock(&self.inodes).find(path) {
            lock(&self.blocks).invalidate_file(ino);
        }
    }

    fn default_info(&self, kind: FileKind) -> FileInfo {
        FileInfo::new(kind, self.owner.0, self.owner.1, self.mounted_at)
    }

    fn path_of(&self, ino: u64) -> Result<String> {
        lock(&self.inodes)
            .path(ino)
            .map(str::to_string)
            .ok_or_else(|| Error::from_errno(libc::ESTALE, format!("unknown inode {ino}")))
    }

    /// The path of `ino` and an extended attribute's name, for the xattr requests.
    fn attribute_of(&self, ino: u64, name: &OsStr) -> Result<(String, String)> {
        let path = self.path_of(ino)?;
        Ok((path, to_str(name, "attribute name")?.to_string()))
    }

    /// The path of `name` in directory `parent`. A name longer than [`NAME_MAX`] bytes fails
    /// with `ENAMETOOLONG` before any event fires, as on ext4 (the kernel leaves that check
    /// to the filesystem).
    fn child(&self, parent: u64, name: &OsStr) -> Result<String> {
        if name.len() > NAME_MAX {
            return Err(Error::from_errno(
                libc::ENAMETOOLONG,
                format!(
                    "file name: {} bytes, more than the {NAME_MAX} a name may have",
                    name.len()
                ),
            ));
        }
        let name = to_str(name, "file name")?;
        Ok(join(&self.path_of(parent)?, name))
    }

    fn open_context(&self, path: &str) -> Option<FileCtx<E>> {
        let ino = lock(&self.inodes).find(path)?;
        lock(&self.opens)
            .files
            .get(&ino)
            .map(|f| Arc::clone(&f.context))
    }

    fn handle(&self, fh: u64) -> Result<Handle<E>> {
        lock(&self.opens)
            .handles
            .get(&fh)
            .cloned()
            .ok_or_else(|| bad_handle(fh))
    }

    /// Whether the kernel opens files without asking (`KernelOpensFiles`, which only the
    /// page cache allows: direct I/O and fsgate's own cache need every open).
    fn kernel_opens(&self) -> bool {
        self.options.kernel_opens_files && self.options.file_cache == FileCache::System
    }

    /// The handle serving descriptors of `ino` that the kernel opened by itself
    /// (`KernelOpensFiles`): made now, firing `on_open_file` as an open of the file asking
    /// read and write access (read access if the drive refuses that), unless the inode has
    /// one. Runs as an event of the file.
    fn implicit_handle(&self, ino: u64, who: Originator) -> Result<Handle<E>> {
        let _making = lock(&self.implicit_opening);
        let existing = lock(&self.opens).implicit.get(&ino).copied();
        if let Some(fh) = existing {
            return self.handle(fh);
        }
        let path = self.path_of(ino)?;
        // Read and write access, as the descriptors may need either; read access alone when
        // the drive refuses writing (the kernel already checked each caller's access).
        let mut new = match self.open(ino, &path, libc::O_RDWR, false, who) {
            Err(e) if matches!(e.errno(), libc::EACCES | libc::EPERM | libc::EROFS) => {
                self.open(ino, &path, libc::O_RDONLY, false, who)?
            }
            opened => opened?,
        };
        // The kernel already opened the file: it takes no backing file for it any more.
        new.route = None;
        let (fh, _) = self.register(ino, &path, new, |_| {
            Err(std::io::ErrorKind::Unsupported.into())
        });
        self.make_implicit(ino, fh);
        self.handle(fh)
    }

    /// `fh` is now `ino`'s implicit handle.
    fn make_implicit(&self, ino: u64, fh: u64) {
        let mut opens = lock(&self.opens);
        opens.implicit.insert(ino, fh);
        opens.implicit_order.push_back(ino);
        // Handles closed since (forgotten or evicted) leave stale entries behind: drop them,
        // and repeats, once they outnumber the handles.
        if opens.implicit_order.len() > 2 * opens.implicit.len() + 64 {
            let Opens {
                implicit,
                implicit_order,
                ..
            } = &mut *opens;
            let mut seen = HashSet::default();
            implicit_order.retain(|i| implicit.contains_key(i) && seen.insert(*i));
        }
    }

    /// The implicit handles past `implicit_limit`, oldest first, as (path, inode, handle),
    /// for [`evict_implicit`](Self::evict_implicit). A deleted file's handle is never among
    /// them: it holds the file's data for the descriptors still open.
    fn implicit_surplus(&self) -> Vec<(String, u64, u64)> {
        let candidates: Vec<(u64, u64)> = {
            let mut opens = lock(&self.opens);
            let over = opens.implicit.len().saturating_sub(self.implicit_limit);
            let mut out = Vec::with_capacity(over);
            while out.len() < over {
                let Some(ino) = opens.implicit_order.pop_front() else {
                    break;
                };
                if let Some(&fh) = opens.implicit.get(&ino) {
                    out.push((ino, fh));
                }
            }
            out
        };
        if candidates.is_empty() {
            return Vec::new();
        }
        let mut surplus = Vec::with_capacity(candidates.len());
        let mut kept = Vec::new();
        {
            let inodes = lock(&self.inodes);
            for (ino, fh) in candidates {
                match inodes.path(ino) {
                    Some(path) if inodes.names(ino) > 0 && inodes.find(path) == Some(ino) => {
                        surplus.push((path.to_string(), ino, fh));
                    }
                    _ => kept.push(ino),
                }
            }
        }
        lock(&self.opens).implicit_order.extend(kept);
        surplus
    }

    /// Closes `ino`'s implicit handle `fh` if it still is one and no request holds it; a
    /// handle in use goes back in line. Runs as an event of the file.
    fn evict_implicit(&self, ino: u64, fh: u64) {
        let evicted = {
            let mut opens = lock(&self.opens);
            let unused = opens
                .handles
                .get(&fh)
                .is_some_and(|h| Arc::strong_count(&h.state) == 1);
            if opens.implicit.get(&ino) != Some(&fh) {
                None
            } else if unused {
                opens.implicit.remove(&ino);
                opens.handles.remove(&fh)
            } else {
                opens.implicit_order.push_back(ino);
                None
            }
        };
        // No request can reach the handle any more: its file's next one makes a new one.
        if let Some(h) = evicted {
            if let Err(e) = self.close_handle(fh, h) {
                tracing::debug!("on_close_file: {e}");
            }
        }
    }

    /// Closes the implicit handles left when the kernel lets go of the mount: it does not
    /// forget every inode before the connection ends.
    pub(crate) fn close_implicit_handles(&self) {
        let left: Vec<u64> = lock(&self.opens).implicit.values().copied().collect();
        for fh in left {
            if let Err(e) = self.close(fh) {
                tracing::debug!("on_close_file: {e}");
            }
        }
    }

    /// Before the last name of the file at `path` goes (`KernelOpensFiles`): a descriptor
    /// the kernel opened by itself may still use the file, so it gets its implicit handle
    /// now, while events can still name it; the handle closes when the kernel forgets it.
    fn keep_for_kernel(&self, path: &str, who: Originator) -> Result<()> {
        if !self.kernel_opens() {
            return Ok(());
        }
        let ino = {
            let inodes = lock(&self.inodes);
            inodes
                .find(path)
                .filter(|i| inodes.kind(*i) == Some(FileKind::File) && inodes.names(*i) <= 1)
        };
        match ino {
            Some(ino) => self.implicit_handle(ino, who).map(drop),
            None => Ok(()),
        }
    }

    /// The kernel's RELEASE of `fh`: closes it, unless it is `ino`'s implicit handle. A file
    /// created before the first refused OPEN told the kernel to open files itself gets a
    /// RELEASE (sent in the background, possibly after later requests), yet its handle
    /// already serves the kernel's own descriptors too; it closes when the kernel forgets
    /// the file.
    fn release(&self, ino: u64, fh: u64) -> Result<()> {
        if lock(&self.opens).implicit.get(&ino) == Some(&fh) {
            return Ok(());
        }
        self.close(fh)
    }

    /// The name events use for a handle's file now.
    fn handle_path(&self, h: &Handle<E>) -> String {
        lock(&self.inodes)
            .path(h.ino)
            .map_or_else(|| h.opened_as.clone(), str::to_string)
    }

    fn attr(&self, ino: u64, info: &FileInfo) -> FileAttr {
        let allocated = info.allocation_size.unwrap_or(info.size);
        FileAttr {
            ino: INodeNo(ino),
            size: info.size,
            blocks: allocated.div_ceil(512),
            atime: info.last_access_time,
            mtime: info.last_write_time,
            ctime: info.change_time,
            crtime: info.creation_time,
            kind: file_type(info.kind),
            perm: (info.mode & 0o7777) as u16,
            nlink: info.hard_link_count,
            uid: info.uid,
            gid: info.gid,
            rdev: info.rdev,
            blksize: 4096,
            flags: 0,
        }
    }

    fn fopen_flags(&self) -> FopenFlags {
        match self.options.file_cache {
            FileCache::System => FopenFlags::FOPEN_KEEP_CACHE,
            FileCache::None | FileCache::UserMode => {
                FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES
            }
        }
    }

    /// With the metadata cache, the kernel keeps directory listings across opens
    /// (`FOPEN_CACHE_DIR`): a listing is gathered through `on_enumerate_directory` once and
    /// reused until the directory changes through the drive or a notification.
    fn dir_fopen_flags(&self) -> FopenFlags {
        if self.options.metadata_cache_enabled {
            FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
        } else {
            FopenFlags::empty()
        }
    }

    /// Fires `on_get_file_info`; `None` when the file does not exist (`/` always does).
    fn file_info(&self, path: &str) -> Result<Option<FileInfo>> {
        self.file_info_of(None, path)
    }

    /// `on_get_file_info` for `path`, with the file context of inode `ino` when it is open
    /// (an open file whose name was deleted has a context but no name the table knows).
    fn file_info_of(&self, ino: Option<u64>, path: &str) -> Result<Option<FileInfo>> {
        let context = ino
            .and_then(|i| {
                lock(&self.opens)
                    .files
                    .get(&i)
                    .map(|f| Arc::clone(&f.context))
            })
            .or_else(|| self.open_context(path));
        let mut guard = context.as_ref().map(|c| lock_mut(c));
        let mut p = GetFileInfoParams {
            file_name: path,
            file_exists: false,
            info: self.default_info(FileKind::File),
            file_context: guard.as_deref_mut(),
        };
        self.events.on_get_file_info(&mut p)?;
        if p.file_exists {
            Ok(Some(p.info))
        } else if path == "/" {
            Ok(Some(self.default_info(FileKind::Directory)))
        } else {
            Ok(None)
        }
    }

    /// Clears the set-user-ID bit, and the set-group-ID bit of a file that is
    /// group-executable or whose group the writer is not in, as ext4 does when someone
    /// without `CAP_FSETID` writes (`on_set_file_attributes`, only when a bit is set).
    fn kill_set_id_bits(&self, ino: u64, path: &str, writer: Originator) -> Result<()> {
        let Some(info) = self.file_info_of(Some(ino), path)? else {
            return Ok(());
        };
        let mut kill = libc::S_ISUID;
        if info.mode & libc::S_ISGID != 0 {
            let in_group = writer.gid == info.gid
                || originator::credentials(writer.tid).is_ok_and(|c| c.groups.contains(&info.gid));
            if info.mode & libc::S_IXGRP != 0 || !in_group {
                kill |= libc::S_ISGID;
            }
        }
        if info.mode & kill == 0 {
            return Ok(());
        }
        let context = lock(&self.opens)
            .files
            .get(&ino)
            .map(|f| Arc::clone(&f.context));
        let mut guard = context.as_ref().map(|c| lock_mut(c));
        let mut p = SetFileAttributesParams {
            file_name: path,
            mode: Some(info.mode & 0o7777 & !kill),
            creation_time: None,
            last_access_time: None,
            last_write_time: None,
            change_time: None,
            file_context: guard.as_deref_mut(),
        };
        self.events.on_set_file_attributes(&mut p)
    }

    /// `on_get_file_info` for a name that must exist after a successful create.
    fn created_info(&self, path: &str, kind: FileKind) -> Result<FileInfo> {
        Ok(self
            .file_info(path)?
            .unwrap_or_else(|| self.default_info(kind)))
    }

    /// Fires `on_open_file` (or nothing, for a later open without
    /// `fire_all_open_close_events`), with new contexts as the reference's table says.
    fn open(
        &self,
        ino: u64,
        path: &str,
        flags: i32,
        directory: bool,
        creator: Originator,
    ) -> Result<NewHandle<E>> {
        let existing = lock(&self.opens)
            .files
            .get(&ino)
            .map(|f| Arc::clone(&f.context));
        let first = existing.is_none();
        let file = existing.unwrap_or_default();
        let mut state = HandleState {
            context: E::HandleContext::default(),
            listing: None,
        };
        let info = HandleInfo {
            handle_id: self.next_fh.fetch_add(1, Ordering::Relaxed),
            creator: creator.resolved(),
        };
        let mut route = None;
        if first || self.options.fire_all_open_close_events {
            let mut fc = lock_mut(&file);
            let mut p = OpenFileParams {
                file_name: path,
                desired_access: desired_access(flags),
                attributes: if directory {
                    attributes::FILE_ATTRIBUTE_DIRECTORY
                } else {
                    attributes::FILE_ATTRIBUTE_NORMAL
                },
                share_mode: share::FILE_SHARE_ALL,
                flags,
                handle_info: info,
                file_context: &mut *fc,
                handle_context: &mut state.context,
                route: None,
            };
            self.events.on_open_file(&mut p)?;
            route = p.route.take();
        }
        Ok(NewHandle {
            file,
            state,
            info,
            directory,
            route,
        })
    }

    /// Registers a handle the kernel now holds; returns its id and how to answer the open.
    /// A routed handle gets the kernel's passthrough when `backing` registers its file (or
    /// the inode already has a backing file); a routed handle of an inode that is open
    /// without passthrough, or whose registration fails, is served by the library.
    fn register(
        &self,
        ino: u64,
        path: &str,
        mut h: NewHandle<E>,
        backing: impl FnOnce(&File) -> std::io::Result<BackingId>,
    ) -> (u64, Opened) {
        let fh = h.info.handle_id;
        let route = if h.directory { None } else { h.route.take() };
        let passthrough = self.passthrough.load(Ordering::Relaxed);
        let mut opens = lock(&self.opens);
        let entry = opens.files.entry(ino).or_insert_with(|| OpenFile {
            context: h.file,
            handles: 0,
            backing: None,
        });
        let already_open = entry.handles > 0;
        entry.handles += 1;
        let file = Arc::clone(&entry.context);
        let mut opened = Opened::Plain(if h.directory {
            self.dir_fopen_flags()
        } else {
            self.fopen_flags()
        });
        let mut routed = None;
        let mut silent_close = false;
        if let Some(r) = route {
            silent_close = r.flags & ROUTE_CLOSE_EVENT == 0;
            let shared = match &entry.backing {
                Some(b) => Some(Arc::clone(b)),
                None if passthrough && !already_open => match backing(&r.file) {
                    Ok(b) => {
                        let b = Arc::new(b);
                        entry.backing = Some(Arc::clone(&b));
                        Some(b)
                    }
                    Err(e) => {
                        tracing::warn!("{path}: passthrough refused ({e}); serving it ourselves");
                        None
                    }
                },
                None => None,
            };
            match shared {
                Some(b) => opened = Opened::Passthrough(b, FopenFlags::empty()),
                None => routed = Some(Arc::new(r.file)),
            }
            if silent_close {
                // No cleanup event to fire: the kernel need not send FLUSH at each close.
                opened = match opened {
                    Opened::Plain(f) => Opened::Plain(f | FopenFlags::FOPEN_NOFLUSH),
                    Opened::Passthrough(b, f) => {
                        Opened::Passthrough(b, f | FopenFlags::FOPEN_NOFLUSH)
                    }
                };
            }
        }
        opens.handles.insert(
            fh,
            Handle {
                ino,
                file,
                state: Arc::new(RwLock::new(h.state)),
                info: h.info,
                directory: h.directory,
                opened_as: path.to_string(),
                routed,
                silent_close,
            },
        );
        (fh, opened)
    }

    /// `READ` under `FileCache=UserMode`: whole blocks from the cache, missing ones from
    /// `on_read_file` (one aligned block each), then the asked-for range.
    fn cached_read(
        &self,
        ino: u64,
        path: &str,
        offset: u64,
        size: u32,
        fc: &E::FileContext,
        hc: &E::HandleContext,
    ) -> Result<Vec<u8>> {
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
                    file_name: path,
                    position: start,
                    buffer: &mut block,
                    bytes_read: 0,
                    file_context: fc,
                    handle_context: hc,
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

    /// `RELEASE`/`RELEASEDIR`: the last events of a handle, then its contexts go.
    fn close(&self, fh: u64) -> Result<()> {
        let h = self.handle(fh)?;
        self.close_handle(fh, h)
    }

    /// [`close`](Self::close) of `h`, handle `fh`, whether or not the table still has it.
    fn close_handle(&self, fh: u64, h: Handle<E>) -> Result<()> {
        let path = self.handle_path(&h);
        let last = lock(&self.opens)
            .files
            .get(&h.ino)
            .is_none_or(|f| f.handles <= 1);
        let mut result = Ok(());
        {
            let mut fc = lock_mut(&h.file);
            let mut st = lock_mut(&h.state);
            let st = &mut *st;
            if h.directory && !h.silent_close {
                if let Some(mut listing) = st.listing.take() {
                    let mut p = CloseDirectoryEnumerationParams {
                        directory_name: &path,
                        file_context: &mut *fc,
                        enumeration_context: &mut listing.context,
                    };
                    if let Err(e) = self.events.on_close_directory_enumeration(&mut p) {
                        tracing::debug!("on_close_directory_enumeration {path}: {e}");
                    }
                }
                if self.options.fire_cleanup_events {
                    let mut p = CleanupFileParams {
                        file_name: &path,
                        handle_info: h.info,
                        file_context: &mut *fc,
                        handle_context: &mut st.context,
                    };
                    if let Err(e) = self.events.on_cleanup_file(&mut p) {
                        tracing::debug!("on_cleanup_file {path}: {e}");
                    }
                }
            }
            if !h.silent_close && (last || self.options.fire_all_open_close_events) {
                let mut p = CloseFileParams {
                    file_name: &path,
                    handle_info: h.info,
                    last_handle: last,
                    file_context: &mut *fc,
                    handle_context: &mut st.context,
                };
                result = self.events.on_close_file(&mut p);
            }
        }
        let mut opens = lock(&self.opens);
        opens.handles.remove(&fh);
        if opens.implicit.get(&h.ino) == Some(&fh) {
            opens.implicit.remove(&h.ino);
        }
        let gone = match opens.files.get_mut(&h.ino) {
            Some(f) => {
                f.handles = f.handles.saturating_sub(1);
                f.handles == 0
            }
            None => false,
        };
        if gone {
            opens.files.remove(&h.ino);
        }
        drop(opens);
        // `h` holds the last references: the handle context, and with the last handle the
        // file context, drop here, after the last event.
        drop(h);
        result
    }

    /// Fires `on_enumerate_directory` until it finds nothing; a failure of the first call
    /// drops the enumeration context at once.
    fn gather(
        &self,
        path: &str,
        fc: &mut E::FileContext,
        hc: &mut E::HandleContext,
    ) -> (Option<Listing<E>>, Result<()>) {
        let mut context = E::EnumerationContext::default();
        let mut entries = Vec::new();
        let mut restart = true;
        let result = loop {
            let mut p = EnumerateDirectoryParams {
                directory_name: path,
                mask: "*",
                case_sensitive: true,
                restart,
                file_found: false,
                file_name: String::new(),
                info: self.default_info(FileKind::File),
                file_context: fc,
                handle_context: hc,
                enumeration_context: &mut context,
            };
            if let Err(e) = self.events.on_enumerate_directory(&mut p) {
                if restart {
                    return (None, Err(e));
                }
                break Err(e);
            }
            restart = false;
            if !p.file_found {
                break Ok(());
            }
            let name = std::mem::take(&mut p.file_name);
            let (kind, id) = (p.info.kind, p.info.file_id);
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                tracing::warn!("on_enumerate_directory {path}: skipping invalid name {name:?}");
                continue;
            }
            entries.push((name, kind, id));
        };
        let listing = Listing {
            context,
            entries: Arc::new(entries),
        };
        (Some(listing), result)
    }

    /// `on_is_directory_empty`, or a listing when the handler leaves it undecided.
    fn directory_is_empty(&self, path: &str) -> Result<bool> {
        let mut p = IsDirectoryEmptyParams {
            directory_name: path,
            is_empty: None,
        };
        self.events.on_is_directory_empty(&mut p)?;
        if let Some(empty) = p.is_empty {
            return Ok(empty);
        }
        let file = self.open_context(path).unwrap_or_default();
        let mut fc = lock_mut(&file);
        let mut hc = E::HandleContext::default();
        let (listing, result) = self.gather(path, &mut fc, &mut hc);
        let empty = listing.as_ref().is_none_or(|l| l.entries.is_empty());
        if let Some(mut listing) = listing {
            let mut p = CloseDirectoryEnumerationParams {
                directory_name: path,
                file_context: &mut *fc,
                enumeration_context: &mut listing.context,
            };
            if let Err(e) = self.events.on_close_directory_enumeration(&mut p) {
                tracing::debug!("on_close_directory_enumeration {path}: {e}");
            }
        }
        result.map(|()| empty)
    }

    fn delete(&self, path: &str, is_directory: bool) -> Result<()> {
        if is_directory && !self.directory_is_empty(path)? {
            return Err(Error::from_code(
                code::ERROR_DIR_NOT_EMPTY,
                format!("{path} is not empty"),
            ));
        }
        let context = self.open_context(path);
        let mut guard = context.as_ref().map(|c| lock_mut(c));
        let mut p = CanFileBeDeletedParams {
            file_name: path,
            is_directory,
            can_be_deleted: true,
            file_context: guard.as_deref_mut(),
        };
        self.events.on_can_file_be_deleted(&mut p)?;
        if !p.can_be_deleted {
            return Err(Error::from_code(
                code::ERROR_ACCESS_DENIED,
                format!("{path} cannot be deleted"),
            ));
        }
        let mut p = DeleteFileParams {
            file_name: path,
            is_directory,
            file_context: guard.as_deref_mut(),
        };
        self.events.on_delete_file(&mut p)
    }
}

/// The `fuser::Filesystem` over a drive's events.
pub(crate) struct FuseFs<E: Events> {
    core: Arc<Core<E>>,
    dispatcher: Arc<Dispatcher>,
}

impl<E: Events> FuseFs<E> {
    pub(crate) fn new(core: Arc<Core<E>>, dispatcher: Arc<Dispatcher>) -> Self {
        Self { core, dispatcher }
    }

    /// Runs `job` under `path`'s key (on this reader thread when the file is idle and there
    /// is no timeout, else on a worker) and answers with `done`, or with the
    /// error, `EIO` for a timeout, a panic or a shutdown.
    fn submit<T, R, J, D>(&self, req: &Request, key: SerialKey, reply: R, job: J, done: D)
    where
        T: Send + 'static,
        R: Fail,
        J: FnOnce(&Core<E>, Originator) -> Result<T> + Send + 'static,
        D: FnOnce(&Core<E>, T, R) + Send + 'static,
    {
        self.submit_held(req, key, Hold::Exclusive, reply, job, done);
    }

    /// [`submit`](Self::submit) holding the key as `hold` says.
    fn submit_held<T, R, J, D>(
        &self,
        req: &Request,
        key: SerialKey,
        hold: Hold,
        reply: R,
        job: J,
        done: D,
    ) where
        T: Send + 'static,
        R: Fail,
        J: FnOnce(&Core<E>, Originator) -> Result<T> + Send + 'static,
        D: FnOnce(&Core<E>, T, R) + Send + 'static,
    {
        let who = originator(req);
        let core = Arc::clone(&self.core);
        let core2 = Arc::clone(&self.core);
        let job = move || job(&core, who);
        let complete = move |outcome| match outcome {
            Outcome::Done(Ok(v)) => done(&core2, v, reply),
            Outcome::Done(Err(e)) => {
                tracing::debug!("request failed: {e}");
                reply.fail(errno(&e));
            }
            Outcome::TimedOut => reply.fail(Errno::EIO),
            Outcome::Panicked(m) => {
                tracing::warn!("event handler panicked: {m}");
                reply.fail(Errno::EIO);
            }
            Outcome::Cancelled => reply.fail(Errno::EIO),
        };
        // On an io_uring thread when no other thread of its CPU's queue is idle, the job goes
        // to a worker: running it here would hold up every request from this CPU.
        let here = fuser::thread_may_block();
        match hold {
            Hold::Exclusive => {
                self.dispatcher
                    .run_or_submit(Some(key), Some(who), here, job, complete)
            }
            Hold::Shared(range) => {
                self.dispatcher
                    .run_or_submit_shared(key, range, Some(who), here, job, complete)
            }
        }
    }

    /// Resolves a path on the reader thread, answering an error at once.
    fn resolve<R: Fail>(&self, r: Result<String>, reply: R) -> Option<(String, R)> {
        match r {
            Ok(p) => Some((p, reply)),
            Err(e) => {
                reply.fail(errno(&e));
                None
            }
        }
    }

    fn reply_entry(core: &Core<E>, path: &str, info: FileInfo, reply: ReplyEntry) {
        match core.inode_for(path, &info) {
            Ok(ino) => reply.entry(&core.ttl(ino), &core.attr(ino, &info), Generation(0)),
            Err(e) => {
                core.events.on_error(e.code(), e.message());
                reply.error(errno(&e));
            }
        }
    }

    /// `on_create_file` for `mkdir`/`mknod`: contexts live for this event only.
    #[allow(clippy::too_many_arguments)]
    fn create_entry(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        kind: FileKind,
        rdev: u32,
        mode: u32,
        reply: ReplyEntry,
    ) {
        let Some((path, reply)) = self.resolve(self.core.child(parent.0, name), reply) else {
            return;
        };
        self.submit(
            req,
            key(&path),
            reply,
            move |core, who| {
                let mut fc = E::FileContext::default();
                let mut hc = E::HandleContext::default();
                let mut p = CreateFileParams {
                    file_name: &path,
                    desired_access: access::FILE_WRITE_DATA,
                    attributes: if kind == FileKind::Directory {
                        attributes::FILE_ATTRIBUTE_DIRECTORY
                    } else {
                        attributes::FILE_ATTRIBUTE_NORMAL
                    },
                    kind,
                    rdev,
                    mode,
                    share_mode: share::FILE_SHARE_ALL,
                    flags: 0,
                    handle_info: HandleInfo {
                        handle_id: core.next_fh.fetch_add(1, Ordering::Relaxed),
                        creator: who.resolved(),
                    },
                    file_context: &mut fc,
                    handle_context: &mut hc,
                    route: None,
                };
                core.events.on_create_file(&mut p)?;
                drop((fc, hc));
                Ok((core.created_info(&path, kind)?, path))
            },
            move |core, (info, path), reply| Self::reply_entry(core, &path, info, reply),
        );
    }
}

impl<E: Events> Filesystem for FuseFs<E> {
    /// Negotiates the connection: 1 MiB requests, a large readahead, many background
    /// requests, parallel lookups in one directory, cached pages dropped when a refreshed
    /// size or modification time differs (`FUSE_AUTO_INVAL_DATA`), the writeback cache for
    /// `FileCache=System` without write-through, cached symlinks with the metadata cache,
    /// and passthrough when the server may register backing files (root).
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let o = &self.core.options;
        if let Err(nearest) = config.set_max_write(1 << 20) {
            let _ = config.set_max_write(nearest);
        }
        if let Err(nearest) = config.set_max_readahead(1 << 20) {
            let _ = config.set_max_readahead(nearest);
        }
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        let mut wanted = InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_ASYNC_DIO
            | InitFlags::FUSE_AUTO_INVAL_DATA;
        if o.file_cache == FileCache::System && !o.file_cache_policy_write_through {
            wanted |= InitFlags::FUSE_WRITEBACK_CACHE;
        }
        if o.metadata_cache_enabled {
            wanted |= InitFlags::FUSE_CACHE_SYMLINKS;
        }
        if o.file_cache != FileCache::System {
            // Shared mappings of direct-I/O files (Linux 6.6+); older kernels refuse
            // `MAP_SHARED` on them with ENODEV.
            wanted |= InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP;
        }
        for flag in wanted.iter() {
            // A kernel without one of these simply serves without it.
            let _ = config.add_capabilities(flag);
        }
        if self.core.owner.0 == 0
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok()
        {
            self.core.passthrough.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some((path, reply)) = self.resolve(self.core.child(parent.0, name), reply) else {
            return;
        };
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| Ok((core.file_info(&path)?, path)),
            move |core, (info, path), reply| match info {
                Some(info) => Self::reply_entry(core, &path, info, reply),
                // A negative entry: inode 0 with a timeout makes the kernel remember that
                // the name does not exist.
                None => match core.negative_ttl(&path) {
                    Some(ttl) => {
                        let attr = core.attr(0, &core.default_info(FileKind::File));
                        reply.entry(&ttl, &attr, Generation(0));
                    }
                    None => reply.error(Errno::ENOENT),
                },
            },
        );
    }

    /// Once the kernel no longer knows an inode, its implicit handle (`KernelOpensFiles`)
    /// closes: no descriptor of it is left.
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if !lock(&self.core.inodes).forget(ino.0, nlookup) {
            return;
        }
        let Some(fh) = lock(&self.core.opens).implicit.get(&ino.0).copied() else {
            return;
        };
        let Ok(h) = self.core.handle(fh) else {
            return;
        };
        let core = Arc::clone(&self.core);
        self.dispatcher.run_or_submit(
            Some(key(&h.opened_as)),
            None,
            fuser::thread_may_block(),
            move || {
                if let Err(e) = core.close(fh) {
                    tracing::debug!("on_close_file: {e}");
                }
            },
            |_| {},
        );
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some((path, reply)) = self.resolve(self.core.path_of(ino.0), reply) else {
            return;
        };
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                core.file_info_of(Some(ino.0), &path)?
                    .ok_or_else(|| not_found(&path))
            },
            move |core, info, reply| reply.attr(&core.ttl(ino.0), &core.attr(ino.0, &info)),
        );
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let Some((path, reply)) = self.resolve(self.core.path_of(ino.0), reply) else {
            return;
        };
        let p2 = path.clone();
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let path = &p2;
                let context = core.open_context(path);
                let mut guard = context.as_ref().map(|c| lock_mut(c));
                if let Some(size) = size {
                    let mut p = SetFileSizeParams {
                        file_name: path,
                        size,
                        file_context: guard.as_deref_mut(),
                    };
                    core.events.on_set_file_size(&mut p)?;
                    core.drop_cached_blocks(path);
                }
                if mode.is_some()
                    || atime.is_some()
                    || mtime.is_some()
                    || ctime.is_some()
                    || crtime.is_some()
                {
                    let mut p = SetFileAttributesParams {
                        file_name: path,
                        mode: mode.map(|m| m & 0o7777),
                        creation_time: crtime,
                        last_access_time: atime.map(time),
                        last_write_time: mtime.map(time),
                        change_time: ctime,
                        file_context: guard.as_deref_mut(),
                    };
                    core.events.on_set_file_attributes(&mut p)?;
                }
                if uid.is_some() || gid.is_some() {
                    let mut p = SetFileSecurityParams {
                        file_name: path,
                        owner: uid,
                        group: gid,
                        file_context: guard.as_deref_mut(),
                    };
                    core.events.on_set_file_security(&mut p)?;
                }
                drop(guard);
                core.file_info_of(Some(ino.0), path)?
                    .ok_or_else(|| not_found(path))
            },
            move |core, info, reply| reply.attr(&core.ttl(ino.0), &core.attr(ino.0, &info)),
        );
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some((path, reply)) = self.resolve(self.core.path_of(ino.0), reply) else {
            return;
        };
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let mut p = GetSymbolicLinkTargetParams {
                    file_name: &path,
                    target: String::new(),
                };
                core.events.on_get_symbolic_link_target(&mut p)?;
                Ok(p.target)
            },
            |_, target, reply| reply.data(target.as_bytes()),
        );
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        // The kernel has already refused kinds mknod(2) cannot make (EINVAL) and devices
        // without CAP_MKNOD (EPERM).
        let kind = match FileKind::from_mode(mode) {
            Some(k) if k == FileKind::File || k.is_special() => k,
            _ => return reply.error(Errno::EINVAL),
        };
        let rdev = if matches!(kind, FileKind::CharDevice | FileKind::BlockDevice) {
            rdev
        } else {
            0
        };
        self.create_entry(req, parent, name, kind, rdev, mode & !umask & 0o7777, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.create_entry(
            req,
            parent,
            name,
            FileKind::Directory,
            0,
            mode & !umask & 0o7777,
            reply,
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, false, reply);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, true, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let resolved = self.core.child(parent.0, link_name).and_then(|p| {
            let t = to_str(target.as_os_str(), "symbolic link target")?;
            Ok((p, t.to_string()))
        });
        let (path, target, reply) = match resolved {
            Ok((p, t)) => (p, t, reply),
            Err(e) => return reply.error(errno(&e)),
        };
        let p2 = path.clone();
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let mut p = CreateSymbolicLinkParams {
                    file_name: &p2,
                    target: &target,
                };
                core.events.on_create_symbolic_link(&mut p)?;
                core.created_info(&p2, FileKind::Symlink)
            },
            move |core, info, reply| Self::reply_entry(core, &path, info, reply),
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            // Whiteouts are overlayfs's; no drive stores them.
            return reply.error(Errno::EINVAL);
        }
        let resolved = self
            .core
            .child(parent.0, name)
            .and_then(|from| Ok((from, self.core.child(newparent.0, newname)?)));
        let (from, to) = match resolved {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            return self.submit(
                req,
                key(&from),
                reply,
                move |core, _| {
                    let mut p = ExchangeFilesParams {
                        file_name: &from,
                        new_file_name: &to,
                    };
                    core.events.on_exchange_files(&mut p)?;
                    Ok((from, to))
                },
                |core, (from, to), reply| {
                    lock(&core.inodes).exchange(&from, &to);
                    reply.ok();
                },
            );
        }
        let replace_existing = !flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.submit(
            req,
            key(&from),
            reply,
            move |core, who| {
                let target_is_dir = {
                    let inodes = lock(&core.inodes);
                    inodes
                        .find(&to)
                        .and_then(|i| inodes.kind(i))
                        .is_some_and(|k| k == FileKind::Directory)
                };
                if target_is_dir && !core.directory_is_empty(&to)? {
                    return Err(Error::from_code(
                        code::ERROR_DIR_NOT_EMPTY,
                        format!("{to} is not empty"),
                    ));
                }
                if replace_existing && !target_is_dir {
                    core.keep_for_kernel(&to, who)?;
                }
                {
                    let context = core.open_context(&from);
                    let mut guard = context.as_ref().map(|c| lock_mut(c));
                    let mut p = RenameOrMoveFileParams {
                        file_name: &from,
                        new_file_name: &to,
                        replace_existing,
                        file_context: guard.as_deref_mut(),
                    };
                    core.events.on_rename_or_move_file(&mut p)?;
                }
                Ok((from, to))
            },
            move |core, (from, to), reply| {
                lock(&core.inodes).rename(&from, &to);
                reply.ok();
            },
        );
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let resolved = self
            .core
            .path_of(ino.0)
            .and_then(|from| Ok((from, self.core.child(newparent.0, newname)?)));
        let (from, to) = match resolved {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        if !self.core.options.use_hard_links {
            return reply.error(Errno::EPERM);
        }
        let t2 = to.clone();
        self.submit(
            req,
            key(&from),
            reply,
            move |core, _| {
                let mut p = CreateHardLinkParams {
                    file_name: &from,
                    link_name: &t2,
                };
                core.events.on_create_hard_link(&mut p)?;
                core.created_info(&t2, FileKind::File)
            },
            move |core, info, reply| {
                if core.options.use_file_ids {
                    return Self::reply_entry(core, &to, info, reply);
                }
                let ino = {
                    let mut inodes = lock(&core.inodes);
                    if inodes.link(ino.0, &to) {
                        ino.0
                    } else {
                        inodes.lookup(&to, info.kind)
                    }
                };
                reply.entry(&core.ttl(ino), &core.attr(ino, &info), Generation(0));
            },
        );
    }

    /// With `KernelOpensFiles`, answered `ENOSYS`: the kernel then opens this and every
    /// later file by itself, without asking (see [`Core::implicit_handle`]).
    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if self.core.kernel_opens() {
            return reply.error(Errno::ENOSYS);
        }
        self.open_handle(req, ino, flags.0, false, reply);
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some((h, path, reply)) = self.handle_of(req, ino, fh, reply) else {
            return;
        };
        if let Some(file) = &h.routed {
            // A routed handle in library mode: straight from the backing file, no event.
            let mut buffer = self.core.buffers.take(size as usize);
            match read_at_most(file, &mut buffer, offset) {
                Ok(n) => reply.data(&buffer[..n]),
                Err(e) => reply.error(Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))),
            }
            return self.core.buffers.give(buffer);
        }
        let hold = if self.core.options.serialize_access {
            Hold::Exclusive
        } else {
            Hold::Shared(offset..offset.saturating_add(u64::from(size)))
        };
        // Over io_uring the handler fills the request's ring entry directly.
        let in_place = reply.buffer(size as usize);
        self.submit_held(
            req,
            key(&path),
            hold,
            reply,
            move |core, _| {
                let fc = lock_ref(&h.file);
                let st = lock_ref(&h.state);
                if core.options.file_cache == FileCache::UserMode {
                    let data = core.cached_read(h.ino, &path, offset, size, &fc, &st.context)?;
                    return Ok(Read::Copied(data));
                }
                let (mut in_place, mut pooled) = (in_place, None);
                let buffer: &mut [u8] = match &mut in_place {
                    Some(b) => b,
                    None => pooled.insert(core.buffers.take(size as usize)),
                };
                let mut p = ReadFileParams {
                    file_name: &path,
                    position: offset,
                    buffer,
                    bytes_read: 0,
                    file_context: &*fc,
                    handle_context: &st.context,
                };
                core.events.on_read_file(&mut p)?;
                let n = p.bytes_read.min(p.buffer.len());
                Ok(match pooled {
                    Some(mut data) => {
                        data.truncate(n);
                        Read::Copied(data)
                    }
                    None => Read::InPlace(n),
                })
            },
            |core, read, reply| match read {
                Read::Copied(data) => {
                    reply.data(&data);
                    core.buffers.give(data);
                }
                Read::InPlace(n) => reply.data_in_place(n),
            },
        );
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // Without the page cache the kernel leaves clearing set-id bits on a write by a
        // caller without CAP_FSETID to the filesystem.
        let kill_suid = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        let Some((h, path, reply)) = self.handle_of(req, ino, fh, reply) else {
            return;
        };
        if let Some(file) = &h.routed {
            return match file.write_all_at(data, offset) {
                Ok(()) => reply.written(u32::try_from(data.len()).unwrap_or(u32::MAX)),
                Err(e) => reply.error(Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))),
            };
        }
        let data = data.to_vec();
        self.submit(
            req,
            key(&path),
            reply,
            move |core, who| {
                if kill_suid {
                    core.kill_set_id_bits(h.ino, &path, who)?;
                }
                let mut fc = lock_mut(&h.file);
                let mut st = lock_mut(&h.state);
                let mut p = WriteFileParams {
                    file_name: &path,
                    position: offset,
                    buffer: &data,
                    bytes_written: 0,
                    file_context: &mut *fc,
                    handle_context: &mut st.context,
                };
                core.events.on_write_file(&mut p)?;
                let n = p.bytes_written.min(data.len());
                if core.options.file_cache == FileCache::UserMode {
                    lock(&core.blocks).invalidate(h.ino, offset, offset.saturating_add(n as u64));
                }
                Ok(n)
            },
            |_, n, reply| reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
        );
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        if !self.core.options.fire_cleanup_events {
            // The kernel takes ENOSYS as "never send FLUSH again" on this connection.
            return reply.error(Errno::ENOSYS);
        }
        let Some((h, path, reply)) = self.handle_of(req, ino, fh, reply) else {
            return;
        };
        if h.silent_close {
            return reply.ok();
        }
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let mut fc = lock_mut(&h.file);
                let mut st = lock_mut(&h.state);
                let mut p = CleanupFileParams {
                    file_name: &path,
                    handle_info: h.info,
                    file_context: &mut *fc,
                    handle_context: &mut st.context,
                };
                core.events.on_cleanup_file(&mut p)
            },
            |_, (), reply| reply.ok(),
        );
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.release_handle(req, ino, fh, reply);
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(req, ino, fh, datasync, reply);
    }

    fn opendir(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.open_handle(req, ino, flags.0, true, reply);
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some((h, path, r)) = self.handle_of(req, ino, fh, reply) else {
            return;
        };
        reply = r;
        let dir = path.clone();
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let mut fc = lock_mut(&h.file);
                let mut st = lock_mut(&h.state);
                let st = &mut *st;
                if st.listing.is_none() {
                    let (listing, result) = core.gather(&path, &mut fc, &mut st.context);
                    st.listing = listing;
                    result?;
                }
                Ok(st
                    .listing
                    .as_ref()
                    .map(|l| Arc::clone(&l.entries))
                    .unwrap_or_default())
            },
            move |core, entries, mut reply| {
                // Only the entries from `offset` that fit in the kernel's buffer are copied:
                // a large directory is read in many requests, each costing its own size.
                let inodes = lock(&core.inodes);
                let ids = core.options.use_file_ids;
                let dots = [
                    (".", FileKind::Directory, 0),
                    ("..", FileKind::Directory, 0),
                ];
                let all = dots
                    .into_iter()
                    .chain(entries.iter().map(|(n, k, id)| (n.as_str(), *k, *id)));
                for (i, (name, kind, id)) in all.enumerate().skip(offset as usize) {
                    let child_ino = match name {
                        "." | ".." => ino.0,
                        _ if ids && id > 1 => id,
                        _ => {
                            let child = join(&dir, name);
                            inodes.find(&child).unwrap_or_else(|| {
                                // Not looked up yet: an informational number outside the
                                // range the table hands out. `stat` shows the real one.
                                (1 << 63) | (key(&child).0 & ((1 << 62) - 1))
                            })
                        }
                    };
                    if reply.add(INodeNo(child_ino), i as u64 + 1, file_type(kind), name) {
                        break;
                    }
                }
                reply.ok();
            },
        );
    }

    fn releasedir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.release_handle(req, ino, fh, reply);
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(req, ino, fh, datasync, reply);
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let sector_size = self.core.options.sector_size;
        self.submit(
            req,
            key("/"),
            reply,
            move |core, _| {
                let mut p = GetVolumeSizeParams {
                    total_sectors: 0,
                    available_sectors: 0,
                    sector_size,
                    total_files: 0,
                    free_files: 0,
                };
                core.events.on_get_volume_size(&mut p)?;
                Ok(p)
            },
            move |_, p, reply| {
                reply.statfs(
                    p.total_sectors,
                    p.available_sectors,
                    p.available_sectors,
                    p.total_files,
                    p.free_files,
                    sector_size,
                    NAME_MAX as u32,
                    sector_size,
                )
            },
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let (path, name) = match self.core.attribute_of(ino.0, name) {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        let value = value.to_vec();
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let mut p = SetEaParams {
                    file_name: &path,
                    name: &name,
                    value: &value,
                    create_only: flags & libc::XATTR_CREATE != 0,
                    replace_only: flags & libc::XATTR_REPLACE != 0,
                };
                core.events.on_set_ea(&mut p)
            },
            |_, (), reply| reply.ok(),
        );
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let (path, name) = match self.core.attribute_of(ino.0, name) {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let mut p = GetEaParams {
                    file_name: &path,
                    name: &name,
                    value: Vec::new(),
                };
                core.events.on_get_ea(&mut p)?;
                Ok(p.value)
            },
            move |_, value, reply| xattr_reply(value, size, reply),
        );
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let Some((path, reply)) = self.resolve(self.core.path_of(ino.0), reply) else {
            return;
        };
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let mut p = ListEasParams {
                    file_name: &path,
                    names: Vec::new(),
                };
                core.events.on_list_eas(&mut p)?;
                let mut out = Vec::new();
                for n in p.names {
                    out.extend_from_slice(n.as_bytes());
                    out.push(0);
                }
                Ok(out)
            },
            move |_, value, reply| xattr_reply(value, size, reply),
        );
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (path, name) = match self.core.attribute_of(ino.0, name) {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let mut p = RemoveEaParams {
                    file_name: &path,
                    name: &name,
                };
                core.events.on_remove_ea(&mut p)
            },
            |_, (), reply| reply.ok(),
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let Some((path, reply)) = self.resolve(self.core.child(parent.0, name), reply) else {
            return;
        };
        if self.core.kernel_opens() {
            self.trim_implicit();
        }
        self.submit(
            req,
            key(&path),
            reply,
            move |core, who| {
                let file: FileCtx<E> = Arc::default();
                let mut state = HandleState::<E> {
                    context: E::HandleContext::default(),
                    listing: None,
                };
                let info = HandleInfo {
                    handle_id: core.next_fh.fetch_add(1, Ordering::Relaxed),
                    creator: who.resolved(),
                };
                let route = {
                    let mut fc = lock_mut(&file);
                    let mut p = CreateFileParams {
                        file_name: &path,
                        desired_access: desired_access(flags),
                        attributes: attributes::FILE_ATTRIBUTE_NORMAL,
                        kind: FileKind::File,
                        rdev: 0,
                        mode: mode & !umask & 0o7777,
                        share_mode: share::FILE_SHARE_ALL,
                        flags,
                        handle_info: info,
                        file_context: &mut *fc,
                        handle_context: &mut state.context,
                        route: None,
                    };
                    core.events.on_create_file(&mut p)?;
                    // The kernel opens the file's later descriptors itself, without a
                    // backing file; this handle serves them too (see below).
                    p.route.take().filter(|_| !core.kernel_opens())
                };
                let attrs = core.created_info(&path, FileKind::File)?;
                let ino = core.inode_for(&path, &attrs)?;
                Ok((
                    attrs,
                    ino,
                    NewHandle {
                        file,
                        state,
                        info,
                        directory: false,
                        route,
                    },
                    path,
                ))
            },
            move |core, (info, ino, handle, path), reply| {
                let (fh, opened) = core.register(ino, &path, handle, |f| reply.open_backing(f));
                if core.kernel_opens() {
                    // Once the kernel opens files itself it sends no RELEASE at all, not even
                    // for created ones: the handle becomes the file's implicit one, closed
                    // when the kernel forgets the file (see `Core::release`).
                    core.make_implicit(ino, fh);
                }
                let (ttl, attr) = (core.ttl(ino), core.attr(ino, &info));
                match opened {
                    Opened::Plain(flags) => {
                        reply.created(&ttl, &attr, Generation(0), FileHandle(fh), flags)
                    }
                    Opened::Passthrough(b, flags) => reply.created_passthrough(
                        &ttl,
                        &attr,
                        Generation(0),
                        FileHandle(fh),
                        flags,
                        &b,
                    ),
                }
            },
        );
    }

    /// `fallocate`: mode 0 and `FALLOC_FL_KEEP_SIZE` fire `on_set_allocation_size`,
    /// `FALLOC_FL_PUNCH_HOLE` and `FALLOC_FL_ZERO_RANGE` fire `on_zeroize_file_range`. The
    /// kernel refuses every other mode (collapse and insert ranges) for FUSE files with
    /// `EOPNOTSUPP` before a request is sent.
    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        const ZEROING: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE;
        if mode & !(libc::FALLOC_FL_KEEP_SIZE | ZEROING) != 0 {
            return reply.error(Errno::from_i32(libc::EOPNOTSUPP));
        }
        let Some((path, reply)) = self.resolve(self.core.path_of(ino.0), reply) else {
            return;
        };
        let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let context = core.open_context(&path);
                let mut guard = context.as_ref().map(|c| lock_mut(c));
                if mode & ZEROING != 0 {
                    let mut p = ZeroizeFileRangeParams {
                        file_name: &path,
                        position: offset,
                        length,
                        deallocate: mode & libc::FALLOC_FL_PUNCH_HOLE != 0,
                        keep_size,
                        file_context: guard.as_deref_mut(),
                    };
                    core.events.on_zeroize_file_range(&mut p)?;
                    core.drop_cached_blocks(&path);
                    return Ok(());
                }
                let mut p = SetAllocationSizeParams {
                    file_name: &path,
                    allocation_size: offset.saturating_add(length),
                    keep_size,
                    file_context: guard.as_deref_mut(),
                };
                core.events.on_set_allocation_size(&mut p)
            },
            |_, (), reply| reply.ok(),
        );
    }

    /// `copy_file_range` between two open files of the drive: `on_copy_file_range`, under the
    /// target file's key. A drive that leaves it unhandled answers `ENOSYS`, after which the
    /// kernel copies with reads and writes and sends no more of these requests.
    fn copy_file_range(
        &self,
        req: &Request,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let Some((source, source_path, reply)) = self.handle_of(req, ino_in, fh_in, reply) else {
            return;
        };
        let Some((target, target_path, reply)) = self.handle_of(req, ino_out, fh_out, reply) else {
            return;
        };
        self.submit(
            req,
            key(&target_path),
            reply,
            move |core, _| {
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
                    file_name: &source_path,
                    position: offset_in,
                    file_context: &*fc,
                    handle_context: from,
                    target_file_name: &target_path,
                    target_position: offset_out,
                    target_handle_context: to,
                    length: len,
                    bytes_copied: 0,
                };
                core.events.on_copy_file_range(&mut p)?;
                let n = p.bytes_copied.min(len);
                if core.options.file_cache == FileCache::UserMode {
                    lock(&core.blocks).invalidate(
                        target.ino,
                        offset_out,
                        offset_out.saturating_add(n),
                    );
                }
                Ok(n)
            },
            |_, n, reply| reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
        );
    }

    /// No ioctl has a meaning on a drive: `ENOTTY`, what a filesystem without ioctls
    /// answers, without a log line (tools probe them on every file).
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::from_i32(libc::ENOTTY));
    }
}

/// A `READ` handler's data: in a buffer to send, or already in the reply's own buffer.
enum Read {
    Copied(Vec<u8>),
    InPlace(usize),
}

/// Reads up to `buf.len()` bytes at `offset`, fewer only at the end of the file.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
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

fn xattr_reply(value: Vec<u8>, size: u32, reply: ReplyXattr) {
    if size == 0 {
        reply.size(u32::try_from(value.len()).unwrap_or(u32::MAX));
    } else if value.len() > size as usize {
        reply.error(Errno::from_i32(libc::ERANGE));
    } else {
        reply.data(&value);
    }
}

impl<E: Events> FuseFs<E> {
    /// The handle a request names, with the name events use for its file. Handle 0 of a
    /// file is a descriptor the kernel opened by itself (`KernelOpensFiles`): the file's
    /// implicit handle serves it.
    fn handle_of<R: Fail>(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        reply: R,
    ) -> Option<(Handle<E>, String, R)> {
        let found = if fh.0 == 0 && self.core.kernel_opens() {
            self.implicit_handle(req, ino.0)
        } else {
            self.core.handle(fh.0)
        };
        match found {
            Ok(h) => {
                let path = self.core.handle_path(&h);
                Some((h, path, reply))
            }
            Err(e) => {
                reply.fail(errno(&e));
                None
            }
        }
    }

    /// The implicit handle of `ino` (`KernelOpensFiles`), made on a worker as an event of
    /// the file when it has none yet.
    fn implicit_handle(&self, req: &Request, ino: u64) -> Result<Handle<E>> {
        let existing = lock(&self.core.opens).implicit.get(&ino).copied();
        if let Some(fh) = existing {
            return self.core.handle(fh);
        }
        self.trim_implicit();
        let who = originator(req);
        let core = Arc::clone(&self.core);
        let key = key(&self.core.path_of(ino)?);
        match self
            .dispatcher
            .call(Some(key), Some(who), move || core.implicit_handle(ino, who))
        {
            Outcome::Done(r) => r,
            Outcome::TimedOut => Err(Error::from_errno(libc::EIO, "on_open_file timed out")),
            Outcome::Panicked(m) => Err(Error::from_errno(libc::EIO, m)),
            Outcome::Cancelled => Err(Error::from_errno(libc::EIO, "the drive is stopping")),
        }
    }

    /// Closes the implicit handles past the limit, each as an event of its file.
    fn trim_implicit(&self) {
        for (path, ino, fh) in self.core.implicit_surplus() {
            let core = Arc::clone(&self.core);
            self.dispatcher.submit(
                Some(key(&path)),
                None,
                move || core.evict_implicit(ino, fh),
                |_| {},
            );
        }
    }

    fn open_handle(
        &self,
        req: &Request,
        ino: INodeNo,
        flags: i32,
        directory: bool,
        reply: ReplyOpen,
    ) {
        let Some((path, reply)) = self.resolve(self.core.path_of(ino.0), reply) else {
            return;
        };
        let p2 = path.clone();
        self.submit(
            req,
            key(&path),
            reply,
            move |core, who| core.open(ino.0, &p2, flags, directory, who),
            move |core, handle, reply| {
                let (fh, opened) = core.register(ino.0, &path, handle, |f| reply.open_backing(f));
                match opened {
                    Opened::Plain(flags) => reply.opened(FileHandle(fh), flags),
                    Opened::Passthrough(b, flags) => {
                        reply.opened_passthrough(FileHandle(fh), flags, &b)
                    }
                }
            },
        );
    }

    fn release_handle(&self, req: &Request, ino: INodeNo, fh: FileHandle, reply: ReplyEmpty) {
        let path = self
            .core
            .handle(fh.0)
            .map(|h| self.core.handle_path(&h))
            .or_else(|_| self.core.path_of(ino.0))
            .unwrap_or_else(|_| "/".into());
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                if let Err(e) = core.release(ino.0, fh.0) {
                    tracing::debug!("on_close_file: {e}");
                }
                Ok(())
            },
            |_, (), reply| reply.ok(),
        );
    }

    fn sync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        data_only: bool,
        reply: ReplyEmpty,
    ) {
        let Some((h, path, reply)) = self.handle_of(req, ino, fh, reply) else {
            return;
        };
        if let Some(file) = &h.routed {
            let synced = if data_only {
                file.sync_data()
            } else {
                file.sync_all()
            };
            if let Err(e) = synced {
                return reply.error(Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO)));
            }
        }
        self.submit(
            req,
            key(&path),
            reply,
            move |core, _| {
                let mut fc = lock_mut(&h.file);
                let mut st = lock_mut(&h.state);
                let mut p = FlushFileParams {
                    file_name: &path,
                    data_only,
                    file_context: &mut *fc,
                    handle_context: &mut st.context,
                };
                core.events.on_flush_file(&mut p)
            },
            |_, (), reply| reply.ok(),
        );
    }

    fn remove(&self, req: &Request, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let Some((path, reply)) = self.resolve(self.core.child(parent.0, name), reply) else {
            return;
        };
        self.submit(
            req,
            key(&path),
            reply,
            move |core, who| {
                if !dir {
                    core.keep_for_kernel(&path, who)?;
                }
                core.delete(&path, dir)?;
                core.drop_cached_blocks(&path);
                Ok(path)
            },
            move |core, path, reply| {
                lock(&core.inodes).unlink(&path);
                reply.ok();
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_map_to_reference_access_bits() {
        assert_eq!(desired_access(libc::O_RDONLY), access::FILE_READ_DATA);
        assert_eq!(desired_access(libc::O_WRONLY), access::FILE_WRITE_DATA);
        assert_eq!(
            desired_access(libc::O_RDWR | libc::O_APPEND),
            access::FILE_READ_DATA | access::FILE_WRITE_DATA | access::FILE_APPEND_DATA
        );
    }

    struct Nothing;
    impl Events for Nothing {
        type FileContext = ();
        type HandleContext = ();
        type EnumerationContext = ();
    }

    #[test]
    fn the_order_of_implicit_handles_stays_bounded_as_handles_close() {
        let core = Core::new(Arc::new(Nothing), Options::default());
        for ino in 2..10_002 {
            core.make_implicit(ino, ino);
            // Forgotten at once, as a created and deleted file is.
            lock(&core.opens).implicit.remove(&ino);
        }
        core.make_implicit(20_000, 1);
        core.make_implicit(20_000, 1);
        let opens = lock(&core.opens);
        assert!(opens.implicit_order.len() <= 2 * opens.implicit.len() + 65);
        assert!(opens.implicit_order.contains(&20_000));
    }

    #[test]
    fn keys_are_per_path_and_never_the_global_key() {
        assert_eq!(key("/a"), key("/a"));
        assert_ne!(key("/a"), key("/b"));
        assert_ne!(key("/a").0, u64::MAX);
    }
}
