//! `packctl brief`: one brief from the command line, printed as a table or JSON.

mod fixtures;
mod support;

use std::process::Command;

use fixtures::*;

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
    let reply: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints the reply");
    assert_eq!(reply["status"], "ok");
    assert_eq!(reply["palettes"].as_array().expect("palettes").len(), 5);

    let dir = tempfile::tempdir().expect("temp");
    let preview = dir.path().join("preview.png");
    let output = packctl(
        &packd,
        &[
            "brief",
            "--device",
            &packd.device,
            "--product",
            "tea",
            "--preview",
            preview.to_str().expect("path"),
        ],
    );
    assert!(output.status.success());
    image::open(&preview).expect("the preview is a PNG");
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
