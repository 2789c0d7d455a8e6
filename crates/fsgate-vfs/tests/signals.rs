//! A mounted drive leaves the application's signals to the application: every thread the
//! library started for the mount (FUSE readers, the dispatcher's workers and watchdog)
//! blocks `SIGINT` and `SIGTERM`, so a Ctrl-C reaches the program's own threads, as
//! `/proc/self/task/*/status` shows. This file holds one test, so the threads of its process
//! are the harness's, the test's and the drive's.

mod common;

use std::fs;

use common::mount;
use fsgate_core::Result;
use fsgate_vfs::*;

/// Every name but the root (which the library serves) exists as an empty file.
struct Files;

impl Hooks for Files {}

impl Events for Files {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        p.file_exists = p.file_name != std::path::Path::new("/");
        Ok(())
    }
}

/// The signal numbers blocked in thread `tid` of this process (its `SigBlk` mask).
fn blocked(tid: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .unwrap()
        .trim();
    u64::from_str_radix(mask, 16).unwrap()
}

#[test]
fn the_drive_threads_block_the_application_signals() {
    let Some(m) = mount("signals", Options::default(), |_| Files) else {
        return;
    };
    // Requests wake the readers and start workers.
    for i in 0..20 {
        fs::metadata(m.dir.join(format!("f{i}"))).unwrap();
    }
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() }.to_string();
    let main = std::process::id().to_string();
    let bit = |signal: libc::c_int| 1u64 << (signal - 1);
    let mut drive_threads = Vec::new();
    for task in fs::read_dir("/proc/self/task").unwrap() {
        let tid = task.unwrap().file_name().into_string().unwrap();
        if tid == me || tid == main {
            assert_eq!(
                blocked(&tid) & bit(libc::SIGINT),
                0,
                "the caller keeps its mask"
            );
            continue;
        }
        let comm = fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
        let mask = blocked(&tid);
        for signal in [libc::SIGINT, libc::SIGTERM] {
            assert_ne!(
                mask & bit(signal),
                0,
                "{} (thread {tid}) leaves {signal}",
                comm.trim()
            );
        }
        drive_threads.push(comm.trim().to_string());
    }
    assert!(
        drive_threads.len() >= 2,
        "the drive's threads: {drive_threads:?}"
    );
}
