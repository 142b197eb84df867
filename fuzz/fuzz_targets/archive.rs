//! The bundle archive reader: any bytes, written to a file, unpacked by `archive::unpack` into
//! an empty directory under small limits, as `commit` unpacks a received archive.
//!
//! The first byte picks how the rest is used, so mutations are not all wasted on tar's header
//! checksum: bit 0 set recomputes the checksum of every header the tar framing reaches (sizes
//! as the headers declare them), bit 1 set zstd-compresses the result. A plain input that starts
//! with zstd's magic is still read as zstd, as packd would.
//!
//! Checked after every unpack: nothing is written outside the destination; a refused archive
//! leaves the destination empty; an accepted one holds `manifest.toml`, only plain files and
//! directories, and no more than the limits allow.

#![no_main]

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use packd::bundle::archive::{unpack, UnpackLimits};
use packd::bundle::MANIFEST_FILE;

const LIMITS: UnpackLimits = UnpackLimits {
    max_total_bytes: 256 * 1024,
    max_files: 64,
    max_file_bytes: 64 * 1024,
};

fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut builder = tempfile::Builder::new();
        builder.prefix("packd-fuzz-archive-");
        builder
    };
    if shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    }
    .expect("temp dir")
}

/// Parses a tar numeric field: octal text, or GNU base-256 when the high bit is set.
fn numeric(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|byte| byte & 0x80 != 0) {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for &byte in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(byte))?;
        }
        return Some(value);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// Rewrites the checksum of each header block the framing reaches.
fn fix_checksums(tar: &mut [u8]) {
    let mut offset = 0usize;
    while offset + 512 <= tar.len() {
        let block = &mut tar[offset..offset + 512];
        if block.iter().all(|&byte| byte == 0) {
            offset += 512;
            continue;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&byte| u32::from(byte)).sum();
        let text = format!("{sum:06o}\0 ");
        block[148..156].copy_from_slice(&text.as_bytes()[..8]);
        let size = numeric(&block[124..136]).unwrap_or(0);
        let Some(data) = size.checked_add(511).map(|s| s / 512 * 512) else {
            return;
        };
        let Some(next) = usize::try_from(data)
            .ok()
            .and_then(|data| offset.checked_add(512)?.checked_add(data))
        else {
            return;
        };
        offset = next;
    }
}

fn walk(dir: &Path, found: &mut Vec<(String, fs::Metadata)>, root: &Path) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let metadata = fs::symlink_metadata(entry.path()).expect("metadata");
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        if metadata.is_dir() {
            walk(&entry.path(), found, root);
        }
        found.push((relative, metadata));
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut archive = rest.to_vec();
    if mode & 1 != 0 {
        fix_checksums(&mut archive);
    }
    if mode & 2 != 0 {
        archive = zstd::bulk::compress(&archive, 1).expect("zstd");
    }

    let work = scratch();
    let archive_path = work.path().join("archive");
    fs::write(&archive_path, &archive).expect("write archive");
    let into = work.path().join("out");
    let result = unpack(&archive_path, &into, &LIMITS);

    // Nothing appears beside the destination.
    let mut top: Vec<String> = fs::read_dir(work.path())
        .expect("read_dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    top.sort();
    assert_eq!(top, ["archive", "out"], "{result:?}");

    let mut found = Vec::new();
    walk(&into, &mut found, &into);
    match result {
        Err(error) => {
            assert!(
                found.is_empty(),
                "{error} left {:?} behind",
                found.iter().map(|f| &f.0).collect::<Vec<_>>()
            );
            let _ = error.code();
        }
        Ok(report) => {
            assert!(report.files.iter().any(|file| file == MANIFEST_FILE));
            assert!(report.total_bytes <= LIMITS.max_total_bytes);
            assert!(
                found.len() as u64 <= LIMITS.max_files,
                "{} entries",
                found.len()
            );
            let mut total = 0;
            for (relative, metadata) in &found {
                assert!(
                    metadata.is_dir() || metadata.is_file(),
                    "{relative} is neither a file nor a directory"
                );
                if metadata.is_file() {
                    assert!(metadata.len() <= LIMITS.max_file_bytes, "{relative}");
                    assert!(report.files.contains(relative), "{relative} not reported");
                    total += metadata.len();
                }
            }
            assert_eq!(total, report.total_bytes);
            assert_eq!(
                found.iter().filter(|(_, m)| m.is_file()).count(),
                report.files.len()
            );
        }
    }
});
