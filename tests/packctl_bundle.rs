//! `packctl keygen` and `packctl bundle …`: the local round trip (build → sign → inspect) on the
//! shipped bundle, and the fleet side (push, list, activate, rollback, remove) against a real
//! mosquitto and real packd processes, with keys, archives and signatures all made by packctl.

use crate::fixtures;
use crate::fixtures::{shipped_archive_name, SHIPPED_VERSION};
use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use fixtures::bundles::{bundle_variant, installed_path, slim_variant};
use fixtures::{shipped_bundle, Appliance, Packd, PackdOptions, V5Client, PREFIX, REPLY_DEADLINE};
use packd::reply::BundleRef;
use packd_wire::bundle::BundleReply;
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{unique_id, Broker};

pub(crate) fn packctl(dir: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_packctl"))
        .current_dir(dir)
        .args(arguments)
        .output()
        .expect("run packctl")
}

async fn packctl_async(dir: PathBuf, arguments: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        packctl(&dir, &arguments)
    })
    .await
    .expect("packctl task")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

fn write_config(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let path = dir.join("packctl.toml");
    std::fs::write(
        &path,
        format!("[mqtt]\nurl = \"{url}\"\nprefix = \"{PREFIX}\"\n{extra}"),
    )
    .expect("write config");
    path
}

