//! Operator subcommands of `packd` used on the appliance itself (by `jetson/*.sh` and people):
//! `selftest` on every target, `engine register|list`, `active-bundle`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::backend::engines::{EngineTarget, PlanHeaderError, TensorRtVersion};
use crate::backend::select::BackendConfig;
use crate::backend::selftest;
use crate::backend::{Backend, ModelInputs};
use crate::bundle::manifest::{is_safe_relative_path, EngineEntry, Manifest};
use crate::bundle::store::BundleStore;
use crate::bundle::{Bundle, MANIFEST_FILE};
use crate::config::Config;

/// A maintenance command that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// A file or directory of the bundle cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// The bundle store, the active bundle or its manifest cannot be used.
    #[error("bundle: {0}")]
    Bundle(String),
    /// The command's arguments are wrong (unknown target, precision or version); the text says how.
    #[error("{0}")]
    Usage(String),
    /// The file to register is not a TensorRT plan.
    #[error("{path} is not a TensorRT plan: {reason}")]
    NotAPlan {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header. Not a `#[source]`: `packd` prints an error with its
        /// sources (`{:#}`), which would say it twice.
        reason: PlanHeaderError,
    },
    /// A target failed its self-test; the text names the target.
    #[error("self-test failed on {0}")]
    SelfTestFailed(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MaintenanceError + '_ {
    move |source| MaintenanceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The active bundle's directory under the configured bundle dir.
pub fn active_bundle_dir(config: &Config) -> Result<PathBuf, MaintenanceError> {
    let store = BundleStore::open(&config.bundles.dir)
        .map_err(|error| MaintenanceError::Bundle(error.to_string()))?;
    // A fresh appliance has nothing active until packd first starts; seed it the same way so
    // first-boot engine builds have a bundle to work on.
    if store.active_label().is_none() {
        store
            .seed_from(&config.bundles.seed)
            .map_err(|error| MaintenanceError::Bundle(error.to_string()))?;
    }
    let label = store.active_label().ok_or_else(|| {
        MaintenanceError::Bundle(format!(
            "no active bundle in {}",
            config.bundles.dir.display()
        ))
    })?;
    Ok(store.path_of(&label))
}

/// One target's self-test result with its latency over the vectors.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetReport {
    /// The target, as replies name it (`cpu`, `trt:dla0`, …).
    pub target: String,
    /// The precision its vectors were checked at (`fp32` or `int8`).
    pub precision: &'static str,
    /// Cases run; 0 when the self-test failed.
    pub cases: usize,
    /// The largest deviation from an expected value; 0 when the self-test failed.
    pub max_deviation: f32,
    /// The tolerance the bundle allows at that precision; 0 when the self-test failed.
    pub tolerance: f32,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    /// Whether every case was within tolerance.
    pub passed: bool,
    /// Why the self-test failed; `None` when it passed.
    pub error: Option<String>,
}

/// Runs the bundle's self-test vectors on each wanted target (all when `wanted` is empty),
/// then times `repeat` passes over the vectors per target.
pub fn selftest_targets(
    bundle_dir: &Path,
    backend: &BackendConfig,
    wanted: &[String],
    repeat: usize,
) -> Result<Vec<TargetReport>, MaintenanceError> {
    let bundle =
        Bundle::open(bundle_dir).map_err(|error| MaintenanceError::Bundle(error.to_string()))?;
    let loaded = crate::backend::select::load(&bundle, backend)
        .map_err(|error| MaintenanceError::Bundle(error.to_string()))?;
    let vectors =
        selftest::load(&bundle).map_err(|error| MaintenanceError::Bundle(error.to_string()))?;
    let known: Vec<String> = loaded
        .targets
        .iter()
        .map(|(target, _)| target.name().to_string())
        .collect();
    if let Some(unknown) = wanted.iter().find(|name| !known.contains(name)) {
        return Err(MaintenanceError::Usage(format!(
            "target {unknown} is not available here (available: {})",
            known.join(", ")
        )));
    }
    let mut reports = Vec::new();
    for (target, precision) in &loaded.targets {
        if !wanted.is_empty() && !wanted.iter().any(|name| name == target.name()) {
            continue;
        }
        let mut report = TargetReport {
            target: target.name().to_string(),
            precision: precision.as_str(),
            cases: 0,
            max_deviation: 0.0,
            tolerance: 0.0,
            p50_us: 0,
            p99_us: 0,
            passed: false,
            error: None,
        };
        match selftest::run(&bundle, target.as_ref(), *precision) {
            Ok(result) => {
                report.cases = result.cases;
                report.max_deviation = result.max_deviation;
                report.tolerance = result.tolerance;
                report.passed = true;
                let mut latencies = time_vectors(target.as_ref(), &vectors, repeat);
                latencies.sort_unstable();
                report.p50_us = percentile(&latencies, 50);
                report.p99_us = percentile(&latencies, 99);
            }
            Err(error) => report.error = Some(error.to_string()),
        }
        reports.push(report);
    }
    Ok(reports)
}

