//! Serving: the bounded work queue, the inference workers, and the path of one brief through
//! decoding → features → backend → recommendation → reply.

mod answer;
pub(crate) mod batch;
pub mod cache;
mod inline;
mod json;
mod process;
mod refuse;
pub mod route;
mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use crate::backend::Backend;
use crate::brief::{self, Brief, Envelope};
use crate::bundle::Bundle;
use crate::features::decode_budget::MemoryBudget;
use crate::features::{self, ImageLimits};
use crate::reply::{ApiError, BriefReply, Timing};
use crate::telemetry::field::escaped;
use crate::telemetry::Telemetry;
use batch::BatchSettings;
use cache::{CacheLimits, ReplyCache};
pub(crate) use route::{ReplyPrefix, ReplyRoute, RequestedRoute};

/// Publishes replies; the transport implements it.
pub(crate) trait ReplySink: Send + Sync {
    /// Sends one reply body (QoS 1, `application/json`).
    fn send(&self, route: &ReplyRoute, body: Vec<u8>);
    /// Resolves once the replies sent so far on the runtime's thread have all been handed on.
    fn emptied(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
}

/// Tells the broker a brief is done with; until then it would redeliver it to a restarted packd.
pub(crate) type Acknowledge = Box<dyn FnOnce() + Send>;

/// One brief as read off the socket.
pub(crate) struct Job {
    pub payload: Bytes,
    /// Set (to the payload's size) when the payload was over the limit and has been dropped.
    pub(crate) oversized: Option<usize>,
    /// The v5 Response Topic, unchecked; `None` means look for `reply_to` in the body.
    pub route: Option<RequestedRoute>,
    pub arrived: Instant,
    /// From the MQTT Message Expiry Interval.
    pub(crate) expires: Option<Instant>,
    /// Acknowledges the MQTT delivery once the brief is answered (or refused).
    pub(crate) acknowledge: Option<Acknowledge>,
}

impl Job {
    /// What the job holds while it waits: its payload and its requested way back (a Response
    /// Topic and Correlation Data of up to 64 KiB each, so a flood of tiny briefs with large
    /// routes is bounded by the queue's byte budget too).
    fn queued_bytes(&self) -> usize {
        self.payload.len()
            + self.route.as_ref().map_or(0, |route| {
                route.topic.len() + route.correlation.as_ref().map_or(0, Bytes::len)
            })
    }

    fn finish(&mut self) {
        if let Some(acknowledge) = self.acknowledge.take() {
            acknowledge();
        }
    }
}

/// The model currently serving: a verified bundle and a backend loaded from it.
pub(crate) struct ServingModel {
    pub bundle: Arc<Bundle>,
    pub backend: Arc<dyn Backend>,
}

/// The active model, swapped atomically; a brief holds its snapshot until it is answered.
pub(crate) type ActiveModel = Arc<ArcSwapOption<ServingModel>>;

/// The work queue and its workers.
pub(crate) struct Pipeline {
    senders: std::sync::Mutex<Option<(flume::Sender<Job>, flume::Sender<Rejected>)>>,
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    image_workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    shared: Arc<Shared>,
    /// With no workers: the queue for [`Pipeline::answer_inline`], until it takes it.
    inline: std::sync::Mutex<Option<inline::Inline>>,
    /// With no workers: disconnected once the inline task has ended.
    inline_ended: std::sync::Mutex<Option<flume::Receiver<()>>>,
}

/// Threads that decode reference images for `workers` workers. Briefs with an image wait for
/// these, not for the workers, so a flood of slow images cannot make a brief without one wait:
/// the workers only read each brief and its image's header, and hand the decode on. Half the
/// workers (at least one) keeps the images' share of the cores when text briefs arrive too.
pub fn image_workers(workers: usize) -> usize {
    workers.div_ceil(2).max(1)
}

/// Briefs with a reference image that may wait for an image thread, for a queue of `queue`:
/// as many as the queue holds, so that images alone never answer `overloaded` before it would.
/// Their payloads stay within the queue's byte budget.
pub(crate) fn image_queue_capacity(queue: usize) -> usize {
    queue
}

/// Which threads a brief is processed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// The workers: every brief starts here; one with a decodable image header moves on.
    General = 0,
    /// The image threads: briefs with a reference image, decoded and answered here.
    Images = 1,
}

