//! The namespace: the inode ↔ path table that turns FUSE's inode protocol into the reference's path-based
//! events.
//!
//! The kernel names objects by inode numbers it got from `LOOKUP` (and `CREATE`, `MKDIR`,
//! …) replies and releases them with `FORGET`; events name objects by path. Each node keeps
//! its paths (several for hard links, the first is the one events use) and the kernel's
//! lookup count; it is removed when the count drops to zero. Renames move a node and every
//! node below it; unlinking a name that is still open keeps the node (with its last path)
//! so that events for the open handles still carry a name.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use foldhash::HashMap;

use super::privileges::Privileges;
use crate::params::FileKind;

/// A kernel inode number: what FUSE names an object by. Converted from and to fuser's
/// `INodeNo` in the wire layer only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Ino(pub(crate) u64);

/// The root's inode number (FUSE's `FUSE_ROOT_ID`).
pub(crate) const ROOT: Ino = Ino(1);

#[derive(Debug)]
struct Node {
    /// Byte strings rather than `PathBuf`s: they hash and compare as plain bytes.
    paths: Vec<OsString>,
    kind: FileKind,
    lookups: u64,
    /// What the engine knows of the object's privileges (see [`super::privileges`]).
    privileges: Privileges,
}

/// The table. Not thread-safe by itself: the glue keeps it under a mutex.
#[derive(Debug)]
pub(crate) struct Inodes {
    nodes: HashMap<Ino, Node>,
    by_path: HashMap<OsString, Ino>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        let mut t = Self {
            nodes: HashMap::default(),
            by_path: HashMap::default(),
            next: 2,
        };
        t.nodes.insert(
            ROOT,
            Node {
                paths: vec!["/".into()],
                kind: FileKind::Directory,
                lookups: 1,
                privileges: Privileges::default(),
            },
        );
        t.by_path.insert("/".into(), ROOT);
        t
    }
}

/// `parent` joined with `name` (`/` + `a` = `/a`, `/d` + `a` = `/d/a`), byte for byte.
pub(crate) fn join(parent: &Path, name: &OsStr) -> PathBuf {
    let parent = parent.as_os_str().as_bytes();
    let parent = if parent == b"/" { &[][..] } else { parent };
    let mut path = Vec::with_capacity(parent.len() + 1 + name.len());
    path.extend_from_slice(parent);
    path.push(b'/');
    path.extend_from_slice(name.as_bytes());
    PathBuf::from(OsString::from_vec(path))
}

/// Whether `path` is `dir` or lies below it.
fn is_within(path: &OsStr, dir: &Path) -> bool {
    let (path, dir) = (path.as_bytes(), dir.as_os_str().as_bytes());
    path == dir || (path.starts_with(dir) && (dir == b"/" || path.get(dir.len()) == Some(&b'/')))
}

impl Inodes {
    /// The path events use for `ino`.
    pub(crate) fn path(&self, ino: Ino) -> Option<&Path> {
        self.nodes
            .get(&ino)
            .and_then(|n| n.paths.first())
            .map(Path::new)
    }

    /// The kind recorded for `ino`.
    pub(crate) fn kind(&self, ino: Ino) -> Option<FileKind> {
        self.nodes.get(&ino).map(|n| n.kind)
    }

    /// What the engine knows of `ino`'s privileges; `None` for an inode the kernel forgot.
    pub(crate) fn privileges(&mut self, ino: Ino) -> Option<&mut Privileges> {
        self.nodes.get_mut(&ino).map(|n| &mut n.privileges)
    }

    /// The inode of `path`, if the kernel knows it.
    pub(crate) fn find(&self, path: &Path) -> Option<Ino> {
        self.by_path.get(path.as_os_str()).copied()
    }

