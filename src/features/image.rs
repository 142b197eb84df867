//! Reference-image decoding with decompression-bomb limits, and the `image` and `brand` model
//! inputs exactly as docs/bundle-format.md defines them.
//!
//! The feature pipeline, fixed here so the training recipe can mirror it: decode (a JPEG in
//! the DCT domain at the smallest of 1/8, 1/4 and 1/2 scale that keeps its longest side at
//! least 128, else at full size), turn upright as the EXIF orientation says, shrink to fit
//! 64×64 (aspect kept, triangle filter, never enlarged), convert every pixel to CIELAB,
//! k-means with k = 5 (k-means++ seeded by SplitMix64 from `KMEANS_SEED`, at most 20 Lloyd
//! iterations), drop empty clusters, sort by weight descending; the L statistics and the
//! colourfulness are taken over the same shrunken pixels.

use std::io::Cursor;

use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use thiserror::Error;

use crate::colour::{Lab, Rgb};

mod jpeg;

use jpeg::{decode_jpeg, read_jpeg_frame};

pub use packd_bundle::{BRAND_FEATURE_LEN, IMAGE_FEATURE_LEN};
/// The `image` input of a brief without a reference image.
pub(crate) const NO_IMAGE: [f32; IMAGE_FEATURE_LEN] = [0.0; IMAGE_FEATURE_LEN];
/// Number of dominant colours in the `image` input.
pub const DOMINANT_COLOUR_COUNT: usize = 5;
/// Number of brand colour slots in the `brand` input.
pub const MAX_BRAND_COLOURS: usize = 4;
/// Longest side, in pixels, of the image the features are computed on.
pub(crate) const ANALYSIS_SIDE: u32 = 64;
/// Seed of the k-means++ initialisation; changing it changes the features the model was trained on.
pub(crate) const KMEANS_SEED: u64 = 0x7061_636B_6400_0005;
/// Upper bound on Lloyd iterations; clusters of a 64×64 image settle well before this.
pub(crate) const KMEANS_MAX_ITERATIONS: usize = 20;

const FEATURE_PRESENT: usize = 0;
const FEATURE_COLOURS: usize = 1;
const FEATURE_WEIGHTS: usize = 16;
const FEATURE_MEAN_L: usize = 21;
const FEATURE_STD_L: usize = 22;
const FEATURE_COLOURFULNESS: usize = 23;
const MAX_COLOURFULNESS_FEATURE: f32 = 1.5;

/// Images up to 2048 × 2048 pixels are accepted however few bytes they take: a flat logo or a
/// screen-sized mock-up in one colour compresses to almost nothing, and decoding 4 Mpx costs about
/// a tenth of a second (the review measured 1.1 s for 40 Mpx of lossless WebP).
pub(crate) const FREE_PIXELS: u64 = 2048 * 2048;

/// Past [`FREE_PIXELS`], an image must bring at least one byte per this many pixels, so that
/// decoding costs time in proportion to what the sender paid in bytes. Measured with the `image`
/// crate's encoders on real pictures (photos, screenshots, diagrams, logos; 0.07 to 3.7 Mpx), the
/// most compressible content took 24 900 bytes per megapixel (a mostly white screenshot as
/// lossless WebP), photos 230 000 as JPEG; only synthetic pictures went lower (one colour over
/// 2000 × 2000: 500 bytes per Mpx as lossless WebP, 15 900 as PNG). A JPEG cannot go much under
/// 4 000 (every 8 × 8 block costs bits). 1000 pixels a byte (1 000 bytes per Mpx) leaves real
/// content a margin of 25 for better encoders and refuses the review's bomb (40 Mpx in 1.6 KB,
/// 25 000 pixels a byte); 40 Mpx, the pixel limit, then needs 40 KB.
pub(crate) const MAX_PIXELS_PER_BYTE: u64 = 1000;

/// Bounds on what a reference image may cost to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest accepted encoded image, in bytes (after base64 decoding).
    pub(crate) max_encoded_bytes: usize,
    /// Largest accepted width × height.
    pub max_pixels: u64,
    /// Most memory the decoder may allocate, in bytes.
    pub(crate) max_alloc_bytes: u64,
    /// Images of up to this many pixels are accepted however well they compress.
    pub(crate) free_pixels: u64,
    /// Past `free_pixels`, the most pixels an image may declare per encoded byte.
    pub(crate) max_pixels_per_byte: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_encoded_bytes: 4 * 1024 * 1024,
            max_pixels: 40_000_000,
            // 40 Mpx of 8-bit RGBA is 160 MB; the rest is decoder working space.
            max_alloc_bytes: 256 * 1024 * 1024,
            free_pixels: FREE_PIXELS,
            max_pixels_per_byte: MAX_PIXELS_PER_BYTE,
        }
    }
}

