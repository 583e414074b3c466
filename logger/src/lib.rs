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
//! One call is always one line: CR, LF and other control characters in messages and values are
//! escaped, so a value can never forge a second line.
//!
//! # Layout
//!
//! - `record.rs`: [`Level`], [`Record`], [`Field`], [`OwnedRecord`] and the [`Logger`] trait.
//! - `macros.rs`: `err!`, `warning!`, `info!`, `debug!`, `audit_info!`, `audit_err!`.
//! - `format.rs`: escaping and the `key=value` field rendering shared by every text backend.
//! - `mock.rs`: [`Mock`], the recorder that unit tests inject and assert on.

mod format;
mod macros;
mod mock;
mod record;

pub use format::{escape_into, write_fields};
pub use mock::{Mock, new_mock};
pub use record::{Field, Level, Logger, OwnedRecord, ParseLevelError, Record};
