//! Shared helpers for packd's integration tests.
//!
//! Declared once in `tests/tests.rs` (and by the soak and GPU test targets).
//!
//! * [`Broker`]: a private mosquitto (MQTT v5) instance on a free loopback
//!   port, killed when dropped.
//! * [`ensure_journald`]: makes sure a systemd-journald is listening on
//!   `/run/systemd/journal/socket` (starts one if needed; works without
//!   systemd as PID 1).
//! * [`journal_entries`]: bounded polling of `journalctl -o json` for entries
//!   carrying a given field value.
//! * [`wait_until`]: bounded polling of an arbitrary condition.
//!
//! Everything here uses bounded polling with a deadline, never a fixed sleep
//! as synchronisation.
//!
//! Dev-dependencies: `tempfile = "3"`, `serde_json = "1"`.

// Not every test binary uses every helper.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the polling helpers re-check their condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Deadline for a broker or journald to come up.
const STARTUP_DEADLINE: Duration = Duration::from_secs(15);

/// Polls `condition` every [`POLL_INTERVAL`] until it returns `true` (then
/// returns `true`) or until `deadline` has elapsed (then returns `false`).
/// The condition is always evaluated at least once, and once more right at the
/// deadline.
pub fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL.min(end - now));
    }
}

/// A string that is unique per call and per process, e.g. for brief ids,
/// client ids or topic suffixes: `PREFIX-<pid>-<nanos>-<counter>`.
/// Contains only `[A-Za-z0-9_-]` plus whatever `prefix` contains.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

/// True when running under CI (`CI` set to anything but empty/`0`/`false`).
/// Under CI, missing test prerequisites are failures, not skips.
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")),
        Err(_) => false,
    }
}

/// A currently free TCP port on 127.0.0.1 (bound once, then released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind an ephemeral port on 127.0.0.1")
}

/// True if something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

// ---------------------------------------------------------------------------
// Mosquitto
// ---------------------------------------------------------------------------

fn mosquitto_binary() -> PathBuf {
    // Debian installs it in /usr/sbin, which is not on every user's PATH.
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("mosquitto");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "mosquitto binary not found (looked in /usr/sbin, /usr/bin and PATH). \
         Install it with: apt-get install --no-install-recommends mosquitto mosquitto-clients"
    );
}

/// A private mosquitto broker listening on 127.0.0.1:`port`.
///
/// * Anonymous access, listener on loopback only, `persistence false` by
///   default, `persistence_location` set to a private temp dir (so
///   `Broker::start_with("persistence true")` just works and survives
///   [`Broker::restart`]).
/// * Config includes `user root` so that, when the tests run as root,
///   mosquitto does not drop privileges to the `mosquitto` user (which could
///   not write the root-owned 0700 temp dir). Harmless when not root.
/// * Logs everything (`log_type all`) to `<tempdir>/mosquitto.log`; see
///   [`Broker::log`]. The log tail is included in startup-failure panics.
/// * The child is killed (SIGKILL) and reaped on drop.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    tempdir: tempfile::TempDir,
    extra_config: String,
}

impl Broker {
    /// Starts a broker with the default configuration on a free port.
    pub fn start() -> Broker {
        Broker::start_with("")
    }

    /// Starts a broker whose config is the default one plus `extra_config`
    /// (mosquitto.conf lines, e.g. `"max_packet_size 1024"` or
    /// `"persistence true"`). A top-level option given in `extra_config`
    /// replaces the default line for the same option (`persistence`,
    /// `allow_anonymous`, `log_type`, ...); other lines are appended.
    pub fn start_with(extra_config: &str) -> Broker {
        let tempdir = tempfile::Builder::new()
            .prefix("packd-broker-")
            .tempdir()
            .expect("cannot create temp dir for mosquitto");
        let mut broker = Broker {
            port: 0,
            child: None,
            tempdir,
            extra_config: extra_config.to_string(),
        };
        // The port is chosen by binding :0 and releasing it, so another
        // process could grab it before mosquitto binds: retry a few times.
        let mut last_err = String::new();
        for _ in 0..5 {
            broker.port = free_port();
            match broker.spawn() {
                Ok(()) => return broker,
                Err(e) => last_err = e,
            }
        }
        panic!("mosquitto did not start after 5 attempts: {last_err}");
    }

    /// `mqtt://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The broker's private temp dir (config, log, persistence db).
    pub fn dir(&self) -> &Path {
        self.tempdir.path()
    }

