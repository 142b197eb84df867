//! packd's integration tests, in one binary: each module below was its own `tests/*.rs` binary,
//! and linking tract, image and rumqttc into each of them was most of CI's time on two cores.
//!
//! Every test talks to real parts: a private mosquitto per test (`support::Broker`), the real
//! systemd-journald, the shipped ONNX bundle, really signed bundles (`fixtures::bundles`). The
//! packd binary the tests start is built with the `test-util` feature (its fault injection and
//! crash points); the soak and TensorRT tests are separate targets (`tests/soak.rs`,
//! `tests/trt_device.rs`) with their own required features.
// Tests read their own environment (CI, PATH); the ban on reading it outside config is packd's.
#![allow(clippy::disallowed_methods)]

mod fixtures;
mod support;

mod build_engines;
mod bundle;
mod config;
mod daemon;
mod echo;
mod fleet;
mod fuzz_regressions;
mod journal;
mod maintenance;
mod memory;
mod metrics;
mod overload;
mod packctl;
mod packctl_bundle;
mod packctl_delta;
mod packctl_rollout;
mod reliability;
mod serve;
mod systemd;
mod watchdog;
