//! packd's model bundles: reading and verifying one (format), receiving one in chunks
//! (transfer), checking its signature and archive, and keeping them on disk (store).
//!
//! No tokio, MQTT or inference here: packd serves only a [`Bundle`] that passed
//! [`Bundle::open`] and then its self-test, which runs on packd's backends.

pub mod archive;
pub mod catalogue;
pub mod colour;
pub mod crashpoint;
pub mod delta;
pub mod durable;
mod history;
pub mod likeness;
pub mod manifest;
pub mod packs;
pub mod raster_lanes;
pub mod signature;
mod spelling;
pub mod store;
pub mod text_encoder;
pub mod transfer;
pub mod typefaces;

use std::fs;
use std::path::{Path, PathBuf};

pub use catalogue::{FontCatalogue, LayoutCatalogue, PaletteCatalogue, StyleCatalogue, Vocabulary};
pub use manifest::Manifest;

/// Length of the model's image input: the reference-photo features packd computes.
pub const IMAGE_FEATURE_LEN: usize = 24;
/// Length of the model's brand input: the brand-colour features packd computes.
pub const BRAND_FEATURE_LEN: usize = 16;

/// The text encoder's self-test cases, checked when a bundle lists the file.
pub const TEXT_SELFTEST_FILE: &str = "selftest/text_encoder.json";
/// The file every bundle starts from.
pub const MANIFEST_FILE: &str = "manifest.toml";
/// Input tensor the encoder fills with the brief's terms (one slot per vocabulary term).
pub const INPUT_BRIEF: &str = "brief";
/// Input tensor the encoder fills with the reference-photo features.
pub const INPUT_IMAGE: &str = "image";
/// Input tensor the encoder fills with the brand-colour features.
pub const INPUT_BRAND: &str = "brand";
/// Output tensor of style scores (one per style in the catalogue).
pub const OUTPUT_STYLES: &str = "styles";
/// Output tensor of palette scores (one per palette in the catalogue).
pub const OUTPUT_PALETTES: &str = "palettes";
/// Output tensor of font-pairing scores (one per pairing in the catalogue).
pub const OUTPUT_FONTS: &str = "fonts";
/// Output tensor of the layout heatmap (`layout_grid` cells × [`LAYOUT_CHANNELS`]).
pub const OUTPUT_LAYOUT: &str = "layout";
/// Layout channels in the order the model gives them.
pub const LAYOUT_CHANNELS: usize = 3;

/// Why a bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// The manifest does not parse or breaks a rule (also: a label clash in the store).
    #[error("manifest.toml is invalid: {0}")]
    Manifest(String),
    /// A listed file is absent.
    #[error("file '{path}' is listed in the manifest but missing")]
    MissingFile {
        /// The file's path in the bundle.
        path: String,
    },
    /// A listed file's SHA-256 is not the manifest's.
    #[error("file '{path}' does not match its manifest hash (expected {expected}, found {found})")]
    HashMismatch {
        /// The file's path in the bundle.
        path: String,
        /// The SHA-256 the manifest lists.
        expected: String,
        /// The SHA-256 of the file on disk.
        found: String,
    },
    /// A file is present that the manifest does not list.
    #[error("file '{path}' is not listed in the manifest")]
    UnlistedFile {
        /// The file's path in the bundle.
        path: String,
    },
    /// The vocabulary or a catalogue does not parse.
    #[error("{file}: {message}")]
    Catalogue {
        /// The file's path in the bundle.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// The model's tensors do not fit the vocabulary and catalogues.
    #[error("model does not fit its catalogues: {0}")]
    Shape(String),
}

impl From<durable::FsError> for BundleError {
    fn from(error: durable::FsError) -> BundleError {
        BundleError::Io {
            path: error.path,
            source: error.source,
        }
    }
}

