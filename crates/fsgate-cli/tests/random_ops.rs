//! Seeded random operations on a handful of files, checked against an in-memory model of
//! every file's bytes, on native ext4 and tmpfs (the controls) and the sample drives: the
//! memory drive with and without the page cache (`FileCache=None`) and over io_uring (over
//! `/dev/fuse` where the kernel has no FUSE io_uring), and the mirror drive over ext4 plain,
//! with `--passthrough` and without the page cache.
//!
//! Each target runs [`OPERATIONS`] operations drawn from one seed: `pwrite` and `pread` at
//! random offsets and sizes (most under 4 KiB, a few up to 256 KiB, some past the end),
//! `ftruncate` up and down, `fallocate` (mode 0, `KEEP_SIZE`, `PUNCH_HOLE`, `ZERO_RANGE`
//! with and without `KEEP_SIZE`), reads and writes through `MAP_SHARED` mappings (with
//! `msync`), and reopening. After every operation `fstat`'s size and the bytes around the
//! range the operation touched must match the model; every [`FULL_CHECK_EVERY`] operations
//! every file is read whole past the page cache. An error is a failure, unless [`REFUSED`]
//! documents it for a native control or ext4 itself refuses the operation (then no target
//! is asked to do it). Small sizes keep the run short: in a debug build each request costs
//! a drive far more than the bytes it carries.
//!
//! The seed is fixed ([`DEFAULT_SEED`]) and printed; `FSGATE_SEED=N` runs other operations
//! (or repeats a failing run's).

#[path = "conformance/served.rs"]
mod served;
#[path = "conformance/sys.rs"]
mod sys;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fsgate_testkit::require_root;
use served::{DriveMode, Targets};
use sys::Mapping;

/// Operations per target.
const OPERATIONS: usize = 100_000;
/// Files per target, used in turn at random.
const FILES: usize = 4;
/// The largest read, write or range.
const MAX_IO: u64 = 256 << 10;
/// No operation reaches past this offset.
const MAX_SIZE: u64 = 1 << 20;
/// How often every file is compared whole.
const FULL_CHECK_EVERY: usize = 5_000;
/// The largest memory mapping.
const MAX_MAPPING: u64 = 16 << 10;
/// Bytes compared past the lower of the old and the new size after `ftruncate`.
const TRUNCATE_CHECKED: u64 = 64 << 10;
/// Bytes compared on each side of the range an operation touched.
const MARGIN: u64 = 512;
const PAGE: u64 = 4096;

const KEEP_SIZE: i32 = libc::FALLOC_FL_KEEP_SIZE;
const PUNCH_HOLE: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
const ZERO_RANGE: i32 = libc::FALLOC_FL_ZERO_RANGE;

/// The `fallocate` modes drawn, with their names.
const FALLOCATE_MODES: [(i32, &str); 5] = [
    (0, "mode 0"),
    (KEEP_SIZE, "KEEP_SIZE"),
    (PUNCH_HOLE, "PUNCH_HOLE|KEEP_SIZE"),
    (ZERO_RANGE, "ZERO_RANGE"),
    (ZERO_RANGE | KEEP_SIZE, "ZERO_RANGE|KEEP_SIZE"),
];

/// `fallocate` modes a native control refuses, and why: there the refusal is expected and
/// the model stays as it was. Every drive must do every mode ext4 does.
const REFUSED: &[(&str, i32, &str)] = &[
    (
        "tmpfs",
        ZERO_RANGE,
        "shmem_fallocate implements only KEEP_SIZE and PUNCH_HOLE (EOPNOTSUPP)",
    ),
    (
        "tmpfs",
        ZERO_RANGE | KEEP_SIZE,
        "shmem_fallocate implements only KEEP_SIZE and PUNCH_HOLE (EOPNOTSUPP)",
    ),
];

/// SplitMix64: small, fast, and the same sequence on every machine for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `percent` times in a hundred.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seed of a run without `FSGATE_SEED`: every CI run checks the same operations, so a
/// failure always reproduces. Set `FSGATE_SEED` to explore others.
const DEFAULT_SEED: u64 = 0x00f5_6a7e_2026_1206;

