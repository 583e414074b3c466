//! One SMTP connection: opened on our own TCP_NODELAY socket, every exchange under a timeout,
//! each command's failure tagged with its [`Stage`].

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::commands::{Data, Mail, Noop, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;

use crate::Config;
use crate::error::{Error, Stage};
use crate::message::Prepared;
use crate::tls::{TlsSetup, TlsTcp};

/// An open, greeted (and, as configured, encrypted and authenticated) connection.
pub(crate) struct Conn {
    smtp: AsyncSmtpConnection,
    pub(crate) last_used: Instant,
    command_timeout: Duration,
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

/// Preformatted wire text (the dot-stuffed message with its final dot) sent through lettre's
/// `command`, so it leaves in one write instead of lettre's two.
struct Raw<'a>(&'a str);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Conn {
    /// Opens a connection: TCP (TCP_NODELAY), implicit TLS if configured, greeting and EHLO,
    /// STARTTLS if configured, AUTH if configured.
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
        if let Some(creds) = &config.credentials {
            let creds = Credentials::new(creds.user.clone(), creds.password.clone());
            timed(Stage::Auth, limit, smtp.auth(&[Mechanism::Plain, Mechanism::Login], &creds))
                .await?;
        }
        Ok(Conn { smtp, last_used: Instant::now(), command_timeout: limit })
    }

    /// Whether the connection is encrypted (for the `connected` log line).
    pub(crate) fn is_encrypted(&self) -> bool {
        self.smtp.is_encrypted()
    }

    /// NOOP: is an idle connection still alive?
    pub(crate) async fn probe(&mut self) -> Result<(), Error> {
        timed(Stage::Noop, self.command_timeout, self.smtp.command(Noop)).await.map(drop)
    }

    /// RSET after a rejected MAIL or RCPT, so the connection can carry the next message.
    pub(crate) async fn reset(&mut self) -> Result<(), Error> {
        timed(Stage::Mail, self.command_timeout, self.smtp.command(Rset)).await.map(drop)
    }

    /// QUIT, bounded by the command timeout; the outcome does not matter to anyone.
    pub(crate) async fn quit(mut self) {
        let _ = tokio::time::timeout(self.command_timeout, self.smtp.quit()).await;
    }

    /// One mail transaction: MAIL, RCPT for each recipient, DATA, then the message and its
    /// final dot in one write. Lock-step, one reply per command.
    pub(crate) async fn transaction(&mut self, p: &Prepared) -> Result<(), Error> {
        let limit = self.command_timeout;
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
        timed(Stage::Mail, limit, self.smtp.command(Mail::new(Some(p.from.clone()), params)))
            .await?;
        for to in &p.to {
            timed(Stage::Rcpt, limit, self.smtp.command(Rcpt::new(to.clone(), vec![]))).await?;
        }
        timed(Stage::Data, limit, self.smtp.command(Data)).await?;
        timed(Stage::AfterDot, limit, self.smtp.command(Raw(&p.wire))).await?;
        self.last_used = Instant::now();
        Ok(())
    }
}
