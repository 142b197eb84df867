//! `packctl brief`: one brief from the command line, printed as a table or JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use clap::Args;
use packd_wire::reply::{as_read, BriefAnswer, BriefReply, ErrorReply, ReadVia};
use packd_wire::topics::Topics;
use packd_wire::BriefRequest;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event};
use serde_json::Value;

use crate::remote::client_id;
use crate::Appliance;

#[derive(Args)]
pub(crate) struct BriefArguments {
    /// Appliance id (default: this configuration's device.id).
    #[arg(long, conflicts_with = "pool")]
    device: Option<String>,
    /// Send to a pool instead: any one live appliance of it answers.
    #[arg(long)]
    pool: Option<String>,
    /// Product category, in English or Chinese.
    #[arg(long)]
    product: String,
    /// Audience terms (repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    audience: Vec<String>,
    /// Mood, season or occasion terms.
    #[arg(long, value_delimiter = ',')]
    mood: Vec<String>,
    /// Palette family.
    #[arg(long)]
    palette: Option<String>,
    /// Free keywords.
    #[arg(long = "keyword", value_delimiter = ',')]
    keywords: Vec<String>,
    /// Brand colours (#RGB or #RRGGBB), up to 4.
    #[arg(long = "brand-color", value_delimiter = ',')]
    brand_colors: Vec<String>,
    /// Reference image file (JPEG, PNG or WebP).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Number of suggestions per list (1–10).
    #[arg(long, default_value_t = 3)]
    top_k: u32,
    /// Ask for a preview PNG and write it to this file.
    #[arg(long, value_name = "FILE")]
    preview: Option<PathBuf>,
    /// Words the preview sets large instead of the product (a packd extension to the API).
    #[arg(long)]
    headline: Option<String>,
    /// Deadline in milliseconds.
    #[arg(long)]
    deadline_ms: Option<u64>,
    /// Brief id (default: generated).
    #[arg(long)]
    id: Option<String>,
    /// Print the raw JSON reply.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for the reply.
    #[arg(long, default_value_t = 10)]
    timeout_s: u64,
}

/// Sends the brief and prints the reply.
pub(crate) async fn send_brief(
    appliance: &Appliance,
    arguments: BriefArguments,
) -> anyhow::Result<ExitCode> {
    let device = arguments
        .device
        .clone()
        .unwrap_or_else(|| appliance.device.clone());
    let topics = Topics::new(&appliance.prefix, &device, &[]);
    let topic = match &arguments.pool {
        Some(pool) => topics.pool_briefs(pool),
        None => topics.device_briefs.clone(),
    };
    let client_id = client_id();
    let id = arguments
        .id
        .clone()
        .unwrap_or_else(|| format!("{client_id}-1"));
    let brief = brief_body(&arguments, &id)?;
    let exchange = Exchange {
        client_id,
        topic,
        brief,
        correlation: Bytes::from(id.into_bytes()),
    };
    let payload = exchange
        .run(appliance, &device, Duration::from_secs(arguments.timeout_s))
        .await?;
    show_reply(&arguments, &payload)
}

/// The brief as the API defines it, from the command line (the reference image read and
/// encoded). A `json!` object: its keys serialise sorted, the bytes packctl has always sent.
fn brief_body(arguments: &BriefArguments, id: &str) -> anyhow::Result<Value> {
    let image = match &arguments.image {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        None => None,
    };
    let brief = BriefRequest {
        id: Some(id.to_string()),
        top_k: Some(arguments.top_k),
        render: Some(arguments.preview.is_some()),
        audience: arguments.audience.clone(),
        mood: arguments.mood.clone(),
        keywords: arguments.keywords.clone(),
        brand_colors: arguments.brand_colors.clone(),
        palette: arguments.palette.clone(),
        deadline_ms: arguments.deadline_ms,
        headline: arguments.headline.clone(),
        image,
        ..BriefRequest::new(arguments.product.clone())
    };
    Ok(serde_json::to_value(brief)?)
}

/// One brief and its reply over a connection of its own.
struct Exchange {
    client_id: String,
    /// Where the brief goes.
    topic: String,
    brief: Value,
    /// The brief's id, which the reply carries back as its Correlation Data.
    correlation: Bytes,
}

impl Exchange {
    /// Connects, sends the brief once the reply subscription is in place and waits up to
    /// `timeout` for the reply's payload.
    async fn run(
        &self,
        appliance: &Appliance,
        device: &str,
        timeout: Duration,
    ) -> anyhow::Result<Bytes> {
        let reply_topic = appliance.reply_topic(&self.client_id);
        let options = appliance.options(&self.client_id)?;
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        client
            .subscribe(reply_topic.clone(), QoS::AtLeastOnce)
            .await?;
        let exchange = async {
            let mut sent = false;
            loop {
                match eventloop.poll().await? {
                    Event::Incoming(Packet::SubAck(_)) if !sent => {
                        self.publish(&client, &reply_topic).await?;
                        sent = true;
                    }
                    Event::Incoming(Packet::Publish(publish)) => {
                        let matches = publish
                            .properties
                            .as_ref()
                            .and_then(|p| p.correlation_data.as_ref())
                            == Some(&self.correlation);
                        if matches {
                            return Ok::<Bytes, anyhow::Error>(publish.payload);
                        }
                    }
                    _ => {}
                }
            }
        };
        let payload = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => anyhow::bail!(
                "no reply on {reply_topic} within {} s (is packd running for device '{device}'?)",
                timeout.as_secs()
            ),
        };
        let _ = client.disconnect().await;
        Ok(payload)
    }

    /// Publishes the brief (QoS 1) with the reply topic and the Correlation Data.
    async fn publish(&self, client: &AsyncClient, reply_topic: &str) -> anyhow::Result<()> {
        let properties = PublishProperties {
            response_topic: Some(reply_topic.to_string()),
            correlation_data: Some(self.correlation.clone()),
            content_type: Some("application/json".into()),
            ..PublishProperties::default()
        };
        client
            .publish_with_properties(
                self.topic.clone(),
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&self.brief)?,
                properties,
            )
            .await?;
        Ok(())
    }
}

