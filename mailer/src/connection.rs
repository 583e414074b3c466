//! One SMTP connection: opened on our own TCP_NODELAY socket, every exchange under a timeout,
//! each command's failure tagged with its [`Stage`].

use std::fmt::{self, Write as _};
use std::future::Future;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Noop, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;

use crate::Config;
use crate::error::{Error, Fault, Stage};
use crate::message::Prepared;
use crate::tls::{TlsSetup, TlsTcp};

/// An open, greeted (and, as configured, encrypted and authenticated) connection.
pub(crate) struct Conn {
    smtp: AsyncSmtpConnection,
    pub(crate) last_used: Instant,
    command_timeout: Duration,
    /// The server offers PIPELINING and the configuration allows it.
    pipelining: bool,
    /// Implicit TLS (which lettre cannot see: to lettre our TLS stream is a plain transport).
    implicit_tls: bool,
    /// The conversation is in an unknown state (a pipelined group was cut short, or the
    /// server entered DATA mode for a transaction we abandoned): never reuse.
    poisoned: bool,
}

/// Runs one exchange under `limit`; a timeout or a lettre error becomes an [`Error`] at `stage`.
async fn timed<T>(
    stage: Stage,
    limit: Duration,
    fut: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::from_lettre(stage, &e)),
        Err(_) => Err(Error::timeout(stage, limit)),
    }
}

/// lettre counts `221` (closing) as a positive reply. A server that said `221` and closed
/// while the connection was idle leaves that line waiting, and it would be read as the reply
/// to our next command (lettre #743): treat it as the connection being gone.
fn closing(stage: Stage, reply: &Response) -> Result<(), Error> {
    if reply.has_code(221) {
        return Err(Error::Connection {
            stage,
            fault: Fault::Eof,
            detail: format!(
                "server closed the connection: 221 {}",
                reply.message().collect::<Vec<_>>().join(" ")
            ),
        });
    }
    Ok(())
}

/// Preformatted wire text (a pipelined command group, or the dot-stuffed message with its
/// final dot) sent through lettre's `command`, so it leaves in one write.
struct Raw<'a>(&'a str);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Conn {
    /// Opens a connection: TCP (TCP_NODELAY), implicit TLS if configured, greeting and EHLO,
    /// STARTTLS if configured, a second EHLO to learn about PIPELINING (lettre does not keep
    /// it), AUTH if configured.
    pub(crate) async fn open(
        config: &Config,
        tls: &TlsSetup,
        client_id: &ClientId,
    ) -> Result<Conn, Error> {
        let connect = TcpStream::connect((config.host.as_str(), config.port));
        let tcp = match tokio::time::timeout(config.connect_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(Error::from_io(Stage::Connect, &e)),
            Err(_) => return Err(Error::timeout(Stage::Connect, config.connect_timeout)),
        };
        // lettre 0.11.23 never sets TCP_NODELAY and writes commands in pieces; with Nagle on,
        // each message waits for the server's delayed ACK (40 ms).
        tcp.set_nodelay(true).map_err(|e| Error::from_io(Stage::Connect, &e))?;
        let stream: Box<dyn AsyncTokioStream> = match tls {
            TlsSetup::Implicit { connector, name } => {
                let handshake = connector.connect(name.clone(), tcp);
                match tokio::time::timeout(config.connect_timeout, handshake).await {
                    Ok(Ok(s)) => Box::new(TlsTcp(s)),
                    Ok(Err(e)) => return Err(Error::from_io(Stage::Connect, &e)),
                    Err(_) => return Err(Error::timeout(Stage::Connect, config.connect_timeout)),
                }
            }
            TlsSetup::None | TlsSetup::StartTls(_) => Box::new(tcp),
        };
        let limit = config.command_timeout;
        let mut smtp = timed(
            Stage::Greeting,
            limit,
            AsyncSmtpConnection::connect_with_transport(stream, client_id),
        )
        .await?;
        if let TlsSetup::StartTls(params) = tls {
            if !smtp.can_starttls() {
                return Err(Error::Protocol {
                    stage: Stage::StartTls,
                    detail: "server does not offer STARTTLS".into(),
                });
            }
            timed(Stage::StartTls, limit, smtp.starttls(params.clone(), client_id)).await?;
        }
        let pipelining = if config.pipelining {
            // Before AUTH: some servers forget the authentication on a later EHLO.
            let ehlo =
                timed(Stage::Greeting, limit, smtp.command(Ehlo::new(client_id.clone()))).await?;
            ehlo.message().any(|l| l.split_whitespace().next() == Some("PIPELINING"))
        } else {
            false
        };
        if let Some(creds) = &config.credentials {
            let creds = Credentials::new(creds.user.clone(), creds.password.clone());
            timed(Stage::Auth, limit, smtp.auth(&[Mechanism::Plain, Mechanism::Login], &creds))
                .await?;
        }
        Ok(Conn {
            smtp,
            last_used: Instant::now(),
            command_timeout: limit,
            pipelining,
            implicit_tls: matches!(tls, TlsSetup::Implicit { .. }),
            poisoned: false,
        })
    }

