//! JPEG through libjpeg-turbo: the frame header and the scale it is decoded at, the scaled
//! decode, CMYK conversion, and the walk over marker segments that finds the EXIF orientation.

use image::metadata::Orientation;
use image::RgbImage;

use super::{Decode, ImageError, ImageHeader, ImageLimits, JpegPlan, MIN_DECODED_SIDE};

/// Reads a JPEG's header (libjpeg-turbo, markers up to the first scan) and chooses the scale it
/// is decoded at.
pub(super) fn read_jpeg_frame(
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<(u32, u32, Decode), ImageError> {
    let header = turbojpeg::read_header(bytes).map_err(|error| {
        // libjpeg-turbo stops at 65 500 pixels a side: past the pixel limit say what was
        // declared, as for any other image too large; within it (65 535 × 12, say) the side
        // alone is what cannot be decoded.
        match jpeg_frame_size(bytes) {
            Some((width, height)) if width.max(height) > MAX_JPEG_SIDE => {
                if u64::from(width) * u64::from(height) > limits.max_pixels {
                    ImageError::TooManyPixels { width, height }
                } else {
                    ImageError::Unsupported(format!(
                        "JPEG of {width}×{height}: sides over {MAX_JPEG_SIDE} pixels"
                    ))
                }
            }
            _ => jpeg_error(error),
        }
    })?;
    let side = |value: usize| {
        u32::try_from(value).map_err(|_| ImageError::Corrupt("JPEG size out of range".into()))
    };
    let (width, height) = (side(header.width)?, side(header.height)?);
    let components = match header.colorspace {
        turbojpeg::Colorspace::Gray => 1,
        turbojpeg::Colorspace::RGB | turbojpeg::Colorspace::YCbCr => 3,
        turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK => 4,
    };
    let longest = width.max(height);
    // Lossless JPEG has no DCT to scale.
    let denominator = [8, 4, 2]
        .into_iter()
        .find(|&denominator| {
            !header.is_lossless && longest.div_ceil(denominator) >= MIN_DECODED_SIDE
        })
        .unwrap_or(1);
    let plan = JpegPlan {
        denominator,
        components,
        progressive: header.is_progressive,
    };
    Ok((width, height, Decode::Jpeg(plan)))
}

/// The longest side libjpeg-turbo decodes (its `JPEG_MAX_DIMENSION`).
const MAX_JPEG_SIDE: u32 = 65_500;

/// Most scans a progressive JPEG may have. Each scan revisits the whole coefficient buffer, so a
/// file of thousands of tiny scans costs far more than its bytes (libjpeg-turbo's "two issues
/// with the JPEG standard"); encoders write about ten.
pub(super) const MAX_JPEG_SCANS: u32 = 100;

/// A libjpeg-turbo error as an [`ImageError`]: TurboJPEG reports what it cannot decode (12- and
/// 16-bit samples, say) and what is damaged through one message, and a warning (truncated
/// data, a bad Huffman code) fails the decode too, so a broken picture is refused, not guessed.
fn jpeg_error(error: turbojpeg::Error) -> ImageError {
    let message = error.to_string();
    if message.contains("Unsupported") || message.contains("precision") {
        ImageError::Unsupported(format!("JPEG: {message}"))
    } else {
        ImageError::Corrupt(message)
    }
}

pub(super) fn decode_jpeg(
    bytes: &[u8],
    plan: JpegPlan,
    header: &ImageHeader,
    limits: &ImageLimits,
) -> Result<(RgbImage, Orientation), ImageError> {
    if header.decode_cost(limits) > limits.max_alloc_bytes {
        return Err(ImageError::MemoryLimit {
            max_alloc_bytes: limits.max_alloc_bytes,
        });
    }
    let (width, height) = header.decoded_size();
    let rgb = decode_jpeg_pixels(bytes, plan, width, height)?;
    Ok((rgb, exif_orientation(bytes)))
}

/// Decodes a JPEG at 1/`plan.denominator` scale into `width` × `height` RGB pixels.
pub(super) fn decode_jpeg_pixels(
    bytes: &[u8],
    plan: JpegPlan,
    width: u32,
    height: u32,
) -> Result<RgbImage, ImageError> {
    let mut decompressor = turbojpeg::Decompressor::new().map_err(jpeg_error)?;
    decompressor
        .set_scan_limit(MAX_JPEG_SCANS)
        .map_err(jpeg_error)?;
    let scale = turbojpeg::ScalingFactor::new(1, plan.denominator as usize);
    decompressor.set_scaling_factor(scale).map_err(jpeg_error)?;
    // The header was read from the same bytes; anything else means a decoder surprise, and
    // the budget reserved for this decode would no longer hold.
    let scaled = decompressor
        .read_header(bytes)
        .map_err(jpeg_error)?
        .scaled(scale);
    if (scaled.width, scaled.height) != (width as usize, height as usize) {
        return Err(ImageError::Corrupt(format!(
            "JPEG decodes to {}×{}, not the expected {width}×{height}",
            scaled.width, scaled.height
        )));
    }
    // CMYK JPEGs decode only to CMYK; everything else converts to RGB inside libjpeg-turbo.
    let format = if plan.is_cmyk() {
        turbojpeg::PixelFormat::CMYK
    } else {
        turbojpeg::PixelFormat::RGB
    };
    let row = format.size() * scaled.width;
    let mut image = turbojpeg::Image {
        pixels: vec![0; row * scaled.height],
        width: scaled.width,
        pitch: row,
        height: scaled.height,
        format,
    };
    decompressor
        .decompress(bytes, image.as_deref_mut())
        .map_err(jpeg_error)?;
    let rgb = if plan.is_cmyk() {
        cmyk_to_rgb(&image.pixels)
    } else {
        image.pixels
    };
    RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| ImageError::Corrupt("JPEG decoded to fewer pixels than declared".into()))
}

