//! Privileges a change takes away: the set-user-ID and set-group-ID bits and the file
//! capability attribute, cleared on write, truncate and chown as ext4 clears them.
//!
//! With `FUSE_HANDLE_KILLPRIV_V2`, negotiated whenever the kernel offers it, the kernel
//! leaves this to the filesystem: it flags a write or truncate by a caller without
//! `CAP_FSETID`, and expects the bits gone after every chown. In exchange it stops asking
//! for `security.capability` before each write and stops sending a mode change after it.
//! The engine clears them through the drive's own events — `on_set_file_attributes` with
//! the new mode, `on_remove_ea` of `security.capability` — and only when something is there
//! to clear: it remembers the mode and group it last reported to the kernel for each inode,
//! and whether the file has a capability attribute (learned with one `on_get_ea` the first
//! time it matters, known to be absent for files created through the drive, and kept up to
//! date by the attribute requests that pass through the engine). A change that clears
//! nothing fires no event.
//!
//! Routed handles write their backing files without the engine: a routed writable open of
//! a backing file with something to clear gets no passthrough, and the library's own
//! writes to it clear first ([`write_takes_privileges`]).
//!
//! The rules are ext4's (the kernel's `setattr_should_drop_sgid`): set-user-ID always goes;
//! set-group-ID goes when the group may execute, or when the caller is neither in the
//! file's group nor privileged. Only a chown can come from a privileged caller (the kernel
//! flags writes and truncates only for callers without `CAP_FSETID`); the engine takes
//! filesystem uid 0 as privileged. Directories keep their bits.

use std::ffi::OsStr;
use std::path::Path;

use fsgate_core::{originator, Originator, Result};

use super::{lock, lock_mut, Engine, Ino};
use crate::events::Events;
use crate::params::*;

/// The extended attribute that holds a file's capabilities.
pub(crate) const CAPABILITY: &str = "security.capability";

/// Whether a file has a capability attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Capability {
    /// Not known yet: the drive is asked once when it matters.
    #[default]
    Unknown,
    /// The file has none.
    Absent,
    /// The file has one.
    Present,
}

/// What the engine knows of one inode's privileges.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Privileges {
    /// The mode (with its set-id bits) and group last reported to the kernel.
    pub(crate) attributes: Option<(u32, u32)>,
    /// Whether the file has a capability attribute.
    pub(crate) capability: Capability,
}

/// What takes privileges away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// A write by a caller without `CAP_FSETID`.
    Write,
    /// A truncate by a caller without `CAP_FSETID`.
    Truncate,
    /// A change of owner or group, by anyone.
    Chown,
}

/// What a change is to clear, decided from the attributes before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Doomed {
    /// The set-id bits to clear.
    bits: u32,
    /// Whether the capability attribute may have to go.
    capability: bool,
}

/// The set-id bits `cause` clears from a `kind` object with `mode`, whose group the caller
/// is in when `in_group` says so (asked only when it matters); `privileged`: the caller has
/// `CAP_FSETID`.
pub(crate) fn set_id_bits_to_clear(
    kind: FileKind,
    mode: u32,
    privileged: bool,
    in_group: impl FnOnce() -> bool,
) -> u32 {
    if kind == FileKind::Directory {
        return 0;
    }
    let mut bits = libc::S_ISUID;
    if mode & libc::S_ISGID != 0 && (mode & libc::S_IXGRP != 0 || !(privileged || in_group())) {
        bits |= libc::S_ISGID;
    }
    mode & bits
}

impl<E: Events> Engine<E> {
    /// Records the attributes the kernel was just told for `ino`.
    pub(crate) fn remember_attributes(&self, ino: Ino, info: &FileInfo) {
        if let Some(p) = lock(&self.inodes).privileges(ino) {
            p.attributes = Some((info.mode, info.gid));
        }
    }

    /// Records whether `ino` has a capability attribute.
    pub(crate) fn remember_capability(&self, ino: Ino, capability: Capability) {
        if let Some(p) = lock(&self.inodes).privileges(ino) {
            p.capability = capability;
        }
    }

