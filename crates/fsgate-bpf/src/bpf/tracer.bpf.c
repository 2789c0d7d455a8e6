// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* fsgate's tracepoint programs: process and thread handle operations (signals, ptrace,
 * process_vm_readv/writev, pidfd_getfd) and exec records (image path and argv read at exec
 * time). Signals are seen where the kernel generates them (signal/signal_generate), which
 * is not a system call tracepoint: attaching any sys_enter/sys_exit tracepoint puts every
 * system call of every task on the kernel's traced path (TIF_SYSCALL_TRACEPOINT). ptrace,
 * process_vm_readv/writev and pidfd_getfd have no other tracepoint: each is remembered at
 * sys_enter and sent with its result at sys_exit, and user space attaches those programs
 * only when asked. Processes are matched against the ignore and filter maps here, so
 * operations nobody asked for never reach user space. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tracer.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Values of ignored_pids and filtered_pids */
#define RULE_CHILDREN 1	 /* children forked later get the rule too */
#define RULE_INHERITED 2 /* the entry came from a parent's rule: removed when the task exits */
#define RULE_BY_NAME 4	 /* the entry came from a rule by image name: removed when the task
			  * exits or execs an image of another name */

/* Values of name_rules: which lists a plain image name is in. */
#define NAME_FILTERED 1
#define NAME_FILTERED_CHILDREN 2
#define NAME_IGNORED 4
#define NAME_IGNORED_CHILDREN 8
#define NAME_KEY 64 /* longest plain name the kernel matches, with its NUL */

/* settings[0] */
struct settings {
	__u32 filter_active; /* nonzero: report only what a filtered process does or suffers */
	__u32 events;	     /* EVENTS_* */
	__u32 exec_all;	     /* nonzero: exec records of every process, whatever the rules */
	__u32 exec_ring;     /* nonzero: exec records go to exec_events, else to events */
};
#define EVENTS_HANDLE 1
#define EVENTS_EXEC 2

/* Handle operation records (and exec records unless user space reads those apart). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

/* Exec records, when user space reads them apart from handle operations (in step with the
 * process connector, whose exec record the kernel sends after this one). User space sizes
 * both rings before loading. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} exec_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} settings SEC(".maps");

/* Processes (tgid) whose operations are never reported. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} ignored_pids SEC(".maps");

/* With filter_active: the processes (tgid) whose operations, or operations on which, are
 * reported. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} filtered_pids SEC(".maps");

/* Rules by plain image name (no wildcard, no directory): the last component of the image a
 * process runs, as /proc/<pid>/exe shows it, NUL-padded. Matched at exec; a match adds the
 * process to ignored_pids / filtered_pids. Other name rules are matched in user space. */
struct name_key {
	char name[NAME_KEY];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct name_key);
	__type(value, __u8);
} name_rules SEC(".maps");

/* Scratch space for one name key (a per-CPU array: too large to zero on the stack cheaply
 * in every exec). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct name_key);
} name_scratch SEC(".maps");

/* Handle operations between sys_enter and sys_exit, by thread id. A plain (preallocated)
 * hash: cheaper than an LRU one on every call; an entry whose sys_exit never comes (the
 * caller killed itself) is removed when the thread exits. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct handle_record);
} pending_ops SEC(".maps");

/* Scratch space for one exec record (too large for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_record);
} exec_scratch SEC(".maps");

/* Records the ring buffer had no room for (user space fell behind). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_records SEC(".maps");

static __always_inline void send(void *ring, void *record, __u64 size, __u64 flags)
{
	if (bpf_ringbuf_output(ring, record, size, flags)) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&lost_records, &zero);
		if (lost)
			__sync_fetch_and_add(lost, 1);
	}
}

static __always_inline struct settings *get_settings(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&settings, &zero);
}

static __always_inline bool is_ignored(__u32 tgid)
{
	return bpf_map_lookup_elem(&ignored_pids, &tgid) != NULL;
}

static __always_inline bool is_filtered(__u32 tgid)
{
	return bpf_map_lookup_elem(&filtered_pids, &tgid) != NULL;
}

/* HANDLE_ORIGINATOR_FILTERED when a filter is active and selects `originator`. */
static __always_inline __u32 originator_flags(struct settings *s, __u32 originator)
{
	return s->filter_active && is_filtered(originator) ? HANDLE_ORIGINATOR_FILTERED : 0;
}

