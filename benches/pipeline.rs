//! Per-brief cost of each stage on the CPU backend with the shipped bundle:
//! decode → encode → infer → post-process, and the whole path (with and without an image).

use std::path::Path;

use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use packd::backend::cpu::CpuBackend;
use packd::backend::{Backend, ModelInputs, Precision};
use packd::brief;
use packd::bundle::Bundle;
use packd::features::{self, ImageLimits};
use packd::recommend;

const BRIEF: &str = r##"{"v":1,"id":"bench-1","product":"beverage","audience":["young women","gen z"],
"mood":["fresh","summer limited"],"palette":"morandi","keywords":["清爽感"],"brand_colors":["#1A73E8"],"top_k":3}"##;

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

fn stages(c: &mut Criterion) {
    let bundle = Bundle::open(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/engines/packd-default"
    )))
    .expect("shipped bundle");
    let backend = CpuBackend::load(&bundle, Precision::Fp32).expect("cpu backend");
    let limits = ImageLimits::default();
    let image_payload = image_brief();

    c.bench_function("decode", |b| {
        b.iter(|| brief::decode(black_box(BRIEF.as_bytes())).expect("brief"))
    });
    let decoded = brief::decode(BRIEF.as_bytes()).expect("brief");
    c.bench_function("encode", |b| {
        b.iter(|| {
            features::encode(black_box(&decoded), &bundle.vocabulary, &limits).expect("encode")
        })
    });
    let encoded = features::encode(&decoded, &bundle.vocabulary, &limits).expect("encode");
    let inputs = ModelInputs {
        brief: &encoded.terms,
        image: &encoded.image,
        brand: &encoded.brand,
    };
    c.bench_function("infer_cpu_fp32", |b| {
        b.iter(|| backend.infer(black_box(&inputs)).expect("infer"))
    });
    let outputs = backend.infer(&inputs).expect("infer");
    c.bench_function("post", |b| {
        b.iter(|| {
            recommend::recommend(&bundle, black_box(&outputs), &encoded, 3, false).expect("post")
        })
    });
    c.bench_function("post_with_preview", |b| {
        b.iter(|| {
            recommend::recommend(&bundle, black_box(&outputs), &encoded, 3, true).expect("post")
        })
    });

    let whole = |payload: &[u8]| {
        let brief = brief::decode(payload).expect("brief");
        let encoded = features::encode(&brief, &bundle.vocabulary, &limits).expect("encode");
        let inputs = ModelInputs {
            brief: &encoded.terms,
            image: &encoded.image,
            brand: &encoded.brand,
        };
        let outputs = backend.infer(&inputs).expect("infer");
        recommend::recommend(&bundle, &outputs, &encoded, brief.top_k, brief.render).expect("post")
    };
    c.bench_function("brief_end_to_end", |b| {
        b.iter(|| whole(black_box(BRIEF.as_bytes())))
    });
    c.bench_function("image_brief_end_to_end_640x480", |b| {
        b.iter(|| whole(black_box(image_payload.as_bytes())))
    });
}

criterion_group!(benches, stages);
criterion_main!(benches);
