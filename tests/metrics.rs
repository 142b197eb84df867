//! Issue 18: the Prometheus endpoint (`telemetry.metrics_listen`), scraped over HTTP from a
//! packd process serving briefs and a bundle command through a real mosquitto, and parsed.

use crate::fixtures;
use crate::fixtures::SHIPPED_VERSION;
use crate::support;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use fixtures::bundles::command;
use fixtures::*;
use serde_json::json;

/// The environment entry that has packd serve `/metrics` on `port` of the loopback.
pub(crate) fn listen_on(port: u16) -> (String, String) {
    (
        "PACKD_TELEMETRY__METRICS_LISTEN".into(),
        format!("127.0.0.1:{port}"),
    )
}

/// `GET path` over HTTP/1.1; the status line and the body.
pub(crate) fn get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint listens");
    stream
        .set_read_timeout(Some(REPLY_DEADLINE))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// Sample lines of the text format: `name{labels}` → value (comments skipped).
pub(crate) fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            let value = value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("value of {line}"));
            (series.to_owned(), value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_briefs_bundle_commands_and_name_the_active_bundle() {
    let port = support::free_port();
    let options = PackdOptions {
        env: vec![listen_on(port)],
        ..PackdOptions::default()
    };
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    let (status, before) = get(port, "/metrics");
    assert!(status.contains("200"), "{status}");
    let before = samples(&before);
    assert_eq!(
        before.get(r#"packd_briefs_total{status="ok",code="none"}"#),
        None
    );

    for _ in 0..2 {
        let reply = client.ask(&packd, r#"{"product":"tea"}"#).await;
        assert_eq!(reply["status"], "ok", "{reply}");
    }
    let refused = client.ask(&packd, r#"{"product":"tea","top_k":99}"#).await;
    assert_eq!(refused["error"]["code"], "bad_request", "{refused}");
    let listed = command(&mut client, &packd, "list", json!({})).await;
    assert_eq!(listed["status"], "ok", "{listed}");

    let (_, text) = get(port, "/metrics");
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF: {text}"
    );
    let after = samples(&text);
    let value = |series: &str| {
        *after
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
    };
    assert_eq!(value(r#"packd_briefs_total{status="ok",code="none"}"#), 2.0);
    assert_eq!(
        value(r#"packd_briefs_total{status="error",code="bad_request"}"#),
        1.0
    );
    assert_eq!(
        value(r#"packd_brief_latency_seconds_count{backend="cpu"}"#),
        2.0
    );
    assert!(value(r#"packd_brief_latency_seconds_sum{backend="cpu"}"#) > 0.0);
    assert_eq!(
        value(&format!(
            r#"packd_active_bundle{{name="packd-default",version="{SHIPPED_VERSION}"}}"#
        )),
        1.0
    );
    assert_eq!(
        value(r#"packd_bundle_commands_total{command="list",result="ok"}"#),
        1.0
    );
    assert_eq!(value("packd_queue_depth"), 0.0);
    assert_eq!(value("packd_bundle_transfer_bytes_total"), 0.0);

    let (status, _) = get(port, "/");
    assert!(status.contains("404"), "{status}");
}

/// A metrics port another process holds costs the metrics, never the briefs: packd comes online,
/// answers, and says in its log why there is no endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_port_taken_by_someone_else_leaves_briefs_served() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let port = taken.local_addr().expect("address").port();
    let options = PackdOptions {
        env: vec![listen_on(port)],
        ..PackdOptions::default()
    };
    let (_broker, packd, mut client) = broker_and_packd(options, "online").await;
    let reply = client.ask(&packd, r#"{"product":"tea"}"#).await;
    assert_eq!(reply["status"], "ok", "{reply}");
    assert!(
        packd
            .log()
            .contains(&format!("metrics: cannot listen on 127.0.0.1:{port}")),
        "{}",
        packd.log()
    );
}
