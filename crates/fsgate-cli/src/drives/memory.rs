//! The memory drive: a complete POSIX filesystem kept in RAM, written only against the public
//! `fsgate-vfs` API. It is a sample to read and copy: correct first, fast second.
//!
//! # Design
//!
//! **Nodes.** Every file, directory and symbolic link is a [`Node`] behind an `Arc`. A
//! directory holds its entries as `name → Arc<Node>`, and an open file holds its node in the
//! file context. So a node lives exactly as long as some name or some open handle refers to
//! it: unlinking an open file removes the name, and the data goes when the last handle closes,
//! with no bookkeeping beyond `Arc`. `nlink` counts names only (what `stat` reports).
//!
//! **Hard links** are two directory entries holding the same `Arc<Node>`; **symbolic links**
//! are nodes whose content is the target path, resolved by the kernel, never by us.
//!
//! **Sparse data.** A file's bytes are a [`SparseData`]: a size plus a `BTreeMap` of fixed
//! 64 KiB chunks indexed by offset / 64 KiB. Chunks that were never written do not exist and
//! read as zeros, so a 4 GiB file with one byte at its end costs one chunk.
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
//! **Times** follow POSIX: reads set atime; writes and size changes set mtime and ctime;
//! attribute, owner, link-count and xattr changes set ctime; creating, removing or renaming an
//! entry sets the directory's mtime and ctime.
//!
//! **Permissions.** The drive stores mode, owner and group and reports them; the kernel checks
//! them against the caller (root passes every check, as on any Linux filesystem).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use fsgate_core::{Error, Result};
use fsgate_vfs::attributes;
use fsgate_vfs::{
    CleanupFileParams, CloseDirectoryEnumerationParams, CloseFileParams, CreateFileParams,
    CreateHardLinkParams, CreateSymbolicLinkParams, DeleteFileParams, EnumerateDirectoryParams,
    Events, FileInfo, FileKind, GetEaParams, GetFileInfoParams, GetSymbolicLinkTargetParams,
    GetVolumeLabelParams, GetVolumeSizeParams, IsDirectoryEmptyParams, ListEasParams,
    OpenFileParams, ReadFileParams, RemoveEaParams, RenameOrMoveFileParams,
    SetAllocationSizeParams, SetEaParams, SetFileAttributesParams, SetFileSecurityParams,
    SetFileSizeParams, WriteFileParams,
};
use serde_json::{Map, Value};

use crate::output::Printer;

/// The size of one data chunk: the unit of allocation of [`SparseData`].
const CHUNK: u64 = 64 * 1024;

/// Bytes of file data a drive holds, shared by all its files.
#[derive(Clone, Default)]
pub struct Usage(Arc<AtomicU64>);

impl Usage {
    /// Bytes allocated now.
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add_chunks(&self, before: usize, after: usize) {
        if after > before {
            self.0
                .fetch_add((after - before) as u64 * CHUNK, Ordering::Relaxed);
        } else {
            self.0
                .fetch_sub((before - after) as u64 * CHUNK, Ordering::Relaxed);
        }
    }
}

/// A file's bytes: chunks that were never written are holes and read as zeros. Its chunks
/// are counted in the drive's [`Usage`] until it is dropped.
pub struct SparseData {
    size: u64,
    chunks: BTreeMap<u64, Box<[u8]>>,
    usage: Usage,
}

impl Drop for SparseData {
    fn drop(&mut self) {
        self.usage.add_chunks(self.chunks.len(), 0);
    }
}

impl SparseData {
    /// An empty file counted in `usage`.
    pub fn new(usage: Usage) -> Self {
        Self {
            size: 0,
            chunks: BTreeMap::new(),
            usage,
        }
    }

