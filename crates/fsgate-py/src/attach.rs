//! Attaching the dispatcher's threads to the interpreter, cheaply.
//!
//! `Python::attach` on a thread the interpreter does not know creates a Python thread state
//! and, when it detaches, destroys it again: done per event, that is most of what a handler
//! costs besides the handler itself. Each thread that runs a handler therefore keeps its
//! thread state from its first event until it ends (`on_worker_thread_termination`, or the
//! interpreter's own cleanup at exit for the FUSE reader threads, which end with the mount):
//! later events only take the GIL.

use std::cell::Cell;

use pyo3::ffi;
use pyo3::prelude::*;

thread_local! {
    /// Whether this thread holds the extra reference that keeps its thread state.
    static KEPT: Cell<bool> = const { Cell::new(false) };
}

/// `Python::attach`, keeping this thread's Python thread state alive after `f`.
pub(crate) fn attach<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    Python::attach(|py| {
        if !KEPT.with(Cell::get) {
            // SAFETY: the thread is attached (`py`), so this nested `PyGILState_Ensure` only
            // raises the thread state's use count (answering `PyGILState_LOCKED`); the count
            // then never falls to zero when `attach` detaches, so the state survives and only
            // the GIL is released. `release_thread_state` gives the count back.
            unsafe { ffi::PyGILState_Ensure() };
            KEPT.with(|k| k.set(true));
        }
        f(py)
    })
}

/// Gives back the reference [`attach`] took on this thread, so that the thread state goes
/// when this thread detaches. Call on a thread that is about to end.
pub(crate) fn release_thread_state() {
    if KEPT.with(Cell::get) {
        Python::attach(|_py| {
            // SAFETY: attached; balances the `PyGILState_Ensure` of `attach`, which answered
            // `PyGILState_LOCKED`, so this release only lowers the use count.
            unsafe { ffi::PyGILState_Release(ffi::PyGILState_STATE::PyGILState_LOCKED) };
            KEPT.with(|k| k.set(false));
        });
    }
}
