//! Fleet management: the bundle commands of the API (`begin`, `chunk`, `commit`, `abort`,
//! `activate`, `rollback`, `list`, `remove`) applied to this appliance's bundle store, and the hot swap of
//! the serving model. Every check runs before a bundle may become active.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::backend::select::BackendConfig;
use crate::backend::selftest;
use crate::bundle::archive::{self, UnpackLimits};
use crate::bundle::manifest::EngineEntry;
use crate::bundle::signature::{self, TrustedKeys};
use crate::bundle::store::BundleStore;
use crate::bundle::transfer::{BeginRequest, TransferError, TransferLimits, TransferStore};
use crate::bundle::{Bundle, BundleError};
use crate::reply::BundleRef;
use crate::serve::{ActiveModel, ServingModel};
use crate::state::StateBoard;

/// Transfers idle for longer than this are dropped, so an abandoned push does not hold its disk
/// space for ever (a stalled one's slot may be taken over sooner, see `TransferLimits`).
const TRANSFER_IDLE_LIMIT: Duration = Duration::from_secs(3600);

/// A bundle command, from the topic suffix after `bundles/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Begin,
    Chunk { transfer: String, seq: u64 },
    Commit,
    Abort,
    Activate,
    Rollback,
    List,
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

/// A refused command: the API's error code, a sentence, the missing chunk ranges for
/// `missing_chunks`, and for `invalid_bundle` which check failed.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetError {
    pub code: &'static str,
    pub message: String,
    pub missing: Option<Vec<(u64, u64)>>,
    /// The failed check behind an `invalid_bundle` (the reply's `error.check`), since that one
    /// code covers several: see [`InvalidCheck`].
    pub check: Option<InvalidCheck>,
}

/// Which check found a bundle invalid; a fleet manager tells a broken build (`manifest`,
/// `content`) from a corrupted or tampered one (`file_hash`, `archive`) without parsing prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidCheck {
    /// The archive itself: unreadable, unsafe entries (links, devices, `..`), over its limits.
    Archive,
    /// The manifest's schema, its file list, its engines' form, or its name and version.
    Manifest,
    /// A file whose SHA-256 differs from the manifest's.
    FileHash,
    /// The vocabulary, catalogues or model tensors do not fit together.
    Content,
}

impl InvalidCheck {
    /// The value of `error.check` in replies.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidCheck::Archive => "archive",
            InvalidCheck::Manifest => "manifest",
            InvalidCheck::FileHash => "file_hash",
            InvalidCheck::Content => "content",
        }
    }
}

impl FleetError {
    /// A refusal with `code` and a human-readable `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> FleetError {
        FleetError {
            code,
            message: message.into(),
            missing: None,
            check: None,
        }
    }

    /// An `invalid_bundle` refusal found by `check`.
    fn invalid_bundle(check: InvalidCheck, message: impl Into<String>) -> FleetError {
        FleetError {
            check: Some(check),
            ..FleetError::new("invalid_bundle", message)
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
    pub dla_cores: u32,
}

/// Settings of bundle management.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    pub allow_unsigned: bool,
    pub keep: usize,
    pub transfer_limits: TransferLimits,
    pub unpack_limits: UnpackLimits,
    pub profile: DeviceProfile,
    /// What may run a loaded bundle's model (`[backend]`).
    pub backend: BackendConfig,
}

/// The appliance's bundle store and the model it serves.
pub struct Fleet {
    settings: FleetSettings,
    store: BundleStore,
    transfers: TransferStore,
    trusted: TrustedKeys,
    model: ActiveModel,
    state: Arc<StateBoard>,
    publish_state: Box<dyn Fn() + Send + Sync>,
}

