//! The rollout itself, from whatever its journal says: wave by wave, install every device of
//! the wave, activate them (inside the window), soak them; past the failure threshold, stop
//! and return every device the rollout activated to the bundle it ran before.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt as _;
use packd_bundle::delta::DeltaInfo;
use packd_wire::bundle::{BundleReply, BundleStatus};
use packd_wire::reply::BundleRef;
use tokio::time::Instant;

use super::health::{self, Soak};
use super::journal::{Journal, Step};
use super::monitor::Monitor;
use super::table::Table;
use super::window;
use crate::answer::Answer;
use crate::push::{self, Prepared, Settings};
use crate::remote::{self, Simple};
use crate::session::Wait;
use crate::Appliance;

/// Devices of a wave whose transfers run at the same time.
const PARALLEL_TRANSFERS: usize = 8;

/// `--delta`: the delta archive, verified once, and what it builds on.
pub(super) struct Delta {
    pub(super) path: std::path::PathBuf,
    pub(super) archive: Prepared,
    pub(super) info: DeltaInfo,
}

/// A rollout under way: the journal, the watch over the devices, and the table.
struct Rollout<'a> {
    appliance: &'a Appliance,
    /// The archive, verified once.
    archive: Prepared,
    delta: Option<Delta>,
    journal: Journal,
    monitor: Monitor,
    table: Table,
}

/// Runs (or resumes, or finishes aborting) the journal's rollout; exit code 0 only when every
/// targeted device ends up serving the new bundle.
pub(super) async fn run(
    appliance: &Appliance,
    journal: Journal,
    monitor: Monitor,
    archive: Prepared,
    delta: Option<Delta>,
) -> anyhow::Result<ExitCode> {
    let rows: Vec<(String, Step)> = journal
        .header
        .waves
        .iter()
        .flatten()
        .map(|device| (device.clone(), journal.step(device)))
        .collect();
    let table = Table::new(rows.iter().map(|(device, step)| (device, *step)));
    let mut rollout = Rollout {
        appliance,
        archive,
        delta,
        journal,
        monitor,
        table,
    };
    let result = rollout.waves().await;
    rollout.table.finish();
    let code = match result {
        Ok(()) => rollout.summary(),
        Err(error) => Err(error),
    };
    rollout.monitor.stop().await;
    code
}