    /// Whether `ino` is known to have no capability attribute: the kernel's question for it
    /// (before writes, see the module docs) is answered without the drive.
    pub(crate) fn has_no_capability(&self, ino: Ino, name: &OsStr) -> bool {
        name == CAPABILITY
            && lock(&self.inodes)
                .privileges(ino)
                .is_some_and(|p| p.capability == Capability::Absent)
    }

    /// Forgets what the engine knew of `ino`'s privileges: the drive changed the file
    /// behind the kernel's back (`notify_file_change`).
    pub(crate) fn forget_privileges(&self, ino: Ino) {
        if let Some(p) = lock(&self.inodes).privileges(ino) {
            *p = Privileges::default();
        }
    }

    /// What `cause` by `who` is to clear from `ino` at `path`: decided from the attributes
    /// last reported (asked with `on_get_file_info` only when the engine has none).
    pub(crate) fn doomed_privileges(
        &self,
        ino: Ino,
        path: &Path,
        cause: Cause,
        who: Originator,
    ) -> Result<Doomed> {
        let (known, kind, capability) = {
            let mut inodes = lock(&self.inodes);
            let kind = inodes.kind(ino).unwrap_or(FileKind::File);
            let p = inodes.privileges(ino).copied().unwrap_or_default();
            (p.attributes, kind, p.capability)
        };
        let (mode, gid) = match known {
            Some(a) => a,
            None => match self.file_info_of(Some(ino), path, who)? {
                Some(info) => {
                    self.remember_attributes(ino, &info);
                    (info.mode, info.gid)
                }
                None => (0, 0),
            },
        };
        let privileged = cause == Cause::Chown && who.uid == 0;
        let in_group = || {
            who.gid == gid
                || originator::credentials(who.tid).is_ok_and(|c| c.groups.contains(&gid))
        };
        Ok(Doomed {
            bits: set_id_bits_to_clear(kind, mode, privileged, in_group),
            capability: kind == FileKind::File && capability != Capability::Absent,
        })
    }

    /// Clears what `doomed` names from `ino` at `path`, whose mode is now `now` (what the
    /// change's own event reported) or else the one last reported: the set-id bits still
    /// set, with `on_set_file_attributes`, and the capability attribute, with `on_remove_ea`
    /// after one `on_get_ea` when the engine does not know whether there is one. Returns
    /// the attributes after the mode change, when there was one.
    pub(crate) fn clear_privileges(
        &self,
        ino: Ino,
        path: &Path,
        doomed: Doomed,
        now: Option<&FileInfo>,
        who: Originator,
    ) -> Result<Option<FileInfo>> {
        let mut changed = None;
        let mode = match now {
            Some(info) => Some(info.mode),
            None => lock(&self.inodes)
                .privileges(ino)
                .and_then(|p| p.attributes)
                .map(|(mode, _)| mode),
        };
        if let Some(mode) = mode.filter(|m| m & doomed.bits != 0) {
            let mode = mode & 0o7777 & !doomed.bits;
            let mut info = match now {
                Some(info) => info.clone(),
                None => self.default_info(FileKind::File),
            };
            info.mode = mode;
            let context = self.file_context(ino);
            let mut guard = context.as_ref().map(|c| lock_mut(c));
            let mut p = SetFileAttributesParams {
                originator: who,
                file_name: path,
                mode: Some(mode),
                creation_time: None,
                last_access_time: None,
                last_write_time: None,
                change_time: None,
                info,
                info_filled: false,
                file_context: guard.as_deref_mut().and_then(Option::as_mut),
            };
            self.events.on_set_file_attributes(&mut p)?;
            let reported = p.info_filled.then_some(p.info);
            drop(guard);
            let info = match reported {
                Some(info) => info,
                None => self.getattr(ino, path, who)?,
            };
            self.remember_attributes(ino, &info);
            changed = Some(info);
        }
        if doomed.capability {
            self.clear_capability(ino, path, who)?;
        }
        Ok(changed)
    }

