//! The CPU backend: the bundle's ONNX model under tract, optimised once and shared by all workers.
//!
//! A bundle whose model takes a batch (`max_batch` in its manifest) gets one optimised plan per
//! batch size of 1, 2, 4, … up to `max_batch`: tract's fixed-shape plans pick their matrix
//! kernels for the shape, and a batch runs on the smallest plan that holds it, its spare rows
//! zero (each row of the model is computed independently of the others). Convolutions are
//! rewritten into forms tract runs faster (`convolution`), and each plan keeps its finished run
//! states for the next caller.

mod convolution;

use tract_onnx::prelude::*;

use super::{
    output_lengths, Backend, BackendError, Inference, ModelInputs, ModelOutputs, Precision,
    INPUT_ORDER, OUTPUT_ORDER,
};
use crate::bundle::Bundle;

/// One batch size's optimised plan, and the run states its callers have finished with.
struct Plan {
    size: usize,
    runnable: std::sync::Arc<TypedRunnableModel>,
    /// A state keeps its tensors' buffers between runs, so a worker reusing one allocates
    /// less per batch than `runnable.run` does with a fresh state each time.
    idle: std::sync::Mutex<Vec<TypedSimpleState>>,
}

impl Plan {
    /// Runs the plan on `values` with an idle state, or a new one when none is idle.
    fn run(&self, values: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut state = match idle {
            Some(state) => state,
            None => TypedSimpleState::new(&self.runnable)?,
        };
        // A state whose run failed is dropped rather than reused.
        let outputs = state.run(values)?;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(state);
        }
        Ok(outputs)
    }
}

/// tract running the FP32 (or INT8 Q/DQ) ONNX model.
pub struct CpuBackend {
    /// Plans by batch size, ascending; the first is for one brief.
    plans: Vec<Plan>,
    input_lengths: [usize; 3],
    output_lengths: [usize; 4],
}

