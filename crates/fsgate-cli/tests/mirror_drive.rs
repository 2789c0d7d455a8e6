//! The mirror drive through the kernel: `fsgate mount mirror SOURCE MOUNTPOINT` shows a real
//! directory; what a process does on the mount lands in the source, and what is in the
//! source shows on the mount, with permissions, ownership, times, links, xattrs, FIFOs,
//! sockets and device nodes, space reservations, holes and copies, at any depth.

#[path = "conformance/served.rs"]
mod served;

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fsgate_testkit::require_root;
use rustix::fs::{AtFlags, FallocateFlags, FileType, Mode, OFlags, XattrFlags, CWD};
use rustix::io::Errno;
use served::{is_mounted, Ext4, Served, FSGATE};

/// A source directory with some content and the drive mirroring it.
struct Mirror {
    served: Served,
    source: PathBuf,
    // Dropped after `served` has unmounted the drive, before the directory goes.
    _ext4: Option<Ext4>,
    _tmp: tempfile::TempDir,
}

impl Mirror {
    /// Lets other users into the source (mode 0777) and to it (its parent 0755).
    fn open_to_other_users(&self) {
        fs::set_permissions(&self.source, fs::Permissions::from_mode(0o777)).unwrap();
        fs::set_permissions(
            self.source.parent().unwrap(),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }

    /// Runs `program` with `args` in the mount as user 4242, group 4343; whether it
    /// succeeded.
    fn run_as_other_user(&self, program: &str, args: &[&str]) -> bool {
        use std::os::unix::process::CommandExt;
        Command::new(program)
            .args(args)
            .current_dir(&self.served.mountpoint)
            .uid(4242)
            .gid(4343)
            .status()
            .unwrap()
            .success()
    }
}

/// Empty `source` and `mnt` directories in `tmp`.
fn source_and_mountpoint(tmp: &Path) -> (PathBuf, PathBuf) {
    let (source, mnt) = (tmp.join("source"), tmp.join("mnt"));
    fs::create_dir(&source).unwrap();
    fs::create_dir(&mnt).unwrap();
    (source, mnt)
}

fn mirror(passthrough: bool) -> Option<Mirror> {
    if !require_root("FUSE and ext4 mounts need root") {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (source, mnt) = source_and_mountpoint(tmp.path());
    fs::write(source.join("hello"), b"hello from the source").unwrap();
    fs::create_dir(source.join("dir")).unwrap();
    fs::write(source.join("dir/inner"), b"inner").unwrap();
    let served = Served::mirror(&source, &mnt, passthrough);
    Some(Mirror {
        served,
        source,
        _ext4: None,
        _tmp: tmp,
    })
}

/// The drive over an empty source that is a fresh ext4 filesystem, so that `fallocate` and
/// `copy_file_range` behave the same on every machine (tmpfs, for one, has no zero ranges).
fn mirror_on_ext4(passthrough: bool) -> Option<Mirror> {
    if !require_root("FUSE and ext4 mounts need root") {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (source, mnt) = source_and_mountpoint(tmp.path());
    let ext4 = Ext4::mount(&tmp.path().join("source.img"), &source);
    let served = Served::mirror(&source, &mnt, passthrough);
    Some(Mirror {
        served,
        source,
        _ext4: Some(ext4),
        _tmp: tmp,
    })
}

/// The calling process's umask (`/proc/self/status`), which modes made on the mount get.
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    u32::from_str_radix(value.trim(), 8).unwrap()
}

/// Runs `f` on a thread of its own and returns its result; fails the test when it takes more
/// than 10 s (a drive that opened a FIFO's data would block it for ever).
fn within_10_seconds<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still blocked after 10 s")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// A mode for the rustix calls.
fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode(bits)
}

/// The source file `name`'s size and 512-byte blocks.
fn size_and_blocks(path: &Path) -> (u64, u64) {
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.len(), meta.blocks())
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let (p, n) = (
        CString::new(path.as_os_str().as_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    let mut buf = [0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its length.
    let len = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[test]
fn the_source_shows_on_the_mount_with_its_inode_numbers() {
    let Some(m) = mirror(false) else {
        return;
    };
    assert_eq!(
        m.served.ready,
        format!(
            "ready: mounted mirror drive at {}",
            m.served.mountpoint.display()
        )
    );
    assert_eq!(
        fs::read(m.served.path("hello")).unwrap(),
        b"hello from the source"
    );
    assert_eq!(fs::read(m.served.path("dir/inner")).unwrap(), b"inner");
    let mut names: Vec<(String, u64)> = fs::read_dir(&m.served.mountpoint)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let ino = std::os::unix::fs::DirEntryExt::ino(&e);
            (e.file_name().into_string().unwrap(), ino)
        })
        .collect();
    names.sort();
    let expected: Vec<(String, u64)> = ["dir", "hello"]
        .iter()
        .map(|n| (n.to_string(), fs::metadata(m.source.join(n)).unwrap().ino()))
        .collect();
    assert_eq!(names, expected, "readdir shows the source's inode numbers");
    assert_eq!(
        fs::metadata(m.served.path("hello")).unwrap().ino(),
        fs::metadata(m.source.join("hello")).unwrap().ino()
    );
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn changes_on_the_mount_land_in_the_source() {
    let Some(m) = mirror(false) else {
        return;
    };
    let p = |n: &str| m.served.path(n);
    let s = |n: &str| m.source.join(n);
    fs::write(p("new"), b"written through fsgate").unwrap();
    assert_eq!(fs::read(s("new")).unwrap(), b"written through fsgate");
    fs::create_dir(p("made")).unwrap();
    fs::rename(p("new"), p("made/moved")).unwrap();
    assert_eq!(
        fs::read(s("made/moved")).unwrap(),
        b"written through fsgate"
    );
    fs::hard_link(p("made/moved"), p("linked")).unwrap();
    assert_eq!(
        fs::metadata(s("linked")).unwrap().ino(),
        fs::metadata(s("made/moved")).unwrap().ino()
    );
    assert_eq!(fs::metadata(p("linked")).unwrap().nlink(), 2);
    std::os::unix::fs::symlink("made/moved", p("sym")).unwrap();
    assert_eq!(fs::read_link(s("sym")).unwrap(), Path::new("made/moved"));
    fs::set_permissions(p("linked"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(s("linked")).unwrap().mode() & 0o7777, 0o640);
    std::os::unix::fs::chown(p("linked"), Some(1234), Some(5678)).unwrap();
    let meta = fs::metadata(s("linked")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    let times = fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890));
    fs::File::options()
        .write(true)
        .open(p("linked"))
        .unwrap()
        .set_times(times)
        .unwrap();
    assert_eq!(fs::metadata(s("linked")).unwrap().mtime(), 1_234_567_890);
    let status = Command::new("setfattr")
        .args(["-n", "user.origin", "-v", "mirror"])
        .arg(p("hello"))
        .status();
    if status.is_ok_and(|s| s.success()) {
        assert_eq!(xattr(&s("hello"), "user.origin").unwrap(), b"mirror");
    }
    fs::remove_file(p("linked")).unwrap();
    fs::remove_file(p("made/moved")).unwrap();
    fs::remove_dir(p("made")).unwrap();
    assert!(!s("made").exists());
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn files_created_by_other_users_belong_to_them() {
    let Some(m) = mirror(false) else {
        return;
    };
    m.open_to_other_users();
    assert!(m.run_as_other_user("sh", &["-c", "echo mine > owned && mkdir owned-dir"]));
    for name in ["owned", "owned-dir"] {
        let meta = fs::metadata(m.source.join(name)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343), "{name}");
    }
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn passthrough_reads_and_writes_the_source_files_and_says_so() {
    let Some(m) = mirror(true) else {
        return;
    };
    // The kernel's passthrough where it has one (Linux 6.9+ with CONFIG_FUSE_PASSTHROUGH),
    // else fsgate's own routing: the ready line says which, and the bytes are the same.
    assert!(
        m.served.ready.ends_with("(passthrough: kernel)")
            || m.served.ready.ends_with("(passthrough: fsgate)"),
        "{}",
        m.served.ready
    );
    let data: Vec<u8> = (0..(8u32 << 20)).map(|i| (i * 31 % 256) as u8).collect();
    fs::write(m.source.join("big"), &data).unwrap();
    assert_eq!(fs::read(m.served.path("big")).unwrap(), data);
    let mut f = OpenOptions::new()
        .write(true)
        .open(m.served.path("big"))
        .unwrap();
    f.write_all_at(b"PASSTHROUGH", 4 << 20).unwrap();
    f.flush().unwrap();
    let mut buf = [0u8; 11];
    fs::File::open(m.source.join("big"))
        .unwrap()
        .read_exact_at(&mut buf, 4 << 20)
        .unwrap();
    assert_eq!(&buf, b"PASSTHROUGH");
    drop(f);
    let mut appended = OpenOptions::new()
        .append(true)
        .open(m.served.path("hello"))
        .unwrap();
    appended.write_all(b"!").unwrap();
    drop(appended);
    assert_eq!(
        fs::read(m.source.join("hello")).unwrap(),
        b"hello from the source!"
    );
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn mkfifo_on_the_mount_makes_a_fifo_in_the_source() {
    let Some(m) = mirror(false) else {
        return;
    };
    rustix::fs::mkfifoat(CWD, m.served.path("pipe"), mode(0o640)).unwrap();
    let source = fs::symlink_metadata(m.source.join("pipe")).unwrap();
    assert!(source.file_type().is_fifo(), "{:?}", source.file_type());
    assert_eq!(source.mode() & 0o7777, 0o640 & !umask());
    assert_eq!((source.uid(), source.gid()), (0, 0));
    assert_eq!(source.len(), 0);
    let mounted = fs::symlink_metadata(m.served.path("pipe")).unwrap();
    assert!(mounted.file_type().is_fifo());
    assert_eq!(mounted.ino(), source.ino());
    assert_eq!(mounted.mode(), source.mode());
    let listed = fs::read_dir(&m.served.mountpoint)
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.file_name() == "pipe")
        .unwrap();
    assert!(listed.file_type().unwrap().is_fifo(), "readdir's d_type");
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn mknod_makes_device_nodes_with_their_device_numbers() {
    let Some(m) = mirror(false) else {
        return;
    };
    // A minor above 255 and a major above 255 check the whole encoding of the number.
    let nodes = [
        (
            "null",
            FileType::CharacterDevice,
            0o620,
            rustix::fs::makedev(1, 3),
        ),
        (
            "disk",
            FileType::BlockDevice,
            0o640,
            rustix::fs::makedev(259, 300),
        ),
    ];
    for (name, kind, bits, dev) in nodes {
        rustix::fs::mknodat(CWD, m.served.path(name), kind, mode(bits), dev).unwrap();
        for path in [m.source.join(name), m.served.path(name)] {
            let meta = fs::symlink_metadata(&path).unwrap();
            let file_type = meta.file_type();
            match kind {
                FileType::CharacterDevice => assert!(file_type.is_char_device(), "{path:?}"),
                _ => assert!(file_type.is_block_device(), "{path:?}"),
            }
            assert_eq!(meta.rdev(), dev, "{path:?}");
            assert_eq!(meta.mode() & 0o7777, bits & !umask(), "{path:?}");
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "{path:?}");
        }
    }
    // mknod of a regular file makes an empty one.
    rustix::fs::mknodat(
        CWD,
        m.served.path("plain"),
        FileType::RegularFile,
        mode(0o600),
        0,
    )
    .unwrap();
    let plain = fs::symlink_metadata(m.source.join("plain")).unwrap();
    assert!(plain.file_type().is_file());
    assert_eq!((plain.len(), plain.mode() & 0o7777), (0, 0o600 & !umask()));
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn creating_a_name_the_source_has_gained_opens_the_source_file() {
    let Some(m) = mirror(false) else {
        return;
    };
    // The kernel remembers that the name was missing, so open(O_CREAT) reaches the drive as
    // a creation although the source has the file by now.
    assert!(fs::symlink_metadata(m.served.path("late")).is_err());
    fs::write(m.source.join("late"), b"made in the source").unwrap();
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(m.served.path("late"))
        .unwrap();
    f.write_all_at(b"MADE", 0).unwrap();
    drop(f);
    assert_eq!(
        fs::read(m.source.join("late")).unwrap(),
        b"MADE in the source"
    );
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn a_name_the_source_turned_into_a_fifo_is_never_opened() {
    // With --passthrough every open reaches the drive.
    let Some(m) = mirror(true) else {
        return;
    };
    // The kernel has "hello" as a regular file for the metadata timeout...
    assert!(fs::symlink_metadata(m.served.path("hello"))
        .unwrap()
        .is_file());
    // ...while the source makes it a FIFO with no process on its other end.
    fs::remove_file(m.source.join("hello")).unwrap();
    rustix::fs::mkfifoat(CWD, m.source.join("hello"), mode(0o666)).unwrap();
    let path = m.served.path("hello");
    let opened = within_10_seconds("opening a name that became a FIFO", move || {
        OpenOptions::new().write(true).open(path).map(drop)
    });
    assert_eq!(opened.unwrap_err().raw_os_error(), Some(libc::ENXIO));
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn bind_on_the_mount_makes_a_socket_that_takes_connections() {
    let Some(m) = mirror(false) else {
        return;
    };
    let path = m.served.path("sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let source = fs::symlink_metadata(m.source.join("sock")).unwrap();
    assert!(source.file_type().is_socket(), "{:?}", source.file_type());
    assert_eq!(source.mode() & 0o7777, 0o777 & !umask());
    assert_eq!((source.uid(), source.gid()), (0, 0));
    let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"through the mount").unwrap();
    drop(client);
    let mut got = Vec::new();
    server.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"through the mount");
    drop((server, listener));
    fs::remove_file(&path).unwrap();
    assert!(fs::symlink_metadata(m.source.join("sock")).is_err());
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn special_files_made_by_other_users_belong_to_them() {
    let Some(m) = mirror(false) else {
        return;
    };
    m.open_to_other_users();
    // A set-group-ID directory gives its group to what is made in it.
    let shared = m.source.join("shared");
    fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, None, Some(777)).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o2777)).unwrap();
    assert!(m.run_as_other_user("mkfifo", &["theirs", "shared/theirs"]));
    for (name, gid) in [("theirs", 4343), ("shared/theirs", 777)] {
        let meta = fs::symlink_metadata(m.source.join(name)).unwrap();
        assert!(meta.file_type().is_fifo(), "{name}");
        assert_eq!((meta.uid(), meta.gid()), (4242, gid), "{name}");
    }
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn fifo_data_flows_between_processes_on_the_mount() {
    let Some(m) = mirror(false) else {
        return;
    };
    let path = m.served.path("pipe");
    rustix::fs::mkfifoat(CWD, &path, mode(0o600)).unwrap();
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let mut w = OpenOptions::new().write(true).open(writer_path).unwrap();
        w.write_all(b"first line\n").unwrap();
        w.write_all(&[7u8; 100_000]).unwrap();
    });
    let got = within_10_seconds("reading the FIFO", move || fs::read(path).unwrap());
    writer.join().unwrap();
    assert_eq!(&got[..11], b"first line\n");
    assert_eq!(got.len(), 11 + 100_000);
    assert!(got[11..].iter().all(|b| *b == 7));
    // The pipe's data lives in the kernel: the source's FIFO holds nothing.
    assert_eq!(
        fs::symlink_metadata(m.source.join("pipe")).unwrap().len(),
        0
    );
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn a_fifo_s_metadata_changes_without_opening_it() {
    let Some(m) = mirror(false) else {
        return;
    };
    // No process has the FIFO open: opening it for writing in the drive would block.
    let path = m.served.path("pipe");
    rustix::fs::mkfifoat(CWD, &path, mode(0o600)).unwrap();
    within_10_seconds(
        "chmod, chown, utimensat and setxattr of a FIFO",
        move || {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
            std::os::unix::fs::chown(&path, Some(1234), Some(5678)).unwrap();
            let epoch = rustix::fs::Timespec {
                tv_sec: 1_234_567_890,
                tv_nsec: 0,
            };
            let times = rustix::fs::Timestamps {
                last_access: epoch,
                last_modification: epoch,
            };
            rustix::fs::utimensat(CWD, &path, &times, AtFlags::empty()).unwrap();
            // user.* attributes are for files and directories only; trusted.* fit a FIFO.
            rustix::fs::setxattr(&path, "trusted.kind", b"fifo", XattrFlags::empty()).unwrap();
            let mut value = [0u8; 8];
            let n = rustix::fs::getxattr(&path, "trusted.kind", &mut value[..]).unwrap();
            assert_eq!(&value[..n], b"fifo");
        },
    );
    let source = m.source.join("pipe");
    let meta = fs::symlink_metadata(&source).unwrap();
    assert!(meta.file_type().is_fifo());
    assert_eq!(meta.mode() & 0o7777, 0o604);
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    assert_eq!(meta.mtime(), 1_234_567_890);
    let mut value = [0u8; 8];
    let n = rustix::fs::lgetxattr(&source, "trusted.kind", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"fifo");
    assert_eq!(m.served.stop().code(), Some(0));
}

/// Writes `len` bytes of `byte` to a new file `name` on the mount and syncs them to the
/// source; returns the file, open read-write.
fn filled(m: &Mirror, name: &str, byte: u8, len: usize) -> File {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(m.served.path(name))
        .unwrap();
    f.write_all(&vec![byte; len]).unwrap();
    f.sync_all().unwrap();
    f
}

#[test]
fn punch_hole_frees_the_range_in_the_source() {
    for passthrough in [false, true] {
        let Some(m) = mirror_on_ext4(passthrough) else {
            return;
        };
        const MIB: usize = 1 << 20;
        let f = filled(&m, "holey", 0xAA, MIB);
        let source = m.source.join("holey");
        let (size, before) = size_and_blocks(&source);
        assert_eq!(size, MIB as u64);
        assert!(before >= 2048, "{before} blocks for 1 MiB");
        rustix::fs::fallocate(
            &f,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            256 << 10,
            512 << 10,
        )
        .unwrap();
        let (size, after) = size_and_blocks(&source);
        assert_eq!(
            size, MIB as u64,
            "passthrough {passthrough}: the size stays"
        );
        assert!(
            after <= before - 1024,
            "passthrough {passthrough}: {before} blocks before, {after} after"
        );
        let mut expected = vec![0xAA; MIB];
        expected[256 << 10..768 << 10].fill(0);
        assert!(fs::read(&source).unwrap() == expected, "the source's bytes");
        let mut through = vec![0u8; MIB];
        f.read_exact_at(&mut through, 0).unwrap();
        assert!(
            through == expected,
            "passthrough {passthrough}: the mount's bytes"
        );
        drop(f);
        assert_eq!(m.served.stop().code(), Some(0));
    }
}

#[test]
fn zero_range_zeros_in_place_and_grows_the_file_unless_keep_size() {
    for passthrough in [false, true] {
        let Some(m) = mirror_on_ext4(passthrough) else {
            return;
        };
        const LEN: usize = 64 << 10;
        let f = filled(&m, "zeroed", 0x55, LEN);
        let source = m.source.join("zeroed");
        rustix::fs::fallocate(&f, FallocateFlags::ZERO_RANGE, 4096, 8192).unwrap();
        let mut expected = vec![0x55; LEN];
        expected[4096..12288].fill(0);
        assert!(fs::read(&source).unwrap() == expected, "zeroed in place");
        let flags = FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE;
        rustix::fs::fallocate(&f, flags, LEN as u64, LEN as u64).unwrap();
        let (size, blocks) = size_and_blocks(&source);
        assert_eq!(size, LEN as u64, "passthrough {passthrough}: KEEP_SIZE");
        assert!(
            blocks >= 256,
            "{blocks} blocks: the range past the end is reserved"
        );
        rustix::fs::fallocate(&f, FallocateFlags::ZERO_RANGE, LEN as u64, LEN as u64).unwrap();
        assert_eq!(size_and_blocks(&source).0, 2 * LEN as u64, "grown");
        expected.resize(2 * LEN, 0);
        assert!(
            fs::read(&source).unwrap() == expected,
            "zeros past the old end"
        );
        assert_eq!(
            f.metadata().unwrap().len(),
            2 * LEN as u64,
            "the mount's size"
        );
        drop(f);
        assert_eq!(m.served.stop().code(), Some(0));
    }
}

#[test]
fn fallocate_reserves_space_and_keep_size_leaves_the_size() {
    for passthrough in [false, true] {
        let Some(m) = mirror_on_ext4(passthrough) else {
            return;
        };
        const MIB: u64 = 1 << 20;
        let grown = filled(&m, "grown", 0, 0);
        rustix::fs::fallocate(&grown, FallocateFlags::empty(), 0, MIB).unwrap();
        let (size, blocks) = size_and_blocks(&m.source.join("grown"));
        assert_eq!(
            size, MIB,
            "passthrough {passthrough}: mode 0 grows the file"
        );
        assert!(blocks >= 2048, "{blocks} blocks reserved");
        assert!(fs::read(m.served.path("grown")).unwrap() == vec![0; MIB as usize]);
        let kept = filled(&m, "kept", 0, 0);
        rustix::fs::fallocate(&kept, FallocateFlags::KEEP_SIZE, 0, MIB).unwrap();
        let (size, blocks) = size_and_blocks(&m.source.join("kept"));
        assert_eq!(size, 0, "passthrough {passthrough}: KEEP_SIZE");
        assert!(blocks >= 2048, "{blocks} blocks reserved");
        // A range that starts past the end grows the file to the range's end.
        rustix::fs::fallocate(&grown, FallocateFlags::empty(), 2 * MIB, MIB).unwrap();
        assert_eq!(size_and_blocks(&m.source.join("grown")).0, 3 * MIB);
        drop((grown, kept));
        assert_eq!(m.served.stop().code(), Some(0));
    }
}

#[test]
fn copy_file_range_copies_in_the_source() {
    for passthrough in [false, true] {
        let Some(m) = mirror_on_ext4(passthrough) else {
            return;
        };
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(m.source.join("from"), &data).unwrap();
        let from = File::open(m.served.path("from")).unwrap();
        let to = filled(&m, "to", 0, 0);
        let (mut position, mut target_position) = (4096, 100);
        let copied = rustix::fs::copy_file_range(
            &from,
            Some(&mut position),
            &to,
            Some(&mut target_position),
            2 << 20,
        )
        .unwrap();
        assert_eq!(copied, 2 << 20, "passthrough {passthrough}");
        assert_eq!(
            (position, target_position),
            (4096 + (2 << 20), 100 + (2 << 20))
        );
        let mut expected = vec![0u8; 100];
        expected.extend_from_slice(&data[4096..4096 + (2 << 20)]);
        assert!(
            fs::read(m.source.join("to")).unwrap() == expected,
            "in the source"
        );
        let mut through = vec![0u8; expected.len()];
        to.read_exact_at(&mut through, 0).unwrap();
        assert!(
            through == expected,
            "passthrough {passthrough}: on the mount"
        );
        // Near the end of the source file fewer bytes come; at the end, none.
        let mut near_end = data.len() as u64 - 10;
        let mut at = 0;
        let short =
            rustix::fs::copy_file_range(&from, Some(&mut near_end), &to, Some(&mut at), 100)
                .unwrap();
        assert_eq!(short, 10);
        let mut end = data.len() as u64;
        let none =
            rustix::fs::copy_file_range(&from, Some(&mut end), &to, Some(&mut at), 100).unwrap();
        assert_eq!(none, 0);
        let mut head = [0u8; 10];
        File::open(m.source.join("to"))
            .unwrap()
            .read_exact_at(&mut head, 0)
            .unwrap();
        assert_eq!(head, data[data.len() - 10..]);
        drop((from, to));
        assert_eq!(m.served.stop().code(), Some(0));
    }
}

/// The directory `depth` levels of `name` below `base`, reached one `openat` at a time (the
/// whole path is too long for one call); with `make`, each level is made first with
/// `mkdirat`.
fn descend(base: &Path, name: &str, depth: usize, make: bool) -> OwnedFd {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(base, flags, Mode::empty()).unwrap();
    for level in 0..depth {
        if make {
            rustix::fs::mkdirat(&dir, name, mode(0o755))
                .unwrap_or_else(|e| panic!("mkdirat at level {level}: {e}"));
        }
        dir = rustix::fs::openat(&dir, name, flags, Mode::empty())
            .unwrap_or_else(|e| panic!("openat at level {level}: {e}"));
    }
    dir
}

/// Creates, writes, reads, stats, renames, lists, gives an xattr to and deletes a file
/// `depth` directories of 250-byte names deep on the mount; checks the source at each step.
/// Returns the length of the file's path inside the mount.
fn a_deep_file_works_like_any_other(m: &Mirror, depth: usize) -> usize {
    let component = "d".repeat(250);
    let (name, renamed) = ("f".repeat(79), "g".repeat(79));
    let path_len = depth * (component.len() + 1) + name.len();
    let dir = descend(&m.served.mountpoint, &component, depth, true);
    let file = File::from(
        rustix::fs::openat(
            &dir,
            &name,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC,
            mode(0o644),
        )
        .unwrap(),
    );
    file.write_all_at(b"at the bottom", 0).unwrap();
    file.sync_all().unwrap();
    let mut back = [0u8; 13];
    file.read_exact_at(&mut back, 0).unwrap();
    assert_eq!(&back, b"at the bottom");
    let st = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    assert_eq!(st.st_size, 13);
    let depth_text = path_len.to_string();
    rustix::fs::fsetxattr(
        &file,
        "user.depth",
        depth_text.as_bytes(),
        XattrFlags::CREATE,
    )
    .unwrap();
    let mut value = [0u8; 16];
    let n = rustix::fs::fgetxattr(&file, "user.depth", &mut value[..]).unwrap();
    assert_eq!(&value[..n], depth_text.as_bytes());
    drop(file);
    rustix::fs::renameat(&dir, &name, &dir, &renamed).unwrap();
    assert_eq!(
        rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW).unwrap_err(),
        Errno::NOENT
    );
    let listed: Vec<String> = rustix::fs::Dir::read_from(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    assert_eq!(listed, std::slice::from_ref(&renamed));
    {
        let source_dir = descend(&m.source, &component, depth, false);
        let in_source = File::from(
            rustix::fs::openat(&source_dir, &renamed, OFlags::RDONLY, Mode::empty()).unwrap(),
        );
        let mut data = String::new();
        (&in_source).read_to_string(&mut data).unwrap();
        assert_eq!(data, "at the bottom");
        let n = rustix::fs::fgetxattr(&in_source, "user.depth", &mut value[..]).unwrap();
        assert_eq!(&value[..n], depth_text.as_bytes());
        rustix::fs::unlinkat(&dir, &renamed, AtFlags::empty()).unwrap();
        assert_eq!(
            rustix::fs::statat(&source_dir, &renamed, AtFlags::SYMLINK_NOFOLLOW).unwrap_err(),
            Errno::NOENT
        );
    }
    path_len
}

#[test]
fn a_file_whose_path_is_path_max_long_works_like_any_other() {
    let Some(m) = mirror(false) else {
        return;
    };
    // 4,095 bytes: the longest path one system call takes (PATH_MAX less its NUL).
    assert_eq!(a_deep_file_works_like_any_other(&m, 16), 4095);
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn a_file_deeper_than_path_max_works_like_any_other() {
    let Some(m) = mirror(false) else {
        return;
    };
    assert_eq!(a_deep_file_works_like_any_other(&m, 40), 10_119);
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn reading_more_files_than_the_server_may_open_works() {
    if !require_root("FUSE and ext4 mounts need root") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (source, mnt) = source_and_mountpoint(tmp.path());
    const FILES: usize = 1000;
    for i in 0..FILES {
        fs::write(source.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    // The kernel opens files by itself, and the drive keeps one source descriptor per file
    // the kernel holds: 1000 files need more than the server's 256 descriptors.
    let served = Served::spawn_with_descriptor_limit(
        &["mirror".as_ref(), source.as_os_str(), mnt.as_os_str()],
        &mnt,
        256,
    );
    for pass in 0..2 {
        for i in 0..FILES {
            assert_eq!(
                fs::read_to_string(mnt.join(format!("f{i}"))).unwrap(),
                format!("file {i}"),
                "pass {pass}"
            );
        }
    }
    served.stop();
}

/// Creating files (tar x, a build) once the kernel opens files by itself: each created file's
/// handle holds a source descriptor, and the kernel sends no RELEASE for it, so the drive
/// evicts the oldest; a created file kept open meanwhile goes on working through a handle
/// made again, and what it wrote reaches the source.
#[test]
fn creating_more_files_than_the_server_may_open_works() {
    if !require_root("FUSE and ext4 mounts need root") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (source, mnt) = source_and_mountpoint(tmp.path());
    fs::write(source.join("existing"), "e").unwrap();
    let served = Served::spawn_with_descriptor_limit(
        &["mirror".as_ref(), source.as_os_str(), mnt.as_os_str()],
        &mnt,
        256,
    );
    // The first open is refused, and the kernel opens files by itself from then on.
    assert_eq!(fs::read_to_string(mnt.join("existing")).unwrap(), "e");
    let mut log = File::create(mnt.join("log")).unwrap();
    log.write_all(b"first\n").unwrap();
    for i in 0..1000 {
        fs::write(mnt.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    log.write_all(b"second\n").unwrap();
    log.sync_all().unwrap();
    drop(log);
    assert_eq!(
        fs::read_to_string(source.join("log")).unwrap(),
        "first\nsecond\n"
    );
    for i in (0..1000).step_by(97) {
        assert_eq!(
            fs::read_to_string(source.join(format!("f{i}"))).unwrap(),
            format!("file {i}")
        );
    }
    served.stop();
}

/// Mounts the mirror of `source` at `mnt` with `--log-events --json` (and `--passthrough`
/// when asked), runs `f`, stops the server (also when `f` panics), and returns the events it
/// printed.
fn logged_events(
    source: &Path,
    mnt: &Path,
    passthrough: bool,
    f: impl FnOnce(),
) -> Vec<serde_json::Value> {
    let mut command = Command::new(FSGATE);
    command
        .args(["mount", "mirror"])
        .arg(source)
        .arg(mnt)
        .args(["--log-events", "--json"]);
    if passthrough {
        command.arg("--passthrough");
    }
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        is_mounted(mnt)
    });
    let ran = ready.then(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    match ran {
        None => panic!("the mirror did not mount"),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        Some(Ok(())) => {}
    }
    assert_eq!(out.status.code(), Some(0));
    assert!(!is_mounted(mnt));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn logged_events_are_json_lines() {
    if !require_root("FUSE and ext4 mounts need root") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (source, mnt) = source_and_mountpoint(tmp.path());
    let events = logged_events(&source, &mnt, false, || {
        fs::write(mnt.join("x"), b"1").unwrap();
        fs::remove_file(mnt.join("x")).unwrap();
    });
    let named = |e: &str| {
        events
            .iter()
            .find(|v| v["event"] == e && v["file_name"] == "/x")
            .cloned()
    };
    let created = named("create_file").expect("a create_file event");
    assert_eq!(created["result_code"], 0);
    assert!(created["process_id"].as_u64().is_some());
    assert!(named("delete_file").is_some());
}

#[test]
fn copy_file_range_and_fallocate_reach_the_drive_as_events() {
    if !require_root("FUSE and ext4 mounts need root") {
        return;
    }
    for passthrough in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (source, mnt) = source_and_mountpoint(tmp.path());
        let _ext4 = Ext4::mount(&tmp.path().join("source.img"), &source);
        fs::write(source.join("from"), vec![9u8; 1 << 20]).unwrap();
        let events = logged_events(&source, &mnt, passthrough, || {
            let from = File::open(mnt.join("from")).unwrap();
            let to = File::create(mnt.join("to")).unwrap();
            let copied = rustix::fs::copy_file_range(&from, None, &to, None, 1 << 20).unwrap();
            assert_eq!(copied, 1 << 20);
            let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
            rustix::fs::fallocate(&to, flags, 0, 4096).unwrap();
            rustix::fs::fallocate(&to, FallocateFlags::KEEP_SIZE, 0, 2 << 20).unwrap();
        });
        // Each event names the file written to: a copy as its target, the others as their file.
        for (event, field) in [
            ("copy_file_range", "target_file_name"),
            ("zeroize_file_range", "file_name"),
            ("set_allocation_size", "file_name"),
        ] {
            let found = events
                .iter()
                .find(|v| v["event"] == event && v[field] == "/to");
            let found = found.unwrap_or_else(|| panic!("passthrough {passthrough}: no {event}"));
            assert_eq!(found["result_code"], 0, "{event}");
        }
    }
}

#[test]
fn a_missing_source_is_a_clear_error() {
    if !require_root("FUSE and ext4 mounts need root") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("m")).unwrap();
    let out = Command::new(FSGATE)
        .args(["mount", "mirror"])
        .arg(tmp.path().join("nope"))
        .arg(tmp.path().join("m"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SOURCE") && err.contains("nope"), "{err}");
}

#[test]
fn rename_exchange_swaps_a_file_and_a_directory_in_the_source() {
    let Some(m) = mirror(false) else {
        return;
    };
    // The source holds `dir/inner` already.
    fs::write(m.served.path("file"), b"data").unwrap();
    rustix::fs::renameat_with(
        CWD,
        m.served.path("file"),
        CWD,
        m.served.path("dir"),
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .unwrap();
    for root in [m.served.mountpoint.clone(), m.source.clone()] {
        assert_eq!(fs::read(root.join("dir")).unwrap(), b"data");
        assert_eq!(fs::read(root.join("file/inner")).unwrap(), b"inner");
    }
    assert_eq!(m.served.stop().code(), Some(0));
}

/// With passthrough, another user's write takes set-id bits and file capabilities away as
/// on ext4: a writable open of a file with privileges to lose is served by fsgate rather
/// than the kernel's passthrough, so the write reaches the engine, which clears them. When
/// the file is already open through passthrough, the writable open clears them itself.
#[test]
fn passthrough_writes_by_other_users_take_privileges_away() {
    let Some(m) = mirror(true) else {
        return;
    };
    m.open_to_other_users();
    for name in ["setuid", "capped", "held"] {
        fs::write(m.source.join(name), b"0123456789").unwrap();
        fs::set_permissions(m.source.join(name), fs::Permissions::from_mode(0o6777)).unwrap();
    }
    fs::set_permissions(m.source.join("capped"), fs::Permissions::from_mode(0o777)).unwrap();
    // A version 2 capability set with CAP_NET_RAW (13) permitted and effective.
    let mut cap = Vec::new();
    for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&word.to_le_bytes());
    }
    rustix::fs::setxattr(
        m.source.join("capped").as_path(),
        "security.capability",
        &cap,
        XattrFlags::empty(),
    )
    .unwrap();
    assert!(xattr(&m.source.join("capped"), "security.capability").is_some());
    // Root holds `held` open through passthrough: later opens share its backing file.
    let held = File::open(m.served.path("held")).unwrap();
    let mut buf = [0u8; 10];
    held.read_exact_at(&mut buf, 0).unwrap();

    assert!(m.run_as_other_user(
        "sh",
        &[
            "-c",
            "printf A >> setuid && printf B >> capped && exec 3>> held"
        ]
    ));
    let source_mode = |name: &str| fs::metadata(m.source.join(name)).unwrap().mode() & 0o7777;
    let mount_mode = |name: &str| fs::metadata(m.served.path(name)).unwrap().mode() & 0o7777;
    assert_eq!(fs::read(m.source.join("setuid")).unwrap(), b"0123456789A");
    assert_eq!(fs::read(m.source.join("capped")).unwrap(), b"0123456789B");
    assert_eq!(
        (source_mode("setuid"), mount_mode("setuid")),
        (0o777, 0o777)
    );
    assert_eq!(xattr(&m.source.join("capped"), "security.capability"), None);
    // No write came: with the kernel's passthrough the open cleared them (the documented
    // price of sharing the backing file); fsgate's own routing keeps them, as ext4 does.
    let held_mode = if m.served.ready.ends_with("(passthrough: kernel)") {
        0o777
    } else {
        0o6777
    };
    assert_eq!(
        (source_mode("held"), mount_mode("held")),
        (held_mode, held_mode)
    );
    drop(held);
    assert_eq!(m.served.stop().code(), Some(0));
}
