//! FUSE over io_uring (Linux 6.14 and later). Added by fsgate; see FSGATE.md.
//!
//! After INIT, every possible CPU gets a kernel queue, and each queue is served by threads that
//! own one io_uring and one ring entry (a header buffer and a payload buffer) each. The kernel
//! puts a request into a free entry of the queue of the CPU the requesting process runs on,
//! and completes the entry's command; the thread, bound to that CPU, serves the request and
//! sends the reply back with `COMMIT_AND_FETCH`, which also makes the entry free again.
//! Request and reply never cross CPUs, and a request costs one `io_uring_enter` instead of a
//! `read` and a `writev` of /dev/fuse.
//!
//! FORGET and INTERRUPT still arrive on /dev/fuse, so the classic readers keep running beside
//! the rings. Kernel documentation: `Documentation/filesystems/fuse/fuse-io-uring.rst`.

use std::cell::Cell;
use std::ffi::c_void;
use std::io;
use std::io::IoSlice;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::ptr;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::thread::JoinHandle;

use log::error;
use log::warn;
use rustix::io::Errno;
use rustix::io_uring::IORING_OFF_SQ_RING;
use rustix::io_uring::IORING_OFF_SQES;
use rustix::io_uring::IoringEnterFlags;
use rustix::io_uring::IoringFeatureFlags;
use rustix::io_uring::IoringOp;
use rustix::io_uring::IoringSetupFlags;
use rustix::io_uring::io_uring_enter;
use rustix::io_uring::io_uring_params;
use rustix::io_uring::io_uring_setup;
use rustix::mm::MapFlags;
use rustix::mm::ProtFlags;

use crate::Filesystem;
use crate::channel::ChannelSender;
use crate::ll;
use crate::reply::ReplyEmpty;
use crate::reply::ReplySender;
use crate::request::RequestWithSender;
use crate::session::SessionEventLoop;

/// `enum fuse_uring_cmd`, carried in the SQE's `cmd_op`.
const CMD_REGISTER: u32 = 1;
const CMD_COMMIT_AND_FETCH: u32 = 2;

/// `struct fuse_uring_req_header`: `in_out[128]`, `op_in[128]`, then `fuse_uring_ent_in_out`.
const HEADER_SIZE: usize = 288;
const OP_IN: usize = 128;
const OP_IN_SIZE: usize = 128;
/// `fuse_uring_ent_in_out.commit_id` and `.payload_sz`.
const COMMIT_ID: usize = 256 + 8;
const PAYLOAD_SZ: usize = 256 + 16;
const IN_HEADER_SIZE: usize = size_of::<ll::fuse_abi::fuse_in_header>();
const OUT_HEADER_SIZE: usize = size_of::<ll::fuse_abi::fuse_out_header>();

/// Where an entry's payload buffer starts within its mapping. Between the header buffer and
/// the payload lies room the kernel never touches: a request's `fuse_in_header` and per-op
/// header are moved there, right before the payload, so the request is one contiguous buffer
/// laid out as a read of /dev/fuse gives it, without copying the payload.
const PAYLOAD_OFFSET: usize = 4096;

/// An SQE of a ring set up with `IORING_SETUP_SQE128`; the command area starts at byte 48.
const SQE_SIZE: usize = 128;
const SQE_CMD: usize = 48;
const CQE_SIZE: usize = 16;

/// Which transport carries the kernel's requests, as settled at mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `read(2)` and `write(2)` on /dev/fuse; `reason` says why io_uring is not in use.
    DevFuse {
        /// Why the session does not use io_uring.
        reason: String,
    },
    /// FUSE over io_uring: `queues` per-CPU kernel queues, each served by
    /// `threads_per_queue` threads.
    IoUring {
        /// Kernel queues, one per possible CPU.
        queues: usize,
        /// Threads asked for per queue; each queue starts with two more, and adds threads
        /// while requests wait for other threads.
        threads_per_queue: usize,
    },
}

/// A memory mapping, unmapped on drop.
struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain memory. Who reads or writes which part when is fixed by the
// FUSE ring protocol (see `Ring`), not by Rust references.
unsafe impl Send for Region {}
unsafe impl Sync for Region {}

impl Region {
    fn anonymous(len: usize) -> io::Result<Self> {
        // SAFETY: a fresh private mapping aliases nothing.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }?;
        Self::from_raw(ptr, len)
    }