/// keygen + build + sign in `dir`; returns (archive, public key path).
fn signed_archive(dir: &Path) -> (PathBuf, PathBuf) {
    let output = packctl(dir, &["keygen", "--name", "fleet", "--dir", "keys"]);
    assert!(output.status.success(), "{}", describe(&output));
    let bundle = shipped_bundle();
    let output = packctl(
        dir,
        &["bundle", "build", bundle.to_str().expect("utf-8 path")],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let archive = dir.join(shipped_archive_name());
    let output = packctl(
        dir,
        &[
            "bundle",
            "sign",
            &shipped_archive_name(),
            "--key",
            "keys/fleet.key",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    (archive, dir.join("keys/fleet.pub"))
}

#[test]
fn keygen_build_sign_inspect_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = packctl(dir.path(), &["keygen", "--name", "fleet", "--dir", "keys"]);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    let public =
        packd::bundle::signature::read_public_key(&dir.path().join("keys/fleet.pub")).expect("pub");
    let key_id = packd::bundle::signature::key_id(&public);
    assert!(stdout.contains(&key_id), "{stdout}");
    assert!(stdout.contains("trusted_keys = [\""), "{stdout}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("keys/fleet.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second keygen under the same name must not overwrite the key.
    let output = packctl(dir.path(), &["keygen", "--name", "fleet", "--dir", "keys"]);
    assert!(!output.status.success(), "{}", describe(&output));

    let bundle = shipped_bundle();
    let bundle = bundle.to_str().expect("utf-8 path");
    let output = packctl(dir.path(), &["bundle", "build", bundle]);
    assert!(output.status.success(), "{}", describe(&output));
    let archive = dir.path().join(shipped_archive_name());
    let bytes = std::fs::read(&archive).expect("archive written to the cwd");
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let stdout = text(&output.stdout);
    assert!(stdout.contains(&sha256), "{stdout}");
    assert!(stdout.contains("packd-default") && stdout.contains(SHIPPED_VERSION));
    // Packing is deterministic.
    let output = packctl(
        dir.path(),
        &["bundle", "build", bundle, "--out", "again.tar.zst"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        std::fs::read(dir.path().join("again.tar.zst")).expect("again"),
        bytes
    );
    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "build",
            bundle,
            "--no-compress",
            "--out",
            "plain.tar",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));

    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "sign",
            &shipped_archive_name(),
            "--key",
            "keys/fleet.key",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let signature: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(format!("{}.sig", shipped_archive_name()))).expect("sig"),
    )
    .expect("sig is JSON");
    assert_eq!(signature["sha256"], sha256);
    assert_eq!(signature["key_id"], key_id);
    assert_eq!(
        (
            &signature["name"],
            &signature["version"],
            &signature["size"]
        ),
        (
            &Value::from("packd-default"),
            &Value::from(SHIPPED_VERSION),
            &Value::from(bytes.len())
        )
    );
    assert_eq!(signature["allow_downgrade"], false);
    // The signature covers the documented statement, byte for byte.
    let statement = fixtures::bundles::statement(
        "packd-default",
        SHIPPED_VERSION,
        bytes.len() as u64,
        &sha256,
    );
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature["signature"].as_str().expect("signature"))
        .expect("base64");
    public
        .verify_strict(
            statement.as_bytes(),
            &ed25519_dalek::Signature::from_slice(&raw).expect("64 bytes"),
        )
        .expect("the signature covers the documented statement");

    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "inspect",
            &shipped_archive_name(),
            "--trusted",
            "keys/fleet.pub",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    for expected in [
        "packd-default",
        SHIPPED_VERSION,
        "2026-11-25T00:00:00Z",
        &sha256,
        "palettes",
        "layout",
        "signature   valid",
    ] {
        assert!(stdout.contains(expected), "{expected} missing:\n{stdout}");
    }
    // The plain tar inspects too (unsigned: reported, not an error).
    let output = packctl(dir.path(), &["bundle", "inspect", "plain.tar"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(text(&output.stdout).contains("signature   none"));

    // Trusted keys from the config when --trusted is not given.
    let config = write_config(
        dir.path(),
        "mqtt://127.0.0.1:1",
        &format!(
            "[bundles]\ntrusted_keys = [\"{}\"]\n",
            dir.path().join("keys/fleet.pub").display()
        ),
    );
    let output = packctl(
        dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "bundle",
            "inspect",
            &shipped_archive_name(),
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert!(text(&output.stdout).contains("trusted by bundles.trusted_keys"));

    // Another key: the signature is not trusted.
    let output = packctl(dir.path(), &["keygen", "--name", "other", "--dir", "keys"]);
    assert!(output.status.success(), "{}", describe(&output));
    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "inspect",
            &shipped_archive_name(),
            "--trusted",
            "keys/other.pub",
        ],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("BAD"),
        "{}",
        describe(&output)
    );

    // A signature over other bytes.
    std::fs::copy(
        dir.path().join(format!("{}.sig", shipped_archive_name())),
        dir.path().join("plain.tar.sig"),
    )
    .expect("copy sig");
    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "inspect",
            "plain.tar",
            "--trusted",
            "keys/fleet.pub",
        ],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stdout).contains("not this archive"));

    // A signature file of the format before signed statements (over the bare digest).
    std::fs::write(
        dir.path().join("plain.tar.sig"),
        format!(r#"{{"sha256": "{sha256}", "signature": "AAAA", "key_id": "{key_id}"}}"#),
    )
    .expect("old sig");
    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "inspect",
            "plain.tar",
            "--trusted",
            "keys/fleet.pub",
        ],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("sign the archive again"),
        "{}",
        describe(&output)
    );

    // A corrupt archive.
    let mut corrupt = bytes.clone();
    corrupt.truncate(corrupt.len() / 2);
    std::fs::write(dir.path().join("corrupt.tar.zst"), corrupt).expect("write");
    let output = packctl(dir.path(), &["bundle", "inspect", "corrupt.tar.zst"]);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("corrupt.tar.zst"));
}

