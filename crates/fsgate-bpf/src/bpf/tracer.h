/* Records the BPF programs send to user space through the ring buffer. The Rust side decodes
 * them in src/wire.rs; keep both in step (all fields native-endian, no implicit padding). */
#ifndef FSGATE_TRACER_H
#define FSGATE_TRACER_H

#define RECORD_HANDLE_OPERATION 1
#define RECORD_EXEC 2

/* The system call behind a handle operation. */
#define OP_KILL 1
#define OP_TGKILL 2
#define OP_TKILL 3
#define OP_PIDFD_SEND_SIGNAL 4
#define OP_PTRACE 5
#define OP_PROCESS_VM_READV 6
#define OP_PROCESS_VM_WRITEV 7
#define OP_PIDFD_GETFD 8

/* handle_record.flags */
#define HANDLE_TARGET_FROM_PIDFD 1 /* target_pid was resolved from a pidfd */
#define HANDLE_FROM_SIGNAL_GENERATE 2 /* a signal, seen when the kernel generated it */
#define HANDLE_SIGNAL_CAUGHT 4	/* the target has a handler for the signal */
#define HANDLE_SIGNAL_IGNORED 8	/* the target ignores the signal (SIG_IGN) */
#define HANDLE_SIGNAL_DISPOSITION_UNKNOWN 16 /* the target's sighand table was unreadable */
#define HANDLE_ORIGINATOR_FILTERED 32 /* a filter was active and the originator is in it */

struct handle_record {
	__u32 kind;		/* RECORD_HANDLE_OPERATION */
	__u32 operation;	/* OP_* */
	__u32 pid;		/* originator's process (tgid) */
	__u32 tid;		/* originator's thread */
	__u32 uid;		/* originator's real uid */
	__s32 target_pid;	/* the process acted on (a thread id resolved to its process; 0 if unknown);
				 * signals: the process the signal was generated for (one record per
				 * process of a group); pidfd: resolved, 0 if not a pidfd */
	__s32 target_tid;	/* tgkill, tkill, ptrace: the thread named; else 0 */
	__u32 flags;		/* HANDLE_* */
	__u64 argument;		/* signal number, ptrace request, or the fd pidfd_getfd copies */
	__s64 result;		/* the call's return value (-errno when it failed); signals: 0, or
				 * -EAGAIN when the target's queue was full */
};

/* exec_record.flags */
#define EXEC_ARGS_TRUNCATED 1
#define EXEC_PATH_TRUNCATED 2
#define EXEC_SYSCALL_EXECVE 4
#define EXEC_SYSCALL_EXECVEAT 8

#define PATH_AREA 4096		/* the image path is written backwards, ending here */
#define PATH_SLACK 256		/* room for one name written at a masked offset */
#define NAME_FROM_KERNEL_MAX 256
#define ARGS_MAX 24576 /* with the rest, under the 32 KiB limit of a per-CPU map value */

struct exec_header {
	__u32 kind;		/* RECORD_EXEC */
	__u32 pid;		/* the process now running the new image */
	__u32 tid;		/* the thread that called exec (its id before exec made it the leader) */
	__u32 ppid;		/* its parent process */
	__u32 uid;		/* real uid */
	__u32 flags;		/* EXEC_* */
	__u32 path_offset;	/* the image path is path[path_offset .. PATH_AREA] */
	__u32 file_name_len;	/* bytes of file_name used, without the NUL */
	__u32 args_len;		/* bytes of args used */
	__u32 reserved;
};

struct exec_record {
	struct exec_header header;
	char file_name[NAME_FROM_KERNEL_MAX];	/* the name the exec was asked for (bprm->filename) */
	char path[PATH_AREA + PATH_SLACK];	/* the opened image, a full path */
	char args[ARGS_MAX];			/* argv strings, each ending in NUL */
};

#endif