/// Why a reference image was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImageError {
    /// The encoded image exceeds `max_encoded_bytes`.
    #[error("reference image is {bytes} bytes; at most {max_bytes} are accepted")]
    TooLarge {
        /// Size of the encoded image.
        bytes: usize,
        /// The configured limit.
        max_bytes: usize,
    },
    /// The header declares more pixels than `max_pixels`.
    #[error("reference image is {width}×{height} pixels, more than accepted")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The header declares far more pixels than the encoded bytes could describe in a real
    /// picture: a decompression bomb that is cheap to send and expensive to decode.
    #[error(
        "reference image declares {width}×{height} pixels in only {bytes} bytes; past \
         {free_pixels} pixels at most {max_pixels_per_byte} pixels per byte are accepted \
         (send it smaller or less compressed)"
    )]
    TooCompressed {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Size of the encoded image.
        bytes: usize,
        /// The configured `free_pixels`.
        free_pixels: u64,
        /// The configured `max_pixels_per_byte`.
        max_pixels_per_byte: u64,
    },
    /// Decoding would allocate more than `max_alloc_bytes`.
    #[error("decoding the reference image would need more than {max_alloc_bytes} bytes")]
    MemoryLimit {
        /// The configured limit.
        max_alloc_bytes: u64,
    },
    /// Not a JPEG, PNG or WebP image, or a variant of one that the decoder does not support.
    #[error("unsupported reference image ({0}); JPEG, PNG and WebP are accepted")]
    Unsupported(String),
    /// The data claims a supported format but does not decode.
    #[error("corrupt reference image: {0}")]
    Corrupt(String),
}

/// What an image's header declares, checked against the limits before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageHeader {
    decode: Decode,
    /// Declared width in pixels.
    pub width: u32,
    /// Declared height in pixels.
    pub height: u32,
}

/// How an accepted image's pixels are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// PNG and WebP, through `image`, at full size: neither can be decoded at reduced scale
    /// (PNG's filters and WebP's predictors need every pixel of the row above; lossy WebP is
    /// DCT-based like JPEG, but image-webp offers no scaled decoding).
    Full(ImageFormat),
    /// JPEG, through libjpeg-turbo, whose IDCT produces the image at 1/`denominator` scale.
    Jpeg(JpegPlan),
}

/// What the JPEG frame header says about the cost of decoding it, and the scale chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JpegPlan {
    /// 1, 2, 4 or 8.
    denominator: u32,
    components: u64,
    progressive: bool,
}

impl JpegPlan {
    /// CMYK or YCCK (four components): decoded as CMYK, then converted.
    fn is_cmyk(&self) -> bool {
        self.components == 4
    }
}

/// Decoding at reduced scale keeps the longest side at least this long: twice the analysis
/// side, so the triangle shrink to [`ANALYSIS_SIDE`] still averages over at least two decoded
/// pixels per analysed pixel, as it does from full size (the tolerance test measures this).
pub(crate) const MIN_DECODED_SIDE: u32 = 2 * ANALYSIS_SIDE;

impl ImageHeader {
    /// Most bytes decoding this image holds at once. PNG and WebP: the decoder's buffer (at most
    /// 8 bytes a pixel, for 16-bit RGBA, and never past `max_alloc_bytes`) and the 8-bit RGB
    /// copy, at full size. JPEG: the component planes, the interleaved output and the RGB copy
    /// at the reduced size, plus, for a progressive JPEG, its coefficients (2 bytes a sample) at
    /// full size.
    pub fn decode_cost(&self, limits: &ImageLimits) -> u64 {
        let pixels = u64::from(self.width) * u64::from(self.height);
        match self.decode {
            Decode::Full(_) => pixels
                .saturating_mul(8)
                .min(limits.max_alloc_bytes)
                .saturating_add(pixels.saturating_mul(3)),
            Decode::Jpeg(plan) => {
                // Planes are whole 8×8 blocks (16×16 with subsampling) of the scaled image.
                let padded = |side: u32| u64::from(side.div_ceil(16) * 16);
                let (width, height) = self.decoded_size();
                let decoded = padded(width) * padded(height);
                let coefficients = if plan.progressive {
                    pixels.saturating_mul(2 * plan.components)
                } else {
                    0
                };
                decoded
                    .saturating_mul(2 * plan.components + 3)
                    .saturating_add(coefficients)
            }
        }
    }

