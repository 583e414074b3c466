//! SMTP replies read off the wire by the mailer itself, for the commands of a transaction
//! (MAIL, RCPT, DATA, the message, RSET). lettre reads the greeting, EHLO, STARTTLS, AUTH and
//! QUIT; here each reply costs a scan for its line ends instead of lettre's `String` per reply,
//! `Vec<String>` of lines and parser combinators, and a reply already in the buffer (the
//! second and third of a pipelined group) needs no read and no timer.
//!
//! Only a positive one-line reply (`250 ...`, `354 ...`) is decoded here; anything else (a
//! multi-line reply, a negative one, garbage) goes through lettre's own reply parser, so what
//! is accepted and the text an error carries stay lettre's.

use lettre::transport::smtp::response::{Code, Response};

/// The longest reply accepted, and the longest line (lettre's limits).
const MAX_REPLY: usize = 100_000;
const MAX_LINE: usize = 1000;

/// A reply the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// 2xx or 3xx.
    Positive(u16),
    /// 4xx or 5xx, with its text as lettre would give it.
    Negative(u16, String),
}

/// The first complete reply in `raw` and the bytes it takes; `Ok(None)` until its last line
/// (`ddd text`) has arrived.
pub(crate) fn parse(raw: &[u8]) -> Result<Option<(Reply, usize)>, &'static str> {
    let mut start = 0;
    loop {
        let Some(len) = crlf(&raw[start..]) else {
            if raw.len() - start > MAX_LINE {
                return Err("reply line too long");
            }
            return Ok(None);
        };
        if len > MAX_LINE {
            return Err("reply line too long");
        }
        let end = start + len + 2;
        if end > MAX_REPLY {
            return Err("reply too long");
        }
        match raw.get(start + 3) {
            Some(b'-') => start = end,
            _ => return decode(&raw[..end]).map(|reply| Some((reply, end))),
        }
    }
}

/// Where the first CRLF of `raw` starts (a byte search for the LF: for a line this short,
/// cheaper than a substring search).
fn crlf(raw: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &raw[from..]) {
        let lf = from + i;
        if lf > 0 && raw[lf - 1] == b'\r' {
            return Some(lf - 1);
        }
        from = lf + 1;
    }
    None
}

/// Decodes one complete reply: a positive single line here, the rest through lettre.
fn decode(reply: &[u8]) -> Result<Reply, &'static str> {
    if let [a @ b'2'..=b'3', b @ b'0'..=b'5', c @ b'0'..=b'9', b' ', ..] = reply
        && !reply[4..reply.len() - 2].contains(&b'\n')
    {
        return Ok(Reply::Positive(digits(*a, *b, *c)));
    }
    let text = std::str::from_utf8(reply).map_err(|_| "reply is not UTF-8")?;
    let response: Response = text.parse().map_err(|_| "malformed reply")?;
    let code = u16::from(response.code());
    Ok(match code {
        200..400 => Reply::Positive(code),
        _ => Reply::Negative(code, joined(&response)),
    })
}

fn digits(a: u8, b: u8, c: u8) -> u16 {
    u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
}

/// The reply's lines joined with spaces, an enhanced status code (RFC 2034) that repeats the
/// first line's said once: the text lettre puts in its errors.
fn joined(response: &Response) -> String {
    let mut lines = response.message();
    let Some(first) = lines.next() else { return String::new() };
    let repeated = enhanced_status_code(first, response.code());
    let mut out = String::from(first);
    for line in lines {
        out.push(' ');
        out.push_str(match repeated {
            Some(code) => line
                .strip_prefix(code)
                .filter(|rest| rest.starts_with(' '))
                .map_or(line, str::trim_start),
            None => line,
        });
    }
    out
}

/// The enhanced status code `first` starts with (`4.4.2`), if it has one of `code`'s class.
fn enhanced_status_code(first: &str, code: Code) -> Option<&str> {
    let class = match u16::from(code) / 100 {
        2 => "2",
        4 => "4",
        5 => "5",
        _ => return None,
    };
    let word = first.split_whitespace().next()?;
    let (c, rest) = word.split_once('.')?;
    let (subject, detail) = rest.split_once('.')?;
    let number =
        |part: &str| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    (c == class && number(subject) && number(detail)).then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(raw: &str) -> Result<Option<(Reply, usize)>, &'static str> {
        parse(raw.as_bytes())
    }

    #[test]
    fn positive_replies_and_how_much_they_take() {
        assert_eq!(one("250 2.1.0 Ok\r\n"), Ok(Some((Reply::Positive(250), 14))));
        assert_eq!(one("354 go ahead\r\n250 next"), Ok(Some((Reply::Positive(354), 14))));
        let multi = "250-first\r\n250 second\r\n";
        assert_eq!(one(multi), Ok(Some((Reply::Positive(250), multi.len()))));
        assert_eq!(one("250 Ok\r\n250 2.1.5 Ok\r\n").unwrap().unwrap().1, 8);
    }

    #[test]
    fn incomplete_replies_wait_for_more() {
        for partial in ["", "25", "250 Ok", "250 Ok\r", "250-first\r\n", "250-first\r\n250 sec"] {
            assert_eq!(one(partial), Ok(None), "{partial:?}");
        }
    }

    #[test]
    fn negative_replies_carry_lettres_text() {
        let r = one("421 4.4.2 srv Error: timeout exceeded\r\n").unwrap().unwrap().0;
        assert_eq!(r, Reply::Negative(421, "4.4.2 srv Error: timeout exceeded".into()));
        let r = one("550-5.1.1 no such user\r\n550 5.1.1 try another\r\n").unwrap().unwrap().0;
        assert_eq!(r, Reply::Negative(550, "5.1.1 no such user try another".into()));
        let r = one("451-first\r\n451 second\r\n").unwrap().unwrap().0;
        assert_eq!(r, Reply::Negative(451, "first second".into()));
    }

    #[test]
    fn only_crlf_ends_a_line() {
        assert_eq!(crlf(b"250 a\nb\r\n"), Some(7));
        assert_eq!(crlf(b"\n\r\n"), Some(1));
        assert_eq!(crlf(b"250 Ok\n"), None);
        assert!(one("250 a\nb\r\n").unwrap().is_some(), "lettre's verdict on a bare LF inside");
    }

    #[test]
    fn garbage_is_an_error_not_a_reply() {
        for bad in ["hello\r\n", "250-a\r\n251 b\r\n", "2500 x\r\n", "600 x\r\n", "25x y\r\n"] {
            assert!(one(bad).is_err(), "{bad:?}: {:?}", one(bad));
        }
        assert!(parse(&[b'2'; 2000]).is_err(), "no line end in sight");
        let long = format!("250 {}\r\n", "x".repeat(1200));
        assert!(one(&long).is_err());
    }

    #[test]
    fn matches_lettres_verdict_on_what_it_accepts() {
        for raw in ["250 Ok\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n", "221 2.0.0 Bye\r\n"] {
            let (reply, _) = one(raw).unwrap().unwrap();
            let lettre: Response = raw.parse().unwrap();
            assert_eq!(reply, Reply::Positive(u16::from(lettre.code())), "{raw:?}");
        }
    }
}
