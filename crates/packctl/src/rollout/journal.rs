//! The rollout's journal: one JSON line per change, fsynced, so that a rollout survives packctl
//! being killed. The first line says what the rollout is; every later line is one device's step
//! or the rollout's abort. `rollout resume` replays it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use packd_wire::reply::BundleRef;
use serde::{Deserialize, Serialize};

use super::plan::{ErrorRate, MaxFailed, Window};

/// Version of the journal format, in its first line.
pub(crate) const FORMAT: u32 = 1;

/// Why the journal cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    /// The file cannot be created, opened, written or synced.
    #[error("rollout journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `start` would overwrite another rollout's journal.
    #[error("rollout journal {path} already exists: resume it with `packctl rollout resume {path}`, or choose another --journal")]
    Exists { path: PathBuf },
    /// Another packctl holds the journal (it runs or aborts this rollout now).
    #[error("rollout journal {path} is in use by another packctl: one process per rollout")]
    Busy { path: PathBuf },
    /// A line that is not a journal entry (other than a torn last line).
    #[error("rollout journal {path}, line {line}: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The rollout's settings, fixed at `start` (the first line).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Header {
    /// The journal format.
    pub(crate) format: u32,
    /// The archive being rolled out, as given to `start`.
    pub(crate) archive: PathBuf,
    /// Its SHA-256: `resume` refuses an archive that changed since.
    pub(crate) sha256: String,
    /// A delta of it, sent to the devices that hold its base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delta: Option<PathBuf>,
    /// What it installs.
    pub(crate) bundle: BundleRef,
    /// The devices of each wave, in order: fixed at start, so pool changes do not reshuffle them.
    pub(crate) waves: Vec<Vec<String>>,
    /// Seconds each activated device is watched before it counts as healthy.
    pub(crate) soak_s: u64,
    /// Failed devices tolerated.
    pub(crate) max_failed: MaxFailed,
    /// Service error rate tolerated during the soak.
    pub(crate) max_error_rate: ErrorRate,
    /// Briefs a soak must see before its error rate is judged.
    pub(crate) min_briefs: u64,
    /// When activation may happen, in `tz`.
    pub(crate) window: Option<Window>,
    /// The devices' time zone (IANA name).
    pub(crate) tz: String,
    /// Devices in another zone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) device_tz: BTreeMap<String, String>,
    /// Seconds to wait for each reply.
    pub(crate) timeout_s: u64,
    /// Chunk size of the transfers.
    pub(crate) chunk_size: u64,
}

/// Where one device stands in the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Step {
    /// Not started.
    Pending,
    /// Its transfer began.
    Transferring,
    /// Installed and verified, waiting to be activated.
    Installed,
    /// Serving the new bundle, in its soak.
    Activated,
    /// Passed its soak.
    Healthy,
    /// Could not take the bundle, or failed its soak.
    Failed,
    /// Returned to the bundle it ran before.
    RolledBack,
}

impl Step {
    /// How the table shows it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Step::Pending => "pending",
            Step::Transferring => "transferring",
            Step::Installed => "installed",
            Step::Activated => "activated",
            Step::Healthy => "healthy",
            Step::Failed => "failed",
            Step::RolledBack => "rolled_back",
        }
    }
}

/// One line after the header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub(crate) enum Entry {
    /// A device's new step.
    Device {
        device: String,
        step: Step,
        /// With `activated`: the bundle it ran before, what a rollback returns it to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<BundleRef>,
        /// With `failed`: why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When (RFC 3339).
        at: String,
    },
    /// The rollout stopped; what activated is being rolled back.
    Aborted { reason: String, at: String },
}

/// What the journal says of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRecord {
    pub(crate) step: Step,
    /// The bundle it ran before it activated the new one (kept once known).
    pub(crate) previous: Option<BundleRef>,
    pub(crate) reason: Option<String>,
    /// It activated the new bundle at some point (so an abort rolls it back).
    pub(crate) activated: bool,
    /// It failed at some point (a rollback afterwards does not undo that).
    pub(crate) failed: bool,
}