fn time_vectors(
    backend: &dyn Backend,
    vectors: &selftest::SelfTestFile,
    repeat: usize,
) -> Vec<u64> {
    let mut latencies = Vec::new();
    for _ in 0..repeat.max(1) {
        for case in &vectors.cases {
            let inputs = ModelInputs {
                brief: &case.inputs.brief,
                image: &case.inputs.image,
                brand: &case.inputs.brand,
            };
            let started = Instant::now();
            if backend.infer(&inputs).is_ok() {
                latencies.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
        }
    }
    latencies
}

fn percentile(sorted: &[u64], percent: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * percent)
        .div_ceil(100)
        .clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Prints reports as a table.
pub fn print_reports(reports: &[TargetReport], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<10} {:<5} {:>5} {:>13} {:>9} {:>8} {:>8}  result",
        "target", "prec", "cases", "max deviation", "tolerance", "p50 µs", "p99 µs"
    )?;
    for report in reports {
        writeln!(
            out,
            "{:<10} {:<5} {:>5} {:>13.2e} {:>9.0e} {:>8} {:>8}  {}",
            report.target,
            report.precision,
            report.cases,
            report.max_deviation,
            report.tolerance,
            report.p50_us,
            report.p99_us,
            match &report.error {
                None => "pass".to_string(),
                Some(error) => format!("FAIL: {error}"),
            }
        )?;
    }
    Ok(())
}

/// What `packd engine register` records (also its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct EngineRegistration {
    /// gpu, dla0 or dla1.
    #[arg(long)]
    pub target: String,
    /// int8, fp16 or fp32.
    #[arg(long)]
    pub precision: String,
    /// The plan, relative to the bundle directory.
    #[arg(long, value_name = "RELATIVE_PATH")]
    pub file: String,
    /// TensorRT version that built it (checked against the plan's header).
    #[arg(long)]
    pub tensorrt: String,
    /// CUDA version it was built with.
    #[arg(long)]
    pub cuda: String,
    /// Compute capability of the device (8.7 on Orin).
    #[arg(long)]
    pub compute_capability: String,
    /// DLA cores of the device that built it.
    #[arg(long)]
    pub dla_cores: Option<u32>,
}

/// Hashes an engine inside the bundle and records it in the manifest's `engines` table,
/// replacing any entry for the same target; the manifest is replaced atomically.
pub fn register_engine(
    bundle_dir: &Path,
    registration: &EngineRegistration,
) -> Result<EngineEntry, MaintenanceError> {
    if EngineTarget::parse(&registration.target).is_none() {
        return Err(MaintenanceError::Usage(format!(
            "target '{}' is not gpu, dla0 or dla1",
            registration.target
        )));
    }
    if !["int8", "fp16", "fp32"].contains(&registration.precision.as_str()) {
        return Err(MaintenanceError::Usage(format!(
            "precision '{}' is not int8, fp16 or fp32",
            registration.precision
        )));
    }
    if TensorRtVersion::parse(&registration.tensorrt).is_none() {
        return Err(MaintenanceError::Usage(format!(
            "TensorRT version '{}' is not major.minor[.patch]",
            registration.tensorrt
        )));
    }
    if !is_safe_relative_path(&registration.file) {
        return Err(MaintenanceError::Usage(format!(
            "engine file '{}' must be a path inside the bundle",
            registration.file
        )));
    }
    let plan_path = bundle_dir.join(&registration.file);
    let plan = std::fs::read(&plan_path).map_err(io(&plan_path))?;
    let header = crate::backend::engines::parse_plan_header(&plan).map_err(|reason| {
        MaintenanceError::NotAPlan {
            path: plan_path.clone(),
            reason,
        }
    })?;
    let manifest_path = bundle_dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
    let mut manifest =
        Manifest::parse(&text).map_err(|error| MaintenanceError::Bundle(error.to_string()))?;
    let entry = EngineEntry {
        target: registration.target.clone(),
        precision: registration.precision.clone(),
        file: registration.file.clone(),
        sha256: hex::encode(Sha256::digest(&plan)),
        // The plan's own header is the authority on who built it.
        tensorrt: header.tensorrt.to_string(),
        cuda: registration.cuda.clone(),
        compute_capability: registration.compute_capability.clone(),
        dla_cores: registration.dla_cores,
    };
    manifest
        .engines
        .retain(|existing| existing.target != entry.target);
    manifest.engines.push(entry.clone());
    manifest.engines.sort_by(|a, b| a.target.cmp(&b.target));
    let text = toml::to_string(&manifest)
        .map_err(|error| MaintenanceError::Bundle(format!("cannot write manifest: {error}")))?;
    crate::bundle::durable::replace_file(&manifest_path, text.as_bytes()).map_err(|error| {
        MaintenanceError::Io {
            path: error.path,
            source: error.source,
        }
    })?;
    Ok(entry)
}

/// One line per engine entry: target, precision, TensorRT, file, `ok|missing|hash-mismatch`.
pub fn list_engines(bundle_dir: &Path) -> Result<Vec<String>, MaintenanceError> {
    let manifest_path = bundle_dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
    let manifest =
        Manifest::parse(&text).map_err(|error| MaintenanceError::Bundle(error.to_string()))?;
    Ok(manifest
        .engines
        .iter()
        .map(|entry| {
            let status = if !is_safe_relative_path(&entry.file) {
                "missing"
            } else {
                match crate::bundle::sha256_file(&bundle_dir.join(&entry.file)) {
                    Err(_) => "missing",
                    Ok(digest) if digest.eq_ignore_ascii_case(&entry.sha256) => "ok",
                    Ok(_) => "hash-mismatch",
                }
            };
            format!(
                "{}\t{}\t{}\t{}\t{status}",
                entry.target, entry.precision, entry.tensorrt, entry.file
            )
        })
        .collect())
}
