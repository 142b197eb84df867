//! The transfer form of a bundle: a tar archive of the bundle directory's contents, optionally
//! zstd-compressed. Packing is deterministic (same tree, same bytes, same signature); unpacking
//! treats the archive as hostile until every entry has been checked.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::manifest::is_safe_relative_path;
use super::MANIFEST_FILE;

/// The four bytes every zstd frame starts with.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;
// Tar overhead allowed per entry on top of its data (a header, a GNU long-name entry with a
// name up to PATH_MAX, padding). It bounds the raw stream, so even tar's own metadata (long
// names are buffered in memory) cannot be inflated by a compression bomb.
const STREAM_OVERHEAD_PER_ENTRY: u64 = 6 * 1024;
/// End-of-archive blocks and slack for a writer that pads to a record size.
const STREAM_OVERHEAD_FIXED: u64 = 64 * 1024;

/// Why a bundle archive cannot be packed or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("no space left on the device while writing {path}")]
    NoSpace { path: PathBuf },
    #[error("the archive is not a readable tar (or zstd-compressed tar) stream: {0}")]
    Corrupt(String),
    #[error(
        "archive entry '{path}' has a path that is not allowed (absolute, '..', or malformed)"
    )]
    UnsafePath { path: String },
    #[error("archive entry '{path}' is a {kind}; only regular files and directories are allowed")]
    UnsupportedEntry { path: String, kind: String },
    #[error("archive entry '{path}' appears more than once or clashes with another entry")]
    Duplicate { path: String },
    #[error("archive entry '{path}' is larger than the {limit}-byte limit for one file")]
    FileTooLarge { path: String, limit: u64 },
    #[error("the archive holds more than {limit} entries")]
    TooManyFiles { limit: u64 },
    #[error("the archive unpacks to more than {limit} bytes")]
    TotalTooLarge { limit: u64 },
    #[error("archive entry '{path}' is truncated")]
    Truncated { path: String },
    #[error("manifest.toml is missing from the root of the bundle")]
    MissingManifest,
    #[error("{path} must be an empty directory to unpack into")]
    DestinationNotEmpty { path: PathBuf },
}

impl ArchiveError {
    /// The API error code a `commit` reply carries for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::Io { .. } | ArchiveError::DestinationNotEmpty { .. } => "internal",
            ArchiveError::NoSpace { .. } => "no_space",
            ArchiveError::FileTooLarge { .. }
            | ArchiveError::TooManyFiles { .. }
            | ArchiveError::TotalTooLarge { .. } => "too_large",
            ArchiveError::Corrupt(_)
            | ArchiveError::UnsafePath { .. }
            | ArchiveError::UnsupportedEntry { .. }
            | ArchiveError::Duplicate { .. }
            | ArchiveError::Truncated { .. }
            | ArchiveError::MissingManifest => "invalid_bundle",
        }
    }

    fn io(path: &Path, source: io::Error) -> ArchiveError {
        if source.kind() == io::ErrorKind::StorageFull {
            ArchiveError::NoSpace {
                path: path.to_path_buf(),
            }
        } else {
            ArchiveError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// How the tar stream is compressed when packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd { level: i32 },
}

/// Bounds an unpack enforces on what it writes, whatever the headers claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Sum of all file sizes.
    pub max_total_bytes: u64,
    /// Entries of any kind, directories included (so a flood of empty ones is bounded too).
    pub max_files: u64,
    /// Size of any one file.
    pub max_file_bytes: u64,
}

/// Most a zstd-compressed bundle's files may outweigh its archive. Model weights compress about
/// 1.5-3x (the shipped bundle: 3.0x at level 3, 3.5x at 19) and text up to ~10x, so 32x refuses
/// only archives built to expand, such as a run of zeros (~8000x).
pub const MAX_ZSTD_EXPANSION: u64 = 32;
/// Allowed on top of [`MAX_ZSTD_EXPANSION`] times the archive, so a tiny bundle made mostly of
/// text is never refused for compressing well.
pub const ZSTD_EXPANSION_ALLOWANCE: u64 = 1024 * 1024;

impl UnpackLimits {
    /// These limits narrowed to what `archive` can hold: a plain tar's files cannot outweigh the
    /// tar itself, and a zstd tar's at most [`MAX_ZSTD_EXPANSION`] times the archive plus
    /// [`ZSTD_EXPANSION_ALLOWANCE`]. An archive written to expand past that is refused
    /// ([`ArchiveError::TotalTooLarge`]) before the excess reaches the disk.
    pub fn for_archive(&self, archive: &Path) -> Result<UnpackLimits, ArchiveError> {
        let mut file = File::open(archive).map_err(|e| ArchiveError::io(archive, e))?;
        let len = file
            .metadata()
            .map_err(|e| ArchiveError::io(archive, e))?
            .len();
        let bound = if read_magic(&mut file, archive)? == Some(ZSTD_MAGIC) {
            len.saturating_mul(MAX_ZSTD_EXPANSION)
                .saturating_add(ZSTD_EXPANSION_ALLOWANCE)
        } else {
            len
        };
        Ok(UnpackLimits {
            max_total_bytes: self.max_total_bytes.min(bound),
            max_file_bytes: self.max_file_bytes.min(bound),
            max_files: self.max_files,
        })
    }
}