#[derive(Deserialize)]
struct CommitRequest {
    transfer: String,
    #[serde(default = "default_true")]
    activate: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
struct AbortRequest {
    transfer: String,
}

#[derive(Deserialize)]
struct BundleName {
    name: String,
    version: String,
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
        let transfers = TransferStore::open(&store.dir().join(".transfers"))
            .map_err(|error| FleetError::new("internal", error.to_string()))?;
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
    pub fn handle(&self, command: &Command, payload: &[u8]) -> Option<Result<Value, FleetError>> {
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
            Command::List => Ok(self.list()),
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

    fn begin(&self, payload: &[u8], subject: &mut Subject) -> Result<Value, FleetError> {
        let request: BeginRequest = parse(payload)?;
        subject.transfer = Some(request.transfer.clone());
        subject.bundle = Some(label(&request.name, &request.version));
        let digest = request.digest().ok_or_else(|| {
            FleetError::new("bad_request", "field 'sha256' must be 64 hex digits")
        })?;
        // What begin announces is checked against what was signed before any slot or disk
        // space is granted: a replayed signature with another size or name is refused here.
        self.check_signature(&request, request.size, &digest)?;
        for swept in self.transfers.sweep(TRANSFER_IDLE_LIMIT) {
            log::info!(PACKD_TRANSFER = swept.as_str(), PACKD_EVENT = "transfer_swept"; "idle transfer {swept} dropped");
        }
        let have = self
            .transfers
            .begin(&request, &self.settings.transfer_limits)
            .map_err(|error| FleetError::new(error.code(), error.to_string()))?;
        log::info!(
            PACKD_TRANSFER = request.transfer.as_str(),
            PACKD_BUNDLE = label(&request.name, &request.version).as_str(),
            PACKD_EVENT = "transfer_begin";
            "transfer {} of {}@{} ({} bytes in {} chunks) ready; {} ranges already held",
            request.transfer, request.name, request.version, request.size, request.chunk_count(), have.len()
        );
        Ok(json!({"status": "ready", "transfer": request.transfer, "have": ranges(&have)}))
    }

    /// Checks the signature over the statement of `request`'s name, version and downgrade flag
    /// with `size` and `digest`: at `begin` the announced ones, at `commit` the archive's own.
    fn check_signature(
        &self,
        request: &BeginRequest,
        size: u64,
        digest: &[u8; 32],
    ) -> Result<(), FleetError> {
        let refused =
            |error: signature::SignatureError| FleetError::new(error.code(), error.to_string());
        match (&request.signature, &request.key_id) {
            (Some(signature), Some(key_id)) => {
                let statement = signature::Statement::new(
                    &request.name,
                    &request.version,
                    size,
                    *digest,
                    request.allow_downgrade,
                )
                .map_err(refused)?;
                signature::verify(&self.trusted, &statement, signature, key_id).map_err(refused)
            }
            (None, None) if self.settings.allow_unsigned => Ok(()),
            (None, None) => Err(FleetError::new(
                "bad_signature",
                "the bundle is unsigned and bundles.allow_unsigned is false",
            )),
            _ => Err(FleetError::new(
                "bad_request",
                "'signature' and 'key_id' go together",
            )),
        }
    }

    fn commit(&self, payload: &[u8], subject: &mut Subject) -> Result<Value, FleetError> {
        crate::bundle::crashpoint::arm();
        let request: CommitRequest = parse(payload)?;
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
                let mut refused = FleetError::new(error.code(), error.to_string());
                match &error {
                    TransferError::MissingChunks(missing) => refused.missing = Some(missing.clone()),
                    // Every chunk is held, so a resumed push would only re-send nothing and
                    // fail again (held chunks are never overwritten), while the transfer keeps
                    // its slot and answers other pushes `busy`: the bad bytes must go. Missing
                    // chunks and I/O errors keep the transfer, since sending more can fix them.
                    TransferError::BadDigest { .. } => {
                        if let Err(discard) = self.transfers.discard(&request.transfer) {
                            log::warn!(PACKD_TRANSFER = request.transfer.as_str(); "cannot discard transfer {} after a bad digest: {discard}", request.transfer);
                        }
                    }
                    _ => {}
                }
                refused
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
            return Ok(
                json!({"status": "installed", "bundle": bundle_ref(&bundle), "previous": Value::Null}),
            );
        }
        let previous = self.swap_in(model, &wanted, Some(&begin.transfer))?;
        Ok(json!({"status": "activated", "bundle": bundle_ref(&bundle), "previous": previous}))
    }

