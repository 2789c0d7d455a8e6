//! Calls on ranges of a file's bytes: every `fallocate` mode, `copy_file_range` between
//! files of one target, and shared and private memory mappings.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{checksum, content, e, pattern};
use crate::sys::{self, Mapping};

/// A fresh file `name` in `d` holding `len` pattern bytes, open for reading and writing.
fn patterned(d: &Path, name: &str, len: usize) -> (File, Vec<u8>) {
    let bytes = pattern(len, name.len() as u8);
    fs::write(d.join(name), &bytes).unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(d.join(name))
        .unwrap();
    (file, bytes)
}

/// The bytes `fallocate` leaves where `expected` says, or where they first differ.
fn compare(p: &Path, expected: &[u8]) -> String {
    let got = fs::read(p).unwrap_or_default();
    if got == expected {
        return "as expected".into();
    }
    let at = got
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    format!(
        "differs at {at} (size {} expected {})",
        got.len(),
        expected.len()
    )
}

const FALLOC_MODES: [(i32, &str); 8] = [
    (0, "mode 0"),
    (libc::FALLOC_FL_KEEP_SIZE, "KEEP_SIZE"),
    (libc::FALLOC_FL_PUNCH_HOLE, "PUNCH_HOLE without KEEP_SIZE"),
    (
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        "PUNCH_HOLE|KEEP_SIZE",
    ),
    (libc::FALLOC_FL_ZERO_RANGE, "ZERO_RANGE"),
    (
        libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
        "ZERO_RANGE|KEEP_SIZE",
    ),
    (libc::FALLOC_FL_COLLAPSE_RANGE, "COLLAPSE_RANGE"),
    (libc::FALLOC_FL_INSERT_RANGE, "INSERT_RANGE"),
];

/// Every mode on a fresh pattern file of `len` bytes: the result, then the size and a
/// checksum of the content, and whether the content is what the mode promises (`expect`
/// computes it from the original bytes). Lines start with the mode's name.
fn fallocate_case(
    d: &Path,
    name: &str,
    len: usize,
    mode: i32,
    offset: u64,
    count: u64,
    expect: impl FnOnce(&mut Vec<u8>),
) -> String {
    let (file, mut bytes) = patterned(d, name, len);
    let label = FALLOC_MODES
        .iter()
        .find(|(m, _)| *m == mode)
        .map_or("?", |(_, l)| l);
    let result = sys::fallocate(file.as_fd(), mode, offset, count);
    if result.is_ok() {
        expect(&mut bytes);
    }
    format!(
        "{label} at {offset}+{count} on {len} bytes: {} then {}, {}",
        e(result),
        content(&d.join(name)),
        compare(&d.join(name), &bytes)
    )
}

/// Sets `bytes[from..to]` to zero, growing `bytes` with zeros to `to` when `grow`.
fn zero(bytes: &mut Vec<u8>, from: usize, to: usize, grow: bool) {
    if grow && bytes.len() < to {
        bytes.resize(to, 0);
    }
    let to = to.min(bytes.len());
    if from < to {
        bytes[from..to].fill(0);
    }
}

pub fn fallocate_modes(d: &Path) -> Vec<String> {
    const KEEP: i32 = libc::FALLOC_FL_KEEP_SIZE;
    const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE;
    const ZERO: i32 = libc::FALLOC_FL_ZERO_RANGE;
    const COLLAPSE: i32 = libc::FALLOC_FL_COLLAPSE_RANGE;
    const INSERT: i32 = libc::FALLOC_FL_INSERT_RANGE;
    let mut out = vec![
        fallocate_case(d, "extend", 10_000, 0, 0, 20_000, |b| b.resize(20_000, 0)),
        fallocate_case(d, "inside", 10_000, 0, 100, 1_000, |_| {}),
        fallocate_case(d, "keep", 10_000, KEEP, 8_000, 20_000, |_| {}),
        fallocate_case(d, "punch-no-keep", 10_000, PUNCH, 1_000, 5_000, |_| {}),
        fallocate_case(d, "punch", 10_000, PUNCH | KEEP, 1_000, 5_000, |b| {
            zero(b, 1_000, 6_000, false)
        }),
        fallocate_case(
            d,
            "punch-past-end",
            10_000,
            PUNCH | KEEP,
            9_000,
            5_000,
            |b| zero(b, 9_000, 14_000, false),
        ),
        fallocate_case(d, "zero", 10_000, ZERO, 1_000, 3_000, |b| {
            zero(b, 1_000, 4_000, false)
        }),
        fallocate_case(d, "zero-past-end", 10_000, ZERO, 8_000, 5_000, |b| {
            zero(b, 8_000, 13_000, true)
        }),
        fallocate_case(d, "zero-keep", 10_000, ZERO | KEEP, 8_000, 5_000, |b| {
            zero(b, 8_000, 13_000, false)
        }),
        fallocate_case(d, "collapse", 20_480, COLLAPSE, 4_096, 4_096, |b| {
            b.drain(4_096..8_192);
        }),
        fallocate_case(
            d,
            "collapse-unaligned",
            20_480,
            COLLAPSE,
            100,
            4_096,
            |_| {},
        ),
        fallocate_case(
            d,
            "collapse-to-end",
            20_480,
            COLLAPSE,
            16_384,
            4_096,
            |_| {},
        ),
        fallocate_case(d, "insert", 20_480, INSERT, 4_096, 4_096, |b| {
            b.splice(4_096..4_096, std::iter::repeat_n(0, 4_096));
        }),
        fallocate_case(d, "insert-at-end", 20_480, INSERT, 20_480, 4_096, |_| {}),
        fallocate_case(d, "zero-length", 10_000, 0, 0, 0, |_| {}),
    ];
    let (keep, _) = patterned(d, "keep-then-grow", 10_000);
    out.push(format!(
        "KEEP_SIZE past the end, then ftruncate up: {} {}, tail zeros {}",
        e(sys::fallocate(keep.as_fd(), KEEP, 10_000, 10_000)),
        e(keep.set_len(20_000)),
        fs::read(d.join("keep-then-grow")).is_ok_and(|b| b[10_000..].iter().all(|x| *x == 0))
    ));
    let read_only = File::open(d.join("extend")).unwrap();
    out.push(format!(
        "mode 0 on a read-only descriptor: {}",
        e(sys::fallocate(read_only.as_fd(), 0, 0, 100))
    ));
    out
}

