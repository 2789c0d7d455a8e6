//! Contexts: any Python object, stored in the Rust drive's context slots.

use pyo3::prelude::*;

/// A Python object a handler stored as a file, handle or enumeration context.
///
/// The library drops contexts on its own threads, usually without the interpreter attached;
/// dropping this attaches to release the object at once (its `__del__` and weak-reference
/// callbacks run right after the context's last event), rather than whenever PyO3 next
/// drains its pool of deferred releases. During interpreter shutdown the object is left to
/// the interpreter.
pub(crate) struct PyContext(Option<Py<PyAny>>);

impl PyContext {
    /// Wraps `object`.
    pub(crate) fn new(object: Py<PyAny>) -> Self {
        Self(Some(object))
    }

    /// A new reference to the object, for a params object.
    pub(crate) fn object(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.0.as_ref().map(|o| o.clone_ref(py))
    }

    /// Replaces the object (a handler set the property to another value).
    pub(crate) fn replace(&mut self, object: Py<PyAny>) {
        *self = Self::new(object);
    }
}

impl Drop for PyContext {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            // `try_attach` answers `None` while the interpreter shuts down; the object then
            // goes to PyO3's pool of deferred releases, which is never drained again.
            let _ = Python::try_attach(|_py| drop(object));
        }
    }
}

/// A context slot the library gives as `Option<&mut PyContext>` (the file or handle is
/// open, or not): what the handler gets, and how its value is stored back.
pub(crate) fn read_slot(py: Python<'_>, slot: Option<&PyContext>) -> Option<Py<PyAny>> {
    slot.and_then(|c| c.object(py))
}

/// Stores a handler's value back into a slot of an open file or handle. A slot the library
/// does not have (the file is not open) cannot take a value: `Err` naming the property.
pub(crate) fn write_slot(
    py: Python<'_>,
    slot: Option<&mut PyContext>,
    value: Option<Py<PyAny>>,
    property: &str,
    event: &str,
) -> fsgate_core::Result<()> {
    let value = value.unwrap_or_else(|| py.None());
    match slot {
        Some(c) => {
            if c.0.as_ref().is_none_or(|old| !old.is(&value)) {
                c.replace(value);
            }
            Ok(())
        }
        None if value.is_none(py) => Ok(()),
        None => Err(fsgate_core::Error::invalid_argument(
            property,
            format!("{event} has no {property} to set: the object is not open"),
        )),
    }
}

/// [`write_slot`] for the file context, the slot most events give back.
pub(crate) fn write_file_context(
    py: Python<'_>,
    slot: Option<&mut PyContext>,
    value: Option<Py<PyAny>>,
    event: &str,
) -> fsgate_core::Result<()> {
    write_slot(py, slot, value, "file_context", event)
}

/// A slot the handler fills (`on_create_file`, `on_open_file`, the first
/// `on_enumerate_directory`): `None` from Python empties it.
pub(crate) fn fill_slot(py: Python<'_>, slot: &mut Option<PyContext>, value: Option<Py<PyAny>>) {
    match value {
        Some(v) if !v.is_none(py) => {
            if slot
                .as_ref()
                .and_then(|c| c.0.as_ref())
                .is_none_or(|old| !old.is(&v))
            {
                *slot = Some(PyContext::new(v));
            }
        }
        _ => *slot = None,
    }
}
