//! Session adoption by a pool peer: real failover on a broker that does not redistribute.
//!
//! mosquitto 2.0 keeps an offline member's persistent session in its pools' share groups: the
//! briefs it had in flight stay there unacknowledged, and it goes on queueing that member's share
//! of new pool briefs there until the member comes back or the session expires. So when a pool
//! peer goes offline, one live member (the lowest device id among the live members that share a
//! pool with it, so that two survivors never fight over it) connects with the peer's client id,
//! resumes its session and answers those briefs through its own pipeline. Whatever is not a brief
//! of a pool it serves or of the peer's device topic (bundle commands above all) it leaves
//! unacknowledged, so the broker keeps it in the session for the peer. When the peer connects
//! again the broker hands the session back to it and closes the adopter's connection, which is
//! never reopened; an adopter that sees the peer online first steps aside by itself.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{DisconnectReasonCode, Packet, Publish};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, StateError};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    acknowledgement_of, brief_job, client_id, session_options, Topics, TransportError,
    REQUEST_CHANNEL,
};
use crate::config::MqttConfig;
use crate::serve::{Acknowledge, Pipeline};

/// How long an adopter that steps aside waits for the briefs it took to be answered, so that
/// their acknowledgements reach the broker before it disconnects.
const STEP_ASIDE_DRAIN: Duration = Duration::from_secs(5);
/// Longest wait before trying again to adopt a peer that is still offline.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// Shortest one, so that a zero grace delay cannot spin on a broker that keeps refusing us.
const MIN_RETRY_DELAY: Duration = Duration::from_secs(1);
/// How often adopted briefs waiting for room in the work queue look for it.
const FEED_INTERVAL: Duration = Duration::from_millis(5);

/// What a peer's retained state says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerStatus {
    /// `online` or `degraded`: connected, holding its own session.
    Live,
    /// `offline`: its will or its clean shutdown.
    Offline,
    /// The retained state was cleared (the appliance was retired).
    Gone,
    /// Not a state document this version understands; ignored.
    Unreadable,
}

/// One state message of another appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerUpdate {
    pub device: String,
    pub status: PeerStatus,
    /// From the [`STATE_POOL_PROPERTY`] user properties.
    pub pools: BTreeSet<String>,
}

impl PeerUpdate {
    /// Reads a message delivered on `device`'s state topic.
    pub fn read(device: &str, publish: &Publish) -> PeerUpdate {
        let status = if publish.payload.is_empty() {
            PeerStatus::Gone
        } else {
            let document: Option<serde_json::Value> = serde_json::from_slice(&publish.payload).ok();
            match document
                .as_ref()
                .and_then(|document| document.get("status"))
                .and_then(|status| status.as_str())
            {
                Some("online" | "degraded") => PeerStatus::Live,
                Some("offline") => PeerStatus::Offline,
                _ => PeerStatus::Unreadable,
            }
        };
        let pools = packd_wire::state::pools_named(
            publish
                .properties
                .iter()
                .flat_map(|properties| properties.user_properties.iter()),
        );
        PeerUpdate {
            device: device.to_string(),
            status,
            pools,
        }
    }
}

/// What this appliance knows of one peer.
#[derive(Debug, Clone)]
struct Peer {
    live: bool,
    pools: BTreeSet<String>,
    /// When we saw its liveness change last (or first saw it).
    since: Instant,
}

/// When a peer that is still offline may be adopted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    After {
        attempts: u32,
        not_before: Instant,
    },
    /// Not before its state changes (it has no session to adopt, or we cannot connect for it).
    UntilItChanges,
}

/// Whether an ended adoption is worth trying again while the peer stays offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterEnd {
    RetryLater,
    WaitForChange,
}

/// Adoptions to start and stop now, and when to look again.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub start: Vec<String>,
    pub stop: Vec<(String, &'static str)>,
    pub(crate) next_check: Option<Instant>,
}

