//! Isolation: an open that `on_before_create_file` or `on_before_open_file` isolated
//! (`Isolate`, `BackendFileName`) sees the file through a backend of its own, while the
//! file's other opens see the file itself (see the module docs of [`crate::overlay`]).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use fsgate_core::sync::lock;
use fsgate_core::{code, Error, Result};
use fsgate_vfs::{
    CreateFileParams, Events, FileInfo, GetFileInfoParams, ReadFileParams, SetFileSizeParams,
};

use crate::events::{Context, FileRequest, FilterEvents, RequestKind};
use crate::overlay::drive::{made_up_id, Caller, OverlayDrive, OverlayFile, OverlayHandle};

/// Where an isolated open's data and information come from.
pub(crate) enum Backend {
    /// A file (the filtered file itself or another one), opened for this open alone: its
    /// bytes and size are what the open sees, and its writes land there.
    File {
        /// The backend's full path.
        path: String,
        /// The backend, open for this open.
        file: Arc<File>,
    },
    /// Nothing: the events provide every byte and every piece of information.
    Events,
}

/// One isolated open.
pub(crate) struct Isolated {
    /// The process that opened it: requests without a handle (`stat`, `truncate`) from this
    /// process are answered through this open.
    pub(super) pid: u32,
    /// Its backend.
    pub(super) backend: Backend,
    /// Its own file context (the reference: isolated files have one per open).
    pub(super) file_context: Mutex<Option<Context>>,
}

impl Isolated {
    /// The backend file, when the open has one.
    pub(super) fn file(&self) -> Option<&Arc<File>> {
        match &self.backend {
            Backend::File { file, .. } => Some(file),
            Backend::Events => None,
        }
    }
}

/// The isolated open of `file` that requests without a handle from `caller` are answered
/// through: the newest one that process made. Costs nothing for files without one.
pub(super) fn isolated_for(file: Option<&OverlayFile>, caller: Caller) -> Option<Arc<Isolated>> {
    let opens = lock(&file?.isolated);
    if opens.is_empty() {
        return None;
    }
    let pid = caller.pid();
    opens.iter().rev().find(|i| i.pid == pid).cloned()
}

impl<H: FilterEvents> OverlayDrive<H> {
    /// Opens the backend `backend` for an isolated open of `path` with open `flags` (an
    /// empty name: no backend). A backend under the overlay's directory is opened through
    /// its descriptor; `create` makes a missing backend file (mode `mode`).
    pub(super) fn isolate(
        &self,
        path: &str,
        backend: &str,
        flags: i32,
        create: Option<u32>,
        caller: Caller,
    ) -> Result<Arc<Isolated>> {
        let backend = if backend.is_empty() {
            Backend::Events
        } else {
            if !backend.starts_with('/') {
                return Err(Error::invalid_argument(
                    "backend_file_name",
                    format!("'{backend}' for {path} is not a full path"),
                ));
            }
            let file = match create {
                Some(mode) => self
                    .open_target(
                        backend,
                        libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW,
                        mode,
                    )
                    .map_err(|e| crate::direct::failed("create (isolated backend)", backend, e))?,
                // With the caller's `O_APPEND`: the kernel places a direct write at the size
                // it last knew, which may be another caller's view; `pwrite` on an
                // `O_APPEND` descriptor appends at the backend's own end whatever the offset.
                None => {
                    let append = flags & libc::O_APPEND;
                    self.open_target(backend, libc::O_RDWR | libc::O_NOFOLLOW | append, 0)
                        .or_else(|_| {
                            let access = flags & libc::O_ACCMODE;
                            self.open_target(backend, access | libc::O_NOFOLLOW | append, 0)
                        })
                        .map_err(|e| crate::direct::failed("open (isolated backend)", backend, e))?
                }
            };
            Backend::File {
                path: backend.to_string(),
                file: Arc::new(file),
            }
        };
        Ok(Arc::new(Isolated {
            pid: caller.pid(),
            backend,
            file_context: Mutex::new(None),
        }))
    }

    /// `on_create_file` whose `on_before_create_file` cleared `process_request`: nothing is
    /// made on disk; the new handle is an isolated open without a backend (the events serve
    /// it), and the kernel is told of an empty file owned by the caller.
    pub(super) fn create_served(
        &self,
        p: &mut CreateFileParams<'_, OverlayFile, OverlayHandle>,
        path: &str,
        caller: Caller,
    ) -> Result<()> {
        let isolated = self.isolate(path, "", p.flags, None, caller)?;
        p.use_direct_io();
        p.info.file_id = made_up_id(std::ffi::OsStr::new(path));
        p.info_filled = true;
        *p.file_context = Some(OverlayFile {
            isolated: Mutex::new(vec![Arc::clone(&isolated)]),
            ..OverlayFile::default()
        });
        *p.handle_context = Some(OverlayHandle {
            writing: true,
            isolated: Some(isolated),
            ..OverlayHandle::default()
        });
        Ok(())
    }

