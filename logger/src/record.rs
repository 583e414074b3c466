//! The data model: levels, records, fields, and the `Logger` trait.

use std::fmt;
use std::str::FromStr;

use crate::Value;

/// A record's severity. Only the four syslog severities a service needs: 3, 4, 6 and 7.
///
/// Levels are ordered from most to least severe, so `Level::Err < Level::Debug` and a
/// threshold admits a record when `record.level() <= threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Severity 3: something failed and needs attention.
    Err,
    /// Severity 4: something went wrong and was handled (a reconnect, a retry).
    Warning,
    /// Severity 6: normal, noteworthy events.
    Info,
    /// Severity 7: detail for debugging.
    Debug,
}

impl Level {
    /// Every level, most severe first.
    pub const ALL: [Level; 4] = [Level::Err, Level::Warning, Level::Info, Level::Debug];

    /// The syslog severity number: 3, 4, 6 or 7.
    pub const fn severity(self) -> u8 {
        match self {
            Level::Err => 3,
            Level::Warning => 4,
            Level::Info => 6,
            Level::Debug => 7,
        }
    }

    /// The upper-case name used in Mock lines: `ERR`, `WARNING`, `INFO`, `DEBUG`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Err => "ERR",
            Level::Warning => "WARNING",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a level name is not one of `err`, `warning`, `info`, `debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLevelError(String);

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown log level {:?} (expected err, warning, info or debug)", self.0)
    }
}

impl std::error::Error for ParseLevelError {}

impl FromStr for Level {
    type Err = ParseLevelError;

    /// Parses `err`, `warning`, `info`, `debug` (any case; `error` and `warn` are accepted too).
    fn from_str(s: &str) -> Result<Self, ParseLevelError> {
        match s.to_ascii_lowercase().as_str() {
            "err" | "error" => Ok(Level::Err),
            "warning" | "warn" => Ok(Level::Warning),
            "info" => Ok(Level::Info),
            "debug" => Ok(Level::Debug),
            _ => Err(ParseLevelError(s.to_owned())),
        }
    }
}

/// One structured `key=value` field of a record. Values are anything `Display`; the macros
/// keep strings, integers and booleans apart ([`Value`]) so they render without `core::fmt`.
#[derive(Clone, Copy)]
pub struct Field<'a> {
    /// The key; characters outside `[A-Za-z0-9_.-]` are replaced with `_` when rendered.
    pub key: &'a str,
    /// The value, rendered (with `Display` where it has no faster way) and escaped.
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    /// A field from a key and any displayable value.
    pub const fn new(key: &'a str, value: &'a dyn fmt::Display) -> Self {
        Field { key, value: Value::Display(value) }
    }

    /// A field from a key and a [`Value`].
    pub const fn with_value(key: &'a str, value: Value<'a>) -> Self {
        Field { key, value }
    }
}

impl fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// One log event: level, audit flag, message and fields. Borrowed, so building one is free;
/// backends format it straight into their output buffer.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    level: Level,
    audit: bool,
    message: fmt::Arguments<'a>,
    fields: &'a [Field<'a>],
    /// What the macros proved at compile time about the keys and the message literal (the
    /// bits below), so the backends skip checking them per record.
    proven: u8,
}

/// Every key is `[A-Za-z0-9_.-]` already.
pub(crate) const KEYS_CLEAN: u8 = 1;
/// No key is one of the JSON columns (`ts`, `level`, `program`, `audit`, `message`).
pub(crate) const KEYS_UNRESERVED: u8 = 2;
/// The format string is printable ASCII, so a message without arguments needs no escaping.
pub(crate) const MESSAGE_PLAIN: u8 = 4;
/// ... and holds no `"` or `\` either, so it needs no JSON escaping.
pub(crate) const MESSAGE_JSON_PLAIN: u8 = 8;

impl<'a> Record<'a> {
    /// A record with a message and no fields.
    pub const fn new(level: Level, message: fmt::Arguments<'a>) -> Self {
        Record { level, audit: false, message, fields: &[], proven: 0 }
    }

    /// The same record with these fields.
    pub const fn with_fields(mut self, fields: &'a [Field<'a>]) -> Self {
        self.fields = fields;
        self.proven &= !(KEYS_CLEAN | KEYS_UNRESERVED);
        self
    }

