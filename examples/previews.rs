//! Writes the README's example previews: ten briefs (English and Chinese) through the shipped
//! bundle on the CPU, each preview as a PNG.
//!
//! cargo run --release --example previews -- docs/previews [BUNDLE_DIR]

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use packd::backend::cpu::CpuBackend;
use packd::backend::{Backend, ModelInputs, Precision};
use packd::bundle::Bundle;
use packd::features::{self, ImageLimits};
use packd::recommend;

/// File stem and brief, as a kiosk would send them.
const BRIEFS: [(&str, &str); 10] = [
    (
        "en-oolong-tea",
        r#"{"product":"Oolong tea","audience":["seniors"],"mood":["calm","traditional"]}"#,
    ),
    (
        "zh-oolong-tea",
        r#"{"product":"乌龙茶礼盒","audience":["长辈"],"mood":["宁静","国潮"]}"#,
    ),
    (
        "en-energy-drink",
        r#"{"product":"Energy drink","audience":["gamers"],"mood":["bold","energetic"],"palette":"neon"}"#,
    ),
    (
        "zh-energy-drink",
        r#"{"product":"能量饮料","audience":["电竞玩家"],"mood":["炸裂","活力"],"palette":"荧光"}"#,
    ),
    (
        "en-skincare",
        r#"{"product":"Vitamin C serum","audience":["young women"],"mood":["clean","gentle"],"palette":"pastel"}"#,
    ),
    (
        "zh-skincare",
        r#"{"product":"维C精华","audience":["年轻女性"],"mood":["干净","温和"],"palette":"马卡龙"}"#,
    ),
    (
        "en-mooncake",
        r##"{"product":"Mooncake gift box","mood":["mid autumn","festive"],"palette":"red gold","brand_colors":["#B22222"]}"##,
    ),
    (
        "zh-mooncake",
        r##"{"product":"中秋月饼礼盒","headline":"花好月圆","mood":["中秋","喜庆"],"palette":"红金","brand_colors":["#B22222"]}"##,
    ),
    (
        "en-coffee",
        r#"{"product":"Cold brew coffee","audience":["office workers"],"mood":["minimal","premium"]}"#,
    ),
    (
        "zh-snacks",
        r#"{"product":"儿童零食","audience":["儿童"],"mood":["可爱","活泼"]}"#,
    ),
];

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "docs/previews".into()),
    );
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let dir = std::env::args().nth(2).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("engines/packd-default"),
        PathBuf::from,
    );
    let bundle = Bundle::open(&dir)?;
    let backend = CpuBackend::load(&bundle, Precision::Fp32)?;
    for (stem, json) in BRIEFS {
        let mut value: serde_json::Value = serde_json::from_str(json)?;
        value["render"] = serde_json::Value::Bool(true);
        let brief = packd::brief::decode(value.to_string().as_bytes())
            .map_err(|error| anyhow::anyhow!("{stem}: {}", error.message))?;
        let encoded = features::encode(&brief, &bundle, &ImageLimits::default())
            .map_err(|error| anyhow::anyhow!("{stem}: {}", error.message))?;
        let outputs = backend.infer(&ModelInputs {
            brief: &encoded.terms,
            image: &encoded.image,
            brand: &encoded.brand,
        })?;
        let suggestions = recommend::recommend(&bundle, &outputs, &encoded, (&brief).into())?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(suggestions.preview_png.as_deref().unwrap_or_default())?;
        let path = out.join(format!("{stem}.png"));
        std::fs::write(&path, &png).with_context(|| path.display().to_string())?;
        let font = suggestions.fonts.first();
        let pack = bundle.packs.for_product(encoded.product_term());
        println!(
            "{}: {} ({}×{}), template {}, {} / {} ({} / {}), palette {}, style {}, {} bytes",
            path.display(),
            pack.name,
            pack.size.width(),
            pack.size.height(),
            suggestions.layout.template.as_deref().unwrap_or("-"),
            font.map_or("", |font| font.heading.as_str()),
            font.map_or("", |font| font.body.as_str()),
            font.map_or("", |font| font.heading_cjk.as_str()),
            font.map_or("", |font| font.body_cjk.as_str()),
            suggestions
                .palettes
                .first()
                .map_or("", |palette| palette.name.as_str()),
            suggestions
                .styles
                .first()
                .map_or("", |style| style.style.as_str()),
            png.len()
        );
    }
    Ok(())
}
