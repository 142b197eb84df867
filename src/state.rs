//! The appliance state document (retained on the `state` topic): online, degraded or offline,
//! with the active bundle and backends. One board, updated by whoever changes the state.

use std::sync::Mutex;

use packd_wire::state::{State, Status};

use crate::reply::BundleRef;

/// The current state, rendered to JSON on demand.
pub(crate) struct StateBoard {
    device: String,
    since: String,
    current: Mutex<Current>,
}

#[derive(Clone, Default)]
struct Current {
    bundle: Option<BundleRef>,
    backends: Vec<String>,
    /// Why the appliance is degraded; `None` when all is well.
    problem: Option<String>,
}

impl StateBoard {
    /// A board for `device`, started now.
    pub fn new(device: &str) -> StateBoard {
        StateBoard {
            device: device.to_string(),
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            current: Mutex::new(Current::default()),
        }
    }

    /// Records the model now serving (or none) and any problem worth `degraded`.
    pub fn set(&self, bundle: Option<BundleRef>, backends: Vec<String>, problem: Option<String>) {
        *self.lock() = Current {
            bundle,
            backends,
            problem,
        };
    }

    /// `online`, or `degraded` with the reason.
    pub(crate) fn render_current(&self) -> Vec<u8> {
        let current = self.lock().clone();
        let status = if current.problem.is_some() {
            Status::Degraded
        } else {
            Status::Online
        };
        self.render(status, &current)
    }

    /// The document the will and a clean shutdown publish.
    pub(crate) fn render_offline(&self) -> Vec<u8> {
        let current = self.lock().clone();
        self.render(
            Status::Offline,
            &Current {
                problem: None,
                ..current
            },
        )
    }

    fn render(&self, status: Status, current: &Current) -> Vec<u8> {
        serde_json::to_vec(&State {
            status,
            device: self.device.clone(),
            version: crate::VERSION.to_string(),
            bundle: current.bundle.clone(),
            backends: current.backends.clone(),
            since: self.since.clone(),
            reason: current.problem.clone(),
        })
        .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_carries_its_reason_and_offline_does_not() {
        let board = StateBoard::new("orin-17");
        board.set(None, vec![], Some("no bundle is active".into()));
        let degraded: serde_json::Value = serde_json::from_slice(&board.render_current()).unwrap();
        assert_eq!(degraded["status"], "degraded");
        assert_eq!(degraded["reason"], "no bundle is active");
        let offline: serde_json::Value = serde_json::from_slice(&board.render_offline()).unwrap();
        assert_eq!(offline["status"], "offline");
        assert!(offline.get("reason").is_none());
        board.set(
            Some(BundleRef {
                name: "b".into(),
                version: "1".into(),
            }),
            vec!["cpu".into()],
            None,
        );
        let online: serde_json::Value = serde_json::from_slice(&board.render_current()).unwrap();
        assert_eq!(online["status"], "online");
        assert_eq!(online["bundle"]["name"], "b");
        assert_eq!(online["backends"][0], "cpu");
    }
}
