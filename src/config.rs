//! Configuration: built-in defaults < `/etc/packd/packd.toml` (or `--config FILE`) <
//! `PACKD_<SECTION>__<KEY>` environment variables, validated once at start so a bad key is
//! reported by name.
//!
//! Every key lives in a section, so only variables whose first segment after `PACKD_` names a
//! section are configuration; other `PACKD_*` variables belong to the project's scripts (CI,
//! packaging, examples) and are ignored.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod serve;
pub use serve::{ServeConfig, DEFAULT_QUEUE_BYTES_MIB, DEFAULT_REPLY_CACHE_MIB};

/// Where the service looks for its configuration when no `--config` is given.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "/etc/packd/packd.toml";
/// Exit code for bad configuration (sysexits' EX_CONFIG), as the operator interface promises.
pub const EXIT_BAD_CONFIG: i32 = 78;
const MIB: usize = 1024 * 1024;
/// Largest `serve.queue_bytes_mib`: far above any appliance's memory, and no overflow in bytes.
const MAX_QUEUE_BYTES_MIB: usize = 64 * 1024;
/// Prefix of the environment variables that override configuration keys.
pub(crate) const ENV_PREFIX: &str = "PACKD_";
/// Separates the section from the key (and nested keys) in an environment variable's name.
pub(crate) const ENV_SEPARATOR: &str = "__";
/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &["device.pools", "bundles.trusted_keys", "backend.order"];

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file cannot be read or is not valid TOML.
    #[error("configuration file {path}: {message}")]
    File {
        /// The file, as given by `--config` or the default path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A key has a bad value, or is not a key of its section.
    #[error("configuration key '{key}': {message}")]
    Key {
        /// The key's dotted path, e.g. `serve.queue`.
        key: String,
        /// What is wrong with its value.
        message: String,
    },
    /// A `PACKD_*` variable names no key or has a bad value.
    #[error("environment variable {name}: {message}")]
    Environment {
        /// The variable's name, e.g. `PACKD_MQTT__URL`.
        name: String,
        /// What is wrong with it, with a suggestion where one is close.
        message: String,
    },
    /// Any other problem the configuration reader reports.
    #[error("configuration: {0}")]
    Other(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[mqtt]`: the broker connection and the topic prefix.
    pub mqtt: MqttConfig,
    /// `[device]`: this appliance's id, pools and accelerator.
    pub device: DeviceConfig,
    /// `[bundles]`: where model bundles live and which are trusted.
    pub bundles: BundlesConfig,
    /// `[serve]`: the work queue, the workers and the reply cache.
    pub serve: ServeConfig,
    /// `[telemetry]`: the stats topic and the per-brief journal records.
    pub telemetry: TelemetryConfig,
    /// `[log]`: where log records go and from which level.
    pub log: LogConfig,
    /// `[backend]`: which inference backends are tried, in which order.
    pub backend: crate::backend::select::BackendConfig,
}

/// Broker connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt.url`: the broker (`mqtts://` for TLS); default `mqtt://127.0.0.1:1883`.
    pub url: String,
    /// `mqtt.username`: the broker user name; default none (anonymous).
    pub username: Option<String>,
    /// `mqtt.password`: the broker password; default none.
    pub password: Option<String>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) cert_file: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
    /// `mqtt.prefix`: the `{prefix}` of every topic; default `packd/v1`.
    pub prefix: String,
    pub(crate) keep_alive_s: u64,
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
    /// `device.id`: the `{device}` of this appliance's topics; default the host name.
    pub id: String,
    /// `device.pools`: pools whose shared brief topic this appliance serves; default none.
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
    /// `bundles.dir`: where installed bundles live; default `/var/lib/packd/bundles`.
    pub dir: PathBuf,
    /// The bundle a fresh `dir` is seeded from; empty disables seeding.
    pub seed: PathBuf,
    /// `bundles.trusted_keys`: Ed25519 public keys (file paths or inline base64) to verify bundles.
    pub trusted_keys: Vec<String>,
    /// `bundles.allow_unsigned`: accept unsigned bundles (development only); default false.
    pub allow_unsigned: bool,
    /// Installed bundles kept in all, the active, previous and last good ones and each name's
    /// newest version included (those are never pruned, so more stay when they alone exceed
    /// it); older ones go at activation.
    pub keep: usize,
    /// Largest bundle archive accepted, in MiB.
    pub max_bundle_mib: u64,
    /// Seconds without a new chunk after which a transfer has stalled and a fresh signed
    /// `begin` for another archive may take its place instead of being answered `busy`.
    pub transfer_stall_s: u64,
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
            transfer_stall_s: 60,
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

/// Stats and the per-brief journal records.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `telemetry.stats_interval_s`: seconds between stats messages and journal summaries; 10.
    pub stats_interval_s: u64,
    /// Up to this many briefs a second are each logged; above it, only a sample.
    pub(crate) log_every_brief_up_to_per_s: u32,
    /// Above that rate, one brief in this many is logged (failed and slow briefs always are).
    pub(crate) sample_one_in: u32,
    /// A brief slower than this is always logged.
    pub(crate) slow_brief_ms: u64,
    /// `telemetry.metrics_listen`: address of the Prometheus `/metrics` endpoint
    /// (`127.0.0.1:9464`); none by default.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            stats_interval_s: 10,
            log_every_brief_up_to_per_s: 50,
            sample_one_in: 100,
            slow_brief_ms: 50,
            metrics_listen: None,
        }
    }
}