#[test]
fn build_refuses_a_directory_that_is_not_a_valid_bundle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("bundle");
    std::fs::create_dir(&copy).expect("mkdir");
    let output = Command::new("cp")
        .arg("-r")
        .arg(shipped_bundle().join("."))
        .arg(&copy)
        .output()
        .expect("cp");
    assert!(output.status.success());
    std::fs::write(copy.join("vocabulary.json"), b"{}").expect("tamper");
    let output = packctl(
        dir.path(),
        &["bundle", "build", "bundle", "--out", "x.tar.zst"],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("not a valid bundle") && stderr.contains("vocabulary.json"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.tar.zst").exists());
    // Nor may the archive land inside the directory it packs.
    let output = packctl(
        dir.path(),
        &[
            "bundle",
            "build",
            shipped_bundle().to_str().expect("utf-8"),
            "--out",
            shipped_bundle().join("x.tar.zst").to_str().expect("utf-8"),
        ],
    );
    assert!(!output.status.success(), "{}", describe(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_and_list_fail_cleanly_when_no_appliance_answers() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let (archive, _) = signed_archive(dir.path());
    let config = write_config(dir.path(), &broker.url(), "");
    let config = config.to_str().expect("utf-8").to_string();
    let archive = archive.to_str().expect("utf-8").to_string();
    let run = |arguments: &[&str]| {
        let mut all = vec!["--config".to_string(), config.clone()];
        all.extend(arguments.iter().map(|a| a.to_string()));
        packctl_async(dir.path().to_path_buf(), all)
    };
    let output = run(&[
        "bundle",
        "push",
        &archive,
        "--device",
        "nobody-home",
        "--timeout-s",
        "1",
    ])
    .await;
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("no reply") && stderr.contains("nobody-home"),
        "{stderr}"
    );
    let output = run(&[
        "bundle",
        "push",
        &archive,
        "--pool",
        "empty",
        "--timeout-s",
        "1",
    ])
    .await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("no reply"));
    let output = run(&[
        "bundle",
        "list",
        "--device",
        "nobody-home",
        "--timeout-s",
        "1",
    ])
    .await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("no reply"));

    // An unsigned archive is refused before anything is sent, unless --unsigned.
    std::fs::remove_file(format!("{archive}.sig")).expect("remove sig");
    let output = run(&["bundle", "push", &archive, "--device", "nobody-home"]).await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("--unsigned"));

    // Neither --device nor --pool: a usage error.
    let output = run(&["bundle", "list"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));

    // No broker at all.
    let output = packctl_async(
        dir.path().to_path_buf(),
        vec![
            "--config".into(),
            write_config(dir.path(), "mqtt://127.0.0.1:1", "")
                .to_str()
                .expect("utf-8")
                .into(),
            "bundle".into(),
            "list".into(),
            "--device".into(),
            "x".into(),
        ],
    )
    .await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(text(&output.stderr).contains("cannot connect"));
}

// ---------------------------------------------------------------------------------------------
// The fleet side against real packd processes: keys from `packctl keygen`, archives from
// `packctl bundle build`, signatures from `packctl bundle sign`.
// ---------------------------------------------------------------------------------------------

/// An operator's workspace: a key pair made by `packctl keygen`, and the folder packctl runs
/// in, where the archives it builds and signs land.
pub(crate) struct Operator {
    pub(crate) dir: tempfile::TempDir,
    /// The public key inline (base64), as `packctl keygen` prints it for `trusted_keys`.
    pub(crate) public: String,
    /// The public key file `packctl keygen` wrote.
    pub(crate) public_path: PathBuf,
}

impl Operator {
    pub(crate) fn new() -> Operator {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = packctl(dir.path(), &["keygen", "--name", "fleet", "--dir", "keys"]);
        assert!(output.status.success(), "{}", describe(&output));
        let stdout = text(&output.stdout);
        let public = stdout
            .lines()
            .find_map(|line| {
                line.strip_prefix("trusted_keys = [\"")?
                    .strip_suffix("\"]")
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("keygen printed no trusted_keys line:\n{stdout}"));
        let public_path = dir.path().join("keys/fleet.pub");
        assert!(public_path.is_file(), "{stdout}");
        Operator {
            dir,
            public,
            public_path,
        }
    }

    /// `packctl bundle build` of the shipped bundle as `version` (rehashed), then `packctl
    /// bundle sign` with the operator's key when `signed`; returns the archive's path.
    fn archive(&self, version: &str, signed: bool) -> PathBuf {
        self.archive_of(bundle_variant(version, |_| {}, true), version, signed)
    }

    /// [`Operator::archive`] of the shipped bundle without its 15 MB text encoder and its 3.8 MB
    /// of preview faces (212 files, each synced at commit): for tests of the transfer itself,
    /// whose debug-build commit of the whole bundle under load came close to packctl's 10 s
    /// reply timeout.
    pub(crate) fn slim_archive(&self, version: &str, signed: bool) -> PathBuf {
        self.archive_of(slim_variant(version), version, signed)
    }

    pub(crate) fn archive_of(
        &self,
        variant: tempfile::TempDir,
        version: &str,
        signed: bool,
    ) -> PathBuf {
        let name = format!("packd-default-{version}.bundle.tar.zst");
        let output = packctl(
            self.dir.path(),
            &[
                "bundle",
                "build",
                variant.path().to_str().expect("utf-8 path"),
                "--out",
                &name,
            ],
        );
        assert!(output.status.success(), "{}", describe(&output));
        if signed {
            let output = packctl(
                self.dir.path(),
                &["bundle", "sign", &name, "--key", "keys/fleet.key"],
            );
            assert!(output.status.success(), "{}", describe(&output));
        }
        self.dir.path().join(name)
    }

    /// packctl's command line for `broker`: `--config` with nothing but `[mqtt] url`, then
    /// `arguments`.
    pub(crate) fn command_line(&self, broker: &Broker, arguments: &[&str]) -> Vec<String> {
        let config = self.dir.path().join("packctl.toml");
        std::fs::write(&config, format!("[mqtt]\nurl = \"{}\"\n", broker.url()))
            .expect("write config");
        let mut all = vec![
            "--config".to_string(),
            config.to_str().expect("utf-8").to_string(),
        ];
        all.extend(arguments.iter().map(|a| a.to_string()));
        all
    }

    /// Runs packctl with `arguments` against `broker` (the future owns what it needs).
    pub(crate) fn run(
        &self,
        broker: &Broker,
        arguments: &[&str],
    ) -> impl std::future::Future<Output = Output> + Send + 'static {
        packctl_async(
            self.dir.path().to_path_buf(),
            self.command_line(broker, arguments),
        )
    }
}

