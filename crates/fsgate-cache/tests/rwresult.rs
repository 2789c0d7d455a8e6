//! The result codes of `on_read_data` / `on_write_data` and the error states they set, as
//! the reference's "Reporting Transfer Errors" and result-code table describe them.

mod common;

use common::{options, pattern, vault, Call};
use fsgate_cache::{FileStatus, FlushMode, RwResult, ERROR_FILE_INVALID, ERROR_RETRY};
use fsgate_core::error::code;

#[test]
fn read_fetches_each_missing_block_once() {
    let (_dir, remote, vault) = vault(options());
    let data = pattern(1, 10_000);
    remote.put("a", &data);
    vault.file_open("a", Some(10_000)).unwrap();
    let mut buf = vec![0u8; 100];
    assert_eq!(vault.file_read("a", 10, &mut buf).unwrap(), 100);
    assert_eq!(buf, data[10..110]);
    assert_eq!(
        remote.calls(),
        vec![Call::Read {
            file_id: "a".into(),
            position: 0,
            len: 4096
        }]
    );
    assert_eq!(vault.file_read("a", 0, &mut buf).unwrap(), 100);
    assert_eq!(
        remote.reads(),
        1,
        "a cached block is served without a request"
    );
    let mut tail = vec![0u8; 4000];
    assert_eq!(
        vault.file_read("a", 9000, &mut tail).unwrap(),
        1000,
        "reads stop at the size"
    );
    assert_eq!(tail[..1000], data[9000..]);
    assert_eq!(
        remote.calls()[1],
        Call::Read {
            file_id: "a".into(),
            position: 8192,
            len: 10_000 - 8192
        }
    );
}

#[test]
fn partial_reads_keep_what_came_and_ask_for_the_rest() {
    let (_dir, remote, vault) = vault(options());
    let data = pattern(2, 4096);
    remote.put("a", &data);
    vault.file_open("a", Some(4096)).unwrap();
    remote.script(&[RwResult::RWRESULT_PARTIAL]);
    let mut buf = vec![0u8; 4096];
    assert_eq!(vault.file_read("a", 0, &mut buf).unwrap(), 4096);
    assert_eq!(buf, data);
    assert_eq!(remote.reads(), 2);
}

#[test]
fn range_beyond_eof_zeroes_the_tail_and_stops_requests_past_it() {
    let (_dir, remote, vault) = vault(options());
    let data = pattern(3, 5000);
    remote.put("a", &data);
    vault.file_open("a", Some(20_000)).unwrap();
    let mut buf = vec![0xAAu8; 8192];
    assert_eq!(vault.file_read("a", 0, &mut buf).unwrap(), 8192);
    assert_eq!(buf[..5000], data[..]);
    assert!(buf[5000..].iter().all(|b| *b == 0));
    let reads = remote.reads();
    let mut far = vec![0xAAu8; 4000];
    assert_eq!(vault.file_read("a", 15_000, &mut far).unwrap(), 4000);
    assert!(far.iter().all(|b| *b == 0));
    assert_eq!(
        remote.reads(),
        reads,
        "nothing is asked for past the external end"
    );
}

#[test]
fn modified_externally_drops_clean_data_keeps_dirty_data_and_fails() {
    let (_dir, remote, vault) = vault(options());
    let data = pattern(4, 12_288);
    remote.put("a", &data);
    vault.file_open("a", Some(12_288)).unwrap();
    let mut buf = vec![0u8; 10];
    vault.file_read("a", 0, &mut buf).unwrap();
    vault.file_write("a", 4096, b"local").unwrap();
    remote.script(&[RwResult::RWRESULT_FILE_MODIFIED_EXTERNALLY]);
    let err = vault.file_read("a", 8192, &mut buf).unwrap_err();
    assert_eq!(err.code(), ERROR_FILE_INVALID);
    assert_eq!(err.errno(), libc::ESTALE);
    remote.put("a", &pattern(5, 12_288));
    remote.clear_calls();
    vault.file_read("a", 0, &mut buf).unwrap();
    assert_eq!(
        buf,
        pattern(5, 12_288)[..10],
        "block 0 was dropped and fetched again"
    );
    assert_eq!(remote.reads(), 1);
    let mut five = [0u8; 5];
    vault.file_read("a", 4096, &mut five).unwrap();
    assert_eq!(&five, b"local", "dirty bytes survive");
}

#[test]
fn modified_locally_fails_and_drops_nothing() {
    let (_dir, remote, vault) = vault(options());
    remote.put("a", &pattern(6, 8192));
    vault.file_open("a", Some(8192)).unwrap();
    let mut buf = vec![0u8; 10];
    vault.file_read("a", 0, &mut buf).unwrap();
    remote.script(&[RwResult::RWRESULT_FILE_MODIFIED_LOCALLY]);
    let err = vault.file_read("a", 4096, &mut buf).unwrap_err();
    assert_eq!(err.code(), ERROR_FILE_INVALID);
    remote.clear_calls();
    vault.file_read("a", 0, &mut buf).unwrap();
    assert_eq!(remote.reads(), 0, "block 0 stayed cached");
}

