//! Operations on metadata: attributes, directory listings, extended attributes, the
//! volume.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use fsgate_core::{Originator, Result};

use super::acl;
use super::handles::{DirEntry, Listing};
use super::privileges::{no_attribute, Capability, CAPABILITY};
use super::{lock, lock_mut, not_found, serial_key, Cause, Engine, Handle, Ino};
use crate::events::Events;
use crate::params::*;

/// Whether a `SETXATTR` changed the file's attributes too (an access ACL sets the mode),
/// so that what the kernel cached of them is to be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttributesChanged(pub(crate) bool);

/// What a `SETATTR` asks to change; `None` leaves a value alone.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Changes {
    /// Permission bits (`chmod`).
    pub(crate) mode: Option<u32>,
    /// Owner (`chown`).
    pub(crate) uid: Option<u32>,
    /// Group (`chown`).
    pub(crate) gid: Option<u32>,
    /// Size (`truncate`).
    pub(crate) size: Option<u64>,
    /// Last access time.
    pub(crate) atime: Option<SystemTime>,
    /// Last write time.
    pub(crate) mtime: Option<SystemTime>,
    /// Change time.
    pub(crate) ctime: Option<SystemTime>,
    /// Creation time.
    pub(crate) crtime: Option<SystemTime>,
    /// Whether the kernel asks to clear privileges with a truncate (`FATTR_KILL_SUIDGID`).
    pub(crate) kill_privileges: bool,
}

impl<E: Events> Engine<E> {
    /// `GETATTR`: `on_get_file_info` of `ino` at `path`; `ENOENT` when it no longer exists.
    pub(crate) fn getattr(&self, ino: Ino, path: &Path, who: Originator) -> Result<FileInfo> {
        let info = self
            .file_info_of(Some(ino), path, who)?
            .ok_or_else(|| not_found(path))?;
        self.remember_attributes(ino, &info);
        Ok(info)
    }

    /// `SETATTR`: `on_set_file_size`, `on_set_file_attributes`, `on_set_file_security` for
    /// what changes, in that order, then the new attributes: the `info` the last of them
    /// filled, else `on_get_file_info`. A truncate the kernel flags, and with
    /// `FUSE_HANDLE_KILLPRIV_V2` every chown, then clears privileges (see
    /// [`super::privileges`]).
    pub(crate) fn setattr(
        &self,
        ino: Ino,
        path: &Path,
        c: Changes,
        who: Originator,
    ) -> Result<FileInfo> {
        let kind = lock(&self.inodes).kind(ino).unwrap_or(FileKind::File);
        let mut expected = self.default_info(kind);
        expected.mode = c.mode.map_or(expected.mode, |m| m & 0o7777);
        expected.uid = c.uid.unwrap_or(expected.uid);
        expected.gid = c.gid.unwrap_or(expected.gid);
        expected.size = c.size.unwrap_or(expected.size);
        expected.creation_time = c.crtime.unwrap_or(expected.creation_time);
        expected.last_access_time = c.atime.unwrap_or(expected.last_access_time);
        expected.last_write_time = c.mtime.unwrap_or(expected.last_write_time);
        expected.change_time = c.ctime.unwrap_or(expected.change_time);
        let truncate = c.size.is_some() && c.kill_privileges;
        // `chown(2)` with neither owner nor group changes nothing but the change time, and
        // still clears privileges; nothing else sends a change of the change time alone.
        let ctime_only = c.ctime.is_some()
            && (c.mode, c.size, c.atime, c.mtime, c.crtime) == (None, None, None, None, None);
        let chown = (c.uid.is_some() || c.gid.is_some() || ctime_only)
            && self.kills_privileges.load(Ordering::Relaxed);
        let doomed = match (truncate, chown) {
            (false, false) => None,
            (_, true) => Some(self.doomed_privileges(ino, path, Cause::Chown, who)?),
            (true, false) => Some(self.doomed_privileges(ino, path, Cause::Truncate, who)?),
        };
        // What the last event fired reported, if its handler filled its `info`.
        let mut reported = None;
        // By inode: an open file whose name was deleted (`futimens`, `fchmod`, the times the
        // writeback cache sends at `fsync`) has a context but no name the table knows.
        let context = self.context_of(ino, path);
        let mut guard = context.as_ref().map(|c| lock_mut(c));
        if let Some(size) = c.size {
            let mut p = SetFileSizeParams {
                originator: who,
                file_name: path,
                size,
                info: expected.clone(),
                info_filled: false,
                file_context: guard.as_deref_mut().and_then(Option::as_mut),
            };
            self.events.on_set_file_size(&mut p)?;
            reported = p.info_filled.then_some(p.info);
            self.drop_cached_blocks(path);
        }
        if c.mode.is_some()
            || c.atime.is_some()
            || c.mtime.is_some()
            || c.ctime.is_some()
            || c.crtime.is_some()
        {
            let mut p = SetFileAttributesParams {
                originator: who,
                file_name: path,
                mode: c.mode.map(|m| m & 0o7777),
                creation_time: c.crtime,
                last_access_time: c.atime,
                last_write_time: c.mtime,
                change_time: c.ctime,
                info: expected.clone(),
                info_filled: false,
                file_context: guard.as_deref_mut().and_then(Option::as_mut),
            };
            self.events.on_set_file_attributes(&mut p)?;
            reported = p.info_filled.then_some(p.info);
        }
        if c.uid.is_some() || c.gid.is_some() {
            let mut p = SetFileSecurityParams {
                originator: who,
                file_name: path,
                owner: c.uid,
                group: c.gid,
                info: expected,
                info_filled: false,
                file_context: guard.as_deref_mut().and_then(Option::as_mut),
            };
            self.events.on_set_file_security(&mut p)?;
            reported = p.info_filled.then_some(p.info);
        }
        drop(guard);
        let info = match reported {
            Some(info) => info,
            None => self.getattr(ino, path, who)?,
        };
        self.remember_attributes(ino, &info);
        match doomed {
            Some(doomed) => Ok(self
                .clear_privileges(ino, path, doomed, Some(&info), who)?
                .unwrap_or(info)),
            None => Ok(info),
        }
    }

