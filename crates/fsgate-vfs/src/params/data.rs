//! A file's data: reads, writes, size and space changes, and copies between files.

use super::*;

/// `on_read_file`: read `buffer.len()` bytes at `position`.
#[derive(Debug)]
pub struct ReadFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// Offset in the file.
    pub position: u64,
    /// Where to put the data; its length is the number of bytes asked for. Its contents on
    /// entry are unspecified (buffers are reused between reads): only the first
    /// `bytes_read` bytes are sent.
    pub buffer: &'a mut [u8],
    /// Output: bytes put in `buffer`. Fewer than asked means end of file. Pre-filled with 0.
    pub bytes_read: usize,
    /// The file's context, shared: with `SerializeAccess` off other reads of the file may
    /// run at the same time (keep what a read changes behind the context's own lock).
    pub file_context: Option<&'a F>,
    /// The context of the handle the kernel reads through (for page-cache reads, any open
    /// handle of the file), shared like the file's.
    pub handle_context: Option<&'a H>,
}

/// `on_write_file`: write `buffer` at `position`.
#[derive(Debug)]
pub struct WriteFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// Offset in the file (for `O_APPEND` handles the kernel has already put it at the end).
    pub position: u64,
    /// The data.
    pub buffer: &'a [u8],
    /// Whether the kernel is writing back pages it cached (`FileCache=System` without
    /// `file_cache_policy_write_through`), possibly long after the caller's `write`. The
    /// kernel then keeps the file's modification and change times itself and sends them
    /// with `on_set_file_attributes`: leave the times alone, or `stat` would show the
    /// moment of the write-back instead of the write.
    pub write_back: bool,
    /// Output: bytes written; the caller's `write` returns this. Pre-filled with 0.
    pub bytes_written: usize,
    /// The file's context.
    pub file_context: Option<&'a mut F>,
    /// The context of the handle the kernel writes through.
    pub handle_context: Option<&'a mut H>,
}

/// `on_set_file_size`: `truncate`, `ftruncate`, `open(O_TRUNC)`.
#[derive(Debug)]
pub struct SetFileSizeParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The new size: the file is cut or extended with zeros.
    pub size: u64,
    /// Output: the file's attributes after the change, as `stat` will show them. Pre-filled with
    /// defaults for the file's kind with the new `size` (the library does not know the rest). When
    /// the same `SETATTR` also fires `on_set_file_attributes` or `on_set_file_security`, the last
    /// event's `info` counts; set [`info_filled`](Self::info_filled) once filled.
    pub info: FileInfo,
    /// Output: whether the handler filled [`info`](Self::info). Pre-filled with false. When
    /// true the library answers the kernel with `info` and fires no `on_get_file_info`;
    /// when false it asks `on_get_file_info` after the event, one more event per request.
    pub info_filled: bool,
    /// The file's context, when the file is open.
    pub file_context: Option<&'a mut F>,
}

/// `on_set_allocation_size`: `fallocate` with mode 0 or `FALLOC_FL_KEEP_SIZE` asks for
/// space up to `allocation_size` bytes. Without `keep_size` the file size grows to it too
/// (never shrinks), as `fallocate(2)` requires; the new bytes read as zeros.
#[derive(Debug)]
pub struct SetAllocationSizeParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// Bytes to reserve from offset 0 (the end of the requested range).
    pub allocation_size: u64,
    /// `FALLOC_FL_KEEP_SIZE`: reserve the space but leave the file size as it is.
    pub keep_size: bool,
    /// The file's context (the file is open).
    pub file_context: Option<&'a mut F>,
}

/// `on_zeroize_file_range`: `fallocate` with `FALLOC_FL_PUNCH_HOLE` or
/// `FALLOC_FL_ZERO_RANGE`: bytes `position..position + length` read as zeros afterwards.
#[derive(Debug)]
pub struct ZeroizeFileRangeParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path.
    pub file_name: &'a Path,
    /// The first byte of the range.
    pub position: u64,
    /// The range's length in bytes (never 0).
    pub length: u64,
    /// `FALLOC_FL_PUNCH_HOLE`: the range's space is given back (a sparse file's hole);
    /// otherwise (`FALLOC_FL_ZERO_RANGE`) it stays allocated.
    pub deallocate: bool,
    /// `FALLOC_FL_KEEP_SIZE` (always set with `deallocate`): a range past the end does not
    /// grow the file. Without it, the file grows to `position + length` if it was smaller.
    pub keep_size: bool,
    /// The file's context (the file is open).
    pub file_context: Option<&'a mut F>,
}

/// `on_copy_file_range`: `copy_file_range(2)` between two open files of the drive (or
/// within one). A drive that can copy without moving the bytes through the caller (the
/// mirror, with the source filesystem's own `copy_file_range`) handles it; otherwise the
/// kernel copies with reads and writes.
#[derive(Debug)]
pub struct CopyFileRangeParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path of the file read from.
    pub file_name: &'a Path,
    /// Where reading starts.
    pub position: u64,
    /// The context of the file read from.
    pub file_context: Option<&'a F>,
    /// The context of the handle read from.
    pub handle_context: Option<&'a H>,
    /// The path of the file written to (may equal `file_name`).
    pub target_file_name: &'a Path,
    /// Where writing starts.
    pub target_position: u64,
    /// The context of the handle written to (may be the same handle as `handle_context`).
    pub target_handle_context: Option<&'a H>,
    /// How many bytes to copy at most.
    pub length: u64,
    /// Output: bytes copied (fewer than `length` only at the end of the source; 0 when
    /// `position` is at or past it).
    pub bytes_copied: u64,
}
