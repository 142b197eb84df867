//! One appliance's answer to a bundle command as packctl keeps it: the reply as the appliance
//! sent it (what `--json` prints, unknown fields and all) and as the API's types read it, or
//! packctl's own verdict when no usable reply came.

use packd_wire::bundle::{BundleReply, BundleStatus};
use serde_json::{json, Value};

/// How one appliance's part in a command ended.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// The appliance replied as the API says.
    Reply { raw: Value, reply: BundleReply },
    /// A JSON object that is not a reply the API defines, kept as sent.
    Unreadable { raw: Value, why: String },
    /// No usable reply: packctl's own verdict (`no_reply`, `incomplete`, `bad_reply`, or
    /// `missing_chunks` once the resends are spent), printed like an error reply. `device` is
    /// `None` when the reply could not even say who sent it.
    Verdict {
        device: Option<String>,
        code: &'static str,
        message: String,
    },
}

impl Answer {
    /// Reads a reply payload.
    pub(crate) fn from_payload(payload: &[u8]) -> Answer {
        let raw = match serde_json::from_slice::<Value>(payload) {
            Ok(raw) if raw.is_object() => raw,
            Ok(_) | Err(_) => {
                return Answer::Verdict {
                    device: None,
                    code: "bad_reply",
                    message: format!("the reply is not a JSON object ({} bytes)", payload.len()),
                }
            }
        };
        match serde_json::from_value::<BundleReply>(raw.clone()) {
            Ok(reply) => Answer::Reply { raw, reply },
            Err(error) => Answer::Unreadable {
                raw,
                why: error.to_string(),
            },
        }
    }

    /// packctl's verdict on `device`.
    pub(crate) fn verdict(device: &str, code: &'static str, message: impl Into<String>) -> Answer {
        Answer::Verdict {
            device: Some(device.to_string()),
            code,
            message: message.into(),
        }
    }

    /// The device the answer names, if any.
    pub(crate) fn device(&self) -> Option<&str> {
        match self {
            Answer::Reply { reply, .. } => Some(reply.device()),
            Answer::Unreadable { raw, .. } => raw["device"].as_str(),
            Answer::Verdict { device, .. } => device.as_deref(),
        }
    }

    /// The typed reply, when there is one.
    pub(crate) fn reply(&self) -> Option<&BundleReply> {
        match self {
            Answer::Reply { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// Whether the command failed here (the exit status says so).
    pub(crate) fn failed(&self) -> bool {
        match self {
            Answer::Reply { reply, .. } => reply.status() == BundleStatus::Error,
            Answer::Unreadable { raw, .. } => raw["status"] == "error",
            Answer::Verdict { .. } => true,
        }
    }

    /// The answer as `--json` prints it: the reply as sent, or the verdict shaped like an
    /// appliance's error reply.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Answer::Reply { raw, .. } | Answer::Unreadable { raw, .. } => raw.clone(),
            Answer::Verdict {
                device: Some(device),
                code,
                message,
            } => json!({"v": 1, "device": device, "status": "error",
                        "error": {"code": code, "message": message}}),
            Answer::Verdict {
                device: None,
                code,
                message,
            } => json!({"status": "error", "error": {"code": code, "message": message}}),
        }
    }
}
