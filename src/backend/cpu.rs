//! The CPU backend: the bundle's ONNX model under tract, optimised once and shared by all workers.

use tract_onnx::prelude::*;

use super::{
    output_lengths, Backend, BackendError, ModelInputs, ModelOutputs, Precision, INPUT_ORDER,
    OUTPUT_ORDER,
};
use crate::bundle::Bundle;

type Plan = std::sync::Arc<TypedRunnableModel>;

/// tract running the FP32 (or INT8 Q/DQ) ONNX model.
pub struct CpuBackend {
    plan: Plan,
    input_lengths: [usize; 3],
    output_lengths: [usize; 4],
}

impl CpuBackend {
    /// Loads and optimises the bundle's model of the given precision.
    pub fn load(bundle: &Bundle, precision: Precision) -> Result<CpuBackend, BackendError> {
        let file = match precision {
            Precision::Fp32 => &bundle.manifest.model.fp32,
            Precision::Int8 => &bundle.manifest.model.int8,
        };
        let path = bundle.path_of(file);
        let load_error = |error: TractError| BackendError::Load {
            path: path.display().to_string(),
            message: format!("{error:#}"),
        };
        let mut model = tract_onnx::onnx()
            .model_for_path(&path)
            .map_err(load_error)?;
        model.set_input_names(INPUT_ORDER).map_err(load_error)?;
        model
            .select_outputs_by_name(OUTPUT_ORDER)
            .map_err(load_error)?;
        let mut input_lengths = [0usize; 3];
        for (position, name) in INPUT_ORDER.iter().enumerate() {
            let spec = bundle
                .manifest
                .input(name)
                .ok_or_else(|| BackendError::Load {
                    path: path.display().to_string(),
                    message: format!("manifest has no input '{name}'"),
                })?;
            input_lengths[position] = spec.len();
            model = model
                .with_input_fact(position, f32::fact(spec.shape.clone()).into())
                .map_err(load_error)?;
        }
        let plan = model
            .into_optimized()
            .and_then(|model| model.into_runnable())
            .map_err(load_error)?;
        Ok(CpuBackend {
            plan,
            input_lengths,
            output_lengths: output_lengths(bundle),
        })
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn infer(&self, inputs: &ModelInputs<'_>) -> Result<ModelOutputs, BackendError> {
        let slices = [inputs.brief, inputs.image, inputs.brand];
        let mut values: TVec<TValue> = TVec::new();
        for (slice, &len) in slices.iter().zip(&self.input_lengths) {
            if slice.len() != len {
                return Err(BackendError::Inference(format!(
                    "input of {} values where the model takes {len}",
                    slice.len()
                )));
            }
            let tensor = tract_ndarray::Array2::from_shape_vec((1, len), slice.to_vec())
                .map_err(|error| BackendError::Inference(error.to_string()))?;
            values.push(Tensor::from(tensor).into());
        }
        let outputs = self
            .plan
            .run(values)
            .map_err(|error| BackendError::Inference(format!("{error:#}")))?;
        let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(OUTPUT_ORDER.len());
        for ((output, name), &expected) in
            outputs.iter().zip(OUTPUT_ORDER).zip(&self.output_lengths)
        {
            let view = output
                .to_plain_array_view::<f32>()
                .map_err(|error| BackendError::Inference(format!("{error:#}")))?;
            let values: Vec<f32> = view.iter().copied().collect();
            if values.len() != expected {
                return Err(BackendError::OutputShape {
                    name: name.to_string(),
                    expected,
                    found: values.len(),
                });
            }
            vectors.push(values);
        }
        let mut vectors = vectors.into_iter();
        let mut next = || vectors.next().unwrap_or_default();
        Ok(ModelOutputs {
            styles: next(),
            palettes: next(),
            fonts: next(),
            layout: next(),
        })
    }
}