/// The seed: `FSGATE_SEED` (decimal or `0x` hex), else [`DEFAULT_SEED`].
fn seed() -> u64 {
    match std::env::var("FSGATE_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("FSGATE_SEED={s}: not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// One operation on file `file`.
#[derive(Clone, Copy)]
enum Op {
    /// `pwrite` of `len` bytes of the data pool from `from`.
    Write {
        file: usize,
        offset: u64,
        len: u64,
        from: usize,
    },
    /// `pread` of `len` bytes.
    Read { file: usize, offset: u64, len: u64 },
    /// `ftruncate`.
    Truncate { file: usize, size: u64 },
    /// `fallocate`.
    Fallocate {
        file: usize,
        mode: i32,
        offset: u64,
        len: u64,
    },
    /// A `MAP_SHARED` mapping of `map_len` bytes at `map_at` (page-aligned, inside the
    /// file), `len` bytes of the pool from `from` copied in at `offset`, then `msync`.
    MapWrite {
        file: usize,
        map_at: u64,
        map_len: u64,
        offset: u64,
        len: u64,
        from: usize,
    },
    /// A `MAP_SHARED` mapping read whole.
    MapRead {
        file: usize,
        map_at: u64,
        map_len: u64,
    },
    /// Close and open again.
    Reopen { file: usize },
}

impl Op {
    fn file(self) -> usize {
        match self {
            Op::Write { file, .. }
            | Op::Read { file, .. }
            | Op::Truncate { file, .. }
            | Op::Fallocate { file, .. }
            | Op::MapWrite { file, .. }
            | Op::MapRead { file, .. }
            | Op::Reopen { file } => file,
        }
    }

    /// The bytes whose contents the operation may change or read: checked afterwards.
    fn range(self, size_before: u64) -> (u64, u64) {
        match self {
            Op::Write { offset, len, .. }
            | Op::Read { offset, len, .. }
            | Op::Fallocate { offset, len, .. }
            | Op::MapWrite { offset, len, .. } => (offset, offset + len),
            Op::MapRead {
                map_at, map_len, ..
            } => (map_at, map_at + map_len),
            // Both ends of the cut or the new zeros (the periodic whole-file check reads
            // what lies between).
            Op::Truncate { size, .. } => {
                let (low, high) = (size.min(size_before), size.max(size_before));
                (low, high.min(low + TRUNCATE_CHECKED))
            }
            Op::Reopen { .. } => (0, 0),
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match *self {
            Op::Write {
                file, offset, len, ..
            } => write!(f, "pwrite {len} bytes at {offset} of f{file}"),
            Op::Read { file, offset, len } => write!(f, "pread {len} bytes at {offset} of f{file}"),
            Op::Truncate { file, size } => write!(f, "ftruncate f{file} to {size}"),
            Op::Fallocate {
                file,
                mode,
                offset,
                len,
            } => {
                let name = FALLOCATE_MODES
                    .iter()
                    .find(|(m, _)| *m == mode)
                    .map_or("?", |(_, name)| name);
                write!(f, "fallocate {name} at {offset}+{len} of f{file}")
            }
            Op::MapWrite {
                file,
                map_at,
                map_len,
                offset,
                len,
                ..
            } => write!(
                f,
                "MAP_SHARED {map_at}+{map_len} of f{file}: {len} bytes written at {offset}, msync"
            ),
            Op::MapRead {
                file,
                map_at,
                map_len,
            } => {
                write!(f, "MAP_SHARED {map_at}+{map_len} of f{file}: read")
            }
            Op::Reopen { file } => write!(f, "reopen f{file}"),
        }
    }
}

/// A size for one read, write or range: mostly small, sometimes up to [`MAX_IO`].
fn io_len(rng: &mut Rng) -> u64 {
    1 + match rng.below(100) {
        0..=89 => rng.below(4096),
        90..=98 => rng.below(64 << 10),
        _ => rng.below(MAX_IO),
    }
}

/// An offset for a file of `size` bytes: mostly inside it, sometimes just past its end or
/// anywhere below [`MAX_SIZE`].
fn offset(rng: &mut Rng, size: u64) -> u64 {
    match rng.below(10) {
        0..=5 => rng.below(size + 1),
        6..=7 => size + rng.below(64 << 10),
        8 => rng.below(size / PAGE + 1) * PAGE,
        _ => rng.below(MAX_SIZE),
    }
}

/// `offset`/`len` cut so the range ends below [`MAX_SIZE`].
fn within_limit(offset: u64, len: u64) -> (u64, u64) {
    let offset = offset.min(MAX_SIZE - 1);
    (offset, len.min(MAX_SIZE - offset))
}

/// One target's files, their model, and what it has done.
struct Runner<'a> {
    target: &'a str,
    paths: Vec<PathBuf>,
    files: Vec<File>,
    model: Vec<Vec<u8>>,
    rng: Rng,
    pool: &'a [u8],
    modes: &'a [(i32, &'static str)],
    history: VecDeque<String>,
}

