//! Unpacking an archive that is hostile until every entry has been checked.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::{
    read_magic, ArchiveError, UnpackLimits, UnpackReport, DIR_MODE, FILE_MODE,
    STREAM_OVERHEAD_FIXED, STREAM_OVERHEAD_PER_ENTRY, ZSTD_MAGIC,
};
use crate::durable;
use crate::manifest::is_safe_relative_path;
use crate::{crashpoint, MANIFEST_FILE};

/// Marks the error a [`CappedReader`] raises, so it is reported as too large, not as corrupt.
#[derive(Debug)]
struct StreamCapExceeded;

impl std::fmt::Display for StreamCapExceeded {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("decompressed archive stream exceeds its limit")
    }
}

impl std::error::Error for StreamCapExceeded {}

// Fails once more than `cap` bytes have been read: the decompressed stream as a whole is
// bounded, whatever the entries' headers say.
struct CappedReader<R> {
    inner: R,
    read_so_far: u64,
    cap: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let allowed = self.cap.saturating_sub(self.read_so_far);
        if allowed == 0 && !buffer.is_empty() {
            // Only an error if the stream really goes on past the cap.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(StreamCapExceeded)),
            };
        }
        let window = buffer
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buffer[..window])?;
        self.read_so_far += read as u64;
        Ok(read)
    }
}

fn is_cap_exceeded(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<StreamCapExceeded>())
}

