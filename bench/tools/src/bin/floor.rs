//! The floor under every FUSE drive: a namespace-only filesystem written straight on fuser,
//! with no events, no dispatcher and no paths, that answers each request from one in-memory
//! table under one lock. It asks the kernel for the same things fsgate's drives do
//! (`default_permissions`, 10 s entry and attribute timeouts, no `FLUSH`, files opened by
//! the kernel alone, listings and pages kept across opens), so the kernel sends it exactly
//! the requests it sends the sample drives.
//!
//! `bench/vfs-mirror/run.sh` runs `nsbench` (beside this file) on it beside the memory drive and
//! ext4: whatever rate this filesystem cannot beat is the cost of FUSE's round trips on the
//! machine, not of fsgate. Files and symlinks hold their bytes in one `Vec` each, behind the
//! kernel's writeback cache as on the memory drive, so `bench/apps/run.sh` runs SQLite, git
//! and tar on it too: what this filesystem cannot reach there, no drive asking the kernel
//! for the same things can. Every extended attribute is missing (`ENODATA`), as on a drive
//! where nobody set one; hard links and special files are refused.
//!
//! Usage (as root): `floor MOUNTPOINT [--io-uring] [--idle]`. `--io-uring` serves over
//! FUSE-over-io_uring with 2 threads per CPU, `--idle` also puts those threads at
//! `SCHED_IDLE` (fsgate's `IoUringThreadsPerQueue=2` and `IoUringIdlePriority=True`).
//! Prints `ready: MOUNTPOINT` on stderr once mounted; unmounts (lazily) on SIGTERM or SIGINT.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite,
    ReplyXattr, Request, SessionACL, TimeOrNow, WriteFlags,
};

const TTL: Duration = Duration::from_secs(10);

struct Node {
    attr: FileAttr,
    /// Names in a directory, in listing order.
    children: BTreeMap<OsString, u64>,
    /// A file's bytes, or a symlink's target.
    data: Vec<u8>,
}

struct Table {
    nodes: HashMap<u64, Node>,
    next: u64,
}

struct Floor(Mutex<Table>);

impl Floor {
    fn new() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(1, node(1, FileType::Directory, 0o755, 0, 0));
        Self(Mutex::new(Table { nodes, next: 2 }))
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `name` to `parent` as a new node; the new node's attributes.
    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        kind: FileType,
        mode: u32,
        data: Vec<u8>,
    ) -> Result<FileAttr, Errno> {
        let mut t = self.table();
        let ino = t.next;
        let dir = t.nodes.get_mut(&parent.0).ok_or(Errno::ENOENT)?;
        if dir.children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        dir.children.insert(name.to_owned(), ino);
        touch(&mut dir.attr);
        let mut n = node(ino, kind, mode & 0o7777, req.uid(), req.gid());
        n.attr.size = data.len() as u64;
        n.data = data;
        let attr = n.attr;
        t.nodes.insert(ino, n);
        t.next += 1;
        Ok(attr)
    }

    /// Removes `name` from `parent` (a directory only when `dir`, and only when empty).
    fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let mut t = self.table();
        let ino = *t
            .nodes
            .get(&parent.0)
            .and_then(|d| d.children.get(name))
            .ok_or(Errno::ENOENT)?;
        let victim = t.nodes.get(&ino).ok_or(Errno::ENOENT)?;
        match (victim.attr.kind == FileType::Directory, dir) {
            (true, false) => return Err(Errno::EISDIR),
            (false, true) => return Err(Errno::ENOTDIR),
            (true, true) if !victim.children.is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        t.nodes.remove(&ino);
        if let Some(d) = t.nodes.get_mut(&parent.0) {
            d.children.remove(name);
            touch(&mut d.attr);
        }
        Ok(())
    }
}

fn node(ino: u64, kind: FileType, perm: u32, uid: u32, gid: u32) -> Node {
    let now = SystemTime::now();
    Node {
        attr: FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind,
            perm: perm as u16,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid,
            gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        },
        children: BTreeMap::new(),
        data: Vec::new(),
    }
}

fn touch(attr: &mut FileAttr) {
    let now = SystemTime::now();
    attr.mtime = now;
    attr.ctime = now;
}

