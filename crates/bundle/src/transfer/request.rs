//! What a `begin` asks for, and the bounds it is checked against.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::TransferError;

/// Smallest chunk a sender may use: `chunk_size` is not signed, so this bounds the messages a
/// replayed `begin` can make a transfer need (a 1 GiB archive in 65 536 chunks at most).
pub const MIN_CHUNK_SIZE: u64 = 16 * 1024;
/// Largest chunk a sender may use (one MQTT message).
pub const MAX_CHUNK_SIZE: u64 = 4 * 1024 * 1024;
/// Longest transfer id.
pub(crate) const MAX_TRANSFER_ID_LEN: usize = 64;
/// Most chunks one transfer may have (256 GiB at the smallest chunk size).
pub(crate) const MAX_CHUNKS: u64 = 1 << 24;

/// Longest bundle name or version: they end up in a directory name (`name@version`).
const MAX_LABEL_PART_LEN: usize = 120;

/// The payload of a `begin` command (unknown fields such as `v` or `reply_to` are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginRequest {
    /// The sender's id for this transfer (a folder name under `.transfers`).
    pub transfer: String,
    /// The bundle's name.
    pub name: String,
    /// The bundle's version.
    pub version: String,
    /// The archive's length in bytes.
    pub size: u64,
    /// The archive's SHA-256 in hex.
    pub sha256: String,
    /// Bytes per chunk (the last may be short).
    pub chunk_size: u64,
    /// Ed25519 signature of the statement, base64.
    #[serde(default)]
    pub signature: Option<String>,
    /// Id of the key that made `signature`.
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
    pub(crate) fn chunk_len(&self, seq: u64) -> Option<u64> {
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
    pub(super) fn validated(&self, limits: &TransferLimits) -> Result<BeginRequest, TransferError> {
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
