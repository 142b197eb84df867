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
    BadRequest,
    BadSignature,
    UnknownKey,
    TooLarge,
    NoSpace,
    Busy,
    Downgrade,
    MissingChunks,
    BadDigest,
    InvalidBundle,
    Incompatible,
    SelftestFailed,
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
    pub transfer: String,
    pub name: String,
    pub version: String,
    pub size: u64,
    pub sha256: String,
    pub chunk_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Signed with the downgrade flag; absent means false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_downgrade: bool,
}

/// The payload of `commit`: install the transfer's archive, and activate it unless told not to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    #[serde(default = "default_true")]
    pub activate: bool,
    pub transfer: String,
}

/// The payload of `abort`: drop a transfer and the chunks it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    pub transfer: String,
}

/// The payload of `activate` and `remove`: one installed bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleName {
    pub name: String,
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
    pub device: String,
    pub id: Option<String>,
}

/// Reply to `begin`: the transfer is open, `have` lists the chunk ranges already held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyReply {
    pub device: String,
    pub have: Vec<ChunkRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: BundleStatus,
    pub transfer: String,
    pub v: u32,
}

/// Reply to `commit`, `activate` and `rollback`: the bundle installed or activated, and the one
/// it replaced (`null` when it replaced none, and always after an install without activation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationReply {
    pub bundle: BundleRef,
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub previous: Option<BundleRef>,
    pub status: BundleStatus,
    pub v: u32,
}

/// One installed bundle in a `list` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledEntry {
    /// RFC 3339, seconds.
    pub installed_at: String,
    pub name: String,
    pub size: u64,
    /// Where it can run: `cpu`, and each TensorRT engine's target.
    pub targets: Vec<String>,
    pub version: String,
}

/// Reply to `list`: the active bundle (`null` without one) and every installed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReply {
    pub active: Option<BundleRef>,
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub installed: Vec<InstalledEntry>,
    pub status: BundleStatus,
    pub v: u32,
}

/// Reply to `remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedReply {
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: BundleStatus,
    pub v: u32,
}

/// Reply to `abort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedReply {
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: BundleStatus,
    pub transfer: String,
    pub v: u32,
}

/// The `error` object of a refused command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    /// Which check failed, for `invalid_bundle` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<InvalidCheck>,
    pub code: BundleErrorCode,
    pub message: String,
}

/// A refused command; `missing` (top level) accompanies `missing_chunks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleErrorReply {
    pub device: String,
    pub error: CommandError,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<ChunkRange>>,
    pub status: BundleStatus,
    pub v: u32,
}

/// Any bundle-command reply, told apart by its `status` when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum BundleReply {
    Ready(ReadyReply),
    Activation(ActivationReply),
    List(ListReply),
    Removed(RemovedReply),
    Aborted(AbortedReply),
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
