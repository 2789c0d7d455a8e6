//! Operations on names: look up, create, link, rename, delete.
//!
//! Each operation that changes the namespace is an event method (the request's job) and a
//! table method (its completion, run only when the event returned in time).

use std::path::{Path, PathBuf};
use std::time::Duration;

use fsgate_core::{code, Error, Originator, Result};

use super::privileges::Capability;
use super::{desired_access, lock, lock_mut, Backing, Engine, FileCtx, Ino, NewHandle, Opened};
use crate::events::Events;
use crate::params::*;

/// What a successful `CREATE` made: the file's attributes and inode, and its first handle,
/// not yet registered.
pub(crate) struct Created<E: Events> {
    /// `on_get_file_info` of the new file.
    pub(crate) info: FileInfo,
    /// Its inode.
    pub(crate) ino: Ino,
    /// Its handle, with the contexts `on_create_file` filled.
    pub(crate) handle: NewHandle<E>,
}

impl<E: Events> Engine<E> {
    /// `LOOKUP`: `on_get_file_info` of `path`; `None` when it does not exist.
    pub(crate) fn lookup(&self, path: &Path, who: Originator) -> Result<Option<FileInfo>> {
        self.file_info(path, who)
    }

    /// Records the kernel's new entry for the object `info` describes at `path`: its inode
    /// and how long the kernel may keep the entry. A reserved file id fails, and fires
    /// `on_error`.
    pub(crate) fn entry(&self, path: &Path, info: &FileInfo) -> Result<(Ino, Duration)> {
        match self.inode_for(path, info) {
            Ok(ino) => Ok((ino, self.ttl(ino))),
            Err(e) => {
                self.events.on_error(e.code(), e.message());
                Err(e)
            }
        }
    }

    /// `MKDIR`, `MKNOD`: `on_create_file` with contexts that live for this event only, then
    /// the new object's attributes.
    pub(crate) fn make_node(
        &self,
        path: &Path,
        kind: FileKind,
        rdev: u32,
        mode: u32,
        who: Originator,
    ) -> Result<FileInfo> {
        let mut fc = None;
        let mut hc = None;
        let mut p = CreateFileParams {
            originator: who,
            file_name: path,
            desired_access: access::FILE_WRITE_DATA,
            attributes: if kind == FileKind::Directory {
                attributes::FILE_ATTRIBUTE_DIRECTORY
            } else {
                attributes::FILE_ATTRIBUTE_NORMAL
            },
            kind,
            rdev,
            mode,
            flags: 0,
            info: FileInfo {
                rdev,
                ..self.new_object_info(kind, mode, who)
            },
            info_filled: false,
            handle_info: HandleInfo {
                handle_id: self.next_handle_id(),
                creator: who,
            },
            file_context: &mut fc,
            handle_context: &mut hc,
            route: None,
            direct_io: false,
        };
        self.events.on_create_file(&mut p)?;
        let reported = p.info_filled.then(|| p.info.clone());
        drop((fc, hc));
        self.created_info(path, reported, kind, who)
    }

    /// `CREATE`: `on_create_file` for a new file opened with `flags`, then its attributes
    /// and inode. Its contexts are kept in the result until [`created`](Self::created)
    /// registers them; dropping the result (a failure, a timeout) drops them at once.
    pub(crate) fn create(
        &self,
        path: &Path,
        mode: u32,
        flags: i32,
        who: Originator,
    ) -> Result<Created<E>> {
        let file: FileCtx<E> = super::new_file_ctx();
        let (info, mut state) = self.new_handle_state(who);
        let (route, reported, direct_io) = {
            let mut fc = lock_mut(&file);
            let mut p = CreateFileParams {
                originator: who,
                file_name: path,
                desired_access: desired_access(flags),
                attributes: attributes::FILE_ATTRIBUTE_NORMAL,
                kind: FileKind::File,
                rdev: 0,
                mode,
                flags,
                info: self.new_object_info(FileKind::File, mode, who),
                info_filled: false,
                handle_info: info,
                file_context: &mut *fc,
                handle_context: &mut state.context,
                route: None,
                direct_io: false,
            };
            self.events.on_create_file(&mut p)?;
            // The kernel opens the file's later descriptors itself, without a backing file;
            // this handle serves them too (see `created`).
            let reported = p.info_filled.then(|| p.info.clone());
            let direct = p.direct_io && !self.kernel_opens();
            (
                p.route.take().filter(|_| !self.kernel_opens()),
                reported,
                direct,
            )
        };
        let attrs = self.created_info(path, reported, FileKind::File, who)?;
        let ino = self.inode_for(path, &attrs)?;
        // A file the drive just made has no capability attribute.
        self.remember_capability(ino, Capability::Absent);
        let writes_seen = self.writes_must_be_seen(route.as_ref(), flags, who);
        Ok(Created {
            info: attrs,
            ino,
            handle: NewHandle {
                file,
                state,
                info,
                directory: false,
                route,
                writes_seen,
                direct_io,
            },
        })
    }

