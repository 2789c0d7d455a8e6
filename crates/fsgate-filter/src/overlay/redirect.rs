//! Redirections: reparse rules and `on_reparse_file_name` send a request for one name to
//! another file, whose content and information processes then see under the asked name.

use std::fs::File;

use fsgate_core::sync::read;
use fsgate_core::Result;
use fsgate_vfs::{FileInfo, FileKind};

use crate::events::{FilterEvents, ReparseFileName};
use crate::overlay::drive::{Caller, OverlayDrive};
use crate::rules::{ControlFlags, RuleFlags};

impl<H: FilterEvents> OverlayDrive<H> {
    /// Where a request for `path` is served from when a reparse rule or an
    /// `on_reparse_file_name` handler redirects it; `None` when it is not redirected.
    pub(super) fn redirect(
        &self,
        path: &str,
        flags: RuleFlags,
        caller: Caller,
    ) -> Result<Option<String>> {
        let rules = read(&self.shared.reparse);
        let mut target = if rules.is_empty() {
            None
        } else {
            rules.resolve(path)?
        };
        drop(rules);
        if flags.control.contains(ControlFlags::FS_CE_REPARSE_FILENAME) {
            let mut r = ReparseFileName {
                file_name: target.clone().unwrap_or_else(|| path.to_string()),
                new_file_name: None,
                process_id: caller.pid(),
            };
            self.shared.handler.on_reparse_file_name(&mut r)?;
            if r.new_file_name.is_some() {
                target = r.new_file_name;
            }
        }
        Ok(target.filter(|t| t != path))
    }

    /// Opens a redirection's target: through the directory's descriptor when it is under
    /// it (never through the mount), else by its path.
    pub(super) fn open_target(&self, target: &str, flags: i32, mode: u32) -> std::io::Result<File> {
        match self.relative(target) {
            Some(rel) => self.open_lower(rel, flags, mode),
            None => crate::direct::open_plain(target, flags, mode),
        }
    }

    /// A redirection's target opened for a handle: read-write when allowed, else with the
    /// access of `flags`.
    pub(super) fn open_target_for(&self, target: &str, flags: i32) -> Result<File> {
        let nofollow = libc::O_NOFOLLOW;
        self.open_target(target, libc::O_RDWR | nofollow, 0)
            .or_else(|_| self.open_target(target, (flags & libc::O_ACCMODE) | nofollow, 0))
            .map_err(|e| crate::direct::failed("open (redirected)", target, e))
    }
}

/// What `stat` of a redirection's target says, as the events report it.
pub(super) fn info_of(m: &std::fs::Metadata) -> FileInfo {
    use std::os::unix::fs::MetadataExt;
    let at = |sec: i64, nsec: i64| {
        let base = std::time::UNIX_EPOCH;
        let nanos = std::time::Duration::from_nanos(nsec.max(0).unsigned_abs());
        if sec >= 0 {
            base + std::time::Duration::from_secs(sec.unsigned_abs()) + nanos
        } else {
            base - std::time::Duration::from_secs(sec.unsigned_abs()) + nanos
        }
    };
    let modified = at(m.mtime(), m.mtime_nsec());
    FileInfo {
        kind: FileKind::from_mode(m.mode()).unwrap_or(FileKind::File),
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        size: m.size(),
        allocation_size: Some(m.blocks().saturating_mul(512)),
        hard_link_count: u32::try_from(m.nlink()).unwrap_or(u32::MAX),
        creation_time: modified,
        last_access_time: at(m.atime(), m.atime_nsec()),
        last_write_time: modified,
        change_time: at(m.ctime(), m.ctime_nsec()),
        file_id: m.ino(),
        rdev: u32::try_from(m.rdev()).unwrap_or(0),
    }
}
