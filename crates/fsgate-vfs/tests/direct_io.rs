//! `use_direct_io` through a real FUSE mount: one handle of a file bypasses the kernel's
//! caches while the file's other handles keep the page cache, and the file's attributes are
//! not cached while such a handle is open.

mod common;
use common::{count, utf8};

use std::fs;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fsgate_core::Result;
use fsgate_vfs::*;

/// What the file's cached handles read.
const REAL: &[u8] = b"the real bytes";
/// What a handle opened with `O_NONBLOCK` reads: its own content, of another length.
const OWN: &[u8] = b"this handle's own, longer content";

/// One file, `/f`. An open with `O_NONBLOCK` (meaningless for a regular file) asks for
/// direct I/O and its handle serves [`OWN`]; every other handle serves [`REAL`]. Counts the
/// events the kernel's caches spare.
#[derive(Default)]
struct Split {
    infos: AtomicUsize,
    reads: AtomicUsize,
    own_reads: AtomicUsize,
    own_closes: AtomicUsize,
}

impl Hooks for Split {}

impl Events for Split {
    type FileContext = ();
    /// Whether the handle serves its own content.
    type HandleContext = bool;
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        self.infos.fetch_add(1, Ordering::SeqCst);
        if utf8(p.file_name) == "/f" {
            p.file_exists = true;
            p.info.size = REAL.len() as u64;
            p.info.file_id = 100;
        }
        Ok(())
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, (), bool>) -> Result<()> {
        let own = p.flags & libc::O_NONBLOCK != 0;
        if own {
            p.use_direct_io();
        }
        *p.handle_context = Some(own);
        Ok(())
    }

    fn on_close_file(&self, p: &mut CloseFileParams<'_, (), bool>) -> Result<()> {
        if p.handle_context.as_deref() == Some(&true) {
            self.own_closes.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), bool>) -> Result<()> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let own = p.handle_context.copied().unwrap_or(false);
        let data = if own {
            self.own_reads.fetch_add(1, Ordering::SeqCst);
            OWN
        } else {
            REAL
        };
        let start = (p.position as usize).min(data.len());
        let n = (data.len() - start).min(p.buffer.len());
        p.buffer[..n].copy_from_slice(&data[start..start + n]);
        p.bytes_read = n;
        Ok(())
    }
}

fn read_all(f: &fs::File) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = f.read_at(&mut buf, 0).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn a_direct_handle_reads_past_the_page_cache_and_its_file_attributes_are_not_cached() {
    let options = Options {
        metadata_cache_timeout: Duration::from_secs(600),
        fire_all_open_close_events: true,
        ..Options::default()
    };
    let Some(m) = common::mount(
        "a_direct_handle_reads_past_the_page_cache_and_its_file_attributes_are_not_cached",
        options,
        |_| Split::default(),
    ) else {
        return;
    };
    let e = m.drive.events();
    let path: PathBuf = m.dir.join("f");

    // A cached handle: its pages and the file's attributes stay in the kernel.
    let cached = fs::File::open(&path).unwrap();
    assert_eq!(read_all(&cached), REAL);
    let reads = count(&e.reads);
    assert_eq!(read_all(&cached), REAL);
    assert_eq!(
        count(&e.reads),
        reads,
        "the cached handle reads the page cache"
    );
    fs::metadata(&path).unwrap();
    let infos = count(&e.infos);
    for _ in 0..5 {
        assert_eq!(fs::metadata(&path).unwrap().len(), REAL.len() as u64);
    }
    assert_eq!(count(&e.infos), infos, "attributes are cached");

    // A direct handle of the same inode: every read reaches the drive, through its handle,
    // although the page cache holds the file's other content.
    let direct = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .unwrap();
    let infos = count(&e.infos);
    direct.metadata().unwrap();
    assert!(
        count(&e.infos) > infos,
        "the open dropped the cached attributes: fstat asks the drive"
    );
    for round in 1..=3 {
        assert_eq!(read_all(&direct), OWN, "round {round}");
        assert_eq!(
            count(&e.own_reads),
            round,
            "each direct read reaches the drive"
        );
    }
    // The cached handle still reads its own bytes, and never the direct handle's.
    assert_eq!(read_all(&cached), REAL);

    // While the direct handle is open, every stat asks the drive.
    let infos = count(&e.infos);
    for _ in 0..5 {
        assert_eq!(fs::metadata(&path).unwrap().len(), REAL.len() as u64);
    }
    assert!(
        count(&e.infos) >= infos + 5,
        "attributes are not cached while a direct handle is open: {} events for 5 stats",
        count(&e.infos) - infos
    );

    // Once it is closed, attributes are cached again.
    drop(direct);
    // The kernel sends the handle's release after `close` returned.
    assert!(common::wait_for(Duration::from_secs(10), || count(
        &e.own_closes
    ) == 1));
    fs::metadata(&path).unwrap();
    let infos = count(&e.infos);
    for _ in 0..5 {
        fs::metadata(&path).unwrap();
    }
    assert_eq!(count(&e.infos), infos, "attributes are cached again");
    assert_eq!(read_all(&cached), REAL);
}