/// Writes the preview, prints the reply (a table, or the JSON as sent) and returns the exit
/// status: success for suggestions, failure for an error reply.
fn show_reply(arguments: &BriefArguments, payload: &[u8]) -> anyhow::Result<ExitCode> {
    // Kept as sent for --json (unknown fields and all), and read as the API's types.
    let raw: Value = serde_json::from_slice(payload)?;
    let answer: BriefAnswer = serde_json::from_value(raw.clone())
        .map_err(|error| anyhow::anyhow!("the reply does not follow the API: {error}"))?;
    if let (Some(path), BriefAnswer::Ok(reply)) = (&arguments.preview, &answer) {
        if let Some(png) = &reply.preview_png {
            std::fs::write(path, base64::engine::general_purpose::STANDARD.decode(png)?)?;
        }
    }
    if arguments.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else {
        match &answer {
            BriefAnswer::Ok(reply) => print_table(reply),
            BriefAnswer::Error(refused) => print_error(refused),
        }
        if let Some(path) = &arguments.preview {
            println!("preview written to {}", path.display());
        }
    }
    Ok(if matches!(answer, BriefAnswer::Ok(_)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_error(refused: &ErrorReply) {
    let error = &refused.error;
    println!("error {}: {}", error.code.as_str(), error.message);
    if let Some(field) = &error.field {
        println!("  field: {field}");
    }
    if let Some(retry) = refused.retry_after_ms {
        println!("  retry after {retry} ms");
    }
}

/// The suggestions as tables. Scores and boxes are printed from the values a JSON reader gets
/// ([`as_read`]), as packctl printed them when it read replies untyped.
fn print_table(reply: &BriefReply) {
    let timing = &reply.timing_us;
    println!(
        "{} answered by {} on {} with {} {} in {:.2} ms (queue {} us, decode {} us, infer {} us, post {} us)",
        reply.id.as_deref().unwrap_or(""),
        reply.device,
        reply.backend,
        reply.bundle.name,
        reply.bundle.version,
        timing.total as f64 / 1000.0,
        timing.queue,
        timing.decode,
        timing.infer,
        timing.post,
    );
    println!("\nStyles");
    for (rank, style) in reply.styles.iter().enumerate() {
        println!(
            "  {}. {:<24} {:<10} {:.2}",
            rank + 1,
            style.style,
            style.name_zh,
            as_read(style.score)
        );
    }
    print_palettes(reply);
    print_fonts_and_zones(reply);
    print_understood(reply);
    if !reply.warnings.is_empty() {
        println!("\nWarnings");
        for warning in &reply.warnings {
            println!("  {warning}");
        }
    }
}

/// How the appliance read each value, so an operator sees a guess as a guess.
fn print_understood(reply: &BriefReply) {
    if reply.understood.is_empty() {
        return;
    }
    println!("\nUnderstood");
    for entry in &reply.understood {
        let how = match (entry.via, entry.similarity) {
            (ReadVia::Encoder, Some(similarity)) => {
                format!("by meaning, similarity {similarity:.2}")
            }
            (via, _) => via.as_str().to_string(),
        };
        println!(
            "  {:<9} {:<24} -> {}  ({how})",
            entry.field,
            entry.text,
            entry.terms.join(", ")
        );
    }
}

fn print_palettes(reply: &BriefReply) {
    println!("\nPalettes");
    for (rank, palette) in reply.palettes.iter().enumerate() {
        println!(
            "  {}. {:<28} {:.2}  {}",
            rank + 1,
            palette.name,
            as_read(palette.score),
            palette.colors.join(" ")
        );
        let roles = &palette.roles;
        println!(
            "     background {}  primary {}  accent {}  text {}  contrast {:.1}:1",
            roles.background,
            roles.primary,
            roles.accent,
            roles.text,
            as_read(palette.contrast)
        );
    }
}

fn print_fonts_and_zones(reply: &BriefReply) {
    println!("\nFonts");
    for (rank, font) in reply.fonts.iter().enumerate() {
        println!(
            "  {}. {} / {}   (CJK: {} / {})  {:.2}",
            rank + 1,
            font.heading,
            font.body,
            font.heading_cjk,
            font.body_cjk,
            as_read(font.score)
        );
    }
    println!("\nLayout zones (x, y, w, h on the front panel)");
    let zones = &reply.layout.zones;
    for (element, zone) in [
        ("logo", &zones.logo),
        ("product", &zones.product),
        ("text", &zones.text),
    ] {
        println!(
            "  {:<8} {:.2} {:.2} {:.2} {:.2}",
            element,
            as_read(zone.x),
            as_read(zone.y),
            as_read(zone.w),
            as_read(zone.h)
        );
    }
}
