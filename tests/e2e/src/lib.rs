//! Helpers for the end-to-end tests in `tests/`: finding and running the workspace's real
//! binaries, and starting the third-party peers (rsyslog, smtp-sink, ...) on loopback.
//!
//! # Layout
//!
//! - `bins.rs`: paths of the built `notify-mailer`, `mail-test-srv` and `demo` binaries, and
//!   running them as a user would.
//! - `peers.rs`: starting and stopping third-party peers for the peer suite.

pub mod bins;
pub mod peers;
