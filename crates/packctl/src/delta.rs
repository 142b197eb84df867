//! `bundle delta`: an archive carrying only what a new bundle adds to a base one, signed and
//! pushed like any archive (`bundle push --delta`); the appliance assembles the rest from the
//! base it holds (`packd_bundle::delta`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use packd_bundle::archive::Compression;
use packd_bundle::delta::{self, DeltaInfo, FullArchive};
use packd_bundle::manifest::Manifest;
use packd_wire::bundle::{BundleErrorCode, BundleReply, InvalidCheck};

use crate::answer::Answer;
use crate::local::{self, human_bytes, ArchiveIdentity, Scratch};
use crate::remote::{self, Simple};
use crate::session::{Target, Wait};
use crate::Appliance;

#[derive(Args)]
pub(crate) struct DeltaArguments {
    /// The new bundle's full archive (from `packctl bundle build`).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The full archive of the installed bundle the delta builds on (same name).
    #[arg(long, value_name = "FILE")]
    base: PathBuf,
    /// Archive to write (default NAME-VERSION-from-BASEVERSION.delta.tar.zst here).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `bundle delta`.
pub(crate) fn make(arguments: DeltaArguments) -> anyhow::Result<ExitCode> {
    let new = local::unpack_bundle(&arguments.file, "packctl-delta-new-")?;
    let (digest, size) = local::digest_of(&arguments.file)?;
    let full = ArchiveIdentity {
        name: new.bundle.manifest.name.clone(),
        version: new.bundle.manifest.version.clone(),
        size,
        sha256: hex::encode(digest),
    };
    let base = local::unpack_bundle(&arguments.base, "packctl-delta-base-")?;
    let base_manifest = &base.bundle.manifest;
    let out = arguments.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}-{}-from-{}.delta.tar.zst",
            full.name, full.version, base_manifest.version
        ))
    });
    let folder = tempfile::Builder::new()
        .prefix("packctl-delta-")
        .tempdir()?;
    let contents = delta::make(
        &new.bundle.dir,
        &base.bundle.dir,
        FullArchive {
            size: full.size,
            sha256: full.sha256.clone(),
        },
        folder.path(),
    )?;
    local::write_archive(folder.path(), &out, Compression::Zstd { level: 9 })?;
    let (digest, size) = local::digest_of(&out)?;
    println!("name     {}", full.name);
    println!("version  {}", full.version);
    println!("base     {} {}", base_manifest.name, base_manifest.version);
    println!("archive  {}", out.display());
    println!(
        "size     {size} bytes ({}; the full archive is {})",
        human_bytes(size),
        human_bytes(full.size)
    );
    println!("sha256   {}", hex::encode(digest));
    println!(
        "carries  {} file(s), {} (the other {} come from the base)",
        contents.carried.len(),
        human_bytes(contents.carried_bytes),
        contents.reused
    );
    for path in &contents.carried {
        println!("         {path}");
    }
    Ok(ExitCode::SUCCESS)
}

/// When `scratch` holds an unpacked delta, checks it on its own (what can be checked without
/// the base) and returns it; `None` for a full archive.
pub(crate) fn verified(
    file: &Path,
    scratch: &Scratch,
) -> anyhow::Result<Option<(DeltaInfo, Manifest)>> {
    let invalid = |error: delta::DeltaError| {
        anyhow::anyhow!("{} is not a valid delta archive: {error}", file.display())
    };
    if delta::read_info(&scratch.dir).map_err(invalid)?.is_none() {
        return Ok(None);
    }
    delta::verify_unpacked(&scratch.dir)
        .map(Some)
        .map_err(invalid)
}

/// `bundle inspect` of a delta: what it stands for and what it carries.
pub(crate) fn print_summary(
    file: &Path,
    size: u64,
    digest: &[u8; 32],
    info: &DeltaInfo,
    manifest: &Manifest,
    scratch: &Scratch,
) {
    println!("archive     {} (a delta)", file.display());
    println!("size        {size} bytes ({})", human_bytes(size));
    println!("sha256      {}", hex::encode(digest));
    println!("name        {}", manifest.name);
    println!("version     {}", manifest.version);
    println!(
        "base        {} {} (manifest sha256 {})",
        info.base.name, info.base.version, info.base.manifest_sha256
    );
    println!(
        "full        {} bytes, sha256 {}",
        info.full.size, info.full.sha256
    );
    let carried: Vec<&str> = manifest
        .files
        .iter()
        .map(|entry| entry.path.as_str())
        .filter(|path| scratch.dir.join(path).is_file())
        .collect();
    println!(
        "carries     {} of {} files: {}",
        carried.len(),
        manifest.files.len(),
        carried.join(", ")
    );
}

