//! Sample drives written only against the public `fsgate-vfs` API.
