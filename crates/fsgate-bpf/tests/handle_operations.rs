//! Handle operations reported from the kernel: once each, with the right processes, access
//! bits and result; ignore and filter rules applied in the kernel. Needs root.

mod common;

use common::{operations_by, spawn_target, start, stop_and_collect, Helper};
use fsgate_bpf::{
    Access, Event, Operation, PidRule, ProcessAccess, PtraceRequest, Signal, SignalDisposition,
    Target, ThreadAccess, TracerBuilder,
};

/// When this binary runs itself as a helper child, this is the test that plays the role.
#[test]
fn role_helper() {
    common::play_role();
}

#[test]
fn signal_ptrace_and_memory_read_are_each_reported_once() {
    let Some((tracer, events)) = start(TracerBuilder::new()) else {
        return;
    };
    let target = spawn_target();
    let mut actor = Helper::spawn("actor", target.pid());
    let actor_tid: u32 = actor.line("TID").parse().expect("actor tid");
    actor.line("READY");
    actor.go();
    assert_eq!(actor.line("READ"), "8");
    assert_eq!(actor.line("READ"), "-1");
    actor.line("DONE");
    let actor_pid = actor.pid();
    actor.finish();
    let events = stop_and_collect(tracer, events);

    let ops = operations_by(&events, actor_pid);
    let t = target.pid();
    let summary: Vec<_> = ops
        .iter()
        .map(|o| (o.operation, o.target, o.granted_access, o.result))
        .collect();
    let none = Access::Process(ProcessAccess::empty());
    assert_eq!(
        summary,
        vec![
            (
                Operation::Ptrace(PtraceRequest::ATTACH),
                Target::Process(t),
                Access::Process(ProcessAccess::ALL_ACCESS),
                0
            ),
            (
                Operation::ProcessVmReadv,
                Target::Process(t),
                Access::Process(ProcessAccess::VM_READ),
                8
            ),
            (
                Operation::ProcessVmReadv,
                Target::Process(t),
                none,
                -i64::from(libc::EFAULT)
            ),
            (
                Operation::Ptrace(PtraceRequest::DETACH),
                Target::Thread {
                    process: t,
                    thread: t
                },
                Access::Thread(ThreadAccess::SUSPEND_RESUME),
                0
            ),
            (
                Operation::Kill(Signal(libc::SIGTERM)),
                Target::Process(t),
                Access::Process(ProcessAccess::TERMINATE),
                0
            ),
        ],
        "operations by the actor: {ops:#?}"
    );
    for op in &ops {
        assert_eq!(op.process_id, t);
        assert_eq!(op.originator_thread_id, actor_tid);
        assert_eq!(op.originator_user_id, rustix::process::getuid().as_raw());
        assert!(!op.duplication);
    }
    assert_eq!(
        ops[2].desired_access,
        Access::Process(ProcessAccess::VM_READ)
    );
    assert_eq!(ops[2].errno(), Some(libc::EFAULT));
}

/// Without the system call tracepoints only signals are reported: the same actor's ptrace
/// and memory reads (and the SIGSTOP the kernel itself sends at the attach) are not.
#[test]
fn without_syscall_tracepoints_only_signals_are_reported() {
    let Some((tracer, events)) = start(TracerBuilder::new().trace_syscalls(false)) else {
        return;
    };
    let target = spawn_target();
    let mut actor = Helper::spawn("actor", target.pid());
    actor.line("TID");
    actor.line("READY");
    actor.go();
    assert_eq!(actor.line("READ"), "8");
    assert_eq!(actor.line("READ"), "-1");
    actor.line("DONE");
    let actor_pid = actor.pid();
    actor.finish();
    let events = stop_and_collect(tracer, events);
    let ops: Vec<_> = operations_by(&events, actor_pid)
        .iter()
        .map(|o| (o.operation, o.target, o.granted_access))
        .collect();
    assert_eq!(
        ops,
        vec![(
            Operation::Kill(Signal(libc::SIGTERM)),
            Target::Process(target.pid()),
            Access::Process(ProcessAccess::TERMINATE)
        )]
    );
}

#[test]
fn pidfd_signal_and_descriptor_copy_name_the_pidfds_process() {
    let Some((tracer, events)) = start(TracerBuilder::new()) else {
        return;
    };
    let target = spawn_target();
    let t = target.pid();
    // SAFETY: pidfd_open takes a pid and flags.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, t as libc::pid_t, 0) } as i32;
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a null siginfo is allowed; pidfd is ours.
    let sent =
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, libc::SIGCONT, 0usize, 0) };
    assert_eq!(sent, 0);
    // SAFETY: pidfd_getfd takes a pidfd, a descriptor number and flags.
    let copied = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, 1, 0) } as i32;
    assert!(
        copied >= 0,
        "pidfd_getfd: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: both descriptors are ours and closed once.
    unsafe {
        libc::close(copied);
        libc::close(pidfd);
    }
    let events = stop_and_collect(tracer, events);
    let me = std::process::id();
    let ops: Vec<_> = operations_by(&events, me)
        .into_iter()
        .filter(|o| o.target == Target::Process(t))
        .collect();
    assert_eq!(ops.len(), 2, "{ops:#?}");
    assert_eq!(
        ops[0].operation,
        Operation::PidfdSendSignal(Signal(libc::SIGCONT))
    );
    assert_eq!(
        ops[0].granted_access,
        Access::Process(ProcessAccess::SUSPEND_RESUME)
    );
    assert_eq!(ops[1].operation, Operation::PidfdGetfd { fd: 1 });
    assert!(ops[1].duplication);
    assert_eq!(
        (ops[1].source_process_id, ops[1].target_process_id),
        (t, me)
    );
    assert_eq!(
        ops[1].granted_access,
        Access::Process(ProcessAccess::DUP_HANDLE)
    );
    assert_eq!(ops[1].result, i64::from(copied));
}

