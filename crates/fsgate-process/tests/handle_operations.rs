//! The process filter's handle operation events, from kernel tracepoints: signals between
//! real processes, with the reference's access bits and the call's result.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use fsgate_core::code;
use fsgate_process::ProcessFilter;
use fsgate_testkit::require_root;

/// `PROCESS_SUSPEND_RESUME`: what `SIGCONT` asks for.
const SUSPEND_RESUME: u32 = 0x0800;
/// `EventsToFire`: both handle operation events.
const HANDLE_OPERATIONS: &str = "EventsToFire=36";

/// Starts `f`, or, on a kernel that refuses BPF tracepoint programs, checks that
/// `start_filter` says so with `ERROR_NOT_SUPPORTED` (50) and names BPF, and returns false. A
/// kernel that loads them (probed apart) must start the filter.
fn started(f: &ProcessFilter) -> bool {
    let supported = fsgate_bpf::probe_kernel();
    match f.start_filter(0) {
        Ok(()) => true,
        Err(e) => {
            assert!(
                supported.is_err(),
                "the kernel loads BPF programs, yet: {e}"
            );
            assert_eq!(e.code(), code::ERROR_NOT_SUPPORTED, "unexpected error: {e}");
            assert!(
                e.message().contains("BPF") || e.message().contains("tracefs"),
                "the error does not name its reason: {e}"
            );
            eprintln!("documented alternative on this kernel: {e}");
            false
        }
    }
}

