//! RFC 5322 header parsing and RFC 2047 encoded-word decoding (pure functions).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Splits headers from the body. Returns the unfolded headers (values trimmed, not decoded)
/// and the offset where the body starts. Content that does not start with a header block is
/// all body.
pub fn parse_headers(data: &[u8]) -> (Vec<(String, String)>, usize) {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let end = data[pos..].iter().position(|&b| b == b'\n').map_or(data.len(), |i| pos + i + 1);
        let line = &data[pos..end];
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            headers.shrink_to_fit();
            return (headers, end);
        }
        if matches!(text[0], b' ' | b'\t') {
            match headers.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(String::from_utf8_lossy(text).trim());
                }
                None => return (Vec::new(), 0),
            }
        } else {
            let Some(colon) = text.iter().position(|&b| b == b':') else {
                // Not a header: there is no header block, the whole content is body.
                return (Vec::new(), 0);
            };
            let name = &text[..colon];
            if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
                return (Vec::new(), 0);
            }
            let value = String::from_utf8_lossy(&text[colon + 1..]).trim().to_owned();
            headers.push((String::from_utf8_lossy(name).into_owned(), value));
        }
        pos = end;
    }
    headers.shrink_to_fit();
    (headers, data.len())
}

/// Decodes RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?iso-8859-1?Q?...?=`) in a header
/// value; whitespace between two adjacent encoded words is dropped, as the RFC says. Words
/// that do not decode are left as they are. UTF-8, US-ASCII and ISO-8859-1 are decoded;
/// other charsets are read as UTF-8 (lossy).
pub fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some((decoded, used)) = encoded_word(rest) {
            // Whitespace between two encoded words is not part of the text.
            if !last_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&decoded);
            rest = &rest[used..];
            last_was_word = true;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        rest = &rest[c.len_utf8()..];
        if c == ' ' || c == '\t' {
            pending_space.push(c);
            continue;
        }
        out.push_str(&pending_space);
        pending_space.clear();
        out.push(c);
        last_was_word = false;
    }
    out.push_str(&pending_space);
    out
}

/// Decodes one encoded word at the start of `s`: the text and the bytes consumed.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let text = &inner[..end];
    if charset.is_empty() || text.contains(' ') {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => B64.decode(text).ok()?,
        "Q" | "q" => q_decode(text)?,
        _ => return None,
    };
    // Measured on the word as sent: the charset below may be shortened.
    let used = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    // RFC 2231 language suffix: `utf-8*en`.
    let charset = charset.split('*').next().unwrap_or(charset).to_ascii_lowercase();
    let decoded = match charset.as_str() {
        "iso-8859-1" | "latin1" | "latin-1" => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    Some((decoded, used))
}

fn q_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'_' => out.push(b' '),
            b'=' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// The body as text: a single-part body sent as `base64` or `quoted-printable` is decoded
/// (lettre picks one of them for non-ASCII text), anything else is returned as sent. Bytes
/// that are not UTF-8 become U+FFFD.
pub fn decode_body(headers: &[(String, String)], body: &[u8]) -> String {
    let header = |name: &str| {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    let multipart = header("Content-Type")
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("multipart/"));
    let encoding = header("Content-Transfer-Encoding").map(|e| e.trim().to_ascii_lowercase());
    let decoded = match encoding.as_deref() {
        _ if multipart => None,
        Some("base64") => {
            let compact: Vec<u8> =
                body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            B64.decode(compact).ok()
        }
        Some("quoted-printable") => Some(qp_decode(body)),
        _ => None,
    };
    match decoded {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => String::from_utf8_lossy(body).into_owned(),
    }
}

/// Quoted-printable (RFC 2045): `=XX` is a byte, `=` at a line end is a soft break; a
/// malformed escape is kept as it is.
fn qp_decode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'=' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let rest = &body[i + 1..];
        if rest.starts_with(b"\r\n") {
            i += 3;
        } else if rest.starts_with(b"\n") {
            i += 2;
        } else if let Some(b) = rest
            .get(..2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(b'=');
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn decodes_transfer_encodings_of_single_part_bodies() {
        let qp = hdrs(&[("Content-Transfer-Encoding", "quoted-printable")]);
        assert_eq!(
            decode_body(&qp, b"caf=C3=A9 =\r\nau lait=3D=\r\n\r\n=ZZ\r\n"),
            "café au lait=\r\n=ZZ\r\n"
        );
        let b64 = hdrs(&[("content-transfer-encoding", "Base64")]);
        assert_eq!(decode_body(&b64, b"w6l0\r\nw6k=\r\n"), "été");
        assert_eq!(decode_body(&b64, b"not base64!\r\n"), "not base64!\r\n");
        let multi = hdrs(&[
            ("Content-Type", "multipart/alternative; boundary=x"),
            ("Content-Transfer-Encoding", "base64"),
        ]);
        assert_eq!(decode_body(&multi, b"w6l0\r\n"), "w6l0\r\n");
        assert_eq!(decode_body(&[], b"plain\r\n"), "plain\r\n");
    }

    #[test]
    fn decodes_encoded_words() {
        assert_eq!(decode_words("plain subject"), "plain subject");
        assert_eq!(decode_words("=?utf-8?b?w6l0w6k=?="), "été");
        assert_eq!(decode_words("=?UTF-8?Q?caf=C3=A9_au_lait?="), "café au lait");
        assert_eq!(decode_words("=?iso-8859-1?q?caf=E9?= ok"), "café ok");
        // Adjacent words join without the folding whitespace; plain text keeps its spaces.
        assert_eq!(decode_words("=?utf-8?B?SGVsbG8s?= =?utf-8?B?IHdvcmxk?="), "Hello, world");
        assert_eq!(decode_words("Re: =?utf-8?Q?=C3=A0?= bient\u{f4}t"), "Re: à bientôt");
        // Broken words stay as sent.
        assert_eq!(decode_words("=?utf-8?B?!!!?="), "=?utf-8?B?!!!?=");
        assert_eq!(decode_words("=?utf-8?X?abc?="), "=?utf-8?X?abc?=");
        assert_eq!(decode_words("=?utf-8?Q?=Z?="), "=?utf-8?Q?=Z?=");
        assert_eq!(decode_words("a =? b"), "a =? b");
    }

    #[test]
    fn a_language_suffix_is_dropped_and_the_whole_word_consumed() {
        assert_eq!(decode_words("=?utf-8*en?Q?a?= x"), "a x");
        // Non-ASCII text after a suffixed charset: the end of the word must not be cut
        // inside a character (this panicked when the suffix was not counted).
        assert_eq!(decode_words("=?utf-8*en?Q?\u{e9}\u{e9}?=!"), "\u{e9}\u{e9}!");
        assert_eq!(decode_words("=?ISO-8859-1*fr?Q?caf=E9?="), "caf\u{e9}");
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(s in "(=\\?[a-z0-9*-]{0,8}\\?[BQbq]\\?[ -~\u{e9}\u{20ac}]{0,20}\\?=| |[ -~]{0,5}){0,6}") {
            let _ = decode_words(&s);
        }
    }
}