    fn ring(fd: &OwnedFd, offset: u64, len: usize) -> io::Result<Self> {
        // SAFETY: maps the ring's own shared memory, which nothing else in the process maps.
        let ptr = unsafe {
            rustix::mm::mmap(
                ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::POPULATE,
                fd,
                offset,
            )
        }?;
        Self::from_raw(ptr, len)
    }

    fn from_raw(ptr: *mut c_void, len: usize) -> io::Result<Self> {
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }

    /// A pointer `offset` bytes in; callers keep `offset` within the region.
    fn at<T>(&self, offset: usize) -> *mut T {
        debug_assert!(offset + size_of::<T>() <= self.len);
        // SAFETY: in bounds, as asserted.
        unsafe { self.ptr.as_ptr().add(offset).cast() }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and no pointer into it outlives `self`.
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            warn!("munmap of a FUSE ring region failed: {e}");
        }
    }
}

/// One ring entry: header buffer at offset 0, payload buffer at `PAYLOAD_OFFSET`.
struct Entry {
    mem: Region,
    /// The two iovecs REGISTER points the kernel at.
    iov: [libc::iovec; 2],
    /// Whether the payload is lent out for the request in the entry now. It is back (and
    /// the state clear) before the entry is committed, so the next request finds it clear.
    lease: Mutex<Lease>,
}

// SAFETY: the iovecs only describe `mem`.
unsafe impl Send for Entry {}
unsafe impl Sync for Entry {}

impl Entry {
    fn new(payload: usize) -> io::Result<Self> {
        let mem = Region::anonymous(PAYLOAD_OFFSET + payload)?;
        let iov = [
            libc::iovec {
                iov_base: mem.at::<u8>(0).cast(),
                iov_len: HEADER_SIZE,
            },
            libc::iovec {
                iov_base: mem.at::<u8>(PAYLOAD_OFFSET).cast(),
                iov_len: payload,
            },
        ];
        Ok(Self {
            mem,
            iov,
            lease: Mutex::default(),
        })
    }

    fn read_u32(&self, offset: usize) -> u32 {
        // SAFETY: in bounds; the kernel does not write while the entry is in user space.
        unsafe { self.mem.at::<u32>(offset).read_unaligned() }
    }

    fn read_u64(&self, offset: usize) -> u64 {
        // SAFETY: as in `read_u32`.
        unsafe { self.mem.at::<u64>(offset).read_unaligned() }
    }
}

thread_local! {
    /// The ring the current thread serves, if any: its replies are submitted by its next wait.
    static SERVING: Cell<*const Ring> = const { Cell::new(ptr::null()) };
    /// Whether another thread of this thread's queue was waiting for a request when this
    /// thread's request came.
    static MAY_BLOCK: Cell<bool> = const { Cell::new(true) };
}

/// Whether a filesystem method running on the current thread may take long.
///
/// False on an io_uring thread when no other thread of its queue was waiting for a request
/// as the request came: until the method returns, requests from processes on that CPU would
/// wait (and a method that itself used the mount would wait for itself). Such a method
/// should hand slow work to another thread and reply from there. True on every other thread.
pub fn thread_may_block() -> bool {
    MAY_BLOCK.get()
}

/// What the threads serving one kernel queue share.
///
/// Each thread has exactly one ring entry, so an entry waiting for a request always belongs
/// to a thread waiting for it: the kernel may put a request into any waiting entry of the
/// queue, and an entry of a thread busy in a slow method would hold that request until the
/// method returned.
///
/// A request that finds no entry waiting stays in the kernel until an entry of the queue
/// is committed; an entry registered later does not take it. Requests hold their entries
/// while they wait for a worker or for an earlier request of the same file, so with no
/// entry waiting the CPU's next request could wait for them too, or deadlock a method that
/// uses its own mount. The queue therefore starts with `SPARE` threads beyond the ones asked
/// for, and a request that leaves fewer than `SPARE` entries waiting adds a thread (up to
/// `MAX_THREADS`) before it is served: the entries still waiting take the next requests
/// while the new thread registers (a few milliseconds).
pub(crate) struct Queue {
    /// The /dev/fuse descriptor the commands name; also opens passthrough backing files.
    device: ChannelSender,
    qid: u16,
    payload: usize,
    idle_priority: bool,
    /// Threads whose entry is with the kernel, waiting for a request.
    waiting: AtomicUsize,
    /// Threads added and not yet registered.
    starting: AtomicUsize,
    threads: AtomicUsize,
    /// Threads added while serving; the session joins them when it ends.
    added: Mutex<Vec<JoinHandle<io::Result<()>>>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("qid", &self.qid)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// The most threads one queue grows to: its requests served at once, plus `SPARE`.
const MAX_THREADS: usize = 64;

/// Entries a queue keeps waiting for requests: a queue starts with this many threads
/// beyond the ones asked for, and adds one whenever fewer wait.
pub(crate) const SPARE: usize = 2;

impl Queue {
    /// The queue of CPU `qid`, whose entries take `payload` bytes and whose threads run in
    /// the `SCHED_IDLE` class with `idle_priority`.
    pub(crate) fn new(
        device: ChannelSender,
        qid: u16,
        payload: usize,
        idle_priority: bool,
    ) -> Self {
        Self {
            device,
            qid,
            payload,
            idle_priority,
            waiting: AtomicUsize::new(0),
            starting: AtomicUsize::new(0),
            threads: AtomicUsize::new(0),
            added: Mutex::default(),
        }
    }

