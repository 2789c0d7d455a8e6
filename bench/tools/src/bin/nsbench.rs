//! Namespace benchmark: the rate of create, open+close, stat, directory listing, rename,
//! delete, mkdir and rmdir over COUNT entries in DIR (the file tests WinFsp publishes for
//! its drives), on any filesystem — run it on a drive and on its anchors and compare.
//!
//! Usage: `nsbench DIR [COUNT]` (COUNT defaults to 10 000). DIR must exist and be empty.
//! Prints one line per operation: `name operations-per-second`. Listing counts entries
//! listed per second (three full listings).
//!
//! `nsbench --interleave COUNT DIR...` runs the same operations on several directories at
//! once, one entry at a time in turn (entry i on each directory, in a new pseudo-random
//! order for each i, before entry i + 1), timing each call on its own: every directory
//! sees the same moments of a busy machine, so their rates compare even where a separate
//! run of each would not. A call that another process's burst on the machine stalls is
//! noise, not the filesystem's cost: there each rate leaves out the slowest tenth of its
//! calls (a trimmed mean), and the listing rate is of 20 full listings, not 3. Prints
//! `index name operations-per-second` per directory (index 0 is the first DIR).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The operations, in the order they run.
const OPERATIONS: [&str; 8] = [
    "create",
    "open_close",
    "stat",
    "list",
    "rename",
    "delete",
    "mkdir",
    "rmdir",
];

fn names(dir: &Path, prefix: &str, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| dir.join(format!("{prefix}{i:06}")))
        .collect()
}

/// One directory's entries.
struct Target {
    dir: PathBuf,
    files: Vec<PathBuf>,
    moved: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Target {
    fn new(dir: PathBuf, count: usize) -> Self {
        Self {
            files: names(&dir, "f", count),
            moved: names(&dir, "g", count),
            dirs: names(&dir, "d", count),
            dir,
        }
    }

    /// Runs step `i` of operation `op` (for `list`, one whole listing).
    fn step(&self, op: &str, i: usize, count: usize) {
        match op {
            "create" => {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&self.files[i])
                    .expect("create");
            }
            "open_close" => drop(File::open(&self.files[i]).expect("open")),
            "stat" => {
                fs::metadata(&self.files[i]).expect("stat");
            }
            "list" => {
                let n = fs::read_dir(&self.dir).expect("list").count();
                assert_eq!(n, count);
            }
            "rename" => fs::rename(&self.files[i], &self.moved[i]).expect("rename"),
            "delete" => fs::remove_file(&self.moved[i]).expect("delete"),
            "mkdir" => fs::create_dir(&self.dirs[i]).expect("mkdir"),
            "rmdir" => fs::remove_dir(&self.dirs[i]).expect("rmdir"),
            _ => unreachable!("unknown operation {op}"),
        }
    }
}

/// Runs every operation on `targets`, entry by entry in turn, and returns each target's
/// rate per operation (items per second) over `listings` full listings; with `trim`, of the
/// fastest nine tenths of its calls.
fn run(targets: &[Target], count: usize, listings: usize, trim: bool) -> Vec<Vec<f64>> {
    let mut rates = vec![Vec::new(); targets.len()];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for op in OPERATIONS {
        let (steps, items_per_step) = if op == "list" {
            (listings, count)
        } else {
            (count, 1)
        };
        let mut calls = vec![Vec::with_capacity(steps); targets.len()];
        let mut order: Vec<usize> = (0..targets.len()).collect();
        for i in 0..steps {
            shuffle(&mut order, &mut seed);
            for &t in &order {
                let start = Instant::now();
                targets[t].step(op, i, count);
                calls[t].push(start.elapsed());
            }
        }
        for (t, mut times) in calls.into_iter().enumerate() {
            if trim && times.len() >= 10 {
                times.sort_unstable();
                times.truncate(times.len() - times.len() / 10);
            }
            let spent: Duration = times.iter().sum();
            rates[t].push((times.len() * items_per_step) as f64 / spent.as_secs_f64());
        }
    }
    rates
}

/// Puts `order` in a new pseudo-random order (Fisher-Yates over a xorshift generator), so
/// that no target always follows the same other one: a call's leftovers (the `RELEASE` a
/// FUSE server handles after `close` has returned) then slow every target alike.
fn shuffle(order: &mut [usize], seed: &mut u64) {
    for i in (1..order.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let j = (*seed % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

fn usage() -> ! {
    eprintln!("usage: nsbench DIR [COUNT] | nsbench --interleave COUNT DIR...");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--interleave") {
        let Some(count) = args.get(1).and_then(|c| c.parse().ok()) else {
            usage()
        };
        if args.len() < 3 {
            usage();
        }
        let targets: Vec<Target> = args[2..]
            .iter()
            .map(|d| Target::new(PathBuf::from(d), count))
            .collect();
        for (k, r) in run(&targets, count, 20, true).iter().enumerate() {
            for (op, rate) in OPERATIONS.iter().zip(r) {
                println!("{k} {op} {rate:.0}");
            }
        }
        return;
    }
    let Some(dir) = args.first().map(PathBuf::from) else {
        usage()
    };
    let count: usize = args.get(1).and_then(|c| c.parse().ok()).unwrap_or(10_000);
    let rates = run(&[Target::new(dir, count)], count, 3, false);
    for (op, rate) in OPERATIONS.iter().zip(&rates[0]) {
        println!("{op} {rate:.0}");
    }
}