/// Where log records go.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// The journal when started by systemd (JOURNAL_STREAM set) or when journald listens on
    /// its socket, stderr otherwise.
    #[default]
    Auto,
    /// `journal`: always the systemd journal.
    Journal,
    /// `stderr`: always standard error.
    Stderr,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `log.target`: `auto` (default), `journal` or `stderr`.
    pub target: LogTarget,
    /// `log.level`: lowest level logged (`error`, `warn`, `info`, `debug`, `trace`, `off`); `info`.
    pub level: String,
    /// Whether systemd started us with stderr on the journal (`JOURNAL_STREAM` set): not a key,
    /// read from the environment with the `PACKD_*` overrides.
    #[serde(skip)]
    pub(crate) under_systemd: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            target: LogTarget::Auto,
            level: "info".into(),
            under_systemd: false,
        }
    }
}

/// The host name, used as the default device id.
pub(crate) fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

impl Config {
    /// `serve.reply_prefix`, checked against `mqtt.prefix`.
    pub fn reply_prefix(&self) -> Result<crate::serve::ReplyPrefix, ConfigError> {
        crate::serve::ReplyPrefix::new(&self.mqtt.prefix, self.serve.reply_prefix.as_deref())
            .map_err(|error| ConfigError::Key {
                key: "serve.reply_prefix".into(),
                message: error.to_string(),
            })
    }

    /// Loads defaults, then the file (required when given explicitly), then `PACKD_*` variables.
    pub fn load(explicit_file: Option<&Path>) -> Result<Config, ConfigError> {
        // Config is where the environment is read; everything else is handed its settings.
        #[allow(clippy::disallowed_methods)]
        let variables = std::env::vars_os();
        Config::load_with_environment(explicit_file, variables)
    }