/// The first four bytes of a file (`None` when it is shorter), leaving it at its start.
fn read_magic(file: &mut File, path: &Path) -> Result<Option<[u8; 4]>, ArchiveError> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match file.read(&mut magic[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ArchiveError::io(path, e)),
        }
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| ArchiveError::io(path, e))?;
    Ok((filled == magic.len()).then_some(magic))
}

/// What an unpack wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackReport {
    /// Regular files, as `/`-separated relative paths in archive order.
    pub files: Vec<String>,
    /// Bytes written across all files.
    pub total_bytes: u64,
}

/// Packs the contents of `dir` (which must hold `manifest.toml`) as a deterministic tar stream.
pub fn pack(dir: &Path, writer: impl Write, compression: Compression) -> Result<(), ArchiveError> {
    if !fs::symlink_metadata(dir.join(MANIFEST_FILE))
        .map(|metadata| metadata.is_file())
        .unwrap_or(false)
    {
        return Err(ArchiveError::MissingManifest);
    }
    let entries = collect_tree(dir)?;
    let sink = |source| ArchiveError::Io {
        path: PathBuf::from("<archive writer>"),
        source,
    };
    match compression {
        Compression::None => {
            let mut builder = tar::Builder::new(writer);
            append_entries(&mut builder, dir, &entries)?;
            builder
                .into_inner()
                .and_then(|mut w| w.flush())
                .map_err(sink)
        }
        Compression::Zstd { level } => {
            let encoder = zstd::stream::write::Encoder::new(writer, level).map_err(sink)?;
            let mut builder = tar::Builder::new(encoder);
            append_entries(&mut builder, dir, &entries)?;
            let encoder = builder.into_inner().map_err(sink)?;
            encoder.finish().and_then(|mut w| w.flush()).map_err(sink)
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TreeEntry {
    // Sorting by components (not by the joined string) keeps each directory's contents right
    // after it: "a", "a/x", "a-b" rather than "a", "a-b", "a/x".
    components: Vec<String>,
    is_dir: bool,
}

impl TreeEntry {
    fn relative(&self) -> String {
        self.components.join("/")
    }
}

fn collect_tree(root: &Path) -> Result<Vec<TreeEntry>, ArchiveError> {
    let mut found = Vec::new();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(prefix) = pending.pop() {
        let absolute = prefix
            .iter()
            .fold(root.to_path_buf(), |path, c| path.join(c));
        let listing = fs::read_dir(&absolute).map_err(|e| ArchiveError::io(&absolute, e))?;
        for entry in listing {
            let entry = entry.map_err(|e| ArchiveError::io(&absolute, e))?;
            let name = entry.file_name();
            let mut components = prefix.clone();
            components.push(name.to_string_lossy().into_owned());
            let relative = components.join("/");
            if name.to_str().is_none() || !is_safe_relative_path(&relative) {
                return Err(ArchiveError::UnsafePath { path: relative });
            }
            // file_type() does not follow symlinks, so a link is seen as a link.
            let kind = entry
                .file_type()
                .map_err(|e| ArchiveError::io(&entry.path(), e))?;
            if kind.is_dir() {
                pending.push(components.clone());
                found.push(TreeEntry {
                    components,
                    is_dir: true,
                });
            } else if kind.is_file() {
                found.push(TreeEntry {
                    components,
                    is_dir: false,
                });
            } else {
                return Err(ArchiveError::UnsupportedEntry {
                    path: relative,
                    kind: describe_file_type(&kind).to_string(),
                });
            }
        }
    }
    found.sort();
    Ok(found)
}

fn describe_file_type(kind: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_symlink() {
        "symbolic link"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_block_device() || kind.is_char_device() {
        "device"
    } else if kind.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

fn append_entries<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    entries: &[TreeEntry],
) -> Result<(), ArchiveError> {
    for entry in entries {
        let relative = entry.relative();
        let absolute = root.join(&relative);
        let mut header = Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
            .set_username("")
            .and_then(|()| header.set_groupname(""))
            .map_err(|e| ArchiveError::io(&absolute, e))?;
        if entry.is_dir {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(DIR_MODE);
            header.set_size(0);
            builder
                .append_data(&mut header, format!("{relative}/"), io::empty())
                .map_err(|e| ArchiveError::io(&absolute, e))?;
        } else {
            // O_NOFOLLOW: a file swapped for a symlink after the listing is refused, not followed.
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&absolute)
                .map_err(|e| ArchiveError::io(&absolute, e))?;
            let size = file
                .metadata()
                .map_err(|e| ArchiveError::io(&absolute, e))?
                .len();
            header.set_entry_type(EntryType::Regular);
            header.set_mode(FILE_MODE);
            header.set_size(size);
            let reader = ExactReader {
                inner: BufReader::new(file).take(size),
                remaining: size,
            };
            builder
                .append_data(&mut header, &relative, reader)
                .map_err(|e| ArchiveError::io(&absolute, e))?;
        }
    }
    Ok(())
}

// Yields exactly `remaining` bytes or fails, so a file that shrinks while being packed cannot
// leave a header whose size disagrees with the data after it.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        if read == 0 && self.remaining > 0 && !buffer.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was being packed",
            ));
        }
        self.remaining = self.remaining.saturating_sub(read as u64);
        Ok(read)
    }
}

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

