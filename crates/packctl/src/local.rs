//! Bundle work that needs no broker: `keygen`, `bundle build`, `bundle sign`, `bundle inspect`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Args;
use packd_bundle::archive::{self, Compression, UnpackLimits, UnpackReport};
use packd_bundle::manifest::Manifest;
use packd_bundle::signature::{self, Statement, TrustedKeys};
use packd_bundle::Bundle;
use serde::{Deserialize, Serialize};

/// Bounds for unpacking an archive to inspect it: generous for a real bundle with engines, but
/// a hostile archive cannot fill the disk or the inode table.
const INSPECT_LIMITS: UnpackLimits = UnpackLimits {
    max_total_bytes: 16 * 1024 * 1024 * 1024,
    max_files: 10_000,
    max_file_bytes: 8 * 1024 * 1024 * 1024,
};

#[derive(Args)]
pub(crate) struct KeygenArguments {
    /// Key name: writes NAME.key (secret, mode 0600) and NAME.pub (public).
    #[arg(long)]
    name: String,
    /// Directory to write the key files to (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

#[derive(Args)]
pub(crate) struct BuildArguments {
    /// Bundle directory (holding manifest.toml); it must verify as a bundle.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Archive to write (default NAME-VERSION.bundle.tar.zst, or .bundle.tar with
    /// --no-compress, in the current directory).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write a plain tar archive instead of a zstd-compressed one.
    #[arg(long)]
    no_compress: bool,
    /// zstd compression level (1-22).
    #[arg(long, value_name = "LEVEL", default_value_t = 9,
          value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: i32,
}

#[derive(Args)]
pub(crate) struct SignArguments {
    /// Bundle archive to sign; the signature goes to FILE.sig.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Secret key file (NAME.key from `packctl keygen`).
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Let appliances install this bundle although they ran a higher version of it (the flag is
    /// part of what is signed, so it cannot be added to a replayed signature).
    #[arg(long)]
    allow_downgrade: bool,
}

#[derive(Args)]
pub(crate) struct InspectArguments {
    /// Bundle archive to inspect (FILE.sig, when present, is checked too).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Trusted public keys (files or inline base64) to check FILE.sig against; default: the
    /// configuration's bundles.trusted_keys.
    #[arg(long, value_name = "KEY", num_args = 1..)]
    trusted: Vec<String>,
}

/// `FILE.sig`: what `begin` needs besides the archive itself. The signature covers the signed
/// statement of `name`, `version`, `size`, `sha256` and `allow_downgrade` (docs/bundle-format.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SignatureFile {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
    #[serde(default)]
    pub(crate) allow_downgrade: bool,
    pub(crate) signature: String,
    pub(crate) key_id: String,
}

impl SignatureFile {
    /// The statement this file's signature claims to cover.
    pub(crate) fn statement(&self) -> anyhow::Result<Statement> {
        let digest: [u8; 32] = hex::decode(&self.sha256)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("sha256 '{}' is not 64 hex digits", self.sha256))?;
        Ok(Statement::new(
            &self.name,
            &self.version,
            self.size,
            digest,
            self.allow_downgrade,
        )?)
    }

    /// Why this signature is not for `archive` (name, version, size and digest), if it is not.
    pub(crate) fn mismatch(&self, archive: &ArchiveIdentity) -> Option<String> {
        let differs =
            |what: &str, signed: &dyn std::fmt::Display, found: &dyn std::fmt::Display| {
                Some(format!(
                "the signature is for {what} {signed}, not this archive's {found} (sign it again)"
            ))
            };
        if !self.sha256.eq_ignore_ascii_case(&archive.sha256) {
            return differs("sha256", &self.sha256, &archive.sha256);
        }
        if self.size != archive.size {
            return differs("size", &self.size, &archive.size);
        }
        if (self.name.as_str(), self.version.as_str())
            != (archive.name.as_str(), archive.version.as_str())
        {
            let signed = format!("{}@{}", self.name, self.version);
            let found = format!("{}@{}", archive.name, archive.version);
            return differs("bundle", &signed, &found);
        }
        None
    }
}

