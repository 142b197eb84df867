//! Load generator: sends briefs through the broker and reports throughput and round-trip
//! percentiles, in a closed loop (`--concurrency` briefs outstanding) or an open loop (`--rate`
//! briefs/s, on schedule whatever the replies do). With `--compare-echo` it runs the same loads in
//! turn against an echo responder (examples/echo.rs, on a second device id) and against packd,
//! and prints both with packd's ratio to that floor of the broker path (issue 16).
//!
//! ```sh
//! cargo run --release --example loadgen -- --device orin-17 --count 2000 --concurrency 8
//! cargo run --release --example loadgen -- --device orin-17 --count 3000 --rate 1000
//! cargo run --release --example loadgen -- --device local --compare-echo --count 3000 --concurrency 8 \
//!     --rate 1000,500 --repeat 3
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use clap::Parser;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use serde::Deserialize;

#[allow(dead_code)] // its `main` and `Arguments` are the standalone example's
#[path = "echo.rs"]
mod echo;

/// Longest wait for the next reply before a run is declared stuck.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Open-loop rate of `--compare-echo` when `--rate` is not given.
const DEFAULT_RATE: f64 = 1000.0;

#[derive(Parser)]
struct Arguments {
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    url: String,
    #[arg(long, default_value = "packd/v1")]
    prefix: String,
    #[arg(long)]
    device: String,
    /// Briefs to send in all (in each measured run with --compare-echo).
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Briefs outstanding at once (closed loop).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Briefs per second, sent on schedule (open loop): instead of the closed loop, or with
    /// --compare-echo the rates of its open-loop runs (default 1000; several: 1000,500).
    #[arg(long, value_delimiter = ',')]
    rate: Vec<f64>,
    /// Briefs sent to each responder (8 outstanding) and not measured, before the first run.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Closed loop with 1 and with --concurrency outstanding and open loop at --rate, each against
    /// an echo responder and then packd; prints both and the ratios packd / echo.
    #[arg(long)]
    compare_echo: bool,
    /// Device id the echo responder answers on (default echo-floor-<pid>).
    #[arg(long)]
    echo_device: Option<String>,
    /// Pad the echo responder's replies to this many bytes (packd's are about 5 200), so the
    /// floor moves as many bytes per reply as packd does; default: its 105-byte reply.
    #[arg(long)]
    echo_reply_bytes: Option<usize>,
    /// Rounds of --compare-echo: latencies are pooled over rounds, briefs/s is their median.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

const PRODUCTS: [&str; 6] = ["beverage", "tea", "skincare", "snacks", "茶饮", "化妆品"];
const MOODS: [&str; 6] = ["fresh", "calm", "premium", "playful", "夏季限定", "国潮"];

fn brief(sequence: u64) -> Vec<u8> {
    let product = PRODUCTS[sequence as usize % PRODUCTS.len()];
    let mood = MOODS[(sequence as usize / PRODUCTS.len()) % MOODS.len()];
    format!(r##"{{"v":1,"id":"load-{sequence}","product":"{product}","mood":["{mood}"],"audience":["gen z"],"brand_colors":["#1A73E8"],"top_k":3}}"##).into_bytes()
}

fn percentile(sorted: &[u64], quantile: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// How briefs are offered.
#[derive(Clone, Copy)]
enum Load {
    /// `outstanding` briefs in flight; each reply lets the next brief go.
    Closed { outstanding: usize },
    /// A brief every 1/`rate` s whatever the replies do, as kiosks send them.
    Open { rate: f64 },
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Load::Closed { outstanding } => write!(f, "closed loop, {outstanding} outstanding"),
            Load::Open { rate } => write!(f, "open loop, {rate:.0} briefs/s"),
        }
    }
}

/// Correlation Data of a brief: its sequence number and when it was handed to the client (µs
/// since the requester's epoch). The reply carries its own send time back, so the open-loop
/// sender thread shares no table with the reader.
fn stamp(sequence: u64, sent_us: u64) -> Bytes {
    let mut data = Vec::with_capacity(16);
    data.extend_from_slice(&sequence.to_be_bytes());
    data.extend_from_slice(&sent_us.to_be_bytes());
    Bytes::from(data)
}

fn read_stamp(data: &[u8]) -> Option<(u64, u64)> {
    let sequence = u64::from_be_bytes(data.get(..8)?.try_into().ok()?);
    let sent_us = u64::from_be_bytes(data.get(8..16)?.try_into().ok()?);
    Some((sequence, sent_us))
}

/// Publishes briefs to one responder's brief topic.
#[derive(Clone)]
struct Outbox {
    client: AsyncClient,
    topic: String,
    reply_topic: String,
    epoch: Instant,
}

impl Outbox {
    fn request(&self, sequence: u64) -> (Vec<u8>, PublishProperties) {
        let payload = brief(sequence);
        // Stamped last, so building the brief is not counted in its round trip.
        let sent_us = self.epoch.elapsed().as_micros() as u64;
        let properties = PublishProperties {
            response_topic: Some(self.reply_topic.clone()),
            correlation_data: Some(stamp(sequence, sent_us)),
            ..Default::default()
        };
        (payload, properties)
    }