    /// The mosquitto.conf currently in use.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("mosquitto.conf")
    }

    /// Everything mosquitto logged so far (all restarts; `log_type all`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir().join("mosquitto.log")).unwrap_or_default()
    }

    /// PID of the running mosquitto process, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the mosquitto child is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the broker gracefully (SIGTERM, so a persistent broker saves its
    /// db), waiting up to 10 s before falling back to SIGKILL. Connected
    /// clients see their connection dropped. No-op if already stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let exited = wait_until(Duration::from_secs(10), || {
                !matches!(child.try_wait(), Ok(None))
            });
            if !exited {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
    }

    /// Kills the broker hard (SIGKILL, no db save), like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port with the same config and
    /// persistence dir after [`Broker::stop`] / [`Broker::kill`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "broker is still running");
        // The port may transiently be unavailable; retry for a while.
        let mut last_err = String::new();
        let ok = wait_until(STARTUP_DEADLINE, || match self.spawn() {
            Ok(()) => true,
            Err(e) => {
                last_err = e;
                false
            }
        });
        assert!(
            ok,
            "mosquitto did not restart on port {}: {last_err}",
            self.port
        );
    }

    /// Graceful stop followed by a start on the same port, with the same
    /// config and persistence dir. Returns once the broker accepts
    /// connections again.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    fn write_config(&self) {
        let extra_keys: Vec<&str> = self
            .extra_config
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|k| !k.starts_with('#'))
            .collect();
        let dir = self.dir().display().to_string();
        let defaults = [
            ("per_listener_settings", "false".to_string()),
            ("allow_anonymous", "true".to_string()),
            ("user", "root".to_string()),
            ("persistence", "false".to_string()),
            ("persistence_location", format!("{dir}/")),
            ("log_dest", "stderr".to_string()),
            ("log_type", "all".to_string()),
            ("connection_messages", "true".to_string()),
            ("set_tcp_nodelay", "true".to_string()),
        ];
        let mut conf = String::from("# generated by tests/support/mod.rs\n");
        for (key, value) in defaults {
            if !extra_keys.contains(&key) {
                conf.push_str(&format!("{key} {value}\n"));
            }
        }
        conf.push_str(&format!("listener {} 127.0.0.1\n", self.port));
        conf.push_str(&self.extra_config);
        conf.push('\n');
        fs::write(self.config_path(), conf).expect("cannot write mosquitto.conf");
    }

    /// Spawns mosquitto and waits until it listens. On failure the child is
    /// reaped and an error with the log tail is returned.
    fn spawn(&mut self) -> Result<(), String> {
        self.write_config();
        let log_path = self.dir().join("mosquitto.log");
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let log_start = log.seek(SeekFrom::End(0)).unwrap_or(0);
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            // Own process group: a Ctrl-C in the terminal goes to cargo,
            // and Drop does the cleanup.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot spawn mosquitto: {e}"))?;

        let port = self.port;
        let mut exited = None;
        // "mosquitto version X running" is logged after all listeners are
        // bound; a connect then confirms it is really this broker listening.
        let ready = wait_until(STARTUP_DEADLINE, || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            log_since(&log_path, log_start).contains(" running") && port_open(port)
        });
        if ready && exited.is_none() {
            self.child = Some(child);
            return Ok(());
        }
        let _ = child.kill();
        let _ = child.wait();
        let tail = log_since(&log_path, log_start);
        Err(match exited {
            Some(status) => format!("mosquitto exited with {status} on port {port}; log:\n{tail}"),
            None => format!(
                "mosquitto not ready on port {port} within {STARTUP_DEADLINE:?}; log:\n{tail}"
            ),
        })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn log_since(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    let _ = File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(offset))?;
        f.read_to_string(&mut s)
    });
    s
}

// ---------------------------------------------------------------------------
// journald
// ---------------------------------------------------------------------------

/// journald's native-protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

const JOURNALD_BINARIES: [&str; 2] = [
    "/lib/systemd/systemd-journald",
    "/usr/lib/systemd/systemd-journald",
];

/// True if a journald answers on [`JOURNAL_SOCKET`]. Sends an empty datagram,
/// which journald silently discards; a stale socket file left by a dead
/// journald gives ECONNREFUSED, a missing one ENOENT.
pub fn journald_alive() -> bool {
    UnixDatagram::unbound()
        .and_then(|s| s.send_to(&[], JOURNAL_SOCKET))
        .is_ok()
}

/// Makes sure a systemd-journald is running, starting one in the background
/// if none answers on [`JOURNAL_SOCKET`] (needs root; storage is volatile
/// under /run/log/journal unless /var/log/journal exists). Idempotent: does
/// the work once per test process.
///
/// Returns whether journald is available. When it is not (binary missing,
/// not root, start failed): under CI (`CI` env var set) this panics with the
/// reason; otherwise it prints the reason to stderr and returns `false`, so a
/// test can skip itself:
///
/// ```ignore
/// if !support::ensure_journald() { return; }
/// ```
pub fn ensure_journald() -> bool {
    static AVAILABLE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    match AVAILABLE.get_or_init(start_journald) {
        Ok(()) => true,
        Err(reason) if in_ci() => panic!("journald is required under CI: {reason}"),
        Err(reason) => {
            eprintln!("SKIPPED (journald unavailable): {reason}");
            false
        }
    }
}

