//! Transport: the MQTT v5 session with the broker. Briefs come in here and go to the pipeline;
//! replies, the retained state and the stats go out from here.

pub mod adoption;
mod outbox;
pub use packd_wire::topics;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, LastWill, LastWillProperties, Packet, Publish, PublishProperties,
    SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::config::MqttConfig;
use crate::serve::{Acknowledge, Job, Pipeline, ReplyRoute, ReplySink, RequestedRoute};
use crate::telemetry::field::escaped;
use outbox::Deferred;
pub(crate) use outbox::Outbox;
pub use topics::Topics;

/// Packets larger than this are not delivered to us by the broker (MQTT v5 Maximum Packet
/// Size). It sits above the 6 MiB brief limit so that oversized briefs still get `too_large`.
pub const MAX_INCOMING_PACKET: u32 = 16 * 1024 * 1024;
/// Requests queued towards the event loop before publishers wait.
pub(crate) const REQUEST_CHANNEL: usize = 1024;
const JSON: &str = "application/json";
// Pool peers learn whose session they may adopt from it; the state document itself is left as
// the contract defines it.
pub(crate) use packd_wire::state::STATE_POOL_PROPERTY;

/// The MQTT client id of an appliance; a pool peer adopting its session connects with it too.
pub fn client_id(device: &str) -> String {
    format!("packd-{device}")
}

/// Properties of a state message: JSON, and one [`STATE_POOL_PROPERTY`] per pool.
pub(crate) fn state_properties(pools: &[String]) -> PublishProperties {
    PublishProperties {
        content_type: Some(JSON.to_string()),
        user_properties: pool_properties(pools),
        ..PublishProperties::default()
    }
}

fn pool_properties(pools: &[String]) -> Vec<(String, String)> {
    pools
        .iter()
        .map(|pool| (STATE_POOL_PROPERTY.to_string(), pool.clone()))
        .collect()
}

/// Publishes this appliance's retained state document.
pub(crate) async fn publish_state(
    client: &AsyncClient,
    topics: &Topics,
    body: Vec<u8>,
) -> Result<(), rumqttc::v5::ClientError> {
    client
        .publish_with_properties(
            topics.state.clone(),
            QoS::AtLeastOnce,
            true,
            body,
            state_properties(&topics.pools),
        )
        .await
}

/// Why the transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// `mqtt.url` is not `mqtt://host[:port]` or `mqtts://host[:port]`; the text is the URL.
    #[error("mqtt.url '{0}': expected mqtt://host[:port] or mqtts://host[:port]")]
    Url(String),
    /// A TLS file (`mqtt.ca_file`, `cert_file` or `key_file`) cannot be read.
    #[error("{path}: {source}")]
    File {
        /// The file's path.
        path: String,
        /// The operating system's answer.
        source: std::io::Error,
    },
}

/// Broker address parsed from `mqtt.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// The broker's host name or address.
    pub host: String,
    /// The broker's port: as given, else 1883 for `mqtt://` and 8883 for `mqtts://`.
    pub port: u16,
    /// Whether to connect with TLS (`mqtts://`).
    pub tls: bool,
}

