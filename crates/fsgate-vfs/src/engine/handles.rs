//! Open files and their handles: the reference's context lifetime table.
//!
//! A file context lives per open inode, with the count of its handles; a handle entry per
//! handle the kernel holds (handle context, directory listing with its enumeration
//! context). Each starts empty, the drive's open, create or first listing event stores
//! it, and it is inserted only when the kernel gets the handle ([`Engine::register`]); a
//! context stored by an event that fails is dropped at once, with the value that held it. They are removed after the last
//! event that may use them ([`Engine::close`]): the handle context after the handle's
//! `on_close_file`, the file context after its last handle's.

use std::any::Any;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use foldhash::HashMap;
use fsgate_core::{code, Error, Originator, Result};

use super::implicit::ImplicitHandles;
use super::privileges::write_takes_privileges;
use super::{desired_access, lock, lock_mut, Engine, FileCtx, Ino};
use crate::events::Events;
use crate::options::FileCache;
use crate::params::*;
use crate::route::{Route, ROUTE_CLOSE_EVENT};

/// A file handle id: what the kernel names an open file by, and the reference's
/// `handle_id`. Converted from and to fuser's `FileHandle` in the wire layer only; 0 is a
/// descriptor the kernel opened by itself (`KernelOpensFiles`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Fh(pub(crate) u64);

/// The kernel's registration of a backing file for passthrough, kept opaque so the engine
/// holds it without knowing the wire's type for it.
pub(crate) type Backing = Arc<dyn Any + Send + Sync>;

fn bad_handle(fh: Fh) -> Error {
    Error::from_code(
        code::ERROR_INVALID_HANDLE,
        format!("unknown file handle {}", fh.0),
    )
}

/// One entry of a listing.
pub(crate) struct DirEntry {
    /// The entry's name in its directory.
    pub(crate) name: OsString,
    /// What it is.
    pub(crate) kind: FileKind,
    /// The application's file id (`use_file_ids`).
    pub(crate) file_id: u64,
}

/// A directory listing gathered at the first read of a handle.
pub(crate) struct Listing<E: Events> {
    pub(crate) context: Option<E::EnumerationContext>,
    /// Shared with each `READDIR` answer, which copies only the entries that fit.
    pub(crate) entries: Arc<Vec<DirEntry>>,
}

/// What a handle holds besides its file's context.
pub(crate) struct HandleState<E: Events> {
    pub(crate) context: Option<E::HandleContext>,
    pub(crate) listing: Option<Listing<E>>,
}

impl<E: Events> HandleState<E> {
    fn new() -> Self {
        Self {
            context: None,
            listing: None,
        }
    }
}

/// An open handle, as the requests that name it see it.
pub(crate) struct Handle<E: Events> {
    pub(crate) ino: Ino,
    pub(crate) file: FileCtx<E>,
    pub(crate) state: Arc<RwLock<HandleState<E>>>,
    pub(crate) info: HandleInfo,
    directory: bool,
    /// The path at open time, for events after the kernel forgot the inode's name.
    pub(crate) opened_as: PathBuf,
    /// The backing file when an open routed the handle and the library serves its I/O.
    pub(crate) routed: Option<Arc<File>>,
    /// Whether the handle was routed with close events off.
    pub(crate) silent_close: bool,
    /// Whether the handle bypasses the kernel's caches (`use_direct_io`).
    direct_io: bool,
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
            direct_io: self.direct_io,
        }
    }
}

/// An open inode: its file context and how many handles share it.
pub(super) struct OpenFile<E: Events> {
    pub(super) context: FileCtx<E>,
    pub(super) handles: usize,
    /// The kernel's backing file registration while the file has passthrough handles; the
    /// kernel demands one backing file per inode, so later opens reuse it.
    backing: Option<Backing>,
    /// How many of its handles bypass the kernel's caches (`use_direct_io`): while any
    /// does, its attributes are given a zero timeout.
    pub(super) direct_handles: usize,
}

