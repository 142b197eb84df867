//! Per-bundle tables for diverse suggestions: how far apart every two palettes look, and how
//! alike every two styles and every two font pairings are. Diversity asks for hundreds of pairs
//! per brief; computing them there was a quarter of post-processing, then most of its string
//! comparing.

use crate::catalogue::{FontPairing, Palette, Style};
use crate::colour::Lab;

/// Mean over `first`'s colours of the CIE76 ΔE to the nearest colour of `second`; infinite when
/// either has none.
pub fn palette_distance(first: &[Lab], second: &[Lab]) -> f32 {
    if first.is_empty() || second.is_empty() {
        return f32::INFINITY;
    }
    let total: f32 = first
        .iter()
        .map(|&a| {
            // The root of the least square is the least root (sqrt is monotonic and correctly
            // rounded): one root per colour, not one per pair.
            second
                .iter()
                .map(|&b| (a.l - b.l).powi(2) + (a.a - b.a).powi(2) + (a.b - b.b).powi(2))
                .fold(f32::INFINITY, f32::min)
                .sqrt()
        })
        .sum();
    total / first.len() as f32
}

/// How far apart every two palettes of a catalogue look: the mean of [`palette_distance`] both
/// ways, computed once per bundle. Diversity asks for dozens of pairs per brief, a quarter of the
/// recommendation's time when it computed them then; the table is n² floats (700 KB for 420).
#[derive(Debug, Clone, Default)]
pub struct PaletteDistances {
    count: usize,
    distances: Vec<f32>,
}

impl PaletteDistances {
    /// The table of `labs` (each palette's colours in CIELAB, catalogue order).
    pub fn new(labs: &[Vec<Lab>]) -> PaletteDistances {
        let count = labs.len();
        let mut distances = vec![0.0; count * count];
        for (first, a) in labs.iter().enumerate() {
            for (second, b) in labs.iter().enumerate().skip(first) {
                let distance = (palette_distance(a, b) + palette_distance(b, a)) / 2.0;
                distances[first * count + second] = distance;
                distances[second * count + first] = distance;
            }
        }
        PaletteDistances { count, distances }
    }

    /// The distance of two catalogue palettes; `None` for an index outside the catalogue.
    pub fn get(&self, first: usize, second: usize) -> Option<f32> {
        if first >= self.count || second >= self.count {
            return None;
        }
        self.distances.get(first * self.count + second).copied()
    }
}

/// Words too common in style descriptions to say anything about the look.
const STYLE_STOP_WORDS: &[&str] = &[
    "and", "the", "for", "with", "its", "one", "two", "does", "that", "from", "into", "or", "of",
    "a", "an", "as", "by", "in", "on", "to", "is", "at",
];

/// Each style's distinct content words, ASCII lower-cased, in catalogue order: its description's
/// words of three or more letters, function words left out. Computed once per bundle, for how
/// alike two styles look (the only thing the catalogue says about a look).
pub fn style_words(styles: &[Style]) -> Vec<Vec<String>> {
    styles
        .iter()
        .map(|style| {
            let mut distinct: Vec<String> = Vec::new();
            let words = style.description.split(|c: char| !c.is_alphanumeric());
            for word in words.filter(|word| word.chars().count() > 2) {
                let word = word.to_ascii_lowercase();
                if !STYLE_STOP_WORDS.contains(&word.as_str()) && !distinct.contains(&word) {
                    distinct.push(word);
                }
            }
            distinct
        })
        .collect()
}

/// Similarity of two font pairings with the same heading face (the pairing's visible voice).
pub const SAME_HEADING_SIMILARITY: f32 = 0.6;
/// Similarity of two font pairings with the same body face only.
pub const SAME_BODY_SIMILARITY: f32 = 0.3;
/// Weight of the traits' Jaccard index in font similarity. Shared traits make pairings alike in
/// mood, not copies: at full weight, for a coffee brief, a pairing sharing 4 of 6 traits with the
/// top one (score 0.38) gave way to one of another mood at less than half its score.
pub const TRAITS_WEIGHT: f32 = 0.5;

