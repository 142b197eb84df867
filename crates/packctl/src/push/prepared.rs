//! A push as other commands use it: the settings of a push, and a signed archive verified once
//! and pushed to one device at a time (a rollout's waves, `bundle push --delta`).

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use packd_wire::bundle as wire;

use super::{begin_request, transfer, Push};
use crate::answer::Answer;
use crate::local;
use crate::session::{Target, Wait};
use crate::Appliance;

/// How a push goes, whoever asked for it (`bundle push` or a rollout).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Chunk size in bytes.
    pub(crate) chunk_size: u64,
    /// Activate once installed.
    pub(crate) activate: bool,
    /// With a pool: the number of appliances to wait for.
    pub(crate) expect: Option<usize>,
    /// How long to wait for replies.
    pub(crate) wait: Wait,
    /// Commits answered with missing_chunks followed by a resend, at most.
    pub(crate) commit_retries: u32,
}

/// A signed archive checked once and ready to be pushed to any number of devices.
pub(crate) struct Prepared {
    path: PathBuf,
    begin: wire::Begin,
}

impl Prepared {
    /// Verifies the archive as an appliance would and reads its signature (which must be for
    /// this very archive): the work every push of it shares.
    pub(crate) fn new(path: &Path, chunk_size: u64) -> anyhow::Result<Prepared> {
        Prepared::verified(path, chunk_size, &local::verified_identity(path)?)
    }

    /// An archive whose `identity` its caller has already verified.
    pub(crate) fn verified(
        path: &Path,
        chunk_size: u64,
        identity: &local::ArchiveIdentity,
    ) -> anyhow::Result<Prepared> {
        Ok(Prepared {
            path: path.to_path_buf(),
            begin: begin_request(path, chunk_size, false, identity)?,
        })
    }

    /// What the `begin` request says of it: name, version, size, SHA-256, signature.
    pub(crate) fn begin(&self) -> &wire::Begin {
        &self.begin
    }
}

/// Pushes a prepared archive to one device (installing it, and activating it when `settings`
/// say so); returns the device's final answer. A lost connection is resumed as `bundle push`
/// does.
pub(crate) async fn push_to_device(
    appliance: &Appliance,
    archive: &Prepared,
    device: &str,
    settings: &Settings,
    bar: ProgressBar,
) -> anyhow::Result<Answer> {
    let target = Target::Device(device.to_string());
    let mut push = Push::new(appliance, &archive.path, settings, target, &archive.begin)?;
    push.bar = Some(bar);
    transfer(appliance, &mut push).await?;
    Ok(push
        .results()
        .remove(device)
        .unwrap_or_else(|| Answer::verdict(device, "no_reply", "no reply from the device")))
}
