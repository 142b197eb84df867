//! `packctl rollout` against a real mosquitto and six real packd processes: a rollout that meets
//! a device it cannot update stops and rolls every device back; a good one goes wave by wave and
//! activates only inside its window; one killed mid-wave is resumed from its journal without
//! contacting the devices it had finished.

use crate::fixtures;
use crate::fixtures::SHIPPED_VERSION;
use crate::packctl_bundle::{begins_received, describe, serving, text, trusting, Operator};
use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fixtures::{Appliance as _, Packd, PackdOptions, V5Client};
use serde_json::Value;
use support::{unique_id, Broker};

/// Six packd processes named `{run}-a` … `{run}-f` (the order a rollout takes them in), each
/// trusting the operator's key unless its letter is in `untrusting`.
async fn fleet(
    broker: &Broker,
    operator: &Operator,
    pool: &str,
    untrusting: &str,
) -> (Vec<Packd>, V5Client) {
    let run = unique_id("ro");
    let mut fleet = Vec::new();
    for letter in ["a", "b", "c", "d", "e", "f"] {
        let options = if untrusting.contains(letter) {
            PackdOptions::default()
        } else {
            trusting(&operator.public)
        };
        fleet.push(Packd::start(
            broker,
            PackdOptions {
                device: Some(format!("{run}-{letter}")),
                pools: vec![pool.to_string()],
                ..options
            },
        ));
    }
    let mut client = V5Client::connect(broker).await;
    for packd in &fleet {
        client.wait_for_state(packd, "online").await;
    }
    (fleet, client)
}

/// The journal's device entries, in order: (device, step, at).
fn journal_entries(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["entry"] == "device")
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().unwrap_or_default().to_string();
            (field("device"), field("step"), field("at"))
        })
        .collect()
}

/// Where each device ended, from the journal.
fn last_steps(path: &Path) -> BTreeMap<String, String> {
    journal_entries(path)
        .into_iter()
        .map(|(device, step, _)| (device, step))
        .collect()
}