    /// `READDIR`: the handle's listing, gathered through `on_enumerate_directory` at its
    /// first read.
    pub(crate) fn listing(
        &self,
        h: &Handle<E>,
        path: &Path,
        who: Originator,
    ) -> Result<Arc<Vec<DirEntry>>> {
        let mut fc = lock_mut(&h.file);
        let mut st = lock_mut(&h.state);
        let st = &mut *st;
        if st.listing.is_none() {
            let (listing, result) = self.gather(path, &mut fc, &mut st.context, who);
            st.listing = listing;
            result?;
        }
        Ok(st
            .listing
            .as_ref()
            .map(|l| Arc::clone(&l.entries))
            .unwrap_or_default())
    }

    /// Hands `add` the entries of directory `dir` (inode `dir_ino`) from `offset` on, `.` and
    /// `..` first, each with its inode, the offset of the next one, kind and name, until
    /// `add` answers that the buffer is full. Only the entries that fit are copied: a large
    /// directory is read in many requests, each costing its own size.
    pub(crate) fn list(
        &self,
        dir_ino: Ino,
        dir: &Path,
        entries: &[DirEntry],
        offset: u64,
        mut add: impl FnMut(Ino, u64, FileKind, &OsStr) -> bool,
    ) {
        let inodes = lock(&self.inodes);
        let ids = self.options.use_file_ids;
        let dots = [
            (OsStr::new("."), FileKind::Directory, 0),
            (OsStr::new(".."), FileKind::Directory, 0),
        ];
        let all = dots.into_iter().chain(
            entries
                .iter()
                .map(|e| (e.name.as_os_str(), e.kind, e.file_id)),
        );
        for (i, (name, kind, id)) in all.enumerate().skip(offset as usize) {
            let child_ino = match name.as_bytes() {
                b"." | b".." => dir_ino,
                _ if ids && id > 1 => Ino(id),
                _ => {
                    let child = super::join(dir, name);
                    inodes.find(&child).unwrap_or_else(|| {
                        // Not looked up yet: an informational number outside the range the
                        // table hands out. `stat` shows the real one.
                        Ino((1 << 63) | (serial_key(&child).0 & ((1 << 62) - 1)))
                    })
                }
            };
            if add(child_ino, i as u64 + 1, kind, name) {
                break;
            }
        }
    }

    /// Fires `on_enumerate_directory` until it finds nothing; a failure of the first call
    /// drops the enumeration context at once.
    pub(crate) fn gather(
        &self,
        path: &Path,
        fc: &mut Option<E::FileContext>,
        hc: &mut Option<E::HandleContext>,
        who: Originator,
    ) -> (Option<Listing<E>>, Result<()>) {
        let mut context = None;
        let mut entries = Vec::new();
        let mut restart = true;
        let result = loop {
            let mut p = EnumerateDirectoryParams {
                originator: who,
                directory_name: path,
                mask: "*",
                case_sensitive: true,
                restart,
                file_found: false,
                file_name: OsString::new(),
                info: self.default_info(FileKind::File),
                file_context: fc.as_mut(),
                handle_context: hc.as_mut(),
                enumeration_context: &mut context,
            };
            if let Err(e) = self.events.on_enumerate_directory(&mut p) {
                if restart {
                    return (None, Err(e));
                }
                break Err(e);
            }
            restart = false;
            if !p.file_found {
                break Ok(());
            }
            let name = std::mem::take(&mut p.file_name);
            let (kind, file_id) = (p.info.kind, p.info.file_id);
            let bytes = name.as_bytes();
            if bytes.is_empty() || bytes.contains(&b'/') || bytes == b"." || bytes == b".." {
                tracing::warn!(
                    "on_enumerate_directory {}: skipping invalid name {name:?}",
                    path.display()
                );
                continue;
            }
            entries.push(DirEntry {
                name,
                kind,
                file_id,
            });
        };
        let listing = Listing {
            context,
            entries: Arc::new(entries),
        };
        (Some(listing), result)
    }

