//! Answering a decoded brief: deadline → features → model → recommendation → reply.

use std::time::Instant;

use super::{micros, Job, Outcome, ServingModel, Shared};
use crate::backend::{Inference, ModelInputs};
use crate::brief::Brief;
use crate::features::{self, EncodedBrief};
use crate::recommend::{self, Suggestions};
use crate::reply::{ApiError, BriefReply, BundleRef, ErrorCode, ReplyStatus, Timing, API_VERSION};

/// What the model and the recommender made of a brief.
struct Answered {
    /// Where the model ran, as replies name it.
    target: String,
    /// When inference ended.
    inferred: Instant,
    suggestions: Suggestions,
}

/// When each stage of an answer ended, for the reply's `timing_us`.
struct Stages {
    started: Instant,
    decoded: Instant,
    inferred: Instant,
}

impl Shared {
    /// The reply to `brief` (or the error it earns) with its timings.
    pub(super) fn answer(
        &self,
        brief: &Brief,
        job: &Job,
        model: Option<&ServingModel>,
        queue_us: u64,
        started: Instant,
    ) -> Outcome {
        let failed = |error: ApiError| Outcome::failed(error, queue_us, started);
        let deadline = super::effective_deadline(job, brief);
        let expired = |now: Instant| deadline.is_some_and(|deadline| now > deadline);
        if expired(started) {
            return failed(too_late());
        }
        let Some(model) = model else {
            return failed(ApiError::new(
                ErrorCode::NoModel,
                "no model bundle is active",
            ));
        };
        let encoded = match features::encode(brief, &model.bundle, &self.image_limits) {
            Ok(encoded) => encoded,
            Err(error) => return failed(error),
        };
        let decoded = Instant::now();
        if expired(decoded) {
            return failed(too_late());
        }
        let answered = match infer_and_recommend(model, brief, &encoded) {
            Ok(answered) => answered,
            Err(error) => return failed(error),
        };
        let stages = Stages {
            started,
            decoded,
            inferred: answered.inferred,
        };
        let timing = timing(job, queue_us, &stages);
        let reply = self.reply(
            brief,
            model,
            &answered.target,
            timing,
            answered.suggestions,
            encoded,
        );
        Outcome {
            result: Ok(Box::new(reply)),
            backend: Some(answered.target),
            timing,
        }
    }

    fn reply(
        &self,
        brief: &Brief,
        model: &ServingModel,
        ran_on: &str,
        timing: Timing,
        suggestions: Suggestions,
        encoded: EncodedBrief,
    ) -> BriefReply {
        BriefReply {
            v: API_VERSION,
            id: brief.id.clone(),
            status: ReplyStatus::Ok,
            device: self.device.clone(),
            bundle: BundleRef {
                name: model.bundle.manifest.name.clone(),
                version: model.bundle.manifest.version.clone(),
            },
            backend: ran_on.to_string(),
            timing_us: timing,
            styles: suggestions.styles,
            palettes: suggestions.palettes,
            fonts: suggestions.fonts,
            layout: suggestions.layout,
            understood: encoded.understood,
            warnings: encoded.warnings,
            preview_png: suggestions.preview_png,
        }
    }
}

fn too_late() -> ApiError {
    ApiError::new(
        ErrorCode::Expired,
        "the deadline passed before inference could start",
    )
}

/// Runs the model and turns its scores into suggestions; a failure of either is logged here
/// and costs the brief an `internal` reply.
fn infer_and_recommend(
    model: &ServingModel,
    brief: &Brief,
    encoded: &EncodedBrief,
) -> Result<Answered, ApiError> {
    let inputs = ModelInputs {
        brief: &encoded.terms,
        image: &encoded.image,
        brand: &encoded.brand,
    };
    let Inference { outputs, target } = model.backend.run(&inputs).map_err(|error| {
        log::error!("inference failed on {}: {error}", model.backend.name());
        ApiError::new(ErrorCode::Internal, "inference failed")
    })?;
    let inferred = Instant::now();
    let suggestions = recommend::recommend(&model.bundle, &outputs, encoded, brief.into())
        .map_err(|error| {
            log::error!(
                "post-processing failed with bundle {}: {error}",
                model.bundle.label()
            );
            ApiError::new(ErrorCode::Internal, "post-processing failed")
        })?;
    Ok(Answered {
        target,
        inferred,
        suggestions,
    })
}

fn timing(job: &Job, queue_us: u64, stages: &Stages) -> Timing {
    let finished = Instant::now();
    Timing {
        queue: queue_us,
        decode: micros(stages.decoded - stages.started),
        infer: micros(stages.inferred - stages.decoded),
        post: micros(finished - stages.inferred),
        total: micros(finished.saturating_duration_since(job.arrived)),
    }
}
