//! The bundle directory: one folder per `name@version`, and an `active` pointer replaced
//! atomically, so a crash at any moment leaves either the old or the new bundle active.

use std::fs;
use std::path::{Path, PathBuf};

use crate::durable::{self, RenameSteps, ReplaceSteps};
use crate::{crashpoint, history, Bundle, BundleError, Manifest, MANIFEST_FILE};

/// The pointer file naming the active bundle's folder.
pub(crate) const ACTIVE_POINTER: &str = "active";
/// The bundle that was active before the current one: what `rollback` returns to.
pub const PREVIOUS_POINTER: &str = "previous";
/// The last bundle that loaded and passed its self-test: the fallback at boot.
pub const LAST_GOOD_POINTER: &str = "last-good";
/// Where bundles that failed at boot are set aside.
pub(crate) const REJECTED_DIR: &str = ".rejected";
/// Staging folders (unpacked archives, seed copies) live here until renamed into place.
pub(crate) const STAGING_PREFIX: &str = ".staging-";

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
        self.read_pointer(ACTIVE_POINTER)
    }

    /// Folder name a pointer file names, if it is set and plausible.
    pub fn read_pointer(&self, pointer: &str) -> Option<String> {
        let text = fs::read_to_string(self.dir.join(pointer)).ok()?;
        let label = text.trim().to_string();
        let plausible = !label.is_empty()
            && super::manifest::is_safe_relative_path(&label)
            && !label.contains('/')
            && !label.starts_with('.');
        plausible.then_some(label)
    }

    /// Path of an installed bundle's folder.
    pub fn path_of(&self, label: &str) -> PathBuf {
        self.dir.join(label)
    }

    /// Whether `name@version` is installed.
    pub fn is_installed(&self, label: &str) -> bool {
        self.dir.join(label).join(MANIFEST_FILE).is_file()
    }

    /// A fresh, empty staging folder on the store's filesystem (so the final rename is atomic).
    pub fn staging_dir(&self, purpose: &str) -> Result<PathBuf, BundleError> {
        let staging = self
            .dir
            .join(format!("{STAGING_PREFIX}{purpose}-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(|source| BundleError::Io {
                path: staging.clone(),
                source,
            })?;
        }
        Ok(staging)
    }

    /// Moves a verified staging folder into place as `label`. An identical bundle already
    /// installed under that label is kept (re-pushing the same bundle is harmless); a different
    /// one is refused, since `name@version` must mean one thing across a fleet.
    pub fn install_staged(&self, staging: &Path, label: &str) -> Result<(), BundleError> {
        let target = self.dir.join(label);
        if self.is_installed(label) {
            let same = fs::read(target.join(MANIFEST_FILE)).ok()
                == fs::read(staging.join(MANIFEST_FILE)).ok();
            let _ = fs::remove_dir_all(staging);
            return if same {
                Ok(())
            } else {
                Err(BundleError::Manifest(format!(
                    "a different bundle is already installed as {label}"
                )))
            };
        }
        if target.exists() {
            // A folder without a manifest is the remains of an interrupted removal.
            fs::remove_dir_all(&target).map_err(|source| BundleError::Io {
                path: target.clone(),
                source,
            })?;
        }
        durable::sync_dir(staging)?;
        crashpoint::step("install: staging synced");
        let steps = RenameSteps {
            renamed: Some("install: renamed into place"),
            dir_synced: Some("install: store synced"),
        };
        durable::rename_stepped(staging, &target, &steps)?;
        Ok(())
    }

    /// Makes `label` active and remembers the bundle it replaces as `previous`.
    pub fn activate(&self, label: &str) -> Result<Option<String>, BundleError> {
        let replaced = self.active_label().filter(|current| current != label);
        if let Some(replaced) = &replaced {
            self.write_pointer(PREVIOUS_POINTER, replaced)?;
        }
        self.set_active(label)?;
        Ok(replaced)
    }

    /// Records `label` as the last bundle known to load and pass its self-test.
    pub fn mark_good(&self, label: &str) -> Result<(), BundleError> {
        if self.read_pointer(LAST_GOOD_POINTER).as_deref() == Some(label) {
            return Ok(());
        }
        self.write_pointer(LAST_GOOD_POINTER, label)
    }

    /// Moves a bundle that failed at boot out of the way, keeping it for inspection.
    pub fn set_aside(&self, label: &str) -> Result<PathBuf, BundleError> {
        let rejected = self.dir.join(REJECTED_DIR);
        fs::create_dir_all(&rejected).map_err(|source| BundleError::Io {
            path: rejected.clone(),
            source,
        })?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let target = rejected.join(format!("{label}-{stamp}"));
        durable::rename(&self.dir.join(label), &target)?;
        Ok(target)
    }

    /// Removes an installed bundle; the active one cannot be removed.
    pub fn remove(&self, label: &str) -> Result<(), BundleError> {
        if self.active_label().as_deref() == Some(label) {
            return Err(BundleError::Manifest(format!(
                "{label} is active and cannot be removed"
            )));
        }
        if !self.is_installed(label) {
            return Err(BundleError::MissingFile {
                path: label.to_string(),
            });
        }
        // Rename first so a crash never leaves a half-deleted folder under a valid name.
        let doomed = self.dir.join(format!("{STAGING_PREFIX}removed-{label}"));
        let _ = fs::remove_dir_all(&doomed);
        durable::rename(&self.dir.join(label), &doomed)?;
        fs::remove_dir_all(&doomed).map_err(|source| BundleError::Io {
            path: doomed.clone(),
            source,
        })?;
        for pointer in [PREVIOUS_POINTER, LAST_GOOD_POINTER] {
            if self.read_pointer(pointer).as_deref() == Some(label) {
                let _ = fs::remove_file(self.dir.join(pointer));
            }
        }
        Ok(())
    }

    /// Every installed bundle, oldest first.
    pub fn installed(&self) -> Vec<InstalledBundle> {
        let mut found = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return found;
        };
        for entry in entries.flatten() {
            let label = entry.file_name().to_string_lossy().into_owned();
            if label.starts_with('.') || !entry.path().join(MANIFEST_FILE).is_file() {
                continue;
            }
            let Ok(text) = fs::read_to_string(entry.path().join(MANIFEST_FILE)) else {
                continue;
            };
            let Ok(manifest) = super::Manifest::parse(&text) else {
                continue;
            };
            let installed_at = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            let mut targets = vec!["cpu".to_string()];
            targets.extend(
                manifest
                    .engines
                    .iter()
                    .map(|engine| format!("trt:{}", engine.target)),
            );
            found.push(InstalledBundle {
                label,
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                size: manifest.files.iter().map(|file| file.size).sum(),
                installed_at,
                targets,
            });
        }
        found.sort_by(|a, b| {
            a.installed_at
                .cmp(&b.installed_at)
                .then(a.label.cmp(&b.label))
        });
        found
    }

    /// Removes the oldest bundles beyond `keep`, never the active, previous or last good one,
    /// nor the newest installed version (by semver) of any name: after a few activations of
    /// older versions in a row the newest is none of the pointed ones, and it is the one a fleet
    /// rolls forward to.
    pub fn prune(&self, keep: usize) -> Vec<String> {
        let installed = self.installed();
        let mut protected: Vec<String> = [ACTIVE_POINTER, PREVIOUS_POINTER, LAST_GOOD_POINTER]
            .iter()
            .filter_map(|pointer| self.read_pointer(pointer))
            .chain(newest_of_each_name(&installed))
            .collect();
        protected.sort();
        protected.dedup();
        let mut excess = installed.len().saturating_sub(keep.max(protected.len()));
        let mut removed = Vec::new();
        for bundle in installed {
            if excess == 0 {
                break;
            }
            if protected.contains(&bundle.label) {
                continue;
            }
            if self.remove(&bundle.label).is_ok() {
                removed.push(bundle.label);
                excess -= 1;
            }
        }
        removed
    }

    /// Opens and verifies the active bundle; `Ok(None)` when none is set.
    pub fn open_active(&self) -> Result<Option<Bundle>, BundleError> {
        match self.active_label() {
            Some(label) => Bundle::open(&self.dir.join(label)).map(Some),
            None => Ok(None),
        }
    }

    /// Installs a bundle directory as `name@version` (its copy verified) and makes it active,
    /// unless a bundle is already active: this is how a fresh appliance gets the shipped default.
    /// Returns the installed copy, opened, so that boot need not open it again.
    pub fn seed_from(&self, seed: &Path) -> Result<Option<Bundle>, BundleError> {
        if self.active_label().is_some()
            || seed.as_os_str().is_empty()
            || !seed.join(MANIFEST_FILE).is_file()
        {
            return Ok(None);
        }
        // Only the manifest is read here: the one full open is of the copy, which checks every
        // file's digest and parses the bundle once (at opt-level 0, each open was ~1 s of a
        // first boot).
        let manifest = Bundle::read_manifest(seed)?;
        let label = manifest.label();
        let target = self.dir.join(&label);
        let copied = !target.join(MANIFEST_FILE).is_file();
        if copied {
            let staging = self
                .dir
                .join(format!("{STAGING_PREFIX}{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&staging);
            copy_tree(seed, &staging, &manifest)?;
            // A leftover half-copy under the final name would be refused by Bundle::open anyway;
            // clear it so the rename can land.
            let _ = fs::remove_dir_all(&target);
            durable::rename(&staging, &target)?;
        }
        let bundle = Bundle::open(&target).inspect_err(|_| {
            // A seed that fails its checks must not stay installed: the next boot would find
            // the copy in place and never look at a repaired seed.
            if copied {
                let _ = fs::remove_dir_all(&target);
            }
        })?;
        self.set_active(&label)?;
        Ok(Some(bundle))
    }

    /// Removes the `active` pointer (nothing installed loads any more).
    pub fn clear_active(&self) -> Result<(), BundleError> {
        let pointer = self.dir.join(ACTIVE_POINTER);
        match fs::remove_file(&pointer) {
            Ok(()) => Ok(durable::sync_dir(&self.dir)?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BundleError::Io {
                path: pointer,
                source,
            }),
        }
    }

    /// Points `active` at an installed bundle (without touching `previous`). Its version is
    /// recorded as activated first: a crash in between can only make the record stricter.
    pub fn set_active(&self, label: &str) -> Result<(), BundleError> {
        self.note_activated(label)?;
        self.write_pointer(ACTIVE_POINTER, label)
    }

    /// The highest version of `name` ever activated here (the active bundle's counts, for a
    /// store older than the record), if any semver one was.
    pub fn highest_activated(&self, name: &str) -> Option<semver::Version> {
        let recorded = history::read(&self.dir, history::HIGHEST_ACTIVATED)
            .remove(name)
            .and_then(|version| semver::Version::parse(&version).ok());
        let active = self.active_label().and_then(|label| {
            let (active_name, version) = history::split_label(&label)?;
            (active_name == name)
                .then(|| semver::Version::parse(version).ok())
                .flatten()
        });
        recorded
            .into_iter()
            .chain(active)
            .max_by(|a, b| a.cmp_precedence(b))
    }

    /// The highest version of `name` activated here when `version` is below it: installing
    /// `version` would be a downgrade.
    pub fn downgrade_from(&self, name: &str, version: &str) -> Option<semver::Version> {
        let version = semver::Version::parse(version).ok()?;
        self.highest_activated(name)
            .filter(|highest| history::is_below(&version, highest))
    }

    /// Records that `label` (`name@version`) is about to be activated.
    fn note_activated(&self, label: &str) -> Result<(), BundleError> {
        let Some((name, version)) = history::split_label(label) else {
            return Ok(());
        };
        let records = history::read(&self.dir, history::HIGHEST_ACTIVATED);
        if !history::raises(records.get(name), version) {
            return Ok(());
        }
        history::write(&self.dir, history::HIGHEST_ACTIVATED, name, version)
    }

    /// Records the SHA-256 (hex) of the archive `label` was installed from.
    pub fn record_archive(&self, label: &str, sha256: &str) -> Result<(), BundleError> {
        history::write(
            &self.dir,
            history::ARCHIVES,
            label,
            &sha256.to_ascii_lowercase(),
        )
    }

    /// Whether `label` is installed from the archive whose SHA-256 (hex) is `sha256`.
    pub fn installed_from(&self, label: &str, sha256: &str) -> bool {
        self.is_installed(label)
            && history::read(&self.dir, history::ARCHIVES)
                .get(label)
                .is_some_and(|recorded| recorded.eq_ignore_ascii_case(sha256))
    }

    /// Replaces a pointer file atomically: temporary file, fsync, rename, fsync of the folder.
    fn write_pointer(&self, pointer: &str, label: &str) -> Result<(), BundleError> {
        let steps = ReplaceSteps {
            written: Some("pointer: written"),
            synced: Some("pointer: synced"),
            renamed: Some("pointer: switched"),
            dir_synced: Some("pointer: store synced"),
        };
        durable::replace_file_stepped(
            &self.dir.join(pointer),
            format!("{label}\n").as_bytes(),
            &steps,
        )?;
        Ok(())
    }
}

/// One installed bundle, as `list` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledBundle {
    /// Its folder name, `name@version`.
    pub label: String,
    /// The manifest's name.
    pub name: String,
    /// The manifest's version.
    pub version: String,
    /// Bytes of the files the manifest lists.
    pub size: u64,
    /// When it was installed (its folder's modification time).
    pub installed_at: std::time::SystemTime,
    /// Where it can run: `cpu` always, plus each TensorRT engine's target.
    pub targets: Vec<String>,
}

