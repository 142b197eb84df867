//! One MQTT v5 connection to the broker for bundle commands: JSON requests with a Response Topic
//! and Correlation Data, replies collected per appliance, and chunk publishes whose broker
//! acknowledgements are counted (for the progress bar and to know when every chunk is out).
//!
//! A lost connection ends the session ([`Lost`]); the caller opens a new one and resumes. A fresh
//! session rather than re-polling the old event loop means nothing queued for the dead
//! connection is replayed on the new one, and the acknowledgement count starts from zero.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::answer::Answer;
use crate::Appliance;

/// Requests queued towards the event loop before a publisher waits: a small window keeps the
/// progress bar honest (it counts chunks the broker acknowledged).
const REQUEST_CHANNEL: usize = 8;
/// Longest wait for the broker's CONNACK and SUBACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a bundle command goes: one appliance, or every appliance of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Device(String),
    Pool(String),
}

impl Target {
    /// `{prefix}/devices/{device}/bundles/{command}` or `{prefix}/pools/{pool}/bundles/{command}`.
    pub(crate) fn topic(&self, prefix: &str, command: &str) -> String {
        match self {
            Target::Device(device) => format!("{prefix}/devices/{device}/bundles/{command}"),
            Target::Pool(pool) => format!("{prefix}/pools/{pool}/bundles/{command}"),
        }
    }

    /// How it reads in messages: `device 'orin-17'` or `pool 'store-9'`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Target::Device(device) => format!("device '{device}'"),
            Target::Pool(pool) => format!("pool '{pool}'"),
        }
    }
}

/// Checks a device id or pool name for use in a topic.
pub(crate) fn check_topic_level(kind: &str, value: &str) -> anyhow::Result<()> {
    if value.is_empty() || value.contains(['/', '+', '#']) || value.contains('\0') {
        anyhow::bail!("{kind} '{value}' must be non-empty and contain no '/', '+' or '#'");
    }
    Ok(())
}

/// The connection dropped (or stopped answering); the message says how.
#[derive(Debug)]
pub(crate) struct Lost(pub(crate) String);

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection to the broker lost: {}", self.0)
    }
}

impl std::error::Error for Lost {}

/// Which replies a request waits for.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// These appliances (one reply each); done when all have answered.
    Devices(BTreeSet<String>),
    /// Whoever of a pool answers: done when `count` have answered, or (without a count) when no
    /// new reply came for the quiet period after the first one.
    Pool { count: Option<usize> },
}

/// How long to wait for replies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait {
    /// The whole wait, from the request.
    pub(crate) timeout: Duration,
    /// For [`Expect::Pool`] without a count: how long after the latest reply to stop.
    pub(crate) quiet: Duration,
}

enum SessionEvent {
    Subscribed,
    Reply {
        correlation: Option<Bytes>,
        payload: Bytes,
    },
    Lost(String),
}

