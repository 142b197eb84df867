//! `packctl`: the operator's tool. `packctl brief …` sends one brief and prints the reply;
//! `packctl keygen` and `packctl bundle …` make, sign, inspect and deploy model bundles.
//!
//! This crate does not read packd's configuration: the `packctl` binary of the root package loads
//! it and hands [`main`] what packctl needs of it as an [`Appliance`]. So packctl depends only on
//! the contract (packd-wire) and the bundle format (packd-bundle), and its progress bar stays out
//! of the daemon.
mod answer;
mod brief;
mod cli;
mod delta;
mod local;
mod print;
mod push;
mod ranges;
mod remote;
mod rollout;
mod session;

use std::error::Error;
use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;
use rumqttc::v5::MqttOptions;

/// Exit status when the configuration cannot be loaded (`EX_CONFIG`, packd's too).
pub const EXIT_BAD_CONFIG: u8 = 78;

/// Builds the MQTT options (address, credentials, TLS) of a client with the given client id.
pub type MqttOptionsFn =
    Box<dyn Fn(&str) -> Result<MqttOptions, Box<dyn Error + Send + Sync>> + Send + Sync>;

/// What packctl needs of packd's configuration (the `mqtt.*`, `device.id`,
/// `serve.reply_prefix` and `bundles.trusted_keys` settings), read by the caller of [`main`].
pub struct Appliance {
    /// `mqtt.prefix`: the first level of every topic.
    pub prefix: String,
    /// `device.id`: the appliance a brief goes to without `--device` or `--pool`.
    pub device: String,
    /// `mqtt.url`, as messages name the broker.
    pub broker_url: String,
    /// `mqtt.username`: replies come to a topic under it.
    pub username: Option<String>,
    /// The reply prefix packd publishes replies under (`serve.reply_prefix`, checked).
    pub reply_prefix: String,
    /// `bundles.trusted_keys`: what `bundle inspect` checks a signature against by default.
    pub trusted_keys: Vec<String>,
    /// Options for a connection to the broker.
    pub mqtt_options: MqttOptionsFn,
}

impl Appliance {
    /// Where replies to this client go: `{reply prefix}{username}/{client_id}`, the subtree the
    /// example ACL lets an account read (`{reply prefix}{client_id}` without a username); the
    /// reply prefix is packd's, the only place packd publishes replies.
    pub(crate) fn reply_topic(&self, client_id: &str) -> String {
        let prefix = &self.reply_prefix;
        match &self.username {
            Some(username) => format!("{prefix}{username}/{client_id}"),
            None => format!("{prefix}{client_id}"),
        }
    }

    /// The options of a connection under `client_id`.
    pub(crate) fn options(&self, client_id: &str) -> anyhow::Result<MqttOptions> {
        (self.mqtt_options)(client_id).map_err(anyhow::Error::from_boxed)
    }
}

/// The configuration could not be loaded (exit code 78, like packd).
#[derive(Debug)]
struct BadConfig(String);

impl fmt::Display for BadConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for BadConfig {}

/// Runs packctl on the process's arguments. `load` reads the configuration (from `--config`, or
/// the default place for `None`); only the commands that need it call it (`keygen`, `bundle
/// build` and `bundle sign` never do, `bundle inspect` only for the trusted keys), and its error
/// exits with [`EXIT_BAD_CONFIG`].
pub fn main<E: fmt::Display>(load: impl FnOnce(Option<&Path>) -> Result<Appliance, E>) -> ExitCode {
    let arguments = cli::Arguments::parse();
    let config_path = arguments.config.clone();
    let load = || load(config_path.as_deref()).map_err(|error| BadConfig(error.to_string()).into());
    match cli::run(arguments.command, load) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("packctl: {error:#}");
            if error.downcast_ref::<BadConfig>().is_some() {
                ExitCode::from(EXIT_BAD_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appliance(username: Option<&str>) -> Appliance {
        Appliance {
            prefix: "packd".into(),
            device: "orin-17".into(),
            broker_url: "mqtt://localhost:1883".into(),
            username: username.map(str::to_string),
            reply_prefix: "packd/replies/".into(),
            trusted_keys: Vec::new(),
            mqtt_options: Box::new(|_: &str| Err("no broker in unit tests".into())),
        }
    }

    #[test]
    fn replies_come_under_the_account_then_the_client_id() {
        assert_eq!(
            appliance(Some("ops")).reply_topic("packctl-1"),
            "packd/replies/ops/packctl-1"
        );
        assert_eq!(
            appliance(None).reply_topic("packctl-1"),
            "packd/replies/packctl-1"
        );
    }

    #[test]
    fn an_options_error_keeps_its_message() {
        let error = appliance(None).options("packctl-1").unwrap_err();
        assert_eq!(error.to_string(), "no broker in unit tests");
    }
}