/// A verified bundle with its vocabulary and catalogues loaded.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle's folder.
    pub dir: PathBuf,
    /// Its parsed `manifest.toml`.
    pub manifest: Manifest,
    /// The brief terms the model's `brief` input indexes.
    pub vocabulary: Vocabulary,
    /// What the `styles` output indexes.
    pub styles: StyleCatalogue,
    /// What the `palettes` output indexes.
    pub palettes: PaletteCatalogue,
    /// What the `fonts` output indexes.
    pub fonts: FontCatalogue,
    /// The layout templates.
    pub layouts: LayoutCatalogue,
    /// Each layout template drawn as the model's layout output (see
    /// [`catalogue::LayoutTemplate::raster`]), laid out to find the nearest quickly; computed
    /// once.
    pub layout_lanes: raster_lanes::RasterLanes,
    /// How alike every two styles are (see [`likeness::style_similarity`]), once per bundle.
    pub style_similarities: likeness::Similarities,
    /// How alike every two font pairings are (see [`likeness::font_similarity`]), once per bundle.
    pub font_similarities: likeness::Similarities,
    /// How far apart every two palettes look, computed once per bundle.
    pub palette_distances: likeness::PaletteDistances,
    /// Each palette's family as a number, computed once per bundle.
    pub palette_families: likeness::PaletteFamilies,
    /// The text encoder and every synonym's vector, when the bundle ships one.
    pub text: Option<TextModel>,
    /// Each palette's roles seen in every vision, and their colour-vision check for briefs
    /// without brand colours, computed once.
    pub seen_roles: Vec<catalogue::SeenRoles>,
    /// The faces previews are drawn in, when the bundle ships them (`fonts/index.json`).
    pub typefaces: Option<typefaces::Typefaces>,
    /// The pack forms previews are drawn on (`catalogues/packs.json`; a box front without it).
    pub packs: packs::PackCatalogue,
}

/// A bundle's text encoder with the vocabulary's synonyms already embedded.
#[derive(Debug, Clone)]
pub struct TextModel {
    /// The token table and tokenizer.
    pub encoder: text_encoder::TextEncoder,
    /// Every synonym's vector.
    pub index: text_encoder::TermIndex,
}

impl Bundle {
    /// Opens a bundle directory: parses the manifest, checks every file's hash, loads the
    /// vocabulary and catalogues, and checks that the model's tensors fit them.
    pub fn open(dir: &Path) -> Result<Bundle, BundleError> {
        let manifest = Bundle::read_manifest(dir)?;
        verify_files(dir, &manifest)?;

        let vocabulary =
            Vocabulary::parse(&read(&dir.join(&manifest.model.vocabulary))?).map_err(|error| {
                BundleError::Catalogue {
                    file: manifest.model.vocabulary.clone(),
                    message: error.to_string(),
                }
            })?;
        let styles: StyleCatalogue = read_json(dir, &manifest.catalogues.styles.file)?;
        let palettes: PaletteCatalogue = read_json(dir, &manifest.catalogues.palettes.file)?;
        let fonts: FontCatalogue = read_json(dir, &manifest.catalogues.fonts.file)?;
        let layouts: LayoutCatalogue = read_json(dir, &manifest.catalogues.layouts.file)?;

        let palette_labs = catalogue::palette_labs(&palettes.palettes).map_err(|error| {
            BundleError::Catalogue {
                file: manifest.catalogues.palettes.file.clone(),
                message: error.to_string(),
            }
        })?;
        let seen_roles =
            catalogue::seen_roles(&palettes.palettes).map_err(|error| BundleError::Catalogue {
                file: manifest.catalogues.palettes.file.clone(),
                message: error.to_string(),
            })?;
        let text = open_text_model(dir, &manifest, &vocabulary)?;
        let typefaces = typefaces::open(dir, &manifest, &fonts)?;
        let packs = packs::open(dir, &manifest, &vocabulary)?;
        let palette_families = likeness::PaletteFamilies::new(&palettes.palettes);
        let style_similarities = likeness::Similarities::of_styles(
            &styles.styles,
            &likeness::style_words(&styles.styles),
        );
        let font_similarities = likeness::Similarities::of_fonts(&fonts.pairings);
        let bundle = Bundle {
            dir: dir.to_path_buf(),
            manifest,
            vocabulary,
            text,
            seen_roles,
            styles,
            palettes,
            fonts,
            layouts,
            layout_lanes: raster_lanes::RasterLanes::default(),
            palette_distances: likeness::PaletteDistances::new(&palette_labs),
            palette_families,
            style_similarities,
            font_similarities,
            typefaces,
            packs,
        };
        bundle.check_shapes()?;
        // Only once the grid is known to match the model's output: its cell count is then sane.
        let layout_rasters = bundle
            .layouts
            .rasters(bundle.manifest.model.layout_grid)
            .map_err(|error| BundleError::Catalogue {
                file: bundle.manifest.catalogues.layouts.file.clone(),
                message: error.to_string(),
            })?;
        Ok(Bundle {
            layout_lanes: raster_lanes::RasterLanes::new(&layout_rasters),
            ..bundle
        })
    }

    /// `name@version`, the bundle's identity everywhere in logs and on disk.
    pub fn label(&self) -> String {
        self.manifest.label()
    }

    /// A bundle folder's manifest, parsed and checked (schema, name, version, safe paths,
    /// required files), without reading any file it lists.
    pub fn read_manifest(dir: &Path) -> Result<Manifest, BundleError> {
        let text = read_to_string(&dir.join(MANIFEST_FILE))?;
        let manifest = Manifest::parse(&text)
            .map_err(|error| BundleError::Manifest(error.message().to_string()))?;
        check_manifest(&manifest)?;
        Ok(manifest)
    }

