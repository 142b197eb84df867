//! Bundle commands as the MQTT API defines them (`{prefix}/…/bundles/{command}`): the JSON
//! payloads fleet tools send, the replies each appliance sends back, and every bundle error code.
//!
//! Replies declare their fields in alphabetical order: packd built them as `serde_json` objects
//! (sorted keys) before they were typed, and the bytes on the wire stay what they were.

use serde::{de, Deserialize, Deserializer, Serialize};

use crate::reply::BundleRef;

/// A half-open range of chunk numbers, `[start, end)`, as replies carry it.
pub type ChunkRange = [u64; 2];

/// The error codes of bundle commands; every refusal a fleet tool sees is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleErrorCode {
    /// `bad_request`: the payload is not the command's JSON shape, or names an unknown transfer.
    BadRequest,
    /// `bad_signature`: the Ed25519 signature does not verify against the archive's SHA-256.
    BadSignature,
    /// `unknown_key`: `key_id` names no key in `bundles.trusted_keys`.
    UnknownKey,
    /// `too_large`: the announced size, or a file in the archive, is over its limit.
    TooLarge,
    /// `no_space`: the bundles directory has no room for the archive.
    NoSpace,
    /// `busy`: another transfer holds the slot and has not stalled.
    Busy,
    /// `downgrade`: below the highest version activated here, and not signed to allow it.
    Downgrade,
    /// `missing_chunks`: `commit` came before every chunk; the reply's `missing` lists the ranges.
    MissingChunks,
    /// `bad_digest`: the assembled archive's SHA-256 differs from the one `begin` announced.
    BadDigest,
    /// `invalid_bundle`: the archive failed a check; `error.check` says which.
    InvalidBundle,
    /// `incompatible`: an engine was built for another TensorRT, compute capability or DLA core.
    Incompatible,
    /// `selftest_failed`: the bundle's self-test vectors did not reproduce on this appliance.
    SelftestFailed,
    /// `internal`: anything else; the previous bundle stays active.
    Internal,
}

impl BundleErrorCode {
    /// Every code: `begin`'s in the contract's order, then `commit`'s, then `internal`.
    pub const ALL: [BundleErrorCode; 13] = [
        BundleErrorCode::BadSignature,
        BundleErrorCode::UnknownKey,
        BundleErrorCode::TooLarge,
        BundleErrorCode::NoSpace,
        BundleErrorCode::Busy,
        BundleErrorCode::BadRequest,
        BundleErrorCode::Downgrade,
        BundleErrorCode::MissingChunks,
        BundleErrorCode::BadDigest,
        BundleErrorCode::InvalidBundle,
        BundleErrorCode::Incompatible,
        BundleErrorCode::SelftestFailed,
        BundleErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleErrorCode::BadRequest => "bad_request",
            BundleErrorCode::BadSignature => "bad_signature",
            BundleErrorCode::UnknownKey => "unknown_key",
            BundleErrorCode::TooLarge => "too_large",
            BundleErrorCode::NoSpace => "no_space",
            BundleErrorCode::Busy => "busy",
            BundleErrorCode::Downgrade => "downgrade",
            BundleErrorCode::MissingChunks => "missing_chunks",
            BundleErrorCode::BadDigest => "bad_digest",
            BundleErrorCode::InvalidBundle => "invalid_bundle",
            BundleErrorCode::Incompatible => "incompatible",
            BundleErrorCode::SelftestFailed => "selftest_failed",
            BundleErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for BundleErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the contract's bundle error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a bundle error code")]
pub struct UnknownCode(pub String);

impl std::str::FromStr for BundleErrorCode {
    type Err = UnknownCode;

    /// The code whose wire name is `text` (the bundle crate names its codes as strings, since
    /// it does not depend on this one).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        BundleErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
            .ok_or_else(|| UnknownCode(text.to_string()))
    }
}

/// Which check found a bundle invalid (`error.check` of an `invalid_bundle`): a fleet manager
/// tells a broken build (`manifest`, `content`) from a corrupted or tampered one (`file_hash`,
/// `archive`) without parsing prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

fn is_false(value: &bool) -> bool {
    !*value
}

fn default_true() -> bool {
    true
}

/// The payload of `begin`: the archive a transfer will carry. Unknown fields (`v`,
/// `reply_to`) are ignored. Fields are declared in the order packd has always read them, so a
/// payload missing several still names `transfer` first; clients that want the historical key
/// order send it through a `serde_json::Value` (sorted keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Begin {
    /// Client-chosen transfer id; `chunk/{transfer}/{seq}` and `commit` name it.
    pub transfer: String,
    /// The bundle's name, as its manifest states it.
    pub name: String,
    /// The bundle's version (semver), as its manifest states it; checked against downgrades.
    pub version: String,
    /// Size of the whole archive in bytes.
    pub size: u64,
    /// SHA-256 of the whole archive in hex; `commit` checks the assembled bytes against it.
    pub sha256: String,
    /// Bytes per chunk; every chunk but the last has exactly this size.
    pub chunk_size: u64,
    /// Base64 Ed25519 signature over the archive's SHA-256; absent only for unsigned bundles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Which trusted key made `signature` (first 16 hex digits of its SHA-256); absent if unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Signed with the downgrade flag; absent means false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_downgrade: bool,
}

