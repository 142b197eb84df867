//! Resumable chunked bundle transfers (`begin`, `chunk/{transfer}/{seq}`, `commit`) that survive
//! a restart or power loss of packd.
//!
//! Each transfer lives in `{bundles.dir}/.transfers/{id}/`: `meta.json` (the normalised `begin`
//! request), `data` (the archive, preallocated sparse to its full size) and `held` (one u64 LE
//! chunk index per record). A chunk's record is written only after its bytes are on disk, so
//! after a crash `held` never claims a chunk that was not stored; at worst a chunk is sent again.
//!
//! Chunk ranges, in `have` and `missing` alike, are half-open `[start, end)` in chunk indices:
//! `[[0, 3], [5, 6]]` means chunks 0, 1, 2 and 5.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Smallest chunk a sender may use: `chunk_size` is not signed, so this bounds the messages a
/// replayed `begin` can make a transfer need (a 1 GiB archive in 65 536 chunks at most).
pub const MIN_CHUNK_SIZE: u64 = 16 * 1024;
/// Largest chunk a sender may use (one MQTT message).
pub const MAX_CHUNK_SIZE: u64 = 4 * 1024 * 1024;
/// Longest transfer id.
pub const MAX_TRANSFER_ID_LEN: usize = 64;
/// Most chunks one transfer may have (256 GiB at the smallest chunk size).
pub const MAX_CHUNKS: u64 = 1 << 24;

const META_FILE: &str = "meta.json";
const DATA_FILE: &str = "data";
const HELD_FILE: &str = "held";
const HELD_RECORD_LEN: u64 = 8;
/// Longest bundle name or version: they end up in a directory name (`name@version`).
const MAX_LABEL_PART_LEN: usize = 120;

/// Why a transfer request cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{field}: {message}")]
    BadRequest {
        field: &'static str,
        message: String,
    },
    #[error("no transfer '{0}' is in progress")]
    UnknownTransfer(String),
    #[error("the bundle is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("not enough free space: {0}")]
    NoSpace(String),
    #[error("transfer '{active}' is in progress; one at a time (a transfer of another archive may take its place once it goes {} s without a new chunk)", stall_after.as_secs())]
    Busy {
        active: String,
        stall_after: Duration,
    },
    #[error("chunks are missing: {0:?}")]
    MissingChunks(Vec<(u64, u64)>),
    #[error("the received archive's SHA-256 is {found}, but begin announced {expected}")]
    BadDigest { expected: String, found: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl TransferError {
    /// The API error code the reply carries for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            TransferError::BadRequest { .. } | TransferError::UnknownTransfer(_) => "bad_request",
            TransferError::TooLarge { .. } => "too_large",
            TransferError::NoSpace(_) => "no_space",
            TransferError::Busy { .. } => "busy",
            TransferError::MissingChunks(_) => "missing_chunks",
            TransferError::BadDigest { .. } => "bad_digest",
            TransferError::Io { .. } => "internal",
        }
    }

    fn io(path: &Path, source: io::Error) -> TransferError {
        if source.kind() == io::ErrorKind::StorageFull {
            TransferError::NoSpace(format!(
                "the disk filled up while writing {}",
                path.display()
            ))
        } else {
            TransferError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    fn bad_request(field: &'static str, message: impl Into<String>) -> TransferError {
        TransferError::BadRequest {
            field,
            message: message.into(),
        }
    }
}

/// The payload of a `begin` command (unknown fields such as `v` or `reply_to` are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginRequest {
    pub transfer: String,
    pub name: String,
    pub version: String,
    pub size: u64,
    pub sha256: String,
    pub chunk_size: u64,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub key_id: Option<String>,
    /// Signed with the downgrade flag (`packctl bundle sign --allow-downgrade`).
    #[serde(default)]
    pub allow_downgrade: bool,
}

impl BeginRequest {
    /// Number of chunks: the last one may be short.
    pub fn chunk_count(&self) -> u64 {
        if self.chunk_size == 0 {
            return 0;
        }
        self.size.div_ceil(self.chunk_size)
    }

    /// Exact length chunk `seq` must have, or `None` when `seq` is out of range.
    pub fn chunk_len(&self, seq: u64) -> Option<u64> {
        if seq >= self.chunk_count() {
            return None;
        }
        let start = seq * self.chunk_size;
        Some(self.chunk_size.min(self.size - start))
    }

    /// The announced SHA-256 as bytes (what the signature covers), if it is well formed.
    pub fn digest(&self) -> Option<[u8; 32]> {
        hex::decode(&self.sha256).ok()?.try_into().ok()
    }

    /// Checks every field and returns the request with its digest in lower case.
    fn validated(&self, limits: &TransferLimits) -> Result<BeginRequest, TransferError> {
        if !is_valid_transfer_id(&self.transfer) {
            return Err(TransferError::bad_request(
                "transfer",
                "must be 1-64 ASCII letters, digits, '-' or '_'",
            ));
        }
        if !is_valid_label_part(&self.name, "-_.") {
            return Err(TransferError::bad_request(
                "name",
                "must be non-empty ASCII letters, digits, '-', '_' or '.'",
            ));
        }
        if !is_valid_label_part(&self.version, "-_.+") {
            return Err(TransferError::bad_request(
                "version",
                "must be non-empty ASCII letters, digits, '-', '_', '.' or '+'",
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TransferError::bad_request(
                "sha256",
                "must be 64 hex digits",
            ));
        }
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(TransferError::bad_request(
                "chunk_size",
                format!("must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"),
            ));
        }
        if self.size == 0 {
            return Err(TransferError::bad_request(
                "size",
                "must be at least 1 byte",
            ));
        }
        if self.size > limits.max_bundle_bytes {
            return Err(TransferError::TooLarge {
                size: self.size,
                limit: limits.max_bundle_bytes,
            });
        }
        if self.chunk_count() > MAX_CHUNKS {
            return Err(TransferError::TooLarge {
                size: self.size,
                limit: MAX_CHUNKS * self.chunk_size,
            });
        }
        Ok(BeginRequest {
            sha256: self.sha256.to_ascii_lowercase(),
            ..self.clone()
        })
    }
}

/// Whether `name` and `version` can name an installed bundle (`name@version` is a folder name).
pub fn is_valid_bundle_name(name: &str, version: &str) -> bool {
    is_valid_label_part(name, "-_.")
        && is_valid_label_part(version, "-_.+")
        && !name.starts_with('.')
}

