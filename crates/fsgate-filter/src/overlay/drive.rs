//! The overlay's `fsgate-vfs` events: each request is checked against the rules, wrapped in
//! the application's Before and After events, and served by the mirror drive on the
//! filtered directory's descriptor.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use fsgate_core::dispatch::{Dispatcher, Task};
use fsgate_core::originator::{self, Originator};
use fsgate_core::sync::read;
use fsgate_core::{code, Error, Result};
use fsgate_samples::mirror::{Listing, MirrorDrive};
use fsgate_vfs::{
    CanFileBeDeletedParams, CleanupFileParams, CloseDirectoryEnumerationParams, CloseFileParams,
    CopyFileRangeParams, CreateFileParams, CreateHardLinkParams, CreateSymbolicLinkParams,
    DeleteFileParams, EnumerateDirectoryParams, Events, ExchangeFilesParams, FileInfo, FileKind,
    FlushFileParams, GetEaParams, GetFileInfoParams, GetSymbolicLinkTargetParams,
    GetVolumeLabelParams, GetVolumeSizeParams, Hooks, IsDirectoryEmptyParams, ListEasParams,
    OpenFileParams, ReadFileParams, RemoveEaParams, RenameOrMoveFileParams,
    SetAllocationSizeParams, SetEaParams, SetFileAttributesParams, SetFileSecurityParams,
    SetFileSizeParams, WriteFileParams, ZeroizeFileRangeParams,
};

use crate::class::Lookups;
use crate::events::{ControlEvent, ControlKind, FilterEvents, NotifyEvent, NotifyKind};
use crate::overlay::isolation::{isolated_for, no_backend, Backend, Isolated};
use crate::overlay::redirect::info_of;
use crate::overlay::request::{Context, ContextKind, DirectoryEntry, FileRequest, RequestKind};
use crate::overlay::virtual_files::VirtualFiles;
use crate::reparse::ReparseRules;
use crate::rules::{AccessFlags, ControlFlags, NotifyFlags, RuleFlags, Rules};

/// `__FMODE_EXEC`: the open flag the kernel adds for `execve(2)`, which FUSE passes on.
const FMODE_EXEC: i32 = 0x20;

/// Control flags whose events need a file's data to pass through the library: a file any
/// of them covers is never routed to the kernel (passthrough).
const DATA_EVENTS: ControlFlags = ControlFlags::FS_CE_BEFORE_READ
    .union(ControlFlags::FS_CE_AFTER_READ)
    .union(ControlFlags::FS_CE_BEFORE_WRITE)
    .union(ControlFlags::FS_CE_AFTER_WRITE);

/// Control flags whose handlers may isolate an open: a file any of them covers is never
/// routed to the kernel either (the kernel refuses a direct-I/O open of an inode open
/// through passthrough).
const ISOLATING: ControlFlags =
    ControlFlags::FS_CE_BEFORE_CREATE.union(ControlFlags::FS_CE_BEFORE_OPEN);

/// Whether a file the rules cover with `flags` needs its reads and writes to pass through
/// the library (a data event or a read or write notification covers it).
pub(super) fn data_passes(flags: RuleFlags) -> bool {
    flags.control.intersects(DATA_EVENTS)
        || flags
            .notify
            .intersects(NotifyFlags::FS_NE_READ | NotifyFlags::FS_NE_WRITE)
}

/// Whether opens of a file the rules cover with `flags` may be routed to the kernel
/// (passthrough): no data event covers it and no handler may isolate its opens.
fn routable(flags: RuleFlags) -> bool {
    !data_passes(flags) && !flags.control.intersects(ISOLATING)
}

/// What every request of one overlay needs.
pub(crate) struct Shared<H> {
    pub(crate) handler: Arc<H>,
    pub(crate) rules: Arc<RwLock<Rules>>,
    /// Whether After events fire for failed operations too.
    pub(crate) process_failed_requests: Arc<AtomicBool>,
    /// Where Notify events run (asynchronously, after the request was answered).
    pub(crate) notify: Arc<Dispatcher>,
    /// The reparse rules (redirections).
    pub(crate) reparse: Arc<RwLock<ReparseRules>>,
    /// The virtual files, by full path.
    pub(crate) virtual_files: Arc<RwLock<VirtualFiles>>,
}

/// The overlay of one directory.
pub(crate) struct OverlayDrive<H> {
    pub(super) shared: Shared<H>,
    /// The directory's full path as processes name it (no trailing `/`, except for `/`).
    root: String,
    /// The directory, opened `O_PATH` before the mount: `/proc/self/fd/N/…` reaches the
    /// lower files for rule qualifiers.
    pub(super) lower: OwnedFd,
    /// Serves files no data event covers: their handles are routed (FUSE passthrough).
    routed: MirrorDrive,
    /// Serves everything else.
    pub(super) plain: MirrorDrive,
}

/// The overlay's file context: the lower file (shared by the file's handles) and the
/// application's context.
#[derive(Default)]
pub struct OverlayFile {
    pub(super) lower: Option<Arc<File>>,
    pub(super) user: Mutex<Option<Context>>,
    /// The file's isolated opens, oldest first (each has its own file context).
    pub(super) isolated: Mutex<Vec<Arc<Isolated>>>,
}

/// The overlay's handle context.
#[derive(Default)]
pub struct OverlayHandle {
    pub(super) lower: Option<Arc<File>>,
    pub(super) user: Mutex<Option<Context>>,
    /// The rules' flags for the file when it was opened.
    pub(super) flags: RuleFlags,
    /// Whether the handle was opened for writing (for `on_notify_close_file`).
    pub(super) writing: bool,
    /// Whether the handle is a virtual file's (its data comes from the events).
    pub(super) virtual_file: bool,
    /// The isolated open this handle is, if it is one.
    pub(super) isolated: Option<Arc<Isolated>>,
}

impl OverlayHandle {
    /// The file context the events of this handle see: its isolated open's own, else the
    /// file's.
    pub(super) fn file_user<'a>(
        &'a self,
        file: Option<&'a OverlayFile>,
    ) -> Option<&'a Mutex<Option<Context>>> {
        match &self.isolated {
            Some(i) => Some(&i.file_context),
            None => file.map(|f| &f.user),
        }
    }
}

/// The overlay's enumeration context: the whole listing, after its After event.
#[derive(Default)]
pub struct OverlayListing {
    entries: Vec<DirectoryEntry>,
    next: usize,
    user: Mutex<Option<Context>>,
}

/// A mutex's value whoever held it last (a panicking handler cannot leave a context
/// half-changed in a way that matters more than losing it).
fn slot(m: &mut Mutex<Option<Context>>) -> &mut Option<Context> {
    m.get_mut().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on a `kind` request of a handle's event with the context slots its events see:
/// the isolated open's own file context (locked for the call) or else the file's, the
/// handle's, and no listing.
fn handle_request<R>(
    kind: RequestKind,
    path: &str,
    file: Option<&mut OverlayFile>,
    handle: Option<&mut OverlayHandle>,
    f: impl FnOnce(&mut FileRequest<'_>) -> R,
) -> R {
    let (mut none_file, mut none_handle, mut listing) = (None, None, None);
    let isolated = handle.as_deref().and_then(|h| h.isolated.clone());
    let mut own = isolated
        .as_ref()
        .map(|i| fsgate_core::sync::lock(&i.file_context));
    let file_slot = if let Some(s) = own.as_deref_mut() {
        s
    } else if let Some(file) = file {
        slot(&mut file.user)
    } else {
        &mut none_file
    };
    let handle_slot = match handle {
        Some(h) => slot(&mut h.user),
        None => &mut none_handle,
    };
    let mut r = FileRequest::new(kind, path, file_slot, handle_slot, &mut listing);
    f(&mut r)
}

/// `ERROR_ACCESS_DENIED` (`EACCES`) for an access rule's refusal.
pub(super) fn denied(what: &str, path: &str) -> Error {
    Error::from_code(
        code::ERROR_ACCESS_DENIED,
        format!("{what} {path}: refused by an access rule"),
    )
}

/// The errno an operation's result carries (0 for success).
fn errno_of<T>(r: &Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.errno(),
    }
}

/// What a Notify event reports about an operation.
struct Notice<'a> {
    kind: NotifyKind,
    path: &'a str,
    new_path: Option<&'a str>,
    directory: bool,
    modified: bool,
}