/// The descriptors' file offsets.
fn offsets(a: &File, b: &File) -> String {
    let at = |f: &File| {
        sys::file_offset(f.as_fd()).map_or_else(|e| sys::error_name(&e), |o| o.to_string())
    };
    format!("offsets {} {}", at(a), at(b))
}

/// The bytes copied, or the errno.
fn copied(r: std::io::Result<usize>) -> String {
    r.map_or_else(|e| sys::error_name(&e), |n| format!("{n} bytes"))
}

pub fn copy_file_range(d: &Path) -> Vec<String> {
    let (src, bytes) = patterned(d, "src", 10_000);
    let dst = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(d.join("dst"))
        .unwrap();
    let copy = |from: &File, off_in, to: &File, off_out, len| {
        copied(sys::copy_file_range(
            from.as_fd(),
            off_in,
            to.as_fd(),
            off_out,
            len,
        ))
    };
    let mut out = vec![format!(
        "whole file at the file offsets: {}",
        copy(&src, None, &dst, None, 10_000)
    )];
    out.push(format!(
        "then {} dst {}",
        offsets(&src, &dst),
        content(&d.join("dst"))
    ));
    out.push(format!(
        "dst equals src: {}",
        fs::read(d.join("dst")).is_ok_and(|b| b == bytes)
    ));
    out.push(format!(
        "at explicit offsets past dst's end: {}",
        copy(&src, Some(1_000), &dst, Some(20_000), 3_000)
    ));
    let dst_bytes = fs::read(d.join("dst")).unwrap_or_default();
    out.push(format!(
        "then {} dst {}, copied range right {}, gap zeros {}",
        offsets(&src, &dst),
        content(&d.join("dst")),
        dst_bytes.get(20_000..23_000) == Some(&bytes[1_000..4_000]),
        dst_bytes
            .get(10_000..20_000)
            .is_some_and(|g| g.iter().all(|x| *x == 0))
    ));
    out.push(format!(
        "from the end of the source: {}",
        copy(&src, Some(10_000), &dst, Some(0), 100)
    ));
    out.push(format!(
        "from past the end of the source: {}",
        copy(&src, Some(50_000), &dst, Some(0), 100)
    ));
    out.push(format!(
        "across the end of the source: {}",
        copy(&src, Some(9_000), &dst, Some(30_000), 5_000)
    ));
    out.push(format!("then dst {}", content(&d.join("dst"))));
    out.push(format!(
        "zero bytes: {}",
        copy(&src, Some(0), &dst, Some(0), 0)
    ));
    out.push(format!(
        "within one file, overlapping: {}",
        copy(&src, Some(0), &src, Some(100), 1_000)
    ));
    out.push(format!(
        "within one file, apart: {}",
        copy(&src, Some(0), &src, Some(20_000), 1_000)
    ));
    out.push(format!("then src {}", content(&d.join("src"))));
    let write_only = OpenOptions::new().write(true).open(d.join("src")).unwrap();
    let read_only = File::open(d.join("dst")).unwrap();
    let append = OpenOptions::new().append(true).open(d.join("dst")).unwrap();
    out.push(format!(
        "from a write-only descriptor: {}",
        copy(&write_only, Some(0), &dst, Some(0), 10)
    ));
    out.push(format!(
        "to a read-only descriptor: {}",
        copy(&src, Some(0), &read_only, Some(0), 10)
    ));
    out.push(format!(
        "to an O_APPEND descriptor: {}",
        copy(&src, Some(0), &append, None, 10)
    ));
    let dir = File::open(d).unwrap();
    out.push(format!(
        "from a directory: {}",
        copy(&dir, Some(0), &dst, Some(0), 10)
    ));
    out.push(format!("dst at the end: {}", content(&d.join("dst"))));
    out
}

