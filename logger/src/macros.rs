//! Macros that build a [`crate::Record`] with structured fields and log it.
//!
//! `logger::info!(log, "sent {} bytes", n; event = "sent", attempt = 2)`: the logger (anything
//! that derefs to a [`crate::Logger`]), a format string and its arguments, then optionally `;`
//! and `key = value` pairs. Nothing is formatted when the logger is not enabled for the level.

/// Logs a record at an explicit level: `logger::log!(log, Level::Info, "msg"; key = value)`.
#[macro_export]
macro_rules! log {
    ($logger:expr, $level:expr, $audit:expr, $fmt:literal $(, $arg:expr)* $(,)? $(; $($key:ident = $value:expr),* $(,)?)?) => {{
        // Strings, integers and booleans become their own `Value` variants, anything else
        // `Value::Display` (see value.rs).
        #[allow(unused_imports)]
        use $crate::__private::{DisplayValue as _, FastValue as _};
        let logger = &$logger;
        let level: $crate::Level = $level;
        if $crate::Logger::enabled(&*logger, level) {
            $crate::Logger::log(
                &*logger,
                &$crate::Record::new(level, ::std::format_args!($fmt $(, $arg)*))
                    .with_audit($audit)
                    .with_fields(&[$($($crate::Field::with_value(
                        ::std::stringify!($key),
                        (&$value).__logger_field_value(),
                    )),*)?])
                    .__with_proven({
                        const PROVEN: u8 = $crate::__private::check_keys(
                            &[$($(::std::stringify!($key)),*)?],
                        ) | $crate::__private::check_message($fmt);
                        PROVEN
                    }),
            );
        }
    }};
}

/// Logs at [`crate::Level::Err`]: `logger::err!(log, "msg"; key = value)`.
#[macro_export]
macro_rules! err {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Err, false, $($rest)+) };
}

/// Logs at [`crate::Level::Warning`]: `logger::warning!(log, "msg"; key = value)`.
#[macro_export]
macro_rules! warning {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Warning, false, $($rest)+) };
}

/// Logs at [`crate::Level::Info`]: `logger::info!(log, "msg"; key = value)`.
#[macro_export]
macro_rules! info {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Info, false, $($rest)+) };
}

/// Logs at [`crate::Level::Debug`]: `logger::debug!(log, "msg"; key = value)`.
#[macro_export]
macro_rules! debug {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Debug, false, $($rest)+) };
}

/// Logs an audit record at [`crate::Level::Info`]: `logger::audit_info!(log, "msg"; k = v)`.
#[macro_export]
macro_rules! audit_info {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Info, true, $($rest)+) };
}

/// Logs an audit record at [`crate::Level::Err`]: `logger::audit_err!(log, "msg"; k = v)`.
#[macro_export]
macro_rules! audit_err {
    ($logger:expr, $($rest:tt)+) => { $crate::log!($logger, $crate::Level::Err, true, $($rest)+) };
}
