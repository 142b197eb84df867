//! How a TensorRT engine takes a batch of briefs, worked out from its tensor shapes and its
//! optimisation profile, and how a batch's rows are packed into and unpacked from its tensors.
//! Pure functions, so they are tested without a GPU.
//!
//! An engine built from the batch-dynamic model reports -1 as its tensors' first dimension:
//! each enqueue must set the inputs' shapes, and profile 0 bounds the batch (build-engines.sh
//! builds the GPU engine for 1..max_batch, DLA engines for 1 only). An engine built before
//! batching has static `[1, …]` tensors and runs one brief at a time, as it always did.

use crate::backend::{BackendError, ModelInputs, ModelOutputs};

/// Why an engine tensor's shape or optimisation profile does not fit packd's batching; each
/// carries the dimensions involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ShapeError {
    /// The tensor is a scalar.
    #[error("a scalar, with no batch dimension")]
    Scalar,
    /// A brief's row holds another number of values than the manifest gives the tensor.
    #[error("shape {shape:?}: {found} values per brief, the manifest says {expected}")]
    RowLength {
        /// The engine's shape.
        shape: Vec<i64>,
        /// Values per brief in the engine's shape.
        found: usize,
        /// Values per brief in the manifest.
        expected: usize,
    },
    /// A dimension after the batch is dynamic (or not positive).
    #[error("shape {shape:?}: only the batch may be dynamic")]
    DynamicRow {
        /// The engine's shape.
        shape: Vec<i64>,
    },
    /// The batch dimension is neither -1 nor a positive size.
    #[error("shape {shape:?}: batch dimension {batch}")]
    BatchDimension {
        /// The engine's shape.
        shape: Vec<i64>,
        /// Its first dimension.
        batch: i64,
    },
    /// A static batch larger than 1: batches come in every size up to the limit, so an engine
    /// must take 1 brief or a dynamic batch.
    #[error(
        "static batch of {0}: packd needs a batch of 1 or a dynamic one; rebuild the engine \
         with build-engines.sh"
    )]
    StaticBatch(usize),
    /// A dynamic batch, but the engine has no optimisation profile to bound it.
    #[error("dynamic batch without an optimisation profile")]
    NoProfile,
    /// Profile 0's bounds change the rows, not only the batch.
    #[error("profile {min:?}..{max:?} does not keep the engine's rows {shape:?}")]
    ProfileRows {
        /// The profile's smallest shape.
        min: Vec<i64>,
        /// The profile's largest shape.
        max: Vec<i64>,
        /// The engine's shape.
        shape: Vec<i64>,
    },
    /// Profile 0's largest batch does not fit in a `usize`.
    #[error("profile batch {0} is out of range")]
    ProfileBatchRange(i64),
    /// Profile 0's batches do not start at 1 (one brief) or end below it.
    #[error("profile batch {min:?}..{max:?}: packd needs batches from 1 (one brief) up")]
    ProfileBatch {
        /// The profile's smallest shape.
        min: Vec<i64>,
        /// The profile's largest shape.
        max: Vec<i64>,
    },
    /// An output, resolved for a batch, is not that batch of rows of the manifest's length.
    #[error(
        "shape {shape:?} for {batch} brief(s); the manifest says [{batch}, …] of {row_len} values \
         each"
    )]
    Output {
        /// The shape the context resolved.
        shape: Vec<i64>,
        /// Briefs in the batch.
        batch: usize,
        /// Values per brief in the manifest.
        row_len: usize,
    },
}

/// The first dimension of an engine tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchDim {
    /// -1: the shape is set before each enqueue, within the optimisation profile.
    Dynamic,
    /// A fixed batch size.
    Static(usize),
}

/// Elements in `dims`, all of which must be fixed and positive.
fn static_elements(dims: &[i64]) -> Option<usize> {
    dims.iter().try_fold(1usize, |total, &dim| {
        usize::try_from(dim)
            .ok()
            .filter(|&dim| dim > 0)
            .and_then(|dim| total.checked_mul(dim))
    })
}

