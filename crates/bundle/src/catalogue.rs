//! The vocabulary and catalogues: what the model's input slots and output indices mean.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use crate::colour::cvd::{check_seen, pair_delta_e, CvdCheck, Seen, ROLE_PAIRS};
use crate::colour::{adjust_for_contrast, ColourError, Lab, Rgb};
use crate::spelling;

/// Term groups as the vocabulary names them.
pub(crate) const GROUPS: [&str; 7] = [
    "product", "audience", "mood", "season", "occasion", "palette", "keyword",
];

/// The brief terms the model understands, with their synonyms indexed for matching.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    /// The vocabulary's version.
    pub version: String,
    /// Every term, in input-slot order.
    pub terms: Vec<Term>,
    /// normalised synonym → term index
    by_synonym: HashMap<String, usize>,
    /// Every synonym of at least 2 characters, found in one pass over a value.
    synonyms: Synonyms,
    /// The synonyms of Latin letters and spaces, by length: what a misspelt value is compared
    /// with (only those within its allowed slips in length, of some 12 000).
    spelled: Vec<(String, usize)>,
}

/// The synonyms `contained` looks for, as one automaton: one pass over a value instead of one
/// substring search per synonym (1 700 of them).
#[derive(Debug, Clone)]
struct Synonyms {
    automaton: AhoCorasick,
    /// Per pattern, in the automaton's order.
    patterns: Vec<Pattern>,
}

/// One synonym the automaton finds.
#[derive(Debug, Clone, Copy)]
struct Pattern {
    /// Its term's input slot.
    term: usize,
    /// ASCII synonyms count only as whole words.
    ascii: bool,
    /// Nothing but basic colour words ("pink", 粉紫): see [`Vocabulary::contained`].
    colour: bool,
}

impl Synonyms {
    fn build(by_synonym: &HashMap<String, usize>) -> Result<Synonyms, VocabularyError> {
        let mut listed: Vec<(&String, usize)> = by_synonym
            .iter()
            .filter(|(synonym, _)| synonym.chars().count() >= 2)
            .map(|(synonym, &term)| (synonym, term))
            .collect();
        listed.sort();
        let automaton = AhoCorasick::new(listed.iter().map(|(synonym, _)| synonym.as_str()))?;
        let patterns = listed
            .iter()
            .map(|(synonym, term)| Pattern {
                term: *term,
                ascii: synonym.is_ascii(),
                colour: is_colour_name(synonym),
            })
            .collect();
        Ok(Synonyms {
            automaton,
            patterns,
        })
    }
}

/// One vocabulary term (one input slot).
#[derive(Debug, Clone, Deserialize)]
pub struct Term {
    /// Its input slot.
    pub index: usize,
    /// Its id, `group:name`.
    pub id: String,
    /// Its group: `product`, `audience`, `mood`, `season`, `occasion`, `palette` or `keyword`.
    pub group: String,
    /// English synonyms.
    pub en: Vec<String>,
    /// Chinese synonyms.
    pub zh: Vec<String>,
}

#[derive(Deserialize)]
struct VocabularyFile {
    version: String,
    terms: Vec<Term>,
}

