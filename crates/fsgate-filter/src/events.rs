//! The events an application receives, with the reference's names and parameters.

pub use fsgate_core::dispatch::Hooks;
use fsgate_core::Result;

pub use crate::overlay::request::{
    Context, ContextKind, DirectoryEntry, FileRequest, ReparseFileName, RequestKind,
};
use crate::volumes::Volume;

/// Which notification an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotifyKind {
    /// `on_notify_create_file`.
    CreateFile,
    /// `on_notify_open_file`.
    OpenFile,
    /// `on_notify_execute_file` (opened for execution).
    ExecuteFile,
    /// `on_notify_read_file`.
    ReadFile,
    /// `on_notify_write_file`.
    WriteFile,
    /// `on_notify_set_file_attributes`.
    SetFileAttributes,
    /// `on_notify_close_file`.
    CloseFile,
    /// `on_notify_rename_or_move_file`.
    RenameOrMoveFile,
    /// `on_notify_delete_file`.
    DeleteFile,
}

impl NotifyKind {
    /// The event name without `on_` (`notify_create_file`, …), as the CLI prints it.
    pub fn event_name(self) -> &'static str {
        match self {
            NotifyKind::CreateFile => "notify_create_file",
            NotifyKind::OpenFile => "notify_open_file",
            NotifyKind::ExecuteFile => "notify_execute_file",
            NotifyKind::ReadFile => "notify_read_file",
            NotifyKind::WriteFile => "notify_write_file",
            NotifyKind::SetFileAttributes => "notify_set_file_attributes",
            NotifyKind::CloseFile => "notify_close_file",
            NotifyKind::RenameOrMoveFile => "notify_rename_or_move_file",
            NotifyKind::DeleteFile => "notify_delete_file",
        }
    }

    /// Every kind, in the order events carried by one kernel record are fired.
    pub const ALL: [NotifyKind; 9] = [
        NotifyKind::CreateFile,
        NotifyKind::OpenFile,
        NotifyKind::ExecuteFile,
        NotifyKind::ReadFile,
        NotifyKind::WriteFile,
        NotifyKind::SetFileAttributes,
        NotifyKind::CloseFile,
        NotifyKind::RenameOrMoveFile,
        NotifyKind::DeleteFile,
    ];
}

/// Parameters of a notification event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyEvent {
    /// Which event.
    pub kind: NotifyKind,
    /// Full path; `ID|<hex handle>` when the kernel's id could not be resolved to a path
    /// (the object or its directory was already gone).
    pub file_name: String,
    /// The new path of a rename.
    pub new_file_name: Option<String>,
    /// Whether the object is a directory.
    pub directory: bool,
    /// For `on_notify_close_file`: whether the handle had been opened for writing.
    pub modified: bool,
    /// Originator process id.
    pub process_id: u32,
    /// Originator process name (`/proc/<pid>/comm`; empty when it already exited).
    pub process_name: String,
    /// Originator real uid, read from `/proc/<pid>/status` when the listener handles the
    /// event: a process that exited or changed ids in between is reported as it is then
    /// (`None` once it is gone).
    pub user_id: Option<u32>,
}

/// Parameters of `on_before_filter_attach_to_volume`.
#[derive(Clone, Debug)]
pub struct AttachToVolume {
    /// The mount about to be attached.
    pub volume: Volume,
    /// Set to true to leave this mount alone.
    pub skip_volume: bool,
}

