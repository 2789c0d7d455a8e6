//! Filtered and ignored process rules (reference: "File and Registry Filter Rules").
//!
//! Everything is ignored by default. A *filtered* rule opts processes in, an *ignored* rule
//! opts them out, and ignored always wins: a process is selected when some filtered rule
//! covers it and no ignored rule does. A rule names a process by id (`-1`: every process) or
//! by image (a name, or a full path when it contains `/`, with `*` and `?`). With
//! `include_children` a rule also covers every process descended from one it covers,
//! followed through fork events as they happen, whatever image the descendants run.
//!
//! PID reuse (reference: "PID Reuse"): a rule by id holds a pidfd on its process and is
//! dropped when that process exits, so a later process given the same id is not covered.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;

use fsgate_core::mask::PathMask;
use fsgate_core::{code, Error, Result};

use crate::table::ProcessTable;

/// A process id as the rule methods take it: a process, or -1 for every process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcessId {
    /// Every process (the reference's -1).
    All,
    /// One process (its thread-group id).
    Pid(u32),
}

impl ProcessId {
    /// `-1` → [`All`](Self::All); a positive id → [`Pid`](Self::Pid); anything else is an
    /// invalid argument.
    pub fn from_raw(process_id: i64) -> Result<Self> {
        match process_id {
            -1 => Ok(Self::All),
            1..=0x7fff_ffff => Ok(Self::Pid(process_id as u32)),
            other => Err(Error::invalid_argument(
                "process_id",
                format!("{other} is neither a process id nor -1 (all processes)"),
            )),
        }
    }
}

#[derive(Debug)]
struct Rule {
    include_children: bool,
    descendants: HashSet<u32>,
    /// Keeps the process's id from being mistaken for a successor's while the rule exists.
    _pidfd: Option<OwnedFd>,
}

impl Rule {
    fn new(include_children: bool, pidfd: Option<OwnedFd>) -> Self {
        Self {
            include_children,
            descendants: HashSet::new(),
            _pidfd: pidfd,
        }
    }
}

/// One list of rules (the filtered list or the ignored list).
#[derive(Debug, Default)]
pub struct RuleList {
    all: Option<Rule>,
    ids: HashMap<u32, Rule>,
    names: Vec<(String, PathMask, Rule)>,
}

impl RuleList {
    /// Adds (or replaces) a rule by id, computing the current descendants when asked to.
    pub fn add_id(
        &mut self,
        id: ProcessId,
        include_children: bool,
        pidfd: Option<OwnedFd>,
        table: &ProcessTable,
    ) {
        let mut rule = Rule::new(include_children, pidfd);
        match id {
            ProcessId::All => self.all = Some(rule),
            ProcessId::Pid(pid) => {
                if include_children {
                    rule.descendants = table.descendants_of(&[pid]).into_iter().collect();
                }
                self.ids.insert(pid, rule);
            }
        }
    }

    /// Removes a rule by id; `ERROR_FILE_NOT_FOUND` (2) when there is none.
    pub fn remove_id(&mut self, id: ProcessId) -> Result<()> {
        let removed = match id {
            ProcessId::All => self.all.take().is_some(),
            ProcessId::Pid(pid) => self.ids.remove(&pid).is_some(),
        };
        if removed {
            Ok(())
        } else {
            Err(Error::from_code(
                code::ERROR_FILE_NOT_FOUND,
                format!("no rule for process id {id:?}"),
            ))
        }
    }

    /// Adds (or replaces) a rule by image name or path mask.
    pub fn add_name(
        &mut self,
        name: &str,
        include_children: bool,
        table: &ProcessTable,
    ) -> Result<()> {
        let mask = PathMask::parse(name, true).map_err(|e| e.context("process_name"))?;
        let mut rule = Rule::new(include_children, None);
        if include_children {
            let roots = table.matching(|image| mask.matches(image));
            rule.descendants = table.descendants_of(&roots).into_iter().collect();
        }
        self.names.retain(|(n, _, _)| n != name);
        self.names.push((name.to_string(), mask, rule));
        Ok(())
    }

    /// Removes a rule by the name it was added with; `ERROR_FILE_NOT_FOUND` (2) when none.
    pub fn remove_name(&mut self, name: &str) -> Result<()> {
        let before = self.names.len();
        self.names.retain(|(n, _, _)| n != name);
        if self.names.len() < before {
            Ok(())
        } else {
            Err(Error::from_code(
                code::ERROR_FILE_NOT_FOUND,
                format!("no rule for process name '{name}'"),
            ))
        }
    }

