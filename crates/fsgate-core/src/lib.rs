//! What every fsgate class shares.
//!
//! - [`Error`]: errno + the reference's Win32-style code + a message naming the argument;
//! - [`declare`]: [`declare_settings!`], one declaration per setting (field, default,
//!   `config` name, parsing and range, listing, doc);
//! - [`settings`]: the `config("NAME=VALUE")` table with the reference's boolean spellings;
//! - [`mask`]: file masks with wildcards, leading paths, per-process and inverted forms;
//! - [`dispatch`]: the event dispatcher (worker pool, per-file serialization, timeouts,
//!   `reset_timeout`, panics turned into failed requests);
//! - [`listener`]: the reader thread of every kernel source (poll on the source and a stop
//!   eventfd, no timer tick);
//! - [`memory`]: giving freed heap memory back to the system, without `unsafe` in callers;
//! - [`mountinfo`]: the mount table, parsed once for every class;
//! - [`originator`]: who made a request (pid, uid, gid, name, groups, capabilities);
//! - [`sync`]: the poison-tolerant lock helpers;
//! - [`shutdown`]: `shutdown_system`, shared by the direct access and process classes;
//! - [`BuildInfo`] and [`LICENSE_INFO`].

pub mod build;
pub mod declare;
pub mod dispatch;
pub mod error;
pub mod listener;
pub mod mask;
pub mod memory;
pub mod mountinfo;
pub mod originator;
pub mod settings;
pub mod shutdown;
pub mod sync;
pub mod threads;

pub use build::{BuildInfo, LICENSE_INFO};
pub use error::{code, Error, Result};
pub use mask::FileMask;
pub use originator::Originator;
pub use settings::Settings;
