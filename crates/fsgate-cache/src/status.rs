//! File states and the modes of the enumeration and flush methods.

bitflags::bitflags! {
    /// What [`Vault::file_get_status`](crate::Vault::file_get_status) reports about a file.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct FileStatus: u32 {
        /// Opened with `file_open` and not yet closed as often.
        const OPEN = 0x01;
        /// Holds bytes or a size not yet flushed to external storage.
        const CHANGED = 0x02;
        /// A local file: never read from or written to external storage.
        const LOCAL = 0x04;
        /// Not open and `CHANGED`: left by a close without flush or by a crash.
        const ORPHAN = 0x08;
        /// In the error state after `RWRESULT_FILE_FAILURE`.
        const ERROR = 0x10;
    }
}

/// Which files [`Vault::enumerate_cached_files`](crate::Vault::enumerate_cached_files) lists
/// (the reference's `ENUM_MODE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnumMode {
    /// Every file.
    All,
    /// Files with unflushed changes.
    Changed,
    /// Files without unflushed changes.
    Unchanged,
    /// Local files.
    Local,
    /// Orphan files: not open, with unflushed changes.
    Orphan,
}

/// When a flush happens (the reference's `FLUSH_*` modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlushMode {
    /// Now, on the calling thread; the call returns the transfer's error.
    Immediate,
    /// By the write-back thread once the flush delay has passed since the first unflushed
    /// write.
    Delayed,
    /// Not at all: a file closed this way with unflushed data becomes an orphan.
    None,
}
