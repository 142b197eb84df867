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
        &brief(r#"{"product":"tea","mood":["sunday morning feeling"]}"#),
        &bundle,
    );
    assert_eq!(
        read.warnings,
        ["unknown mood 'sunday morning feeling' ignored"]
    );
}