/// A connected client with its reply subscription in place.
pub(crate) struct Session {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<SessionEvent>,
    acked: Arc<AtomicU64>,
    ack_notify: Arc<Notify>,
    published: u64,
    reply_topic: String,
    client_id: String,
    next_correlation: u64,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Session {
    /// Connects, subscribes to its [`Appliance::reply_topic`] and waits for the SUBACK.
    pub(crate) async fn connect(appliance: &Appliance, client_id: &str) -> anyhow::Result<Session> {
        let options = appliance.options(client_id)?;
        let (client, eventloop) = AsyncClient::new(options, REQUEST_CHANNEL);
        let (sender, events) = mpsc::unbounded_channel();
        let acked = Arc::new(AtomicU64::new(0));
        let ack_notify = Arc::new(Notify::new());
        let reply_topic = appliance.reply_topic(client_id);
        let driver = tokio::spawn(drive(
            eventloop,
            sender,
            Arc::clone(&acked),
            Arc::clone(&ack_notify),
            reply_topic.clone(),
        ));
        let mut session = Session {
            client,
            events,
            acked,
            ack_notify,
            published: 0,
            reply_topic,
            client_id: client_id.to_string(),
            next_correlation: 0,
            driver,
        };
        let url = &appliance.broker_url;
        session
            .client
            .subscribe(session.reply_topic.clone(), QoS::AtLeastOnce)
            .await
            .map_err(|error| anyhow::anyhow!("cannot connect to the broker at {url}: {error}"))?;
        let subscribed = tokio::time::timeout(CONNECT_TIMEOUT, async {
            loop {
                match session.events.recv().await {
                    Some(SessionEvent::Subscribed) => return Ok(()),
                    Some(SessionEvent::Lost(error)) => return Err(error),
                    Some(SessionEvent::Reply { .. }) => {}
                    None => return Err("the MQTT event loop stopped".to_string()),
                }
            }
        })
        .await;
        match subscribed {
            Ok(Ok(())) => Ok(session),
            Ok(Err(error)) => anyhow::bail!("cannot connect to the broker at {url}: {error}"),
            Err(_) => anyhow::bail!(
                "cannot connect to the broker at {url}: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        }
    }

    /// Publishes a JSON request (QoS 1) with our Response Topic and a fresh Correlation Data,
    /// which it returns for [`Session::collect`].
    pub(crate) async fn request(&mut self, topics: &[String], body: &Value) -> Result<Bytes, Lost> {
        self.next_correlation += 1;
        let correlation = Bytes::from(format!("{}-{}", self.client_id, self.next_correlation));
        self.request_with(topics, body, &correlation).await?;
        Ok(correlation)
    }

    /// Like [`Session::request`] with a given Correlation Data (one per round of requests).
    /// Bodies are built from the API's types and go out as a `Value`, whose keys serialise
    /// sorted: the bytes packctl has always sent.
    pub(crate) async fn request_with(
        &mut self,
        topics: &[String],
        body: &Value,
        correlation: &Bytes,
    ) -> Result<(), Lost> {
        let payload = Bytes::from(serde_json::to_vec(body).map_err(|e| Lost(e.to_string()))?);
        for topic in topics {
            let properties = PublishProperties {
                response_topic: Some(self.reply_topic.clone()),
                correlation_data: Some(correlation.clone()),
                content_type: Some("application/json".into()),
                ..PublishProperties::default()
            };
            self.client
                .publish_bytes_with_properties(
                    topic.clone(),
                    QoS::AtLeastOnce,
                    false,
                    payload.clone(),
                    properties,
                )
                .await
                .map_err(|error| self.lost(error))?;
            self.published += 1;
        }
        Ok(())
    }

    /// A fresh Correlation Data for [`Session::request_with`].
    pub(crate) fn correlation(&mut self) -> Bytes {
        self.next_correlation += 1;
        Bytes::from(format!("{}-{}", self.client_id, self.next_correlation))
    }

    /// Publishes raw bytes (QoS 1, no reply expected).
    pub(crate) async fn publish_raw(&mut self, topic: String, payload: Bytes) -> Result<(), Lost> {
        self.client
            .publish_bytes(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|error| self.lost(error))?;
        self.published += 1;
        Ok(())
    }

    /// PUBACKs received so far in this session.
    pub(crate) fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }

    /// Whether the connection is known to be gone (the event loop reported an error).
    pub(crate) fn check_alive(&mut self) -> Result<(), Lost> {
        loop {
            match self.events.try_recv() {
                Ok(SessionEvent::Lost(error)) => return Err(Lost(error)),
                Ok(_) => {}
                Err(mpsc::error::TryRecvError::Empty) => return Ok(()),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    return Err(Lost("the MQTT event loop stopped".into()))
                }
            }
        }
    }

    /// Waits until the broker acknowledged every publish of this session, calling `progress`
    /// with the acknowledgement count as it grows.
    pub(crate) async fn wait_acked(
        &mut self,
        timeout: Duration,
        mut progress: impl FnMut(u64),
    ) -> Result<(), Lost> {
        let deadline = Instant::now() + timeout;
        loop {
            let acked = self.acked();
            progress(acked);
            if acked >= self.published {
                return Ok(());
            }
            self.check_alive()?;
            let notified = self.ack_notify.notified();
            tokio::select! {
                _ = notified => {}
                event = self.events.recv() => match event {
                    Some(SessionEvent::Lost(error)) => return Err(Lost(error)),
                    None => return Err(Lost("the MQTT event loop stopped".into())),
                    _ => {}
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Lost(format!(
                        "the broker acknowledged {} of {} messages within {} s",
                        self.acked(),
                        self.published,
                        timeout.as_secs()
                    )));
                }
            }
        }
    }

