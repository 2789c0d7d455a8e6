//! Event-driven virtual filesystems on FUSE.
//!
//! An application implements [`Events`] — `on_create_file`, `on_read_file`,
//! `on_enumerate_directory`, … with the reference's names — creates a [`VirtualDrive`] and
//! mounts it on an empty directory. Every process on the machine then uses the drive through
//! ordinary system calls; each call becomes one or more events, run on the
//! `fsgate_core::dispatch` worker pool, and each handler's `Err` becomes the errno the
//! caller sees.
//!
//! # Linux mapping
//!
//! | reference | Linux (FUSE request → event) |
//! |---|---|
//! | mount media + mounting point | `mount(2)` of a FUSE connection (as root; through `fusermount3` otherwise), on an existing empty directory |
//! | extra mounting points | bind mounts of the same mount, each watched by a small child process that removes it if the server dies |
//! | `on_get_file_info` | `LOOKUP`, `GETATTR`; answers are cached for `MetadataCacheTimeout` |
//! | `FileCache` system / none / user-mode | page cache kept across opens (`FOPEN_KEEP_CACHE`, writeback cache unless `FileCachePolicyWriteThrough`) / `FOPEN_DIRECT_IO` / fsgate's LRU block cache behind direct I/O (`UserModeFileCacheSize`) |
//! | `MetadataCacheEnabled`/`Size` | entry and attribute timeouts; at most `MetadataCacheSize` objects hold one at a time |
//! | `NonExistentFilesCacheEnabled`/`Size` | negative entries (inode 0 with a timeout), bounded the same way |
//! | `UseFileIds` | the application's `file_id`s are the inode numbers (`stat`, `readdir`); the root is 1 |
//! | `UseHardLinks` | `LINK` reaches `on_create_hard_link`, else `EPERM` |
//! | `route_to_file` (from `on_create_file`/`on_open_file`) | FUSE passthrough (`FOPEN_PASSTHROUGH` with a backing file per inode, kernel ≥ 6.9, server with `CAP_SYS_ADMIN`), else `pread`/`pwrite` on the backing file by the library; [`VirtualDrive::route_mode`] says which |
//! | `use_direct_io` (fsgate addition, from `on_create_file`/`on_open_file`) | `FOPEN_DIRECT_IO` for that handle alone (its file's other handles keep their caching), and a zero entry and attribute timeout for the file while such a handle is open, its cached attributes dropped at the open (`FUSE_NOTIFY_INVAL_INODE`); see [`OpenFileParams::use_direct_io`] |
//! | `on_create_file` | `CREATE` (`open(O_CREAT)` on a missing name), `MKNOD` (regular files), `MKDIR` |
//! | `on_open_file` | `OPEN`, `OPENDIR` of an existing object; with `KernelOpensFiles`, no `OPEN`: the first request of a file with a descriptor the kernel opened itself (`READ`, `WRITE`, `FLUSH`, `FSYNC` with handle 0), or the delete of its last name |
//! | `on_set_file_size` | `SETATTR(size)`: `truncate`, and `open(O_TRUNC)` before its `on_open_file` |
//! | `on_cleanup_file` | `FLUSH` (each `close(2)`); with `FireCleanupEvents` off, none (the kernel stops sending `FLUSH`) |
//! | `on_close_file` | `RELEASE`, `RELEASEDIR`; with `KernelOpensFiles`, the `FORGET` of a file the kernel opened itself |
//! | `on_enumerate_directory` (one call per entry) | `READDIR`; the whole listing is gathered at the first read of a handle |
//! | `on_close_directory_enumeration` | `RELEASEDIR` of a handle that was read |
//! | `on_can_file_be_deleted` + `on_delete_file` | `UNLINK`, `RMDIR` (after `on_is_directory_empty`) |
//! | `on_rename_or_move_file` | `RENAME` (`RENAME_EXCHANGE` is refused with `EINVAL`) |
//! | `on_set_file_attributes` / `on_set_file_security` | `SETATTR(mode, times)` / `SETATTR(uid, gid)` |
//! | `on_set_allocation_size` | `FALLOCATE` mode 0 |
//! | `on_flush_file` | `FSYNC`, `FSYNCDIR` |
//! | `on_create_hard_link` | `LINK` |
//! | reparse-point symbolic links | `on_create_symbolic_link` (`SYMLINK`), `on_get_symbolic_link_target` (`READLINK`) |
//! | extended attributes | `on_get_ea`, `on_set_ea`, `on_list_eas`, `on_remove_ea` (`GETXATTR`, …) |
//! | `on_get_volume_size` | `STATFS` |
//! | `on_get_volume_label`, `on_get_volume_id` | once at mount (label → mount source name) |
//!
//! # Contexts
//!
//! Contexts are the trait's associated types, values the drive builds itself (no `Default`
//! or other bound but `Send + Sync`): the open or create handler stores them in its params'
//! `file_context` and `handle_context` slots, and the library drops them after their last
//! event, following the reference's table. For one file opened by A, then B, closed by B,
//! opened by C, closed by A, closed by C:
//!
//! | step | contexts stored / dropped | alive after |
//! |---|---|---|
//! | 1 A opens | FX, HXA stored by `on_open_file` | FX, HXA |
//! | 2 B opens | HXB stored | FX, HXA, HXB |
//! | 3 B closes | HXB dropped after `on_close_file` | FX, HXA |
//! | 4 C opens | HXC stored | FX, HXA, HXC |
//! | 5 A closes | HXA dropped | FX, HXC |
//! | 6 C closes | HXC and FX dropped after `on_close_file` | — |
//!
//! A context stored by an event (`on_create_file`, `on_open_file`,
//! `on_enumerate_directory`) that fails or times out is dropped at once. A slot the
//! handler leaves empty is `None` in every later event (the reference's null context). With
//! `fire_all_open_close_events` off, `on_open_file` fires only at step 1 and
//! `on_close_file` only at step 6, so the handles of steps 2 and 4 have no handle context
//! (as the reference says, handle contexts are then of no use); every handle still reaches
//! `on_read_file`/`on_write_file` with the file context. `mkdir` and `mknod` fire
//! `on_create_file` with empty slots and drop what it stores right after it (nothing stays
//! open).
//!
//! # Concurrency and timeouts
//!
//! Events run on the dispatcher: `FuseReaderThreadCount` threads read `/dev/fuse` (each
//! with a cloned descriptor), or, with `IoUringThreadsPerQueue` set and a kernel that offers
//! it, threads bound to each CPU take requests over io_uring ([`transport`]). Without a
//! timeout, an event whose path is idle runs right on the thread that received it (all
//! readers but one may do so at once; over io_uring, only while another thread of the
//! CPU's queue is idle), saving two thread switches per request; otherwise, and always with
//! a timeout, it runs on the dispatcher's workers, so a stuck handler never stops the
//! readers. Events for one path
//! run one at a time in arrival order (except reads of different ranges with
//! `serialize_access` off); different paths run in parallel; `serialize_events` runs
//! everything in order on one key. With a timeout, a request whose handler has not
//! returned by the deadline fails with `EIO`, later events for that file proceed, and the
//! late result — including any context it created — is dropped. `reset_timeout` from
//! inside a handler pushes the deadline back. A panicking handler fails its request with
//! `EIO`, fires `on_error`, and the drive keeps serving.
//!
//! # Caching
//!
//! The kernel's caches are the reference's: with the defaults (system file cache, metadata
//! and non-existent-files caches on, 10 s timeout) a `stat`, a path walk or a re-read of a
//! file reaches the drive only when the kernel's copy has expired or was invalidated. A
//! drive whose data changes behind the kernel's back calls
//! [`notify_directory_change`](VirtualDrive::notify_directory_change) (names, including
//! names that did not exist) or [`notify_file_change`](VirtualDrive::notify_file_change)
//! (attributes and data, also the user-mode cache); until then the old answers stay.
//! Without a notification, a refreshed attribute answer with a new size or modification
//! time makes the kernel drop the file's pages (`FUSE_AUTO_INVAL_DATA`).
//!
//! # Throughput
//!
//! Requests carry up to 1 MiB (`max_write`; for reads the library raises its mount's
//! readahead to 1 MiB through `/sys/class/bdi`, which `INIT` cannot do); 64 background
//! requests may be in flight; lookups in one directory run in parallel; with
//! `SerializeAccess` off, reads of one file run in parallel; `FuseReaderThreadCount` threads
//! read `/dev/fuse` on cloned descriptors. fuser copies each request into its buffer and each
//! reply out of it (no splice): data-heavy drives should route files
//! (`route_to_file`), which takes the drive out of the data path entirely.
//!
//! # Round trips
//!
//! A namespace operation costs a fixed number of synchronous kernel round trips, whatever
//! the drive does (counted with the kernel's `fuse:fuse_request_send` tracepoint by
//! `bench/fuse/roundtrips.py`, with the default caches): create 3 (`GETATTR` of the
//! parent, `LOOKUP` of the new name, `CREATE`), open 1 (`OPEN`; none with
//! [`Options::kernel_opens_files`]), stat and listings of an unchanged directory 0,
//! rename 3, delete 2, mkdir 3, rmdir 2; `RELEASE` and `FORGET` are asynchronous. Each
//! `close(2)` adds a `FLUSH` unless [`Options::fire_cleanup_events`] is off. The parent's `GETATTR` comes from the kernel:
//! after changing a directory it forgets the directory's attributes, and
//! `default_permissions` needs its mode for the next permission check. libfuse drives
//! (bindfs) pay the same requests; what separates drives is the time per round trip
//! (`bench/README.md` compares fsgate's drives with the fastest FUSE filesystem a machine
//! can run). On a VM whose idle vCPUs halt at once, that time is mostly the wake-up of a
//! halted vCPU, which FUSE over io_uring avoids by serving each request on the CPU that made
//! it (see [`transport`] for what that costs streaming reads).
//!
//! # Every kind of file, and the operations beyond read and write
//!
//! - **Kinds.** Besides files, directories and symbolic links, a drive may hold FIFOs,
//!   Unix socket names and character and block device nodes ([`FileKind`]):
//!   `mkfifo`, `bind` and `mknod` reach `on_create_file` with
//!   [`CreateFileParams::kind`] and [`CreateFileParams::rdev`]. The drive stores only
//!   their names and metadata; the kernel serves what they name and never asks the drive
//!   for their data. Device nodes open their devices only when the drive is mounted with
//!   [`Options::allow_devices`] (root only; else `EACCES`, as on a `nodev` mount).
//! - **Names** longer than 255 bytes fail with `ENAMETOOLONG` before any event, and
//!   `statvfs` reports `f_namemax` 255, as on ext4.
//! - **`fallocate`**: mode 0 and `FALLOC_FL_KEEP_SIZE` fire `on_set_allocation_size`;
//!   `FALLOC_FL_PUNCH_HOLE` and `FALLOC_FL_ZERO_RANGE` fire `on_zeroize_file_range`. The
//!   kernel refuses `FALLOC_FL_COLLAPSE_RANGE` and `FALLOC_FL_INSERT_RANGE` on FUSE files
//!   with `EOPNOTSUPP` before asking any drive, and `FALLOC_FL_ZERO_RANGE` too before
//!   Linux learned to forward it.
//! - **`copy_file_range`** fires `on_copy_file_range` with both handles' contexts; left
//!   unhandled (`ENOSYS`), the kernel copies through reads and writes.
//! - **`RENAME_EXCHANGE`** fires `on_exchange_files`; unhandled, it fails with `EINVAL`.
//! - **ioctls** are answered `ENOTTY` (no ioctl has a meaning on a drive), quietly.
//! - **Set-id bits and file capabilities** go on write, truncate and chown as on ext4. With
//!   `FUSE_HANDLE_KILLPRIV_V2` (whenever the kernel offers it) the library clears them
//!   itself, through `on_set_file_attributes` and `on_remove_ea`, and only when there is
//!   something to clear: writes no longer cost a `security.capability` lookup and a mode
//!   change each. Passthrough writes never reach the library, so a writable open by a
//!   caller other than root of a routed file whose backing file has set-id bits or a
//!   capability attribute is served by the library instead; when the file is already open
//!   through passthrough (the kernel then requires passthrough for every open of it), that
//!   open clears them at once, before any write. One case no drive can serve: `chown(2)`
//!   with neither owner nor group on a drive without the writeback cache reaches no drive
//!   at all under `KILLPRIV_V2`, so its set-id bits stay.
//! - **`fsync`** fires `on_flush_file`; a drive that leaves it unhandled has nothing to
//!   persist, and after its first `ENOSYS` the kernel sends no more fsyncs.
//!
//! # Deviations from the reference
//!
//! - `FileCachePolicyWriteThrough` defaults to true: under the kernel's writeback cache the
//!   kernel trusts its own sizes and times of cached files and ignores the drive's, so
//!   notifications could no longer reveal changes made behind its back.
//! - A routed handle (`route_to_file`) without `ROUTE_CLOSE_EVENT` fires no
//!   `on_cleanup_file`/`on_close_file`; its contexts are still dropped when it closes. The
//!   kernel requires one backing file per inode: while a file is open unrouted, routed opens
//!   of it are served by the library, and an unrouted open of a file with passthrough
//!   handles fails in the kernel.
//! - The user-mode file cache belongs to one drive (`UserModeFileCacheSize` per drive), not
//!   to the process; there is no kernel-mode cache of fsgate's own (the page cache is it).
//! - Read handlers get the file and handle contexts as shared references (`Option<&F>`), so that
//!   `SerializeAccess` off can run non-overlapping reads of one file in parallel; contexts are
//!   therefore `Sync`. Every other event gets them as `Option<&mut F>`.
//! - Without `use_file_ids`, `readdir` shows per-name placeholder inode numbers for names not
//!   looked up yet (`stat` shows the real one); with it, both show the application's ids.
//! - Share modes do not exist on Linux (every open shares everything): the create and open
//!   params have no `share_mode`; [`CreateFileParams::kind`] and [`OpenFileParams::kind`]
//!   say what is created or opened.
//! - Deletion is immediate (`unlink`), not on close; open handles keep working through their
//!   contexts.
//! - Every event a caller's request fires carries its [`Originator`](fsgate_core::Originator)
//!   in its params (`originator`: thread, process, uid, gid); the `get_originator_*`
//!   functions still answer the same inside a handler. Events the library fires on its own
//!   (mount, unmount, the volume label and id) have none.
//! - Create events return what they created, as WinFsp's create fills the file info: the
//!   create, link and set-attribute events have an output `info` with `info_filled`; a
//!   handler that fills it spares the `on_get_file_info` that otherwise follows.
//! - Names are bytes ([`Path`](std::path::Path) and [`OsStr`](std::ffi::OsStr) in the
//!   params), as Linux has them: any name the kernel allows reaches the drive unchanged, and
//!   matching is byte for byte (case-sensitive).
//! - The volume label and id are asked once, at mount.
//! - Hard links are several paths for one kernel inode; events name the path the kernel
//!   used. Without `use_file_ids` two names are known to be one inode only while the kernel
//!   keeps it cached (links made through the drive); with it, always.

mod buffers;
pub mod cache;
mod change;
pub mod drive;
mod engine;
pub mod events;
mod mounted;
pub mod options;
pub mod originator;
pub mod params;
pub mod route;
mod sys;
pub mod transport;
mod wire;

pub mod logging;
pub use logging::{LogFormat, Logged};

pub use drive::{ChangeAction, VirtualDrive};
pub use events::Events;
pub use fsgate_core::dispatch::Hooks;
pub use options::{FileCache, Options};
pub use originator::{
    get_originator_group_id, get_originator_process_id, get_originator_process_name,
    get_originator_thread_id, get_originator_token, get_originator_user_id,
};
pub use params::*;
pub use route::{RouteMode, ROUTE_CLOSE_EVENT};
pub use transport::Transport;
