//! Escaping and field rendering shared by every text backend.
//!
//! The invariant: whatever a message or a field value contains, what these functions write
//! holds no line break and no control character. CR, LF and tab become `\r`, `\n`, `\t`; other
//! control characters (C0, DEL, C1) and the Unicode line and paragraph separators become
//! `\u{1b}`-style escapes. So one log call is one line, and a value cannot forge another.

use std::fmt::{self, Write as _};

use crate::{Field, Value};

/// Whether `c` must be escaped to keep a line a single, clean line.
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Byte classes for the one-pass check in [`classify`]: a byte that may need escaping (any
/// control byte, and any non-ASCII byte, left to the exact per-char path), a byte that forces
/// a value into quotes, and a byte that is not allowed in a key.
pub(crate) const ESCAPE: u8 = 1;
pub(crate) const QUOTE: u8 = 2;
const NOT_KEY: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let escape = if b < 0x20 || b >= 0x7f { ESCAPE } else { 0 };
        let quote = if matches!(b, b' ' | b'"' | b'=' | b'\\') { QUOTE } else { 0 };
        let key_ok = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
        t[i] = escape | quote | if key_ok { 0 } else { NOT_KEY };
        i += 1;
    }
    t
};

/// The union of the classes of the bytes of `s`. No early exit, and eight bytes per step, so
/// the loop is a table load and an OR per byte; the strings are short and almost always clean.
pub(crate) fn classify(s: &str) -> u8 {
    let b = s.as_bytes();
    let mut acc = 0;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        acc |= CLASS[c[0] as usize]
            | CLASS[c[1] as usize]
            | CLASS[c[2] as usize]
            | CLASS[c[3] as usize]
            | CLASS[c[4] as usize]
            | CLASS[c[5] as usize]
            | CLASS[c[6] as usize]
            | CLASS[c[7] as usize];
    }
    chunks.remainder().iter().fold(acc, |acc, &b| acc | CLASS[b as usize])
}

/// Appends `s` to `out` with control characters escaped.
pub fn escape_into(out: &mut String, s: &str) {
    // Fast path: printable ASCII, the overwhelmingly common case.
    if classify(s) & ESCAPE == 0 {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        push_escaped_char(out, c);
    }
}

fn push_escaped_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// A `fmt::Write` that escapes as it appends, so `format_args!` output can be written
/// straight into a line buffer without a temporary string.
pub(crate) struct Escaper<'a>(pub(crate) &'a mut String);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// Appends the message, formatted and escaped.
pub(crate) fn write_message(out: &mut String, message: fmt::Arguments<'_>) {
    match message.as_str() {
        Some(s) => escape_into(out, s),
        None => {
            // Writing to a String cannot fail; a Display impl that errors just stops early.
            let _ = Escaper(out).write_fmt(message);
        }
    }
}

/// Appends a key with characters outside `[A-Za-z0-9_.-]` replaced by `_`.
pub(crate) fn write_key(out: &mut String, key: &str) {
    if key.is_empty() {
        out.push('_');
    } else if classify(key) & NOT_KEY == 0 {
        out.push_str(key);
    } else {
        out.extend(key.chars().map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' }
        }));
    }
}

/// Appends one value, escaped; quoted (`"two words"`) when it is empty or holds a space, `"`,
/// `=` or `\\`, in which case `"` and `\\` from the value are backslash-escaped too.
pub(crate) fn write_value(out: &mut String, value: Value<'_>) {
    match value {
        Value::Str(s) => push_value(out, s),
        Value::Display(d) => write_display(out, d),
        // Digits, a sign, `true`, `false`: nothing to quote or escape.
        other => other.write_raw(out),
    }
}

/// [`write_value`] for a `Display` value.
fn write_display(out: &mut String, value: &dyn fmt::Display) {
    // Rendered straight into the line; only a value that needs quoting or escaping is copied
    // out and written again.
    let start = out.len();
    // Writing to a String cannot fail; a Display impl that errors just stops early.
    let _ = write!(out, "{value}");
    if out.len() > start && classify(&out[start..]) & (ESCAPE | QUOTE) == 0 {
        return;
    }
    let raw = out[start..].to_owned();
    out.truncate(start);
    push_value(out, &raw);
}

pub(crate) fn push_value(out: &mut String, raw: &str) {
    let class = classify(raw);
    if !raw.is_empty() && class & QUOTE == 0 {
        if class & ESCAPE == 0 {
            out.push_str(raw);
        } else {
            escape_into(out, raw);
        }
        return;
    }
    out.push('"');
    for c in raw.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        push_escaped_char(out, c);
    }
    out.push('"');
}

