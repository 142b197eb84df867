//! The reference-image path of a brief: `decode_reference_image` under the default limits (the
//! ones the daemon serves with), then the `image` features and dominant colours of whatever
//! decoded.

#![no_main]

use libfuzzer_sys::fuzz_target;
use packd::features::image::{
    decode_reference_image, dominant_colours, ImageError, ImageFeatures, DOMINANT_COLOUR_COUNT,
};
use packd::features::ImageLimits;

fuzz_target!(|bytes: &[u8]| {
    let limits = ImageLimits::default();
    match decode_reference_image(bytes, &limits) {
        Ok(image) => {
            let (width, height) = image.dimensions();
            assert!(u64::from(width) * u64::from(height) <= limits.max_pixels);
            let features = ImageFeatures::from_image(&image);
            assert_eq!(features[0], 1.0, "an image is present");
            assert!(
                features.iter().all(|value| value.is_finite()),
                "{features:?}"
            );
            let colours = dominant_colours(&image);
            assert!(colours.len() <= DOMINANT_COLOUR_COUNT);
            let total: f32 = colours.iter().map(|(_, weight)| weight).sum();
            assert!(
                colours.is_empty() || (total - 1.0).abs() < 1e-3,
                "weights sum to {total}"
            );
        }
        Err(ImageError::TooLarge { bytes: size, .. }) => assert_eq!(size, bytes.len()),
        Err(ImageError::TooManyPixels { width, height }) => {
            assert!(u64::from(width) * u64::from(height) > limits.max_pixels)
        }
        Err(_) => {}
    }
});
