//! `packd`: the appliance service.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use packd::config::{Config, EXIT_BAD_CONFIG};
use tokio_util::sync::CancellationToken;

/// Serves packaging design briefs over MQTT.
#[derive(Parser)]
#[command(name = "packd", version, about)]
struct Arguments {
    /// Configuration file (default /etc/packd/packd.toml, optional).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let config = match Config::load(arguments.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("packd: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG as u8);
        }
    };
    if let Err(error) = packd::telemetry::logger::install(&config.log) {
        eprintln!("packd: log: {error}");
        return ExitCode::from(EXIT_BAD_CONFIG as u8);
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("fatal: {error:#}");
            eprintln!("packd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("packd-io")
        .build()?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let signals = cancel.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signals.cancel();
        });
        packd::daemon::run(config, cancel).await
    })?;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