/// Problems with a vocabulary file.
#[derive(Debug, thiserror::Error)]
pub enum VocabularyError {
    /// The file is not the vocabulary's JSON.
    #[error("vocabulary is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A term's index is not its position.
    #[error("term {position} has index {index}; indices must be 0, 1, 2, … in order")]
    IndexOrder {
        /// The term's position in the file.
        position: usize,
        /// The index it claims.
        index: usize,
    },
    /// A term names a group the vocabulary does not have.
    #[error("term '{id}' has unknown group '{group}'")]
    UnknownGroup {
        /// The term's id.
        id: String,
        /// The group it names.
        group: String,
    },
    /// The synonyms are too many or too long to search for in one pass.
    #[error("synonyms cannot be indexed for matching: {0}")]
    Synonyms(#[from] aho_corasick::BuildError),
    /// Two terms share a synonym.
    #[error("synonym '{synonym}' belongs to both '{first}' and '{second}'")]
    DuplicateSynonym {
        /// The synonym.
        synonym: String,
        /// The first term that has it.
        first: String,
        /// The second term that has it.
        second: String,
    },
}

/// The contract's normalisation: NFKC, lower case, `-`/`_` as spaces, whitespace collapsed.
pub fn normalise(text: &str) -> String {
    let folded: String = text
        .nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| if c == '-' || c == '_' { ' ' } else { c })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Vocabulary {
    /// Parses and indexes `vocabulary.json`.
    pub fn parse(json: &[u8]) -> Result<Vocabulary, VocabularyError> {
        let file: VocabularyFile = serde_json::from_slice(json)?;
        let mut by_synonym: HashMap<String, usize> = HashMap::new();
        for (position, term) in file.terms.iter().enumerate() {
            if term.index != position {
                return Err(VocabularyError::IndexOrder {
                    position,
                    index: term.index,
                });
            }
            if !GROUPS.contains(&term.group.as_str()) {
                return Err(VocabularyError::UnknownGroup {
                    id: term.id.clone(),
                    group: term.group.clone(),
                });
            }
            for synonym in term.en.iter().chain(&term.zh) {
                let key = normalise(synonym);
                if key.is_empty() {
                    continue;
                }
                if let Some(&other) = by_synonym.get(&key) {
                    if other != position {
                        return Err(VocabularyError::DuplicateSynonym {
                            synonym: synonym.clone(),
                            first: file.terms[other].id.clone(),
                            second: term.id.clone(),
                        });
                    }
                }
                by_synonym.insert(key, position);
            }
        }
        let synonyms = Synonyms::build(&by_synonym)?;
        let mut spelled: Vec<(String, usize)> = by_synonym
            .iter()
            .filter(|(synonym, _)| spelling::is_latin(synonym))
            .map(|(synonym, &term)| (synonym.clone(), term))
            .collect();
        spelled.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        Ok(Vocabulary {
            version: file.version,
            terms: file.terms,
            by_synonym,
            synonyms,
            spelled,
        })
    }

    /// Number of input slots.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether the vocabulary has no term.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The term an already normalised text names exactly, if it is in one of `groups`.
    pub fn exact(&self, normalised: &str, groups: &[&str]) -> Option<&Term> {
        let term = &self.terms[*self.by_synonym.get(normalised)?];
        groups.contains(&term.group.as_str()).then_some(term)
    }

    /// The one term with a synonym nearest to the normalised text within the slips its length
    /// allows ("traditonal" is traditional): among `groups` first, else among every group;
    /// `None` when no term is that near, or when several are equally near. One pass serves both.
    pub fn misspelt(&self, normalised: &str, groups: &[&str]) -> Option<&Term> {
        let limit = spelling::edits_allowed(normalised)?;
        let first = self
            .spelled
            .partition_point(|(synonym, _)| synonym.len() + limit < normalised.len());
        let last = self
            .spelled
            .partition_point(|(synonym, _)| synonym.len() <= normalised.len() + limit);
        let (mut own, mut any) = (spelling::Nearest::default(), spelling::Nearest::default());
        for (synonym, term) in self.spelled.get(first..last).unwrap_or_default() {
            let (value, synonym) = (normalised.as_bytes(), synonym.as_bytes());
            if !spelling::starts_in_line(value, synonym) {
                continue;
            }
            let Some(distance) = spelling::distance_within(value, synonym, limit) else {
                continue;
            };
            if groups.contains(&self.terms[*term].group.as_str()) {
                own.offer(distance, *term);
            }
            any.offer(distance, *term);
        }
        let term = own.one().or_else(|| any.one())?;
        Some(&self.terms[term])
    }

    /// Every term with a synonym (of at least 2 characters) contained in the normalised text;
    /// ASCII synonyms only at word boundaries, so "tea" does not match inside "steam". A synonym
    /// found inside a longer one of another term is part of that one: "spring water" is bottled
    /// water, not also the season. A bare colour name gives way to a palette or a keyword named
    /// beside it: in "vaporwave pinks" the pinks are vaporwave's, in "orange gradient" the
    /// orange is the gradient's, in "vivid red" the red is vivid's.
    pub fn contained(&self, normalised: &str) -> Vec<&Term> {
        let matches: Vec<(Pattern, usize, usize)> = self
            .synonyms
            .automaton
            .find_overlapping_iter(normalised)
            .filter_map(|hit| {
                let pattern = self.synonyms.patterns[hit.pattern().as_usize()];
                let whole =
                    !pattern.ascii || at_word_boundaries(normalised, hit.start(), hit.end());
                whole.then_some((pattern, hit.start(), hit.end()))
            })
            .collect();
        let inside_longer = |&(found, start, end): &(Pattern, usize, usize)| {
            matches.iter().any(|&(other, from, to)| {
                other.term != found.term && from <= start && end <= to && to - from > end - start
            })
        };
        let kept: Vec<Pattern> = matches
            .iter()
            .filter(|found| !inside_longer(found))
            .map(|&(pattern, _, _)| pattern)
            .collect();
        let names_a_look = kept.iter().any(|pattern| {
            !pattern.colour
                && matches!(
                    self.terms[pattern.term].group.as_str(),
                    "palette" | "keyword"
                )
        });
        let only_by_colour = |term: usize| {
            kept.iter()
                .filter(|pattern| pattern.term == term)
                .all(|pattern| pattern.colour)
        };
        let mut found: Vec<usize> = kept
            .iter()
            .map(|pattern| pattern.term)
            .filter(|&term| !(names_a_look && only_by_colour(term)))
            .collect();
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|index| &self.terms[index]).collect()
    }
}

