//! Message content after `354`: where it ends, dot-unstuffing, and bare line endings. Pure
//! (bytes in, bytes out, any chunking), so every smuggling variant is pinned and fuzzed here.
//!
//! The rules, as Postfix ≥ 3.9 applies them (`smtpd_forbid_bare_newline`):
//!
//! - Content is split into lines at LF. A line ends in CRLF, or in a *bare* LF (no CR before it).
//! - Only `CRLF . CRLF` ends the content: a line that is exactly `.`, ending in CRLF, after a
//!   line that ended in CRLF (the `DATA` command's own line counts). `<LF>.<LF>`,
//!   `<CR><LF>.<LF>`, `<LF>.<CR><LF>`, `<CR>.<CR>` and the like are content, never the end, so
//!   no text after them can run as commands (SMTP smuggling, CVE-2023-51764).
//! - Dot-unstuffing: a line that starts with `.` loses that dot, whatever its ending. A lone
//!   `.` line that does not end the content (a bare LF on either side) is kept as `.`: Postfix
//!   drops that line, but keeping it stores what a client that forgot to dot-stuff its LF
//!   lines (curl) meant to send.
//! - [`BareLf::Normalize`] (the default) stores every line ending as CRLF and keeps a bare CR
//!   as it is; [`BareLf::Reject`] reads the content to its end and refuses the message if it
//!   held a bare LF or a bare CR (a CR not followed by LF).
//! - At most `max_size` bytes are kept (CRLF endings included); past that the rest is read to
//!   the end and dropped, and the outcome is [`Outcome::TooBig`].

use std::fmt;
use std::str::FromStr;

/// What the server does with a bare LF (and a bare CR) from a client: in content and in
/// commands. Either way only `CRLF.CRLF` ends the content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BareLf {
    /// Postfix's default (`normalize`): a bare LF ends a line, stored as CRLF; commands may end
    /// in a bare LF.
    #[default]
    Normalize,
    /// Postfix's `reject`: a message that holds a bare LF or a bare CR is read to its end and
    /// refused with `550 5.5.2`; a command line ending in a bare LF gets `550 5.5.2` and the
    /// connection is closed. For catching clients that send them.
    Reject,
}

impl BareLf {
    /// `normalize` or `reject`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BareLf::Normalize => "normalize",
            BareLf::Reject => "reject",
        }
    }
}

impl fmt::Display for BareLf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BareLf {
    type Err = String;
    fn from_str(s: &str) -> Result<BareLf, String> {
        match s.to_ascii_lowercase().as_str() {
            "normalize" => Ok(BareLf::Normalize),
            "reject" => Ok(BareLf::Reject),
            _ => Err(format!("unknown bare-LF policy {s:?} (normalize, reject)")),
        }
    }
}

/// A bare line-ending character found in content or a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bare {
    /// An LF without a CR before it.
    Lf,
    /// A CR without an LF after it.
    Cr,
}

/// How a message's content ended, once its final `CRLF.CRLF` was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Kept whole: dot-unstuffed, CRLF line endings, without the final dot line.
    Complete,
    /// Over `max_size`: read to the end, not kept.
    TooBig,
    /// Held a bare LF or CR under [`BareLf::Reject`]: read to the end, not kept.
    Bare(Bare),
    /// Dropped by the caller ([`Decoder::drop_content`]): read to the end, not kept.
    Dropped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// The line so far is `.`.
    Dot,
    /// The line so far is `.` CR.
    DotCr,
    /// Inside a line; `cr`: its last byte so far was a CR.
    Text { cr: bool },
}

/// Decodes one message's content, fed in chunks of any size.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    /// The previous line ended in CRLF (so a `.` CRLF line now ends the content).
    prev_crlf: bool,
    policy: BareLf,
    max_size: usize,
    bare: Option<Bare>,
    too_big: bool,
    dropped: bool,
}

impl Decoder {
    /// A decoder for content that follows a `DATA` line; `after_crlf`: that line ended in CRLF.
    pub(crate) fn new(max_size: usize, policy: BareLf, after_crlf: bool) -> Decoder {
        Decoder {
            state: State::LineStart,
            prev_crlf: after_crlf,
            policy,
            max_size,
            bare: None,
            too_big: false,
            dropped: false,
        }
    }

