//! `route_to_file` through a real FUSE mount: routed handles read and write a real backing
//! file, by the kernel (passthrough) or by the library, with no read or write events.

mod common;
use common::utf8;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::count;
use fsgate_core::Result;
use fsgate_vfs::*;

/// Serves `/quiet`, `/loud` and `/mixed`, each backed by a file in `backing`:
/// `/quiet` is routed without close events, `/loud` with them, `/mixed` only from its
/// second open on (so its first handle is an ordinary one).
struct Router {
    backing: PathBuf,
    reads: AtomicUsize,
    writes: AtomicUsize,
    closes: AtomicUsize,
    mixed_opens: AtomicUsize,
}

const NAMES: &[&str] = &["/quiet", "/loud", "/mixed"];

impl Router {
    fn backing_of(&self, name: &str) -> PathBuf {
        self.backing.join(name.trim_start_matches('/'))
    }
}

impl Hooks for Router {}

impl Events for Router {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        if NAMES.contains(&utf8(p.file_name)) {
            p.file_exists = true;
            p.info.mode = 0o666;
            p.info.size = fs::metadata(self.backing_of(utf8(p.file_name)))
                .map(|m| m.len())
                .unwrap_or(0);
        }
        Ok(())
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, (), ()>) -> Result<()> {
        let flags = match utf8(p.file_name) {
            "/quiet" => 0,
            "/loud" => ROUTE_CLOSE_EVENT,
            "/mixed" if self.mixed_opens.fetch_add(1, Ordering::SeqCst) > 0 => 0,
            _ => return Ok(()),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.backing_of(utf8(p.file_name)))
            .map_err(|e| fsgate_core::Error::io("opening the backing file", e))?;
        p.route_to_file(file, flags);
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let n = File::open(self.backing_of(utf8(p.file_name)))
            .and_then(|f| f.read_at(p.buffer, p.position))
            .map_err(|e| fsgate_core::Error::io("reading", e))?;
        p.bytes_read = n;
        Ok(())
    }

    fn on_write_file(&self, _p: &mut WriteFileParams<'_, (), ()>) -> Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn on_close_file(&self, _p: &mut CloseFileParams<'_, (), ()>) -> Result<()> {
        self.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

type Mounted = common::Mounted<Router>;

/// Mounts a router over `backing` (in the mount's temporary directory), whose three files
/// hold the same 4 MiB pattern.
fn mount(test: &str, options: Options) -> Option<Mounted> {
    common::mount(test, options, |tmp| {
        let backing = tmp.join("backing");
        fs::create_dir(&backing).unwrap();
        let data: Vec<u8> = (0..(4u32 << 20)).map(|i| (i * 7 % 251) as u8).collect();
        for name in NAMES {
            fs::write(backing.join(&name[1..]), &data).unwrap();
        }
        Router {
            backing,
            reads: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
            closes: AtomicUsize::new(0),
            mixed_opens: AtomicUsize::new(0),
        }
    })
}

impl Mounted {
    fn backing(&self) -> &Path {
        &self.drive.events().backing
    }
}

#[test]
fn routed_handles_read_and_write_the_backing_file_through_the_kernel() {
    let Some(m) = mount(
        "routed_handles_read_and_write_the_backing_file_through_the_kernel",
        Options::default(),
    ) else {
        return;
    };
    // Root on Linux 6.9+ built with CONFIG_FUSE_PASSTHROUGH gets the kernel's passthrough;
    // elsewhere the library serves routed handles, which this test holds to the same
    // results (the bytes land, no read or write event fires).
    match m.drive.route_mode().unwrap() {
        RouteMode::Passthrough => {}
        RouteMode::Library => eprintln!("no FUSE passthrough in this kernel: library routing"),
    }
    let path = m.dir.join("quiet");
    assert_eq!(
        fs::read(&path).unwrap(),
        fs::read(m.backing().join("quiet")).unwrap()
    );
    let mut file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(b"written through the mount", 1000)
        .unwrap();
    file.flush().unwrap();
    drop(file);
    let mut buf = [0u8; 25];
    File::open(m.backing().join("quiet"))
        .unwrap()
        .read_exact_at(&mut buf, 1000)
        .unwrap();
    assert_eq!(&buf, b"written through the mount");
    let e = m.drive.events();
    assert_eq!(
        (count(&e.reads), count(&e.writes)),
        (0, 0),
        "no read or write event"
    );
}

#[test]
fn close_events_fire_only_for_handles_routed_with_route_close_event() {
    let Some(m) = mount(
        "close_events_fire_only_for_handles_routed_with_route_close_event",
        Options::default(),
    ) else {
        return;
    };
    let e = m.drive.events();
    drop(File::open(m.dir.join("quiet")).unwrap());
    drop(File::open(m.dir.join("loud")).unwrap());
    assert!(common::wait_for(std::time::Duration::from_secs(5), || {
        count(&e.closes) >= 1
    }));
    assert_eq!(count(&e.closes), 1, "only /loud fired on_close_file");
}

#[test]
fn a_routed_open_of_a_file_open_without_routing_is_served_by_the_library() {
    let options = Options {
        file_cache: FileCache::None,
        ..Options::default()
    };
    let Some(m) = mount(
        "a_routed_open_of_a_file_open_without_routing_is_served_by_the_library",
        options,
    ) else {
        return;
    };
    let path = m.dir.join("mixed");
    let plain = File::open(&path).unwrap();
    let mut buf = vec![0u8; 4096];
    plain.read_exact_at(&mut buf, 0).unwrap();
    let e = m.drive.events();
    assert!(count(&e.reads) >= 1, "the first handle fires read events");

    let before = count(&e.reads);
    let routed = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let expected = fs::read(m.backing().join("mixed")).unwrap();
    let mut got = vec![0u8; expected.len()];
    routed.read_exact_at(&mut got, 0).unwrap();
    assert_eq!(got, expected);
    routed.write_all_at(b"library", 7).unwrap();
    let mut seven = [0u8; 7];
    File::open(m.backing().join("mixed"))
        .unwrap()
        .read_exact_at(&mut seven, 7)
        .unwrap();
    assert_eq!(
        &seven, b"library",
        "direct I/O: the write is in the backing file"
    );
    assert_eq!(
        count(&e.reads),
        before,
        "the routed handle fired no read event"
    );
    assert_eq!(count(&e.writes), 0);
    drop((plain, routed));
    assert!(m.backing().exists());
}
