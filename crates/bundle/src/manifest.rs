//! `manifest.toml`: what a bundle holds, the model's tensors, and every file's hash.

use serde::{Deserialize, Serialize};

/// The manifest schema this service reads.
pub(crate) const MANIFEST_SCHEMA: u32 = 1;

/// A bundle's manifest.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The manifest schema; this service reads schema 1.
    pub schema: u32,
    /// The bundle's name: ASCII letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// The bundle's version (semver where it is to be compared).
    pub version: String,
    /// When the bundle was made (fixed by the recipe, not the wall clock).
    pub created: String,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
    /// TensorRT engines built for this bundle, one per target.
    #[serde(default)]
    pub engines: Vec<EngineEntry>,
    /// The model files and their tensors.
    pub model: ModelSection,
    /// The catalogues the outputs index.
    pub catalogues: Catalogues,
    /// Every file of the bundle but the manifest, with its SHA-256.
    pub files: Vec<FileEntry>,
}

/// The model files and the tensors they take and give.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// The float32 ONNX model.
    pub fp32: String,
    /// The int8-quantised ONNX model.
    pub int8: String,
    /// TensorRT's int8 calibration cache.
    pub calibration_cache: String,
    /// The vocabulary file.
    pub vocabulary: String,
    /// The text encoder that reads free brief values as vocabulary terms; bundles without one
    /// match synonyms only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_encoder: Option<String>,
    /// Inputs and expected outputs packd checks before serving the bundle.
    pub selftest: String,
    /// Rows and columns of the layout heatmap.
    pub layout_grid: [usize; 2],
    /// Most briefs the model takes in one run along its first dimension; 1 (a model with a
    /// static batch of one) when absent.
    #[serde(default)]
    pub max_batch: MaxBatch,
    /// The model's input tensors.
    pub inputs: Vec<TensorSpec>,
    /// The model's output tensors.
    pub outputs: Vec<TensorSpec>,
}

/// How many briefs a model runs in one call: 1 to [`MaxBatch::LIMIT`].
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(try_from = "u32", into = "u32")]
pub struct MaxBatch(u32);

impl MaxBatch {
    /// The largest batch a manifest may declare: past it, waiting for a batch costs more
    /// latency than it saves on the cores of an appliance.
    pub const LIMIT: u32 = 64;
    /// A model that takes one brief at a time.
    pub const ONE: MaxBatch = MaxBatch(1);

    /// The batch size as a count.
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl Default for MaxBatch {
    fn default() -> Self {
        MaxBatch::ONE
    }
}

impl TryFrom<u32> for MaxBatch {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if (1..=MaxBatch::LIMIT).contains(&value) {
            Ok(MaxBatch(value))
        } else {
            Err(format!(
                "max_batch {value} is outside 1..={}",
                MaxBatch::LIMIT
            ))
        }
    }
}

impl From<MaxBatch> for u32 {
    fn from(value: MaxBatch) -> u32 {
        value.0
    }
}

/// Name, element type and static shape of one model tensor.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// The tensor's name in the model.
    pub name: String,
    /// Its element type (`float32`).
    pub dtype: String,
    /// Its static shape, batch first.
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// Number of elements; `usize::MAX` for a shape whose product does not fit (a hostile
    /// manifest's `[4294967296, 4294967296, 4294967296]` used to overflow here: seed
    /// `huge-shape.toml` of the manifest fuzz target), which matches no tensor a bundle holds.
    pub fn len(&self) -> usize {
        if self.shape.contains(&0) {
            return 0;
        }
        self.shape
            .iter()
            .try_fold(1usize, |total, &dim| total.checked_mul(dim))
            .unwrap_or(usize::MAX)
    }

    /// Whether the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The catalogues the model's outputs index.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Catalogues {
    /// What the `styles` output indexes.
    pub styles: CatalogueEntry,
    /// What the `palettes` output indexes.
    pub palettes: CatalogueEntry,
    /// What the `fonts` output indexes.
    pub fonts: CatalogueEntry,
    /// The layout templates.
    pub layouts: CatalogueEntry,
}

/// One catalogue file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    /// The catalogue's path in the bundle.
    pub file: String,
    /// The catalogue's own version.
    pub version: String,
    /// Entries it holds (checked against the file).
    pub count: usize,
}

/// One file of the bundle with its digest.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path in the bundle, `/`-separated.
    pub path: String,
    /// SHA-256 of its bytes, in hex.
    pub sha256: String,
    /// Its length in bytes.
    pub size: u64,
}

/// A TensorRT engine built for one target (filled on a Jetson).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EngineEntry {
    /// Where it runs: `gpu`, `dla0` or `dla1`.
    pub target: String,
    /// `int8` (with fp16 fallback) or `fp16`.
    pub precision: String,
    /// The plan's path in the bundle.
    pub file: String,
    /// SHA-256 of the plan, in hex.
    pub sha256: String,
    /// TensorRT version that built it.
    pub tensorrt: String,
    /// CUDA version it was built with.
    pub cuda: String,
    /// GPU compute capability it was built for.
    pub compute_capability: String,
    /// DLA cores of the device that built it, if any.
    #[serde(default)]
    pub dla_cores: Option<u32>,
}

impl Manifest {
    /// Parses a manifest.
    pub fn parse(text: &str) -> Result<Manifest, toml::de::Error> {
        toml::from_str(text)
    }

    /// `name@version`, the bundle's identity everywhere in logs and on disk.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Looks up a model input by name.
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.model.inputs.iter().find(|tensor| tensor.name == name)
    }

    /// Looks up a model output by name.
    pub fn output(&self, name: &str) -> Option<&TensorSpec> {
        self.model.outputs.iter().find(|tensor| tensor.name == name)
    }
}

/// A path inside a bundle that cannot escape it: relative, no `..`, no empty or odd components,
/// and no NUL (which no file name can hold: such a path used to reach the filesystem and come
/// back as an I/O error, answered `internal` instead of `invalid_bundle`: seed `nul-path.toml` of
/// the manifest fuzz target).
pub fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains(['\\', '\0'])
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_lengths_never_overflow() {
        let spec = |shape: &[usize]| TensorSpec {
            name: "t".into(),
            dtype: "float32".into(),
            shape: shape.to_vec(),
        };
        assert_eq!(spec(&[1, 3, 16, 12]).len(), 576);
        assert_eq!(spec(&[]).len(), 1);
        assert_eq!(spec(&[1 << 32, 1 << 32, 1 << 32]).len(), usize::MAX);
        assert_eq!(spec(&[usize::MAX, 2]).len(), usize::MAX);
        assert_eq!(spec(&[1 << 40, 1 << 40, 0]).len(), 0);
        assert!(spec(&[1 << 40, 1 << 40, 0]).is_empty());
    }

    #[test]
    fn paths_that_escape_are_refused() {
        assert!(is_safe_relative_path("model.onnx"));
        assert!(is_safe_relative_path("catalogues/fonts.json"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
            "REPORT\0.md",
            "a/\0/b",
        ] {
            assert!(!is_safe_relative_path(bad), "{bad}");
        }
    }
}
