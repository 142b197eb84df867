//! A reply's JSON as serde_json writes it, with its rounded numbers written faster.
//!
//! Every score, heatmap cell and zone edge in a reply is rounded to thousandths (a reply holds
//! some 600 of them). serde_json finds each one's shortest decimal with a general float
//! printer; for a float that is the nearest one to a whole number of thousandths, that decimal
//! is the thousandths themselves with trailing zeros dropped, which integer arithmetic writes
//! in a fraction of the time. Any other float goes to serde_json's own printer, so the bytes are
//! the same as `serde_json::to_writer` gives (tested over every such float from -1000 to 1000).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

/// Largest magnitude written by the fast path: far below 2^13, where neighbouring floats are
/// still closer together than a thousandth, so each float has one decimal of thousandths.
const FAST_LIMIT: f32 = 1000.0;

/// `value` as compact JSON into `out`, byte for byte what `serde_json::to_writer` writes.
pub(crate) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(out, Thousandths);
    value.serialize(&mut serializer)
}

/// serde_json's compact formatter, with [`thousandths_of`] floats written by hand.
struct Thousandths;

impl Formatter for Thousandths {
    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        match thousandths_of(value) {
            Some(thousandths) => write_thousandths(writer, value.is_sign_negative(), thousandths),
            None => CompactFormatter.write_f32(writer, value),
        }
    }
}

/// The whole number of thousandths `value` is the nearest float to, if it is one within
/// [`FAST_LIMIT`].
fn thousandths_of(value: f32) -> Option<u32> {
    let magnitude = value.abs();
    // NaN (written as null) and infinities fail this too.
    if magnitude.is_nan() || magnitude > FAST_LIMIT {
        return None;
    }
    // Below 2^23 adding a half and truncating rounds; the check below settles any doubt.
    let thousandths = (magnitude * 1000.0 + 0.5) as u32;
    (thousandths as f32 / 1000.0 == magnitude).then_some(thousandths)
}

/// `thousandths` as a decimal: whole part, point, then the fraction's digits without trailing
/// zeros (one zero when there is no fraction), as the shortest float printers write it.
fn write_thousandths<W: ?Sized + Write>(
    writer: &mut W,
    negative: bool,
    thousandths: u32,
) -> io::Result<()> {
    // "-1000.125" at most: the whole part is at most FAST_LIMIT.
    let mut text = [0u8; 9];
    let mut length = usize::from(negative);
    text[0] = b'-';
    let whole = thousandths / 1000;
    for divisor in [1000, 100, 10] {
        if whole >= divisor {
            text[length] = b'0' + (whole / divisor % 10) as u8;
            length += 1;
        }
    }
    let fraction = thousandths % 1000;
    let tail = [
        b'0' + (whole % 10) as u8,
        b'.',
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ];
    // Trailing zeros go, but one digit always follows the point.
    let kept = if fraction % 100 == 0 {
        3
    } else if fraction % 10 == 0 {
        4
    } else {
        5
    };
    text[length..length + kept].copy_from_slice(&tail[..kept]);
    writer.write_all(&text[..length + kept])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(value: f32) -> String {
        let mut out = Vec::new();
        write(&mut out, &value).expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    fn serde_json(value: f32) -> String {
        serde_json::to_string(&value).expect("writes")
    }

    #[test]
    fn every_float_of_thousandths_up_to_the_limit_is_written_as_serde_json_writes_it() {
        let limit = (FAST_LIMIT * 1000.0) as i32;
        for thousandths in -limit..=limit {
            let value = thousandths as f32 / 1000.0;
            assert!(
                thousandths_of(value).is_some(),
                "{thousandths} took the slow path"
            );
            assert_eq!(ours(value), serde_json(value), "{thousandths} thousandths");
        }
        assert_eq!(ours(-0.0), serde_json(-0.0));
    }

    #[test]
    fn other_floats_are_written_as_serde_json_writes_them() {
        let mut random = fastrand::Rng::with_seed(16);
        let edges = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            f32::MAX,
            1e-7,
            0.1234,
            1000.001,
            1e9,
        ];
        let randoms: Vec<f32> = (0..200_000)
            .map(|_| f32::from_bits(random.u32(..)))
            .collect();
        let near_thousandths: Vec<f32> = (0..200_000).map(|_| random.f32() * 2.0 - 1.0).collect();
        for value in edges.into_iter().chain(randoms).chain(near_thousandths) {
            assert_eq!(ours(value), serde_json(value), "{value:e}");
        }
    }

    #[derive(Serialize)]
    struct Shaped {
        scores: Vec<f32>,
        zone: [f32; 2],
        name: &'static str,
        wide: f64,
    }

    #[test]
    fn a_reply_shaped_value_is_byte_for_byte_serde_jsons() {
        let value = Shaped {
            scores: vec![0.5, 0.123, 1.0, 0.0, 0.07],
            zone: [0.25, 0.333],
            name: "tea \"quoted\"",
            wide: 0.1,
        };
        let mut out = Vec::new();
        write(&mut out, &value).expect("writes");
        assert_eq!(out, serde_json::to_vec(&value).expect("writes"));
    }
}
