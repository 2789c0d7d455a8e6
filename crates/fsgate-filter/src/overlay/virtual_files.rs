//! Virtual files: names that exist only in the application. They are listed, looked up,
//! opened and read through the events (`on_before_query_file_info`, `on_before_open_file`,
//! `on_after_read_file`, which always fire for them), never through the lower directory.

use fsgate_core::sync::read;
use fsgate_core::{Error, Result};
use fsgate_vfs::{FileKind, GetFileInfoParams, OpenFileParams, ReadFileParams};

use crate::events::{ControlKind, DirectoryEntry, FileRequest, FilterEvents, RequestKind};
use crate::overlay::drive::{
    access_of, denied, made_up_id, Caller, OverlayDrive, OverlayFile, OverlayHandle,
};
use crate::overlay::request::Context;

/// The virtual files of a filter: full path → size as listings show it.
pub type VirtualFiles = std::collections::BTreeMap<String, u64>;

impl<H: FilterEvents> OverlayDrive<H> {
    /// The listed size of the virtual file at `path`, if it is one.
    pub(super) fn virtual_size(&self, path: &str) -> Option<u64> {
        read(&self.shared.virtual_files).get(path).copied()
    }

    /// `on_get_file_info` of a virtual file: its information comes from
    /// `on_before_query_file_info` (which always fires for it), starting from the size it
    /// was added with, read-only for everyone.
    pub(super) fn virtual_info(
        &self,
        p: &mut GetFileInfoParams<'_, OverlayFile>,
        path: &str,
        size: u64,
    ) -> Result<()> {
        let (mut file, mut handle, mut listing) = (None, None, None);
        let mut r = FileRequest::new(
            RequestKind::QueryFileInfo,
            path,
            &mut file,
            &mut handle,
            &mut listing,
        );
        Caller::of(&p.originator).fill(&mut r);
        r.size = Some(size);
        r.mode = Some(0o444);
        self.shared.handler.on_before_query_file_info(&mut r)?;
        p.file_exists = r.file_exists;
        p.info.kind = FileKind::File;
        p.info.size = r.size.unwrap_or(size);
        p.info.allocation_size = Some(p.info.size);
        p.info.mode = r.mode.unwrap_or(0o444) & 0o7777;
        p.info.uid = 0;
        p.info.gid = 0;
        p.info.hard_link_count = 1;
        p.info.file_id = made_up_id(std::ffi::OsStr::new(path));
        Ok(())
    }

    /// Opens a virtual file: `on_before_open_file` always fires; writing is refused.
    pub(super) fn open_virtual(
        &self,
        p: &mut OpenFileParams<'_, OverlayFile, OverlayHandle>,
        path: &str,
        caller: Caller,
    ) -> Result<()> {
        let (read_access, write) = access_of(p.flags);
        if write {
            return Err(denied("open for writing (a virtual file)", path));
        }
        let mut event = caller.control(ControlKind::OpenFile, path, read_access, false);
        (event.isolate, event.backend_file_name) = (true, String::new());
        self.shared.handler.on_before_open_file(&mut event)?;
        // Each open is served by the events alone: no page cache shared between them.
        p.use_direct_io();
        p.file_context.get_or_insert_with(OverlayFile::default);
        *p.handle_context = Some(OverlayHandle {
            virtual_file: true,
            ..OverlayHandle::default()
        });
        Ok(())
    }

    /// Reads a virtual file: `on_after_read_file` fires with an empty buffer for the handler
    /// to fill (up to `length` bytes from `offset`).
    pub(super) fn read_virtual(
        &self,
        p: &mut ReadFileParams<'_, OverlayFile, OverlayHandle>,
        path: &str,
    ) -> Result<()> {
        self.read_from_handler(p, path, &mut None, &mut None)
    }

    /// Serves a read from `on_after_read_file` alone (a virtual file, an isolated open
    /// without a backend): the handler gets an empty buffer, with `file_context` and
    /// `handle_context`, to fill with up to `length` bytes from `offset`; a `result_code` it
    /// sets fails the read with that errno.
    pub(super) fn read_from_handler(
        &self,
        p: &mut ReadFileParams<'_, OverlayFile, OverlayHandle>,
        path: &str,
        file_context: &mut Option<Context>,
        handle_context: &mut Option<Context>,
    ) -> Result<()> {
        let mut listing = None;
        let mut r = FileRequest::new(
            RequestKind::ReadFile,
            path,
            file_context,
            handle_context,
            &mut listing,
        );
        Caller::of(&p.originator).fill(&mut r);
        r.offset = p.position;
        r.length = p.buffer.len();
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
        Ok(())
    }

    /// Adds the virtual files directly in the directory `dir` (a full path) to a listing.
    pub(super) fn add_virtual_entries(&self, dir: &str, entries: &mut Vec<DirectoryEntry>) {
        let files = read(&self.shared.virtual_files);
        for path in files.keys() {
            let Some((parent, name)) = path.rsplit_once('/') else {
                continue;
            };
            let parent = if parent.is_empty() { "/" } else { parent };
            if parent == dir && !entries.iter().any(|e| e.name == name) {
                entries.push(DirectoryEntry {
                    name: name.into(),
                    kind: FileKind::File,
                    file_id: made_up_id(std::ffi::OsStr::new(path)),
                });
            }
        }
    }
}
