//! Filter rules: standard rules (access, control and notify flags per mask), passthrough
//! rules, and how a request is matched against them ("Order of rules").
//!
//! Rules are keyed by their mask text: adding a second rule with the same mask aggregates
//! the flags into the existing rule, deleting removes flags and drops the rule when none are
//! left. Order does not matter. A request is covered by the union of the flags of every
//! standard rule whose mask matches, minus the flags of every inverted rule whose inner mask
//! matches the path (an inverted rule both adds its flags to everything it does not name
//! and excludes what it names), minus the flags of every matching passthrough rule.
//!
//! The same rule type serves the overlay backend later: its extra control and access bits
//! (delete, rename, reparse) are reserved names today and refused by the fanotify backend
//! with a clear error rather than silently ignored.

use std::collections::BTreeMap;

use bitflags::bitflags;
use fsgate_core::mask::{FileMask, ProcessSelector, Requestor};
use fsgate_core::{Error, Result};

bitflags! {
    /// Access rule flags: verdicts the library's listener applies itself, without calling
    /// the application.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct AccessFlags: u32 {
        /// Deny opening for writing (the file becomes read-only): `open(2)` with
        /// `O_WRONLY`, `O_RDWR` or `O_TRUNC` fails with `EPERM`.
        const ACCESS_READ_ONLY = 0x0001;
        /// Deny reading (the file becomes write-only): opens for reading and `read(2)` on
        /// descriptors opened earlier fail with `EPERM`.
        const ACCESS_WRITE_ONLY = 0x0002;
        /// Deny deletion: `unlink(2)`, `rmdir(2)` and a `rename(2)` over the file fail with
        /// `EACCES`. Served by the overlay backend (fanotify cannot deny a delete).
        const ACCESS_DELETE_PROTECT = 0x0004;
        /// Deny execution: `execve(2)` and `mmap(PROT_EXEC)`-style opens fail with `EPERM`.
        const ACCESS_EXECUTE_PROTECT = 0x0008;
        /// Deny renaming: `rename(2)` of the file away, or over it, fails with `EACCES`.
        /// Served by the overlay backend.
        const ACCESS_RENAME_PROTECT = 0x0040;
        /// Deny every open.
        const ACCESS_DENY_ALL = 0x1000;
    }
}

