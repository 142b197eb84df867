//! A transfer's files on disk: `meta.json`, `data` and the `held` journal of stored chunks,
//! created at `begin`, appended to per chunk, and read back after a restart.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::{BeginRequest, Transfer, TransferError, TransferLimits, TransferState};
use crate::durable;

pub(super) const META_FILE: &str = "meta.json";
pub(super) const DATA_FILE: &str = "data";
pub(super) const HELD_FILE: &str = "held";
pub(super) const HELD_RECORD_LEN: u64 = 8;

/// Why a transfer found on disk cannot be resumed; it is logged, and the transfer removed.
#[derive(Debug, thiserror::Error)]
pub(super) enum LoadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("meta.json: {0}")]
    MetaUnreadable(#[from] serde_json::Error),
    #[error("meta.json: {0}")]
    MetaInvalid(#[from] TransferError),
    #[error("meta.json does not describe this transfer")]
    MetaMismatch,
    #[error("data is {found} bytes, expected {expected}")]
    DataSize { found: u64, expected: u64 },
}

impl LoadError {
    fn at(path: &Path) -> impl FnOnce(io::Error) -> LoadError + '_ {
        move |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Creates a transfer's files in the empty folder `path`; `meta.json` comes last, so a
/// transfer exists on disk only once all of it does.
pub(super) fn create_transfer(
    path: &Path,
    request: &BeginRequest,
    now: SystemTime,
) -> Result<Transfer, TransferError> {
    let data_path = path.join(DATA_FILE);
    let data = create_new(&data_path)?;
    data.set_len(request.size)
        .and_then(|()| data.sync_all())
        .map_err(|e| TransferError::io(&data_path, e))?;
    let held_path = path.join(HELD_FILE);
    let held_file = create_new(&held_path)?;
    held_file
        .sync_all()
        .map_err(|e| TransferError::io(&held_path, e))?;

    // meta.json lands last and atomically: its presence is what makes the transfer exist.
    let meta_json = serde_json::to_vec_pretty(request).map_err(|e| TransferError::Io {
        path: path.join(META_FILE),
        source: io::Error::other(e),
    })?;
    durable::replace_file(&path.join(META_FILE), &meta_json)?;

    Ok(Transfer {
        dir: path.to_path_buf(),
        request: request.clone(),
        data,
        begun_at: now,
        state: Mutex::new(TransferState {
            held: vec![false; request.chunk_count() as usize],
            held_count: 0,
            held_records: 0,
            held_file,
            last_activity: now,
            last_progress: now,
        }),
    })
}

fn create_new(path: &Path) -> Result<File, TransferError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| TransferError::io(path, e))
}

/// Reloads a transfer from disk.
pub(super) fn load_transfer(path: &Path, id: &str) -> Result<Transfer, LoadError> {
    let meta_path = path.join(META_FILE);
    let request = load_request(&meta_path, id)?;
    let data = open_data(&path.join(DATA_FILE), request.size)?;
    let held_path = path.join(HELD_FILE);
    let (held_file, journal) = read_held(&held_path, request.chunk_count())?;

    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    // meta.json is written once, at begin; `held` at every new chunk.
    let begun_at = modified(&meta_path).unwrap_or_else(SystemTime::now);
    let last_activity = modified(&held_path).map_or(begun_at, |held| held.max(begun_at));

    Ok(Transfer {
        dir: path.to_path_buf(),
        request,
        data,
        begun_at,
        state: Mutex::new(TransferState {
            held: journal.held,
            held_count: journal.held_count,
            held_records: journal.held_records,
            held_file,
            last_activity,
            last_progress: last_activity,
        }),
    })
}

/// The `begin` request `meta.json` holds, checked as a fresh one would be (bar the size limit,
/// which may have been lowered since) and required to be the normalised form written.
fn load_request(meta_path: &Path, id: &str) -> Result<BeginRequest, LoadError> {
    let meta_bytes = fs::read(meta_path).map_err(LoadError::at(meta_path))?;
    let stored: BeginRequest = serde_json::from_slice(&meta_bytes)?;
    let unbounded = TransferLimits {
        max_bundle_bytes: u64::MAX,
        ..TransferLimits::default()
    };
    let request = stored.validated(&unbounded)?;
    if request.transfer != id || request != stored {
        return Err(LoadError::MetaMismatch);
    }
    Ok(request)
}

/// Opens `data`, which must have the archive's full size (it was preallocated at begin).
fn open_data(data_path: &Path, size: u64) -> Result<File, LoadError> {
    let data = OpenOptions::new()
        .read(true)
        .write(true)
        .open(data_path)
        .map_err(LoadError::at(data_path))?;
    let found = data.metadata().map_err(LoadError::at(data_path))?.len();
    if found != size {
        return Err(LoadError::DataSize {
            found,
            expected: size,
        });
    }
    Ok(data)
}

/// The chunks the `held` journal records.
struct HeldJournal {
    held: Vec<bool>,
    held_count: u64,
    held_records: u64,
}

/// Opens `held` for appending and reads which chunks it records.
fn read_held(held_path: &Path, chunk_count: u64) -> Result<(File, HeldJournal), LoadError> {
    let mut held_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(held_path)
        .map_err(LoadError::at(held_path))?;
    let mut records = Vec::new();
    held_file
        .read_to_end(&mut records)
        .map_err(LoadError::at(held_path))?;
    let mut held = vec![false; chunk_count as usize];
    let mut held_count = 0;
    // chunks_exact drops a torn last record: its chunk is simply asked for again.
    let whole_records = records.chunks_exact(HELD_RECORD_LEN as usize);
    let held_records = whole_records.len() as u64;
    for record in whole_records {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(record);
        let seq = u64::from_le_bytes(bytes);
        if let Some(flag) = held.get_mut(seq as usize).filter(|_| seq < chunk_count) {
            if !*flag {
                *flag = true;
                held_count += 1;
            }
        }
    }
    let journal = HeldJournal {
        held,
        held_count,
        held_records,
    };
    Ok((held_file, journal))
}

impl TransferState {
    /// Appends chunk `seq` to the `held` journal (after the last whole record, so a torn one
    /// is overwritten) and syncs it; only then is the chunk counted as held.
    pub(super) fn record_held(&mut self, dir: &Path, seq: u64) -> Result<(), TransferError> {
        let held_path = dir.join(HELD_FILE);
        let offset = self.held_records * HELD_RECORD_LEN;
        self.held_file
            .write_all_at(&seq.to_le_bytes(), offset)
            .and_then(|()| self.held_file.sync_data())
            .map_err(|e| TransferError::io(&held_path, e))?;
        self.held_records += 1;
        if let Some(flag) = self.held.get_mut(seq as usize) {
            *flag = true;
            self.held_count += 1;
        }
        Ok(())
    }
}

impl Transfer {
    /// Writes chunk `seq`'s bytes at their place in `data` and syncs them.
    pub(super) fn write_data(&self, seq: u64, bytes: &[u8]) -> Result<(), TransferError> {
        let data_path = self.dir.join(DATA_FILE);
        self.data
            .write_all_at(bytes, seq * self.request.chunk_size)
            .and_then(|()| self.data.sync_data())
            .map_err(|e| TransferError::io(&data_path, e))
    }
}
