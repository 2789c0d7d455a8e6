//! The memory drive through the kernel: each test mounts `fsgate mount memory` on its own
//! temporary directory, acts through ordinary syscalls (from this process and from child
//! processes), and stops the server with SIGTERM, checking it exits 0 and leaves no mount.

mod common;

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{cpath, errno, is_mounted, require_root, wait_unmounted, ServedDrive, FSGATE};

fn mount(test: &str) -> Option<ServedDrive> {
    require_root(test).then(|| ServedDrive::memory(&[]))
}

fn sh(script: &str, dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// --- files: create, open, read, write, truncate -----------------------------------------

#[test]
fn written_bytes_read_back_and_truncate_changes_size() {
    let Some(drive) = mount("written_bytes_read_back_and_truncate_changes_size") else {
        return;
    };
    let path = drive.path("a.txt");
    fs::write(&path, b"hello, memory drive").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"hello, memory drive");
    assert_eq!(fs::metadata(&path).unwrap().len(), 19);

    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.write_all_at(b"HELLO", 0).unwrap();
    file.set_len(5).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"HELLO");
    file.set_len(8).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"HELLO\0\0\0");
    let mut buf = [0u8; 3];
    assert_eq!(file.read_at(&mut buf, 2).unwrap(), 3);
    assert_eq!(&buf, b"LLO");
    assert_eq!(
        file.read_at(&mut buf, 8).unwrap(),
        0,
        "read at the end returns 0 bytes"
    );
    drop(file);
    drive.stop();
}

#[test]
fn large_writes_cross_chunk_boundaries() {
    let Some(drive) = mount("large_writes_cross_chunk_boundaries") else {
        return;
    };
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(drive.path("big"), &data).unwrap();
    assert_eq!(fs::read(drive.path("big")).unwrap(), data);
    let file = File::open(drive.path("big")).unwrap();
    let mut buf = vec![0u8; 100_000];
    file.read_exact_at(&mut buf, 65_000).unwrap();
    assert_eq!(buf, data[65_000..165_000]);
    drop(file);
    drive.stop();
}

#[test]
fn o_excl_on_an_existing_name_fails_with_eexist() {
    let Some(drive) = mount("o_excl_on_an_existing_name_fails_with_eexist") else {
        return;
    };
    let path = drive.path("x");
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    let err = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    fs::create_dir(drive.path("d")).unwrap();
    assert_eq!(
        fs::create_dir(drive.path("d")).unwrap_err().raw_os_error(),
        Some(libc::EEXIST)
    );
    drive.stop();
}

#[test]
fn o_trunc_empties_the_file() {
    let Some(drive) = mount("o_trunc_empties_the_file") else {
        return;
    };
    let path = drive.path("t");
    fs::write(&path, b"0123456789").unwrap();
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    assert_eq!(file.metadata().unwrap().len(), 0);
    file.write_all(b"ab").unwrap();
    drop(file);
    assert_eq!(fs::read(&path).unwrap(), b"ab");
    drive.stop();
}

#[test]
fn o_append_writes_at_the_end_from_several_processes() {
    let Some(drive) = mount("o_append_writes_at_the_end_from_several_processes") else {
        return;
    };
    let path = drive.path("log");
    fs::write(&path, b"first\n").unwrap();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(b"second\n").unwrap();
    drop(file);
    sh("echo third >> log; echo fourth >> log", drive.root());
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "first\nsecond\nthird\nfourth\n"
    );
    drive.stop();
}

#[test]
fn child_processes_see_the_same_files() {
    let Some(drive) = mount("child_processes_see_the_same_files") else {
        return;
    };
    sh("mkdir sub && printf 'from child' > sub/c.txt", drive.root());
    assert_eq!(fs::read(drive.path("sub/c.txt")).unwrap(), b"from child");
    fs::write(drive.path("sub/p.txt"), b"from parent").unwrap();
    assert_eq!(
        sh("cat sub/p.txt; ls sub", drive.root()),
        "from parentc.txt\np.txt\n"
    );
    drive.stop();
}

// --- holes and sparse files -----------------------------------------------------------------

#[test]
fn holes_read_as_zeros() {
    let Some(drive) = mount("holes_read_as_zeros") else {
        return;
    };
    let path = drive.path("holes");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.write_all_at(b"end", 1_000_000).unwrap();
    file.write_all_at(b"start", 0).unwrap();
    drop(file);
    let data = fs::read(&path).unwrap();
    assert_eq!(data.len(), 1_000_003);
    assert_eq!(&data[..5], b"start");
    assert!(data[5..1_000_000].iter().all(|&b| b == 0));
    assert_eq!(&data[1_000_000..], b"end");
    drive.stop();
}

#[test]
fn a_4_gib_sparse_file_costs_almost_nothing() {
    let Some(drive) = mount("a_4_gib_sparse_file_costs_almost_nothing") else {
        return;
    };
    const SIZE: u64 = 4 << 30;
    let path = drive.path("sparse");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.set_len(SIZE).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), SIZE);
    assert_eq!(meta.blocks(), 0, "a file that is all hole occupies nothing");
    let mut buf = vec![0xffu8; 4096];
    for offset in [0, 1 << 30, SIZE / 2 + 12_345, SIZE - 4096] {
        file.read_exact_at(&mut buf, offset).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "zeros at {offset}");
        buf.fill(0xff);
    }
    file.write_all_at(b"Z", SIZE - 1).unwrap();
    drop(file);
    let file = File::open(&path).unwrap();
    let mut last = [0u8; 2];
    assert_eq!(file.read_at(&mut last, SIZE - 2).unwrap(), 2);
    assert_eq!(&last, b"\0Z");
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), SIZE);
    assert!(
        meta.blocks() * 512 <= 1 << 20,
        "a 4 GiB file with one byte written reports {} allocated blocks",
        meta.blocks()
    );
    drop(file);
    drive.stop();
}

/// The drive keeps at most half its descriptor limit of handles for the files the kernel
/// opens by itself; a created file's handle is also the one its descriptor names, so however
/// many files are created while it stays open (a log, a database), its writes and `fsync`
/// keep working and reach the drive.
#[test]
fn a_created_file_kept_open_outlives_the_handle_limit() {
    if !require_root("a_created_file_kept_open_outlives_the_handle_limit") {
        return;
    }
    // 256 descriptors: at most 128 such handles.
    let drive = ServedDrive::memory_with_descriptors(&[], Some(256));
    let path = drive.path("log");
    let mut log = File::create(&path).unwrap();
    log.write_all(b"first line\n").unwrap();
    for i in 0..300 {
        File::create(drive.path(&format!("other{i}"))).unwrap();
    }
    log.write_all(b"second line\n").unwrap();
    log.sync_all().unwrap();
    drop(log);
    // Past the page cache: what the drive holds.
    let file = File::open(&path).unwrap();
    // SAFETY: a valid open descriptor; the call only drops cached pages.
    let dropped = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(dropped, 0);
    assert_eq!(fs::read(&path).unwrap(), b"first line\nsecond line\n");
    drive.stop();
}

