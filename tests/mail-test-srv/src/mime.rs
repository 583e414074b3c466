//! What a stored message says, read from its bytes: headers unfolded as RFC 5322 says, and the
//! MIME structure (text, HTML, attachments, charsets) parsed by `mail-parser`.
//!
//! Nothing here is cached: a 1 KB message parses in a few microseconds, so the store keeps
//! only the bytes and parses again when a message is read (see `store.rs` for why).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};
use serde::Serialize;

/// A mailbox named in a header (`From`, `To`, `Cc`, `Bcc`, `Reply-To`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The display name, decoded (empty when there is none).
    pub name: String,
    /// The address (empty for a group name without members).
    pub address: String,
}

/// One attachment or inline part (everything that is not the text or HTML body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The MIME part number, as IMAP counts them: `2`, `1.2`. Used in
    /// `GET /api/v1/message/{ID}/part/{PartID}`.
    pub part_id: String,
    /// The file name (`Content-Disposition` `filename`, else `Content-Type` `name`).
    pub filename: String,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    /// The `Content-ID`, without angle brackets.
    pub content_id: String,
    /// Decoded size in bytes.
    pub size: usize,
    /// Whether the part is shown inline (`Content-Disposition: inline`, or an image with a
    /// `Content-ID` that the HTML refers to) rather than offered as a download.
    pub inline: bool,
}

/// The parsed view of a message's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mime {
    /// Every top-level header in order: name as sent, value unfolded and trimmed, not decoded.
    pub headers: Vec<(String, String)>,
    /// The `Subject`, unfolded and RFC 2047-decoded.
    pub subject: Option<String>,
    /// The `Message-ID` header as sent (unfolded, with its angle brackets).
    pub message_id: Option<String>,
    pub addresses: Addresses,
    /// The `Date` header, if it parses.
    pub date: Option<SystemTime>,
    /// The first text/plain body part, decoded to UTF-8; an HTML-only message gets its HTML
    /// converted to text (as Mailpit does).
    pub text: Option<String>,
    /// The first text/html body part, decoded to UTF-8.
    pub html: Option<String>,
    /// Boulder's `body`: the text part, else the HTML source, else the raw body after the
    /// blank line (invalid UTF-8 becomes U+FFFD).
    pub body: String,
    /// Attachments and inline parts, in MIME order.
    pub attachments: Vec<Attachment>,
}

/// The address headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Addresses {
    pub from: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub reply_to: Vec<Address>,
}

impl Addresses {
    fn of(message: &mail_parser::Message<'_>) -> Addresses {
        Addresses {
            from: addresses(message.from()),
            to: addresses(message.to()),
            cc: addresses(message.cc()),
            bcc: addresses(message.bcc()),
            reply_to: addresses(message.reply_to()),
        }
    }
}

/// One part's decoded content, for a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartContent {
    pub content_type: String,
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// RFC 5322 unfolding: a folded header is unfolded by removing each CRLF that is followed by
/// white space (the white space stays). The value is then trimmed at both ends. A bare LF is
/// treated as a line end too.
pub(crate) fn unfold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for piece in raw.split('\n') {
        out.push_str(piece.strip_suffix('\r').unwrap_or(piece));
    }
    let trimmed = out.trim_matches(|c| c == ' ' || c == '\t');
    if trimmed.len() == out.len() { out } else { trimmed.to_owned() }
}

