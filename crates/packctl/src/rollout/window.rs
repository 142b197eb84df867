//! The maintenance window in each device's local time: `--tz` for every device, `--device-tz`
//! for those elsewhere (the contract's state does not say a device's zone).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;

use super::journal::Header;

/// Which of `devices` may activate now, and the seconds until the next of the others may.
pub(super) fn split(
    devices: &BTreeSet<String>,
    header: &Header,
) -> anyhow::Result<(BTreeSet<String>, Option<u32>)> {
    let Some(window) = header.window else {
        return Ok((devices.clone(), None));
    };
    let mut open = BTreeSet::new();
    let mut next: Option<u32> = None;
    for device in devices {
        let zone = zone_of(header, device);
        let wait = window.wait_from(seconds_of_day(zone)?);
        if wait == 0 {
            open.insert(device.clone());
        } else {
            next = Some(next.map_or(wait, |next| next.min(wait)));
        }
    }
    Ok((open, next))
}

/// The zone a device's window is read in.
pub(super) fn zone_of<'a>(header: &'a Header, device: &str) -> &'a str {
    header
        .device_tz
        .get(device)
        .map_or(header.tz.as_str(), String::as_str)
}

/// Seconds after local midnight in `tz`, now.
fn seconds_of_day(tz: &str) -> anyhow::Result<u32> {
    let zone = jiff::tz::TimeZone::get(tz).with_context(|| format!("time zone {tz}"))?;
    let time = jiff::Timestamp::now().to_zoned_datetime(zone).time();
    Ok(time.hour() as u32 * 3600 + time.minute() as u32 * 60 + time.second() as u32)
}

/// `--tz` (checked; this machine's zone without it).
pub(super) fn default_zone(tz: Option<&str>) -> anyhow::Result<String> {
    match tz {
        Some(name) => check(name),
        None => Ok(jiff::tz::TimeZone::system()
            .iana_name()
            .unwrap_or("UTC")
            .to_string()),
    }
}

/// `--device-tz ID=ZONE` entries, each zone checked.
pub(super) fn device_zones(entries: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    entries
        .iter()
        .map(|entry| {
            let (device, zone) = entry
                .split_once('=')
                .with_context(|| format!("--device-tz {entry}: expected DEVICE=ZONE"))?;
            Ok((device.to_string(), check(zone)?))
        })
        .collect()
}

fn check(name: &str) -> anyhow::Result<String> {
    jiff::tz::TimeZone::get(name).with_context(|| format!("unknown time zone '{name}'"))?;
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_checked_and_a_device_zone_overrides_the_default() {
        let zones = device_zones(&["orin-9=Asia/Shanghai".into()]).unwrap();
        assert_eq!(zones["orin-9"], "Asia/Shanghai");
        assert!(device_zones(&["orin-9".into()]).is_err());
        assert!(device_zones(&["orin-9=Mars/Olympus".into()]).is_err());
        assert_eq!(default_zone(Some("UTC")).unwrap(), "UTC");
        let mut header = super::super::journal::tests::header();
        header.device_tz = zones;
        assert_eq!(zone_of(&header, "orin-9"), "Asia/Shanghai");
        assert_eq!(zone_of(&header, "orin-1"), "UTC");
    }

    #[test]
    fn without_a_window_every_device_is_open() {
        let mut header = super::super::journal::tests::header();
        header.window = None;
        let devices: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        assert_eq!(split(&devices, &header).unwrap(), (devices, None));
    }
}
