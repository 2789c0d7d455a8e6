//! Directories for programs that a test runs as another user.
//!
//! That user may be unable to reach the checkout, `target/` (or a private
//! `CARGO_TARGET_DIR`), `$HOME` or `$TMPDIR`: a clone under a mode-0700 directory is enough.
//! So a test copies the program, and everything the program loads or opens, into a
//! [`reachable_tempdir`] and runs it from there.
//!
//! This file is shared by the test trees of several crates (`#[path]`), so that there is one
//! copy of the rule.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A fresh directory, mode 0755, that every user can enter and run programs from: under the
/// first of `$TMPDIR`, `/tmp`, `/var/tmp` and `/dev/shm` whose every ancestor lets other
/// users search it and whose filesystem is not mounted `noexec`. Removed on drop. Panics
/// naming the candidates when none qualifies.
pub fn reachable_tempdir() -> tempfile::TempDir {
    let candidates = [
        std::env::temp_dir(),
        PathBuf::from("/tmp"),
        PathBuf::from("/var/tmp"),
        PathBuf::from("/dev/shm"),
    ];
    let base = candidates
        .iter()
        .find(|c| others_can_run_programs_in(c))
        .unwrap_or_else(|| {
            panic!(
                "none of {candidates:?} lets other users search every directory up to it and \
                 run programs from it"
            )
        });
    let dir = tempfile::Builder::new()
        .prefix("fsgate-test-")
        .tempdir_in(base)
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Whether users other than the owner can search `dir` and every directory above it, and
/// execute programs from its filesystem.
fn others_can_run_programs_in(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let searchable = dir.ancestors().all(|d| {
        std::fs::metadata(d).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0)
    });
    let executable = rustix::fs::statvfs(&dir)
        .is_ok_and(|s| !s.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC));
    searchable && executable
}