    /// Waits for the threads added while serving; they end with the connection.
    pub(crate) fn join_added(&self) -> io::Result<()> {
        // A thread joined here may have added another before it ended.
        loop {
            let next = self.added.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(thread) = next else {
                return Ok(());
            };
            thread
                .join()
                .map_err(|_| io::Error::other("FUSE ring thread panicked"))??;
        }
    }

    /// Binds the calling thread to the queue's CPU, in the `SCHED_IDLE` class if asked.
    fn settle_thread(&self) {
        let mut set = rustix::thread::CpuSet::new();
        set.set(usize::from(self.qid));
        // A CPU that is possible but offline cannot take the thread; it runs anywhere.
        let _ = rustix::thread::sched_setaffinity(None, &set);
        if self.idle_priority {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: sets this thread's own policy from a valid parameter block.
            if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
                warn!(
                    "SCHED_IDLE for a FUSE ring thread: {}",
                    io::Error::last_os_error()
                );
            }
        }
    }

    /// Starts one more thread serving `se` when fewer than `SPARE` entries wait, unless
    /// `SPARE` threads are starting already or the queue has `MAX_THREADS`.
    fn keep_spare<FS: Filesystem>(self: &Arc<Self>, se: &SessionEventLoop<FS>) -> io::Result<()> {
        if self.waiting.load(Ordering::Acquire) >= SPARE
            || self.starting.load(Ordering::Acquire) >= SPARE
        {
            return Ok(());
        }
        if self.threads.load(Ordering::Acquire) >= MAX_THREADS {
            warn!("FUSE queue {} is out of threads", self.qid);
            return Ok(());
        }
        let ring = Ring::new(Arc::clone(self))?;
        let se = se.clone();
        self.starting.fetch_add(1, Ordering::AcqRel);
        let spawned = thread::Builder::new()
            .name(format!("fuser-ring-{}", self.qid))
            .spawn(move || {
                let queue = Arc::clone(&ring.queue);
                queue.settle_thread();
                let ring = Arc::new(ring);
                SERVING.set(Arc::as_ptr(&ring));
                let registered = ring.register();
                queue.starting.fetch_sub(1, Ordering::AcqRel);
                // Refused when the connection ended meanwhile.
                match registered {
                    Ok(()) => ring.serve(Some(se)),
                    Err(e) => warn!("registering an added FUSE ring entry failed: {e}"),
                }
                SERVING.set(ptr::null());
                Ok(())
            });
        match spawned {
            Ok(handle) => {
                self.added
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(handle);
                Ok(())
            }
            Err(e) => {
                self.starting.fetch_sub(1, Ordering::AcqRel);
                Err(e)
            }
        }
    }
}

/// One thread's io_uring and the one ring entry it registered with its kernel queue.
///
/// The entry belongs to the kernel from REGISTER or COMMIT_AND_FETCH until its completion,
/// and to user space from the completion until the next commit. User space reads the request
/// and writes the reply only in between, so the kernel and this code never touch the entry
/// at the same time.
///
/// Every command is submitted by the ring's own thread: the kernel copies the next request
/// into the entry in the context of the task that submitted the entry's command, and a
/// thread busy elsewhere (or gone) would hold that request up. A reply made on another thread
/// is written into the entry there and handed to the ring's thread through `forwarded`, with
/// a write to `wake`, whose pending read completes and wakes that thread.
pub(crate) struct Ring {
    fd: OwnedFd,
    queue: Arc<Queue>,
    rings: Region,
    sqes: Region,
    sq_head: usize,
    sq_tail: usize,
    sq_mask: u32,
    sq_entries: u32,
    cq_head: usize,
    cq_tail: usize,
    cq_mask: u32,
    cqes: usize,
    /// The SQ tail as last written, and how many SQEs `io_uring_enter` has not yet taken.
    sq: Mutex<(u32, u32)>,
    entry: Entry,
    /// Whether another thread wrote the entry's reply, which waits for its commit.
    forwarded: AtomicBool,
    wake: OwnedFd,
    /// The buffer of the pending read of `wake`.
    wake_buf: Box<u64>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("qid", &self.queue.qid)
            .finish_non_exhaustive()
    }
}

