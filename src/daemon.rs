//! The daemon's life: load the active bundle, start the workers and the MQTT session, publish
//! state and stats, keep the systemd watchdog fed, and shut down cleanly on one cancellation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::Event;
use tokio_util::sync::CancellationToken;

use crate::bundle::archive::UnpackLimits;
use crate::bundle::signature::TrustedKeys;
use crate::bundle::store::{BundleStore, LAST_GOOD_POINTER, PREVIOUS_POINTER};
use crate::bundle::transfer::TransferLimits;
use crate::bundle::Bundle;
use crate::config::Config;
use crate::features::ImageLimits;
use crate::fleet::{self, load_model, Command, DeviceProfile, Fleet, FleetError, FleetSettings};
use crate::reply::BundleRef;
use crate::serve::{ActiveModel, Pipeline, PipelineSettings, ReplyPrefix, ReplySink, ServingModel};
use crate::state::StateBoard;
use crate::telemetry::field::escaped;
use crate::telemetry::Telemetry;
use crate::transport::adoption::{AdoptionSettings, Adoptions};
use crate::transport::{self, CommandJob, Connection, MqttReplySink, Topics};
use packd_wire::bundle::BundleErrorCode;

/// Bundle commands waiting for the fleet thread; beyond it the broker keeps them for us.
pub const COMMAND_QUEUE: usize = 256;

/// The Receive Maximum packd announces: every delivery it can hold unacknowledged (the brief
/// queue, the overload queue, one brief per worker, the image threads' queue and one brief per
/// image thread, the bundle-command queue). Public because it is also the most briefs packd can
/// ever hold at once, which bounds its memory under overload (tests/overload.rs derives its RSS
/// bound from it).
pub fn in_flight_capacity(queue: usize, workers: usize) -> usize {
    queue
        + crate::serve::REJECTION_QUEUE
        + workers
        + crate::serve::image_queue_capacity(queue)
        + crate::serve::image_workers(workers)
        + COMMAND_QUEUE
}

