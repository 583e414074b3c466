//! [`Error`], the [`Stage`] a failure happened at, and [`classify`]: the one place that decides
//! what a lettre error means.

use std::error::Error as _;
use std::fmt;
use std::io;
use std::time::Duration;

/// Where in the SMTP conversation a failure happened. Displayed as the `stage=` log value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// TCP connect (and the TLS handshake for implicit TLS).
    Connect,
    /// The greeting and EHLO (lettre reads both in one call).
    Greeting,
    /// STARTTLS and the second EHLO.
    StartTls,
    /// AUTH.
    Auth,
    /// The NOOP probe of an idle connection.
    Noop,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// The DATA command (before the body).
    Data,
    /// The body and its final dot were written; waiting for the reply. A connection lost here
    /// leaves delivery unknown.
    AfterDot,
    /// QUIT.
    Quit,
}

impl Stage {
    /// The log value: `connect`, `greeting`, `starttls`, `auth`, `noop`, `mail`, `rcpt`,
    /// `data`, `after_dot`, `quit`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::StartTls => "starttls",
            Stage::Auth => "auth",
            Stage::Noop => "noop",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::AfterDot => "after_dot",
            Stage::Quit => "quit",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of failure a lettre error is. [`classify`] is the only place that decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// A 421 reply: the server is closing the channel. Reconnect and send again.
    ServiceClosing,
    /// The server closed the connection (lettre: "incomplete response").
    Eof,
    /// Connection reset (or aborted) by the peer.
    Reset,
    /// Writing to a connection the peer had closed.
    BrokenPipe,
    /// Nothing listening.
    Refused,
    /// No reply (or no connection) within the configured time.
    Timeout,
    /// Any other I/O failure on the socket (unreachable network, ...). Retried.
    Network,
    /// A 4xx reply other than 421. Retried with backoff.
    Transient,
    /// A 5xx reply. Not retried.
    Permanent,
    /// TLS failure: handshake, certificate verification. Not retried.
    Tls,
    /// A malformed reply, an unsupported feature, or another client-side refusal. Not retried.
    Protocol,
}

impl Fault {
    /// The short name used in `error=` log values and stats: `smtp_421`, `eof`, `reset`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Fault::ServiceClosing => "smtp_421",
            Fault::Eof => "eof",
            Fault::Reset => "reset",
            Fault::BrokenPipe => "broken_pipe",
            Fault::Refused => "refused",
            Fault::Timeout => "timeout",
            Fault::Network => "network",
            Fault::Transient => "transient_4xx",
            Fault::Permanent => "permanent_5xx",
            Fault::Tls => "tls",
            Fault::Protocol => "protocol",
        }
    }

    /// The connection is gone (or must not be trusted): reconnect and send again.
    pub const fn needs_reconnect(self) -> bool {
        matches!(
            self,
            Fault::ServiceClosing
                | Fault::Eof
                | Fault::Reset
                | Fault::BrokenPipe
                | Fault::Refused
                | Fault::Timeout
                | Fault::Network
        )
    }

    /// Worth another attempt after a backoff: reconnect faults and other 4xx replies.
    pub const fn is_retryable(self) -> bool {
        self.needs_reconnect() || matches!(self, Fault::Transient)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies a lettre SMTP error. This is the single mapping from lettre's error (which has
/// no `is_network` or `is_eof`) to what the mailer does about it:
///
/// - a reply code: 421 is [`Fault::ServiceClosing`], other 4xx [`Fault::Transient`], 5xx
///   [`Fault::Permanent`];
/// - lettre's response error "incomplete response" is how EOF surfaces: [`Fault::Eof`] (a
///   test pins this, so a lettre upgrade that changes the text fails loudly);
/// - otherwise the first `io::Error` in the source chain decides (reset, broken pipe, refused,
///   timed out, unexpected EOF; a wrapped `rustls::Error` is [`Fault::Tls`]);
/// - lettre's TLS kind is [`Fault::Tls`]; everything else is [`Fault::Protocol`].
pub fn classify(e: &lettre::transport::smtp::Error) -> Fault {
    if let Some(code) = e.status() {
        let code = u16::from(code);
        return match code {
            421 => Fault::ServiceClosing,
            400..=499 => Fault::Transient,
            _ => Fault::Permanent,
        };
    }
    if e.is_response() {
        if e.source().is_some_and(|s| s.to_string() == "incomplete response") {
            return Fault::Eof;
        }
        return Fault::Protocol;
    }
    if let Some(fault) = io_fault_in_chain(e) {
        return fault;
    }
    if e.is_tls() {
        return Fault::Tls;
    }
    if e.is_timeout() {
        return Fault::Timeout;
    }
    Fault::Protocol
}

fn io_fault_in_chain(e: &(dyn std::error::Error + 'static)) -> Option<Fault> {
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io_err) = err.downcast_ref::<io::Error>() {
            return Some(classify_io(io_err));
        }
        if err.downcast_ref::<rustls::Error>().is_some() {
            return Some(Fault::Tls);
        }
        source = err.source();
    }
    None
}