/// Events of the monitor class (and the notification half of the filter class).
///
/// Every method has a default: notifications go to [`on_notify`](Self::on_notify) (a
/// catch-all, fsgate addition, that does nothing by default), volumes are attached. Errors
/// outside a handler's reach (a queue overflow, a handler panic, a mark that could not be
/// placed) and worker threads go to the [`Hooks`] every class shares. Handlers run on the dispatcher's worker threads. A notification handler's
/// `Err` is logged and otherwise ignored: the operation already happened.
pub trait MonitorEvents: Hooks + Send + Sync + 'static {
    /// Catch-all that each `on_notify_*` method calls by default.
    fn on_notify(&self, _event: &NotifyEvent) -> Result<()> {
        Ok(())
    }
    /// A file or directory was created.
    fn on_notify_create_file(&self, e: &NotifyEvent) -> Result<()> {
        self.on_notify(e)
    }
    /// A file or directory was opened.
    fn on_notify_open_file(&self, e: &NotifyEvent) -> Result<()> {
        self.on_notify(e)
    }
    /// A file was opened for execution.
    fn on_notify_execute_file(&self, e: &NotifyEvent) -> Result<()> {
        self.on_notify(e)
    }
    /// A file was read.
    fn on_notify_read_file(&self, e: &NotifyEvent) -> Result<()> {
        self.on_notify(e)
    }
    /// A file was written.
    fn on_notify_write_file(&self, e: &NotifyEvent) -> Result<()> {
        self.on_notify(e)
    }
    /// Mode, owner, times or extended attributes changed.
    fn on_notify_set_file_attributes(&self, e: &NotifyEvent) -> Result<()> {
        self.on_notify(e)
    }
    /// A handle was closed (`modified`: it had been opened for writing).
    fn on_notify_close_file(&self, e: &NotifyEvent) -> Result<()> {
        self.on_notify(e)
    }
    /// A file or directory was renamed or moved (`file_name` → `new_file_name`).
    fn on_notify_rename_or_move_file(&self, e: &NotifyEvent) -> Result<()> {
        self.on_notify(e)
    }
    /// A file or directory was deleted.
    fn on_notify_delete_file(&self, e: &NotifyEvent) -> Result<()> {
        self.on_notify(e)
    }
    /// A mount is about to be attached; set `skip_volume` to leave it alone.
    fn on_before_filter_attach_to_volume(&self, _p: &mut AttachToVolume) -> Result<()> {
        Ok(())
    }
    /// A mount was attached (marked).
    fn on_after_filter_attach_to_volume(&self, _volume: &Volume) {}
    /// An attached mount went away (or the filter stopped).
    fn on_after_filter_detach_from_volume(&self, _volume: &Volume) {}

    /// Routes a notification to its method.
    fn fire_notify(&self, e: &NotifyEvent) -> Result<()> {
        match e.kind {
            NotifyKind::CreateFile => self.on_notify_create_file(e),
            NotifyKind::OpenFile => self.on_notify_open_file(e),
            NotifyKind::ExecuteFile => self.on_notify_execute_file(e),
            NotifyKind::ReadFile => self.on_notify_read_file(e),
            NotifyKind::WriteFile => self.on_notify_write_file(e),
            NotifyKind::SetFileAttributes => self.on_notify_set_file_attributes(e),
            NotifyKind::CloseFile => self.on_notify_close_file(e),
            NotifyKind::RenameOrMoveFile => self.on_notify_rename_or_move_file(e),
            NotifyKind::DeleteFile => self.on_notify_delete_file(e),
        }
    }
}

/// Which permission event a control event or access decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlKind {
    /// `on_before_create_file` (`O_CREAT | O_EXCL`).
    CreateFile,
    /// `on_before_open_file`.
    OpenFile,
    /// `on_before_read_file`.
    ReadFile,
    /// `on_before_execute`.
    Execute,
    /// A delete refused by `ACCESS_DELETE_PROTECT` (overlay; `on_access_denied` only).
    DeleteFile,
    /// A rename refused by `ACCESS_RENAME_PROTECT`, or one over a protected file (overlay;
    /// `on_access_denied` only).
    RenameOrMoveFile,
    /// A size change refused by `ACCESS_READ_ONLY` (overlay; `on_access_denied` only).
    SetFileSize,
}

