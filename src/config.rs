//! Configuration: built-in defaults < `/etc/packd/packd.toml` (or `--config FILE`) < `PACKD_*`
//! environment variables, validated once at start so a bad key is reported by name.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the service looks for its configuration when no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/packd/packd.toml";
/// Exit code for bad configuration (sysexits' EX_CONFIG), as the operator interface promises.
pub const EXIT_BAD_CONFIG: i32 = 78;

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("configuration key '{key}': {message}")]
    Key { key: String, message: String },
    #[error("configuration: {0}")]
    Other(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub mqtt: MqttConfig,
    pub device: DeviceConfig,
    pub bundles: BundlesConfig,
    pub serve: ServeConfig,
    pub telemetry: TelemetryConfig,
    pub log: LogConfig,
    pub backend: crate::backend::select::BackendConfig,
}

/// Broker connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub prefix: String,
    pub keep_alive_s: u64,
    /// How long the broker keeps our session (subscriptions and queued QoS 1 briefs) while we are away.
    pub session_expiry_s: u32,
    /// When a pool peer goes offline, the live member with the lowest device id resumes the
    /// peer's session and answers the briefs the broker keeps there.
    pub adopt_pool_peers: bool,
    /// How long a peer must have been offline before its session is adopted (a quick restart
    /// takes its own session back first).
    pub adoption_grace_ms: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            prefix: "packd/v1".into(),
            keep_alive_s: 30,
            session_expiry_s: 3600,
            adopt_pool_peers: true,
            adoption_grace_ms: 1000,
        }
    }
}

/// Identity of this appliance, and what its engines must be built for.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceConfig {
    pub id: String,
    pub pools: Vec<String>,
    /// TensorRT version engines must match (major.minor); unset where TensorRT is absent.
    pub tensorrt: Option<String>,
    /// CUDA compute capability engines must match (`8.7` on Orin).
    pub compute_capability: Option<String>,
    /// DLA cores available (2 on AGX Orin).
    pub dla_cores: u32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            id: host_name(),
            pools: Vec::new(),
            tensorrt: None,
            compute_capability: None,
            dla_cores: 0,
        }
    }
}

/// Installed model bundles.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BundlesConfig {
    pub dir: PathBuf,
    /// The bundle a fresh `dir` is seeded from; empty disables seeding.
    pub seed: PathBuf,
    pub trusted_keys: Vec<String>,
    pub allow_unsigned: bool,
    /// Installed bundles kept in all, the active, previous and last good ones included (those
    /// are never pruned, so more stay when they alone exceed it); older ones go at activation.
    pub keep: usize,
    /// Largest bundle archive accepted, in MiB.
    pub max_bundle_mib: u64,
}

impl Default for BundlesConfig {
    fn default() -> Self {
        BundlesConfig {
            dir: PathBuf::from("/var/lib/packd/bundles"),
            seed: default_seed_bundle(),
            trusted_keys: Vec::new(),
            allow_unsigned: false,
            keep: 3,
            max_bundle_mib: 1024,
        }
    }
}

/// The shipped default bundle: the packaged copy when installed, else the one in the source tree.
fn default_seed_bundle() -> PathBuf {
    let packaged = PathBuf::from("/usr/share/packd/bundles/packd-default");
    if packaged.join("manifest.toml").exists() {
        return packaged;
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/engines/packd-default"
    ))
}

/// The work queue and the inference workers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    pub workers: usize,
    pub queue: usize,
    /// How long a reply stays in the duplicate-delivery cache.
    pub reply_cache_s: u64,
    /// Most replies held in that cache.
    pub reply_cache_entries: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            queue: 256,
            reply_cache_s: 60,
            reply_cache_entries: 4096,
        }
    }
}

/// Stats and the per-brief journal records.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    pub stats_interval_s: u64,
    /// Up to this many briefs a second are each logged; above it, only a sample.
    pub log_every_brief_up_to_per_s: u32,
    /// Above that rate, one brief in this many is logged (failed and slow briefs always are).
    pub sample_one_in: u32,
    /// A brief slower than this is always logged.
    pub slow_brief_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            stats_interval_s: 10,
            log_every_brief_up_to_per_s: 50,
            sample_one_in: 100,
            slow_brief_ms: 50,
        }
    }
}

/// Where log records go.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// The journal when started by systemd (JOURNAL_STREAM set), stderr otherwise.
    #[default]
    Auto,
    Journal,
    Stderr,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub target: LogTarget,
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            target: LogTarget::Auto,
            level: "info".into(),
        }
    }
}

/// The host name, used as the default device id.
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

