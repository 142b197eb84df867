//! Telemetry: counters and latency percentiles for the stats topic, and one journal record per
//! brief, sampled at high rates so that journald's rate limit never drops what matters.

pub mod field;
pub mod logger;
pub(crate) mod metrics;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::TelemetryConfig;
use crate::reply::{ErrorCode, Timing};

/// Latency samples kept per backend and interval; beyond it, reservoir sampling keeps the shape.
const MAX_SAMPLES_PER_INTERVAL: usize = 100_000;

/// What one brief did, for counters and the journal.
#[derive(Debug)]
pub(crate) struct BriefRecord<'a> {
    pub id: Option<&'a str>,
    /// `None` for success.
    pub status: Option<ErrorCode>,
    pub backend: Option<&'a str>,
    pub bundle: Option<&'a str>,
    pub timing: Timing,
    pub message: Option<&'a str>,
    /// Briefs that ran through the model together with this one; 0 when it did not run.
    pub batch: usize,
}

/// Counters since start plus the current interval's latencies.
pub(crate) struct Telemetry {
    config: TelemetryConfig,
    started: Instant,
    briefs: AtomicU64,
    ok: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
    dropped: AtomicU64,
    duplicates: AtomicU64,
    interval: Mutex<Interval>,
    /// What `/metrics` exposes.
    pub(crate) metrics: metrics::Metrics,
}

struct Interval {
    latencies: BTreeMap<String, Samples>,
    /// Start of the current second and briefs logged in it, for sampling.
    second_start: Instant,
    in_second: u32,
    skipped: u64,
}

#[derive(Default)]
struct Samples {
    values: Vec<u64>,
    seen: u64,
}

/// The stats topic's payload, as the contract types it.
pub(crate) type StatsSnapshot = packd_wire::state::Stats;
pub use packd_wire::state::Percentiles;

impl Telemetry {
    /// Fresh counters.
    pub fn new(config: TelemetryConfig) -> Telemetry {
        Telemetry {
            config,
            started: Instant::now(),
            briefs: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            errors: Default::default(),
            dropped: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            interval: Mutex::new(Interval {
                latencies: BTreeMap::new(),
                second_start: Instant::now(),
                in_second: 0,
                skipped: 0,
            }),
            metrics: metrics::Metrics::new(),
        }
    }

    /// A brief that could not be answered (no way back, or no room to say `overloaded`).
    pub(crate) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// A redelivered brief answered from the cache.
    pub(crate) fn count_duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a brief and writes its journal record unless sampled out.
    pub fn record(&self, record: &BriefRecord<'_>) {
        self.briefs.fetch_add(1, Ordering::Relaxed);
        self.metrics.brief(
            record.status.map(ErrorCode::as_str),
            record.backend,
            record.timing.total,
        );
        match record.status {
            None => self.ok.fetch_add(1, Ordering::Relaxed),
            Some(code) => self.errors[code as usize].fetch_add(1, Ordering::Relaxed),
        };
        let should_log = {
            let mut interval = self.lock();
            if let Some(backend) = record.backend {
                interval
                    .latencies
                    .entry(backend.to_string())
                    .or_default()
                    .push(record.timing.total);
            }
            let now = Instant::now();
            if now.duration_since(interval.second_start) >= Duration::from_secs(1) {
                interval.second_start = now;
                interval.in_second = 0;
            }
            interval.in_second = interval.in_second.saturating_add(1);
            let log = journal_worthy(&self.config, record, interval.in_second);
            if !log {
                interval.skipped += 1;
            }
            log
        };
        if should_log {
            write_brief_record(record);
        }
    }

