//! SMTP replies: a code and one or more text lines, rendered with the right `-`/space markers.

use std::borrow::Cow;

/// One SMTP reply. A one-line reply with static text costs no allocation (most of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The three-digit code.
    pub(crate) code: u16,
    /// The first (often the only) text line, enhanced status code included.
    first: Cow<'static, str>,
    /// The lines after the first, for multi-line replies (EHLO).
    rest: Vec<Cow<'static, str>>,
}

impl Reply {
    /// A one-line reply.
    pub(crate) fn new(code: u16, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply { code, first: text.into(), rest: Vec::new() }
    }

    /// A multi-line reply (`250-first`, ..., `250 last`).
    pub(crate) fn multi(code: u16, mut lines: Vec<Cow<'static, str>>) -> Reply {
        debug_assert!(!lines.is_empty());
        let first = if lines.is_empty() { Cow::Borrowed("") } else { lines.remove(0) };
        Reply { code, first, rest: lines }
    }

    /// Appends the wire form (CRLF-terminated lines) to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.rest.len();
        for (i, line) in std::iter::once(&self.first).chain(&self.rest).enumerate() {
            let mut code = itoa3(self.code);
            code[3] = if i == last { b' ' } else { b'-' };
            out.extend_from_slice(&code);
            // Reply text is ours, but it can quote client input (a parameter, an address):
            // CR and LF become spaces so a client can never forge a second reply line.
            let start = out.len();
            out.extend_from_slice(line.as_bytes());
            if memchr::memchr2(b'\r', b'\n', line.as_bytes()).is_some() {
                for b in &mut out[start..] {
                    if *b == b'\r' || *b == b'\n' {
                        *b = b' ';
                    }
                }
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a string (for tests and logs).
    #[cfg(test)]
    pub(crate) fn to_wire(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn itoa3(code: u16) -> [u8; 4] {
    let code = code.min(999);
    [b'0' + (code / 100) as u8, b'0' + (code / 10 % 10) as u8, b'0' + (code % 10) as u8, b' ']
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_single_and_multi_line() {
        assert_eq!(Reply::new(250, "2.0.0 Ok").to_wire(), "250 2.0.0 Ok\r\n");
        let r = Reply::multi(250, vec!["host".into(), "PIPELINING".into(), "8BITMIME".into()]);
        assert_eq!(r.to_wire(), "250-host\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
        assert_eq!(Reply::multi(250, vec!["one".into()]).to_wire(), "250 one\r\n");
    }

    #[test]
    fn never_emits_a_second_line() {
        assert_eq!(
            Reply::new(252, "x\r\n250 forged".to_string()).to_wire(),
            "252 x  250 forged\r\n"
        );
    }
}