/// packd options trusting `key` (inline base64 or the path of a .pub file).
pub(crate) fn trusting(key: &str) -> PackdOptions {
    PackdOptions {
        env: vec![("PACKD_BUNDLES__TRUSTED_KEYS".into(), key.into())],
        ..PackdOptions::default()
    }
}

/// The bundle version a real brief is answered with.
pub(crate) async fn serving(client: &mut V5Client, packd: &Packd) -> String {
    let reply = client.ask(packd, r#"{"product":"tea"}"#).await;
    reply["bundle"]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("no bundle version in {reply}"))
        .to_string()
}

/// The table row packctl printed for `device`.
fn row<'a>(stdout: &'a str, device: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(device))
        .unwrap_or_else(|| panic!("no row for {device}:\n{stdout}"))
}

/// The overall throughput from push's summary line (`…: 12.34 MB/s (chunk sending …`).
fn throughput(stderr: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("sent ") && line.contains(" MB/s"))
        .unwrap_or_else(|| panic!("no throughput line:\n{stderr}"));
    let before = &line[..line.find(" MB/s").expect("MB/s")];
    let number = before.split_whitespace().last().expect("a number");
    number
        .parse()
        .unwrap_or_else(|error| panic!("{number:?} in {line:?}: {error}"))
}

/// Versions installed on the appliance, from `bundle list --json` read as the API's `list`
/// reply, sorted, and the active one.
fn listed_versions(reply: &Value) -> (Vec<String>, Option<BundleRef>) {
    let Ok(BundleReply::List(list)) = serde_json::from_value(reply.clone()) else {
        panic!("not a list reply: {reply}");
    };
    let mut versions: Vec<String> = list
        .installed
        .into_iter()
        .map(|bundle| {
            assert_eq!(bundle.name, "packd-default", "{reply}");
            bundle.version
        })
        .collect();
    versions.sort();
    (versions, list.active)
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", describe(output)))
}

fn bundle(version: &str) -> Value {
    serde_json::json!({"name": "packd-default", "version": version})
}