/// Reads an engine tensor's shape as the batch first, then one brief's row of `row_len` values.
pub(crate) fn batch_dim(shape: &[i64], row_len: usize) -> Result<BatchDim, ShapeError> {
    let Some((&first, row)) = shape.split_first() else {
        return Err(ShapeError::Scalar);
    };
    match static_elements(row) {
        Some(elements) if elements == row_len => {}
        Some(elements) => {
            return Err(ShapeError::RowLength {
                shape: shape.to_vec(),
                found: elements,
                expected: row_len,
            })
        }
        None => {
            return Err(ShapeError::DynamicRow {
                shape: shape.to_vec(),
            })
        }
    }
    match first {
        -1 => Ok(BatchDim::Dynamic),
        size => usize::try_from(size)
            .ok()
            .filter(|&size| size > 0)
            .map(BatchDim::Static)
            .ok_or_else(|| ShapeError::BatchDimension {
                shape: shape.to_vec(),
                batch: size,
            }),
    }
}

/// The most briefs one enqueue may carry for an input: 1 for a static batch of one, profile
/// 0's largest batch for a dynamic one (whose smallest must be 1, and whose rows must be the
/// engine's).
pub(crate) fn input_batch_limit(
    shape: &[i64],
    dim: BatchDim,
    profile: Option<(&[i64], &[i64])>,
) -> Result<usize, ShapeError> {
    match (dim, profile) {
        (BatchDim::Static(1), _) => Ok(1),
        (BatchDim::Static(size), _) => Err(ShapeError::StaticBatch(size)),
        (BatchDim::Dynamic, None) => Err(ShapeError::NoProfile),
        (BatchDim::Dynamic, Some((min, max))) => {
            let rows_match = |bound: &[i64]| bound.get(1..) == shape.get(1..);
            if !rows_match(min) || !rows_match(max) {
                return Err(ShapeError::ProfileRows {
                    min: min.to_vec(),
                    max: max.to_vec(),
                    shape: shape.to_vec(),
                });
            }
            match (min.first(), max.first()) {
                (Some(1), Some(&largest)) if largest >= 1 => {
                    usize::try_from(largest).map_err(|_| ShapeError::ProfileBatchRange(largest))
                }
                _ => Err(ShapeError::ProfileBatch {
                    min: min.to_vec(),
                    max: max.to_vec(),
                }),
            }
        }
    }
}

/// The batch packd runs an engine at: what every input admits, and no more than the bundle's
/// manifest declares (an engine built for more serves within the manifest's limit).
pub(crate) fn usable_batch(input_limits: &[usize], manifest_max: usize) -> usize {
    let engine = input_limits.iter().copied().min().unwrap_or(1);
    engine.min(manifest_max).max(1)
}

/// `shape` with its batch dimension set to `batch`.
pub(crate) fn batch_shape(shape: &[i64], batch: usize) -> Vec<i64> {
    let mut shaped = shape.to_vec();
    if let Some(first) = shaped.first_mut() {
        *first = i64::try_from(batch).unwrap_or(i64::MAX);
    }
    shaped
}

/// Checks an output's shape, as the context resolves it for `batch` briefs: the batch first,
/// then `row_len` values per brief.
pub(crate) fn check_output_shape(
    shape: &[i64],
    batch: usize,
    row_len: usize,
) -> Result<(), ShapeError> {
    let first = shape.first().and_then(|&size| usize::try_from(size).ok());
    let row = shape.get(1..).and_then(static_elements);
    if first == Some(batch) && row == Some(row_len) {
        Ok(())
    } else {
        Err(ShapeError::Output {
            shape: shape.to_vec(),
            batch,
            row_len,
        })
    }
}

