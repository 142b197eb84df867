//! `packctl keygen` and `packctl bundle …`: the local round trip (build → sign → inspect) on the
//! shipped bundle, and the fleet side of the bundle protocol against a real broker, with a small
//! in-test appliance that speaks the protocol (the daemon's own tests cover packd itself).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PREFIX: &str = "packd/v1";

fn shipped_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("engines/packd-default")
}

fn packctl(dir: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_packctl"))
        .current_dir(dir)
        .args(arguments)
        .output()
        .expect("run packctl")
}

async fn packctl_async(dir: PathBuf, arguments: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        packctl(&dir, &arguments)
    })
    .await
    .expect("packctl task")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

fn write_config(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let path = dir.join("packctl.toml");
    std::fs::write(
        &path,
        format!("[mqtt]\nurl = \"{url}\"\nprefix = \"{PREFIX}\"\n{extra}"),
    )
    .expect("write config");
    path
}

/// keygen + build + sign in `dir`; returns (archive, public key path).
fn signed_archive(dir: &Path) -> (PathBuf, PathBuf) {
    let output = packctl(dir, &["keygen", "--name", "fleet", "--dir", "keys"]);
    assert!(output.status.success(), "{}", describe(&output));
    let bundle = shipped_bundle();
    let output = packctl(
        dir,
        &["bundle", "build", bundle.to_str().expect("utf-8 path")],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let archive = dir.join("packd-default-1.0.0.bundle.tar.zst");
    let output = packctl(
        dir,
        &[
            "bundle",
            "sign",
            "packd-default-1.0.0.bundle.tar.zst",
            "--key",
            "keys/fleet.key",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    (archive, dir.join("keys/fleet.pub"))
}

#[test]
fn keygen_build_sign_inspect_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = packctl(dir.path(), &["keygen", "--name", "fleet", "--dir", "keys"]);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    let public =
        packd::bundle::signature::read_public_key(&dir.path().join("keys/fleet.pub")).expect("pub");
    let key_id = packd::bundle::signature::key_id(&public);
    assert!(stdout.contains(&key_id), "{stdout}");
    assert!(stdout.contains("trusted_keys = [\""), "{stdout}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("keys/fleet.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second keygen under the same name must not overwrite the key.
    let output = packctl(dir.path(), &["keygen", "--name", "fleet", "--dir", "keys"]);
    assert!(!output.status.success(), "{}", describe(&output));

    let bundle = shipped_bundle();
    let bundle = bundle.to_str().expect("utf-8 path");
    let output = packctl(dir.path(), &["bundle", "build", bundle]);
    assert!(output.status.success(), "{}", describe(&output));
    let archive = dir.path().join("packd-default-1.0.0.bundle.tar.zst");
    let bytes = std::fs::read(&archive).expect("archive written to the cwd");
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let stdout = text(&output.stdout);
    assert!(stdout.contains(&sha256), "{stdout}");
    assert!(stdout.contains("packd-default") && stdout.contains("1.0.0"));
    // Packing is deterministic.
    let output = packctl(
        dir.path(),
        &["bundle", "build", bundle, "--out", "again.tar.zst"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        std::fs::read(dir.path().join("again.tar.zst")).expect("again"),
        bytes
    );
    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "build",
            bundle,
            "--no-compress",
            "--out",
            "plain.tar",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));

    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "sign",
            "packd-default-1.0.0.bundle.tar.zst",
            "--key",
            "keys/fleet.key",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let signature: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("packd-default-1.0.0.bundle.tar.zst.sig")).expect("sig"),
    )
    .expect("sig is JSON");
    assert_eq!(signature["sha256"], sha256);
    assert_eq!(signature["key_id"], key_id);
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let mut trusted = packd::bundle::signature::TrustedKeys::default();
    trusted.insert(public);
    packd::bundle::signature::verify(
        &trusted,
        &digest,
        signature["signature"].as_str().expect("signature"),
        &key_id,
    )
    .expect("the signature verifies with the library");

    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "inspect",
            "packd-default-1.0.0.bundle.tar.zst",
            "--trusted",
            "keys/fleet.pub",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    for expected in [
        "packd-default",
        "1.0.0",
        "2026-11-25T00:00:00Z",
        &sha256,
        "palettes",
        "layout",
        "signature   valid",
    ] {
        assert!(stdout.contains(expected), "{expected} missing:\n{stdout}");
    }
    // The plain tar inspects too (unsigned: reported, not an error).
    let output = packctl(dir.path(), &["bundle", "inspect", "plain.tar"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(text(&output.stdout).contains("signature   none"));

    // Trusted keys from the config when --trusted is not given.
    let config = write_config(
        dir.path(),
        "mqtt://127.0.0.1:1",
        &format!(
            "[bundles]\ntrusted_keys = [\"{}\"]\n",
            dir.path().join("keys/fleet.pub").display()
        ),
    );
    let output = packctl(
        dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "bundle",
            "inspect",
            "packd-default-1.0.0.bundle.tar.zst",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert!(text(&output.stdout).contains("trusted by bundles.trusted_keys"));

    // Another key: the signature is not trusted.
    let output = packctl(dir.path(), &["keygen", "--name", "other", "--dir", "keys"]);
    assert!(output.status.success(), "{}", describe(&output));
    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "inspect",
            "packd-default-1.0.0.bundle.tar.zst",
            "--trusted",
            "keys/other.pub",
        ],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("BAD"),
        "{}",
        describe(&output)
    );

    // A signature over other bytes.
    std::fs::copy(
        dir.path().join("packd-default-1.0.0.bundle.tar.zst.sig"),
        dir.path().join("plain.tar.sig"),
    )
    .expect("copy sig");
    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "inspect",
            "plain.tar",
            "--trusted",
            "keys/fleet.pub",
        ],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stdout).contains("not this archive"));

    // A corrupt archive.
    let mut corrupt = bytes.clone();
    corrupt.truncate(corrupt.len() / 2);
    std::fs::write(dir.path().join("corrupt.tar.zst"), corrupt).expect("write");
    let output = packctl(dir.path(), &["bundle", "inspect", "corrupt.tar.zst"]);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("corrupt.tar.zst"));
}