// --- fallocate and copy_file_range --------------------------------------------------------------

/// How much of a file one of the memory drive's data chunks covers: a chunk written to its
/// end takes this much.
const CHUNK: u64 = 64 * 1024;

/// The unit a chunk's memory grows by, and `st_blocks` counts in.
const PAGE: u64 = 4096;

fn fallocate(file: &File, mode: i32, offset: i64, length: i64) -> Result<(), i32> {
    // SAFETY: a valid open descriptor; fallocate only reads its arguments.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, length) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// `copy_file_range(2)` with explicit offsets (the descriptors' own offsets stay).
fn copy_file_range(
    source: &File,
    position: i64,
    target: &File,
    target_position: i64,
    length: usize,
) -> Result<usize, i32> {
    let (mut from, mut to) = (position, target_position);
    // SAFETY: valid open descriptors and offsets that outlive the call.
    let rc = unsafe {
        libc::copy_file_range(
            source.as_raw_fd(),
            &mut from,
            target.as_raw_fd(),
            &mut to,
            length,
            0,
        )
    };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc as usize)
    }
}

/// Sets atime and mtime of `path` to 2001-09-09, so a later change is visible.
fn set_old_times(path: &Path) {
    let old = [libc::timespec {
        tv_sec: 1_000_000_000,
        tv_nsec: 0,
    }; 2];
    let c = cpath(path);
    assert_eq!(
        // SAFETY: a valid path and an array of two timespecs.
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), old.as_ptr(), 0) },
        0,
        "utimensat: errno {}",
        errno()
    );
}

fn read_write(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

#[test]
fn fallocate_grows_the_size_and_keep_size_changes_only_ctime() {
    // Write-through: under the default writeback cache the kernel keeps file times itself,
    // and recent kernels set mtime at every fallocate (the memory drive's docs say so).
    let test = "fallocate_grows_the_size_and_keep_size_changes_only_ctime";
    let Some(drive) = require_root(test)
        .then(|| ServedDrive::memory(&["--config", "FileCachePolicyWriteThrough=true"]))
    else {
        return;
    };
    let path = drive.path("reserved");
    let file = read_write(&path);
    file.write_all_at(b"abc", 0).unwrap();
    set_old_times(&path);
    fallocate(&file, 0, 0, 100_000).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        meta.len(),
        100_000,
        "mode 0 grows the file to offset + length"
    );
    assert!(meta.mtime() > 1_000_000_000, "growing sets mtime");
    assert_eq!(
        meta.blocks() * 512,
        PAGE,
        "memory is taken when bytes are written, not reserved: a page for three bytes"
    );
    let mut buf = vec![0xffu8; 100_000];
    file.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf[..3], b"abc");
    assert!(
        buf[3..].iter().all(|&b| b == 0),
        "the new bytes read as zeros"
    );

    set_old_times(&path);
    let before = fs::metadata(&path).unwrap();
    fallocate(&file, libc::FALLOC_FL_KEEP_SIZE, 50_000, 1_000_000).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 100_000, "FALLOC_FL_KEEP_SIZE leaves the size");
    assert_eq!(meta.blocks() * 512, PAGE);
    assert_eq!(
        meta.mtime(),
        1_000_000_000,
        "KEEP_SIZE leaves mtime, as on ext4"
    );
    assert!(
        (meta.ctime(), meta.ctime_nsec()) > (before.ctime(), before.ctime_nsec()),
        "KEEP_SIZE sets ctime"
    );
    // Space inside the file: nothing grows.
    fallocate(&file, 0, 0, 10).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 100_000);
    drop(file);
    drive.stop();
}

#[test]
fn punch_hole_reads_zeros_and_gives_blocks_back() {
    let Some(drive) = mount("punch_hole_reads_zeros_and_gives_blocks_back") else {
        return;
    };
    let path = drive.path("punched");
    // Under the writeback cache the drive's block count is the kernel's answer once the
    // writer closes (`close` writes the cached pages back and drops the cached count).
    fs::write(&path, vec![0xab; 4 * CHUNK as usize]).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().blocks() * 512, 4 * CHUNK);
    let file = read_write(&path);
    set_old_times(&path);
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // From inside chunk 1 to inside chunk 3: chunk 2 goes, the edges are zeroed.
    fallocate(&file, punch, 100_000, 150_000).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 4 * CHUNK, "punching keeps the size");
    assert_eq!(
        meta.blocks() * 512,
        3 * CHUNK,
        "the chunk wholly inside is gone"
    );
    assert!(meta.mtime() > 1_000_000_000, "punching sets mtime");
    let data = fs::read(&path).unwrap();
    assert!(data[..100_000].iter().all(|&b| b == 0xab));
    assert!(data[100_000..250_000].iter().all(|&b| b == 0));
    assert!(data[250_000..].iter().all(|&b| b == 0xab));
    // A hole reaching past the end drops the last chunk but not the size.
    fallocate(&file, punch, 3 * CHUNK as i64, 10 * CHUNK as i64).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.len(), meta.blocks() * 512), (4 * CHUNK, 2 * CHUNK));
    assert_eq!(
        fallocate(&file, libc::FALLOC_FL_PUNCH_HOLE, 0, 10),
        Err(libc::EOPNOTSUPP),
        "punching without KEEP_SIZE is refused by the kernel"
    );
    assert_eq!(
        fallocate(&file, libc::FALLOC_FL_COLLAPSE_RANGE, 0, CHUNK as i64),
        Err(libc::EOPNOTSUPP),
        "FUSE files cannot collapse ranges"
    );
    drop(file);
    drive.stop();
}

