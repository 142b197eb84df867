use std::sync::{Barrier, Mutex, OnceLock};

use super::*;
use crate::backend::cpu::CpuBackend;
use crate::backend::Precision;
use crate::bundle::Bundle;

fn shipped() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        Bundle::open(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/engines/packd-default"
        )))
        .expect("shipped bundle")
    })
}

fn cpu() -> Arc<dyn Backend> {
    static CPU: OnceLock<Arc<CpuBackend>> = OnceLock::new();
    CPU.get_or_init(|| Arc::new(CpuBackend::load(shipped(), Precision::Fp32).expect("cpu backend")))
        .clone()
}

/// The real CPU model under another target's name, which can be told to fail or to wait.
struct Target {
    name: &'static str,
    inner: Arc<dyn Backend>,
    fail: AtomicBool,
    gate: Mutex<Option<Arc<Barrier>>>,
    runs: AtomicUsize,
}

impl Target {
    fn new(name: &'static str) -> Arc<Target> {
        Arc::new(Target {
            name,
            inner: cpu(),
            fail: AtomicBool::new(false),
            gate: Mutex::new(None),
            runs: AtomicUsize::new(0),
        })
    }
}

impl Backend for Target {
    fn name(&self) -> &str {
        self.name
    }
    fn infer(&self, inputs: &ModelInputs<'_>) -> Result<ModelOutputs, BackendError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.wait();
            gate.wait();
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(BackendError::Inference("injected".into()));
        }
        self.inner.infer(inputs)
    }
}

fn inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    // the brief input is as long as the shipped vocabulary (it grows with it)
    let mut brief = vec![0.0; shipped().vocabulary.terms.len()];
    brief[3] = 1.0;
    (brief, vec![0.0; 24], vec![0.0; 16])
}

/// One brief through `backend`.
fn run_once(backend: &dyn Backend) -> Inference {
    let (brief, image, brand) = inputs();
    backend
        .run(&ModelInputs {
            brief: &brief,
            image: &image,
            brand: &brand,
        })
        .unwrap()
}

#[test]
fn idle_targets_are_used_in_preference_order() {
    let dla0 = Target::new("trt:dla0");
    let gpu = Target::new("trt:gpu");
    let scheduler = Scheduler::new(vec![dla0.clone(), gpu.clone()], cpu());
    assert_eq!(scheduler.targets(), ["trt:dla0", "trt:gpu", "cpu"]);
    let run = run_once(&scheduler);
    assert_eq!(run.target, "trt:dla0");
    assert_eq!(run.outputs.styles.len(), 16);
    assert_eq!(gpu.runs.load(Ordering::SeqCst), 0);
}

#[test]
fn a_busy_target_sends_the_next_brief_to_the_least_loaded() {
    let dla0 = Target::new("trt:dla0");
    let gpu = Target::new("trt:gpu");
    let gate = Arc::new(Barrier::new(2));
    *dla0.gate.lock().unwrap() = Some(gate.clone());
    let scheduler = Arc::new(Scheduler::new(vec![dla0.clone(), gpu.clone()], cpu()));
    let busy = {
        let scheduler = scheduler.clone();
        std::thread::spawn(move || run_once(scheduler.as_ref()).target)
    };
    gate.wait(); // dla0 is now inside its inference
    assert_eq!(
        scheduler.loads(),
        [("trt:dla0".into(), 1), ("trt:gpu".into(), 0)]
    );
    *dla0.gate.lock().unwrap() = None;
    let second = run_once(&*scheduler);
    assert_eq!(second.target, "trt:gpu");
    gate.wait(); // let dla0 finish
    assert_eq!(busy.join().unwrap(), "trt:dla0");
    assert_eq!(
        scheduler.loads(),
        [("trt:dla0".into(), 0), ("trt:gpu".into(), 0)]
    );
}

#[test]
fn failures_are_answered_on_the_cpu_and_a_failing_target_leaves_rotation() {
    let dla0 = Target::new("trt:dla0");
    dla0.fail.store(true, Ordering::SeqCst);
    let scheduler = Scheduler::new(vec![dla0.clone()], cpu());
    let (brief, image, brand) = inputs();
    let inputs = ModelInputs {
        brief: &brief,
        image: &image,
        brand: &brand,
    };
    let expected = cpu().infer(&inputs).unwrap();
    for _ in 0..FAILURES_BEFORE_DISABLE + 2 {
        let run = scheduler.run(&inputs).unwrap();
        assert_eq!(run.target, "cpu");
        assert_eq!(run.outputs, expected);
    }
    // Out of rotation after the threshold: no further calls reach it.
    assert_eq!(dla0.runs.load(Ordering::SeqCst), FAILURES_BEFORE_DISABLE);
}

#[test]
fn without_targets_the_fallback_serves() {
    let scheduler = Scheduler::new(Vec::new(), cpu());
    assert_eq!(scheduler.name(), "cpu");
    let run = run_once(&scheduler);
    assert_eq!(run.target, "cpu");
}
