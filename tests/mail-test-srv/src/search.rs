//! Mailpit's search syntax, parsed into clauses (pure functions).
//!
//! A query is words separated by spaces; a double-quoted phrase is one word. Each word is a
//! free-text term or `field:value`, and a leading `-` or `!` negates it. Every clause must
//! hold. Matching is a case-insensitive substring match on text normalised the same way on
//! both sides (see [`normalize`]), as Mailpit's `LIKE '%term%'` on its search text is.
//!
//! Supported: `to:`, `from:`, `cc:`, `bcc:`, `reply-to:`, `addressed:` (any address field),
//! `subject:`, `message-id:`, `is:read`, `is:unread`, `has:attachment`, `has:inline`,
//! `larger:SIZE`, `smaller:SIZE` (`2kb`, `1.5m`), `after:DATE`, `before:DATE` (`2026-12-01` or
//! RFC 3339, UTC). Tags do not exist here: `tag:x` and `is:tagged` match nothing.

use std::time::SystemTime;

/// Which indexed text a term is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Subject,
    /// The `From` header and the envelope sender.
    From,
    /// The `To` header and the envelope recipients.
    To,
    Cc,
    Bcc,
    ReplyTo,
    MessageId,
    /// Everything: the fields above, the text body and attachment names.
    Text,
}

impl Field {
    /// The fields kept per message for exact checks, in their stored order.
    pub(crate) const STORED: [Field; 7] = [
        Field::Subject,
        Field::From,
        Field::To,
        Field::Cc,
        Field::Bcc,
        Field::ReplyTo,
        Field::MessageId,
    ];
}

/// One condition of a query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Term {
    /// `text` (normalised) occurs in one of `fields`.
    Contains {
        fields: &'static [Field],
        text: String,
    },
    Read(bool),
    HasAttachment,
    HasInline,
    Larger(u64),
    Smaller(u64),
    After(SystemTime),
    Before(SystemTime),
    /// Matches no message (tags).
    Nothing,
}

/// A term, possibly negated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clause {
    pub negated: bool,
    pub term: Term,
}

/// Mailpit's `ArgsParser`: split on spaces outside double quotes, drop the quotes.
fn words(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut flush = |current: &mut String| {
        let word = current.replace('"', "");
        let word = word.trim();
        if !word.is_empty() {
            out.push(word.to_owned());
        }
        current.clear();
    };
    for c in query.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ' ' if !quoted => flush(&mut current),
            _ => current.push(c),
        }
    }
    flush(&mut current);
    out
}

/// Parses a query into clauses. Never fails: what is not a known `field:` is free text.
pub(crate) fn parse(query: &str) -> Vec<Clause> {
    let mut clauses = Vec::new();
    for word in words(query) {
        let (negated, word) = match word.strip_prefix(['-', '!']) {
            Some(rest) if !rest.is_empty() => (true, rest.to_owned()),
            _ => (false, word),
        };
        let lower = word.to_lowercase();
        let term = match lower.split_once(':') {
            Some((key, value)) => keyed(key, value).unwrap_or_else(|| text(&lower)),
            None => text(&lower),
        };
        if let Some(term) = term {
            clauses.push(Clause { negated, term });
        }
    }
    clauses
}

fn text(word: &str) -> Option<Term> {
    contains(&[Field::Text], word)
}

fn contains(fields: &'static [Field], value: &str) -> Option<Term> {
    let text = normalize(value);
    (!text.is_empty()).then_some(Term::Contains { fields, text })
}

/// A `key:value` word; `None` when the key is not one we know (then the word is free text).
fn keyed(key: &str, value: &str) -> Option<Option<Term>> {
    const ADDRESSED: &[Field] = &[Field::From, Field::To, Field::Cc, Field::Bcc, Field::ReplyTo];
    Some(match key {
        "to" => contains(&[Field::To], value),
        "from" => contains(&[Field::From], value),
        "cc" => contains(&[Field::Cc], value),
        "bcc" => contains(&[Field::Bcc], value),
        "reply-to" => contains(&[Field::ReplyTo], value),
        "addressed" => contains(ADDRESSED, value),
        "subject" => contains(&[Field::Subject], value),
        "message-id" => contains(&[Field::MessageId], value),
        "tag" => Some(Term::Nothing),
        "is" => match value {
            "read" => Some(Term::Read(true)),
            "unread" => Some(Term::Read(false)),
            "tagged" => Some(Term::Nothing),
            _ => return None,
        },
        "has" => match value {
            "attachment" | "attachments" => Some(Term::HasAttachment),
            "inline" | "inlines" => Some(Term::HasInline),
            _ => return None,
        },
        "larger" => Some(Term::Larger(size(value)?)),
        "smaller" => Some(Term::Smaller(size(value)?)),
        // Mailpit ignores a date it cannot parse; so do we (the clause is dropped).
        "after" => date(value).map(Term::After),
        "before" => date(value).map(Term::Before),
        _ => return None,
    })
}

