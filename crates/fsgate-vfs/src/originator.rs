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
//! These functions stay for the reference's API; they are `fsgate_core`'s, the same for
//! every class.

pub use fsgate_core::originator::{
    get_originator_group_id, get_originator_process_id, get_originator_process_name,
    get_originator_thread_id, get_originator_token, get_originator_user_id,
};
