//! The hostile side of the soak (`--hostile-rate`): a second client that sends, in rotation,
//! every kind of request the hostile review of issue 13 found dangerous, while the soak's normal
//! briefs go on. The soak's verdict then says whether normal briefs were still answered, how far
//! packd's memory rose, and whether packd ever left the broker (its retained state going
//! `offline`).
//!
//! Lives in a folder without `main.rs` so that cargo does not take it for an example of its own;
//! `soak.rs` includes it with `#[path]`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};
use tokio_util::sync::CancellationToken;

/// The largest brief packd parses (the contract's 6 MiB), less room for the envelope.
const BIG_BRIEF_BYTES: usize = 6 * 1024 * 1024 - 1024;

/// One kind of hostile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hostile {
    /// A 3.1.1-style `reply_to` holding U+0001: mosquitto drops a client that publishes it.
    ReplyToControl,
    /// A `reply_to` holding the non-character U+FFFF.
    ReplyToNonCharacter,
    /// A Response Topic naming this appliance's own `bundles/rollback` (the confused deputy).
    ReplyToBundleCommand,
    /// A Response Topic outside the reply subtree (another client's topic space).
    ReplyOutsidePrefix,
    /// 6 MiB of unknown fields: a JSON tree of it costs about 32 times the payload.
    UnknownFields,
    /// 64 KiB of Correlation Data and a 1 KiB reply topic (valid, so answered and cached), to
    /// fill the reply cache.
    HugeRoute,
    /// A lossless WebP of 40 Mpx in a couple of KiB.
    ImageBomb,
    /// An `id` with a newline, to forge a log line.
    ForgedLogLine,
}

impl Hostile {
    const ALL: [Hostile; 8] = [
        Hostile::ReplyToControl,
        Hostile::ReplyToNonCharacter,
        Hostile::ReplyToBundleCommand,
        Hostile::ReplyOutsidePrefix,
        Hostile::UnknownFields,
        Hostile::HugeRoute,
        Hostile::ImageBomb,
        Hostile::ForgedLogLine,
    ];

    /// Whether packd must refuse the request's way back (and so count it as dropped).
    pub fn has_no_valid_route(self) -> bool {
        matches!(
            self,
            Hostile::ReplyToControl
                | Hostile::ReplyToNonCharacter
                | Hostile::ReplyToBundleCommand
                | Hostile::ReplyOutsidePrefix
        )
    }

    /// The name the report uses.
    pub fn label(self) -> &'static str {
        match self {
            Hostile::ReplyToControl => "reply_to U+0001",
            Hostile::ReplyToNonCharacter => "reply_to U+FFFF",
            Hostile::ReplyToBundleCommand => "reply to bundles/rollback",
            Hostile::ReplyOutsidePrefix => "reply outside the prefix",
            Hostile::UnknownFields => "6 MiB unknown fields",
            Hostile::HugeRoute => "64 KiB correlation + 1 KiB topic",
            Hostile::ImageBomb => "40 Mpx WebP bomb",
            Hostile::ForgedLogLine => "id with a newline",
        }
    }
}

/// Where the hostile client sends and what it sends.
pub struct HostileMix {
    prefix: String,
    device: String,
    /// Base64 of the WebP bomb, made once.
    bomb: String,
    /// The 6 MiB brief, made once.
    big: Bytes,
}

impl HostileMix {
    /// Builds the payloads that are expensive to make (the bomb, the 6 MiB brief) once.
    pub fn new(prefix: &str, device: &str) -> anyhow::Result<HostileMix> {
        use base64::Engine as _;
        Ok(HostileMix {
            prefix: prefix.to_string(),
            device: device.to_string(),
            bomb: base64::engine::general_purpose::STANDARD.encode(webp_bomb()?),
            big: Bytes::from(unknown_fields_brief()),
        })
    }