/// The election: which offline peers this appliance should hold the sessions of, and when.
#[derive(Debug)]
pub(crate) struct Elector {
    me: String,
    my_pools: BTreeSet<String>,
    grace: Duration,
    peers: HashMap<String, Peer>,
    retries: HashMap<String, Retry>,
}

impl Elector {
    /// An elector for appliance `me` serving `my_pools`.
    pub fn new(me: &str, my_pools: &[String], grace: Duration) -> Elector {
        Elector {
            me: me.to_string(),
            my_pools: my_pools.iter().cloned().collect(),
            grace,
            peers: HashMap::new(),
            retries: HashMap::new(),
        }
    }

    /// Takes in a peer's state message.
    pub(crate) fn observe(&mut self, update: PeerUpdate, now: Instant) {
        if update.device == self.me {
            return;
        }
        let live = match update.status {
            PeerStatus::Live => true,
            PeerStatus::Offline => false,
            PeerStatus::Gone => {
                self.peers.remove(&update.device);
                self.retries.remove(&update.device);
                return;
            }
            PeerStatus::Unreadable => return,
        };
        let changed = self
            .peers
            .get(&update.device)
            .is_none_or(|peer| peer.live != live);
        if changed {
            self.retries.remove(&update.device);
        }
        let since = match self.peers.get(&update.device) {
            Some(peer) if !changed => peer.since,
            _ => now,
        };
        self.peers.insert(
            update.device,
            Peer {
                live,
                pools: update.pools,
                since,
            },
        );
    }

    /// Records that our adoption of `device` ended.
    pub fn ended(&mut self, device: &str, after: AfterEnd, now: Instant) {
        let retry = match after {
            AfterEnd::WaitForChange => Retry::UntilItChanges,
            AfterEnd::RetryLater => {
                let attempts = match self.retries.get(device) {
                    Some(Retry::After { attempts, .. }) => attempts.saturating_add(1),
                    _ => 0,
                };
                let delay = self
                    .grace
                    .max(MIN_RETRY_DELAY)
                    .saturating_mul(2u32.saturating_pow(attempts.min(16)))
                    .min(MAX_RETRY_DELAY);
                Retry::After {
                    attempts,
                    not_before: now + delay,
                }
            }
        };
        self.retries.insert(device.to_string(), retry);
    }

    /// The pools `device` was last seen serving, if we know it.
    pub(crate) fn pools_of(&self, device: &str) -> Option<&BTreeSet<String>> {
        self.peers.get(device).map(|peer| &peer.pools)
    }

    /// When `device` was seen going offline.
    pub(crate) fn offline_since(&self, device: &str) -> Option<Instant> {
        self.peers
            .get(device)
            .filter(|peer| !peer.live)
            .map(|peer| peer.since)
    }

    /// The member that should hold offline `device`'s session: the lowest device id among the
    /// live members sharing a pool with it, this appliance included when it does.
    pub(crate) fn adopter_of(&self, device: &str) -> Option<&str> {
        let pools = &self.peers.get(device)?.pools;
        let shares = |other: &BTreeSet<String>| !other.is_disjoint(pools);
        let me = shares(&self.my_pools).then_some(self.me.as_str());
        let others = self
            .peers
            .iter()
            .filter(|(other, peer)| other.as_str() != device && peer.live && shares(&peer.pools))
            .map(|(other, _)| other.as_str());
        me.into_iter().chain(others).min()
    }