/* Whether an operation by `originator` on `target` (0: none known) is to be reported. */
static __always_inline bool wanted(struct settings *s, __u32 originator, __s32 target)
{
	if (is_ignored(originator))
		return false;
	if (!s->filter_active)
		return true;
	return is_filtered(originator) || (target > 0 && is_filtered((__u32)target));
}

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;

/* The process (tgid) of the thread with id `tid` in the initial pid namespace; 0 when there
 * is no such thread, or the kernel lacks the bpf_task_from_pid kfunc (Linux < 6.2: user
 * space then looks it up in /proc). */
static __always_inline __s32 tgid_of(__s32 tid)
{
	struct task_struct *task;
	__s32 tgid;

	if (tid <= 0 || !bpf_ksym_exists(bpf_task_from_pid))
		return 0;
	task = bpf_task_from_pid(tid);
	if (!task)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	bpf_task_release(task);
	return tgid;
}

/* The process a positive pid argument acts on (a thread id names its process). */
static __always_inline __s32 process_of(__s32 pid)
{
	__s32 tgid = tgid_of(pid);
	return tgid ? tgid : pid;
}

/* Superblock magics of the filesystems pidfds live on: pidfs (Linux 6.9+), anon_inode before. */
#define PID_FS_MAGIC 0x50494446
#define ANON_INODE_FS_MAGIC 0x09041934

/* The process a pidfd held by the current task refers to; 0 when fd is not a pidfd. */
static __always_inline __s32 pidfd_target(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *file = NULL;
	struct pid *pid;
	unsigned long magic;
	__s32 nr = 0;

	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	/* A pidfd's struct pid is its pidfs inode's i_private (recent kernels) or its file's
	 * private_data (pidfs in 6.9-6.13, anon_inode before). The call fails with EBADF for
	 * any other fd (the record's result says so), so a target read from another file is
	 * only ever reported with a failed result. numbers[0] is the number in the initial pid
	 * namespace, the one the rest of fsgate uses. */
	magic = BPF_CORE_READ(file, f_inode, i_sb, s_magic);
	if (magic != PID_FS_MAGIC && magic != ANON_INODE_FS_MAGIC)
		return 0;
	pid = NULL;
	if (magic == PID_FS_MAGIC)
		pid = (struct pid *)BPF_CORE_READ(file, f_inode, i_private);
	if (!pid)
		pid = (struct pid *)BPF_CORE_READ(file, private_data);
	if (!pid)
		return 0;
	bpf_probe_read_kernel(&nr, sizeof(nr), &pid->numbers[0].nr);
	return nr;
}

static __always_inline int remember_op(__u32 operation, __s32 target_pid, __s32 target_tid,
				       __u64 argument, __u32 flags)
{
	struct settings *s = get_settings();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;
	struct handle_record rec = {};

	if (!s || !(s->events & EVENTS_HANDLE))
		return 0;
	if (!wanted(s, tgid, target_pid > 0 ? target_pid : target_tid))
		return 0;
	rec.kind = RECORD_HANDLE_OPERATION;
	rec.operation = operation;
	rec.pid = tgid;
	rec.tid = tid;
	rec.uid = (__u32)bpf_get_current_uid_gid();
	rec.target_pid = target_pid;
	rec.target_tid = target_tid;
	rec.flags = flags | originator_flags(s, tgid);
	rec.argument = argument;
	bpf_map_update_elem(&pending_ops, &tid, &rec, BPF_ANY);
	return 0;
}

