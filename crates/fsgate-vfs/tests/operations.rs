//! How Linux operations beyond reading and writing reach a drive's events, through a real
//! FUSE mount: special files, name limits, `fallocate` modes, `copy_file_range`, ioctls,
//! set-id bits cleared on writes without the page cache, and shared mappings.

mod common;
use common::utf8;

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::mount;
use fsgate_core::Result;
use fsgate_vfs::*;

/// One object of [`Flat`]: metadata and, for files, data.
struct Object {
    info: FileInfo,
    data: Vec<u8>,
}

/// A one-directory drive that keeps what it is told and records the range events.
#[derive(Default)]
struct Flat {
    objects: Mutex<HashMap<String, Object>>,
    lookups: Mutex<Vec<String>>,
    events: Mutex<Vec<String>>,
    copies: bool,
}

impl Flat {
    fn with_file(name: &str, mode: u32, data: &[u8]) -> Self {
        let flat = Flat::default();
        let mut info = FileInfo::new(FileKind::File, 0, 0, std::time::SystemTime::now());
        info.mode = mode;
        info.size = data.len() as u64;
        flat.objects.lock().unwrap().insert(
            name.to_string(),
            Object {
                info,
                data: data.to_vec(),
            },
        );
        flat
    }

    fn record(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn with<T>(&self, name: &str, f: impl FnOnce(&mut Object) -> T) -> Result<T> {
        let mut objects = self.objects.lock().unwrap();
        let object = objects.get_mut(name).ok_or_else(|| {
            fsgate_core::Error::from_errno(libc::ENOENT, format!("{name} does not exist"))
        })?;
        Ok(f(object))
    }
}

fn resize(o: &mut Object, size: u64) {
    o.data.resize(size as usize, 0);
    o.info.size = size;
}

impl Hooks for Flat {}

impl Events for Flat {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        self.lookups
            .lock()
            .unwrap()
            .push(utf8(p.file_name).to_string());
        if let Some(o) = self.objects.lock().unwrap().get(utf8(p.file_name)) {
            p.file_exists = true;
            p.info = o.info.clone();
        }
        Ok(())
    }

    fn on_create_file(&self, p: &mut CreateFileParams<'_, (), ()>) -> Result<()> {
        let who = p.handle_info.creator;
        let mut info = FileInfo::new(p.kind, who.uid, who.gid, std::time::SystemTime::now());
        info.mode = p.mode;
        info.rdev = p.rdev;
        self.record(format!(
            "create {} {:?} rdev {:#x} mode {:o}",
            utf8(p.file_name),
            p.kind,
            p.rdev,
            p.mode
        ));
        self.objects.lock().unwrap().insert(
            utf8(p.file_name).to_string(),
            Object {
                info,
                data: Vec::new(),
            },
        );
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
        self.with(utf8(p.file_name), |o| {
            let start = (p.position as usize).min(o.data.len());
            let n = p.buffer.len().min(o.data.len() - start);
            p.buffer[..n].copy_from_slice(&o.data[start..start + n]);
            p.bytes_read = n;
        })
    }

    fn on_write_file(&self, p: &mut WriteFileParams<'_, (), ()>) -> Result<()> {
        self.with(utf8(p.file_name), |o| {
            let end = p.position as usize + p.buffer.len();
            if end > o.data.len() {
                resize(o, end as u64);
            }
            o.data[p.position as usize..end].copy_from_slice(p.buffer);
            p.bytes_written = p.buffer.len();
        })
    }

    fn on_set_file_size(&self, p: &mut SetFileSizeParams<'_, ()>) -> Result<()> {
        self.with(utf8(p.file_name), |o| resize(o, p.size))
    }

    fn on_set_allocation_size(&self, p: &mut SetAllocationSizeParams<'_, ()>) -> Result<()> {
        self.record(format!(
            "allocate {} to {} keep_size {}",
            utf8(p.file_name),
            p.allocation_size,
            p.keep_size
        ));
        self.with(utf8(p.file_name), |o| {
            if !p.keep_size && p.allocation_size > o.info.size {
                resize(o, p.allocation_size);
            }
        })
    }