/// Classifies a socket error (used for errors that do not come through lettre: TCP connect and
/// the implicit TLS handshake).
pub fn classify_io(e: &io::Error) -> Fault {
    if e.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) {
        return Fault::Tls;
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => Fault::Reset,
        io::ErrorKind::BrokenPipe => Fault::BrokenPipe,
        io::ErrorKind::ConnectionRefused => Fault::Refused,
        io::ErrorKind::TimedOut => Fault::Timeout,
        io::ErrorKind::UnexpectedEof => Fault::Eof,
        io::ErrorKind::InvalidData => Fault::Tls,
        _ => Fault::Network,
    }
}

/// Everything that can go wrong with a send.
///
/// Ask the predicates rather than matching: [`Error::needs_reconnect`],
/// [`Error::is_permanent`], [`Error::code`], [`Error::is_bad_address`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address (recipient or from) that does not parse or holds CR/LF. Found before any I/O.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given (escaped when displayed).
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// The message could not be built (no recipients, ...).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// The configuration cannot work (bad root CA PEM, bad host or HELO name).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The server replied with a negative code.
    #[error("server replied {code} at {stage}: {reply}")]
    Reply {
        /// Where.
        stage: Stage,
        /// The reply code, e.g. 421, 450, 550.
        code: u16,
        /// The reply text (all lines joined).
        reply: String,
    },
    /// The connection was closed, reset or refused, or a command timed out.
    #[error("connection failed at {stage} ({fault}): {detail}")]
    Connection {
        /// Where.
        stage: Stage,
        /// Which kind: [`Fault::Eof`], [`Fault::Reset`], [`Fault::Timeout`], ...
        fault: Fault,
        /// What the system or lettre said.
        detail: String,
    },
    /// TLS could not be established (handshake or certificate verification).
    #[error("tls failed at {stage}: {detail}")]
    Tls {
        /// Where.
        stage: Stage,
        /// What rustls or lettre said.
        detail: String,
    },
    /// A malformed reply or a missing server feature (no STARTTLS, no AUTH mechanism, no
    /// SMTPUTF8 for a non-ASCII address).
    #[error("protocol error at {stage}: {detail}")]
    Protocol {
        /// Where.
        stage: Stage,
        /// What went wrong.
        detail: String,
    },
    /// The send made `attempts` tries (the first plus `attempts - 1` reconnects) and failed
    /// each time.
    #[error("gave up after {attempts} attempts; last error: {last}")]
    GaveUp {
        /// Tries made, the first included.
        attempts: u32,
        /// The last failure.
        last: Box<Error>,
    },
}

/// lettre's text for `e`, with a repeated leading kind collapsed: its STARTTLS path wraps a
/// connection error in another, which reads "Connection error: Connection error: ...".
fn lettre_detail(e: &lettre::transport::smtp::Error) -> String {
    collapse_repeated_kind(e.to_string())
}

