//! packd: packaging design briefs in over MQTT, visual suggestions out.
//!
//! The path of a brief, in module order: [`transport`] (MQTT) → [`serve`] (queue, workers) →
//! [`brief`] (decoding) → [`features`] (model inputs) → [`backend`] (cpu / trt) →
//! [`recommend`] (post-processing) → [`reply`]. Model bundles live apart in [`bundle`], and
//! [`fleet`] applies the bundle commands to them; [`config`], [`state`] and [`telemetry`] sit
//! at the edge, and [`maintenance`] holds the on-device subcommands (self-test, engines).

pub mod backend;
pub mod brief;
pub use packd_bundle as bundle;
pub use packd_bundle::colour;
pub mod config;
pub mod daemon;
pub mod features;
pub mod fleet;
pub mod maintenance;
pub mod recommend;
pub use packd_wire::reply;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod transport;

/// The service version, as the state topic reports it.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