/// Splits off the header block the way the parser would not: content without any header
/// (`just a body line\r\n`) is all body.
fn body_after_headers(data: &[u8]) -> &[u8] {
    let mut pos = 0;
    while pos < data.len() {
        let end = memchr_newline(&data[pos..]).map_or(data.len(), |i| pos + i + 1);
        let line = &data[pos..end];
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            return &data[end..];
        }
        pos = end;
    }
    &[]
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Parses a message. Never fails: content the MIME parser cannot read at all (no header
/// block) is all body.
pub(crate) fn parse(data: &[u8]) -> Mime {
    let Some(message) = MessageParser::default().parse(data).filter(|m| has_headers(m, data))
    else {
        // No header block: all body (after an empty header block's blank line, if any),
        // and plain text as RFC 2045 says content without a Content-Type is.
        let body = data.strip_prefix(b"\r\n").or_else(|| data.strip_prefix(b"\n")).unwrap_or(data);
        let body = String::from_utf8_lossy(body).into_owned();
        return Mime { text: Some(body.clone()), body, ..Mime::default() };
    };
    let headers: Vec<(String, String)> =
        message.headers_raw().map(|(name, value)| (name.to_owned(), unfold(value))).collect();
    let subject = subject_of(&message);
    let message_id =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("Message-ID")).map(|(_, v)| v.clone());
    let date = message.date().and_then(|d| u64::try_from(d.to_timestamp()).ok());

    let first_text = message.text_part(0);
    let first_html = message.html_part(0).filter(|p| matches!(p.body, PartType::Html(_)));
    let text = message.body_text(0).map(Cow::into_owned);
    let html = first_html.and_then(|p| p.text_contents()).map(str::to_owned);
    let body = match (first_text.map(|p| &p.body), &html) {
        (Some(PartType::Text(t)), _) => t.to_string(),
        (_, Some(h)) => h.clone(),
        _ => String::from_utf8_lossy(body_after_headers(data)).into_owned(),
    };
    let attachments = attachments(&message);
    Mime {
        subject,
        message_id,
        addresses: Addresses::of(&message),
        date: date.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        text,
        html,
        body,
        attachments,
        headers,
    }
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    a.map(|a| {
        a.iter()
            .map(|addr| Address {
                name: addr.name().unwrap_or_default().to_owned(),
                address: addr.address().unwrap_or_default().to_owned(),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// What the search index reads of a message: the [`Mime`] fields it matches, without the
/// header list, the HTML and `body` (cheaper to build for every message).
#[derive(Debug, Default)]
pub(crate) struct Searchable {
    pub subject: String,
    pub message_id: String,
    pub addresses: Addresses,
    /// The text (as [`Mime::text`]) and the attachment names, space-separated.
    pub text: String,
    pub attachments: usize,
    pub inline: usize,
}

/// [`Searchable`] of a message: the same values [`parse`] gives.
pub(crate) fn searchable(data: &[u8]) -> Searchable {
    let Some(message) = MessageParser::default().parse(data).filter(|m| has_headers(m, data))
    else {
        return Searchable { text: parse(data).text.unwrap_or_default(), ..Searchable::default() };
    };
    let mut text = message.body_text(0).map(Cow::into_owned).unwrap_or_default();
    let (mut attachments, mut inline) = (0, 0);
    for a in self::attachments(&message) {
        text.push(' ');
        text.push_str(&a.filename);
        if a.inline { inline += 1 } else { attachments += 1 }
    }
    let message_id = message
        .headers_raw()
        .find(|(k, _)| k.eq_ignore_ascii_case("Message-ID"))
        .map(|(_, v)| unfold(v))
        .unwrap_or_default();
    Searchable {
        subject: subject_of(&message).unwrap_or_default(),
        message_id,
        addresses: Addresses::of(&message),
        text,
        attachments,
        inline,
    }
}

/// What the search index reads of a message that needs no MIME decoding, straight from its
/// bytes: the raw values of the headers it indexes, and the text.
///
/// Most test mail is like this (smtp-source's, a plain-text message from lettre or smtplib),
/// and for it a full parse is most of the index's cost. [`plain`] takes a message only when
/// every value here means, once normalised for search, what [`searchable`] makes of it:
///
/// - the header block is CRLF lines of `Name: value` (names printable ASCII), ended by an
///   empty line; headers the index does not read may be folded;
/// - `Subject`, the address headers and `Message-ID` each appear at most once, on one line of
///   printable ASCII, without an RFC 2047 encoded word;
/// - each address header is a list of plain mailboxes (`a@x.test`, `Jo Q <a@x.test>`,
///   `"Q, Jo" <a@x.test>`), so that, with `<>",` read as white space, its text is the names
///   and addresses in order, which is all the index keeps of it;
/// - no `Content-Type` or `text/plain` (any parameters but a repeated one), in no charset,
///   UTF-8, or US-ASCII/ISO-8859-1 with an ASCII body; `Content-Transfer-Encoding` absent or
///   `7bit`, `8bit`, `binary`; no `Content-Disposition`;
/// - no `Date` line ends in a letter (mail-parser reads two bytes past a letter zone, so
///   `Date: ... Z` swallows the line end and the header after it).
///
/// The tests check the equivalence on generated messages.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plain<'a> {
    pub subject: &'a str,
    /// `From`, `To`, `Cc`, `Bcc`, `Reply-To`, as sent ("" when absent).
    pub addresses: [&'a str; 5],
    pub message_id: &'a str,
    /// The body, as [`Searchable::text`] has it.
    pub text: Cow<'a, str>,
}

/// The headers [`plain`] reads, by their index in it: the value fields of [`Plain`] first.
const PLAIN_HEADERS: [&str; 10] = [
    "subject",
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "message-id",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
];

/// [`Plain`] of a message, or `None` when it needs the full parse ([`searchable`]).
pub(crate) fn plain(data: &[u8]) -> Option<Plain<'_>> {
    let mut plain = Plain::default();
    let mut seen = 0u16;
    let mut charset = None;
    let mut pos = 0;
    let body = loop {
        let (line, next) = crlf_line(data, pos)?;
        if line.is_empty() {
            break data.get(next..)?;
        }
        let colon = memchr::memchr(b':', line)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let date = name.eq_ignore_ascii_case(b"date") || name.eq_ignore_ascii_case(b"resent-date");
        if date && value.last().is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        pos = next;
        let known = PLAIN_HEADERS.iter().position(|h| name.eq_ignore_ascii_case(h.as_bytes()));
        let Some(k) = known else {
            // A header the index does not read: skip its continuation lines.
            while matches!(data.get(pos), Some(b' ' | b'\t')) {
                let (more, next) = crlf_line(data, pos)?;
                let blank = more.iter().all(|&b| b == b' ' || b == b'\t');
                if blank || date && more.last().is_some_and(u8::is_ascii_alphabetic) {
                    return None;
                }
                pos = next;
            }
            continue;
        };
        let folded = matches!(data.get(pos), Some(b' ' | b'\t'));
        let printable = value.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b));
        if folded || seen & (1 << k) != 0 || !printable || encoded_word(value) {
            return None;
        }
        seen |= 1 << k;
        // Printable ASCII is UTF-8.
        let value = std::str::from_utf8(value).ok()?;
        match k {
            0 => plain.subject = value,
            1..=5 => {
                if !plain_mailboxes(value.as_bytes()) {
                    return None;
                }
                plain.addresses[k - 1] = value;
            }
            6 => plain.message_id = value,
            7 => charset = Some(plain_text_charset(value)?),
            8 => {
                let encoding = value.trim_matches([' ', '\t']);
                if !["7bit", "8bit", "binary"].iter().any(|e| encoding.eq_ignore_ascii_case(e)) {
                    return None;
                }
            }
            _ => return None,
        }
    };
    if pos == 0 {
        // No header at all: the full parse reads such content as all body.
        return None;
    }
    plain.text = match charset.flatten() {
        Some(cs)
            if mail_parser::decoders::charsets::map::charset_decoder(cs.as_bytes()).is_some() =>
        {
            let ascii_superset =
                ["us-ascii", "ascii", "iso-8859-1"].iter().any(|a| cs.eq_ignore_ascii_case(a));
            if !ascii_superset || !body.is_ascii() {
                return None;
            }
            Cow::Borrowed(std::str::from_utf8(body).ok()?)
        }
        // No charset, or one mail-parser reads as UTF-8 (lossy; `from_utf8` checks faster).
        _ => match std::str::from_utf8(body) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(body),
        },
    };
    Some(plain)
}

/// Whether `value` may hold an RFC 2047 encoded word (`=?`).
fn encoded_word(value: &[u8]) -> bool {
    memchr::memchr_iter(b'=', value).any(|at| value.get(at + 1) == Some(&b'?'))
}

/// The line at `pos` without its CRLF, and where the next begins; `None` at the end of `data`
/// or for a line that does not end in CRLF.
fn crlf_line(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = data.get(pos..)?;
    let end = memchr::memchr(b'\n', rest)?;
    let line = rest[..end].strip_suffix(b"\r")?;
    if memchr::memchr(b'\r', line).is_some() {
        return None;
    }
    Some((line, pos + end + 1))
}

/// The charset of a `text/plain` Content-Type value (`None` for none), or `None` when the
/// value is anything else (`Some(None)` is text/plain without a charset).
fn plain_text_charset(value: &str) -> Option<Option<&str>> {
    let mut parts = value.split(';');
    let media = parts.next()?.trim_matches([' ', '\t']);
    if !media.eq_ignore_ascii_case("text/plain") {
        return None;
    }
    let mut charset = None;
    let mut names: Vec<&str> = Vec::new();
    for parameter in parts {
        let (name, value) = parameter.split_once('=')?;
        let name = name.trim_matches([' ', '\t']);
        let value = value.trim_matches([' ', '\t']);
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"')?,
            None => value,
        };
        let token = |s: &str| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
        };
        if !token(name) || !token(value) || names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return None;
        }
        names.push(name);
        if name.eq_ignore_ascii_case("charset") {
            charset = Some(value);
        }
    }
    Some(charset)
}

