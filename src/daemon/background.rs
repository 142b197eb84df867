//! What runs beside the briefs until shutdown: the stats topic and the systemd watchdog.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use tokio_util::sync::CancellationToken;

use crate::serve::Pipeline;
use crate::telemetry::Telemetry;
use crate::transport::{self, Topics};

/// Publishes a stats snapshot every `interval_s` until `stop`.
pub(super) async fn publish_stats(
    client: rumqttc::v5::AsyncClient,
    topics: Topics,
    telemetry: Arc<Telemetry>,
    pipeline: Arc<Pipeline>,
    interval_s: u64,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(interval_s));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let snapshot =
            telemetry.snapshot(&topics.device, pipeline.queue_depth(), pipeline.in_flight());
        if let Ok(body) = serde_json::to_vec(&snapshot) {
            if let Err(error) =
                transport::publish_json(&client, &topics.stats, QoS::AtMostOnce, false, body).await
            {
                log::warn!("cannot publish stats: {error}");
            }
        }
    }
}

/// Pets the systemd watchdog only while no worker is stuck on one brief for longer than the
/// watchdog period: a hung backend then gets packd restarted.
pub(super) async fn feed_watchdog(pipeline: Arc<Pipeline>, stop: CancellationToken) {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let period = Duration::from_micros(usec);
    let mut ticker = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let stuck = pipeline.longest_busy();
        if stuck < period {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        } else {
            log::error!(
                "a worker has been on one brief for {} ms; not feeding the watchdog",
                stuck.as_millis()
            );
        }
    }
}