#[test]
fn zero_range_zeros_bytes_and_grows_the_file_unless_keep_size() {
    let Some(drive) = mount("zero_range_zeros_bytes_and_grows_the_file_unless_keep_size") else {
        return;
    };
    let path = drive.path("zeroed");
    let file = read_write(&path);
    file.write_all_at(b"0123456789", 0).unwrap();
    set_old_times(&path);
    fallocate(&file, libc::FALLOC_FL_ZERO_RANGE, 2, 3).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        [&b"01"[..], &[0; 3], b"56789"].concat()
    );
    assert!(meta.mtime() > 1_000_000_000, "zeroing sets mtime");
    fallocate(&file, libc::FALLOC_FL_ZERO_RANGE, 8, 10).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        [&b"01"[..], &[0; 3], b"567", &[0; 10]].concat()
    );
    let keep = libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE;
    fallocate(&file, keep, 16, 100).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        18,
        "KEEP_SIZE leaves the size"
    );
    // Whole chunks inside a zeroed range hold nothing.
    file.write_all_at(&vec![7u8; 3 * CHUNK as usize], 0)
        .unwrap();
    fallocate(&file, keep, 0, 3 * CHUNK as i64).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.len(), meta.blocks()), (3 * CHUNK, 0));
    assert!(fs::read(&path).unwrap().iter().all(|&b| b == 0));
    drop(file);
    drive.stop();
}

#[test]
fn copy_file_range_copies_bytes_and_returns_the_count() {
    let Some(drive) = mount("copy_file_range_copies_bytes_and_returns_the_count") else {
        return;
    };
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(drive.path("source"), &content).unwrap();
    let source = File::open(drive.path("source")).unwrap();
    let target = read_write(&drive.path("target"));
    set_old_times(&drive.path("target"));
    assert_eq!(
        copy_file_range(&source, 1000, &target, 500, 100_000),
        Ok(100_000)
    );
    let copied = fs::read(drive.path("target")).unwrap();
    assert_eq!(copied.len(), 100_500, "the target grows as a write would");
    assert!(
        copied[..500].iter().all(|&b| b == 0),
        "the gap reads as zeros"
    );
    assert!(copied[500..] == content[1000..101_000]);
    let meta = fs::metadata(drive.path("target")).unwrap();
    assert!(
        meta.mtime() > 1_000_000_000,
        "copying into a file sets its mtime"
    );
    assert_eq!(
        copy_file_range(&source, 150_000, &target, 0, 100_000),
        Ok(50_000),
        "a copy stops at the source's end"
    );
    assert!(fs::read(drive.path("target")).unwrap()[..50_000] == content[150_000..]);
    assert_eq!(copy_file_range(&source, 200_000, &target, 0, 10), Ok(0));
    assert_eq!(copy_file_range(&source, 300_000, &target, 0, 10), Ok(0));
    assert_eq!(fs::metadata(drive.path("target")).unwrap().len(), 100_500);
    drop((source, target));
    drive.stop();
}

#[test]
fn copy_file_range_within_one_file_copies_and_refuses_overlap() {
    let Some(drive) = mount("copy_file_range_within_one_file_copies_and_refuses_overlap") else {
        return;
    };
    let path = drive.path("self");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    fs::write(&path, &content).unwrap();
    let file = read_write(&path);
    assert_eq!(
        copy_file_range(&file, 0, &file, 200_000, 150_000),
        Ok(150_000)
    );
    let mut expected = content.clone();
    expected.resize(350_000, 0);
    expected.copy_within(0..150_000, 200_000);
    assert!(fs::read(&path).unwrap() == expected);
    // The kernel refuses overlapping ranges of one file before the drive is asked (the
    // drive would move them as memmove does; its unit tests check that).
    assert_eq!(
        copy_file_range(&file, 0, &file, 1000, 10_000),
        Err(libc::EINVAL)
    );
    drop(file);
    drive.stop();
}

#[test]
fn copy_file_range_keeps_holes_sparse() {
    let Some(drive) = mount("copy_file_range_keeps_holes_sparse") else {
        return;
    };
    const SIZE: u64 = 8 << 20;
    let source = read_write(&drive.path("sparse"));
    source.set_len(SIZE).unwrap();
    source.write_all_at(b"Z", SIZE - 1).unwrap();
    let target = read_write(&drive.path("copy"));
    assert_eq!(
        copy_file_range(&source, 0, &target, 0, SIZE as usize),
        Ok(SIZE as usize)
    );
    let meta = fs::metadata(drive.path("copy")).unwrap();
    assert_eq!(meta.len(), SIZE);
    assert_eq!(
        meta.blocks() * 512,
        CHUNK,
        "only the written chunk is copied: the drive, not the kernel's read-write loop, copied"
    );
    let mut last = [0u8; 2];
    target.read_exact_at(&mut last, SIZE - 2).unwrap();
    assert_eq!(&last, b"\0Z");
    drop((source, target));
    drive.stop();
}

// --- names: unlink, mkdir, rmdir, rename, readdir ------------------------------------------