/// Whether an address header's value is a comma-separated list of plain mailboxes:
/// `a@x.test`, `<a@x.test>`, or a display name before `<a@x.test>` that is either atoms or one
/// quoted string without escapes (mail-parser joins a quoted string to a neighbouring atom
/// without a space, so a mix is left to it). An empty value is an empty list.
fn plain_mailboxes(value: &[u8]) -> bool {
    let atom = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b);
    let white = |b: u8| b == b' ' || b == b'\t';
    let address = |s: &[u8]| match memchr::memchr(b'@', s) {
        Some(at) => {
            let (local, domain) = (&s[..at], &s[at + 1..]);
            !local.is_empty() && !domain.is_empty() && local.iter().chain(domain).all(|&b| atom(b))
        }
        None => false,
    };
    if value.iter().all(|&b| white(b)) {
        return true;
    }
    let mut i = 0;
    let skip_white = |i: &mut usize| {
        while value.get(*i).is_some_and(|&b| white(b)) {
            *i += 1;
        }
    };
    loop {
        // One mailbox: its words up to `<`, `,` or the end.
        let (mut atoms, mut quoted, mut bare) = (0, 0, None);
        skip_white(&mut i);
        let item = i;
        loop {
            let start = i;
            match value.get(i) {
                Some(b'"') => {
                    let Some(len) = memchr::memchr(b'"', &value[i + 1..]) else { return false };
                    if value[i + 1..i + 1 + len].contains(&b'\\') {
                        return false;
                    }
                    i += len + 2;
                    quoted += 1;
                }
                Some(&b) if atom(b) || b == b'@' => {
                    while value.get(i).is_some_and(|&b| atom(b) || b == b'@') {
                        i += 1;
                    }
                    atoms += 1;
                    bare = Some(&value[start..i]);
                }
                _ => break,
            }
            if !value.get(i).is_none_or(|&b| white(b) || b == b'<' || b == b',') {
                return false;
            }
            skip_white(&mut i);
        }
        if value.get(i) == Some(&b'<') {
            let Some(len) = memchr::memchr(b'>', &value[i + 1..]) else { return false };
            let atoms_only = quoted == 0 && !value[item..i].contains(&b'@');
            let name = atoms_only || (quoted == 1 && atoms == 0);
            if !name || !address(&value[i + 1..i + 1 + len]) {
                return false;
            }
            i += len + 2;
            skip_white(&mut i);
        } else if !(atoms == 1 && quoted == 0 && bare.is_some_and(address)) {
            return false;
        }
        match value.get(i) {
            None => return true,
            Some(b',') => i += 1,
            Some(_) => return false,
        }
    }
}