/// What workers share.
struct Shared {
    device: String,
    model: ActiveModel,
    sink: Arc<dyn ReplySink>,
    reply_prefix: ReplyPrefix,
    cache: ReplyCache,
    telemetry: Arc<Telemetry>,
    image_limits: ImageLimits,
    queue_capacity: usize,
    queued: AtomicUsize,
    /// Most payload bytes the queue holds before `overloaded`.
    queue_bytes_budget: usize,
    /// Payload bytes of the briefs waiting for a worker, or for room in `brief_memory`.
    queued_bytes: AtomicUsize,
    /// What the briefs being decoded and answered hold together, one half for each lane so that
    /// slow image briefs can never keep text briefs waiting for room; see [`BRIEF_MEMORY_BYTES`].
    brief_memory: [MemoryBudget; 2],
    in_flight: AtomicUsize,
    workers: usize,
    /// Where the workers hand briefs with a reference image; `None` once shutting down.
    image_lane: std::sync::Mutex<Option<flume::Sender<Job>>>,
    image_queue_capacity: usize,
    /// Briefs waiting for an image thread.
    image_queued: AtomicUsize,
    /// Mean service time in microseconds, smoothed; feeds `retry_after_ms`.
    mean_service_us: AtomicU64,
    /// Per worker, then per image thread: when its current brief started (ms since `epoch`),
    /// 0 when idle.
    busy_since_ms: Vec<AtomicU64>,
    epoch: Instant,
    stopping: AtomicBool,
    batch: BatchSettings,
}

/// Settings of the pipeline.
#[derive(Debug, Clone)]
pub(crate) struct PipelineSettings {
    pub device: String,
    pub workers: usize,
    pub queue: usize,
    /// Most payload bytes waiting in the queue (`serve.queue_bytes_mib`).
    pub queue_bytes: usize,
    pub(crate) reply_cache_ttl: Duration,
    pub reply_cache_entries: usize,
    /// Most bytes of keys and replies in the duplicate-delivery cache (`serve.reply_cache_mib`).
    pub(crate) reply_cache_bytes: usize,
    pub(crate) image_limits: ImageLimits,
    /// Replies go only to topics under this (`serve.reply_prefix`).
    pub reply_prefix: ReplyPrefix,
    /// How workers form batches for the model (`serve.max_batch`, `serve.batch_window_us`).
    pub(crate) batch: BatchSettings,
}

/// Bytes that the briefs being decoded and answered may hold together, each counted at
/// [`brief::decode_cost`] of its payload (28 MiB for the largest), half of it for the workers and
/// half for the image threads: one of the largest briefs at once in each, or fifty of 100 KB,
/// whatever the number of workers. A worker waits for room before
/// it starts a brief, so `serve.workers` multiplies threads, not the memory of large briefs.
pub const BRIEF_MEMORY_BYTES: u64 = 64 * 1024 * 1024;

/// Memory packd holds whatever its configuration: the binary, the runtime, the MQTT client and
/// the loaded model of the shipped bundle, measured idle after a warm-up, with headroom.
pub(crate) const RUNTIME_BYTES: u64 = 96 * 1024 * 1024;
/// Memory each worker or image thread adds: its stack, the model's tensors for one inference, and what
/// the allocator keeps in the thread's arena.
pub(crate) const WORKER_BYTES: u64 = 4 * 1024 * 1024;
/// Largest reply body counted for the replies waiting to be published: a reply with its
/// preview PNG (at most [`crate::recommend::preview::MAX_PREVIEW_PNG_BYTES`], a third more in
/// base64) and the rest of the reply.
pub(crate) const REPLY_BYTES: u64 = 64 * 1024;