    /// Like [`Config::load`], reading overrides from `variables` instead of the process environment.
    pub fn load_with_environment(
        explicit_file: Option<&Path>,
        variables: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Config, ConfigError> {
        let variables: Vec<(OsString, OsString)> = variables.into_iter().collect();
        let under_systemd = variables.iter().any(|(name, _)| name == "JOURNAL_STREAM");
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
        // Values stay strings: the config crate converts them when a key is deserialised as a
        // number or a bool, and guessing types here would turn a password "0123" into 123.
        for (key, value) in environment_overrides(variables)? {
            builder = match value {
                EnvValue::Text(text) => builder.set_override(key.as_str(), text),
                EnvValue::List(items) => builder.set_override(key.as_str(), items),
            }
            .map_err(|error| describe(error, explicit_file))?;
        }
        let raw = builder
            .build()
            .map_err(|error| describe(error, explicit_file))?;
        check_known_keys(&raw)?;
        let workers_set = raw.get::<config::Value>("serve.workers").is_ok();
        let mut config: Config = raw
            .try_deserialize()
            .map_err(|error| describe(error, explicit_file))?;
        if !workers_set {
            // The default (none on two cores, else one a core less one) within what this
            // file's other limits leave room for; a count the file sets itself is checked as it is.
            config.serve.workers = config.serve.workers.min(config.serve.workers_fitting());
        }
        config.log.under_systemd = under_systemd;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense; the first key at fault is reported.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.mqtt.validate()?;
        self.device.validate()?;
        self.bundles.validate()?;
        self.serve.validate_counts()?;
        // Checked after mqtt.prefix, which it is built on.
        self.reply_prefix()?;
        self.serve.validate_memory()?;
        self.telemetry.validate()?;
        self.log.validate()
    }
}

/// A configuration key whose value makes no sense, and why.
fn invalid(key: &str, message: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Key {
        key: key.into(),
        message: message.into(),
    })
}

impl MqttConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        // The transport's own parser, so a URL that passes here cannot fail at connect time
        // (exit 1, which systemd restarts forever) instead of now (exit 78, which it does not).
        if crate::transport::parse_url(&self.url).is_err() {
            return invalid(
                "mqtt.url",
                &format!(
                    "'{}' must look like mqtt://host[:port] or mqtts://host[:port]",
                    self.url
                ),
            );
        }
        if self.prefix.is_empty() || self.prefix.contains(['+', '#']) || self.prefix.ends_with('/')
        {
            return invalid(
                "mqtt.prefix",
                "must be a topic without wildcards or a trailing '/'",
            );
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return invalid(
                "mqtt.cert_file",
                "a client certificate needs both mqtt.cert_file and mqtt.key_file",
            );
        }
        for (name, path) in [
            ("mqtt.ca_file", &self.ca_file),
            ("mqtt.cert_file", &self.cert_file),
            ("mqtt.key_file", &self.key_file),
        ] {
            if let Some(path) = path {
                if !path.is_file() {
                    return invalid(name, &format!("{} is not a readable file", path.display()));
                }
            }
        }
        if self.keep_alive_s < 5 {
            return invalid("mqtt.keep_alive_s", "must be at least 5");
        }
        if self.adoption_grace_ms > 600_000 {
            return invalid(
                "mqtt.adoption_grace_ms",
                "must be at most 600000 (10 minutes)",
            );
        }
        Ok(())
    }
}

impl DeviceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.id.is_empty() || self.id.contains(['/', '+', '#']) {
            return invalid(
                "device.id",
                "must be non-empty and contain no '/', '+' or '#'",
            );
        }
        if let Some(pool) = self
            .pools
            .iter()
            .find(|pool| pool.is_empty() || pool.contains(['/', '+', '#']))
        {
            return invalid(
                "device.pools",
                &format!("pool '{pool}' must be non-empty and contain no '/', '+' or '#'"),
            );
        }
        Ok(())
    }
}

impl BundlesConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_bundle_mib == 0 {
            return invalid("bundles.max_bundle_mib", "must be at least 1");
        }
        if let Err(error) = crate::bundle::signature::TrustedKeys::from_config(&self.trusted_keys) {
            return invalid("bundles.trusted_keys", &error.to_string());
        }
        Ok(())
    }
}

