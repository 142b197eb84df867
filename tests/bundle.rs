//! The shipped bundle, checked as packd checks it: hashes, shapes, and the self-test vectors of
//! both models under tract.

use std::fs;
use std::path::{Path, PathBuf};

use packd::backend::cpu::CpuBackend;
use packd::backend::selftest;
use packd::backend::Precision;
use packd::brief;
use packd::bundle::store::BundleStore;
use packd::bundle::{Bundle, BundleError};
use packd::features::read_terms;

use crate::fixtures::bundles::rehash_manifest;
use crate::fixtures::{SHIPPED_LABEL, SHIPPED_VERSION};

fn shipped() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/engines/packd-default"
    ))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn the_shipped_bundle_verifies() {
    let bundle = Bundle::open(&shipped()).expect("shipped bundle opens");
    assert_eq!(bundle.manifest.name, "packd-default");
    assert_eq!(bundle.manifest.version, SHIPPED_VERSION);
    assert_eq!(bundle.label(), SHIPPED_LABEL);
    assert!(
        bundle.manifest.engines.is_empty(),
        "engines are built on a Jetson"
    );
    assert!(bundle.vocabulary.len() >= 100);
    assert!(bundle.styles.styles.len() >= 12);
    assert!(bundle.palettes.palettes.len() >= 200);
    assert!(bundle.fonts.pairings.len() >= 60);
    let products = bundle
        .vocabulary
        .terms
        .iter()
        .filter(|term| term.group == "product")
        .count();
    assert!(products >= 20, "{products} product categories");
}

#[test]
fn fp32_self_test_passes_under_tract() {
    let bundle = Bundle::open(&shipped()).expect("bundle");
    let backend = CpuBackend::load(&bundle, Precision::Fp32).expect("fp32 loads in tract");
    let report = selftest::run(&bundle, &backend, Precision::Fp32).expect("fp32 self-test");
    assert!(
        report.cases >= 24,
        "a few dozen vectors, got {}",
        report.cases
    );
}

#[test]
fn int8_self_test_passes_under_tract() {
    let bundle = Bundle::open(&shipped()).expect("bundle");
    let backend = CpuBackend::load(&bundle, Precision::Int8).expect("int8 (Q/DQ) loads in tract");
    let report = selftest::run(&bundle, &backend, Precision::Int8).expect("int8 self-test");
    assert!(report.max_deviation <= report.tolerance);
}

#[test]
fn a_tampered_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp");
    copy_dir(&shipped(), dir.path());
    let vocabulary = dir.path().join("vocabulary.json");
    let mut bytes = fs::read(&vocabulary).expect("read");
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    fs::write(&vocabulary, bytes).expect("write");
    match Bundle::open(dir.path()) {
        Err(BundleError::HashMismatch { path, .. }) => assert_eq!(path, "vocabulary.json"),
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
}

#[test]
fn an_unlisted_or_missing_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp");
    copy_dir(&shipped(), dir.path());
    fs::write(dir.path().join("extra.bin"), b"surprise").expect("write");
    assert!(matches!(
        Bundle::open(dir.path()),
        Err(BundleError::UnlistedFile { .. })
    ));
    fs::remove_file(dir.path().join("extra.bin")).expect("rm");
    fs::remove_file(dir.path().join("model.onnx")).expect("rm");
    assert!(matches!(
        Bundle::open(dir.path()),
        Err(BundleError::MissingFile { .. })
    ));
}

#[test]
fn a_fresh_store_is_seeded_from_the_shipped_bundle_once() {
    let dir = tempfile::tempdir().expect("temp");
    let store = BundleStore::open(&dir.path().join("bundles")).expect("store");
    let seeded = store.seed_from(&shipped()).expect("seed").expect("seeded");
    assert_eq!(seeded.label(), SHIPPED_LABEL);
    assert_eq!(seeded.dir, store.path_of(SHIPPED_LABEL));
    assert_eq!(store.active_label().as_deref(), Some(SHIPPED_LABEL));
    assert!(store.open_active().expect("opens").is_some());
    assert!(
        store.seed_from(&shipped()).expect("second seed").is_none(),
        "an active bundle is never replaced by the seed"
    );
}

