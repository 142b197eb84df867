//! What a rollout is asked to do, each part parsed from the command line into a value that can
//! only be valid: its waves, the failure threshold, the error-rate limit and the maintenance
//! window.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a rollout argument is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PlanError {
    /// A wave entry that is neither a count nor a share.
    #[error("wave '{entry}': expected a device count (3) or a share of the devices (10%)")]
    Wave { entry: String },
    /// Waves that shrink.
    #[error("waves must not shrink: '{entry}' covers fewer devices than the wave before it")]
    Shrinking { entry: String },
    /// A failure threshold that is neither a count nor a share.
    #[error("'{value}': expected a number of devices (2) or a share of them (5%)")]
    Threshold { value: String },
    /// A rate that is not a share.
    #[error("'{value}': expected a share of briefs, 0% to 100%")]
    Rate { value: String },
    /// A window that is not `HH:MM-HH:MM`.
    #[error("window '{value}': expected HH:MM-HH:MM (HH:MM:SS allowed), start and end different")]
    Window { value: String },
}

/// One entry of `--waves`: a cumulative count of devices or a share of them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum WaveSize {
    Count(usize),
    Percent(f64),
}

impl WaveSize {
    /// How many devices of `total` the waves up to and including this one cover.
    fn cumulative(self, total: usize) -> usize {
        match self {
            WaveSize::Count(count) => count.min(total),
            WaveSize::Percent(percent) => {
                ((percent / 100.0 * total as f64).ceil() as usize).min(total)
            }
        }
    }
}

/// `--waves 1,10%,50%,100%`: cumulative sizes; devices the last entry leaves out form a last
/// wave of their own, so a rollout always covers every target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Waves {
    sizes: Vec<WaveSize>,
    text: String,
}

impl Waves {
    /// Splits the targets (already in rollout order) into waves; empty waves are left out.
    pub(crate) fn assign(&self, targets: &[String]) -> Vec<Vec<String>> {
        let total = targets.len();
        let mut waves = Vec::new();
        let mut taken = 0;
        let ends = self.sizes.iter().map(|size| size.cumulative(total));
        for end in ends.chain([total]) {
            if end > taken {
                waves.push(targets[taken..end].to_vec());
                taken = end;
            }
        }
        waves
    }
}

impl FromStr for Waves {
    type Err = PlanError;

    fn from_str(text: &str) -> Result<Waves, PlanError> {
        let mut sizes = Vec::new();
        for entry in text.split(',').map(str::trim) {
            let wave = || PlanError::Wave {
                entry: entry.to_string(),
            };
            let size = match entry.strip_suffix('%') {
                Some(percent) => match percent.trim().parse::<f64>() {
                    Ok(p) if p > 0.0 && p <= 100.0 => WaveSize::Percent(p),
                    _ => return Err(wave()),
                },
                None => match entry.parse::<usize>() {
                    Ok(count) if count > 0 => WaveSize::Count(count),
                    _ => return Err(wave()),
                },
            };
            if let Some(&before) = sizes.last() {
                if shrinks(before, size) {
                    return Err(PlanError::Shrinking {
                        entry: entry.to_string(),
                    });
                }
            }
            sizes.push(size);
        }
        Ok(Waves {
            sizes,
            text: text.to_string(),
        })
    }
}

/// Whether `after` can cover fewer devices than `before`, whatever the device count (counts and
/// shares do not compare, so only like with like is refused).
fn shrinks(before: WaveSize, after: WaveSize) -> bool {
    match (before, after) {
        (WaveSize::Count(b), WaveSize::Count(a)) => a < b,
        (WaveSize::Percent(b), WaveSize::Percent(a)) => a < b,
        _ => false,
    }
}

impl fmt::Display for Waves {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `--max-failed N|P%`: how many failed devices a rollout tolerates before it stops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) enum MaxFailed {
    /// At most this many devices.
    Count(usize),
    /// At most this share of the devices attempted so far.
    Percent(f64),
}

