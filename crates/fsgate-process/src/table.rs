//! What the filter knows about each live process: parent, creator and image.
//!
//! The table is filled from `/proc` when the filter starts and then kept current from the
//! process connector's fork, exec and exit events, so rules can match a process by image
//! and follow descendants without reading `/proc` for every event, and a termination event
//! can still name an image after the process is gone.

use std::collections::HashMap;
use std::fs;

/// One live process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcInfo {
    /// Parent process id.
    pub ppid: u32,
    /// The process whose fork created this one (0: created before the filter started).
    pub creator: u32,
    /// The thread whose fork created this one (0: unknown).
    pub creator_thread: u32,
    /// Full path of the image it runs (its parent's until it execs).
    pub image: String,
}

/// Live processes by id (thread-group id).
#[derive(Debug, Default)]
pub struct ProcessTable {
    procs: HashMap<u32, ProcInfo>,
}

impl ProcessTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The processes running now, from `/proc`. Processes that exit while being read are
    /// left out.
    pub fn load() -> Self {
        let mut table = Self::new();
        let Ok(dir) = fs::read_dir("/proc") else {
            return table;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(ppid) = read_ppid(pid) else { continue };
            let image = fsgate_core::originator::image_path(pid).unwrap_or_default();
            table.procs.insert(
                pid,
                ProcInfo {
                    ppid,
                    creator: 0,
                    creator_thread: 0,
                    image,
                },
            );
        }
        table
    }

    /// Inserts or replaces a process.
    #[cfg(test)]
    pub fn insert(&mut self, pid: u32, info: ProcInfo) {
        self.procs.insert(pid, info);
    }

    /// A new process `child`, forked by thread `parent_thread` of `parent`; it runs its
    /// parent's image until it execs.
    pub fn fork(&mut self, parent: u32, parent_thread: u32, child: u32) {
        let image = self
            .procs
            .get(&parent)
            .map(|p| p.image.clone())
            .unwrap_or_default();
        self.procs.insert(
            child,
            ProcInfo {
                ppid: parent,
                creator: parent,
                creator_thread: parent_thread,
                image,
            },
        );
    }

    /// `pid` now runs `image`; returns its entry (created from `/proc` when unknown).
    pub fn exec(&mut self, pid: u32, image: String) -> &ProcInfo {
        let info = self.procs.entry(pid).or_insert_with(|| ProcInfo {
            ppid: read_ppid(pid).unwrap_or(0),
            ..ProcInfo::default()
        });
        info.image = image;
        info
    }

    /// Removes an exited process, returning what was known about it.
    pub fn exit(&mut self, pid: u32) -> Option<ProcInfo> {
        self.procs.remove(&pid)
    }

    /// What is known about `pid`.
    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get(&pid)
    }

    /// The image of `pid`, or "" when unknown.
    pub fn image(&self, pid: u32) -> &str {
        self.procs.get(&pid).map_or("", |p| p.image.as_str())
    }

    /// Every descendant of `roots` (children, grandchildren, …), roots excluded.
    pub fn descendants_of(&self, roots: &[u32]) -> Vec<u32> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (&pid, info) in &self.procs {
            if info.ppid != pid {
                children.entry(info.ppid).or_default().push(pid);
            }
        }
        let mut out = Vec::new();
        let mut stack: Vec<u32> = roots.to_vec();
        while let Some(p) = stack.pop() {
            for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
                if !out.contains(&c) && !roots.contains(&c) {
                    out.push(c);
                    stack.push(c);
                }
            }
        }
        out
    }

    /// The processes whose image satisfies `pred`.
    pub fn matching(&self, mut pred: impl FnMut(&str) -> bool) -> Vec<u32> {
        self.procs
            .iter()
            .filter(|(_, p)| pred(&p.image))
            .map(|(&pid, _)| pid)
            .collect()
    }
}

/// The parent of `pid` from `/proc/<pid>/stat` (the field after the parenthesised name).
pub fn read_ppid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ppid(&stat)
}

fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_is_read_after_a_name_with_spaces_and_parens() {
        assert_eq!(parse_stat_ppid("42 (a b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn fork_inherits_image_and_exec_replaces_it() {
        let mut t = ProcessTable::new();
        t.insert(
            10,
            ProcInfo {
                ppid: 1,
                image: "/bin/sh".into(),
                ..ProcInfo::default()
            },
        );
        t.fork(10, 11, 20);
        assert_eq!(t.image(20), "/bin/sh");
        assert_eq!(t.get(20).unwrap().creator_thread, 11);
        t.exec(20, "/bin/true".into());
        assert_eq!(t.image(20), "/bin/true");
        assert_eq!(t.get(20).unwrap().ppid, 10);
        assert_eq!(t.exit(20).unwrap().image, "/bin/true");
        assert!(t.get(20).is_none());
    }

    #[test]
    fn descendants_follow_every_generation() {
        let mut t = ProcessTable::new();
        t.insert(1, ProcInfo::default());
        t.fork(1, 1, 2);
        t.fork(2, 2, 3);
        t.fork(3, 3, 4);
        t.fork(1, 1, 5);
        let mut d = t.descendants_of(&[2]);
        d.sort();
        assert_eq!(d, vec![3, 4]);
    }

    #[test]
    fn load_sees_this_process() {
        let t = ProcessTable::load();
        let me = std::process::id();
        assert!(t.get(me).is_some());
        assert!(!t.image(me).is_empty());
    }
}
