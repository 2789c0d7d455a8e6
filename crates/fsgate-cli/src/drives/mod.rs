//! Sample drives written only against the public `fsgate-vfs` API.

pub mod memory;
pub mod mirror;