    /// What to do now, given the adoptions running.
    pub fn plan(&self, running: &BTreeSet<String>, now: Instant) -> Plan {
        let mut plan = Plan::default();
        let mut wake = |at: Instant| {
            plan.next_check = Some(plan.next_check.map_or(at, |next: Instant| next.min(at)));
        };
        let mut start = Vec::new();
        for (device, peer) in &self.peers {
            if peer.live || running.contains(device) {
                continue;
            }
            if self.adopter_of(device) != Some(self.me.as_str()) {
                continue;
            }
            let due = match self.retries.get(device) {
                Some(Retry::UntilItChanges) => continue,
                Some(Retry::After { not_before, .. }) => (peer.since + self.grace).max(*not_before),
                None => peer.since + self.grace,
            };
            if due <= now {
                start.push(device.clone());
            } else {
                wake(due);
            }
        }
        start.sort();
        plan.start = start;
        for device in running {
            let reason = match self.peers.get(device) {
                None => Some("its state was cleared"),
                Some(peer) if peer.live => Some("it is back online"),
                Some(_) if self.adopter_of(device) != Some(self.me.as_str()) => {
                    Some("a member with a lower device id now holds it")
                }
                Some(_) => None,
            };
            if let Some(reason) = reason {
                plan.stop.push((device.clone(), reason));
            }
        }
        plan
    }
}

/// Why an adoption ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdoptionEnd {
    #[error("stepped aside: {0}")]
    SteppedAside(&'static str),
    #[error("the broker handed the session to another connection (session taken over)")]
    TakenOver,
    /// mosquitto 2.0 closes a connection whose session is taken over without a DISCONNECT, so
    /// the owner coming back looks like this too.
    #[error("the broker closed the connection ({0})")]
    Closed(String),
    #[error("the broker refused the connection ({0})")]
    Refused(String),
    #[error("the broker holds no session for it")]
    NoSession,
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl AdoptionEnd {
    /// The journal's `PACKD_REASON`.
    pub fn code(&self) -> &'static str {
        match self {
            AdoptionEnd::SteppedAside(_) => "stepped_aside",
            AdoptionEnd::TakenOver => "taken_over",
            AdoptionEnd::Closed(_) => "closed",
            AdoptionEnd::Refused(_) => "refused",
            AdoptionEnd::NoSession => "no_session",
            AdoptionEnd::Transport(_) => "transport",
        }
    }

    fn after(&self) -> AfterEnd {
        match self {
            AdoptionEnd::NoSession | AdoptionEnd::Transport(_) => AfterEnd::WaitForChange,
            _ => AfterEnd::RetryLater,
        }
    }
}

/// What an adopter does with one message of the adopted session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    /// A brief of the peer's device topic or of a pool we serve.
    Answer,
    /// Done with at once (a state message of the peer's peer-state subscription).
    Acknowledge,
    /// Left unacknowledged for the peer: bundle commands, other pools' briefs, and whatever
    /// arrives while stepping aside.
    Leave,
}

/// Counts of one adoption, for its closing journal record.
#[derive(Debug, Default)]
struct Tally {
    /// Briefs taken from the session and answered (or refused) by our pipeline.
    answered: AtomicU64,
    /// Of those, the ones the broker redelivered: the peer had them in flight when it went.
    redelivered: AtomicU64,
    /// Messages left unacknowledged for the peer (bundle commands, other pools' briefs, and
    /// whatever arrived while stepping aside).
    left: AtomicU64,
}

/// Briefs handed to the pipeline and not yet answered; each holds a [`Taken`].
#[derive(Debug, Default)]
struct Outstanding {
    count: AtomicUsize,
    changed: Notify,
}

/// One outstanding brief; dropping it (answered, or dropped by a pipeline that is stopping)
/// counts it off.
struct Taken(Arc<Outstanding>);

impl Taken {
    fn new(outstanding: &Arc<Outstanding>) -> Taken {
        outstanding.count.fetch_add(1, Ordering::SeqCst);
        Taken(outstanding.clone())
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_one();
    }
}

/// What adoptions need from the daemon.
pub(crate) struct AdoptionSettings {
    pub mqtt: MqttConfig,
    /// This appliance's topics (its pools decide which pool briefs it answers).
    pub topics: Topics,
    pub grace: Duration,
    /// The Receive Maximum to announce, as for our own session.
    pub in_flight_capacity: usize,
}

