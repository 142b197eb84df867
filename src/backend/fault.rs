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
//! | `hold-while=PATH` | every inference waits while the file PATH exists, then runs normally: a test holds the worker busy for exactly as long as it needs (message expiry passing in the queue), then deletes the file. |
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
pub struct FaultSpec {
    /// Inferences after this many block forever.
    pub hang_after: Option<u64>,
    /// Every this-many-th inference fails (never 0).
    pub fail_every: Option<u64>,
    /// Every inference waits while this file exists.
    pub hold_while: Option<PathBuf>,
}

/// How often a held inference looks for its file again.
const HOLD_POLL: Duration = Duration::from_millis(5);

impl FaultSpec {
    /// Parses the [`FAULT_ENV`] syntax; `Ok(None)` for an empty (all-blank) value.
    pub fn parse(text: &str) -> Result<Option<FaultSpec>, String> {
        let mut spec = FaultSpec::default();
        let mut any = false;
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("'{item}' is not KEY=VALUE"))?;
            let (key, value) = (key.trim(), value.trim());
            let number = || -> Result<u64, String> {
                value
                    .parse()
                    .map_err(|_| format!("'{item}': '{value}' is not a whole number"))
            };
            match key {
                "hang-after" => spec.hang_after = Some(number()?),
                "fail-every" => match number()? {
                    0 => return Err(format!("'{item}': fail-every needs N >= 1")),
                    every => spec.fail_every = Some(every),
                },
                "hold-while" if value.is_empty() => {
                    return Err(format!("'{item}': hold-while needs a file path"))
                }
                "hold-while" => spec.hold_while = Some(PathBuf::from(value)),
                other => {
                    return Err(format!(
                    "unknown fault '{other}' (known: hang-after=N, fail-every=N, hold-while=PATH)"
                ))
                }
            }
            any = true;
        }
        Ok(any.then_some(spec))
    }
}