    /// The kernel got the handle `CREATE` made: registers it (see
    /// [`register`](Self::register)) and returns how to answer, with the entry's timeout.
    pub(crate) fn created(
        &self,
        ino: Ino,
        path: &Path,
        handle: NewHandle<E>,
        backing: impl FnOnce(&std::fs::File) -> std::io::Result<Backing>,
    ) -> (Opened, Duration) {
        let opened = self.register(ino, path, handle, backing);
        if self.kernel_opens() {
            // Once the kernel opens files itself it sends no RELEASE at all, not even for
            // created ones: the handle becomes the file's implicit one, closed when the
            // kernel forgets the file or when it is evicted (see `release` and the
            // `implicit` module).
            self.make_implicit(ino, opened.fh);
        }
        (opened, self.ttl(ino))
    }

    /// `SYMLINK`: `on_create_symbolic_link`, then the link's attributes.
    pub(crate) fn symlink(&self, path: &Path, target: &Path, who: Originator) -> Result<FileInfo> {
        let mut p = CreateSymbolicLinkParams {
            originator: who,
            file_name: path,
            target,
            info: FileInfo {
                size: target.as_os_str().len() as u64,
                ..self.new_object_info(FileKind::Symlink, 0o777, who)
            },
            info_filled: false,
        };
        self.events.on_create_symbolic_link(&mut p)?;
        let reported = p.info_filled.then_some(p.info);
        self.created_info(path, reported, FileKind::Symlink, who)
    }

    /// `READLINK`: `on_get_symbolic_link_target`.
    pub(crate) fn readlink(&self, path: &Path, who: Originator) -> Result<PathBuf> {
        let mut p = GetSymbolicLinkTargetParams {
            originator: who,
            file_name: path,
            target: PathBuf::new(),
        };
        self.events.on_get_symbolic_link_target(&mut p)?;
        Ok(p.target)
    }

    /// `LINK`: `on_create_hard_link` (`EPERM` without `UseHardLinks`), then the new name's
    /// attributes.
    pub(crate) fn link(&self, from: &Path, to: &Path, who: Originator) -> Result<FileInfo> {
        let kind = self.kind_of(from);
        let mut p = CreateHardLinkParams {
            originator: who,
            file_name: from,
            link_name: to,
            info: self.default_info(kind),
            info_filled: false,
        };
        self.events.on_create_hard_link(&mut p)?;
        let reported = p.info_filled.then_some(p.info);
        self.created_info(to, reported, kind, who)
    }

    /// The kernel's entry for the hard link `to` of `ino`: the same inode (or, with file
    /// ids, the one the id names), and its timeout.
    pub(crate) fn linked(&self, ino: Ino, to: &Path, info: &FileInfo) -> Result<(Ino, Duration)> {
        if self.options.use_file_ids {
            return self.entry(to, info);
        }
        let ino = {
            let mut inodes = lock(&self.inodes);
            if inodes.link(ino, to) {
                ino
            } else {
                inodes.lookup(to, info.kind)
            }
        };
        Ok((ino, self.ttl(ino)))
    }

    /// `RENAME_EXCHANGE`: `on_exchange_files`.
    pub(crate) fn exchange(&self, a: &Path, b: &Path, who: Originator) -> Result<()> {
        let mut p = ExchangeFilesParams {
            originator: who,
            file_name: a,
            new_file_name: b,
        };
        self.events.on_exchange_files(&mut p)
    }

    /// `a` and `b` traded names, with everything below them.
    pub(crate) fn exchanged(&self, a: &Path, b: &Path) {
        lock(&self.inodes).exchange(a, b);
    }