/// How alike two font pairings are, in [0, 1]: 1 for the same faces, 0.6 for the same heading,
/// 0.3 for the same body, at least half the Jaccard index of their traits.
pub fn font_similarity(first: &FontPairing, second: &FontPairing) -> f32 {
    let faces = match (first.heading == second.heading, first.body == second.body) {
        (true, true) => 1.0,
        (true, false) => SAME_HEADING_SIMILARITY,
        (false, true) => SAME_BODY_SIMILARITY,
        (false, false) => 0.0,
    };
    faces.max(TRAITS_WEIGHT * jaccard(&first.traits, &second.traits))
}

/// How alike two styles are, in [0, 1]: 1 for the same name, else the Jaccard index of their
/// content words ([`style_words`]).
pub fn style_similarity(first: (&Style, &[String]), second: (&Style, &[String])) -> f32 {
    if first.0.name.eq_ignore_ascii_case(&second.0.name) {
        return 1.0;
    }
    jaccard(first.1, second.1)
}

/// |A ∩ B| / |A ∪ B| of two lists without repeats; 0 when both are empty (nothing known is
/// nothing shared).
fn jaccard(first: &[String], second: &[String]) -> f32 {
    let shared = first.iter().filter(|item| second.contains(item)).count();
    let union = first.len() + second.len() - shared;
    if union == 0 {
        return 0.0;
    }
    shared as f32 / union as f32
}

/// Every two catalogue items' similarity, computed once per bundle (n² floats: 34 KB for 93
/// font pairings).
#[derive(Debug, Clone, Default)]
pub struct Similarities {
    count: usize,
    values: Vec<f32>,
}

impl Similarities {
    /// The table of `count` items under `similarity` (of two catalogue indices).
    pub fn new(count: usize, similarity: impl Fn(usize, usize) -> f32) -> Similarities {
        let values = (0..count * count)
            .map(|at| similarity(at / count, at % count))
            .collect();
        Similarities { count, values }
    }

    /// The similarities of a font catalogue's pairings ([`font_similarity`]).
    pub fn of_fonts(pairings: &[FontPairing]) -> Similarities {
        Similarities::new(pairings.len(), |first, second| {
            font_similarity(&pairings[first], &pairings[second])
        })
    }

    /// The similarities of a style catalogue's styles, given their [`style_words`].
    pub fn of_styles(styles: &[Style], words: &[Vec<String>]) -> Similarities {
        let count = styles.len().min(words.len());
        Similarities::new(count, |first, second| {
            style_similarity(
                (&styles[first], &words[first]),
                (&styles[second], &words[second]),
            )
        })
    }

    /// The similarity of two catalogue items; `None` for an index outside the catalogue.
    pub fn get(&self, first: usize, second: usize) -> Option<f32> {
        if first >= self.count || second >= self.count {
            return None;
        }
        self.values.get(first * self.count + second).copied()
    }
}

/// Each palette's family as a number (in order of first appearance in the catalogue), so that a
/// brief's candidate pool finds every family's best palette without comparing names: 420 palettes
/// against 14 names was most of the string comparing per brief.
#[derive(Debug, Clone, Default)]
pub struct PaletteFamilies {
    of: Vec<usize>,
    names: Vec<String>,
}

impl PaletteFamilies {
    /// The families of `palettes`; an empty family name is a family of its own.
    pub fn new(palettes: &[Palette]) -> PaletteFamilies {
        let mut names: Vec<&str> = Vec::new();
        let of = palettes
            .iter()
            .map(|palette| {
                let name = palette.family.as_str();
                names
                    .iter()
                    .position(|known| *known == name)
                    .unwrap_or_else(|| {
                        names.push(name);
                        names.len() - 1
                    })
            })
            .collect();
        PaletteFamilies {
            of,
            names: names.into_iter().map(str::to_string).collect(),
        }
    }

