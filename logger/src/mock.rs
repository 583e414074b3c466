//! [`Mock`]: an injected recorder for unit tests.

use std::sync::{Arc, Mutex, PoisonError};

use regex::Regex;

use std::fmt::Write as _;

use crate::format::{escape_into, push_value, with_line_buffer, write_key};
use crate::{Level, Logger, OwnedRecord, Record};

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

/// One recorded record in a single allocation: the raw (unescaped) message, keys and values
/// first, then the escaped line. `ends` marks where each raw piece ends (message, then key and
/// value per field) and is empty, so not allocated, for a record without fields.
struct Entry {
    level: Level,
    audit: bool,
    data: String,
    line_start: usize,
    ends: Vec<u32>,
}

impl Entry {
    fn new(record: &Record<'_>) -> Entry {
        with_line_buffer(|raw| {
            // Each value is rendered once, raw; the line is escaped from the raw text, which
            // gives exactly what `write_body` writes for every other backend.
            let mut ends = Vec::new();
            match record.message().as_str() {
                Some(s) => raw.push_str(s),
                // Writing to a String cannot fail; a failing Display impl just stops early.
                None => drop(raw.write_fmt(record.message())),
            }
            let msg_end = raw.len();
            if !record.fields().is_empty() {
                ends.reserve_exact(1 + 2 * record.fields().len());
                ends.push(msg_end as u32);
                for field in record.fields() {
                    raw.push_str(field.key);
                    ends.push(raw.len() as u32);
                    let _ = write!(raw, "{}", field.value);
                    ends.push(raw.len() as u32);
                }
            }
            let level = record.level();
            let mut data = String::with_capacity(2 * raw.len() + 24);
            data.push_str(raw);
            let line_start = data.len();
            data.push_str(level.as_str());
            data.push_str(": ");
            if record.is_audit() {
                data.push_str("[AUDIT] ");
            }
            escape_into(&mut data, &raw[..msg_end]);
            let mut start = msg_end;
            for kv in ends.get(1..).unwrap_or_default().chunks_exact(2) {
                let (k, v) = (kv[0] as usize, kv[1] as usize);
                data.push(' ');
                write_key(&mut data, &raw[start..k]);
                data.push('=');
                push_value(&mut data, &raw[k..v]);
                start = v;
            }
            Entry { level, audit: record.is_audit(), data, line_start, ends }
        })
    }

    fn line(&self) -> &str {
        &self.data[self.line_start..]
    }

    fn record(&self) -> OwnedRecord {
        let raw = &self.data[..self.line_start];
        let msg_end = self.ends.first().map_or(raw.len(), |&e| e as usize);
        let mut fields = Vec::with_capacity(self.ends.len() / 2);
        let mut start = msg_end;
        for kv in self.ends.get(1..).unwrap_or_default().chunks_exact(2) {
            let (k, v) = (kv[0] as usize, kv[1] as usize);
            fields.push((raw[start..k].to_owned(), raw[k..v].to_owned()));
            start = v;
        }
        OwnedRecord {
            level: self.level,
            audit: self.audit,
            message: raw[..msg_end].to_owned(),
            fields,
        }
    }
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
        self.lock().iter().map(|e| e.line().to_owned()).collect()
    }

    /// The lines that match the regular expression `pattern`.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid regular expression (this is a test helper).
    pub fn get_all_matching(&self, pattern: &str) -> Vec<String> {
        let re = compile(pattern);
        self.lock().iter().filter(|e| re.is_match(e.line())).map(|e| e.line().to_owned()).collect()
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
        if entries.iter().any(|e| re.is_match(e.line())) {
            return Ok(());
        }
        let seen: Vec<&str> = entries.iter().map(Entry::line).collect();
        Err(format!("expected a log line matching {pattern:?}, got {seen:#?}"))
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The records so far, for structured assertions on level, audit flag, message and fields.
    pub fn records(&self) -> Vec<OwnedRecord> {
        self.lock().iter().map(Entry::record).collect()
    }
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern:?} for Mock: {e}"))
}

impl Logger for Mock {
    fn log(&self, record: &Record<'_>) {
        // Built before taking the lock, so threads only contend for the push.
        let entry = Entry::new(record);
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
    #[test]
    fn lines_match_the_shared_body_format_and_records_stay_raw() {
        fn log_and_body(log: &Mock, rec: &Record<'_>) -> String {
            log.log(rec);
            let mut body = String::new();
            crate::format::write_body(&mut body, rec);
            body
        }
        let log = Mock::new();
        let n = 42;
        let body = log_and_body(
            &log,
            &Record::new(Level::Warning, format_args!("m{}\r\n", n)).with_audit(true).with_fields(
                &[
                    crate::Field::new("a b", &"x y"),
                    crate::Field::new("q", &"say \"hi\"\n"),
                    crate::Field::new("", &""),
                    crate::Field::new("n", &n),
                ],
            ),
        );
        assert_eq!(log.get_all(), [format!("WARNING: {body}")]);
        let r = &log.records()[0];
        assert_eq!(r.message, "m42\r\n");
        assert_eq!(
            r.fields,
            [("a b", "x y"), ("q", "say \"hi\"\n"), ("", ""), ("n", "42")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(r.audit && r.level == Level::Warning);
    }
}
