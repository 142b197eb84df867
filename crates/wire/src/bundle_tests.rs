use serde_json::json;

use super::*;

#[test]
fn codes_serialise_as_their_wire_names_and_parse_back() {
    for code in BundleErrorCode::ALL {
        assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        assert_eq!(code.as_str().parse::<BundleErrorCode>(), Ok(code));
        assert_eq!(code.to_string(), code.as_str());
    }
    assert_eq!(
        "no_reply".parse::<BundleErrorCode>(),
        Err(UnknownCode("no_reply".into()))
    );
    for check in [
        InvalidCheck::Archive,
        InvalidCheck::Manifest,
        InvalidCheck::FileHash,
        InvalidCheck::Content,
    ] {
        assert_eq!(serde_json::to_value(check).unwrap(), check.as_str());
    }
}

#[test]
fn every_code_of_the_contract_is_listed_once() {
    // The spec's begin and commit error lists, plus `internal`.
    let contract = [
        "bad_signature",
        "unknown_key",
        "too_large",
        "no_space",
        "busy",
        "bad_request",
        "downgrade",
        "missing_chunks",
        "bad_digest",
        "invalid_bundle",
        "incompatible",
        "selftest_failed",
        "internal",
    ];
    let listed: Vec<&str> = BundleErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, contract);
}

#[test]
fn requests_read_as_packd_always_read_them() {
    let begin: Begin = serde_json::from_value(json!({
        "v": 1, "reply_to": "x", "transfer": "t", "name": "n", "version": "1",
        "size": 10, "sha256": "ab", "chunk_size": 4
    }))
    .unwrap();
    assert_eq!(begin.signature, None);
    assert!(!begin.allow_downgrade);
    // Several fields missing: the first one named is still `transfer`.
    let missing = serde_json::from_value::<Begin>(json!({})).unwrap_err();
    assert!(missing.to_string().contains("`transfer`"), "{missing}");
    let commit: Commit = serde_json::from_value(json!({"transfer": "t"})).unwrap();
    assert!(commit.activate, "activate defaults to true");
    assert_eq!(serde_json::to_string(&NoArguments {}).unwrap(), "{}");
}

#[test]
fn replies_are_read_by_their_status() {
    let ready = r#"{"device":"d","have":[[0,2]],"id":"x","status":"ready","transfer":"t","v":1}"#;
    let reply: BundleReply = serde_json::from_str(ready).unwrap();
    assert!(matches!(&reply, BundleReply::Ready(r) if r.have == [[0, 2]]));
    assert_eq!(serde_json::to_string(&reply).unwrap(), ready);

    let installed = r#"{"bundle":{"name":"n","version":"1"},"device":"d","previous":null,"status":"installed","v":1}"#;
    let reply: BundleReply = serde_json::from_str(installed).unwrap();
    assert_eq!(reply.status(), BundleStatus::Installed);
    assert_eq!(serde_json::to_string(&reply).unwrap(), installed);

    let refused = r#"{"device":"d","error":{"check":"file_hash","code":"invalid_bundle","message":"m"},"status":"error","v":1}"#;
    let reply: BundleReply = serde_json::from_str(refused).unwrap();
    assert_eq!(reply.error_code(), Some(BundleErrorCode::InvalidBundle));
    assert_eq!(serde_json::to_string(&reply).unwrap(), refused);

    let unknown = serde_json::from_str::<BundleReply>(r#"{"status":"sleeping"}"#).unwrap_err();
    assert!(unknown.to_string().contains("sleeping"), "{unknown}");
    let wrong_shape =
        serde_json::from_str::<BundleReply>(r#"{"status":"ready","device":"d"}"#).unwrap_err();
    assert!(wrong_shape.to_string().contains("have"), "{wrong_shape}");
}