/// The `Subject` header, unfolded and decoded, reading only the header block.
pub(crate) fn subject(data: &[u8]) -> Option<String> {
    subject_of(&MessageParser::default().parse_headers(data)?)
}

fn subject_of(message: &mail_parser::Message<'_>) -> Option<String> {
    let (_, raw) = message.headers_raw().find(|(k, _)| k.eq_ignore_ascii_case("Subject"))?;
    if raw.trim_end().contains('\n') {
        // mail-parser collapses folding white space to one space; RFC 5322 keeps it, so a
        // folded subject is decoded again from its unfolded form.
        return Some(decode_unstructured(&unfold(raw)));
    }
    Some(message.subject().unwrap_or_default().to_owned())
}

/// mail-parser reads headerless content as a message whose "headers" are nothing; Boulder's
/// store treats such content as all body.
fn has_headers(message: &mail_parser::Message<'_>, data: &[u8]) -> bool {
    message.headers_raw().next().is_some() && !data.is_empty()
}

/// Decodes RFC 2047 encoded words in an unstructured header value that is already unfolded.
fn decode_unstructured(value: &str) -> String {
    let raw = format!("Subject:{value}\r\n\r\n");
    MessageParser::default()
        .parse_headers(raw.as_bytes())
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_else(|| value.to_owned())
}