    fn on_zeroize_file_range(&self, p: &mut ZeroizeFileRangeParams<'_, ()>) -> Result<()> {
        self.record(format!(
            "zeroize {} {}+{} deallocate {} keep_size {}",
            utf8(p.file_name),
            p.position,
            p.length,
            p.deallocate,
            p.keep_size
        ));
        self.with(utf8(p.file_name), |o| {
            let end = p.position + p.length;
            if !p.keep_size && end > o.info.size {
                resize(o, end);
            }
            let end = (end as usize).min(o.data.len());
            let start = (p.position as usize).min(end);
            o.data[start..end].fill(0);
        })
    }

    fn on_copy_file_range(&self, p: &mut CopyFileRangeParams<'_, (), ()>) -> Result<()> {
        if !self.copies {
            return Err(fsgate_core::Error::from_errno(libc::ENOSYS, "no copies"));
        }
        self.record(format!(
            "copy {}@{} to {}@{} length {}",
            utf8(p.file_name),
            p.position,
            utf8(p.target_file_name),
            p.target_position,
            p.length
        ));
        let bytes = self.with(utf8(p.file_name), |o| {
            let start = (p.position as usize).min(o.data.len());
            let end = (start + p.length as usize).min(o.data.len());
            o.data[start..end].to_vec()
        })?;
        self.with(utf8(p.target_file_name), |o| {
            let end = p.target_position as usize + bytes.len();
            if end > o.data.len() {
                resize(o, end as u64);
            }
            o.data[p.target_position as usize..end].copy_from_slice(&bytes);
        })?;
        p.bytes_copied = bytes.len() as u64;
        Ok(())
    }

    fn on_exchange_files(&self, p: &mut ExchangeFilesParams<'_>) -> Result<()> {
        self.record(format!(
            "exchange {} {}",
            utf8(p.file_name),
            utf8(p.new_file_name)
        ));
        let mut objects = self.objects.lock().unwrap();
        let a = objects.remove(utf8(p.file_name));
        let b = objects.remove(utf8(p.new_file_name));
        if let (Some(a), Some(b)) = (a, b) {
            objects.insert(utf8(p.file_name).to_string(), b);
            objects.insert(utf8(p.new_file_name).to_string(), a);
        }
        Ok(())
    }

    fn on_set_file_attributes(&self, p: &mut SetFileAttributesParams<'_, ()>) -> Result<()> {
        if let Some(mode) = p.mode {
            self.record(format!("chmod {} {:o}", utf8(p.file_name), mode));
        }
        self.with(utf8(p.file_name), |o| {
            if let Some(mode) = p.mode {
                o.info.mode = mode;
            }
        })
    }
}

/// Whether the running kernel's release is older than `major.minor`.
fn kernel_before(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let running = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    running < (major, minor)
}

fn c(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mknod(path: &Path, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    let p = c(path);
    // SAFETY: `p` is NUL-terminated.
    check(unsafe { libc::mknod(p.as_ptr(), mode, dev) })
}

fn fallocate(file: &File, mode: i32, offset: i64, length: i64) -> io::Result<()> {
    // SAFETY: the descriptor is open for the call.
    check(unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, length) })
}

