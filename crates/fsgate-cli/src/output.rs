//! What every command shares: logging, the `ready:` line, event lines (human or JSON), and
//! waiting for SIGINT/SIGTERM.

use std::io::Write;

use fsgate_core::{Error, Result};
use serde_json::{Map, Value};

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints the `ready: …` line on stderr, once the kernel side is attached.
pub fn ready(what: impl std::fmt::Display) {
    eprintln!("ready: {what}");
}

/// Prints events on stdout: `--json` gives one object per line with `"event"` first;
/// otherwise `event key=value …`.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    /// One JSON object per line.
    pub json: bool,
}

impl Printer {
    /// Prints one event. `event` is the reference's event name without `on_`; `fields` are
    /// its parameters in snake_case.
    pub fn event(&self, event: &str, fields: Map<String, Value>) {
        let line = if self.json {
            let mut object = Map::new();
            object.insert("event".into(), Value::String(event.into()));
            object.extend(fields);
            Value::Object(object).to_string()
        } else {
            let mut line = event.to_string();
            for (k, v) in fields {
                match v {
                    Value::String(s) => line.push_str(&format!(" {k}={s:?}")),
                    other => line.push_str(&format!(" {k}={other}")),
                }
            }
            line
        };
        let mut out = std::io::stdout().lock();
        // A closed stdout (a pipe whose reader left) must not kill a running filter.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Blocks until SIGINT or SIGTERM arrives; returns the signal number. Register before
/// attaching anything, so a signal sent right after `ready:` is not lost.
pub struct StopSignal {
    signals: signal_hook::iterator::Signals,
}

impl StopSignal {
    /// Starts catching SIGINT and SIGTERM.
    pub fn register() -> Result<Self> {
        let signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])
        .map_err(|e| Error::io("registering SIGINT/SIGTERM handlers", e))?;
        Ok(Self { signals })
    }

    /// Waits for the first of SIGINT or SIGTERM.
    pub fn wait(mut self) -> i32 {
        self.signals
            .forever()
            .next()
            .unwrap_or(signal_hook::consts::SIGTERM)
    }

    /// A handle that makes [`wait`](Self::wait) return (for commands that end on their own).
    pub fn handle(&self) -> signal_hook::iterator::Handle {
        self.signals.handle()
    }
}
