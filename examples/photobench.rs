//! Photo benchmark (issue 16): how long packd's decode step takes on phone-sized reference photos,
//! next to the best existing decoder doing the same job on the same files in the same run:
//! Pillow (libjpeg-turbo) opening the file in draft mode (DCT scaling) at the scale packd decodes
//! at, then resizing to the 64-pixel analysis size with its triangle (bilinear) filter.
//!
//! ```sh
//! cargo run --release --example photobench -- --python engines/recipe/.venv/bin/python
//! cargo run --release --example photobench -- --python python3 --photo ~/DCIM/IMG_0001.jpg
//! ```
//!
//! Without `--photo` it writes four pictures of a sky, soft shapes and sensor grain to
//! `--dir`: 640×480, 1920×1080 and 4032×3024 JPEGs (4:2:0, quality 90, as phones write them)
//! and a 1920×1080 PNG. Rounds alternate between packd and Pillow so that both see the same
//! machine; the table gives medians and 90th percentiles over every round and packd / Pillow.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::Parser;
use image::RgbImage;
use packd::features::image::{analysis_size, decode_reference_image, shrink_on_cpu, ImageFeatures};
use packd::features::ImageLimits;

#[derive(Parser)]
#[command(about = "packd's photo decode step against Pillow's draft-mode decode")]
struct Arguments {
    /// Python interpreter with Pillow installed.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Photos to measure instead of the generated set (JPEG, PNG or WebP); repeatable.
    #[arg(long)]
    photo: Vec<PathBuf>,
    /// Where the generated set is written.
    #[arg(long, default_value = "target/photobench")]
    dir: PathBuf,
    /// Rounds, each timing every photo `--per-round` times with packd, then with Pillow.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Timed decodes of each photo per round and decoder.
    #[arg(long, default_value_t = 4)]
    per_round: usize,
}

/// Pillow's side: argv = repetitions, then (path, decoded width, decoded height, analysis width,
/// analysis height) per photo; prints one line per photo of space-separated milliseconds.
const PILLOW: &str = r#"
import io, sys, time
from PIL import Image
reps = int(sys.argv[1])
args = sys.argv[2:]
for i in range(0, len(args), 5):
    path, dw, dh, aw, ah = args[i], *map(int, args[i + 1:i + 5])
    data = open(path, "rb").read()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        im = Image.open(io.BytesIO(data))
        if im.format == "JPEG":
            im.draft("RGB", (dw, dh))
        im = im.convert("RGB")
        small = im.resize((aw, ah), Image.BILINEAR)
        times.append((time.perf_counter() - start) * 1e3)
        assert small.size == (aw, ah)
    print(" ".join(f"{t:.4f}" for t in times))
"#;

struct Photo {
    name: String,
    path: PathBuf,
    bytes: Vec<u8>,
    /// What packd decodes to (before EXIF orientation) and shrinks to.
    decoded: (u32, u32),
    analysis: (u32, u32),
}

fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let paths = if arguments.photo.is_empty() {
        generate(&arguments.dir)?
    } else {
        arguments.photo.clone()
    };
    let photos = paths
        .iter()
        .map(|path| load(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    println!("{}", pillow_version(&arguments.python)?);
    let mut packd_times = vec![Vec::new(); photos.len()];
    let mut pillow_times = vec![Vec::new(); photos.len()];
    for _ in 0..arguments.rounds {
        for (photo, times) in photos.iter().zip(&mut packd_times) {
            times.extend(time_packd(photo, arguments.per_round)?);
        }
        for (times, round) in pillow_times.iter_mut().zip(time_pillow(
            &arguments.python,
            &photos,
            arguments.per_round,
        )?) {
            times.extend(round);
        }
    }
    print_table(&photos, &packd_times, &mut pillow_times);
    Ok(())
}

fn load(path: &Path) -> anyhow::Result<Photo> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let limits = ImageLimits::default();
    let decoded = decode_reference_image(&bytes, &limits)
        .with_context(|| format!("packd refuses {}", path.display()))?
        .dimensions();
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into(),
    );
    Ok(Photo {
        name,
        path: path.to_path_buf(),
        analysis: analysis_size(decoded.0, decoded.1),
        decoded,
        bytes,
    })
}

/// packd's decode step up to the analysis image (header checks, scaled decode, EXIF turn,
/// triangle shrink: what Pillow does too), then with the colour features packd computes from it
/// (`ImageFeatures::analyse`: the shrink again, k-means over the 64-pixel image).
fn time_packd(photo: &Photo, repetitions: usize) -> anyhow::Result<Vec<(f64, f64)>> {
    let limits = ImageLimits::default();
    let mut times = Vec::with_capacity(repetitions);
    for _ in 0..repetitions {
        let start = Instant::now();
        let decoded = decode_reference_image(std::hint::black_box(&photo.bytes), &limits)?;
        let small = shrink_on_cpu(&decoded, photo.analysis.0, photo.analysis.1);
        let shrunk = start.elapsed().as_secs_f64() * 1e3;
        std::hint::black_box(small);
        std::hint::black_box(ImageFeatures::analyse(&decoded));
        times.push((shrunk, start.elapsed().as_secs_f64() * 1e3));
    }
    Ok(times)
}