/// The IMAP-style number of every part (`1`, `1.2`), indexed like `message.parts`. A
/// single-part message's only part is `1`.
fn part_numbers(message: &mail_parser::Message<'_>) -> Vec<String> {
    let mut numbers = vec![String::new(); message.parts.len()];
    fn walk(message: &mail_parser::Message<'_>, index: usize, prefix: &str, out: &mut [String]) {
        let Some(PartType::Multipart(children)) = message.parts.get(index).map(|p| &p.body) else {
            return;
        };
        for (n, &child) in children.iter().enumerate() {
            let number =
                if prefix.is_empty() { (n + 1).to_string() } else { format!("{prefix}.{}", n + 1) };
            if let Some(slot) = out.get_mut(child as usize) {
                slot.clone_from(&number);
            }
            walk(message, child as usize, &number, out);
        }
    }
    match message.parts.first().map(|p| &p.body) {
        Some(PartType::Multipart(_)) => walk(message, 0, "", &mut numbers),
        Some(_) => numbers[0] = "1".to_owned(),
        None => {}
    }
    numbers
}

fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None if matches!(part.body, PartType::Message(_)) => "message/rfc822".to_owned(),
        None => "application/octet-stream".to_owned(),
    }
}

fn decoded<'a>(part: &'a MessagePart<'_>) -> Cow<'a, [u8]> {
    match &part.body {
        PartType::Text(t) | PartType::Html(t) => Cow::Borrowed(t.as_bytes()),
        PartType::Binary(b) | PartType::InlineBinary(b) => Cow::Borrowed(b.as_ref()),
        PartType::Message(m) => Cow::Borrowed(m.raw_message()),
        PartType::Multipart(_) => Cow::Borrowed(&[]),
    }
}

fn attachments(message: &mail_parser::Message<'_>) -> Vec<Attachment> {
    let numbers = part_numbers(message);
    message
        .attachments
        .iter()
        .filter_map(|&index| {
            let part = message.parts.get(index as usize)?;
            let disposition_inline = part.content_disposition().is_some_and(|d| d.is_inline());
            Some(Attachment {
                part_id: numbers.get(index as usize).cloned().unwrap_or_default(),
                filename: part.attachment_name().unwrap_or_default().to_owned(),
                content_type: content_type(part),
                content_id: part
                    .content_id()
                    .unwrap_or_default()
                    .trim_matches(|c| c == '<' || c == '>')
                    .to_owned(),
                size: decoded(part).len(),
                inline: matches!(part.body, PartType::InlineBinary(_)) || disposition_inline,
            })
        })
        .collect()
}