    /// The file size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of memory the file's chunks take (what `st_blocks` reports).
    pub fn allocated(&self) -> u64 {
        self.chunks.len() as u64 * CHUNK
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
            let to = end.min(chunk_start + CHUNK);
            out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(
                &chunk[(from - chunk_start) as usize..(to - chunk_start) as usize],
            );
        }
        out.len()
    }

    /// Writes `data` at `offset`, growing the file if needed.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| Error::from_errno(libc::EFBIG, "write past the largest file offset"))?;
        let before = self.chunks.len();
        let mut pos = offset;
        while pos < end {
            let index = pos / CHUNK;
            let chunk_start = index * CHUNK;
            let to = end.min(chunk_start + CHUNK);
            let chunk = self
                .chunks
                .entry(index)
                .or_insert_with(|| vec![0u8; CHUNK as usize].into_boxed_slice());
            chunk[(pos - chunk_start) as usize..(to - chunk_start) as usize]
                .copy_from_slice(&data[(pos - offset) as usize..(to - offset) as usize]);
            pos = to;
        }
        self.size = self.size.max(end);
        self.usage.add_chunks(before, self.chunks.len());
        Ok(())
    }

    /// Sets the size: shrinking drops whole chunks past the end and zeroes the tail of the
    /// last one (so growing again reads zeros); growing only moves the end (a hole).
    pub fn set_size(&mut self, size: u64) {
        let before = self.chunks.len();
        if size < self.size {
            self.chunks.retain(|&index, _| index * CHUNK < size);
            let tail = (size % CHUNK) as usize;
            if let Some(chunk) = self.chunks.get_mut(&(size / CHUNK)) {
                chunk[tail..].fill(0);
            }
        }
        self.size = size;
        self.usage.add_chunks(before, self.chunks.len());
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
}

/// What kind of node to create.
pub enum NewNode {
    /// An empty regular file.
    File,
    /// An empty directory.
    Directory,
    /// A symbolic link to this target.
    Symlink(PathBuf),
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
    /// The file's data, or EISDIR/EINVAL for directories and symbolic links.
    pub fn data(&mut self) -> Result<&mut SparseData> {
        match &mut self.content {
            Content::File(data) => Ok(data),
            Content::Directory(_) => Err(Error::from_errno(libc::EISDIR, "is a directory")),
            Content::Symlink(_) => Err(Error::from_errno(libc::EINVAL, "is a symbolic link")),
        }
    }

