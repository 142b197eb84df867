//! Bundle commands sent to appliances that are one request and its replies: `bundle abort`,
//! `list`, `activate`, `rollback`, `remove` (`bundle push` is in [`crate::push`]); the target and
//! reply options they share with `push`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use packd_wire::bundle as wire;
use serde_json::Value;

use crate::answer::Answer;
use crate::print::{print_json, print_lists, print_results};
use crate::session::{check_topic_level, Expect, Lost, Session, Target, Wait};
use crate::Appliance;

#[derive(Args, Clone)]
#[group(id = "target", required = true, multiple = false)]
pub(crate) struct TargetArguments {
    /// Appliance id to address.
    #[arg(long, value_name = "ID")]
    device: Option<String>,
    /// Pool to address: every appliance of the pool acts and replies for itself.
    #[arg(long, value_name = "NAME")]
    pool: Option<String>,
}

impl TargetArguments {
    pub(crate) fn target(&self) -> anyhow::Result<Target> {
        match (&self.device, &self.pool) {
            (Some(device), None) => {
                check_topic_level("device id", device)?;
                Ok(Target::Device(device.clone()))
            }
            (None, Some(pool)) => {
                check_topic_level("pool name", pool)?;
                Ok(Target::Pool(pool.clone()))
            }
            _ => anyhow::bail!("give exactly one of --device ID or --pool NAME"),
        }
    }
}

#[derive(Args, Clone)]
pub(crate) struct ReplyArguments {
    /// With --pool: the number of appliances to wait for (default: until no new reply for
    /// --quiet-s after the first one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    expect: Option<u64>,
    /// Seconds to wait for the replies to each request.
    #[arg(long, value_name = "S", default_value_t = 30)]
    timeout_s: u64,
    /// With --pool and no --expect: seconds without a new reply after which no more are
    /// awaited.
    #[arg(long, value_name = "S", default_value_t = 3)]
    quiet_s: u64,
    /// Print the raw JSON replies (one object for --device, an array for --pool).
    #[arg(long)]
    json: bool,
}

impl ReplyArguments {
    fn wait(&self) -> Wait {
        Wait {
            timeout: Duration::from_secs(self.timeout_s.max(1)),
            quiet: Duration::from_secs(self.quiet_s),
        }
    }

    fn expect(&self, target: &Target) -> Expect {
        match target {
            Target::Device(device) => Expect::Devices(BTreeSet::from([device.clone()])),
            Target::Pool(_) => Expect::Pool {
                count: self.expect.map(|count| count as usize),
            },
        }
    }
}

/// What `bundle abort|list|activate|rollback|remove` asks.
pub(crate) enum Simple {
    Abort { transfer: String },
    List,
    Activate { name: String, version: String },
    Rollback,
    Remove { name: String, version: String },
}

impl Simple {
    fn command(&self) -> &'static str {
        match self {
            Simple::Abort { .. } => "abort",
            Simple::List => "list",
            Simple::Activate { .. } => "activate",
            Simple::Rollback => "rollback",
            Simple::Remove { .. } => "remove",
        }
    }

    /// The payload, as the API's type of it.
    fn body(&self) -> serde_json::Result<Value> {
        match self {
            Simple::Abort { transfer } => serde_json::to_value(wire::Abort {
                transfer: transfer.clone(),
            }),
            Simple::List | Simple::Rollback => serde_json::to_value(wire::NoArguments {}),
            Simple::Activate { name, version } | Simple::Remove { name, version } => {
                serde_json::to_value(wire::BundleName {
                    name: name.clone(),
                    version: version.clone(),
                })
            }
        }
    }
}

/// A client id of its own for each run, so two operators never take over each other's session.
pub(crate) fn client_id() -> String {
    format!("packctl-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// One request to each of `devices` on its own topic, over a connection of its own; their
/// answers (a device that does not answer within `wait` is absent).
pub(crate) async fn ask(
    appliance: &Appliance,
    devices: &BTreeSet<String>,
    request: &Simple,
    wait: Wait,
) -> anyhow::Result<BTreeMap<String, Answer>> {
    let mut session = Session::connect(appliance, &client_id()).await?;
    let topics: Vec<String> = devices
        .iter()
        .map(|device| Target::Device(device.clone()).topic(&appliance.prefix, request.command()))
        .collect();
    let body = request.body()?;
    let correlation = session.request(&topics, &body).await?;
    let replies = session
        .collect(&correlation, &Expect::Devices(devices.clone()), wait)
        .await?;
    session.disconnect().await;
    Ok(replies)
}

/// `bundle abort|list|activate|rollback|remove`: one request, the replies printed.
pub(crate) async fn simple(
    appliance: &Appliance,
    target: TargetArguments,
    replies_arguments: ReplyArguments,
    request: Simple,
) -> anyhow::Result<ExitCode> {
    let target = target.target()?;
    let mut session = Session::connect(appliance, &client_id()).await?;
    let topic = target.topic(&appliance.prefix, request.command());
    let expect = replies_arguments.expect(&target);
    let wait = replies_arguments.wait();
    let body = request.body()?;
    let exchange = async {
        let correlation = session.request(&[topic], &body).await?;
        session.collect(&correlation, &expect, wait).await
    };
    let replies = exchange.await.map_err(|lost: Lost| anyhow::anyhow!(lost))?;
    session.disconnect().await;
    if replies.is_empty() {
        anyhow::bail!(
            "no reply to {} from {} within {} s (is packd running and connected to {}?)",
            request.command(),
            target.describe(),
            wait.timeout.as_secs(),
            appliance.broker_url
        );
    }
    let shortfall = shortfall(&expect, &replies);
    if replies_arguments.json {
        print_json(&target, &replies)?;
    } else if matches!(request, Simple::List) {
        print_lists(&replies);
    } else {
        print_results(&replies);
    }
    if let Some(message) = &shortfall {
        eprintln!("packctl: {message}");
    }
    let failed = replies.values().any(Answer::failed);
    Ok(if failed || shortfall.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `expected N appliances, M answered` when a pool fell short of --expect.
pub(crate) fn shortfall(expect: &Expect, replies: &BTreeMap<String, Answer>) -> Option<String> {
    match expect {
        Expect::Pool { count: Some(count) } if replies.len() < *count => Some(format!(
            "expected {count} appliances to answer, {} did",
            replies.len()
        )),
        _ => None,
    }
}
