//! Implicit handles: with `KernelOpensFiles` the kernel opens files without asking the
//! drive (FUSE no-open), and one handle per inode serves every descriptor it opened so.
//!
//! The handle is made at the first request that names handle 0 of the file (or before its
//! last name goes, while events can still name it), firing `on_open_file`; it closes when
//! the kernel forgets the inode (`FORGET`), when the drive unmounts, or when it is evicted:
//! at most [`default_limit`] implicit handles stay open, and past that the oldest ones no
//! request is using close first.
//!
//! A `CREATE`'s handle becomes its file's implicit handle too. The descriptor `CREATE`
//! opened goes on naming it in its requests, and once the kernel opens files itself it sends
//! no `RELEASE` for created files, so nothing says when that descriptor closes. Such a
//! handle is evicted like the others, and the descriptor's later requests, naming a handle
//! the engine no longer has, are served by the file's implicit handle, made again
//! ([`Engine::served_implicitly`]). (Before, they failed with `EBADF`, and the data a
//! writeback then carried was lost: a log or database created and kept open while more
//! files than the limit were created after it.)

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use foldhash::{HashMap, HashSet};
use fsgate_core::{Originator, Result};

use super::{lock, Engine, Fh, Handle, Ino};
use crate::events::Events;
use crate::params::FileKind;

/// How many implicit handles (`KernelOpensFiles`) stay open at most: half the process's
/// descriptor limit, at least 64. The kernel keeps an inode, and so its implicit handle, as
/// long as it caches it, which for a tree read once can be every file in it; a drive that
/// holds a descriptor per handle (the mirror) would run out. Past the limit the oldest
/// handles no request is using close, and a later request for their file opens it again.
pub(crate) fn default_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limits into `limit`, which it may.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    (soft / 2).max(64)
}

/// The implicit handle of each inode, and the inodes in the order they got one. Kept under
/// the same lock as the handles they name.
#[derive(Default)]
pub(crate) struct ImplicitHandles {
    by_ino: HashMap<Ino, Fh>,
    /// The inodes of `by_ino`, oldest first (some may have closed since).
    order: VecDeque<Ino>,
}

impl ImplicitHandles {
    /// The implicit handle of `ino`.
    pub(crate) fn get(&self, ino: Ino) -> Option<Fh> {
        self.by_ino.get(&ino).copied()
    }

    /// `fh` is now `ino`'s implicit handle.
    pub(crate) fn insert(&mut self, ino: Ino, fh: Fh) {
        self.by_ino.insert(ino, fh);
        self.order.push_back(ino);
        // Handles closed since (forgotten or evicted) leave stale entries behind: drop them,
        // and repeats, once they outnumber the handles.
        if self.order.len() > 2 * self.by_ino.len() + 64 {
            let by_ino = &self.by_ino;
            let mut seen = HashSet::default();
            self.order
                .retain(|i| by_ino.contains_key(i) && seen.insert(*i));
        }
    }

    /// `fh` closed: it no longer serves `ino` if it did.
    pub(crate) fn remove_if(&mut self, ino: Ino, fh: Fh) {
        if self.get(ino) == Some(fh) {
            self.by_ino.remove(&ino);
        }
    }

    /// How many implicit handles are open.
    pub(crate) fn len(&self) -> usize {
        self.by_ino.len()
    }

    /// How many inodes the order holds, stale ones included.
    #[cfg(test)]
    pub(crate) fn order_len(&self) -> usize {
        self.order.len()
    }
}

impl<E: Events> Engine<E> {
    /// Whether a request on `ino` naming `fh` is served by the file's implicit handle:
    /// handle 0 (a descriptor the kernel opened by itself), or a handle of a regular file
    /// the engine no longer has (a `CREATE`'s, evicted while its descriptor stayed open).
    pub(crate) fn served_implicitly(&self, ino: Ino, fh: Fh) -> bool {
        self.kernel_opens()
            && (fh == Fh(0)
                || (!lock(&self.opens).handles.contains_key(&fh)
                    && lock(&self.inodes).kind(ino) == Some(FileKind::File)))
    }

    /// The implicit handle serving `ino`'s descriptors, if it has one.
    pub(crate) fn implicit_of(&self, ino: Ino) -> Option<Fh> {
        lock(&self.opens).implicit.get(ino)
    }

    /// The handle serving descriptors of `ino` that the kernel opened by itself
    /// (`KernelOpensFiles`): made now, firing `on_open_file` as an open of the file asking
    /// read and write access (read access if the drive refuses that), unless the inode has
    /// one. Runs as an event of the file.
    pub(crate) fn implicit_handle(&self, ino: Ino, who: Originator) -> Result<Handle<E>> {
        let _making = lock(&self.implicit_opening);
        if let Some(fh) = self.implicit_of(ino) {
            return self.handle(fh);
        }
        let path = self.path_of(ino)?;
        // Read and write access, as the descriptors may need either; read access alone when
        // the drive refuses writing (the kernel already checked each caller's access).
        let mut new = match self.open(ino, &path, libc::O_RDWR, false, who) {
            Err(e) if matches!(e.errno(), libc::EACCES | libc::EPERM | libc::EROFS) => {
                self.open(ino, &path, libc::O_RDONLY, false, who)?
            }
            opened => opened?,
        };
        // The kernel already opened the file: it takes no backing file for it any more.
        new.route = None;
        let opened = self.register(ino, &path, new, |_| {
            Err(std::io::ErrorKind::Unsupported.into())
        });
        self.make_implicit(ino, opened.fh);
        self.handle(opened.fh)
    }