/// Basic colour terms (Berlin and Kay's eleven, grey spelt both ways); a synonym made of them
/// alone names a colour, not a palette's character.
const COLOUR_WORDS: &[&str] = &[
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white",
    "grey", "gray",
];

/// The same colours in Chinese, one character each (橘 is orange too).
const COLOUR_CHARACTERS: &str = "红橙橘黄绿蓝紫粉棕黑白灰";

/// Whether a normalised synonym is nothing but basic colour words: "pinks", "red yellow", 粉紫,
/// 橙色 (a trailing 色 is "colour").
fn is_colour_name(synonym: &str) -> bool {
    let colour_word = |word: &str| {
        COLOUR_WORDS.contains(&word)
            || word
                .strip_suffix('s')
                .is_some_and(|singular| COLOUR_WORDS.contains(&singular))
    };
    if synonym.split(' ').all(colour_word) {
        return true;
    }
    let core = synonym.strip_suffix('色').unwrap_or(synonym);
    !core.is_empty() && core.chars().all(|c| COLOUR_CHARACTERS.contains(c))
}

/// ASCII synonyms count only as whole words: no ASCII letter or digit right before or after,
/// so "tea" is not found in "steam" (CJK neighbours are fine: `ins风` holds `ins`).
fn at_word_boundaries(haystack: &str, start: usize, end: usize) -> bool {
    let is_word = |c: char| c.is_ascii() && c.is_alphanumeric();
    let before = haystack[..start].chars().next_back();
    let after = haystack[end..].chars().next();
    !before.is_some_and(is_word) && !after.is_some_and(is_word)
}

/// Styles catalogue (`styles` output indices).
#[derive(Debug, Clone, Deserialize)]
pub struct StyleCatalogue {
    /// The catalogue's version.
    pub version: String,
    /// Styles in output-index order.
    pub styles: Vec<Style>,
}

/// One style.
#[derive(Debug, Clone, Deserialize)]
pub struct Style {
    /// Its id.
    pub id: String,
    /// Its English name.
    pub name: String,
    /// Its Chinese name.
    #[serde(default)]
    pub name_zh: String,
    /// What it looks like.
    #[serde(default)]
    pub description: String,
}

/// Palettes catalogue (`palettes` output indices).
#[derive(Debug, Clone, Deserialize)]
pub struct PaletteCatalogue {
    /// The catalogue's version.
    pub version: String,
    /// Palettes in output-index order.
    pub palettes: Vec<Palette>,
}

/// One palette as catalogued.
#[derive(Debug, Clone, Deserialize)]
pub struct Palette {
    /// Its id.
    pub id: String,
    /// Its English name.
    pub name: String,
    /// Its Chinese name.
    #[serde(default)]
    pub name_zh: String,
    /// The colour family it belongs to.
    #[serde(default)]
    pub family: String,
    /// Its colours as hex strings.
    pub colors: Vec<String>,
    /// Which colour plays which part.
    pub roles: PaletteRoles,
}

/// Colour roles as catalogued (hex strings).
#[derive(Debug, Clone, Deserialize)]
pub struct PaletteRoles {
    /// The background colour.
    pub background: String,
    /// The main colour.
    pub primary: String,
    /// The accent colour.
    pub accent: String,
    /// The text colour.
    pub text: String,
}

/// A catalogued palette colour that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("palette '{palette}': {source}")]
pub struct PaletteColourError {
    /// The palette's id.
    pub palette: String,
    /// What is wrong with the colour.
    pub source: ColourError,
}