bitflags! {
    /// Control event flags: which Before events the application's handler receives.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct ControlFlags: u64 {
        /// `on_before_create_file`: fanotify, an `open(2)` with `O_CREAT | O_EXCL`; the
        /// overlay, every creation of a name (before it exists).
        const FS_CE_BEFORE_CREATE = 0x0000_0001;
        /// `on_after_create_file` (overlay).
        const FS_CE_AFTER_CREATE = 0x0000_0002;
        /// `on_before_open_file`: every other open.
        const FS_CE_BEFORE_OPEN = 0x0000_0004;
        /// `on_after_open_file` (overlay).
        const FS_CE_AFTER_OPEN = 0x0000_0008;
        /// `on_before_read_file`: a `read(2)`-family call.
        const FS_CE_BEFORE_READ = 0x0000_0010;
        /// `on_after_read_file` (overlay): the data read, changeable before the caller
        /// gets it.
        const FS_CE_AFTER_READ = 0x0000_0020;
        /// `on_before_write_file` (overlay): the data to write, changeable before it lands.
        const FS_CE_BEFORE_WRITE = 0x0000_0040;
        /// `on_after_write_file` (overlay).
        const FS_CE_AFTER_WRITE = 0x0000_0080;
        /// `on_before_cleanup_file` (overlay): a `close(2)` of a descriptor.
        const FS_CE_BEFORE_CLEANUP = 0x0000_0400;
        /// `on_after_cleanup_file` (overlay).
        const FS_CE_AFTER_CLEANUP = 0x0000_0800;
        /// `on_before_close_file` (overlay): the last descriptor of a handle went.
        const FS_CE_BEFORE_CLOSE = 0x0000_1000;
        /// `on_after_close_file` (overlay).
        const FS_CE_AFTER_CLOSE = 0x0000_2000;
        /// `on_before_can_file_be_deleted` (overlay).
        const FS_CE_BEFORE_CAN_DELETE = 0x0000_4000;
        /// `on_after_can_file_be_deleted` (overlay).
        const FS_CE_AFTER_CAN_DELETE = 0x0000_8000;
        /// `on_before_delete_file` (overlay).
        const FS_CE_BEFORE_DELETE = 0x0001_0000;
        /// `on_after_delete_file` (overlay).
        const FS_CE_AFTER_DELETE = 0x0002_0000;
        /// `on_before_rename_or_move_file` (overlay; the mask is matched against the old
        /// name).
        const FS_CE_BEFORE_RENAME = 0x0004_0000;
        /// `on_after_rename_or_move_file` (overlay).
        const FS_CE_AFTER_RENAME = 0x0008_0000;
        /// `on_before_set_file_info` for size changes (overlay).
        const FS_CE_BEFORE_SET_SIZES = 0x0010_0000;
        /// `on_after_set_file_info` for size changes (overlay).
        const FS_CE_AFTER_SET_SIZES = 0x0020_0000;
        /// `on_before_set_file_info` for mode and time changes (overlay).
        const FS_CE_BEFORE_SET_ATTRIBUTES = 0x0040_0000;
        /// `on_after_set_file_info` for mode and time changes (overlay).
        const FS_CE_AFTER_SET_ATTRIBUTES = 0x0080_0000;
        /// `on_before_query_file_info` (overlay): a lookup or `stat`.
        const FS_CE_BEFORE_QUERY_FILE_INFO = 0x0100_0000;
        /// `on_after_query_file_info` (overlay).
        const FS_CE_AFTER_QUERY_FILE_INFO = 0x0200_0000;
        /// `on_before_enumerate_directory` (overlay; the mask is matched against the
        /// directory's own path).
        const FS_CE_BEFORE_ENUMERATE_DIRECTORY = 0x1000_0000;
        /// `on_after_enumerate_directory` (overlay): the whole listing, whose entries the
        /// handler may remove or add to.
        const FS_CE_AFTER_ENUMERATE_DIRECTORY = 0x2000_0000;
        /// `on_before_set_file_security` (overlay): a change of owner or group.
        const FS_CE_BEFORE_SET_SECURITY = 0x0001_0000_0000;
        /// `on_after_set_file_security` (overlay).
        const FS_CE_AFTER_SET_SECURITY = 0x0002_0000_0000;
        /// `on_before_execute`: an `execve(2)` of the file (fsgate addition; fanotify's
        /// exec permission event).
        const FS_CE_BEFORE_EXECUTE = 0x0100_0000_0000;
        /// Reparse the file name. Needs the overlay backend; refused by the fanotify backend.
        const FS_CE_REPARSE_FILENAME = 0x0000_4000_0000;
    }
}

bitflags! {
    /// Notification event flags: which Notify events fire (asynchronously, best effort).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct NotifyFlags: u64 {
        /// `on_notify_create_file` (files and directories).
        const FS_NE_CREATE = 0x0000_0001;
        /// `on_notify_open_file`.
        const FS_NE_OPEN = 0x0000_0002;
        /// `on_notify_read_file`.
        const FS_NE_READ = 0x0000_0004;
        /// `on_notify_write_file`.
        const FS_NE_WRITE = 0x0000_0008;
        /// `on_notify_rename_or_move_file`.
        const FS_NE_RENAME = 0x0000_0010;
        /// `on_notify_delete_file`.
        const FS_NE_DELETE = 0x0000_0020;
        /// `on_notify_set_file_attributes` (mode, owner, times, extended attributes).
        const FS_NE_SET_ATTRIBUTES = 0x0000_0040;
        /// `on_notify_close_file` (with `modified` telling whether it had been written).
        const FS_NE_CLOSE = 0x0000_0400;
        /// `on_notify_execute_file`: opened for execution (fsgate addition).
        const FS_NE_EXECUTE = 0x0001_0000_0000;
        /// Every notification above.
        const FS_NE_ALL = 0x0001_0000_047F;
    }
}

/// Linux file attributes in the reference's bit positions, for rule qualifiers.
pub mod attributes {
    /// No write permission bit set for anyone.
    pub const FILE_ATTRIBUTE_READONLY: u32 = 0x01;
    /// The name starts with a dot.
    pub const FILE_ATTRIBUTE_HIDDEN: u32 = 0x02;
    /// A directory.
    pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
    /// A regular file with none of the other attributes.
    pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
}

