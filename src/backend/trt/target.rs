//! One TensorRT engine on one target (DLA core or GPU): its execution context, its CUDA stream
//! and its tensor buffers, sized for the largest batch the engine takes. A target runs one
//! batch at a time, as one enqueue; the scheduler spreads batches over targets.

use std::ffi::{CString, NulError};
use std::sync::{Arc, Mutex};

use cudarc::driver::DriverError;

use super::batch::{self, BatchDim, ShapeError};
use super::cuda::{CudaError, Device, TensorBuffer, TransferMode};
use super::runtime::{
    Engine, ExecutionContext, ProfileBound, TensorInfo, TrtError, DATA_TYPE_FLOAT,
};
use crate::backend::engines::EngineTarget;
use crate::backend::{
    Backend, BackendError, Inference, ModelInputs, ModelOutputs, INPUT_ORDER, OUTPUT_ORDER,
};
use crate::bundle::Bundle;

/// An input tensor as the engine declares it.
struct Input {
    name: CString,
    /// The engine's shape, -1 first for a dynamic batch.
    shape: Vec<i64>,
    /// Whether its shape is set before each enqueue.
    dynamic: bool,
    /// Values per brief.
    len: usize,
    /// The most briefs the engine takes in it.
    limit: usize,
}

/// An output tensor and its values per brief.
struct Output {
    name: CString,
    len: usize,
}

struct Bound {
    context: ExecutionContext,
    stream: Arc<cudarc::driver::CudaStream>,
    inputs: Vec<TensorBuffer>,
    outputs: Vec<TensorBuffer>,
    /// The batch size the dynamic inputs' shapes are set to; 0 when unknown.
    shaped_for: usize,
}

/// A deserialized engine ready to serve on its target.
pub(crate) struct TrtTarget {
    target: EngineTarget,
    bound: Mutex<Bound>,
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    max_batch: usize,
}

/// Why an engine cannot be set up on its target or run there: its tensors differ from the
/// manifest's, or TensorRT or CUDA refused; each names the tensor involved where there is one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    /// The manifest lacks one of the tensors every model has.
    #[error("manifest has no tensor '{name}'")]
    NotInManifest {
        /// The tensor's name.
        name: String,
    },
    /// The engine lacks a tensor of the manifest (or has it in the other direction).
    #[error("engine has no tensor '{name}'")]
    NotInEngine {
        /// The tensor's name.
        name: String,
    },
    /// The engine's tensor is not float32, the only type the manifest's tensors have.
    #[error("engine tensor '{name}' is type {data_type}; the manifest says float32")]
    NotFloat {
        /// The tensor's name.
        name: String,
        /// Its `nvinfer1::DataType`.
        data_type: i32,
    },
    /// A tensor name cannot be handed to TensorRT as a C string.
    #[error("tensor name '{name}': {source}")]
    Name {
        /// The tensor's name.
        name: String,
        /// Where its NUL byte is.
        #[source]
        source: NulError,
    },
    /// An input's shape or optimisation profile does not fit packd's batching.
    #[error("engine input '{name}': {source}")]
    InputShape {
        /// The input's name.
        name: String,
        /// What does not fit.
        #[source]
        source: ShapeError,
    },
    /// TensorRT cannot report an input's optimisation profile.
    #[error("engine input '{name}': {source}")]
    Profile {
        /// The input's name.
        name: String,
        /// TensorRT's error.
        #[source]
        source: TrtError,
    },
    /// An output does not come out as the manifest says for a batch.
    #[error("engine output '{name}': {source}")]
    OutputShape {
        /// The output's name.
        name: String,
        /// The shape it came out in.
        #[source]
        source: ShapeError,
    },
    /// TensorRT refused to set a shape or an address, to report a shape, or to enqueue.
    #[error(transparent)]
    TensorRt(#[from] TrtError),
    /// A tensor buffer cannot be allocated, filled or read.
    #[error(transparent)]
    Cuda(#[from] CudaError),
    /// The CUDA driver refused to bind the context or to synchronise the stream.
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// `name` as TensorRT takes it.
fn tensor_name(name: &str) -> Result<CString, TargetError> {
    CString::new(name).map_err(|source| TargetError::Name {
        name: name.to_string(),
        source,
    })
}

fn load_error(target: EngineTarget, message: impl std::fmt::Display) -> BackendError {
    BackendError::Load {
        path: target.backend_name().to_string(),
        message: message.to_string(),
    }
}

/// The engine's float32 tensor `name` of the given direction.
fn find_tensor<'a>(
    tensors: &'a [TensorInfo],
    name: &str,
    is_input: bool,
) -> Result<&'a TensorInfo, TargetError> {
    let tensor = tensors
        .iter()
        .find(|tensor| tensor.name == name && tensor.is_input == is_input)
        .ok_or_else(|| TargetError::NotInEngine {
            name: name.to_string(),
        })?;
    if tensor.data_type != DATA_TYPE_FLOAT {
        return Err(TargetError::NotFloat {
            name: name.to_string(),
            data_type: tensor.data_type,
        });
    }
    Ok(tensor)
}

