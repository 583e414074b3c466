//! The SMTP state machine: a parsed command in, a reply and an action out. Pure: no I/O, no
//! clock, no randomness, so every reply is unit-tested here; faults are decided by the caller
//! from the [`Step::stage`] a command reached.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::command::{self, Command, ParseError};
use crate::data::{Bare, BareLf};
use crate::fault::Stage;
use crate::reply::Reply;

/// After this many rejected commands in one session the server says 421 and hangs up, so a
/// client spewing garbage cannot hold a connection forever.
pub(crate) const MAX_ERRORS: u32 = 50;

/// At most this many recipients per message (`452 4.5.3` beyond).
pub(crate) const MAX_RECIPIENTS: usize = 1000;

/// What a session needs to know about the server it runs in.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    /// The host name in the greeting and in replies.
    pub(crate) hostname: Arc<str>,
    /// Largest message accepted, in bytes (advertised as `SIZE`).
    pub(crate) max_message_size: usize,
    /// Whether `STARTTLS` is offered (on plaintext connections only).
    pub(crate) starttls: bool,
    /// `AUTH PLAIN LOGIN` credentials; when set, `MAIL` requires a successful `AUTH`.
    pub(crate) auth: Option<(String, String)>,
    /// What a bare LF in a command does (see [`Session::bare_lf_command`]).
    pub(crate) bare_lf: BareLf,
}

/// What the connection must do after sending the reply of a [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Read the next command.
    Continue,
    /// Close the connection, after a refusal (the client may still be sending).
    Close,
    /// Close the connection after `221` to QUIT (the client sends nothing more).
    Quit,
    /// Read the message content up to the final dot, then call [`Session::finish_data`].
    ReadData,
    /// Start the TLS handshake, then call [`Session::tls_started`].
    StartTls,
}

/// The outcome of one input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// The reply to send (unless a fault replaces it).
    pub(crate) reply: Reply,
    /// What to do next.
    pub(crate) action: Action,
    /// The fault stage this command reached (a MAIL, RCPT or DATA that is about to be
    /// accepted), so the caller can inject a fault instead of sending the reply.
    pub(crate) stage: Option<Stage>,
}

impl Step {
    fn reply(reply: Reply) -> Step {
        Step { reply, action: Action::Continue, stage: None }
    }
}

/// The sender, recipients and context of one message, handed over when DATA starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The reverse-path (empty for `<>`).
    pub(crate) from: String,
    /// The accepted recipients, in order.
    pub(crate) to: Vec<String>,
    /// The EHLO/HELO name.
    pub(crate) helo: String,
    /// The authenticated user, if any.
    pub(crate) auth_user: Option<String>,
    /// MAIL had `SMTPUTF8`: addresses may be non-ASCII (RFC 6531).
    pub(crate) smtputf8: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Connected, no EHLO/HELO yet.
    Fresh,
    /// Greeted, no transaction.
    Ready,
    /// MAIL accepted, no recipient yet.
    Mail,
    /// At least one RCPT accepted.
    Rcpt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthPending {
    Plain,
    LoginUser,
    LoginPass(String),
}

/// One SMTP session's state.
#[derive(Debug)]
pub(crate) struct Session {
    config: Arc<SessionConfig>,
    state: State,
    tls: bool,
    esmtp: bool,
    helo: String,
    user: Option<String>,
    auth_pending: Option<AuthPending>,
    envelope: Envelope,
    errors: u32,
}

impl Session {
    /// A new session; `tls` is true on an implicit-TLS connection.
    pub(crate) fn new(config: Arc<SessionConfig>, tls: bool) -> Session {
        Session {
            config,
            state: State::Fresh,
            tls,
            esmtp: false,
            helo: String::new(),
            user: None,
            auth_pending: None,
            envelope: Envelope::default(),
            errors: 0,
        }
    }

    /// `220 <host> ESMTP mail-test-srv`.
    pub(crate) fn greeting(&self) -> Reply {
        Reply::new(220, format!("{} ESMTP mail-test-srv", self.config.hostname))
    }

    /// Whether the connection is encrypted.
    #[cfg(test)]
    pub(crate) fn is_tls(&self) -> bool {
        self.tls
    }

    /// Handles one input line: an AUTH continuation when one is pending, else a command.
    pub(crate) fn handle_line(&mut self, line: &[u8]) -> Step {
        if let Some(pending) = self.auth_pending.take() {
            return self.auth_continue(pending, line);
        }
        self.handle(command::parse(line))
    }

