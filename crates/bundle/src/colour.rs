//! Colour types and colour science: hex parsing, sRGB ↔ CIELAB, CIEDE2000 and WCAG contrast.
//!
//! The sRGB → CIELAB conversion is part of the bundle contract (docs/bundle-format.md): the
//! training recipe computes the same numbers, so the constants here must not drift.

pub mod cvd;

use std::fmt;

use thiserror::Error;

/// Why a colour string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ColourError {
    /// The string does not start with `#`.
    #[error("colour {0:?} must start with '#'")]
    MissingHash(String),
    /// The string has a digit count other than 3 or 6.
    #[error("colour {0:?} must be #RGB or #RRGGBB")]
    WrongLength(String),
    /// The string contains a character that is not a hexadecimal digit.
    #[error("colour {0:?} contains a non-hexadecimal digit")]
    InvalidDigit(String),
}

/// An 8-bit sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb {
    /// Red channel.
    pub r: u8,
    /// Green channel.
    pub g: u8,
    /// Blue channel.
    pub b: u8,
}

/// A CIELAB (D65) colour: L in 0..=100, a and b roughly in -128..=127.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lab {
    /// Lightness L*.
    pub l: f32,
    /// Green–red axis a*.
    pub a: f32,
    /// Blue–yellow axis b*.
    pub b: f32,
}

/// D65 reference white in XYZ, as fixed by the bundle contract.
const WHITE_D65: [f64; 3] = [0.95047, 1.0, 1.08883];
/// CIE 1976 epsilon, as the exact rational the contract names (not the rounded 0.008856).
const LAB_EPSILON: f64 = 216.0 / 24389.0;
/// CIE 1976 kappa, as the exact rational the contract names (not the rounded 903.3).
const LAB_KAPPA: f64 = 24389.0 / 27.0;

/// Linear sRGB → XYZ (D65); its rows sum to the D65 white above, so white maps to L=100, a=b=0.
const SRGB_TO_XYZ: [[f64; 3]; 3] = [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
];
/// Inverse of `SRGB_TO_XYZ`.
const XYZ_TO_SRGB: [[f64; 3]; 3] = [
    [3.2404542, -1.5371385, -0.4985314],
    [-0.9692660, 1.8760108, 0.0415560],
    [0.0556434, -0.2040259, 1.0572252],
];

