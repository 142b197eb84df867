//! The typefaces a bundle ships for previews (`fonts/index.json`, optional): each font
//! pairing's heading and body face, and one face for CJK text, read whole at open.

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
    /// The family name, as the font catalogue names it.
    pub family: String,
    /// The file's weight (400 regular, 700 bold).
    pub weight: u16,
    /// The TrueType bytes.
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
    /// The face for CJK text, whatever the pairing's CJK faces are.
    pub cjk: FaceFile,
}

#[derive(Deserialize)]
struct Entry {
    file: String,
    weight: u16,
}

#[derive(Deserialize)]
struct CjkEntry {
    family: String,
    file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    heading: HashMap<String, Entry>,
    body: HashMap<String, Entry>,
    cjk: CjkEntry,
}

fn invalid(message: String) -> BundleError {
    BundleError::Catalogue {
        file: INDEX_FILE.to_string(),
        message,
    }
}

/// Reads the bundle's faces when it lists `fonts/index.json`; every pairing's heading and body
/// face must be there, each file a listed file under `fonts/`.
pub(crate) fn open(
    dir: &Path,
    manifest: &Manifest,
    fonts: &FontCatalogue,
) -> Result<Option<Typefaces>, BundleError> {
    if !manifest.files.iter().any(|entry| entry.path == INDEX_FILE) {
        return Ok(None);
    }
    let index: Index = crate::read_json(dir, INDEX_FILE)?;
    let read = |family: &str, entry: &Entry| -> Result<FaceFile, BundleError> {
        Ok(FaceFile {
            family: family.to_string(),
            weight: entry.weight,
            bytes: read_face(dir, manifest, &entry.file)?,
        })
    };
    let mut heading = HashMap::new();
    let mut body = HashMap::new();
    for pairing in &fonts.pairings {
        for (family, entries, into) in [
            (&pairing.heading, &index.heading, &mut heading),
            (&pairing.body, &index.body, &mut body),
        ] {
            if into.contains_key(family) {
                continue;
            }
            let entry = entries.get(family).ok_or_else(|| {
                invalid(format!("no file for '{family}' (pairing '{}')", pairing.id))
            })?;
            into.insert(family.clone(), read(family, entry)?);
        }
    }
    let cjk = FaceFile {
        family: index.cjk.family,
        weight: 400,
        bytes: read_face(dir, manifest, &index.cjk.file)?,
    };
    Ok(Some(Typefaces { heading, body, cjk }))
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
