//! The bundle manifest: `Manifest::parse` on any text, the tensor lookups serving does, the
//! engine checks of a `commit` (`fleet::check_engines`), and `Bundle::open` twice:
//!
//! * on a directory that holds only that manifest, which runs the private `check_manifest`
//!   checks (schema, name, version, safe paths, digests, required files) before it looks for
//!   any listed file;
//! * on a directory where every listed file exists with the digest the manifest gives, so the
//!   fuzzed manifest gets past the hash checks to the vocabulary, the catalogues and the shape
//!   checks: the file named as the vocabulary (or a catalogue) holds the shipped bundle's
//!   vocabulary (or that catalogue), every other file a few placeholder bytes, and each
//!   well-formed `sha256` is replaced by the digest of what was written (the manifest is
//!   written back with `toml`). The vocabulary keeps every term but one synonym per language.

#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use packd::bundle::manifest::is_safe_relative_path;
use packd::bundle::{Bundle, BundleError, Manifest, LAYOUT_CHANNELS, MANIFEST_FILE};
use packd::fleet::{check_engines, DeviceProfile};
use sha2::{Digest, Sha256};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../engines/packd-default");

fn scratch_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// One directory per fuzzing process, holding nothing but `manifest.toml`.
fn bundle_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("packd-fuzz-manifest-")
            .tempdir_in(scratch_base())
            .expect("temp dir")
            .keep()
    })
}

/// The shipped bundle's vocabulary and catalogues, read once.
struct Shipped {
    vocabulary: Vec<u8>,
    styles: Vec<u8>,
    palettes: Vec<u8>,
    fonts: Vec<u8>,
    layouts: Vec<u8>,
}

fn shipped() -> &'static Shipped {
    static SHIPPED_FILES: OnceLock<Shipped> = OnceLock::new();
    SHIPPED_FILES.get_or_init(|| {
        let read = |relative: &str| {
            std::fs::read(Path::new(SHIPPED).join(relative)).expect("shipped bundle file")
        };
        Shipped {
            vocabulary: one_synonym_per_language(&read("vocabulary.json")),
            styles: read("catalogues/styles.json"),
            palettes: read("catalogues/palettes.json"),
            fonts: read("catalogues/fonts.json"),
            layouts: read("catalogues/layouts.json"),
        }
    })
}

/// The shipped vocabulary, every term kept (the shape checks count them), each with only its
/// first English and first Chinese synonym: indexing all 23 000 synonyms for every input made
/// this target run some 5 inputs a second under AddressSanitizer.
fn one_synonym_per_language(json: &[u8]) -> Vec<u8> {
    let mut vocabulary: serde_json::Value = serde_json::from_slice(json).expect("vocabulary json");
    let terms = vocabulary["terms"].as_array_mut().expect("terms");
    for term in terms {
        for language in ["en", "zh"] {
            if let Some(synonyms) = term[language].as_array_mut() {
                synonyms.truncate(1);
            }
        }
    }
    serde_json::to_vec(&vocabulary).expect("vocabulary json")
}

