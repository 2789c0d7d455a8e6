//! Shared by the kernel tests: starting a tracer (or asserting the documented error on a
//! kernel that refuses BPF), helper processes, and the actor role a test binary plays when
//! it runs itself as a child.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::Receiver;

use fsgate_bpf::{Event, HandleOperation, Tracer, TracerBuilder};
use fsgate_core::code;

/// The environment variable that makes a test binary play a role instead of testing.
pub const ROLE: &str = "FSGATE_BPF_TEST_ROLE";

/// Starts the tracer, or, when the kernel refuses BPF (or tracefs) on this machine, asserts
/// that the error is the documented one and returns `None`. A kernel that loads tracepoint
/// programs (probed apart) must start it: a program its verifier rejects is a failure here,
/// not a refusing kernel.
pub fn start(builder: TracerBuilder) -> Option<(Tracer, Receiver<Event>)> {
    let supported = fsgate_bpf::probe_kernel();
    match builder.start_channel() {
        Ok(started) => Some(started),
        Err(e) => {
            if let Ok(()) = supported {
                if !e.message().contains("tracefs") {
                    panic!("the kernel loads BPF tracepoint programs, yet: {e}");
                }
            }
            let root = rustix::process::geteuid().is_root();
            let expected = if root {
                code::ERROR_NOT_SUPPORTED
            } else {
                code::ERROR_PRIVILEGE_NOT_HELD
            };
            assert_eq!(e.code(), expected, "unexpected error: {e}");
            assert!(
                e.message().contains("BPF") || e.message().contains("tracefs"),
                "error does not name the reason: {e}"
            );
            eprintln!("documented alternative: {e}");
            None
        }
    }
}

/// Every event the tracer delivered, once it is dropped (which drains the ring buffer).
pub fn stop_and_collect(tracer: Tracer, events: Receiver<Event>) -> Vec<Event> {
    drop(tracer);
    events.iter().collect()
}

/// Handle operations made by `originator`.
pub fn operations_by(events: &[Event], originator: u32) -> Vec<HandleOperation> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::HandleOperation(op) if op.originator_process_id == originator => {
                Some(op.clone())
            }
            _ => None,
        })
        .collect()
}

/// A child process killed and reaped when dropped.
pub struct Reaped(pub Child);

impl Reaped {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process that sleeps until killed: the target of the operations.
pub fn spawn_target() -> Reaped {
    Reaped(
        Command::new("/bin/sleep")
            .arg("1000")
            .spawn()
            .expect("spawning /bin/sleep"),
    )
}

/// This test binary, run as a child playing `role` (see [`play_role`]); its stdin and
/// stdout are pipes.
pub struct Helper {
    pub child: Reaped,
    pub stdin: ChildStdin,
    pub stdout: BufReader<ChildStdout>,
}

impl Helper {
    pub fn spawn(role: &str, target: u32) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("current_exe"))
            .args(["--exact", "role_helper", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env("FSGATE_BPF_TEST_TARGET", target.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning the helper");
        let stdin = child.stdin.take().expect("helper stdin");
        let stdout = BufReader::new(child.stdout.take().expect("helper stdout"));
        Self {
            child: Reaped(child),
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// What follows `prefix` on the next line the helper printed with it (libtest may have
    /// written its own text before it on the same line).
    pub fn line(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stdout
                .read_line(&mut line)
                .expect("reading the helper");
            assert!(n > 0, "helper ended before printing {prefix}");
            if let Some(at) = line.find(prefix) {
                return line[at + prefix.len()..].trim().to_string();
            }
        }
    }

    /// Lets the helper go on.
    pub fn go(&mut self) {
        self.stdin
            .write_all(b"go\n")
            .expect("writing to the helper");
        self.stdin.flush().expect("flushing the helper's stdin");
    }

    /// Waits until the helper exits; its exit status must be success.
    pub fn finish(mut self) {
        let status = self.child.0.wait().expect("waiting for the helper");
        assert!(status.success(), "helper failed: {status}");
    }
}

/// The start of the first readable mapping of `pid`.
pub fn readable_address(pid: u32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("reading maps");
    maps.lines()
        .find(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|p| p.starts_with('r'))
        })
        .and_then(|l| l.split('-').next())
        .and_then(|a| u64::from_str_radix(a, 16).ok())
        .expect("a readable mapping")
}

/// Waits for a line on stdin (the parent's go-ahead).
pub fn wait_for_go() {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .expect("reading stdin");
}

/// The ids `bpftool prog list` shows.
pub fn listed_program_ids() -> Vec<u32> {
    let out = Command::new("bpftool")
        .args(["prog", "list"])
        .output()
        .expect("running bpftool prog list");
    assert!(out.status.success(), "bpftool prog list failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter_map(|id| id.trim().parse().ok())
        .collect()
}

/// The actor: attaches to the target with ptrace, reads its memory (once at a readable
/// address, once at address 0, which fails with EFAULT), detaches and sends it SIGTERM.
pub fn act_on(target: u32) {
    let pid = target as libc::pid_t;
    let address = readable_address(target);
    println!("TID {}", rustix::thread::gettid().as_raw_nonzero());
    println!("READY");
    wait_for_go();
    // SAFETY: PTRACE_ATTACH takes no pointers.
    let attached = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0usize, 0usize) };
    assert_eq!(
        attached,
        0,
        "PTRACE_ATTACH: {}",
        std::io::Error::last_os_error()
    );
    let mut status = 0;
    // SAFETY: status is a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
    assert_eq!(waited, pid);
    let mut buffer = [0u8; 8];
    for remote_address in [address, 0] {
        let local = libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        };
        let remote = libc::iovec {
            iov_base: remote_address as *mut libc::c_void,
            iov_len: buffer.len(),
        };
        // SAFETY: both iovecs are valid for one element; the local one points into `buffer`.
        let read = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
        println!("READ {read}");
    }
    // SAFETY: PTRACE_DETACH takes no pointers (data 0: no signal).
    let detached = unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0usize, 0usize) };
    assert_eq!(
        detached,
        0,
        "PTRACE_DETACH: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: kill takes no pointers.
    let killed = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(killed, 0);
    println!("DONE");
}

/// Plays the role named by [`ROLE`], if any.
pub fn play_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let target: u32 = std::env::var("FSGATE_BPF_TEST_TARGET")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    match role.as_str() {
        "actor" => act_on(target),
        "loader" => {
            let (tracer, _events) = TracerBuilder::new()
                .start_channel()
                .expect("starting the tracer in the loader");
            let ids: Vec<String> = tracer.program_ids().iter().map(u32::to_string).collect();
            println!("IDS {}", ids.join(" "));
            // Holds the tracer until killed.
            wait_for_go();
            drop(tracer);
        }
        other => panic!("unknown role {other}"),
    }
}
