//! A brief payload read without building a JSON tree: the known fields are kept only as far as
//! validation needs them, strings are borrowed from the payload where they hold no escapes, and
//! everything else is walked and dropped as it is read.
//!
//! A `serde_json::Value` costs about 32 bytes per JSON value (more while its vectors grow), so a
//! 6 MiB brief of unknown fields such as `[0,0,0,…]` took about 184 MB per worker (issue 13).
//! Here the same payload allocates nothing beyond the parser's scratch for escaped strings.
//!
//! Unknown values are walked with `deserialize_any`, as a `Value` would be, not with
//! `IgnoredAny`: serde_json's ignoring path skips strings without checking their UTF-8 or their
//! `\u` escapes, and a brief that is not valid JSON must still be refused as such, with the same
//! message as before.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::MAX_TERMS_PER_FIELD;

/// Visitor methods that answer `$value` for every JSON scalar but a string.
macro_rules! scalars_are {
    ($value:expr) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// A known field's value, as far as validation looks at it.
#[derive(Debug)]
pub(crate) enum Raw<'de> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'de, str>),
    List(RawList<'de>),
    /// An object: no field of a brief may be one; its contents are not kept.
    Object,
}

/// A JSON array: its length, and its first [`MAX_TERMS_PER_FIELD`] entries (`None` for an entry
/// that is not a string; nested arrays and objects are not kept).
#[derive(Debug, Default)]
pub(crate) struct RawList<'de> {
    pub(crate) len: usize,
    pub(crate) items: Vec<Option<Cow<'de, str>>>,
}

impl Raw<'_> {
    /// The value as a non-negative integer, as `Value::as_u64` reads it.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Raw::Number(number) => number.as_u64(),
            _ => None,
        }
    }
}

/// The fields of a brief object, each with its last occurrence (as a JSON object map keeps it).
#[derive(Debug, Default)]
pub(crate) struct RawBrief<'de> {
    pub(crate) v: Option<Raw<'de>>,
    pub(crate) id: Option<Raw<'de>>,
    pub(crate) product: Option<Raw<'de>>,
    pub(crate) audience: Option<Raw<'de>>,
    pub(crate) mood: Option<Raw<'de>>,
    pub(crate) palette: Option<Raw<'de>>,
    pub(crate) keywords: Option<Raw<'de>>,
    pub(crate) brand_colors: Option<Raw<'de>>,
    pub(crate) top_k: Option<Raw<'de>>,
    pub(crate) render: Option<Raw<'de>>,
    pub(crate) prefer_cvd_safe: Option<Raw<'de>>,
    pub(crate) deadline_ms: Option<Raw<'de>>,
    pub(crate) image: Option<Raw<'de>>,
    pub(crate) headline: Option<Raw<'de>>,
}

/// A whole payload: a brief object, or `None` for valid JSON that is not an object.
pub(crate) struct Payload<'de>(pub(crate) Option<RawBrief<'de>>);

