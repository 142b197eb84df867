use super::*;
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::Write;

const CHUNK: u64 = MIN_CHUNK_SIZE;

fn limits() -> TransferLimits {
    TransferLimits {
        max_bundle_bytes: 1 << 20,
        max_concurrent_transfers: 1,
        free_space_margin: 0,
        free_space_override: Some(u64::MAX),
        ..TransferLimits::default()
    }
}

/// Bytes that differ from chunk to chunk, so a chunk written at the wrong offset shows.
fn payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + i / 4096 * 7) as u8).wrapping_add(salt))
        .collect()
}

fn request_for(id: &str, bytes: &[u8]) -> BeginRequest {
    BeginRequest {
        transfer: id.to_string(),
        name: "packd-default".into(),
        version: "1.1.0+jetson".into(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        chunk_size: CHUNK,
        signature: Some("c2ln".into()),
        key_id: Some("21fe31dfa154a261".into()),
        allow_downgrade: false,
    }
}

fn chunk(bytes: &[u8], seq: u64) -> &[u8] {
    let start = (seq * CHUNK) as usize;
    &bytes[start..(start + CHUNK as usize).min(bytes.len())]
}

fn send(store: &TransferStore, id: &str, bytes: &[u8], seqs: impl IntoIterator<Item = u64>) {
    for seq in seqs {
        store.write_chunk(id, seq, chunk(bytes, seq)).unwrap();
    }
}

fn held_file_len(store: &TransferStore, id: &str) -> u64 {
    fs::metadata(store.dir().join(id).join(HELD_FILE))
        .unwrap()
        .len()
}

#[test]
fn full_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(&dir.path().join(".transfers")).unwrap();
    let bytes = payload(5 * CHUNK as usize + 123, 0);
    let request = request_for("t-1", &bytes);
    assert_eq!(request.chunk_count(), 6);
    assert_eq!(request.chunk_len(5), Some(123));
    assert_eq!(store.begin(&request, &limits()).unwrap(), []);
    assert_eq!(store.missing("t-1").unwrap(), [(0, 6)]);
    send(&store, "t-1", &bytes, 0..6);
    assert_eq!(store.missing("t-1").unwrap(), []);
    assert_eq!(store.held("t-1").unwrap(), [(0, 6)]);

    let completed = store.complete("t-1").unwrap();
    assert_eq!(fs::read(&completed.path).unwrap(), bytes);
    assert_eq!(completed.request, request);
    let listed = store.list();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].held_chunks, listed[0].chunk_count), (6, 6));

    assert!(store.discard("t-1").unwrap());
    assert!(!completed.path.exists());
    assert!(!store.discard("t-1").unwrap());
    assert!(matches!(
        store.complete("t-1"),
        Err(TransferError::UnknownTransfer(_))
    ));
}

#[test]
fn out_of_order_and_duplicate_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let bytes = payload(4 * CHUNK as usize, 1);
    store.begin(&request_for("t", &bytes), &limits()).unwrap();
    send(&store, "t", &bytes, [3, 1, 3, 0]);
    assert_eq!(store.held("t").unwrap(), [(0, 2), (3, 4)]);
    // A duplicate is acknowledged and not written again, even with other bytes.
    store
        .write_chunk("t", 1, &vec![0xEE; CHUNK as usize])
        .unwrap();
    send(&store, "t", &bytes, [2, 2]);
    assert_eq!(held_file_len(&store, "t"), 4 * HELD_RECORD_LEN);
    assert_eq!(fs::read(store.complete("t").unwrap().path).unwrap(), bytes);
}