/// The Notify event of `kind` about the file `path` (not a directory, not modified, not
/// renamed): the struct update base of every notice.
fn notice(kind: NotifyKind, path: &str) -> Notice<'_> {
    Notice {
        kind,
        path,
        new_path: None,
        directory: false,
        modified: false,
    }
}

/// The lower file and the application's file context slot of a request's file context
/// (`none` stands in for the slot when the request has no file context).
fn file_parts<'a>(
    file: Option<&'a mut OverlayFile>,
    none: &'a mut Option<Context>,
) -> (Option<&'a mut Arc<File>>, &'a mut Option<Context>) {
    match file {
        Some(f) => (f.lower.as_mut(), slot(&mut f.user)),
        None => (None, none),
    }
}

/// Who made a request, as the events report it. The process id is looked up (in
/// `/proc/<tid>/status`) only when a rule or an event needs it: requests no rule touches
/// never pay for it.
#[derive(Clone, Copy)]
pub(super) struct Caller {
    origin: Originator,
}

impl Caller {
    pub(super) fn of(o: &Originator) -> Self {
        Self { origin: *o }
    }

    pub(super) fn pid(self) -> u32 {
        self.origin.pid()
    }

    pub(super) fn fill(self, r: &mut FileRequest<'_>) {
        r.process_id = self.pid();
        r.thread_id = self.origin.tid;
        r.user_id = self.origin.uid;
        r.group_id = self.origin.gid;
    }

    pub(super) fn control(
        self,
        kind: ControlKind,
        path: &str,
        read: bool,
        write: bool,
    ) -> ControlEvent {
        let pid = self.pid();
        ControlEvent {
            kind,
            file_name: path.to_string(),
            process_id: pid,
            thread_id: self.origin.tid,
            process_name: originator::process_name(pid).unwrap_or_default(),
            read_access: read,
            write_access: write,
            isolate: false,
            backend_file_name: path.to_string(),
            process_request: true,
        }
    }
}

/// Whether open flags ask for reading, and for writing (truncation included).
pub(super) fn access_of(flags: i32) -> (bool, bool) {
    let mode = flags & libc::O_ACCMODE;
    let read = mode == libc::O_RDONLY || mode == libc::O_RDWR;
    let write = mode == libc::O_WRONLY || mode == libc::O_RDWR || flags & libc::O_TRUNC != 0;
    (read, write)
}

impl<H: FilterEvents> OverlayDrive<H> {
    /// The overlay of `root` (an absolute path, resolved), whose descriptors are opened now,
    /// before anything is mounted over it.
    pub(crate) fn new(shared: Shared<H>, root: &Path) -> Result<Self> {
        let lower = rustix::fs::open(
            root,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| {
            Error::from_errno(
                e.raw_os_error(),
                format!("opening {}: {}", root.display(), std::io::Error::from(e)),
            )
        })?;
        let text = root.display().to_string();
        Ok(Self {
            shared,
            root: if text == "/" { String::new() } else { text },
            lower,
            routed: MirrorDrive::new(root, true)?,
            plain: MirrorDrive::new(root, false)?,
        })
    }

    /// The full path of the overlay path `name` (`/a/b`).
    fn full(&self, name: &Path) -> String {
        let rel = name.display();
        if name.as_os_str().as_bytes() == b"/" {
            if self.root.is_empty() {
                return "/".into();
            }
            return self.root.clone();
        }
        format!("{}{rel}", self.root)
    }

    /// What the rules say about `path` for process `pid`: nothing at all when there are
    /// no rules (the fast route).
    fn flags(&self, path: &str, caller: Caller) -> RuleFlags {
        let rules = read(&self.shared.rules);
        if rules.standard.is_empty() {
            return RuleFlags::default();
        }
        let pid = if rules.needs_process() {
            caller.pid()
        } else {
            0
        };
        let lookups = Lookups::new(&rules, pid, path, || {
            std::fs::symlink_metadata(self.lower_path(path)).ok()
        });
        rules.evaluate(&lookups.subject(path, pid))
    }

    /// The lower object of the full path `path`, reached through the directory's
    /// descriptor (never through the mount).
    fn lower_path(&self, path: &str) -> String {
        let rel = self.relative(path).unwrap_or(".");
        format!("/proc/self/fd/{}/{rel}", self.lower.as_raw_fd())
    }

