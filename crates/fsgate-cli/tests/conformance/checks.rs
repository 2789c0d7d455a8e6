//! The POSIX checks: each runs in a fresh directory of one target and returns what it
//! observed (errno names, bytes, sizes, checksums, counts, modes, owners, which times
//! changed) as `label: value` lines, so the targets can be compared line by line. Nothing
//! observed depends on the target's inode numbers, block allocation or the clock.
//!
//! Topics live in their own modules: [`basics`] (open, read, write, truncate, sync, times,
//! xattrs), [`file_types`], [`names`] (length limits), [`namespace`] (links, renames,
//! directories, symlinks), [`permissions`] (other users, set-id bits, sticky and set-group-ID
//! directories, time stamps) and [`ranges`] (`fallocate`, `copy_file_range`, `mmap`).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::sys;

#[path = "basics.rs"]
mod basics;
#[path = "file_types.rs"]
mod file_types;
#[path = "names.rs"]
mod names;
#[path = "namespace.rs"]
mod namespace;
#[path = "permissions.rs"]
mod permissions;
#[path = "ranges.rs"]
mod ranges;

/// A check: observations of one behaviour in `dir`.
pub type Check = fn(&Path) -> Vec<String>;

/// Every check, in the order of the topics.
pub const CHECKS: &[(&str, Check)] = &[
    ("create_open_errors", basics::create_open_errors),
    ("open_flags", basics::open_flags),
    (
        "write_read_truncate_extend",
        basics::write_read_truncate_extend,
    ),
    ("o_append", basics::o_append),
    ("fsync", basics::fsync),
    ("open_unlinked_file", basics::open_unlinked_file),
    ("o_tmpfile", basics::o_tmpfile),
    ("xattrs", basics::xattrs),
    ("times_per_operation", basics::times_per_operation),
    ("utimensat_by_owner", basics::utimensat_by_owner),
    ("file_types_metadata", file_types::file_types_metadata),
    ("file_types_io", file_types::file_types_io),
    ("name_length_limits", names::name_length_limits),
    ("long_paths", names::long_paths),
    ("byte_names", names::byte_names),
    ("link_counts", namespace::link_counts),
    (
        "link_counts_across_renames",
        namespace::link_counts_across_renames,
    ),
    ("rename_edge_cases", namespace::rename_edge_cases),
    ("rename_exchange", namespace::rename_exchange),
    ("directory_errors", namespace::directory_errors),
    ("symlinks", namespace::symlinks),
    (
        "permissions_for_other_users",
        permissions::permissions_for_other_users,
    ),
    ("ownership_changes", permissions::ownership_changes),
    (
        "setid_cleared_on_write",
        permissions::setid_cleared_on_write,
    ),
    (
        "setid_cleared_on_chown",
        permissions::setid_cleared_on_chown,
    ),
    ("sticky_directory", permissions::sticky_directory),
    ("setgid_inheritance", permissions::setgid_inheritance),
    (
        "cp_a_keeps_modes_and_owners",
        permissions::cp_a_keeps_modes_and_owners,
    ),
    ("utimensat_permissions", permissions::utimensat_permissions),
    (
        "open_flags_for_other_users",
        permissions::open_flags_for_other_users,
    ),
    ("fallocate_modes", ranges::fallocate_modes),
    ("copy_file_range", ranges::copy_file_range),
    ("mmap", ranges::mmap),
];

/// `ok` or the errno's name.
pub fn e<T>(r: io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(err) => sys::error_name(&err),
    }
}

/// The names in `d`, sorted.
pub fn listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(d) {
        Ok(entries) => entries
            .map(|x| x.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(err) => vec![sys::error_name(&err)],
    };
    v.sort();
    v
}

/// `p`'s permission bits (with set-id and sticky bits) in octal, or the errno of `lstat`.
pub fn mode(p: &Path) -> String {
    match fs::symlink_metadata(p) {
        Ok(m) => format!("{:o}", m.mode() & 0o7777),
        Err(err) => sys::error_name(&err),
    }
}

/// `p`'s mode bits, owner and group, or the errno of `lstat`.
pub fn mode_and_owner(p: &Path) -> String {
    match fs::symlink_metadata(p) {
        Ok(m) => format!(
            "mode {:o} uid {} gid {}",
            m.mode() & 0o7777,
            m.uid(),
            m.gid()
        ),
        Err(err) => sys::error_name(&err),
    }
}

/// A deterministic byte pattern of `len` bytes, different at every offset of a page.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8 ^ seed)
        .collect()
}

/// FNV-1a of `bytes`, in hex: a short, stable stand-in for a file's contents.
pub fn checksum(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `size N sum X` of the file at `p`, or the errno of reading it.
pub fn content(p: &Path) -> String {
    match fs::read(p) {
        Ok(bytes) => format!("size {} sum {}", bytes.len(), checksum(&bytes)),
        Err(err) => format!("read {}", sys::error_name(&err)),
    }
}

fn pause() {
    std::thread::sleep(Duration::from_millis(30));
}

/// Which of atime, mtime, ctime of `p` changed across `op`.
pub fn times(p: &Path, op: impl FnOnce()) -> String {
    let before = fs::symlink_metadata(p).unwrap();
    pause();
    op();
    let after = fs::symlink_metadata(p).unwrap();
    let t = |m: &fs::Metadata| {
        (
            (m.atime(), m.atime_nsec()),
            (m.mtime(), m.mtime_nsec()),
            (m.ctime(), m.ctime_nsec()),
        )
    };
    let (b, a) = (t(&before), t(&after));
    let mut changed = Vec::new();
    if a.0 != b.0 {
        changed.push("atime");
    }
    if a.1 != b.1 {
        changed.push("mtime");
    }
    if a.2 != b.2 {
        changed.push("ctime");
    }
    changed.join("+")
}

/// A python3 that any user can run (a version manager's shim under `/root` is not one).
fn python() -> &'static str {
    ["/usr/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("python3")
}

/// Runs a Python script as `uid`/`gid` in `dir` (std drops root's supplementary groups, so
/// the caller is in `gid` only); returns its stdout lines. In the script, `t(label, f)`
/// prints `label ok` or `label ERRNO`; `utimens(path, atime_ns, mtime_ns)` is
/// `utimensat(2)` with `NOW` and `OMIT` for `UTIME_NOW` and `UTIME_OMIT`.
pub fn as_user(uid: u32, gid: u32, dir: &Path, script: &str) -> Vec<String> {
    use std::os::unix::process::CommandExt;
    let prelude = "import ctypes, errno, os, sys\n\
        def t(label, f):\n    \
            try:\n        f(); print(label, 'ok')\n    \
            except OSError as e:\n        print(label, errno.errorcode[e.errno])\n\
        NOW, OMIT = (1 << 30) - 1, (1 << 30) - 2\n\
        class Timespec(ctypes.Structure):\n    \
            _fields_ = [('sec', ctypes.c_long), ('nsec', ctypes.c_long)]\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        def utimens(path, a, m):\n    \
            ts = (Timespec * 2)(*[Timespec(*x) if isinstance(x, tuple) else Timespec(0, x) for x in (a, m)])\n    \
            if libc.utimensat(-100, path.encode(), ts, 0) != 0:\n        \
                n = ctypes.get_errno(); raise OSError(n, os.strerror(n))\n";
    let out = Command::new(python())
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .current_dir(dir)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python as {uid}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}
