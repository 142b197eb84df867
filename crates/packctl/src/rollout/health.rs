//! The soak: after a device activates the new bundle it is watched for `--soak-s` seconds, and
//! fails when its state turns `degraded` or `offline`, when it no longer serves the bundle, or
//! when its service error rate over the soak (from its stats) is past `--max-error-rate`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use packd_wire::reply::BundleRef;
use packd_wire::state::Status;
use tokio::time::Instant;

use super::monitor::{Counters, Monitor, Seen};
use super::plan::ErrorRate;

/// What a soak checks.
#[derive(Debug, Clone)]
pub(crate) struct Soak {
    /// The bundle the devices must keep serving.
    pub(crate) bundle: BundleRef,
    /// How long they are watched.
    pub(crate) duration: Duration,
    /// The error rate they may not pass.
    pub(crate) max_error_rate: ErrorRate,
    /// Briefs a device must have seen before its rate is judged.
    pub(crate) min_briefs: u64,
}

/// Watches `devices` (activated at `since`) until the soak is over; returns why each one that
/// failed did. A device fails as soon as a check does, so a bad bundle is caught early.
pub(crate) async fn soak(
    monitor: &mut Monitor,
    devices: &BTreeSet<String>,
    since: Instant,
    soak: &Soak,
    mut on_failure: impl FnMut(&str, &str),
) -> BTreeMap<String, String> {
    let deadline = since + soak.duration;
    let mut failed = BTreeMap::new();
    loop {
        let over = Instant::now() >= deadline;
        let view = monitor.snapshot();
        for device in devices {
            if failed.contains_key(device) {
                continue;
            }
            let seen = view.get(device).cloned().unwrap_or_default();
            if let Some(reason) = check(&seen, since, soak, over) {
                on_failure(device, &reason);
                failed.insert(device.clone(), reason);
            }
        }
        if over || failed.len() == devices.len() {
            return failed;
        }
        monitor.changed_or(deadline).await;
    }
}

/// Why the device fails now, if it does; `over` adds the checks that only the soak's end can
/// settle (the state naming the bundle: its update may still be on its way just after
/// activation).
fn check(seen: &Seen, since: Instant, soak: &Soak, over: bool) -> Option<String> {
    match &seen.state {
        Some(state) if state.status == Status::Degraded => {
            return Some(format!(
                "state degraded: {}",
                state.reason.as_deref().unwrap_or("no reason given")
            ))
        }
        Some(state) if state.status == Status::Offline => return Some("state offline".into()),
        Some(state) if over && state.bundle.as_ref() != Some(&soak.bundle) => {
            let serving = state.bundle.as_ref().map_or("no bundle".to_string(), |b| {
                format!("{} {}", b.name, b.version)
            });
            return Some(format!("serves {serving} at the end of its soak"));
        }
        None if over => return Some("no state published".into()),
        _ => {}
    }
    let (briefs, errors) = soak_counts(seen, since)?;
    (briefs >= soak.min_briefs && soak.max_error_rate.exceeded_by(errors, briefs)).then(|| {
        format!(
            "{errors} of {briefs} briefs failed during the soak (over {})",
            soak.max_error_rate
        )
    })
}

/// Briefs and service errors between the first and the latest stats since `since`; none when
/// fewer than two came, or when packd restarted in between (its counters start again).
fn soak_counts(seen: &Seen, since: Instant) -> Option<(u64, u64)> {
    let during: Vec<&Counters> = seen.stats.iter().filter(|c| c.at >= since).collect();
    let (first, last) = (during.first()?, during.last()?);
    if last.uptime_s < first.uptime_s || last.briefs < first.briefs {
        return None;
    }
    Some((
        last.briefs - first.briefs,
        last.service_errors.saturating_sub(first.service_errors),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use packd_wire::state::State;

    fn bundle(version: &str) -> BundleRef {
        BundleRef {
            name: "b".into(),
            version: version.into(),
        }
    }

    fn seen(status: Status, version: &str, stats: &[(u64, u64)], at: Instant) -> Seen {
        Seen {
            state: Some(State {
                status,
                device: "d".into(),
                version: "0".into(),
                bundle: Some(bundle(version)),
                backends: vec![],
                since: String::new(),
                reason: None,
            }),
            pools: BTreeSet::new(),
            stats: stats
                .iter()
                .enumerate()
                .map(|(i, &(briefs, service_errors))| Counters {
                    at: at + Duration::from_secs(i as u64),
                    uptime_s: 100 + i as u64,
                    briefs,
                    service_errors,
                })
                .collect(),
        }
    }

    #[test]
    fn each_check_fails_a_device_and_a_healthy_one_passes() {
        let since = Instant::now();
        let soak = Soak {
            bundle: bundle("2"),
            duration: Duration::from_secs(10),
            max_error_rate: "10%".parse().unwrap(),
            min_briefs: 20,
        };
        let healthy = seen(Status::Online, "2", &[(0, 0), (100, 10)], since);
        assert_eq!(check(&healthy, since, &soak, true), None);
        let failing = seen(Status::Online, "2", &[(50, 5), (150, 16)], since);
        assert!(check(&failing, since, &soak, false)
            .unwrap()
            .contains("11 of 100"));
        // Too few briefs to judge.
        let quiet = seen(Status::Online, "2", &[(0, 0), (10, 10)], since);
        assert_eq!(check(&quiet, since, &soak, true), None);
        let degraded = seen(Status::Degraded, "2", &[], since);
        assert!(check(&degraded, since, &soak, false)
            .unwrap()
            .contains("degraded"));
        let offline = seen(Status::Offline, "2", &[], since);
        assert_eq!(
            check(&offline, since, &soak, false).unwrap(),
            "state offline"
        );
        // The old bundle only fails the device once the soak is over.
        let old = seen(Status::Online, "1", &[], since);
        assert_eq!(check(&old, since, &soak, false), None);
        assert!(check(&old, since, &soak, true)
            .unwrap()
            .contains("serves b 1"));
        assert!(check(&Seen::default(), since, &soak, true).is_some());
    }

    #[test]
    fn stats_from_before_the_soak_or_across_a_restart_are_not_counted() {
        let since = Instant::now();
        let mut before = seen(Status::Online, "2", &[(0, 0), (100, 50)], since);
        before.stats[0].at = since - Duration::from_secs(5);
        // The baseline is the first stats of the soak: the 50 errors came before it.
        before.stats.push_back(Counters {
            at: since + Duration::from_secs(2),
            uptime_s: 103,
            briefs: 130,
            service_errors: 51,
        });
        assert_eq!(soak_counts(&before, since), Some((30, 1)));
        let mut restarted = seen(Status::Online, "2", &[(500, 0), (10, 5)], since);
        restarted.stats[1].uptime_s = 1;
        assert_eq!(soak_counts(&restarted, since), None);
    }
}