    /// `path` relative to the overlay's directory (`.` for the directory itself); `None`
    /// when it is not under it.
    pub(crate) fn relative<'p>(&self, path: &'p str) -> Option<&'p str> {
        if path == self.root || (self.root.is_empty() && path == "/") {
            return Some(".");
        }
        let rest = path.strip_prefix(self.root.as_str())?.strip_prefix('/')?;
        Some(if rest.is_empty() { "." } else { rest })
    }

    /// Opens the lower object at `rel` (relative to the directory) with open `flags` and
    /// `mode`, unfiltered: the direct file operations.
    pub(crate) fn open_lower(&self, rel: &str, flags: i32, mode: u32) -> std::io::Result<File> {
        let flags = rustix::fs::OFlags::from_bits_retain(flags as u32 | libc::O_CLOEXEC as u32);
        let fd = rustix::fs::openat(
            &self.lower,
            rel,
            flags,
            rustix::fs::Mode::from_raw_mode(mode),
        )?;
        Ok(File::from(fd))
    }

    /// Fires a Notify event asynchronously when `flags` ask for it.
    fn notify(&self, flags: RuleFlags, caller: Caller, notice: Notice<'_>) {
        let Notice {
            kind,
            path,
            new_path,
            directory,
            modified,
        } = notice;
        let wanted = match kind {
            NotifyKind::CreateFile => NotifyFlags::FS_NE_CREATE,
            NotifyKind::OpenFile => NotifyFlags::FS_NE_OPEN,
            NotifyKind::ExecuteFile => NotifyFlags::FS_NE_EXECUTE,
            NotifyKind::ReadFile => NotifyFlags::FS_NE_READ,
            NotifyKind::WriteFile => NotifyFlags::FS_NE_WRITE,
            NotifyKind::SetFileAttributes => NotifyFlags::FS_NE_SET_ATTRIBUTES,
            NotifyKind::CloseFile => NotifyFlags::FS_NE_CLOSE,
            NotifyKind::RenameOrMoveFile => NotifyFlags::FS_NE_RENAME,
            NotifyKind::DeleteFile => NotifyFlags::FS_NE_DELETE,
        };
        if !flags.notify.contains(wanted) {
            return;
        }
        let mut event = NotifyEvent {
            kind,
            file_name: path.to_string(),
            new_file_name: new_path.map(str::to_string),
            directory,
            modified,
            process_id: caller.pid(),
            process_name: String::new(),
            user_id: Some(caller.origin.uid),
        };
        event.process_name = originator::process_name(event.process_id).unwrap_or_default();
        let h = Arc::clone(&self.shared.handler);
        self.shared
            .notify
            .dispatch(Task::new(move || h.fire_notify(&event)).then(|_| {}));
    }

    /// Runs `op` inside the Before and After events `flags` ask for: a Before handler's
    /// error is the answer, a Before handler that clears `process_request` answers itself
    /// (`Ok(None)`), and an After handler sees the result and may change it. The request
    /// learns who made it (`caller`, whose process id costs a read of `/proc`) only when an
    /// event fires: with no event, `op` is all the request costs.
    fn around<T>(
        &self,
        r: &mut FileRequest<'_>,
        caller: Caller,
        flags: RuleFlags,
        before: ControlFlags,
        after: ControlFlags,
        op: impl FnOnce(&mut FileRequest<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let h = &self.shared.handler;
        let fires_before = flags.control.intersects(before);
        if fires_before {
            caller.fill(r);
            h.fire_before(r)?;
            if !r.process_request {
                return Ok(None);
            }
        }
        let result = op(r);
        let fire = flags.control.intersects(after)
            && (result.is_ok() || self.shared.process_failed_requests.load(Ordering::Relaxed));
        if !fire {
            return result.map(Some);
        }
        if !fires_before {
            caller.fill(r);
        }
        r.result_code = errno_of(&result);
        h.fire_after(r)?;
        match (result, r.result_code) {
            (Ok(v), 0) => Ok(Some(v)),
            (Err(_), 0) => Ok(None),
            (Err(e), code) if code == e.errno() => Err(e),
            (_, code) => Err(Error::from_errno(
                code,
                format!(
                    "{}: failed by on_after_{}",
                    r.file_name,
                    r.kind.event_name()
                ),
            )),
        }
    }

    /// Checks the access rules for an open (or a create, which always writes).
    fn check_open(
        &self,
        flags: RuleFlags,
        path: &str,
        open_flags: i32,
        create: bool,
    ) -> Result<()> {
        let a = flags.access;
        if a.is_empty() {
            return Ok(());
        }
        let (read, write) = access_of(open_flags);
        let write = write || create;
        if a.contains(AccessFlags::ACCESS_DENY_ALL)
            || (a.contains(AccessFlags::ACCESS_READ_ONLY) && write)
            || (a.contains(AccessFlags::ACCESS_WRITE_ONLY) && read && !create)
            || (a.contains(AccessFlags::ACCESS_EXECUTE_PROTECT) && open_flags & FMODE_EXEC != 0)
        {
            return Err(denied(if create { "create" } else { "open" }, path));
        }
        Ok(())
    }

    /// Fires `on_access_denied` for a refusal by an access rule, asynchronously.
    fn report_denied(&self, kind: ControlKind, path: &str, caller: Caller) {
        let event = caller.control(kind, path, false, false);
        let h = Arc::clone(&self.shared.handler);
        self.shared.notify.dispatch(
            Task::new(move || {
                h.on_access_denied(&event);
                Ok(())
            })
            .then(|_: fsgate_core::dispatch::Outcome<Result<()>>| {}),
        );
    }

    /// The mirror that serves a file the rules cover with `flags`.
    fn mirror_for(&self, flags: RuleFlags) -> &MirrorDrive {
        if !routable(flags) {
            &self.plain
        } else {
            &self.routed
        }
    }

    /// Opens a file that is not isolated: its redirection target, or the lower file through
    /// the mirror (routed to the kernel when [`routable`]).
    fn open_plain(
        &self,
        p: &mut OpenFileParams<'_, OverlayFile, OverlayHandle>,
        path: &str,
        flags: RuleFlags,
        caller: Caller,
        file: &mut OverlayFile,
        lower_handle: &mut Option<Arc<File>>,
    ) -> Result<()> {
        let directory = p.kind == FileKind::Directory;
        match self.redirect(path, flags, caller)? {
            Some(target) if !directory => {
                let f = Arc::new(self.open_target_for(&target, p.flags)?);
                if routable(flags) {
                    if let Ok(copy) = f.try_clone() {
                        p.route_to_file(copy, 0);
                    }
                }
                file.lower.get_or_insert_with(|| Arc::clone(&f));
                *lower_handle = Some(f);
                Ok(())
            }
            _ => {
                let mut inner = p.with_contexts(&mut file.lower, lower_handle);
                let result = self.mirror_for(flags).on_open_file(&mut inner);
                p.adopt(inner);
                result
            }
        }
    }

    /// Fires `on_cleanup_context` for a context about to go.
    fn cleanup(&self, kind: ContextKind, context: &mut Option<Context>) {
        if let Some(c) = context.as_mut() {
            self.shared.handler.on_cleanup_context(kind, c);
        }
        *context = None;
    }

    /// The backend file that requests without a handle from `originator` reach when that
    /// process has an isolated open of the file (`None` when it has none); an isolated open
    /// without a backend cannot be given the request.
    fn isolated_backend(
        &self,
        file: Option<&OverlayFile>,
        originator: &Originator,
        name: &Path,
    ) -> Result<Option<Arc<File>>> {
        match isolated_for(file, Caller::of(originator)) {
            None => Ok(None),
            Some(i) => match &i.backend {
                Backend::File { file, .. } => Ok(Some(Arc::clone(file))),
                Backend::Events => Err(no_backend("allocate", &self.full(name))),
            },
        }
    }

    /// Whether a delete-protected or rename-protected object exists at `path` (the target
    /// of a rename over it).
    fn protected_target(&self, path: &str, caller: Caller) -> bool {
        self.flags(path, caller)
            .access
            .intersects(AccessFlags::ACCESS_DELETE_PROTECT | AccessFlags::ACCESS_RENAME_PROTECT)
            && std::fs::symlink_metadata(self.lower_path(path)).is_ok()
    }
}

impl<H: FilterEvents> Hooks for OverlayDrive<H> {
    fn on_error(&self, code: u32, description: &str) {
        self.shared.handler.on_error(code, description);
    }
}

impl<H: FilterEvents> Events for OverlayDrive<H> {
    type FileContext = OverlayFile;
    type HandleContext = OverlayHandle;
    type EnumerationContext = OverlayListing;

    fn on_get_volume_label(&self, p: &mut GetVolumeLabelParams) -> Result<()> {
        p.buffer = "fsgate-overlay".into();
        Ok(())
    }

    fn on_get_volume_size(&self, p: &mut GetVolumeSizeParams) -> Result<()> {
        self.plain.on_get_volume_size(p)
    }

