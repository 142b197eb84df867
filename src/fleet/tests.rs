use super::*;
use crate::bundle::manifest::EngineEntry;

#[test]
fn commands_parse_from_topic_suffixes() {
    assert_eq!(Command::parse("begin"), Some(Command::Begin));
    assert_eq!(
        Command::parse("chunk/t-1/42"),
        Some(Command::Chunk {
            transfer: "t-1".into(),
            seq: 42
        })
    );
    assert_eq!(Command::parse("chunk/t-1/x"), None);
    assert_eq!(Command::parse("chunk/t-1/1/extra"), None);
    assert_eq!(Command::parse("abort"), Some(Command::Abort));
    assert_eq!(Command::parse("list/extra"), None);
    assert_eq!(Command::parse("format-disk"), None);
}

fn engine(target: &str, tensorrt: &str) -> EngineEntry {
    EngineEntry {
        target: target.into(),
        precision: "int8".into(),
        file: format!("engines/{target}.plan"),
        sha256: "0".repeat(64),
        tensorrt: tensorrt.into(),
        cuda: "12.6".into(),
        compute_capability: "8.7".into(),
        dla_cores: Some(2),
    }
}

#[test]
fn engines_must_match_the_device() {
    let orin = DeviceProfile {
        tensorrt: Some("10.3.0".into()),
        compute_capability: Some("8.7".into()),
        dla_cores: 2,
    };
    assert!(check_engines(&[engine("gpu", "10.3.0"), engine("dla1", "10.3.0")], &orin).is_ok());
    assert_eq!(
        check_engines(&[engine("gpu", "11.4.1")], &orin)
            .unwrap_err()
            .code,
        BundleErrorCode::Incompatible
    );
    let one_dla = DeviceProfile {
        dla_cores: 1,
        ..orin.clone()
    };
    assert_eq!(
        check_engines(&[engine("dla1", "10.3.0")], &one_dla)
            .unwrap_err()
            .code,
        BundleErrorCode::Incompatible
    );
    assert_eq!(
        check_engines(&[engine("tpu", "10.3.0")], &orin)
            .unwrap_err()
            .code,
        BundleErrorCode::InvalidBundle
    );
    // Without TensorRT the engines are unused, so their versions do not matter.
    assert!(check_engines(&[engine("gpu", "11.4.1")], &DeviceProfile::default()).is_ok());
}

#[test]
fn reply_bodies_carry_version_device_and_id() {
    let body: serde_json::Value = serde_json::from_slice(&reply_body(
        "orin-1",
        br#"{"id":"x"}"#,
        Err(FleetError {
            missing: Some(vec![(2, 5)]),
            ..FleetError::new(BundleErrorCode::MissingChunks, "m")
        }),
    ))
    .unwrap();
    assert_eq!(body["v"], 1);
    assert_eq!(body["device"], "orin-1");
    assert_eq!(body["id"], "x");
    assert_eq!(body["error"]["code"], "missing_chunks");
    assert_eq!(body["missing"], serde_json::json!([[2, 5]]));
    assert!(body["error"].get("check").is_none(), "{body}");

    let invalid: serde_json::Value = serde_json::from_slice(&reply_body(
        "orin-1",
        b"{}",
        Err(invalid(BundleError::HashMismatch {
            path: "model.onnx".into(),
            expected: "a".into(),
            found: "b".into(),
        })),
    ))
    .unwrap();
    assert_eq!(invalid["error"]["code"], "invalid_bundle");
    assert_eq!(invalid["error"]["check"], "file_hash");
}

#[test]
fn invalid_bundles_name_the_failed_check() {
    let check_of = |error: BundleError| invalid(error).check.map(InvalidCheck::as_str);
    assert_eq!(
        check_of(BundleError::Manifest("no name".into())),
        Some("manifest")
    );
    assert_eq!(
        check_of(BundleError::UnlistedFile { path: "x".into() }),
        Some("manifest")
    );
    assert_eq!(
        check_of(BundleError::Shape("3 ≠ 4".into())),
        Some("content")
    );
    let io = BundleError::Io {
        path: "x".into(),
        source: std::io::Error::other("disk"),
    };
    assert_eq!(invalid(io).code, BundleErrorCode::Internal);
    let tpu = EngineEntry {
        target: "tpu".into(),
        ..engine("gpu", "10.3.0")
    };
    assert_eq!(
        check_engines(&[tpu], &DeviceProfile::default())
            .unwrap_err()
            .check,
        Some(InvalidCheck::Manifest)
    );
}
