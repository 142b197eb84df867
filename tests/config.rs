//! The operator interface: exit codes, configuration errors naming their key, env overrides.

use std::ffi::OsString;
use std::process::Command;

use packd::config::{Config, ConfigError};

fn packd(arguments: &[&str], environment: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_packd"));
    command.args(arguments);
    for (key, value) in environment {
        command.env(key, value);
    }
    command.output().expect("run packd")
}

fn write_config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("packd.toml");
    std::fs::write(&path, text).expect("write");
    let path = path.display().to_string();
    (dir, path)
}

#[test]
fn version_prints_the_crate_version() {
    let output = packd(&["--version"], &[]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_bad_value_exits_78_naming_the_key() {
    let (_dir, path) = write_config("[serve]\nqueue = 0\n");
    let output = packd(&["--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("serve.queue"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
}

/// Finding 3 (confused deputy): no configuration lets packd publish replies where briefs,
/// bundle commands or states live.
#[test]
fn confused_deputy_reply_prefix_under_devices_or_pools_exits_78() {
    for prefix in [
        "{prefix}/devices/",
        "packd/v1/devices/orin-17/bundles/",
        "{prefix}/pools/store-9/",
        "packd/v1/",
    ] {
        let (_dir, path) = write_config(&format!("[serve]\nreply_prefix = \"{prefix}\"\n"));
        let output = packd(&["--config", &path], &[]);
        assert_eq!(output.status.code(), Some(78), "{prefix}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("serve.reply_prefix"), "{stderr}");
        assert!(stderr.contains("overlaps"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    }
    let (_dir, path) = write_config("[serve]\nreply_prefix = \"r\\u0001/\"\n");
    let output = packd(&["--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("control character U+0001"), "{stderr}");
    let config = load("[serve]\nreply_prefix = \"{prefix}/answers/\"\n", &[]).expect("valid");
    assert_eq!(
        config.reply_prefix().expect("valid").as_str(),
        "packd/v1/answers/"
    );
}

#[test]
fn a_wrong_type_exits_78_naming_the_key() {
    let (_dir, path) = write_config("[serve]\nworkers = \"many\"\n");
    let output = packd(&["--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("workers"), "{stderr}");
}

#[test]
fn an_unknown_key_exits_78_naming_its_full_path() {
    let (_dir, path) = write_config("[serve]\nqueu = 10\n");
    let output = packd(&["--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("'serve.queu'"), "{stderr}");
    let (_dir, path) = write_config("[serv]\nqueue = 10\n");
    let output = packd(&["--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("'serv'"));
}

#[test]
fn an_mqtt_url_the_transport_cannot_parse_exits_78_naming_the_key() {
    for url in ["mqtt://h:notaport", "mqtt://h/path"] {
        let (_dir, path) = write_config(&format!("[mqtt]\nurl = \"{url}\"\n"));
        let output = packd(&["--config", &path], &[]);
        assert_eq!(output.status.code(), Some(78), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("mqtt.url"), "{url}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    }
}

#[test]
fn a_section_variable_without_the_double_underscore_exits_78_naming_the_fix() {
    let (_dir, path) = write_config("");
    let output = packd(&["--config", &path], &[("PACKD_MQTT_URL", "mqtt://h:1883")]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PACKD_MQTT__URL"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
}

/// Loads `toml` with only `variables` as the environment.
fn load(toml: &str, variables: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let (_dir, path) = write_config(toml);
    Config::load_with_environment(
        Some(std::path::Path::new(&path)),
        variables
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value))),
    )
}

#[test]
fn script_variables_named_packd_do_not_reach_the_configuration() {
    let config = load(
        "[serve]\nqueue = 10\n",
        &[
            ("PACKD_CI_FUZZ_SECONDS", "0"),
            ("PACKD_CI_SKIP_DEB", "1"),
            ("PACKD_DEB_FEATURES", "tensorrt"),
            ("PACKD_DLA_COMPILER_DIRS", "/opt/x"),
            ("PACKD_BIN", "/usr/bin/packd"),
        ],
    )
    .expect("script variables are not configuration");
    assert_eq!(config.serve.queue, 10);
}

#[test]
fn environment_strings_keep_their_text_and_numbers_and_bools_still_parse() {
    let config = load(
        "",
        &[
            ("PACKD_MQTT__PASSWORD", "0123"),
            ("PACKD_MQTT__USERNAME", "true"),
            ("PACKD_DEVICE__ID", "007"),
            ("PACKD_DEVICE__POOLS", "42"),
            ("PACKD_SERVE__QUEUE", "12"),
            ("PACKD_BUNDLES__ALLOW_UNSIGNED", "true"),
            ("PACKD_TELEMETRY__STATS_INTERVAL_S", "3"),
        ],
    )
    .expect("valid overrides");
    assert_eq!(config.mqtt.password.as_deref(), Some("0123"));
    assert_eq!(config.mqtt.username.as_deref(), Some("true"));
    assert_eq!(config.device.id, "007");
    assert_eq!(config.device.pools, vec!["42".to_string()]);
    assert_eq!(config.serve.queue, 12);
    assert!(config.bundles.allow_unsigned);
    assert_eq!(config.telemetry.stats_interval_s, 3);
}

#[test]
fn list_variables_split_on_commas() {
    let config = load(
        "[device]\npools = [\"from-file\"]\n",
        &[
            ("PACKD_DEVICE__POOLS", "store-9,store-10"),
            ("PACKD_BACKEND__ORDER", "gpu,dla0"),
        ],
    )
    .expect("valid lists");
    assert_eq!(config.device.pools, vec!["store-9", "store-10"]);
    assert_eq!(config.backend.order, vec!["gpu", "dla0"]);
}

#[test]
fn a_non_number_for_a_number_key_names_the_key() {
    let error = load("", &[("PACKD_SERVE__QUEUE", "lots")]).expect_err("not a number");
    assert!(error.to_string().contains("serve.queue"), "{error}");
}

#[test]
fn a_missing_or_broken_file_exits_78() {
    let output = packd(&["--config", "/nonexistent/packd.toml"], &[]);
    assert_eq!(output.status.code(), Some(78));
    let (_dir, path) = write_config("[serve\nqueue = ");
    let output = packd(&["--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
}

#[test]
fn environment_variables_override_the_file() {
    let (_dir, path) = write_config("[serve]\nqueue = 10\n");
    let output = packd(&["--config", &path], &[("PACKD_SERVE__QUEUE", "0")]);
    assert_eq!(
        output.status.code(),
        Some(78),
        "the env value 0 must win over the file's 10"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("serve.queue"));
    let output = packd(&["--config", &path], &[("PACKD_MQTT__URL", "http://wrong")]);
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("mqtt.url"));
}

#[test]
fn the_sample_config_loads_with_adoption_on() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packd.toml");
    let config = packd::config::Config::load(Some(&sample)).expect("examples/packd.toml loads");
    assert!(config.mqtt.adopt_pool_peers);
    assert_eq!(config.mqtt.adoption_grace_ms, 1000);
}

#[test]
fn an_adoption_grace_over_ten_minutes_exits_78_naming_the_key() {
    let (_dir, path) = write_config("[mqtt]\nadopt_pool_peers = false\n");
    let output = packd(
        &["--config", &path],
        &[("PACKD_MQTT__ADOPTION_GRACE_MS", "600001")],
    );
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mqtt.adoption_grace_ms"), "{stderr}");
}

#[test]
fn a_queue_byte_budget_below_one_largest_brief_exits_78_naming_the_key() {
    let (_dir, path) = write_config("[serve]\nqueue_bytes_mib = 5\n");
    let output = packd(&["--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("serve.queue_bytes_mib"), "{stderr}");
    let config = load("", &[("PACKD_SERVE__QUEUE_BYTES_MIB", "6")]).expect("6 MiB is enough");
    assert_eq!(config.serve.queue_bytes(), 6 * 1024 * 1024);
}

#[test]
fn batching_settings_are_checked_and_named_when_out_of_range() {
    let config = load("", &[]).expect("defaults");
    assert_eq!(config.serve.max_batch, 8, "the shipped bundle's batch");
    assert_eq!(
        config.serve.batch_window_us, 0,
        "no brief is delayed by default"
    );
    for (text, key) in [
        ("[serve]\nmax_batch = 0\n", "serve.max_batch"),
        ("[serve]\nmax_batch = 65\n", "serve.max_batch"),
        (
            "[serve]\nbatch_window_us = 100001\n",
            "serve.batch_window_us",
        ),
    ] {
        let (_dir, path) = write_config(text);
        let output = packd(&["--config", &path], &[]);
        assert_eq!(output.status.code(), Some(78), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{text}: {stderr}");
    }
    let config = load(
        "",
        &[
            ("PACKD_SERVE__MAX_BATCH", "1"),
            ("PACKD_SERVE__BATCH_WINDOW_US", "100000"),
        ],
    )
    .expect("batching off, the longest window");
    assert_eq!(config.serve.max_batch, 1);
    assert_eq!(config.serve.batch_window_us, 100_000);
}

#[test]
fn the_metrics_endpoint_is_off_unless_given_a_socket_address() {
    let config = load("", &[]).expect("defaults");
    assert_eq!(config.telemetry.metrics_listen, None);
    let config = load("[telemetry]\nmetrics_listen = \"127.0.0.1:9464\"\n", &[]).expect("address");
    assert_eq!(
        config.telemetry.metrics_listen,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    let refused = load("[telemetry]\nmetrics_listen = \"everywhere\"\n", &[]).unwrap_err();
    assert!(refused.to_string().contains("metrics_listen"), "{refused}");
}
