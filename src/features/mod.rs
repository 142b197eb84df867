//! Features: a validated brief becomes the model's three input vectors, following the bundle's
//! vocabulary and the encoding in `docs/bundle-format.md`.

pub mod decode_budget;
pub mod image;

use crate::brief::Brief;
use crate::bundle::catalogue::{normalise, Vocabulary};
use crate::colour::Rgb;
use crate::reply::{ApiError, ErrorCode};

pub use self::image::{ImageLimits, BRAND_FEATURE_LEN, IMAGE_FEATURE_LEN};

/// The model inputs for one brief, plus what post-processing needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBrief {
    /// Multi-hot over the vocabulary.
    pub terms: Vec<f32>,
    /// The reference image's features; all zeros without an image.
    pub image: [f32; IMAGE_FEATURE_LEN],
    /// The brand colours' features.
    pub brand: [f32; BRAND_FEATURE_LEN],
    /// Dominant colours of the reference image with their pixel shares.
    pub(crate) image_colours: Vec<(Rgb, f32)>,
    pub(crate) brand_colours: Vec<Rgb>,
    /// Unknown terms, as sentences for the reply.
    pub warnings: Vec<String>,
}

/// Which vocabulary groups each brief field is matched against.
const PRODUCT_GROUPS: &[&str] = &["product"];
const AUDIENCE_GROUPS: &[&str] = &["audience"];
const MOOD_GROUPS: &[&str] = &["mood", "season", "occasion"];
const PALETTE_GROUPS: &[&str] = &["palette"];
const KEYWORD_GROUPS: &[&str] = &[
    "product", "audience", "mood", "season", "occasion", "palette", "keyword",
];

/// Encodes the brief's terms into the multi-hot vector; unknown terms become warnings.
pub fn encode_terms(brief: &Brief, vocabulary: &Vocabulary) -> (Vec<f32>, Vec<String>) {
    let mut vector = vec![0.0f32; vocabulary.len()];
    let mut warnings = Vec::new();
    let mut exact =
        |field: &str, value: &str, groups: &[&str], warnings: &mut Vec<String>| match vocabulary
            .exact(&normalise(value), groups)
        {
            Some(term) => vector[term.index] = 1.0,
            None => warnings.push(format!("unknown {field} '{value}' ignored")),
        };
    exact("product", &brief.product, PRODUCT_GROUPS, &mut warnings);
    for value in &brief.audience {
        exact("audience", value, AUDIENCE_GROUPS, &mut warnings);
    }
    for value in &brief.mood {
        exact("mood", value, MOOD_GROUPS, &mut warnings);
    }
    if let Some(value) = &brief.palette {
        exact("palette", value, PALETTE_GROUPS, &mut warnings);
    }
    for value in &brief.keywords {
        let normalised = normalise(value);
        if let Some(term) = vocabulary.exact(&normalised, KEYWORD_GROUPS) {
            vector[term.index] = 1.0;
            continue;
        }
        let contained = vocabulary.contained(&normalised);
        if contained.is_empty() {
            warnings.push(format!("unknown keyword '{value}' ignored"));
        }
        for term in contained {
            vector[term.index] = 1.0;
        }
    }
    (vector, warnings)
}

/// Encodes a whole brief: terms, reference image (decoded here, under `limits`) and brand colours.
pub fn encode(
    brief: &Brief,
    vocabulary: &Vocabulary,
    limits: &ImageLimits,
) -> Result<EncodedBrief, ApiError> {
    let (terms, warnings) = encode_terms(brief, vocabulary);
    let (image_features, image_colours) = match &brief.image {
        Some(bytes) => {
            let refused = |error: image::ImageError| {
                let code = match error {
                    image::ImageError::TooLarge { .. } => ErrorCode::TooLarge,
                    _ => ErrorCode::BadImage,
                };
                ApiError::for_field(code, "image", error.to_string())
            };
            let header = image::read_image_header(bytes, limits).map_err(refused)?;
            // Held until the full-size pixels are dropped at the end of this arm.
            let _memory = decode_budget::DECODE_MEMORY.reserve(header.decode_cost(limits));
            let decoded = image::decode_with_header(bytes, &header, limits).map_err(refused)?;
            let features = image::ImageFeatures::from_image(&decoded);
            (features, image::dominant_colours(&decoded))
        }
        None => (image::NO_IMAGE, Vec::new()),
    };
    Ok(EncodedBrief {
        terms,
        image: image_features,
        brand: image::brand_features(&brief.brand_colors),
        image_colours,
        brand_colours: brief.brand_colors.clone(),
        warnings,
    })
}