#[test]
fn unlink_removes_the_name() {
    let Some(drive) = mount("unlink_removes_the_name") else {
        return;
    };
    let path = drive.path("gone");
    fs::write(&path, b"x").unwrap();
    fs::remove_file(&path).unwrap();
    assert_eq!(fs::metadata(&path).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        fs::remove_file(&path).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    assert_eq!(fs::read_dir(drive.root()).unwrap().count(), 0);
    drive.stop();
}

#[test]
fn mkdir_nests_and_rmdir_of_non_empty_fails_with_enotempty() {
    let Some(drive) = mount("mkdir_nests_and_rmdir_of_non_empty_fails_with_enotempty") else {
        return;
    };
    fs::create_dir_all(drive.path("a/b/c")).unwrap();
    fs::write(drive.path("a/b/c/f"), b"1").unwrap();
    assert_eq!(
        fs::metadata(drive.path("a")).unwrap().nlink(),
        3,
        "a has . .. and b"
    );
    let err = fs::remove_dir(drive.path("a/b")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));
    assert_eq!(
        fs::remove_dir(drive.path("a/b/c/f"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOTDIR)
    );
    assert_eq!(
        fs::remove_file(drive.path("a/b"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EISDIR)
    );
    fs::remove_file(drive.path("a/b/c/f")).unwrap();
    fs::remove_dir(drive.path("a/b/c")).unwrap();
    fs::remove_dir(drive.path("a/b")).unwrap();
    assert_eq!(fs::metadata(drive.path("a")).unwrap().nlink(), 2);
    assert!(!drive.path("a/b").exists());
    drive.stop();
}

#[test]
fn rename_replaces_an_existing_file() {
    let Some(drive) = mount("rename_replaces_an_existing_file") else {
        return;
    };
    fs::write(drive.path("old"), b"new content").unwrap();
    fs::write(drive.path("target"), b"replaced").unwrap();
    fs::rename(drive.path("old"), drive.path("target")).unwrap();
    assert_eq!(fs::read(drive.path("target")).unwrap(), b"new content");
    assert!(!drive.path("old").exists());
    let names: Vec<_> = fs::read_dir(drive.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["target"]);
    drive.stop();
}

#[test]
fn rename_exchange_swaps_a_file_and_a_directory_and_their_parents_link_counts() {
    let Some(drive) =
        mount("rename_exchange_swaps_a_file_and_a_directory_and_their_parents_link_counts")
    else {
        return;
    };
    fs::create_dir_all(drive.path("p/dir")).unwrap();
    fs::write(drive.path("p/dir/inner"), b"inner").unwrap();
    fs::create_dir(drive.path("q")).unwrap();
    fs::write(drive.path("q/file"), b"data").unwrap();
    let nlink = |name: &str| fs::metadata(drive.path(name)).unwrap().nlink();
    assert_eq!((nlink("p"), nlink("q")), (3, 2));
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        drive.path("p/dir"),
        rustix::fs::CWD,
        drive.path("q/file"),
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .unwrap();
    assert_eq!(fs::read(drive.path("p/dir")).unwrap(), b"data");
    assert_eq!(fs::read(drive.path("q/file/inner")).unwrap(), b"inner");
    assert_eq!((nlink("p"), nlink("q")), (2, 3));
    drive.stop();
}

#[test]
fn rename_moves_files_and_directories_across_directories() {
    let Some(drive) = mount("rename_moves_files_and_directories_across_directories") else {
        return;
    };
    fs::create_dir_all(drive.path("src/inner")).unwrap();
    fs::create_dir(drive.path("dst")).unwrap();
    fs::write(drive.path("src/inner/f"), b"deep").unwrap();
    fs::write(drive.path("src/g"), b"flat").unwrap();
    fs::rename(drive.path("src/g"), drive.path("dst/g2")).unwrap();
    fs::rename(drive.path("src/inner"), drive.path("dst/inner")).unwrap();
    assert_eq!(fs::read(drive.path("dst/g2")).unwrap(), b"flat");
    assert_eq!(fs::read(drive.path("dst/inner/f")).unwrap(), b"deep");
    assert_eq!(fs::read_dir(drive.path("src")).unwrap().count(), 0);
    assert_eq!(fs::metadata(drive.path("src")).unwrap().nlink(), 2);
    assert_eq!(fs::metadata(drive.path("dst")).unwrap().nlink(), 3);
    // A directory replaces only an empty directory.
    fs::create_dir(drive.path("empty")).unwrap();
    fs::rename(drive.path("dst/inner"), drive.path("empty")).unwrap();
    assert_eq!(fs::read(drive.path("empty/f")).unwrap(), b"deep");
    fs::create_dir(drive.path("full")).unwrap();
    fs::write(drive.path("full/x"), b"").unwrap();
    let err = fs::rename(drive.path("empty"), drive.path("full")).unwrap_err();
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::ENOTEMPTY) | Some(libc::EEXIST)
        ),
        "{err}"
    );
    let err = fs::rename(drive.path("empty"), drive.path("empty/sub")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    drive.stop();
}

#[test]
fn readdir_lists_10000_entries_each_exactly_once() {
    let Some(drive) = mount("readdir_lists_10000_entries_each_exactly_once") else {
        return;
    };
    let dir = drive.path("many");
    fs::create_dir(&dir).unwrap();
    for i in 0..10_000 {
        File::create(dir.join(format!("entry-{i:05}"))).unwrap();
    }
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 10_000);
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), 10_000, "no name listed twice");
    let expected: BTreeSet<String> = (0..10_000).map(|i| format!("entry-{i:05}")).collect();
    assert!(names.iter().all(|n| expected.contains(n)));
    // A child process sees the same count.
    assert_eq!(sh("ls many | wc -l", drive.root()).trim(), "10000");
    drive.stop();
}

// --- hard links and symbolic links ------------------------------------------------------------

