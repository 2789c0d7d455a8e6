//! `route_to_file`: an `on_create_file` or `on_open_file` handler hands the library a real
//! file, and the reads and writes of that handle go to it without further events.
//!
//! Where the kernel allows it (FUSE passthrough: kernel ≥ 6.9 with `CONFIG_FUSE_PASSTHROUGH`,
//! and a server with `CAP_SYS_ADMIN`), the kernel itself reads and writes the backing file:
//! no request reaches the drive at all ([`RouteMode::Passthrough`]). Otherwise the library
//! answers `READ` and `WRITE` requests of the handle with `pread`/`pwrite` on the backing
//! file on its reader threads, without firing events ([`RouteMode::Library`]). Either way
//! the caller sees the backing file's bytes.
//!
//! The kernel requires every open of one inode to agree: while a file has handles that are
//! not routed, a routed open of it is served in library mode, and while it has passthrough
//! handles, the backing file of the first one serves the later ones too.
//!
//! A writable open by a caller other than root of a backing file with set-id bits or a
//! capability attribute is served in library mode too, so that its writes take them away
//! as on ext4 (see the crate docs on set-id bits); on an inode that already has passthrough
//! handles, that open takes them away at once.

use std::fs::File;

/// `ROUTE_CLOSE_EVENT` (the reference's `CBFS_ROUTE_CLOSE_EVENT`): the routed handle still
/// fires `on_cleanup_file` and `on_close_file` when it is closed. Without it, the handle's
/// last event is the one that routed it; its contexts are still dropped when it closes.
pub const ROUTE_CLOSE_EVENT: u32 = 0x1;

/// How routed handles are served on a mounted drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteMode {
    /// The kernel reads and writes the backing files itself (FUSE passthrough).
    Passthrough,
    /// The library reads and writes the backing files on its reader threads: the kernel
    /// lacks passthrough or the server lacks `CAP_SYS_ADMIN`.
    Library,
}

/// A routing request left by a handler.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) file: File,
    pub(crate) flags: u32,
}