#[test]
fn fifos_sockets_and_devices_are_created_through_on_create_file() {
    let options = Options {
        allow_devices: true,
        ..Options::default()
    };
    let Some(m) = mount(
        "fifos_sockets_and_devices_are_created_through_on_create_file",
        options,
        |_| Flat::default(),
    ) else {
        return;
    };
    let d = &m.dir;
    mknod(&d.join("fifo"), libc::S_IFIFO | 0o640, 0).unwrap();
    mknod(&d.join("null"), libc::S_IFCHR | 0o666, libc::makedev(1, 3)).unwrap();
    mknod(&d.join("loop"), libc::S_IFBLK | 0o600, libc::makedev(7, 9)).unwrap();
    let socket = std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();

    let meta = |n: &str| std::fs::symlink_metadata(d.join(n)).unwrap();
    assert!(meta("fifo").file_type().is_fifo());
    assert!(meta("null").file_type().is_char_device());
    assert!(meta("loop").file_type().is_block_device());
    assert!(meta("sock").file_type().is_socket());
    assert_eq!(meta("null").rdev(), libc::makedev(1, 3));
    assert_eq!(meta("loop").rdev(), libc::makedev(7, 9));
    assert_eq!(meta("fifo").mode() & 0o7777, 0o640);

    // The kernel serves what the nodes name: the FIFO's data and the device itself.
    let fifo = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(d.join("fifo"))
        .unwrap();
    io::Write::write_all(&mut &fifo, b"through").unwrap();
    let mut got = [0u8; 7];
    io::Read::read_exact(&mut &fifo, &mut got).unwrap();
    assert_eq!(&got, b"through");
    let mut null = OpenOptions::new()
        .read(true)
        .write(true)
        .open(d.join("null"))
        .unwrap();
    io::Write::write_all(&mut null, b"gone").unwrap();
    assert_eq!(io::Read::read(&mut null, &mut got).unwrap(), 0);
    drop(std::os::unix::net::UnixStream::connect(d.join("sock")).unwrap());
    drop(socket);

    let events = m.drive.events().events();
    // The modes carry the test process's umask; the kinds and devices are what counts here.
    assert_eq!(
        events
            .iter()
            .map(|e| e.split(" mode ").next().unwrap())
            .collect::<Vec<_>>(),
        [
            "create /fifo Fifo rdev 0x0",
            "create /null CharDevice rdev 0x103",
            "create /loop BlockDevice rdev 0x709",
            "create /sock Socket rdev 0x0",
        ],
        "{events:?}"
    );
}

#[test]
fn by_default_device_nodes_do_not_open_their_devices() {
    let Some(m) = mount(
        "by_default_device_nodes_do_not_open_their_devices",
        Options::default(),
        |_| Flat::default(),
    ) else {
        return;
    };
    mknod(
        &m.dir.join("null"),
        libc::S_IFCHR | 0o666,
        libc::makedev(1, 3),
    )
    .unwrap();
    let opened = File::open(m.dir.join("null")).unwrap_err();
    assert_eq!(opened.raw_os_error(), Some(libc::EACCES));
}

#[test]
fn names_longer_than_255_bytes_fail_with_enametoolong_before_any_event() {
    let Some(m) = mount(
        "names_longer_than_255_bytes_fail_with_enametoolong_before_any_event",
        Options::default(),
        |_| Flat::default(),
    ) else {
        return;
    };
    let longest = "n".repeat(255);
    let too_long = "n".repeat(256);
    let errno = |r: io::Result<()>| r.err().and_then(|e| e.raw_os_error());
    assert_eq!(
        errno(std::fs::metadata(m.dir.join(&longest)).map(drop)),
        Some(libc::ENOENT)
    );
    for result in [
        std::fs::metadata(m.dir.join(&too_long)).map(drop),
        File::create(m.dir.join(&too_long)).map(drop),
        std::fs::create_dir(m.dir.join(&too_long)),
        mknod(&m.dir.join(&too_long), libc::S_IFIFO | 0o600, 0),
        std::os::unix::fs::symlink("x", m.dir.join(&too_long)),
    ] {
        assert_eq!(errno(result), Some(libc::ENAMETOOLONG));
    }
    let lookups = m.drive.events().lookups.lock().unwrap().clone();
    assert!(lookups.iter().any(|l| l.len() == 256), "{lookups:?}");
    assert!(lookups.iter().all(|l| l.len() <= 256), "{lookups:?}");
    // SAFETY: statvfs only writes the struct it is given.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `vfs` is a valid struct.
    check(unsafe { libc::statvfs(c(&m.dir).as_ptr(), &mut vfs) }).unwrap();
    assert_eq!(vfs.f_namemax, 255);
}