    /// The number of the family called `name`, if a palette has it.
    pub fn number(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|known| known == name)
    }

    /// The family number of a catalogue palette; `None` outside the catalogue.
    pub fn of(&self, palette: usize) -> Option<usize> {
        self.of.get(palette).copied()
    }

    /// How many families there are: every family number is below it.
    pub fn count(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: each colour's root distance to every colour of the other, the least.
    fn distance_by_every_root(first: &[Lab], second: &[Lab]) -> f32 {
        let total: f32 = first
            .iter()
            .map(|&a| {
                second
                    .iter()
                    .map(|&b| {
                        ((a.l - b.l).powi(2) + (a.a - b.a).powi(2) + (a.b - b.b).powi(2)).sqrt()
                    })
                    .fold(f32::INFINITY, f32::min)
            })
            .sum();
        total / first.len() as f32
    }

    fn random_palette(random: &mut fastrand::Rng) -> Vec<Lab> {
        (0..random.usize(1..7))
            .map(|_| Lab {
                l: random.f32() * 100.0,
                a: random.f32() * 200.0 - 100.0,
                b: random.f32() * 200.0 - 100.0,
            })
            .collect()
    }

    #[test]
    fn distances_are_the_definitions_both_ways_bit_for_bit() {
        let mut random = fastrand::Rng::with_seed(420);
        let labs: Vec<Vec<Lab>> = (0..40).map(|_| random_palette(&mut random)).collect();
        let table = PaletteDistances::new(&labs);
        for (i, a) in labs.iter().enumerate() {
            for (j, b) in labs.iter().enumerate() {
                let want = (distance_by_every_root(a, b) + distance_by_every_root(b, a)) / 2.0;
                assert_eq!(
                    table.get(i, j).map(f32::to_bits),
                    Some(want.to_bits()),
                    "{i} {j}"
                );
            }
        }
        assert_eq!(table.get(40, 0), None);
        assert_eq!(table.get(0, 40), None);
        assert_eq!(palette_distance(&[], &labs[0]), f32::INFINITY);
    }

    #[test]
    fn style_words_are_distinct_lower_case_content_words() {
        let style = |description: &str| Style {
            id: "s".into(),
            name: "S".into(),
            name_zh: String::new(),
            description: description.into(),
        };
        let words = style_words(&[
            style("Bold type and BOLD colour, for the shelf; ink-heavy"),
            style(""),
        ]);
        assert_eq!(
            words[0],
            ["bold", "type", "colour", "shelf", "ink", "heavy"]
        );
        assert!(words[1].is_empty());
    }

    #[test]
    fn families_are_numbered_by_first_appearance() {
        let palette = |family: &str| Palette {
            id: family.into(),
            name: family.into(),
            name_zh: String::new(),
            family: family.into(),
            colors: Vec::new(),
            roles: crate::catalogue::PaletteRoles {
                background: "#ffffff".into(),
                primary: "#000000".into(),
                accent: "#000000".into(),
                text: "#000000".into(),
            },
        };
        let families = PaletteFamilies::new(&[
            palette("vivid"),
            palette("morandi"),
            palette("vivid"),
            palette(""),
        ]);
        assert_eq!(
            (0..5).map(|i| families.of(i)).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(0), Some(2), None]
        );
        assert_eq!(families.count(), 3);
    }

    #[test]
    fn a_similarity_table_answers_each_pair_in_order() {
        let table = Similarities::new(7, |first, second| (first * 10 + second) as f32);
        for first in 0..7 {
            for second in 0..7 {
                assert_eq!(table.get(first, second), Some((first * 10 + second) as f32));
            }
        }
        assert_eq!(table.get(7, 0), None);
        assert_eq!(table.get(0, 7), None);
    }
}