fn unpack_checked(
    archive: &Path,
    into: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackReport, ArchiveError> {
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
    let capped = CappedReader {
        inner: stream,
        read_so_far: 0,
        cap,
    };
    let stream_error = |error: io::Error| {
        if is_cap_exceeded(&error) {
            ArchiveError::TotalTooLarge {
                limit: limits.max_total_bytes,
            }
        } else {
            ArchiveError::Corrupt(error.to_string())
        }
    };

    let mut tar = tar::Archive::new(capped);
    let mut written: HashMap<String, Written> = HashMap::new();
    let mut created_dirs: Vec<PathBuf> = vec![into.to_path_buf()];
    let mut report = UnpackReport {
        files: Vec::new(),
        total_bytes: 0,
    };
    let mut entry_count: u64 = 0;
    let mut copy_buffer = vec![0u8; 64 * 1024];

    for entry in tar.entries().map_err(stream_error)? {
        let mut entry = entry.map_err(stream_error)?;
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            // Archive-wide metadata (git archive writes one); tar never applies its values to
            // entries, so skipping it cannot change where anything lands.
            continue;
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
        if !(is_dir && written.get(&relative) == Some(&Written::ImplicitDir)) {
            entry_count += 1;
        }
        if entry_count > limits.max_files {
            return Err(ArchiveError::TooManyFiles {
                limit: limits.max_files,
            });
        }
        check_no_clash(&written, &relative)?;
        let target = into.join(&relative);

        // Parents the archive never named count as entries too, or a few deep paths would
        // create far more directories than `max_files` (the archive fuzz target's check of
        // what an unpack leaves, on a hand-written deep-path archive).
        make_parents(
            into,
            &relative,
            &mut written,
            &mut created_dirs,
            &mut entry_count,
            limits.max_files,
        )?;
        if is_dir {
            if written.get(&relative) != Some(&Written::ImplicitDir) {
                make_dir(&target, &mut created_dirs)?;
            }
            written.insert(relative, Written::Dir);
            continue;
        }

        let declared = entry.size();
        if declared > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                path: relative,
                limit: limits.max_file_bytes,
            });
        }
        if report.total_bytes.saturating_add(declared) > limits.max_total_bytes {
            return Err(ArchiveError::TotalTooLarge {
                limit: limits.max_total_bytes,
            });
        }
        let mut output = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .map_err(|e| ArchiveError::io(&target, e))?;
        written.insert(relative.clone(), Written::File);

        // Count what is actually written rather than trusting `declared`.
        let file_budget = limits.max_file_bytes;
        let total_budget = limits.max_total_bytes.saturating_sub(report.total_bytes);
        let mut copied: u64 = 0;
        loop {
            let read = match entry.read(&mut copy_buffer) {
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(stream_error(e)),
            };
            if read == 0 {
                break;
            }
            copied += read as u64;
            if copied > file_budget {
                return Err(ArchiveError::FileTooLarge {
                    path: relative,
                    limit: limits.max_file_bytes,
                });
            }
            if copied > total_budget {
                return Err(ArchiveError::TotalTooLarge {
                    limit: limits.max_total_bytes,
                });
            }
            output
                .write_all(&copy_buffer[..read])
                .map_err(|e| ArchiveError::io(&target, e))?;
        }
        super::crashpoint::step("unpack: file written");
        if copied != declared {
            return Err(ArchiveError::Truncated { path: relative });
        }
        output
            .sync_all()
            .map_err(|e| ArchiveError::io(&target, e))?;
        super::crashpoint::step("unpack: file synced");
        report.total_bytes += copied;
        report.files.push(relative);
    }

    if written.get(MANIFEST_FILE) != Some(&Written::File) {
        return Err(ArchiveError::MissingManifest);
    }
    // Children before parents, so each directory's fsync records entries that are final.
    for dir in created_dirs.iter().rev() {
        File::open(dir)
            .and_then(|handle| handle.sync_all())
            .map_err(|e| ArchiveError::io(dir, e))?;
        super::crashpoint::step("unpack: directory synced");
    }
    Ok(report)
}