/// A failure that stops the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    #[error("bundle store: {0}")]
    Store(#[from] crate::bundle::BundleError),
    #[error("bundle management: {0}")]
    Fleet(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// What loading at boot gave: a model to serve, or the reason there is none, plus any problem
/// worth reporting as `degraded` even though a model serves (a bundle set aside).
pub struct Loaded {
    pub model: Option<ServingModel>,
    pub problem: Option<String>,
}

/// Seeds a fresh store, then loads the active bundle; a bundle that fails (unreadable, failing
/// its self-test, or with engines `profile` cannot run) is set aside and the last good one
/// (else the previous one) is loaded and made active instead.
pub fn load_active(store: &BundleStore, seed: &std::path::Path, profile: &DeviceProfile) -> Loaded {
    match store.seed_from(seed) {
        Ok(Some(label)) => log::info!("bundle store {} seeded with {label}", store.dir().display()),
        Ok(None) => {}
        Err(error) => log::error!(
            "cannot seed the bundle store from {}: {error}",
            seed.display()
        ),
    }
    let Some(active) = store.active_label() else {
        return Loaded {
            model: None,
            problem: Some("no bundle is active".into()),
        };
    };
    let (failure, transient) = match open_and_load(store, &active, profile) {
        Ok(model) => {
            let _ = store.mark_good(&active);
            return Loaded {
                model: Some(model),
                problem: None,
            };
        }
        Err(failure) => failure,
    };
    log::error!(PACKD_BUNDLE = active.as_str(), PACKD_EVENT = "boot_failed"; "active bundle {active} failed at boot: {failure}");
    // A read error may pass (a disk slow to come up); only a bundle that is itself bad is set
    // aside and replaced on disk.
    if !transient {
        match store.set_aside(&active) {
            Ok(path) => {
                log::warn!(PACKD_BUNDLE = active.as_str(), PACKD_EVENT = "set_aside"; "bundle {active} set aside in {}", path.display())
            }
            Err(error) => log::error!("cannot set {active} aside: {error}"),
        }
    }
    let fallbacks = [LAST_GOOD_POINTER, PREVIOUS_POINTER]
        .iter()
        .filter_map(|pointer| store.read_pointer(pointer))
        .filter(|label| *label != active);
    for fallback in fallbacks {
        match open_and_load(store, &fallback, profile) {
            Ok(model) => {
                if !transient {
                    let _ = store.set_active(&fallback);
                }
                let problem =
                    format!("bundle {active} failed at boot ({failure}); serving {fallback}");
                return Loaded {
                    model: Some(model),
                    problem: Some(problem),
                };
            }
            Err((error, _)) => log::error!("fallback bundle {fallback} failed too: {error}"),
        }
    }
    // Nothing installed loads: start again from the shipped bundle rather than serve nothing.
    if !transient && store.clear_active().is_ok() {
        if let Ok(Some(seeded)) = store.seed_from(seed) {
            if let Ok(model) = open_and_load(store, &seeded, profile) {
                let problem = format!(
                    "bundle {active} failed at boot ({failure}); serving the shipped {seeded}"
                );
                return Loaded {
                    model: Some(model),
                    problem: Some(problem),
                };
            }
        }
    }
    Loaded {
        model: None,
        problem: Some(format!(
            "bundle {active} failed at boot ({failure}) and no earlier bundle loads"
        )),
    }
}

/// Opens and loads an installed bundle; the error says whether it may be transient (I/O).
fn open_and_load(
    store: &BundleStore,
    label: &str,
    profile: &DeviceProfile,
) -> Result<ServingModel, (String, bool)> {
    let bundle = Bundle::open(&store.path_of(label)).map_err(|error| {
        let transient = matches!(&error, crate::bundle::BundleError::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound);
        (error.to_string(), transient)
    })?;
    // The same check as at commit: TensorRT may have changed under an installed bundle (a
    // JetPack update), and its engines would then not deserialize.
    fleet::check_engines(&bundle.manifest.engines, profile)
        .map_err(|error| (format!("{}: {}", error.code, error.message), false))?;
    load_model(bundle).map_err(|error| (error.to_string(), false))
}

/// What engines must match: the configured `[device]` values, else what TensorRT and the CUDA
/// device report here (only where this build and machine have them).
fn device_profile(config: &Config) -> DeviceProfile {
    let observed = crate::backend::select::observed_device(&config.backend);
    DeviceProfile {
        tensorrt: config
            .device
            .tensorrt
            .clone()
            .or_else(|| observed.as_ref().map(|facts| facts.tensorrt.to_string())),
        compute_capability: config.device.compute_capability.clone().or_else(|| {
            observed
                .as_ref()
                .map(|facts| facts.compute_capability.clone())
        }),
        dla_cores: observed.as_ref().map_or(config.device.dla_cores, |facts| {
            facts.dla_cores.max(config.device.dla_cores)
        }),
    }
}

/// Runs the service until `cancel` fires, then drains and says offline.
pub async fn run(config: Config, cancel: CancellationToken) -> Result<(), DaemonError> {
    crate::backend::select::configure(&config.backend);
    let topics = Topics::new(&config.mqtt.prefix, &config.device.id, &config.device.pools);
    let store = BundleStore::open(&config.bundles.dir)?;
    let seed = config.bundles.seed.clone();
    let boot_store = store.clone();
    let profile = device_profile(&config);
    let boot_profile = profile.clone();
    let loaded =
        tokio::task::spawn_blocking(move || load_active(&boot_store, &seed, &boot_profile))
            .await
            .unwrap_or_else(|error| Loaded {
                model: None,
                problem: Some(format!("bundle loading panicked: {error}")),
            });
    if let Some(problem) = &loaded.problem {
        log::error!("{problem}");
    }
    let state = Arc::new(StateBoard::new(&config.device.id));
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

    let model: ActiveModel = Arc::new(ArcSwapOption::new(loaded.model.map(Arc::new)));
    let telemetry = Arc::new(Telemetry::new(config.telemetry.clone()));
    let (client, eventloop) = transport::connect(
        &config.mqtt,
        &topics,
        state.render_offline(),
        in_flight_capacity(config.serve.queue, config.serve.workers),
    )?;
    let reply_prefix = config.reply_prefix()?;
    let runtime = tokio::runtime::Handle::current();
    let broker_limit = transport::BrokerLimit::default();
    let sink = Arc::new(MqttReplySink::new(
        client.clone(),
        runtime.clone(),
        broker_limit.clone(),
    ));
    let settings = PipelineSettings {
        device: config.device.id.clone(),
        workers: config.serve.workers,
        queue: config.serve.queue,
        queue_bytes: config.serve.queue_bytes(),
        reply_cache_ttl: Duration::from_secs(config.serve.reply_cache_s),
        reply_cache_entries: config.serve.reply_cache_entries,
        reply_cache_bytes: config.serve.reply_cache_bytes(),
        image_limits: ImageLimits::default(),
        reply_prefix: reply_prefix.clone(),
    };
    let pipeline = Arc::new(Pipeline::start(
        settings,
        model.clone(),
        sink.clone(),
        telemetry.clone(),
    ));

    let publish_state = {
        let client = client.clone();
        let state = state.clone();
        let topics = topics.clone();
        let runtime = runtime.clone();
        Box::new(move || {
            if let Err(error) = runtime.block_on(transport::publish_state(
                &client,
                &topics,
                state.render_current(),
            )) {
                log::warn!("cannot publish state: {error}");
            }
        })
    };
    let trusted = TrustedKeys::from_config(&config.bundles.trusted_keys)
        .map_err(|error| DaemonError::Fleet(error.to_string()))?;
    let fleet_settings = FleetSettings {
        allow_unsigned: config.bundles.allow_unsigned,
        keep: config.bundles.keep,
        transfer_limits: TransferLimits {
            max_bundle_bytes: config.bundles.max_bundle_mib * 1024 * 1024,
            stall_after: Duration::from_secs(config.bundles.transfer_stall_s),
            ..TransferLimits::default()
        },
        unpack_limits: UnpackLimits {
            max_total_bytes: config.bundles.max_bundle_mib * 1024 * 1024 * 4,
            max_files: 10_000,
            max_file_bytes: config.bundles.max_bundle_mib * 1024 * 1024 * 4,
        },
        profile,
    };
    let fleet = Fleet::new(
        fleet_settings,
        store,
        trusted,
        model.clone(),
        state.clone(),
        publish_state,
    )
    .map_err(|error| DaemonError::Fleet(error.message))?;
    let (commands, command_queue) = flume::bounded::<CommandJob>(COMMAND_QUEUE);
    let fleet_stop = Arc::new(AtomicBool::new(false));
    let fleet_thread = {
        let device = config.device.id.clone();
        let sink = sink.clone();
        let stop = fleet_stop.clone();
        std::thread::Builder::new()
            .name("packd-fleet".into())
            .spawn(move || {
                let replies = CommandReplies {
                    device: &device,
                    sink: sink.as_ref(),
                    prefix: &reply_prefix,
                };
                serve_commands(&fleet, &replies, &command_queue, &stop)
            })
            .map_err(|error| DaemonError::Fleet(error.to_string()))?
    };
    // Adoption needs pools to share; without them there is no peer whose briefs we may answer.
    let adopting = config.mqtt.adopt_pool_peers && !topics.pools.is_empty();
    let (peer_states, peer_updates) = tokio::sync::mpsc::unbounded_channel();
    let connection = Arc::new(Connection {
        client: client.clone(),
        topics: topics.clone(),
        pipeline: pipeline.clone(),
        commands,
        state: state.clone(),
        peer_states: adopting.then_some(peer_states),
        broker_limit,
    });
    let adoption_stop = CancellationToken::new();
    let adoption_task = adopting.then(|| {
        let adoptions = Adoptions::new(
            AdoptionSettings {
                mqtt: config.mqtt.clone(),
                topics: topics.clone(),
                grace: Duration::from_millis(config.mqtt.adoption_grace_ms),
                in_flight_capacity: in_flight_capacity(config.serve.queue, config.serve.workers),
            },
            pipeline.clone(),
        );
        tokio::spawn(adoptions.run(peer_updates, cancel.clone(), adoption_stop.clone()))
    });

    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    log::info!(
        "packd {} serving as {} (prefix {}, pools {:?}, {} workers, queue {})",
        crate::VERSION,
        topics.device,
        topics.prefix,
        topics.pools,
        config.serve.workers,
        config.serve.queue
    );

    let background = CancellationToken::new();
    tokio::spawn(publish_stats(
        client.clone(),
        topics.clone(),
        telemetry.clone(),
        pipeline.clone(),
        config.telemetry.stats_interval_s,
        background.clone(),
    ));
    tokio::spawn(feed_watchdog(pipeline.clone(), background.clone()));

    // The connection keeps running while we drain, so replies and acknowledgements still go out.
    let connection_stop = CancellationToken::new();
    let connection_task = {
        let connection = connection.clone();
        let stop = connection_stop.clone();
        tokio::spawn(async move { connection.run(eventloop, stop).await })
    };

    cancel.cancelled().await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    log::info!(
        "shutting down: finishing {} queued and {} in-flight briefs",
        pipeline.queue_depth(),
        pipeline.in_flight()
    );
    let draining = pipeline.clone();
    let _ = tokio::task::spawn_blocking(move || draining.shutdown()).await;
    // The command being applied finishes and is answered; queued ones stay unacknowledged for
    // the broker to deliver again, so nothing is applied after we said offline.
    fleet_stop.store(true, Ordering::SeqCst);
    let _ = tokio::task::spawn_blocking(move || fleet_thread.join()).await;
    // Adopted briefs were answered (and acknowledged on their sessions) in the drain above;
    // what the adopted sessions still hold stays there for their owners.
    adoption_stop.cancel();
    if let Some(adoption_task) = adoption_task {
        let _ = adoption_task.await;
    }
    drop(connection);
    background.cancel();
    if let Err(error) = transport::publish_state(&client, &topics, state.render_offline()).await {
        log::warn!("cannot publish the offline state: {error}");
    }
    let _ = client.disconnect().await;
    connection_stop.cancel();
    if let Ok(mut eventloop) = connection_task.await {
        // Flush what is queued (the offline state, the last replies) up to the disconnect.
        let flush = async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), flush)
            .await
            .is_err()
        {
            log::warn!("broker did not take the final messages within 5 s");
        }
    }
    log::info!("packd stopped");
    Ok(())
}

