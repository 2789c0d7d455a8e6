//! `KernelOpensFiles`: the kernel opens files without asking the drive. What a process sees
//! stays POSIX (data, deleted-while-open files); what the drive sees is one open per file,
//! made when it first serves the file, and one close when the kernel forgets it.

mod common;
use common::utf8;

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{count, mount, wait_for, Mounted};
use fsgate_core::Result;
use fsgate_vfs::*;

const TEXT: &[u8] = b"kept by the file context";

/// One file, `/x`, whose bytes each open's file context holds: after a delete, only a
/// context still has them.
#[derive(Default)]
struct OneFile {
    data: Mutex<Option<Arc<Vec<u8>>>>,
    opens: AtomicUsize,
    access: AtomicU32,
    closes: AtomicUsize,
    deletes: AtomicUsize,
    creates: AtomicUsize,
}

/// The drive; the test keeps another reference to read the counters.
struct Drive(Arc<OneFile>);

impl std::ops::Deref for Drive {
    type Target = OneFile;
    fn deref(&self) -> &OneFile {
        &self.0
    }
}

impl Hooks for Drive {}

impl Events for Drive {
    type FileContext = Arc<Vec<u8>>;
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, Self::FileContext>) -> Result<()> {
        // An open file's context outlives its name.
        let data = match p.file_context.as_deref() {
            Some(d) => Some(Arc::clone(d)),
            _ if utf8(p.file_name) == "/x" => self.data.lock().unwrap().clone(),
            _ => None,
        };
        if let Some(d) = data {
            p.file_exists = true;
            p.info.size = d.len() as u64;
            p.info.mode = 0o644;
        }
        Ok(())
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, Self::FileContext, ()>) -> Result<()> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        self.access.store(p.desired_access, Ordering::SeqCst);
        *p.file_context = self.data.lock().unwrap().clone();
        Ok(())
    }

    fn on_create_file(&self, p: &mut CreateFileParams<'_, Self::FileContext, ()>) -> Result<()> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        let data = Arc::new(Vec::new());
        *self.data.lock().unwrap() = Some(Arc::clone(&data));
        *p.file_context = Some(data);
        Ok(())
    }

    fn on_close_file(&self, _p: &mut CloseFileParams<'_, Self::FileContext, ()>) -> Result<()> {
        self.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, Self::FileContext, ()>) -> Result<()> {
        let data = p.file_context.map_or(&[][..], |d| d.as_slice());
        let start = usize::try_from(p.position)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = (data.len() - start).min(p.buffer.len());
        p.buffer[..n].copy_from_slice(&data[start..start + n]);
        p.bytes_read = n;
        Ok(())
    }

    fn on_delete_file(&self, _p: &mut DeleteFileParams<'_, Self::FileContext>) -> Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        *self.data.lock().unwrap() = None;
        Ok(())
    }
}

/// The one-file drive with `KernelOpensFiles` and `file_cache`, mounted for `test`; its
/// counters; `None` when this machine cannot mount.
fn mounted(test: &str, file_cache: FileCache) -> Option<(Arc<OneFile>, Mounted<Drive>)> {
    let events = Arc::new(OneFile::default());
    *events.data.lock().unwrap() = Some(Arc::new(TEXT.to_vec()));
    let options = Options {
        kernel_opens_files: true,
        fire_cleanup_events: false,
        file_cache,
        ..Options::default()
    };
    let e = Arc::clone(&events);
    let m = mount(test, options, |_| Drive(e))?;
    Some((events, m))
}

#[test]
fn opens_reach_the_drive_once_per_file_and_only_when_it_serves_the_file() {
    let Some((events, m)) = mounted(
        "opens_reach_the_drive_once_per_file_and_only_when_it_serves_the_file",
        FileCache::System,
    ) else {
        return;
    };
    let x = m.dir.join("x");
    for _ in 0..100 {
        drop(File::open(&x).unwrap());
    }
    assert_eq!(
        count(&events.opens),
        0,
        "open(2) and close(2) reached the drive"
    );

    assert_eq!(fs::read(&x).unwrap(), TEXT);
    assert_eq!(count(&events.opens), 1);
    let access = events.access.load(Ordering::SeqCst);
    assert_eq!(
        access & (access::FILE_READ_DATA | access::FILE_WRITE_DATA),
        access::FILE_READ_DATA | access::FILE_WRITE_DATA,
        "the one open serves every descriptor, so it asks read and write access"
    );
    for _ in 0..10 {
        let f = File::open(&x).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(f.read_at(&mut buf, 0).unwrap(), TEXT.len());
    }
    assert_eq!(
        count(&events.opens),
        1,
        "later opens and reads reuse the handle"
    );
    assert_eq!(count(&events.closes), 0, "the kernel still knows the file");

    m.drive.unmount().unwrap();
    assert_eq!(count(&events.closes), 1, "unmounting closes the handle");
}

