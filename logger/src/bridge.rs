//! The bridge to `tracing`: `tracing` events into a [`Logger`] ([`TracingLayer`]), and a
//! [`Logger`] that emits `tracing` events ([`TracingLogger`]).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use tracing::field::{Field as TracingField, Visit};
use tracing::span::{self, Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::format::{with_line_buffer, write_body};
use crate::{Field, Level, Logger, Record, Value};

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
/// The event's `message` becomes the record's message; its other fields become fields, then
/// come the fields of the spans the event is in, outermost span first (as tracing-subscriber's
/// fmt shows them), then `target=`. So a `request_id` put in a span by
/// `#[instrument(fields(request_id = %id))]` is on every line logged inside it. A span's
/// fields are rendered once, when it is created or records a value, and kept in the span's
/// extensions; an event outside any span pays nothing for this.
///
/// Events the logger does not want at their level are dropped before any field is formatted;
/// other layers of the same subscriber still see them. Fields that `tracing-log` adds to `log`
/// records (`log.target`, `log.file`, ...) are dropped; `target=` already carries the target.
///
/// ```
/// use std::sync::Arc;
/// use tracing_subscriber::layer::SubscriberExt;
/// let log = logger::Mock::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(logger::TracingLayer::new(Arc::new(log.clone())));
/// tracing::subscriber::with_default(subscriber, || {
///     let _request = tracing::info_span!("request", request_id = 7).entered();
///     tracing::warn!(target: "smtp", code = 421, "server busy");
/// });
/// assert_eq!(log.get_all(), ["WARNING: server busy code=421 request_id=7 target=smtp"]);
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
impl<S> Layer<S> for TracingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        if let (false, Some(span)) = (fields.0.is_empty(), ctx.span(id)) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(fields) => values.record(fields),
            None => {
                let mut fields = SpanFields::default();
                values.record(&mut fields);
                if !fields.0.is_empty() {
                    extensions.insert(fields);
                }
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = level_from_tracing(meta.level());
        if meta.target() == BRIDGE_TARGET || !self.logger.enabled(level) {
            return;
        }
        with_scratch(|scratch| {
            event.record(scratch);
            let own = scratch.fields.len();
            // Innermost span first, as the scope iterates; each span's fields are kept in
            // their order and the spans are put outermost first below.
            if let Some(scope) = ctx.event_scope(event) {
                for span in scope {
                    let extensions = span.extensions();
                    if let Some(fields) = extensions.get::<SpanFields>() {
                        scratch.spans.push(scratch.fields.len());
                        for (key, value) in &fields.0 {
                            scratch.text.push_str(value);
                            scratch.fields.push((key, scratch.text.len(), Kind::Text));
                        }
                    }
                }
            }
            let target = meta.target();
            scratch.log(&*self.logger, level, own, target);
        });
    }
}

/// The fields of one span, rendered once when the span is created or records a value.
#[derive(Default)]
struct SpanFields(Vec<(&'static str, String)>);

impl SpanFields {
    fn set(&mut self, field: &TracingField, value: impl fmt::Display) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let value = value.to_string();
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name, value)),
        }
    }
}

/// Per-thread scratch space for one event: the message, every field value rendered into one
/// string, and where each field's value lies in it. Reused, so an event allocates nothing
/// once the buffers have grown.
#[derive(Default)]
struct Scratch {
    message: String,
    text: String,
    /// (key, end of its text in `text`, kind); a text starts where the one before it ends.
    fields: Vec<(&'static str, usize, Kind)>,
    /// Where each span's fields start in `fields`, innermost span first.
    spans: Vec<usize>,
}

/// What a field's value is: text in the scratch (rendered with `Display`, so JSON lines still
/// see a number in it), a string recorded as one, or a number or boolean kept as it is.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Str,
    I64(i64),
    U64(u64),
    Bool(bool),
}

/// Runs `f` on this thread's scratch, cleared; on a fresh one if that is in use (an event
/// emitted while an event's fields are rendered) or gone (thread exit).
fn with_scratch(f: impl FnOnce(&mut Scratch)) {
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    }
    let mut f = Some(f);
    let _ = SCRATCH.try_with(|s| {
        if let (Ok(mut s), Some(f)) = (s.try_borrow_mut(), f.take()) {
            s.message.clear();
            s.text.clear();
            s.fields.clear();
            s.spans.clear();
            f(&mut s);
            // Buffers that grew for one huge event are not kept forever.
            if s.text.capacity() + s.message.capacity() > 64 * 1024 {
                *s = Scratch::default();
            }
        }
    });
    if let Some(f) = f {
        f(&mut Scratch::default());
    }
}

impl Scratch {
    /// Records a field unless it is the message or one of tracing-log's `log.*` fields.
    /// `render` writes its text (for `Kind::Text` and `Kind::Str`).
    fn push(&mut self, field: &TracingField, kind: Kind, render: impl FnOnce(&mut String)) {
        let name = field.name();
        if name == "message" {
            render(&mut self.message);
        } else if !name.starts_with("log.") {
            render(&mut self.text);
            self.fields.push((name, self.text.len(), kind));
        }
    }

