//! Per-brief cost of each stage on the CPU backend with the shipped bundle:
//! decode → encode → infer → post-process, and the whole path (with and without an image);
//! and a 12 Mpx phone photo's reference-image cost: decoded at reduced scale (what packd does)
//! against `image`'s full-size decode (the baseline, and what packd did before).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use packd::backend::cpu::CpuBackend;
use packd::backend::{Backend, ModelInputs, ModelOutputs, Precision};
use packd::brief;
use packd::bundle::Bundle;
use packd::features::{self, EncodedBrief, ImageLimits};
use packd::recommend;

const BRIEF: &str = r##"{"v":1,"id":"bench-1","product":"beverage","audience":["young women","gen z"],
"mood":["fresh","summer limited"],"palette":"morandi","keywords":["清爽感"],"brand_colors":["#1A73E8"],"top_k":3}"##;

/// A brief typed the way store staff type: no value is a listed synonym, so each one is read
/// by contained synonyms, the text encoder or both (a confident encoder reading may refine a
/// contained one).
const FREE_TEXT_BRIEF: &str = r##"{"v":1,"id":"bench-2","product":"提神的功能性饮品","audience":["busy office ladies"],
"mood":["超级有活力的感觉","chill vibes"],"keywords":["冰爽口感","street art graffiti"],"top_k":3}"##;

fn image_brief() -> String {
    let mut image = image::RgbImage::new(640, 480);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        *pixel = image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]);
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encode png");
    let encoded = base64::engine::general_purpose::STANDARD.encode(png);
    format!(r#"{{"v":1,"product":"tea","mood":["calm"],"image":"{encoded}"}}"#)
}

/// What a brief of `top_k` suggestions, rendered or not, asks of post-processing.
/// The bench brief's own words, as a preview sets them.
const MOOD: [String; 0] = [];

fn asked(top_k: usize, render: bool) -> recommend::Asked<'static> {
    recommend::Asked {
        top_k,
        render,
        prefer_cvd_safe: false,
        words: recommend::Words {
            product: "Sparkling tea",
            headline: None,
            mood: &MOOD,
        },
    }
}

/// A preview whose words are Chinese, set in the pairing's CJK faces.
fn asked_in_chinese(mood: &[String]) -> recommend::Asked<'_> {
    recommend::Asked {
        top_k: 3,
        render: true,
        prefer_cvd_safe: false,
        words: recommend::Words {
            product: "中秋月饼礼盒",
            headline: None,
            mood,
        },
    }
}

/// Reading a free-text brief's terms with the bundle's text encoder, and without it (synonyms
/// only, what packd did before the encoder): the floor the encoder's cost is measured against.
fn free_text(c: &mut Criterion, bundle: &Bundle, limits: &ImageLimits) {
    let decoded = brief::decode(FREE_TEXT_BRIEF.as_bytes()).expect("brief");
    let mut synonyms_only = bundle.clone();
    synonyms_only.text = None;
    c.bench_function("encode_free_text_synonyms_only", |b| {
        b.iter(|| features::encode(black_box(&decoded), &synonyms_only, limits).expect("encode"))
    });
    c.bench_function("encode_free_text_with_encoder", |b| {
        b.iter(|| features::encode(black_box(&decoded), bundle, limits).expect("encode"))
    });
}

/// Post-processing: suggestions alone, and with a preview in English and in Chinese words.
fn post(c: &mut Criterion, bundle: &Bundle, outputs: &ModelOutputs, encoded: &EncodedBrief) {
    c.bench_function("post", |b| {
        b.iter(|| {
            recommend::recommend(bundle, black_box(outputs), encoded, asked(3, false))
                .expect("post")
        })
    });
    c.bench_function("post_with_preview", |b| {
        b.iter(|| {
            recommend::recommend(bundle, black_box(outputs), encoded, asked(3, true)).expect("post")
        })
    });
    let mood = ["中秋".to_string(), "喜庆".to_string()];
    c.bench_function("post_with_preview_zh", |b| {
        b.iter(|| {
            recommend::recommend(bundle, black_box(outputs), encoded, asked_in_chinese(&mood))
                .expect("post")
        })
    });
}