// The characters `check_manifest` allows, since a transfer's name and version become the
// installed bundle's; also length-capped because they end up in a directory name.
fn is_valid_label_part(text: &str, punctuation: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_LABEL_PART_LEN
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || punctuation.contains(c))
}

/// Whether `id` is usable as a transfer id (and hence as a directory name).
pub fn is_valid_transfer_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TRANSFER_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Bounds a `begin` is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLimits {
    /// Largest archive accepted (`too_large` above it).
    pub max_bundle_bytes: u64,
    /// Transfers held at once, `busy` beyond it (0 counts as 1; only a discard frees a slot).
    pub max_concurrent_transfers: usize,
    /// Free space kept beyond the archive and its unpacked copy, for the system's own needs.
    pub free_space_margin: u64,
    /// Free space to assume instead of asking the filesystem (tests simulate a full disk).
    pub free_space_override: Option<u64>,
    /// A transfer without a new chunk for this long has stalled: a fresh `begin` for another
    /// archive may take its slot instead of being answered `busy`.
    pub stall_after: Duration,
    /// Slowest progress a transfer may make before a fresh `begin` may take its slot: past
    /// `stall_after` plus `size / min_bytes_per_s` since it began, it is overdue, so one chunk a
    /// minute cannot hold the slot for days.
    pub min_bytes_per_s: u64,
}

impl Default for TransferLimits {
    fn default() -> TransferLimits {
        TransferLimits {
            max_bundle_bytes: 2 * 1024 * 1024 * 1024,
            max_concurrent_transfers: 1,
            free_space_margin: 64 * 1024 * 1024,
            free_space_override: None,
            stall_after: Duration::from_secs(60),
            min_bytes_per_s: 64 * 1024,
        }
    }
}

/// A transfer whose chunks are all held and whose digest matches `begin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedTransfer {
    /// The received archive; it stays valid until the transfer is discarded.
    pub path: PathBuf,
    pub request: BeginRequest,
}

/// One transfer as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSummary {
    pub request: BeginRequest,
    pub held_chunks: u64,
    pub chunk_count: u64,
    /// When a chunk last arrived (or the transfer began).
    pub last_activity: SystemTime,
}

#[derive(Debug)]
struct TransferState {
    held: Vec<bool>,
    held_count: u64,
    // Records in `held` known whole; the next one is written right after them, so a torn
    // record left by a crash or a failed write is simply overwritten.
    held_records: u64,
    held_file: File,
    /// When a chunk or a `begin` last arrived: what the idle sweep looks at.
    last_activity: SystemTime,
    /// When a new chunk was last stored (or the transfer began): what stall detection looks at,
    /// so neither resent chunks nor replayed `begin`s keep a transfer alive.
    last_progress: SystemTime,
}

#[derive(Debug)]
struct Transfer {
    dir: PathBuf,
    request: BeginRequest,
    data: File,
    /// When the transfer was created (its `meta.json`, across restarts).
    begun_at: SystemTime,
    state: Mutex<TransferState>,
}

impl Transfer {
    fn state(&self) -> MutexGuard<'_, TransferState> {
        // Fields change only after the I/O they describe succeeded, so a panicking holder
        // cannot leave them half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn held_ranges(&self) -> Vec<(u64, u64)> {
        ranges_where(&self.state().held, true)
    }

    fn missing_ranges(&self) -> Vec<(u64, u64)> {
        ranges_where(&self.state().held, false)
    }

    /// Why a fresh `begin` may take this transfer's slot at `now`, if it may: no new chunk for
    /// `stall_after`, or slower overall than `min_bytes_per_s`.
    fn takeover_reason(&self, limits: &TransferLimits, now: SystemTime) -> Option<String> {
        let since = |then: SystemTime| now.duration_since(then).unwrap_or(Duration::ZERO);
        let idle = since(self.state().last_progress);
        if idle >= limits.stall_after {
            return Some(format!("no new chunk for {} s", idle.as_secs()));
        }
        let allowed = limits.stall_after.saturating_add(Duration::from_secs(
            self.request.size / limits.min_bytes_per_s.max(1),
        ));
        let age = since(self.begun_at);
        (age > allowed).then(|| {
            format!(
                "unfinished {} s after it began (at most {} s for {} bytes)",
                age.as_secs(),
                allowed.as_secs(),
                self.request.size
            )
        })
    }

    fn outstanding_bytes(&self) -> u64 {
        let state = self.state();
        let held_bytes: u64 = (0..self.request.chunk_count())
            .filter(|&seq| state.held.get(seq as usize).copied().unwrap_or(false))
            .filter_map(|seq| self.request.chunk_len(seq))
            .sum();
        self.request.size.saturating_sub(held_bytes)
    }
}

