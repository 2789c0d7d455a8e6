//! The parameter structs the events receive: the reference's inputs (read them) and outputs
//! (write them), with Linux meanings.
//!
//! Every `file_name` is a full path inside the drive with `/` separators, starting at the
//! drive's root: `/`, `/a.txt`, `/dir/b`. Names are bytes, as Linux has them: a
//! [`Path`] (and [`OsStr`] for attribute names) carries every name the kernel allows,
//! UTF-8 or not, so any name round-trips; call `to_str()` on it where only UTF-8 will do.
//! A name longer than 255 bytes fails with `ENAMETOOLONG` before any event fires.
//!
//! Contexts are the drive's own values with no bound but `Send + Sync`: `on_create_file`
//! and `on_open_file` store them in their `file_context` and `handle_context` slots, and
//! every later event of that file or handle sees them as `Some`. A slot left empty stays
//! `None` (the reference's null context); a handle opened without an event (a later open
//! while `fire_all_open_close_events` is off) has no handle context.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fsgate_core::originator::Credentials;
use fsgate_core::{Originator, Result};

mod changes;
mod data;
mod eas;
mod info;
mod open;
mod volume;

pub use changes::*;
pub use data::*;
pub use eas::*;
pub use info::*;
pub use open::*;
pub use volume::*;