/// One input tensor's values for a batch, brief after brief (`position` in `INPUT_ORDER`).
pub(crate) fn gather_rows(
    batch: &[ModelInputs<'_>],
    position: usize,
    row_len: usize,
) -> Result<Vec<f32>, BackendError> {
    let mut values = Vec::with_capacity(batch.len() * row_len);
    for inputs in batch {
        let row = [inputs.brief, inputs.image, inputs.brand]
            .get(position)
            .copied()
            .ok_or_else(|| BackendError::Inference(format!("no model input {position}")))?;
        if row.len() != row_len {
            return Err(BackendError::Inference(format!(
                "input of {} values where the engine takes {row_len}",
                row.len()
            )));
        }
        values.extend_from_slice(row);
    }
    Ok(values)
}

/// Each brief's four outputs from the batch's output tensors (in `OUTPUT_ORDER`, each holding
/// `batch` rows of its length).
pub(crate) fn split_rows(
    tensors: [&[f32]; 4],
    row_lens: [usize; 4],
    batch: usize,
) -> Result<Vec<ModelOutputs>, BackendError> {
    for ((values, &len), name) in tensors
        .iter()
        .zip(&row_lens)
        .zip(crate::backend::OUTPUT_ORDER)
    {
        if values.len() != len * batch {
            return Err(BackendError::OutputShape {
                name: name.to_string(),
                expected: len,
                found: values.len() / batch.max(1),
            });
        }
    }
    let row = |slot: usize, index: usize| {
        let len = row_lens[slot];
        tensors[slot][index * len..(index + 1) * len].to_vec()
    };
    Ok((0..batch)
        .map(|index| ModelOutputs {
            styles: row(0, index),
            palettes: row(1, index),
            fonts: row(2, index),
            layout: row(3, index),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_dims_are_dynamic_or_static_over_rows_of_the_manifests_length() {
        assert_eq!(batch_dim(&[-1, 196], 196), Ok(BatchDim::Dynamic));
        assert_eq!(batch_dim(&[1, 196], 196), Ok(BatchDim::Static(1)));
        assert_eq!(batch_dim(&[-1, 3, 16, 12], 576), Ok(BatchDim::Dynamic));
        assert_eq!(batch_dim(&[8, 24], 24), Ok(BatchDim::Static(8)));
        let wrong_row = batch_dim(&[-1, 195], 196).unwrap_err().to_string();
        assert!(wrong_row.contains("195 values per brief"), "{wrong_row}");
        let dynamic_row = batch_dim(&[-1, -1], 196).unwrap_err().to_string();
        assert!(dynamic_row.contains("only the batch"), "{dynamic_row}");
        assert!(batch_dim(&[0, 196], 196).is_err());
        assert!(batch_dim(&[-2, 196], 196).is_err());
        assert!(batch_dim(&[], 1).is_err());
    }

    #[test]
    fn a_dynamic_input_takes_up_to_its_profiles_largest_batch() {
        let shape = [-1, 196];
        let limit = |min: &[i64], max: &[i64]| {
            input_batch_limit(&shape, BatchDim::Dynamic, Some((min, max)))
        };
        assert_eq!(limit(&[1, 196], &[8, 196]), Ok(8));
        // A DLA engine: min = opt = max = 1.
        assert_eq!(limit(&[1, 196], &[1, 196]), Ok(1));
        // Briefs come one at a time too: a profile must start at 1.
        assert!(limit(&[2, 196], &[8, 196]).is_err());
        assert!(limit(&[1, 196], &[8, 195]).is_err());
        assert!(limit(&[1], &[8]).is_err());
        assert!(input_batch_limit(&shape, BatchDim::Dynamic, None).is_err());
    }

    #[test]
    fn static_engines_run_one_brief_and_other_static_batches_are_refused() {
        assert_eq!(
            input_batch_limit(&[1, 196], BatchDim::Static(1), None),
            Ok(1)
        );
        let error = input_batch_limit(&[4, 196], BatchDim::Static(4), None).unwrap_err();
        assert_eq!(error, ShapeError::StaticBatch(4));
        assert!(error.to_string().contains("static batch of 4"), "{error}");
    }

    #[test]
    fn the_usable_batch_is_the_smallest_limit_within_the_manifest() {
        assert_eq!(usable_batch(&[8, 8, 8], 8), 8);
        assert_eq!(usable_batch(&[8, 4, 8], 8), 4);
        // An engine built for more than the manifest declares serves within the manifest.
        assert_eq!(usable_batch(&[16, 16, 16], 8), 8);
        // A DLA engine of a max_batch = 8 bundle.
        assert_eq!(usable_batch(&[1, 1, 1], 8), 1);
        assert_eq!(usable_batch(&[], 8), 1);
    }

    #[test]
    fn batch_shapes_replace_only_the_first_dimension() {
        assert_eq!(batch_shape(&[-1, 196], 5), vec![5, 196]);
        assert_eq!(batch_shape(&[-1, 3, 16, 12], 8), vec![8, 3, 16, 12]);
        assert_eq!(batch_shape(&[], 3), Vec::<i64>::new());
    }

    #[test]
    fn output_shapes_must_hold_the_batch_then_a_row() {
        assert_eq!(check_output_shape(&[3, 3, 16, 12], 3, 576), Ok(()));
        assert_eq!(check_output_shape(&[1, 420], 1, 420), Ok(()));
        assert!(check_output_shape(&[-1, 420], 1, 420).is_err());
        assert!(check_output_shape(&[2, 420], 3, 420).is_err());
        assert!(check_output_shape(&[3, 421], 3, 420).is_err());
        assert!(check_output_shape(&[], 1, 1).is_err());
    }

    fn inputs<'a>(brief: &'a [f32], image: &'a [f32], brand: &'a [f32]) -> ModelInputs<'a> {
        ModelInputs {
            brief,
            image,
            brand,
        }
    }

    #[test]
    fn rows_are_gathered_brief_after_brief() {
        let batch = [
            inputs(&[1.0, 2.0], &[3.0], &[4.0]),
            inputs(&[5.0, 6.0], &[7.0], &[8.0]),
        ];
        assert_eq!(gather_rows(&batch, 0, 2).unwrap(), [1.0, 2.0, 5.0, 6.0]);
        assert_eq!(gather_rows(&batch, 1, 1).unwrap(), [3.0, 7.0]);
        assert_eq!(gather_rows(&batch, 2, 1).unwrap(), [4.0, 8.0]);
        let short = gather_rows(&batch, 0, 3).unwrap_err();
        assert!(short
            .to_string()
            .contains("input of 2 values where the engine takes 3"));
        assert!(gather_rows(&batch, 3, 1).is_err());
    }

    #[test]
    fn outputs_are_split_so_each_brief_gets_its_own_rows() {
        let batch = 3;
        let lens = [2usize, 3, 1, 4];
        // Every value encodes (output, brief, index) so a mix-up cannot go unseen.
        let tensors: Vec<Vec<f32>> = lens
            .iter()
            .enumerate()
            .map(|(slot, &len)| {
                (0..batch * len)
                    .map(|at| (slot * 100 + (at / len) * 10 + at % len) as f32)
                    .collect()
            })
            .collect();
        let views = [
            &tensors[0][..],
            &tensors[1][..],
            &tensors[2][..],
            &tensors[3][..],
        ];
        let split = split_rows(views, lens, batch).unwrap();
        assert_eq!(split.len(), batch);
        for (brief, outputs) in split.iter().enumerate() {
            let fields = [
                &outputs.styles,
                &outputs.palettes,
                &outputs.fonts,
                &outputs.layout,
            ];
            for (slot, field) in fields.iter().enumerate() {
                let expected: Vec<f32> = (0..lens[slot])
                    .map(|index| (slot * 100 + brief * 10 + index) as f32)
                    .collect();
                assert_eq!(**field, expected, "brief {brief} output {slot}");
            }
        }
        let error = split_rows(views, lens, 4).unwrap_err();
        assert!(
            matches!(&error, BackendError::OutputShape { name, expected: 2, found: 1 } if name == "styles"),
            "{error:?}"
        );
    }
}