impl Rgb {
    /// Builds a colour from its three channels.
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b }
    }

    /// Parses `#RGB` or `#RRGGBB` (case-insensitive; the `#` is required).
    pub fn parse_hex(text: &str) -> Result<Rgb, ColourError> {
        let digits = text
            .strip_prefix('#')
            .ok_or_else(|| ColourError::MissingHash(text.to_owned()))?;
        // Checked before indexing so that multi-byte characters cannot split a slice.
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ColourError::InvalidDigit(text.to_owned()));
        }
        let nibbles: Vec<u8> = digits
            .bytes()
            .filter_map(|byte| (byte as char).to_digit(16))
            .filter_map(|digit| u8::try_from(digit).ok())
            .collect();
        match nibbles.as_slice() {
            [r, g, b] => Ok(Rgb::new(r * 17, g * 17, b * 17)),
            [r1, r2, g1, g2, b1, b2] => Ok(Rgb::new(r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2)),
            _ => Err(ColourError::WrongLength(text.to_owned())),
        }
    }

    /// Formats as `#RRGGBB` in upper case.
    pub fn to_hex(&self) -> String {
        format!("#{:02X}{:02X}{:02X}", self.r, self.g, self.b)
    }

    /// Converts to CIELAB (D65) exactly as the bundle contract defines it.
    pub fn to_lab(&self) -> Lab {
        let linear = [
            srgb_to_linear(self.r),
            srgb_to_linear(self.g),
            srgb_to_linear(self.b),
        ];
        let xyz = multiply(&SRGB_TO_XYZ, linear);
        let fx = lab_forward(xyz[0] / WHITE_D65[0]);
        let fy = lab_forward(xyz[1] / WHITE_D65[1]);
        let fz = lab_forward(xyz[2] / WHITE_D65[2]);
        Lab {
            l: (116.0 * fy - 16.0) as f32,
            a: (500.0 * (fx - fy)) as f32,
            b: (200.0 * (fy - fz)) as f32,
        }
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl Lab {
    /// Builds a colour from L*, a* and b*.
    pub const fn new(l: f32, a: f32, b: f32) -> Self {
        Self { l, a, b }
    }

    /// Converts back to 8-bit sRGB, clamping colours outside the sRGB gamut channel by channel.
    pub fn to_rgb(&self) -> Rgb {
        let [r, g, b] = self.to_linear_srgb();
        Rgb::new(linear_to_srgb(r), linear_to_srgb(g), linear_to_srgb(b))
    }

    /// Linear sRGB components, unclamped, so callers can tell whether the colour is in gamut.
    fn to_linear_srgb(self) -> [f64; 3] {
        let lightness = f64::from(self.l);
        let fy = (lightness + 16.0) / 116.0;
        let fx = fy + f64::from(self.a) / 500.0;
        let fz = fy - f64::from(self.b) / 200.0;
        let y = if lightness > LAB_KAPPA * LAB_EPSILON {
            fy.powi(3)
        } else {
            lightness / LAB_KAPPA
        };
        let xyz = [
            lab_inverse(fx) * WHITE_D65[0],
            y * WHITE_D65[1],
            lab_inverse(fz) * WHITE_D65[2],
        ];
        multiply(&XYZ_TO_SRGB, xyz)
    }
}

fn multiply(matrix: &[[f64; 3]; 3], vector: [f64; 3]) -> [f64; 3] {
    matrix.map(|row| row[0] * vector[0] + row[1] * vector[1] + row[2] * vector[2])
}

fn srgb_to_linear(channel: u8) -> f64 {
    // An 8-bit channel has 256 values: a table computed once saves a `powf` per channel, three
    // per colour converted (colour checks convert colours per brief).
    static TABLE: std::sync::LazyLock<[f64; 256]> =
        std::sync::LazyLock::new(|| std::array::from_fn(|value| srgb_decode(value as u8)));
    TABLE[usize::from(channel)]
}

/// The sRGB transfer function's inverse for one 8-bit channel.
fn srgb_decode(channel: u8) -> f64 {
    let encoded = f64::from(channel) / 255.0;
    if encoded <= 0.04045 {
        encoded / 12.92
    } else {
        ((encoded + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(linear: f64) -> u8 {
    let linear = if linear.is_nan() {
        0.0
    } else {
        linear.clamp(0.0, 1.0)
    };
    let encoded = if linear <= 0.003_130_8 {
        12.92 * linear
    } else {
        1.055 * linear.powf(1.0 / 2.4) - 0.055
    };
    // The clamp keeps the cast exact; `as` would saturate anyway but this states the intent.
    (encoded * 255.0).round().clamp(0.0, 255.0) as u8
}

fn lab_forward(ratio: f64) -> f64 {
    if ratio > LAB_EPSILON {
        ratio.cbrt()
    } else {
        (LAB_KAPPA * ratio + 16.0) / 116.0
    }
}

fn lab_inverse(f: f64) -> f64 {
    let cubed = f.powi(3);
    if cubed > LAB_EPSILON {
        cubed
    } else {
        (116.0 * f - 16.0) / LAB_KAPPA
    }
}

/// CIEDE2000 colour difference (kL = kC = kH = 1), after Sharma, Wu and Dalal (2005).
pub fn delta_e_2000(first: Lab, second: Lab) -> f32 {
    // f64 throughout: the Sharma test pairs 9–15 sit on the ±180° hue discontinuity.
    let (l1, a1, b1) = (f64::from(first.l), f64::from(first.a), f64::from(first.b));
    let (l2, a2, b2) = (
        f64::from(second.l),
        f64::from(second.a),
        f64::from(second.b),
    );
    const TWENTY_FIVE_TO_SEVENTH: f64 = 6_103_515_625.0;

    // sqrt rather than hypot: CIELAB components are far from overflow, and hypot's care
    // costs several times as much (this runs 24 times per palette checked).
    let chroma_mean_ab = ((a1 * a1 + b1 * b1).sqrt() + (a2 * a2 + b2 * b2).sqrt()) / 2.0;
    let chroma_mean_7 = chroma_mean_ab.powi(7);
    let g = 0.5 * (1.0 - (chroma_mean_7 / (chroma_mean_7 + TWENTY_FIVE_TO_SEVENTH)).sqrt());
    let a1_prime = (1.0 + g) * a1;
    let a2_prime = (1.0 + g) * a2;
    let c1_prime = (a1_prime * a1_prime + b1 * b1).sqrt();
    let c2_prime = (a2_prime * a2_prime + b2 * b2).sqrt();
    let hue_degrees = |b: f64, a_prime: f64| {
        if b == 0.0 && a_prime == 0.0 {
            0.0
        } else {
            b.atan2(a_prime).to_degrees().rem_euclid(360.0)
        }
    };
    let h1_prime = hue_degrees(b1, a1_prime);
    let h2_prime = hue_degrees(b2, a2_prime);

    let delta_l_prime = l2 - l1;
    let delta_c_prime = c2_prime - c1_prime;
    let chroma_product = c1_prime * c2_prime;
    let delta_h_angle = if chroma_product == 0.0 {
        0.0
    } else {
        let difference = h2_prime - h1_prime;
        if difference > 180.0 {
            difference - 360.0
        } else if difference < -180.0 {
            difference + 360.0
        } else {
            difference
        }
    };
    let delta_h_prime = 2.0 * chroma_product.sqrt() * (delta_h_angle.to_radians() / 2.0).sin();

    let l_mean = (l1 + l2) / 2.0;
    let c_mean_prime = (c1_prime + c2_prime) / 2.0;
    let h_mean_prime = if chroma_product == 0.0 {
        h1_prime + h2_prime
    } else if (h1_prime - h2_prime).abs() <= 180.0 {
        (h1_prime + h2_prime) / 2.0
    } else if h1_prime + h2_prime < 360.0 {
        (h1_prime + h2_prime + 360.0) / 2.0
    } else {
        (h1_prime + h2_prime - 360.0) / 2.0
    };

    let t = hue_weighting(h_mean_prime);
    let delta_theta = 30.0 * (-((h_mean_prime - 275.0) / 25.0).powi(2)).exp();
    let c_mean_prime_7 = c_mean_prime.powi(7);
    let rotation_chroma = 2.0 * (c_mean_prime_7 / (c_mean_prime_7 + TWENTY_FIVE_TO_SEVENTH)).sqrt();
    let l_offset_squared = (l_mean - 50.0).powi(2);
    let weight_l = 1.0 + 0.015 * l_offset_squared / (20.0 + l_offset_squared).sqrt();
    let weight_c = 1.0 + 0.045 * c_mean_prime;
    let weight_h = 1.0 + 0.015 * c_mean_prime * t;
    let rotation = -(2.0 * delta_theta).to_radians().sin() * rotation_chroma;

    let lightness_term = delta_l_prime / weight_l;
    let chroma_term = delta_c_prime / weight_c;
    let hue_term = delta_h_prime / weight_h;
    let squared = lightness_term.powi(2)
        + chroma_term.powi(2)
        + hue_term.powi(2)
        + rotation * chroma_term * hue_term;
    squared.max(0.0).sqrt() as f32
}

/// CIEDE2000's hue weighting T of the mean hue h (degrees), `1 − 0.17 cos(h − 30°) +
/// 0.24 cos 2h + 0.32 cos(3h + 6°) − 0.20 cos(4h − 63°)`, with its four cosines from one sine
/// and cosine of h by the multiple-angle identities.
fn hue_weighting(hue_degrees: f64) -> f64 {
    let (sin_1, cos_1) = hue_degrees.to_radians().sin_cos();
    let (sin_2, cos_2) = (2.0 * sin_1 * cos_1, 2.0 * cos_1 * cos_1 - 1.0);
    let (sin_3, cos_3) = (
        sin_1 * (3.0 - 4.0 * sin_1 * sin_1),
        cos_1 * (4.0 * cos_1 * cos_1 - 3.0),
    );
    let (sin_4, cos_4) = (2.0 * sin_2 * cos_2, 2.0 * cos_2 * cos_2 - 1.0);
    let (sin_30, cos_30) = 30f64.to_radians().sin_cos();
    let (sin_6, cos_6) = 6f64.to_radians().sin_cos();
    let (sin_63, cos_63) = 63f64.to_radians().sin_cos();
    1.0 - 0.17 * (cos_1 * cos_30 + sin_1 * sin_30)
        + 0.24 * cos_2
        + 0.32 * (cos_3 * cos_6 - sin_3 * sin_6)
        - 0.20 * (cos_4 * cos_63 + sin_4 * sin_63)
}

/// WCAG 2.x relative luminance of an sRGB colour, in 0..=1.
pub fn relative_luminance(colour: Rgb) -> f32 {
    // WCAG's 0.03928 threshold and the sRGB standard's 0.04045 agree on every 8-bit value.
    let luminance = 0.2126 * srgb_to_linear(colour.r)
        + 0.7152 * srgb_to_linear(colour.g)
        + 0.0722 * srgb_to_linear(colour.b);
    luminance as f32
}

/// WCAG 2.x contrast ratio between two colours, in 1..=21 whichever order they are given.
pub fn contrast_ratio(first: Rgb, second: Rgb) -> f32 {
    let first_luminance = relative_luminance(first);
    let second_luminance = relative_luminance(second);
    let lighter = first_luminance.max(second_luminance);
    let darker = first_luminance.min(second_luminance);
    (lighter + 0.05) / (darker + 0.05)
}

/// Returns `text` if it reaches `min_ratio` against `background`, otherwise the nearest colour of
/// the same hue (only L* moves) that does, or black/white when no colour of that hue can.
pub fn adjust_for_contrast(text: Rgb, background: Rgb, min_ratio: f32) -> Rgb {
    if min_ratio.is_nan() || contrast_ratio(text, background) >= min_ratio {
        return text;
    }
    let original = text.to_lab();
    let darker = search_lightness(original, background, min_ratio, 0.0);
    let lighter = search_lightness(original, background, min_ratio, 100.0);
    match (darker, lighter) {
        (Some(dark), Some(light)) => {
            if delta_e_2000(original, dark.to_lab()) <= delta_e_2000(original, light.to_lab()) {
                dark
            } else {
                light
            }
        }
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => {
            // No colour can reach the ratio (e.g. a mid-grey background asking for 7:1), so
            // give the one with the most contrast rather than an unchanged, unreadable text.
            let black = Rgb::new(0, 0, 0);
            let white = Rgb::new(255, 255, 255);
            if contrast_ratio(black, background) >= contrast_ratio(white, background) {
                black
            } else {
                white
            }
        }
    }
}

/// Walks L* from the original towards `limit` and returns the first colour of the original hue
/// that reaches `min_ratio`, refined by bisection between the last miss and the first hit.
fn search_lightness(original: Lab, background: Rgb, min_ratio: f32, limit: f32) -> Option<Rgb> {
    const STEP: f32 = 0.5;
    const REFINEMENTS: usize = 12;
    let passes = |lightness: f32| {
        let candidate = in_gamut_with_hue(original, lightness);
        (contrast_ratio(candidate, background) >= min_ratio).then_some(candidate)
    };
    let span = limit - original.l;
    // A scan rather than plain bisection: clamping into gamut can make contrast non-monotonic.
    let steps = (span.abs() / STEP).ceil() as usize;
    let mut last_miss = original.l;
    for step in 1..=steps {
        let lightness = if step == steps {
            limit
        } else {
            original.l + span.signum() * STEP * step as f32
        };
        if let Some(mut best) = passes(lightness) {
            let mut hit = lightness;
            for _ in 0..REFINEMENTS {
                let middle = (last_miss + hit) / 2.0;
                match passes(middle) {
                    Some(candidate) => {
                        hit = middle;
                        best = candidate;
                    }
                    None => last_miss = middle,
                }
            }
            return Some(best);
        }
        last_miss = lightness;
    }
    None
}

/// The colour at `lightness` with the original hue angle and as much of its chroma as sRGB allows.
fn in_gamut_with_hue(original: Lab, lightness: f32) -> Rgb {
    const GAMUT_TOLERANCE: f64 = 1e-6;
    const BISECTIONS: usize = 16;
    let at_scale = |scale: f32| Lab::new(lightness, original.a * scale, original.b * scale);
    let in_gamut = |lab: Lab| {
        lab.to_linear_srgb()
            .iter()
            .all(|&channel| (-GAMUT_TOLERANCE..=1.0 + GAMUT_TOLERANCE).contains(&channel))
    };
    if in_gamut(at_scale(1.0)) {
        return at_scale(1.0).to_rgb();
    }
    // Shrinking chroma keeps the hue, which clamping each channel would not.
    let (mut inside, mut outside) = (0.0_f32, 1.0_f32);
    for _ in 0..BISECTIONS {
        let middle = (inside + outside) / 2.0;
        if in_gamut(at_scale(middle)) {
            inside = middle;
        } else {
            outside = middle;
        }
    }
    at_scale(inside).to_rgb()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_lab_close(actual: Lab, expected: (f32, f32, f32), tolerance: f32) {
        let close = (actual.l - expected.0).abs() <= tolerance
            && (actual.a - expected.1).abs() <= tolerance
            && (actual.b - expected.2).abs() <= tolerance;
        assert!(
            close,
            "{actual:?} is not within {tolerance} of {expected:?}"
        );
    }

    #[test]
    fn parses_long_and_short_hex_in_any_case() {
        assert_eq!(Rgb::parse_hex("#1a2B3c"), Ok(Rgb::new(0x1A, 0x2B, 0x3C)));
        assert_eq!(Rgb::parse_hex("#fA0"), Ok(Rgb::new(0xFF, 0xAA, 0x00)));
        assert_eq!(Rgb::parse_hex("#000"), Ok(Rgb::new(0, 0, 0)));
    }

    #[test]
    fn rejects_malformed_hex() {
        assert!(matches!(
            Rgb::parse_hex("123456"),
            Err(ColourError::MissingHash(_))
        ));
        assert!(matches!(
            Rgb::parse_hex("#12345"),
            Err(ColourError::WrongLength(_))
        ));
        assert!(matches!(
            Rgb::parse_hex("#"),
            Err(ColourError::WrongLength(_))
        ));
        assert!(matches!(
            Rgb::parse_hex("#12345G"),
            Err(ColourError::InvalidDigit(_))
        ));
        assert!(matches!(
            Rgb::parse_hex("#ééé"),
            Err(ColourError::InvalidDigit(_))
        ));
        assert!(matches!(
            Rgb::parse_hex(" #123"),
            Err(ColourError::MissingHash(_))
        ));
    }

    #[test]
    fn formats_upper_case_hex_and_round_trips() {
        assert_eq!(Rgb::new(0x0A, 0xBC, 0xEF).to_hex(), "#0ABCEF");
        assert_eq!(
            Rgb::parse_hex("#abc").map(|c| c.to_hex()),
            Ok("#AABBCC".into())
        );
        assert_eq!(Rgb::new(1, 2, 3).to_string(), "#010203");
    }

    #[test]
    fn converts_reference_colours_to_lab() {
        // Reference values from Bruce Lindbloom's calculator (sRGB, D65, exact epsilon/kappa).
        assert_lab_close(Rgb::new(255, 255, 255).to_lab(), (100.0, 0.0, 0.0), 1e-3);
        assert_lab_close(Rgb::new(0, 0, 0).to_lab(), (0.0, 0.0, 0.0), 1e-4);
        assert_lab_close(
            Rgb::new(255, 0, 0).to_lab(),
            (53.2408, 80.0925, 67.2032),
            2e-3,
        );
        assert_lab_close(
            Rgb::new(0, 255, 0).to_lab(),
            (87.7347, -86.1827, 83.1793),
            2e-3,
        );
        assert_lab_close(
            Rgb::new(0, 0, 255).to_lab(),
            (32.2970, 79.1875, -107.8602),
            2e-3,
        );
        assert_lab_close(Rgb::new(128, 128, 128).to_lab(), (53.5850, 0.0, 0.0), 2e-3);
    }

    #[test]
    fn dark_colours_use_the_linear_segment() {
        // #010101 has Y = 0.000303 < epsilon, so L = kappa * Y: the cube root would give 6.2.
        let lab = Rgb::new(1, 1, 1).to_lab();
        assert!((lab.l - 0.2742).abs() < 1e-3, "{lab:?}");
    }

    #[test]
    fn lab_to_rgb_round_trips_every_grey_and_sample_colours() {
        for level in 0..=255u8 {
            let grey = Rgb::new(level, level, level);
            assert_eq!(grey.to_lab().to_rgb(), grey);
        }
        for hex in [
            "#FF0000", "#00FF00", "#0000FF", "#123456", "#C0FFEE", "#7F3A9B",
        ] {
            let colour = Rgb::parse_hex(hex).unwrap();
            assert_eq!(colour.to_lab().to_rgb(), colour, "{hex}");
        }
    }

    #[test]
    fn lab_to_rgb_clamps_out_of_gamut_colours() {
        assert_eq!(Lab::new(150.0, 0.0, 0.0).to_rgb(), Rgb::new(255, 255, 255));
        assert_eq!(Lab::new(-20.0, 0.0, 0.0).to_rgb(), Rgb::new(0, 0, 0));
        let saturated = Lab::new(50.0, 200.0, 0.0).to_rgb();
        assert_eq!(saturated.r, 255);
        assert_eq!(Lab::new(f32::NAN, 0.0, 0.0).to_rgb(), Rgb::new(0, 0, 0));
    }

    /// Sharma, Wu and Dalal (2005), Table 1: L1 a1 b1 L2 a2 b2 ΔE00.
    const SHARMA_PAIRS: [[f32; 7]; 34] = [
        [50.0, 2.6772, -79.7751, 50.0, 0.0, -82.7485, 2.0425],
        [50.0, 3.1571, -77.2803, 50.0, 0.0, -82.7485, 2.8615],
        [50.0, 2.8361, -74.0200, 50.0, 0.0, -82.7485, 3.4412],
        [50.0, -1.3802, -84.2814, 50.0, 0.0, -82.7485, 1.0000],
        [50.0, -1.1848, -84.8006, 50.0, 0.0, -82.7485, 1.0000],
        [50.0, -0.9009, -85.5211, 50.0, 0.0, -82.7485, 1.0000],
        [50.0, 0.0, 0.0, 50.0, -1.0, 2.0, 2.3669],
        [50.0, -1.0, 2.0, 50.0, 0.0, 0.0, 2.3669],
        [50.0, 2.4900, -0.0010, 50.0, -2.4900, 0.0009, 7.1792],
        [50.0, 2.4900, -0.0010, 50.0, -2.4900, 0.0010, 7.1792],
        [50.0, 2.4900, -0.0010, 50.0, -2.4900, 0.0011, 7.2195],
        [50.0, 2.4900, -0.0010, 50.0, -2.4900, 0.0012, 7.2195],
        [50.0, -0.0010, 2.4900, 50.0, 0.0009, -2.4900, 4.8045],
        [50.0, -0.0010, 2.4900, 50.0, 0.0010, -2.4900, 4.8045],
        [50.0, -0.0010, 2.4900, 50.0, 0.0011, -2.4900, 4.7461],
        [50.0, 2.5000, 0.0, 50.0, 0.0, -2.5000, 4.3065],
        [50.0, 2.5000, 0.0, 73.0, 25.0, -18.0, 27.1492],
        [50.0, 2.5000, 0.0, 61.0, -5.0, 29.0, 22.8977],
        [50.0, 2.5000, 0.0, 56.0, -27.0, -3.0, 31.9030],
        [50.0, 2.5000, 0.0, 58.0, 24.0, 15.0, 19.4535],
        [50.0, 2.5000, 0.0, 50.0, 3.1736, 0.5854, 1.0000],
        [50.0, 2.5000, 0.0, 50.0, 3.2972, 0.0, 1.0000],
        [50.0, 2.5000, 0.0, 50.0, 1.8634, 0.5757, 1.0000],
        [50.0, 2.5000, 0.0, 50.0, 3.2592, 0.3350, 1.0000],
        [
            60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644,
        ],
        [
            63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630,
        ],
        [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
        [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
        [
            22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373,
        ],
        [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
        [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
        [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
        [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
        [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
    ];

    #[test]
    fn delta_e_2000_matches_sharma_test_data_both_ways() {
        for (index, pair) in SHARMA_PAIRS.iter().enumerate() {
            let first = Lab::new(pair[0], pair[1], pair[2]);
            let second = Lab::new(pair[3], pair[4], pair[5]);
            let expected = pair[6];
            let forward = delta_e_2000(first, second);
            let backward = delta_e_2000(second, first);
            assert!(
                (forward - expected).abs() < 1e-4 && (backward - expected).abs() < 1e-4,
                "pair {}: got {forward} / {backward}, expected {expected}",
                index + 1
            );
        }
    }

    #[test]
    fn the_srgb_table_is_the_transfer_function() {
        for value in 0..=255u8 {
            assert_eq!(srgb_to_linear(value), srgb_decode(value), "{value}");
        }
        assert_eq!(srgb_to_linear(0), 0.0);
        assert_eq!(srgb_to_linear(255), 1.0);
    }

    /// The identities agree with the four cosines of the formula, around the whole circle.
    #[test]
    fn hue_weighting_is_the_formula_with_four_cosines() {
        for step in 0..=3600 {
            let h = f64::from(step) / 10.0;
            let direct = 1.0 - 0.17 * (h - 30.0).to_radians().cos()
                + 0.24 * (2.0 * h).to_radians().cos()
                + 0.32 * (3.0 * h + 6.0).to_radians().cos()
                - 0.20 * (4.0 * h - 63.0).to_radians().cos();
            assert!((hue_weighting(h) - direct).abs() < 1e-12, "h = {h}");
        }
    }

    #[test]
    fn delta_e_2000_of_identical_colours_is_zero() {
        let grey = Rgb::new(128, 128, 128).to_lab();
        assert_eq!(delta_e_2000(grey, grey), 0.0);
        let black = Lab::new(0.0, 0.0, 0.0);
        assert_eq!(delta_e_2000(black, black), 0.0);
    }

    #[test]
    fn wcag_luminance_and_contrast_reference_values() {
        let black = Rgb::new(0, 0, 0);
        let white = Rgb::new(255, 255, 255);
        assert_eq!(relative_luminance(black), 0.0);
        assert!((relative_luminance(white) - 1.0).abs() < 1e-6);
        assert!((contrast_ratio(black, white) - 21.0).abs() < 1e-4);
        assert!((contrast_ratio(white, black) - 21.0).abs() < 1e-4);
        let grey = Rgb::parse_hex("#777777").unwrap();
        assert!((contrast_ratio(grey, white) - 4.478).abs() < 0.002);
        assert!((contrast_ratio(white, white) - 1.0).abs() < 1e-6);
        // #767676 is the well-known lightest grey that passes AA (4.54:1) on white.
        let passing_grey = Rgb::parse_hex("#767676").unwrap();
        assert!((contrast_ratio(passing_grey, white) - 4.542).abs() < 0.002);
    }

    #[test]
    fn adjust_for_contrast_keeps_text_that_already_passes() {
        let navy = Rgb::parse_hex("#1B2A4A").unwrap();
        let cream = Rgb::parse_hex("#FAF3E0").unwrap();
        assert_eq!(adjust_for_contrast(navy, cream, 4.5), navy);
    }

    #[test]
    fn adjust_for_contrast_darkens_grey_on_white_by_the_smallest_step() {
        let white = Rgb::new(255, 255, 255);
        let adjusted = adjust_for_contrast(Rgb::parse_hex("#777777").unwrap(), white, 4.5);
        assert!(contrast_ratio(adjusted, white) >= 4.5);
        // #767676 is the lightest grey reaching 4.5:1; the search must stop there or one
        // level darker, not overshoot towards black.
        assert!(
            adjusted.r == adjusted.g && adjusted.g == adjusted.b,
            "{adjusted}"
        );
        assert!((0x74..=0x76).contains(&adjusted.r), "{adjusted}");
    }

    #[test]
    fn adjust_for_contrast_keeps_the_hue_of_a_coloured_text() {
        let orange = Rgb::parse_hex("#F28C28").unwrap();
        let white = Rgb::new(255, 255, 255);
        let adjusted = adjust_for_contrast(orange, white, 4.5);
        assert!(contrast_ratio(adjusted, white) >= 4.5);
        let hue = |lab: Lab| lab.b.atan2(lab.a).to_degrees();
        let hue_shift = (hue(adjusted.to_lab()) - hue(orange.to_lab())).abs();
        assert!(hue_shift < 3.0, "{adjusted} shifted hue by {hue_shift}°");
        assert!(adjusted.to_lab().l < orange.to_lab().l);
    }

    #[test]
    fn adjust_for_contrast_lightens_on_dark_backgrounds() {
        let background = Rgb::parse_hex("#101820").unwrap();
        let teal = Rgb::parse_hex("#1F5F5B").unwrap();
        let adjusted = adjust_for_contrast(teal, background, 7.0);
        assert!(contrast_ratio(adjusted, background) >= 7.0);
        assert!(adjusted.to_lab().l > teal.to_lab().l);
    }

    #[test]
    fn adjust_for_contrast_falls_back_to_the_strongest_extreme() {
        let mid_grey = Rgb::new(118, 118, 118);
        // Neither black (≈4.6:1) nor white (≈4.5:1) can reach 10:1 on mid grey.
        let adjusted = adjust_for_contrast(Rgb::new(120, 0, 0), mid_grey, 10.0);
        assert_eq!(adjusted, Rgb::new(0, 0, 0));
        let impossible = adjust_for_contrast(Rgb::new(0, 0, 0), Rgb::new(255, 255, 255), 30.0);
        assert_eq!(impossible, Rgb::new(0, 0, 0));
    }
}
