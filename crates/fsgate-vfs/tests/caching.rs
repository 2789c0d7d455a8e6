//! Caching (reference "Caching"), file ids and hard links, through a real FUSE mount: what
//! the kernel keeps, when it asks the drive again, and what invalidates it.

mod common;
use common::utf8;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use fsgate_core::{code, Error, Result};
use fsgate_vfs::*;

/// One file of the store: its bytes and the id it reports.
#[derive(Clone)]
struct Item {
    data: Vec<u8>,
    id: u64,
}

/// A flat drive over a map of names the test can change behind the kernel's back; counts
/// the events that caches should spare.
#[derive(Default)]
struct Store {
    files: Mutex<BTreeMap<String, Item>>,
    next_id: AtomicUsize,
    infos: AtomicUsize,
    reads: AtomicUsize,
}

impl Store {
    fn put(&self, name: &str, data: &[u8]) {
        let id = 100 + self.next_id.fetch_add(1, Ordering::SeqCst) as u64;
        let mut files = self.files.lock().unwrap();
        let id = files.get(name).map_or(id, |i| i.id);
        files.insert(
            name.into(),
            Item {
                data: data.to_vec(),
                id,
            },
        );
    }

    fn infos(&self) -> usize {
        self.infos.load(Ordering::SeqCst)
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

fn missing(name: &str) -> Error {
    Error::from_code(code::ERROR_FILE_NOT_FOUND, format!("{name} is gone"))
}

impl Hooks for Store {}

impl Events for Store {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = usize;

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        self.infos.fetch_add(1, Ordering::SeqCst);
        let files = self.files.lock().unwrap();
        if let Some(item) = files.get(utf8(p.file_name)) {
            p.file_exists = true;
            p.info.size = item.data.len() as u64;
            p.info.file_id = item.id;
            p.info.hard_link_count = files.values().filter(|i| i.id == item.id).count() as u32;
        }
        Ok(())
    }

    fn on_enumerate_directory(
        &self,
        p: &mut EnumerateDirectoryParams<'_, (), (), usize>,
    ) -> Result<()> {
        let files = self.files.lock().unwrap();
        let next = p.enumeration_context.get_or_insert(0);
        if let Some((name, item)) = files.iter().nth(*next) {
            *next += 1;
            p.file_found = true;
            p.file_name = name.trim_start_matches('/').to_string().into();
            p.info.file_id = item.id;
        }
        Ok(())
    }

    fn on_create_file(&self, p: &mut CreateFileParams<'_, (), ()>) -> Result<()> {
        self.put(utf8(p.file_name), b"");
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let files = self.files.lock().unwrap();
        let item = files
            .get(utf8(p.file_name))
            .ok_or_else(|| missing(utf8(p.file_name)))?;
        let start = (p.position as usize).min(item.data.len());
        let n = (item.data.len() - start).min(p.buffer.len());
        p.buffer[..n].copy_from_slice(&item.data[start..start + n]);
        p.bytes_read = n;
        Ok(())
    }

    fn on_write_file(&self, p: &mut WriteFileParams<'_, (), ()>) -> Result<()> {
        let mut files = self.files.lock().unwrap();
        let item = files
            .get_mut(utf8(p.file_name))
            .ok_or_else(|| missing(utf8(p.file_name)))?;
        let end = p.position as usize + p.buffer.len();
        if item.data.len() < end {
            item.data.resize(end, 0);
        }
        item.data[p.position as usize..end].copy_from_slice(p.buffer);
        p.bytes_written = p.buffer.len();
        Ok(())
    }

    fn on_set_file_size(&self, p: &mut SetFileSizeParams<'_, ()>) -> Result<()> {
        let mut files = self.files.lock().unwrap();
        let item = files
            .get_mut(utf8(p.file_name))
            .ok_or_else(|| missing(utf8(p.file_name)))?;
        item.data.resize(p.size as usize, 0);
        Ok(())
    }

    fn on_set_file_attributes(&self, _p: &mut SetFileAttributesParams<'_, ()>) -> Result<()> {
        Ok(())
    }

    fn on_create_hard_link(&self, p: &mut CreateHardLinkParams<'_>) -> Result<()> {
        let mut files = self.files.lock().unwrap();
        let item = files
            .get(utf8(p.file_name))
            .cloned()
            .ok_or_else(|| missing(utf8(p.file_name)))?;
        files.insert(utf8(p.link_name).into(), item);
        Ok(())
    }
}

/// A mounted store; dropping it unmounts, even if the test panicked.
type Mounted = common::Mounted<Store>;

impl Mounted {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn store(&self) -> &Store {
        self.drive.events()
    }
}

fn mount(test: &str, options: Options, files: &[(&str, &[u8])]) -> Option<Mounted> {
    common::mount(test, options, |_| {
        let store = Store::default();
        for (name, data) in files {
            store.put(name, data);
        }
        store
    })
}

/// Caches that outlive the test: nothing expires by itself while it runs.
fn long_caches() -> Options {
    Options {
        metadata_cache_timeout: Duration::from_secs(600),
        ..Options::default()
    }
}

#[test]
fn a_change_behind_the_kernels_back_stays_invisible_until_notified() {
    let Some(m) = mount(
        "a_change_behind_the_kernels_back_stays_invisible_until_notified",
        long_caches(),
        &[("/f", b"one")],
    ) else {
        return;
    };
    // Attributes. (No read in between: a read makes the kernel refresh the access time,
    // and with it every attribute, at the next full `stat`.)
    assert_eq!(fs::metadata(m.path("f")).unwrap().len(), 3);
    m.store().put("/f", b"two!");
    assert_eq!(
        fs::metadata(m.path("f")).unwrap().len(),
        3,
        "size is cached"
    );
    m.drive.notify_file_change("/f").unwrap();
    assert_eq!(fs::metadata(m.path("f")).unwrap().len(), 4);

    // Data: pages stay in the page cache, across opens too, until the drive says.
    let mut buf = [0u8; 4];
    fs::File::open(m.path("f"))
        .unwrap()
        .read_exact_at(&mut buf, 0)
        .unwrap();
    assert_eq!(&buf, b"two!");
    m.store().put("/f", b"TWO?");
    fs::File::open(m.path("f"))
        .unwrap()
        .read_exact_at(&mut buf, 0)
        .unwrap();
    assert_eq!(&buf, b"two!", "pages are cached");
    m.drive.notify_file_change("/f").unwrap();
    fs::File::open(m.path("f"))
        .unwrap()
        .read_exact_at(&mut buf, 0)
        .unwrap();
    assert_eq!(&buf, b"TWO?");

    // A name that appears behind the kernel's back after a failed lookup.
    let listed = |m: &Mounted| -> Vec<String> {
        fs::read_dir(m.root_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    assert_eq!(listed(&m), ["f"]);
    let err = fs::metadata(m.path("g")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    m.store().put("/g", b"new");
    let err = fs::metadata(m.path("g")).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOENT),
        "the negative entry is cached"
    );
    assert_eq!(listed(&m), ["f"], "the listing is cached");
    m.drive
        .notify_directory_change("/g", ChangeAction::Added)
        .unwrap();
    assert_eq!(fs::metadata(m.path("g")).unwrap().len(), 3);
    assert_eq!(listed(&m), ["f", "g"]);

    // A name that goes away behind the kernel's back.
    m.store().files.lock().unwrap().remove("/g");
    assert!(fs::metadata(m.path("g")).is_ok(), "the entry is cached");
    m.drive
        .notify_directory_change("/g", ChangeAction::Removed)
        .unwrap();
    assert_eq!(
        fs::metadata(m.path("g")).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
}

#[test]
fn repeated_lookups_of_a_missing_name_ask_once_and_a_create_replaces_the_negative_entry() {
    let Some(m) = mount(
        "repeated_lookups_of_a_missing_name_ask_once_and_a_create_replaces_the_negative_entry",
        long_caches(),
        &[],
    ) else {
        return;
    };
    fs::metadata(m.root_dir()).unwrap();
    let before = m.store().infos();
    for _ in 0..20 {
        assert_eq!(
            fs::metadata(m.path("n")).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
    }
    assert_eq!(m.store().infos() - before, 1, "one lookup, then the cache");

    fs::write(m.path("n"), b"created").unwrap();
    assert_eq!(fs::read(m.path("n")).unwrap(), b"created");
    assert_eq!(fs::metadata(m.path("n")).unwrap().len(), 7);
}

#[test]
fn with_caching_off_every_stat_and_read_reaches_the_application() {
    let options = Options {
        metadata_cache_enabled: false,
        non_existent_files_cache_enabled: false,
        file_cache: FileCache::None,
        ..Options::default()
    };
    let Some(m) = mount(
        "with_caching_off_every_stat_and_read_reaches_the_application",
        options,
        &[("/f", b"data")],
    ) else {
        return;
    };
    let before = m.store().infos();
    for _ in 0..50 {
        assert_eq!(fs::metadata(m.path("f")).unwrap().len(), 4);
    }
    assert!(
        m.store().infos() - before >= 50,
        "{} on_get_file_info for 50 stats",
        m.store().infos() - before
    );
    let before = m.store().infos();
    for _ in 0..20 {
        assert!(fs::metadata(m.path("missing")).is_err());
    }
    assert!(m.store().infos() - before >= 20);

    let file = fs::File::open(m.path("f")).unwrap();
    let before = m.store().reads();
    let mut buf = [0u8; 4];
    for _ in 0..10 {
        file.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"data");
    }
    assert_eq!(
        m.store().reads() - before,
        10,
        "direct I/O: one event per read"
    );
}

#[test]
fn the_metadata_cache_size_bounds_how_many_answers_are_kept() {
    let options = Options {
        metadata_cache_timeout: Duration::from_secs(600),
        // The root is one of the three.
        metadata_cache_size: 3,
        ..Options::default()
    };
    let Some(m) = mount(
        "the_metadata_cache_size_bounds_how_many_answers_are_kept",
        options,
        &[("/a", b"1"), ("/b", b"2"), ("/c", b"3")],
    ) else {
        return;
    };
    fs::metadata(m.root_dir()).unwrap();
    for name in ["a", "b", "c"] {
        fs::metadata(m.path(name)).unwrap();
    }
    let before = m.store().infos();
    for _ in 0..10 {
        fs::metadata(m.path("a")).unwrap();
        fs::metadata(m.path("b")).unwrap();
    }
    assert_eq!(
        m.store().infos(),
        before,
        "the first two answers are cached"
    );
    for _ in 0..10 {
        fs::metadata(m.path("c")).unwrap();
    }
    assert!(
        m.store().infos() - before >= 10,
        "the third answer was not cached"
    );
}

#[test]
fn the_user_mode_cache_answers_repeated_reads_and_forgets_changed_blocks() {
    let data: Vec<u8> = (0..(3 * cache::BLOCK as usize + 100))
        .map(|i| (i % 253) as u8)
        .collect();
    let options = Options {
        file_cache: FileCache::UserMode,
        ..long_caches()
    };
    let Some(m) = mount(
        "the_user_mode_cache_answers_repeated_reads_and_forgets_changed_blocks",
        options,
        &[("/f", &data)],
    ) else {
        return;
    };
    assert_eq!(fs::read(m.path("f")).unwrap(), data);
    let first = m.store().reads();
    assert_eq!(first, 4, "one event per block");
    assert_eq!(fs::read(m.path("f")).unwrap(), data);
    assert_eq!(m.store().reads(), first, "all from the cache");

    let file = fs::OpenOptions::new()
        .write(true)
        .open(m.path("f"))
        .unwrap();
    file.write_all_at(b"XY", cache::BLOCK + 10).unwrap();
    drop(file);
    let mut expected = data.clone();
    expected[cache::BLOCK as usize + 10..cache::BLOCK as usize + 12].copy_from_slice(b"XY");
    assert_eq!(fs::read(m.path("f")).unwrap(), expected);
    assert_eq!(m.store().reads(), first + 1, "only the written block again");

    m.store().put("/f", b"short now");
    m.drive.notify_file_change("/f").unwrap();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"short now");
}

#[test]
fn file_ids_are_the_inode_numbers_and_a_shared_id_is_a_hard_link() {
    let options = Options {
        use_file_ids: true,
        ..Options::default()
    };
    let Some(m) = mount(
        "file_ids_are_the_inode_numbers_and_a_shared_id_is_a_hard_link",
        options,
        &[("/a", b"x"), ("/b", b"y")],
    ) else {
        return;
    };
    let id_a = m.store().files.lock().unwrap()["/a"].id;
    let id_b = m.store().files.lock().unwrap()["/b"].id;
    assert_eq!(
        fs::metadata(m.root_dir()).unwrap().ino(),
        1,
        "the root is 1"
    );
    let listed: Vec<(String, u64)> = fs::read_dir(m.root_dir())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.ino())
        })
        .collect();
    assert_eq!(listed, vec![("a".into(), id_a), ("b".into(), id_b)]);
    assert_eq!(fs::metadata(m.path("a")).unwrap().ino(), id_a);

    fs::hard_link(m.path("a"), m.path("c")).unwrap();
    let (a, c) = (
        fs::metadata(m.path("a")).unwrap(),
        fs::metadata(m.path("c")).unwrap(),
    );
    assert_eq!(c.ino(), id_a);
    assert_eq!((a.nlink(), c.nlink()), (2, 2));
    assert_eq!(fs::read(m.path("c")).unwrap(), b"x");
}

#[test]
fn without_use_hard_links_link_fails_with_eperm_before_any_event() {
    let options = Options {
        use_hard_links: false,
        ..Options::default()
    };
    let Some(m) = mount(
        "without_use_hard_links_link_fails_with_eperm_before_any_event",
        options,
        &[("/a", b"x")],
    ) else {
        return;
    };
    let err = fs::hard_link(m.path("a"), m.path("b")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert!(!m.store().files.lock().unwrap().contains_key("/b"));
}

impl Mounted {
    fn root_dir(&self) -> &std::path::Path {
        &self.dir
    }
}
