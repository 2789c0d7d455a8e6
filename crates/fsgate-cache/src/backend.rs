//! The vault file as redb sees it: redb's own file backend, except that an *eventual* sync
//! does not reach the disk.
//!
//! redb commits a transaction by writing its pages and then its header with `pwrite`, and
//! only then asks the backend to sync (`sync_data`), eventually or at once; the commit
//! returns after that call. Once `pwrite` returns, the bytes are in the kernel's page cache,
//! which outlives the process: a process killed at any point afterwards leaves a file
//! holding the whole commit, and one killed in the middle of the writes leaves a header
//! whose new root fails redb's checksums, so the open falls back to the previous commit,
//! whose pages redb never reuses before the next commit. So a commit with
//! [`Durability::Eventual`](redb::Durability::Eventual) over this backend survives the
//! process at the cost of its `pwrite`s alone. It does not survive the machine: until an
//! [`Immediate`](redb::Durability::Immediate) commit fdatasyncs the file, the kernel writes
//! the pages back in any order, so a power loss or kernel crash may leave the header of one
//! commit over pages of another, which the open reports as corruption.

use std::fs::File;
use std::io;

use redb::backends::FileBackend;
use redb::StorageBackend;

/// redb's file backend whose eventual syncs are no-ops (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct ProcessSafeFile(FileBackend);

impl ProcessSafeFile {
    /// Wraps `file`, locking it against a second open (`DatabaseAlreadyOpen`).
    pub(crate) fn new(file: File) -> Result<Self, redb::DatabaseError> {
        FileBackend::new(file).map(Self)
    }
}

impl StorageBackend for ProcessSafeFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.0.len()
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, io::Error> {
        self.0.read(offset, len)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.0.set_len(len)
    }

    /// `eventual`: nothing; the writes before it are in the page cache already, in order as
    /// far as any later reader of the file (a reopen after a kill) can tell. Otherwise
    /// fdatasync.
    fn sync_data(&self, eventual: bool) -> Result<(), io::Error> {
        if eventual {
            Ok(())
        } else {
            self.0.sync_data(false)
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.0.write(offset, data)
    }
}
