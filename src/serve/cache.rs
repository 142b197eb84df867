//! The duplicate-delivery cache: a brief redelivered within the window is answered with the
//! reply it already got, never recomputed.
//!
//! The cache is bounded by bytes as well as entries: a key is a reply topic (up to 1 KiB) and
//! correlation data (up to 64 KiB), so 4096 entries bounded by count alone could hold 270 MB of
//! keys, and with their replies they took 693 MB (issue 13).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most replies one request gets, the first included: one replay answers a redelivery after a
/// reply whose acknowledgement was lost (a dropped connection), another a client's own retry.
/// A request redelivered again after that is not getting its replies (a topic the broker or
/// the client cannot take), and answering it again would only keep a redelivery loop going.
pub(crate) const MAX_ANSWERS: usize = 3;

/// What one entry costs beyond its key and reply bytes: the map and queue slots, the key's
/// allocation headers and the allocator's rounding, roughly.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 256;

/// Identifies one request: where its reply goes and its correlation data (or `id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey {
    /// The topic the reply goes to (Response Topic or `reply_to`).
    pub reply_topic: String,
    /// The request's correlation data, or its `id` when it came without.
    pub token: Vec<u8>,
}

impl RequestKey {
    /// Bytes this key holds, with the entry's bookkeeping.
    fn cost(&self) -> usize {
        self.reply_topic.len() + self.token.len() + ENTRY_OVERHEAD_BYTES
    }
}

enum Entry {
    /// Being computed; `resend` counts duplicates that arrived meanwhile.
    InFlight { resend: usize },
    /// Answered, `answered` times so far.
    Done { reply: Vec<u8>, answered: usize },
}

impl Entry {
    fn reply_bytes(&self) -> usize {
        match self {
            Entry::InFlight { .. } => 0,
            Entry::Done { reply, .. } => reply.len(),
        }
    }
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

/// How much a [`ReplyCache`] may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// How long a reply is kept.
    pub ttl: Duration,
    /// Most requests remembered.
    pub entries: usize,
    /// Most bytes of keys, replies and bookkeeping held, see [`ReplyCache::bytes`].
    pub bytes: usize,
}

/// A bounded, time-limited map from request to reply; the oldest requests go first.
pub struct ReplyCache {
    limits: CacheLimits,
    inner: Mutex<Inner>,
}

/// The map and the queue share each key, so a key's bytes are held once. A queue slot outlives
/// its map entry when the request is abandoned; its key is counted until the slot goes.
struct Inner {
    entries: HashMap<Arc<RequestKey>, (Instant, Entry)>,
    order: VecDeque<(Instant, Arc<RequestKey>)>,
    /// Keys in `order` and replies in `entries`, with [`ENTRY_OVERHEAD_BYTES`] per key.
    bytes: usize,
}

impl ReplyCache {
    /// A cache within `limits` (at least one entry, and at least one byte).
    pub fn new(limits: CacheLimits) -> ReplyCache {
        ReplyCache {
            limits: CacheLimits {
                entries: limits.entries.max(1),
                bytes: limits.bytes.max(1),
                ..limits
            },
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    /// Looks a request up, registering it as in flight when new.
    pub fn lookup(&self, key: &RequestKey, now: Instant) -> Lookup {
        let mut inner = self.lock();
        inner.evict(&self.limits, Some(now), 0);
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
                // Room first, so the newest request is never the one evicted for itself.
                inner.evict(&self.limits, None, key.cost());
                let key = Arc::new(key.clone());
                inner.bytes += key.cost();
                inner
                    .entries
                    .insert(key.clone(), (now, Entry::InFlight { resend: 0 }));
                inner.order.push_back((now, key));
                Lookup::Compute
            }
        }
    }

    /// Stores the reply of a computed request; returns how many extra copies to send. A reply
    /// that would not fit the byte budget even alone is sent but not kept.
    pub fn complete(&self, key: &RequestKey, reply: &[u8]) -> usize {
        let mut inner = self.lock();
        let Some((_, entry)) = inner.entries.get_mut(key) else {
            return 0;
        };
        let resend = match entry {
            Entry::InFlight { resend } => *resend,
            Entry::Done { .. } => 0,
        };
        let released = entry.reply_bytes();
        if key.cost() + reply.len() > self.limits.bytes {
            inner.entries.remove(key);
            inner.bytes -= released;
            return resend;
        }
        *entry = Entry::Done {
            reply: reply.to_vec(),
            answered: 1 + resend,
        };
        inner.bytes = inner.bytes - released + reply.len();
        inner.evict(&self.limits, None, 0);
        resend
    }

