//! The brief decoder: any MQTT payload → `brief::decode` (size limits first, one typed error per
//! malformed case) and `brief::read_envelope`, then the reading of its terms against the shipped
//! bundle (vocabulary, contained synonyms and text encoder), as a worker does before inference.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use packd::brief::{self, MAX_BRAND_COLOURS, MAX_IMAGE_BYTES, MAX_PAYLOAD_BYTES, TOP_K_RANGE};
use packd::bundle::Bundle;
use packd::features;

fn bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../engines/packd-default");
        Bundle::open(std::path::Path::new(dir)).expect("shipped bundle")
    })
}

fuzz_target!(|payload: &[u8]| {
    let envelope = brief::read_envelope(payload);
    if let Some(topic) = &envelope.reply_to {
        assert!(brief::valid_reply_topic(topic), "{topic:?}");
    }
    if let Some(id) = &envelope.id {
        // A string id of at most 128 characters, or a number's text.
        assert!(
            id.chars().count() <= 128 || id.parse::<f64>().is_ok(),
            "{id:?}"
        );
    }

    match brief::decode(payload) {
        Ok(brief) => {
            assert!(payload.len() <= MAX_PAYLOAD_BYTES);
            assert!(!brief.product.trim().is_empty());
            assert!(TOP_K_RANGE.contains(&(brief.top_k as u64)));
            assert!(brief.brand_colors.len() <= MAX_BRAND_COLOURS);
            assert!(brief
                .image
                .as_ref()
                .is_none_or(|image| image.len() <= MAX_IMAGE_BYTES));
            assert!(brief
                .deadline_ms
                .is_none_or(|ms| (1..=600_000).contains(&ms)));
            for list in [&brief.audience, &brief.mood, &brief.keywords] {
                assert!(list.len() <= 32);
                assert!(list.iter().all(|term| term.chars().count() <= 64));
            }
            // What an invalid brief's reply is routed by agrees with the decoded brief.
            assert_eq!(envelope.id, brief.id);

            let bundle = bundle();
            let read = features::read_terms(&brief, bundle);
            assert_eq!(read.vector.len(), bundle.vocabulary.len());
            assert!(read.vector.iter().all(|&value| value == 0.0 || value == 1.0));
            let values = 1
                + brief.audience.len()
                + brief.mood.len()
                + usize::from(brief.palette.is_some())
                + brief.keywords.len();
            assert!(read.warnings.len() <= values);
            assert!(read.understood.len() <= values);
            for entry in &read.understood {
                assert!(!entry.terms.is_empty());
                assert!(entry
                    .similarity
                    .is_none_or(|similarity| (-1.0..=1.0).contains(&similarity)));
            }
            let brand = features::image::brand_features(&brief.brand_colors);
            assert!(brand.iter().all(|value| value.is_finite()));
        }
        Err(error) => {
            // Every refusal carries a message for the client (formatting walks every field).
            assert!(!format!("{error:?}").is_empty());
        }
    }
});
