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
    /// The reference's `JournalingMode`. Either way each modification is one redb
    /// transaction, applied whole or not at all, and the vault reopens consistent.
    ///
    /// - **On:** every modification is fsynced before its method returns (the data file,
    ///   then the index); it survives a kill of the process, a kernel crash and a power loss.
    /// - **Off** (the default): every modification is written to the vault's files before
    ///   its method returns, without an fsync. It survives a kill of the process (`kill -9`,
    ///   a panic, the OOM killer) at any point: the kernel holds the written bytes and writes
    ///   them back after the process is gone. A power loss or kernel crash loses what was
    ///   not fsynced yet, and since the kernel writes pages back in any order, it can also
    ///   leave the index inconsistent, so that [`Vault::open`](crate::Vault::open) fails with
    ///   `ERROR_INVALID_DATA` (delete the vault's two files then; what external storage
    ///   holds is not affected), or leave index entries naming block bytes that never
    ///   reached the data file: reading such a block fails with `ERROR_INVALID_DATA`, never
    ///   returns the wrong bytes, and [`Vault::check_and_repair`](crate::Vault::check_and_repair)
    ///   drops it (a clean block is fetched again; unflushed bytes in it are lost). Slots
    ///   are not rewritten before the next sync, so an index that comes back as of the last
    ///   sync finds its blocks intact. The vault fsyncs at `file_flush` (any mode),
    ///   `flush_cache`, `close_cache` and when dropped, and the write-back thread at most a
    ///   second after a change, which bounds that window.
    ///
    /// Default: `false`.
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
