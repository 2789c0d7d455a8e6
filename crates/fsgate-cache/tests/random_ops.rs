//! Seeded random operations against an in-memory model of what the vault's user must see,
//! with flushes, evictions under a small size limit, closes and reopens of the vault.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{options, pattern, Remote, Shared};
use fsgate_cache::{EnumMode, FlushMode, Vault, VaultOptions};

/// xorshift64*: small, seeded, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const FILES: [&str; 3] = ["f0", "dir/f1", "dir/sub/f2"];

fn open_vault(path: &std::path::Path, remote: &Arc<Remote>, opts: &VaultOptions) -> Vault {
    Vault::open(path, opts.clone(), Shared(remote.clone())).unwrap()
}

fn run(seed: u64, opts: VaultOptions, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let remote = Arc::new(Remote::default());
    let mut rng = Rng(seed | 1);
    // What a reader of each file must see.
    let mut model: HashMap<&str, Vec<u8>> = HashMap::new();
    let mut vault = open_vault(&path, &remote, &opts);
    for (i, id) in FILES.iter().enumerate() {
        let initial = pattern(seed * 10 + i as u64, rng.below(40_000) as usize);
        remote.put(id, &initial);
        vault.file_open(id, Some(initial.len() as u64)).unwrap();
        model.insert(id, initial);
    }
    for step in 0..steps {
        let id = FILES[rng.below(FILES.len() as u64) as usize];
        let op = rng.below(100);
        let ctx = format!("seed {seed} step {step} op {op} file {id}");
        let expected = model.get_mut(id).unwrap();
        match op {
            0..=34 => {
                let pos = rng.below(expected.len() as u64 + 5000) as usize;
                let data = pattern(seed ^ step as u64, 1 + rng.below(9000) as usize);
                vault
                    .file_write(id, pos as u64, &data)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                if expected.len() < pos + data.len() {
                    expected.resize(pos + data.len(), 0);
                }
                expected[pos..pos + data.len()].copy_from_slice(&data);
            }
            35..=69 => {
                let pos = rng.below(expected.len() as u64 + 2000) as usize;
                let mut buf = vec![0xEEu8; 1 + rng.below(12_000) as usize];
                let n = vault
                    .file_read(id, pos as u64, &mut buf)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let want = expected.len().saturating_sub(pos).min(buf.len());
                assert_eq!(n, want, "{ctx}: bytes read at {pos}");
                if n > 0 {
                    assert!(
                        buf[..n] == expected[pos..pos + n],
                        "{ctx}: bytes at {pos}..{}",
                        pos + n
                    );
                }
            }
            70..=77 => {
                let size = rng.below(50_000) as usize;
                vault
                    .file_set_size(id, size as u64, false)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                expected.resize(size, 0);
            }
            78..=84 => {
                vault
                    .file_flush(id, FlushMode::Immediate)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert!(
                    remote.get(id).unwrap() == *expected,
                    "{ctx}: external file after flush"
                );
            }
            85..=91 => {
                let mode = if rng.below(2) == 0 {
                    FlushMode::None
                } else {
                    FlushMode::Delayed
                };
                vault.file_close_ex(id, mode).unwrap();
                vault.file_open(id, None).unwrap();
            }
            92..=95 => {
                drop(vault);
                vault = open_vault(&path, &remote, &opts);
                let mut orphans = vault.enumerate_cached_files(EnumMode::Orphan).unwrap();
                for id in FILES {
                    vault.file_open(id, None).unwrap();
                    assert_eq!(
                        vault.file_get_size(id).unwrap(),
                        model[id].len() as u64,
                        "{ctx}: size of {id} after reopen"
                    );
                }
                orphans.retain(|o| !FILES.contains(&o.as_str()));
                assert_eq!(orphans, Vec::<String>::new());
            }
            96..=97 => {
                vault.flush_cache().unwrap();
                for id in FILES {
                    assert!(
                        remote.get(id).unwrap() == model[id],
                        "{ctx}: external {id} after flush_cache"
                    );
                }
            }
            _ => {
                let report = vault.check_and_repair().unwrap();
                assert_eq!(report.corrupt_blocks, vec![], "{ctx}");
            }
        }
        if opts.size_limit > 0 {
            assert!(
                vault.current_size() <= opts.size_limit,
                "{ctx}: {} cached",
                vault.current_size()
            );
        }
    }
    // Finally every file reads back whole, and a flush leaves external storage equal.
    for id in FILES {
        let mut buf = vec![0u8; model[id].len()];
        assert_eq!(vault.file_read(id, 0, &mut buf).unwrap(), buf.len());
        assert!(buf == model[id], "seed {seed}: final contents of {id}");
    }
    vault.flush_cache().unwrap();
    drop(vault);
    for id in FILES {
        assert!(
            remote.get(id).unwrap() == model[id],
            "seed {seed}: final external {id}"
        );
    }
}

#[test]
fn random_operations_match_the_model() {
    for seed in [1, 2, 3, 4] {
        run(seed, options(), 300);
    }
}

#[test]
fn random_operations_match_the_model_under_a_small_size_limit() {
    for seed in [5, 6, 7] {
        run(
            seed,
            VaultOptions {
                size_limit: 48 * 1024,
                ..options()
            },
            300,
        );
    }
}

#[test]
fn random_operations_match_the_model_with_journaling_and_write_back() {
    run(
        8,
        VaultOptions {
            journaling: true,
            flush_delay: std::time::Duration::from_millis(20),
            size_limit: 64 * 1024,
            ..options()
        },
        200,
    );
}