impl TelemetryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.stats_interval_s == 0 {
            return invalid("telemetry.stats_interval_s", "must be at least 1");
        }
        if self.sample_one_in == 0 {
            return invalid("telemetry.sample_one_in", "must be at least 1");
        }
        Ok(())
    }
}

impl LogConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.level.parse::<log::LevelFilter>().is_err() {
            return invalid(
                "log.level",
                "must be one of off, error, warn, info, debug, trace",
            );
        }
        Ok(())
    }
}

/// An environment override's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvValue {
    Text(String),
    List(Vec<String>),
}

/// The configuration overrides among `variables`, as (dotted key, value).
///
/// `PACKD_<SECTION>__<KEY>` with a known section is an override; a known section followed by a
/// single `_` (`PACKD_MQTT_URL`) is a mistake worth stopping for; any other `PACKD_*` name belongs
/// to a script and is ignored.
pub(crate) fn environment_overrides(
    variables: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, EnvValue)>, ConfigError> {
    let sections = field_names::<Config>();
    let mut overrides = Vec::new();
    for (name, value) in variables {
        let Some(name) = name.to_str() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let first = rest.split('_').next().unwrap_or_default();
        let section = first.to_lowercase();
        if !sections.contains(&section.as_str()) {
            continue;
        }
        let Some(path) = rest[first.len()..].strip_prefix(ENV_SEPARATOR) else {
            let remainder = rest[first.len()..].trim_start_matches('_');
            let suggestion = if remainder.is_empty() {
                "<KEY>"
            } else {
                remainder
            };
            return Err(ConfigError::Environment {
                name: name.to_string(),
                message: format!(
                    "configuration variables are {ENV_PREFIX}<SECTION>{ENV_SEPARATOR}<KEY>: \
                     did you mean {ENV_PREFIX}{first}{ENV_SEPARATOR}{suggestion}?"
                ),
            });
        };
        let key = format!(
            "{section}.{}",
            path.to_lowercase().replace(ENV_SEPARATOR, ".")
        );
        let Some(value) = value.to_str() else {
            return Err(ConfigError::Environment {
                name: name.to_string(),
                message: "the value is not valid UTF-8".into(),
            });
        };
        let value = if LIST_KEYS.contains(&key.as_str()) {
            EnvValue::List(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_string)
                    .collect(),
            )
        } else {
            EnvValue::Text(value.to_string())
        };
        overrides.push((key, value));
    }
    Ok(overrides)
}

/// The keys a section takes, or `None` for a name that is no section.
fn section_keys(section: &str) -> Option<&'static [&'static str]> {
    Some(match section {
        "mqtt" => field_names::<MqttConfig>(),
        "device" => field_names::<DeviceConfig>(),
        "bundles" => field_names::<BundlesConfig>(),
        "serve" => field_names::<ServeConfig>(),
        "telemetry" => field_names::<TelemetryConfig>(),
        "log" => field_names::<LogConfig>(),
        "backend" => field_names::<crate::backend::select::BackendConfig>(),
        _ => return None,
    })
}

/// Refuses unknown sections and keys by their full path (`serve.queu`), which serde's own
/// message does not give.
fn check_known_keys(raw: &config::Config) -> Result<(), ConfigError> {
    let Ok(top) = raw
        .clone()
        .try_deserialize::<std::collections::BTreeMap<String, config::Value>>()
    else {
        // Not a table at all: deserialising the whole reports it.
        return Ok(());
    };
    let unknown = |key: String, expected: &[&str]| ConfigError::Key {
        key,
        message: format!("unknown key; expected one of {}", expected.join(", ")),
    };
    for (section, value) in top {
        let Some(keys) = section_keys(&section) else {
            return Err(unknown(section, field_names::<Config>()));
        };
        // A section that is not a table gets its type error from deserialisation.
        if let Ok(table) = value.into_table() {
            if let Some(key) = table.keys().find(|key| !keys.contains(&key.as_str())) {
                return Err(unknown(format!("{section}.{key}"), keys));
            }
        }
    }
    Ok(())
}

