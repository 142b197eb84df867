//! The bundle directory: one folder per `name@version`, and an `active` pointer replaced
//! atomically, so a crash at any moment leaves either the old or the new bundle active.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Bundle, BundleError, MANIFEST_FILE};

/// The pointer file naming the active bundle's folder.
pub const ACTIVE_POINTER: &str = "active";
const STAGING_PREFIX: &str = ".staging-";

/// Installed bundles under one directory.
#[derive(Debug, Clone)]
pub struct BundleStore {
    dir: PathBuf,
}

impl BundleStore {
    /// Opens (creating if needed) the store and clears staging left by an interrupted install.
    pub fn open(dir: &Path) -> Result<BundleStore, BundleError> {
        fs::create_dir_all(dir).map_err(|source| BundleError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let entries = fs::read_dir(dir).map_err(|source| BundleError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(STAGING_PREFIX)
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        Ok(BundleStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Folder name of the active bundle, if one is set.
    pub fn active_label(&self) -> Option<String> {
        let text = fs::read_to_string(self.dir.join(ACTIVE_POINTER)).ok()?;
        let label = text.trim().to_string();
        (!label.is_empty()
            && super::manifest::is_safe_relative_path(&label)
            && !label.contains('/'))
        .then_some(label)
    }

    /// Opens and verifies the active bundle; `Ok(None)` when none is set.
    pub fn open_active(&self) -> Result<Option<Bundle>, BundleError> {
        match self.active_label() {
            Some(label) => Bundle::open(&self.dir.join(label)).map(Some),
            None => Ok(None),
        }
    }

    /// Installs a bundle directory as `name@version` (verified first) and makes it active,
    /// unless a bundle is already active: this is how a fresh appliance gets the shipped default.
    pub fn seed_from(&self, seed: &Path) -> Result<Option<String>, BundleError> {
        if self.active_label().is_some()
            || seed.as_os_str().is_empty()
            || !seed.join(MANIFEST_FILE).is_file()
        {
            return Ok(None);
        }
        let bundle = Bundle::open(seed)?;
        let label = bundle.label();
        let target = self.dir.join(&label);
        if !target.join(MANIFEST_FILE).is_file() {
            let staging = self
                .dir
                .join(format!("{STAGING_PREFIX}{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&staging);
            copy_tree(seed, &staging, &bundle)?;
            // A leftover half-copy under the final name would be refused by Bundle::open anyway;
            // clear it so the rename can land.
            let _ = fs::remove_dir_all(&target);
            fs::rename(&staging, &target).map_err(|source| BundleError::Io {
                path: target.clone(),
                source,
            })?;
            sync_dir(&self.dir)?;
        }
        Bundle::open(&target)?;
        self.set_active(&label)?;
        Ok(Some(label))
    }

    /// Points `active` at an installed bundle: write a temporary file, fsync, rename, fsync dir.
    pub fn set_active(&self, label: &str) -> Result<(), BundleError> {
        let temporary = self.dir.join(format!("{ACTIVE_POINTER}.tmp"));
        let final_path = self.dir.join(ACTIVE_POINTER);
        let io = |source| BundleError::Io {
            path: temporary.clone(),
            source,
        };
        let mut file = fs::File::create(&temporary).map_err(io)?;
        file.write_all(format!("{label}\n").as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temporary, &final_path).map_err(|source| BundleError::Io {
            path: final_path.clone(),
            source,
        })?;
        sync_dir(&self.dir)
    }
}

fn copy_tree(source: &Path, target: &Path, bundle: &Bundle) -> Result<(), BundleError> {
    let copy = |relative: &str| -> Result<(), BundleError> {
        let from = source.join(relative);
        let to = target.join(relative);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|source| BundleError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        fs::copy(&from, &to).map_err(|source| BundleError::Io {
            path: to.clone(),
            source,
        })?;
        fs::File::open(&to)
            .and_then(|file| file.sync_all())
            .map_err(|source| BundleError::Io {
                path: to.clone(),
                source,
            })
    };
    copy(MANIFEST_FILE)?;
    for entry in &bundle.manifest.files {
        copy(&entry.path)?;
    }
    sync_dir(target)
}

fn sync_dir(dir: &Path) -> Result<(), BundleError> {
    fs::File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(|source| BundleError::Io {
            path: dir.to_path_buf(),
            source,
        })
}
