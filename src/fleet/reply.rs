//! Replies to bundle commands: what a handler did ([`Done`]) or why it refused ([`FleetError`]),
//! put in the envelope every reply carries (`v`, `device`, the request's `id`).

use packd_wire::bundle::{
    AbortedReply, ActivationReply, BundleErrorReply, BundleReply, BundleStatus, ChunkRange,
    CommandError, Envelope, InstalledEntry, ListReply, ReadyReply, RemovedReply,
};

use super::FleetError;
use crate::reply::{BundleRef, API_VERSION};

/// What a command did, before the envelope is put around it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Done {
    /// `begin`: the transfer is open and already holds `have`.
    Ready {
        transfer: String,
        have: Vec<(u64, u64)>,
    },
    /// `commit` without activation.
    Installed { bundle: BundleRef },
    /// `commit`, `activate`, `rollback`: `bundle` serves now, in place of `previous`.
    Activated {
        bundle: BundleRef,
        previous: Option<BundleRef>,
    },
    /// `list`.
    Listed {
        active: Option<BundleRef>,
        installed: Vec<InstalledEntry>,
    },
    /// `remove`.
    Removed,
    /// `abort`.
    Aborted { transfer: String },
}

impl Done {
    /// The reply a client reads.
    fn into_reply(self, envelope: Envelope) -> BundleReply {
        let Envelope { device, id } = envelope;
        let v = API_VERSION;
        match self {
            Done::Ready { transfer, have } => BundleReply::Ready(ReadyReply {
                device,
                have: ranges(&have),
                id,
                status: BundleStatus::Ready,
                transfer,
                v,
            }),
            Done::Installed { bundle } => BundleReply::Activation(ActivationReply {
                bundle,
                device,
                id,
                previous: None,
                status: BundleStatus::Installed,
                v,
            }),
            Done::Activated { bundle, previous } => BundleReply::Activation(ActivationReply {
                bundle,
                device,
                id,
                previous,
                status: BundleStatus::Activated,
                v,
            }),
            Done::Listed { active, installed } => BundleReply::List(ListReply {
                active,
                device,
                id,
                installed,
                status: BundleStatus::Ok,
                v,
            }),
            Done::Removed => BundleReply::Removed(RemovedReply {
                device,
                id,
                status: BundleStatus::Removed,
                v,
            }),
            Done::Aborted { transfer } => BundleReply::Aborted(AbortedReply {
                device,
                id,
                status: BundleStatus::Aborted,
                transfer,
                v,
            }),
        }
    }
}

impl FleetError {
    /// The error reply a client reads.
    fn into_reply(self, envelope: Envelope) -> BundleReply {
        BundleReply::Error(BundleErrorReply {
            device: envelope.device,
            error: CommandError {
                check: self.check,
                code: self.code,
                message: self.message,
            },
            id: envelope.id,
            missing: self.missing.as_deref().map(ranges),
            status: BundleStatus::Error,
            v: API_VERSION,
        })
    }
}

/// The full reply body for a command: `v`, `id` and `device` around the handler's result.
pub(crate) fn reply_body(
    device: &str,
    payload: &[u8],
    result: Result<Done, FleetError>,
) -> Vec<u8> {
    let envelope = Envelope {
        device: device.to_string(),
        id: crate::brief::read_envelope(payload).id,
    };
    let reply = match result {
        Ok(done) => done.into_reply(envelope),
        Err(error) => error.into_reply(envelope),
    };
    serde_json::to_vec(&reply).unwrap_or_default()
}

fn ranges(list: &[(u64, u64)]) -> Vec<ChunkRange> {
    list.iter().map(|&(start, end)| [start, end]).collect()
}

/// The bundle a `name@version` label names (a label without `@` is all name).
pub(crate) fn label_to_ref(label: &str) -> BundleRef {
    let (name, version) = label.split_once('@').unwrap_or((label, ""));
    BundleRef {
        name: name.to_string(),
        version: version.to_string(),
    }
}
