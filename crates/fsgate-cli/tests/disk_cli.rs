//! `fsgate disk …` against real loop devices and image files.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fsgate_install::{Installer, Package};
use tempfile::TempDir;

const GUID: &str = "{0D8C7B6A-5E4F-4321-8A9B-C0D1E2F3A4B5}";

fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping {test}: needs root (loop devices)");
    }
    root
}

/// fsgate installed for GUID under a temporary root.
fn installed() -> TempDir {
    let root = tempfile::tempdir().unwrap();
    let package = root.path().join("fsgate.pkg");
    Package::build(&package, Path::new(env!("CARGO_BIN_EXE_fsgate"))).unwrap();
    Installer::new(root.path().join("sys"))
        .install(&package, GUID, "", 0)
        .unwrap();
    root
}

fn fsgate(root: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fsgate"))
        .args(args)
        .args(["--product-guid", GUID])
        .env("FSGATE_ROOT", root.path().join("sys"))
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "fsgate failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct LoopDevice(PathBuf);

impl LoopDevice {
    fn new(image: &Path) -> Self {
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(image)
            .output()
            .unwrap();
        assert!(out.status.success());
        Self(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

#[test]
fn info_json_reports_geometry_and_mounts() {
    if !root_or_skip("info_json_reports_geometry_and_mounts") {
        return;
    }
    let root = installed();
    let image = root.path().join("disk.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(3 << 20)
        .unwrap();
    let dev = LoopDevice::new(&image);
    let out = ok(fsgate(
        &root,
        &["disk", "info", dev.0.to_str().unwrap(), "--json"],
    ));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sector_count"], 6144);
    assert_eq!(v["sector_size"], 512);
    assert_eq!(v["physical_sector_size"], 512);
    assert_eq!(v["size_bytes"], 3 << 20);
    assert_eq!(v["mount_points"], serde_json::json!([]));
    let out = ok(fsgate(&root, &["disk", "info", image.to_str().unwrap()]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("sector_count: 6144\n"), "{text}");
}

#[test]
fn write_then_read_round_trips_sectors() {
    if !root_or_skip("write_then_read_round_trips_sectors") {
        return;
    }
    let root = installed();
    let image = root.path().join("disk.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let dev = LoopDevice::new(&image);
    let device = dev.0.to_str().unwrap();
    let input = root.path().join("in.bin");
    let data = pattern(3 * 512, 7);
    std::fs::write(&input, &data).unwrap();
    ok(fsgate(
        &root,
        &[
            "disk",
            "write",
            device,
            "--sector",
            "10",
            "--in",
            input.to_str().unwrap(),
        ],
    ));
    let outfile = root.path().join("out.bin");
    ok(fsgate(
        &root,
        &[
            "disk",
            "read",
            device,
            "--sector",
            "10",
            "--count",
            "3",
            "--out",
            outfile.to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read(&outfile).unwrap(), data);
    let piped = ok(fsgate(
        &root,
        &["disk", "read", device, "--sector", "9", "--count", "2"],
    ));
    assert_eq!(&piped.stdout[..512], &[0u8; 512][..]);
    assert_eq!(&piped.stdout[512..], &data[..512]);
    std::fs::write(&input, &data[..100]).unwrap();
    let bad = fsgate(
        &root,
        &[
            "disk",
            "write",
            device,
            "--sector",
            "0",
            "--in",
            input.to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a whole number of 512-byte sectors"));
    let past = fsgate(
        &root,
        &["disk", "read", device, "--sector", "2047", "--count", "2"],
    );
    assert!(String::from_utf8_lossy(&past.stderr).contains("beyond the end"));
}

#[test]
fn image_with_verify_is_identical_and_sparse() {
    if !root_or_skip("image_with_verify_is_identical_and_sparse") {
        return;
    }
    let root = installed();
    let source = root.path().join("disk.img");
    let size = 8usize << 20;
    let mut content = vec![0u8; size];
    content[..4096].copy_from_slice(&pattern(4096, 1));
    content[5 << 20..(5 << 20) + 700].copy_from_slice(&pattern(700, 2));
    std::fs::write(&source, &content).unwrap();
    let dev = LoopDevice::new(&source);
    let copy = root.path().join("copy.img");
    let out = ok(fsgate(
        &root,
        &[
            "disk",
            "image",
            dev.0.to_str().unwrap(),
            copy.to_str().unwrap(),
            "--verify",
        ],
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("verified {size} bytes")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r'),
        "no progress bar when stderr is not a terminal"
    );
    assert_eq!(std::fs::read(&copy).unwrap(), content);
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.len(), size as u64);
    assert!(
        meta.blocks() * 512 <= 2 << 20,
        "6 of 8 MiB are zero chunks and stay holes: {} blocks",
        meta.blocks()
    );
}