/// The batch sizes a plan is made for: 1 and the powers of two up to `max_batch`, and
/// `max_batch` itself, so a batch never waits on padding of more than its own size.
pub(crate) fn plan_sizes(max_batch: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = std::iter::successors(Some(1usize), |size| size.checked_mul(2))
        .take_while(|&size| size < max_batch)
        .collect();
    sizes.push(max_batch.max(1));
    sizes.dedup();
    sizes
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
        }
        let mut plans = Vec::new();
        for size in plan_sizes(bundle.manifest.model.max_batch.get()) {
            let mut sized = model.clone();
            for (position, &len) in input_lengths.iter().enumerate() {
                sized = sized
                    .with_input_fact(position, f32::fact([size, len]).into())
                    .map_err(load_error)?;
            }
            let plan = sized
                .into_typed()
                .and_then(|model| model.into_decluttered())
                .and_then(|model| convolution::rewrite(model, size))
                .and_then(|model| model.into_optimized())
                .and_then(|model| model.into_runnable())
                .map_err(load_error)?;
            plans.push(Plan {
                size,
                runnable: plan,
                idle: std::sync::Mutex::new(Vec::new()),
            });
        }
        Ok(CpuBackend {
            plans,
            input_lengths,
            output_lengths: output_lengths(bundle),
        })
    }

    /// Runs one plan on up to its size of briefs, padding the rest of the batch with zeros.
    fn run_plan(
        &self,
        plan: &Plan,
        batch: &[ModelInputs<'_>],
    ) -> Result<Vec<ModelOutputs>, BackendError> {
        let size = plan.size;
        let mut values: TVec<TValue> = TVec::new();
        for (position, &len) in self.input_lengths.iter().enumerate() {
            let mut rows = vec![0.0f32; size * len];
            for (row, inputs) in batch.iter().enumerate() {
                let slice = [inputs.brief, inputs.image, inputs.brand][position];
                if slice.len() != len {
                    return Err(BackendError::Inference(format!(
                        "input of {} values where the model takes {len}",
                        slice.len()
                    )));
                }
                rows[row * len..(row + 1) * len].copy_from_slice(slice);
            }
            let tensor = tract_ndarray::Array2::from_shape_vec((size, len), rows)
                .map_err(|error| BackendError::Inference(error.to_string()))?;
            values.push(Tensor::from(tensor).into());
        }
        let outputs = plan
            .run(values)
            .map_err(|error| BackendError::Inference(format!("{error:#}")))?;
        let mut split: Vec<[Vec<f32>; 4]> = (0..batch.len()).map(|_| Default::default()).collect();
        for (slot, ((output, name), &expected)) in outputs
            .iter()
            .zip(OUTPUT_ORDER)
            .zip(&self.output_lengths)
            .enumerate()
        {
            let view = output
                .to_plain_array_view::<f32>()
                .map_err(|error| BackendError::Inference(format!("{error:#}")))?;
            let values = view.as_slice().ok_or_else(|| {
                BackendError::Inference(format!("output '{name}' is not contiguous"))
            })?;
            if values.len() != expected * size {
                return Err(BackendError::OutputShape {
                    name: name.to_string(),
                    expected,
                    found: values.len() / size.max(1),
                });
            }
            for (row, vectors) in split.iter_mut().enumerate() {
                vectors[slot] = values[row * expected..(row + 1) * expected].to_vec();
            }
        }
        Ok(split
            .into_iter()
            .map(|[styles, palettes, fonts, layout]| ModelOutputs {
                styles,
                palettes,
                fonts,
                layout,
            })
            .collect())
    }

    /// The smallest plan that holds `count` briefs, or the largest.
    fn plan_for(&self, count: usize) -> &Plan {
        let largest = self.plans.len() - 1;
        let index = self
            .plans
            .iter()
            .position(|plan| plan.size >= count)
            .unwrap_or(largest);
        &self.plans[index]
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn infer(&self, inputs: &ModelInputs<'_>) -> Result<ModelOutputs, BackendError> {
        let mut outputs = self.run_plan(self.plan_for(1), std::slice::from_ref(inputs))?;
        outputs
            .pop()
            .ok_or_else(|| BackendError::Inference("the model gave no rows".into()))
    }

    fn max_batch(&self) -> usize {
        self.plans.last().map_or(1, |plan| plan.size)
    }

    fn run_batch(&self, batch: &[ModelInputs<'_>]) -> Result<Vec<Inference>, BackendError> {
        let mut inferences = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(self.max_batch()) {
            let outputs = self.run_plan(self.plan_for(chunk.len()), chunk)?;
            inferences.extend(outputs.into_iter().map(|outputs| Inference {
                outputs,
                target: self.name().to_string(),
            }));
        }
        Ok(inferences)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::selftest;

    fn shipped() -> Bundle {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("engines/packd-default");
        Bundle::open(&dir).expect("shipped bundle")
    }

    /// tract multiplies a batch with other kernels than one row (a matrix product instead of
    /// a matrix-vector one), so sums come out in another order: a few units in the last place
    /// of a float32, far below the reply's three decimals. A mixed-up row is off by ~0.1.
    const BATCH_TOLERANCE: f32 = 1e-5;

    fn max_deviation(first: &ModelOutputs, second: &ModelOutputs) -> f32 {
        let pairs = [
            (&first.styles, &second.styles),
            (&first.palettes, &second.palettes),
            (&first.fonts, &second.fonts),
            (&first.layout, &second.layout),
        ];
        pairs
            .iter()
            .flat_map(|(a, b)| {
                assert_eq!(a.len(), b.len());
                a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs())
            })
            .fold(0.0, f32::max)
    }

    /// Every batch size, padded (3, 5, 7) or chunked (11 > max_batch), gives each brief what it
    /// gets alone, in both precisions: replies must not depend on batch-mates.
    #[test]
    fn a_brief_in_a_batch_gets_what_it_gets_alone() {
        let bundle = shipped();
        assert!(
            bundle.manifest.model.max_batch.get() > 1,
            "the shipped model batches"
        );
        let cases = selftest::load(&bundle).expect("self-test vectors").cases;
        for precision in [Precision::Fp32, Precision::Int8] {
            let backend = CpuBackend::load(&bundle, precision).expect("model loads");
            assert_eq!(backend.max_batch(), bundle.manifest.model.max_batch.get());
            let alone: Vec<ModelOutputs> = cases
                .iter()
                .map(|case| {
                    backend
                        .infer(&case.inputs.as_model_inputs())
                        .expect("infer")
                })
                .collect();
            for size in 1..=11 {
                // Rotated, so each case sits at other rows in other batches.
                let order: Vec<usize> = (0..size)
                    .map(|row| (row * 7 + size) % cases.len())
                    .collect();
                let batch: Vec<ModelInputs<'_>> = order
                    .iter()
                    .map(|&index| cases[index].inputs.as_model_inputs())
                    .collect();
                let batched = backend.run_batch(&batch).expect("batch runs");
                assert_eq!(batched.len(), size);
                for (&index, inference) in order.iter().zip(&batched) {
                    let deviation = max_deviation(&inference.outputs, &alone[index]);
                    assert!(
                        deviation <= BATCH_TOLERANCE,
                        "{precision:?}: case {index} in a batch of {size} is {deviation} off"
                    );
                }
            }
        }
    }

    /// A worker reuses a finished run's state: what one brief left in it must not reach the next.
    #[test]
    fn a_reused_run_state_answers_as_a_fresh_one() {
        let bundle = shipped();
        let cases = selftest::load(&bundle).expect("self-test vectors").cases;
        let backend = CpuBackend::load(&bundle, Precision::Fp32).expect("model loads");
        let first = backend
            .infer(&cases[0].inputs.as_model_inputs())
            .expect("infer");
        for case in cases.iter().skip(1).take(4) {
            backend
                .infer(&case.inputs.as_model_inputs())
                .expect("infer");
        }
        let idle = backend.plans[0].idle.lock().map(|idle| idle.len());
        assert_eq!(idle.ok(), Some(1), "one caller at a time needs one state");
        let again = backend
            .infer(&cases[0].inputs.as_model_inputs())
            .expect("infer");
        assert_eq!(max_deviation(&first, &again), 0.0);
    }

    #[test]
    fn plan_sizes_double_up_to_the_largest_batch() {
        assert_eq!(plan_sizes(1), vec![1]);
        assert_eq!(plan_sizes(2), vec![1, 2]);
        assert_eq!(plan_sizes(6), vec![1, 2, 4, 6]);
        assert_eq!(plan_sizes(8), vec![1, 2, 4, 8]);
    }
}
