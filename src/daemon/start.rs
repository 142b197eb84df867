//! Start-up wiring: each step builds one part of a running [`Daemon`] from the configuration.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rumqttc::v5::{AsyncClient, EventLoop};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::background::{feed_watchdog, publish_stats};
use super::boot::{device_profile, load_active, Loaded, Machine};
use super::commands::{serve_commands, CommandReplies};
use super::{in_flight_capacity, Daemon, DaemonError, FleetThread, Session};
use crate::bundle::archive::UnpackLimits;
use crate::bundle::signature::TrustedKeys;
use crate::bundle::store::BundleStore;
use crate::bundle::transfer::TransferLimits;
use crate::config::Config;
use crate::features::ImageLimits;
use crate::fleet::{DeviceProfile, Fleet, FleetSettings};
use crate::reply::BundleRef;
use crate::serve::{ActiveModel, Pipeline, PipelineSettings, ReplyPrefix};
use crate::state::StateBoard;
use crate::telemetry::{metrics, Telemetry};
use crate::transport::adoption::{AdoptionSettings, Adoptions};
use crate::transport::{self, BrokerLimit, CommandJob, Connection, MqttReplySink, Outbox, Topics};

/// What every later step shares.
struct Parts {
    config: Config,
    topics: Topics,
    state: Arc<StateBoard>,
    model: ActiveModel,
    telemetry: Arc<Telemetry>,
    client: AsyncClient,
    sink: Arc<MqttReplySink>,
    reply_prefix: ReplyPrefix,
    runtime: Handle,
}

