//! The parameters of the overlay's Before and After events: one [`FileRequest`] per
//! operation, filled by the library and handed to the Before handler, then (after the lower
//! directory served it) to the After handler.

use std::any::Any;
use std::ffi::OsString;

/// A context value: whatever the application stores (its `Drop` is the last cleanup; the
/// library fires [`on_cleanup_context`](crate::events::FilterEvents::on_cleanup_context)
/// first for file, handle and enumeration contexts).
pub type Context = Box<dyn Any + Send + Sync>;

/// Which operation a [`FileRequest`] is about; also names its Before/After events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A name is created (file, directory, FIFO, socket, device node).
    CreateFile,
    /// An existing file or directory is opened.
    OpenFile,
    /// Data is read.
    ReadFile,
    /// Data is written.
    WriteFile,
    /// A lookup or `stat`.
    QueryFileInfo,
    /// A change of size, mode or times.
    SetFileInfo,
    /// A change of owner or group.
    SetFileSecurity,
    /// Whether a delete may go on.
    CanFileBeDeleted,
    /// A delete (`unlink`, `rmdir`).
    DeleteFile,
    /// A rename or move.
    RenameOrMoveFile,
    /// A directory listing.
    EnumerateDirectory,
    /// A `close(2)` of a descriptor.
    CleanupFile,
    /// The last descriptor of a handle went.
    CloseFile,
}

impl RequestKind {
    /// The reference's event name without `on_before_`/`on_after_` (`create_file`, …).
    pub fn event_name(self) -> &'static str {
        match self {
            RequestKind::CreateFile => "create_file",
            RequestKind::OpenFile => "open_file",
            RequestKind::ReadFile => "read_file",
            RequestKind::WriteFile => "write_file",
            RequestKind::QueryFileInfo => "query_file_info",
            RequestKind::SetFileInfo => "set_file_info",
            RequestKind::SetFileSecurity => "set_file_security",
            RequestKind::CanFileBeDeleted => "can_file_be_deleted",
            RequestKind::DeleteFile => "delete_file",
            RequestKind::RenameOrMoveFile => "rename_or_move_file",
            RequestKind::EnumerateDirectory => "enumerate_directory",
            RequestKind::CleanupFile => "cleanup_file",
            RequestKind::CloseFile => "close_file",
        }
    }
}

/// Which context an [`on_cleanup_context`](crate::events::FilterEvents::on_cleanup_context)
/// is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextKind {
    /// A file's or directory's: from its first open to its last close.
    File,
    /// A handle's: from its open to its close.
    Handle,
    /// A listing's: from its first read to its close.
    Enumeration,
}

/// One entry of a listing, as `on_after_enumerate_directory` sees and edits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The entry's name (not a path).
    pub name: OsString,
    /// What it is (`readdir`'s `d_type`).
    pub kind: fsgate_vfs::FileKind,
    /// Its inode number (`d_ino`); 0 for an added entry makes the library pick one.
    pub file_id: u64,
}

/// The parameters of one Before or After event of the overlay.
///
/// The library fills the inputs; a Before handler may change the ones marked changeable
/// (the operation then uses the new values), set [`process_request`](Self::process_request)
/// to false to answer the request itself, and store an
/// [`event_context`](Self::event_context) that its After event receives. An After handler
/// sees [`result_code`](Self::result_code) (0 or the errno the operation failed with) and may
/// change it and the outputs. A handler's `Err` fails the caller's call with the error's
/// errno.
pub struct FileRequest<'a> {
    /// Which operation.
    pub kind: RequestKind,
    /// Full path of the object (as processes name it: under the filtered directory).
    pub file_name: &'a str,
    /// For a rename: the full new path.
    pub new_file_name: Option<&'a str>,
    /// Whether the object is a directory (when known).
    pub directory: bool,
    /// The requesting process (0: the kernel's own request, e.g. write-back).
    pub process_id: u32,
    /// The requesting thread.
    pub thread_id: u32,
    /// The requester's filesystem uid.
    pub user_id: u32,
    /// The requester's filesystem gid.
    pub group_id: u32,
    /// For create and open: the raw Linux open flags.
    pub flags: i32,
    /// For read and write: the file offset.
    pub offset: u64,
    /// Read: in the After event, the bytes read (change them, or truncate to return fewer).
    /// Write: in the Before event, the bytes to write (change them to write other bytes; the
    /// caller is told its own count was written). A virtual file's read reaches its After
    /// event with this empty: the handler puts up to `length` bytes from `offset` here.
    pub buffer: Vec<u8>,
    /// For a read: how many bytes the caller asked for.
    pub length: usize,
    /// For a size change: the new size (changeable in the Before event).
    pub size: Option<u64>,
    /// For a mode change: the new permission bits (changeable in the Before event).
    pub mode: Option<u32>,
    /// For a security change: the new owner (changeable in the Before event).
    pub owner: Option<u32>,
    /// For a security change: the new group (changeable in the Before event).
    pub group: Option<u32>,
    /// For a rename: whether an existing target is replaced.
    pub replace_existing: bool,
    /// For `on_after_query_file_info`: whether the object exists (set false to hide it:
    /// lookups then fail with `ENOENT`); its size and permission bits follow.
    pub file_exists: bool,
    /// For a listing's After event: the entries, which the handler may remove, change or add
    /// to (`.` and `..` are not among them).
    pub entries: Vec<DirectoryEntry>,
    /// In After events: 0 when the operation succeeded, else the errno it failed with
    /// (After events of failed operations fire only with
    /// [`process_failed_requests`](crate::filter::FileFilter::set_process_failed_requests)).
    /// Setting it makes the caller see that errno (0: success).
    pub result_code: i32,
    /// Before events: true (the default) lets the lower directory serve the request; false
    /// means the handler served it (its outputs are the answer) and no After event fires.
    pub process_request: bool,
    /// The file's context (per open file or directory), empty until a handler stores one.
    pub file_context: &'a mut Option<Context>,
    /// The handle's context (per open), empty until a handler stores one.
    pub handle_context: &'a mut Option<Context>,
    /// The enumeration's context, for listings.
    pub enumeration_context: &'a mut Option<Context>,
    /// A value a Before handler stores for its After event; dropped after the After event,
    /// or at once when no After event follows.
    pub event_context: Option<Context>,
}

impl<'a> FileRequest<'a> {
    /// A request of `kind` for `file_name` with every input empty and the given context
    /// slots.
    pub(crate) fn new(
        kind: RequestKind,
        file_name: &'a str,
        file_context: &'a mut Option<Context>,
        handle_context: &'a mut Option<Context>,
        enumeration_context: &'a mut Option<Context>,
    ) -> Self {
        Self {
            kind,
            file_name,
            new_file_name: None,
            directory: false,
            process_id: 0,
            thread_id: 0,
            user_id: 0,
            group_id: 0,
            flags: 0,
            offset: 0,
            buffer: Vec::new(),
            length: 0,
            size: None,
            mode: None,
            owner: None,
            group: None,
            replace_existing: false,
            file_exists: true,
            entries: Vec::new(),
            result_code: 0,
            process_request: true,
            file_context,
            handle_context,
            enumeration_context,
            event_context: None,
        }
    }
}

/// The parameters of `on_reparse_file_name`: a request for a name a rule with
/// `FS_CE_REPARSE_FILENAME` covers, before it is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReparseFileName {
    /// The full path asked for (after the reparse rules' redirections).
    pub file_name: String,
    /// Output: the full path to serve the request from instead; `None` (the default)
    /// leaves it alone.
    pub new_file_name: Option<String>,
    /// The requesting process.
    pub process_id: u32,
}
