//! What the appliances say about themselves, watched for the whole rollout: every device's
//! retained `state` (with the pools it serves, from the `packd-pool` user properties) and its
//! periodic `stats`. The targets of `--pool` and the health checks of the soak both read it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use packd_wire::state::{pools_named, State, Stats};
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::Appliance;

/// Stats messages kept per device: enough for any soak at the shortest stats period.
const STATS_KEPT: usize = 256;
/// Once subscribed, the retained states arrive in one burst: this long without another one
/// ends it (bounded by [`RETAINED_MAX_WAIT`]).
const RETAINED_QUIET: Duration = Duration::from_millis(500);
const RETAINED_MAX_WAIT: Duration = Duration::from_secs(10);

/// One stats message's counters, and when it came.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) at: Instant,
    pub(crate) uptime_s: u64,
    pub(crate) briefs: u64,
    pub(crate) service_errors: u64,
}

/// What one device said last.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    /// Its retained state; `None` when it has none (or it was cleared).
    pub(crate) state: Option<State>,
    /// The pools its state names.
    pub(crate) pools: BTreeSet<String>,
    /// Its latest stats, oldest first.
    pub(crate) stats: VecDeque<Counters>,
}

/// Every device heard from, by device id.
pub(crate) type View = BTreeMap<String, Seen>;

/// The watch over every device's state and stats.
pub(crate) struct Monitor {
    view: watch::Receiver<View>,
    client: AsyncClient,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Monitor {
    /// Connects, subscribes to every device's state and stats, and returns once the retained
    /// states have arrived.
    pub(crate) async fn start(appliance: &Appliance) -> anyhow::Result<Monitor> {
        let client_id = format!("{}-watch", crate::remote::client_id());
        let options = appliance.options(&client_id)?;
        let (client, eventloop) = AsyncClient::new(options, 64);
        let (sender, view) = watch::channel(View::new());
        // When the connection came up or the latest retained state arrived; `None` until then.
        let (retained, mut last_retained) = watch::channel(None);
        let topics = [
            format!("{}/devices/+/state", appliance.prefix),
            format!("{}/devices/+/stats", appliance.prefix),
        ];
        let driver = tokio::spawn(drive(eventloop, client.clone(), topics, sender, retained));
        let deadline = Instant::now() + RETAINED_MAX_WAIT;
        loop {
            let last: Option<Instant> = *last_retained.borrow_and_update();
            let until = last.map_or(deadline, |last| (last + RETAINED_QUIET).min(deadline));
            tokio::select! {
                changed = last_retained.changed() => if changed.is_err() {
                    anyhow::bail!("cannot watch the appliances: the MQTT connection ended");
                },
                _ = tokio::time::sleep_until(until) => {
                    if last.is_none() {
                        anyhow::bail!(
                            "cannot connect to the broker at {}: no answer within {} s",
                            appliance.broker_url,
                            RETAINED_MAX_WAIT.as_secs()
                        );
                    }
                    break;
                }
            }
        }
        Ok(Monitor {
            view,
            client,
            driver,
        })
    }

    /// A copy of what is known now.
    pub(crate) fn snapshot(&self) -> View {
        self.view.borrow().clone()
    }

    /// The devices whose state says they serve `pool`.
    pub(crate) fn pool_members(&self, pool: &str) -> BTreeSet<String> {
        self.view
            .borrow()
            .iter()
            .filter(|(_, seen)| seen.pools.contains(pool))
            .map(|(device, _)| device.clone())
            .collect()
    }

    /// Waits for the next change, or `until`.
    pub(crate) async fn changed_or(&mut self, until: Instant) {
        tokio::select! {
            _ = self.view.changed() => {}
            _ = tokio::time::sleep_until(until) => {}
        }
    }

    /// Says goodbye to the broker (best effort).
    pub(crate) async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.disconnect()).await;
    }
}

/// Polls the event loop for the life of the rollout, subscribing again after each reconnection.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    topics: [String; 2],
    view: watch::Sender<View>,
    retained: watch::Sender<Option<Instant>>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                for topic in &topics {
                    // Queued for the event loop: it goes out on the next poll.
                    let _ = client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                }
                retained.send_replace(Some(Instant::now()));
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if publish.retain {
                    retained.send_replace(Some(Instant::now()));
                }
                view.send_if_modified(|view| read(view, &publish));
            }
            Ok(_) => {}
            // rumqttc reconnects on the next poll; a pause keeps a dead broker from spinning us.
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Applies one state or stats message; whether it changed anything.
fn read(view: &mut View, publish: &Publish) -> bool {
    let Ok(topic) = std::str::from_utf8(&publish.topic) else {
        return false;
    };
    let mut levels = topic.rsplit('/');
    let (Some(kind), Some(device)) = (levels.next(), levels.next()) else {
        return false;
    };
    match kind {
        "state" => {
            let seen = view.entry(device.to_string()).or_default();
            seen.state = serde_json::from_slice(&publish.payload).ok();
            seen.pools = pools_named(
                publish
                    .properties
                    .iter()
                    .flat_map(|properties| properties.user_properties.iter()),
            );
            true
        }
        "stats" => {
            let Ok(stats) = serde_json::from_slice::<Stats>(&publish.payload) else {
                return false;
            };
            let seen = view.entry(device.to_string()).or_default();
            if seen.stats.len() == STATS_KEPT {
                seen.stats.pop_front();
            }
            seen.stats.push_back(Counters {
                at: Instant::now(),
                uptime_s: stats.uptime_s,
                briefs: stats.briefs,
                service_errors: stats.service_errors(),
            });
            true
        }
        _ => false,
    }
}