    /// The rules by process id, with whether each includes children.
    pub fn id_rules(&self) -> impl Iterator<Item = (u32, bool)> + '_ {
        self.ids.iter().map(|(&pid, r)| (pid, r.include_children))
    }

    /// Whether the kernel side can decide this list alone: no `-1`, and every rule by name
    /// a plain name ([`fsgate_bpf::is_kernel_matchable`]).
    pub fn kernel_decidable(&self) -> bool {
        self.all.is_none()
            && self
                .names
                .iter()
                .all(|(n, _, _)| fsgate_bpf::is_kernel_matchable(n))
    }

    /// The rules by plain name (those the kernel matches), with whether each includes
    /// children.
    pub fn plain_names(&self) -> Vec<(String, bool)> {
        let mut names: Vec<_> = self
            .names
            .iter()
            .filter(|(n, _, _)| fsgate_bpf::is_kernel_matchable(n))
            .map(|(n, _, r)| (n.clone(), r.include_children))
            .collect();
        names.sort();
        names
    }

    /// The processes of `table` that the rules by plain name match now, with whether the
    /// matching rule includes children.
    pub fn plain_name_matches(&self, table: &ProcessTable) -> Vec<(u32, bool)> {
        self.names
            .iter()
            .filter(|(n, _, _)| fsgate_bpf::is_kernel_matchable(n))
            .flat_map(|(_, mask, rule)| {
                table
                    .matching(|image| mask.matches(image))
                    .into_iter()
                    .map(|pid| (pid, rule.include_children))
            })
            .collect()
    }

    /// Every process covered as a descendant of a rule with `include_children`.
    pub fn descendants(&self) -> Vec<u32> {
        self.ids
            .values()
            .chain(self.names.iter().map(|(_, _, r)| r))
            .flat_map(|r| r.descendants.iter().copied())
            .collect()
    }

    /// Whether the list covers process `pid` (running `image`).
    pub fn covers(&self, pid: u32, image: &str) -> bool {
        self.all.is_some()
            || self
                .ids
                .iter()
                .any(|(&id, r)| id == pid || r.descendants.contains(&pid))
            || self
                .names
                .iter()
                .any(|(_, m, r)| r.descendants.contains(&pid) || m.matches(image))
    }

    /// `child` was forked by `parent` (running `parent_image`): rules with
    /// `include_children` that cover the parent now cover the child.
    pub fn fork(&mut self, parent: u32, parent_image: &str, child: u32) {
        for (&id, rule) in self.ids.iter_mut() {
            if rule.include_children && (id == parent || rule.descendants.contains(&parent)) {
                rule.descendants.insert(child);
            }
        }
        for (_, mask, rule) in self.names.iter_mut() {
            if rule.include_children
                && (rule.descendants.contains(&parent) || mask.matches(parent_image))
            {
                rule.descendants.insert(child);
            }
        }
    }

    /// Process `pid` exited: it leaves every descendant set, and a rule by its id is
    /// dropped (PID reuse). Returns whether such a rule was dropped.
    pub fn exit(&mut self, pid: u32) -> bool {
        for rule in self.ids.values_mut() {
            rule.descendants.remove(&pid);
        }
        for (_, _, rule) in self.names.iter_mut() {
            rule.descendants.remove(&pid);
        }
        self.ids.remove(&pid).is_some()
    }
}

/// Both lists and the decision they make together.
#[derive(Debug, Default)]
pub struct Rules {
    /// Processes to fire events for.
    pub filtered: RuleList,
    /// Processes never to fire events for (wins over `filtered`).
    pub ignored: RuleList,
}

impl Rules {
    /// Whether requests made by `pid` (running `image`) fire events.
    pub fn selects(&self, pid: u32, image: &str) -> bool {
        self.filtered.covers(pid, image) && !self.ignored.covers(pid, image)
    }

    /// Follows a fork in both lists.
    pub fn fork(&mut self, parent: u32, parent_image: &str, child: u32) {
        self.filtered.fork(parent, parent_image, child);
        self.ignored.fork(parent, parent_image, child);
    }

