//! What every fanotify reader of this crate does with its group on a wake-up: read the
//! queued events, and report a failed read or wait to the application.

use fsgate_core::code;
use fsgate_fanotify::{Event, EventBuffer, Group};

use crate::events::MonitorEvents;

/// The events `group` queued. A failed read fires `on_error` and gives none (dropping what
/// was read allows its permission events).
pub(crate) fn read<H: MonitorEvents + ?Sized>(
    handler: &H,
    group: &Group,
    buf: &mut EventBuffer,
) -> Vec<Event> {
    group.read_events(buf).unwrap_or_else(|e| {
        handler.on_error(code::ERROR_GEN_FAILURE, &format!("reading fanotify: {e}"));
        Vec::new()
    })
}

/// Waiting on the group failed: the reader ends, and says so through `on_error`.
pub(crate) fn wait_failed<H: MonitorEvents + ?Sized>(handler: &H, e: &std::io::Error) {
    handler.on_error(code::ERROR_GEN_FAILURE, &format!("polling fanotify: {e}"));
}
