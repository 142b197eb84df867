//! `packctl rollout`: a bundle pushed to many appliances in waves, each wave soaked before the
//! next, stopped and rolled back past a failure threshold, activating only inside a maintenance
//! window; a journal file lets `rollout resume` continue after packctl was killed.
//!
//! It uses only what the contract already has: the bundle commands, and each device's retained
//! `state` and periodic `stats`. docs/fleet.md describes the model.

mod drive;
mod health;
mod journal;
mod monitor;
mod plan;
mod table;
mod window;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use packd_bundle::transfer::{MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use packd_wire::reply::BundleRef;

use crate::local;
use crate::push::Prepared;
use crate::session::check_topic_level;
use crate::Appliance;
use journal::{Header, Journal};
use monitor::Monitor;
use plan::{ErrorRate, MaxFailed, Waves, Window};

/// `packctl rollout …`.
#[derive(Subcommand)]
pub(crate) enum RolloutCommand {
    /// Start a rollout of a signed archive to devices and pools, wave by wave.
    Start(Box<StartArguments>),
    /// Continue a rollout from its journal (after packctl was stopped or killed).
    Resume {
        /// The rollout's journal file.
        journal: PathBuf,
    },
    /// Show where each device of a rollout stands, from its journal (contacts no device; safe
    /// while another packctl runs the rollout).
    Status {
        /// The rollout's journal file.
        journal: PathBuf,
    },
    /// Stop a rollout and return every device it activated to its previous bundle.
    Abort {
        /// The rollout's journal file.
        journal: PathBuf,
        /// Seconds to wait for each reply.
        #[arg(long, value_name = "S", default_value_t = 120)]
        timeout_s: u64,
    },
}

#[derive(Args)]
pub(crate) struct StartArguments {
    /// Signed bundle archive (FILE.sig next to it).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// A device to update (repeatable).
    #[arg(long, value_name = "ID")]
    device: Vec<String>,
    /// Every member of a pool, as their retained state names them (repeatable).
    #[arg(long, value_name = "NAME")]
    pool: Vec<String>,
    /// Cumulative wave sizes, counts or shares of the devices (sorted by id); devices the last
    /// entry leaves out form one more wave.
    #[arg(long, default_value = "1,10%,50%,100%")]
    waves: Waves,
    /// Seconds each device is watched after activating before the next wave may start.
    #[arg(long, value_name = "S", default_value_t = 600)]
    soak_s: u64,
    /// Failed devices tolerated, a count or a share of the devices attempted so far; past it
    /// the rollout stops and rolls back what it activated.
    #[arg(long, value_name = "N|P%", default_value = "0")]
    max_failed: MaxFailed,
    /// Share of a device's briefs during its soak that may fail through the appliance's fault
    /// (internal, no_model, overloaded, expired).
    #[arg(long, value_name = "P%", default_value = "5%")]
    max_error_rate: ErrorRate,
    /// Briefs a device must see during its soak before its error rate is judged.
    #[arg(long, value_name = "N", default_value_t = 20)]
    min_briefs: u64,
    /// Activate only between these times of day (HH:MM-HH:MM, may wrap past midnight), in
    /// --tz; transfers happen at any time.
    #[arg(long, value_name = "HH:MM-HH:MM")]
    window: Option<Window>,
    /// The devices' time zone (an IANA name such as Europe/Berlin; default: this machine's).
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// A device in another zone than --tz (repeatable).
    #[arg(long = "device-tz", value_name = "ID=ZONE")]
    device_tz: Vec<String>,
    /// A signed delta of FILE (`packctl bundle delta`): sent to each device that holds its base,
    /// FILE to the others.
    #[arg(long, value_name = "DELTA")]
    delta: Option<PathBuf>,
    /// Print the devices of each wave and stop: nothing is sent and no journal is written.
    #[arg(long)]
    dry_run: bool,
    /// Journal file (default: rollout-NAME-VERSION.jsonl here).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Seconds to wait for each reply (a commit unpacks, verifies and self-tests).
    #[arg(long, value_name = "S", default_value_t = 120)]
    timeout_s: u64,
    /// Chunk size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024,
          value_parser = clap::value_parser!(u64).range(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE))]
    chunk_size: u64,
}

/// Runs a `rollout` command.
pub(crate) async fn run(
    appliance: &Appliance,
    command: RolloutCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        RolloutCommand::Start(arguments) => start(appliance, *arguments).await,
        RolloutCommand::Resume { journal } => {
            let journal = Journal::open(&journal)?;
            let archive = same_archive(&journal.header)?;
            let delta = journal.header.delta.clone();
            let delta = prepared_delta(&archive, delta.as_deref(), journal.header.chunk_size)?;
            let monitor = Monitor::start(appliance).await?;
            drive::run(appliance, journal, monitor, archive, delta).await
        }
        RolloutCommand::Status { journal } => status(&journal),
        RolloutCommand::Abort { journal, timeout_s } => {
            let mut journal = Journal::open(&journal)?;
            let archive = same_archive(&journal.header)?;
            journal.header.timeout_s = timeout_s;
            if journal.aborted.is_none() {
                journal.abort("aborted by the operator")?;
            }
            let monitor = Monitor::start(appliance).await?;
            drive::run(appliance, journal, monitor, archive, None).await
        }
    }
}