#[test]
fn thread_signals_are_thread_operations() {
    let Some((tracer, events)) = start(TracerBuilder::new()) else {
        return;
    };
    let me = std::process::id();
    // A thread that exists until signalled through a channel.
    let (ready, tid) = std::sync::mpsc::channel();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        ready
            .send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
            .expect("send tid");
        let _ = stopped.recv();
    });
    let tid = tid.recv().expect("tid");
    // SAFETY: tgkill and tkill take ids and a signal number; SIGURG's default action is to
    // ignore it, and signal 0 sends nothing (so it is not reported: no signal is generated).
    let (tg, tk, probe) = unsafe {
        (
            libc::syscall(libc::SYS_tgkill, me as i32, tid as i32, libc::SIGURG),
            libc::syscall(libc::SYS_tkill, tid as i32, libc::SIGURG),
            libc::syscall(libc::SYS_tkill, tid as i32, 0),
        )
    };
    assert_eq!((tg, tk, probe), (0, 0, 0));
    stop.send(()).expect("stop worker");
    worker.join().expect("worker");
    let events = stop_and_collect(tracer, events);
    let ops: Vec<_> = operations_by(&events, me)
        .into_iter()
        .filter(|o| o.thread_id == tid)
        .collect();
    assert_eq!(ops.len(), 2, "{ops:#?}");
    assert_eq!(ops[0].operation, Operation::Tgkill(Signal(libc::SIGURG)));
    assert_eq!(ops[1].operation, Operation::Tkill(Signal(libc::SIGURG)));
    for op in &ops {
        assert_eq!(
            op.target,
            Target::Thread {
                process: me,
                thread: tid
            }
        );
        assert!(op.is_thread_operation());
        assert_eq!(op.signal_disposition, Some(SignalDisposition::Default));
        assert_eq!(
            op.granted_access,
            Access::Thread(ThreadAccess::SET_INFORMATION)
        );
    }
}

/// Whether SIGTERM is fatal is judged from the target's handler table: a shell that traps it
/// or ignores it is asked for SET_INFORMATION, one with the default action for TERMINATE.
/// A refused call (no such process) and signal 0 generate no signal and are not reported.
#[test]
fn a_signals_fatality_follows_the_targets_handler() {
    let Some((tracer, events)) = start(TracerBuilder::new()) else {
        return;
    };
    eprintln!(
        "signals from the BTF-enabled tracepoint: {:?}",
        tracer.signals_from_btf_tracepoint()
    );
    let spawn = |script: &str| {
        let mut child = std::process::Command::new("sh")
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        // The shell says READY once its trap is set.
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")),
            &mut line,
        )
        .expect("read READY");
        assert_eq!(line.trim(), "READY");
        child
    };
    let mut caught = spawn("trap 'exit 0' TERM; echo READY; while :; do sleep 0.05; done");
    let mut ignored = spawn("trap '' TERM; echo READY; exec sleep 60");
    let mut default = spawn("echo READY; exec sleep 60");
    let me = std::process::id();
    // A pid no process has: the kernel's limit is at most 4,194,304.
    let missing = 4_194_305;
    for child in [&caught, &ignored, &default] {
        // SAFETY: kill on the pid of a child this test started.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    }
    // SAFETY: kill with a pid no process has, and a probe of our own child.
    unsafe {
        assert_eq!(libc::kill(missing, libc::SIGTERM), -1);
        assert_eq!(libc::kill(caught.id() as i32, 0), 0);
    }
    assert!(caught.wait().expect("wait").success());
    // SAFETY: kill on the pid of a child this test started.
    assert_eq!(unsafe { libc::kill(ignored.id() as i32, libc::SIGKILL) }, 0);
    let _ = ignored.wait();
    let _ = default.wait();
    let events = stop_and_collect(tracer, events);
    // Other tests of this binary signal from this process too: only ours count.
    let targets = [caught.id(), ignored.id(), default.id()];
    let ops: Vec<_> = operations_by(&events, me)
        .into_iter()
        .filter(|o| targets.contains(&o.process_id))
        .collect();
    let seen: Vec<_> = ops
        .iter()
        .map(|o| {
            (
                o.process_id,
                o.operation,
                o.signal_disposition,
                o.granted_access,
            )
        })
        .collect();
    let sigterm = Operation::Kill(Signal(libc::SIGTERM));
    assert_eq!(
        seen,
        vec![
            (
                caught.id(),
                sigterm,
                Some(SignalDisposition::Caught),
                Access::Process(ProcessAccess::SET_INFORMATION)
            ),
            (
                ignored.id(),
                sigterm,
                Some(SignalDisposition::Ignored),
                Access::Process(ProcessAccess::SET_INFORMATION)
            ),
            (
                default.id(),
                sigterm,
                Some(SignalDisposition::Default),
                Access::Process(ProcessAccess::TERMINATE)
            ),
            // SIGKILL cannot be caught or ignored: its disposition stays the default.
            (
                ignored.id(),
                Operation::Kill(Signal(libc::SIGKILL)),
                Some(SignalDisposition::Default),
                Access::Process(ProcessAccess::TERMINATE)
            ),
        ],
        "{ops:#?}"
    );
}

