//! `jetson/build-engines.sh` against stand-in `trtexec` and `packd` programs: which trtexec
//! command lines it runs per target and TensorRT major, above all the batch profile's shape
//! flags (DLA static at batch 1, the GPU 1..max_batch), taken from the bundle's manifest.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A bundle, stand-in programs and a record of what the script asked them to do.
struct Bench {
    dir: tempfile::TempDir,
}

/// Records each trtexec build's arguments (one per line) and writes the engine it was asked
/// for; `--help` prints the version banner the script reads.
const TRTEXEC: &str = r#"#!/usr/bin/env bash
set -eu
record="$(dirname "$0")/record"
if [ "${1:-}" = --help ]; then echo "&&&& RUNNING TensorRT.trtexec [TensorRT v${STANDIN_TRT}] # trtexec --help"; exit 0; fi
target=gpu
for arg in "$@"; do case "$arg" in --useDLACore=*) target="dla${arg#--useDLACore=}" ;; esac; done
printf '%s\n' "$@" >"$record/trtexec.$target"
for arg in "$@"; do case "$arg" in --saveEngine=*) echo plan >"${arg#--saveEngine=}" ;; esac; done
echo "[TensorRT v${STANDIN_TRT}] built"
"#;

/// `engine register` is recorded per target; `engine list` lists nothing.
const PACKD: &str = r#"#!/usr/bin/env bash
set -eu
record="$(dirname "$0")/record"
if [ "$1 $2" = "engine register" ]; then
    target=""; prev=""
    for arg in "$@"; do [ "$prev" = --target ] && target="$arg"; prev="$arg"; done
    printf '%s\n' "$@" >"$record/register.$target"
fi
"#;

/// A manifest with the given `[model]` extra line and `(name, shape)` inputs.
fn manifest(model_extra: &str, inputs: &[(&str, &str)]) -> String {
    let mut text = String::from(
        "schema = 1\nname = \"standin\"\nversion = \"1.0.0\"\n\n[model]\nfp32 = \"model.onnx\"\n\
         int8 = \"model.int8.onnx\"\ncalibration_cache = \"model.calib.cache\"\n\
         layout_grid = [16, 12]\n",
    );
    text.push_str(model_extra);
    text.push('\n');
    for (name, shape) in inputs {
        text.push_str(&format!(
            "\n[[model.inputs]]\nname = \"{name}\"\ndtype = \"float32\"\nshape = {shape}\n"
        ));
    }
    text.push_str("\n[[model.outputs]]\nname = \"styles\"\ndtype = \"float32\"\nshape = [1, 16]\n");
    text
}

const INPUTS: [(&str, &str); 3] = [
    ("brief", "[1, 196]"),
    ("image", "[1, 24]"),
    ("brand", "[1, 16]"),
];

fn executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

