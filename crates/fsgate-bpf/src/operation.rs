//! The traced system calls, and the access each asks for (the table is in [`crate::access`]).

use crate::access::{Access, ProcessAccess, ThreadAccess};

/// A signal number as the caller passed it (0 probes whether the target exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signal(pub i32);

/// What a signal does to a process that neither handles nor blocks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignalEffect {
    /// Signal 0: nothing is sent; the call only checks the target exists and may be signalled.
    Probe,
    /// Stops or continues the target (`SIGSTOP`, `SIGTSTP`, `SIGTTIN`, `SIGTTOU`, `SIGCONT`).
    SuspendResume,
    /// Ends the target, with or without a core dump.
    Terminate,
    /// Nothing unless the target handles it (`SIGCHLD`, `SIGURG`, `SIGWINCH`).
    Notify,
}

/// What the target does with a signal, read from its signal handler table when the kernel
/// generated the signal for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignalDisposition {
    /// The default action (`SIG_DFL`): what [`Signal::effect`] says.
    Default,
    /// The target has a handler: the signal runs it instead of the default action.
    Caught,
    /// The target ignores the signal (`SIG_IGN`).
    Ignored,
    /// The handler table could not be read; judged as [`Default`](Self::Default).
    Unknown,
}

impl Signal {
    /// What the signal does to the target given its disposition: a handler or `SIG_IGN`
    /// takes the place of the default action, except for `SIGKILL` and `SIGSTOP` (which
    /// cannot be caught or ignored) and `SIGCONT` (which continues a stopped target
    /// whatever its disposition).
    pub fn effect_on(self, disposition: SignalDisposition) -> SignalEffect {
        let default = self.effect();
        match (disposition, self.0) {
            (_, libc::SIGKILL | libc::SIGSTOP | libc::SIGCONT) => default,
            (SignalDisposition::Caught | SignalDisposition::Ignored, 1..) => SignalEffect::Notify,
            _ => default,
        }
    }

    /// The signal's default effect, which decides the access it asks for.
    pub fn effect(self) -> SignalEffect {
        match self.0 {
            0 => SignalEffect::Probe,
            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU | libc::SIGCONT => {
                SignalEffect::SuspendResume
            }
            libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH => SignalEffect::Notify,
            _ => SignalEffect::Terminate,
        }
    }
}

/// A `ptrace` request number (`PTRACE_ATTACH`, `PTRACE_PEEKDATA`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PtraceRequest(pub u64);

impl PtraceRequest {
    /// `PTRACE_TRACEME`.
    pub const TRACEME: Self = Self(0);
    /// `PTRACE_PEEKDATA`.
    pub const PEEKDATA: Self = Self(2);
    /// `PTRACE_CONT`.
    pub const CONT: Self = Self(7);
    /// `PTRACE_ATTACH`.
    pub const ATTACH: Self = Self(16);
    /// `PTRACE_DETACH`.
    pub const DETACH: Self = Self(17);
    /// `PTRACE_SEIZE`.
    pub const SEIZE: Self = Self(0x4206);

    /// Whether the request makes the caller the target's tracer.
    pub fn attaches(self) -> bool {
        matches!(self, Self::TRACEME | Self::ATTACH | Self::SEIZE)
    }

    /// The access the request asks for (see the table in [`crate::access`]).
    pub fn access(self) -> Access {
        match self.0 {
            0 | 16 | 0x4206 => Access::Process(ProcessAccess::ALL_ACCESS),
            // PEEKTEXT, PEEKDATA
            1 | 2 => Access::Process(ProcessAccess::VM_READ),
            // POKETEXT, POKEDATA
            4 | 5 => Access::Process(ProcessAccess::VM_WRITE | ProcessAccess::VM_OPERATION),
            // KILL
            8 => Access::Process(ProcessAccess::TERMINATE),
            // PEEKUSR, GETREGS, GETFPREGS, GETFPXREGS, GET_THREAD_AREA, ARCH_PRCTL,
            // GETEVENTMSG, GETSIGINFO, GETREGSET, PEEKSIGINFO, GETSIGMASK, SECCOMP_GET_FILTER,
            // SECCOMP_GET_METADATA, GET_SYSCALL_INFO, GET_RSEQ_CONFIGURATION,
            // GET_SYSCALL_USER_DISPATCH_CONFIG
            3 | 12 | 14 | 18 | 25 | 30 | 0x4201 | 0x4202 | 0x4204 | 0x4209 | 0x420a | 0x420c
            | 0x420d | 0x420e | 0x420f | 0x4211 => Access::Thread(ThreadAccess::GET_CONTEXT),
            // POKEUSR, SETREGS, SETFPREGS, SETFPXREGS, SET_THREAD_AREA, SETOPTIONS,
            // SETSIGINFO, SETREGSET, SETSIGMASK, SET_SYSCALL_USER_DISPATCH_CONFIG,
            // SET_SYSCALL_INFO
            6 | 13 | 15 | 19 | 26 | 0x4200 | 0x4203 | 0x4205 | 0x420b | 0x4210 | 0x4212 => {
                Access::Thread(ThreadAccess::SET_CONTEXT)
            }
            // CONT, SINGLESTEP, DETACH, SYSCALL, SYSEMU, SYSEMU_SINGLESTEP, SINGLEBLOCK,
            // INTERRUPT, LISTEN
            7 | 9 | 17 | 24 | 31 | 32 | 33 | 0x4207 | 0x4208 => {
                Access::Thread(ThreadAccess::SUSPEND_RESUME)
            }
            _ => Access::Thread(ThreadAccess::ALL_ACCESS),
        }
    }
}

