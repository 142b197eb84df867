//! Diversity on the shipped bundle (real model outputs and crafted score vectors) and on small
//! crafted likenesses.

use super::*;
use crate::backend::{Backend, ModelInputs, ModelOutputs};
use crate::features::{self, EncodedBrief, ImageLimits};
use crate::recommend::test_support::shipped;
use crate::recommend::{recommend, Asked, Suggestions, Words};

fn encode(json: &str) -> EncodedBrief {
    let brief = crate::brief::decode(json.as_bytes()).expect("brief");
    features::encode(&brief, &shipped().bundle, &ImageLimits::default()).expect("encode")
}

fn infer(encoded: &EncodedBrief) -> ModelOutputs {
    shipped()
        .backend
        .infer(&ModelInputs {
            brief: &encoded.terms,
            image: &encoded.image,
            brand: &encoded.brand,
        })
        .expect("inference")
}

fn asked(top_k: usize, prefer_cvd_safe: bool) -> Asked<'static> {
    Asked {
        top_k,
        render: false,
        prefer_cvd_safe,
        words: Words::default(),
    }
}

/// The brief through the real model and `recommend`, with its outputs.
fn suggest(json: &str, asked: Asked<'_>) -> (Suggestions, ModelOutputs) {
    let encoded = encode(json);
    let outputs = infer(&encoded);
    let suggestions = recommend(&shipped().bundle, &outputs, &encoded, asked).expect("recommend");
    (suggestions, outputs)
}

fn family_of(name: &str) -> &'static str {
    shipped()
        .bundle
        .palettes
        .palettes
        .iter()
        .find(|palette| palette.name == name)
        .map(|palette| palette.family.as_str())
        .expect("a catalogue palette")
}

fn families(suggestions: &Suggestions) -> Vec<&'static str> {
    suggestions
        .palettes
        .iter()
        .map(|palette| family_of(&palette.name))
        .collect()
}

fn descending(scores: &[f32]) -> bool {
    scores.windows(2).all(|pair| pair[0] >= pair[1])
}

fn assert_sorted(suggestions: &Suggestions, context: &str) {
    let styles: Vec<f32> = suggestions.styles.iter().map(|s| s.score).collect();
    let palettes: Vec<f32> = suggestions.palettes.iter().map(|p| p.score).collect();
    let fonts: Vec<f32> = suggestions.fonts.iter().map(|f| f.score).collect();
    assert!(descending(&styles), "{context}: styles {styles:?}");
    assert!(descending(&palettes), "{context}: palettes {palettes:?}");
    assert!(descending(&fonts), "{context}: fonts {fonts:?}");
}

/// Briefs that name no palette family; the model puts the top palettes of most in one family.
const UNNAMED: &[&str] = &[
    r#"{"product":"beverage"}"#,
    r#"{"product":"tea","mood":["calm","natural"]}"#,
    r#"{"product":"toys","mood":["playful"],"audience":["kids"]}"#,
    r#"{"product":"coffee"}"#,
    r#"{"product":"snacks"}"#,
    r#"{"product":"cosmetics"}"#,
    r#"{"product":"mooncake","mood":["festive"]}"#,
    r#"{"product":"an unknown product"}"#,
];

#[test]
fn top_palettes_span_two_families_unless_one_is_named() {
    let mut one_family_by_score = 0;
    for json in UNNAMED {
        let (suggestions, outputs) = suggest(json, asked(3, false));
        let spanned = families(&suggestions);
        assert_eq!(spanned.len(), 3, "{json}");
        assert!(
            spanned.iter().any(|family| *family != spanned[0]),
            "{json}: {spanned:?}"
        );
        let by_score: Vec<&str> = crate::recommend::ranked(&outputs.palettes)
            .take(3)
            .map(|(index, _)| shipped().bundle.palettes.palettes[index].family.as_str())
            .collect();
        if by_score.iter().all(|family| *family == by_score[0]) {
            one_family_by_score += 1;
        }
    }
    // The rule changes something: plain score order would give one family for most briefs.
    assert!(
        one_family_by_score >= UNNAMED.len() / 2,
        "{one_family_by_score}"
    );
}

