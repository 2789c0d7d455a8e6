//! Test-only fault injection (feature `fault-injection`): stops a chosen transaction before
//! its commit so a test can kill the process there.

use std::io::Write;

/// Commits made so far, per operation name.
static COUNTS: std::sync::Mutex<Vec<(&'static str, u64)>> = std::sync::Mutex::new(Vec::new());

/// With `FSGATE_CACHE_PAUSE_BEFORE_COMMIT=OPERATION:N` (for example `file_write:3`), the Nth
/// commit of that operation prints `paused` on stdout and blocks its thread for good, inside
/// the open transaction.
pub(crate) fn before_commit(operation: &'static str) {
    let Ok(spec) = std::env::var("FSGATE_CACHE_PAUSE_BEFORE_COMMIT") else {
        return;
    };
    let Some((name, nth)) = spec.split_once(':') else {
        return;
    };
    if name != operation {
        return;
    }
    let count = {
        let mut counts = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
        match counts.iter_mut().find(|(n, _)| *n == operation) {
            Some((_, c)) => {
                *c += 1;
                *c
            }
            None => {
                counts.push((operation, 1));
                1
            }
        }
    };
    if nth.parse::<u64>().ok() == Some(count) {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "paused");
        let _ = out.flush();
        loop {
            std::thread::park();
        }
    }
}
