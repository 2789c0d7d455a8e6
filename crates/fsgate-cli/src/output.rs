//! What every command shares: logging, the `ready:` line, event lines (human or JSON), and
//! waiting for SIGINT/SIGTERM.

use std::io::Write;

use fsgate_core::{Error, Result};
use fsgate_vfs::LogFormat;
use serde_json::{Map, Value};

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default: warnings), and, when
/// extended logging (`LoggingEnabled`) is on for this system, everything from debug level up
/// to the system log as well (see [`crate::syslog`]).
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{filter::LevelFilter, fmt, EnvFilter, Layer};

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let root = fsgate_install::Installer::system().root().to_path_buf();
    let mut warning = None;
    let system_log = match fsgate_install::logging_enabled(&root) {
        Ok(true) => {
            let socket = std::path::Path::new(crate::syslog::SYSTEM_LOG_SOCKET);
            match crate::syslog::SyslogWriter::connect(socket) {
                Ok(writer) => Some(
                    fmt::layer()
                        .with_ansi(false)
                        .without_time()
                        .with_writer(writer)
                        .with_filter(LevelFilter::DEBUG),
                ),
                Err(e) => {
                    warning = Some(format!(
                        "LoggingEnabled is on but {} cannot be reached ({e}); logging to stderr only",
                        socket.display()
                    ));
                    None
                }
            }
        }
        Ok(false) => None,
        Err(e) => {
            warning = Some(format!("cannot read LoggingEnabled: {e}"));
            None
        }
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(system_log)
        .try_init();
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
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
        let format = if self.json {
            LogFormat::Json
        } else {
            LogFormat::Text
        };
        let line = format.line(event, fields);
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
