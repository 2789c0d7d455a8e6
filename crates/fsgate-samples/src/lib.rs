//! The sample drives: complete filesystems written only against the public `fsgate-vfs`
//! API, to run, to measure and to copy.
//!
//! - [`memory::MemoryDrive`] keeps a POSIX filesystem in RAM;
//! - [`mirror::MirrorDrive`] shows a real directory through the events.
//!
//! Mount one with `cargo run -p fsgate-samples --example memory -- MOUNTPOINT` (as root, on
//! an existing empty directory; Ctrl-C unmounts), or `fsgate mount memory MOUNTPOINT`. Each
//! module's docs explain its design. The drives print nothing: to see their events, wrap
//! them in [`fsgate_vfs::Logged`].

pub mod memory;
pub mod mirror;
