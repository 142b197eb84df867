//! Replies a brief gets without an answer: no way back, a worker's panic, overload.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{micros, Job, Overload, Rejected, ReplyRoute, Shared};
use crate::brief;
use crate::reply::{self, ApiError, ErrorCode, Timing};
use crate::telemetry::field::escaped;
use crate::telemetry::BriefRecord;

impl Shared {
    /// The route to answer `job` by; `None` after counting and logging one that has no way
    /// back packd may use (it is acknowledged all the same, so never redelivered for this).
    pub(super) fn way_back(
        &self,
        job: &Job,
        reply_to: Option<String>,
        id: Option<&str>,
        context: &str,
    ) -> Option<ReplyRoute> {
        match self.reply_prefix.resolve(job.route.as_ref(), reply_to) {
            Ok(route) => Some(route),
            Err(no_way_back) => {
                log::warn!(
                    "brief {}{context} {no_way_back}; dropped",
                    escaped(id.unwrap_or("(no id)"))
                );
                self.telemetry.count_dropped();
                None
            }
        }
    }

    pub(super) fn answer_after_panic(&self, job: &Job) {
        let envelope = brief::read_envelope(&job.payload);
        log::error!(
            "a worker panicked on brief {}",
            escaped(envelope.id.as_deref().unwrap_or("(no id)"))
        );
        // Whether there is a way back was counted and logged before the panic, if ever.
        let route = self
            .reply_prefix
            .resolve(job.route.as_ref(), envelope.reply_to.clone())
            .ok();
        let error = ApiError::new(
            ErrorCode::Internal,
            "internal error while processing the brief",
        );
        if let Some(route) = route {
            self.sink.send(
                &route,
                reply::error_body(envelope.id.as_deref(), &error, None),
            );
        }
        self.telemetry.record(&BriefRecord {
            id: envelope.id.as_deref(),
            status: Some(ErrorCode::Internal),
            backend: None,
            bundle: None,
            timing: Timing::default(),
            message: Some(&error.message),
            batch: 0,
        });
    }

    pub(super) fn reject_overloaded(&self, rejected: &Rejected) {
        let job = &rejected.job;
        let envelope = rejected
            .envelope
            .clone()
            .unwrap_or_else(|| brief::read_envelope(&job.payload));
        let Some(route) = self.way_back(
            job,
            envelope.reply_to.clone(),
            envelope.id.as_deref(),
            " refused as overloaded",
        ) else {
            return;
        };
        let retry_after_ms = self.retry_after_ms();
        let why = match rejected.reason {
            Overload::Slots => format!("the work queue is full ({} briefs)", self.queue_capacity),
            Overload::Bytes => format!(
                "the briefs waiting in the work queue would exceed its {} byte budget",
                self.queue_bytes_budget
            ),
            Overload::Images => format!(
                "the queue of briefs with a reference image is full ({} briefs)",
                self.image_queue_capacity
            ),
        };
        let error = ApiError::new(
            ErrorCode::Overloaded,
            format!("{why}; retry in {retry_after_ms} ms"),
        );
        self.sink.send(
            &route,
            reply::error_body(envelope.id.as_deref(), &error, Some(retry_after_ms)),
        );
        let now = Instant::now();
        self.telemetry.record(&BriefRecord {
            id: envelope.id.as_deref(),
            status: Some(ErrorCode::Overloaded),
            backend: None,
            bundle: None,
            timing: Timing {
                total: micros(now.saturating_duration_since(job.arrived)),
                ..Timing::default()
            },
            message: Some(&error.message),
            batch: 0,
        });
    }

    /// How long until the queue has drained enough to take another brief, roughly.
    fn retry_after_ms(&self) -> u64 {
        let queued = self.queued.load(Ordering::Relaxed) as u64 + 1;
        let per_brief_us = self.mean_service_us.load(Ordering::Relaxed).max(100);
        (queued * per_brief_us / self.workers.max(1) as u64 / 1000).clamp(50, 10_000)
    }
}
