//! Prints every process creation and termination on the machine for ten seconds.
//!
//! Design: the handler only formats and prints; rules select every process (`-1`), and
//! `EventsToFire` asks for creations and terminations only, so thread events cost nothing.
//! Usage (as root, after `fsgate install PACKAGE --product-guid GUID`):
//! `cargo run -p fsgate-process --example watch_processes -- GUID`.

use std::sync::Arc;

use fsgate_core::Result;
use fsgate_process::{Hooks, ProcessCreation, ProcessEvents, ProcessFilter, ProcessTermination};

struct Print;

impl ProcessEvents for Print {
    fn on_process_creation(&self, e: &mut ProcessCreation) -> Result<()> {
        println!(
            "+ {} (parent {}) {}",
            e.process_id, e.parent_process_id, e.image_file_name
        );
        Ok(())
    }
    fn on_process_termination(&self, e: &ProcessTermination) -> Result<()> {
        println!("- {} {}", e.process_id, e.process_name);
        Ok(())
    }
}
impl Hooks for Print {}

fn main() -> Result<()> {
    let guid = std::env::args().nth(1).unwrap_or_default();
    let filter = ProcessFilter::new(Arc::new(Print));
    filter.initialize(&guid)?;
    filter.config("EventsToFire=3")?;
    filter.start_filter(0)?;
    filter.add_filtered_process_by_id(-1, false)?;
    std::thread::sleep(std::time::Duration::from_secs(10));
    filter.stop_filter()
}
