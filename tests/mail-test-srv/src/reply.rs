//! SMTP replies: a code and one or more text lines, rendered with the right `-`/space markers.

use std::borrow::Cow;

/// One SMTP reply. Most replies are a single static line, so they cost no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text lines (enhanced status code included in the text); never empty.
    pub lines: Vec<Cow<'static, str>>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply { code, lines: vec![text.into()] }
    }

    /// A multi-line reply (`250-first`, ..., `250 last`).
    pub fn multi(code: u16, lines: Vec<Cow<'static, str>>) -> Reply {
        debug_assert!(!lines.is_empty());
        Reply { code, lines }
    }

    /// Appends the wire form (CRLF-terminated lines) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            // Reply text is ours, but it can quote client input (a VRFY argument, an
            // address): strip CR/LF so a client can never forge a second reply line.
            let mut code = itoa3(self.code);
            code[3] = sep as u8;
            out.extend_from_slice(&code);
            out.extend(line.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a string (for tests and logs).
    pub fn to_wire(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whether this reply is a 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
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
    }

    #[test]
    fn never_emits_a_second_line() {
        assert_eq!(
            Reply::new(252, "x\r\n250 forged".to_string()).to_wire(),
            "252 x  250 forged\r\n"
        );
    }
}