/// Each palette's colours in CIELAB, in catalogue order (for diversity checks per brief).
pub fn palette_labs(palettes: &[Palette]) -> Result<Vec<Vec<Lab>>, PaletteColourError> {
    palettes
        .iter()
        .map(|palette| {
            palette
                .colors
                .iter()
                .map(|hex| {
                    Rgb::parse_hex(hex)
                        .map(|rgb| rgb.to_lab())
                        .map_err(|source| PaletteColourError {
                            palette: palette.id.clone(),
                            source,
                        })
                })
                .collect()
        })
        .collect()
}

/// Text must reach this WCAG contrast ratio on the background (the contract's 4.5:1).
pub const MIN_TEXT_CONTRAST: f32 = 4.5;

/// A palette's four roles as the catalogue gives them (text made readable on the background),
/// each with how every vision sees it, and their colour-vision check: computed once per bundle.
/// A brief's brand colours replace only the primary and accent roles, so the background and
/// text are never seen again per brief.
#[derive(Debug, Clone)]
pub struct SeenRoles {
    /// Background, primary, accent and text, each with its views.
    pub roles: [(Rgb, Seen); 4],
    /// The check of these four roles: the answer for a brief without brand colours.
    pub unbranded: CvdCheck,
    /// Each role pair's difference ([`crate::colour::cvd::ROLE_PAIRS`] order), for the pairs
    /// a brief's brand colours leave as they are.
    pub pair_delta_e: [f32; 6],
}

/// Every palette's [`SeenRoles`], in catalogue order.
pub fn seen_roles(palettes: &[Palette]) -> Result<Vec<SeenRoles>, PaletteColourError> {
    palettes
        .iter()
        .map(|palette| {
            let parse = |hex: &str| {
                Rgb::parse_hex(hex).map_err(|source| PaletteColourError {
                    palette: palette.id.clone(),
                    source,
                })
            };
            let roles = &palette.roles;
            let background = parse(&roles.background)?;
            let text = adjust_for_contrast(parse(&roles.text)?, background, MIN_TEXT_CONTRAST);
            let colours = [
                background,
                parse(&roles.primary)?,
                parse(&roles.accent)?,
                text,
            ];
            let roles = colours.map(|colour| (colour, Seen::of(colour)));
            let pair_delta_e =
                ROLE_PAIRS.map(|(first, second)| pair_delta_e(&roles[first].1, &roles[second].1));
            Ok(SeenRoles {
                unbranded: check_seen(&roles.map(|(_, seen)| seen)),
                roles,
                pair_delta_e,
            })
        })
        .collect()
}

/// Font pairings catalogue (`fonts` output indices).
#[derive(Debug, Clone, Deserialize)]
pub struct FontCatalogue {
    /// The catalogue's version.
    pub version: String,
    /// Pairings in output-index order.
    pub pairings: Vec<FontPairing>,
}

/// One font pairing.
#[derive(Debug, Clone, Deserialize)]
pub struct FontPairing {
    /// Its id.
    pub id: String,
    /// The heading font.
    pub heading: String,
    /// The body font.
    pub body: String,
    /// The heading font for CJK text.
    #[serde(default)]
    pub heading_cjk: String,
    /// The body font for CJK text.
    #[serde(default)]
    pub body_cjk: String,
    /// What the pairing conveys (`elegant`, `rounded`, …); diversity compares pairings by them.
    #[serde(default)]
    pub traits: Vec<String>,
}

/// Layout templates for a front panel.
#[derive(Debug, Clone, Deserialize)]
pub struct LayoutCatalogue {
    /// The catalogue's version.
    pub version: String,
    /// Rows and columns of the templates' grid.
    pub grid: [usize; 2],
    /// The templates.
    pub templates: Vec<LayoutTemplate>,
}

/// One front-panel layout a designer drew: where the logo, the product and the copy go.
#[derive(Debug, Clone, Deserialize)]
pub struct LayoutTemplate {
    /// Stable identifier (`centered_hero`).
    pub id: String,
    /// English display name.
    #[serde(default)]
    pub name: String,
    /// What the layout does, in a sentence.
    #[serde(default)]
    pub description: String,
    /// The three zones.
    pub zones: TemplateZones,
}

