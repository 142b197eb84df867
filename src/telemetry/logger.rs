//! Where log records go: the systemd journal (with structured fields) or stderr.

use std::io::Write;

use crate::config::{LogConfig, LogTarget};

/// Installs the logger chosen by the configuration. Returns the target actually used.
pub fn install(config: &LogConfig) -> Result<LogTarget, String> {
    let level: log::LevelFilter = config
        .level
        .parse()
        .map_err(|_| format!("bad log level '{}'", config.level))?;
    let target = match config.target {
        LogTarget::Auto if std::env::var_os("JOURNAL_STREAM").is_some() => LogTarget::Journal,
        LogTarget::Auto => LogTarget::Stderr,
        explicit => explicit,
    };
    match target {
        LogTarget::Journal => systemd_journal_logger::JournalLog::new()
            .map_err(|error| format!("cannot open the journal: {error}"))?
            .with_syslog_identifier("packd".to_string())
            .install()
            .map_err(|error| error.to_string())?,
        _ => log::set_boxed_logger(Box::new(StderrLogger)).map_err(|error| error.to_string())?,
    }
    log::set_max_level(level);
    Ok(target)
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