#[test]
fn build_refuses_a_directory_that_is_not_a_valid_bundle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("bundle");
    std::fs::create_dir(&copy).expect("mkdir");
    let output = Command::new("cp")
        .arg("-r")
        .arg(shipped_bundle().join("."))
        .arg(&copy)
        .output()
        .expect("cp");
    assert!(output.status.success());
    std::fs::write(copy.join("vocabulary.json"), b"{}").expect("tamper");
    let output = packctl(
        dir.path(),
        &["bundle", "build", "bundle", "--out", "x.tar.zst"],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("not a valid bundle") && stderr.contains("vocabulary.json"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.tar.zst").exists());
    // Nor may the archive land inside the directory it packs.
    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "build",
            shipped_bundle().to_str().expect("utf-8"),
            "--out",
            shipped_bundle().join("x.tar.zst").to_str().expect("utf-8"),
        ],
    );
    assert!(!output.status.success(), "{}", describe(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_and_list_fail_cleanly_when_no_appliance_answers() {
    let broker = support::Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let (archive, _) = signed_archive(dir.path());
    let config = write_config(dir.path(), &broker.url(), "");
    let config = config.to_str().expect("utf-8").to_string();
    let archive = archive.to_str().expect("utf-8").to_string();
    let run = |arguments: &[&str]| {
        let mut all = vec!["--config".to_string(), config.clone()];
        all.extend(arguments.iter().map(|a| a.to_string()));
        packctl_async(dir.path().to_path_buf(), all)
    };
    let output = run(&[
        "bundle",
        "push",
        &archive,
        "--device",
        "nobody-home",
        "--timeout-s",
        "1",
    ])
    .await;
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("no reply") && stderr.contains("nobody-home"),
        "{stderr}"
    );
    let output = run(&[
        "bundle",
        "push",
        &archive,
        "--pool",
        "empty",
        "--timeout-s",
        "1",
    ])
    .await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("no reply"));
    let output = run(&[
        "bundle",
        "list",
        "--device",
        "nobody-home",
        "--timeout-s",
        "1",
    ])
    .await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("no reply"));

    // An unsigned archive is refused before anything is sent, unless --unsigned.
    std::fs::remove_file(format!("{archive}.sig")).expect("remove sig");
    let output = run(&["bundle", "push", &archive, "--device", "nobody-home"]).await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("--unsigned"));

    // Neither --device nor --pool: a usage error.
    let output = run(&["bundle", "list"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));

    // No broker at all.
    let output = packctl_async(
        dir.path().to_path_buf(),
        vec![
            "--config".into(),
            write_config(dir.path(), "mqtt://127.0.0.1:1", "")
                .to_str()
                .expect("utf-8")
                .into(),
            "bundle".into(),
            "list".into(),
            "--device".into(),
            "x".into(),
        ],
    )
    .await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("cannot connect"));
}