    /// Records one kernel lookup of `path` (a `kind` object) and returns its inode.
    pub(crate) fn lookup(&mut self, path: &Path, kind: FileKind) -> Ino {
        if let Some(&ino) = self.by_path.get(path.as_os_str()) {
            if let Some(n) = self.nodes.get_mut(&ino) {
                if n.kind == kind {
                    n.lookups += 1;
                    return ino;
                }
            }
            // The object behind the name changed kind behind the kernel's back: a new node.
            self.unlink(path);
        }
        let ino = Ino(self.next);
        self.next += 1;
        self.nodes.insert(
            ino,
            Node {
                paths: vec![path.as_os_str().to_owned()],
                kind,
                lookups: 1,
                privileges: Privileges::default(),
            },
        );
        self.by_path.insert(path.as_os_str().to_owned(), ino);
        ino
    }

    /// Records one kernel lookup of `path` as the application's file id `id` (`use_file_ids`)
    /// and returns the inode number, which is `id` itself: a second name with the same id is
    /// the same inode (a hard link). `None` for the ids no object may have: 0, and the root's
    /// 1 for anything but `/`.
    pub(crate) fn lookup_id(&mut self, path: &Path, kind: FileKind, id: u64) -> Option<Ino> {
        if path.as_os_str() == "/" {
            return Some(ROOT);
        }
        if id == 0 || id == ROOT.0 {
            return None;
        }
        let id = Ino(id);
        match self.by_path.get(path.as_os_str()) {
            Some(&old) if old == id => {}
            Some(_) => self.unlink(path),
            None => {}
        }
        match self.nodes.get_mut(&id) {
            Some(n) if n.kind == kind => {
                n.lookups += 1;
                if !n.paths.iter().any(|p| p == path.as_os_str()) {
                    n.paths.push(path.as_os_str().to_owned());
                }
            }
            existing => {
                // A new object, or the id now names an object of another kind.
                let lookups = existing.map_or(1, |n| n.lookups + 1);
                if let Some(old) = self.nodes.remove(&id) {
                    for p in old.paths {
                        if self.by_path.get(&p) == Some(&id) {
                            self.by_path.remove(&p);
                        }
                    }
                }
                self.nodes.insert(
                    id,
                    Node {
                        paths: vec![path.as_os_str().to_owned()],
                        kind,
                        lookups,
                        privileges: Privileges::default(),
                    },
                );
            }
        }
        // A lookup of a name the table already knows allocates nothing.
        if self.by_path.get(path.as_os_str()) != Some(&id) {
            self.by_path.insert(path.as_os_str().to_owned(), id);
        }
        Some(id)
    }

    /// Records one kernel lookup of `ino` under the additional name `path` (a hard link).
    pub(crate) fn link(&mut self, ino: Ino, path: &Path) -> bool {
        let Some(n) = self.nodes.get_mut(&ino) else {
            return false;
        };
        n.lookups += 1;
        if !n.paths.iter().any(|p| p == path.as_os_str()) {
            n.paths.push(path.as_os_str().to_owned());
        }
        self.by_path.insert(path.as_os_str().to_owned(), ino);
        true
    }

    /// How many names of `ino` the table knows (0 for an unknown inode).
    pub(crate) fn names(&self, ino: Ino) -> usize {
        self.nodes.get(&ino).map_or(0, |n| n.paths.len())
    }

    /// The kernel dropped `count` lookups of `ino`; whether it no longer knows the inode.
    pub(crate) fn forget(&mut self, ino: Ino, count: u64) -> bool {
        if ino == ROOT {
            return false;
        }
        let gone = match self.nodes.get_mut(&ino) {
            Some(n) => {
                n.lookups = n.lookups.saturating_sub(count);
                n.lookups == 0
            }
            None => false,
        };
        if gone {
            if let Some(n) = self.nodes.remove(&ino) {
                for p in n.paths {
                    if self.by_path.get(&p) == Some(&ino) {
                        self.by_path.remove(&p);
                    }
                }
            }
        }
        gone
    }

    /// The name `path` is gone. Its node keeps the name for events if it was its last one.
    pub(crate) fn unlink(&mut self, path: &Path) {
        let Some(ino) = self.by_path.remove(path.as_os_str()) else {
            return;
        };
        if let Some(n) = self.nodes.get_mut(&ino) {
            if n.paths.len() > 1 {
                n.paths.retain(|p| p != path.as_os_str());
            }
        }
    }

