//! Namespace benchmark: the rate of create, open+close, stat, directory listing, rename,
//! delete, mkdir and rmdir over COUNT entries in DIR (the file tests WinFsp publishes for
//! its drives), on any filesystem — run it on a drive and on its anchors and compare.
//!
//! Usage: `nsbench DIR [COUNT]` (COUNT defaults to 10 000). DIR must exist and be empty.
//! Prints one line per operation: `name operations-per-second`. Listing counts entries
//! listed per second (three full listings).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn rate(name: &str, count: usize, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    let secs = start.elapsed().as_secs_f64();
    println!("{name} {:.0}", count as f64 / secs);
}

fn names(dir: &Path, prefix: &str, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| dir.join(format!("{prefix}{i:06}")))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: nsbench DIR [COUNT]");
        std::process::exit(2);
    };
    let count: usize = args.next().and_then(|c| c.parse().ok()).unwrap_or(10_000);
    let files = names(&dir, "f", count);
    let moved = names(&dir, "g", count);
    let dirs = names(&dir, "d", count);

    rate("create", count, || {
        for f in &files {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(f)
                .expect("create");
        }
    });
    rate("open_close", count, || {
        for f in &files {
            drop(File::open(f).expect("open"));
        }
    });
    rate("stat", count, || {
        for f in &files {
            fs::metadata(f).expect("stat");
        }
    });
    rate("list", 3 * count, || {
        for _ in 0..3 {
            let n = fs::read_dir(&dir).expect("list").count();
            assert_eq!(n, count);
        }
    });
    rate("rename", count, || {
        for (f, g) in files.iter().zip(&moved) {
            fs::rename(f, g).expect("rename");
        }
    });
    rate("delete", count, || {
        for g in &moved {
            fs::remove_file(g).expect("delete");
        }
    });
    rate("mkdir", count, || {
        for d in &dirs {
            fs::create_dir(d).expect("mkdir");
        }
    });
    rate("rmdir", count, || {
        for d in &dirs {
            fs::remove_dir(d).expect("rmdir");
        }
    });
}
