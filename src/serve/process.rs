//! The path of one brief on a worker, as named steps: decode → way back → dedupe → encode, and
//! after its batch's inference (`answer.rs`) → publish → record.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::answer::Prepared;
use super::cache::{self, Lookup, RequestKey};
use super::{micros, Job, Lane, Outcome, ReplyRoute, ServingModel, Shared};
use crate::brief::{self, Brief};
use crate::reply::{self, ApiError, ErrorCode};
use crate::telemetry::field::escaped;
use crate::telemetry::BriefRecord;

/// A brief's payload, decoded or refused, with what its envelope says about the way back.
struct Decoded {
    brief: Result<Brief, ApiError>,
    /// The brief's `id`, read from the envelope when the brief itself did not decode.
    id: Option<String>,
    /// The body's `reply_to`, read only when the properties gave no way back.
    reply_to: Option<String>,
}

/// What the reply cache made of a delivery.
enum Delivery {
    /// To be answered; the key completes its cache entry (none without correlation data or id).
    New(Option<RequestKey>),
    /// A redelivery: answered from the cache, being answered, or answered enough already.
    Duplicate,
}

/// Where a brief's answer goes, and what its record needs.
pub(super) struct Answering {
    route: ReplyRoute,
    /// Completes (or abandons) its entry in the reply cache.
    key: Option<RequestKey>,
    id: Option<String>,
    pub queue_us: u64,
    /// When a worker took it up.
    pub started: Instant,
}

/// A brief's outcome, ready to be published and recorded.
pub(super) struct Finished {
    pub answering: Answering,
    /// The snapshot that answered it, if one was active.
    pub model: Option<Arc<ServingModel>>,
    pub outcome: Outcome,
}

/// Bytes reserved for a reply's JSON: an answer with three 16 × 12 heatmaps is about 5.3 KB.
const REPLY_CAPACITY: usize = 8 * 1024;

impl Shared {
    /// Reads one brief up to its inference. What needs no model run (a refusal, a duplicate,
    /// an error, a hand-off to the image lane) is dealt with here; the rest comes back encoded,
    /// to run with its batch.
    pub(super) fn prepare(&self, job: &mut Job, lane: Lane) -> Option<Prepared> {
        let started = Instant::now();
        let queue_us = micros(started.saturating_duration_since(job.arrived));
        let decoded = decode(job);
        let route = self.way_back(job, decoded.reply_to.clone(), decoded.id.as_deref(), "")?;
        // Before the reply cache: the image thread looks the brief up there itself.
        if lane == Lane::General
            && decoded
                .brief
                .as_ref()
                .is_ok_and(|brief| self.belongs_to_image_lane(brief))
        {
            self.hand_to_image_lane(job);
            return None;
        }
        let id = decoded.id;
        let Delivery::New(key) = self.dedupe(&route, id.as_deref(), started) else {
            return None;
        };
        let answering = Answering {
            route,
            key,
            id,
            queue_us,
            started,
        };
        let snapshot = self.model.load_full();
        let encoded = match decoded.brief {
            Ok(brief) => self.encode(brief, job, snapshot, answering),
            Err(error) => Err(Box::new(Finished {
                outcome: Outcome::failed(error, queue_us, started),
                answering,
                model: snapshot,
            })),
        };
        match encoded {
            Ok(prepared) => Some(prepared),
            Err(finished) => {
                self.finish(&finished);
                None
            }
        }
    }

    /// Publishes a brief's outcome and records it.
    pub(super) fn finish(&self, finished: &Finished) {
        let answering = &finished.answering;
        let id = answering.id.as_deref();
        self.publish(
            &answering.route,
            answering.key.as_ref(),
            id,
            &finished.outcome,
        );
        self.record(
            id,
            finished.model.as_deref(),
            &finished.outcome,
            answering.queue_us,
        );
    }