/// Where and as whom the fleet thread answers bundle commands.
struct CommandReplies<'a> {
    device: &'a str,
    sink: &'a dyn ReplySink,
    prefix: &'a ReplyPrefix,
}

/// Applies bundle commands one at a time, replying and acknowledging each.
fn serve_commands(
    fleet: &Fleet,
    replies: &CommandReplies<'_>,
    queue: &flume::Receiver<CommandJob>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        // Wake now and then to notice `stop` even when no command comes.
        let job = match queue.recv_timeout(Duration::from_millis(100)) {
            Ok(job) => job,
            Err(flume::RecvTimeoutError::Timeout) => continue,
            Err(flume::RecvTimeoutError::Disconnected) => return,
        };
        let result = match Command::parse(&job.command) {
            Some(command) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                fleet.handle(&command, &job.payload)
            }))
            .unwrap_or_else(|_| {
                log::error!("bundle command '{}' panicked", escaped(&job.command));
                Some(Err(FleetError::internal(
                    "internal error while applying the command",
                )))
            }),
            None => Some(Err(FleetError::new(
                BundleErrorCode::BadRequest,
                format!("unknown bundle command '{}'", escaped(&job.command)),
            ))),
        };
        if let Some(result) = result {
            // A command whose reply packd may not publish is still applied: the way back
            // concerns the reply alone, as with a command that gave none.
            let reply_to = job
                .route
                .is_none()
                .then(|| crate::brief::read_envelope(&job.payload).reply_to)
                .flatten();
            match replies.prefix.resolve(job.route.as_ref(), reply_to) {
                Ok(route) => replies.sink.send(
                    &route,
                    fleet::reply_body(replies.device, &job.payload, result),
                ),
                Err(no_way_back) => log::warn!(
                    "bundle command '{}' {no_way_back}; not answered",
                    escaped(&job.command)
                ),
            }
        }
        (job.acknowledge)();
    }
}

async fn publish_stats(
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
async fn feed_watchdog(pipeline: Arc<Pipeline>, stop: CancellationToken) {
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