/// What a rule with qualifiers (`add_filter_rule_ex`) needs to know about the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// Size in bytes.
    pub size: u64,
    /// [`attributes`] bits.
    pub attributes: u32,
}

impl FileFacts {
    /// Facts of a file from its metadata and path.
    pub fn from_metadata(path: &str, meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let mut attrs = 0;
        if meta.permissions().mode() & 0o222 == 0 {
            attrs |= attributes::FILE_ATTRIBUTE_READONLY;
        }
        if path.rsplit('/').next().is_some_and(|n| n.starts_with('.')) {
            attrs |= attributes::FILE_ATTRIBUTE_HIDDEN;
        }
        if meta.is_dir() {
            attrs |= attributes::FILE_ATTRIBUTE_DIRECTORY;
        }
        if attrs == 0 {
            attrs = attributes::FILE_ATTRIBUTE_NORMAL;
        }
        Self {
            size: meta.len(),
            attributes: attrs,
        }
    }
}

/// Size and attribute qualifiers of `add_filter_rule_ex` / `add_passthrough_rule_ex`: the
/// mask must match first; then the file must satisfy every qualifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qualifiers {
    /// Smallest size covered (inclusive); `None`: no lower bound.
    pub min_size: Option<u64>,
    /// Largest size covered (inclusive); `None`: no upper bound.
    pub max_size: Option<u64>,
    /// The file must have every one of these attributes.
    pub include_attributes: u32,
    /// The file must have none of these attributes.
    pub exclude_attributes: u32,
}

impl Qualifiers {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn accepts(&self, facts: Option<FileFacts>) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(f) = facts else { return false };
        self.min_size.is_none_or(|m| f.size >= m)
            && self.max_size.is_none_or(|m| f.size <= m)
            && f.attributes & self.include_attributes == self.include_attributes
            && f.attributes & self.exclude_attributes == 0
    }
}

/// The flags of one rule (also the result of matching a request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleFlags {
    /// Access rule flags.
    pub access: AccessFlags,
    /// Control event flags.
    pub control: ControlFlags,
    /// Notification flags.
    pub notify: NotifyFlags,
}

impl RuleFlags {
    /// No flags at all.
    pub fn is_empty(&self) -> bool {
        self.access.is_empty() && self.control.is_empty() && self.notify.is_empty()
    }

    fn union(self, o: Self) -> Self {
        Self {
            access: self.access | o.access,
            control: self.control | o.control,
            notify: self.notify | o.notify,
        }
    }

    fn minus(self, o: Self) -> Self {
        Self {
            access: self.access - o.access,
            control: self.control - o.control,
            notify: self.notify - o.notify,
        }
    }
}

/// One aggregated rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The mask (the rule's identity).
    pub mask: FileMask,
    /// Its flags.
    pub flags: RuleFlags,
    /// Its qualifiers.
    pub qualifiers: Qualifiers,
}

/// The request a rule set is asked about.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Full path of the file.
    pub path: &'a str,
    /// The requesting process, when known.
    pub requestor: Option<Requestor<'a>>,
    /// Size and attributes, when known (rules with qualifiers never match without them).
    pub facts: Option<FileFacts>,
}

/// A set of rules keyed by mask: the standard/access ruleset or the passthrough ruleset.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: BTreeMap<String, Rule>,
}

impl RuleSet {
    /// Adds (or aggregates into the rule with the same mask). Qualifiers of a later add
    /// replace earlier ones when they are not empty.
    pub fn add(&mut self, mask: &str, flags: RuleFlags, qualifiers: Qualifiers) -> Result<()> {
        if flags.is_empty() {
            return Err(Error::invalid_argument(
                "flags",
                format!("a rule for '{mask}' needs at least one access, control or notify flag"),
            ));
        }
        if let (Some(lo), Some(hi)) = (qualifiers.min_size, qualifiers.max_size) {
            if lo > hi {
                return Err(Error::invalid_argument(
                    "min_size",
                    format!("{lo} exceeds max_size {hi}"),
                ));
            }
        }
        let parsed = FileMask::parse(mask)?;
        let entry = self.rules.entry(mask.to_string()).or_insert(Rule {
            mask: parsed,
            flags: RuleFlags::default(),
            qualifiers,
        });
        entry.flags = entry.flags.union(flags);
        if !qualifiers.is_empty() {
            entry.qualifiers = qualifiers;
        }
        Ok(())
    }

