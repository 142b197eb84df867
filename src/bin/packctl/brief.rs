//! `packctl brief`: one brief from the command line, printed as a table or JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use clap::Args;
use packd::config::Config;
use packd::transport::{self, Topics};
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event};
use serde_json::{json, Value};

#[derive(Args)]
pub struct BriefArguments {
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

pub async fn send_brief(config: &Config, arguments: BriefArguments) -> anyhow::Result<ExitCode> {
    let device = arguments
        .device
        .clone()
        .unwrap_or_else(|| config.device.id.clone());
    let topics = Topics::new(&config.mqtt.prefix, &device, &[]);
    let topic = match &arguments.pool {
        Some(pool) => topics.pool_briefs(pool),
        None => topics.device_briefs.clone(),
    };
    let client_id = format!("packctl-{}-{:08x}", std::process::id(), fastrand::u32(..));
    let reply_topic = super::session::reply_topic(config, &client_id)?;
    let id = arguments
        .id
        .clone()
        .unwrap_or_else(|| format!("{client_id}-1"));
    let mut brief = json!({
        "v": 1,
        "id": id,
        "product": arguments.product,
        "top_k": arguments.top_k,
        "render": arguments.preview.is_some(),
    });
    let fields = [
        ("audience", &arguments.audience),
        ("mood", &arguments.mood),
        ("keywords", &arguments.keywords),
        ("brand_colors", &arguments.brand_colors),
    ];
    for (field, values) in fields {
        if !values.is_empty() {
            brief[field] = json!(values);
        }
    }
    if let Some(palette) = &arguments.palette {
        brief["palette"] = json!(palette);
    }
    if let Some(deadline) = arguments.deadline_ms {
        brief["deadline_ms"] = json!(deadline);
    }
    if let Some(path) = &arguments.image {
        let bytes =
            std::fs::read(path).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        brief["image"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    }

    let options = transport::base_options(&config.mqtt, &client_id)?;
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    client
        .subscribe(reply_topic.clone(), QoS::AtLeastOnce)
        .await?;
    let correlation = Bytes::from(id.clone().into_bytes());
    let exchange = async {
        let mut sent = false;
        loop {
            match eventloop.poll().await? {
                Event::Incoming(Packet::SubAck(_)) if !sent => {
                    let properties = PublishProperties {
                        response_topic: Some(reply_topic.clone()),
                        correlation_data: Some(correlation.clone()),
                        content_type: Some("application/json".into()),
                        ..PublishProperties::default()
                    };
                    client
                        .publish_with_properties(
                            topic.clone(),
                            QoS::AtLeastOnce,
                            false,
                            serde_json::to_vec(&brief)?,
                            properties,
                        )
                        .await?;
                    sent = true;
                }
                Event::Incoming(Packet::Publish(publish)) => {
                    let matches = publish
                        .properties
                        .as_ref()
                        .and_then(|p| p.correlation_data.as_ref())
                        == Some(&correlation);
                    if matches {
                        return Ok::<Bytes, anyhow::Error>(publish.payload);
                    }
                }
                _ => {}
            }
        }
    };
    let payload =
        match tokio::time::timeout(Duration::from_secs(arguments.timeout_s), exchange).await {
            Ok(result) => result?,
            Err(_) => anyhow::bail!(
                "no reply on {reply_topic} within {} s (is packd running for device '{device}'?)",
                arguments.timeout_s
            ),
        };
    let _ = client.disconnect().await;
    let reply: Value = serde_json::from_slice(&payload)?;
    if let (Some(path), Some(png)) = (&arguments.preview, reply["preview_png"].as_str()) {
        std::fs::write(path, base64::engine::general_purpose::STANDARD.decode(png)?)?;
    }
    if arguments.json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
    } else {
        print_table(&reply);
        if let Some(path) = &arguments.preview {
            println!("preview written to {}", path.display());
        }
    }
    Ok(if reply["status"] == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_table(reply: &Value) {
    let text = |value: &Value| value.as_str().unwrap_or("").to_string();
    let score = |value: &Value| value["score"].as_f64().unwrap_or(0.0);
    if reply["status"] != "ok" {
        let error = &reply["error"];
        println!(
            "error {}: {}",
            text(&error["code"]),
            text(&error["message"])
        );
        if let Some(field) = error["field"].as_str() {
            println!("  field: {field}");
        }
        if let Some(retry) = reply["retry_after_ms"].as_u64() {
            println!("  retry after {retry} ms");
        }
        return;
    }
    let timing = &reply["timing_us"];
    println!(
        "{} answered by {} on {} with {} {} in {:.2} ms (queue {} us, decode {} us, infer {} us, post {} us)",
        text(&reply["id"]),
        text(&reply["device"]),
        text(&reply["backend"]),
        text(&reply["bundle"]["name"]),
        text(&reply["bundle"]["version"]),
        timing["total"].as_f64().unwrap_or(0.0) / 1000.0,
        timing["queue"],
        timing["decode"],
        timing["infer"],
        timing["post"],
    );
    println!("\nStyles");
    for (rank, style) in reply["styles"].as_array().into_iter().flatten().enumerate() {
        println!(
            "  {}. {:<24} {:<10} {:.2}",
            rank + 1,
            text(&style["style"]),
            text(&style["name_zh"]),
            score(style)
        );
    }
    println!("\nPalettes");
    for (rank, palette) in reply["palettes"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let colours: Vec<String> = palette["colors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        println!(
            "  {}. {:<28} {:.2}  {}",
            rank + 1,
            text(&palette["name"]),
            score(palette),
            colours.join(" ")
        );
        let roles = &palette["roles"];
        println!(
            "     background {}  primary {}  accent {}  text {}  contrast {:.1}:1",
            text(&roles["background"]),
            text(&roles["primary"]),
            text(&roles["accent"]),
            text(&roles["text"]),
            palette["contrast"].as_f64().unwrap_or(0.0)
        );
    }
    println!("\nFonts");
    for (rank, font) in reply["fonts"].as_array().into_iter().flatten().enumerate() {
        println!(
            "  {}. {} / {}   (CJK: {} / {})  {:.2}",
            rank + 1,
            text(&font["heading"]),
            text(&font["body"]),
            text(&font["heading_cjk"]),
            text(&font["body_cjk"]),
            score(font)
        );
    }
    println!("\nLayout zones (x, y, w, h on the front panel)");
    for element in ["logo", "product", "text"] {
        let zone = &reply["layout"]["zones"][element];
        println!(
            "  {:<8} {:.2} {:.2} {:.2} {:.2}",
            element,
            zone["x"].as_f64().unwrap_or(0.0),
            zone["y"].as_f64().unwrap_or(0.0),
            zone["w"].as_f64().unwrap_or(0.0),
            zone["h"].as_f64().unwrap_or(0.0)
        );
    }
    let warnings: Vec<String> = reply["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    if !warnings.is_empty() {
        println!("\nWarnings");
        for warning in warnings {
            println!("  {warning}");
        }
    }
}
