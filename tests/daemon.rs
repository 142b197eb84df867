//! The daemon as a value, started and stopped inside the test process: boot, serving, and the
//! shutdown stages (in-flight work answered, offline state, disconnect).

use std::time::Duration;

use crate::fixtures;
use crate::support;

use fixtures::in_process::InProcess;
use fixtures::*;
use support::{unique_id, Broker};

const BRIEF: &str = r##"{"v":1,"id":"inproc-1","product":"tea","mood":["calm"],"top_k":2}"##;

/// Waits for the retained state on `topic` to reach `status`.
async fn state_becomes(client: &mut V5Client, topic: &str, status: &str) -> serde_json::Value {
    client.subscribe(topic).await;
    let end = tokio::time::Instant::now() + REPLY_DEADLINE;
    loop {
        let remaining = end.saturating_duration_since(tokio::time::Instant::now());
        let publish = client
            .next_on(topic, remaining)
            .await
            .unwrap_or_else(|| panic!("state never became {status}"));
        let state = parse(&publish);
        if state["status"] == status {
            return state;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_daemon_serves_then_stops_in_stages_and_says_offline() {
    let broker = Broker::start();
    let mut packd = InProcess::start(&broker, PackdOptions::default()).await;
    let mut client = V5Client::connect(&broker).await;
    let online = state_becomes(&mut client, &packd.state_topic(), "online").await;
    assert_eq!(online["bundle"]["name"], "packd-default", "{online}");

    let correlation = unique_id("c");
    client
        .send(&packd.brief_topic(), BRIEF.to_string(), &correlation)
        .await;
    let reply = client.reply_for(&correlation).await;
    assert_eq!(reply["status"], "ok", "{reply}");
    assert_eq!(reply["styles"].as_array().map(Vec::len), Some(2), "{reply}");

    let stopped = tokio::time::timeout(Duration::from_secs(30), packd.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown did not finish within 30 s");

    // A fresh subscriber sees the retained offline state the shutdown published.
    let mut late = V5Client::connect(&broker).await;
    let offline = state_becomes(&mut late, &packd.state_topic(), "offline").await;
    assert_eq!(offline["device"], packd.device, "{offline}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_daemon_with_an_empty_store_reports_no_model() {
    let broker = Broker::start();
    let options = PackdOptions {
        seed: None,
        ..PackdOptions::default()
    };
    let mut packd = InProcess::start(&broker, options).await;
    let mut client = V5Client::connect(&broker).await;
    state_becomes(&mut client, &packd.state_topic(), "degraded").await;
    let correlation = unique_id("c");
    client
        .send(&packd.brief_topic(), BRIEF.to_string(), &correlation)
        .await;
    let reply = client.reply_for(&correlation).await;
    assert_eq!(reply["error"]["code"], "no_model", "{reply}");
    packd.shutdown().await;
}
