//! Features: a validated brief becomes the model's three input vectors, following the bundle's
//! vocabulary and the encoding in `docs/bundle-format.md`.

pub mod decode_budget;
pub mod image;
pub mod terms;

use crate::brief::Brief;
use crate::bundle::Bundle;
use crate::colour::Rgb;
use crate::reply::{ApiError, ErrorCode, Understood};

pub use self::image::{ImageLimits, BRAND_FEATURE_LEN, IMAGE_FEATURE_LEN};
pub use self::terms::{read_terms, ReadTerms};

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
    /// How each brief value was read, for the reply's `understood`.
    pub understood: Vec<Understood>,
    /// Values read as nothing, as sentences for the reply.
    pub warnings: Vec<String>,
}

impl EncodedBrief {
    /// The product term the brief's `product` was read as (`product:…`), if any: it picks the
    /// pack form a preview is drawn on.
    pub fn product_term(&self) -> Option<&str> {
        self.understood
            .iter()
            .filter(|reading| reading.field == "product")
            .flat_map(|reading| &reading.terms)
            .map(String::as_str)
            .find(|term| term.starts_with("product:"))
    }
}

/// Encodes a whole brief: terms, reference image (decoded here, under `limits`) and brand colours.
pub fn encode(
    brief: &Brief,
    bundle: &Bundle,
    limits: &ImageLimits,
) -> Result<EncodedBrief, ApiError> {
    let ReadTerms {
        vector: terms,
        understood,
        warnings,
    } = read_terms(brief, bundle);
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
            image::ImageFeatures::analyse(&decoded)
        }
        None => (image::NO_IMAGE, Vec::new()),
    };
    Ok(EncodedBrief {
        terms,
        image: image_features,
        brand: image::brand_features(&brief.brand_colors),
        image_colours,
        brand_colours: brief.brand_colors.clone(),
        understood,
        warnings,
    })
}