fn collapse_repeated_kind(mut text: String) -> String {
    while let Some(i) = text.find(": ") {
        let prefix_len = i + 2;
        if !text[prefix_len..].starts_with(&text[..prefix_len]) {
            break;
        }
        text.drain(..prefix_len);
    }
    text
}

impl Error {
    /// Builds an error from a lettre error at `stage`, through [`classify`].
    pub fn from_lettre(stage: Stage, e: &lettre::transport::smtp::Error) -> Self {
        let fault = classify(e);
        match fault {
            Fault::ServiceClosing | Fault::Transient | Fault::Permanent => Error::Reply {
                stage,
                // `classify` returned a reply fault, so lettre has a status.
                code: e.status().map_or(0, u16::from),
                reply: e.source().map(|s| s.to_string()).unwrap_or_default(),
            },
            Fault::Tls => Error::Tls { stage, detail: lettre_detail(e) },
            Fault::Protocol => Error::Protocol { stage, detail: lettre_detail(e) },
            _ => Error::Connection { stage, fault, detail: lettre_detail(e) },
        }
    }

    /// Builds an error from a socket error at `stage`, through [`classify_io`].
    pub fn from_io(stage: Stage, e: &io::Error) -> Self {
        match classify_io(e) {
            Fault::Tls => Error::Tls { stage, detail: e.to_string() },
            fault => Error::Connection { stage, fault, detail: e.to_string() },
        }
    }

    /// A timeout at `stage` after `after`.
    pub fn timeout(stage: Stage, after: Duration) -> Self {
        Error::Connection {
            stage,
            fault: Fault::Timeout,
            detail: format!("no reply within {}ms", after.as_millis()),
        }
    }

