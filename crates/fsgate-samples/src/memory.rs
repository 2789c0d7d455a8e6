//! The memory drive: a complete POSIX filesystem kept in RAM, written only against the public
//! `fsgate-vfs` API. It is a sample to read and copy: correct first, fast second.
//!
//! # Design
//!
//! **Nodes.** Every file, directory, symbolic link, FIFO, socket and device node is a [`Node`]
//! behind an `Arc`. A directory holds its entries as `name → Arc<Node>`, and an open file
//! holds its node in the file context and in each handle context. So a node lives exactly as
//! long as some name or some open handle refers to it: unlinking an open file removes the
//! name, and the data goes when the last handle closes, with no bookkeeping beyond `Arc`.
//! `nlink` counts names only (what `stat` reports).
//!
//! **Hard links** are two directory entries holding the same `Arc<Node>`; **symbolic links**
//! are nodes whose content is the target path, resolved by the kernel, never by us.
//!
//! **Special files** (`mkfifo`, `bind` of a Unix socket, `mknod` of a device) are nodes
//! that hold only their kind and, for devices, the device number (`st_rdev`). The kernel
//! serves everything done through them (pipe buffers, socket connections, the device's
//! driver) without asking the drive; mode, owner, times, links, rename and unlink work on
//! them as on files. Their size is 0.
//!
//! **Sparse data.** A file's bytes are a [`SparseData`]: a size plus a `BTreeMap` of chunks,
//! each covering 64 KiB of the file, indexed by offset / 64 KiB. Chunks that were never
//! written do not exist and read as zeros, so a 4 GiB file with one byte at its end costs one
//! chunk. A chunk holds only the start of its 64 KiB, up to its last written byte rounded up
//! to 4 KiB (growing by at least doubling as writes reach further), and the rest reads as
//! zeros: a 600-byte file takes 4 KiB, as on ext4, not 64. `st_blocks` counts the bytes the
//! chunks hold. Bytes past the size always read as zeros (shrinking zeroes the cut part of
//! the last chunk and gives back its memory past the cut), so growing a file never needs to
//! write anything.
//!
//! **fallocate.** Memory is taken when bytes are written, never ahead: `fallocate` mode 0
//! only grows the size (the new bytes are a hole), `FALLOC_FL_KEEP_SIZE` changes nothing
//! but ctime. A RAM drive cannot promise space anyway. `FALLOC_FL_PUNCH_HOLE` and
//! `FALLOC_FL_ZERO_RANGE` both drop the chunks wholly inside the range and zero the parts of
//! the chunks at its edges, so both lower `st_blocks`; zeroing a range also grows the file
//! to its end unless `FALLOC_FL_KEEP_SIZE` is set. Times change as on ext4.
//!
//! **copy_file_range** copies chunk by chunk between the two nodes (the source from its file
//! context, the target from the handle context of the descriptor written to, since the event
//! names only the target's handle), taking one node lock at a time. A source chunk that is a
//! hole becomes a hole in the target rather than written zeros. Within one file the chunks
//! are copied from the far end first when the target lies after the source, so overlapping
//! ranges end up as `memmove` would leave them. One call copies at most [`MAX_COPY`] bytes;
//! callers of `copy_file_range(2)` loop on short counts.
//!
//! **Memory goes back to the system.** Freed chunks go back to the allocator, and glibc's
//! malloc keeps them in its arenas for reuse, so without help a drive that once held 1 GiB
//! stays that large after every file is deleted. Two things hand them back. The drive fixes
//! malloc's trim threshold (it otherwise grows with the program's largest buffers), so an
//! arena gives back its free top itself as soon as it passes 4 MiB. And [`Usage`] tracks the
//! drive's data bytes and their high-water mark: when the bytes fall [`TRIM_THRESHOLD`]
//! below the mark, a thread of the drive's own (`memory-trim`) calls `malloc_trim(0)`, which
//! gives back the free pages between live allocations in every arena. That thread holds no
//! lock of the drive, so no event waits for a trim, and rewriting files in place (where
//! malloc reuses what was freed) never triggers one.
//! Both calls go through [`fsgate_core::memory`], safe wrappers, so the drive itself makes no
//! foreign calls.
//!
//! **Locking.** Two levels, taken in one order only:
//! 1. `namespace` (one mutex for the drive) covers every path walk and every change to
//!    directory entries (create, link, unlink, rename), so a rename is atomic to lookups;
//! 2. each node's own mutex covers its attributes, xattrs and data.
//!
//! A thread may take node locks while it holds `namespace`, never the reverse; a thread
//! without `namespace` holds at most one node lock. Reads and writes go straight to the node
//! from the file context, so different files are read and written in parallel.
//!
//! **Times** follow POSIX with Linux's default `relatime`: a read or listing sets atime only
//! when atime is not newer than mtime or ctime, or is a day old, as on ext4; writes, size changes and copies into a file set
//! mtime and ctime; attribute, owner, link-count and xattr changes set ctime; creating,
//! removing or renaming an entry sets the directory's mtime and ctime.
//!
//! **Permissions.** The drive stores mode, owner and group and reports them; the kernel checks
//! them against the caller (root passes every check, as on any Linux filesystem).
//!
//! **Extended attributes** live in the node, in the namespaces Linux defines (`user.`,
//! `trusted.`, `security.`, and the POSIX ACLs `system.posix_acl_access` and
//! `system.posix_acl_default`); any other name is refused with `EOPNOTSUPP`, as on ext4.
//! An access ACL sets the mode (the engine's doing, see `fsgate_vfs`), and is kept only when
//! the mode cannot say all of it.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use fsgate_core::{Error, Result};
use fsgate_vfs::{
    CopyFileRangeParams, CreateFileParams, CreateHardLinkParams, CreateSymbolicLinkParams,
    DeleteFileParams, EnumerateDirectoryParams, Events, ExchangeFilesParams, FileInfo, FileKind,
    GetEaParams, GetFileInfoParams, GetSymbolicLinkTargetParams, GetVolumeLabelParams,
    GetVolumeSizeParams, Hooks, IsDirectoryEmptyParams, ListEasParams, OpenFileParams,
    ReadFileParams, RemoveEaParams, RenameOrMoveFileParams, SetAllocationSizeParams, SetEaParams,
    SetFileAttributesParams, SetFileSecurityParams, SetFileSizeParams, WriteFileParams,
    ZeroizeFileRangeParams,
};

/// How much of a file one data chunk of [`SparseData`] covers.
const CHUNK: u64 = 64 * 1024;

/// The unit a chunk's memory grows and shrinks by (a page).
const GRAIN: u64 = 4 * 1024;

/// How far a drive's data bytes must fall below their high-water mark before the freed
/// memory is handed back to the system. A trim walks the allocator's free lists, so it runs
/// once per this much freed, not at every unlink; at most this much freed memory stays with
/// the process between trims.
pub const TRIM_THRESHOLD: u64 = 64 << 20;

/// The most bytes one `on_copy_file_range` copies; the caller's `copy_file_range(2)` returns
/// the short count and callers loop. It bounds how long one request runs.
pub const MAX_COPY: u64 = 1 << 30;

/// Bytes of file data a drive holds, shared by all its files, and the trigger that hands
/// freed memory back to the system (see the module docs).
///
/// `Usage::default()` counts and records trims but never performs one (unit tests);
/// [`Usage::returning_memory`] performs them.
#[derive(Clone, Default)]
pub struct Usage(Arc<UsageCounter>);

#[derive(Default)]
struct UsageCounter {
    /// Bytes of chunks allocated now.
    bytes: AtomicU64,
    /// The most bytes held since the last trim.
    high_water: AtomicU64,
    /// Trims asked for so far.
    trims: AtomicU64,
    /// Wakes the thread that trims; `None` when there is none.
    trimmer: Option<SyncSender<()>>,
}

impl Usage {
    /// A counter whose trims run `malloc_trim(0)` on a thread of their own, named
    /// `memory-trim`, which ends when the last clone of the counter is dropped. Without
    /// glibc (whose allocator is the one that keeps freed memory), or if the thread cannot
    /// start, it behaves as `Usage::default()`.
    ///
    /// It also fixes two of glibc's malloc thresholds for the whole process (see
    /// [`fsgate_core::memory::keep_allocator_tops_small`]): call it before the process
    /// starts serving.
    pub fn returning_memory() -> Self {
        fsgate_core::memory::keep_allocator_tops_small();
        Self(Arc::new(UsageCounter {
            trimmer: spawn_trimmer(),
            ..UsageCounter::default()
        }))
    }

    /// Bytes allocated now.
    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// How many times the bytes fell [`TRIM_THRESHOLD`] below their high-water mark, each
    /// time asking for the freed memory to go back to the system.
    #[cfg(test)]
    pub fn trims(&self) -> u64 {
        self.0.trims.load(Ordering::Relaxed)
    }