/// The `user_data` of the read of `Ring::wake`.
const WAKE: u64 = u64::MAX;
/// The `user_data` of the entry's commands.
const ENTRY: u64 = 0;

impl Ring {
    /// Sets up an io_uring and its entry for `queue`.
    pub(crate) fn new(queue: Arc<Queue>) -> io::Result<Self> {
        // At most the entry's command and the read of `wake` wait in the SQ.
        let depth = 4;
        let mut params = io_uring_params::default();
        params.flags = IoringSetupFlags::SQE128;
        // SAFETY: `params` is a valid, zeroed parameter block.
        let fd = unsafe { io_uring_setup(depth, &mut params) }?;
        if !params.features.contains(IoringFeatureFlags::SINGLE_MMAP) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring without IORING_FEAT_SINGLE_MMAP",
            ));
        }
        let sq = params.sq_off;
        let cq = params.cq_off;
        let sq_len = sq.array as usize + params.sq_entries as usize * size_of::<u32>();
        let cq_len = cq.cqes as usize + params.cq_entries as usize * CQE_SIZE;
        let rings = Region::ring(&fd, IORING_OFF_SQ_RING, sq_len.max(cq_len))?;
        let sqes = Region::ring(&fd, IORING_OFF_SQES, params.sq_entries as usize * SQE_SIZE)?;
        // SAFETY: offsets come from the kernel and lie within the mapping.
        let (sq_mask, cq_mask, tail) = unsafe {
            (
                rings.at::<u32>(sq.ring_mask as usize).read(),
                rings.at::<u32>(cq.ring_mask as usize).read(),
                rings.at::<u32>(sq.tail as usize).read(),
            )
        };
        for i in 0..params.sq_entries {
            // SAFETY: the SQ index array has `sq_entries` slots; slot i names SQE i.
            unsafe { rings.at::<u32>(sq.array as usize + i as usize * 4).write(i) };
        }
        let wake = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
        Ok(Self {
            fd,
            entry: Entry::new(queue.payload)?,
            queue,
            sq_head: sq.head as usize,
            sq_tail: sq.tail as usize,
            sq_mask,
            sq_entries: params.sq_entries,
            cq_head: cq.head as usize,
            cq_tail: cq.tail as usize,
            cq_mask,
            cqes: cq.cqes as usize,
            rings,
            sqes,
            sq: Mutex::new((tail, 0)),
            forwarded: AtomicBool::new(false),
            wake,
            wake_buf: Box::new(0),
        })
    }

    fn atomic(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: ring head and tail words are aligned u32s the kernel shares atomically.
        unsafe { AtomicU32::from_ptr(self.rings.at::<u32>(offset)) }
    }

    /// Writes one SQE; called on the ring's thread only.
    fn push(&self, sqe: &[u8; SQE_SIZE]) -> io::Result<()> {
        let mut sq = self.sq.lock().unwrap_or_else(|e| e.into_inner());
        let head = self.atomic(self.sq_head).load(Ordering::Acquire);
        if sq.0.wrapping_sub(head) >= self.sq_entries {
            return Err(io::Error::other("io_uring submission queue full"));
        }
        let slot = (sq.0 & self.sq_mask) as usize;
        // SAFETY: the slot lies in the SQE array, and the kernel does not read it until the
        // tail below moves past it.
        unsafe {
            ptr::copy_nonoverlapping(sqe.as_ptr(), self.sqes.at::<u8>(slot * SQE_SIZE), SQE_SIZE);
        }
        sq.0 = sq.0.wrapping_add(1);
        sq.1 += 1;
        self.atomic(self.sq_tail).store(sq.0, Ordering::Release);
        Ok(())
    }

    /// Writes a URING_CMD SQE for the entry: REGISTER, or COMMIT_AND_FETCH of `commit_id`.
    /// From here on the entry counts as waiting for a request.
    fn push_cmd(&self, cmd_op: u32, commit_id: u64) -> io::Result<()> {
        let mut sqe = [0u8; SQE_SIZE];
        sqe[0] = IoringOp::UringCmd as u8;
        sqe[4..8].copy_from_slice(&self.queue.device.as_fd().as_raw_fd().to_ne_bytes());
        sqe[8..12].copy_from_slice(&cmd_op.to_ne_bytes());
        if cmd_op == CMD_REGISTER {
            let iov = self.entry.iov.as_ptr() as u64;
            sqe[16..24].copy_from_slice(&iov.to_ne_bytes());
            sqe[24..28].copy_from_slice(&2u32.to_ne_bytes());
        }
        sqe[32..40].copy_from_slice(&ENTRY.to_ne_bytes());
        // `struct fuse_uring_cmd_req`: flags, commit_id, qid.
        sqe[SQE_CMD + 8..SQE_CMD + 16].copy_from_slice(&commit_id.to_ne_bytes());
        sqe[SQE_CMD + 16..SQE_CMD + 18].copy_from_slice(&self.queue.qid.to_ne_bytes());
        self.push(&sqe)?;
        self.queue.waiting.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Writes the read of `wake` that completes when another thread forwards a reply.
    fn push_wake_read(&self) -> io::Result<()> {
        let mut sqe = [0u8; SQE_SIZE];
        sqe[0] = IoringOp::Read as u8;
        sqe[4..8].copy_from_slice(&self.wake.as_raw_fd().to_ne_bytes());
        let buf = ptr::from_ref::<u64>(&self.wake_buf) as u64;
        sqe[16..24].copy_from_slice(&buf.to_ne_bytes());
        sqe[24..28].copy_from_slice(&8u32.to_ne_bytes());
        sqe[32..40].copy_from_slice(&WAKE.to_ne_bytes());
        self.push(&sqe)
    }

    /// Passes the written SQEs to the kernel and, with `wait`, sleeps until a completion.
    fn enter(&self, wait: bool) -> io::Result<()> {
        let n = std::mem::take(&mut self.sq.lock().unwrap_or_else(|e| e.into_inner()).1);
        let (min, flags) = if wait {
            (1, IoringEnterFlags::GETEVENTS)
        } else {
            (0, IoringEnterFlags::empty())
        };
        // SAFETY: a plain submit-and-wait on our own ring.
        match unsafe { io_uring_enter(&self.fd, n, min, flags) } {
            Ok(_) => Ok(()),
            Err(e) => {
                // Nothing was submitted: leave the SQEs to the next call.
                self.sq.lock().unwrap_or_else(|e| e.into_inner()).1 += n;
                Err(e.into())
            }
        }
    }

    /// Registers the entry with the kernel queue and arms `wake`. Returns the kernel's
    /// refusal, if any.
    fn register(&self) -> io::Result<()> {
        self.queue.threads.fetch_add(1, Ordering::AcqRel);
        self.push_wake_read()?;
        self.push_cmd(CMD_REGISTER, 0)?;
        self.enter(false)?;
        // REGISTER completes only with a request or an error; an error shows up at once.
        let head = self.atomic(self.cq_head).load(Ordering::Acquire);
        let tail = self.atomic(self.cq_tail).load(Ordering::Acquire);
        for i in head..tail {
            let (_, res) = self.cqe(i);
            if res < 0 {
                return Err(io::Error::from_raw_os_error(-res));
            }
        }
        Ok(())
    }

    fn cqe(&self, i: u32) -> (u64, i32) {
        let at = self.cqes + (i & self.cq_mask) as usize * CQE_SIZE;
        // SAFETY: CQE i lies in the CQ array and is complete once the tail passed it.
        unsafe {
            (
                self.rings.at::<u64>(at).read(),
                self.rings.at::<i32>(at + 8).read(),
            )
        }
    }

    /// Takes the next completion: its `user_data` and result.
    fn pop(&self) -> Option<(u64, i32)> {
        let head = self.atomic(self.cq_head).load(Ordering::Relaxed);
        let tail = self.atomic(self.cq_tail).load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        let cqe = self.cqe(head);
        self.atomic(self.cq_head)
            .store(head.wrapping_add(1), Ordering::Release);
        Some(cqe)
    }

    /// Commits the reply another thread wrote, if any, and arms `wake` again.
    fn commit_forwarded(&self) -> io::Result<()> {
        if self.forwarded.swap(false, Ordering::AcqRel) {
            self.push_commit()?;
        }
        self.push_wake_read()
    }

    /// Writes the COMMIT_AND_FETCH of the entry, whose reply is in place.
    fn push_commit(&self) -> io::Result<()> {
        self.push_cmd(CMD_COMMIT_AND_FETCH, self.entry.read_u64(COMMIT_ID))
    }

    /// Serves this ring's requests until the kernel lets the entry go.
    fn serve<FS: Filesystem>(self: Arc<Self>, se: Option<SessionEventLoop<FS>>) {
        loop {
            match self.enter(true) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(Errno::INTR.raw_os_error()) => continue,
                Err(e) => {
                    error!(
                        "io_uring_enter on FUSE queue {} failed: {e}",
                        self.queue.qid
                    );
                    // The kernel may still write into the entry: never free it.
                    std::mem::forget(self);
                    return;
                }
            }
            while let Some((user_data, res)) = self.pop() {
                if user_data == WAKE {
                    if let Err(e) = self.commit_forwarded() {
                        error!("committing a forwarded FUSE reply failed: {e}");
                    }
                    continue;
                }
                let queue = &self.queue;
                queue.waiting.fetch_sub(1, Ordering::AcqRel);
                if res < 0 {
                    // The kernel let the entry go: the connection ended, or a command failed.
                    let errno = Errno::from_raw_os_error(-res);
                    if ![Errno::NOTCONN, Errno::CONNABORTED, Errno::CANCELED].contains(&errno) {
                        warn!("FUSE ring entry on queue {} ended: {errno}", queue.qid);
                    }
                    return;
                }
                if let Some(se) = &se {
                    if let Err(e) = queue.keep_spare(se) {
                        error!("adding a thread to FUSE queue {} failed: {e}", queue.qid);
                    }
                }
                MAY_BLOCK.set(queue.waiting.load(Ordering::Acquire) > 0);
                self.dispatch(se.as_ref());
                MAY_BLOCK.set(true);
            }
        }
    }

    /// Hands the request in the entry to the filesystem, or answers `EIO` without one.
    fn dispatch<FS: Filesystem>(self: &Arc<Self>, se: Option<&SessionEventLoop<FS>>) {
        let entry = &self.entry;
        let reply = RingReply { ring: self.clone() };
        let len = entry.read_u32(0) as usize;
        let payload = entry.read_u32(PAYLOAD_SZ) as usize;
        let Some(op_len) = len
            .checked_sub(IN_HEADER_SIZE + payload)
            .filter(|&n| n <= OP_IN_SIZE && payload <= self.queue.payload && n % 8 == 0)
        else {
            error!("malformed FUSE ring request: length {len}, payload {payload}");
            reply.fail(ll::Errno::EIO);
            return;
        };
        let Some(se) = se else {
            reply.fail(ll::Errno::EIO);
            return;
        };
        let start = PAYLOAD_OFFSET - op_len - IN_HEADER_SIZE;
        let base = entry.mem.at::<u8>(0);
        // SAFETY: the entry is in user space. Both moves stay within the mapping and write only
        // to the gap before the payload, which the kernel never touches; the request is then
        // one 8-byte-aligned buffer ending where the payload ends.
        let data = unsafe {
            ptr::copy(base.add(OP_IN), base.add(PAYLOAD_OFFSET - op_len), op_len);
            ptr::copy_nonoverlapping(base, base.add(start), IN_HEADER_SIZE);
            std::slice::from_raw_parts(base.add(start), len)
        };
        match RequestWithSender::with_sender(ReplySender::Ring(reply.clone()), data) {
            Some(req) => {
                if let Ok(ll::Operation::Destroy(_)) = req.request.operation() {
                    req.reply::<ReplyEmpty>().ok();
                } else {
                    req.dispatch(se);
                }
            }
            None => reply.fail(ll::Errno::EIO),
        }
    }
}