/// Unpacks a bundle archive (plain or zstd tar) into `into`, which must be absent or empty.
pub fn unpack(
    archive: &Path,
    into: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackReport, ArchiveError> {
    fs::create_dir_all(into).map_err(|e| ArchiveError::io(into, e))?;
    let mut existing = fs::read_dir(into).map_err(|e| ArchiveError::io(into, e))?;
    if existing.next().is_some() {
        return Err(ArchiveError::DestinationNotEmpty {
            path: into.to_path_buf(),
        });
    }
    let result = unpack_checked(archive, into, limits);
    // `into` was empty, so everything in it now is ours: a refused archive leaves nothing behind.
    if result.is_err() {
        clear_directory(into);
    }
    result
}

fn clear_directory(dir: &Path) {
    if let Ok(listing) = fs::read_dir(dir) {
        for entry in listing.flatten() {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    File,
    Dir,
    /// A parent created for a file whose directory had no entry of its own.
    ImplicitDir,
}

// Open → check each entry → write it → sync what was made. Each step refuses on its own terms,
// and `unpack` clears whatever was written before a refusal.
fn unpack_checked(
    archive: &Path,
    into: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackReport, ArchiveError> {
    let mut tar = tar::Archive::new(open_stream(archive, limits)?);
    let mut unpacker = Unpacker::new(into, limits);
    for entry in tar.entries().map_err(|e| stream_error(e, limits))? {
        let mut entry = entry.map_err(|e| stream_error(e, limits))?;
        if let Some(checked) = unpacker.check_entry(&entry)? {
            unpacker.write_entry(checked, &mut entry)?;
        }
    }
    unpacker.finish()
}

/// The archive's tar stream, decompressed if it is zstd, and capped so that neither entries nor
/// tar's own metadata can make it read past what `limits` allow.
fn open_stream(
    archive: &Path,
    limits: &UnpackLimits,
) -> Result<CappedReader<Box<dyn Read>>, ArchiveError> {
    let mut file = File::open(archive).map_err(|e| ArchiveError::io(archive, e))?;
    let stream: Box<dyn Read> = if read_magic(&mut file, archive)? == Some(ZSTD_MAGIC) {
        Box::new(
            zstd::stream::read::Decoder::new(file)
                .map_err(|e| ArchiveError::Corrupt(e.to_string()))?,
        )
    } else {
        Box::new(BufReader::new(file))
    };
    let cap = limits
        .max_total_bytes
        .saturating_add(limits.max_files.saturating_mul(STREAM_OVERHEAD_PER_ENTRY))
        .saturating_add(STREAM_OVERHEAD_FIXED);
    Ok(CappedReader {
        inner: stream,
        read_so_far: 0,
        cap,
    })
}

/// A read error of the tar stream: too large when the cap stopped it, corrupt otherwise.
fn stream_error(error: io::Error, limits: &UnpackLimits) -> ArchiveError {
    if is_cap_exceeded(&error) {
        ArchiveError::TotalTooLarge {
            limit: limits.max_total_bytes,
        }
    } else {
        ArchiveError::Corrupt(error.to_string())
    }
}

/// An entry that passed its checks: where it goes and what it is.
struct CheckedEntry {
    relative: String,
    is_dir: bool,
}

/// What an unpack has written so far, against the limits it answers to.
struct Unpacker<'a> {
    into: &'a Path,
    limits: &'a UnpackLimits,
    written: HashMap<String, Written>,
    /// Every directory made, `into` first: all are synced once the last entry is written.
    created_dirs: Vec<PathBuf>,
    entry_count: u64,
    report: UnpackReport,
    copy_buffer: Vec<u8>,
}

impl<'a> Unpacker<'a> {
    fn new(into: &'a Path, limits: &'a UnpackLimits) -> Unpacker<'a> {
        Unpacker {
            into,
            limits,
            written: HashMap::new(),
            created_dirs: vec![into.to_path_buf()],
            entry_count: 0,
            report: UnpackReport {
                files: Vec::new(),
                total_bytes: 0,
            },
            copy_buffer: vec![0u8; 64 * 1024],
        }
    }

    /// Checks an entry's kind, path, count and clashes; `None` for one to skip.
    fn check_entry<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
    ) -> Result<Option<CheckedEntry>, ArchiveError> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            // Archive-wide metadata (git archive writes one); tar never applies its values to
            // entries, so skipping it cannot change where anything lands.
            return Ok(None);
        }
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let is_dir = match kind {
            EntryType::Regular => false,
            EntryType::Directory => true,
            other => {
                return Err(ArchiveError::UnsupportedEntry {
                    path: raw_path,
                    kind: describe_entry_type(other),
                })
            }
        };
        let Some(relative) = entry_path(&entry.path_bytes(), is_dir) else {
            return Err(ArchiveError::UnsafePath { path: raw_path });
        };

        // A directory already created as some file's parent was counted then.
        if !(is_dir && self.written.get(&relative) == Some(&Written::ImplicitDir)) {
            self.entry_count += 1;
        }
        if self.entry_count > self.limits.max_files {
            return Err(ArchiveError::TooManyFiles {
                limit: self.limits.max_files,
            });
        }
        check_no_clash(&self.written, &relative)?;
        Ok(Some(CheckedEntry { relative, is_dir }))
    }

    /// Creates a checked entry's missing parents, then the directory or file itself.
    fn write_entry<R: Read>(
        &mut self,
        checked: CheckedEntry,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ArchiveError> {
        let CheckedEntry { relative, is_dir } = checked;
        // Parents the archive never named count as entries too, or a few deep paths would
        // create far more directories than `max_files` (the archive fuzz target's check of
        // what an unpack leaves, on a hand-written deep-path archive).
        make_parents(
            self.into,
            &relative,
            &mut self.written,
            &mut self.created_dirs,
            &mut self.entry_count,
            self.limits.max_files,
        )?;
        if is_dir {
            if self.written.get(&relative) != Some(&Written::ImplicitDir) {
                make_dir(&self.into.join(&relative), &mut self.created_dirs)?;
            }
            self.written.insert(relative, Written::Dir);
            return Ok(());
        }
        self.write_file(relative, entry)
    }

    /// Writes one regular file, counting what is actually written rather than trusting the
    /// size its header declares, and syncs it.
    fn write_file<R: Read>(
        &mut self,
        relative: String,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ArchiveError> {
        let limits = self.limits;
        let declared = entry.size();
        if declared > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                path: relative,
                limit: limits.max_file_bytes,
            });
        }
        if self.report.total_bytes.saturating_add(declared) > limits.max_total_bytes {
            return Err(ArchiveError::TotalTooLarge {
                limit: limits.max_total_bytes,
            });
        }
        let target = self.into.join(&relative);
        let mut output = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .map_err(|e| ArchiveError::io(&target, e))?;
        self.written.insert(relative.clone(), Written::File);

        let total_budget = limits
            .max_total_bytes
            .saturating_sub(self.report.total_bytes);
        let copied = self.copy_entry(entry, &mut output, &target, &relative, total_budget)?;
        crashpoint::step("unpack: file written");
        if copied != declared {
            return Err(ArchiveError::Truncated { path: relative });
        }
        output
            .sync_all()
            .map_err(|e| ArchiveError::io(&target, e))?;
        crashpoint::step("unpack: file synced");
        self.report.total_bytes += copied;
        self.report.files.push(relative);
        Ok(())
    }

    /// Copies an entry's data into `output`, refusing it as soon as it passes the per-file
    /// limit or `total_budget`; returns the bytes copied.
    fn copy_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        output: &mut File,
        target: &Path,
        relative: &str,
        total_budget: u64,
    ) -> Result<u64, ArchiveError> {
        let limits = self.limits;
        let mut copied: u64 = 0;
        loop {
            let read = match entry.read(&mut self.copy_buffer) {
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(stream_error(e, limits)),
            };
            if read == 0 {
                return Ok(copied);
            }
            copied += read as u64;
            if copied > limits.max_file_bytes {
                return Err(ArchiveError::FileTooLarge {
                    path: relative.to_string(),
                    limit: limits.max_file_bytes,
                });
            }
            if copied > total_budget {
                return Err(ArchiveError::TotalTooLarge {
                    limit: limits.max_total_bytes,
                });
            }
            output
                .write_all(&self.copy_buffer[..read])
                .map_err(|e| ArchiveError::io(target, e))?;
        }
    }

    /// Requires the manifest at the root, then syncs every directory made.
    fn finish(self) -> Result<UnpackReport, ArchiveError> {
        if self.written.get(MANIFEST_FILE) != Some(&Written::File) {
            return Err(ArchiveError::MissingManifest);
        }
        // Children before parents, so each directory's fsync records entries that are final.
        for dir in self.created_dirs.iter().rev() {
            durable::sync_dir(dir)?;
            crashpoint::step("unpack: directory synced");
        }
        Ok(self.report)
    }
}