/// The most memory packd can hold with `workers` workers, a queue of `queue_bytes` payload bytes
/// and a reply cache of `reply_cache_bytes`; docs/security.md ("Issue 13: memory") explains
/// each term.
pub(crate) fn worst_case_memory(
    workers: usize,
    queue_bytes: usize,
    reply_cache_bytes: usize,
) -> u64 {
    let max_packet = u64::from(crate::transport::MAX_INCOMING_PACKET);
    // The receive buffer grows by doubling to hold the largest packet.
    let receive = 2 * max_packet;
    // Each with its requested way back: a Response Topic and Correlation Data of up to 64 KiB each.
    let rejected = (REJECTION_QUEUE * (REJECTED_PAYLOAD_KEPT + 2 * 65_535)) as u64;
    // Replies waiting for the MQTT client: a Response Topic of up to 1 KiB and Correlation Data
    // of up to 64 KiB each.
    let outgoing = crate::transport::REQUEST_CHANNEL as u64 * (1024 + 65_535 + REPLY_BYTES);
    RUNTIME_BYTES
        + WORKER_BYTES * (workers.max(1) + image_workers(workers)) as u64
        + queue_bytes as u64
        + rejected
        + BRIEF_MEMORY_BYTES
        + crate::features::decode_budget::DECODE_MEMORY_BYTES
        + reply_cache_bytes as u64
        + receive
        + outgoing
}

/// Rejections wait here to be answered `overloaded`; beyond it they are dropped and counted.
pub(crate) const REJECTION_QUEUE: usize = 64;

/// A rejected payload larger than this waits for its `overloaded` answer as its envelope alone,
/// so the rejection queue holds at most `REJECTION_QUEUE` × this many payload bytes (4 MiB).
const REJECTED_PAYLOAD_KEPT: usize = 64 * 1024;

/// Why a brief was refused `overloaded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overload {
    /// Every queue slot is taken.
    Slots,
    /// The queued payloads would exceed the byte budget.
    Bytes,
    /// Every slot of the image threads' queue is taken.
    Images,
}

/// A brief waiting to be answered `overloaded`.
struct Rejected {
    job: Job,
    /// Read before a large payload was let go; `None` means read it from the payload.
    envelope: Option<Envelope>,
    reason: Overload,
}

impl Pipeline {
    /// Starts the workers and the image threads.
    pub fn start(
        settings: PipelineSettings,
        model: ActiveModel,
        sink: Arc<dyn ReplySink>,
        telemetry: Arc<Telemetry>,
    ) -> Pipeline {
        let (sender, receiver) = flume::bounded::<Job>(settings.queue);
        let (rejections, rejected) = flume::bounded::<Rejected>(REJECTION_QUEUE);
        let image_threads = image_workers(settings.workers);
        let image_capacity = image_queue_capacity(settings.queue);
        let (image_sender, image_receiver) = flume::bounded::<Job>(image_capacity);
        let shared = Arc::new(Shared {
            device: settings.device,
            model,
            sink,
            reply_prefix: settings.reply_prefix,
            cache: ReplyCache::new(CacheLimits {
                ttl: settings.reply_cache_ttl,
                entries: settings.reply_cache_entries,
                bytes: settings.reply_cache_bytes,
            }),
            telemetry,
            image_limits: settings.image_limits,
            queue_capacity: settings.queue,
            queued: AtomicUsize::new(0),
            queue_bytes_budget: settings.queue_bytes,
            queued_bytes: AtomicUsize::new(0),
            brief_memory: [
                MemoryBudget::new(BRIEF_MEMORY_BYTES / 2),
                MemoryBudget::new(BRIEF_MEMORY_BYTES / 2),
            ],
            in_flight: AtomicUsize::new(0),
            workers: settings.workers,
            image_lane: std::sync::Mutex::new(Some(image_sender)),
            image_queue_capacity: image_capacity,
            image_queued: AtomicUsize::new(0),
            mean_service_us: AtomicU64::new(5_000),
            busy_since_ms: (0..settings.workers.max(1) + image_threads)
                .map(|_| AtomicU64::new(0))
                .collect(),
            epoch: Instant::now(),
            stopping: AtomicBool::new(false),
            batch: settings.batch,
        });
        let mut workers = Vec::with_capacity(settings.workers + 1);
        for index in 0..settings.workers {
            let name = format!("packd-worker-{index}");
            workers.extend(shared.spawn(name, index, Lane::General, receiver.clone()));
        }
        let image_workers = (0..image_threads)
            .filter_map(|thread| {
                let name = format!("packd-image-{thread}");
                let index = settings.workers.max(1) + thread;
                shared.spawn(name, index, Lane::Images, image_receiver.clone())
            })
            .collect();
        let rejecter = shared.clone();
        if let Ok(handle) = std::thread::Builder::new()
            .name("packd-overload".into())
            .spawn(move || {
                while let Ok(mut rejected) = rejected.recv() {
                    rejecter.reject_overloaded(&rejected);
                    rejected.job.finish();
                }
            })
        {
            workers.push(handle);
        }
        let (inline, inline_ended) = if settings.workers == 0 {
            let (ended, inline_ended) = flume::bounded(0);
            (Some(inline::Inline { receiver, ended }), Some(inline_ended))
        } else {
            (None, None)
        };
        Pipeline {
            senders: std::sync::Mutex::new(Some((sender, rejections))),
            workers: std::sync::Mutex::new(workers),
            image_workers: std::sync::Mutex::new(image_workers),
            shared,
            inline: std::sync::Mutex::new(inline),
            inline_ended: std::sync::Mutex::new(inline_ended),
        }
    }

