//! SMTP command lines -> [`Command`]: a pure parser, safe on any bytes (fuzzed by proptest).

use std::fmt;

/// One parsed SMTP command line (without its CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `EHLO domain`.
    Ehlo(String),
    /// `HELO domain`.
    Helo(String),
    /// `MAIL FROM:<path> [params]`; `from` is empty for the null reverse-path `<>`.
    /// `BODY=7BIT` and `BODY=8BITMIME` (RFC 6152) are accepted and change nothing: content is
    /// stored as bytes either way.
    Mail {
        /// The reverse-path without angle brackets (UTF-8 under SMTPUTF8).
        from: String,
        /// The declared size (`SIZE=n`), if any.
        size: Option<u64>,
        /// The `SMTPUTF8` parameter (RFC 6531): addresses may be non-ASCII.
        smtputf8: bool,
    },
    /// `RCPT TO:<path> [params]`.
    Rcpt {
        /// The forward-path without angle brackets.
        to: String,
    },
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy(String),
    /// `HELP [string]`.
    Help,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH mechanism [initial-response]`.
    Auth {
        /// The mechanism name, upper-cased.
        mechanism: String,
        /// The initial response (base64, or `=` for an empty one), if given.
        initial: Option<String>,
    },
}

/// Why a command line was rejected; each maps to one SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The verb is not one we know (`500 5.5.2`).
    Unknown,
    /// The verb is known but its arguments are malformed (`501 5.5.4`); the text says why.
    Syntax(&'static str),
    /// A `MAIL`/`RCPT` parameter we do not implement (`555 5.5.4`), as the client wrote it.
    UnsupportedParameter(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unknown => f.write_str("command not recognized"),
            ParseError::Syntax(why) => f.write_str(why),
            ParseError::UnsupportedParameter(p) => write!(f, "parameter not supported: {p}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one command line. `line` excludes the line ending (a trailing CR is tolerated).
///
/// Verbs are case-insensitive. `MAIL FROM:` and `RCPT TO:` accept the path with or without
/// angle brackets and with a space after the colon, as Postfix does, because real clients
/// differ. Never panics, whatever the bytes.
pub(crate) fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        // Non-UTF-8 in the verb is garbage; in an address it is a syntax error. Either way
        // the client gets a reply, so keep the distinction cheap.
        return match line.get(..4).map(|v| v.to_ascii_uppercase()) {
            Some(v) if v == b"MAIL" || v == b"RCPT" => {
                Err(ParseError::Syntax("non-UTF-8 argument"))
            }
            _ => Err(ParseError::Unknown),
        };
    };
    let (verb, rest) = match memchr::memchr(b' ', line.as_bytes()) {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    // Upper-cased on the stack: this runs for every command.
    let mut upper = [0u8; 8];
    let Some(upper) = upper.get_mut(..verb.len()) else {
        return Err(ParseError::Unknown);
    };
    upper.copy_from_slice(verb.as_bytes());
    upper.make_ascii_uppercase();
    // No SMTP argument carries a control character (a bare CR, NUL, ESC...); refusing them
    // here keeps them out of every argument, stored or echoed, in one place. (A control
    // character in the verb already makes it unknown.)
    if has_control(rest) {
        return Err(ParseError::Syntax("control characters in command"));
    }
    let arg = rest.trim_matches(' ');
    match &*upper {
        b"EHLO" => domain(arg).map(Command::Ehlo),
        b"HELO" => domain(arg).map(Command::Helo),
        b"MAIL" => {
            let rest = strip_keyword(rest, "FROM:")
                .ok_or(ParseError::Syntax("expected MAIL FROM:<address>"))?;
            let (from, params) = path(rest)?;
            let (mut size, mut smtputf8) = (None, false);
            for param in params {
                let (key, value) = split_param(param);
                match (key.to_ascii_uppercase().as_str(), value) {
                    ("SIZE", value) => {
                        let n = value
                            .and_then(|v| v.parse::<u64>().ok())
                            .ok_or(ParseError::Syntax("bad SIZE parameter"))?;
                        size = Some(n);
                    }
                    ("BODY", Some(v))
                        if v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME") => {
                    }
                    ("SMTPUTF8", None) => smtputf8 = true,
                    // AUTH=<> is legal on MAIL when AUTH is advertised; its value is ignored.
                    ("AUTH", _) => {}
                    // BINARYMIME, DSN's RET/ENVID, REQUIRETLS...: not offered, so refused.
                    _ => return Err(ParseError::UnsupportedParameter(param.to_owned())),
                }
            }
            Ok(Command::Mail { from: from.to_owned(), size, smtputf8 })
        }
        b"RCPT" => {
            let rest = strip_keyword(rest, "TO:")
                .ok_or(ParseError::Syntax("expected RCPT TO:<address>"))?;
            let (to, params) = path(rest)?;
            if to.is_empty() {
                return Err(ParseError::Syntax("empty recipient"));
            }
            if let Some(param) = params.into_iter().next() {
                return Err(ParseError::UnsupportedParameter(param.to_owned()));
            }
            Ok(Command::Rcpt { to: to.to_owned() })
        }
        b"DATA" => no_arg(arg, Command::Data),
        b"RSET" => no_arg(arg, Command::Rset),
        b"QUIT" => no_arg(arg, Command::Quit),
        b"STARTTLS" => no_arg(arg, Command::StartTls),
        b"NOOP" => Ok(Command::Noop),
        b"HELP" => Ok(Command::Help),
        b"VRFY" => {
            if arg.is_empty() {
                Err(ParseError::Syntax("VRFY needs an argument"))
            } else {
                Ok(Command::Vrfy(arg.to_owned()))
            }
        }
        b"AUTH" => {
            let mut parts = arg.split(' ').filter(|p| !p.is_empty());
            let mechanism = parts.next().ok_or(ParseError::Syntax("AUTH needs a mechanism"))?;
            let initial = parts.next().map(str::to_owned);
            if parts.next().is_some() {
                return Err(ParseError::Syntax("too many AUTH arguments"));
            }
            Ok(Command::Auth { mechanism: mechanism.to_ascii_uppercase(), initial })
        }
        _ => Err(ParseError::Unknown),
    }
}

/// Whether `text` holds a control character other than TAB (Unicode's Cc: C0, DEL, C1).
fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        (b < 0x20 && b != b'\t')
            || b == 0x7f
            // C1 controls, U+0080..=U+009F, are C2 80..=C2 9F in UTF-8.
            || (b == 0xc2 && bytes.get(i + 1).is_some_and(|&n| (0x80..=0x9f).contains(&n)))
    })
}

fn domain(arg: &str) -> Result<String, ParseError> {
    if arg.is_empty() {
        return Err(ParseError::Syntax("a domain name is required"));
    }
    if arg.chars().any(|c| c.is_control()) {
        return Err(ParseError::Syntax("control characters in domain"));
    }
    Ok(arg.to_owned())
}

fn no_arg(arg: &str, command: Command) -> Result<Command, ParseError> {
    if arg.is_empty() { Ok(command) } else { Err(ParseError::Syntax("no arguments allowed")) }
}

/// `FROM:` / `TO:` case-insensitively, then optional spaces.
fn strip_keyword<'a>(rest: &'a str, keyword: &str) -> Option<&'a str> {
    let head = rest.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword).then(|| rest[keyword.len()..].trim_start_matches(' '))
}

/// Splits `<path> params...` into the bare address and the parameters.
fn path(rest: &str) -> Result<(&str, impl Iterator<Item = &str>), ParseError> {
    let (addr, params) = if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>').ok_or(ParseError::Syntax("missing '>' in address"))?;
        (&inner[..end], &inner[end + 1..])
    } else {
        match rest.find(' ') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        }
    };
    if !params.is_empty() && !params.starts_with(' ') {
        return Err(ParseError::Syntax("garbage after address"));
    }
    // A source route (`<@a,@b:user@c>`) is obsolete syntax; keep only the mailbox.
    let addr = match addr.strip_prefix('@') {
        Some(_) => addr.split_once(':').map_or(addr, |(_, mailbox)| mailbox),
        None => addr,
    };
    if addr.chars().any(|c| c.is_control() || c == ' ' || c == '<' || c == '>') {
        return Err(ParseError::Syntax("bad character in address"));
    }
    if addr.len() > 320 {
        return Err(ParseError::Syntax("address too long"));
    }
    Ok((addr, params.split(' ').filter(|p| !p.is_empty())))
}

fn split_param(param: &str) -> (&str, Option<&str>) {
    match param.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (param, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_verb_case_insensitively() {
        assert_eq!(parse(b"ehlo client.test"), Ok(Command::Ehlo("client.test".into())));
        assert_eq!(parse(b"HELO client.test\r"), Ok(Command::Helo("client.test".into())));
        for line in [&b"VRFY a\rb"[..], b"AUTH PLAIN a\rb", b"MAIL FROM:<a\0@b>", b"NOOP \x1b[2J"] {
            assert_eq!(
                parse(line),
                Err(ParseError::Syntax("control characters in command")),
                "{line:?}"
            );
        }
        assert_eq!(parse(b"data"), Ok(Command::Data));
        assert_eq!(parse(b"RSET"), Ok(Command::Rset));
        assert_eq!(parse(b"NOOP whatever"), Ok(Command::Noop));
        assert_eq!(parse(b"QUIT"), Ok(Command::Quit));
        assert_eq!(parse(b"VRFY bob"), Ok(Command::Vrfy("bob".into())));
        assert_eq!(parse(b"StartTLS"), Ok(Command::StartTls));
        assert_eq!(
            parse(b"AUTH plain AGEAYg=="),
            Ok(Command::Auth { mechanism: "PLAIN".into(), initial: Some("AGEAYg==".into()) })
        );
    }

    #[test]
    fn mail_and_rcpt_paths() {
        assert_eq!(
            parse(b"MAIL FROM:<a@x.test>"),
            Ok(Command::Mail { from: "a@x.test".into(), size: None, smtputf8: false })
        );
        assert_eq!(
            parse(b"mail from: <a@x.test>"),
            Ok(Command::Mail { from: "a@x.test".into(), size: None, smtputf8: false })
        );
        assert_eq!(
            parse(b"MAIL FROM:a@x.test"),
            Ok(Command::Mail { from: "a@x.test".into(), size: None, smtputf8: false })
        );
        assert_eq!(
            parse(b"MAIL FROM:<>"),
            Ok(Command::Mail { from: String::new(), size: None, smtputf8: false })
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@x.test> size=1200 BODY=8BITMIME"),
            Ok(Command::Mail { from: "a@x.test".into(), size: Some(1200), smtputf8: false })
        );
        assert_eq!(
            parse(b"RCPT TO:<@relay.test:b@x.test>"),
            Ok(Command::Rcpt { to: "b@x.test".into() })
        );
        assert_eq!(parse(b"RCPT TO:<b@x.test>"), Ok(Command::Rcpt { to: "b@x.test".into() }));
    }

    #[test]
    fn smtputf8_addresses_keep_their_utf8() {
        assert_eq!(
            parse("MAIL FROM:<jürgen@bücher.test> smtputf8 BODY=8bitmime".as_bytes()),
            Ok(Command::Mail { from: "jürgen@bücher.test".into(), size: None, smtputf8: true })
        );
        assert_eq!(
            parse("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>".as_bytes()),
            Ok(Command::Rcpt { to: "δοκιμή@παράδειγμα.δοκιμή".into() })
        );
    }

    #[test]
    fn rejects_bad_syntax() {
        assert_eq!(parse(b"EHLO"), Err(ParseError::Syntax("a domain name is required")));
        assert!(matches!(parse(b"MAIL TO:<a@x.test>"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"MAIL FROM:<a@x.test"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"MAIL FROM:<a@x.test>junk"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"MAIL FROM:<a@x.test> SIZE=big"), Err(ParseError::Syntax(_))));
        assert_eq!(
            parse(b"MAIL FROM:<a@x.test> FOO=1"),
            Err(ParseError::UnsupportedParameter("FOO=1".into()))
        );
        for param in ["BODY=BINARYMIME", "BODY", "SMTPUTF8=yes", "RET=HDRS"] {
            let line = format!("MAIL FROM:<a@x.test> {param}");
            assert_eq!(
                parse(line.as_bytes()),
                Err(ParseError::UnsupportedParameter(param.into())),
                "{param}"
            );
        }
        assert!(matches!(parse(b"RCPT TO:<>"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"DATA now"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"AUTH"), Err(ParseError::Syntax(_))));
        assert_eq!(parse(b"FROB"), Err(ParseError::Unknown));
        assert_eq!(parse(b""), Err(ParseError::Unknown));
        assert_eq!(parse(b"\xff\xfe\x00garbage"), Err(ParseError::Unknown));
        assert!(matches!(parse(b"MAIL FROM:<\xff@x>"), Err(ParseError::Syntax(_))));
    }

    proptest::proptest! {
        #[test]
        fn control_characters_are_found_as_char_is_control_finds_them(s in "\\PC*|[\\x00-\\x{ff}]{0,20}") {
            proptest::prop_assert_eq!(has_control(&s), s.chars().any(|c| c.is_control() && c != '\t'));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse(&bytes);
        }

        /// Whatever the arguments, what is stored (the EHLO name, the envelope addresses),
        /// shown over HTTP and logged carries no CR and no NUL.
        #[test]
        fn stored_arguments_never_carry_cr_or_nul(
            verb in proptest::sample::select(vec![
                "EHLO ", "HELO ", "MAIL FROM:", "RCPT TO:", "mail from:", "MAIL FROM:<a@b> ",
            ]),
            arg in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::sample::select(b"<>@:. =\r\0".to_vec()),
                    proptest::sample::select("aü".as_bytes().to_vec()),
                ],
                0..80,
            ),
        ) {
            let mut line = verb.as_bytes().to_vec();
            line.extend(arg);
            let texts = match parse(&line) {
                Ok(Command::Ehlo(s) | Command::Helo(s)) => vec![s],
                Ok(Command::Mail { from, .. }) => vec![from],
                Ok(Command::Rcpt { to }) => vec![to],
                _ => vec![],
            };
            for text in texts {
                proptest::prop_assert!(!text.contains(['\r', '\0']), "{:?} from {:?}", text, line);
            }
        }
    }
}