/// The thread of one ring: started before INIT is answered, it registers the ring's entry
/// when told to (the kernel takes registrations only after INIT), then serves.
#[derive(Debug)]
pub(crate) struct RingThread<FS: Filesystem> {
    pub(crate) handle: JoinHandle<io::Result<()>>,
    /// The thread's queue, which may add threads while serving.
    pub(crate) queue: Arc<Queue>,
    register: mpsc::SyncSender<()>,
    registered: mpsc::Receiver<io::Result<()>>,
    start: mpsc::Sender<SessionEventLoop<FS>>,
}

impl<FS: Filesystem> RingThread<FS> {
    /// Starts the thread of `ring`, bound to the ring's CPU (and in the `SCHED_IDLE` class
    /// if its queue asks). Until [`register`](Self::register), nothing reaches the kernel:
    /// dropped before, the thread ends and the ring with it.
    pub(crate) fn spawn(ring: Ring) -> io::Result<Self> {
        let (register, go) = mpsc::sync_channel::<()>(1);
        let (report, registered) = mpsc::sync_channel(1);
        let (start, started) = mpsc::channel::<SessionEventLoop<FS>>();
        let queue = Arc::clone(&ring.queue);
        let handle = thread::Builder::new()
            .name(format!("fuser-ring-{}", ring.queue.qid))
            .spawn(move || {
                ring.queue.settle_thread();
                if go.recv().is_err() {
                    return Ok(());
                }
                let ring = Arc::new(ring);
                SERVING.set(Arc::as_ptr(&ring));
                let _ = report.send(ring.register());
                // Without a filesystem (the session ended before running), requests get EIO.
                ring.serve(started.recv().ok());
                SERVING.set(ptr::null());
                Ok(())
            })?;
        Ok(Self {
            handle,
            queue,
            register,
            registered,
            start,
        })
    }