async fn start(appliance: &Appliance, arguments: StartArguments) -> anyhow::Result<ExitCode> {
    if local::read_signature(&arguments.file)?.is_none() {
        anyhow::bail!(
            "{} has no signature file {}: a rollout sends only signed bundles (packctl bundle sign)",
            arguments.file.display(),
            local::signature_path(&arguments.file).display()
        );
    }
    let archive = Prepared::new(&arguments.file, arguments.chunk_size)?;
    let delta = match &arguments.delta {
        Some(path) => Some(std::path::absolute(path)?),
        None => None,
    };
    let delta = prepared_delta(&archive, delta.as_deref(), arguments.chunk_size)?;
    let tz = window::default_zone(arguments.tz.as_deref())?;
    let device_tz = window::device_zones(&arguments.device_tz)?;
    // The same watch finds the pools' members now and checks the devices' health later.
    let monitor = Monitor::start(appliance).await?;
    let targets = match targets(&monitor, &arguments.device, &arguments.pool) {
        Ok(targets) => targets,
        Err(error) => {
            monitor.stop().await;
            return Err(error);
        }
    };
    let begin = archive.begin();
    let header = Header {
        format: journal::FORMAT,
        archive: std::path::absolute(&arguments.file)?,
        sha256: begin.sha256.clone(),
        delta: delta.as_ref().map(|delta| delta.path.clone()),
        bundle: BundleRef {
            name: begin.name.clone(),
            version: begin.version.clone(),
        },
        waves: arguments.waves.assign(&targets),
        soak_s: arguments.soak_s,
        max_failed: arguments.max_failed,
        max_error_rate: arguments.max_error_rate,
        min_briefs: arguments.min_briefs,
        window: arguments.window,
        tz,
        device_tz,
        timeout_s: arguments.timeout_s,
        chunk_size: arguments.chunk_size,
    };
    if arguments.dry_run {
        for (index, wave) in header.waves.iter().enumerate() {
            println!("wave {}: {}", index + 1, wave.join(", "));
        }
        monitor.stop().await;
        return Ok(ExitCode::SUCCESS);
    }
    let path = arguments.journal.clone().unwrap_or_else(|| {
        let bundle = &header.bundle;
        PathBuf::from(format!("rollout-{}-{}.jsonl", bundle.name, bundle.version))
    });
    let journal = Journal::create(&path, header)?;
    eprintln!(
        "rollout of {} {} to {} devices in waves {}, journal {}",
        journal.header.bundle.name,
        journal.header.bundle.version,
        targets.len(),
        arguments.waves,
        path.display()
    );
    drive::run(appliance, journal, monitor, archive, delta).await
}

/// `--delta`, checked against the full archive.
fn prepared_delta(
    archive: &Prepared,
    path: Option<&std::path::Path>,
    chunk_size: u64,
) -> anyhow::Result<Option<drive::Delta>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let begin = archive.begin();
    let identity = local::ArchiveIdentity {
        name: begin.name.clone(),
        version: begin.version.clone(),
        size: begin.size,
        sha256: begin.sha256.clone(),
    };
    let (info, delta) = crate::delta::matching_delta(&identity, path)?;
    Ok(Some(drive::Delta {
        path: path.to_path_buf(),
        archive: Prepared::verified(path, chunk_size, &delta)?,
        info,
    }))
}

/// `rollout status`: one line per device, wave by wave, as the journal has it.
pub(crate) fn status(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let journal = Journal::read(path)?;
    let header = &journal.header;
    println!(
        "rollout of {} {} ({})",
        header.bundle.name,
        header.bundle.version,
        match &journal.aborted {
            Some(reason) => format!("aborted: {reason}"),
            None => "not aborted".to_string(),
        }
    );
    println!("WAVE  {:24}  {:12}  DETAIL", "DEVICE", "STEP");
    for (index, wave) in header.waves.iter().enumerate() {
        for device in wave {
            let record = journal.devices.get(device);
            let step = journal.step(device);
            let detail = record.and_then(|r| r.reason.as_deref()).unwrap_or_default();
            println!(
                "{:<4}  {device:24}  {:12}  {detail}",
                index + 1,
                step.as_str()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--device` ids plus every member of each `--pool`, sorted and without repeats.
fn targets(monitor: &Monitor, devices: &[String], pools: &[String]) -> anyhow::Result<Vec<String>> {
    let mut targets = std::collections::BTreeSet::new();
    for device in devices {
        check_topic_level("device", device)?;
        targets.insert(device.clone());
    }
    for pool in pools {
        check_topic_level("pool", pool)?;
        let members = monitor.pool_members(pool);
        if members.is_empty() {
            anyhow::bail!("no device's retained state names pool '{pool}'");
        }
        targets.extend(members);
    }
    if targets.is_empty() {
        anyhow::bail!("nothing to roll out to: give --device or --pool");
    }
    Ok(targets.into_iter().collect())
}

/// The journal's archive, verified again; refused when it is not the one the rollout started
/// with.
fn same_archive(header: &Header) -> anyhow::Result<Prepared> {
    // The digest first: cheaper than the verification, and the reason a changed file fails.
    let (digest, _) = local::digest_of(&header.archive)?;
    if hex::encode(digest) != header.sha256 {
        anyhow::bail!(
            "{} changed since the rollout started (its SHA-256 is not the journal's)",
            header.archive.display()
        );
    }
    Prepared::new(&header.archive, header.chunk_size)
}
