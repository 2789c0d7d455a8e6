//! The events a [`Tracer`](crate::Tracer) delivers.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::access::Access;
use crate::operation::{Operation, SignalDisposition};

/// One record from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A process or thread handle operation (a signal, a ptrace request, a memory read or
    /// write, a descriptor copy), sent when its system call returned.
    HandleOperation(HandleOperation),
    /// A process started running a new image.
    Exec(ExecRecord),
}

/// What an operation's system call named as its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A process, by id (a process-wide signal from `kill` or `pidfd_send_signal`, one per
    /// process for a group, `process_vm_readv`, a pidfd's process, `ptrace` attach). `0`
    /// when a pidfd argument was not a pidfd (the call then failed with `EBADF`), or when a
    /// `ptrace` call named a thread that did not exist. A thread id given to `kill` or
    /// `process_vm_readv` is reported as its process.
    Process(u32),
    /// A thread (`tgkill`, `tkill`, `ptrace` requests on a traced thread). When the call
    /// named only the thread, the kernel side resolves its process at the call; on kernels
    /// without the `bpf_task_from_pid` kfunc (before 6.2) it is looked up in
    /// `/proc/<tid>/status` when the event is delivered, and `0` if the thread was gone.
    Thread {
        /// The thread's process.
        process: u32,
        /// The thread.
        thread: u32,
    },
}

/// A process or thread handle operation: the reference's `on_process_handle_operation` /
/// `on_thread_handle_operation` parameters (same names as fsgate-process's
/// `HandleOperation`), plus what Linux adds: the system call, its exact target and result.
///
/// It is sent after the call returned, so the operation has already happened (or failed)
/// when a handler sees it: it is a notification and cannot be refused here (see
/// [`enforcement_unsupported`](crate::enforcement_unsupported)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleOperation {
    /// The system call and its main argument (signal, ptrace request, descriptor).
    pub operation: Operation,
    /// What the call named as its target. A signal is reported once for each process (or
    /// thread) the kernel generated it for: `kill` of a process group gives one event per
    /// process of the group.
    pub target: Target,
    /// Signals: what the target does with the signal (its handler table when the signal
    /// was generated), which decides whether it is fatal; `None` for other operations.
    pub signal_disposition: Option<SignalDisposition>,
    /// Whether a filter was active and the kernel found the originator in it when the
    /// operation happened (by id, as a descendant, or matched by name at its exec): a caller
    /// whose own view of the process lags (its exec not yet seen) can rely on it.
    pub originator_filtered: bool,
    /// Whether an existing handle was duplicated (`pidfd_getfd`).
    pub duplication: bool,
    /// The process acted on; `0` for a process group or every process.
    pub process_id: u32,
    /// The thread acted on (thread operations only, else `0`).
    pub thread_id: u32,
    /// The process that made the call.
    pub originator_process_id: u32,
    /// The thread that made the call.
    pub originator_thread_id: u32,
    /// The real user id of the caller.
    pub originator_user_id: u32,
    /// Duplication only: the process the descriptor was copied out of (`0` otherwise).
    pub source_process_id: u32,
    /// Duplication only: the process that received the copy, the caller (`0` otherwise).
    pub target_process_id: u32,
    /// The access the operation asked for (the table in [`crate::access`], signals judged
    /// by [`signal_disposition`](Self::signal_disposition)); it decides whether this is a
    /// process or a thread operation.
    pub desired_access: Access,
    /// The access the operation got: [`desired_access`](Self::desired_access) when the call
    /// succeeded, none when it failed.
    pub granted_access: Access,
    /// The system call's return value: `>= 0` on success, `-errno` on failure. A signal is
    /// seen when the kernel generates it, after every check passed: `0`, or `-EAGAIN` when
    /// the target's queue of real-time signals was full. Calls the kernel refused
    /// (`EPERM`, `ESRCH`, `EINVAL`) and signal 0 generate no signal and are not reported.
    pub result: i64,
}

impl HandleOperation {
    /// Whether the call succeeded.
    pub fn succeeded(&self) -> bool {
        self.result >= 0
    }

    /// The errno the caller saw, if the call failed.
    pub fn errno(&self) -> Option<i32> {
        (self.result < 0).then(|| i32::try_from(-self.result).unwrap_or(libc::EINVAL))
    }

    /// Whether the reference would fire `on_thread_handle_operation` (else
    /// `on_process_handle_operation`).
    pub fn is_thread_operation(&self) -> bool {
        self.desired_access.is_thread()
    }

    /// Checks the access mask a handler left in the reference's `desired_access` parameter
    /// (which starts as [`desired_access`](Self::desired_access)`.bits()`): unchanged is
    /// fine; any other value asks to restrict an operation that already happened, and gets
    /// [`enforcement_unsupported`](crate::enforcement_unsupported) (`ERROR_NOT_SUPPORTED`,
    /// 50) naming the operation.
    pub fn check_desired_access(&self, desired_access: u32) -> fsgate_core::Result<()> {
        if desired_access == self.desired_access.bits() {
            return Ok(());
        }
        Err(crate::enforcement_unsupported(&format!(
            "desired_access {desired_access:#x} for {} (asked {:#x})",
            self.operation.syscall_name(),
            self.desired_access.bits()
        )))
    }
}

/// Which system call started an exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecSyscall {
    /// `execve`.
    Execve,
    /// `execveat` (also `fexecve`, whose file name is then `/dev/fd/N`).
    Execveat,
}

/// A process started running a new image, recorded in the kernel at exec time (from
/// `sched_process_exec`), so a process that exits at once is named as exactly as one that
/// lives long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRecord {
    /// The process now running the image.
    pub process_id: u32,
    /// The thread that called exec (exec makes the calling thread the process's only one,
    /// with the process's id; this is its id before).
    pub thread_id: u32,
    /// The process's parent.
    pub parent_process_id: u32,
    /// The real user id running the image.
    pub user_id: u32,
    /// The call that started the exec; `None` when it started before the tracer did.
    pub syscall: Option<ExecSyscall>,
    /// The image file, as a full path from the root of the mount tree (what
    /// `/proc/<pid>/exe` shows: symbolic links resolved). For a script, the script.
    pub image_path: PathBuf,
    /// The file name the exec was asked to run (relative, or through a symbolic link, as the
    /// caller gave it; `/dev/fd/N/…` for `execveat` on a descriptor).
    pub file_name: OsString,
    /// The argument vector, as the new image sees it.
    pub arguments: Vec<OsString>,
    /// Whether the arguments went past what a record holds (24 KiB): then the last
    /// argument is cut and later ones are missing.
    pub arguments_truncated: bool,
    /// Whether the path was too deep or long for a record (4 KiB, 64 components): then
    /// [`image_path`](Self::image_path) holds only its last components.
    pub path_truncated: bool,
}

impl ExecRecord {
    /// The command line as the reference's `command_line` carries it: the arguments joined
    /// by spaces (bytes that are not UTF-8 replaced).
    pub fn command_line(&self) -> String {
        let parts: Vec<_> = self
            .arguments
            .iter()
            .map(|a| String::from_utf8_lossy(a.as_bytes()))
            .collect();
        parts.join(" ")
    }
}
