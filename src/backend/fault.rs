//! Test-only fault injection around the serving backend, driven by `TEST_PACKD_FAULT`. Built only
//! with the `test-util` feature, which no shipped build enables (CI checks that the release
//! binary does not contain the variable's name).
//!
//! The variable is deliberately not a `PACKD_*` name (like `CRASH_PACKD_AT_STEP` of the crash
//! points): every `PACKD_*` variable is a configuration key, and an unknown one makes packd refuse
//! to start (exit 78).
//!
//! Without the variable (or with it empty) [`wrap_from_env`] returns the backend unchanged:
//! nothing is wrapped, nothing is counted, production pays nothing. With it, the serving
//! backend is wrapped in a [`FaultyBackend`] that counts the inferences it is asked for
//! (1, 2, 3, … from the moment the model was loaded; the self-test runs on the unwrapped
//! targets and is not counted) and misbehaves as told:
//!
//! | `TEST_PACKD_FAULT` | effect |
//! | --- | --- |
//! | `hang-after=N` | inferences 1‥N run normally; the (N+1)th and every later one block forever (the worker thread is parked), as a wedged accelerator would. `hang-after=0` hangs the first. |
//! | `fail-every=N` | every Nth inference (N, 2N, …; N ≥ 1) returns [`BackendError::Inference`] without running the model, so that brief is answered `internal`. `fail-every=1` fails them all. |
//! | `hold-while=PATH` | every inference waits while the file PATH exists, then runs normally: a test holds the worker busy for exactly as long as it needs (message expiry passing in the queue), then deletes the file. Alone, it lets batches through (one wait per batch); with either fault above, briefs run one at a time. |
//!
//! Both can be given at once, comma-separated (`fail-every=2,hang-after=5`); a hanging inference
//! is counted but never fails. A value that does not parse is logged as an error and no fault is
//! injected. Each loaded model gets its own counter, so a bundle activation starts counting
//! again. `tests/watchdog.rs` uses this to prove that a hung backend stops the systemd watchdog
//! pings and that a failing one costs a brief an `internal` reply, not the service;
//! `tests/serve.rs` holds a worker with `hold-while` to let a brief's message expiry pass.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Backend, BackendError, Inference, ModelInputs, ModelOutputs};

/// The environment variable read by [`wrap_from_env`].
pub const FAULT_ENV: &str = "TEST_PACKD_FAULT";

/// Which faults to inject (parsed from [`FAULT_ENV`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FaultSpec {
    /// Inferences after this many block forever.
    pub(crate) hang_after: Option<u64>,
    /// Every this-many-th inference fails (never 0).
    pub(crate) fail_every: Option<u64>,
    /// Every inference waits while this file exists.
    pub(crate) hold_while: Option<PathBuf>,
}

/// Why a [`FAULT_ENV`] value is refused; each names the item that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FaultSpecError {
    /// An item without `=`.
    #[error("'{item}' is not KEY=VALUE")]
    NotKeyValue {
        /// The item as given.
        item: String,
    },
    /// A count that is not a whole number.
    #[error("'{item}': '{value}' is not a whole number")]
    NotANumber {
        /// The item as given.
        item: String,
        /// Its value.
        value: String,
    },
    /// `fail-every=0`: inferences are counted from 1, so N must be at least 1.
    #[error("'{item}': fail-every needs N >= 1")]
    FailEveryZero {
        /// The item as given.
        item: String,
    },
    /// `hold-while=` without a path.
    #[error("'{item}': hold-while needs a file path")]
    NoHoldPath {
        /// The item as given.
        item: String,
    },
    /// A key that names no fault.
    #[error("unknown fault '{key}' (known: hang-after=N, fail-every=N, hold-while=PATH)")]
    UnknownFault {
        /// The key as given.
        key: String,
    },
}

/// How often a held inference looks for its file again.
const HOLD_POLL: Duration = Duration::from_millis(5);

impl FaultSpec {
    /// Parses the [`FAULT_ENV`] syntax; `Ok(None)` for an empty (all-blank) value.
    pub fn parse(text: &str) -> Result<Option<FaultSpec>, FaultSpecError> {
        let mut spec = FaultSpec::default();
        let mut any = false;
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| FaultSpecError::NotKeyValue {
                    item: item.to_string(),
                })?;
            let (key, value) = (key.trim(), value.trim());
            let number = || -> Result<u64, FaultSpecError> {
                value.parse().map_err(|_| FaultSpecError::NotANumber {
                    item: item.to_string(),
                    value: value.to_string(),
                })
            };
            match key {
                "hang-after" => spec.hang_after = Some(number()?),
                "fail-every" => match number()? {
                    0 => {
                        return Err(FaultSpecError::FailEveryZero {
                            item: item.to_string(),
                        })
                    }
                    every => spec.fail_every = Some(every),
                },
                "hold-while" if value.is_empty() => {
                    return Err(FaultSpecError::NoHoldPath {
                        item: item.to_string(),
                    })
                }
                "hold-while" => spec.hold_while = Some(PathBuf::from(value)),
                other => {
                    return Err(FaultSpecError::UnknownFault {
                        key: other.to_string(),
                    })
                }
            }
            any = true;
        }
        Ok(any.then_some(spec))
    }
}