    /// The size [`decode_with_header`] produces, before EXIF orientation: the declared size, or
    /// for a large JPEG that size scaled by 1/2, 1/4 or 1/8 (rounded up), never under
    /// [`MIN_DECODED_SIDE`] on the longest side.
    pub(crate) fn decoded_size(&self) -> (u32, u32) {
        match self.decode {
            Decode::Full(_) => (self.width, self.height),
            Decode::Jpeg(plan) => (
                self.width.div_ceil(plan.denominator),
                self.height.div_ceil(plan.denominator),
            ),
        }
    }
}

/// Decodes a JPEG, PNG or WebP image (format guessed from content) within `limits`, upright
/// (EXIF orientation applied); a large JPEG comes out at reduced scale (see
/// [`ImageHeader::decoded_size`]), which is all the features need.
pub fn decode_reference_image(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    let header = read_image_header(bytes, limits)?;
    decode_with_header(bytes, &header, limits)
}

/// Reads and checks only the header: the size, the format and the declared dimensions, so a
/// bomb is refused before any pixel buffer exists.
pub(crate) fn read_image_header(
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<ImageHeader, ImageError> {
    if bytes.len() > limits.max_encoded_bytes {
        return Err(ImageError::TooLarge {
            bytes: bytes.len(),
            max_bytes: limits.max_encoded_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(ImageError::Corrupt("no image data".into()));
    }
    let format = image::guess_format(bytes)
        .map_err(|_| ImageError::Unsupported("unrecognised content".into()))?;
    let (width, height, decode) = match format {
        ImageFormat::Jpeg => read_jpeg_frame(bytes, limits)?,
        ImageFormat::Png | ImageFormat::WebP => {
            let (width, height) = read_dimensions(bytes, format, limits)?;
            (width, height, Decode::Full(format))
        }
        _ => return Err(ImageError::Unsupported(format!("{format:?}"))),
    };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ImageError::TooManyPixels { width, height });
    }
    // Decoding time follows the pixels, not the bytes: without this a 1.6 KB lossless WebP
    // declaring 40 Mpx costs a second of a decoder's time.
    let bytes_len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if pixels > limits.free_pixels && pixels > bytes_len.saturating_mul(limits.max_pixels_per_byte)
    {
        return Err(ImageError::TooCompressed {
            width,
            height,
            bytes: bytes.len(),
            free_pixels: limits.free_pixels,
            max_pixels_per_byte: limits.max_pixels_per_byte,
        });
    }
    Ok(ImageHeader {
        decode,
        width,
        height,
    })
}

fn read_dimensions(
    bytes: &[u8],
    format: ImageFormat,
    limits: &ImageLimits,
) -> Result<(u32, u32), ImageError> {
    // No width/height limit in this pass, so that the error can report what was declared.
    let mut header_limits = image::Limits::default();
    header_limits.max_alloc = Some(limits.max_alloc_bytes);
    let mut header_reader = ImageReader::with_format(Cursor::new(bytes), format);
    header_reader.limits(header_limits);
    header_reader
        .into_dimensions()
        .map_err(|error| map_decode_error(error, limits))
}

/// Decodes the pixels of an image whose header [`read_image_header`] accepted, at
/// [`ImageHeader::decoded_size`], then turns it upright as its EXIF orientation says.
pub(crate) fn decode_with_header(
    bytes: &[u8],
    header: &ImageHeader,
    limits: &ImageLimits,
) -> Result<RgbImage, ImageError> {
    let (decoded, orientation) = match header.decode {
        Decode::Full(format) => decode_full(bytes, format, header, limits)?,
        Decode::Jpeg(plan) => decode_jpeg(bytes, plan, header, limits)?,
    };
    if orientation == Orientation::NoTransforms {
        return Ok(decoded);
    }
    // Rotating the (already reduced) image costs little; a portrait phone photo is analysed
    // upright, as the kiosk shows it.
    let mut upright = DynamicImage::ImageRgb8(decoded);
    upright.apply_orientation(orientation);
    Ok(upright.into_rgb8())
}

fn decode_full(
    bytes: &[u8],
    format: ImageFormat,
    header: &ImageHeader,
    limits: &ImageLimits,
) -> Result<(RgbImage, Orientation), ImageError> {
    // Pinning width/height to the header's values stops a decoder from growing the image later.
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(header.width);
    decode_limits.max_image_height = Some(header.height);
    decode_limits.max_alloc = Some(limits.max_alloc_bytes);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decode_limits);
    let mapped = |error| map_decode_error(error, limits);
    let mut decoder = reader.into_decoder().map_err(mapped)?;
    // An unreadable EXIF block costs the picture its orientation, not its features.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // What `ImageReader::decode` checks before allocating, as `into_decoder` does not.
    if decoder.total_bytes() > limits.max_alloc_bytes {
        return Err(ImageError::MemoryLimit {
            max_alloc_bytes: limits.max_alloc_bytes,
        });
    }
    let decoded = DynamicImage::from_decoder(decoder).map_err(mapped)?;
    // Alpha is dropped, not composited: the training recipe reads images as plain RGB too.
    Ok((decoded.into_rgb8(), orientation))
}

