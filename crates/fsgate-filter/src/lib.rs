//! fsgate-filter
mod attach;
pub mod events;
pub mod filter;
pub mod monitor;
pub mod open_request;
pub mod rules;
pub mod volumes;
