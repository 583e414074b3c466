//! [`SmtpMailer`]: connect late, send over a pool of connections, and on a lost connection
//! back off, reconnect and send again; log every step.

use std::fmt;
use std::sync::Arc;

use lettre::Address;
use lettre::transport::smtp::extension::ClientId;
use logger::Logger;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::connection::{Conn, TransactionError};
use crate::error::{Error, Fault, Stage};
use crate::message::{Prepared, Sender, parse_mailbox, prepare};
use crate::pool::{Crowded, Lease, Pool, Pooled};
use crate::rate::Rate;
use crate::stats::{Counters, bump};
use crate::tls::TlsSetup;
use crate::{BoxFuture, Config, Email, Mailer, Sent, Stats, events};

/// An SMTP mailer over a pool of up to [`Config::max_connections`] connections (default
/// one), each opened when a send needs it and reused.
///
/// One `SmtpMailer` (behind an `Arc`) serves any number of concurrent tasks: each send
/// borrows a connection for one transaction; sends beyond the pool's size wait their turn.
///
/// ```no_run
/// # async fn demo() -> Result<(), mailer::Error> {
/// use std::sync::Arc;
/// use mailer::Mailer;
/// let log: Arc<dyn logger::Logger> = Arc::new(logger::Mock::new());
/// let config = mailer::Config::new("smtp.example.com", 587, "noreply@example.com")
///     .with_credentials("noreply", "secret") // STARTTLS is the default
///     .with_max_connections(4);
/// let mailer = Arc::new(mailer::SmtpMailer::new(config, log)); // no I/O yet
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
    ready: Result<(Sender, TlsSetup), Error>,
    client_id: ClientId,
    backoff: Backoff,
    pool: Arc<Pool>,
    rate: Option<Rate>,
    counters: Counters,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What a failed try did, so the retry policy can log and count.
struct Failure {
    error: Error,
    /// The failure was in opening a connection (logged as `reconnect_failed`).
    connecting: bool,
}

/// How one try ended short of a failure.
enum Tried {
    Sent,
    /// `close` fired while waiting for a slot, a token or a connection.
    Closed,
    /// The server refused a new connection because the pool has others: wait for one.
    Crowded,
}

