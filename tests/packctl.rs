//! `packctl brief`: one brief from the command line, printed as a table or JSON.

use crate::fixtures;
use crate::support;

use std::process::Command;

use fixtures::*;
use packd_wire::reply::BriefAnswer;

fn packctl(packd: &Packd, arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_packctl"))
        .arg("--config")
        .arg(&packd.config_path)
        .args(arguments)
        .output()
        .expect("run packctl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packctl_sends_a_brief_and_prints_a_table_or_json() {
    let (_broker, packd, _client) = broker_and_packd(PackdOptions::default(), "online").await;
    let output = packctl(
        &packd,
        &[
            "brief",
            "--device",
            &packd.device,
            "--product",
            "beverage",
            "--mood",
            "fresh,夏季限定",
            "--audience",
            "gen z",
            "--palette",
            "morandi",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for heading in ["Styles", "Palettes", "Fonts", "Layout zones"] {
        assert!(stdout.contains(heading), "{heading} missing:\n{stdout}");
    }
    assert!(stdout.contains("contrast"), "{stdout}");

    let output = packctl(
        &packd,
        &[
            "brief",
            "--device",
            &packd.device,
            "--product",
            "tea",
            "--top-k",
            "5",
            "--json",
        ],
    );
    assert!(output.status.success());
    let reply: BriefAnswer =
        serde_json::from_slice(&output.stdout).expect("--json prints a brief reply");
    let BriefAnswer::Ok(reply) = reply else {
        panic!("not an ok reply: {reply:?}");
    };
    assert_eq!(reply.palettes.len(), 5);

    let dir = tempfile::tempdir().expect("temp");
    // The tea brief's preview, with `extra` arguments, as the PNG file's bytes.
    let preview_of = |name: &str, extra: &[&str]| {
        let path = dir.path().join(name);
        let mut arguments = vec!["brief", "--device", &packd.device, "--product", "tea"];
        arguments.extend_from_slice(extra);
        arguments.extend(["--preview", path.to_str().expect("path")]);
        let output = packctl(&packd, &arguments);
        assert!(output.status.success());
        image::open(&path).expect("the preview is a PNG");
        std::fs::read(&path).expect("preview")
    };
    let plain = preview_of("preview.png", &[]);
    // `--headline` sets other words than the product: the same brief draws another panel.
    let headlined = preview_of("headlined.png", &["--headline", "春日限定"]);
    assert_ne!(plain, headlined);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packctl_exits_non_zero_on_an_error_reply_or_no_reply() {
    let (_broker, packd, _client) = broker_and_packd(PackdOptions::default(), "online").await;
    let output = packctl(
        &packd,
        &[
            "brief",
            "--device",
            &packd.device,
            "--product",
            "tea",
            "--brand-color",
            "#nothex",
        ],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("bad_request"));
    let output = packctl(
        &packd,
        &[
            "brief",
            "--device",
            "nobody-home",
            "--product",
            "tea",
            "--timeout-s",
            "1",
        ],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no reply"));
}

fn mosquitto_passwd(file: &std::path::Path, user: &str, password: &str, create: bool) {
    let mut command = Command::new("mosquitto_passwd");
    if create {
        command.arg("-c");
    }
    let status = command
        .arg("-b")
        .arg(file)
        .arg(user)
        .arg(password)
        .status()
        .expect("mosquitto_passwd");
    assert!(status.success());
}

/// packctl under the example ACL (docs/mosquitto-acl.conf), where an account may read only
/// `packd/v1/replies/<its username>/#`: a kiosk account's brief and a fleet account's
/// `bundle list` both get their replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packctl_gets_its_replies_under_the_example_acl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let passwd = dir.path().join("passwd");
    mosquitto_passwd(&passwd, "orin-17", "packd-secret", true);
    mosquitto_passwd(&passwd, "kiosk-17", "kiosk-secret", false);
    mosquitto_passwd(&passwd, "fleet-1", "fleet-secret", false);
    let acl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/mosquitto-acl.conf");
    let broker = support::Broker::start_with(&format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}\n",
        passwd.display(),
        acl.display()
    ));
    let packd = Packd::start(
        &broker,
        PackdOptions {
            device: Some("orin-17".into()),
            env: vec![
                ("PACKD_MQTT__USERNAME".into(), "orin-17".into()),
                ("PACKD_MQTT__PASSWORD".into(), "packd-secret".into()),
            ],
            ..PackdOptions::default()
        },
    );
    let as_account = |user: &str, password: &str, arguments: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_packctl"))
            .arg("--config")
            .arg(&packd.config_path)
            .args(arguments)
            .env("PACKD_MQTT__USERNAME", user)
            .env("PACKD_MQTT__PASSWORD", password)
            .output()
            .expect("run packctl")
    };
    let mut options = V5Client::options(&support::unique_id("fleet-1"), broker.port);
    options.set_credentials("fleet-1", "fleet-secret");
    let mut watcher = V5Client::connect_with(
        options,
        format!("packd/v1/replies/fleet-1/{}", support::unique_id("r")),
        None,
    )
    .await;
    watcher.wait_for_state(&packd, "online").await;
    let output = as_account(
        "fleet-1",
        "fleet-secret",
        &["bundle", "list", "--device", "orin-17", "--json"],
    );
    assert!(
        output.status.success(),
        "{}\n{}\npackd log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        packd.log()
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("packd-default"));

    let output = as_account(
        "kiosk-17",
        "kiosk-secret",
        &["brief", "--device", "orin-17", "--product", "tea", "--json"],
    );
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON reply");
    assert_eq!(reply["status"], "ok", "{reply}");
}
