//! A hung or failing backend, injected with `TEST_PACKD_FAULT` (src/backend/fault.rs; not a
//! `PACKD_*` name, since those are configuration keys), against the systemd protocol: a datagram
//! socket stands where systemd's notify socket would, and `WATCHDOG_USEC` is set as `WatchdogSec=`
//! sets it.
//!
//! packd pets the watchdog every half period while no worker has been on one brief for a whole
//! period (`feed_watchdog` in src/daemon.rs). With a 200 ms period a healthy packd sends
//! `WATCHDOG=1` about every 100 ms; once a worker hangs, the pings must stop within about 1.5
//! periods, so systemd would restart the service. Every wait here is a socket read or an MQTT
//! receive with a timeout, never a sleep.

use crate::fixtures;
use crate::support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use fixtures::*;
use support::{unique_id, wait_until, Broker};

const WATCHDOG_USEC: u64 = 200_000;
const PERIOD: Duration = Duration::from_micros(WATCHDOG_USEC);
/// A healthy packd pings every PERIOD / 2; this much silence means it has stopped.
const QUIET: Duration = Duration::from_millis(1_500);
/// Once silent, it must stay silent at least this much longer.
const STAYS_QUIET: Duration = Duration::from_secs(2);

const BRIEF: &str = r##"{"v":1,"product":"beverage","audience":["young women"],"mood":["fresh"],"palette":"morandi","brand_colors":["#1A73E8"],"top_k":3}"##;

/// The notify socket packd is told about, listened on like systemd would.
struct Notify {
    socket: UnixDatagram,
}

impl Notify {
    fn bind(path: &Path) -> Notify {
        Notify {
            socket: UnixDatagram::bind(path).expect("bind the notify socket"),
        }
    }

    /// The next datagram, or `None` if none arrives within `timeout`.
    fn next(&self, timeout: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        let mut buffer = [0u8; 4096];
        match self.socket.recv(&mut buffer) {
            Ok(length) => Some(String::from_utf8_lossy(&buffer[..length]).into_owned()),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(error) => panic!("notify socket: {error}"),
        }
    }

    /// Reads until a datagram has the line `wanted`; panics with what was seen at the deadline.
    fn wait_for(&self, wanted: &str, deadline: Duration) {
        let end = Instant::now() + deadline;
        let mut seen = Vec::new();
        while let Some(message) = self.next(end.saturating_duration_since(Instant::now())) {
            if is(&message, wanted) {
                return;
            }
            seen.push(message);
        }
        panic!("no {wanted} within {deadline:?}; got {seen:?}");
    }

    /// Throws away what is queued already, so the next read is something sent from now on.
    fn drain(&self) {
        while self.next(Duration::from_millis(1)).is_some() {}
    }
}

fn is(message: &str, line: &str) -> bool {
    message.lines().any(|l| l == line)
}

fn packd_options(socket: &Path, fault: &str) -> PackdOptions {
    PackdOptions {
        workers: 2,
        env: vec![
            ("NOTIFY_SOCKET".into(), socket.display().to_string()),
            ("WATCHDOG_USEC".into(), WATCHDOG_USEC.to_string()),
            ("TEST_PACKD_FAULT".into(), fault.into()),
        ],
        ..PackdOptions::default()
    }
}

