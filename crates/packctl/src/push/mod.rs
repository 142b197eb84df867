//! `bundle push`: an archive sent to an appliance or a pool in chunks, resumed over new
//! connections where one is lost and where an appliance already holds some of it, then committed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::IsTerminal as _;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use packd_bundle::transfer::{MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use packd_wire::bundle::{self as wire, BundleErrorCode, BundleReply, BundleStatus};
use serde_json::Value;
use tokio::time::Instant;

use crate::answer::Answer;
use crate::local::{self, human_bytes, ArchiveIdentity};
use crate::print::{print_json, print_results};
use crate::ranges::{clamp_ranges, complement, format_ranges, normalise};
use crate::remote::{client_id, shortfall, TargetArguments};
use crate::session::{Expect, Lost, Session, Target, Wait};
use crate::Appliance;

mod prepared;
pub(crate) use prepared::{push_to_device, Prepared, Settings};

/// Connections lost during one push before it gives up.
const MAX_RECONNECTS: u32 = 20;

#[derive(Args)]
pub(crate) struct PushArguments {
    /// Bundle archive to push (from `packctl bundle build`); its signature is read from
    /// FILE.sig.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    target: TargetArguments,
    /// Chunk size in bytes (one MQTT message each).
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024,
          value_parser = clap::value_parser!(u64).range(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE))]
    chunk_size: u64,
    /// Activate the bundle once installed (the default).
    #[arg(long, overrides_with = "no_activate")]
    activate: bool,
    /// Install the bundle without activating it.
    #[arg(long)]
    no_activate: bool,
    /// Push a bundle that has no FILE.sig (appliances accept it only with allow_unsigned).
    #[arg(long)]
    unsigned: bool,
    /// With --pool: the number of appliances to wait for (default: until no new reply for
    /// --quiet-s after the first one); fewer answering is a failure.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    expect: Option<u64>,
    /// Seconds to wait for the replies to each request (a commit unpacks, verifies and
    /// self-tests the bundle), for the broker to acknowledge the chunks, and to reconnect.
    #[arg(long, value_name = "S", default_value_t = 120)]
    timeout_s: u64,
    /// With --pool and no --expect: seconds without a new begin reply after which no more are
    /// awaited.
    #[arg(long, value_name = "S", default_value_t = 3)]
    quiet_s: u64,
    /// Commits answered with missing_chunks are followed by a resend and a new commit at most
    /// this many times.
    #[arg(long, value_name = "N", default_value_t = 5)]
    commit_retries: u32,
    /// Print the final replies as JSON (one object for --device, an array for --pool).
    #[arg(long)]
    json: bool,
    /// A delta archive of FILE (`packctl bundle delta`, signed): sent instead when the device
    /// holds its base bundle; the full FILE otherwise, or when the device refuses the delta.
    /// With --device only.
    #[arg(long, value_name = "DELTA")]
    delta: Option<PathBuf>,
}

/// Where one appliance stands in a push.
#[derive(Debug, Clone)]
enum DeviceState {
    /// Answered `begin`: these chunk ranges still have to reach it before a commit.
    Ready { missing: Vec<(u64, u64)> },
    /// Finished, for better or worse: its last answer.
    Done(Answer),
}

/// How often an unanswered `begin` to named appliances is sent again.
const BEGIN_RESEND_EVERY: Duration = Duration::from_secs(2);

/// One push: the archive, where it goes, and where each appliance stands.
struct Push {
    file: File,
    path: PathBuf,
    size: u64,
    chunk_size: u64,
    chunk_count: u64,
    transfer: String,
    begin: Value,
    activate: bool,
    target: Target,
    prefix: String,
    expect: Option<usize>,
    wait: Wait,
    commit_retries: u32,
    /// Appliances heard from, once the first `begin` was answered.
    devices: Option<BTreeMap<String, DeviceState>>,
    bytes_sent: u64,
    sending: Duration,
    shortfall: Option<String>,
    /// The caller's progress bar (a rollout's table row); without one, each send draws its own.
    bar: Option<ProgressBar>,
}