    /// For the macros: what a compile-time check of the keys and the format string found
    /// (see `check_keys` and `check_message` in value.rs). Not for use outside them.
    #[doc(hidden)]
    pub const fn __with_proven(mut self, proven: u8) -> Self {
        self.proven = proven;
        self
    }

    /// Whether the macros proved `what` (the `KEYS_*` and `MESSAGE_*` bits).
    pub(crate) const fn proven(&self, what: u8) -> bool {
        self.proven & what == what
    }

    /// The same record marked as an audit record (`[AUDIT] ` in text, `AUDIT=1` in journald).
    pub const fn with_audit(mut self, audit: bool) -> Self {
        self.audit = audit;
        self
    }

    /// The record's level.
    pub const fn level(&self) -> Level {
        self.level
    }

    /// Whether this is an audit record.
    pub const fn is_audit(&self) -> bool {
        self.audit
    }

    /// The message, not yet formatted.
    pub const fn message(&self) -> fmt::Arguments<'a> {
        self.message
    }

    /// The structured fields, in the order given.
    pub const fn fields(&self) -> &'a [Field<'a>] {
        self.fields
    }

    /// An owned copy: message formatted, values rendered (not escaped).
    pub fn to_owned_record(&self) -> OwnedRecord {
        OwnedRecord {
            level: self.level,
            audit: self.audit,
            message: self.message.to_string(),
            fields: self.fields.iter().map(|f| (f.key.to_owned(), f.value.to_string())).collect(),
        }
    }
}

/// An owned record, as [`crate::Mock::records`] returns them for structured assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// The level.
    pub level: Level,
    /// Whether it was an audit record.
    pub audit: bool,
    /// The message, formatted, not escaped.
    pub message: String,
    /// The fields as `(key, value)`, values rendered with `Display`, not escaped.
    pub fields: Vec<(String, String)>,
}

impl OwnedRecord {
    /// The value of the first field with this key.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The logging facade. Implementations must never panic and never block forever; methods
/// return nothing because logging never fails its caller.
///
/// Only [`Logger::log`] is required. Override [`Logger::enabled`] when a backend has a
/// threshold, so the macros skip formatting for records nobody wants.
pub trait Logger: Send + Sync {
    /// Whether a record at `level` would be written anywhere. Cheap; called before a record is
    /// built. The default admits everything.
    fn enabled(&self, level: Level) -> bool {
        let _ = level;
        true
    }

    /// Writes one record. Implementations check their own threshold too: callers may skip
    /// [`Logger::enabled`].
    fn log(&self, record: &Record<'_>);

    /// Logs `msg` at [`Level::Err`].
    fn err(&self, msg: &str) {
        self.log(&Record::new(Level::Err, format_args!("{msg}")));
    }

    /// Logs `msg` at [`Level::Warning`].
    fn warning(&self, msg: &str) {
        self.log(&Record::new(Level::Warning, format_args!("{msg}")));
    }

    /// Logs `msg` at [`Level::Info`].
    fn info(&self, msg: &str) {
        self.log(&Record::new(Level::Info, format_args!("{msg}")));
    }

    /// Logs `msg` at [`Level::Debug`].
    fn debug(&self, msg: &str) {
        self.log(&Record::new(Level::Debug, format_args!("{msg}")));
    }

    /// Logs `msg` as an audit record at [`Level::Info`].
    fn audit_info(&self, msg: &str) {
        self.log(&Record::new(Level::Info, format_args!("{msg}")).with_audit(true));
    }

    /// Logs `msg` as an audit record at [`Level::Err`].
    fn audit_err(&self, msg: &str) {
        self.log(&Record::new(Level::Err, format_args!("{msg}")).with_audit(true));
    }

    /// Pushes out anything buffered. The default does nothing.
    fn flush(&self) {}
}

macro_rules! forward_logger {
    ($($ptr:ty),*) => {$(
        impl<L: Logger + ?Sized> Logger for $ptr {
            fn enabled(&self, level: Level) -> bool {
                (**self).enabled(level)
            }
            fn log(&self, record: &Record<'_>) {
                (**self).log(record)
            }
            fn flush(&self) {
                (**self).flush()
            }
        }
    )*};
}

forward_logger!(&L, Box<L>, std::sync::Arc<L>);