#[test]
fn resume_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = payload(6 * CHUNK as usize + 1, 2);
    let request = request_for("resume-me", &bytes);
    {
        let store = TransferStore::open(dir.path()).unwrap();
        store.begin(&request, &limits()).unwrap();
        send(&store, "resume-me", &bytes, [0, 1, 4, 6]);
    }
    let store = TransferStore::open(dir.path()).unwrap();
    assert_eq!(store.missing("resume-me").unwrap(), [(2, 4), (5, 6)]);
    let mut same_but_upper_case = request.clone();
    same_but_upper_case.sha256 = request.sha256.to_ascii_uppercase();
    assert_eq!(
        store.begin(&same_but_upper_case, &limits()).unwrap(),
        [(0, 2), (4, 5), (6, 7)]
    );
    let mut different = request.clone();
    different.chunk_size = 2 * CHUNK;
    match store.begin(&different, &limits()) {
        Err(
            error @ TransferError::BadRequest {
                field: "transfer", ..
            },
        ) => {
            assert_eq!(error.code(), "bad_request")
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    send(&store, "resume-me", &bytes, [2, 3, 5]);
    assert_eq!(
        fs::read(store.complete("resume-me").unwrap().path).unwrap(),
        bytes
    );
}

#[test]
fn torn_held_record_is_ignored_and_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = payload(4 * CHUNK as usize, 3);
    {
        let store = TransferStore::open(dir.path()).unwrap();
        store.begin(&request_for("t", &bytes), &limits()).unwrap();
        send(&store, "t", &bytes, [0, 1]);
    }
    let held_path = dir.path().join("t").join(HELD_FILE);
    // What a crash mid-append leaves: the first bytes of a record for chunk 2.
    let mut held = OpenOptions::new().append(true).open(&held_path).unwrap();
    held.write_all(&2u64.to_le_bytes()[..3]).unwrap();
    drop(held);
    {
        let store = TransferStore::open(dir.path()).unwrap();
        assert_eq!(store.held("t").unwrap(), [(0, 2)]);
        send(&store, "t", &bytes, [3]);
    }
    assert_eq!(fs::metadata(&held_path).unwrap().len(), 3 * HELD_RECORD_LEN);
    let store = TransferStore::open(dir.path()).unwrap();
    assert_eq!(store.held("t").unwrap(), [(0, 2), (3, 4)]);
    send(&store, "t", &bytes, [2]);
    store.complete("t").unwrap();
}

#[test]
fn half_created_and_damaged_transfers_are_cleared_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = payload(2 * CHUNK as usize, 4);
    {
        let store = TransferStore::open(dir.path()).unwrap();
        store
            .begin(&request_for("good", &bytes), &limits())
            .unwrap();
    }
    // A begin that crashed before meta.json landed.
    fs::create_dir(dir.path().join("no-meta")).unwrap();
    fs::write(dir.path().join("no-meta").join(DATA_FILE), b"").unwrap();
    // A data file that is not the announced size.
    fs::create_dir(dir.path().join("short")).unwrap();
    let mut meta = request_for("short", &bytes);
    meta.sha256 = meta.sha256.to_ascii_lowercase();
    fs::write(
        dir.path().join("short").join(META_FILE),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
    fs::write(dir.path().join("short").join(DATA_FILE), b"abc").unwrap();
    fs::write(dir.path().join("short").join(HELD_FILE), b"").unwrap();

    let store = TransferStore::open(dir.path()).unwrap();
    let ids: Vec<String> = store
        .list()
        .into_iter()
        .map(|t| t.request.transfer)
        .collect();
    assert_eq!(ids, ["good"]);
    assert!(!dir.path().join("no-meta").exists());
    assert!(!dir.path().join("short").exists());
}

