//! The chunk assembler: a `begin`, then any sequence of chunks with arbitrary sequence numbers
//! and lengths, repeated `begin`s (resume, conflicting parameters), restarts (the store reopened
//! from disk, possibly with a torn `held` record), `missing`, `commit`-time `complete` and
//! `discard`, checked step by step against a model of what must have been stored.
//!
//! The archive's true bytes are fixed up front (so `begin` can announce their SHA-256); a chunk
//! carries the right bytes or, when the input says so, wrong ones, and the first copy of a chunk
//! to arrive is the one kept.

#![no_main]

use std::path::Path;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use packd::bundle::transfer::{
    BeginRequest, TransferError, TransferLimits, TransferStore, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE,
};
use sha2::{Digest, Sha256};

/// Largest archive the fuzzer builds (bounded so that every run stays fast).
const MAX_SIZE: u64 = 96 * 1024;
const ID: &str = "fuzz-transfer";

#[derive(Debug, Arbitrary)]
struct Input {
    size: u32,
    chunk_size: u16,
    /// Use `size`/`chunk_size` unscaled (mostly invalid: exercises `begin`'s checks).
    raw: bool,
    raw_size: u64,
    raw_chunk_size: u64,
    /// Announce a wrong digest.
    wrong_digest: bool,
    salt: u8,
    max_bundle_bytes: Option<u32>,
    free_space: Option<u64>,
    ops: Vec<Op>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Chunk {
        seq: u16,
        length: Length,
        corrupt: bool,
    },
    FarChunk {
        seq: u64,
        length: u32,
    },
    Begin,
    BeginDifferent {
        chunk_size_delta: u8,
    },
    Reopen {
        torn_bytes: Vec<u8>,
    },
    Missing,
    Complete,
    Discard,
    WrongId,
}

#[derive(Debug, Arbitrary)]
enum Length {
    Exact,
    Short(u16),
    Long(u16),
    Any(u32),
}

struct Model {
    content: Vec<u8>,
    stored: Vec<u8>,
    held: Vec<bool>,
    chunk_size: u64,
}

