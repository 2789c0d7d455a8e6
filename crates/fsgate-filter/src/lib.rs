//! fsgate-filter (work in progress).