fn map_decode_error(error: image::ImageError, limits: &ImageLimits) -> ImageError {
    use image::error::LimitErrorKind;
    match error {
        image::ImageError::Limits(limit) => match limit.kind() {
            LimitErrorKind::InsufficientMemory => ImageError::MemoryLimit {
                max_alloc_bytes: limits.max_alloc_bytes,
            },
            LimitErrorKind::Unsupported { .. } => ImageError::Unsupported(limit.to_string()),
            _ => ImageError::Corrupt(limit.to_string()),
        },
        image::ImageError::Unsupported(unsupported) => {
            ImageError::Unsupported(unsupported.to_string())
        }
        other => ImageError::Corrupt(other.to_string()),
    }
}

/// The `image` model input computed from a decoded reference image.
#[derive(Debug, Clone, Copy)]
pub struct ImageFeatures;

impl ImageFeatures {
    /// Computes the 24 `image` features of the bundle contract.
    pub fn from_image(image: &RgbImage) -> [f32; IMAGE_FEATURE_LEN] {
        Self::analyse(image).0
    }

    /// The 24 `image` features and the dominant colours (see [`dominant_colours`]) from one
    /// shrink and one clustering: a brief's photo needs both, and each alone repeats the work.
    pub fn analyse(image: &RgbImage) -> ([f32; IMAGE_FEATURE_LEN], Vec<(Rgb, f32)>) {
        let mut features = NO_IMAGE;
        features[FEATURE_PRESENT] = 1.0;
        let small = shrink_for_analysis(image);
        let pixels: Vec<Rgb> = small
            .pixels()
            .map(|pixel| Rgb::new(pixel[0], pixel[1], pixel[2]))
            .collect();
        if pixels.is_empty() {
            // A zero-sized image is still "an image"; it just has nothing to describe.
            return (features, Vec::new());
        }
        let labs: Vec<Lab> = pixels.iter().map(Rgb::to_lab).collect();
        let clusters = cluster_colours(&labs);
        let dominant = clusters.iter().take(DOMINANT_COLOUR_COUNT);
        for (slot, cluster) in dominant.clone().enumerate() {
            let base = FEATURE_COLOURS + 3 * slot;
            features[base] = cluster.centre.l / 100.0;
            features[base + 1] = cluster.centre.a / 128.0;
            features[base + 2] = cluster.centre.b / 128.0;
            features[FEATURE_WEIGHTS + slot] = cluster.weight;
        }

        let count = labs.len() as f64;
        let mean_l = labs.iter().map(|lab| f64::from(lab.l)).sum::<f64>() / count;
        let variance_l = labs
            .iter()
            .map(|lab| (f64::from(lab.l) - mean_l).powi(2))
            .sum::<f64>()
            / count;
        features[FEATURE_MEAN_L] = (mean_l / 100.0) as f32;
        features[FEATURE_STD_L] = (variance_l.sqrt() / 100.0) as f32;
        features[FEATURE_COLOURFULNESS] =
            ((colourfulness(&pixels) / 100.0) as f32).clamp(0.0, MAX_COLOURFULNESS_FEATURE);
        let colours = dominant
            .map(|cluster| (cluster.centre.to_rgb(), cluster.weight))
            .collect();
        (features, colours)
    }
}

/// Up to five dominant colours of an image with their pixel fractions, heaviest first.
pub fn dominant_colours(image: &RgbImage) -> Vec<(Rgb, f32)> {
    ImageFeatures::analyse(image).1
}

