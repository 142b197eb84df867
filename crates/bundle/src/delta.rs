//! Delta archives: a bundle archive that carries only the files an installed bundle of the same
//! name lacks. It holds the new bundle's whole `manifest.toml`, the files whose SHA-256 the base
//! bundle does not have, and `delta.toml`, which names the base (name, version and the SHA-256
//! of its manifest, which pins every file of it) and the full archive it stands for.
//!
//! A delta is signed like any archive, so nothing changes on the wire: the appliance receives and
//! checks it as any push, then [`assemble`]s the bundle from the base and verifies the result
//! exactly as a full push (manifest, every file hash, self-test). docs/bundle-format.md has the
//! format.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::{is_safe_relative_path, Manifest};
use crate::{sha256_file, MANIFEST_FILE};

/// The file that makes an archive a delta.
pub const DELTA_FILE: &str = "delta.toml";
const SCHEMA: u32 = 1;

/// Why a delta cannot be made or assembled.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// `delta.toml` or the manifest does not parse, or names something it may not.
    #[error("{DELTA_FILE}: {0}")]
    Invalid(String),
    /// The base bundle is not installed here.
    #[error("this delta needs {label} installed, and it is not")]
    BaseMissing {
        /// `name@version` of the base.
        label: String,
    },
    /// The installed bundle under the base's label is not the one the delta was made from.
    #[error("the installed {label} is not the bundle this delta was made from (manifest SHA-256 differs)")]
    BaseDiffers {
        /// `name@version` of the base.
        label: String,
    },
    /// A listed file is neither in the delta nor in the base.
    #[error("file '{path}' is neither in the delta nor in the base bundle")]
    Unavailable {
        /// The file's path in the new bundle.
        path: String,
    },
    /// The files to copy from the base do not fit the free space.
    #[error("assembling needs {needed} bytes and only {available} are free")]
    NoSpace {
        /// Bytes to copy.
        needed: u64,
        /// Bytes free beyond the margin.
        available: u64,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DeltaError + '_ {
    move |source| DeltaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `delta.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaInfo {
    /// The format of this file (1).
    pub schema: u32,
    /// The installed bundle the missing files come from.
    pub base: Base,
    /// The full archive this delta stands for: what the appliance records as installed, so a
    /// later `begin` of the full archive answers `installed`.
    pub full: FullArchive,
}

/// The base bundle of a delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// Its name (the new bundle's too).
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of its `manifest.toml`, in hex.
    pub manifest_sha256: String,
}

/// Size and SHA-256 of a full archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullArchive {
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

impl DeltaInfo {
    /// `name@version` of the base, as the store labels it.
    pub fn base_label(&self) -> String {
        format!("{}@{}", self.base.name, self.base.version)
    }
}

/// Reads `delta.toml` from an unpacked archive; `None` for a full bundle.
pub fn read_info(dir: &Path) -> Result<Option<DeltaInfo>, DeltaError> {
    let path = dir.join(DELTA_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io(&path)(error)),
    };
    let info: DeltaInfo =
        toml::from_str(&text).map_err(|e| DeltaError::Invalid(e.message().to_string()))?;
    if info.schema != SCHEMA {
        return Err(DeltaError::Invalid(format!(
            "schema {} is not {SCHEMA}",
            info.schema
        )));
    }
    Ok(Some(info))
}

fn read_manifest(dir: &Path) -> Result<Manifest, DeltaError> {
    let path = dir.join(MANIFEST_FILE);
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    let manifest = Manifest::parse(&text)
        .map_err(|e| DeltaError::Invalid(format!("{MANIFEST_FILE}: {}", e.message())))?;
    if let Some(entry) = manifest
        .files
        .iter()
        .find(|entry| !is_safe_relative_path(&entry.path))
    {
        return Err(DeltaError::Invalid(format!(
            "{MANIFEST_FILE} lists an unsafe path '{}'",
            entry.path
        )));
    }
    Ok(manifest)
}

/// SHA-256 of a bundle's `manifest.toml`, in hex.
pub fn manifest_sha256(dir: &Path) -> Result<String, DeltaError> {
    let path = dir.join(MANIFEST_FILE);
    sha256_file(&path).map_err(io(&path))
}

/// Completes an unpacked delta in `staging` from the installed base in `base_dir`: each file
/// the new manifest lists and the delta lacks is copied from the base file with the same SHA-256,
/// then `delta.toml` goes, leaving what a full archive would unpack to. The caller verifies the
/// result as it verifies any bundle. `available`: bytes the copies may take.
pub fn assemble(
    staging: &Path,
    base_dir: &Path,
    info: &DeltaInfo,
    available: u64,
) -> Result<u64, DeltaError> {
    if manifest_sha256(base_dir)? != info.base.manifest_sha256 {
        return Err(DeltaError::BaseDiffers {
            label: info.base_label(),
        });
    }
    let manifest = read_manifest(staging)?;
    if manifest.name != info.base.name {
        return Err(DeltaError::Invalid(format!(
            "the delta makes '{}' from a base named '{}'",
            manifest.name, info.base.name
        )));
    }
    let base = read_manifest(base_dir)?;
    let in_base: BTreeMap<&str, &str> = base
        .files
        .iter()
        .map(|entry| (entry.sha256.as_str(), entry.path.as_str()))
        .collect();
    let mut copies = Vec::new();
    for entry in &manifest.files {
        let target = staging.join(&entry.path);
        if target.exists() {
            continue;
        }
        let from = in_base
            .get(entry.sha256.to_ascii_lowercase().as_str())
            .or_else(|| in_base.get(entry.sha256.as_str()))
            .ok_or_else(|| DeltaError::Unavailable {
                path: entry.path.clone(),
            })?;
        copies.push((base_dir.join(from), target, entry.size));
    }
    let needed: u64 = copies.iter().map(|(_, _, size)| size).sum();
    if needed > available {
        return Err(DeltaError::NoSpace { needed, available });
    }
    for (from, to, _) in &copies {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::copy(from, to).map_err(io(from))?;
    }
    let info_path = staging.join(DELTA_FILE);
    fs::remove_file(&info_path).map_err(io(&info_path))?;
    Ok(needed)
}

/// What [`make`] put in a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaContents {
    /// Files carried (beside the manifest and `delta.toml`).
    pub carried: Vec<String>,
    /// Their bytes.
    pub carried_bytes: u64,
    /// Files the appliance takes from the base.
    pub reused: usize,
}

/// Writes into `out` (empty) the folder of a delta from the unpacked bundle `new_dir` to the
/// unpacked `base_dir`: the new manifest, the files whose SHA-256 the base lacks, `delta.toml`.
pub fn make(
    new_dir: &Path,
    base_dir: &Path,
    full: FullArchive,
    out: &Path,
) -> Result<DeltaContents, DeltaError> {
    let manifest = read_manifest(new_dir)?;
    let base = read_manifest(base_dir)?;
    if manifest.name != base.name {
        return Err(DeltaError::Invalid(format!(
            "a delta is between versions of one bundle: '{}' and '{}'",
            manifest.name, base.name
        )));
    }
    let in_base: BTreeSet<String> = base
        .files
        .iter()
        .map(|entry| entry.sha256.to_ascii_lowercase())
        .collect();
    fs::create_dir_all(out).map_err(io(out))?;
    let copy = |relative: &str| -> Result<(), DeltaError> {
        let to = out.join(relative);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let from = new_dir.join(relative);
        fs::copy(&from, &to).map(|_| ()).map_err(io(&from))
    };
    copy(MANIFEST_FILE)?;
    let mut contents = DeltaContents {
        carried: Vec::new(),
        carried_bytes: 0,
        reused: 0,
    };
    for entry in &manifest.files {
        if in_base.contains(&entry.sha256.to_ascii_lowercase()) {
            contents.reused += 1;
        } else {
            copy(&entry.path)?;
            contents.carried.push(entry.path.clone());
            contents.carried_bytes += entry.size;
        }
    }
    let info = DeltaInfo {
        schema: SCHEMA,
        base: Base {
            name: base.name,
            version: base.version,
            manifest_sha256: manifest_sha256(base_dir)?,
        },
        full,
    };
    let text = toml::to_string(&info).map_err(|e| DeltaError::Invalid(e.to_string()))?;
    let path = out.join(DELTA_FILE);
    fs::write(&path, text).map_err(io(&path))?;
    Ok(contents)
}

/// Checks an unpacked delta on its own (what packctl can before signing or sending it): its
/// `delta.toml` and manifest parse, every file it carries is listed with that hash, and it
/// carries nothing else. Returns both.
pub fn verify_unpacked(dir: &Path) -> Result<(DeltaInfo, Manifest), DeltaError> {
    let info = read_info(dir)?.ok_or_else(|| DeltaError::Invalid("absent".into()))?;
    let manifest = read_manifest(dir)?;
    if manifest.name != info.base.name {
        return Err(DeltaError::Invalid(format!(
            "the delta makes '{}' from a base named '{}'",
            manifest.name, info.base.name
        )));
    }
    let listed: BTreeMap<&str, &str> = manifest
        .files
        .iter()
        .map(|entry| (entry.path.as_str(), entry.sha256.as_str()))
        .collect();
    for relative in crate::list_files(dir).map_err(|e| DeltaError::Invalid(e.to_string()))? {
        if relative == MANIFEST_FILE || relative == DELTA_FILE {
            continue;
        }
        let expected = listed.get(relative.as_str()).ok_or_else(|| {
            DeltaError::Invalid(format!("'{relative}' is not listed in the manifest"))
        })?;
        let path = dir.join(&relative);
        let found = sha256_file(&path).map_err(io(&path))?;
        if !found.eq_ignore_ascii_case(expected) {
            return Err(DeltaError::Invalid(format!(
                "'{relative}' does not match its manifest hash"
            )));
        }
    }
    Ok((info, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileEntry;

    /// A bundle folder with the shipped manifest, its version and files replaced by `files`.
    fn folder(version: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
        let shipped = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../engines/packd-default/manifest.toml"
        ));
        let mut manifest = Manifest::parse(&fs::read_to_string(shipped).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        manifest.version = version.into();
        manifest.files = files
            .iter()
            .map(|(path, text)| {
                let file = dir.path().join(path);
                fs::create_dir_all(file.parent().unwrap()).unwrap();
                fs::write(&file, text).unwrap();
                FileEntry {
                    path: path.to_string(),
                    sha256: sha256_file(&file).unwrap(),
                    size: text.len() as u64,
                }
            })
            .collect();
        fs::write(
            dir.path().join(MANIFEST_FILE),
            toml::to_string(&manifest).unwrap(),
        )
        .unwrap();
        dir
    }

    fn full() -> FullArchive {
        FullArchive {
            size: 123,
            sha256: "ab".repeat(32),
        }
    }

    fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        crate::list_files(dir)
            .unwrap()
            .into_iter()
            .map(|relative| {
                let bytes = fs::read(dir.join(&relative)).unwrap();
                (relative, bytes)
            })
            .collect()
    }

    #[test]
    fn a_delta_carries_what_the_base_lacks_and_assembles_to_the_new_bundle() {
        let base = folder("1.0.0", &[("a.json", "same"), ("c/b.json", "old")]);
        let new = folder(
            "1.1.0",
            &[
                ("a.json", "same"),
                ("c/b.json", "new"),
                ("moved.json", "old"),
            ],
        );
        let out = tempfile::tempdir().unwrap();
        let contents = make(new.path(), base.path(), full(), out.path()).unwrap();
        // b.json changed; a.json and moved.json (same bytes as the old b.json) come from the base.
        assert_eq!(contents.carried, ["c/b.json"]);
        assert_eq!((contents.carried_bytes, contents.reused), (3, 2));
        let (info, manifest) = verify_unpacked(out.path()).unwrap();
        assert_eq!(
            (info.base.version.as_str(), manifest.version.as_str()),
            ("1.0.0", "1.1.0")
        );
        assert_eq!(info.full, full());

        let copied = assemble(out.path(), base.path(), &info, u64::MAX).unwrap();
        assert_eq!(copied, 4 + 3);
        assert_eq!(tree(out.path()), tree(new.path()));
    }

    #[test]
    fn a_delta_is_refused_on_another_base_without_space_or_with_a_file_nowhere() {
        let base = folder("1.0.0", &[("a.json", "same"), ("b.json", "old")]);
        let new = folder("1.1.0", &[("a.json", "same"), ("b.json", "new")]);
        let make_delta = || {
            let out = tempfile::tempdir().unwrap();
            make(new.path(), base.path(), full(), out.path()).unwrap();
            let info = read_info(out.path()).unwrap().unwrap();
            (out, info)
        };
        let (out, info) = make_delta();
        assert!(matches!(
            assemble(out.path(), base.path(), &info, 3),
            Err(DeltaError::NoSpace {
                needed: 4,
                available: 3
            })
        ));
        fs::remove_file(out.path().join("b.json")).unwrap();
        assert!(matches!(
            assemble(out.path(), base.path(), &info, u64::MAX),
            Err(DeltaError::Unavailable { path }) if path == "b.json"
        ));
        let (out, info) = make_delta();
        let other = folder("1.0.0", &[("a.json", "same"), ("b.json", "other")]);
        assert!(matches!(
            assemble(out.path(), other.path(), &info, u64::MAX),
            Err(DeltaError::BaseDiffers { .. })
        ));
        assert!(
            out.path().join(DELTA_FILE).exists(),
            "nothing was assembled"
        );
    }

    #[test]
    fn a_tampered_or_unlisted_file_in_a_delta_is_invalid() {
        let base = folder("1.0.0", &[("a.json", "same")]);
        let new = folder("1.1.0", &[("a.json", "same"), ("b.json", "new")]);
        let out = tempfile::tempdir().unwrap();
        make(new.path(), base.path(), full(), out.path()).unwrap();
        fs::write(out.path().join("b.json"), "NEW").unwrap();
        assert!(
            matches!(verify_unpacked(out.path()), Err(DeltaError::Invalid(m)) if m.contains("b.json"))
        );
        fs::write(out.path().join("b.json"), "new").unwrap();
        fs::write(out.path().join("extra.json"), "x").unwrap();
        assert!(
            matches!(verify_unpacked(out.path()), Err(DeltaError::Invalid(m)) if m.contains("extra.json"))
        );
        assert!(read_info(base.path()).unwrap().is_none());
        fs::write(base.path().join(DELTA_FILE), "schema = 2").unwrap();
        assert!(read_info(base.path()).is_err());
    }
}
