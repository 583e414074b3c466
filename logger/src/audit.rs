//! Audit helpers: [`audit_object`] (Boulder's `AuditObject`) and [`install_panic_hook`]
//! (Boulder's `AuditPanic`).

use std::backtrace::Backtrace;
use std::sync::Arc;

use crate::{Field, Level, Logger, Record};

/// Logs `msg JSON={...}` as an audit Info record, with `obj` as compact JSON (escaped like
/// any text, so it stays on one line). If `obj` cannot be serialised, an audit Err record says
/// so instead.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Grant { user: &'static str, scopes: [&'static str; 2] }
/// let log = logger::Mock::new();
/// logger::audit_object(&log, "granted", &Grant { user: "alice", scopes: ["read", "write"] });
/// assert_eq!(
///     log.get_all(),
///     [r#"INFO: [AUDIT] granted JSON={"user":"alice","scopes":["read","write"]}"#]
/// );
/// ```
#[cfg(feature = "serde")]
pub fn audit_object<T: serde_core::Serialize + ?Sized>(log: &dyn Logger, msg: &str, obj: &T) {
    match serde_json::to_string(obj) {
        Ok(json) => {
            log.log(&Record::new(Level::Info, format_args!("{msg} JSON={json}")).with_audit(true))
        }
        Err(e) => log.log(
            &Record::new(Level::Err, format_args!("{msg}: could not serialise the audit object"))
                .with_audit(true)
                .with_fields(&[Field::new("error", &e)]),
        ),
    }
}

/// Records every panic as one `audit_err` record (message, location, and the backtrace as a
/// `backtrace=` field, escaped onto the same line), flushes `logger`, then runs the hook that
/// was installed before.
pub fn install_panic_hook(logger: Arc<dyn Logger>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(non-string panic payload)");
        let location = info
            .location()
            .map_or_else(|| "unknown".to_owned(), |l| format!("{}:{}", l.file(), l.line()));
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let backtrace = Backtrace::force_capture();
        logger.log(
            &Record::new(Level::Err, format_args!("panic: {message}"))
                .with_audit(true)
                .with_fields(&[
                    Field::new("location", &location),
                    Field::new("thread", &thread),
                    Field::new("backtrace", &backtrace),
                ]),
        );
        logger.flush();
        previous(info);
    }));
}

#[cfg(all(test, feature = "serde", feature = "mock"))]
mod tests {
    use std::collections::BTreeMap;

    use crate::Mock;

    #[test]
    fn json_is_compact_and_escaped_onto_one_line() {
        let log = Mock::new();
        let obj = BTreeMap::from([("note", "two\nlines")]);
        super::audit_object(&log, "changed", &obj);
        assert_eq!(log.get_all(), [r#"INFO: [AUDIT] changed JSON={"note":"two\nlines"}"#]);
    }

    #[test]
    fn an_unserialisable_object_is_an_audit_error_not_a_panic() {
        let log = Mock::new();
        // JSON object keys must be strings.
        let obj = BTreeMap::from([((1, 2), "v")]);
        super::audit_object(&log, "changed", &obj);
        let recs = log.records();
        assert_eq!(recs.len(), 1);
        assert!(recs[0].audit && recs[0].level == crate::Level::Err);
        assert!(recs[0].field("error").unwrap().contains("key must be a string"));
    }
}
