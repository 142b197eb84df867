//! `[serve]`: the work queue, the workers, micro-batching and the reply cache, with the memory
//! budget that bounds them together.

use serde::Deserialize;

use super::{invalid, ConfigError, MAX_QUEUE_BYTES_MIB, MIB};

/// Default of `serve.queue_bytes_mib`. Without it the queue could hold 256 briefs of up to
/// 6 MiB (1.5 GiB), past systemd/packd.service's MemoryMax=1G. With it, the brief payloads packd
/// holds at worst are: 64 MiB queued + 64 rejected briefs awaiting `overloaded` × 64 KiB (larger
/// ones keep only their id and reply_to) = 4 MiB + one 6 MiB brief per worker (24 MiB with 4) =
/// 92 MiB, leaving the rest of the 1 GiB to the model, the reply cache and image decoding.
pub const DEFAULT_QUEUE_BYTES_MIB: usize = 64;

/// Default of `serve.reply_cache_mib`: 4096 replies of 8 KiB with their keys; a cache bounded
/// by entries alone held 693 MB of 64 KiB correlation data and 1 KiB topics.
pub const DEFAULT_REPLY_CACHE_MIB: usize = 32;
/// Default of `serve.max_batch`: the shipped bundle's `max_batch`.
pub(crate) const DEFAULT_MAX_BATCH: usize = 8;
/// Default of `serve.batch_window_us`: batch what is waiting, never delay a brief for it.
pub(crate) const DEFAULT_BATCH_WINDOW_US: u64 = 0;
/// Default of `serve.memory_mib`: systemd/packd.service's `MemoryMax=1G`.
const DEFAULT_MEMORY_MIB: usize = 1024;

/// The work queue and the inference workers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// `serve.workers`: inference worker threads; 0 answers briefs on the broker connection's
    /// thread instead. Default: 0 on two cores or fewer, else one a core but one (fewer if
    /// `serve.memory_mib` is low).
    pub workers: usize,
    /// `serve.queue`: briefs that may wait for a worker before more are answered `overloaded`; 256.
    pub queue: usize,
    /// Most MiB of brief payloads waiting in the queue; a brief that would go over it is
    /// answered `overloaded`, as when the queue is out of slots.
    pub queue_bytes_mib: usize,
    /// How long a reply stays in the duplicate-delivery cache.
    pub reply_cache_s: u64,
    /// Most replies held in that cache.
    pub reply_cache_entries: usize,
    /// Replies are published only under this topic prefix (`{prefix}` stands for
    /// `mqtt.prefix`); unset means `{prefix}/replies/`. Read it through [`Config::reply_prefix`].
    pub reply_prefix: Option<String>,
    /// Most MiB of keys (reply topic and correlation data) and replies held in that cache.
    pub(crate) reply_cache_mib: usize,
    /// The memory packd may use, in MiB: the unit's `MemoryMax`. A configuration whose worst
    /// case does not fit is refused at start (docs/security.md, "Issue 13: memory").
    pub(crate) memory_mib: usize,
    /// Most briefs a worker runs through the model in one call, within the bundle's
    /// `max_batch`; 1 turns batching off.
    pub max_batch: usize,
    /// Longest, in µs, the first brief of a batch waits for others; 0 batches only the briefs
    /// already waiting and delays none. With no workers there is no window: waiting would
    /// hold the broker connection.
    pub batch_window_us: u64,
}

/// Most `serve.batch_window_us`: a wait past 100 ms would cost more than any batch saves.
const MAX_BATCH_WINDOW_US: u64 = 100_000;

/// `serve.workers` by default on a machine of `cores` cores (before the memory limit).
///
/// The core left over runs the broker connection (every brief crosses it twice) and, on an
/// appliance, the broker beside packd: with a worker on it too, closed-loop runs on two cores
/// cost 14 % more CPU per brief for no more briefs a second (batches form less often when a
/// second worker takes each brief that arrives mid-batch alone). On two cores or fewer even one
/// worker costs more than it gives: each brief woke the connection's thread twice and preempted
/// the worker twice, a quarter of packd's CPU, so briefs are answered on the connection's thread.
pub(crate) fn default_workers(cores: usize) -> usize {
    if cores <= 2 {
        0
    } else {
        cores - 1
    }
}

/// Most inference workers `serve.workers` may ask for.
const MAX_WORKERS: usize = 256;

