//! Replies as the MQTT API defines them: the success body of a brief and the error body shared by
//! every request.

use serde::{de, Deserialize, Deserializer, Serialize};

/// The API version this service speaks.
pub const API_VERSION: u32 = 1;

/// The error codes of the API contract; every failure a client sees is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `bad_request`: not a JSON object, wrong types, no `product`, a value out of range.
    BadRequest,
    /// `unsupported_version`: `v` is not a version this service speaks.
    UnsupportedVersion,
    /// `too_large`: the payload (over 6 MiB) or the decoded image (over 4 MiB) is over its limit.
    TooLarge,
    /// `bad_image`: the image cannot be decoded, or is over its pixel limit.
    BadImage,
    /// `overloaded`: the work queue is full; the reply carries `retry_after_ms`.
    Overloaded,
    /// `expired`: `deadline_ms` or the MQTT message expiry passed before inference could start.
    Expired,
    /// `no_model`: no bundle is active.
    NoModel,
    /// `internal`: anything else; the service keeps running.
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

    /// Whether the appliance, not the client, is answerable for it: a failure or a brief it was
    /// too slow for, as opposed to malformed, oversized or undecodable input.
    pub fn is_service_fault(self) -> bool {
        matches!(
            self,
            ErrorCode::Overloaded | ErrorCode::Expired | ErrorCode::NoModel | ErrorCode::Internal
        )
    }

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
    /// What kind of failure it is; clients branch on this, not on `message`.
    pub code: ErrorCode,
    /// A sentence for people saying what went wrong, e.g. "field 'product' is required".
    pub message: String,
    /// The request field at fault (e.g. `product`); absent when the whole request is at fault.
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
    /// `ok`: the reply is a [`BriefReply`].
    Ok,
    /// `error`: the reply is an [`ErrorReply`] carrying `error`.
    Error,
}

/// The error reply body (to a brief; bundle commands have their own, see
/// [`crate::bundle::BundleErrorReply`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// `v`: the API version of the reply, always [`API_VERSION`].
    pub v: u32,
    /// The brief's `id`, echoed as a string; absent when the brief had none or could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `status`: always `error` here.
    pub status: ReplyStatus,
    /// `error`: what failed and, when one field is to blame, which.
    pub error: ApiError,
    /// `retry_after_ms`: with `overloaded` only, milliseconds to wait before sending again.
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BundleRef {
    /// The bundle's `name`, from its manifest.
    pub name: String,
    /// The bundle's `version` (semver), from its manifest.
    pub version: String,
}

/// Where the time of one brief went, in microseconds since it was read off the socket.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Timing {
    /// `queue`: from arrival until a worker took the brief.
    pub queue: u64,
    /// `decode`: from a worker taking the brief until the model inputs were built (JSON, image).
    pub decode: u64,
    /// `infer`: running the model on the backend.
    pub infer: u64,
    /// `post`: from the end of inference until the reply was built (ranking, layout, preview).
    pub post: u64,
    /// `total`: from arrival until the reply was ready, so at least the sum of the others.
    pub total: u64,
}

/// How a brief value was matched to vocabulary terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadVia {
    /// The value is the term's own name.
    Exact,
    /// The value is one of the term's listed synonyms.
    Synonym,
    /// The value contains one or more terms' synonyms.
    Contains,
    /// The bundle's text encoder found the term closest in meaning.
    Encoder,
}

impl ReadVia {
    /// The contract's string for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadVia::Exact => "exact",
            ReadVia::Synonym => "synonym",
            ReadVia::Contains => "contains",
            ReadVia::Encoder => "encoder",
        }
    }
}

/// One brief value and the vocabulary terms the service read it as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Understood {
    /// The brief field the value came from: `product`, `audience`, `mood`, `palette` or `keywords`.
    pub field: String,
    /// The value as the brief wrote it.
    pub text: String,
    /// The vocabulary term ids it was read as, e.g. `product:energy_drink`.
    #[serde(rename = "as")]
    pub terms: Vec<String>,
    /// How it was matched.
    pub via: ReadVia,
    /// For `encoder` readings, the cosine similarity to the closest synonym, three decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
}

/// One scored style.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StyleSuggestion {
    /// The style's vocabulary name in English, e.g. `minimalist`.
    pub style: String,
    /// The style's Simplified Chinese name, for kiosks that show Chinese.
    pub name_zh: String,
    /// How well the style fits the brief, in [0, 1]; the list is sorted by it, highest first.
    pub score: f32,
}

/// Colour roles of a palette.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaletteRoles {
    /// Background colour, `#RRGGBB`; `contrast` measures `text` against it.
    pub background: String,
    /// Primary colour, `#RRGGBB`, for the main graphic surfaces.
    pub primary: String,
    /// Accent colour, `#RRGGBB`, for highlights and calls to action.
    pub accent: String,
    /// Text colour, `#RRGGBB`, at least 4.5:1 against `background`.
    pub text: String,
}

/// One scored palette, with its roles already adjusted to the brand colours and to WCAG contrast.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaletteSuggestion {
    /// The palette's catalogue name in English, e.g. `sea glass`.
    pub name: String,
    /// The palette's Simplified Chinese name.
    pub name_zh: String,
    /// Every colour of the palette as `#RRGGBB`, brand colours included.
    pub colors: Vec<String>,
    /// Which of `colors` to use for background, primary, accent and text.
    pub roles: PaletteRoles,
    /// WCAG 2.x contrast ratio of `roles.text` on `roles.background`; never below 4.5.
    pub contrast: f32,
    /// The colour-vision-deficiency check of the four roles.
    pub cvd: PaletteCvd,
    /// How well the palette fits the brief, in [0, 1]; sorted by it, highest first (safe
    /// palettes first when the brief asked for `prefer_cvd_safe`).
    pub score: f32,
}