fn time_pillow(
    python: &str,
    photos: &[Photo],
    repetitions: usize,
) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut command = Command::new(python);
    command.args(["-c", PILLOW, &repetitions.to_string()]);
    for photo in photos {
        command.arg(&photo.path);
        for side in [
            photo.decoded.0,
            photo.decoded.1,
            photo.analysis.0,
            photo.analysis.1,
        ] {
            command.arg(side.to_string());
        }
    }
    let output = command
        .output()
        .with_context(|| format!("running {python}"))?;
    if !output.status.success() {
        bail!("Pillow failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    String::from_utf8(output.stdout)?
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(|time| time.parse::<f64>().context("Pillow's timing"))
                .collect()
        })
        .collect()
}

fn pillow_version(python: &str) -> anyhow::Result<String> {
    let script = "import PIL, PIL.features as f; \
        print('Pillow', PIL.__version__, 'libjpeg-turbo', f.version('libjpeg_turbo'))";
    let output = Command::new(python).args(["-c", script]).output()?;
    if !output.status.success() {
        bail!(
            "{python} has no Pillow: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

fn print_table(photos: &[Photo], packd: &[Vec<(f64, f64)>], pillow: &mut [Vec<f64>]) {
    println!(
        "{:<22} {:>6} {:>9} {:>17} {:>17} {:>13} {:>15}",
        "photo",
        "KiB",
        "decoded",
        "packd p50/p90 ms",
        "Pillow p50/p90",
        "packd/Pillow",
        "with features"
    );
    for ((photo, packd), pillow) in photos.iter().zip(packd).zip(pillow) {
        let mut shrunk: Vec<f64> = packd.iter().map(|&(shrunk, _)| shrunk).collect();
        let mut whole: Vec<f64> = packd.iter().map(|&(_, whole)| whole).collect();
        let (packd50, packd90) = (percentile(&mut shrunk, 0.5), percentile(&mut shrunk, 0.9));
        let (pillow50, pillow90) = (percentile(pillow, 0.5), percentile(pillow, 0.9));
        println!(
            "{:<22} {:>6} {:>9} {:>17} {:>17} {:>13} {:>15}",
            photo.name,
            photo.bytes.len() / 1024,
            format!("{}×{}", photo.decoded.0, photo.decoded.1),
            format!("{packd50:.2} / {packd90:.2}"),
            format!("{pillow50:.2} / {pillow90:.2}"),
            format!("{:.2}", packd50 / pillow50),
            format!("{:.2}", percentile(&mut whole, 0.5)),
        );
    }
}

fn percentile(times: &mut [f64], quantile: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    let rank = ((times.len() as f64 - 1.0) * quantile).round() as usize;
    times.get(rank).copied().unwrap_or(f64::NAN)
}

/// Writes the generated set and returns its paths.
fn generate(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for (width, height) in [(640, 480), (1920, 1080), (4032, 3024)] {
        let path = dir.join(format!("photo-{width}x{height}.jpg"));
        let picture = photo_like(width, height);
        let mut jpeg = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        encoder.encode(
            picture.as_raw(),
            u16::try_from(width)?,
            u16::try_from(height)?,
            jpeg_encoder::ColorType::Rgb,
        )?;
        std::fs::write(&path, jpeg)?;
        paths.push(path);
    }
    let path = dir.join("photo-1920x1080.png");
    photo_like(1920, 1080).save(&path)?;
    paths.push(path);
    Ok(paths)
}

/// A sky gradient, a sun and a hill, and ±8 levels of grain, as a phone camera leaves.
fn photo_like(width: u32, height: u32) -> RgbImage {
    let mut state = 0x1234_5678_u32;
    RgbImage::from_fn(width, height, |x, y| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let grain = (state >> 28) as f32 - 8.0;
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let sun = ((u - 0.7).powi(2) + (v - 0.25).powi(2)).sqrt() < 0.1;
        let hill = v > 0.75 - 0.1 * (u * 6.0).sin();
        let base = if sun {
            [250.0, 200.0, 90.0]
        } else if hill {
            [70.0 + 40.0 * u, 120.0, 60.0]
        } else {
            [110.0 + 100.0 * v, 150.0 + 70.0 * v, 235.0 - 50.0 * u]
        };
        image::Rgb(base.map(|channel| (channel + grain).clamp(0.0, 255.0) as u8))
    })
}