    /// Follows an exit in both lists.
    pub fn exit(&mut self, pid: u32) {
        let filtered = self.filtered.exit(pid);
        let ignored = self.ignored.exit(pid);
        if filtered || ignored {
            tracing::debug!("process {pid} exited; its rules are dropped (PID reuse)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ProcInfo;

    fn table() -> ProcessTable {
        let mut t = ProcessTable::new();
        for (pid, ppid, image) in [
            (1, 0, "/sbin/init"),
            (10, 1, "/usr/bin/bash"),
            (11, 10, "/usr/bin/make"),
            (12, 11, "/usr/bin/cc"),
            (20, 1, "/usr/sbin/sshd"),
        ] {
            t.insert(
                pid,
                ProcInfo {
                    ppid,
                    image: image.into(),
                    ..ProcInfo::default()
                },
            );
        }
        t
    }

    #[test]
    fn nothing_is_selected_by_default() {
        let r = Rules::default();
        assert!(!r.selects(10, "/usr/bin/bash"));
    }

    #[test]
    fn process_id_accepts_pids_and_minus_one_only() {
        assert_eq!(ProcessId::from_raw(-1).unwrap(), ProcessId::All);
        assert_eq!(ProcessId::from_raw(42).unwrap(), ProcessId::Pid(42));
        for bad in [0, -2, 1 << 40] {
            let e = ProcessId::from_raw(bad).unwrap_err();
            assert!(e.message().contains("process_id"), "{e}");
        }
    }

    #[test]
    fn filtered_by_id_all_and_name() {
        let t = table();
        let mut r = Rules::default();
        r.filtered.add_id(ProcessId::Pid(11), false, None, &t);
        assert!(r.selects(11, "/usr/bin/make"));
        assert!(!r.selects(12, "/usr/bin/cc"));
        r.filtered.add_name("cc", false, &t).unwrap();
        assert!(r.selects(12, "/usr/bin/cc"));
        assert!(!r.selects(20, "/usr/sbin/sshd"));
        r.filtered.add_name("/usr/sbin/*", false, &t).unwrap();
        assert!(r.selects(20, "/usr/sbin/sshd"));
        assert!(!r.selects(21, "/opt/sbin/sshd"));
        r.filtered.add_id(ProcessId::All, false, None, &t);
        assert!(r.selects(21, "/opt/sbin/sshd"));
    }

    #[test]
    fn ignored_beats_filtered() {
        let t = table();
        let mut r = Rules::default();
        r.filtered.add_id(ProcessId::All, false, None, &t);
        r.ignored.add_name("ss?d", false, &t).unwrap();
        assert!(r.selects(10, "/usr/bin/bash"));
        assert!(!r.selects(20, "/usr/sbin/sshd"));
        r.ignored.add_id(ProcessId::Pid(10), false, None, &t);
        assert!(!r.selects(10, "/usr/bin/bash"));
    }

    #[test]
    fn include_children_covers_existing_and_new_descendants() {
        let t = table();
        let mut r = Rules::default();
        r.filtered.add_id(ProcessId::Pid(10), true, None, &t);
        assert!(r.selects(11, "/usr/bin/make"));
        assert!(r.selects(12, "/usr/bin/cc"));
        assert!(!r.selects(20, "/usr/sbin/sshd"));
        r.fork(12, "/usr/bin/cc", 13);
        assert!(r.selects(13, "/usr/bin/as"));
        r.fork(20, "/usr/sbin/sshd", 21);
        assert!(!r.selects(21, "/usr/sbin/sshd"));
        r.exit(13);
        assert!(!r.selects(13, "/usr/bin/as"));
    }

    #[test]
    fn name_rules_with_children_follow_forks() {
        let t = table();
        let mut r = Rules::default();
        r.filtered.add_name("make", true, &t).unwrap();
        assert!(r.selects(12, "/usr/bin/cc"));
        r.fork(11, "/usr/bin/make", 30);
        assert!(r.selects(30, "/usr/bin/ld"));
        r.fork(30, "/usr/bin/ld", 31);
        assert!(r.selects(31, "/usr/bin/x"));
        r.ignored.add_name("make", true, &t).unwrap();
        assert!(!r.selects(12, "/usr/bin/cc"));
    }

    #[test]
    fn id_rules_are_dropped_when_the_process_exits() {
        let t = table();
        let mut r = Rules::default();
        r.filtered.add_id(ProcessId::Pid(20), false, None, &t);
        assert!(r.selects(20, "/usr/sbin/sshd"));
        r.exit(20);
        assert!(!r.selects(20, "/usr/bin/reused"));
        assert!(r.filtered.remove_id(ProcessId::Pid(20)).is_err());
    }

    #[test]
    fn plain_names_are_decided_in_the_kernel_and_the_rest_is_not() {
        let t = table();
        let mut r = Rules::default();
        r.filtered.add_id(ProcessId::Pid(20), false, None, &t);
        r.filtered.add_name("make", true, &t).unwrap();
        assert!(r.filtered.kernel_decidable());
        assert_eq!(r.filtered.plain_names(), vec![("make".to_string(), true)]);
        assert_eq!(r.filtered.plain_name_matches(&t), vec![(11, true)]);
        assert_eq!(r.filtered.descendants(), vec![12]);
        r.filtered.add_name("/usr/sbin/*", false, &t).unwrap();
        assert!(!r.filtered.kernel_decidable());
        assert_eq!(r.filtered.plain_names().len(), 1);
        r.filtered.remove_name("/usr/sbin/*").unwrap();
        r.filtered.add_id(ProcessId::All, false, None, &t);
        assert!(!r.filtered.kernel_decidable());
    }

    #[test]
    fn removing_unknown_rules_is_not_found() {
        let mut r = Rules::default();
        let e = r.filtered.remove_name("nope").unwrap_err();
        assert_eq!(e.code(), code::ERROR_FILE_NOT_FOUND);
        assert!(e.message().contains("nope"));
        assert_eq!(
            r.ignored.remove_id(ProcessId::All).unwrap_err().code(),
            code::ERROR_FILE_NOT_FOUND
        );
        let t = table();
        r.filtered.add_name("a", false, &t).unwrap();
        r.filtered.add_name("a", true, &t).unwrap();
        r.filtered.remove_name("a").unwrap();
        assert!(r.filtered.remove_name("a").is_err());
        assert!(r.filtered.add_name("", false, &t).is_err());
    }
}