/// The engine's inputs in `INPUT_ORDER`, checked against the manifest, with their batch limits.
fn describe_inputs(
    engine: &Engine,
    tensors: &[TensorInfo],
    bundle: &Bundle,
) -> Result<Vec<Input>, TargetError> {
    let mut inputs = Vec::new();
    for name in INPUT_ORDER {
        let spec = bundle
            .manifest
            .input(name)
            .ok_or_else(|| TargetError::NotInManifest {
                name: name.to_string(),
            })?;
        let tensor = find_tensor(tensors, name, true)?;
        let shape_error = |source: ShapeError| TargetError::InputShape {
            name: name.to_string(),
            source,
        };
        let profile_error = |source: TrtError| TargetError::Profile {
            name: name.to_string(),
            source,
        };
        let dim = batch::batch_dim(&tensor.shape, spec.len()).map_err(shape_error)?;
        let c_name = tensor_name(name)?;
        let profile = match dim {
            BatchDim::Dynamic => {
                let bound = |which| engine.profile_shape(&c_name, which);
                let min = bound(ProfileBound::Min).map_err(profile_error)?;
                let max = bound(ProfileBound::Max).map_err(profile_error)?;
                Some((min, max))
            }
            BatchDim::Static(_) => None,
        };
        let profile_view = profile.as_ref().map(|(min, max)| (&min[..], &max[..]));
        let limit =
            batch::input_batch_limit(&tensor.shape, dim, profile_view).map_err(shape_error)?;
        inputs.push(Input {
            name: c_name,
            shape: tensor.shape.clone(),
            dynamic: dim == BatchDim::Dynamic,
            len: spec.len(),
            limit,
        });
    }
    Ok(inputs)
}

/// The engine's outputs in `OUTPUT_ORDER`, checked against the manifest (their shapes are
/// checked once the inputs' are set: a dynamic engine's follow from them).
fn describe_outputs(tensors: &[TensorInfo], bundle: &Bundle) -> Result<Vec<Output>, TargetError> {
    OUTPUT_ORDER
        .iter()
        .map(|&name| {
            let spec = bundle
                .manifest
                .output(name)
                .ok_or_else(|| TargetError::NotInManifest {
                    name: name.to_string(),
                })?;
            find_tensor(tensors, name, false)?;
            Ok(Output {
                name: tensor_name(name)?,
                len: spec.len(),
            })
        })
        .collect()
}

/// Sets every dynamic input's shape for `batch` briefs.
fn set_batch(
    context: &mut ExecutionContext,
    inputs: &[Input],
    batch: usize,
) -> Result<(), TrtError> {
    for input in inputs.iter().filter(|input| input.dynamic) {
        context.set_input_shape(&input.name, &batch::batch_shape(&input.shape, batch))?;
    }
    Ok(())
}