/// Parses `mqtt://host:port` / `mqtts://host:port` (ports default to 1883 / 8883).
pub fn parse_url(url: &str) -> Result<BrokerAddress, TransportError> {
    let bad = || TransportError::Url(url.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let tls = match scheme {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        _ => return Err(bad()),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(bad());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            (host, port.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (authority, if tls { 8883 } else { 1883 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok(BrokerAddress {
        host: host.to_string(),
        port,
        tls,
    })
}

/// MQTT options shared by the daemon and packctl: address, TLS, credentials, packet limits.
pub fn base_options(config: &MqttConfig, client_id: &str) -> Result<MqttOptions, TransportError> {
    let address = parse_url(&config.url)?;
    let mut options = MqttOptions::new(client_id, address.host, address.port);
    options.set_keep_alive(Duration::from_secs(config.keep_alive_s));
    options.set_max_packet_size(Some(MAX_INCOMING_PACKET));
    // Replies are small and latency-bound; Nagle plus delayed ACKs would add tens of milliseconds.
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    if let (Some(username), Some(password)) = (&config.username, &config.password) {
        options.set_credentials(username.clone(), password.clone());
    } else if let Some(username) = &config.username {
        options.set_credentials(username.clone(), String::new());
    }
    if address.tls {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| TransportError::File {
                path: path.display().to_string(),
                source,
            })
        };
        let client_auth = match (&config.cert_file, &config.key_file) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        let transport = match &config.ca_file {
            Some(ca) => rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple {
                ca: read(ca)?,
                alpn: None,
                client_auth,
            }),
            None => rumqttc::Transport::tls_with_default_config(),
        };
        options.set_transport(transport);
    }
    Ok(options)
}

/// Options of a persistent session acknowledged by hand, under `client_id`: the daemon's own
/// and the ones it adopts from pool peers.
pub(crate) fn session_options(
    config: &MqttConfig,
    client_id: &str,
    in_flight_capacity: usize,
) -> Result<MqttOptions, TransportError> {
    let mut options = base_options(config, client_id)?;
    options.set_clean_start(false);
    let mut connect_properties = rumqttc::v5::mqttbytes::v5::ConnectProperties::new();
    connect_properties.session_expiry_interval = Some(config.session_expiry_s);
    connect_properties.max_packet_size = Some(MAX_INCOMING_PACKET);
    // Unacknowledged deliveries we can hold (queue, overload queue, workers, bundle commands):
    // the broker keeps the rest for us instead of pushing them into memory.
    connect_properties.receive_maximum =
        Some(in_flight_capacity.clamp(1, u16::MAX as usize) as u16);
    options.set_connect_properties(connect_properties);
    options.set_manual_acks(true);
    Ok(options)
}

/// Creates the daemon's client: persistent session, will on the state topic.
pub fn connect(
    config: &MqttConfig,
    topics: &Topics,
    offline_state: Vec<u8>,
    in_flight_capacity: usize,
) -> Result<(AsyncClient, EventLoop), TransportError> {
    let mut options = session_options(config, &client_id(&topics.device), in_flight_capacity)?;
    let will_properties = LastWillProperties {
        delay_interval: None,
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: Some(JSON.to_string()),
        response_topic: None,
        correlation_data: None,
        user_properties: pool_properties(&topics.pools),
    };
    options.set_last_will(LastWill::new(
        topics.state.clone(),
        offline_state,
        QoS::AtLeastOnce,
        true,
        Some(will_properties),
    ));
    Ok(AsyncClient::new(options, request_channel()))
}

/// [`REQUEST_CHANNEL`]; with the `test-util` feature, `TEST_PACKD_REQUEST_CHANNEL` may shrink it
/// so that a test fills it (the outbox's path).
fn request_channel() -> usize {
    #[cfg(feature = "test-util")]
    #[allow(clippy::disallowed_methods)]
    if let Some(capacity) = std::env::var("TEST_PACKD_REQUEST_CHANNEL")
        .ok()
        .and_then(|value| value.parse().ok())
    {
        return capacity;
    }
    REQUEST_CHANNEL
}

/// The broker's Maximum Packet Size from its latest CONNACK (0 while it has named none).
///
/// rumqttc keeps a QoS 1 publish it could not write and sends it again on every reconnect of a
/// persistent session; a reply over the broker's limit fails to encode each time, so it would
/// take the connection down forever. Such a reply is never handed to rumqttc.
#[derive(Debug, Clone, Default)]
pub(crate) struct BrokerLimit(Arc<AtomicU32>);

impl BrokerLimit {
    /// Records what a CONNACK said.
    pub fn set(&self, max_packet_size: Option<u32>) {
        self.0
            .store(max_packet_size.unwrap_or(0), Ordering::Relaxed);
    }

    /// The limit a packet of `size` bytes goes over, if any.
    fn exceeded_by(&self, size: usize) -> Option<u32> {
        let max = self.0.load(Ordering::Relaxed);
        (max != 0 && size > max as usize).then_some(max)
    }
}

/// Publishes replies through the client: from worker threads waiting for room in the request
/// channel, from the runtime's thread (`serve.workers = 0`) through the outbox.
pub(crate) struct MqttReplySink {
    client: AsyncClient,
    runtime: Handle,
    limit: BrokerLimit,
    outbox: Arc<Outbox>,
}

impl MqttReplySink {
    /// A sink that publishes through `client` on `runtime`, within the broker's `limit`.
    pub fn new(
        client: AsyncClient,
        runtime: Handle,
        limit: BrokerLimit,
        outbox: Arc<Outbox>,
    ) -> MqttReplySink {
        MqttReplySink {
            client,
            runtime,
            limit,
            outbox,
        }
    }
}

impl ReplySink for MqttReplySink {
    fn send(&self, route: &ReplyRoute, body: Vec<u8>) {
        let properties = PublishProperties {
            correlation_data: route.correlation().cloned(),
            content_type: Some(JSON.to_string()),
            ..PublishProperties::default()
        };
        let publish = Publish::new(route.topic(), QoS::AtLeastOnce, body, Some(properties));
        if let Some(max) = self.limit.exceeded_by(publish.size()) {
            log::warn!(
                "reply to {} not sent: {} bytes is over the broker's maximum packet size of {max}",
                escaped(route.topic()),
                publish.size()
            );
            return;
        }
        let Publish {
            topic,
            payload,
            properties,
            ..
        } = publish;
        let topic = String::from_utf8_lossy(&topic).into_owned();
        let properties = properties.unwrap_or_default();
        if Handle::try_current().is_ok() {
            self.outbox.send(Deferred::Reply {
                topic,
                payload,
                properties,
            });
            return;
        }
        let published = self.runtime.block_on(self.client.publish_with_properties(
            topic,
            QoS::AtLeastOnce,
            false,
            payload,
            properties,
        ));
        if let Err(error) = published {
            log::warn!(
                "cannot publish reply to {}: {error}",
                escaped(route.topic())
            );
        }
    }

    fn emptied(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.outbox.emptied())
    }
}

/// Publishes a JSON document with QoS 1 and the JSON content type.
pub(crate) async fn publish_json(
    client: &AsyncClient,
    topic: &str,
    qos: QoS,
    retain: bool,
    body: Vec<u8>,
) -> Result<(), rumqttc::v5::ClientError> {
    let properties = PublishProperties {
        content_type: Some(JSON.to_string()),
        ..PublishProperties::default()
    };
    client
        .publish_with_properties(topic.to_string(), qos, retain, body, properties)
        .await
}

/// A bundle command as read off the socket, for the fleet thread.
pub(crate) struct CommandJob {
    /// The topic part after `bundles/`.
    pub command: String,
    pub payload: Bytes,
    /// The v5 Response Topic, unchecked; `None` means look for `reply_to` in the body.
    pub route: Option<RequestedRoute>,
    pub(crate) acknowledge: Acknowledge,
}

/// The connection loop: routes incoming briefs and bundle commands, keeps subscriptions and the
/// retained state up, and reconnects with jittered exponential backoff until `cancel` fires.
pub(crate) struct Connection {
    pub client: AsyncClient,
    pub topics: Topics,
    pub(crate) pipeline: Arc<Pipeline>,
    /// Bundle commands go here, one at a time, in arrival order.
    pub commands: flume::Sender<CommandJob>,
    /// The retained state, republished on every connection.
    pub state: Arc<crate::state::StateBoard>,
    /// Pool peers' state messages go here when this appliance may adopt their sessions.
    pub(crate) peer_states: Option<tokio::sync::mpsc::UnboundedSender<adoption::PeerUpdate>>,
    /// Shared with the reply sink, which must stay within it.
    pub(crate) broker_limit: BrokerLimit,
    /// Where replies and acknowledgements made on the runtime's thread wait for room.
    pub(crate) outbox: Arc<Outbox>,
}

impl Connection {
    /// Runs until cancelled; returns the event loop so shutdown can flush through it.
    pub async fn run(&self, mut eventloop: EventLoop, cancel: CancellationToken) -> EventLoop {
        let mut backoff = Backoff::new();
        let mut connected_once = false;
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return eventloop,
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if ack.code != ConnectReturnCode::Success {
                        log::error!("broker refused the connection: {:?}", ack.code);
                        continue;
                    }
                    backoff.reset();
                    self.broker_limit
                        .set(ack.properties.as_ref().and_then(|p| p.max_packet_size));
                    log::info!(
                        "connected to the broker (session present: {})",
                        ack.session_present
                    );
                    connected_once = true;
                    self.on_connected(ack.session_present).await;
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => self.route(publish),
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if let Some(refused) = ack
                        .return_codes
                        .iter()
                        .find(|code| !matches!(code, SubscribeReasonCode::Success(_)))
                    {
                        log::error!(
                            "the broker refused a subscription ({refused:?}); check its ACL"
                        );
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    let delay = backoff.next_delay();
                    if connected_once {
                        log::warn!(
                            "broker connection lost ({}); retrying in {} ms",
                            describe(&error),
                            delay.as_millis()
                        );
                    } else {
                        log::warn!(
                            "cannot reach the broker ({}); retrying in {} ms",
                            describe(&error),
                            delay.as_millis()
                        );
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return eventloop,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn on_connected(&self, session_present: bool) {
        // Subscriptions survive in a present session; (re)subscribing is still harmless and
        // covers a broker that lost its state.
        let _ = session_present;
        // try_*: this runs inside the event-loop task, so awaiting room in a request channel
        // filled during an outage would wait for the very loop that empties it.
        let peer_filter = self
            .peer_states
            .as_ref()
            .map(|_| self.topics.peer_states_filter());
        for filter in self
            .topics
            .brief_filters()
            .into_iter()
            .chain(self.topics.bundle_filters())
            .chain(peer_filter)
        {
            if let Err(error) = self.client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                log::error!("cannot subscribe to {filter}: {error}");
            }
        }
        let published = self.client.try_publish_with_properties(
            self.topics.state.clone(),
            QoS::AtLeastOnce,
            true,
            self.state.render_current(),
            state_properties(&self.topics.pools),
        );
        if let Err(error) = published {
            log::error!("cannot publish state: {error}");
        }
    }

    fn route(&self, publish: Publish) {
        let arrived = Instant::now();
        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
        if self.topics.is_brief_topic(&topic) {
            let acknowledge = self.acknowledger(&publish);
            self.pipeline
                .submit(brief_job(&publish, arrived, Some(acknowledge)));
        } else if let Some(device) = self.topics.state_device(&topic) {
            if device != self.topics.device {
                if let Some(peer_states) = &self.peer_states {
                    let update = adoption::PeerUpdate::read(device, &publish);
                    // The coordinator ends only at shutdown, when nobody needs the update.
                    let _ = peer_states.send(update);
                }
            }
            self.acknowledge_now(&publish);
        } else if let Some(command) = self.topics.bundle_command(&topic) {
            let properties = publish.properties.clone().unwrap_or_default();
            let job = CommandJob {
                command: command.to_string(),
                payload: publish.payload.clone(),
                route: reply_route(&properties),
                acknowledge: self.acknowledger(&publish),
            };
            // The fleet thread takes commands one at a time, in arrival order, and acknowledges
            // each once handled. Never block the event loop on it, and never leave a QoS 1
            // command unacknowledged here: a broker redelivers it only on the next reconnection,
            // so a push whose chunks outran the fleet thread stalled until then. The broker's
            // Receive Maximum bounds what QoS 1 can queue; QoS 0 (at most once) is dropped past
            // COMMAND_QUEUE waiting.
            let at_most_once = publish.qos == QoS::AtMostOnce;
            let refused = if at_most_once && self.commands.len() >= crate::daemon::COMMAND_QUEUE {
                Some("command queue full")
            } else {
                self.commands.send(job).err().map(|_| "shutting down")
            };
            if let Some(reason) = refused {
                log::warn!("bundle command on {} not taken ({reason})", escaped(&topic));
            }
        } else {
            log::warn!("message on unexpected topic {} ignored", escaped(&topic));
            self.acknowledge_now(&publish);
        }
    }

    /// Acknowledges the delivery once called (from any thread).
    fn acknowledger(&self, publish: &Publish) -> Acknowledge {
        let publish = acknowledgement_of(publish);
        let client = self.client.clone();
        let outbox = self.outbox.clone();
        let runtime = Handle::current();
        Box::new(move || {
            // Off the runtime (workers, the fleet thread) wait for room in the request channel;
            // on it (briefs answered on the connection's thread, or refused under overload)
            // never wait: the outbox keeps it behind its reply.
            if Handle::try_current().is_ok() {
                outbox.send(Deferred::Ack(publish));
            } else if let Err(error) = runtime.block_on(client.ack(&publish)) {
                log::warn!("cannot acknowledge a message: {error}");
            }
        })
    }

    fn acknowledge_now(&self, publish: &Publish) {
        self.outbox.send(Deferred::Ack(acknowledgement_of(publish)));
    }
}

/// What acknowledging a delivery needs (its packet id and QoS), without the payload that a
/// pending acknowledgement would otherwise keep in memory.
pub(crate) fn acknowledgement_of(publish: &Publish) -> Publish {
    Publish {
        dup: publish.dup,
        qos: publish.qos,
        retain: false,
        topic: Bytes::new(),
        pkid: publish.pkid,
        payload: Bytes::new(),
        properties: None,
    }
}

/// The way back a request asks for in its properties: Response Topic and Correlation Data, as
/// sent; whether packd may publish there is decided by the reply prefix before any reply.
fn reply_route(properties: &PublishProperties) -> Option<RequestedRoute> {
    properties
        .response_topic
        .clone()
        .map(|topic| RequestedRoute {
            topic,
            correlation: properties.correlation_data.clone(),
        })
}

/// A delivered brief as the pipeline takes it; `acknowledge` runs once it is answered.
pub(crate) fn brief_job(
    publish: &Publish,
    arrived: Instant,
    acknowledge: Option<Acknowledge>,
) -> Job {
    let properties = publish.properties.clone().unwrap_or_default();
    // An oversized brief is answered `too_large` without keeping its bytes queued. Others are
    // copied out of the receive buffer: a slice of it would keep the whole buffer alive (8 MiB
    // after a 6 MiB brief), so the queue's byte budget would count a fraction of what it holds.
    let (payload, oversized) = if publish.payload.len() > crate::brief::MAX_PAYLOAD_BYTES {
        (Bytes::new(), Some(publish.payload.len()))
    } else {
        (Bytes::copy_from_slice(&publish.payload), None)
    };
    let expires = properties
        .message_expiry_interval
        .map(|seconds| arrived + Duration::from_secs(u64::from(seconds)));
    Job {
        payload,
        oversized,
        // Correlation data is a slice of the receive buffer too; the route lives as long as the
        // brief does.
        route: reply_route(&properties).map(|route| RequestedRoute {
            correlation: route.correlation.map(|data| Bytes::copy_from_slice(&data)),
            ..route
        }),
        arrived,
        expires,
        acknowledge,
    }
}

fn describe(error: &ConnectionError) -> String {
    error.to_string()
}

/// Exponential backoff from 250 ms to 30 s with ±25 % jitter, so a fleet does not reconnect in step.
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { attempt: 0 }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_delay(&mut self) -> Duration {
        let base_ms = (250u64 << self.attempt.min(7)).min(30_000);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = fastrand::u64(0..=base_ms / 2);
        Duration::from_millis(base_ms - base_ms / 4 + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            BrokerAddress {
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(
            parse_url("mqtts://broker.local").unwrap(),
            BrokerAddress {
                host: "broker.local".into(),
                port: 8883,
                tls: true
            }
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1884").unwrap(),
            BrokerAddress {
                host: "::1".into(),
                port: 1884,
                tls: false
            }
        );
        for bad in [
            "http://x",
            "mqtt://",
            "mqtt://host:notaport",
            "host:1883",
            "mqtt://host/path",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        assert!(
            first >= Duration::from_millis(187) && first <= Duration::from_millis(313),
            "{first:?}"
        );
        for _ in 0..20 {
            backoff.next_delay();
        }
        let capped = backoff.next_delay();
        assert!(capped <= Duration::from_millis(37_500), "{capped:?}");
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(313));
    }
}