#[test]
fn signals_by_a_filtered_process_fire_process_handle_operations_with_their_result() {
    require_root!("loading BPF programs and the process connector need root");
    let product = Product::install();
    let rec = Recorder::new();
    let f = ProcessFilter::new(rec.clone());
    f.initialize_with(product.installer(), GUID).unwrap();
    f.config(HANDLE_OPERATIONS).unwrap();
    if !started(&f) {
        return;
    }
    let mut target = Command::new("sleep").arg("60").spawn().unwrap();
    let target_pid = target.id();
    // A pid no process has: the kernel's limit is at most 4,194,304.
    let missing = 4_194_305;
    let script =
        format!("read go; kill -CONT {target_pid}; kill -CONT {missing} 2>/dev/null; true");
    let mut signaler = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let signaler_pid = signaler.id();
    let mut bystander = Command::new("sh")
        .args(["-c", &format!("read go; kill -CONT {target_pid}")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let bystander_pid = bystander.id();
    f.add_filtered_process_by_id(i64::from(signaler_pid), false)
        .unwrap();
    for child in [&mut signaler, &mut bystander] {
        writeln!(child.stdin.take().unwrap(), "go").unwrap();
        assert!(child.wait().unwrap().success());
    }
    let by_signaler = rec.wait_for(
        1,
        |s| matches!(s, Seen::Handle(h, false) if h.originator_process_id == signaler_pid),
    );
    assert_eq!(by_signaler.len(), 1, "{:?}", rec.snapshot());
    let Seen::Handle(sent, _) = &by_signaler[0] else {
        unreachable!()
    };
    assert_eq!(sent.process_id, target_pid);
    assert_eq!(sent.originator_thread_id, signaler_pid);
    assert!(!sent.duplication);
    assert_eq!(sent.original_desired_access, SUSPEND_RESUME);
    assert_eq!(
        sent.desired_access, SUSPEND_RESUME,
        "the signal was delivered"
    );
    // A signal the kernel refused (ESRCH) generates nothing: signals are seen where the
    // kernel generates them, so it is not reported (failed ptrace, memory and descriptor
    // calls are, with nothing granted: fsgate-bpf's tests).
    let refused = rec.settled(|s| matches!(s, Seen::Handle(h, _) if h.process_id == missing));
    assert!(refused.is_empty(), "a refused signal: {refused:?}");
    let unfiltered = rec
        .settled(|s| matches!(s, Seen::Handle(h, _) if h.originator_process_id == bystander_pid));
    assert!(unfiltered.is_empty(), "not filtered: {unfiltered:?}");
    let own = rec.settled(
        |s| matches!(s, Seen::Handle(h, _) if h.originator_process_id == std::process::id()),
    );
    target.kill().unwrap();
    target.wait().unwrap();
    assert!(own.is_empty(), "this process's own requests: {own:?}");
    f.stop_filter().unwrap();
}

#[test]
fn handle_operations_asked_for_after_the_start_load_the_programs_then() {
    require_root!("loading BPF programs and the process connector need root");
    let product = Product::install();
    let rec = Recorder::new();
    let f = ProcessFilter::new(rec.clone());
    f.initialize_with(product.installer(), GUID).unwrap();
    f.config("EventsToFire=1").unwrap();
    f.start_filter(0).unwrap();
    let supported = fsgate_bpf::probe_kernel();
    match f.config(HANDLE_OPERATIONS) {
        Ok(v) => assert_eq!(v, "36"),
        Err(e) => {
            assert!(
                supported.is_err(),
                "the kernel loads BPF programs, yet: {e}"
            );
            assert_eq!(e.code(), code::ERROR_NOT_SUPPORTED, "unexpected error: {e}");
            eprintln!("documented alternative on this kernel: {e}");
            return;
        }
    }
    let mut signaler = Command::new("sh")
        .args(["-c", "read go; kill -CONT $$"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = signaler.id();
    f.add_filtered_process_by_id(i64::from(pid), false).unwrap();
    writeln!(signaler.stdin.take().unwrap(), "go").unwrap();
    assert!(signaler.wait().unwrap().success());
    let seen = rec.wait_for(1, |s| {
        matches!(s, Seen::Handle(h, false) if h.originator_process_id == pid && h.process_id == pid)
    });
    assert_eq!(seen.len(), 1, "kill -CONT of itself: {seen:?}");
    f.stop_filter().unwrap();
}

/// A filter by plain image name is evaluated in the kernel: the signals of an unrelated
/// shell never reach user space (the count of records the kernel delivered shows it), the
/// matching shell's do, and fire the event.
#[test]
fn a_filter_by_name_keeps_an_unrelated_processs_operations_in_the_kernel() {
    require_root!("loading BPF programs and the process connector need root");
    let product = Product::install();
    let fs = Tmpfs::mount();
    let name = unique("named-sh");
    let shell = fs.copy("/bin/sh", &name);
    let rec = Recorder::new();
    let f = ProcessFilter::new(rec.clone());
    f.initialize_with(product.installer(), GUID).unwrap();
    f.config(HANDLE_OPERATIONS).unwrap();
    if !started(&f) {
        return;
    }
    f.add_filtered_process_by_name(&name, false).unwrap();
    // Records the kernel sent before the rule (the filter reports everything until it has
    // one) may still be on their way: count from when they stopped coming.
    let mut before = f.handle_records_delivered();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = f.handle_records_delivered();
        if now == before {
            break;
        }
        before = now;
    }
    let unrelated = Command::new("sh")
        .args([
            "-c",
            "i=0; while [ $i -lt 200 ]; do kill -URG $$; i=$((i+1)); done",
        ])
        .status()
        .unwrap();
    assert!(unrelated.success());
    let mut matched = Command::new(&shell)
        .args(["-c", "kill -URG $$"])
        .spawn()
        .unwrap();
    let matched_pid = matched.id();
    assert!(matched.wait().unwrap().success());
    let seen = rec.wait_for(
        1,
        |s| matches!(s, Seen::Handle(h, false) if h.originator_process_id == matched_pid),
    );
    assert_eq!(seen.len(), 1, "{:?}", rec.snapshot());
    let delivered = f.handle_records_delivered() - before;
    f.stop_filter().unwrap();
    // The matching shell's one signal; the unrelated shell's 200 stayed in the kernel.
    assert_eq!(delivered, 1, "records that reached user space");
}

/// `TraceHandleSyscalls=False` (Linux extension) loads no system call tracepoint: signals
/// are still reported; the setting is fixed while active.
#[test]
fn signals_only_without_syscall_tracepoints() {
    require_root!("loading BPF programs and the process connector need root");
    let product = Product::install();
    let rec = Recorder::new();
    let f = ProcessFilter::new(rec.clone());
    f.initialize_with(product.installer(), GUID).unwrap();
    f.config(HANDLE_OPERATIONS).unwrap();
    assert_eq!(f.config("TraceHandleSyscalls").unwrap(), "True");
    assert_eq!(f.config("TraceHandleSyscalls=False").unwrap(), "False");
    if !started(&f) {
        return;
    }
    assert_eq!(
        f.config("TraceHandleSyscalls=True").unwrap_err().code(),
        code::ERROR_CONNECTION_ACTIVE
    );
    let mut signaler = Command::new("sh")
        .args(["-c", "read go; kill -CONT $$"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = signaler.id();
    f.add_filtered_process_by_id(i64::from(pid), false).unwrap();
    writeln!(signaler.stdin.take().unwrap(), "go").unwrap();
    assert!(signaler.wait().unwrap().success());
    let seen = rec.wait_for(1, |s| {
        matches!(s, Seen::Handle(h, false) if h.originator_process_id == pid && h.process_id == pid)
    });
    assert_eq!(seen.len(), 1, "kill -CONT of itself: {seen:?}");
    f.stop_filter().unwrap();
}
