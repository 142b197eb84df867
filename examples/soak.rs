//! Soak tool (issue 6): a steady stream of varied briefs for minutes on end, with bundle
//! activations every few seconds, while packd's RSS, open files and threads are sampled from
//! /proc. At the end it prints what was sent, answered and lost, the latency percentiles, the
//! activations, the process figures at the start (after a warm-up), the end and their maximum,
//! and a verdict; it exits non-zero when the verdict fails.
//!
//! ```sh
//! cargo build --release --bin packd --example soak
//! target/release/examples/soak --minutes 10            # private mosquitto + packd, 200 briefs/s
//! target/release/examples/soak --seconds 60 --rate 500 --activate-every-s 10
//! # an appliance that is already running (its pid must be visible here, for /proc):
//! target/release/examples/soak --url mqtt://127.0.0.1:1883 --device local --pid "$(pidof packd)" \
//!     --key ~/.packd-keys/fleet.key
//! ```
//!
//! Without `--url` it starts a private mosquitto; without `--pid` it starts packd itself (the
//! binary next to this one, or `--packd-bin`) with its own bundle store seeded from the shipped
//! bundle and a freshly generated signing key among its trusted keys. Either way it builds two
//! signed variants of the shipped bundle, pushes them once (begin, chunks, commit without
//! activating), and then activates the next installed bundle every `--activate-every-s`.
//!
//! tests/soak.rs includes this file as a module and runs it for 20 seconds against the test
//! suite's mosquitto and packd, so the tool and its verdict are exercised by `cargo test`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::io::Cursor;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use ed25519_dalek::SigningKey;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

#[path = "soak_hostile/mod.rs"]
mod hostile;

const MIB: f64 = 1024.0 * 1024.0;
/// Chunk size of the bundle pushes (packctl's default).
const CHUNK_SIZE: usize = 256 * 1024;
/// Longest wait for one bundle command's reply (a commit unpacks, hashes and self-tests).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Soak packd: steady varied briefs, periodic bundle activations, RSS and fds
#[derive(Parser, Debug, Clone)]
pub struct Arguments {
    /// Length of the run in minutes, warm-up included.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Length of the run in seconds (overrides --minutes), for short runs.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Briefs per second, sent open loop (on schedule, whatever the replies do).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// The start figures are taken after this many seconds of load.
    #[arg(long, default_value_t = 60)]
    pub warmup_s: u64,
    /// Seconds between bundle activations (0: none).
    #[arg(long, default_value_t = 30)]
    pub activate_every_s: u64,
    /// Seconds between samples of packd's /proc figures.
    #[arg(long, default_value_t = 5)]
    pub sample_every_s: u64,
    /// Most the RSS may grow from the start (after warm-up) to the end, in MiB.
    #[arg(long, default_value_t = 8.0)]
    pub rss_tolerance_mib: f64,
    /// Most the number of open file descriptors may grow from the start to the end.
    #[arg(long, default_value_t = 2)]
    pub fd_tolerance: i64,
    /// Seconds to wait for the last replies after sending stops.
    #[arg(long, default_value_t = 30)]
    /// Seconds to wait for the last answers after the load stops.
    pub drain_s: u64,
    /// Broker; without it a private mosquitto is started on a free loopback port.
    #[arg(long)]
    pub url: Option<String>,
    /// Topic prefix of the packd under test.
    #[arg(long, default_value = "packd/v1")]
    pub prefix: String,
    /// Device id of a packd that is already running (with --pid).
    #[arg(long)]
    pub device: Option<String>,
    /// Process id of a packd that is already running; without it packd is started here.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Secret key (packctl keygen) trusted by an already running packd; without it the pushed
    /// bundles are unsigned, which such a packd accepts only with bundles.allow_unsigned.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// packd binary to start (default: `packd` in the target directory this tool was built in).
    #[arg(long)]
    pub packd_bin: Option<PathBuf>,
    /// Bundle folder to seed packd's store with and to derive the pushed variants from.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/engines/packd-default"))]
    pub bundle: PathBuf,
    /// serve.workers of the packd started here.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// serve.queue of the packd started here.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// serve.reply_cache_s of the packd started here (short runs shorten it so the cache reaches
    /// its steady size within the warm-up).
    #[arg(long, default_value_t = 60)]
    pub reply_cache_s: u64,
    /// log.target of the packd started here (`journal` as on an appliance, or `stderr`).
    #[arg(long, default_value = "journal")]
    pub log_target: String,
    /// telemetry.stats_interval_s of the packd started here.
    #[arg(long, default_value_t = 5)]
    pub stats_interval_s: u64,
    /// Seed of the brief mix.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write every /proc sample here as CSV.
    #[arg(long)]
    pub samples_csv: Option<PathBuf>,
    /// Hostile requests a second (issue 13's findings, in rotation, from a second client);
    /// 0 sends none. With them the verdict also needs packd never to have left the broker.
    #[arg(long, default_value_t = 0.0)]
    pub hostile_rate: f64,
}

impl Arguments {
    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds.unwrap_or(self.minutes * 60.0).max(1.0))
    }
}

// ---------------------------------------------------------------------------
// The machine and the process
// ---------------------------------------------------------------------------

/// The machine the figures come from, for the report.
pub fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|kib| kib.trim().parse::<f64>().ok())
        })
        .map(|kib| format!("{:.1} GiB", kib / MIB))
        .unwrap_or_else(|| "? GiB".into());
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    format!("{model}, {cpus} CPUs (nproc), {memory}; load average at start {load}")
}

/// One look at packd's /proc entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Seconds since the load started.
    pub at_s: f64,
    /// Resident set size, bytes (VmRSS).
    pub rss: u64,
    /// Peak resident set size, bytes (VmHWM).
    pub hwm: u64,
    /// Open file descriptors.
    pub fds: i64,
    /// Threads.
    pub threads: i64,
    /// Briefs sent and not yet answered when the sample was taken.
    pub outstanding: usize,
}