    /// Request number `n` of the rotation: its kind, payload and properties.
    fn request(&self, n: u64) -> (Hostile, Bytes, PublishProperties) {
        let kind = Hostile::ALL[(n % Hostile::ALL.len() as u64) as usize];
        let prefix = &self.prefix;
        let replies = format!("{prefix}/replies/hostile-{}", std::process::id());
        let route = |topic: String, correlation: Vec<u8>| PublishProperties {
            response_topic: Some(topic),
            correlation_data: Some(Bytes::from(correlation)),
            ..PublishProperties::default()
        };
        let tea = |extra: &str| format!(r#"{{"id":"hostile-{n}","product":"tea"{extra}}}"#);
        let (payload, properties) = match kind {
            Hostile::ReplyToControl => (
                tea(&format!(r#","reply_to":"{replies}/\u0001""#)),
                PublishProperties::default(),
            ),
            Hostile::ReplyToNonCharacter => (
                tea(&format!(r#","reply_to":"{replies}/\uffff""#)),
                PublishProperties::default(),
            ),
            Hostile::ReplyToBundleCommand => (
                tea(""),
                route(
                    format!("{prefix}/devices/{}/bundles/rollback", self.device),
                    n.to_string().into_bytes(),
                ),
            ),
            Hostile::ReplyOutsidePrefix => (
                tea(""),
                route(format!("elsewhere/{n}"), n.to_string().into_bytes()),
            ),
            Hostile::UnknownFields => {
                return (kind, self.big.clone(), route(replies, n.to_string().into()))
            }
            Hostile::HugeRoute => {
                // As long as a reply topic may be (1024 bytes), so packd answers and keeps it.
                let mut topic = format!("{replies}/");
                topic.extend(std::iter::repeat_n('t', 1024 - topic.len()));
                let mut correlation = n.to_be_bytes().to_vec();
                correlation.resize(64 * 1024, b'c');
                (tea(""), route(topic, correlation))
            }
            Hostile::ImageBomb => (
                tea(&format!(r#","image":"{}""#, self.bomb)),
                route(replies, n.to_string().into_bytes()),
            ),
            Hostile::ForgedLogLine => (
                format!(
                    r#"{{"id":"hostile-{n}\nJan 01 00:00:00 orin packd[1]: bundle activated","product":"tea"}}"#
                ),
                route(replies, n.to_string().into_bytes()),
            ),
        };
        (kind, Bytes::from(payload.into_bytes()), properties)
    }
}

/// Sends the rotation at `rate` requests a second from a client of its own until `stop`
/// fires; returns how many of each kind went out.
pub async fn run(
    mix: HostileMix,
    host: String,
    port: u16,
    rate: f64,
    stop: CancellationToken,
) -> anyhow::Result<BTreeMap<Hostile, u64>> {
    let id = format!("hostile-{}-{}", std::process::id(), fastrand::u32(..));
    let mut options = MqttOptions::new(id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(Some(32 * 1024 * 1024));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    // Nobody reads the hostile replies (there should be none on the poisoned routes anyway);
    // the event loop only has to run.
    let poller = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let topic = format!("{}/devices/{}/briefs", mix.prefix, mix.device);
    let mut sent = BTreeMap::new();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut ticker = tokio::time::interval(period);
    for n in 0.. {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let (kind, payload, properties) = mix.request(n);
        client
            .publish_with_properties(topic.clone(), QoS::AtLeastOnce, false, payload, properties)
            .await?;
        *sent.entry(kind).or_insert(0) += 1;
    }
    poller.abort();
    Ok(sent)
}

/// A 6 MiB brief of one known field and millions of small unknown values.
fn unknown_fields_brief() -> Vec<u8> {
    let mut body = String::with_capacity(BIG_BRIEF_BYTES + 64);
    body.push_str(r#"{"id":"hostile-big","product":"tea","junk":["#);
    while body.len() < BIG_BRIEF_BYTES {
        body.push_str("0,");
    }
    body.push_str("0]}");
    body.into_bytes()
}

/// A lossless WebP of 6400 × 6250 pixels of one colour: a few KiB that decode to 40 Mpx.
fn webp_bomb() -> anyhow::Result<Vec<u8>> {
    let (width, height) = (6400u32, 6250u32);
    let pixels = vec![0x7Fu8; width as usize * height as usize * 3];
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out).encode(
        &pixels,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}