/// What a signature must match: the archive's digest and size, and its manifest's name and
/// version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArchiveIdentity {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// Unpacks and verifies an archive as an appliance would (short of the signature and the
/// self-test), so a broken bundle is never signed nor sent; returns what a signature covers.
pub(crate) fn verified_identity(file: &Path) -> anyhow::Result<ArchiveIdentity> {
    let (digest, size) = digest_of(file)?;
    let scratch = unpack_to_scratch(file, "packctl-verify-")?;
    let manifest = match crate::delta::verified(file, &scratch)? {
        Some((_, manifest)) => manifest,
        None => open_unpacked(file, scratch)?.bundle.manifest,
    };
    Ok(ArchiveIdentity {
        name: manifest.name,
        version: manifest.version,
        size,
        sha256: hex::encode(digest),
    })
}

/// Where the signature of an archive lives: the archive's path with `.sig` appended.
pub(crate) fn signature_path(file: &Path) -> PathBuf {
    let mut path = file.as_os_str().to_owned();
    path.push(".sig");
    PathBuf::from(path)
}

/// Reads `FILE.sig`; `Ok(None)` when there is none.
pub(crate) fn read_signature(file: &Path) -> anyhow::Result<Option<SignatureFile>> {
    let path = signature_path(file);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => anyhow::bail!("{}: {error}", path.display()),
    };
    let signature: SignatureFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a signature file (expected JSON with name, version, size, sha256, \
             signature, key_id; a signature made before signed statements covers only the \
             digest: sign the archive again)",
            path.display()
        )
    })?;
    Ok(Some(signature))
}

/// SHA-256 and size of an archive.
pub(crate) fn digest_of(file: &Path) -> anyhow::Result<([u8; 32], u64)> {
    let size = fs::metadata(file)
        .with_context(|| file.display().to_string())?
        .len();
    let digest = archive::sha256_of(file)?;
    Ok((digest, size))
}

pub(crate) fn keygen(arguments: KeygenArguments) -> anyhow::Result<ExitCode> {
    fs::create_dir_all(&arguments.dir)
        .with_context(|| format!("cannot create {}", arguments.dir.display()))?;
    let files = signature::write_keypair(&arguments.dir, &arguments.name)?;
    let public = signature::read_public_key(&files.public_path)?;
    let inline = base64::engine::general_purpose::STANDARD.encode(public.as_bytes());
    println!("key id      {}", files.key_id);
    println!(
        "secret key  {}  (keep it private: it signs bundles)",
        files.secret_path.display()
    );
    println!("public key  {}", files.public_path.display());
    println!();
    println!("Trust it on an appliance with this line in the [bundles] section of packd.toml:");
    println!("trusted_keys = [\"{inline}\"]");
    println!(
        "(or list the path of a copy of {} instead)",
        files.public_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn build(arguments: BuildArguments) -> anyhow::Result<ExitCode> {
    let dir = &arguments.dir;
    let bundle = Bundle::open(dir)
        .map_err(|error| anyhow::anyhow!("{} is not a valid bundle: {error}", dir.display()))?;
    let manifest = &bundle.manifest;
    let (compression, extension) = if arguments.no_compress {
        (Compression::None, "bundle.tar")
    } else {
        (
            Compression::Zstd {
                level: arguments.zstd_level,
            },
            "bundle.tar.zst",
        )
    };
    let out = arguments.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}-{}.{extension}",
            manifest.name, manifest.version
        ))
    });
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let canonical_dir = dir
        .canonicalize()
        .with_context(|| dir.display().to_string())?;
    let canonical_parent = parent
        .canonicalize()
        .with_context(|| format!("output directory {}", parent.display()))?;
    if canonical_parent.starts_with(&canonical_dir) {
        anyhow::bail!(
            "{} is inside the bundle directory {}: it would end up in its own archive; \
             choose another --out",
            out.display(),
            dir.display()
        );
    }
    write_archive(dir, &out, compression)?;
    let (digest, size) = digest_of(&out)?;
    println!("name     {}", manifest.name);
    println!("version  {}", manifest.version);
    println!("archive  {}", out.display());
    println!("size     {size} bytes ({})", human_bytes(size));
    println!("sha256   {}", hex::encode(digest));
    Ok(ExitCode::SUCCESS)
}

