//! Recommendation post-processing: raw model scores become the reply's ranked styles, palettes
//! (fitted to the brand colours and to WCAG contrast), font pairings and layout.
//!
//! Each list's `top_k` is chosen for diversity by maximal marginal relevance ([`diversity`]):
//! greedily the item with the highest `0.7 · score − 0.3 · max similarity to those already
//! chosen`, near-duplicates last, palettes spanning two families unless the brief names one;
//! then returned in descending score order. Under `prefer_cvd_safe` safe palettes are picked
//! before unsafe ones and listed first.

mod diversity;
mod layout;
pub mod preview;
mod typeset;

use base64::Engine as _;

use crate::backend::ModelOutputs;
use crate::brief::Brief;
use crate::bundle::catalogue::{Palette, SeenRoles};
use crate::bundle::likeness::PaletteFamilies;
use crate::bundle::packs::PanelSize;
use crate::bundle::Bundle;
use crate::colour::cvd::{check_seen_with, CvdCheck, Seen, ROLE_PAIRS};
use crate::colour::{adjust_for_contrast, contrast_ratio, Rgb};
use crate::features::EncodedBrief;
use crate::reply::{
    FontSuggestion, Layout, PaletteCvd, PaletteRoles, PaletteSuggestion, StyleSuggestion, Zone,
};
use diversity::{PaletteLikeness, Tabled, POOL_FACTOR};

// WCAG 2.x AA for body text: the floor for every palette's text role.
pub(crate) use crate::bundle::catalogue::MIN_TEXT_CONTRAST;

/// Why post-processing failed (a bundle/model mismatch; answered `internal`).
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    /// A model output's length does not fit the catalogue; the text names the output.
    #[error("model output '{0}' does not fit the catalogue")]
    Shape(&'static str),
    /// A catalogue palette has a colour that is not a hex colour.
    #[error("catalogue palette '{id}' has a bad colour: {message}")]
    Catalogue {
        /// The palette's catalogue id.
        id: String,
        /// What is wrong with the colour.
        message: String,
    },
    /// The preview could not be drawn or encoded as PNG.
    #[error("preview: {0}")]
    Preview(String),
}

/// Everything the reply shows for one brief.
#[derive(Debug, Clone)]
pub struct Suggestions {
    /// Up to `top_k` diverse styles, best first.
    pub styles: Vec<StyleSuggestion>,
    /// Up to `top_k` diverse palettes, best first, adjusted to the brand colours and to WCAG
    /// contrast.
    pub palettes: Vec<PaletteSuggestion>,
    /// Up to `top_k` diverse font pairings, best first.
    pub fonts: Vec<FontSuggestion>,
    /// Where logo, product and text belong on the front panel.
    pub layout: Layout,
    /// Base64 PNG of the top suggestion; only when the brief asked for `render`.
    pub preview_png: Option<String>,
}

/// What a brief asks of the suggestions beyond its terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked<'a> {
    /// How many styles, palettes and font pairings to return.
    pub top_k: usize,
    /// Draw the top suggestion as a preview PNG.
    pub render: bool,
    /// Rank palettes that pass the colour-vision-deficiency check above those that do not.
    pub prefer_cvd_safe: bool,
    /// The brief's own words, which a preview sets as its copy.
    pub words: Words<'a>,
}

/// The brief's words as typed, for a preview's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Words<'a> {
    /// The product: the preview's headline unless the brief gives one.
    pub product: &'a str,
    /// The brief's `headline`, set instead of the product.
    pub headline: Option<&'a str>,
    /// Mood values: the preview's line of body copy, joined.
    pub mood: &'a [String],
}

impl<'a> From<&'a Brief> for Asked<'a> {
    fn from(brief: &'a Brief) -> Self {
        Asked {
            top_k: brief.top_k,
            render: brief.render,
            prefer_cvd_safe: brief.prefer_cvd_safe,
            words: Words {
                product: &brief.product,
                headline: brief.headline.as_deref(),
                mood: &brief.mood,
            },
        }
    }
}

