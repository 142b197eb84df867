//! `packctl`: the operator's tool (the `packctl` crate), run with packd's configuration: the
//! same file, `PACKD_*` variables and checks as the daemon.

use std::process::ExitCode;

use packd::config::{Config, ConfigError, EXIT_BAD_CONFIG};
use packd::transport;

// packctl exits with packd's status for a bad configuration.
const _: () = assert!(EXIT_BAD_CONFIG == packctl::EXIT_BAD_CONFIG as i32);

fn main() -> ExitCode {
    packctl::main(|path| appliance(Config::load(path)?))
}

/// What packctl needs of the configuration.
fn appliance(config: Config) -> Result<packctl::Appliance, ConfigError> {
    let reply_prefix = config.reply_prefix()?.to_string();
    let mqtt = config.mqtt.clone();
    Ok(packctl::Appliance {
        prefix: config.mqtt.prefix,
        device: config.device.id,
        broker_url: config.mqtt.url,
        username: config.mqtt.username,
        reply_prefix,
        trusted_keys: config.bundles.trusted_keys,
        mqtt_options: Box::new(move |client_id: &str| {
            transport::base_options(&mqtt, client_id).map_err(Into::into)
        }),
    })
}