/// The field names of a struct deriving `Deserialize`, read from what it asks a deserializer
/// for, so the lists of sections and keys cannot drift from the structs.
fn field_names<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the field names were wanted"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    // The probe always errs: the point is the field list it captured on the way.
    let _ = T::deserialize(Probe(&mut fields));
    fields
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
        config::ConfigError::Message(message) => ConfigError::Other(message),
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
        assert_eq!(config.serve.queue_bytes(), 64 * 1024 * 1024);
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

    /// Issue 13: a configuration whose worst case exceeds `serve.memory_mib` (the unit's
    /// MemoryMax) is refused at start (exit 78) instead of being killed by the cgroup later.
    #[test]
    fn memory_a_configuration_over_memory_mib_is_refused() {
        let mut config = Config::default();
        config.serve.workers = 12;
        config
            .validate()
            .expect("a 12-core Orin's defaults fit MemoryMax=1G");
        assert!(config.serve.worst_case_memory() <= 1024 * MIB as u64);

        config.serve.queue_bytes_mib = 512;
        let error = config.validate().expect_err("512 MiB of queue").to_string();
        assert!(error.contains("serve.memory_mib"), "{error}");
        config.serve.memory_mib = 2048;
        config.validate().expect("fits a raised MemoryMax");

        let mut config = Config::default();
        config.serve.workers = 256;
        let error = config.validate().expect_err("256 workers").to_string();
        assert!(error.contains("workers fit"), "{error}");

        let mut config = Config::default();
        config.serve.reply_cache_mib = 0;
        let error = config.validate().expect_err("no cache bytes").to_string();
        assert!(error.contains("serve.reply_cache_mib"), "{error}");
    }

    #[test]
    fn two_cores_or_fewer_answer_on_the_connections_thread_by_default() {
        use crate::config::serve::default_workers;
        assert_eq!(
            [1, 2, 3, 4, 12].map(default_workers),
            [0, 0, 2, 3, 11],
            "none up to two cores, then one a core less one"
        );
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            ServeConfig::default().workers,
            default_workers(cores).min(ServeConfig::default().workers_fitting())
        );
        let mut config = Config::default();
        config.serve.workers = 0;
        config.validate().expect("no workers is valid");
        config.serve.workers = 257;
        let error = config.validate().expect_err("too many").to_string();
        assert!(error.contains("from 0 to 256"), "{error}");
    }

    #[test]
    fn memory_the_default_workers_always_fit_the_default_memory() {
        let defaults = ServeConfig::default();
        assert!(defaults.worst_case_memory() <= defaults.memory_mib as u64 * MIB as u64);
        // What a many-core machine gets by default: as many workers as fit, and no refusal.
        let fitting = defaults.workers_fitting();
        let many_cores = ServeConfig {
            workers: fitting,
            ..defaults.clone()
        };
        assert!(many_cores.validate_memory().is_ok());
        let one_more = ServeConfig {
            workers: fitting + 1,
            ..defaults
        };
        assert!(one_more.validate_memory().is_err());
        Config::default()
            .validate()
            .expect("the defaults are valid");
    }

    #[test]
    fn memory_default_workers_fit_the_limits_a_file_sets() {
        // A reply cache so large that exactly one worker fits beside it.
        let cache_mib = (1..4096)
            .find(|&mib| {
                ServeConfig {
                    reply_cache_mib: mib,
                    ..ServeConfig::default()
                }
                .workers_fitting()
                    == 1
            })
            .expect("some cache size leaves room for one worker");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("packd.toml");
        std::fs::write(&path, format!("[serve]\nreply_cache_mib = {cache_mib}\n")).unwrap();
        let config = Config::load_with_environment(Some(&path), variables(&[]))
            .expect("the default worker count adapts to the file's limits");
        // One worker where the machine's default has more; none stays none.
        assert_eq!(config.serve.workers, ServeConfig::default().workers.min(1));
        // A count the file sets itself is not adapted, but refused.
        std::fs::write(
            &path,
            format!("[serve]\nreply_cache_mib = {cache_mib}\nworkers = 2\n"),
        )
        .unwrap();
        let error = Config::load_with_environment(Some(&path), variables(&[]))
            .expect_err("two workers do not fit")
            .to_string();
        assert!(error.contains("serve.memory_mib"), "{error}");
    }

    fn variables(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value)))
            .collect()
    }

    #[test]
    fn every_section_has_its_keys_listed() {
        let sections = field_names::<Config>();
        assert_eq!(
            sections,
            [
                "mqtt",
                "device",
                "bundles",
                "serve",
                "telemetry",
                "log",
                "backend"
            ]
        );
        for section in sections {
            let keys = section_keys(section).unwrap_or_default();
            assert!(!keys.is_empty(), "section {section} has no keys");
        }
        assert!(section_keys("serve").is_some_and(|keys| keys.contains(&"queue")));
    }

    #[test]
    fn script_variables_are_ignored_and_section_variables_are_taken() {
        let overrides = environment_overrides(variables(&[
            ("PACKD_CI_FUZZ_SECONDS", "0"),
            ("PACKD_BIN", "/usr/bin/packd"),
            ("PACKD_DEB_MAX_GLIBC", "2.35"),
            ("PACKD_TRT_SKIP_DRIVER_PROBE", "1"),
            ("PACKD_LOCAL_PORT", "1884"),
            ("HOME", "/root"),
            ("PACKD_MQTT__URL", "mqtt://broker:1883"),
            ("PACKD_DEVICE__POOLS", "store-9, store-10"),
        ]))
        .expect("no mistakes among these");
        assert_eq!(
            overrides,
            vec![
                (
                    "mqtt.url".to_string(),
                    EnvValue::Text("mqtt://broker:1883".into())
                ),
                (
                    "device.pools".to_string(),
                    EnvValue::List(vec!["store-9".into(), "store-10".into()])
                ),
            ]
        );
    }

    #[test]
    fn a_section_without_the_double_underscore_is_refused_with_the_fix() {
        let error = environment_overrides(variables(&[("PACKD_MQTT_URL", "mqtt://x")]))
            .expect_err("PACKD_MQTT_URL is a mistake");
        let message = error.to_string();
        assert!(message.contains("PACKD_MQTT_URL"), "{message}");
        assert!(
            message.contains("did you mean PACKD_MQTT__URL?"),
            "{message}"
        );
        let error = environment_overrides(variables(&[("PACKD_SERVE", "1")]))
            .expect_err("a bare section is a mistake");
        assert!(error.to_string().contains("PACKD_SERVE__<KEY>"), "{error}");
    }

    #[test]
    fn an_empty_list_variable_means_no_items() {
        let overrides =
            environment_overrides(variables(&[("PACKD_DEVICE__POOLS", "")])).expect("valid");
        assert_eq!(
            overrides,
            vec![("device.pools".to_string(), EnvValue::List(Vec::new()))]
        );
    }

    #[test]
    fn mqtt_urls_the_transport_cannot_use_are_refused() {
        for url in [
            "mqtt://h:notaport",
            "mqtt://h/path",
            "mqtt://",
            "mqtt://h:99999",
        ] {
            let mut config = Config::default();
            config.mqtt.url = url.into();
            let error = config.validate().expect_err(url).to_string();
            assert!(error.contains("mqtt.url"), "{url}: {error}");
        }
        for url in [
            "mqtt://h",
            "mqtts://h:8883",
            "mqtt://[::1]:1883",
            "tcp://h:1/",
        ] {
            let mut config = Config::default();
            config.mqtt.url = url.into();
            assert!(config.validate().is_ok(), "{url}");
        }
    }
}
