//! Brief decoding: raw MQTT payload to a validated [`Brief`], with the contract's limits enforced
//! before any expensive work and one typed error per malformed case.

mod raw;

use base64::Engine as _;

use crate::colour::Rgb;
use crate::reply::{ApiError, ErrorCode, API_VERSION};
use raw::{Payload, Raw, RawBrief, RawEnvelope};

/// Payloads above this are refused unparsed.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Decoded reference images above this are refused.
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// At most this many brand colours.
pub const MAX_BRAND_COLOURS: usize = 4;
/// `top_k` bounds and default.
pub const TOP_K_RANGE: std::ops::RangeInclusive<u64> = 1..=10;
pub(crate) const DEFAULT_TOP_K: usize = 3;
/// Longest accepted term list, and longest term: briefs are short; anything longer is abuse.
const MAX_TERMS_PER_FIELD: usize = 32;
const MAX_TERM_CHARS: usize = 64;
const MAX_ID_CHARS: usize = 128;
/// A deadline longer than this is treated as a mistake rather than patience.
const MAX_DEADLINE_MS: u64 = 600_000;

/// A validated design brief.
#[derive(Debug, Clone, PartialEq)]
pub struct Brief {
    /// The brief's `id` (a number read as its decimal string), at most 128 characters; echoed.
    pub id: Option<String>,
    /// `product`, the one required field: the product category, matched against the vocabulary.
    pub product: String,
    /// `audience` terms, e.g. `gen z`; unknown ones become warnings.
    pub audience: Vec<String>,
    /// `mood` terms, e.g. `fresh`; unknown ones become warnings.
    pub mood: Vec<String>,
    /// `palette`: a palette family the brief asks for, e.g. `morandi`.
    pub palette: Option<String>,
    /// Free `keywords`, matched as far as the vocabulary allows.
    pub keywords: Vec<String>,
    /// `brand_colors`: up to 4 colours the palettes must respect.
    pub brand_colors: Vec<Rgb>,
    /// The reference image, base64-decoded but not yet decoded as an image.
    pub image: Option<Vec<u8>>,
    /// `top_k`: how many styles, palettes and font pairings to return, 1–10, default 3.
    pub top_k: usize,
    /// `render`: add `preview_png` to the reply.
    pub render: bool,
    /// `prefer_cvd_safe`: rank palettes that pass the colour-vision-deficiency check first.
    pub prefer_cvd_safe: bool,
    /// `deadline_ms`: answer `expired` if inference cannot start this many ms after arrival.
    pub deadline_ms: Option<u64>,
    /// `headline` (an extension, see docs/contract-choices.md): the words a preview sets large,
    /// instead of the product as typed.
    pub headline: Option<String>,
}

/// What can be read from a payload before (or despite) validation, so that even a refused brief
/// gets its reply where the client expects it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    /// The payload's `id`, when it is a string or number of acceptable length.
    pub id: Option<String>,
    /// The payload's `reply_to` topic, the way back for MQTT 3.1.1 clients.
    pub reply_to: Option<String>,
}

/// Reads `id` and `reply_to` from a payload, tolerating everything else being wrong.
///
/// A key given twice counts with its last value, as in [`decode`]. (A derived `Deserialize`
/// refused duplicate keys, so `{"id":1,"id":2,…}` decoded as a brief but had no envelope, and
/// such a brief with only `reply_to` to go back by was dropped unanswered; caught by the brief
/// fuzz target.)
pub fn read_envelope(payload: &[u8]) -> Envelope {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Envelope::default();
    }
    match serde_json::from_slice::<RawEnvelope<'_>>(payload) {
        Ok(raw) => Envelope {
            id: raw.id.as_ref().and_then(id_text),
            reply_to: match raw.reply_to {
                Some(Raw::Str(topic)) => Some(topic.into_owned()),
                _ => None,
            }
            .filter(|topic| valid_reply_topic(topic)),
        },
        Err(_) => Envelope::default(),
    }
}

/// A topic we may publish a reply to by the broker's rules and ours (see
/// [`crate::serve::route::check_topic`]); whether it is under the reply prefix is checked apart.
pub fn valid_reply_topic(topic: &str) -> bool {
    crate::serve::route::check_topic(topic).is_ok()
}