/// Half-open runs of indices whose flag equals `wanted`.
fn ranges_where(flags: &[bool], wanted: bool) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let mut start = None;
    for (index, &flag) in flags.iter().enumerate() {
        match (flag == wanted, start) {
            (true, None) => start = Some(index as u64),
            (false, Some(begin)) => {
                ranges.push((begin, index as u64));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(begin) = start {
        ranges.push((begin, flags.len() as u64));
    }
    ranges
}

/// The transfers directory and every transfer in it.
#[derive(Debug)]
pub struct TransferStore {
    dir: PathBuf,
    transfers: Mutex<BTreeMap<String, Arc<Transfer>>>,
}

impl TransferStore {
    /// Opens (creating if needed) `dir`, reloading transfers and removing half-created ones.
    pub fn open(dir: &Path) -> Result<TransferStore, TransferError> {
        fs::create_dir_all(dir).map_err(|e| TransferError::io(dir, e))?;
        let mut transfers = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(|e| TransferError::io(dir, e))? {
            let entry = entry.map_err(|e| TransferError::io(dir, e))?;
            let path = entry.path();
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                log::warn!("ignoring {} in the transfers directory", path.display());
                continue;
            };
            if !is_valid_transfer_id(&id) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                log::warn!("ignoring {} in the transfers directory", path.display());
                continue;
            }
            match load_transfer(&path, &id) {
                Ok(transfer) => {
                    transfers.insert(id, Arc::new(transfer));
                }
                Err(reason) => {
                    log::warn!("removing unusable transfer '{id}': {reason}");
                    if let Err(error) = fs::remove_dir_all(&path) {
                        log::warn!("cannot remove {}: {error}", path.display());
                    }
                }
            }
        }
        Ok(TransferStore {
            dir: dir.to_path_buf(),
            transfers: Mutex::new(transfers),
        })
    }

    /// The transfers directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn transfers(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Transfer>>> {
        // The map changes only after the disk does, so a panicking holder leaves it usable.
        self.transfers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, id: &str) -> Result<Arc<Transfer>, TransferError> {
        self.transfers()
            .get(id)
            .cloned()
            .ok_or_else(|| TransferError::UnknownTransfer(truncated(id)))
    }

    /// Starts or resumes a transfer; answers the chunk ranges already held (half-open). When
    /// every slot is held, a transfer of another archive that stalled or is overdue (see
    /// [`TransferLimits`]) is discarded to make room; otherwise the answer is `busy`.
    pub fn begin(
        &self,
        request: &BeginRequest,
        limits: &TransferLimits,
    ) -> Result<Vec<(u64, u64)>, TransferError> {
        self.begin_at(request, limits, SystemTime::now())
    }

    fn begin_at(
        &self,
        request: &BeginRequest,
        limits: &TransferLimits,
        now: SystemTime,
    ) -> Result<Vec<(u64, u64)>, TransferError> {
        let request = request.validated(limits)?;
        // Held for the whole begin, so two begins cannot both pass the busy and space checks.
        let mut transfers = self.transfers();

        if let Some(existing) = transfers.get(&request.transfer) {
            if existing.request != request {
                return Err(TransferError::bad_request(
                    "transfer",
                    "a transfer with this id is in progress with different parameters",
                ));
            }
            let others_outstanding: u64 = transfers
                .iter()
                .filter(|(id, _)| **id != request.transfer)
                .map(|(_, transfer)| transfer.outstanding_bytes())
                .sum();
            self.check_space(
                existing.outstanding_bytes().saturating_add(request.size),
                others_outstanding,
                limits,
            )?;
            existing.state().last_activity = now;
            return Ok(existing.held_ranges());
        }

        let mut displaced = None;
        if transfers.len() >= limits.max_concurrent_transfers.max(1) {
            let (victim, reason) = takeover_candidate(&transfers, &request, limits, now)
                .ok_or_else(|| TransferError::Busy {
                    active: transfers.keys().next().cloned().unwrap_or_default(),
                    stall_after: limits.stall_after,
                })?;
            displaced = Some((victim, reason));
        }
        let others_outstanding: u64 = transfers
            .iter()
            .filter(|(id, _)| displaced.as_ref().is_none_or(|(victim, _)| victim != *id))
            .map(|(_, t)| t.outstanding_bytes())
            .sum();
        // The archive, then its unpacked copy: both must fit.
        self.check_space(request.size.saturating_mul(2), others_outstanding, limits)?;
        if let Some((victim, reason)) = displaced {
            if let Some(transfer) = transfers.remove(&victim) {
                fs::remove_dir_all(&transfer.dir)
                    .map_err(|e| TransferError::io(&transfer.dir, e))?;
            }
            log::info!(
                PACKD_TRANSFER = victim.as_str(), PACKD_EVENT = "transfer_taken_over";
                "transfer {victim} ({reason}) discarded for transfer {}", request.transfer
            );
        }

        let path = self.dir.join(&request.transfer);
        // create_dir refuses a directory made behind our back (open cleared our own leftovers),
        // and only what this call created is removed on failure.
        fs::create_dir(&path).map_err(|e| TransferError::io(&path, e))?;
        let transfer = match create_transfer(&path, &request, now).and_then(|transfer| {
            sync_dir(&self.dir)?;
            Ok(transfer)
        }) {
            Ok(transfer) => transfer,
            Err(error) => {
                let _ = fs::remove_dir_all(&path);
                return Err(error);
            }
        };
        transfers.insert(request.transfer.clone(), Arc::new(transfer));
        Ok(Vec::new())
    }

    fn check_space(
        &self,
        needed_here: u64,
        others_outstanding: u64,
        limits: &TransferLimits,
    ) -> Result<(), TransferError> {
        let available = match limits.free_space_override {
            Some(bytes) => bytes,
            None => fs4::available_space(&self.dir).map_err(|e| TransferError::io(&self.dir, e))?,
        };
        let needed = needed_here
            .saturating_add(others_outstanding)
            .saturating_add(limits.free_space_margin);
        if available < needed {
            return Err(TransferError::NoSpace(format!(
                "{needed} bytes needed (archive, unpacked copy and margin), {available} available"
            )));
        }
        Ok(())
    }

    /// Stores chunk `seq` (0-based); a chunk already held is acknowledged, not rewritten.
    pub fn write_chunk(&self, id: &str, seq: u64, bytes: &[u8]) -> Result<(), TransferError> {
        let transfer = self.get(id)?;
        let request = &transfer.request;
        let expected = request.chunk_len(seq).ok_or_else(|| {
            TransferError::bad_request(
                "seq",
                format!(
                    "chunk {seq} is out of range (the transfer has {} chunks)",
                    request.chunk_count()
                ),
            )
        })?;
        if bytes.len() as u64 != expected {
            return Err(TransferError::bad_request(
                "chunk",
                format!("chunk {seq} is {} bytes, expected {expected}", bytes.len()),
            ));
        }
        let index = seq as usize;
        if transfer.state().held.get(index).copied().unwrap_or(false) {
            return Ok(());
        }

        // The data is written and synced outside the state lock, so chunks of one transfer
        // land in parallel; only the short `held` append is serialised.
        let data_path = transfer.dir.join(DATA_FILE);
        transfer
            .data
            .write_all_at(bytes, seq * request.chunk_size)
            .and_then(|()| transfer.data.sync_data())
            .map_err(|e| TransferError::io(&data_path, e))?;

        let mut state = transfer.state();
        if state.held.get(index).copied().unwrap_or(false) {
            return Ok(());
        }
        let held_path = transfer.dir.join(HELD_FILE);
        let offset = state.held_records * HELD_RECORD_LEN;
        state
            .held_file
            .write_all_at(&seq.to_le_bytes(), offset)
            .and_then(|()| state.held_file.sync_data())
            .map_err(|e| TransferError::io(&held_path, e))?;
        state.held_records += 1;
        if let Some(flag) = state.held.get_mut(index) {
            *flag = true;
            state.held_count += 1;
        }
        let now = SystemTime::now();
        state.last_activity = now;
        state.last_progress = now;
        Ok(())
    }

    /// Chunk ranges (half-open) not yet received.
    pub fn missing(&self, id: &str) -> Result<Vec<(u64, u64)>, TransferError> {
        Ok(self.get(id)?.missing_ranges())
    }

    /// Chunk ranges (half-open) already received.
    pub fn held(&self, id: &str) -> Result<Vec<(u64, u64)>, TransferError> {
        Ok(self.get(id)?.held_ranges())
    }

    /// Checks that every chunk arrived and that the archive's SHA-256 is the announced one.
    pub fn complete(&self, id: &str) -> Result<CompletedTransfer, TransferError> {
        let transfer = self.get(id)?;
        let missing = transfer.missing_ranges();
        if !missing.is_empty() {
            return Err(TransferError::MissingChunks(missing));
        }
        let path = transfer.dir.join(DATA_FILE);
        let found = sha256_hex(&path).map_err(|e| TransferError::io(&path, e))?;
        if found != transfer.request.sha256 {
            return Err(TransferError::BadDigest {
                expected: transfer.request.sha256.clone(),
                found,
            });
        }
        Ok(CompletedTransfer {
            path,
            request: transfer.request.clone(),
        })
    }

    /// Forgets a transfer and deletes its files; `Ok(false)` when there was none.
    pub fn discard(&self, id: &str) -> Result<bool, TransferError> {
        let removed = self.transfers().remove(id);
        match removed {
            Some(transfer) => {
                fs::remove_dir_all(&transfer.dir)
                    .map_err(|e| TransferError::io(&transfer.dir, e))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Every transfer held, by id.
    pub fn list(&self) -> Vec<TransferSummary> {
        self.transfers()
            .values()
            .map(|transfer| {
                let state = transfer.state();
                TransferSummary {
                    request: transfer.request.clone(),
                    held_chunks: state.held_count,
                    chunk_count: transfer.request.chunk_count(),
                    last_activity: state.last_activity,
                }
            })
            .collect()
    }

    /// Discards transfers idle (no chunk, no begin) for over `max_age`; returns their ids.
    pub fn sweep(&self, max_age: Duration) -> Vec<String> {
        // Idle time, not age: a slow transfer that keeps progressing is never cut off.
        let now = SystemTime::now();
        let stale: Vec<String> = self
            .transfers()
            .iter()
            .filter(|(_, transfer)| {
                now.duration_since(transfer.state().last_activity)
                    .is_ok_and(|idle| idle > max_age)
            })
            .map(|(id, _)| id.clone())
            .collect();
        stale
            .into_iter()
            .filter(|id| match self.discard(id) {
                Ok(removed) => removed,
                Err(error) => {
                    log::warn!("cannot remove stale transfer '{id}': {error}");
                    false
                }
            })
            .collect()
    }
}

fn create_transfer(
    path: &Path,
    request: &BeginRequest,
    now: SystemTime,
) -> Result<Transfer, TransferError> {
    let data_path = path.join(DATA_FILE);
    let data = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&data_path)
        .map_err(|e| TransferError::io(&data_path, e))?;
    data.set_len(request.size)
        .and_then(|()| data.sync_all())
        .map_err(|e| TransferError::io(&data_path, e))?;
    let held_path = path.join(HELD_FILE);
    let held_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&held_path)
        .map_err(|e| TransferError::io(&held_path, e))?;
    held_file
        .sync_all()
        .map_err(|e| TransferError::io(&held_path, e))?;

    // meta.json lands last and atomically: its presence is what makes the transfer exist.
    let meta_json = serde_json::to_vec_pretty(request).map_err(|e| TransferError::Io {
        path: path.join(META_FILE),
        source: io::Error::other(e),
    })?;
    let temporary = path.join(format!("{META_FILE}.tmp"));
    let mut meta = File::create(&temporary).map_err(|e| TransferError::io(&temporary, e))?;
    meta.write_all(&meta_json)
        .and_then(|()| meta.sync_all())
        .map_err(|e| TransferError::io(&temporary, e))?;
    let meta_path = path.join(META_FILE);
    fs::rename(&temporary, &meta_path).map_err(|e| TransferError::io(&meta_path, e))?;
    sync_dir(path)?;

    Ok(Transfer {
        dir: path.to_path_buf(),
        request: request.clone(),
        data,
        begun_at: now,
        state: Mutex::new(TransferState {
            held: vec![false; request.chunk_count() as usize],
            held_count: 0,
            held_records: 0,
            held_file,
            last_activity: now,
            last_progress: now,
        }),
    })
}

