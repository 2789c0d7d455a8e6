//! Event-driven virtual filesystems on FUSE (work in progress).