    /// `from` is now `to`, with everything below it; whatever `to` named before is unlinked.
    pub(crate) fn rename(&mut self, from: &Path, to: &Path) {
        self.unlink(to);
        let only = self
            .by_path
            .get(from.as_os_str())
            .copied()
            .filter(|i| self.kind(*i) != Some(FileKind::Directory));
        let moved: Vec<(OsString, Ino)> = match only {
            // Nothing lies below a file or link: no need to scan the table.
            Some(ino) => vec![(from.as_os_str().to_owned(), ino)],
            None => self
                .by_path
                .iter()
                .filter(|(p, _)| is_within(p, from))
                .map(|(p, i)| (p.clone(), *i))
                .collect(),
        };
        for (old, _) in &moved {
            self.by_path.remove(old);
        }
        self.place(moved, from, to);
    }

    /// `RENAME_EXCHANGE`: `a` and `b` (and everything below them) trade names.
    pub(crate) fn exchange(&mut self, a: &Path, b: &Path) {
        let below = |root: &Path| -> Vec<(OsString, Ino)> {
            self.by_path
                .iter()
                .filter(|(p, _)| is_within(p, root))
                .map(|(p, i)| (p.clone(), *i))
                .collect()
        };
        let (under_a, under_b) = (below(a), below(b));
        for (old, _) in under_a.iter().chain(&under_b) {
            self.by_path.remove(old);
        }
        self.place(under_a, a, b);
        self.place(under_b, b, a);
    }