impl ControlKind {
    /// The event name without `on_`.
    pub fn event_name(self) -> &'static str {
        match self {
            ControlKind::CreateFile => "before_create_file",
            ControlKind::OpenFile => "before_open_file",
            ControlKind::ReadFile => "before_read_file",
            ControlKind::Execute => "before_execute",
            ControlKind::DeleteFile => "delete_file",
            ControlKind::RenameOrMoveFile => "rename_or_move_file",
            ControlKind::SetFileSize => "set_file_size",
        }
    }
}

/// Parameters of a control (Before) event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlEvent {
    /// Which event.
    pub kind: ControlKind,
    /// Full path of the file (what the kernel's descriptor resolves to).
    pub file_name: String,
    /// Originator process id (use `get_originator_*` for more).
    pub process_id: u32,
    /// Originator thread id.
    pub thread_id: u32,
    /// Originator name (`/proc/<pid>/comm`), read while the caller waits.
    pub process_name: String,
    /// For opens: the caller asked for read access.
    pub read_access: bool,
    /// For opens: the caller asked for write access (or truncation).
    pub write_access: bool,
    /// `Isolate`, for `on_before_create_file` and `on_before_open_file` on the overlay
    /// backend: set it to give this open its own view of the file, served from
    /// [`backend_file_name`](Self::backend_file_name) (see [`crate::overlay`], "Isolation").
    /// Pre-filled with false (true for a virtual file's open). On the fanotify backend an
    /// open whose handler sets it is refused (`EPERM`, and `on_error` says why).
    pub isolate: bool,
    /// `BackendFileName`, with [`isolate`](Self::isolate): where the isolated open's data and
    /// information come from. Pre-filled with [`file_name`](Self::file_name) (the file itself,
    /// with a cache of its own); the full path of another file (its content and information
    /// are what the isolated open sees, and its writes land there); or empty (the events
    /// provide everything: they fire for the open's requests without rules).
    pub backend_file_name: String,
    /// `ProcessRequest`, for `on_before_create_file` and `on_before_open_file` on the overlay
    /// backend: true (the default) lets the open reach the directory; false means the handler
    /// serves the open itself. The open then succeeds without touching the directory (a
    /// create makes no name on disk), is isolated with no backend file whatever
    /// [`isolate`](Self::isolate) says, and its requests are served by the events (see
    /// [`crate::overlay`], "Isolation"); no After event fires for it. To fail the open,
    /// return an error instead. On the fanotify backend an open whose handler clears it is
    /// refused (`EPERM`, and `on_error` says why).
    pub process_request: bool,
}