/// A seed whose file no longer matches its digest is refused, and nothing of it stays in the
/// store: once the seed is whole again, the next boot installs it.
#[test]
fn a_corrupt_seed_is_refused_and_leaves_nothing_installed() {
    let seed = tempfile::tempdir().expect("temp");
    copy_dir(&shipped(), seed.path());
    let vocabulary = seed.path().join("vocabulary.json");
    let whole = fs::read(&vocabulary).expect("vocabulary");
    let mut rotten = whole.clone();
    rotten[10] ^= 0x20;
    fs::write(&vocabulary, &rotten).expect("write");

    let dir = tempfile::tempdir().expect("temp");
    let store = BundleStore::open(&dir.path().join("bundles")).expect("store");
    assert!(matches!(
        store.seed_from(seed.path()),
        Err(BundleError::HashMismatch { .. })
    ));
    assert_eq!(store.active_label(), None);
    assert!(!store.path_of(SHIPPED_LABEL).exists());

    fs::write(&vocabulary, &whole).expect("write");
    let seeded = store.seed_from(seed.path()).expect("seed").expect("seeded");
    assert_eq!(seeded.label(), SHIPPED_LABEL);
    assert_eq!(store.active_label().as_deref(), Some(SHIPPED_LABEL));
}

#[test]
fn english_and_chinese_terms_encode_identically() {
    let bundle = Bundle::open(&shipped()).expect("bundle");
    let pairs = [
        (
            r#"{"product":"beverage","audience":["young women","gen z"],"mood":["fresh","summer limited"],"palette":"morandi"}"#,
            r#"{"product":"饮料","audience":["年轻女性","Z世代"],"mood":["清爽","夏季限定"],"palette":"莫兰迪色系"}"#,
        ),
        (
            r#"{"product":"Tea","keywords":["guochao"]}"#,
            r#"{"product":"茶","keywords":["国潮"]}"#,
        ),
    ];
    for (english, chinese) in pairs {
        let english_read = read_terms(&brief::decode(english.as_bytes()).expect("en"), &bundle);
        let chinese_read = read_terms(&brief::decode(chinese.as_bytes()).expect("zh"), &bundle);
        let (english_vector, english_warnings) = (english_read.vector, english_read.warnings);
        let (chinese_vector, chinese_warnings) = (chinese_read.vector, chinese_read.warnings);
        assert!(
            english_warnings.is_empty() && chinese_warnings.is_empty(),
            "{english_warnings:?} {chinese_warnings:?}"
        );
        assert!(english_vector.iter().any(|&v| v > 0.0));
        assert_eq!(english_vector, chinese_vector, "{english} vs {chinese}");
    }
}

#[test]
fn the_shipped_text_encoder_reproduces_its_self_test() {
    let bundle = Bundle::open(&shipped()).expect("shipped bundle opens");
    let text = bundle
        .text
        .as_ref()
        .expect("the shipped bundle has a text encoder");
    let cases = fs::read(shipped().join(packd::bundle::TEXT_SELFTEST_FILE)).expect("cases");
    assert!(text.encoder.self_test(&cases).expect("passes") >= 10);
}

#[test]
fn an_encoder_that_reads_differently_from_its_maker_is_refused() {
    let dir = tempfile::tempdir().expect("temp");
    copy_dir(&shipped(), dir.path());
    let cases_path = dir.path().join(packd::bundle::TEXT_SELFTEST_FILE);
    let mut cases: serde_json::Value =
        serde_json::from_slice(&fs::read(&cases_path).expect("read")).expect("json");
    let head = &mut cases["cases"][0]["vector_head"][0];
    *head = serde_json::json!(head.as_f64().expect("a value") + 0.01);
    fs::write(&cases_path, serde_json::to_vec(&cases).expect("json")).expect("write");
    rehash_manifest(dir.path());
    match Bundle::open(dir.path()) {
        Err(BundleError::Catalogue { file, message }) => {
            assert_eq!(file, packd::bundle::TEXT_SELFTEST_FILE);
            assert!(message.contains("vector starts"), "{message}");
        }
        other => panic!("expected a self-test refusal, got {other:?}"),
    }
}