#[test]
fn a_brief_naming_morandi_gets_morandi_palettes_that_differ() {
    let bundle = &shipped().bundle;
    for json in [
        r#"{"product":"beverage","palette":"morandi"}"#,
        r#"{"product":"tea","keywords":["morandi"]}"#,
        r#"{"product":"beverage","palette":"莫兰迪色系"}"#,
    ] {
        let encoded = encode(json);
        let named = named_families(
            &bundle.vocabulary,
            &encoded.terms,
            &bundle.palettes.palettes,
        );
        assert_eq!(named, ["morandi"], "{json}");
        let (suggestions, _) = suggest(json, asked(3, false));
        assert_eq!(families(&suggestions), ["morandi"; 3], "{json}");
        let likeness = PaletteLikeness::new(
            &bundle.palettes.palettes,
            &bundle.palette_distances,
            &bundle.palette_families,
            &named,
        );
        let indices: Vec<usize> = suggestions
            .palettes
            .iter()
            .map(|p| {
                bundle
                    .palettes
                    .palettes
                    .iter()
                    .position(|c| c.name == p.name)
                    .expect("catalogue palette")
            })
            .collect();
        for (at, &first) in indices.iter().enumerate() {
            for &second in &indices[at + 1..] {
                assert!(
                    likeness.similarity(first, second) < 1.0,
                    "{json}: near-duplicates {first} and {second}"
                );
            }
        }
    }
}

