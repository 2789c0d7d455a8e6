//! Extended logging (`LoggingEnabled`): every `tracing` event, debug level and up, sent to
//! the system log through the `/dev/log` datagram socket, which journald serves on systemd
//! machines and syslog daemons elsewhere.
//!
//! Each event becomes one RFC 3164 datagram, `<15>fsgate[PID]: message` (facility user,
//! severity debug: the daemon files everything we send together). The setting is persisted by
//! `fsgate_install` under `/etc/fsgate` (or `$FSGATE_ROOT/etc/fsgate`). When the socket is
//! missing, logging stays on stderr only and a warning says why.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;

/// The socket the system log listens on.
pub const SYSTEM_LOG_SOCKET: &str = "/dev/log";

/// Writes each formatted `tracing` event as one datagram to the system log.
#[derive(Clone)]
pub struct SyslogWriter {
    socket: Arc<UnixDatagram>,
    prefix: Arc<str>,
}

impl SyslogWriter {
    /// Connects to the log socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(Self {
            socket: Arc::new(socket),
            prefix: format!("<15>fsgate[{}]: ", std::process::id()).into(),
        })
    }
}

impl io::Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        let message = format!("{}{}", self.prefix, line.trim_end_matches('\n'));
        // A full or vanished log daemon must not stop the filter: the event is dropped.
        let _ = self.socket.send(message.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SyslogWriter {
    type Writer = SyslogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn each_write_is_one_datagram_with_the_syslog_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let mut writer = SyslogWriter::connect(&path).unwrap();
        writer.write_all(b"DEBUG fsgate: mounted\n").unwrap();
        writer.write_all(b"WARN fsgate: second\n").unwrap();
        let mut buf = [0u8; 256];
        let n = daemon.recv(&mut buf).unwrap();
        let expected = format!("<15>fsgate[{}]: DEBUG fsgate: mounted", std::process::id());
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), expected);
        let n = daemon.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..n])
            .unwrap()
            .ends_with("]: WARN fsgate: second"));
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SyslogWriter::connect(&dir.path().join("absent")).is_err());
    }
}
