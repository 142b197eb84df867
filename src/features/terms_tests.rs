use super::*;

fn shipped() -> Bundle {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("engines/packd-default");
    Bundle::open(&dir).expect("shipped bundle")
}

fn brief(json: &str) -> Brief {
    crate::brief::decode(json.as_bytes()).expect("brief")
}

fn read(json: &str) -> ReadTerms {
    read_terms(&brief(json), &shipped())
}

#[test]
fn a_synonym_typed_in_another_field_is_still_read() {
    // 国潮 is a keyword term; a mood of 国潮 used to be an unknown mood.
    let read = read(r#"{"product":"茶饮","mood":["国潮"]}"#);
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    let mood = &read.understood[1];
    assert_eq!((mood.field.as_str(), mood.text.as_str()), ("mood", "国潮"));
    assert_eq!(mood.terms, ["keyword:guochao"]);
    assert_eq!(mood.via, ReadVia::Synonym);
}

#[test]
fn a_palette_or_mood_value_is_first_read_as_its_own_fields_idea() {
    // "earthy" and 复古 are exact synonyms of moods; typed as a palette they mean earth tones
    // and vintage colours, which the encoder finds among the palettes.
    let typed = read(
        r#"{"product":"tea","mood":["earthy","复古"],"palette":"earthy","keywords":["earthy"]}"#,
    );
    let terms: Vec<(&str, &str, ReadVia)> = typed
        .understood
        .iter()
        .map(|entry| (entry.field.as_str(), entry.terms[0].as_str(), entry.via))
        .collect();
    assert_eq!(
        terms[1..],
        [
            ("mood", "mood:natural", ReadVia::Synonym),
            ("mood", "mood:nostalgic", ReadVia::Synonym),
            ("palette", "palette:earth_tones", ReadVia::Encoder),
            ("keywords", "mood:natural", ReadVia::Synonym),
        ]
    );
    let palette = read(r#"{"product":"tea","palette":"复古"}"#);
    assert_eq!(palette.understood[1].terms, ["palette:vintage"]);
    assert!(palette.understood[1].similarity >= Some(OWN_FIELD_SIMILARITY));
    // Not for a product: a value another group owns exactly stays that group's.
    let product = read(r#"{"product":"earthy"}"#);
    assert_eq!(product.understood[0].terms, ["mood:natural"]);
}

#[test]
fn exact_names_synonyms_and_contained_terms_say_how_they_were_read() {
    let read =
        read(r#"{"product":"beverage","audience":["Z世代"],"keywords":["nice kids snacks"]}"#);
    let vias: Vec<ReadVia> = read.understood.iter().map(|entry| entry.via).collect();
    assert_eq!(vias, [ReadVia::Exact, ReadVia::Synonym, ReadVia::Contains]);
    assert_eq!(
        read.understood[2].terms,
        ["product:snacks", "audience:kids"]
    );
    assert!(read
        .understood
        .iter()
        .all(|entry| entry.similarity.is_none()));
}

#[test]
fn a_contained_reading_keeps_what_the_value_names_not_its_modifiers() {
    let read = read(r#"{"product":"速冻汤圆","keywords":["sun cream spf50"]}"#);
    // 汤圆 is also the lantern festival's, but a product value names a product.
    assert_eq!(read.understood[0].terms, ["product:frozen_food"]);
    assert_eq!(read.understood[0].via, ReadVia::Contains);
    // Keywords take every group; "cream" (the palette) inside "sun cream" is part of it.
    assert_eq!(read.understood[1].terms, ["product:sunscreen"]);
    assert_eq!(read.understood[1].via, ReadVia::Contains);
}

#[test]
fn a_colour_beside_a_named_look_is_that_looks_colour() {
    // A colour name once read as a palette of its own beside the look it qualified: "orange
    // gradient" asked for vivid colours, "vaporwave pinks" for pastels.
    let typed = read(
        r#"{"product":"tea","palette":"vaporwave pinks","keywords":["orange gradient","橙色渐变"]}"#,
    );
    let terms: Vec<&[String]> = typed.understood[1..]
        .iter()
        .map(|entry| entry.terms.as_slice())
        .collect();
    assert_eq!(
        terms,
        [
            &["keyword:vaporwave".to_string()][..],
            &["keyword:gradient".to_string()][..],
            &["keyword:gradient".to_string()][..],
        ]
    );
    // Alone, a colour is still the palette it names.
    let pink = read(r#"{"product":"tea","palette":"pinks"}"#);
    assert_eq!(pink.understood[1].terms, ["palette:pastel"]);
}

#[test]
fn every_read_term_is_on_in_the_vector_and_nothing_else() {
    let bundle = shipped();
    let read = read_terms(
        &brief(r#"{"product":"tea","mood":["calm","国潮"]}"#),
        &bundle,
    );
    let on: Vec<&str> = bundle
        .vocabulary
        .terms
        .iter()
        .filter(|term| read.vector[term.index] > 0.0)
        .map(|term| term.id.as_str())
        .collect();
    assert_eq!(on, ["product:tea", "mood:calm", "keyword:guochao"]);
}

#[test]
fn nonsense_stays_a_warning() {
    let read = read(r#"{"product":"tea","keywords":["qzxv blorf"],"mood":["asdfgh"]}"#);
    assert_eq!(read.understood.len(), 1, "{:?}", read.understood);
    assert_eq!(
        read.warnings,
        [
            "unknown mood 'asdfgh' ignored",
            "unknown keyword 'qzxv blorf' ignored"
        ]
    );
}

#[test]
fn an_unknown_product_says_the_answer_is_generic() {
    let read = read(r#"{"product":"qzxv blorf","mood":["calm"]}"#);
    assert_eq!(
        read.warnings,
        ["unknown product 'qzxv blorf' ignored: suggestions are not specific to a product"]
    );
    let read = read_terms(
        &brief(r#"{"product":"summer","mood":["calm"]}"#),
        &shipped(),
    );
    assert_eq!(read.understood[0].terms, ["season:summer_limited"]);
    assert!(
        read.warnings[0].contains("not specific to a product"),
        "{:?}",
        read.warnings
    );
}

#[test]
fn without_an_encoder_free_text_is_a_warning() {
    let mut bundle = shipped();
    bundle.text = None;
    let read = read_terms(
        &brief(r#"{"product":"tea","mood":["like sunday mornings"]}"#),
        &bundle,
    );
    assert_eq!(
        read.warnings,
        ["unknown mood 'like sunday mornings' ignored"]
    );
}

/// The recipe's reference reader (engines/recipe/packd_recipe/reading.py) wrote down how it read
/// each self-test value; packd must read them the same way, encoder readings included.
#[test]
fn packd_reads_the_self_test_values_as_the_recipe_did() {
    let bundle = shipped();
    let path = bundle.path_of(crate::bundle::TEXT_SELFTEST_FILE);
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("self-test file")).expect("json");
    let cases = file["cases"].as_array().expect("cases");
    let mut via_encoder = 0;
    for case in cases {
        let (field, text) = (
            case["field"].as_str().unwrap(),
            case["text"].as_str().unwrap(),
        );
        let reader = Reader {
            vocabulary: &bundle.vocabulary,
            text: bundle.text.as_ref(),
        };
        let got = reader
            .read(text, Field::named(field))
            .map(|reading| reading.understood(field, text));
        let want = &case["read"];
        match got {
            None => assert!(
                want.is_null(),
                "{text}: read as nothing, recipe read {want}"
            ),
            Some(got) => {
                let ids: Vec<&str> = want["as"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| id.as_str().unwrap())
                    .collect();
                assert_eq!(got.terms, ids, "{text}");
                let via = serde_json::to_value(got.via).unwrap();
                assert_eq!(via, want["via"], "{text}");
                if let Some(similarity) = want["similarity"].as_f64() {
                    via_encoder += 1;
                    let got = f64::from(got.similarity.expect("encoder similarity"));
                    assert!(
                        (got - similarity).abs() <= 2e-3,
                        "{text}: {got} vs {similarity}"
                    );
                }
            }
        }
    }
    assert!(
        via_encoder >= 3,
        "only {via_encoder} cases exercise the encoder"
    );
}

#[test]
fn a_long_word_with_a_slip_is_read_as_the_synonym_it_misses() {
    // One dropped, substituted or swapped letter from 6 letters on, two from 10; the encoder
    // alone read "elegent" as the gentle mood.
    let read = read(
        r#"{"product":"tea","mood":["traditonal","elegent","elegnat"],"keywords":["premiun","chinese new yr"]}"#,
    );
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    let terms: Vec<(&str, ReadVia)> = read.understood[1..]
        .iter()
        .map(|entry| (entry.terms[0].as_str(), entry.via))
        .collect();
    assert_eq!(
        terms,
        [
            ("mood:traditional", ReadVia::Synonym),
            ("mood:elegant", ReadVia::Synonym),
            ("mood:elegant", ReadVia::Synonym),
            ("mood:premium", ReadVia::Synonym),
            ("occasion:chinese_new_year", ReadVia::Synonym),
        ]
    );
}

#[test]
fn a_short_or_far_value_is_not_taken_for_a_misspelling() {
    let vocabulary = &shipped().vocabulary;
    // Five letters is too short to risk ("poppy" is a word of its own), two slips in nine letters
    // too many ("exclisuve" swaps two letters of "exclusive"), and CJK is never a spelling.
    for value in ["poppy", "exclisuve", "qzxv blorf", "奶油疯"] {
        assert!(
            vocabulary.misspelt(value, ALL_GROUPS).is_none(),
            "{value} read as {:?}",
            vocabulary.misspelt(value, ALL_GROUPS).map(|term| &term.id)
        );
    }
    assert_eq!(
        vocabulary
            .misspelt("traditonal", ALL_GROUPS)
            .map(|term| term.id.as_str()),
        Some("mood:traditional")
    );
}
