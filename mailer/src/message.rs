//! Address validation and message building: the bytes and envelope of one send, kept so a
//! resend after a lost connection sends exactly the same message (same Message-ID).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use lettre::Address;
use lettre::message::header::{
    self, ContentTransferEncoding, ContentType, HeaderName, HeaderValue, Headers,
};
use lettre::message::{Body, Mailbox, Mailboxes, MultiPart, SinglePart};

use crate::Error;
use crate::email::{Attachment, Email, Source};

/// Parses one mailbox (`addr@example.com` or `Name <addr@example.com>`), refusing control
/// characters (CR/LF would break a header, and lettre's `Mailbox::new` panics on them) and
/// anything after the address (lettre's parser silently ignores trailing text, so
/// `a@x.test, b@x.test` would otherwise lose `b`).
pub fn parse_mailbox(s: &str) -> Result<Mailbox, Error> {
    let bad =
        |reason: &str| Error::InvalidAddress { address: s.to_owned(), reason: reason.to_owned() };
    if s.chars().any(char::is_control) {
        return Err(bad("contains a control character (CR, LF, ...)"));
    }
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    if is_plain_addr_spec(trimmed) {
        let address: Address = trimmed.parse().map_err(|e| bad(&format!("does not parse: {e}")))?;
        return Ok(Mailbox::new(None, address));
    }
    let mailbox: Mailbox = trimmed.parse().map_err(|e| bad(&format!("does not parse: {e}")))?;
    let complete = if trimmed.contains('<') {
        trimmed.ends_with('>')
    } else {
        addr_str(&mailbox.email) == trimmed
    };
    if !complete {
        return Err(bad("unexpected text after the address (one address per entry)"));
    }
    if mailbox.name.as_deref().is_some_and(|n| n.chars().any(char::is_control)) {
        return Err(bad("display name contains a control character"));
    }
    Ok(mailbox)
}

/// Whether `s` is written only with RFC 5322 `atext`, dots and one `@` (`user@example.com`,
/// the common case): for such a string lettre's full mailbox parser finds no display name and
/// no comment, and reaches the same verdict as `Address`'s own checks, which cost a fraction
/// of it (a test pins the agreement).
fn is_plain_addr_spec(s: &str) -> bool {
    s.bytes().filter(|&b| b == b'@').count() == 1
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"@.!#$%&'*+-/=?^_`{|}~".contains(&b))
}

fn addr_str(a: &Address) -> &str {
    a.as_ref()
}

/// Parses a bare address or a mailbox and returns its address, refusing CR/LF and
/// trailing text. Use it to validate recipient lists before sending anything.
pub fn parse_address(s: &str) -> Result<Address, Error> {
    parse_mailbox(s).map(|m| m.email)
}

/// One message, formatted once and resent as is.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) from: Address,
    /// Every envelope recipient (`To` and `Cc`).
    pub(crate) to: Vec<Address>,
    pub(crate) message_id: String,
    /// The formatted message, dot-stuffed and terminated by `.\r\n`: written in one piece so
    /// Nagle never holds back a separate final dot.
    pub(crate) wire: String,
    pub(crate) has_non_ascii_addresses: bool,
    pub(crate) is_8bit: bool,
}

/// A fresh Message-ID: `<32 hex digits@domain>`.
pub(crate) fn new_message_id(domain: &str) -> String {
    let id: u128 = rand::random();
    let mut out = String::with_capacity(36 + domain.len());
    out.push('<');
    // 32 hex digits, most significant first (`format!("{id:032x}")` costs ten times this).
    out.extend(
        (0..32).rev().map(|i| char::from(b"0123456789abcdef"[(id >> (4 * i)) as usize & 15])),
    );
    out.push('@');
    out.push_str(domain);
    out.push('>');
    out
}

/// Headers the builder writes itself (or that only servers add): an extra header of one of
/// these names could contradict or duplicate them, so it is refused.
const OWNED_HEADERS: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "return-path",
    "received",
];

/// Checks an extra header: the name is RFC 5322 `ftext` (printable ASCII but `:`) and not
/// one the builder owns; the value holds no CR, LF or other control character (tab
/// allowed), and the line fits SMTP's 998 octets.
fn check_header(name: &str, value: &str) -> Result<(), Error> {
    let bad =
        |reason: &str| Error::InvalidHeader { name: name.to_owned(), reason: reason.to_owned() };
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    if !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(bad("a name is printable ASCII without spaces or ':' (RFC 5322 ftext)"));
    }
    if name.len() > 76 {
        return Err(bad("name longer than 76 characters"));
    }
    let lower = name.to_ascii_lowercase();
    if OWNED_HEADERS.contains(&lower.as_str()) || lower.starts_with("content-") {
        return Err(bad("the mailer writes this header itself"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad("the value contains CR, LF or another control character"));
    }
    if value.is_ascii() && name.len() + 2 + value.len() > 998 {
        return Err(bad("the line would be longer than 998 characters"));
    }
    Ok(())
}

/// Every line break of `text` (CRLF, LF or a lone CR) as CRLF, in one pass. lettre converts
/// LF endings itself with one `String::insert` per line, which is quadratic; handed CRLF, it
/// finds nothing to insert.
pub(crate) fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32 + 2);
    normalise_into(&mut out, text, false);
    out
}