#[test]
fn chunk_lengths_and_sequence_numbers_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let bytes = payload(2 * CHUNK as usize + 10, 5);
    store.begin(&request_for("t", &bytes), &limits()).unwrap();
    let field_of = |result: Result<(), TransferError>| match result {
        Err(TransferError::BadRequest { field, .. }) => field,
        other => panic!("expected BadRequest, got {other:?}"),
    };
    assert_eq!(field_of(store.write_chunk("t", 0, &bytes[..100])), "chunk");
    assert_eq!(
        field_of(store.write_chunk("t", 0, &bytes[..CHUNK as usize + 1])),
        "chunk"
    );
    assert_eq!(
        field_of(store.write_chunk("t", 2, &bytes[..CHUNK as usize])),
        "chunk"
    );
    assert_eq!(field_of(store.write_chunk("t", 2, &bytes[..9])), "chunk");
    assert_eq!(field_of(store.write_chunk("t", 3, &bytes[..10])), "seq");
    assert_eq!(
        field_of(store.write_chunk("t", u64::MAX, &bytes[..10])),
        "seq"
    );
    assert_eq!(store.held("t").unwrap(), []);
    assert_eq!(held_file_len(&store, "t"), 0);
    store
        .write_chunk("t", 2, &bytes[2 * CHUNK as usize..])
        .unwrap();

    let error = store.write_chunk("nope", 0, b"x").unwrap_err();
    assert!(matches!(error, TransferError::UnknownTransfer(ref id) if id == "nope"));
    assert_eq!(error.code(), "bad_request");
    assert!(matches!(
        store.missing("nope"),
        Err(TransferError::UnknownTransfer(_))
    ));
}

#[test]
fn missing_chunks_are_reported_as_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let bytes = payload(10 * CHUNK as usize, 6);
    store.begin(&request_for("t", &bytes), &limits()).unwrap();
    send(&store, "t", &bytes, [0, 1, 2, 5, 9]);
    let error = store.complete("t").unwrap_err();
    assert_eq!(error.code(), "missing_chunks");
    match error {
        TransferError::MissingChunks(ranges) => assert_eq!(ranges, [(3, 5), (6, 9)]),
        other => panic!("expected MissingChunks, got {other:?}"),
    }
    assert_eq!(store.missing("t").unwrap(), [(3, 5), (6, 9)]);
}

#[test]
fn a_digest_mismatch_is_bad_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let bytes = payload(3 * CHUNK as usize, 7);
    let mut request = request_for("t", &bytes);
    request.sha256 = hex::encode(Sha256::digest(b"something else"));
    store.begin(&request, &limits()).unwrap();
    send(&store, "t", &bytes, 0..3);
    match store.complete("t") {
        Err(error @ TransferError::BadDigest { .. }) => {
            assert_eq!(error.code(), "bad_digest");
            assert!(error
                .to_string()
                .contains(&hex::encode(Sha256::digest(&bytes))));
        }
        other => panic!("expected BadDigest, got {other:?}"),
    }
}

#[test]
fn begin_validates_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let base = request_for("ok", &payload(100, 8));
    let cases: Vec<(&str, BeginRequest)> = vec![
        (
            "transfer",
            BeginRequest {
                transfer: "".into(),
                ..base.clone()
            },
        ),
        (
            "transfer",
            BeginRequest {
                transfer: "x".repeat(65),
                ..base.clone()
            },
        ),
        (
            "transfer",
            BeginRequest {
                transfer: "..".into(),
                ..base.clone()
            },
        ),
        (
            "transfer",
            BeginRequest {
                transfer: "a/b".into(),
                ..base.clone()
            },
        ),
        (
            "transfer",
            BeginRequest {
                transfer: "a.b".into(),
                ..base.clone()
            },
        ),
        (
            "name",
            BeginRequest {
                name: "".into(),
                ..base.clone()
            },
        ),
        (
            "name",
            BeginRequest {
                name: "a/b".into(),
                ..base.clone()
            },
        ),
        (
            "name",
            BeginRequest {
                name: "a+b".into(),
                ..base.clone()
            },
        ),
        (
            "version",
            BeginRequest {
                version: "1 0".into(),
                ..base.clone()
            },
        ),
        (
            "sha256",
            BeginRequest {
                sha256: "ab".into(),
                ..base.clone()
            },
        ),
        (
            "sha256",
            BeginRequest {
                sha256: "g".repeat(64),
                ..base.clone()
            },
        ),
        (
            "chunk_size",
            BeginRequest {
                chunk_size: MIN_CHUNK_SIZE - 1,
                ..base.clone()
            },
        ),
        (
            "chunk_size",
            BeginRequest {
                chunk_size: MAX_CHUNK_SIZE + 1,
                ..base.clone()
            },
        ),
        (
            "chunk_size",
            BeginRequest {
                chunk_size: 0,
                ..base.clone()
            },
        ),
        (
            "size",
            BeginRequest {
                size: 0,
                ..base.clone()
            },
        ),
    ];
    for (expected_field, request) in cases {
        match store.begin(&request, &limits()) {
            Err(TransferError::BadRequest { field, .. }) => {
                assert_eq!(field, expected_field, "{request:?}")
            }
            other => panic!("{request:?}: expected BadRequest, got {other:?}"),
        }
    }
    assert!(store.list().is_empty());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a refused begin left files"
    );
    let x = "x".repeat(64);
    store
        .begin(
            &BeginRequest {
                transfer: x,
                chunk_size: MAX_CHUNK_SIZE,
                ..base
            },
            &limits(),
        )
        .unwrap();
}