/// Turns model outputs into suggestions as the brief asked for them.
pub fn recommend(
    bundle: &Bundle,
    outputs: &ModelOutputs,
    brief: &EncodedBrief,
    asked: Asked<'_>,
) -> Result<Suggestions, RecommendError> {
    let Asked {
        top_k,
        render,
        prefer_cvd_safe,
        words,
    } = asked;
    if outputs.styles.len() != bundle.styles.styles.len() {
        return Err(RecommendError::Shape("styles"));
    }
    if outputs.palettes.len() != bundle.palettes.palettes.len() {
        return Err(RecommendError::Shape("palettes"));
    }
    if outputs.fonts.len() != bundle.fonts.pairings.len() {
        return Err(RecommendError::Shape("fonts"));
    }
    let styles = pick_styles(bundle, &outputs.styles, top_k);
    let fonts = pick_fonts(bundle, &outputs.fonts, top_k);
    let named =
        diversity::named_families(&bundle.vocabulary, &brief.terms, &bundle.palettes.palettes);
    let palettes = pick_palettes(
        &PaletteLikeness::new(
            &bundle.palettes.palettes,
            &bundle.palette_distances,
            &bundle.palette_families,
            &named,
        ),
        &bundle.seen_roles,
        &outputs.palettes,
        &brief.brand_colours,
        top_k,
        prefer_cvd_safe,
    )?;
    let layout = layout::layout_from(
        &outputs.layout,
        bundle.manifest.model.layout_grid,
        &bundle.layouts.templates,
        &bundle.layout_lanes,
    )?;
    let preview_png = match (render, palettes.first()) {
        (true, Some(top)) => Some(render_preview(
            top,
            &layout,
            bundle.packs.for_product(brief.product_term()).size,
            copy(bundle, fonts.first(), styles.first(), words),
        )?),
        _ => None,
    };
    Ok(Suggestions {
        styles,
        palettes,
        fonts,
        layout,
        preview_png,
    })
}

/// The `top_k` diverse styles.
fn pick_styles(bundle: &Bundle, scores: &[f32], top_k: usize) -> Vec<StyleSuggestion> {
    diverse(scores, top_k, &Tabled(&bundle.style_similarities))
        .into_iter()
        .map(|(index, score)| {
            let style = &bundle.styles.styles[index];
            StyleSuggestion {
                style: style.name.clone(),
                name_zh: style.name_zh.clone(),
                score,
            }
        })
        .collect()
}

/// The `top_k` diverse font pairings.
fn pick_fonts(bundle: &Bundle, scores: &[f32], top_k: usize) -> Vec<FontSuggestion> {
    diverse(scores, top_k, &Tabled(&bundle.font_similarities))
        .into_iter()
        .map(|(index, score)| {
            let pairing = &bundle.fonts.pairings[index];
            FontSuggestion {
                heading: pairing.heading.clone(),
                body: pairing.body.clone(),
                heading_cjk: pairing.heading_cjk.clone(),
                body_cjk: pairing.body_cjk.clone(),
                score,
            }
        })
        .collect()
}

/// Indices with their scores, scores clamped to [0, 1] (NaN as 0), in catalogue order.
fn clamped(scores: &[f32]) -> Vec<(usize, f32)> {
    scores
        .iter()
        .map(|&score| {
            if score.is_nan() {
                0.0
            } else {
                score.clamp(0.0, 1.0)
            }
        })
        .enumerate()
        .collect()
}

/// Rank order: the higher (clamped) score first, then the earlier index. A total order, so a
/// selection or an unstable sort by it is the stable sort's order.
fn by_rank(first: &(usize, f32), second: &(usize, f32)) -> std::cmp::Ordering {
    second.1.total_cmp(&first.1).then(first.0.cmp(&second.0))
}

/// Indices with their scores, best first (ties by catalogue order), scores clamped to [0, 1]: the
/// whole ranking by a stable sort, the definition [`best`] is tested against.
#[cfg(test)]
fn ranked(scores: &[f32]) -> impl Iterator<Item = (usize, f32)> {
    let mut order = clamped(scores);
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order
        .into_iter()
        .map(|(index, score)| (index, round3(score)))
}