/// Appends `text` to `out` with every line break (CRLF, LF or a lone CR) as CRLF and, with
/// `stuff_dots`, a `.` that starts a line doubled (SMTP transparency, RFC 5321 4.5.2; `text`
/// is taken to start at a line start). Copies whole lines: the cost is one `memchr2` step and
/// one copy per line, not a branch per byte. Returns whether `text` ended at a line start.
fn normalise_into(out: &mut String, text: &str, stuff_dots: bool) -> bool {
    let bytes = text.as_bytes();
    if stuff_dots && bytes.first() == Some(&b'.') {
        out.push('.');
    }
    let mut start = 0;
    let mut breaks = memchr::memchr2_iter(b'\r', b'\n', bytes);
    while let Some(i) = breaks.next() {
        // CR, LF and '.' are ASCII: every slice boundary here is a char boundary.
        out.push_str(&text[start..i]);
        out.push_str("\r\n");
        start = i + 1;
        if bytes[i] == b'\r' && bytes.get(start) == Some(&b'\n') {
            breaks.next();
            start += 1;
        }
        if stuff_dots && bytes.get(start) == Some(&b'.') {
            out.push('.');
        }
    }
    out.push_str(&text[start..]);
    start == bytes.len()
}

/// lettre's (email-encoding's) rule for when text needs an encoding because of its line
/// lengths: 76 bytes or more from one LF to the next (or from the start, or to the end). Kept
/// identical, so a body this module encodes itself is what lettre's builder would produce.
fn line_too_long(b: &[u8]) -> bool {
    let mut last = 0;
    memchr::memchr_iter(b'\n', b).any(|i| i - std::mem::replace(&mut last, i) >= 76)
        || b.len() - last >= 76
}

/// A text body: line endings made CRLF once, then sent as `7bit` when lettre's own choice would
/// be `7bit` (ASCII, short lines: the common notification), without lettre scanning and
/// converting it again; otherwise lettre's encoder picks quoted-printable or base64.
fn text_body(text: &str) -> Body {
    body_of(seven_bit(text))
}

/// The body for what [`seven_bit`] found.
fn body_of(text: Result<String, String>) -> Body {
    match text {
        Ok(text) => {
            Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::SevenBit)
        }
        Err(text) => Body::new(text),
    }
}

/// `text` with CRLF line endings: `Ok` when lettre would send it as `7bit` (ASCII, short
/// lines), `Err` when it needs an encoding.
fn seven_bit(text: &str) -> Result<String, String> {
    let text = crlf(text);
    match text.is_ascii() && !line_too_long(text.as_bytes()) {
        true => Ok(text),
        false => Err(text),
    }
}

/// The part headers lettre writes for a `7bit` text/plain body.
const PLAIN_7BIT: &str =
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n";

/// The body of `email`: one text or HTML part, or both as `multipart/alternative` (an empty
/// text part when neither is given).
enum BodyPart {
    Single(SinglePart),
    Alternative(MultiPart),
}

fn body_part(email: &Email, text: Option<Body>) -> BodyPart {
    let part = |content_type, text| SinglePart::builder().content_type(content_type).body(text);
    let text = text.map(|t| part(ContentType::TEXT_PLAIN, t));
    let html = email.html.as_deref().map(|h| part(ContentType::TEXT_HTML, text_body(h)));
    match (text, html) {
        (Some(t), Some(h)) => {
            BodyPart::Alternative(MultiPart::alternative().singlepart(t).singlepart(h))
        }
        (Some(part), None) | (None, Some(part)) => BodyPart::Single(part),
        (None, None) => BodyPart::Single(SinglePart::plain(String::new())),
    }
}

/// One attachment as a MIME part: `text/*` with CRLF line endings (7bit, quoted-printable or
/// base64, as lettre would choose); anything else base64, byte for byte.
fn attachment_part(a: &Attachment, bytes: &[u8]) -> Result<SinglePart, Error> {
    if a.filename.chars().any(char::is_control) {
        return Err(Error::InvalidMessage(format!(
            "attachment file name {:?} contains a control character",
            a.filename
        )));
    }
    let ct_text = a.content_type();
    let content_type = if ct_text.chars().any(char::is_control) {
        None
    } else {
        ContentType::parse(&ct_text).ok()
    };
    let content_type = content_type.ok_or_else(|| {
        Error::InvalidMessage(format!("attachment {:?}: bad content type {ct_text:?}", a.filename))
    })?;
    let is_text = ct_text.trim_start().to_ascii_lowercase().starts_with("text/");
    let body = match std::str::from_utf8(bytes) {
        Ok(text) if is_text => text_body(text),
        _ => Body::new_with_encoding(bytes.to_vec(), ContentTransferEncoding::Base64)
            .map_err(|_| Error::InvalidMessage("cannot encode attachment".into()))?,
    };
    Ok(lettre::message::Attachment::new(a.filename.clone()).body(body, content_type))
}

/// Reads the attachments that name a file. Runs after every other check, before any network
/// I/O; an unreadable file is [`Error::Attachment`].
async fn load(attachments: &[Attachment]) -> Result<Vec<Arc<[u8]>>, Error> {
    let mut loaded = Vec::with_capacity(attachments.len());
    for a in attachments {
        loaded.push(match &a.source {
            Source::Bytes(b) => Arc::clone(b),
            Source::Path(path) => tokio::fs::read(path).await.map(Into::into).map_err(|e| {
                Error::Attachment { path: path.display().to_string(), source: Arc::new(e) }
            })?,
        });
    }
    Ok(loaded)
}

