//! `fuser::Filesystem` for [`FuseFs`]: each request decoded, its engine operation
//! submitted, its reply encoded.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use fsgate_core::dispatch::{Hold, Task};
use fuser::{
    CopyFileRangeFlags, Errno, FileHandle, Filesystem, Generation, INodeNo, InitFlags, IoctlFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::*;
use crate::engine::{
    read_at_most, serial_key, write_takes_privileges, AttributesChanged, Changes, Read, WriteMode,
    NAME_MAX,
};
use crate::options::FileCache;

impl<E: Events> Filesystem for FuseFs<E> {
    /// Negotiates the connection: 1 MiB requests, a large readahead, many background
    /// requests, parallel lookups in one directory, cached pages dropped when a refreshed
    /// size or modification time differs (`FUSE_AUTO_INVAL_DATA`), the writeback cache for
    /// `FileCache=System` without write-through, cached symlinks with the metadata cache,
    /// passthrough when opens reach the drive and the server may register backing files
    /// (root), and `FUSE_HANDLE_KILLPRIV_V2` (the engine clears privileges).
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let o = &self.engine.options;
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
        // Routes are ignored while the kernel opens files by itself, so passthrough is
        // asked for only when opens reach the drive.
        if !self.engine.kernel_opens()
            && self.engine.owner.0 == 0
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok()
        {
            self.engine.passthrough.store(true, Ordering::Relaxed);
        }
        // The engine clears privileges itself (see `engine::privileges`); a writable open
        // of a backing file with privileges to lose gets no passthrough, so that its writes
        // reach the engine.
        if config
            .add_capabilities(InitFlags::FUSE_HANDLE_KILLPRIV_V2)
            .is_ok()
        {
            self.engine.kills_privileges.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some((path, reply)) = self.resolve(self.engine.child(parent.into(), name), reply)
        else {
            return;
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| Ok((engine.lookup(&path, who)?, path)),
            move |engine, (info, path), reply| match info {
                Some(info) => reply_entry(reply, engine.entry(&path, &info), &info),
                // A negative entry: inode 0 with a timeout makes the kernel remember that
                // the name does not exist.
                None => match engine.negative_ttl(&path) {
                    Some(ttl) => {
                        let attr = attr(Ino(0), &engine.default_info(FileKind::File));
                        reply.entry(&ttl, &attr, Generation(0));
                    }
                    None => reply.error(Errno::ENOENT),
                },
            },
        );
    }

    /// Once the kernel no longer knows an inode, its implicit handle (`KernelOpensFiles`)
    /// closes: no descriptor of it is left.
    fn forget(&self, req: &Request, ino: INodeNo, nlookup: u64) {
        let who = super::originator(req);
        let Some((fh, path)) = self.engine.forget(ino.into(), nlookup) else {
            return;
        };
        let engine = Arc::clone(&self.engine);
        let close = move || {
            if let Err(e) = engine.close(fh, who) {
                tracing::debug!("on_close_file: {e}");
            }
        };
        self.dispatcher.dispatch(
            Task::new(close)
                .key(serial_key(&path))
                .run_here_if_idle(fuser::thread_may_block())
                .then(|_| {}),
        );
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ino = Ino::from(ino);
        let Some((path, reply)) = self.resolve(self.engine.path_of(ino), reply) else {
            return;
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.getattr(ino, &path, who),
            move |engine, info, reply| reply.attr(&engine.ttl(ino), &attr(ino, &info)),
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
        kill_suidgid: bool,
        reply: ReplyAttr,
    ) {
        let ino = Ino::from(ino);
        let Some((path, reply)) = self.resolve(self.engine.path_of(ino), reply) else {
            return;
        };
        let changes = Changes {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time),
            mtime: mtime.map(time),
            ctime,
            crtime,
            kill_privileges: kill_suidgid,
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.setattr(ino, &path, changes, who),
            move |engine, info, reply| reply.attr(&engine.ttl(ino), &attr(ino, &info)),
        );
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some((path, reply)) = self.resolve(self.engine.path_of(ino.into()), reply) else {
            return;
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.readlink(&path, who),
            |_, target, reply| reply.data(target.as_os_str().as_bytes()),
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
        self.make_node(req, parent, name, kind, rdev, mode & !umask & 0o7777, reply);
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
        let mode = mode & !umask & 0o7777;
        self.make_node(req, parent, name, FileKind::Directory, 0, mode, reply);
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
        let path = match self.engine.child(parent.into(), link_name) {
            Ok(p) => p,
            Err(e) => return reply.error(errno(&e)),
        };
        let target = target.to_path_buf();
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| Ok((engine.symlink(&path, &target, who)?, path)),
            move |engine, (info, path), reply| {
                reply_entry(reply, engine.entry(&path, &info), &info)
            },
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
            .engine
            .child(parent.into(), name)
            .and_then(|from| Ok((from, self.engine.child(newparent.into(), newname)?)));
        let (from, to) = match resolved {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            return self.submit(
                req,
                serial_key(&from),
                reply,
                move |engine, who| engine.exchange(&from, &to, who).map(|()| (from, to)),
                |engine, (from, to), reply| {
                    engine.exchanged(&from, &to);
                    reply.ok();
                },
            );
        }
        let replace_existing = !flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.submit(
            req,
            serial_key(&from),
            reply,
            move |engine, who| {
                engine.rename(&from, &to, replace_existing, who)?;
                Ok((from, to))
            },
            move |engine, (from, to), reply| {
                engine.renamed(&from, &to);
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
        let ino = Ino::from(ino);
        let resolved = self
            .engine
            .path_of(ino)
            .and_then(|from| Ok((from, self.engine.child(newparent.into(), newname)?)));
        let (from, to) = match resolved {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        if !self.engine.options.use_hard_links {
            return reply.error(Errno::EPERM);
        }
        self.submit(
            req,
            serial_key(&from),
            reply,
            move |engine, who| Ok((engine.link(&from, &to, who)?, to)),
            move |engine, (info, to), reply| {
                reply_entry(reply, engine.linked(ino, &to, &info), &info)
            },
        );
    }

    /// With `KernelOpensFiles`, answered `ENOSYS`: the kernel then opens this and every
    /// later file by itself, without asking (see [`Engine::implicit_handle`]).
    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if self.engine.kernel_opens() {
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
            let mut buffer = self.engine.buffers.take(size as usize);
            match read_at_most(file, &mut buffer, offset) {
                Ok(n) => reply.data(&buffer[..n]),
                Err(e) => reply.error(io_errno(&e)),
            }
            return self.engine.buffers.give(buffer);
        }
        let hold = if self.engine.options.serialize_access {
            Hold::Exclusive
        } else {
            Hold::Shared(offset..offset.saturating_add(u64::from(size)))
        };
        // Over io_uring the handler fills the request's ring entry directly.
        let in_place = reply.buffer(size as usize);
        self.submit_held(
            req,
            serial_key(&path),
            hold,
            reply,
            move |engine, who| {
                if engine.user_mode_cache() {
                    return Ok(Read::Copied(
                        engine.cached_read(&h, &path, offset, size, who)?,
                    ));
                }
                Ok(match in_place {
                    Some(mut buffer) => {
                        Read::InPlace(engine.read(&h, &path, offset, &mut buffer, who)?)
                    }
                    None => {
                        let mut data = engine.buffers.take(size as usize);
                        let n = engine.read(&h, &path, offset, &mut data, who)?;
                        data.truncate(n);
                        Read::Copied(data)
                    }
                })
            },
            |engine, read, reply| match read {
                Read::Copied(data) => {
                    reply.data(&data);
                    engine.buffers.give(data);
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
        // The kernel leaves clearing privileges on a write by a caller without CAP_FSETID
        // to the filesystem without the page cache, and always with KILLPRIV_V2.
        let how = WriteMode {
            kill_privileges: write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID),
            write_back: write_flags.contains(WriteFlags::FUSE_WRITE_CACHE),
        };
        let Some((h, path, reply)) = self.handle_of(req, ino, fh, reply) else {
            return;
        };
        if let Some(file) = h.routed.clone() {
            // A routed handle in library mode: straight to the backing file, no event;
            // first through the engine when the write takes privileges away.
            if !(how.kill_privileges && write_takes_privileges(&file, super::originator(req))) {
                return match file.write_all_at(data, offset) {
                    Ok(()) => reply.written(u32::try_from(data.len()).unwrap_or(u32::MAX)),
                    Err(e) => reply.error(io_errno(&e)),
                };
            }
            let data = data.to_vec();
            return self.submit(
                req,
                serial_key(&path),
                reply,
                move |engine, who| {
                    engine.clear_privileges_for_write(h.ino, &path, who)?;
                    file.write_all_at(&data, offset)
                        .map_err(|e| fsgate_core::Error::io("writing a routed file", e))?;
                    Ok(data.len())
                },
                |_, n, reply| reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            );
        }
        let data = data.to_vec();
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.write(&h, &path, offset, &data, how, who),
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
        if !self.engine.options.fire_cleanup_events {
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
            serial_key(&path),
            reply,
            move |engine, who| engine.cleanup(&h, &path, who),
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
        reply: ReplyDirectory,
    ) {
        let Some((h, path, reply)) = self.handle_of(req, ino, fh, reply) else {
            return;
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| Ok((engine.listing(&h, &path, who)?, path)),
            move |engine, (entries, dir), mut reply| {
                engine.list(
                    ino.into(),
                    &dir,
                    &entries,
                    offset,
                    |ino, next, kind, name| reply.add(ino.into(), next, file_type(kind), name),
                );
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
        let sector_size = self.engine.options.sector_size;
        self.submit(
            req,
            serial_key(Path::new("/")),
            reply,
            move |engine, who| engine.statfs(who),
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
        let (path, name) = match self.engine.attribute_of(ino.into(), name) {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        let value = value.to_vec();
        let notifier = Arc::clone(&self.notifier);
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.set_xattr(ino.into(), &path, &name, &value, flags, who),
            move |_, AttributesChanged(changed), reply| {
                // The kernel only marks the change time stale after a SETXATTR; a mode set
                // through an ACL must reach its permission checks at once.
                if changed {
                    super::forget_attributes(&notifier, ino.into());
                }
                reply.ok()
            },
        );
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if self.engine.has_no_capability(ino.into(), name) {
            return reply.error(Errno::from_i32(libc::ENODATA));
        }
        let (path, name) = match self.engine.attribute_of(ino.into(), name) {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.get_xattr(ino.into(), &path, &name, who),
            move |_, value, reply| xattr_reply(value, size, reply),
        );
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let Some((path, reply)) = self.resolve(self.engine.path_of(ino.into()), reply) else {
            return;
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.list_xattrs(&path, who),
            move |_, value, reply| xattr_reply(value, size, reply),
        );
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (path, name) = match self.engine.attribute_of(ino.into(), name) {
            Ok(v) => v,
            Err(e) => return reply.error(errno(&e)),
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.remove_xattr(ino.into(), &path, &name, who),
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
        let Some((path, reply)) = self.resolve(self.engine.child(parent.into(), name), reply)
        else {
            return;
        };
        if self.engine.kernel_opens() {
            self.trim_implicit();
        }
        let mode = mode & !umask & 0o7777;
        let notifier = Arc::clone(&self.notifier);
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| Ok((engine.create(&path, mode, flags, who)?, path)),
            move |engine, (created, path), reply| {
                let (ino, info) = (created.ino, created.info);
                let (opened, ttl) = engine.created(ino, &path, created.handle, |f| {
                    backing(reply.open_backing(f))
                });
                // The name may have been known before (a create of an existing name).
                super::drop_attributes(&notifier, ino, &opened);
                let (attr, fh) = (attr(ino, &info), opened.fh.into());
                match fopen(&opened) {
                    (flags, Some(b)) => {
                        reply.created_passthrough(&ttl, &attr, Generation(0), fh, flags, b)
                    }
                    (flags, None) => reply.created(&ttl, &attr, Generation(0), fh, flags),
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
        const KNOWN: i32 =
            libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE;
        if mode & !KNOWN != 0 {
            return reply.error(Errno::from_i32(libc::EOPNOTSUPP));
        }
        let Some((path, reply)) = self.resolve(self.engine.path_of(ino.into()), reply) else {
            return;
        };
        self.submit(
            req,
            serial_key(&path),
            reply,
            move |engine, who| engine.allocate(ino.into(), &path, offset, length, mode, who),
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
            serial_key(&target_path),
            reply,
            move |engine, who| {
                let (from, to) = (&source, &target);
                engine.copy_range(
                    from,
                    &source_path,
                    offset_in,
                    to,
                    &target_path,
                    offset_out,
                    len,
                    who,
                )
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
