//! Makes `*.key` files under a directory unreadable to every other process until Ctrl-C,
//! logging each denial. The verdict is an access rule, decided in the library's listener
//! without a callback; the `on_access_denied` hook only logs.
//!
//! `cargo run -p fsgate-filter --example deny_keys -- /mnt/private` (as root; use a mount
//! you created: a permission mark holds every process that touches the marked mount).

use fsgate_filter::events::{ControlEvent, FilterEvents, Hooks, MonitorEvents};
use fsgate_filter::filter::FileFilter;
use fsgate_filter::rules::{AccessFlags, ControlFlags, NotifyFlags};

struct Log;
impl MonitorEvents for Log {}
impl Hooks for Log {}
impl FilterEvents for Log {
    fn on_access_denied(&self, e: &ControlEvent) {
        println!(
            "denied {} to {} ({})",
            e.file_name, e.process_name, e.process_id
        );
    }
}

fn main() -> fsgate_core::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/mnt/private".into());
    let filter = FileFilter::new(Log);
    filter.add_filter_rule(
        &format!("{dir}/*.key"),
        AccessFlags::ACCESS_WRITE_ONLY,
        ControlFlags::empty(),
        NotifyFlags::empty(),
    )?;
    filter.start_filter(0)?;
    println!("press Enter to stop");
    let _ = std::io::stdin().read_line(&mut String::new());
    filter.stop_filter()
}
