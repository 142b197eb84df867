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
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::durable::{self, FsError};
use journal::{create_transfer, load_transfer, DATA_FILE};
#[cfg(test)]
use journal::{HELD_FILE, HELD_RECORD_LEN, META_FILE};

mod journal;
mod request;

use request::MAX_TRANSFER_ID_LEN;
pub use request::{
    is_valid_bundle_name, is_valid_transfer_id, BeginRequest, TransferLimits, MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
};

/// Why a transfer request cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A field of the request is invalid.
    #[error("{field}: {message}")]
    BadRequest {
        /// The field's name in the request.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No transfer has this id.
    #[error("no transfer '{0}' is in progress")]
    UnknownTransfer(String),
    /// The archive is over the size limit.
    #[error("the bundle is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The archive's announced size.
        size: u64,
        /// The limit it is over.
        limit: u64,
    },
    /// The disk cannot hold the archive and its unpacked copy.
    #[error("not enough free space: {0}")]
    NoSpace(String),
    /// Every slot is held by a transfer that may not be taken over.
    #[error("transfer '{active}' is in progress; one at a time (a transfer of another archive may take its place once it goes {} s without a new chunk)", stall_after.as_secs())]
    Busy {
        /// The transfer holding the slot.
        active: String,
        /// How long it may go without a new chunk before it can be taken over.
        stall_after: Duration,
    },
    /// `commit` came before every chunk (half-open ranges of the missing ones).
    #[error("chunks are missing: {0:?}")]
    MissingChunks(Vec<(u64, u64)>),
    /// The received archive is not the one `begin` announced.
    #[error("the received archive's SHA-256 is {found}, but begin announced {expected}")]
    BadDigest {
        /// The SHA-256 `begin` announced.
        expected: String,
        /// The SHA-256 of what arrived.
        found: String,
    },
    /// Reading or writing a transfer's files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's answer.
        source: io::Error,
    },
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

impl From<FsError> for TransferError {
    fn from(error: FsError) -> TransferError {
        TransferError::io(&error.path, error.source)
    }
}

/// A transfer whose chunks are all held and whose digest matches `begin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedTransfer {
    /// The received archive; it stays valid until the transfer is discarded.
    pub path: PathBuf,
    /// The `begin` it answers.
    pub request: BeginRequest,
}

/// One transfer as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSummary {
    /// The transfer's `begin`.
    pub request: BeginRequest,
    /// Chunks received so far.
    pub held_chunks: u64,
    /// Chunks in all.
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
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
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
            return self.resume(&transfers, existing, &request, limits, now);
        }
        self.make_room(&mut transfers, &request, limits, now)?;
        let transfer = self.create(&request, now)?;
        transfers.insert(request.transfer.clone(), Arc::new(transfer));
        Ok(Vec::new())
    }

    /// A `begin` replayed for a transfer in progress: same parameters, and room still for what
    /// it lacks. Answers the chunk ranges already held.
    fn resume(
        &self,
        transfers: &BTreeMap<String, Arc<Transfer>>,
        existing: &Transfer,
        request: &BeginRequest,
        limits: &TransferLimits,
        now: SystemTime,
    ) -> Result<Vec<(u64, u64)>, TransferError> {
        if existing.request != *request {
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
        Ok(existing.held_ranges())
    }

    /// Finds a slot and the space for a new transfer: `busy` when every slot is held by one
    /// that may not be taken over, `no_space` when the disk cannot hold it; the transfer taken
    /// over, if any, is discarded only once both checks pass.
    fn make_room(
        &self,
        transfers: &mut BTreeMap<String, Arc<Transfer>>,
        request: &BeginRequest,
        limits: &TransferLimits,
        now: SystemTime,
    ) -> Result<(), TransferError> {
        let mut displaced = None;
        if transfers.len() >= limits.max_concurrent_transfers.max(1) {
            let (victim, reason) =
                takeover_candidate(transfers, request, limits, now).ok_or_else(|| {
                    TransferError::Busy {
                        active: transfers.keys().next().cloned().unwrap_or_default(),
                        stall_after: limits.stall_after,
                    }
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
        Ok(())
    }

    /// Creates a new transfer's folder and files; on failure, removes what it created.
    fn create(&self, request: &BeginRequest, now: SystemTime) -> Result<Transfer, TransferError> {
        let path = self.dir.join(&request.transfer);
        // create_dir refuses a directory made behind our back (open cleared our own leftovers),
        // and only what this call created is removed on failure.
        fs::create_dir(&path).map_err(|e| TransferError::io(&path, e))?;
        let created = create_transfer(&path, request, now).and_then(|transfer| {
            durable::sync_dir(&self.dir)?;
            Ok(transfer)
        });
        if created.is_err() {
            let _ = fs::remove_dir_all(&path);
        }
        created
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
        transfer.write_data(seq, bytes)?;

        let mut state = transfer.state();
        if state.held.get(index).copied().unwrap_or(false) {
            return Ok(());
        }
        state.record_held(&transfer.dir, seq)?;
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
        let found = durable::sha256_hex_of_file(&path).map_err(|e| TransferError::io(&path, e))?;
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

/// An id as echoed in an error: bounded, since an unknown id comes straight off the wire.
fn truncated(id: &str) -> String {
    id.chars().take(MAX_TRANSFER_ID_LEN).collect()
}

#[cfg(test)]
mod tests;
