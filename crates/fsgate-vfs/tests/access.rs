//! How reads reach a drive, through a real FUSE mount: by default two reads of one file
//! never run at the same time, with `SerializeAccess` off reads of different ranges do, and
//! the kernel reads ahead 1 MiB.

mod common;
use common::utf8;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use common::mount;
use fsgate_core::Result;
use fsgate_vfs::*;

/// How long a read waits for a second one to join it.
const PATIENCE: Duration = Duration::from_secs(1);

/// One 1 MiB file, `/f`, of zeros, whose reads wait a while for company and record the most
/// reads seen inside `on_read_file` at once.
#[derive(Default)]
struct Meeting {
    inside: Mutex<usize>,
    joined: Condvar,
    most: AtomicUsize,
}

impl Hooks for Meeting {}

impl Events for Meeting {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        if utf8(p.file_name) == "/f" {
            p.file_exists = true;
            p.info.mode = 0o444;
            p.info.size = 1 << 20;
        }
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
        let mut inside = self.inside.lock().unwrap();
        *inside += 1;
        self.most.fetch_max(*inside, Ordering::SeqCst);
        self.joined.notify_all();
        let (mut inside, _) = self
            .joined
            .wait_timeout_while(inside, PATIENCE, |n| *n < 2)
            .unwrap();
        *inside -= 1;
        p.buffer.fill(0);
        p.bytes_read = p.buffer.len();
        Ok(())
    }
}

/// Reads 4 KiB at offsets 0 and 512 KiB from two threads at once; returns the most reads the
/// drive had inside its handler at the same time.
fn two_reads_at_once(test: &str, serialize_access: bool) -> Option<usize> {
    let options = Options {
        file_cache: FileCache::None,
        serialize_access,
        ..Options::default()
    };
    let m = mount(test, options, |_| Meeting::default())?;
    // Opened first: an open is an event of the file too, and would wait for a running read.
    let files = [
        File::open(m.dir.join("f")).unwrap(),
        File::open(m.dir.join("f")).unwrap(),
    ];
    std::thread::scope(|s| {
        for (file, offset) in files.iter().zip([0u64, 512 << 10]) {
            s.spawn(move || {
                let mut buf = vec![1u8; 4096];
                file.read_exact_at(&mut buf, offset).unwrap();
                assert!(buf.iter().all(|&b| b == 0));
            });
        }
    });
    Some(m.drive.events().most.load(Ordering::SeqCst))
}

#[test]
fn by_default_reads_of_one_file_run_one_at_a_time() {
    if let Some(most) = two_reads_at_once("by_default_reads_of_one_file_run_one_at_a_time", true) {
        assert_eq!(most, 1);
    }
}

#[test]
fn without_serialize_access_reads_of_different_ranges_run_in_parallel() {
    if let Some(most) = two_reads_at_once(
        "without_serialize_access_reads_of_different_ranges_run_in_parallel",
        false,
    ) {
        assert_eq!(most, 2);
    }
}

#[test]
fn a_mounted_drive_reads_ahead_one_mib() {
    let Some(m) = mount(
        "a_mounted_drive_reads_ahead_one_mib",
        Options::default(),
        |_| Meeting::default(),
    ) else {
        return;
    };
    let mounts = fsgate_core::mountinfo::current().unwrap();
    let entry = mounts
        .iter()
        .rev()
        .find(|e| e.mount_point == m.dir.canonicalize().unwrap())
        .expect("the drive is in the mount table");
    let knob = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        entry.major, entry.minor
    );
    assert_eq!(std::fs::read_to_string(knob).unwrap().trim(), "1024");
}