pub(super) async fn start(config: Config) -> Result<Daemon, DaemonError> {
    let topics = Topics::new(&config.mqtt.prefix, &config.device.id, &config.device.pools);
    let store = BundleStore::open(&config.bundles.dir)?;
    let machine = Machine {
        profile: device_profile(&config),
        backend: config.backend.clone(),
    };
    let loaded = boot(&store, &config, machine.clone()).await;
    let state = Arc::new(StateBoard::new(&config.device.id));
    show_loaded(&state, &loaded);
    let model: ActiveModel = Arc::new(ArcSwapOption::new(loaded.model.map(Arc::new)));
    let (client, eventloop) = transport::connect(
        &config.mqtt,
        &topics,
        state.render_offline(),
        in_flight_capacity(config.serve.queue, config.serve.workers),
    )?;
    let broker_limit = BrokerLimit::default();
    let runtime = Handle::current();
    let outbox = Outbox::start(client.clone());
    let parts = Parts {
        reply_prefix: config.reply_prefix()?,
        sink: Arc::new(MqttReplySink::new(
            client.clone(),
            runtime.clone(),
            broker_limit.clone(),
            outbox.clone(),
        )),
        telemetry: Arc::new(Telemetry::new(config.telemetry.clone())),
        config,
        topics,
        state,
        model,
        client,
        runtime,
    };
    let pipeline = start_pipeline(&parts);
    pipeline.answer_inline();
    // Unbounded so the event loop never drops an acknowledged-later command: the broker's Receive
    // Maximum (which counts COMMAND_QUEUE of them) bounds what QoS 1 can put here, and
    // `Connection::route` caps QoS 0 commands at COMMAND_QUEUE waiting.
    let (commands, command_queue) = flume::unbounded::<CommandJob>();
    let fleet = start_fleet(&parts, store, machine.profile, command_queue)?;
    let stopping = CancellationToken::new();
    // Adoption needs pools to share; without them there is no peer whose briefs we may answer.
    let adopting = parts.config.mqtt.adopt_pool_peers && !parts.topics.pools.is_empty();
    let (peer_states, peer_updates) = tokio::sync::mpsc::unbounded_channel();
    let connection = Arc::new(Connection {
        client: parts.client.clone(),
        topics: parts.topics.clone(),
        pipeline: pipeline.clone(),
        commands,
        state: parts.state.clone(),
        peer_states: adopting.then_some(peer_states),
        broker_limit,
        outbox,
    });
    let tasks = TaskTracker::new();
    let adoptions_stop = CancellationToken::new();
    if adopting {
        let adoptions = start_adoptions(&parts, &pipeline);
        tasks.spawn(adoptions.run(peer_updates, stopping.clone(), adoptions_stop.clone()));
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    announce(&parts.config, &parts.topics);
    let tasks_stop = CancellationToken::new();
    spawn_background(&parts, &pipeline, &tasks, &tasks_stop);
    let session = start_session(parts, connection, eventloop);
    Ok(Daemon {
        stopping,
        pipeline,
        fleet,
        adoptions_stop,
        tasks,
        tasks_stop,
        session,
    })
}

/// Seeds and loads the active bundle off the runtime's threads (it reads and self-tests).
async fn boot(store: &BundleStore, config: &Config, machine: Machine) -> Loaded {
    let store = store.clone();
    let seed = config.bundles.seed.clone();
    let loaded = tokio::task::spawn_blocking(move || load_active(&store, &seed, &machine))
        .await
        .unwrap_or_else(|error| Loaded {
            model: None,
            problem: Some(format!("bundle loading panicked: {error}")),
        });
    if let Some(problem) = &loaded.problem {
        log::error!("{problem}");
    }
    loaded
}

/// Puts what boot loaded (or why nothing did) on the state board.
fn show_loaded(state: &StateBoard, loaded: &Loaded) {
    state.set(
        loaded.model.as_ref().map(|model| BundleRef {
            name: model.bundle.manifest.name.clone(),
            version: model.bundle.manifest.version.clone(),
        }),
        loaded
            .model
            .iter()
            .flat_map(|model| model.backend.targets())
            .collect(),
        loaded.problem.clone(),
    );
}

fn start_pipeline(parts: &Parts) -> Arc<Pipeline> {
    let serve = &parts.config.serve;
    let settings = PipelineSettings {
        device: parts.config.device.id.clone(),
        workers: serve.workers,
        queue: serve.queue,
        queue_bytes: serve.queue_bytes(),
        reply_cache_ttl: Duration::from_secs(serve.reply_cache_s),
        reply_cache_entries: serve.reply_cache_entries,
        reply_cache_bytes: serve.reply_cache_bytes(),
        image_limits: ImageLimits::default(),
        reply_prefix: parts.reply_prefix.clone(),
        batch: serve.batch(),
    };
    Arc::new(Pipeline::start(
        settings,
        parts.model.clone(),
        parts.sink.clone(),
        parts.telemetry.clone(),
    ))
}

/// What `[bundles]` allows a push, as the fleet applies it.
fn fleet_settings(config: &Config, profile: DeviceProfile) -> FleetSettings {
    let bundles = &config.bundles;
    let max_bundle_bytes = bundles.max_bundle_mib * 1024 * 1024;
    FleetSettings {
        allow_unsigned: bundles.allow_unsigned,
        keep: bundles.keep,
        transfer_limits: TransferLimits {
            max_bundle_bytes,
            stall_after: Duration::from_secs(bundles.transfer_stall_s),
            ..TransferLimits::default()
        },
        unpack_limits: UnpackLimits {
            max_total_bytes: max_bundle_bytes * 4,
            max_files: 10_000,
            max_file_bytes: max_bundle_bytes * 4,
        },
        profile,
        backend: config.backend.clone(),
    }
}

/// Starts the thread that applies bundle commands from `queue`.
fn start_fleet(
    parts: &Parts,
    store: BundleStore,
    profile: DeviceProfile,
    queue: flume::Receiver<CommandJob>,
) -> Result<FleetThread, DaemonError> {
    let publish_state = {
        let (client, state, topics) = (
            parts.client.clone(),
            parts.state.clone(),
            parts.topics.clone(),
        );
        let runtime = parts.runtime.clone();
        Box::new(move || {
            let current = state.render_current();
            if let Err(error) =
                runtime.block_on(transport::publish_state(&client, &topics, current))
            {
                log::warn!("cannot publish state: {error}");
            }
        })
    };
    let trusted = TrustedKeys::from_config(&parts.config.bundles.trusted_keys)
        .map_err(|error| DaemonError::Fleet(error.to_string()))?;
    let fleet = Fleet::new(
        fleet_settings(&parts.config, profile),
        store,
        trusted,
        parts.model.clone(),
        parts.state.clone(),
        publish_state,
    )
    .map_err(|error| DaemonError::Fleet(error.message))?;
    let stop = CancellationToken::new();
    let device = parts.config.device.id.clone();
    let (sink, prefix, thread_stop) =
        (parts.sink.clone(), parts.reply_prefix.clone(), stop.clone());
    let telemetry = parts.telemetry.clone();
    let thread = std::thread::Builder::new()
        .name("packd-fleet".into())
        .spawn(move || {
            let replies = CommandReplies {
                device: &device,
                sink: sink.as_ref(),
                prefix: &prefix,
                metrics: &telemetry.metrics,
            };
            serve_commands(&fleet, &replies, &queue, &thread_stop)
        })
        .map_err(|error| DaemonError::Fleet(error.to_string()))?;
    Ok(FleetThread { stop, thread })
}

fn start_adoptions(parts: &Parts, pipeline: &Arc<Pipeline>) -> Adoptions {
    let config = &parts.config;
    Adoptions::new(
        AdoptionSettings {
            mqtt: config.mqtt.clone(),
            topics: parts.topics.clone(),
            grace: Duration::from_millis(config.mqtt.adoption_grace_ms),
            in_flight_capacity: in_flight_capacity(config.serve.queue, config.serve.workers),
        },
        pipeline.clone(),
    )
}

fn announce(config: &Config, topics: &Topics) {
    log::info!(
        "packd {} serving as {} (prefix {}, pools {:?}, {} workers, queue {})",
        crate::VERSION,
        topics.device,
        topics.prefix,
        topics.pools,
        config.serve.workers,
        config.serve.queue
    );
}

fn spawn_background(
    parts: &Parts,
    pipeline: &Arc<Pipeline>,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) {
    tasks.spawn(publish_stats(
        parts.client.clone(),
        parts.topics.clone(),
        parts.telemetry.clone(),
        pipeline.clone(),
        parts.config.telemetry.stats_interval_s,
        stop.clone(),
    ));
    tasks.spawn(feed_watchdog(pipeline.clone(), stop.clone()));
    let listener = parts
        .config
        .telemetry
        .metrics_listen
        .and_then(metrics::listen);
    if let Some(listener) = listener {
        let (telemetry, pipeline, model) = (
            parts.telemetry.clone(),
            pipeline.clone(),
            parts.model.clone(),
        );
        let render = move || {
            let active_bundle = model.load_full().map(|serving| {
                let manifest = &serving.bundle.manifest;
                (manifest.name.clone(), manifest.version.clone())
            });
            telemetry.metrics.render(&metrics::Sample {
                queue_depth: pipeline.queue_depth(),
                in_flight: pipeline.in_flight(),
                active_bundle,
            })
        };
        tasks.spawn(metrics::serve(listener, Arc::new(render), stop.clone()));
    }
}

/// Starts polling the session; the connection keeps running while briefs drain at shutdown,
/// so their replies and acknowledgements still go out.
fn start_session(parts: Parts, connection: Arc<Connection>, eventloop: EventLoop) -> Session {
    let connection_stop = CancellationToken::new();
    let connection_task = {
        let (connection, stop) = (connection.clone(), connection_stop.clone());
        tokio::spawn(async move { connection.run(eventloop, stop).await })
    };
    Session {
        client: parts.client,
        topics: parts.topics,
        state: parts.state,
        connection,
        connection_stop,
        connection_task,
    }
}