    /// Path of a file named in the manifest.
    pub fn path_of(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// Checks that the model's tensors fit the vocabulary and catalogues, and that each
    /// catalogue holds what the manifest declares.
    fn check_shapes(&self) -> Result<(), BundleError> {
        self.check_inputs()?;
        self.check_outputs()?;
        self.check_counts()
    }

    fn check_inputs(&self) -> Result<(), BundleError> {
        let expect_input = |name: &str, len: usize| -> Result<(), BundleError> {
            match self.manifest.input(name) {
                Some(spec) if is_float_batch_of(spec, len) => Ok(()),
                Some(spec) => Err(BundleError::Shape(format!(
                    "input '{name}' is {} {:?}, expected float32 [1, {len}]",
                    spec.dtype, spec.shape
                ))),
                None => Err(BundleError::Shape(format!("input '{name}' is missing"))),
            }
        };
        expect_input(INPUT_BRIEF, self.vocabulary.len())?;
        expect_input(INPUT_IMAGE, IMAGE_FEATURE_LEN)?;
        expect_input(INPUT_BRAND, BRAND_FEATURE_LEN)
    }

    fn check_outputs(&self) -> Result<(), BundleError> {
        let expect_output = |name: &str, len: usize| -> Result<(), BundleError> {
            match self.manifest.output(name) {
                Some(spec) if is_float_batch_of(spec, len) => Ok(()),
                Some(spec) => Err(BundleError::Shape(format!(
                    "output '{name}' is {} {:?}, expected {len} float32 values",
                    spec.dtype, spec.shape
                ))),
                None => Err(BundleError::Shape(format!("output '{name}' is missing"))),
            }
        };
        expect_output(OUTPUT_STYLES, self.styles.styles.len())?;
        expect_output(OUTPUT_PALETTES, self.palettes.palettes.len())?;
        expect_output(OUTPUT_FONTS, self.fonts.pairings.len())?;
        let [rows, columns] = self.manifest.model.layout_grid;
        // Checked: a hostile `layout_grid` used to overflow here (a panic in debug builds, and in
        // release a wrapped product that could match a tiny layout output: seed
        // `layout-grid-overflow.toml` of the manifest fuzz target).
        let layout_len = rows
            .checked_mul(columns)
            .and_then(|cells| cells.checked_mul(LAYOUT_CHANNELS))
            .ok_or_else(|| {
                BundleError::Shape(format!("layout_grid [{rows}, {columns}] is too large"))
            })?;
        expect_output(OUTPUT_LAYOUT, layout_len)
    }

    fn check_counts(&self) -> Result<(), BundleError> {
        let declared = &self.manifest.catalogues;
        let counts = [
            ("styles", declared.styles.count, self.styles.styles.len()),
            (
                "palettes",
                declared.palettes.count,
                self.palettes.palettes.len(),
            ),
            ("fonts", declared.fonts.count, self.fonts.pairings.len()),
            (
                "layouts",
                declared.layouts.count,
                self.layouts.templates.len(),
            ),
        ];
        for (name, declared, found) in counts {
            if declared != found {
                return Err(BundleError::Shape(format!(
                    "catalogue '{name}' declares {declared} entries but holds {found}"
                )));
            }
        }
        if self.styles.styles.is_empty()
            || self.palettes.palettes.is_empty()
            || self.fonts.pairings.is_empty()
        {
            return Err(BundleError::Shape("a catalogue is empty".into()));
        }
        Ok(())
    }
}

fn open_text_model(
    dir: &Path,
    manifest: &Manifest,
    vocabulary: &Vocabulary,
) -> Result<Option<TextModel>, BundleError> {
    let Some(file) = &manifest.model.text_encoder else {
        return Ok(None);
    };
    let encoder = text_encoder::TextEncoder::parse(&read(&dir.join(file))?).map_err(|error| {
        BundleError::Catalogue {
            file: file.clone(),
            message: error.to_string(),
        }
    })?;
    if manifest
        .files
        .iter()
        .any(|entry| entry.path == TEXT_SELFTEST_FILE)
    {
        let cases = read(&dir.join(TEXT_SELFTEST_FILE))?;
        encoder
            .self_test(&cases)
            .map_err(|error| BundleError::Catalogue {
                file: TEXT_SELFTEST_FILE.to_string(),
                message: error.to_string(),
            })?;
    }
    let index = text_encoder::TermIndex::build(&encoder, vocabulary);
    Ok(Some(TextModel { encoder, index }))
}

/// Whether a tensor is `len` float32 values in a batch of one.
fn is_float_batch_of(spec: &manifest::TensorSpec, len: usize) -> bool {
    spec.dtype == "float32" && spec.shape.first() == Some(&1) && spec.len() == len
}

fn check_manifest(manifest: &Manifest) -> Result<(), BundleError> {
    let invalid = |message: String| Err(BundleError::Manifest(message));
    if manifest.schema != manifest::MANIFEST_SCHEMA {
        return invalid(format!(
            "schema {} is not supported (this service reads schema {})",
            manifest.schema,
            manifest::MANIFEST_SCHEMA
        ));
    }
    if manifest.name.is_empty()
        || !manifest
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return invalid(format!(
            "name '{}' must be non-empty ASCII letters, digits, '-', '_' or '.'",
            manifest.name
        ));
    }
    if manifest.version.is_empty()
        || !manifest
            .version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
    {
        return invalid(format!(
            "version '{}' must be non-empty ASCII letters, digits, '-', '_', '.' or '+'",
            manifest.version
        ));
    }
    for entry in &manifest.files {
        if !manifest::is_safe_relative_path(&entry.path) || entry.path == MANIFEST_FILE {
            return invalid(format!("file path '{}' is not allowed", entry.path));
        }
        if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return invalid(format!("file '{}' has a malformed sha256", entry.path));
        }
    }
    let model = &manifest.model;
    for required in [
        Some(&model.fp32),
        Some(&model.int8),
        Some(&model.calibration_cache),
        Some(&model.vocabulary),
        Some(&model.selftest),
        model.text_encoder.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if !manifest.files.iter().any(|entry| &entry.path == required) {
            return invalid(format!(
                "model file '{required}' is not listed in [[files]]"
            ));
        }
    }
    let catalogues = &manifest.catalogues;
    for required in [
        &catalogues.styles.file,
        &catalogues.palettes.file,
        &catalogues.fonts.file,
        &catalogues.layouts.file,
    ] {
        if !manifest.files.iter().any(|entry| &entry.path == required) {
            return invalid(format!("catalogue '{required}' is not listed in [[files]]"));
        }
    }
    Ok(())
}

