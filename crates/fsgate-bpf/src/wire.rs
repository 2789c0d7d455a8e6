//! The records the BPF programs write to the ring buffer (`src/bpf/tracer.h`), decoded.
//!
//! Decoding is pure: it trusts nothing about the bytes and fails with a message on a record
//! that is too short or of an unknown kind. Looking a thread's process up in `/proc` is left
//! to the caller ([`ThreadProcess`]).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::event::{Event, ExecRecord, ExecSyscall, HandleOperation, Target};
use crate::operation::{Operation, PtraceRequest, Signal, SignalDisposition};

const RECORD_HANDLE_OPERATION: u32 = 1;
const RECORD_EXEC: u32 = 2;

const OP_KILL: u32 = 1;
const OP_TGKILL: u32 = 2;
const OP_TKILL: u32 = 3;
const OP_PIDFD_SEND_SIGNAL: u32 = 4;
const OP_PTRACE: u32 = 5;
const OP_PROCESS_VM_READV: u32 = 6;
const OP_PROCESS_VM_WRITEV: u32 = 7;
const OP_PIDFD_GETFD: u32 = 8;

const HANDLE_RECORD_SIZE: usize = 48;

const HANDLE_FROM_SIGNAL_GENERATE: u32 = 2;
const HANDLE_SIGNAL_CAUGHT: u32 = 4;
const HANDLE_SIGNAL_IGNORED: u32 = 8;
const HANDLE_SIGNAL_DISPOSITION_UNKNOWN: u32 = 16;
const HANDLE_ORIGINATOR_FILTERED: u32 = 32;

const EXEC_ARGS_TRUNCATED: u32 = 1;
const EXEC_PATH_TRUNCATED: u32 = 2;
const EXEC_SYSCALL_EXECVE: u32 = 4;
const EXEC_SYSCALL_EXECVEAT: u32 = 8;
const EXEC_HEADER_SIZE: usize = 40;
const FILE_NAME_AREA: usize = 256;
const PATH_AREA: usize = 4096;
const PATH_SLACK: usize = 256;
const ARGS_OFFSET: usize = EXEC_HEADER_SIZE + FILE_NAME_AREA + PATH_AREA + PATH_SLACK;

/// Finds the process a thread belongs to, for operations whose call named only a thread.
pub(crate) trait ThreadProcess {
    /// The thread's process id, if the thread still exists.
    fn process_of(&self, thread_id: u32) -> Option<u32>;
}

/// Decodes one ring buffer record.
pub(crate) fn decode(bytes: &[u8], threads: &dyn ThreadProcess) -> Result<Event, String> {
    match u32_at(bytes, 0)? {
        RECORD_HANDLE_OPERATION => decode_handle(bytes, threads).map(Event::HandleOperation),
        RECORD_EXEC => decode_exec(bytes).map(Event::Exec),
        other => Err(format!("record of unknown kind {other}")),
    }
}

