//! The events an application receives, with the reference's names and parameters.

pub use fsgate_core::dispatch::Hooks;
use fsgate_core::Result;

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
}

impl ControlKind {
    /// The event name without `on_`.
    pub fn event_name(self) -> &'static str {
        match self {
            ControlKind::CreateFile => "before_create_file",
            ControlKind::OpenFile => "before_open_file",
            ControlKind::ReadFile => "before_read_file",
            ControlKind::Execute => "before_execute",
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
}

/// Events of the filter class: the monitor's events plus the control events.
///
/// A control handler's `Ok` lets the operation proceed; `Err` fails it: the caller's
/// system call returns `EPERM` (fanotify lets a content filter deny only with `EPERM`).
/// Defaults allow.
pub trait FilterEvents: MonitorEvents {
    /// An `open(2)` with `O_CREAT | O_EXCL` (the reference's CREATE_NEW), before it succeeds.
    fn on_before_create_file(&self, _e: &ControlEvent) -> Result<()> {
        Ok(())
    }
    /// Any other open (including `O_CREAT` without `O_EXCL`), before it succeeds.
    fn on_before_open_file(&self, _e: &ControlEvent) -> Result<()> {
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