static __always_inline int finish_op(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct handle_record *rec = bpf_map_lookup_elem(&pending_ops, &tid);

	if (!rec)
		return 0;
	rec->result = ctx->ret;
	send(&events, rec, sizeof(*rec), 0);
	bpf_map_delete_elem(&pending_ops, &tid);
	return 0;
}

/* --- signals --- */

/* System call numbers of the calls that send a signal to another task. */
#if defined(__TARGET_ARCH_x86)
#define NR_KILL 62
#define NR_TKILL 200
#define NR_TGKILL 234
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#elif defined(__TARGET_ARCH_arm64)
#define NR_KILL 129
#define NR_TKILL 130
#define NR_TGKILL 131
#define NR_EXECVE 221
#define NR_EXECVEAT 281
#else
#error "fsgate-bpf knows the system call numbers of x86_64 and arm64 only"
#endif
#define NR_PIDFD_SEND_SIGNAL 424

/* The system call the current task is in (-1 outside one). */
static __always_inline long syscall_nr(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, orig_ax);
#else
	return BPF_CORE_READ(regs, syscallno);
#endif
}

/* signal_generate's result: the signal was dropped because the queue was full (the call
 * fails with EAGAIN). */
#define TRACE_SIGNAL_OVERFLOW_FAIL 3
#define EAGAIN 11
#define SIG_IGN_VALUE 1

/* What the target does with `sig` (HANDLE_SIGNAL_* flags): whether it has a handler for it
 * or ignores it, read from its sighand table when the signal is generated. */
static __always_inline __u32 disposition(struct task_struct *task, int sig)
{
	struct sighand_struct *sighand = BPF_CORE_READ(task, sighand);
	unsigned long handler = 0;

	if (!sighand || sig < 1 || sig > 64)
		return HANDLE_SIGNAL_DISPOSITION_UNKNOWN;
	if (bpf_probe_read_kernel(&handler, sizeof(handler),
				  &sighand->action[(sig - 1) & 63].sa.sa_handler))
		return HANDLE_SIGNAL_DISPOSITION_UNKNOWN;
	if (handler == SIG_IGN_VALUE)
		return HANDLE_SIGNAL_IGNORED;
	return handler ? HANDLE_SIGNAL_CAUGHT : 0;
}

/* A signal the kernel generated for `task`: reported when the current task made it with
 * kill, tkill, tgkill or pidfd_send_signal (not a signal the kernel sends on its own, such
 * as SIGCHLD at an exit or SIGSEGV at a fault). Signal 0 and calls the kernel refused
 * (EPERM, ESRCH, EINVAL) generate nothing and are not seen here. */
static __always_inline int signal_generated(int sig, struct task_struct *task, int group,
					    int result)
{
	struct settings *s = get_settings();
	__u64 pid_tgid;
	__u32 tgid, operation;
	__s32 target_pid, target_tid;
	struct handle_record rec = {};
	long nr;

	if (!s || !(s->events & EVENTS_HANDLE) || !task)
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	tgid = pid_tgid >> 32;
	target_pid = BPF_CORE_READ(task, tgid);
	if (!wanted(s, tgid, target_pid))
		return 0;
	nr = syscall_nr();
	if (nr == NR_KILL)
		operation = OP_KILL;
	else if (nr == NR_TGKILL)
		operation = OP_TGKILL;
	else if (nr == NR_TKILL)
		operation = OP_TKILL;
	else if (nr == NR_PIDFD_SEND_SIGNAL)
		operation = OP_PIDFD_SEND_SIGNAL;
	else
		return 0;
	target_tid = group ? 0 : BPF_CORE_READ(task, pid);
	rec.kind = RECORD_HANDLE_OPERATION;
	rec.operation = operation;
	rec.pid = tgid;
	rec.tid = (__u32)pid_tgid;
	rec.uid = (__u32)bpf_get_current_uid_gid();
	rec.target_pid = target_pid;
	rec.target_tid = target_tid;
	rec.flags = HANDLE_FROM_SIGNAL_GENERATE | disposition(task, sig) | originator_flags(s, tgid);
	rec.argument = sig;
	rec.result = result == TRACE_SIGNAL_OVERFLOW_FAIL ? -EAGAIN : 0;
	send(&events, &rec, sizeof(rec), 0);
	return 0;
}