    /// Hands a brief to the workers without waiting; a queue out of slots or over its byte
    /// budget answers `overloaded`.
    pub(crate) fn submit(&self, job: Job) {
        if self.shared.stopping.load(Ordering::Relaxed) {
            // Not acknowledged: the broker keeps it for the next start of packd.
            return;
        }
        let senders = self
            .senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some((sender, rejections)) = senders.as_ref() else {
            return;
        };
        let bytes = job.queued_bytes();
        let queued_bytes = self.shared.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        let refused = if self.shared.over_byte_budget(queued_bytes, bytes) {
            Err((job, Overload::Bytes))
        } else {
            self.shared.queued.fetch_add(1, Ordering::Relaxed);
            sender.try_send(job).map_err(|error| {
                self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                (error.into_inner(), Overload::Slots)
            })
        };
        let Err((mut job, reason)) = refused else {
            return;
        };
        self.shared.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        let envelope = (job.payload.len() > REJECTED_PAYLOAD_KEPT).then(|| {
            let envelope = brief::read_envelope(&job.payload);
            job.payload = Bytes::new();
            envelope
        });
        let rejected = Rejected {
            job,
            envelope,
            reason,
        };
        if let Err(error) = rejections.try_send(rejected) {
            // Nobody can even say `overloaded`: drop it, but acknowledge so the broker does
            // not push the same flood back at us.
            self.shared.telemetry.count_dropped();
            let mut rejected = error.into_inner();
            log::warn!(
                "overload queue full: brief {} dropped unanswered",
                escaped(
                    rejected
                        .envelope
                        .as_ref()
                        .and_then(|envelope| envelope.id.as_deref())
                        .unwrap_or("(id not read)")
                )
            );
            rejected.job.finish();
        }
    }

    /// Briefs waiting for a worker or an image thread.
    pub fn queue_depth(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
            + self.shared.image_queued.load(Ordering::Relaxed)
    }

    /// How many briefs the queue holds before `overloaded`.
    pub(crate) fn queue_capacity(&self) -> usize {
        self.shared.queue_capacity
    }

    /// Briefs being processed now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// The longest any worker has been on its current brief: a hung backend shows here.
    pub(crate) fn longest_busy(&self) -> Duration {
        let now = self.shared.epoch.elapsed().as_millis() as u64 + 1;
        let longest = self
            .shared
            .busy_since_ms
            .iter()
            .map(|since| since.load(Ordering::Relaxed))
            .filter(|&since| since != 0)
            .map(|since| now.saturating_sub(since))
            .max();
        Duration::from_millis(longest.unwrap_or(0))
    }

