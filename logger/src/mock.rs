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
/// nothing once they have grown: per entry, the raw (unescaped) message, keys and values in
/// `raw`, where each raw piece ends in `ends`. Lines are rendered from that when first read
/// (into `lines`), not when recorded: a test logs far more often than it reads.
#[derive(Default)]
struct Store {
    raw: String,
    ends: Vec<u32>,
    entries: Vec<Meta>,
    /// The lines of `entries[..line_ends.len()]`, back to back.
    lines: String,
    line_ends: Vec<usize>,
}

/// Where one entry lives in the [`Store`].
#[derive(Clone, Copy)]
struct Meta {
    level: Level,
    audit: bool,
    /// `raw[start..end]` is the raw message then key, value, key, value...
    start: usize,
    end: usize,
    /// `ends[ends_start..ends_start + 1 + 2 * fields]`: the end of the message, then of each
    /// key and value, relative to `start`. Nothing is stored for a record without fields.
    ends_start: usize,
    fields: usize,
}

impl Store {
    /// The raw pieces of an entry: its message, and its fields as (key, value).
    fn pieces(&self, m: &Meta) -> (&str, impl Iterator<Item = (&str, &str)>) {
        let raw = &self.raw[m.start..m.end];
        let ends = if m.fields == 0 {
            &[][..]
        } else {
            &self.ends[m.ends_start..m.ends_start + 1 + 2 * m.fields]
        };
        let message_end = ends.first().map_or(raw.len(), |&e| e as usize);
        let fields = ends.get(1..).unwrap_or_default().chunks_exact(2).scan(
            message_end,
            move |start, kv| {
                let (k, v) = (kv[0] as usize, kv[1] as usize);
                let field = (&raw[*start..k], &raw[k..v]);
                *start = v;
                Some(field)
            },
        );
        (&raw[..message_end], fields)
    }

    fn record(&self, m: &Meta) -> OwnedRecord {
        let (message, fields) = self.pieces(m);
        OwnedRecord {
            level: m.level,
            audit: m.audit,
            message: message.to_owned(),
            fields: fields.map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        }
    }

    /// Renders the lines not rendered yet: `LEVEL: [AUDIT] message key=value`, escaped exactly
    /// as `write_body` escapes for every other backend.
    fn render(&mut self) {
        for i in self.line_ends.len()..self.entries.len() {
            let m = self.entries[i];
            let mut lines = std::mem::take(&mut self.lines);
            lines.push_str(m.level.as_str());
            lines.push_str(": ");
            if m.audit {
                lines.push_str("[AUDIT] ");
            }
            let (message, fields) = self.pieces(&m);
            escape_into(&mut lines, message);
            for (key, value) in fields {
                lines.push(' ');
                write_key(&mut lines, key);
                lines.push('=');
                push_value(&mut lines, value);
            }
            self.line_ends.push(lines.len());
            self.lines = lines;
        }
    }

    /// Every line, rendered.
    fn lines(&mut self) -> impl Iterator<Item = &str> {
        self.render();
        let lines = &self.lines;
        self.line_ends.iter().scan(0, move |start, &end| {
            let line = &lines[*start..end];
            *start = end;
            Some(line)
        })
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
        self.lock().lines().map(str::to_owned).collect()
    }

    /// The lines that match the regular expression `pattern`.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid regular expression (this is a test helper).
    pub fn get_all_matching(&self, pattern: &str) -> Vec<String> {
        let re = compile(pattern);
        self.lock().lines().filter(|l| re.is_match(l)).map(str::to_owned).collect()
    }

    /// `Ok(())` when some line matches `pattern`; otherwise an error that quotes the pattern
    /// and lists every line seen.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid regular expression.
    pub fn expect_match(&self, pattern: &str) -> Result<(), String> {
        let re = compile(pattern);
        let mut store = self.lock();
        if store.lines().any(|l| re.is_match(l)) {
            return Ok(());
        }
        let seen: Vec<&str> = store.lines().collect();
        Err(format!("expected a log line matching {pattern:?}, got {seen:#?}"))
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        let mut store = self.lock();
        store.raw.clear();
        store.ends.clear();
        store.entries.clear();
        store.lines.clear();
        store.line_ends.clear();
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
            // be slow, or log itself); under the lock the raw text is only copied in. Lines are
            // escaped from it when first read (`Store::render`).
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
            let mut store = self.lock();
            let store = &mut *store;
            let start = store.raw.len();
            store.raw.push_str(raw);
            let ends_start = store.ends.len();
            store.ends.extend_from_slice(ends);
            store.entries.push(Meta {
                level: record.level(),
                audit: record.is_audit(),
                start,
                end: store.raw.len(),
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