/// Reloads a transfer from disk; the error is a reason to log before removing it.
fn load_transfer(path: &Path, id: &str) -> Result<Transfer, String> {
    let meta_path = path.join(META_FILE);
    let meta_bytes = fs::read(&meta_path).map_err(|e| format!("{}: {e}", meta_path.display()))?;
    let stored: BeginRequest =
        serde_json::from_slice(&meta_bytes).map_err(|e| format!("meta.json: {e}"))?;
    let unbounded = TransferLimits {
        max_bundle_bytes: u64::MAX,
        ..TransferLimits::default()
    };
    let request = stored
        .validated(&unbounded)
        .map_err(|e| format!("meta.json: {e}"))?;
    if request.transfer != id || request != stored {
        return Err("meta.json does not describe this transfer".into());
    }

    let data_path = path.join(DATA_FILE);
    let data = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&data_path)
        .map_err(|e| format!("{}: {e}", data_path.display()))?;
    let data_len = data
        .metadata()
        .map_err(|e| format!("{}: {e}", data_path.display()))?
        .len();
    if data_len != request.size {
        return Err(format!(
            "data is {data_len} bytes, expected {}",
            request.size
        ));
    }

    let held_path = path.join(HELD_FILE);
    let mut held_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&held_path)
        .map_err(|e| format!("{}: {e}", held_path.display()))?;
    let mut records = Vec::new();
    held_file
        .read_to_end(&mut records)
        .map_err(|e| format!("{}: {e}", held_path.display()))?;
    let chunk_count = request.chunk_count();
    let mut held = vec![false; chunk_count as usize];
    let mut held_count = 0;
    // chunks_exact drops a torn last record: its chunk is simply asked for again.
    let whole_records = records.chunks_exact(HELD_RECORD_LEN as usize);
    let held_records = whole_records.len() as u64;
    for record in whole_records {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(record);
        let seq = u64::from_le_bytes(bytes);
        if let Some(flag) = held.get_mut(seq as usize).filter(|_| seq < chunk_count) {
            if !*flag {
                *flag = true;
                held_count += 1;
            }
        }
    }
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    // meta.json is written once, at begin; `held` at every new chunk.
    let begun_at = modified(&meta_path).unwrap_or_else(SystemTime::now);
    let last_activity = modified(&held_path).map_or(begun_at, |held| held.max(begun_at));

    Ok(Transfer {
        dir: path.to_path_buf(),
        request,
        data,
        begun_at,
        state: Mutex::new(TransferState {
            held,
            held_count,
            held_records,
            held_file,
            last_activity,
            last_progress: last_activity,
        }),
    })
}

