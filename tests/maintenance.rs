//! The on-device subcommands the Jetson scripts stand on: `packd engine register|list`,
//! `packd selftest`, `packd active-bundle`, run as the real binary on the shipped bundle.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/engines/packd-default");

fn packd(arguments: &[&str], config: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_packd"));
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.args(arguments);
    command.env_remove(packd::backend::fault::FAULT_ENV);
    command.output().expect("run packd")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A copy of the shipped bundle: its manifest and every listed file.
fn bundle_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("packd-default@1.0.0");
    let manifest = std::fs::read_to_string(Path::new(SHIPPED).join("manifest.toml")).unwrap();
    let parsed = packd::bundle::manifest::Manifest::parse(&manifest).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("manifest.toml"), &manifest).unwrap();
    for file in &parsed.files {
        let to = target.join(&file.path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(SHIPPED).join(&file.path), &to).unwrap();
    }
    (dir, target)
}

/// A plan header as TensorRT writes it (version 10.3.0.30) with `body` bytes after it.
fn plan(body: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"ftrt");
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&((32 + body) as i64).to_le_bytes());
    bytes.extend_from_slice(&[10, 3, 0, 30]);
    bytes.extend_from_slice(b"rtrt");
    bytes.resize(32 + body, 7);
    bytes
}

fn register(bundle: &Path, target: &str, file: &str) -> Output {
    packd(
        &[
            "engine",
            "register",
            "--bundle",
            bundle.to_str().unwrap(),
            "--target",
            target,
            "--precision",
            "int8",
            "--file",
            file,
            "--tensorrt",
            "10.3.0",
            "--cuda",
            "12.6",
            "--compute-capability",
            "8.7",
            "--dla-cores",
            "2",
        ],
        None,
    )
}

#[test]
fn engines_are_registered_listed_and_checked() {
    let (_dir, bundle) = bundle_copy();
    std::fs::create_dir_all(bundle.join("engines")).unwrap();
    std::fs::write(bundle.join("engines/model.gpu.plan"), plan(256)).unwrap();
    std::fs::write(bundle.join("engines/model.dla0.plan"), plan(128)).unwrap();
    let before = std::fs::read_to_string(bundle.join("manifest.toml")).unwrap();

    let output = register(&bundle, "gpu", "engines/model.gpu.plan");
    assert!(output.status.success(), "{}", text(&output));
    let output = register(&bundle, "dla0", "engines/model.dla0.plan");
    assert!(output.status.success(), "{}", text(&output));
    // Registering again replaces the entry instead of adding a second one.
    let output = register(&bundle, "gpu", "engines/model.gpu.plan");
    assert!(output.status.success(), "{}", text(&output));

    let manifest = packd::bundle::manifest::Manifest::parse(
        &std::fs::read_to_string(bundle.join("manifest.toml")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.engines.len(), 2);
    assert_eq!(
        packd::bundle::manifest::Manifest::parse(&before)
            .unwrap()
            .files,
        manifest.files,
        "registering an engine leaves the file list alone"
    );

    let list = packd(
        &["engine", "list", "--bundle", bundle.to_str().unwrap()],
        None,
    );
    assert!(list.status.success(), "{}", text(&list));
    let stdout = String::from_utf8_lossy(&list.stdout).into_owned();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "dla0\tint8\t10.3.0\tengines/model.dla0.plan\tok",
            "gpu\tint8\t10.3.0\tengines/model.gpu.plan\tok"
        ]
    );

    // The bundle still opens and self-tests with its engines folder (this build serves on the
    // CPU, or skips engines that do not fit this machine).
    let selftest = packd(
        &[
            "selftest",
            "--bundle",
            bundle.to_str().unwrap(),
            "--target",
            "cpu",
            "--repeat",
            "2",
        ],
        None,
    );
    assert!(selftest.status.success(), "{}", text(&selftest));
    let table = String::from_utf8_lossy(&selftest.stdout).into_owned();
    let row = table
        .lines()
        .find(|line| line.starts_with("cpu "))
        .unwrap_or_else(|| panic!("no cpu row: {table}"));
    assert!(row.ends_with("pass"), "{row}");
    assert!(row.contains(" 36 "), "36 cases: {row}");

    std::fs::write(bundle.join("engines/model.gpu.plan"), plan(300)).unwrap();
    std::fs::remove_file(bundle.join("engines/model.dla0.plan")).unwrap();
    let list = packd(
        &["engine", "list", "--bundle", bundle.to_str().unwrap()],
        None,
    );
    let stdout = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        stdout.contains("dla0\tint8\t10.3.0\tengines/model.dla0.plan\tmissing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gpu\tint8\t10.3.0\tengines/model.gpu.plan\thash-mismatch"),
        "{stdout}"
    );
}

#[test]
fn bad_registrations_are_refused_and_change_nothing() {
    let (_dir, bundle) = bundle_copy();
    std::fs::create_dir_all(bundle.join("engines")).unwrap();
    std::fs::write(bundle.join("engines/not-a-plan"), b"onnx, not a plan").unwrap();
    std::fs::write(bundle.join("engines/model.gpu.plan"), plan(16)).unwrap();
    let before = std::fs::read(bundle.join("manifest.toml")).unwrap();
    for (target, file, expected) in [
        ("gpu", "engines/not-a-plan", "not a TensorRT plan"),
        ("dla7", "engines/model.gpu.plan", "not gpu, dla0 or dla1"),
        ("gpu", "../outside.plan", "inside the bundle"),
        ("gpu", "engines/absent.plan", "engines/absent.plan"),
    ] {
        let output = register(&bundle, target, file);
        assert!(!output.status.success(), "{target} {file}");
        assert!(text(&output).contains(expected), "{}", text(&output));
    }
    assert_eq!(std::fs::read(bundle.join("manifest.toml")).unwrap(), before);
}

#[test]
fn an_unknown_target_is_a_clear_selftest_error() {
    let (_dir, bundle) = bundle_copy();
    let output = packd(
        &[
            "selftest",
            "--bundle",
            bundle.to_str().unwrap(),
            "--target",
            "trt:dla0",
        ],
        None,
    );
    assert!(!output.status.success());
    assert!(
        text(&output).contains("not available here"),
        "{}",
        text(&output)
    );
}

#[test]
fn active_bundle_seeds_a_fresh_store_and_prints_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bundles");
    let config = dir.path().join("packd.toml");
    std::fs::write(
        &config,
        format!(
            "[bundles]\ndir = \"{}\"\nseed = \"{SHIPPED}\"\n",
            store.display()
        ),
    )
    .unwrap();
    let output = packd(&["active-bundle"], Some(&config));
    assert!(output.status.success(), "{}", text(&output));
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(path.starts_with(&store), "{}", path.display());
    assert!(path.join("manifest.toml").is_file());
    // The engine list of the shipped bundle is empty.
    let list = packd(&["engine", "list"], Some(&config));
    assert!(list.status.success(), "{}", text(&list));
    assert!(list.stdout.is_empty());
}