/// `2kb`, `1.5m`, `300` (bytes); k/kb and m/mb in any case. `None` when it does not parse
/// or is zero (Mailpit then treats the word as free text).
fn size(value: &str) -> Option<u64> {
    let split = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (number * factor) as u64;
    (bytes > 0).then_some(bytes)
}

/// `2026-12-01` (midnight UTC) or an RFC 3339 time.
fn date(value: &str) -> Option<SystemTime> {
    let value = value.to_uppercase();
    humantime::parse_rfc3339_weak(&value)
        .or_else(|_| humantime::parse_rfc3339_weak(&format!("{value} 00:00:00")))
        .ok()
}

/// What [`normalize`] and [`push_tokens`] make of each byte: ASCII separators, ASCII
/// alphanumerics, other ASCII, and the bytes of other characters.
const SEPARATOR: u8 = 1;
const ALPHANUMERIC: u8 = 2;
const OTHER_ASCII: u8 = 3;
const NOT_ASCII: u8 = 0;
const CLASS: [u8; 256] = {
    let mut table = [NOT_ASCII; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = if c.is_ascii_whitespace()
            || c.is_ascii_control()
            || matches!(c, b'<' | b'>' | b'"' | b',' | b';' | b'(' | b')')
        {
            SEPARATOR
        } else if c.is_ascii_alphanumeric() {
            ALPHANUMERIC
        } else {
            OTHER_ASCII
        };
        b += 1;
    }
    table
};

/// Where the run of bytes from `i` whose class passes `class` ends.
fn run_end(bytes: &[u8], i: usize, class: impl Fn(u8) -> bool) -> usize {
    bytes[i..].iter().position(|&c| !class(CLASS[c as usize])).map_or(bytes.len(), |n| i + n)
}

/// Where the run of ASCII alphanumerics from `i` ends: eight bytes at a time while all eight
/// are, then byte by byte (a long token, such as a line of smtp-source's `X`s, costs little).
fn alphanumeric_end(bytes: &[u8], mut i: usize) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    /// For eight bytes below 0x80: the high bit of each byte of the result says
    /// `lo <= byte <= hi` (no sum carries into the next byte).
    fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
        let above = x + ONES * u64::from(0x7f - hi);
        let at_least = x + ONES * u64::from(0x80 - lo);
        at_least & !above & HIGH
    }
    while let Some(Ok(word)) = bytes.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let x = u64::from_le_bytes(word);
        // Bytes of 0x80 and above fail first; `| 0x20` lowercases a letter.
        if x & HIGH != 0
            || in_range(x, b'0', b'9') | in_range(x | (ONES * 0x20), b'a', b'z') != HIGH
        {
            break;
        }
        i += 8;
    }
    run_end(bytes, i, |c| c == ALPHANUMERIC)
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '\u{feff}'
}

/// Mailpit's `cleanString`: lowercase; white space, control characters and `<>",;()` become
/// spaces; runs of white space become one space; trimmed. Stored text and query terms both go
/// through it.
///
/// It runs over every candidate a search checks, so runs of ASCII are copied and lowercased
/// whole; only other characters go through `char` handling.
pub(crate) fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    normalize_into(s, &mut out, 0);
    out
}

/// Appends [`normalize`]`(s)` to the field of `out` that begins at `field`, as if `s` were
/// joined to the field's text so far with a space: `normalize(a + " " + b)` is
/// `normalize_into(b)` after `normalize_into(a)`.
pub(crate) fn normalize_into(s: &str, out: &mut String, field: usize) {
    let bytes = s.as_bytes();
    let mut space = out.len() > field;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (end, separator) = if b.is_ascii() {
            if CLASS[b as usize] == SEPARATOR {
                (i + 1, true)
            } else {
                (run_end(bytes, i, |c| c == ALPHANUMERIC || c == OTHER_ASCII), false)
            }
        } else {
            let Some(c) = s[i..].chars().next() else { break };
            (i + c.len_utf8(), is_separator(c))
        };
        if separator {
            space = out.len() > field;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            let at = out.len();
            if b.is_ascii() {
                out.push_str(&s[i..end]);
                out[at..].make_ascii_lowercase();
            } else {
                out.extend(s[i..end].chars().flat_map(char::to_lowercase));
            }
        }
        i = end;
    }
}