fn sample(pid: u32, at_s: f64, outstanding: usize) -> anyhow::Result<Sample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("packd (pid {pid}) is gone"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|rest| rest.trim().trim_end_matches("kB").trim().to_string())
            .and_then(|value| value.parse::<u64>().ok())
    };
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd"))?
        .count() as i64;
    Ok(Sample {
        at_s,
        rss: field("VmRSS:").unwrap_or(0) * 1024,
        hwm: field("VmHWM:").unwrap_or(0) * 1024,
        fds,
        threads: field("Threads:").unwrap_or(0) as i64,
        outstanding,
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

/// Least-squares slope of RSS over time, in MiB per minute.
fn rss_slope_mib_per_min(samples: &[Sample]) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.at_s).sum::<f64>() / n;
    let mean_r = samples.iter().map(|s| s.rss as f64).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for s in samples {
        covariance += (s.at_s - mean_t) * (s.rss as f64 - mean_r);
        variance += (s.at_s - mean_t).powi(2);
    }
    if variance == 0.0 {
        0.0
    } else {
        covariance / variance * 60.0 / MIB
    }
}

// ---------------------------------------------------------------------------
// Processes started here
// ---------------------------------------------------------------------------

/// A child killed when dropped.
struct Guarded(Option<Child>);

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Polls `ready` every 20 ms until it holds or `deadline` passes.
fn wait_for(deadline: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ready()
}

/// A private mosquitto on a free loopback port.
fn start_mosquitto(dir: &Path) -> anyhow::Result<(Guarded, String)> {
    let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .ok_or_else(|| anyhow!("mosquitto not found (apt-get install mosquitto), or pass --url"))?;
    let port = free_port()?;
    let config = dir.join("mosquitto.conf");
    // Nagle off as on the appliances' brokers (docs/performance.md); no persistence (a soak
    // starts clean); queue limits lifted so the broker never silently drops a brief or reply
    // this tool counts on.
    fs::write(
        &config,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             set_tcp_nodelay true\nmax_queued_messages 1000000\nlog_dest file {}\n",
            dir.join("mosquitto.log").display()
        ),
    )?;
    let child = Command::new(binary)
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start mosquitto")?;
    let guard = Guarded(Some(child));
    let up = wait_for(Duration::from_secs(15), || {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
    });
    if !up {
        bail!("mosquitto did not listen on 127.0.0.1:{port} within 15 s");
    }
    Ok((guard, format!("mqtt://127.0.0.1:{port}")))
}

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Whether a journald listens: an empty datagram is accepted by a live one and refused at a
/// socket file a dead one left behind.
fn journald_answers() -> bool {
    std::os::unix::net::UnixDatagram::unbound()
        .and_then(|socket| socket.send_to(&[], JOURNAL_SOCKET))
        .is_ok()
}

fn default_packd_binary() -> anyhow::Result<PathBuf> {
    // target/<profile>/examples/soak → target/<profile>/packd
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot tell the target directory from {}", exe.display()))?;
    let packd = profile_dir.join("packd");
    if !packd.exists() {
        bail!(
            "{} does not exist: build it first (cargo build --release --bin packd), or pass \
             --packd-bin",
            packd.display()
        );
    }
    Ok(packd)
}

struct StartedPackd {
    child: Guarded,
    device: String,
    log: PathBuf,
}

fn start_packd(
    arguments: &Arguments,
    dir: &Path,
    url: &str,
    public_key: &str,
) -> anyhow::Result<StartedPackd> {
    let binary = match &arguments.packd_bin {
        Some(path) => path.clone(),
        None => default_packd_binary()?,
    };
    let device = format!("soak-{}", std::process::id());
    let config = format!(
        r#"[mqtt]
url = "{url}"
prefix = "{prefix}"
[device]
id = "{device}"
[bundles]
dir = "{store}"
seed = "{seed}"
trusted_keys = ["{public_key}"]
[serve]
workers = {workers}
queue = {queue}
reply_cache_s = {cache}
[telemetry]
stats_interval_s = {stats}
[log]
target = "{log_target}"
level = "info"
"#,
        prefix = arguments.prefix,
        store = dir.join("bundles").display(),
        seed = arguments.bundle.display(),
        workers = arguments.workers,
        queue = arguments.queue,
        cache = arguments.reply_cache_s,
        stats = arguments.stats_interval_s,
        log_target = arguments.log_target,
    );
    let config_path = dir.join("packd.toml");
    fs::write(&config_path, config)?;
    let log = dir.join("packd.log");
    let out = fs::File::create(&log)?;
    let child = Command::new(&binary)
        .arg("--config")
        .arg(&config_path)
        // Not a systemd unit's stream: packd decides by log.target alone.
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    Ok(StartedPackd {
        child: Guarded(Some(child)),
        device,
        log,
    })
}

// ---------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------

/// A packed, possibly signed bundle variant ready to push.
struct Variant {
    name: String,
    version: String,
    bytes: Vec<u8>,
    sha256: String,
    signature: Option<(String, String)>,
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The bundle in `source` as version `<its version>+<suffix>`: build metadata, so the variant is
/// another bundle but not an older version (a `-suffix` prerelease would be, and a downgrade).
/// manifest.toml is not among the files it lists hashes for, so changing its version needs no
/// rehashing.
fn variant(
    source: &Path,
    scratch: &Path,
    suffix: &str,
    key: Option<&SigningKey>,
) -> anyhow::Result<Variant> {
    let dir = scratch.join(suffix);
    copy_dir(source, &dir)?;
    let manifest_path = dir.join("manifest.toml");
    let mut manifest = packd::bundle::Manifest::parse(&fs::read_to_string(&manifest_path)?)
        .context("the bundle's manifest.toml does not parse")?;
    let joiner = if manifest.version.contains('+') {
        '.'
    } else {
        '+'
    };
    let version = format!("{}{joiner}{suffix}", manifest.version);
    manifest.version = version.clone();
    fs::write(&manifest_path, toml::to_string(&manifest)?)?;
    let mut bytes = Vec::new();
    packd::bundle::archive::pack(
        &dir,
        &mut bytes,
        packd::bundle::archive::Compression::Zstd { level: 3 },
    )?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let statement = packd::bundle::signature::Statement::new(
        &manifest.name,
        &version,
        bytes.len() as u64,
        digest,
        false,
    )?;
    let signature = key.map(|key| {
        (
            packd::bundle::signature::sign(key, &statement),
            packd::bundle::signature::key_id(&key.verifying_key()),
        )
    });
    Ok(Variant {
        name: manifest.name,
        version,
        bytes,
        sha256: hex::encode(digest),
        signature,
    })
}

// ---------------------------------------------------------------------------
// Briefs
// ---------------------------------------------------------------------------

/// What a brief is, and so what its answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Terms and brand colours only: must be `ok`.
    Plain,
    /// With a reference photo: must be `ok`.
    Image,
    /// With `render: true`: must be `ok` with a preview.
    Render,
    /// Malformed on purpose: must be refused with the code it is built to provoke.
    Malformed(&'static str),
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Image => "image",
            Kind::Render => "render",
            Kind::Malformed(_) => "malformed",
        }
    }
}

