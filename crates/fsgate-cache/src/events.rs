//! The events the vault fires to move data to and from external storage.

use std::fmt;

use fsgate_core::Error;

/// The result an `on_read_data` / `on_write_data` handler reports (the reference's
/// `ResultCode` with its `RWRESULT_*` values).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RwResult(pub u32);

impl RwResult {
    /// Every byte asked for was transferred. Fewer bytes with this result count as
    /// [`RWRESULT_PARTIAL`](Self::RWRESULT_PARTIAL).
    pub const RWRESULT_SUCCESS: Self = Self(0x00);
    /// Some bytes were transferred: the vault keeps them and asks again for the rest (a
    /// partial answer of 0 bytes fails the call like [`RWRESULT_FAILURE`](Self::RWRESULT_FAILURE)).
    pub const RWRESULT_PARTIAL: Self = Self(0x80);
    /// Reads only: external storage ends at `position + bytes_read`. The vault keeps the bytes
    /// read, reads the rest of the file as zeros and asks for nothing past that offset again.
    pub const RWRESULT_RANGE_BEYOND_EOF: Self = Self(0x81);
    /// The external file changed (for example its size): the vault drops the file's clean
    /// cached data (dirty data stays) and the call fails with
    /// [`ERROR_FILE_INVALID`](crate::ERROR_FILE_INVALID).
    pub const RWRESULT_FILE_MODIFIED_EXTERNALLY: Self = Self(0x82);
    /// The file changed locally in a way that conflicts with the transfer: the call fails
    /// with [`ERROR_FILE_INVALID`](crate::ERROR_FILE_INVALID) and nothing is dropped.
    pub const RWRESULT_FILE_MODIFIED_LOCALLY: Self = Self(0x83);
    /// A transient failure: this call fails with [`ERROR_RETRY`](crate::ERROR_RETRY); later
    /// requests for this file and others are sent as usual, and unflushed data stays dirty.
    pub const RWRESULT_FAILURE: Self = Self(0x8D);
    /// The external file failed: no further request is sent for this file (its calls fail
    /// with `ERROR_GEN_FAILURE`) until [`Vault::reset_error_state`](crate::Vault::reset_error_state)
    /// with its id.
    pub const RWRESULT_FILE_FAILURE: Self = Self(0x8E);
    /// External storage failed: no further request is sent for any file (calls that need one
    /// fail with `ERROR_NOT_READY`) until `reset_error_state(None)`. Data already in the vault
    /// is still served.
    pub const RWRESULT_PERMANENT_FAILURE: Self = Self(0x8F);
}

impl Default for RwResult {
    fn default() -> Self {
        Self::RWRESULT_SUCCESS
    }
}

impl fmt::Debug for RwResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::RWRESULT_SUCCESS => "RWRESULT_SUCCESS",
            Self::RWRESULT_PARTIAL => "RWRESULT_PARTIAL",
            Self::RWRESULT_RANGE_BEYOND_EOF => "RWRESULT_RANGE_BEYOND_EOF",
            Self::RWRESULT_FILE_MODIFIED_EXTERNALLY => "RWRESULT_FILE_MODIFIED_EXTERNALLY",
            Self::RWRESULT_FILE_MODIFIED_LOCALLY => "RWRESULT_FILE_MODIFIED_LOCALLY",
            Self::RWRESULT_FAILURE => "RWRESULT_FAILURE",
            Self::RWRESULT_FILE_FAILURE => "RWRESULT_FILE_FAILURE",
            Self::RWRESULT_PERMANENT_FAILURE => "RWRESULT_PERMANENT_FAILURE",
            Self(other) => return write!(f, "RwResult({other:#x})"),
        };
        f.write_str(name)
    }
}

/// `on_read_data`: fill `buffer` with the external file's bytes at `position`.
#[derive(Debug)]
pub struct ReadDataParams<'a> {
    /// The file's id as the application spelt it when it created the file.
    pub file_id: &'a str,
    /// The file's application-defined size.
    pub size: u64,
    /// Offset in the external file.
    pub position: u64,
    /// Where to put the bytes; its length is the number asked for (never past `size`).
    /// Contents on entry are unspecified.
    pub buffer: &'a mut [u8],
    /// Output: bytes put in `buffer`, from its start. Pre-set to 0.
    pub bytes_read: usize,
    /// Output: how the transfer went. Pre-set to `RWRESULT_SUCCESS`.
    pub result_code: RwResult,
}

/// `on_write_data`: store `buffer` in the external file at `position`.
#[derive(Debug)]
pub struct WriteDataParams<'a> {
    /// The file's id as the application spelt it when it created the file.
    pub file_id: &'a str,
    /// The file's application-defined size: the external file must end up this long (the
    /// vault sends an empty `buffer` at `position == size` when only the size changed).
    pub size: u64,
    /// Offset in the external file.
    pub position: u64,
    /// The bytes to store.
    pub buffer: &'a [u8],
    /// Output: bytes stored, from the start of `buffer`. Pre-set to 0.
    pub bytes_written: usize,
    /// Output: how the transfer went. Pre-set to `RWRESULT_SUCCESS`.
    pub result_code: RwResult,
}

/// What the application does for the vault: move bytes between the vault and external
/// storage. Handlers run on the thread that called the vault method needing the data
/// (`file_read`, `file_set_size`, `file_flush`, `file_close_ex`, `flush_cache`) or on the
/// vault's write-back thread, and never with a vault lock held, so they may take as long as
/// the storage needs and may run concurrently for different ranges. They must not call back
/// into the same vault for the same file.
pub trait Events: Send + Sync + 'static {
    /// Fired when a read needs bytes the vault does not hold, and by `file_set_size` with
    /// `fetch_missing_data`. Not fired for local files, for bytes past a known end of the
    /// external file, or while the file or the vault is in the error state.
    fn on_read_data(&self, params: &mut ReadDataParams<'_>);

    /// Fired to flush dirty bytes: after the write-back delay, and by `file_flush`,
    /// `file_close_ex(…, FlushMode::Immediate)` and `flush_cache`. Until it reports the bytes
    /// written they stay dirty (never evicted, listed as changed or orphan).
    fn on_write_data(&self, params: &mut WriteDataParams<'_>);

    /// Fired when the write-back thread's flush of `file_id` fails; no caller would see the
    /// error otherwise. Unhandled: ignored (the data stays dirty and is retried after the
    /// delay).
    fn on_error(&self, file_id: &str, error: &Error) {
        let _ = (file_id, error);
    }
}
