//! Where replies may go. A request names its reply topic, and packd publishes there with its own
//! rights; so the topic must pass the broker's own rules for a topic name (one that does not
//! makes the broker drop packd's connection, and the QoS 1 reply then comes back on every
//! reconnect) and lie under the reply prefix packd enforces itself (`serve.reply_prefix`), so
//! that no request can make packd publish a bundle command, a state or a brief.

use std::fmt;

use bytes::Bytes;

use crate::telemetry::field::escaped;

/// Longest reply topic accepted, in bytes (MQTT allows 65535; no client needs more).
pub(crate) const MAX_REPLY_TOPIC_BYTES: usize = 1024;
/// Most levels a reply topic may have. mosquitto drops a client that publishes to a topic of
/// more than 200 (`TOPIC_HIERARCHY_LIMIT`) and other brokers set lower limits; no reply topic
/// needs more than a handful.
pub(crate) const MAX_REPLY_TOPIC_LEVELS: usize = 32;

/// Why a text is not a topic packd may publish to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic is empty.
    #[error("is empty")]
    Empty,
    /// The topic is longer than the byte limit; the number is its length.
    #[error("is {0} bytes long, over the {MAX_REPLY_TOPIC_BYTES} byte limit")]
    TooLong(usize),
    /// The topic has more levels than the limit; the number is its level count.
    #[error("has {0} levels, over the {MAX_REPLY_TOPIC_LEVELS} level limit")]
    TooDeep(usize),
    /// The topic holds a wildcard, `+` or `#`.
    #[error("holds the wildcard '{0}'")]
    Wildcard(char),
    /// The topic starts with `$`, which brokers keep for themselves.
    #[error("is a system topic (starts with '$')")]
    System,
    /// The topic holds a control character (U+0000..U+001F or U+007F..U+009F).
    #[error("holds the control character U+{:04X}", u32::from(*.0))]
    Control(char),
    /// The topic holds a Unicode non-character, which mosquitto refuses.
    #[error("holds the Unicode non-character U+{:04X}", u32::from(*.0))]
    NonCharacter(char),
}

/// Checks a topic name by the broker's rules (mosquitto's `mosquitto_validate_utf8` and topic
/// checks: no U+0000..U+001F, U+007F..U+009F or non-characters; no wildcards) and packd's own
/// (non-empty, at most [`MAX_REPLY_TOPIC_BYTES`], not a `$` system topic).
pub(crate) fn check_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_REPLY_TOPIC_BYTES {
        return Err(TopicError::TooLong(topic.len()));
    }
    if topic.starts_with('$') {
        return Err(TopicError::System);
    }
    let levels = topic.split('/').count();
    if levels > MAX_REPLY_TOPIC_LEVELS {
        return Err(TopicError::TooDeep(levels));
    }
    for character in topic.chars() {
        match character {
            '+' | '#' => return Err(TopicError::Wildcard(character)),
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => return Err(TopicError::Control(character)),
            _ if is_non_character(character) => return Err(TopicError::NonCharacter(character)),
            _ => {}
        }
    }
    Ok(())
}

/// Unicode non-characters: U+FDD0..U+FDEF and the last two code points of every plane.
pub(crate) fn is_non_character(character: char) -> bool {
    let code = u32::from(character);
    (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE
}

/// The reply topic and Correlation Data a request asked for, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestedRoute {
    pub topic: String,
    pub correlation: Option<Bytes>,
}

/// A way back packd may publish to: built only by [`ReplyPrefix::admit`], so every reply
/// published is under the reply prefix and a valid topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyRoute {
    topic: String,
    correlation: Option<Bytes>,
}

impl ReplyRoute {
    /// The reply topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The request's Correlation Data, copied into the reply.
    pub fn correlation(&self) -> Option<&Bytes> {
        self.correlation.as_ref()
    }
}

/// `serve.reply_prefix` checked: a topic prefix ending in `/`, valid as a topic, and neither
/// under nor above `{prefix}/devices/` or `{prefix}/pools/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPrefix(String);

/// Why a `serve.reply_prefix` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyPrefixError {
    /// The prefix (with `{prefix}` expanded) is not a valid topic.
    #[error("{0:?} {1}")]
    Topic(String, TopicError),
    /// The prefix does not end with `/`.
    #[error("{0:?} must end with '/' so that it names a subtree of topics")]
    NoTrailingSlash(String),
    /// The prefix lies under or above a topic tree packd listens or publishes on.
    #[error(
        "{prefix:?} overlaps {reserved:?}, where briefs, bundle commands and states live; \
         replies there would be published with packd's own rights"
    )]
    Reserved {
        /// The prefix, with `{prefix}` expanded.
        prefix: String,
        /// The reserved tree it overlaps, e.g. `packd/v1/devices/`.
        reserved: String,
    },
}

