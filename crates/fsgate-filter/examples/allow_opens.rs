//! A permission filter that asks the application about every open under a directory and
//! allows each one: the cost of a Before event on every file, as `bench/filter/run.sh`
//! measures it. Stops at end of input (Enter or a closed pipe) and prints how many opens it
//! was asked about.
//!
//! `cargo run --release -p fsgate-filter --example allow_opens -- /mnt/private` (as root;
//! use a mount you created: a permission mark holds every process that touches it).

use std::sync::atomic::{AtomicU64, Ordering};

use fsgate_core::Result;
use fsgate_filter::events::{ControlEvent, FilterEvents, Hooks, MonitorEvents};
use fsgate_filter::filter::FileFilter;
use fsgate_filter::rules::{AccessFlags, ControlFlags, NotifyFlags};

#[derive(Default)]
struct AllowAll {
    opens: AtomicU64,
}

impl MonitorEvents for AllowAll {}
impl Hooks for AllowAll {}
impl FilterEvents for AllowAll {
    fn on_before_open_file(&self, _e: &mut ControlEvent) -> Result<()> {
        self.opens.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn on_before_create_file(&self, _e: &mut ControlEvent) -> Result<()> {
        self.opens.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/mnt/private".into());
    let filter = FileFilter::new(AllowAll::default());
    filter.add_filter_rule(
        &format!("{dir}/*"),
        AccessFlags::empty(),
        ControlFlags::FS_CE_BEFORE_OPEN | ControlFlags::FS_CE_BEFORE_CREATE,
        NotifyFlags::empty(),
    )?;
    filter.start_filter(0)?;
    eprintln!("ready: asking about every open under {dir}");
    let _ = std::io::stdin().read_line(&mut String::new());
    filter.stop_filter()?;
    println!(
        "before_open_file events: {}",
        filter.handler().opens.load(Ordering::Relaxed)
    );
    Ok(())
}