    /// A command line ended in a bare LF. Under [`BareLf::Normalize`] it is handled like any
    /// other (Postfix accepts LF-terminated commands too); under [`BareLf::Reject`] it gets
    /// `550 5.5.2 <host> Error: bare <LF> received` and the connection is closed, as Postfix
    /// does: a client that ends commands in bare LF would be misread from then on.
    pub(crate) fn handle_bare_lf_line(&mut self, line: &[u8]) -> Step {
        match self.config.bare_lf {
            BareLf::Normalize => self.handle_line(line),
            BareLf::Reject => {
                Step { reply: self.bare_received(Bare::Lf), action: Action::Close, stage: None }
            }
        }
    }

    /// `550 5.5.2 <host> Error: bare <LF> received` (or `<CR>`): Postfix's reply to content
    /// or a command with a bare line ending under `smtpd_forbid_bare_newline = reject`.
    pub(crate) fn bare_received(&self, bare: Bare) -> Reply {
        let what = match bare {
            Bare::Lf => "<LF>",
            Bare::Cr => "<CR>",
        };
        Reply::new(550, format!("5.5.2 {} Error: bare {what} received", self.config.hostname))
    }

    /// A command line longer than the limit was read and discarded.
    pub(crate) fn line_too_long(&mut self) -> Step {
        // A half-read AUTH exchange cannot continue sensibly.
        self.auth_pending = None;
        self.error(Reply::new(500, "5.5.2 Error: line too long"))
    }

