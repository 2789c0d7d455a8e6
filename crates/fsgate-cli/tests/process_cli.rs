//! `fsgate process list|watch` end to end: the real binary, the real process connector.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[path = "../../fsgate-install/tests/common/other_users.rs"]
mod other_users;

const GUID: &str = "{F5A7E0C1-2B3D-4E5F-8A9B-0C1D2E3F4A5B}";

fn fsgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fsgate"))
}

/// A product installed under a fresh directory (its `r` below), for `FSGATE_ROOT`.
fn installed() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let pkg = root.path().join("p.pkg");
    assert!(fsgate()
        .arg("package")
        .arg(&pkg)
        .status()
        .unwrap()
        .success());
    assert!(fsgate()
        .arg("install")
        .arg(&pkg)
        .args(["--product-guid", GUID, "--root"])
        .arg(root.path().join("r"))
        .status()
        .unwrap()
        .success());
    root
}

#[test]
fn list_shows_this_process_with_its_command_line() {
    let out = fsgate()
        .args(["process", "list", "--command-line", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let me = std::process::id();
    let line = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["process_id"] == me)
        .unwrap();
    assert_eq!(
        line["process_name"],
        std::env::current_exe().unwrap().to_str().unwrap()
    );
    assert!(line["command_line"]
        .as_str()
        .unwrap()
        .contains("process_cli"));
}

#[test]
fn watch_prints_creation_and_termination_as_json() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("watch_prints_creation_and_termination_as_json: skipped, needs root");
        return;
    }
    let root = installed();
    // A directory programs can run from ($TMPDIR may be mounted noexec), on a mount present
    // before the watch starts: the filter learns exec image names from those mounts.
    let programs = other_users::reachable_tempdir();
    let mut watch = fsgate()
        .args([
            "process",
            "watch",
            "--pid=-1",
            "--json",
            "--events",
            "process_creation,process_termination",
        ])
        .env("FSGATE_ROOT", root.path().join("r"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.starts_with("ready:"), "{first}");
    let marker = programs
        .path()
        .join(format!("marker-{}", std::process::id()));
    // cp writes the copy in its own process: a copy written by this multi-threaded process
    // could still be open for writing in a child forked meanwhile, and fail with ETXTBSY.
    assert!(Command::new("cp")
        .arg("/bin/true")
        .arg(&marker)
        .status()
        .unwrap()
        .success());
    let mut child = Command::new(&marker).spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let out = BufReader::new(watch.stdout.take().unwrap());
    let mut seen = Vec::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["process_id"] == pid {
            seen.push(v);
            if seen.len() == 2 {
                break;
            }
        }
    }
    // SAFETY: kill on the pid of the child we started.
    assert_eq!(unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) }, 0);
    assert!(watch.wait().unwrap().success());
    assert_eq!(seen[0]["event"], "process_creation");
    assert_eq!(seen[0]["image_file_name"], marker.to_str().unwrap());
    assert_eq!(seen[0]["parent_process_id"], std::process::id());
    assert_eq!(seen[1]["event"], "process_termination");
}

#[test]
fn watch_prints_handle_operations_from_tracepoints() {
    if !fsgate_testkit::require_root("loading BPF programs needs root") {
        return;
    }
    let root = installed();
    let mut watch = fsgate()
        .args([
            "process", "watch", "--pid=-1", "--json", "--events", "handle",
        ])
        .env("FSGATE_ROOT", root.path().join("r"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    if !first.starts_with("ready:") {
        // A kernel that refuses BPF tracepoint programs: the documented error, code 50.
        assert!(first.contains("50") && first.contains("BPF"), "{first}");
        assert!(!watch.wait().unwrap().success());
        return;
    }
    let mut child = Command::new("sh")
        .args(["-c", "kill -CONT $$"])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let out = BufReader::new(watch.stdout.take().unwrap());
    let mut seen = None;
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["originator_process_id"] == pid {
            seen = Some(v);
            break;
        }
    }
    // SAFETY: kill on the pid of the child we started.
    assert_eq!(unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) }, 0);
    assert!(watch.wait().unwrap().success());
    let v = seen.unwrap();
    assert_eq!(v["event"], "process_handle_operation");
    assert_eq!(v["process_id"], pid);
    // `PROCESS_SUSPEND_RESUME`: what SIGCONT asks for, granted.
    assert_eq!(v["original_desired_access"], 0x0800);
    assert_eq!(v["desired_access"], 0x0800);
}

/// A storm of short-lived execs with distinct arguments: `watch --json --command-line`
/// prints each creation with its exact image and command line, read by the kernel at exec
/// time, though every process has exited before its event is handled. Where the kernel
/// refuses BPF programs, names come from /proc (the documented alternative): every exec is
/// still printed.
#[test]
fn watch_names_every_exec_of_a_storm_exactly() {
    if !fsgate_testkit::require_root("the process connector and BPF programs need root") {
        return;
    }
    const EXECS: usize = 1000;
    let root = installed();
    let programs = other_users::reachable_tempdir();
    let mut watch = fsgate()
        .args([
            "process",
            "watch",
            "--pid",
            &std::process::id().to_string(),
            "--json",
            "--command-line",
            "--events",
            "process_creation",
        ])
        .env("FSGATE_ROOT", root.path().join("r"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.starts_with("ready:"), "{first}");
    let image = programs
        .path()
        .join(format!("storm-{}", std::process::id()));
    assert!(Command::new("cp")
        .arg("/bin/true")
        .arg(&image)
        .status()
        .unwrap()
        .success());
    let mut index = std::collections::HashMap::new();
    for i in 0..EXECS {
        let mut child = Command::new(&image)
            .arg(format!("arg-{i}"))
            .spawn()
            .unwrap();
        index.insert(u64::from(child.id()), i);
        assert!(child.wait().unwrap().success());
    }
    let out = BufReader::new(watch.stdout.take().unwrap());
    let mut seen = Vec::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["event"] == "process_creation"
            && v["process_id"]
                .as_u64()
                .is_some_and(|p| index.contains_key(&p))
        {
            seen.push(v);
            if seen.len() == EXECS {
                break;
            }
        }
    }
    // SAFETY: kill on the pid of the child we started.
    assert_eq!(unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) }, 0);
    assert!(watch.wait().unwrap().success());
    assert_eq!(seen.len(), EXECS);
    match fsgate_process::probe_bpf_support() {
        Ok(()) => {
            let path = image.to_str().unwrap();
            let misnamed: Vec<_> = seen
                .iter()
                .filter(|v| {
                    let i = index[&v["process_id"].as_u64().unwrap()];
                    v["image_file_name"] != path
                        || v["process_name"] != path
                        || v["command_line"] != format!("{path} arg-{i}").as_str()
                })
                .collect();
            assert!(misnamed.is_empty(), "misnamed: {misnamed:#?}");
        }
        Err(e) => {
            use fsgate_core::code;
            let codes = [code::ERROR_NOT_SUPPORTED, code::ERROR_PRIVILEGE_NOT_HELD];
            assert!(codes.contains(&e.code()), "{e}");
            eprintln!("documented alternative on this kernel (names from /proc): {e}");
        }
    }
}