#[test]
fn fallocate_modes_fire_allocation_and_zeroing_events() {
    let Some(m) = mount(
        "fallocate_modes_fire_allocation_and_zeroing_events",
        Options::default(),
        |_| Flat::with_file("/f", 0o644, &[7u8; 8192]),
    ) else {
        return;
    };
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.dir.join("f"))
        .unwrap();
    fallocate(&f, 0, 8192, 4096).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 12288);
    fallocate(&f, libc::FALLOC_FL_KEEP_SIZE, 0, 20000).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 12288);
    fallocate(
        &f,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        100,
        50,
    )
    .unwrap();
    let zero_range = fallocate(&f, libc::FALLOC_FL_ZERO_RANGE, 4096, 16384);
    let collapse = fallocate(&f, libc::FALLOC_FL_COLLAPSE_RANGE, 0, 4096);
    assert_eq!(
        collapse.unwrap_err().raw_os_error(),
        Some(libc::EOPNOTSUPP),
        "the kernel refuses collapsing a FUSE file's range"
    );
    let mut expected = vec![
        "allocate /f to 12288 keep_size false".to_string(),
        "allocate /f to 20000 keep_size true".to_string(),
        "zeroize /f 100+50 deallocate true keep_size true".to_string(),
    ];
    // Kernels before FUSE learned FALLOC_FL_ZERO_RANGE refuse it without asking the drive.
    match zero_range {
        Ok(()) => {
            expected.push("zeroize /f 4096+16384 deallocate false keep_size false".into());
            assert_eq!(f.metadata().unwrap().len(), 20480);
        }
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP)),
    }
    assert_eq!(m.drive.events().events(), expected);
    let data = m.drive.events().with("/f", |o| o.data.clone()).unwrap();
    assert!(data[100..150].iter().all(|b| *b == 0));
    assert_eq!((data[99], data[150]), (7, 7));
}

/// `copy_file_range(2)` from `from` at `offset_in` to `to` at `offset_out`.
fn copy_range(from: &File, offset_in: i64, to: &File, offset_out: i64, length: usize) -> usize {
    let (mut i, mut o) = (offset_in, offset_out);
    // SAFETY: both descriptors are open and the offsets are valid pointers.
    let n = unsafe {
        libc::copy_file_range(from.as_raw_fd(), &mut i, to.as_raw_fd(), &mut o, length, 0)
    };
    usize::try_from(n).unwrap_or_else(|_| panic!("{}", io::Error::last_os_error()))
}

#[test]
fn copy_file_range_fires_on_copy_file_range_and_falls_back_when_unhandled() {
    for copies in [true, false] {
        let Some(m) = mount(
            "copy_file_range_fires_on_copy_file_range_and_falls_back_when_unhandled",
            Options::default(),
            |_| Flat {
                copies,
                ..Flat::with_file("/src", 0o644, b"0123456789")
            },
        ) else {
            return;
        };
        let src = File::open(m.dir.join("src")).unwrap();
        let dst = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(m.dir.join("dst"))
            .unwrap();
        assert_eq!(copy_range(&src, 2, &dst, 1, 5), 5);
        drop(dst);
        let data = m.drive.events().with("/dst", |o| o.data.clone()).unwrap();
        assert_eq!(data, b"\x0023456", "copies handled: {copies}");
        let fired: Vec<_> = m
            .drive
            .events()
            .events()
            .into_iter()
            .filter(|e| e.starts_with("copy"))
            .collect();
        let expected: &[&str] = if copies {
            &["copy /src@2 to /dst@1 length 5"]
        } else {
            &[]
        };
        assert_eq!(fired, expected);
    }
}

#[test]
fn ioctls_are_answered_enotty() {
    let Some(m) = mount("ioctls_are_answered_enotty", Options::default(), |_| {
        Flat::with_file("/f", 0o644, b"x")
    }) else {
        return;
    };
    let f = File::open(m.dir.join("f")).unwrap();
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one long into `flags`.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
    assert_eq!(rc, -1);
    assert_eq!(
        io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOTTY)
    );
}

