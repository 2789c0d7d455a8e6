//! The product GUID that `initialize` checks for the classes that need an installation
//! (direct access, process filter).
//!
//! `--product-guid`, else `$FSGATE_PRODUCT_GUID`, else the command line's own
//! [`CLI_PRODUCT_GUID`]. The installation root is `$FSGATE_ROOT` or `/`. Install fsgate for
//! the GUID once with `fsgate package fsgate.pkg && fsgate install fsgate.pkg --product-guid
//! GUID`; the error says so when it has not been done.

use clap::Args;
use fsgate_core::{code, Error};

/// The product GUID the command line uses when none is given.
pub const CLI_PRODUCT_GUID: &str = "{F5A7E0C1-2B3D-4E5F-8A9B-0C1D2E3F4A5B}";

/// Which installation the class checks in `initialize`.
#[derive(Args)]
pub struct Product {
    /// Product GUID fsgate was installed for (default: $FSGATE_PRODUCT_GUID, else the command
    /// line's own GUID).
    #[arg(long, value_name = "GUID")]
    pub product_guid: Option<String>,
}

impl Product {
    /// The GUID in force.
    pub fn guid(&self) -> String {
        self.product_guid
            .clone()
            .or_else(|| std::env::var("FSGATE_PRODUCT_GUID").ok())
            .unwrap_or_else(|| CLI_PRODUCT_GUID.to_string())
    }

    /// Adds the remedy to an `initialize` error that means "not installed for this GUID".
    pub fn explain(&self, e: Error) -> Error {
        if e.code() == code::ERROR_FILE_NOT_FOUND {
            let guid = self.guid();
            e.context(format!(
                "fsgate is not installed for product {guid}; run `fsgate package fsgate.pkg && \
                 fsgate install fsgate.pkg --product-guid '{guid}'` first"
            ))
        } else {
            e
        }
    }
}
