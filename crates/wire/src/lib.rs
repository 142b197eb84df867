//! packd's MQTT contract as types (`../shared/spec/mqtt-api.md`): topic names, the brief reply
//! and the error body, the bundle commands' payloads and replies, every error code as an enum
//! that serialises to the contract's string.
//!
//! packd, packctl and the tests all use these types, so a change to the contract is a change
//! here, seen by every side at compile time.

pub mod brief;
pub mod bundle;
pub mod reply;
pub mod state;
pub mod topics;

pub use brief::BriefRequest;
pub use bundle::{BundleErrorCode, BundleReply};
pub use reply::{ApiError, BriefAnswer, ErrorCode, ReadVia, Understood, API_VERSION};
pub use topics::Topics;
