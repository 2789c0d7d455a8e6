//! File ids, tags, local files, orphans and eviction, as the reference's "CBCache Topics"
//! describe them.

mod common;

use common::{options, pattern, vault, Shared};
use fsgate_cache::{EnumMode, FileStatus, FlushMode, RwResult, Vault, VaultOptions};
use fsgate_core::error::code;

#[test]
fn ids_are_case_insensitive_when_asked_and_the_mode_is_fixed_at_creation() {
    let (dir, remote, vault) = vault(VaultOptions {
        case_sensitive: false,
        ..options()
    });
    vault.file_open("Dir/Read Me.TXT", None).unwrap();
    assert!(vault.file_exists("dir/read me.txt").unwrap());
    vault.file_write("DIR/READ ME.txt", 0, b"x").unwrap();
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::All).unwrap(),
        vec!["Dir/Read Me.TXT"]
    );
    drop(vault);
    let err = Vault::open(dir.path().join("vault.redb"), options(), Shared(remote))
        .err()
        .unwrap();
    assert_eq!(err.code(), code::ERROR_INVALID_PARAMETER);
    assert!(err.message().contains("case_sensitive"), "{err}");
}

#[test]
fn ids_are_strings_of_any_length_and_case_sensitive_by_default() {
    let (_dir, _remote, vault) = vault(options());
    let long = "x/".repeat(5000) + "ü\u{0}end";
    vault.file_open_ex(&long, None, true).unwrap();
    vault.file_open_ex("A", None, true).unwrap();
    assert!(!vault.file_exists("a").unwrap());
    assert!(vault.file_exists(&long).unwrap());
}

#[test]
fn tags_are_set_read_listed_and_deleted() {
    let (dir, remote, vault) = vault(options());
    vault.file_open("f", None).unwrap();
    vault.file_tag_set("f", 0x0001, b"one").unwrap();
    vault.file_tag_set("f", 0xCFFF, &[7u8; 65_531]).unwrap();
    vault.file_tag_set("f", 0x0100, b"first").unwrap();
    vault.file_tag_set("f", 0x0100, b"second").unwrap();
    assert_eq!(vault.file_tag_get("f", 0x0100).unwrap(), b"second");
    assert_eq!(vault.file_tag_get_size("f", 0xCFFF).unwrap(), 65_531);
    assert!(vault.file_tag_exists("f", 1).unwrap());
    assert!(!vault.file_tag_exists("f", 2).unwrap());
    assert_eq!(
        vault.file_tag_enumerate("f").unwrap(),
        vec![0x0001, 0x0100, 0xCFFF]
    );
    vault.file_tag_delete("f", 0x0001).unwrap();
    assert_eq!(
        vault.file_tag_get("f", 1).unwrap_err().code(),
        code::ERROR_EA_NOT_FOUND
    );
    assert_eq!(
        vault.file_tag_delete("f", 1).unwrap_err().code(),
        code::ERROR_EA_NOT_FOUND
    );

    drop(vault);
    let vault = Vault::open(dir.path().join("vault.redb"), options(), Shared(remote)).unwrap();
    assert_eq!(
        vault.file_tag_enumerate("f").unwrap(),
        vec![0x0100, 0xCFFF],
        "tags persist"
    );
    vault.file_change_id("f", "g").unwrap();
    assert_eq!(
        vault.file_tag_get("g", 0x0100).unwrap(),
        b"second",
        "tags move with the id"
    );
    vault.file_delete("g").unwrap();
    vault.file_open("g", None).unwrap();
    assert_eq!(
        vault.file_tag_enumerate("g").unwrap(),
        Vec::<u16>::new(),
        "deleted with the file"
    );
}

