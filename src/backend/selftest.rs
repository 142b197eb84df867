//! Self-test vectors: a bundle proves its model runs as its maker measured before it serves.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Backend, ModelInputs, ModelOutputs, Precision, OUTPUT_ORDER};
use crate::bundle::{Bundle, BundleError};

/// `selftest/vectors.json`.
#[derive(Debug, Deserialize)]
pub struct SelfTestFile {
    /// Largest deviation allowed per output value, by precision (`fp32`, `int8`).
    pub tolerance: HashMap<String, f32>,
    /// The cases, every one of which must pass.
    pub cases: Vec<SelfTestCase>,
}

/// One input with its expected outputs per precision.
#[derive(Debug, Deserialize)]
pub struct SelfTestCase {
    /// The case's name, as failures report it.
    pub name: String,
    /// The model inputs to run.
    pub inputs: SelfTestInputs,
    /// Expected outputs by precision, then by output tensor name.
    pub expected: HashMap<String, HashMap<String, Vec<f32>>>,
}

/// The three model inputs of a case.
#[derive(Debug, Deserialize)]
pub struct SelfTestInputs {
    /// The `brief` input tensor.
    pub brief: Vec<f32>,
    /// The `image` input tensor.
    pub image: Vec<f32>,
    /// The `brand` input tensor.
    pub brand: Vec<f32>,
}

/// Why a self-test did not pass.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    /// The bundle's self-test file cannot be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The self-test file is malformed, lacks a tolerance, case or output, or a length differs.
    #[error("self-test file: {0}")]
    File(String),
    /// The backend failed on a case.
    #[error("case '{case}': {message}")]
    Backend {
        /// The case's name.
        case: String,
        /// The backend's error.
        message: String,
    },
    /// An output value deviates from the expected one by more than the tolerance (or is NaN).
    #[error("case '{case}', output '{output}'[{index}]: got {got}, expected {expected} (tolerance {tolerance})")]
    Mismatch {
        /// The case's name.
        case: String,
        /// The output tensor's name.
        output: String,
        /// Index of the value within that output.
        index: usize,
        /// The value the backend gave.
        got: f32,
        /// The value the bundle's maker measured.
        expected: f32,
        /// The tolerance for this precision.
        tolerance: f32,
    },
}

/// What a passing self-test measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfTestReport {
    /// Cases run, all of which passed.
    pub cases: usize,
    /// The largest deviation seen from any expected value.
    pub max_deviation: f32,
    /// The tolerance it was held to.
    pub tolerance: f32,
}

impl SelfTestInputs {
    pub(crate) fn as_model_inputs(&self) -> ModelInputs<'_> {
        ModelInputs {
            brief: &self.brief,
            image: &self.image,
            brand: &self.brand,
        }
    }
}

/// Compares one case's outputs with its expected ones; the largest deviation on success.
fn compare(
    case: &SelfTestCase,
    name: &str,
    outputs: &ModelOutputs,
    key: &str,
    tolerance: f32,
) -> Result<f32, SelfTestError> {
    let expected = case.expected.get(key).ok_or_else(|| {
        SelfTestError::File(format!("case '{name}' has no expected '{key}' outputs"))
    })?;
    let mut max_deviation = 0.0f32;
    for output in OUTPUT_ORDER {
        let want = expected
            .get(output)
            .ok_or_else(|| SelfTestError::File(format!("case '{name}' lacks output '{output}'")))?;
        let got = outputs.by_name(output).unwrap_or_default();
        if got.len() != want.len() {
            return Err(SelfTestError::File(format!(
                "case '{name}', output '{output}': {} expected values for {} outputs",
                want.len(),
                got.len()
            )));
        }
        for (index, (&got, &expected)) in got.iter().zip(want).enumerate() {
            let deviation = (got - expected).abs();
            if deviation.is_nan() || deviation > tolerance {
                return Err(SelfTestError::Mismatch {
                    case: name.to_string(),
                    output: output.to_string(),
                    index,
                    got,
                    expected,
                    tolerance,
                });
            }
            max_deviation = max_deviation.max(deviation);
        }
    }
    Ok(max_deviation)
}

/// Loads the bundle's self-test vectors.
pub fn load(bundle: &Bundle) -> Result<SelfTestFile, SelfTestError> {
    let path = bundle.path_of(&bundle.manifest.model.selftest);
    let bytes = std::fs::read(&path).map_err(|source| BundleError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|error| SelfTestError::File(error.to_string()))
}

/// Runs every case through `backend` and compares with the expected outputs of `precision`.
pub fn run(
    bundle: &Bundle,
    backend: &dyn Backend,
    precision: Precision,
) -> Result<SelfTestReport, SelfTestError> {
    let file = load(bundle)?;
    let key = precision.as_str();
    let tolerance = *file
        .tolerance
        .get(key)
        .ok_or_else(|| SelfTestError::File(format!("no tolerance for '{key}'")))?;
    if file.cases.is_empty() {
        return Err(SelfTestError::File("no cases".into()));
    }
    let mut max_deviation = 0.0f32;
    for case in &file.cases {
        let outputs = backend
            .infer(&case.inputs.as_model_inputs())
            .map_err(|error| SelfTestError::Backend {
                case: case.name.clone(),
                message: error.to_string(),
            })?;
        let deviation = compare(case, &case.name, &outputs, key, tolerance)?;
        max_deviation = max_deviation.max(deviation);
    }
    // A backend that batches must give every case the same answer inside a batch: rows must
    // not leak into one another, nor padding into rows.
    if backend.max_batch() > 1 {
        let batch: Vec<ModelInputs<'_>> = file
            .cases
            .iter()
            .map(|case| case.inputs.as_model_inputs())
            .collect();
        let size = batch.len();
        let batched = backend
            .run_batch(&batch)
            .map_err(|error| SelfTestError::Backend {
                case: format!("all {size} in a batch"),
                message: error.to_string(),
            })?;
        if batched.len() != size {
            return Err(SelfTestError::Backend {
                case: format!("all {size} in a batch"),
                message: format!("{} results", batched.len()),
            });
        }
        for (case, inference) in file.cases.iter().zip(&batched) {
            let name = format!("{} (in a batch of {size})", case.name);
            let deviation = compare(case, &name, &inference.outputs, key, tolerance)?;
            max_deviation = max_deviation.max(deviation);
        }
    }
    Ok(SelfTestReport {
        cases: file.cases.len(),
        max_deviation,
        tolerance,
    })
}
