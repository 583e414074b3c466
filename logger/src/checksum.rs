//! Boulder's per-line checksum: `<checksum> <message>`, so a line cut short or altered on its
//! way through a syslog daemon is detected by [`crate`]'s `log-validator` (or Boulder's own).
//!
//! The algorithm is Boulder's current `log.LogLineChecksum`: CRC32 (IEEE polynomial, as Go's
//! `crc32.ChecksumIEEE`) of the message bytes, the four bytes of the CRC little-endian, encoded
//! base64url without padding: always six characters of `[A-Za-z0-9_-]`. What is checksummed is
//! the message exactly as the line carries it after the checksum and one space: escaped, with
//! the `[AUDIT] ` marker and the fields, after any truncation.
//!
//! [`check_line`] is the other side: it finds the checksum in a line of a log file (rsyslog's
//! file formats, Boulder's, or our stdout format) and checks it against the message.

/// The checksum of `message`: six characters of base64url (`[A-Za-z0-9_-]`), as bytes.
///
/// ```
/// assert_eq!(&logger::checksum(b"Hello, World!"), b"0MNK7A");
/// ```
pub fn checksum(message: &[u8]) -> [u8; 6] {
    encode(crc32(message).to_le_bytes())
}

/// Appends `<checksum> <message>` to `out`.
///
/// ```
/// let mut line = String::from("prog: ");
/// logger::write_checksummed(&mut line, "Caught SIGTERM");
/// assert_eq!(line, "prog: kJBuDg Caught SIGTERM");
/// ```
pub fn write_checksummed(out: &mut String, message: &str) {
    push_checksum(out, message.as_bytes());
    out.push(' ');
    out.push_str(message);
}

/// Appends the six checksum characters of `message` (no space).
pub(crate) fn push_checksum(out: &mut String, message: &[u8]) {
    for b in checksum(message) {
        // base64url is ASCII: each byte is one char.
        out.push(char::from(b));
    }
}

/// Whether `s` has the shape of a checksum, as Boulder's validator decides it: six characters
/// of the base64url alphabet. (The last character of a real one has its low four bits zero,
/// but a corrupted checksum must count as a bad line, not as a line without a checksum.)
pub(crate) fn looks_like_checksum(s: &[u8]) -> bool {
    s.len() == 6 && s.iter().all(|&b| is_base64url(b))
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// What [`check_line`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineCheck {
    /// The checksum matches the message (or the line is log-validator's own report, which
    /// quotes bad lines and is never checked, so that it cannot feed on itself).
    Ok,
    /// The line has a checksum and it does not match: the message was cut or altered.
    Bad {
        /// The checksum the line carries.
        found: [u8; 6],
        /// The checksum of the message the line carries.
        expected: [u8; 6],
    },
    /// The line is not in a format with a checksum: no header was recognised, or where the
    /// checksum belongs there are not six base64url characters. Lines of programs that do not
    /// checksum (and Boulder's old seven-character checksums) land here.
    Malformed(&'static str),
}

/// Checks the checksum of one line of a log file (without its line break; bytes, since a
/// file may hold any). Understands:
///
/// - rsyslog's file formats, where the checksum follows the syslog tag (`prog[pid]:`):
///   Boulder's `timestamp host datacenter severity prog[pid]: checksum message`, rsyslog's
///   default `RSYSLOG_FileFormat` (`timestamp host prog[pid]: checksum message`) and
///   `RSYSLOG_TraditionalFileFormat` (`Mmm dd HH:MM:SS host prog[pid]: checksum message`);
/// - our [`crate::Stdout`] short format and Boulder's stdout format, `time severity-digit
///   program checksum message`, with or without terminal colours.
///
/// Fields are split on single spaces and the message is everything after the checksum and one
/// space, as Boulder's validator does.
///
/// ```
/// use logger::{LineCheck, check_line};
/// let line = "2020-07-06T18:07:43.109389+00:00 70877f679c72 datacenter 6 boulder-wfe[1595]: \
///             kJBuDg Caught SIGTERM";
/// assert_eq!(check_line(line.as_bytes()), LineCheck::Ok);
/// let altered = line.replace("SIGTERM", "SIGKILL");
/// assert!(matches!(check_line(altered.as_bytes()), LineCheck::Bad { .. }));
/// assert!(matches!(check_line(b"just some text"), LineCheck::Malformed(_)));
/// ```
pub fn check_line(line: &[u8]) -> LineCheck {
    let (line, stdout) = match strip_colour(line) {
        Some(plain) => (plain, true),
        None => (line, false),
    };
    let Some((program, rest)) = split_header(line, stdout) else {
        return LineCheck::Malformed("no syslog tag or stdout header where the checksum belongs");
    };
    if program == OWN_PROGRAM.as_bytes() {
        return LineCheck::Ok;
    }
    let (sum, message) = split_word(rest).unwrap_or((rest, b""));
    if !looks_like_checksum(sum) {
        return LineCheck::Malformed("no 6-character base64url checksum after the header");
    }
    let expected = checksum(message);
    if expected == sum {
        LineCheck::Ok
    } else {
        let mut found = [0; 6];
        found.copy_from_slice(sum);
        LineCheck::Bad { found, expected }
    }
}

/// The program name of the validator's own reports, exempt from checking.
pub(crate) const OWN_PROGRAM: &str = "log-validator";

/// The first word and the rest after its space, if there is a space.
fn split_word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = s.iter().position(|&b| b == b' ')?;
    Some((&s[..at], &s[at + 1..]))
}

