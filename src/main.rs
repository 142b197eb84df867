//! `packd`: the appliance service.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use packd::config::{Config, EXIT_BAD_CONFIG};

// glibc's malloc and free were 8 % of packd's CPU under load (docs/performance.md, "Briefs
// answered on the connection's thread"); the library and its tests keep the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serves packaging design briefs over MQTT.
#[derive(Parser)]
#[command(name = "packd", version, about)]
struct Arguments {
    /// Configuration file (default /etc/packd/packd.toml, optional).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Without a subcommand, packd serves briefs.
    #[command(subcommand)]
    command: Option<Subcommand>,
}

#[derive(clap::Subcommand)]
enum Subcommand {
    /// Runs the bundle's self-test vectors on every target and prints latency per target.
    Selftest {
        /// Bundle directory (default: the active bundle).
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        /// Only these targets (cpu, trt:gpu, trt:dla0, trt:dla1); repeatable.
        #[arg(long = "target", value_name = "TARGET")]
        targets: Vec<String>,
        /// Timed passes over the vectors per target.
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Records or lists the TensorRT engines in a bundle's manifest.
    #[command(subcommand)]
    Engine(EngineCommand),
    /// Prints the active bundle's directory.
    ActiveBundle,
}

#[derive(clap::Subcommand)]
enum EngineCommand {
    /// Hashes an engine file inside the bundle and records it in manifest.toml.
    Register {
        #[arg(long, value_name = "DIR")]
        bundle: PathBuf,
        #[command(flatten)]
        registration: packd::maintenance::EngineRegistration,
    },
    /// One line per engine: target, precision, TensorRT, file, ok|missing|hash-mismatch.
    List {
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,
    },
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
    if let Some(command) = arguments.command {
        return match maintain(&config, command) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("packd: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
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

/// The on-device subcommands; they log to stderr.
fn maintain(config: &Config, command: Subcommand) -> anyhow::Result<ExitCode> {
    use packd::maintenance;
    let bundle_or_active = |bundle: Option<PathBuf>| match bundle {
        Some(bundle) => Ok(bundle),
        None => maintenance::active_bundle_dir(config),
    };
    match command {
        Subcommand::ActiveBundle => {
            println!("{}", maintenance::active_bundle_dir(config)?.display());
        }
        Subcommand::Selftest {
            bundle,
            targets,
            repeat,
            json,
        } => {
            let dir = bundle_or_active(bundle)?;
            let reports = maintenance::selftest_targets(&dir, &config.backend, &targets, repeat)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                println!("bundle {}", dir.display());
                maintenance::print_reports(&reports, &mut std::io::stdout())?;
            }
            if let Some(failed) = reports.iter().find(|report| !report.passed) {
                return Err(
                    maintenance::MaintenanceError::SelfTestFailed(failed.target.clone()).into(),
                );
            }
        }
        Subcommand::Engine(EngineCommand::List { bundle }) => {
            for line in maintenance::list_engines(&bundle_or_active(bundle)?)? {
                println!("{line}");
            }
        }
        Subcommand::Engine(EngineCommand::Register {
            bundle,
            registration,
        }) => {
            let entry = maintenance::register_engine(&bundle, &registration)?;
            println!(
                "registered {} for {} (TensorRT {}, sha256 {})",
                entry.file, entry.target, entry.tensorrt, entry.sha256
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run(config: Config) -> anyhow::Result<()> {
    packd::daemon::allocator::return_large_blocks_to_the_kernel();
    // One thread: the broker connection is one task that polls its socket and request queue in
    // turn, and inference runs on packd's own threads; a second runtime thread only moved that
    // task between cores and woke them (7-9 % more CPU per brief under load, issue 16).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("packd-io")
        .build()?;
    runtime.block_on(async {
        // Registered before boot, so a SIGTERM while the bundle loads still stops packd cleanly.
        let signalled = shutdown_signal();
        packd::daemon::run(config, signalled).await
    })?;
    Ok(())
}

/// Completes on SIGTERM or SIGINT; the handlers are installed when this is called.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (terminate, interrupt) {
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
}
