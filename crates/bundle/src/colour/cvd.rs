//! Colour-vision-deficiency check: how far apart a palette's four roles stay for people with
//! protanopia, deuteranopia or tritanopia, after Machado, Oliveira and Fernandes (2009),
//! "A Physiologically-based Model for Simulation of Color Vision Deficiency", IEEE TVCG 15(6).

use super::{delta_e_2000, linear_to_srgb, multiply, srgb_to_linear, Lab, Rgb};

/// Smallest CIEDE2000 difference between any two roles, in any of the simulated visions, for a
/// palette to count as safe. Differences of 2–10 are "perceptible at a glance" but read as
/// variants of one colour; at 10 and above two roles read as different colours
/// (docs/contract-choices.md says why and where the scale comes from).
pub const CVD_SAFE_MIN_DELTA_E: f32 = 10.0;

/// A dichromacy the check simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deficiency {
    /// No L cones (red-blind).
    Protanopia,
    /// No M cones (green-blind).
    Deuteranopia,
    /// No S cones (blue-blind).
    Tritanopia,
}

impl Deficiency {
    /// Every deficiency the check covers.
    pub const ALL: [Deficiency; 3] = [
        Deficiency::Protanopia,
        Deficiency::Deuteranopia,
        Deficiency::Tritanopia,
    ];

    /// Machado et al.'s severity-1.0 matrix for linear sRGB, as published with the paper.
    pub const fn matrix(self) -> &'static [[f64; 3]; 3] {
        match self {
            Deficiency::Protanopia => &PROTANOPIA,
            Deficiency::Deuteranopia => &DEUTERANOPIA,
            Deficiency::Tritanopia => &TRITANOPIA,
        }
    }
}

const PROTANOPIA: [[f64; 3]; 3] = [
    [0.152286, 1.052583, -0.204868],
    [0.114503, 0.786281, 0.099216],
    [-0.003882, -0.048116, 1.051998],
];
const DEUTERANOPIA: [[f64; 3]; 3] = [
    [0.367322, 0.860646, -0.227968],
    [0.280085, 0.672501, 0.047413],
    [-0.011820, 0.042940, 0.968881],
];
const TRITANOPIA: [[f64; 3]; 3] = [
    [1.255528, -0.076749, -0.178779],
    [-0.078411, 0.930809, 0.147602],
    [0.004733, 0.691367, 0.303900],
];

/// How `colour` looks with `deficiency`: decoded to linear sRGB, multiplied by the Machado
/// matrix, clamped to the gamut and encoded back.
pub fn simulate(colour: Rgb, deficiency: Deficiency) -> Rgb {
    let linear = [
        srgb_to_linear(colour.r),
        srgb_to_linear(colour.g),
        srgb_to_linear(colour.b),
    ];
    let [r, g, b] = multiply(deficiency.matrix(), linear);
    Rgb::new(linear_to_srgb(r), linear_to_srgb(g), linear_to_srgb(b))
}

/// The result of the check, as the reply's `palettes[].cvd` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CvdCheck {
    /// `min_delta_e` is at least [`CVD_SAFE_MIN_DELTA_E`].
    pub safe: bool,
    /// Smallest CIEDE2000 difference between two roles in normal and simulated vision, rounded
    /// down to one decimal so that `safe` can be re-derived from the reported number.
    pub min_delta_e: f32,
}

/// A colour as each vision the check covers sees it, in CIELAB: normal vision, then each of
/// [`Deficiency::ALL`]. Computing it (four conversions to CIELAB, three simulations) is most of
/// a check, so a colour met again (a catalogue role, a brief's brand colour) is seen once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen([Lab; 4]);

impl Seen {
    /// How `colour` looks in each vision.
    pub fn of(colour: Rgb) -> Seen {
        let [protan, deutan, tritan] =
            Deficiency::ALL.map(|deficiency| simulate(colour, deficiency).to_lab());
        Seen([colour.to_lab(), protan, deutan, tritan])
    }
}

/// Checks four role colours (background, primary, accent, text; the order does not matter):
/// the smallest CIEDE2000 difference of the 6 pairs in normal vision and in each simulation.
pub fn check_roles(roles: [Rgb; 4]) -> CvdCheck {
    check_seen(&roles.map(Seen::of))
}

/// The role pairs a check compares, as indices into its four roles.
pub const ROLE_PAIRS: [(usize, usize); 6] = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];

/// [`check_roles`] for roles already seen in every vision.
pub fn check_seen(roles: &[Seen; 4]) -> CvdCheck {
    check_seen_with(roles, |_| None)
}

/// [`check_seen`] where `known(pair)` may already hold a pair's [`pair_delta_e`] (pairs by
/// their position in [`ROLE_PAIRS`]): roles a brief did not change need not be compared again.
pub fn check_seen_with(roles: &[Seen; 4], known: impl Fn(usize) -> Option<f32>) -> CvdCheck {
    let min_delta_e = ROLE_PAIRS
        .iter()
        .enumerate()
        .map(|(pair, &(first, second))| {
            known(pair).unwrap_or_else(|| pair_delta_e(&roles[first], &roles[second]))
        })
        .fold(f32::INFINITY, f32::min);
    // Rounded down, never up: a palette reported at 10.0 must really reach 10.0.
    let min_delta_e = (min_delta_e * 10.0).floor() / 10.0;
    CvdCheck {
        safe: min_delta_e >= CVD_SAFE_MIN_DELTA_E,
        min_delta_e,
    }
}

/// The smallest CIEDE2000 difference between two colours in normal vision and in each
/// simulated deficiency.
pub fn pair_delta_e(first: &Seen, second: &Seen) -> f32 {
    first
        .0
        .iter()
        .zip(&second.0)
        .map(|(&a, &b)| delta_e_2000(a, b))
        .fold(f32::INFINITY, f32::min)
}

#[cfg(test)]
#[path = "cvd_tests.rs"]
mod tests;
