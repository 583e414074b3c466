//! [`Error`], the [`Stage`] a failure happened at, the [`Fault`] it is, and `classify`: the one
//! place that decides what a lettre error means.

use std::error::Error as _;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Where in the SMTP conversation a failure happened. Displayed as the `stage=` log value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// TCP connect (and the TLS handshake for implicit TLS).
    Connect,
    /// The greeting and EHLO (lettre reads both in one call).
    Greeting,
    /// STARTTLS, its handshake and the EHLO after it.
    StartTls,
    /// AUTH.
    Auth,
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
    /// The log value: `connect`, `greeting`, `starttls`, `auth`, `mail`, `rcpt`, `data`,
    /// `after_dot`, `quit`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::StartTls => "starttls",
            Stage::Auth => "auth",
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

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// A 421 reply: the server is closing the channel. Reconnect and send again.
    ServiceClosing,
    /// The server closed the connection.
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

/// Classifies a lettre SMTP error: the single mapping from lettre's error (which has no
/// `is_network` or `is_eof`) to what the mailer does about it. Structure first, text last:
///
/// - a reply code: 421 is [`Fault::ServiceClosing`], other 4xx [`Fault::Transient`], 5xx
///   [`Fault::Permanent`];
/// - the first `io::Error` in the `source()` chain decides by its kind (reset, broken pipe,
///   refused, timed out, unexpected EOF); a wrapped `rustls::Error` is [`Fault::Tls`];
/// - lettre's timeout kind is [`Fault::Timeout`] (lettre does no TLS here: `wire.rs` does);
/// - `wire_eof`: our own stream saw the server close the connection, so whatever lettre calls
///   it, it is [`Fault::Eof`];
/// - lettre's response error "incomplete response" is how lettre 0.11 reports EOF: the text,
///   as the last resort (a test pins it);
/// - everything else is [`Fault::Protocol`].
pub(crate) fn classify(e: &lettre::transport::smtp::Error, wire_eof: bool) -> Fault {
    if let Some(code) = e.status() {
        return match u16::from(code) {
            421 => Fault::ServiceClosing,
            400..=499 => Fault::Transient,
            _ => Fault::Permanent,
        };
    }
    if let Some(fault) = io_fault_in_chain(e) {
        return fault;
    }
    if e.is_timeout() {
        return Fault::Timeout;
    }
    if wire_eof {
        return Fault::Eof;
    }
    if e.is_response() && e.source().is_some_and(|s| s.to_string() == "incomplete response") {
        return Fault::Eof;
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

/// Classifies a socket error (TCP connect, TLS handshakes, and io errors inside lettre's).
pub(crate) fn classify_io(e: &io::Error) -> Fault {
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

/// The underlying cause of an [`Error`] (a lettre, rustls or socket error), shared so that
/// `Error` stays `Clone`.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong with a send.
///
/// Ask the predicates rather than matching: [`Error::needs_reconnect`],
/// [`Error::is_permanent`], [`Error::is_bad_address`], [`Error::is_closed`],
/// [`Error::is_unreachable`], [`Error::code`]. The cause (lettre's, the OS's, rustls') is
/// [`std::error::Error::source`]; `{}` shows this error alone, `{:#}` the whole chain in one
/// line (`connection failed at mail (reset): Connection reset by peer (os error 104)`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// An address (recipient or from) that does not parse or holds CR/LF. Found before any I/O.
    InvalidAddress {
        /// The address as given (escaped when displayed).
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// An extra header whose name or value cannot be sent. Found before any I/O.
    InvalidHeader {
        /// The header name as given (escaped when displayed).
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// An attachment file that could not be read. Found before any I/O.
    Attachment {
        /// The path as given.
        path: String,
        /// What the OS said.
        source: Arc<io::Error>,
    },
    /// The message could not be built (no recipients, a bad content type, ...).
    InvalidMessage(String),
    /// The configuration cannot work (bad root CA PEM, bad host or HELO name, AUTH over plain
    /// text to a remote host).
    Config(String),
    /// The server replied with a negative code.
    Reply {
        /// Where.
        stage: Stage,
        /// The reply code, e.g. 421, 450, 550.
        code: u16,
        /// The reply text (all lines joined).
        reply: String,
    },
    /// The connection was closed, reset or refused, or a command timed out.
    Connection {
        /// Where.
        stage: Stage,
        /// Which kind: [`Fault::Eof`], [`Fault::Reset`], [`Fault::Timeout`], ...
        fault: Fault,
        /// What lettre or the OS said.
        source: Cause,
    },
    /// TLS could not be established (handshake or certificate verification).
    Tls {
        /// Where.
        stage: Stage,
        /// What rustls or lettre said.
        source: Cause,
    },
    /// A malformed reply or a missing server feature (no STARTTLS, no AUTH mechanism, no
    /// SMTPUTF8 for a non-ASCII address).
    Protocol {
        /// Where.
        stage: Stage,
        /// What went wrong.
        detail: String,
        /// lettre's error, when lettre found the problem.
        source: Option<Cause>,
    },
    /// [`crate::Mailer::close`] ended this send before it got through: it was waiting (for a
    /// connection, a rate-limit token or a backoff) or its transaction failed while closing.
    #[non_exhaustive]
    Closed {
        /// The failure that would have been retried, if there was one.
        last: Option<Box<Error>>,
        /// A try of this send lost its connection after the final dot: the server may have
        /// the message (see [`Error::possibly_delivered`]).
        possibly_delivered: bool,
    },
    /// The send made `attempts` tries (the first plus `attempts - 1` reconnects) and failed
    /// each time.
    #[non_exhaustive]
    GaveUp {
        /// Tries made, the first included.
        attempts: u32,
        /// The last failure.
        last: Box<Error>,
        /// A try of this send lost its connection after the final dot: the server may have
        /// the message (see [`Error::possibly_delivered`]).
        possibly_delivered: bool,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidAddress { address, reason } => {
                write!(f, "invalid address {address:?}: {reason}")?;
            }
            Error::InvalidHeader { name, reason } => {
                write!(f, "invalid header {name:?}: {reason}")?
            }
            Error::Attachment { path, .. } => write!(f, "cannot read attachment {path:?}")?,
            Error::InvalidMessage(why) => write!(f, "invalid message: {why}")?,
            Error::Config(why) => write!(f, "invalid configuration: {why}")?,
            Error::Reply { stage, code, reply } => {
                write!(f, "server replied {code} at {stage}: {reply}")?;
            }
            Error::Connection { stage, fault, .. } => {
                write!(f, "connection failed at {stage} ({fault})")?;
            }
            Error::Tls { stage, .. } => write!(f, "tls failed at {stage}")?,
            Error::Protocol { stage, detail, .. } => {
                write!(f, "protocol error at {stage}: {detail}")?
            }
            Error::Closed { possibly_delivered: false, .. } => {
                f.write_str("mailer closed before the message was sent")?;
            }
            Error::Closed { possibly_delivered: true, .. } => f.write_str(
                "mailer closed before the message was confirmed; it may have been delivered \
                 (a connection was lost after the final dot)",
            )?,
            Error::GaveUp { attempts, possibly_delivered, .. } => {
                write!(f, "gave up after {attempts} attempts")?;
                if *possibly_delivered {
                    f.write_str(
                        "; it may have been delivered (a connection was lost after the final dot)",
                    )?;
                }
            }
        }
        if f.alternate() {
            write_chain(f, self)?;
        }
        Ok(())
    }
}

/// Appends `: cause` for every cause in the chain. lettre's errors print their own source
/// too, so a cause whose text the previous one already ends with is skipped, and lettre's
/// doubled kind ("Connection error: Connection error: ...") is said once.
fn write_chain(f: &mut fmt::Formatter<'_>, e: &Error) -> fmt::Result {
    let mut previous = String::new();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = match cause.downcast_ref::<Error>() {
            // Our own errors print one level each; the loop walks on to their causes.
            Some(inner) => inner.to_string(),
            None => collapse_repeated_kind(cause.to_string()),
        };
        if !previous.ends_with(&text) {
            write!(f, ": {text}")?;
        }
        previous = text;
        source = cause.source();
    }
    Ok(())
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connection { source, .. } | Error::Tls { source, .. } => Some(&**source),
            Error::Protocol { source, .. } => source.as_ref().map(|s| &**s as _),
            Error::Attachment { source, .. } => Some(&**source),
            Error::Closed { last, .. } => last.as_deref().map(|e| e as _),
            Error::GaveUp { last, .. } => Some(&**last),
            _ => None,
        }
    }
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
    pub(crate) fn from_lettre(
        stage: Stage,
        e: lettre::transport::smtp::Error,
        wire_eof: bool,
    ) -> Self {
        match classify(&e, wire_eof) {
            Fault::ServiceClosing | Fault::Transient | Fault::Permanent => Error::Reply {
                stage,
                // `classify` returned a reply fault, so lettre has a status.
                code: e.status().map_or(0, u16::from),
                reply: e.source().map(|s| s.to_string()).unwrap_or_default(),
            },
            Fault::Tls => Error::Tls { stage, source: Arc::new(e) },
            Fault::Protocol => Error::Protocol {
                stage,
                detail: "unexpected reply or client error".into(),
                source: Some(Arc::new(e)),
            },
            fault => Error::Connection { stage, fault, source: Arc::new(e) },
        }
    }

    /// Builds an error from a socket error at `stage`, through [`classify_io`].
    pub(crate) fn from_io(stage: Stage, e: io::Error) -> Self {
        match classify_io(&e) {
            Fault::Tls => Error::Tls { stage, source: Arc::new(e) },
            fault => Error::Connection { stage, fault, source: Arc::new(e) },
        }
    }

    /// A timeout at `stage` after `after`.
    pub(crate) fn timeout(stage: Stage, after: Duration) -> Self {
        let what = format!("no reply within {}ms", after.as_millis());
        Error::Connection {
            stage,
            fault: Fault::Timeout,
            source: Arc::new(io::Error::new(io::ErrorKind::TimedOut, what)),
        }
    }

    /// The server closed the connection at `stage`; `what` says how we noticed.
    pub(crate) fn eof(stage: Stage, what: String) -> Self {
        let source = Arc::new(io::Error::new(io::ErrorKind::UnexpectedEof, what));
        Error::Connection { stage, fault: Fault::Eof, source }
    }

    /// A client-side refusal at `stage` (a feature the server lacks, a reply out of step).
    pub(crate) fn protocol(stage: Stage, detail: impl Into<String>) -> Self {
        Error::Protocol { stage, detail: detail.into(), source: None }
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
            Error::Closed { last, .. } => last.as_ref().and_then(|l| l.fault()),
            Error::InvalidAddress { .. }
            | Error::InvalidHeader { .. }
            | Error::Attachment { .. }
            | Error::InvalidMessage(_)
            | Error::Config(_) => None,
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
            Error::Closed { last, .. } => last.as_ref().and_then(|l| l.stage()),
            _ => None,
        }
    }

    /// The connection is gone or untrustworthy: 421, EOF, reset, broken pipe, refused,
    /// timeout. (False for [`Error::GaveUp`] and [`Error::Closed`]: the mailer already did
    /// all the reconnecting it will do.)
    pub fn needs_reconnect(&self) -> bool {
        !matches!(self, Error::GaveUp { .. } | Error::Closed { .. })
            && self.fault().is_some_and(Fault::needs_reconnect)
    }

    /// Worth retrying: [`Error::needs_reconnect`] or another 4xx reply.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Error::GaveUp { .. } | Error::Closed { .. })
            && self.fault().is_some_and(Fault::is_retryable)
    }

    /// Sending this message again will not help: a 5xx reply; an invalid address, header,
    /// attachment or message; a configuration, TLS or protocol failure.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::InvalidAddress { .. }
            | Error::InvalidHeader { .. }
            | Error::Attachment { .. }
            | Error::InvalidMessage(_)
            | Error::Config(_) => true,
            Error::Reply { code, .. } => *code >= 500,
            Error::Tls { .. } | Error::Protocol { .. } => true,
            Error::Connection { .. } | Error::GaveUp { .. } | Error::Closed { .. } => false,
        }
    }

    /// [`crate::Mailer::close`] ended the send; the message was not sent, unless
    /// [`Error::possibly_delivered`] says it may have been. Sending it again later is fine.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed { .. })
    }

    /// The server may have the message although the send failed: a try lost its connection
    /// (EOF, reset, timeout, a `421`) after the final dot, when delivery is unknown, and no
    /// later try got a definite answer. For [`Error::GaveUp`] and [`Error::Closed`] this covers
    /// every try of the send, not only the last failure; a caller that records outcomes
    /// should count such a message as "may have been delivered", not as failed, so that
    /// sending it again is known to risk a duplicate.
    pub fn possibly_delivered(&self) -> bool {
        match self {
            Error::GaveUp { possibly_delivered, .. } | Error::Closed { possibly_delivered, .. } => {
                *possibly_delivered
            }
            _ => self.loses_delivery(),
        }
    }

    /// This failure itself left delivery unknown: the connection was lost (or the server
    /// answered `421`) after the whole message was written. A `4xx` or `5xx` reply to the final
    /// dot is a definite answer: the server did not take the message.
    pub(crate) fn loses_delivery(&self) -> bool {
        self.stage() == Some(Stage::AfterDot) && self.needs_reconnect()
    }

    /// The send ended without getting a connection to talk over: the last try could not
    /// connect (refused, unreachable, connect timeout) or the server dropped it, or answered
    /// 421, before the conversation began. The server looks down, not this message's fault.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::GaveUp { last, .. } => last.is_unreachable(),
            Error::Connection { stage: Stage::Connect | Stage::Greeting, .. } => true,
            Error::Reply { stage: Stage::Greeting, code, .. } => (400..500).contains(code),
            _ => false,
        }
    }

    /// The SMTP reply code, if the failure (or the last failure before giving up) was a reply.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Reply { code, .. } => Some(*code),
            Error::GaveUp { last, .. } => last.code(),
            Error::Closed { last, .. } => last.as_ref().and_then(|l| l.code()),
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
    use super::*;

    #[test]
    fn a_repeated_lettre_kind_is_said_once() {
        let collapse = |s: &str| collapse_repeated_kind(s.to_owned());
        assert_eq!(
            collapse("Connection error: Connection error: invalid peer certificate: UnknownIssuer"),
            "Connection error: invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(collapse("network error: broken pipe"), "network error: broken pipe");
        assert_eq!(collapse("a: a: a: b"), "a: b");
        assert_eq!(collapse(""), "");
    }

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
        assert!(matches!(Error::from_io(Stage::Connect, tls), Error::Tls { .. }));
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
        let gave_up =
            Error::GaveUp { attempts: 3, last: Box::new(e421.clone()), possibly_delivered: false };
        assert!(!gave_up.needs_reconnect() && !gave_up.is_permanent() && !gave_up.is_closed());
        assert_eq!(gave_up.code(), Some(421));
        assert_eq!(gave_up.stage(), Some(Stage::Mail));
        assert_eq!(gave_up.to_string(), "gave up after 3 attempts");
        assert_eq!(
            format!("{gave_up:#}"),
            "gave up after 3 attempts: server replied 421 at mail: x"
        );
        let closed = Error::Closed { last: Some(Box::new(e421)), possibly_delivered: false };
        assert!(closed.is_closed() && !closed.is_retryable() && !closed.is_permanent());
        assert_eq!(closed.code(), Some(421));
        assert!(!gave_up.possibly_delivered() && !closed.possibly_delivered());
    }

    #[test]
    fn delivery_is_unknown_only_when_the_connection_went_after_the_final_dot() {
        let lost = Error::eof(Stage::AfterDot, "closed".into());
        let closing = Error::Reply { stage: Stage::AfterDot, code: 421, reply: "bye".into() };
        assert!(lost.possibly_delivered() && closing.possibly_delivered());
        let deferred = Error::Reply { stage: Stage::AfterDot, code: 451, reply: "later".into() };
        let before = Error::eof(Stage::Data, "closed".into());
        assert!(!deferred.possibly_delivered() && !before.possibly_delivered());
        // The flag of a whole send, whatever its last failure was.
        let refused = Error::from_io(Stage::Connect, io::ErrorKind::ConnectionRefused.into());
        let gave_up =
            Error::GaveUp { attempts: 3, last: Box::new(refused), possibly_delivered: true };
        assert!(gave_up.possibly_delivered() && gave_up.is_unreachable());
        assert_eq!(
            gave_up.to_string(),
            "gave up after 3 attempts; it may have been delivered (a connection was lost after \
             the final dot)"
        );
        let closed = Error::Closed { last: None, possibly_delivered: true };
        assert!(closed.possibly_delivered() && closed.is_closed());
    }

    #[test]
    fn unreachable_means_no_conversation_began() {
        let refused = Error::from_io(Stage::Connect, io::ErrorKind::ConnectionRefused.into());
        assert!(refused.is_unreachable());
        let busy = Error::Reply { stage: Stage::Greeting, code: 421, reply: "busy".into() };
        assert!(busy.is_unreachable());
        let gave_up =
            Error::GaveUp { attempts: 11, last: Box::new(refused), possibly_delivered: false };
        assert!(gave_up.is_unreachable());
        let at_mail = Error::eof(Stage::Mail, "closed".into());
        assert!(!at_mail.is_unreachable());
        let rejected = Error::Reply { stage: Stage::Greeting, code: 554, reply: "go away".into() };
        assert!(!rejected.is_unreachable());
    }

    #[test]
    fn the_cause_is_the_source_and_the_alternate_form_shows_the_chain() {
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "Connection reset by peer");
        let e = Error::from_io(Stage::Rcpt, reset);
        assert_eq!(e.to_string(), "connection failed at rcpt (reset)");
        assert_eq!(format!("{e:#}"), "connection failed at rcpt (reset): Connection reset by peer");
        let io = e.source().and_then(|s| s.downcast_ref::<io::Error>()).unwrap();
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        let t = Error::timeout(Stage::Mail, Duration::from_millis(250));
        assert!(t.needs_reconnect());
        assert_eq!(t.fault(), Some(Fault::Timeout));
        assert_eq!(format!("{t:#}"), "connection failed at mail (timeout): no reply within 250ms");
    }

    /// Pins how lettre reports each fault, through `classify`: a lettre upgrade that changes
    /// a mapping fails here instead of silently turning a reconnect into a permanent failure.
    /// These use lettre's own socket, so `wire_eof` is false and EOF rests on lettre's text.
    mod lettre_pins {
        use lettre::Address;
        use lettre::transport::smtp::client::AsyncSmtpConnection;
        use lettre::transport::smtp::commands::Mail;
        use lettre::transport::smtp::extension::ClientId;
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        use tokio::net::TcpListener;

        use super::*;

        /// A server that greets, answers EHLO, then answers MAIL with `reply` (`None`: close;
        /// `Some("")`: reset) and closes.
        async fn serve_once(greet: bool, reply: Option<&'static str>) -> u16 {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            tokio::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                if !greet {
                    return;
                }
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 pin.test ESMTP\r\n").await.unwrap();
                let mut line = String::new();
                r.read_line(&mut line).await.unwrap();
                w.write_all(b"250 pin.test\r\n").await.unwrap();
                line.clear();
                r.read_line(&mut line).await.unwrap();
                match reply {
                    None => {}
                    Some("") => {
                        let s = r.into_inner().reunite(w).unwrap();
                        s.set_zero_linger().unwrap();
                    }
                    Some(text) => w.write_all(format!("{text}\r\n").as_bytes()).await.unwrap(),
                }
            });
            port
        }

        async fn connect(port: u16) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
            let id = ClientId::Domain("client.test".into());
            AsyncSmtpConnection::connect_tokio1(("127.0.0.1", port), None, &id, None, None).await
        }

        async fn mail_error(reply: Option<&'static str>) -> lettre::transport::smtp::Error {
            let mut conn = connect(serve_once(true, reply).await).await.unwrap();
            let from: Address = "a@example.com".parse().unwrap();
            conn.command(Mail::new(Some(from), vec![])).await.unwrap_err()
        }

        #[tokio::test]
        async fn eof_is_lettres_incomplete_response() {
            let e = mail_error(None).await;
            assert!(e.to_string().contains("incomplete response"), "{e}");
            assert_eq!(classify(&e, false), Fault::Eof);
            assert!(Error::from_lettre(Stage::Mail, e, false).needs_reconnect());
        }

        #[tokio::test]
        async fn eof_before_the_greeting_is_eof_too() {
            let e = connect(serve_once(false, None).await).await.err().unwrap();
            assert_eq!(classify(&e, false), Fault::Eof, "{e}");
        }

        #[tokio::test]
        async fn replies_classify_by_code() {
            let e = mail_error(Some("421 4.4.2 srv Error: timeout exceeded")).await;
            assert_eq!(classify(&e, false), Fault::ServiceClosing, "{e}");
            let err = Error::from_lettre(Stage::Mail, e, false);
            assert_eq!(err.code(), Some(421));
            assert!(err.to_string().contains("timeout exceeded"), "{err}");
            let e = mail_error(Some("421-4.4.2 first\r\n421 4.4.2 second")).await;
            assert_eq!(classify(&e, false), Fault::ServiceClosing, "{e}");
            let e = mail_error(Some("451 4.3.0 try later")).await;
            assert_eq!(classify(&e, false), Fault::Transient, "{e}");
            let e = mail_error(Some("553 5.1.8 bad sender")).await;
            assert_eq!(classify(&e, false), Fault::Permanent, "{e}");
            assert!(Error::from_lettre(Stage::Mail, e, false).is_bad_address());
        }

        #[tokio::test]
        async fn a_reset_is_found_in_the_source_chain() {
            let e = mail_error(Some("")).await;
            assert_eq!(classify(&e, false), Fault::Reset, "{e}");
        }

        #[tokio::test]
        async fn nothing_listening_is_refused() {
            // Bound but not listening: the port stays ours, and a connect to it is refused.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let port = socket.local_addr().unwrap().port();
            let e = connect(port).await.err().unwrap();
            assert_eq!(classify(&e, false), Fault::Refused, "{e}");
        }
    }
}
