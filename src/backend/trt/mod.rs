//! The TensorRT backend (cargo feature `tensorrt`): engines deserialized at boot onto the DLA
//! cores and the GPU through the C shim in `shim/`, tensors moved with cudarc.
//!
//! TensorRT, the CUDA device and the GPU preprocessing kernels are process-wide: they are set
//! up once, on the first bundle that has engines, and shared by every later bundle (hot swaps).

mod batch;
pub mod cuda;
mod ffi;
pub mod preprocess;
pub mod runtime;
pub mod target;

use std::sync::{Arc, OnceLock};

use self::cuda::{CudaError, Device, TransferMode};
use self::runtime::{Runtime, TensorRt, TrtError};
use super::engines::{read_plan, DeviceFacts, EngineTarget};
use super::select::{BackendConfig, SelectError, TransferChoice};
use super::{Backend, BackendError};
use crate::bundle::manifest::EngineEntry;
use crate::bundle::Bundle;

/// TensorRT, its runtime and the CUDA device, with what they say about this appliance.
pub struct Accelerator {
    /// The loaded libnvinfer.
    pub library: Arc<TensorRt>,
    /// The TensorRT runtime that deserializes engines.
    pub runtime: Arc<Runtime>,
    /// The CUDA device engines run on.
    pub device: Device,
    pub(crate) facts: DeviceFacts,
    /// How tensors reach engines, as configured or measured at boot.
    pub transfer: TransferMode,
}

/// Why this machine has no accelerator: the CUDA device or TensorRT cannot be opened.
// Clone: the first failure is kept for the process and handed to every later bundle.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AcceleratorError {
    /// No CUDA driver or device, or the device cannot be queried.
    #[error(transparent)]
    Cuda(#[from] CudaError),
    /// libnvinfer cannot be loaded, or its runtime cannot be created or queried.
    #[error(transparent)]
    TensorRt(#[from] TrtError),
}

static ACCELERATOR: OnceLock<Result<Arc<Accelerator>, AcceleratorError>> = OnceLock::new();

/// The process's accelerator, set up on first use; the error says why there is none.
pub(crate) fn accelerator(settings: &BackendConfig) -> Result<Arc<Accelerator>, AcceleratorError> {
    ACCELERATOR
        .get_or_init(|| Accelerator::open(settings).map(Arc::new))
        .clone()
}

impl Accelerator {
    /// Opens the CUDA device, TensorRT and its runtime, and measures how to move tensors.
    pub fn open(settings: &BackendConfig) -> Result<Accelerator, AcceleratorError> {
        let device = Device::open(0)?;
        let library = TensorRt::open(settings.tensorrt_library.as_deref())?;
        let runtime = Runtime::new(&library)?;
        let dla_cores = runtime.dla_cores()?;
        let facts = DeviceFacts {
            tensorrt: library.version(),
            compute_capability: device.compute_capability.clone(),
            dla_cores,
        };
        let transfer = choose_transfer(&device, settings.transfer);
        log::info!(
            PACKD_EVENT = "accelerator";
            "TensorRT {} (headers {}) on {} (compute {}, {}), {} DLA cores, tensors by {}",
            facts.tensorrt,
            runtime::header_version(),
            device.name,
            facts.compute_capability,
            if device.integrated { "integrated" } else { "discrete" },
            facts.dla_cores,
            transfer.as_str()
        );
        if settings.gpu_preprocess {
            match preprocess::GpuPreprocessor::new(&device) {
                Ok(preprocessor) => {
                    let preprocessor = Arc::new(preprocessor);
                    crate::features::image::install_gpu_shrinker(Box::new(
                        move |image, width, height| match preprocessor.shrink(image, width, height)
                        {
                            Ok(small) => Some(small),
                            Err(error) => {
                                log::warn!("GPU shrink failed, using the CPU: {error}");
                                None
                            }
                        },
                    ));
                }
                Err(error) => log::warn!("GPU preprocessing unavailable: {error}"),
            }
        }
        Ok(Accelerator {
            library,
            runtime,
            device,
            facts,
            transfer,
        })
    }

    /// Reads, checks and deserializes one engine onto its target.
    pub(crate) fn load_engine(
        &self,
        bundle: &Bundle,
        target: EngineTarget,
        entry: &EngineEntry,
    ) -> Result<Arc<dyn Backend>, SelectError> {
        let plan = read_plan(&bundle.dir, entry, Some(self.facts.tensorrt))?;
        // Hot swaps load engines on the fleet thread, not the one that opened the device.
        self.device
            .context
            .bind_to_thread()
            .map_err(|error| BackendError::Load {
                path: entry.file.clone(),
                message: format!("binding the CUDA context: {error}"),
            })?;
        let engine =
            self.runtime
                .deserialize(target, &plan)
                .map_err(|error| BackendError::Load {
                    path: entry.file.clone(),
                    message: error.to_string(),
                })?;
        let loaded = target::TrtTarget::new(target, &engine, &self.device, bundle, self.transfer)?;
        log::info!(
            PACKD_BACKEND = target.backend_name(), PACKD_BUNDLE = bundle.label().as_str();
            "engine {} deserialized on {}, batches of up to {} brief(s)",
            entry.file, target.backend_name(), loaded.max_batch()
        );
        Ok(Arc::new(loaded))
    }
}

/// `copy` or `mapped` as configured, or whichever moved a brief's tensors faster here.
fn choose_transfer(device: &Device, choice: TransferChoice) -> TransferMode {
    match choice {
        TransferChoice::Copy => return TransferMode::Copy,
        TransferChoice::Mapped if device.can_map_host_memory => return TransferMode::Mapped,
        TransferChoice::Mapped => {
            log::warn!("backend.transfer = \"mapped\" but this device cannot map host memory");
            return TransferMode::Copy;
        }
        TransferChoice::Auto => {}
    }
    // A brief's largest tensor (the layout heatmap) is a few hundred floats; 1024 covers it.
    match cuda::measure_transfer(device, 1024, 50) {
        Ok(timings) => {
            for timing in &timings {
                log::info!(
                    "tensor round trip by {}: median {} µs",
                    timing.mode.as_str(),
                    timing.median.as_micros()
                );
            }
            timings
                .first()
                .map_or(TransferMode::Copy, |fastest| fastest.mode)
        }
        Err(error) => {
            log::warn!("could not measure tensor transfer, using copies: {error}");
            TransferMode::Copy
        }
    }
}