    /// Size in bytes: data size, entry count for directories, target length for links.
    pub fn size(&self) -> u64 {
        match &self.content {
            Content::File(data) => data.size(),
            Content::Directory(entries) => entries.len() as u64,
            Content::Symlink(target) => target.as_os_str().len() as u64,
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

/// A file, directory or symbolic link.
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
    /// An empty tree whose root directory has `mode`, owned by `uid`:`gid`.
    pub fn new(mode: u32, uid: u32, gid: u32) -> Self {
        let next_ino = AtomicU64::new(1);
        let usage = Usage::default();
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

    /// The entries of directory `node`, in name order, with their nodes.
    pub fn entries(&self, node: &Node) -> Result<Vec<(OsString, Arc<Node>)>> {
        let mut state = node.lock();
        state.meta.atime = SystemTime::now();
        match &state.content {
            Content::Directory(entries) => Ok(entries
                .iter()
                .map(|(n, c)| (n.clone(), Arc::clone(c)))
                .collect()),
            _ => Err(Error::from_errno(libc::ENOTDIR, "not a directory")),
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

/// The memory drive: a [`Tree`] answering the `fsgate-vfs` events, optionally printing each
/// event.
pub struct MemoryDrive {
    tree: Tree,
    log: Option<Printer>,
}

/// A directory listing in progress: the entries as they were at its first read.
#[derive(Default)]
pub struct Listing {
    entries: Vec<(OsString, Arc<Node>)>,
    next: usize,
}

/// The node an open file refers to (set by `on_create_file`/`on_open_file`), so reads,
/// writes and `fstat` reach it even after its name is gone.
type OpenNode = Option<Arc<Node>>;

impl MemoryDrive {
    /// An empty drive whose root is `0o755`, owned by the serving process's user. With
    /// `log`, each event is printed after it ran.
    pub fn new(log: Option<Printer>) -> Self {
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Self {
            tree: Tree::new(0o755, uid, gid),
            log,
        }
    }

    /// Prints `event` with the fields `fields` adds, the originator's pid and the result
    /// code, when logging; returns `result` unchanged.
    fn report<T>(
        &self,
        event: &str,
        result: Result<T>,
        fields: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<T> {
        if let Some(printer) = self.log {
            let mut map = Map::new();
            fields(&mut map);
            if let Ok(pid) = fsgate_vfs::get_originator_process_id() {
                map.insert("process_id".into(), pid.into());
            }
            let code = result.as_ref().err().map_or(0, Error::code);
            map.insert("result_code".into(), code.into());
            printer.event(event, map);
        }
        result
    }

    /// The open node when there is one, otherwise the node at `path`.
    fn node(&self, open: Option<&OpenNode>, path: &str) -> Result<Arc<Node>> {
        match open.and_then(|o| o.clone()) {
            Some(node) => Ok(node),
            None => self.tree.lookup(Path::new(path)),
        }
    }

    fn create(&self, p: &mut CreateFileParams<'_, OpenNode, ()>) -> Result<()> {
        let path = Path::new(p.file_name);
        let uid = fsgate_vfs::get_originator_user_id()?;
        let gid = fsgate_vfs::get_originator_group_id()?;
        let node = if p.attributes & attributes::FILE_ATTRIBUTE_DIRECTORY != 0 {
            self.tree
                .create(path, NewNode::Directory, p.mode, uid, gid)?
        } else {
            match self.tree.create(path, NewNode::File, p.mode, uid, gid) {
                Ok(node) => node,
                // The name appeared after the kernel's lookup: without O_EXCL that is an open.
                Err(e) if e.errno() == libc::EEXIST && p.flags & libc::O_EXCL == 0 => {
                    let node = self.tree.lookup(path)?;
                    if p.flags & libc::O_TRUNC != 0 {
                        let mut state = node.lock();
                        state.data()?.set_size(0);
                        state.touch_mtime();
                    }
                    node
                }
                Err(e) => return Err(e),
            }
        };
        *p.file_context = Some(node);
        Ok(())
    }

    fn next_entry(
        &self,
        p: &mut EnumerateDirectoryParams<'_, OpenNode, (), Listing>,
    ) -> Result<()> {
        let listing = &mut *p.enumeration_context;
        if p.restart {
            let dir = self.node(Some(p.file_context), p.directory_name)?;
            *listing = Listing {
                entries: self.tree.entries(&dir)?,
                next: 0,
            };
        }
        if let Some((name, node)) = listing.entries.get(listing.next) {
            listing.next += 1;
            p.file_found = true;
            p.file_name = name.to_string_lossy().into_owned();
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
        let node = self.tree.lookup(Path::new(p.file_name))?;
        let mut state = node.lock();
        let exists = state.xattrs.contains_key(OsStr::new(p.name));
        if p.create_only && exists {
            return Err(Error::from_errno(
                libc::EEXIST,
                format!("{}: attribute {} exists", p.file_name, p.name),
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

fn no_attribute(file: &str, name: &str) -> Error {
    Error::from_errno(libc::ENODATA, format!("{file}: no attribute {name}"))
}

/// Copies a node's attributes into the form `stat` and `readdir` get.
fn fill_info(state: &NodeState, ino: u64, info: &mut FileInfo) {
    info.kind = match state.content {
        Content::File(_) => FileKind::File,
        Content::Directory(_) => FileKind::Directory,
        Content::Symlink(_) => FileKind::Symlink,
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

fn name(path: &str) -> impl FnOnce(&mut Map<String, Value>) + '_ {
    move |m| {
        m.insert("file_name".into(), path.into());
    }
}

impl Events for MemoryDrive {
    type FileContext = OpenNode;
    type HandleContext = ();
    type EnumerationContext = Listing;

    fn on_get_volume_size(&self, p: &mut GetVolumeSizeParams) -> Result<()> {
        // The drive may grow to the machine's RAM.
        // SAFETY: sysconf has no preconditions.
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let total = (pages.max(0) as u64).saturating_mul(page.max(0) as u64);
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

    fn on_create_file(&self, p: &mut CreateFileParams<'_, OpenNode, ()>) -> Result<()> {
        let result = self.create(p);
        self.report("create_file", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("attributes".into(), p.attributes.into());
            m.insert("desired_access".into(), p.desired_access.into());
        })
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, OpenNode, ()>) -> Result<()> {
        let result = self.node(Some(p.file_context), p.file_name).map(|node| {
            *p.file_context = Some(node);
        });
        self.report("open_file", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("desired_access".into(), p.desired_access.into());
        })
    }

    fn on_cleanup_file(&self, p: &mut CleanupFileParams<'_, OpenNode, ()>) -> Result<()> {
        self.report("cleanup_file", Ok(()), name(p.file_name))
    }

    fn on_close_file(&self, p: &mut CloseFileParams<'_, OpenNode, ()>) -> Result<()> {
        self.report("close_file", Ok(()), name(p.file_name))
    }

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, OpenNode>) -> Result<()> {
        let node = match p.file_context.as_deref().and_then(|o| o.clone()) {
            Some(node) => Ok(Some(node)),
            None => self.tree.find(Path::new(p.file_name)),
        };
        let result = node.map(|node| {
            if let Some(node) = node {
                fill_info(&node.lock(), node.ino, &mut p.info);
                p.file_exists = true;
            }
        });
        self.report("get_file_info", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("file_exists".into(), p.file_exists.into());
        })
    }

    fn on_enumerate_directory(
        &self,
        p: &mut EnumerateDirectoryParams<'_, OpenNode, (), Listing>,
    ) -> Result<()> {
        let result = self.next_entry(p);
        self.report("enumerate_directory", result, |m| {
            m.insert("directory_name".into(), p.directory_name.into());
            m.insert("file_found".into(), p.file_found.into());
            m.insert("file_name".into(), p.file_name.as_str().into());
        })
    }

    fn on_close_directory_enumeration(
        &self,
        p: &mut CloseDirectoryEnumerationParams<'_, OpenNode, Listing>,
    ) -> Result<()> {
        self.report("close_directory_enumeration", Ok(()), |m| {
            m.insert("directory_name".into(), p.directory_name.into());
        })
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, OpenNode, ()>) -> Result<()> {
        let result = self
            .node(Some(p.file_context), p.file_name)
            .and_then(|node| {
                let mut state = node.lock();
                let read = state.data()?.read(p.position, p.buffer);
                state.meta.atime = SystemTime::now();
                Ok(read)
            });
        let result = result.map(|read| p.bytes_read = read);
        self.report("read_file", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("position".into(), p.position.into());
            m.insert("bytes_to_read".into(), p.buffer.len().into());
            m.insert("bytes_read".into(), p.bytes_read.into());
        })
    }

    fn on_write_file(&self, p: &mut WriteFileParams<'_, OpenNode, ()>) -> Result<()> {
        let result = self
            .node(Some(p.file_context), p.file_name)
            .and_then(|node| {
                let mut state = node.lock();
                state.data()?.write(p.position, p.buffer)?;
                state.touch_mtime();
                Ok(())
            });
        let result = result.map(|()| p.bytes_written = p.buffer.len());
        self.report("write_file", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("position".into(), p.position.into());
            m.insert("bytes_to_write".into(), p.buffer.len().into());
            m.insert("bytes_written".into(), p.bytes_written.into());
        })
    }

    fn on_set_file_size(&self, p: &mut SetFileSizeParams<'_, OpenNode>) -> Result<()> {
        let result = self
            .node(p.file_context.as_deref(), p.file_name)
            .and_then(|node| {
                let mut state = node.lock();
                state.data()?.set_size(p.size);
                state.touch_mtime();
                Ok(())
            });
        self.report("set_file_size", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("size".into(), p.size.into());
        })
    }

    fn on_set_allocation_size(&self, p: &mut SetAllocationSizeParams<'_, OpenNode>) -> Result<()> {
        // Memory is taken when written; reserving only grows the file, as fallocate(2) says.
        let result = self
            .node(p.file_context.as_deref(), p.file_name)
            .and_then(|node| {
                let mut state = node.lock();
                let data = state.data()?;
                if p.allocation_size > data.size() {
                    data.set_size(p.allocation_size);
                    state.touch_mtime();
                }
                Ok(())
            });
        self.report("set_allocation_size", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("allocation_size".into(), p.allocation_size.into());
        })
    }

    fn on_set_file_attributes(&self, p: &mut SetFileAttributesParams<'_, OpenNode>) -> Result<()> {
        let result = self.set_attributes(p);
        self.report("set_file_attributes", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            if let Some(mode) = p.mode {
                m.insert("mode".into(), mode.into());
            }
        })
    }

    fn on_set_file_security(&self, p: &mut SetFileSecurityParams<'_, OpenNode>) -> Result<()> {
        let result = self
            .node(p.file_context.as_deref(), p.file_name)
            .map(|node| {
                let mut state = node.lock();
                if let Some(uid) = p.owner {
                    state.meta.uid = uid;
                }
                if let Some(gid) = p.group {
                    state.meta.gid = gid;
                }
                state.touch_ctime();
            });
        self.report("set_file_security", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            if let Some(uid) = p.owner {
                m.insert("owner".into(), uid.into());
            }
            if let Some(gid) = p.group {
                m.insert("group".into(), gid.into());
            }
        })
    }

    fn on_rename_or_move_file(&self, p: &mut RenameOrMoveFileParams<'_, OpenNode>) -> Result<()> {
        let result = self.tree.rename(
            Path::new(p.file_name),
            Path::new(p.new_file_name),
            p.replace_existing,
        );
        self.report("rename_or_move_file", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("new_file_name".into(), p.new_file_name.into());
            m.insert("replace_existing".into(), p.replace_existing.into());
        })
    }

    fn on_delete_file(&self, p: &mut DeleteFileParams<'_, OpenNode>) -> Result<()> {
        let result = self.tree.remove(Path::new(p.file_name));
        self.report("delete_file", result, name(p.file_name))
    }

    fn on_is_directory_empty(&self, p: &mut IsDirectoryEmptyParams<'_>) -> Result<()> {
        let result = self
            .tree
            .lookup(Path::new(p.directory_name))
            .and_then(|dir| match &dir.lock().content {
                Content::Directory(entries) => {
                    p.is_empty = Some(entries.is_empty());
                    Ok(())
                }
                _ => Err(not_directory(Path::new(p.directory_name))),
            });
        self.report("is_directory_empty", result, |m| {
            m.insert("directory_name".into(), p.directory_name.into());
            m.insert("is_empty".into(), p.is_empty.into());
        })
    }

    fn on_create_hard_link(&self, p: &mut CreateHardLinkParams<'_>) -> Result<()> {
        let result = self
            .tree
            .link(Path::new(p.file_name), Path::new(p.link_name))
            .map(drop);
        self.report("create_hard_link", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("link_name".into(), p.link_name.into());
        })
    }

    fn on_create_symbolic_link(&self, p: &mut CreateSymbolicLinkParams<'_>) -> Result<()> {
        let result = (|| {
            let uid = fsgate_vfs::get_originator_user_id()?;
            let gid = fsgate_vfs::get_originator_group_id()?;
            let target = NewNode::Symlink(PathBuf::from(p.target));
            self.tree
                .create(Path::new(p.file_name), target, 0o777, uid, gid)
                .map(drop)
        })();
        self.report("create_symbolic_link", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("target".into(), p.target.into());
        })
    }

    fn on_get_symbolic_link_target(&self, p: &mut GetSymbolicLinkTargetParams<'_>) -> Result<()> {
        let result =
            self.tree
                .lookup(Path::new(p.file_name))
                .and_then(|node| match &node.lock().content {
                    Content::Symlink(target) => {
                        p.target = target.to_string_lossy().into_owned();
                        Ok(())
                    }
                    _ => Err(Error::from_errno(
                        libc::EINVAL,
                        format!("{}: not a symbolic link", p.file_name),
                    )),
                });
        self.report("get_symbolic_link_target", result, name(p.file_name))
    }

    fn on_get_ea(&self, p: &mut GetEaParams<'_>) -> Result<()> {
        let result = self.tree.lookup(Path::new(p.file_name)).and_then(|node| {
            let state = node.lock();
            let value = state
                .xattrs
                .get(OsStr::new(p.name))
                .ok_or_else(|| no_attribute(p.file_name, p.name))?;
            p.value = value.clone();
            Ok(())
        });
        self.report("get_ea", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("name".into(), p.name.into());
        })
    }

    fn on_set_ea(&self, p: &mut SetEaParams<'_>) -> Result<()> {
        let result = self.set_ea(p);
        self.report("set_ea", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("name".into(), p.name.into());
        })
    }