impl MaxFailed {
    /// Whether `failed` devices out of the `attempted` are past the threshold.
    pub(crate) fn exceeded(self, failed: usize, attempted: usize) -> bool {
        match self {
            MaxFailed::Count(count) => failed > count,
            MaxFailed::Percent(percent) => failed as f64 > percent / 100.0 * attempted as f64,
        }
    }
}

impl FromStr for MaxFailed {
    type Err = PlanError;

    fn from_str(value: &str) -> Result<MaxFailed, PlanError> {
        let invalid = || PlanError::Threshold {
            value: value.to_string(),
        };
        match value.trim().strip_suffix('%') {
            Some(percent) => match percent.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(MaxFailed::Percent(p)),
                _ => Err(invalid()),
            },
            None => value
                .trim()
                .parse()
                .map(MaxFailed::Count)
                .map_err(|_| invalid()),
        }
    }
}

impl TryFrom<String> for MaxFailed {
    type Error = PlanError;
    fn try_from(value: String) -> Result<MaxFailed, PlanError> {
        value.parse()
    }
}

impl From<MaxFailed> for String {
    fn from(value: MaxFailed) -> String {
        value.to_string()
    }
}

impl fmt::Display for MaxFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxFailed::Count(count) => write!(f, "{count}"),
            MaxFailed::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

/// `--max-error-rate P%`: the share of a device's briefs during its soak that may fail through
/// the appliance's fault (see `Stats::service_errors`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct ErrorRate(f64);

impl ErrorRate {
    /// Whether `errors` of `briefs` is over the limit.
    pub(crate) fn exceeded_by(self, errors: u64, briefs: u64) -> bool {
        briefs > 0 && errors as f64 > self.0 / 100.0 * briefs as f64
    }
}

impl FromStr for ErrorRate {
    type Err = PlanError;

    fn from_str(value: &str) -> Result<ErrorRate, PlanError> {
        let percent = value.trim().strip_suffix('%').unwrap_or(value).trim();
        match percent.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(ErrorRate(p)),
            _ => Err(PlanError::Rate {
                value: value.to_string(),
            }),
        }
    }
}

impl TryFrom<String> for ErrorRate {
    type Error = PlanError;
    fn try_from(value: String) -> Result<ErrorRate, PlanError> {
        value.parse()
    }
}

impl From<ErrorRate> for String {
    fn from(value: ErrorRate) -> String {
        value.to_string()
    }
}

impl fmt::Display for ErrorRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

const DAY_S: u32 = 24 * 3600;

/// `--window HH:MM-HH:MM`: when activation may happen, in the devices' local time; it may wrap
/// past midnight (`22:00-04:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct Window {
    /// Seconds after midnight.
    start: u32,
    end: u32,
}

impl Window {
    /// Seconds from `now` (seconds after local midnight) until the window is open; 0 inside it.
    pub(crate) fn wait_from(self, now: u32) -> u32 {
        let now = now % DAY_S;
        let open = if self.start < self.end {
            (self.start..self.end).contains(&now)
        } else {
            now >= self.start || now < self.end
        };
        if open {
            0
        } else {
            (self.start + DAY_S - now) % DAY_S
        }
    }
}

fn time_of_day(text: &str) -> Option<u32> {
    let mut parts = text.trim().split(':');
    let hours: u32 = parts.next()?.parse().ok()?;
    let minutes: u32 = parts.next()?.parse().ok()?;
    let seconds: u32 = match parts.next() {
        Some(seconds) => seconds.parse().ok()?,
        None => 0,
    };
    let valid = parts.next().is_none() && hours < 24 && minutes < 60 && seconds < 60;
    valid.then_some(hours * 3600 + minutes * 60 + seconds)
}

impl FromStr for Window {
    type Err = PlanError;

    fn from_str(value: &str) -> Result<Window, PlanError> {
        let invalid = || PlanError::Window {
            value: value.to_string(),
        };
        let (start, end) = value.split_once('-').ok_or_else(invalid)?;
        let start = time_of_day(start).ok_or_else(invalid)?;
        let end = time_of_day(end).ok_or_else(invalid)?;
        if start == end {
            return Err(invalid());
        }
        Ok(Window { start, end })
    }
}

