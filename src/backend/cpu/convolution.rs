//! The model's convolutions in the forms tract runs fastest on a small image and a batch.
//!
//! tract lowers a convolution to a matrix product over its input's patches, with the output
//! channels as the product's rows: the layout head's 3×3 convolution has three, so most of each
//! row panel is wasted, and over a batch tract also copies every patch out first (its lazy
//! im2col is built for one image). A stride-1 convolution padded to keep its size is the
//! transposed convolution of the spatially flipped kernel, which tract computes as one product
//! with the kernel taps as rows (27 here) followed by a scatter-add, over the whole batch at once:
//! the same sums in another order. A convolution of any other shape, in a batched plan, is split
//! into one convolution per brief instead.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::{Slice, TypedConcat};
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, Deconv, KernelFormat, PaddingSpec, PoolSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Rewrites every convolution of `model`, whose batch (first axis) is `size`: as a transposed
/// convolution where its shape allows, else, when `size` > 1, as `size` convolutions of one
/// brief each.
pub(super) fn rewrite(mut model: TypedModel, size: usize) -> TractResult<TypedModel> {
    for id in convolution_ids(&model) {
        if let Some(patch) = as_transposed(&model, id)? {
            patch.apply(&mut model)?;
        } else if let Some(patch) = split(&model, id, size)? {
            patch.apply(&mut model)?;
        }
    }
    model.into_decluttered()
}

/// The nodes of `model` that are convolutions.
fn convolution_ids(model: &TypedModel) -> Vec<usize> {
    model
        .nodes()
        .iter()
        .filter(|node| node.op_is::<Conv>())
        .map(|node| node.id)
        .collect()
}

/// The convolution `id` as a transposed convolution of its flipped kernel, when it is a plain
/// float 2-D one (one group, stride and dilation 1, an odd kernel padded by half on each side,
/// a constant OIHW kernel).
fn as_transposed(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    let half: TVec<usize> = spec.kernel_shape.iter().map(|k| k / 2).collect();
    let plain = conv.q_params.is_none()
        && conv.group == 1
        && conv.kernel_fmt == KernelFormat::OIHW
        && spec.data_format == DataFormat::NCHW
        && spec.kernel_shape.len() == 2
        && spec.kernel_shape.iter().all(|k| k % 2 == 1)
        && spec.strides().iter().all(|&s| s == 1)
        && spec.dilations().iter().all(|&d| d == 1)
        && spec.padding == PaddingSpec::Explicit(half.clone(), half.clone())
        && model.outlet_fact(node.inputs[0])?.datum_type == f32::datum_type();
    let kernel = model.outlet_fact(node.inputs[1])?.konst.clone();
    let (true, Some(kernel)) = (plain, kernel) else {
        return Ok(None);
    };
    if kernel.datum_type() != f32::datum_type() || kernel.rank() != 4 {
        return Ok(None);
    }
    let mut flipped = kernel.to_plain_array_view::<f32>()?.to_owned();
    flipped.invert_axis(tract_ndarray::Axis(2));
    flipped.invert_axis(tract_ndarray::Axis(3));
    let turned = turns(model.outlet_fact(node.inputs[0])?);
    let (mut kernel_shape, mut half) = (spec.kernel_shape.clone(), half);
    if turned {
        flipped.swap_axes(2, 3);
        kernel_shape.swap(0, 1);
        half.swap(0, 1);
    }
    let flipped = Tensor::from(flipped.as_standard_layout().into_owned());
    let mut patch = TypedModelPatch::default();
    let mut inputs = patch.taps(model, &node.inputs)?;
    inputs[1] = patch.add_const(format!("{}.flipped", node.name), flipped)?;
    if turned {
        inputs[0] = patch.wire_node(
            format!("{}.turn", node.name),
            AxisOp::Move(3, 2),
            &[inputs[0]],
        )?[0];
    }
    let transposed = Deconv::new(
        PoolSpec::new(
            DataFormat::NCHW,
            kernel_shape,
            PaddingSpec::Explicit(half.clone(), half),
            None,
            None,
            spec.input_channels,
            spec.output_channels,
        ),
        KernelFormat::OIHW,
        tvec![0; 2],
        1,
    );
    let mut wire = patch.wire_node(format!("{}.transposed", node.name), transposed, &inputs)?;
    if turned {
        wire = patch.wire_node(format!("{}.unturn", node.name), AxisOp::Move(3, 2), &wire)?;
    }
    patch.shunt_outside(model, OutletId::new(id, 0), wire[0])?;
    Ok(Some(patch))
}

/// Whether a convolution over `input` (NCHW) runs faster on its image turned a quarter: tract
/// scatters a transposed convolution's taps row by row with vector adds only when a row has at
/// least 16 pixels, and pixel by pixel otherwise (the layout head's rows have 12, its columns 16).
fn turns(input: &TypedFact) -> bool {
    let side = |axis: usize| input.shape.get(axis).and_then(|dim| dim.as_i64());
    matches!((side(2), side(3)), (Some(height), Some(width)) if width < 16 && height >= 16)
}

