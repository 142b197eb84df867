//! Echo responder (issue 16): subscribes to a device's brief topic, as packd does, and answers
//! every brief at once with a fixed reply, without reading it. Measured with the same load as
//! packd, it is the floor of the broker path: the broker, the client library, QoS 1 both ways and
//! the loopback network, with no work in between.
//!
//! ```sh
//! cargo run --release --example echo -- --url mqtt://127.0.0.1:1883 --device echo
//! cargo run --release --example loadgen -- --device echo --count 2000 --concurrency 8
//! ```
//!
//! `loadgen --compare-echo` starts one on a thread of its own (examples/loadgen.rs includes this
//! file), and tests/echo.rs checks that it answers as the contract routes replies.

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use clap::Parser;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};

/// Shaped like the contract's brief reply, so clients read it as an answer, but fixed and small:
/// the point is what answering costs when nothing is computed.
pub const REPLY: &[u8] = br#"{"v":1,"status":"ok","device":"echo","backend":"echo","styles":[],"palettes":[],"fonts":[],"warnings":[]}"#;
const JSON: &str = "application/json";
/// Requests queued towards the event loop; a reply that finds it full is dropped and counted.
const REQUEST_CHANNEL: usize = 4096;

/// Answer every brief of one device at once, without reading it
#[derive(Parser)]
pub struct Arguments {
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    url: String,
    #[arg(long, default_value = "packd/v1")]
    prefix: String,
    /// The `{device}` of the brief topic to answer on.
    #[arg(long, default_value = "echo")]
    device: String,
    /// Pad the reply to this many bytes (packd's replies are about 5 200): a floor that moves
    /// as many bytes as packd does. Default: the 105-byte reply.
    #[arg(long)]
    reply_bytes: Option<usize>,
}

/// [`REPLY`] padded with a `pad` field to `size` bytes (never shorter than [`REPLY`]), still
/// one JSON object shaped like a reply.
pub fn reply_of_size(size: Option<usize>) -> Bytes {
    const OPEN: &[u8] = br#","pad":""#;
    const CLOSE: &[u8] = br#""}"#;
    let without_brace = &REPLY[..REPLY.len() - 1];
    let fixed = without_brace.len() + OPEN.len() + CLOSE.len();
    let Some(size) = size.filter(|&size| size >= fixed) else {
        return Bytes::from_static(REPLY);
    };
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(without_brace);
    body.extend_from_slice(OPEN);
    body.resize(size - CLOSE.len(), b'x');
    body.extend_from_slice(CLOSE);
    Bytes::from(body)
}

/// An echo responder running on its own thread.
pub struct Echo {
    client: AsyncClient,
    thread: JoinHandle<anyhow::Result<Counts>>,
}

/// What a responder did before it stopped.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Replies handed to the client.
    pub answered: u64,
    /// Briefs with no Response Topic (dropped, as packd drops them) or whose reply found the
    /// request channel full.
    pub dropped: u64,
}

/// Client options shared with loadgen: TCP_NODELAY, as packd sets it (Nagle plus delayed ACKs
/// would add tens of milliseconds to every round trip).
pub fn client_options(url: &str, client_id: &str) -> anyhow::Result<MqttOptions> {
    let address = packd::transport::parse_url(url)?;
    let mut options = MqttOptions::new(client_id, address.host, address.port);
    options.set_keep_alive(Duration::from_secs(30));
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    Ok(options)
}

/// Connects, subscribes to `device`'s brief topic and returns once the broker has granted the
/// subscription, so that no brief sent afterwards can miss the responder.
pub fn start(url: &str, prefix: &str, device: &str, reply: Bytes) -> anyhow::Result<Echo> {
    let options = client_options(url, &format!("echo-{device}-{}", std::process::id()))?;
    let (client, eventloop) = AsyncClient::new(options, REQUEST_CHANNEL);
    let topic = packd_wire::Topics::new(prefix, device, &[]).device_briefs;
    let (ready_sender, ready) = std_mpsc::channel();
    let serving = client.clone();
    // Its own thread and single-threaded runtime: the responder is measured as a separate
    // service would be, and never competes with the load generator's tasks for a runtime.
    let thread = std::thread::Builder::new()
        .name("echo".to_string())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(serving, eventloop, topic, reply, ready_sender))
        })?;
    match ready.recv_timeout(Duration::from_secs(10)) {
        Ok(()) => Ok(Echo { client, thread }),
        Err(_) => {
            let _ = client.try_disconnect();
            match thread.join() {
                Ok(Err(error)) => Err(error.context("echo responder did not start")),
                _ => Err(anyhow!("echo responder not subscribed within 10 s")),
            }
        }
    }
}

impl Echo {
    /// Disconnects and waits for the thread; what it did, or why it stopped early.
    pub fn stop(self) -> anyhow::Result<Counts> {
        self.client.try_disconnect()?;
        self.thread
            .join()
            .map_err(|_| anyhow!("echo responder panicked"))?
    }
}

async fn serve(
    client: AsyncClient,
    mut eventloop: EventLoop,
    topic: String,
    reply: Bytes,
    ready: std_mpsc::Sender<()>,
) -> anyhow::Result<Counts> {
    client.subscribe(topic, QoS::AtLeastOnce).await?;
    let mut counts = Counts::default();
    loop {
        match eventloop.poll().await.context("echo responder")? {
            Event::Incoming(Packet::SubAck(_)) => {
                let _ = ready.send(());
            }
            Event::Incoming(Packet::Publish(publish)) => {
                if answer(&client, publish, &reply) {
                    counts.answered += 1;
                } else {
                    counts.dropped += 1;
                }
            }
            Event::Outgoing(rumqttc::Outgoing::Disconnect) => return Ok(counts),
            _ => {}
        }
    }
}

/// Publishes `reply` to the brief's Response Topic with its Correlation Data, QoS 1 and the
/// JSON content type, as packd replies. `try_`: this runs inside the event-loop task, which is
/// the one that empties the request channel, so it must never wait for room there.
fn answer(client: &AsyncClient, publish: Publish, reply: &Bytes) -> bool {
    let Some(request) = publish.properties else {
        return false;
    };
    let Some(topic) = request.response_topic else {
        return false;
    };
    let properties = PublishProperties {
        correlation_data: request.correlation_data,
        content_type: Some(JSON.to_string()),
        ..Default::default()
    };
    client
        .try_publish_with_properties(topic, QoS::AtLeastOnce, false, reply.clone(), properties)
        .is_ok()
}

fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let reply = reply_of_size(arguments.reply_bytes);
    let echo = start(&arguments.url, &arguments.prefix, &arguments.device, reply)?;
    eprintln!(
        "echo: answering briefs for device '{}' (Ctrl-C stops)",
        arguments.device
    );
    let counts = echo
        .thread
        .join()
        .map_err(|_| anyhow!("echo responder panicked"))??;
    eprintln!("echo: {counts:?}");
    Ok(())
}
