//! `packctl`: the operator's tool. `packctl brief …` sends one brief and prints the reply;
//! `packctl keygen` and `packctl bundle …` make, sign, inspect and deploy model bundles.

mod answer;
mod brief;
mod local;
mod print;
mod remote;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use packd::config::{Config, EXIT_BAD_CONFIG};

/// Operate packd appliances over MQTT (reads the same mqtt.* settings as packd).
#[derive(Parser)]
#[command(name = "packctl", version)]
struct Arguments {
    /// Configuration file (default /etc/packd/packd.toml, optional).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send one brief and print the reply.
    Brief(brief::BriefArguments),
    /// Generate an Ed25519 key pair for signing bundles.
    Keygen(local::KeygenArguments),
    /// Build, sign, inspect and deploy model bundles.
    #[command(subcommand)]
    Bundle(BundleCommand),
}

#[derive(Subcommand)]
enum BundleCommand {
    /// Verify a bundle directory and pack it into an archive.
    Build(local::BuildArguments),
    /// Sign an archive: writes FILE.sig.
    Sign(local::SignArguments),
    /// Verify an archive (and FILE.sig) and summarise what it holds.
    Inspect(local::InspectArguments),
    /// Send an archive to an appliance or a pool, resuming where a transfer left off.
    Push(remote::PushArguments),
    /// Abandon a transfer: the appliance discards the chunks it received (the transfer id is
    /// the one `bundle push` printed: the first 32 hex digits of the archive's SHA-256).
    Abort {
        /// Transfer id.
        transfer: String,
        #[command(flatten)]
        target: remote::TargetArguments,
        #[command(flatten)]
        replies: remote::ReplyArguments,
    },
    /// List the bundles installed on an appliance or on every appliance of a pool.
    List {
        #[command(flatten)]
        target: remote::TargetArguments,
        #[command(flatten)]
        replies: remote::ReplyArguments,
    },
    /// Make an installed bundle the active one.
    Activate {
        /// Bundle name.
        name: String,
        /// Bundle version.
        version: String,
        #[command(flatten)]
        target: remote::TargetArguments,
        #[command(flatten)]
        replies: remote::ReplyArguments,
    },
    /// Go back to the bundle that was active before the current one.
    Rollback {
        #[command(flatten)]
        target: remote::TargetArguments,
        #[command(flatten)]
        replies: remote::ReplyArguments,
    },
    /// Delete an installed bundle (not the active one).
    Remove {
        /// Bundle name.
        name: String,
        /// Bundle version.
        version: String,
        #[command(flatten)]
        target: remote::TargetArguments,
        #[command(flatten)]
        replies: remote::ReplyArguments,
    },
}

/// The configuration could not be loaded (exit code 78, like packd).
#[derive(Debug)]
struct BadConfig(String);

impl std::fmt::Display for BadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadConfig {}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let config_path = arguments.config.clone();
    let load_config =
        || Config::load(config_path.as_deref()).map_err(|error| BadConfig(error.to_string()));
    let result = match arguments.command {
        Command::Keygen(keygen) => local::keygen(keygen),
        Command::Bundle(BundleCommand::Build(build)) => local::build(build),
        Command::Bundle(BundleCommand::Sign(sign)) => local::sign(sign),
        Command::Bundle(BundleCommand::Inspect(inspect)) => {
            local::inspect(inspect, || Ok(load_config()?.bundles.trusted_keys))
        }
        command => match load_config() {
            Ok(config) => run_remote(&config, command),
            Err(error) => Err(error.into()),
        },
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("packctl: {error:#}");
            if error.downcast_ref::<BadConfig>().is_some() {
                ExitCode::from(EXIT_BAD_CONFIG as u8)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Commands that talk to the broker.
fn run_remote(config: &Config, command: Command) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            Command::Brief(brief) => brief::send_brief(config, brief).await,
            Command::Bundle(BundleCommand::Push(push)) => remote::push(config, push).await,
            Command::Bundle(BundleCommand::Abort {
                transfer,
                target,
                replies,
            }) => {
                let request = remote::Simple::Abort { transfer };
                remote::simple(config, target, replies, request).await
            }
            Command::Bundle(BundleCommand::List { target, replies }) => {
                remote::simple(config, target, replies, remote::Simple::List).await
            }
            Command::Bundle(BundleCommand::Activate {
                name,
                version,
                target,
                replies,
            }) => {
                let request = remote::Simple::Activate { name, version };
                remote::simple(config, target, replies, request).await
            }
            Command::Bundle(BundleCommand::Rollback { target, replies }) => {
                remote::simple(config, target, replies, remote::Simple::Rollback).await
            }
            Command::Bundle(BundleCommand::Remove {
                name,
                version,
                target,
                replies,
            }) => {
                let request = remote::Simple::Remove { name, version };
                remote::simple(config, target, replies, request).await
            }
            Command::Keygen(_)
            | Command::Bundle(
                BundleCommand::Build(_) | BundleCommand::Sign(_) | BundleCommand::Inspect(_),
            ) => anyhow::bail!("this command does not talk to the broker"),
        }
    })
}