#[test]
fn hard_links_share_data_and_count_names() {
    let Some(drive) = mount("hard_links_share_data_and_count_names") else {
        return;
    };
    fs::create_dir(drive.path("d")).unwrap();
    fs::write(drive.path("orig"), b"shared").unwrap();
    fs::hard_link(drive.path("orig"), drive.path("d/link")).unwrap();
    let (a, b) = (
        fs::metadata(drive.path("orig")).unwrap(),
        fs::metadata(drive.path("d/link")).unwrap(),
    );
    assert_eq!((a.nlink(), b.nlink()), (2, 2));
    assert_eq!(a.ino(), b.ino());
    fs::write(drive.path("d/link"), b"changed through the link").unwrap();
    assert_eq!(
        fs::read(drive.path("orig")).unwrap(),
        b"changed through the link"
    );
    fs::remove_file(drive.path("orig")).unwrap();
    assert_eq!(fs::metadata(drive.path("d/link")).unwrap().nlink(), 1);
    assert_eq!(
        fs::read(drive.path("d/link")).unwrap(),
        b"changed through the link"
    );
    assert_eq!(
        fs::hard_link(drive.path("d"), drive.path("dlink"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EPERM)
    );
    assert_eq!(
        fs::hard_link(drive.path("d/link"), drive.path("d/link"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EEXIST)
    );
    drive.stop();
}

#[test]
fn data_stays_until_the_last_name_and_handle_go() {
    let Some(drive) = mount("data_stays_until_the_last_name_and_handle_go") else {
        return;
    };
    fs::write(drive.path("one"), b"kept").unwrap();
    fs::hard_link(drive.path("one"), drive.path("two")).unwrap();
    let file = File::open(drive.path("two")).unwrap();
    fs::remove_file(drive.path("one")).unwrap();
    fs::remove_file(drive.path("two")).unwrap();
    assert_eq!(fs::read_dir(drive.root()).unwrap().count(), 0);
    let mut buf = [0u8; 4];
    file.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"kept");
    assert_eq!(file.metadata().unwrap().nlink(), 0);
    drop(file);
    drive.stop();
}

#[test]
fn symlinks_are_read_and_followed() {
    let Some(drive) = mount("symlinks_are_read_and_followed") else {
        return;
    };
    fs::create_dir(drive.path("dir")).unwrap();
    fs::write(drive.path("dir/target.txt"), b"through the link").unwrap();
    std::os::unix::fs::symlink("dir/target.txt", drive.path("link")).unwrap();
    std::os::unix::fs::symlink("dir", drive.path("dirlink")).unwrap();
    std::os::unix::fs::symlink("nowhere", drive.path("dangling")).unwrap();
    assert_eq!(
        fs::read_link(drive.path("link")).unwrap(),
        Path::new("dir/target.txt")
    );
    let meta = fs::symlink_metadata(drive.path("link")).unwrap();
    assert!(meta.file_type().is_symlink());
    assert_eq!(meta.len(), "dir/target.txt".len() as u64);
    assert_eq!(fs::read(drive.path("link")).unwrap(), b"through the link");
    assert_eq!(
        fs::read(drive.path("dirlink/target.txt")).unwrap(),
        b"through the link"
    );
    assert_eq!(
        fs::read(drive.path("dangling")).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    assert_eq!(
        sh("readlink link; cat link", drive.root()),
        "dir/target.txt\nthrough the link"
    );
    // Removing a link leaves its target.
    fs::remove_file(drive.path("link")).unwrap();
    assert!(drive.path("dir/target.txt").exists());
    drive.stop();
}

// --- FIFOs, sockets and device nodes ----------------------------------------------------------

fn mkfifo(path: &Path, mode: u32) -> Result<(), i32> {
    let c = cpath(path);
    // SAFETY: a valid C string.
    if unsafe { libc::mkfifo(c.as_ptr(), mode) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn mknod(path: &Path, mode: u32, device: libc::dev_t) -> Result<(), i32> {
    let c = cpath(path);
    // SAFETY: a valid C string.
    if unsafe { libc::mknod(c.as_ptr(), mode, device) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// The names in directory `dir` with their `d_type`s, as `readdir` gives them.
fn listed(dir: &Path) -> Vec<(String, fs::FileType)> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.file_type().unwrap())
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[test]
fn mkfifo_makes_a_pipe_that_carries_bytes() {
    let Some(drive) = mount("mkfifo_makes_a_pipe_that_carries_bytes") else {
        return;
    };
    let path = drive.path("pipe");
    mkfifo(&path, 0o640).unwrap();
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_fifo(), "{:o}", meta.mode());
    assert_eq!(
        meta.mode() & 0o7777 & !0o640,
        0,
        "at most the bits asked for"
    );
    assert_eq!(
        (meta.len(), meta.uid(), meta.gid(), meta.rdev()),
        (0, 0, 0, 0)
    );
    assert_eq!(mkfifo(&path, 0o640), Err(libc::EEXIST));
    // O_RDWR on a FIFO opens both ends: the kernel's pipe carries the bytes.
    let mut pipe = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .unwrap();
    pipe.write_all(b"through the pipe").unwrap();
    let mut got = [0u8; 16];
    pipe.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"through the pipe");
    assert_eq!(
        pipe.read(&mut got).unwrap_err().raw_os_error(),
        Some(libc::EAGAIN),
        "an empty pipe"
    );
    drop(pipe);
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        0,
        "the drive holds no data"
    );
    let entries = listed(drive.root());
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "pipe");
    assert!(entries[0].1.is_fifo(), "readdir reports the kind");
    drive.stop();
}

#[test]
fn unix_sockets_bind_to_a_name_and_connect_through_it() {
    let Some(drive) = mount("unix_sockets_bind_to_a_name_and_connect_through_it") else {
        return;
    };
    let path = drive.path("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket(), "{:o}", meta.mode());
    assert_eq!(meta.len(), 0);
    assert!(listed(drive.root())[0].1.is_socket());
    let mut client = UnixStream::connect(&path).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    assert_eq!(
        UnixListener::bind(&path).unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE),
        "the name is taken"
    );
    drop((client, server, listener));
    fs::remove_file(&path).unwrap();
    assert_eq!(
        UnixStream::connect(&path).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    drive.stop();
}

#[test]
fn device_nodes_report_their_numbers_and_open_their_devices() {
    let Some(drive) = mount("device_nodes_report_their_numbers_and_open_their_devices") else {
        return;
    };
    let null = drive.path("null");
    mknod(&null, libc::S_IFCHR | 0o666, libc::makedev(1, 3)).unwrap();
    let meta = fs::symlink_metadata(&null).unwrap();
    assert!(meta.file_type().is_char_device(), "{:o}", meta.mode());
    assert_eq!((libc::major(meta.rdev()), libc::minor(meta.rdev())), (1, 3));
    assert_eq!(meta.len(), 0);
    // Opening the node opens /dev/null: writes vanish, reads see its end.
    let mut device = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&null)
        .unwrap();
    assert_eq!(device.write(b"discarded").unwrap(), 9);
    let mut buf = [0u8; 8];
    assert_eq!(device.read(&mut buf).unwrap(), 0);
    drop(device);
    let disk = drive.path("loop0");
    mknod(&disk, libc::S_IFBLK | 0o600, libc::makedev(7, 0)).unwrap();
    let meta = fs::symlink_metadata(&disk).unwrap();
    assert!(meta.file_type().is_block_device(), "{:o}", meta.mode());
    assert_eq!((libc::major(meta.rdev()), libc::minor(meta.rdev())), (7, 0));
    let entries = listed(drive.root());
    assert!(entries[0].1.is_block_device() && entries[1].1.is_char_device());
    // Only root may make device nodes: the kernel refuses others before the drive is asked.
    // (Run from inside the drive, in a directory anyone may write: the test's temporary
    // directory is private to root.)
    fs::create_dir(drive.path("open")).unwrap();
    fs::set_permissions(drive.path("open"), fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=4321", "--regid=4321", "--clear-groups", "mknod"])
        .args(["mine", "c", "1", "3"])
        .current_dir(drive.path("open"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert!(!drive.path("open/mine").exists());
    drive.stop();
}

#[test]
fn special_files_are_owned_like_files_and_take_chmod_chown_times_links_and_renames() {
    let Some(drive) =
        mount("special_files_are_owned_like_files_and_take_chmod_chown_times_links_and_renames")
    else {
        return;
    };
    // Owner and group: the caller's, or a set-group-ID directory's group.
    fs::create_dir(drive.path("open")).unwrap();
    fs::set_permissions(drive.path("open"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::create_dir(drive.path("shared")).unwrap();
    std::os::unix::fs::chown(drive.path("shared"), None, Some(50)).unwrap();
    fs::set_permissions(drive.path("shared"), fs::Permissions::from_mode(0o2777)).unwrap();
    sh(
        "setpriv --reuid=4321 --regid=4321 --clear-groups mkfifo open/p shared/p",
        drive.root(),
    );
    let mine = fs::symlink_metadata(drive.path("open/p")).unwrap();
    assert_eq!((mine.uid(), mine.gid()), (4321, 4321));
    let shared = fs::symlink_metadata(drive.path("shared/p")).unwrap();
    assert_eq!((shared.uid(), shared.gid()), (4321, 50));

    for (name, make) in [("fifo", libc::S_IFIFO), ("dev", libc::S_IFCHR)] {
        let path = drive.path(name);
        mknod(&path, make | 0o644, libc::makedev(1, 3)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(1234), Some(5678)).unwrap();
        set_old_times(&path);
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.mode(), make | 0o600, "{name}");
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678), "{name}");
        assert_eq!((meta.atime(), meta.mtime()), (1_000_000_000, 1_000_000_000));
        let link = drive.path(&format!("{name}-link"));
        fs::hard_link(&path, &link).unwrap();
        let moved = drive.path(&format!("open/{name}-moved"));
        fs::rename(&link, &moved).unwrap();
        let (a, b) = (
            fs::symlink_metadata(&path).unwrap(),
            fs::symlink_metadata(&moved).unwrap(),
        );
        assert_eq!((a.nlink(), b.nlink()), (2, 2), "{name}");
        assert_eq!((a.ino(), a.rdev()), (b.ino(), b.rdev()), "{name}");
        assert_eq!(b.mode(), make | 0o600, "{name}: rename keeps the kind");
        fs::remove_file(&path).unwrap();
        assert_eq!(fs::symlink_metadata(&moved).unwrap().nlink(), 1, "{name}");
        fs::remove_file(&moved).unwrap();
        assert_eq!(
            fs::symlink_metadata(&moved).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
    }
    assert_eq!(
        fs::metadata(drive.path("dev"))
            .map(drop)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOENT)
    );
    drive.stop();
}

// --- open then unlink -------------------------------------------------------------------------

#[test]
fn an_open_file_survives_unlink_until_closed() {
    let Some(drive) = mount("an_open_file_survives_unlink_until_closed") else {
        return;
    };
    let path = drive.path("tmp");
    fs::write(&path, b"before").unwrap();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    fs::remove_file(&path).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    file.seek(SeekFrom::End(0)).unwrap();
    file.write_all(b" and after").unwrap();
    let mut all = String::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_string(&mut all).unwrap();
    assert_eq!(all, "before and after");
    // A new file under the same name is a different file.
    fs::write(&path, b"new").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new");
    let mut again = String::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_string(&mut again).unwrap();
    assert_eq!(again, "before and after");
    drop(file);
    drive.stop();
}

// --- extended attributes ------------------------------------------------------------------------

fn setxattr(path: &Path, name: &str, value: &[u8], flags: i32) -> Result<(), i32> {
    let (p, n) = (cpath(path), std::ffi::CString::new(name).unwrap());
    // SAFETY: valid C strings and a buffer of the given length.
    let rc = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn getxattr(path: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let (p, n) = (cpath(path), std::ffi::CString::new(name).unwrap());
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C strings and a buffer of the given length.
    let rc = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if rc < 0 {
        return Err(errno());
    }
    buf.truncate(rc as usize);
    Ok(buf)
}

fn listxattr(path: &Path) -> Vec<String> {
    let p = cpath(path);
    let mut buf = vec![0u8; 4096];
    // SAFETY: a valid C string and a buffer of the given length.
    let rc = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(rc >= 0, "listxattr: errno {}", errno());
    buf.truncate(rc as usize);
    buf.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

fn removexattr(path: &Path, name: &str) -> Result<(), i32> {
    let (p, n) = (cpath(path), std::ffi::CString::new(name).unwrap());
    // SAFETY: valid C strings.
    let rc = unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

#[test]
fn xattrs_are_set_read_listed_and_removed() {
    let Some(drive) = mount("xattrs_are_set_read_listed_and_removed") else {
        return;
    };
    let path = drive.path("attrs");
    fs::write(&path, b"").unwrap();
    assert_eq!(listxattr(&path), Vec::<String>::new());
    setxattr(&path, "user.color", b"blue", 0).unwrap();
    setxattr(&path, "user.binary", &[0, 1, 2, 255], 0).unwrap();
    assert_eq!(getxattr(&path, "user.color").unwrap(), b"blue");
    assert_eq!(getxattr(&path, "user.binary").unwrap(), [0, 1, 2, 255]);
    assert_eq!(listxattr(&path), ["user.binary", "user.color"]);
    assert_eq!(
        setxattr(&path, "user.color", b"red", libc::XATTR_CREATE),
        Err(libc::EEXIST)
    );
    assert_eq!(
        setxattr(&path, "user.size", b"1", libc::XATTR_REPLACE),
        Err(libc::ENODATA)
    );
    setxattr(&path, "user.color", b"red", libc::XATTR_REPLACE).unwrap();
    assert_eq!(getxattr(&path, "user.color").unwrap(), b"red");
    removexattr(&path, "user.color").unwrap();
    assert_eq!(getxattr(&path, "user.color"), Err(libc::ENODATA));
    assert_eq!(removexattr(&path, "user.color"), Err(libc::ENODATA));
    assert_eq!(listxattr(&path), ["user.binary"]);
    drive.stop();
}

/// An access ACL `(tag, permissions, id)` entries as `system.posix_acl_access` holds it.
fn access_acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut value = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        value.extend_from_slice(&tag.to_le_bytes());
        value.extend_from_slice(&perm.to_le_bytes());
        value.extend_from_slice(&id.to_le_bytes());
    }
    value
}

/// An access ACL set as `system.posix_acl_access` (what `setfacl`, `cp -a` and `rsync -A`
/// do through libacl) sets the mode, as on ext4 and tmpfs, and the kernel's permission
/// checks follow at once; an ACL the mode says all of is not stored, a longer one is.
/// Attributes outside Linux's namespaces are refused as on ext4.
#[test]
fn access_acls_set_the_mode() {
    let Some(drive) = mount("access_acls_set_the_mode") else {
        return;
    };
    // From inside the drive, in a directory anyone may enter: the test's temporary
    // directory is private to root.
    fs::create_dir(drive.path("open")).unwrap();
    fs::set_permissions(drive.path("open"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = drive.path("open/f");
    fs::write(&path, b"secret").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let read_as_other = || {
        Command::new("setpriv")
            .args(["--reuid=4321", "--regid=4321", "--clear-groups", "cat", "f"])
            .current_dir(drive.path("open"))
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(read_as_other(), "others may read 0644");
    let (user_obj, user, group_obj, mask, other) = (0x01, 0x02, 0x04, 0x10, 0x20);
    let any = u32::MAX;
    setxattr(
        &path,
        "system.posix_acl_access",
        &access_acl(&[(user_obj, 6, any), (group_obj, 0, any), (other, 0, any)]),
        0,
    )
    .unwrap();
    assert!(!read_as_other(), "the ACL took others' read bit at once");
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(
        getxattr(&path, "system.posix_acl_access"),
        Err(libc::ENODATA),
        "an ACL the mode says all of is not stored"
    );

    let longer = access_acl(&[
        (user_obj, 6, any),
        (user, 4, 4321),
        (group_obj, 0, any),
        (mask, 4, any),
        (other, 0, any),
    ]);
    setxattr(&path, "system.posix_acl_access", &longer, 0).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().mode() & 0o7777,
        0o640,
        "the mask gives the group bits"
    );
    assert_eq!(getxattr(&path, "system.posix_acl_access").unwrap(), longer);
    // No entries: a removal (sent as one by Linux 6.2+, read as one by the engine before); the
    // mode stays.
    setxattr(&path, "system.posix_acl_access", b"\x02\0\0\0", 0).unwrap();
    assert_eq!(
        getxattr(&path, "system.posix_acl_access"),
        Err(libc::ENODATA)
    );
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(
        removexattr(&path, "system.posix_acl_access"),
        Ok(()),
        "removing an ACL a file does not have succeeds, as on ext4"
    );
    assert_eq!(
        setxattr(&path, "bogus.name", b"1", 0),
        Err(libc::EOPNOTSUPP)
    );
    assert_eq!(getxattr(&path, "bogus.name"), Err(libc::EOPNOTSUPP));
    drive.stop();
}

// --- permissions, ownership, times ------------------------------------------------------------

#[test]
fn chmod_and_chown_change_what_stat_reports() {
    let Some(drive) = mount("chmod_and_chown_change_what_stat_reports") else {
        return;
    };
    let path = drive.path("owned");
    fs::write(&path, b"x").unwrap();
    let before = fs::metadata(&path).unwrap();
    assert_eq!((before.uid(), before.gid()), (0, 0), "created by root");
    std::thread::sleep(Duration::from_millis(20));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(meta.mode() & libc::S_IFMT, libc::S_IFREG);
    assert!(meta.ctime_nsec() != before.ctime_nsec() || meta.ctime() > before.ctime());
    std::os::unix::fs::chown(&path, Some(1234), Some(5678)).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    fs::create_dir(drive.path("d")).unwrap();
    fs::set_permissions(drive.path("d"), fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(
        fs::metadata(drive.path("d")).unwrap().mode() & 0o7777,
        0o1777
    );
    // A non-root child is refused by the kernel's checks on mode 0640 owned by 1234, and
    // reads a file others may read (it runs from inside the drive: the test's temporary
    // directory is private to root).
    fs::write(drive.path("public"), b"for all").unwrap();
    let cat = |name: &str| {
        Command::new("setpriv")
            .args([
                "--reuid=4321",
                "--regid=4321",
                "--clear-groups",
                "cat",
                name,
            ])
            .current_dir(drive.root())
            .output()
            .unwrap()
    };
    let out = cat("owned");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    assert_eq!(cat("public").stdout, b"for all");
    drive.stop();
}

#[test]
fn utimensat_sets_exact_times() {
    let Some(drive) = mount("utimensat_sets_exact_times") else {
        return;
    };
    let path = drive.path("timed");
    fs::write(&path, b"x").unwrap();
    let times = [
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 123_456_789,
        },
        libc::timespec {
            tv_sec: 1_500_000_000,
            tv_nsec: 987_654_321,
        },
    ];
    let c = cpath(&path);
    assert_eq!(
        // SAFETY: a valid path and an array of two timespecs.
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) },
        0
    );
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.atime(), meta.atime_nsec()),
        (1_000_000_000, 123_456_789)
    );
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_500_000_000, 987_654_321)
    );
    assert!(
        meta.ctime() > 1_500_000_000,
        "ctime is now, not the given time"
    );
    drive.stop();
}