#[test]
fn a_file_deleted_while_open_keeps_its_data_until_the_last_close() {
    let Some((events, m)) = mounted(
        "a_file_deleted_while_open_keeps_its_data_until_the_last_close",
        FileCache::System,
    ) else {
        return;
    };
    let x = m.dir.join("x");
    // Opened by the kernel alone: the drive has not seen this file yet.
    let f = File::open(&x).unwrap();
    assert_eq!(count(&events.opens), 0);

    fs::remove_file(&x).unwrap();
    assert_eq!(count(&events.deletes), 1);
    assert!(!x.exists());
    assert_eq!(
        count(&events.opens),
        1,
        "the last name's delete opens the file first, so its contexts outlive the name"
    );
    let mut buf = [0u8; 64];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), TEXT.len());
    assert_eq!(&buf[..TEXT.len()], TEXT);
    assert_eq!(count(&events.closes), 0, "a descriptor is still open");

    drop(f);
    assert!(
        wait_for(Duration::from_secs(10), || count(&events.closes) == 1),
        "on_close_file did not fire once the kernel forgot the file ({} closes)",
        count(&events.closes)
    );
    assert_eq!(count(&events.opens), 1);
}

#[test]
fn a_created_file_keeps_its_handle_until_the_kernel_forgets_it() {
    let Some((events, m)) = mounted(
        "a_created_file_keeps_its_handle_until_the_kernel_forgets_it",
        FileCache::System,
    ) else {
        return;
    };
    let x = m.dir.join("x");
    // The kernel switches to opening files itself at the first open it is refused.
    drop(File::open(&x).unwrap());
    fs::remove_file(&x).unwrap();
    assert!(wait_for(Duration::from_secs(10), || count(&events.closes) == 1));

    drop(File::create(&x).unwrap());
    assert_eq!(count(&events.creates), 1);
    assert_eq!(fs::read(&x).unwrap(), b"");
    // The kernel sends no RELEASE once it opens files itself: the created handle serves
    // the file until the kernel forgets it, without another open.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count(&events.closes),
        1,
        "the created handle closed while the file is known"
    );
    assert_eq!(count(&events.opens), 1, "only the first delete's open");

    fs::remove_file(&x).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || count(&events.closes) == 2),
        "the created handle did not close once the kernel forgot the file ({} closes)",
        count(&events.closes)
    );
    assert_eq!(count(&events.opens), 1);
}

#[test]
fn a_file_created_before_the_first_open_keeps_its_handle_after_its_release() {
    let Some((events, m)) = mounted(
        "a_file_created_before_the_first_open_keeps_its_handle_after_its_release",
        FileCache::System,
    ) else {
        return;
    };
    *events.data.lock().unwrap() = None;
    let x = m.dir.join("x");
    // Created while the kernel still asks for opens: closing it sends a RELEASE, in the
    // background. The next open is refused, and from then on the kernel opens by itself.
    drop(File::create(&x).unwrap());
    let f = File::open(&x).unwrap();
    // Time for the RELEASE to arrive; with or without it, what follows must hold.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count(&events.closes),
        0,
        "the RELEASE closed the handle that serves the kernel's descriptors"
    );

    fs::remove_file(&x).unwrap();
    assert_eq!(
        f.metadata().unwrap().len(),
        0,
        "an open file whose name is gone still has its attributes"
    );
    assert_eq!(
        count(&events.opens),
        0,
        "the created handle serves the file"
    );
    drop(f);
    assert!(
        wait_for(Duration::from_secs(10), || count(&events.closes) == 1),
        "the created handle did not close once the kernel forgot the file ({} closes)",
        count(&events.closes)
    );
}

#[test]
fn without_the_page_cache_every_open_reaches_the_drive() {
    let Some((events, m)) = mounted(
        "without_the_page_cache_every_open_reaches_the_drive",
        FileCache::None,
    ) else {
        return;
    };
    let x = m.dir.join("x");
    for _ in 0..3 {
        assert_eq!(fs::read(&x).unwrap(), TEXT);
    }
    assert_eq!(count(&events.opens), 3);
    assert!(wait_for(Duration::from_secs(10), || count(&events.closes) == 3));
}
