use super::jpeg::{decode_jpeg_pixels, jpeg_frame_size, jpeg_segments, MAX_JPEG_SCANS};
use super::*;
use image::{DynamicImage, Rgb as Pixel, RgbaImage};
use std::time::{Duration, Instant};

const CORAL: Rgb = Rgb::new(0xE0, 0x6C, 0x4F);
const NAVY: Rgb = Rgb::new(0x1B, 0x2A, 0x4A);

fn pixel(colour: Rgb) -> Pixel<u8> {
    Pixel([colour.r, colour.g, colour.b])
}

/// Left `left_columns` columns in `left`, the rest in `right`.
fn two_colour_image(width: u32, height: u32, left_columns: u32, left: Rgb, right: Rgb) -> RgbImage {
    RgbImage::from_fn(width, height, |x, _| {
        if x < left_columns {
            pixel(left)
        } else {
            pixel(right)
        }
    })
}

fn noisy_image(width: u32, height: u32) -> RgbImage {
    let mut random = SplitMix64::new(42);
    RgbImage::from_fn(width, height, |_, _| {
        let value = random.next().to_le_bytes();
        Pixel([value[0], value[1], value[2]])
    })
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image.clone())
        .write_to(&mut bytes, format)
        .expect("test image encodes");
    bytes.into_inner()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = Vec::new();
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut covered = kind.to_vec();
    covered.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&covered).to_be_bytes());
    chunk
}

/// A well-formed PNG header declaring `width`×`height` RGB, followed by a tiny IDAT.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    // zlib stream of a single empty stored block: valid framing, almost no data.
    let tiny_idat = [
        0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
    ];
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &header));
    png.extend(png_chunk(b"IDAT", &tiny_idat));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