#[test]
fn writes_and_entries_update_times_as_posix_says() {
    let Some(drive) = mount("writes_and_entries_update_times_as_posix_says") else {
        return;
    };
    fs::create_dir(drive.path("d")).unwrap();
    fs::write(drive.path("d/f"), b"1").unwrap();
    let old = [
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    ];
    for p in ["d", "d/f"] {
        let c = cpath(&drive.path(p));
        assert_eq!(
            // SAFETY: a valid path and an array of two timespecs.
            unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), old.as_ptr(), 0) },
            0
        );
    }
    fs::write(drive.path("d/f"), b"2").unwrap();
    assert!(
        fs::metadata(drive.path("d/f")).unwrap().mtime() > 1_000_000_000,
        "write sets mtime"
    );
    assert_eq!(
        fs::metadata(drive.path("d")).unwrap().mtime(),
        1_000_000_000,
        "dir untouched"
    );
    fs::write(drive.path("d/g"), b"").unwrap();
    assert!(
        fs::metadata(drive.path("d")).unwrap().mtime() > 1_000_000_000,
        "create sets dir mtime"
    );
    drive.stop();
}

// --- memory -------------------------------------------------------------------------------------

/// The resident memory of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
fn resident_bytes(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status:\n{status}"));
    kib * 1024
}