/// Appends ` key=value` for each field (a leading space before each).
pub fn write_fields(out: &mut String, fields: &[Field<'_>]) {
    write_fields_checked(out, fields, false);
}

/// [`write_fields`], with the keys copied as they are when `clean` (the macros proved them
/// `[A-Za-z0-9_.-]` at compile time).
fn write_fields_checked(out: &mut String, fields: &[Field<'_>], clean: bool) {
    for field in fields {
        out.push(' ');
        push_key(out, field.key, clean);
        out.push('=');
        write_value(out, field.value);
    }
}

/// Appends `key`: as it is when the macros proved it clean, else through [`write_key`].
pub(crate) fn push_key(out: &mut String, key: &str, clean: bool) {
    if clean { out.push_str(key) } else { write_key(out, key) }
}

/// Appends `[AUDIT] message key=value ...`: the part of a line every text backend shares.
pub(crate) fn write_body(out: &mut String, record: &crate::Record<'_>) {
    if record.is_audit() {
        out.push_str("[AUDIT] ");
    }
    match record.message().as_str() {
        Some(s) if record.proven(crate::record::MESSAGE_PLAIN) => out.push_str(s),
        _ => write_message(out, record.message()),
    }
    write_fields_checked(out, record.fields(), record.proven(crate::record::KEYS_CLEAN));
}

/// Runs `f` with an empty, reused, thread-local line buffer, so building a line allocates
/// nothing once the buffer has grown. A record whose `Display` impl logs while being rendered
/// finds the buffer taken and gets a fresh one instead of a panic.
pub(crate) fn with_line_buffer<R>(f: impl FnOnce(&mut String) -> R) -> R {
    thread_local! {
        static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    with_reused(&LINE, f)
}

/// A buffer [`with_reused`] can hand out again and again.
pub(crate) trait Reusable: Default {
    fn clear(&mut self);
    fn capacity(&self) -> usize;
}

impl Reusable for String {
    fn clear(&mut self) {
        String::clear(self);
    }
    fn capacity(&self) -> usize {
        String::capacity(self)
    }
}

impl Reusable for Vec<u8> {
    fn clear(&mut self) {
        Vec::clear(self);
    }
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
}

/// Runs `f` with the buffer in the thread-local `key`, emptied; a fresh one when it is taken
/// (a `Display` impl that logs) or gone (a thread-local destructor that logs at thread exit).
pub(crate) fn with_reused<B: Reusable + 'static, R>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<B>>,
    f: impl FnOnce(&mut B) -> R,
) -> R {
    // Buffers that grew for one huge record are not kept forever.
    const KEEP: usize = 64 * 1024;
    let mut f = Some(f);
    // `try_with`: a thread-local destructor that logs during thread exit must not panic.
    let done = key.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        let f = f.take()?;
        buf.clear();
        let r = f(&mut buf);
        if buf.capacity() > KEEP {
            *buf = B::default();
        }
        Some(r)
    });
    match (done, f) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(&mut B::default()),
        (_, None) => unreachable!("f is taken only on the path that returns its result"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Level, Record};

    fn body(record: &Record<'_>) -> String {
        let mut out = String::new();
        write_body(&mut out, record);
        out
    }

    #[test]
    fn escapes_line_breaks_so_a_message_cannot_forge_a_line() {
        let line = body(&Record::new(Level::Info, format_args!("hello\n[AUDIT] forged")));
        assert_eq!(line, "hello\\n[AUDIT] forged");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn escapes_control_characters_and_unicode_separators() {
        let mut out = String::new();
        escape_into(&mut out, "a\r\tb\u{1b}[31mc\u{0}d\u{85}e\u{2028}f\u{7f}");
        assert_eq!(out, "a\\r\\tb\\u{1b}[31mc\\u{0}d\\u{85}e\\u{2028}f\\u{7f}");
    }

    #[test]
    fn byte_classes_match_their_definitions() {
        for b in 0..=255u8 {
            let c = CLASS[b as usize];
            assert_eq!(c & ESCAPE != 0, !(0x20..0x7f).contains(&b), "{b:#x}");
            assert_eq!(c & QUOTE != 0, b" \"=\\".contains(&b), "{b:#x}");
            let key = b.is_ascii_alphanumeric() || b"_.-".contains(&b);
            assert_eq!(c & NOT_KEY == 0, key, "{b:#x}");
        }
        // Every position of a long string counts, not only the first chunk.
        for at in 0..40 {
            let mut s = "a".repeat(40);
            s.replace_range(at..=at, "\n");
            assert_eq!(classify(&s) & ESCAPE, ESCAPE, "{at}");
        }
        assert_eq!(classify("plain.key-1_x"), 0);
    }

    #[test]
    fn keeps_non_ascii_text() {
        let mut out = String::new();
        escape_into(&mut out, "héllo wörld ✓");
        assert_eq!(out, "héllo wörld ✓");
    }

    #[test]
    fn renders_fields_quoting_when_needed() {
        let n = 3;
        let fields = [
            Field::new("attempt", &n),
            Field::new("reply", &"421 try later"),
            Field::new("empty", &""),
            Field::new("quote", &"a\"b\\c d"),
            Field::new("eq", &"a=b"),
            Field::new("bad key!", &"x"),
        ];
        let mut out = String::new();
        write_fields(&mut out, &fields);
        assert_eq!(
            out,
            r#" attempt=3 reply="421 try later" empty="" quote="a\"b\\c d" eq="a=b" bad_key_=x"#
        );
    }

    #[test]
    fn field_values_cannot_forge_a_line() {
        let fields = [Field::new("v", &"x\nINFO: forged")];
        let mut out = String::new();
        write_fields(&mut out, &fields);
        assert_eq!(out, r#" v="x\nINFO: forged""#);
        assert!(!out.contains('\n'));
    }

    #[test]
    fn audit_marker_comes_first() {
        // Inline: a `format_args!` with arguments does not live past its statement.
        let line = body(&Record::new(Level::Err, format_args!("denied {}", 7)).with_audit(true));
        assert_eq!(line, "[AUDIT] denied 7");
    }
}
