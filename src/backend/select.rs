//! Chooses what runs a bundle's model on this machine: its TensorRT engines on the DLA cores and
//! the GPU when this build has the `tensorrt` feature and the device has TensorRT, with the
//! CPU (tract) behind them; the CPU alone everywhere else.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

#[cfg(feature = "cpu")]
use super::cpu::CpuBackend;
use super::engines::{check_entry, DeviceFacts, EngineRefusal, EngineTarget};
use super::{Backend, Precision};
use crate::bundle::Bundle;

/// `[backend]` in packd.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BackendConfig {
    /// `auto` (TensorRT engines where possible, else CPU), `cpu`, or `tensorrt` (engines required).
    pub kind: BackendKind,
    /// libnvinfer to open; unset: `libnvinfer.so.MAJOR`, then `libnvinfer_lean.so.MAJOR`.
    pub(crate) tensorrt_library: Option<PathBuf>,
    /// How tensors reach engines: `auto` (measured at boot), `copy` or `mapped`.
    pub transfer: TransferChoice,
    /// Shrink large reference photos on the GPU.
    pub(crate) gpu_preprocess: bool,
    /// Targets in order of preference when equally loaded.
    pub order: Vec<String>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            kind: BackendKind::Auto,
            tensorrt_library: None,
            transfer: TransferChoice::Auto,
            gpu_preprocess: true,
            order: vec!["dla0".into(), "dla1".into(), "gpu".into()],
        }
    }
}

/// `backend.kind`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `auto`: TensorRT engines where this build and device can run them, else the CPU.
    Auto,
    /// `cpu`: the CPU only, even where engines could run.
    Cpu,
    /// `tensorrt`: engines required; a bundle none of whose engines can run here is refused.
    Tensorrt,
}

/// `backend.transfer`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransferChoice {
    /// `auto`: measure both at boot and keep the faster.
    Auto,
    /// `copy`: copy tensors between host and device memory for each brief.
    Copy,
    /// `mapped`: engines read mapped host memory (`copy` where the device cannot map it).
    Mapped,
}

/// A bundle's model, loaded for serving, and each target to self-test before it serves.
pub struct LoadedBackend {
    /// What briefs call: the CPU backend, or the scheduler over engines with the CPU behind.
    pub serving: Arc<dyn Backend>,
    /// Every target with the precision its self-test vectors are checked at.
    pub targets: Vec<(Arc<dyn Backend>, Precision)>,
}