    /// Removes `flags` from the rule with this mask (all of them: the rule goes). Returns
    /// whether a rule with that mask existed.
    pub fn delete(&mut self, mask: &str, flags: Option<RuleFlags>) -> bool {
        let Some(rule) = self.rules.get_mut(mask) else {
            return false;
        };
        match flags {
            Some(f) => {
                rule.flags = rule.flags.minus(f);
                if rule.flags.is_empty() {
                    self.rules.remove(mask);
                }
            }
            None => {
                self.rules.remove(mask);
            }
        }
        true
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The rules, ordered by mask.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values()
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule has a per-process part, so the requestor's image must be known.
    pub fn needs_process(&self) -> bool {
        self.rules
            .values()
            .any(|r| !matches!(r.mask.process(), ProcessSelector::Any))
    }

    /// Whether any rule has qualifiers, so file facts must be known.
    pub fn needs_facts(&self) -> bool {
        self.rules.values().any(|r| !r.qualifiers.is_empty())
    }

    /// The union of the flags of every rule (what the kernel must be asked to report).
    pub fn all_flags(&self) -> RuleFlags {
        self.rules
            .values()
            .fold(RuleFlags::default(), |a, r| a.union(r.flags))
    }

    /// The flags that cover `subject` (see the [module](self) docs).
    pub fn flags_for(&self, subject: &Subject<'_>) -> RuleFlags {
        let mut added = RuleFlags::default();
        let mut excluded = RuleFlags::default();
        for rule in self.rules.values() {
            if !rule.qualifiers.accepts(subject.facts) {
                continue;
            }
            if rule.mask.matches(subject.path, subject.requestor) {
                added = added.union(rule.flags);
            } else if rule.mask.is_inverted()
                && rule.mask.matches_process(subject.requestor)
                && rule.mask.path().matches(subject.path)
            {
                excluded = excluded.union(rule.flags);
            }
        }
        added.minus(excluded)
    }
}

/// The standard and passthrough rulesets together.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Standard filter rules and access rules (one ruleset, as in the reference).
    pub standard: RuleSet,
    /// Passthrough rules.
    pub passthrough: RuleSet,
}

impl Rules {
    /// What applies to `subject`: standard flags minus passthrough flags.
    pub fn evaluate(&self, subject: &Subject<'_>) -> RuleFlags {
        let flags = self.standard.flags_for(subject);
        if flags.is_empty() || self.passthrough.is_empty() {
            return flags;
        }
        flags.minus(self.passthrough.flags_for(subject))
    }

    /// Whether process images must be looked up to evaluate these rules.
    pub fn needs_process(&self) -> bool {
        self.standard.needs_process() || self.passthrough.needs_process()
    }

    /// Whether file facts must be looked up to evaluate these rules.
    pub fn needs_facts(&self) -> bool {
        self.standard.needs_facts() || self.passthrough.needs_facts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify(n: NotifyFlags) -> RuleFlags {
        RuleFlags {
            notify: n,
            ..Default::default()
        }
    }

    fn at(path: &str) -> Subject<'_> {
        Subject {
            path,
            requestor: None,
            facts: None,
        }
    }

    #[test]
    fn same_mask_aggregates_and_delete_removes_flags_then_rule() {
        let mut s = RuleSet::default();
        s.add(
            "/d/*",
            notify(NotifyFlags::FS_NE_CREATE),
            Qualifiers::default(),
        )
        .unwrap();
        s.add(
            "/d/*",
            notify(NotifyFlags::FS_NE_DELETE),
            Qualifiers::default(),
        )
        .unwrap();
        assert_eq!(s.rules().count(), 1);
        assert_eq!(
            s.flags_for(&at("/d/x")).notify,
            NotifyFlags::FS_NE_CREATE | NotifyFlags::FS_NE_DELETE
        );
        assert!(s.delete("/d/*", Some(notify(NotifyFlags::FS_NE_CREATE))));
        assert_eq!(s.flags_for(&at("/d/x")).notify, NotifyFlags::FS_NE_DELETE);
        assert!(s.delete("/d/*", Some(notify(NotifyFlags::FS_NE_DELETE))));
        assert!(s.is_empty());
        assert!(!s.delete("/d/*", None));
    }

