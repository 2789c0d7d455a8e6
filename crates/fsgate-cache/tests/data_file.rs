//! The data file beside the index: block bytes read back whole and checked, slots reused,
//! and space given back.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{options, pattern, vault, Remote, Shared};
use fsgate_cache::{FlushMode, Vault, VaultOptions};
use fsgate_core::error::code;

fn data_file(dir: &Path) -> PathBuf {
    dir.join("vault.redb.data")
}

/// Bytes the data file takes on disk (holes punched for freed slots do not count).
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn a_fetched_file_reads_back_whole_and_at_any_offset() {
    let (dir, remote, vault) = vault(options());
    let data = pattern(1, 1 << 20);
    remote.put("f", &data);
    vault.file_open("f", Some(data.len() as u64)).unwrap();
    vault.file_prefetch("f", 0..data.len() as u64).unwrap();
    assert_eq!(remote.reads(), 1);
    assert_eq!(
        std::fs::metadata(data_file(dir.path())).unwrap().len(),
        data.len() as u64,
        "256 blocks of 4 KiB in 256 slots"
    );
    let mut whole = vec![0u8; data.len()];
    assert_eq!(vault.file_read("f", 0, &mut whole).unwrap(), data.len());
    assert_eq!(whole, data);
    for (position, len) in [(1, 4095), (4095, 2), (5000, 70_000), (1_000_000, 100_000)] {
        let mut buf = vec![0u8; len];
        let n = vault.file_read("f", position, &mut buf).unwrap();
        let end = (position as usize + len).min(data.len());
        assert_eq!(n, end - position as usize);
        assert_eq!(&buf[..n], &data[position as usize..end], "at {position}");
    }
    assert_eq!(remote.reads(), 1);
}

#[test]
fn a_flipped_byte_inside_a_run_of_blocks_fails_the_read_naming_its_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let remote = Arc::new(Remote::default());
    let data = pattern(2, 64 * 4096);
    remote.put("f", &data);
    {
        let vault = Vault::open(&path, options(), Shared(remote.clone())).unwrap();
        vault.file_open("f", Some(data.len() as u64)).unwrap();
        vault.file_prefetch("f", 0..data.len() as u64).unwrap();
    }
    let mut bytes = std::fs::read(data_file(dir.path())).unwrap();
    bytes[5 * 4096 + 17] ^= 0x80;
    std::fs::write(data_file(dir.path()), bytes).unwrap();

    let vault = Vault::open(&path, options(), Shared(remote.clone())).unwrap();
    vault.file_open("f", None).unwrap();
    let mut buf = vec![0u8; data.len()];
    let err = vault.file_read("f", 0, &mut buf).unwrap_err();
    assert_eq!(err.code(), code::ERROR_INVALID_DATA);
    assert!(err.message().contains("block 5 "), "{err}");
    let mut head = vec![0u8; 5 * 4096];
    vault.file_read("f", 0, &mut head).unwrap();
    assert_eq!(head, data[..5 * 4096], "the blocks before it are served");
    let report = vault.check_and_repair().unwrap();
    assert_eq!(report.blocks_checked, 64);
    assert_eq!(report.corrupt_blocks.len(), 1);
    assert_eq!(report.corrupt_blocks[0].position, 5 * 4096);
    vault.file_read("f", 0, &mut buf).unwrap();
    assert_eq!(buf, data, "the dropped block is fetched again");
}

#[test]
fn a_data_file_cut_short_is_reported_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let remote = Arc::new(Remote::default());
    {
        let vault = Vault::open(&path, options(), Shared(remote.clone())).unwrap();
        vault.file_open("f", None).unwrap();
        vault.file_write("f", 0, &pattern(3, 8 * 4096)).unwrap();
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(data_file(dir.path()))
        .unwrap();
    file.set_len(6 * 4096 + 100).unwrap();
    let vault = Vault::open(&path, options(), Shared(remote)).unwrap();
    vault.file_open("f", None).unwrap();
    let mut buf = vec![0u8; 8 * 4096];
    let err = vault.file_read("f", 0, &mut buf).unwrap_err();
    assert_eq!(err.code(), code::ERROR_INVALID_DATA);
    assert!(err.message().contains("block 6 "), "{err}");
}

#[test]
fn rewriting_blocks_reuses_their_slots() {
    for journaling in [false, true] {
        let (dir, _remote, vault) = vault(VaultOptions {
            journaling,
            ..options()
        });
        vault.file_open("f", None).unwrap();
        for round in 0..200 {
            vault.file_write("f", 0, &pattern(round, 4 * 4096)).unwrap();
            if round % 10 == 0 {
                // Without journaling a slot given up waits for the next sync.
                vault.file_flush("f", FlushMode::None).unwrap();
            }
        }
        let len = std::fs::metadata(data_file(dir.path())).unwrap().len();
        assert!(
            len <= 48 * 4096,
            "journaling {journaling}: the data file grew to {len} bytes for 4 blocks"
        );
        let mut buf = vec![0u8; 4 * 4096];
        vault.file_read("f", 0, &mut buf).unwrap();
        assert_eq!(buf, pattern(199, 4 * 4096));
    }
}

#[test]
fn deleted_data_gives_its_disk_space_back() {
    let (dir, remote, vault) = vault(options());
    let path = data_file(dir.path());
    for id in ["a", "b"] {
        remote.put(id, &pattern(4, 256 * 4096));
        vault.file_open(id, Some(256 * 4096)).unwrap();
        vault.file_prefetch(id, 0..256 * 4096).unwrap();
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 512 * 4096);
    let before = allocated(&path);
    vault.file_delete("a").unwrap();
    vault.flush_cache().unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        512 * 4096,
        "b's slots follow a's"
    );
    assert!(
        allocated(&path) <= before - 200 * 4096,
        "a's slots are holes now: {} of {before} bytes allocated",
        allocated(&path)
    );
    vault.file_delete("b").unwrap();
    vault.flush_cache().unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "a free tail is cut"
    );
}

#[test]
fn evicted_blocks_free_their_slots() {
    for journaling in [true, false] {
        let (dir, remote, vault) = vault(VaultOptions {
            journaling,
            size_limit: 16 * 4096,
            ..options()
        });
        let data = pattern(5, 256 * 4096);
        remote.put("f", &data);
        vault.file_open("f", Some(data.len() as u64)).unwrap();
        let mut buf = vec![0u8; 4 * 4096];
        for chunk in 0..64u64 {
            vault.file_read("f", chunk * 4 * 4096, &mut buf).unwrap();
        }
        vault.flush_cache().unwrap();
        let path = data_file(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        if journaling {
            assert!(len <= 24 * 4096, "the data file grew to {len} bytes");
        }
        assert!(
            allocated(&path) <= 24 * 4096,
            "journaling {journaling}: {} bytes allocated for 16 blocks",
            allocated(&path)
        );
        assert_eq!(vault.current_size(), 16 * 4096);
    }
}
