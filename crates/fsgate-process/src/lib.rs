//! fsgate-process: the reference's process filter class on Linux, [`ProcessFilter`].
//!
//! # Linux mapping
//!
//! | reference | fsgate on Linux |
//! |---|---|
//! | process filter driver | the netlink process connector (fork, exec, exit records for every task), and for exec control a fanotify group with `FAN_OPEN_EXEC_PERM` marks (needs `CAP_SYS_ADMIN`). Whether the connector listens for a process without `CAP_NET_ADMIN` depends on the kernel build: mainline 6.6 and later accept it, earlier kernels and some later builds refuse it, and fsgate then reports 1314 (see [`ProcessFilter::start_filter`]); with `CAP_NET_ADMIN` (root) every kernel accepts it |
//! | `on_process_creation` | fires once per successful exec (a new program image in a process). Under exec control (images on a mount given to [`ProcessFilter::add_controlled_exec_path`]) it fires *before* the image runs, from the permission event, and `Err` makes the caller's `execve` fail with `EPERM`; elsewhere it fires from the connector just *after* the exec and its result is ignored. A fork that never execs is not a creation (it runs its parent's image), but its exit is a termination |
//! | creating process / thread | the process and thread whose fork produced the exec-ing process (0 for the thread when the fork preceded `start_filter`) |
//! | image and `process_name` of a creation | the exact exec record `fsgate-bpf`'s `sched_process_exec` program writes at exec time (the full path `/proc/<pid>/exe` shows), loaded by `start_filter` when `EventsToFire` asks for creations; a script's own path comes from fanotify exec-open events. Where the kernel refuses the program (or the caller may not load it), `/proc/<pid>/exe` when the connector record is handled: a process that already exited is then named by its exec-open event only, or not at all |
//! | `command_line` | only with `track_command_line`: the argument vector of the exact exec record (up to 24 KiB, else `/proc`), or, where BPF is refused, `/proc/<pid>/cmdline` read when the connector record is handled (a process that already exited gives ""); under exec control it is always "" (the new arguments are not in place yet) |
//! | `on_process_termination` | the connector's exit record of a thread-group leader |
//! | `on_thread_creation` / `_termination` | fork records with `pid != tgid` / exit records of non-leader threads; the creating *thread* is not in the kernel record (0) |
//! | `on_*_handle_operation` | signals (`kill`, `tgkill`, `tkill`, `pidfd_send_signal`; from `signal/signal_generate`, once per process or thread signalled, only when the kernel generated the signal: signal 0 and refused calls are not reported), `ptrace`, `process_vm_readv`/`writev` and `pidfd_getfd` (from their system call tracepoints, failures included), reported by `fsgate-bpf`'s programs (loaded by `start_filter` when `EventsToFire` asks for them; `ERROR_NOT_SUPPORTED` (50) with the kernel's reason where BPF is refused) with the reference's access bits; notifications only, since the kernel refuses the BPF LSM programs that could deny them (a handler that lowers `desired_access` gets 50 through `on_error`) |
//! | rules by PID | hold a pidfd and are dropped when the process exits (PID reuse) |
//! | rules by name | matched in user space against the image the process runs (`/proc/<pid>/exe`, or the exec record); for handle operations, rules by id and by *plain* name (no `/`, `*` or `?`) are also evaluated in the kernel, so operations of processes no rule selects never reach user space ([`ProcessFilter::handle_records_delivered`] counts what does); a filtered rule for every process or by a name with a wildcard or directory makes every operation not ignored in the kernel reach user space, which chooses |
//! | `altitude`, `strict_altitude` | kept and reported; no stack orders process filters on Linux |
//! | `get_originator_token` | [`Credentials`](fsgate_core::originator::Credentials) from `/proc/<pid>/status` |
//! | `install` / `initialize` | `initialize`, status and version read the ProductGUID registry through [`fsgate_registry::Installation`]; `install` / `uninstall` need the `installer` feature (`fsgate-install`'s package installer) |
//!
//! Rules match the process that makes the request: for a creation the creating process,
//! for threads and termination the process itself. Everything is ignored by default;
//! filtered rules opt processes in; ignored rules win. Requests made by this process are
//! skipped unless `FilterOwnRequests` is set, so a handler that spawns a program cannot
//! block on itself.
//!
//! Lost events are never silent: when the kernel drops connector records because the
//! filter fell behind, `on_error` fires with code 122 (`ERROR_INSUFFICIENT_BUFFER`).
//!
//! # Deviations
//!
//! - Rules require `active` (as the reference's method notes say); `stop_filter` drops them.
//! - `LoggingEnabled` logs each fired event through `tracing`. It is persistent, like the
//!   reference's registry value: `config` reads and writes the settings file of the
//!   installation given to `initialize` (so it needs `initialize` first), and `initialize`
//!   loads it.
//! - `create_running_processes_snapshot` does not need `initialize` (it only reads `/proc`).
//! - `DenyExpiredEvents` (a filter-class setting) decides what an exec whose handler timed
//!   out gets: allowed by default, denied when set.

mod events;
mod exec_control;
mod exec_names;
mod exec_records;
mod filter;
mod handle_ops;
pub mod proc_connector;
mod rules;
mod settings;
mod shared;
mod snapshot;
mod table;
mod tracker;

pub use events::{
    EventsToFire, HandleOperation, Hooks, ProcessCreation, ProcessEvents, ProcessTermination,
    ThreadCreation, ThreadTermination,
};
pub use filter::ProcessFilter;
/// Whether this kernel loads the BPF tracepoint programs that name execs exactly and report
/// handle operations, for this caller (`fsgate_bpf::probe_kernel`): where it does not, the
/// creation event is named from `/proc` and asking for handle operations fails with its
/// error.
pub use fsgate_bpf::probe_kernel as probe_bpf_support;
pub use rules::ProcessId;
pub use shared::EVENTS_LOST;
pub use snapshot::RunningProcess;