    /// Forgets a request whose answer should not be replayed; returns how many duplicates
    /// arrived meanwhile (they get the same answer once).
    pub(crate) fn abandon(&self, key: &RequestKey) -> usize {
        let mut inner = self.lock();
        match inner.entries.remove(key) {
            Some((_, entry)) => {
                inner.bytes -= entry.reply_bytes();
                match entry {
                    Entry::InFlight { resend } => resend,
                    Entry::Done { .. } => 0,
                }
            }
            None => 0,
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

    /// Bytes held: every key still queued and every stored reply, with
    /// [`ENTRY_OVERHEAD_BYTES`] per key; never more than the limit.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Drops the oldest requests while any is expired (when `now` is given), or while the
    /// cache with `incoming` more bytes and one more entry would be over its limits.
    fn evict(&mut self, limits: &CacheLimits, now: Option<Instant>, incoming: usize) {
        let extra_entry = usize::from(incoming > 0);
        while let Some((inserted, key)) = self.order.front() {
            let expired =
                now.is_some_and(|now| now.saturating_duration_since(*inserted) > limits.ttl);
            let over = self.order.len() + extra_entry > limits.entries
                || self.bytes + incoming > limits.bytes;
            if !expired && !over {
                break;
            }
            // Only drop the map entry if it is the one this queue slot recorded.
            if self
                .entries
                .get_key_value(key.as_ref())
                .is_some_and(|(stored, _)| Arc::ptr_eq(stored, key))
            {
                if let Some((_, entry)) = self.entries.remove(key.as_ref()) {
                    self.bytes -= entry.reply_bytes();
                }
            }
            self.bytes -= key.cost();
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: usize) -> ReplyCache {
        ReplyCache::new(CacheLimits {
            ttl: Duration::from_secs(60),
            entries,
            bytes: 1 << 20,
        })
    }

    fn key(token: &str) -> RequestKey {
        RequestKey {
            reply_topic: "r".into(),
            token: token.as_bytes().to_vec(),
        }
    }

    #[test]
    fn second_delivery_replays_the_first_reply() {
        let cache = cache(10);
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
        let cache = cache(10);
        let now = Instant::now();
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Compute);
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Pending);
        assert_eq!(cache.abandon(&key("a")), 1);
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Compute);
    }

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let cache = cache(2);
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

    fn big_key(index: usize, topic_bytes: usize, token_bytes: usize) -> RequestKey {
        let mut token = vec![b'c'; token_bytes];
        token[..8].copy_from_slice(&(index as u64).to_le_bytes());
        RequestKey {
            reply_topic: format!("{index:0>topic_bytes$}"),
            token,
        }
    }

    #[test]
    fn the_byte_budget_evicts_the_oldest_and_keeps_replaying_the_rest() {
        let entry = 10_000 + 100 + ENTRY_OVERHEAD_BYTES;
        let cache = ReplyCache::new(CacheLimits {
            ttl: Duration::from_secs(60),
            entries: 1000,
            bytes: 10 * entry + entry / 2,
        });
        let now = Instant::now();
        for index in 0..25 {
            assert_eq!(
                cache.lookup(&big_key(index, 100, 5_000), now),
                Lookup::Compute
            );
            cache.complete(&big_key(index, 100, 5_000), &[b'r'; 5_000]);
            assert!(cache.bytes() <= 10 * entry + entry / 2, "{}", cache.bytes());
        }
        assert_eq!(cache.len(), 10);
        assert_eq!(cache.bytes(), 10 * entry);
        // The newest ten are answered from the cache; the oldest were evicted first.
        for index in 15..25 {
            assert_eq!(
                cache.lookup(&big_key(index, 100, 5_000), now),
                Lookup::Replay(vec![b'r'; 5_000])
            );
        }
        assert_eq!(cache.lookup(&big_key(14, 100, 5_000), now), Lookup::Compute);
    }

    #[test]
    fn a_reply_larger_than_the_budget_is_sent_but_not_kept() {
        let cache = ReplyCache::new(CacheLimits {
            ttl: Duration::from_secs(60),
            entries: 10,
            bytes: 4096,
        });
        let now = Instant::now();
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Compute);
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Pending);
        assert_eq!(cache.complete(&key("a"), &[0; 8192]), 1);
        assert_eq!(cache.bytes(), key("a").cost());
        assert_eq!(cache.lookup(&key("a"), now), Lookup::Compute);
    }

    #[test]
    fn abandoned_keys_count_until_their_queue_slot_goes() {
        let limit = 3 * big_key(0, 10, 1000).cost();
        let cache = ReplyCache::new(CacheLimits {
            ttl: Duration::from_secs(60),
            entries: 1000,
            bytes: limit,
        });
        let now = Instant::now();
        for index in 0..100 {
            assert_eq!(
                cache.lookup(&big_key(index, 10, 1000), now),
                Lookup::Compute
            );
            cache.abandon(&big_key(index, 10, 1000));
            assert!(cache.bytes() <= limit, "{}", cache.bytes());
        }
        assert!(cache.is_empty());
    }

    #[test]
    fn poison_reply_topic_redelivered_after_max_answers_gets_no_more_replies() {
        let cache = cache(10);
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