#[test]
fn transient_failure_fails_the_call_and_the_next_one_is_sent() {
    let (_dir, remote, vault) = vault(options());
    remote.put("a", &pattern(7, 4096));
    vault.file_open("a", Some(4096)).unwrap();
    remote.script(&[RwResult::RWRESULT_FAILURE]);
    let mut buf = vec![0u8; 10];
    let err = vault.file_read("a", 0, &mut buf).unwrap_err();
    assert_eq!(err.code(), ERROR_RETRY);
    assert_eq!(err.errno(), libc::EAGAIN);
    vault.file_read("a", 0, &mut buf).unwrap();
    assert_eq!(buf, pattern(7, 4096)[..10]);

    vault.file_write("a", 0, b"new").unwrap();
    remote.script(&[RwResult::RWRESULT_FAILURE]);
    let err = vault.file_flush("a", FlushMode::Immediate).unwrap_err();
    assert_eq!(err.code(), ERROR_RETRY);
    assert!(vault
        .file_get_status("a")
        .unwrap()
        .contains(FileStatus::CHANGED));
    vault.file_flush("a", FlushMode::Immediate).unwrap();
    assert!(!vault
        .file_get_status("a")
        .unwrap()
        .contains(FileStatus::CHANGED));
    assert_eq!(remote.get("a").unwrap()[..3], *b"new");
}

#[test]
fn partial_writes_are_continued_until_all_bytes_are_taken() {
    let (_dir, remote, vault) = vault(options());
    vault.file_open("a", None).unwrap();
    let data = pattern(8, 10_000);
    vault.file_write("a", 0, &data).unwrap();
    remote.script(&[RwResult::RWRESULT_PARTIAL, RwResult::RWRESULT_PARTIAL]);
    vault.file_flush("a", FlushMode::Immediate).unwrap();
    assert_eq!(remote.get("a").unwrap(), data);
    assert_eq!(remote.writes(), 3);
}

#[test]
fn file_failure_stops_requests_for_that_file_until_its_reset() {
    let (_dir, remote, vault) = vault(options());
    remote.put("a", &pattern(9, 4096));
    remote.put("b", &pattern(10, 4096));
    vault.file_open("a", Some(4096)).unwrap();
    vault.file_open("b", Some(4096)).unwrap();
    remote.script(&[RwResult::RWRESULT_FILE_FAILURE]);
    let mut buf = vec![0u8; 10];
    let err = vault.file_read("a", 0, &mut buf).unwrap_err();
    assert_eq!(err.code(), code::ERROR_GEN_FAILURE);
    assert!(vault
        .file_get_status("a")
        .unwrap()
        .contains(FileStatus::ERROR));
    remote.clear_calls();
    assert_eq!(
        vault.file_read("a", 0, &mut buf).unwrap_err().code(),
        code::ERROR_GEN_FAILURE
    );
    vault.file_write("a", 0, b"x").unwrap();
    assert_eq!(
        vault
            .file_flush("a", FlushMode::Immediate)
            .unwrap_err()
            .code(),
        code::ERROR_GEN_FAILURE
    );
    assert_eq!(
        remote.calls(),
        vec![],
        "no request for a file in the error state"
    );
    vault.file_read("b", 0, &mut buf).unwrap();
    assert_eq!(buf, pattern(10, 4096)[..10], "other files are served");
    vault.reset_error_state(Some("a")).unwrap();
    assert!(!vault
        .file_get_status("a")
        .unwrap()
        .contains(FileStatus::ERROR));
    vault.file_read("a", 0, &mut buf).unwrap();
    assert_eq!(buf[0], b'x');
    assert_eq!(buf[1..], pattern(9, 4096)[1..10]);
}

