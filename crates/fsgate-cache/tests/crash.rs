//! A vault whose process is killed mid-transaction recovers on open; a flipped byte is
//! detected and reported, never served.
//!
//! The crash tests re-run this test binary as a child (`child_process` with
//! `FSGATE_CACHE_CHILD` set), which stops at a chosen point (inside a transaction, through
//! the `fault-injection` feature, or inside `on_write_data`) and prints `paused`; the
//! parent then kills it with SIGKILL by its pid and opens the vault itself.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{options, pattern, Remote, Shared};
use fsgate_cache::{
    EnumMode, Events, FileStatus, FlushMode, ReadDataParams, Vault, VaultOptions, WriteDataParams,
};
use fsgate_core::error::code;

const CHILD: &str = "FSGATE_CACHE_CHILD";

/// External storage whose writes stop the process for the parent to kill.
struct StopOnWrite;

impl Events for StopOnWrite {
    fn on_read_data(&self, p: &mut ReadDataParams<'_>) {
        p.result_code = fsgate_cache::RwResult::RWRESULT_RANGE_BEYOND_EOF;
    }

    fn on_write_data(&self, _: &mut WriteDataParams<'_>) {
        println!("paused");
        loop {
            std::thread::park();
        }
    }
}

fn child_options(journaling: bool) -> VaultOptions {
    VaultOptions {
        journaling,
        ..options()
    }
}

/// The child's part: what it does depends on the scenario in `FSGATE_CACHE_CHILD`.
#[test]
fn child_process() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (scenario, path) = spec.split_once('=').unwrap();
    let journaling = scenario.ends_with("journaled");
    let vault = Vault::open(path, child_options(journaling), StopOnWrite).unwrap();
    vault.file_open("a", None).unwrap();
    // file_write #1: committed before the kill.
    vault.file_write("a", 0, &pattern(1, 3 * 4096)).unwrap();
    if !scenario.starts_with("unsynced") {
        vault.file_flush("a", FlushMode::None).unwrap();
    }
    if scenario.starts_with("in-flush") {
        vault.file_flush("a", FlushMode::Immediate).unwrap();
    }
    if scenario.starts_with("mid-truncate") {
        // file_set_size #1: stopped inside its transaction.
        vault.file_set_size("a", 100, false).unwrap();
    }
    // file_write #2: stopped inside its transaction (FSGATE_CACHE_PAUSE_BEFORE_COMMIT).
    vault.file_write("a", 2048, &pattern(2, 4 * 4096)).unwrap();
    unreachable!("the parent kills this process before");
}

/// Runs the child until it prints `paused`, then kills it by pid with SIGKILL.
fn run_and_kill(scenario: &str, vault: &Path, pause: Option<&str>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, format!("{scenario}={}", vault.display()))
    .env_remove("FSGATE_CACHE_PAUSE_BEFORE_COMMIT")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if let Some(p) = pause {
        cmd.env("FSGATE_CACHE_PAUSE_BEFORE_COMMIT", p);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut paused = false;
    for line in BufReader::new(stdout).lines() {
        // libtest may print "test child_process ... " before it on the same line.
        if line.unwrap().trim_end().ends_with("paused") {
            paused = true;
            break;
        }
    }
    // SIGKILL to the child's pid, whether or not it paused, so no child outlives the test.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        paused,
        "the child never reached the chosen point (exit {status})"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

fn reopen(path: &Path, journaling: bool) -> (Arc<Remote>, Vault) {
    let remote = Arc::new(Remote::default());
    let vault = Vault::open(path, child_options(journaling), Shared(remote.clone())).unwrap();
    (remote, vault)
}

fn contents(vault: &Vault, id: &str) -> Vec<u8> {
    vault.file_open(id, None).unwrap();
    let mut buf = vec![0u8; vault.file_get_size(id).unwrap() as usize];
    assert_eq!(vault.file_read(id, 0, &mut buf).unwrap(), buf.len());
    vault.file_close_ex(id, FlushMode::None).unwrap();
    buf
}

/// The scenarios' first write (three blocks of `pattern(1, ..)` to "a") is whole, an orphan,
/// uncorrupted, and flushes to external storage; nothing of the second write is there.
fn assert_only_the_first_write_kept(remote: &Remote, vault: &Vault, context: &str) {
    assert_eq!(contents(vault, "a"), pattern(1, 3 * 4096), "{context}");
    assert_eq!(vault.file_get_size("a").unwrap(), 3 * 4096, "{context}");
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Orphan).unwrap(),
        vec!["a"],
        "{context}"
    );
    assert_eq!(
        vault.check_and_repair().unwrap().corrupt_blocks,
        vec![],
        "{context}"
    );
    vault.flush_cache().unwrap();
    assert_eq!(remote.get("a").unwrap(), pattern(1, 3 * 4096), "{context}");
}

#[test]
fn a_transaction_killed_before_its_commit_is_rolled_back_whole() {
    for journaling in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.redb");
        let scenario = if journaling {
            "mid-write-journaled"
        } else {
            "mid-write"
        };
        run_and_kill(scenario, &path, Some("file_write:2"));
        let (remote, vault) = reopen(&path, journaling);
        assert_only_the_first_write_kept(&remote, &vault, &format!("journaling {journaling}"));
    }
}

/// Without journaling nothing is fsynced, yet a write whose method returned survives a
/// kill: the commit is in the file (the kernel's page cache) before the method returns.
#[test]
fn a_write_committed_without_journaling_or_sync_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    run_and_kill("unsynced", &path, Some("file_write:2"));
    let (remote, vault) = reopen(&path, false);
    assert_only_the_first_write_kept(&remote, &vault, "without journaling");
}