    /// Verifies a received archive all the way (signature over the digest, archive safety,
    /// manifest, every file hash, engines, self-test) and moves it into the store.
    fn install(
        &self,
        archive_path: &Path,
        begin: &BeginRequest,
    ) -> Result<(Bundle, ServingModel), FleetError> {
        let digest = archive::sha256_of(archive_path)
            .map_err(|error| FleetError::new("internal", error.to_string()))?;
        if Some(digest) != begin.digest() {
            return Err(FleetError::new(
                "bad_digest",
                "the received archive does not match the announced sha256",
            ));
        }
        let size = std::fs::metadata(archive_path)
            .map_err(|error| FleetError::new("internal", error.to_string()))?
            .len();
        // Again, now over the archive as received: its own size and digest.
        self.check_signature(begin, size, &digest)?;
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
        let staged_model = load_model(bundle, &self.settings.backend)
            .map_err(|message| cleanup(FleetError::new("selftest_failed", message)))?;
        self.store
            .install_staged(&staging, &wanted)
            .map_err(|error| cleanup(invalid(error)))?;
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
            .map_err(|error| FleetError::new("internal", error.to_string()))?;
        let transfer_limits = &self.settings.transfer_limits;
        let available = match transfer_limits.free_space_override {
            Some(bytes) => bytes,
            None => fs4::available_space(self.store.dir())
                .map_err(|error| FleetError::new("internal", error.to_string()))?,
        }
        .saturating_sub(transfer_limits.free_space_margin);
        let limits = UnpackLimits {
            max_total_bytes: for_archive.max_total_bytes.min(available),
            max_file_bytes: for_archive.max_file_bytes.min(available),
            ..for_archive
        };
        let space_bound = limits.max_total_bytes < for_archive.max_total_bytes;
        archive::unpack(archive_path, staging, &limits).map_err(|error| match error.code() {
            "too_large" if space_bound => FleetError::new(
                "no_space",
                format!("{error}: only {available} bytes are free beyond the margin"),
            ),
            // Past `begin`, an archive over the unpack limits is a malformed bundle.
            "too_large" | "invalid_bundle" => {
                FleetError::invalid_bundle(InvalidCheck::Archive, error.to_string())
            }
            other => FleetError::new(other, error.to_string()),
        })?;
        Ok(())
    }

