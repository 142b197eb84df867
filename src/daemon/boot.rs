//! Boot: which bundle serves. The active one if it loads, else the last good one, the previous
//! one, or the shipped one, each set aside or made active on disk as the fallback demands.

use std::io::ErrorKind;
use std::path::Path;

use crate::backend::select::BackendConfig;
use crate::bundle::store::{BundleStore, LAST_GOOD_POINTER, PREVIOUS_POINTER};
use crate::bundle::{Bundle, BundleError};
use crate::config::Config;
use crate::fleet::{self, load_model, DeviceProfile};
use crate::serve::ServingModel;

/// What loading at boot gave: a model to serve, or the reason there is none, plus any problem
/// worth reporting as `degraded` even though a model serves (a bundle set aside).
pub(crate) struct Loaded {
    pub model: Option<ServingModel>,
    pub(crate) problem: Option<String>,
}

/// Seeds a fresh store, then loads the active bundle; a bundle that fails (unreadable, failing
/// its self-test, or with engines `profile` cannot run) is set aside and the last good one
/// (else the previous one) is loaded and made active instead.
pub(crate) fn load_active(store: &BundleStore, seed: &Path, machine: &Machine) -> Loaded {
    let seeded = seed_once(store, seed);
    let Some(active) = store.active_label() else {
        return Loaded {
            model: None,
            problem: Some("no bundle is active".into()),
        };
    };
    let opened = seeded.filter(|bundle| bundle.label() == active);
    let failure = match load_opened(store, &active, opened, machine) {
        Ok(model) => {
            let _ = store.mark_good(&active);
            return Loaded {
                model: Some(model),
                problem: None,
            };
        }
        Err(failure) => failure,
    };
    log::error!(PACKD_BUNDLE = active.as_str(), PACKD_EVENT = "boot_failed"; "active bundle {active} failed at boot: {failure}");
    fall_back(store, seed, &active, &failure, machine)
}

/// Seeds a fresh store from the shipped bundle; the seeded bundle, opened, when it did.
fn seed_once(store: &BundleStore, seed: &Path) -> Option<Bundle> {
    match store.seed_from(seed) {
        Ok(Some(bundle)) => {
            log::info!(
                "bundle store {} seeded with {}",
                store.dir().display(),
                bundle.label()
            );
            Some(bundle)
        }
        Ok(None) => None,
        Err(error) => {
            log::error!(
                "cannot seed the bundle store from {}: {error}",
                seed.display()
            );
            None
        }
    }
}

/// After the active bundle failed: sets it aside unless the failure may pass, then loads the
/// last good bundle, else the previous one, else the shipped one again.
fn fall_back(
    store: &BundleStore,
    seed: &Path,
    active: &str,
    failure: &BootError,
    machine: &Machine,
) -> Loaded {
    let transient = failure.is_transient();
    // A read error may pass (a disk slow to come up); only a bundle that is itself bad is set
    // aside and replaced on disk.
    if !transient {
        match store.set_aside(active) {
            Ok(path) => {
                log::warn!(PACKD_BUNDLE = active, PACKD_EVENT = "set_aside"; "bundle {active} set aside in {}", path.display())
            }
            Err(error) => log::error!("cannot set {active} aside: {error}"),
        }
    }
    let fallbacks = [LAST_GOOD_POINTER, PREVIOUS_POINTER]
        .iter()
        .filter_map(|pointer| store.read_pointer(pointer))
        .filter(|label| label != active);
    for fallback in fallbacks {
        match open_and_load(store, &fallback, machine) {
            Ok(model) => {
                if !transient {
                    let _ = store.set_active(&fallback);
                }
                let problem =
                    format!("bundle {active} failed at boot ({failure}); serving {fallback}");
                return Loaded {
                    model: Some(model),
                    problem: Some(problem),
                };
            }
            Err(error) => log::error!("fallback bundle {fallback} failed too: {error}"),
        }
    }
    // Nothing installed loads: start again from the shipped bundle rather than serve nothing.
    if !transient && store.clear_active().is_ok() {
        if let Ok(Some(bundle)) = store.seed_from(seed) {
            let seeded = bundle.label();
            if let Ok(model) = load_opened(store, &seeded, Some(bundle), machine) {
                let problem = format!(
                    "bundle {active} failed at boot ({failure}); serving the shipped {seeded}"
                );
                return Loaded {
                    model: Some(model),
                    problem: Some(problem),
                };
            }
        }
    }
    Loaded {
        model: None,
        problem: Some(format!(
            "bundle {active} failed at boot ({failure}) and no earlier bundle loads"
        )),
    }
}

/// Why an installed bundle did not load at boot.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BootError {
    #[error(transparent)]
    Open(#[from] BundleError),
    #[error(transparent)]
    Engines(fleet::FleetError),
    #[error(transparent)]
    Load(#[from] fleet::LoadError),
}

impl BootError {
    /// A read error may pass (a disk slow to come up); anything else is the bundle's own fault.
    fn is_transient(&self) -> bool {
        matches!(self, BootError::Open(BundleError::Io { source, .. }) if source.kind() != ErrorKind::NotFound)
    }
}

/// What this machine can run: engines must match `profile`, models load as `backend` allows.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub profile: DeviceProfile,
    pub backend: BackendConfig,
}

/// Opens and loads an installed bundle.
fn open_and_load(
    store: &BundleStore,
    label: &str,
    machine: &Machine,
) -> Result<ServingModel, BootError> {
    load_opened(store, label, None, machine)
}

/// Loads an installed bundle, opening it unless `opened` (just seeded) already is.
fn load_opened(
    store: &BundleStore,
    label: &str,
    opened: Option<Bundle>,
    machine: &Machine,
) -> Result<ServingModel, BootError> {
    let bundle = match opened {
        Some(bundle) => bundle,
        None => Bundle::open(&store.path_of(label))?,
    };
    // The same check as at commit: TensorRT may have changed under an installed bundle (a
    // JetPack update), and its engines would then not deserialize.
    fleet::check_engines(&bundle.manifest.engines, &machine.profile).map_err(BootError::Engines)?;
    Ok(load_model(bundle, &machine.backend)?)
}

/// What engines must match: the configured `[device]` values, else what TensorRT and the CUDA
/// device report here (only where this build and machine have them).
pub(crate) fn device_profile(config: &Config) -> DeviceProfile {
    let observed = crate::backend::select::observed_device(&config.backend);
    DeviceProfile {
        tensorrt: config
            .device
            .tensorrt
            .clone()
            .or_else(|| observed.as_ref().map(|facts| facts.tensorrt.to_string())),
        compute_capability: config.device.compute_capability.clone().or_else(|| {
            observed
                .as_ref()
                .map(|facts| facts.compute_capability.clone())
        }),
        dla_cores: observed.as_ref().map_or(config.device.dla_cores, |facts| {
            facts.dla_cores.max(config.device.dla_cores)
        }),
    }
}
