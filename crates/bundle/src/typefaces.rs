//! The typefaces a bundle ships for previews (`fonts/index.json`, optional): each font
//! pairing's heading and body face, Latin and CJK, read whole at open.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::catalogue::FontCatalogue;
use crate::manifest::{is_safe_relative_path, Manifest};
use crate::BundleError;

/// Where a bundle lists its preview faces.
pub const INDEX_FILE: &str = "fonts/index.json";
/// Where the faces and their licences live.
const FONTS_DIR: &str = "fonts/";

/// One face's file, read.
#[derive(Clone)]
pub struct FaceFile {
    /// The family drawn: the catalogue's name, or for a CJK face the family that stands in for
    /// it (a display face no recipe can subset is drawn in the Noto face of its build).
    pub family: String,
    /// The file's weight (400 regular, 700 bold).
    pub weight: u16,
    /// The TrueType or OpenType (CFF) bytes.
    pub bytes: Arc<[u8]>,
}

// By hand: a derived `Debug` would print a megabyte of font bytes wherever a bundle is shown.
impl std::fmt::Debug for FaceFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FaceFile")
            .field("family", &self.family)
            .field("weight", &self.weight)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The faces previews draw with.
#[derive(Debug, Clone)]
pub struct Typefaces {
    /// Heading faces by family name.
    pub heading: HashMap<String, FaceFile>,
    /// Body faces by family name.
    pub body: HashMap<String, FaceFile>,
    /// CJK heading faces by the catalogue's `heading_cjk` name.
    pub cjk_heading: HashMap<String, FaceFile>,
    /// CJK body faces by the catalogue's `body_cjk` name.
    pub cjk_body: HashMap<String, FaceFile>,
}

#[derive(Deserialize)]
struct Entry {
    file: String,
    weight: u16,
    /// The family drawn, where it is not the name the entry is listed under.
    #[serde(default)]
    family: Option<String>,
}

#[derive(Deserialize)]
struct LegacyCjk {
    family: String,
    file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    heading: HashMap<String, Entry>,
    body: HashMap<String, Entry>,
    #[serde(default)]
    cjk_heading: HashMap<String, Entry>,
    #[serde(default)]
    cjk_body: HashMap<String, Entry>,
    /// Bundles made before per-pairing CJK faces list one face for all CJK text.
    #[serde(default)]
    cjk: Option<LegacyCjk>,
}

fn invalid(message: String) -> BundleError {
    BundleError::Catalogue {
        file: INDEX_FILE.to_string(),
        message,
    }
}

/// Reads the bundle's faces when it lists `fonts/index.json`; every pairing's heading and body
/// face, Latin and CJK, must be there, each file a listed file under `fonts/`.
pub(crate) fn open(
    dir: &Path,
    manifest: &Manifest,
    fonts: &FontCatalogue,
) -> Result<Option<Typefaces>, BundleError> {
    if !manifest.files.iter().any(|entry| entry.path == INDEX_FILE) {
        return Ok(None);
    }
    let mut index: Index = crate::read_json(dir, INDEX_FILE)?;
    if let Some(legacy) = index.cjk.take() {
        for pairing in &fonts.pairings {
            for (name, into) in [
                (&pairing.heading_cjk, &mut index.cjk_heading),
                (&pairing.body_cjk, &mut index.cjk_body),
            ] {
                into.entry(name.clone()).or_insert_with(|| Entry {
                    file: legacy.file.clone(),
                    weight: 400,
                    family: Some(legacy.family.clone()),
                });
            }
        }
    }
    let mut files = FileCache::default();
    let mut faces = Typefaces {
        heading: HashMap::new(),
        body: HashMap::new(),
        cjk_heading: HashMap::new(),
        cjk_body: HashMap::new(),
    };
    for pairing in &fonts.pairings {
        for (family, entries, into) in [
            (&pairing.heading, &index.heading, &mut faces.heading),
            (&pairing.body, &index.body, &mut faces.body),
            (
                &pairing.heading_cjk,
                &index.cjk_heading,
                &mut faces.cjk_heading,
            ),
            (&pairing.body_cjk, &index.cjk_body, &mut faces.cjk_body),
        ] {
            if into.contains_key(family) {
                continue;
            }
            let entry = entries.get(family).ok_or_else(|| {
                invalid(format!("no file for '{family}' (pairing '{}')", pairing.id))
            })?;
            let face = FaceFile {
                family: entry.family.clone().unwrap_or_else(|| family.clone()),
                weight: entry.weight,
                bytes: files.read(dir, manifest, &entry.file)?,
            };
            into.insert(family.clone(), face);
        }
    }
    Ok(Some(faces))
}

/// Each file read once, however many names it is listed under (one CJK file serves many
/// catalogue faces).
#[derive(Default)]
struct FileCache(HashMap<String, Arc<[u8]>>);

impl FileCache {
    fn read(
        &mut self,
        dir: &Path,
        manifest: &Manifest,
        file: &str,
    ) -> Result<Arc<[u8]>, BundleError> {
        if let Some(bytes) = self.0.get(file) {
            return Ok(bytes.clone());
        }
        let bytes = read_face(dir, manifest, file)?;
        self.0.insert(file.to_string(), bytes.clone());
        Ok(bytes)
    }
}

fn read_face(dir: &Path, manifest: &Manifest, file: &str) -> Result<Arc<[u8]>, BundleError> {
    let path = format!("{FONTS_DIR}{file}");
    if !is_safe_relative_path(&path) || !manifest.files.iter().any(|entry| entry.path == path) {
        return Err(invalid(format!(
            "'{file}' is not a listed file under {FONTS_DIR}"
        )));
    }
    crate::read(&dir.join(&path)).map(Arc::from)
}