    /// `STATFS`: `on_get_volume_size`.
    pub(crate) fn statfs(&self, who: Originator) -> Result<GetVolumeSizeParams> {
        let mut p = GetVolumeSizeParams {
            originator: who,
            total_sectors: 0,
            available_sectors: 0,
            sector_size: self.options.sector_size,
            total_files: 0,
            free_files: 0,
        };
        self.events.on_get_volume_size(&mut p)?;
        Ok(p)
    }

    /// `SETXATTR`: `on_set_ea`, with the `XATTR_CREATE`/`XATTR_REPLACE` bits of `flags`,
    /// on inode `ino` at `path`; an access ACL sets the mode instead (see [`acl`]).
    pub(crate) fn set_xattr(
        &self,
        ino: Ino,
        path: &Path,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        who: Originator,
    ) -> Result<AttributesChanged> {
        if name == acl::ACCESS {
            return self.set_access_acl(ino, path, value, flags, who);
        }
        self.fire_set_ea(ino, path, name, value, flags, who)?;
        Ok(AttributesChanged(false))
    }

    /// `on_set_ea` of `name` = `value` on inode `ino` at `path`.
    fn fire_set_ea(
        &self,
        ino: Ino,
        path: &Path,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        who: Originator,
    ) -> Result<()> {
        let mut p = SetEaParams {
            originator: who,
            file_name: path,
            name,
            value,
            create_only: flags & libc::XATTR_CREATE != 0,
            replace_only: flags & libc::XATTR_REPLACE != 0,
        };
        self.events.on_set_ea(&mut p)?;
        if name == CAPABILITY {
            self.remember_capability(ino, Capability::Present);
        }
        Ok(())
    }

    /// `SETXATTR` of an access ACL: its permission entries become the mode's, with the
    /// drive's `chmod` event, and it is stored only when the mode cannot say all of it (see
    /// [`acl`]).
    fn set_access_acl(
        &self,
        ino: Ino,
        path: &Path,
        value: &[u8],
        flags: i32,
        who: Originator,
    ) -> Result<AttributesChanged> {
        let name = OsStr::new(acl::ACCESS);
        if acl::is_empty(value) {
            self.remove_xattr(ino, path, name, who)?;
            return Ok(AttributesChanged(false));
        }
        let acl = acl::AccessAcl::parse(value)?;
        let mode = self.getattr(ino, path, who)?.mode;
        let changes = Changes {
            mode: Some(mode & !0o777 | acl.permissions),
            ..Changes::default()
        };
        self.setattr(ino, path, changes, who)?;
        if acl.minimal {
            // One stored before goes; none stored is no error (see `remove_xattr`).
            self.remove_xattr(ino, path, name, who)?;
        } else {
            self.fire_set_ea(ino, path, name, value, flags, who)?;
        }
        Ok(AttributesChanged(true))
    }

    /// `GETXATTR`: `on_get_ea` on inode `ino` at `path`. What it says of
    /// `security.capability` is remembered (see [`super::privileges`]).
    pub(crate) fn get_xattr(
        &self,
        ino: Ino,
        path: &Path,
        name: &OsStr,
        who: Originator,
    ) -> Result<Vec<u8>> {
        let mut p = GetEaParams {
            originator: who,
            file_name: path,
            name,
            value: Vec::new(),
        };
        let result = self.events.on_get_ea(&mut p);
        if name == CAPABILITY {
            match &result {
                Ok(()) => self.remember_capability(ino, Capability::Present),
                Err(e) if no_attribute(e.errno()) => {
                    self.remember_capability(ino, Capability::Absent)
                }
                Err(_) => {}
            }
        }
        result.map(|()| p.value)
    }

    /// `LISTXATTR`: `on_list_eas`, as the kernel wants it: each name followed by a 0 byte.
    pub(crate) fn list_xattrs(&self, path: &Path, who: Originator) -> Result<Vec<u8>> {
        let mut p = ListEasParams {
            originator: who,
            file_name: path,
            names: Vec::new(),
        };
        self.events.on_list_eas(&mut p)?;
        let mut out = Vec::new();
        for n in p.names {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    /// `REMOVEXATTR`: `on_remove_ea` on inode `ino` at `path`.
    pub(crate) fn remove_xattr(
        &self,
        ino: Ino,
        path: &Path,
        name: &OsStr,
        who: Originator,
    ) -> Result<()> {
        let mut p = RemoveEaParams {
            originator: who,
            file_name: path,
            name,
        };
        let result = self.events.on_remove_ea(&mut p);
        let gone = match &result {
            Ok(()) => true,
            Err(e) => no_attribute(e.errno()),
        };
        if name == CAPABILITY && gone {
            self.remember_capability(ino, Capability::Absent);
        }
        match result {
            // Removing a POSIX ACL a file does not have succeeds, as on ext4 and tmpfs (the
            // kernel also sends this for an ACL of no entries).
            Err(e) if no_attribute(e.errno()) && acl::is_acl(name) => Ok(()),
            result => result,
        }
    }
}