#[test]
fn one_largest_accepted_photo_fits_the_decode_budget_and_two_do_not() {
    use crate::features::decode_budget::DECODE_MEMORY_BYTES;
    // The pixel budget alone: these headers carry no data worth the pixels they declare.
    let limits = ImageLimits {
        free_pixels: u64::MAX,
        ..ImageLimits::default()
    };
    // 6324 × 6324 is just under the 40 Mpx limit.
    let header = read_image_header(&png_claiming(6324, 6324), &limits).expect("header");
    let cost = header.decode_cost(&limits);
    assert!(cost <= DECODE_MEMORY_BYTES, "{cost}");
    assert!(2 * cost > DECODE_MEMORY_BYTES, "{cost}");
    let small = read_image_header(&png_claiming(640, 480), &limits).expect("header");
    assert!(small.decode_cost(&limits) * 100 < DECODE_MEMORY_BYTES);
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn decodes_png_exactly() {
    let original = noisy_image(37, 23);
    let decoded = decode_reference_image(
        &encode(&original, ImageFormat::Png),
        &ImageLimits::default(),
    );
    assert_eq!(decoded, Ok(original));
}

#[test]
fn decodes_lossless_webp_exactly() {
    let original = noisy_image(30, 20);
    let decoded = decode_reference_image(
        &encode(&original, ImageFormat::WebP),
        &ImageLimits::default(),
    );
    assert_eq!(decoded, Ok(original));
}

#[test]
fn decodes_jpeg_close_to_the_original() {
    let original = two_colour_image(48, 32, 24, CORAL, NAVY);
    let decoded = decode_reference_image(
        &encode(&original, ImageFormat::Jpeg),
        &ImageLimits::default(),
    )
    .expect("JPEG decodes");
    assert_eq!(decoded.dimensions(), (48, 32));
    let centre_left = decoded.get_pixel(8, 16);
    assert!(centre_left
        .0
        .iter()
        .zip([CORAL.r, CORAL.g, CORAL.b])
        .all(|(a, b)| a.abs_diff(b) < 8));
}

#[test]
fn drops_alpha_from_rgba_png() {
    let rgba = RgbaImage::from_pixel(4, 4, image::Rgba([10, 20, 30, 40]));
    let mut bytes = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(rgba)
        .write_to(&mut bytes, ImageFormat::Png)
        .expect("encodes");
    let decoded =
        decode_reference_image(bytes.get_ref(), &ImageLimits::default()).expect("decodes");
    assert_eq!(decoded.get_pixel(2, 2), &Pixel([10, 20, 30]));
}

#[test]
fn refuses_oversized_input_before_looking_at_it() {
    let limits = ImageLimits {
        max_encoded_bytes: 10,
        ..ImageLimits::default()
    };
    assert_eq!(
        decode_reference_image(&[0u8; 11], &limits),
        Err(ImageError::TooLarge {
            bytes: 11,
            max_bytes: 10
        })
    );
}

#[test]
fn truncated_png_is_corrupt() {
    let bytes = encode(&noisy_image(40, 40), ImageFormat::Png);
    let truncated = &bytes[..bytes.len() / 2];
    assert!(matches!(
        decode_reference_image(truncated, &ImageLimits::default()),
        Err(ImageError::Corrupt(_))
    ));
    let header_only = &bytes[..20];
    assert!(matches!(
        decode_reference_image(header_only, &ImageLimits::default()),
        Err(ImageError::Corrupt(_))
    ));
}

#[test]
fn truncated_webp_is_corrupt() {
    let bytes = encode(&noisy_image(40, 40), ImageFormat::WebP);
    assert!(matches!(
        decode_reference_image(&bytes[..bytes.len() / 2], &ImageLimits::default()),
        Err(ImageError::Corrupt(_))
    ));
}

#[test]
fn garbage_and_empty_input_are_refused() {
    let mut random = SplitMix64::new(7);
    let garbage: Vec<u8> = (0..4096).map(|_| random.next().to_le_bytes()[0]).collect();
    assert!(matches!(
        decode_reference_image(&garbage, &ImageLimits::default()),
        Err(ImageError::Unsupported(_))
    ));
    assert!(matches!(
        decode_reference_image(&[], &ImageLimits::default()),
        Err(ImageError::Corrupt(_))
    ));
    // Right magic, garbage after it.
    let mut fake_png = b"\x89PNG\r\n\x1a\n".to_vec();
    fake_png.extend_from_slice(&garbage[..64]);
    assert!(matches!(
        decode_reference_image(&fake_png, &ImageLimits::default()),
        Err(ImageError::Corrupt(_))
    ));
}

#[test]
fn gif_is_unsupported() {
    // The classic 1×1 transparent GIF.
    let gif: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    assert_eq!(
        decode_reference_image(gif, &ImageLimits::default()),
        Err(ImageError::Unsupported("Gif".into()))
    );
}

#[test]
fn png_bomb_is_refused_from_its_header() {
    let bomb = png_claiming(100_000, 100_000);
    let started = Instant::now();
    let result = decode_reference_image(&bomb, &ImageLimits::default());
    assert_eq!(
        result,
        Err(ImageError::TooManyPixels {
            width: 100_000,
            height: 100_000
        })
    );
    // Allocating 30 GB (or zero-filling it) could not happen this fast.
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn jpeg_bomb_is_refused_from_its_header() {
    let mut jpeg = encode(&noisy_image(16, 16), ImageFormat::Jpeg);
    // SOF0 segment: marker, 2-byte length, precision, then height and width (big endian).
    let frame = jpeg
        .windows(2)
        .position(|marker| marker == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    jpeg[frame + 5..frame + 9].copy_from_slice(&[0xFF, 0xF0, 0xFF, 0xF0]);
    assert_eq!(
        decode_reference_image(&jpeg, &ImageLimits::default()),
        Err(ImageError::TooManyPixels {
            width: 0xFFF0,
            height: 0xFFF0
        })
    );
}

#[test]
fn pixel_limit_is_inclusive_and_configurable() {
    assert!(matches!(
        decode_reference_image(&png_claiming(7000, 7000), &ImageLimits::default()),
        Err(ImageError::TooManyPixels {
            width: 7000,
            height: 7000
        })
    ));
    let bytes = encode(&noisy_image(100, 50), ImageFormat::Png);
    let exact = ImageLimits {
        max_pixels: 5000,
        ..ImageLimits::default()
    };
    assert!(decode_reference_image(&bytes, &exact).is_ok());
    let below = ImageLimits {
        max_pixels: 4999,
        ..ImageLimits::default()
    };
    assert_eq!(
        decode_reference_image(&bytes, &below),
        Err(ImageError::TooManyPixels {
            width: 100,
            height: 50
        })
    );
}

#[test]
fn allocation_limit_is_enforced() {
    let bytes = encode(&noisy_image(200, 200), ImageFormat::Png);
    let tight = ImageLimits {
        max_alloc_bytes: 10_000,
        ..ImageLimits::default()
    };
    assert_eq!(
        decode_reference_image(&bytes, &tight),
        Err(ImageError::MemoryLimit {
            max_alloc_bytes: 10_000
        })
    );
}

#[test]
fn two_colour_image_gives_both_colours_with_their_weights() {
    // 50×40 needs no resampling, so the weights are exact: 30 of 50 columns are coral.
    let image = two_colour_image(50, 40, 30, CORAL, NAVY);
    let features = ImageFeatures::from_image(&image);
    let coral = CORAL.to_lab();
    let navy = NAVY.to_lab();
    let expected_start = [
        1.0,
        coral.l / 100.0,
        coral.a / 128.0,
        coral.b / 128.0,
        navy.l / 100.0,
        navy.a / 128.0,
        navy.b / 128.0,
    ];
    for (index, expected) in expected_start.iter().enumerate() {
        assert!(
            (features[index] - expected).abs() < 1e-5,
            "feature {index}: {features:?}"
        );
    }
    assert!(
        features[7..16].iter().all(|&value| value == 0.0),
        "{features:?}"
    );
    let weights = &features[16..21];
    assert!((weights[0] - 0.6).abs() < 1e-6 && (weights[1] - 0.4).abs() < 1e-6);
    assert_eq!(&weights[2..], &[0.0, 0.0, 0.0]);

    let expected_mean = 0.6 * coral.l + 0.4 * navy.l;
    let expected_std = 0.24f32.sqrt() * (coral.l - navy.l).abs();
    assert!((features[21] - expected_mean / 100.0).abs() < 1e-4);
    assert!((features[22] - expected_std / 100.0).abs() < 1e-4);

    assert_eq!(dominant_colours(&image), vec![(CORAL, 0.6), (NAVY, 0.4)]);
}

#[test]
fn large_two_colour_image_survives_resampling() {
    let image = two_colour_image(640, 480, 320, CORAL, NAVY);
    let colours = dominant_colours(&image);
    assert!(colours.len() <= DOMINANT_COLOUR_COUNT);
    let (first, second) = (colours[0], colours[1]);
    assert!(first.1 + second.1 > 0.9, "{colours:?}");
    assert!((first.1 - second.1).abs() < 0.1, "{colours:?}");
    let found = [first.0, second.0];
    for expected in [CORAL, NAVY] {
        assert!(
            found
                .iter()
                .any(
                    |colour| crate::colour::delta_e_2000(colour.to_lab(), expected.to_lab()) < 1.0
                ),
            "{expected} not among {colours:?}"
        );
    }
}

#[test]
fn single_colour_image_has_one_cluster_and_known_colourfulness() {
    let red = RgbImage::from_pixel(80, 120, Pixel([255, 0, 0]));
    let features = ImageFeatures::from_image(&red);
    let lab = Rgb::new(255, 0, 0).to_lab();
    assert_eq!(features[0], 1.0);
    assert!((features[1] - lab.l / 100.0).abs() < 1e-5);
    assert!((features[2] - lab.a / 128.0).abs() < 1e-5);
    assert!((features[3] - lab.b / 128.0).abs() < 1e-5);
    assert!(features[4..16].iter().all(|&value| value == 0.0));
    assert_eq!(&features[16..21], &[1.0, 0.0, 0.0, 0.0, 0.0]);
    assert!((features[21] - lab.l / 100.0).abs() < 1e-5);
    assert!(features[22].abs() < 1e-6);
    // Uniform red: σ = 0 and μ = hypot(255, 127.5), so M = 0.3 × 285.10 = 85.53.
    assert!((features[23] - 0.8553).abs() < 1e-3, "{}", features[23]);
}

#[test]
fn grey_image_has_no_colourfulness_and_colourfulness_is_clipped() {
    let grey = ImageFeatures::from_image(&RgbImage::from_pixel(10, 10, Pixel([90, 90, 90])));
    assert_eq!(grey[23], 0.0);
    // Alternating magenta and green stripes: M ≈ 241, clipped to 1.5.
    let stripes = RgbImage::from_fn(16, 16, |x, _| {
        if x % 2 == 0 {
            Pixel([255, 0, 255])
        } else {
            Pixel([0, 255, 0])
        }
    });
    assert_eq!(ImageFeatures::from_image(&stripes)[23], 1.5);
}

#[test]
fn features_of_a_noisy_image_stay_in_range() {
    let features = ImageFeatures::from_image(&noisy_image(300, 200));
    assert_eq!(features.len(), IMAGE_FEATURE_LEN);
    assert_eq!(features[0], 1.0);
    for slot in 0..DOMINANT_COLOUR_COUNT {
        let base = 1 + 3 * slot;
        assert!((0.0..=1.0).contains(&features[base]));
        assert!((-1.0..=1.0).contains(&features[base + 1]));
        assert!((-1.0..=1.0).contains(&features[base + 2]));
    }
    let weights = &features[16..21];
    assert!(
        weights.windows(2).all(|pair| pair[0] >= pair[1]),
        "{weights:?}"
    );
    assert!(
        weights.iter().all(|&weight| weight > 0.0),
        "noise fills all five clusters"
    );
    assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!((0.0..=1.0).contains(&features[21]));
    assert!((0.0..=0.5).contains(&features[22]) && features[22] > 0.0);
    assert!((0.0..=1.5).contains(&features[23]) && features[23] > 0.0);
}

#[test]
fn features_are_deterministic() {
    let image = noisy_image(123, 77);
    let first = ImageFeatures::from_image(&image);
    let second = ImageFeatures::from_image(&image.clone());
    assert_eq!(first.map(f32::to_bits), second.map(f32::to_bits));
}

#[test]
fn empty_image_is_present_but_blank() {
    let features = ImageFeatures::from_image(&RgbImage::new(0, 0));
    assert_eq!(features[0], 1.0);
    assert!(features[1..].iter().all(|&value| value == 0.0));
    assert!(dominant_colours(&RgbImage::new(0, 0)).is_empty());
}

#[test]
fn shrinking_keeps_aspect_ratio_and_never_enlarges() {
    assert_eq!(
        shrink_for_analysis(&RgbImage::new(640, 480)).dimensions(),
        (64, 48)
    );
    assert_eq!(
        shrink_for_analysis(&RgbImage::new(100, 3000)).dimensions(),
        (2, 64)
    );
    assert_eq!(
        shrink_for_analysis(&RgbImage::new(10_000, 1)).dimensions(),
        (64, 1)
    );
    assert_eq!(
        shrink_for_analysis(&RgbImage::new(20, 30)).dimensions(),
        (20, 30)
    );
}

#[test]
fn brand_features_fill_slots_in_order_and_ignore_extras() {
    let white = Rgb::new(255, 255, 255);
    let red = Rgb::new(255, 0, 0);
    let features = brand_features(&[white, red]);
    let red_lab = red.to_lab();
    let expected = [
        1.0,
        1.0,
        0.0,
        0.0,
        1.0,
        red_lab.l / 100.0,
        red_lab.a / 128.0,
        red_lab.b / 128.0,
    ];
    for (index, value) in expected.iter().enumerate() {
        assert!((features[index] - value).abs() < 1e-5, "{features:?}");
    }
    assert!(features[8..].iter().all(|&value| value == 0.0));
    assert_eq!(brand_features(&[]), [0.0; BRAND_FEATURE_LEN]);
    let five = brand_features(&[red; 5]);
    assert_eq!(five[12], 1.0);
    assert_eq!(five, brand_features(&[red; 4]));
}

/// Bits written least significant first, as the VP8L bitstream reads them.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, bits: u32) {
        for bit in 0..bits {
            if self.used % 8 == 0 {
                self.bytes.push(0);
            }
            if let Some(last) = self.bytes.last_mut() {
                *last |= (((value >> bit) & 1) as u8) << (self.used % 8);
            }
            self.used += 1;
        }
    }
}

/// A valid lossless WebP of one colour at any size, in a few dozen bytes: no transforms, no
/// colour cache, and every prefix code a "simple" one of a single symbol, so each pixel
/// takes zero bits. This is how a bomb like the review's is built.
fn lossless_webp_of_one_colour(width: u32, height: u32, [r, g, b]: [u8; 3]) -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.put(0x2F, 8); // VP8L signature
    bits.put(width - 1, 14);
    bits.put(height - 1, 14);
    bits.put(0, 1); // no alpha
    bits.put(0, 3); // version 0
    bits.put(0, 1); // no transform
    bits.put(0, 1); // no colour cache
    bits.put(0, 1); // no meta prefix codes
                    // Green, red, blue and alpha: simple codes of one 8-bit symbol; distance: symbol 0.
    for symbol in [g, r, b, 0xFF] {
        bits.put(1, 1); // simple code
        bits.put(0, 1); // one symbol
        bits.put(1, 1); // 8-bit symbol
        bits.put(u32::from(symbol), 8);
    }
    bits.put(1, 1);
    bits.put(0, 1);
    bits.put(0, 1); // 1-bit symbol
    bits.put(0, 1);
    let mut chunk = bits.bytes;
    let chunk_len = chunk.len() as u32;
    if chunk.len() % 2 == 1 {
        chunk.push(0);
    }
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(4 + 8 + chunk.len() as u32).to_le_bytes());
    webp.extend_from_slice(b"WEBPVP8L");
    webp.extend_from_slice(&chunk_len.to_le_bytes());
    webp.extend_from_slice(&chunk);
    webp
}