    /// `RENAME`: `on_rename_or_move_file`, after checking that a directory it replaces is
    /// empty, and keeping a replaced file open for the kernel's own descriptors.
    pub(crate) fn rename(
        &self,
        from: &Path,
        to: &Path,
        replace_existing: bool,
        who: Originator,
    ) -> Result<()> {
        let target_is_dir = {
            let inodes = lock(&self.inodes);
            inodes
                .find(to)
                .and_then(|i| inodes.kind(i))
                .is_some_and(|k| k == FileKind::Directory)
        };
        if target_is_dir && !self.directory_is_empty(to, who)? {
            return Err(Error::from_code(
                code::ERROR_DIR_NOT_EMPTY,
                format!("{} is not empty", to.display()),
            ));
        }
        if replace_existing && !target_is_dir {
            self.keep_for_kernel(to, who)?;
        }
        let context = self.open_context(from);
        let mut guard = context.as_ref().map(|c| lock_mut(c));
        let mut p = RenameOrMoveFileParams {
            originator: who,
            file_name: from,
            new_file_name: to,
            replace_existing,
            file_context: guard.as_deref_mut().and_then(Option::as_mut),
        };
        self.events.on_rename_or_move_file(&mut p)
    }

    /// `from` is now `to`, with everything below it.
    pub(crate) fn renamed(&self, from: &Path, to: &Path) {
        lock(&self.inodes).rename(from, to);
    }

    /// `UNLINK`, `RMDIR`: `on_can_file_be_deleted` and `on_delete_file` (for a directory,
    /// after checking it is empty), keeping a file open for the kernel's own descriptors.
    pub(crate) fn remove(&self, path: &Path, is_directory: bool, who: Originator) -> Result<()> {
        if !is_directory {
            self.keep_for_kernel(path, who)?;
        }
        self.delete(path, is_directory, who)?;
        self.drop_cached_blocks(path);
        Ok(())
    }

    /// The name `path` is gone.
    pub(crate) fn removed(&self, path: &Path) {
        lock(&self.inodes).unlink(path);
    }

    fn delete(&self, path: &Path, is_directory: bool, who: Originator) -> Result<()> {
        if is_directory && !self.directory_is_empty(path, who)? {
            return Err(Error::from_code(
                code::ERROR_DIR_NOT_EMPTY,
                format!("{} is not empty", path.display()),
            ));
        }
        let context = self.open_context(path);
        let mut guard = context.as_ref().map(|c| lock_mut(c));
        let mut p = CanFileBeDeletedParams {
            originator: who,
            file_name: path,
            is_directory,
            can_be_deleted: true,
            file_context: guard.as_deref_mut().and_then(Option::as_mut),
        };
        self.events.on_can_file_be_deleted(&mut p)?;
        if !p.can_be_deleted {
            return Err(Error::from_code(
                code::ERROR_ACCESS_DENIED,
                format!("{} cannot be deleted", path.display()),
            ));
        }
        let mut p = DeleteFileParams {
            originator: who,
            file_name: path,
            is_directory,
            file_context: guard.as_deref_mut().and_then(Option::as_mut),
        };
        self.events.on_delete_file(&mut p)
    }

    /// `on_is_directory_empty`, or a listing when the handler leaves it undecided.
    fn directory_is_empty(&self, path: &Path, who: Originator) -> Result<bool> {
        let mut p = IsDirectoryEmptyParams {
            originator: who,
            directory_name: path,
            is_empty: None,
        };
        self.events.on_is_directory_empty(&mut p)?;
        if let Some(empty) = p.is_empty {
            return Ok(empty);
        }
        let file = self.open_context(path).unwrap_or_else(super::new_file_ctx);
        let mut fc = lock_mut(&file);
        let mut hc = None;
        let (listing, result) = self.gather(path, &mut fc, &mut hc, who);
        let empty = listing.as_ref().is_none_or(|l| l.entries.is_empty());
        if let Some(mut listing) = listing {
            let mut p = CloseDirectoryEnumerationParams {
                originator: who,
                directory_name: path,
                file_context: fc.as_mut(),
                enumeration_context: listing.context.as_mut(),
            };
            if let Err(e) = self.events.on_close_directory_enumeration(&mut p) {
                tracing::debug!("on_close_directory_enumeration {}: {e}", path.display());
            }
        }
        result.map(|()| empty)
    }
}