struct Context {
    settings: AdoptionSettings,
    pipeline: Arc<Pipeline>,
    runtime: Handle,
}

struct Running {
    stop: Option<oneshot::Sender<&'static str>>,
    task: JoinHandle<()>,
}

/// Watches the pool peers and runs the adoptions this appliance is elected for.
pub(crate) struct Adoptions {
    context: Arc<Context>,
    elector: Elector,
    running: HashMap<String, Running>,
    /// Each adoption task says here, when it ends, whether to try again.
    ended_sender: mpsc::UnboundedSender<(String, AfterEnd)>,
    ended: mpsc::UnboundedReceiver<(String, AfterEnd)>,
}

impl Adoptions {
    /// Adoptions answering through `pipeline`.
    pub fn new(settings: AdoptionSettings, pipeline: Arc<Pipeline>) -> Adoptions {
        let elector = Elector::new(
            &settings.topics.device,
            &settings.topics.pools,
            settings.grace,
        );
        let (ended_sender, ended) = mpsc::unbounded_channel();
        Adoptions {
            context: Arc::new(Context {
                settings,
                pipeline,
                runtime: Handle::current(),
            }),
            elector,
            running: HashMap::new(),
            ended_sender,
            ended,
        }
    }

    /// Runs until `stop`: takes in peer states, starts and ends adoptions. No adoption starts
    /// once `no_new` is cancelled (the daemon is draining); at `stop` every adoption steps aside
    /// and its connection is closed.
    pub async fn run(
        mut self,
        mut peer_states: mpsc::UnboundedReceiver<PeerUpdate>,
        no_new: CancellationToken,
        stop: CancellationToken,
    ) {
        loop {
            let now = Instant::now();
            let running: BTreeSet<String> = self.running.keys().cloned().collect();
            let plan = self.elector.plan(&running, now);
            for (device, reason) in plan.stop {
                self.step_aside(&device, reason);
            }
            if !no_new.is_cancelled() {
                for device in plan.start {
                    self.start(device);
                }
            }
            let wake = plan
                .next_check
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = no_new.cancelled(), if !no_new.is_cancelled() => {}
                update = peer_states.recv() => match update {
                    Some(update) => self.elector.observe(update, Instant::now()),
                    None => break,
                },
                Some((device, after)) = self.ended.recv() => {
                    if let Some(running) = self.running.remove(&device) {
                        let _ = running.task.await;
                    }
                    self.elector.ended(&device, after, Instant::now());
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        let running: Vec<String> = self.running.keys().cloned().collect();
        for device in &running {
            self.step_aside(device, "packd is shutting down");
        }
        for (_, running) in self.running.drain() {
            let _ = running.task.await;
        }
    }

    fn start(&mut self, device: String) {
        let pools = self
            .elector
            .pools_of(&device)
            .map(|pools| pools.iter().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let offline_for = self
            .elector
            .offline_since(&device)
            .map(|since| since.elapsed())
            .unwrap_or_default();
        let (stop, stopped) = oneshot::channel();
        let context = self.context.clone();
        let ended = self.ended_sender.clone();
        let peer = device.clone();
        let task = tokio::spawn(async move {
            let session = AdoptedSession::new(context, &peer, &pools);
            let tally = session.tally.clone();
            let end = session.serve(stopped, offline_for).await;
            log_end(&peer, &end, &tally);
            let _ = ended.send((peer, end.after()));
        });
        self.running.insert(
            device,
            Running {
                stop: Some(stop),
                task,
            },
        );
    }

    fn step_aside(&mut self, device: &str, reason: &'static str) {
        if let Some(stop) = self
            .running
            .get_mut(device)
            .and_then(|running| running.stop.take())
        {
            let _ = stop.send(reason);
        }
    }
}

fn log_end(peer: &str, end: &AdoptionEnd, tally: &Tally) {
    let answered = tally.answered.load(Ordering::SeqCst);
    let redelivered = tally.redelivered.load(Ordering::SeqCst);
    let left = tally.left.load(Ordering::SeqCst);
    log::info!(
        PACKD_EVENT = "adoption_ended",
        PACKD_PEER = peer,
        PACKD_REASON = end.code(),
        PACKD_ANSWERED = answered,
        PACKD_REDELIVERED = redelivered,
        PACKD_LEFT = left;
        "adoption of {peer}'s session ended, {end}: {answered} briefs answered \
         ({redelivered} of them redelivered from its in-flight window), {left} messages left for it"
    );
}

/// One adopted session: a connection under the peer's client id.
struct AdoptedSession {
    context: Arc<Context>,
    peer: String,
    /// The peer's topics, to recognise its device briefs and bundle commands.
    peer_topics: Topics,
    tally: Arc<Tally>,
    outstanding: Arc<Outstanding>,
}

impl AdoptedSession {
    fn new(context: Arc<Context>, peer: &str, peer_pools: &[String]) -> AdoptedSession {
        let peer_topics = Topics::new(&context.settings.topics.prefix, peer, peer_pools);
        AdoptedSession {
            context,
            peer: peer.to_string(),
            peer_topics,
            tally: Arc::default(),
            outstanding: Arc::default(),
        }
    }

    /// Serves the session until the broker ends the connection or we are told to step aside.
    async fn serve(
        &self,
        mut stop: oneshot::Receiver<&'static str>,
        offline_for: Duration,
    ) -> AdoptionEnd {
        let settings = &self.context.settings;
        // No will: the peer's own will has said it is offline, and nothing is to be said when
        // we leave. The session keeps the peer's expiry, so it outlives us for the peer.
        let options = match session_options(
            &settings.mqtt,
            &client_id(&self.peer),
            settings.in_flight_capacity,
        ) {
            Ok(options) => options,
            Err(error) => return error.into(),
        };
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CHANNEL);
        let mut stepping_aside: Option<(&'static str, tokio::time::Instant)> = None;
        // The session's backlog arrives all at once; fed into the work queue only while it is
        // at most half full, it never crowds out our own briefs into `overloaded`.
        let mut backlog: VecDeque<(Publish, Instant)> = VecDeque::new();
        let mut feed = tokio::time::interval(FEED_INTERVAL);
        feed.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut connected = false;
        loop {
            if let Some((reason, deadline)) = stepping_aside {
                if !connected {
                    // Connecting now only to leave would take the session from a returned owner.
                    return AdoptionEnd::SteppedAside(reason);
                }
                if self.outstanding.count.load(Ordering::SeqCst) == 0
                    || tokio::time::Instant::now() >= deadline
                {
                    disconnect(&client, &mut eventloop).await;
                    return AdoptionEnd::SteppedAside(reason);
                }
            }
            let draining = stepping_aside.is_some();
            let deadline = stepping_aside
                .map(|(_, deadline)| deadline)
                .unwrap_or_else(|| tokio::time::Instant::now() + STEP_ASIDE_DRAIN);
            let event = tokio::select! {
                reason = &mut stop, if !draining => {
                    let reason = reason.unwrap_or("packd is shutting down");
                    stepping_aside = Some((reason, tokio::time::Instant::now() + STEP_ASIDE_DRAIN));
                    // Not taken yet: still unacknowledged, they stay in the session.
                    self.tally.left.fetch_add(backlog.len() as u64, Ordering::SeqCst);
                    backlog.clear();
                    continue;
                }
                _ = feed.tick(), if !backlog.is_empty() && !draining => {
                    self.feed(&client, &mut backlog);
                    continue;
                }
                _ = self.outstanding.changed.notified(), if draining => continue,
                _ = tokio::time::sleep_until(deadline), if draining => continue,
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    connected = true;
                    if !ack.session_present {
                        disconnect(&client, &mut eventloop).await;
                        return AdoptionEnd::NoSession;
                    }
                    self.log_started(offline_for);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    self.take(&client, &mut backlog, publish, draining);
                }
                Ok(_) => {}
                Err(error) => return ending_of(error),
            }
        }
    }

    fn log_started(&self, offline_for: Duration) {
        log::info!(
            PACKD_EVENT = "adoption_started",
            PACKD_PEER = self.peer.as_str(),
            PACKD_OFFLINE_MS = offline_for.as_millis() as u64;
            "adopted the session of {} (offline for {} ms): answering the briefs the \
             broker holds for it until it comes back",
            self.peer,
            offline_for.as_millis()
        );
    }

    /// Takes one message delivered in the adopted session: answered, acknowledged, or left.
    fn take(
        &self,
        client: &AsyncClient,
        backlog: &mut VecDeque<(Publish, Instant)>,
        publish: Publish,
        draining: bool,
    ) {
        match self.handling_of(&publish, draining) {
            Handling::Answer => {
                backlog.push_back((publish, Instant::now()));
                self.feed(client, backlog);
            }
            Handling::Acknowledge => {
                if let Err(error) = client.try_ack(&publish) {
                    log::debug!("cannot acknowledge in {}'s session: {error}", self.peer);
                }
            }
            // Unacknowledged, it stays in the session: the peer gets it when it comes back.
            Handling::Leave => {
                self.tally.left.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// What to do with a message delivered in the adopted session.
    fn handling_of(&self, publish: &Publish, draining: bool) -> Handling {
        let topic = String::from_utf8_lossy(&publish.topic);
        if self.peer_topics.state_device(&topic).is_some() {
            // The peer's own state subscription: nothing to act on, and the peer reads every
            // retained state afresh when it subscribes again on its return.
            return Handling::Acknowledge;
        }
        let ours = topic == self.peer_topics.device_briefs
            || self.context.settings.topics.is_pool_brief_topic(&topic);
        if ours && !draining {
            return Handling::Answer;
        }
        match self.peer_topics.bundle_command(&topic) {
            Some(command) if !command.starts_with("chunk/") => log::info!(
                PACKD_EVENT = "adoption_left",
                PACKD_PEER = self.peer.as_str();
                "bundle command '{command}' for {} left in its session",
                self.peer
            ),
            _ => log::debug!("message on {topic} left in {}'s session", self.peer),
        }
        Handling::Leave
    }

    /// Hands waiting briefs to the pipeline while its queue is at most half full.
    fn feed(&self, client: &AsyncClient, backlog: &mut VecDeque<(Publish, Instant)>) {
        let pipeline = &self.context.pipeline;
        let room = pipeline.queue_capacity().div_ceil(2);
        while pipeline.queue_depth() < room {
            let Some((publish, arrived)) = backlog.pop_front() else {
                return;
            };
            let acknowledge = self.acknowledger(client, &publish);
            pipeline.submit(brief_job(&publish, arrived, Some(acknowledge)));
        }
    }

    /// Acknowledges an adopted brief once answered, on the adopted connection.
    fn acknowledger(&self, client: &AsyncClient, publish: &Publish) -> Acknowledge {
        let acknowledgement = acknowledgement_of(publish);
        let client = client.clone();
        let runtime = self.context.runtime.clone();
        let tally = self.tally.clone();
        let taken = Taken::new(&self.outstanding);
        let peer = self.peer.clone();
        Box::new(move || {
            tally.answered.fetch_add(1, Ordering::SeqCst);
            if acknowledgement.dup {
                tally.redelivered.fetch_add(1, Ordering::SeqCst);
            }
            let acknowledged = if Handle::try_current().is_ok() {
                client.try_ack(&acknowledgement)
            } else {
                runtime.block_on(client.ack(&acknowledgement))
            };
            if let Err(error) = acknowledged {
                // The session has moved on (its owner is back): the broker redelivers the brief
                // there, and it is answered once more.
                log::debug!("cannot acknowledge a brief of {peer}'s session: {error}");
            }
            drop(taken);
        })
    }
}

/// Sends DISCONNECT (normal: no will, the session stays) and lets it out.
async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop) {
    if client.try_disconnect().is_err() {
        return;
    }
    let flushed = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), flushed).await;
}

fn ending_of(error: ConnectionError) -> AdoptionEnd {
    match error {
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        }) => AdoptionEnd::TakenOver,
        ConnectionError::ConnectionRefused(code) => AdoptionEnd::Refused(format!("{code:?}")),
        other => AdoptionEnd::Closed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::STATE_POOL_PROPERTY;
    use bytes::Bytes;
    use rumqttc::v5::mqttbytes::v5::PublishProperties;
    use rumqttc::v5::mqttbytes::QoS;

    const GRACE: Duration = Duration::from_millis(1000);

    fn update(device: &str, status: PeerStatus, pools: &[&str]) -> PeerUpdate {
        PeerUpdate {
            device: device.into(),
            status,
            pools: pools.iter().map(|pool| pool.to_string()).collect(),
        }
    }

    fn elector(me: &str, pools: &[&str]) -> Elector {
        let pools: Vec<String> = pools.iter().map(|pool| pool.to_string()).collect();
        Elector::new(me, &pools, GRACE)
    }

    #[test]
    fn state_messages_read_status_and_pools_from_the_user_properties() {
        let publish = |payload: &str, pools: &[&str]| {
            let mut publish = Publish::new(
                "packd/v1/devices/b/state",
                QoS::AtLeastOnce,
                Bytes::from(payload.to_string()),
                Some(PublishProperties {
                    user_properties: pools
                        .iter()
                        .map(|pool| (STATE_POOL_PROPERTY.to_string(), pool.to_string()))
                        .chain([("other".to_string(), "x".to_string())])
                        .collect(),
                    ..PublishProperties::default()
                }),
            );
            publish.retain = true;
            publish
        };
        let offline = PeerUpdate::read("b", &publish(r#"{"status":"offline"}"#, &["s9", "s10"]));
        assert_eq!(offline, update("b", PeerStatus::Offline, &["s9", "s10"]));
        let degraded = PeerUpdate::read("b", &publish(r#"{"status":"degraded"}"#, &["s9"]));
        assert_eq!(degraded.status, PeerStatus::Live);
        assert_eq!(
            PeerUpdate::read("b", &publish("", &[])).status,
            PeerStatus::Gone
        );
        for unreadable in [
            "not json",
            "[1]",
            r#"{"status":7}"#,
            r#"{"status":"asleep"}"#,
        ] {
            assert_eq!(
                PeerUpdate::read("b", &publish(unreadable, &[])).status,
                PeerStatus::Unreadable,
                "{unreadable}"
            );
        }
    }

    #[test]
    fn the_lowest_live_member_sharing_a_pool_adopts_after_the_grace_delay() {
        let start = Instant::now();
        let mut b = elector("b", &["s9"]);
        b.observe(update("a", PeerStatus::Live, &["s9"]), start);
        b.observe(update("c", PeerStatus::Offline, &["s9"]), start);
        // a is live and lower: a adopts, not b.
        assert_eq!(b.adopter_of("c"), Some("a"));
        assert!(b.plan(&BTreeSet::new(), start + GRACE).start.is_empty());
        // a goes offline too: b adopts both, each after its own grace delay.
        let later = start + Duration::from_millis(300);
        b.observe(update("a", PeerStatus::Offline, &["s9"]), later);
        let plan = b.plan(&BTreeSet::new(), start + Duration::from_millis(500));
        assert!(plan.start.is_empty());
        assert_eq!(plan.next_check, Some(start + GRACE));
        assert_eq!(b.plan(&BTreeSet::new(), start + GRACE).start, ["c"]);
        assert_eq!(b.plan(&BTreeSet::new(), later + GRACE).start, ["a", "c"]);
        // A repeated offline state (a reconnection re-delivering the retained one) does not
        // restart the grace delay.
        b.observe(update("c", PeerStatus::Offline, &["s9"]), later + GRACE);
        assert_eq!(b.plan(&BTreeSet::new(), later + GRACE).start, ["a", "c"]);
    }

    #[test]
    fn peers_of_other_pools_and_peers_without_pools_are_left_alone() {
        let start = Instant::now();
        let mut b = elector("b", &["s9"]);
        b.observe(update("c", PeerStatus::Offline, &["s10"]), start);
        b.observe(update("d", PeerStatus::Offline, &[]), start);
        b.observe(update("b", PeerStatus::Offline, &["s9"]), start);
        assert_eq!(b.adopter_of("c"), None);
        assert!(b
            .plan(&BTreeSet::new(), start + GRACE * 10)
            .start
            .is_empty());
        // A multi-pool peer is adopted by the lowest live member of any of its pools.
        b.observe(update("a", PeerStatus::Live, &["s10"]), start);
        b.observe(update("e", PeerStatus::Offline, &["s9", "s10"]), start);
        assert_eq!(b.adopter_of("e"), Some("a"));
    }

    #[test]
    fn an_adopter_steps_aside_when_the_peer_returns_or_a_lower_member_appears() {
        let start = Instant::now();
        let mut b = elector("b", &["s9"]);
        b.observe(update("c", PeerStatus::Offline, &["s9"]), start);
        let running: BTreeSet<String> = ["c".to_string()].into();
        assert!(b.plan(&running, start + GRACE).stop.is_empty());
        b.observe(update("a", PeerStatus::Live, &["s9"]), start + GRACE);
        assert_eq!(
            b.plan(&running, start + GRACE).stop,
            [(
                "c".to_string(),
                "a member with a lower device id now holds it"
            )]
        );
        b.observe(update("a", PeerStatus::Offline, &["s9"]), start + GRACE);
        b.observe(update("c", PeerStatus::Live, &["s9"]), start + GRACE);
        assert_eq!(
            b.plan(&running, start + GRACE).stop,
            [("c".to_string(), "it is back online")]
        );
        b.observe(update("c", PeerStatus::Gone, &[]), start + GRACE);
        assert_eq!(
            b.plan(&running, start + GRACE).stop,
            [("c".to_string(), "its state was cleared")]
        );
    }

    #[test]
    fn an_ended_adoption_is_retried_with_growing_delays_until_the_peer_changes() {
        let start = Instant::now();
        let mut b = elector("b", &["s9"]);
        b.observe(update("c", PeerStatus::Offline, &["s9"]), start);
        let t1 = start + GRACE;
        b.ended("c", AfterEnd::RetryLater, t1);
        assert!(b.plan(&BTreeSet::new(), t1).start.is_empty());
        assert_eq!(b.plan(&BTreeSet::new(), t1).next_check, Some(t1 + GRACE));
        let t2 = t1 + GRACE;
        assert_eq!(b.plan(&BTreeSet::new(), t2).start, ["c"]);
        b.ended("c", AfterEnd::RetryLater, t2);
        assert_eq!(
            b.plan(&BTreeSet::new(), t2).next_check,
            Some(t2 + GRACE * 2)
        );
        b.ended("c", AfterEnd::WaitForChange, t2);
        assert_eq!(b.plan(&BTreeSet::new(), t2 + GRACE * 100), Plan::default());
        // Back online and offline again: a fresh grace delay, no memory of the failures.
        b.observe(update("c", PeerStatus::Live, &["s9"]), t2);
        b.observe(update("c", PeerStatus::Offline, &["s9"]), t2);
        assert_eq!(b.plan(&BTreeSet::new(), t2 + GRACE).start, ["c"]);
    }
}
