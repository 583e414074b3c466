//! [`Mock`]: an injected recorder for unit tests.

use std::sync::{Arc, Mutex, PoisonError};

use regex::Regex;

use crate::format::write_body;
use crate::{Logger, OwnedRecord, Record};

/// A [`Logger`] that records every line in memory for tests to assert on.
///
/// Clones share one recording, so a test keeps one clone and hands another (in an `Arc`) to
/// the code under test. It holds no global state: tests using their own `Mock` run in
/// parallel, from any number of threads and tasks.
///
/// Lines look like `"<LEVEL>: [AUDIT] message key=value"`, with LEVEL one of `ERR`, `WARNING`,
/// `INFO`, `DEBUG`; `[AUDIT] ` appears only on audit records and fields only when present.
/// Control characters are escaped exactly as in every other text backend.
///
/// ```
/// use std::sync::Arc;
/// let log = logger::Mock::new();
/// let shared: Arc<dyn logger::Logger> = Arc::new(log.clone());
/// shared.audit_err("access denied");
/// logger::warning!(shared, "retrying"; event = "backoff", delay_ms = 250);
/// assert_eq!(log.get_all_matching(r"event=backoff").len(), 1);
/// assert!(log.expect_match(r"^ERR: \[AUDIT\] access denied$").is_ok());
/// ```
#[derive(Clone, Default)]
pub struct Mock {
    entries: Arc<Mutex<Vec<Entry>>>,
}

struct Entry {
    line: String,
    record: OwnedRecord,
}

/// A new, empty [`Mock`] (the Boulder-style spelling of [`Mock::new`]).
pub fn new_mock() -> Mock {
    Mock::new()
}

impl Mock {
    /// A new, empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A test thread that panicked while holding the lock left whole entries behind: the
        // recording is still consistent, so keep using it.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every line recorded so far, oldest first.
    pub fn get_all(&self) -> Vec<String> {
        self.lock().iter().map(|e| e.line.clone()).collect()
    }

    /// The lines that match the regular expression `pattern`.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid regular expression (this is a test helper).
    pub fn get_all_matching(&self, pattern: &str) -> Vec<String> {
        let re = compile(pattern);
        self.lock().iter().filter(|e| re.is_match(&e.line)).map(|e| e.line.clone()).collect()
    }

    /// `Ok(())` when some line matches `pattern`; otherwise an error that quotes the pattern
    /// and lists every line seen.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid regular expression.
    pub fn expect_match(&self, pattern: &str) -> Result<(), String> {
        let re = compile(pattern);
        let entries = self.lock();
        if entries.iter().any(|e| re.is_match(&e.line)) {
            return Ok(());
        }
        let seen: Vec<&str> = entries.iter().map(|e| e.line.as_str()).collect();
        Err(format!("expected a log line matching {pattern:?}, got {seen:#?}"))
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The records so far, for structured assertions on level, audit flag, message and fields.
    pub fn records(&self) -> Vec<OwnedRecord> {
        self.lock().iter().map(|e| e.record.clone()).collect()
    }
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern:?} for Mock: {e}"))
}

impl Logger for Mock {
    fn log(&self, record: &Record<'_>) {
        let mut line = String::with_capacity(64);
        line.push_str(record.level().as_str());
        line.push_str(": ");
        write_body(&mut line, record);
        let entry = Entry { line, record: record.to_owned_record() };
        self.lock().push(entry);
    }
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock").field("lines", &self.lock().len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    #[test]
    fn lines_have_the_boulder_format() {
        let log = Mock::new();
        log.info("hello");
        log.audit_err("denied");
        log.audit_info("granted");
        log.warning("careful");
        log.debug("detail");
        log.err("broken");
        crate::info!(log, "sent"; event = "sent", recipients = 2);
        assert_eq!(
            log.get_all(),
            [
                "INFO: hello",
                "ERR: [AUDIT] denied",
                "INFO: [AUDIT] granted",
                "WARNING: careful",
                "DEBUG: detail",
                "ERR: broken",
                "INFO: sent event=sent recipients=2",
            ]
        );
    }

    #[test]
    fn records_keep_structure() {
        let log = Mock::new();
        crate::audit_err!(log, "bad {}", "thing"; code = 550);
        let recs = log.records();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].level, Level::Err);
        assert!(recs[0].audit);
        assert_eq!(recs[0].message, "bad thing");
        assert_eq!(recs[0].field("code"), Some("550"));
    }

    #[test]
    fn matching_expect_and_clear() {
        let log = Mock::new();
        log.info("one event=a");
        log.info("two event=b");
        assert_eq!(log.get_all_matching("event=b"), ["INFO: two event=b"]);
        assert!(log.expect_match("^INFO: one").is_ok());
        let err = log.expect_match("nothing").unwrap_err();
        assert!(err.contains("nothing") && err.contains("INFO: two event=b"), "{err}");
        log.clear();
        assert!(log.get_all().is_empty());
    }

    #[test]
    #[should_panic(expected = "bad pattern \"(\"")]
    fn bad_pattern_panics_with_the_pattern() {
        Mock::new().get_all_matching("(");
    }

    #[test]
    fn a_forged_line_stays_one_line() {
        let log = Mock::new();
        log.info("x\n[AUDIT] forged");
        assert_eq!(log.get_all(), ["INFO: x\\n[AUDIT] forged"]);
    }
}
