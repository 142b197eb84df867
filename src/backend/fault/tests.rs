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