impl SmtpMailer {
    /// A mailer for `config`, logging through `log`. Does no network I/O; configuration
    /// errors (a bad from address, an unreadable root CA, AUTH over plain text to a remote
    /// host) are returned by the first send.
    pub fn new(config: Config, log: Arc<dyn Logger>) -> Self {
        let ready = config.validate().and_then(|()| {
            let from = parse_mailbox(&config.from)?;
            Ok((Sender::new(from), TlsSetup::new(&config)?))
        });
        let client_id = match &config.helo_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let server = config.server();
        let backoff = Backoff::new(config.retry_base, config.retry_max);
        let pool = Pool::new(
            config.max_connections,
            config.idle_limit,
            config.command_timeout,
            backoff,
            Arc::clone(&log),
            server.clone(),
        );
        SmtpMailer {
            rate: config.rate.and_then(|(n, per)| Rate::new(n, per)),
            server,
            backoff,
            config,
            log,
            ready,
            client_id,
            pool: Arc::new(pool),
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

    /// Sends one text message to `to` (each `addr@example.com` or `Name <addr@example.com>`);
    /// the same as [`Mailer::send_mail`].
    pub async fn send(&self, to: &[&str], subject: &str, body: &str) -> Result<Sent, Error> {
        self.send_message(&Email::text(to, subject, body)).await
    }

    /// Sends `email`; the same as [`Mailer::send_message`]. Everything about the message is
    /// checked before any network I/O.
    pub async fn send_message(&self, email: &Email) -> Result<Sent, Error> {
        let (from, tls) = match &self.ready {
            Ok(ready) => ready,
            Err(e) => return Err(self.fail_early(e.clone())),
        };
        let prepared = prepare(from, email).await.map_err(|e| self.fail_early(e))?;
        logger::debug!(self.log, "envelope";
            event = events::ENVELOPE, message_id = prepared.message_id,
            from = prepared.from, to = Joined(&prepared.to));
        let Some(cancel) = self.pool.cancel_token() else {
            let e = Error::Closed { last: None, possibly_delivered: false };
            logger::err!(self.log, "send failed"; event = events::FAILED, error = e);
            return Err(e);
        };
        self.send_prepared(&prepared, tls, &cancel).await
    }

    fn fail_early(&self, e: Error) -> Error {
        match &e {
            Error::InvalidAddress { reason, .. } => {
                logger::err!(self.log, "invalid address, nothing sent";
                    event = events::FAILED, error = format_args!("invalid address: {reason}"));
            }
            _ => logger::err!(self.log, "cannot send"; event = events::FAILED,
                error = format_args!("{e:#}")),
        }
        e
    }

    /// The retry policy, in one place.
    ///
    /// Each try waits for a rate-limit token (if configured), then for a slot in the pool,
    /// takes an idle connection or opens one, and runs one transaction. When a try fails with
    /// a fault that [`Error::is_retryable`] (421, EOF, reset, broken pipe, refused, timeout,
    /// other 4xx), the connection is dropped and, unless `max_attempts` reconnect attempts
    /// were already made, the send sleeps [`Backoff::delay`] for reconnect attempt `n` (0,
    /// then `retry_base`, doubling up to `retry_max`, with jitter) holding nothing, and tries
    /// again. `n` counts from 0 for each send and never resets within it, so a server that
    /// drops every MAIL gets growing delays, not a reconnect storm. A `421` to a new
    /// connection while the pool has others alive shrinks the pool instead: the send waits
    /// for a connection and spends no attempt. A 5xx reply, a TLS or protocol failure returns
    /// at once. A connection lost after the final dot leaves delivery unknown: the same bytes
    /// (same Message-ID) are sent again and the result is marked `possibly_duplicated`; if the
    /// send fails in the end (a 5xx then included), it is [`Error::GaveUp`] with
    /// [`Error::possibly_delivered`], whatever the last failure was. `close` ends waiting and
    /// backing off at once with [`Error::Closed`]; a transaction already on the wire finishes
    /// and is not retried. Dropping the future cancels the send and discards the connection
    /// it was using.
    async fn send_prepared(
        &self,
        p: &Prepared,
        tls: &TlsSetup,
        cancel: &CancellationToken,
    ) -> Result<Sent, Error> {
        let mut reconnects: u32 = 0;
        let mut tries: u32 = 0;
        // A try lost its connection after the final dot: the server may have the message.
        let mut delivery_unknown = false;
        loop {
            let failure = match self.try_once(tls, p, reconnects, &mut tries, cancel).await {
                Ok(Tried::Sent) => {
                    bump(&self.counters.sent);
                    logger::info!(self.log, "message sent";
                        event = events::SENT, message_id = p.message_id,
                        recipients = p.to.len(), attempts = tries,
                        possibly_duplicated = delivery_unknown);
                    return Ok(Sent {
                        message_id: p.message_id.clone(),
                        attempts: tries,
                        possibly_duplicated: delivery_unknown,
                    });
                }
                Ok(Tried::Crowded) => continue,
                Ok(Tried::Closed) => return Err(self.closed(None, delivery_unknown)),
                Err(failure) => failure,
            };
            let Failure { error, connecting } = failure;
            if let Some(fault) = error.fault() {
                self.counters.fault(fault);
            }
            if connecting {
                logger::warning!(self.log, "connect failed";
                    event = events::RECONNECT_FAILED, attempt = reconnects,
                    error = format_args!("{error:#}"));
            }
            if !error.is_retryable() && !delivery_unknown {
                self.log_final(&error);
                return Err(error);
            }
            if error.loses_delivery() && !delivery_unknown {
                bump(&self.counters.possibly_duplicated);
                delivery_unknown = true;
            }
            if cancel.is_cancelled() {
                return Err(self.closed(Some(error), delivery_unknown));
            }
            // After a try that may have delivered the message, a definite refusal is still
            // no "not delivered": the send gives up, saying so.
            if reconnects >= self.config.max_attempts || !error.is_retryable() {
                bump(&self.counters.gave_up);
                logger::err!(self.log, "giving up";
                    event = events::GAVE_UP, attempts = tries, error = format_args!("{error:#}"),
                    possibly_delivered = delivery_unknown);
                return Err(Error::GaveUp {
                    attempts: tries,
                    last: Box::new(error),
                    possibly_delivered: delivery_unknown,
                });
            }
            if error.loses_delivery() {
                logger::warning!(self.log,
                    "delivery unknown after the final dot; sending again with the same Message-ID";
                    event = events::RESEND, message_id = p.message_id, stage = Stage::AfterDot);
            }
            let delay = self.backoff.delay_random(reconnects);
            logger::info!(self.log, "backing off before reconnecting";
                event = events::BACKOFF, attempt = reconnects, delay_ms = delay.as_millis());
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => return Err(self.closed(Some(error), delivery_unknown)),
            }
            reconnects += 1;
        }
    }

    /// One try: a rate token, a slot and its connection (or a new one), one transaction;
    /// the connection goes back to the pool only if it is known to be in a clean state.
    async fn try_once(
        &self,
        tls: &TlsSetup,
        p: &Prepared,
        reconnects: u32,
        tries: &mut u32,
        cancel: &CancellationToken,
    ) -> Result<Tried, Failure> {
        if let Some(rate) = &self.rate
            && !rate.wait(cancel).await
        {
            return Ok(Tried::Closed);
        }
        let Some(mut lease) = self.pool.checkout(cancel).await else {
            return Ok(Tried::Closed);
        };
        let pooled = match lease.conn.take() {
            Some(pooled) => pooled,
            None => match self.connect(tls, reconnects, cancel).await {
                Ok(Some(conn)) => self.pool.adopt(conn),
                Ok(None) => return Ok(Tried::Closed),
                Err(error) => {
                    if let Some(tried) = self.crowded(lease, &error) {
                        return Ok(tried);
                    }
                    *tries += 1;
                    bump(&self.counters.attempts);
                    return Err(Failure { error, connecting: true });
                }
            },
        };
        *tries += 1;
        bump(&self.counters.attempts);
        self.transact(lease, pooled, p).await
    }

    /// Opens a connection, logging `connect`, `connected` and (after a failure in this send)
    /// `reconnected`. `Ok(None)` when `close` fired first.
    async fn connect(
        &self,
        tls: &TlsSetup,
        reconnects: u32,
        cancel: &CancellationToken,
    ) -> Result<Option<Conn>, Error> {
        logger::info!(self.log, "connecting"; event = events::CONNECT, server = self.server);
        let opened = tokio::select! {
            opened = Conn::open(&self.config, tls, &self.client_id) => opened,
            () = cancel.cancelled() => return Ok(None),
        };
        match opened {
            Ok(c) => {
                bump(&self.counters.connects);
                let mode = if c.is_encrypted() { self.config.tls.as_str() } else { "none" };
                logger::info!(self.log, "connected";
                    event = events::CONNECTED, server = self.server, tls = mode,
                    pipelining = c.is_pipelining());
                if reconnects > 0 {
                    bump(&self.counters.reconnects);
                    logger::info!(self.log, "reconnected";
                        event = events::RECONNECTED, server = self.server, attempts = reconnects);
                }
                Ok(Some(c))
            }
            Err(error) => {
                bump(&self.counters.connect_failures);
                if error.stage() != Some(Stage::Connect) {
                    self.log_fault(&error);
                }
                Err(error)
            }
        }
    }

    /// A `421` at the greeting while the pool has other connections: the pool shrinks (or
    /// already holds one) and the send waits for a connection; `None` for any other failure.
    fn crowded(&self, lease: Lease<'_>, error: &Error) -> Option<Tried> {
        if !matches!(error, Error::Reply { stage: Stage::Greeting, code: 421, .. }) {
            return None;
        }
        match self.pool.crowded(lease) {
            Crowded::Shrunk(connections) => {
                self.counters.fault(Fault::ServiceClosing);
                logger::warning!(self.log, "server refused another connection; pool shrinks";
                    event = events::POOL_SHRUNK, server = self.server, connections = connections);
                Some(Tried::Crowded)
            }
            Crowded::No => None,
        }
    }

    /// Runs the transaction on a leased connection and gives the connection back if clean.
    async fn transact(
        &self,
        lease: Lease<'_>,
        mut pooled: Pooled,
        p: &Prepared,
    ) -> Result<Tried, Failure> {
        match pooled.conn.transaction(p).await {
            Ok(()) => {
                self.pool.give_back(lease, Some(pooled)).await;
                Ok(Tried::Sent)
            }
            Err(TransactionError::Refused(error)) => {
                self.pool.give_back(lease, Some(pooled)).await;
                Err(Failure { error, connecting: false })
            }
            Err(TransactionError::Failed(error)) => {
                self.log_fault(&error);
                let keep = if reusable_after(&error) && pooled.conn.reset().await.is_ok() {
                    Some(pooled)
                } else {
                    if !error.needs_reconnect() {
                        pooled.conn.quit().await;
                    }
                    None
                };
                self.pool.give_back(lease, keep).await;
                Err(Failure { error, connecting: false })
            }
        }
    }

    /// The error for a send that `close` ended, logged as `failed`.
    fn closed(&self, last: Option<Error>, possibly_delivered: bool) -> Error {
        let e = Error::Closed { last: last.map(Box::new), possibly_delivered };
        logger::warning!(self.log, "send ended by close"; event = events::FAILED,
            error = format_args!("{e:#}"), possibly_delivered = possibly_delivered);
        e
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
            Error::Connection { fault, .. } => {
                logger::warning!(self.log, "connection lost";
                    event = events::CONNECTION_LOST, server = self.server, stage = stage,
                    error = fault, detail = format_args!("{e:#}"));
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
            _ => logger::err!(self.log, "send failed"; event = events::FAILED,
                error = format_args!("{e:#}")),
        }
    }

    /// Ends waiting and backing-off sends at once ([`Error::Closed`]), QUITs idle
    /// connections, lets transactions on the wire finish (then QUITs their connections) and
    /// returns within one command timeout; logs `closed`. A later send connects again.
    pub async fn close(&self) {
        self.pool.close().await;
        logger::info!(self.log, "closed"; event = events::CLOSED, server = self.server);
    }
}

/// A refused envelope (a 4xx or 5xx reply to MAIL or RCPT, or to DATA) leaves a healthy
/// connection that RSET can clean; a reply to the final dot needs no RSET at all (the caller
/// then treats a failed RSET as a reason to drop the connection).
fn reusable_after(e: &Error) -> bool {
    matches!(e, Error::Reply { code, stage: Stage::Mail | Stage::Rcpt | Stage::Data | Stage::AfterDot, .. } if *code != 421)
}

impl Mailer for SmtpMailer {
    fn send_message<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<Sent, Error>> {
        Box::pin(SmtpMailer::send_message(self, email))
    }

    // One boxed future per send, not the default's two (its own and send_message's).
    fn send_mail<'a>(
        &'a self,
        to: &'a [&'a str],
        subject: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<Sent, Error>> {
        Box::pin(SmtpMailer::send(self, to, subject, body))
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