#[test]
fn the_top_scoring_item_is_always_kept_and_lists_are_sorted() {
    for json in UNNAMED
        .iter()
        .chain(&[r#"{"product":"beverage","palette":"morandi"}"#])
    {
        for top_k in [1, 3, 10] {
            let (suggestions, outputs) = suggest(json, asked(top_k, false));
            let context = format!("{json} top_k {top_k}");
            assert_sorted(&suggestions, &context);
            let best = |scores: &[f32]| crate::recommend::ranked(scores).next().map(|b| b.1);
            assert_eq!(
                suggestions.styles.first().map(|s| s.score),
                best(&outputs.styles),
                "{context}"
            );
            assert_eq!(
                suggestions.palettes.first().map(|p| p.score),
                best(&outputs.palettes),
                "{context}"
            );
            assert_eq!(
                suggestions.fonts.first().map(|f| f.score),
                best(&outputs.fonts),
                "{context}"
            );
            assert_eq!(suggestions.styles.len(), top_k, "{context}");
            assert_eq!(suggestions.palettes.len(), top_k, "{context}");
            assert_eq!(suggestions.fonts.len(), top_k, "{context}");
        }
    }
}

/// Scores from a fixed linear congruential generator: crafted, varied, reproducible.
fn crafted_scores(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

#[test]
fn crafted_scores_keep_the_best_item_first_on_every_list() {
    let bundle = &shipped().bundle;
    let encoded = encode(r#"{"product":"tea"}"#);
    for seed in 1..=40 {
        let mut outputs = infer(&encoded);
        outputs.styles = crafted_scores(outputs.styles.len(), seed);
        outputs.palettes = crafted_scores(outputs.palettes.len(), seed + 100);
        outputs.fonts = crafted_scores(outputs.fonts.len(), seed + 200);
        let suggestions = recommend(bundle, &outputs, &encoded, asked(5, false)).expect("ok");
        let context = format!("seed {seed}");
        assert_sorted(&suggestions, &context);
        let top = |scores: &[f32]| crate::recommend::ranked(scores).next().map(|b| b.0);
        let style = &bundle.styles.styles[top(&outputs.styles).expect("styles")];
        assert_eq!(suggestions.styles[0].style, style.name, "{context}");
        let palette = &bundle.palettes.palettes[top(&outputs.palettes).expect("palettes")];
        assert_eq!(suggestions.palettes[0].name, palette.name, "{context}");
        let pairing = &bundle.fonts.pairings[top(&outputs.fonts).expect("fonts")];
        assert_eq!(suggestions.fonts[0].heading, pairing.heading, "{context}");
        assert_eq!(suggestions.fonts[0].body, pairing.body, "{context}");
    }
}

#[test]
fn a_palette_family_holding_every_top_score_still_leaves_room_for_another() {
    let bundle = &shipped().bundle;
    let catalogue = &bundle.palettes.palettes;
    let encoded = encode(r#"{"product":"tea"}"#);
    let mut outputs = infer(&encoded);
    // Every vivid palette above every other palette.
    outputs.palettes = catalogue
        .iter()
        .enumerate()
        .map(|(index, palette)| {
            let base = if palette.family == "vivid" { 0.9 } else { 0.1 };
            base - index as f32 * 1e-4
        })
        .collect();
    for top_k in [2, 3, 5] {
        let suggestions = recommend(bundle, &outputs, &encoded, asked(top_k, false)).expect("ok");
        let spanned = families(&suggestions);
        assert_eq!(spanned[0], "vivid", "{spanned:?}");
        assert_eq!(
            spanned.iter().filter(|family| **family != "vivid").count(),
            1,
            "top_k {top_k}: only the last slot goes elsewhere: {spanned:?}"
        );
    }
    // Named, the family may fill the list.
    let named = encode(r#"{"product":"tea","palette":"vivid"}"#);
    let suggestions = recommend(bundle, &outputs, &named, asked(3, false)).expect("ok");
    assert_eq!(families(&suggestions), ["vivid"; 3]);
}

#[test]
fn font_pairings_never_repeat_a_heading_and_body() {
    let bundle = &shipped().bundle;
    let pairings = &bundle.fonts.pairings;
    // The catalogue has such twins (different CJK faces); the test needs one.
    let twins: Vec<(usize, usize)> = (0..pairings.len())
        .flat_map(|a| (a + 1..pairings.len()).map(move |b| (a, b)))
        .filter(|&(a, b)| {
            pairings[a].heading == pairings[b].heading && pairings[a].body == pairings[b].body
        })
        .collect();
    assert!(!twins.is_empty());
    let encoded = encode(r#"{"product":"snacks"}"#);
    let mut crafted = infer(&encoded);
    // Every twin pair on top of the scores.
    crafted.fonts = vec![0.1; pairings.len()];
    for (rank, &(a, b)) in twins.iter().enumerate() {
        crafted.fonts[a] = 0.99 - rank as f32 * 0.01;
        crafted.fonts[b] = 0.985 - rank as f32 * 0.01;
    }
    let real = infer(&encoded);
    for (outputs, what) in [(real, "model"), (crafted, "crafted")] {
        for top_k in [3, 5, 10] {
            let suggestions =
                recommend(bundle, &outputs, &encoded, asked(top_k, false)).expect("ok");
            let faces: Vec<(&str, &str)> = suggestions
                .fonts
                .iter()
                .map(|f| (f.heading.as_str(), f.body.as_str()))
                .collect();
            for (at, face) in faces.iter().enumerate() {
                assert!(
                    !faces[at + 1..].contains(face),
                    "{what} top_k {top_k}: {face:?} twice in {faces:?}"
                );
            }
        }
    }
}

#[test]
fn prefer_cvd_safe_picks_and_ranks_safe_palettes_first() {
    let mut gained = 0;
    for json in UNNAMED {
        for top_k in [3, 10] {
            let context = format!("{json} top_k {top_k}");
            let (plain, _) = suggest(json, asked(top_k, false));
            let (preferred, outputs) = suggest(json, asked(top_k, true));
            assert_eq!(preferred.palettes.len(), top_k, "{context}");
            let safety: Vec<bool> = preferred.palettes.iter().map(|p| p.cvd.safe).collect();
            assert!(
                safety.windows(2).all(|pair| pair[0] || !pair[1]),
                "{context}: {safety:?}"
            );
            for safe in [true, false] {
                let scores: Vec<f32> = preferred
                    .palettes
                    .iter()
                    .filter(|p| p.cvd.safe == safe)
                    .map(|p| p.score)
                    .collect();
                assert!(descending(&scores), "{context}: {scores:?}");
            }
            let count = |s: &Suggestions| s.palettes.iter().filter(|p| p.cvd.safe).count();
            assert!(count(&preferred) >= count(&plain), "{context}");
            if count(&preferred) > count(&plain) {
                gained += 1;
            }
            // A safe top palette is still the first suggestion.
            if plain.palettes[0].cvd.safe {
                assert_eq!(
                    plain.palettes[0].name, preferred.palettes[0].name,
                    "{context}"
                );
            }
            assert_eq!(
                plain.palettes[0].score,
                crate::recommend::ranked(&outputs.palettes)
                    .next()
                    .map_or(0.0, |b| b.1)
            );
        }
    }
    assert!(
        gained > 0,
        "preferring safe palettes never brought in another safe one"
    );
}

/// `select` without demotions, as (catalogue index, score).
fn picks(candidates: &[(usize, f32)], top_k: usize, likeness: &Table) -> Vec<(usize, f32)> {
    select(candidates, top_k, likeness, |_| false)
        .into_iter()
        .map(|slot| candidates[slot])
        .collect()
}

/// A crafted likeness: a fixed similarity table and optional groups.
struct Table {
    similarity: Vec<Vec<f32>>,
    groups: Vec<&'static str>,
}

impl Likeness for Table {
    fn similarity(&self, first: usize, second: usize) -> f32 {
        self.similarity[first][second]
    }
    fn group(&self, index: usize) -> Option<usize> {
        // A group is its name's first letter: enough for crafted tables.
        self.groups
            .get(index)
            .and_then(|name| name.bytes().next())
            .map(usize::from)
    }
}

#[test]
fn mmr_passes_over_a_similar_item_for_a_different_one_not_far_below() {
    // 0 and 1 are alike (0.8); 2 is different and 0.1 below 1; 3 is a near-duplicate of 0.
    let table = Table {
        similarity: vec![
            vec![1.0, 0.8, 0.0, 1.0],
            vec![0.8, 1.0, 0.0, 0.8],
            vec![0.0, 0.0, 1.0, 0.0],
            vec![1.0, 0.8, 0.0, 1.0],
        ],
        groups: Vec::new(),
    };
    let candidates = [(0, 0.9), (3, 0.89), (1, 0.85), (2, 0.75)];
    assert_eq!(picks(&candidates, 2, &table), [(0, 0.9), (2, 0.75)]);
    // Far below, the different item does not bury the strong one: 0.7·0.85 − 0.3·0.8 = 0.355
    // against 0.7·0.3 = 0.21.
    let far = [(0, 0.9), (1, 0.85), (2, 0.3)];
    assert_eq!(picks(&far, 2, &table), [(0, 0.9), (1, 0.85)]);
    // A near-duplicate comes last, and only when nothing else is left.
    assert_eq!(
        picks(&candidates, 4, &table),
        [(0, 0.9), (3, 0.89), (1, 0.85), (2, 0.75)]
    );
    assert_eq!(picks(&candidates[..2], 2, &table), [(0, 0.9), (3, 0.89)]);
}

#[test]
fn demoted_candidates_come_after_all_others() {
    let table = Table {
        similarity: vec![vec![0.0; 4]; 4],
        groups: vec!["a", "a", "a", "b"],
    };
    let candidates = [(0, 0.9), (1, 0.8), (2, 0.7), (3, 0.1)];
    let demoting = |flags: [bool; 4]| move |slot: usize| flags[slot];
    assert_eq!(
        select(
            &candidates,
            3,
            &table,
            demoting([true, false, false, false])
        ),
        [1, 2, 3]
    );
    // Demotion comes before the group rule: the last slot stays in group a.
    assert_eq!(
        select(
            &candidates,
            3,
            &table,
            demoting([false, false, false, true])
        ),
        [0, 1, 2]
    );
    // All demoted: as if none were.
    assert_eq!(select(&candidates, 2, &table, demoting([true; 4])), [0, 3]);
    // Asked lazily: with nothing demoted, only the winner of each pick is asked about.
    let mut asked = Vec::new();
    select(&candidates, 3, &table, |slot| {
        asked.push(slot);
        false
    });
    assert_eq!(asked, [0, 1, 3]);
}

#[test]
fn the_last_slot_goes_to_another_group_when_all_picks_share_one() {
    let table = Table {
        similarity: vec![vec![0.0; 4]; 4],
        groups: vec!["a", "a", "a", "b"],
    };
    let candidates = [(0, 0.9), (1, 0.8), (2, 0.7), (3, 0.1)];
    assert_eq!(
        picks(&candidates, 3, &table),
        [(0, 0.9), (1, 0.8), (3, 0.1)]
    );
    assert_eq!(picks(&candidates, 1, &table), [(0, 0.9)]);
    // No other group at hand: the list is still filled.
    assert_eq!(
        picks(&candidates[..3], 3, &table),
        [(0, 0.9), (1, 0.8), (2, 0.7)]
    );
}

#[test]
fn similarities_follow_the_catalogue() {
    let bundle = &shipped().bundle;
    let catalogue = &bundle.palettes.palettes;
    let index = |id: &str| catalogue.iter().position(|p| p.id == id).expect(id);
    let (rose, cherry) = (index("morandi-rose-haze"), index("morandi-cherry-haze"));
    let unnamed = PaletteLikeness::new(
        catalogue,
        &bundle.palette_distances,
        &bundle.palette_families,
        &[],
    );
    assert_eq!(unnamed.similarity(rose, cherry), 1.0, "same look");
    let vivid: Vec<usize> = (0..catalogue.len())
        .filter(|&i| catalogue[i].family == "vivid")
        .collect();
    let (first, last) = (vivid[0], vivid[vivid.len() - 1]);
    assert!(unnamed.similarity(first, last) >= SAME_FAMILY_SIMILARITY);
    let named = ["vivid".to_string()];
    let named = PaletteLikeness::new(
        catalogue,
        &bundle.palette_distances,
        &bundle.palette_families,
        &named,
    );
    assert!(named.similarity(first, last) <= unnamed.similarity(first, last));
    assert_eq!(
        named.group(first),
        None,
        "a named family lifts the span rule"
    );

    let fonts = Tabled(&bundle.font_similarities);
    let pairing = |id: &str| {
        bundle
            .fonts
            .pairings
            .iter()
            .position(|p| p.id == id)
            .expect(id)
    };
    assert_eq!(
        fonts.similarity(pairing("spacegrotesk-inter"), pairing("smiley-inter")),
        1.0
    );
    let (playful, minimal) = (pairing("quicksand-nunito"), pairing("inter-inter"));
    assert!(
        fonts.similarity(pairing("fredoka-quicksand"), playful)
            > fonts.similarity(minimal, playful)
    );

    let styles = Tabled(&bundle.style_similarities);
    let style = |id: &str| {
        bundle
            .styles
            .styles
            .iter()
            .position(|s| s.id == id)
            .expect(id)
    };
    assert!(
        styles.similarity(style("luxury"), style("art_deco"))
            > styles.similarity(style("luxury"), style("kawaii"))
    );
    assert_eq!(styles.similarity(style("luxury"), style("luxury")), 1.0);
}

/// The scan picks what sorting every candidate and taking the first kept one picked, and asks
/// `demoted` about the same candidates in the same order.
#[test]
fn the_best_kept_candidate_is_the_first_kept_in_sorted_order() {
    let mut random = fastrand::Rng::with_seed(23);
    for round in 0..2000 {
        let len = random.usize(0..12);
        let order: Vec<(u8, f32, usize)> = (0..len)
            .map(|slot| (random.u8(0..4), f32::from(random.u8(0..5)) / 4.0, slot))
            .collect();
        let demoted: Vec<bool> = (0..len).map(|_| random.bool()).collect();
        let mut sorted = order.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut asked_sorted = Vec::new();
        let expected = sorted
            .iter()
            .find(|&&(_, _, slot)| {
                asked_sorted.push(slot);
                !demoted[slot]
            })
            .or(sorted.first())
            .map(|&(_, _, slot)| slot);
        let mut asked = Vec::new();
        let mut scanned = order.clone();
        let found = best_kept(&mut scanned, &mut |slot| {
            asked.push(slot);
            demoted[slot]
        });
        assert_eq!(found, expected, "round {round}");
        assert_eq!(asked, asked_sorted, "round {round}");
    }
}