// ---------------------------------------------------------------------------------------------
// A fake appliance: begin / chunk / commit / list held in memory.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct FakeState {
    /// transfer id -> (begin request, chunks held)
    transfers: BTreeMap<String, (Value, BTreeMap<u64, Vec<u8>>)>,
    /// Chunk messages received, over all transfers.
    chunks_received: u64,
    /// Chunk seqs to drop the first time they arrive (to force a missing_chunks commit).
    drop_once: BTreeSet<u64>,
    /// Installed bundles (name, version).
    installed: Vec<(String, String)>,
    active: Option<(String, String)>,
    commits: u64,
    /// Time taken to store each chunk (a slow appliance).
    chunk_delay: Duration,
}

struct Fake {
    state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }
}

async fn fake_appliance(url: &str, device: &str, pool: Option<&str>) -> Fake {
    let address = packd::transport::parse_url(url).expect("url");
    let mut options = MqttOptions::new(format!("fake-{device}"), address.host, address.port);
    options.set_max_packet_size(Some(16 * 1024 * 1024));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let state = Arc::new(Mutex::new(FakeState::default()));
    let mut filters = vec![format!("{PREFIX}/devices/{device}/bundles/#")];
    if let Some(pool) = pool {
        filters.push(format!("{PREFIX}/pools/{pool}/bundles/#"));
    }
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    let subscriber = client.clone();
    let driver_filters = filters.clone();
    let driver = async move {
        let mut subscribed_tx = Some(subscribed_tx);
        let mut subscriptions = 0;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    // A new (clean) session after a broker restart: subscribe again.
                    for filter in &driver_filters {
                        let _ = subscriber.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subscriptions += 1;
                    if subscriptions == driver_filters.len() {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let _ = sender.send(publish);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    };
    let handler_state = Arc::clone(&state);
    let device_name = device.to_string();
    let handler = async move {
        while let Some(publish) = receiver.recv().await {
            let topic = String::from_utf8_lossy(&publish.topic).into_owned();
            let Some((_, command)) = topic.split_once("/bundles/") else {
                continue;
            };
            if let Some(rest) = command.strip_prefix("chunk/") {
                let Some((transfer, seq)) = rest.split_once('/') else {
                    continue;
                };
                let Ok(seq) = seq.parse::<u64>() else {
                    continue;
                };
                let delay = handler_state.lock().expect("state").chunk_delay;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let mut state = handler_state.lock().expect("state");
                state.chunks_received += 1;
                if state.drop_once.remove(&seq) {
                    continue;
                }
                if let Some((_, chunks)) = state.transfers.get_mut(transfer) {
                    chunks.insert(seq, publish.payload.to_vec());
                }
                continue;
            }
            let Some(properties) = publish.properties.clone() else {
                continue;
            };
            let (Some(reply_topic), Some(correlation)) =
                (properties.response_topic, properties.correlation_data)
            else {
                continue;
            };
            let request: Value = serde_json::from_slice(&publish.payload).unwrap_or(Value::Null);
            let reply = {
                let mut state = handler_state.lock().expect("state");
                fake_reply(&mut state, &device_name, command, &request)
            };
            let properties = PublishProperties {
                correlation_data: Some(correlation),
                content_type: Some("application/json".into()),
                ..PublishProperties::default()
            };
            let _ = client
                .publish_with_properties(
                    reply_topic,
                    QoS::AtLeastOnce,
                    false,
                    serde_json::to_vec(&reply).expect("json"),
                    properties,
                )
                .await;
        }
    };
    let task = tokio::spawn(async move {
        tokio::join!(driver, handler);
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
        .await
        .expect("fake appliance subscribed in time")
        .expect("fake appliance driver");
    Fake { state, task }
}

fn fake_reply(state: &mut FakeState, device: &str, command: &str, request: &Value) -> Value {
    let error = |code: &str, message: &str| {
        json!({"v": 1, "device": device, "status": "error",
               "error": {"code": code, "message": message}})
    };
    match command {
        "begin" => {
            let Some(transfer) = request["transfer"].as_str() else {
                return error("bad_request", "transfer");
            };
            let (_, chunks) = state
                .transfers
                .entry(transfer.to_string())
                .or_insert_with(|| (request.clone(), BTreeMap::new()));
            json!({"v": 1, "device": device, "status": "ready", "transfer": transfer,
                   "have": ranges(chunks.keys().copied())})
        }
        "commit" => {
            state.commits += 1;
            let Some(transfer) = request["transfer"].as_str() else {
                return error("bad_request", "transfer");
            };
            let Some((begin, chunks)) = state.transfers.get(transfer) else {
                return error("bad_request", "no such transfer");
            };
            let size = begin["size"].as_u64().unwrap_or(0);
            let chunk_size = begin["chunk_size"].as_u64().unwrap_or(1);
            let count = size.div_ceil(chunk_size);
            let missing: Vec<u64> = (0..count).filter(|seq| !chunks.contains_key(seq)).collect();
            if !missing.is_empty() {
                let mut reply = error("missing_chunks", "chunks are missing");
                reply["missing"] = ranges(missing.into_iter());
                return reply;
            }
            let data: Vec<u8> = chunks.values().flatten().copied().collect();
            if hex::encode(Sha256::digest(&data)) != begin["sha256"].as_str().unwrap_or("") {
                return error("bad_digest", "digest mismatch");
            }
            let bundle = (
                begin["name"].as_str().unwrap_or("").to_string(),
                begin["version"].as_str().unwrap_or("").to_string(),
            );
            state.transfers.remove(transfer);
            state.installed.push(bundle.clone());
            let label = |b: &Option<(String, String)>| match b {
                Some((name, version)) => json!({"name": name, "version": version}),
                None => Value::Null,
            };
            let previous = label(&state.active);
            let activate = request["activate"].as_bool().unwrap_or(false);
            if activate {
                state.active = Some(bundle.clone());
            }
            json!({"v": 1, "device": device,
                   "status": if activate { "activated" } else { "installed" },
                   "bundle": label(&Some(bundle)), "previous": previous})
        }
        "list" => {
            let active = match &state.active {
                Some((name, version)) => json!({"name": name, "version": version}),
                None => Value::Null,
            };
            let installed: Vec<Value> = state
                .installed
                .iter()
                .map(|(name, version)| {
                    json!({"name": name, "version": version, "size": 2_600_000,
                           "installed_at": "2026-11-25T12:00:00Z", "targets": ["dla0"]})
                })
                .collect();
            json!({"v": 1, "device": device, "status": "ok", "active": active,
                   "installed": installed})
        }
        _ => error("bad_request", "unknown command"),
    }
}

fn ranges(seqs: impl Iterator<Item = u64>) -> Value {
    let mut out: Vec<[u64; 2]> = Vec::new();
    for seq in seqs {
        match out.last_mut() {
            Some(last) if last[1] == seq => last[1] = seq + 1,
            _ => out.push([seq, seq + 1]),
        }
    }
    json!(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_sends_missing_chunks_resends_on_missing_chunks_and_resumes() {
    let broker = support::Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let (archive, _) = signed_archive(dir.path());
    let size = std::fs::metadata(&archive).expect("archive").len();
    let chunk_size = 64 * 1024u64;
    let chunk_count = size.div_ceil(chunk_size);
    let config = write_config(dir.path(), &broker.url(), "");
    let fake = fake_appliance(&broker.url(), "orin-1", None).await;
    fake.lock().drop_once = BTreeSet::from([1, 3]);
    let push = |extra: &[&str]| {
        let mut all: Vec<String> = [
            "--config",
            config.to_str().expect("utf-8"),
            "bundle",
            "push",
            archive.to_str().expect("utf-8"),
            "--device",
            "orin-1",
            "--chunk-size",
            "65536",
            "--timeout-s",
            "10",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        all.extend(extra.iter().map(|a| a.to_string()));
        packctl_async(dir.path().to_path_buf(), all)
    };
    let output = push(&[]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("orin-1") && stdout.contains("activated"),
        "{stdout}"
    );
    assert!(
        text(&output.stderr).contains("MB/s"),
        "{}",
        describe(&output)
    );
    {
        let state = fake.lock();
        // Every chunk once, plus the two that were dropped and sent again.
        assert_eq!(state.chunks_received, chunk_count + 2);
        assert_eq!(state.commits, 2);
        assert_eq!(
            state.active,
            Some(("packd-default".to_string(), "1.0.0".to_string()))
        );
    }

    // Resuming: the appliance already holds part of a transfer; only the rest is sent.
    let bytes = std::fs::read(&archive).expect("archive");
    let sha256 = hex::encode(Sha256::digest(&bytes));
    {
        let mut state = fake.lock();
        state.chunks_received = 0;
        let mut held = BTreeMap::new();
        for seq in 0..chunk_count / 2 {
            let start = (seq * chunk_size) as usize;
            let end = (start + chunk_size as usize).min(bytes.len());
            held.insert(seq, bytes[start..end].to_vec());
        }
        let begin = json!({"transfer": &sha256[..32], "name": "packd-default",
                           "version": "1.0.0", "size": size, "sha256": sha256,
                           "chunk_size": chunk_size});
        state
            .transfers
            .insert(sha256[..32].to_string(), (begin, held));
    }
    let output = push(&["--no-activate", "--json"]).await;
    assert!(output.status.success(), "{}", describe(&output));
    let reply: Value = serde_json::from_slice(&output.stdout).expect("--json prints the reply");
    assert_eq!(reply["status"], "installed", "{reply}");
    assert_eq!(reply["bundle"]["name"], "packd-default");
    assert_eq!(fake.lock().chunks_received, chunk_count - chunk_count / 2);

    // list, as a table and as JSON.
    let config = config.to_str().expect("utf-8").to_string();
    let output = packctl_async(
        dir.path().to_path_buf(),
        ["--config", &config, "bundle", "list", "--device", "orin-1"]
            .iter()
            .map(|a| a.to_string())
            .collect(),
    )
    .await;
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("active packd-default 1.0.0") && stdout.contains("dla0"),
        "{stdout}"
    );
    let output = packctl_async(
        dir.path().to_path_buf(),
        [
            "--config", &config, "bundle", "list", "--device", "orin-1", "--json",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect(),
    )
    .await;
    assert!(output.status.success(), "{}", describe(&output));
    let reply: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(reply["installed"].as_array().map(Vec::len), Some(2));

    // An error reply makes the command fail and is shown.
    let output = packctl_async(
        dir.path().to_path_buf(),
        [
            "--config", &config, "bundle", "rollback", "--device", "orin-1",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect(),
    )
    .await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stdout).contains("bad_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_to_a_pool_reaches_every_appliance_and_reports_each() {
    let broker = support::Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let (archive, _) = signed_archive(dir.path());
    let size = std::fs::metadata(&archive).expect("archive").len();
    let chunk_count = size.div_ceil(64 * 1024);
    let config = write_config(dir.path(), &broker.url(), "");
    let one = fake_appliance(&broker.url(), "orin-1", Some("store-9")).await;
    let two = fake_appliance(&broker.url(), "orin-2", Some("store-9")).await;
    two.lock().drop_once = BTreeSet::from([2]);
    let arguments: Vec<String> = [
        "--config",
        config.to_str().expect("utf-8"),
        "bundle",
        "push",
        archive.to_str().expect("utf-8"),
        "--pool",
        "store-9",
        "--expect",
        "2",
        "--chunk-size",
        "65536",
        "--timeout-s",
        "10",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let output = packctl_async(dir.path().to_path_buf(), arguments.clone()).await;
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("DEVICE"), "{stdout}");
    for device in ["orin-1", "orin-2"] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(device))
            .unwrap_or_else(|| panic!("no row for {device}:\n{stdout}"));
        assert!(row.contains("activated"), "{stdout}");
    }
    // The pool got every chunk once; orin-2's dropped chunk went again to it alone.
    assert_eq!(one.lock().chunks_received, chunk_count);
    assert_eq!(two.lock().chunks_received, chunk_count + 1);

    // Waiting for three appliances when two answer is a failure, reported as such.
    let mut arguments = arguments;
    let expect = arguments
        .iter()
        .position(|a| a == "--expect")
        .expect("--expect");
    arguments[expect + 1] = "3".into();
    let timeout = arguments
        .iter()
        .position(|a| a == "--timeout-s")
        .expect("--timeout-s");
    arguments[timeout + 1] = "2".into();
    let output = packctl_async(dir.path().to_path_buf(), arguments).await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("expected 3 appliances"),
        "{}",
        describe(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_survives_a_broker_restart_mid_transfer() {
    let mut broker = support::Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let (archive, _) = signed_archive(dir.path());
    let size = std::fs::metadata(&archive).expect("archive").len();
    let chunk_count = size.div_ceil(4096);
    let config = write_config(dir.path(), &broker.url(), "");
    let fake = fake_appliance(&broker.url(), "orin-1", None).await;
    // A slow appliance: the broker holds most chunks for it when it restarts, and loses them.
    fake.lock().chunk_delay = Duration::from_millis(5);
    let arguments: Vec<String> = [
        "--config",
        config.to_str().expect("utf-8"),
        "bundle",
        "push",
        archive.to_str().expect("utf-8"),
        "--device",
        "orin-1",
        "--chunk-size",
        "4096",
        "--timeout-s",
        "20",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let push = tokio::spawn(packctl_async(dir.path().to_path_buf(), arguments));
    // Restart the broker once a few chunks have arrived.
    let state = Arc::clone(&fake.state);
    let restarted = tokio::task::spawn_blocking(move || {
        let started = support::wait_until(Duration::from_secs(20), || {
            state.lock().expect("state").chunks_received >= 20
        });
        if started {
            broker.restart();
        }
        (started, broker)
    })
    .await
    .expect("restart task");
    assert!(restarted.0, "the push never started sending chunks");
    let output = push.await.expect("push task");
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("reconnecting"), "{stderr}");
    let state = fake.lock();
    assert_eq!(
        state.active,
        Some(("packd-default".to_string(), "1.0.0".to_string()))
    );
    assert!(state.chunks_received >= chunk_count);
    drop(restarted);
}