impl Rollout<'_> {
    async fn waves(&mut self) -> anyhow::Result<()> {
        let waves = self.journal.header.waves.clone();
        for (index, wave) in waves.iter().enumerate() {
            if self.journal.aborted.is_some() {
                break;
            }
            let open: Vec<String> = wave
                .iter()
                .filter(|d| {
                    !matches!(
                        self.journal.step(d),
                        Step::Healthy | Step::Failed | Step::RolledBack
                    )
                })
                .cloned()
                .collect();
            if open.is_empty() {
                continue;
            }
            self.table.say(&format!(
                "wave {} of {}: {}",
                index + 1,
                waves.len(),
                wave.join(", ")
            ));
            self.install(&open).await?;
            self.check_threshold()?;
            self.activate(&open).await?;
            self.check_threshold()?;
            self.soak(&open).await?;
            self.check_threshold()?;
        }
        if let Some(reason) = self.journal.aborted.clone() {
            self.roll_back_all(&reason).await?;
        }
        Ok(())
    }

    /// Records a step and shows it.
    fn record(
        &mut self,
        device: &str,
        step: Step,
        previous: Option<BundleRef>,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        self.table
            .show(device, step, reason.as_deref().unwrap_or_default());
        self.journal.record(device, step, previous, reason)?;
        Ok(())
    }

    /// Past the threshold: journals the abort (the rollback follows once the wave loop ends).
    fn check_threshold(&mut self) -> anyhow::Result<()> {
        let (failed, attempted) = (self.journal.failed(), self.journal.attempted());
        if self.journal.aborted.is_none()
            && self.journal.header.max_failed.exceeded(failed, attempted)
        {
            let reason = format!(
                "{failed} of {attempted} devices failed, over --max-failed {}",
                self.journal.header.max_failed
            );
            self.table.say(&format!("stopping the rollout: {reason}"));
            self.journal.abort(&reason)?;
        }
        Ok(())
    }

    fn settings(&self, activate: bool) -> Settings {
        Settings {
            chunk_size: self.journal.header.chunk_size,
            activate,
            expect: None,
            wait: self.wait(),
            commit_retries: 5,
        }
    }

    fn wait(&self) -> Wait {
        Wait {
            timeout: Duration::from_secs(self.journal.header.timeout_s.max(1)),
            quiet: Duration::from_secs(3),
        }
    }

    /// Transfers and installs (without activating) the bundle on each device not yet holding
    /// it, all at once; what each ran before is kept from its state for the rollback.
    async fn install(&mut self, wave: &[String]) -> anyhow::Result<()> {
        let todo: Vec<String> = wave
            .iter()
            .filter(|d| matches!(self.journal.step(d), Step::Pending | Step::Transferring))
            .cloned()
            .collect();
        for device in &todo {
            self.record(device, Step::Transferring, None, None)?;
        }
        let settings = self.settings(false);
        let pushes = todo
            .iter()
            .map(|device| self.install_one(device, &settings));
        // A bounded number at a time: each transfer sends the whole archive on its own.
        let answers: Vec<_> = futures_util::stream::iter(pushes)
            .buffered(PARALLEL_TRANSFERS)
            .collect()
            .await;
        let view = self.monitor.snapshot();
        for (device, answer) in todo.iter().zip(answers) {
            let answer =
                answer.unwrap_or_else(|e| Answer::verdict(device, "push_failed", format!("{e:#}")));
            match answer.reply().map(BundleReply::status) {
                Some(BundleStatus::Installed) => {
                    let running = view
                        .get(device)
                        .and_then(|seen| seen.state.as_ref())
                        .and_then(|s| s.bundle.clone());
                    let previous = running.filter(|b| *b != self.journal.header.bundle);
                    self.record(device, Step::Installed, previous, None)?;
                }
                _ => self.record(device, Step::Failed, None, Some(failure(&answer)))?,
            }
        }
        Ok(())
    }

    /// One device's transfer: the delta where it holds the delta's base (and takes it), the
    /// full archive otherwise.
    async fn install_one(&self, device: &str, settings: &Settings) -> anyhow::Result<Answer> {
        let bar = self.table.transfer_bar(device);
        if let Some(delta) = &self.delta {
            let wait = settings.wait;
            if crate::delta::base_installed(self.appliance, device, &delta.info, wait).await? {
                self.table
                    .show(device, Step::Transferring, "sending the delta");
                let answer = push::push_to_device(
                    self.appliance,
                    &delta.archive,
                    device,
                    settings,
                    bar.clone(),
                )
                .await?;
                let Some(reason) = crate::delta::refused([&answer]) else {
                    return Ok(answer);
                };
                let text = format!("delta refused ({reason}); sending the full archive");
                self.table.show(device, Step::Transferring, &text);
            }
        }
        push::push_to_device(self.appliance, &self.archive, device, settings, bar).await
    }

    /// Sends `activate` to the wave's installed devices, each once its window is open.
    async fn activate(&mut self, wave: &[String]) -> anyhow::Result<()> {
        if self.journal.aborted.is_some() {
            return Ok(());
        }
        let mut waiting: BTreeSet<String> = wave
            .iter()
            .filter(|d| self.journal.step(d) == Step::Installed)
            .cloned()
            .collect();
        while !waiting.is_empty() {
            let (open, next) = window::split(&waiting, &self.journal.header)?;
            if open.is_empty() {
                let wait = next.unwrap_or(1);
                self.say_waiting(&waiting, wait);
                // The clock is read again after an hour at most: a suspended laptop or a clock
                // step must not make the wait overshoot.
                tokio::time::sleep(Duration::from_secs(u64::from(wait.min(3600)))).await;
                continue;
            }
            self.activate_now(&open).await?;
            waiting.retain(|device| !open.contains(device));
        }
        Ok(())
    }

    fn say_waiting(&self, devices: &BTreeSet<String>, wait: u32) {
        let header = &self.journal.header;
        let zones: BTreeSet<&str> = devices
            .iter()
            .map(|device| window::zone_of(header, device))
            .collect();
        let window = header.window.map(|w| w.to_string()).unwrap_or_default();
        self.table.say(&format!(
            "waiting {wait} s for the window {window} ({}) to activate {} device(s)",
            zones.into_iter().collect::<Vec<_>>().join(", "),
            devices.len()
        ));
    }

    /// `activate` of the new bundle on `devices`; each one's answer journaled.
    async fn activate_now(&mut self, devices: &BTreeSet<String>) -> anyhow::Result<()> {
        let bundle = self.journal.header.bundle.clone();
        let replies = self.activate_on(devices, &bundle).await?;
        for device in devices {
            match replies.get(device) {
                Some(answer)
                    if answer.reply().map(BundleReply::status) == Some(BundleStatus::Activated) =>
                {
                    let known = self.journal.devices.get(device);
                    let previous = known.and_then(|record| record.previous.clone());
                    let previous =
                        previous.or_else(|| reply_previous(answer).filter(|b| *b != bundle));
                    self.record(device, Step::Activated, previous, None)?;
                }
                Some(answer) => self.record(device, Step::Failed, None, Some(failure(answer)))?,
                None => {
                    let reason = Some("no reply to activate".to_string());
                    self.record(device, Step::Failed, None, reason)?
                }
            }
        }
        Ok(())
    }

    /// Watches the wave's activated devices for the soak; a device that fails it is returned
    /// to its previous bundle at once.
    async fn soak(&mut self, wave: &[String]) -> anyhow::Result<()> {
        let devices: BTreeSet<String> = wave
            .iter()
            .filter(|d| self.journal.step(d) == Step::Activated)
            .cloned()
            .collect();
        if devices.is_empty() || self.journal.aborted.is_some() {
            return Ok(());
        }
        let soak = Soak {
            bundle: self.journal.header.bundle.clone(),
            duration: Duration::from_secs(self.journal.header.soak_s),
            max_error_rate: self.journal.header.max_error_rate,
            min_briefs: self.journal.header.min_briefs,
        };
        for device in &devices {
            let text = format!("soaking for {} s", soak.duration.as_secs());
            self.table.show(device, Step::Activated, &text);
        }
        let table = &self.table;
        let failed = health::soak(
            &mut self.monitor,
            &devices,
            Instant::now(),
            &soak,
            |device, reason| {
                table.show(device, Step::Failed, reason);
            },
        )
        .await;
        for device in &devices {
            match failed.get(device) {
                Some(reason) => self.record(device, Step::Failed, None, Some(reason.clone()))?,
                None => self.record(device, Step::Healthy, None, None)?,
            }
        }
        let failed: BTreeSet<String> = failed.into_keys().collect();
        self.roll_back(&failed).await
    }

    /// After an abort: every device of the rollout that activated goes back.
    async fn roll_back_all(&mut self, reason: &str) -> anyhow::Result<()> {
        let activated: BTreeSet<String> = self
            .journal
            .devices
            .iter()
            .filter(|(_, record)| record.activated && record.step != Step::RolledBack)
            .map(|(device, _)| device.clone())
            .collect();
        if !activated.is_empty() {
            self.table.say(&format!(
                "rolling back {} device(s) ({reason})",
                activated.len()
            ));
        }
        self.roll_back(&activated).await
    }

    /// `activate` of each device's previous bundle: unlike `rollback`, it means the same thing
    /// when a resumed rollout sends it twice.
    async fn roll_back(&mut self, devices: &BTreeSet<String>) -> anyhow::Result<()> {
        let mut by_bundle: BTreeMap<BundleRef, BTreeSet<String>> = BTreeMap::new();
        for device in devices {
            let previous = self
                .journal
                .devices
                .get(device)
                .and_then(|r| r.previous.clone());
            match previous {
                Some(previous) => {
                    by_bundle
                        .entry(previous)
                        .or_default()
                        .insert(device.clone());
                }
                None => self.table.show(
                    device,
                    Step::Failed,
                    "nothing to roll back to: no bundle was active before",
                ),
            }
        }
        for (bundle, devices) in by_bundle {
            let replies = self.activate_on(&devices, &bundle).await?;
            for device in &devices {
                match replies.get(device) {
                    Some(answer)
                        if answer.reply().map(BundleReply::status)
                            == Some(BundleStatus::Activated) =>
                    {
                        let reason = format!("back on {} {}", bundle.name, bundle.version);
                        self.record(device, Step::RolledBack, None, Some(reason))?;
                    }
                    other => {
                        let why = other.map_or("no reply".to_string(), failure);
                        self.table
                            .show(device, Step::Failed, &format!("rollback failed: {why}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// `activate` of `bundle` on each of `devices`; their answers.
    async fn activate_on(
        &self,
        devices: &BTreeSet<String>,
        bundle: &BundleRef,
    ) -> anyhow::Result<BTreeMap<String, Answer>> {
        let request = Simple::Activate {
            name: bundle.name.clone(),
            version: bundle.version.clone(),
        };
        remote::ask(self.appliance, devices, &request, self.wait()).await
    }

    /// Prints where each device ended; success only when every one serves the new bundle.
    fn summary(&self) -> anyhow::Result<ExitCode> {
        let devices = &self.journal.devices;
        let healthy = devices.values().filter(|r| r.step == Step::Healthy).count();
        let rolled_back = devices
            .values()
            .filter(|r| r.step == Step::RolledBack)
            .count();
        let bundle = &self.journal.header.bundle;
        let verdict = match &self.journal.aborted {
            Some(reason) => format!("aborted ({reason})"),
            None if healthy == devices.len() => "complete".to_string(),
            None => "finished with failures".to_string(),
        };
        eprintln!(
            "rollout of {} {} {verdict}: {healthy} of {} devices healthy, {} failed, {rolled_back} rolled back",
            bundle.name,
            bundle.version,
            devices.len(),
            self.journal.failed(),
        );
        Ok(
            if self.journal.aborted.is_none() && healthy == devices.len() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            },
        )
    }
}

/// `code: message` of a failed answer.
fn failure(answer: &Answer) -> String {
    let json = answer.to_json();
    let code = json["error"]["code"].as_str().unwrap_or("failed");
    let message = json["error"]["message"].as_str().unwrap_or_default();
    format!("{code}: {message}")
}

fn reply_previous(answer: &Answer) -> Option<BundleRef> {
    match answer.reply()? {
        BundleReply::Activation(activation) => activation.previous.clone(),
        _ => None,
    }
}