impl PushArguments {
    fn settings(&self) -> Settings {
        Settings {
            chunk_size: self.chunk_size,
            activate: !self.no_activate,
            expect: self.expect.map(|count| count as usize),
            wait: Wait {
                timeout: Duration::from_secs(self.timeout_s.max(1)),
                quiet: Duration::from_secs(self.quiet_s),
            },
            commit_retries: self.commit_retries,
        }
    }
}

/// Why an attempt at a push stopped: a lost connection is resumed over a new one.
enum PushError {
    Lost(Lost),
    Fatal(anyhow::Error),
}

impl From<Lost> for PushError {
    fn from(lost: Lost) -> PushError {
        PushError::Lost(lost)
    }
}

impl From<anyhow::Error> for PushError {
    fn from(error: anyhow::Error) -> PushError {
        PushError::Fatal(error)
    }
}

/// `bundle push`.
pub(crate) async fn push(
    appliance: &Appliance,
    arguments: PushArguments,
) -> anyhow::Result<ExitCode> {
    let target = arguments.target.target()?;
    let full = local::verified_identity(&arguments.file)?;
    let wait = arguments.settings().wait;
    let delta = match &arguments.delta {
        Some(path) => crate::delta::choose(appliance, &full, path, &target, wait)
            .await?
            .map(|identity| (path, identity)),
        None => None,
    };
    let (file, identity) = match &delta {
        Some((path, identity)) => (path.as_path(), identity),
        None => (arguments.file.as_path(), &full),
    };
    let (mut push, mut elapsed) =
        push_file(appliance, &arguments, target.clone(), file, identity).await?;
    if delta.is_some() {
        if let Some(reason) = crate::delta::refused(push.results().values()) {
            eprintln!("packctl: the device refused the delta ({reason}); pushing the full archive");
            let sent = push.bytes_sent;
            let (again, more) =
                push_file(appliance, &arguments, target, &arguments.file, &full).await?;
            push = again;
            push.bytes_sent += sent;
            elapsed += more;
        }
    }
    report(&push, arguments.json, elapsed)
}

/// One archive (`identity`, already verified) pushed to the target, to its end; returns the push
/// and its time from connect.
async fn push_file(
    appliance: &Appliance,
    arguments: &PushArguments,
    target: Target,
    file: &std::path::Path,
    identity: &ArchiveIdentity,
) -> anyhow::Result<(Push, Duration)> {
    let begin = begin_request(file, arguments.chunk_size, arguments.unsigned, identity)?;
    let settings = arguments.settings();
    let mut push = Push::new(appliance, file, &settings, target, &begin)?;
    eprintln!(
        "pushing {} {} ({}, {} chunks of {}) to {}, transfer {}",
        identity.name,
        identity.version,
        human_bytes(push.size),
        push.chunk_count,
        human_bytes(push.chunk_size),
        push.target.describe(),
        push.transfer
    );
    // Throughput is measured from here: the checks above are local work, not the transfer.
    let started = Instant::now();
    transfer(appliance, &mut push).await?;
    Ok((push, started.elapsed()))
}

/// The `begin` request for an archive: what it is and, unless `--unsigned`, its signature from
/// FILE.sig, which must be for this very archive.
fn begin_request(
    path: &std::path::Path,
    chunk_size: u64,
    unsigned: bool,
    identity: &ArchiveIdentity,
) -> anyhow::Result<wire::Begin> {
    let mut begin = wire::Begin {
        transfer: identity.sha256[..32].to_string(),
        name: identity.name.clone(),
        version: identity.version.clone(),
        size: identity.size,
        sha256: identity.sha256.clone(),
        chunk_size,
        signature: None,
        key_id: None,
        allow_downgrade: false,
    };
    if unsigned {
        return Ok(begin);
    }
    let signature = local::read_signature(path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} has no signature file {}: sign it with `packctl bundle sign`, \
             or push with --unsigned (accepted only where allow_unsigned = true)",
            path.display(),
            local::signature_path(path).display()
        )
    })?;
    if let Some(reason) = signature.mismatch(identity) {
        anyhow::bail!(
            "{} does not belong to {}: {reason}",
            local::signature_path(path).display(),
            path.display()
        );
    }
    begin.signature = Some(signature.signature);
    begin.key_id = Some(signature.key_id);
    // Signed, so it must be sent as signed (absent on the wire means false).
    begin.allow_downgrade = signature.allow_downgrade;
    Ok(begin)
}