/// The 16 `brand` features: up to four colours in the given order; extra colours are ignored.
pub fn brand_features(colours: &[Rgb]) -> [f32; BRAND_FEATURE_LEN] {
    let mut features = [0.0; BRAND_FEATURE_LEN];
    for (slot, colour) in colours.iter().take(MAX_BRAND_COLOURS).enumerate() {
        let lab = colour.to_lab();
        features[4 * slot..4 * slot + 4].copy_from_slice(&[
            1.0,
            lab.l / 100.0,
            lab.a / 128.0,
            lab.b / 128.0,
        ]);
    }
    features
}

/// Shrinks `image` to `width` × `height` somewhere faster than the CPU (the GPU on a Jetson);
/// `None` means "do it on the CPU".
pub(crate) type Shrinker = Box<dyn Fn(&RgbImage, u32, u32) -> Option<RgbImage> + Send + Sync>;

static GPU_SHRINKER: std::sync::OnceLock<Shrinker> = std::sync::OnceLock::new();

/// Images with fewer pixels than this are shrunk on the CPU even when a GPU shrinker exists:
/// uploading them costs more than filtering them.
pub(crate) const GPU_SHRINK_MIN_PIXELS: u64 = 1 << 20;

/// Installs the GPU shrinker (once per process; later calls are ignored).
pub fn install_gpu_shrinker(shrinker: Shrinker) {
    let _ = GPU_SHRINKER.set(shrinker);
}

/// The size an image is analysed at: the longest side at most [`ANALYSIS_SIDE`], aspect kept.
pub fn analysis_size(width: u32, height: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= ANALYSIS_SIDE {
        return (width, height);
    }
    let scaled = |side: u32| {
        let rounded = (u64::from(side) * u64::from(ANALYSIS_SIDE) + u64::from(longest) / 2)
            / u64::from(longest);
        // Bounded by ANALYSIS_SIDE, so the conversion cannot fail; 1 keeps slivers visible.
        u32::try_from(rounded).unwrap_or(ANALYSIS_SIDE).max(1)
    };
    (scaled(width), scaled(height))
}

/// The CPU's shrink to `width` × `height` (the reference the GPU kernels reproduce).
pub fn shrink_on_cpu(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    image::imageops::resize(image, width, height, FilterType::Triangle)
}

fn shrink_for_analysis(image: &RgbImage) -> RgbImage {
    let (width, height) = image.dimensions();
    let (small_width, small_height) = analysis_size(width, height);
    if (small_width, small_height) == (width, height) {
        return image.clone();
    }
    if u64::from(width) * u64::from(height) >= GPU_SHRINK_MIN_PIXELS {
        if let Some(small) = GPU_SHRINKER
            .get()
            .and_then(|shrink| shrink(image, small_width, small_height))
        {
            return small;
        }
    }
    shrink_on_cpu(image, small_width, small_height)
}

/// Hasler & Süsstrunk (2003) colourfulness M on 0..255 sRGB values.
fn colourfulness(pixels: &[Rgb]) -> f64 {
    let count = pixels.len() as f64;
    if pixels.is_empty() {
        return 0.0;
    }
    let opponents = pixels.iter().map(|pixel| {
        let (r, g, b) = (f64::from(pixel.r), f64::from(pixel.g), f64::from(pixel.b));
        (r - g, 0.5 * (r + g) - b)
    });
    let (sum_rg, sum_yb) = opponents
        .clone()
        .fold((0.0, 0.0), |(rg, yb), (pixel_rg, pixel_yb)| {
            (rg + pixel_rg, yb + pixel_yb)
        });
    let (mean_rg, mean_yb) = (sum_rg / count, sum_yb / count);
    let (variance_rg, variance_yb) =
        opponents.fold((0.0, 0.0), |(rg, yb), (pixel_rg, pixel_yb)| {
            (
                rg + (pixel_rg - mean_rg).powi(2),
                yb + (pixel_yb - mean_yb).powi(2),
            )
        });
    let spread = (variance_rg / count + variance_yb / count).sqrt();
    let mean = mean_rg.hypot(mean_yb);
    spread + 0.3 * mean
}

/// One k-means cluster: its centroid and the fraction of pixels in it.
#[derive(Debug, Clone, Copy)]
struct Cluster {
    centre: Lab,
    weight: f32,
}