/// Two briefs are answered and the watchdog is fed; the third brief wedges a worker (the
/// injected `hang-after=2`), and from then on no `WATCHDOG=1` arrives while packd stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_backend_stops_the_watchdog_pings() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let notify = Notify::bind(&socket_path);
    let mut packd = Packd::start(&broker, packd_options(&socket_path, "hang-after=2"));
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&packd, "online").await;
    notify.wait_for("READY=1", REPLY_DEADLINE);

    // Healthy: pings arrive, and keep arriving while briefs are served.
    notify.wait_for("WATCHDOG=1", Duration::from_secs(5));
    for _ in 0..2 {
        let reply = client.ask(&packd, BRIEF).await;
        assert_eq!(reply["status"], "ok", "{reply}");
    }
    notify.drain();
    notify.wait_for("WATCHDOG=1", Duration::from_secs(5));
    notify.wait_for("WATCHDOG=1", Duration::from_secs(5));

    // The third inference never returns.
    let correlation = unique_id("hang");
    client
        .send(&packd.brief_topic(), BRIEF.to_string(), &correlation)
        .await;
    let sent = Instant::now();

    // Pings may go on until the stuck brief is a period old (plus a tick); then they stop.
    let mut late_pings = 0;
    loop {
        match notify.next(QUIET) {
            None => break,
            Some(message) if is(&message, "WATCHDOG=1") => {
                late_pings += 1;
                assert!(
                    sent.elapsed() < Duration::from_secs(10),
                    "WATCHDOG=1 still arriving {:?} after the hung brief ({late_pings} since); \
                     packd log:\n{}",
                    sent.elapsed(),
                    packd.log()
                );
            }
            Some(_) => {}
        }
    }
    // Silent, and it stays silent: not one more ping, whatever else arrives.
    let end = Instant::now() + STAYS_QUIET;
    while let Some(message) = notify.next(end.saturating_duration_since(Instant::now())) {
        assert!(
            !is(&message, "WATCHDOG=1"),
            "a ping after {:?} of silence: {message:?}",
            QUIET
        );
    }
    eprintln!(
        "{late_pings} WATCHDOG=1 after the hung brief was sent (period {PERIOD:?}), then silence"
    );

    // It is the stuck worker, not a dead or frozen process: packd says why, and is still up.
    assert!(
        wait_until(Duration::from_secs(5), || packd
            .log()
            .contains("not feeding the watchdog")),
        "packd never logged the stuck worker; log:\n{}",
        packd.log()
    );
    assert!(
        packd.wait_exit(Duration::ZERO).is_none(),
        "packd exited; log:\n{}",
        packd.log()
    );
    let replies = client.reply_topic.clone();
    assert!(
        client
            .next_on(&replies, Duration::from_millis(100))
            .await
            .is_none(),
        "the hung brief was answered"
    );
}

/// `fail-every=1`: every inference fails. Each brief is answered `internal`, the service keeps
/// answering the next one, and the watchdog keeps being fed (a failing backend is not a hung one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_costs_a_brief_internal_not_the_service() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let notify = Notify::bind(&socket_path);
    let packd = Packd::start(&broker, packd_options(&socket_path, "fail-every=1"));
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&packd, "online").await;

    for n in 0..3 {
        let payload = BRIEF.replace(r#""v":1"#, &format!(r#""v":1,"id":"fail-{n}""#));
        let reply = client.ask(&packd, &payload).await;
        assert_eq!(reply["status"], "error", "brief {n}: {reply}");
        assert_eq!(reply["error"]["code"], "internal", "brief {n}: {reply}");
        assert_eq!(reply["id"], format!("fail-{n}"), "brief {n}: {reply}");
    }
    notify.drain();
    notify.wait_for("WATCHDOG=1", Duration::from_secs(5));
}

/// `fail-every=2`: only every second inference fails, so the briefs around a failure are
/// served normally: the worker that hit the failure is back at work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_injected_failure_the_next_brief_is_served() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let _notify = Notify::bind(&socket_path);
    let mut options = packd_options(&socket_path, "fail-every=2");
    // One worker: the inferences happen in the order the briefs are sent.
    options.workers = 1;
    let packd = Packd::start(&broker, options);
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&packd, "online").await;

    let statuses: Vec<String> = {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let reply = client.ask(&packd, BRIEF).await;
            if reply["status"] == "error" {
                assert_eq!(reply["error"]["code"], "internal", "{reply}");
            }
            statuses.push(reply["status"].as_str().unwrap_or_default().to_string());
        }
        statuses
    };
    assert_eq!(statuses, ["ok", "error", "ok", "error"]);
}