/// The `count` best indices with their scores, best first (ties by catalogue order), scores
/// clamped to [0, 1]; the rest are never ordered: per brief only a few dozen of the 420 palettes
/// are looked at, and sorting them all was a tenth of post-processing.
fn best(scores: &[f32], count: usize) -> Vec<(usize, f32)> {
    let mut order = clamped(scores);
    if count < order.len() {
        order.select_nth_unstable_by(count, by_rank);
        order.truncate(count);
    }
    order.sort_unstable_by(by_rank);
    order
        .into_iter()
        .map(|(index, score)| (index, round3(score)))
        .collect()
}

/// The `top_k` picked by MMR among the best `POOL_FACTOR · top_k`, in descending score order.
fn diverse(scores: &[f32], top_k: usize, likeness: &impl diversity::Likeness) -> Vec<(usize, f32)> {
    let pool = best(scores, top_k * POOL_FACTOR);
    diversity::select(&pool, top_k, likeness, |_| false)
        .into_iter()
        .map(|slot| pool[slot])
        .collect()
}

fn round3(value: f32) -> f32 {
    round_half_away(value * 1000.0) / 1000.0
}

/// `f32::round`, without its libm call where the CPU has no rounding instruction (x86-64's
/// baseline): a reply rounds some two thousand values. Truncation is one instruction, and a
/// float minus its integer part is exact below 2^23.
fn round_half_away(value: f32) -> f32 {
    const EXACT: f32 = 8_388_608.0;
    // From 2^23 up every float is a whole number, so rounding returns it. Not calling `round`
    // here matters: a vectorised loop computes both sides of this branch for every lane.
    if value.is_nan() || value.abs() >= EXACT {
        return value;
    }
    let whole = value as i32 as f32;
    let fraction = value - whole;
    let rounded = if fraction >= 0.5 {
        whole + 1.0
    } else if fraction <= -0.5 {
        whole - 1.0
    } else {
        whole
    };
    // -0.3 truncates to +0 where `round` gives -0.
    rounded.copysign(value)
}

/// A catalogue palette fitted to a brief: colours, roles, as RGB.
struct FittedPalette {
    colours: Vec<Rgb>,
    background: Rgb,
    primary: Rgb,
    accent: Rgb,
    text: Rgb,
}

fn parse(palette: &Palette, hex: &str) -> Result<Rgb, RecommendError> {
    Rgb::parse_hex(hex).map_err(|error| RecommendError::Catalogue {
        id: palette.id.clone(),
        message: error.to_string(),
    })
}

/// Puts the brand colours into the palette: the first takes over the primary role (and its place
/// among the colours), the second the accent; then the text role is made readable on the background.
fn fit(palette: &Palette, brand: &[Rgb]) -> Result<FittedPalette, RecommendError> {
    let mut colours = palette
        .colors
        .iter()
        .map(|hex| parse(palette, hex))
        .collect::<Result<Vec<_>, _>>()?;
    let background = parse(palette, &palette.roles.background)?;
    let mut primary = parse(palette, &palette.roles.primary)?;
    let mut accent = parse(palette, &palette.roles.accent)?;
    let mut text = parse(palette, &palette.roles.text)?;
    for (slot, &brand_colour) in brand.iter().enumerate().take(2) {
        let role = if slot == 0 { &mut primary } else { &mut accent };
        // Background and text carry legibility; a brand colour never displaces them.
        if *role != background && *role != text {
            if let Some(place) = colours.iter().position(|colour| colour == role) {
                colours[place] = brand_colour;
            }
        } else if !colours.contains(&brand_colour) {
            colours.push(brand_colour);
        }
        *role = brand_colour;
    }
    let readable = adjust_for_contrast(text, background, MIN_TEXT_CONTRAST);
    if readable != text {
        match colours.iter().position(|colour| *colour == text) {
            Some(index) => colours[index] = readable,
            None => colours.push(readable),
        }
        text = readable;
    }
    // Every role must be one of the colours, whatever the catalogue or the brand did.
    for role in [background, primary, accent, text] {
        if !colours.contains(&role) {
            colours.push(role);
        }
    }
    Ok(FittedPalette {
        colours,
        background,
        primary,
        accent,
        text,
    })
}