/// The payload of `commit`: install the transfer's archive, and activate it unless told not to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Activate the bundle once installed; absent means true.
    #[serde(default = "default_true")]
    pub activate: bool,
    /// The transfer opened by `begin`.
    pub transfer: String,
}

/// The payload of `abort`: drop a transfer and the chunks it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    /// The transfer to drop.
    pub transfer: String,
}

/// The payload of `activate` and `remove`: one installed bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleName {
    /// The installed bundle's name.
    pub name: String,
    /// The installed bundle's version.
    pub version: String,
}

/// The payload of `list` and `rollback`: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoArguments {}

/// The `status` of a bundle reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleStatus {
    /// `begin` opened the transfer.
    Ready,
    /// `commit` without activation installed the bundle.
    Installed,
    /// `commit`, `activate` or `rollback` made the bundle the serving one.
    Activated,
    /// `list`.
    Ok,
    /// `remove`.
    Removed,
    /// `abort`.
    Aborted,
    /// Refused: see `error`.
    Error,
}

impl BundleStatus {
    /// The status as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleStatus::Ready => "ready",
            BundleStatus::Installed => "installed",
            BundleStatus::Activated => "activated",
            BundleStatus::Ok => "ok",
            BundleStatus::Removed => "removed",
            BundleStatus::Aborted => "aborted",
            BundleStatus::Error => "error",
        }
    }
}

/// Who answers and to which request: the appliance's id and the request's `id`, if it had one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The answering appliance's id (`device.id`).
    pub device: String,
    /// The request's `id`, echoed; `None` when it had none.
    pub id: Option<String>,
}

/// Reply to `begin`: the transfer is open, `have` lists the chunk ranges already held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyReply {
    /// The answering appliance's id (`device.id`).
    pub device: String,
    /// Chunk ranges already held from an earlier attempt, so the sender resumes, not restarts.
    pub have: Vec<ChunkRange>,
    /// The request's `id`, echoed; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `status`: always `ready`.
    pub status: BundleStatus,
    /// The transfer id from `begin`.
    pub transfer: String,
    /// `v`: the API version, always [`crate::API_VERSION`].
    pub v: u32,
}

/// Reply to `commit`, `activate` and `rollback`: the bundle installed or activated, and the one
/// it replaced (`null` when it replaced none, and always after an install without activation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationReply {
    /// The bundle now installed or active.
    pub bundle: BundleRef,
    /// The answering appliance's id (`device.id`).
    pub device: String,
    /// The request's `id`, echoed; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The bundle that was active before; `null` when there was none or nothing was activated.
    pub previous: Option<BundleRef>,
    /// `status`: `installed` or `activated`.
    pub status: BundleStatus,
    /// `v`: the API version, always [`crate::API_VERSION`].
    pub v: u32,
}

/// One installed bundle in a `list` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledEntry {
    /// RFC 3339, seconds.
    pub installed_at: String,
    /// The bundle's name.
    pub name: String,
    /// The archive's size in bytes.
    pub size: u64,
    /// Where it can run: `cpu`, and each TensorRT engine's target.
    pub targets: Vec<String>,
    /// The bundle's version (semver).
    pub version: String,
}

/// Reply to `list`: the active bundle (`null` without one) and every installed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReply {
    /// The serving bundle; `null` when none is active.
    pub active: Option<BundleRef>,
    /// The answering appliance's id (`device.id`).
    pub device: String,
    /// The request's `id`, echoed; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Every installed bundle, the active one included.
    pub installed: Vec<InstalledEntry>,
    /// `status`: always `ok`.
    pub status: BundleStatus,
    /// `v`: the API version, always [`crate::API_VERSION`].
    pub v: u32,
}

