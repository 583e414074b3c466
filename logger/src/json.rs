//! JSON lines for [`crate::Stdout`]: string escaping, numbers, and the part of a record's
//! object after its fixed columns. Hand-written: a record is one small, flat object whose keys
//! are known to be clean, so a serialiser would only add work to the hot path.
//!
//! The invariant is the text format's: whatever a message or value holds, the object is one
//! line. JSON requires `"`, `\` and C0 controls escaped; DEL, the C1 controls and U+2028/U+2029
//! are escaped too (`\u007f`, `\u0085`, `\u2028`), so no reader that splits on any Unicode line
//! break, and no terminal, sees one.

use std::fmt::{self, Write as _};

use crate::format::{ESCAPE, QUOTE, classify, push_key};
use crate::record::{KEYS_CLEAN, KEYS_UNRESERVED, MESSAGE_JSON_PLAIN};
use crate::{Field, Record, Value};

/// Field keys a record's own columns use; a field with one of these keys is written with a `_`
/// in front, so a field can never stand in for the level, the audit flag or the message.
pub(crate) const RESERVED: [&str; 5] = ["ts", "level", "program", "audit", "message"];

/// Appends `s` as the inside of a JSON string (no quotes).
pub(crate) fn escape_into(out: &mut String, s: &str) {
    // `QUOTE` covers `"` and `\` (and a space and `=`, which only send a clean string down the
    // exact path below); `ESCAPE` covers control bytes and every non-ASCII byte.
    if classify(s) & (ESCAPE | QUOTE) == 0 {
        out.push_str(s);
        return;
    }
    let mut clean = 0;
    for (i, c) in s.char_indices() {
        let escape: &str = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&s[clean..i]);
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", c as u32);
                clean = i + c.len_utf8();
                continue;
            }
            _ => continue,
        };
        out.push_str(&s[clean..i]);
        out.push_str(escape);
        clean = i + 1;
    }
    out.push_str(&s[clean..]);
}

/// A `fmt::Write` that JSON-escapes as it appends, so `format_args!` output goes straight
/// into the line without a temporary string.
struct Escaper<'a>(&'a mut String);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// Whether `s` is a JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub(crate) fn is_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Appends one value: integers and booleans bare, strings as JSON strings, anything else
/// bare when its `Display` text is a JSON number (a float), else as a string.
fn write_value(out: &mut String, value: Value<'_>) {
    let display = match value {
        Value::Str(s) => {
            out.push('"');
            escape_into(out, s);
            out.push('"');
            return;
        }
        Value::Display(d) => d,
        other => return other.write_raw(out),
    };
    let start = out.len();
    // Rendered straight into the line; a Display impl that errors just stops early.
    let _ = write!(out, "{display}");
    let rendered = &out[start..];
    if is_number(rendered) {
        return;
    }
    if classify(rendered) & (ESCAPE | QUOTE) == 0 {
        // Clean text: only the quotes are missing (a short copy of the value to make room).
        out.insert(start, '"');
        out.push('"');
        return;
    }
    // Needs escaping: rare (a control character, a quote or non-ASCII text), so a copy is fine.
    let raw = out.split_off(start);
    out.push('"');
    escape_into(out, &raw);
    out.push('"');
}

/// Appends `,"message":"...",` and each field as `"key":value`, then `}` (the columns before
/// the message, and the line break after, are the caller's).
pub(crate) fn write_body(out: &mut String, record: &Record<'_>) {
    out.push_str(",\"message\":\"");
    let message = record.message();
    match message.as_str() {
        Some(s) if record.proven(MESSAGE_JSON_PLAIN) => out.push_str(s),
        Some(s) => escape_into(out, s),
        // Writing to a String cannot fail; a Display impl that errors just stops early.
        None => drop(Escaper(out).write_fmt(message)),
    }
    out.push('"');
    let keys = (record.proven(KEYS_CLEAN), record.proven(KEYS_UNRESERVED));
    write_fields(out, record.fields(), keys);
    out.push('}');
}

/// Appends `,"key":value` for each field. Keys are cleaned as in the text format (characters
/// outside `[A-Za-z0-9_.-]` become `_`), so they never need escaping; unless the macros proved
/// it already, a key is checked against the columns' names.
fn write_fields(out: &mut String, fields: &[Field<'_>], keys: (bool, bool)) {
    let (clean, unreserved) = keys;
    for field in fields {
        out.push_str(",\"");
        if !unreserved && RESERVED.contains(&field.key) {
            out.push('_');
        }
        push_key(out, field.key, clean);
        out.push_str("\":");
        write_value(out, field.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s);
        out
    }

    #[test]
    fn escapes_every_control_character_and_the_unicode_line_breaks() {
        assert_eq!(esc("plain text"), "plain text");
        assert_eq!(esc("a\"b\\c"), r#"a\"b\\c"#);
        assert_eq!(esc("l1\nl2\r\t"), r"l1\nl2\r\t");
        assert_eq!(esc("\u{0}\u{1b}[31m\u{7f}\u{85}"), r"\u0000\u001b[31m\u007f\u0085");
        assert_eq!(esc("x\u{2028}y\u{2029}z"), r"x\u2028y\u2029z");
        assert_eq!(esc("héllo ✓ \u{10ffff}"), "héllo ✓ \u{10ffff}");
        // Every char below U+00A0 that is not printable ASCII comes out escaped.
        for c in (0..0xa0u32).filter_map(char::from_u32) {
            let e = esc(&c.to_string());
            assert!(e.bytes().all(|b| (0x20..0x7f).contains(&b)), "{c:?} -> {e:?}");
        }
    }

    #[test]
    fn numbers_are_json_numbers_only() {
        for n in ["0", "-0", "3", "-12", "0.5", "1e9", "2.5E-3", "1e+2", "18446744073709551615"] {
            assert!(is_number(n), "{n}");
        }
        for s in ["", "-", "01", "1.", ".5", "1e", "+1", "0x10", "NaN", "inf", "1 ", "1_000"] {
            assert!(!is_number(s), "{s}");
        }
    }

    #[test]
    fn values_keys_and_the_message() {
        let mut out = String::new();
        let (n, f, nan) = (3, 0.25, f64::NAN);
        let fields = [
            Field::new("attempt", &n),
            Field::new("ratio", &f),
            Field::new("bad", &nan),
            Field::new("peer", &"127.0.0.1:25"),
            Field::new("reply", &"421 \"busy\"\n"),
            Field::new("empty", &""),
            Field::new("bad key\"", &1),
            Field::new("level", &"err"),
            Field::new("message", &"forged"),
        ];
        let quote = "a\"b";
        write_body(
            &mut out,
            &Record::new(Level::Info, format_args!("sent {quote}")).with_fields(&fields),
        );
        assert_eq!(
            out,
            r#","message":"sent a\"b","attempt":3,"ratio":0.25,"bad":"NaN","peer":"127.0.0.1:25","reply":"421 \"busy\"\n","empty":"","bad_key_":1,"_level":"err","_message":"forged"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&format!("{{\"x\":0{out}")).unwrap();
        assert_eq!(parsed["attempt"], 3);
        assert_eq!(parsed["reply"], "421 \"busy\"\n");
        assert_eq!(parsed["_level"], "err");
    }
}