impl Model {
    fn ranges(&self, wanted: bool) -> Vec<(u64, u64)> {
        let mut ranges = Vec::new();
        let mut start = None;
        for (index, &flag) in self.held.iter().enumerate() {
            match (flag == wanted, start) {
                (true, None) => start = Some(index as u64),
                (false, Some(begin)) => {
                    ranges.push((begin, index as u64));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(begin) = start {
            ranges.push((begin, self.held.len() as u64));
        }
        ranges
    }
}

fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("packd-fuzz-transfer-");
    if shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    }
    .expect("temp dir")
}

fn check(store: &TransferStore, model: &Option<Model>) {
    match model {
        Some(model) => {
            assert_eq!(store.held(ID).expect("held"), model.ranges(true));
            assert_eq!(store.missing(ID).expect("missing"), model.ranges(false));
            let listed = store.list();
            assert_eq!(listed.len(), 1);
            assert_eq!(
                listed[0].held_chunks,
                model.held.iter().filter(|&&held| held).count() as u64
            );
            assert_eq!(listed[0].chunk_count, model.held.len() as u64);
        }
        None => {
            assert!(matches!(
                store.held(ID),
                Err(TransferError::UnknownTransfer(_))
            ));
            assert!(store.list().is_empty());
        }
    }
}

fuzz_target!(|input: Input| {
    let (size, chunk_size) = if input.raw {
        (input.raw_size, input.raw_chunk_size)
    } else {
        (
            u64::from(input.size) % MAX_SIZE + 1,
            MIN_CHUNK_SIZE + u64::from(input.chunk_size) % (4 * MIN_CHUNK_SIZE),
        )
    };
    let valid = (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) && size > 0;
    if valid && size > MAX_SIZE {
        return; // would be accepted and preallocated; keep runs small
    }
    let content: Vec<u8> = (0..size.min(MAX_SIZE))
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(input.salt) ^ (i >> 8) as u8)
        .collect();
    let digest = if input.wrong_digest {
        "ab".repeat(32)
    } else {
        hex::encode(Sha256::digest(&content))
    };
    let request = BeginRequest {
        transfer: ID.into(),
        name: "packd-default".into(),
        version: "1.0.0".into(),
        size,
        sha256: digest.to_ascii_uppercase(),
        chunk_size,
        signature: None,
        key_id: None,
        allow_downgrade: false,
    };
    let limits = TransferLimits {
        max_bundle_bytes: input.max_bundle_bytes.map_or(2 << 30, u64::from),
        max_concurrent_transfers: 1,
        free_space_margin: 0,
        free_space_override: Some(input.free_space.unwrap_or(u64::MAX)),
        ..TransferLimits::default()
    };
    let fits = size <= limits.max_bundle_bytes
        && size.saturating_mul(2) <= limits.free_space_override.unwrap_or(u64::MAX);

    let work = scratch();
    let dir = work.path().join(".transfers");
    let mut store = TransferStore::open(&dir).expect("open");
    let mut model: Option<Model> = None;

    let begin = |store: &TransferStore, model: &mut Option<Model>| {
        let result = store.begin(&request, &limits);
        match (&result, model.as_ref()) {
            (Ok(have), Some(existing)) => assert_eq!(*have, existing.ranges(true)),
            (Ok(have), None) => {
                assert!(valid && fits, "begin accepted {request:?}");
                assert!(have.is_empty());
                let count = size.div_ceil(chunk_size) as usize;
                *model = Some(Model {
                    content: content.clone(),
                    stored: vec![0; size as usize],
                    held: vec![false; count],
                    chunk_size,
                });
            }
            (Err(error), _) => {
                assert!(model.is_none() || !fits, "resume refused: {error}");
                assert!(!valid || !fits || model.is_some(), "{error}");
            }
        }
    };
    begin(&store, &mut model);
    check(&store, &model);

    for op in input.ops.iter().take(64) {
        match op {
            Op::Chunk {
                seq,
                length,
                corrupt,
            } => {
                let Some(m) = model.as_mut() else { continue };
                let seq = u64::from(*seq) % (m.held.len() as u64 + 2);
                let start = (seq * m.chunk_size).min(size);
                let expected = m.chunk_size.min(size - start);
                let length = match length {
                    Length::Exact => expected,
                    Length::Short(by) => expected.saturating_sub(u64::from(*by) + 1),
                    Length::Long(by) => expected + u64::from(*by) + 1,
                    Length::Any(n) => u64::from(*n) % (16 * MIN_CHUNK_SIZE + 2),
                };
                let mut bytes: Vec<u8> = (0..length)
                    .map(|i| m.content.get((start + i) as usize).copied().unwrap_or(0x5a))
                    .collect();
                if *corrupt {
                    if let Some(first) = bytes.first_mut() {
                        *first = !*first;
                    }
                }
                let result = store.write_chunk(ID, seq, &bytes);
                let in_range = (seq as usize) < m.held.len();
                if in_range && length == expected {
                    result.expect("a well-formed chunk is stored");
                    if !m.held[seq as usize] {
                        m.held[seq as usize] = true;
                        m.stored[start as usize..(start + length) as usize].copy_from_slice(&bytes);
                    }
                } else {
                    assert!(
                        matches!(result, Err(TransferError::BadRequest { .. })),
                        "{result:?}"
                    );
                }
            }
            Op::FarChunk { seq, length } => {
                let bytes = vec![0u8; (*length as usize) % (MAX_CHUNK_SIZE as usize + 2)];
                let result = store.write_chunk(ID, *seq, &bytes);
                if let Some(m) = &mut model {
                    let in_range = *seq < m.held.len() as u64;
                    let start = seq.saturating_mul(m.chunk_size);
                    let ok_length =
                        in_range && bytes.len() as u64 == m.chunk_size.min(size - start);
                    if ok_length {
                        result.expect("stored");
                        if !m.held[*seq as usize] {
                            m.held[*seq as usize] = true;
                            m.stored[start as usize..start as usize + bytes.len()]
                                .copy_from_slice(&bytes);
                        }
                    } else {
                        assert!(result.is_err());
                    }
                } else {
                    assert!(matches!(result, Err(TransferError::UnknownTransfer(_))));
                }
            }
            Op::Begin => begin(&store, &mut model),
            Op::BeginDifferent { chunk_size_delta } => {
                let other = BeginRequest {
                    chunk_size: request
                        .chunk_size
                        .wrapping_add(u64::from(*chunk_size_delta) + 1),
                    ..request.clone()
                };
                let result = store.begin(&other, &limits);
                if model.is_some() {
                    assert!(result.is_err(), "a conflicting begin was accepted");
                } else if result.is_ok() {
                    // Became this transfer: forget it again to keep the model simple.
                    assert!(store.discard(ID).expect("discard"));
                }
            }
            Op::Reopen { torn_bytes } => {
                drop(store);
                if model.is_some() {
                    // A torn write of the next record: fewer than 8 bytes land.
                    let torn = &torn_bytes[..torn_bytes.len().min(7)];
                    let held = dir.join(ID).join("held");
                    let mut bytes = std::fs::read(&held).expect("held");
                    // packd writes each record over whatever torn one it finds at the end.
                    bytes.truncate(bytes.len() / 8 * 8);
                    bytes.extend_from_slice(torn);
                    std::fs::write(&held, bytes).expect("held");
                }
                store = TransferStore::open(&dir).expect("reopen");
            }
            Op::Missing => {
                let _ = store.missing(ID);
            }
            Op::Complete => {
                let result = store.complete(ID);
                match &model {
                    None => assert!(matches!(result, Err(TransferError::UnknownTransfer(_)))),
                    Some(m) if m.held.iter().any(|held| !held) => match result {
                        Err(TransferError::MissingChunks(missing)) => {
                            assert_eq!(missing, m.ranges(false))
                        }
                        other => panic!("complete with chunks missing: {other:?}"),
                    },
                    Some(m) => {
                        let found = hex::encode(Sha256::digest(&m.stored));
                        match result {
                            Ok(done) => {
                                assert_eq!(found, request.sha256.to_ascii_lowercase());
                                assert_eq!(std::fs::read(&done.path).expect("data"), m.stored);
                            }
                            Err(TransferError::BadDigest {
                                found: reported, ..
                            }) => {
                                assert_eq!(reported, found);
                                assert_ne!(found, request.sha256.to_ascii_lowercase());
                            }
                            Err(other) => panic!("complete failed: {other}"),
                        }
                    }
                }
            }
            Op::Discard => {
                assert_eq!(store.discard(ID).expect("discard"), model.is_some());
                model = None;
            }
            Op::WrongId => {
                assert!(matches!(
                    store.write_chunk("no-such-transfer", 0, &[0; 4096]),
                    Err(TransferError::UnknownTransfer(_))
                ));
            }
        }
        check(&store, &model);
    }
});