/// The line without the colour codes a terminal-bound stdout writes around it, if it has
/// them (a colour is always at the start, and the reset then at the end).
fn strip_colour(line: &[u8]) -> Option<&[u8]> {
    fn skip_code(s: &[u8]) -> Option<&[u8]> {
        let rest = s.strip_prefix(b"\x1b[")?;
        let end = rest.iter().position(|&b| b == b'm')?;
        Some(&rest[end + 1..])
    }
    let rest = skip_code(line)?;
    // Boulder writes bold red as two codes.
    let rest = skip_code(rest).unwrap_or(rest);
    Some(rest.strip_suffix(b"\x1b[0m").unwrap_or(rest))
}

/// Splits a line into (program, what follows the program column): the part after the syslog
/// tag, or after the stdout `time digit program` columns.
fn split_header(line: &[u8], stdout: bool) -> Option<(&[u8], &[u8])> {
    let (_time, rest) = split_word(line)?;
    if let Some(([b'0'..=b'7'], rest)) = split_word(rest) {
        // `time digit program checksum message`.
        return split_word(rest);
    }
    if stdout {
        return None;
    }
    // A syslog file line: the tag is the first word ending in `:` after the timestamp (one
    // word, or three for `Mmm dd HH:MM:SS`, with an empty word for a space-padded day) and
    // the host, and before the message. Boulder's format puts two more words in between.
    // rsyslog writes the tag of an RFC 5424 record without the colon (`ts host app[pid] msg`):
    // the third word is then the tag when a checksum follows it.
    let mut rest = line;
    for i in 0..7 {
        let (word, after) = split_word(rest)?;
        if i >= 2 && word.len() > 1 && word.ends_with(b":") {
            return Some((program_of_tag(&word[..word.len() - 1]), after));
        }
        let next = split_word(after).map_or(after, |(next, _)| next);
        if i == 2 && !word.is_empty() && looks_like_checksum(next) {
            return Some((program_of_tag(word), after));
        }
        rest = after;
    }
    None
}

