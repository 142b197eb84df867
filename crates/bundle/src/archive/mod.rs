//! The transfer form of a bundle: a tar archive of the bundle directory's contents, optionally
//! zstd-compressed. Packing is deterministic (same tree, same bytes, same signature); unpacking
//! treats the archive as hostile until every entry has been checked.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::durable::{self, FsError};

mod pack;
mod unpack;

pub use pack::pack;
#[cfg(test)]
use unpack::entry_path;
pub use unpack::unpack;

/// The four bytes every zstd frame starts with.
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

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
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's answer.
        source: io::Error,
    },
    /// The disk filled up.
    #[error("no space left on the device while writing {path}")]
    NoSpace {
        /// The file being written.
        path: PathBuf,
    },
    /// The bytes are not a tar stream (plain or zstd).
    #[error("the archive is not a readable tar (or zstd-compressed tar) stream: {0}")]
    Corrupt(String),
    /// An entry's path is absolute, climbs out, or is malformed.
    #[error(
        "archive entry '{path}' has a path that is not allowed (absolute, '..', or malformed)"
    )]
    UnsafePath {
        /// The entry's path as the archive gives it.
        path: String,
    },
    /// An entry is neither a regular file nor a directory.
    #[error("archive entry '{path}' is a {kind}; only regular files and directories are allowed")]
    UnsupportedEntry {
        /// The entry's path.
        path: String,
        /// What it is instead ("symbolic link", "FIFO", …).
        kind: String,
    },
    /// An entry repeats another or sits below a file.
    #[error("archive entry '{path}' appears more than once or clashes with another entry")]
    Duplicate {
        /// The entry's path.
        path: String,
    },
    /// One file is over the per-file limit.
    #[error("archive entry '{path}' is larger than the {limit}-byte limit for one file")]
    FileTooLarge {
        /// The entry's path.
        path: String,
        /// The per-file limit in bytes.
        limit: u64,
    },
    /// The archive holds more entries than allowed.
    #[error("the archive holds more than {limit} entries")]
    TooManyFiles {
        /// The entry limit.
        limit: u64,
    },
    /// The files together are over the total limit.
    #[error("the archive unpacks to more than {limit} bytes")]
    TotalTooLarge {
        /// The total limit in bytes.
        limit: u64,
    },
    /// An entry holds fewer bytes than its header declares.
    #[error("archive entry '{path}' is truncated")]
    Truncated {
        /// The entry's path.
        path: String,
    },
    /// No `manifest.toml` at the root.
    #[error("manifest.toml is missing from the root of the bundle")]
    MissingManifest,
    /// The destination already holds something.
    #[error("{path} must be an empty directory to unpack into")]
    DestinationNotEmpty {
        /// The destination directory.
        path: PathBuf,
    },
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

impl From<FsError> for ArchiveError {
    fn from(error: FsError) -> ArchiveError {
        ArchiveError::io(&error.path, error.source)
    }
}

/// How the tar stream is compressed when packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// A zstd-compressed tar stream.
    Zstd {
        /// zstd's compression level (1-22).
        level: i32,
    },
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

/// SHA-256 of a file, read in blocks so a large archive is never held in memory.
pub fn sha256_of(path: &Path) -> Result<[u8; 32], ArchiveError> {
    durable::sha256_of_file(path).map_err(|e| ArchiveError::io(path, e))
}

#[cfg(test)]
mod tests;