// The entry's path as a safe relative path, or `None` when it is absolute, climbs out, is not
// UTF-8 or is otherwise malformed. Directories may carry the conventional trailing `/`.
fn entry_path(raw: &[u8], is_dir: bool) -> Option<String> {
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

/// SHA-256 of a file, read in blocks so a large archive is never held in memory.
pub fn sha256_of(path: &Path) -> Result<[u8; 32], ArchiveError> {
    let mut file = File::open(path).map_err(|e| ArchiveError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ArchiveError::io(path, e)),
        };
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    const LIMITS: UnpackLimits = UnpackLimits {
        max_total_bytes: 1 << 20,
        max_files: 100,
        max_file_bytes: 512 * 1024,
    };

    fn write_tree(root: &Path, mtime: SystemTime) {
        let files: [(&str, &[u8]); 5] = [
            (MANIFEST_FILE, b"schema = 1\nname = \"t\"\n"),
            ("model.onnx", &[7u8; 3000]),
            ("catalogues/styles.json", b"{\"styles\": []}"),
            ("catalogues/deep/notes.txt", b"deep"),
            ("catalogues-extra.txt", b"sorts after catalogues/"),
        ];
        for (relative, contents) in files {
            let path = root.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, contents).unwrap();
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
        fs::create_dir_all(root.join("empty")).unwrap();
    }

    fn pack_to_vec(dir: &Path, compression: Compression) -> Vec<u8> {
        let mut bytes = Vec::new();
        pack(dir, &mut bytes, compression).unwrap();
        bytes
    }

    fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn entry_names(tar_bytes: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|entry| String::from_utf8(entry.unwrap().path_bytes().into_owned()).unwrap())
            .collect()
    }

    /// A header whose name bytes are written raw, bypassing the tar crate's own path checks.
    fn raw_header(name: &[u8], kind: EntryType, size: u64) -> Header {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_mode(FILE_MODE);
        header.set_size(size);
        header.set_cksum();
        header
    }

    /// A tar with a valid manifest first, then whatever `extra` appends.
    fn hostile_tar(extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let manifest = b"schema = 1\n";
        builder
            .append(
                &raw_header(MANIFEST_FILE.as_bytes(), EntryType::Regular, 11),
                &manifest[..],
            )
            .unwrap();
        extra(&mut builder);
        builder.into_inner().unwrap()
    }

    fn unpack_bytes(
        bytes: &[u8],
        limits: &UnpackLimits,
    ) -> (tempfile::TempDir, Result<UnpackReport, ArchiveError>) {
        let work = tempfile::tempdir().unwrap();
        let archive = save(work.path(), "bundle.tar", bytes);
        let result = unpack(&archive, &work.path().join("out"), limits);
        (work, result)
    }

    fn assert_out_empty(work: &tempfile::TempDir) {
        let leftovers: Vec<_> = fs::read_dir(work.path().join("out")).unwrap().collect();
        assert!(leftovers.is_empty(), "partial unpack left {leftovers:?}");
    }

    #[test]
    fn round_trip_plain_and_zstd() {
        let source = tempfile::tempdir().unwrap();
        write_tree(source.path(), SystemTime::now());
        for compression in [Compression::None, Compression::Zstd { level: 3 }] {
            let bytes = pack_to_vec(source.path(), compression);
            assert_eq!(
                bytes.starts_with(&ZSTD_MAGIC),
                compression != Compression::None
            );
            let (work, result) = unpack_bytes(&bytes, &LIMITS);
            let report = result.unwrap();
            let out = work.path().join("out");
            let mut files = report.files.clone();
            files.sort();
            assert_eq!(
                files,
                [
                    "catalogues-extra.txt",
                    "catalogues/deep/notes.txt",
                    "catalogues/styles.json",
                    MANIFEST_FILE,
                    "model.onnx"
                ]
            );
            for file in &files {
                assert_eq!(
                    fs::read(out.join(file)).unwrap(),
                    fs::read(source.path().join(file)).unwrap(),
                    "{file}"
                );
            }
            let expected_total: u64 = files
                .iter()
                .map(|f| fs::metadata(source.path().join(f)).unwrap().len())
                .sum();
            assert_eq!(report.total_bytes, expected_total);
            assert!(out.join("empty").is_dir());
        }
    }

    #[test]
    fn packing_is_deterministic_and_normalised() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        write_tree(
            first.path(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        );
        write_tree(second.path(), SystemTime::now());
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            second.path().join("model.onnx"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        for compression in [Compression::None, Compression::Zstd { level: 5 }] {
            let a = pack_to_vec(first.path(), compression);
            assert_eq!(a, pack_to_vec(first.path(), compression));
            assert_eq!(a, pack_to_vec(second.path(), compression));
        }

        let bytes = pack_to_vec(first.path(), Compression::None);
        assert_eq!(
            entry_names(&bytes),
            [
                "catalogues/",
                "catalogues/deep/",
                "catalogues/deep/notes.txt",
                "catalogues/styles.json",
                "catalogues-extra.txt",
                "empty/",
                MANIFEST_FILE,
                "model.onnx"
            ]
        );
        let mut archive = tar::Archive::new(&bytes[..]);
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
            let expected_mode = if header.entry_type().is_dir() {
                0o755
            } else {
                0o644
            };
            assert_eq!(header.mode().unwrap(), expected_mode);
        }
    }

    #[test]
    fn long_paths_round_trip() {
        let source = tempfile::tempdir().unwrap();
        write_tree(source.path(), SystemTime::now());
        let long_dir = "d".repeat(120);
        fs::create_dir(source.path().join(&long_dir)).unwrap();
        fs::write(source.path().join(&long_dir).join("f".repeat(120)), b"long").unwrap();
        let bytes = pack_to_vec(source.path(), Compression::None);
        let (work, result) = unpack_bytes(&bytes, &LIMITS);
        let report = result.unwrap();
        let long_file = format!("{long_dir}/{}", "f".repeat(120));
        assert!(report.files.contains(&long_file));
        assert_eq!(
            fs::read(work.path().join("out").join(long_file)).unwrap(),
            b"long"
        );
    }

    #[test]
    fn pack_refuses_symlinks_and_missing_manifest() {
        let source = tempfile::tempdir().unwrap();
        write_tree(source.path(), SystemTime::now());
        std::os::unix::fs::symlink("/etc/passwd", source.path().join("catalogues/link")).unwrap();
        match pack(source.path(), Vec::new(), Compression::None) {
            Err(ArchiveError::UnsupportedEntry { path, kind }) => {
                assert_eq!(path, "catalogues/link");
                assert_eq!(kind, "symbolic link");
            }
            other => panic!("expected UnsupportedEntry, got {other:?}"),
        }

        let empty = tempfile::tempdir().unwrap();
        fs::write(empty.path().join("model.onnx"), b"x").unwrap();
        assert!(matches!(
            pack(empty.path(), Vec::new(), Compression::None),
            Err(ArchiveError::MissingManifest)
        ));
    }

    #[test]
    fn unsafe_paths_are_refused_and_nothing_escapes() {
        for name in [
            &b"../evil"[..],
            b"/abs",
            b"a/../../evil",
            b"./manifest2",
            b"a//b",
            b"a\\b",
        ] {
            let bytes = hostile_tar(|builder| {
                builder
                    .append(&raw_header(name, EntryType::Regular, 4), &b"evil"[..])
                    .unwrap();
            });
            let (work, result) = unpack_bytes(&bytes, &LIMITS);
            let shown = String::from_utf8_lossy(name).into_owned();
            match result {
                Err(error @ ArchiveError::UnsafePath { .. }) => {
                    assert_eq!(error.code(), "invalid_bundle");
                }
                other => panic!("{shown}: expected UnsafePath, got {other:?}"),
            }
            assert!(!work.path().join("evil").exists(), "{shown} escaped");
            assert_out_empty(&work);
        }
    }

    #[test]
    fn unsafe_long_and_pax_paths_are_refused() {
        let pax = hostile_tar(|builder| {
            builder
                .append_pax_extensions([("path", &b"../evil"[..])])
                .unwrap();
            builder
                .append(
                    &raw_header(b"harmless", EntryType::Regular, 4),
                    &b"evil"[..],
                )
                .unwrap();
        });
        let long = hostile_tar(|builder| {
            let name = format!("{}/../../evil", "a".repeat(150));
            let mut long_name = Header::new_gnu();
            long_name.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
            long_name.set_entry_type(EntryType::GNULongName);
            long_name.set_size(name.len() as u64);
            long_name.set_cksum();
            builder.append(&long_name, name.as_bytes()).unwrap();
            builder
                .append(
                    &raw_header(b"harmless", EntryType::Regular, 4),
                    &b"evil"[..],
                )
                .unwrap();
        });
        let nul = hostile_tar(|builder| {
            builder
                .append(&raw_header(b"a\0b", EntryType::Regular, 4), &b"evil"[..])
                .unwrap();
        });
        for (label, bytes) in [("pax path", pax), ("GNU long name", long)] {
            let (work, result) = unpack_bytes(&bytes, &LIMITS);
            assert!(
                matches!(&result, Err(ArchiveError::UnsafePath { path }) if path.ends_with("../evil")),
                "{label}: {result:?}"
            );
            assert!(!work.path().join("evil").exists());
            assert_out_empty(&work);
        }
        // A raw NUL inside the name field ends it: tar reads "a", which is harmless.
        let (_work, result) = unpack_bytes(&nul, &LIMITS);
        assert_eq!(result.unwrap().files, [MANIFEST_FILE, "a"]);
        assert_eq!(entry_path(b"a\0b", false), None);
    }

    #[test]
    fn links_devices_and_fifos_are_refused() {
        let cases = [
            (EntryType::Symlink, "symbolic link"),
            (EntryType::Link, "hard link"),
            (EntryType::Char, "device"),
            (EntryType::Block, "device"),
            (EntryType::Fifo, "FIFO"),
        ];
        for (kind, described) in cases {
            let bytes = hostile_tar(|builder| {
                let mut header = raw_header(b"model.onnx", kind, 0);
                if kind.is_symlink() || kind.is_hard_link() {
                    header.set_link_name(MANIFEST_FILE).unwrap();
                    header.set_cksum();
                }
                builder.append(&header, io::empty()).unwrap();
            });
            let (work, result) = unpack_bytes(&bytes, &LIMITS);
            match result {
                Err(ArchiveError::UnsupportedEntry { path, kind }) => {
                    assert_eq!(path, "model.onnx");
                    assert_eq!(kind, described);
                }
                other => panic!("{described}: expected UnsupportedEntry, got {other:?}"),
            }
            assert_out_empty(&work);
        }
    }

    #[test]
    fn duplicates_and_clashes_are_refused() {
        let manifest_again = hostile_tar(|builder| {
            builder
                .append(
                    &raw_header(MANIFEST_FILE.as_bytes(), EntryType::Regular, 3),
                    &b"bad"[..],
                )
                .unwrap();
        });
        let dir_then_same_dir = hostile_tar(|builder| {
            for _ in 0..2 {
                builder
                    .append(&raw_header(b"sub/", EntryType::Directory, 0), io::empty())
                    .unwrap();
            }
        });
        let file_then_child = hostile_tar(|builder| {
            builder
                .append(&raw_header(b"a", EntryType::Regular, 1), &b"x"[..])
                .unwrap();
            builder
                .append(&raw_header(b"a/b", EntryType::Regular, 1), &b"y"[..])
                .unwrap();
        });
        for (label, bytes) in [
            ("manifest twice", manifest_again),
            ("directory twice", dir_then_same_dir),
            ("file below a file", file_then_child),
        ] {
            let (work, result) = unpack_bytes(&bytes, &LIMITS);
            assert!(
                matches!(result, Err(ArchiveError::Duplicate { .. })),
                "{label}: {result:?}"
            );
            assert_out_empty(&work);
        }

        // A directory entry after a file already created it implicitly is not a duplicate.
        let late_dir = hostile_tar(|builder| {
            builder
                .append(&raw_header(b"sub/x", EntryType::Regular, 1), &b"x"[..])
                .unwrap();
            builder
                .append(&raw_header(b"sub/", EntryType::Directory, 0), io::empty())
                .unwrap();
        });
        let (_work, result) = unpack_bytes(&late_dir, &LIMITS);
        assert_eq!(result.unwrap().files, [MANIFEST_FILE, "sub/x"]);
    }

    /// Parents an archive never names used to be created without counting, so two files 35
    /// components deep made 68 directories under a limit of 64 (the archive fuzz target's
    /// entry-count check, on a hand-written input).
    #[test]
    fn implicit_parent_directories_count_against_max_files() {
        let deep = |builder: &mut tar::Builder<Vec<u8>>, top: &str| {
            // 35 components: "t/d/d/…/f" fits the 100-byte name field.
            let name = format!("{top}/{}f", "d/".repeat(33));
            builder
                .append(
                    &raw_header(name.as_bytes(), EntryType::Regular, 1),
                    &b"x"[..],
                )
                .unwrap();
        };
        let archive = hostile_tar(|builder| {
            deep(builder, "a");
            deep(builder, "b");
        });
        // manifest + 2 files + 2 × 34 parents = 71 entries.
        let tight = UnpackLimits {
            max_files: 64,
            ..LIMITS
        };
        let (work, result) = unpack_bytes(&archive, &tight);
        assert!(
            matches!(result, Err(ArchiveError::TooManyFiles { limit: 64 })),
            "{result:?}"
        );
        assert_out_empty(&work);
        let exact = UnpackLimits {
            max_files: 71,
            ..LIMITS
        };
        let (_work, result) = unpack_bytes(&archive, &exact);
        assert_eq!(result.unwrap().files.len(), 3);

        // A directory entry for a parent already created is not counted twice.
        let late_dir = hostile_tar(|builder| {
            builder
                .append(&raw_header(b"sub/x", EntryType::Regular, 1), &b"x"[..])
                .unwrap();
            builder
                .append(&raw_header(b"sub/", EntryType::Directory, 0), io::empty())
                .unwrap();
        });
        let three = UnpackLimits {
            max_files: 3,
            ..LIMITS
        };
        let (_work, result) = unpack_bytes(&late_dir, &three);
        assert_eq!(result.unwrap().files, [MANIFEST_FILE, "sub/x"]);
    }

    #[test]
    fn size_and_count_limits_are_enforced() {
        let oversize = hostile_tar(|builder| {
            let data = vec![1u8; 600 * 1024];
            builder
                .append(
                    &raw_header(b"model.onnx", EntryType::Regular, data.len() as u64),
                    &data[..],
                )
                .unwrap();
        });
        let (work, result) = unpack_bytes(&oversize, &LIMITS);
        match result {
            Err(error @ ArchiveError::FileTooLarge { .. }) => assert_eq!(error.code(), "too_large"),
            other => panic!("expected FileTooLarge, got {other:?}"),
        }
        assert_out_empty(&work);

        let many = hostile_tar(|builder| {
            for index in 0..10 {
                let name = format!("f{index}");
                builder
                    .append(
                        &raw_header(name.as_bytes(), EntryType::Regular, 1),
                        &b"x"[..],
                    )
                    .unwrap();
            }
        });
        let few = UnpackLimits {
            max_files: 5,
            ..LIMITS
        };
        let (work, result) = unpack_bytes(&many, &few);
        assert!(
            matches!(result, Err(ArchiveError::TooManyFiles { limit: 5 })),
            "{result:?}"
        );
        assert_out_empty(&work);
        // The same archive is fine when the limit allows it.
        let (_work, result) = unpack_bytes(&many, &LIMITS);
        assert_eq!(result.unwrap().files.len(), 11);

        // Each file under the per-file limit, together over the total.
        let sum = hostile_tar(|builder| {
            for index in 0..3 {
                let data = vec![2u8; 400 * 1024];
                let name = format!("part{index}");
                builder
                    .append(
                        &raw_header(name.as_bytes(), EntryType::Regular, data.len() as u64),
                        &data[..],
                    )
                    .unwrap();
            }
        });
        let (work, result) = unpack_bytes(&sum, &LIMITS);
        assert!(
            matches!(result, Err(ArchiveError::TotalTooLarge { .. })),
            "{result:?}"
        );
        assert_out_empty(&work);
    }

    #[test]
    fn zstd_bombs_are_stopped() {
        let huge: u64 = 64 << 20;
        let big_file = hostile_tar(|builder| {
            builder
                .append(
                    &raw_header(b"zeros", EntryType::Regular, huge),
                    io::repeat(0).take(huge),
                )
                .unwrap();
        });
        let compressed = zstd::encode_all(&big_file[..], 19).unwrap();
        assert!(
            compressed.len() < 64 * 1024,
            "bomb is {} bytes",
            compressed.len()
        );
        let generous_file_limit = UnpackLimits {
            max_file_bytes: u64::MAX,
            ..LIMITS
        };
        let (work, result) = unpack_bytes(&compressed, &generous_file_limit);
        assert!(
            matches!(result, Err(ArchiveError::TotalTooLarge { .. })),
            "{result:?}"
        );
        assert_out_empty(&work);

        // A GNU long name is buffered by the tar reader itself; the stream cap must stop it
        // before it is held in memory.
        let mut long_name = Header::new_gnu();
        long_name.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long_name.set_entry_type(EntryType::GNULongName);
        long_name.set_size(huge);
        long_name.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append(&long_name, io::repeat(b'a').take(huge))
            .unwrap();
        let name_bomb = zstd::encode_all(&builder.into_inner().unwrap()[..], 19).unwrap();
        let (work, result) = unpack_bytes(&name_bomb, &LIMITS);
        assert!(
            matches!(result, Err(ArchiveError::TotalTooLarge { .. })),
            "{result:?}"
        );
        assert_out_empty(&work);
    }

    #[test]
    fn missing_manifest_is_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append(&raw_header(b"model.onnx", EntryType::Regular, 1), &b"x"[..])
            .unwrap();
        builder
            .append(
                &raw_header(b"sub/manifest.toml", EntryType::Regular, 1),
                &b"x"[..],
            )
            .unwrap();
        let (work, result) = unpack_bytes(&builder.into_inner().unwrap(), &LIMITS);
        assert!(
            matches!(result, Err(ArchiveError::MissingManifest)),
            "{result:?}"
        );
        assert_out_empty(&work);

        let directory_named_manifest = {
            let mut builder = tar::Builder::new(Vec::new());
            builder
                .append(
                    &raw_header(b"manifest.toml/", EntryType::Directory, 0),
                    io::empty(),
                )
                .unwrap();
            builder.into_inner().unwrap()
        };
        let (_work, result) = unpack_bytes(&directory_named_manifest, &LIMITS);
        assert!(
            matches!(result, Err(ArchiveError::MissingManifest)),
            "{result:?}"
        );
    }

    #[test]
    fn garbage_truncation_and_busy_destination() {
        let (_work, result) = unpack_bytes(&[0x55u8; 2048], &LIMITS);
        assert!(
            matches!(result, Err(ArchiveError::Corrupt(_))),
            "{result:?}"
        );

        let (_work, result) = unpack_bytes(&ZSTD_MAGIC, &LIMITS);
        assert!(
            matches!(result, Err(ArchiveError::Corrupt(_))),
            "{result:?}"
        );

        let whole = hostile_tar(|builder| {
            builder
                .append(
                    &raw_header(b"model.onnx", EntryType::Regular, 5000),
                    &[3u8; 5000][..],
                )
                .unwrap();
        });
        let (work, result) = unpack_bytes(&whole[..512 * 3], &LIMITS);
        assert!(
            matches!(result, Err(ArchiveError::Truncated { .. })),
            "{result:?}"
        );
        assert_out_empty(&work);

        let work = tempfile::tempdir().unwrap();
        let archive = save(work.path(), "bundle.tar", &whole);
        let out = work.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("stale"), b"x").unwrap();
        assert!(matches!(
            unpack(&archive, &out, &LIMITS),
            Err(ArchiveError::DestinationNotEmpty { .. })
        ));
        assert!(
            out.join("stale").exists(),
            "a refused unpack must not clear a foreign directory"
        );
    }

    #[test]
    fn sha256_streams_a_file() {
        let work = tempfile::tempdir().unwrap();
        let path = save(work.path(), "abc", b"abc");
        assert_eq!(
            hex::encode(sha256_of(&path).unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let big = save(work.path(), "big", &vec![9u8; 200_000]);
        let expected: [u8; 32] = Sha256::digest(vec![9u8; 200_000]).into();
        assert_eq!(sha256_of(&big).unwrap(), expected);
        assert!(matches!(
            sha256_of(&work.path().join("absent")),
            Err(ArchiveError::Io { .. })
        ));
    }

    /// Unpacking used to be bounded only by `4 × max_bundle_mib`, whatever the archive's size:
    /// a few KiB of zstd could write 4 GiB. Now a zstd archive may expand 32x (plus 1 MiB), a
    /// plain tar not at all, and the shipped bundle at zstd's best level stays well inside.
    #[test]
    fn zstd_expansion_is_bounded_by_the_archive_size() {
        let generous = UnpackLimits {
            max_total_bytes: 4 << 30,
            max_files: 100,
            max_file_bytes: 4 << 30,
        };
        let work = tempfile::tempdir().unwrap();
        let tree = work.path().join("tree");
        fs::create_dir(&tree).unwrap();
        fs::write(tree.join(MANIFEST_FILE), b"schema = 1\n").unwrap();
        fs::write(tree.join("zeros.bin"), vec![0u8; 48 << 20]).unwrap();
        let bomb = save(
            work.path(),
            "bomb.tar.zst",
            &pack_to_vec(&tree, Compression::Zstd { level: 3 }),
        );
        let archive_len = fs::metadata(&bomb).unwrap().len();
        let limits = generous.for_archive(&bomb).unwrap();
        let bound = archive_len * MAX_ZSTD_EXPANSION + ZSTD_EXPANSION_ALLOWANCE;
        assert!(bound < 48 << 20, "{archive_len}-byte archive");
        assert_eq!(
            (limits.max_total_bytes, limits.max_file_bytes),
            (bound, bound)
        );
        let out = work.path().join("out");
        match unpack(&bomb, &out, &limits) {
            Err(
                ArchiveError::FileTooLarge { limit, .. } | ArchiveError::TotalTooLarge { limit },
            ) => {
                assert_eq!(limit, bound)
            }
            other => panic!("expected the bound to refuse it, got {other:?}"),
        }
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);

        // A plain tar holds its files' bytes: it may write no more than its own length.
        let plain = save(
            work.path(),
            "plain.tar",
            &pack_to_vec(&tree, Compression::None),
        );
        let plain_len = fs::metadata(&plain).unwrap().len();
        assert_eq!(
            generous.for_archive(&plain).unwrap().max_total_bytes,
            plain_len
        );
        unpack(
            &plain,
            &work.path().join("plain"),
            &generous.for_archive(&plain).unwrap(),
        )
        .unwrap();

        let shipped = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/engines/packd-default"
        ));
        let packed = save(
            work.path(),
            "shipped.tar.zst",
            &pack_to_vec(shipped, Compression::Zstd { level: 19 }),
        );
        let report = unpack(
            &packed,
            &work.path().join("shipped"),
            &generous.for_archive(&packed).unwrap(),
        )
        .unwrap();
        assert!(report.total_bytes > 2 * fs::metadata(&packed).unwrap().len());
    }
}