/// An open journal, appended to as the rollout goes.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    /// The header.
    pub(crate) header: Header,
    /// Each device's latest record.
    pub(crate) devices: BTreeMap<String, DeviceRecord>,
    /// Why the rollout was aborted, once it was.
    pub(crate) aborted: Option<String>,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl Journal {
    /// Creates the journal of a new rollout; refuses to overwrite one.
    pub(crate) fn create(path: &Path, header: Header) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::AlreadyExists => JournalError::Exists {
                    path: path.to_path_buf(),
                },
                _ => io(error),
            })?;
        lock(path, &file)?;
        let mut journal = Journal::with(path, file, header);
        let line = serde_json::to_string(&journal.header).map_err(|e| io(e.into()))?;
        journal.write_line(&line)?;
        // The new file's name must survive a power loss too.
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
        }
        Ok(journal)
    }

    /// Opens a journal to resume it and replays every entry. A torn last line (packctl killed in
    /// the middle of a write: no newline yet) is cut off; any other unreadable line is an error.
    pub(crate) fn open(path: &Path) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        // Locked before it is read: what is read is then what this process appends to.
        lock(path, &file)?;
        let mut text = std::fs::read_to_string(path).map_err(io)?;
        let complete = text.rfind('\n').map_or(0, |end| end + 1);
        if complete < text.len() {
            eprintln!("packctl: the journal's last line is incomplete; dropping it");
            file.set_len(complete as u64)
                .and_then(|()| file.sync_data())
                .map_err(io)?;
            text.truncate(complete);
        }
        Journal::replay(path, file, &text)
    }

    /// Reads a journal without taking it over (for `rollout status`, while another packctl may
    /// be running it): no lock, and a torn last line is only skipped.
    pub(crate) fn read(path: &Path) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let text = std::fs::read_to_string(path).map_err(io)?;
        let complete = text.rfind('\n').map_or(0, |end| end + 1);
        Journal::replay(path, file, &text[..complete])
    }

    /// The journal `text` (complete lines only) describes.
    fn replay(path: &Path, file: File, text: &str) -> Result<Journal, JournalError> {
        let corrupt = |line: usize, message: String| JournalError::Corrupt {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut lines = text.lines();
        let first = lines.next().ok_or_else(|| corrupt(1, "empty".into()))?;
        let header: Header =
            serde_json::from_str(first).map_err(|e| corrupt(1, format!("not a header: {e}")))?;
        if header.format != FORMAT {
            return Err(corrupt(
                1,
                format!("format {} is not {FORMAT}", header.format),
            ));
        }
        let mut journal = Journal::with(path, file, header);
        for (index, line) in lines.enumerate() {
            let entry: Entry =
                serde_json::from_str(line).map_err(|e| corrupt(index + 2, e.to_string()))?;
            journal.apply(&entry);
        }
        Ok(journal)
    }

    fn with(path: &Path, file: File, header: Header) -> Journal {
        Journal {
            path: path.to_path_buf(),
            file,
            devices: header
                .waves
                .iter()
                .flatten()
                .map(|device| (device.clone(), DeviceRecord::pending()))
                .collect(),
            header,
            aborted: None,
        }
    }

    /// Records a device's new step (fsynced before it returns).
    pub(crate) fn record(
        &mut self,
        device: &str,
        step: Step,
        previous: Option<BundleRef>,
        reason: Option<String>,
    ) -> Result<(), JournalError> {
        self.append(Entry::Device {
            device: device.to_string(),
            step,
            previous,
            reason,
            at: now(),
        })
    }

    /// Records that the rollout stopped.
    pub(crate) fn abort(&mut self, reason: &str) -> Result<(), JournalError> {
        self.append(Entry::Aborted {
            reason: reason.to_string(),
            at: now(),
        })
    }

    fn append(&mut self, entry: Entry) -> Result<(), JournalError> {
        let line = serde_json::to_string(&entry).map_err(|error| JournalError::Io {
            path: self.path.clone(),
            source: error.into(),
        })?;
        self.write_line(&line)?;
        self.apply(&entry);
        Ok(())
    }

    fn write_line(&mut self, line: &str) -> Result<(), JournalError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })
    }

    fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::Device {
                device,
                step,
                previous,
                reason,
                ..
            } => {
                let record = self
                    .devices
                    .entry(device.clone())
                    .or_insert_with(DeviceRecord::pending);
                record.step = *step;
                record.activated |= *step == Step::Activated;
                record.failed |= *step == Step::Failed;
                if previous.is_some() {
                    record.previous = previous.clone();
                }
                record.reason = reason.clone();
            }
            Entry::Aborted { reason, .. } => self.aborted = Some(reason.clone()),
        }
    }

    /// The device's current step.
    pub(crate) fn step(&self, device: &str) -> Step {
        self.devices
            .get(device)
            .map_or(Step::Pending, |record| record.step)
    }

    /// Devices that took part so far (past `pending`).
    pub(crate) fn attempted(&self) -> usize {
        self.devices
            .values()
            .filter(|record| record.step != Step::Pending)
            .count()
    }

    /// Devices that failed.
    pub(crate) fn failed(&self) -> usize {
        self.devices.values().filter(|record| record.failed).count()
    }
}

