//! Prints every handle operation and exec on the system until Ctrl-C (or for `N` events when
//! given a count): `cargo run -p fsgate-bpf --example trace -- 20`.

use fsgate_bpf::TracerBuilder;

fn main() -> Result<(), fsgate_core::Error> {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    let (tracer, events) = TracerBuilder::new().start_channel()?;
    for event in events.iter().take(count) {
        println!("{event:?}");
    }
    drop(tracer);
    Ok(())
}