/// Events of the filter class: the monitor's events plus the control events.
///
/// A control handler's `Ok` lets the operation proceed; `Err` fails it: on the fanotify
/// backend the caller's system call returns `EPERM` (fanotify lets a content filter deny
/// only with `EPERM`), on the overlay the error's own errno. Defaults allow. The
/// [`FileRequest`] events fire only on the overlay backend (see [`crate::overlay`]).
pub trait FilterEvents: MonitorEvents {
    /// An `open(2)` with `O_CREAT | O_EXCL` (the reference's CREATE_NEW), before it succeeds
    /// (on the overlay: any create of a new name). On the overlay it may isolate the open
    /// ([`ControlEvent::isolate`]).
    fn on_before_create_file(&self, _e: &mut ControlEvent) -> Result<()> {
        Ok(())
    }
    /// Any other open (including `O_CREAT` without `O_EXCL`), before it succeeds. On the
    /// overlay it may isolate the open ([`ControlEvent::isolate`]).
    fn on_before_open_file(&self, _e: &mut ControlEvent) -> Result<()> {
        Ok(())
    }
    /// A `read(2)`-family call, before it reads.
    fn on_before_read_file(&self, _e: &ControlEvent) -> Result<()> {
        Ok(())
    }
    /// An `execve(2)` of the file, before it runs.
    fn on_before_execute(&self, _e: &ControlEvent) -> Result<()> {
        Ok(())
    }
    /// An access rule denied an operation without calling a handler (fsgate addition, fired
    /// asynchronously after the verdict, for logging).
    fn on_access_denied(&self, _e: &ControlEvent) {}
    /// A name was created (overlay). Fires for rules with `FS_CE_AFTER_CREATE`.
    fn on_after_create_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// An existing file or directory was opened (overlay). Fires for rules with `FS_CE_AFTER_OPEN`.
    fn on_after_open_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// Data was read: `buffer` holds it, and what the handler leaves there is what the caller gets (overlay). Fires for rules with `FS_CE_AFTER_READ`.
    fn on_after_read_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// Data is about to be written: `buffer` holds it, and what the handler leaves there is what lands (overlay). Fires for rules with `FS_CE_BEFORE_WRITE`.
    fn on_before_write_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// Data was written (overlay). Fires for rules with `FS_CE_AFTER_WRITE`.
    fn on_after_write_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A lookup or `stat` (overlay). `Err(ENOENT)` makes the name not exist. Fires for rules with `FS_CE_BEFORE_QUERY_FILE_INFO`.
    fn on_before_query_file_info(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A lookup or `stat` was answered (overlay); `file_exists = false` hides the name. Fires for rules with `FS_CE_AFTER_QUERY_FILE_INFO`.
    fn on_after_query_file_info(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A size, mode or time change (overlay). Fires for rules with `FS_CE_BEFORE_SET_SIZES / _ATTRIBUTES`.
    fn on_before_set_file_info(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A size, mode or time change was made (overlay). Fires for rules with `FS_CE_AFTER_SET_SIZES / _ATTRIBUTES`.
    fn on_after_set_file_info(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// An owner or group change (overlay). Fires for rules with `FS_CE_BEFORE_SET_SECURITY`.
    fn on_before_set_file_security(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// An owner or group change was made (overlay). Fires for rules with `FS_CE_AFTER_SET_SECURITY`.
    fn on_after_set_file_security(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// Whether a delete may go on (overlay); `Err` refuses it. Fires for rules with `FS_CE_BEFORE_CAN_DELETE`.
    fn on_before_can_file_be_deleted(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A delete was allowed (overlay). Fires for rules with `FS_CE_AFTER_CAN_DELETE`.
    fn on_after_can_file_be_deleted(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A delete (overlay). Fires for rules with `FS_CE_BEFORE_DELETE`.
    fn on_before_delete_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A delete was made (overlay). Fires for rules with `FS_CE_AFTER_DELETE`.
    fn on_after_delete_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A rename or move (overlay). Fires for rules with `FS_CE_BEFORE_RENAME`.
    fn on_before_rename_or_move_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A rename or move was made (overlay). Fires for rules with `FS_CE_AFTER_RENAME`.
    fn on_after_rename_or_move_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A listing starts (overlay). Fires for rules with `FS_CE_BEFORE_ENUMERATE_DIRECTORY`.
    fn on_before_enumerate_directory(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A listing was read: `entries` may be edited (overlay). Fires for rules with `FS_CE_AFTER_ENUMERATE_DIRECTORY`.
    fn on_after_enumerate_directory(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A descriptor is closed (overlay). Fires for rules with `FS_CE_BEFORE_CLEANUP`.
    fn on_before_cleanup_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A descriptor was closed (overlay). Fires for rules with `FS_CE_AFTER_CLEANUP`.
    fn on_after_cleanup_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A handle's last descriptor went (overlay). Fires for rules with `FS_CE_BEFORE_CLOSE`.
    fn on_before_close_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A handle was closed (overlay); its contexts go after this event. Fires for rules with `FS_CE_AFTER_CLOSE`.
    fn on_after_close_file(&self, _r: &mut FileRequest<'_>) -> Result<()> {
        Ok(())
    }
    /// A name a rule with `FS_CE_REPARSE_FILENAME` covers is looked up or opened (overlay):
    /// set `new_file_name` to serve it from another path (a file anywhere: its content and
    /// information are what processes see under the asked name).
    fn on_reparse_file_name(&self, _r: &mut ReparseFileName) -> Result<()> {
        Ok(())
    }

    /// A file, handle or enumeration context is about to be dropped: the last event of its
    /// lifetime (overlay). Event contexts never reach it (they go after their After event).
    fn on_cleanup_context(&self, _kind: ContextKind, _context: &mut Context) {}

    /// Routes a Before event to its method (create and open have their own, with a
    /// [`ControlEvent`]: the overlay fires those).
    fn fire_before(&self, r: &mut FileRequest<'_>) -> Result<()> {
        match r.kind {
            RequestKind::WriteFile => self.on_before_write_file(r),
            RequestKind::QueryFileInfo => self.on_before_query_file_info(r),
            RequestKind::SetFileInfo => self.on_before_set_file_info(r),
            RequestKind::SetFileSecurity => self.on_before_set_file_security(r),
            RequestKind::CanFileBeDeleted => self.on_before_can_file_be_deleted(r),
            RequestKind::DeleteFile => self.on_before_delete_file(r),
            RequestKind::RenameOrMoveFile => self.on_before_rename_or_move_file(r),
            RequestKind::EnumerateDirectory => self.on_before_enumerate_directory(r),
            RequestKind::CleanupFile => self.on_before_cleanup_file(r),
            RequestKind::CloseFile => self.on_before_close_file(r),
            RequestKind::CreateFile | RequestKind::OpenFile | RequestKind::ReadFile => Ok(()),
        }
    }

    /// Routes an After event to its method.
    fn fire_after(&self, r: &mut FileRequest<'_>) -> Result<()> {
        match r.kind {
            RequestKind::CreateFile => self.on_after_create_file(r),
            RequestKind::OpenFile => self.on_after_open_file(r),
            RequestKind::ReadFile => self.on_after_read_file(r),
            RequestKind::WriteFile => self.on_after_write_file(r),
            RequestKind::QueryFileInfo => self.on_after_query_file_info(r),
            RequestKind::SetFileInfo => self.on_after_set_file_info(r),
            RequestKind::SetFileSecurity => self.on_after_set_file_security(r),
            RequestKind::CanFileBeDeleted => self.on_after_can_file_be_deleted(r),
            RequestKind::DeleteFile => self.on_after_delete_file(r),
            RequestKind::RenameOrMoveFile => self.on_after_rename_or_move_file(r),
            RequestKind::EnumerateDirectory => self.on_after_enumerate_directory(r),
            RequestKind::CleanupFile => self.on_after_cleanup_file(r),
            RequestKind::CloseFile => self.on_after_close_file(r),
        }
    }
    /// A process reads (or writes, or faults in) a range of a placeholder that is not filled
    /// yet: put the data of `offset .. offset + buffer.len()` into `buffer`. The process
    /// waits until the handler returns and the filter has written the buffer into the file;
    /// each range is asked for once. `Err` fails the process's call (see
    /// [`crate::placeholder`] for the errno). The default refuses, so an application that
    /// creates placeholders must implement it.
    fn on_hydrate_file(&self, e: &mut HydrateFile) -> Result<()> {
        Err(fsgate_core::Error::from_code(
            fsgate_core::code::ERROR_NOT_SUPPORTED,
            format!("no on_hydrate_file handler for {}", e.file_name),
        ))
    }
}

/// Parameters of `on_hydrate_file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HydrateFile {
    /// Full path of the placeholder.
    pub file_name: String,
    /// Where the requested range starts.
    pub offset: u64,
    /// The placeholder's final size.
    pub file_size: u64,
    /// The process whose access needs the data.
    pub process_id: u32,
    /// Zeroed, as long as the range (at most [`crate::placeholder::MAX_HYDRATE_CHUNK`]):
    /// the handler fills it and must not change its length.
    pub buffer: Vec<u8>,
}