fn bundle_ref(version: &str) -> BundleRef {
    BundleRef {
        name: "packd-default".into(),
        version: version.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_list_rollback_remove_and_activate_on_a_real_packd() {
    let operator = Operator::new();
    let archive = operator.archive("1.1.0", true);
    let size = std::fs::metadata(&archive).expect("archive").len();
    let broker = Broker::start();
    let packd = Packd::start(&broker, trusting(&operator.public));
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&packd, "online").await;
    assert_eq!(serving(&mut client, &packd).await, SHIPPED_VERSION);
    let device = packd.device.clone();
    let archive = archive.to_str().expect("utf-8");

    let output = operator
        .run(
            &broker,
            &[
                "bundle",
                "push",
                archive,
                "--device",
                &device,
                "--chunk-size",
                "65536",
            ],
        )
        .await;
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    let pushed = row(&stdout, &device);
    assert!(
        pushed.contains("activated")
            && pushed.contains(&format!(
                "packd-default 1.1.0 (was packd-default {SHIPPED_VERSION})"
            )),
        "{stdout}"
    );
    let stderr = text(&output.stderr);
    // Nothing was held before: every byte went once.
    assert!(stderr.contains(&format!("sent {size} bytes")), "{stderr}");
    let rate = throughput(&stderr);
    assert!(rate.is_finite() && rate > 0.0, "{rate} MB/s:\n{stderr}");
    assert_eq!(serving(&mut client, &packd).await, "1.1.0");

    let list = ["bundle", "list", "--device", &device];
    let output = operator
        .run(&broker, &[&list[..], &["--json"]].concat())
        .await;
    assert!(output.status.success(), "{}", describe(&output));
    let listed = json_of(&output);
    assert_eq!(listed["device"], device.as_str(), "{listed}");
    let (versions, active) = listed_versions(&listed);
    assert_eq!(versions, [SHIPPED_VERSION, "1.1.0"], "{listed}");
    assert_eq!(active, Some(bundle_ref("1.1.0")));
    let output = operator.run(&broker, &list).await;
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("{device}: active packd-default 1.1.0")),
        "{stdout}"
    );
    let starred: Vec<&str> = stdout.lines().filter(|l| l.starts_with('*')).collect();
    assert!(
        starred.len() == 1 && starred[0].contains("1.1.0") && starred[0].contains("cpu"),
        "{stdout}"
    );

    let output = operator
        .run(&broker, &["bundle", "rollback", "--device", &device])
        .await;
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        row(&stdout, &device).contains("activated")
            && stdout.contains(&format!(
                "packd-default {SHIPPED_VERSION} (was packd-default 1.1.0)"
            )),
        "{stdout}"
    );
    assert_eq!(serving(&mut client, &packd).await, SHIPPED_VERSION);

    // The active bundle cannot be removed; the other one can.
    let remove = |version: &'static str| {
        operator.run(
            &broker,
            &[
                "bundle",
                "remove",
                "packd-default",
                version,
                "--device",
                &device,
            ],
        )
    };
    let output = remove(SHIPPED_VERSION).await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("bad_request"),
        "{}",
        describe(&output)
    );
    let output = remove("1.1.0").await;
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        row(&text(&output.stdout), &device).contains("removed"),
        "{}",
        describe(&output)
    );
    assert!(!installed_path(&packd, "packd-default", "1.1.0").exists());

    let activate = |version: &'static str| {
        operator.run(
            &broker,
            &[
                "bundle",
                "activate",
                "packd-default",
                version,
                "--device",
                &device,
            ],
        )
    };
    let output = activate("1.1.0").await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        row(&text(&output.stdout), &device).contains("bad_request"),
        "{}",
        describe(&output)
    );
    assert_eq!(serving(&mut client, &packd).await, SHIPPED_VERSION);
    let output = operator
        .run(&broker, &[&list[..], &["--json"]].concat())
        .await;
    assert!(output.status.success(), "{}", describe(&output));
    let (versions, active) = listed_versions(&json_of(&output));
    assert_eq!(versions, [SHIPPED_VERSION]);
    assert_eq!(active, Some(bundle_ref(SHIPPED_VERSION)));

    // Installed without activating, then activated by name.
    let archive = operator.archive("1.2.0", true);
    let output = operator
        .run(
            &broker,
            &[
                "bundle",
                "push",
                archive.to_str().expect("utf-8"),
                "--device",
                &device,
                "--no-activate",
                "--json",
            ],
        )
        .await;
    assert!(output.status.success(), "{}", describe(&output));
    let reply = json_of(&output);
    assert_eq!(reply["status"], "installed", "{reply}");
    assert_eq!(reply["bundle"], bundle("1.2.0"), "{reply}");
    assert_eq!(serving(&mut client, &packd).await, SHIPPED_VERSION);
    let output = activate("1.2.0").await;
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        row(&text(&output.stdout), &device).contains("activated"),
        "{}",
        describe(&output)
    );
    assert_eq!(serving(&mut client, &packd).await, "1.2.0");
}

