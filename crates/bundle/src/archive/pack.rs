//! Packing a bundle directory as a deterministic tar stream.

use std::fs::{self, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::{ArchiveError, Compression, DIR_MODE, FILE_MODE};
use crate::manifest::is_safe_relative_path;
use crate::MANIFEST_FILE;

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