#[test]
fn size_over_the_limit_is_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let mut request = request_for("t", b"x");
    request.size = limits().max_bundle_bytes + 1;
    match store.begin(&request, &limits()) {
        Err(error @ TransferError::TooLarge { .. }) => assert_eq!(error.code(), "too_large"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    request.size = limits().max_bundle_bytes;
    store.begin(&request, &limits()).unwrap();
    assert_eq!(
        fs::metadata(dir.path().join("t").join(DATA_FILE))
            .unwrap()
            .len(),
        limits().max_bundle_bytes
    );
}

#[test]
fn too_little_free_space_is_no_space() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let bytes = payload(4 * CHUNK as usize, 9);
    let request = request_for("t", &bytes);
    let needed = 2 * request.size + 1000;
    let tight = |available| TransferLimits {
        free_space_margin: 1000,
        free_space_override: Some(available),
        ..limits()
    };
    match store.begin(&request, &tight(needed - 1)) {
        Err(error @ TransferError::NoSpace(_)) => assert_eq!(error.code(), "no_space"),
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(!dir.path().join("t").exists());
    assert_eq!(store.begin(&request, &tight(needed)).unwrap(), []);
    // On resume, the chunks already on disk no longer need room.
    send(&store, "t", &bytes, [0, 1]);
    assert_eq!(
        store.begin(&request, &tight(needed - 2 * CHUNK)).unwrap(),
        [(0, 2)]
    );
    assert!(matches!(
        store.begin(&request, &tight(needed - 2 * CHUNK - 1)),
        Err(TransferError::NoSpace(_))
    ));
    // The real filesystem is asked when there is no override.
    let real = TransferLimits {
        free_space_override: None,
        free_space_margin: u64::MAX / 2,
        ..limits()
    };
    assert!(matches!(
        store.begin(
            &request_for("u", &bytes),
            &TransferLimits {
                max_concurrent_transfers: 2,
                ..real
            }
        ),
        Err(TransferError::NoSpace(_))
    ));
}

#[test]
fn a_second_transfer_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let first = request_for("first", &payload(100, 10));
    let second = request_for("second", &payload(200, 11));
    store.begin(&first, &limits()).unwrap();
    match store.begin(&second, &limits()) {
        Err(error @ TransferError::Busy { .. }) => {
            assert_eq!(error.code(), "busy");
            assert!(error.to_string().contains("first"));
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    // Resuming the transfer in progress is not busy.
    store.begin(&first, &limits()).unwrap();
    let two = TransferLimits {
        max_concurrent_transfers: 2,
        ..limits()
    };
    store.begin(&second, &two).unwrap();
    assert_eq!(store.list().len(), 2);
    store.discard("first").unwrap();
    store.discard("second").unwrap();
    store.begin(&second, &limits()).unwrap();
}

/// A slot held by a transfer that makes no progress is not held forever: a `begin` for
/// another archive takes it once the holder stalled (no new chunk for `stall_after`, whatever
/// `begin`s or duplicate chunks came meanwhile) or is overdue (one chunk now and then, but
/// slower than `min_bytes_per_s` overall). A progressing transfer keeps its slot.
#[test]
fn a_stalled_or_overdue_transfer_of_another_archive_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let held = payload(8 * CHUNK as usize, 20);
    let holder = request_for("holder", &held);
    let fresh = request_for("fresh", &payload(3 * CHUNK as usize, 21));
    let limits = TransferLimits {
        stall_after: Duration::from_secs(60),
        min_bytes_per_s: CHUNK,
        ..limits()
    };
    let t0 = SystemTime::now();
    store.begin_at(&holder, &limits, t0).unwrap();
    send(&store, "holder", &held, [0]);
    let at = |seconds| t0 + Duration::from_secs(seconds);
    // Progressing: busy. A replayed begin of the holder, or a duplicate chunk, is no progress.
    assert!(matches!(
        store.begin_at(&fresh, &limits, at(30)),
        Err(TransferError::Busy { .. })
    ));
    store.begin_at(&holder, &limits, at(59)).unwrap();
    send(&store, "holder", &held, [0]);
    // Nor does the same archive under another id while the holder has not stalled.
    let same_archive = BeginRequest {
        transfer: "replay".into(),
        ..holder.clone()
    };
    assert!(matches!(
        store.begin_at(&same_archive, &limits, at(59)),
        Err(TransferError::Busy { .. })
    ));
    // Stalled: taken over, its files gone.
    assert_eq!(store.begin_at(&fresh, &limits, at(61)).unwrap(), []);
    assert!(!dir.path().join("holder").exists());
    assert!(matches!(
        store.complete("holder"),
        Err(TransferError::UnknownTransfer(_))
    ));
    assert!(store.discard("fresh").unwrap());

    // A replayed begin of an archive under another id holds the slot no longer than any
    // other stalled transfer: the genuine push of the same archive takes it over.
    let t2 = SystemTime::now();
    store.begin_at(&same_archive, &limits, t2).unwrap();
    store
        .begin_at(&holder, &limits, t2 + Duration::from_secs(61))
        .unwrap();
    assert!(!dir.path().join("replay").exists());
    assert!(store.discard("holder").unwrap());

    // Overdue: 8 chunks at one chunk a second is 8 s, plus 60 s of grace; a chunk every 50 s
    // keeps it from stalling but not from being overdue.
    let t1 = SystemTime::now();
    store.begin_at(&holder, &limits, t1).unwrap();
    send(&store, "holder", &held, [1]);
    store.transfers()["holder"].state().last_progress = t1 + Duration::from_secs(50);
    assert!(matches!(
        store.begin_at(&fresh, &limits, t1 + Duration::from_secs(68)),
        Err(TransferError::Busy { .. })
    ));
    store
        .begin_at(&fresh, &limits, t1 + Duration::from_secs(69))
        .unwrap();
    assert_eq!(
        store
            .list()
            .into_iter()
            .map(|t| t.request.transfer)
            .collect::<Vec<_>>(),
        ["fresh"]
    );
}

#[test]
fn idle_transfers_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = payload(2 * CHUNK as usize, 12);
    {
        let store = TransferStore::open(dir.path()).unwrap();
        store.begin(&request_for("old", &bytes), &limits()).unwrap();
        send(&store, "old", &bytes, [0]);
        assert!(store.sweep(Duration::from_secs(3600)).is_empty());
    }
    // Age the files as if the transfer had been idle for two hours before a restart.
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    for file in [META_FILE, HELD_FILE] {
        File::options()
            .write(true)
            .open(dir.path().join("old").join(file))
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    let store = TransferStore::open(dir.path()).unwrap();
    store
        .begin(
            &request_for("new", &bytes),
            &TransferLimits {
                max_concurrent_transfers: 2,
                ..limits()
            },
        )
        .unwrap();
    assert_eq!(store.sweep(Duration::from_secs(3600)), ["old"]);
    assert!(!dir.path().join("old").exists());
    let remaining: Vec<String> = store
        .list()
        .into_iter()
        .map(|t| t.request.transfer)
        .collect();
    assert_eq!(remaining, ["new"]);
}

#[test]
fn concurrent_chunks_for_one_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let store = TransferStore::open(dir.path()).unwrap();
    let bytes = payload(64 * CHUNK as usize - 5, 13);
    store.begin(&request_for("t", &bytes), &limits()).unwrap();
    std::thread::scope(|scope| {
        for worker in 0..8u64 {
            let (store, bytes) = (&store, &bytes);
            scope.spawn(move || {
                // Each worker sends every chunk, in its own order, so duplicates race.
                for step in 0..64u64 {
                    let seq = (step * 7 + worker * 13) % 64;
                    store.write_chunk("t", seq, chunk(bytes, seq)).unwrap();
                }
            });
        }
    });
    assert_eq!(held_file_len(&store, "t"), 64 * HELD_RECORD_LEN);
    assert_eq!(fs::read(store.complete("t").unwrap().path).unwrap(), bytes);
}