/// More chunks than packd's command queue holds (1 255 chunks of 16 KiB against 256): the broker
/// delivers up to packd's Receive Maximum at once, more than the fleet thread has taken, and
/// every one must still reach it. Commands that found the queue full used to stay
/// unacknowledged, and a broker redelivers those only on a reconnection: the push stalled with
/// no reply to `commit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_of_more_chunks_than_the_command_queue_finishes() {
    let operator = Operator::new();
    let archive = operator.archive("1.3.0", true);
    let chunks = std::fs::metadata(&archive)
        .expect("archive")
        .len()
        .div_ceil(16 * 1024);
    assert!(chunks > 1000, "{chunks} chunks");
    let broker = Broker::start();
    let packd = Packd::start(&broker, trusting(&operator.public));
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&packd, "online").await;
    let output = operator
        .run(
            &broker,
            &[
                "bundle",
                "push",
                archive.to_str().expect("utf-8"),
                "--device",
                &packd.device,
                "--chunk-size",
                "16384",
                "--timeout-s",
                "60",
            ],
        )
        .await;
    assert!(
        output.status.success(),
        "{}\npackd:\n{}",
        describe(&output),
        packd.log()
    );
    assert_eq!(serving(&mut client, &packd).await, "1.3.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_push_reaches_every_packd_of_the_pool_and_reports_each() {
    let operator = Operator::new();
    let archive = operator.archive("1.5.0", true);
    let archive = archive.to_str().expect("utf-8");
    let broker = Broker::start();
    let pool = unique_id("store");
    // This time the appliances trust the key by the path of the .pub file keygen wrote.
    let options = PackdOptions {
        pools: vec![pool.clone()],
        ..trusting(operator.public_path.to_str().expect("utf-8"))
    };
    let first = Packd::start(&broker, options.clone());
    let second = Packd::start(&broker, options);
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&first, "online").await;
    client.wait_for_state(&second, "online").await;

    let push = |expect: &'static str, timeout: &'static str| {
        operator.run(
            &broker,
            &[
                "bundle",
                "push",
                archive,
                "--pool",
                &pool,
                "--expect",
                expect,
                "--chunk-size",
                "65536",
                "--timeout-s",
                timeout,
            ],
        )
    };
    let output = push("2", "30").await;
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("DEVICE"), "{stdout}");
    for packd in [&first, &second] {
        let pushed = row(&stdout, &packd.device);
        assert!(
            pushed.contains("activated") && pushed.contains("packd-default 1.5.0"),
            "{stdout}"
        );
        assert_eq!(serving(&mut client, packd).await, "1.5.0");
    }

    let output = operator
        .run(
            &broker,
            &["bundle", "list", "--pool", &pool, "--expect", "2", "--json"],
        )
        .await;
    assert!(output.status.success(), "{}", describe(&output));
    let replies = json_of(&output);
    let mut devices: Vec<&str> = replies
        .as_array()
        .unwrap_or_else(|| panic!("an array per pool: {replies}"))
        .iter()
        .map(|reply| {
            assert_eq!(reply["active"], bundle("1.5.0"), "{reply}");
            reply["device"].as_str().expect("device")
        })
        .collect();
    devices.sort_unstable();
    let mut expected = [first.device.as_str(), second.device.as_str()];
    expected.sort_unstable();
    assert_eq!(devices, expected);

    // Waiting for three appliances when two answer is a failure, reported as such.
    let output = push("3", "2").await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("expected 3 appliances"),
        "{}",
        describe(&output)
    );
}

/// Chunks packd holds of a transfer: one 8-byte record each in `{store}/.transfers/{id}/held`.
fn held_chunks(packd: &Packd, transfer: &str) -> u64 {
    let held = packd.store().join(".transfers").join(transfer).join("held");
    std::fs::metadata(held).map(|m| m.len() / 8).unwrap_or(0)
}

/// `begin` requests packctl published to `device`, as the broker logged them (all restarts).
pub(crate) fn begins_received(broker: &Broker, device: &str) -> usize {
    let topic = format!("'{PREFIX}/devices/{device}/bundles/begin'");
    broker
        .log()
        .lines()
        .filter(|line| line.contains("Received PUBLISH from packctl-") && line.contains(&topic))
        .count()
}

/// What happens to packd while the broker restarts under a push.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DuringRestart {
    /// Paused (SIGSTOP) from just before the restart until packctl, reconnected, has sent its
    /// `begin` again. The chunks and the commit packd had already received (its receive window
    /// holds a whole small archive) are applied when it continues, so the first transfer may
    /// finish before packctl's `begin` reaches it: this proves the push finishes, not that it
    /// resumes.
    Paused,
    /// Killed (SIGKILL) just before the restart and started again after it, as after a power
    /// cut: only the chunks on disk survive, so packctl must resume from them.
    Killed,
}