/// Runs the push to its end, over a new connection whenever one is lost.
async fn transfer(appliance: &Appliance, push: &mut Push) -> anyhow::Result<()> {
    let client_id = client_id();
    let mut session = Session::connect(appliance, &client_id).await?;
    let mut reconnects = 0;
    loop {
        match push.run(&mut session).await {
            Ok(()) => break,
            Err(PushError::Fatal(error)) => return Err(error),
            Err(PushError::Lost(lost)) => {
                reconnects += 1;
                if reconnects > MAX_RECONNECTS {
                    anyhow::bail!("{lost}; gave up after {MAX_RECONNECTS} reconnections");
                }
                eprintln!("packctl: {lost}; reconnecting to resume");
                session = reconnect(appliance, &client_id, push.wait.timeout).await?;
            }
        }
    }
    session.disconnect().await;
    Ok(())
}

/// Prints each appliance's final answer and the throughput; returns the exit status.
fn report(push: &Push, json: bool, elapsed: Duration) -> anyhow::Result<ExitCode> {
    let results = push.results();
    if json {
        print_json(&push.target, &results)?;
    } else {
        print_results(&results);
    }
    if let Some(message) = &push.shortfall {
        eprintln!("packctl: {message}");
    }
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let sending = push.sending.as_secs_f64();
    eprintln!(
        "sent {} bytes in {:.2} s from connect to the last commit reply: {:.2} MB/s \
         (chunk sending alone {:.2} s, {:.2} MB/s)",
        push.bytes_sent,
        seconds,
        push.bytes_sent as f64 / 1e6 / seconds,
        sending,
        if sending > 0.0 {
            push.bytes_sent as f64 / 1e6 / sending
        } else {
            0.0
        }
    );
    let failed = results.values().any(Answer::failed);
    Ok(if failed || push.shortfall.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Opens a new session after a lost one, retrying until `window` has passed.
async fn reconnect(
    appliance: &Appliance,
    client_id: &str,
    window: Duration,
) -> anyhow::Result<Session> {
    let deadline = Instant::now() + window;
    let mut backoff = Duration::from_millis(250);
    loop {
        tokio::time::sleep(backoff).await;
        match Session::connect(appliance, client_id).await {
            Ok(session) => return Ok(session),
            Err(error) if Instant::now() + backoff >= deadline => {
                return Err(
                    error.context(format!("could not reconnect within {} s", window.as_secs()))
                )
            }
            Err(_) => backoff = (backoff * 2).min(Duration::from_secs(5)),
        }
    }
}

impl Push {
    /// A push of `begin`'s archive, before anything is sent.
    fn new(
        appliance: &Appliance,
        path: &std::path::Path,
        settings: &Settings,
        target: Target,
        begin: &wire::Begin,
    ) -> anyhow::Result<Push> {
        let file = File::open(path).with_context(|| path.display().to_string())?;
        Ok(Push {
            file,
            path: path.to_path_buf(),
            size: begin.size,
            chunk_size: settings.chunk_size,
            chunk_count: begin.size.div_ceil(settings.chunk_size),
            transfer: begin.transfer.clone(),
            begin: serde_json::to_value(begin)?,
            activate: settings.activate,
            expect: match target {
                Target::Pool(_) => settings.expect,
                Target::Device(_) => None,
            },
            target,
            prefix: appliance.prefix.clone(),
            wait: settings.wait,
            commit_retries: settings.commit_retries,
            devices: None,
            bytes_sent: 0,
            sending: Duration::ZERO,
            shortfall: None,
            bar: None,
        })
    }

    /// One attempt over one connection: begin (for whoever is not finished), the missing
    /// chunks, commits until every appliance has finished or the retries are spent.
    async fn run(&mut self, session: &mut Session) -> Result<(), PushError> {
        self.begin(session).await?;
        self.activate_installed(session).await?;
        for round in 0..=self.commit_retries {
            let sends = self.chunk_sends();
            if !sends.is_empty() {
                let label = if round == 0 { "sending" } else { "resending" };
                self.send_chunks(session, &sends, label).await?;
            }
            let ready = self.ready_devices();
            if ready.is_empty() {
                return Ok(());
            }
            self.commit(session, &ready).await?;
            if self.ready_devices().is_empty() {
                return Ok(());
            }
        }
        let retries = self.commit_retries;
        for (device, state) in self.devices.iter_mut().flatten() {
            if let DeviceState::Ready { missing } = state {
                *state = DeviceState::Done(Answer::verdict(
                    device,
                    "missing_chunks",
                    format!(
                        "chunks {} still missing after {retries} resends",
                        format_ranges(missing)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn ready_devices(&self) -> BTreeSet<String> {
        self.devices
            .iter()
            .flatten()
            .filter(|(_, state)| matches!(state, DeviceState::Ready { .. }))
            .map(|(device, _)| device.clone())
            .collect()
    }

    fn device_topic(&self, device: &str, command: &str) -> String {
        Target::Device(device.to_string()).topic(&self.prefix, command)
    }

    /// Sends `begin` and, to named appliances, sends it again every few seconds until each has
    /// answered or the wait is over: `begin` is idempotent, and one published while an
    /// appliance is still (re)subscribing after a broker restart is simply lost.
    async fn begin_until_answered(
        &self,
        session: &mut Session,
        topics: &[String],
        correlation: &Bytes,
        expect: &Expect,
    ) -> Result<BTreeMap<String, Answer>, Lost> {
        let Expect::Devices(devices) = expect else {
            session
                .request_with(topics, &self.begin, correlation)
                .await?;
            return session.collect(correlation, expect, self.wait).await;
        };
        let deadline = Instant::now() + self.wait.timeout;
        let mut replies = BTreeMap::new();
        loop {
            session
                .request_with(topics, &self.begin, correlation)
                .await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = Wait {
                timeout: remaining.min(BEGIN_RESEND_EVERY),
                ..self.wait
            };
            replies.extend(session.collect(correlation, expect, attempt).await?);
            if devices.iter().all(|device| replies.contains_key(device))
                || Instant::now() >= deadline
            {
                return Ok(replies);
            }
        }
    }

    /// `begin`: to the target the first time (which, for a pool, says who is in it), then to
    /// each unfinished appliance's own topic, so one that already committed is left alone.
    async fn begin(&mut self, session: &mut Session) -> Result<(), PushError> {
        let (topics, expect) = match &self.devices {
            None => (
                vec![self.target.topic(&self.prefix, "begin")],
                match &self.target {
                    Target::Device(device) => Expect::Devices(BTreeSet::from([device.clone()])),
                    Target::Pool(_) => Expect::Pool { count: self.expect },
                },
            ),
            Some(_) => {
                let pending = self.ready_devices();
                if pending.is_empty() {
                    return Ok(());
                }
                (
                    pending
                        .iter()
                        .map(|device| self.device_topic(device, "begin"))
                        .collect(),
                    Expect::Devices(pending),
                )
            }
        };
        let correlation = session.correlation();
        let replies = self
            .begin_until_answered(session, &topics, &correlation, &expect)
            .await?;
        let first = self.devices.is_none();
        if first && replies.is_empty() {
            return Err(PushError::Fatal(anyhow::anyhow!(
                "no reply to begin from {} within {} s (is packd running and connected to the \
                 same broker?)",
                self.target.describe(),
                self.wait.timeout.as_secs()
            )));
        }
        if first {
            self.shortfall = shortfall(&expect, &replies);
        }
        let chunk_count = self.chunk_count;
        let devices = self.devices.get_or_insert_with(BTreeMap::new);
        if let Expect::Devices(expected) = &expect {
            for device in expected {
                if !replies.contains_key(device) {
                    devices.insert(
                        device.clone(),
                        DeviceState::Done(Answer::verdict(
                            device,
                            "no_reply",
                            format!("no reply to begin within {} s", self.wait.timeout.as_secs()),
                        )),
                    );
                }
            }
        }
        for (device, answer) in replies {
            let state = after_begin(chunk_count, &device, answer);
            devices.insert(device, state);
        }
        Ok(())
    }

    /// Which chunks go to which topic: for a pool with several appliances lacking chunks, the
    /// union of what they lack once on the pool topic; otherwise each appliance's own.
    fn chunk_sends(&self) -> Vec<(Target, Vec<(u64, u64)>)> {
        let lacking: Vec<(&String, &Vec<(u64, u64)>)> = self
            .devices
            .iter()
            .flatten()
            .filter_map(|(device, state)| match state {
                DeviceState::Ready { missing } if !missing.is_empty() => Some((device, missing)),
                _ => None,
            })
            .collect();
        match &self.target {
            Target::Pool(_) if lacking.len() > 1 => {
                let all: Vec<(u64, u64)> = lacking
                    .iter()
                    .flat_map(|(_, missing)| missing.iter().copied())
                    .collect();
                vec![(self.target.clone(), normalise(all))]
            }
            Target::Device(_) => lacking
                .into_iter()
                .map(|(_, missing)| (self.target.clone(), missing.clone()))
                .collect(),
            Target::Pool(_) => lacking
                .into_iter()
                .map(|(device, missing)| (Target::Device(device.clone()), missing.clone()))
                .collect(),
        }
    }

    async fn send_chunks(
        &mut self,
        session: &mut Session,
        sends: &[(Target, Vec<(u64, u64)>)],
        label: &str,
    ) -> Result<(), PushError> {
        let started = Instant::now();
        // Earlier requests are settled first, so every acknowledgement from here on is a chunk's.
        session.wait_acked(self.wait.timeout, |_| {}).await?;
        let base = session.acked();
        let chunk_bytes = |ranges: &[(u64, u64)]| -> u64 {
            ranges
                .iter()
                .flat_map(|&(start, end)| start..end)
                .map(|seq| self.chunk_len(seq))
                .sum()
        };
        let total: u64 = sends.iter().map(|(_, ranges)| chunk_bytes(ranges)).sum();
        let bar = match &self.bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(0);
                bar.clone()
            }
            None => progress_bar(total, label),
        };
        let chunk_size = self.chunk_size;
        let position = |acked: u64| ((acked - base) * chunk_size).min(total);
        let mut buffer = vec![0u8; self.chunk_size as usize];
        for (target, ranges) in sends {
            for &(start, end) in ranges {
                for seq in start..end {
                    let length = self.chunk_len(seq) as usize;
                    let data = &mut buffer[..length];
                    self.file
                        .read_exact_at(data, seq * self.chunk_size)
                        .map_err(|error| {
                            anyhow::anyhow!(
                                "{}: cannot read chunk {seq}: {error}",
                                self.path.display()
                            )
                        })?;
                    let topic =
                        target.topic(&self.prefix, &format!("chunk/{}/{seq}", self.transfer));
                    session
                        .publish_raw(topic, Bytes::copy_from_slice(data))
                        .await?;
                    self.bytes_sent += length as u64;
                    bar.set_position(position(session.acked()));
                }
            }
        }
        let result = session
            .wait_acked(self.wait.timeout, |acked| bar.set_position(position(acked)))
            .await;
        if self.bar.is_none() {
            bar.finish_and_clear();
        }
        self.sending += started.elapsed();
        Ok(result?)
    }

    fn chunk_len(&self, seq: u64) -> u64 {
        self.chunk_size
            .min(self.size.saturating_sub(seq * self.chunk_size))
    }

    /// Appliances that answered `begin` with `installed` hold this very archive already (from an
    /// earlier push, or this one when its commit reply was lost to a broker restart): nothing is
    /// sent, and unless `--no-activate` they are asked to `activate` it, so a push always ends
    /// with the bundle serving.
    async fn activate_installed(&mut self, session: &mut Session) -> Result<(), PushError> {
        let installed: BTreeSet<String> = self
            .devices
            .iter()
            .flatten()
            .filter(|(_, state)| {
                matches!(state, DeviceState::Done(answer)
                    if answer.reply().map(BundleReply::status) == Some(BundleStatus::Installed))
            })
            .map(|(device, _)| device.clone())
            .collect();
        if !self.activate || installed.is_empty() {
            return Ok(());
        }
        let topics: Vec<String> = installed
            .iter()
            .map(|device| self.device_topic(device, "activate"))
            .collect();
        let body = serde_json::to_value(wire::BundleName {
            name: self.begin["name"].as_str().unwrap_or_default().to_owned(),
            version: self.begin["version"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
        .map_err(anyhow::Error::from)?;
        let correlation = session.correlation();
        session.request_with(&topics, &body, &correlation).await?;
        let replies = session
            .collect(&correlation, &Expect::Devices(installed.clone()), self.wait)
            .await?;
        let timeout = self.wait.timeout.as_secs();
        let devices = self.devices.get_or_insert_with(BTreeMap::new);
        for device in installed {
            let answer = replies.get(&device).cloned().unwrap_or_else(|| {
                Answer::verdict(
                    &device,
                    "no_reply",
                    format!("no reply to activate within {timeout} s"),
                )
            });
            devices.insert(device, DeviceState::Done(answer));
        }
        Ok(())
    }

    /// `commit` to each ready appliance's own topic (one Correlation Data for the round).
    async fn commit(
        &mut self,
        session: &mut Session,
        ready: &BTreeSet<String>,
    ) -> Result<(), PushError> {
        let topics: Vec<String> = ready
            .iter()
            .map(|device| self.device_topic(device, "commit"))
            .collect();
        let body = serde_json::to_value(wire::Commit {
            activate: self.activate,
            transfer: self.transfer.clone(),
        })
        .map_err(anyhow::Error::from)?;
        let correlation = session.correlation();
        session.request_with(&topics, &body, &correlation).await?;
        let expect = Expect::Devices(ready.clone());
        let replies = session.collect(&correlation, &expect, self.wait).await?;
        let chunk_count = self.chunk_count;
        let timeout = self.wait.timeout.as_secs();
        let devices = self.devices.get_or_insert_with(BTreeMap::new);
        for device in ready {
            let state = match replies.get(device) {
                Some(answer) => match answer.reply() {
                    Some(BundleReply::Error(refused))
                        if refused.error.code == BundleErrorCode::MissingChunks =>
                    {
                        let missing = refused.missing.as_deref().unwrap_or_default();
                        DeviceState::Ready {
                            missing: clamp_ranges(missing, chunk_count),
                        }
                    }
                    _ => DeviceState::Done(answer.clone()),
                },
                None => DeviceState::Done(Answer::verdict(
                    device,
                    "no_reply",
                    format!("no reply to commit within {timeout} s"),
                )),
            };
            devices.insert(device.clone(), state);
        }
        Ok(())
    }

    /// Each appliance's final answer.
    fn results(&self) -> BTreeMap<String, Answer> {
        self.devices
            .iter()
            .flatten()
            .map(|(device, state)| {
                let answer = match state {
                    DeviceState::Done(answer) => answer.clone(),
                    DeviceState::Ready { .. } => {
                        Answer::verdict(device, "incomplete", "the push did not finish")
                    }
                };
                (device.clone(), answer)
            })
            .collect()
    }
}

/// Where an appliance stands after its `begin` answer: ready, lacking the chunks it does not
/// hold yet, or done when it refused.
fn after_begin(chunk_count: u64, device: &str, answer: Answer) -> DeviceState {
    let have = match answer.reply() {
        Some(BundleReply::Ready(ready)) => clamp_ranges(&ready.have, chunk_count),
        _ => return DeviceState::Done(answer),
    };
    let held: u64 = have.iter().map(|(start, end)| end - start).sum();
    if held > 0 {
        // Tells the operator (and the resume tests) that the chunks already on the appliance
        // are not sent again.
        eprintln!(
            "{device} already holds {held} of {chunk_count} chunks; sending the other {}",
            chunk_count - held
        );
    }
    DeviceState::Ready {
        missing: complement(&have, chunk_count),
    }
}

/// A byte progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(total: u64, label: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar
}