    /// Collects the replies carrying `correlation`, by appliance, as `expect` and `wait` say.
    /// Appliances that do not answer in time are simply absent from the result.
    pub(crate) async fn collect(
        &mut self,
        correlation: &Bytes,
        expect: &Expect,
        wait: Wait,
    ) -> Result<BTreeMap<String, Answer>, Lost> {
        let started = Instant::now();
        let deadline = started + wait.timeout;
        let mut replies = BTreeMap::new();
        let mut last_reply: Option<Instant> = None;
        loop {
            let done = match expect {
                Expect::Devices(devices) => devices.iter().all(|d| replies.contains_key(d)),
                Expect::Pool { count: Some(count) } => replies.len() >= *count,
                Expect::Pool { count: None } => false,
            };
            if done {
                return Ok(replies);
            }
            let until = match (expect, last_reply) {
                (Expect::Pool { count: None }, Some(last)) => (last + wait.quiet).min(deadline),
                _ => deadline,
            };
            let event = tokio::select! {
                event = self.events.recv() => event,
                _ = tokio::time::sleep_until(until) => return Ok(replies),
            };
            match event {
                Some(SessionEvent::Reply {
                    correlation: Some(got),
                    payload,
                }) if got == *correlation => {
                    let answer = Answer::from_payload(&payload);
                    let device = match expect {
                        // A device topic is answered by that device, whatever it calls itself.
                        Expect::Devices(devices) if devices.len() == 1 => {
                            devices.iter().next().cloned().unwrap_or_default()
                        }
                        _ => answer.device().unwrap_or("(unnamed)").to_string(),
                    };
                    if let Expect::Devices(devices) = expect {
                        if !devices.contains(&device) {
                            continue;
                        }
                    }
                    // The first answer counts; a redelivered duplicate does not replace it.
                    replies.entry(device).or_insert(answer);
                    last_reply = Some(Instant::now());
                }
                Some(SessionEvent::Lost(error)) => return Err(Lost(error)),
                None => return Err(Lost("the MQTT event loop stopped".into())),
                Some(_) => {}
            }
        }
    }

    /// Says goodbye to the broker (best effort).
    pub(crate) async fn disconnect(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.client.disconnect().await;
            // Let the event loop send it; it ends with an error once the connection closes.
            while let Some(event) = self.events.recv().await {
                if matches!(event, SessionEvent::Lost(_)) {
                    break;
                }
            }
        })
        .await;
    }

    fn lost(&mut self, error: rumqttc::v5::ClientError) -> Lost {
        // The client fails once the event loop is gone; its reason is on the event channel.
        match self.check_alive() {
            Err(lost) => lost,
            Ok(()) => Lost(error.to_string()),
        }
    }
}

/// Polls the event loop until it fails (then the session is over).
async fn drive(
    mut eventloop: EventLoop,
    events: mpsc::UnboundedSender<SessionEvent>,
    acked: Arc<AtomicU64>,
    ack_notify: Arc<Notify>,
    reply_topic: String,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let _ = events.send(SessionEvent::Subscribed);
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked.fetch_add(1, Ordering::AcqRel);
                ack_notify.notify_one();
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if publish.topic.as_ref() == reply_topic.as_bytes() {
                    let correlation = publish
                        .properties
                        .as_ref()
                        .and_then(|properties| properties.correlation_data.clone());
                    let _ = events.send(SessionEvent::Reply {
                        correlation,
                        payload: publish.payload,
                    });
                }
            }
            Ok(Event::Incoming(Packet::Disconnect(disconnect))) => {
                let _ = events.send(SessionEvent::Lost(format!(
                    "the broker disconnected us ({:?})",
                    disconnect.reason_code
                )));
                return;
            }
            Ok(_) => {}
            Err(error) => {
                let _ = events.send(SessionEvent::Lost(error.to_string()));
                return;
            }
        }
    }
}