/// Packs `dir` into `out`, written beside it and renamed into place, so a failure leaves no
/// half-written archive under the final name.
pub(crate) fn write_archive(
    dir: &Path,
    out: &Path,
    compression: Compression,
) -> anyhow::Result<()> {
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(".packctl-build-")
        .tempfile_in(&parent)
        .with_context(|| format!("cannot create a file in {}", parent.display()))?;
    {
        let mut writer = std::io::BufWriter::new(temporary.as_file_mut());
        archive::pack(dir, &mut writer, compression)?;
        writer
            .flush()
            .with_context(|| format!("writing {}", out.display()))?;
    }
    temporary
        .as_file()
        .sync_all()
        .with_context(|| format!("writing {}", out.display()))?;
    make_readable(temporary.as_file(), out)?;
    temporary
        .persist(out)
        .map_err(|error| anyhow::anyhow!("cannot write {}: {}", out.display(), error.error))?;
    Ok(())
}

pub(crate) fn sign(arguments: SignArguments) -> anyhow::Result<ExitCode> {
    let secret = signature::read_secret_key(&arguments.key)?;
    let identity = verified_identity(&arguments.file)?;
    let mut signed = SignatureFile {
        name: identity.name,
        version: identity.version,
        size: identity.size,
        sha256: identity.sha256,
        allow_downgrade: arguments.allow_downgrade,
        signature: String::new(),
        key_id: signature::key_id(&secret.verifying_key()),
    };
    signed.signature = signature::sign(&secret, &signed.statement()?);
    let text = serde_json::to_string_pretty(&signed)? + "\n";
    let path = signature_path(&arguments.file);
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(".packctl-sign-")
        .tempfile_in(&parent)
        .with_context(|| format!("cannot create a file in {}", parent.display()))?;
    temporary
        .write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    make_readable(temporary.as_file(), &path)?;
    temporary
        .persist(&path)
        .map_err(|error| anyhow::anyhow!("cannot write {}: {}", path.display(), error.error))?;
    print!("{text}");
    eprintln!("signature written to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// How an archive's signature file checks out.
pub(crate) enum SignatureStatus {
    Unsigned,
    /// Valid, by a trusted key.
    Verified {
        key_id: String,
    },
    /// Well formed, but there were no trusted keys to check it against.
    Unchecked {
        key_id: String,
    },
    /// Wrong digest, unknown key or a signature that does not verify.
    Bad {
        reason: String,
    },
}

/// Checks `FILE.sig` against the archive and the trusted keys.
pub(crate) fn check_signature(
    signature: Option<&SignatureFile>,
    archive: &ArchiveIdentity,
    trusted: &TrustedKeys,
) -> SignatureStatus {
    let Some(signature) = signature else {
        return SignatureStatus::Unsigned;
    };
    if let Some(reason) = signature.mismatch(archive) {
        return SignatureStatus::Bad { reason };
    }
    let statement = match signature.statement() {
        Ok(statement) => statement,
        Err(error) => {
            return SignatureStatus::Bad {
                reason: error.to_string(),
            }
        }
    };
    if trusted.is_empty() {
        return SignatureStatus::Unchecked {
            key_id: signature.key_id.clone(),
        };
    }
    match signature::verify(trusted, &statement, &signature.signature, &signature.key_id) {
        Ok(()) => SignatureStatus::Verified {
            key_id: signature.key_id.clone(),
        },
        Err(signature::SignatureError::UnknownKey(_)) => SignatureStatus::Bad {
            reason: format!(
                "signed by key {}, which is not among the trusted keys",
                signature.key_id
            ),
        },
        Err(error) => SignatureStatus::Bad {
            reason: format!("key {}: {error}", signature.key_id),
        },
    }
}

/// `bundle inspect`: what the archive holds and how its signature checks out against
/// `--trusted` or, without it, the keys `config_keys` reads from the configuration (only when
/// there is a signature to check).
pub(crate) fn inspect(
    arguments: InspectArguments,
    config_keys: impl FnOnce() -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<ExitCode> {
    let file = &arguments.file;
    let (digest, size) = digest_of(file)?;
    let scratch = unpack_to_scratch(file, "packctl-inspect-")?;
    let manifest = match crate::delta::verified(file, &scratch)? {
        Some((info, manifest)) => {
            crate::delta::print_summary(file, size, &digest, &info, &manifest, &scratch);
            manifest
        }
        None => {
            let unpacked = open_unpacked(file, scratch)?;
            print_summary(file, size, &digest, &unpacked);
            print_contents(&unpacked.bundle.manifest);
            unpacked.bundle.manifest
        }
    };
    let manifest = &manifest;
    let signature = read_signature(file)?;
    let (trusted, source) = trusted_keys(&arguments, signature.is_some(), config_keys)?;
    let identity = ArchiveIdentity {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        size,
        sha256: hex::encode(digest),
    };
    let status = check_signature(signature.as_ref(), &identity, &trusted);
    Ok(report_signature(file, status, source))
}

/// An archive unpacked into a temporary directory (removed on drop) and opened as a bundle.
pub(crate) struct Unpacked {
    pub(crate) bundle: Bundle,
    report: UnpackReport,
    _scratch: tempfile::TempDir,
}

/// An archive unpacked into a temporary directory (removed on drop), not yet checked.
pub(crate) struct Scratch {
    /// The unpacked files.
    pub(crate) dir: PathBuf,
    report: UnpackReport,
    _scratch: tempfile::TempDir,
}

/// Unpacks `file` within [`INSPECT_LIMITS`] into a temporary directory named `prefix…`.
pub(crate) fn unpack_to_scratch(file: &Path, prefix: &str) -> anyhow::Result<Scratch> {
    let scratch = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("cannot create a temporary directory")?;
    let dir = scratch.path().join("bundle");
    let limits = INSPECT_LIMITS.for_archive(file)?;
    let report = archive::unpack(file, &dir, &limits).map_err(|error| {
        anyhow::anyhow!("{} is not a valid bundle archive: {error}", file.display())
    })?;
    Ok(Scratch {
        dir,
        report,
        _scratch: scratch,
    })
}

/// Unpacks `file` within [`INSPECT_LIMITS`] into a temporary directory named `prefix…` and
/// verifies it as a bundle.
pub(crate) fn unpack_bundle(file: &Path, prefix: &str) -> anyhow::Result<Unpacked> {
    let scratch = unpack_to_scratch(file, prefix)?;
    open_unpacked(file, scratch)
}

fn open_unpacked(file: &Path, scratch: Scratch) -> anyhow::Result<Unpacked> {
    let bundle = Bundle::open(&scratch.dir)
        .map_err(|error| anyhow::anyhow!("{} is not a valid bundle: {error}", file.display()))?;
    Ok(Unpacked {
        bundle,
        report: scratch.report,
        _scratch: scratch._scratch,
    })
}

/// The archive, the bundle's identity, its files, model and vocabulary.
fn print_summary(file: &Path, size: u64, digest: &[u8; 32], unpacked: &Unpacked) {
    let bundle = &unpacked.bundle;
    let manifest = &bundle.manifest;
    println!("archive     {}", file.display());
    println!("size        {size} bytes ({})", human_bytes(size));
    println!("sha256      {}", hex::encode(digest));
    println!("name        {}", manifest.name);
    println!("version     {}", manifest.version);
    println!("created     {}", manifest.created);
    if !manifest.description.is_empty() {
        println!("description {}", manifest.description);
    }
    println!(
        "files       {} ({} unpacked)",
        unpacked.report.files.len(),
        human_bytes(unpacked.report.total_bytes)
    );
    println!(
        "models      fp32 {}, int8 {}",
        manifest.model.fp32, manifest.model.int8
    );
    println!("tensors");
    for (direction, tensors) in [
        ("in ", &manifest.model.inputs),
        ("out", &manifest.model.outputs),
    ] {
        for tensor in tensors.iter() {
            println!(
                "  {direction} {:<10} {} {:?}",
                tensor.name, tensor.dtype, tensor.shape
            );
        }
    }
    println!(
        "vocabulary  {} terms (version {})",
        bundle.vocabulary.len(),
        bundle.vocabulary.version
    );
}

/// The catalogues and the TensorRT engines.
fn print_contents(manifest: &Manifest) {
    let catalogues = &manifest.catalogues;
    println!("catalogues");
    for (label, entry) in [
        ("styles", &catalogues.styles),
        ("palettes", &catalogues.palettes),
        ("fonts", &catalogues.fonts),
        ("layouts", &catalogues.layouts),
    ] {
        println!(
            "  {label:<9} {:>4}  (version {})",
            entry.count, entry.version
        );
    }
    if manifest.engines.is_empty() {
        println!("engines     none (ONNX only)");
        return;
    }
    println!("engines");
    for engine in &manifest.engines {
        println!(
            "  {:<5} {:<5} TensorRT {} CUDA {} sm {}{}  {}",
            engine.target,
            engine.precision,
            engine.tensorrt,
            engine.cuda,
            engine.compute_capability,
            engine
                .dla_cores
                .map(|cores| format!(" ({cores} DLA cores)"))
                .unwrap_or_default(),
            engine.file
        );
    }
}

/// The keys a signature is checked against, and where they came from: `--trusted`, or the
/// configuration's (loaded only for a signed archive without `--trusted`).
fn trusted_keys(
    arguments: &InspectArguments,
    signed: bool,
    config_keys: impl FnOnce() -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<(TrustedKeys, &'static str)> {
    Ok(if !signed {
        (TrustedKeys::default(), "--trusted")
    } else if arguments.trusted.is_empty() {
        let keys = TrustedKeys::from_config(&config_keys()?)?;
        (keys, "bundles.trusted_keys")
    } else {
        (TrustedKeys::from_config(&arguments.trusted)?, "--trusted")
    })
}

/// Prints how the signature checked out; a bad one fails the command.
fn report_signature(file: &Path, status: SignatureStatus, source: &str) -> ExitCode {
    let sig_path = signature_path(file);
    match status {
        SignatureStatus::Unsigned => {
            println!(
                "signature   none ({} not found; appliances refuse it unless allow_unsigned)",
                sig_path.display()
            );
            ExitCode::SUCCESS
        }
        SignatureStatus::Verified { key_id } => {
            println!("signature   valid, key {key_id} (trusted by {source})");
            ExitCode::SUCCESS
        }
        SignatureStatus::Unchecked { key_id } => {
            println!(
                "signature   by key {key_id}, not verified: no trusted keys \
                 (give --trusted or set bundles.trusted_keys)"
            );
            ExitCode::SUCCESS
        }
        SignatureStatus::Bad { reason } => {
            println!("signature   BAD: {reason}");
            eprintln!("packctl: {}: bad signature: {reason}", sig_path.display());
            ExitCode::FAILURE
        }
    }
}

/// Temporary files are created 0600; an archive and its signature are for sharing (0644).
fn make_readable(file: &fs::File, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot set the permissions of {}", path.display()))
}

/// `1.5 MiB`-style sizes for people (exact byte counts are printed beside them).
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