impl<'a> Runner<'a> {
    fn new(
        target: &'a str,
        dir: &Path,
        seed: u64,
        pool: &'a [u8],
        modes: &'a [(i32, &'static str)],
    ) -> Self {
        let paths: Vec<PathBuf> = (0..FILES).map(|i| dir.join(format!("f{i}"))).collect();
        let files = paths
            .iter()
            .map(|p| {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(p)
                    .unwrap_or_else(|e| panic!("{target}: creating {}: {e}", p.display()))
            })
            .collect();
        Runner {
            target,
            paths,
            files,
            model: vec![Vec::new(); FILES],
            rng: Rng(seed),
            pool,
            modes,
            history: VecDeque::new(),
        }
    }

    /// The next operation, drawn from the model's sizes.
    fn draw(&mut self) -> Op {
        let rng = &mut self.rng;
        let file = rng.below(FILES as u64) as usize;
        let size = self.model[file].len() as u64;
        let pool_at =
            |rng: &mut Rng, len: u64| rng.below(self.pool.len() as u64 - len + 1) as usize;
        match rng.below(100) {
            0..=34 => {
                let (offset, len) = within_limit(offset(rng, size), io_len(rng));
                let from = pool_at(rng, len);
                Op::Write {
                    file,
                    offset,
                    len,
                    from,
                }
            }
            35..=66 => {
                let (offset, len) = within_limit(offset(rng, size), io_len(rng));
                Op::Read { file, offset, len }
            }
            67..=75 => {
                let size = match rng.below(10) {
                    0..=3 => rng.below(size + 1),
                    4..=7 => size + rng.below(MAX_IO),
                    _ => rng.below(MAX_SIZE),
                };
                Op::Truncate {
                    file,
                    size: size.min(MAX_SIZE),
                }
            }
            76..=93 => {
                let mode = self.modes[rng.below(self.modes.len() as u64) as usize].0;
                let (offset, len) = within_limit(offset(rng, size), io_len(rng));
                Op::Fallocate {
                    file,
                    mode,
                    offset,
                    len,
                }
            }
            94..=96 if size > 0 => {
                let map_at = rng.below(size.div_ceil(PAGE)) * PAGE;
                let map_len = (size - map_at).min(1 + rng.below(MAX_MAPPING));
                if rng.percent(70) {
                    let offset = map_at + rng.below(map_len);
                    let len = (1 + rng.below(map_len)).min(map_at + map_len - offset);
                    let from = pool_at(rng, len);
                    Op::MapWrite {
                        file,
                        map_at,
                        map_len,
                        offset,
                        len,
                        from,
                    }
                } else {
                    Op::MapRead {
                        file,
                        map_at,
                        map_len,
                    }
                }
            }
            _ => Op::Reopen { file },
        }
    }

    /// Whether `target` refuses `mode` by a documented [`REFUSED`] entry.
    fn refuses(&self, mode: i32) -> bool {
        REFUSED
            .iter()
            .any(|(t, m, _)| *t == self.target && *m == mode)
    }

    /// Does `op` on the target and on the model; an error for anything unexpected.
    fn apply(&mut self, op: Op) -> Result<(), String> {
        let f = op.file();
        let errno = |what: &str, e: std::io::Error| format!("{what}: {}", sys::error_name(&e));
        match op {
            Op::Write {
                offset, len, from, ..
            } => {
                let data = &self.pool[from..from + len as usize];
                self.files[f]
                    .write_all_at(data, offset)
                    .map_err(|e| errno("pwrite", e))?;
                write_model(&mut self.model[f], offset, data);
            }
            // The check after every operation reads the range.
            Op::Read { .. } => {}
            Op::Truncate { size, .. } => {
                self.files[f]
                    .set_len(size)
                    .map_err(|e| errno("ftruncate", e))?;
                set_len(&mut self.model[f], size as usize);
            }
            Op::Fallocate {
                mode, offset, len, ..
            } => match sys::fallocate(self.files[f].as_fd(), mode, offset, len) {
                Ok(()) => fallocate_model(&mut self.model[f], mode, offset, len),
                Err(e) if self.refuses(mode) && e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
                Err(e) => return Err(errno("fallocate", e)),
            },
            Op::MapWrite {
                map_at,
                map_len,
                offset,
                len,
                from,
                ..
            } => {
                let prot = libc::PROT_READ | libc::PROT_WRITE;
                let mut map = Mapping::new(
                    self.files[f].as_fd(),
                    map_at,
                    map_len as usize,
                    prot,
                    libc::MAP_SHARED,
                )
                .map_err(|e| errno("mmap MAP_SHARED read-write", e))?;
                let data = &self.pool[from..from + len as usize];
                let at = (offset - map_at) as usize;
                map.bytes_mut()[at..at + data.len()].copy_from_slice(data);
                map.sync().map_err(|e| errno("msync", e))?;
                write_model(&mut self.model[f], offset, data);
            }
            Op::MapRead {
                map_at, map_len, ..
            } => {
                let map = Mapping::new(
                    self.files[f].as_fd(),
                    map_at,
                    map_len as usize,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                )
                .map_err(|e| errno("mmap MAP_SHARED read-only", e))?;
                let expected = &self.model[f][map_at as usize..(map_at + map_len) as usize];
                if let Some(at) = first_difference(map.bytes(), expected) {
                    return Err(format!(
                        "the mapping differs from the model at {}",
                        map_at + at as u64
                    ));
                }
            }
            Op::Reopen { .. } => {
                let path = &self.paths[f];
                self.files[f] = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| errno("open", e))?;
            }
        }
        Ok(())
    }

    /// Compares the file's size and its bytes in `from..to` (cut at the end) with the model.
    fn compare(&self, f: usize, from: u64, to: u64) -> Result<(), String> {
        let model = &self.model[f];
        let size = self.files[f]
            .metadata()
            .map_err(|e| format!("fstat: {}", sys::error_name(&e)))?
            .len();
        if size != model.len() as u64 {
            return Err(format!("size {size}, the model has {}", model.len()));
        }
        let to = to.min(size);
        if from >= to {
            return Ok(());
        }
        let mut buf = vec![0u8; (to - from) as usize];
        let n = sys::read_fully_at(&self.files[f], &mut buf, from)
            .map_err(|e| format!("pread: {}", sys::error_name(&e)))?;
        if n != buf.len() {
            return Err(format!(
                "pread of {} bytes at {from} returned {n}",
                buf.len()
            ));
        }
        let expected = &model[from as usize..to as usize];
        match first_difference(&buf, expected) {
            None => Ok(()),
            Some(at) => {
                let at_file = from as usize + at;
                let end = (at + 16).min(buf.len());
                Err(format!(
                    "byte {at_file} differs: read {:02x?}, the model has {:02x?}",
                    &buf[at..end],
                    &expected[at..end]
                ))
            }
        }
    }

    /// Compares the whole file with the model, read from the drive itself: dirty pages
    /// written back, then the page cache's copy dropped.
    fn compare_from_drive(&self, f: usize) -> Result<(), String> {
        let file = &self.files[f];
        file.sync_data()
            .map_err(|e| format!("fdatasync: {}", sys::error_name(&e)))?;
        sys::drop_cached_pages(file.as_fd())
            .map_err(|e| format!("posix_fadvise DONTNEED: {}", sys::error_name(&e)))?;
        self.compare(f, 0, MAX_SIZE)
            .map_err(|e| format!("{e} (whole file, read past the page cache)"))
    }

    /// Runs [`OPERATIONS`] operations, checking after each; the first failure, with the
    /// operations that led to it.
    fn run(&mut self) -> Result<(), String> {
        for n in 0..OPERATIONS {
            let op = self.draw();
            let file = op.file();
            let size_before = self.model[file].len() as u64;
            self.history
                .push_back(format!("#{n} {op} (size before {size_before})"));
            if self.history.len() > 12 {
                self.history.pop_front();
            }
            let (from, to) = op.range(size_before);
            let result = self
                .apply(op)
                .and_then(|()| self.compare(file, from.saturating_sub(MARGIN), to + MARGIN));
            let result = result.and_then(|()| {
                if (n + 1) % FULL_CHECK_EVERY == 0 || n + 1 == OPERATIONS {
                    (0..FILES).try_for_each(|f| self.compare_from_drive(f))
                } else {
                    Ok(())
                }
            });
            if let Err(what) = result {
                return Err(format!(
                    "{}: operation #{n} on f{file}: {what}\n  last operations:\n    {}",
                    self.target,
                    self.history
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n    ")
                ));
            }
        }
        Ok(())
    }
}

