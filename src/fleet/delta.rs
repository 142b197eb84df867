//! A received delta archive turned into the bundle it stands for, before any check of the bundle
//! runs: the files it lacks come from the installed base (`packd_bundle::delta`).

use std::path::Path;

use packd_wire::bundle::{BundleErrorCode, InvalidCheck};

use super::{Fleet, FleetError};
use crate::bundle::delta::{self, DeltaError, FullArchive};

impl Fleet {
    /// When `staging` holds an unpacked delta, completes it from its base; returns the full
    /// archive it stands for (`None` for a full archive, left as it is).
    pub(super) fn assemble_delta(&self, staging: &Path) -> Result<Option<FullArchive>, FleetError> {
        let Some(info) = delta::read_info(staging).map_err(refusal)? else {
            return Ok(None);
        };
        let label = info.base_label();
        if !self.store.is_installed(&label) {
            return Err(refusal(DeltaError::BaseMissing { label }));
        }
        let available = self.free_space()?;
        let copied = delta::assemble(staging, &self.store.path_of(&label), &info, available)
            .map_err(refusal)?;
        log::info!(PACKD_BUNDLE = label.as_str(), PACKD_EVENT = "delta_assembled"; "delta on {label}: {copied} bytes taken from the installed bundle");
        Ok(Some(info.full))
    }
}

/// The contract's answer to a delta that cannot be assembled: the disk is full, or the archive
/// cannot become a bundle here (`invalid_bundle`, check `archive`: the sender falls back to the
/// full archive).
fn refusal(error: DeltaError) -> FleetError {
    match error {
        DeltaError::NoSpace { .. } => FleetError::new(BundleErrorCode::NoSpace, error.to_string()),
        DeltaError::Io { .. } => FleetError::internal(error),
        DeltaError::Invalid(_)
        | DeltaError::BaseMissing { .. }
        | DeltaError::BaseDiffers { .. }
        | DeltaError::Unavailable { .. } => {
            FleetError::invalid_bundle(InvalidCheck::Archive, error.to_string())
        }
    }
}