/// An exclusive lock on the journal for as long as `file` is open, so that two packctl processes
/// never drive (and append to) one rollout at once.
fn lock(path: &Path, file: &File) -> Result<(), JournalError> {
    // Called through the trait: std's own `File::try_lock` is newer than our MSRV.
    match fs4::FileExt::try_lock(file) {
        Ok(()) => Ok(()),
        Err(fs4::TryLockError::WouldBlock) => Err(JournalError::Busy {
            path: path.to_path_buf(),
        }),
        Err(fs4::TryLockError::Error(source)) => Err(JournalError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl DeviceRecord {
    fn pending() -> DeviceRecord {
        DeviceRecord {
            step: Step::Pending,
            previous: None,
            reason: None,
            activated: false,
            failed: false,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn header() -> Header {
        Header {
            format: FORMAT,
            archive: "b.tar.zst".into(),
            sha256: "ab".repeat(32),
            delta: None,
            bundle: BundleRef {
                name: "packd-default".into(),
                version: "1.1.0".into(),
            },
            waves: vec![vec!["a".into()], vec!["b".into(), "c".into()]],
            soak_s: 5,
            max_failed: "0".parse().unwrap(),
            max_error_rate: "5%".parse().unwrap(),
            min_briefs: 20,
            window: Some("02:00-05:00".parse().unwrap()),
            tz: "UTC".into(),
            device_tz: BTreeMap::new(),
            timeout_s: 30,
            chunk_size: 65536,
        }
    }

    #[test]
    fn a_journal_replays_to_where_it_was_and_keeps_the_previous_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollout.jsonl");
        let previous = BundleRef {
            name: "packd-default".into(),
            version: "1.0.0".into(),
        };
        {
            let mut journal = Journal::create(&path, header()).unwrap();
            journal.record("a", Step::Transferring, None, None).unwrap();
            journal
                .record("a", Step::Activated, Some(previous.clone()), None)
                .unwrap();
            journal.record("a", Step::Healthy, None, None).unwrap();
            journal
                .record("b", Step::Failed, None, Some("unknown_key".into()))
                .unwrap();
        }
        assert!(matches!(
            Journal::create(&path, header()),
            Err(JournalError::Exists { .. })
        ));
        let journal = Journal::open(&path).unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::Busy { .. })
        ));
        // `status` reads it all the same.
        assert_eq!(Journal::read(&path).unwrap().step("a"), Step::Healthy);
        assert_eq!(journal.header.window, header().window);
        assert_eq!(journal.step("a"), Step::Healthy);
        assert_eq!(journal.devices["a"].previous, Some(previous));
        assert_eq!(journal.step("b"), Step::Failed);
        assert_eq!(journal.step("c"), Step::Pending);
        assert_eq!((journal.attempted(), journal.failed()), (2, 1));
        assert!(journal.aborted.is_none());
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_a_torn_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollout.jsonl");
        {
            let mut journal = Journal::create(&path, header()).unwrap();
            journal.record("a", Step::Installed, None, None).unwrap();
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(r#"{"entry":"device","device":"a","st"#);
        std::fs::write(&path, &text).unwrap();
        {
            let mut journal = Journal::open(&path).unwrap();
            assert_eq!(journal.step("a"), Step::Installed);
            journal.abort("operator").unwrap();
        }
        let journal = Journal::open(&path).unwrap();
        assert_eq!(journal.aborted.as_deref(), Some("operator"));
        drop(journal);
        let lines: Vec<&str> = text.lines().collect();
        let broken = format!("{}\nnot json\n{}\n", lines[0], lines[1]);
        std::fs::write(&path, broken).unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::Corrupt { line: 2, .. })
        ));
    }
}
