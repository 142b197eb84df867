use super::*;

#[test]
fn replace_file_swaps_the_whole_file_and_leaves_no_temporary() {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("active");
    replace_file(&path, b"old\n").unwrap();
    replace_file(&path, b"new\n").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new\n");
    let names: Vec<_> = fs::read_dir(work.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["active"]);
}

#[test]
fn replace_file_names_the_path_that_failed() {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("absent-dir").join("file");
    let error = replace_file(&path, b"x").unwrap_err();
    assert_eq!(error.path, work.path().join("absent-dir").join("file.tmp"));
    assert_eq!(error.source.kind(), io::ErrorKind::NotFound);
}

#[test]
fn create_new_file_refuses_to_overwrite() {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("signing.key");
    create_new_file(&path, 0o600, b"secret").unwrap();
    let error = create_new_file(&path, 0o600, b"other").unwrap_err();
    assert_eq!(error.source.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read(&path).unwrap(), b"secret");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn rename_moves_across_directories() {
    let work = tempfile::tempdir().unwrap();
    let from = work.path().join("bundle@1");
    fs::create_dir(&from).unwrap();
    fs::create_dir(work.path().join(".rejected")).unwrap();
    let to = work.path().join(".rejected").join("bundle@1-0");
    rename(&from, &to).unwrap();
    assert!(!from.exists() && to.is_dir());
    let error = rename(&from, &to).unwrap_err();
    assert_eq!(error.path, to);
}

#[test]
fn sha256_streams_a_file() {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("abc");
    fs::write(&path, b"abc").unwrap();
    assert_eq!(
        sha256_hex_of_file(&path).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let big = work.path().join("big");
    fs::write(&big, vec![9u8; 200_000]).unwrap();
    let expected: [u8; 32] = Sha256::digest(vec![9u8; 200_000]).into();
    assert_eq!(sha256_of_file(&big).unwrap(), expected);
    assert_eq!(
        sha256_of_file(&work.path().join("absent"))
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );
}