/// The longest token kept in the index (longer ones are cut; a query token that long makes
/// the term inexact, so candidates are checked against the text).
pub(crate) const MAX_TOKEN: usize = 64;

/// The index's tokens of normalised text: maximal runs of alphanumeric characters, cut to
/// [`MAX_TOKEN`] bytes (on a character boundary).
pub(crate) fn tokens(normalized: &str) -> impl Iterator<Item = &str> {
    normalized.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(|t| {
        if t.len() <= MAX_TOKEN {
            return t;
        }
        let mut end = MAX_TOKEN;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        &t[..end]
    })
}

/// The [`tokens`] of `normalize(text)`, without building the normalised text: appends each
/// token to `out` (so `out` stays UTF-8) and its byte range in `out` to `ranges`. This is how the index reads message
/// bodies, in one pass: a separator of [`normalize`] is never alphanumeric, so only the
/// lowercasing matters, and runs of ASCII are lowercased whole.
pub(crate) fn push_tokens(text: &str, out: &mut Vec<u8>, ranges: &mut Vec<(u32, u32)>) {
    /// The token being built: where it starts in `out`, and whether it reached `MAX_TOKEN`.
    struct Current {
        start: usize,
        full: bool,
    }
    fn end(current: &mut Option<Current>, out: &[u8], ranges: &mut Vec<(u32, u32)>) {
        if let Some(t) = current.take() {
            ranges.push((t.start as u32, out.len() as u32));
        }
    }
    let bytes = text.as_bytes();
    let mut current: Option<Current> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            if CLASS[b as usize] != ALPHANUMERIC {
                end(&mut current, out, ranges);
                i += 1;
                continue;
            }
            let run_end = alphanumeric_end(bytes, i);
            let t = current.get_or_insert(Current { start: out.len(), full: false });
            if !t.full {
                let room = MAX_TOKEN - (out.len() - t.start);
                let take = (run_end - i).min(room);
                // ASCII alphanumerics: 0x20 lowercases a letter and leaves a digit as it is.
                out.extend(bytes[i..i + take].iter().map(|b| b | 0x20));
                t.full = take < run_end - i;
            }
            i = run_end;
            continue;
        }
        let Some(c) = text[i..].chars().next() else { break };
        i += c.len_utf8();
        for lower in c.to_lowercase() {
            if !lower.is_alphanumeric() {
                end(&mut current, out, ranges);
                continue;
            }
            let t = current.get_or_insert(Current { start: out.len(), full: false });
            if !t.full && out.len() - t.start + lower.len_utf8() <= MAX_TOKEN {
                out.extend_from_slice(lower.encode_utf8(&mut [0; 4]).as_bytes());
            } else {
                t.full = true;
            }
        }
    }
    end(&mut current, out, ranges);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn c(negated: bool, fields: &'static [Field], text: &str) -> Clause {
        Clause { negated, term: Term::Contains { fields, text: text.to_owned() } }
    }

    #[test]
    fn words_quotes_fields_and_negation() {
        assert_eq!(
            parse(r#"to:Bob@X.test "hello  World" -subject:spam !from:"Jo Q" plain"#),
            [
                c(false, &[Field::To], "bob@x.test"),
                c(false, &[Field::Text], "hello world"),
                c(true, &[Field::Subject], "spam"),
                c(true, &[Field::From], "jo q"),
                c(false, &[Field::Text], "plain"),
            ]
        );
        assert_eq!(parse("   "), []);
        assert_eq!(parse("-"), [c(false, &[Field::Text], "-")]);
        // An unknown key is free text, whole.
        assert_eq!(parse("x-mailer:foo"), [c(false, &[Field::Text], "x-mailer:foo")]);
        assert_eq!(parse("to:"), []);
    }

    #[test]
    fn special_terms() {
        let terms: Vec<Term> =
            parse("is:read is:UNREAD has:attachments larger:2kb smaller:1.5m tag:x")
                .into_iter()
                .map(|c| c.term)
                .collect();
        assert_eq!(
            terms,
            [
                Term::Read(true),
                Term::Read(false),
                Term::HasAttachment,
                Term::Larger(2048),
                Term::Smaller(1_572_864),
                Term::Nothing
            ]
        );
        assert_eq!(parse("larger:huge"), [c(false, &[Field::Text], "larger:huge")]);
        let after = parse("after:2026-12-01");
        assert_eq!(
            after[0].term,
            Term::After(humantime::parse_rfc3339("2026-12-01T00:00:00Z").unwrap())
        );
        assert_eq!(parse("before:someday"), []);
    }

    /// The definition of [`normalize`], one `char` at a time (the fast version must agree).
    fn normalize_by_chars(s: &str) -> String {
        let mut out = String::new();
        let mut space = false;
        for c in s.chars() {
            if c.is_whitespace() || c.is_control() || "<>\",;()\u{feff}".contains(c) {
                space = !out.is_empty();
                continue;
            }
            if space {
                out.push(' ');
                space = false;
            }
            out.extend(c.to_lowercase());
        }
        out
    }

    fn pushed_tokens(text: &str) -> Vec<String> {
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        push_tokens(text, &mut out, &mut ranges);
        let token = |&(a, b): &(u32, u32)| String::from_utf8(out[a as usize..b as usize].to_vec());
        ranges.iter().map(|r| token(r).expect("UTF-8")).collect()
    }

    /// Text that exercises both paths: ASCII runs, separators, letters whose lowercase is
    /// longer or ASCII (`İ`, the Kelvin sign), non-ASCII white space and controls, long runs.
    fn text() -> impl Strategy<Value = String> {
        let pieces = proptest::sample::select(vec![
            "a",
            "Z",
            "9",
            " ",
            "\t",
            "\r\n",
            "<",
            ">",
            "\"",
            ",",
            ";",
            "(",
            ")",
            "@",
            ".",
            "-",
            "\u{7f}",
            "\u{0}",
            "é",
            "É",
            "İ",
            "\u{212a}",
            "ß",
            "ẞ",
            "Σ",
            "\u{a0}",
            "\u{2028}",
            "\u{85}",
            "\u{feff}",
            "\u{307}",
            "日本",
            "ǅ",
            "x".repeat(70).leak(),
            "é".repeat(40).leak(),
        ]);
        proptest::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        #[test]
        fn normalize_agrees_with_its_definition(s in text()) {
            proptest::prop_assert_eq!(normalize(&s), normalize_by_chars(&s));
        }

        #[test]
        fn pushed_tokens_are_the_tokens_of_the_normalised_text(s in text()) {
            let want: Vec<String> = tokens(&normalize(&s)).map(str::to_owned).collect();
            proptest::prop_assert_eq!(pushed_tokens(&s), want);
        }

        #[test]
        fn the_fast_paths_agree_on_any_string(s in ".{0,80}") {
            proptest::prop_assert_eq!(normalize(&s), normalize_by_chars(&s));
            let want: Vec<String> = tokens(&normalize(&s)).map(str::to_owned).collect();
            proptest::prop_assert_eq!(pushed_tokens(&s), want);
        }
    }

    #[test]
    fn alphanumeric_runs_end_at_every_other_byte() {
        for b in 0..=255u8 {
            for at in 0..20 {
                let mut bytes = b"aZ09bY18cX27dW36eV45".to_vec();
                bytes[at] = b;
                let want = if b.is_ascii_alphanumeric() { bytes.len() } else { at };
                assert_eq!(alphanumeric_end(&bytes, 0), want, "byte {b:#x} at {at}");
            }
        }
    }

    #[test]
    fn normalize_and_tokens() {
        assert_eq!(normalize(" Jo Q <Jo@X.test>,\r\n\tB "), "jo q jo@x.test b");
        assert_eq!(normalize("ÉTÉ"), "été");
        assert_eq!(
            tokens("jo q jo@x.test b").collect::<Vec<_>>(),
            ["jo", "q", "jo", "x", "test", "b"]
        );
        let long = "é".repeat(40);
        assert_eq!(tokens(&long).next().unwrap().len(), MAX_TOKEN);
        assert_eq!(pushed_tokens("Jo Q <Jo@X.test>, İx"), ["jo", "q", "jo", "x", "test", "i", "x"]);
        assert_eq!(pushed_tokens(&"X".repeat(80)), ["x".repeat(MAX_TOKEN)]);
    }
}