impl TryFrom<String> for Window {
    type Error = PlanError;
    fn try_from(value: String) -> Result<Window, PlanError> {
        value.parse()
    }
}

impl From<Window> for String {
    fn from(value: Window) -> String {
        value.to_string()
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = |s: u32| {
            let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
            if s == 0 {
                format!("{h:02}:{m:02}")
            } else {
                format!("{h:02}:{m:02}:{s:02}")
            }
        };
        write!(f, "{}-{}", clock(self.start), clock(self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("d{i:02}")).collect()
    }

    #[test]
    fn waves_are_cumulative_and_the_last_takes_the_rest() {
        let waves: Waves = "1,10%,50%,100%".parse().unwrap();
        let sizes: Vec<usize> = waves.assign(&devices(20)).iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 1, 8, 10]);
        // 10% of 6 rounds up to the 1 already taken: that wave is empty and left out.
        let sizes: Vec<usize> = waves.assign(&devices(6)).iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 2, 3]);
        let partial: Waves = "2".parse().unwrap();
        let assigned = partial.assign(&devices(5));
        assert_eq!(
            assigned,
            [devices(5)[..2].to_vec(), devices(5)[2..].to_vec()]
        );
        assert!(waves.assign(&[]).is_empty());
    }

    #[test]
    fn bad_or_shrinking_waves_are_refused() {
        for bad in ["", "0", "1,,2", "x", "150%", "0%", "-1"] {
            assert!(bad.parse::<Waves>().is_err(), "{bad}");
        }
        assert_eq!(
            "5,2".parse::<Waves>(),
            Err(PlanError::Shrinking { entry: "2".into() })
        );
        assert!("50%,10%".parse::<Waves>().is_err());
        assert!("5,10%".parse::<Waves>().is_ok());
    }

    #[test]
    fn the_failure_threshold_is_a_count_or_a_share_of_the_attempted() {
        let count: MaxFailed = "1".parse().unwrap();
        assert!(!count.exceeded(1, 10));
        assert!(count.exceeded(2, 10));
        let share: MaxFailed = "20%".parse().unwrap();
        assert!(!share.exceeded(1, 5));
        assert!(share.exceeded(2, 5));
        let none: MaxFailed = "0".parse().unwrap();
        assert!(none.exceeded(1, 100));
        assert!("x".parse::<MaxFailed>().is_err() && "101%".parse::<MaxFailed>().is_err());
        let json = serde_json::to_string(&share).unwrap();
        assert_eq!(serde_json::from_str::<MaxFailed>(&json).unwrap(), share);
    }

    #[test]
    fn the_error_rate_compares_service_errors_with_briefs() {
        let rate: ErrorRate = "5%".parse().unwrap();
        assert!(!rate.exceeded_by(5, 100));
        assert!(rate.exceeded_by(6, 100));
        assert!(!rate.exceeded_by(0, 0));
        assert!("120%".parse::<ErrorRate>().is_err());
    }

    #[test]
    fn a_window_opens_at_its_start_and_may_wrap_past_midnight() {
        let night: Window = "22:00-04:30".parse().unwrap();
        assert_eq!(night.wait_from(23 * 3600), 0);
        assert_eq!(night.wait_from(3 * 3600), 0);
        assert_eq!(night.wait_from(4 * 3600 + 1800), 17 * 3600 + 1800);
        assert_eq!(night.wait_from(21 * 3600 + 3599), 1);
        let day: Window = "09:00:30-10:00".parse().unwrap();
        assert_eq!(day.wait_from(9 * 3600), 30);
        assert_eq!(day.wait_from(10 * 3600), 23 * 3600 + 30);
        assert_eq!(day.to_string(), "09:00:30-10:00");
        for bad in ["9-10", "24:00-01:00", "10:00-10:00", "10:00", "10:61-11:00"] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }
}