    async fn send(&self, sequence: u64) -> anyhow::Result<()> {
        let (payload, properties) = self.request(sequence);
        let topic = self.topic.clone();
        self.client
            .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, properties)
            .await?;
        Ok(())
    }

    /// For the open-loop thread, which has no runtime to await on.
    fn try_send(&self, sequence: u64) -> anyhow::Result<()> {
        let (payload, properties) = self.request(sequence);
        let topic = self.topic.clone();
        self.client.try_publish_with_properties(
            topic,
            QoS::AtLeastOnce,
            false,
            payload,
            properties,
        )?;
        Ok(())
    }
}

/// The parts of a reply the report reads; the rest is skipped without being built.
#[derive(Deserialize)]
struct ReplyHead {
    status: String,
    error: Option<ErrorHead>,
    timing_us: Option<TimingHead>,
}

#[derive(Deserialize)]
struct ErrorHead {
    code: String,
}

#[derive(Deserialize)]
struct TimingHead {
    total: Option<u64>,
}

/// Replies of one run, matched to its briefs by sequence number.
struct Tally {
    first: u64,
    answered: Vec<bool>,
    round_trips: Vec<u64>,
    in_service: Vec<u64>,
    statuses: BTreeMap<String, usize>,
    reply_bytes: usize,
    strays: usize,
}

impl Tally {
    fn new(first: u64, briefs: usize) -> Tally {
        Tally {
            first,
            answered: vec![false; briefs],
            round_trips: Vec::with_capacity(briefs),
            in_service: Vec::with_capacity(briefs),
            statuses: BTreeMap::new(),
            reply_bytes: 0,
            strays: 0,
        }
    }

    fn done(&self) -> bool {
        self.round_trips.len() == self.answered.len()
    }

    /// Records the round trip of the first reply to one of this run's briefs; false for
    /// anything else (a duplicate, or a reply to another run), which is only counted.
    fn accept(&mut self, publish: &Publish, now_us: u64) -> bool {
        let stamp = publish
            .properties
            .as_ref()
            .and_then(|p| p.correlation_data.as_deref())
            .and_then(read_stamp);
        let slot = stamp.and_then(|(sequence, sent_us)| {
            let index = usize::try_from(sequence.checked_sub(self.first)?).ok()?;
            let answered = self.answered.get_mut(index).filter(|seen| !**seen)?;
            *answered = true;
            Some(sent_us)
        });
        let Some(sent_us) = slot else {
            self.strays += 1;
            return false;
        };
        self.round_trips.push(now_us.saturating_sub(sent_us));
        self.reply_bytes += publish.payload.len();
        true
    }

    /// Status and packd's own timing; the closed loop calls it after sending the next brief,
    /// so reading a large reply does not hold the loop up.
    fn read(&mut self, payload: &[u8]) {
        let status = match serde_json::from_slice::<ReplyHead>(payload) {
            Ok(ReplyHead {
                error: Some(error), ..
            }) => error.code,
            Ok(reply) => {
                if let Some(total) = reply.timing_us.and_then(|timing| timing.total) {
                    self.in_service.push(total);
                }
                reply.status
            }
            Err(_) => "unreadable".to_string(),
        };
        *self.statuses.entry(status).or_default() += 1;
    }

