use super::*;
use crate::MANIFEST_FILE;
use sha2::{Digest, Sha256};
use std::fs;
use std::time::{Duration, SystemTime};
use tar::{EntryType, Header};

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
        // The shipped bundle holds 225 files with its preview faces and their licences.
        max_files: 1_000,
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
        Err(ArchiveError::FileTooLarge { limit, .. } | ArchiveError::TotalTooLarge { limit }) => {
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

    // The shipped bundle lives at the workspace root, two levels above this crate.
    let shipped = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../engines/packd-default"
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
    // The shipped bundle expands (its JSON and models compress; the text encoder's int8 rows
    // hardly do) and still unpacks within the bound.
    assert!(report.total_bytes > fs::metadata(&packed).unwrap().len());
}