/// Checks that the outputs come out as the manifest says for one brief and for a full batch.
fn check_outputs(
    context: &mut ExecutionContext,
    inputs: &[Input],
    outputs: &[Output],
    max_batch: usize,
) -> Result<(), TargetError> {
    let mut sizes = vec![1, max_batch];
    sizes.dedup();
    for size in sizes {
        set_batch(context, inputs, size)?;
        for output in outputs {
            let shape = context.tensor_shape(&output.name)?;
            batch::check_output_shape(&shape, size, output.len).map_err(|source| {
                TargetError::OutputShape {
                    name: output.name.to_string_lossy().into_owned(),
                    source,
                }
            })?;
        }
    }
    Ok(())
}

/// A buffer of `len` floats bound to the context's tensor `name`.
fn bind_buffer(
    context: &mut ExecutionContext,
    device: &Device,
    stream: &Arc<cudarc::driver::CudaStream>,
    mode: TransferMode,
    name: &CString,
    len: usize,
) -> Result<TensorBuffer, TargetError> {
    let buffer = TensorBuffer::new(device, stream, len, mode)?;
    // SAFETY: the buffer lives in `Bound` next to the context, so it outlives every enqueue that
    // uses this address, and it holds the largest batch any shape set on the context asks for.
    unsafe { context.set_tensor_address(name, buffer.device_address(stream)) }?;
    Ok(buffer)
}

impl TrtTarget {
    /// Binds buffers for every tensor the bundle's manifest names, sized for the engine's
    /// largest batch (its profile's, within the manifest's `max_batch`); the engine's tensors
    /// must match the manifest in name, float32 type and values per brief.
    pub fn new(
        target: EngineTarget,
        engine: &Arc<Engine>,
        device: &Device,
        bundle: &Bundle,
        mode: TransferMode,
    ) -> Result<TrtTarget, BackendError> {
        let failed = |error: TargetError| load_error(target, error);
        let tensors = engine
            .tensors()
            .map_err(|error| load_error(target, error))?;
        let inputs = describe_inputs(engine, &tensors, bundle).map_err(failed)?;
        let outputs = describe_outputs(&tensors, bundle).map_err(failed)?;
        let limits: Vec<usize> = inputs.iter().map(|input| input.limit).collect();
        let manifest_max = bundle.manifest.model.max_batch.get();
        let max_batch = batch::usable_batch(&limits, manifest_max);
        let engine_max = limits.iter().copied().min().unwrap_or(1);
        if engine_max > manifest_max {
            log::warn!(
                PACKD_BACKEND = target.backend_name();
                "the {} engine takes batches of up to {engine_max}, the manifest's max_batch is \
                 {manifest_max}: running at most {manifest_max}",
                target.backend_name()
            );
        }
        let stream = device.stream().map_err(|error| load_error(target, error))?;
        let mut context = engine
            .context()
            .map_err(|error| load_error(target, error))?;
        let mut bind = |name: &CString, len: usize| {
            let values = len.checked_mul(max_batch).ok_or_else(|| {
                load_error(
                    target,
                    format!("{len} values × {max_batch} briefs overflow"),
                )
            })?;
            bind_buffer(&mut context, device, &stream, mode, name, values).map_err(failed)
        };
        let input_buffers = inputs
            .iter()
            .map(|input| bind(&input.name, input.len))
            .collect::<Result<Vec<_>, _>>()?;
        let output_buffers = outputs
            .iter()
            .map(|output| bind(&output.name, output.len))
            .collect::<Result<Vec<_>, _>>()?;
        check_outputs(&mut context, &inputs, &outputs, max_batch).map_err(failed)?;
        Ok(TrtTarget {
            target,
            bound: Mutex::new(Bound {
                context,
                stream,
                inputs: input_buffers,
                outputs: output_buffers,
                shaped_for: max_batch,
            }),
            inputs,
            outputs,
            max_batch,
        })
    }

