//! One SMTP connection: opened on our own TCP_NODELAY socket, greeted with one EHLO (two
//! with STARTTLS, as RFC 3207 requires), every exchange under a timeout, each command's
//! failure tagged with its [`Stage`].

use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Auth, Data, Ehlo, Mail, Rcpt, Starttls};
use lettre::transport::smtp::extension::{
    ClientId, Extension, MailBodyParameter, MailParameter, ServerInfo,
};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::Config;
use crate::error::{Error, Stage};
use crate::message::Prepared;
use crate::reply::{self, Reply};
use crate::tls::TlsSetup;
use crate::wire::{Wire, is_one_starttls_reply, names_pipelining, offers_pipelining};

/// An open, greeted (and, as configured, encrypted and authenticated) connection.
pub(crate) struct Conn {
    smtp: AsyncSmtpConnection,
    wire: Wire,
    /// What the server offers, from the EHLO that counts (after STARTTLS, the second).
    info: ServerInfo,
    /// The server offers PIPELINING and the configuration allows it.
    pipelining: bool,
    encrypted: bool,
    command_timeout: Duration,
    /// When the last transaction ended (or the connection opened).
    pub(crate) last_used: Instant,
    /// The conversation is in an unknown state (a pipelined group was cut short, or the
    /// server entered DATA mode for a transaction we abandoned): never reuse.
    poisoned: bool,
    /// Bytes read off the wire for transaction replies and not yet taken (see `reply.rs`).
    replies: Vec<u8>,
}

/// Runs one exchange under `limit`; a timeout or a lettre error becomes an [`Error`] at `stage`.
async fn timed<T>(
    stage: Stage,
    limit: Duration,
    wire: &Wire,
    fut: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::from_lettre(stage, e, wire.saw_eof())),
        Err(_) => Err(Error::timeout(stage, limit)),
    }
}