// The entry's path as a safe relative path, or `None` when it is absolute, climbs out, is not
// UTF-8 or is otherwise malformed. Directories may carry the conventional trailing `/`.
pub(super) fn entry_path(raw: &[u8], is_dir: bool) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let trimmed = if is_dir {
        text.strip_suffix('/').unwrap_or(text)
    } else {
        text
    };
    (is_safe_relative_path(trimmed) && !trimmed.contains('\0')).then(|| trimmed.to_string())
}

fn describe_entry_type(kind: EntryType) -> String {
    match kind {
        EntryType::Symlink => "symbolic link".into(),
        EntryType::Link => "hard link".into(),
        EntryType::Char | EntryType::Block => "device".into(),
        EntryType::Fifo => "FIFO".into(),
        EntryType::GNUSparse => "sparse file".into(),
        EntryType::Continuous => "contiguous file".into(),
        other => format!("entry of type {:?}", other.as_byte() as char),
    }
}

/// Refuses a path already written explicitly, or one that sits below a file.
fn check_no_clash(written: &HashMap<String, Written>, relative: &str) -> Result<(), ArchiveError> {
    if matches!(
        written.get(relative),
        Some(Written::File) | Some(Written::Dir)
    ) {
        return Err(ArchiveError::Duplicate {
            path: relative.to_string(),
        });
    }
    let mut ancestor = relative;
    while let Some((parent, _)) = ancestor.rsplit_once('/') {
        if written.get(parent) == Some(&Written::File) {
            return Err(ArchiveError::Duplicate {
                path: relative.to_string(),
            });
        }
        ancestor = parent;
    }
    Ok(())
}

fn make_dir(target: &Path, created_dirs: &mut Vec<PathBuf>) -> Result<(), ArchiveError> {
    fs::DirBuilder::new()
        .mode(DIR_MODE)
        .create(target)
        .map_err(|e| ArchiveError::io(target, e))?;
    created_dirs.push(target.to_path_buf());
    Ok(())
}

// Creates the missing parents of an entry; every path component was checked to be a normal
// name and nothing under `into` can be a symlink, so this stays inside `into`. Each directory
// created counts in `entry_count`, refused beyond `max_files` before it is made.
fn make_parents(
    into: &Path,
    relative: &str,
    written: &mut HashMap<String, Written>,
    created_dirs: &mut Vec<PathBuf>,
    entry_count: &mut u64,
    max_files: u64,
) -> Result<(), ArchiveError> {
    let mut prefix_end = 0;
    while let Some(offset) = relative[prefix_end..].find('/') {
        let parent = &relative[..prefix_end + offset];
        if !written.contains_key(parent) {
            *entry_count += 1;
            if *entry_count > max_files {
                return Err(ArchiveError::TooManyFiles { limit: max_files });
            }
            make_dir(&into.join(parent), created_dirs)?;
            written.insert(parent.to_string(), Written::ImplicitDir);
        }
        prefix_end += offset + 1;
    }
    Ok(())
}
