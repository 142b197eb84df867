//! What a bundle must pass to serve on this appliance: engines it can run, and a model that loads
//! and passes its self-test on every target.

use std::sync::Arc;

use packd_wire::bundle::{BundleErrorCode, InvalidCheck};

use super::{DeviceProfile, FleetError, LoadError};
use crate::backend::select::BackendConfig;
use crate::backend::selftest;
use crate::bundle::manifest::EngineEntry;
use crate::bundle::Bundle;
use crate::serve::ServingModel;

/// Loads a verified bundle's model on the best backend here (TensorRT engines with the CPU
/// behind them, or the CPU alone) and runs its self-test on every target before it may serve.
pub(crate) fn load_model(
    bundle: Bundle,
    backend: &BackendConfig,
) -> Result<ServingModel, LoadError> {
    let label = bundle.label();
    let loaded =
        crate::backend::select::load(&bundle, backend).map_err(|source| LoadError::Backend {
            label: label.clone(),
            source: Box::new(source),
        })?;
    for (target, precision) in &loaded.targets {
        let report = selftest::run(&bundle, target.as_ref(), *precision).map_err(|source| {
            LoadError::SelfTest {
                label: label.clone(),
                target: target.name().to_string(),
                source: Box::new(source),
            }
        })?;
        log::info!(
            PACKD_BUNDLE = label.as_str(), PACKD_BACKEND = target.name();
            "bundle {label} loaded on {}; self-test passed ({} cases at {}, max deviation {:.2e}, tolerance {:.0e})",
            target.name(), report.cases, precision.as_str(), report.max_deviation, report.tolerance
        );
    }
    Ok(ServingModel {
        bundle: Arc::new(bundle),
        backend: loaded.serving,
    })
}

/// Refuses engines this appliance cannot run. Without TensorRT the ONNX model serves and
/// engines are only checked for form.
pub fn check_engines(engines: &[EngineEntry], profile: &DeviceProfile) -> Result<(), FleetError> {
    for engine in engines {
        let dla_index = check_form(engine)?;
        let Some(tensorrt) = &profile.tensorrt else {
            continue;
        };
        let incompatible =
            |message: String| Err(FleetError::new(BundleErrorCode::Incompatible, message));
        if major_minor(&engine.tensorrt) != major_minor(tensorrt) {
            return incompatible(format!(
                "engine {} was built with TensorRT {}; this appliance runs TensorRT {tensorrt}",
                engine.file, engine.tensorrt
            ));
        }
        if let Some(capability) = &profile.compute_capability {
            if &engine.compute_capability != capability {
                return incompatible(format!(
                    "engine {} was built for compute capability {}; this appliance has {capability}",
                    engine.file, engine.compute_capability
                ));
            }
        }
        if let Some(index) = dla_index {
            if index >= profile.dla_cores {
                return incompatible(format!(
                    "engine {} targets {} but this appliance has {} DLA cores",
                    engine.file, engine.target, profile.dla_cores
                ));
            }
        }
    }
    Ok(())
}

/// An engine's target and precision are ones packd knows; its DLA core, if it targets one.
fn check_form(engine: &EngineEntry) -> Result<Option<u32>, FleetError> {
    let dla_index = match engine.target.as_str() {
        "gpu" => None,
        "dla0" => Some(0),
        "dla1" => Some(1),
        other => {
            return Err(FleetError::invalid_bundle(
                InvalidCheck::Manifest,
                format!("engine target '{other}' is not gpu, dla0 or dla1"),
            ))
        }
    };
    if !["int8", "fp16", "fp32"].contains(&engine.precision.as_str()) {
        return Err(FleetError::invalid_bundle(
            InvalidCheck::Manifest,
            format!(
                "engine precision '{}' is not int8, fp16 or fp32",
                engine.precision
            ),
        ));
    }
    Ok(dla_index)
}

fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}
