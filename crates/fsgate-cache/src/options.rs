//! How a vault is opened.

use std::time::Duration;

/// Options for [`Vault::open`](crate::Vault::open) (the reference's `OpenCache` parameters and
/// configuration settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultOptions {
    /// Whether file ids that differ only in case name different files. Fixed when the vault
    /// is created: opening it later with the other value fails with `ERROR_INVALID_PARAMETER`.
    /// Case-insensitive ids compare after Unicode lower-casing. Default: `true`.
    pub case_sensitive: bool,
    /// The reference's `JournalingMode`. On: every modification is durable (fsync) when its
    /// method returns and survives a crash, a kill or a power loss. Off: modifications are
    /// committed without fsync and become durable at the next sync — `file_flush` (any
    /// mode), a flush, `close_cache`, dropping the vault, or the write-back thread's tick
    /// (at most a second apart); a crash or kill goes back to the last sync. Either way the
    /// vault reopens consistent: a transaction is applied whole or not at all. Default:
    /// `false`.
    pub journaling: bool,
    /// Cached bytes at most (0: no limit). Past it the least recently used clean blocks are
    /// evicted; dirty bytes and local files are never evicted, so a write that would pass the
    /// limit with nothing clean left first flushes, then fails with `ERROR_DISK_FULL`. A read
    /// that fills in blocks holding dirty bytes may pass the limit; it flushes and evicts,
    /// and while external storage is unreachable the limit stays passed.
    pub size_limit: u64,
    /// How long dirty data waits before the write-back thread flushes it (the reference's
    /// `FlushAfterTime`); counted from the file's first unflushed write. Zero: no background
    /// flushing, only explicit flushes.
    pub flush_delay: Duration,
    /// Bytes per block, the unit of storage, checksums and eviction: a power of two from 4 KiB
    /// to 1 MiB. Fixed when the vault is created; a different value later is ignored.
    /// Default: 64 KiB.
    pub block_size: u32,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            case_sensitive: true,
            journaling: false,
            size_limit: 0,
            flush_delay: Duration::from_secs(2),
            block_size: 64 * 1024,
        }
    }
}
