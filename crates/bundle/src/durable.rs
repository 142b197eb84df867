//! Writes that survive a power cut, and streaming file hashes: the one place the fsync and
//! rename sequences live, so every caller gets them in the same order.
//!
//! A file replaced with [`replace_file`] is either the old one or the new one after a crash,
//! never a mix: the new bytes go to a temporary file beside it, are synced, renamed over it, and
//! the directory is synced so the rename itself is on disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::crashpoint;

/// A filesystem operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FsError {
    /// The file or directory the failing call was given.
    pub path: PathBuf,
    /// What the operating system answered.
    pub source: io::Error,
}

impl FsError {
    fn at(path: &Path) -> impl FnOnce(io::Error) -> FsError + '_ {
        move |source| FsError {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Crash-point labels for the steps of [`replace_file_stepped`]; `None` marks no step, so a
/// write outside an install does not shift the power-loss test's step numbers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplaceSteps {
    /// The temporary file holds the new bytes (not yet synced).
    pub(crate) written: Option<&'static str>,
    /// The temporary file is synced.
    pub(crate) synced: Option<&'static str>,
    /// The temporary file has been renamed over the target.
    pub(crate) renamed: Option<&'static str>,
    /// The directory holding the target is synced.
    pub(crate) dir_synced: Option<&'static str>,
}

/// Crash-point labels for the steps of [`rename_stepped`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RenameSteps {
    /// The rename is done (not yet synced).
    pub(crate) renamed: Option<&'static str>,
    /// The directories involved are synced.
    pub(crate) dir_synced: Option<&'static str>,
}

fn mark(step: Option<&'static str>) {
    if let Some(label) = step {
        crashpoint::step(label);
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Syncs a directory, so the entries created, renamed or removed in it are on disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(FsError::at(dir))
}

/// Syncs a file already written (by a copy, say) to disk.
pub(crate) fn sync_file(path: &Path) -> Result<(), FsError> {
    File::open(path)
        .and_then(|handle| handle.sync_all())
        .map_err(FsError::at(path))
}

/// Replaces `path` with `bytes` atomically: written to `{path}.tmp`, synced, renamed over
/// `path`, then the directory synced.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    replace_file_stepped(path, bytes, &ReplaceSteps::default())
}

/// [`replace_file`], marking a crash point after each step that has a label.
pub(crate) fn replace_file_stepped(
    path: &Path,
    bytes: &[u8],
    steps: &ReplaceSteps,
) -> Result<(), FsError> {
    let mut temporary_name = path.file_name().unwrap_or_default().to_os_string();
    temporary_name.push(".tmp");
    let temporary = path.with_file_name(temporary_name);
    let mut file = File::create(&temporary).map_err(FsError::at(&temporary))?;
    file.write_all(bytes).map_err(FsError::at(&temporary))?;
    mark(steps.written);
    file.sync_all().map_err(FsError::at(&temporary))?;
    mark(steps.synced);
    fs::rename(&temporary, path).map_err(FsError::at(path))?;
    mark(steps.renamed);
    sync_dir(parent_of(path))?;
    mark(steps.dir_synced);
    Ok(())
}

/// Creates `path` (refusing one that exists) with `mode` and `bytes`, then syncs it and its
/// directory.
pub(crate) fn create_new_file(path: &Path, mode: u32, bytes: &[u8]) -> Result<(), FsError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(FsError::at(path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(FsError::at(path))?;
    sync_dir(parent_of(path))
}

/// Renames `from` to `to` (a file or a directory) and syncs the directories involved, so the
/// rename survives a power cut.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), FsError> {
    rename_stepped(from, to, &RenameSteps::default())
}

/// [`rename`], marking a crash point after each step that has a label.
pub(crate) fn rename_stepped(from: &Path, to: &Path, steps: &RenameSteps) -> Result<(), FsError> {
    fs::rename(from, to).map_err(FsError::at(to))?;
    mark(steps.renamed);
    let (source_dir, target_dir) = (parent_of(from), parent_of(to));
    sync_dir(target_dir)?;
    if source_dir != target_dir {
        sync_dir(source_dir)?;
    }
    mark(steps.dir_synced);
    Ok(())
}

/// SHA-256 of a file, read in blocks so a large archive is never held in memory.
pub(crate) fn sha256_of_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}

/// [`sha256_of_file`] as lower-case hex, the form manifests and `begin` requests carry.
pub(crate) fn sha256_hex_of_file(path: &Path) -> io::Result<String> {
    sha256_of_file(path).map(hex::encode)
}

#[cfg(test)]
#[path = "durable_tests.rs"]
mod tests;