    /// The kind of failure, for errors that come from the conversation with the server.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            Error::Reply { code: 421, .. } => Some(Fault::ServiceClosing),
            Error::Reply { code, .. } if (400..500).contains(code) => Some(Fault::Transient),
            Error::Reply { .. } => Some(Fault::Permanent),
            Error::Connection { fault, .. } => Some(*fault),
            Error::Tls { .. } => Some(Fault::Tls),
            Error::Protocol { .. } => Some(Fault::Protocol),
            Error::GaveUp { last, .. } => last.fault(),
            Error::InvalidAddress { .. } | Error::InvalidMessage(_) | Error::Config(_) => None,
        }
    }

    /// The stage the failure happened at, when it came from the conversation.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Error::Reply { stage, .. }
            | Error::Connection { stage, .. }
            | Error::Tls { stage, .. }
            | Error::Protocol { stage, .. } => Some(*stage),
            Error::GaveUp { last, .. } => last.stage(),
            _ => None,
        }
    }

    /// The connection is gone or untrustworthy: 421, EOF, reset, broken pipe, refused,
    /// timeout. (False for [`Error::GaveUp`]: the mailer already did all the reconnecting.)
    pub fn needs_reconnect(&self) -> bool {
        !matches!(self, Error::GaveUp { .. }) && self.fault().is_some_and(Fault::needs_reconnect)
    }

    /// Worth retrying: [`Error::needs_reconnect`] or another 4xx reply.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Error::GaveUp { .. }) && self.fault().is_some_and(Fault::is_retryable)
    }

    /// Sending this message again will not help: a 5xx reply, an invalid address or message,
    /// a configuration, TLS or protocol failure.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::InvalidAddress { .. } | Error::InvalidMessage(_) | Error::Config(_) => true,
            Error::Reply { code, .. } => *code >= 500,
            Error::Tls { .. } | Error::Protocol { .. } => true,
            Error::Connection { .. } | Error::GaveUp { .. } => false,
        }
    }

    /// The SMTP reply code, if the failure (or the last failure before giving up) was a reply.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Reply { code, .. } => Some(*code),
            Error::GaveUp { last, .. } => last.code(),
            _ => None,
        }
    }

    /// The failure is about an address: it did not parse, or the server refused a recipient
    /// (5xx to RCPT) or the sender (5xx to MAIL with 501, 550, 553 or 555).
    pub fn is_bad_address(&self) -> bool {
        match self {
            Error::InvalidAddress { .. } => true,
            Error::Reply { stage: Stage::Rcpt, code, .. } => *code >= 500,
            Error::Reply { stage: Stage::Mail, code, .. } => matches!(code, 501 | 550 | 553 | 555),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_repeated_lettre_kind_is_said_once() {
        let collapse = |s: &str| super::collapse_repeated_kind(s.to_owned());
        assert_eq!(
            collapse("Connection error: Connection error: invalid peer certificate: UnknownIssuer"),
            "Connection error: invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(collapse("network error: broken pipe"), "network error: broken pipe");
        assert_eq!(collapse("a: a: a: b"), "a: b");
        assert_eq!(collapse(""), "");
    }

    use super::*;

    #[test]
    fn stages_and_faults_have_stable_log_names() {
        assert_eq!(Stage::AfterDot.to_string(), "after_dot");
        assert_eq!(Stage::Rcpt.to_string(), "rcpt");
        assert_eq!(Fault::ServiceClosing.to_string(), "smtp_421");
        assert_eq!(Fault::BrokenPipe.to_string(), "broken_pipe");
    }

    #[test]
    fn io_errors_classify_by_kind() {
        let cases = [
            (io::ErrorKind::ConnectionReset, Fault::Reset),
            (io::ErrorKind::ConnectionAborted, Fault::Reset),
            (io::ErrorKind::BrokenPipe, Fault::BrokenPipe),
            (io::ErrorKind::ConnectionRefused, Fault::Refused),
            (io::ErrorKind::TimedOut, Fault::Timeout),
            (io::ErrorKind::UnexpectedEof, Fault::Eof),
            (io::ErrorKind::AddrNotAvailable, Fault::Network),
        ];
        for (kind, fault) in cases {
            assert_eq!(classify_io(&io::Error::from(kind)), fault, "{kind:?}");
            assert!(fault.needs_reconnect());
        }
        let tls = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(classify_io(&tls), Fault::Tls);
        assert!(matches!(Error::from_io(Stage::Connect, &tls), Error::Tls { .. }));
    }

    #[test]
    fn predicates_follow_the_reply_code() {
        let r = |stage, code| Error::Reply { stage, code, reply: "x".into() };
        let e421 = r(Stage::Mail, 421);
        assert!(e421.needs_reconnect() && e421.is_retryable() && !e421.is_permanent());
        assert_eq!(e421.code(), Some(421));
        let e450 = r(Stage::Rcpt, 450);
        assert!(!e450.needs_reconnect() && e450.is_retryable() && !e450.is_permanent());
        assert!(!e450.is_bad_address());
        let e550 = r(Stage::Rcpt, 550);
        assert!(e550.is_permanent() && !e550.is_retryable() && e550.is_bad_address());
        let e554 = r(Stage::AfterDot, 554);
        assert!(e554.is_permanent() && !e554.is_bad_address());
        let gave_up = Error::GaveUp { attempts: 3, last: Box::new(e421) };
        assert!(!gave_up.needs_reconnect() && !gave_up.is_permanent());
        assert_eq!(gave_up.code(), Some(421));
        assert_eq!(gave_up.stage(), Some(Stage::Mail));
        assert_eq!(
            gave_up.to_string(),
            "gave up after 3 attempts; last error: server replied 421 at mail: x"
        );
    }

    #[test]
    fn timeouts_need_a_reconnect() {
        let e = Error::timeout(Stage::Mail, Duration::from_millis(250));
        assert!(e.needs_reconnect());
        assert_eq!(e.fault(), Some(Fault::Timeout));
        assert_eq!(e.to_string(), "connection failed at mail (timeout): no reply within 250ms");
    }
}