#[test]
fn permanent_failure_stops_requests_for_every_file_until_the_global_reset() {
    let (_dir, remote, vault) = vault(options());
    remote.put("a", &pattern(11, 4096));
    remote.put("b", &pattern(12, 4096));
    vault.file_open("a", Some(4096)).unwrap();
    vault.file_open("b", Some(4096)).unwrap();
    let mut buf = vec![0u8; 10];
    vault.file_read("a", 0, &mut buf).unwrap();
    vault.file_write("a", 100, b"dirty").unwrap();
    remote.script(&[RwResult::RWRESULT_PERMANENT_FAILURE]);
    let err = vault.file_flush("a", FlushMode::Immediate).unwrap_err();
    assert_eq!(err.code(), code::ERROR_NOT_READY);
    remote.clear_calls();
    assert_eq!(
        vault.file_read("b", 0, &mut buf).unwrap_err().code(),
        code::ERROR_NOT_READY
    );
    assert_eq!(
        vault.flush_cache().unwrap_err().code(),
        code::ERROR_NOT_READY
    );
    assert_eq!(remote.calls(), vec![]);
    vault.file_read("a", 0, &mut buf).unwrap();
    assert_eq!(buf, pattern(11, 4096)[..10], "held data is still served");
    vault.reset_error_state(Some("b")).unwrap();
    assert_eq!(
        vault.file_read("b", 0, &mut buf).unwrap_err().code(),
        code::ERROR_NOT_READY
    );
    vault.reset_error_state(None).unwrap();
    vault.file_read("b", 0, &mut buf).unwrap();
    assert_eq!(buf, pattern(12, 4096)[..10]);
    vault.flush_cache().unwrap();
    assert_eq!(remote.get("a").unwrap()[100..105], *b"dirty");
}

#[test]
fn set_size_with_fetch_missing_data_fetches_the_new_range() {
    let (_dir, remote, vault) = vault(options());
    let data = pattern(13, 9000);
    remote.put("a", &data);
    vault.file_open("a", Some(4000)).unwrap();
    vault.file_set_size("a", 9000, true).unwrap();
    assert_eq!(
        remote.calls(),
        vec![Call::Read {
            file_id: "a".into(),
            position: 0,
            len: 9000
        }]
    );
    let mut buf = vec![0u8; 9000];
    assert_eq!(vault.file_read("a", 0, &mut buf).unwrap(), 9000);
    assert_eq!(buf, data);
    assert_eq!(remote.reads(), 1);
    assert!(!vault
        .file_get_status("a")
        .unwrap()
        .contains(FileStatus::CHANGED));
}

#[test]
fn shrink_then_grow_reads_zeros_and_flushes_the_size() {
    let (_dir, remote, vault) = vault(options());
    let data = pattern(14, 10_000);
    remote.put("a", &data);
    vault.file_open("a", Some(10_000)).unwrap();
    vault.file_set_size("a", 3000, false).unwrap();
    vault.file_set_size("a", 6000, false).unwrap();
    let mut buf = vec![0xAAu8; 6000];
    assert_eq!(vault.file_read("a", 0, &mut buf).unwrap(), 6000);
    assert_eq!(buf[..3000], data[..3000]);
    assert!(
        buf[3000..].iter().all(|b| *b == 0),
        "bytes cut off do not come back"
    );
    assert!(vault
        .file_get_status("a")
        .unwrap()
        .contains(FileStatus::CHANGED));
    remote.clear_calls();
    vault.file_close_ex("a", FlushMode::Immediate).unwrap();
    assert_eq!(
        remote.calls(),
        vec![
            Call::Write {
                file_id: "a".into(),
                position: 3000,
                len: 0,
                size: 3000
            },
            Call::Write {
                file_id: "a".into(),
                position: 6000,
                len: 0,
                size: 6000
            },
        ],
        "the external file is cut where the vault's was, then grown"
    );
    let stored = remote.get("a").unwrap();
    assert_eq!(stored[..3000], data[..3000]);
    assert_eq!(stored[3000..], [0u8; 3000]);
}

#[test]
fn a_file_written_from_scratch_is_flushed_without_a_cut() {
    let (_dir, remote, vault) = vault(options());
    vault.file_open("new", None).unwrap();
    vault.file_write("new", 0, &pattern(15, 6000)).unwrap();
    vault.file_close_ex("new", FlushMode::Immediate).unwrap();
    assert_eq!(
        remote.calls(),
        vec![Call::Write {
            file_id: "new".into(),
            position: 0,
            len: 6000,
            size: 6000
        }]
    );
    assert_eq!(remote.get("new").unwrap(), pattern(15, 6000));
}

#[test]
fn purge_drops_clean_bytes_and_keeps_dirty_ones() {
    let (_dir, remote, vault) = vault(options());
    remote.put("a", &pattern(16, 8192));
    vault.file_open("a", Some(8192)).unwrap();
    let mut buf = vec![0u8; 8192];
    vault.file_read("a", 0, &mut buf).unwrap();
    vault.file_write("a", 4096, b"mine").unwrap();
    remote.put("a", &pattern(17, 8192));
    vault.file_purge("a").unwrap();
    remote.clear_calls();
    vault.file_read("a", 0, &mut buf).unwrap();
    assert!(
        buf[..4096] == pattern(17, 8192)[..4096],
        "block 0 comes from the new version"
    );
    assert_eq!(buf[4096..4100], *b"mine", "dirty bytes stay");
    assert!(
        buf[4100..] == pattern(17, 8192)[4100..],
        "and only they: the clean rest of their block is fetched again"
    );
    assert_eq!(remote.reads(), 1);
}