/// RGB from libjpeg-turbo's CMYK, as zune-jpeg (image's JPEG decoder) converts: Adobe's
/// inverted CMYK, which is what libjpeg hands back as stored, is ink × (1 − black) once
/// un-inverted, i.e. c × k / 255.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    cmyk.chunks_exact(4)
        .flat_map(|pixel| {
            // c × k / 255 rounded: at most 255, so the cast cannot truncate.
            let ink = |channel: u8| ((u16::from(channel) * u16::from(pixel[3]) + 127) / 255) as u8;
            [ink(pixel[0]), ink(pixel[1]), ink(pixel[2])]
        })
        .collect()
}

/// The orientation in a JPEG's EXIF block (APP1 "Exif\0\0"), or none: an unreadable block
/// costs the picture its orientation, not its features.
pub(super) fn exif_orientation(bytes: &[u8]) -> Orientation {
    const EXIF: &[u8] = b"Exif\0\0";
    jpeg_segments(bytes)
        .find_map(|(marker, segment)| {
            (marker == 0xE1 && segment.starts_with(EXIF)).then(|| &segment[EXIF.len()..])
        })
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// The size a JPEG's frame header (SOF0..SOF15, not DHT, JPG or DAC) declares.
pub(super) fn jpeg_frame_size(bytes: &[u8]) -> Option<(u32, u32)> {
    jpeg_segments(bytes).find_map(|(marker, segment)| {
        let frame = (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker);
        match segment {
            [_precision, h1, h0, w1, w0, ..] if frame => Some((
                u32::from(u16::from_be_bytes([*w1, *w0])),
                u32::from(u16::from_be_bytes([*h1, *h0])),
            )),
            _ => None,
        }
    })
}

/// A JPEG's marker segments up to its first scan, as (marker, payload); stops at anything
/// malformed, which libjpeg-turbo then refuses on its own.
pub(super) fn jpeg_segments(bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut at = 2; // past SOI
    std::iter::from_fn(move || {
        let &[0xFF, marker, high, low] = bytes.get(at..at + 4)? else {
            return None;
        };
        // Start of scan or end of image: the pixels, or nothing, follow.
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        let length = usize::from(u16::from_be_bytes([high, low]));
        let segment = bytes.get(at + 4..(at + 2 + length).max(at + 4))?;
        at += 2 + length.max(2);
        Some((marker, segment))
    })
}