    /// Handles one parsed (or unparseable) command.
    pub(crate) fn handle(&mut self, command: Result<Command, ParseError>) -> Step {
        let command = match command {
            Ok(c) => c,
            Err(ParseError::Unknown) => {
                return self.error(Reply::new(500, "5.5.2 Error: command not recognized"));
            }
            Err(ParseError::Syntax(why)) => {
                return self.error(Reply::new(501, format!("5.5.4 Syntax error: {why}")));
            }
            Err(ParseError::UnsupportedParameter(param)) => {
                return self.error(Reply::new(555, format!("5.5.4 Unsupported option: {param}")));
            }
        };
        match command {
            Command::Ehlo(name) => {
                self.greeted(name, true);
                Step::reply(self.ehlo_reply())
            }
            Command::Helo(name) => {
                self.greeted(name, false);
                Step::reply(Reply::new(250, self.config.hostname.to_string()))
            }
            Command::Mail { from, size, smtputf8 } => self.mail(from, size, smtputf8),
            Command::Rcpt { to } => match self.state {
                State::Mail | State::Rcpt if self.envelope.to.len() >= MAX_RECIPIENTS => {
                    Step::reply(Reply::new(452, "4.5.3 Error: too many recipients"))
                }
                State::Mail | State::Rcpt if !to.is_ascii() && !self.envelope.smtputf8 => {
                    Step::reply(Self::undeclared_utf8())
                }
                State::Mail | State::Rcpt => {
                    self.envelope.to.push(to);
                    self.state = State::Rcpt;
                    Step {
                        reply: Reply::new(250, "2.1.5 Ok"),
                        action: Action::Continue,
                        stage: Some(Stage::Rcpt),
                    }
                }
                State::Fresh | State::Ready => {
                    self.error(Reply::new(503, "5.5.1 Error: need MAIL command"))
                }
            },
            Command::Data => match self.state {
                State::Rcpt => Step {
                    reply: Reply::new(354, "End data with <CR><LF>.<CR><LF>"),
                    action: Action::ReadData,
                    stage: Some(Stage::Data),
                },
                State::Mail => self.error(Reply::new(503, "5.5.1 Error: need RCPT command")),
                State::Fresh | State::Ready => {
                    self.error(Reply::new(503, "5.5.1 Error: need MAIL command"))
                }
            },
            Command::Rset => {
                self.reset_transaction();
                Step::reply(Reply::new(250, "2.0.0 Ok"))
            }
            Command::Noop => Step::reply(Reply::new(250, "2.0.0 Ok")),
            Command::Help => Step::reply(Reply::new(214, "2.0.0 See RFC 5321")),
            Command::Vrfy(_) => {
                Step::reply(Reply::new(252, "2.0.0 Cannot VRFY user, but will accept message"))
            }
            Command::Quit => {
                Step { reply: Reply::new(221, "2.0.0 Bye"), action: Action::Quit, stage: None }
            }
            Command::StartTls => {
                if self.tls {
                    self.error(Reply::new(503, "5.5.1 Error: TLS already active"))
                } else if !self.config.starttls {
                    self.error(Reply::new(502, "5.5.1 Error: command not implemented"))
                } else if matches!(self.state, State::Mail | State::Rcpt) {
                    self.error(Reply::new(503, "5.5.1 Error: STARTTLS inside a mail transaction"))
                } else {
                    Step {
                        reply: Reply::new(220, "2.0.0 Ready to start TLS"),
                        action: Action::StartTls,
                        stage: None,
                    }
                }
            }
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial),
        }
    }

    /// Called when the client finished the TLS handshake: RFC 3207 says forget everything
    /// learnt before it (the client must EHLO again).
    pub(crate) fn tls_started(&mut self) {
        self.tls = true;
        self.state = State::Fresh;
        self.esmtp = false;
        self.helo.clear();
        self.user = None;
        self.auth_pending = None;
        self.envelope = Envelope::default();
    }

    /// Ends the DATA phase: returns the envelope and resets the transaction (the session is
    /// ready for the next MAIL whatever the outcome).
    pub(crate) fn finish_data(&mut self) -> Envelope {
        self.state = State::Ready;
        let mut envelope = std::mem::take(&mut self.envelope);
        envelope.helo = self.helo.clone();
        envelope.auth_user = self.user.clone();
        envelope
    }

    /// `250 2.0.0 Ok: queued as <id>`: the store's id in decimal, the same id the HTTP API
    /// uses everywhere.
    pub(crate) fn queued(id: u64) -> Reply {
        Reply::new(250, format!("2.0.0 Ok: queued as {id}"))
    }

    /// `553 5.6.7`: a non-ASCII address in a transaction without `SMTPUTF8` (RFC 6531 §3.5
    /// names X.6.7; the text is Postfix's).
    fn undeclared_utf8() -> Reply {
        Reply::new(553, "5.6.7 Must declare SMTPUTF8 to send unicode address")
    }

    /// `552 5.3.4 Error: message too big` (the content went past `max_message_size`).
    pub(crate) fn too_big() -> Reply {
        Reply::new(552, "5.3.4 Error: message file too big")
    }

    /// `452 4.3.1 Insufficient system storage`: the store is at `max_messages`, or messages
    /// being received took all the memory they may (a transient error: the client retries).
    pub(crate) fn store_full() -> Reply {
        Reply::new(452, "4.3.1 Error: insufficient system storage")
    }

    /// `421 4.4.2 <host> Error: timeout exceeded`, the injected fault (Boulder's text).
    pub(crate) fn fault_421(hostname: &str) -> Reply {
        Reply::new(421, format!("4.4.2 {hostname} Error: timeout exceeded"))
    }

    /// `<code> <class>.3.0 <host> Error: injected fault`, an injected rejection.
    pub(crate) fn fault_reject(code: u16, hostname: &str) -> Reply {
        let class = if code >= 500 { 5 } else { 4 };
        Reply::new(code, format!("{class}.3.0 {hostname} Error: injected fault"))
    }

    /// Takes back the effect of the command that reached `stage`, because an injected fault
    /// refused it: a refused MAIL leaves no transaction, a refused RCPT adds no recipient.
    pub(crate) fn undo(&mut self, stage: Stage) {
        match stage {
            Stage::Mail => self.reset_transaction(),
            Stage::Rcpt => {
                self.envelope.to.pop();
                if self.envelope.to.is_empty() && self.state == State::Rcpt {
                    self.state = State::Mail;
                }
            }
            // DATA changes no state until its content is read, which a refusal skips.
            Stage::Greeting | Stage::Data | Stage::AfterDot => {}
        }
    }

    fn greeted(&mut self, name: String, esmtp: bool) {
        self.esmtp = esmtp;
        self.helo = name;
        self.reset_transaction();
        self.state = State::Ready;
    }

    fn ehlo_reply(&self) -> Reply {
        let mut lines: Vec<Cow<'static, str>> = vec![
            self.config.hostname.to_string().into(),
            "PIPELINING".into(),
            format!("SIZE {}", self.config.max_message_size).into(),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if self.config.starttls && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.config.auth.is_some() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        Reply::multi(250, lines)
    }

    fn mail(&mut self, from: String, size: Option<u64>, smtputf8: bool) -> Step {
        match self.state {
            State::Fresh => self.error(Reply::new(503, "5.5.1 Error: send HELO/EHLO first")),
            State::Mail | State::Rcpt => {
                self.error(Reply::new(503, "5.5.1 Error: nested MAIL command"))
            }
            State::Ready if self.config.auth.is_some() && self.user.is_none() => {
                self.error(Reply::new(530, "5.7.0 Authentication required"))
            }
            State::Ready if size.is_some_and(|s| s > self.config.max_message_size as u64) => {
                Step::reply(Reply::new(552, "5.3.4 Message size exceeds fixed limit"))
            }
            State::Ready if !from.is_ascii() && !smtputf8 => Step::reply(Self::undeclared_utf8()),
            State::Ready => {
                self.envelope = Envelope { from, smtputf8, ..Envelope::default() };
                self.state = State::Mail;
                Step {
                    reply: Reply::new(250, "2.1.0 Ok"),
                    action: Action::Continue,
                    stage: Some(Stage::Mail),
                }
            }
        }
    }

    fn auth(&mut self, mechanism: &str, initial: Option<String>) -> Step {
        if self.config.auth.is_none() {
            return self.error(Reply::new(503, "5.5.1 Error: authentication not enabled"));
        }
        if self.state == State::Fresh {
            return self.error(Reply::new(503, "5.5.1 Error: send HELO/EHLO first"));
        }
        if self.user.is_some() {
            return self.error(Reply::new(503, "5.5.1 Error: already authenticated"));
        }
        if matches!(self.state, State::Mail | State::Rcpt) {
            return self.error(Reply::new(503, "5.5.1 Error: MAIL transaction in progress"));
        }
        match (mechanism, initial) {
            ("PLAIN", None) => self.challenge(AuthPending::Plain, ""),
            ("PLAIN", Some(resp)) => self.auth_continue(AuthPending::Plain, resp.as_bytes()),
            ("LOGIN", None) => self.challenge(AuthPending::LoginUser, "VXNlcm5hbWU6"),
            ("LOGIN", Some(resp)) => self.auth_continue(AuthPending::LoginUser, resp.as_bytes()),
            _ => self.error(Reply::new(504, "5.5.4 Error: unsupported authentication mechanism")),
        }
    }

    fn challenge(&mut self, pending: AuthPending, text: &'static str) -> Step {
        self.auth_pending = Some(pending);
        Step::reply(Reply::new(334, text))
    }

    fn auth_continue(&mut self, pending: AuthPending, line: &[u8]) -> Step {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"*" {
            return self.error(Reply::new(501, "5.7.0 Authentication aborted"));
        }
        // RFC 4954: `=` is an empty initial response.
        let decoded = if line == b"=" { Ok(Vec::new()) } else { B64.decode(line) };
        let Ok(decoded) = decoded else {
            return self.error(Reply::new(501, "5.5.2 Error: invalid base64 data"));
        };
        match pending {
            AuthPending::Plain => {
                // authzid NUL authcid NUL passwd
                let mut parts = decoded.split(|&b| b == 0);
                let (Some(_authz), Some(user), Some(pass), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return self.error(Reply::new(501, "5.5.2 Error: malformed PLAIN response"));
                };
                self.check_credentials(user, pass)
            }
            AuthPending::LoginUser => {
                let user = String::from_utf8_lossy(&decoded).into_owned();
                self.challenge(AuthPending::LoginPass(user), "UGFzc3dvcmQ6")
            }
            AuthPending::LoginPass(user) => self.check_credentials(user.as_bytes(), &decoded),
        }
    }

    fn check_credentials(&mut self, user: &[u8], pass: &[u8]) -> Step {
        let ok = self
            .config
            .auth
            .as_ref()
            .is_some_and(|(u, p)| u.as_bytes() == user && p.as_bytes() == pass);
        if ok {
            self.user = Some(String::from_utf8_lossy(user).into_owned());
            Step::reply(Reply::new(235, "2.7.0 Authentication successful"))
        } else {
            self.error(Reply::new(535, "5.7.8 Error: authentication failed"))
        }
    }

    fn reset_transaction(&mut self) {
        self.envelope = Envelope::default();
        if matches!(self.state, State::Mail | State::Rcpt) {
            self.state = State::Ready;
        }
    }

    fn error(&mut self, reply: Reply) -> Step {
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            let text = format!("4.7.0 {} Error: too many errors", self.config.hostname);
            return Step { reply: Reply::new(421, text), action: Action::Close, stage: None };
        }
        Step::reply(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(starttls: bool, auth: bool) -> Session {
        let config = SessionConfig {
            hostname: "mx.test".into(),
            max_message_size: 1000,
            starttls,
            auth: auth.then(|| ("user".to_owned(), "secret".to_owned())),
            bare_lf: BareLf::Normalize,
        };
        Session::new(Arc::new(config), false)
    }

    fn wire(s: &mut Session, line: &str) -> String {
        s.handle_line(line.as_bytes()).reply.to_wire()
    }

    #[test]
    fn a_whole_transaction() {
        let mut s = session(false, false);
        assert_eq!(s.greeting().to_wire(), "220 mx.test ESMTP mail-test-srv\r\n");
        assert_eq!(
            wire(&mut s, "EHLO c.test"),
            "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
             250 ENHANCEDSTATUSCODES\r\n"
        );
        let step = s.handle_line(b"MAIL FROM:<a@x.test>");
        assert_eq!(
            (step.reply.to_wire().as_str(), step.stage),
            ("250 2.1.0 Ok\r\n", Some(Stage::Mail))
        );
        let step = s.handle_line(b"RCPT TO:<b@x.test>");
        assert_eq!(
            (step.reply.to_wire().as_str(), step.stage),
            ("250 2.1.5 Ok\r\n", Some(Stage::Rcpt))
        );
        assert_eq!(wire(&mut s, "RCPT TO:<c@x.test>"), "250 2.1.5 Ok\r\n");
        let step = s.handle_line(b"DATA");
        assert_eq!(step.action, Action::ReadData);
        assert_eq!(step.reply.to_wire(), "354 End data with <CR><LF>.<CR><LF>\r\n");
        let env = s.finish_data();
        assert_eq!(env.from, "a@x.test");
        assert_eq!(env.to, ["b@x.test", "c@x.test"]);
        assert_eq!(env.helo, "c.test");
        assert_eq!(wire(&mut s, "MAIL FROM:<>"), "250 2.1.0 Ok\r\n");
        let step = s.handle_line(b"QUIT");
        assert_eq!(
            (step.reply.to_wire().as_str(), step.action),
            ("221 2.0.0 Bye\r\n", Action::Quit)
        );
    }

    #[test]
    fn bad_sequences_get_503() {
        let mut s = session(false, false);
        assert_eq!(
            wire(&mut s, "MAIL FROM:<a@x.test>"),
            "503 5.5.1 Error: send HELO/EHLO first\r\n"
        );
        assert_eq!(wire(&mut s, "HELO c.test"), "250 mx.test\r\n");
        assert_eq!(wire(&mut s, "RCPT TO:<b@x.test>"), "503 5.5.1 Error: need MAIL command\r\n");
        assert_eq!(wire(&mut s, "DATA"), "503 5.5.1 Error: need MAIL command\r\n");
        assert_eq!(wire(&mut s, "MAIL FROM:<a@x.test>"), "250 2.1.0 Ok\r\n");
        assert_eq!(
            wire(&mut s, "MAIL FROM:<a@x.test>"),
            "503 5.5.1 Error: nested MAIL command\r\n"
        );
        assert_eq!(wire(&mut s, "DATA"), "503 5.5.1 Error: need RCPT command\r\n");
        assert_eq!(wire(&mut s, "RSET"), "250 2.0.0 Ok\r\n");
        assert_eq!(wire(&mut s, "RCPT TO:<b@x.test>"), "503 5.5.1 Error: need MAIL command\r\n");
        assert_eq!(wire(&mut s, "STARTTLS"), "502 5.5.1 Error: command not implemented\r\n");
        assert_eq!(wire(&mut s, "AUTH PLAIN"), "503 5.5.1 Error: authentication not enabled\r\n");
    }

    #[test]
    fn bad_input_gets_500_501_555_552() {
        let mut s = session(false, false);
        assert_eq!(wire(&mut s, "FROB"), "500 5.5.2 Error: command not recognized\r\n");
        assert_eq!(wire(&mut s, "EHLO"), "501 5.5.4 Syntax error: a domain name is required\r\n");
        assert_eq!(s.line_too_long().reply.to_wire(), "500 5.5.2 Error: line too long\r\n");
        wire(&mut s, "EHLO c.test");
        assert_eq!(
            wire(&mut s, "MAIL FROM:<a@x.test> X=1"),
            "555 5.5.4 Unsupported option: X=1\r\n"
        );
        assert_eq!(
            wire(&mut s, "MAIL FROM:<a@x.test> SIZE=1001"),
            "552 5.3.4 Message size exceeds fixed limit\r\n"
        );
        assert_eq!(
            wire(&mut s, "VRFY bob"),
            "252 2.0.0 Cannot VRFY user, but will accept message\r\n"
        );
        assert_eq!(wire(&mut s, "NOOP"), "250 2.0.0 Ok\r\n");
    }

    #[test]
    fn undo_takes_back_a_refused_mail_or_rcpt() {
        let mut s = session(false, false);
        wire(&mut s, "EHLO c.test");
        wire(&mut s, "MAIL FROM:<a@x.test>");
        s.undo(Stage::Mail);
        assert_eq!(wire(&mut s, "RCPT TO:<b@x.test>"), "503 5.5.1 Error: need MAIL command\r\n");
        wire(&mut s, "MAIL FROM:<a@x.test>");
        wire(&mut s, "RCPT TO:<b@x.test>");
        s.undo(Stage::Rcpt);
        assert_eq!(wire(&mut s, "DATA"), "503 5.5.1 Error: need RCPT command\r\n");
        wire(&mut s, "RCPT TO:<b@x.test>");
        wire(&mut s, "RCPT TO:<c@x.test>");
        s.undo(Stage::Rcpt);
        assert_eq!(s.handle_line(b"DATA").action, Action::ReadData);
        assert_eq!(s.finish_data().to, ["b@x.test"]);
        assert_eq!(
            Session::fault_reject(550, "h").to_wire(),
            "550 5.3.0 h Error: injected fault\r\n"
        );
        assert_eq!(
            Session::fault_reject(451, "h").to_wire(),
            "451 4.3.0 h Error: injected fault\r\n"
        );
    }

    #[test]
    fn too_many_errors_closes_with_421() {
        let mut s = session(false, false);
        for _ in 0..MAX_ERRORS {
            assert_eq!(s.handle_line(b"x").action, Action::Continue);
        }
        let step = s.handle_line(b"x");
        assert_eq!(step.action, Action::Close);
        assert_eq!(step.reply.to_wire(), "421 4.7.0 mx.test Error: too many errors\r\n");
    }

    #[test]
    fn starttls_is_offered_and_resets_the_session() {
        let mut s = session(true, false);
        assert!(wire(&mut s, "EHLO c.test").ends_with("250 STARTTLS\r\n"));
        let step = s.handle_line(b"STARTTLS");
        assert_eq!(
            (step.reply.to_wire().as_str(), step.action),
            ("220 2.0.0 Ready to start TLS\r\n", Action::StartTls)
        );
        s.tls_started();
        assert!(s.is_tls());
        assert_eq!(
            wire(&mut s, "MAIL FROM:<a@x.test>"),
            "503 5.5.1 Error: send HELO/EHLO first\r\n"
        );
        assert!(!wire(&mut s, "EHLO c.test").contains("STARTTLS"));
        assert_eq!(wire(&mut s, "STARTTLS"), "503 5.5.1 Error: TLS already active\r\n");
    }

    #[test]
    fn auth_plain_and_login() {
        let mut s = session(false, true);
        assert!(wire(&mut s, "EHLO c.test").ends_with("250 AUTH PLAIN LOGIN\r\n"));
        assert_eq!(wire(&mut s, "MAIL FROM:<a@x.test>"), "530 5.7.0 Authentication required\r\n");
        let bad = B64.encode(b"\0user\0wrong");
        assert_eq!(
            wire(&mut s, &format!("AUTH PLAIN {bad}")),
            "535 5.7.8 Error: authentication failed\r\n"
        );
        assert_eq!(wire(&mut s, "AUTH PLAIN"), "334 \r\n");
        assert_eq!(wire(&mut s, "not base64!"), "501 5.5.2 Error: invalid base64 data\r\n");
        assert_eq!(wire(&mut s, "AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
        assert_eq!(wire(&mut s, &B64.encode("user")), "334 UGFzc3dvcmQ6\r\n");
        assert_eq!(wire(&mut s, &B64.encode("secret")), "235 2.7.0 Authentication successful\r\n");
        assert_eq!(wire(&mut s, "AUTH LOGIN"), "503 5.5.1 Error: already authenticated\r\n");
        assert_eq!(wire(&mut s, "MAIL FROM:<a@x.test>"), "250 2.1.0 Ok\r\n");
        wire(&mut s, "RCPT TO:<b@x.test>");
        s.handle_line(b"DATA");
        assert_eq!(s.finish_data().auth_user.as_deref(), Some("user"));

        let mut s = session(false, true);
        wire(&mut s, "EHLO c.test");
        let good = B64.encode(b"\0user\0secret");
        assert_eq!(
            wire(&mut s, &format!("AUTH PLAIN {good}")),
            "235 2.7.0 Authentication successful\r\n"
        );
        let mut s = session(false, true);
        wire(&mut s, "EHLO c.test");
        assert_eq!(
            wire(&mut s, "AUTH CRAM-MD5"),
            "504 5.5.4 Error: unsupported authentication mechanism\r\n"
        );
        assert_eq!(wire(&mut s, "AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
        assert_eq!(wire(&mut s, "*"), "501 5.7.0 Authentication aborted\r\n");
    }

    #[test]
    fn smtputf8_is_advertised_and_required_for_non_ascii_addresses() {
        let mut s = session(false, false);
        assert!(wire(&mut s, "EHLO c.test").contains("250-SMTPUTF8\r\n"));
        let undeclared = "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n";
        assert_eq!(wire(&mut s, "MAIL FROM:<jürgen@x.test>"), undeclared);
        assert_eq!(wire(&mut s, "MAIL FROM:<a@x.test> BODY=8BITMIME"), "250 2.1.0 Ok\r\n");
        assert_eq!(wire(&mut s, "RCPT TO:<jürgen@x.test>"), undeclared);
        assert_eq!(wire(&mut s, "RCPT TO:<b@x.test>"), "250 2.1.5 Ok\r\n");
        assert_eq!(wire(&mut s, "RSET"), "250 2.0.0 Ok\r\n");
        assert_eq!(wire(&mut s, "MAIL FROM:<jürgen@bücher.test> SMTPUTF8"), "250 2.1.0 Ok\r\n");
        assert_eq!(wire(&mut s, "RCPT TO:<δοκιμή@παράδειγμα.test>"), "250 2.1.5 Ok\r\n");
        s.handle_line(b"DATA");
        let envelope = s.finish_data();
        assert_eq!(
            (envelope.from.as_str(), envelope.to),
            ("jürgen@bücher.test", vec!["δοκιμή@παράδειγμα.test".to_owned()])
        );
        // The declaration lasts one transaction.
        assert_eq!(wire(&mut s, "MAIL FROM:<a@x.test>"), "250 2.1.0 Ok\r\n");
        assert_eq!(wire(&mut s, "RCPT TO:<jürgen@x.test>"), undeclared);
        assert_eq!(
            wire(&mut s, "RCPT TO:<b@x.test> SMTPUTF8"),
            "555 5.5.4 Unsupported option: SMTPUTF8\r\n"
        );
    }

    #[test]
    fn a_bare_lf_command_is_handled_or_refused_by_the_policy() {
        let mut s = session(false, false);
        assert_eq!(s.handle_bare_lf_line(b"EHLO c.test").reply.code, 250);
        let config = SessionConfig { bare_lf: BareLf::Reject, ..(*s.config).clone() };
        let mut s = Session::new(Arc::new(config), false);
        let step = s.handle_bare_lf_line(b"EHLO c.test");
        assert_eq!(
            (step.reply.to_wire().as_str(), step.action),
            ("550 5.5.2 mx.test Error: bare <LF> received\r\n", Action::Close)
        );
        assert_eq!(
            s.bare_received(Bare::Cr).to_wire(),
            "550 5.5.2 mx.test Error: bare <CR> received\r\n"
        );
        assert_eq!(Session::queued(255).to_wire(), "250 2.0.0 Ok: queued as 255\r\n");
    }

    /// One input to the session model: what kind of line it is, and the bytes sent.
    #[derive(Debug, Clone)]
    enum Input {
        Helo,
        Mail,
        Rcpt,
        Data,
        Rset,
        Noop,
        Quit,
        /// Anything the parser rejects: the session must answer 5xx and keep its state.
        Garbage(Vec<u8>),
    }

    impl Input {
        fn bytes(&self) -> Vec<u8> {
            match self {
                Input::Helo => b"EHLO client.test".to_vec(),
                Input::Mail => b"MAIL FROM:<a@x.test>".to_vec(),
                Input::Rcpt => b"RCPT TO:<b@x.test>".to_vec(),
                Input::Data => b"DATA".to_vec(),
                Input::Rset => b"RSET".to_vec(),
                Input::Noop => b"NOOP".to_vec(),
                Input::Quit => b"QUIT".to_vec(),
                Input::Garbage(bytes) => bytes.clone(),
            }
        }
    }

    fn input() -> impl proptest::strategy::Strategy<Value = Input> {
        use proptest::prelude::*;
        let garbage = prop::collection::vec(any::<u8>(), 0..40).prop_map(|mut b| {
            // A leading NUL makes sure no verb matches, whatever follows.
            b.insert(0, 0);
            Input::Garbage(b)
        });
        prop_oneof![
            3 => Just(Input::Helo),
            4 => Just(Input::Mail),
            5 => Just(Input::Rcpt),
            3 => Just(Input::Data),
            1 => Just(Input::Rset),
            1 => Just(Input::Noop),
            1 => Just(Input::Quit),
            3 => garbage,
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// The state machine agrees with a model of RFC 5321's command order over random
        /// sequences: MAIL only after a greeting and not nested, RCPT only inside a
        /// transaction, DATA only with a recipient, garbage answered with 5xx without changing
        /// state, and the envelope handed over at DATA holds exactly the accepted recipients.
        #[test]
        fn session_follows_the_command_order_model(
            inputs in proptest::collection::vec(input(), 1..120),
        ) {
            use proptest::prop_assert_eq;
            let mut s = session(false, false);
            let (mut greeted, mut in_mail, mut recipients, mut errors) = (false, false, 0usize, 0u32);
            for input in inputs {
                let step = s.handle_line(&input.bytes());
                let code = step.reply.code;
                if code >= 500 {
                    errors += 1;
                }
                if code == 421 {
                    // The only 421 a fault-free session gives: too many errors, then hang up.
                    prop_assert_eq!(step.action, Action::Close);
                    prop_assert_eq!(errors, MAX_ERRORS);
                    break;
                }
                match input {
                    Input::Helo => {
                        prop_assert_eq!(code, 250);
                        (greeted, in_mail, recipients) = (true, false, 0);
                    }
                    Input::Mail if greeted && !in_mail => {
                        prop_assert_eq!(code, 250);
                        in_mail = true;
                    }
                    Input::Mail => prop_assert_eq!(code, 503),
                    Input::Rcpt if in_mail => {
                        prop_assert_eq!(code, 250);
                        recipients += 1;
                    }
                    Input::Rcpt => prop_assert_eq!(code, 503),
                    Input::Data if recipients > 0 => {
                        prop_assert_eq!(code, 354);
                        prop_assert_eq!(step.action, Action::ReadData);
                        let envelope = s.finish_data();
                        prop_assert_eq!(envelope.to.len(), recipients);
                        prop_assert_eq!(envelope.from, "a@x.test");
                        (in_mail, recipients) = (false, 0);
                    }
                    Input::Data => prop_assert_eq!(code, 503),
                    Input::Rset => {
                        prop_assert_eq!(code, 250);
                        (in_mail, recipients) = (false, 0);
                    }
                    Input::Noop => prop_assert_eq!(code, 250),
                    Input::Quit => {
                        prop_assert_eq!(code, 221);
                        prop_assert_eq!(step.action, Action::Quit);
                        break;
                    }
                    Input::Garbage(_) => proptest::prop_assert!(code >= 500, "garbage got {}", code),
                }
                if !matches!(input, Input::Quit | Input::Data) {
                    prop_assert_eq!(step.action, Action::Continue);
                }
            }
        }
    }

    proptest::proptest! {
        /// Any sequence of lines, commands or junk: the session never panics, every reply is
        /// well formed, and only QUIT (221) or the error limit (421) closes.
        #[test]
        fn any_line_sequence_gets_well_formed_replies(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b"EHLO c.test".to_vec()),
                    proptest::strategy::Just(b"MAIL FROM:<a@x.test>".to_vec()),
                    proptest::strategy::Just(b"RCPT TO:<b@x.test>".to_vec()),
                    proptest::strategy::Just(b"DATA".to_vec()),
                    proptest::strategy::Just(b"RSET".to_vec()),
                    proptest::strategy::Just(b"AUTH LOGIN".to_vec()),
                    proptest::strategy::Just(b"AUTH PLAIN AHVzZXIAc2VjcmV0".to_vec()),
                    proptest::strategy::Just(b"STARTTLS".to_vec()),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                ],
                0..60,
            ),
            starttls in proptest::bool::ANY,
            auth in proptest::bool::ANY,
        ) {
            let mut s = session(starttls, auth);
            for line in lines {
                let step = s.handle_line(&line);
                let wire = step.reply.to_wire();
                proptest::prop_assert!(wire.ends_with("\r\n"));
                for l in wire.split_terminator("\r\n") {
                    proptest::prop_assert!(l.len() >= 4 && l.as_bytes()[..3].iter().all(u8::is_ascii_digit), "{l:?}");
                    proptest::prop_assert!(!l.contains('\n') && !l.contains('\r'));
                }
                match step.action {
                    Action::Quit => {
                        proptest::prop_assert!(wire.starts_with("221 "), "{wire:?}");
                        break;
                    }
                    Action::Close => {
                        proptest::prop_assert!(wire.starts_with("421 "), "{wire:?}");
                        break;
                    }
                    Action::ReadData => { s.finish_data(); }
                    Action::StartTls => s.tls_started(),
                    Action::Continue => {}
                }
            }
        }
    }
}