/// The MMR candidates: the `POOL_FACTOR · top_k` best palettes, and the best of every family,
/// so that a second family is always at hand; in rank order.
fn palette_pool(families: &PaletteFamilies, scores: &[f32], top_k: usize) -> Vec<(usize, f32)> {
    let mut pool = best(scores, top_k * POOL_FACTOR);
    // Each family's best, by one pass; then those of families the best palettes leave out.
    let mut leaders: Vec<Option<(usize, f32)>> = vec![None; families.count()];
    for entry in clamped(scores) {
        let Some(leader) = families
            .of(entry.0)
            .and_then(|family| leaders.get_mut(family))
        else {
            continue;
        };
        if leader.is_none_or(|leader| by_rank(&entry, &leader).is_lt()) {
            *leader = Some(entry);
        }
    }
    for &(index, _) in &pool {
        if let Some(leader) = families
            .of(index)
            .and_then(|family| leaders.get_mut(family))
        {
            *leader = None;
        }
    }
    let mut missing: Vec<(usize, f32)> = leaders.into_iter().flatten().collect();
    missing.sort_unstable_by(by_rank);
    pool.extend(
        missing
            .into_iter()
            .map(|(index, score)| (index, round3(score))),
    );
    pool
}

/// The `top_k` palettes picked by MMR (see [`diversity`]), fitted to the brand, in descending
/// score order; with `prefer_cvd_safe`, safe ones are picked before unsafe ones and come first
/// (score order kept within safe and unsafe). Diversity is judged on the catalogue colours
/// (distances precomputed per bundle), so without `prefer_cvd_safe` only the palettes returned are
/// fitted: fitting is the expensive part.
fn pick_palettes(
    likeness: &PaletteLikeness<'_>,
    catalogue_roles: &[SeenRoles],
    scores: &[f32],
    brand: &[Rgb],
    top_k: usize,
    prefer_cvd_safe: bool,
) -> Result<Vec<PaletteSuggestion>, RecommendError> {
    let catalogue = likeness.catalogue;
    let pool = palette_pool(likeness.families, scores, top_k);
    // Seen once per brief, not once per palette checked.
    let brand_seen: Vec<(Rgb, Seen)> = brand
        .iter()
        .take(2)
        .map(|&colour| (colour, Seen::of(colour)))
        .collect();
    let fit_and_check = |index: usize| {
        fit(&catalogue[index], brand).map(|fitted| {
            let cvd = check_fitted(&fitted, catalogue_roles.get(index), &brand_seen);
            (fitted, cvd)
        })
    };
    // Safety depends on the brand fitting: under `prefer_cvd_safe` selection fits and checks
    // candidates as it considers them (best first), and keeps the result for the reply.
    let mut checked: Vec<Option<(FittedPalette, CvdCheck)>> = pool.iter().map(|_| None).collect();
    let mut failed: Option<RecommendError> = None;
    let picks = diversity::select(&pool, top_k, likeness, |slot| {
        if !prefer_cvd_safe || failed.is_some() {
            return false;
        }
        if checked[slot].is_none() {
            match fit_and_check(pool[slot].0) {
                Ok(done) => checked[slot] = Some(done),
                Err(error) => {
                    failed = Some(error);
                    return false;
                }
            }
        }
        checked[slot].as_ref().is_some_and(|(_, cvd)| !cvd.safe)
    });
    if let Some(error) = failed {
        return Err(error);
    }
    let mut suggestions = picks
        .into_iter()
        .map(|slot| {
            let (index, score) = pool[slot];
            let (fitted, cvd) = match checked[slot].take() {
                Some(done) => done,
                None => fit_and_check(index)?,
            };
            Ok(suggestion(&catalogue[index], score, &fitted, cvd))
        })
        .collect::<Result<Vec<_>, RecommendError>>()?;
    if prefer_cvd_safe {
        // A stable sort: within the safe and the unsafe group the score order stays.
        suggestions.sort_by_key(|suggestion| !suggestion.cvd.safe);
    }
    Ok(suggestions)
}