    /// Has the thread register its ring's entry, and waits for the outcome. Once registered,
    /// the thread runs until the connection ends, whatever the outcome says.
    pub(crate) fn register(&self) -> io::Result<()> {
        self.register
            .send(())
            .map_err(|_| io::Error::other("FUSE ring thread ended early"))?;
        self.registered
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("FUSE ring thread ended early")))
    }

    /// Lets the thread serve `se`'s filesystem.
    pub(crate) fn start(&self, se: SessionEventLoop<FS>) {
        // A thread that already ended has nothing left to serve.
        let _ = self.start.send(se);
    }
}

/// Sends a reply into the ring entry its request came in, and commits it.
#[derive(Debug, Clone)]
pub(crate) struct RingReply {
    ring: Arc<Ring>,
}

/// Whether an entry's payload is lent out as a [`DataBuffer`], and the payload size of a
/// commit that waits for it.
#[derive(Debug, Default)]
struct Lease {
    lent: bool,
    commit: Option<usize>,
}

/// A ring entry's payload, lent to fill a READ reply's data in place
/// ([`ReplyData::buffer`](crate::ReplyData::buffer)).
///
/// The entry is committed (and so given back to the kernel) only after this buffer is
/// dropped, even if the reply is sent earlier: a reply sent while the buffer is still being
/// filled (a timeout, say) goes out when the filling ends, and the kernel never sees the
/// entry while anyone can write into it.
#[derive(Debug)]
pub struct DataBuffer {
    ptr: NonNull<u8>,
    len: usize,
    reply: RingReply,
}