/// A template's zones, one box per layout element.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct TemplateZones {
    /// The brand logo.
    pub logo: ZoneBox,
    /// The product shot.
    pub product: ZoneBox,
    /// The copy.
    pub text: ZoneBox,
}

/// A box on the panel, normalised to its width and height.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ZoneBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

/// How softly a template's zone edges fall off when it is drawn as a heatmap: each zone is the
/// product of logistic edges with this scale, as the recipe's teacher draws the layouts the
/// model learns (knowledge.toml `heatmap_softness`).
pub const TEMPLATE_EDGE_SOFTNESS: f32 = 0.05;

impl ZoneBox {
    /// Whether the box has an area and lies on the panel (a thousandth of slack for rounding).
    pub fn is_on_panel(&self) -> bool {
        let fits = |start: f32, length: f32| {
            start.is_finite()
                && length.is_finite()
                && start >= 0.0
                && length > 0.0
                && start + length <= 1.001
        };
        fits(self.x, self.w) && fits(self.y, self.h)
    }

    /// The share of the smaller box that the two have in common, in [0, 1].
    pub fn overlap(&self, other: &ZoneBox) -> f32 {
        let span = |a: f32, a_len: f32, b: f32, b_len: f32| {
            ((a + a_len).min(b + b_len) - a.max(b)).max(0.0)
        };
        let common =
            span(self.x, self.w, other.x, other.w) * span(self.y, self.h, other.y, other.h);
        let smaller = (self.w * self.h).min(other.w * other.h);
        if smaller > 0.0 {
            common / smaller
        } else {
            0.0
        }
    }
}

impl TemplateZones {
    /// The boxes in channel order: logo, product, text.
    pub fn boxes(&self) -> [ZoneBox; 3] {
        [self.logo, self.product, self.text]
    }

    /// The largest overlap (see [`ZoneBox::overlap`]) between two of the zones.
    pub fn largest_overlap(&self) -> f32 {
        let [logo, product, text] = self.boxes();
        logo.overlap(&product)
            .max(logo.overlap(&text))
            .max(product.overlap(&text))
    }
}

/// Why a layout template cannot be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// One of the template's zones has no area or leaves the panel.
    #[error("layout template '{template}' has a {zone} zone that is empty or off the panel")]
    ZoneOffPanel {
        /// The template's id.
        template: String,
        /// The zone: `logo`, `product` or `text`.
        zone: &'static str,
    },
}

impl LayoutCatalogue {
    /// Every template drawn on `grid` (see [`LayoutTemplate::raster`]), once each template's
    /// zones are checked to lie on the panel: a zone off it could never be drawn or matched.
    pub fn rasters(&self, grid: [usize; 2]) -> Result<Vec<Vec<f32>>, LayoutError> {
        self.templates
            .iter()
            .map(|template| {
                let off_panel = ["logo", "product", "text"]
                    .into_iter()
                    .zip(template.zones.boxes())
                    .find(|(_, zone)| !zone.is_on_panel());
                match off_panel {
                    None => Ok(template.raster(grid)),
                    Some((zone, _)) => Err(LayoutError::ZoneOffPanel {
                        template: template.id.clone(),
                        zone,
                    }),
                }
            })
            .collect()
    }
}

