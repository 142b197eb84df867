//! Replies as the MQTT API defines them: the success body of a brief and the error body shared by
//! every request.

use serde::{de, Deserialize, Deserializer, Serialize};

/// The API version this service speaks.
pub const API_VERSION: u32 = 1;

/// The error codes of the API contract; every failure a client sees is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnsupportedVersion,
    TooLarge,
    BadImage,
    Overloaded,
    Expired,
    NoModel,
    Internal,
}

impl ErrorCode {
    /// Every code, in the order the contract lists them (stats report them in this order).
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::BadRequest,
        ErrorCode::UnsupportedVersion,
        ErrorCode::TooLarge,
        ErrorCode::BadImage,
        ErrorCode::Overloaded,
        ErrorCode::Expired,
        ErrorCode::NoModel,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BadImage => "bad_image",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Expired => "expired",
            ErrorCode::NoModel => "no_model",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A failure as the client sees it: a code, a sentence, and the field at fault when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error that concerns the request as a whole.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// An error caused by one field of the request.
    pub fn for_field(code: ErrorCode, field: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: Some(field.to_string()),
        }
    }
}

/// The `status` of a brief reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyStatus {
    Ok,
    Error,
}

/// The error reply body (to a brief; bundle commands have their own, see
/// [`crate::bundle::BundleErrorReply`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: ReplyStatus,
    pub error: ApiError,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Serialises an error reply; `retry_after_ms` accompanies `overloaded`.
pub fn error_body(id: Option<&str>, error: &ApiError, retry_after_ms: Option<u64>) -> Vec<u8> {
    let reply = ErrorReply {
        v: API_VERSION,
        id: id.map(str::to_string),
        status: ReplyStatus::Error,
        error: error.clone(),
        retry_after_ms,
    };
    serde_json::to_vec(&reply).unwrap_or_else(|_| br#"{"v":1,"status":"error","error":{"code":"internal","message":"reply serialisation failed"}}"#.to_vec())
}

/// Name and version of the bundle that produced a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRef {
    pub name: String,
    pub version: String,
}

/// Where the time of one brief went, in microseconds since it was read off the socket.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Timing {
    pub queue: u64,
    pub decode: u64,
    pub infer: u64,
    pub post: u64,
    pub total: u64,
}

/// One scored style.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StyleSuggestion {
    pub style: String,
    pub name_zh: String,
    pub score: f32,
}

/// Colour roles of a palette.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaletteRoles {
    pub background: String,
    pub primary: String,
    pub accent: String,
    pub text: String,
}

/// One scored palette, with its roles already adjusted to the brand colours and to WCAG contrast.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaletteSuggestion {
    pub name: String,
    pub name_zh: String,
    pub colors: Vec<String>,
    pub roles: PaletteRoles,
    pub contrast: f32,
    pub score: f32,
}

/// One scored font pairing; the CJK families are for Chinese copy on the same pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FontSuggestion {
    pub heading: String,
    pub body: String,
    pub heading_cjk: String,
    pub body_cjk: String,
    pub score: f32,
}

/// A normalised box on the front panel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// Heatmaps of where each element belongs, and the boxes derived from them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layout {
    pub grid: [usize; 2],
    pub heatmaps: LayoutMaps<Vec<f32>>,
    pub zones: LayoutMaps<Zone>,
}

/// One value per layout element.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayoutMaps<T> {
    pub logo: T,
    pub product: T,
    pub text: T,
}

/// The success reply to a brief.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BriefReply {
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: ReplyStatus,
    pub device: String,
    pub bundle: BundleRef,
    pub backend: String,
    pub timing_us: Timing,
    pub styles: Vec<StyleSuggestion>,
    pub palettes: Vec<PaletteSuggestion>,
    pub fonts: Vec<FontSuggestion>,
    pub layout: Layout,
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_png: Option<String>,
}

/// Any reply to a brief, told apart by its `status` when read.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BriefAnswer {
    Ok(Box<BriefReply>),
    Error(ErrorReply),
}

impl<'de> Deserialize<'de> for BriefAnswer {
    /// Reads the `status` first, then the shape that status promises.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let status = match value.get("status") {
            Some(status) => ReplyStatus::deserialize(status).map_err(de::Error::custom)?,
            None => return Err(de::Error::missing_field("status")),
        };
        match status {
            ReplyStatus::Ok => serde_json::from_value(value).map(BriefAnswer::Ok),
            ReplyStatus::Error => serde_json::from_value(value).map(BriefAnswer::Error),
        }
        .map_err(de::Error::custom)
    }
}

/// The `f64` a JSON reader gets for an `f32` this contract wrote: the shortest decimal that
/// reads back as the `f32`, read as `f64`. Formatting the plain widened `f32` instead can round
/// differently (0.845 is 0.84500003 as `f32`, 0.84499999 as read from "0.845").
pub fn as_read(value: f32) -> f64 {
    serde_json::to_string(&value)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(f64::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_contract_shape() {
        let error = ApiError::for_field(
            ErrorCode::BadRequest,
            "product",
            "field 'product' is required",
        );
        let body: serde_json::Value =
            serde_json::from_slice(&error_body(Some("k-1"), &error, None)).unwrap();
        assert_eq!(body["v"], 1);
        assert_eq!(body["id"], "k-1");
        assert_eq!(body["status"], "error");
        assert_eq!(body["error"]["code"], "bad_request");
        assert_eq!(body["error"]["field"], "product");
        assert!(body.get("retry_after_ms").is_none());
    }

    #[test]
    fn overloaded_carries_retry_after() {
        let error = ApiError::new(ErrorCode::Overloaded, "queue full");
        let body: serde_json::Value =
            serde_json::from_slice(&error_body(None, &error, Some(120))).unwrap();
        assert_eq!(body["retry_after_ms"], 120);
        assert!(body.get("id").is_none());
        assert!(body["error"].get("field").is_none());
    }

    #[test]
    fn error_bodies_keep_their_bytes() {
        // As packd wrote them before the reply was typed for reading too.
        let error = ApiError::for_field(ErrorCode::BadRequest, "product", "m");
        assert_eq!(
            error_body(Some("k-1"), &error, None),
            br#"{"v":1,"id":"k-1","status":"error","error":{"code":"bad_request","message":"m","field":"product"}}"#
        );
        let error = ApiError::new(ErrorCode::Overloaded, "full");
        let body = error_body(None, &error, Some(120));
        assert_eq!(
            body,
            br#"{"v":1,"status":"error","error":{"code":"overloaded","message":"full"},"retry_after_ms":120}"#
        );
        match serde_json::from_slice::<BriefAnswer>(&body).unwrap() {
            BriefAnswer::Error(reply) => {
                assert_eq!(reply.error, error);
                assert_eq!(reply.retry_after_ms, Some(120));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn floats_read_as_a_json_reader_reads_them() {
        assert_eq!(as_read(0.845), 0.845_f64);
        assert_eq!(format!("{:.2}", as_read(0.845)), "0.84");
        assert_eq!(as_read(1.0), 1.0);
    }

    #[test]
    fn codes_serialise_as_their_wire_names() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
