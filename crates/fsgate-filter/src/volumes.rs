//! Volumes on Linux are mounts, read from the mount table (`fsgate_core::mountinfo`) and
//! watched for changes with `poll(POLLPRI)` on `/proc/self/mountinfo` (the kernel raises it
//! when the mount table changes).

pub use fsgate_core::mountinfo::{current, holding, MountEntry as Volume};