#[test]
fn without_the_page_cache_a_write_by_another_user_clears_set_id_bits() {
    let options = Options {
        file_cache: FileCache::None,
        ..Options::default()
    };
    let Some(m) = mount(
        "without_the_page_cache_a_write_by_another_user_clears_set_id_bits",
        options,
        |_| {
            let flat = Flat::with_file("/suid", 0o6777, b"");
            for (name, gid) in [("/sgid-no-exec", 0), ("/sgid-own-group", 1000)] {
                let mut info = FileInfo::new(FileKind::File, 0, gid, std::time::SystemTime::now());
                info.mode = 0o2767;
                flat.objects.lock().unwrap().insert(
                    name.into(),
                    Object {
                        info,
                        data: Vec::new(),
                    },
                );
            }
            flat
        },
    ) else {
        return;
    };
    std::fs::set_permissions(m.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["suid", "sgid-no-exec", "sgid-own-group"] {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("printf x >> {}", m.dir.join(name).display()))
            .uid(1000)
            .gid(1000)
            .status()
            .unwrap();
        assert!(status.success(), "{name}: {status}");
    }
    let mode = |n: &str| std::fs::metadata(m.dir.join(n)).unwrap().mode() & 0o7777;
    // A writer outside the file's group clears the set-group-ID bit even when the group
    // cannot execute; one in the group leaves it, as on ext4.
    assert_eq!(
        (mode("suid"), mode("sgid-no-exec"), mode("sgid-own-group")),
        (0o777, 0o767, 0o2767)
    );
    assert_eq!(
        m.drive.events().events(),
        ["chmod /suid 777", "chmod /sgid-no-exec 767"]
    );
}

#[test]
fn without_the_page_cache_files_map_shared() {
    let options = Options {
        file_cache: FileCache::None,
        ..Options::default()
    };
    let Some(m) = mount("without_the_page_cache_files_map_shared", options, |_| {
        Flat::with_file("/f", 0o644, b"mapped bytes")
    }) else {
        return;
    };
    let f = File::open(m.dir.join("f")).unwrap();
    // SAFETY: a fresh read-only shared mapping of 12 bytes of an open file, unmapped below.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            12,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        // The documented alternative: kernels before 6.6 cannot map direct-I/O files shared.
        let e = io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        assert!(
            kernel_before(6, 6),
            "MAP_SHARED refused on a 6.6+ kernel: {e}"
        );
        return;
    }
    // SAFETY: the mapping is 12 bytes long and readable.
    let seen = unsafe { std::slice::from_raw_parts(addr as *const u8, 12) }.to_vec();
    // SAFETY: `addr` is the mapping made above.
    unsafe { libc::munmap(addr, 12) };
    assert_eq!(seen, b"mapped bytes");
}

#[test]
fn rename_exchange_fires_on_exchange_files_and_swaps_the_names() {
    let Some(m) = mount(
        "rename_exchange_fires_on_exchange_files_and_swaps_the_names",
        Options::default(),
        |_| {
            let flat = Flat::with_file("/a", 0o644, b"first");
            let mut info = FileInfo::new(FileKind::File, 0, 0, std::time::SystemTime::now());
            info.size = 6;
            flat.objects.lock().unwrap().insert(
                "/b".into(),
                Object {
                    info,
                    data: b"second".to_vec(),
                },
            );
            flat
        },
    ) else {
        return;
    };
    let (a, b) = (c(&m.dir.join("a")), c(&m.dir.join("b")));
    // SAFETY: both paths are NUL-terminated.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    check(rc).unwrap();
    assert_eq!(std::fs::read(m.dir.join("a")).unwrap(), b"second");
    assert_eq!(std::fs::read(m.dir.join("b")).unwrap(), b"first");
    assert_eq!(m.drive.events().events(), ["exchange /a /b"]);
}
