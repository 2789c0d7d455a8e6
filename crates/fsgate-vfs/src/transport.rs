//! How the kernel's requests reach a mounted drive.
//!
//! On Linux 6.14 and later, with `/sys/module/fuse/parameters/enable_uring` set to `Y`, a
//! drive is served over io_uring ([`Transport::IoUring`]): the kernel has one queue per CPU,
//! and a request is served by a thread bound to the CPU of the process that made it, which
//! also receives the reply there. Nothing crosses CPUs, so the wake-ups that dominate a FUSE
//! round trip on a busy or virtualized machine become local ones, and a request costs one
//! `io_uring_enter` instead of a `read` and a `writev` of `/dev/fuse`. Elsewhere, or with
//! `IoUringThreadsPerQueue` set to 0, requests are read from `/dev/fuse`
//! ([`Transport::DevFuse`]), which every FUSE kernel speaks.
//!
//! Each queue has `IoUringThreadsPerQueue` threads (2 by default), each with one request in
//! flight and one buffer of the largest request (1 MiB). A handler runs right on the queue's
//! thread when another thread of the queue is free to take the next request, otherwise on
//! a worker, so a slow handler never stalls a CPU's requests. `FORGET` and `INTERRUPT` still
//! come through `/dev/fuse`, so its reader threads keep running.

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
