//! fsgate-process (work in progress).
