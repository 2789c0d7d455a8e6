//! The reference's process and thread access rights, and what each traced operation asks for.
//!
//! The values are the Windows access masks the reference's handle-operation events carry
//! (`PROCESS_TERMINATE`, `THREAD_SUSPEND_RESUME`, …), so code ported from the reference keeps
//! its masks. Linux has no handles: each traced system call is an operation on a process or a
//! thread, and [`Operation::desired_access`](crate::Operation::desired_access) maps it to the
//! right a Windows caller would have needed for the same effect:
//!
//! | operation | object | desired access |
//! | --- | --- | --- |
//! | `kill`, `pidfd_send_signal`: signal 0 (existence probe; generates no signal, so the tracer never reports it) | process | `PROCESS_QUERY_LIMITED_INFORMATION` |
//! | …: `SIGSTOP`, `SIGCONT`; `SIGTSTP`, `SIGTTIN`, `SIGTTOU` when the target neither handles nor ignores them | process | `PROCESS_SUSPEND_RESUME` |
//! | …: a signal that ends the target: `SIGKILL`, and a signal whose default action ends the process (`SIGTERM`, `SIGINT`, `SIGHUP`, `SIGQUIT`, `SIGABRT`, `SIGSEGV`, `SIGUSR1`, real-time signals, …) when the target neither handles nor ignores it | process | `PROCESS_TERMINATE` |
//! | …: a signal ignored by default (`SIGCHLD`, `SIGURG`, `SIGWINCH`), or any other one the target handles or ignores | process | `PROCESS_SET_INFORMATION` |
//! | `tgkill`, `tkill`: the same four classes | thread | `THREAD_QUERY_LIMITED_INFORMATION`, `THREAD_SUSPEND_RESUME`, `THREAD_TERMINATE`, `THREAD_SET_INFORMATION` |
//! | `ptrace`: `PTRACE_ATTACH`, `PTRACE_SEIZE`, `PTRACE_TRACEME` | process | `PROCESS_ALL_ACCESS` |
//! | `ptrace`: `PTRACE_PEEKTEXT`, `PTRACE_PEEKDATA` | process | `PROCESS_VM_READ` |
//! | `ptrace`: `PTRACE_POKETEXT`, `PTRACE_POKEDATA` | process | `PROCESS_VM_WRITE \| PROCESS_VM_OPERATION` |
//! | `ptrace`: `PTRACE_KILL` | process | `PROCESS_TERMINATE` |
//! | `ptrace`: requests that read a stopped thread's registers or state (`GETREGS`, `PEEKUSER`, `GETSIGINFO`, `GETEVENTMSG`, `GET_SYSCALL_INFO`, …) | thread | `THREAD_GET_CONTEXT` |
//! | `ptrace`: requests that change them (`SETREGS`, `POKEUSER`, `SETSIGINFO`, `SETOPTIONS`, …) | thread | `THREAD_SET_CONTEXT` |
//! | `ptrace`: requests that resume, stop or release the thread (`CONT`, `SYSCALL`, `SINGLESTEP`, `SYSEMU`, `LISTEN`, `INTERRUPT`, `DETACH`) | thread | `THREAD_SUSPEND_RESUME` |
//! | `ptrace`: any other request | thread | `THREAD_ALL_ACCESS` |
//! | `process_vm_readv` | process | `PROCESS_VM_READ` |
//! | `process_vm_writev` | process | `PROCESS_VM_WRITE \| PROCESS_VM_OPERATION` |
//! | `pidfd_getfd` (a duplication: the caller copies a descriptor out of the target) | process | `PROCESS_DUP_HANDLE` |
//!
//! Whether a signal ends the target is judged from the target's disposition when the kernel
//! generated the signal ([`SignalDisposition`](crate::SignalDisposition), read from its
//! signal handler table): `SIGTERM` to a process that handles or ignores it asks for
//! `PROCESS_SET_INFORMATION`, not `PROCESS_TERMINATE`. A disposition that could not be read
//! is judged by the default action.

use bitflags::bitflags;