/// Writes `data` at `offset` in the model, growing it with zeros as a `pwrite` does.
fn write_model(model: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if model.len() < end {
        set_len(model, end);
    }
    model[offset as usize..end].copy_from_slice(data);
}

/// What a successful `fallocate(mode, offset, len)` does to the bytes.
fn fallocate_model(model: &mut Vec<u8>, mode: i32, offset: u64, len: u64) {
    let end = (offset + len) as usize;
    let grows = mode & libc::FALLOC_FL_KEEP_SIZE == 0;
    if grows && model.len() < end {
        set_len(model, end);
    }
    if mode & (libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE) != 0 {
        let end = end.min(model.len());
        if (offset as usize) < end {
            zero(&mut model[offset as usize..end]);
        }
    }
}

/// Zeros to copy from: a debug build's `resize` and `fill` store byte by byte, ten times
/// slower than copying (the test's own time would rival the drives').
static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

/// Cuts the model to `len` bytes or grows it with zeros.
fn set_len(model: &mut Vec<u8>, len: usize) {
    if len <= model.len() {
        model.truncate(len);
        return;
    }
    model.reserve(len - model.len());
    while model.len() < len {
        let n = (len - model.len()).min(ZEROS.len());
        model.extend_from_slice(&ZEROS[..n]);
    }
}

