//! Helpers for the end-to-end tests in `tests/`: finding and running the workspace's real
//! binaries and observing servers the way a user would (HTTP, a plain SMTP client). Peers,
//! ports, waits, captured output and test certificates come from `test-support`, the one
//! harness.
//!
//! Each numbered item of issue 5 has its own test file in `tests/`, named for what it proves
//! (`load_with_faults.rs`, `server_bad_input.rs`, ...). Tests that need an installed peer are
//! `#[ignore = "needs <peer>: run by .ci/run"]`.
//!
//! # Layout
//!
//! - `bins.rs`: paths of the built `notify-mailer`, `mail-test-srv` and `demo` binaries,
//!   running them as a user would, and the input files and base flags of a `notify-mailer` run
//!   (`Mailing`, `FAST_RETRIES`).
//! - `srv.rs`: the `mail-test-srv` binary as a child process, and its HTTP API client.
//! - `tally.rs`: what was meant to arrive against what the server stored (lost, duplicated).
//! - `smtp.rs`: a strict, minimal SMTP client independent of lettre and the mailer.
//!
//! # Example
//!
//! ```no_run
//! let sink = test_support::SmtpSink::start(&["-Q", "MAIL"]).expect("smtp-sink installed");
//! let err = e2e::smtp::send_one(sink.addr(), "a@x.test", "b@x.test", "hi").unwrap_err();
//! assert!(err.to_string().contains("421"));
//! ```

pub mod bins;
pub mod smtp;
pub mod srv;
pub mod tally;

/// The README's Rust examples, compiled and run as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}