bitflags! {
    /// Access rights on a process (the reference's `PROCESS_*` masks).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct ProcessAccess: u32 {
        /// `PROCESS_TERMINATE`: end the process.
        const TERMINATE = 0x0001;
        /// `PROCESS_CREATE_THREAD`.
        const CREATE_THREAD = 0x0002;
        /// `PROCESS_SET_SESSIONID`.
        const SET_SESSIONID = 0x0004;
        /// `PROCESS_VM_OPERATION`: change the address space (needed with `VM_WRITE`).
        const VM_OPERATION = 0x0008;
        /// `PROCESS_VM_READ`: read the process's memory.
        const VM_READ = 0x0010;
        /// `PROCESS_VM_WRITE`: write the process's memory.
        const VM_WRITE = 0x0020;
        /// `PROCESS_DUP_HANDLE`: copy handles (file descriptors) out of the process.
        const DUP_HANDLE = 0x0040;
        /// `PROCESS_CREATE_PROCESS`.
        const CREATE_PROCESS = 0x0080;
        /// `PROCESS_SET_QUOTA`.
        const SET_QUOTA = 0x0100;
        /// `PROCESS_SET_INFORMATION`: change the process's state.
        const SET_INFORMATION = 0x0200;
        /// `PROCESS_QUERY_INFORMATION`.
        const QUERY_INFORMATION = 0x0400;
        /// `PROCESS_SUSPEND_RESUME`: stop or continue the process.
        const SUSPEND_RESUME = 0x0800;
        /// `PROCESS_QUERY_LIMITED_INFORMATION`: learn that the process exists.
        const QUERY_LIMITED_INFORMATION = 0x1000;
        /// `SYNCHRONIZE`.
        const SYNCHRONIZE = 0x0010_0000;
        /// `PROCESS_ALL_ACCESS`: every right (a tracer can do anything to its tracee).
        const ALL_ACCESS = 0x001F_FFFF;
    }
}

bitflags! {
    /// Access rights on a thread (the reference's `THREAD_*` masks).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct ThreadAccess: u32 {
        /// `THREAD_TERMINATE`.
        const TERMINATE = 0x0001;
        /// `THREAD_SUSPEND_RESUME`: stop or continue the thread.
        const SUSPEND_RESUME = 0x0002;
        /// `THREAD_GET_CONTEXT`: read the thread's registers.
        const GET_CONTEXT = 0x0008;
        /// `THREAD_SET_CONTEXT`: change the thread's registers.
        const SET_CONTEXT = 0x0010;
        /// `THREAD_SET_INFORMATION`: change the thread's state.
        const SET_INFORMATION = 0x0020;
        /// `THREAD_QUERY_INFORMATION`.
        const QUERY_INFORMATION = 0x0040;
        /// `THREAD_SET_THREAD_TOKEN`.
        const SET_THREAD_TOKEN = 0x0080;
        /// `THREAD_IMPERSONATE`.
        const IMPERSONATE = 0x0100;
        /// `THREAD_DIRECT_IMPERSONATION`.
        const DIRECT_IMPERSONATION = 0x0200;
        /// `THREAD_SET_LIMITED_INFORMATION`.
        const SET_LIMITED_INFORMATION = 0x0400;
        /// `THREAD_QUERY_LIMITED_INFORMATION`: learn that the thread exists.
        const QUERY_LIMITED_INFORMATION = 0x0800;
        /// `THREAD_RESUME`.
        const RESUME = 0x1000;
        /// `SYNCHRONIZE`.
        const SYNCHRONIZE = 0x0010_0000;
        /// `THREAD_ALL_ACCESS`: every right.
        const ALL_ACCESS = 0x001F_FFFF;
    }
}

/// The access an operation asks for, on the kind of object it acts on: which of the
/// reference's two events (`on_process_handle_operation`, `on_thread_handle_operation`) it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A process handle operation.
    Process(ProcessAccess),
    /// A thread handle operation.
    Thread(ThreadAccess),
}

impl Access {
    /// The mask as the reference's `desired_access` parameter carries it.
    pub fn bits(self) -> u32 {
        match self {
            Self::Process(a) => a.bits(),
            Self::Thread(a) => a.bits(),
        }
    }

    /// No access, on the same kind of object (what a failed call was granted).
    pub fn none(self) -> Self {
        match self {
            Self::Process(_) => Self::Process(ProcessAccess::empty()),
            Self::Thread(_) => Self::Thread(ThreadAccess::empty()),
        }
    }

    /// Whether the operation acts on a thread rather than a whole process.
    pub fn is_thread(self) -> bool {
        matches!(self, Self::Thread(_))
    }
}