#[test]
fn tag_ids_and_sizes_outside_the_limits_are_refused() {
    let (_dir, _remote, vault) = vault(options());
    vault.file_open("f", None).unwrap();
    for id in [0x0000, 0xD000, 0xFFFF] {
        let err = vault.file_tag_set("f", id, b"x").unwrap_err();
        assert_eq!(err.code(), code::ERROR_INVALID_PARAMETER);
        assert!(err.message().contains("tag_id"), "{err}");
    }
    for len in [0, 65_532] {
        let err = vault.file_tag_set("f", 1, &vec![1u8; len]).unwrap_err();
        assert_eq!(err.code(), code::ERROR_INVALID_PARAMETER);
        assert!(err.message().contains("data"), "{err}");
    }
    assert_eq!(
        vault.file_tag_set("nope", 1, b"x").unwrap_err().code(),
        code::ERROR_FILE_NOT_FOUND
    );
}

#[test]
fn local_files_never_touch_external_storage() {
    let (dir, remote, vault) = vault(options());
    vault.file_open_ex(".DS_Store", Some(100), true).unwrap();
    let mut buf = vec![0xAAu8; 100];
    assert_eq!(vault.file_read(".DS_Store", 0, &mut buf).unwrap(), 100);
    assert!(
        buf.iter().all(|b| *b == 0),
        "a local file's unwritten bytes are zeros"
    );
    vault
        .file_write(".DS_Store", 50, &pattern(1, 9000))
        .unwrap();
    vault.file_set_size(".DS_Store", 20_000, true).unwrap();
    vault.flush_cache().unwrap();
    vault
        .file_close_ex(".DS_Store", FlushMode::Immediate)
        .unwrap();
    assert_eq!(remote.calls(), vec![], "no event for a local file");
    let status = vault.file_get_status(".DS_Store").unwrap();
    assert_eq!(status, FileStatus::LOCAL);
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Local).unwrap(),
        vec![".DS_Store"]
    );
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Orphan).unwrap(),
        Vec::<String>::new()
    );
    let err = vault.file_open(".DS_Store", None).unwrap_err();
    assert_eq!(
        err.code(),
        code::ERROR_INVALID_PARAMETER,
        "the local flag must match"
    );
    drop(vault);
    let vault = Vault::open(
        dir.path().join("vault.redb"),
        options(),
        Shared(remote.clone()),
    )
    .unwrap();
    vault.file_open_ex(".DS_Store", None, true).unwrap();
    let mut back = vec![0u8; 9000];
    vault.file_read(".DS_Store", 50, &mut back).unwrap();
    assert_eq!(back, pattern(1, 9000));
    assert_eq!(vault.file_get_size(".DS_Store").unwrap(), 20_000);
    assert_eq!(remote.calls(), vec![]);
}

#[test]
fn orphans_are_listed_after_a_close_without_flush_and_after_reopening() {
    let (dir, remote, vault) = vault(options());
    vault.file_open("kept", None).unwrap();
    vault.file_write("kept", 0, b"kept").unwrap();
    vault.file_open("orphan", None).unwrap();
    vault.file_write("orphan", 0, b"orphan data").unwrap();
    vault.file_close_ex("orphan", FlushMode::None).unwrap();
    vault.file_open("clean", None).unwrap();
    vault.file_close_ex("clean", FlushMode::None).unwrap();
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Orphan).unwrap(),
        vec!["orphan"]
    );
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Changed).unwrap(),
        vec!["kept", "orphan"]
    );
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Unchanged).unwrap(),
        vec!["clean"]
    );
    drop(vault);
    assert_eq!(remote.writes(), 0);

    let vault = Vault::open(
        dir.path().join("vault.redb"),
        options(),
        Shared(remote.clone()),
    )
    .unwrap();
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Orphan).unwrap(),
        vec!["kept", "orphan"],
        "files open at the end come back as orphans"
    );
    vault.file_flush("orphan", FlushMode::Immediate).unwrap();
    assert_eq!(remote.get("orphan").unwrap(), b"orphan data");
    vault.file_open("kept", None).unwrap();
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Orphan).unwrap(),
        Vec::<String>::new()
    );
    let mut buf = [0u8; 4];
    vault.file_read("kept", 0, &mut buf).unwrap();
    assert_eq!(&buf, b"kept");
    assert_eq!(remote.reads(), 0);
    vault.file_close_ex("kept", FlushMode::Immediate).unwrap();
    assert_eq!(remote.get("kept").unwrap(), b"kept");
}