    /// `on_get_file_info` for a process with an isolated open of the file: the file's own
    /// identity (kind, id, owner, mode) with the backend's size and times; with no backend,
    /// what `on_before_query_file_info` (fired without rules) leaves, starting from the
    /// file's own information (the file exists for the open: `file_exists` starts true).
    pub(super) fn isolated_info(
        &self,
        p: &mut GetFileInfoParams<'_, OverlayFile>,
        path: &str,
        isolated: &Isolated,
        caller: Caller,
    ) -> Result<()> {
        let mut inner = GetFileInfoParams {
            originator: p.originator,
            file_name: p.file_name,
            file_exists: false,
            info: p.info.clone(),
            file_context: p.file_context.as_deref_mut().and_then(|f| f.lower.as_mut()),
        };
        self.plain.on_get_file_info(&mut inner)?;
        let mut info = inner.info;
        let mut exists = inner.file_exists;
        if !exists {
            // A name its handler created without the directory: an empty file of the
            // caller's until the events say otherwise.
            info.file_id = made_up_id(std::ffi::OsStr::new(path));
            (info.uid, info.gid, info.mode) = (p.originator.uid, p.originator.gid, 0o600);
        }
        match &isolated.backend {
            Backend::File {
                path: backend,
                file,
            } => {
                let m = file
                    .metadata()
                    .map_err(|e| crate::direct::failed("stat (isolated backend)", backend, e))?;
                sized_as(&mut info, &m);
                exists = true;
            }
            Backend::Events => {
                let (mut handle, mut listing) = (None, None);
                let mut own = lock(&isolated.file_context);
                let mut r = FileRequest::new(
                    RequestKind::QueryFileInfo,
                    path,
                    &mut own,
                    &mut handle,
                    &mut listing,
                );
                caller.fill(&mut r);
                r.size = Some(info.size);
                r.mode = Some(info.mode);
                self.shared.handler.on_before_query_file_info(&mut r)?;
                exists = r.file_exists;
                if let Some(size) = r.size {
                    info.size = size;
                    info.allocation_size = Some(size);
                }
                if let Some(mode) = r.mode {
                    info.mode = mode & 0o7777;
                }
            }
        }
        (p.file_exists, p.info) = (exists, info);
        Ok(())
    }

    /// `on_read_file` of an isolated open without a backend: `on_after_read_file` fires
    /// (without rules) with an empty buffer for the handler to fill with up to `length`
    /// bytes from `offset`, as for virtual files.
    pub(super) fn read_isolated(
        &self,
        p: &mut ReadFileParams<'_, OverlayFile, OverlayHandle>,
        path: &str,
        isolated: &Isolated,
        handle: &OverlayHandle,
    ) -> Result<()> {
        let mut own = lock(&isolated.file_context);
        let mut user = lock(&handle.user);
        self.read_from_handler(p, path, &mut own, &mut user)
    }

    /// `on_write_file` of an isolated open without a backend: `on_before_write_file` fires
    /// (without rules) and is the write; the caller is told its whole buffer was written.
    pub(super) fn write_isolated(
        &self,
        r: &mut FileRequest<'_>,
        buffer: &[u8],
        offset: u64,
    ) -> Result<usize> {
        r.offset = offset;
        r.length = buffer.len();
        r.buffer = buffer.to_vec();
        self.shared.handler.on_before_write_file(r)?;
        Ok(buffer.len())
    }

    /// `on_set_file_size` (`truncate`, `ftruncate`, `open(O_TRUNC)`) from a process with an
    /// isolated open of the file: the backend's size changes; without a backend
    /// `on_before_set_file_info` (fired without rules) is the change.
    pub(super) fn resize_isolated(
        &self,
        p: &mut SetFileSizeParams<'_, OverlayFile>,
        path: &str,
        isolated: &Isolated,
        caller: Caller,
    ) -> Result<()> {
        match &isolated.backend {
            Backend::File {
                path: backend,
                file,
            } => file
                .set_len(p.size)
                .map_err(|e| crate::direct::failed("truncate (isolated backend)", backend, e))?,
            Backend::Events => {
                let (mut handle, mut listing) = (None, None);
                let mut own = lock(&isolated.file_context);
                let mut r = FileRequest::new(
                    RequestKind::SetFileInfo,
                    path,
                    &mut own,
                    &mut handle,
                    &mut listing,
                );
                caller.fill(&mut r);
                r.size = Some(p.size);
                self.shared.handler.on_before_set_file_info(&mut r)?;
            }
        }
        // The size every later `stat` of this process sees comes from `isolated_info`.
        p.info_filled = false;
        Ok(())
    }
}

/// `info` with the size, allocation and times of the backend `m`.
fn sized_as(info: &mut FileInfo, m: &std::fs::Metadata) {
    let backend = crate::overlay::redirect::info_of(m);
    info.size = m.size();
    info.allocation_size = backend.allocation_size;
    info.last_access_time = backend.last_access_time;
    info.last_write_time = backend.last_write_time;
    info.change_time = backend.change_time;
}

/// `ERROR_NOT_SUPPORTED` for an operation an isolated open without a backend cannot pass
/// to any file.
pub(super) fn no_backend(what: &str, path: &str) -> Error {
    Error::from_code(
        code::ERROR_NOT_SUPPORTED,
        format!("{what} {path}: the open is isolated without a backend file"),
    )
}