/// Who every message of one mailer is from: the mailbox, and its `From:` header line as
/// lettre encodes it, formatted once rather than for each message.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    pub(crate) mailbox: Mailbox,
    from_line: String,
}

impl Sender {
    pub(crate) fn new(mailbox: Mailbox) -> Sender {
        let mut headers = Headers::new();
        headers.set(header::From::from(Mailboxes::from(mailbox.clone())));
        Sender { mailbox, from_line: headers.to_string() }
    }
}

/// The checked parts of an [`Email`], ready to format.
struct Parts<'a> {
    from: &'a Sender,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    reply_to: Vec<Mailbox>,
    email: &'a Email,
    loaded: Vec<Arc<[u8]>>,
}

/// Checks everything about `email` before anything is built: addresses, headers, then the
/// attachment files.
async fn check<'a>(from: &'a Sender, email: &'a Email) -> Result<Parts<'a>, Error> {
    if email.to.is_empty() && email.cc.is_empty() {
        return Err(Error::InvalidMessage("no recipients".into()));
    }
    let parse_all =
        |list: &[String]| list.iter().map(|a| parse_mailbox(a)).collect::<Result<Vec<_>, _>>();
    let (to, cc, reply_to) =
        (parse_all(&email.to)?, parse_all(&email.cc)?, parse_all(&email.reply_to)?);
    let mut seen = Vec::with_capacity(email.headers.len());
    for (name, value) in &email.headers {
        check_header(name, value)?;
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(Error::InvalidHeader { name: name.clone(), reason: "given twice".into() });
        }
        seen.push(lower);
    }
    let loaded = load(&email.attachments).await?;
    Ok(Parts { from, to, cc, reply_to, email, loaded })
}

/// Formats the message: lettre's typed headers (From, Subject, Date, Message-ID, To, Cc,
/// Reply-To, MIME-Version, then the extra headers) and MIME parts, as lettre's
/// `MessageBuilder` would order and encode them, dot-stuffed and terminated for the wire.
/// Built from the parts directly rather than through `MessageBuilder::build`, which parses
/// the From, Date, To and Cc headers back out of their text to check them and to derive an
/// envelope: more than half the cost of a small message, for checks already made here.
fn format(parts: &Parts<'_>, message_id: &str, date: SystemTime) -> Result<String, Error> {
    let Parts { from, to, cc, reply_to, email, loaded } = parts;
    let mut headers = Headers::new();
    headers.set(header::Subject::from(email.subject.clone()));
    headers.set(header::Date::new(date));
    headers.set(header::MessageId::from(message_id.to_owned()));
    if !to.is_empty() {
        headers.set(header::To::from(Mailboxes::from(to.clone())));
    }
    if !cc.is_empty() {
        headers.set(header::Cc::from(Mailboxes::from(cc.clone())));
    }
    if !reply_to.is_empty() {
        headers.set(header::ReplyTo::from(Mailboxes::from(reply_to.clone())));
    }
    headers.set(header::MIME_VERSION_1_0);
    for (name, value) in &email.headers {
        // `check_header` vetted the name: lettre's own rules (ASCII, <= 76, no ':' or ' ')
        // hold, so this cannot fail.
        let header = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| Error::InvalidHeader { name: name.clone(), reason: "bad name".into() })?;
        headers.insert_raw(HeaderValue::new(header, value.clone()));
    }
    // The header block: the sender's line (formatted once), then the rest. lettre ends every
    // header line (and folds) with CRLF, and neither its own names nor a continuation line
    // start with a dot: the block goes on the wire as it is, unless an extra field name starts
    // with a dot (RFC 5322 allows it), whose line then needs stuffing.
    let mut wire = String::with_capacity(512 + email.text.as_ref().map_or(0, |t| t.len() * 9 / 8));
    wire.push_str(&from.from_line);
    if email.headers.iter().any(|(name, _)| name.starts_with('.')) {
        normalise_into(&mut wire, &headers.to_string(), true);
    } else {
        // Writing to a String cannot fail.
        let _ = write!(wire, "{headers}");
    }
    // A text-only 7bit body (most notifications): its part headers are fixed, and the text
    // goes to the wire without lettre copying it into a part first.
    let text = email.text.as_deref().map(seven_bit);
    if let (Some(Ok(text)), None, true) = (&text, &email.html, email.attachments.is_empty()) {
        wire.push_str(PLAIN_7BIT);
        stuff_dots_into(&mut wire, text);
        wire.push_str("\r\n.\r\n");
        return Ok(wire);
    }
    let body = match (body_part(email, text.map(body_of)), email.attachments.is_empty()) {
        (BodyPart::Single(part), true) => part.formatted(),
        (BodyPart::Alternative(alt), true) => alt.formatted(),
        (body, false) => {
            let mut mixed = match body {
                BodyPart::Single(part) => MultiPart::mixed().singlepart(part),
                BodyPart::Alternative(alt) => MultiPart::mixed().multipart(alt),
            };
            for (a, bytes) in email.attachments.iter().zip(loaded) {
                mixed = mixed.singlepart(attachment_part(a, bytes)?);
            }
            mixed.formatted()
        }
    };
    // lettre formats from `&str` parts, so this holds; an error here would be a lettre bug,
    // reported rather than unwrapped.
    let body = std::str::from_utf8(&body)
        .map_err(|_| Error::InvalidMessage("formatted message is not UTF-8".into()))?;
    wire.reserve(body.len() + body.len() / 64 + 8);
    // The header block ends with CRLF, so the body starts at a line start.
    terminate(&mut wire, body);
    Ok(wire)
}