/// Reply to `remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedReply {
    /// The answering appliance's id (`device.id`).
    pub device: String,
    /// The request's `id`, echoed; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `status`: always `removed`.
    pub status: BundleStatus,
    /// `v`: the API version, always [`crate::API_VERSION`].
    pub v: u32,
}

/// Reply to `abort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedReply {
    /// The answering appliance's id (`device.id`).
    pub device: String,
    /// The request's `id`, echoed; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `status`: always `aborted`.
    pub status: BundleStatus,
    /// The transfer that was dropped.
    pub transfer: String,
    /// `v`: the API version, always [`crate::API_VERSION`].
    pub v: u32,
}

/// The `error` object of a refused command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    /// Which check failed, for `invalid_bundle` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<InvalidCheck>,
    /// What kind of refusal it is; fleet tools branch on this, not on `message`.
    pub code: BundleErrorCode,
    /// A sentence for people saying what went wrong.
    pub message: String,
}

/// A refused command; `missing` (top level) accompanies `missing_chunks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleErrorReply {
    /// The answering appliance's id (`device.id`).
    pub device: String,
    /// What was refused and why.
    pub error: CommandError,
    /// The request's `id`, echoed; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// With `missing_chunks` only: the chunk ranges `commit` still lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<ChunkRange>>,
    /// `status`: always `error`.
    pub status: BundleStatus,
    /// `v`: the API version, always [`crate::API_VERSION`].
    pub v: u32,
}

/// Any bundle-command reply, told apart by its `status` when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum BundleReply {
    /// `status` `ready`: reply to `begin`.
    Ready(ReadyReply),
    /// `status` `installed` or `activated`: reply to `commit`, `activate` or `rollback`.
    Activation(ActivationReply),
    /// `status` `ok`: reply to `list`.
    List(ListReply),
    /// `status` `removed`: reply to `remove`.
    Removed(RemovedReply),
    /// `status` `aborted`: reply to `abort`.
    Aborted(AbortedReply),
    /// `status` `error`: a refused command.
    Error(BundleErrorReply),
}

impl BundleReply {
    /// The reply's `status`.
    pub fn status(&self) -> BundleStatus {
        match self {
            BundleReply::Ready(reply) => reply.status,
            BundleReply::Activation(reply) => reply.status,
            BundleReply::List(reply) => reply.status,
            BundleReply::Removed(reply) => reply.status,
            BundleReply::Aborted(reply) => reply.status,
            BundleReply::Error(reply) => reply.status,
        }
    }

    /// The appliance that answered.
    pub fn device(&self) -> &str {
        match self {
            BundleReply::Ready(reply) => &reply.device,
            BundleReply::Activation(reply) => &reply.device,
            BundleReply::List(reply) => &reply.device,
            BundleReply::Removed(reply) => &reply.device,
            BundleReply::Aborted(reply) => &reply.device,
            BundleReply::Error(reply) => &reply.device,
        }
    }

    /// The refusal, when the command was refused.
    pub fn error(&self) -> Option<&BundleErrorReply> {
        match self {
            BundleReply::Error(reply) => Some(reply),
            _ => None,
        }
    }

    /// The error code, when the command was refused.
    pub fn error_code(&self) -> Option<BundleErrorCode> {
        self.error().map(|reply| reply.error.code)
    }
}

impl<'de> Deserialize<'de> for BundleReply {
    /// Reads the `status` first, then the shape that status promises, so a malformed reply is
    /// reported against its own shape rather than as "no variant matched".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let status = match value.get("status") {
            Some(status) => BundleStatus::deserialize(status).map_err(de::Error::custom)?,
            None => return Err(de::Error::missing_field("status")),
        };
        let reply = match status {
            BundleStatus::Ready => serde_json::from_value(value).map(BundleReply::Ready),
            BundleStatus::Installed | BundleStatus::Activated => {
                serde_json::from_value(value).map(BundleReply::Activation)
            }
            BundleStatus::Ok => serde_json::from_value(value).map(BundleReply::List),
            BundleStatus::Removed => serde_json::from_value(value).map(BundleReply::Removed),
            BundleStatus::Aborted => serde_json::from_value(value).map(BundleReply::Aborted),
            BundleStatus::Error => serde_json::from_value(value).map(BundleReply::Error),
        };
        reply.map_err(de::Error::custom)
    }
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;