#[test]
fn begin_payload_parses_with_extra_fields() {
    let payload = br#"{"v": 1, "id": "r1", "reply_to": "x/y", "transfer": "t1",
        "name": "packd-default", "version": "1.0.0", "size": 10, "sha256": "00",
        "chunk_size": 4096}"#;
    let request: BeginRequest = serde_json::from_slice(payload).unwrap();
    assert_eq!(request.transfer, "t1");
    assert_eq!((request.signature, request.key_id), (None, None));
    let digest = request_for("t", b"abc").digest().unwrap();
    assert_eq!(hex::encode(digest), hex::encode(Sha256::digest(b"abc")));
}

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_during_write_chunk_is_no_space() {
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("small");
    fs::create_dir(&mount_point).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mount_point)
        .output();
    match mounted {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            println!(
                "skipped: cannot mount a tmpfs here ({})",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(error) => {
            println!("skipped: cannot run mount ({error})");
            return;
        }
    }
    let _unmount = Mounted(mount_point.clone());

    let store = TransferStore::open(&mount_point.join(".transfers")).unwrap();
    let bytes = payload(2 * 1024 * 1024, 14);
    let request = BeginRequest {
        chunk_size: 64 * 1024,
        ..request_for("big", &bytes)
    };
    // The real free-space check refuses this begin outright...
    let real = TransferLimits {
        max_bundle_bytes: 4 << 20,
        free_space_override: None,
        ..limits()
    };
    assert!(matches!(
        store.begin(&request, &real),
        Err(TransferError::NoSpace(_))
    ));
    // ...so pretend there is room, and let the disk itself run out.
    let lying = TransferLimits {
        free_space_override: Some(u64::MAX),
        ..real
    };
    store.begin(&request, &lying).unwrap();
    let mut first_failure = None;
    for seq in 0..request.chunk_count() {
        let start = (seq * request.chunk_size) as usize;
        let piece = &bytes[start..start + request.chunk_size as usize];
        if let Err(error) = store.write_chunk("big", seq, piece) {
            first_failure = Some((seq, error));
            break;
        }
    }
    let (failed_seq, error) = first_failure.expect("a 2 MiB transfer cannot fit in 1 MiB");
    assert!(matches!(error, TransferError::NoSpace(_)), "{error:?}");
    assert_eq!(error.code(), "no_space");
    assert!(
        failed_seq > 0 && failed_seq < 16,
        "failed at chunk {failed_seq}"
    );
    // The chunk that did not fit is not recorded as held.
    assert_eq!(store.held("big").unwrap(), [(0, failed_seq)]);
    assert!(store.discard("big").unwrap());
}