/// Why a bundle's model cannot be loaded here.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// TensorRT or the CPU runtime failed to load the model.
    #[error(transparent)]
    Backend(#[from] super::BackendError),
    /// One of the bundle's engines is not fit for this device.
    #[error("{0}")]
    Engine(#[from] EngineRefusal),
    /// `backend.kind = "tensorrt"` but no engine can serve; the text says why.
    #[error("backend.kind = \"tensorrt\" but {0}")]
    TensorRtRequired(String),
    /// `backend.kind = "tensorrt"` but the CUDA device or TensorRT cannot be opened.
    #[cfg(feature = "tensorrt")]
    #[error("backend.kind = \"tensorrt\" but {0}")]
    NoAccelerator(#[source] super::trt::AcceleratorError),
    /// This build has no CPU runtime (the `cpu` feature is off: only fuzz targets build so).
    #[cfg(not(feature = "cpu"))]
    #[error("packd was built without the `cpu` feature, so it has no model runtime")]
    NoCpuRuntime,
}

/// Loads `bundle` on the best backend this machine has, as `settings` allow.
pub fn load(bundle: &Bundle, settings: &BackendConfig) -> Result<LoadedBackend, SelectError> {
    let cpu = cpu_backend(bundle)?;
    let mut targets = vec![(cpu.clone(), Precision::Fp32)];
    if settings.kind == BackendKind::Cpu {
        return Ok(LoadedBackend {
            serving: with_test_faults(cpu),
            targets,
        });
    }
    let engines = accelerated_targets(bundle, settings)?;
    let serving: Arc<dyn Backend> = if engines.is_empty() {
        if settings.kind == BackendKind::Tensorrt {
            return Err(SelectError::TensorRtRequired(
                "no TensorRT engine of this bundle can run here".into(),
            ));
        }
        cpu
    } else {
        let ordered = order_targets(engines, &settings.order);
        for engine in &ordered {
            targets.push((engine.clone(), Precision::Int8));
        }
        Arc::new(super::schedule::Scheduler::new(ordered, cpu))
    };
    Ok(LoadedBackend {
        serving: with_test_faults(serving),
        targets,
    })
}

/// The bundle's model on the CPU: what serves where no engine can, and behind the engines.
#[cfg(feature = "cpu")]
fn cpu_backend(bundle: &Bundle) -> Result<Arc<dyn Backend>, SelectError> {
    Ok(Arc::new(CpuBackend::load(bundle, Precision::Fp32)?))
}

#[cfg(not(feature = "cpu"))]
fn cpu_backend(_bundle: &Bundle) -> Result<Arc<dyn Backend>, SelectError> {
    Err(SelectError::NoCpuRuntime)
}

/// The serving backend, wrapped in the faults `TEST_PACKD_FAULT` names in a `test-util` build.
fn with_test_faults(backend: Arc<dyn Backend>) -> Arc<dyn Backend> {
    #[cfg(feature = "test-util")]
    let backend = super::fault::wrap_from_env(backend);
    backend
}

/// Sorts targets by `order` (names like `dla0`); unnamed targets go last in their own order.
fn order_targets(mut engines: Vec<Arc<dyn Backend>>, order: &[String]) -> Vec<Arc<dyn Backend>> {
    let rank = |backend: &Arc<dyn Backend>| {
        let short = backend.name().trim_start_matches("trt:");
        order
            .iter()
            .position(|name| name == short)
            .unwrap_or(order.len())
    };
    engines.sort_by_key(rank);
    engines
}

/// Checks every engine entry against `device`; the entries that may be deserialized.
pub fn compatible_engines<'a>(
    bundle: &'a Bundle,
    device: &DeviceFacts,
) -> Result<Vec<(EngineTarget, &'a crate::bundle::manifest::EngineEntry)>, EngineRefusal> {
    bundle
        .manifest
        .engines
        .iter()
        .map(|entry| check_entry(entry, device).map(|target| (target, entry)))
        .collect()
}

#[cfg(feature = "tensorrt")]
fn accelerated_targets(
    bundle: &Bundle,
    settings: &BackendConfig,
) -> Result<Vec<Arc<dyn Backend>>, SelectError> {
    if bundle.manifest.engines.is_empty() {
        return Ok(Vec::new());
    }
    let accelerator = match super::trt::accelerator(settings) {
        Ok(accelerator) => accelerator,
        Err(reason) if settings.kind == BackendKind::Tensorrt => {
            return Err(SelectError::NoAccelerator(reason))
        }
        Err(reason) => {
            log::warn!("TensorRT unavailable, serving on the CPU: {reason}");
            return Ok(Vec::new());
        }
    };
    let mut loaded = Vec::new();
    for (target, entry) in compatible_engines(bundle, &accelerator.facts)? {
        loaded.push(accelerator.load_engine(bundle, target, entry)?);
    }
    Ok(loaded)
}

#[cfg(not(feature = "tensorrt"))]
fn accelerated_targets(
    bundle: &Bundle,
    settings: &BackendConfig,
) -> Result<Vec<Arc<dyn Backend>>, SelectError> {
    if settings.kind == BackendKind::Tensorrt {
        return Err(SelectError::TensorRtRequired(
            "this packd was built without the `tensorrt` feature".into(),
        ));
    }
    if !bundle.manifest.engines.is_empty() {
        log::info!(
            "bundle {} has {} TensorRT engines; this build serves on the CPU",
            bundle.label(),
            bundle.manifest.engines.len()
        );
    }
    Ok(Vec::new())
}

/// What TensorRT and the CUDA device report on this machine, when this build has the
/// `tensorrt` feature and they are present; `None` otherwise (the CPU serves).
pub(crate) fn observed_device(settings: &BackendConfig) -> Option<DeviceFacts> {
    #[cfg(feature = "tensorrt")]
    {
        if settings.kind != BackendKind::Cpu {
            return super::trt::accelerator(settings)
                .ok()
                .map(|accelerator| accelerator.facts.clone());
        }
    }
    let _ = settings;
    None
}