/// Wraps `backend` in the fault named by [`FAULT_ENV`] (`TEST_PACKD_FAULT`), or returns it
/// unchanged when the variable is absent or empty.
pub fn wrap_from_env(backend: Arc<dyn Backend>) -> Arc<dyn Backend> {
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
pub struct FaultyBackend {
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
    pub fn calls(&self) -> u64 {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Answers instantly with empty outputs and counts how often it really ran.
    struct Echo {
        ran: AtomicU64,
    }

    impl Backend for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn targets(&self) -> Vec<String> {
            vec!["echo:a".into(), "echo:b".into()]
        }
        fn infer(&self, _inputs: &ModelInputs<'_>) -> Result<ModelOutputs, BackendError> {
            self.ran.fetch_add(1, Ordering::SeqCst);
            Ok(ModelOutputs {
                styles: vec![1.0],
                palettes: vec![],
                fonts: vec![],
                layout: vec![],
            })
        }
        fn run(&self, inputs: &ModelInputs<'_>) -> Result<Inference, BackendError> {
            Ok(Inference {
                outputs: self.infer(inputs)?,
                target: "echo:b".into(),
            })
        }
    }

    fn echo() -> Arc<Echo> {
        Arc::new(Echo {
            ran: AtomicU64::new(0),
        })
    }

    const INPUTS: ModelInputs<'static> = ModelInputs {
        brief: &[],
        image: &[],
        brand: &[],
    };

    #[test]
    fn syntax() {
        assert_eq!(FaultSpec::parse(""), Ok(None));
        assert_eq!(FaultSpec::parse(" , "), Ok(None));
        assert_eq!(
            FaultSpec::parse("hang-after=2"),
            Ok(Some(FaultSpec {
                hang_after: Some(2),
                fail_every: None,
                hold_while: None,
            }))
        );
        assert_eq!(
            FaultSpec::parse(" fail-every = 3 , hang-after=0"),
            Ok(Some(FaultSpec {
                hang_after: Some(0),
                fail_every: Some(3),
                hold_while: None,
            }))
        );
        assert_eq!(
            FaultSpec::parse("hold-while=/run/packd test/hold"),
            Ok(Some(FaultSpec {
                hold_while: Some(PathBuf::from("/run/packd test/hold")),
                ..FaultSpec::default()
            }))
        );
        for bad in [
            "hang",
            "hang-after=",
            "hang-after=-1",
            "fail-every=0",
            "fail-every=x",
            "crash=1",
            "hold-while=",
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn inert_without_the_variable() {
        // The only test here that reads the environment; it never sets the variable, so it
        // cannot race with anything else in this test binary.
        #[allow(clippy::disallowed_methods)]
        if std::env::var_os(FAULT_ENV).is_some() {
            return;
        }
        let inner: Arc<dyn Backend> = echo();
        let wrapped = wrap_from_env(inner.clone());
        assert!(Arc::ptr_eq(&inner, &wrapped), "returned unchanged");
    }

    #[test]
    fn fail_every_n_fails_exactly_the_nth_calls_without_running_the_model() {
        let inner = echo();
        let faulty = FaultyBackend::new(
            inner.clone(),
            FaultSpec {
                hang_after: None,
                fail_every: Some(3),
                hold_while: None,
            },
        );
        let results: Vec<bool> = (0..7).map(|_| faulty.run(&INPUTS).is_ok()).collect();
        assert_eq!(results, [true, true, false, true, true, false, true]);
        assert_eq!(inner.ran.load(Ordering::SeqCst), 5);
        assert_eq!(faulty.calls(), 7);
        // `infer` counts and fails like `run`: the 8th passes, the 9th fails.
        assert!(faulty.infer(&INPUTS).is_ok());
        match faulty.infer(&INPUTS) {
            Err(BackendError::Inference(message)) => {
                assert!(message.contains("fail-every=3"), "{message}")
            }
            other => panic!("the 9th call should fail: {other:?}"),
        }
        assert_eq!(inner.ran.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn name_targets_and_the_inner_target_pass_through() {
        let faulty = FaultyBackend::new(
            echo(),
            FaultSpec {
                hang_after: Some(10),
                fail_every: None,
                hold_while: None,
            },
        );
        assert_eq!(faulty.name(), "echo");
        assert_eq!(faulty.targets(), ["echo:a", "echo:b"]);
        assert_eq!(faulty.run(&INPUTS).unwrap().target, "echo:b");
        assert_eq!(faulty.infer(&INPUTS).unwrap().styles, [1.0]);
    }

    #[test]
    fn hang_after_n_blocks_the_next_call_forever() {
        let inner = echo();
        let faulty = Arc::new(FaultyBackend::new(
            inner.clone(),
            FaultSpec {
                hang_after: Some(2),
                fail_every: None,
                hold_while: None,
            },
        ));
        assert!(faulty.run(&INPUTS).is_ok());
        assert!(faulty.infer(&INPUTS).is_ok());
        let (done, finished) = mpsc::channel();
        let hanging = faulty.clone();
        // Detached: the thread stays parked until the test binary exits, which is the point.
        let thread = std::thread::spawn(move || {
            let result = hanging.run(&INPUTS).map(|_| ());
            let _ = done.send(result.is_ok());
        });
        assert_eq!(
            finished.recv_timeout(Duration::from_millis(300)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "the third inference must not return"
        );
        // An unpark (what a spurious wake-up looks like) does not release it either.
        thread.thread().unpark();
        assert_eq!(
            finished.recv_timeout(Duration::from_millis(200)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "an unparked hung inference must stay hung"
        );
        assert_eq!(faulty.calls(), 3);
        assert_eq!(
            inner.ran.load(Ordering::SeqCst),
            2,
            "the hung call never ran"
        );
    }

    #[test]
    fn hold_while_waits_for_the_file_to_go_then_runs() {
        let dir = tempfile::tempdir().unwrap();
        let hold = dir.path().join("hold");
        std::fs::write(&hold, b"").unwrap();
        let inner = echo();
        let faulty = Arc::new(FaultyBackend::new(
            inner.clone(),
            FaultSpec {
                hold_while: Some(hold.clone()),
                ..FaultSpec::default()
            },
        ));
        let (done, finished) = mpsc::channel();
        let held = faulty.clone();
        let thread = std::thread::spawn(move || {
            let _ = done.send(held.run(&INPUTS).is_ok());
        });
        assert_eq!(
            finished.recv_timeout(Duration::from_millis(200)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "held while the file exists"
        );
        assert_eq!(inner.ran.load(Ordering::SeqCst), 0);
        std::fs::remove_file(&hold).unwrap();
        assert_eq!(finished.recv_timeout(Duration::from_secs(10)), Ok(true));
        thread.join().unwrap();
        // Without the file nothing waits.
        assert!(faulty.run(&INPUTS).is_ok());
        assert_eq!(inner.ran.load(Ordering::SeqCst), 2);
    }
}