    /// Puts each `(path, inode)` below `from` (already out of `by_path`) at the same place
    /// below `to`.
    fn place(&mut self, moved: Vec<(OsString, Ino)>, from: &Path, to: &Path) {
        for (old, ino) in moved {
            let mut new = to.as_os_str().to_owned();
            new.push(OsStr::from_bytes(&old.as_bytes()[from.as_os_str().len()..]));
            self.by_path.insert(new.clone(), ino);
            if let Some(n) = self.nodes.get_mut(&ino) {
                for p in n.paths.iter_mut() {
                    if *p == old {
                        *p = new.clone();
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn names_are_bytes_and_round_trip() {
        let mut t = Inodes::default();
        let latin1 = OsStr::from_bytes(b"caf\xe9");
        let d = join(p("/"), OsStr::from_bytes(b"d\xff"));
        let f = join(&d, latin1);
        assert_eq!(f.as_os_str().as_bytes(), b"/d\xff/caf\xe9");
        let fi = t.lookup(&f, FileKind::File);
        t.lookup(&d, FileKind::Directory);
        let to = join(p("/"), OsStr::from_bytes(b"\x80"));
        t.rename(&d, &to);
        assert_eq!(
            t.path(fi).map(|p| p.as_os_str().as_bytes()),
            Some(&b"/\x80/caf\xe9"[..])
        );
    }

    #[test]
    fn join_builds_full_paths() {
        assert_eq!(join(p("/"), OsStr::new("a")), p("/a"));
        assert_eq!(join(p("/d"), OsStr::new("a")), p("/d/a"));
    }

    #[test]
    fn lookups_are_counted_and_forgotten() {
        let mut t = Inodes::default();
        let a = t.lookup(p("/a"), FileKind::File);
        assert_eq!(t.lookup(p("/a"), FileKind::File), a);
        assert_eq!(t.path(a), Some(p("/a")));
        t.forget(a, 1);
        assert_eq!(t.find(p("/a")), Some(a));
        t.forget(a, 1);
        assert_eq!(t.find(p("/a")), None);
        assert_eq!(t.path(a), None);
        t.forget(ROOT, 100);
        assert_eq!(t.path(ROOT), Some(p("/")));
    }

    #[test]
    fn rename_moves_descendants_and_replaces_target() {
        let mut t = Inodes::default();
        let d = t.lookup(p("/d"), FileKind::Directory);
        let f = t.lookup(p("/d/f"), FileKind::File);
        let deep = t.lookup(p("/d/e/g"), FileKind::File);
        let other = t.lookup(p("/dx"), FileKind::File);
        let target = t.lookup(p("/n"), FileKind::Directory);
        t.rename(p("/d"), p("/n"));
        assert_eq!(t.path(d), Some(p("/n")));
        assert_eq!(t.path(f), Some(p("/n/f")));
        assert_eq!(t.path(deep), Some(p("/n/e/g")));
        assert_eq!(
            t.path(other),
            Some(p("/dx")),
            "a sibling with a common prefix stays"
        );
        assert_eq!(t.find(p("/n")), Some(d));
        assert_ne!(t.find(p("/n")), Some(target));
        assert_eq!(t.find(p("/d/f")), None);
    }

    #[test]
    fn exchange_swaps_two_trees() {
        let mut t = Inodes::default();
        let d = t.lookup(p("/d"), FileKind::Directory);
        let f = t.lookup(p("/d/f"), FileKind::File);
        let g = t.lookup(p("/g"), FileKind::File);
        t.exchange(p("/d"), p("/g"));
        assert_eq!(t.path(d), Some(p("/g")));
        assert_eq!(t.path(f), Some(p("/g/f")));
        assert_eq!(t.path(g), Some(p("/d")));
        assert_eq!(
            (t.find(p("/d")), t.find(p("/g")), t.find(p("/d/f"))),
            (Some(g), Some(d), None)
        );
    }

    #[test]
    fn unlinked_open_node_keeps_its_last_name() {
        let mut t = Inodes::default();
        let a = t.lookup(p("/a"), FileKind::File);
        t.unlink(p("/a"));
        assert_eq!(t.find(p("/a")), None);
        assert_eq!(t.path(a), Some(p("/a")));
        let b = t.lookup(p("/a"), FileKind::File);
        assert_ne!(a, b, "a new file under the old name is a new node");
    }

    #[test]
    fn hard_links_share_a_node_until_each_name_goes() {
        let mut t = Inodes::default();
        let a = t.lookup(p("/a"), FileKind::File);
        assert!(t.link(a, p("/b")));
        assert_eq!(t.find(p("/b")), Some(a));
        t.unlink(p("/a"));
        assert_eq!(t.path(a), Some(p("/b")));
        assert!(!t.link(Ino(999), p("/c")));
    }

    #[test]
    fn file_ids_are_the_inode_numbers_and_join_hard_links() {
        let mut t = Inodes::default();
        assert_eq!(t.lookup_id(p("/a"), FileKind::File, 42), Some(Ino(42)));
        assert_eq!(t.lookup_id(p("/b"), FileKind::File, 42), Some(Ino(42)));
        assert_eq!(t.find(p("/b")), Some(Ino(42)));
        assert_eq!(t.path(Ino(42)), Some(p("/a")));
        t.unlink(p("/a"));
        assert_eq!(t.path(Ino(42)), Some(p("/b")));
        t.forget(Ino(42), 1);
        assert_eq!(t.path(Ino(42)), Some(p("/b")), "one lookup is left");
        t.forget(Ino(42), 1);
        assert_eq!(t.path(Ino(42)), None);
        assert_eq!(t.lookup_id(p("/"), FileKind::Directory, 7), Some(ROOT));
        assert_eq!(t.lookup_id(p("/z"), FileKind::File, 0), None);
        assert_eq!(t.lookup_id(p("/z"), FileKind::File, ROOT.0), None);
    }

    #[test]
    fn a_name_that_changed_kind_gets_a_new_node() {
        let mut t = Inodes::default();
        let a = t.lookup(p("/a"), FileKind::File);
        let d = t.lookup(p("/a"), FileKind::Directory);
        assert_ne!(a, d);
        assert_eq!(t.kind(d), Some(FileKind::Directory));
    }
}