/// The convolution `id` over a batch of `size` > 1 as one convolution per brief, concatenated.
fn split(model: &TypedModel, id: usize, size: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let batch = model.outlet_fact(node.inputs[0])?.shape[0].as_i64();
    if size < 2 || batch != i64::try_from(size).ok() {
        return Ok(None);
    }
    let mut patch = TypedModelPatch::default();
    let taps = patch.taps(model, &node.inputs)?;
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
    patch.shunt_outside(model, OutletId::new(id, 0), joined[0])?;
    Ok(Some(patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: usize = 3;

    fn shipped() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("engines/packd-default")
    }

    /// The model's input lengths, in `INPUT_ORDER`, as the shipped manifest gives them.
    fn input_lengths() -> Vec<usize> {
        let text = std::fs::read_to_string(shipped().join("manifest.toml")).expect("manifest");
        let manifest = crate::bundle::manifest::Manifest::parse(&text).expect("manifest parses");
        crate::backend::INPUT_ORDER
            .iter()
            .map(|name| manifest.input(name).expect("an input").len())
            .collect()
    }

    fn shipped_model(size: usize) -> TypedModel {
        let mut model = tract_onnx::onnx()
            .model_for_path(shipped().join("model.onnx"))
            .expect("model loads");
        for (position, len) in input_lengths().into_iter().enumerate() {
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
        let inputs: TVec<TValue> = input_lengths()
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

    fn count<T: TypedOp>(model: &TypedModel) -> usize {
        model
            .nodes()
            .iter()
            .filter(|node| node.op_is::<T>())
            .count()
    }

    /// Every convolution split per brief, whatever its shape.
    fn split_all(mut model: TypedModel, size: usize) -> TypedModel {
        for id in convolution_ids(&model) {
            if let Some(patch) = split(&model, id, size).expect("split") {
                patch.apply(&mut model).expect("patch applies");
            }
        }
        model.into_decluttered().expect("declutters")
    }

    fn max_deviation(first: &TVec<TValue>, second: &TVec<TValue>) -> f32 {
        assert_eq!(first.len(), second.len());
        let mut deviation = 0.0f32;
        for (first, second) in first.iter().zip(second) {
            let first = first.to_plain_array_view::<f32>().expect("f32 output");
            let second = second.to_plain_array_view::<f32>().expect("f32 output");
            assert_eq!(first.shape(), second.shape());
            for (a, b) in first.iter().zip(second.iter()) {
                deviation = deviation.max((a - b).abs());
            }
        }
        deviation
    }

    #[test]
    fn the_layout_convolution_becomes_a_transposed_one_at_every_batch_size() {
        for size in [1, BATCH] {
            let model = shipped_model(size);
            assert_eq!((count::<Conv>(&model), count::<Deconv>(&model)), (1, 1));
            let rewritten = rewrite(shipped_model(size), size).expect("rewrite");
            assert_eq!(
                (count::<Conv>(&rewritten), count::<Deconv>(&rewritten)),
                (0, 2),
                "batch {size}"
            );
        }
    }

    #[test]
    fn a_batched_convolution_splits_into_one_per_brief() {
        assert_eq!(convolutions(&shipped_model(BATCH)), vec![BATCH as i64]);
        assert_eq!(
            convolutions(&split_all(shipped_model(BATCH), BATCH)),
            vec![1; BATCH]
        );
        assert_eq!(convolutions(&split_all(shipped_model(1), 1)), vec![1]);
    }

    /// A convolution the transposed form does not fit (an even kernel here) is split per brief
    /// in a batched plan, and left as it is in a plan for one brief.
    #[test]
    fn a_convolution_of_another_shape_is_split_not_transposed() {
        let build = |size: usize| {
            let mut model = TypedModel::default();
            let x = model
                .add_source("x", f32::fact([size, 2, 5, 5]))
                .expect("source");
            let weights: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin()).collect();
            let kernel =
                tract_ndarray::Array4::from_shape_vec((3, 2, 2, 2), weights).expect("kernel");
            let kernel = model
                .add_const("kernel", Tensor::from(kernel))
                .expect("kernel");
            let bias = model
                .add_const("bias", tensor1(&[0.1f32, 0.2, 0.3]))
                .expect("bias");
            let conv = Conv {
                pool_spec: PoolSpec::new(
                    DataFormat::NCHW,
                    tvec![2, 2],
                    PaddingSpec::Valid,
                    None,
                    None,
                    2,
                    3,
                ),
                kernel_fmt: KernelFormat::OIHW,
                group: 1,
                q_params: None,
            };
            let output = model
                .wire_node("conv", conv, &[x, kernel, bias])
                .expect("conv");
            model.select_output_outlets(&output).expect("output");
            model
        };
        let input: Vec<f32> = (0..BATCH * 50).map(|i| (i % 7) as f32 / 7.0).collect();
        let input = tract_ndarray::Array4::from_shape_vec((BATCH, 2, 5, 5), input).expect("input");
        let outputs = |model: TypedModel| {
            let plan = model
                .into_optimized()
                .and_then(|model| model.into_runnable())
                .expect("plan");
            plan.run(tvec![Tensor::from(input.clone()).into()])
                .expect("runs")
        };
        let rewritten = rewrite(build(BATCH), BATCH).expect("rewrite");
        assert_eq!(count::<Deconv>(&rewritten), 0);
        assert_eq!(convolutions(&rewritten), vec![1; BATCH]);
        assert!(max_deviation(&outputs(build(BATCH)), &outputs(rewritten)) <= 1e-5);
        assert_eq!(
            convolutions(&rewrite(build(1), 1).expect("rewrite")),
            vec![1]
        );
    }

    /// Both rewrites sum the same products in another order: a few units in the last place.
    #[test]
    fn rewritten_convolutions_compute_what_the_model_did() {
        for seed in 0..3 {
            let whole = run(shipped_model(BATCH), seed);
            let transposed = run(rewrite(shipped_model(BATCH), BATCH).expect("rewrite"), seed);
            let split = run(split_all(shipped_model(BATCH), BATCH), seed);
            for (name, outputs) in [("transposed", &transposed), ("split", &split)] {
                let deviation = max_deviation(&whole, outputs);
                assert!(deviation <= 1e-5, "{name}, seed {seed}: {deviation}");
            }
        }
    }
}
