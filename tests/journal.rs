//! Every brief's latency lands in the systemd journal with structured fields.

use crate::fixtures;
use crate::fixtures::{SHIPPED_LABEL, SHIPPED_VERSION};
use crate::support;

use std::time::Duration;

use fixtures::*;
use support::unique_id;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn briefs_are_journaled_with_their_fields() {
    if !support::ensure_journald() {
        return;
    }
    let options = PackdOptions {
        log_target: "journal",
        ..PackdOptions::default()
    };
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    let ok_id = unique_id("j-ok");
    let bad_id = unique_id("j-bad");
    assert_eq!(
        client
            .ask(&packd, &format!(r#"{{"id":"{ok_id}","product":"tea"}}"#))
            .await["status"],
        "ok"
    );
    assert_eq!(
        client
            .ask(
                &packd,
                &format!(r#"{{"id":"{bad_id}","product":"tea","top_k":99}}"#)
            )
            .await["status"],
        "error"
    );

    let entries = support::journal_entries("PACKD_BRIEF_ID", &ok_id, Duration::from_secs(10));
    assert_eq!(entries.len(), 1, "one record per brief: {entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["PACKD_STATUS"], "ok");
    assert_eq!(entry["PACKD_BACKEND"], "cpu");
    assert_eq!(entry["PACKD_BUNDLE"], SHIPPED_LABEL);
    for field in ["PACKD_LATENCY_US", "PACKD_QUEUE_US", "PACKD_INFER_US"] {
        let value: u64 = entry[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing: {entry}"))
            .parse()
            .expect("number");
        if field != "PACKD_QUEUE_US" {
            assert!(value > 0, "{field} = {value}");
        }
    }
    assert_eq!(entry["SYSLOG_IDENTIFIER"], "packd");

    let failed = support::journal_entries("PACKD_BRIEF_ID", &bad_id, Duration::from_secs(10));
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["PACKD_STATUS"], "bad_request");
    assert_eq!(failed[0]["PRIORITY"], "4", "failed briefs are warnings");

    // The stats summary carries the percentiles.
    let pid = packd.pid().to_string();
    let summary = support::wait_until(Duration::from_secs(10), || {
        support::journal_query(&[("_PID", &pid), ("PACKD_BACKEND", "cpu")])
            .iter()
            .any(|entry| entry.get("PACKD_P99_US").is_some())
    });
    assert!(
        summary,
        "a percentile summary is journaled each stats interval"
    );
}

/// A push, its activation and a rollback, read back from the journal as an operator would
/// (`journalctl -o json PACKD_TRANSFER=…`, `PACKD_EVENT=rollback`): each record carries
/// `PACKD_EVENT`, `PACKD_BUNDLE`, and the records of the push carry its transfer id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_pushes_activations_and_rollbacks_are_journaled() {
    use fixtures::bundles::*;
    use serde_json::json;

    if !support::ensure_journald() {
        return;
    }
    // Records of earlier runs (a reused pid) are older than this.
    let started_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let recent = |entries: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        entries
            .into_iter()
            .filter(|entry| {
                entry["__REALTIME_TIMESTAMP"]
                    .as_str()
                    .and_then(|stamp| stamp.parse::<u128>().ok())
                    .is_some_and(|stamp| stamp >= started_us)
            })
            .collect()
    };
    let (key, public) = signing_key();
    let options = PackdOptions {
        log_target: "journal",
        env: vec![("PACKD_BUNDLES__TRUSTED_KEYS".into(), public)],
        ..PackdOptions::default()
    };
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    let archive = pack(slim_variant("1.6.0").path());
    let plan = Push {
        key: Some(&key),
        ..Push::default()
    };
    let (ready, committed) = push(&mut client, &packd, &archive, &plan).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(committed["status"], "activated", "{committed}");
    let rolled = command(&mut client, &packd, "rollback", json!({})).await;
    assert_eq!(rolled["status"], "activated", "{rolled}");
    assert_eq!(rolled["bundle"]["version"], SHIPPED_VERSION, "{rolled}");

    let pid = packd.pid().to_string();
    let deadline = Duration::from_secs(10);
    // The push: its begin, the install and the activation it caused, all under its transfer id.
    let pushed = recent(support::journal_entries_at_least(
        &[("PACKD_TRANSFER", &plan.transfer)],
        3,
        deadline,
    ));
    let events: Vec<&str> = pushed
        .iter()
        .map(|entry| entry["PACKD_EVENT"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        events,
        ["transfer_begin", "installed", "activated"],
        "{pushed:?}"
    );
    for entry in &pushed {
        assert_eq!(entry["PACKD_BUNDLE"], "packd-default@1.6.0", "{entry}");
        assert_eq!(entry["_PID"], pid.as_str(), "{entry}");
        assert_eq!(entry["SYSLOG_IDENTIFIER"], "packd", "{entry}");
        // log's Info is the journal's "notice" (5) under systemd-journal-logger.
        assert_eq!(entry["PRIORITY"], "5", "{entry}");
    }

    // The rollback: its own record naming where it went, logged once that activation succeeded.
    let rollbacks = recent(support::journal_entries_at_least(
        &[("_PID", &pid), ("PACKD_EVENT", "rollback")],
        1,
        deadline,
    ));
    assert_eq!(rollbacks.len(), 1, "{rollbacks:?}");
    assert_eq!(rollbacks[0]["PACKD_BUNDLE"], SHIPPED_LABEL);
    let activations = recent(support::journal_entries_at_least(
        &[("_PID", &pid), ("PACKD_EVENT", "activated")],
        2,
        deadline,
    ));
    let activated: Vec<(&str, Option<&str>)> = activations
        .iter()
        .map(|entry| {
            (
                entry["PACKD_BUNDLE"].as_str().unwrap_or_default(),
                entry["PACKD_TRANSFER"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        activated,
        [
            ("packd-default@1.6.0", Some(plan.transfer.as_str())),
            (SHIPPED_LABEL, None)
        ],
        "the commit's activation names its transfer, the rollback's has none: {activations:?}"
    );
}

/// Refused bundle commands are journaled as operators find the successes: one record each,
/// `PACKD_EVENT={command}_refused` with the API's error code in `PACKD_ERROR`, under the push's
/// `PACKD_TRANSFER` and `PACKD_BUNDLE`. A rollback whose activation fails leaves no `rollback`
/// record, only its refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_bundle_commands_are_journaled_with_their_error_code() {
    use fixtures::bundles::*;
    use serde_json::json;

    if !support::ensure_journald() {
        return;
    }
    let (key, public) = signing_key();
    let options = PackdOptions {
        log_target: "journal",
        env: vec![("PACKD_BUNDLES__TRUSTED_KEYS".into(), public)],
        ..PackdOptions::default()
    };
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    let pid = packd.pid().to_string();
    let deadline = Duration::from_secs(10);
    let archive = pack(slim_variant("1.7.0").path());
    let label = "packd-default@1.7.0";

    // Unsigned, refused at begin.
    let unsigned = Push::default();
    let (ready, _) = push(&mut client, &packd, &archive, &unsigned).await;
    assert_eq!(ready["error"]["code"], "bad_signature", "{ready}");
    let records = support::journal_entries_at_least(
        &[("_PID", &pid), ("PACKD_TRANSFER", &unsigned.transfer)],
        1,
        deadline,
    );
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["PACKD_EVENT"], "begin_refused", "{records:?}");
    assert_eq!(records[0]["PACKD_ERROR"], "bad_signature", "{records:?}");
    assert_eq!(records[0]["PACKD_BUNDLE"], label, "{records:?}");
    // log's Warn is the journal's "warning" (4).
    assert_eq!(records[0]["PRIORITY"], "4", "{records:?}");

    // A chunk held back, refused at commit; the commit record still names the bundle.
    let gappy = Push {
        key: Some(&key),
        skip: vec![0],
        ..Push::default()
    };
    let (_, committed) = push(&mut client, &packd, &archive, &gappy).await;
    assert_eq!(committed["error"]["code"], "missing_chunks", "{committed}");
    let records = support::journal_entries_at_least(
        &[
            ("_PID", &pid),
            ("PACKD_TRANSFER", &gappy.transfer),
            ("PACKD_EVENT", "commit_refused"),
        ],
        1,
        deadline,
    );
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["PACKD_ERROR"], "missing_chunks", "{records:?}");
    assert_eq!(records[0]["PACKD_BUNDLE"], label, "{records:?}");

    // The held-back chunk completes that push (it holds the only transfer slot).
    let rest = Push {
        skip: Vec::new(),
        ..gappy
    };
    send_chunks(&client, &packd, &archive, &rest, 0..1).await;
    let committed = command(
        &mut client,
        &packd,
        "commit",
        json!({"transfer": rest.transfer}),
    )
    .await;
    assert_eq!(committed["status"], "activated", "{committed}");

    // A rollback to a bundle that rotted on disk: refused, and never logged as done.
    let model = installed_path(&packd, "packd-default", SHIPPED_VERSION).join("model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[100] ^= 0xFF;
    std::fs::write(&model, bytes).unwrap();
    let rolled = command(&mut client, &packd, "rollback", json!({})).await;
    assert_eq!(rolled["error"]["code"], "invalid_bundle", "{rolled}");
    let refused = support::journal_entries_at_least(
        &[("_PID", &pid), ("PACKD_EVENT", "rollback_refused")],
        1,
        deadline,
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["PACKD_ERROR"], "invalid_bundle", "{refused:?}");
    assert_eq!(refused[0]["PACKD_BUNDLE"], SHIPPED_LABEL, "{refused:?}");
    // Records of one process arrive in order, so a `rollback` record would be there by now.
    let done = support::journal_query(&[("_PID", &pid), ("PACKD_EVENT", "rollback")]);
    assert!(
        done.is_empty(),
        "a failed rollback was logged as done: {done:?}"
    );
}

/// The README's tour: packd started with `examples/packd.local.toml` from a terminal (no
/// JOURNAL_STREAM) journals its briefs, so `journalctl -t packd` shows their latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_example_config_journals_briefs_where_journald_listens() {
    if !support::ensure_journald() {
        return;
    }
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packd.local.toml");
    let local =
        packd::config::Config::load(Some(&example)).expect("examples/packd.local.toml loads");
    let options = PackdOptions {
        log_target: match local.log.target {
            packd::config::LogTarget::Auto => "auto",
            packd::config::LogTarget::Journal => "journal",
            packd::config::LogTarget::Stderr => "stderr",
        },
        ..PackdOptions::default()
    };
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    let id = unique_id("j-local");
    let reply = client
        .ask(&packd, &format!(r#"{{"id":"{id}","product":"tea"}}"#))
        .await;
    assert_eq!(reply["status"], "ok", "{reply}");
    let entries = support::journal_entries("PACKD_BRIEF_ID", &id, Duration::from_secs(10));
    assert_eq!(entries.len(), 1, "the brief is in the journal: {entries:?}");
    assert_eq!(entries[0]["SYSLOG_IDENTIFIER"], "packd");
    assert!(
        packd.log().contains("logging to the journal"),
        "packd says where its records go: {}",
        packd.log()
    );
}
