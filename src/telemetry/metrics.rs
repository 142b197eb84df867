//! Prometheus metrics: what a monitoring system scrapes from `telemetry.metrics_listen` (off by
//! default). Counters and the latency histogram are updated as briefs and bundle commands are
//! answered; the queue, in-flight and active-bundle gauges are read when scraped.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The Content-Type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BriefLabels {
    /// `ok` or `error`.
    status: &'static str,
    /// The contract's error code, `none` for a success.
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BundleLabels {
    name: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
    /// `ok` or the contract's bundle error code.
    result: String,
}

type LatencyFamily = Family<BackendLabels, Histogram, fn() -> Histogram>;

/// One daemon's metrics and the registry that names them.
pub(crate) struct Metrics {
    registry: Registry,
    briefs: Family<BriefLabels, Counter>,
    latency: LatencyFamily,
    queue_depth: Gauge,
    in_flight: Gauge,
    active_bundle: Family<BundleLabels, Gauge>,
    bundle_commands: Family<CommandLabels, Counter>,
    transfer_bytes: Counter,
    batch_size: Histogram,
}

/// What the gauges show when scraped.
pub(crate) struct Sample {
    pub queue_depth: usize,
    pub in_flight: usize,
    /// Name and version of the bundle serving, if any.
    pub active_bundle: Option<(String, String)>,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 1.6 s: a text brief takes well under a millisecond, a photo tens.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 15))
}

impl Metrics {
    /// Empty metrics, registered under `packd_`.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("packd");
        let briefs = Family::<BriefLabels, Counter>::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        let (queue_depth, in_flight) = (Gauge::default(), Gauge::default());
        let active_bundle = Family::<BundleLabels, Gauge>::default();
        let bundle_commands = Family::<CommandLabels, Counter>::default();
        let transfer_bytes = Counter::default();
        // 1, 2, 4, … 64: the manifest's largest batch.
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        registry.register(
            "briefs",
            "Briefs answered, by status and error code",
            briefs.clone(),
        );
        registry.register(
            "brief_latency_seconds",
            "Time from a brief's arrival to its reply, by the backend that ran it",
            latency.clone(),
        );
        registry.register(
            "queue_depth",
            "Briefs waiting for a worker",
            queue_depth.clone(),
        );
        registry.register(
            "briefs_in_flight",
            "Briefs being processed",
            in_flight.clone(),
        );
        registry.register(
            "active_bundle",
            "The model bundle serving briefs (1 for the active one)",
            active_bundle.clone(),
        );
        registry.register(
            "bundle_commands",
            "Bundle commands applied, by command and result",
            bundle_commands.clone(),
        );
        registry.register(
            "bundle_transfer_bytes",
            "Bytes of bundle chunks received",
            transfer_bytes.clone(),
        );
        registry.register(
            "batch_size",
            "Briefs run through the model in one call",
            batch_size.clone(),
        );
        Metrics {
            registry,
            briefs,
            latency,
            queue_depth,
            in_flight,
            active_bundle,
            bundle_commands,
            transfer_bytes,
            batch_size,
        }
    }

    /// Counts one model run of `size` briefs.
    pub fn batch(&self, size: usize) {
        self.batch_size.observe(size as f64);
    }

    /// Counts one answered brief; `code` is `None` for a success.
    pub fn brief(&self, code: Option<&'static str>, backend: Option<&str>, micros: u64) {
        let labels = match code {
            None => BriefLabels {
                status: "ok",
                code: "none",
            },
            Some(code) => BriefLabels {
                status: "error",
                code,
            },
        };
        self.briefs.get_or_create(&labels).inc();
        if let Some(backend) = backend {
            let labels = BackendLabels {
                backend: backend.to_owned(),
            };
            self.latency
                .get_or_create(&labels)
                .observe(micros as f64 / 1e6);
        }
    }

    /// Counts one bundle command and its result (`ok` or an error code).
    pub fn bundle_command(&self, command: &str, result: &str) {
        let labels = CommandLabels {
            command: command.to_owned(),
            result: result.to_owned(),
        };
        self.bundle_commands.get_or_create(&labels).inc();
    }

    /// Counts bytes of a received bundle chunk.
    pub fn transfer_bytes(&self, bytes: usize) {
        self.transfer_bytes.inc_by(bytes as u64);
    }

    /// The exposition text, with the gauges set from `sample`.
    pub fn render(&self, sample: &Sample) -> String {
        let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        self.queue_depth.set(gauge(sample.queue_depth));
        self.in_flight.set(gauge(sample.in_flight));
        self.active_bundle.clear();
        if let Some((name, version)) = &sample.active_bundle {
            let labels = BundleLabels {
                name: name.clone(),
                version: version.clone(),
            };
            self.active_bundle.get_or_create(&labels).set(1);
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Serves `GET /metrics` on `listener` until `stop`, rendering what `sample` says at each
/// scrape; anything else is 404 (405 for another method on `/metrics`).
pub(crate) async fn serve<F>(listener: TcpListener, render: Arc<F>, stop: CancellationToken)
where
    F: Fn() -> String + Send + Sync + 'static,
{
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: back off rather than spin on the error.
                    log::warn!("metrics: cannot accept a connection: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let render = render.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let render = render.clone();
                async move { Ok::<_, Infallible>(respond(&request, render.as_ref())) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}

fn respond(request: &Request<Incoming>, render: &impl Fn() -> String) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, TEXT_FORMAT, render()),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".into(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "see /metrics\n".into()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Listens on `address` now, so the endpoint answers before packd says it is online; a port
/// that cannot be bound costs the metrics, never the briefs.
pub(crate) fn listen(address: std::net::SocketAddr) -> Option<TcpListener> {
    let bound = std::net::TcpListener::bind(address).and_then(|listener| {
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener)
    });
    match bound {
        Ok(listener) => {
            log::info!("metrics on http://{address}/metrics");
            Some(listener)
        }
        Err(error) => {
            log::error!("metrics: cannot listen on {address}: {error}");
            None
        }
    }
}
