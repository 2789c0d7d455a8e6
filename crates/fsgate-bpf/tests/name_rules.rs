//! Rules by plain image name, matched in the kernel at exec: with a filter by name, what an
//! unrelated process does never reaches user space; with an ignore rule by name, what the
//! matching process does never does. Needs root.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{operations_by, start, stop_and_collect};
use fsgate_bpf::{Event, EventKinds, NameRule, Operation, Signal, TracerBuilder};

/// A copy of the shell under a name no other program has, in a directory programs can run
/// from (the target directory's).
fn shell_copy(tag: &str) -> (PathBuf, String) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let name = format!("fsgate-{tag}-{}", std::process::id());
    let path = dir.join(&name);
    // cp writes the copy in its own process: a copy written by this multi-threaded process
    // could still be open for writing in a child forked meanwhile (ETXTBSY).
    assert!(Command::new("cp")
        .arg("/bin/sh")
        .arg(&path)
        .status()
        .expect("cp")
        .success());
    (path, name)
}

/// Runs `shell -c 'kill -URG $$'` (SIGURG's default action is to ignore it) and returns its
/// pid.
fn signal_itself(shell: &std::path::Path) -> u32 {
    let mut child = Command::new(shell)
        .args(["-c", "kill -URG $$"])
        .spawn()
        .expect("spawn shell");
    let pid = child.id();
    assert!(child.wait().expect("wait").success());
    pid
}

fn urgent_signals_by(events: &[Event], pid: u32) -> usize {
    operations_by(events, pid)
        .iter()
        .filter(|o| o.operation == Operation::Kill(Signal(libc::SIGURG)))
        .count()
}

#[test]
fn a_filter_by_name_keeps_unrelated_operations_in_the_kernel() {
    // The filter is active from the start: events of processes other tests of this binary
    // run meanwhile must not slip through before it is.
    let (shell, name) = shell_copy("filtered");
    let Some((tracer, events)) = start(
        TracerBuilder::new()
            .events(EventKinds::HANDLE_OPERATIONS)
            .filter_name(NameRule {
                name,
                include_children: false,
            }),
    ) else {
        return;
    };
    let unrelated: Vec<u32> = (0..20).map(|_| signal_itself("/bin/sh".as_ref())).collect();
    let matched = signal_itself(&shell);
    // Every record the kernel sent reaches the handler: the events are all of them.
    let events = stop_and_collect(tracer, events);
    assert_eq!(
        events.len(),
        1,
        "records that reached user space: {events:#?}"
    );
    let _ = std::fs::remove_file(&shell);
    assert_eq!(urgent_signals_by(&events, matched), 1);
    // Every record that reached user space involves the matched process: the unrelated
    // shells' signals (and every other process's on this machine) stayed in the kernel.
    let strays: Vec<_> = events
        .iter()
        .filter(|e| match e {
            Event::HandleOperation(o) => {
                o.originator_process_id != matched && o.process_id != matched
            }
            Event::Exec(_) => true,
        })
        .collect();
    assert!(
        strays.is_empty(),
        "delivered for other processes: {strays:#?}"
    );
    assert!(unrelated
        .iter()
        .all(|&p| urgent_signals_by(&events, p) == 0));
}

#[test]
fn an_ignore_rule_by_name_keeps_the_matching_process_in_the_kernel() {
    let Some((tracer, events)) = start(TracerBuilder::new().events(EventKinds::HANDLE_OPERATIONS))
    else {
        return;
    };
    let (shell, name) = shell_copy("ignored");
    tracer
        .set_name_rules(
            &[NameRule {
                name,
                include_children: false,
            }],
            &[],
        )
        .expect("set_name_rules");
    let ignored = signal_itself(&shell);
    let control = signal_itself("/bin/sh".as_ref());
    let events = stop_and_collect(tracer, events);
    let _ = std::fs::remove_file(&shell);
    assert_eq!(urgent_signals_by(&events, ignored), 0);
    assert_eq!(urgent_signals_by(&events, control), 1);
}

#[test]
fn names_the_kernel_cannot_match_are_refused_with_the_reason() {
    let Some((tracer, _events)) = start(TracerBuilder::new().events(EventKinds::HANDLE_OPERATIONS))
    else {
        return;
    };
    let wild = NameRule {
        name: "ss*".into(),
        include_children: false,
    };
    let e = tracer
        .set_name_rules(&[], &[wild])
        .expect_err("a wildcard is matched in user space");
    assert_eq!(e.code(), fsgate_core::code::ERROR_INVALID_PARAMETER);
    assert!(e.message().contains("plain image name"), "{e}");
}
