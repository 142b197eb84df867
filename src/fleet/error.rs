//! Refusals of bundle commands: the contract's error code, a sentence, and what some codes add
//! to the reply; and the typed failure of loading a bundle's model.

use packd_wire::bundle::{BundleErrorCode, InvalidCheck};

use crate::backend::select::SelectError;
use crate::backend::selftest::SelfTestError;
use crate::bundle::signature::SignatureError;
use crate::bundle::transfer::TransferError;
use crate::bundle::BundleError;

/// A refused command: the API's error code, a sentence, the missing chunk ranges for
/// `missing_chunks`, and for `invalid_bundle` which check failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FleetError {
    /// The error code of the reply.
    pub code: BundleErrorCode,
    /// A sentence for operators saying what went wrong.
    pub message: String,
    /// For `missing_chunks`: the half-open chunk ranges still missing, as the reply's `missing`.
    pub missing: Option<Vec<(u64, u64)>>,
    /// The failed check behind an `invalid_bundle` (the reply's `error.check`), since that one
    /// code covers several: see [`InvalidCheck`].
    pub check: Option<InvalidCheck>,
}

impl FleetError {
    /// A refusal with `code` and a human-readable `message`.
    pub fn new(code: BundleErrorCode, message: impl Into<String>) -> FleetError {
        FleetError {
            code,
            message: message.into(),
            missing: None,
            check: None,
        }
    }

    /// An `internal` refusal: something on this appliance failed, not the request.
    pub fn internal(error: impl std::fmt::Display) -> FleetError {
        FleetError::new(BundleErrorCode::Internal, error.to_string())
    }

    /// A `bad_request` refusal.
    pub(crate) fn bad_request(message: impl Into<String>) -> FleetError {
        FleetError::new(BundleErrorCode::BadRequest, message)
    }

    /// An `invalid_bundle` refusal found by `check`.
    pub(crate) fn invalid_bundle(check: InvalidCheck, message: impl Into<String>) -> FleetError {
        FleetError {
            check: Some(check),
            ..FleetError::new(BundleErrorCode::InvalidBundle, message)
        }
    }

    /// A refusal with the contract code the bundle crate names as a string (it does not depend
    /// on the wire crate).
    pub(crate) fn from_domain(code: &str, error: impl std::fmt::Display) -> FleetError {
        FleetError::new(contract_code(code), error.to_string())
    }
}

/// The contract's code for a code the bundle crate names; one outside the contract would be a
/// bug there, answered as `internal` rather than sent to clients.
fn contract_code(code: &str) -> BundleErrorCode {
    code.parse().unwrap_or_else(|unknown| {
        log::error!("{unknown}; answered as internal");
        BundleErrorCode::Internal
    })
}

impl From<TransferError> for FleetError {
    fn from(error: TransferError) -> FleetError {
        let mut refused = FleetError::from_domain(error.code(), &error);
        if let TransferError::MissingChunks(missing) = error {
            refused.missing = Some(missing);
        }
        refused
    }
}

impl From<SignatureError> for FleetError {
    fn from(error: SignatureError) -> FleetError {
        FleetError::from_domain(error.code(), error)
    }
}

impl From<LoadError> for FleetError {
    /// A model that does not load or fails its self-test keeps its bundle from serving.
    fn from(error: LoadError) -> FleetError {
        FleetError::new(BundleErrorCode::SelftestFailed, error.to_string())
    }
}

/// An `invalid_bundle` naming the check a bundle failed; I/O is `internal`.
pub(crate) fn invalid(error: BundleError) -> FleetError {
    let check = match &error {
        BundleError::Io { .. } => return FleetError::internal(error),
        BundleError::Manifest(_)
        | BundleError::MissingFile { .. }
        | BundleError::UnlistedFile { .. } => InvalidCheck::Manifest,
        BundleError::HashMismatch { .. } => InvalidCheck::FileHash,
        BundleError::Catalogue { .. } | BundleError::Shape(_) => InvalidCheck::Content,
    };
    FleetError::invalid_bundle(check, error.to_string())
}

/// A verified bundle's model could not be made to serve (the sources boxed: they are large and
/// this is the rare path).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No backend could load the model.
    #[error("bundle {label}: {source}")]
    Backend {
        /// The bundle, as `name@version`.
        label: String,
        /// Why no backend could load it.
        #[source]
        source: Box<SelectError>,
    },
    /// A backend loaded it but its answers differ from the bundle's self-test vectors.
    #[error("bundle {label} failed its self-test on {target}: {source}")]
    SelfTest {
        /// The bundle, as `name@version`.
        label: String,
        /// The backend that failed, as replies name it (`cpu`, `trt:dla0`, …).
        target: String,
        /// Which case and value failed.
        #[source]
        source: Box<SelfTestError>,
    },
}
