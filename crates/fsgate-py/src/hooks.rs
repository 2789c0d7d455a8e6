//! The `on_*` properties: which Python callable answers which event, and how one is called.

use std::sync::{Arc, RwLock};

use fsgate_core::{code, Error, Result};
use pyo3::prelude::*;
use pyo3::PyClass;

use crate::error::{from_handler_exception, from_result_code};

/// Declares the events a Python drive can handle, in one place: the enum, and the names
/// `VirtualDrive.EVENTS` lists (the `on_*` properties the package defines from it).
macro_rules! events {
    ($($variant:ident => $name:literal,)*) => {
        /// An event a Python handler can answer.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Event { $($variant,)* }

        impl Event {
            /// Every event, in declaration order.
            pub(crate) const ALL: &'static [Event] = &[$(Event::$variant,)*];

            /// The reference's property name (`on_create_file`).
            pub(crate) fn name(self) -> &'static str {
                match self { $(Event::$variant => $name,)* }
            }
        }
    };
}

events! {
    Mount => "on_mount",
    Unmount => "on_unmount",
    GetVolumeSize => "on_get_volume_size",
    GetVolumeLabel => "on_get_volume_label",
    GetVolumeId => "on_get_volume_id",
    CreateFile => "on_create_file",
    OpenFile => "on_open_file",
    CleanupFile => "on_cleanup_file",
    CloseFile => "on_close_file",
    GetFileInfo => "on_get_file_info",
    EnumerateDirectory => "on_enumerate_directory",
    CloseDirectoryEnumeration => "on_close_directory_enumeration",
    ReadFile => "on_read_file",
    WriteFile => "on_write_file",
    SetFileSize => "on_set_file_size",
    SetAllocationSize => "on_set_allocation_size",
    SetFileAttributes => "on_set_file_attributes",
    RenameOrMoveFile => "on_rename_or_move_file",
    CanFileBeDeleted => "on_can_file_be_deleted",
    DeleteFile => "on_delete_file",
    IsDirectoryEmpty => "on_is_directory_empty",
    FlushFile => "on_flush_file",
    SetFileSecurity => "on_set_file_security",
    CreateHardLink => "on_create_hard_link",
    CreateSymbolicLink => "on_create_symbolic_link",
    GetSymbolicLinkTarget => "on_get_symbolic_link_target",
    ExchangeFiles => "on_exchange_files",
    ZeroizeFileRange => "on_zeroize_file_range",
    CopyFileRange => "on_copy_file_range",
    GetEa => "on_get_ea",
    SetEa => "on_set_ea",
    ListEas => "on_list_eas",
    RemoveEa => "on_remove_ea",
    Error => "on_error",
    WorkerThreadCreation => "on_worker_thread_creation",
    WorkerThreadTermination => "on_worker_thread_termination",
}

impl Event {
    /// The event named `name`, or `ERROR_INVALID_PARAMETER` naming it.
    pub(crate) fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|e| e.name() == name)
            .ok_or_else(|| Error::invalid_argument("event", format!("no event named {name}")))
    }
}

/// The handlers set on one drive, shared by the Python object and the mounted drive's
/// events (so a handler set while mounted answers the next event).
#[derive(Default)]
pub(crate) struct Hooks {
    slots: RwLock<Vec<Option<Arc<Py<PyAny>>>>>,
}

impl Hooks {
    /// The handler of `event`, if one is set. Needs no interpreter: an unhandled event
    /// never attaches to Python.
    pub(crate) fn get(&self, event: Event) -> Option<Arc<Py<PyAny>>> {
        let slots = self.slots.read().ok()?;
        slots.get(event as usize).cloned().flatten()
    }

    /// Sets or (with `None`) removes the handler of `event`.
    pub(crate) fn set(&self, event: Event, handler: Option<Py<PyAny>>) -> Result<()> {
        let mut slots = self.slots.write().map_err(|_| {
            Error::from_code(
                fsgate_core::code::ERROR_INTERNAL_ERROR,
                "handler table poisoned",
            )
        })?;
        if slots.len() < Event::ALL.len() {
            slots.resize(Event::ALL.len(), None);
        }
        if let Some(slot) = slots.get_mut(event as usize) {
            *slot = handler.map(Arc::new);
        }
        Ok(())
    }
}

/// A params object: its `result_code`, which fails the request when non-zero.
pub(crate) trait EventParams: PyClass + Into<pyo3::PyClassInitializer<Self>> {
    /// The value the handler left in `result_code`.
    fn result_code(&self) -> i64;
}

impl Hooks {
    /// Calls `handler(params)` and returns the params object for reading its outputs.
    ///
    /// An exception in the handler fails the request as [`Hooks::exception`] says (an
    /// unexpected one with `EIO`, firing `on_error` with the exception's text, or without an
    /// `on_error` handler printing the traceback to stderr); a non-zero `result_code` fails
    /// it with that code's errno.
    pub(crate) fn call<'py, P: EventParams>(
        &self,
        py: Python<'py>,
        event: Event,
        handler: &Py<PyAny>,
        params: P,
    ) -> Result<Bound<'py, P>> {
        let object = Bound::new(py, params).map_err(|e| self.exception(py, event, e))?;
        handler
            .call1(py, (object.clone(),))
            .map_err(|e| self.exception(py, event, e))?;
        let code = object
            .try_borrow()
            .map_err(|e| self.exception(py, event, e.into()))?
            .result_code();
        from_result_code(code, event.name())?;
        Ok(object)
    }

    /// Turns an exception raised by (or while preparing) a handler into the error the caller
    /// sees (see [`from_handler_exception`]): an `FsgateError` carries its code, an
    /// `OSError` its errno; anything else is `EIO` and is reported through `on_error`.
    pub(crate) fn exception(&self, py: Python<'_>, event: Event, e: PyErr) -> Error {
        let (error, unexpected) = from_handler_exception(py, event.name(), &e);
        if unexpected {
            let text = error.message().to_string();
            self.report_error(py, code::ERROR_GEN_FAILURE, &text, Some(e));
        }
        error
    }

    /// Fires the Python `on_error` handler; without one, prints `exception` (or the text) to
    /// stderr. An exception in `on_error` itself goes to `sys.unraisablehook`.
    pub(crate) fn report_error(
        &self,
        py: Python<'_>,
        error_code: u32,
        description: &str,
        exception: Option<PyErr>,
    ) {
        match self.get(Event::Error) {
            Some(handler) => {
                let params = crate::params::ErrorParams::new(error_code, description);
                if let Err(e) = handler.call1(py, (params,)) {
                    e.write_unraisable(py, None);
                }
            }
            None => match exception {
                Some(e) => e.display(py),
                None => eprintln!("fsgate: virtual drive error {error_code}: {description}"),
            },
        }
    }
}