/* The BTF-enabled tracepoint: the kernel's own arguments, the cheapest way in. */
SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate_btf, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	return signal_generated(sig, task, group, result);
}

/* The classic tracepoint, for kernels that refuse BTF-enabled ones: the target is looked up
 * by its thread id (Linux 6.2+; before, its disposition is unknown and a thread id names its
 * process). */
SEC("tracepoint/signal/signal_generate")
int signal_generate_tp(struct trace_event_raw_signal_generate *ctx)
{
	struct task_struct *task;
	int ret;

	if (!bpf_ksym_exists(bpf_task_from_pid))
		return 0;
	task = bpf_task_from_pid(ctx->pid);
	if (!task)
		return 0;
	ret = signal_generated(ctx->sig, task, ctx->group, ctx->result);
	bpf_task_release(task);
	return ret;
}

SEC("tracepoint/syscalls/sys_enter_ptrace")
int enter_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	/* PTRACE_TRACEME names no target: the caller offers itself to its parent. */
	if (ctx->args[0] == 0) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		return remember_op(OP_PTRACE, tgid, (__s32)(__u32)bpf_get_current_pid_tgid(), 0, 0);
	}
	__s32 tid = (__s32)ctx->args[1];
	return remember_op(OP_PTRACE, tgid_of(tid), tid, ctx->args[0], 0);
}

