//! The bundle manifest: `Manifest::parse` on any text, the tensor lookups serving does, the
//! engine checks of a `commit` (`fleet::check_engines`), and `Bundle::open` on a directory that
//! holds only that manifest, which runs the private `check_manifest` checks (schema, name,
//! version, safe paths, digests, required files) before it looks for any listed file.

#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use packd::bundle::manifest::is_safe_relative_path;
use packd::bundle::{Bundle, BundleError, Manifest, MANIFEST_FILE};
use packd::fleet::{check_engines, DeviceProfile};

/// One directory per fuzzing process, holding nothing but `manifest.toml`.
fn bundle_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let builder = tempfile::Builder::new().prefix("packd-fuzz-manifest-").tempdir_in(
            if base.is_dir() {
                base.to_path_buf()
            } else {
                std::env::temp_dir()
            },
        );
        builder.expect("temp dir").keep()
    })
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
            assert!(manifest.input(&tensor.name).is_some() || manifest.output(&tensor.name).is_some());
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
    }

    let dir = bundle_dir();
    std::fs::write(dir.join(MANIFEST_FILE), bytes).expect("write manifest");
    match Bundle::open(dir) {
        Ok(bundle) => panic!("{} opened with no files but its manifest", bundle.label()),
        Err(BundleError::Manifest(_)) => {}
        Err(BundleError::MissingFile { path }) => {
            // Only a manifest that parsed and passed every check gets to look for files, and
            // only for paths that stay inside the bundle.
            let manifest = parsed.as_ref().expect("a manifest that did not parse was checked");
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