#[test]
fn the_one_colour_lossless_webp_is_a_real_image() {
    // Small enough to decode here: proof that the bomb below is a genuine picture.
    let webp = lossless_webp_of_one_colour(300, 200, [200, 30, 40]);
    let decoded = decode_reference_image(&webp, &ImageLimits::default()).expect("decodes");
    assert_eq!(
        decoded,
        RgbImage::from_pixel(300, 200, Pixel([200, 30, 40]))
    );
}

#[test]
fn image_bomb_lossless_webp_is_refused_cheaply() {
    // The review's bomb: 6400 × 6250 = 40 Mpx, within the pixel limit, in a few bytes.
    let bomb = lossless_webp_of_one_colour(6400, 6250, [200, 30, 40]);
    assert!(bomb.len() < 64, "{} bytes", bomb.len());
    let limits = ImageLimits::default();
    let refused = ImageError::TooCompressed {
        width: 6400,
        height: 6250,
        bytes: bomb.len(),
        free_pixels: FREE_PIXELS,
        max_pixels_per_byte: MAX_PIXELS_PER_BYTE,
    };
    // From the header alone: read_image_header never touches a pixel.
    assert_eq!(read_image_header(&bomb, &limits), Err(refused.clone()));
    assert_eq!(decode_reference_image(&bomb, &limits), Err(refused.clone()));
    let message = refused.to_string();
    assert!(message.contains("6400×6250") && message.contains("pixels per byte"));

    // The same pixels with the bytes a real picture would need pass the ratio.
    let needed = usize::try_from(6400 * 6250 / MAX_PIXELS_PER_BYTE).expect("fits");
    let mut padded = bomb.clone();
    padded.resize(needed, 0);
    assert_eq!(
        read_image_header(&padded, &limits).map(|header| (header.width, header.height)),
        Ok((6400, 6250))
    );
    // Up to FREE_PIXELS any size in bytes is accepted: icons and flat artwork stay welcome.
    let flat = lossless_webp_of_one_colour(2048, 2048, [1, 2, 3]);
    assert!(read_image_header(&flat, &limits).is_ok());
    let one_more_row = lossless_webp_of_one_colour(2048, 2049, [1, 2, 3]);
    assert!(matches!(
        read_image_header(&one_more_row, &limits),
        Err(ImageError::TooCompressed { .. })
    ));
}