/// Every open file and handle of a drive.
pub(super) struct Opens<E: Events> {
    pub(super) files: HashMap<Ino, OpenFile<E>>,
    pub(super) handles: HashMap<Fh, Handle<E>>,
    /// With `KernelOpensFiles`: the handles serving descriptors the kernel opened itself.
    pub(super) implicit: ImplicitHandles,
}

impl<E: Events> Default for Opens<E> {
    fn default() -> Self {
        Self {
            files: HashMap::default(),
            handles: HashMap::default(),
            implicit: ImplicitHandles::default(),
        }
    }
}

/// A handle that an open or create produced, registered once the kernel gets it.
pub(crate) struct NewHandle<E: Events> {
    pub(crate) file: FileCtx<E>,
    pub(crate) state: HandleState<E>,
    pub(crate) info: HandleInfo,
    pub(crate) directory: bool,
    pub(crate) route: Option<Route>,
    /// The handle's writes must reach the engine, which clears the privileges they take
    /// away (see [`Engine::writes_must_be_seen`]): no passthrough for it.
    pub(crate) writes_seen: bool,
    /// Whether the open asked for direct I/O (`use_direct_io`).
    pub(crate) direct_io: bool,
}

/// How the kernel is to cache a registered handle's data.
pub(crate) enum Caching {
    /// The page cache, kept across opens (`FileCache=System`).
    PageCache,
    /// No page cache; writes of one file may run in parallel (`FileCache` none or user
    /// mode, or a handle opened with `use_direct_io`).
    Direct,
    /// A directory whose listing the kernel keeps across opens (metadata cache on).
    CachedListing,
    /// A directory read afresh at each open.
    Uncached,
    /// The kernel serves the handle from this backing file.
    Passthrough(Backing),
}

/// How to answer the open that registered a handle.
pub(crate) struct Opened {
    /// The handle's id.
    pub(crate) fh: Fh,
    /// How the kernel caches its data.
    pub(crate) caching: Caching,
    /// No cleanup event to fire: the kernel need not send `FLUSH` at each close.
    pub(crate) no_flush: bool,
    /// The handle bypasses the kernel's caches (`use_direct_io`): what the kernel cached of
    /// the inode's attributes must be dropped before the open is answered.
    pub(crate) drop_attributes: bool,
}

impl<E: Events> Engine<E> {
    /// The handle `fh`.
    pub(crate) fn handle(&self, fh: Fh) -> Result<Handle<E>> {
        lock(&self.opens)
            .handles
            .get(&fh)
            .cloned()
            .ok_or_else(|| bad_handle(fh))
    }

    /// The name events use for a handle's file now.
    pub(crate) fn handle_path(&self, h: &Handle<E>) -> PathBuf {
        lock(&self.inodes)
            .path(h.ino)
            .map_or_else(|| h.opened_as.clone(), Path::to_path_buf)
    }

