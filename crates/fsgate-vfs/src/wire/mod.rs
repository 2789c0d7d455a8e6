//! The FUSE wire: fuser's inode-based requests in, the engine's path-based operations
//! run, fuser's replies out. No state of its own beyond the engine and the dispatcher.
//!
//! Each request is resolved to a path on the reader thread (a table lookup), then submitted
//! to the dispatcher under a [`SerialKey`] derived from
//! that path, so one file's events run in order and different files run in parallel. The
//! job calls the engine and returns what the reply needs; the completion sends the reply.
//! A job that times out has its reply sent with `EIO` by the dispatcher's watchdog, and
//! whatever it returns later — new contexts included — is dropped.
//!
//! Types cross here and nowhere else: `INodeNo` ↔ [`Ino`], `FileHandle` ↔ [`Fh`],
//! [`FileInfo`] → `FileAttr`, [`Caching`] → `FopenFlags`, [`Error`] → `Errno`,
//! `TimeOrNow` → `SystemTime`, `Request` → [`Originator`].

mod ops;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use fsgate_core::dispatch::{Dispatcher, Hold, Outcome, SerialKey, Task};
use fsgate_core::{Error, Originator, Result};
use fuser::{
    BackingId, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, Notifier,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
};

use crate::engine::{
    kernel_originator, serial_key, Backing, Caching, Engine, Fh, Handle, Ino, Opened,
};
use crate::events::Events;
use crate::params::{FileInfo, FileKind};

impl From<INodeNo> for Ino {
    fn from(ino: INodeNo) -> Self {
        Ino(ino.0)
    }
}

impl From<Ino> for INodeNo {
    fn from(ino: Ino) -> Self {
        INodeNo(ino.0)
    }
}

impl From<FileHandle> for Fh {
    fn from(fh: FileHandle) -> Self {
        Fh(fh.0)
    }
}

impl From<Fh> for FileHandle {
    fn from(fh: Fh) -> Self {
        FileHandle(fh.0)
    }
}

/// The thread whose request this is (FUSE names the thread; its process is looked up only
/// when an event asks, see [`Originator::pid`]).
fn originator(req: &Request) -> Originator {
    Originator::of_thread(req.pid(), req.uid(), req.gid())
}