/// The colour-vision check of fitted roles. Each colour is seen in every vision at most once per
/// bundle (`known`, the catalogue's roles) or per brief (`brand_seen`, its first two brand
/// colours); without brand colours the bundle's check of the same roles is the answer.
fn check_fitted(
    fitted: &FittedPalette,
    known: Option<&SeenRoles>,
    brand_seen: &[(Rgb, Seen)],
) -> CvdCheck {
    if let (Some(known), true) = (known, brand_seen.is_empty()) {
        return known.unbranded;
    }
    let seen = |colour: Rgb| {
        known
            .iter()
            .flat_map(|known| &known.roles)
            .chain(brand_seen)
            .find(|(known, _)| *known == colour)
            .map_or_else(|| Seen::of(colour), |&(_, seen)| seen)
    };
    let colours = [
        fitted.background,
        fitted.primary,
        fitted.accent,
        fitted.text,
    ];
    // A pair of roles the brand colours left as the catalogue has them was compared once per
    // bundle; usually background and text, and the accent unless a second brand colour came.
    let unchanged = |pair: usize| {
        let known = known?;
        let (first, second) = ROLE_PAIRS[pair];
        (colours[first] == known.roles[first].0 && colours[second] == known.roles[second].0)
            .then_some(known.pair_delta_e[pair])
    };
    check_seen_with(&colours.map(seen), unchanged)
}

fn suggestion(
    palette: &Palette,
    score: f32,
    fitted: &FittedPalette,
    cvd: CvdCheck,
) -> PaletteSuggestion {
    PaletteSuggestion {
        name: palette.name.clone(),
        name_zh: palette.name_zh.clone(),
        colors: fitted.colours.iter().map(Rgb::to_hex).collect(),
        roles: PaletteRoles {
            background: fitted.background.to_hex(),
            primary: fitted.primary.to_hex(),
            accent: fitted.accent.to_hex(),
            text: fitted.text.to_hex(),
        },
        contrast: (contrast_ratio(fitted.text, fitted.background) * 10.0).floor() / 10.0,
        cvd: PaletteCvd {
            safe: cvd.safe,
            min_delta_e: cvd.min_delta_e,
        },
        score,
    }
}

/// The preview's words and faces: the headline (the product unless the brief gives one) in the
/// top pairing's heading faces, the moods (or the top style's name) in its body faces; none when
/// the bundle ships no faces.
fn copy(
    bundle: &Bundle,
    pairing: Option<&FontSuggestion>,
    style: Option<&StyleSuggestion>,
    words: Words<'_>,
) -> Option<preview::PreviewCopy> {
    let faces = bundle.typefaces.as_ref()?;
    let pairing = pairing?;
    let heading = faces.heading.get(&pairing.heading)?;
    let body = faces.body.get(&pairing.body)?;
    let heading_cjk = faces.cjk_heading.get(&pairing.heading_cjk)?;
    let body_cjk = faces.cjk_body.get(&pairing.body_cjk)?;
    let headline = words
        .headline
        .map(str::trim)
        .filter(|headline| !headline.is_empty())
        .unwrap_or(words.product.trim());
    let chinese = headline.chars().any(|c| u32::from(c) >= 0x2E80);
    let body_copy = if words.mood.is_empty() {
        style.map_or_else(String::new, |style| {
            if chinese && !style.name_zh.is_empty() {
                style.name_zh.clone()
            } else {
                style.style.clone()
            }
        })
    } else {
        words.mood.join(" · ")
    };
    Some(preview::PreviewCopy {
        headline: headline.to_string(),
        body: body_copy,
        heading_face: heading.bytes.clone(),
        body_face: body.bytes.clone(),
        heading_cjk_face: heading_cjk.bytes.clone(),
        body_cjk_face: body_cjk.bytes.clone(),
    })
}