impl Default for ServeConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let workers = default_workers(cores);
        let mut serve = ServeConfig {
            workers,
            queue: 256,
            queue_bytes_mib: DEFAULT_QUEUE_BYTES_MIB,
            reply_cache_s: 60,
            reply_cache_entries: 4096,
            reply_prefix: None,
            reply_cache_mib: DEFAULT_REPLY_CACHE_MIB,
            memory_mib: DEFAULT_MEMORY_MIB,
            max_batch: DEFAULT_MAX_BATCH,
            batch_window_us: DEFAULT_BATCH_WINDOW_US,
        };
        // Never more than the default memory allows: a many-core machine must still start on
        // the defaults.
        serve.workers = workers.min(serve.workers_fitting());
        serve
    }
}

impl ServeConfig {
    /// `queue_bytes_mib` in bytes.
    pub fn queue_bytes(&self) -> usize {
        self.queue_bytes_mib.saturating_mul(MIB)
    }

    /// How workers form batches, from `max_batch` and `batch_window_us`.
    pub(crate) fn batch(&self) -> crate::serve::batch::BatchSettings {
        crate::serve::batch::BatchSettings {
            max: self.max_batch,
            window: std::time::Duration::from_micros(self.batch_window_us),
        }
    }

    /// `reply_cache_mib` in bytes.
    pub(crate) fn reply_cache_bytes(&self) -> usize {
        self.reply_cache_mib.saturating_mul(MIB)
    }

    /// The most memory this configuration can make packd hold, in bytes (see
    /// [`crate::serve::worst_case_memory`]).
    pub(crate) fn worst_case_memory(&self) -> u64 {
        crate::serve::worst_case_memory(self.workers, self.queue_bytes(), self.reply_cache_bytes())
    }

    /// How many workers fit in `memory_mib` with the other limits as they are.
    pub(super) fn workers_fitting(&self) -> usize {
        let allowed = (self.memory_mib as u64).saturating_mul(MIB as u64);
        // Each worker brings image threads too, so count up rather than divide.
        (1..=MAX_WORKERS)
            .take_while(|&workers| {
                crate::serve::worst_case_memory(
                    workers,
                    self.queue_bytes(),
                    self.reply_cache_bytes(),
                ) <= allowed
            })
            .last()
            .unwrap_or(0)
    }

    /// Refuses limits that let packd's worst case exceed `memory_mib`, naming what to lower.
    pub(super) fn validate_memory(&self) -> Result<(), ConfigError> {
        let key = |key: &str, message: String| {
            Err(ConfigError::Key {
                key: key.into(),
                message,
            })
        };
        if !(1..=MAX_QUEUE_BYTES_MIB).contains(&self.reply_cache_mib) {
            return key(
                "serve.reply_cache_mib",
                format!("must be from 1 to {MAX_QUEUE_BYTES_MIB}"),
            );
        }
        let worst_mib = self.worst_case_memory().div_ceil(MIB as u64);
        if worst_mib > self.memory_mib as u64 {
            let workers_fitting = self.workers_fitting();
            return key(
                "serve.memory_mib",
                format!(
                    "the worst case of serve.workers = {}, serve.queue_bytes_mib = {} and \
                     serve.reply_cache_mib = {} is {worst_mib} MiB, over the {} MiB allowed \
                     (with the others as they are, {workers_fitting} workers fit); lower one of \
                     those, or raise serve.memory_mib with the unit's MemoryMax",
                    self.workers, self.queue_bytes_mib, self.reply_cache_mib, self.memory_mib
                ),
            );
        }
        Ok(())
    }
}

impl ServeConfig {
    pub(super) fn validate_counts(&self) -> Result<(), ConfigError> {
        if self.workers > MAX_WORKERS {
            return invalid("serve.workers", &format!("must be from 0 to {MAX_WORKERS}"));
        }
        if self.queue == 0 {
            return invalid("serve.queue", "must be at least 1");
        }
        let batch_limit = crate::bundle::manifest::MaxBatch::LIMIT as usize;
        if !(1..=batch_limit).contains(&self.max_batch) {
            return invalid(
                "serve.max_batch",
                &format!("must be from 1 to {batch_limit}"),
            );
        }
        if self.batch_window_us > MAX_BATCH_WINDOW_US {
            return invalid(
                "serve.batch_window_us",
                &format!("must be at most {MAX_BATCH_WINDOW_US} (100 ms)"),
            );
        }
        // Below one largest brief, a valid brief could be refused even by an empty queue.
        let min_queue_bytes_mib = crate::brief::MAX_PAYLOAD_BYTES.div_ceil(MIB);
        if !(min_queue_bytes_mib..=MAX_QUEUE_BYTES_MIB).contains(&self.queue_bytes_mib) {
            return invalid(
                "serve.queue_bytes_mib",
                &format!(
                    "must be from {min_queue_bytes_mib} (one largest brief) to {MAX_QUEUE_BYTES_MIB}"
                ),
            );
        }
        Ok(())
    }
}