/// What `{prefix}` stands for in a configured reply prefix.
const PLACEHOLDER: &str = "{prefix}";

impl ReplyPrefix {
    /// The reply prefix for `mqtt_prefix`: `configured` (where `{prefix}` stands for
    /// `mqtt_prefix`) or, without one, `{prefix}/replies/`.
    pub fn new(
        mqtt_prefix: &str,
        configured: Option<&str>,
    ) -> Result<ReplyPrefix, ReplyPrefixError> {
        let value = configured
            .unwrap_or("{prefix}/replies/")
            .replace(PLACEHOLDER, mqtt_prefix);
        let shown = || escaped(&value).to_field();
        check_topic(&value).map_err(|error| ReplyPrefixError::Topic(shown(), error))?;
        if !value.ends_with('/') {
            return Err(ReplyPrefixError::NoTrailingSlash(shown()));
        }
        for reserved in ["devices/", "pools/"].map(|level| format!("{mqtt_prefix}/{level}")) {
            if value.starts_with(&reserved) || reserved.starts_with(&value) {
                return Err(ReplyPrefixError::Reserved {
                    prefix: shown(),
                    reserved,
                });
            }
        }
        Ok(ReplyPrefix(value))
    }

    /// The prefix, ending in `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The route a request asked for, if packd may publish there.
    pub(crate) fn admit(&self, requested: RequestedRoute) -> Result<ReplyRoute, RouteRefused> {
        let refused = |problem| RouteRefused {
            topic: escaped(&requested.topic).to_field(),
            problem,
        };
        if let Err(error) = check_topic(&requested.topic) {
            return Err(refused(Refusal::Topic(error)));
        }
        match requested.topic.strip_prefix(&self.0) {
            Some(rest) if !rest.is_empty() => Ok(ReplyRoute {
                topic: requested.topic,
                correlation: requested.correlation,
            }),
            _ => Err(refused(Refusal::OutsidePrefix(self.0.clone()))),
        }
    }

    /// The way back of a request: its Response Topic when it has one (a refused one is not
    /// replaced by the body's), else the `reply_to` read from its body.
    pub(crate) fn resolve(
        &self,
        response_topic: Option<&RequestedRoute>,
        reply_to: Option<String>,
    ) -> Result<ReplyRoute, NoWayBack> {
        let requested = match (response_topic, reply_to) {
            (Some(requested), _) => requested.clone(),
            (None, Some(topic)) => RequestedRoute {
                topic,
                correlation: None,
            },
            (None, None) => return Err(NoWayBack::Missing),
        };
        self.admit(requested).map_err(NoWayBack::Refused)
    }
}

impl fmt::Display for ReplyPrefix {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A reply topic packd will not publish to, escaped and cut for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteRefused {
    topic: String,
    problem: Refusal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    Topic(TopicError),
    OutsidePrefix(String),
}

impl fmt::Display for RouteRefused {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Refusal::Topic(error) => write!(formatter, "reply topic \"{}\" {error}", self.topic),
            Refusal::OutsidePrefix(prefix) => write!(
                formatter,
                "reply topic \"{}\" is outside the reply prefix {prefix} (serve.reply_prefix)",
                self.topic
            ),
        }
    }
}

/// Why a request cannot be answered; it is acknowledged, logged and dropped all the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoWayBack {
    /// Neither a Response Topic nor a valid `reply_to`.
    Missing,
    /// A reply topic packd will not publish to.
    Refused(RouteRefused),
}

impl fmt::Display for NoWayBack {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoWayBack::Missing => formatter.write_str("has no Response Topic and no reply_to"),
            NoWayBack::Refused(refused) => write!(formatter, "is not answered: {refused}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix() -> ReplyPrefix {
        ReplyPrefix::new("packd/v1", None).expect("the default")
    }

    fn asked(topic: &str) -> RequestedRoute {
        RequestedRoute {
            topic: topic.to_string(),
            correlation: Some(Bytes::from_static(b"c")),
        }
    }

