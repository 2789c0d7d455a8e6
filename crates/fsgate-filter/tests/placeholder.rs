//! Placeholders on a loop-mounted ext4: data supplied by `on_hydrate_file` on first access.
//! Pre-content events are the kernel build's choice (Linux 6.14 and later, on filesystems
//! that allow them): where the probe finds the kernel refusing them, each test asserts the
//! documented refusal of `create_placeholder` instead.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::kernel_allows_pre_content_marks_in;
use fsgate_core::{code, Error, Result};
use fsgate_filter::events::{FilterEvents, Hooks, HydrateFile, MonitorEvents};
use fsgate_filter::filter::FileFilter;
use fsgate_filter::placeholder::PLACEHOLDER_XATTR;
use fsgate_testkit::{require_root, Ext4Mount, TmpfsMount};

/// The deterministic content of byte `i`.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 12)) as u8
}

#[derive(Default, Clone)]
struct Source {
    calls: Arc<Mutex<Vec<(u64, u64, u32)>>>,
    fail_with: Option<i32>,
}

impl MonitorEvents for Source {}
impl Hooks for Source {}
impl FilterEvents for Source {
    fn on_hydrate_file(&self, e: &mut HydrateFile) -> Result<()> {
        if let Some(errno) = self.fail_with {
            return Err(Error::from_errno(errno, "source unavailable"));
        }
        for (k, b) in e.buffer.iter_mut().enumerate() {
            *b = pattern(e.offset + k as u64);
        }
        self.calls
            .lock()
            .unwrap()
            .push((e.offset, e.buffer.len() as u64, e.process_id));
        Ok(())
    }
}