#[test]
fn deleted_files_give_their_memory_back_to_the_system() {
    let Some(drive) = mount("deleted_files_give_their_memory_back_to_the_system") else {
        return;
    };
    const MIB: u64 = 1 << 20;
    /// The drive's `TRIM_THRESHOLD`: at most this much freed memory waits for the next trim
    /// (none here, as 512 MiB is a multiple of it, but the drive promises no better).
    const TRIM_THRESHOLD: u64 = 64 * MIB;
    /// What the server may rightly keep besides: buffers it made for the burst and reuses
    /// (a 1 MiB request buffer per reader thread, pooled read buffers: about 12 MiB) and the
    /// free top of each malloc arena, which glibc gives back only past 4 MiB (a few
    /// arenas). Measured: 1 to 10 MiB above the start. Without trimming the server keeps
    /// 300 to 500 MiB of the 512, so the bound cannot pass by luck nor fail by noise.
    const MARGIN: u64 = 32 * MIB;
    let pid = drive.pid();
    // The first requests allocate the server's request buffers, which stay: warm them up.
    fs::write(drive.path("warm-up"), vec![1u8; MIB as usize]).unwrap();
    fs::remove_file(drive.path("warm-up")).unwrap();
    let before = resident_bytes(pid);

    let data = vec![0x5au8; 8 * MIB as usize];
    for i in 0..64 {
        fs::write(drive.path(&format!("f{i:02}")), &data).unwrap();
    }
    let peak = resident_bytes(pid);
    assert!(
        peak >= before + 480 * MIB,
        "512 MiB of files live in the server: RSS {before} -> {peak}"
    );
    for i in 0..64 {
        fs::remove_file(drive.path(&format!("f{i:02}"))).unwrap();
    }
    // Files go when the kernel forgets them and the trim runs on a thread of its own: poll
    // until the size is within the bound and has stopped falling.
    let limit = before + TRIM_THRESHOLD + MARGIN;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut previous = u64::MAX;
    let after = loop {
        let now = resident_bytes(pid);
        if (now <= limit && now >= previous) || Instant::now() > deadline {
            break now;
        }
        previous = now;
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "server RSS: before {} MiB, peak {} MiB, after delete {} MiB",
        before / MIB,
        peak / MIB,
        after / MIB
    );
    assert!(
        after <= limit,
        "RSS stayed at {} MiB after every file was deleted (before: {} MiB, peak: {} MiB)",
        after / MIB,
        before / MIB,
        peak / MIB
    );
    drive.stop();
}

