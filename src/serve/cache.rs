//! The duplicate-delivery cache: a brief redelivered within the window is answered with the
//! reply it already got, never recomputed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most replies one request gets, the first included: one replay answers a redelivery after a
/// reply whose acknowledgement was lost (a dropped connection), another a client's own retry.
/// A request redelivered again after that is not getting its replies (a topic the broker or
/// the client cannot take), and answering it again would only keep a redelivery loop going.
pub const MAX_ANSWERS: usize = 3;

/// Identifies one request: where its reply goes and its correlation data (or `id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub reply_topic: String,
    pub token: Vec<u8>,
}

enum Entry {
    /// Being computed; `resend` counts duplicates that arrived meanwhile.
    InFlight { resend: usize },
    /// Answered, `answered` times so far.
    Done { reply: Vec<u8>, answered: usize },
}

/// What to do with a brief according to the cache.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// First sighting: compute it, then call [`ReplyCache::complete`].
    Compute,
    /// Seen and answered: send this reply again.
    Replay(Vec<u8>),
    /// Seen and still being computed: its reply will be sent once more when done.
    Pending,
    /// Already answered [`MAX_ANSWERS`] times: acknowledge it without another reply.
    Exhausted,
}

/// A bounded, time-limited map from request to reply.
pub struct ReplyCache {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    entries: HashMap<RequestKey, (Instant, Entry)>,
    order: VecDeque<(Instant, RequestKey)>,
}

impl ReplyCache {
    /// A cache keeping replies for `ttl`, at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> ReplyCache {
        ReplyCache {
            ttl,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// Looks a request up, registering it as in flight when new.
    pub fn lookup(&self, key: &RequestKey, now: Instant) -> Lookup {
        let mut inner = self.lock();
        inner.evict(now, self.ttl, self.capacity);
        match inner.entries.get_mut(key) {
            Some((_, Entry::Done { answered, .. })) if *answered >= MAX_ANSWERS => {
                Lookup::Exhausted
            }
            Some((_, Entry::Done { reply, answered })) => {
                *answered += 1;
                Lookup::Replay(reply.clone())
            }
            Some((_, Entry::InFlight { resend })) if *resend + 1 >= MAX_ANSWERS => {
                Lookup::Exhausted
            }
            Some((_, Entry::InFlight { resend })) => {
                *resend += 1;
                Lookup::Pending
            }
            None => {
                inner
                    .entries
                    .insert(key.clone(), (now, Entry::InFlight { resend: 0 }));
                inner.order.push_back((now, key.clone()));
                Lookup::Compute
            }
        }
    }

    /// Stores the reply of a computed request; returns how many extra copies to send.
    pub fn complete(&self, key: &RequestKey, reply: &[u8]) -> usize {
        let mut inner = self.lock();
        match inner.entries.get_mut(key) {
            Some((_, entry)) => {
                let resend = match entry {
                    Entry::InFlight { resend } => *resend,
                    Entry::Done { .. } => 0,
                };
                *entry = Entry::Done {
                    reply: reply.to_vec(),
                    answered: 1 + resend,
                };
                resend
            }
            None => 0,
        }
    }

    /// Forgets a request whose answer should not be replayed; returns how many duplicates
    /// arrived meanwhile (they get the same answer once).
    pub fn abandon(&self, key: &RequestKey) -> usize {
        match self.lock().entries.remove(key) {
            Some((_, Entry::InFlight { resend })) => resend,
            _ => 0,
        }
    }

    /// Number of requests remembered.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn evict(&mut self, now: Instant, ttl: Duration, capacity: usize) {
        while let Some((inserted, key)) = self.order.front() {
            let expired = now.saturating_duration_since(*inserted) > ttl;
            if !expired && self.entries.len() <= capacity {
                break;
            }
            // Only drop the map entry if it is the one this queue slot recorded.
            if self.entries.get(key).is_some_and(|(at, _)| at == inserted) {
                self.entries.remove(key);
            }
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(token: &str) -> RequestKey {
        RequestKey {
            reply_topic: "r".into(),
            token: token.as_bytes().to_vec(),
        }
    }

    #[test]
    fn second_delivery_replays_the_first_reply() {
        let cache = ReplyCache::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Compute);
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Pending);
        assert_eq!(cache.complete(&key("a"), b"reply"), 1);
        assert_eq!(
            cache.lookup(&key("a"), now),
            Lookup::Replay(b"reply".to_vec())
        );
        assert_eq!(cache.lookup(&key("b"), now), Lookup::Compute);
    }

    #[test]
    fn an_abandoned_request_is_computed_again() {
        let cache = ReplyCache::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Compute);
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Pending);
        assert_eq!(cache.abandon(&key("a")), 1);
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Compute);
    }

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let cache = ReplyCache::new(Duration::from_secs(60), 2);
        let start = Instant::now();
        cache.lookup(&key("a"), start);
        cache.complete(&key("a"), b"1");
        assert_eq!(
            cache.lookup(&key("a"), start + Duration::from_secs(61)),
            Lookup::Compute
        );
        for token in ["b", "c", "d", "e"] {
            cache.lookup(&key(token), start + Duration::from_secs(62));
        }
        assert!(cache.len() <= 3, "{}", cache.len());
    }

    #[test]
    fn poison_reply_topic_redelivered_after_max_answers_gets_no_more_replies() {
        let cache = ReplyCache::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Compute);
        assert_eq!(cache.complete(&key("a"), b"reply"), 0);
        for _ in 1..MAX_ANSWERS {
            assert_eq!(
                cache.lookup(&key("a"), now),
                Lookup::Replay(b"reply".to_vec())
            );
        }
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Exhausted);
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Exhausted);

        // Duplicates while it is computed count too: a flood of them gets no flood of copies.
        assert_eq!(cache.lookup(&key("b"), now), Lookup::Compute);
        for _ in 1..MAX_ANSWERS {
            assert_eq!(cache.lookup(&key("b"), now), Lookup::Pending);
        }
        assert_eq!(cache.lookup(&key("b"), now), Lookup::Exhausted);
        assert_eq!(cache.complete(&key("b"), b"reply"), MAX_ANSWERS - 1);
        assert_eq!(cache.lookup(&key("b"), now), Lookup::Exhausted);
    }
}
