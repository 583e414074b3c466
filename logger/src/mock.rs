//! [`Mock`]: an injected recorder for unit tests.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use regex::Regex;

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
    store: Arc<Mutex<Store>>,
}

/// Every recorded record, back to back in a few growing buffers, so recording one allocates
/// nothing once they have grown: per entry, the raw (unescaped) message, keys and values, then
/// the escaped line, all in `text`; where each raw piece ends in `ends`.
#[derive(Default)]
struct Store {
    text: String,
    ends: Vec<u32>,
    entries: Vec<Meta>,
}

/// Where one entry lives in the [`Store`].
#[derive(Clone, Copy)]
struct Meta {
    level: Level,
    audit: bool,
    /// `text[start..line_start]` is the raw message then key, value, key, value...
    start: usize,
    line_start: usize,
    end: usize,
    /// `ends[ends_start..ends_start + 1 + 2 * fields]`: the end of the message, then of each
    /// key and value, relative to `start`. Nothing is stored for a record without fields.
    ends_start: usize,
    fields: usize,
}

impl Store {
    fn line(&self, m: &Meta) -> &str {
        &self.text[m.line_start..m.end]
    }

    fn record(&self, m: &Meta) -> OwnedRecord {
        let raw = &self.text[m.start..m.line_start];
        if m.fields == 0 {
            return OwnedRecord {
                level: m.level,
                audit: m.audit,
                message: raw.to_owned(),
                fields: Vec::new(),
            };
        }
        let ends = &self.ends[m.ends_start..m.ends_start + 1 + 2 * m.fields];
        let mut start = ends[0] as usize;
        let fields = ends[1..]
            .chunks_exact(2)
            .map(|kv| {
                let (k, v) = (kv[0] as usize, kv[1] as usize);
                let field = (raw[start..k].to_owned(), raw[k..v].to_owned());
                start = v;
                field
            })
            .collect();
        OwnedRecord {
            level: m.level,
            audit: m.audit,
            message: raw[..ends[0] as usize].to_owned(),
            fields,
        }
    }
}

/// Piece ends for one record: inline for up to 8 fields, on the heap beyond.
struct Ends {
    len: usize,
    inline: [u32; 17],
    heap: Vec<u32>,
}

impl Ends {
    fn new() -> Ends {
        Ends { len: 0, inline: [0; 17], heap: Vec::new() }
    }

    fn push(&mut self, end: usize) {
        // A Mock line longer than 4 GiB is not a case tests have; saturate rather than wrap.
        let end = u32::try_from(end).unwrap_or(u32::MAX);
        if self.len < self.inline.len() {
            self.inline[self.len] = end;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(end);
        }
        self.len += 1;
    }

    fn as_slice(&self) -> &[u32] {
        if self.len <= self.inline.len() { &self.inline[..self.len] } else { &self.heap }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // Nothing that can panic runs while the lock is held (user Display impls run before
        // it is taken), so a poisoned lock still guards a consistent recording.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every line recorded so far, oldest first.
    pub fn get_all(&self) -> Vec<String> {
        let store = self.lock();
        store.entries.iter().map(|m| store.line(m).to_owned()).collect()
    }

    /// The lines that match the regular expression `pattern`.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid regular expression (this is a test helper).
    pub fn get_all_matching(&self, pattern: &str) -> Vec<String> {
        let re = compile(pattern);
        let store = self.lock();
        store
            .entries
            .iter()
            .map(|m| store.line(m))
            .filter(|l| re.is_match(l))
            .map(str::to_owned)
            .collect()
    }

    /// `Ok(())` when some line matches `pattern`; otherwise an error that quotes the pattern
    /// and lists every line seen.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid regular expression.
    pub fn expect_match(&self, pattern: &str) -> Result<(), String> {
        let re = compile(pattern);
        let store = self.lock();
        if store.entries.iter().any(|m| re.is_match(store.line(m))) {
            return Ok(());
        }
        let seen: Vec<&str> = store.entries.iter().map(|m| store.line(m)).collect();
        Err(format!("expected a log line matching {pattern:?}, got {seen:#?}"))
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        let mut store = self.lock();
        store.text.clear();
        store.ends.clear();
        store.entries.clear();
    }

    /// The records so far, for structured assertions on level, audit flag, message and fields.
    pub fn records(&self) -> Vec<OwnedRecord> {
        let store = self.lock();
        store.entries.iter().map(|m| store.record(m)).collect()
    }
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern:?} for Mock: {e}"))
}

impl Logger for Mock {
    fn log(&self, record: &Record<'_>) {
        with_line_buffer(|raw| {
            // Every value is rendered once, raw, before the lock is taken (a Display impl may
            // be slow, or log itself). The line is then escaped from the raw text under the
            // lock, which gives exactly what `write_body` writes in every other backend.
            match record.message().as_str() {
                Some(s) => raw.push_str(s),
                // Writing to a String cannot fail; a failing Display impl just stops early.
                None => drop(raw.write_fmt(record.message())),
            }
            let mut ends = Ends::new();
            let fields = record.fields();
            if !fields.is_empty() {
                ends.push(raw.len());
                for field in fields {
                    raw.push_str(field.key);
                    ends.push(raw.len());
                    field.value.write_raw(raw);
                    ends.push(raw.len());
                }
            }
            let ends = ends.as_slice();
            let msg_end = ends.first().map_or(raw.len(), |&e| e as usize);

            let mut store = self.lock();
            let store = &mut *store;
            let start = store.text.len();
            store.text.push_str(raw);
            let line_start = store.text.len();
            let text = &mut store.text;
            text.push_str(record.level().as_str());
            text.push_str(": ");
            if record.is_audit() {
                text.push_str("[AUDIT] ");
            }
            escape_into(text, &raw[..msg_end]);
            let mut piece = msg_end;
            for kv in ends.get(1..).unwrap_or_default().chunks_exact(2) {
                let (k, v) = (kv[0] as usize, kv[1] as usize);
                text.push(' ');
                write_key(text, &raw[piece..k]);
                text.push('=');
                push_value(text, &raw[k..v]);
                piece = v;
            }
            let ends_start = store.ends.len();
            store.ends.extend_from_slice(ends);
            store.entries.push(Meta {
                level: record.level(),
                audit: record.is_audit(),
                start,
                line_start,
                end: store.text.len(),
                ends_start,
                fields: fields.len(),
            });
        });
    }
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock").field("lines", &self.lock().entries.len()).finish()
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
