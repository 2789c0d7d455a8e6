//! Nothing stays loaded: the programs go when the tracer is dropped, and when the process
//! that loaded them is killed with SIGKILL. Needs root and bpftool.

mod common;

use common::{listed_program_ids, start, Helper};
use fsgate_bpf::TracerBuilder;

/// When this binary runs itself as a helper child, this is the test that plays the role.
#[test]
fn role_helper() {
    common::play_role();
}

/// The programs among `ids` that `bpftool prog list` still shows. Releasing a program after
/// its last link and descriptor closed may finish on a kernel worker a moment later, so the
/// list is read again (a bounded number of times) until they are gone.
fn still_listed(ids: &[u32]) -> Vec<u32> {
    let mut left = Vec::new();
    for _ in 0..100 {
        let listed = listed_program_ids();
        left = ids
            .iter()
            .copied()
            .filter(|id| listed.contains(id))
            .collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    left
}

#[test]
fn dropping_the_tracer_unloads_every_program() {
    let Some((tracer, _events)) = start(TracerBuilder::new()) else {
        return;
    };
    let ids = tracer.program_ids();
    assert!(!ids.is_empty());
    let listed = listed_program_ids();
    assert!(
        ids.iter().all(|id| listed.contains(id)),
        "{ids:?} not in {listed:?}"
    );
    drop(tracer);
    assert_eq!(still_listed(&ids), Vec::<u32>::new());
}

#[test]
fn killing_the_loading_process_unloads_every_program() {
    // Whether this kernel loads the programs at all (else the documented error is asserted).
    let Some((probe, _events)) = start(TracerBuilder::new()) else {
        return;
    };
    drop(probe);
    let mut loader = Helper::spawn("loader", 0);
    let ids: Vec<u32> = loader
        .line("IDS")
        .split_whitespace()
        .map(|id| id.parse().expect("program id"))
        .collect();
    assert!(!ids.is_empty());
    let listed = listed_program_ids();
    assert!(
        ids.iter().all(|id| listed.contains(id)),
        "{ids:?} not in {listed:?}"
    );
    // SIGKILL by the pid we started; the tracer's Drop never runs.
    loader.child.0.kill().expect("SIGKILL the loader");
    let status = loader.child.0.wait().expect("reaping the loader");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert_eq!(still_listed(&ids), Vec::<u32>::new());
}
