//! Fleet management: the bundle commands of the API (`begin`, `chunk`, `commit`, `abort`,
//! `activate`, `rollback`, `list`, `remove`) applied to this appliance's bundle store, and the hot swap of
//! the serving model. Every check runs before a bundle may become active.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use packd_wire::bundle::{self as wire, BundleErrorCode, InstalledEntry, InvalidCheck};

use crate::backend::select::BackendConfig;
use crate::bundle::archive::{self, UnpackLimits};
use crate::bundle::signature::{self, TrustedKeys};
use crate::bundle::store::BundleStore;
use crate::bundle::transfer::{BeginRequest, TransferError, TransferLimits, TransferStore};
use crate::bundle::{Bundle, BundleError};
use crate::reply::BundleRef;
use crate::serve::{ActiveModel, ServingModel};
use crate::state::StateBoard;

mod delta;
mod error;
mod model;
mod reply;

use error::invalid;
pub use error::{FleetError, LoadError};
pub use model::check_engines;
pub(crate) use model::load_model;
pub(crate) use reply::{reply_body, Done};

/// Transfers idle for longer than this are dropped, so an abandoned push does not hold its disk
/// space for ever (a stalled one's slot may be taken over sooner, see `TransferLimits`).
const TRANSFER_IDLE_LIMIT: Duration = Duration::from_secs(3600);

/// A bundle command, from the topic suffix after `bundles/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `begin`: open a transfer.
    Begin,
    /// `chunk/{transfer}/{seq}`: one chunk of an open transfer.
    Chunk {
        /// The transfer id from `begin`.
        transfer: String,
        /// The chunk's number, from 0.
        seq: u64,
    },
    /// `commit`: check, install and (by default) activate a transfer's archive.
    Commit,
    /// `abort`: drop a transfer and its chunks.
    Abort,
    /// `activate`: make an installed bundle the serving one.
    Activate,
    /// `rollback`: go back to the bundle that was active before.
    Rollback,
    /// `list`: report the active and installed bundles.
    List,
    /// `remove`: delete an installed bundle other than the active one.
    Remove,
}

impl Command {
    /// Parses `begin`, `chunk/{transfer}/{seq}`, … .
    pub fn parse(suffix: &str) -> Option<Command> {
        let mut parts = suffix.split('/');
        let command = match (parts.next()?, parts.next(), parts.next()) {
            ("begin", None, _) => Command::Begin,
            ("chunk", Some(transfer), Some(seq)) => Command::Chunk {
                transfer: transfer.to_string(),
                seq: seq.parse().ok()?,
            },
            ("commit", None, _) => Command::Commit,
            ("abort", None, _) => Command::Abort,
            ("activate", None, _) => Command::Activate,
            ("rollback", None, _) => Command::Rollback,
            ("list", None, _) => Command::List,
            ("remove", None, _) => Command::Remove,
            _ => return None,
        };
        parts.next().is_none().then_some(command)
    }

    /// The name used in logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Begin => "begin",
            Command::Chunk { .. } => "chunk",
            Command::Commit => "commit",
            Command::Abort => "abort",
            Command::Activate => "activate",
            Command::Rollback => "rollback",
            Command::List => "list",
            Command::Remove => "remove",
        }
    }
}

/// What this appliance can run engines on; engines for anything else are `incompatible`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceProfile {
    /// TensorRT version (`10.3.0`); `None` on a machine without TensorRT, where engines are unused.
    pub tensorrt: Option<String>,
    /// CUDA compute capability (`8.7` on Orin).
    pub compute_capability: Option<String>,
    /// DLA cores this appliance has; engines for a core beyond them are `incompatible`.
    pub dla_cores: u32,
}

/// Settings of bundle management.
#[derive(Debug, Clone)]
pub(crate) struct FleetSettings {
    pub allow_unsigned: bool,
    pub keep: usize,
    pub(crate) transfer_limits: TransferLimits,
    pub(crate) unpack_limits: UnpackLimits,
    pub profile: DeviceProfile,
    /// What may run a loaded bundle's model (`[backend]`).
    pub backend: BackendConfig,
}

/// The appliance's bundle store and the model it serves.
pub(crate) struct Fleet {
    settings: FleetSettings,
    store: BundleStore,
    transfers: TransferStore,
    trusted: TrustedKeys,
    model: ActiveModel,
    state: Arc<StateBoard>,
    publish_state: Box<dyn Fn() + Send + Sync>,
}

