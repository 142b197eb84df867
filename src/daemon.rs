//! The daemon's life: load the active bundle, start the workers and the MQTT session, publish
//! state and stats, keep the systemd watchdog fed, and shut down cleanly on one cancellation.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::Event;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::backend::cpu::CpuBackend;
use crate::backend::Precision;
use crate::bundle::store::BundleStore;
use crate::bundle::{selftest, Bundle};
use crate::config::Config;
use crate::features::ImageLimits;
use crate::reply::BundleRef;
use crate::serve::{ActiveModel, Pipeline, PipelineSettings, ServingModel};
use crate::telemetry::Telemetry;
use crate::transport::{self, Connection, MqttReplySink, Topics};

/// A failure that stops the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    #[error("bundle store: {0}")]
    Store(#[from] crate::bundle::BundleError),
}

/// The retained state document.
#[derive(Debug, Serialize)]
pub struct StateDocument<'a> {
    pub status: &'a str,
    pub device: &'a str,
    pub version: &'a str,
    pub bundle: Option<BundleRef>,
    pub backends: Vec<String>,
    pub since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What loading the active bundle gave: a model to serve, or the reason there is none.
pub struct Loaded {
    pub model: Option<ServingModel>,
    pub problem: Option<String>,
}

/// Seeds a fresh store, then opens, loads and self-tests the active bundle on the CPU.
pub fn load_active(store: &BundleStore, seed: &std::path::Path) -> Loaded {
    match store.seed_from(seed) {
        Ok(Some(label)) => log::info!("bundle store {} seeded with {label}", store.dir().display()),
        Ok(None) => {}
        Err(error) => log::error!(
            "cannot seed the bundle store from {}: {error}",
            seed.display()
        ),
    }
    let bundle = match store.open_active() {
        Ok(Some(bundle)) => bundle,
        Ok(None) => {
            return Loaded {
                model: None,
                problem: Some("no bundle is active".into()),
            }
        }
        Err(error) => {
            return Loaded {
                model: None,
                problem: Some(format!("active bundle is unusable: {error}")),
            }
        }
    };
    match load_model(bundle) {
        Ok(model) => Loaded {
            model: Some(model),
            problem: None,
        },
        Err(problem) => Loaded {
            model: None,
            problem: Some(problem),
        },
    }
}

/// Loads a verified bundle's model on the CPU and runs its self-test before it may serve.
pub fn load_model(bundle: Bundle) -> Result<ServingModel, String> {
    let label = bundle.label();
    let backend = CpuBackend::load(&bundle, Precision::Fp32)
        .map_err(|error| format!("bundle {label}: {error}"))?;
    let report = selftest::run(&bundle, &backend, Precision::Fp32)
        .map_err(|error| format!("bundle {label} failed its self-test: {error}"))?;
    log::info!(
        PACKD_BUNDLE = label.as_str();
        "bundle {label} loaded on cpu; self-test passed ({} cases, max deviation {:.2e}, tolerance {:.0e})",
        report.cases, report.max_deviation, report.tolerance
    );
    Ok(ServingModel {
        bundle: Arc::new(bundle),
        backend: Arc::new(backend),
    })
}

/// Runs the service until `cancel` fires, then drains and says offline.
pub async fn run(config: Config, cancel: CancellationToken) -> Result<(), DaemonError> {
    let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let topics = Topics::new(&config.mqtt.prefix, &config.device.id, &config.device.pools);
    let store = BundleStore::open(&config.bundles.dir)?;
    let seed = config.bundles.seed.clone();
    let loaded = tokio::task::spawn_blocking(move || load_active(&store, &seed))
        .await
        .unwrap_or_else(|error| Loaded {
            model: None,
            problem: Some(format!("bundle loading panicked: {error}")),
        });
    if let Some(problem) = &loaded.problem {
        log::error!("serving without a model: {problem}");
    }
    let backends: Vec<String> = loaded
        .model
        .iter()
        .map(|model| model.backend.name().to_string())
        .collect();
    let bundle_ref = loaded.model.as_ref().map(|model| BundleRef {
        name: model.bundle.manifest.name.clone(),
        version: model.bundle.manifest.version.clone(),
    });
    let state = |status: &str, reason: Option<String>| {
        serde_json::to_vec(&StateDocument {
            status,
            device: &config.device.id,
            version: crate::VERSION,
            bundle: bundle_ref.clone(),
            backends: backends.clone(),
            since: since.clone(),
            reason,
        })
        .unwrap_or_default()
    };
    let online_state = match &loaded.problem {
        None => state("online", None),
        Some(problem) => state("degraded", Some(problem.clone())),
    };
    let offline_state = state("offline", None);

    let model: ActiveModel = Arc::new(ArcSwapOption::new(loaded.model.map(Arc::new)));
    let telemetry = Arc::new(Telemetry::new(config.telemetry.clone()));
    let (client, eventloop) = transport::connect(&config.mqtt, &topics, offline_state.clone())?;
    let sink = Arc::new(MqttReplySink::new(
        client.clone(),
        tokio::runtime::Handle::current(),
    ));
    let settings = PipelineSettings {
        device: config.device.id.clone(),
        workers: config.serve.workers,
        queue: config.serve.queue,
        reply_cache_ttl: Duration::from_secs(config.serve.reply_cache_s),
        reply_cache_entries: config.serve.reply_cache_entries,
        image_limits: ImageLimits::default(),
    };
    let pipeline = Arc::new(Pipeline::start(
        settings,
        model.clone(),
        sink,
        telemetry.clone(),
    ));
    let connection = Arc::new(Connection {
        client: client.clone(),
        topics: topics.clone(),
        pipeline: pipeline.clone(),
        online_state,
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
    background.cancel();
    if let Err(error) = transport::publish_json(
        &client,
        &topics.state,
        QoS::AtLeastOnce,
        true,
        offline_state,
    )
    .await
    {
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