    /// `OPEN`, `OPENDIR`: fires `on_open_file` (or nothing, for a later open without
    /// `fire_all_open_close_events`), with new contexts as the reference's table says.
    /// Nothing is registered yet: dropping the result drops the contexts it created.
    pub(crate) fn open(
        &self,
        ino: Ino,
        path: &Path,
        flags: i32,
        directory: bool,
        creator: fsgate_core::Originator,
    ) -> Result<NewHandle<E>> {
        let existing = self.file_context(ino);
        let first = existing.is_none();
        let file = existing.unwrap_or_else(super::new_file_ctx);
        let mut state = HandleState::new();
        let info = HandleInfo {
            handle_id: self.next_handle_id(),
            creator,
        };
        let mut route = None;
        let mut direct_io = false;
        if first || self.options.fire_all_open_close_events {
            let kind = if directory {
                FileKind::Directory
            } else {
                lock(&self.inodes).kind(ino).unwrap_or(FileKind::File)
            };
            let mut fc = lock_mut(&file);
            let mut p = OpenFileParams {
                originator: creator,
                file_name: path,
                desired_access: desired_access(flags),
                attributes: if directory {
                    attributes::FILE_ATTRIBUTE_DIRECTORY
                } else {
                    attributes::FILE_ATTRIBUTE_NORMAL
                },
                kind,
                flags,
                handle_info: info,
                file_context: &mut *fc,
                handle_context: &mut state.context,
                route: None,
                direct_io: false,
            };
            self.events.on_open_file(&mut p)?;
            route = p.route.take();
            direct_io = p.direct_io && !directory && !self.kernel_opens();
        }
        let mut writes_seen =
            !directory && self.writes_must_be_seen(route.as_ref(), flags, creator);
        if writes_seen
            && lock(&self.opens)
                .files
                .get(&ino)
                .is_some_and(|f| f.backing.is_some())
        {
            // The kernel serves every open of a passthrough inode from its backing file.
            self.clear_privileges_for_write(ino, path, creator)?;
            writes_seen = false;
        }
        Ok(NewHandle {
            file,
            state,
            info,
            directory,
            route,
            writes_seen,
            direct_io,
        })
    }

    /// Whether a writable open by `who` that `route` sends to its backing file must keep
    /// its writes visible: passthrough writes never reach the drive, and under
    /// `FUSE_HANDLE_KILLPRIV_V2` the kernel leaves taking away set-id bits and file
    /// capabilities on write to the drive, so a backing file with something to take away
    /// is served by the library instead (see `privileges`).
    pub(crate) fn writes_must_be_seen(
        &self,
        route: Option<&Route>,
        flags: i32,
        who: Originator,
    ) -> bool {
        route.is_some_and(|r| {
            flags & libc::O_ACCMODE != libc::O_RDONLY
                && self.passthrough.load(Ordering::Relaxed)
                && self.kills_privileges.load(Ordering::Relaxed)
                && write_takes_privileges(&r.file, who)
        })
    }

