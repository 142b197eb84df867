//! Convolutions run brief by brief inside a batched plan.
//!
//! tract lowers a convolution over one image to a lazy im2col that gathers its patches as the
//! matrix product reads them, but over a batch it materialises every patch first (its lazy
//! offset tables are built for one image), and for the layout head's small 3×3 convolution
//! that copy costs more than the dense layers it shares the plan with. So a batched plan slices
//! each convolution's input into single briefs, convolves each on its own and concatenates the
//! results: the same sums for every row, and the dense layers still read their weights once per
//! batch.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::{Slice, TypedConcat};
use tract_onnx::tract_core::ops::cnn::Conv;

/// Rewrites every convolution of `model` whose batch (first axis) is `size` > 1 into `size`
/// convolutions of one brief each.
pub(super) fn split_convolutions(mut model: TypedModel, size: usize) -> TractResult<TypedModel> {
    if size < 2 {
        return Ok(model);
    }
    let convolutions: Vec<usize> = model
        .nodes()
        .iter()
        .filter(|node| node.op_is::<Conv>())
        .map(|node| node.id)
        .collect();
    for id in convolutions {
        let node = model.node(id);
        let batch = model.outlet_fact(node.inputs[0])?.shape[0].as_i64();
        if batch != i64::try_from(size).ok() {
            continue;
        }
        let mut patch = TypedModelPatch::default();
        let taps = patch.taps(&model, &node.inputs)?;
        let mut rows = TVec::new();
        for row in 0..size {
            let name = format!("{}.brief{row}", node.name);
            let one = patch.wire_node(
                format!("{name}.slice"),
                Slice::new(0, row, row + 1),
                &[taps[0]],
            )?;
            let mut inputs = taps.clone();
            inputs[0] = one[0];
            rows.push(patch.wire_node(name, node.op.clone(), &inputs)?[0]);
        }
        let joined = patch.wire_node(
            format!("{}.concat", node.name),
            TypedConcat { axis: 0 },
            &rows,
        )?;
        patch.shunt_outside(&model, OutletId::new(id, 0), joined[0])?;
        patch.apply(&mut model)?;
    }
    model.into_decluttered()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: usize = 3;

    fn shipped_model(size: usize) -> TypedModel {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("engines/packd-default/model.onnx");
        let mut model = tract_onnx::onnx()
            .model_for_path(path)
            .expect("model loads");
        for (position, len) in [196usize, 24, 16].into_iter().enumerate() {
            model = model
                .with_input_fact(position, f32::fact([size, len]).into())
                .expect("input fact");
        }
        model
            .into_typed()
            .and_then(|model| model.into_decluttered())
            .expect("typed")
    }

    fn convolutions(model: &TypedModel) -> Vec<i64> {
        model
            .nodes()
            .iter()
            .filter(|node| node.op_is::<Conv>())
            .map(|node| {
                let fact = model.outlet_fact(node.inputs[0]).expect("input fact");
                fact.shape[0].as_i64().expect("a concrete batch")
            })
            .collect()
    }

    fn run(model: TypedModel, seed: usize) -> TVec<TValue> {
        let inputs: TVec<TValue> = [196usize, 24, 16]
            .into_iter()
            .map(|len| {
                let values: Vec<f32> = (0..BATCH * len)
                    .map(|index| ((index * 37 + seed) % 11) as f32 / 11.0)
                    .collect();
                let array =
                    tract_ndarray::Array2::from_shape_vec((BATCH, len), values).expect("shape");
                Tensor::from(array).into()
            })
            .collect();
        let plan = model
            .into_optimized()
            .and_then(|model| model.into_runnable())
            .expect("plan");
        plan.run(inputs).expect("runs")
    }

    #[test]
    fn a_batched_convolution_becomes_one_per_brief() {
        assert_eq!(convolutions(&shipped_model(BATCH)), vec![BATCH as i64]);
        let split = split_convolutions(shipped_model(BATCH), BATCH).expect("split");
        assert_eq!(convolutions(&split), vec![1; BATCH]);
        let alone = split_convolutions(shipped_model(1), 1).expect("size 1 is left alone");
        assert_eq!(convolutions(&alone), vec![1]);
    }

    #[test]
    fn split_convolutions_compute_what_the_batched_one_did() {
        for seed in 0..3 {
            let whole = run(shipped_model(BATCH), seed);
            let split = run(
                split_convolutions(shipped_model(BATCH), BATCH).expect("split"),
                seed,
            );
            assert_eq!(whole.len(), split.len());
            for (whole, split) in whole.iter().zip(&split) {
                let whole = whole.to_plain_array_view::<f32>().expect("f32 output");
                let split = split.to_plain_array_view::<f32>().expect("f32 output");
                assert_eq!(whole.shape(), split.shape());
                let deviation = whole
                    .iter()
                    .zip(split.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(deviation <= 1e-5, "seed {seed}: {deviation}");
            }
        }
    }
}