impl Fleet {
    /// Opens the transfer store beside the bundle store.
    pub fn new(
        settings: FleetSettings,
        store: BundleStore,
        trusted: TrustedKeys,
        model: ActiveModel,
        state: Arc<StateBoard>,
        publish_state: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Fleet, FleetError> {
        let transfers =
            TransferStore::open(&store.dir().join(".transfers")).map_err(FleetError::internal)?;
        Ok(Fleet {
            settings,
            store,
            transfers,
            trusted,
            model,
            state,
            publish_state,
        })
    }

    /// Applies one command; the reply body (without `v`, `id`, `device`), or `None` for chunks.
    /// Every refusal is journaled (`PACKD_EVENT={command}_refused`, `PACKD_ERROR={code}`).
    pub(crate) fn handle(
        &self,
        command: &Command,
        payload: &[u8],
    ) -> Option<Result<Done, FleetError>> {
        let mut subject = Subject::default();
        let result = match command {
            Command::Chunk { transfer, seq } => {
                if let Err(error) = self.transfers.write_chunk(transfer, *seq, payload) {
                    log::warn!(PACKD_TRANSFER = transfer.as_str(), PACKD_EVENT = "chunk_refused"; "chunk {seq} of transfer {transfer} refused: {error}");
                }
                return None;
            }
            Command::Begin => self.begin(payload, &mut subject),
            Command::Commit => self.commit(payload, &mut subject),
            Command::Abort => self.abort(payload, &mut subject),
            Command::Activate => parse_name(payload).and_then(|wanted| {
                subject.bundle = Some(wanted.clone());
                self.activate(&wanted)
            }),
            Command::Rollback => self.rollback(&mut subject),
            Command::List => self.list(),
            Command::Remove => parse_name(payload).and_then(|wanted| {
                subject.bundle = Some(wanted.clone());
                self.remove(&wanted)
            }),
        };
        if let Err(error) = &result {
            log_refusal(command.name(), &subject, error);
        }
        Some(result)
    }

    fn begin(&self, payload: &[u8], subject: &mut Subject) -> Result<Done, FleetError> {
        let request = begin_request(parse(payload)?);
        subject.transfer = Some(request.transfer.clone());
        subject.bundle = Some(label(&request.name, &request.version));
        let digest = request
            .digest()
            .ok_or_else(|| FleetError::bad_request("field 'sha256' must be 64 hex digits"))?;
        // What begin announces is checked against what was signed before any slot or disk
        // space is granted: a replayed signature with another size or name is refused here.
        self.check_signature(&request, request.size, &digest)?;
        self.refuse_downgrade(&request)?;
        let wanted = label(&request.name, &request.version);
        if self.store.installed_from(&wanted, &hex::encode(digest)) {
            log::info!(PACKD_TRANSFER = request.transfer.as_str(), PACKD_BUNDLE = wanted.as_str(), PACKD_EVENT = "already_installed"; "transfer {} of {wanted}: this archive is installed already; nothing to send", request.transfer);
            return Ok(Done::Installed {
                bundle: BundleRef {
                    name: request.name,
                    version: request.version,
                },
            });
        }
        for swept in self.transfers.sweep(TRANSFER_IDLE_LIMIT) {
            log::info!(PACKD_TRANSFER = swept.as_str(), PACKD_EVENT = "transfer_swept"; "idle transfer {swept} dropped");
        }
        let have = self
            .transfers
            .begin(&request, &self.settings.transfer_limits)?;
        log::info!(
            PACKD_TRANSFER = request.transfer.as_str(),
            PACKD_BUNDLE = label(&request.name, &request.version).as_str(),
            PACKD_EVENT = "transfer_begin";
            "transfer {} of {}@{} ({} bytes in {} chunks) ready; {} ranges already held",
            request.transfer, request.name, request.version, request.size, request.chunk_count(), have.len()
        );
        Ok(Done::Ready {
            transfer: request.transfer,
            have,
        })
    }

    /// Checks the signature over the statement of `request`'s name, version and downgrade flag
    /// with `size` and `digest`: at `begin` the announced ones, at `commit` the archive's own.
    fn check_signature(
        &self,
        request: &BeginRequest,
        size: u64,
        digest: &[u8; 32],
    ) -> Result<(), FleetError> {
        match (&request.signature, &request.key_id) {
            (Some(signature), Some(key_id)) => {
                let statement = signature::Statement::new(
                    &request.name,
                    &request.version,
                    size,
                    *digest,
                    request.allow_downgrade,
                )?;
                Ok(signature::verify(
                    &self.trusted,
                    &statement,
                    signature,
                    key_id,
                )?)
            }
            (None, None) if self.settings.allow_unsigned => Ok(()),
            (None, None) => Err(FleetError::new(
                BundleErrorCode::BadSignature,
                "the bundle is unsigned and bundles.allow_unsigned is false",
            )),
            _ => Err(FleetError::bad_request(
                "'signature' and 'key_id' go together",
            )),
        }
    }

    /// Refuses a bundle below the highest version of its name ever activated here, unless its
    /// signature allows a downgrade (the flag is part of the signed statement, checked first).
    fn refuse_downgrade(&self, request: &BeginRequest) -> Result<(), FleetError> {
        if request.allow_downgrade {
            return Ok(());
        }
        match self.store.downgrade_from(&request.name, &request.version) {
            Some(highest) => Err(FleetError::new(
                BundleErrorCode::Downgrade,
                format!(
                    "{}@{} is below {highest}, the highest version of {} activated on this \
                     device; sign it with `packctl bundle sign --allow-downgrade` to install it",
                    request.name, request.version, request.name
                ),
            )),
            None => Ok(()),
        }
    }

    fn commit(&self, payload: &[u8], subject: &mut Subject) -> Result<Done, FleetError> {
        crate::bundle::crashpoint::arm();
        let request: wire::Commit = parse(payload)?;
        subject.transfer = Some(request.transfer.clone());
        // Known before `complete`, so a refusal there (missing chunks, bad digest) still names
        // the bundle in the journal.
        subject.bundle = self
            .transfers
            .list()
            .into_iter()
            .find(|held| held.request.transfer == request.transfer)
            .map(|held| label(&held.request.name, &held.request.version));
        let completed = self
            .transfers
            .complete(&request.transfer)
            .map_err(|error| {
                // Every chunk is held, so a resumed push would only re-send nothing and fail
                // again (held chunks are never overwritten), while the transfer keeps its slot
                // and answers other pushes `busy`: the bad bytes must go. Missing chunks and I/O
                // errors keep the transfer, since sending more can fix them.
                if let TransferError::BadDigest { .. } = &error {
                    if let Err(discard) = self.transfers.discard(&request.transfer) {
                        log::warn!(PACKD_TRANSFER = request.transfer.as_str(); "cannot discard transfer {} after a bad digest: {discard}", request.transfer);
                    }
                }
                FleetError::from(error)
            })?;
        let begin = completed.request.clone();
        let wanted = label(&begin.name, &begin.version);
        let outcome = self.install(&completed.path, &begin);
        // Whatever happened, the received archive is no longer needed: a failed bundle is
        // pushed again from scratch, never resumed into the same bad bytes.
        let _ = self.transfers.discard(&request.transfer);
        let (bundle, model) = outcome?;
        log::info!(PACKD_TRANSFER = begin.transfer.as_str(), PACKD_BUNDLE = wanted.as_str(), PACKD_EVENT = "installed"; "bundle {wanted} installed");
        if !request.activate {
            return Ok(Done::Installed {
                bundle: bundle_ref(&bundle),
            });
        }
        let previous = self.swap_in(model, &wanted, Some(&begin.transfer))?;
        Ok(Done::Activated {
            bundle: bundle_ref(&bundle),
            previous,
        })
    }

    /// Verifies a received archive all the way (signature over the digest, archive safety,
    /// manifest, every file hash, engines, self-test) and moves it into the store.
    fn install(
        &self,
        archive_path: &Path,
        begin: &BeginRequest,
    ) -> Result<(Bundle, ServingModel), FleetError> {
        let digest = archive::sha256_of(archive_path).map_err(FleetError::internal)?;
        if Some(digest) != begin.digest() {
            return Err(FleetError::new(
                BundleErrorCode::BadDigest,
                "the received archive does not match the announced sha256",
            ));
        }
        let size = std::fs::metadata(archive_path)
            .map_err(FleetError::internal)?
            .len();
        // Again, now over the archive as received: its own size and digest; and the downgrade
        // check, since another bundle may have been activated since `begin`.
        self.check_signature(begin, size, &digest)?;
        self.refuse_downgrade(begin)?;
        let wanted = label(&begin.name, &begin.version);
        let staging = self
            .store
            .staging_dir(&format!("commit-{}", begin.transfer))
            .map_err(internal)?;
        let cleanup = |error: FleetError| {
            let _ = std::fs::remove_dir_all(&staging);
            error
        };
        self.unpack(archive_path, &staging).map_err(cleanup)?;
        let full = self.assemble_delta(&staging).map_err(cleanup)?;
        let bundle = Bundle::open(&staging).map_err(|error| cleanup(invalid(error)))?;
        if bundle.label() != wanted {
            return Err(cleanup(FleetError::invalid_bundle(
                InvalidCheck::Manifest,
                format!(
                    "the archive holds {} but begin announced {wanted}",
                    bundle.label()
                ),
            )));
        }
        check_engines(&bundle.manifest.engines, &self.settings.profile).map_err(cleanup)?;
        self.refuse_conflicting_install(&staging, &wanted)
            .map_err(cleanup)?;
        // Load and self-test the model while the bundle is still in staging: a bundle that
        // fails here never enters the store (nothing to undo, and a crash meanwhile leaves only
        // a staging folder, which `BundleStore::open` clears at the next start).
        let staged_model =
            load_model(bundle, &self.settings.backend).map_err(|error| cleanup(error.into()))?;
        self.store
            .install_staged(&staging, &wanted)
            .map_err(|error| cleanup(invalid(error)))?;
        // A delta records the full archive it stands for: a later push of that answers
        // `installed`.
        let recorded = full.map_or_else(|| hex::encode(digest), |full| full.sha256);
        if let Err(error) = self.store.record_archive(&wanted, &recorded) {
            // Only costs a second push of the same archive its shortcut.
            log::warn!(PACKD_BUNDLE = wanted.as_str(); "cannot record the archive {wanted} came from: {error}");
        }
        let installed = Bundle::open(&self.store.path_of(&wanted)).map_err(invalid)?;
        // The backend holds the model in memory (nothing it reads later lives under the staging
        // path), so the self-tested backend serves with the bundle as installed.
        let model = ServingModel {
            bundle: Arc::new(installed.clone()),
            ..staged_model
        };
        Ok((installed, model))
    }

    /// Unpacks a received archive into `staging`, writing no more than the archive can honestly
    /// hold (see [`UnpackLimits::for_archive`]) nor more than the disk has free.
    fn unpack(&self, archive_path: &Path, staging: &Path) -> Result<(), FleetError> {
        let for_archive = self
            .settings
            .unpack_limits
            .for_archive(archive_path)
            .map_err(FleetError::internal)?;
        let available = self.free_space()?;
        let limits = UnpackLimits {
            max_total_bytes: for_archive.max_total_bytes.min(available),
            max_file_bytes: for_archive.max_file_bytes.min(available),
            ..for_archive
        };
        let space_bound = limits.max_total_bytes < for_archive.max_total_bytes;
        archive::unpack(archive_path, staging, &limits).map_err(|error| match error.code() {
            "too_large" if space_bound => FleetError::new(
                BundleErrorCode::NoSpace,
                format!("{error}: only {available} bytes are free beyond the margin"),
            ),
            // Past `begin`, an archive over the unpack limits is a malformed bundle.
            "too_large" | "invalid_bundle" => {
                FleetError::invalid_bundle(InvalidCheck::Archive, error.to_string())
            }
            other => FleetError::from_domain(other, error),
        })?;
        Ok(())
    }

    /// Bytes free in the store beyond the margin kept for the system.
    fn free_space(&self) -> Result<u64, FleetError> {
        let transfer_limits = &self.settings.transfer_limits;
        Ok(match transfer_limits.free_space_override {
            Some(bytes) => bytes,
            None => fs4::available_space(self.store.dir()).map_err(FleetError::internal)?,
        }
        .saturating_sub(transfer_limits.free_space_margin))
    }

    /// Discards a transfer and its received chunks (the sender gave up, or a replayed `begin`
    /// holds the slot).
    fn abort(&self, payload: &[u8], subject: &mut Subject) -> Result<Done, FleetError> {
        let request: wire::Abort = parse(payload)?;
        if !crate::bundle::transfer::is_valid_transfer_id(&request.transfer) {
            return Err(FleetError::bad_request(
                "field 'transfer' must be 1-64 ASCII letters, digits, '-' or '_'",
            ));
        }
        subject.transfer = Some(request.transfer.clone());
        let removed = self.transfers.discard(&request.transfer)?;
        if !removed {
            return Err(FleetError::bad_request(format!(
                "no transfer '{}' is in progress",
                request.transfer
            )));
        }
        log::info!(PACKD_TRANSFER = request.transfer.as_str(), PACKD_EVENT = "transfer_aborted"; "transfer {} aborted", request.transfer);
        Ok(Done::Aborted {
            transfer: request.transfer,
        })
    }

    /// `name@version` must mean one bundle across a fleet: a different bundle under an
    /// installed label is `invalid_bundle`, refused before its model is loaded (as
    /// `BundleStore::install_staged` would refuse it anyway).
    fn refuse_conflicting_install(&self, staging: &Path, wanted: &str) -> Result<(), FleetError> {
        if !self.store.is_installed(wanted) {
            return Ok(());
        }
        let manifest = crate::bundle::MANIFEST_FILE;
        let installed = std::fs::read(self.store.path_of(wanted).join(manifest)).ok();
        let staged = std::fs::read(staging.join(manifest)).ok();
        if installed.is_some() && installed == staged {
            return Ok(());
        }
        Err(FleetError::invalid_bundle(
            InvalidCheck::Manifest,
            format!(
                "manifest.toml is invalid: a different bundle is already installed as {wanted}"
            ),
        ))
    }

    fn activate(&self, wanted: &str) -> Result<Done, FleetError> {
        if !self.store.is_installed(wanted) {
            return Err(FleetError::bad_request(format!(
                "{wanted} is not installed"
            )));
        }
        let bundle = Bundle::open(&self.store.path_of(wanted)).map_err(invalid)?;
        // The device may have changed since the install (a JetPack update brings another
        // TensorRT), so an installed bundle is checked again, as boot does.
        check_engines(&bundle.manifest.engines, &self.settings.profile)?;
        let model = load_model(bundle.clone(), &self.settings.backend)?;
        let previous = self.swap_in(model, wanted, None)?;
        Ok(Done::Activated {
            bundle: bundle_ref(&bundle),
            previous,
        })
    }

    fn rollback(&self, subject: &mut Subject) -> Result<Done, FleetError> {
        let previous = self
            .store
            .read_pointer(crate::bundle::store::PREVIOUS_POINTER)
            .filter(|label| self.store.is_installed(label))
            .ok_or_else(|| {
                FleetError::bad_request("there is no previous bundle to roll back to")
            })?;
        subject.bundle = Some(previous.clone());
        let activated = self.activate(&previous)?;
        // Logged once it happened: a rollback whose activation fails is a `rollback_refused`.
        log::info!(PACKD_BUNDLE = previous.as_str(), PACKD_EVENT = "rollback"; "rolled back to {previous}");
        Ok(activated)
    }

    /// Makes a loaded, self-tested model the one new briefs use, then records it on disk.
    /// Briefs already running keep the model they started with. `transfer` names the push that
    /// brought the bundle when this activation is its commit (logged as `PACKD_TRANSFER`).
    fn swap_in(
        &self,
        model: ServingModel,
        wanted: &str,
        transfer: Option<&str>,
    ) -> Result<Option<BundleRef>, FleetError> {
        let bundle = model.bundle.clone();
        let backends = model.backend.targets();
        let replaced = self.store.activate(wanted).map_err(internal)?;
        let _ = self.store.mark_good(wanted);
        self.model.store(Some(Arc::new(model)));
        self.state.set(Some(bundle_ref(&bundle)), backends, None);
        (self.publish_state)();
        let pruned = self.store.prune(self.settings.keep);
        if !pruned.is_empty() {
            log::info!(PACKD_EVENT = "pruned"; "old bundles removed: {}", pruned.join(", "));
        }
        let replacing = replaced.as_deref().unwrap_or("nothing");
        match transfer {
            Some(transfer) => {
                log::info!(PACKD_TRANSFER = transfer, PACKD_BUNDLE = wanted, PACKD_EVENT = "activated"; "bundle {wanted} activated by transfer {transfer} (replacing {replacing})")
            }
            None => {
                log::info!(PACKD_BUNDLE = wanted, PACKD_EVENT = "activated"; "bundle {wanted} activated (replacing {replacing})")
            }
        }
        Ok(replaced.as_deref().map(reply::label_to_ref))
    }

    fn list(&self) -> Result<Done, FleetError> {
        let active = self.store.active_label();
        let installed = self
            .store
            .installed()
            .into_iter()
            .map(|bundle| InstalledEntry {
                installed_at: humantime::format_rfc3339_seconds(bundle.installed_at).to_string(),
                name: bundle.name,
                size: bundle.size,
                targets: bundle.targets,
                version: bundle.version,
            })
            .collect();
        Ok(Done::Listed {
            active: active.as_deref().map(reply::label_to_ref),
            installed,
        })
    }

    fn remove(&self, wanted: &str) -> Result<Done, FleetError> {
        if self.store.active_label().as_deref() == Some(wanted) {
            return Err(FleetError::bad_request(format!(
                "{wanted} is active and cannot be removed"
            )));
        }
        if !self.store.is_installed(wanted) {
            return Err(FleetError::bad_request(format!(
                "{wanted} is not installed"
            )));
        }
        self.store.remove(wanted).map_err(internal)?;
        log::info!(PACKD_BUNDLE = wanted, PACKD_EVENT = "removed"; "bundle {wanted} removed");
        Ok(Done::Removed)
    }
}

/// What a command is about, as far as it got before a refusal: the journal record names it.
#[derive(Debug, Default)]
struct Subject {
    transfer: Option<String>,
    bundle: Option<String>,
}

/// One structured journal record per refused command, in the fields of the success events, so
/// an operator finds a push's whole story under `PACKD_TRANSFER` or `PACKD_BUNDLE`.
fn log_refusal(command: &str, subject: &Subject, error: &FleetError) {
    let event = format!("{command}_refused");
    // Transfer ids, bundle names and messages can come from the refused request itself.
    let escaped = |text: &str| crate::telemetry::field::escaped(text).to_field();
    let (code, message) = (error.code.as_str(), escaped(&error.message));
    let (transfer, bundle) = (
        subject.transfer.as_deref().map(escaped),
        subject.bundle.as_deref().map(escaped),
    );
    match (transfer.as_deref(), bundle.as_deref()) {
        (Some(transfer), Some(bundle)) => log::warn!(
            PACKD_EVENT = event.as_str(), PACKD_ERROR = code, PACKD_TRANSFER = transfer, PACKD_BUNDLE = bundle;
            "{command} of {bundle} (transfer {transfer}) refused ({code}): {message}"
        ),
        (Some(transfer), None) => log::warn!(
            PACKD_EVENT = event.as_str(), PACKD_ERROR = code, PACKD_TRANSFER = transfer;
            "{command} of transfer {transfer} refused ({code}): {message}"
        ),
        (None, Some(bundle)) => log::warn!(
            PACKD_EVENT = event.as_str(), PACKD_ERROR = code, PACKD_BUNDLE = bundle;
            "{command} of {bundle} refused ({code}): {message}"
        ),
        (None, None) => log::warn!(
            PACKD_EVENT = event.as_str(), PACKD_ERROR = code;
            "{command} refused ({code}): {message}"
        ),
    }
}

/// The `name@version` an `activate` or `remove` names, refusing anything that is not a plain
/// folder name (a version of `1.0/../../x` must never reach the filesystem).
fn parse_name(payload: &[u8]) -> Result<String, FleetError> {
    let wanted: wire::BundleName = parse(payload)?;
    if !crate::bundle::transfer::is_valid_bundle_name(&wanted.name, &wanted.version) {
        return Err(FleetError::bad_request(
            "'name' and 'version' must be letters, digits, '-', '_', '.' (and '+' in versions)",
        ));
    }
    Ok(label(&wanted.name, &wanted.version))
}

fn parse<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, FleetError> {
    serde_json::from_slice(payload)
        .map_err(|error| FleetError::bad_request(format!("invalid command payload: {error}")))
}

/// The transfer store's view of a `begin` payload (the bundle crate knows nothing of the wire).
fn begin_request(begin: wire::Begin) -> BeginRequest {
    let wire::Begin {
        transfer,
        name,
        version,
        size,
        sha256,
        chunk_size,
        signature,
        key_id,
        allow_downgrade,
    } = begin;
    BeginRequest {
        transfer,
        name,
        version,
        size,
        sha256,
        chunk_size,
        signature,
        key_id,
        allow_downgrade,
    }
}

fn label(name: &str, version: &str) -> String {
    format!("{name}@{version}")
}

fn bundle_ref(bundle: &Bundle) -> BundleRef {
    BundleRef {
        name: bundle.manifest.name.clone(),
        version: bundle.manifest.version.clone(),
    }
}

fn internal(error: BundleError) -> FleetError {
    FleetError::internal(error)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod golden_tests;