/// A traced system call that acts on another process or thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `kill(pid, signal)`: a process, a process group, or every process.
    Kill(Signal),
    /// `tgkill(tgid, tid, signal)`: one thread of a given process.
    Tgkill(Signal),
    /// `tkill(tid, signal)`: one thread.
    Tkill(Signal),
    /// `pidfd_send_signal(pidfd, signal, …)`: the process the pidfd refers to.
    PidfdSendSignal(Signal),
    /// `ptrace(request, pid, …)`.
    Ptrace(PtraceRequest),
    /// `process_vm_readv(pid, …)`: read another process's memory.
    ProcessVmReadv,
    /// `process_vm_writev(pid, …)`: write another process's memory.
    ProcessVmWritev,
    /// `pidfd_getfd(pidfd, fd, …)`: copy file descriptor `fd` out of the process the pidfd
    /// refers to (the reference's handle duplication).
    PidfdGetfd {
        /// The descriptor number in the target process.
        fd: i32,
    },
}

impl Operation {
    /// The system call's name.
    pub fn syscall_name(self) -> &'static str {
        match self {
            Self::Kill(_) => "kill",
            Self::Tgkill(_) => "tgkill",
            Self::Tkill(_) => "tkill",
            Self::PidfdSendSignal(_) => "pidfd_send_signal",
            Self::Ptrace(_) => "ptrace",
            Self::ProcessVmReadv => "process_vm_readv",
            Self::ProcessVmWritev => "process_vm_writev",
            Self::PidfdGetfd { .. } => "pidfd_getfd",
        }
    }

    /// The access the operation asks for, on a process or a thread (the table in
    /// [`crate::access`]), for a target whose disposition of a signal is the default.
    pub fn desired_access(self) -> Access {
        self.desired_access_on(SignalDisposition::Default)
    }

    /// The access the operation asks for from a target with `disposition` for the signal
    /// sent (ignored by operations that send none): a signal the target catches or ignores
    /// does not end or stop it, so it asks for `SET_INFORMATION`, not `TERMINATE`.
    pub fn desired_access_on(self, disposition: SignalDisposition) -> Access {
        match self {
            Self::Kill(signal) | Self::PidfdSendSignal(signal) => {
                Access::Process(match signal.effect_on(disposition) {
                    SignalEffect::Probe => ProcessAccess::QUERY_LIMITED_INFORMATION,
                    SignalEffect::SuspendResume => ProcessAccess::SUSPEND_RESUME,
                    SignalEffect::Terminate => ProcessAccess::TERMINATE,
                    SignalEffect::Notify => ProcessAccess::SET_INFORMATION,
                })
            }
            Self::Tgkill(signal) | Self::Tkill(signal) => {
                Access::Thread(match signal.effect_on(disposition) {
                    SignalEffect::Probe => ThreadAccess::QUERY_LIMITED_INFORMATION,
                    SignalEffect::SuspendResume => ThreadAccess::SUSPEND_RESUME,
                    SignalEffect::Terminate => ThreadAccess::TERMINATE,
                    SignalEffect::Notify => ThreadAccess::SET_INFORMATION,
                })
            }
            Self::Ptrace(request) => request.access(),
            Self::ProcessVmReadv => Access::Process(ProcessAccess::VM_READ),
            Self::ProcessVmWritev => {
                Access::Process(ProcessAccess::VM_WRITE | ProcessAccess::VM_OPERATION)
            }
            Self::PidfdGetfd { .. } => Access::Process(ProcessAccess::DUP_HANDLE),
        }
    }

    /// Whether the operation copies a handle out of the target (the reference's
    /// `duplication`).
    pub fn is_duplication(self) -> bool {
        matches!(self, Self::PidfdGetfd { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_or_ignored_signal_does_not_terminate() {
        let term = Operation::Kill(Signal(libc::SIGTERM));
        assert_eq!(
            term.desired_access_on(SignalDisposition::Caught),
            Access::Process(ProcessAccess::SET_INFORMATION)
        );
        assert_eq!(
            term.desired_access_on(SignalDisposition::Ignored),
            Access::Process(ProcessAccess::SET_INFORMATION)
        );
        assert_eq!(
            term.desired_access_on(SignalDisposition::Unknown),
            Access::Process(ProcessAccess::TERMINATE)
        );
        let tstp = Operation::Tgkill(Signal(libc::SIGTSTP));
        assert_eq!(
            tstp.desired_access_on(SignalDisposition::Caught),
            Access::Thread(ThreadAccess::SET_INFORMATION)
        );
        for uncatchable in [libc::SIGKILL, libc::SIGSTOP, libc::SIGCONT] {
            let op = Operation::Kill(Signal(uncatchable));
            assert_eq!(
                op.desired_access_on(SignalDisposition::Caught),
                op.desired_access()
            );
        }
    }

    #[test]
    fn fatal_signal_asks_to_terminate() {
        assert_eq!(
            Operation::Kill(Signal(libc::SIGKILL)).desired_access(),
            Access::Process(ProcessAccess::TERMINATE)
        );
        assert_eq!(
            Operation::PidfdSendSignal(Signal(libc::SIGTERM)).desired_access(),
            Access::Process(ProcessAccess::TERMINATE)
        );
        assert_eq!(
            Operation::Tgkill(Signal(libc::SIGUSR1)).desired_access(),
            Access::Thread(ThreadAccess::TERMINATE)
        );
        assert_eq!(
            Signal(libc::SIGRTMIN() + 1).effect(),
            SignalEffect::Terminate
        );
    }

    #[test]
    fn stop_and_continue_ask_to_suspend_resume() {
        for s in [libc::SIGSTOP, libc::SIGCONT, libc::SIGTSTP] {
            assert_eq!(
                Operation::Kill(Signal(s)).desired_access(),
                Access::Process(ProcessAccess::SUSPEND_RESUME)
            );
        }
        assert_eq!(
            Operation::Tkill(Signal(libc::SIGSTOP)).desired_access(),
            Access::Thread(ThreadAccess::SUSPEND_RESUME)
        );
    }

    #[test]
    fn probe_and_notification_signals() {
        assert_eq!(
            Operation::Kill(Signal(0)).desired_access(),
            Access::Process(ProcessAccess::QUERY_LIMITED_INFORMATION)
        );
        assert_eq!(
            Operation::Kill(Signal(libc::SIGCHLD)).desired_access(),
            Access::Process(ProcessAccess::SET_INFORMATION)
        );
    }

    #[test]
    fn ptrace_attach_asks_for_all_access() {
        for r in [
            PtraceRequest::ATTACH,
            PtraceRequest::SEIZE,
            PtraceRequest::TRACEME,
        ] {
            assert!(r.attaches());
            assert_eq!(
                Operation::Ptrace(r).desired_access(),
                Access::Process(ProcessAccess::ALL_ACCESS)
            );
        }
        assert_eq!(ProcessAccess::ALL_ACCESS.bits(), 0x001F_FFFF);
    }

    #[test]
    fn ptrace_requests_map_by_effect() {
        assert_eq!(
            PtraceRequest::PEEKDATA.access(),
            Access::Process(ProcessAccess::VM_READ)
        );
        assert_eq!(
            PtraceRequest(5).access(),
            Access::Process(ProcessAccess::VM_WRITE | ProcessAccess::VM_OPERATION)
        );
        assert_eq!(
            PtraceRequest(12).access(),
            Access::Thread(ThreadAccess::GET_CONTEXT)
        );
        assert_eq!(
            PtraceRequest(13).access(),
            Access::Thread(ThreadAccess::SET_CONTEXT)
        );
        assert_eq!(
            PtraceRequest::CONT.access(),
            Access::Thread(ThreadAccess::SUSPEND_RESUME)
        );
        assert_eq!(
            PtraceRequest::DETACH.access(),
            Access::Thread(ThreadAccess::SUSPEND_RESUME)
        );
        assert_eq!(
            PtraceRequest(0x9999).access(),
            Access::Thread(ThreadAccess::ALL_ACCESS)
        );
    }

    #[test]
    fn memory_access_and_duplication() {
        assert_eq!(
            Operation::ProcessVmReadv.desired_access(),
            Access::Process(ProcessAccess::VM_READ)
        );
        assert_eq!(
            Operation::ProcessVmWritev.desired_access().bits(),
            0x0020 | 0x0008
        );
        let dup = Operation::PidfdGetfd { fd: 3 };
        assert!(dup.is_duplication());
        assert_eq!(
            dup.desired_access(),
            Access::Process(ProcessAccess::DUP_HANDLE)
        );
    }
}