    /// Registers a handle the kernel now holds; returns how to answer the open.
    /// A routed handle gets the kernel's passthrough when `backing` registers its file (or
    /// the inode already has a backing file); a routed handle of an inode that is open
    /// without passthrough, or whose registration fails, is served by the library.
    pub(crate) fn register(
        &self,
        ino: Ino,
        path: &Path,
        mut h: NewHandle<E>,
        backing: impl FnOnce(&File) -> std::io::Result<Backing>,
    ) -> Opened {
        let fh = Fh(h.info.handle_id);
        let route = if h.directory { None } else { h.route.take() };
        let passthrough = self.passthrough.load(Ordering::Relaxed);
        let mut opens = lock(&self.opens);
        let entry = opens.files.entry(ino).or_insert_with(|| OpenFile {
            context: h.file,
            handles: 0,
            backing: None,
            direct_handles: 0,
        });
        let already_open = entry.handles > 0;
        entry.handles += 1;
        let file = Arc::clone(&entry.context);
        let mut caching = match (h.directory, self.options.metadata_cache_enabled) {
            // With the metadata cache, the kernel keeps directory listings across opens: a
            // listing is gathered through `on_enumerate_directory` once and reused until
            // the directory changes through the drive or a notification.
            (true, true) => Caching::CachedListing,
            (true, false) => Caching::Uncached,
            (false, _) if self.options.file_cache == FileCache::System => Caching::PageCache,
            (false, _) => Caching::Direct,
        };
        let mut routed = None;
        let mut silent_close = false;
        let direct_io = h.direct_io && !h.directory;
        if direct_io {
            caching = Caching::Direct;
            if entry.backing.is_some() {
                tracing::warn!(
                    "{}: open through passthrough elsewhere; the kernel refuses this direct handle",
                    path.display()
                );
            }
            entry.direct_handles += 1;
            if entry.direct_handles == 1 {
                self.direct_files.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(r) = route {
            silent_close = r.flags & ROUTE_CLOSE_EVENT == 0;
            let shared = match &entry.backing {
                Some(b) => Some(Arc::clone(b)),
                None if passthrough && !already_open && !h.writes_seen && !direct_io => {
                    match backing(&r.file) {
                        Ok(b) => {
                            entry.backing = Some(Arc::clone(&b));
                            Some(b)
                        }
                        Err(e) => {
                            tracing::warn!(
                                "{}: passthrough refused ({e}); serving it ourselves",
                                path.display()
                            );
                            None
                        }
                    }
                }
                None => None,
            };
            match shared {
                Some(b) if !direct_io => caching = Caching::Passthrough(b),
                _ => routed = Some(Arc::new(r.file)),
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
                opened_as: path.to_path_buf(),
                routed,
                silent_close,
                direct_io,
            },
        );
        Opened {
            fh,
            caching,
            no_flush: silent_close,
            drop_attributes: direct_io,
        }
    }

    /// The kernel's `RELEASE` of `fh`: closes it, unless it is `ino`'s implicit handle. A
    /// file created before the first refused OPEN told the kernel to open files itself gets
    /// a RELEASE (sent in the background, possibly after later requests), yet its handle
    /// already serves the kernel's own descriptors too; it closes when the kernel forgets
    /// the file.
    pub(crate) fn release(&self, ino: Ino, fh: Fh, who: Originator) -> Result<()> {
        if lock(&self.opens).implicit.get(ino) == Some(fh) {
            return Ok(());
        }
        self.close(fh, who)
    }

    /// `RELEASE`/`RELEASEDIR`: the last events of a handle, then its contexts go.
    pub(crate) fn close(&self, fh: Fh, who: Originator) -> Result<()> {
        let h = self.handle(fh)?;
        self.close_handle(fh, h, who)
    }

    /// [`close`](Self::close) of `h`, handle `fh`, whether or not the table still has it.
    pub(crate) fn close_handle(&self, fh: Fh, h: Handle<E>, who: Originator) -> Result<()> {
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
                        originator: who,
                        directory_name: &path,
                        file_context: fc.as_mut(),
                        enumeration_context: listing.context.as_mut(),
                    };
                    if let Err(e) = self.events.on_close_directory_enumeration(&mut p) {
                        tracing::debug!("on_close_directory_enumeration {}: {e}", path.display());
                    }
                }
                if self.options.fire_cleanup_events {
                    let mut p = CleanupFileParams {
                        originator: who,
                        file_name: &path,
                        handle_info: h.info,
                        file_context: fc.as_mut(),
                        handle_context: st.context.as_mut(),
                    };
                    if let Err(e) = self.events.on_cleanup_file(&mut p) {
                        tracing::debug!("on_cleanup_file {}: {e}", path.display());
                    }
                }
            }
            if !h.silent_close && (last || self.options.fire_all_open_close_events) {
                let mut p = CloseFileParams {
                    originator: who,
                    file_name: &path,
                    handle_info: h.info,
                    last_handle: last,
                    file_context: fc.as_mut(),
                    handle_context: st.context.as_mut(),
                };
                result = self.events.on_close_file(&mut p);
            }
        }
        let mut opens = lock(&self.opens);
        opens.handles.remove(&fh);
        opens.implicit.remove_if(h.ino, fh);
        let gone = match opens.files.get_mut(&h.ino) {
            Some(f) => {
                f.handles = f.handles.saturating_sub(1);
                if h.direct_io && f.direct_handles > 0 {
                    f.direct_handles -= 1;
                    if f.direct_handles == 0 {
                        self.direct_files.fetch_sub(1, Ordering::Relaxed);
                    }
                }
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

    /// A handle id and fresh handle state for an event that creates a handle.
    pub(crate) fn new_handle_state(
        &self,
        creator: fsgate_core::Originator,
    ) -> (HandleInfo, HandleState<E>) {
        let info = HandleInfo {
            handle_id: self.next_handle_id(),
            creator,
        };
        (info, HandleState::new())
    }
}