    /// Decodes `input` into `out`. Returns `Some(n)` when the final dot line ended at
    /// `input[n - 1]` (what follows is the next command), `None` when more input is needed.
    /// Appends at most `2 * input.len() + 2` bytes (a bare LF becomes CRLF; `.` and CR held
    /// back from the previous chunk).
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::LineStart => {
                    if input[i] == b'.' {
                        self.state = State::Dot;
                        i += 1;
                    } else {
                        self.state = State::Text { cr: false };
                    }
                }
                State::Dot => match input[i] {
                    b'\r' => {
                        self.state = State::DotCr;
                        i += 1;
                    }
                    b'\n' => {
                        // `.` then a bare LF: content, kept as a `.` line.
                        self.note(Bare::Lf);
                        self.emit(out, b".\r\n");
                        self.end_line(false);
                        i += 1;
                    }
                    // Dot-stuffed: the dot goes, the rest is text.
                    _ => self.state = State::Text { cr: false },
                },
                State::DotCr => {
                    if input[i] == b'\n' {
                        i += 1;
                        if self.prev_crlf {
                            return Some(i);
                        }
                        // `.` CRLF after a bare LF: content, kept as a `.` line.
                        self.emit(out, b".\r\n");
                        self.end_line(true);
                    } else {
                        // `.` CR then text: dot-stuffed, and the CR is bare.
                        self.note(Bare::Cr);
                        self.emit(out, b"\r");
                        self.state = State::Text { cr: false };
                    }
                }
                State::Text { cr: true } => {
                    // The last byte kept was a CR: with this LF it ends the line.
                    if input[i] == b'\n' {
                        self.emit(out, b"\n");
                        self.end_line(true);
                        i += 1;
                    } else {
                        self.note(Bare::Cr);
                        self.state = State::Text { cr: false };
                    }
                }
                State::Text { cr: false } => {
                    // One scan per line: its CRLF is the first CR or LF in it, unless bare.
                    let rest = &input[i..];
                    let Some(n) = memchr::memchr2(b'\r', b'\n', rest) else {
                        self.emit(out, rest);
                        return None;
                    };
                    if rest[n] == b'\n' {
                        self.note(Bare::Lf);
                        self.emit(out, &rest[..n]);
                        self.emit(out, b"\r\n");
                        self.end_line(false);
                        i += n + 1;
                    } else if rest.get(n + 1) == Some(&b'\n') {
                        self.emit(out, &rest[..n + 2]);
                        self.end_line(true);
                        i += n + 2;
                    } else {
                        // A CR at the end of this input, or a bare one.
                        self.emit(out, &rest[..=n]);
                        if n + 1 == rest.len() {
                            self.state = State::Text { cr: true };
                        } else {
                            self.note(Bare::Cr);
                        }
                        i += n + 1;
                    }
                }
            }
        }
        None
    }

    /// Stops keeping content (the caller ran out of room): the rest is read and dropped.
    pub(crate) fn drop_content(&mut self, out: &mut Vec<u8>) {
        self.dropped = true;
        out.clear();
    }

    /// How the content ended (valid once [`Decoder::feed`] returned `Some`).
    pub(crate) fn outcome(&self) -> Outcome {
        match (self.policy, self.bare) {
            (BareLf::Reject, Some(bare)) => Outcome::Bare(bare),
            _ if self.too_big => Outcome::TooBig,
            _ if self.dropped => Outcome::Dropped,
            _ => Outcome::Complete,
        }
    }

    /// The first bare LF or CR seen, if any (under either policy).
    #[cfg(test)]
    pub(crate) fn bare(&self) -> Option<Bare> {
        self.bare
    }

    fn end_line(&mut self, crlf: bool) {
        self.prev_crlf = crlf;
        self.state = State::LineStart;
    }

    fn note(&mut self, bare: Bare) {
        if self.bare.is_none() {
            self.bare = Some(bare);
        }
    }

    /// Whether content is still being kept (not over the cap, not dropped, not refused).
    pub(crate) fn keeping(&self) -> bool {
        !(self.too_big || self.dropped || (self.policy == BareLf::Reject && self.bare.is_some()))
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        if !self.keeping() {
            if !out.is_empty() {
                // A refused message keeps nothing: the memory is free for the rest of it.
                out.clear();
            }
            return;
        }
        if out.len() + bytes.len() > self.max_size {
            self.too_big = true;
            out.clear();
            return;
        }
        out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in one piece: (content, outcome, bytes consumed), or `None` if the
    /// content never ended.
    fn decode(input: &[u8], policy: BareLf) -> Option<(Vec<u8>, Outcome, usize)> {
        let mut d = Decoder::new(1 << 20, policy, true);
        let mut out = Vec::new();
        let n = d.feed(input, &mut out)?;
        Some((out, d.outcome(), n))
    }

    fn normalized(input: &[u8]) -> Option<(String, usize)> {
        let (out, outcome, n) = decode(input, BareLf::Normalize)?;
        assert_eq!(outcome, Outcome::Complete);
        Some((String::from_utf8(out).unwrap(), n))
    }

    #[test]
    fn crlf_dot_crlf_ends_and_unstuffs() {
        let input = b"Subject: x\r\n\r\n..leading dot\r\n.\x20\r\nx.y\r\n.\r\nQUIT\r\n";
        let (out, n) = normalized(input).unwrap();
        assert_eq!(out, "Subject: x\r\n\r\n.leading dot\r\n \r\nx.y\r\n");
        assert_eq!(&input[n..], b"QUIT\r\n");
        assert_eq!(normalized(b".\r\n"), Some((String::new(), 3)));
        assert_eq!(normalized(b"no end\r\n"), None);
    }

    #[test]
    fn bare_lf_lines_are_normalized_and_unstuffed() {
        let (out, _) = normalized(b"lf\n..dot\nmixed\r\n.\r\n").unwrap();
        assert_eq!(out, "lf\r\n.dot\r\nmixed\r\n");
        let (out, _) = normalized(b"a\r\r\nb\rc\r\n.\r\n").unwrap();
        assert_eq!(out, "a\r\r\nb\rc\r\n", "bare CRs are kept as they are");
    }

    /// Each sequence that some server took for the end of the content, followed by a
    /// smuggled transaction: never the end; the smuggled text is content.
    const SMUGGLED: &[u8] =
        b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@x.test>\r\nDATA\r\nSubject: smuggled\r\n";

    #[test]
    fn no_smuggling_variant_ends_the_content() {
        let variants: &[(&[u8], &str, Bare)] = &[
            (b"\n.\n", "\r\n.\r\n", Bare::Lf),
            (b"\r\n.\n", "\r\n.\r\n", Bare::Lf),
            (b"\n.\r\n", "\r\n.\r\n", Bare::Lf),
            (b"\r.\r", "\r.\r", Bare::Cr),
            (b"\r.\r\n", "\r.\r\n", Bare::Cr),
            (b"\r\n.\r", "\r\n\r", Bare::Cr),
            (b"\n.\r", "\r\n\r", Bare::Lf),
            (b"\r\n.\r\r\n", "\r\n\r\r\n", Bare::Cr),
            (b"\n\n.\n\n", "\r\n\r\n.\r\n\r\n", Bare::Lf),
        ];
        for &(variant, stored, bare) in variants {
            let mut input = b"body".to_vec();
            input.extend_from_slice(variant);
            input.extend_from_slice(SMUGGLED);
            input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            let (out, n) = normalized(&input).unwrap_or_else(|| panic!("{variant:?}: no end"));
            let mut expected = format!("body{stored}").into_bytes();
            expected.extend_from_slice(SMUGGLED);
            expected.extend_from_slice(b"\r\n");
            assert_eq!(out.as_bytes(), expected, "{variant:?}");
            assert_eq!(&input[n..], b"QUIT\r\n", "{variant:?}");
            let (out, outcome, n2) = decode(&input, BareLf::Reject).unwrap();
            assert_eq!((out, outcome, n2), (Vec::new(), Outcome::Bare(bare), n), "{variant:?}");
        }
    }

    #[test]
    fn the_data_line_ending_counts_as_the_line_before_the_first() {
        let mut d = Decoder::new(100, BareLf::Normalize, false);
        let mut out = Vec::new();
        assert_eq!(d.feed(b".\r\n", &mut out), None, "DATA<LF>.<CR><LF> is not the end");
        assert_eq!(d.feed(b".\r\n", &mut out), Some(3));
        assert_eq!(out, b".\r\n");
    }

    #[test]
    fn over_the_cap_is_read_to_the_end_then_too_big() {
        let mut d = Decoder::new(10, BareLf::Normalize, true);
        let mut out = Vec::new();
        assert_eq!(d.feed(b"12345678\r\n", &mut out), None);
        assert_eq!(out.len(), 10, "exactly at the cap is fine");
        assert_eq!(d.feed(b"x\r\n.\r\n", &mut out), Some(6));
        assert_eq!((d.outcome(), out.len()), (Outcome::TooBig, 0));
        // A bare LF under reject outranks the size, as in Postfix.
        let mut d = Decoder::new(4, BareLf::Reject, true);
        assert_eq!(d.feed(b"123456\r\nx\n.\r\n.\r\n", &mut out), Some(16));
        assert_eq!(d.outcome(), Outcome::Bare(Bare::Lf));
    }

    #[test]
    fn dropped_content_is_read_to_the_end() {
        let mut d = Decoder::new(100, BareLf::Normalize, true);
        let mut out = Vec::new();
        d.feed(b"some\r\n", &mut out);
        d.drop_content(&mut out);
        assert_eq!(d.feed(b"more\r\n.\r\n", &mut out), Some(9));
        assert_eq!((d.outcome(), out.len()), (Outcome::Dropped, 0));
    }

    /// The rules stated plainly over the whole input at once, for the fuzz test to hold the
    /// chunked decoder to: (content, first bare, bytes consumed).
    fn model(input: &[u8], after_crlf: bool) -> Option<(Vec<u8>, Option<Bare>, usize)> {
        let mut out = Vec::new();
        let mut bare = None;
        let mut prev_crlf = after_crlf;
        let mut pos = 0;
        while let Some(lf) = input[pos..].iter().position(|&b| b == b'\n') {
            let raw = &input[pos..pos + lf];
            pos += lf + 1;
            let crlf = raw.last() == Some(&b'\r');
            let text = if crlf { &raw[..raw.len() - 1] } else { raw };
            if text == b"." && crlf && prev_crlf {
                return Some((out, bare, pos));
            }
            // The first bare character in input order: a CR inside the text, or this LF.
            let cr = text.iter().position(|&b| b == b'\r');
            if bare.is_none() {
                bare = match (cr, crlf) {
                    (Some(_), _) => Some(Bare::Cr),
                    (None, false) => Some(Bare::Lf),
                    (None, true) => None,
                };
            }
            let text = if text.len() > 1 { text.strip_prefix(b".").unwrap_or(text) } else { text };
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
            prev_crlf = crlf;
        }
        None
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any bytes (rich in CR, LF and dots), cut into any chunks: the decoder agrees with
        /// the model on the content, the first bare character and where the content ends.
        #[test]
        fn chunked_decoding_agrees_with_the_model(
            input in proptest::collection::vec(
                proptest::sample::select(b"\r\n.\r\n.a".to_vec()), 0..64),
            cuts in proptest::collection::vec(0usize..64, 0..6),
            after_crlf in proptest::bool::ANY,
        ) {
            let mut d = Decoder::new(1 << 20, BareLf::Normalize, after_crlf);
            let mut out = Vec::new();
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= input.len()).collect();
            cuts.sort_unstable();
            cuts.push(input.len());
            let (mut from, mut ended) = (0, None);
            for cut in cuts {
                if let Some(n) = d.feed(&input[from..cut], &mut out) {
                    ended = Some(from + n);
                    break;
                }
                from = cut;
            }
            match model(&input, after_crlf) {
                Some((content, bare, n)) => {
                    proptest::prop_assert_eq!(ended, Some(n));
                    proptest::prop_assert_eq!(&out, &content);
                    proptest::prop_assert_eq!(d.bare(), bare);
                    proptest::prop_assert_eq!(d.outcome(), Outcome::Complete);
                }
                None => proptest::prop_assert_eq!(ended, None),
            }
        }
    }
}
