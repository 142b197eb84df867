//! The per-device table a rollout shows as it runs: one row per device with its step and, while
//! its transfer runs, a progress bar. Where stderr is not a terminal (CI, a log), each change is
//! one plain line instead.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::journal::Step;

/// The table.
pub(crate) struct Table {
    multi: Option<MultiProgress>,
    rows: BTreeMap<String, ProgressBar>,
    width: usize,
}

impl Table {
    /// A row per device, in rollout order, each showing its step from the journal.
    pub(crate) fn new<'a>(devices: impl IntoIterator<Item = (&'a String, Step)>) -> Table {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let devices: Vec<(&String, Step)> = devices.into_iter().collect();
        let width = devices
            .iter()
            .map(|(d, _)| d.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut rows = BTreeMap::new();
        for (device, step) in devices {
            let bar = match &multi {
                Some(multi) => multi.add(ProgressBar::new(0)),
                None => ProgressBar::hidden(),
            };
            if let Ok(style) = ProgressStyle::with_template(&format!(
                "{{prefix:{width}}}  {{msg:50}} [{{bar:24}}] {{bytes}}/{{total_bytes}}"
            )) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(device.clone());
            bar.set_message(step.as_str());
            rows.insert(device.clone(), bar);
        }
        Table { multi, rows, width }
    }

    /// Shows a device's new step, with a detail (why it failed, what it waits for).
    pub(crate) fn show(&self, device: &str, step: Step, detail: &str) {
        let text = if detail.is_empty() {
            step.as_str().to_string()
        } else {
            format!("{:12} {detail}", step.as_str())
        };
        match (&self.multi, self.rows.get(device)) {
            (Some(_), Some(bar)) => bar.set_message(text),
            _ => eprintln!("{device:width$}  {text}", width = self.width),
        }
    }

    /// The bar a device's transfer draws on (hidden without a terminal).
    pub(crate) fn transfer_bar(&self, device: &str) -> ProgressBar {
        self.rows
            .get(device)
            .cloned()
            .unwrap_or_else(ProgressBar::hidden)
    }

    /// A line about the whole rollout, above the table.
    pub(crate) fn say(&self, text: &str) {
        match &self.multi {
            Some(multi) if multi.println(text).is_ok() => {}
            _ => eprintln!("{text}"),
        }
    }

    /// Leaves the table on screen as it last was.
    pub(crate) fn finish(&self) {
        for bar in self.rows.values() {
            bar.abandon();
        }
    }
}