/// Builds the message (Date, Message-ID, From, To, Cc, Reply-To, UTF-8 Subject,
/// MIME-Version, bodies, attachments, extra headers) and its envelope. Checks everything
/// first: addresses, headers, then the attachment files.
pub(crate) async fn prepare(sender: &Sender, email: &Email) -> Result<Prepared, Error> {
    let parts = check(sender, email).await?;
    let from = &sender.mailbox;
    let message_id = new_message_id(from.email.domain());
    let wire = format(&parts, &message_id, SystemTime::now())?;
    let Parts { to, cc, .. } = parts;
    let envelope: Vec<Address> = to.into_iter().chain(cc).map(|m| m.email).collect();
    let has_non_ascii_addresses =
        !addr_str(&from.email).is_ascii() || envelope.iter().any(|a| !addr_str(a).is_ascii());
    Ok(Prepared {
        from: from.email.clone(),
        to: envelope,
        message_id,
        is_8bit: !wire.is_ascii(),
        wire,
        has_non_ascii_addresses,
    })
}

/// Appends `text` dot-stuffed (RFC 5321 4.5.2: a line starting with `.` gets another `.`),
/// with CRLF line endings (a bare LF or CR becomes CRLF) and the terminating `.\r\n`.
fn terminate(out: &mut String, text: &str) {
    let at_line_start = if is_crlf_only(text.as_bytes()) {
        stuff_dots_into(out, text);
        text.is_empty() || text.ends_with('\n')
    } else {
        normalise_into(out, text, true)
    };
    if !at_line_start {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
}

/// Whether every CR in `b` is followed by LF and every LF preceded by CR (what lettre
/// formats from CRLF parts). No early exit, so the compiler vectorises it: a fraction of the
/// cost of normalising line by line.
fn is_crlf_only(b: &[u8]) -> bool {
    if b.first() == Some(&b'\n') || b.last() == Some(&b'\r') {
        return false;
    }
    let pairs = b.iter().zip(b.iter().skip(1));
    pairs.fold(0u8, |bad, (&x, &y)| bad | (u8::from(x == b'\r') ^ u8::from(y == b'\n'))) == 0
}

/// Appends `text`, whose line breaks are all CRLF, with every `.` that starts a line doubled:
/// one substring search over the whole text (usually no match) instead of a step per line.
fn stuff_dots_into(out: &mut String, text: &str) {
    if text.starts_with('.') {
        out.push('.');
    }
    let mut start = 0;
    for i in memchr::memmem::find_iter(text.as_bytes(), b"\n.") {
        // `i` is the LF: ASCII, so `i + 1` is a char boundary.
        out.push_str(&text[start..=i]);
        out.push('.');
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// `text` as it goes on the wire after DATA: dot-stuffed, CRLF, terminated (see [`terminate`]).
#[cfg(test)]
pub(crate) fn dot_stuff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 8);
    terminate(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Attachment;

    fn from() -> Sender {
        Sender::new(parse_mailbox("Notifier <noreply@example.com>").unwrap())
    }

    /// `prepare` on a runtime of its own (it is async only to read attachment files).
    fn build(email: &Email) -> Result<Prepared, Error> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(prepare(&from(), email))
    }

    fn text(to: &[&str], subject: &str, body: &str) -> Result<Prepared, Error> {
        build(&Email::text(to, subject, body))
    }

    fn headers(wire: &str) -> Vec<&str> {
        wire.split("\r\n").take_while(|l| !l.is_empty()).collect()
    }

    fn header<'a>(wire: &'a str, name: &str) -> Option<&'a str> {
        let prefix = format!("{name}: ");
        headers(wire).into_iter().find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    #[test]
    fn builds_date_message_id_mime_version_subject_and_body() {
        let p = text(&["a@example.net"], "Grüße", "hello\n.dot line\n").unwrap();
        let h = headers(&p.wire);
        assert!(h.iter().any(|l| l.starts_with("Date: ")), "{h:?}");
        assert_eq!(header(&p.wire, "Message-ID"), Some(p.message_id.as_str()), "{h:?}");
        assert!(p.message_id.ends_with("@example.com>"));
        assert!(header(&p.wire, "Subject").unwrap().starts_with("=?utf-8?"), "{h:?}");
        assert_eq!(header(&p.wire, "To"), Some("a@example.net"));
        assert_eq!(header(&p.wire, "MIME-Version"), Some("1.0"), "{h:?}");
        assert!(header(&p.wire, "Content-Type").unwrap().starts_with("text/plain"), "{h:?}");
        assert!(p.wire.contains("\r\nhello\r\n..dot line\r\n"), "{:?}", p.wire);
        assert!(p.wire.ends_with("\r\n.\r\n"));
        assert_eq!(p.to, ["a@example.net".parse::<Address>().unwrap()]);
    }

    #[test]
    fn message_ids_differ() {
        let a = text(&["a@example.net"], "s", "b").unwrap();
        let b = text(&["a@example.net"], "s", "b").unwrap();
        assert_ne!(a.message_id, b.message_id);
        let id = new_message_id("example.com");
        let hex = id.strip_prefix('<').and_then(|i| i.strip_suffix("@example.com>")).unwrap();
        assert!(hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }

    #[test]
    fn every_shape_of_message_has_mime_version_once() {
        let base = || Email::new("a@example.net", "s");
        let shapes = [
            base(),
            base().with_text("t"),
            base().with_html("<p>h</p>"),
            base().with_text("t").with_html("<p>h</p>"),
            base().with_attachment(Attachment::from_bytes("a.bin", vec![0u8, 1, 2])),
            base()
                .with_text("t")
                .with_html("h")
                .with_attachment(Attachment::from_bytes("r.txt", "x")),
        ];
        for email in &shapes {
            let p = build(email).unwrap();
            let n = headers(&p.wire).iter().filter(|l| l.starts_with("MIME-Version: 1.0")).count();
            assert_eq!(n, 1, "{email:?}\n{}", p.wire);
        }
    }

    #[test]
    fn text_and_html_are_alternatives_inside_mixed_with_the_attachments() {
        let email = Email::new("Alice <alice@example.net>", "Report")
            .with_text("plain\nbody")
            .with_html("<p>html</p>\n")
            .with_cc("bob@example.net")
            .with_reply_to("Help <help@example.com>")
            .with_attachment(Attachment::from_bytes("data.bin", vec![0u8, 159, 146, 150, b'\n']))
            .with_attachment(Attachment::from_bytes("notes.txt", "line 1\nline 2\n"));
        let p = build(&email).unwrap();
        let w = &p.wire;
        assert!(header(w, "Content-Type").unwrap().starts_with("multipart/mixed"), "{w}");
        assert!(w.contains("Content-Type: multipart/alternative"), "{w}");
        let plain = w.find("Content-Type: text/plain").unwrap();
        let html = w.find("Content-Type: text/html").unwrap();
        assert!(plain < html, "the text part comes first, HTML is preferred");
        assert!(w.contains("plain\r\nbody"), "{w}");
        assert!(w.contains("filename=\"data.bin\""), "{w}");
        // Binary is base64, byte for byte: 00 9f 92 96 0a.
        assert!(w.contains("AJ+Slgo="), "{w}");
        // Text attachments get CRLF line endings.
        assert!(w.contains("line 1\r\nline 2\r\n"), "{w}");
        assert_eq!(header(w, "Cc"), Some("bob@example.net"));
        assert_eq!(header(w, "Reply-To"), Some("Help <help@example.com>"));
        let rcpts: Vec<&str> = p.to.iter().map(addr_str).collect();
        assert_eq!(rcpts, ["alice@example.net", "bob@example.net"], "Cc is an envelope recipient");
    }

    #[test]
    fn list_unsubscribe_headers_go_out_verbatim() {
        let url = format!("<https://example.com/unsubscribe/{}?list=news>", "x".repeat(120));
        let email = Email::new("a@example.net", "s")
            .with_text("t")
            .with_header("List-Unsubscribe", url.as_str())
            .with_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
            .with_header("X-Campaign", "Grüße 2026");
        let p = build(&email).unwrap();
        assert_eq!(header(&p.wire, "List-Unsubscribe"), Some(url.as_str()));
        assert_eq!(header(&p.wire, "List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));
        assert!(header(&p.wire, "X-Campaign").unwrap().starts_with("=?utf-8?"), "RFC 2047");
    }

    #[test]
    fn bad_headers_are_refused_before_anything_is_built() {
        let cases = [
            ("X-Evil", "a\r\nBcc: victim@example.org"),
            ("X-Evil", "a\nb"),
            ("X-Evil", "a\rb"),
            ("X-Evil", "nul\0byte"),
            ("X-Evil\r\nBcc", "victim@example.org"),
            ("X Evil", "space in the name"),
            ("X:Evil", "colon in the name"),
            ("", "empty name"),
            ("Grüße", "non-ASCII name"),
            ("From", "someone@else.test"),
            ("to", "someone@else.test"),
            ("Message-ID", "<forged@example.com>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/html"),
            ("content-transfer-encoding", "8bit"),
            ("Bcc", "hidden@example.org"),
        ];
        for (name, value) in cases {
            let email = Email::new("a@example.net", "s").with_header(name, value);
            let err = build(&email).unwrap_err();
            assert!(
                matches!(err, Error::InvalidHeader { .. }) && err.is_permanent(),
                "{name:?}: {err}"
            );
        }
        let twice =
            Email::new("a@example.net", "s").with_header("X-A", "1").with_header("x-a", "2");
        assert!(matches!(build(&twice), Err(Error::InvalidHeader { .. })));
        let long = Email::new("a@example.net", "s").with_header("X-Long", "v".repeat(1000));
        assert!(matches!(build(&long), Err(Error::InvalidHeader { .. })));
    }

    #[test]
    fn attachment_problems_are_permanent_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pdf");
        let email =
            Email::new("a@example.net", "s").with_attachment(Attachment::from_path(&missing));
        let err = build(&email).unwrap_err();
        assert!(matches!(err, Error::Attachment { .. }) && err.is_permanent(), "{err}");
        assert!(format!("{err:#}").contains("missing.pdf"), "{err:#}");
        let is_dir =
            Email::new("a@example.net", "s").with_attachment(Attachment::from_path(dir.path()));
        assert!(matches!(build(&is_dir), Err(Error::Attachment { .. })));
        let bad_type = Email::new("a@example.net", "s").with_attachment(
            Attachment::from_bytes("a", "x").with_content_type("text/plain\r\nX: y"),
        );
        assert!(matches!(build(&bad_type), Err(Error::InvalidMessage(_))));
        let bad_name = Email::new("a@example.net", "s")
            .with_attachment(Attachment::from_bytes("a\r\nX-Evil: 1", "x"));
        assert!(matches!(build(&bad_name), Err(Error::InvalidMessage(_))));
        // A readable file is attached under its own name.
        let path = dir.path().join("report.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let ok = Email::new("a@example.net", "s").with_attachment(Attachment::from_path(&path));
        let p = build(&ok).unwrap();
        assert!(p.wire.contains("filename=\"report.csv\"") && p.wire.contains("a,b\r\n1,2\r\n"));
    }

    #[test]
    fn crlf_in_subject_never_starts_a_header() {
        let p = text(&["a@example.net"], "hi\r\nBcc: evil@x.test\r\n\r\nbody", "b").unwrap();
        let h = headers(&p.wire);
        assert!(!h.iter().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{h:?}");
        // Every header line is a header or a folded continuation.
        for l in &h {
            assert!(l.starts_with(' ') || l.starts_with('\t') || l.contains(": "), "{l:?}");
        }
        assert!(!p.wire.contains("evil@x.test\r\n"));
    }

    #[test]
    fn crlf_in_a_display_name_is_an_error_not_a_panic() {
        for bad in [
            "Evil\r\nBcc: x@y.test <a@example.net>",
            "\"Evil\r\nBcc: x@y.test\" <a@example.net>",
            "Evil\n <a@example.net>",
            "a@example.net\r\n",
            "a@exa\rmple.net",
        ] {
            let e = text(&[bad], "s", "b").unwrap_err();
            assert!(e.is_bad_address() && e.is_permanent(), "{bad:?}: {e}");
            let e = build(&Email::new("a@example.net", "s").with_cc(bad)).unwrap_err();
            assert!(e.is_bad_address(), "cc {bad:?}: {e}");
            let e = build(&Email::new("a@example.net", "s").with_reply_to(bad)).unwrap_err();
            assert!(e.is_bad_address(), "reply-to {bad:?}: {e}");
        }
        assert!(parse_mailbox("Evil\r\nBcc: x@y.test <a@example.net>").is_err());
    }

    #[test]
    fn plain_addresses_get_the_full_parsers_verdict() {
        let cases = [
            "a@example.com",
            "A.B+tag@Sub.Example.COM",
            "a'b@x.test",
            "a@b",
            "a@x_y.test",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a@b..c",
            "a@-b.c",
            "a@b.c.",
            "@example.com",
            "a@",
            "{x}|~@example.com",
        ];
        for s in cases {
            assert!(is_plain_addr_spec(s), "{s}");
            let full = s.parse::<Mailbox>().map(|m| m.email);
            let ours = parse_mailbox(s).map(|m| (m.name, m.email));
            match (full, ours) {
                (Ok(full), Ok((None, ours))) => assert_eq!(full, ours, "{s}"),
                (Err(_), Err(e)) => assert!(e.is_bad_address(), "{s}: {e}"),
                (full, ours) => panic!("{s}: lettre {full:?}, ours {ours:?}"),
            }
        }
        for not_plain in ["a@@b.c", "é@x.test", "a@[127.0.0.1]", "A <a@x.test>", "a b@x.test"] {
            assert!(!is_plain_addr_spec(not_plain), "{not_plain}");
        }
    }

    #[test]
    fn rejects_lists_and_garbage() {
        for bad in ["a@example.net, b@example.net", "a@example.net b", "no-at-sign", "", "<>"] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
        assert!(parse_address("  a@example.net ").is_ok());
        assert!(parse_address("\"Doe, Jane\" <jane@example.net>").is_ok());
    }

    #[test]
    fn no_recipients_is_an_error() {
        assert!(matches!(text(&[], "s", "b"), Err(Error::InvalidMessage(_))));
    }

    #[test]
    fn non_ascii_addresses_are_flagged_for_smtputf8() {
        let p = text(&["jörg@example.net"], "s", "b").unwrap();
        assert!(p.has_non_ascii_addresses);
        assert!(!text(&["jorg@example.net"], "s", "b").unwrap().has_non_ascii_addresses);
    }

    #[test]
    fn line_endings_become_crlf_in_one_pass() {
        assert_eq!(crlf("a\nb\r\nc\rd\n"), "a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(crlf("\n\n"), "\r\n\r\n");
        assert_eq!(crlf("\r\r\n"), "\r\n\r\n");
        assert_eq!(crlf("ünï\ncødé"), "ünï\r\ncødé");
        assert_eq!(crlf(""), "");
        // What lettre gets has no LF without its CR, so its quadratic insert loop has
        // nothing to do.
        let big = "line\n".repeat(10_000);
        let out = crlf(&big);
        assert!(!out.replace("\r\n", "").contains('\n'));
        assert_eq!(out.len(), big.len() + 10_000);
    }

    #[test]
    fn only_crlf_line_breaks_take_the_fast_path() {
        for ok in ["", "a", "a\r\nb\r\n", "\r\n", "\r\n\r\n.x"] {
            assert!(is_crlf_only(ok.as_bytes()), "{ok:?}");
        }
        for bad in ["\n", "\r", "a\nb", "a\rb", "a\r\r\n", "a\r\n\n", "a\r"] {
            assert!(!is_crlf_only(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(dot_stuff("a\r\n.b\r\n"), "a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(".x"), "..x\r\n.\r\n");
        assert_eq!(dot_stuff("a\n.\nb"), "a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(dot_stuff(""), ".\r\n");
        assert_eq!(dot_stuff("a.b\r\n"), "a.b\r\n.\r\n");
        assert_eq!(dot_stuff("x\r\r\n"), "x\r\n\r\n.\r\n");
        assert_eq!(dot_stuff("é\n.é"), "é\r\n..é\r\n.\r\n");
        // The same through the CRLF-only path.
        assert_eq!(dot_stuff(".a\r\n.\r\nb.\r\n..c"), "..a\r\n..\r\nb.\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff("a\r\n"), "a\r\n.\r\n");
    }

    /// What lettre's own `MessageBuilder` makes of `email` (its encoding choices), given text
    /// with CRLF line endings (as before lettre saw it: lettre leaves a lone CR alone), with
    /// the same Date and Message-ID, dot-stuffed: `format` must produce exactly this.
    fn lettre_reference(email: &Email, message_id: &str, date: SystemTime) -> String {
        let mut b = lettre::Message::builder()
            .from(from().mailbox)
            .subject(email.subject.as_str())
            .date(date)
            .message_id(Some(message_id.to_owned()));
        for m in &email.to {
            b = b.to(m.parse().unwrap());
        }
        for m in &email.cc {
            b = b.cc(m.parse().unwrap());
        }
        for m in &email.reply_to {
            b = b.reply_to(m.parse().unwrap());
        }
        let text = email.text.as_deref().map(|t| SinglePart::plain(crlf(t)));
        let html = email.html.as_deref().map(|h| SinglePart::html(crlf(h)));
        let body = match (text, html) {
            (Some(t), Some(h)) => Err(MultiPart::alternative().singlepart(t).singlepart(h)),
            (Some(part), None) | (None, Some(part)) => Ok(part),
            (None, None) => Ok(SinglePart::plain(String::new())),
        };
        let built = if email.attachments.is_empty() {
            body.map_or_else(|alt| b.clone().multipart(alt), |part| b.clone().singlepart(part))
        } else {
            let mut mixed = body.map_or_else(
                |alt| MultiPart::mixed().multipart(alt),
                |part| MultiPart::mixed().singlepart(part),
            );
            for a in &email.attachments {
                let Source::Bytes(bytes) = &a.source else { panic!("bytes only") };
                let ct = ContentType::parse(&a.content_type()).unwrap();
                let body = match std::str::from_utf8(bytes) {
                    Ok(t) if a.content_type().starts_with("text/") => Body::new(crlf(t)),
                    _ => Body::new_with_encoding(bytes.to_vec(), ContentTransferEncoding::Base64)
                        .unwrap(),
                };
                let part = lettre::message::Attachment::new(a.filename.clone()).body(body, ct);
                mixed = mixed.singlepart(part);
            }
            b.multipart(mixed)
        };
        let mut message = built.unwrap();
        for (name, value) in &email.headers {
            let name = HeaderName::new_from_ascii(name.clone()).unwrap();
            message.headers_mut().insert_raw(HeaderValue::new(name, value.clone()));
        }
        dot_stuff(&String::from_utf8(message.formatted()).unwrap())
    }

    /// `format` for `email` with a fixed Date and Message-ID, beside lettre's reference.
    fn ours_and_lettres(email: &Email) -> (String, String) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let from = from();
        let parts = rt.block_on(check(&from, email)).unwrap();
        let (id, date) =
            ("<1@example.com>", SystemTime::UNIX_EPOCH + Duration::from_secs(1e9 as u64));
        let ours = format(&parts, id, date).unwrap();
        (without_boundaries(&ours), without_boundaries(&lettre_reference(email, id, date)))
    }

    /// `wire` with each random MIME boundary replaced by its number, in order of appearance.
    fn without_boundaries(wire: &str) -> String {
        let mut out = wire.to_owned();
        let mut rest = wire;
        let mut n = 0;
        while let Some(at) = rest.find("boundary=\"") {
            let value = &rest[at + 10..];
            let value = &value[..value.find('"').unwrap()];
            out = out.replace(value, &format!("BOUNDARY{n}"));
            rest = &rest[at + 10..];
            n += 1;
        }
        out
    }

    #[test]
    fn every_shape_is_formatted_exactly_as_lettres_builder_would() {
        let base = || {
            Email::new(
                "Zoë Doe <zoe@example.net>",
                "Grüße, and a subject long enough to be folded by the encoder",
            )
        };
        let shapes = [
            base(),
            base().with_text("short\nlines\n.dot\n"),
            // Around lettre's line length limit for 7bit.
            base().with_text(format!(
                "{}\n{}\n{}\n",
                "a".repeat(73),
                "b".repeat(74),
                "c".repeat(75)
            )),
            base().with_text(format!("{}\n", "d".repeat(76))),
            base().with_text(format!("{}\n{}", "e".repeat(10), "f".repeat(76))),
            base().with_text(format!("{}\n", "x".repeat(200))),
            base().with_text("Grüße aus Köln\r\nzweite Zeile\r"),
            base().with_text("\u{1F4EC}".repeat(40)),
            base().with_html("<p>h</p>\n"),
            base()
                .with_text("t")
                .with_html("<p>h</p>")
                .with_cc("c@example.net")
                .with_cc("Bob <b@example.net>"),
            base().with_to("second@example.net").with_reply_to("Help <help@example.com>"),
            base()
                .with_text("t")
                .with_header("List-Unsubscribe", "<https://example.com/u/zoe>")
                .with_header("X-Campaign", "Grüße 2026")
                .with_attachment(Attachment::from_bytes("a.bin", vec![0u8, 159, 146, 150, b'\n']))
                .with_attachment(Attachment::from_bytes("notes.txt", "line 1\nline 2\n")),
            base().with_text("t").with_header(".X-Dotted", "a field name may start with a dot"),
        ];
        for email in &shapes {
            let (ours, lettres) = ours_and_lettres(email);
            assert_eq!(ours, lettres, "{email:?}");
        }
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn any_body_is_formatted_exactly_as_lettres_builder_would(
                text in "([a-zé.\r\n ]{0,90}\n){0,4}[a-z.\r\n]{0,90}",
                html in proptest::option::of("[<>a-z/. \n]{0,100}"),
            ) {
                let mut email = Email::new("a@example.net", "s").with_text(text);
                if let Some(html) = html {
                    email = email.with_html(html);
                }
                let (ours, lettres) = ours_and_lettres(&email);
                prop_assert_eq!(ours, lettres);
            }
        }

        /// Reverses `dot_stuff`: the lines before the terminating dot, unstuffed.
        fn unstuff(wire: &str) -> Option<String> {
            let body = wire.strip_suffix(".\r\n")?;
            let mut out = String::new();
            for line in body.split_inclusive("\r\n") {
                out.push_str(line.strip_prefix('.').unwrap_or(line));
            }
            Some(out)
        }

        proptest! {
            #[test]
            fn dot_stuffing_round_trips_and_ends_only_at_the_end(text in "[a-zé.\r\n ]{0,200}") {
                let wire = dot_stuff(&text);
                prop_assert!(wire.ends_with(".\r\n"));
                // No line is a lone dot before the end, so the server sees one message.
                let early_end = wire.starts_with(".\r\n") && wire.len() > 3;
                prop_assert!(!early_end && !wire[..wire.len() - 3].contains("\r\n.\r\n"));
                prop_assert!(!wire.replace("\r\n", "").contains(['\r', '\n']));
                let mut want = crlf(&text);
                if !want.is_empty() && !want.ends_with("\r\n") {
                    want.push_str("\r\n");
                }
                prop_assert_eq!(unstuff(&wire), Some(want));
            }

            #[test]
            fn crlf_text_is_stuffed_as_any_other(lines in proptest::collection::vec("[a-z. ]{0,8}", 0..8), end in any::<bool>()) {
                let mut text = lines.join("\r\n");
                if end && !text.is_empty() {
                    text.push_str("\r\n");
                }
                let mut slow = String::new();
                if !normalise_into(&mut slow, &text, true) {
                    slow.push_str("\r\n");
                }
                slow.push_str(".\r\n");
                prop_assert_eq!(dot_stuff(&text), slow);
            }

            #[test]
            fn any_subject_recipient_or_header_never_panics_or_injects_a_header(
                subject in "\\PC{0,40}([\r\n]{1,2}[A-Za-z-]{1,10}: [a-z@.]{0,20}){0,3}",
                name in "[A-Za-z \r\n:<>@.\"]{0,30}",
                header_name in "[A-Za-z\r\n: -]{0,12}",
                header_value in "\\PC{0,20}([\r\n]{1,2}[A-Za-z-]{1,10}: [a-z@.]{0,20}){0,2}",
            ) {
                let rcpt = format!("{name} <a@example.net>");
                let email = Email::new(rcpt, subject)
                    .with_text("body")
                    .with_header(header_name.clone(), header_value);
                match build(&email) {
                    Ok(p) => {
                        let known = ["From:", "To:", "Subject:", "Date:", "Message-ID:",
                            "Content-Type:", "Content-Transfer-Encoding:", "MIME-Version:"];
                        for l in headers(&p.wire) {
                            let extra = l.strip_prefix(header_name.as_str())
                                .is_some_and(|r| r.starts_with(": "));
                            prop_assert!(
                                l.starts_with([' ', '\t']) || extra
                                    || known.iter().any(|k| l.starts_with(k)),
                                "unexpected header line {:?}", l
                            );
                        }
                    }
                    Err(e) => prop_assert!(
                        e.is_bad_address() || matches!(e, Error::InvalidHeader { .. }), "{}", e
                    ),
                }
            }
        }
    }
}
