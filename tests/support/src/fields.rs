//! Reading our log lines back: the `key=value` fields (with the logger's quoting and
//! escaping undone), the `event=` names, and the time of day of the short format.
//!
//! The logger writes a value bare when it holds no space, `"`, `=` or `\`, else in double
//! quotes with `"` and `\` backslash-escaped; in both forms LF, CR and tab are written `\n`,
//! `\r`, `\t` and other control characters `\u{1b}`. A field is a space-separated token
//! `key=value` with a key of `[A-Za-z0-9_.-]`; fields follow the message, so when a key
//! appears twice (the message happened to contain `key=...`), the last one is the field.

use std::time::Duration;

/// Every `key=value` field of `line`, in order, values unescaped.
pub fn fields(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // A token starts at the beginning of the line or after a space.
        if i > 0 && bytes[i - 1] != b' ' || bytes[i] == b' ' {
            i = skip_token(line, i);
            continue;
        }
        let key_end = i + bytes[i..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
            .unwrap_or(bytes.len() - i);
        if key_end == i || bytes.get(key_end) != Some(&b'=') {
            i = skip_token(line, i);
            continue;
        }
        let (value, end) = read_value(line, key_end + 1);
        out.push((line[i..key_end].to_owned(), value));
        i = end;
    }
    out
}

/// The value of field `key` in `line` (the last one, see the module docs), unescaped.
pub fn field(line: &str, key: &str) -> Option<String> {
    fields(line).into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The `event=` value of each line that has one, in order: the sequence of events a test
/// asserts on (`events(&mock.get_all())`).
pub fn events<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    lines.iter().filter_map(|line| field(line.as_ref(), "event")).collect()
}

/// The UTC time of day at the start of a short-format line (`HH:MM:SS.ffffff ...`).
pub fn time_of_day(line: &str) -> Option<Duration> {
    let stamp = line.get(..15)?;
    let (hms, micros) = stamp.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || micros.len() != 6 {
        return None;
    }
    let micros: u64 = micros.parse().ok()?;
    Some(Duration::from_micros(((h * 60 + m) * 60 + s) * 1_000_000 + micros))
}

/// The index just past the token starting at `i` (a quoted part keeps its spaces).
fn skip_token(line: &str, i: usize) -> usize {
    let bytes = line.as_bytes();
    if bytes[i] == b' ' {
        return i + 1;
    }
    let mut j = i;
    while j < bytes.len() && bytes[j] != b' ' {
        if bytes[j] == b'"' {
            j = read_value(line, j).1;
        } else {
            j += 1;
        }
    }
    j
}

/// Reads a value starting at `start`: quoted (up to the closing unescaped `"`) or bare (up to
/// the next space). Returns it unescaped and the index just past it.
fn read_value(line: &str, start: usize) -> (String, usize) {
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut escaped = false;
        for (at, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return (unescape(&quoted[..at]), start + 1 + at + 1),
                _ => {}
            }
        }
        // No closing quote: the value runs to the end of the line.
        return (unescape(quoted), line.len());
    }
    let end = rest.find(' ').unwrap_or(rest.len());
    (unescape(&rest[..end]), start + end)
}

/// Undoes the logger's escapes: `\n`, `\r`, `\t`, `\"`, `\\` and `\u{hex}`. An unknown
/// escape is kept as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                let tail: String = chars.clone().skip(1).take_while(|&c| c != '}').collect();
                let closed = chars.clone().nth(1 + tail.chars().count()) == Some('}');
                let decoded = tail
                    .strip_prefix('{')
                    .filter(|_| closed)
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .and_then(char::from_u32);
                match decoded {
                    Some(decoded) => {
                        out.push(decoded);
                        // 'u', '{', the hex digits and '}'.
                        for _ in 0..tail.len() + 2 {
                            chars.next();
                        }
                        continue;
                    }
                    None => {
                        out.push('\\');
                        continue;
                    }
                }
            }
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bare_and_quoted_values_with_escapes() {
        let line = r#"22:14:03.472920 6 mailer backing off event=backoff attempt=2 reply="421 try later" empty="" quote="a\"b\\c d" eq="a=b" nl=a\nb uni="x\u{1b}[31m\u{2028}y""#;
        let got = fields(line);
        let pairs: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("event", "backoff"),
                ("attempt", "2"),
                ("reply", "421 try later"),
                ("empty", ""),
                ("quote", "a\"b\\c d"),
                ("eq", "a=b"),
                ("nl", "a\nb"),
                ("uni", "x\u{1b}[31m\u{2028}y"),
            ]
        );
        assert_eq!(field(line, "reply").as_deref(), Some("421 try later"));
        assert_eq!(field(line, "missing"), None);
    }

    #[test]
    fn the_last_occurrence_wins_and_quoted_spaces_do_not_start_fields() {
        let line = r#"INFO: saw event=fake in text msg="x event=inner y" event=real"#;
        assert_eq!(field(line, "event").as_deref(), Some("real"));
        assert_eq!(field(line, "msg").as_deref(), Some("x event=inner y"));
        assert_eq!(events(&[line, "no fields here", "event=second"]), ["real", "second"]);
        // Not a field: `=` without a key, a key glued to the previous word by a quote.
        assert!(fields(r#"=x "a"b=c"#).is_empty());
        // An unterminated quote runs to the end; unknown escapes stay as written.
        assert_eq!(field(r#"k="a b \q"#, "k").as_deref(), Some(r"a b \q"));
        assert_eq!(field(r"k=\u{zz}", "k").as_deref(), Some(r"\u{zz}"));
        assert_eq!(field(r"k=\u{1b", "k").as_deref(), Some(r"\u{1b"));
    }

    #[test]
    fn reads_the_time_of_day() {
        let t = time_of_day("22:14:03.472920 6 mailer x").unwrap();
        assert_eq!(t, Duration::from_micros(((22 * 60 + 14) * 60 + 3) * 1_000_000 + 472_920));
        assert_eq!(time_of_day("22:14:03 6 mailer"), None);
        assert_eq!(time_of_day("short"), None);
    }
}