    /// Takes the interval's percentiles and the counters since start, and starts a new interval.
    pub(crate) fn snapshot(
        &self,
        device: &str,
        queue_depth: usize,
        in_flight: usize,
    ) -> StatsSnapshot {
        let (latencies, skipped) = {
            let mut interval = self.lock();
            let skipped = std::mem::take(&mut interval.skipped);
            (std::mem::take(&mut interval.latencies), skipped)
        };
        let latency_us: BTreeMap<String, Percentiles> = latencies
            .into_iter()
            .map(|(backend, samples)| (backend, samples.percentiles()))
            .collect();
        let snapshot = StatsSnapshot {
            device: device.to_string(),
            uptime_s: self.started.elapsed().as_secs(),
            interval_s: self.config.stats_interval_s,
            briefs: self.briefs.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            errors: ErrorCode::ALL
                .iter()
                .map(|&code| (code, self.errors[code as usize].load(Ordering::Relaxed)))
                .collect(),
            dropped: self.dropped.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            queue_depth,
            in_flight,
            latency_us,
        };
        write_summary(&snapshot, skipped);
        snapshot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Interval> {
        self.interval
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether a brief gets its own journal record: every failed or slow brief, every brief up to
/// the per-second budget, and one in `sample_one_in` beyond it.
fn journal_worthy(config: &TelemetryConfig, record: &BriefRecord<'_>, nth_in_second: u32) -> bool {
    let slow = record.timing.total >= config.slow_brief_ms.saturating_mul(1000);
    let within_budget = nth_in_second <= config.log_every_brief_up_to_per_s;
    let sampled = nth_in_second % config.sample_one_in.max(1) == 0;
    record.status.is_some() || slow || within_budget || sampled
}

impl Samples {
    fn push(&mut self, value: u64) {
        self.seen += 1;
        if self.values.len() < MAX_SAMPLES_PER_INTERVAL {
            self.values.push(value);
        } else {
            let slot = fastrand::u64(0..self.seen) as usize;
            if slot < MAX_SAMPLES_PER_INTERVAL {
                self.values[slot] = value;
            }
        }
    }

    fn percentiles(mut self) -> Percentiles {
        self.values.sort_unstable();
        let at = |quantile: f64| -> u64 {
            if self.values.is_empty() {
                return 0;
            }
            let rank =
                ((quantile * self.values.len() as f64).ceil() as usize).clamp(1, self.values.len());
            self.values[rank - 1]
        };
        Percentiles {
            count: self.seen,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: self.values.last().copied().unwrap_or(0),
        }
    }
}

/// One journal entry per brief, with the fields operators filter on.
fn write_brief_record(record: &BriefRecord<'_>) {
    // The id and the message may carry the request's own text: one escaped, cut line each.
    let id = field::escaped(record.id.unwrap_or("")).to_field();
    let id = id.as_str();
    let status = record.status.map(ErrorCode::as_str).unwrap_or("ok");
    let backend = record.backend.unwrap_or("");
    let bundle = record.bundle.unwrap_or("");
    let timing = record.timing;
    let level = if record
        .status
        .is_some_and(|code| code == ErrorCode::Internal)
    {
        log::Level::Error
    } else if record.status.is_some() {
        log::Level::Warn
    } else {
        log::Level::Info
    };
    log::log!(
        target: "packd::brief",
        level,
        PACKD_BRIEF_ID = id,
        PACKD_STATUS = status,
        PACKD_LATENCY_US = timing.total,
        PACKD_QUEUE_US = timing.queue,
        PACKD_INFER_US = timing.infer,
        PACKD_BACKEND = backend,
        PACKD_BUNDLE = bundle,
        PACKD_BATCH = record.batch;
        "brief {} {} in {} us (queue {} us, infer {} us){}{}",
        if id.is_empty() { "(no id)" } else { id },
        status,
        timing.total,
        timing.queue,
        timing.infer,
        if backend.is_empty() { String::new() } else { format!(" on {backend}") },
        record
            .message
            .map(|message| format!(": {}", field::escaped(message)))
            .unwrap_or_default()
    );
}

/// One journal entry per stats interval with the percentiles, so sampling loses no latency data.
fn write_summary(snapshot: &StatsSnapshot, skipped: u64) {
    for (backend, percentiles) in &snapshot.latency_us {
        log::info!(
            target: "packd::stats",
            PACKD_BACKEND = backend.as_str(),
            PACKD_BRIEFS = percentiles.count,
            PACKD_P50_US = percentiles.p50,
            PACKD_P90_US = percentiles.p90,
            PACKD_P99_US = percentiles.p99,
            PACKD_MAX_US = percentiles.max;
            "{backend}: {} briefs, p50 {} us, p90 {} us, p99 {} us, max {} us ({skipped} brief records sampled out)",
            percentiles.count, percentiles.p50, percentiles.p90, percentiles.p99, percentiles.max
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut samples = Samples::default();
        for value in 1..=100 {
            samples.push(value);
        }
        assert_eq!(
            samples.percentiles(),
            Percentiles {
                count: 100,
                p50: 50,
                p90: 90,
                p99: 99,
                max: 100
            }
        );
        assert_eq!(
            Samples::default().percentiles(),
            Percentiles {
                count: 0,
                p50: 0,
                p90: 0,
                p99: 0,
                max: 0
            }
        );
    }

    #[test]
    fn above_the_budget_only_a_sample_plus_failed_and_slow_briefs_are_journaled() {
        let config = TelemetryConfig {
            log_every_brief_up_to_per_s: 10,
            sample_one_in: 25,
            slow_brief_ms: 50,
            ..TelemetryConfig::default()
        };
        let fast = BriefRecord {
            id: None,
            status: None,
            backend: Some("cpu"),
            bundle: None,
            timing: Timing {
                total: 900,
                ..Timing::default()
            },
            message: None,
            batch: 1,
        };
        let logged = (1..=1000)
            .filter(|&nth| journal_worthy(&config, &fast, nth))
            .count();
        assert_eq!(
            logged,
            10 + 1000 / 25,
            "the first 10, then every 25th (none of which is among the first 10)"
        );
        let failed = BriefRecord {
            status: Some(ErrorCode::BadImage),
            ..fast
        };
        assert!((1..=1000).all(|nth| journal_worthy(&config, &failed, nth)));
        let slow = BriefRecord {
            status: None,
            timing: Timing {
                total: 50_000,
                ..Timing::default()
            },
            ..failed
        };
        assert!((1..=1000).all(|nth| journal_worthy(&config, &slow, nth)));
    }

    #[test]
    fn counters_and_interval_reset() {
        let telemetry = Telemetry::new(TelemetryConfig::default());
        let ok = BriefRecord {
            id: Some("a"),
            status: None,
            backend: Some("cpu"),
            bundle: None,
            timing: Timing {
                total: 900,
                ..Timing::default()
            },
            message: None,
            batch: 1,
        };
        telemetry.record(&ok);
        telemetry.record(&BriefRecord {
            status: Some(ErrorCode::BadRequest),
            backend: None,
            ..ok
        });
        telemetry.count_dropped();
        let first = telemetry.snapshot("d", 3, 1);
        assert_eq!(
            (
                first.briefs,
                first.ok,
                first.errors[&ErrorCode::BadRequest],
                first.dropped,
                first.queue_depth
            ),
            (2, 1, 1, 1, 3)
        );
        assert_eq!(first.latency_us["cpu"].p50, 900);
        let second = telemetry.snapshot("d", 0, 0);
        assert!(second.latency_us.is_empty(), "latencies are per interval");
        assert_eq!(second.briefs, 2, "counts are since start");
    }
}
