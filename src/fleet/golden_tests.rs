//! The contract's golden test for bundle replies: every reply shape, built by the typed
//! [`reply_body`] and by the `json!` code it replaced (copied here unchanged as
//! [`old_reply_body`]), must be the same bytes. serde_json without `preserve_order` sorts an
//! object's keys, so the old bodies were alphabetical; the wire structs declare their fields so.

use serde_json::{json, Value};

use super::reply::{reply_body, Done};
use super::FleetError;
use crate::reply::BundleRef;
use packd_wire::bundle::{BundleErrorCode, InstalledEntry, InvalidCheck};

/// `fleet::reply_body` as it was, over the `Value` bodies the handlers built with `json!`.
fn old_reply_body(device: &str, payload: &[u8], result: Result<Value, OldError>) -> Vec<u8> {
    let id = crate::brief::read_envelope(payload).id;
    let mut body = match result {
        Ok(value) => value,
        Err(error) => {
            let mut body =
                json!({"status": "error", "error": {"code": error.code, "message": error.message}});
            if let Some(check) = error.check {
                body["error"]["check"] = json!(check);
            }
            if let Some(missing) = &error.missing {
                body["missing"] = json!(ranges(missing));
            }
            body
        }
    };
    body["v"] = json!(crate::reply::API_VERSION);
    body["device"] = json!(device);
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The old `FleetError`'s fields, with its code and check as the strings they were.
struct OldError {
    code: &'static str,
    message: String,
    missing: Option<Vec<(u64, u64)>>,
    check: Option<&'static str>,
}

fn ranges(list: &[(u64, u64)]) -> Vec<[u64; 2]> {
    list.iter().map(|&(start, end)| [start, end]).collect()
}

fn label_to_ref(label: &str) -> Value {
    match label.split_once('@') {
        Some((name, version)) => json!({"name": name, "version": version}),
        None => json!({"name": label, "version": ""}),
    }
}

fn bundle_ref(name: &str, version: &str) -> BundleRef {
    BundleRef {
        name: name.into(),
        version: version.into(),
    }
}

/// Each success body as the old handlers built it, beside the typed one.
fn successes() -> Vec<(Value, Done)> {
    let have = vec![(0, 2), (5, 9)];
    let entry = |version: &str, targets: &[&str]| InstalledEntry {
        installed_at: "2026-11-23T20:00:00Z".into(),
        name: "packd-default".into(),
        size: 123_456,
        targets: targets.iter().map(|t| t.to_string()).collect(),
        version: version.into(),
    };
    let old_entry = |version: &str, targets: &[&str]| {
        json!({
            "name": "packd-default",
            "version": version,
            "size": 123_456,
            "installed_at": "2026-11-23T20:00:00Z",
            "targets": targets,
        })
    };
    let shipped = bundle_ref("packd-default", "1.0.0");
    let newer = bundle_ref("packd-default", "1.1.0");
    vec![
        (
            json!({"status": "ready", "transfer": "t-1", "have": ranges(&have)}),
            Done::Ready {
                transfer: "t-1".into(),
                have,
            },
        ),
        (
            json!({"status": "ready", "transfer": "t-2", "have": ranges(&[])}),
            Done::Ready {
                transfer: "t-2".into(),
                have: vec![],
            },
        ),
        (
            json!({"status": "installed", "bundle": newer, "previous": Value::Null}),
            Done::Installed {
                bundle: newer.clone(),
            },
        ),
        (
            json!({"status": "activated", "bundle": newer, "previous": label_to_ref("packd-default@1.0.0")}),
            Done::Activated {
                bundle: newer.clone(),
                previous: Some(shipped.clone()),
            },
        ),
        (
            json!({"status": "activated", "bundle": shipped, "previous": Value::Null}),
            Done::Activated {
                bundle: shipped.clone(),
                previous: None,
            },
        ),
        (
            json!({"status": "ok", "active": Some(label_to_ref("packd-default@1.1.0")),
                   "installed": [old_entry("1.0.0", &["cpu"]), old_entry("1.1.0", &["cpu", "dla0"])]}),
            Done::Listed {
                active: Some(newer.clone()),
                installed: vec![entry("1.0.0", &["cpu"]), entry("1.1.0", &["cpu", "dla0"])],
            },
        ),
        (
            json!({"status": "ok", "active": None::<&str>.map(label_to_ref), "installed": Vec::<Value>::new()}),
            Done::Listed {
                active: None,
                installed: vec![],
            },
        ),
        (json!({"status": "removed"}), Done::Removed),
        (
            json!({"status": "aborted", "transfer": "t-3"}),
            Done::Aborted {
                transfer: "t-3".into(),
            },
        ),
    ]
}

/// Each refusal as the old `FleetError` held it, beside the typed one.
fn refusals() -> Vec<(OldError, FleetError)> {
    let message = "the \"archive\" holds naïve/../bytes\n";
    let mut cases = vec![];
    for code in BundleErrorCode::ALL {
        cases.push((
            OldError {
                code: code.as_str(),
                message: message.into(),
                missing: None,
                check: None,
            },
            FleetError::new(code, message),
        ));
    }
    cases.push((
        OldError {
            code: "missing_chunks",
            message: "m".into(),
            missing: Some(vec![(2, 5), (7, 8)]),
            check: None,
        },
        FleetError {
            missing: Some(vec![(2, 5), (7, 8)]),
            ..FleetError::new(BundleErrorCode::MissingChunks, "m")
        },
    ));
    for check in [
        InvalidCheck::Archive,
        InvalidCheck::Manifest,
        InvalidCheck::FileHash,
        InvalidCheck::Content,
    ] {
        cases.push((
            OldError {
                code: "invalid_bundle",
                message: "bad".into(),
                missing: None,
                check: Some(check.as_str()),
            },
            FleetError::invalid_bundle(check, "bad"),
        ));
    }
    cases
}

/// Requests as they may come: with a string id, a numeric one, none, or not JSON at all.
const PAYLOADS: [&[u8]; 5] = [
    br#"{"id":"kiosk-1","transfer":"t"}"#,
    br#"{"id":42}"#,
    b"{}",
    b"not json",
    br#"{"id":"quote\"d"}"#,
];

#[test]
fn typed_replies_are_the_bytes_json_built() {
    for payload in PAYLOADS {
        for (old, new) in successes() {
            let expected = old_reply_body("orin-17", payload, Ok(old));
            let built = reply_body("orin-17", payload, Ok(new));
            assert_eq!(
                String::from_utf8_lossy(&built),
                String::from_utf8_lossy(&expected)
            );
        }
        for (old, new) in refusals() {
            let expected = old_reply_body("orin-17", payload, Err(old));
            let built = reply_body("orin-17", payload, Err(new));
            assert_eq!(
                String::from_utf8_lossy(&built),
                String::from_utf8_lossy(&expected)
            );
        }
    }
}

#[test]
fn typed_replies_read_back_as_they_were_built() {
    for (_, done) in successes() {
        let body = reply_body("d", br#"{"id":"x"}"#, Ok(done));
        let reply: packd_wire::BundleReply = serde_json::from_slice(&body).unwrap();
        assert_eq!(serde_json::to_vec(&reply).unwrap(), body);
    }
    for (_, refusal) in refusals() {
        let code = refusal.code;
        let body = reply_body("d", b"{}", Err(refusal));
        let reply: packd_wire::BundleReply = serde_json::from_slice(&body).unwrap();
        assert_eq!(reply.error_code(), Some(code));
        assert_eq!(serde_json::to_vec(&reply).unwrap(), body);
    }
}

/// What packctl and the tests send, typed, against the `json!` they sent before (through a
/// `Value`, as they send it: sorted keys).
/// A request body as packctl and the tests send it: through a `serde_json::Value`.
fn sent<T: serde::Serialize>(request: &T) -> Vec<u8> {
    let value = serde_json::to_value(request).unwrap();
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn typed_requests_are_the_bytes_json_built() {
    use packd_wire::bundle::{Abort, Begin, BundleName, Commit, NoArguments};
    let mut begin = Begin {
        transfer: "0123".into(),
        name: "packd-default".into(),
        version: "1.1.0".into(),
        size: 1000,
        sha256: "ab".repeat(32),
        chunk_size: 256,
        signature: None,
        key_id: None,
        allow_downgrade: false,
    };
    let old_begin = json!({
        "transfer": "0123", "name": "packd-default", "version": "1.1.0",
        "size": 1000, "sha256": "ab".repeat(32), "chunk_size": 256,
    });
    assert_eq!(sent(&begin), serde_json::to_vec(&old_begin).unwrap());
    let mut signed = old_begin.clone();
    signed["signature"] = json!("c2ln");
    signed["key_id"] = json!("k");
    begin.signature = Some("c2ln".into());
    begin.key_id = Some("k".into());
    assert_eq!(sent(&begin), serde_json::to_vec(&signed).unwrap());
    signed["allow_downgrade"] = json!(true);
    begin.allow_downgrade = true;
    assert_eq!(sent(&begin), serde_json::to_vec(&signed).unwrap());
    for activate in [true, false] {
        let commit = Commit {
            activate,
            transfer: "t".into(),
        };
        let old = json!({"transfer": "t", "activate": activate});
        assert_eq!(sent(&commit), serde_json::to_vec(&old).unwrap());
    }
    let abort = Abort {
        transfer: "t".into(),
    };
    assert_eq!(sent(&abort), br#"{"transfer":"t"}"#);
    let name = BundleName {
        name: "n".into(),
        version: "1".into(),
    };
    assert_eq!(sent(&name), br#"{"name":"n","version":"1"}"#);
    assert_eq!(sent(&NoArguments {}), b"{}");
}
