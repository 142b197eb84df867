//! `manifest.toml`: what a bundle holds, the model's tensors, and every file's hash.

use serde::{Deserialize, Serialize};

/// The manifest schema this service reads.
pub const MANIFEST_SCHEMA: u32 = 1;

/// A bundle's manifest.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub name: String,
    pub version: String,
    pub created: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub engines: Vec<EngineEntry>,
    pub model: ModelSection,
    pub catalogues: Catalogues,
    pub files: Vec<FileEntry>,
}

/// The model files and the tensors they take and give.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub fp32: String,
    pub int8: String,
    pub calibration_cache: String,
    pub vocabulary: String,
    pub selftest: String,
    pub layout_grid: [usize; 2],
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

/// Name, element type and static shape of one model tensor.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
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
    pub styles: CatalogueEntry,
    pub palettes: CatalogueEntry,
    pub fonts: CatalogueEntry,
    pub layouts: CatalogueEntry,
}

/// One catalogue file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    pub file: String,
    pub version: String,
    pub count: usize,
}

/// One file of the bundle with its digest.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// A TensorRT engine built for one target (filled on a Jetson).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EngineEntry {
    pub target: String,
    pub precision: String,
    pub file: String,
    pub sha256: String,
    pub tensorrt: String,
    pub cuda: String,
    pub compute_capability: String,
    #[serde(default)]
    pub dla_cores: Option<u32>,
}

impl Manifest {
    /// Parses a manifest.
    pub fn parse(text: &str) -> Result<Manifest, toml::de::Error> {
        toml::from_str(text)
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

/// A path inside a bundle that cannot escape it: relative, no `..`, no empty or odd components.
pub fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert!(!is_safe_relative_path(bad), "{bad}");
        }
    }
}
