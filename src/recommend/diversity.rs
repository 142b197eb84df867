//! Diverse top-k by maximal marginal relevance (MMR): each list's suggestions are picked greedily,
//! each time the candidate with the highest `LAMBDA · score − (1 − LAMBDA) · max similarity to
//! the suggestions already picked`. The first pick is always the best score (nothing is picked
//! yet, so every penalty is 0; under `prefer_cvd_safe`, the best safe palette). A candidate with
//! similarity 1 to a pick (a near-duplicate) is only taken when nothing else is left, and
//! palettes span at least two families unless the brief names one. The rule, with its
//! similarities, is stated in `docs/contract-choices.md` ("Diverse suggestions").

use crate::bundle::catalogue::{Palette, Vocabulary};
use crate::bundle::likeness::{PaletteDistances, PaletteFamilies, Similarities};

/// Weight of the score against the similarity to what is already picked. At 0.7 a candidate
/// gives way only to one at most `(1 − λ)/λ · Δsimilarity` ≈ 0.43 · Δsimilarity below it, so a
/// strong item is passed over for a clearly different one, never for a slightly different one.
pub(crate) const LAMBDA: f32 = 0.7;
/// Candidates considered per list: this many times `top_k` of the best scores (palettes add the
/// best of each family). Further down only lie items nobody would pick.
pub(crate) const POOL_FACTOR: usize = 8;
/// Palettes closer than this (CIE76 ΔE from each colour to the other palette's nearest, averaged
/// over the colours of both) look the same: similarity 1. CIE76 rather than ΔE2000: it runs for
/// dozens of pairs per brief, and a same-look threshold does not need ΔE2000's fine print.
pub(crate) const SAME_LOOK_DELTA_E: f32 = 10.0;
/// Palettes this far apart (or further) share nothing in colour: colour similarity 0. About
/// the upper quartile of the distance between palettes of different families in `packd-default`.
pub(crate) const UNRELATED_DELTA_E: f32 = 30.0;
/// Similarity of two palettes of one family the brief did not name, however far their colours.
pub(crate) const SAME_FAMILY_SIMILARITY: f32 = 0.5;
/// What a list's candidates are like, for MMR: how alike two are, and (palettes) their family.
pub(crate) trait Likeness {
    /// How alike two catalogue items are, in [0, 1]; 1 is a near-duplicate.
    fn similarity(&self, first: usize, second: usize) -> f32;
    /// The group the picks must not all share (palette family number), when the rule applies.
    fn group(&self, _index: usize) -> Option<usize> {
        None
    }
}

/// Picks up to `top_k` of `candidates` (catalogue index and score, best first) by MMR and
/// returns their positions in `candidates`, ascending: by descending score. A candidate for
/// which `demoted(position)` holds (an unsafe palette when safe ones are preferred) is only
/// picked when no other is left; `demoted` is asked lazily, best candidates first, and at most
/// once per candidate and pick.
pub(crate) fn select(
    candidates: &[(usize, f32)],
    top_k: usize,
    likeness: &impl Likeness,
    mut demoted: impl FnMut(usize) -> bool,
) -> Vec<usize> {
    let mut picked: Vec<usize> = Vec::with_capacity(top_k);
    let mut open: Vec<bool> = vec![true; candidates.len()];
    // Each candidate's highest similarity to a pick so far, updated once per pick.
    let mut nearest: Vec<f32> = vec![0.0; candidates.len()];
    let mut order: Vec<(u8, f32, usize)> = Vec::with_capacity(candidates.len());
    while picked.len() < top_k {
        let single_group = single_group(&picked, candidates, likeness);
        let last_slot = picked.len() + 1 == top_k;
        order.clear();
        for (slot, &(index, score)) in candidates.iter().enumerate() {
            if !open[slot] {
                continue;
            }
            // Lower tiers win: a last slot goes to another group when every pick so far is of
            // one, and a near-duplicate fills only a slot nothing else can.
            let repeats_group =
                last_slot && single_group.is_some_and(|group| likeness.group(index) == Some(group));
            let tier = 2 * u8::from(repeats_group) + u8::from(nearest[slot] >= 1.0);
            let value = LAMBDA * score - (1.0 - LAMBDA) * nearest[slot];
            order.push((tier, value, slot));
        }
        let Some(chosen) = best_kept(&mut order, &mut demoted) else {
            break;
        };
        open[chosen] = false;
        let chosen_index = candidates[chosen].0;
        picked.push(chosen);
        for (slot, &(index, _)) in candidates.iter().enumerate() {
            if open[slot] {
                nearest[slot] = nearest[slot].max(likeness.similarity(index, chosen_index));
            }
        }
    }
    picked.sort_unstable();
    picked
}

