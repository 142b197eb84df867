//! The fleet thread: bundle commands applied one at a time, each answered and acknowledged.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::fleet::{self, Command, Fleet, FleetError};
use crate::serve::{ReplyPrefix, ReplySink};
use crate::telemetry::field::escaped;
use crate::telemetry::metrics::Metrics;
use crate::transport::CommandJob;
use packd_wire::bundle::BundleErrorCode;

/// Where and as whom the fleet thread answers bundle commands.
pub(super) struct CommandReplies<'a> {
    pub(super) device: &'a str,
    pub(super) sink: &'a dyn ReplySink,
    pub(super) prefix: &'a ReplyPrefix,
    /// Where each command and its result are counted.
    pub(super) metrics: &'a Metrics,
}

/// Applies bundle commands one at a time, replying and acknowledging each.
pub(super) fn serve_commands(
    fleet: &Fleet,
    replies: &CommandReplies<'_>,
    queue: &flume::Receiver<CommandJob>,
    stop: &CancellationToken,
) {
    while !stop.is_cancelled() {
        // Wake now and then to notice `stop` even when no command comes.
        let job = match queue.recv_timeout(Duration::from_millis(100)) {
            Ok(job) => job,
            Err(flume::RecvTimeoutError::Timeout) => continue,
            Err(flume::RecvTimeoutError::Disconnected) => return,
        };
        let command = Command::parse(&job.command);
        let result = match &command {
            Some(command) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                fleet.handle(command, &job.payload)
            }))
            .unwrap_or_else(|_| {
                log::error!("bundle command '{}' panicked", escaped(&job.command));
                Some(Err(FleetError::internal(
                    "internal error while applying the command",
                )))
            }),
            None => Some(Err(FleetError::new(
                BundleErrorCode::BadRequest,
                format!("unknown bundle command '{}'", escaped(&job.command)),
            ))),
        };
        let name = command.as_ref().map_or("unknown", Command::name);
        count(replies.metrics, name, &job, result.as_ref());
        if let Some(result) = result {
            // A command whose reply packd may not publish is still applied: the way back
            // concerns the reply alone, as with a command that gave none.
            let reply_to = job
                .route
                .is_none()
                .then(|| crate::brief::read_envelope(&job.payload).reply_to)
                .flatten();
            match replies.prefix.resolve(job.route.as_ref(), reply_to) {
                Ok(route) => replies.sink.send(
                    &route,
                    fleet::reply_body(replies.device, &job.payload, result),
                ),
                Err(no_way_back) => log::warn!(
                    "bundle command '{}' {no_way_back}; not answered",
                    escaped(&job.command)
                ),
            }
        }
        (job.acknowledge)();
    }
}

/// Counts a command by its name and result; chunks count their bytes instead.
fn count(
    metrics: &Metrics,
    command: &str,
    job: &CommandJob,
    result: Option<&Result<fleet::Done, FleetError>>,
) {
    match result {
        None => metrics.transfer_bytes(job.payload.len()),
        Some(result) => {
            let outcome = match result {
                Ok(_) => "ok",
                Err(error) => error.code.as_str(),
            };
            metrics.bundle_command(command, outcome);
        }
    }
}