    fn on_create_file(
        &self,
        p: &mut CreateFileParams<'_, OverlayFile, OverlayHandle>,
    ) -> Result<()> {
        let path = self.full(p.file_name);
        let caller = Caller::of(&p.originator);
        let flags = self.flags(&path, caller);
        if let Err(e) = self.check_open(flags, &path, p.flags, true) {
            self.report_denied(ControlKind::CreateFile, &path, caller);
            return Err(e);
        }
        let mut isolate = None;
        if flags.control.contains(ControlFlags::FS_CE_BEFORE_CREATE) {
            let (read, _) = access_of(p.flags);
            let mut event = caller.control(ControlKind::CreateFile, &path, read, true);
            self.shared.handler.on_before_create_file(&mut event)?;
            if !event.process_request && p.kind == FileKind::File {
                return self.create_served(p, &path, caller);
            }
            if event.isolate && p.kind == FileKind::File {
                isolate = Some(event.backend_file_name);
            }
        }
        let (mut lower_file, mut lower_handle) = (None, None);
        let mut inner = p.with_contexts(&mut lower_file, &mut lower_handle);
        let mut result = self.mirror_for(flags).on_create_file(&mut inner);
        p.adopt(inner);
        let mut isolated = None;
        if let (Some(backend), Ok(())) = (isolate, &result) {
            // The name is made in the directory for everyone; this open's data goes to its
            // backend (the new file itself when it names it).
            match self.isolate(&path, &backend, p.flags, Some(p.mode), caller) {
                Ok(i) => {
                    p.use_direct_io();
                    lower_handle = i.file().cloned();
                    isolated = Some(i);
                }
                Err(e) => {
                    // A create that fails leaves nothing behind.
                    if let Some(rel) = self.relative(&path) {
                        let gone =
                            rustix::fs::unlinkat(&self.lower, rel, rustix::fs::AtFlags::empty());
                        if let Err(u) = gone {
                            tracing::warn!("{path}: removing the name of a failed create: {u}");
                        }
                    }
                    result = Err(e);
                }
            }
        }
        let directory = p.kind == FileKind::Directory;
        let mut file = OverlayFile {
            lower: lower_file,
            user: Mutex::new(None),
            isolated: Mutex::new(isolated.iter().cloned().collect()),
        };
        let mut handle = OverlayHandle {
            lower: lower_handle,
            user: Mutex::new(None),
            flags,
            writing: true,
            virtual_file: false,
            isolated: isolated.clone(),
        };
        let mut own = isolated
            .as_ref()
            .map(|i| fsgate_core::sync::lock(&i.file_context));
        if flags.control.contains(ControlFlags::FS_CE_AFTER_CREATE)
            && (result.is_ok() || self.shared.process_failed_requests.load(Ordering::Relaxed))
        {
            let mut listing = None;
            let file_slot = match own.as_deref_mut() {
                Some(s) => s,
                None => slot(&mut file.user),
            };
            let mut r = FileRequest::new(
                RequestKind::CreateFile,
                &path,
                file_slot,
                slot(&mut handle.user),
                &mut listing,
            );
            caller.fill(&mut r);
            r.flags = p.flags;
            r.directory = directory;
            r.result_code = errno_of(&result);
            self.shared.handler.on_after_create_file(&mut r)?;
            if r.result_code != 0 && result.is_ok() {
                return Err(Error::from_errno(
                    r.result_code,
                    format!("{path}: failed by on_after_create_file"),
                ));
            }
        }
        drop(own);
        result?;
        *p.file_context = Some(file);
        *p.handle_context = Some(handle);
        self.notify(
            flags,
            caller,
            Notice {
                directory,
                ..notice(NotifyKind::CreateFile, &path)
            },
        );
        Ok(())
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, OverlayFile, OverlayHandle>) -> Result<()> {
        let path = self.full(p.file_name);
        let caller = Caller::of(&p.originator);
        if self.virtual_size(&path).is_some() {
            return self.open_virtual(p, &path, caller);
        }
        let flags = self.flags(&path, caller);
        let directory = p.kind == FileKind::Directory;
        if !directory {
            if let Err(e) = self.check_open(flags, &path, p.flags, false) {
                let kind = if p.flags & FMODE_EXEC != 0 {
                    ControlKind::Execute
                } else {
                    ControlKind::OpenFile
                };
                self.report_denied(kind, &path, caller);
                return Err(e);
            }
        }
        let (read, write) = access_of(p.flags);
        if p.flags & FMODE_EXEC != 0 && flags.control.contains(ControlFlags::FS_CE_BEFORE_EXECUTE) {
            let event = caller.control(ControlKind::Execute, &path, true, false);
            self.shared.handler.on_before_execute(&event)?;
        }
        let mut isolate = None;
        let mut served = false;
        if flags.control.contains(ControlFlags::FS_CE_BEFORE_OPEN) {
            let mut event = caller.control(ControlKind::OpenFile, &path, read, write);
            self.shared.handler.on_before_open_file(&mut event)?;
            if !event.process_request && !directory {
                // The handler serves the open: no backend file, no After event.
                (isolate, served) = (Some(String::new()), true);
            } else if event.isolate && !directory {
                isolate = Some(event.backend_file_name);
            }
        }
        let mut file = p.file_context.take().unwrap_or_default();
        let mut lower_handle = None;
        let mut isolated = None;
        let result = match isolate {
            Some(backend) => self
                .isolate(&path, &backend, p.flags, None, caller)
                .map(|i| {
                    p.use_direct_io();
                    lower_handle = i.file().cloned();
                    isolated = Some(i);
                }),
            None => self.open_plain(p, &path, flags, caller, &mut file, &mut lower_handle),
        };
        let mut handle = OverlayHandle {
            lower: lower_handle,
            user: Mutex::new(None),
            flags,
            writing: write,
            virtual_file: false,
            isolated: isolated.clone(),
        };
        let after = flags.control.contains(ControlFlags::FS_CE_AFTER_OPEN)
            && !served
            && (result.is_ok() || self.shared.process_failed_requests.load(Ordering::Relaxed));
        let mut outcome = result;
        if after {
            let mut own = isolated
                .as_ref()
                .map(|i| fsgate_core::sync::lock(&i.file_context));
            let file_slot = match own.as_deref_mut() {
                Some(s) => s,
                None => slot(&mut file.user),
            };
            let mut listing = None;
            let mut r = FileRequest::new(
                RequestKind::OpenFile,
                &path,
                file_slot,
                slot(&mut handle.user),
                &mut listing,
            );
            caller.fill(&mut r);
            r.flags = p.flags;
            r.directory = directory;
            r.result_code = errno_of(&outcome);
            let fired = self.shared.handler.on_after_open_file(&mut r);
            let code = r.result_code;
            if let Err(e) = fired {
                outcome = Err(e);
            } else if code != 0 && outcome.is_ok() {
                outcome = Err(Error::from_errno(
                    code,
                    format!("{path}: failed by on_after_open_file"),
                ));
            }
        }
        if let (Some(i), Ok(())) = (&isolated, &outcome) {
            fsgate_core::sync::lock(&file.isolated).push(Arc::clone(i));
        }
        *p.file_context = Some(file);
        outcome?;
        *p.handle_context = Some(handle);
        self.notify(
            flags,
            caller,
            Notice {
                directory,
                ..notice(NotifyKind::OpenFile, &path)
            },
        );
        Ok(())
    }

    fn on_cleanup_file(
        &self,
        p: &mut CleanupFileParams<'_, OverlayFile, OverlayHandle>,
    ) -> Result<()> {
        let path = self.full(p.file_name);
        let caller = Caller::of(&p.originator);
        let flags = match p.handle_context.as_deref() {
            Some(h) => h.flags,
            None => self.flags(&path, caller),
        };
        handle_request(
            RequestKind::CleanupFile,
            &path,
            p.file_context.as_deref_mut(),
            p.handle_context.as_deref_mut(),
            |r| {
                self.around(
                    r,
                    caller,
                    flags,
                    ControlFlags::FS_CE_BEFORE_CLEANUP,
                    ControlFlags::FS_CE_AFTER_CLEANUP,
                    |_| Ok(()),
                )
            },
        )?;
        Ok(())
    }

