//! Spreads briefs over several inference targets (DLA0, DLA1, GPU), least-loaded first, with
//! the CPU backend behind them for when no target can take a brief.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::{Backend, BackendError, Inference, ModelInputs, ModelOutputs};

/// Consecutive failures after which a target is taken out of rotation.
pub(crate) const FAILURES_BEFORE_DISABLE: usize = 3;

struct Slot {
    backend: Arc<dyn Backend>,
    /// Briefs waiting for or running on this target.
    load: AtomicUsize,
    consecutive_failures: AtomicUsize,
    disabled: AtomicBool,
}

/// A backend over several targets; the fallback (the CPU) answers whatever they cannot.
pub(crate) struct Scheduler {
    slots: Vec<Slot>,
    fallback: Arc<dyn Backend>,
    names: Vec<String>,
}

/// Decrements a slot's load however the inference ends.
struct LoadGuard<'a>(&'a AtomicUsize);

impl Drop for LoadGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Scheduler {
    /// Targets in order of preference (ties in load go to the earlier one), then the fallback.
    pub fn new(targets: Vec<Arc<dyn Backend>>, fallback: Arc<dyn Backend>) -> Scheduler {
        let mut names: Vec<String> = targets.iter().map(|t| t.name().to_string()).collect();
        names.push(fallback.name().to_string());
        Scheduler {
            slots: targets
                .into_iter()
                .map(|backend| Slot {
                    backend,
                    load: AtomicUsize::new(0),
                    consecutive_failures: AtomicUsize::new(0),
                    disabled: AtomicBool::new(false),
                })
                .collect(),
            fallback,
            names,
        }
    }

    /// Claims the least-loaded enabled target, or `None` when every target is out of rotation.
    fn claim(&self) -> Option<(&Slot, LoadGuard<'_>)> {
        let slot = self
            .slots
            .iter()
            .filter(|slot| !slot.disabled.load(Ordering::Acquire))
            .min_by_key(|slot| slot.load.load(Ordering::Acquire))?;
        slot.load.fetch_add(1, Ordering::AcqRel);
        Some((slot, LoadGuard(&slot.load)))
    }

    /// Current load per target, for tests and stats.
    #[cfg(test)]
    pub fn loads(&self) -> Vec<(String, usize)> {
        self.slots
            .iter()
            .map(|slot| {
                (
                    slot.backend.name().to_string(),
                    slot.load.load(Ordering::Acquire),
                )
            })
            .collect()
    }
}

impl Backend for Scheduler {
    fn name(&self) -> &str {
        self.names.first().map_or("cpu", String::as_str)
    }

    fn targets(&self) -> Vec<String> {
        self.names.clone()
    }

    fn infer(&self, inputs: &ModelInputs<'_>) -> Result<ModelOutputs, BackendError> {
        self.run(inputs).map(|inference| inference.outputs)
    }

    fn run(&self, inputs: &ModelInputs<'_>) -> Result<Inference, BackendError> {
        let Some((slot, _load)) = self.claim() else {
            return self.fallback.run(inputs);
        };
        match slot.backend.run(inputs) {
            Ok(inference) => {
                slot.consecutive_failures.store(0, Ordering::Release);
                Ok(inference)
            }
            Err(error) => {
                self.note_failure(slot, &error);
                self.fallback.run(inputs)
            }
        }
    }

    fn max_batch(&self) -> usize {
        self.slots
            .iter()
            .map(|slot| slot.backend.max_batch())
            .chain([self.fallback.max_batch()])
            .max()
            .unwrap_or(1)
    }

    // A batch goes to one target, in pieces of what that target takes at once.
    fn run_batch(&self, batch: &[ModelInputs<'_>]) -> Result<Vec<Inference>, BackendError> {
        let Some((slot, _load)) = self.claim() else {
            return self.fallback.run_batch(batch);
        };
        let mut inferences = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(slot.backend.max_batch().max(1)) {
            match slot.backend.run_batch(chunk) {
                Ok(done) => inferences.extend(done),
                Err(error) => {
                    self.note_failure(slot, &error);
                    return self.fallback.run_batch(batch);
                }
            }
        }
        slot.consecutive_failures.store(0, Ordering::Release);
        Ok(inferences)
    }
}

impl Scheduler {
    /// Counts a target's failure and takes it out of rotation after too many in a row; the
    /// brief (or batch) still gets an answer from the fallback: a failing accelerator must not
    /// fail briefs.
    fn note_failure(&self, slot: &Slot, error: &BackendError) {
        let failures = slot.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= FAILURES_BEFORE_DISABLE && !slot.disabled.swap(true, Ordering::AcqRel) {
            log::error!(
                PACKD_BACKEND = slot.backend.name(), PACKD_EVENT = "backend_disabled";
                "{} failed {failures} times in a row and is out of rotation: {error}",
                slot.backend.name()
            );
        } else {
            log::warn!(
                PACKD_BACKEND = slot.backend.name();
                "{} failed, answering on {}: {error}",
                slot.backend.name(),
                self.fallback.name()
            );
        }
    }
}

#[cfg(test)]
mod tests;
