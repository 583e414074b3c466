//! One small logging trait for services, and the backends behind it.
//!
//! A [`Logger`] has one required method, [`Logger::log`], and convenience methods for the
//! four syslog severities a service uses (`err`, `warning`, `info`, `debug`) plus audit
//! records (`audit_info`, `audit_err`). None of them return errors: logging never fails its
//! caller. A backend that cannot deliver falls back to stderr and keeps trying to recover.
//!
//! Records carry structured `key=value` fields besides their message; the macros build them
//! without formatting anything when no sink wants the level:
//!
//! ```
//! use std::sync::Arc;
//! let log = logger::Mock::new();
//! let shared: Arc<dyn logger::Logger> = Arc::new(log.clone());
//! logger::info!(shared, "reconnecting"; attempt = 3, delay_ms = 400);
//! assert_eq!(log.get_all(), ["INFO: reconnecting attempt=3 delay_ms=400"]);
//! ```
//!
//! (The examples use the `mock`, `tracing` and `log` features; see [Features](#features).)
//!
//! One call is always one line: CR, LF and other control characters in messages and values are
//! escaped, so a value can never forge a second line.
//!
//! A service builds its production logger from its flags with [`new`], installs it with
//! [`set`] in `main`, and hands `Arc<dyn Logger>` clones to its libraries:
//!
//! ```
//! let mut config = logger::Config::new("svc");
//! config.stdout_level = Some(logger::Level::Warning);
//! let log = logger::new(config); // never fails
//! logger::warning!(log, "disk almost full"; used_pct = 93);
//! ```
//!
//! What dependencies log through `tracing` or the `log` crate joins the same sinks, and panics
//! become audit records (all process-wide, so only in `main`):
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! let mut config = logger::Config::new("svc");
//! config.syslog = Some("unix:/dev/log".parse().unwrap());
//! let log = logger::new(config);
//! logger::set(log.clone()).expect("set once, in main");
//! let subscriber = tracing_subscriber::registry().with(logger::TracingLayer::new(log.clone()));
//! tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
//! logger::LogAdapter::install(log.clone()).expect("no other log logger");
//! logger::install_panic_hook(log);
//! ```
//!
//! Text lines can carry Boulder's checksum (`Config::checksum`, [`Stdout::with_checksum`]):
//! `<checksum> <message>`, six base64url characters of the CRC32 of what follows, so a line cut
//! or altered on its way through a daemon is found by the package's `log-validator` binary
//! (`log-validator FILE...`, `--follow`), or by Boulder's own, which accepts our lines.
//!
//! # Features
//!
//! [`Stdout`] (short and JSON lines), [`Syslog`] (unix, UDP, TCP), [`Journald`], [`Fanout`],
//! [`new`], the global logger, the panic hook and the line checksum need nothing but `std`
//! (and `rustix`, for journald's memfd) and are always there. Each optional part is one feature, and none is on by default: features are additive
//! across a build, so a default feature that any one dependent leaves on would be on for
//! every crate in it. A library that only takes an `Arc<dyn Logger>` enables nothing; `main`
//! enables what it wires up; tests enable `mock` in `[dev-dependencies]`.
//!
//! | feature   | gives | pulls in |
//! |-----------|-------|----------|
//! | `tracing` | [`TracingLayer`] (tracing events into a Logger, with their span fields), [`TracingLogger`] (a Logger into tracing) | `tracing`, `tracing-subscriber` (`registry` only) |
//! | `log`     | [`LogAdapter`]: `log`-crate records into a Logger | `log` |
//! | `serde`   | [`audit_object`]: an audit record with a value as compact JSON | `serde_core`, `serde_json` (no derive macros) |
//! | `mock`    | [`Mock`], the recorder unit tests inject and assert on | `regex` |
//! | `tls`     | [`Syslog`] over TLS (`tls:HOST:PORT`, RFC 5425): certificates verified against the system's roots or a given CA | `rustls` (ring), `rustls-native-certs` |
//!
//! ```toml
//! [dependencies]
//! logger = { workspace = true, features = ["tracing", "log"] }
//! [dev-dependencies]
//! logger = { workspace = true, features = ["mock"] }
//! ```
//!
//! # Layout
//!
//! - `record.rs`: [`Level`], [`Record`], [`Field`], [`OwnedRecord`] and the [`Logger`] trait.
//! - `macros.rs`: `err!`, `warning!`, `info!`, `debug!`, `audit_info!`, `audit_err!`, `log!`.
//! - `value.rs`: [`Value`], a field's value (strings and integers kept apart from `Display`).
//! - `format.rs`: escaping and the `key=value` field rendering shared by every text backend.
//! - `checksum.rs`: [`checksum()`], [`write_checksummed`] and [`check_line`]: Boulder's per-line
//!   CRC32 checksum, written and checked.
//! - `clock.rs`: UTC civil time for the three timestamp formats, without a calendar crate.
//! - `config.rs`: [`Config`], [`SyslogTarget`], [`SyslogFormat`], [`Facility`] (all parseable).
//! - `stdout.rs`: [`Stdout`], the short `HH:MM:SS.ffffff 6 prog message k=v` format or JSON
//!   lines ([`StdoutFormat`]).
//! - `json.rs`: JSON escaping and the JSON-lines object, hand-written for the hot path.
//! - `syslog.rs`: [`Syslog`], RFC 3164/5424 formatting and truncation, the caller's side.
//! - `queue.rs`: the bounded queue between a sink's callers and its writer thread,
//!   [`SinkStats`].
//! - `delivery.rs`: the syslog writer thread: connect, send, reconnect, replay, notices.
//! - `transport.rs`: one open syslog transport (unix, UDP, TCP) and how a batch goes out on it.
//! - `tls.rs`: syslog over TLS (rustls), with the `tls` feature.
//! - `recent.rs`: the ring of recently sent lines, replayed when the daemon dies.
//! - `journald.rs`: [`Journald`], the journal's native protocol, memfd for large records.
//! - `fanout.rs`: [`Fanout`], several sinks with a threshold each.
//! - `bridge.rs`: [`TracingLayer`] (tracing -> Logger), [`TracingLogger`] (Logger -> tracing).
//! - `log_adapter.rs`: [`LogAdapter`] (`log` crate -> Logger).
//! - `global.rs`: [`set`] and [`get`], the process-wide logger.
//! - `audit.rs`: [`audit_object`] and [`install_panic_hook`].
//! - `mock.rs`: [`Mock`], the recorder that unit tests inject and assert on.
//! - `bin/log-validator/`: the `log-validator` binary (`main.rs` its arguments and one pass
//!   over files, `follow.rs` tailing them across rotation).

