//! Who made the request whose event is running: callable only inside an event handler
//! (elsewhere `ERROR_NO_CALLBACK_ACTIVE`, 614).
//!
//! Each FUSE request names the calling thread and its filesystem uid and gid; the process
//! (thread-group id), its name and its token are read from `/proc` when asked, while the
//! caller still waits for the request. Requests the kernel makes on its own (page-cache
//! writeback, readahead for another process) carry the thread of whichever process
//! triggered them, or 0.
//!
//! Every params struct of such an event carries the same in its `originator` field
//! ([`Originator`](fsgate_core::Originator)); handlers that read it need no thread-local.
//! These functions stay for the reference's API.

use fsgate_core::dispatch::current_originator;
use fsgate_core::originator::Credentials;
use fsgate_core::Result;

/// `get_originator_process_id`: the pid (thread-group id) of the process whose request
/// fired this event, whichever of its threads made it.
///
/// The event's params carry the same in `originator`.
pub fn get_originator_process_id() -> Result<u32> {
    Ok(current_originator("get_originator_process_id")?.pid())
}

/// `get_originator_thread_id`: the id of the thread that made the request (`gettid()` in
/// that thread; the process id for its main thread).
///
/// The event's params carry the same in `originator`.
pub fn get_originator_thread_id() -> Result<u32> {
    Ok(current_originator("get_originator_thread_id")?.tid)
}

/// `get_originator_process_name`: that process's short name (`/proc/<pid>/comm`).
///
/// The event's params carry the same in `originator`.
pub fn get_originator_process_name() -> Result<String> {
    current_originator("get_originator_process_name")?.process_name()
}

/// The uid the request runs with (its filesystem uid).
///
/// The event's params carry the same in `originator`.
pub fn get_originator_user_id() -> Result<u32> {
    Ok(current_originator("get_originator_user_id")?.uid)
}

/// The gid the request runs with (its filesystem gid).
///
/// The event's params carry the same in `originator`.
pub fn get_originator_group_id() -> Result<u32> {
    Ok(current_originator("get_originator_group_id")?.gid)
}

/// `get_originator_token`: the process's credentials (uids, gids, groups, capabilities).
///
/// The event's params carry the same in `originator`.
pub fn get_originator_token() -> Result<Credentials> {
    current_originator("get_originator_token")?.credentials()
}