    /// Counts a file's chunk bytes going from `before` to `after`. Bytes counted out must be
    /// freed already: the trim this may ask for runs at once on another thread.
    fn resize(&self, before: u64, after: u64) {
        let counter = &*self.0;
        if after > before {
            let added = after - before;
            let now = counter.bytes.fetch_add(added, Ordering::Relaxed) + added;
            counter.high_water.fetch_max(now, Ordering::Relaxed);
        } else if before > after {
            let freed = before - after;
            let now = counter
                .bytes
                .fetch_sub(freed, Ordering::Relaxed)
                .saturating_sub(freed);
            let mark = counter.high_water.load(Ordering::Relaxed);
            // Only the thread that lowers the mark asks: concurrent frees trim once. A
            // mark raised meanwhile by a write makes the exchange fail; a later free asks.
            if mark.saturating_sub(now) >= TRIM_THRESHOLD
                && counter
                    .high_water
                    .compare_exchange(mark, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                counter.trims.fetch_add(1, Ordering::Relaxed);
                if let Some(trimmer) = &counter.trimmer {
                    // Full: a trim is already pending and will see this memory too.
                    let _ = trimmer.try_send(());
                }
            }
        }
    }
}

/// Starts the `memory-trim` thread: it trims once per wake-up, and ends when the sender is
/// dropped. `None` when it cannot start (or off glibc): freed file data then stays with the
/// process, and [`Usage::trims`] stays 0.
fn spawn_trimmer() -> Option<SyncSender<()>> {
    if !cfg!(target_env = "gnu") {
        return None;
    }
    let (wake, wakes) = mpsc::sync_channel::<()>(1);
    let builder = std::thread::Builder::new().name("memory-trim".into());
    let spawned = fsgate_core::threads::spawn(builder, move || {
        while wakes.recv().is_ok() {
            fsgate_core::memory::return_free_memory();
        }
    });
    spawned.ok().map(|_| wake)
}

/// A file's bytes: chunks that were never written are holes and read as zeros, and each
/// chunk holds only the start of its range (see the module docs). Its chunks' bytes are
/// counted in the drive's [`Usage`] until it is dropped.
pub struct SparseData {
    size: u64,
    /// Each chunk's bytes from the start of its range, a multiple of [`GRAIN`] long and at
    /// most [`CHUNK`]; what lies past them reads as zeros.
    chunks: BTreeMap<u64, Vec<u8>>,
    /// The chunks' lengths added up.
    allocated: u64,
    usage: Usage,
}

impl Drop for SparseData {
    fn drop(&mut self) {
        // Free the chunks before counting them out, so that a trim this asks for finds
        // them free.
        drop(std::mem::take(&mut self.chunks));
        self.usage.resize(self.allocated, 0);
    }
}

impl SparseData {
    /// An empty file counted in `usage`.
    pub fn new(usage: Usage) -> Self {
        Self {
            size: 0,
            chunks: BTreeMap::new(),
            allocated: 0,
            usage,
        }
    }

    /// Makes `allocated` (and the drive's usage) follow a change made to the chunks.
    fn account(&mut self, before: u64, after: u64) {
        self.allocated = self.allocated - before + after;
        self.usage.resize(before, after);
    }

    /// The file size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of memory the file's chunks take (what `st_blocks` reports).
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Fills `buf` from `offset`; returns the bytes read: fewer at the end of the file, none
    /// past it.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        let end = self.size.min(offset.saturating_add(buf.len() as u64));
        if offset >= end {
            return 0;
        }
        let out = &mut buf[..(end - offset) as usize];
        out.fill(0);
        for (&index, chunk) in self.chunks.range(offset / CHUNK..=(end - 1) / CHUNK) {
            let chunk_start = index * CHUNK;
            let from = offset.max(chunk_start);
            let to = end.min(chunk_start + chunk.len() as u64);
            if from < to {
                out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(
                    &chunk[(from - chunk_start) as usize..(to - chunk_start) as usize],
                );
            }
        }
        out.len()
    }

    /// How many bytes from `offset` to the end of its chunk's range the chunk holds: 0 in
    /// a hole, and in the zeros past what the chunk holds.
    pub fn held_from(&self, offset: u64) -> u64 {
        let chunk_start = offset / CHUNK * CHUNK;
        self.chunks.get(&(offset / CHUNK)).map_or(0, |chunk| {
            (chunk_start + chunk.len() as u64).saturating_sub(offset)
        })
    }

    /// Writes `data` at `offset`, growing the file if needed.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| Error::from_errno(libc::EFBIG, "write past the largest file offset"))?;
        let mut pos = offset;
        while pos < end {
            let index = pos / CHUNK;
            let chunk_start = index * CHUNK;
            let to = end.min(chunk_start + CHUNK);
            let needed = (to - chunk_start).next_multiple_of(GRAIN) as usize;
            let chunk = self.chunks.entry(index).or_default();
            let before = chunk.len();
            if needed > before {
                // At least double, so a file written in small pieces is not copied at every
                // page.
                let len = needed.max((2 * before).min(CHUNK as usize));
                if before == 0 {
                    *chunk = vec![0u8; len];
                } else {
                    chunk.reserve_exact(len - before);
                    chunk.resize(len, 0);
                }
            }
            let after = chunk.len();
            chunk[(pos - chunk_start) as usize..(to - chunk_start) as usize]
                .copy_from_slice(&data[(pos - offset) as usize..(to - offset) as usize]);
            self.account(before as u64, after as u64);
            pos = to;
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// Sets the size: shrinking drops whole chunks past the end and zeroes the tail of the
    /// last one (so growing again reads zeros); growing only moves the end (a hole).
    pub fn set_size(&mut self, size: u64) {
        if size < self.size {
            let cut = self.chunks.split_off(&size.div_ceil(CHUNK));
            let dropped: u64 = cut.values().map(|c| c.len() as u64).sum();
            drop(cut);
            self.account(dropped, 0);
            let tail = (size % CHUNK) as usize;
            if let Some(chunk) = self.chunks.get_mut(&(size / CHUNK)) {
                let before = chunk.len();
                if tail < before {
                    chunk[tail..].fill(0);
                    chunk.truncate(tail.next_multiple_of(GRAIN as usize));
                    chunk.shrink_to_fit();
                }
                let after = chunk.len();
                self.account(before as u64, after as u64);
            }
        }
        self.size = size;
    }

    /// Makes `length` bytes from `offset` read as zeros without taking memory: chunks wholly
    /// inside the range are dropped (holes again), the parts of the chunks at its edges are
    /// zeroed. The size does not change.
    pub fn punch(&mut self, offset: u64, length: u64) {
        // Bytes past the size are zeros already: the range ends, at most, at the end of the
        // size's last chunk, whose bytes past the size are zeros too.
        let end = offset
            .saturating_add(length)
            .min(self.size.div_ceil(CHUNK).saturating_mul(CHUNK));
        if offset >= end {
            return;
        }
        // The chunks wholly inside: none when the range lies within one chunk.
        let whole = offset.div_ceil(CHUNK)..(end / CHUNK).max(offset.div_ceil(CHUNK));
        let whole: Vec<u64> = self.chunks.range(whole).map(|(&index, _)| index).collect();
        for index in whole {
            if let Some(chunk) = self.chunks.remove(&index) {
                let len = chunk.len() as u64;
                drop(chunk);
                self.account(len, 0);
            }
        }
        let mut zero_edge = |index: u64| {
            if let Some(chunk) = self.chunks.get_mut(&index) {
                let chunk_start = index * CHUNK;
                let held = chunk.len();
                let from = ((offset.max(chunk_start) - chunk_start) as usize).min(held);
                let to = ((end.min(chunk_start + CHUNK) - chunk_start) as usize).min(held);
                chunk[from..to].fill(0);
            }
        };
        let (first, last) = (offset / CHUNK, (end - 1) / CHUNK);
        zero_edge(first);
        if last != first {
            zero_edge(last);
        }
    }
}

/// What a node holds.
pub enum Content {
    /// A regular file.
    File(SparseData),
    /// A directory: its entries by name.
    Directory(BTreeMap<OsString, Arc<Node>>),
    /// A symbolic link: its target, as given to `symlink(2)`.
    Symlink(PathBuf),
    /// A FIFO, socket or device node: the kernel serves its I/O, the drive keeps its name.
    Special(Special),
}

/// What the drive keeps of a FIFO, socket or device node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Special {
    /// [`FileKind::Fifo`], [`FileKind::Socket`], [`FileKind::CharDevice`] or
    /// [`FileKind::BlockDevice`].
    pub kind: FileKind,
    /// For devices, the device number as `makedev(major, minor)` encodes it; 0 otherwise.
    pub rdev: u32,
}

/// What kind of node to create.
pub enum NewNode {
    /// An empty regular file.
    File,
    /// An empty directory.
    Directory,
    /// A symbolic link to this target.
    Symlink(PathBuf),
    /// A FIFO, socket or device node.
    Special(Special),
}