/// Whether `got` equals `expected`, or where it first differs.
fn same(got: &[u8], expected: &[u8]) -> String {
    if got == expected {
        return "same".into();
    }
    let at = got.iter().zip(expected).position(|(a, b)| a != b);
    format!(
        "differs at {at:?} ({} vs {} bytes)",
        got.len(),
        expected.len()
    )
}

pub fn mmap(d: &Path) -> Vec<String> {
    const PAGE: usize = 4096;
    const SHARED: i32 = libc::MAP_SHARED;
    const PRIVATE: i32 = libc::MAP_PRIVATE;
    const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;
    let len = 3 * PAGE + 500;
    let (file, mut bytes) = patterned(d, "f", len);
    let p = d.join("f");
    let mut out = Vec::new();
    // The last page holds the end of the file, so the whole of it may be touched.
    match Mapping::new(file.as_fd(), 0, 4 * PAGE, RW, SHARED) {
        Ok(mut map) => {
            out.push(format!(
                "MAP_SHARED read: {}",
                same(&map.bytes()[..len], &bytes)
            ));
            out.push(format!(
                "past the end in the last page reads zeros: {}",
                map.bytes()[len..].iter().all(|b| *b == 0)
            ));
            map.bytes_mut()[100..106].copy_from_slice(b"MAPPED");
            map.bytes_mut()[9_000..9_006].copy_from_slice(b"MAPPED");
            bytes[100..106].copy_from_slice(b"MAPPED");
            bytes[9_000..9_006].copy_from_slice(b"MAPPED");
            out.push(format!("msync: {}", e(map.sync())));
            out.push(format!(
                "read(2) after msync: {}",
                same(&fs::read(&p).unwrap(), &bytes)
            ));
            out.push(format!("size after msync: {}", content(&p)));
            file.write_all_at(b"WRITTEN", 5_000).unwrap();
            bytes[5_000..5_007].copy_from_slice(b"WRITTEN");
            out.push(format!(
                "pwrite seen through the mapping: {}",
                same(&map.bytes()[..len], &bytes)
            ));
        }
        Err(err) => out.push(format!("MAP_SHARED read-write: {}", sys::error_name(&err))),
    }
    out.push(format!(
        "after munmap: {}",
        same(&fs::read(&p).unwrap(), &bytes)
    ));

    match Mapping::new(file.as_fd(), PAGE as u64, PAGE, libc::PROT_READ, SHARED) {
        Ok(map) => out.push(format!(
            "MAP_SHARED at a page offset: {}",
            same(map.bytes(), &bytes[PAGE..2 * PAGE])
        )),
        Err(err) => out.push(format!(
            "MAP_SHARED at a page offset: {}",
            sys::error_name(&err)
        )),
    }
    match Mapping::new(file.as_fd(), 0, len, RW, PRIVATE) {
        Ok(mut map) => {
            out.push(format!("MAP_PRIVATE read: {}", same(map.bytes(), &bytes)));
            map.bytes_mut()[0..7].copy_from_slice(b"PRIVATE");
            out.push(format!(
                "MAP_PRIVATE write stays private: {}",
                same(&fs::read(&p).unwrap(), &bytes)
            ));
        }
        Err(err) => out.push(format!("MAP_PRIVATE: {}", sys::error_name(&err))),
    }
    let read_only = File::open(&p).unwrap();
    out.push(format!(
        "MAP_SHARED writable on a read-only descriptor: {}",
        e(Mapping::new(read_only.as_fd(), 0, PAGE, RW, SHARED))
    ));
    out.push(format!(
        "MAP_PRIVATE writable on a read-only descriptor: {}",
        e(Mapping::new(read_only.as_fd(), 0, PAGE, RW, PRIVATE))
    ));

    file.set_len(5 * PAGE as u64).unwrap();
    bytes.resize(5 * PAGE, 0);
    let grown = Mapping::new(file.as_fd(), 0, 5 * PAGE, RW, SHARED);
    drop(file);
    match grown {
        Ok(mut map) => {
            out.push(format!(
                "MAP_SHARED after ftruncate up: {}",
                same(map.bytes(), &bytes)
            ));
            map.bytes_mut()[4 * PAGE + 1..4 * PAGE + 8].copy_from_slice(b"CLOSED!");
            bytes[4 * PAGE + 1..4 * PAGE + 8].copy_from_slice(b"CLOSED!");
            out.push(format!("msync after close: {}", e(map.sync())));
        }
        Err(err) => out.push(format!(
            "MAP_SHARED after ftruncate up: {}",
            sys::error_name(&err)
        )),
    }
    out.push(format!(
        "written through a mapping of a closed descriptor: {}",
        same(&fs::read(&p).unwrap(), &bytes)
    ));
    out.push(format!(
        "end: {} sum of expected {}",
        content(&p),
        checksum(&bytes)
    ));
    out
}
