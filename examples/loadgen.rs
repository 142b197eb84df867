//! Load generator: sends briefs to a packd through the broker and reports throughput and
//! round-trip percentiles.
//!
//! `cargo run --release --example loadgen -- --url mqtt://127.0.0.1:1883 --device orin-17 --count 2000 --concurrency 8`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

#[derive(Parser)]
struct Arguments {
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    url: String,
    #[arg(long, default_value = "packd/v1")]
    prefix: String,
    #[arg(long)]
    device: String,
    /// Briefs to send in all.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Briefs outstanding at once (closed loop).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

const PRODUCTS: [&str; 6] = ["beverage", "tea", "skincare", "snacks", "茶饮", "化妆品"];
const MOODS: [&str; 6] = ["fresh", "calm", "premium", "playful", "夏季限定", "国潮"];

fn brief(sequence: usize) -> Vec<u8> {
    let product = PRODUCTS[sequence % PRODUCTS.len()];
    let mood = MOODS[(sequence / PRODUCTS.len()) % MOODS.len()];
    format!(r##"{{"v":1,"id":"load-{sequence}","product":"{product}","mood":["{mood}"],"audience":["gen z"],"brand_colors":["#1A73E8"],"top_k":3}}"##).into_bytes()
}

fn percentile(sorted: &[u64], quantile: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let address = packd::transport::parse_url(&arguments.url)?;
    let client_id = format!("loadgen-{}", std::process::id());
    let mut options = MqttOptions::new(&client_id, address.host, address.port);
    options.set_keep_alive(Duration::from_secs(30));
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    let (client, mut eventloop) = AsyncClient::new(options, 4096);
    let reply_topic = format!("{}/replies/{client_id}", arguments.prefix);
    let brief_topic = format!("{}/devices/{}/briefs", arguments.prefix, arguments.device);
    client
        .subscribe(reply_topic.clone(), QoS::AtLeastOnce)
        .await?;

    let mut sent_at: HashMap<Bytes, Instant> = HashMap::new();
    let mut round_trips: Vec<u64> = Vec::with_capacity(arguments.count);
    let mut server_totals: Vec<u64> = Vec::with_capacity(arguments.count);
    let mut statuses: HashMap<String, usize> = HashMap::new();
    let mut next = 0usize;
    let mut started = None;
    let send = |sequence: usize| {
        let client = client.clone();
        let topic = brief_topic.clone();
        let reply_topic = reply_topic.clone();
        async move {
            let correlation = Bytes::from(sequence.to_string());
            let properties = PublishProperties {
                response_topic: Some(reply_topic),
                correlation_data: Some(correlation.clone()),
                ..Default::default()
            };
            client
                .publish_with_properties(
                    topic,
                    QoS::AtLeastOnce,
                    false,
                    brief(sequence),
                    properties,
                )
                .await
                .map(|_| correlation)
        }
    };
    while round_trips.len() < arguments.count {
        match tokio::time::timeout(Duration::from_secs(30), eventloop.poll()).await {
            Err(_) => anyhow::bail!("no progress for 30 s after {} replies", round_trips.len()),
            Ok(event) => match event? {
                Event::Incoming(Packet::SubAck(_)) => {
                    started = Some(Instant::now());
                    while next < arguments.concurrency.min(arguments.count) {
                        sent_at.insert(send(next).await?, Instant::now());
                        next += 1;
                    }
                }
                Event::Incoming(Packet::Publish(publish)) => {
                    let Some(correlation) = publish
                        .properties
                        .as_ref()
                        .and_then(|p| p.correlation_data.clone())
                    else {
                        continue;
                    };
                    let Some(at) = sent_at.remove(&correlation) else {
                        continue;
                    };
                    round_trips.push(at.elapsed().as_micros() as u64);
                    let reply: serde_json::Value = serde_json::from_slice(&publish.payload)?;
                    let status = if reply["status"] == "ok" {
                        "ok".to_string()
                    } else {
                        reply["error"]["code"].as_str().unwrap_or("?").to_string()
                    };
                    *statuses.entry(status).or_default() += 1;
                    if let Some(total) = reply["timing_us"]["total"].as_u64() {
                        server_totals.push(total);
                    }
                    if next < arguments.count {
                        sent_at.insert(send(next).await?, Instant::now());
                        next += 1;
                    }
                }
                _ => {}
            },
        }
    }
    let elapsed = started.map(|at| at.elapsed()).unwrap_or_default();
    round_trips.sort_unstable();
    server_totals.sort_unstable();
    println!(
        "{} briefs in {:.2} s: {:.0} briefs/s (concurrency {})",
        arguments.count,
        elapsed.as_secs_f64(),
        arguments.count as f64 / elapsed.as_secs_f64(),
        arguments.concurrency
    );
    println!("statuses: {statuses:?}");
    println!(
        "round trip us: p50 {} p90 {} p99 {} max {}",
        percentile(&round_trips, 0.5),
        percentile(&round_trips, 0.9),
        percentile(&round_trips, 0.99),
        round_trips.last().copied().unwrap_or(0)
    );
    println!(
        "in-service us: p50 {} p90 {} p99 {} max {}",
        percentile(&server_totals, 0.5),
        percentile(&server_totals, 0.9),
        percentile(&server_totals, 0.99),
        server_totals.last().copied().unwrap_or(0)
    );
    let _ = client.disconnect().await;
    Ok(())
}