    #[test]
    fn poison_reply_topic_control_and_non_characters_are_refused() {
        let long = "a".repeat(MAX_REPLY_TOPIC_BYTES + 1);
        let deep = "a/".repeat(MAX_REPLY_TOPIC_LEVELS) + "a";
        for (topic, error) in [
            ("", TopicError::Empty),
            (
                deep.as_str(),
                TopicError::TooDeep(MAX_REPLY_TOPIC_LEVELS + 1),
            ),
            (
                long.as_str(),
                TopicError::TooLong(MAX_REPLY_TOPIC_BYTES + 1),
            ),
            ("$SYS/x", TopicError::System),
            ("a/+/b", TopicError::Wildcard('+')),
            ("a/#", TopicError::Wildcard('#')),
            ("a\0b", TopicError::Control('\0')),
            ("a\u{1}b", TopicError::Control('\u{1}')),
            ("a\nb", TopicError::Control('\n')),
            ("a\u{7f}", TopicError::Control('\u{7f}')),
            ("a\u{9f}", TopicError::Control('\u{9f}')),
            ("a\u{fdd0}", TopicError::NonCharacter('\u{fdd0}')),
            ("a\u{fdef}", TopicError::NonCharacter('\u{fdef}')),
            ("a\u{fffe}", TopicError::NonCharacter('\u{fffe}')),
            ("a\u{ffff}", TopicError::NonCharacter('\u{ffff}')),
            ("a\u{1ffff}", TopicError::NonCharacter('\u{1ffff}')),
            ("a\u{10fffe}", TopicError::NonCharacter('\u{10fffe}')),
        ] {
            assert_eq!(check_topic(topic), Err(error), "{topic:?}");
        }
        let longest = "a".repeat(MAX_REPLY_TOPIC_BYTES);
        for fine in [
            "packd/v1/replies/k",
            "a\u{a0}b",
            "清爽/\u{fdcf}/\u{fdf0}/\u{fffd}/\u{10000}",
            "a b",
            longest.as_str(),
        ] {
            assert_eq!(check_topic(fine), Ok(()), "{fine:?}");
        }
    }

    #[test]
    fn confused_deputy_only_topics_under_the_reply_prefix_are_admitted() {
        let prefix = prefix();
        assert_eq!(prefix.as_str(), "packd/v1/replies/");
        let admitted = prefix
            .admit(asked("packd/v1/replies/kiosk-1/r"))
            .expect("under it");
        assert_eq!(admitted.topic(), "packd/v1/replies/kiosk-1/r");
        assert_eq!(admitted.correlation(), Some(&Bytes::from_static(b"c")));
        for outside in [
            "packd/v1/devices/orin-17/bundles/rollback",
            "packd/v1/pools/store-9/bundles/rollback",
            "packd/v1/devices/orin-17/state",
            "packd/v1/replies/",
            "packd/v1/replies",
            "packd/v1/repliesX/a",
            "kiosk/1/replies",
        ] {
            let refused = prefix.admit(asked(outside)).expect_err(outside);
            assert!(
                refused.to_string().contains("outside the reply prefix"),
                "{refused}"
            );
        }
        let poison = prefix
            .admit(asked("packd/v1/replies/a\u{1}\nb"))
            .expect_err("control characters");
        assert_eq!(
            poison.to_string(),
            "reply topic \"packd/v1/replies/a\\u{1}\\nb\" holds the control character U+0001"
        );
    }

    #[test]
    fn a_refused_response_topic_is_not_replaced_by_the_body_reply_to() {
        let prefix = prefix();
        let body = Some("packd/v1/replies/k".to_string());
        assert_eq!(prefix.resolve(None, None), Err(NoWayBack::Missing));
        assert_eq!(
            prefix.resolve(None, body.clone()).expect("body").topic(),
            "packd/v1/replies/k"
        );
        assert!(matches!(
            prefix.resolve(Some(&asked("elsewhere/x")), body),
            Err(NoWayBack::Refused(_))
        ));
    }

    #[test]
    fn reply_prefix_config_cannot_reach_devices_or_pools() {
        assert_eq!(
            ReplyPrefix::new("site/p", Some("{prefix}/answers/"))
                .expect("fine")
                .as_str(),
            "site/p/answers/"
        );
        assert_eq!(
            ReplyPrefix::new("packd/v1", Some("kiosk/replies/"))
                .expect("fine")
                .as_str(),
            "kiosk/replies/"
        );
        for bad in [
            "{prefix}/devices/",
            "{prefix}/devices/orin-17/",
            "{prefix}/pools/store-9/bundles/",
            "{prefix}/",
            "packd/",
            "packd/v1/devices/x/",
        ] {
            assert!(
                matches!(
                    ReplyPrefix::new("packd/v1", Some(bad)),
                    Err(ReplyPrefixError::Reserved { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            ReplyPrefix::new("packd/v1", Some("{prefix}/replies")),
            Err(ReplyPrefixError::NoTrailingSlash(_))
        ));
        for bad in ["", "$SYS/", "a/+/", "r\u{1}/", "r\u{ffff}/"] {
            assert!(
                matches!(
                    ReplyPrefix::new("packd/v1", Some(bad)),
                    Err(ReplyPrefixError::Topic(..))
                ),
                "{bad:?}"
            );
        }
    }
}
