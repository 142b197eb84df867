//! The topic names of the API, built once from the prefix, the device id and the pools.

/// Every topic this appliance uses.
#[derive(Debug, Clone)]
pub struct Topics {
    /// The topic prefix (`mqtt.prefix`, default `packd/v1`).
    pub prefix: String,
    /// This appliance's id (`device.id`), the `{device}` of its topics.
    pub device: String,
    /// Pools whose shared brief topic this appliance serves (`device.pools`).
    pub pools: Vec<String>,
    /// `{prefix}/devices/{device}/briefs`: briefs addressed to this appliance.
    pub device_briefs: String,
    /// `{prefix}/devices/{device}/state`: the retained state, and the will's topic.
    pub state: String,
    /// `{prefix}/devices/{device}/stats`: the periodic counters.
    pub stats: String,
}

impl Topics {
    /// Topics for one device.
    pub fn new(prefix: &str, device: &str, pools: &[String]) -> Topics {
        Topics {
            prefix: prefix.to_string(),
            device: device.to_string(),
            pools: pools.to_vec(),
            device_briefs: format!("{prefix}/devices/{device}/briefs"),
            state: format!("{prefix}/devices/{device}/state"),
            stats: format!("{prefix}/devices/{device}/stats"),
        }
    }

    /// A pool's brief topic as clients publish to it.
    pub fn pool_briefs(&self, pool: &str) -> String {
        format!("{}/pools/{pool}/briefs", self.prefix)
    }

    /// Subscription filters for briefs: the device topic and each pool's shared subscription,
    /// so that a pool brief reaches exactly one live appliance.
    pub fn brief_filters(&self) -> Vec<String> {
        let mut filters = vec![self.device_briefs.clone()];
        filters.extend(
            self.pools
                .iter()
                .map(|pool| format!("$share/packd-{pool}/{}", self.pool_briefs(pool))),
        );
        filters
    }

    /// Subscription filters for bundle commands: the device's and every pool's (not shared:
    /// every appliance of a pool acts on a pool command and replies for itself).
    pub fn bundle_filters(&self) -> Vec<String> {
        let mut filters = vec![format!("{}/devices/{}/bundles/#", self.prefix, self.device)];
        filters.extend(
            self.pools
                .iter()
                .map(|pool| format!("{}/pools/{pool}/bundles/#", self.prefix)),
        );
        filters
    }

    /// The command part (`begin`, `chunk/t/3`, …) of a bundle-command topic of ours.
    pub fn bundle_command<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let device_prefix = format!("{}/devices/{}/bundles/", self.prefix, self.device);
        if let Some(command) = topic.strip_prefix(&device_prefix) {
            return Some(command);
        }
        self.pools
            .iter()
            .find_map(|pool| topic.strip_prefix(&format!("{}/pools/{pool}/bundles/", self.prefix)))
    }

    /// The filter that sees every appliance's retained state (pool peers among them).
    pub fn peer_states_filter(&self) -> String {
        format!("{}/devices/+/state", self.prefix)
    }

    /// The device whose state topic this is, if it is one.
    pub fn state_device<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let device = topic
            .strip_prefix(&self.prefix)?
            .strip_prefix("/devices/")?
            .strip_suffix("/state")?;
        (!device.is_empty() && !device.contains('/')).then_some(device)
    }

    /// Whether the topic is the brief topic of one of our pools.
    pub fn is_pool_brief_topic(&self, topic: &str) -> bool {
        self.pools
            .iter()
            .any(|pool| topic == self.pool_briefs(pool))
    }

    /// Whether a delivered message's topic is one of our brief topics.
    pub fn is_brief_topic(&self, topic: &str) -> bool {
        topic == self.device_briefs || self.is_pool_brief_topic(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_contract() {
        let topics = Topics::new("packd/v1", "orin-17", &["store-9".to_string()]);
        assert_eq!(topics.device_briefs, "packd/v1/devices/orin-17/briefs");
        assert_eq!(topics.state, "packd/v1/devices/orin-17/state");
        assert_eq!(topics.stats, "packd/v1/devices/orin-17/stats");
        assert_eq!(
            topics.brief_filters(),
            [
                "packd/v1/devices/orin-17/briefs",
                "$share/packd-store-9/packd/v1/pools/store-9/briefs"
            ]
        );
        assert!(topics.is_brief_topic("packd/v1/pools/store-9/briefs"));
        assert!(!topics.is_brief_topic("packd/v1/pools/other/briefs"));
        assert_eq!(
            topics.bundle_filters(),
            [
                "packd/v1/devices/orin-17/bundles/#",
                "packd/v1/pools/store-9/bundles/#"
            ]
        );
        assert_eq!(
            topics.bundle_command("packd/v1/devices/orin-17/bundles/chunk/t/3"),
            Some("chunk/t/3")
        );
        assert_eq!(
            topics.bundle_command("packd/v1/pools/store-9/bundles/list"),
            Some("list")
        );
        assert_eq!(
            topics.bundle_command("packd/v1/devices/other/bundles/list"),
            None
        );
        assert_eq!(topics.peer_states_filter(), "packd/v1/devices/+/state");
        assert_eq!(
            topics.state_device("packd/v1/devices/orin-18/state"),
            Some("orin-18")
        );
        for not_a_state in [
            "packd/v1/devices/orin-18/stats",
            "packd/v1/devices//state",
            "packd/v1/devices/a/b/state",
            "other/devices/orin-18/state",
        ] {
            assert_eq!(topics.state_device(not_a_state), None, "{not_a_state}");
        }
        assert!(topics.is_pool_brief_topic("packd/v1/pools/store-9/briefs"));
        assert!(!topics.is_pool_brief_topic("packd/v1/devices/orin-17/briefs"));
    }
}