/// Term synonyms per vocabulary group and language.
struct Terms {
    english: BTreeMap<String, Vec<String>>,
    chinese: BTreeMap<String, Vec<String>>,
}

impl Terms {
    fn load(bundle: &Path) -> anyhow::Result<Terms> {
        let path = bundle.join("vocabulary.json");
        let vocabulary: Value = serde_json::from_slice(&fs::read(&path)?)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let mut terms = Terms {
            english: BTreeMap::new(),
            chinese: BTreeMap::new(),
        };
        for term in vocabulary["terms"].as_array().into_iter().flatten() {
            let Some(group) = term["group"].as_str() else {
                continue;
            };
            for (language, into) in [("en", &mut terms.english), ("zh", &mut terms.chinese)] {
                let words = term[language].as_array().into_iter().flatten();
                into.entry(group.to_string())
                    .or_default()
                    .extend(words.filter_map(Value::as_str).map(str::to_string));
            }
        }
        for group in ["product", "audience", "mood", "palette", "keyword"] {
            if terms.english.get(group).is_none_or(Vec::is_empty)
                || terms.chinese.get(group).is_none_or(Vec::is_empty)
            {
                bail!(
                    "{} has no '{group}' terms in both languages",
                    path.display()
                );
            }
        }
        Ok(terms)
    }
}