fn u32_at(bytes: &[u8], offset: usize) -> Result<u32, String> {
    bytes
        .get(offset..offset + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or_else(|| {
            format!(
                "record of {} bytes too short for offset {offset}",
                bytes.len()
            )
        })
}

fn u64_at(bytes: &[u8], offset: usize) -> Result<u64, String> {
    bytes
        .get(offset..offset + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_ne_bytes)
        .ok_or_else(|| {
            format!(
                "record of {} bytes too short for offset {offset}",
                bytes.len()
            )
        })
}

fn decode_handle(bytes: &[u8], threads: &dyn ThreadProcess) -> Result<HandleOperation, String> {
    if bytes.len() < HANDLE_RECORD_SIZE {
        return Err(format!("handle record of {} bytes", bytes.len()));
    }
    let operation_code = u32_at(bytes, 4)?;
    let originator_process_id = u32_at(bytes, 8)?;
    let originator_thread_id = u32_at(bytes, 12)?;
    let originator_user_id = u32_at(bytes, 16)?;
    let target_pid = u32_at(bytes, 20)? as i32;
    let target_tid = u32_at(bytes, 24)? as i32;
    let flags = u32_at(bytes, 28)?;
    let argument = u64_at(bytes, 32)?;
    let result = u64_at(bytes, 40)? as i64;
    let signal = Signal(argument as i32);
    let positive = |id: i32| u32::try_from(id).unwrap_or(0);

    let operation = match operation_code {
        OP_KILL => Operation::Kill(signal),
        OP_TGKILL => Operation::Tgkill(signal),
        OP_TKILL => Operation::Tkill(signal),
        OP_PIDFD_SEND_SIGNAL => Operation::PidfdSendSignal(signal),
        OP_PTRACE => Operation::Ptrace(PtraceRequest(argument)),
        OP_PROCESS_VM_READV => Operation::ProcessVmReadv,
        OP_PROCESS_VM_WRITEV => Operation::ProcessVmWritev,
        OP_PIDFD_GETFD => Operation::PidfdGetfd {
            fd: argument as i32,
        },
        other => return Err(format!("handle record of unknown operation {other}")),
    };
    let signal_disposition = (flags & HANDLE_FROM_SIGNAL_GENERATE != 0).then_some(
        if flags & HANDLE_SIGNAL_DISPOSITION_UNKNOWN != 0 {
            SignalDisposition::Unknown
        } else if flags & HANDLE_SIGNAL_IGNORED != 0 {
            SignalDisposition::Ignored
        } else if flags & HANDLE_SIGNAL_CAUGHT != 0 {
            SignalDisposition::Caught
        } else {
            SignalDisposition::Default
        },
    );
    let desired_access =
        operation.desired_access_on(signal_disposition.unwrap_or(SignalDisposition::Default));
    let target = match operation {
        Operation::Tgkill(_) => Target::Thread {
            process: positive(target_pid),
            thread: positive(target_tid),
        },
        Operation::Tkill(_) => Target::Thread {
            process: process_of(positive(target_pid), positive(target_tid), threads),
            thread: positive(target_tid),
        },
        Operation::Ptrace(_) => {
            let thread = positive(target_tid);
            let process = process_of(positive(target_pid), thread, threads);
            if desired_access.is_thread() {
                Target::Thread { process, thread }
            } else {
                Target::Process(process)
            }
        }
        _ => Target::Process(positive(target_pid)),
    };
    let (process_id, thread_id) = match target {
        Target::Process(p) => (p, 0),
        Target::Thread { process, thread } => (process, thread),
    };
    // A ptrace request on a process (attach, memory) names one of its threads: keep it.
    let thread_id = match operation {
        Operation::Ptrace(_) => positive(target_tid),
        _ => thread_id,
    };
    let duplication = operation.is_duplication();
    Ok(HandleOperation {
        operation,
        target,
        signal_disposition,
        originator_filtered: flags & HANDLE_ORIGINATOR_FILTERED != 0,
        duplication,
        process_id,
        thread_id,
        originator_process_id,
        originator_thread_id,
        originator_user_id,
        source_process_id: if duplication { process_id } else { 0 },
        target_process_id: if duplication {
            originator_process_id
        } else {
            0
        },
        desired_access,
        granted_access: if result >= 0 {
            desired_access
        } else {
            desired_access.none()
        },
        result,
    })
}

/// The process the kernel resolved, or else the one `/proc` knows for the thread.
fn process_of(resolved: u32, thread: u32, threads: &dyn ThreadProcess) -> u32 {
    if resolved != 0 {
        return resolved;
    }
    threads.process_of(thread).unwrap_or(0)
}

fn decode_exec(bytes: &[u8]) -> Result<ExecRecord, String> {
    if bytes.len() < ARGS_OFFSET {
        return Err(format!("exec record of {} bytes", bytes.len()));
    }
    let flags = u32_at(bytes, 20)?;
    let path_offset = u32_at(bytes, 24)? as usize;
    let file_name_len = (u32_at(bytes, 28)? as usize).min(FILE_NAME_AREA);
    let args_len = u32_at(bytes, 32)? as usize;
    let file_name_start = EXEC_HEADER_SIZE;
    let path_start = file_name_start + FILE_NAME_AREA;
    if path_offset >= PATH_AREA {
        return Err(format!("exec record with path offset {path_offset}"));
    }
    let args = bytes
        .get(ARGS_OFFSET..ARGS_OFFSET + args_len)
        .ok_or_else(|| {
            format!(
                "exec record of {} bytes, {args_len} of arguments",
                bytes.len()
            )
        })?;
    let syscall = if flags & EXEC_SYSCALL_EXECVE != 0 {
        Some(ExecSyscall::Execve)
    } else if flags & EXEC_SYSCALL_EXECVEAT != 0 {
        Some(ExecSyscall::Execveat)
    } else {
        None
    };
    Ok(ExecRecord {
        process_id: u32_at(bytes, 4)?,
        thread_id: u32_at(bytes, 8)?,
        parent_process_id: u32_at(bytes, 12)?,
        user_id: u32_at(bytes, 16)?,
        syscall,
        image_path: PathBuf::from(OsString::from_vec(
            bytes[path_start + path_offset..path_start + PATH_AREA].to_vec(),
        )),
        file_name: OsString::from_vec(
            bytes[file_name_start..file_name_start + file_name_len].to_vec(),
        ),
        arguments: split_arguments(args),
        arguments_truncated: flags & EXEC_ARGS_TRUNCATED != 0,
        path_truncated: flags & EXEC_PATH_TRUNCATED != 0,
    })
}

/// The NUL-terminated strings of an argument area (a last one without its NUL, cut by
/// truncation, is kept).
fn split_arguments(area: &[u8]) -> Vec<OsString> {
    let area = area.strip_suffix(&[0]).unwrap_or(area);
    if area.is_empty() {
        return Vec::new();
    }
    area.split(|b| *b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Access, ProcessAccess, ThreadAccess};

    struct NoThreads;
    impl ThreadProcess for NoThreads {
        fn process_of(&self, _: u32) -> Option<u32> {
            None
        }
    }

    struct SameProcess(u32);
    impl ThreadProcess for SameProcess {
        fn process_of(&self, _: u32) -> Option<u32> {
            Some(self.0)
        }
    }

    fn handle_record(
        op: u32,
        target_pid: i32,
        target_tid: i32,
        argument: u64,
        result: i64,
    ) -> Vec<u8> {
        let flags = if op <= OP_PIDFD_SEND_SIGNAL {
            HANDLE_FROM_SIGNAL_GENERATE
        } else {
            0
        };
        flagged_record(op, target_pid, target_tid, argument, result, flags)
    }

    fn flagged_record(
        op: u32,
        target_pid: i32,
        target_tid: i32,
        argument: u64,
        result: i64,
        flags: u32,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [RECORD_HANDLE_OPERATION, op, 100, 101, 1000] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&target_pid.to_ne_bytes());
        b.extend_from_slice(&target_tid.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&argument.to_ne_bytes());
        b.extend_from_slice(&result.to_ne_bytes());
        b
    }

    fn handle(bytes: &[u8], threads: &dyn ThreadProcess) -> HandleOperation {
        match decode(bytes, threads) {
            Ok(Event::HandleOperation(h)) => h,
            other => panic!("not a handle operation: {other:?}"),
        }
    }

    #[test]
    fn successful_kill_grants_terminate() {
        let h = handle(&handle_record(OP_KILL, 200, 0, 9, 0), &NoThreads);
        assert_eq!(h.operation, Operation::Kill(Signal(9)));
        assert_eq!(h.target, Target::Process(200));
        assert_eq!((h.process_id, h.thread_id), (200, 0));
        assert_eq!(
            (
                h.originator_process_id,
                h.originator_thread_id,
                h.originator_user_id
            ),
            (100, 101, 1000)
        );
        assert_eq!(h.granted_access, Access::Process(ProcessAccess::TERMINATE));
        assert!(h.succeeded());
    }

    #[test]
    fn restricting_access_is_refused_with_the_reason() {
        let h = handle(&handle_record(OP_KILL, 200, 0, 9, 0), &NoThreads);
        assert!(h
            .check_desired_access(ProcessAccess::TERMINATE.bits())
            .is_ok());
        let e = h
            .check_desired_access(0)
            .expect_err("stripping access must fail");
        assert_eq!(e.code(), fsgate_core::code::ERROR_NOT_SUPPORTED);
        assert!(e.message().contains("kill"), "{e}");
        assert!(e.message().contains("BPF LSM"), "{e}");
    }

    #[test]
    fn failed_call_grants_nothing() {
        let h = handle(
            &handle_record(OP_KILL, 200, 0, 15, -i64::from(libc::EPERM)),
            &NoThreads,
        );
        assert_eq!(h.desired_access, Access::Process(ProcessAccess::TERMINATE));
        assert_eq!(h.granted_access, Access::Process(ProcessAccess::empty()));
        assert_eq!(h.errno(), Some(libc::EPERM));
    }

    #[test]
    fn a_signal_the_target_catches_or_ignores_is_not_fatal() {
        let caught = handle(
            &flagged_record(
                OP_KILL,
                200,
                0,
                15,
                0,
                HANDLE_FROM_SIGNAL_GENERATE | HANDLE_SIGNAL_CAUGHT,
            ),
            &NoThreads,
        );
        assert_eq!(caught.signal_disposition, Some(SignalDisposition::Caught));
        assert_eq!(
            caught.desired_access,
            Access::Process(ProcessAccess::SET_INFORMATION)
        );
        let ignored = handle(
            &flagged_record(
                OP_TGKILL,
                200,
                201,
                15,
                0,
                HANDLE_FROM_SIGNAL_GENERATE | HANDLE_SIGNAL_IGNORED,
            ),
            &NoThreads,
        );
        assert_eq!(ignored.signal_disposition, Some(SignalDisposition::Ignored));
        assert_eq!(
            ignored.granted_access,
            Access::Thread(ThreadAccess::SET_INFORMATION)
        );
        let default = handle(&handle_record(OP_KILL, 200, 0, 15, 0), &NoThreads);
        assert_eq!(default.signal_disposition, Some(SignalDisposition::Default));
        assert_eq!(
            default.desired_access,
            Access::Process(ProcessAccess::TERMINATE)
        );
        let full_queue = handle(
            &handle_record(OP_KILL, 200, 0, 40, -i64::from(libc::EAGAIN)),
            &NoThreads,
        );
        assert_eq!(
            full_queue.granted_access,
            Access::Process(ProcessAccess::empty())
        );
        let ptrace = handle(&handle_record(OP_PTRACE, 0, 400, 16, 0), &SameProcess(400));
        assert_eq!(ptrace.signal_disposition, None);
        assert!(!ptrace.originator_filtered);
        let filtered = handle(
            &flagged_record(OP_PTRACE, 0, 400, 16, 0, HANDLE_ORIGINATOR_FILTERED),
            &SameProcess(400),
        );
        assert!(filtered.originator_filtered);
    }

    #[test]
    fn tkill_looks_up_the_threads_process() {
        let h = handle(&handle_record(OP_TKILL, 0, 301, 10, 0), &SameProcess(300));
        assert_eq!(
            h.target,
            Target::Thread {
                process: 300,
                thread: 301
            }
        );
        assert_eq!(h.granted_access, Access::Thread(ThreadAccess::TERMINATE));
        assert!(h.is_thread_operation());
        let gone = handle(&handle_record(OP_TKILL, 0, 301, 10, 0), &NoThreads);
        assert_eq!(
            gone.target,
            Target::Thread {
                process: 0,
                thread: 301
            }
        );
    }

    #[test]
    fn ptrace_attach_is_a_process_operation() {
        let h = handle(&handle_record(OP_PTRACE, 0, 400, 16, 0), &SameProcess(400));
        assert_eq!(h.target, Target::Process(400));
        assert_eq!((h.process_id, h.thread_id), (400, 400));
        assert_eq!(h.granted_access, Access::Process(ProcessAccess::ALL_ACCESS));
        let regs = handle(&handle_record(OP_PTRACE, 0, 401, 12, 0), &SameProcess(400));
        assert_eq!(
            regs.target,
            Target::Thread {
                process: 400,
                thread: 401
            }
        );
        assert!(regs.is_thread_operation());
    }

    #[test]
    fn pidfd_getfd_is_a_duplication_into_the_caller() {
        let h = handle(&handle_record(OP_PIDFD_GETFD, 500, 0, 3, 7), &NoThreads);
        assert!(h.duplication);
        assert_eq!(h.operation, Operation::PidfdGetfd { fd: 3 });
        assert_eq!((h.source_process_id, h.target_process_id), (500, 100));
        assert_eq!(h.granted_access, Access::Process(ProcessAccess::DUP_HANDLE));
    }

    fn exec_record(path: &str, name: &str, args: &[u8], flags: u32) -> Vec<u8> {
        let mut b = Vec::new();
        let offset = (PATH_AREA - path.len()) as u32;
        for v in [
            RECORD_EXEC,
            600,
            601,
            1,
            0,
            flags,
            offset,
            name.len() as u32,
            args.len() as u32,
            0,
        ] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        let mut file_name = vec![0u8; FILE_NAME_AREA];
        file_name[..name.len()].copy_from_slice(name.as_bytes());
        b.extend_from_slice(&file_name);
        let mut path_area = vec![0u8; PATH_AREA + PATH_SLACK];
        path_area[offset as usize..PATH_AREA].copy_from_slice(path.as_bytes());
        b.extend_from_slice(&path_area);
        b.extend_from_slice(args);
        b
    }

    #[test]
    fn exec_record_carries_path_name_and_arguments() {
        let bytes = exec_record(
            "/usr/bin/true",
            "true",
            b"true\0a b\0\0c\0",
            EXEC_SYSCALL_EXECVE,
        );
        let Ok(Event::Exec(e)) = decode(&bytes, &NoThreads) else {
            panic!("not an exec record");
        };
        assert_eq!(
            (e.process_id, e.thread_id, e.parent_process_id),
            (600, 601, 1)
        );
        assert_eq!(e.image_path, PathBuf::from("/usr/bin/true"));
        assert_eq!(e.file_name, OsString::from("true"));
        assert_eq!(e.syscall, Some(ExecSyscall::Execve));
        assert_eq!(e.arguments, ["true", "a b", "", "c"].map(OsString::from));
        assert_eq!(e.command_line(), "true a b  c");
        assert!(!e.arguments_truncated && !e.path_truncated);
    }

    #[test]
    fn truncated_arguments_keep_the_cut_one() {
        let bytes = exec_record("/x", "/x", b"x\0abc", EXEC_ARGS_TRUNCATED);
        let Ok(Event::Exec(e)) = decode(&bytes, &NoThreads) else {
            panic!("not an exec record");
        };
        assert_eq!(e.arguments, ["x", "abc"].map(OsString::from));
        assert!(e.arguments_truncated);
        assert_eq!(e.syscall, None);
    }

    #[test]
    fn short_or_unknown_records_are_errors() {
        assert!(decode(&[1, 0], &NoThreads).is_err());
        assert!(decode(&9u32.to_ne_bytes(), &NoThreads).is_err());
        let mut bytes = exec_record("/x", "/x", b"x\0", 0);
        bytes.truncate(ARGS_OFFSET + 1);
        assert!(decode(&bytes, &NoThreads).is_err());
        let bad_op = handle_record(99, 1, 0, 0, 0);
        assert!(decode(&bad_op, &NoThreads).is_err());
    }
}