    #[test]
    fn empty_flags_and_bad_sizes_are_refused_with_the_argument_named() {
        let mut s = RuleSet::default();
        let e = s
            .add("*", RuleFlags::default(), Qualifiers::default())
            .unwrap_err();
        assert!(e.message().contains("flags"), "{e}");
        let q = Qualifiers {
            min_size: Some(10),
            max_size: Some(5),
            ..Default::default()
        };
        let e = s.add("*", notify(NotifyFlags::FS_NE_ALL), q).unwrap_err();
        assert!(e.message().contains("min_size"), "{e}");
    }

    #[test]
    fn inverted_rules_cover_the_rest_and_exclude_what_they_name() {
        let mut s = RuleSet::default();
        s.add(
            "/d/*",
            notify(NotifyFlags::FS_NE_WRITE),
            Qualifiers::default(),
        )
        .unwrap();
        s.add(
            "||*.tmp",
            notify(NotifyFlags::FS_NE_WRITE),
            Qualifiers::default(),
        )
        .unwrap();
        assert_eq!(
            s.flags_for(&at("/d/a.txt")).notify,
            NotifyFlags::FS_NE_WRITE
        );
        assert_eq!(
            s.flags_for(&at("/elsewhere/b")).notify,
            NotifyFlags::FS_NE_WRITE
        );
        assert!(s.flags_for(&at("/d/a.tmp")).is_empty());
    }

    #[test]
    fn passthrough_rules_remove_flags() {
        let mut r = Rules::default();
        r.standard
            .add(
                "/d/*",
                notify(NotifyFlags::FS_NE_ALL),
                Qualifiers::default(),
            )
            .unwrap();
        r.passthrough
            .add(
                "*.log",
                notify(NotifyFlags::FS_NE_ALL),
                Qualifiers::default(),
            )
            .unwrap();
        assert!(r.evaluate(&at("/d/x.log")).is_empty());
        assert_eq!(r.evaluate(&at("/d/x.txt")).notify, NotifyFlags::FS_NE_ALL);
    }

    #[test]
    fn per_process_masks_use_the_requestor() {
        let mut s = RuleSet::default();
        s.add(
            "cat|/d/*",
            notify(NotifyFlags::FS_NE_OPEN),
            Qualifiers::default(),
        )
        .unwrap();
        s.add(
            "~42|/d/*",
            notify(NotifyFlags::FS_NE_READ),
            Qualifiers::default(),
        )
        .unwrap();
        assert!(s.needs_process());
        let cat = Requestor {
            pid: 42,
            image: "/usr/bin/cat",
        };
        let sh = Requestor {
            pid: 7,
            image: "/bin/sh",
        };
        let f = |r| {
            s.flags_for(&Subject {
                path: "/d/x",
                requestor: Some(r),
                facts: None,
            })
            .notify
        };
        assert_eq!(f(cat), NotifyFlags::FS_NE_OPEN);
        assert_eq!(f(sh), NotifyFlags::FS_NE_READ);
    }

    #[test]
    fn qualifiers_need_facts_and_bound_size_and_attributes() {
        let mut s = RuleSet::default();
        let q = Qualifiers {
            min_size: Some(100),
            exclude_attributes: attributes::FILE_ATTRIBUTE_HIDDEN,
            ..Default::default()
        };
        s.add("/d/*", notify(NotifyFlags::FS_NE_READ), q).unwrap();
        let with = |size, attributes| Subject {
            path: "/d/x",
            requestor: None,
            facts: Some(FileFacts { size, attributes }),
        };
        assert!(s.flags_for(&at("/d/x")).is_empty());
        assert!(s
            .flags_for(&with(99, attributes::FILE_ATTRIBUTE_NORMAL))
            .is_empty());
        assert_eq!(
            s.flags_for(&with(100, attributes::FILE_ATTRIBUTE_NORMAL))
                .notify,
            NotifyFlags::FS_NE_READ
        );
        assert!(s
            .flags_for(&with(500, attributes::FILE_ATTRIBUTE_HIDDEN))
            .is_empty());
    }
}