/// Whether a palette's roles stay distinguishable under simulated protanopia, deuteranopia and
/// tritanopia (Machado et al. 2009).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PaletteCvd {
    /// `min_delta_e` reaches the service's threshold (`packd::colour::cvd::CVD_SAFE_MIN_DELTA_E`).
    pub safe: bool,
    /// Smallest CIEDE2000 difference between two roles, in normal and simulated vision, one decimal.
    pub min_delta_e: f32,
}

/// One scored font pairing; the CJK families are for Chinese copy on the same pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FontSuggestion {
    /// Latin font family for headings, e.g. `Playfair Display`.
    pub heading: String,
    /// Latin font family for body copy, e.g. `Source Sans 3`.
    pub body: String,
    /// CJK font family paired with `heading` for Chinese headings.
    pub heading_cjk: String,
    /// CJK font family paired with `body` for Chinese body copy.
    pub body_cjk: String,
    /// How well the pairing fits the brief, in [0, 1]; the list is sorted by it, highest first.
    pub score: f32,
}

/// A normalised box on the front panel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    /// Left edge, as a fraction of the panel width, in [0, 1].
    pub x: f32,
    /// Top edge, as a fraction of the panel height, in [0, 1].
    pub y: f32,
    /// Width, as a fraction of the panel width, in [0, 1].
    pub w: f32,
    /// Height, as a fraction of the panel height, in [0, 1].
    pub h: f32,
}

/// Heatmaps of where each element belongs, and the boxes derived from them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layout {
    /// `[rows, columns]` of every heatmap.
    pub grid: [usize; 2],
    /// Row-major heatmaps of `grid[0]` × `grid[1]` cells in [0, 1]: how well each cell suits it.
    pub heatmaps: LayoutMaps<Vec<f32>>,
    /// Normalised boxes derived from the heatmaps, one per element.
    pub zones: LayoutMaps<Zone>,
    /// The catalogue layout template the zones are taken from (an extra field: see
    /// docs/contract-choices.md); absent when a bundle has no templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// One value per layout element.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayoutMaps<T> {
    /// For the brand logo.
    pub logo: T,
    /// For the product shot.
    pub product: T,
    /// For the copy.
    pub text: T,
}

/// The success reply to a brief.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BriefReply {
    /// `v`: the API version of the reply, always [`API_VERSION`].
    pub v: u32,
    /// The brief's `id`, echoed as a string (a number as its decimal); absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `status`: always `ok` here.
    pub status: ReplyStatus,
    /// The appliance that answered (`device.id` of its config).
    pub device: String,
    /// The active bundle that produced the suggestions.
    pub bundle: BundleRef,
    /// Where inference ran: `cpu`, `gpu`, `trt:gpu`, `trt:dla0` or `trt:dla1`.
    pub backend: String,
    /// Where the time went, in microseconds from the moment the message was read off the socket.
    pub timing_us: Timing,
    /// Up to `top_k` styles, best first.
    pub styles: Vec<StyleSuggestion>,
    /// Up to `top_k` palettes, best first.
    pub palettes: Vec<PaletteSuggestion>,
    /// Up to `top_k` font pairings, best first.
    pub fonts: Vec<FontSuggestion>,
    /// Where logo, product and text belong on the front panel.
    pub layout: Layout,
    /// How each brief value was read as vocabulary terms, in brief order; values read as
    /// nothing are only in `warnings`.
    #[serde(default)]
    pub understood: Vec<Understood>,
    /// Sentences about input that was ignored, e.g. an unknown term; empty when all was understood.
    pub warnings: Vec<String>,
    /// Base64 PNG of the top suggestion on a front panel; only when the brief asked for `render`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_png: Option<String>,
}

/// Any reply to a brief, told apart by its `status` when read.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BriefAnswer {
    /// `status` `ok`: the suggestions.
    Ok(Box<BriefReply>),
    /// `status` `error`: the failure.
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
    fn understood_has_the_contract_shape() {
        let encoder = Understood {
            field: "product".into(),
            text: "能量饮料".into(),
            terms: vec!["product:beverage".into(), "mood:energetic".into()],
            via: ReadVia::Encoder,
            similarity: Some(0.81),
        };
        let json = serde_json::to_string(&encoder).unwrap();
        assert_eq!(
            json,
            r#"{"field":"product","text":"能量饮料","as":["product:beverage","mood:energetic"],"via":"encoder","similarity":0.81}"#
        );
        let synonym = Understood {
            via: ReadVia::Synonym,
            similarity: None,
            ..encoder.clone()
        };
        assert!(!serde_json::to_string(&synonym)
            .unwrap()
            .contains("similarity"));
        for via in [
            ReadVia::Exact,
            ReadVia::Synonym,
            ReadVia::Contains,
            ReadVia::Encoder,
        ] {
            assert_eq!(serde_json::to_value(via).unwrap(), via.as_str());
        }
        let back: Understood = serde_json::from_str(&json).unwrap();
        assert_eq!(back, encoder);
    }

    #[test]
    fn codes_serialise_as_their_wire_names() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
