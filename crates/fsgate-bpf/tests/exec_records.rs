//! Exec records read in the kernel at exec time: every exec of a storm of short-lived
//! processes is reported once, with its exact image path and arguments. Needs root.

mod common;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{start, stop_and_collect};
use fsgate_bpf::{Event, EventKinds, ExecSyscall, TracerBuilder};

/// The program the storm runs, by a name that goes through a symbolic link on merged-/usr
/// systems (`/bin` → `/usr/bin`): the record must name the file the kernel opened.
const PROGRAM: &str = "/bin/true";

#[test]
fn exec_storm_reports_every_exec_with_its_path_and_arguments() {
    const EXECS: usize = 2_000;
    let Some((tracer, events)) = start(TracerBuilder::new().events(EventKinds::EXEC)) else {
        return;
    };
    let token = format!("fsgate-storm-{}", std::process::id());
    let mut pids = HashMap::new();
    for i in 0..EXECS {
        let mut child = Command::new(PROGRAM)
            .arg(format!("{token}-{i}"))
            .arg("second argument")
            .arg("")
            .spawn()
            .expect("spawning the storm program");
        pids.insert(child.id(), i);
        assert!(child.wait().expect("waiting").success());
    }
    let lost = tracer.lost_records();
    let events = stop_and_collect(tracer, events);
    assert_eq!(lost, 0, "records lost");

    let image = std::fs::canonicalize(PROGRAM).expect("canonicalize");
    let mut seen = vec![0usize; EXECS];
    for event in &events {
        let Event::Exec(exec) = event else {
            panic!("only exec records were asked for: {event:?}");
        };
        let Some(first) = exec.arguments.get(1).and_then(|a| a.to_str()) else {
            continue;
        };
        let Some(index) = first
            .strip_prefix(&format!("{token}-"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        seen[index] += 1;
        assert_eq!(pids.get(&exec.process_id), Some(&index), "{exec:?}");
        assert_eq!(exec.image_path, image);
        assert_eq!(exec.file_name, OsString::from(PROGRAM));
        assert_eq!(exec.syscall, Some(ExecSyscall::Execve));
        assert_eq!(
            exec.arguments,
            [PROGRAM, first, "second argument", ""].map(OsString::from)
        );
        assert_eq!(exec.parent_process_id, std::process::id());
        assert!(!exec.arguments_truncated && !exec.path_truncated);
    }
    let missing: Vec<_> = (0..EXECS).filter(|i| seen[*i] != 1).collect();
    assert!(
        missing.is_empty(),
        "execs not reported exactly once: {missing:?}"
    );
}

#[test]
fn relative_and_long_commands_are_named_exactly() {
    let Some((tracer, events)) = start(TracerBuilder::new().events(EventKinds::EXEC)) else {
        return;
    };
    // A relative name, resolved against the working directory by the kernel.
    let long_argument = "x".repeat(10_000);
    let status = Command::new("./true")
        .current_dir("/usr/bin")
        .arg(&long_argument)
        .status()
        .expect("running ./true");
    assert!(status.success());
    let events = stop_and_collect(tracer, events);
    let exec = events
        .iter()
        .find_map(|e| match e {
            Event::Exec(x) if x.arguments.get(1).map(|a| a.len()) == Some(10_000) => Some(x),
            _ => None,
        })
        .expect("the exec of ./true was reported");
    assert_eq!(exec.file_name, OsString::from("./true"));
    assert_eq!(exec.image_path, PathBuf::from("/usr/bin/true"));
    assert_eq!(exec.arguments[1], OsString::from(long_argument));
    assert!(Path::new(&exec.image_path).is_absolute());
}

#[test]
fn arguments_beyond_a_record_are_cut_and_flagged() {
    let Some((tracer, events)) = start(TracerBuilder::new().events(EventKinds::EXEC)) else {
        return;
    };
    let marker = format!("fsgate-truncation-{}", std::process::id());
    let huge = "y".repeat(40_000);
    let status = Command::new("/usr/bin/true")
        .arg(&marker)
        .arg(&huge)
        .status()
        .expect("running true");
    assert!(status.success());
    let events = stop_and_collect(tracer, events);
    let exec = events
        .iter()
        .find_map(|e| match e {
            Event::Exec(x) if x.arguments.get(1) == Some(&OsString::from(&marker)) => Some(x),
            _ => None,
        })
        .expect("the exec was reported");
    assert!(exec.arguments_truncated);
    assert_eq!(exec.arguments.len(), 3);
    let cut = exec.arguments[2].to_str().expect("utf-8");
    assert!(cut.len() < huge.len() && huge.starts_with(cut));
}