#[test]
fn a_truncated_text_encoder_is_refused_with_its_file_named() {
    let dir = tempfile::tempdir().expect("temp");
    copy_dir(&shipped(), dir.path());
    let path = dir.path().join("text_encoder.bin");
    let bytes = fs::read(&path).expect("read");
    fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    rehash_manifest(dir.path());
    match Bundle::open(dir.path()) {
        Err(BundleError::Catalogue { file, message }) => {
            assert_eq!(file, "text_encoder.bin");
            assert!(message.contains("truncated"), "{message}");
        }
        other => panic!("expected a refusal naming text_encoder.bin, got {other:?}"),
    }
}

/// Issue 17: the preview faces are part of the bundle's content. Every pairing's faces, Latin
/// and CJK, are read at open; an index that lacks one, or names a file outside the manifest, is
/// refused with the index named, and a bundle without faces still opens (previews then draw
/// bars).
#[test]
fn preview_faces_must_cover_every_pairing_and_be_listed_files() {
    use crate::fixtures::bundles::{bundle_variant, without_fonts};

    let bundle = Bundle::open(&shipped()).expect("shipped bundle opens");
    let faces = bundle
        .typefaces
        .as_ref()
        .expect("the shipped bundle has faces");
    for pairing in &bundle.fonts.pairings {
        assert!(
            faces.heading.contains_key(&pairing.heading),
            "{}",
            pairing.id
        );
        assert!(faces.body.contains_key(&pairing.body), "{}", pairing.id);
        let heading_cjk = &faces.cjk_heading[&pairing.heading_cjk];
        let body_cjk = &faces.cjk_body[&pairing.body_cjk];
        // Headings in the bold cut, bodies in the regular one.
        assert_eq!(
            (heading_cjk.weight, body_cjk.weight),
            (700, 400),
            "{}",
            pairing.id
        );
        for face in [heading_cjk, body_cjk] {
            let drawn = face.family.as_str();
            assert!(
                ["Noto Sans CJK SC", "Noto Serif CJK SC", "LXGW WenKai"].contains(&drawn),
                "{drawn}"
            );
        }
    }
    // Noto carries the Source Han designs, LXGW WenKai ships as itself; other display faces are
    // drawn in the Noto face of their build.
    assert_eq!(
        faces.cjk_body["Source Han Serif SC"].family,
        "Noto Serif CJK SC"
    );
    assert_eq!(faces.cjk_body["LXGW WenKai"].family, "LXGW WenKai");
    assert_eq!(faces.cjk_heading["ZCOOL KuaiLe"].family, "Noto Sans CJK SC");

    let edit_index = |edit: fn(&mut serde_json::Value)| {
        bundle_variant(
            "9.9.0",
            |dir| {
                let path = dir.join("fonts/index.json");
                let mut index: serde_json::Value =
                    serde_json::from_slice(&fs::read(&path).expect("index")).expect("JSON");
                edit(&mut index);
                fs::write(&path, index.to_string()).expect("write index");
            },
            true,
        )
    };
    for missing_face in [
        edit_index(|index| {
            index["heading"]
                .as_object_mut()
                .expect("object")
                .remove("Playfair Display");
        }),
        edit_index(|index| {
            index["cjk_body"]
                .as_object_mut()
                .expect("object")
                .remove("LXGW WenKai");
        }),
    ] {
        match Bundle::open(missing_face.path()) {
            Err(BundleError::Catalogue { file, message }) => {
                assert_eq!(file, "fonts/index.json");
                assert!(
                    message.contains("Playfair Display") || message.contains("LXGW WenKai"),
                    "{message}"
                );
            }
            other => panic!("a missing face must be refused: {:?}", other.map(|_| ())),
        }
    }
    let outside = edit_index(|index| {
        index["cjk_heading"]["Noto Serif SC"]["file"] = serde_json::json!("../manifest.toml");
    });
    assert!(matches!(
        Bundle::open(outside.path()),
        Err(BundleError::Catalogue { .. })
    ));

    let without = bundle_variant("9.9.1", without_fonts, true);
    let opened = Bundle::open(without.path()).expect("a bundle without faces opens");
    assert!(opened.typefaces.is_none());
}