    fn on_close_file(&self, p: &mut CloseFileParams<'_, OverlayFile, OverlayHandle>) -> Result<()> {
        let path = self.full(p.file_name);
        let caller = Caller::of(&p.originator);
        let (flags, writing) = match p.handle_context.as_deref() {
            Some(h) => (h.flags, h.writing),
            None => (self.flags(&path, caller), false),
        };
        let last = p.last_handle;
        let isolated = p.handle_context.as_deref().and_then(|h| h.isolated.clone());
        let result = handle_request(
            RequestKind::CloseFile,
            &path,
            p.file_context.as_deref_mut(),
            p.handle_context.as_deref_mut(),
            |r| {
                let result = self.around(
                    r,
                    caller,
                    flags,
                    ControlFlags::FS_CE_BEFORE_CLOSE,
                    ControlFlags::FS_CE_AFTER_CLOSE,
                    |_| Ok(()),
                );
                self.cleanup(ContextKind::Handle, &mut *r.handle_context);
                if isolated.is_some() || last {
                    // An isolated open's own file context ends with it.
                    self.cleanup(ContextKind::File, &mut *r.file_context);
                }
                result
            },
        );
        if let (Some(i), Some(f)) = (&isolated, p.file_context.as_deref_mut()) {
            fsgate_core::sync::lock(&f.isolated).retain(|o| !Arc::ptr_eq(o, i));
            if last {
                self.cleanup(ContextKind::File, slot(&mut f.user));
            }
        }
        self.notify(
            flags,
            caller,
            Notice {
                modified: writing,
                ..notice(NotifyKind::CloseFile, &path)
            },
        );
        result.map(|_| ())
    }

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, OverlayFile>) -> Result<()> {
        let path = self.full(p.file_name);
        if let Some(size) = self.virtual_size(&path) {
            return self.virtual_info(p, &path, size);
        }
        let caller = Caller::of(&p.originator);
        if let Some(i) = isolated_for(p.file_context.as_deref(), caller) {
            return self.isolated_info(p, &path, &i, caller);
        }
        let flags = self.flags(&path, caller);
        let wanted =
            ControlFlags::FS_CE_BEFORE_QUERY_FILE_INFO | ControlFlags::FS_CE_AFTER_QUERY_FILE_INFO;
        if let Some(target) = self.redirect(&path, flags, caller)? {
            // An open redirected file answers through its descriptor: the target itself.
            let lower = p.file_context.as_deref().and_then(|f| f.lower.as_ref());
            let meta = match lower {
                Some(file) => file.metadata(),
                None => self
                    .open_target(&target, libc::O_PATH | libc::O_NOFOLLOW, 0)
                    .and_then(|f| f.metadata()),
            };
            match meta {
                Ok(m) => (p.file_exists, p.info) = (true, info_of(&m)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => p.file_exists = false,
                Err(e) => return Err(crate::direct::failed("stat (redirected)", &target, e)),
            }
            return Ok(());
        }
        let file = p.file_context.as_deref_mut();
        if !flags.control.intersects(wanted) {
            let mut lower = file.and_then(|f| f.lower.as_mut());
            let mut inner = GetFileInfoParams {
                originator: p.originator,
                file_name: p.file_name,
                file_exists: false,
                info: p.info.clone(),
                file_context: lower.take(),
            };
            self.plain.on_get_file_info(&mut inner)?;
            (p.file_exists, p.info) = (inner.file_exists, inner.info);
            return Ok(());
        }
        let (mut none_file, mut none_handle, mut listing) = (None, None, None);
        let (lower, file_slot) = match file {
            Some(f) => (f.lower.as_mut(), slot(&mut f.user)),
            None => (None, &mut none_file),
        };
        let mut r = FileRequest::new(
            RequestKind::QueryFileInfo,
            &path,
            file_slot,
            &mut none_handle,
            &mut listing,
        );
        let mut info = p.info.clone();
        let answered = self.around(
            &mut r,
            caller,
            flags,
            ControlFlags::FS_CE_BEFORE_QUERY_FILE_INFO,
            ControlFlags::FS_CE_AFTER_QUERY_FILE_INFO,
            |r| {
                let mut inner = GetFileInfoParams {
                    originator: p.originator,
                    file_name: p.file_name,
                    file_exists: false,
                    info: info.clone(),
                    file_context: lower,
                };
                self.plain.on_get_file_info(&mut inner)?;
                r.file_exists = inner.file_exists;
                r.directory = inner.info.kind == FileKind::Directory;
                r.size = Some(inner.info.size);
                r.mode = Some(inner.info.mode);
                info = inner.info;
                Ok(())
            },
        )?;
        // A Before handler that cleared `process_request` answered with `r` itself.
        let served = answered.is_none() && !r.process_request;
        if answered.is_some() || served {
            p.file_exists = r.file_exists;
            if served {
                info.kind = if r.directory {
                    FileKind::Directory
                } else {
                    FileKind::File
                };
            }
            if let Some(size) = r.size {
                info.size = size;
            }
            if let Some(mode) = r.mode {
                info.mode = mode & 0o7777;
            }
            p.info = info;
        } else {
            p.file_exists = false;
        }
        Ok(())
    }

    fn on_enumerate_directory(
        &self,
        p: &mut EnumerateDirectoryParams<'_, OverlayFile, OverlayHandle, OverlayListing>,
    ) -> Result<()> {
        if p.restart || p.enumeration_context.is_none() {
            let path = self.full(p.directory_name);
            let caller = Caller::of(&p.originator);
            let flags = self.flags(&path, caller);
            let mut listing = OverlayListing::default();
            let (mut none_file, mut none_handle) = (None, None);
            let file_slot = match p.file_context.as_deref_mut() {
                Some(f) => slot(&mut f.user),
                None => &mut none_file,
            };
            let handle_slot = match p.handle_context.as_deref_mut() {
                Some(h) => slot(&mut h.user),
                None => &mut none_handle,
            };
            let mut r = FileRequest::new(
                RequestKind::EnumerateDirectory,
                &path,
                file_slot,
                handle_slot,
                slot(&mut listing.user),
            );
            r.directory = true;
            let originator = p.originator;
            let directory_name = p.directory_name;
            let gathered = self.around(
                &mut r,
                caller,
                flags,
                ControlFlags::FS_CE_BEFORE_ENUMERATE_DIRECTORY,
                ControlFlags::FS_CE_AFTER_ENUMERATE_DIRECTORY,
                |r| {
                    r.entries = self.list(originator, directory_name)?;
                    self.add_virtual_entries(&path, &mut r.entries);
                    Ok(())
                },
            )?;
            if gathered.is_some() || !r.process_request {
                listing.entries = std::mem::take(&mut r.entries);
            }
            *p.enumeration_context = Some(listing);
        }
        let Some(listing) = p.enumeration_context.as_mut() else {
            return Ok(());
        };
        while let Some(entry) = listing.entries.get(listing.next) {
            listing.next += 1;
            let name = entry.name.as_bytes();
            if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
                continue;
            }
            p.file_found = true;
            p.file_name.clone_from(&entry.name);
            p.info.kind = entry.kind;
            p.info.file_id = if entry.file_id > 1 {
                entry.file_id
            } else {
                made_up_id(&entry.name)
            };
            break;
        }
        Ok(())
    }

    fn on_close_directory_enumeration(
        &self,
        p: &mut CloseDirectoryEnumerationParams<'_, OverlayFile, OverlayListing>,
    ) -> Result<()> {
        if let Some(listing) = p.enumeration_context.as_deref_mut() {
            self.cleanup(ContextKind::Enumeration, slot(&mut listing.user));
        }
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, OverlayFile, OverlayHandle>) -> Result<()> {
        let handle = p.handle_context;
        if handle.is_some_and(|h| h.virtual_file) {
            return self.read_virtual(p, &self.full(p.file_name));
        }
        if let Some(h) = handle {
            if let Some(i) = h.isolated.as_ref().filter(|i| i.file().is_none()) {
                return self.read_isolated(p, &self.full(p.file_name), i, h);
            }
        }
        let flags = match handle {
            Some(h) => h.flags,
            None => self.flags(&self.full(p.file_name), Caller::of(&p.originator)),
        };
        let caller = Caller::of(&p.originator);
        let path = self.full(p.file_name);
        if flags.control.contains(ControlFlags::FS_CE_BEFORE_READ) {
            let event = caller.control(ControlKind::ReadFile, &path, true, false);
            self.shared.handler.on_before_read_file(&event)?;
        }
        let mut inner = ReadFileParams {
            originator: p.originator,
            file_name: p.file_name,
            position: p.position,
            buffer: &mut *p.buffer,
            bytes_read: 0,
            file_context: p.file_context.and_then(|f| f.lower.as_ref()),
            handle_context: handle.and_then(|h| h.lower.as_ref()),
        };
        let result = self.plain.on_read_file(&mut inner);
        let bytes_read = inner.bytes_read;
        let fire = flags.control.contains(ControlFlags::FS_CE_AFTER_READ)
            && (result.is_ok() || self.shared.process_failed_requests.load(Ordering::Relaxed));
        if !fire {
            result?;
            p.bytes_read = bytes_read;
            self.notify(flags, caller, notice(NotifyKind::ReadFile, &path));
            return Ok(());
        }
        let (mut file_ctx, mut handle_ctx, mut listing) = (None, None, None);
        let file_guard = match handle {
            Some(h) => h.file_user(p.file_context),
            None => p.file_context.map(|f| &f.user),
        }
        .map(|m| m.lock());
        let handle_guard = handle.map(|h| h.user.lock());
        let mut file_guard = file_guard.map(|g| g.unwrap_or_else(|e| e.into_inner()));
        let mut handle_guard = handle_guard.map(|g| g.unwrap_or_else(|e| e.into_inner()));
        let mut r = FileRequest::new(
            RequestKind::ReadFile,
            &path,
            match file_guard.as_deref_mut() {
                Some(s) => s,
                None => &mut file_ctx,
            },
            match handle_guard.as_deref_mut() {
                Some(s) => s,
                None => &mut handle_ctx,
            },
            &mut listing,
        );
        caller.fill(&mut r);
        r.offset = p.position;
        r.length = p.buffer.len();
        r.buffer = p.buffer[..bytes_read.min(p.buffer.len())].to_vec();
        r.result_code = errno_of(&result);
        self.shared.handler.on_after_read_file(&mut r)?;
        if r.result_code != 0 {
            return Err(Error::from_errno(
                r.result_code,
                format!("{path}: read failed by on_after_read_file"),
            ));
        }
        let n = r.buffer.len().min(p.buffer.len());
        p.buffer[..n].copy_from_slice(&r.buffer[..n]);
        p.bytes_read = n;
        self.notify(flags, caller, notice(NotifyKind::ReadFile, &path));
        Ok(())
    }

    fn on_write_file(&self, p: &mut WriteFileParams<'_, OverlayFile, OverlayHandle>) -> Result<()> {
        let path = self.full(p.file_name);
        if self.virtual_size(&path).is_some() {
            return Err(denied("change (a virtual file)", &path));
        }
        let caller = Caller::of(&p.originator);
        let flags = match p.handle_context.as_deref() {
            Some(h) => h.flags,
            None => self.flags(&path, caller),
        };
        let (mut none_file, mut none_handle, mut listing) = (None, None, None);
        let isolated = p.handle_context.as_deref().and_then(|h| h.isolated.clone());
        let mut own = isolated
            .as_ref()
            .map(|i| fsgate_core::sync::lock(&i.file_context));
        let (lower_file, shared_slot) = match p.file_context.as_deref_mut() {
            Some(f) => (f.lower.as_mut(), slot(&mut f.user)),
            None => (None, &mut none_file),
        };
        let file_slot = match own.as_deref_mut() {
            Some(s) => s,
            None => shared_slot,
        };
        let (lower_handle, handle_slot) = match p.handle_context.as_deref_mut() {
            Some(h) => (h.lower.as_mut(), slot(&mut h.user)),
            None => (None, &mut none_handle),
        };
        let mut r = FileRequest::new(
            RequestKind::WriteFile,
            &path,
            file_slot,
            handle_slot,
            &mut listing,
        );
        if isolated.as_ref().is_some_and(|i| i.file().is_none()) {
            caller.fill(&mut r);
            p.bytes_written = self.write_isolated(&mut r, p.buffer, p.position)?;
            return Ok(());
        }
        r.offset = p.position;
        r.length = p.buffer.len();
        if flags.control.contains(ControlFlags::FS_CE_BEFORE_WRITE) {
            r.buffer = p.buffer.to_vec();
        }
        let asked = p.buffer.len();
        let (originator, file_name, write_back) = (p.originator, p.file_name, p.write_back);
        let source: &[u8] = p.buffer;
        let written = self.around(
            &mut r,
            caller,
            flags,
            ControlFlags::FS_CE_BEFORE_WRITE,
            ControlFlags::FS_CE_AFTER_WRITE,
            |r| {
                let changed = flags.control.contains(ControlFlags::FS_CE_BEFORE_WRITE);
                let data = if changed { &r.buffer[..] } else { source };
                let mut inner = WriteFileParams {
                    originator,
                    file_name,
                    position: r.offset,
                    buffer: data,
                    write_back,
                    bytes_written: 0,
                    file_context: lower_file,
                    handle_context: lower_handle,
                };
                self.plain.on_write_file(&mut inner)?;
                // A handler that changed the data's length still owes the caller its count.
                Ok(if changed && inner.bytes_written == data.len() {
                    asked
                } else {
                    inner.bytes_written
                })
            },
        )?;
        p.bytes_written = written.unwrap_or(asked);
        self.notify(
            flags,
            caller,
            Notice {
                modified: true,
                ..notice(NotifyKind::WriteFile, &path)
            },
        );
        Ok(())
    }

    fn on_set_file_size(&self, p: &mut SetFileSizeParams<'_, OverlayFile>) -> Result<()> {
        let path = self.full(p.file_name);
        if self.virtual_size(&path).is_some() {
            return Err(denied("change (a virtual file)", &path));
        }
        let caller = Caller::of(&p.originator);
        let flags = self.flags(&path, caller);
        if flags
            .access
            .intersects(AccessFlags::ACCESS_READ_ONLY | AccessFlags::ACCESS_DENY_ALL)
        {
            self.report_denied(ControlKind::SetFileSize, &path, caller);
            return Err(denied("truncate", &path));
        }
        if let Some(i) = isolated_for(p.file_context.as_deref(), caller) {
            return self.resize_isolated(p, &path, &i, caller);
        }
        let (mut none_file, mut none_handle, mut listing) = (None, None, None);
        let (lower, file_slot) = file_parts(p.file_context.as_deref_mut(), &mut none_file);
        let mut r = FileRequest::new(
            RequestKind::SetFileInfo,
            &path,
            file_slot,
            &mut none_handle,
            &mut listing,
        );
        r.size = Some(p.size);
        let (originator, file_name) = (p.originator, p.file_name);
        let mut out = (p.info.clone(), p.info_filled);
        if lower.is_none() {
            if let Some(target) = self.redirect(&path, flags, caller)? {
                let file = self.open_target_for(&target, libc::O_WRONLY)?;
                file.set_len(p.size)
                    .map_err(|e| crate::direct::failed("truncate (redirected)", &target, e))?;
                (p.info, p.info_filled) =
                    (file.metadata().map(|m| info_of(&m)).unwrap_or(out.0), true);
                return Ok(());
            }
        }
        self.around(
            &mut r,
            caller,
            flags,
            ControlFlags::FS_CE_BEFORE_SET_SIZES,
            ControlFlags::FS_CE_AFTER_SET_SIZES,
            |r| {
                let mut inner = SetFileSizeParams {
                    originator,
                    file_name,
                    size: r.size.unwrap_or(0),
                    info: out.0.clone(),
                    info_filled: false,
                    file_context: lower,
                };
                self.plain.on_set_file_size(&mut inner)?;
                out = (inner.info, inner.info_filled);
                Ok(())
            },
        )?;
        (p.info, p.info_filled) = out;
        self.notify(
            flags,
            caller,
            Notice {
                modified: true,
                ..notice(NotifyKind::WriteFile, &path)
            },
        );
        Ok(())
    }

    fn on_set_allocation_size(
        &self,
        p: &mut SetAllocationSizeParams<'_, OverlayFile>,
    ) -> Result<()> {
        let mut backend =
            self.isolated_backend(p.file_context.as_deref(), &p.originator, p.file_name)?;
        let mut inner = SetAllocationSizeParams {
            originator: p.originator,
            file_name: p.file_name,
            allocation_size: p.allocation_size,
            keep_size: p.keep_size,
            file_context: match backend.as_mut() {
                Some(b) => Some(b),
                None => p.file_context.as_deref_mut().and_then(|f| f.lower.as_mut()),
            },
        };
        self.plain.on_set_allocation_size(&mut inner)
    }

    fn on_zeroize_file_range(&self, p: &mut ZeroizeFileRangeParams<'_, OverlayFile>) -> Result<()> {
        let mut backend =
            self.isolated_backend(p.file_context.as_deref(), &p.originator, p.file_name)?;
        let mut inner = ZeroizeFileRangeParams {
            originator: p.originator,
            file_name: p.file_name,
            position: p.position,
            length: p.length,
            deallocate: p.deallocate,
            keep_size: p.keep_size,
            file_context: match backend.as_mut() {
                Some(b) => Some(b),
                None => p.file_context.as_deref_mut().and_then(|f| f.lower.as_mut()),
            },
        };
        self.plain.on_zeroize_file_range(&mut inner)
    }

    fn on_copy_file_range(
        &self,
        p: &mut CopyFileRangeParams<'_, OverlayFile, OverlayHandle>,
    ) -> Result<()> {
        // Bytes copied inside the lower filesystem pass no data events: only files no data
        // event covers are copied there; the rest go through reads and writes.
        let covered = |h: Option<&OverlayHandle>| {
            h.is_some_and(|h| data_passes(h.flags) || h.isolated.is_some())
        };
        if covered(p.handle_context) || covered(p.target_handle_context) {
            return Err(Error::from_errno(
                libc::ENOSYS,
                "copy_file_range: a data event covers the file; the kernel copies through reads and writes",
            ));
        }
        let mut inner = CopyFileRangeParams {
            originator: p.originator,
            file_name: p.file_name,
            position: p.position,
            file_context: p.file_context.and_then(|f| f.lower.as_ref()),
            handle_context: p.handle_context.and_then(|h| h.lower.as_ref()),
            target_file_name: p.target_file_name,
            target_position: p.target_position,
            target_handle_context: p.target_handle_context.and_then(|h| h.lower.as_ref()),
            length: p.length,
            bytes_copied: 0,
        };
        self.plain.on_copy_file_range(&mut inner)?;
        p.bytes_copied = inner.bytes_copied;
        Ok(())
    }

    fn on_set_file_attributes(
        &self,
        p: &mut SetFileAttributesParams<'_, OverlayFile>,
    ) -> Result<()> {
        let path = self.full(p.file_name);
        if self.virtual_size(&path).is_some() {
            return Err(denied("change (a virtual file)", &path));
        }
        let caller = Caller::of(&p.originator);
        let flags = self.flags(&path, caller);
        let (mut none_file, mut none_handle, mut listing) = (None, None, None);
        let (lower, file_slot) = file_parts(p.file_context.as_deref_mut(), &mut none_file);
        let mut r = FileRequest::new(
            RequestKind::SetFileInfo,
            &path,
            file_slot,
            &mut none_handle,
            &mut listing,
        );
        r.mode = p.mode;
        let template = SetFileAttributesParams {
            originator: p.originator,
            file_name: p.file_name,
            mode: p.mode,
            creation_time: p.creation_time,
            last_access_time: p.last_access_time,
            last_write_time: p.last_write_time,
            change_time: p.change_time,
            info: p.info.clone(),
            info_filled: false,
            file_context: None,
        };
        let mut out = (p.info.clone(), p.info_filled);
        self.around(
            &mut r,
            caller,
            flags,
            ControlFlags::FS_CE_BEFORE_SET_ATTRIBUTES,
            ControlFlags::FS_CE_AFTER_SET_ATTRIBUTES,
            |r| {
                let mut inner = SetFileAttributesParams {
                    mode: r.mode,
                    file_context: lower,
                    info: template.info.clone(),
                    ..template
                };
                self.plain.on_set_file_attributes(&mut inner)?;
                out = (inner.info, inner.info_filled);
                Ok(())
            },
        )?;
        (p.info, p.info_filled) = out;
        self.notify(flags, caller, notice(NotifyKind::SetFileAttributes, &path));
        Ok(())
    }

    fn on_set_file_security(&self, p: &mut SetFileSecurityParams<'_, OverlayFile>) -> Result<()> {
        let path = self.full(p.file_name);
        if self.virtual_size(&path).is_some() {
            return Err(denied("change (a virtual file)", &path));
        }
        let caller = Caller::of(&p.originator);
        let flags = self.flags(&path, caller);
        let (mut none_file, mut none_handle, mut listing) = (None, None, None);
        let (lower, file_slot) = file_parts(p.file_context.as_deref_mut(), &mut none_file);
        let mut r = FileRequest::new(
            RequestKind::SetFileSecurity,
            &path,
            file_slot,
            &mut none_handle,
            &mut listing,
        );
        (r.owner, r.group) = (p.owner, p.group);
        let (originator, file_name) = (p.originator, p.file_name);
        let mut out = (p.info.clone(), p.info_filled);
        self.around(
            &mut r,
            caller,
            flags,
            ControlFlags::FS_CE_BEFORE_SET_SECURITY,
            ControlFlags::FS_CE_AFTER_SET_SECURITY,
            |r| {
                let mut inner = SetFileSecurityParams {
                    originator,
                    file_name,
                    owner: r.owner,
                    group: r.group,
                    info: out.0.clone(),
                    info_filled: false,
                    file_context: lower,
                };
                self.plain.on_set_file_security(&mut inner)?;
                out = (inner.info, inner.info_filled);
                Ok(())
            },
        )?;
        (p.info, p.info_filled) = out;
        self.notify(flags, caller, notice(NotifyKind::SetFileAttributes, &path));
        Ok(())
    }

    fn on_rename_or_move_file(
        &self,
        p: &mut RenameOrMoveFileParams<'_, OverlayFile>,
    ) -> Result<()> {
        let path = self.full(p.file_name);
        if self.virtual_size(&path).is_some() {
            return Err(denied("change (a virtual file)", &path));
        }
        let new_path = self.full(p.new_file_name);
        let caller = Caller::of(&p.originator);
        let flags = self.flags(&path, caller);
        if flags.access.contains(AccessFlags::ACCESS_RENAME_PROTECT) {
            self.report_denied(ControlKind::RenameOrMoveFile, &path, caller);
            return Err(denied("rename", &path));
        }
        if self.protected_target(&new_path, caller) {
            self.report_denied(ControlKind::RenameOrMoveFile, &new_path, caller);
            return Err(denied("rename over", &new_path));
        }
        let (mut none_file, mut none_handle, mut listing) = (None, None, None);
        let (lower, file_slot) = file_parts(p.file_context.as_deref_mut(), &mut none_file);
        let mut r = FileRequest::new(
            RequestKind::RenameOrMoveFile,
            &path,
            file_slot,
            &mut none_handle,
            &mut listing,
        );
        r.new_file_name = Some(&new_path);
        r.replace_existing = p.replace_existing;
        let (originator, file_name, new_file_name, replace) = (
            p.originator,
            p.file_name,
            p.new_file_name,
            p.replace_existing,
        );
        self.around(
            &mut r,
            caller,
            flags,
            ControlFlags::FS_CE_BEFORE_RENAME,
            ControlFlags::FS_CE_AFTER_RENAME,
            |_| {
                self.plain
                    .on_rename_or_move_file(&mut RenameOrMoveFileParams {
                        originator,
                        file_name,
                        new_file_name,
                        replace_existing: replace,
                        file_context: lower,
                    })
            },
        )?;
        self.notify(
            flags,
            caller,
            Notice {
                new_path: Some(&new_path),
                ..notice(NotifyKind::RenameOrMoveFile, &path)
            },
        );
        Ok(())
    }

    fn on_exchange_files(&self, p: &mut ExchangeFilesParams<'_>) -> Result<()> {
        let caller = Caller::of(&p.originator);
        for name in [p.file_name, p.new_file_name] {
            let path = self.full(name);
            if self
                .flags(&path, caller)
                .access
                .intersects(AccessFlags::ACCESS_RENAME_PROTECT | AccessFlags::ACCESS_DELETE_PROTECT)
            {
                return Err(denied("exchange", &path));
            }
        }
        self.plain.on_exchange_files(p)
    }

    fn on_can_file_be_deleted(
        &self,
        p: &mut CanFileBeDeletedParams<'_, OverlayFile>,
    ) -> Result<()> {
        let path = self.full(p.file_name);
        let caller = Caller::of(&p.originator);
        let flags = self.flags(&path, caller);
        if flags.access.contains(AccessFlags::ACCESS_DELETE_PROTECT) {
            self.report_denied(ControlKind::DeleteFile, &path, caller);
            return Err(denied("delete", &path));
        }
        let (mut none_file, mut none_handle, mut listing) = (None, None, None);
        let file_slot = match p.file_context.as_deref_mut() {
            Some(f) => slot(&mut f.user),
            None => &mut none_file,
        };
        let mut r = FileRequest::new(
            RequestKind::CanFileBeDeleted,
            &path,
            file_slot,
            &mut none_handle,
            &mut listing,
        );
        r.directory = p.is_directory;
        self.around(
            &mut r,
            caller,
            flags,
            ControlFlags::FS_CE_BEFORE_CAN_DELETE,
            ControlFlags::FS_CE_AFTER_CAN_DELETE,
            |_| Ok(()),
        )?;
        Ok(())
    }

    fn on_delete_file(&self, p: &mut DeleteFileParams<'_, OverlayFile>) -> Result<()> {
        let path = self.full(p.file_name);
        let caller = Caller::of(&p.originator);
        if self.virtual_size(&path).is_some() {
            // `on_before_delete_file` always fires for a virtual file; allowed, it goes.
            let (mut file, mut handle, mut listing) = (None, None, None);
            let mut r = FileRequest::new(
                RequestKind::DeleteFile,
                &path,
                &mut file,
                &mut handle,
                &mut listing,
            );
            caller.fill(&mut r);
            self.shared.handler.on_before_delete_file(&mut r)?;
            fsgate_core::sync::write(&self.shared.virtual_files).remove(&path);
            return Ok(());
        }
        let flags = self.flags(&path, caller);
        if flags.access.contains(AccessFlags::ACCESS_DELETE_PROTECT) {
            return Err(denied("delete", &path));
        }
        let (mut none_file, mut none_handle, mut listing) = (None, None, None);
        let (lower, file_slot) = file_parts(p.file_context.as_deref_mut(), &mut none_file);
        let mut r = FileRequest::new(
            RequestKind::DeleteFile,
            &path,
            file_slot,
            &mut none_handle,
            &mut listing,
        );
        r.directory = p.is_directory;
        let (originator, file_name, is_directory) = (p.originator, p.file_name, p.is_directory);
        self.around(
            &mut r,
            caller,
            flags,
            ControlFlags::FS_CE_BEFORE_DELETE,
            ControlFlags::FS_CE_AFTER_DELETE,
            |_| {
                self.plain.on_delete_file(&mut DeleteFileParams {
                    originator,
                    file_name,
                    is_directory,
                    file_context: lower,
                })
            },
        )?;
        self.notify(
            flags,
            caller,
            Notice {
                directory: is_directory,
                ..notice(NotifyKind::DeleteFile, &path)
            },
        );
        Ok(())
    }

    fn on_is_directory_empty(&self, p: &mut IsDirectoryEmptyParams<'_>) -> Result<()> {
        self.plain.on_is_directory_empty(p)
    }

    fn on_flush_file(&self, p: &mut FlushFileParams<'_, OverlayFile, OverlayHandle>) -> Result<()> {
        let mut inner = FlushFileParams {
            originator: p.originator,
            file_name: p.file_name,
            data_only: p.data_only,
            file_context: p.file_context.as_deref_mut().and_then(|f| f.lower.as_mut()),
            handle_context: p
                .handle_context
                .as_deref_mut()
                .and_then(|h| h.lower.as_mut()),
        };
        self.plain.on_flush_file(&mut inner)
    }

    fn on_create_hard_link(&self, p: &mut CreateHardLinkParams<'_>) -> Result<()> {
        let path = self.full(p.link_name);
        let caller = Caller::of(&p.originator);
        if let Err(e) = self.check_open(self.flags(&path, caller), &path, 0, true) {
            self.report_denied(ControlKind::CreateFile, &path, caller);
            return Err(e);
        }
        self.plain.on_create_hard_link(p)
    }

    fn on_create_symbolic_link(&self, p: &mut CreateSymbolicLinkParams<'_>) -> Result<()> {
        let path = self.full(p.file_name);
        let caller = Caller::of(&p.originator);
        if let Err(e) = self.check_open(self.flags(&path, caller), &path, 0, true) {
            self.report_denied(ControlKind::CreateFile, &path, caller);
            return Err(e);
        }
        self.plain.on_create_symbolic_link(p)
    }

    fn on_get_symbolic_link_target(&self, p: &mut GetSymbolicLinkTargetParams<'_>) -> Result<()> {
        self.plain.on_get_symbolic_link_target(p)
    }

    fn on_get_ea(&self, p: &mut GetEaParams<'_>) -> Result<()> {
        self.plain.on_get_ea(p)
    }

    fn on_set_ea(&self, p: &mut SetEaParams<'_>) -> Result<()> {
        self.plain.on_set_ea(p)
    }

    fn on_list_eas(&self, p: &mut ListEasParams<'_>) -> Result<()> {
        self.plain.on_list_eas(p)
    }

    fn on_remove_ea(&self, p: &mut RemoveEaParams<'_>) -> Result<()> {
        self.plain.on_remove_ea(p)
    }
}