/// Attributes as `stat` reports them.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    /// Permission bits (`0o7777`), without the file type.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Names: for a directory 2 + its subdirectories.
    pub nlink: u32,
    /// Last access.
    pub atime: SystemTime,
    /// Last data change.
    pub mtime: SystemTime,
    /// Last change of data or attributes.
    pub ctime: SystemTime,
    /// Creation.
    pub crtime: SystemTime,
}

impl Meta {
    /// An access (`relatime`, Linux's default): atime moves only when it is not newer than
    /// mtime or ctime, or is at least a day old.
    pub fn touch_atime(&mut self) {
        let now = SystemTime::now();
        let stale = now
            .duration_since(self.atime)
            .is_ok_and(|age| age >= std::time::Duration::from_secs(24 * 60 * 60));
        if self.atime <= self.mtime || self.atime <= self.ctime || stale {
            self.atime = now;
        }
    }
}

/// A node's mutable state, behind the node's mutex.
pub struct NodeState {
    /// Attributes.
    pub meta: Meta,
    /// Data, entries or link target.
    pub content: Content,
    /// Extended attributes by name.
    pub xattrs: BTreeMap<OsString, Vec<u8>>,
}

impl NodeState {
    /// The data of the file at `path` (named in errors): EISDIR for a directory, EINVAL
    /// for a symbolic link or special file, which have no data the drive serves.
    pub fn data(&mut self, path: &Path) -> Result<&mut SparseData> {
        let what = match &mut self.content {
            Content::File(data) => return Ok(data),
            Content::Directory(_) => {
                return Err(Error::from_errno(
                    libc::EISDIR,
                    format!("{}: is a directory", path.display()),
                ))
            }
            Content::Symlink(_) => "a symbolic link",
            Content::Special(special) => match special.kind {
                FileKind::Fifo => "a FIFO",
                FileKind::Socket => "a socket",
                _ => "a device node",
            },
        };
        Err(Error::from_errno(
            libc::EINVAL,
            format!(
                "{}: is {what}, whose data the drive does not hold",
                path.display()
            ),
        ))
    }

    /// Size in bytes: data size, entry count for directories, target length for links, 0
    /// for special files.
    pub fn size(&self) -> u64 {
        match &self.content {
            Content::File(data) => data.size(),
            Content::Directory(entries) => entries.len() as u64,
            Content::Symlink(target) => target.as_os_str().len() as u64,
            Content::Special(_) => 0,
        }
    }

    /// The kind `stat` and `readdir` report.
    pub fn kind(&self) -> FileKind {
        match &self.content {
            Content::File(_) => FileKind::File,
            Content::Directory(_) => FileKind::Directory,
            Content::Symlink(_) => FileKind::Symlink,
            Content::Special(special) => special.kind,
        }
    }

    /// Whether this is a directory.
    pub fn is_directory(&self) -> bool {
        matches!(self.content, Content::Directory(_))
    }

    /// Marks a change of attributes (ctime).
    pub fn touch_ctime(&mut self) {
        self.meta.ctime = SystemTime::now();
    }

    /// Marks a change of data or entries (mtime and ctime).
    pub fn touch_mtime(&mut self) {
        let now = SystemTime::now();
        self.meta.mtime = now;
        self.meta.ctime = now;
    }
}

/// A file, directory, symbolic link, FIFO, socket or device node.
pub struct Node {
    /// Inode number, unique for the drive's lifetime.
    pub ino: u64,
    state: Mutex<NodeState>,
}

impl Node {
    /// Locks the node's state. A poisoned lock (a handler panicked while holding it) is
    /// recovered: every update leaves the state consistent before it can panic.
    pub fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The directory tree and its accounting.
pub struct Tree {
    root: Arc<Node>,
    namespace: Mutex<()>,
    next_ino: AtomicU64,
    usage: Usage,
}

fn not_found(path: &Path) -> Error {
    Error::from_errno(
        libc::ENOENT,
        format!("{}: no such file or directory", path.display()),
    )
}

fn not_directory(path: &Path) -> Error {
    Error::from_errno(
        libc::ENOTDIR,
        format!("{}: a path part is not a directory", path.display()),
    )
}

impl Tree {
    /// An empty tree whose root directory has `mode`, owned by `uid`:`gid`, counting its
    /// files' data in `usage`.
    pub fn new(mode: u32, uid: u32, gid: u32, usage: Usage) -> Self {
        let next_ino = AtomicU64::new(1);
        Self {
            root: new_node(&next_ino, &usage, NewNode::Directory, mode, uid, gid),
            namespace: Mutex::new(()),
            next_ino,
            usage,
        }
    }

    fn namespace(&self) -> MutexGuard<'_, ()> {
        self.namespace
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes of file data held in memory.
    pub fn allocated(&self) -> u64 {
        self.usage.bytes()
    }

    /// The node at `path` (absolute inside the drive; symbolic links are not followed).
    pub fn lookup(&self, path: &Path) -> Result<Arc<Node>> {
        let _ns = self.namespace();
        self.walk(path)
    }

    /// The node at `path`, or `None` when no such name exists (no error is built for a
    /// name that is merely missing, the common answer to a lookup).
    pub fn find(&self, path: &Path) -> Result<Option<Arc<Node>>> {
        let _ns = self.namespace();
        self.walk_to(path)
    }

    /// Walks `path` from the root; the caller holds `namespace`.
    fn walk(&self, path: &Path) -> Result<Arc<Node>> {
        self.walk_to(path)?.ok_or_else(|| not_found(path))
    }