#[test]
fn real_pictures_pass_the_pixels_per_byte_bound() {
    // Noise and gradients as PNG, lossless WebP and JPEG: far above one byte per 1000 px.
    let limits = ImageLimits {
        free_pixels: 0,
        ..ImageLimits::default()
    };
    let gradient = RgbImage::from_fn(400, 300, |x, y| Pixel([x as u8, y as u8, 128]));
    for image in [noisy_image(200, 150), gradient] {
        for format in [ImageFormat::Png, ImageFormat::WebP, ImageFormat::Jpeg] {
            let bytes = encode(&image, format);
            assert!(
                read_image_header(&bytes, &limits).is_ok(),
                "{format:?} of {} bytes",
                bytes.len()
            );
        }
    }
}

/// How a test JPEG is encoded.
#[derive(Debug, Clone, Copy)]
enum Jpeg {
    Yuv420,
    Yuv444,
    Grey,
    Cmyk,
    Progressive420,
}

fn encode_jpeg(image: &RgbImage, kind: Jpeg, app1: Option<&[u8]>) -> Vec<u8> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let mut bytes = Vec::new();
    let mut encoder = Encoder::new(&mut bytes, 90);
    let sampling = match kind {
        // zune-jpeg, the full-size reference, misreads subsampled CMYK: keep CMYK 4:4:4.
        Jpeg::Yuv444 | Jpeg::Cmyk => SamplingFactor::R_4_4_4,
        _ => SamplingFactor::R_4_2_0,
    };
    encoder.set_sampling_factor(sampling);
    encoder.set_progressive(matches!(kind, Jpeg::Progressive420));
    if let Some(segment) = app1 {
        encoder.add_app_segment(1, segment).expect("APP1 fits");
    }
    let (width, height) = image.dimensions();
    let (data, colour): (Vec<u8>, ColorType) = match kind {
        Jpeg::Grey => (
            DynamicImage::ImageRgb8(image.clone())
                .into_luma8()
                .into_raw(),
            ColorType::Luma,
        ),
        Jpeg::Cmyk => (
            image
                .pixels()
                .flat_map(|Pixel([r, g, b])| {
                    let k = 255 - *r.max(g).max(b);
                    let ink = |value: u8| {
                        if k == 255 {
                            0
                        } else {
                            (255 * u16::from(255 - value - k) / u16::from(255 - k)) as u8
                        }
                    };
                    [ink(*r), ink(*g), ink(*b), k]
                })
                .collect(),
            ColorType::Cmyk,
        ),
        _ => (image.as_raw().clone(), ColorType::Rgb),
    };
    encoder
        .encode(&data, width as u16, height as u16, colour)
        .expect("test JPEG encodes");
    bytes
}