fn id_text(value: &Raw<'_>) -> Option<String> {
    match value {
        Raw::Str(text) if text.chars().count() <= MAX_ID_CHARS => Some(text.to_string()),
        Raw::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Most bytes decoding a payload of `payload_len` bytes holds at once, the payload included:
/// the payload, the parser's scratch for an escaped string (up to twice its length as it
/// grows), the copies of escaped known fields (together no longer than the payload) and the
/// reference image's bytes.
pub fn decode_cost(payload_len: usize) -> u64 {
    let len = payload_len.min(MAX_PAYLOAD_BYTES) as u64;
    4 * len + (len / 4 * 3).min(MAX_IMAGE_BYTES as u64)
}

/// Decodes and validates a brief payload.
///
/// The payload is read into the few fields a brief has, borrowing their strings where it can,
/// and unknown fields are checked and dropped as they are read: a brief never costs a JSON tree
/// (see `raw`). Fields are then validated in a fixed order, whatever their order in the payload.
pub fn decode(payload: &[u8]) -> Result<Brief, ApiError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "payload of {} bytes is over the {} byte limit",
                payload.len(),
                MAX_PAYLOAD_BYTES
            ),
        ));
    }
    let Payload(raw) = Payload::parse(payload).map_err(|error| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("payload is not valid JSON: {error}"),
        )
    })?;
    let Some(raw) = raw else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "payload must be a JSON object",
        ));
    };
    validate(&raw)
}

/// The checks of [`decode`] on a parsed payload, always in this order, so that a brief with
/// several faults gets the error it always got.
fn validate(raw: &RawBrief<'_>) -> Result<Brief, ApiError> {
    check_version(raw.v.as_ref())?;
    let id = match &raw.id {
        None | Some(Raw::Null) => None,
        Some(value) => Some(id_text(value).ok_or_else(|| {
            ApiError::for_field(
                ErrorCode::BadRequest,
                "id",
                format!(
                    "field 'id' must be a string of at most {MAX_ID_CHARS} characters or a number"
                ),
            )
        })?),
    };
    let product = product(raw.product.as_ref())?;
    let brand_colors = brand_colours(raw.brand_colors.as_ref())?;
    let top_k = match &raw.top_k {
        None | Some(Raw::Null) => DEFAULT_TOP_K,
        Some(value) => match value.as_u64() {
            Some(k) if TOP_K_RANGE.contains(&k) => k as usize,
            _ => {
                return Err(ApiError::for_field(
                    ErrorCode::BadRequest,
                    "top_k",
                    "field 'top_k' must be an integer from 1 to 10",
                ))
            }
        },
    };
    let render = flag("render", raw.render.as_ref())?;
    let prefer_cvd_safe = flag("prefer_cvd_safe", raw.prefer_cvd_safe.as_ref())?;
    let deadline_ms = deadline_ms(raw.deadline_ms.as_ref())?;
    let image = match &raw.image {
        None | Some(Raw::Null) => None,
        Some(Raw::Str(encoded)) => Some(decode_image_field(encoded)?),
        Some(_) => {
            return Err(ApiError::for_field(
                ErrorCode::BadRequest,
                "image",
                "field 'image' must be a base64 string",
            ))
        }
    };
    Ok(Brief {
        id,
        product,
        audience: terms("audience", raw.audience.as_ref())?,
        mood: terms("mood", raw.mood.as_ref())?,
        palette: term("palette", raw.palette.as_ref())?,
        keywords: terms("keywords", raw.keywords.as_ref())?,
        brand_colors,
        image,
        top_k,
        render,
        prefer_cvd_safe,
        deadline_ms,
        headline: term("headline", raw.headline.as_ref())?,
    })
}

/// An optional boolean field: absent or null is false; anything but a boolean is refused.
fn flag(field: &str, value: Option<&Raw<'_>>) -> Result<bool, ApiError> {
    match value {
        None | Some(Raw::Null) => Ok(false),
        Some(Raw::Bool(flag)) => Ok(*flag),
        Some(_) => Err(ApiError::for_field(
            ErrorCode::BadRequest,
            field,
            format!("field '{field}' must be true or false"),
        )),
    }
}

fn check_version(version: Option<&Raw<'_>>) -> Result<(), ApiError> {
    let Some(version) = version else {
        return Ok(());
    };
    match version.as_u64() {
        Some(v) if v == u64::from(API_VERSION) => Ok(()),
        Some(v) => Err(ApiError::for_field(
            ErrorCode::UnsupportedVersion,
            "v",
            format!("version {v} is not supported; this service speaks version {API_VERSION}"),
        )),
        None => Err(ApiError::for_field(
            ErrorCode::BadRequest,
            "v",
            "field 'v' must be a positive integer",
        )),
    }
}