fn start_arguments<'a>(archive: &'a str, journal: &'a str, pool: &'a str) -> Vec<&'a str> {
    vec![
        "rollout",
        "start",
        archive,
        "--pool",
        pool,
        "--journal",
        journal,
        "--timeout-s",
        "60",
        "--chunk-size",
        "65536",
        "--soak-s",
        "2",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_that_meets_a_device_it_cannot_update_stops_and_rolls_every_device_back() {
    let operator = Operator::new();
    let archive = operator.slim_archive("1.7.0", true);
    let broker = Broker::start();
    let pool = unique_id("store");
    // Device d does not trust the signing key: it refuses the bundle at `begin`.
    let (fleet, mut client) = fleet(&broker, &operator, &pool, "d").await;
    let journal = operator.path("rollout-refused.jsonl");
    let mut arguments = start_arguments(
        archive.to_str().expect("utf-8"),
        journal.to_str().expect("utf-8"),
        &pool,
    );
    arguments.extend(["--waves", "2,100%", "--max-failed", "0"]);
    let output = operator.run(&broker, &arguments).await;
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("stopping the rollout: 1 of 6 devices failed"),
        "{stderr}"
    );

    let steps = last_steps(&journal);
    let device = |letter: &str| {
        fleet["abcdef".find(letter).expect("a letter")]
            .device
            .clone()
    };
    // Wave 1 (a, b) activated and soaked, then went back; d failed; the others of wave 2
    // installed the bundle but were never activated.
    assert_eq!(steps[&device("a")], "rolled_back", "{steps:?}");
    assert_eq!(steps[&device("b")], "rolled_back", "{steps:?}");
    assert_eq!(steps[&device("d")], "failed", "{steps:?}");
    for letter in ["c", "e", "f"] {
        assert_eq!(steps[&device(letter)], "installed", "{steps:?}");
    }
    assert!(
        journal_entries(&journal)
            .iter()
            .any(|(d, step, _)| *d == device("a") && step == "healthy"),
        "wave 1 passed its soak before the stop"
    );
    for packd in &fleet {
        assert_eq!(
            serving(&mut client, packd).await,
            SHIPPED_VERSION,
            "{}",
            packd.device
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_rollout_goes_wave_by_wave_and_activates_only_inside_its_window() {
    let operator = Operator::new();
    // 1.9.0 and its delta on the shipped version, which every device holds: each gets the delta.
    let (archive, delta) = crate::packctl_delta::archives(&operator);
    let broker = Broker::start();
    let pool = unique_id("store");
    let (fleet, mut client) = fleet(&broker, &operator, &pool, "").await;
    let journal = operator.path("rollout-good.jsonl");
    // A window opening 25 s from now (UTC): wave 1's transfer takes a few seconds even on a
    // loaded CI machine, so its activation has to wait for the window.
    let opens = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(25);
    let time = opens.to_zoned_datetime(jiff::tz::TimeZone::UTC).time();
    let window = format!(
        "{:02}:{:02}:{:02}-{:02}:{:02}:{:02}",
        time.hour(),
        time.minute(),
        time.second(),
        (time.hour() + 1) % 24,
        time.minute(),
        time.second()
    );
    let mut arguments = start_arguments(&archive, journal.to_str().expect("utf-8"), &pool);
    arguments.extend(["--waves", "1,50%,100%", "--window", &window, "--tz", "UTC"]);
    arguments.extend(["--delta", &delta]);
    // The plan first: the waves, and nothing sent or journaled.
    let dry_run: Vec<&str> = arguments.iter().copied().chain(["--dry-run"]).collect();
    let output = operator.run(&broker, &dry_run).await;
    assert!(output.status.success(), "{}", describe(&output));
    let names: Vec<&str> = fleet.iter().map(|packd| packd.device.as_str()).collect();
    let plan = format!(
        "wave 1: {}\nwave 2: {}\nwave 3: {}\n",
        names[0],
        names[1..3].join(", "),
        names[3..].join(", ")
    );
    assert_eq!(text(&output.stdout), plan);
    assert!(!journal.exists());

    let output = operator.run(&broker, &arguments).await;
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("waiting"), "{}", describe(&output));
    let by_delta = stderr
        .lines()
        .filter(|line| line.contains("sending the delta"));
    assert_eq!(by_delta.count(), 6, "{stderr}");

    let entries = journal_entries(&journal);
    let when = |device: &str, step: &str| -> jiff::Timestamp {
        let (_, _, at) = entries
            .iter()
            .find(|(d, s, _)| d == device && s == step)
            .unwrap_or_else(|| panic!("no {step} for {device}: {entries:?}"));
        at.parse().expect("RFC 3339")
    };
    let devices: Vec<&str> = fleet.iter().map(|packd| packd.device.as_str()).collect();
    let waves = [&devices[..1], &devices[1..3], &devices[3..]];
    for device in &devices {
        // Seconds resolution: activation at or after the second the window opened.
        assert!(
            when(device, "activated").as_second() >= opens.as_second(),
            "{entries:?}"
        );
        assert_eq!(last_steps(&journal)[*device], "healthy");
    }
    for pair in waves.windows(2) {
        let last_healthy = pair[0]
            .iter()
            .map(|d| when(d, "healthy"))
            .max()
            .expect("wave");
        let first_transfer = pair[1]
            .iter()
            .map(|d| when(d, "transferring"))
            .min()
            .expect("wave");
        assert!(last_healthy <= first_transfer, "waves overlap: {entries:?}");
    }
    for packd in &fleet {
        assert_eq!(
            serving(&mut client, packd).await,
            "1.9.0",
            "{}",
            packd.device
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_killed_mid_wave_resumes_without_contacting_the_devices_it_finished() {
    let operator = Operator::new();
    let archive = operator.slim_archive("1.7.2", true);
    let broker = Broker::start();
    let pool = unique_id("store");
    let (fleet, mut client) = fleet(&broker, &operator, &pool, "").await;
    let journal = operator.path("rollout-killed.jsonl");
    let mut arguments = start_arguments(
        archive.to_str().expect("utf-8"),
        journal.to_str().expect("utf-8"),
        &pool,
    );
    arguments.extend(["--waves", "2,100%"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_packctl"))
        .current_dir(operator.path(""))
        .args(operator.command_line(&broker, &arguments))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start packctl");
    // Killed as soon as wave 2 has begun: its devices are journaled `transferring`.
    let wave_two = fleet[2].device.clone();
    let begun = support::wait_until(std::time::Duration::from_secs(120), || {
        journal_entries(&journal)
            .iter()
            .any(|(device, step, _)| *device == wave_two && step == "transferring")
    });
    child.kill().expect("kill packctl");
    let _ = child.wait();
    assert!(begun, "wave 2 never began: {:?}", journal_entries(&journal));
    // `status` reads the journal as the killed packctl left it.
    let status = crate::packctl_bundle::packctl(
        operator.dir.path(),
        &["rollout", "status", journal.to_str().expect("utf-8")],
    );
    assert!(status.status.success(), "{}", describe(&status));
    let table = text(&status.stdout);
    for packd in &fleet[..2] {
        let row = table
            .lines()
            .find(|line| line.contains(&packd.device))
            .unwrap_or_else(|| panic!("no row for {}:\n{table}", packd.device));
        assert!(row.starts_with("1 ") && row.contains("healthy"), "{table}");
    }
    let finished: Vec<String> = fleet[..2].iter().map(|p| p.device.clone()).collect();
    let begins_before: Vec<usize> = finished
        .iter()
        .map(|d| begins_received(&broker, d))
        .collect();
    let entries_before = journal_entries(&journal).len();

    let resume = ["rollout", "resume", journal.to_str().expect("utf-8")];
    let output = operator.run(&broker, &resume).await;
    assert!(output.status.success(), "{}", describe(&output));
    let after: Vec<(String, String, String)> = journal_entries(&journal).split_off(entries_before);
    for (device, before) in finished.iter().zip(begins_before) {
        assert_eq!(
            begins_received(&broker, device),
            before,
            "{device} was sent to again"
        );
        assert!(!after.iter().any(|(d, _, _)| d == device), "{after:?}");
    }
    for packd in &fleet {
        assert_eq!(last_steps(&journal)[&packd.device], "healthy");
        assert_eq!(
            serving(&mut client, packd).await,
            "1.7.2",
            "{}",
            packd.device
        );
    }
    // The journal pins the archive: another one under its name is refused before any device
    // is contacted.
    let other = operator.slim_archive("1.7.5", true);
    std::fs::copy(&other, &archive).expect("replace the archive");
    let output = operator.run(&broker, &resume).await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("changed since the rollout started"),
        "{}",
        describe(&output)
    );
}

/// The operator's folder, for journals.
impl Operator {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_briefs_fail_during_its_soak_is_rolled_back_and_stops_the_rollout() {
    let operator = Operator::new();
    let archive = operator.slim_archive("1.7.3", true);
    let broker = Broker::start();
    let pool = unique_id("store");
    let run = unique_id("ro");
    // b answers every brief `internal`, as a bundle that breaks on its hardware would.
    let start = |letter: &str, fault: Option<&str>| {
        let mut options = PackdOptions {
            device: Some(format!("{run}-{letter}")),
            pools: vec![pool.clone()],
            ..trusting(&operator.public)
        };
        if let Some(fault) = fault {
            options.env.push(("TEST_PACKD_FAULT".into(), fault.into()));
        }
        Packd::start(&broker, options)
    };
    let fleet = [start("a", None), start("b", Some("fail-every=1"))];
    let mut client = V5Client::connect(&broker).await;
    for packd in &fleet {
        client.wait_for_state(packd, "online").await;
    }
    // Store staff keep sending briefs to both while the rollout runs.
    let sender = V5Client::connect(&broker).await;
    let topics: Vec<String> = fleet.iter().map(|packd| packd.brief_topic()).collect();
    let traffic = tokio::spawn(async move {
        for n in 0u64.. {
            for topic in &topics {
                sender
                    .send(topic, r#"{"product":"tea"}"#, &format!("load-{n}"))
                    .await;
            }
            // Pacing, not synchronisation: about 50 briefs a second per device.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let journal = operator.path("rollout-errors.jsonl");
    let mut arguments = start_arguments(
        archive.to_str().expect("utf-8"),
        journal.to_str().expect("utf-8"),
        &pool,
    );
    // A soak of five stats periods, so that several stats messages fall inside it.
    let soak = arguments
        .iter()
        .position(|a| *a == "--soak-s")
        .expect("--soak-s")
        + 1;
    arguments[soak] = "5";
    arguments.extend(["--waves", "1,100%", "--min-briefs", "10"]);
    arguments.extend(["--max-error-rate", "20%"]);
    let output = operator.run(&broker, &arguments).await;
    traffic.abort();
    assert!(!output.status.success(), "{}", describe(&output));

    let entries = journal_entries(&journal);
    let (a, b) = (&fleet[0].device, &fleet[1].device);
    let failed = std::fs::read_to_string(&journal)
        .unwrap_or_else(|error| panic!("no journal ({error}): {}", describe(&output)))
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| entry["device"] == b.as_str() && entry["step"] == "failed")
        .unwrap_or_else(|| panic!("b never failed: {entries:?}"));
    let reason = failed["reason"].as_str().expect("a reason");
    assert!(reason.contains("briefs failed during the soak"), "{reason}");
    assert!(
        entries
            .iter()
            .any(|(d, step, _)| d == a && step == "healthy"),
        "a passed its soak first: {entries:?}"
    );
    let steps = last_steps(&journal);
    assert_eq!(
        (steps[a].as_str(), steps[b].as_str()),
        ("rolled_back", "rolled_back")
    );
    for packd in &fleet {
        let state = client
            .wait_for_state_where(packd, |state| state["bundle"]["version"] == SHIPPED_VERSION)
            .await;
        assert_eq!(state["bundle"]["version"], SHIPPED_VERSION);
    }
}

#[test]
fn a_rollout_without_a_broker_fails_clearly_and_writes_no_journal() {
    let operator = Operator::new();
    let archive = operator.slim_archive("1.7.4", true);
    let config = operator.path("nobroker.toml");
    let url = format!("mqtt://127.0.0.1:{}", support::free_port());
    std::fs::write(&config, format!("[mqtt]\nurl = \"{url}\"\n")).expect("config");
    let journal = operator.path("rollout-nobroker.jsonl");
    let output = crate::packctl_bundle::packctl(
        operator.dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "rollout",
            "start",
            archive.to_str().expect("utf-8"),
            "--device",
            "orin-1",
            "--journal",
            journal.to_str().expect("utf-8"),
        ],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to the broker at {url}")),
        "{stderr}"
    );
    assert!(
        !journal.exists(),
        "a journal for a rollout that never started"
    );
}
