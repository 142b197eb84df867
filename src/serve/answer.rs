//! Answering decoded briefs: deadline → features, then the model for the whole batch, then
//! recommendation → reply for each.

use std::sync::Arc;
use std::time::Instant;

use super::process::{Answering, Finished};
use super::{micros, Job, Outcome, ServingModel, Shared};
use crate::backend::{Inference, ModelInputs};
use crate::brief::Brief;
use crate::features::{self, EncodedBrief};
use crate::recommend::{self, Suggestions};
use crate::reply::{ApiError, BriefReply, BundleRef, ErrorCode, ReplyStatus, Timing, API_VERSION};

/// A brief read and encoded, waiting for its batch to run through the model.
pub(super) struct Prepared {
    /// Where and how its answer goes.
    pub answering: Answering,
    brief: Brief,
    /// The model snapshot it was encoded for; it is answered by the same.
    pub model: Arc<ServingModel>,
    encoded: EncodedBrief,
    /// When encoding ended.
    decoded: Instant,
    /// When inference must have started, if ever.
    deadline: Option<Instant>,
    arrived: Instant,
}

impl Prepared {
    fn inputs(&self) -> ModelInputs<'_> {
        ModelInputs {
            brief: &self.encoded.terms,
            image: &self.encoded.image,
            brand: &self.encoded.brand,
        }
    }
}

/// One brief's inference: where it ran, when it ended, and how many briefs ran with it.
pub(super) struct Inferred {
    inference: Inference,
    ended: Instant,
    pub batch: usize,
}

impl Shared {
    /// Encodes `brief` for the active model, or finishes it with the outcome it earns instead
    /// (expired, no model, a bad value or image).
    pub(super) fn encode(
        &self,
        brief: Brief,
        job: &Job,
        model: Option<Arc<ServingModel>>,
        answering: Answering,
    ) -> Result<Prepared, Box<Finished>> {
        let failed = |error: ApiError, answering: Answering, model| {
            let outcome = Outcome::failed(error, answering.queue_us, answering.started);
            Err(Box::new(Finished {
                answering,
                model,
                outcome,
            }))
        };
        let deadline = super::effective_deadline(job, &brief);
        if deadline.is_some_and(|deadline| answering.started > deadline) {
            return failed(too_late(), answering, model);
        }
        let Some(model) = model else {
            let error = ApiError::new(ErrorCode::NoModel, "no model bundle is active");
            return failed(error, answering, None);
        };
        let encoded = match features::encode(&brief, &model.bundle, &self.image_limits) {
            Ok(encoded) => encoded,
            Err(error) => return failed(error, answering, Some(model)),
        };
        Ok(Prepared {
            answering,
            brief,
            model,
            encoded,
            decoded: Instant::now(),
            deadline,
            arrived: job.arrived,
        })
    }

    /// Runs `prepared` through their models, one call per run of briefs encoded for the same
    /// snapshot (all of them, unless a bundle swap came in between); a brief whose deadline
    /// passed while its batch formed is not run. Results are in the order of `prepared`.
    pub(super) fn infer(&self, prepared: &[Prepared]) -> Vec<Result<Inferred, ApiError>> {
        let now = Instant::now();
        let mut results: Vec<Result<Inferred, ApiError>> = Vec::with_capacity(prepared.len());
        for group in prepared.chunk_by(|a, b| Arc::ptr_eq(&a.model, &b.model)) {
            let live: Vec<&Prepared> = group
                .iter()
                .filter(|one| one.deadline.is_none_or(|deadline| now <= deadline))
                .collect();
            let mut ran = run_group(&live).into_iter();
            for one in group {
                let expired = one.deadline.is_some_and(|deadline| now > deadline);
                results.push(if expired {
                    Err(too_late())
                } else {
                    ran.next().unwrap_or_else(|| Err(inference_failed()))
                });
            }
        }
        results
    }