/// Reference photos of several formats and sizes, base64.
fn reference_images() -> anyhow::Result<Vec<String>> {
    let picture = |width: u32, height: u32, seed: u32| {
        image::RgbImage::from_fn(width, height, |x, y| {
            let band = (x * 7 + y * 3 + seed * 40) / 24 % 255;
            image::Rgb([band as u8, (255 - band) as u8, ((x ^ y) % 200) as u8])
        })
    };
    let mut images = Vec::new();
    for (width, height, format) in [
        (320, 240, image::ImageFormat::Png),
        (640, 480, image::ImageFormat::Jpeg),
        (1024, 768, image::ImageFormat::Jpeg),
        (200, 300, image::ImageFormat::WebP),
        (96, 96, image::ImageFormat::Png),
    ] {
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(picture(width, height, images.len() as u32))
            .write_to(&mut Cursor::new(&mut bytes), format)
            .with_context(|| format!("cannot encode a {width}x{height} {format:?}"))?;
        images.push(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    Ok(images)
}

struct BriefMix {
    terms: Terms,
    images: Vec<String>,
    rng: fastrand::Rng,
}

impl BriefMix {
    /// A random synonym of a random term of `group` in one language.
    fn pick(&mut self, chinese: bool, group: &str) -> String {
        let table = if chinese {
            &self.terms.chinese
        } else {
            &self.terms.english
        };
        // Terms::load made sure the main groups have terms in both languages; a group another
        // bundle lacks (season, occasion) is only asked for when the English table has it.
        let words = table.get(group).map(Vec::as_slice).unwrap_or(&[]);
        match words.len() {
            0 => "tea".to_string(),
            n => words[self.rng.usize(..n)].clone(),
        }
    }

    fn colour(&mut self) -> String {
        if self.rng.bool() {
            format!("#{:06X}", self.rng.u32(..0x100_0000))
        } else {
            format!("#{:03x}", self.rng.u32(..0x1000))
        }
    }

    /// The brief number `sequence` and what it is.
    fn next(&mut self, sequence: u64) -> (Kind, Vec<u8>) {
        let roll = self.rng.u32(..1000);
        let kind = match roll {
            0..=19 => {
                let codes = ["bad_request", "bad_request", "unsupported_version"];
                Kind::Malformed(codes[self.rng.usize(..codes.len())])
            }
            20..=29 => Kind::Render,
            30..=79 => Kind::Image,
            _ => Kind::Plain,
        };
        if let Kind::Malformed(code) = kind {
            let body = match (code, self.rng.u8(..5)) {
                ("unsupported_version", _) => {
                    format!(r#"{{"v":7,"id":"soak-{sequence}","product":"tea"}}"#)
                }
                (_, 0) => format!(r#"{{"id":"soak-{sequence}","mood":["fresh"]}}"#),
                (_, 1) => format!(
                    r##"{{"id":"soak-{sequence}","product":"tea","brand_colors":["#GG12ZZ"]}}"##
                ),
                (_, 2) => format!(r#"{{"id":"soak-{sequence}","product":"tea","top_k":50}}"#),
                (_, 3) => "{\"product\": \"tea\", \"mood\": [".to_string(),
                _ => format!(r#"[{sequence}, "not an object"]"#),
            };
            return (kind, body.into_bytes());
        }
        let chinese = self.rng.bool();
        let mixed = self.rng.u8(..10) == 0;
        let mut brief = json!({
            "v": 1,
            "product": self.pick(chinese, "product"),
            "top_k": self.rng.u8(1..=10),
        });
        if self.rng.u8(..10) < 7 {
            brief["id"] = json!(format!("soak-{sequence}"));
        }
        let terms = |mix: &mut BriefMix, group: &str, most: usize| -> Vec<String> {
            (0..mix.rng.usize(..=most))
                .map(|_| {
                    let language = if mixed { mix.rng.bool() } else { chinese };
                    mix.pick(language, group)
                })
                .collect()
        };
        brief["audience"] = json!(terms(self, "audience", 2));
        let mut mood = terms(self, "mood", 3);
        for group in ["season", "occasion"] {
            if self.rng.u8(..4) == 0 && self.terms.english.contains_key(group) {
                mood.push(self.pick(chinese, group));
            }
        }
        brief["mood"] = json!(mood);
        if self.rng.bool() {
            brief["palette"] = json!(self.pick(chinese, "palette"));
        }
        let mut keywords = terms(self, "keyword", 2);
        if self.rng.u8(..10) == 0 {
            // Unknown terms are warnings, not errors.
            keywords.push(format!("soak-unknown-{}", self.rng.u16(..)));
        }
        brief["keywords"] = json!(keywords);
        let colours: Vec<String> = (0..self.rng.usize(..=4)).map(|_| self.colour()).collect();
        brief["brand_colors"] = json!(colours);
        if self.rng.u8(..10) < 3 {
            // Generous: at a steady rate no brief waits this long, so `expired` means a stall.
            brief["deadline_ms"] = json!(10_000);
        }
        match kind {
            Kind::Image => {
                let image = &self.images[self.rng.usize(..self.images.len())];
                brief["image"] = json!(image);
            }
            Kind::Render => brief["render"] = json!(true),
            _ => {}
        }
        (kind, brief.to_string().into_bytes())
    }
}

// ---------------------------------------------------------------------------
// MQTT
// ---------------------------------------------------------------------------

enum Incoming {
    Publish(Publish),
    SubAck,
    Disconnected(String),
}

struct Client {
    client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<(Instant, Incoming)>,
    reply_topic: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connect(url: &str, prefix: &str) -> anyhow::Result<Client> {
    let address = packd::transport::parse_url(url)?;
    if address.tls {
        bail!("the soak tool speaks plain MQTT only; use a loopback listener");
    }
    let id = format!("soak-{}-{}", std::process::id(), fastrand::u32(..));
    let mut options = MqttOptions::new(&id, address.host, address.port);
    options.set_keep_alive(Duration::from_secs(30));
    // Replies with previews are a few hundred KiB.
    options.set_max_packet_size(Some(32 * 1024 * 1024));
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    let (client, mut eventloop) = AsyncClient::new(options, 4096);
    let (sender, incoming) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let event = eventloop.poll().await;
            // Stamped here, as it comes off the socket: the round trip must not include the
            // time the main loop takes to get to it.
            let now = Instant::now();
            let message = match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => Incoming::Publish(publish),
                Ok(Event::Incoming(Packet::SubAck(_))) => Incoming::SubAck,
                Ok(_) => continue,
                Err(error) => {
                    let _ = sender.send((now, Incoming::Disconnected(error.to_string())));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if sender.send((now, message)).is_err() {
                return;
            }
        }
    });
    Ok(Client {
        client,
        incoming,
        // Under packd's default reply prefix: it publishes replies nowhere else.
        reply_topic: format!("{prefix}/replies/{id}"),
        task,
    })
}

fn correlation(publish: &Publish) -> Option<&[u8]> {
    publish
        .properties
        .as_ref()
        .and_then(|p| p.correlation_data.as_deref())
}

async fn publish(
    client: &AsyncClient,
    topic: &str,
    payload: impl Into<Bytes>,
    route: Option<(&str, String)>,
) -> anyhow::Result<()> {
    let properties = PublishProperties {
        response_topic: route.as_ref().map(|(topic, _)| topic.to_string()),
        correlation_data: route.map(|(_, correlation)| Bytes::from(correlation.into_bytes())),
        ..PublishProperties::default()
    };
    client
        .publish_with_properties(topic, QoS::AtLeastOnce, false, payload.into(), properties)
        .await
        .context("publish")
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

struct Sent {
    at: Instant,
    kind: Kind,
    /// The bundle version the reply must name: the last one activated, when no activation was
    /// under way as the brief left.
    expected_version: Option<String>,
}

/// Percentiles of a list of microsecond figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    /// How many figures.
    pub count: usize,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    fn of(mut values: Vec<u64>) -> Percentiles {
        values.sort_unstable();
        let at = |quantile: f64| {
            if values.is_empty() {
                return 0;
            }
            let rank = ((quantile * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[rank - 1]
        };
        Percentiles {
            count: values.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: values.last().copied().unwrap_or(0),
        }
    }

    fn line(&self) -> String {
        let ms = |us: u64| {
            if us >= 10_000 {
                format!("{:.0} ms", us as f64 / 1000.0)
            } else if us >= 1000 {
                format!("{:.2} ms", us as f64 / 1000.0)
            } else {
                format!("{us} µs")
            }
        };
        format!(
            "p50 {} / p90 {} / p99 {} / max {} (n = {})",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
            self.count
        )
    }
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The report as printed.
    pub text: String,
    /// Briefs sent.
    pub sent: u64,
    /// Briefs answered.
    pub answered: u64,
    /// Briefs never answered.
    pub lost: u64,
    /// Replies beyond the first for one brief.
    pub duplicates: u64,
    /// Replies by `status` or error code.
    pub statuses: BTreeMap<String, u64>,
    /// Answers other than the one the brief was built to get (overloaded and expired aside).
    pub wrong: u64,
    /// Replies from a bundle version other than the one active when the brief was sent.
    pub version_mismatches: u64,
    /// Bundle activations done during the run.
    pub activations: u64,
    /// Activations refused or unanswered.
    pub activation_failures: u64,
    /// packd's resources when the load started.
    pub start: Sample,
    /// packd's resources after the drain.
    pub end: Sample,
    /// The largest of each resource seen.
    pub max: Sample,
    /// Requests packd counted as `dropped` (no way back), from its stats.
    pub packd_dropped: Option<u64>,
    /// Hostile requests sent, by kind (`--hostile-rate`).
    pub hostile_sent: BTreeMap<&'static str, u64>,
    /// Times packd's retained state said `offline` during the run: each is a lost connection.
    pub offline_states: u64,
    /// Why the verdict failed; empty when it passed.
    pub failures: Vec<String>,
}

impl Report {
    /// Whether every check of the verdict held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Waits for the reply to a command, keeping whatever else arrives for the main loop.
async fn command(
    client: &mut Client,
    topic: &str,
    payload: Value,
    counter: &mut u64,
    stash: &mut Vec<(Instant, Incoming)>,
) -> anyhow::Result<Value> {
    *counter += 1;
    let wanted = format!("cmd-{counter}");
    publish(
        &client.client,
        topic,
        payload.to_string(),
        Some((&client.reply_topic, wanted.clone())),
    )
    .await?;
    let end = tokio::time::Instant::now() + COMMAND_TIMEOUT;
    loop {
        match tokio::time::timeout_at(end, client.incoming.recv()).await {
            Err(_) => bail!("no reply to {topic} within {COMMAND_TIMEOUT:?}"),
            Ok(None) => bail!("the MQTT client stopped"),
            Ok(Some((_, Incoming::Publish(publish))))
                if correlation(&publish) == Some(wanted.as_bytes()) =>
            {
                return serde_json::from_slice(&publish.payload)
                    .with_context(|| format!("reply to {topic} is not JSON"));
            }
            Ok(Some(other)) => stash.push(other),
        }
    }
}

async fn push(
    client: &mut Client,
    prefix: &str,
    device: &str,
    variant: &Variant,
    counter: &mut u64,
    stash: &mut Vec<(Instant, Incoming)>,
) -> anyhow::Result<()> {
    let topic = |command: &str| format!("{prefix}/devices/{device}/bundles/{command}");
    // Transfer ids are letters, digits, '-' and '_' only.
    let transfer = format!("soak-{}", variant.version.replace(['.', '+'], "_"));
    let mut begin = json!({
        "transfer": transfer,
        "name": variant.name,
        "version": variant.version,
        "size": variant.bytes.len(),
        "sha256": variant.sha256,
        "chunk_size": CHUNK_SIZE,
    });
    if let Some((signature, key_id)) = &variant.signature {
        begin["signature"] = json!(signature);
        begin["key_id"] = json!(key_id);
    }
    let ready = command(client, &topic("begin"), begin, counter, stash).await?;
    if ready["status"] != "ready" {
        bail!("begin of {} refused: {ready}", variant.version);
    }
    for (seq, chunk) in variant.bytes.chunks(CHUNK_SIZE).enumerate() {
        publish(
            &client.client,
            &topic(&format!("chunk/{transfer}/{seq}")),
            chunk.to_vec(),
            None,
        )
        .await?;
    }
    let commit = json!({"transfer": transfer, "activate": false});
    let committed = command(client, &topic("commit"), commit, counter, stash).await?;
    if committed["status"] != "installed" {
        bail!("commit of {} refused: {committed}", variant.version);
    }
    Ok(())
}

/// Runs a soak as `arguments` say and reports; `Err` only when it could not run at all.
pub async fn run(arguments: Arguments) -> anyhow::Result<Report> {
    let scratch = tempfile::Builder::new().prefix("packd-soak-").tempdir()?;
    let machine = machine();
    let (_mosquitto, url) = match &arguments.url {
        Some(url) => (Guarded(None), url.clone()),
        None => start_mosquitto(scratch.path())?,
    };

    let (key, public_key) = match (&arguments.key, arguments.pid) {
        (Some(path), _) => {
            let key = packd::bundle::signature::read_secret_key(path)?;
            let public =
                base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
            (Some(key), public)
        }
        (None, Some(_)) => (None, String::new()),
        (None, None) => {
            let (key, public) = packd::bundle::signature::generate_keypair()?;
            let public = base64::engine::general_purpose::STANDARD.encode(public.as_bytes());
            (Some(key), public)
        }
    };
    let (mut started, device, pid) = match arguments.pid {
        Some(pid) => {
            let device = arguments
                .device
                .clone()
                .ok_or_else(|| anyhow!("--pid needs --device"))?;
            (None, device, pid)
        }
        None => {
            if arguments.log_target == "journal" && !journald_answers() {
                bail!(
                    "no journald answers on {JOURNAL_SOCKET} (start one, as .ci/run does, or \
                     pass --log-target stderr)"
                );
            }
            let packd = start_packd(&arguments, scratch.path(), &url, &public_key)?;
            let pid = packd.child.0.as_ref().map(Child::id).unwrap_or(0);
            let device = packd.device.clone();
            (Some(packd), device, pid)
        }
    };

    let prefix = arguments.prefix.clone();
    let mut client = connect(&url, &prefix).await?;
    let state_topic = format!("{prefix}/devices/{device}/state");
    let stats_topic = format!("{prefix}/devices/{device}/stats");
    let brief_topic = format!("{prefix}/devices/{device}/briefs");
    for topic in [&client.reply_topic, &state_topic, &stats_topic] {
        client
            .client
            .subscribe(topic.as_str(), QoS::AtLeastOnce)
            .await?;
    }
    let mut stash = Vec::new();
    let mut subacks = 0;
    let mut online = None;
    let startup_end = Instant::now() + Duration::from_secs(60);
    while subacks < 3 || online.is_none() {
        let exited = started
            .as_mut()
            .and_then(|packd| packd.child.0.as_mut())
            .and_then(|child| child.try_wait().ok().flatten());
        if exited.is_some() || Instant::now() >= startup_end {
            let log = started
                .as_ref()
                .map(|p| fs::read_to_string(&p.log).unwrap_or_default())
                .unwrap_or_default();
            match exited {
                Some(status) => {
                    bail!("packd exited ({status}) before it came online; its log:\n{log}")
                }
                None => bail!("packd {device} did not come online within 60 s; its log:\n{log}"),
            }
        }
        // Short waits, so that a packd that exits at start is noticed at once.
        match tokio::time::timeout(Duration::from_millis(250), client.incoming.recv()).await {
            Err(_) => {}
            Ok(None) => bail!("the MQTT client stopped"),
            Ok(Some((_, Incoming::SubAck))) => subacks += 1,
            Ok(Some((_, Incoming::Publish(publish))))
                if publish.topic == state_topic.as_bytes() =>
            {
                let state: Value = serde_json::from_slice(&publish.payload).unwrap_or(Value::Null);
                if state["status"] == "online" {
                    online = Some(state);
                }
            }
            Ok(Some(_)) => {}
        }
    }
    let active = |field: &str| {
        online
            .as_ref()
            .and_then(|state| state["bundle"][field].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let first_version = active("version");

    // Two signed variants, pushed once; then the activations cycle through all three.
    let mut counter = 0;
    let mut cycle = vec![(active("name"), first_version.clone())];
    if arguments.activate_every_s > 0 {
        for number in 1..=2 {
            // The pid keeps versions apart across runs against the same appliance: a different
            // bundle under an installed name@version is refused.
            let suffix = format!("soak.{number}.{}", std::process::id());
            let variant = variant(&arguments.bundle, scratch.path(), &suffix, key.as_ref())?;
            push(
                &mut client,
                &prefix,
                &device,
                &variant,
                &mut counter,
                &mut stash,
            )
            .await?;
            cycle.push((variant.name.clone(), variant.version.clone()));
        }
    }

    let mut mix = BriefMix {
        terms: Terms::load(&arguments.bundle)?,
        images: reference_images()?,
        rng: fastrand::Rng::with_seed(arguments.seed),
    };
    let duration = arguments.duration();
    let warmup = Duration::from_secs(arguments.warmup_s).min(duration / 2);
    let sample_every = Duration::from_secs(arguments.sample_every_s.max(1));
    let activate_every = Duration::from_secs(arguments.activate_every_s);

    let mut outstanding: HashMap<u64, Sent> = HashMap::new();
    let mut answered: HashSet<u64> = HashSet::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_kind: BTreeMap<Kind, u64> = BTreeMap::new();
    let mut round_trips: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    let mut in_packd: Vec<u64> = Vec::new();
    let mut versions_served: BTreeMap<String, u64> = BTreeMap::new();
    let mut wrong: Vec<String> = Vec::new();
    let mut wrong_count = 0u64;
    let mut version_mismatches = 0u64;
    let mut duplicates = 0u64;
    let mut disconnects = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut start_sample: Option<Sample> = None;
    let mut latest_stats = Value::Null;
    let mut activation_times = Vec::new();
    let mut activation_failures = Vec::new();
    // (correlation, version, sent at) of the activation under way.
    let mut pending_activation: Option<(String, String, Instant)> = None;
    let mut current_version: Option<String> = Some(first_version.clone());
    let mut next_in_cycle = 1 % cycle.len();
    let mut offline_states = 0u64;
    let hostile_stop = tokio_util::sync::CancellationToken::new();
    let hostile_task = (arguments.hostile_rate > 0.0)
        .then(|| -> anyhow::Result<_> {
            let address = packd::transport::parse_url(&url)?;
            let mix = hostile::HostileMix::new(&prefix, &device)?;
            Ok(tokio::spawn(hostile::run(
                mix,
                address.host,
                address.port,
                arguments.hostile_rate,
                hostile_stop.clone(),
            )))
        })
        .transpose()?;

    let t0 = Instant::now();
    let stop_sending = t0 + duration;
    let mut sequence = 0u64;
    let mut next_brief = tokio::time::Instant::from_std(t0);
    let mut next_sample = tokio::time::Instant::from_std(t0);
    let mut next_activation = tokio::time::Instant::from_std(t0 + activate_every);
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut backlog: VecDeque<(Instant, Incoming)> = stash.into();

    loop {
        let sending = Instant::now() < stop_sending;
        if !sending && drain_deadline.is_none() {
            drain_deadline =
                Some(tokio::time::Instant::now() + Duration::from_secs(arguments.drain_s));
        }
        if !sending && outstanding.is_empty() && pending_activation.is_none() {
            break;
        }
        if drain_deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
            break;
        }
        let message = if let Some(message) = backlog.pop_front() {
            Some(message)
        } else {
            tokio::select! {
                biased;
                message = client.incoming.recv() => match message {
                    Some(message) => Some(message),
                    None => bail!("the MQTT client stopped"),
                },
                _ = tokio::time::sleep_until(next_sample) => {
                    let at_s = t0.elapsed().as_secs_f64();
                    let taken = sample(pid, at_s, outstanding.len())?;
                    samples.push(taken);
                    // The start figures: the first sample after the warm-up with no activation
                    // under way (an activation briefly holds two models and their files).
                    if start_sample.is_none() && t0.elapsed() >= warmup && pending_activation.is_none() {
                        start_sample = Some(taken);
                    }
                    next_sample += sample_every;
                    None
                }
                _ = tokio::time::sleep_until(next_activation),
                    if sending && activate_every > Duration::ZERO && pending_activation.is_none() && cycle.len() > 1 => {
                    let (name, version) = cycle[next_in_cycle].clone();
                    next_in_cycle = (next_in_cycle + 1) % cycle.len();
                    counter += 1;
                    let wanted = format!("cmd-{counter}");
                    publish(
                        &client.client,
                        &format!("{prefix}/devices/{device}/bundles/activate"),
                        json!({"name": name, "version": version}).to_string(),
                        Some((&client.reply_topic, wanted.clone())),
                    )
                    .await?;
                    current_version = None;
                    pending_activation = Some((wanted, version, Instant::now()));
                    next_activation += activate_every;
                    None
                }
                _ = tokio::time::sleep_until(next_brief), if sending => {
                    let (kind, payload) = mix.next(sequence);
                    let correlation = format!("b{sequence}");
                    publish(
                        &client.client,
                        &brief_topic,
                        payload,
                        Some((&client.reply_topic, correlation)),
                    )
                    .await?;
                    outstanding.insert(sequence, Sent {
                        at: Instant::now(),
                        kind,
                        expected_version: current_version.clone(),
                    });
                    sequence += 1;
                    next_brief = tokio::time::Instant::from_std(
                        t0 + Duration::from_secs_f64(sequence as f64 / arguments.rate),
                    );
                    None
                }
                _ = tokio::time::sleep_until(drain_deadline.unwrap_or_else(tokio::time::Instant::now)), if drain_deadline.is_some() => None,
            }
        };
        let Some((received, message)) = message else {
            continue;
        };
        let publish = match message {
            Incoming::Publish(publish) => publish,
            Incoming::SubAck => continue,
            Incoming::Disconnected(error) => {
                disconnects.push(format!("{:.1} s: {error}", t0.elapsed().as_secs_f64()));
                continue;
            }
        };
        if publish.topic == stats_topic.as_bytes() {
            latest_stats = serde_json::from_slice(&publish.payload).unwrap_or(Value::Null);
            continue;
        }
        if publish.topic == state_topic.as_bytes() {
            let state: Value = serde_json::from_slice(&publish.payload).unwrap_or(Value::Null);
            offline_states += u64::from(state["status"] == "offline");
            continue;
        }
        if publish.topic != client.reply_topic.as_bytes() {
            continue;
        }
        let Some(tag) = correlation(&publish).and_then(|data| std::str::from_utf8(data).ok())
        else {
            continue;
        };
        let reply: Value = serde_json::from_slice(&publish.payload).unwrap_or(Value::Null);
        if let Some((wanted, version, at)) = &pending_activation {
            if tag == wanted {
                activation_times.push(at.elapsed().as_micros() as u64);
                if reply["status"] == "activated" && reply["bundle"]["version"] == version.as_str()
                {
                    current_version = Some(version.clone());
                } else {
                    activation_failures.push(format!("activate {version}: {reply}"));
                }
                pending_activation = None;
                continue;
            }
        }
        let Some(index) = tag.strip_prefix('b').and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let Some(sent) = outstanding.remove(&index) else {
            if answered.contains(&index) {
                duplicates += 1;
            }
            continue;
        };
        answered.insert(index);
        *by_kind.entry(sent.kind).or_default() += 1;
        let status = if reply["status"] == "ok" {
            "ok".to_string()
        } else {
            reply["error"]["code"]
                .as_str()
                .unwrap_or("(unreadable reply)")
                .to_string()
        };
        *statuses.entry(status.clone()).or_default() += 1;
        let right = match sent.kind {
            Kind::Malformed(code) => status == code,
            Kind::Render => status == "ok" && reply["preview_png"].is_string(),
            Kind::Plain | Kind::Image => status == "ok",
        };
        let refused_for_load = status == "overloaded" || status == "expired";
        if !right && !refused_for_load {
            wrong_count += 1;
            if wrong.len() < 10 {
                wrong.push(format!(
                    "brief {index} ({:?}): {status}: {}",
                    sent.kind, reply
                ));
            }
        }
        if status == "ok" {
            let round_trip = received.saturating_duration_since(sent.at).as_micros() as u64;
            round_trips.entry("all").or_default().push(round_trip);
            round_trips
                .entry(sent.kind.label())
                .or_default()
                .push(round_trip);
            if let Some(total) = reply["timing_us"]["total"].as_u64() {
                in_packd.push(total);
            }
            let version = reply["bundle"]["version"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            if sent
                .expected_version
                .as_ref()
                .is_some_and(|v| *v != version)
            {
                version_mismatches += 1;
            }
            *versions_served.entry(version).or_default() += 1;
        }
    }
    let finished = t0.elapsed();
    let lost = outstanding.len() as u64;
    hostile_stop.cancel();
    let hostile_by_kind = match hostile_task {
        Some(task) => task.await??,
        None => BTreeMap::new(),
    };
    // Requests whose way back packd must refuse are counted as dropped, as the contract says.
    let hostile_unanswerable: u64 = hostile_by_kind
        .iter()
        .filter(|(kind, _)| kind.has_no_valid_route())
        .map(|(_, n)| n)
        .sum();
    let hostile_sent: BTreeMap<&'static str, u64> = hostile_by_kind
        .into_iter()
        .map(|(kind, n)| (kind.label(), n))
        .collect();

    // packd's own counters once it holds nothing: `dropped` counts briefs it could not even
    // refuse. Waited for only when packd is ours (another client's briefs would keep it busy).
    let stats_wait = Duration::from_secs(arguments.stats_interval_s * 3 + 5);
    let stats_end = tokio::time::Instant::now() + stats_wait;
    while started.is_some() {
        // The hostile requests packd must drop are counted only once it has read them, which
        // may be after the last normal reply.
        let idle = latest_stats["queue_depth"] == 0
            && latest_stats["in_flight"] == 0
            && latest_stats["briefs"]
                .as_u64()
                .is_some_and(|n| n >= sequence)
            && latest_stats["dropped"]
                .as_u64()
                .is_some_and(|n| n >= hostile_unanswerable);
        if idle {
            break;
        }
        match tokio::time::timeout_at(stats_end, client.incoming.recv()).await {
            Ok(Some((_, Incoming::Publish(publish))))
                if publish.topic == stats_topic.as_bytes() =>
            {
                latest_stats = serde_json::from_slice(&publish.payload).unwrap_or(Value::Null);
            }
            Ok(Some((_, Incoming::Publish(publish)))) => {
                if correlation(&publish).is_some_and(|data| data.starts_with(b"b")) {
                    duplicates += 1;
                }
            }
            Ok(Some(_)) => {}
            Err(_) | Ok(None) => break,
        }
    }
    let end_sample = sample(pid, t0.elapsed().as_secs_f64(), outstanding.len())?;
    samples.push(end_sample);
    let start = start_sample.unwrap_or(samples[0]);
    let after_warmup: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at_s >= start.at_s)
        .collect();
    let max = Sample {
        at_s: 0.0,
        rss: after_warmup.iter().map(|s| s.rss).max().unwrap_or(0),
        hwm: end_sample.hwm,
        fds: after_warmup.iter().map(|s| s.fds).max().unwrap_or(0),
        threads: after_warmup.iter().map(|s| s.threads).max().unwrap_or(0),
        outstanding: after_warmup
            .iter()
            .map(|s| s.outstanding)
            .max()
            .unwrap_or(0),
    };

    // A clean stop of the packd started here must still be possible after all that.
    let mut exit = None;
    if let Some(packd) = started.as_mut() {
        if let Some(child) = packd.child.0.as_mut() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(30);
            while Instant::now() < end {
                if let Ok(Some(status)) = child.try_wait() {
                    exit = Some(status);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if exit.is_some() {
            packd.child.0 = None;
        }
    }

    let rss_growth = end_sample.rss as i64 - start.rss as i64;
    let fd_growth = end_sample.fds - start.fds;
    let tolerance = (arguments.rss_tolerance_mib * MIB) as i64;
    let mut failures = Vec::new();
    if sequence == 0 {
        failures.push("no brief was sent".to_string());
    }
    if lost > 0 {
        let some: Vec<_> = outstanding.keys().take(10).collect();
        failures.push(format!("{lost} briefs unanswered (e.g. {some:?})"));
    }
    if duplicates > 0 {
        failures.push(format!("{duplicates} briefs answered more than once"));
    }
    if wrong_count > 0 {
        failures.push(format!("{wrong_count} wrong answers, first: {wrong:?}"));
    }
    if version_mismatches > 0 {
        failures.push(format!(
            "{version_mismatches} briefs sent after an activation answered by another bundle"
        ));
    }
    if !activation_failures.is_empty() {
        failures.push(format!("activations failed: {activation_failures:?}"));
    }
    if rss_growth > tolerance {
        failures.push(format!(
            "RSS grew {} from the start to the end, over the {} MiB tolerance",
            mib(rss_growth as u64),
            arguments.rss_tolerance_mib
        ));
    }
    if offline_states > 0 {
        failures.push(format!(
            "packd's state went offline {offline_states} times: it lost the broker"
        ));
    }
    if fd_growth > arguments.fd_tolerance {
        failures.push(format!(
            "open files grew by {fd_growth}, over the tolerance of {}",
            arguments.fd_tolerance
        ));
    }
    let packd_dropped = latest_stats["dropped"].as_u64();
    if packd_dropped.is_some_and(|dropped| dropped != hostile_unanswerable) {
        failures.push(format!(
            "packd counted {packd_dropped:?} dropped briefs, {hostile_unanswerable} expected"
        ));
    }
    if started.is_some() && !exit.is_some_and(|status| status.success()) {
        failures.push(format!(
            "packd did not exit cleanly after SIGTERM: {exit:?}"
        ));
    }

    // The report.
    let mut text = String::new();
    let seconds = finished.as_secs_f64();
    let _ = writeln!(
        text,
        "packd soak: {:.0} s of load ({} s warm-up), {} briefs/s offered, activation every {} s, \
         /proc sampled every {} s",
        duration.as_secs_f64(),
        warmup.as_secs(),
        arguments.rate,
        arguments.activate_every_s,
        sample_every.as_secs()
    );
    let _ = writeln!(text, "machine: {machine}");
    let _ = writeln!(
        text,
        "soak tool build: {}; packd: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        match &started {
            Some(_) => format!(
                "started here (pid {pid}), {} workers, queue {}, log {}, reply cache {} s",
                arguments.workers, arguments.queue, arguments.log_target, arguments.reply_cache_s
            ),
            None => format!("pid {pid}, device {device} (already running)"),
        }
    );
    let _ = writeln!(
        text,
        "briefs: sent {sequence}, answered {}, lost {lost}, answered twice {duplicates}; \
         {:.1} briefs/s achieved",
        answered.len(),
        sequence as f64 / duration.as_secs_f64().min(seconds)
    );
    let _ = writeln!(
        text,
        "  by kind: {}",
        by_kind
            .iter()
            .map(|(kind, n)| format!(
                "{} {n}",
                match kind {
                    Kind::Malformed(code) => format!("malformed→{code}"),
                    other => other.label().to_string(),
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        text,
        "  by status: {}; ok {}, overloaded {}, expired {}; wrong answers {wrong_count}",
        statuses
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        statuses.get("ok").copied().unwrap_or(0),
        statuses.get("overloaded").copied().unwrap_or(0),
        statuses.get("expired").copied().unwrap_or(0),
    );
    for (label, values) in &round_trips {
        let _ = writeln!(
            text,
            "latency, ok replies, round trip through the broker ({label}): {}",
            Percentiles::of(values.clone()).line()
        );
    }
    let _ = writeln!(
        text,
        "latency, ok replies, in packd (timing_us.total): {}",
        Percentiles::of(in_packd).line()
    );
    let _ = writeln!(
        text,
        "activations: {} done, {} failed; reply time {}",
        activation_times.len() - activation_failures.len().min(activation_times.len()),
        activation_failures.len(),
        Percentiles::of(activation_times.clone()).line()
    );
    let _ = writeln!(
        text,
        "  versions served: {}; briefs answered by another bundle than the last activated: \
         {version_mismatches}",
        versions_served
            .iter()
            .map(|(version, n)| format!("{version} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        text,
        "packd /proc (start = {:.0} s, after warm-up; end = after the last reply; {} samples):",
        start.at_s,
        samples.len()
    );
    // A leak grows as fast in the second half as in the first; an allocator settling does not.
    let middle = after_warmup
        .iter()
        .min_by(|a, b| {
            let mid = (start.at_s + end_sample.at_s) / 2.0;
            (a.at_s - mid).abs().total_cmp(&(b.at_s - mid).abs())
        })
        .copied()
        .unwrap_or(start);
    let _ = writeln!(
        text,
        "  VmRSS    start {}  end {}  max {}  (growth {:+.1} MiB, of which {:+.1} MiB in the \
         second half; least-squares trend {:+.2} MiB/min)",
        mib(start.rss),
        mib(end_sample.rss),
        mib(max.rss),
        rss_growth as f64 / MIB,
        (end_sample.rss as f64 - middle.rss as f64) / MIB,
        rss_slope_mib_per_min(&after_warmup)
    );
    let _ = writeln!(text, "  VmHWM    end {}", mib(end_sample.hwm));
    let _ = writeln!(
        text,
        "  fds      start {}  end {}  max {}",
        start.fds, end_sample.fds, max.fds
    );
    let _ = writeln!(
        text,
        "  threads  start {}  end {}  max {}",
        start.threads, end_sample.threads, max.threads
    );
    let _ = writeln!(
        text,
        "  outstanding briefs at a sample: max {}",
        max.outstanding
    );
    if !latest_stats.is_null() {
        let _ = writeln!(
            text,
            "packd counters: briefs {}, ok {}, dropped {}, duplicates {}",
            latest_stats["briefs"],
            latest_stats["ok"],
            latest_stats["dropped"],
            latest_stats["duplicates"]
        );
    }
    if !hostile_sent.is_empty() {
        let _ = writeln!(
            text,
            "hostile requests ({} a second): {}; packd state offline {offline_states} times",
            arguments.hostile_rate,
            hostile_sent
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !disconnects.is_empty() {
        let _ = writeln!(text, "client disconnects: {disconnects:?}");
    }
    if let Some(status) = exit {
        let _ = writeln!(text, "packd after SIGTERM: {status}");
    }
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(
        text,
        "load average at the end (1, 5, 15 min): {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if failures.is_empty() {
        let _ = writeln!(
            text,
            "verdict: PASS (every brief answered once and as expected; RSS growth {:+.1} MiB ≤ {} \
             MiB; fd growth {fd_growth:+} ≤ {})",
            rss_growth as f64 / MIB,
            arguments.rss_tolerance_mib,
            arguments.fd_tolerance
        );
    } else {
        let _ = writeln!(text, "verdict: FAIL");
        for failure in &failures {
            let _ = writeln!(text, "  - {failure}");
        }
        if let Some(packd) = &started {
            let log = fs::read_to_string(&packd.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let _ = writeln!(text, "packd log (last lines, newest first):");
            for line in tail {
                let _ = writeln!(text, "  | {line}");
            }
        }
    }
    if let Some(path) = &arguments.samples_csv {
        let mut csv = String::from("at_s,rss_bytes,hwm_bytes,fds,threads,outstanding\n");
        for s in &samples {
            let _ = writeln!(
                csv,
                "{:.1},{},{},{},{},{}",
                s.at_s, s.rss, s.hwm, s.fds, s.threads, s.outstanding
            );
        }
        fs::write(path, csv).with_context(|| format!("cannot write {}", path.display()))?;
    }

    Ok(Report {
        text,
        sent: sequence,
        answered: answered.len() as u64,
        lost,
        duplicates,
        statuses,
        wrong: wrong_count,
        version_mismatches,
        activations: (activation_times.len()
            - activation_failures.len().min(activation_times.len())) as u64,
        activation_failures: activation_failures.len() as u64,
        start,
        end: end_sample,
        max,
        packd_dropped,
        hostile_sent,
        offline_states,
        failures,
    })
}

#[allow(dead_code)] // tests/soak.rs includes this file for `run`, not for `main`
fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("soak: cannot start a runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(arguments)) {
        Ok(report) => {
            print!("{}", report.text);
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("soak: {error:#}");
            ExitCode::from(2)
        }
    }
}