impl Bench {
    fn new(manifest_text: &str) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle");
        fs::create_dir_all(bundle.join("engines")).unwrap();
        fs::write(bundle.join("manifest.toml"), manifest_text).unwrap();
        for file in ["model.onnx", "model.int8.onnx", "model.calib.cache"] {
            fs::write(bundle.join(file), b"stand-in").unwrap();
        }
        let tools = dir.path().join("tools");
        fs::create_dir_all(tools.join("record")).unwrap();
        executable(&tools.join("trtexec"), TRTEXEC);
        executable(&tools.join("packd"), PACKD);
        // TensorRT 10 DLA builds first look for JetPack 6's DLA compiler.
        fs::create_dir_all(dir.path().join("dla")).unwrap();
        fs::write(dir.path().join("dla/libnvdla_compiler.so"), b"").unwrap();
        Bench { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Runs the script on every target with TensorRT `version` (as `trtexec` banners it).
    fn run(&self, version: u32, extra: &[&str]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("jetson/build-engines.sh");
        let output = Command::new("bash")
            .arg(script)
            .args(["--bundle", self.path("bundle").to_str().unwrap()])
            .args(["--trtexec", self.path("tools/trtexec").to_str().unwrap()])
            .args(["--packd", self.path("tools/packd").to_str().unwrap()])
            .args(["--log-dir", self.path("logs").to_str().unwrap()])
            .args(["--targets", "dla0 dla1 gpu", "--dla-cores", "2"])
            .args(["--compute-capability", "8.7", "--cuda", "12.6"])
            .args(extra)
            .env("STANDIN_TRT", version.to_string())
            .env("PACKD_DLA_COMPILER_DIRS", self.path("dla"))
            .env_remove("STATE_DIRECTORY")
            .output()
            .unwrap();
        eprintln!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The trtexec build arguments per target, as recorded.
    fn trtexec_args(&self) -> BTreeMap<String, Vec<String>> {
        ["dla0", "dla1", "gpu"]
            .into_iter()
            .filter_map(|target| {
                let text = fs::read_to_string(self.path(&format!("tools/record/trtexec.{target}")));
                text.ok()
                    .map(|text| (target.to_string(), text.lines().map(String::from).collect()))
            })
            .collect()
    }
}

/// The value of `--flag=value` in `args`, if given.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|arg| arg.strip_prefix(name)?.strip_prefix('='))
}

fn spec(batch: usize) -> String {
    format!("brief:{batch}x196,image:{batch}x24,brand:{batch}x16")
}

#[test]
fn dla_engines_are_static_at_batch_one_and_the_gpu_spans_max_batch() {
    let bench = Bench::new(&manifest("max_batch = 8", &INPUTS));
    let output = bench.run(110401, &[]);
    assert!(output.status.success());
    let args = bench.trtexec_args();
    assert_eq!(args.len(), 3, "{args:?}");
    for dla in ["dla0", "dla1"] {
        let dla_args = &args[dla];
        for name in ["--minShapes", "--optShapes", "--maxShapes"] {
            assert_eq!(flag(dla_args, name), Some(spec(1).as_str()), "{dla} {name}");
        }
        assert!(dla_args.contains(&format!("--useDLACore={}", &dla[3..])));
    }
    let gpu = &args["gpu"];
    assert_eq!(flag(gpu, "--minShapes"), Some(spec(1).as_str()));
    assert_eq!(flag(gpu, "--optShapes"), Some(spec(8).as_str()));
    assert_eq!(flag(gpu, "--maxShapes"), Some(spec(8).as_str()));
    for target_args in args.values() {
        // TensorRT 11 has neither implicit INT8 nor its calibration profile.
        assert_eq!(flag(target_args, "--optShapesCalib"), None);
        assert!(!target_args.iter().any(|arg| arg == "--int8"));
        assert!(flag(target_args, "--onnx").is_some_and(|onnx| onnx.ends_with("model.int8.onnx")));
    }
    for target in ["dla0", "dla1", "gpu"] {
        assert!(bench
            .path(&format!("bundle/engines/model.{target}.plan"))
            .is_file());
        assert!(bench
            .path(&format!("tools/record/register.{target}"))
            .is_file());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("gpu: building (int8, TensorRT 11.4.1, batch 1..8)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dla0: building (int8, TensorRT 11.4.1, batch 1)"),
        "{stdout}"
    );
}

#[test]
fn tensorrt_10_int8_also_gets_a_batch_one_calibration_profile() {
    let bench = Bench::new(&manifest("max_batch = 4", &INPUTS));
    assert!(bench.run(100300, &[]).status.success());
    let args = bench.trtexec_args();
    assert_eq!(args.len(), 3, "{args:?}");
    for (target, target_args) in &args {
        assert_eq!(
            flag(target_args, "--optShapesCalib"),
            Some(spec(1).as_str()),
            "{target}"
        );
        assert!(target_args.iter().any(|arg| arg == "--int8"), "{target}");
        let top = if target == "gpu" { 4 } else { 1 };
        assert_eq!(
            flag(target_args, "--maxShapes"),
            Some(spec(top).as_str()),
            "{target}"
        );
    }
}

#[test]
fn shapes_come_from_the_manifest_whatever_the_inputs() {
    let inputs = [("words", "[1, 7]"), ("grid", "[1, 3, 16, 12]")];
    let bench = Bench::new(&manifest("max_batch = 2 # two at most", &inputs));
    assert!(bench.run(110401, &["--targets", "gpu"]).status.success());
    let args = bench.trtexec_args();
    assert_eq!(args.keys().collect::<Vec<_>>(), ["gpu"]);
    assert_eq!(
        flag(&args["gpu"], "--minShapes"),
        Some("words:1x7,grid:1x3x16x12")
    );
    assert_eq!(
        flag(&args["gpu"], "--maxShapes"),
        Some("words:2x7,grid:2x3x16x12")
    );
}

#[test]
fn a_manifest_without_max_batch_builds_the_model_as_it_is() {
    // A batch-1 model from before max_batch: trtexec refuses explicit shapes for static inputs.
    let bench = Bench::new(&manifest("", &INPUTS));
    let output = bench.run(110401, &[]);
    assert!(output.status.success());
    let args = bench.trtexec_args();
    assert_eq!(args.len(), 3, "{args:?}");
    for (target, target_args) in &args {
        assert!(
            !target_args.iter().any(|arg| arg.contains("Shapes")),
            "{target}: {target_args:?}"
        );
    }
}

#[test]
fn dry_run_prints_the_shape_flags_and_builds_nothing() {
    let bench = Bench::new(&manifest("max_batch = 8", &INPUTS));
    let output = bench.run(110401, &["--dry-run"]);
    assert!(output.status.success());
    assert!(bench.trtexec_args().is_empty());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = |target: &str| {
        stdout
            .lines()
            .find(|line| line.contains(&format!("{target}: batch")))
            .unwrap_or_else(|| panic!("no dry-run line for {target}: {stdout}"))
            .to_string()
    };
    let gpu = line("gpu");
    assert!(gpu.contains("batch 1..8; would run:"), "{gpu}");
    assert!(gpu.contains(&format!("--maxShapes={}", spec(8))), "{gpu}");
    let dla = line("dla1");
    assert!(dla.contains("batch 1; would run:"), "{dla}");
    assert!(dla.contains(&format!("--maxShapes={}", spec(1))), "{dla}");
    assert!(!bench.path("bundle/engines/model.gpu.plan").exists());
}

#[test]
fn an_out_of_range_max_batch_is_refused_before_any_build() {
    for bad in ["0", "65", "\"8\"", "-1"] {
        let bench = Bench::new(&manifest(&format!("max_batch = {bad}"), &INPUTS));
        let output = bench.run(110401, &[]);
        assert_eq!(output.status.code(), Some(1), "max_batch = {bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("max_batch"), "{stderr}");
        assert!(bench.trtexec_args().is_empty(), "max_batch = {bad}");
    }
}

#[test]
fn inputs_without_a_batch_dimension_or_none_at_all_are_refused() {
    let bench = Bench::new(&manifest("max_batch = 8", &[("brief", "[196]")]));
    let output = bench.run(110401, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("input 'brief' has shape [196]"), "{stderr}");
    assert!(bench.trtexec_args().is_empty());

    let bench = Bench::new(&manifest("max_batch = 8", &[]));
    let output = bench.run(110401, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no [[model.inputs]]"), "{stderr}");
}