/// Pushes a signed 1.6.0 to a real packd with 16 KiB chunks and restarts the broker once packd
/// has stored a few of them, with packd paused or killed meanwhile (see [`DuringRestart`]).
/// Returns the bytes packctl reports sent, the archive's size, and, when packd answered the
/// resumed `begin` with chunks it held, how many.
async fn push_across_a_broker_restart(
    broker_config: &str,
    timeout_s: &str,
    during_restart: DuringRestart,
) -> (u64, u64, Option<u64>) {
    let operator = Operator::new();
    let archive = operator.slim_archive("1.6.0", true);
    let bytes = std::fs::read(&archive).expect("archive");
    let size = bytes.len() as u64;
    let transfer = hex::encode(Sha256::digest(&bytes))[..32].to_string();
    let chunk_size = 16 * 1024u64;
    let chunk_count = size.div_ceil(chunk_size);
    assert!(chunk_count >= 16, "{chunk_count} chunks");
    let mut broker = Broker::start_with(broker_config);
    let packd = Packd::start(&broker, trusting(&operator.public));
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&packd, "online").await;
    drop(client);

    let arguments = operator.command_line(
        &broker,
        &[
            "bundle",
            "push",
            archive.to_str().expect("utf-8"),
            "--device",
            &packd.device,
            "--chunk-size",
            &chunk_size.to_string(),
            "--timeout-s",
            timeout_s,
        ],
    );
    let push = tokio::spawn(packctl_async(operator.dir.path().to_path_buf(), arguments));
    let (broker, packd, held_at_restart) = tokio::task::spawn_blocking(move || {
        let mut packd = packd;
        let started = support::wait_until(REPLY_DEADLINE, || held_chunks(&packd, &transfer) >= 2);
        assert!(started, "packd never stored a chunk of transfer {transfer}");
        match during_restart {
            DuringRestart::Paused => {
                packd.signal("STOP");
                let held = held_chunks(&packd, &transfer);
                broker.restart();
                let resumed = support::wait_until(REPLY_DEADLINE, || {
                    begins_received(&broker, &packd.device) >= 2
                });
                packd.signal("CONT");
                assert!(resumed, "packctl never sent begin again after the restart");
                (broker, packd, held)
            }
            DuringRestart::Killed => {
                packd.signal("KILL");
                packd.wait_exit(REPLY_DEADLINE).expect("killed");
                let held = held_chunks(&packd, &transfer);
                broker.restart();
                packd.spawn();
                (broker, packd, held)
            }
        }
    })
    .await
    .expect("restart task");
    assert!(
        (2..chunk_count).contains(&held_at_restart),
        "{held_at_restart} of {chunk_count} chunks held at the restart"
    );

    let output = push.await.expect("push task");
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("reconnecting to resume"), "{stderr}");
    let stdout = text(&output.stdout);
    assert!(
        row(&stdout, &packd.device).contains("activated") && stdout.contains("packd-default 1.6.0"),
        "{stdout}"
    );
    let mut client = V5Client::connect(&broker).await;
    assert_eq!(serving(&mut client, &packd).await, "1.6.0");
    let transfers = std::fs::read_dir(packd.store().join(".transfers"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(transfers, 0, "the finished transfer is not left behind");
    let sent = stderr
        .lines()
        .find_map(|line| line.strip_prefix("sent ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no bytes-sent line:\n{stderr}"));
    // What packd held when packctl's `begin` reached it again after the reconnection.
    let prefix = format!("{} already holds ", packd.device);
    let resumed_with = stderr
        .split_once("reconnecting to resume")
        .and_then(|(_, after)| {
            after
                .lines()
                .find_map(|line| line.strip_prefix(&prefix)?.split(' ').next()?.parse().ok())
        });
    // A paused packd still applies the chunks it had already received, which may be all of them
    // (see `DuringRestart::Paused`); only after a power cut must it resume with fewer.
    let must_resume = during_restart == DuringRestart::Killed;
    if let Some(resumed_with) = resumed_with {
        // The chunks on disk at the restart survive it, and packctl sends only the rest.
        assert!(
            resumed_with >= held_at_restart && (resumed_with < chunk_count || !must_resume),
            "resumed holding {resumed_with} of {chunk_count} chunks, {held_at_restart} held at \
             the restart:\n{stderr}"
        );
    }
    (sent, size, resumed_with)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_finishes_across_a_persistent_broker_restart_mid_transfer() {
    // packd's session survives the restart: the chunks queued for it, and the begin packctl sends
    // again while packd is away, reach it when it reconnects.
    let (sent, size, _) =
        push_across_a_broker_restart("persistence true", "60", DuringRestart::Paused).await;
    assert!(sent >= size, "{sent} bytes sent of {size}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_finishes_across_a_broker_restart_that_loses_the_sessions() {
    let (sent, size, _) = push_across_a_broker_restart("", "10", DuringRestart::Paused).await;
    assert!(sent >= size, "{sent} bytes sent of {size}");
}

/// packd loses power while the broker restarts: packctl reconnects, packd (started again)
/// answers `begin` with the chunks it had stored, and packctl sends only the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_resumes_from_the_chunks_packd_stored_across_a_broker_restart_and_a_power_cut() {
    let (sent, size, resumed_with) =
        push_across_a_broker_restart("", "10", DuringRestart::Killed).await;
    // The helper checked that packd resumed with at least the chunks it held at the restart
    // and fewer than all, so packctl sent only what was missing; here it must have resumed.
    assert!(
        resumed_with.is_some(),
        "packctl reported no chunks held when it resumed, so it re-sent the whole archive"
    );
    assert!(sent >= size, "{sent} bytes sent of {size}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unsigned_push_is_refused_with_bad_signature() {
    let operator = Operator::new();
    let archive = operator.archive("3.0.0", false);
    assert!(!PathBuf::from(format!("{}.sig", archive.display())).exists());
    let broker = Broker::start();
    let packd = Packd::start(&broker, trusting(&operator.public));
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&packd, "online").await;

    let output = operator
        .run(
            &broker,
            &[
                "bundle",
                "push",
                archive.to_str().expect("utf-8"),
                "--device",
                &packd.device,
                "--unsigned",
            ],
        )
        .await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        row(&text(&output.stdout), &packd.device).contains("bad_signature"),
        "{}",
        describe(&output)
    );
    assert_eq!(serving(&mut client, &packd).await, SHIPPED_VERSION);
    let output = operator
        .run(
            &broker,
            &["bundle", "list", "--device", &packd.device, "--json"],
        )
        .await;
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(listed_versions(&json_of(&output)).0, [SHIPPED_VERSION]);
    assert!(
        !installed_path(&packd, "packd-default", "3.0.0").exists(),
        "nothing of the refused bundle is installed"
    );
}

/// Finding 5 of issue 13: `packctl bundle abort` gives a transfer's slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_discards_a_transfer_with_packctl() {
    let operator = Operator::new();
    let broker = Broker::start();
    let mut options = trusting(&operator.public);
    options
        .env
        .push(("PACKD_BUNDLES__ALLOW_UNSIGNED".into(), "true".into()));
    let packd = Packd::start(&broker, options);
    let mut client = V5Client::connect(&broker).await;
    client.wait_for_state(&packd, "online").await;
    let archive = fixtures::bundles::pack(bundle_variant("1.6.0", |_| {}, true).path());
    let plan = fixtures::bundles::Push::default();
    let begin = fixtures::bundles::begin_payload(&archive, &plan);
    let ready = fixtures::bundles::command(&mut client, &packd, "begin", begin).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let staging = packd.store().join(".transfers").join(&plan.transfer);
    assert!(staging.is_dir());

    let abort = ["bundle", "abort", &plan.transfer, "--device", &packd.device];
    let output = operator
        .run(&broker, &[&abort[..], &["--json"]].concat())
        .await;
    assert!(output.status.success(), "{}", describe(&output));
    let reply = json_of(&output);
    assert_eq!(
        (&reply["status"], &reply["transfer"]),
        (
            &Value::from("aborted"),
            &Value::from(plan.transfer.as_str())
        ),
        "{reply}"
    );
    assert!(!staging.exists());
    let output = operator.run(&broker, &abort).await;
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        row(&text(&output.stdout), &packd.device).contains("bad_request"),
        "{}",
        describe(&output)
    );
}