    /// The reply to a prepared brief from its inference, or the error it earned.
    pub(super) fn answer(
        &self,
        mut prepared: Prepared,
        inferred: Result<Inferred, ApiError>,
    ) -> Finished {
        let (queue_us, started) = (prepared.answering.queue_us, prepared.answering.started);
        let outcome = inferred
            .and_then(|inferred| self.suggest(&mut prepared, inferred))
            .unwrap_or_else(|error| Outcome::failed(error, queue_us, started));
        Finished {
            answering: prepared.answering,
            model: Some(prepared.model),
            outcome,
        }
    }

    /// Recommendation and reply; the reply takes the encoding's `understood` and `warnings`.
    fn suggest(&self, prepared: &mut Prepared, inferred: Inferred) -> Result<Outcome, ApiError> {
        let model = &prepared.model;
        let suggestions = recommend::recommend(
            &model.bundle,
            &inferred.inference.outputs,
            &prepared.encoded,
            (&prepared.brief).into(),
        )
        .map_err(|error| {
            log::error!(
                "post-processing failed with bundle {}: {error}",
                model.bundle.label()
            );
            ApiError::new(ErrorCode::Internal, "post-processing failed")
        })?;
        let timing = timing(prepared, inferred.ended);
        let target = inferred.inference.target;
        let reply = self.reply(prepared, &target, timing, suggestions);
        Ok(Outcome {
            result: Ok(Box::new(reply)),
            backend: Some(target),
            timing,
            batch: inferred.batch,
        })
    }

    fn reply(
        &self,
        prepared: &mut Prepared,
        ran_on: &str,
        timing: Timing,
        suggestions: Suggestions,
    ) -> BriefReply {
        let manifest = &prepared.model.bundle.manifest;
        BriefReply {
            v: API_VERSION,
            id: prepared.brief.id.clone(),
            status: ReplyStatus::Ok,
            device: self.device.clone(),
            bundle: BundleRef {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
            },
            backend: ran_on.to_string(),
            timing_us: timing,
            styles: suggestions.styles,
            palettes: suggestions.palettes,
            fonts: suggestions.fonts,
            layout: suggestions.layout,
            // Moved, not cloned: the encoding is done with.
            understood: std::mem::take(&mut prepared.encoded.understood),
            warnings: std::mem::take(&mut prepared.encoded.warnings),
            preview_png: suggestions.preview_png,
        }
    }
}

/// One model call for `live` (all encoded for one snapshot); a failure, or a panic in the
/// backend, costs each of them an `internal` reply and is logged here once.
fn run_group(live: &[&Prepared]) -> Vec<Result<Inferred, ApiError>> {
    let Some(first) = live.first() else {
        return Vec::new();
    };
    let backend = &first.model.backend;
    let inputs: Vec<ModelInputs<'_>> = live.iter().map(|one| one.inputs()).collect();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| backend.run_batch(&inputs)));
    let ended = Instant::now();
    let failure = match ran {
        Ok(Ok(inferences)) if inferences.len() == live.len() => {
            return inferences
                .into_iter()
                .map(|inference| {
                    Ok(Inferred {
                        inference,
                        ended,
                        batch: live.len(),
                    })
                })
                .collect();
        }
        Ok(Ok(inferences)) => format!("{} results for a batch of {}", inferences.len(), live.len()),
        Ok(Err(error)) => error.to_string(),
        Err(_) => "the backend panicked".to_string(),
    };
    log::error!(
        "inference of a batch of {} failed on {}: {failure}",
        live.len(),
        backend.name()
    );
    live.iter().map(|_| Err(inference_failed())).collect()
}

fn inference_failed() -> ApiError {
    ApiError::new(ErrorCode::Internal, "inference failed")
}

fn too_late() -> ApiError {
    ApiError::new(
        ErrorCode::Expired,
        "the deadline passed before inference could start",
    )
}

fn timing(prepared: &Prepared, inferred: Instant) -> Timing {
    let finished = Instant::now();
    let answering = &prepared.answering;
    Timing {
        queue: answering.queue_us,
        decode: micros(prepared.decoded - answering.started),
        infer: micros(inferred.saturating_duration_since(prepared.decoded)),
        post: micros(finished.saturating_duration_since(inferred)),
        total: micros(finished.saturating_duration_since(prepared.arrived)),
    }
}