/// Bundles made before per-pairing CJK faces list one `cjk` face for all Chinese text; appliances
/// that receive one still open it and draw every pairing's Chinese in that face.
#[test]
fn a_bundle_with_one_cjk_face_for_all_pairings_still_opens() {
    use crate::fixtures::bundles::bundle_variant;

    let legacy = bundle_variant(
        "9.9.2",
        |dir| {
            let path = dir.join("fonts/index.json");
            let mut index: serde_json::Value =
                serde_json::from_slice(&fs::read(&path).expect("index")).expect("JSON");
            let object = index.as_object_mut().expect("object");
            object.remove("cjk_heading");
            object.remove("cjk_body");
            object.insert(
                "cjk".into(),
                serde_json::json!({"family": "Noto Sans CJK SC", "file": "noto-sans-cjk-sc-400.otf"}),
            );
            fs::write(&path, index.to_string()).expect("write index");
        },
        true,
    );
    let bundle = Bundle::open(legacy.path()).expect("a one-face index opens");
    let faces = bundle.typefaces.as_ref().expect("faces");
    for pairing in &bundle.fonts.pairings {
        for face in [
            &faces.cjk_heading[&pairing.heading_cjk],
            &faces.cjk_body[&pairing.body_cjk],
        ] {
            assert_eq!(face.family, "Noto Sans CJK SC", "{}", pairing.id);
        }
    }
}

/// Issue 17: previews take the proportions of the pack a product is sold in. The shipped bundle
/// lists its pack forms; one without `packs.json` draws every product on a box front, and one
/// that places a product that is not in its vocabulary is refused, naming the file.
#[test]
fn pack_forms_place_products_and_a_bundle_without_them_draws_box_fronts() {
    use crate::fixtures::bundles::{bundle_variant, read_manifest, write_manifest};
    use packd::bundle::packs::{PanelSize, PACKS_FILE};

    let bundle = Bundle::open(&shipped()).expect("shipped bundle opens");
    let size = |product: &str| bundle.packs.for_product(Some(product)).size;
    assert_eq!(size("product:tea"), PanelSize::BOX_FRONT);
    let label = size("product:craft_beer");
    assert!(
        label.width() > label.height(),
        "a bottle label is wide: {label:?}"
    );
    let pouch = size("product:coffee");
    assert!(
        pouch.height() * 2 >= pouch.width() * 3,
        "a pouch is tall: {pouch:?}"
    );

    let without = bundle_variant(
        "9.9.3",
        |dir| {
            let mut manifest = read_manifest(dir);
            manifest.files.retain(|entry| entry.path != PACKS_FILE);
            fs::remove_file(dir.join(PACKS_FILE)).expect("remove packs.json");
            write_manifest(dir, &manifest);
        },
        false,
    );
    let opened = Bundle::open(without.path()).expect("a bundle without pack forms opens");
    assert_eq!(
        opened.packs.for_product(Some("product:craft_beer")).size,
        PanelSize::BOX_FRONT
    );

    let stray = bundle_variant(
        "9.9.4",
        |dir| {
            let path = dir.join(PACKS_FILE);
            let text = fs::read_to_string(&path).expect("packs.json");
            fs::write(&path, text.replace("product:coffee", "product:spaceship")).expect("write");
        },
        true,
    );
    match Bundle::open(stray.path()) {
        Err(BundleError::Catalogue { file, message }) => {
            assert_eq!(file, PACKS_FILE);
            assert!(message.contains("product:spaceship"), "{message}");
        }
        other => panic!("a stray product must be refused: {:?}", other.map(|_| ())),
    }
}
