//! Delta pushes against real packd processes: `packctl bundle delta` of a bundle that changes one
//! catalogue carries only that file, `bundle push --delta` sends only the delta's bytes and
//! installs a bundle byte-identical to a full push; a device without the delta's base refuses
//! the delta on its own, and `--delta` sends it the full archive instead.

use crate::fixtures;
use crate::fixtures::{SHIPPED_LABEL, SHIPPED_VERSION};
use crate::packctl_bundle::{describe, packctl, serving, text, trusting, Operator};
use crate::support;

use std::collections::BTreeMap;
use std::path::Path;

use fixtures::bundles::{bundle_variant, installed_path};
use fixtures::{shipped_bundle, Packd, PackdOptions, V5Client};
use support::Broker;

const STYLES: &str = "catalogues/styles.json";

/// The full archive of the shipped bundle (what every packd here is seeded with), 1.9.0 with
/// its style catalogue rewritten (same styles, other bytes) and signed, and the signed delta
/// between them; returns (full 1.9.0, delta).
pub(crate) fn archives(operator: &Operator) -> (String, String) {
    let dir = operator.dir.path();
    let shipped = shipped_bundle();
    let output = packctl(
        dir,
        &[
            "bundle",
            "build",
            shipped.to_str().expect("utf-8"),
            "--out",
            "base.bundle.tar.zst",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let variant = bundle_variant(
        "1.9.0",
        |dir| {
            let path = dir.join(STYLES);
            let styles: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("styles")).expect("json");
            std::fs::write(&path, serde_json::to_vec(&styles).expect("json")).expect("write");
        },
        true,
    );
    let full = operator.archive_of(variant, "1.9.0", true);
    let output = packctl(
        dir,
        &[
            "bundle",
            "delta",
            full.to_str().expect("utf-8"),
            "--base",
            "base.bundle.tar.zst",
            "--out",
            "1.9.0.delta.tar.zst",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("carries  1 file(s)") && stdout.contains(STYLES),
        "{stdout}"
    );
    let output = packctl(
        dir,
        &[
            "bundle",
            "sign",
            "1.9.0.delta.tar.zst",
            "--key",
            "keys/fleet.key",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let delta = dir.join("1.9.0.delta.tar.zst");
    (
        full.to_str().expect("utf-8").to_string(),
        delta.to_str().expect("utf-8").to_string(),
    )
}

/// The bytes packctl reports sent (`sent N bytes in …`).
fn bytes_sent(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("sent "))
        .unwrap_or_else(|| panic!("no 'sent' line:\n{stderr}"));
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {line:?}"))
}

/// `packctl bundle push ARCHIVE --device DEVICE [--delta DELTA]` against `broker`.
async fn push(
    operator: &Operator,
    broker: &Broker,
    archive: &str,
    device: &str,
    delta: Option<&str>,
) -> std::process::Output {
    let mut arguments = vec!["bundle", "push", archive, "--device", device];
    if let Some(delta) = delta {
        arguments.extend(["--delta", delta]);
    }
    operator.run(broker, &arguments).await
}

/// Every file under `dir`, with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                files.insert(
                    relative.to_string_lossy().into_owned(),
                    std::fs::read(&path).expect("read"),
                );
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_push_sends_only_the_changed_catalogue_and_installs_what_a_full_push_does() {
    let operator = Operator::new();
    let (full, delta) = archives(&operator);
    let broker = Broker::start();
    let by_delta = Packd::start(&broker, trusting(&operator.public));
    let by_full = Packd::start(&broker, trusting(&operator.public));
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&by_delta, "online").await;
    client.wait_for_state(&by_full, "online").await;

    let output = push(&operator, &broker, &full, &by_delta.device, Some(&delta)).await;
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("sending the delta"), "{stderr}");
    // What travelled is the delta archive, and it holds no more than the changed catalogue, the
    // manifest and delta.toml (compressed, with tar headers).
    let sent = bytes_sent(&stderr);
    let delta_size = std::fs::metadata(&delta).expect("delta").len();
    assert_eq!(sent, delta_size, "{stderr}");
    let shipped = shipped_bundle();
    let carried = std::fs::metadata(shipped.join(STYLES))
        .expect("styles")
        .len()
        + std::fs::metadata(shipped.join("manifest.toml"))
            .expect("manifest")
            .len()
        + 4096;
    assert!(
        sent < carried,
        "sent {sent} bytes, more than the {carried} the changed files take"
    );
    let full_size = std::fs::metadata(&full).expect("full").len();
    assert!(
        sent * 50 < full_size,
        "sent {sent} of a {full_size}-byte archive"
    );

    let output = push(&operator, &broker, &full, &by_full.device, None).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(bytes_sent(&text(&output.stderr)), full_size);

    let assembled = tree(&installed_path(&by_delta, "packd-default", "1.9.0"));
    let pushed = tree(&installed_path(&by_full, "packd-default", "1.9.0"));
    assert_eq!(assembled.len(), pushed.len());
    assert!(
        assembled == pushed,
        "the assembled bundle differs from the pushed one"
    );
    for packd in [&by_delta, &by_full] {
        assert_eq!(serving(&mut client, packd).await, "1.9.0");
    }
    // The delta stood for the full archive: pushing that now sends nothing.
    let output = push(&operator, &broker, &full, &by_delta.device, None).await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        bytes_sent(&text(&output.stderr)),
        0,
        "{}",
        describe(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_without_the_base_refuses_the_delta_and_gets_the_full_archive() {
    let operator = Operator::new();
    let (full, delta) = archives(&operator);
    let broker = Broker::start();
    let bare = Packd::start(
        &broker,
        PackdOptions {
            seed: None,
            ..trusting(&operator.public)
        },
    );
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&bare, "degraded").await;

    // The delta on its own: the device cannot assemble it and says why; nothing is installed.
    let output = push(&operator, &broker, &delta, &bare.device, None).await;
    assert!(!output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("invalid_bundle") && stdout.contains(SHIPPED_LABEL),
        "{}",
        describe(&output)
    );
    assert!(!installed_path(&bare, "packd-default", "1.9.0").exists());

    let output = push(&operator, &broker, &full, &bare.device, Some(&delta)).await;
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("sending the full archive"), "{stderr}");
    assert_eq!(
        bytes_sent(&stderr),
        std::fs::metadata(&full).expect("full").len()
    );
    assert_eq!(serving(&mut client, &bare).await, "1.9.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_refused_by_a_device_whose_base_differs_is_followed_by_the_full_archive() {
    let operator = Operator::new();
    let (full, delta) = archives(&operator);
    let broker = Broker::start();
    // A shipped version of its own (another palette file): `list` names the delta's base, but the
    // manifest is not the one the delta was made from.
    let other_base = bundle_variant(
        SHIPPED_VERSION,
        |dir| {
            let path = dir.join("catalogues/palettes.json");
            let palettes: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("palettes")).expect("json");
            std::fs::write(&path, serde_json::to_vec(&palettes).expect("json")).expect("write");
        },
        true,
    );
    let packd = Packd::start(
        &broker,
        PackdOptions {
            seed: Some(other_base.path().to_path_buf()),
            ..trusting(&operator.public)
        },
    );
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&packd, "online").await;

    let output = push(&operator, &broker, &full, &packd.device, Some(&delta)).await;
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("sending the delta"), "{stderr}");
    assert!(
        stderr.contains("refused the delta") && stderr.contains("not the bundle this delta"),
        "{stderr}"
    );
    let delta_size = std::fs::metadata(&delta).expect("delta").len();
    let full_size = std::fs::metadata(&full).expect("full").len();
    assert_eq!(bytes_sent(&stderr), delta_size + full_size, "{stderr}");
    assert_eq!(serving(&mut client, &packd).await, "1.9.0");
}