// SAFETY: the buffer is memory of the ring entry, which nobody else touches while lent.
unsafe impl Send for DataBuffer {}

impl std::ops::Deref for DataBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` and `len` describe the lent payload, valid until `self` drops.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for DataBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; the lease makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for DataBuffer {
    fn drop(&mut self) {
        let commit = {
            let mut lease = self.reply.lease();
            lease.lent = false;
            lease.commit.take()
        };
        if let Some(payload) = commit {
            if let Err(e) = self.reply.commit_now(payload) {
                error!("committing a FUSE reply failed: {e}");
            }
        }
    }
}

impl RingReply {
    fn lease(&self) -> std::sync::MutexGuard<'_, Lease> {
        self.ring
            .entry
            .lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Lends the entry's payload, up to `size` bytes, unless it is lent already.
    pub(crate) fn lend(&self, size: usize) -> Option<DataBuffer> {
        let entry = &self.ring.entry;
        let mut lease = self.lease();
        if lease.lent {
            return None;
        }
        lease.lent = true;
        Some(DataBuffer {
            ptr: NonNull::new(entry.mem.at::<u8>(PAYLOAD_OFFSET))?,
            len: size.min(self.ring.queue.payload),
            reply: self.clone(),
        })
    }

    /// Replies with the first `len` bytes of the lent payload.
    pub(crate) fn send_in_place(&self, unique: u64, len: usize) -> io::Result<()> {
        let entry = &self.ring.entry;
        let len = len.min(self.ring.queue.payload);
        // SAFETY: the entry is in user space; this writes `fuse_out_header` only, beside the
        // payload that may still be being filled.
        unsafe {
            entry
                .mem
                .at::<u32>(0)
                .write_unaligned((OUT_HEADER_SIZE + len) as u32);
            entry.mem.at::<i32>(4).write_unaligned(0);
            entry.mem.at::<u64>(8).write_unaligned(unique);
        }
        self.commit(len)
    }

    /// The /dev/fuse channel of the ring's connection.
    pub(crate) fn device(&self) -> &ChannelSender {
        &self.ring.queue.device
    }

    /// Writes a reply (`fuse_out_header` then the reply's arguments) and commits it.
    pub(crate) fn send(&self, data: &[IoSlice<'_>]) -> io::Result<()> {
        let entry = &self.ring.entry;
        let total: usize = data.iter().map(|s| s.len()).sum();
        let payload = total.saturating_sub(OUT_HEADER_SIZE);
        // A lent payload is not written: only a reply without data may go before it is back.
        if total < OUT_HEADER_SIZE
            || payload > self.ring.queue.payload
            || (payload > 0 && self.lease().lent)
        {
            self.fail(ll::Errno::EIO);
            return Err(io::Error::other(format!(
                "FUSE reply of {total} bytes does not fit the ring entry"
            )));
        }
        let mut written = 0;
        for slice in data {
            let (head, rest) =
                slice.split_at(OUT_HEADER_SIZE.saturating_sub(written).min(slice.len()));
            let at = (written + head.len()).saturating_sub(OUT_HEADER_SIZE);
            // SAFETY: the entry is in user space. The header part goes to `in_out` (16 of its
            // 128 bytes), the rest to the payload, whose size was checked above.
            unsafe {
                ptr::copy_nonoverlapping(head.as_ptr(), entry.mem.at::<u8>(written), head.len());
                ptr::copy_nonoverlapping(
                    rest.as_ptr(),
                    entry.mem.at::<u8>(PAYLOAD_OFFSET + at),
                    rest.len(),
                );
            }
            written += slice.len();
        }
        self.commit(payload)
    }

    /// Answers with an error and no payload.
    fn fail(&self, errno: ll::Errno) {
        let entry = &self.ring.entry;
        let unique = entry.read_u64(8);
        // SAFETY: the entry is in user space; this writes `fuse_out_header`.
        unsafe {
            entry
                .mem
                .at::<u32>(0)
                .write_unaligned(OUT_HEADER_SIZE as u32);
            entry.mem.at::<i32>(4).write_unaligned(-errno.code());
            entry.mem.at::<u64>(8).write_unaligned(unique);
        }
        if let Err(e) = self.commit(0) {
            error!("committing a FUSE error reply failed: {e}");
        }
    }

    /// Commits the reply, or leaves that to the lent payload's drop.
    fn commit(&self, payload: usize) -> io::Result<()> {
        {
            let mut lease = self.lease();
            if lease.lent {
                lease.commit = Some(payload);
                return Ok(());
            }
        }
        self.commit_now(payload)
    }

    fn commit_now(&self, payload: usize) -> io::Result<()> {
        let ring = &self.ring;
        let entry = &ring.entry;
        // SAFETY: the entry is in user space; this writes `payload_sz` and its padding.
        unsafe {
            entry
                .mem
                .at::<u32>(PAYLOAD_SZ)
                .write_unaligned(payload as u32);
            entry.mem.at::<u32>(PAYLOAD_SZ + 4).write_unaligned(0);
        }
        if SERVING.get() == Arc::as_ptr(ring) {
            // Submitted with the thread's next wait.
            return ring.push_commit();
        }
        ring.forwarded.store(true, Ordering::Release);
        rustix::io::write(&ring.wake, &1u64.to_ne_bytes())?;
        Ok(())
    }
}

/// The number of possible CPUs: the kernel makes one queue for each.
pub(crate) fn possible_cpus() -> io::Result<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let parse = |s: &str| {
        s.parse::<usize>()
            .map_err(|_| io::Error::other(format!("unreadable CPU list {text:?}")))
    };
    let mut count = 0;
    for part in text.trim().split(',') {
        let (low, high) = part.split_once('-').unwrap_or((part, part));
        count += (parse(high)? + 1)
            .checked_sub(parse(low)?)
            .ok_or_else(|| io::Error::other(format!("unreadable CPU list {text:?}")))?;
    }
    Ok(count)
}
