//! The operator interface: exit codes, configuration errors naming their key, env overrides.

mod support;

use std::process::Command;

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

#[test]
fn a_wrong_type_exits_78_naming_the_key() {
    let (_dir, path) = write_config("[serve]\nworkers = \"many\"\n");
    let output = packd(&["--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("workers"), "{stderr}");
}

#[test]
fn an_unknown_key_exits_78() {
    let (_dir, path) = write_config("[serve]\nqueu = 10\n");
    let output = packd(&["--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("queu"));
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