fn stages(c: &mut Criterion) {
    // PACKD_BENCH_BUNDLE compares another bundle (older faces, say) in the same binary; an
    // environment variable because criterion owns the command line.
    #[allow(clippy::disallowed_methods)]
    let dir = std::env::var_os("PACKD_BENCH_BUNDLE").map_or_else(
        || {
            Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/engines/packd-default"
            ))
            .to_path_buf()
        },
        std::path::PathBuf::from,
    );
    let bundle = Bundle::open(&dir).expect("bundle");
    let backend = CpuBackend::load(&bundle, Precision::Fp32).expect("cpu backend");
    let limits = ImageLimits::default();
    let image_payload = image_brief();

    c.bench_function("decode", |b| {
        b.iter(|| brief::decode(black_box(BRIEF.as_bytes())).expect("brief"))
    });
    let decoded = brief::decode(BRIEF.as_bytes()).expect("brief");
    c.bench_function("encode", |b| {
        b.iter(|| features::encode(black_box(&decoded), &bundle, &limits).expect("encode"))
    });
    free_text(c, &bundle, &limits);
    let encoded = features::encode(&decoded, &bundle, &limits).expect("encode");
    let inputs = ModelInputs {
        brief: &encoded.terms,
        image: &encoded.image,
        brand: &encoded.brand,
    };
    c.bench_function("infer_cpu_fp32", |b| {
        b.iter(|| backend.infer(black_box(&inputs)).expect("infer"))
    });
    // Per call: divide by the batch size for the cost per brief.
    for size in [1usize, 2, 4, 8] {
        let batch = vec![inputs; size];
        c.bench_function(&format!("infer_cpu_fp32_batch_{size}"), |b| {
            b.iter(|| backend.run_batch(black_box(&batch)).expect("infer"))
        });
    }
    let outputs = backend.infer(&inputs).expect("infer");
    post(c, &bundle, &outputs, &encoded);

    let whole = |payload: &[u8]| {
        let brief = brief::decode(payload).expect("brief");
        let encoded = features::encode(&brief, &bundle, &limits).expect("encode");
        let inputs = ModelInputs {
            brief: &encoded.terms,
            image: &encoded.image,
            brand: &encoded.brand,
        };
        let outputs = backend.infer(&inputs).expect("infer");
        recommend::recommend(&bundle, &outputs, &encoded, (&brief).into()).expect("post")
    };
    c.bench_function("brief_end_to_end", |b| {
        b.iter(|| whole(black_box(BRIEF.as_bytes())))
    });
    // The same brief after the thread slept 1 ms, untimed, before each one: what a brief
    // arriving alone (1 000 briefs/s) costs, its caches cold from the idle core.
    c.bench_function("brief_end_to_end_after_1ms_idle", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                std::thread::sleep(Duration::from_millis(1));
                let started = Instant::now();
                black_box(whole(black_box(BRIEF.as_bytes())));
                total += started.elapsed();
            }
            total
        })
    });
    c.bench_function("free_text_brief_end_to_end", |b| {
        b.iter(|| whole(black_box(FREE_TEXT_BRIEF.as_bytes())))
    });
    c.bench_function("image_brief_end_to_end_640x480", |b| {
        b.iter(|| whole(black_box(image_payload.as_bytes())))
    });
}

/// A 4032 × 3024 photo-like JPEG (4:2:0, quality 90, as phones write them): a sky gradient,
/// soft coloured shapes and a little grain.
fn phone_photo_jpeg() -> Vec<u8> {
    let (width, height) = (4032u32, 3024u32);
    let mut state = 0x1234_5678_u32;
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let grain = (state >> 28) as f32 - 8.0;
            let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
            let disc = ((u - 0.4).powi(2) + (v - 0.5).powi(2)).sqrt() < 0.2;
            let base = if disc {
                [210.0, 80.0 + 60.0 * u, 50.0]
            } else {
                [110.0 + 100.0 * v, 150.0 + 70.0 * v, 235.0 - 50.0 * u]
            };
            pixels.extend(base.map(|channel| (channel + grain).clamp(0.0, 255.0) as u8));
        }
    }
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder
        .encode(
            &pixels,
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encode jpeg");
    jpeg
}

fn phone_photo(c: &mut Criterion) {
    let jpeg = phone_photo_jpeg();
    let limits = ImageLimits::default();
    let mut group = c.benchmark_group("jpeg_4032x3024");
    // Each iteration takes tens to hundreds of milliseconds: ten samples keep the run short.
    group.sample_size(10);
    group.bench_function("image_full_decode_only", |b| {
        b.iter(|| {
            image::load_from_memory_with_format(black_box(&jpeg), image::ImageFormat::Jpeg)
                .expect("decode")
                .into_rgb8()
        })
    });
    group.bench_function("image_full_decode_and_features", |b| {
        b.iter(|| {
            let decoded =
                image::load_from_memory_with_format(black_box(&jpeg), image::ImageFormat::Jpeg)
                    .expect("decode")
                    .into_rgb8();
            (
                features::image::ImageFeatures::from_image(&decoded),
                features::image::dominant_colours(&decoded),
            )
        })
    });
    group.bench_function("packd_scaled_decode_only", |b| {
        b.iter(|| {
            features::image::decode_reference_image(black_box(&jpeg), &limits).expect("decode")
        })
    });
    group.bench_function("packd_scaled_decode_and_features", |b| {
        b.iter(|| {
            let decoded =
                features::image::decode_reference_image(black_box(&jpeg), &limits).expect("decode");
            features::image::ImageFeatures::analyse(&decoded)
        })
    });
    group.finish();
}

// criterion's macros generate the undocumented `benches` and `main`.
#[allow(missing_docs)]
mod entry {
    use super::*;
    criterion_group!(benches, stages, phone_photo);
}
use entry::benches;

criterion_main!(benches);