    /// Looks the request up in the reply cache.
    fn dedupe(&self, route: &ReplyRoute, id: Option<&str>, started: Instant) -> Delivery {
        // Redeliveries are recognised by correlation data, else by id, per reply destination.
        let token = route
            .correlation()
            .map(|data| data.to_vec())
            .or_else(|| id.map(|id| id.as_bytes().to_vec()));
        let Some(token) = token else {
            return Delivery::New(None);
        };
        let key = RequestKey {
            reply_topic: route.topic().to_string(),
            token,
        };
        match self.cache.lookup(&key, started) {
            Lookup::Compute => return Delivery::New(Some(key)),
            Lookup::Replay(reply) => self.sink.send(route, reply),
            Lookup::Pending => {}
            Lookup::Exhausted => log::warn!(
                "brief {} delivered again after {} replies to {}; acknowledged without another reply",
                escaped(id.unwrap_or("(no id)")),
                cache::MAX_ANSWERS,
                escaped(route.topic())
            ),
        }
        self.telemetry.count_duplicate();
        Delivery::Duplicate
    }

    /// Sends the reply, once more for each duplicate that arrived while it was computed, and
    /// keeps it in the reply cache unless a retry deserves a fresh attempt.
    fn publish(
        &self,
        route: &ReplyRoute,
        key: Option<&RequestKey>,
        id: Option<&str>,
        outcome: &Outcome,
    ) {
        let body = match &outcome.result {
            Ok(reply) => {
                // Room for a whole reply up front: grown from serde_json's default, a 5 KB reply
                // was copied through six buffers.
                let mut body = Vec::with_capacity(REPLY_CAPACITY);
                match super::json::write(&mut body, reply) {
                    Ok(()) => body,
                    Err(error) => {
                        let error = ApiError::new(
                            ErrorCode::Internal,
                            format!("reply serialisation: {error}"),
                        );
                        reply::error_body(id, &error, None)
                    }
                }
            }
            Err(error) => reply::error_body(id, error, None),
        };
        // A retry after `expired`, `no_model` or `internal` deserves a fresh attempt, not a replay.
        let transient = matches!(
            &outcome.result,
            Err(error) if matches!(error.code, ErrorCode::Expired | ErrorCode::NoModel | ErrorCode::Internal)
        );
        let copies = 1 + key
            .map(|key| {
                if transient {
                    self.cache.abandon(key)
                } else {
                    self.cache.complete(key, &body)
                }
            })
            .unwrap_or(0);
        for _ in 1..copies {
            self.sink.send(route, body.clone());
        }
        self.sink.send(route, body);
    }

    /// Feeds the service-time estimate behind `retry_after_ms` and logs the brief's record.
    fn record(
        &self,
        id: Option<&str>,
        model: Option<&ServingModel>,
        outcome: &Outcome,
        queue_us: u64,
    ) {
        let total_us = outcome.timing.total;
        let previous = self.mean_service_us.load(Ordering::Relaxed);
        self.mean_service_us.store(
            (previous * 7 + total_us.saturating_sub(queue_us)) / 8,
            Ordering::Relaxed,
        );
        let failure = outcome.result.as_ref().err();
        self.telemetry.record(&BriefRecord {
            id,
            status: failure.map(|error| error.code),
            backend: outcome.backend.as_deref(),
            bundle: model.map(|model| model.bundle.label()).as_deref(),
            timing: outcome.timing,
            message: failure.map(|error| error.message.as_str()),
            batch: outcome.batch,
        });
    }
}

/// Decodes the payload (or refuses an oversized one) and reads the way back from its envelope.
fn decode(job: &Job) -> Decoded {
    let decoded = match job.oversized {
        Some(size) => Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "payload of {size} bytes is over the {} byte limit",
                brief::MAX_PAYLOAD_BYTES
            ),
        )),
        None => brief::decode(&job.payload),
    };
    match decoded {
        Ok(brief) => {
            // The body is read for `reply_to` only when the properties gave no way back.
            let reply_to = job
                .route
                .is_none()
                .then(|| brief::read_envelope(&job.payload).reply_to)
                .flatten();
            Decoded {
                id: brief.id.clone(),
                brief: Ok(brief),
                reply_to,
            }
        }
        Err(error) => {
            let envelope = brief::read_envelope(&job.payload);
            Decoded {
                brief: Err(error),
                id: envelope.id,
                reply_to: envelope.reply_to,
            }
        }
    }
}