#[test]
fn delayed_flush_is_done_by_the_write_back_thread() {
    let (_dir, remote, vault) = vault(VaultOptions {
        flush_delay: std::time::Duration::from_millis(50),
        ..options()
    });
    vault.file_open("a", None).unwrap();
    vault.file_write("a", 0, b"later").unwrap();
    vault.file_close("a").unwrap();
    while remote.get("a").is_none() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(remote.get("a").unwrap(), b"later");
    while vault
        .file_get_status("a")
        .unwrap()
        .contains(FileStatus::CHANGED)
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Orphan).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn a_failed_background_flush_fires_on_error_and_is_retried() {
    let (_dir, remote, vault) = vault(VaultOptions {
        flush_delay: std::time::Duration::from_millis(20),
        ..options()
    });
    // Scripted first: the write arms the delay, and nothing else fires an event before.
    remote.script(&[RwResult::RWRESULT_FAILURE]);
    vault.file_open("a", None).unwrap();
    vault.file_write("a", 0, b"retry me").unwrap();
    vault.file_close("a").unwrap();
    while remote.get("a").is_none() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(remote.get("a").unwrap(), b"retry me");
    assert_eq!(
        *remote.errors.lock().unwrap(),
        vec![("a".to_owned(), fsgate_cache::ERROR_RETRY)]
    );
    assert_eq!(remote.writes(), 2);
}

#[test]
fn change_id_refuses_an_existing_target() {
    let (_dir, _remote, vault) = vault(options());
    vault.file_open("a", None).unwrap();
    vault.file_open("b", None).unwrap();
    assert_eq!(
        vault.file_change_id("a", "b").unwrap_err().code(),
        code::ERROR_ALREADY_EXISTS
    );
    assert_eq!(
        vault.file_change_id("x", "y").unwrap_err().code(),
        code::ERROR_FILE_NOT_FOUND
    );
}

#[test]
fn reads_and_writes_need_an_open_file() {
    let (_dir, _remote, vault) = vault(options());
    vault.file_open("a", None).unwrap();
    vault.file_close("a").unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        vault.file_read("a", 0, &mut buf).unwrap_err().code(),
        code::ERROR_INVALID_HANDLE
    );
    assert_eq!(
        vault.file_write("a", 0, b"x").unwrap_err().code(),
        code::ERROR_INVALID_HANDLE
    );
    assert_eq!(
        vault.file_close("a").unwrap_err().code(),
        code::ERROR_INVALID_HANDLE
    );
}

fn limited() -> VaultOptions {
    VaultOptions {
        size_limit: 4 * 4096,
        ..options()
    }
}

#[test]
fn the_least_recently_used_clean_block_is_evicted_first() {
    let (_dir, remote, vault) = vault(limited());
    let data = pattern(20, 8 * 4096);
    remote.put("a", &data);
    vault.file_open("a", Some(data.len() as u64)).unwrap();
    let mut buf = [0u8; 1];
    for block in 0..4u64 {
        vault.file_read("a", block * 4096, &mut buf).unwrap();
    }
    vault.file_read("a", 0, &mut buf).unwrap();
    vault.file_read("a", 4 * 4096, &mut buf).unwrap();
    assert!(vault.current_size() <= 4 * 4096);
    remote.clear_calls();
    vault.file_read("a", 0, &mut buf).unwrap();
    assert_eq!(remote.reads(), 0, "block 0 was used recently and stayed");
    vault.file_read("a", 4096, &mut buf).unwrap();
    assert_eq!(
        remote.reads(),
        1,
        "block 1 was the least recently used and went"
    );
}