/// Sets `bytes` to zero.
fn zero(bytes: &mut [u8]) {
    for chunk in bytes.chunks_mut(ZEROS.len()) {
        chunk.copy_from_slice(&ZEROS[..chunk.len()]);
    }
}

/// The first index where `a` and `b` differ (or where one ends), if any.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

/// The modes of [`FALLOCATE_MODES`] that ext4 does at `dir`: the others are not drawn.
fn modes_ext4_does(dir: &Path) -> Vec<(i32, &'static str)> {
    let probe = dir.join("probe");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&probe)
        .unwrap();
    file.set_len(2 * PAGE).unwrap();
    let modes = FALLOCATE_MODES
        .into_iter()
        .filter(
            |(mode, name)| match sys::fallocate(file.as_fd(), *mode, 0, PAGE) {
                Ok(()) => true,
                Err(e) => {
                    eprintln!(
                        "random_ops: ext4 refuses fallocate {name} ({}): not drawn",
                        sys::error_name(&e)
                    );
                    false
                }
            },
        )
        .collect();
    drop(file);
    std::fs::remove_file(probe).unwrap();
    modes
}

#[test]
fn random_operations_keep_every_byte_on_every_target() {
    if !require_root("FUSE and tmpfs mounts need root") {
        return;
    }
    let seed = seed();
    eprintln!("random_ops: seed {seed} (FSGATE_SEED={seed} repeats this run)");
    let started = Instant::now();
    let modes = [
        DriveMode::Memory,
        DriveMode::MemoryOverIoUring,
        DriveMode::MemoryWithoutCache,
        DriveMode::MemoryWriteThrough,
        DriveMode::Mirror,
        DriveMode::MirrorPassthrough,
        DriveMode::MirrorWithoutCache,
    ];
    let targets = Targets::mount(&modes);
    let fallocate_modes = modes_ext4_does(&targets.list[0].root);
    let mut pool = vec![0u8; (MAX_IO * 3) as usize];
    let mut rng = Rng(seed ^ 0x5eed);
    for chunk in pool.chunks_mut(8) {
        let n = rng.next().to_le_bytes();
        chunk.copy_from_slice(&n[..chunk.len()]);
    }
    let results: Vec<(&str, Result<(), String>, f64)> = std::thread::scope(|s| {
        let running: Vec<_> = targets
            .list
            .iter()
            .map(|t| {
                let (pool, fallocate_modes) = (&pool, &fallocate_modes);
                s.spawn(move || {
                    let began = Instant::now();
                    let mut runner = Runner::new(t.name, &t.root, seed, pool, fallocate_modes);
                    let result = runner.run();
                    (t.name, result, began.elapsed().as_secs_f64())
                })
            })
            .collect();
        running.into_iter().map(|h| h.join().unwrap()).collect()
    });
    targets.stop();
    let mut failures = Vec::new();
    for (target, result, seconds) in results {
        match result {
            Ok(()) => eprintln!(
                "random_ops: {target}: {OPERATIONS} operations match the model ({seconds:.1} s)"
            ),
            Err(failure) => {
                eprintln!("random_ops: {target}: FAILED after {seconds:.1} s");
                failures.push(failure);
            }
        }
    }
    eprintln!(
        "random_ops: {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "seed {seed} (FSGATE_SEED={seed} repeats it):\n{}",
        failures.join("\n")
    );
}