/// The label of the highest semver version installed under each name; versions that are not
/// semver are ignored here (they are only ever pruned oldest first).
fn newest_of_each_name(installed: &[InstalledBundle]) -> Vec<String> {
    let mut newest: std::collections::BTreeMap<&str, (semver::Version, &str)> =
        std::collections::BTreeMap::new();
    for bundle in installed {
        let Ok(version) = semver::Version::parse(&bundle.version) else {
            continue;
        };
        match newest.get(bundle.name.as_str()) {
            Some((best, _)) if best.cmp_precedence(&version).is_ge() => {}
            _ => {
                newest.insert(&bundle.name, (version, &bundle.label));
            }
        }
    }
    newest
        .into_values()
        .map(|(_, label)| label.to_string())
        .collect()
}

fn copy_tree(source: &Path, target: &Path, manifest: &Manifest) -> Result<(), BundleError> {
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
        Ok(durable::sync_file(&to)?)
    };
    copy(MANIFEST_FILE)?;
    for entry in &manifest.files {
        copy(&entry.path)?;
    }
    Ok(durable::sync_dir(target)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal installed folder: `installed()` and `remove()` need only a manifest file.
    fn fake_install(store: &BundleStore, label: &str) {
        let (name, version) = label.split_once('@').unwrap();
        let dir = store.path_of(label);
        fs::create_dir_all(&dir).unwrap();
        let manifest = format!(
            "schema = 1\nname = \"{name}\"\nversion = \"{version}\"\ncreated = \"x\"\nfiles = []\n\
             [model]\nfp32 = \"a\"\nint8 = \"a\"\ncalibration_cache = \"a\"\nvocabulary = \"a\"\nselftest = \"a\"\n\
             layout_grid = [1, 1]\ninputs = []\noutputs = []\n\
             [catalogues]\nstyles = {{ file = \"a\", version = \"1\", count = 0 }}\n\
             palettes = {{ file = \"a\", version = \"1\", count = 0 }}\n\
             fonts = {{ file = \"a\", version = \"1\", count = 0 }}\n\
             layouts = {{ file = \"a\", version = \"1\", count = 0 }}\n"
        );
        fs::write(dir.join(MANIFEST_FILE), manifest).unwrap();
    }

    #[test]
    fn the_highest_activated_version_only_rises_and_outlives_the_store_handle() {
        let dir = tempfile::tempdir().unwrap();
        let store = BundleStore::open(dir.path()).unwrap();
        for label in ["b@1.0.0", "b@2.0.0", "b@1.5.0", "b@nightly", "other@0.1.0"] {
            fake_install(&store, label);
        }
        assert_eq!(store.highest_activated("b"), None);
        store.activate("b@1.0.0").unwrap();
        store.activate("b@2.0.0").unwrap();
        // Rolling back to an older one is allowed and does not lower the record.
        store.activate("b@1.5.0").unwrap();
        store.activate("b@nightly").unwrap();
        store.activate("other@0.1.0").unwrap();
        let reopened = BundleStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.highest_activated("b"),
            Some(semver::Version::new(2, 0, 0))
        );
        assert_eq!(
            reopened.downgrade_from("b", "1.9.9"),
            Some(semver::Version::new(2, 0, 0))
        );
        assert_eq!(reopened.downgrade_from("b", "2.0.0"), None);
        assert_eq!(reopened.downgrade_from("b", "3.0.0"), None);
        assert_eq!(reopened.downgrade_from("b", "not-semver"), None);
        // Build metadata has no precedence: 2.0.0+rebuild.3 is 2.0.0, a prerelease is below it.
        assert_eq!(reopened.downgrade_from("b", "2.0.0+rebuild.3"), None);
        assert_eq!(
            reopened.downgrade_from("b", "2.0.0-rc.1"),
            Some(semver::Version::new(2, 0, 0))
        );
        assert_eq!(reopened.downgrade_from("unknown", "0.0.1"), None);
        // A store from before the record: the active bundle's version counts.
        fs::remove_file(dir.path().join(history::HIGHEST_ACTIVATED)).unwrap();
        assert_eq!(
            reopened.highest_activated("other"),
            Some(semver::Version::new(0, 1, 0))
        );
        assert_eq!(reopened.highest_activated("b"), None);
    }

    #[test]
    fn an_installed_bundle_remembers_its_archive_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BundleStore::open(dir.path()).unwrap();
        fake_install(&store, "b@1.0.0");
        let digest = "AB".repeat(32);
        assert!(!store.installed_from("b@1.0.0", &digest));
        store.record_archive("b@1.0.0", &digest).unwrap();
        assert!(store.installed_from("b@1.0.0", &digest.to_lowercase()));
        assert!(!store.installed_from("b@1.0.0", &"cd".repeat(32)));
        // A damaged record file loses records, never invents one.
        let archives = dir.path().join(history::ARCHIVES);
        let text = fs::read_to_string(&archives).unwrap();
        fs::write(&archives, format!("garbage\n{text}b@9 \n")).unwrap();
        assert!(store.installed_from("b@1.0.0", &digest));
        assert!(!store.installed_from("b@9", ""));
        store.remove("b@1.0.0").unwrap();
        assert!(!store.installed_from("b@1.0.0", &digest));
    }

    #[test]
    fn activation_keeps_previous_and_prune_spares_the_pointed_bundles() {
        let temp = tempfile::tempdir().unwrap();
        let store = BundleStore::open(temp.path()).unwrap();
        for version in ["1", "2", "3", "4", "5"] {
            fake_install(&store, &format!("b@{version}"));
        }
        assert_eq!(store.installed().len(), 5);
        assert_eq!(store.activate("b@1").unwrap(), None);
        store.mark_good("b@1").unwrap();
        assert_eq!(store.activate("b@5").unwrap().as_deref(), Some("b@1"));
        assert_eq!(store.read_pointer(PREVIOUS_POINTER).as_deref(), Some("b@1"));

        let removed = store.prune(3);
        assert_eq!(removed.len(), 2, "{removed:?}");
        let left: Vec<String> = store
            .installed()
            .into_iter()
            .map(|bundle| bundle.label)
            .collect();
        for kept in ["b@1", "b@5"] {
            assert!(
                left.contains(&kept.to_string()),
                "{kept} is active, previous or last good: {left:?}"
            );
        }
        assert_eq!(left.len(), 3);
        assert!(
            store.remove("b@5").is_err(),
            "the active bundle cannot be removed"
        );
    }

    #[test]
    fn pointers_refuse_paths() {
        let temp = tempfile::tempdir().unwrap();
        let store = BundleStore::open(temp.path()).unwrap();
        for bad in ["../escape", "a/b", ".staging-x", ""] {
            fs::write(temp.path().join(ACTIVE_POINTER), format!("{bad}\n")).unwrap();
            assert_eq!(store.active_label(), None, "{bad}");
        }
    }

    /// Sets a bundle folder's install time (what `installed()` orders by).
    fn installed_at(store: &BundleStore, label: &str, seconds: u64) {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000 + seconds);
        fs::File::open(store.path_of(label))
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    /// Finding 4 of issue 13: the appliance runs 2.0.0; 1.0.0 is installed beside it; then
    /// two older versions are installed and activated in a row. Active, previous and last good
    /// now name 1.2.0 and 1.1.0, so the oldest install, 2.0.0, used to be the first pruned.
    #[test]
    fn prune_never_removes_newest_installed_version() {
        let temp = tempfile::tempdir().unwrap();
        let store = BundleStore::open(temp.path()).unwrap();
        // Oldest install first; other@2.10.0 is that name's newest although "2.9.0" sorts
        // after it as text.
        let installs = [
            "other@2.10.0",
            "b@2.0.0",
            "b@1.0.0",
            "other@2.9.0",
            "b@1.1.0",
            "b@1.2.0",
        ];
        for (seconds, label) in installs.into_iter().enumerate() {
            fake_install(&store, label);
            installed_at(&store, label, seconds as u64);
        }
        store.activate("b@2.0.0").unwrap();
        store.mark_good("b@2.0.0").unwrap();
        for older in ["b@1.1.0", "b@1.2.0"] {
            store.activate(older).unwrap();
            store.mark_good(older).unwrap();
        }
        let removed = store.prune(3);
        let left: Vec<String> = store.installed().into_iter().map(|b| b.label).collect();
        for kept in ["b@2.0.0", "other@2.10.0", "b@1.2.0", "b@1.1.0"] {
            assert!(
                left.contains(&kept.to_string()),
                "{kept} pruned: {removed:?}"
            );
        }
        assert_eq!(removed, ["b@1.0.0", "other@2.9.0"]);
    }
}
