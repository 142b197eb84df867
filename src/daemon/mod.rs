//! The daemon's life as a value: [`Daemon::start`] loads the active bundle and starts the
//! workers, the fleet thread and the MQTT session; [`Daemon::shutdown`] stops them in named
//! stages, so in-flight briefs finish and the state topic says offline. main.rs and the
//! in-process tests drive the same value.

pub mod allocator;
mod background;
mod boot;
mod commands;
mod start;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::{AsyncClient, Event, EventLoop};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::serve::Pipeline;
use crate::state::StateBoard;
use crate::transport::{self, Connection, Topics};

/// Bundle commands the Receive Maximum makes room for, waiting for the fleet thread (and the
/// most QoS 0 commands that may wait); beyond it the broker keeps them for us.
pub(crate) const COMMAND_QUEUE: usize = 256;

/// How long the broker gets to take the last replies and the offline state.
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// The Receive Maximum packd announces: every delivery it can hold unacknowledged (the brief
/// queue, the overload queue, one brief per worker, the image threads' queue and one brief per
/// image thread, the bundle-command queue). Public because it is also the most briefs packd can
/// ever hold at once, which bounds its memory under overload (tests/overload.rs derives its RSS
/// bound from it).
pub fn in_flight_capacity(queue: usize, workers: usize) -> usize {
    queue
        + crate::serve::REJECTION_QUEUE
        + workers.max(1)
        + crate::serve::image_queue_capacity(queue)
        + crate::serve::image_workers(workers)
        + COMMAND_QUEUE
}

/// A failure that stops the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The broker connection cannot be set up or was lost for good.
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    /// The bundles directory cannot be opened, seeded or read.
    #[error("bundle store: {0}")]
    Store(#[from] crate::bundle::BundleError),
    /// Bundle management cannot start: a trusted key is unusable, or its state or thread fails.
    #[error("bundle management: {0}")]
    Fleet(String),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Runs the service until `shutdown` completes, then stops it in stages.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let daemon = Daemon::start(config).await?;
    shutdown.await;
    daemon.shutdown().await;
    Ok(())
}

/// A running packd: everything [`Daemon::shutdown`] must stop, in the order it stops them.
pub struct Daemon {
    /// The token that says packd is stopping: cancelled first, so no adoption starts; each
    /// later stage has its own token below because it must outlive the stage before it.
    stopping: CancellationToken,
    pipeline: Arc<Pipeline>,
    fleet: FleetThread,
    /// Ends adopted sessions, once the briefs adopted from them have been answered.
    adoptions_stop: CancellationToken,
    /// The adoption manager and the stats and watchdog tasks.
    tasks: TaskTracker,
    /// Ends the stats and watchdog tasks: the watchdog is fed while the briefs drain.
    tasks_stop: CancellationToken,
    session: Session,
}

/// The thread that applies bundle commands, and how to stop it between two commands.
struct FleetThread {
    stop: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

/// The MQTT session: its client, the connection task polling the event loop, and what the
/// offline state needs.
struct Session {
    client: AsyncClient,
    topics: Topics,
    state: Arc<StateBoard>,
    connection: Arc<Connection>,
    /// Stops the connection task, which hands its event loop back for the final flush.
    connection_stop: CancellationToken,
    connection_task: JoinHandle<EventLoop>,
}

impl Daemon {
    /// Boots packd: loads the active bundle (with fallbacks), connects, starts serving.
    pub async fn start(config: Config) -> Result<Daemon, DaemonError> {
        start::start(config).await
    }

    /// The device id this daemon answers as.
    pub fn device(&self) -> &str {
        &self.session.topics.device
    }

    /// Stops packd. Each stage finishes before the next begins:
    /// 1. say stopping (systemd, log); no adoption starts from here on;
    /// 2. drain the briefs: queued and in-flight ones are answered (the connection still runs);
    /// 3. stop the fleet thread after the command it is applying, which is answered;
    /// 4. end adoptions (adopted briefs were answered in stage 2);
    /// 5. end the stats and watchdog tasks, and wait for them and the adoption manager;
    /// 6. publish the offline state and disconnect;
    /// 7. flush the session through the event loop until the disconnect goes out.
    pub async fn shutdown(self) {
        self.announce_stopping();
        self.drain_briefs().await;
        self.fleet.stop_after_current_command().await;
        self.adoptions_stop.cancel();
        self.tasks_stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.session.say_offline_and_flush().await;
        log::info!("packd stopped");
    }

    /// Stage 2: answers every queued and in-flight brief while the connection still runs.
    async fn drain_briefs(&self) {
        let draining = self.pipeline.clone();
        let _ = tokio::task::spawn_blocking(move || draining.shutdown()).await;
    }

    fn announce_stopping(&self) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        log::info!(
            "shutting down: finishing {} queued and {} in-flight briefs",
            self.pipeline.queue_depth(),
            self.pipeline.in_flight()
        );
        self.stopping.cancel();
    }
}

impl FleetThread {
    /// Stage 3: the command being applied finishes and is answered; queued ones stay
    /// unacknowledged for the broker to deliver again, so nothing is applied after offline.
    async fn stop_after_current_command(self) {
        self.stop.cancel();
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

impl Session {
    /// Publishes the offline state, disconnects, and polls the event loop until the disconnect
    /// (and everything queued before it: the last replies) has gone out.
    async fn say_offline_and_flush(self) {
        // Replies now come from nowhere: the pipeline and the fleet thread have stopped.
        drop(self.connection);
        let offline = self.state.render_offline();
        if let Err(error) = transport::publish_state(&self.client, &self.topics, offline).await {
            log::warn!("cannot publish the offline state: {error}");
        }
        let _ = self.client.disconnect().await;
        self.connection_stop.cancel();
        let Ok(mut eventloop) = self.connection_task.await else {
            return;
        };
        let flush = async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        if tokio::time::timeout(FLUSH_DEADLINE, flush).await.is_err() {
            log::warn!("broker did not take the final messages within 5 s");
        }
    }
}
