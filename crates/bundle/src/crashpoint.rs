//! Crash points for the install path's crash-safety test. Built only with the `test-util`
//! feature, which no shipped build enables; without it [`arm`] and `step` are empty and the
//! variable's name is not in the binary, so no environment line can kill an appliance.
//!
//! With `CRASH_PACKD_AT_STEP=N` in the environment (deliberately not a `PACKD_*` name: those are
//! configuration keys), the N-th durable step of an install (a file written, an fsync, a rename,
//! a pointer switch) kills the process with SIGKILL, exactly as a power cut would stop it there.

#[cfg(feature = "test-util")]
mod armed {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::OnceLock;

    /// Environment variable naming the step to die at (1-based).
    pub(crate) const CRASH_AT_ENV: &str = "CRASH_PACKD_AT_STEP";

    static STEPS: AtomicU64 = AtomicU64::new(0);
    static ARMED: AtomicBool = AtomicBool::new(false);

    fn target() -> Option<u64> {
        static TARGET: OnceLock<Option<u64>> = OnceLock::new();
        *TARGET.get_or_init(|| {
            // The one place outside config that reads the environment: a test hook, not a setting.
            #[allow(clippy::disallowed_methods)]
            let value = std::env::var(CRASH_AT_ENV);
            value.ok().and_then(|value| value.parse().ok())
        })
    }

    /// Starts counting steps.
    pub fn arm() {
        if target().is_some() {
            ARMED.store(true, Ordering::SeqCst);
        }
    }

    /// Marks one durable step; dies here if this is the step the environment names.
    pub(crate) fn step(what: &str) {
        let Some(target) = target() else { return };
        if !ARMED.load(Ordering::SeqCst) {
            return;
        }
        let reached = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
        if reached == target {
            eprintln!("crash point {reached} reached ({what}): SIGKILL");
            // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

#[cfg(feature = "test-util")]
pub use armed::arm;
#[cfg(feature = "test-util")]
pub(crate) use armed::step;

/// Starts counting steps: called where an install begins, so boot-time writes (seeding, the
/// boot fallback) do not count. Empty without `test-util`.
#[cfg(not(feature = "test-util"))]
#[inline(always)]
pub fn arm() {}

/// Marks one durable step. Empty without `test-util`.
#[cfg(not(feature = "test-util"))]
#[inline(always)]
pub(crate) fn step(_what: &str) {}