impl Conn {
    /// Opens a connection: TCP (TCP_NODELAY), implicit TLS if configured, greeting and EHLO
    /// (lettre sends it; we read its reply off the wire for PIPELINING, which lettre does not
    /// keep), STARTTLS and the EHLO after it if configured, AUTH if configured.
    pub(crate) async fn open(
        config: &Config,
        tls: &TlsSetup,
        client_id: &ClientId,
    ) -> Result<Conn, Error> {
        let connect = TcpStream::connect((config.host.as_str(), config.port));
        let tcp = match tokio::time::timeout(config.connect_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(Error::from_io(Stage::Connect, e)),
            Err(_) => return Err(Error::timeout(Stage::Connect, config.connect_timeout)),
        };
        // lettre 0.11.23 never sets TCP_NODELAY and writes commands in pieces; with Nagle on,
        // each message waits for the server's delayed ACK (40 ms).
        tcp.set_nodelay(true).map_err(|e| Error::from_io(Stage::Connect, e))?;
        let wire = match tls {
            TlsSetup::Implicit(client) => {
                let handshake = client.connector.connect(client.name.clone(), tcp);
                match tokio::time::timeout(config.connect_timeout, handshake).await {
                    Ok(Ok(s)) => Wire::tls(s),
                    Ok(Err(e)) => return Err(Error::from_io(Stage::Connect, e)),
                    Err(_) => return Err(Error::timeout(Stage::Connect, config.connect_timeout)),
                }
            }
            TlsSetup::None | TlsSetup::StartTls(_) => Wire::plain(tcp),
        };
        let limit = config.command_timeout;
        wire.start_tap();
        let greet = AsyncSmtpConnection::connect_with_transport(Box::new(wire.clone()), client_id);
        let mut smtp = timed(Stage::Greeting, limit, &wire, greet).await?;
        let greeting_and_ehlo = wire.take_tap();
        let (info, offered) = match tls {
            TlsSetup::StartTls(client) => {
                if !smtp.server_info().supports_feature(Extension::StartTls) {
                    return Err(Error::protocol(Stage::StartTls, "server does not offer STARTTLS"));
                }
                wire.start_tap();
                timed(Stage::StartTls, limit, &wire, smtp.command(Starttls)).await?;
                if !is_one_starttls_reply(&wire.take_tap()) {
                    return Err(Error::protocol(
                        Stage::StartTls,
                        "the server sent more than its reply before the TLS handshake",
                    ));
                }
                let handshake = wire.upgrade(&client.connector, client.name.clone());
                match tokio::time::timeout(limit, handshake).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(Error::from_io(Stage::StartTls, e)),
                    Err(_) => return Err(Error::timeout(Stage::StartTls, limit)),
                }
                // RFC 3207: forget what the plain-text EHLO said; ask again over TLS.
                let ehlo = Ehlo::new(client_id.clone());
                let reply = timed(Stage::StartTls, limit, &wire, smtp.command(ehlo)).await?;
                let info = ServerInfo::from_response(&reply)
                    .map_err(|e| Error::from_lettre(Stage::StartTls, e, false))?;
                let offered = reply.message().any(|l| names_pipelining(l.as_bytes()));
                (info, offered)
            }
            TlsSetup::None | TlsSetup::Implicit(_) => {
                (smtp.server_info().clone(), offers_pipelining(&greeting_and_ehlo))
            }
        };
        let mut conn = Conn {
            smtp,
            wire,
            info,
            pipelining: config.pipelining && offered,
            encrypted: !matches!(tls, TlsSetup::None),
            command_timeout: limit,
            last_used: Instant::now(),
            poisoned: false,
            replies: Vec::with_capacity(512),
        };
        if let Some(creds) = &config.credentials {
            let creds = Credentials::new(creds.user.clone(), creds.password.clone());
            conn.authenticate(&creds).await?;
        }
        Ok(conn)
    }

    /// AUTH PLAIN or LOGIN, whichever the (last) EHLO offered, answering up to ten challenges.
    /// lettre's own `auth` would choose from the features of the plain-text EHLO.
    async fn authenticate(&mut self, creds: &Credentials) -> Result<(), Error> {
        let limit = self.command_timeout;
        let stage = Stage::Auth;
        let mechanism = self
            .info
            .get_auth_mechanism(&[Mechanism::Plain, Mechanism::Login])
            .ok_or_else(|| {
                Error::protocol(
                    stage,
                    "the server offers no AUTH mechanism we speak (PLAIN, LOGIN)",
                )
            })?;
        let lettre = |e| Error::from_lettre(stage, e, false);
        let first = Auth::new(mechanism, creds.clone(), None).map_err(lettre)?;
        let mut reply = timed(stage, limit, &self.wire, self.smtp.command(first)).await?;
        for _ in 0..10 {
            if !reply.has_code(334) {
                return Ok(());
            }
            let next = Auth::new_from_response(mechanism, creds.clone(), &reply).map_err(lettre)?;
            reply = timed(stage, limit, &self.wire, self.smtp.command(next)).await?;
        }
        Err(Error::protocol(stage, "too many AUTH challenges"))
    }

    /// Whether the connection is encrypted (for the `connected` log line).
    pub(crate) fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Whether MAIL, RCPT and DATA go out in one write on this connection.
    pub(crate) fn is_pipelining(&self) -> bool {
        self.pipelining
    }

    /// RSET after a refused envelope, so the connection can carry the next message. Fails
    /// without I/O when the conversation is in an unknown state, and on a `221` (the server
    /// hung up meanwhile: lettre would count it as the RSET's success).
    pub(crate) async fn reset(&mut self) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::protocol(Stage::Mail, "connection state unknown"));
        }
        self.exchange(Stage::Mail, b"RSET\r\n").await
    }

    /// QUIT, bounded by the command timeout; the outcome does not matter to anyone.
    pub(crate) async fn quit(mut self) {
        if !self.poisoned {
            let _ = tokio::time::timeout(self.command_timeout, self.smtp.quit()).await;
        }
    }

    /// The MAIL parameters the message needs, or why this server cannot take it (checked
    /// before anything of the transaction is written).
    fn mail_params(&self, p: &Prepared) -> Result<Vec<MailParameter>, Error> {
        let mut params = Vec::new();
        if p.has_non_ascii_addresses {
            if !self.info.supports_feature(Extension::SmtpUtfEight) {
                return Err(Error::protocol(
                    Stage::Mail,
                    "non-ASCII address but the server does not offer SMTPUTF8",
                ));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if p.is_8bit {
            if !self.info.supports_feature(Extension::EightBitMime) {
                return Err(Error::protocol(
                    Stage::Mail,
                    "8-bit message but the server does not offer 8BITMIME",
                ));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(params)
    }

    /// One mail transaction: MAIL, RCPT for each recipient, DATA (pipelined in one write when
    /// the server allows), then the message and its final dot in one write.
    ///
    /// `Err(Refused)` means nothing was written: the connection is as clean as before.
    pub(crate) async fn transaction(&mut self, p: &Prepared) -> Result<(), TransactionError> {
        let params = self.mail_params(p).map_err(TransactionError::Refused)?;
        let mail = Mail::new(Some(p.from.clone()), params);
        let sent = async {
            if self.pipelining {
                self.pipelined_envelope(p, mail).await?;
            } else {
                self.exchange(Stage::Mail, mail.to_string().as_bytes()).await?;
                for to in &p.to {
                    let rcpt = Rcpt::new(to.clone(), vec![]);
                    self.exchange(Stage::Rcpt, rcpt.to_string().as_bytes()).await?;
                }
                self.exchange(Stage::Data, Data.to_string().as_bytes()).await?;
            }
            self.exchange(Stage::AfterDot, p.wire.as_bytes()).await
        };
        let result = sent.await.map_err(TransactionError::Failed);
        self.last_used = Instant::now();
        result
    }

    /// Writes `bytes` (a command, a pipelined command group, a dot-stuffed message) straight
    /// to the wire in one write, and reads the reply, under the command timeout.
    async fn exchange(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), Error> {
        let limit = self.command_timeout;
        let (wire, buffer) = (&self.wire, &mut self.replies);
        let exchange = async {
            wire.write_all(bytes).await.map_err(|e| Error::from_io(stage, e))?;
            next_reply(wire, buffer, stage).await
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(reply) => accepted(stage, reply?),
            Err(_) => Err(Error::timeout(stage, limit)),
        }
    }

    /// The reply to a command written earlier (of a pipelined group): from what has been read
    /// already when it is there, as the replies of a group usually arrive together; otherwise
    /// off the wire, under the command timeout.
    async fn read_reply(&mut self, stage: Stage) -> Result<(), Error> {
        if let Some(reply) = buffered_reply(&mut self.replies, stage)? {
            return accepted(stage, reply);
        }
        let limit = self.command_timeout;
        let (wire, buffer) = (&self.wire, &mut self.replies);
        match tokio::time::timeout(limit, next_reply(wire, buffer, stage)).await {
            Ok(reply) => accepted(stage, reply?),
            Err(_) => Err(Error::timeout(stage, limit)),
        }
    }

    /// MAIL, every RCPT and DATA in one write; then one reply each, in order, so a failure is
    /// still attributed to its stage. After a negative reply the remaining replies are read
    /// so the conversation stays in step (RSET can then clean it); if that is impossible the
    /// connection is marked poisoned.
    async fn pipelined_envelope(&mut self, p: &Prepared, mail: Mail) -> Result<(), Error> {
        let mut group = String::with_capacity(64 + 48 * p.to.len());
        // Writing to a String cannot fail.
        let _ = write!(group, "{mail}");
        for to in &p.to {
            let _ = write!(group, "{}", Rcpt::new(to.clone(), vec![]));
        }
        let _ = write!(group, "{Data}");
        let stages = std::iter::once(Stage::Mail)
            .chain(p.to.iter().map(|_| Stage::Rcpt))
            .chain([Stage::Data]);
        let mut first_error = None;
        for (i, stage) in stages.enumerate() {
            let reply = if i == 0 {
                self.exchange(stage, group.as_bytes()).await
            } else {
                self.read_reply(stage).await
            };
            match reply {
                Ok(()) if first_error.is_some() && stage == Stage::Data => {
                    // DATA was accepted for a transaction we are abandoning: the server now
                    // takes everything as message text.
                    self.poisoned = true;
                }
                Ok(()) => {}
                Err(e) if e.needs_reconnect() => {
                    self.poisoned = true;
                    return Err(first_error.unwrap_or(e));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The next reply, read off the wire onto `buffer` as needed (no timeout here: the caller's).
async fn next_reply(wire: &Wire, buffer: &mut Vec<u8>, stage: Stage) -> Result<Reply, Error> {
    loop {
        if let Some(reply) = buffered_reply(buffer, stage)? {
            return Ok(reply);
        }
        if wire.read_some(buffer).await.map_err(|e| Error::from_io(stage, e))? == 0 {
            return Err(Error::eof(stage, "server closed the connection".into()));
        }
    }
}

/// A complete reply at the front of `buffer`, taken out of it.
fn buffered_reply(buffer: &mut Vec<u8>, stage: Stage) -> Result<Option<Reply>, Error> {
    match reply::parse(buffer) {
        Ok(Some((reply, used))) => {
            buffer.drain(..used);
            Ok(Some(reply))
        }
        Ok(None) => Ok(None),
        Err(why) => Err(Error::protocol(stage, why)),
    }
}

/// A negative reply as an error, and `221` too: lettre counts it as positive, but a server
/// that said it and closed while the connection was idle left that line to be read as the
/// reply to our next command (lettre #743): the connection is gone.
fn accepted(stage: Stage, reply: Reply) -> Result<(), Error> {
    match reply {
        Reply::Positive(221) => Err(Error::eof(stage, "server closed the connection: 221".into())),
        Reply::Positive(_) => Ok(()),
        Reply::Negative(code, reply) => Err(Error::Reply { stage, code, reply }),
    }
}

/// How a transaction failed.
pub(crate) enum TransactionError {
    /// Refused before anything was written (the server lacks a feature the message needs).
    Refused(Error),
    /// Failed on the wire.
    Failed(Error),
}
