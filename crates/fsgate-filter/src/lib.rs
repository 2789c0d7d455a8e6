//! File monitor and file filter for Linux, on fanotify and on FUSE overlays.
//!
//! - [`monitor::FileMonitor`]: the monitor class. A notification group reporting file ids,
//!   directory ids and names, marked on whole filesystems (the reference's volumes are
//!   mounts); events `on_notify_create_file`, `_open_file`, `_execute_file`, `_read_file`,
//!   `_write_file`, `_set_file_attributes`, `_close_file`, `_rename_or_move_file` (old and
//!   new names from one `FAN_RENAME` record), `_delete_file`, with full paths (`ID|<hex>`
//!   when a handle no longer resolves), pid, process name and uid.
//! - [`filter::FileFilter`]: the filter class. On fanotify: access rules decided in the
//!   listener, control events `on_before_create_file` / `_open_file` / `_read_file` /
//!   `on_before_execute` from permission events, plus the monitor's notifications. On the
//!   [`overlay`] backend (a FUSE mirror mounted over each filtered directory): every rule,
//!   Before and After events of every operation, contexts, reparse rules, virtual files and
//!   the [`direct`] file operations. The overlay lives in this crate, not a crate of its own,
//!   because `FileFilter` chooses the backend per rule set at `start_filter` and both share
//!   the rules, masks and event types.
//! - [`rules`]: standard, access and passthrough rules with the reference's aggregation and
//!   matching; masks are `fsgate_core::mask::FileMask` (per-process and inverted forms).
//!
//! Linux mappings and deviations from the reference:
//! - on fanotify, denials reach the caller as `EPERM` (fanotify lets only pre-content groups
//!   choose the errno); delete and rename protection, a create refused before the file
//!   exists, After events, contexts and edited listings come from the [`overlay`] backend,
//!   which `FileFilter` chooses when a rule needs it (or with `config("Backend=Overlay")`);
//!   reparse rules ([`reparse`]) and `FS_CE_REPARSE_FILENAME` are overlay-only too;
//! - create vs open: the caller's open flags are read from `/proc/<tid>/syscall` while it
//!   waits; `O_CREAT|O_EXCL` is a create (the reference's CREATE_NEW), anything else an open;
//! - the kernel merges identical unread notifications of one file and process; the
//!   notification group's queue is unlimited (`FAN_UNLIMITED_QUEUE`, as the reference's is
//!   not artificially limited), and on a kernel that refuses that, an overflow of its default
//!   queue (16384) fires `on_error`, never silently;
//! - rules added or removed while a class runs take effect at once: the kernel masks and
//!   the attached volumes are recomputed on every rule change, and a filter started without
//!   notify rules starts its notifications with the first one;
//! - uid and process name are read from `/proc/<pid>` when the listener handles the event:
//!   a process that exited or changed ids in between is reported as it is then;
//! - volumes follow the mount table: the reader thread watches `/proc/self/mountinfo`
//!   (`POLLPRI`) and fires `on_before_filter_attach_to_volume` / `on_after_filter_attach_to_volume`
//!   for each new mount at or below a mask's leading directory (any real mount for masks
//!   without one) and `on_after_filter_detach_from_volume` when an attached mount goes away.
//!   Handles are resolved through a detached clone of each mount (`open_tree(2)`), so the
//!   monitor never makes a mount busy: a plain `umount` works while it runs. The filter's
//!   permission group follows the mount table the same way (its mount marks do not pin
//!   mounts either); while a volume event handler runs on its reader thread, permission
//!   events wait;
//! - [`placeholder`]s are sparse files marked with the `user.fsgate.placeholder` extended
//!   attribute (the reference's `FILE_ATTRIBUTE_RECALL_ON_DATA_ACCESS`), served from
//!   `FAN_PRE_ACCESS` pre-content events (Linux 6.14; ext4, xfs, btrfs): the fsgate event
//!   `on_hydrate_file` supplies each range once, before the reader's call returns;
//! - `FilterOwnRequests` is always false: the listener's own process is never filtered, so a
//!   handler may read the very file it is asked about (the reference's direct file
//!   operations).

mod attach;
mod class;
pub mod direct;
pub mod events;
pub mod filter;
mod group;
pub mod monitor;
mod notify;
pub mod open_request;
pub mod overlay;
pub mod placeholder;
pub mod ranges;
pub mod reparse;
pub mod rules;
mod settings;
pub mod volumes;
