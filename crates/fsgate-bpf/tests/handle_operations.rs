//! Handle operations reported from the kernel: once each, with the right processes, access
//! bits and result; ignore and filter rules applied in the kernel. Needs root.

mod common;

use common::{operations_by, spawn_target, start, stop_and_collect, Helper};
use fsgate_bpf::{
    Access, Event, Operation, PidRule, ProcessAccess, PtraceRequest, Signal, Target, ThreadAccess,
    TracerBuilder,
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
    // SAFETY: tgkill and tkill take ids and a signal number; signal 0 sends nothing.
    let (tg, tk) = unsafe {
        (
            libc::syscall(libc::SYS_tgkill, me as i32, tid as i32, 0),
            libc::syscall(libc::SYS_tkill, tid as i32, 0),
        )
    };
    assert_eq!((tg, tk), (0, 0));
    stop.send(()).expect("stop worker");
    worker.join().expect("worker");
    let events = stop_and_collect(tracer, events);
    let ops: Vec<_> = operations_by(&events, me)
        .into_iter()
        .filter(|o| o.thread_id == tid)
        .collect();
    assert_eq!(ops.len(), 2, "{ops:#?}");
    assert_eq!(ops[0].operation, Operation::Tgkill(Signal(0)));
    assert_eq!(ops[1].operation, Operation::Tkill(Signal(0)));
    for op in &ops {
        assert_eq!(
            op.target,
            Target::Thread {
                process: me,
                thread: tid
            }
        );
        assert!(op.is_thread_operation());
        assert_eq!(
            op.granted_access,
            Access::Thread(ThreadAccess::QUERY_LIMITED_INFORMATION)
        );
    }
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