impl<'de> Payload<'de> {
    /// Parses `payload`; the error is serde_json's own syntax error.
    pub(crate) fn parse(payload: &'de [u8]) -> Result<Payload<'de>, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

impl<'de> Deserialize<'de> for Payload<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload<'de>, A::Error> {
        let mut brief = RawBrief::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::V => &mut brief.v,
                Key::Id => &mut brief.id,
                Key::Product => &mut brief.product,
                Key::Audience => &mut brief.audience,
                Key::Mood => &mut brief.mood,
                Key::Palette => &mut brief.palette,
                Key::Keywords => &mut brief.keywords,
                Key::BrandColors => &mut brief.brand_colors,
                Key::TopK => &mut brief.top_k,
                Key::Render => &mut brief.render,
                Key::PreferCvdSafe => &mut brief.prefer_cvd_safe,
                Key::DeadlineMs => &mut brief.deadline_ms,
                Key::Image => &mut brief.image,
                Key::Headline => &mut brief.headline,
                Key::ReplyTo | Key::Other => {
                    map.next_value::<Skipped>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(Payload(Some(brief)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Payload<'de>, A::Error> {
        skip_seq(seq)?;
        Ok(Payload(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<Payload<'de>, E> {
        Ok(Payload(None))
    }

    scalars_are!(Payload(None));
}

/// The envelope's fields of an object, last occurrence winning; everything else is skipped
/// unchecked, so that a payload that is not even valid JSON further on still has its envelope.
#[derive(Debug, Default)]
pub(crate) struct RawEnvelope<'de> {
    pub(crate) id: Option<Raw<'de>>,
    pub(crate) reply_to: Option<Raw<'de>>,
}

impl<'de> Deserialize<'de> for RawEnvelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = RawEnvelope<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEnvelope<'de>, A::Error> {
        let mut envelope = RawEnvelope::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => envelope.id = Some(map.next_value()?),
                Key::ReplyTo => envelope.reply_to = Some(map.next_value()?),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// A brief's key, matched without allocating (escaped keys are unescaped by the parser first).
enum Key {
    V,
    Id,
    ReplyTo,
    Product,
    Audience,
    Mood,
    Palette,
    Keywords,
    BrandColors,
    TopK,
    Render,
    PreferCvdSafe,
    DeadlineMs,
    Image,
    Headline,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "v" => Key::V,
            "id" => Key::Id,
            "reply_to" => Key::ReplyTo,
            "product" => Key::Product,
            "audience" => Key::Audience,
            "mood" => Key::Mood,
            "palette" => Key::Palette,
            "keywords" => Key::Keywords,
            "brand_colors" => Key::BrandColors,
            "top_k" => Key::TopK,
            "render" => Key::Render,
            "prefer_cvd_safe" => Key::PreferCvdSafe,
            "deadline_ms" => Key::DeadlineMs,
            "image" => Key::Image,
            "headline" => Key::Headline,
            _ => Key::Other,
        })
    }
}

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Raw<'de>, E> {
        Ok(Raw::Null)
    }

    fn visit_none<E>(self) -> Result<Raw<'de>, E> {
        Ok(Raw::Null)
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Raw<'de>, E> {
        Ok(Raw::Bool(flag))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Raw<'de>, E> {
        Ok(Raw::Number(number.into()))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Raw<'de>, E> {
        Ok(Raw::Number(number.into()))
    }

    // As `Value` does: a float JSON cannot represent (none parses to one) would be null.
    fn visit_f64<E>(self, number: f64) -> Result<Raw<'de>, E> {
        Ok(Number::from_f64(number).map_or(Raw::Null, Raw::Number))
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
        let mut list = RawList::default();
        while let Some(Item(item)) = seq.next_element()? {
            if list.items.len() < MAX_TERMS_PER_FIELD {
                list.items.push(item);
            }
            list.len += 1;
        }
        Ok(Raw::List(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Raw<'de>, A::Error> {
        skip_map(map)?;
        Ok(Raw::Object)
    }
}

/// An entry of a list: its text when it is a string.
struct Item<'de>(Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Item<'de>, E> {
        Ok(Item(Some(Cow::Borrowed(text))))
    }

    fn visit_str<E>(self, text: &str) -> Result<Item<'de>, E> {
        Ok(Item(Some(Cow::Owned(text.to_owned()))))
    }

    fn visit_string<E>(self, text: String) -> Result<Item<'de>, E> {
        Ok(Item(Some(Cow::Owned(text))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item<'de>, A::Error> {
        skip_seq(seq)?;
        Ok(Item(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item<'de>, A::Error> {
        skip_map(map)?;
        Ok(Item(None))
    }

    scalars_are!(Item(None));
}

/// Any JSON value, checked as thoroughly as a `Value` would be and then dropped.
struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkippedVisitor)
    }
}

struct SkippedVisitor;

impl<'de> Visitor<'de> for SkippedVisitor {
    type Value = Skipped;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_str<E>(self, _: &str) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skipped, A::Error> {
        skip_seq(seq)?;
        Ok(Skipped)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skipped, A::Error> {
        skip_map(map)?;
        Ok(Skipped)
    }

    scalars_are!(Skipped);
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skipped>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<Skipped, Skipped>()?.is_some() {}
    Ok(())
}