impl<H: FilterEvents> OverlayDrive<H> {
    /// Every entry of the lower directory `name`, through the mirror's listing.
    fn list(&self, originator: Originator, name: &Path) -> Result<Vec<DirectoryEntry>> {
        let mut listing: Option<Listing> = None;
        let mut entries = Vec::new();
        let mut restart = true;
        loop {
            let mut p = EnumerateDirectoryParams {
                originator,
                directory_name: name,
                mask: "*",
                case_sensitive: true,
                restart,
                file_found: false,
                file_name: OsString::new(),
                info: FileInfo::new(FileKind::File, 0, 0, std::time::UNIX_EPOCH),
                file_context: None,
                handle_context: None,
                enumeration_context: &mut listing,
            };
            self.plain.on_enumerate_directory(&mut p)?;
            if !p.file_found {
                return Ok(entries);
            }
            entries.push(DirectoryEntry {
                name: std::mem::take(&mut p.file_name),
                kind: p.info.kind,
                file_id: p.info.file_id,
            });
            restart = false;
        }
    }
}

/// An inode number for an entry an After-enumeration handler added without one: a hash of
/// its name with the top bit set, far from the lower filesystem's numbers.
pub(super) fn made_up_id(name: &std::ffi::OsStr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    h.finish() | (1 << 63)
}
