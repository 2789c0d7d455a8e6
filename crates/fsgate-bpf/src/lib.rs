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
//! (CO-RE) against the running kernel's when loaded. They attach to syscall tracepoints
//! (`sys_enter_*`/`sys_exit_*` of each traced call) and to `sched_process_exec`,
//! `sched_process_fork` and `sched_process_exit`; tracefs is mounted at
//! `/sys/kernel/tracing` if it is not. Ignore and filter rules by process id, and by
//! plain image name ([`name_rules`]), live in BPF maps and are evaluated in the kernel. The access each operation asks for is in [`access`].
//!
//! Wiring into the process filter: a [`HandleOperation`] carries the reference's parameters
//! under the same names as `fsgate_process::HandleOperation` (`original_desired_access` is
//! [`HandleOperation::desired_access`], `desired_access` the same value; a handler's change
//! goes through [`HandleOperation::check_desired_access`]); an [`ExecRecord`] gives the
//! creation event its `image_file_name` and `process_name` ([`ExecRecord::image_path`]) and
//! `command_line` ([`ExecRecord::command_line`]). [`Tracer::add_ignored`] and
//! [`Tracer::add_filtered`] mirror the filter's rules by process id.
//!
//! Deviation from the reference: the reference's handle events fire before the handle is
//! created and may remove access flags. Here they are notifications sent after the call
//! returned, with the access it got (none when it failed): refusing needs BPF LSM, which
//! this machine kind's kernel refuses. Asking for enforcement gets
//! [`enforcement_unsupported`].

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
