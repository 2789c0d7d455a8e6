//! `FireCleanupEvents` through a real FUSE mount: on, every `close(2)` fires
//! `on_cleanup_file`; off, none does, while close events, data and errors stay as they were.

mod common;
use common::utf8;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::{count, mount};
use fsgate_core::Result;
use fsgate_vfs::*;

/// One file, `/f`, kept in memory; counts cleanups, closes and writes.
#[derive(Default)]
struct Counting {
    data: Mutex<Vec<u8>>,
    cleanups: AtomicUsize,
    closes: AtomicUsize,
    writes: AtomicUsize,
}

impl Hooks for Counting {}

impl Events for Counting {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        if utf8(p.file_name) == "/f" {
            p.file_exists = true;
            p.info.mode = 0o666;
            p.info.size = self.data.lock().unwrap().len() as u64;
        }
        Ok(())
    }

    fn on_cleanup_file(&self, _p: &mut CleanupFileParams<'_, (), ()>) -> Result<()> {
        self.cleanups.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn on_close_file(&self, _p: &mut CloseFileParams<'_, (), ()>) -> Result<()> {
        self.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
        let data = self.data.lock().unwrap();
        let start = (p.position as usize).min(data.len());
        let n = (data.len() - start).min(p.buffer.len());
        p.buffer[..n].copy_from_slice(&data[start..start + n]);
        p.bytes_read = n;
        Ok(())
    }

    fn on_write_file(&self, p: &mut WriteFileParams<'_, (), ()>) -> Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut data = self.data.lock().unwrap();
        let end = p.position as usize + p.buffer.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[p.position as usize..end].copy_from_slice(p.buffer);
        p.bytes_written = p.buffer.len();
        Ok(())
    }
}

#[test]
fn by_default_every_close_fires_a_cleanup() {
    let Some(m) = mount(
        "by_default_every_close_fires_a_cleanup",
        Options::default(),
        |_| Counting::default(),
    ) else {
        return;
    };
    let e = m.drive.events();
    let file = File::open(m.dir.join("f")).unwrap();
    let dup = file.try_clone().unwrap();
    drop(file);
    assert_eq!(count(&e.cleanups), 1, "the first close(2) fired a cleanup");
    drop(dup);
    assert_eq!(count(&e.cleanups), 2, "so did the close of the duplicate");
    for _ in 0..3 {
        drop(File::open(m.dir.join("f")).unwrap());
    }
    assert_eq!(count(&e.cleanups), 5);
    assert!(common::wait_for(Duration::from_secs(5), || count(
        &e.closes
    ) == 4));
}

#[test]
fn without_cleanup_events_closes_fire_none_and_data_still_lands_before_close_returns() {
    let options = Options {
        fire_cleanup_events: false,
        // The writeback cache: close itself must push the dirty pages to the drive.
        file_cache_policy_write_through: false,
        ..Options::default()
    };
    let Some(m) = mount(
        "without_cleanup_events_closes_fire_none_and_data_still_lands_before_close_returns",
        options,
        |_| Counting::default(),
    ) else {
        return;
    };
    let e = m.drive.events();
    for _ in 0..3 {
        drop(File::open(m.dir.join("f")).unwrap());
    }
    let mut file = OpenOptions::new()
        .write(true)
        .open(m.dir.join("f"))
        .unwrap();
    file.write_all(b"written before close").unwrap();
    drop(file);
    assert!(count(&e.writes) >= 1, "close wrote the cached pages");
    assert_eq!(*e.data.lock().unwrap(), b"written before close");
    assert_eq!(count(&e.cleanups), 0, "no close fired on_cleanup_file");
    assert!(
        common::wait_for(Duration::from_secs(5), || count(&e.closes) == 4),
        "on_close_file still fired for each of the four handles: {}",
        count(&e.closes)
    );
    assert_eq!(
        fs::read(m.dir.join("f")).unwrap(),
        b"written before close".to_vec()
    );
}