    /// Runs up to `max_batch` briefs as one enqueue.
    fn run_chunk(&self, chunk: &[ModelInputs<'_>]) -> Result<Vec<ModelOutputs>, BackendError> {
        let size = chunk.len();
        if size == 0 {
            return Ok(Vec::new());
        }
        if size > self.max_batch {
            return Err(BackendError::Inference(format!(
                "{size} briefs for an engine that takes {}",
                self.max_batch
            )));
        }
        let rows = self
            .inputs
            .iter()
            .enumerate()
            .map(|(position, input)| batch::gather_rows(chunk, position, input.len))
            .collect::<Result<Vec<_>, _>>()?;
        let failed = |error: &dyn std::fmt::Display| {
            BackendError::Inference(format!("{}: {error}", self.target.backend_name()))
        };
        // A poisoned lock means a panic mid-inference; the buffers are still sound to reuse.
        let mut bound = self
            .bound
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        bound
            .enqueue(&self.inputs, &self.outputs, &rows, size)
            .map_err(|error| failed(&error))?;
        let mut values = Vec::with_capacity(self.outputs.len());
        for (buffer, output) in bound.outputs.iter().zip(&self.outputs) {
            values.push(
                buffer
                    .values(output.len * size)
                    .map_err(|error| failed(&error))?,
            );
        }
        let tensors: [&[f32]; 4] = values
            .try_into()
            .map_err(|_| failed(&"the engine has other than four outputs"))?;
        let lens: [usize; 4] = std::array::from_fn(|slot| self.outputs[slot].len);
        batch::split_rows(tensors, lens, size)
    }
}

impl Bound {
    /// Sets the inputs' shapes for `size` briefs, uploads their `rows`, runs the engine once and
    /// downloads the outputs' first `size` rows; the stream is idle when this returns, whatever
    /// happened, so the next batch may write the buffers.
    fn enqueue(
        &mut self,
        inputs: &[Input],
        outputs: &[Output],
        rows: &[Vec<f32>],
        size: usize,
    ) -> Result<(), TargetError> {
        // TensorRT runs on the calling thread's current CUDA context; workers start with none.
        self.stream.context().bind_to_thread()?;
        if self.shaped_for != size {
            self.shaped_for = 0;
            set_batch(&mut self.context, inputs, size)?;
            self.shaped_for = size;
        }
        let result = self.run(outputs, rows, size);
        if result.is_err() {
            // Nothing queued may still touch the buffers when the next batch writes them.
            let _ = self.stream.synchronize();
        }
        result
    }

    fn run(
        &mut self,
        outputs: &[Output],
        rows: &[Vec<f32>],
        size: usize,
    ) -> Result<(), TargetError> {
        let stream = &self.stream;
        for (buffer, values) in self.inputs.iter_mut().zip(rows) {
            buffer.upload_prefix(stream, values)?;
        }
        // SAFETY: the stream belongs to the engine's device; every bound buffer lives in this
        // `Bound`, which the caller's lock holds until the stream has synchronised, and holds
        // `max_batch` >= `size` briefs, the batch the input shapes are set to.
        unsafe { self.context.enqueue(stream.cu_stream().cast()) }?;
        for (buffer, output) in self.outputs.iter_mut().zip(outputs) {
            buffer.download_prefix(stream, output.len * size)?;
        }
        Ok(stream.synchronize()?)
    }
}

impl Backend for TrtTarget {
    fn name(&self) -> &str {
        self.target.backend_name()
    }

    fn infer(&self, inputs: &ModelInputs<'_>) -> Result<ModelOutputs, BackendError> {
        self.run_chunk(std::slice::from_ref(inputs))?
            .pop()
            .ok_or_else(|| BackendError::Inference("the engine gave no rows".into()))
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn run_batch(&self, batch: &[ModelInputs<'_>]) -> Result<Vec<Inference>, BackendError> {
        let mut inferences = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(self.max_batch.max(1)) {
            inferences.extend(self.run_chunk(chunk)?.into_iter().map(|outputs| Inference {
                outputs,
                target: self.name().to_string(),
            }));
        }
        Ok(inferences)
    }
}
