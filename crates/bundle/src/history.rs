//! What a store remembers beyond its folders: the highest version of each bundle name it ever
//! activated (a replayed old bundle is a downgrade, refused unless signed to allow it) and the
//! SHA-256 of the archive each installed bundle came from (a `begin` for that exact archive
//! answers `installed`, and nothing is sent twice). Each is a small text file of
//! `key value` lines in the store, replaced atomically.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::durable;
use crate::BundleError;

/// `name version` lines: the highest semver version of each name ever activated here.
pub(crate) const HIGHEST_ACTIVATED: &str = "highest-activated";
/// `name@version sha256` lines: the archive each installed bundle was unpacked from.
pub(crate) const ARCHIVES: &str = "archives";

/// The name and version of a folder label (`name@version`).
pub(crate) fn split_label(label: &str) -> Option<(&str, &str)> {
    label.rsplit_once('@')
}

/// The `key value` lines of `file` in `dir`; a missing file is empty, and a line that does not
/// have two fields is skipped (a record can only ever be lost, never invented).
pub(crate) fn read(dir: &Path, file: &str) -> BTreeMap<String, String> {
    let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (!key.is_empty() && !value.is_empty() && !value.contains(' '))
                .then(|| (key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Sets `key` to `value` in `file` in `dir`, replacing the file atomically.
pub(crate) fn write(dir: &Path, file: &str, key: &str, value: &str) -> Result<(), BundleError> {
    let mut records = read(dir, file);
    records.insert(key.to_owned(), value.to_owned());
    let text: String = records
        .iter()
        .map(|(key, value)| format!("{key} {value}\n"))
        .collect();
    durable::replace_file(&dir.join(file), text.as_bytes())?;
    Ok(())
}

/// Whether `version` is semver and takes precedence over `recorded` (or nothing is recorded); a
/// version that is not semver is never recorded, since it cannot be compared.
pub(crate) fn raises(recorded: Option<&String>, version: &str) -> bool {
    let Ok(version) = semver::Version::parse(version) else {
        return false;
    };
    recorded
        .and_then(|recorded| semver::Version::parse(recorded).ok())
        .is_none_or(|recorded| is_below(&recorded, &version))
}

/// Semver precedence: build metadata (`+build.7`) does not count, so `1.0.0+build.7` is neither
/// above nor below `1.0.0`.
pub(crate) fn is_below(version: &semver::Version, other: &semver::Version) -> bool {
    version.cmp_precedence(other) == std::cmp::Ordering::Less
}