/// Something like a product photo: a sky gradient, soft coloured blobs, a dark shelf and a
/// little sensor noise.
fn photo_like(width: u32, height: u32) -> RgbImage {
    let mut random = SplitMix64::new(13);
    let (w, h) = (width as f32, height as f32);
    let blobs = [
        (0.3, 0.45, 0.18, [220.0, 90.0, 60.0]),
        (0.65, 0.5, 0.22, [40.0, 120.0, 70.0]),
        (0.5, 0.3, 0.1, [240.0, 210.0, 80.0]),
    ];
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f32 / w, y as f32 / h);
        let mut colour = if v > 0.8 {
            [60.0, 45.0, 35.0]
        } else {
            [120.0 + 100.0 * v, 160.0 + 60.0 * v, 235.0 - 40.0 * v]
        };
        for (cx, cy, radius, blob) in blobs {
            let distance = ((u - cx).powi(2) + (v - cy).powi(2) * (h / w).powi(2)).sqrt();
            let inside = (1.0 - (distance / radius).powi(4)).clamp(0.0, 1.0);
            for (channel, value) in colour.iter_mut().zip(blob) {
                *channel += (value - *channel) * inside;
            }
        }
        let grain = (random.next() % 13) as f32 - 6.0;
        Pixel(colour.map(|channel| (channel + grain).clamp(0.0, 255.0) as u8))
    })
}

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x * 255 / width, y * 255 / height);
        Pixel([u as u8, v as u8, (255 - (u + v) / 2) as u8])
    })
}

/// What the features are computed from when the whole JPEG is decoded: image's own decoder.
fn full_decode(jpeg: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
        .expect("full decode")
        .into_rgb8()
}

/// Symmetric weighted distance between two palettes: each colour's CIELAB distance (ΔE*ab)
/// to the nearest colour of the other palette, weighted by its share, both ways, averaged.
/// k-means may split or merge near-equal clusters differently on slightly different pixels,
/// so slots are not compared one by one.
fn palette_distance(first: &[f32; IMAGE_FEATURE_LEN], second: &[f32; IMAGE_FEATURE_LEN]) -> f32 {
    let palette = |features: &[f32; IMAGE_FEATURE_LEN]| -> Vec<([f32; 3], f32)> {
        (0..DOMINANT_COLOUR_COUNT)
            .filter(|&slot| features[FEATURE_WEIGHTS + slot] > 0.0)
            .map(|slot| {
                let base = FEATURE_COLOURS + 3 * slot;
                let lab = [
                    features[base] * 100.0,
                    features[base + 1] * 128.0,
                    features[base + 2] * 128.0,
                ];
                (lab, features[FEATURE_WEIGHTS + slot])
            })
            .collect()
    };
    let one_way = |from: &[([f32; 3], f32)], to: &[([f32; 3], f32)]| -> f32 {
        from.iter()
            .map(|(lab, weight)| {
                let nearest = to
                    .iter()
                    .map(|(other, _)| {
                        lab.iter()
                            .zip(other)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f32>()
                            .sqrt()
                    })
                    .fold(f32::INFINITY, f32::min);
                weight * nearest
            })
            .sum()
    };
    let (first, second) = (palette(first), palette(second));
    (one_way(&first, &second) + one_way(&second, &first)) / 2.0
}

