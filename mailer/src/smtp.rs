//! [`SmtpMailer`]: connect late, send, and on a lost connection back off, reconnect and send
//! again; log every step.

use std::fmt;
use std::sync::Arc;

use lettre::Address;
use lettre::message::Mailbox;
use lettre::transport::smtp::extension::ClientId;
use logger::Logger;
use tokio::sync::Mutex;

use crate::connection::Conn;
use crate::error::{Error, Fault, Stage};
use crate::message::{Prepared, parse_mailbox, prepare};
use crate::stats::{Counters, bump};
use crate::tls::TlsSetup;
use crate::{Backoff, BoxFuture, Config, Mailer, Sent, Stats, events};

/// An SMTP mailer over one connection, opened on the first send and reused.
///
/// Sends on one `SmtpMailer` are serialised (one SMTP connection cannot carry two
/// transactions at once); for N parallel connections build N mailers.
///
/// ```no_run
/// # async fn demo() -> Result<(), mailer::Error> {
/// use std::sync::Arc;
/// use mailer::Mailer;
/// let log: Arc<dyn logger::Logger> = Arc::new(logger::Mock::new());
/// let config = mailer::Config::new("127.0.0.1", 2525, "noreply@example.com");
/// let mailer = mailer::SmtpMailer::new(config, log); // no I/O yet
/// let sent = mailer.send_mail(&["a@example.com"], "subject", "body").await?;
/// println!("{} after {} attempt(s)", sent.message_id, sent.attempts);
/// mailer.close().await; // QUIT
/// # Ok(()) }
/// ```
pub struct SmtpMailer {
    config: Config,
    server: String,
    log: Arc<dyn Logger>,
    /// The from mailbox and TLS set-up, or why the configuration cannot work (returned by
    /// every send before any I/O, since `new` cannot fail).
    ready: Result<(Mailbox, TlsSetup), Error>,
    client_id: ClientId,
    backoff: Backoff,
    /// The connection, if one is open. Taken out for the length of a transaction and put back
    /// only when it ended cleanly, so a send cancelled mid-command never leaves a connection
    /// in an unknown state behind for the next send.
    conn: Mutex<Option<Conn>>,
    counters: Counters,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What a failed try did, so the caller can log and count.
struct Failure {
    error: Error,
    /// The failure was in opening a connection (logged as `reconnect_failed`).
    connecting: bool,
}

impl SmtpMailer {
    /// A mailer for `config`, logging through `log`. Does no network I/O; configuration
    /// errors (a bad from address, an unreadable root CA) are returned by the first send.
    pub fn new(config: Config, log: Arc<dyn Logger>) -> Self {
        let ready = config.validate().and_then(|()| {
            let from = parse_mailbox(&config.from)?;
            Ok((from, TlsSetup::new(&config)?))
        });
        let client_id = match &config.helo_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        SmtpMailer {
            server: config.server(),
            backoff: Backoff::new(config.retry_base, config.retry_max),
            config,
            log,
            ready,
            client_id,
            conn: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Sends one message to `to` (each `addr@example.com` or `Name <addr@example.com>`).
    /// Every address is checked before any I/O.
    ///
    /// Retry policy: a failure that [`Error::is_retryable`] (421, EOF, reset, broken pipe,
    /// refused, timeout, other 4xx) drops the connection, sleeps [`Backoff::delay`] for
    /// reconnect attempt `n` (0 for the first, then `retry_base` doubling to `retry_max`,
    /// with jitter; `n` never resets within a send) and tries again, at most `max_attempts`
    /// reconnects; then [`Error::GaveUp`]. A 5xx reply, TLS or protocol failure returns at
    /// once. A failure after the final dot resends the same bytes (same Message-ID) and marks
    /// the result `possibly_duplicated`. Dropping the future cancels the send.
    pub async fn send(&self, to: &[&str], subject: &str, body: &str) -> Result<Sent, Error> {
        let (from, tls) = match &self.ready {
            Ok(ready) => ready,
            Err(e) => return Err(self.fail_early(e.clone())),
        };
        let prepared = prepare(from, to, subject, body).map_err(|e| self.fail_early(e))?;
        logger::debug!(self.log, "envelope";
            event = events::ENVELOPE, message_id = prepared.message_id,
            from = prepared.from, to = Joined(&prepared.to));
        self.send_prepared(&prepared, tls).await
    }

    fn fail_early(&self, e: Error) -> Error {
        match &e {
            Error::InvalidAddress { reason, .. } => {
                logger::err!(self.log, "invalid address, nothing sent";
                    event = events::FAILED, error = format_args!("invalid address: {reason}"));
            }
            _ => logger::err!(self.log, "cannot send"; event = events::FAILED, error = e),
        }
        e
    }

    /// The retry policy, in one place.
    ///
    /// A try opens a connection if none is open (a connection idle longer than the idle
    /// limit is first probed with NOOP and replaced if the probe fails) and runs one
    /// transaction. When a try fails with a fault that [`Error::is_retryable`] (421, EOF,
    /// reset, broken pipe, refused, timeout, other 4xx), the connection is dropped and,
    /// unless `max_attempts` reconnect attempts were already made, the mailer sleeps
    /// [`Backoff::delay`] for reconnect attempt `n` (0, then `retry_base`, doubling up to
    /// `retry_max`, with jitter) and tries again. `n` counts from 0 for each send and never
    /// resets within it, so a server that drops every MAIL gets growing delays, not a
    /// reconnect storm. A 5xx reply, a TLS or protocol failure returns at once. A failure
    /// after the final dot leaves delivery unknown: the same bytes (same Message-ID) are sent
    /// again and the result is marked `possibly_duplicated`. Dropping the future cancels the
    /// send and discards the connection it was using.
    async fn send_prepared(&self, p: &Prepared, tls: &TlsSetup) -> Result<Sent, Error> {
        let mut guard = self.conn.lock().await;
        let mut reconnects: u32 = 0;
        let mut tries: u32 = 0;
        let mut possibly_duplicated = false;
        loop {
            tries += 1;
            bump(&self.counters.attempts);
            match self.try_once(&mut guard, tls, p, reconnects).await {
                Ok(()) => {
                    bump(&self.counters.sent);
                    logger::info!(self.log, "message sent";
                        event = events::SENT, message_id = p.message_id,
                        recipients = p.to.len(), attempts = tries,
                        possibly_duplicated = possibly_duplicated);
                    return Ok(Sent {
                        message_id: p.message_id.clone(),
                        attempts: tries,
                        possibly_duplicated,
                    });
                }
                Err(Failure { error, connecting }) => {
                    if let Some(fault) = error.fault() {
                        self.counters.fault(fault);
                    }
                    if connecting {
                        logger::warning!(self.log, "connect failed";
                            event = events::RECONNECT_FAILED, attempt = reconnects,
                            error = error);
                    }
                    if !error.is_retryable() {
                        self.log_final(&error);
                        return Err(error);
                    }
                    if error.stage() == Some(Stage::AfterDot) {
                        if !possibly_duplicated {
                            bump(&self.counters.possibly_duplicated);
                        }
                        possibly_duplicated = true;
                        logger::warning!(self.log,
                            "delivery unknown after the final dot; sending again with the same Message-ID";
                            event = events::RESEND, message_id = p.message_id,
                            stage = Stage::AfterDot);
                    }
                    if reconnects >= self.config.max_attempts {
                        bump(&self.counters.gave_up);
                        logger::err!(self.log, "giving up";
                            event = events::GAVE_UP, attempts = tries, error = error);
                        return Err(Error::GaveUp { attempts: tries, last: Box::new(error) });
                    }
                    let delay = self.backoff.delay_random(reconnects);
                    logger::info!(self.log, "backing off before reconnecting";
                        event = events::BACKOFF, attempt = reconnects,
                        delay_ms = delay.as_millis());
                    tokio::time::sleep(delay).await;
                    reconnects += 1;
                }
            }
        }
    }

    /// One try: reuse or open a connection, run the transaction, keep the connection only if
    /// it is known to be in a clean state.
    async fn try_once(
        &self,
        slot: &mut Option<Conn>,
        tls: &TlsSetup,
        p: &Prepared,
        reconnects: u32,
    ) -> Result<(), Failure> {
        let mut conn = match slot.take() {
            Some(mut conn) if conn.last_used.elapsed() > self.config.idle_limit => {
                match conn.probe().await {
                    Ok(()) => Some(conn),
                    Err(e) => {
                        // An idle connection the server has closed: expected, not a failure of
                        // this send; replace it without backing off.
                        if let Some(fault) = e.fault() {
                            self.counters.fault(fault);
                        }
                        self.log_fault(&e);
                        None
                    }
                }
            }
            other => other,
        };
        let conn_ref = match &mut conn {
            Some(c) => c,
            None => {
                logger::info!(self.log, "connecting"; event = events::CONNECT, server = self.server);
                match Conn::open(&self.config, tls, &self.client_id).await {
                    Ok(c) => {
                        let mode = if c.is_encrypted() { self.config.tls.as_str() } else { "none" };
                        logger::info!(self.log, "connected";
                            event = events::CONNECTED, server = self.server, tls = mode,
                            pipelining = c.is_pipelining());
                        if reconnects > 0 {
                            bump(&self.counters.reconnects);
                            logger::info!(self.log, "reconnected";
                                event = events::RECONNECTED, server = self.server,
                                attempts = reconnects);
                        }
                        conn.insert(c)
                    }
                    Err(error) => {
                        if error.stage() != Some(Stage::Connect) {
                            self.log_fault(&error);
                        }
                        return Err(Failure { error, connecting: true });
                    }
                }
            }
        };
        match conn_ref.transaction(p).await {
            Ok(()) => {
                *slot = conn;
                Ok(())
            }
            Err(error) => {
                self.log_fault(&error);
                if let Some(mut c) = conn {
                    if self.reusable_after(&error) && c.reset().await.is_ok() {
                        *slot = Some(c);
                    } else if !error.needs_reconnect() {
                        c.quit().await;
                    }
                }
                Err(Failure { error, connecting: false })
            }
        }
    }

    /// A refused envelope (a 4xx or 5xx reply to MAIL or RCPT, or to DATA) leaves a healthy
    /// connection that RSET can clean; a reply to the final dot needs no RSET at all (the
    /// caller then treats a failed RSET as a reason to drop the connection).
    fn reusable_after(&self, e: &Error) -> bool {
        matches!(e, Error::Reply { code, stage: Stage::Mail | Stage::Rcpt | Stage::Data | Stage::AfterDot, .. } if *code != 421)
    }

    /// Logs a fault of the conversation: `smtp_421`, `eof`, `connection_lost` or `deferred`.
    fn log_fault(&self, e: &Error) {
        let stage = e.stage().unwrap_or(Stage::Connect);
        match e {
            Error::Reply { code: 421, reply, .. } => {
                logger::warning!(self.log, "server closing the connection (421)";
                    event = events::SMTP_421, server = self.server, stage = stage, reply = reply);
            }
            Error::Reply { code, reply, .. } if (400..500).contains(code) => {
                logger::warning!(self.log, "transient reply, will retry";
                    event = events::DEFERRED, server = self.server, stage = stage,
                    code = code, reply = reply);
            }
            Error::Connection { fault: Fault::Eof, .. } => {
                logger::warning!(self.log, "server closed the connection";
                    event = events::EOF, server = self.server, stage = stage);
            }
            Error::Connection { fault, detail, .. } => {
                logger::warning!(self.log, "connection lost";
                    event = events::CONNECTION_LOST, server = self.server, stage = stage,
                    error = fault, detail = detail);
            }
            // Permanent failures are logged once, by `log_final`.
            _ => {}
        }
    }

    /// Logs a failure that ends the send: `rejected` for a 5xx reply, `failed` otherwise.
    fn log_final(&self, e: &Error) {
        match e {
            Error::Reply { code, reply, stage } => {
                logger::err!(self.log, "message rejected";
                    event = events::REJECTED, code = code, reply = reply, stage = stage,
                    bad_address = e.is_bad_address());
            }
            _ => logger::err!(self.log, "send failed"; event = events::FAILED, error = e),
        }
    }

    /// Sends QUIT on the open connection, if any, and logs `closed`. The next send connects
    /// again.
    pub async fn close(&self) {
        let conn = self.conn.lock().await.take();
        if let Some(conn) = conn {
            conn.quit().await;
        }
        logger::info!(self.log, "closed"; event = events::CLOSED, server = self.server);
    }
}

impl Mailer for SmtpMailer {
    fn send_mail<'a>(
        &'a self,
        to: &'a [&'a str],
        subject: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<Sent, Error>> {
        Box::pin(self.send(to, subject, body))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(SmtpMailer::close(self))
    }
}

/// Addresses joined with `,` for the debug `envelope` line.
struct Joined<'a>(&'a [Address]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(AsRef::<str>::as_ref(a))?;
        }
        Ok(())
    }
}
