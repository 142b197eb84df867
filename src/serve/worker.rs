//! The worker and image threads: each takes a batch of briefs (one on the image lane), prepares
//! each, runs the batch through the model, and answers each.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{batch, Job, Lane, Shared};
use crate::brief;

impl Shared {
    /// Starts a thread that processes the briefs of `receiver` on `lane`; `index` is its slot
    /// in `busy_since_ms`.
    pub(super) fn spawn(
        self: &Arc<Self>,
        name: String,
        index: usize,
        lane: Lane,
        receiver: flume::Receiver<Job>,
    ) -> Option<JoinHandle<()>> {
        let shared = self.clone();
        let spawned = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                while let Ok(first) = receiver.recv() {
                    // Images are decoded one by one: a batch would make each wait for the others'.
                    let jobs = match lane {
                        Lane::General => {
                            let max = shared.batch_limit();
                            batch::collect(&receiver, first, max, shared.batch.window)
                        }
                        Lane::Images => vec![first],
                    };
                    shared.take(index, lane, jobs);
                }
            });
        spawned
            .map_err(|error| log::error!("cannot start {name}: {error}"))
            .ok()
    }

    /// The most briefs a worker takes at once now: the configured batch, within what the
    /// active backend runs together.
    pub(super) fn batch_limit(&self) -> usize {
        let backend_max = self
            .model
            .load()
            .as_ref()
            .map_or(1, |model| model.backend.max_batch());
        self.batch.max.min(backend_max).max(1)
    }

    /// Moves `jobs` from waiting to in flight and runs them. Each brief holds its share of
    /// the lane's memory while it is processed; a companion of the first whose share is not
    /// free at once runs after the batch, on its own, so a batch never waits on itself.
    pub(super) fn take(&self, index: usize, lane: Lane, jobs: Vec<Job>) {
        let budget = &self.brief_memory[lane as usize];
        let waiting = match lane {
            Lane::General => &self.queued,
            Lane::Images => &self.image_queued,
        };
        let mut now = Vec::with_capacity(jobs.len());
        let mut reservations = Vec::with_capacity(jobs.len());
        let mut later = Vec::new();
        for (position, job) in jobs.into_iter().enumerate() {
            // Counted in flight before it stops counting as waiting, so a brief moving from a
            // worker to an image thread never looks like an idle packd.
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            waiting.fetch_sub(1, Ordering::Relaxed);
            let cost = brief::decode_cost(job.payload.len());
            let reservation = if position == 0 {
                Some(budget.reserve(cost))
            } else {
                budget.try_reserve(cost)
            };
            match reservation {
                Some(reservation) => {
                    // The payload stays counted in the queue's bytes until the brief has room
                    // to be decoded, so briefs waiting for room are bounded as queued ones are.
                    self.queued_bytes
                        .fetch_sub(job.queued_bytes(), Ordering::Relaxed);
                    reservations.push(reservation);
                    now.push(job);
                }
                None => later.push(job),
            }
        }
        // `run` drops the payloads before the reservations go.
        self.run(index, lane, now);
        drop(reservations);
        for job in later {
            let _memory = budget.reserve(brief::decode_cost(job.payload.len()));
            self.queued_bytes
                .fetch_sub(job.queued_bytes(), Ordering::Relaxed);
            self.run(index, lane, vec![job]);
        }
    }

    /// Processes briefs that the caller has counted in flight: prepares each, runs the
    /// prepared ones through the model together, answers each, and acknowledges them all.
    fn run(&self, index: usize, lane: Lane, mut jobs: Vec<Job>) {
        self.busy_since_ms[index].store(
            self.epoch.elapsed().as_millis() as u64 + 1,
            Ordering::Relaxed,
        );
        // A panic in a decoder, the backend or the recommender costs its brief an `internal`
        // reply, never the thread, the batch's other briefs or an acknowledgement.
        let mut slots = Vec::with_capacity(jobs.len());
        let mut prepared = Vec::with_capacity(jobs.len());
        for (slot, job) in jobs.iter_mut().enumerate() {
            match catch_unwind(AssertUnwindSafe(|| self.prepare(job, lane))) {
                Ok(Some(ready)) => {
                    slots.push(slot);
                    prepared.push(ready);
                }
                Ok(None) => {}
                Err(_) => self.answer_after_panic(job),
            }
        }
        let inferred = self.infer(&prepared);
        if !prepared.is_empty() {
            self.telemetry.metrics.batch(prepared.len());
        }
        for ((slot, ready), inferred) in slots.into_iter().zip(prepared).zip(inferred) {
            let answered = catch_unwind(AssertUnwindSafe(|| {
                let finished = self.answer(ready, inferred);
                self.finish(&finished);
            }));
            if answered.is_err() {
                self.answer_after_panic(&jobs[slot]);
            }
        }
        let count = jobs.len();
        for job in &mut jobs {
            job.finish();
        }
        drop(jobs);
        self.busy_since_ms[index].store(0, Ordering::Relaxed);
        self.in_flight.fetch_sub(count, Ordering::Relaxed);
    }
}