/// Mean squared CIELAB distance from each pixel to its nearest palette colour: the k-means
/// objective, to tell an equally good palette from a wrong one.
fn quantisation_error(features: &[f32; IMAGE_FEATURE_LEN], pixels: &[Lab]) -> f64 {
    let centres: Vec<[f64; 3]> = (0..DOMINANT_COLOUR_COUNT)
        .filter(|&slot| features[FEATURE_WEIGHTS + slot] > 0.0)
        .map(|slot| {
            let base = FEATURE_COLOURS + 3 * slot;
            [
                f64::from(features[base]) * 100.0,
                f64::from(features[base + 1]) * 128.0,
                f64::from(features[base + 2]) * 128.0,
            ]
        })
        .collect();
    let total: f64 = pixels
        .iter()
        .map(|lab| {
            let point = [f64::from(lab.l), f64::from(lab.a), f64::from(lab.b)];
            squared_distance(&point, &centres[nearest_centre(&point, &centres)])
        })
        .sum();
    total / pixels.len() as f64
}

/// The stated tolerance between a JPEG decoded at reduced scale and decoded whole.
/// - The 64-pixel analysis image every feature is computed from: mean |Δ| at most 1.5
///   levels (of 255) over all channels, and no channel of any pixel off by more than 16 levels.
/// - Mean and standard deviation of L within 0.005 (half an L unit), colourfulness within
///   0.01.
/// - Dominant colours within 3 ΔE*ab (weighted, see [`palette_distance`]), unless k-means
///   settled in another local optimum: it is not continuous in the pixels, and two correct
///   full-size decoders of one file (zune-jpeg and libjpeg-turbo, a rounding apart) can
///   already give palettes 15 ΔE apart. Then the palette must quantise the full decoding's
///   pixels within 5 % of that decoding's own palette, or the two full-size decoders must
///   disagree by more than 3 ΔE themselves.
fn assert_features_match(scaled: &RgbImage, full: &RgbImage, jpeg: &[u8], case: &str) {
    let (small_scaled, small_full) = (shrink_for_analysis(scaled), shrink_for_analysis(full));
    assert_eq!(small_scaled.dimensions(), small_full.dimensions(), "{case}");
    let differences: Vec<u8> = small_scaled
        .as_raw()
        .iter()
        .zip(small_full.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .collect();
    let mean_difference =
        differences.iter().map(|&d| f64::from(d)).sum::<f64>() / differences.len() as f64;
    let max_difference = differences.iter().copied().max().unwrap_or(0);
    let (scaled, full) = (
        ImageFeatures::from_image(scaled),
        ImageFeatures::from_image(full),
    );
    let palette = palette_distance(&scaled, &full);
    let full_pixels: Vec<Lab> = small_full
        .pixels()
        .map(|pixel| Rgb::new(pixel[0], pixel[1], pixel[2]).to_lab())
        .collect();
    let error_ratio = quantisation_error(&scaled, &full_pixels)
        / quantisation_error(&full, &full_pixels).max(1e-9);
    // The same file decoded whole by libjpeg-turbo: how far k-means moves between two
    // full-size decoders, pixels a rounding apart.
    let whole = match read_jpeg_frame(jpeg, &ImageLimits::default()).expect("header") {
        (width, height, Decode::Jpeg(plan)) => {
            let whole = JpegPlan {
                denominator: 1,
                ..plan
            };
            decode_jpeg_pixels(jpeg, whole, width, height).expect("whole decode")
        }
        other => panic!("not a JPEG plan: {other:?}"),
    };
    let two_decoders = palette_distance(&ImageFeatures::from_image(&whole), &full);
    let mean_l = (scaled[FEATURE_MEAN_L] - full[FEATURE_MEAN_L]).abs();
    let std_l = (scaled[FEATURE_STD_L] - full[FEATURE_STD_L]).abs();
    let colourfulness = (scaled[FEATURE_COLOURFULNESS] - full[FEATURE_COLOURFULNESS]).abs();
    let report = format!(
        "{case}: pixels mean {mean_difference:.3} max {max_difference}, palette \
         {palette:.3} ΔE (error ×{error_ratio:.3}; two full decoders {two_decoders:.3} ΔE), mean L {mean_l:.4}, std L {std_l:.4}, \
         M {colourfulness:.4}"
    );
    eprintln!("{report}");
    assert!(
        mean_difference <= 1.5
            && max_difference <= 16
            && (palette <= 3.0 || error_ratio <= 1.05 || two_decoders > 3.0)
            && mean_l <= 0.005
            && std_l <= 0.005
            && colourfulness <= 0.01,
        "{report}\nscaled {scaled:?}\nfull {full:?}"
    );
}

/// One 12 Mpx phone-sized photo for the tests that need it (it takes a while to encode).
fn twelve_megapixel_jpeg() -> &'static [u8] {
    static JPEG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    JPEG.get_or_init(|| encode_jpeg(&photo_like(4032, 3024), Jpeg::Yuv420, None))
}

