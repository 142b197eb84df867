//! One TensorRT engine on one target (DLA core or GPU): its execution context, its CUDA stream
//! and its tensor buffers. A target runs one brief at a time; the scheduler spreads briefs.

use std::ffi::CString;
use std::sync::{Arc, Mutex};

use super::cuda::{Device, TensorBuffer, TransferMode};
use super::runtime::{Engine, ExecutionContext, DATA_TYPE_FLOAT};
use crate::backend::engines::EngineTarget;
use crate::backend::{Backend, BackendError, ModelInputs, ModelOutputs, INPUT_ORDER, OUTPUT_ORDER};
use crate::bundle::Bundle;

struct Bound {
    context: ExecutionContext,
    stream: Arc<cudarc::driver::CudaStream>,
    inputs: Vec<TensorBuffer>,
    outputs: Vec<TensorBuffer>,
}

/// A deserialized engine ready to serve on its target.
pub(crate) struct TrtTarget {
    target: EngineTarget,
    bound: Mutex<Bound>,
    input_lengths: [usize; 3],
}

fn load_error(target: EngineTarget, message: impl std::fmt::Display) -> BackendError {
    BackendError::Load {
        path: target.backend_name().to_string(),
        message: message.to_string(),
    }
}

impl TrtTarget {
    /// Binds buffers for every tensor the bundle's manifest names; the engine's tensors must
    /// match it in name, float32 type and element count.
    pub fn new(
        target: EngineTarget,
        engine: &Arc<Engine>,
        device: &Device,
        bundle: &Bundle,
        mode: TransferMode,
    ) -> Result<TrtTarget, BackendError> {
        let tensors = engine
            .tensors()
            .map_err(|error| load_error(target, error))?;
        let stream = device.stream().map_err(|error| load_error(target, error))?;
        let mut context = engine
            .context()
            .map_err(|error| load_error(target, error))?;
        let mut buffers = Vec::new();
        let mut input_lengths = [0usize; 3];
        for (names, is_input) in [(&INPUT_ORDER[..], true), (&OUTPUT_ORDER[..], false)] {
            let mut group = Vec::new();
            for (position, name) in names.iter().enumerate() {
                let spec = if is_input {
                    bundle.manifest.input(name)
                } else {
                    bundle.manifest.output(name)
                }
                .ok_or_else(|| load_error(target, format!("manifest has no tensor '{name}'")))?;
                let tensor = tensors
                    .iter()
                    .find(|tensor| tensor.name == *name && tensor.is_input == is_input)
                    .ok_or_else(|| load_error(target, format!("engine has no tensor '{name}'")))?;
                if tensor.data_type != DATA_TYPE_FLOAT || tensor.elements() != Some(spec.len()) {
                    return Err(load_error(
                        target,
                        format!(
                            "engine tensor '{name}' is type {} shape {:?}; the manifest says float32 {:?}",
                            tensor.data_type, tensor.shape, spec.shape
                        ),
                    ));
                }
                let buffer = TensorBuffer::new(device, &stream, spec.len(), mode)
                    .map_err(|error| load_error(target, error))?;
                let name = CString::new(*name).map_err(|error| load_error(target, error))?;
                // SAFETY: the buffer lives in `Bound` next to the context, so it outlives every
                // enqueue that uses this address.
                unsafe {
                    context
                        .set_tensor_address(&name, buffer.device_address(&stream))
                        .map_err(|error| load_error(target, error))?;
                }
                if is_input {
                    input_lengths[position] = spec.len();
                }
                group.push(buffer);
            }
            buffers.push(group);
        }
        let outputs = buffers.pop().unwrap_or_default();
        let inputs = buffers.pop().unwrap_or_default();
        Ok(TrtTarget {
            target,
            bound: Mutex::new(Bound {
                context,
                stream,
                inputs,
                outputs,
            }),
            input_lengths,
        })
    }
}

impl Backend for TrtTarget {
    fn name(&self) -> &str {
        self.target.backend_name()
    }

    fn infer(&self, inputs: &ModelInputs<'_>) -> Result<ModelOutputs, BackendError> {
        let slices = [inputs.brief, inputs.image, inputs.brand];
        for (slice, &len) in slices.iter().zip(&self.input_lengths) {
            if slice.len() != len {
                return Err(BackendError::Inference(format!(
                    "input of {} values where the engine takes {len}",
                    slice.len()
                )));
            }
        }
        let failed = |error: &dyn std::fmt::Display| {
            BackendError::Inference(format!("{}: {error}", self.target.backend_name()))
        };
        // A poisoned lock means a panic mid-inference; the buffers are still sound to reuse.
        let mut bound = self
            .bound
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Bound {
            context,
            stream,
            inputs: input_buffers,
            outputs: output_buffers,
        } = &mut *bound;
        // TensorRT runs on the calling thread's current CUDA context; workers start with none.
        stream
            .context()
            .bind_to_thread()
            .map_err(|error| failed(&error))?;
        for (buffer, slice) in input_buffers.iter_mut().zip(slices) {
            buffer
                .upload(stream, slice)
                .map_err(|error| failed(&error))?;
        }
        // SAFETY: the stream belongs to the engine's device; every bound buffer lives in
        // `Bound`, which this lock holds until the stream has synchronised below.
        unsafe { context.enqueue(stream.cu_stream().cast()) }.map_err(|error| failed(&error))?;
        for buffer in output_buffers.iter_mut() {
            buffer.download(stream).map_err(|error| failed(&error))?;
        }
        stream.synchronize().map_err(|error| failed(&error))?;
        let mut values = Vec::with_capacity(output_buffers.len());
        for buffer in output_buffers.iter() {
            values.push(buffer.read().map_err(|error| failed(&error))?);
        }
        let mut values = values.into_iter();
        let mut next = || values.next().unwrap_or_default();
        Ok(ModelOutputs {
            styles: next(),
            palettes: next(),
            fonts: next(),
            layout: next(),
        })
    }
}
