//! fsgate-direct (work in progress).
