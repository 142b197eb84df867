//! Regression tests for what the fuzz targets in `fuzz/` caught (docs/testing.md, "Fuzzing"). Each test
//! replays the crashing input, or the smallest form of it, through the public entry point the
//! target drives.

use std::fs;
use std::path::{Path, PathBuf};

use packd::bundle::{Bundle, BundleError, MANIFEST_FILE};

fn shipped_bundle() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/engines/packd-default"
    ))
}

fn shipped_manifest() -> String {
    fs::read_to_string(shipped_bundle().join(MANIFEST_FILE)).expect("shipped manifest")
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The shipped bundle with its manifest replaced by `manifest`.
fn shipped_with_manifest(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&shipped_bundle(), dir.path());
    fs::write(dir.path().join(MANIFEST_FILE), manifest).unwrap();
    dir
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the shipped manifest has no {from:?}");
    text.replacen(from, to, 1)
}

#[test]
fn the_shipped_bundle_still_opens() {
    let dir = shipped_with_manifest(&shipped_manifest());
    Bundle::open(dir.path()).expect("shipped bundle");
}

/// fuzz/corpus/manifest/nul-path.toml: a `[[files]]` path with a NUL passed `check_manifest`,
/// reached `File::open` and came back as `BundleError::Io`, which `commit` answers `internal`
/// rather than `invalid_bundle`.
#[test]
fn a_nul_in_a_file_path_is_an_invalid_manifest_not_an_io_error() {
    let manifest = replace_once(
        &shipped_manifest(),
        r#"path = "REPORT.md""#,
        r#"path = "REPORT\u0000.md""#,
    );
    // Like the fuzz target: a directory holding nothing but the manifest.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(MANIFEST_FILE), &manifest).unwrap();
    match Bundle::open(dir.path()) {
        Err(BundleError::Manifest(message)) => {
            assert!(message.contains("is not allowed"), "{message}")
        }
        other => panic!("expected an invalid manifest, got {other:?}"),
    }
    // And with every other file in place, too.
    let full = shipped_with_manifest(&manifest);
    assert!(matches!(
        Bundle::open(full.path()),
        Err(BundleError::Manifest(_))
    ));
}

/// fuzz/corpus/manifest/huge-shape.toml: `TensorSpec::len` multiplied the shape unchecked
/// (`attempt to multiply with overflow`).
#[test]
fn a_tensor_shape_whose_product_overflows_is_a_shape_error() {
    let manifest = replace_once(
        &shipped_manifest(),
        "shape = [1, 3, 16, 12]",
        "shape = [4294967296, 4294967296, 4294967296]",
    );
    let dir = shipped_with_manifest(&manifest);
    match Bundle::open(dir.path()) {
        Err(BundleError::Shape(message)) => assert!(message.contains("layout"), "{message}"),
        other => panic!("expected a shape error, got {other:?}"),
    }
}

/// fuzz/corpus/manifest/layout-grid-overflow.toml: `check_shapes` computed
/// `3 × rows × columns` unchecked. In a debug build that panicked; in a release build
/// 3 × 6148914691236517206 wraps to 2, so a layout output of shape [1, 2] passed and every
/// brief's post-processing would then slice far past the model's output.
#[test]
fn a_layout_grid_whose_cell_count_overflows_is_a_shape_error() {
    let manifest = replace_once(
        &replace_once(
            &shipped_manifest(),
            "layout_grid = [16, 12]",
            "layout_grid = [6148914691236517206, 1]",
        ),
        "shape = [1, 3, 16, 12]",
        "shape = [1, 2]",
    );
    let dir = shipped_with_manifest(&manifest);
    match Bundle::open(dir.path()) {
        Err(BundleError::Shape(message)) => {
            assert!(message.contains("layout_grid"), "{message}")
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
}

/// `fuzz/fuzz_targets/image.rs` (2026-12-06, 15 s after libjpeg-turbo replaced jpeg-decoder): a
/// JPEG frame of 65 535 × 12 pixels. libjpeg-turbo refuses sides over 65 500, and packd called
/// that `TooManyPixels` though 786 420 pixels are well within the limit, which the target checks.
#[test]
fn a_jpeg_side_over_65500_within_the_pixel_limit_is_unsupported_not_too_many_pixels() {
    use base64::Engine as _;
    use packd::features::image::{decode_reference_image, ImageError};
    use packd::features::ImageLimits;
    let input = base64::engine::general_purpose::STANDARD
        .decode(
            "/9j/4AAQSkZJRgABAgAAAQABAAD/wAARCAAM/////xEAAhEBAxEB/9sAQwAIBgYhMjIyMjIyDj5K8qrVkfimX15\
             6anTWNoswcTM0MvccITIyMs9Nb//Z",
        )
        .expect("base64");
    match decode_reference_image(&input, &ImageLimits::default()) {
        Err(ImageError::Unsupported(message)) => assert!(message.contains("65500"), "{message}"),
        other => panic!("{:?}", other.map(|image| image.dimensions())),
    }
}
