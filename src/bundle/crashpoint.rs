//! Crash points for the install path's crash-safety test: with `CRASH_PACKD_AT_STEP=N` in the
//! environment (deliberately not a `PACKD_*` name: those are configuration keys), the N-th durable step of an install (a file written, an fsync, a rename, a
//! pointer switch) kills the process with SIGKILL, exactly as a power cut would stop it there.
//! Without the variable each call is one relaxed atomic load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Environment variable naming the step to die at (1-based).
pub const CRASH_AT_ENV: &str = "CRASH_PACKD_AT_STEP";

static STEPS: AtomicU64 = AtomicU64::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);

fn target() -> Option<u64> {
    static TARGET: OnceLock<Option<u64>> = OnceLock::new();
    *TARGET.get_or_init(|| {
        std::env::var(CRASH_AT_ENV)
            .ok()
            .and_then(|value| value.parse().ok())
    })
}

/// Starts counting steps: called where an install begins, so boot-time writes (seeding, the
/// boot fallback) do not count.
pub fn arm() {
    if target().is_some() {
        ARMED.store(true, Ordering::SeqCst);
    }
}

/// Marks one durable step; dies here if this is the step the environment names.
pub fn step(what: &str) {
    let Some(target) = target() else { return };
    if !ARMED.load(Ordering::SeqCst) {
        return;
    }
    let reached = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
    if reached == target {
        eprintln!("crash point {reached} reached ({what}): SIGKILL");
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