#[test]
fn image_bomb_jpeg_is_decoded_at_reduced_scale() {
    let jpeg = twelve_megapixel_jpeg();
    let limits = ImageLimits::default();
    let header = read_image_header(jpeg, &limits).expect("a real photo is accepted");
    assert_eq!((header.width, header.height), (4032, 3024));
    // 1/8 scale: 504 × 378, still past MIN_DECODED_SIDE = 128.
    assert_eq!(header.decoded_size(), (504, 378));
    let decoded = decode_reference_image(jpeg, &limits).expect("decodes");
    assert_eq!(decoded.dimensions(), (504, 378));
    // The budget reserves for the pixels really decoded: under 2 % of the full-size cost.
    let full_size_cost = 12_192_768 * 11;
    let cost = header.decode_cost(&limits);
    assert!(cost * 50 < full_size_cost, "{cost}");
    assert!(cost >= 504 * 378 * 3, "{cost}");

    // Small JPEGs stay whole; mid-sized ones stop at the first scale reaching 128.
    let small = encode_jpeg(&gradient(120, 90), Jpeg::Yuv420, None);
    let header = read_image_header(&small, &limits).expect("header");
    assert_eq!(header.decoded_size(), (120, 90));
    let mid = encode_jpeg(&gradient(640, 480), Jpeg::Yuv420, None);
    let header = read_image_header(&mid, &limits).expect("header");
    assert_eq!(header.decoded_size(), (160, 120));
    assert_eq!(
        decode_reference_image(&mid, &limits).map(|image| image.dimensions()),
        Ok((160, 120))
    );
    // A progressive JPEG keeps its full-size coefficients while decoding: the budget says so.
    let progressive = encode_jpeg(&gradient(640, 480), Jpeg::Progressive420, None);
    let header = read_image_header(&progressive, &limits).expect("header");
    assert!(header.decode_cost(&limits) >= 640 * 480 * 3 * 2);
}

#[test]
fn jpeg_scaled_decoding_features_match_full_decoding_within_tolerance() {
    let cases: Vec<(&str, RgbImage, Jpeg)> = vec![
        // Decoded whole, but by libjpeg-turbo rather than image's zune-jpeg.
        ("photo 200×150 4:2:0", photo_like(200, 150), Jpeg::Yuv420),
        ("gradient 640×480 4:2:0", gradient(640, 480), Jpeg::Yuv420),
        ("noise 640×480 4:4:4", noisy_image(640, 480), Jpeg::Yuv444),
        ("photo 640×480 4:2:0", photo_like(640, 480), Jpeg::Yuv420),
        ("photo 640×480 grey", photo_like(640, 480), Jpeg::Grey),
        ("photo 640×480 CMYK", photo_like(640, 480), Jpeg::Cmyk),
        (
            "photo 640×480 progressive",
            photo_like(640, 480),
            Jpeg::Progressive420,
        ),
        (
            "photo 1920×1080 4:4:4",
            photo_like(1920, 1080),
            Jpeg::Yuv444,
        ),
        (
            "noise 1920×1080 4:2:0",
            noisy_image(1920, 1080),
            Jpeg::Yuv420,
        ),
        ("gradient 1920×1080 grey", gradient(1920, 1080), Jpeg::Grey),
    ];
    let limits = ImageLimits::default();
    for (case, image, kind) in cases {
        let jpeg = encode_jpeg(&image, kind, None);
        let scaled = decode_reference_image(&jpeg, &limits).expect(case);
        let reduced = image.width() >= 2 * MIN_DECODED_SIDE;
        assert_eq!(scaled.width() < image.width(), reduced, "{case}");
        assert_features_match(&scaled, &full_decode(&jpeg), &jpeg, case);
    }
    let jpeg = twelve_megapixel_jpeg();
    let scaled = decode_reference_image(jpeg, &limits).expect("12 Mpx decodes");
    assert_features_match(&scaled, &full_decode(jpeg), jpeg, "photo 4032×3024 4:2:0");
}

/// An EXIF block (big-endian TIFF) holding only an orientation tag.
fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut exif = b"Exif\0\0MM\0\x2A\0\0\0\x08\0\x01".to_vec();
    exif.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    exif
}

#[test]
fn exif_orientation_6_is_analysed_upright() {
    // Stored landscape, red on the left: a phone held upright wrote it turned 90°
    // anticlockwise.
    let stored = two_colour_image(400, 300, 200, Rgb::new(220, 30, 30), Rgb::new(30, 30, 220));
    let limits = ImageLimits::default();
    let jpeg = encode_jpeg(&stored, Jpeg::Yuv420, Some(&exif_orientation(6)));
    let upright = decode_reference_image(&jpeg, &limits).expect("decodes");
    // Scaled to 200 × 150, then turned 90° clockwise: portrait, red on top.
    assert_eq!(upright.dimensions(), (150, 200));
    let (top, bottom) = (upright.get_pixel(75, 20), upright.get_pixel(75, 180));
    assert!(top[0] > 180 && top[2] < 80, "{top:?}");
    assert!(bottom[2] > 180 && bottom[0] < 80, "{bottom:?}");
    // Orientation 1 (and none) leave it as stored.
    let plain = encode_jpeg(&stored, Jpeg::Yuv420, Some(&exif_orientation(1)));
    assert_eq!(
        decode_reference_image(&plain, &limits).map(|image| image.dimensions()),
        Ok((200, 150))
    );
}

