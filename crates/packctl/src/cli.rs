//! The command line (its help text is the user's manual, so it changes only with the commands)
//! and the dispatch to the commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{brief, delta, local, push, remote, rollout, Appliance};

/// Operate packd appliances over MQTT (reads the same mqtt.* settings as packd).
#[derive(Parser)]
#[command(name = "packctl", version)]
pub(crate) struct Arguments {
    /// Configuration file (default /etc/packd/packd.toml, optional).
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Send one brief and print the reply.
    Brief(brief::BriefArguments),
    /// Generate an Ed25519 key pair for signing bundles.
    Keygen(local::KeygenArguments),
    /// Build, sign, inspect and deploy model bundles.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Roll a bundle out to many appliances in waves, stopping and rolling back on failures.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
}

#[derive(Subcommand)]
pub(crate) enum BundleCommand {
    /// Verify a bundle directory and pack it into an archive.
    Build(local::BuildArguments),
    /// Make a delta archive: only the files a new bundle adds to a base bundle (sign it, then
    /// `bundle push FULL --delta DELTA`).
    Delta(delta::DeltaArguments),
    /// Sign an archive (full or delta): writes FILE.sig.
    Sign(local::SignArguments),
    /// Verify an archive (and FILE.sig) and summarise what it holds.
    Inspect(local::InspectArguments),
    /// Send an archive to an appliance or a pool, resuming where a transfer left off.
    Push(push::PushArguments),
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

/// Runs one command; `load` reads the configuration, for the commands that need it.
pub(crate) fn run(
    command: Command,
    load: impl FnOnce() -> anyhow::Result<Appliance>,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Keygen(keygen) => local::keygen(keygen),
        Command::Bundle(BundleCommand::Build(build)) => local::build(build),
        Command::Bundle(BundleCommand::Sign(sign)) => local::sign(sign),
        Command::Bundle(BundleCommand::Delta(arguments)) => delta::make(arguments),
        Command::Bundle(BundleCommand::Inspect(inspect)) => {
            local::inspect(inspect, || Ok(load()?.trusted_keys))
        }
        Command::Rollout(rollout::RolloutCommand::Status { journal }) => rollout::status(&journal),
        command => run_remote(&load()?, command),
    }
}

/// Commands that talk to the broker.
fn run_remote(appliance: &Appliance, command: Command) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            Command::Brief(brief) => brief::send_brief(appliance, brief).await,
            Command::Rollout(command) => rollout::run(appliance, command).await,
            Command::Bundle(BundleCommand::Push(arguments)) => {
                push::push(appliance, arguments).await
            }
            Command::Bundle(BundleCommand::Abort {
                transfer,
                target,
                replies,
            }) => {
                let request = remote::Simple::Abort { transfer };
                remote::simple(appliance, target, replies, request).await
            }
            Command::Bundle(BundleCommand::List { target, replies }) => {
                remote::simple(appliance, target, replies, remote::Simple::List).await
            }
            Command::Bundle(BundleCommand::Activate {
                name,
                version,
                target,
                replies,
            }) => {
                let request = remote::Simple::Activate { name, version };
                remote::simple(appliance, target, replies, request).await
            }
            Command::Bundle(BundleCommand::Rollback { target, replies }) => {
                remote::simple(appliance, target, replies, remote::Simple::Rollback).await
            }
            Command::Bundle(BundleCommand::Remove {
                name,
                version,
                target,
                replies,
            }) => {
                let request = remote::Simple::Remove { name, version };
                remote::simple(appliance, target, replies, request).await
            }
            Command::Keygen(_)
            | Command::Bundle(
                BundleCommand::Build(_)
                | BundleCommand::Delta(_)
                | BundleCommand::Sign(_)
                | BundleCommand::Inspect(_),
            ) => anyhow::bail!("this command does not talk to the broker"),
        }
    })
}