/// Whether `bundle push --delta` sends the delta to `target` (one device): it does when the
/// device lists the delta's base as installed. The delta must stand for the full archive
/// `full` describes; its identity is returned when it is to be sent.
pub(crate) async fn choose(
    appliance: &Appliance,
    full: &ArchiveIdentity,
    delta_path: &Path,
    target: &Target,
    wait: Wait,
) -> anyhow::Result<Option<ArchiveIdentity>> {
    let Target::Device(device) = target else {
        anyhow::bail!(
            "--delta works with --device: members of a pool may hold different bundles \
             (`packctl rollout --delta` chooses for each device)"
        );
    };
    let (info, delta) = matching_delta(full, delta_path)?;
    let base = format!("{} {}", info.base.name, info.base.version);
    if base_installed(appliance, device, &info, wait).await? {
        eprintln!("{device} holds {base}: sending the delta");
        Ok(Some(delta))
    } else {
        eprintln!("{device} does not hold {base}: sending the full archive");
        Ok(None)
    }
}

/// Checks that `delta_path` is a valid delta of the full archive `identity` describes; returns
/// what it builds on and its own identity (what its signature must match).
pub(crate) fn matching_delta(
    identity: &ArchiveIdentity,
    delta_path: &Path,
) -> anyhow::Result<(DeltaInfo, ArchiveIdentity)> {
    let scratch = local::unpack_to_scratch(delta_path, "packctl-delta-")?;
    let Some((info, manifest)) = verified(delta_path, &scratch)? else {
        anyhow::bail!("{} is a full archive, not a delta", delta_path.display());
    };
    if info.full.sha256 != identity.sha256 || info.full.size != identity.size {
        anyhow::bail!(
            "{} is a delta of another archive than {} {} (its full sha256 is {})",
            delta_path.display(),
            identity.name,
            identity.version,
            info.full.sha256
        );
    }
    if manifest.name != identity.name || manifest.version != identity.version {
        anyhow::bail!(
            "{} does not make {} {}",
            delta_path.display(),
            identity.name,
            identity.version
        );
    }
    let (digest, size) = local::digest_of(delta_path)?;
    let delta = ArchiveIdentity {
        name: manifest.name,
        version: manifest.version,
        size,
        sha256: hex::encode(digest),
    };
    Ok((info, delta))
}

/// Whether `device` lists the delta's base among its installed bundles.
pub(crate) async fn base_installed(
    appliance: &Appliance,
    device: &str,
    info: &DeltaInfo,
    wait: Wait,
) -> anyhow::Result<bool> {
    let devices = [device.to_string()].into();
    let replies = remote::ask(appliance, &devices, &Simple::List, wait).await?;
    let Some(answer) = replies.get(device) else {
        anyhow::bail!(
            "no reply to list from {device} within {} s",
            wait.timeout.as_secs()
        );
    };
    Ok(match answer.reply() {
        Some(BundleReply::List(list)) => list
            .installed
            .iter()
            .any(|entry| entry.name == info.base.name && entry.version == info.base.version),
        _ => false,
    })
}

/// Why an appliance refused a delta it cannot assemble (`invalid_bundle`, check `archive`: its
/// base is gone or differs), when one did: the full archive goes instead.
pub(crate) fn refused<'a>(answers: impl IntoIterator<Item = &'a Answer>) -> Option<String> {
    answers.into_iter().find_map(|answer| match answer.reply() {
        Some(BundleReply::Error(refusal))
            if refusal.error.code == BundleErrorCode::InvalidBundle
                && refusal.error.check == Some(InvalidCheck::Archive) =>
        {
            Some(refusal.error.message.clone())
        }
        _ => None,
    })
}