fn errno(e: &Error) -> Errno {
    Errno::from_i32(e.errno())
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
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

/// The kernel's attributes of `ino` as `info` describes it.
fn attr(ino: Ino, info: &FileInfo) -> FileAttr {
    let allocated = info.allocation_size.unwrap_or(info.size);
    FileAttr {
        ino: ino.into(),
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

/// The open flags of a registered handle, and its backing file for passthrough.
fn fopen(opened: &Opened) -> (FopenFlags, Option<&BackingId>) {
    let (mut flags, backing) = match &opened.caching {
        Caching::PageCache => (FopenFlags::FOPEN_KEEP_CACHE, None),
        Caching::Direct => (
            FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES,
            None,
        ),
        Caching::CachedListing => (
            FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            None,
        ),
        Caching::Uncached => (FopenFlags::empty(), None),
        Caching::Passthrough(b) => (FopenFlags::empty(), b.downcast_ref::<BackingId>()),
    };
    if opened.no_flush {
        flags |= FopenFlags::FOPEN_NOFLUSH;
    }
    (flags, backing)
}

/// A backing file the kernel registered for a routed handle, in the engine's opaque form.
fn backing(registered: std::io::Result<BackingId>) -> std::io::Result<Backing> {
    registered.map(|b| Arc::new(b) as Backing)
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

fn reply_entry(reply: ReplyEntry, entry: Result<(Ino, std::time::Duration)>, info: &FileInfo) {
    match entry {
        Ok((ino, ttl)) => reply.entry(&ttl, &attr(ino, info), Generation(0)),
        Err(e) => reply.error(errno(&e)),
    }
}

fn reply_opened(reply: ReplyOpen, opened: &Opened) {
    match fopen(opened) {
        (flags, Some(b)) => reply.opened_passthrough(opened.fh.into(), flags, b),
        (flags, None) => reply.opened(opened.fh.into(), flags),
    }
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

/// The session's notifier, known once the session exists (after the wire was handed to it).
pub(crate) type NotifierSlot = Arc<OnceLock<Notifier>>;

/// Before an open that bypasses the kernel's caches is answered, drops what the kernel
/// cached of the inode's attributes (`use_direct_io`: from now on they are answered with a
/// zero timeout, so the drive can answer each caller differently). Attributes only (offset
/// -1): the kernel takes no lock an open holds for that, so it is sent at once.
fn drop_attributes(notifier: &NotifierSlot, ino: Ino, opened: &Opened) {
    if opened.drop_attributes {
        forget_attributes(notifier, ino);
    }
}

/// Drops what the kernel cached of `ino`'s attributes. Attributes only (offset -1): the
/// kernel takes no lock for that that a request being answered could hold, so it is sent at
/// once, even from a handler.
pub(crate) fn forget_attributes(notifier: &NotifierSlot, ino: Ino) {
    let Some(n) = notifier.get() else {
        return;
    };
    match n.inval_inode(ino.into(), -1, 0) {
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
            tracing::warn!("dropping the cached attributes of inode {}: {e}", ino.0)
        }
        _ => {}
    }
}

/// The `fuser::Filesystem` over a drive's engine.
pub(crate) struct FuseFs<E: Events> {
    engine: Arc<Engine<E>>,
    dispatcher: Arc<Dispatcher>,
    notifier: NotifierSlot,
}

impl<E: Events> FuseFs<E> {
    /// The wire for `engine`, running its jobs on `dispatcher`; it sends invalidations
    /// through `notifier` once the session filled it.
    pub(crate) fn new(
        engine: Arc<Engine<E>>,
        dispatcher: Arc<Dispatcher>,
        notifier: NotifierSlot,
    ) -> Self {
        Self {
            engine,
            dispatcher,
            notifier,
        }
    }

    /// Runs `job` under `key`, a path's [`serial_key`] — on this reader thread when the
    /// file is idle and there is no timeout, else on a worker — and answers with `done`, or
    /// with the error: `EIO` for a timeout, a panic or a shutdown.
    fn submit<T, R, J, D>(&self, req: &Request, key: SerialKey, reply: R, job: J, done: D)
    where
        T: Send + 'static,
        R: Fail,
        J: FnOnce(&Engine<E>, Originator) -> Result<T> + Send + 'static,
        D: FnOnce(&Engine<E>, T, R) + Send + 'static,
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
        J: FnOnce(&Engine<E>, Originator) -> Result<T> + Send + 'static,
        D: FnOnce(&Engine<E>, T, R) + Send + 'static,
    {
        let who = originator(req);
        let for_job = Arc::clone(&self.engine);
        let for_reply = Arc::clone(&self.engine);
        let job = move || job(&for_job, who);
        let complete = move |outcome| match outcome {
            Outcome::Done(Ok(v)) => done(&for_reply, v, reply),
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
        self.dispatcher.dispatch(
            Task::new(job)
                .key(key)
                .hold(hold)
                .originator(who)
                .run_here_if_idle(fuser::thread_may_block())
                .then(complete),
        );
    }

    /// Resolves a path on the reader thread, answering an error at once.
    fn resolve<R: Fail>(&self, r: Result<PathBuf>, reply: R) -> Option<(PathBuf, R)> {
        match r {
            Ok(p) => Some((p, reply)),
            Err(e) => {
                reply.fail(errno(&e));
                None
            }
        }
    }

    /// `MKDIR`, `MKNOD`: an object whose contexts live for its `on_create_file` only.
    #[allow(clippy::too_many_arguments)]
    fn make_node(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        kind: FileKind,
        rdev: u32,
        mode: u32,
        reply: ReplyEntry,
    ) {
        let Some((path, reply)) = self.resolve(self.engine.child(parent.into(), name), reply)
        else {
            return;
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| Ok((engine.make_node(&path, kind, rdev, mode, who)?, path)),
            move |engine, (info, path), reply| {
                reply_entry(reply, engine.entry(&path, &info), &info)
            },
        );
    }

    /// The handle a request names, with the name events use for its file. Handle 0 of a
    /// file is a descriptor the kernel opened by itself (`KernelOpensFiles`): the file's
    /// implicit handle serves it. So does a `CREATE`'s handle that was evicted while its
    /// descriptor stayed open (see [`Engine::served_implicitly`]).
    fn handle_of<R: Fail>(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        reply: R,
    ) -> Option<(Handle<E>, PathBuf, R)> {
        // The table is looked in first: the lost-handle check costs locks a read or write
        // of a handle the engine has should not pay.
        let found = if fh.0 == 0 && self.engine.kernel_opens() {
            self.implicit_handle(req, ino.into())
        } else {
            self.engine.handle(fh.into()).or_else(|e| {
                if self.engine.served_implicitly(ino.into(), fh.into()) {
                    self.implicit_handle(req, ino.into())
                } else {
                    Err(e)
                }
            })
        };
        match found {
            Ok(h) => {
                let path = self.engine.handle_path(&h);
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
    fn implicit_handle(&self, req: &Request, ino: Ino) -> Result<Handle<E>> {
        if let Some(fh) = self.engine.implicit_of(ino) {
            return self.engine.handle(fh);
        }
        self.trim_implicit();
        let who = originator(req);
        let engine = Arc::clone(&self.engine);
        let key = serial_key(&self.engine.path_of(ino)?);
        let task = Task::new(move || engine.implicit_handle(ino, who))
            .key(key)
            .originator(who);
        match self.dispatcher.call(task) {
            Outcome::Done(r) => r,
            Outcome::TimedOut => Err(Error::from_errno(libc::EIO, "on_open_file timed out")),
            Outcome::Panicked(m) => Err(Error::from_errno(libc::EIO, m)),
            Outcome::Cancelled => Err(Error::from_errno(libc::EIO, "the drive is stopping")),
        }
    }

    /// Closes the implicit handles past the limit, each as an event of its file.
    fn trim_implicit(&self) {
        for (path, ino, fh) in self.engine.implicit_surplus() {
            let engine = Arc::clone(&self.engine);
            self.dispatcher.dispatch(
                Task::new(move || engine.evict_implicit(ino, fh, kernel_originator()))
                    .key(serial_key(&path))
                    .then(|_| {}),
            );
        }
    }

    /// `OPEN`, `OPENDIR`.
    fn open_handle(
        &self,
        req: &Request,
        ino: INodeNo,
        flags: i32,
        directory: bool,
        reply: ReplyOpen,
    ) {
        let Some((path, reply)) = self.resolve(self.engine.path_of(ino.into()), reply) else {
            return;
        };
        let ino = Ino::from(ino);
        let notifier = Arc::clone(&self.notifier);
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| Ok((engine.open(ino, &path, flags, directory, who)?, path)),
            move |engine, (handle, path), reply| {
                let opened =
                    engine.register(ino, &path, handle, |f| backing(reply.open_backing(f)));
                drop_attributes(&notifier, ino, &opened);
                reply_opened(reply, &opened);
            },
        );
    }

    /// `RELEASE`, `RELEASEDIR`.
    fn release_handle(&self, req: &Request, ino: INodeNo, fh: FileHandle, reply: ReplyEmpty) {
        let (ino, fh) = (Ino::from(ino), Fh::from(fh));
        let path = self
            .engine
            .handle(fh)
            .map(|h| self.engine.handle_path(&h))
            .or_else(|_| self.engine.path_of(ino))
            .unwrap_or_else(|_| "/".into());
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| {
                if let Err(e) = engine.release(ino, fh, who) {
                    tracing::debug!("on_close_file: {e}");
                }
                Ok(())
            },
            |_, (), reply| reply.ok(),
        );
    }

    /// `FSYNC`, `FSYNCDIR`.
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
                return reply.error(io_errno(&e));
            }
        }
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.sync(&h, &path, data_only, who),
            |_, (), reply| reply.ok(),
        );
    }

    /// `UNLINK`, `RMDIR`.
    fn remove(&self, req: &Request, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let Some((path, reply)) = self.resolve(self.engine.child(parent.into(), name), reply)
        else {
            return;
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.remove(&path, dir, who).map(|()| path),
            move |engine, path, reply| {
                engine.removed(&path);
                reply.ok();
            },
        );
    }
}
