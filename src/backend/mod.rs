//! Backends run the bundle's model: `cpu` (tract, everywhere) and, on a Jetson, TensorRT engines.

#[cfg(feature = "cpu")]
pub mod cpu;
pub mod engines;
#[cfg(feature = "test-util")]
pub mod fault;
pub mod schedule;
pub mod select;
pub mod selftest;
#[cfg(feature = "tensorrt")]
#[allow(
    unsafe_code,
    reason = "the TensorRT and CUDA bindings are FFI; each block says why it is sound"
)]
pub mod trt;

use crate::bundle::{
    Bundle, INPUT_BRAND, INPUT_BRIEF, INPUT_IMAGE, OUTPUT_FONTS, OUTPUT_LAYOUT, OUTPUT_PALETTES,
    OUTPUT_STYLES,
};

/// Input tensors in the order every backend feeds them.
// Read by the runtimes only: a build without `cpu` (the fuzz targets) has none.
#[cfg_attr(not(any(feature = "cpu", feature = "tensorrt")), allow(dead_code))]
pub(crate) const INPUT_ORDER: [&str; 3] = [INPUT_BRIEF, INPUT_IMAGE, INPUT_BRAND];
/// Output tensors in the order every backend returns them.
pub(crate) const OUTPUT_ORDER: [&str; 4] =
    [OUTPUT_STYLES, OUTPUT_PALETTES, OUTPUT_FONTS, OUTPUT_LAYOUT];

/// Which of the bundle's models to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The full-precision model (`model.fp32`): the CPU runs it, and its vectors check the CPU.
    Fp32,
    /// The quantised model (`model.int8`): TensorRT engines are built from it and checked by it.
    Int8,
}

impl Precision {
    /// The key used in self-test files.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }
}

/// A backend failure; briefs that hit one are answered `internal`.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The model file cannot be read or optimised.
    #[error("cannot load model {path}: {message}")]
    Load {
        /// The model file.
        path: String,
        /// The loader's error, with its causes.
        message: String,
    },
    /// Running the model failed; the text is the runtime's error.
    #[error("inference failed: {0}")]
    Inference(String),
    /// An output tensor has another length than the catalogue gives it.
    #[error("model gave {found} values for '{name}', expected {expected}")]
    OutputShape {
        /// The output tensor's name (`styles`, `palettes`, `fonts` or `layout`).
        name: String,
        /// The length the bundle's catalogue gives it.
        expected: usize,
        /// The length the model returned.
        found: usize,
    },
}

/// The three input vectors of one brief.
#[derive(Debug, Clone, Copy)]
pub struct ModelInputs<'a> {
    /// The `brief` tensor: one slot per vocabulary term the brief matched.
    pub brief: &'a [f32],
    /// The `image` tensor: the reference photo's features; all zeros without a photo.
    pub image: &'a [f32],
    /// The `brand` tensor: the brand colours' features.
    pub brand: &'a [f32],
}

/// The four raw output vectors (layout flattened channel-major, then row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOutputs {
    /// The `styles` output: one score per style of the catalogue.
    pub styles: Vec<f32>,
    /// The `palettes` output: one score per palette of the catalogue.
    pub palettes: Vec<f32>,
    /// The `fonts` output: one score per font pairing of the catalogue.
    pub fonts: Vec<f32>,
    /// The `layout` output: one heatmap per element (logo, product, text) over the layout grid.
    pub layout: Vec<f32>,
}

impl ModelOutputs {
    /// The outputs in [`OUTPUT_ORDER`].
    pub(crate) fn by_name(&self, name: &str) -> Option<&[f32]> {
        match name {
            OUTPUT_STYLES => Some(&self.styles),
            OUTPUT_PALETTES => Some(&self.palettes),
            OUTPUT_FONTS => Some(&self.fonts),
            OUTPUT_LAYOUT => Some(&self.layout),
            _ => None,
        }
    }
}

/// One brief's model outputs and the target that computed them.
#[derive(Debug, Clone, PartialEq)]
pub struct Inference {
    /// The four output vectors.
    pub outputs: ModelOutputs,
    /// Where it ran, as replies name it (`cpu`, `trt:dla0`, …).
    pub target: String,
}

/// Something that runs the model for one brief at a time, from many threads.
pub trait Backend: Send + Sync {
    /// Where inference runs, as replies name it (`cpu`, `trt:dla0`, …).
    fn name(&self) -> &str;
    /// Every target this backend may run a brief on, as `state` lists them.
    fn targets(&self) -> Vec<String> {
        vec![self.name().to_string()]
    }
    /// Runs the model once.
    fn infer(&self, inputs: &ModelInputs<'_>) -> Result<ModelOutputs, BackendError>;
    /// Runs the model once and says where it ran (backends over several targets override it).
    fn run(&self, inputs: &ModelInputs<'_>) -> Result<Inference, BackendError> {
        Ok(Inference {
            outputs: self.infer(inputs)?,
            target: self.name().to_string(),
        })
    }
    /// Most briefs [`Backend::run_batch`] runs through the model together; 1 means one at a
    /// time, and the serving workers then do not wait to form batches.
    fn max_batch(&self) -> usize {
        1
    }
    /// Runs the model for each of `batch`, together where the backend can; the results come
    /// back in the order of `batch`, and each equals what [`Backend::run`] gives for it alone.
    fn run_batch(&self, batch: &[ModelInputs<'_>]) -> Result<Vec<Inference>, BackendError> {
        batch.iter().map(|inputs| self.run(inputs)).collect()
    }
}

/// The expected element count of each output, from the manifest.
#[cfg_attr(not(any(feature = "cpu", feature = "tensorrt")), allow(dead_code))]
pub(crate) fn output_lengths(bundle: &Bundle) -> [usize; 4] {
    OUTPUT_ORDER.map(|name| {
        bundle
            .manifest
            .output(name)
            .map(|spec| spec.len())
            .unwrap_or(0)
    })
}