/// `prog` of a syslog tag `prog[pid]` (or `prog`).
fn program_of_tag(tag: &[u8]) -> &[u8] {
    tag.split(|&b| b == b'[').next().unwrap_or(tag)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Four bytes to six base64url characters (32 bits in six 6-bit groups, the last one padded
/// with four zero bits).
fn encode(b: [u8; 4]) -> [u8; 6] {
    let n = u32::from_be_bytes(b);
    let at = |shift: u32| ALPHABET[((n >> shift) & 63) as usize];
    [at(26), at(20), at(14), at(8), at(2), ALPHABET[((n & 3) << 4) as usize]]
}

/// CRC32 with the reflected IEEE polynomial, slicing by eight: eight table lookups per eight
/// bytes instead of a shift loop per bit. A log line is a few hundred bytes; this keeps the
/// checksum a small part of formatting it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = TABLES[7][(lo & 0xff) as usize]
            ^ TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][c[4] as usize]
            ^ TABLES[2][c[5] as usize]
            ^ TABLES[1][c[6] as usize]
            ^ TABLES[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

static TABLES: [[u32; 256]; 8] = {
    const POLY: u32 = 0xedb8_8320;
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(s: &str) -> String {
        String::from_utf8(checksum(s.as_bytes()).to_vec()).unwrap()
    }

    /// Pinned against Boulder's algorithm. The first two are the values Boulder's own tests
    /// pin (`log/log_test.go` TestLogLineChecksum, `log/validator/validator_test.go`
    /// TestLineValidAcceptsNew); all five were computed independently with Python's
    /// `base64.urlsafe_b64encode(struct.pack('<I', zlib.crc32(msg))).rstrip(b'=')`, the same
    /// steps as Go's `crc32.ChecksumIEEE` + `binary.LittleEndian` + `base64.RawURLEncoding`
    /// (Go is not installed here).
    #[test]
    fn pinned_checksums_match_boulders_algorithm() {
        assert_eq!(sum("Hello, World!"), "0MNK7A");
        assert_eq!(sum("Caught SIGTERM"), "kJBuDg");
        assert_eq!(sum(""), "AAAAAA");
        assert_eq!(sum("[AUDIT] denied user=alice"), "tolyTw");
        assert_eq!(sum("héllo\\n✓"), "sshhUA");
    }

    #[test]
    fn slicing_by_eight_agrees_with_the_bitwise_definition() {
        fn bitwise(data: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in data {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
                }
            }
            !crc
        }
        let data: Vec<u8> = (0..300u32).map(|i| (i * 151 + 7) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(crc32(&data[..len]), bitwise(&data[..len]), "{len}");
        }
        // The standard check value.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn every_checksum_is_six_url_safe_characters_and_looks_like_one() {
        for i in 0..2000u32 {
            let c = checksum(&i.to_le_bytes());
            assert!(c.iter().all(|&b| is_base64url(b)));
            assert!(looks_like_checksum(&c), "{c:?}");
        }
        assert!(!looks_like_checksum(b"kKG6cwA"), "Boulder's old 7-character varint form");
        assert!(!looks_like_checksum(b"xxxx"));
        assert!(!looks_like_checksum(b"kJBu+g"), "standard base64, not url-safe");
        assert!(looks_like_checksum(b"xxxxxx"), "shaped like one: Boulder calls it a bad checksum");
    }

    fn check(line: &str) -> LineCheck {
        check_line(line.as_bytes())
    }

    fn bad(line: &str) -> bool {
        matches!(check(line), LineCheck::Bad { .. })
    }

    fn malformed(line: &str) -> bool {
        matches!(check(line), LineCheck::Malformed(_))
    }

    /// Boulder's own validator tests (`log/validator/validator_test.go`), same lines, same
    /// verdicts.
    #[test]
    fn boulders_validator_cases() {
        let ts = "2020-07-06T18:07:43.109389+00:00 70877f679c72 datacenter 6";
        assert_eq!(check(&format!("{ts} boulder-wfe[1595]: kJBuDg Caught SIGTERM")), LineCheck::Ok);
        assert!(malformed(&format!("{ts} boulder-wfe[1595]: kKG6cwA Caught SIGTERM")));
        assert!(bad(&format!("{ts} boulder-wfe[1595]: xxxxxx Caught SIGTERM")));
        assert!(malformed(&format!("{ts} boulder-wfe[1595]: xxxx Caught SIGTERM")));
        assert_eq!(check(&format!("{ts} log-validator[1337]: xxxxxx bad line")), LineCheck::Ok);
    }

    #[test]
    fn rsyslog_default_and_traditional_file_formats() {
        let ok = [
            "2026-12-01T10:00:00.123456+00:00 host svc[42]: 0MNK7A Hello, World!",
            "Dec  1 10:00:00 host svc[42]: 0MNK7A Hello, World!",
            "Dec 11 10:00:00 host svc: 0MNK7A Hello, World!",
            "2026-12-01T10:00:00+00:00 host svc[42]: AAAAAA ",
            "2026-12-01T10:00:00+00:00 host svc[42]: AAAAAA",
            // RFC 5424 records, as rsyslog's RSYSLOG_FileFormat writes them: no colon.
            "2026-12-01T10:00:00.123456Z host svc[42] 0MNK7A Hello, World!",
            "2026-12-01T10:00:00.123456Z host svc 0MNK7A Hello, World!",
        ];
        for line in ok {
            assert_eq!(check(line), LineCheck::Ok, "{line}");
        }
        assert!(bad("2026-12-01T10:00:00.123456+00:00 host svc[42]: 0MNK7A Hello, World"));
        assert!(bad("Dec  1 10:00:00 host svc[42]: 0MNK7A Hello,  World!"));
        assert!(bad("2026-12-01T10:00:00.123456Z host svc[42] 0MNK7A Hello, World?"));
        // A program that does not checksum: its first word is not a checksum.
        assert!(malformed("Dec  1 10:00:00 host cron[7]: (root) CMD (run-parts)"));
        assert!(malformed("no header at all"));
        assert!(malformed(""));
    }

    #[test]
    fn our_stdout_format_with_and_without_colour() {
        assert_eq!(check("22:12:01.617363 6 svc 0MNK7A Hello, World!"), LineCheck::Ok);
        assert_eq!(
            check("\x1b[31m22:12:01.617363 3 svc 0MNK7A Hello, World!\x1b[0m"),
            LineCheck::Ok
        );
        // Boulder's stdout: RFC 3339 time, digit, program, checksum; bold red is two codes.
        assert_eq!(
            check(
                "\x1b[31m\x1b[1m2026-12-01T10:00:00.000000Z 3 boulder 0MNK7A Hello, World!\x1b[0m"
            ),
            LineCheck::Ok
        );
        assert!(bad("22:12:01.617363 6 svc 0MNK7A Hello, World?"));
        assert!(malformed("22:12:01.617363 6 svc Hello, World!"));
    }

    #[test]
    fn write_checksummed_is_checksum_space_message() {
        let mut out = String::new();
        write_checksummed(&mut out, "Hello, World!");
        assert_eq!(out, "0MNK7A Hello, World!");
    }
}