/// Folder where an appliance builds its own TensorRT engines (`jetson/build-engines.sh`).
///
/// Files there need not be listed in `files`: each plan is checked against its `engines` entry's
/// SHA-256 before it is deserialized, and the rest (timing cache, layer reports) is never loaded.
pub(crate) const LOCAL_ENGINES_DIR: &str = "engines/";

/// Checks that every listed file exists with its hash and size, and that nothing unlisted is
/// present (an unlisted file is either tampering or a half-finished copy), except under
/// [`LOCAL_ENGINES_DIR`].
pub(crate) fn verify_files(dir: &Path, manifest: &Manifest) -> Result<(), BundleError> {
    for entry in &manifest.files {
        let path = dir.join(&entry.path);
        let found = match sha256_file(&path) {
            Ok(digest) => digest,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(BundleError::MissingFile {
                    path: entry.path.clone(),
                })
            }
            Err(source) => return Err(BundleError::Io { path, source }),
        };
        if !found.eq_ignore_ascii_case(&entry.sha256) {
            return Err(BundleError::HashMismatch {
                path: entry.path.clone(),
                expected: entry.sha256.clone(),
                found,
            });
        }
    }
    for relative in list_files(dir)? {
        if relative != MANIFEST_FILE
            && !relative.starts_with(LOCAL_ENGINES_DIR)
            && !manifest.files.iter().any(|entry| entry.path == relative)
        {
            return Err(BundleError::UnlistedFile { path: relative });
        }
    }
    Ok(())
}

/// Every regular file under `dir`, as `/`-separated relative paths.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<String>, BundleError> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let absolute = dir.join(&relative);
        let entries = fs::read_dir(&absolute).map_err(|source| BundleError::Io {
            path: absolute.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| BundleError::Io {
                path: absolute.clone(),
                source,
            })?;
            let kind = entry.file_type().map_err(|source| BundleError::Io {
                path: entry.path(),
                source,
            })?;
            let child = relative.join(entry.file_name());
            if kind.is_dir() {
                pending.push(child);
            } else {
                found.push(child.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Ok(found)
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    durable::sha256_hex_of_file(path)
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, BundleError> {
    fs::read(path).map_err(|source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_to_string(path: &Path) -> Result<String, BundleError> {
    fs::read_to_string(path).map_err(|source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    relative: &str,
) -> Result<T, BundleError> {
    serde_json::from_slice(&read(&dir.join(relative))?).map_err(|error| BundleError::Catalogue {
        file: relative.to_string(),
        message: error.to_string(),
    })
}