fn start_journald() -> Result<(), String> {
    if which("journalctl").is_none() {
        return Err(
            "journalctl not found; install it with: apt-get install --no-install-recommends systemd"
                .into(),
        );
    }
    if journald_alive() {
        return Ok(());
    }
    let Some(bin) = JOURNALD_BINARIES.iter().find(|p| Path::new(p).exists()) else {
        return Err(format!(
            "no journald answers on {JOURNAL_SOCKET} and systemd-journald is not installed \
             (looked for {JOURNALD_BINARIES:?}); install it with: \
             apt-get install --no-install-recommends systemd"
        ));
    };
    let log_path = std::env::temp_dir().join("packd-tests-journald.log");
    let log = File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    // No flags needed: journald creates /run/systemd/journal itself and, with
    // the default Storage=auto and no /var/log/journal, keeps the journal in
    // /run/log/journal. It keeps running after the test process exits (it
    // gets reparented), so later test binaries reuse it.
    let mut child = Command::new(bin)
        .env("SYSTEMD_LOG_TARGET", "console")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot spawn {bin}: {e}"))?;
    let mut exited = None;
    let up = wait_until(STARTUP_DEADLINE, || {
        if journald_alive() {
            return true;
        }
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            // Another process may have started journald concurrently.
            return journald_alive();
        }
        false
    });
    if up {
        return Ok(());
    }
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    Err(match exited {
        Some(status) => format!("{bin} exited with {status} (needs root); its output:\n{log}"),
        None => format!(
            "{bin} started but {JOURNAL_SOCKET} did not answer within {STARTUP_DEADLINE:?}; \
             its output:\n{log}"
        ),
    })
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `journalctl -o json --no-pager --all MATCHES...` once and parses the
/// output (one JSON object per line). Matches on different fields are ANDed,
/// matches on the same field ORed (journalctl semantics).
///
/// Values in the returned objects are strings, except: fields with
/// non-UTF-8/binary data are arrays of byte numbers, and fields that occur
/// more than once in an entry are arrays of values.
pub fn journal_query(matches: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let mut cmd = Command::new("journalctl");
    // --all: never elide long/unprintable field values.
    cmd.args(["-o", "json", "--no-pager", "--all", "-q"]);
    for (field, value) in matches {
        cmd.arg(format!("{field}={value}"));
    }
    let out = match cmd.stdin(Stdio::null()).output() {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("journalctl not found; apt-get install --no-install-recommends systemd")
        }
        Err(e) => panic!("cannot run journalctl: {e}"),
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .collect()
}

/// Polls `journalctl -o json --no-pager FIELD=VALUE` until at least one entry
/// matches or `deadline` elapses; returns the entries (oldest first, empty on
/// timeout). Entries are normally readable within a few milliseconds of the
/// write: journald writes into its mmapped file as soon as it has processed
/// the datagram; no flush/`--sync` needed.
pub fn journal_entries(field: &str, value: &str, deadline: Duration) -> Vec<serde_json::Value> {
    journal_entries_at_least(&[(field, value)], 1, deadline)
}

/// Like [`journal_entries`] with several ANDed matches, polling until at
/// least `min` entries match or `deadline` elapses. Returns whatever matched
/// last (possibly fewer than `min` on timeout).
pub fn journal_entries_at_least(
    matches: &[(&str, &str)],
    min: usize,
    deadline: Duration,
) -> Vec<serde_json::Value> {
    let mut entries = Vec::new();
    wait_until(deadline, || {
        entries = journal_query(matches);
        entries.len() >= min.max(1)
    });
    entries
}

/// Sends one entry to journald over the native protocol (one datagram with
/// `FIELD=value` lines; values must not contain newlines). For tests of the
/// test infrastructure, or to inject markers.
pub fn journal_send(fields: &[(&str, &str)]) -> std::io::Result<()> {
    let mut payload = Vec::new();
    for (k, v) in fields {
        assert!(
            !v.contains('\n'),
            "journal_send: value of {k} contains a newline"
        );
        payload.extend_from_slice(k.as_bytes());
        payload.push(b'=');
        payload.extend_from_slice(v.as_bytes());
        payload.push(b'\n');
    }
    UnixDatagram::unbound()?
        .send_to(&payload, JOURNAL_SOCKET)
        .map(|_| ())
}