    /// Discards a transfer and its received chunks (the sender gave up, or a replayed `begin`
    /// holds the slot).
    fn abort(&self, payload: &[u8], subject: &mut Subject) -> Result<Value, FleetError> {
        let request: AbortRequest = parse(payload)?;
        if !crate::bundle::transfer::is_valid_transfer_id(&request.transfer) {
            return Err(FleetError::new(
                "bad_request",
                "field 'transfer' must be 1-64 ASCII letters, digits, '-' or '_'",
            ));
        }
        subject.transfer = Some(request.transfer.clone());
        let removed = self
            .transfers
            .discard(&request.transfer)
            .map_err(|error| FleetError::new(error.code(), error.to_string()))?;
        if !removed {
            return Err(FleetError::new(
                "bad_request",
                format!("no transfer '{}' is in progress", request.transfer),
            ));
        }
        log::info!(PACKD_TRANSFER = request.transfer.as_str(), PACKD_EVENT = "transfer_aborted"; "transfer {} aborted", request.transfer);
        Ok(json!({"status": "aborted", "transfer": request.transfer}))
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

    fn activate(&self, wanted: &str) -> Result<Value, FleetError> {
        if !self.store.is_installed(wanted) {
            return Err(FleetError::new(
                "bad_request",
                format!("{wanted} is not installed"),
            ));
        }
        let bundle = Bundle::open(&self.store.path_of(wanted)).map_err(invalid)?;
        // The device may have changed since the install (a JetPack update brings another
        // TensorRT), so an installed bundle is checked again, as boot does.
        check_engines(&bundle.manifest.engines, &self.settings.profile)?;
        let model = load_model(bundle.clone(), &self.settings.backend)
            .map_err(|message| FleetError::new("selftest_failed", message))?;
        let previous = self.swap_in(model, wanted, None)?;
        Ok(json!({"status": "activated", "bundle": bundle_ref(&bundle), "previous": previous}))
    }

    fn rollback(&self, subject: &mut Subject) -> Result<Value, FleetError> {
        let previous = self
            .store
            .read_pointer(crate::bundle::store::PREVIOUS_POINTER)
            .filter(|label| self.store.is_installed(label))
            .ok_or_else(|| {
                FleetError::new("bad_request", "there is no previous bundle to roll back to")
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
    ) -> Result<Value, FleetError> {
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
        Ok(replaced.as_deref().map(label_to_ref).unwrap_or(Value::Null))
    }

    fn list(&self) -> Value {
        let active = self.store.active_label();
        let installed: Vec<Value> = self
            .store
            .installed()
            .into_iter()
            .map(|bundle| {
                json!({
                    "name": bundle.name,
                    "version": bundle.version,
                    "size": bundle.size,
                    "installed_at": humantime::format_rfc3339_seconds(bundle.installed_at).to_string(),
                    "targets": bundle.targets,
                })
            })
            .collect();
        json!({"status": "ok", "active": active.as_deref().map(label_to_ref), "installed": installed})
    }

    fn remove(&self, wanted: &str) -> Result<Value, FleetError> {
        if self.store.active_label().as_deref() == Some(wanted) {
            return Err(FleetError::new(
                "bad_request",
                format!("{wanted} is active and cannot be removed"),
            ));
        }
        if !self.store.is_installed(wanted) {
            return Err(FleetError::new(
                "bad_request",
                format!("{wanted} is not installed"),
            ));
        }
        self.store.remove(wanted).map_err(internal)?;
        log::info!(PACKD_BUNDLE = wanted, PACKD_EVENT = "removed"; "bundle {wanted} removed");
        Ok(json!({"status": "removed"}))
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
    let (code, message) = (error.code, escaped(&error.message));
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

/// Loads a verified bundle's model on the best backend here (TensorRT engines with the CPU
/// behind them, or the CPU alone) and runs its self-test on every target before it may serve.
pub fn load_model(bundle: Bundle, backend: &BackendConfig) -> Result<ServingModel, String> {
    let label = bundle.label();
    let loaded = crate::backend::select::load(&bundle, backend)
        .map_err(|error| format!("bundle {label}: {error}"))?;
    for (target, precision) in &loaded.targets {
        let report = selftest::run(&bundle, target.as_ref(), *precision).map_err(|error| {
            format!(
                "bundle {label} failed its self-test on {}: {error}",
                target.name()
            )
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
        let Some(tensorrt) = &profile.tensorrt else {
            continue;
        };
        if major_minor(&engine.tensorrt) != major_minor(tensorrt) {
            return Err(FleetError::new(
                "incompatible",
                format!(
                    "engine {} was built with TensorRT {}; this appliance runs TensorRT {tensorrt}",
                    engine.file, engine.tensorrt
                ),
            ));
        }
        if let Some(capability) = &profile.compute_capability {
            if &engine.compute_capability != capability {
                return Err(FleetError::new(
                    "incompatible",
                    format!("engine {} was built for compute capability {}; this appliance has {capability}", engine.file, engine.compute_capability),
                ));
            }
        }
        if let Some(index) = dla_index {
            if index >= profile.dla_cores {
                return Err(FleetError::new(
                    "incompatible",
                    format!(
                        "engine {} targets {} but this appliance has {} DLA cores",
                        engine.file, engine.target, profile.dla_cores
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The `name@version` an `activate` or `remove` names, refusing anything that is not a plain
/// folder name (a version of `1.0/../../x` must never reach the filesystem).
fn parse_name(payload: &[u8]) -> Result<String, FleetError> {
    let wanted: BundleName = parse(payload)?;
    if !crate::bundle::transfer::is_valid_bundle_name(&wanted.name, &wanted.version) {
        return Err(FleetError::new(
            "bad_request",
            "'name' and 'version' must be letters, digits, '-', '_', '.' (and '+' in versions)",
        ));
    }
    Ok(label(&wanted.name, &wanted.version))
}

fn parse<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, FleetError> {
    serde_json::from_slice(payload).map_err(|error| {
        FleetError::new("bad_request", format!("invalid command payload: {error}"))
    })
}

fn label(name: &str, version: &str) -> String {
    format!("{name}@{version}")
}

fn label_to_ref(label: &str) -> Value {
    match label.split_once('@') {
        Some((name, version)) => json!({"name": name, "version": version}),
        None => json!({"name": label, "version": ""}),
    }
}

fn bundle_ref(bundle: &Bundle) -> BundleRef {
    BundleRef {
        name: bundle.manifest.name.clone(),
        version: bundle.manifest.version.clone(),
    }
}

fn ranges(list: &[(u64, u64)]) -> Vec<[u64; 2]> {
    list.iter().map(|&(start, end)| [start, end]).collect()
}

fn invalid(error: BundleError) -> FleetError {
    let check = match &error {
        BundleError::Io { .. } => return FleetError::new("internal", error.to_string()),
        BundleError::Manifest(_)
        | BundleError::MissingFile { .. }
        | BundleError::UnlistedFile { .. } => InvalidCheck::Manifest,
        BundleError::HashMismatch { .. } => InvalidCheck::FileHash,
        BundleError::Catalogue { .. } | BundleError::Shape(_) => InvalidCheck::Content,
    };
    FleetError::invalid_bundle(check, error.to_string())
}

fn internal(error: BundleError) -> FleetError {
    FleetError::new("internal", error.to_string())
}

/// The full reply body for a command: `v`, `id` and `device` around the handler's result.
pub fn reply_body(device: &str, payload: &[u8], result: Result<Value, FleetError>) -> Vec<u8> {
    let id = crate::brief::read_envelope(payload).id;
    let mut body = match result {
        Ok(value) => value,
        Err(error) => {
            let mut body =
                json!({"status": "error", "error": {"code": error.code, "message": error.message}});
            if let Some(check) = error.check {
                body["error"]["check"] = json!(check.as_str());
            }
            if let Some(missing) = &error.missing {
                body["missing"] = json!(ranges(missing));
            }
            body
        }
    };
    body["v"] = json!(crate::reply::API_VERSION);
    body["device"] = json!(device);
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_from_topic_suffixes() {
        assert_eq!(Command::parse("begin"), Some(Command::Begin));
        assert_eq!(
            Command::parse("chunk/t-1/42"),
            Some(Command::Chunk {
                transfer: "t-1".into(),
                seq: 42
            })
        );
        assert_eq!(Command::parse("chunk/t-1/x"), None);
        assert_eq!(Command::parse("chunk/t-1/1/extra"), None);
        assert_eq!(Command::parse("abort"), Some(Command::Abort));
        assert_eq!(Command::parse("list/extra"), None);
        assert_eq!(Command::parse("format-disk"), None);
    }

    fn engine(target: &str, tensorrt: &str) -> EngineEntry {
        EngineEntry {
            target: target.into(),
            precision: "int8".into(),
            file: format!("engines/{target}.plan"),
            sha256: "0".repeat(64),
            tensorrt: tensorrt.into(),
            cuda: "12.6".into(),
            compute_capability: "8.7".into(),
            dla_cores: Some(2),
        }
    }

    #[test]
    fn engines_must_match_the_device() {
        let orin = DeviceProfile {
            tensorrt: Some("10.3.0".into()),
            compute_capability: Some("8.7".into()),
            dla_cores: 2,
        };
        assert!(check_engines(&[engine("gpu", "10.3.0"), engine("dla1", "10.3.0")], &orin).is_ok());
        assert_eq!(
            check_engines(&[engine("gpu", "11.4.1")], &orin)
                .unwrap_err()
                .code,
            "incompatible"
        );
        let one_dla = DeviceProfile {
            dla_cores: 1,
            ..orin.clone()
        };
        assert_eq!(
            check_engines(&[engine("dla1", "10.3.0")], &one_dla)
                .unwrap_err()
                .code,
            "incompatible"
        );
        assert_eq!(
            check_engines(&[engine("tpu", "10.3.0")], &orin)
                .unwrap_err()
                .code,
            "invalid_bundle"
        );
        // Without TensorRT the engines are unused, so their versions do not matter.
        assert!(check_engines(&[engine("gpu", "11.4.1")], &DeviceProfile::default()).is_ok());
    }

    #[test]
    fn reply_bodies_carry_version_device_and_id() {
        let body: Value = serde_json::from_slice(&reply_body(
            "orin-1",
            br#"{"id":"x"}"#,
            Err(FleetError {
                missing: Some(vec![(2, 5)]),
                ..FleetError::new("missing_chunks", "m")
            }),
        ))
        .unwrap();
        assert_eq!(body["v"], 1);
        assert_eq!(body["device"], "orin-1");
        assert_eq!(body["id"], "x");
        assert_eq!(body["error"]["code"], "missing_chunks");
        assert_eq!(body["missing"], json!([[2, 5]]));
        assert!(body["error"].get("check").is_none(), "{body}");

        let invalid: Value = serde_json::from_slice(&reply_body(
            "orin-1",
            b"{}",
            Err(invalid(BundleError::HashMismatch {
                path: "model.onnx".into(),
                expected: "a".into(),
                found: "b".into(),
            })),
        ))
        .unwrap();
        assert_eq!(invalid["error"]["code"], "invalid_bundle");
        assert_eq!(invalid["error"]["check"], "file_hash");
    }

    #[test]
    fn invalid_bundles_name_the_failed_check() {
        let check_of = |error: BundleError| invalid(error).check.map(InvalidCheck::as_str);
        assert_eq!(
            check_of(BundleError::Manifest("no name".into())),
            Some("manifest")
        );
        assert_eq!(
            check_of(BundleError::UnlistedFile { path: "x".into() }),
            Some("manifest")
        );
        assert_eq!(
            check_of(BundleError::Shape("3 ≠ 4".into())),
            Some("content")
        );
        let io = BundleError::Io {
            path: "x".into(),
            source: std::io::Error::other("disk"),
        };
        assert_eq!(invalid(io).code, "internal");
        let tpu = EngineEntry {
            target: "tpu".into(),
            ..engine("gpu", "10.3.0")
        };
        assert_eq!(
            check_engines(&[tpu], &DeviceProfile::default())
                .unwrap_err()
                .check,
            Some(InvalidCheck::Manifest)
        );
    }
}