SEC("tracepoint/syscalls/sys_enter_process_vm_readv")
int enter_process_vm_readv(struct trace_event_raw_sys_enter *ctx)
{
	return remember_op(OP_PROCESS_VM_READV, process_of((__s32)ctx->args[0]), 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_process_vm_writev")
int enter_process_vm_writev(struct trace_event_raw_sys_enter *ctx)
{
	return remember_op(OP_PROCESS_VM_WRITEV, process_of((__s32)ctx->args[0]), 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_pidfd_getfd")
int enter_pidfd_getfd(struct trace_event_raw_sys_enter *ctx)
{
	return remember_op(OP_PIDFD_GETFD, pidfd_target((int)ctx->args[0]), 0, ctx->args[1],
			   HANDLE_TARGET_FROM_PIDFD);
}

SEC("tracepoint/syscalls/sys_exit_ptrace")
int exit_ptrace(struct trace_event_raw_sys_exit *ctx) { return finish_op(ctx); }
SEC("tracepoint/syscalls/sys_exit_process_vm_readv")
int exit_process_vm_readv(struct trace_event_raw_sys_exit *ctx) { return finish_op(ctx); }
SEC("tracepoint/syscalls/sys_exit_process_vm_writev")
int exit_process_vm_writev(struct trace_event_raw_sys_exit *ctx) { return finish_op(ctx); }
SEC("tracepoint/syscalls/sys_exit_pidfd_getfd")
int exit_pidfd_getfd(struct trace_event_raw_sys_exit *ctx) { return finish_op(ctx); }

/* --- exec records --- */

static __always_inline bool exec_wanted(struct settings *s, __u32 tgid)
{
	if (!(s->events & EVENTS_EXEC))
		return false;
	if (s->exec_all)
		return true;
	if (is_ignored(tgid))
		return false;
	return !s->filter_active || is_filtered(tgid);
}

#define MAX_PATH_COMPONENTS 64

struct path_walk {
	struct exec_record *rec;
	struct dentry *dentry;
	struct mount *mnt;
	__u32 offset;
};

/* One step of the walk from a file to the root: prepend one name, or cross one mount point.
 * Run through bpf_loop so the verifier checks one step, not 64 unrolled ones. */
static long path_step(__u32 index, void *data)
{
	struct path_walk *walk = data;
	struct exec_record *rec = walk->rec;
	struct dentry *dentry = walk->dentry;
	struct mount *mnt = walk->mnt;
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
	__u32 offset = walk->offset;
	struct qstr name;
	__u32 len;

	if (dentry == mnt_root || dentry == parent) {
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (mnt_parent == mnt || !mnt_parent)
			return 1;
		walk->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		walk->mnt = mnt_parent;
		return 0;
	}
	name = BPF_CORE_READ(dentry, d_name);
	len = name.len;
	if (len > 255 || len + 1 > offset) {
		rec->header.flags |= EXEC_PATH_TRUNCATED;
		return 1;
	}
	offset -= len;
	bpf_probe_read_kernel(&rec->path[offset & (PATH_AREA - 1)], len & 255, name.name);
	offset -= 1;
	rec->path[offset & (PATH_AREA - 1)] = '/';
	walk->offset = offset;
	walk->dentry = parent;
	return 0;
}

/* Writes the full path of `file` backwards into rec->path, ending at PATH_AREA; returns the
 * offset where it starts. Crosses mount points up to the root of the mount tree. */
static __always_inline __u32 write_path(struct exec_record *rec, struct file *file)
{
	struct vfsmount *vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	struct path_walk walk = {
		.rec = rec,
		.dentry = BPF_CORE_READ(file, f_path.dentry),
		.mnt = container_of(vfsmnt, struct mount, mnt),
		.offset = PATH_AREA,
	};

	if (bpf_loop(MAX_PATH_COMPONENTS, path_step, &walk, 0) == MAX_PATH_COMPONENTS)
		rec->header.flags |= EXEC_PATH_TRUNCATED;
	if (walk.offset >= PATH_AREA) {
		rec->path[PATH_AREA - 1] = '/';
		return PATH_AREA - 1;
	}
	return walk.offset;
}

SEC("tracepoint/sched/sched_process_exec")
int sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct settings *s = get_settings();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 old_tid = (__u32)ctx->old_pid;
	__u32 ppid = BPF_CORE_READ(task, real_parent, tgid);
	__u32 zero = 0;
	struct exec_record *rec;
	struct mm_struct *mm;
	long nr;
	unsigned long arg_start, arg_end, args_len;
	long name_len;
	__u32 name_offset;

	if (!s || !exec_wanted(s, tgid))
		return 0;
	rec = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!rec)
		return 0;
	rec->header.kind = RECORD_EXEC;
	rec->header.pid = tgid;
	rec->header.tid = old_tid;
	rec->header.ppid = ppid;
	rec->header.uid = (__u32)bpf_get_current_uid_gid();
	nr = syscall_nr();
	rec->header.flags = nr == NR_EXECVE ? EXEC_SYSCALL_EXECVE
			    : nr == NR_EXECVEAT ? EXEC_SYSCALL_EXECVEAT : 0;

	name_offset = ctx->__data_loc_filename & 0xFFFF;
	name_len = bpf_probe_read_kernel_str(rec->file_name, sizeof(rec->file_name),
					     (void *)ctx + name_offset);
	rec->header.file_name_len = name_len > 0 ? name_len - 1 : 0;

	mm = BPF_CORE_READ(task, mm);
	rec->header.path_offset = write_path(rec, BPF_CORE_READ(mm, exe_file));

	arg_start = BPF_CORE_READ(mm, arg_start);
	arg_end = BPF_CORE_READ(mm, arg_end);
	args_len = arg_end - arg_start;
	if (args_len > ARGS_MAX) {
		args_len = ARGS_MAX;
		rec->header.flags |= EXEC_ARGS_TRUNCATED;
	}
	if (bpf_probe_read_user(rec->args, args_len, (void *)arg_start))
		args_len = 0;
	rec->header.args_len = args_len;
	/* The exec ring's reader drains it when the connector reports the exec, without
	 * polling: waking it would be wasted. */
	if (s->exec_ring)
		send(&exec_events, rec, offsetof(struct exec_record, args) + args_len,
		     BPF_RB_NO_WAKEUP);
	else
		send(&events, rec, offsetof(struct exec_record, args) + args_len, 0);
	return 0;
}

/* A process that ran an image matched by name and now runs another loses that entry; a
 * process whose new image's name is in name_rules gains one (entries by id or inherited
 * from a parent are kept). */
static __always_inline void match_name(void *map, __u32 tgid, __u8 rule, __u8 in_list,
				       __u8 with_children)
{
	__u8 *entry = bpf_map_lookup_elem(map, &tgid);
	__u8 value;

	if (entry && (*entry & RULE_BY_NAME) && !(*entry & RULE_INHERITED)) {
		bpf_map_delete_elem(map, &tgid);
		entry = NULL;
	}
	if (entry || !(rule & in_list))
		return;
	value = RULE_BY_NAME | ((rule & with_children) ? RULE_CHILDREN : 0);
	bpf_map_update_elem(map, &tgid, &value, BPF_NOEXIST);
}

SEC("tracepoint/sched/sched_process_exec")
int sched_exec_names(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 zero = 0;
	struct name_key *key = bpf_map_lookup_elem(&name_scratch, &zero);
	struct qstr name;
	__u8 *found, rule;

	if (!key)
		return 0;
	__builtin_memset(key, 0, sizeof(*key));
	name = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name);
	/* A name that does not fit a key matches no kernel rule (user space matches it). */
	if (name.len < NAME_KEY)
		bpf_probe_read_kernel(key->name, name.len & (NAME_KEY - 1), name.name);
	found = name.len < NAME_KEY ? bpf_map_lookup_elem(&name_rules, key) : NULL;
	rule = found ? *found : 0;
	match_name(&filtered_pids, tgid, rule, NAME_FILTERED, NAME_FILTERED_CHILDREN);
	match_name(&ignored_pids, tgid, rule, NAME_IGNORED, NAME_IGNORED_CHILDREN);
	return 0;
}

/* Rules with RULE_CHILDREN pass to the processes a matching process forks. A child of a
 * process matched by name runs the same image until it execs: it is matched too. */
static __always_inline void inherit(void *map, __u32 parent, __u32 child)
{
	__u8 *rule = bpf_map_lookup_elem(map, &parent);
	__u8 value;

	if (!rule)
		return;
	if (*rule & RULE_CHILDREN)
		value = RULE_CHILDREN | RULE_INHERITED;
	else if (*rule & RULE_BY_NAME)
		value = RULE_BY_NAME;
	else
		return;
	bpf_map_update_elem(map, &child, &value, BPF_NOEXIST);
}

SEC("tracepoint/sched/sched_process_fork")
int sched_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	__u32 parent = bpf_get_current_pid_tgid() >> 32;
	__u32 child = (__u32)ctx->child_pid;

	inherit(&ignored_pids, parent, child);
	inherit(&filtered_pids, parent, child);
	return 0;
}

static __always_inline void forget_inherited(void *map, __u32 tid)
{
	__u8 *rule = bpf_map_lookup_elem(map, &tid);
	if (rule && (*rule & (RULE_INHERITED | RULE_BY_NAME)))
		bpf_map_delete_elem(map, &tid);
}

SEC("tracepoint/sched/sched_process_exit")
int sched_exit(struct trace_event_raw_sched_process_template *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	forget_inherited(&ignored_pids, tid);
	forget_inherited(&filtered_pids, tid);
	bpf_map_delete_elem(&pending_ops, &tid);
	return 0;
}