    fn finish(mut self, load: Load, elapsed: Duration) -> Run {
        self.round_trips.sort_unstable();
        self.in_service.sort_unstable();
        Run {
            load,
            elapsed,
            send_rate: None,
            round_trips: self.round_trips,
            in_service: self.in_service,
            statuses: self.statuses,
            reply_bytes: self.reply_bytes,
            strays: self.strays,
        }
    }
}

/// What one run measured; latencies in µs, sorted.
struct Run {
    load: Load,
    /// From the first brief sent to the last reply read.
    elapsed: Duration,
    /// Briefs/s the open-loop sender achieved.
    send_rate: Option<f64>,
    round_trips: Vec<u64>,
    in_service: Vec<u64>,
    statuses: BTreeMap<String, usize>,
    reply_bytes: usize,
    strays: usize,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.round_trips.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, responder: &str) {
        let briefs = self.round_trips.len();
        let sent = match self.send_rate {
            Some(rate) => format!(" (sent at {rate:.0} briefs/s)"),
            None => String::new(),
        };
        println!(
            "[{responder}] {}: {briefs} briefs in {:.2} s, {:.0} briefs/s{sent}; statuses {:?}; replies {} B on average; {} stray",
            self.load,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.statuses,
            self.reply_bytes / briefs.max(1),
            self.strays,
        );
        print_percentiles("round trip", &self.round_trips);
        if !self.in_service.is_empty() {
            print_percentiles("in service", &self.in_service);
        }
    }
}

fn print_percentiles(what: &str, sorted: &[u64]) {
    println!(
        "    {what} µs: p50 {} p90 {} p99 {} max {}",
        percentile(sorted, 0.5),
        percentile(sorted, 0.9),
        percentile(sorted, 0.99),
        sorted.last().copied().unwrap_or(0)
    );
}

