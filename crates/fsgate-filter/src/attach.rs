//! Choosing and attaching volumes (mounts) for a rule set, and what the dispatcher needs.

use std::path::PathBuf;
use std::sync::Arc;

use fsgate_core::dispatch::Hooks;
use fsgate_core::{code, Result};

use crate::events::{AttachToVolume, MonitorEvents};
use crate::rules::RuleSet;
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

/// Forwards the dispatcher's hooks to the application.
pub(crate) struct HookAdapter<H: ?Sized>(pub Arc<H>);

impl<H: MonitorEvents + ?Sized> Hooks for HookAdapter<H> {
    fn on_worker_thread_creation(&self) {
        self.0.on_worker_thread_creation();
    }
    fn on_worker_thread_termination(&self) {
        self.0.on_worker_thread_termination();
    }
    fn on_error(&self, code: u32, description: &str) {
        self.0.on_error(code, description);
    }
}