#[test]
fn a_truncate_killed_before_its_commit_leaves_size_and_blocks_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    run_and_kill("mid-truncate-journaled", &path, Some("file_set_size:1"));
    let (_remote, vault) = reopen(&path, true);
    assert_eq!(vault.file_get_size("a").unwrap(), 3 * 4096);
    assert_eq!(contents(&vault, "a"), pattern(1, 3 * 4096));
    assert_eq!(vault.current_size(), 3 * 4096);
}

#[test]
fn a_process_killed_inside_on_write_data_leaves_the_data_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    run_and_kill("in-flush-journaled", &path, None);
    let (remote, vault) = reopen(&path, true);
    assert_eq!(
        vault.file_get_status("a").unwrap(),
        FileStatus::CHANGED | FileStatus::ORPHAN
    );
    assert_eq!(contents(&vault, "a"), pattern(1, 3 * 4096));
    vault.file_flush("a", FlushMode::Immediate).unwrap();
    assert_eq!(remote.get("a").unwrap(), pattern(1, 3 * 4096));
    assert_eq!(
        vault.enumerate_cached_files(EnumMode::Changed).unwrap(),
        Vec::<String>::new()
    );
}

/// Flips one byte in every copy of `needle` in the file (redb may keep an old copy of a
/// page until it is reused); returns how many it flipped.
fn flip_byte(path: &Path, needle: &[u8], offset: usize) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let mut hits = Vec::new();
    for i in 0..bytes.len().saturating_sub(needle.len()) {
        if &bytes[i..i + needle.len()] == needle {
            hits.push(i);
        }
    }
    for &i in &hits {
        bytes[i + offset] ^= 0x01;
    }
    std::fs::write(path, bytes).unwrap();
    hits.len()
}

/// The data file beside the vault at `path`, which holds its block bytes.
fn data_file(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".data");
    name.into()
}

#[test]
fn a_flipped_byte_in_dirty_data_is_reported_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let data = pattern(30, 4096);
    {
        let (_remote, vault) = reopen(&path, false);
        vault.file_open("a", None).unwrap();
        vault.file_write("a", 0, &data).unwrap();
        vault.file_write("a", 4096, &pattern(31, 4096)).unwrap();
    }
    assert_eq!(
        flip_byte(&path, &data[..64], 1000),
        0,
        "block data is not in the index"
    );
    assert_eq!(flip_byte(&data_file(&path), &data[..64], 1000), 1);
    let (remote, vault) = reopen(&path, false);
    vault.file_open("a", None).unwrap();
    let mut buf = vec![0u8; 4096];
    let err = vault.file_read("a", 0, &mut buf).unwrap_err();
    assert_eq!(err.code(), code::ERROR_INVALID_DATA);
    assert_eq!(err.errno(), libc::EBADMSG);
    assert!(err.message().contains("block 0"), "{err}");
    let err = vault.file_flush("a", FlushMode::Immediate).unwrap_err();
    assert_eq!(
        err.code(),
        code::ERROR_INVALID_DATA,
        "corrupt bytes are not flushed either"
    );
    assert_eq!(remote.writes(), 0);
    let mut good = vec![0u8; 4096];
    vault.file_read("a", 4096, &mut good).unwrap();
    assert_eq!(good, pattern(31, 4096), "other blocks are still served");

    let report = vault.check_and_repair().unwrap();
    assert_eq!(report.blocks_checked, 2);
    assert_eq!(report.corrupt_blocks.len(), 1);
    assert_eq!(report.corrupt_blocks[0].file_id, "a");
    assert_eq!(report.corrupt_blocks[0].position, 0);
    assert_eq!(report.corrupt_blocks[0].bytes_lost, 4096);
    assert_eq!(vault.check_and_repair().unwrap().corrupt_blocks, vec![]);
}

#[test]
fn a_flipped_byte_in_clean_data_is_dropped_and_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let data = pattern(40, 4096);
    {
        let (remote, vault) = reopen(&path, false);
        remote.put("a", &data);
        vault.file_open("a", Some(4096)).unwrap();
        let mut buf = vec![0u8; 4096];
        vault.file_read("a", 0, &mut buf).unwrap();
    }
    assert_eq!(flip_byte(&data_file(&path), &data[..64], 7), 1);
    let (remote, vault) = reopen(&path, false);
    remote.put("a", &data);
    vault.file_open("a", None).unwrap();
    let mut buf = vec![0u8; 4096];
    assert_eq!(
        vault.file_read("a", 0, &mut buf).unwrap_err().code(),
        code::ERROR_INVALID_DATA
    );
    let report = vault.check_and_repair().unwrap();
    assert_eq!(report.corrupt_blocks.len(), 1);
    assert_eq!(report.corrupt_blocks[0].bytes_lost, 0);
    vault.file_read("a", 0, &mut buf).unwrap();
    assert_eq!(buf, data);
    assert_eq!(remote.reads(), 1);
}

#[test]
fn a_flipped_byte_in_the_index_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let id = "a-file-id-long-enough-to-find-in-the-vault";
    {
        let (_remote, vault) = reopen(&path, false);
        vault.file_open(id, Some(5)).unwrap();
        vault.file_tag_set(id, 1, b"tag").unwrap();
    }
    assert!(flip_byte(&path, id.as_bytes(), 20) >= 1);
    let err = Vault::open(
        &path,
        child_options(false),
        Shared(Arc::new(Remote::default())),
    )
    .err()
    .unwrap();
    assert_eq!(err.code(), code::ERROR_INVALID_DATA);
    assert!(err.message().contains("file key"), "{err}");
}