    /// Stops taking briefs, lets the queues and in-flight briefs finish, and joins the workers
    /// and then the image threads (the workers may still hand them briefs until they end).
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        join_all(&self.workers);
        self.wait_for_inline();
        self.shared
            .image_lane
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        join_all(&self.image_workers);
    }
}

fn join_all(threads: &std::sync::Mutex<Vec<JoinHandle<()>>>) {
    let threads = std::mem::take(
        &mut *threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    for thread in threads {
        let _ = thread.join();
    }
}

impl Shared {
    /// Whether `bytes` more would take the waiting briefs over the queue's byte budget. An empty
    /// queue takes any brief: the largest payload is the budget's floor, and its way back may
    /// add up to 128 KiB.
    fn over_byte_budget(&self, queued: usize, bytes: usize) -> bool {
        queued > 0 && queued + bytes > self.queue_bytes_budget
    }

    /// Whether a worker hands this brief to the image threads: it has an image whose header
    /// passes the limits (one that does not is refused here at once, as cheaply as a text brief).
    fn belongs_to_image_lane(&self, brief: &Brief) -> bool {
        brief.image.as_deref().is_some_and(|bytes| {
            features::image::read_image_header(bytes, &self.image_limits).is_ok()
        })
    }

    /// Moves `job`, with its acknowledgement, to the image threads' queue; when that is full it
    /// is answered `overloaded`. Its payload counts against the queue's byte budget again while
    /// it waits there.
    fn hand_to_image_lane(&self, job: &mut Job) {
        let moved = Job {
            payload: job.payload.clone(),
            oversized: job.oversized,
            route: job.route.clone(),
            arrived: job.arrived,
            expires: job.expires,
            acknowledge: job.acknowledge.take(),
        };
        let bytes = moved.queued_bytes();
        // Checked like a brief arriving: briefs admitted while this one was with a worker may
        // have taken the room its payload had.
        let over_budget =
            self.over_byte_budget(self.queued_bytes.fetch_add(bytes, Ordering::Relaxed), bytes);
        self.image_queued.fetch_add(1, Ordering::Relaxed);
        let lane = self
            .image_lane
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sent = match lane.as_ref() {
            Some(_) if over_budget => Err((moved, Overload::Bytes)),
            Some(sender) => sender
                .try_send(moved)
                .map_err(|error| (error.into_inner(), Overload::Images)),
            None => Err((moved, Overload::Images)),
        };
        drop(lane);
        if let Err((job, reason)) = sent {
            self.image_queued.fetch_sub(1, Ordering::Relaxed);
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            let mut rejected = Rejected {
                job,
                envelope: None,
                reason,
            };
            self.reject_overloaded(&rejected);
            rejected.job.finish();
        }
    }
}

/// When inference must have started: the brief's `deadline_ms` and the message expiry, whichever is sooner.
fn effective_deadline(job: &Job, brief: &Brief) -> Option<Instant> {
    let from_brief = brief
        .deadline_ms
        .map(|ms| job.arrived + Duration::from_millis(ms));
    match (from_brief, job.expires) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn micros(duration: Duration) -> u64 {
    duration.as_micros().min(u128::from(u64::MAX)) as u64
}

/// The result of one brief with its measurements.
struct Outcome {
    result: Result<Box<BriefReply>, ApiError>,
    backend: Option<String>,
    timing: Timing,
    /// How many briefs ran through the model together with it (itself included); 0 when it
    /// was not run.
    batch: usize,
}

impl Outcome {
    fn failed(error: ApiError, queue_us: u64, started: Instant) -> Outcome {
        let total = queue_us + micros(started.elapsed());
        Outcome {
            result: Err(error),
            backend: None,
            timing: Timing {
                queue: queue_us,
                total,
                ..Timing::default()
            },
            batch: 0,
        }
    }
}
