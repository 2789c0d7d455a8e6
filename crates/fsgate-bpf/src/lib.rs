//! BPF programs on kernel tracepoints, and their loader: process and thread handle
//! operations (signals, `ptrace`, `process_vm_readv`/`writev`, `pidfd_getfd`) reported with
//! their result, and exec records naming the image and its arguments exactly, read in the
//! kernel at exec time.
//!
//! ```no_run
//! use fsgate_bpf::{Event, PidRule, TracerBuilder};
//!
//! let tracer = TracerBuilder::new()
//!     .ignore(PidRule { process_id: std::process::id(), include_children: false })
//!     .start(|event| match event {
//!         Event::HandleOperation(op) => println!("{op:?}"),
//!         Event::Exec(exec) => println!("{} {}", exec.image_path.display(), exec.command_line()),
//!     })?;
//! # drop(tracer);
//! # Ok::<(), fsgate_core::Error>(())
//! ```
//!
//! The programs (`src/bpf/tracer.bpf.c`) are compiled by clang at build time against a
//! `vmlinux.h` generated from the build machine's kernel BTF, and relocated by libbpf
//! (CO-RE) against the running kernel's when loaded. Only the programs a tracer needs are
//! loaded and attached:
//!
//! - signals (`kill`, `tgkill`, `tkill`, `pidfd_send_signal`): `signal/signal_generate`, as
//!   a BTF-enabled tracepoint (`tp_btf`), or as a classic one where the kernel refuses that
//!   ([`Tracer::signals_from_btf_tracepoint`]). It is not a system call tracepoint, so a
//!   tracer that reports signals only ([`TracerBuilder::trace_syscalls`] off) costs the other
//!   system calls nothing. The sender and the call are those of the current task (its system
//!   call number); signals the kernel sends on its own are not reported. Signal 0 and calls
//!   the kernel refused generate no signal and are not reported either.
//! - `ptrace`, `process_vm_readv`/`writev`, `pidfd_getfd`: their `sys_enter_*`/`sys_exit_*`
//!   tracepoints (the call's result included). Attaching any system call tracepoint puts
//!   every system call of every process on the kernel's traced path while it is attached.
//! - exec records: `sched_process_exec`; rules: `sched_process_exec`, `sched_process_fork`
//!   and `sched_process_exit`.
//!
//! tracefs is mounted at `/sys/kernel/tracing` if it is not. Ignore and filter rules by
//! process id, and by plain image name ([`name_rules`]), live in BPF maps and are evaluated
//! in the kernel. The access each operation asks for is in [`access`]; whether a signal is
//! fatal is judged from the target's handler table when the signal is generated.
//!
//! Wiring into the process filter: a [`HandleOperation`] carries the reference's parameters
//! under the same names as `fsgate_process::HandleOperation` (`original_desired_access` is
//! [`HandleOperation::desired_access`], `desired_access` the same value; a handler's change
//! goes through [`HandleOperation::check_desired_access`]); an [`ExecRecord`] gives the
//! creation event its `image_file_name` and `process_name` ([`ExecRecord::image_path`]) and
//! `command_line` ([`ExecRecord::command_line`]). [`Tracer::add_ignored`] and
//! [`Tracer::add_filtered`] mirror the filter's rules by process id.
//!
//! Deviations from the reference: the reference's handle events fire before the handle is
//! created and may remove access flags. Here they are notifications sent once the operation
//! happened (a signal when the kernel generated it, other calls when they returned), with the
//! access it got (none when it failed): refusing needs BPF LSM, which this machine kind's
//! kernel refuses. Asking for enforcement gets [`enforcement_unsupported`]. A signal the
//! kernel refused, and signal 0, are not reported (seeing them needs a system call
//! tracepoint on `kill`, which would slow every system call).

pub mod access;
mod error;
mod event;
pub mod name_rules;
mod operation;
pub mod tracefs;
mod tracer;
mod wire;

pub use access::{Access, ProcessAccess, ThreadAccess};
pub use error::enforcement_unsupported;
pub use event::{Event, ExecRecord, ExecSyscall, HandleOperation, Target};
pub use name_rules::{is_kernel_matchable, NameRule, RuleList};
pub use operation::{Operation, PtraceRequest, Signal, SignalDisposition, SignalEffect};
pub use tracer::{probe_kernel, EventKinds, ExecReader, PidRule, Tracer, TracerBuilder};
