//! Bundle management over MQTT against a real mosquitto and packd (in-process where a test needs
//! no process of its own; the crash, restart and hold tests start the binary): push,
//! activate, list, rollback, remove, resume, pools, hot swap under load, every refusal, boot
//! fallback, and crash safety at every durable step of an install.

use crate::fixtures;
use crate::fixtures::{SHIPPED_LABEL, SHIPPED_VERSION};
use crate::support;

use std::fs;
use std::time::Duration;

use fixtures::bundles::*;
use fixtures::*;
use packd_wire::bundle::BundleErrorCode;
use serde_json::json;
use support::{unique_id, Broker};

fn trusting(public: &str) -> PackdOptions {
    PackdOptions {
        env: vec![("PACKD_BUNDLES__TRUSTED_KEYS".into(), public.into())],
        ..PackdOptions::default()
    }
}

fn with_env(mut options: PackdOptions, key: &str, value: &str) -> PackdOptions {
    options.env.push((key.into(), value.into()));
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_activate_list_rollback_and_remove() {
    let (key, public) = signing_key();
    let (_broker, packd, mut client) = broker_and_packd(trusting(&public), "online").await;
    let variant = bundle_variant("1.1.0", |_| {}, true);
    let archive = pack(variant.path());
    let (ready, committed) = push(
        &mut client,
        &packd,
        &archive,
        &Push {
            key: Some(&key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["have"], json!([]));
    assert_eq!(ready["device"], packd.device.as_str());
    assert_eq!(committed["status"], "activated", "{committed}");
    assert_eq!(
        committed["bundle"],
        json!({"name": "packd-default", "version": "1.1.0"})
    );
    assert_eq!(
        committed["previous"],
        json!({"name": "packd-default", "version": SHIPPED_VERSION})
    );

    // New briefs use the new bundle, and the retained state says so.
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        "1.1.0"
    );
    let state = client
        .wait_for_state_where(&packd, |state| state["bundle"]["version"] == "1.1.0")
        .await;
    assert_eq!(state["status"], "online");

    let listed = command(&mut client, &packd, "list", json!({})).await;
    assert_eq!(listed["status"], "ok");
    assert_eq!(
        listed["active"],
        json!({"name": "packd-default", "version": "1.1.0"})
    );
    let versions: Vec<&str> = listed["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["version"].as_str().unwrap())
        .collect();
    assert!(
        versions.contains(&SHIPPED_VERSION) && versions.contains(&"1.1.0"),
        "{listed}"
    );
    let entry = listed["installed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["version"] == "1.1.0")
        .unwrap();
    assert!(entry["size"].as_u64().unwrap() > 1000);
    assert_eq!(entry["targets"], json!(["cpu"]));
    assert!(entry["installed_at"].as_str().unwrap().ends_with('Z'));

    let rolled = command(&mut client, &packd, "rollback", json!({})).await;
    assert_eq!(rolled["status"], "activated", "{rolled}");
    assert_eq!(rolled["bundle"]["version"], SHIPPED_VERSION);
    assert_eq!(rolled["previous"]["version"], "1.1.0");
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );

    let refused = command(
        &mut client,
        &packd,
        "remove",
        json!({"name": "packd-default", "version": SHIPPED_VERSION}),
    )
    .await;
    assert_eq!(
        code(&refused),
        Some(BundleErrorCode::BadRequest),
        "the active bundle cannot be removed: {refused}"
    );
    let removed = command(
        &mut client,
        &packd,
        "remove",
        json!({"name": "packd-default", "version": "1.1.0"}),
    )
    .await;
    assert_eq!(removed["status"], "removed", "{removed}");
    assert!(!installed_path(&packd, "packd-default", "1.1.0").exists());

    let activated = command(
        &mut client,
        &packd,
        "activate",
        json!({"name": "packd-default", "version": "1.1.0"}),
    )
    .await;
    assert_eq!(
        code(&activated),
        Some(BundleErrorCode::BadRequest),
        "a removed bundle cannot be activated: {activated}"
    );
    assert!(
        packd.log().contains("PACKD_EVENT=activated"),
        "activations are logged with structured fields"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_are_not_plain_folder_names_are_refused() {
    let (_key, public) = signing_key();
    let (_broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    for (name, version) in [
        ("packd-default", "1.0.0/../../../../tmp/x"),
        ("..", "1"),
        ("a/b", "1"),
        ("", "1"),
    ] {
        for command_name in ["activate", "remove"] {
            let reply = command(
                &mut client,
                &packd,
                command_name,
                json!({"name": name, "version": version}),
            )
            .await;
            assert_eq!(
                code(&reply),
                Some(BundleErrorCode::BadRequest),
                "{command_name} {name}@{version}: {reply}"
            );
        }
    }
    let malformed = command(&mut client, &packd, "activate", json!({"name": 3})).await;
    assert_eq!(code(&malformed), Some(BundleErrorCode::BadRequest));
    let unknown = command(&mut client, &packd, "format-disk", json!({})).await;
    assert_eq!(code(&unknown), Some(BundleErrorCode::BadRequest));
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_but_not_activated_until_asked() {
    let (key, public) = signing_key();
    let (_broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    let archive = pack(slim_variant("2.0.0").path());
    let (_, committed) = push(
        &mut client,
        &packd,
        &archive,
        &Push {
            key: Some(&key),
            activate: false,
            ..Push::default()
        },
    )
    .await;
    assert_eq!(committed["status"], "installed", "{committed}");
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );
    let activated = command(
        &mut client,
        &packd,
        "activate",
        json!({"name": "packd-default", "version": "2.0.0"}),
    )
    .await;
    assert_eq!(activated["status"], "activated", "{activated}");
    assert_eq!(activated["previous"]["version"], SHIPPED_VERSION);
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        "2.0.0"
    );
}

/// Briefs stay in flight (several at once, from another client) from before the push until
/// after its activation: the replies switch from the old bundle to the new one and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn briefs_keep_being_answered_during_activation() {
    const IN_FLIGHT: usize = 4;
    // Bounds the load should the swap never show in replies; far more rounds than a push takes.
    const MAX_ROUNDS: usize = 2000;
    let (key, public) = signing_key();
    let (broker, packd, mut client) = broker_and_packd(trusting(&public), "online").await;
    let archive = pack(slim_variant("1.2.0").path());
    let mut load = V5Client::connect(&broker).await;
    let topic = packd.brief_topic();
    let pushed = std::sync::atomic::AtomicBool::new(false);
    let push_task = async {
        let (_, committed) = push(
            &mut client,
            &packd,
            &archive,
            &Push {
                key: Some(&key),
                ..Push::default()
            },
        )
        .await;
        pushed.store(true, std::sync::atomic::Ordering::SeqCst);
        committed
    };
    let load_task = async {
        let mut rounds: Vec<Vec<String>> = Vec::new();
        let mut failures = Vec::new();
        for round in 0..MAX_ROUNDS {
            let pushed_before_round = pushed.load(std::sync::atomic::Ordering::SeqCst);
            let correlations: Vec<String> = (0..IN_FLIGHT)
                .map(|slot| format!("load-{round}-{slot}"))
                .collect();
            for correlation in &correlations {
                load.send(
                    &topic,
                    r#"{"product":"beverage","mood":["fresh"]}"#,
                    correlation,
                )
                .await;
            }
            let mut round_versions = Vec::new();
            for correlation in &correlations {
                let reply = load.reply_for(correlation).await;
                if reply["status"] != "ok" {
                    failures.push(reply);
                    continue;
                }
                round_versions.push(reply["bundle"]["version"].as_str().map(str::to_string));
            }
            let all_new = round_versions
                .iter()
                .all(|version| version.as_deref() == Some("1.2.0"));
            rounds.push(round_versions.into_iter().flatten().collect());
            // Sent after the activation reply, so these can only be on the new bundle.
            if pushed_before_round && all_new {
                break;
            }
        }
        (rounds, failures)
    };
    let (committed, (rounds, failures)) = tokio::join!(push_task, load_task);
    let versions: Vec<&str> = rounds.iter().flatten().map(String::as_str).collect();
    assert_eq!(committed["status"], "activated", "{committed}");
    assert!(
        failures.is_empty(),
        "{} briefs failed during activation: {failures:?}",
        failures.len()
    );
    assert_eq!(
        versions.first().copied(),
        Some(SHIPPED_VERSION),
        "the load started before the swap"
    );
    assert_eq!(
        versions.last().copied(),
        Some("1.2.0"),
        "the load ran past the swap"
    );
    // Within one round the workers may pick briefs up in either order, but a round sent after
    // any reply on the new bundle must be on it entirely.
    let first_new = rounds
        .iter()
        .position(|round| round.iter().any(|version| version == "1.2.0"));
    assert!(
        first_new.is_some_and(|first| rounds[first + 1..]
            .iter()
            .flatten()
            .all(|version| version == "1.2.0")),
        "a brief went back to the old bundle after the swap: {rounds:?}"
    );
}

/// A brief whose inference is running when the swap happens finishes on the bundle it started
/// with. The brief is held inside the backend (`TEST_PACKD_FAULT=hold-while=FILE`) until the
/// activation has been answered, so the swap happens during it whatever this machine's speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_running_across_the_swap_finishes_on_the_old_bundle() {
    let (key, public) = signing_key();
    let hold_dir = tempfile::tempdir().unwrap();
    let hold = hold_dir.path().join("hold");
    let options = with_env(
        trusting(&public),
        "TEST_PACKD_FAULT",
        &format!("hold-while={}", hold.display()),
    );
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    let archive = pack(slim_variant("1.2.1").path());

    fs::write(&hold, b"").unwrap();
    client
        .send(&packd.brief_topic(), r#"{"product":"tea"}"#, "held")
        .await;
    assert!(
        support::wait_until(REPLY_DEADLINE, || packd.log().contains("held while")),
        "the brief never reached the backend; log:\n{}",
        packd.log()
    );
    let (_, committed) = push(
        &mut client,
        &packd,
        &archive,
        &Push {
            key: Some(&key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(committed["status"], "activated", "{committed}");
    fs::remove_file(&hold).unwrap();

    let held = client.reply_for("held").await;
    assert_eq!(held["status"], "ok", "{held}");
    assert_eq!(held["bundle"]["version"], SHIPPED_VERSION, "{held}");
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        "1.2.1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_resumes_after_the_sender_disconnects() {
    let (key, public) = signing_key();
    let (broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    let archive = pack(slim_variant("1.3.0").path());
    let plan = Push {
        key: Some(&key),
        chunk_size: 64 * 1024,
        ..Push::default()
    };
    let chunks = chunk_count(&archive, &plan);
    assert!(chunks >= 8, "{chunks} chunks");
    let half = chunks / 2;
    assert_eq!(
        command(&mut client, &packd, "begin", begin_payload(&archive, &plan)).await["status"],
        "ready"
    );
    send_chunks(&client, &packd, &archive, &plan, 0..half).await;
    // Begin again on the same connection: packd has handled the chunks once it answers.
    let midway = command(&mut client, &packd, "begin", begin_payload(&archive, &plan)).await;
    assert_eq!(midway["have"], json!([[0, half]]), "{midway}");
    drop(client);

    let mut resumed = V5Client::connect(&broker).await;
    let ready = command(
        &mut resumed,
        &packd,
        "begin",
        begin_payload(&archive, &plan),
    )
    .await;
    assert_eq!(
        ready["have"],
        json!([[0, half]]),
        "the held chunks survive the sender: {ready}"
    );
    send_chunks(&resumed, &packd, &archive, &plan, half..chunks).await;
    let committed = command(
        &mut resumed,
        &packd,
        "commit",
        json!({"transfer": plan.transfer, "activate": true}),
    )
    .await;
    assert_eq!(committed["status"], "activated", "{committed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_resumes_after_packd_restarts() {
    let (key, public) = signing_key();
    let (_broker, mut packd, mut client) = broker_and_packd(trusting(&public), "online").await;
    let archive = pack(slim_variant("1.4.0").path());
    let plan = Push {
        key: Some(&key),
        chunk_size: 64 * 1024,
        ..Push::default()
    };
    let chunks = chunk_count(&archive, &plan);
    let half = chunks / 2;
    command(&mut client, &packd, "begin", begin_payload(&archive, &plan)).await;
    send_chunks(&client, &packd, &archive, &plan, 0..half).await;
    let midway = command(&mut client, &packd, "begin", begin_payload(&archive, &plan)).await;
    assert_eq!(midway["have"], json!([[0, half]]));

    packd.signal("KILL");
    packd.wait_exit(REPLY_DEADLINE).expect("killed");
    packd.spawn();
    client.wait_for_state(&packd, "online").await;

    let ready = command(&mut client, &packd, "begin", begin_payload(&archive, &plan)).await;
    assert_eq!(
        ready["have"],
        json!([[0, half]]),
        "chunks survive a restart of packd: {ready}"
    );
    send_chunks(&client, &packd, &archive, &plan, half..chunks).await;
    let committed = command(
        &mut client,
        &packd,
        "commit",
        json!({"transfer": plan.transfer, "activate": true}),
    )
    .await;
    assert_eq!(committed["status"], "activated", "{committed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_push_reaches_every_appliance_of_the_pool() {
    let (key, public) = signing_key();
    let broker = Broker::start();
    let pool = unique_id("store");
    let options = PackdOptions {
        pools: vec![pool.clone()],
        ..trusting(&public)
    };
    let first = Packd::start(&broker, options.clone());
    let second = Packd::start(&broker, options);
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&first, "online").await;
    client.wait_for_state(&second, "online").await;

    let archive = pack(slim_variant("1.5.0").path());
    let plan = Push {
        key: Some(&key),
        ..Push::default()
    };
    let pool_topic = |command: &str| format!("{PREFIX}/pools/{pool}/bundles/{command}");
    client
        .send(
            &pool_topic("begin"),
            begin_payload(&archive, &plan).to_string(),
            "pool-begin",
        )
        .await;
    let mut ready_devices = vec![client.reply_for("pool-begin").await["device"]
        .as_str()
        .unwrap()
        .to_string()];
    ready_devices.push(
        client.reply_for("pool-begin").await["device"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    ready_devices.sort();
    let mut expected = vec![first.device.clone(), second.device.clone()];
    expected.sort();
    assert_eq!(
        ready_devices, expected,
        "each appliance of the pool answers for itself"
    );
    for seq in 0..chunk_count(&archive, &plan) {
        let start = seq as usize * plan.chunk_size;
        let end = (start + plan.chunk_size).min(archive.bytes.len());
        client
            .send_plain(
                &pool_topic(&format!("chunk/{}/{seq}", plan.transfer)),
                archive.bytes[start..end].to_vec(),
            )
            .await;
    }
    client
        .send(
            &pool_topic("commit"),
            json!({"transfer": plan.transfer}).to_string(),
            "pool-commit",
        )
        .await;
    for _ in 0..2 {
        let committed = client.reply_for("pool-commit").await;
        assert_eq!(committed["status"], "activated", "{committed}");
    }
    assert_eq!(
        client.ask(&first, r#"{"product":"tea"}"#).await["bundle"]["version"],
        "1.5.0"
    );
    assert_eq!(
        client.ask(&second, r#"{"product":"tea"}"#).await["bundle"]["version"],
        "1.5.0"
    );
}

/// `bundles.keep` counts every installed bundle, the active, previous and last good ones among
/// them: once an activation leaves more installed, the oldest others are removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activations_prune_down_to_bundles_keep_installed_bundles() {
    let (key, public) = signing_key();
    let options = with_env(trusting(&public), "PACKD_BUNDLES__KEEP", "3");
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    for version in ["1.1.0", "1.2.0", "1.3.0"] {
        let (_, committed) = push(
            &mut client,
            &packd,
            &pack(slim_variant(version).path()),
            &Push {
                key: Some(&key),
                ..Push::default()
            },
        )
        .await;
        assert_eq!(committed["status"], "activated", "{committed}");
    }
    let listed = command(&mut client, &packd, "list", json!({})).await;
    let mut versions: Vec<&str> = listed["installed"]
        .as_array()
        .expect("installed")
        .iter()
        .filter_map(|bundle| bundle["version"].as_str())
        .collect();
    versions.sort();
    // 1.3.0 is active and last good, 1.2.0 previous; 1.1.0 is the newest of the others.
    assert_eq!(versions, ["1.1.0", "1.2.0", "1.3.0"], "{listed}");
    assert!(!installed_path(&packd, "packd-default", SHIPPED_VERSION).exists());
}

/// Pushes `archive` and returns (begin reply, commit reply) for refusal tests.
async fn refused_push(
    options: PackdOptions,
    archive: &Archive,
    plan: &Push<'_>,
) -> (serde_json::Value, serde_json::Value, Packd) {
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    let (ready, committed) = push(&mut client, &packd, archive, plan).await;
    // Whatever was refused, the old bundle still serves.
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );
    (ready, committed, packd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_bundle_is_refused_unless_allowed() {
    let (_key, public) = signing_key();
    let archive = pack(slim_variant("3.0.0").path());
    let (ready, _, _) = refused_push(trusting(&public), &archive, &Push::default()).await;
    assert_eq!(code(&ready), Some(BundleErrorCode::BadSignature), "{ready}");

    let allowed = with_env(trusting(&public), "PACKD_BUNDLES__ALLOW_UNSIGNED", "true");
    let (_broker, packd, mut client) = broker_and_packd(allowed, "online").await;
    let (_, committed) = push(&mut client, &packd, &archive, &Push::default()).await;
    assert_eq!(committed["status"], "activated", "{committed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_signed_with_an_untrusted_key_is_refused() {
    let (_trusted, public) = signing_key();
    let (stranger, _) = signing_key();
    let archive = pack(slim_variant("3.0.1").path());
    let (ready, _, _) = refused_push(
        trusting(&public),
        &archive,
        &Push {
            key: Some(&stranger),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(code(&ready), Some(BundleErrorCode::UnknownKey), "{ready}");
}

/// A signature that does not verify under the trusted key it names (made by another key, as a
/// forger without the fleet's private key would) is `bad_signature`, not `unknown_key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_under_a_trusted_key_id_is_bad_signature() {
    let (trusted, public) = signing_key();
    let (forger, _) = signing_key();
    let archive = pack(slim_variant("3.0.1").path());
    let plan = Push {
        key: Some(&forger),
        ..Push::default()
    };
    let mut begin = begin_payload(&archive, &plan);
    begin["key_id"] = json!(key_id(&trusted));
    let (_broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    let ready = command(&mut client, &packd, "begin", begin).await;
    assert_eq!(code(&ready), Some(BundleErrorCode::BadSignature), "{ready}");
    // Nothing was accepted: a commit of that transfer finds no transfer.
    let committed = command(
        &mut client,
        &packd,
        "commit",
        json!({"transfer": plan.transfer}),
    )
    .await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::BadRequest),
        "{committed}"
    );
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_byte_in_the_archive_is_bad_digest() {
    let (key, public) = signing_key();
    let mut archive = pack(slim_variant("3.0.2").path());
    let plan = Push {
        key: Some(&key),
        ..Push::default()
    };
    // Sign the original, deliver a copy with one byte flipped.
    let begin = begin_payload(&archive, &plan);
    let middle = archive.bytes.len() / 2;
    archive.bytes[middle] ^= 0x01;
    let (_broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    assert_eq!(
        command(&mut client, &packd, "begin", begin).await["status"],
        "ready"
    );
    send_chunks(
        &client,
        &packd,
        &archive,
        &plan,
        0..chunk_count(&archive, &plan),
    )
    .await;
    let committed = command(
        &mut client,
        &packd,
        "commit",
        json!({"transfer": plan.transfer}),
    )
    .await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::BadDigest),
        "{committed}"
    );
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );

    // packctl names a transfer after its archive, so a retry reuses the id: the bad bytes must
    // be gone, or the retry would resume into them and fail the same way forever.
    archive.bytes[middle] ^= 0x01;
    let (ready, committed) = push(&mut client, &packd, &archive, &plan).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        ready["have"],
        json!([]),
        "the refused transfer was resumed: {ready}"
    );
    assert_eq!(committed["status"], "activated", "{committed}");
    assert_eq!(committed["bundle"]["version"], "3.0.2", "{committed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_file_inside_a_correctly_signed_archive_is_invalid() {
    let (key, public) = signing_key();
    // The file changes after the manifest was hashed; the outer digest and signature are valid.
    let variant = slim_variant("3.0.3");
    let vocabulary = variant.path().join("vocabulary.json");
    let text = fs::read_to_string(&vocabulary)
        .unwrap()
        .replacen("beverage", "beverages", 1);
    fs::write(&vocabulary, text).unwrap();
    let archive = pack(variant.path());
    let (_, committed, _) = refused_push(
        trusting(&public),
        &archive,
        &Push {
            key: Some(&key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::InvalidBundle),
        "{committed}"
    );
    assert_eq!(committed["error"]["check"], "file_hash", "{committed}");
    assert!(
        committed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("vocabulary.json"),
        "{committed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_lying_about_a_hash_is_invalid() {
    let (key, public) = signing_key();
    let variant = slim_variant("3.0.4");
    let mut manifest = read_manifest(variant.path());
    let entry = manifest
        .files
        .iter_mut()
        .find(|file| file.path == "model.onnx")
        .unwrap();
    entry.sha256 = "0".repeat(64);
    write_manifest(variant.path(), &manifest);
    let archive = pack(variant.path());
    let (_, committed, _) = refused_push(
        trusting(&public),
        &archive,
        &Push {
            key: Some(&key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::InvalidBundle),
        "{committed}"
    );
    assert_eq!(committed["error"]["check"], "file_hash", "{committed}");
    assert!(
        committed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model.onnx"),
        "{committed}"
    );
}

/// `invalid_bundle` covers several checks; `error.check` says which one failed: a file the
/// manifest does not list is the manifest's fault, bytes that are no archive at all the archive's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bundles_name_the_check_that_failed() {
    let (key, public) = signing_key();
    let plan = || Push {
        key: Some(&key),
        ..Push::default()
    };
    let variant = slim_variant("3.0.5");
    let mut manifest = read_manifest(variant.path());
    manifest.files.retain(|file| file.path != "vocabulary.json");
    write_manifest(variant.path(), &manifest);
    let (_broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    let (_, committed) = push(&mut client, &packd, &pack(variant.path()), &plan()).await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::InvalidBundle),
        "{committed}"
    );
    assert_eq!(committed["error"]["check"], "manifest", "{committed}");

    let garbage = vec![0x5Au8; 10_000];
    let not_an_archive = Archive {
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&garbage)),
        bytes: garbage,
        name: "packd-default".into(),
        version: "3.0.6".into(),
    };
    let (_, committed) = push(&mut client, &packd, &not_an_archive, &plan()).await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::InvalidBundle),
        "{committed}"
    );
    assert_eq!(committed["error"]["check"], "archive", "{committed}");

    // Other codes carry no check.
    let refused = command(
        &mut client,
        &packd,
        "activate",
        json!({"name": "packd-default", "version": "9.9.9"}),
    )
    .await;
    assert_eq!(
        code(&refused),
        Some(BundleErrorCode::BadRequest),
        "{refused}"
    );
    assert!(refused["error"].get("check").is_none(), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_chunk_is_reported_and_can_be_sent_later() {
    let (key, public) = signing_key();
    let (_broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    let archive = pack(slim_variant("3.0.5").path());
    let plan = Push {
        key: Some(&key),
        chunk_size: 64 * 1024,
        skip: vec![2, 3],
        ..Push::default()
    };
    let (_, committed) = push(&mut client, &packd, &archive, &plan).await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::MissingChunks),
        "{committed}"
    );
    assert_eq!(committed["missing"], json!([[2, 4]]));
    let complete = Push {
        skip: vec![],
        transfer: plan.transfer.clone(),
        ..plan
    };
    send_chunks(&client, &packd, &archive, &complete, 2..4).await;
    let committed = command(
        &mut client,
        &packd,
        "commit",
        json!({"transfer": complete.transfer}),
    )
    .await;
    assert_eq!(committed["status"], "activated", "{committed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_bundle_is_refused_at_begin() {
    let (key, public) = signing_key();
    // Incompressible padding, so the archive is over 1 MiB even after zstd.
    let variant = bundle_variant(
        "3.0.6",
        |dir| {
            let mut noise = vec![0u8; 1536 * 1024];
            getrandom::getrandom(&mut noise).unwrap();
            fs::write(dir.join("padding.bin"), noise).unwrap();
        },
        true,
    );
    let archive = pack(variant.path());
    assert!(archive.bytes.len() > 1024 * 1024);
    let options = with_env(trusting(&public), "PACKD_BUNDLES__MAX_BUNDLE_MIB", "1");
    let (ready, _, _) = refused_push(
        options,
        &archive,
        &Push {
            key: Some(&key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(code(&ready), Some(BundleErrorCode::TooLarge), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_no_space() {
    let (key, public) = signing_key();
    let mount = tempfile::Builder::new()
        .prefix("packd-tmpfs-")
        .tempdir()
        .unwrap();
    // Room for the seeded shipped bundle (30.7 MB) and too little for any push after it.
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=33m", "tmpfs"])
        .arg(mount.path())
        .status();
    if !matches!(mounted, Ok(status) if status.success()) {
        assert!(
            !support::in_ci(),
            "CI runs as root and must be able to mount a tmpfs"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mount.path().to_path_buf());
    let options = with_env(
        trusting(&public),
        "PACKD_BUNDLES__DIR",
        mount.path().to_str().unwrap(),
    );
    let archive = pack(slim_variant("3.0.7").path());
    let (ready, _, _) = refused_push(
        options,
        &archive,
        &Push {
            key: Some(&key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(code(&ready), Some(BundleErrorCode::NoSpace), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_test_mismatch_is_refused() {
    let (key, public) = signing_key();
    let variant = bundle_variant(
        "3.0.8",
        |dir| {
            let path = dir.join("selftest/vectors.json");
            let mut vectors: serde_json::Value =
                serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
            let first = &mut vectors["cases"][0]["expected"]["fp32"]["styles"][0];
            *first = json!(first.as_f64().unwrap() + 0.5);
            fs::write(&path, serde_json::to_vec(&vectors).unwrap()).unwrap();
        },
        true,
    );
    let archive = pack(variant.path());
    let (_broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    let plan = Push {
        key: Some(&key),
        ..Push::default()
    };
    let (_, committed) = push(&mut client, &packd, &archive, &plan).await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::SelftestFailed),
        "{committed}"
    );

    // The refused bundle never entered the store: not listed, nothing of it on disk, and the
    // old bundle still active and serving.
    let listed = command(&mut client, &packd, "list", json!({})).await;
    assert_eq!(listed["status"], "ok", "{listed}");
    assert_eq!(
        listed["active"],
        json!({"name": "packd-default", "version": SHIPPED_VERSION}),
        "{listed}"
    );
    let versions: Vec<&str> = listed["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bundle| bundle["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, [SHIPPED_VERSION], "{listed}");
    assert!(
        !installed_path(&packd, "packd-default", "3.0.8").exists(),
        "the refused bundle's folder is not in the store"
    );
    let leftovers: Vec<String> = fs::read_dir(packd.store())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("3.0.8") || name.starts_with(".staging-"))
        .collect();
    assert!(leftovers.is_empty(), "left in the store: {leftovers:?}");
    assert!(
        !packd
            .store()
            .join(".transfers")
            .join(&plan.transfer)
            .exists(),
        "the received archive is discarded"
    );
    assert_eq!(
        fs::read_to_string(packd.store().join("active"))
            .unwrap()
            .trim(),
        SHIPPED_LABEL
    );
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );
    let state = client.wait_for_state(&packd, "online").await;
    assert_eq!(state["bundle"]["version"], SHIPPED_VERSION, "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_for_another_tensorrt_version_is_incompatible() {
    let (key, public) = signing_key();
    let variant = bundle_variant(
        "3.0.9",
        |dir| {
            fs::create_dir_all(dir.join("engines")).unwrap();
            fs::write(dir.join("engines/model.gpu.plan"), b"not really a plan").unwrap();
            let mut manifest = read_manifest(dir);
            manifest.engines.push(packd::bundle::manifest::EngineEntry {
                target: "gpu".into(),
                precision: "int8".into(),
                file: "engines/model.gpu.plan".into(),
                sha256: packd::bundle::sha256_file(&dir.join("engines/model.gpu.plan")).unwrap(),
                tensorrt: "11.4.1".into(),
                cuda: "13.0".into(),
                compute_capability: "8.7".into(),
                dla_cores: Some(2),
            });
            write_manifest(dir, &manifest);
        },
        true,
    );
    let archive = pack(variant.path());
    let options = on_tensorrt_10_3(trusting(&public));
    let (_, committed, _) = refused_push(
        options,
        &archive,
        &Push {
            key: Some(&key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::Incompatible),
        "{committed}"
    );
    assert!(
        committed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("11.4.1"),
        "{committed}"
    );
}

/// Pushes `variant` signed with `key` and activated, then stops packd cleanly, so that a test can
/// change what is on its disk before the next boot.
async fn activate_then_stop(
    packd: &mut Packd,
    client: &mut V5Client,
    key: &ed25519_dalek::SigningKey,
    variant: &std::path::Path,
) {
    let (_, committed) = push(
        client,
        packd,
        &pack(variant),
        &Push {
            key: Some(key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(committed["status"], "activated", "{committed}");
    packd.signal("TERM");
    packd.wait_exit(REPLY_DEADLINE).expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_that_fails_at_boot_is_set_aside_and_the_last_good_one_serves() {
    let (key, public) = signing_key();
    let (_broker, mut packd, mut client) = broker_and_packd(trusting(&public), "online").await;
    let variant = slim_variant("4.0.0");
    activate_then_stop(&mut packd, &mut client, &key, variant.path()).await;

    // The disk rots while packd is down.
    let model = installed_path(&packd, "packd-default", "4.0.0").join("model.onnx");
    let mut bytes = fs::read(&model).unwrap();
    bytes[100] ^= 0xFF;
    fs::write(&model, bytes).unwrap();

    packd.spawn();
    let state = client.wait_for_state(&packd, "degraded").await;
    assert!(
        state["reason"].as_str().unwrap().contains("4.0.0"),
        "{state}"
    );
    assert_eq!(state["bundle"]["version"], SHIPPED_VERSION, "{state}");
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );
    assert!(
        !installed_path(&packd, "packd-default", "4.0.0").exists(),
        "the bad bundle is set aside"
    );
    assert!(
        fs::read_dir(packd.store().join(".rejected"))
            .unwrap()
            .count()
            == 1
    );
}

/// An installed bundle whose files all match its manifest but whose model no longer passes its
/// self-test at boot (as after a backend update that changes the numbers) is set aside like a
/// corrupt one, and the last good bundle serves with `degraded` naming the self-test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_that_fails_its_self_test_at_boot_is_set_aside() {
    let (key, public) = signing_key();
    let (_broker, mut packd, mut client) = broker_and_packd(trusting(&public), "online").await;
    let variant = slim_variant("4.0.1");
    activate_then_stop(&mut packd, &mut client, &key, variant.path()).await;

    // Expected outputs the model cannot meet, with the manifest rehashed so that every file
    // still matches it: only the self-test can catch this.
    let installed = installed_path(&packd, "packd-default", "4.0.1");
    let vectors_path = installed.join("selftest/vectors.json");
    let mut vectors: serde_json::Value =
        serde_json::from_slice(&fs::read(&vectors_path).unwrap()).unwrap();
    let first = &mut vectors["cases"][0]["expected"]["fp32"]["styles"][0];
    *first = json!(first.as_f64().unwrap() + 0.5);
    fs::write(&vectors_path, serde_json::to_vec(&vectors).unwrap()).unwrap();
    rehash_manifest(&installed);
    packd::bundle::Bundle::open(&installed).expect("every file matches the manifest");

    packd.spawn();
    let state = client.wait_for_state(&packd, "degraded").await;
    let reason = state["reason"].as_str().expect("reason");
    assert!(
        reason.contains("4.0.1") && reason.contains("self-test"),
        "{state}"
    );
    assert_eq!(state["bundle"]["version"], SHIPPED_VERSION, "{state}");
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );
    assert!(!installed.exists(), "the failing bundle is set aside");
}

/// An installed bundle whose engines the appliance can no longer run (TensorRT changed under
/// it, as a JetPack update does) is set aside at boot like a corrupt one, and the last good
/// bundle serves with `degraded` saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_whose_engines_became_incompatible_is_set_aside_at_boot() {
    let (key, public) = signing_key();
    let options = on_tensorrt_10_3(trusting(&public));
    let (_broker, mut packd, mut client) = broker_and_packd(options, "online").await;
    let variant = bundle_with_a_tensorrt_10_3_engine("4.1.0");
    activate_then_stop(&mut packd, &mut client, &key, variant.path()).await;

    upgrade_to_tensorrt_11_4(&mut packd);
    packd.spawn();
    let state = client.wait_for_state(&packd, "degraded").await;
    let reason = state["reason"].as_str().expect("reason");
    assert!(
        reason.contains("4.1.0") && reason.contains("incompatible") && reason.contains("10.3.0"),
        "{state}"
    );
    assert_eq!(state["bundle"]["version"], SHIPPED_VERSION, "{state}");
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );
    assert!(
        !installed_path(&packd, "packd-default", "4.1.0").exists(),
        "the incompatible bundle is set aside"
    );
    assert!(packd.log().contains("boot_failed") || packd.log().contains("failed at boot"));
}

/// `options` for an appliance on TensorRT 10.3 with compute capability 8.7 (JetPack 6, Orin).
fn on_tensorrt_10_3(options: PackdOptions) -> PackdOptions {
    with_env(
        with_env(options, "PACKD_DEVICE__TENSORRT", "10.3.0"),
        "PACKD_DEVICE__COMPUTE_CAPABILITY",
        "8.7",
    )
}

/// The stopped appliance's next start sees TensorRT 11.4, as after a JetPack update.
fn upgrade_to_tensorrt_11_4(packd: &mut Packd) {
    for (name, value) in packd.env.iter_mut() {
        if name == "PACKD_DEVICE__TENSORRT" {
            *value = "11.4.1".into();
        }
    }
}

/// A bundle with engines for TensorRT 10.3 (gpu, compute capability 8.7).
fn bundle_with_a_tensorrt_10_3_engine(version: &str) -> tempfile::TempDir {
    bundle_variant(
        version,
        |dir| {
            fs::create_dir_all(dir.join("engines")).unwrap();
            fs::write(dir.join("engines/model.gpu.plan"), b"engine for 10.3").unwrap();
            let mut manifest = read_manifest(dir);
            manifest.engines.push(packd::bundle::manifest::EngineEntry {
                target: "gpu".into(),
                precision: "int8".into(),
                file: "engines/model.gpu.plan".into(),
                sha256: packd::bundle::sha256_file(&dir.join("engines/model.gpu.plan")).unwrap(),
                tensorrt: "10.3.0".into(),
                cuda: "12.6".into(),
                compute_capability: "8.7".into(),
                dla_cores: None,
            });
            write_manifest(dir, &manifest);
        },
        true,
    )
}

/// `activate` and `rollback` check an installed bundle's engines against the device as it is
/// now, as commit and boot do: after TensorRT changed under an installed bundle, neither may
/// make it active, and the bundle serving keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_and_rollback_refuse_engines_the_device_can_no_longer_run() {
    let (key, public) = signing_key();
    let options = on_tensorrt_10_3(trusting(&public));
    let (_broker, mut packd, mut client) = broker_and_packd(options, "online").await;
    let (_, committed) = push(
        &mut client,
        &packd,
        &pack(bundle_with_a_tensorrt_10_3_engine("4.2.0").path()),
        &Push {
            key: Some(&key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(committed["status"], "activated", "{committed}");
    // Back to the shipped bundle, so 4.2.0 is both installed and the rollback target.
    let shipped = json!({"name": "packd-default", "version": SHIPPED_VERSION});
    let back = command(&mut client, &packd, "activate", shipped.clone()).await;
    assert_eq!(back["status"], "activated", "{back}");
    assert_eq!(back["previous"]["version"], "4.2.0", "{back}");
    packd.signal("TERM");
    packd.wait_exit(REPLY_DEADLINE).expect("stopped");

    upgrade_to_tensorrt_11_4(&mut packd);
    packd.spawn();
    client.wait_for_state(&packd, "online").await;

    let wanted = json!({"name": "packd-default", "version": "4.2.0"});
    let activated = command(&mut client, &packd, "activate", wanted).await;
    assert_eq!(
        code(&activated),
        Some(BundleErrorCode::Incompatible),
        "{activated}"
    );
    assert!(
        activated["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("10.3.0")),
        "{activated}"
    );
    let rolled = command(&mut client, &packd, "rollback", json!({})).await;
    assert_eq!(
        code(&rolled),
        Some(BundleErrorCode::Incompatible),
        "{rolled}"
    );

    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        SHIPPED_VERSION
    );
    let listed = command(&mut client, &packd, "list", json!({})).await;
    assert_eq!(listed["active"], shipped, "{listed}");
}

/// Kills packd with SIGKILL at every durable step of an install (each file written and synced
/// while unpacking, the rename into place, every pointer write, fsync and switch) and checks
/// after each restart that exactly the old or the new bundle is active, intact, and serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_an_install_leaves_old_or_new_intact() {
    let (key, public) = signing_key();
    let broker = Broker::start();
    // Slim: each file unpacked is a crash point, and the preview faces' 212 files would add as
    // many restarts without a new kind of step; every restart also re-sends the whole archive.
    let archive = pack(slim_variant("5.0.0").path());
    // Each step boots a fresh appliance, which copies (and syncs) its seed first: a slim seed
    // keeps the ~60 boots from copying 225 files each.
    let seed = slim_variant(SHIPPED_VERSION);
    let mut client = V5Client::connect(&broker).await;
    let mut crash_points = 0;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for step in 1.. {
        let options = PackdOptions {
            seed: Some(seed.path().to_path_buf()),
            ..with_env(trusting(&public), "CRASH_PACKD_AT_STEP", &step.to_string())
        };
        let mut packd = Packd::start(&broker, options);
        client.wait_for_state(&packd, "online").await;
        let plan = Push {
            key: Some(&key),
            ..Push::default()
        };
        assert_eq!(
            command(&mut client, &packd, "begin", begin_payload(&archive, &plan)).await["status"],
            "ready"
        );
        send_chunks(
            &client,
            &packd,
            &archive,
            &plan,
            0..chunk_count(&archive, &plan),
        )
        .await;
        let correlation = unique_id("commit");
        client
            .send(
                &packd.bundle_topic("commit"),
                json!({"transfer": plan.transfer}).to_string(),
                &correlation,
            )
            .await;
        // Either packd dies at this step, or the install finishes and it answers.
        let exit = packd.wait_exit(Duration::from_secs(20));
        let crashed = match exit {
            Some(status) => {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(
                    status.signal(),
                    Some(9),
                    "packd died other than by the crash point; log:\n{}",
                    packd.log()
                );
                true
            }
            None => {
                let reply = client.reply_for(&correlation).await;
                assert_eq!(reply["status"], "activated", "{reply}");
                false
            }
        };
        if !crashed {
            assert!(
                crash_points >= 50,
                "only {crash_points} crash points were exercised"
            );
            break;
        }
        crash_points += 1;

        // Restart without the crash point: the old or the new bundle, whole, must serve.
        packd.env.clear();
        packd.spawn();
        let state = client.wait_for_state(&packd, "online").await;
        let version = state["bundle"]["version"].as_str().unwrap().to_string();
        assert!(version == SHIPPED_VERSION || version == "5.0.0", "{state}");
        let active = fs::read_to_string(packd.store().join("active")).unwrap();
        assert_eq!(active.trim(), format!("packd-default@{version}"));
        packd::bundle::Bundle::open(&packd.store().join(active.trim()))
            .expect("the active bundle is intact");
        assert_eq!(
            client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
            version.as_str()
        );
        *outcomes.entry(version).or_default() += 1;
        packd.signal("TERM");
        packd.wait_exit(REPLY_DEADLINE);
    }
    assert!(
        outcomes.contains_key(SHIPPED_VERSION) && outcomes.contains_key("5.0.0"),
        "both outcomes occur across the crash points: {outcomes:?}"
    );
    eprintln!("{crash_points} crash points; outcomes after restart: {outcomes:?}");
}

/// Finding 5 of issue 13: a replayed `begin` (a real signature, recorded from a genuine push)
/// with another `size`, `name`, `version` or downgrade flag is `bad_signature`, since the
/// signature covers the statement of all of them; a 4 KiB `chunk_size` is under packd's floor.
/// None of them takes the transfer slot: the genuine push that follows is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_begin_with_forged_size_is_refused() {
    let (key, public) = signing_key();
    let (_broker, packd, mut client) = broker_and_packd(trusting(&public), "online").await;
    let archive = pack(slim_variant("3.2.0").path());
    let plan = Push {
        key: Some(&key),
        ..Push::default()
    };
    let genuine = begin_payload(&archive, &plan);
    let forged = [
        ("size", json!(1u64 << 30)),
        ("name", json!("packd-evil")),
        ("version", json!("9.9.9")),
        ("allow_downgrade", json!(true)),
    ];
    for (field, value) in forged {
        let mut replayed = genuine.clone();
        replayed[field] = value;
        replayed["transfer"] = json!(unique_id("replay"));
        let reply = command(&mut client, &packd, "begin", replayed).await;
        assert_eq!(
            code(&reply),
            Some(BundleErrorCode::BadSignature),
            "{field}: {reply}"
        );
    }
    let mut tiny_chunks = genuine.clone();
    tiny_chunks["chunk_size"] = json!(4096);
    tiny_chunks["transfer"] = json!(unique_id("replay"));
    let reply = command(&mut client, &packd, "begin", tiny_chunks).await;
    assert_eq!(code(&reply), Some(BundleErrorCode::BadRequest), "{reply}");
    assert_eq!(
        fs::read_dir(packd.store().join(".transfers"))
            .unwrap()
            .count(),
        0,
        "a refused begin left a transfer"
    );

    let (ready, committed) = push(&mut client, &packd, &archive, &plan).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(committed["status"], "activated", "{committed}");
}

/// Finding 5 of issue 13: a validly signed `begin` (a replay of an old bundle's) holds the only
/// slot and sends nothing. Once it has gone `bundles.transfer_stall_s` without a new chunk
/// (0 here, so the test needs no waiting), a fresh signed `begin` for another archive takes
/// the slot instead of being answered `busy`, and the hog's staging is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_transfer_is_taken_over_by_a_fresh_signed_begin() {
    let (key, public) = signing_key();
    let options = with_env(trusting(&public), "PACKD_BUNDLES__TRANSFER_STALL_S", "0");
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    let old = pack(slim_variant("3.3.0").path());
    let hog = Push {
        key: Some(&key),
        transfer: unique_id("hog"),
        ..Push::default()
    };
    let ready = command(&mut client, &packd, "begin", begin_payload(&old, &hog)).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let hog_dir = packd.store().join(".transfers").join(&hog.transfer);
    assert!(hog_dir.is_dir());

    let fresh = pack(slim_variant("3.4.0").path());
    let plan = Push {
        key: Some(&key),
        ..Push::default()
    };
    let (ready, committed) = push(&mut client, &packd, &fresh, &plan).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(committed["status"], "activated", "{committed}");
    assert!(!hog_dir.exists(), "the stalled transfer's staging is left");
    let resumed = command(
        &mut client,
        &packd,
        "commit",
        json!({"transfer": hog.transfer}),
    )
    .await;
    assert_eq!(
        code(&resumed),
        Some(BundleErrorCode::BadRequest),
        "{resumed}"
    );
}

/// Finding 5 of issue 13: there was no way to give a slot back. `abort` discards a transfer and
/// its chunks, and the next push is served instead of answered `busy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_discards_a_transfer() {
    let (key, public) = signing_key();
    let (_broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    let first = pack(slim_variant("3.5.0").path());
    let plan = Push {
        key: Some(&key),
        chunk_size: 64 * 1024,
        ..Push::default()
    };
    let begin = begin_payload(&first, &plan);
    assert_eq!(
        command(&mut client, &packd, "begin", begin.clone()).await["status"],
        "ready"
    );
    send_chunks(&client, &packd, &first, &plan, 0..2).await;
    // Begin again: packd has handled the chunks once it answers.
    let midway = command(&mut client, &packd, "begin", begin).await;
    assert_eq!(midway["have"], json!([[0, 2]]), "{midway}");
    let staging = packd.store().join(".transfers").join(&plan.transfer);
    assert!(staging.is_dir());

    let second = pack(slim_variant("3.6.0").path());
    let next = Push {
        key: Some(&key),
        ..Push::default()
    };
    let busy = command(&mut client, &packd, "begin", begin_payload(&second, &next)).await;
    assert_eq!(code(&busy), Some(BundleErrorCode::Busy), "{busy}");

    let aborted = command(
        &mut client,
        &packd,
        "abort",
        json!({"id": "a1", "transfer": plan.transfer}),
    )
    .await;
    assert_eq!(
        aborted,
        json!({"v": 1, "id": "a1", "device": packd.device, "status": "aborted", "transfer": plan.transfer})
    );
    assert!(!staging.exists(), "the aborted transfer's chunks are left");
    for payload in [
        json!({"transfer": plan.transfer}),
        json!({"transfer": "../x"}),
        json!({}),
    ] {
        let again = command(&mut client, &packd, "abort", payload.clone()).await;
        assert_eq!(
            code(&again),
            Some(BundleErrorCode::BadRequest),
            "{payload}: {again}"
        );
    }
    let (ready, committed) = push(&mut client, &packd, &second, &next).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(committed["status"], "activated", "{committed}");
}

/// Finding 7 of issue 13: unpacking was bounded only by 4 × `max_bundle_mib` (4 GiB), so a
/// signed archive of a few MiB could write gigabytes. A bundle carrying 96 MiB of zeros packs
/// to little more than the shipped bundle without its text encoder (whose int8 rows hardly
/// compress); its expansion is past what zstd bundles may have, so it is `invalid_bundle` with
/// `check` = `archive`, and nothing is left in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpack_writes_no_more_than_the_archive_allows() {
    let (key, public) = signing_key();
    let variant = bundle_variant(
        "3.7.0",
        |dir| {
            without_text_encoder(dir);
            without_fonts(dir);
            fs::write(dir.join("zeros.bin"), vec![0u8; 96 << 20]).unwrap()
        },
        true,
    );
    let archive = pack(variant.path());
    let bound = archive.bytes.len() as u64 * packd::bundle::archive::MAX_ZSTD_EXPANSION
        + packd::bundle::archive::ZSTD_EXPANSION_ALLOWANCE;
    assert!(bound < 96 << 20, "{} bytes packed", archive.bytes.len());
    let (ready, committed, packd) = refused_push(
        trusting(&public),
        &archive,
        &Push {
            key: Some(&key),
            ..Push::default()
        },
    )
    .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::InvalidBundle),
        "{committed}"
    );
    assert_eq!(committed["error"]["check"], "archive", "{committed}");
    assert!(!installed_path(&packd, "packd-default", "3.7.0").exists());
    let leftovers: Vec<_> = fs::read_dir(packd.store())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".staging-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Issue 18, the contract's downgrades: once 2.0.0 was activated, an older validly signed bundle
/// is refused with `downgrade` at `begin`, at `commit` when the newer one was activated after
/// its `begin`, and after a restart (the record is durable); signed with the downgrade flag it
/// is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_older_bundle_is_a_downgrade_unless_signed_to_allow_it() {
    let (key, public) = signing_key();
    let (_broker, mut packd, mut client) = broker_and_packd(trusting(&public), "online").await;
    let signed = |activate: bool| Push {
        key: Some(&key),
        activate,
        ..Push::default()
    };
    let newer = pack(slim_variant("2.0.0").path());
    let older = pack(slim_variant("1.5.0").path());
    // 2.0.0 installed but not yet activated: 1.5.0 may still begin.
    let (_, installed) = push(&mut client, &packd, &newer, &signed(false)).await;
    assert_eq!(installed["status"], "installed", "{installed}");
    let plan = signed(true);
    let ready = command(&mut client, &packd, "begin", begin_payload(&older, &plan)).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    send_chunks(
        &client,
        &packd,
        &older,
        &plan,
        0..chunk_count(&older, &plan),
    )
    .await;
    let activate = json!({"name": "packd-default", "version": "2.0.0"});
    let activated = command(&mut client, &packd, "activate", activate).await;
    assert_eq!(activated["status"], "activated", "{activated}");
    let commit = json!({"transfer": plan.transfer, "activate": true});
    let committed = command(&mut client, &packd, "commit", commit).await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::Downgrade),
        "{committed}"
    );

    packd.signal("KILL");
    packd.wait_exit(REPLY_DEADLINE).expect("killed");
    packd.spawn();
    client.wait_for_state(&packd, "online").await;
    let (refused, _) = push(&mut client, &packd, &older, &signed(true)).await;
    assert_eq!(
        code(&refused),
        Some(BundleErrorCode::Downgrade),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("2.0.0"),
        "{refused}"
    );
    // The flag is part of the signed statement: announcing it without signing it fails.
    let mut forged = begin_payload(&older, &signed(true));
    forged["allow_downgrade"] = json!(true);
    let forged = command(&mut client, &packd, "begin", forged).await;
    assert_eq!(
        code(&forged),
        Some(BundleErrorCode::BadSignature),
        "{forged}"
    );

    let allowed = Push {
        allow_downgrade: true,
        ..signed(true)
    };
    let (_, committed) = push(&mut client, &packd, &older, &allowed).await;
    assert_eq!(committed["status"], "activated", "{committed}");
    assert_eq!(
        client.ask(&packd, r#"{"product":"tea"}"#).await["bundle"]["version"],
        "1.5.0"
    );
}

/// Issue 18: `begin` for an archive already installed (same name, version and SHA-256) answers
/// `installed` and opens no transfer; a different archive under the same label is not it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_for_an_installed_archive_answers_installed() {
    let (key, public) = signing_key();
    let (_broker, packd, mut client) = broker_and_daemon(trusting(&public), "online").await;
    let archive = pack(slim_variant("2.1.0").path());
    let plan = Push {
        key: Some(&key),
        ..Push::default()
    };
    let (_, committed) = push(&mut client, &packd, &archive, &plan).await;
    assert_eq!(committed["status"], "activated", "{committed}");

    let again = Push {
        key: Some(&key),
        ..Push::default()
    };
    let answer = command(
        &mut client,
        &packd,
        "begin",
        begin_payload(&archive, &again),
    )
    .await;
    assert_eq!(answer["status"], "installed", "{answer}");
    assert_eq!(
        answer["bundle"],
        json!({"name": "packd-default", "version": "2.1.0"})
    );
    // No transfer was opened for it.
    let commit = json!({"transfer": again.transfer, "activate": true});
    let committed = command(&mut client, &packd, "commit", commit).await;
    assert_eq!(
        code(&committed),
        Some(BundleErrorCode::BadRequest),
        "{committed}"
    );

    // Another archive claiming the same name and version is not the installed one.
    let other = pack(
        bundle_variant(
            "2.1.0",
            |dir| {
                fs::write(dir.join("REPORT.md"), "another build").expect("write");
            },
            true,
        )
        .path(),
    );
    let answer = command(&mut client, &packd, "begin", begin_payload(&other, &again)).await;
    assert_eq!(answer["status"], "ready", "{answer}");
}
