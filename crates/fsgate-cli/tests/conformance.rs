//! A POSIX conformance list written for fsgate, run in one test against native tmpfs (the
//! reference: a tmpfs mounted by the test), native ext4 (a loop-mounted image), the memory
//! drive (over `/dev/fuse`, and over io_uring where the kernel offers it), the mirror drive
//! (over a directory of that tmpfs) and the mirror drive with `--passthrough` (over another
//! one).
//! Each check runs in a fresh directory of every target and reports what it observed —
//! errno names, bytes, link counts, which times changed, ownership — and every drive must
//! observe exactly what tmpfs observes. Permission checks run as uids 1000 and 1001
//! (python3 started with `setresuid`/`setresgid`, no supplementary groups).

#[path = "conformance/checks.rs"]
mod checks;
#[path = "conformance/served.rs"]
mod served;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use served::{require_root, Ext4, Served, Tmpfs};

#[test]
fn every_drive_behaves_like_tmpfs_on_the_posix_list() {
    if !require_root("every_drive_behaves_like_tmpfs_on_the_posix_list") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Other users must reach the targets for the permission checks.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = |name: &str| {
        let p = tmp.path().join(name);
        fs::create_dir(&p).unwrap();
        p
    };
    let backing = dir("tmpfs");
    let _tmpfs = Tmpfs::mount(&backing);
    let native = backing.join("native");
    let (source, source_pt) = (backing.join("source"), backing.join("source-pt"));
    for p in [&native, &source, &source_pt] {
        fs::create_dir(p).unwrap();
    }
    let ext4 = Ext4::mount(&tmp.path().join("ext4.img"), &dir("ext4"));
    let native_ext4 = ext4.0.join("native");
    fs::create_dir(&native_ext4).unwrap();
    let memory = Served::memory(&dir("memory"));
    let memory_uring = Served::memory_over_io_uring(&dir("memory-uring"));
    let mirror = Served::mirror(&source, &dir("mirror"), false);
    let passthrough = Served::mirror(&source_pt, &dir("mirror-pt"), true);
    assert!(
        passthrough.ready.ends_with("(passthrough: kernel)"),
        "{}",
        passthrough.ready
    );
    let kernel_offers_io_uring = fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
        .is_ok_and(|v| v.trim() == "Y");
    assert_eq!(
        memory_uring.ready.contains("over io_uring"),
        kernel_offers_io_uring,
        "{}",
        memory_uring.ready
    );
    let targets: Vec<(&str, PathBuf)> = vec![
        ("tmpfs", native),
        ("ext4", native_ext4),
        ("memory drive", memory.mountpoint.clone()),
        (
            "memory drive over io_uring",
            memory_uring.mountpoint.clone(),
        ),
        ("mirror drive", mirror.mountpoint.clone()),
        ("mirror --passthrough", passthrough.mountpoint.clone()),
    ];

    let mut differences = Vec::new();
    for (name, check) in checks::CHECKS {
        let mut seen: Vec<(&str, Vec<String>)> = Vec::new();
        for (target, root) in &targets {
            let d = root.join(name);
            fs::create_dir(&d).unwrap();
            seen.push((target, check(&d)));
        }
        let (reference, expected) = &seen[0];
        eprintln!("{name}: {expected:?}");
        for (target, got) in &seen[1..] {
            if got != expected {
                differences.push(format!(
                    "{name}: {target} differs from {reference}\n  {reference}: {expected:?}\n  {target}: {got:?}"
                ));
            }
        }
    }
    for s in [memory, memory_uring, mirror, passthrough] {
        assert_eq!(s.stop().code(), Some(0));
    }
    assert!(differences.is_empty(), "\n{}", differences.join("\n"));
}