/// The best of `order` (lowest tier, then highest value; ties go to the better score, the
/// earlier position) that is not `demoted`, or the best of all when every one is. Candidates
/// are taken best first, one scan each, and only as far as the first kept one: `demoted` is
/// asked in that order, and most picks need one scan, not a sort of every candidate.
fn best_kept(
    order: &mut Vec<(u8, f32, usize)>,
    demoted: &mut impl FnMut(usize) -> bool,
) -> Option<usize> {
    let mut first = None;
    loop {
        let best = order
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)))
            .map(|(position, _)| position);
        let Some(position) = best else {
            return first;
        };
        let (_, _, slot) = order.swap_remove(position);
        first.get_or_insert(slot);
        if !demoted(slot) {
            return Some(slot);
        }
    }
}

/// The group every pick shares, if they all share one (and there is at least one pick).
fn single_group(
    picked: &[usize],
    candidates: &[(usize, f32)],
    likeness: &impl Likeness,
) -> Option<usize> {
    let (&first, rest) = picked.split_first()?;
    let group = likeness.group(candidates[first].0)?;
    rest.iter()
        .all(|&slot| likeness.group(candidates[slot].0) == Some(group))
        .then_some(group)
}

/// Palettes: alike in colour (precomputed distances) or by an unnamed shared family.
pub(crate) struct PaletteLikeness<'a> {
    /// The palette catalogue.
    pub(crate) catalogue: &'a [Palette],
    /// How far apart every two catalogue palettes look (precomputed per bundle).
    pub(crate) distances: &'a PaletteDistances,
    /// Each catalogue palette's family as a number (precomputed per bundle).
    pub(crate) families: &'a PaletteFamilies,
    /// Whether the brief names each family (by number): its `palette`, or palette terms among
    /// its keywords.
    named: Vec<bool>,
    /// The number of the empty family name, which is no family.
    nameless: Option<usize>,
}

impl<'a> PaletteLikeness<'a> {
    /// The likeness of `catalogue`'s palettes for a brief naming the families `named`.
    pub(crate) fn new(
        catalogue: &'a [Palette],
        distances: &'a PaletteDistances,
        families: &'a PaletteFamilies,
        named: &[String],
    ) -> PaletteLikeness<'a> {
        let mut flags = vec![false; families.count()];
        for number in named.iter().filter_map(|name| families.number(name)) {
            flags[number] = true;
        }
        PaletteLikeness {
            catalogue,
            distances,
            families,
            named: flags,
            nameless: families.number(""),
        }
    }

    /// Whether the picks must span two families: only when the brief names none.
    fn spans_families(&self) -> bool {
        !self.named.contains(&true)
    }

    fn family(&self, index: usize) -> Option<usize> {
        self.families
            .of(index)
            .filter(|&family| Some(family) != self.nameless)
    }
}

impl Likeness for PaletteLikeness<'_> {
    fn similarity(&self, first: usize, second: usize) -> f32 {
        let Some(distance) = self.distances.get(first, second) else {
            return 0.0;
        };
        let colour = ((UNRELATED_DELTA_E - distance) / (UNRELATED_DELTA_E - SAME_LOOK_DELTA_E))
            .clamp(0.0, 1.0);
        let family = match (self.family(first), self.family(second)) {
            (Some(a), Some(b)) if a == b && !self.named.get(a).is_some_and(|&named| named) => {
                SAME_FAMILY_SIMILARITY
            }
            _ => 0.0,
        };
        colour.max(family)
    }

    fn group(&self, index: usize) -> Option<usize> {
        if self.spans_families() {
            self.family(index)
        } else {
            None
        }
    }
}

/// The catalogue families the brief names: palette-group terms that are on in its multi-hot and
/// whose name (`palette:<family>`) is a family of the palette catalogue.
pub(crate) fn named_families(
    vocabulary: &Vocabulary,
    terms: &[f32],
    catalogue: &[Palette],
) -> Vec<String> {
    vocabulary
        .terms
        .iter()
        .filter(|term| term.group == "palette")
        .filter(|term| terms.get(term.index).is_some_and(|&value| value > 0.0))
        .filter_map(|term| term.id.strip_prefix("palette:"))
        .filter(|family| catalogue.iter().any(|palette| palette.family == *family))
        .map(str::to_string)
        .collect()
}

/// Font pairings or styles: how alike, from a table computed once per bundle
/// ([`crate::bundle::likeness::font_similarity`], [`crate::bundle::likeness::style_similarity`]).
pub(crate) struct Tabled<'a>(pub(crate) &'a Similarities);

impl Likeness for Tabled<'_> {
    fn similarity(&self, first: usize, second: usize) -> f32 {
        self.0.get(first, second).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests;
