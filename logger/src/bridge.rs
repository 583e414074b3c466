//! The bridge to `tracing`: `tracing` events into a [`Logger`] ([`TracingLayer`]), and a
//! [`Logger`] that emits `tracing` events ([`TracingLogger`]).

use std::fmt::{self, Write as _};
use std::sync::Arc;

use tracing::field::{Field as TracingField, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::format::{with_line_buffer, write_body};
use crate::{Field, Level, Logger, Record};

/// The target of the events [`TracingLogger`] emits. [`TracingLayer`] ignores it, so wiring
/// both into one process cannot loop.
pub const BRIDGE_TARGET: &str = "logger::bridge";

/// Maps a `tracing` level: ERROR to Err, WARN to Warning, INFO to Info, DEBUG and TRACE to
/// Debug.
pub fn level_from_tracing(level: &tracing::Level) -> Level {
    match *level {
        tracing::Level::ERROR => Level::Err,
        tracing::Level::WARN => Level::Warning,
        tracing::Level::INFO => Level::Info,
        tracing::Level::DEBUG | tracing::Level::TRACE => Level::Debug,
    }
}

/// A `tracing_subscriber::Layer` that feeds every `tracing` event (from lettre, tokio, axum
/// or the service itself) into a [`Logger`].
///
/// The event's `message` becomes the record's message; every other field becomes a field,
/// followed by `target=`. Events the logger does not want at their level are dropped before
/// any field is formatted; other layers of the same subscriber still see them. Fields that `tracing-log` adds to `log` records
/// (`log.target`, `log.file`, ...) are dropped; `target=` already carries the target.
///
/// ```
/// use std::sync::Arc;
/// use tracing_subscriber::layer::SubscriberExt;
/// let log = logger::Mock::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(logger::TracingLayer::new(Arc::new(log.clone())));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::warn!(target: "smtp", code = 421, "server busy");
/// });
/// assert_eq!(log.get_all(), ["WARNING: server busy code=421 target=smtp"]);
/// ```
#[derive(Clone)]
pub struct TracingLayer {
    logger: Arc<dyn Logger>,
}

impl TracingLayer {
    /// A layer that logs into `logger`.
    pub fn new(logger: Arc<dyn Logger>) -> Self {
        TracingLayer { logger }
    }
}

impl fmt::Debug for TracingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracingLayer").finish_non_exhaustive()
    }
}

// No `Layer::enabled`: in a layered subscriber that is a global filter, so a logger at Info
// would silence Debug events for a fmt layer next to this one. The level is checked in
// `on_event` instead, before any field is visited.
impl<S: Subscriber> Layer<S> for TracingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = level_from_tracing(meta.level());
        if meta.target() == BRIDGE_TARGET || !self.logger.enabled(level) {
            return;
        }
        let mut visitor = Collect::default();
        event.record(&mut visitor);
        let target = meta.target();
        let mut fields: Vec<Field<'_>> =
            visitor.fields.iter().map(|(k, v)| Field::new(k, v as &dyn fmt::Display)).collect();
        fields.push(Field::new("target", &target));
        self.logger
            .log(&Record::new(level, format_args!("{}", visitor.message)).with_fields(&fields));
    }
}

/// Collects an event's fields as text.
#[derive(Default)]
struct Collect {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Collect {
    fn push(&mut self, field: &TracingField, value: impl fmt::Display) {
        let name = field.name();
        if name == "message" {
            // Writing to a String cannot fail.
            let _ = write!(self.message, "{value}");
        } else if !name.starts_with("log.") {
            self.fields.push((name, value.to_string()));
        }
    }
}

/// Formats a `Debug` value with `Display`, so `format_args!` messages arrive unquoted.
struct AsDisplay<'a>(&'a dyn fmt::Debug);

impl fmt::Display for AsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl Visit for Collect {
    fn record_debug(&mut self, field: &TracingField, value: &dyn fmt::Debug) {
        self.push(field, AsDisplay(value));
    }
    fn record_str(&mut self, field: &TracingField, value: &str) {
        self.push(field, value);
    }
    fn record_i64(&mut self, field: &TracingField, value: i64) {
        self.push(field, value);
    }
    fn record_u64(&mut self, field: &TracingField, value: u64) {
        self.push(field, value);
    }
    fn record_bool(&mut self, field: &TracingField, value: bool) {
        self.push(field, value);
    }
    fn record_f64(&mut self, field: &TracingField, value: f64) {
        self.push(field, value);
    }
    fn record_error(&mut self, field: &TracingField, value: &(dyn std::error::Error + 'static)) {
        self.push(field, value);
    }
}

/// A [`Logger`] that emits each record as a `tracing` event, for services that already run a
/// tracing subscriber. The event's target is [`BRIDGE_TARGET`]; its message is the same
/// escaped `[AUDIT] message key=value` text every text backend writes (tracing field names
/// must be compile-time constants, so runtime keys travel in the text); audit records also
/// carry `audit = true`.
///
/// ```
/// use logger::{Level, Logger, TracingLogger};
/// let log = TracingLogger::new(Level::Info);
/// logger::info!(log, "sent"; recipients = 2); // goes to the current tracing subscriber
/// ```
#[derive(Debug, Clone)]
pub struct TracingLogger {
    level: Level,
}

impl TracingLogger {
    /// Emits records at `level` or more severe.
    pub fn new(level: Level) -> Self {
        TracingLogger { level }
    }
}

impl Logger for TracingLogger {
    fn enabled(&self, level: Level) -> bool {
        if level > self.level {
            return false;
        }
        match level {
            Level::Err => tracing::enabled!(target: BRIDGE_TARGET, tracing::Level::ERROR),
            Level::Warning => tracing::enabled!(target: BRIDGE_TARGET, tracing::Level::WARN),
            Level::Info => tracing::enabled!(target: BRIDGE_TARGET, tracing::Level::INFO),
            Level::Debug => tracing::enabled!(target: BRIDGE_TARGET, tracing::Level::DEBUG),
        }
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() > self.level {
            return;
        }
        with_line_buffer(|text| {
            write_body(text, record);
            let text = text.as_str();
            match (record.level(), record.is_audit()) {
                (Level::Err, false) => tracing::error!(target: BRIDGE_TARGET, "{text}"),
                (Level::Err, true) => {
                    tracing::error!(target: BRIDGE_TARGET, audit = true, "{text}")
                }
                (Level::Warning, false) => tracing::warn!(target: BRIDGE_TARGET, "{text}"),
                (Level::Warning, true) => {
                    tracing::warn!(target: BRIDGE_TARGET, audit = true, "{text}")
                }
                (Level::Info, false) => tracing::info!(target: BRIDGE_TARGET, "{text}"),
                (Level::Info, true) => {
                    tracing::info!(target: BRIDGE_TARGET, audit = true, "{text}")
                }
                (Level::Debug, false) => tracing::debug!(target: BRIDGE_TARGET, "{text}"),
                (Level::Debug, true) => {
                    tracing::debug!(target: BRIDGE_TARGET, audit = true, "{text}")
                }
            }
        });
    }
}
