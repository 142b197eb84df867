//! Answering on the broker connection's thread (`serve.workers = 0`), run to completion: a task
//! on the runtime takes the briefs the connection has read, runs them through the model as one
//! batch and answers them, then lets the connection write the replies and read again.
//!
//! No brief crosses to another thread and back, and no thread is woken for one: on a machine of
//! two cores, where the broker and its clients share the cores with packd, that cost more than
//! the model (issue 16, docs/performance.md). A batch is what arrived together, so there is no
//! batch window: waiting for more would hold the connection.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use super::{batch, Job, Lane, Pipeline, Shared};

/// The queue the inline task takes briefs from, and what says it has ended.
pub(super) struct Inline {
    pub receiver: flume::Receiver<Job>,
    /// Dropped when the task ends.
    pub ended: flume::Sender<()>,
}

/// Its slot in `busy_since_ms`: the first, as no worker has it.
const SLOT: usize = 0;

impl Pipeline {
    /// With `serve.workers = 0`, starts the task that answers briefs on the runtime's thread;
    /// it ends once shutdown has closed the queue and every brief in it is answered
    /// ([`Pipeline::shutdown`] waits for that).
    pub(crate) fn answer_inline(&self) {
        let taken = self
            .inline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(Inline { receiver, ended }) = taken else {
            return;
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _ended = ended;
            while let Ok(first) = receiver.recv_async().await {
                answer_batch(&shared, &receiver, first).await;
            }
        });
    }

    /// Shutdown's wait for the inline task (none with workers).
    pub(super) fn wait_for_inline(&self) {
        // A task never started leaves nothing to wait for once its queue is gone.
        drop(
            self.inline
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take(),
        );
        let ended = self
            .inline_ended
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(ended) = ended {
            let _ = ended.recv();
        }
    }
}

/// Answers `first` and the briefs already waiting behind it, then waits until their replies
/// have all been handed to the connection and lets it run.
async fn answer_batch(shared: &Arc<Shared>, receiver: &flume::Receiver<Job>, first: Job) {
    let jobs = batch::collect(receiver, first, shared.batch_limit(), Duration::ZERO);
    // Each brief's panics are caught where it is processed; one escaping from around them must
    // still not end the only task that answers briefs. Its slot then stays busy, as a dead
    // worker's does, so the watchdog has packd restarted and the broker delivers those briefs
    // again.
    let taken = catch_unwind(AssertUnwindSafe(|| {
        shared.take(SLOT, Lane::General, jobs);
    }));
    if taken.is_err() {
        log::error!("a batch answered on the connection's thread panicked");
    }
    shared.sink.emptied().await;
    tokio::task::yield_now().await;
}