    /// `fh` is now `ino`'s implicit handle.
    pub(crate) fn make_implicit(&self, ino: Ino, fh: Fh) {
        lock(&self.opens).implicit.insert(ino, fh);
    }

    /// The implicit handles past the limit, oldest first, as (path, inode, handle), for
    /// [`evict_implicit`](Self::evict_implicit). A deleted file's handle is never among
    /// them: it holds the file's data for the descriptors still open.
    pub(crate) fn implicit_surplus(&self) -> Vec<(PathBuf, Ino, Fh)> {
        let candidates: Vec<(Ino, Fh)> = {
            let mut opens = lock(&self.opens);
            let implicit = &mut opens.implicit;
            let over = implicit.len().saturating_sub(self.implicit_limit);
            let mut out = Vec::with_capacity(over);
            while out.len() < over {
                let Some(ino) = implicit.order.pop_front() else {
                    break;
                };
                if let Some(fh) = implicit.get(ino) {
                    out.push((ino, fh));
                }
            }
            out
        };
        if candidates.is_empty() {
            return Vec::new();
        }
        let mut surplus = Vec::with_capacity(candidates.len());
        let mut kept = Vec::new();
        {
            let inodes = lock(&self.inodes);
            for (ino, fh) in candidates {
                match inodes.path(ino) {
                    Some(path) if inodes.names(ino) > 0 && inodes.find(path) == Some(ino) => {
                        surplus.push((path.to_path_buf(), ino, fh));
                    }
                    _ => kept.push(ino),
                }
            }
        }
        lock(&self.opens).implicit.order.extend(kept);
        surplus
    }

    /// Closes `ino`'s implicit handle `fh` if it still is one and no request holds it; a
    /// handle in use goes back in line. Runs as an event of the file.
    pub(crate) fn evict_implicit(&self, ino: Ino, fh: Fh, who: Originator) {
        let evicted = {
            let mut opens = lock(&self.opens);
            let unused = opens
                .handles
                .get(&fh)
                .is_some_and(|h| std::sync::Arc::strong_count(&h.state) == 1);
            if opens.implicit.get(ino) != Some(fh) {
                None
            } else if unused {
                opens.implicit.by_ino.remove(&ino);
                opens.handles.remove(&fh)
            } else {
                opens.implicit.order.push_back(ino);
                None
            }
        };
        // No request can reach the handle any more: its file's next one makes a new one.
        if let Some(h) = evicted {
            if let Err(e) = self.close_handle(fh, h, who) {
                tracing::debug!("on_close_file: {e}");
            }
        }
    }

    /// Closes the implicit handles left when the kernel lets go of the mount: it does not
    /// forget every inode before the connection ends.
    pub(crate) fn close_implicit_handles(&self) {
        let left: Vec<Fh> = lock(&self.opens)
            .implicit
            .by_ino
            .values()
            .copied()
            .collect();
        for fh in left {
            if let Err(e) = self.close(fh, super::kernel_originator()) {
                tracing::debug!("on_close_file: {e}");
            }
        }
    }

    /// `FORGET`: the kernel dropped `count` lookups of `ino`. When it no longer knows the
    /// inode and the inode has an implicit handle, that handle and the path to key its
    /// closing by: no descriptor of it is left, so it is to be [closed](Self::close).
    pub(crate) fn forget(&self, ino: Ino, count: u64) -> Option<(Fh, PathBuf)> {
        if !lock(&self.inodes).forget(ino, count) {
            return None;
        }
        let fh = self.implicit_of(ino)?;
        let h = self.handle(fh).ok()?;
        Some((fh, h.opened_as))
    }

    /// Before the last name of the file at `path` goes (`KernelOpensFiles`): a descriptor
    /// the kernel opened by itself may still use the file, so it gets its implicit handle
    /// now, while events can still name it; the handle closes when the kernel forgets it.
    pub(crate) fn keep_for_kernel(&self, path: &Path, who: Originator) -> Result<()> {
        if !self.kernel_opens() {
            return Ok(());
        }
        let ino = {
            let inodes = lock(&self.inodes);
            inodes
                .find(path)
                .filter(|i| inodes.kind(*i) == Some(FileKind::File) && inodes.names(*i) <= 1)
        };
        match ino {
            Some(ino) => self.implicit_handle(ino, who).map(drop),
            None => Ok(()),
        }
    }
}
