//! The systemd protocol as `Type=notify` with `WatchdogSec=` speaks it: READY once serving,
//! WATCHDOG while healthy, STOPPING on SIGTERM. A datagram socket stands where systemd's would.

use crate::fixtures;
use crate::support;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use fixtures::*;
use support::Broker;

/// Reads notifications until one contains `wanted` or the deadline passes.
fn wait_for(socket: &UnixDatagram, wanted: &str, deadline: Duration) -> Vec<String> {
    let end = Instant::now() + deadline;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < end {
        socket
            .set_read_timeout(Some(
                end.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .unwrap();
        match socket.recv(&mut buffer) {
            Ok(length) => {
                let message = String::from_utf8_lossy(&buffer[..length]).into_owned();
                let found = message.lines().any(|line| line == wanted);
                seen.push(message);
                if found {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no {wanted} within {deadline:?}; got {seen:?}");
}

#[test]
fn packd_tells_systemd_ready_watchdog_and_stopping() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let options = PackdOptions {
        env: vec![
            ("NOTIFY_SOCKET".into(), socket_path.display().to_string()),
            ("WATCHDOG_USEC".into(), "200000".into()),
        ],
        ..PackdOptions::default()
    };
    let mut packd = Packd::start(&broker, options);
    wait_for(&socket, "READY=1", REPLY_DEADLINE);
    // Fed at half the period while no worker is stuck: two pets within a few periods.
    wait_for(&socket, "WATCHDOG=1", Duration::from_secs(5));
    wait_for(&socket, "WATCHDOG=1", Duration::from_secs(5));
    packd.signal("TERM");
    wait_for(&socket, "STOPPING=1", REPLY_DEADLINE);
    let status = packd.wait_exit(REPLY_DEADLINE).expect("exits");
    assert_eq!(status.code(), Some(0));
}

/// Issue 13, finding 7: the unit lacked `UMask`, `ProtectProc`, `RemoveIPC`, an IP allow list
/// and a narrower `SystemCallFilter`, and `MemoryDenyWriteExecute=no` had no stated reason. The
/// directives are checked here, and the exposure score of each shipped unit (and of the
/// documented drop-ins) against its limit by the same script CI runs.
#[test]
fn unit_hardening_is_in_place_and_its_exposure_does_not_rise() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("systemd/packd.service")).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for wanted in [
        "UMask=0077",
        "ProtectProc=invisible",
        "RemoveIPC=yes",
        "IPAddressDeny=any",
        "IPAddressAllow=localhost",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
    ] {
        assert!(lines.contains(&wanted), "packd.service lacks {wanted}");
    }
    let write_execute = lines
        .iter()
        .position(|line| line.starts_with("MemoryDenyWriteExecute="))
        .expect("MemoryDenyWriteExecute is set");
    assert!(
        lines[write_execute] == "MemoryDenyWriteExecute=yes"
            || lines[write_execute - 1].starts_with('#'),
        "MemoryDenyWriteExecute=no needs its reason in a comment above it"
    );

    let output = std::process::Command::new("bash")
        .arg(root.join(".ci/unit-security.sh"))
        .output()
        .expect("bash runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("packd.service exposure"), "{report}");
}