    /// Clears what a write by `who` takes away from `ino`, now: a passthrough handle's
    /// writes never reach the engine, so a writable open that must share the inode's
    /// passthrough (see [`Engine::open`](super::Engine::open)) clears them at the open.
    pub(crate) fn clear_privileges_for_write(
        &self,
        ino: Ino,
        path: &Path,
        who: Originator,
    ) -> Result<()> {
        let doomed = self.doomed_privileges(ino, path, Cause::Write, who)?;
        self.clear_privileges(ino, path, doomed, None, who)?;
        Ok(())
    }

    /// Removes `ino`'s capability attribute if it has one.
    fn clear_capability(&self, ino: Ino, path: &Path, who: Originator) -> Result<()> {
        let name = OsStr::new(CAPABILITY);
        let known = lock(&self.inodes)
            .privileges(ino)
            .map_or(Capability::Unknown, |p| p.capability);
        let present = match known {
            Capability::Absent => false,
            Capability::Present => true,
            Capability::Unknown => match self.get_xattr(ino, path, name, who) {
                Ok(_) => true,
                Err(e) if no_attribute(e.errno()) => false,
                Err(e) => return Err(e),
            },
        };
        if present {
            match self.remove_xattr(ino, path, name, who) {
                Err(e) if !no_attribute(e.errno()) => return Err(e),
                _ => {}
            }
        }
        self.remember_capability(ino, Capability::Absent);
        Ok(())
    }
}

/// Whether a write by `who` would take privileges away from the routed `backing` file:
/// set-id bits by ext4's rule, or a capability attribute. Asked of the backing file itself,
/// where a routed handle's writes land, with an `fstat` and, when no bit is set, an
/// `fgetxattr`; uid 0 (`CAP_FSETID`) takes nothing away.
pub(crate) fn write_takes_privileges(backing: &std::fs::File, who: Originator) -> bool {
    use std::os::unix::fs::MetadataExt;
    if who.uid == 0 {
        return false;
    }
    let Ok(meta) = backing.metadata() else {
        // Unknown: the writes had better reach the engine.
        return true;
    };
    let in_group = || {
        who.gid == meta.gid()
            || originator::credentials(who.tid).is_ok_and(|c| c.groups.contains(&meta.gid()))
    };
    if set_id_bits_to_clear(FileKind::File, meta.mode(), false, in_group) != 0 {
        return true;
    }
    match rustix::fs::fgetxattr(backing, CAPABILITY, &mut [0u8; 0]) {
        Ok(_) => true,
        Err(e) => !no_attribute(e.raw_os_error()),
    }
}

/// Whether `errno` says there is no such attribute (or no attributes at all).
pub(crate) fn no_attribute(errno: i32) -> bool {
    matches!(errno, libc::ENODATA | libc::EOPNOTSUPP | libc::ENOSYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_id_bits_go_as_on_ext4() {
        let never = || -> bool { panic!("group membership asked needlessly") };
        let file = FileKind::File;
        assert_eq!(set_id_bits_to_clear(file, 0o0755, false, never), 0);
        assert_eq!(
            set_id_bits_to_clear(file, 0o4755, false, never),
            libc::S_ISUID
        );
        assert_eq!(
            set_id_bits_to_clear(file, 0o6775, true, never),
            libc::S_ISUID | libc::S_ISGID,
            "group execute: set-group-ID goes even for a privileged caller"
        );
        assert_eq!(set_id_bits_to_clear(file, 0o2765, false, || true), 0);
        assert_eq!(
            set_id_bits_to_clear(file, 0o2765, false, || false),
            libc::S_ISGID,
            "no group execute: set-group-ID goes for a caller outside the group"
        );
        assert_eq!(set_id_bits_to_clear(file, 0o2765, true, never), 0);
        assert_eq!(
            set_id_bits_to_clear(FileKind::Directory, 0o6777, false, never),
            0
        );
    }
}