/// The transfer a fresh `begin` (under a new transfer id) may displace, with why: one that
/// stalled or is overdue, the longest without progress first. The same archive counts too: a
/// replayed `begin` under an id of its own must not keep the genuine push of it `busy`.
fn takeover_candidate(
    transfers: &BTreeMap<String, Arc<Transfer>>,
    request: &BeginRequest,
    limits: &TransferLimits,
    now: SystemTime,
) -> Option<(String, String)> {
    transfers
        .iter()
        .filter(|(id, _)| **id != request.transfer)
        .filter_map(|(id, transfer)| {
            let reason = transfer.takeover_reason(limits, now)?;
            Some((transfer.state().last_progress, id.clone(), reason))
        })
        .min()
        .map(|(_, id, reason)| (id, reason))
}

fn sha256_hex(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn sync_dir(dir: &Path) -> Result<(), TransferError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|e| TransferError::io(dir, e))
}

/// An id as echoed in an error: bounded, since an unknown id comes straight off the wire.
fn truncated(id: &str) -> String {
    id.chars().take(MAX_TRANSFER_ID_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: u64 = MIN_CHUNK_SIZE;

    fn limits() -> TransferLimits {
        TransferLimits {
            max_bundle_bytes: 1 << 20,
            max_concurrent_transfers: 1,
            free_space_margin: 0,
            free_space_override: Some(u64::MAX),
            ..TransferLimits::default()
        }
    }

    /// Bytes that differ from chunk to chunk, so a chunk written at the wrong offset shows.
    fn payload(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 31 + i / 4096 * 7) as u8).wrapping_add(salt))
            .collect()
    }

    fn request_for(id: &str, bytes: &[u8]) -> BeginRequest {
        BeginRequest {
            transfer: id.to_string(),
            name: "packd-default".into(),
            version: "1.1.0+jetson".into(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
            chunk_size: CHUNK,
            signature: Some("c2ln".into()),
            key_id: Some("21fe31dfa154a261".into()),
            allow_downgrade: false,
        }
    }

    fn chunk(bytes: &[u8], seq: u64) -> &[u8] {
        let start = (seq * CHUNK) as usize;
        &bytes[start..(start + CHUNK as usize).min(bytes.len())]
    }

    fn send(store: &TransferStore, id: &str, bytes: &[u8], seqs: impl IntoIterator<Item = u64>) {
        for seq in seqs {
            store.write_chunk(id, seq, chunk(bytes, seq)).unwrap();
        }
    }

    fn held_file_len(store: &TransferStore, id: &str) -> u64 {
        fs::metadata(store.dir().join(id).join(HELD_FILE))
            .unwrap()
            .len()
    }

    #[test]
    fn full_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(&dir.path().join(".transfers")).unwrap();
        let bytes = payload(5 * CHUNK as usize + 123, 0);
        let request = request_for("t-1", &bytes);
        assert_eq!(request.chunk_count(), 6);
        assert_eq!(request.chunk_len(5), Some(123));
        assert_eq!(store.begin(&request, &limits()).unwrap(), []);
        assert_eq!(store.missing("t-1").unwrap(), [(0, 6)]);
        send(&store, "t-1", &bytes, 0..6);
        assert_eq!(store.missing("t-1").unwrap(), []);
        assert_eq!(store.held("t-1").unwrap(), [(0, 6)]);

        let completed = store.complete("t-1").unwrap();
        assert_eq!(fs::read(&completed.path).unwrap(), bytes);
        assert_eq!(completed.request, request);
        let listed = store.list();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].held_chunks, listed[0].chunk_count), (6, 6));

        assert!(store.discard("t-1").unwrap());
        assert!(!completed.path.exists());
        assert!(!store.discard("t-1").unwrap());
        assert!(matches!(
            store.complete("t-1"),
            Err(TransferError::UnknownTransfer(_))
        ));
    }

    #[test]
    fn out_of_order_and_duplicate_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let bytes = payload(4 * CHUNK as usize, 1);
        store.begin(&request_for("t", &bytes), &limits()).unwrap();
        send(&store, "t", &bytes, [3, 1, 3, 0]);
        assert_eq!(store.held("t").unwrap(), [(0, 2), (3, 4)]);
        // A duplicate is acknowledged and not written again, even with other bytes.
        store
            .write_chunk("t", 1, &vec![0xEE; CHUNK as usize])
            .unwrap();
        send(&store, "t", &bytes, [2, 2]);
        assert_eq!(held_file_len(&store, "t"), 4 * HELD_RECORD_LEN);
        assert_eq!(fs::read(store.complete("t").unwrap().path).unwrap(), bytes);
    }

    #[test]
    fn resume_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = payload(6 * CHUNK as usize + 1, 2);
        let request = request_for("resume-me", &bytes);
        {
            let store = TransferStore::open(dir.path()).unwrap();
            store.begin(&request, &limits()).unwrap();
            send(&store, "resume-me", &bytes, [0, 1, 4, 6]);
        }
        let store = TransferStore::open(dir.path()).unwrap();
        assert_eq!(store.missing("resume-me").unwrap(), [(2, 4), (5, 6)]);
        let mut same_but_upper_case = request.clone();
        same_but_upper_case.sha256 = request.sha256.to_ascii_uppercase();
        assert_eq!(
            store.begin(&same_but_upper_case, &limits()).unwrap(),
            [(0, 2), (4, 5), (6, 7)]
        );
        let mut different = request.clone();
        different.chunk_size = 2 * CHUNK;
        match store.begin(&different, &limits()) {
            Err(
                error @ TransferError::BadRequest {
                    field: "transfer", ..
                },
            ) => {
                assert_eq!(error.code(), "bad_request")
            }
            other => panic!("expected BadRequest, got {other:?}"),
        }
        send(&store, "resume-me", &bytes, [2, 3, 5]);
        assert_eq!(
            fs::read(store.complete("resume-me").unwrap().path).unwrap(),
            bytes
        );
    }

    #[test]
    fn torn_held_record_is_ignored_and_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = payload(4 * CHUNK as usize, 3);
        {
            let store = TransferStore::open(dir.path()).unwrap();
            store.begin(&request_for("t", &bytes), &limits()).unwrap();
            send(&store, "t", &bytes, [0, 1]);
        }
        let held_path = dir.path().join("t").join(HELD_FILE);
        // What a crash mid-append leaves: the first bytes of a record for chunk 2.
        let mut held = OpenOptions::new().append(true).open(&held_path).unwrap();
        held.write_all(&2u64.to_le_bytes()[..3]).unwrap();
        drop(held);
        {
            let store = TransferStore::open(dir.path()).unwrap();
            assert_eq!(store.held("t").unwrap(), [(0, 2)]);
            send(&store, "t", &bytes, [3]);
        }
        assert_eq!(fs::metadata(&held_path).unwrap().len(), 3 * HELD_RECORD_LEN);
        let store = TransferStore::open(dir.path()).unwrap();
        assert_eq!(store.held("t").unwrap(), [(0, 2), (3, 4)]);
        send(&store, "t", &bytes, [2]);
        store.complete("t").unwrap();
    }

    #[test]
    fn half_created_and_damaged_transfers_are_cleared_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = payload(2 * CHUNK as usize, 4);
        {
            let store = TransferStore::open(dir.path()).unwrap();
            store
                .begin(&request_for("good", &bytes), &limits())
                .unwrap();
        }
        // A begin that crashed before meta.json landed.
        fs::create_dir(dir.path().join("no-meta")).unwrap();
        fs::write(dir.path().join("no-meta").join(DATA_FILE), b"").unwrap();
        // A data file that is not the announced size.
        fs::create_dir(dir.path().join("short")).unwrap();
        let mut meta = request_for("short", &bytes);
        meta.sha256 = meta.sha256.to_ascii_lowercase();
        fs::write(
            dir.path().join("short").join(META_FILE),
            serde_json::to_vec(&meta).unwrap(),
        )
        .unwrap();
        fs::write(dir.path().join("short").join(DATA_FILE), b"abc").unwrap();
        fs::write(dir.path().join("short").join(HELD_FILE), b"").unwrap();

        let store = TransferStore::open(dir.path()).unwrap();
        let ids: Vec<String> = store
            .list()
            .into_iter()
            .map(|t| t.request.transfer)
            .collect();
        assert_eq!(ids, ["good"]);
        assert!(!dir.path().join("no-meta").exists());
        assert!(!dir.path().join("short").exists());
    }

    #[test]
    fn chunk_lengths_and_sequence_numbers_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let bytes = payload(2 * CHUNK as usize + 10, 5);
        store.begin(&request_for("t", &bytes), &limits()).unwrap();
        let field_of = |result: Result<(), TransferError>| match result {
            Err(TransferError::BadRequest { field, .. }) => field,
            other => panic!("expected BadRequest, got {other:?}"),
        };
        assert_eq!(field_of(store.write_chunk("t", 0, &bytes[..100])), "chunk");
        assert_eq!(
            field_of(store.write_chunk("t", 0, &bytes[..CHUNK as usize + 1])),
            "chunk"
        );
        assert_eq!(
            field_of(store.write_chunk("t", 2, &bytes[..CHUNK as usize])),
            "chunk"
        );
        assert_eq!(field_of(store.write_chunk("t", 2, &bytes[..9])), "chunk");
        assert_eq!(field_of(store.write_chunk("t", 3, &bytes[..10])), "seq");
        assert_eq!(
            field_of(store.write_chunk("t", u64::MAX, &bytes[..10])),
            "seq"
        );
        assert_eq!(store.held("t").unwrap(), []);
        assert_eq!(held_file_len(&store, "t"), 0);
        store
            .write_chunk("t", 2, &bytes[2 * CHUNK as usize..])
            .unwrap();

        let error = store.write_chunk("nope", 0, b"x").unwrap_err();
        assert!(matches!(error, TransferError::UnknownTransfer(ref id) if id == "nope"));
        assert_eq!(error.code(), "bad_request");
        assert!(matches!(
            store.missing("nope"),
            Err(TransferError::UnknownTransfer(_))
        ));
    }

    #[test]
    fn missing_chunks_are_reported_as_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let bytes = payload(10 * CHUNK as usize, 6);
        store.begin(&request_for("t", &bytes), &limits()).unwrap();
        send(&store, "t", &bytes, [0, 1, 2, 5, 9]);
        let error = store.complete("t").unwrap_err();
        assert_eq!(error.code(), "missing_chunks");
        match error {
            TransferError::MissingChunks(ranges) => assert_eq!(ranges, [(3, 5), (6, 9)]),
            other => panic!("expected MissingChunks, got {other:?}"),
        }
        assert_eq!(store.missing("t").unwrap(), [(3, 5), (6, 9)]);
    }

    #[test]
    fn a_digest_mismatch_is_bad_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let bytes = payload(3 * CHUNK as usize, 7);
        let mut request = request_for("t", &bytes);
        request.sha256 = hex::encode(Sha256::digest(b"something else"));
        store.begin(&request, &limits()).unwrap();
        send(&store, "t", &bytes, 0..3);
        match store.complete("t") {
            Err(error @ TransferError::BadDigest { .. }) => {
                assert_eq!(error.code(), "bad_digest");
                assert!(error
                    .to_string()
                    .contains(&hex::encode(Sha256::digest(&bytes))));
            }
            other => panic!("expected BadDigest, got {other:?}"),
        }
    }

    #[test]
    fn begin_validates_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let base = request_for("ok", &payload(100, 8));
        let cases: Vec<(&str, BeginRequest)> = vec![
            (
                "transfer",
                BeginRequest {
                    transfer: "".into(),
                    ..base.clone()
                },
            ),
            (
                "transfer",
                BeginRequest {
                    transfer: "x".repeat(65),
                    ..base.clone()
                },
            ),
            (
                "transfer",
                BeginRequest {
                    transfer: "..".into(),
                    ..base.clone()
                },
            ),
            (
                "transfer",
                BeginRequest {
                    transfer: "a/b".into(),
                    ..base.clone()
                },
            ),
            (
                "transfer",
                BeginRequest {
                    transfer: "a.b".into(),
                    ..base.clone()
                },
            ),
            (
                "name",
                BeginRequest {
                    name: "".into(),
                    ..base.clone()
                },
            ),
            (
                "name",
                BeginRequest {
                    name: "a/b".into(),
                    ..base.clone()
                },
            ),
            (
                "name",
                BeginRequest {
                    name: "a+b".into(),
                    ..base.clone()
                },
            ),
            (
                "version",
                BeginRequest {
                    version: "1 0".into(),
                    ..base.clone()
                },
            ),
            (
                "sha256",
                BeginRequest {
                    sha256: "ab".into(),
                    ..base.clone()
                },
            ),
            (
                "sha256",
                BeginRequest {
                    sha256: "g".repeat(64),
                    ..base.clone()
                },
            ),
            (
                "chunk_size",
                BeginRequest {
                    chunk_size: MIN_CHUNK_SIZE - 1,
                    ..base.clone()
                },
            ),
            (
                "chunk_size",
                BeginRequest {
                    chunk_size: MAX_CHUNK_SIZE + 1,
                    ..base.clone()
                },
            ),
            (
                "chunk_size",
                BeginRequest {
                    chunk_size: 0,
                    ..base.clone()
                },
            ),
            (
                "size",
                BeginRequest {
                    size: 0,
                    ..base.clone()
                },
            ),
        ];
        for (expected_field, request) in cases {
            match store.begin(&request, &limits()) {
                Err(TransferError::BadRequest { field, .. }) => {
                    assert_eq!(field, expected_field, "{request:?}")
                }
                other => panic!("{request:?}: expected BadRequest, got {other:?}"),
            }
        }
        assert!(store.list().is_empty());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a refused begin left files"
        );
        let x = "x".repeat(64);
        store
            .begin(
                &BeginRequest {
                    transfer: x,
                    chunk_size: MAX_CHUNK_SIZE,
                    ..base
                },
                &limits(),
            )
            .unwrap();
    }

    #[test]
    fn size_over_the_limit_is_too_large() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let mut request = request_for("t", b"x");
        request.size = limits().max_bundle_bytes + 1;
        match store.begin(&request, &limits()) {
            Err(error @ TransferError::TooLarge { .. }) => assert_eq!(error.code(), "too_large"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        request.size = limits().max_bundle_bytes;
        store.begin(&request, &limits()).unwrap();
        assert_eq!(
            fs::metadata(dir.path().join("t").join(DATA_FILE))
                .unwrap()
                .len(),
            limits().max_bundle_bytes
        );
    }

    #[test]
    fn too_little_free_space_is_no_space() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let bytes = payload(4 * CHUNK as usize, 9);
        let request = request_for("t", &bytes);
        let needed = 2 * request.size + 1000;
        let tight = |available| TransferLimits {
            free_space_margin: 1000,
            free_space_override: Some(available),
            ..limits()
        };
        match store.begin(&request, &tight(needed - 1)) {
            Err(error @ TransferError::NoSpace(_)) => assert_eq!(error.code(), "no_space"),
            other => panic!("expected NoSpace, got {other:?}"),
        }
        assert!(!dir.path().join("t").exists());
        assert_eq!(store.begin(&request, &tight(needed)).unwrap(), []);
        // On resume, the chunks already on disk no longer need room.
        send(&store, "t", &bytes, [0, 1]);
        assert_eq!(
            store.begin(&request, &tight(needed - 2 * CHUNK)).unwrap(),
            [(0, 2)]
        );
        assert!(matches!(
            store.begin(&request, &tight(needed - 2 * CHUNK - 1)),
            Err(TransferError::NoSpace(_))
        ));
        // The real filesystem is asked when there is no override.
        let real = TransferLimits {
            free_space_override: None,
            free_space_margin: u64::MAX / 2,
            ..limits()
        };
        assert!(matches!(
            store.begin(
                &request_for("u", &bytes),
                &TransferLimits {
                    max_concurrent_transfers: 2,
                    ..real
                }
            ),
            Err(TransferError::NoSpace(_))
        ));
    }

    #[test]
    fn a_second_transfer_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let first = request_for("first", &payload(100, 10));
        let second = request_for("second", &payload(200, 11));
        store.begin(&first, &limits()).unwrap();
        match store.begin(&second, &limits()) {
            Err(error @ TransferError::Busy { .. }) => {
                assert_eq!(error.code(), "busy");
                assert!(error.to_string().contains("first"));
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        // Resuming the transfer in progress is not busy.
        store.begin(&first, &limits()).unwrap();
        let two = TransferLimits {
            max_concurrent_transfers: 2,
            ..limits()
        };
        store.begin(&second, &two).unwrap();
        assert_eq!(store.list().len(), 2);
        store.discard("first").unwrap();
        store.discard("second").unwrap();
        store.begin(&second, &limits()).unwrap();
    }

    /// A slot held by a transfer that makes no progress is not held forever: a `begin` for
    /// another archive takes it once the holder stalled (no new chunk for `stall_after`, whatever
    /// `begin`s or duplicate chunks came meanwhile) or is overdue (one chunk now and then, but
    /// slower than `min_bytes_per_s` overall). A progressing transfer keeps its slot.
    #[test]
    fn a_stalled_or_overdue_transfer_of_another_archive_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let held = payload(8 * CHUNK as usize, 20);
        let holder = request_for("holder", &held);
        let fresh = request_for("fresh", &payload(3 * CHUNK as usize, 21));
        let limits = TransferLimits {
            stall_after: Duration::from_secs(60),
            min_bytes_per_s: CHUNK,
            ..limits()
        };
        let t0 = SystemTime::now();
        store.begin_at(&holder, &limits, t0).unwrap();
        send(&store, "holder", &held, [0]);
        let at = |seconds| t0 + Duration::from_secs(seconds);
        // Progressing: busy. A replayed begin of the holder, or a duplicate chunk, is no progress.
        assert!(matches!(
            store.begin_at(&fresh, &limits, at(30)),
            Err(TransferError::Busy { .. })
        ));
        store.begin_at(&holder, &limits, at(59)).unwrap();
        send(&store, "holder", &held, [0]);
        // Nor does the same archive under another id while the holder has not stalled.
        let same_archive = BeginRequest {
            transfer: "replay".into(),
            ..holder.clone()
        };
        assert!(matches!(
            store.begin_at(&same_archive, &limits, at(59)),
            Err(TransferError::Busy { .. })
        ));
        // Stalled: taken over, its files gone.
        assert_eq!(store.begin_at(&fresh, &limits, at(61)).unwrap(), []);
        assert!(!dir.path().join("holder").exists());
        assert!(matches!(
            store.complete("holder"),
            Err(TransferError::UnknownTransfer(_))
        ));
        assert!(store.discard("fresh").unwrap());

        // A replayed begin of an archive under another id holds the slot no longer than any
        // other stalled transfer: the genuine push of the same archive takes it over.
        let t2 = SystemTime::now();
        store.begin_at(&same_archive, &limits, t2).unwrap();
        store
            .begin_at(&holder, &limits, t2 + Duration::from_secs(61))
            .unwrap();
        assert!(!dir.path().join("replay").exists());
        assert!(store.discard("holder").unwrap());

        // Overdue: 8 chunks at one chunk a second is 8 s, plus 60 s of grace; a chunk every 50 s
        // keeps it from stalling but not from being overdue.
        let t1 = SystemTime::now();
        store.begin_at(&holder, &limits, t1).unwrap();
        send(&store, "holder", &held, [1]);
        store.transfers()["holder"].state().last_progress = t1 + Duration::from_secs(50);
        assert!(matches!(
            store.begin_at(&fresh, &limits, t1 + Duration::from_secs(68)),
            Err(TransferError::Busy { .. })
        ));
        store
            .begin_at(&fresh, &limits, t1 + Duration::from_secs(69))
            .unwrap();
        assert_eq!(
            store
                .list()
                .into_iter()
                .map(|t| t.request.transfer)
                .collect::<Vec<_>>(),
            ["fresh"]
        );
    }

    #[test]
    fn idle_transfers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = payload(2 * CHUNK as usize, 12);
        {
            let store = TransferStore::open(dir.path()).unwrap();
            store.begin(&request_for("old", &bytes), &limits()).unwrap();
            send(&store, "old", &bytes, [0]);
            assert!(store.sweep(Duration::from_secs(3600)).is_empty());
        }
        // Age the files as if the transfer had been idle for two hours before a restart.
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        for file in [META_FILE, HELD_FILE] {
            File::options()
                .write(true)
                .open(dir.path().join("old").join(file))
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
        let store = TransferStore::open(dir.path()).unwrap();
        store
            .begin(
                &request_for("new", &bytes),
                &TransferLimits {
                    max_concurrent_transfers: 2,
                    ..limits()
                },
            )
            .unwrap();
        assert_eq!(store.sweep(Duration::from_secs(3600)), ["old"]);
        assert!(!dir.path().join("old").exists());
        let remaining: Vec<String> = store
            .list()
            .into_iter()
            .map(|t| t.request.transfer)
            .collect();
        assert_eq!(remaining, ["new"]);
    }

    #[test]
    fn concurrent_chunks_for_one_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::open(dir.path()).unwrap();
        let bytes = payload(64 * CHUNK as usize - 5, 13);
        store.begin(&request_for("t", &bytes), &limits()).unwrap();
        std::thread::scope(|scope| {
            for worker in 0..8u64 {
                let (store, bytes) = (&store, &bytes);
                scope.spawn(move || {
                    // Each worker sends every chunk, in its own order, so duplicates race.
                    for step in 0..64u64 {
                        let seq = (step * 7 + worker * 13) % 64;
                        store.write_chunk("t", seq, chunk(bytes, seq)).unwrap();
                    }
                });
            }
        });
        assert_eq!(held_file_len(&store, "t"), 64 * HELD_RECORD_LEN);
        assert_eq!(fs::read(store.complete("t").unwrap().path).unwrap(), bytes);
    }

    #[test]
    fn begin_payload_parses_with_extra_fields() {
        let payload = br#"{"v": 1, "id": "r1", "reply_to": "x/y", "transfer": "t1",
            "name": "packd-default", "version": "1.0.0", "size": 10, "sha256": "00",
            "chunk_size": 4096}"#;
        let request: BeginRequest = serde_json::from_slice(payload).unwrap();
        assert_eq!(request.transfer, "t1");
        assert_eq!((request.signature, request.key_id), (None, None));
        let digest = request_for("t", b"abc").digest().unwrap();
        assert_eq!(hex::encode(digest), hex::encode(Sha256::digest(b"abc")));
    }

    /// Unmounts the tmpfs when the test ends, however it ends.
    struct Mounted(PathBuf);

    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }

    #[test]
    fn a_full_disk_during_write_chunk_is_no_space() {
        let dir = tempfile::tempdir().unwrap();
        let mount_point = dir.path().join("small");
        fs::create_dir(&mount_point).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&mount_point)
            .output();
        match mounted {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                println!(
                    "skipped: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                return;
            }
            Err(error) => {
                println!("skipped: cannot run mount ({error})");
                return;
            }
        }
        let _unmount = Mounted(mount_point.clone());

        let store = TransferStore::open(&mount_point.join(".transfers")).unwrap();
        let bytes = payload(2 * 1024 * 1024, 14);
        let request = BeginRequest {
            chunk_size: 64 * 1024,
            ..request_for("big", &bytes)
        };
        // The real free-space check refuses this begin outright...
        let real = TransferLimits {
            max_bundle_bytes: 4 << 20,
            free_space_override: None,
            ..limits()
        };
        assert!(matches!(
            store.begin(&request, &real),
            Err(TransferError::NoSpace(_))
        ));
        // ...so pretend there is room, and let the disk itself run out.
        let lying = TransferLimits {
            free_space_override: Some(u64::MAX),
            ..real
        };
        store.begin(&request, &lying).unwrap();
        let mut first_failure = None;
        for seq in 0..request.chunk_count() {
            let start = (seq * request.chunk_size) as usize;
            let piece = &bytes[start..start + request.chunk_size as usize];
            if let Err(error) = store.write_chunk("big", seq, piece) {
                first_failure = Some((seq, error));
                break;
            }
        }
        let (failed_seq, error) = first_failure.expect("a 2 MiB transfer cannot fit in 1 MiB");
        assert!(matches!(error, TransferError::NoSpace(_)), "{error:?}");
        assert_eq!(error.code(), "no_space");
        assert!(
            failed_seq > 0 && failed_seq < 16,
            "failed at chunk {failed_seq}"
        );
        // The chunk that did not fit is not recorded as held.
        assert_eq!(store.held("big").unwrap(), [(0, failed_seq)]);
        assert!(store.discard("big").unwrap());
    }
}