    /// Walks `path` from the root, `None` at a missing name; the caller holds `namespace`.
    fn walk_to(&self, path: &Path) -> Result<Option<Arc<Node>>> {
        let mut node = Arc::clone(&self.root);
        for part in path.components() {
            let name = match part {
                Component::RootDir | Component::CurDir => continue,
                Component::Normal(name) => name,
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(Error::invalid_argument(
                        "file_name",
                        format!("{}: `..` is resolved by the kernel", path.display()),
                    ))
                }
            };
            let next = match &node.lock().content {
                Content::Directory(entries) => entries.get(name).cloned(),
                _ => return Err(not_directory(path)),
            };
            match next {
                Some(n) => node = n,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The parent directory of `path` and the last name in it; the caller holds `namespace`.
    fn walk_parent<'p>(&self, path: &'p Path) -> Result<(Arc<Node>, &'p OsStr)> {
        let name = path.file_name().ok_or_else(|| {
            Error::invalid_argument("file_name", format!("{}: no name", path.display()))
        })?;
        let parent = self.walk(path.parent().unwrap_or(Path::new("/")))?;
        if !parent.lock().is_directory() {
            return Err(not_directory(path));
        }
        Ok((parent, name))
    }

    /// Creates a node at `path` owned by `uid`:`gid` (the parent's group if it is set-group-ID):
    /// EEXIST if the name is taken, ENOENT if the parent is missing.
    pub fn create(
        &self,
        path: &Path,
        kind: NewNode,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Arc<Node>> {
        let _ns = self.namespace();
        let (parent, name) = self.walk_parent(path)?;
        let is_dir = matches!(kind, NewNode::Directory);
        let mut dir = parent.lock();
        // A set-group-ID directory gives new entries its group, and new directories its bit.
        let (mode, gid) = if dir.meta.mode & libc::S_ISGID != 0 {
            let bit = if is_dir { libc::S_ISGID } else { 0 };
            (mode | bit, dir.meta.gid)
        } else {
            (mode, gid)
        };
        let node = new_node(&self.next_ino, &self.usage, kind, mode, uid, gid);
        insert_new(&mut dir, name, Arc::clone(&node), path)?;
        if is_dir {
            dir.meta.nlink += 1;
        }
        Ok(node)
    }

    /// Gives the file at `existing` one more name, `new_path`. Directories cannot be linked
    /// (EPERM).
    pub fn link(&self, existing: &Path, new_path: &Path) -> Result<Arc<Node>> {
        let _ns = self.namespace();
        let node = self.walk(existing)?;
        let (parent, name) = self.walk_parent(new_path)?;
        if node.lock().is_directory() {
            return Err(Error::from_errno(
                libc::EPERM,
                format!("{}: directories cannot have hard links", existing.display()),
            ));
        }
        insert_new(&mut parent.lock(), name, Arc::clone(&node), new_path)?;
        let mut state = node.lock();
        state.meta.nlink += 1;
        state.touch_ctime();
        drop(state);
        Ok(node)
    }

    /// Removes the name `path`: a file's link count drops (its data stays while handles are
    /// open); a directory must be empty (ENOTEMPTY).
    pub fn remove(&self, path: &Path) -> Result<()> {
        let _ns = self.namespace();
        let (parent, name) = self.walk_parent(path)?;
        let node = entry(&parent, name).ok_or_else(|| not_found(path))?;
        let was_dir = check_removable(&node, path)?;
        let mut dir = parent.lock();
        detach(&mut dir, name, was_dir);
        drop(dir);
        unlinked(&node, was_dir);
        Ok(())
    }

    /// Renames `from` to `to`, across directories too. An existing `to` is replaced when
    /// `replace` is set (EEXIST otherwise) and follows `rename(2)`'s rules: a directory
    /// replaces only an empty directory, a file only a non-directory.
    pub fn rename(&self, from: &Path, to: &Path, replace: bool) -> Result<()> {
        let _ns = self.namespace();
        let (old_parent, old_name) = self.walk_parent(from)?;
        let node = entry(&old_parent, old_name).ok_or_else(|| not_found(from))?;
        let (new_parent, new_name) = self.walk_parent(to)?;
        let is_dir = node.lock().is_directory();
        if is_dir && to.starts_with(from) && to != from {
            return Err(Error::from_errno(
                libc::EINVAL,
                format!(
                    "{} cannot move into itself ({})",
                    from.display(),
                    to.display()
                ),
            ));
        }
        if let Some(target) = entry(&new_parent, new_name) {
            if Arc::ptr_eq(&target, &node) {
                // Two names of one file (or the same name): rename(2) does nothing.
                return Ok(());
            }
            if !replace {
                return Err(Error::from_errno(
                    libc::EEXIST,
                    format!("{}: file exists", to.display()),
                ));
            }
            let target_is_dir = check_removable(&target, to)?;
            if target_is_dir != is_dir {
                let errno = if is_dir { libc::ENOTDIR } else { libc::EISDIR };
                return Err(Error::from_errno(
                    errno,
                    format!(
                        "{} cannot replace {}: one is a directory, the other not",
                        from.display(),
                        to.display()
                    ),
                ));
            }
            detach(&mut new_parent.lock(), new_name, target_is_dir);
            unlinked(&target, target_is_dir);
        }
        detach(&mut old_parent.lock(), old_name, is_dir);
        let mut dir = new_parent.lock();
        dir.touch_mtime();
        if is_dir {
            dir.meta.nlink += 1;
        }
        if let Content::Directory(entries) = &mut dir.content {
            entries.insert(new_name.to_os_string(), Arc::clone(&node));
        }
        drop(dir);
        node.lock().touch_ctime();
        Ok(())
    }

    /// `RENAME_EXCHANGE`: the objects named `a` and `b` trade names atomically (the kernel
    /// has checked that neither lies inside the other). A directory that changes parents
    /// moves its `..` link: the parents' link counts follow.
    pub fn exchange(&self, a: &Path, b: &Path) -> Result<()> {
        let _ns = self.namespace();
        let (parent_a, name_a) = self.walk_parent(a)?;
        let (parent_b, name_b) = self.walk_parent(b)?;
        let node_a = entry(&parent_a, name_a).ok_or_else(|| not_found(a))?;
        let node_b = entry(&parent_b, name_b).ok_or_else(|| not_found(b))?;
        let (dir_a, dir_b) = (node_a.lock().is_directory(), node_b.lock().is_directory());
        // One parent lock at a time (the locking rule), each entry set to the other node.
        for (parent, name, node, leaving, arriving) in [
            (&parent_a, name_a, &node_b, dir_a, dir_b),
            (&parent_b, name_b, &node_a, dir_b, dir_a),
        ] {
            let mut dir = parent.lock();
            if let Content::Directory(entries) = &mut dir.content {
                entries.insert(name.to_os_string(), Arc::clone(node));
            }
            if !Arc::ptr_eq(&parent_a, &parent_b) {
                dir.meta.nlink = dir.meta.nlink + u32::from(arriving) - u32::from(leaving);
            }
            dir.touch_mtime();
        }
        node_a.lock().touch_ctime();
        node_b.lock().touch_ctime();
        Ok(())
    }

    /// The entries of directory `node` (named `path` in errors), in name order, with their
    /// nodes.
    pub fn entries(&self, node: &Node, path: &Path) -> Result<Vec<(OsString, Arc<Node>)>> {
        let mut state = node.lock();
        state.meta.touch_atime();
        match &state.content {
            Content::Directory(entries) => Ok(entries
                .iter()
                .map(|(n, c)| (n.clone(), Arc::clone(c)))
                .collect()),
            _ => Err(Error::from_errno(
                libc::ENOTDIR,
                format!("{}: not a directory", path.display()),
            )),
        }
    }
}

/// The node named `name` in directory `dir`, if any.
fn entry(dir: &Node, name: &OsStr) -> Option<Arc<Node>> {
    match &dir.lock().content {
        Content::Directory(entries) => entries.get(name).cloned(),
        _ => None,
    }
}

/// Adds `name → node` to a locked directory, EEXIST if taken.
fn insert_new(dir: &mut NodeState, name: &OsStr, node: Arc<Node>, path: &Path) -> Result<()> {
    let Content::Directory(entries) = &mut dir.content else {
        return Err(not_directory(path));
    };
    if entries.contains_key(name) {
        return Err(Error::from_errno(
            libc::EEXIST,
            format!("{}: file exists", path.display()),
        ));
    }
    entries.insert(name.to_os_string(), node);
    dir.touch_mtime();
    Ok(())
}

/// Whether `node` may lose its name: directories must be empty. Returns whether it is one.
fn check_removable(node: &Node, path: &Path) -> Result<bool> {
    match &node.lock().content {
        Content::Directory(entries) if !entries.is_empty() => Err(Error::from_errno(
            libc::ENOTEMPTY,
            format!("{}: directory not empty", path.display()),
        )),
        Content::Directory(_) => Ok(true),
        _ => Ok(false),
    }
}

/// Takes `name` out of a locked directory.
fn detach(dir: &mut NodeState, name: &OsStr, was_dir: bool) {
    if let Content::Directory(entries) = &mut dir.content {
        entries.remove(name);
    }
    if was_dir {
        dir.meta.nlink -= 1;
    }
    dir.touch_mtime();
}

/// Updates a node that lost a name.
fn unlinked(node: &Node, was_dir: bool) {
    let mut state = node.lock();
    state.meta.nlink = if was_dir {
        0
    } else {
        state.meta.nlink.saturating_sub(1)
    };
    state.touch_ctime();
}

/// A fresh node with the next inode number.
fn new_node(
    next_ino: &AtomicU64,
    usage: &Usage,
    kind: NewNode,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Arc<Node> {
    let now = SystemTime::now();
    let (content, nlink) = match kind {
        NewNode::File => (Content::File(SparseData::new(usage.clone())), 1),
        NewNode::Directory => (Content::Directory(BTreeMap::new()), 2),
        NewNode::Symlink(target) => (Content::Symlink(target), 1),
        NewNode::Special(special) => (Content::Special(special), 1),
    };
    Arc::new(Node {
        ino: next_ino.fetch_add(1, Ordering::Relaxed),
        state: Mutex::new(NodeState {
            meta: Meta {
                mode: mode & 0o7777,
                uid,
                gid,
                nlink,
                atime: now,
                mtime: now,
                ctime: now,
                crtime: now,
            },
            content,
            xattrs: BTreeMap::new(),
        }),
    })
}

/// The memory drive: a [`Tree`] answering the `fsgate-vfs` events.
pub struct MemoryDrive {
    tree: Tree,
}

impl Default for MemoryDrive {
    fn default() -> Self {
        Self::new()
    }
}

/// A directory listing in progress: the entries as they were at its first read.
pub struct Listing {
    entries: Vec<(OsString, Arc<Node>)>,
    next: usize,
}

/// The node an open file refers to, kept in its file context and in each of its handle
/// contexts (stored by `on_create_file`/`on_open_file`), so reads, writes, `fstat` and
/// `copy_file_range` (which names only the handle written to) reach it even after its name
/// is gone.
type OpenNode = Arc<Node>;

impl MemoryDrive {
    /// An empty drive whose root is `0o755`, owned by the serving process's user.
    ///
    /// It fixes two of glibc's malloc thresholds for the whole process and starts the
    /// drive's `memory-trim` thread (see "Memory goes back to the system" in the module
    /// docs): create it before the process starts serving.
    pub fn new() -> Self {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        Self {
            tree: Tree::new(0o755, uid, gid, Usage::returning_memory()),
        }
    }

    /// The open node when there is one, otherwise the node at `path`.
    fn node(&self, open: Option<&OpenNode>, path: &Path) -> Result<Arc<Node>> {
        match open {
            Some(node) => Ok(Arc::clone(node)),
            None => self.tree.lookup(path),
        }
    }

    fn create(&self, p: &mut CreateFileParams<'_, OpenNode, OpenNode>) -> Result<()> {
        let path = p.file_name;
        let (uid, gid) = (p.originator.uid, p.originator.gid);
        let new = match p.kind {
            FileKind::File => NewNode::File,
            FileKind::Directory => NewNode::Directory,
            FileKind::Symlink => {
                return Err(Error::from_errno(
                    libc::EPERM,
                    format!(
                        "{}: symbolic links come from on_create_symbolic_link",
                        path.display()
                    ),
                ))
            }
            kind => NewNode::Special(Special { kind, rdev: p.rdev }),
        };
        let node = match self.tree.create(path, new, p.mode, uid, gid) {
            Ok(node) => node,
            // The name appeared after the kernel's lookup: without O_EXCL that is an open.
            Err(e)
                if e.errno() == libc::EEXIST
                    && p.kind == FileKind::File
                    && p.flags & libc::O_EXCL == 0 =>
            {
                let node = self.tree.lookup(path)?;
                if p.flags & libc::O_TRUNC != 0 {
                    let mut state = node.lock();
                    state.data(p.file_name)?.set_size(0);
                    state.touch_mtime();
                }
                node
            }
            Err(e) => return Err(e),
        };
        *p.file_context = Some(Arc::clone(&node));
        *p.handle_context = Some(node);
        Ok(())
    }

    /// `copy_file_range`: the source from its file context, the target from the handle
    /// written to. Returns the bytes copied.
    fn copy_range(&self, p: &CopyFileRangeParams<'_, OpenNode, OpenNode>) -> Result<u64> {
        let source = self.node(p.file_context, p.file_name)?;
        // Looking the target up by name could find another file: the one written to may
        // have been unlinked and the name reused. A handle that never reached on_open_file
        // (`FireAllOpenCloseEvents` off) has no node: EOPNOTSUPP makes the kernel copy this
        // range with reads and writes instead.
        let target = p.target_handle_context.cloned().ok_or_else(|| {
            Error::from_errno(
                libc::EOPNOTSUPP,
                format!(
                    "{}: the handle written to was opened without on_open_file, so its \
                     node is unknown; the kernel copies with reads and writes",
                    p.target_file_name.display()
                ),
            )
        })?;
        copy_data(
            &source,
            p.file_name,
            p.position,
            &target,
            p.target_file_name,
            p.target_position,
            p.length,
        )
    }

    fn next_entry(
        &self,
        p: &mut EnumerateDirectoryParams<'_, OpenNode, OpenNode, Listing>,
    ) -> Result<()> {
        if p.restart || p.enumeration_context.is_none() {
            let dir = self.node(p.file_context.as_deref(), p.directory_name)?;
            *p.enumeration_context = Some(Listing {
                entries: self.tree.entries(&dir, p.directory_name)?,
                next: 0,
            });
        }
        let Some(listing) = p.enumeration_context.as_mut() else {
            return Ok(());
        };
        if let Some((name, node)) = listing.entries.get(listing.next) {
            listing.next += 1;
            p.file_found = true;
            p.file_name = name.clone();
            fill_info(&node.lock(), node.ino, &mut p.info);
        }
        Ok(())
    }

    fn set_attributes(&self, p: &mut SetFileAttributesParams<'_, OpenNode>) -> Result<()> {
        let node = self.node(p.file_context.as_deref(), p.file_name)?;
        let mut state = node.lock();
        let meta = &mut state.meta;
        if let Some(mode) = p.mode {
            meta.mode = mode & 0o7777;
        }
        if let Some(t) = p.creation_time {
            meta.crtime = t;
        }
        if let Some(t) = p.last_access_time {
            meta.atime = t;
        }
        if let Some(t) = p.last_write_time {
            meta.mtime = t;
        }
        meta.ctime = p.change_time.unwrap_or_else(SystemTime::now);
        Ok(())
    }

    fn set_ea(&self, p: &mut SetEaParams<'_>) -> Result<()> {
        known_namespace(p.file_name, p.name)?;
        let node = self.tree.lookup(p.file_name)?;
        let mut state = node.lock();
        let exists = state.xattrs.contains_key(p.name);
        if p.create_only && exists {
            return Err(Error::from_errno(
                libc::EEXIST,
                format!(
                    "{}: attribute {} exists",
                    p.file_name.display(),
                    p.name.to_string_lossy()
                ),
            ));
        }
        if p.replace_only && !exists {
            return Err(no_attribute(p.file_name, p.name));
        }
        state.xattrs.insert(p.name.into(), p.value.to_vec());
        state.touch_ctime();
        Ok(())
    }
}

/// Refuses, as ext4 and tmpfs do (`EOPNOTSUPP`), an attribute outside the namespaces
/// Linux defines: `user.`, `trusted.`, `security.` and the two POSIX ACLs of `system.`.
fn known_namespace(file: &Path, name: &OsStr) -> Result<()> {
    let name = std::os::unix::ffi::OsStrExt::as_bytes(name);
    let known = [&b"user."[..], b"trusted.", b"security."]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || name == b"system.posix_acl_access"
        || name == b"system.posix_acl_default";
    if known {
        return Ok(());
    }
    Err(Error::from_errno(
        libc::EOPNOTSUPP,
        format!(
            "{}: attribute {}: not in a namespace Linux defines",
            file.display(),
            String::from_utf8_lossy(name)
        ),
    ))
}

fn no_attribute(file: &Path, name: &OsStr) -> Error {
    Error::from_errno(
        libc::ENODATA,
        format!(
            "{}: no attribute {}",
            file.display(),
            name.to_string_lossy()
        ),
    )
}

/// Copies up to `length` bytes at `from` in `source` to `to` in `target` (at most
/// [`MAX_COPY`]; none from at or past the source's end) and returns how many: chunk by
/// chunk, one node lock at a time, holes staying holes, and, within one node, from the far
/// end first when the target lies after the source, so overlapping ranges end up as
/// `memmove` leaves them. The paths name the nodes in errors.
fn copy_data(
    source: &Node,
    source_path: &Path,
    from: u64,
    target: &Node,
    target_path: &Path,
    to: u64,
    length: u64,
) -> Result<u64> {
    let count = {
        let mut state = source.lock();
        let size = state.data(source_path)?.size();
        length.min(MAX_COPY).min(size.saturating_sub(from))
    };
    // A target that holds no data fails before anything is copied.
    target.lock().data(target_path)?;
    if to.checked_add(count).is_none() {
        return Err(Error::from_errno(
            libc::EFBIG,
            format!(
                "{}: copy past the largest file offset",
                target_path.display()
            ),
        ));
    }
    if count == 0 {
        return Ok(0);
    }
    // The source range cut at its chunk boundaries: each piece is in one source chunk.
    let end = from + count;
    let mut pieces = Vec::with_capacity((count / CHUNK + 2) as usize);
    let mut offset = from;
    while offset < end {
        let next = (offset / CHUNK + 1).saturating_mul(CHUNK).min(end);
        pieces.push((offset, (next - offset) as usize));
        offset = next;
    }
    if std::ptr::eq(source, target) && to > from {
        pieces.reverse();
    }
    let mut buf = vec![0u8; CHUNK as usize];
    for (offset, len) in pieces {
        // What the source chunk holds of the piece is copied; the rest of the piece (all
        // of it in a hole) becomes a hole in the target rather than written zeros.
        let held = {
            let mut state = source.lock();
            let data = state.data(source_path)?;
            let held = (data.held_from(offset) as usize).min(len);
            let read = data.read(offset, &mut buf[..held]);
            buf[read..held].fill(0);
            held
        };
        let at = to + (offset - from);
        let mut state = target.lock();
        let data = state.data(target_path)?;
        if held > 0 {
            data.write(at, &buf[..held])?;
        }
        if held < len {
            let gap = at + held as u64;
            data.punch(gap, (len - held) as u64);
            if at + len as u64 > data.size() {
                data.set_size(at + len as u64);
            }
        }
    }
    source.lock().meta.touch_atime();
    target.lock().touch_mtime();
    Ok(count)
}

/// Reports `node`'s attributes in an event's `info` and sets its `info_filled`, so the
/// library answers the kernel from them instead of asking `on_get_file_info` next.
fn report(node: &Node, info: &mut FileInfo, info_filled: &mut bool) {
    fill_info(&node.lock(), node.ino, info);
    *info_filled = true;
}

/// Copies a node's attributes into the form `stat` and `readdir` get.
fn fill_info(state: &NodeState, ino: u64, info: &mut FileInfo) {
    info.kind = state.kind();
    info.rdev = match &state.content {
        Content::Special(special) => special.rdev,
        _ => 0,
    };
    let meta = &state.meta;
    info.mode = meta.mode;
    info.uid = meta.uid;
    info.gid = meta.gid;
    info.size = state.size();
    info.allocation_size = Some(match &state.content {
        Content::File(data) => data.allocated(),
        _ => info.size,
    });
    info.hard_link_count = meta.nlink;
    info.creation_time = meta.crtime;
    info.last_access_time = meta.atime;
    info.last_write_time = meta.mtime;
    info.change_time = meta.ctime;
    info.file_id = ino;
}

impl Hooks for MemoryDrive {}

impl Events for MemoryDrive {
    type FileContext = OpenNode;
    type HandleContext = OpenNode;
    type EnumerationContext = Listing;

    fn on_get_volume_size(&self, p: &mut GetVolumeSizeParams) -> Result<()> {
        // The drive may grow to the machine's RAM.
        let total = fsgate_core::memory::physical_memory();
        let sector = u64::from(p.sector_size.max(1));
        p.total_sectors = total / sector;
        p.available_sectors = total.saturating_sub(self.tree.allocated()) / sector;
        p.total_files = u64::from(u32::MAX);
        p.free_files = p
            .total_files
            .saturating_sub(self.tree.next_ino.load(Ordering::Relaxed));
        Ok(())
    }

    fn on_get_volume_label(&self, p: &mut GetVolumeLabelParams) -> Result<()> {
        p.buffer = "fsgate-memory".into();
        Ok(())
    }

    fn on_create_file(&self, p: &mut CreateFileParams<'_, OpenNode, OpenNode>) -> Result<()> {
        self.create(p)?;
        if let Some(node) = p.file_context.as_deref() {
            report(node, &mut p.info, &mut p.info_filled);
        }
        Ok(())
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, OpenNode, OpenNode>) -> Result<()> {
        let node = self.node(p.file_context.as_ref(), p.file_name)?;
        *p.file_context = Some(Arc::clone(&node));
        *p.handle_context = Some(node);
        Ok(())
    }

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, OpenNode>) -> Result<()> {
        let node = match p.file_context.as_deref() {
            Some(node) => Some(Arc::clone(node)),
            None => self.tree.find(p.file_name)?,
        };
        if let Some(node) = node {
            fill_info(&node.lock(), node.ino, &mut p.info);
            p.file_exists = true;
        }
        Ok(())
    }

    fn on_enumerate_directory(
        &self,
        p: &mut EnumerateDirectoryParams<'_, OpenNode, OpenNode, Listing>,
    ) -> Result<()> {
        self.next_entry(p)
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, OpenNode, OpenNode>) -> Result<()> {
        let node = self.node(p.file_context, p.file_name)?;
        let mut state = node.lock();
        p.bytes_read = state.data(p.file_name)?.read(p.position, p.buffer);
        state.meta.touch_atime();
        Ok(())
    }

    fn on_write_file(&self, p: &mut WriteFileParams<'_, OpenNode, OpenNode>) -> Result<()> {
        let node = self.node(p.file_context.as_deref(), p.file_name)?;
        let mut state = node.lock();
        state.data(p.file_name)?.write(p.position, p.buffer)?;
        // A write-back of cached pages: the kernel keeps the times and sends them itself.
        if !p.write_back {
            state.touch_mtime();
        }
        p.bytes_written = p.buffer.len();
        Ok(())
    }

    fn on_set_file_size(&self, p: &mut SetFileSizeParams<'_, OpenNode>) -> Result<()> {
        let node = self.node(p.file_context.as_deref(), p.file_name)?;
        let mut state = node.lock();
        state.data(p.file_name)?.set_size(p.size);
        state.touch_mtime();
        drop(state);
        report(&node, &mut p.info, &mut p.info_filled);
        Ok(())
    }

    fn on_set_allocation_size(&self, p: &mut SetAllocationSizeParams<'_, OpenNode>) -> Result<()> {
        // Memory is taken when written, never reserved: without keep_size the file only
        // grows, as fallocate(2) says. As on ext4, mtime changes only with the size.
        let node = self.node(p.file_context.as_deref(), p.file_name)?;
        let mut state = node.lock();
        let data = state.data(p.file_name)?;
        if !p.keep_size && p.allocation_size > data.size() {
            data.set_size(p.allocation_size);
            state.touch_mtime();
        } else {
            state.touch_ctime();
        }
        Ok(())
    }

    fn on_zeroize_file_range(&self, p: &mut ZeroizeFileRangeParams<'_, OpenNode>) -> Result<()> {
        // Punching a hole and zeroing a range both leave holes (see the module docs); only
        // zeroing may grow the file.
        let node = self.node(p.file_context.as_deref(), p.file_name)?;
        let mut state = node.lock();
        let data = state.data(p.file_name)?;
        if p.deallocate && p.position >= data.size() {
            // ext4 leaves the file, times too, alone for a hole at or past its end.
            return Ok(());
        }
        data.punch(p.position, p.length);
        let end = p.position.saturating_add(p.length);
        if !p.keep_size && end > data.size() {
            data.set_size(end);
        }
        state.touch_mtime();
        Ok(())
    }

    fn on_copy_file_range(
        &self,
        p: &mut CopyFileRangeParams<'_, OpenNode, OpenNode>,
    ) -> Result<()> {
        p.bytes_copied = self.copy_range(p)?;
        Ok(())
    }

    fn on_set_file_attributes(&self, p: &mut SetFileAttributesParams<'_, OpenNode>) -> Result<()> {
        self.set_attributes(p)?;
        let node = self.node(p.file_context.as_deref(), p.file_name)?;
        report(&node, &mut p.info, &mut p.info_filled);
        Ok(())
    }

    fn on_set_file_security(&self, p: &mut SetFileSecurityParams<'_, OpenNode>) -> Result<()> {
        let node = self.node(p.file_context.as_deref(), p.file_name)?;
        let mut state = node.lock();
        if let Some(uid) = p.owner {
            state.meta.uid = uid;
        }
        if let Some(gid) = p.group {
            state.meta.gid = gid;
        }
        state.touch_ctime();
        drop(state);
        report(&node, &mut p.info, &mut p.info_filled);
        Ok(())
    }

    fn on_rename_or_move_file(&self, p: &mut RenameOrMoveFileParams<'_, OpenNode>) -> Result<()> {
        self.tree
            .rename(p.file_name, p.new_file_name, p.replace_existing)
    }

    fn on_exchange_files(&self, p: &mut ExchangeFilesParams<'_>) -> Result<()> {
        self.tree.exchange(p.file_name, p.new_file_name)
    }

    fn on_delete_file(&self, p: &mut DeleteFileParams<'_, OpenNode>) -> Result<()> {
        self.tree.remove(p.file_name)
    }

    fn on_is_directory_empty(&self, p: &mut IsDirectoryEmptyParams<'_>) -> Result<()> {
        let dir = self.tree.lookup(p.directory_name)?;
        let state = dir.lock();
        match &state.content {
            Content::Directory(entries) => {
                p.is_empty = Some(entries.is_empty());
                Ok(())
            }
            _ => Err(not_directory(p.directory_name)),
        }
    }

    fn on_create_hard_link(&self, p: &mut CreateHardLinkParams<'_>) -> Result<()> {
        let node = self.tree.link(p.file_name, p.link_name)?;
        report(&node, &mut p.info, &mut p.info_filled);
        Ok(())
    }

    fn on_create_symbolic_link(&self, p: &mut CreateSymbolicLinkParams<'_>) -> Result<()> {
        let (uid, gid) = (p.originator.uid, p.originator.gid);
        let target = NewNode::Symlink(p.target.to_path_buf());
        let node = self.tree.create(p.file_name, target, 0o777, uid, gid)?;
        report(&node, &mut p.info, &mut p.info_filled);
        Ok(())
    }

    fn on_get_symbolic_link_target(&self, p: &mut GetSymbolicLinkTargetParams<'_>) -> Result<()> {
        let node = self.tree.lookup(p.file_name)?;
        let state = node.lock();
        match &state.content {
            Content::Symlink(target) => {
                p.target = target.clone();
                Ok(())
            }
            _ => Err(Error::from_errno(
                libc::EINVAL,
                format!("{}: not a symbolic link", p.file_name.display()),
            )),
        }
    }

    fn on_get_ea(&self, p: &mut GetEaParams<'_>) -> Result<()> {
        known_namespace(p.file_name, p.name)?;
        let node = self.tree.lookup(p.file_name)?;
        let state = node.lock();
        let value = state
            .xattrs
            .get(p.name)
            .ok_or_else(|| no_attribute(p.file_name, p.name))?;
        p.value = value.clone();
        Ok(())
    }

    fn on_set_ea(&self, p: &mut SetEaParams<'_>) -> Result<()> {
        self.set_ea(p)
    }

    fn on_list_eas(&self, p: &mut ListEasParams<'_>) -> Result<()> {
        let node = self.tree.lookup(p.file_name)?;
        p.names = node.lock().xattrs.keys().cloned().collect();
        Ok(())
    }

    fn on_remove_ea(&self, p: &mut RemoveEaParams<'_>) -> Result<()> {
        known_namespace(p.file_name, p.name)?;
        let node = self.tree.lookup(p.file_name)?;
        let mut state = node.lock();
        state
            .xattrs
            .remove(p.name)
            .ok_or_else(|| no_attribute(p.file_name, p.name))?;
        state.touch_ctime();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(usage: &Usage) -> SparseData {
        SparseData::new(usage.clone())
    }

    #[test]
    fn sparse_data_reads_holes_as_zeros_and_counts_only_written_chunks() {
        let usage = Usage::default();
        let mut data = file(&usage);
        data.set_size(4 << 30);
        assert_eq!(usage.bytes(), 0);
        data.write((4 << 30) - 1, b"Z").unwrap();
        assert_eq!(usage.bytes(), CHUNK);
        let mut buf = [1u8; 4];
        assert_eq!(data.read((4 << 30) - 3, &mut buf), 3);
        assert_eq!(&buf[..3], b"\0\0Z");
        drop(data);
        assert_eq!(usage.bytes(), 0, "a dropped file gives its chunks back");
    }

    #[test]
    fn a_chunk_holds_the_pages_up_to_its_last_written_byte_and_grows_by_doubling() {
        let usage = Usage::default();
        let mut data = file(&usage);
        data.write(0, &[1; 600]).unwrap();
        assert_eq!(
            (data.allocated(), usage.bytes()),
            (GRAIN, GRAIN),
            "600 bytes take a page"
        );
        data.write(600, &[2; 5000]).unwrap();
        assert_eq!(data.allocated(), 2 * GRAIN);
        data.write(3 * GRAIN, b"x").unwrap();
        assert_eq!(data.allocated(), 4 * GRAIN);
        data.write(4 * GRAIN + 1, b"y").unwrap();
        assert_eq!(
            data.allocated(),
            8 * GRAIN,
            "five pages needed, the chunk doubled"
        );
        assert_eq!(usage.bytes(), 8 * GRAIN);
        let mut all = vec![9u8; 6 * GRAIN as usize];
        assert_eq!(data.read(0, &mut all), 4 * GRAIN as usize + 2);
        let mut expected = vec![0u8; 4 * GRAIN as usize + 2];
        expected[..600].fill(1);
        expected[600..5600].fill(2);
        expected[3 * GRAIN as usize] = b'x';
        expected[4 * GRAIN as usize + 1] = b'y';
        assert!(all[..expected.len()] == expected[..]);
        assert_eq!(data.held_from(4 * GRAIN), 4 * GRAIN);
        assert_eq!(data.held_from(9 * GRAIN), 0, "past what the chunk holds");
        assert_eq!(data.held_from(CHUNK + 1), 0, "in a hole");
        // A shrink gives back the pages past the new end and zeroes the rest of its page.
        data.set_size(GRAIN + 1);
        assert_eq!((data.allocated(), usage.bytes()), (2 * GRAIN, 2 * GRAIN));
        data.set_size(3 * GRAIN);
        let mut back = vec![9u8; 3 * GRAIN as usize];
        assert_eq!(data.read(0, &mut back), back.len());
        assert!(back[..600].iter().all(|&b| b == 1));
        assert!(back[600..=GRAIN as usize].iter().all(|&b| b == 2));
        assert!(back[GRAIN as usize + 1..].iter().all(|&b| b == 0));
        drop(data);
        assert_eq!(usage.bytes(), 0);
    }

    #[test]
    fn sparse_data_write_spans_chunks_and_shrink_zeroes_the_tail() {
        let usage = Usage::default();
        let mut data = file(&usage);
        let bytes: Vec<u8> = (0..3 * CHUNK as usize).map(|i| i as u8).collect();
        data.write(10, &bytes).unwrap();
        let mut back = vec![0u8; bytes.len()];
        assert_eq!(data.read(10, &mut back), bytes.len());
        assert_eq!(back, bytes);
        data.set_size(CHUNK + 5);
        assert_eq!(
            usage.bytes(),
            CHUNK + GRAIN,
            "the cut chunk keeps only the page holding the new end"
        );
        data.set_size(2 * CHUNK);
        let mut tail = [9u8; 8];
        assert_eq!(data.read(CHUNK + 3, &mut tail), 8);
        assert_eq!(&tail[..2], &bytes[CHUNK as usize - 7..CHUNK as usize - 5]);
        assert_eq!(&tail[2..], &[0; 6], "bytes cut by the shrink read as zeros");
        assert_eq!(
            data.write(u64::MAX, b"xy").unwrap_err().errno(),
            libc::EFBIG
        );
    }

    #[test]
    fn tree_rename_follows_rename_2() {
        let tree = Tree::new(0o755, 0, 0, Usage::default());
        let p = Path::new;
        tree.create(p("/d"), NewNode::Directory, 0o755, 0, 0)
            .unwrap();
        tree.create(p("/d/e"), NewNode::Directory, 0o755, 0, 0)
            .unwrap();
        tree.create(p("/f"), NewNode::File, 0o644, 0, 0).unwrap();
        tree.create(p("/g"), NewNode::File, 0o644, 0, 0).unwrap();
        let err = |r: Result<()>| r.unwrap_err().errno();
        assert_eq!(err(tree.rename(p("/f"), p("/g"), false)), libc::EEXIST);
        assert_eq!(err(tree.rename(p("/f"), p("/d"), true)), libc::ENOTEMPTY);
        assert_eq!(err(tree.rename(p("/d/e"), p("/f"), true)), libc::ENOTDIR);
        assert_eq!(err(tree.rename(p("/d"), p("/d/e/x"), true)), libc::EINVAL);
        tree.rename(p("/d/e"), p("/e"), false).unwrap();
        assert_eq!(tree.lookup(p("/d")).unwrap().lock().meta.nlink, 2);
        assert_eq!(tree.lookup(p("/")).unwrap().lock().meta.nlink, 4);
        tree.rename(p("/f"), p("/g"), true).unwrap();
        assert_eq!(
            tree.lookup(p("/f")).err().map(|e| e.errno()),
            Some(libc::ENOENT)
        );
        assert_eq!(err(tree.remove(p("/x/y"))), libc::ENOENT);
    }

    #[test]
    fn set_group_id_directories_pass_their_group_down() {
        let tree = Tree::new(0o755, 0, 0, Usage::default());
        let p = Path::new;
        tree.create(p("/g"), NewNode::Directory, 0o2775, 0, 50)
            .unwrap();
        let file = tree.create(p("/g/f"), NewNode::File, 0o644, 7, 7).unwrap();
        let dir = tree
            .create(p("/g/d"), NewNode::Directory, 0o755, 7, 7)
            .unwrap();
        let fifo = Special {
            kind: FileKind::Fifo,
            rdev: 0,
        };
        let fifo = tree
            .create(p("/g/p"), NewNode::Special(fifo), 0o640, 7, 7)
            .unwrap();
        let (file, dir, fifo) = (file.lock().meta, dir.lock().meta, fifo.lock().meta);
        assert_eq!((file.gid, file.mode), (50, 0o644));
        assert_eq!((dir.gid, dir.mode), (50, 0o2755));
        assert_eq!((fifo.uid, fifo.gid, fifo.mode), (7, 50, 0o640));
    }

    #[test]
    fn punch_drops_whole_chunks_and_zeroes_the_edges() {
        let usage = Usage::default();
        let mut data = file(&usage);
        data.write(0, &vec![0xab; 4 * CHUNK as usize]).unwrap();
        data.punch(CHUNK + 10, 2 * CHUNK);
        assert_eq!(data.size(), 4 * CHUNK, "the size stays");
        assert_eq!(usage.bytes(), 3 * CHUNK, "the one whole chunk inside went");
        let mut all = vec![0u8; 4 * CHUNK as usize];
        assert_eq!(data.read(0, &mut all), all.len());
        let (a, b) = ((CHUNK + 10) as usize, (3 * CHUNK + 10) as usize);
        assert!(all[..a].iter().all(|&x| x == 0xab));
        assert!(all[a..b].iter().all(|&x| x == 0));
        assert!(all[b..].iter().all(|&x| x == 0xab));
        // A range reaching past the end drops the last chunk too; the size stays.
        data.punch(3 * CHUNK, u64::MAX);
        assert_eq!((data.size(), usage.bytes()), (4 * CHUNK, 2 * CHUNK));
        data.punch(10 * CHUNK, 5);
        assert_eq!(
            usage.bytes(),
            2 * CHUNK,
            "past the end there is nothing to drop"
        );
        data.punch(5, 10);
        let mut head = [1u8; 20];
        assert_eq!(data.read(0, &mut head), 20);
        assert_eq!(head[..5], [0xab; 5]);
        assert_eq!(head[5..15], [0; 10], "a range inside one chunk is zeroed");
        assert_eq!(head[15..], [0xab; 5]);
        assert_eq!(usage.bytes(), 2 * CHUNK);
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn contents(node: &Node) -> Vec<u8> {
        let mut state = node.lock();
        let data = state.data(Path::new("/f")).unwrap();
        let mut all = vec![0u8; data.size() as usize];
        assert_eq!(data.read(0, &mut all), all.len());
        all
    }

    #[test]
    fn copy_within_one_file_moves_overlapping_ranges_as_memmove_does() {
        let tree = Tree::new(0o755, 0, 0, Usage::default());
        let node = tree
            .create(Path::new("/f"), NewNode::File, 0o644, 0, 0)
            .unwrap();
        let original = pattern(3 * CHUNK as usize + 100);
        for (from, to, len) in [(0u64, 1000u64, 2 * CHUNK + 7), (1000, 0, 2 * CHUNK + 7)] {
            node.lock().data(Path::new("/f")).unwrap().set_size(0);
            node.lock()
                .data(Path::new("/f"))
                .unwrap()
                .write(0, &original)
                .unwrap();
            let copied = copy_data(
                &node,
                Path::new("/f"),
                from,
                &node,
                Path::new("/f"),
                to,
                len,
            )
            .unwrap();
            assert_eq!(copied, len);
            let mut expected = original.clone();
            expected.copy_within(from as usize..(from + len) as usize, to as usize);
            assert!(contents(&node) == expected, "copy {from} -> {to}");
        }
    }

    /// A drive's tree with two empty files, `/s` and `/t`, counted in the usage returned.
    fn source_and_target() -> (Usage, Tree, Arc<Node>, Arc<Node>) {
        let usage = Usage::default();
        let tree = Tree::new(0o755, 0, 0, usage.clone());
        let file = |name| {
            tree.create(Path::new(name), NewNode::File, 0o644, 0, 0)
                .unwrap()
        };
        let (source, target) = (file("/s"), file("/t"));
        (usage, tree, source, target)
    }

    #[test]
    fn copy_takes_only_the_pages_the_source_holds() {
        let (_usage, _tree, source, target) = source_and_target();
        let p = Path::new;
        {
            let mut state = source.lock();
            let data = state.data(p("/s")).unwrap();
            data.write(0, &[5; 100]).unwrap();
            data.set_size(2 * CHUNK);
        }
        let copied = copy_data(&source, p("/s"), 0, &target, p("/t"), 10, u64::MAX).unwrap();
        assert_eq!(copied, 2 * CHUNK);
        let mut state = target.lock();
        let data = state.data(p("/t")).unwrap();
        // The source's one page lands 10 bytes in, across two of the target's; the rest of
        // the 128 KiB stays a hole.
        assert_eq!((data.size(), data.allocated()), (2 * CHUNK + 10, 2 * GRAIN));
        let mut back = vec![9u8; 2 * CHUNK as usize + 20];
        assert_eq!(data.read(0, &mut back), 2 * CHUNK as usize + 10);
        assert!(back[..10].iter().all(|&b| b == 0));
        assert!(back[10..110].iter().all(|&b| b == 5));
        assert!(back[110..2 * CHUNK as usize + 10].iter().all(|&b| b == 0));
    }

    #[test]
    fn copy_keeps_holes_stops_at_the_source_end_and_grows_the_target() {
        let (usage, tree, source, target) = source_and_target();
        let p = Path::new;
        {
            let mut state = source.lock();
            let data = state.data(Path::new("/s")).unwrap();
            data.set_size(16 * CHUNK);
            data.write(16 * CHUNK - 1, b"Z").unwrap();
        }
        assert_eq!(
            copy_data(
                &source,
                Path::new("/s"),
                0,
                &target,
                Path::new("/t"),
                0,
                u64::MAX
            )
            .unwrap(),
            16 * CHUNK
        );
        let mut state = target.lock();
        let data = state.data(Path::new("/t")).unwrap();
        assert_eq!((data.size(), data.allocated()), (16 * CHUNK, CHUNK));
        let mut last = [9u8; 2];
        assert_eq!(data.read(16 * CHUNK - 2, &mut last), 2);
        assert_eq!(&last, b"\0Z");
        drop(state);
        assert_eq!(usage.bytes(), 2 * CHUNK);
        assert_eq!(
            copy_data(
                &source,
                Path::new("/s"),
                16 * CHUNK,
                &target,
                Path::new("/t"),
                0,
                10
            )
            .unwrap(),
            0
        );
        assert_eq!(
            copy_data(
                &source,
                Path::new("/s"),
                16 * CHUNK - 1,
                &target,
                Path::new("/t"),
                20 * CHUNK,
                10
            )
            .unwrap(),
            1
        );
        assert_eq!(target.lock().size(), 20 * CHUNK + 1);
        // A hole copied over written bytes leaves zeros there.
        let sevens = vec![7u8; 2 * CHUNK as usize];
        target
            .lock()
            .data(Path::new("/t"))
            .unwrap()
            .write(0, &sevens)
            .unwrap();
        assert_eq!(
            copy_data(
                &source,
                Path::new("/s"),
                0,
                &target,
                Path::new("/t"),
                10,
                CHUNK
            )
            .unwrap(),
            CHUNK
        );
        let mut back = vec![1u8; 2 * CHUNK as usize];
        target
            .lock()
            .data(Path::new("/t"))
            .unwrap()
            .read(0, &mut back);
        let hole = 10..(CHUNK + 10) as usize;
        assert!(back[..10] == sevens[..10] && back[hole.end..] == sevens[hole.end..]);
        assert!(back[hole].iter().all(|&b| b == 0));
        let dir = tree
            .create(p("/d"), NewNode::Directory, 0o755, 0, 0)
            .unwrap();
        let err = copy_data(&source, Path::new("/s"), 0, &dir, Path::new("/d"), 0, 1).unwrap_err();
        assert_eq!(err.errno(), libc::EISDIR);
    }

    #[test]
    fn usage_asks_for_a_trim_each_time_it_falls_a_threshold_below_its_high_water_mark() {
        let usage = Usage::default();
        let t = TRIM_THRESHOLD;
        usage.resize(0, 2 * t);
        usage.resize(2 * t, t + 1);
        assert_eq!(usage.trims(), 0, "one byte short of the threshold");
        usage.resize(t + 1, t);
        assert_eq!(usage.trims(), 1);
        // Rewriting in place (free, then write as much again) never reaches the threshold.
        for _ in 0..10 {
            usage.resize(t, t / 2);
            usage.resize(t / 2, t);
        }
        assert_eq!(usage.trims(), 1);
        usage.resize(t, 0);
        assert_eq!((usage.trims(), usage.bytes()), (2, 0));
    }

    #[test]
    fn atime_follows_relatime() {
        let t = |secs: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let now = SystemTime::now();
        let mut meta = Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            nlink: 1,
            atime: t(10),
            mtime: t(20),
            ctime: t(20),
            crtime: t(0),
        };
        meta.touch_atime();
        assert!(meta.atime >= now, "older than the last change: moves");
        let read = meta.atime;
        meta.touch_atime();
        assert_eq!(meta.atime, read, "newer than every change and fresh: stays");
        meta.atime = now - std::time::Duration::from_secs(25 * 60 * 60);
        meta.mtime = t(0);
        meta.ctime = t(0);
        meta.touch_atime();
        assert!(meta.atime >= now, "a day old: moves");
    }

    #[test]
    fn special_nodes_keep_kind_and_device_and_hold_no_data() {
        let tree = Tree::new(0o755, 0, 0, Usage::default());
        let p = Path::new;
        let device = Special {
            kind: FileKind::CharDevice,
            rdev: 0x103,
        };
        let node = tree
            .create(p("/null"), NewNode::Special(device), 0o666, 0, 0)
            .unwrap();
        let mut info = FileInfo::new(FileKind::File, 0, 0, SystemTime::UNIX_EPOCH);
        fill_info(&node.lock(), node.ino, &mut info);
        assert_eq!(
            (info.kind, info.rdev, info.size, info.mode),
            (FileKind::CharDevice, 0x103, 0, 0o666)
        );
        let err = node.lock().data(Path::new("/null")).map(drop).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
        assert!(err.to_string().contains("/null"), "{err}");
        tree.link(p("/null"), p("/null2")).unwrap();
        tree.rename(p("/null2"), p("/zero"), false).unwrap();
        assert_eq!(node.lock().meta.nlink, 2);
        tree.remove(p("/null")).unwrap();
        assert!(Arc::ptr_eq(&tree.lookup(p("/zero")).unwrap(), &node));
    }

    #[test]
    fn hard_links_count_names_and_keep_the_node() {
        let tree = Tree::new(0o755, 0, 0, Usage::default());
        let p = Path::new;
        let node = tree.create(p("/a"), NewNode::File, 0o644, 0, 0).unwrap();
        tree.link(p("/a"), p("/b")).unwrap();
        assert_eq!(node.lock().meta.nlink, 2);
        tree.remove(p("/a")).unwrap();
        tree.remove(p("/b")).unwrap();
        assert_eq!(node.lock().meta.nlink, 0);
        assert_eq!(Arc::strong_count(&node), 1, "only the open handle holds it");
    }
}