// --- event output -----------------------------------------------------------------------------

#[test]
fn json_event_lines_parse_and_name_the_events() {
    if !require_root("json_event_lines_parse_and_name_the_events") {
        return;
    }
    let drive = ServedDrive::memory(&["--log-events", "--json"]);
    fs::write(drive.path("e.txt"), b"payload").unwrap();
    assert_eq!(fs::read(drive.path("e.txt")).unwrap(), b"payload");
    fs::rename(drive.path("e.txt"), drive.path("f.txt")).unwrap();
    fs::remove_file(drive.path("f.txt")).unwrap();
    let stdout = drive.stop();
    let events: Vec<serde_json::Value> = String::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    let named = |name: &str| -> Vec<&serde_json::Value> {
        events.iter().filter(|e| e["event"] == name).collect()
    };
    let create = named("create_file");
    assert_eq!(create.len(), 1, "{events:?}");
    assert_eq!(create[0]["file_name"], "/e.txt");
    assert!(create[0]["process_id"].as_u64().unwrap() > 0);
    let writes = named("write_file");
    assert!(writes
        .iter()
        .any(|e| e["file_name"] == "/e.txt" && e["position"] == 0));
    let rename = named("rename_or_move_file");
    assert_eq!(rename.len(), 1);
    assert_eq!(rename[0]["file_name"], "/e.txt");
    assert_eq!(rename[0]["new_file_name"], "/f.txt");
    assert!(named("delete_file")
        .iter()
        .any(|e| e["file_name"] == "/f.txt"));
    assert!(events
        .iter()
        .all(|e| e["event"].is_string() && e.get("result_code").is_some()));
}

// --- mounting, unmounting, and the serving process dying ---------------------------------------

#[test]
fn mounting_on_a_missing_directory_fails_clearly() {
    if !require_root("mounting_on_a_missing_directory_fails_clearly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = Command::new(FSGATE)
        .arg("mount")
        .arg("memory")
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(!stderr.contains("ready:"), "{stderr}");
    assert!(!is_mounted(&missing));
}

#[test]
fn mounting_on_a_non_empty_directory_fails_clearly() {
    if !require_root("mounting_on_a_non_empty_directory_fails_clearly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("occupant"), b"").unwrap();
    let out = Command::new(FSGATE)
        .arg("mount")
        .arg("memory")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(dir.path().to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert!(!is_mounted(dir.path()));
    assert!(dir.path().join("occupant").exists());
}

#[test]
fn sigint_unmounts_and_exits_zero() {
    let Some(mut drive) = mount("sigint_unmounts_and_exits_zero") else {
        return;
    };
    fs::write(drive.path("f"), b"x").unwrap();
    let (status, _) = drive.stop_with(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{}", drive.stderr());
    assert!(!is_mounted(drive.root()));
    assert_eq!(
        fs::read_dir(drive.root()).unwrap().count(),
        0,
        "the directory is empty again"
    );
}

#[test]
fn sigkill_of_the_server_leaves_no_mount_behind() {
    let Some(mut drive) = mount("sigkill_of_the_server_leaves_no_mount_behind") else {
        return;
    };
    fs::write(drive.path("f"), b"x").unwrap();
    let (status, _) = drive.stop_with(libc::SIGKILL);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(
        wait_unmounted(drive.root(), Duration::from_secs(10)),
        "{} is still mounted 10 s after SIGKILL",
        drive.root().display()
    );
    assert_eq!(fs::read_dir(drive.root()).unwrap().count(), 0);
}

#[test]
fn unmount_command_refuses_a_directory_that_is_not_a_fuse_mount() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(FSGATE)
        .arg("unmount")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(dir.path().to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("not a FUSE mount"), "{stderr}");
}

#[test]
fn unmount_command_unmounts_and_the_server_exits_zero() {
    let Some(mut drive) = mount("unmount_command_unmounts_and_the_server_exits_zero") else {
        return;
    };
    let out = Command::new(FSGATE)
        .arg("unmount")
        .arg(drive.root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(drive.root()));
    let (status, _) = drive.stop_with(0);
    assert_eq!(status.code(), Some(0), "{}", drive.stderr());
}

#[test]
fn config_settings_apply_at_mount_and_bad_ones_fail_clearly() {
    if !require_root("config_settings_apply_at_mount_and_bad_ones_fail_clearly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(FSGATE)
        .args(["mount", "memory"])
        .arg(dir.path())
        .args(["--config", "FileCache=Sometimes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--config FileCache=Sometimes"), "{stderr}");
    assert!(!stderr.contains("ready:"), "{stderr}");
    assert!(!is_mounted(dir.path()));

    let drive = ServedDrive::memory(&[
        "--config",
        "FuseReaderThreadCount=1",
        "--config",
        "FileCache=None",
    ]);
    fs::write(drive.path("f"), b"served").unwrap();
    assert_eq!(fs::read(drive.path("f")).unwrap(), b"served");
    drive.stop();
}
