//! Who made the request whose event is running: callable only inside an event handler
//! (elsewhere `ERROR_NO_CALLBACK_ACTIVE`, 614).
//!
//! The pid, uid and gid come with each FUSE request; the name and token are read from
//! `/proc/<pid>` when asked. Requests the kernel makes on its own (page-cache writeback,
//! readahead for another process) carry the pid of whichever process triggered them, or 0.

use fsgate_core::dispatch::current_originator;
use fsgate_core::originator::{self, Credentials};
use fsgate_core::Result;

/// `get_originator_process_id`: the pid of the process whose request fired this event.
pub fn get_originator_process_id() -> Result<u32> {
    Ok(current_originator("get_originator_process_id")?.pid)
}

/// `get_originator_process_name`: that process's short name (`/proc/<pid>/comm`).
pub fn get_originator_process_name() -> Result<String> {
    originator::process_name(current_originator("get_originator_process_name")?.pid)
}

/// `get_originator_thread_id` has no Linux counterpart (FUSE reports the thread-group id);
/// this is the uid the request runs with (its filesystem uid).
pub fn get_originator_user_id() -> Result<u32> {
    Ok(current_originator("get_originator_user_id")?.uid)
}

/// The gid the request runs with (its filesystem gid).
pub fn get_originator_group_id() -> Result<u32> {
    Ok(current_originator("get_originator_group_id")?.gid)
}

/// `get_originator_token`: the process's credentials (uids, gids, groups, capabilities).
pub fn get_originator_token() -> Result<Credentials> {
    originator::credentials(current_originator("get_originator_token")?.pid)
}