#[test]
fn eviction_never_drops_dirty_data() {
    let (_dir, remote, vault) = vault(limited());
    let other = pattern(21, 8 * 4096);
    remote.put("other", &other);
    vault.file_open("other", Some(other.len() as u64)).unwrap();
    vault.file_open("w", None).unwrap();
    let dirty = pattern(22, 4 * 4096);
    vault.file_write("w", 0, &dirty).unwrap();
    // Reads of other data are served but cannot push dirty blocks out.
    let mut buf = vec![0u8; 8 * 4096];
    assert_eq!(vault.file_read("other", 0, &mut buf).unwrap(), buf.len());
    assert_eq!(buf, other);
    // With every block dirty and external storage down, a write past the limit fails.
    remote.script(&[RwResult::RWRESULT_FAILURE]);
    let err = vault.file_write("w", 4 * 4096, &[1u8; 4096]).unwrap_err();
    assert_eq!(err.code(), code::ERROR_DISK_FULL);
    assert_eq!(err.errno(), libc::ENOSPC);
    let mut back = vec![0u8; 4 * 4096];
    assert_eq!(vault.file_read("w", 0, &mut back).unwrap(), back.len());
    assert_eq!(back, dirty, "dirty bytes are all still there");
    assert!(vault
        .file_get_status("w")
        .unwrap()
        .contains(FileStatus::CHANGED));
    // With storage back, the same write flushes first and then fits.
    vault.file_write("w", 4 * 4096, &[1u8; 4096]).unwrap();
    assert_eq!(remote.get("w").unwrap(), dirty);
    assert!(vault.current_size() <= 4 * 4096);
}

#[test]
fn a_vault_opens_once_at_a_time() {
    let (dir, remote, vault) = vault(options());
    let err = Vault::open(
        dir.path().join("vault.redb"),
        options(),
        Shared(remote.clone()),
    )
    .err()
    .unwrap();
    assert_eq!(err.code(), code::ERROR_SHARING_VIOLATION);
    vault.close_cache(FlushMode::Immediate).unwrap();
    assert_eq!(
        vault.file_exists("a").unwrap_err().code(),
        code::ERROR_NOT_READY
    );
    drop(vault);
    Vault::open(dir.path().join("vault.redb"), options(), Shared(remote)).unwrap();
}

#[test]
fn bad_block_sizes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for block_size in [0, 1000, 2048, 2 << 20] {
        let err = Vault::open(
            dir.path().join("v.redb"),
            VaultOptions {
                block_size,
                ..options()
            },
            Shared(Default::default()),
        )
        .err()
        .unwrap();
        assert_eq!(err.code(), code::ERROR_INVALID_PARAMETER);
        assert!(err.message().contains("block_size"), "{err}");
    }
}

#[test]
fn prefetch_fetches_a_range_in_one_request_and_reads_then_cost_none() {
    let (_dir, remote, vault) = vault(options());
    let data = pattern(9, 1 << 20);
    remote.put("f", &data);
    vault.file_open("f", Some(data.len() as u64)).unwrap();
    vault.file_prefetch("f", 0..(1 << 20)).unwrap();
    assert_eq!(remote.reads(), 1);
    let mut buf = vec![0u8; 4096];
    for at in (0..(1u64 << 20)).step_by(64 << 10) {
        assert_eq!(vault.file_read("f", at, &mut buf).unwrap(), buf.len());
        assert!(buf[..] == data[at as usize..at as usize + buf.len()]);
    }
    assert_eq!(remote.reads(), 1, "every read came from the vault");
    vault.file_close("f").unwrap();
    assert_eq!(
        vault.file_prefetch("f", 0..1).unwrap_err().code(),
        code::ERROR_INVALID_HANDLE
    );
}