impl Config {
    /// Loads defaults, then the file (required when given explicitly), then `PACKD_*` variables.
    pub fn load(explicit_file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        match explicit_file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::File {
                        path: path.to_path_buf(),
                        message: "not found or not a file".into(),
                    });
                }
                builder = builder.add_source(
                    config::File::from(path)
                        .format(config::FileFormat::Toml)
                        .required(true),
                );
            }
            None => {
                builder = builder.add_source(
                    config::File::from(Path::new(DEFAULT_CONFIG_FILE))
                        .format(config::FileFormat::Toml)
                        .required(false),
                );
            }
        }
        builder = builder.add_source(
            config::Environment::with_prefix("PACKD")
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("device.pools")
                .with_list_parse_key("bundles.trusted_keys")
                .try_parsing(true),
        );
        let raw = builder
            .build()
            .map_err(|error| describe(error, explicit_file))?;
        let config: Config = raw
            .try_deserialize()
            .map_err(|error| describe(error, explicit_file))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key = |key: &str, message: &str| {
            Err(ConfigError::Key {
                key: key.into(),
                message: message.into(),
            })
        };
        match self.mqtt.url.split_once("://") {
            Some(("mqtt" | "mqtts" | "tcp" | "ssl", rest)) if !rest.is_empty() => {}
            _ => {
                return key(
                    "mqtt.url",
                    "must look like mqtt://host:port or mqtts://host:port",
                )
            }
        }
        if self.mqtt.prefix.is_empty()
            || self.mqtt.prefix.contains(['+', '#'])
            || self.mqtt.prefix.ends_with('/')
        {
            return key(
                "mqtt.prefix",
                "must be a topic without wildcards or a trailing '/'",
            );
        }
        if self.mqtt.cert_file.is_some() != self.mqtt.key_file.is_some() {
            return key(
                "mqtt.cert_file",
                "a client certificate needs both mqtt.cert_file and mqtt.key_file",
            );
        }
        for (name, path) in [
            ("mqtt.ca_file", &self.mqtt.ca_file),
            ("mqtt.cert_file", &self.mqtt.cert_file),
            ("mqtt.key_file", &self.mqtt.key_file),
        ] {
            if let Some(path) = path {
                if !path.is_file() {
                    return key(name, &format!("{} is not a readable file", path.display()));
                }
            }
        }
        if self.mqtt.keep_alive_s < 5 {
            return key("mqtt.keep_alive_s", "must be at least 5");
        }
        if self.mqtt.adoption_grace_ms > 600_000 {
            return key(
                "mqtt.adoption_grace_ms",
                "must be at most 600000 (10 minutes)",
            );
        }
        if self.device.id.is_empty() || self.device.id.contains(['/', '+', '#']) {
            return key(
                "device.id",
                "must be non-empty and contain no '/', '+' or '#'",
            );
        }
        if let Some(pool) = self
            .device
            .pools
            .iter()
            .find(|pool| pool.is_empty() || pool.contains(['/', '+', '#']))
        {
            return key(
                "device.pools",
                &format!("pool '{pool}' must be non-empty and contain no '/', '+' or '#'"),
            );
        }
        if self.bundles.max_bundle_mib == 0 {
            return key("bundles.max_bundle_mib", "must be at least 1");
        }
        if let Err(error) =
            crate::bundle::signature::TrustedKeys::from_config(&self.bundles.trusted_keys)
        {
            return key("bundles.trusted_keys", &error.to_string());
        }
        if self.serve.workers == 0 || self.serve.workers > 256 {
            return key("serve.workers", "must be from 1 to 256");
        }
        if self.serve.queue == 0 {
            return key("serve.queue", "must be at least 1");
        }
        if self.telemetry.stats_interval_s == 0 {
            return key("telemetry.stats_interval_s", "must be at least 1");
        }
        if self.telemetry.sample_one_in == 0 {
            return key("telemetry.sample_one_in", "must be at least 1");
        }
        if self.log.level.parse::<log::LevelFilter>().is_err() {
            return key(
                "log.level",
                "must be one of off, error, warn, info, debug, trace",
            );
        }
        Ok(())
    }
}

/// Turns the config crate's errors into one line naming the key.
fn describe(error: config::ConfigError, file: Option<&Path>) -> ConfigError {
    match error {
        config::ConfigError::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => ConfigError::Key {
            key,
            message: format!("expected {expected}, found {unexpected}"),
        },
        config::ConfigError::Message(message) => {
            // serde's unknown-field message names the field but not its section; keep it whole.
            ConfigError::Other(message)
        }
        config::ConfigError::FileParse { uri, cause } => ConfigError::File {
            path: uri
                .map(PathBuf::from)
                .or_else(|| file.map(Path::to_path_buf))
                .unwrap_or_default(),
            message: cause
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        },
        config::ConfigError::NotFound(key) => ConfigError::Key {
            key,
            message: "missing".into(),
        },
        other => ConfigError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_contract() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.mqtt.url, "mqtt://127.0.0.1:1883");
        assert_eq!(config.mqtt.prefix, "packd/v1");
        assert_eq!(config.serve.queue, 256);
        assert_eq!(config.telemetry.stats_interval_s, 10);
        assert!(!config.bundles.allow_unsigned);
        assert_eq!(config.bundles.dir, PathBuf::from("/var/lib/packd/bundles"));
        assert!(config.mqtt.adopt_pool_peers);
        assert_eq!(config.mqtt.adoption_grace_ms, 1000);
    }

    #[test]
    fn nonsense_values_name_their_key() {
        let mut config = Config::default();
        config.serve.queue = 0;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("serve.queue"));
        let mut config = Config::default();
        config.mqtt.url = "http://x".into();
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("mqtt.url"));
        let mut config = Config::default();
        config.mqtt.adoption_grace_ms = 600_001;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("mqtt.adoption_grace_ms"));
        let mut config = Config::default();
        config.device.pools = vec!["a/b".into()];
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("device.pools"));
    }
}