#[test]
fn exif_orientation_is_respected_in_png_too() {
    let stored = two_colour_image(40, 20, 20, Rgb::new(220, 30, 30), Rgb::new(30, 30, 220));
    let png = encode(&stored, ImageFormat::Png);
    // eXIf holds the TIFF block without JPEG's "Exif\0\0"; it goes before IDAT, here
    // right after the 8-byte signature and the 25-byte IHDR chunk.
    let exif = exif_orientation(6);
    let mut oriented = png[..33].to_vec();
    oriented.extend(png_chunk(b"eXIf", &exif[6..]));
    oriented.extend_from_slice(&png[33..]);
    let upright = decode_reference_image(&oriented, &ImageLimits::default()).expect("decodes");
    assert_eq!(upright.dimensions(), (20, 40));
    assert_eq!(upright.get_pixel(10, 5), &Pixel([220, 30, 30]));
    assert_eq!(upright.get_pixel(10, 35), &Pixel([30, 30, 220]));
}

#[test]
fn broken_jpegs_are_refused_cleanly() {
    let limits = ImageLimits::default();
    let jpeg = encode_jpeg(&photo_like(640, 480), Jpeg::Yuv420, None);
    for cut in [4, 200, jpeg.len() / 2] {
        let result = decode_reference_image(&jpeg[..cut], &limits);
        assert!(
            matches!(result, Err(ImageError::Corrupt(_)) | Ok(_)),
            "cut at {cut}: {result:?}"
        );
    }
    let header_only = &jpeg[..jpeg.len().min(600)];
    assert!(decode_reference_image(header_only, &limits).is_err());
    // Flipped bits in the entropy-coded data: an answer either way, never a panic.
    let mut random = SplitMix64::new(99);
    for _ in 0..20 {
        let mut damaged = jpeg.clone();
        let at = 700 + random.below(damaged.len() - 700);
        damaged[at] ^= 1 << random.below(8);
        let _ = decode_reference_image(&damaged, &limits);
    }
    let tight = ImageLimits {
        max_alloc_bytes: 10_000,
        ..ImageLimits::default()
    };
    assert_eq!(
        decode_reference_image(&jpeg, &tight),
        Err(ImageError::MemoryLimit {
            max_alloc_bytes: 10_000
        })
    );
}

#[test]
fn splitmix64_matches_its_reference_sequence() {
    // First outputs for seed 0, as published with the algorithm.
    let mut random = SplitMix64::new(0);
    assert_eq!(random.next(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(random.next(), 0x6E78_9E6A_A1B9_65F4);
}

#[test]
fn progressive_jpeg_with_too_many_scans_is_refused() {
    let limits = ImageLimits::default();
    let jpeg = encode_jpeg(&photo_like(320, 240), Jpeg::Progressive420, None);
    assert!(decode_reference_image(&jpeg, &limits).is_ok());
    // The last scan (an AC refinement) repeated until the file has more than MAX_JPEG_SCANS:
    // cheap to send, and every scan revisits the whole coefficient buffer.
    let last_scan = jpeg
        .windows(2)
        .rposition(|pair| pair == [0xFF, 0xDA])
        .expect("a scan");
    let end = jpeg.len() - 2; // EOI
    let mut many = jpeg[..end].to_vec();
    for _ in 0..MAX_JPEG_SCANS {
        many.extend_from_slice(&jpeg[last_scan..end]);
    }
    many.extend_from_slice(&[0xFF, 0xD9]);
    match decode_reference_image(&many, &limits).map(|image| image.dimensions()) {
        Err(ImageError::Corrupt(message)) => assert!(message.contains("scans"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn jpeg_segments_stop_at_the_first_scan_and_at_damage() {
    let jpeg = encode_jpeg(&gradient(64, 48), Jpeg::Yuv420, Some(&exif_orientation(6)));
    let markers: Vec<u8> = jpeg_segments(&jpeg).map(|(marker, _)| marker).collect();
    assert!(
        markers.contains(&0xE1) && markers.contains(&0xC0),
        "{markers:x?}"
    );
    assert_eq!(jpeg_frame_size(&jpeg), Some((64, 48)));
    assert_eq!(super::jpeg::exif_orientation(&jpeg), Orientation::Rotate90);
    // A segment length running past the end, or under its own two bytes, ends the walk.
    for cut in 0..200.min(jpeg.len()) {
        let _ = jpeg_segments(&jpeg[..cut]).count();
    }
    let mut zero_length = jpeg.clone();
    zero_length[4..6].copy_from_slice(&[0, 0]);
    assert!(jpeg_segments(&zero_length).count() < 1000);
}