fn cat(path: &std::path::Path) -> (bool, Vec<u8>, String) {
    let out = Command::new("cat")
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates `path` as a placeholder of `size` bytes and returns true where the kernel allows
/// pre-content marks on its filesystem (probed first). Elsewhere asserts the documented
/// refusal (error 50 / `EOPNOTSUPP` naming `FAN_PRE_ACCESS`, Linux 6.14 and the filesystem;
/// no file left behind), says so, and returns false: the caller has nothing more to check.
fn create_placeholder_or_refusal(
    test: &str,
    f: &FileFilter<Source>,
    path: &std::path::Path,
    size: u64,
) -> bool {
    if kernel_allows_pre_content_marks_in(path.parent().unwrap()) {
        f.create_placeholder(path.to_str().unwrap(), size).unwrap();
        return true;
    }
    let e = f
        .create_placeholder(path.to_str().unwrap(), size)
        .unwrap_err();
    assert_eq!(e.code(), code::ERROR_NOT_SUPPORTED, "{e}");
    assert_eq!(e.errno(), libc::EOPNOTSUPP, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("FAN_PRE_ACCESS"), "{msg}");
    assert!(msg.contains("Linux 6.14"), "{msg}");
    let volumes = fsgate_filter::volumes::current().unwrap();
    let fs_type = &fsgate_filter::volumes::holding(&volumes, path.parent().unwrap())
        .unwrap()
        .fs_type;
    assert!(
        msg.contains(fs_type.as_str()),
        "{msg} should name {fs_type}"
    );
    assert!(
        !path.exists(),
        "the refused placeholder must not stay behind"
    );
    eprintln!(
        "{test}: this kernel refuses pre-content marks on {fs_type}; checked the documented \
         refusal of placeholders instead of hydration"
    );
    false
}

#[test]
fn placeholder_read_by_cat_yields_the_handlers_bytes_hydrated_once() {
    require_root!("fanotify pre-content groups and loop mounts need root");
    let fs = Ext4Mount::new(160);
    let src = Source::default();
    let f = FileFilter::new(src.clone());
    f.start_filter(0).unwrap();
    let path = fs.path().join("big.bin");
    let size: u64 = 64 << 20;
    let test = "placeholder_read_by_cat_yields_the_handlers_bytes_hydrated_once";
    if !create_placeholder_or_refusal(test, &f, &path, size) {
        return;
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    assert!(src.calls.lock().unwrap().is_empty(), "nothing read yet");

    let (ok, data, err) = cat(&path);
    assert!(ok, "cat failed: {err}");
    assert_eq!(data.len() as u64, size);
    let expected: Vec<u8> = (0..size).map(pattern).collect();
    assert!(data == expected, "cat saw bytes other than the handler's");

    let mut calls = src.calls.lock().unwrap().clone();
    assert!(!calls.is_empty());
    calls.sort();
    let mut next = 0;
    for &(offset, len, pid) in &calls {
        assert_eq!(offset, next, "ranges must tile the file once: {calls:?}");
        assert_ne!(pid, std::process::id(), "the reader is cat, not the filter");
        next = offset + len;
    }
    assert_eq!(next, size);

    let before = calls.len();
    let (ok, again, err) = cat(&path);
    assert!(ok, "second cat failed: {err}");
    assert!(again == expected, "second cat saw different bytes");
    assert_eq!(src.calls.lock().unwrap().len(), before, "hydrated twice");
    let mut value = [0u8; 32];
    let marker = rustix::fs::getxattr(&path, PLACEHOLDER_XATTR, &mut value[..]);
    assert_eq!(
        marker,
        Err(rustix::io::Errno::NODATA),
        "marker left after hydration"
    );
    eprintln!("hydrated in {before} calls");
    f.stop_filter().unwrap();
}

#[test]
fn handler_error_fails_the_read_with_its_errno() {
    require_root!("fanotify pre-content groups and loop mounts need root");
    let fs = Ext4Mount::new(32);
    let src = Source {
        fail_with: Some(libc::ENOSPC),
        ..Default::default()
    };
    let f = FileFilter::new(src);
    f.start_filter(0).unwrap();
    let path = fs.path().join("p.bin");
    let test = "handler_error_fails_the_read_with_its_errno";
    if !create_placeholder_or_refusal(test, &f, &path, 4096) {
        return;
    }
    let (ok, data, err) = cat(&path);
    assert!(!ok);
    assert!(data.is_empty());
    assert!(err.contains("No space left on device"), "{err}");
    f.stop_filter().unwrap();
}

/// tmpfs does not allow pre-content events on the kernels of this machine kind; should a
/// kernel build allow them, the placeholder must then be served like one on ext4.
#[test]
fn placeholder_on_tmpfs_is_refused_naming_the_requirement_unless_the_kernel_allows_it() {
    require_root!("fanotify pre-content groups and loop mounts need root");
    let mnt = TmpfsMount::new();
    let src = Source::default();
    let f = FileFilter::new(src.clone());
    f.start_filter(0).unwrap();
    let path = mnt.path().join("p.bin");
    let test = "placeholder_on_tmpfs_is_refused_naming_the_requirement_unless_the_kernel_allows_it";
    if create_placeholder_or_refusal(test, &f, &path, 1 << 20) {
        let (ok, data, err) = cat(&path);
        assert!(ok, "cat failed: {err}");
        assert!(
            data.iter()
                .enumerate()
                .all(|(i, &b)| b == pattern(i as u64)),
            "cat saw bytes other than the handler's"
        );
        assert_eq!(data.len(), 1 << 20);
        assert!(!src.calls.lock().unwrap().is_empty());
    }
    f.stop_filter().unwrap();
}

#[test]
fn placeholders_need_a_running_filter_and_the_marker() {
    require_root!("fanotify pre-content groups and loop mounts need root");
    let fs = Ext4Mount::new(32);
    let f = FileFilter::new(Source::default());
    let path = fs.path().join("p.bin");
    let e = f
        .create_placeholder(path.to_str().unwrap(), 10)
        .unwrap_err();
    assert_eq!(e.code(), code::ERROR_NOT_READY);
    f.start_filter(0).unwrap();
    std::fs::write(&path, b"plain").unwrap();
    let e = f.register_placeholder(path.to_str().unwrap()).unwrap_err();
    assert_eq!(e.code(), code::ERROR_INVALID_PARAMETER);
    assert!(e.to_string().contains(PLACEHOLDER_XATTR), "{e}");
    f.stop_filter().unwrap();
}

#[test]
fn concurrent_readers_get_the_same_bytes_and_each_range_is_hydrated_once() {
    require_root!("fanotify pre-content groups and loop mounts need root");
    let fs = Ext4Mount::new(64);
    let src = Source::default();
    let f = FileFilter::new(src.clone());
    f.start_filter(0).unwrap();
    let path = fs.path().join("shared.bin");
    let size: u64 = 16 << 20;
    let test = "concurrent_readers_get_the_same_bytes_and_each_range_is_hydrated_once";
    if !create_placeholder_or_refusal(test, &f, &path, size) {
        return;
    }
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || cat(&p))
        })
        .collect();
    let expected: Vec<u8> = (0..size).map(pattern).collect();
    for r in readers {
        let (ok, data, err) = r.join().unwrap();
        assert!(ok, "{err}");
        assert!(data == expected, "a reader saw other bytes");
    }
    let mut calls = src.calls.lock().unwrap().clone();
    calls.sort();
    let mut next = 0;
    for &(offset, len, _) in &calls {
        assert_eq!(offset, next, "overlapping or missing ranges: {calls:?}");
        next = offset + len;
    }
    assert_eq!(next, size);
    f.stop_filter().unwrap();
}