/// Sends `briefs` briefs at `rate` on a thread of its own: std's sleep wakes within tens of
/// microseconds, where tokio's timer rounds up to the next millisecond, a whole period at 1 000
/// briefs/s. Brief i is due at i / rate from the start; one sent late is followed at once by
/// those already due, so the rate holds on average. Returns the time from first to last send.
fn spawn_schedule(
    outbox: Outbox,
    first: u64,
    briefs: usize,
    rate: f64,
) -> std::io::Result<JoinHandle<anyhow::Result<Duration>>> {
    std::thread::Builder::new()
        .name("schedule".to_string())
        .spawn(move || {
            let period = Duration::from_secs_f64(1.0 / rate);
            let start = Instant::now();
            for i in 0..briefs {
                let due = start + period.mul_f64(i as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                outbox.try_send(first + i as u64)?;
            }
            Ok(start.elapsed())
        })
}

/// One client that sends briefs and reads their replies.
struct Requester {
    client: AsyncClient,
    eventloop: EventLoop,
    prefix: String,
    reply_topic: String,
    epoch: Instant,
    /// Unique across the process: packd answers a repeated Correlation Data from its duplicate
    /// cache, which would flatter every run after the first.
    next_sequence: u64,
}

impl Requester {
    async fn connect(url: &str, prefix: &str) -> anyhow::Result<Requester> {
        let client_id = format!("loadgen-{}", std::process::id());
        let options = echo::client_options(url, &client_id)?;
        let (client, mut eventloop) = AsyncClient::new(options, 4096);
        let reply_topic = format!("{prefix}/replies/{client_id}");
        client
            .subscribe(reply_topic.clone(), QoS::AtLeastOnce)
            .await?;
        // Briefs sent before the subscription is granted could have their replies dropped.
        loop {
            let event = tokio::time::timeout(REPLY_TIMEOUT, eventloop.poll())
                .await
                .context("no SUBACK from the broker")??;
            if let Event::Incoming(Packet::SubAck(_)) = event {
                break;
            }
        }
        Ok(Requester {
            client,
            eventloop,
            prefix: prefix.to_string(),
            reply_topic,
            epoch: Instant::now(),
            next_sequence: 0,
        })
    }

    fn outbox(&self, device: &str) -> Outbox {
        Outbox {
            client: self.client.clone(),
            topic: packd_wire::Topics::new(&self.prefix, device, &[]).device_briefs,
            reply_topic: self.reply_topic.clone(),
            epoch: self.epoch,
        }
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    async fn next_reply(&mut self) -> anyhow::Result<Publish> {
        loop {
            let event = tokio::time::timeout(REPLY_TIMEOUT, self.eventloop.poll())
                .await
                .map_err(|_| anyhow!("no reply for {} s", REPLY_TIMEOUT.as_secs()))??;
            if let Event::Incoming(Packet::Publish(publish)) = event {
                return Ok(publish);
            }
        }
    }

    /// Offers `briefs` briefs to `device` under `load` and waits for every reply.
    async fn run(&mut self, device: &str, load: Load, briefs: usize) -> anyhow::Result<Run> {
        let outbox = self.outbox(device);
        let mut tally = Tally::new(self.next_sequence, briefs);
        self.next_sequence += briefs as u64;
        let started = Instant::now();
        let send_rate = match load {
            Load::Closed { outstanding } => {
                let closed = self.closed(&outbox, &mut tally, outstanding).await;
                closed.map(|()| None)
            }
            Load::Open { rate } => self.open(outbox, &mut tally, rate).await.map(Some),
        }
        .with_context(|| format!("{load} against device {device}"))?;
        let mut run = tally.finish(load, started.elapsed());
        run.send_rate = send_rate;
        Ok(run)
    }

    async fn closed(
        &mut self,
        outbox: &Outbox,
        tally: &mut Tally,
        outstanding: usize,
    ) -> anyhow::Result<()> {
        let briefs = tally.answered.len() as u64;
        let mut next = tally.first;
        let end = tally.first + briefs;
        while next < end && next - tally.first < outstanding as u64 {
            outbox.send(next).await?;
            next += 1;
        }
        while !tally.done() {
            let reply = self.next_reply().await?;
            if !tally.accept(&reply, self.now_us()) {
                continue;
            }
            if next < end {
                outbox.send(next).await?;
                next += 1;
            }
            tally.read(&reply.payload);
        }
        Ok(())
    }

    /// Returns the rate the sender achieved.
    async fn open(&mut self, outbox: Outbox, tally: &mut Tally, rate: f64) -> anyhow::Result<f64> {
        let briefs = tally.answered.len();
        let sender = spawn_schedule(outbox, tally.first, briefs, rate)?;
        while !tally.done() {
            let reply = match self.next_reply().await {
                Ok(reply) => reply,
                // A sender that stopped early explains the silence better than the timeout.
                Err(error) if sender.is_finished() => {
                    sender.join().map_err(|_| anyhow!("sender panicked"))??;
                    return Err(error);
                }
                Err(error) => return Err(error),
            };
            if tally.accept(&reply, self.now_us()) {
                tally.read(&reply.payload);
            }
        }
        let sending = sender.join().map_err(|_| anyhow!("sender panicked"))??;
        Ok(briefs.saturating_sub(1) as f64 / sending.as_secs_f64())
    }
}

/// A responder's runs of one load over all rounds.
struct Pooled {
    /// Median over rounds.
    per_second: f64,
    round_trips: Vec<u64>,
    not_ok: usize,
}

impl Pooled {
    fn of(runs: &[Run]) -> Pooled {
        let mut rates: Vec<f64> = runs.iter().map(Run::per_second).collect();
        rates.sort_by(f64::total_cmp);
        let mut round_trips: Vec<u64> = runs
            .iter()
            .flat_map(|run| run.round_trips.clone())
            .collect();
        round_trips.sort_unstable();
        let not_ok = runs
            .iter()
            .flat_map(|run| &run.statuses)
            .filter(|(status, _)| status.as_str() != "ok")
            .map(|(_, count)| count)
            .sum();
        Pooled {
            per_second: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            round_trips,
            not_ok,
        }
    }
}

/// The comparison as a Markdown table, ready for docs/performance.md.
fn print_comparison(results: &[(Load, [Vec<Run>; 2])]) {
    println!("| load | figure | echo | packd | packd / echo |");
    println!("| --- | --- | --- | --- | --- |");
    for (load, [echo, packd]) in results {
        let (echo, packd) = (Pooled::of(echo), Pooled::of(packd));
        let row = |figure: &str, floor: f64, measured: f64| {
            println!(
                "| {load} | {figure} | {floor:.0} | {measured:.0} | {:.2} |",
                measured / floor
            );
        };
        if let Load::Closed { .. } = load {
            row("briefs/s", echo.per_second, packd.per_second);
        }
        for (name, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
            let floor = percentile(&echo.round_trips, quantile) as f64;
            let measured = percentile(&packd.round_trips, quantile) as f64;
            row(&format!("round trip {name} µs"), floor, measured);
        }
        if echo.not_ok + packd.not_ok > 0 {
            println!(
                "| {load} | replies not ok | {} | {} | |",
                echo.not_ok, packd.not_ok
            );
        }
    }
}

/// The same loads against the echo floor and packd, alternating, in one run.
async fn compare(arguments: &Arguments, requester: &mut Requester) -> anyhow::Result<()> {
    let echo_device = arguments
        .echo_device
        .clone()
        .unwrap_or_else(|| format!("echo-floor-{}", std::process::id()));
    let reply = echo::reply_of_size(arguments.echo_reply_bytes);
    let echo = echo::start(&arguments.url, &arguments.prefix, &echo_device, reply)?;
    let responders = [echo_device.as_str(), arguments.device.as_str()];
    let names = ["echo", "packd"];
    for device in responders {
        let warmup = Load::Closed { outstanding: 8 };
        requester.run(device, warmup, arguments.warmup).await?;
    }
    let rates = match arguments.rate.as_slice() {
        [] => &[DEFAULT_RATE][..],
        rates => rates,
    };
    let closed = [1, arguments.concurrency].map(|outstanding| Load::Closed { outstanding });
    let open = rates.iter().map(|&rate| Load::Open { rate });
    let mut results: Vec<(Load, [Vec<Run>; 2])> = closed
        .into_iter()
        .chain(open)
        .map(|load| (load, [vec![], vec![]]))
        .collect();
    for _round in 0..arguments.repeat {
        for (load, runs) in &mut results {
            for (index, device) in responders.iter().enumerate() {
                let run = requester.run(device, *load, arguments.count).await?;
                run.print(names[index]);
                runs[index].push(run);
            }
        }
    }
    let counts = echo.stop()?;
    println!("echo responder: {counts:?}\n");
    print_comparison(&results);
    Ok(())
}

// One thread polls the connection and sends: the same path for every responder, with no
// hand-offs between runtime threads inside the measurement.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    if arguments.count == 0 || arguments.concurrency == 0 || arguments.repeat == 0 {
        anyhow::bail!("--count, --concurrency and --repeat must be at least 1");
    }
    if let Some(rate) = arguments
        .rate
        .iter()
        .find(|rate| !(**rate > 0.0 && rate.is_finite()))
    {
        anyhow::bail!("--rate {rate}: a positive number of briefs per second");
    }
    let mut requester = Requester::connect(&arguments.url, &arguments.prefix).await?;
    if arguments.compare_echo {
        compare(&arguments, &mut requester).await?;
    } else {
        let load = match arguments.rate.as_slice() {
            [] => Load::Closed {
                outstanding: arguments.concurrency,
            },
            [rate] => Load::Open { rate: *rate },
            _ => anyhow::bail!("one --rate at a time without --compare-echo"),
        };
        if arguments.warmup > 0 {
            let warmup = Load::Closed { outstanding: 8 };
            requester
                .run(&arguments.device, warmup, arguments.warmup)
                .await?;
        }
        let run = requester
            .run(&arguments.device, load, arguments.count)
            .await?;
        run.print(&arguments.device);
    }
    let _ = requester.client.disconnect().await;
    Ok(())
}