/// Wraps `backend` in the fault named by [`FAULT_ENV`] (`TEST_PACKD_FAULT`), or returns it
/// unchanged when the variable is absent or empty.
pub(crate) fn wrap_from_env(backend: Arc<dyn Backend>) -> Arc<dyn Backend> {
    // A test hook, not a setting: the one read of the environment outside config.
    #[allow(clippy::disallowed_methods)]
    let Some(text) = std::env::var_os(FAULT_ENV) else {
        return backend;
    };
    let text = text.to_string_lossy();
    match FaultSpec::parse(&text) {
        Ok(Some(spec)) => {
            log::warn!(
                "{FAULT_ENV}={text}: injecting faults into backend {} (test builds only!)",
                backend.name()
            );
            Arc::new(FaultyBackend::new(backend, spec))
        }
        Ok(None) => backend,
        Err(reason) => {
            log::error!("{FAULT_ENV}={text} ignored: {reason}");
            backend
        }
    }
}

/// A backend that injects the faults of a [`FaultSpec`] before delegating to the real one.
pub(crate) struct FaultyBackend {
    inner: Arc<dyn Backend>,
    spec: FaultSpec,
    calls: AtomicU64,
}

impl FaultyBackend {
    /// Wraps `inner`; the inference count starts at zero.
    pub fn new(inner: Arc<dyn Backend>, spec: FaultSpec) -> FaultyBackend {
        FaultyBackend {
            inner,
            spec,
            calls: AtomicU64::new(0),
        }
    }

    /// Inferences asked for so far (hung and failed ones included).
    #[cfg(test)]
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Counts one inference and applies the fault due for it: parks forever, fails, or lets it
    /// through.
    fn before_inference(&self) -> Result<(), BackendError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(hold) = &self.spec.hold_while {
            if hold.exists() {
                log::warn!(
                    "{FAULT_ENV}: inference {call} held while {} exists",
                    hold.display()
                );
                while hold.exists() {
                    std::thread::sleep(HOLD_POLL);
                }
            }
        }
        if self.spec.hang_after.is_some_and(|after| call > after) {
            log::warn!("{FAULT_ENV}: inference {call} hangs forever");
            // `park` may return spuriously; this never does.
            loop {
                std::thread::park();
            }
        }
        if let Some(every) = self.spec.fail_every {
            if call % every == 0 {
                return Err(BackendError::Inference(format!(
                    "injected fault ({FAULT_ENV}: fail-every={every}, inference {call})"
                )));
            }
        }
        Ok(())
    }
}

impl Backend for FaultyBackend {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn targets(&self) -> Vec<String> {
        self.inner.targets()
    }

    fn infer(&self, inputs: &ModelInputs<'_>) -> Result<ModelOutputs, BackendError> {
        self.before_inference()?;
        self.inner.infer(inputs)
    }

    // Delegated rather than left to the default, so a multi-target backend (the scheduler)
    // still picks its target and reports it; one brief is still one counted inference.
    fn run(&self, inputs: &ModelInputs<'_>) -> Result<Inference, BackendError> {
        self.before_inference()?;
        self.inner.run(inputs)
    }

    // Faults that count briefs (`fail-every`, `hang-after`) see them one at a time; a hold
    // alone lets batches through, so a test can queue briefs behind a held one and see them
    // run together.
    fn max_batch(&self) -> usize {
        if self.spec.counts_briefs() {
            1
        } else {
            self.inner.max_batch()
        }
    }

    fn run_batch(&self, batch: &[ModelInputs<'_>]) -> Result<Vec<Inference>, BackendError> {
        if self.spec.counts_briefs() || batch.is_empty() {
            return batch.iter().map(|inputs| self.run(inputs)).collect();
        }
        self.before_inference()?;
        self.calls
            .fetch_add(batch.len() as u64 - 1, Ordering::SeqCst);
        self.inner.run_batch(batch)
    }
}

impl FaultSpec {
    /// Whether a fault depends on which brief an inference is.
    fn counts_briefs(&self) -> bool {
        self.hang_after.is_some() || self.fail_every.is_some()
    }
}

#[cfg(test)]
mod tests;