#![warn(missing_docs)]
// The docs link to every optional part; they are meant to be read built with all features
// (`cargo doc --all-features`, as docs.rs does), where every link resolves.
#![cfg_attr(
    not(all(feature = "tracing", feature = "log", feature = "serde", feature = "mock")),
    allow(rustdoc::broken_intra_doc_links)
)]

mod audit;
#[cfg(feature = "tracing")]
mod bridge;
mod checksum;
mod clock;
mod config;
mod delivery;
mod fanout;
mod format;
mod global;
pub mod journald;
mod json;
#[cfg(feature = "log")]
mod log_adapter;
mod macros;
#[cfg(feature = "mock")]
mod mock;
mod queue;
mod recent;
mod record;
mod stdout;
pub mod syslog;
mod tls;
mod transport;
mod value;

use std::sync::Arc;

#[cfg(feature = "serde")]
pub use audit::audit_object;
pub use audit::install_panic_hook;
#[cfg(feature = "tracing")]
pub use bridge::{BRIDGE_TARGET, TracingLayer, TracingLogger, level_from_tracing};
pub use checksum::{LineCheck, check_line, checksum, write_checksummed};
pub use config::{Config, Facility, ParseConfigError, SyslogFormat, SyslogTarget};
pub use fanout::Fanout;
pub use format::{escape_into, write_fields};
pub use global::{SetError, get, set};
pub use journald::Journald;
#[cfg(feature = "log")]
pub use log_adapter::{LogAdapter, level_from_log};
#[cfg(feature = "mock")]
pub use mock::{Mock, new_mock};
pub use queue::SinkStats;
pub use record::{Field, Level, Logger, OwnedRecord, ParseLevelError, Record};
pub use stdout::{Stdout, StdoutFormat};
pub use syslog::Syslog;
#[doc(hidden)]
pub use value::__private;
pub use value::Value;

/// Builds the production logger described by `config`: a [`Fanout`] over the configured
/// sinks, each behind its own threshold. Never fails and never waits: the syslog sink connects
/// on its writer thread at once, and a daemon that cannot be reached is reported once on
/// stderr while the sink keeps retrying (lines go to stderr meanwhile); journald likewise.
/// The sinks write on threads of their own: call [`Logger::flush`] before the process exits.
pub fn new(config: Config) -> Arc<dyn Logger> {
    let mut fanout = Fanout::new();
    if let Some(level) = config.stdout_level {
        let sink = Stdout::new(&config.program, level)
            .with_format(config.stdout_format)
            .with_checksum(config.checksum);
        fanout = fanout.with(Arc::new(sink), level);
    }
    if let Some(target) = &config.syslog {
        let mut sink = Syslog::new(target.clone(), &config.program)
            .with_facility(config.facility)
            .with_level(config.syslog_level)
            .with_max_len(config.syslog_max_len)
            .with_checksum(config.checksum);
        if let Some(format) = config.syslog_format {
            sink = sink.with_format(format);
        }
        if let Some(ca) = &config.syslog_tls_ca {
            sink = sink.with_tls_ca_file(ca);
        }
        if let Some(name) = &config.syslog_tls_server_name {
            sink = sink.with_tls_server_name(name);
        }
        // A failure is announced on stderr by the writer itself; it keeps retrying.
        sink.start();
        fanout = fanout.with(Arc::new(sink), config.syslog_level);
    }
    if let Some(path) = &config.journald {
        let sink =
            Journald::new(&config.program).with_socket_path(path).with_level(config.journald_level);
        fanout = fanout.with(Arc::new(sink), config.journald_level);
    }
    Arc::new(fanout)
}
