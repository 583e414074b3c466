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

/// Mailpit's `cleanString`: lowercase; white space, control characters and `<>",;()` become
/// spaces; runs of white space become one space; trimmed. Stored text and query terms both go through it.
pub(crate) fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        // ASCII first: this runs over every byte of every message the index takes in.
        let separator = if c.is_ascii() {
            c.is_ascii_whitespace()
                || c.is_ascii_control()
                || matches!(c, '<' | '>' | '"' | ',' | ';' | '(' | ')')
        } else {
            c.is_whitespace() || c.is_control() || c == '\u{feff}'
        };
        if separator {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
