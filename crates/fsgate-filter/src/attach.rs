//! Choosing and attaching volumes (mounts) for a rule set, keeping a group's marks in step
//! with the rules and the mount table ([`Marks`]), and what the dispatcher needs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use fsgate_core::sync::{lock, read};
use fsgate_core::{code, Result};
use fsgate_fanotify::{EventMask, Group, MarkAction, MarkFlags, MarkType};

use crate::events::{AttachToVolume, MonitorEvents};
use crate::rules::{RuleSet, Rules};
use crate::volumes::{self, Volume};

/// Filesystems that have no files to filter.
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "autofs",
    "nsfs",
    "efivarfs",
    "hugetlbfs",
];

/// The mounts a rule set needs now: see [`volumes_in`].
pub(crate) fn volumes_for(rules: &RuleSet) -> Result<Vec<Volume>> {
    let all = volumes::current()?;
    Ok(volumes_in(rules, &all))
}

/// The mounts of `all` a rule set needs: for each mask's leading directory, the mount
/// holding it and every mount below it; every real mount for a mask without one.
pub(crate) fn volumes_in(rules: &RuleSet, all: &[Volume]) -> Vec<Volume> {
    let mut chosen: Vec<Volume> = Vec::new();
    for rule in rules.rules() {
        let dir = rule
            .mask
            .path()
            .fixed_directory()
            .filter(|d| d.starts_with('/'))
            .map(PathBuf::from);
        let picks: Vec<&Volume> = match dir {
            Some(d) => volumes::holding(all, &d)
                .into_iter()
                .chain(all.iter().filter(|v| {
                    v.mount_point != d
                        && v.mount_point.starts_with(&d)
                        && !PSEUDO.contains(&v.fs_type.as_str())
                }))
                .collect(),
            None => all
                .iter()
                .filter(|v| !PSEUDO.contains(&v.fs_type.as_str()))
                .collect(),
        };
        for v in picks {
            if !chosen.iter().any(|c| c.mount_id == v.mount_id) {
                chosen.push(v.clone());
            }
        }
    }
    chosen
}

/// Asks the application about each volume and marks the ones it keeps with `mark`.
pub(crate) fn attach<H: MonitorEvents + ?Sized>(
    handler: &H,
    candidates: Vec<Volume>,
    attached: &mut Vec<Volume>,
    mut mark: impl FnMut(&Volume) -> std::io::Result<()>,
) {
    for volume in candidates {
        if attached.iter().any(|a| a.mount_id == volume.mount_id) {
            continue;
        }
        let mut p = AttachToVolume {
            volume,
            skip_volume: false,
        };
        if let Err(e) = handler.on_before_filter_attach_to_volume(&mut p) {
            handler.on_error(e.code(), &e.to_string());
            continue;
        }
        if p.skip_volume {
            continue;
        }
        match mark(&p.volume) {
            Ok(()) => {
                handler.on_after_filter_attach_to_volume(&p.volume);
                attached.push(p.volume);
            }
            Err(e) => handler.on_error(
                code::ERROR_NOT_SUPPORTED,
                &format!(
                    "cannot attach to {} ({}): {e}",
                    p.volume.mount_point.display(),
                    p.volume.fs_type
                ),
            ),
        }
    }
}

/// A mount a notification group resolves handles through: a detached clone of it
/// (`open_tree(OPEN_TREE_CLONE)`), which keeps the filesystem reachable for
/// `open_by_handle_at` without making the original mount busy, so `umount` still works.
/// Paths resolved through the clone are relative to the mount's root.
pub(crate) struct Root {
    pub(crate) mount_id: u64,
    pub(crate) mount_point: PathBuf,
    pub(crate) fsid: u64,
    pub(crate) fd: File,
}