    /// Whether the connection is encrypted (for the `connected` log line).
    pub(crate) fn is_encrypted(&self) -> bool {
        self.implicit_tls || self.smtp.is_encrypted()
    }

    /// Whether MAIL, RCPT and DATA go out in one write on this connection.
    pub(crate) fn is_pipelining(&self) -> bool {
        self.pipelining
    }

    /// NOOP: is an idle connection still alive?
    pub(crate) async fn probe(&mut self) -> Result<(), Error> {
        let reply = timed(Stage::Noop, self.command_timeout, self.smtp.command(Noop)).await?;
        closing(Stage::Noop, &reply)
    }

    /// RSET after a refused envelope, so the connection can carry the next message. Fails
    /// without I/O when the conversation is in an unknown state, and on a `221` (the server
    /// hung up meanwhile: lettre would count it as the RSET's success).
    pub(crate) async fn reset(&mut self) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Protocol {
                stage: Stage::Mail,
                detail: "connection state unknown".into(),
            });
        }
        let reply = timed(Stage::Mail, self.command_timeout, self.smtp.command(Rset)).await?;
        closing(Stage::Mail, &reply)
    }

    /// QUIT, bounded by the command timeout; the outcome does not matter to anyone.
    pub(crate) async fn quit(mut self) {
        if !self.poisoned {
            let _ = tokio::time::timeout(self.command_timeout, self.smtp.quit()).await;
        }
    }

    fn mail_params(&self, p: &Prepared) -> Result<Vec<MailParameter>, Error> {
        let info = self.smtp.server_info();
        let mut params = Vec::new();
        if p.has_non_ascii_addresses {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(Error::Protocol {
                    stage: Stage::Mail,
                    detail: "non-ASCII address but the server does not offer SMTPUTF8".into(),
                });
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if p.is_8bit {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(Error::Protocol {
                    stage: Stage::Mail,
                    detail: "8-bit message but the server does not offer 8BITMIME".into(),
                });
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(params)
    }

    /// One mail transaction: MAIL, RCPT for each recipient, DATA (pipelined in one write when
    /// the server allows), then the message and its final dot in one write.
    pub(crate) async fn transaction(&mut self, p: &Prepared) -> Result<(), Error> {
        let limit = self.command_timeout;
        let params = self.mail_params(p)?;
        let mail = Mail::new(Some(p.from.clone()), params);
        if self.pipelining {
            self.pipelined_envelope(p, mail).await?;
        } else {
            let reply = timed(Stage::Mail, limit, self.smtp.command(mail)).await?;
            closing(Stage::Mail, &reply)?;
            for to in &p.to {
                timed(Stage::Rcpt, limit, self.smtp.command(Rcpt::new(to.clone(), vec![]))).await?;
            }
            timed(Stage::Data, limit, self.smtp.command(Data)).await?;
        }
        timed(Stage::AfterDot, limit, self.smtp.command(Raw(&p.wire))).await?;
        self.last_used = Instant::now();
        Ok(())
    }

    /// MAIL, every RCPT and DATA in one write; then one reply each, in order, so a failure is
    /// still attributed to its stage. After a negative reply the remaining replies are read
    /// so the conversation stays in step (RSET can then clean it); if that is impossible the
    /// connection is marked poisoned.
    async fn pipelined_envelope(&mut self, p: &Prepared, mail: Mail) -> Result<(), Error> {
        let limit = self.command_timeout;
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
                timed(stage, limit, self.smtp.command(Raw(&group))).await
            } else {
                timed(stage, limit, self.smtp.read_response()).await
            };
            let reply = reply.and_then(|r| closing(stage, &r));
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