/// k-means (k = 5) in CIELAB; non-empty clusters only, heaviest first.
fn cluster_colours(pixels: &[Lab]) -> Vec<Cluster> {
    if pixels.is_empty() {
        return Vec::new();
    }
    let points: Vec<[f64; 3]> = pixels
        .iter()
        .map(|lab| [f64::from(lab.l), f64::from(lab.a), f64::from(lab.b)])
        .collect();
    let mut centres = initial_centres(&points, DOMINANT_COLOUR_COUNT);
    let mut assignment = vec![usize::MAX; points.len()];
    let mut counts = vec![0usize; centres.len()];
    for _ in 0..KMEANS_MAX_ITERATIONS {
        let mut changed = false;
        for (point, assigned) in points.iter().zip(assignment.iter_mut()) {
            let nearest = nearest_centre(point, &centres);
            if *assigned != nearest {
                *assigned = nearest;
                changed = true;
            }
        }
        let mut sums = vec![[0.0f64; 3]; centres.len()];
        counts.iter_mut().for_each(|count| *count = 0);
        for (point, &cluster) in points.iter().zip(&assignment) {
            if let (Some(sum), Some(count)) = (sums.get_mut(cluster), counts.get_mut(cluster)) {
                for (total, value) in sum.iter_mut().zip(point) {
                    *total += value;
                }
                *count += 1;
            }
        }
        for ((centre, sum), &count) in centres.iter_mut().zip(&sums).zip(&counts) {
            // An empty cluster keeps its old centre; it is dropped below if it stays empty.
            if count > 0 {
                *centre = sum.map(|total| total / count as f64);
            }
        }
        if !changed {
            break;
        }
    }

    let total = points.len() as f64;
    let mut clusters: Vec<(usize, Cluster)> = centres
        .iter()
        .zip(&counts)
        .filter(|(_, &count)| count > 0)
        .map(|(centre, &count)| {
            (
                count,
                Cluster {
                    centre: Lab::new(centre[0] as f32, centre[1] as f32, centre[2] as f32),
                    weight: (count as f64 / total) as f32,
                },
            )
        })
        .collect();
    // Stable sort: equal weights keep k-means++ order, which is itself deterministic.
    clusters.sort_by_key(|(count, _)| std::cmp::Reverse(*count));
    clusters.into_iter().map(|(_, cluster)| cluster).collect()
}

fn squared_distance(first: &[f64; 3], second: &[f64; 3]) -> f64 {
    first
        .iter()
        .zip(second)
        .map(|(x, y)| (x - y) * (x - y))
        .sum()
}

/// Index of the nearest centre; the lowest index wins ties so results never depend on luck.
fn nearest_centre(point: &[f64; 3], centres: &[[f64; 3]]) -> usize {
    let mut best = 0;
    let mut best_distance = f64::INFINITY;
    for (index, centre) in centres.iter().enumerate() {
        let distance = squared_distance(point, centre);
        if distance < best_distance {
            best = index;
            best_distance = distance;
        }
    }
    best
}

/// k-means++ seeding with a fixed-seed generator; stops early when every point is a centre.
fn initial_centres(points: &[[f64; 3]], wanted: usize) -> Vec<[f64; 3]> {
    let mut random = SplitMix64::new(KMEANS_SEED);
    let mut centres = Vec::with_capacity(wanted);
    let first_index = random.below(points.len());
    let Some(first) = points.get(first_index) else {
        return centres;
    };
    centres.push(*first);
    let mut nearest_distance: Vec<f64> = points
        .iter()
        .map(|point| squared_distance(point, first))
        .collect();
    while centres.len() < wanted {
        let total: f64 = nearest_distance.iter().sum();
        if total <= 0.0 {
            // Fewer distinct colours than clusters: the contract leaves the rest empty.
            break;
        }
        let threshold = random.unit() * total;
        let mut cumulative = 0.0;
        let mut chosen = None;
        for (index, &distance) in nearest_distance.iter().enumerate() {
            if distance <= 0.0 {
                continue;
            }
            chosen = Some(index);
            cumulative += distance;
            if cumulative > threshold {
                break;
            }
        }
        let Some(centre) = chosen.and_then(|index| points.get(index)).copied() else {
            break;
        };
        centres.push(centre);
        for (point, distance) in points.iter().zip(nearest_distance.iter_mut()) {
            *distance = distance.min(squared_distance(point, &centre));
        }
    }
    centres
}

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, portable, and trivial to reproduce in Python.
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in [0, 1) from the top 53 bits, the usual exact double construction.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index in 0..bound (0 when bound is 0); the modulo bias is irrelevant at 4096 points.
    fn below(&mut self, bound: usize) -> usize {
        let bound = bound as u64;
        if bound == 0 {
            return 0;
        }
        usize::try_from(self.next() % bound).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
