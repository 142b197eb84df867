//! The retained state document (`{prefix}/devices/{device}/state`) and the periodic stats
//! document (`{prefix}/devices/{device}/stats`): what an appliance says about itself.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::reply::{BundleRef, ErrorCode};

/// MQTT v5 user property on every state message (and the will), once per pool the appliance
/// serves: how pool peers and `packctl rollout` learn a pool's members without a change to the
/// state document itself.
pub const STATE_POOL_PROPERTY: &str = "packd-pool";

/// The pools a state message names in its MQTT user properties ([`STATE_POOL_PROPERTY`]).
pub fn pools_named<'a>(
    user_properties: impl IntoIterator<Item = &'a (String, String)>,
) -> BTreeSet<String> {
    user_properties
        .into_iter()
        .filter(|(key, _)| key == STATE_POOL_PROPERTY)
        .map(|(_, pool)| pool.clone())
        .collect()
}

/// `status` of the state document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Serving, all well.
    Online,
    /// Serving, but something is wrong: the reason is in `reason`.
    Degraded,
    /// Set by the will when the connection drops, and on clean shutdown.
    Offline,
}

/// The retained state document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Online, degraded or offline.
    pub status: Status,
    /// The appliance's `device.id`.
    pub device: String,
    /// packd's version.
    pub version: String,
    /// The active bundle; `null` when none is.
    pub bundle: Option<BundleRef>,
    /// The backends serving, in order of preference (`cpu`, `trt:gpu`, …).
    pub backends: Vec<String>,
    /// When packd started (RFC 3339, UTC).
    pub since: String,
    /// Why the appliance is degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Latency percentiles of one backend over one interval, in microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Briefs answered by this backend in the interval.
    pub count: u64,
    /// Median latency.
    pub p50: u64,
    /// 90th percentile latency.
    pub p90: u64,
    /// 99th percentile latency.
    pub p99: u64,
    /// Slowest brief.
    pub max: u64,
}

/// The stats document: counts since start, the queue, and latency over the last interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The appliance's `device.id`.
    pub device: String,
    /// Seconds since packd started.
    pub uptime_s: u64,
    /// The period of this topic.
    pub interval_s: u64,
    /// Briefs received since start.
    pub briefs: u64,
    /// Briefs answered with suggestions since start.
    pub ok: u64,
    /// Briefs answered with an error since start, by code.
    pub errors: BTreeMap<ErrorCode, u64>,
    /// Briefs lost without a reply since start.
    pub dropped: u64,
    /// Redelivered briefs answered from the reply cache since start.
    pub duplicates: u64,
    /// Briefs waiting for a worker now.
    pub queue_depth: usize,
    /// Briefs being worked on now.
    pub in_flight: usize,
    /// Latency percentiles over the last interval, by backend.
    pub latency_us: BTreeMap<String, Percentiles>,
}

impl Stats {
    /// Errors the appliance is answerable for: not the client's malformed or oversized input,
    /// but failures (`internal`, `no_model`) and briefs it was too slow for (`overloaded`,
    /// `expired`), which is what a bad model bundle causes.
    pub fn service_errors(&self) -> u64 {
        self.errors
            .iter()
            .filter(|(code, _)| code.is_service_fault())
            .map(|(_, count)| count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_document_from_the_contract_parses_and_round_trips() {
        let text = r#"{"status": "online", "device": "orin-17", "version": "0.3.0",
            "bundle": {"name": "packd-default", "version": "1.0.0"},
            "backends": ["trt:dla0", "trt:dla1", "trt:gpu"], "since": "2026-11-23T20:00:00Z"}"#;
        let state: State = serde_json::from_str(text).unwrap();
        assert_eq!(state.status, Status::Online);
        assert_eq!(state.bundle.as_ref().unwrap().version, "1.0.0");
        let again: State = serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(again, state);
        let degraded: State = serde_json::from_str(
            r#"{"status":"degraded","device":"d","version":"1","bundle":null,"backends":[],
                "since":"x","reason":"no bundle is active"}"#,
        )
        .unwrap();
        assert_eq!(degraded.status, Status::Degraded);
        assert!(degraded.bundle.is_none());
    }

    #[test]
    fn only_pool_properties_name_pools() {
        let properties = [
            (STATE_POOL_PROPERTY.to_string(), "store-9".to_string()),
            ("other".to_string(), "x".to_string()),
            (STATE_POOL_PROPERTY.to_string(), "eu".to_string()),
        ];
        let pools: Vec<String> = pools_named(&properties).into_iter().collect();
        assert_eq!(pools, ["eu", "store-9"]);
    }

    #[test]
    fn only_service_faults_count_as_service_errors() {
        let mut stats: Stats = serde_json::from_str(
            r#"{"device":"d","uptime_s":1,"interval_s":10,"briefs":10,"ok":4,
                "errors":{"bad_request":3,"internal":2,"overloaded":1},"dropped":0,"duplicates":0,
                "queue_depth":0,"in_flight":0,"latency_us":{}}"#,
        )
        .unwrap();
        assert_eq!(stats.service_errors(), 3);
        stats.errors.insert(ErrorCode::NoModel, 4);
        assert_eq!(stats.service_errors(), 7);
    }
}
