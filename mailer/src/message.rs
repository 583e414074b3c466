//! Address validation and message building: the bytes and envelope of one send, kept so a
//! resend after a lost connection sends exactly the same message (same Message-ID).

use std::fmt::Write as _;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{Address, Message};

use crate::Error;

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
    format!("<{id:032x}@{domain}>")
}

/// Builds the message (Date, Message-ID, From, To, UTF-8 Subject, text body) and its envelope.
pub(crate) fn prepare(
    from: &Mailbox,
    to: &[&str],
    subject: &str,
    body: &str,
) -> Result<Prepared, Error> {
    if to.is_empty() {
        return Err(Error::InvalidMessage("no recipients".into()));
    }
    let recipients = to.iter().map(|r| parse_mailbox(r)).collect::<Result<Vec<_>, _>>()?;
    let message_id = new_message_id(from.email.domain());
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .date_now()
        .message_id(Some(message_id.clone()));
    for r in &recipients {
        builder = builder.to(r.clone());
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .map_err(|e| Error::InvalidMessage(e.to_string()))?;
    let formatted = message.formatted();
    let is_8bit = !formatted.is_ascii();
    // lettre formats from `&str` parts, so this holds; an error here would be a lettre bug,
    // reported rather than unwrapped.
    let text = String::from_utf8(formatted)
        .map_err(|_| Error::InvalidMessage("formatted message is not UTF-8".into()))?;
    let to: Vec<Address> = recipients.into_iter().map(|m| m.email).collect();
    let has_non_ascii_addresses =
        !addr_str(&from.email).is_ascii() || to.iter().any(|a| !addr_str(a).is_ascii());
    Ok(Prepared {
        from: from.email.clone(),
        to,
        message_id,
        wire: dot_stuff(&text),
        has_non_ascii_addresses,
        is_8bit,
    })
}

/// SMTP transparency (RFC 5321 4.5.2): a line starting with `.` gets another `.`; lines end in
/// CRLF (a bare LF or CR becomes CRLF); the result ends with the terminating `.\r\n`.
pub(crate) fn dot_stuff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 8);
    let mut at_line_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
                at_line_start = true;
            }
            '.' if at_line_start => {
                out.push_str("..");
                at_line_start = false;
            }
            _ => {
                out.push(c);
                at_line_start = false;
            }
        }
    }
    if !at_line_start {
        out.push_str("\r\n");
    }
    let _ = out.write_str(".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> Mailbox {
        parse_mailbox("Notifier <noreply@example.com>").unwrap()
    }

    fn headers(wire: &str) -> Vec<&str> {
        wire.split("\r\n").take_while(|l| !l.is_empty()).collect()
    }

    #[test]
    fn builds_date_message_id_subject_and_body() {
        let p = prepare(&from(), &["a@example.net"], "Grüße", "hello\n.dot line\n").unwrap();
        let h = headers(&p.wire);
        assert!(h.iter().any(|l| l.starts_with("Date: ")), "{h:?}");
        assert!(h.contains(&format!("Message-ID: {}", p.message_id).as_str()), "{h:?}");
        assert!(p.message_id.ends_with("@example.com>"));
        assert!(h.iter().any(|l| l.starts_with("Subject: =?utf-8?")), "{h:?}");
        assert!(h.contains(&"To: a@example.net"), "{h:?}");
        assert!(p.wire.ends_with("\r\n.\r\n"));
        assert_eq!(p.to, ["a@example.net".parse::<Address>().unwrap()]);
    }

    #[test]
    fn message_ids_differ() {
        let a = prepare(&from(), &["a@example.net"], "s", "b").unwrap();
        let b = prepare(&from(), &["a@example.net"], "s", "b").unwrap();
        assert_ne!(a.message_id, b.message_id);
    }

    #[test]
    fn crlf_in_subject_never_starts_a_header() {
        let p = prepare(&from(), &["a@example.net"], "hi\r\nBcc: evil@x.test\r\n\r\nbody", "b")
            .unwrap();
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
            let e = prepare(&from(), &[bad], "s", "b").unwrap_err();
            assert!(e.is_bad_address() && e.is_permanent(), "{bad:?}: {e}");
        }
        assert!(parse_mailbox("Evil\r\nBcc: x@y.test <a@example.net>").is_err());
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
        assert!(matches!(prepare(&from(), &[], "s", "b"), Err(Error::InvalidMessage(_))));
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(dot_stuff("a\r\n.b\r\n"), "a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(".x"), "..x\r\n.\r\n");
        assert_eq!(dot_stuff("a\n.\nb"), "a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(dot_stuff(""), ".\r\n");
        assert_eq!(dot_stuff("a.b\r\n"), "a.b\r\n.\r\n");
        assert_eq!(dot_stuff("x\r\r\n"), "x\r\n\r\n.\r\n");
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

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
            fn dot_stuffing_round_trips_and_ends_only_at_the_end(text in "[a-z.\r\n ]{0,200}") {
                let wire = dot_stuff(&text);
                prop_assert!(wire.ends_with(".\r\n"));
                // No line is a lone dot before the end, so the server sees one message.
                let early_end = wire.starts_with(".\r\n") && wire.len() > 3;
                prop_assert!(!early_end && !wire[..wire.len() - 3].contains("\r\n.\r\n"));
                prop_assert!(!wire.replace("\r\n", "").contains(['\r', '\n']));
                let normalised = text.replace("\r\n", "\n").replace('\r', "\n").replace('\n', "\r\n");
                let mut want = normalised.clone();
                if !want.is_empty() && !want.ends_with("\r\n") {
                    want.push_str("\r\n");
                }
                prop_assert_eq!(unstuff(&wire), Some(want));
            }

            #[test]
            fn any_subject_and_recipient_text_never_panics_or_injects_a_header(
                subject in "\\PC{0,40}([\r\n]{1,2}[A-Za-z-]{1,10}: [a-z@.]{0,20}){0,3}",
                name in "[A-Za-z \r\n:<>@.\"]{0,30}",
            ) {
                let from = parse_mailbox("n@example.com").unwrap();
                let rcpt = format!("{name} <a@example.net>");
                match prepare(&from, &[rcpt.as_str()], &subject, "body") {
                    Ok(p) => {
                        let headers: Vec<&str> =
                            p.wire.split("\r\n").take_while(|l| !l.is_empty()).collect();
                        let known = ["From:", "To:", "Subject:", "Date:", "Message-ID:",
                            "Content-Type:", "Content-Transfer-Encoding:", "MIME-Version:"];
                        for l in headers {
                            prop_assert!(
                                l.starts_with([' ', '\t']) || known.iter().any(|k| l.starts_with(k)),
                                "unexpected header line {:?}", l
                            );
                        }
                    }
                    Err(e) => prop_assert!(e.is_bad_address(), "{}", e),
                }
            }
        }
    }
}