/// Builds a bundle directory whose files match `manifest` (see the module comment) and opens it.
fn open_with_files(mut manifest: Manifest) {
    let files = shipped();
    let content_of = |path: &str| -> Vec<u8> {
        let roles: [(&str, &[u8]); 5] = [
            (&manifest.model.vocabulary, &files.vocabulary),
            (&manifest.catalogues.styles.file, &files.styles),
            (&manifest.catalogues.palettes.file, &files.palettes),
            (&manifest.catalogues.fonts.file, &files.fonts),
            (&manifest.catalogues.layouts.file, &files.layouts),
        ];
        roles
            .iter()
            .find(|(role, _)| *role == path)
            .map_or_else(|| path.as_bytes().to_vec(), |(_, bytes)| bytes.to_vec())
    };
    let work = tempfile::Builder::new()
        .prefix("packd-fuzz-bundle-")
        .tempdir_in(scratch_base())
        .expect("temp dir");
    let mut digests = Vec::new();
    for entry in &manifest.files {
        if !is_safe_relative_path(&entry.path) || entry.path == MANIFEST_FILE {
            return; // refused by check_manifest anyway; covered by the first open
        }
        let target = work.path().join(&entry.path);
        let bytes = content_of(&entry.path);
        let written = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&target, &bytes));
        if written.is_err() {
            return; // "a" and "a/b" both listed, a name too long, …: not what this pass is for
        }
        digests.push(hex::encode(Sha256::digest(&bytes)));
    }
    for (entry, digest) in manifest.files.iter_mut().zip(digests) {
        if entry.sha256.len() == 64 && entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            entry.sha256 = digest;
        }
    }
    let Ok(text) = toml::to_string(&manifest) else {
        return;
    };
    std::fs::write(work.path().join(MANIFEST_FILE), text).expect("write manifest");
    if let Ok(bundle) = Bundle::open(work.path()) {
        // What serving relies on once a bundle opened: every tensor has the length the encoder
        // and the recommender assume.
        let [rows, columns] = bundle.manifest.model.layout_grid;
        let layout = bundle.manifest.output("layout").expect("layout output");
        assert_eq!(
            Some(layout.len()),
            rows.checked_mul(columns)
                .and_then(|cells| cells.checked_mul(LAYOUT_CHANNELS))
        );
        assert_eq!(
            bundle.manifest.output("styles").expect("styles").len(),
            bundle.styles.styles.len()
        );
        assert_eq!(
            bundle.manifest.input("brief").expect("brief").len(),
            bundle.vocabulary.len()
        );
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let parsed = Manifest::parse(text);
    if let Ok(manifest) = &parsed {
        for tensor in manifest.model.inputs.iter().chain(&manifest.model.outputs) {
            let _ = tensor.len();
            let _ = tensor.is_empty();
            assert!(
                manifest.input(&tensor.name).is_some() || manifest.output(&tensor.name).is_some()
            );
        }
        for path in manifest
            .files
            .iter()
            .map(|file| file.path.as_str())
            .chain(manifest.engines.iter().map(|engine| engine.file.as_str()))
        {
            if is_safe_relative_path(path) {
                // A safe path is plain names only: it can never leave the bundle directory.
                assert!(
                    Path::new(path)
                        .components()
                        .all(|part| matches!(part, Component::Normal(_))),
                    "{path:?}"
                );
            }
        }
        let orin = DeviceProfile {
            tensorrt: Some("10.3.0".into()),
            compute_capability: Some("8.7".into()),
            dla_cores: 2,
        };
        let _ = check_engines(&manifest.engines, &orin);
        let _ = check_engines(
            &manifest.engines,
            &DeviceProfile {
                tensorrt: None,
                compute_capability: None,
                dla_cores: 0,
            },
        );
        open_with_files(manifest.clone());
    }

    let dir = bundle_dir();
    std::fs::write(dir.join(MANIFEST_FILE), bytes).expect("write manifest");
    match Bundle::open(dir) {
        Ok(bundle) => panic!("{} opened with no files but its manifest", bundle.label()),
        Err(BundleError::Manifest(_)) => {}
        Err(BundleError::MissingFile { path }) => {
            // Only a manifest that parsed and passed every check gets to look for files, and
            // only for paths that stay inside the bundle.
            let manifest = parsed
                .as_ref()
                .expect("a manifest that did not parse was checked");
            assert!(is_safe_relative_path(&path), "{path:?}");
            assert!(manifest.files.iter().any(|file| file.path == path));
            assert!(manifest
                .files
                .iter()
                .all(|file| file.sha256.len() == 64 && file.path != MANIFEST_FILE));
        }
        Err(BundleError::Io { path, .. }) => {
            // A listed path that is a directory here cannot happen: only manifest.toml exists.
            panic!("I/O error on {}", path.display())
        }
        Err(other) => panic!("unexpected refusal of a files-less bundle: {other}"),
    }
});