impl Filesystem for Floor {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // The same capabilities and sizes the memory drive asks for, where they change
        // which requests the kernel sends.
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        for flag in [
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_ASYNC_DIO,
            InitFlags::FUSE_AUTO_INVAL_DATA,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_WRITEBACK_CACHE,
            InitFlags::FUSE_HANDLE_KILLPRIV_V2,
        ] {
            let _ = config.add_capabilities(flag);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let t = self.table();
        match t
            .nodes
            .get(&parent.0)
            .and_then(|d| d.children.get(name))
            .and_then(|ino| t.nodes.get(ino))
        {
            Some(n) => reply.entry(&TTL, &n.attr, Generation(0)),
            // A negative entry, as the sample drives give with their metadata cache: the
            // kernel remembers that the name does not exist.
            None => reply.entry(
                &TTL,
                &node(0, FileType::RegularFile, 0, 0, 0).attr,
                Generation(0),
            ),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.table().nodes.get(&ino.0) {
            Some(n) => reply.attr(&TTL, &n.attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        _kill_suidgid: bool,
        reply: ReplyAttr,
    ) {
        let mut t = self.table();
        let Some(n) = t.nodes.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let at = |t: TimeOrNow| match t {
            TimeOrNow::SpecificTime(t) => t,
            TimeOrNow::Now => SystemTime::now(),
        };
        if let Some(m) = mode {
            n.attr.perm = (m & 0o7777) as u16;
        }
        if let Some(size) = size {
            let Ok(len) = usize::try_from(size) else {
                return reply.error(Errno::EFBIG);
            };
            n.data.resize(len, 0);
            n.attr.size = size;
        }
        n.attr.uid = uid.unwrap_or(n.attr.uid);
        n.attr.gid = gid.unwrap_or(n.attr.gid);
        n.attr.atime = atime.map_or(n.attr.atime, at);
        n.attr.mtime = mtime.map_or(n.attr.mtime, at);
        n.attr.ctime = SystemTime::now();
        reply.attr(&TTL, &n.attr);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        match self.make(req, parent, name, FileType::Directory, mode, Vec::new()) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let mut t = self.table();
        let Some(ino) = t.nodes.get_mut(&parent.0).and_then(|d| {
            let ino = d.children.remove(name)?;
            touch(&mut d.attr);
            Some(ino)
        }) else {
            return reply.error(Errno::ENOENT);
        };
        let replaced = t.nodes.get_mut(&newparent.0).and_then(|d| {
            touch(&mut d.attr);
            d.children.insert(newname.to_owned(), ino)
        });
        if let Some(old) = replaced {
            t.nodes.remove(&old);
        }
        reply.ok();
    }

    /// Answered `ENOSYS`, so the kernel opens files without asking (fsgate's
    /// `KernelOpensFiles`, the sample drives' default).
    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS);
    }

    /// Answered `ENOSYS` once, so the kernel sends no more (fsgate's
    /// `FireCleanupEvents=False`, the sample drives' default).
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(
            FileHandle(0),
            FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let t = self.table();
        let Some(dir) = t.nodes.get(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (name, child)) in dir.children.iter().enumerate().skip(skip) {
            let kind = t
                .nodes
                .get(child)
                .map_or(FileType::RegularFile, |n| n.attr.kind);
            if reply.add(INodeNo(*child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.make(req, parent, name, FileType::RegularFile, mode, Vec::new()) {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let target = target.as_os_str().as_bytes().to_vec();
        match self.make(req, parent, link_name, FileType::Symlink, 0o777, target) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.table().nodes.get(&ino.0) {
            Some(n) if n.attr.kind == FileType::Symlink => reply.data(&n.data),
            Some(_) => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let t = self.table();
        let Some(n) = t.nodes.get(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let start = usize::try_from(offset).map_or(n.data.len(), |o| o.min(n.data.len()));
        let end = start.saturating_add(size as usize).min(n.data.len());
        reply.data(&n.data[start..end]);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut t = self.table();
        let Some(n) = t.nodes.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let Some(end) = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(data.len()))
        else {
            return reply.error(Errno::EFBIG);
        };
        if n.data.len() < end {
            n.data.resize(end, 0);
            n.attr.size = end as u64;
        }
        n.data[end - data.len()..end].copy_from_slice(data);
        touch(&mut n.attr);
        reply.written(data.len() as u32);
    }

    /// Nothing is stored: every attribute is missing.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENODATA);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }
}

/// Blocks SIGTERM and SIGINT in this thread (and the threads it starts), so `wait_for_stop`
/// can take them.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: the set is initialised by sigemptyset before use; the calls only touch it
    // and this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_stop(set: &libc::sigset_t) {
    let mut signal = 0;
    // SAFETY: `set` is a valid signal set and `signal` a valid out pointer.
    unsafe { libc::sigwait(set, &mut signal) };
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(mountpoint) = args.next() else {
        eprintln!("usage: floor MOUNTPOINT [--io-uring] [--idle]");
        std::process::exit(2);
    };
    let mut config = Config::default();
    for flag in args {
        match flag.as_str() {
            "--io-uring" => config.io_uring_threads_per_queue = 2,
            "--idle" => config.io_uring_idle_priority = true,
            other => {
                eprintln!("floor: unknown argument {other:?} (expected --io-uring or --idle)");
                std::process::exit(2);
            }
        }
    }
    config.mount_options = vec![
        MountOption::FSName("floor".into()),
        MountOption::DefaultPermissions,
        MountOption::AutoUnmount,
    ];
    config.acl = SessionACL::All;
    config.n_threads = Some(4);
    config.clone_fd = true;

    let signals = block_stop_signals();
    let session = match fuser::Session::new(Floor::new(), &mountpoint, &config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("floor: mounting on {mountpoint}: {e}");
            std::process::exit(1);
        }
    };
    let uring = matches!(session.transport(), fuser::Transport::IoUring { .. });
    let session = match session.spawn() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("floor: starting the reader threads: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "ready: {mountpoint}{}",
        if uring { " over io_uring" } else { "" }
    );
    wait_for_stop(&signals);
    // Unmounting ends the connection, and with it the reader threads.
    let Ok(path) = std::ffi::CString::new(mountpoint.as_str()) else {
        std::process::exit(1);
    };
    // SAFETY: `path` is a valid NUL-terminated string.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
        let e = std::io::Error::last_os_error();
        eprintln!("floor: unmounting {mountpoint}: {e}");
        std::process::exit(1);
    }
    if let Err(e) = session.join() {
        eprintln!("floor: the session ended with: {e}");
        std::process::exit(1);
    }
}