/// `kill(0, …)` signals every process of the caller's group: one event for each process the
/// kernel generated the signal for.
#[test]
fn a_group_signal_is_reported_once_per_process() {
    let Some((tracer, events)) = start(TracerBuilder::new()) else {
        return;
    };
    // A shell leading its own group, with two children in it; it signals the group with
    // SIGURG (ignored by default) and reports the pids.
    let out = std::process::Command::new("setsid")
        .args([
            "sh",
            "-c",
            "sleep 60 & a=$!; sleep 60 & b=$!; kill -URG 0; echo $$ $a $b; kill $a $b",
        ])
        .output()
        .expect("run setsid sh");
    assert!(out.status.success());
    let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert_eq!(pids.len(), 3);
    let events = stop_and_collect(tracer, events);
    let mut urg: Vec<u32> = operations_by(&events, pids[0])
        .into_iter()
        .filter(|o| o.operation == Operation::Kill(Signal(libc::SIGURG)))
        .map(|o| o.process_id)
        .collect();
    urg.sort_unstable();
    let mut expected = pids.clone();
    expected.sort_unstable();
    assert_eq!(urg, expected);
}

#[test]
fn operations_between_ignored_processes_are_not_reported() {
    let Some((tracer, events)) = start(TracerBuilder::new()) else {
        return;
    };
    let target = spawn_target();
    let mut ignored = Helper::spawn("actor", target.pid());
    ignored.line("READY");
    for process_id in [ignored.pid(), target.pid()] {
        tracer
            .add_ignored(PidRule {
                process_id,
                include_children: false,
            })
            .expect("add_ignored");
    }
    ignored.go();
    ignored.line("DONE");
    let ignored_pid = ignored.pid();
    ignored.finish();
    // The control: the same operations by a process without a rule are reported.
    let second = spawn_target();
    let mut control = Helper::spawn("actor", second.pid());
    control.line("READY");
    control.go();
    control.line("DONE");
    let control_pid = control.pid();
    control.finish();
    let events = stop_and_collect(tracer, events);
    assert_eq!(operations_by(&events, ignored_pid), vec![]);
    assert_eq!(operations_by(&events, control_pid).len(), 5);
}

#[test]
fn filter_reports_only_operations_involving_filtered_processes() {
    let filtered = spawn_target();
    let other = spawn_target();
    let Some((tracer, events)) = start(TracerBuilder::new().filter(PidRule {
        process_id: filtered.pid(),
        include_children: false,
    })) else {
        return;
    };
    let mut on_other = Helper::spawn("actor", other.pid());
    on_other.line("READY");
    on_other.go();
    on_other.line("DONE");
    let other_actor = on_other.pid();
    on_other.finish();
    let mut on_filtered = Helper::spawn("actor", filtered.pid());
    on_filtered.line("READY");
    on_filtered.go();
    on_filtered.line("DONE");
    let filtered_actor = on_filtered.pid();
    on_filtered.finish();
    let events = stop_and_collect(tracer, events);
    assert!(operations_by(&events, other_actor).is_empty());
    let ops = operations_by(&events, filtered_actor);
    assert_eq!(ops.len(), 5, "{ops:#?}");
    assert!(ops.iter().all(|o| o.process_id == filtered.pid()));
    // Only operations involving the filtered process reached user space.
    assert!(events.iter().all(|e| match e {
        Event::HandleOperation(o) =>
            o.process_id == filtered.pid() || o.originator_process_id == filtered.pid(),
        Event::Exec(x) => x.process_id == filtered.pid(),
    }));
}

#[test]
fn enforcement_is_refused_with_the_documented_error() {
    let err = match TracerBuilder::new().enforce(true).start(|_| {}) {
        Ok(_) => panic!("enforcement must be refused"),
        Err(e) => e,
    };
    assert_eq!(err.code(), fsgate_core::code::ERROR_NOT_SUPPORTED);
    assert_eq!(err.errno(), libc::EOPNOTSUPP);
    assert!(err.message().contains("BPF LSM"), "{err}");
}