fn render_preview(
    palette: &PaletteSuggestion,
    layout: &Layout,
    panel: PanelSize,
    copy: Option<preview::PreviewCopy>,
) -> Result<String, RecommendError> {
    let colour =
        |hex: &str| Rgb::parse_hex(hex).map_err(|error| RecommendError::Preview(error.to_string()));
    let spec = preview::PreviewSpec {
        width: panel.width(),
        height: panel.height(),
        copy,
        colours: palette
            .colors
            .iter()
            .map(|hex| colour(hex))
            .collect::<Result<_, _>>()?,
        background: colour(&palette.roles.background)?,
        primary: colour(&palette.roles.primary)?,
        accent: colour(&palette.roles.accent)?,
        text: colour(&palette.roles.text)?,
        zones: vec![
            (preview::ZoneKind::Logo, to_preview_zone(layout.zones.logo)),
            (
                preview::ZoneKind::Product,
                to_preview_zone(layout.zones.product),
            ),
            (preview::ZoneKind::Text, to_preview_zone(layout.zones.text)),
        ],
    };
    let png = preview::render_preview(&spec)
        .map_err(|error| RecommendError::Preview(error.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(png))
}

fn to_preview_zone(zone: Zone) -> preview::Zone {
    preview::Zone {
        x: zone.x,
        y: zone.y,
        w: zone.w,
        h: zone.h,
    }
}

#[cfg(test)]
#[path = "preview_tests.rs"]
mod preview_tests;

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::catalogue::PaletteRoles as CatalogueRoles;

    #[test]
    fn rounding_half_away_is_f32_round() {
        let edges = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            0.499_999_97,
            -0.499_999_97,
            8_388_607.5,
            8_388_608.0,
            1e20,
            f32::INFINITY,
            f32::MIN_POSITIVE,
        ];
        let mut random = fastrand::Rng::with_seed(3);
        let values = edges
            .into_iter()
            .chain((0..200_000).map(|_| f32::from_bits(random.u32(..)) % 20_000_000.0));
        for value in values.filter(|value| !value.is_nan()) {
            assert_eq!(
                round_half_away(value).to_bits(),
                value.round().to_bits(),
                "{value}"
            );
        }
        assert!(round_half_away(f32::NAN).is_nan());
    }

    fn palette(id: &str, colours: &[&str], background: &str, text: &str) -> Palette {
        Palette {
            id: id.into(),
            name: id.into(),
            name_zh: String::new(),
            family: String::new(),
            colors: colours.iter().map(|c| c.to_string()).collect(),
            roles: CatalogueRoles {
                background: background.into(),
                primary: colours[1].into(),
                accent: colours[2].into(),
                text: text.into(),
            },
        }
    }

    /// `pick_palettes` over a crafted catalogue, for a brief that names no palette family.
    fn pick(
        catalogue: &[Palette],
        scores: &[f32],
        brand: &[Rgb],
        top_k: usize,
        prefer_cvd_safe: bool,
    ) -> Vec<PaletteSuggestion> {
        let labs = crate::bundle::catalogue::palette_labs(catalogue).unwrap();
        let distances = crate::bundle::likeness::PaletteDistances::new(&labs);
        let families = crate::bundle::likeness::PaletteFamilies::new(catalogue);
        let likeness = PaletteLikeness::new(catalogue, &distances, &families, &[]);
        let roles = crate::bundle::catalogue::seen_roles(catalogue).unwrap();
        pick_palettes(&likeness, &roles, scores, brand, top_k, prefer_cvd_safe).unwrap()
    }

    /// The per-bundle and per-brief views stand in for the live check only when they give the
    /// same answer: every shipped palette, without brand colours, with one or two, and with a
    /// brand colour that is one of the palette's own roles.
    #[test]
    fn checks_from_seen_colours_are_the_checks_of_the_fitted_roles() {
        let bundle = &super::test_support::shipped().bundle;
        assert_eq!(bundle.seen_roles.len(), bundle.palettes.palettes.len());
        let blue = Rgb::parse_hex("#1A73E8").unwrap();
        let yellow = Rgb::parse_hex("#F2C14E").unwrap();
        for (palette, known) in bundle.palettes.palettes.iter().zip(&bundle.seen_roles) {
            let own = known.roles[0].0;
            for brand in [
                vec![],
                vec![blue],
                vec![blue, yellow],
                vec![own, blue, yellow],
            ] {
                let fitted = fit(palette, &brand).unwrap();
                let brand_seen: Vec<(Rgb, Seen)> = brand
                    .iter()
                    .take(2)
                    .map(|&colour| (colour, Seen::of(colour)))
                    .collect();
                let live = crate::colour::cvd::check_roles([
                    fitted.background,
                    fitted.primary,
                    fitted.accent,
                    fitted.text,
                ]);
                let cached = check_fitted(&fitted, Some(known), &brand_seen);
                assert_eq!(cached, live, "{} with {brand:?}", palette.id);
            }
        }
    }

    #[test]
    fn text_role_is_made_readable() {
        // Pale grey text on white: 1.6:1 in the catalogue, must come back at 4.5:1 or better.
        let pale = palette(
            "pale",
            &["#FFFFFF", "#3366CC", "#FFCC00", "#CCCCCC"],
            "#FFFFFF",
            "#CCCCCC",
        );
        let suggestions = pick(std::slice::from_ref(&pale), &[0.9], &[], 1, false);
        assert!(
            suggestions[0].contrast >= MIN_TEXT_CONTRAST,
            "{}",
            suggestions[0].contrast
        );
        assert!(suggestions[0].colors.contains(&suggestions[0].roles.text));
    }

    #[test]
    fn brand_colour_becomes_primary_and_joins_the_palette() {
        let base = palette(
            "base",
            &["#F5F0E6", "#2E7D32", "#F9A825", "#1B1B1B"],
            "#F5F0E6",
            "#1B1B1B",
        );
        let brand = Rgb::parse_hex("#1A73E8").unwrap();
        let suggestions = pick(std::slice::from_ref(&base), &[0.5], &[brand], 1, false);
        assert_eq!(suggestions[0].roles.primary, "#1A73E8");
        assert!(suggestions[0].colors.contains(&"#1A73E8".to_string()));
        assert_eq!(suggestions[0].roles.background, "#F5F0E6");
    }

    #[test]
    fn near_duplicate_palettes_give_way_to_different_ones() {
        let a = palette(
            "a",
            &["#FFFFFF", "#3366CC", "#FFCC00", "#111111"],
            "#FFFFFF",
            "#111111",
        );
        let a_twin = palette(
            "a-twin",
            &["#FEFEFE", "#3467CB", "#FECB01", "#121212"],
            "#FEFEFE",
            "#121212",
        );
        let b = palette(
            "b",
            &["#1E2A2F", "#8FB9B0", "#F2C14E", "#DCE8E4"],
            "#1E2A2F",
            "#DCE8E4",
        );
        let catalogue = [a, a_twin, b];
        let suggestions = pick(&catalogue, &[0.9, 0.89, 0.5], &[], 2, false);
        let names: Vec<&str> = suggestions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    /// Three palettes, one safe between two unsafe ones in score order; a fourth unsafe one.
    fn mixed_safety_catalogue() -> [Palette; 4] {
        [
            // Wine red and forest green as primary and accent: one colour to a deuteranope.
            palette(
                "unsafe-best",
                &["#FFFFFF", "#771133", "#005533", "#000000"],
                "#FFFFFF",
                "#000000",
            ),
            palette(
                "safe",
                &["#FFFFFF", "#1F4FBF", "#F2C14E", "#000000"],
                "#FFFFFF",
                "#000000",
            ),
            palette(
                "unsafe-worse",
                &["#F5F0E6", "#7A1F3D", "#0B5A3A", "#111111"],
                "#F5F0E6",
                "#111111",
            ),
            palette(
                "unsafe-worst",
                &["#1E2A2F", "#6B2030", "#1F5038", "#F4F4F4"],
                "#1E2A2F",
                "#F4F4F4",
            ),
        ]
    }

    #[test]
    fn prefer_cvd_safe_puts_every_safe_palette_before_every_unsafe_one() {
        let catalogue = mixed_safety_catalogue();
        let scores = [0.9, 0.8, 0.7, 0.6];
        let by_score = pick(&catalogue, &scores, &[], 4, false);
        let names = |list: &[PaletteSuggestion]| -> Vec<String> {
            list.iter().map(|p| p.name.clone()).collect()
        };
        let safety: Vec<bool> = by_score.iter().map(|p| p.cvd.safe).collect();
        assert_eq!(safety, [false, true, false, false], "{by_score:?}");
        assert!(by_score
            .windows(2)
            .all(|pair| pair[0].score >= pair[1].score));

        let preferred = pick(&catalogue, &scores, &[], 4, true);
        assert_eq!(
            names(&preferred),
            ["safe", "unsafe-best", "unsafe-worse", "unsafe-worst"]
        );
        let first_unsafe = preferred.iter().position(|p| !p.cvd.safe).unwrap();
        assert!(preferred[first_unsafe..].iter().all(|p| !p.cvd.safe));
        for palette in preferred.iter().chain(&by_score) {
            assert_eq!(
                palette.cvd.safe,
                palette.cvd.min_delta_e >= crate::colour::cvd::CVD_SAFE_MIN_DELTA_E
            );
        }
    }

    /// The definition `palette_pool` keeps: walk the whole ranking, take the first
    /// `POOL_FACTOR · top_k`, and after them each family's first appearance.
    fn pool_by_full_ranking(
        catalogue: &[Palette],
        scores: &[f32],
        top_k: usize,
    ) -> Vec<(usize, f32)> {
        let mut pool = Vec::new();
        let mut families: Vec<&str> = Vec::new();
        for (index, score) in ranked(scores) {
            let family = catalogue[index].family.as_str();
            let new_family = !families.contains(&family);
            if new_family {
                families.push(family);
            }
            if pool.len() < top_k * POOL_FACTOR || new_family {
                pool.push((index, score));
            }
        }
        pool
    }

    #[test]
    fn selecting_the_best_gives_the_full_rankings_head_and_pool() {
        let catalogue = &crate::recommend::test_support::shipped()
            .bundle
            .palettes
            .palettes;
        let mut random = fastrand::Rng::with_seed(16);
        for round in 0..200 {
            // Coarse scores make ties; some NaN and out-of-range ones, as a broken model gives.
            let scores: Vec<f32> = (0..catalogue.len())
                .map(|_| match random.u8(0..20) {
                    0 => f32::NAN,
                    1 => 1.5,
                    2 => -0.5,
                    _ => f32::from(random.u8(0..=40)) / 40.0 * (1.0 - round as f32 / 400.0),
                })
                .collect();
            for top_k in [1, 3, 5, 10] {
                let count = top_k * POOL_FACTOR;
                let head: Vec<(usize, f32)> = ranked(&scores).take(count).collect();
                assert_eq!(best(&scores, count), head, "round {round}, top_k {top_k}");
                assert_eq!(
                    palette_pool(&PaletteFamilies::new(catalogue), &scores, top_k),
                    pool_by_full_ranking(catalogue, &scores, top_k),
                    "round {round}, top_k {top_k}"
                );
            }
        }
    }

    #[test]
    fn ranking_is_descending_and_clamped() {
        let ranked: Vec<(usize, f32)> = ranked(&[0.2, f32::NAN, 1.5, 0.7]).collect();
        assert_eq!(ranked.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3, 0, 1]);
        assert_eq!(ranked[0].1, 1.0);
        assert_eq!(ranked[3].1, 0.0);
    }
}