    fn push_display(&mut self, field: &TracingField, value: impl fmt::Display) {
        // Writing to a String cannot fail.
        self.push(field, Kind::Text, |out| {
            let _ = write!(out, "{value}");
        });
    }

    /// A number or boolean: kept as it is, no text; rendered only if it is the message.
    fn push_kept(&mut self, field: &TracingField, kind: Kind, value: impl fmt::Display) {
        let message = field.name() == "message";
        self.push(field, kind, |out| {
            if message {
                let _ = write!(out, "{value}");
            }
        });
    }

    /// The indices into `fields` in the order the record carries them: the event's `own`
    /// fields, then each span's, outermost span first.
    fn order(&self, own: usize) -> impl Iterator<Item = usize> + '_ {
        let spans = (0..self.spans.len()).rev().flat_map(move |s| {
            let end = self.spans.get(s + 1).copied().unwrap_or(self.fields.len());
            self.spans[s]..end
        });
        (0..own).chain(spans)
    }

    fn text(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.fields[i - 1].1 };
        &self.text[start..self.fields[i].1]
    }

    /// Logs the record: its fields in [`Scratch::order`], then `target`. Up to 16 fields live
    /// on the stack.
    fn log(&self, logger: &dyn Logger, level: Level, own: usize, target: &str) {
        const INLINE: usize = 16;
        let count = self.fields.len() + 1;
        // `Value::Display` borrows a `&str` that has to live somewhere: here.
        let (mut inline_texts, mut heap_texts) = ([""; INLINE], Vec::new());
        let texts: &mut [&str] = if count <= INLINE {
            &mut inline_texts[..count]
        } else {
            heap_texts.resize(count, "");
            &mut heap_texts
        };
        for (slot, i) in texts.iter_mut().zip(self.order(own)) {
            *slot = self.text(i);
        }
        let empty = Field::new("", &"");
        let (mut inline_fields, mut heap_fields) = ([empty; INLINE], Vec::new());
        let fields: &mut [Field<'_>] = if count <= INLINE {
            &mut inline_fields[..count]
        } else {
            heap_fields.resize(count, empty);
            &mut heap_fields
        };
        for ((field, i), text) in fields.iter_mut().zip(self.order(own)).zip(texts.iter()) {
            let (key, _, kind) = self.fields[i];
            let value = match kind {
                Kind::Text => Value::Display(text),
                Kind::Str => Value::Str(text),
                Kind::I64(n) => Value::I64(n),
                Kind::U64(n) => Value::U64(n),
                Kind::Bool(b) => Value::Bool(b),
            };
            *field = Field::with_value(key, value);
        }
        fields[count - 1] = Field::with_value("target", Value::Str(target));
        logger.log(&Record::new(level, format_args!("{}", self.message)).with_fields(fields));
    }
}

/// Formats a `Debug` value with `Display`, so `format_args!` messages arrive unquoted.
struct AsDisplay<'a>(&'a dyn fmt::Debug);

impl fmt::Display for AsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// A `Visit` that renders every value with `Display` (a span's fields, kept as text).
macro_rules! visit_as_display {
    ($ty:ty, $method:ident) => {
        impl Visit for $ty {
            fn record_debug(&mut self, field: &TracingField, value: &dyn fmt::Debug) {
                self.$method(field, AsDisplay(value));
            }
            fn record_str(&mut self, field: &TracingField, value: &str) {
                self.$method(field, value);
            }
            fn record_i64(&mut self, field: &TracingField, value: i64) {
                self.$method(field, value);
            }
            fn record_u64(&mut self, field: &TracingField, value: u64) {
                self.$method(field, value);
            }
            fn record_bool(&mut self, field: &TracingField, value: bool) {
                self.$method(field, value);
            }
            fn record_f64(&mut self, field: &TracingField, value: f64) {
                self.$method(field, value);
            }
            fn record_error(
                &mut self,
                field: &TracingField,
                value: &(dyn std::error::Error + 'static),
            ) {
                self.$method(field, value);
            }
        }
    };
}

visit_as_display!(SpanFields, set);

impl Visit for Scratch {
    fn record_debug(&mut self, field: &TracingField, value: &dyn fmt::Debug) {
        self.push_display(field, AsDisplay(value));
    }
    fn record_str(&mut self, field: &TracingField, value: &str) {
        self.push(field, Kind::Str, |out| out.push_str(value));
    }
    fn record_i64(&mut self, field: &TracingField, value: i64) {
        self.push_kept(field, Kind::I64(value), value);
    }
    fn record_u64(&mut self, field: &TracingField, value: u64) {
        self.push_kept(field, Kind::U64(value), value);
    }
    fn record_bool(&mut self, field: &TracingField, value: bool) {
        self.push_kept(field, Kind::Bool(value), value);
    }
    fn record_f64(&mut self, field: &TracingField, value: f64) {
        self.push_display(field, value);
    }
    fn record_error(&mut self, field: &TracingField, value: &(dyn std::error::Error + 'static)) {
        self.push_display(field, value);
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
