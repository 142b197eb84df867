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
