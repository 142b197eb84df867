//! Where log records go: the systemd journal (with structured fields) or stderr.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use crate::config::{LogConfig, LogTarget};

/// Why the configured logger cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// `log.level` names no level.
    #[error("bad log level '{level}'")]
    Level {
        /// The level as configured.
        level: String,
        /// The `log` crate's refusal.
        #[source]
        source: log::ParseLevelError,
    },
    /// The journal's socket cannot be opened.
    #[error("cannot open the journal: {0}")]
    Journal(#[source] std::io::Error),
    /// A logger is installed already.
    #[error(transparent)]
    AlreadyInstalled(#[from] log::SetLoggerError),
}

/// Installs the logger chosen by the configuration. Returns the target actually used.
pub fn install(config: &LogConfig) -> Result<LogTarget, LogError> {
    let level: log::LevelFilter = config.level.parse().map_err(|source| LogError::Level {
        level: config.level.clone(),
        source,
    })?;
    let under_systemd = config.under_systemd;
    let target = resolve(
        config.target,
        under_systemd,
        journald_listening(Path::new(JOURNAL_SOCKET)),
    );
    if config.target == LogTarget::Auto && target == LogTarget::Journal && !under_systemd {
        // Started from a terminal: say once where the records went, or it looks like silence.
        eprintln!(
            "packd: logging to the journal (journalctl -t packd -f); log.target = \"stderr\" logs here"
        );
    }
    match target {
        LogTarget::Journal => systemd_journal_logger::JournalLog::new()
            .map_err(LogError::Journal)?
            .with_syslog_identifier("packd".to_string())
            .install()?,
        _ => log::set_boxed_logger(Box::new(StderrLogger))?,
    }
    log::set_max_level(level);
    Ok(target)
}

/// Where journald takes native-protocol records.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The target `auto` stands for: the journal under systemd or wherever journald listens,
/// stderr otherwise; explicit targets stand for themselves.
pub(crate) fn resolve(
    target: LogTarget,
    under_systemd: bool,
    journald_listening: bool,
) -> LogTarget {
    match target {
        LogTarget::Auto if under_systemd || journald_listening => LogTarget::Journal,
        LogTarget::Auto => LogTarget::Stderr,
        explicit => explicit,
    }
}

/// Whether a journald answers on `socket`: the file can outlive a dead journald, and records
/// sent to it would vanish, so connect rather than test for the file.
pub(crate) fn journald_listening(socket: &Path) -> bool {
    UnixDatagram::unbound()
        .and_then(|probe| probe.connect(socket))
        .is_ok()
}

/// Plain lines on stderr, with the structured fields appended as `KEY=value`.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        struct Fields(String);
        impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
            fn visit_pair(
                &mut self,
                key: log::kv::Key<'kvs>,
                value: log::kv::Value<'kvs>,
            ) -> Result<(), log::kv::Error> {
                self.0.push_str(&format!(" {key}={value}"));
                Ok(())
            }
        }
        let mut fields = Fields(String::new());
        let _ = record.key_values().visit(&mut fields);
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "{:<5} {}: {}{}",
            record.level(),
            record.target(),
            record.args(),
            fields.0
        );
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_the_journal_under_systemd_or_where_journald_listens() {
        assert_eq!(resolve(LogTarget::Auto, true, false), LogTarget::Journal);
        assert_eq!(resolve(LogTarget::Auto, false, true), LogTarget::Journal);
        assert_eq!(resolve(LogTarget::Auto, false, false), LogTarget::Stderr);
        assert_eq!(resolve(LogTarget::Stderr, true, true), LogTarget::Stderr);
        assert_eq!(
            resolve(LogTarget::Journal, false, false),
            LogTarget::Journal
        );
    }

    #[test]
    fn a_socket_file_without_a_listener_is_not_a_journald() {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("socket");
        assert!(!journald_listening(&socket), "no file");
        let listener = UnixDatagram::bind(&socket).expect("bind");
        assert!(journald_listening(&socket), "bound");
        drop(listener);
        assert!(socket.exists(), "the file outlives the socket");
        assert!(!journald_listening(&socket), "stale file");
    }
}
