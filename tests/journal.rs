//! Every brief's latency lands in the systemd journal with structured fields.

mod fixtures;
mod support;

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
    assert_eq!(entry["PACKD_BUNDLE"], "packd-default@1.0.0");
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