/// The decoded content of the part numbered `part_id` (an attachment, inline part or body).
pub(crate) fn part(data: &[u8], part_id: &str) -> Option<PartContent> {
    let message = MessageParser::default().parse(data)?;
    let numbers = part_numbers(&message);
    let index = numbers.iter().position(|n| n == part_id)?;
    let part = message.parts.get(index)?;
    if matches!(part.body, PartType::Multipart(_)) {
        return None;
    }
    let bytes = decoded(part).into_owned();
    Some(PartContent {
        content_type: content_type(part),
        filename: part.attachment_name().unwrap_or_default().to_owned(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolding_removes_only_the_line_breaks() {
        assert_eq!(unfold(" hello\r\n  world\r\n"), "hello  world");
        assert_eq!(unfold(" a\r\n\tb\r\n"), "a\tb");
        assert_eq!(unfold(" a\n b\n"), "a b");
        assert_eq!(unfold("\r\n"), "");
        assert_eq!(unfold(" plain"), "plain");
    }

    #[test]
    fn headers_are_unfolded_and_the_subject_decoded() {
        let m = parse(
            b"Subject: hello\r\n\tworld\r\nMessage-ID: <1@x>\r\nX-Empty:\r\n\r\nbody\r\n.line\r\n",
        );
        assert_eq!(m.subject.as_deref(), Some("hello\tworld"));
        assert_eq!(m.message_id.as_deref(), Some("<1@x>"));
        assert_eq!(
            m.headers,
            [("Subject", "hello\tworld"), ("Message-ID", "<1@x>"), ("X-Empty", "")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            (m.body.as_str(), m.text.as_deref()),
            ("body\r\n.line\r\n", Some("body\r\n.line\r\n"))
        );
        assert_eq!(m.html, None);

        let folded = parse(b"Subject: =?utf-8?Q?caf=C3=A9?=\r\n =?utf-8?Q?_au_lait?=\r\n\r\nx");
        assert_eq!(folded.subject.as_deref(), Some("café au lait"));
        let encoded = parse(b"Subject: =?utf-8?B?R3LDvMOfZQ==?=\r\n\r\nx");
        assert_eq!(encoded.subject.as_deref(), Some("Grüße"));
    }

    #[test]
    fn content_without_headers_is_all_body() {
        let m = parse(b"just a body line\r\n");
        assert!(m.headers.is_empty());
        assert_eq!((m.body.as_str(), m.subject.clone()), ("just a body line\r\n", None));
        assert_eq!(m.text.as_deref(), Some("just a body line\r\n"));
        assert_eq!(parse(b"\r\nafter an empty header block").body, "after an empty header block");
        assert_eq!(parse(b"").body, "");
    }

    #[test]
    fn charsets_and_transfer_encodings_are_decoded() {
        let m = parse(
            b"Subject: =?iso-2022-jp?B?GyRCJEYkOSRIGyhC?=\r\nContent-Type: text/plain; \
              charset=shift_jis\r\nContent-Transfer-Encoding: base64\r\n\r\ngsSCt4LG\r\n",
        );
        assert_eq!((m.subject.as_deref(), m.text.as_deref()), (Some("てすと"), Some("てすと")));
        let m = parse(
            b"Content-Type: text/plain; charset=iso-8859-1\r\n\
              Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 =\r\nau lait\r\n",
        );
        assert_eq!(m.body, "café au lait\r\n");
    }

    const MULTIPART: &[u8] = b"From: \"Jo Q\" <jo@x.test>\r\nTo: a@x.test, B <b@x.test>\r\n\
        Date: Tue, 1 Jul 2003 10:52:37 +0200\r\nSubject: m\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
        --B\r\nContent-Type: multipart/alternative; boundary=\"A\"\r\n\r\n\
        --A\r\nContent-Type: text/plain\r\n\r\nplain text\r\n\
        --A\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--A--\r\n\
        --B\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\
        Content-Disposition: attachment; filename=\"a.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n\
        --B\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\nContent-ID: <img1>\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n--B--\r\n";

    #[test]
    fn multipart_bodies_are_split_into_text_html_and_attachments() {
        let m = parse(MULTIPART);
        assert_eq!(
            (m.text.as_deref(), m.html.as_deref()),
            (Some("plain text"), Some("<p>html</p>"))
        );
        assert_eq!(m.body, "plain text");
        assert_eq!(
            m.addresses.from,
            [Address { name: "Jo Q".into(), address: "jo@x.test".into() }]
        );
        assert_eq!(
            m.addresses.to.iter().map(|a| a.address.as_str()).collect::<Vec<_>>(),
            ["a@x.test", "b@x.test"]
        );
        assert_eq!(m.date, Some(UNIX_EPOCH + Duration::from_secs(1_057_049_557)));
        let summary: Vec<_> = m
            .attachments
            .iter()
            .map(|a| {
                (a.part_id.as_str(), a.filename.as_str(), a.content_type.as_str(), a.size, a.inline)
            })
            .collect();
        assert_eq!(
            summary,
            [("2", "a.pdf", "application/pdf", 5, false), ("3", "", "image/png", 4, true)]
        );
        assert_eq!(m.attachments[1].content_id, "img1");

        let pdf = part(MULTIPART, "2").unwrap();
        assert_eq!(
            (pdf.content_type.as_str(), pdf.filename.as_str()),
            ("application/pdf", "a.pdf")
        );
        assert_eq!(pdf.bytes, b"%PDF-");
        assert_eq!(part(MULTIPART, "1.2").unwrap().bytes, b"<p>html</p>");
        assert!(part(MULTIPART, "1").is_none(), "a multipart container is not downloadable");
        assert!(part(MULTIPART, "9").is_none());
    }

    #[test]
    fn an_html_only_message_gets_text_from_its_html() {
        let m = parse(b"Content-Type: text/html\r\n\r\n<p>Hello <b>there</b></p>\r\n");
        assert_eq!(m.html.as_deref(), Some("<p>Hello <b>there</b></p>\r\n"));
        assert_eq!(m.text.as_deref().map(str::trim), Some("Hello there"));
        assert_eq!(m.body, "<p>Hello <b>there</b></p>\r\n");
    }
}