    fn on_list_eas(&self, p: &mut ListEasParams<'_>) -> Result<()> {
        let result = self.tree.lookup(Path::new(p.file_name)).map(|node| {
            p.names = node
                .lock()
                .xattrs
                .keys()
                .map(|k| k.to_string_lossy().into_owned())
                .collect();
        });
        self.report("list_eas", result, name(p.file_name))
    }

    fn on_remove_ea(&self, p: &mut RemoveEaParams<'_>) -> Result<()> {
        let result = self.tree.lookup(Path::new(p.file_name)).and_then(|node| {
            let mut state = node.lock();
            state
                .xattrs
                .remove(OsStr::new(p.name))
                .ok_or_else(|| no_attribute(p.file_name, p.name))?;
            state.touch_ctime();
            Ok(())
        });
        self.report("remove_ea", result, |m| {
            m.insert("file_name".into(), p.file_name.into());
            m.insert("name".into(), p.name.into());
        })
    }

    fn on_error(&self, error_code: u32, description: &str) {
        tracing::error!("memory drive: error {error_code}: {description}");
        if let Some(printer) = self.log {
            let mut m = Map::new();
            m.insert("error_code".into(), error_code.into());
            m.insert("description".into(), description.into());
            printer.event("error", m);
        }
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
    fn sparse_data_write_spans_chunks_and_shrink_zeroes_the_tail() {
        let usage = Usage::default();
        let mut data = file(&usage);
        let bytes: Vec<u8> = (0..3 * CHUNK as usize).map(|i| i as u8).collect();
        data.write(10, &bytes).unwrap();
        let mut back = vec![0u8; bytes.len()];
        assert_eq!(data.read(10, &mut back), bytes.len());
        assert_eq!(back, bytes);
        data.set_size(CHUNK + 5);
        assert_eq!(usage.bytes(), 2 * CHUNK);
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
        let tree = Tree::new(0o755, 0, 0);
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
        let tree = Tree::new(0o755, 0, 0);
        let p = Path::new;
        tree.create(p("/g"), NewNode::Directory, 0o2775, 0, 50)
            .unwrap();
        let file = tree.create(p("/g/f"), NewNode::File, 0o644, 7, 7).unwrap();
        let dir = tree
            .create(p("/g/d"), NewNode::Directory, 0o755, 7, 7)
            .unwrap();
        let (file, dir) = (file.lock().meta, dir.lock().meta);
        assert_eq!((file.gid, file.mode), (50, 0o644));
        assert_eq!((dir.gid, dir.mode), (50, 0o2755));
    }

    #[test]
    fn hard_links_count_names_and_keep_the_node() {
        let tree = Tree::new(0o755, 0, 0);
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