fn clone_mount(path: &Path) -> std::io::Result<File> {
    use rustix::mount::{open_tree, OpenTreeFlags};
    let fd = open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    // open_tree gives an O_PATH descriptor, which open_by_handle_at refuses (EBADF): open
    // the clone's root for real; it keeps the clone (and only the clone) alive.
    let root = rustix::fs::openat(
        &fd,
        ".",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    Ok(File::from(root))
}

/// The volumes one fanotify group is marked on, and with which events.
///
/// Both the kernel mask and the set of volumes follow the rules: [`update`](Self::update)
/// runs at start and after every rule change, [`follow`](Self::follow) whenever the mount
/// table changes. Shared between the class (rule changes) and the group's reader thread
/// (mount changes) behind one mutex.
pub(crate) struct Marks {
    group: Arc<Group>,
    kind: MarkType,
    mask: EventMask,
    attached: Vec<Volume>,
    /// For notification groups, which report handles: a clone of each attached volume.
    roots: Option<Vec<Root>>,
}

impl Marks {
    /// No volumes yet. `kind` is how a volume is marked (the mount for permission events,
    /// the whole filesystem for notifications); `resolve_handles` keeps a [`Root`] per volume.
    pub(crate) fn new(group: Arc<Group>, kind: MarkType, resolve_handles: bool) -> Self {
        Self {
            group,
            kind,
            mask: EventMask::empty(),
            attached: Vec::new(),
            roots: resolve_handles.then(Vec::new),
        }
    }

    /// The handle roots of the attached volumes (empty for permission groups).
    pub(crate) fn roots(&self) -> &[Root] {
        self.roots.as_deref().unwrap_or_default()
    }

    /// Gives up every volume (the group is going away); returns them.
    pub(crate) fn take_attached(&mut self) -> Vec<Volume> {
        if let Some(r) = self.roots.as_mut() {
            r.clear();
        }
        std::mem::take(&mut self.attached)
    }

    /// The rules changed (or the group starts): re-marks the attached volumes with `mask`
    /// (adding the events it gained, removing those it lost) and attaches the `candidates`
    /// the rules now need. An empty mask attaches nothing.
    pub(crate) fn update<H: MonitorEvents + ?Sized>(
        &mut self,
        handler: &H,
        mask: EventMask,
        candidates: Vec<Volume>,
    ) {
        let (gained, lost) = (mask - self.mask, self.mask - mask);
        for v in &self.attached {
            for (action, bits) in [(MarkAction::Add, gained), (MarkAction::Remove, lost)] {
                if bits.is_empty() {
                    continue;
                }
                if let Err(e) = self.group.mark(
                    action,
                    self.kind,
                    MarkFlags::empty(),
                    bits,
                    None,
                    Some(&v.mount_point),
                ) {
                    handler.on_error(
                        code::ERROR_GEN_FAILURE,
                        &format!(
                            "re-marking {} for the changed rules: {e}",
                            v.mount_point.display()
                        ),
                    );
                }
            }
        }
        self.mask = mask;
        if !mask.is_empty() {
            self.attach(handler, candidates);
        }
    }

    /// The mount table changed to `now`: detaches the volumes that are gone (firing
    /// `on_after_filter_detach_from_volume`) and attaches the `candidates` the rules name.
    pub(crate) fn follow<H: MonitorEvents + ?Sized>(
        &mut self,
        handler: &H,
        now: &[Volume],
        candidates: Vec<Volume>,
    ) {
        let (kept, gone): (Vec<Volume>, Vec<Volume>) = std::mem::take(&mut self.attached)
            .into_iter()
            .partition(|a| now.iter().any(|v| v.mount_id == a.mount_id));
        self.attached = kept;
        for v in &gone {
            if let Some(r) = self.roots.as_mut() {
                r.retain(|r| r.mount_id != v.mount_id);
            }
            handler.on_after_filter_detach_from_volume(v);
        }
        if !self.mask.is_empty() {
            self.attach(handler, candidates);
        }
    }

    /// Offers `candidates` to the application and marks the volumes it keeps.
    fn attach<H: MonitorEvents + ?Sized>(&mut self, handler: &H, candidates: Vec<Volume>) {
        let (group, kind, mask, roots) = (&self.group, self.kind, self.mask, &mut self.roots);
        attach(handler, candidates, &mut self.attached, |v: &Volume| {
            let p = &v.mount_point;
            group.mark(
                MarkAction::Add,
                kind,
                MarkFlags::empty(),
                mask,
                None,
                Some(p),
            )?;
            if let Some(roots) = roots.as_mut() {
                let fd = clone_mount(p)?;
                roots.push(Root {
                    mount_id: v.mount_id,
                    mount_point: p.clone(),
                    fsid: rustix::fs::fstatvfs(&fd)?.f_fsid,
                    fd,
                });
            }
            Ok(())
        });
    }
}

/// The mount table changed: `marks` detaches the volumes that went away and attaches the
/// new ones the rules name. A mount table that cannot be read is reported to `on_error`.
pub(crate) fn follow_mounts<H: MonitorEvents + ?Sized>(
    handler: &H,
    rules: &RwLock<Rules>,
    marks: &Mutex<Marks>,
) {
    let now = match volumes::current() {
        Ok(v) => v,
        Err(e) => {
            handler.on_error(e.code(), e.message());
            return;
        }
    };
    let candidates = volumes_in(&read(rules).standard, &now);
    lock(marks).follow(handler, &now, candidates);
}