fn product(value: Option<&Raw<'_>>) -> Result<String, ApiError> {
    let product = match value {
        None | Some(Raw::Null) => {
            return Err(ApiError::for_field(
                ErrorCode::BadRequest,
                "product",
                "field 'product' is required",
            ))
        }
        Some(_) => term("product", value)?.unwrap_or_default(),
    };
    if product.trim().is_empty() {
        return Err(ApiError::for_field(
            ErrorCode::BadRequest,
            "product",
            "field 'product' must not be empty",
        ));
    }
    Ok(product)
}

fn brand_colours(value: Option<&Raw<'_>>) -> Result<Vec<Rgb>, ApiError> {
    let brand_colors = terms("brand_colors", value)?
        .iter()
        .map(|text| {
            Rgb::parse_hex(text).map_err(|_| {
                ApiError::for_field(
                    ErrorCode::BadRequest,
                    "brand_colors",
                    format!("'{text}' is not a hex colour (#RGB or #RRGGBB)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if brand_colors.len() > MAX_BRAND_COLOURS {
        return Err(ApiError::for_field(
            ErrorCode::BadRequest,
            "brand_colors",
            format!(
                "at most {MAX_BRAND_COLOURS} brand colours, got {}",
                brand_colors.len()
            ),
        ));
    }
    Ok(brand_colors)
}

fn deadline_ms(value: Option<&Raw<'_>>) -> Result<Option<u64>, ApiError> {
    match value {
        None | Some(Raw::Null) => Ok(None),
        Some(value) => match value.as_u64() {
            Some(ms) if (1..=MAX_DEADLINE_MS).contains(&ms) => Ok(Some(ms)),
            _ => Err(ApiError::for_field(
                ErrorCode::BadRequest,
                "deadline_ms",
                format!("field 'deadline_ms' must be an integer from 1 to {MAX_DEADLINE_MS}"),
            )),
        },
    }
}

fn decode_image_field(encoded: &str) -> Result<Vec<u8>, ApiError> {
    // Strip a data-URL prefix: browsers hand those out and kiosks forward them verbatim.
    let encoded = match encoded.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => encoded,
    };
    // Refuse by the encoded length first, so an oversized image is never decoded: base64 turns
    // every 4 characters into 3 bytes, padding at most 2 of them.
    if encoded.len() / 4 * 3 > MAX_IMAGE_BYTES + 2 {
        return Err(ApiError::for_field(
            ErrorCode::TooLarge,
            "image",
            format!("image is over the {MAX_IMAGE_BYTES} byte limit"),
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|error| {
            ApiError::for_field(
                ErrorCode::BadImage,
                "image",
                format!("image is not valid base64: {error}"),
            )
        })?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ApiError::for_field(
            ErrorCode::TooLarge,
            "image",
            format!("image is over the {} byte limit", MAX_IMAGE_BYTES),
        ));
    }
    Ok(bytes)
}

/// A term field (`product`, `palette`), naming the field in every error.
fn term(field: &str, value: Option<&Raw<'_>>) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Raw::Null) => Ok(None),
        Some(Raw::Str(text)) => check_term(field, text).map(Some),
        Some(_) => Err(ApiError::for_field(
            ErrorCode::BadRequest,
            field,
            format!("field '{field}' must be a string"),
        )),
    }
}

/// A list-of-terms field, naming the field in every error.
fn terms(field: &str, value: Option<&Raw<'_>>) -> Result<Vec<String>, ApiError> {
    let wrong_type = || {
        ApiError::for_field(
            ErrorCode::BadRequest,
            field,
            format!("field '{field}' must be a list of strings"),
        )
    };
    match value {
        None | Some(Raw::Null) => Ok(Vec::new()),
        // A single string where a list is expected is what people type; accept it.
        Some(Raw::Str(text)) => Ok(vec![check_term(field, text)?]),
        Some(Raw::List(list)) => {
            if list.len > MAX_TERMS_PER_FIELD {
                return Err(ApiError::for_field(
                    ErrorCode::BadRequest,
                    field,
                    format!(
                        "field '{field}' has {} entries; at most {MAX_TERMS_PER_FIELD}",
                        list.len
                    ),
                ));
            }
            list.items
                .iter()
                .map(|item| {
                    item.as_deref()
                        .ok_or_else(wrong_type)
                        .and_then(|text| check_term(field, text))
                })
                .collect()
        }
        Some(_) => Err(wrong_type()),
    }
}

fn check_term(field: &str, text: &str) -> Result<String, ApiError> {
    if text.chars().count() > MAX_TERM_CHARS {
        return Err(ApiError::for_field(
            ErrorCode::BadRequest,
            field,
            format!("an entry of field '{field}' is longer than {MAX_TERM_CHARS} characters"),
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_json(json: &str) -> Result<Brief, ApiError> {
        decode(json.as_bytes())
    }

    /// The wire crate's brief type and this decoder agree on every field's name and meaning.
    #[test]
    fn a_wire_brief_request_decodes_field_for_field() {
        use base64::Engine as _;
        let image = vec![0x89, b'P', b'N', b'G'];
        let request = packd_wire::BriefRequest {
            id: Some("kiosk-7".into()),
            audience: vec!["gen z".into()],
            mood: vec!["fresh".into()],
            keywords: vec!["清爽感".into()],
            palette: Some("morandi".into()),
            brand_colors: vec!["#1A73E8".into()],
            image: Some(base64::engine::general_purpose::STANDARD.encode(&image)),
            top_k: Some(5),
            render: Some(true),
            deadline_ms: Some(200),
            reply_to: Some("packd/v1/replies/k7".into()),
            prefer_cvd_safe: Some(true),
            headline: Some("Spring Green".into()),
            ..packd_wire::BriefRequest::new("beverage")
        };
        let payload = serde_json::to_vec(&request).unwrap();
        let brief = decode(&payload).expect("a wire brief decodes");
        assert_eq!(brief.id.as_deref(), Some("kiosk-7"));
        assert_eq!(brief.product, "beverage");
        assert_eq!(brief.audience, request.audience);
        assert_eq!(brief.mood, request.mood);
        assert_eq!(brief.keywords, request.keywords);
        assert_eq!(brief.palette, request.palette);
        assert_eq!(brief.brand_colors, vec![Rgb::parse_hex("#1A73E8").unwrap()]);
        assert_eq!(brief.image, Some(image));
        assert_eq!(
            (brief.top_k, brief.render, brief.deadline_ms),
            (5, true, Some(200))
        );
        assert!(brief.prefer_cvd_safe);
        assert_eq!(brief.headline, request.headline);
        assert_eq!(read_envelope(&payload).reply_to, request.reply_to);
    }

    fn error_of(json: &str) -> (ErrorCode, Option<String>) {
        let error = decode_json(json).expect_err("should be refused");
        (error.code, error.field)
    }

    #[test]
    fn the_contract_example_decodes() {
        let brief = decode_json(
            r##"{"v":1,"id":"kiosk17-000123","product":"beverage","audience":["young women","gen z"],
            "mood":["fresh","summer limited"],"palette":"morandi","keywords":["清爽感"],
            "brand_colors":["#1A73E8"],"top_k":3,"render":false,"deadline_ms":200}"##,
        )
        .unwrap();
        assert_eq!(brief.id.as_deref(), Some("kiosk17-000123"));
        assert_eq!(brief.audience, ["young women", "gen z"]);
        assert_eq!(brief.keywords, ["清爽感"]);
        assert_eq!(
            brief.brand_colors,
            [Rgb {
                r: 0x1A,
                g: 0x73,
                b: 0xE8
            }]
        );
        assert_eq!(brief.deadline_ms, Some(200));
    }

    #[test]
    fn only_product_is_required() {
        let brief = decode_json(r#"{"product":"tea"}"#).unwrap();
        assert_eq!(brief.top_k, DEFAULT_TOP_K);
        assert!(!brief.render);
        assert!(!brief.prefer_cvd_safe);
        assert!(brief.image.is_none());
    }

    #[test]
    fn malformed_briefs_get_the_right_code_and_field() {
        assert_eq!(error_of("not json"), (ErrorCode::BadRequest, None));
        assert_eq!(error_of("[1,2]"), (ErrorCode::BadRequest, None));
        assert_eq!(
            error_of(r#"{"mood":["fresh"]}"#),
            (ErrorCode::BadRequest, Some("product".into()))
        );
        assert_eq!(
            error_of(r#"{"product":3}"#),
            (ErrorCode::BadRequest, Some("product".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"  "}"#),
            (ErrorCode::BadRequest, Some("product".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","v":2}"#),
            (ErrorCode::UnsupportedVersion, Some("v".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","v":"1"}"#),
            (ErrorCode::BadRequest, Some("v".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","top_k":0}"#),
            (ErrorCode::BadRequest, Some("top_k".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","top_k":11}"#),
            (ErrorCode::BadRequest, Some("top_k".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","top_k":2.5}"#),
            (ErrorCode::BadRequest, Some("top_k".into()))
        );
        assert_eq!(
            error_of(r##"{"product":"tea","brand_colors":["#12345"]}"##),
            (ErrorCode::BadRequest, Some("brand_colors".into()))
        );
        assert_eq!(
            error_of(r##"{"product":"tea","brand_colors":["#111","#222","#333","#444","#555"]}"##),
            (ErrorCode::BadRequest, Some("brand_colors".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","mood":[1]}"#),
            (ErrorCode::BadRequest, Some("mood".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","render":"yes"}"#),
            (ErrorCode::BadRequest, Some("render".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","headline":["Spring"]}"#),
            (ErrorCode::BadRequest, Some("headline".into()))
        );
        let long = "字".repeat(MAX_TERM_CHARS + 1);
        assert_eq!(
            error_of(&format!(r#"{{"product":"tea","headline":"{long}"}}"#)),
            (ErrorCode::BadRequest, Some("headline".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","prefer_cvd_safe":1}"#),
            (ErrorCode::BadRequest, Some("prefer_cvd_safe".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","deadline_ms":-5}"#),
            (ErrorCode::BadRequest, Some("deadline_ms".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","image":42}"#),
            (ErrorCode::BadRequest, Some("image".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","image":"%%%not base64%%%"}"#),
            (ErrorCode::BadImage, Some("image".into()))
        );
        assert_eq!(
            error_of(r#"{"product":"tea","id":{"a":1}}"#),
            (ErrorCode::BadRequest, Some("id".into()))
        );
    }

    #[test]
    fn oversized_payload_is_refused_before_parsing() {
        let payload = vec![b'x'; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(decode(&payload).unwrap_err().code, ErrorCode::TooLarge);
    }

    #[test]
    fn oversized_image_is_refused_before_decoding() {
        let encoded = "A".repeat((MAX_IMAGE_BYTES / 3 + 2) * 4);
        let json = format!(r#"{{"product":"tea","image":"{encoded}"}}"#);
        assert_eq!(error_of(&json), (ErrorCode::TooLarge, Some("image".into())));
    }

    #[test]
    fn data_url_images_are_accepted() {
        let brief =
            decode_json(r#"{"product":"tea","image":"data:image/png;base64,AAECAw=="}"#).unwrap();
        assert_eq!(brief.image.as_deref(), Some(&[0u8, 1, 2, 3][..]));
    }

    #[test]
    fn envelope_survives_an_invalid_brief() {
        let envelope = read_envelope(br#"{"id":"x-1","reply_to":"kiosk/replies","product":42}"#);
        assert_eq!(envelope.id.as_deref(), Some("x-1"));
        assert_eq!(envelope.reply_to.as_deref(), Some("kiosk/replies"));
        assert_eq!(read_envelope(br#"{"reply_to":"a/#"}"#).reply_to, None);
        assert_eq!(read_envelope(b"garbage"), Envelope::default());
    }

    /// The brief fuzz target's crash: a duplicated key, accepted by `decode` (last one wins),
    /// made the envelope empty.
    #[test]
    fn envelope_agrees_with_decode_on_duplicate_keys() {
        let payload =
            r#"{"v":1,"id":42,"prov":1,"id":42,"product":"茶饮","mood":"国("}"#.as_bytes();
        assert_eq!(decode(payload).unwrap().id.as_deref(), Some("42"));
        assert_eq!(read_envelope(payload).id.as_deref(), Some("42"));

        let payload = br#"{"id":"a","reply_to":"x/1","id":"b","reply_to":"x/2","product":"tea"}"#;
        let envelope = read_envelope(payload);
        assert_eq!(envelope.id, decode(payload).unwrap().id);
        assert_eq!(envelope.id.as_deref(), Some("b"));
        assert_eq!(envelope.reply_to.as_deref(), Some("x/2"));
        // Escaped key names are the same keys.
        let envelope = read_envelope(br#"{"\u0069d":"c","reply\u005fto":"x/3"}"#);
        assert_eq!(envelope.id.as_deref(), Some("c"));
        assert_eq!(envelope.reply_to.as_deref(), Some("x/3"));
        // Only objects have an envelope.
        assert_eq!(
            read_envelope(br#"["x-1","kiosk/replies"]"#),
            Envelope::default()
        );
    }
}
