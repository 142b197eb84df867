//! The daemon as a value, started and stopped inside the test process: boot, serving, and the
//! shutdown stages (in-flight work answered, offline state, disconnect).

use std::time::Duration;

use crate::fixtures;
use crate::support;

use fixtures::in_process::InProcess;
use fixtures::*;
use support::{unique_id, Broker};

const BRIEF: &str = r##"{"v":1,"id":"inproc-1","product":"tea","mood":["calm"],"top_k":2}"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_daemon_serves_then_stops_in_stages_and_says_offline() {
    let broker = Broker::start();
    let mut packd = InProcess::start(&broker, PackdOptions::default()).await;
    let mut client = V5Client::connect(&broker).await;
    let online = client.wait_for_state(&packd, "online").await;
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
    let offline = late.wait_for_state(&packd, "offline").await;
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
    client.wait_for_state(&packd, "degraded").await;
    let correlation = unique_id("c");
    client
        .send(&packd.brief_topic(), BRIEF.to_string(), &correlation)
        .await;
    let reply = client.reply_for(&correlation).await;
    assert_eq!(reply["error"]["code"], "no_model", "{reply}");
    packd.shutdown().await;
}