impl LayoutTemplate {
    /// The template drawn as the model's layout output: channels logo, product and text, each
    /// `grid` rows × columns, row-major, sampled at cell centres.
    pub fn raster(&self, grid: [usize; 2]) -> Vec<f32> {
        let [rows, columns] = grid;
        let edge = |value: f32| 1.0 / (1.0 + (-value / TEMPLATE_EDGE_SOFTNESS).exp());
        let mut cells = Vec::with_capacity(3 * rows * columns);
        for zone in self.zones.boxes() {
            for row in 0..rows {
                let y = (row as f32 + 0.5) / rows as f32;
                let along_y = edge(y - zone.y) * edge(zone.y + zone.h - y);
                for column in 0..columns {
                    let x = (column as f32 + 0.5) / columns as f32;
                    cells.push(along_y * edge(x - zone.x) * edge(zone.x + zone.w - x));
                }
            }
        }
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(x: f32, y: f32, w: f32, h: f32) -> ZoneBox {
        ZoneBox { x, y, w, h }
    }

    #[test]
    fn zone_overlap_is_the_share_of_the_smaller_box() {
        let big = zone(0.0, 0.0, 0.5, 0.5);
        assert_eq!(big.overlap(&big), 1.0);
        assert_eq!(big.overlap(&zone(0.6, 0.6, 0.2, 0.2)), 0.0);
        assert_eq!(big.overlap(&zone(0.1, 0.1, 0.1, 0.1)), 1.0);
        assert!((big.overlap(&zone(0.25, 0.0, 0.5, 0.5)) - 0.5).abs() < 1e-6);
        assert_eq!(
            big.overlap(&zone(0.5, 0.0, 0.5, 0.5)),
            0.0,
            "touching is not overlapping"
        );
    }

    #[test]
    fn zones_must_have_an_area_on_the_panel() {
        assert!(zone(0.0, 0.0, 1.0, 1.0).is_on_panel());
        assert!(!zone(-0.1, 0.0, 0.5, 0.5).is_on_panel());
        assert!(!zone(0.1, 0.1, 0.0, 0.5).is_on_panel());
        assert!(!zone(0.6, 0.1, 0.5, 0.5).is_on_panel());
        assert!(!zone(f32::NAN, 0.1, 0.5, 0.5).is_on_panel());
    }

    #[test]
    fn a_template_is_drawn_hot_inside_its_zones_and_cold_outside() {
        let template = LayoutTemplate {
            id: "t".into(),
            name: String::new(),
            description: String::new(),
            zones: TemplateZones {
                logo: zone(0.0, 0.0, 0.5, 0.25),
                product: zone(0.25, 0.25, 0.5, 0.5),
                text: zone(0.0, 0.75, 1.0, 0.25),
            },
        };
        let (rows, columns) = (8, 4);
        let raster = template.raster([rows, columns]);
        assert_eq!(raster.len(), 3 * rows * columns);
        let at = |channel: usize, row: usize, column: usize| {
            raster[channel * rows * columns + row * columns + column]
        };
        // Soft edges: a cell half a cell inside an edge is over half hot, not fully.
        assert!(at(0, 0, 1) > 0.5 && at(0, 7, 3) < 0.01, "logo");
        assert!(at(1, 3, 1) > 0.9 && at(1, 0, 0) < 0.01, "product");
        assert!(at(2, 7, 2) > 0.5 && at(2, 2, 2) < 0.01, "text");
        assert!(template.zones.largest_overlap() < 1e-6);

        let mut off_panel = template.clone();
        off_panel.id = "off".into();
        off_panel.zones.text = zone(0.0, 0.9, 1.0, 0.25);
        let mut catalogue = LayoutCatalogue {
            version: "1".into(),
            grid: [rows, columns],
            templates: vec![template, off_panel],
        };
        let refused = catalogue.rasters([rows, columns]).unwrap_err();
        assert_eq!(
            refused,
            LayoutError::ZoneOffPanel {
                template: "off".into(),
                zone: "text"
            }
        );
        assert!(refused.to_string().contains("'off'"), "{refused}");
        catalogue.templates.truncate(1);
        assert_eq!(
            catalogue.rasters([rows, columns]).map(|all| all.len()),
            Ok(1)
        );
    }

    fn vocabulary() -> Vocabulary {
        Vocabulary::parse(
            r#"{"version":"t","groups":[],"terms":[
            {"index":0,"id":"product:tea","group":"product","en":["tea","Tea drinks"],"zh":["茶","茶饮"]},
            {"index":1,"id":"mood:fresh","group":"mood","en":["fresh"],"zh":["清爽"]},
            {"index":2,"id":"season:summer-limited","group":"season","en":["summer limited","summer-limited"],"zh":["夏季限定"]}]}"#
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn normalisation_folds_case_width_and_separators() {
        assert_eq!(normalise("  Summer_LIMITED  "), "summer limited");
        assert_eq!(normalise("ＦＲＥＳＨ"), "fresh");
        assert_eq!(normalise("gen-z\tstyle"), "gen z style");
        assert_eq!(normalise("夏季限定"), "夏季限定");
    }

    #[test]
    fn exact_matches_respect_groups() {
        let vocabulary = vocabulary();
        assert_eq!(
            vocabulary.exact("tea drinks", &["product"]).unwrap().index,
            0
        );
        assert!(vocabulary.exact("tea", &["mood"]).is_none());
        assert_eq!(
            vocabulary
                .exact("夏季限定", &["mood", "season"])
                .unwrap()
                .index,
            2
        );
    }

    /// The ids of the terms `contained` finds in `text` once normalised.
    fn contained_ids(vocabulary: &Vocabulary, text: &str) -> Vec<String> {
        vocabulary
            .contained(&normalise(text))
            .iter()
            .map(|term| term.id.clone())
            .collect()
    }

    #[test]
    fn contained_matches_chinese_inside_and_english_at_word_boundaries() {
        let vocabulary = vocabulary();
        let ids = |text: &str| contained_ids(&vocabulary, text);
        assert_eq!(ids("清爽感"), ["mood:fresh"]);
        assert_eq!(ids("super fresh look"), ["mood:fresh"]);
        assert!(ids("refreshing").is_empty());
        assert!(ids("steam").is_empty());
    }

    #[test]
    fn a_synonym_inside_a_longer_one_of_another_term_is_part_of_it() {
        let vocabulary = Vocabulary::parse(
            r#"{"version":"t","groups":[],"terms":[
            {"index":0,"id":"product:water","group":"product","en":["spring water"],"zh":["矿泉水"]},
            {"index":1,"id":"season:spring","group":"season","en":["spring"],"zh":["春"]},
            {"index":2,"id":"mood:fresh","group":"mood","en":["fresh"],"zh":["泉水"]}]}"#
                .as_bytes(),
        )
        .unwrap();
        let ids = |text: &str| contained_ids(&vocabulary, text);
        assert_eq!(ids("spring water bottles"), ["product:water"]);
        assert_eq!(ids("山里的矿泉水"), ["product:water"]);
        // Side by side, not nested: both stay.
        assert_eq!(ids("fresh spring water"), ["product:water", "mood:fresh"]);
        assert_eq!(
            ids("spring and spring water"),
            ["product:water", "season:spring"]
        );
    }

    #[test]
    fn a_bare_colour_gives_way_to_a_palette_or_look_named_beside_it() {
        let vocabulary = Vocabulary::parse(
            r#"{"version":"t","groups":[],"terms":[
            {"index":0,"id":"palette:pastel","group":"palette","en":["pink","pinks"],"zh":["粉紫"]},
            {"index":1,"id":"palette:vivid","group":"palette","en":["vivid","orange"],"zh":["橙色"]},
            {"index":2,"id":"keyword:vaporwave","group":"keyword","en":["vaporwave"],"zh":["蒸汽波"]},
            {"index":3,"id":"keyword:gradient","group":"keyword","en":["gradient"],"zh":["渐变"]},
            {"index":4,"id":"mood:soft","group":"mood","en":["soft"],"zh":["柔和"]}]}"#
                .as_bytes(),
        )
        .unwrap();
        let ids = |text: &str| contained_ids(&vocabulary, text);
        assert_eq!(ids("vaporwave pinks"), ["keyword:vaporwave"]);
        assert_eq!(ids("蒸汽波粉紫"), ["keyword:vaporwave"]);
        assert_eq!(ids("orange gradient"), ["keyword:gradient"]);
        assert_eq!(ids("橙色渐变"), ["keyword:gradient"]);
        assert_eq!(ids("vivid pink"), ["palette:vivid"]);
        // Alone, or beside a mood or another colour, a colour is still the palette it names.
        assert_eq!(ids("pink please"), ["palette:pastel"]);
        assert_eq!(ids("soft pink"), ["palette:pastel", "mood:soft"]);
        assert_eq!(ids("pink and orange"), ["palette:pastel", "palette:vivid"]);
        assert_eq!(ids("柔和粉紫"), ["palette:pastel", "mood:soft"]);
    }

    #[test]
    fn colour_names_are_basic_colour_words_alone() {
        for colour in ["pink", "pinks", "red yellow", "grey", "粉紫", "橙色", "红"] {
            assert!(is_colour_name(colour), "{colour}");
        }
        for other in [
            "vivid",
            "pink gold",
            "reddish",
            "色",
            "金色",
            "",
            "neon pink",
        ] {
            assert!(!is_colour_name(other), "{other}");
        }
    }

    #[test]
    fn a_synonym_may_not_name_two_terms() {
        let error = Vocabulary::parse(
            r#"{"version":"t","terms":[{"index":0,"id":"a","group":"mood","en":["x"],"zh":[]},
            {"index":1,"id":"b","group":"mood","en":["X"],"zh":[]}]}"#
                .as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(error, VocabularyError::DuplicateSynonym { .. }));
    }
}
