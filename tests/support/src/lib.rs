//! The one test world of this workspace: the only place that starts real peers and waits
//! for conditions. Every peer is a value that starts on loopback or a private socket, in a
//! temporary directory, with its shipped defaults, and stops when dropped: no process
//! outlives its test. A peer that cannot start is an `io::Error` naming what is missing,
//! never a silent skip; tests that need one are `#[ignore = "needs <peer>: run by .ci/run"]`.
//!
//! # Layout
//!
//! Utilities:
//! - `wait.rs`: [`wait_until`], [`wait_for`], [`wait_for_matching`], [`wait_until_async`],
//!   [`within`].
//! - `ports.rs`: [`free_port`], [`unused_port`], [`with_free_ports`], [`accepts`].
//! - `process.rs`: [`Held`] (a child killed with its process group on drop), [`run`],
//!   [`signal`], [`memory_kib`], what `/proc` says about processes and their sockets.
//! - `capture.rs`: [`Captured`], a shared `io::Write` buffer.
//! - `fields.rs`: our log lines read back: [`fields()`], [`field`], [`events`],
//!   [`time_of_day`].
//! - `syslog_frame.rs`: [`syslog_frame::parse_5424`], our logger's RFC 5424 frames read back.
//! - `certs.rs`: [`TestCa`], a throw-away CA and server certificate, and a rustls client
//!   that trusts it.
//! - `callgrind.rs`: [`callgrind::instructions`], what a benchmark run costs in instructions.
//!
//! Peers:
//! - `rsyslog.rs`: [`Rsyslog`], stock rsyslogd with unix, UDP, TCP and TLS inputs, and its
//!   parsed [`rsyslog::Record`]s.
//! - `journald.rs`: [`Journald`], the real systemd-journald in a private mount namespace, and
//!   its [`journald::Entry`]s as `journalctl -o json` gives them.
//! - `postfix.rs`: [`Postfix`], a private MTA instance (master + smtpd) delivering to a maildir
//!   or `discard:`, with readers for its log (deliveries, Message-IDs, session counts).
//! - `smtp_sink.rs`: [`SmtpSink`] and [`smtp_source`], Postfix's test tools.
//! - `browser.rs` (feature `browser`): `Browser`, headless Chromium over WebDriver
//!   (fantoccini, async), and `dump_dom(url)`.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! let rsyslog = test_support::Rsyslog::start().expect("rsyslogd installed");
//! std::process::Command::new("logger")
//!     .arg("-u")
//!     .arg(rsyslog.socket_path())
//!     .arg("hello")
//!     .status()
//!     .unwrap();
//! let record = rsyslog.wait_for(Duration::from_secs(20), |r| r.msg.contains("hello"));
//! assert_eq!(record.unwrap().severity, 5);
//! ```

#[cfg(feature = "browser")]
pub mod browser;
pub mod callgrind;
pub mod capture;
pub mod certs;
pub mod fields;
pub mod journald;
pub mod ports;
pub mod postfix;
pub mod process;
pub mod rsyslog;
pub mod smtp_sink;
pub mod syslog_frame;
pub mod wait;

pub use capture::Captured;
pub use certs::TestCa;
pub use fields::{events, field, fields, time_of_day};
pub use journald::Journald;
pub use ports::{accepts, free_port, loopback, unused_port, with_free_ports};
pub use postfix::Postfix;
pub use process::{Finished, Held, is_root, memory_kib, run, signal};
pub use rsyslog::Rsyslog;
pub use smtp_sink::{SinkCounters, SmtpSink, smtp_source};
pub use wait::{wait_for, wait_for_matching, wait_until, wait_until_async, within};
