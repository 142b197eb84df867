//! Micro-batching, as Triton's dynamic batcher does it: a worker that takes a brief off the
//! queue also takes the briefs waiting behind it, up to the model's batch, and may wait up to
//! `serve.batch_window_us` for more; the batch then runs through the model in one call.

use std::time::{Duration, Instant};

/// How workers form batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSettings {
    /// Most briefs in one batch (`serve.max_batch`), further capped by what the active
    /// backend takes; 1 turns batching off.
    pub max: usize,
    /// Longest the first brief of a batch waits for others (`serve.batch_window_us`); zero
    /// batches only briefs already waiting, and never delays one.
    pub window: Duration,
}

/// Takes `first` and the items behind it in `receiver`, up to `max` in all: those waiting now,
/// then whatever arrives until `window` after the call, and no longer. A batch never waits once
/// it is full, and a `max` of 1 never waits at all.
pub(crate) fn collect<T>(
    receiver: &flume::Receiver<T>,
    first: T,
    max: usize,
    window: Duration,
) -> Vec<T> {
    let mut batch = Vec::with_capacity(max.max(1));
    batch.push(first);
    let deadline = Instant::now() + window;
    while batch.len() < max {
        let next = match receiver.try_recv() {
            Ok(item) => Some(item),
            Err(flume::TryRecvError::Disconnected) => None,
            Err(flume::TryRecvError::Empty) if window.is_zero() => None,
            Err(flume::TryRecvError::Empty) => receiver.recv_deadline(deadline).ok(),
        };
        match next {
            Some(item) => batch.push(item),
            None => break,
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_is_taken_without_waiting_for_the_window() {
        let (sender, receiver) = flume::unbounded();
        for item in 1..=10 {
            sender.send(item).expect("open");
        }
        // A window this long would fail the test by its own timeout if it were waited for.
        let batch = collect(&receiver, 0, 8, Duration::from_secs(3600));
        assert_eq!(batch, vec![0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            receiver.len(),
            3,
            "the rest stays queued for the next batch"
        );
    }

    #[test]
    fn without_a_window_only_waiting_items_join() {
        let (sender, receiver) = flume::unbounded();
        sender.send(1).expect("open");
        let batch = collect(&receiver, 0, 8, Duration::ZERO);
        assert_eq!(batch, vec![0, 1]);
    }

    #[test]
    fn a_batch_of_one_never_looks_at_the_queue() {
        let (sender, receiver) = flume::unbounded();
        sender.send(1).expect("open");
        assert_eq!(collect(&receiver, 0, 1, Duration::from_secs(3600)), vec![0]);
        assert_eq!(receiver.len(), 1);
    }

    #[test]
    fn a_lone_item_waits_for_the_window_and_no_longer() {
        let (_sender, receiver) = flume::unbounded::<u32>();
        let window = Duration::from_millis(40);
        let started = Instant::now();
        let batch = collect(&receiver, 0, 8, window);
        let waited = started.elapsed();
        assert_eq!(batch, vec![0]);
        assert!(
            waited >= window,
            "returned after {waited:?}, before the window"
        );
        // Generous: only a scheduler stall could take a wake-up this late.
        assert!(
            waited < window + Duration::from_secs(2),
            "waited {waited:?} for a {window:?} window"
        );
    }

    #[test]
    fn items_arriving_within_the_window_join_the_batch() {
        let (sender, receiver) = flume::unbounded();
        // Each item is sent only once the one before it was taken, so every one reaches the
        // collector while it waits in the window, not in the queue before it looks.
        let feeder = std::thread::spawn(move || {
            for item in 1..=7 {
                sender.send(item).expect("open");
                while !sender.is_empty() {
                    std::thread::yield_now();
                }
            }
        });
        let batch = collect(&receiver, 0, 8, Duration::from_secs(3600));
        feeder.join().expect("feeder");
        assert_eq!(batch, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn a_closed_queue_ends_the_batch() {
        let (sender, receiver) = flume::unbounded::<u32>();
        drop(sender);
        assert_eq!(collect(&receiver, 0, 8, Duration::from_secs(3600)), vec![0]);
    }
}
