//! What is installed, without the package builder: the ProductGUID registry
//! (`<root>/var/lib/fsgate/registry.json`), the installation's file [`layout`] and settings
//! file ([`config`]), [`version`]s, kernel [`facilities`] and systemd [`service`] state, and
//! [`Installation`], which answers the reference's `get_driver_status`,
//! `get_driver_version` and the `initialize(product_guid)` check.
//!
//! Every class that only checks an installation (direct access, the process filter) depends
//! on this crate; `fsgate-install` (tar packages, checksums, install and uninstall) builds on
//! it and re-exports its modules under their old paths.

pub mod config;
pub mod facilities;
pub mod fsutil;
pub mod guid;
mod installation;
pub mod layout;
pub mod registry;
pub mod service;
pub mod version;

pub use config::{logging_enabled, set_logging_enabled};
pub use installation::{
    Installation, HELPER_NAME, MODULE_STATUS_NOT_PRESENT, MODULE_STATUS_RUNNING,
    MODULE_STATUS_STOPPED,
};
pub use version::Version;
