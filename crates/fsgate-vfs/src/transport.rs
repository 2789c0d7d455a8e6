//! How the kernel's requests reach a mounted drive.
//!
//! By default, requests are read from `/dev/fuse` ([`Transport::DevFuse`]), which every FUSE
//! kernel speaks, by `FuseReaderThreadCount` threads. With `IoUringThreadsPerQueue` above 0
//! on Linux 6.14 or later with `/sys/module/fuse/parameters/enable_uring` set to `Y`, and a
//! server running as root, a drive is served over io_uring ([`Transport::IoUring`]): the
//! kernel has one queue per CPU, and a request is served by a thread bound to the CPU of the
//! process that made it, which also takes the reply there. Nothing crosses CPUs, so the
//! wake-ups that dominate a FUSE round trip on a virtualized or idle machine become local
//! ones, and a request costs one `io_uring_enter` instead of a `read` and a `writev`.
//!
//! Which to choose (`bash bench/vfs-mirror/run.sh` measures both on one machine, and
//! `bench/README.md` has the figures):
//! - io_uring serves namespace operations (create, open, rename, delete, mkdir, rmdir)
//!   faster where idle CPUs sleep deeply, and about as fast where they do not.
//! - io_uring serves one process's streaming reads slower: the kernel copies each `READ`
//!   reply into the page cache on the reading process's CPU, where the process itself copies
//!   it out again, while over `/dev/fuse` the two copies run on two CPUs. This is why
//!   io_uring is opt-in.
//! - Applications that make many small requests gain: on the memory drive, SQLite's WAL
//!   commits ran 1.67x and its rollback-journal commits 1.13-1.37x as fast, a `git clone` +
//!   `status` + `tar c` 1.23x and a `tar x` of a source tree 1.24x (`bench/apps/run.sh`,
//!   which also shows what a minimal FUSE filesystem reaches over each transport). A drive
//!   serving databases or source trees should set `IoUringThreadsPerQueue=2`; one serving
//!   large files should not.
//!
//! `IoUringIdlePriority` puts the io_uring threads in the kernel's `SCHED_IDLE` class. The
//! scheduler counts a CPU that runs only such threads as idle, so when a thread answers, the
//! caller wakes on that same CPU instead of on another, sleeping one, and its next request
//! stays local too, which speeds namespace operations further on a VM. The price: the
//! threads run only when nothing else on their CPU wants to, so on CPUs saturated by other
//! work the drive's requests wait. It suits machines with spare cores; it is off by default.
//!
//! Each queue starts with `IoUringThreadsPerQueue` threads and two spare ones, each with
//! one ring entry (a buffer for the largest request, 1 MiB). A handler runs on the queue's
//! thread only while another thread of the queue waits for requests, otherwise on a worker,
//! so a slow handler does not stall a CPU's requests and a handler may use its own drive.
//! The kernel leaves a request that finds no entry waiting until some entry of the queue is
//! answered, and requests hold their entries while they wait for a worker or for an earlier
//! request of the same file; so a queue keeps two entries waiting, adding a thread (up to 64
//! per CPU) when a request leaves fewer. A burst of more than two requests held at once
//! within the few milliseconds a new thread takes to start can still make the CPU's next
//! request wait for one of them. `READ` handlers fill the ring entry directly.
//! `FORGET` and `INTERRUPT` still come through `/dev/fuse`, so its readers keep running.
//!
//! A dead server's ring entries keep its connection alive for a moment after its death. The
//! drive's watcher process (started for every server running as root) aborts the connection
//! and unmounts; it needs root, which is why io_uring is used only by a server running as
//! root.

/// How requests reach a mounted drive; see the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Reads and writes of `/dev/fuse`, by `FuseReaderThreadCount` threads.
    DevFuse {
        /// Why io_uring is not in use.
        reason: String,
    },
    /// FUSE over io_uring.
    IoUring {
        /// Kernel queues: one per possible CPU.
        queues: usize,
        /// Threads serving each queue.
        threads_per_queue: usize,
    },
}

impl From<&fuser::Transport> for Transport {
    fn from(t: &fuser::Transport) -> Self {
        match t {
            fuser::Transport::DevFuse { reason } => Self::DevFuse {
                reason: reason.clone(),
            },
            fuser::Transport::IoUring {
                queues,
                threads_per_queue,
            } => Self::IoUring {
                queues: *queues,
                threads_per_queue: *threads_per_queue,
            },
        }
    }
}
