//! An SMTP mailer for services that send notifications: it connects late (no connection until
//! there is mail), shares a small pool of connections between concurrent sends, and treats a
//! `421` reply or a server closing the connection as "back off, reconnect, send again",
//! logging every step through an injected [`logger::Logger`] so tests can assert on the lines.
//!
//! Built on lettre's message builder and `AsyncSmtpConnection` with tokio, with what lettre
//! 0.11 lacks added here: TCP_NODELAY on every socket (lettre as shipped stalls 40 ms per
//! message), PIPELINING learnt from the one EHLO, a timeout on every command, bounded
//! exponential backoff with jitter that does not reset within a send, stage-aware fault
//! classification, resending with the same Message-ID when the connection is lost after the
//! final dot, a rate limit, and line endings normalised in linear time.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailer::Error> {
//! use std::{sync::Arc, time::Duration};
//! use mailer::{Email, Mailer};
//! let log: Arc<dyn logger::Logger> = Arc::new(logger::Mock::new());
//! let config = mailer::Config::new("smtp.example.com", 587, "noreply@example.com")
//!     .with_credentials("noreply", "secret") // over STARTTLS, the default
//!     .with_max_connections(4)
//!     .with_rate(14, Duration::from_secs(1))
//!     .with_retry_base(Duration::from_millis(100));
//! let mailer: Arc<dyn Mailer> = Arc::new(mailer::SmtpMailer::new(config, log));
//! mailer.send_mail(&["a@example.com"], "subject", "body").await?; // connects here
//! let email = Email::new("b@example.com", "Your report")
//!     .with_text("See the attachment.")
//!     .with_html("<p>See the attachment.</p>")
//!     .with_header("List-Unsubscribe", "<https://example.com/u/b>")
//!     .with_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
//!     .with_attachment(mailer::Attachment::from_path("report.pdf"));
//! mailer.send_message(&email).await?;
//! mailer.close().await; // QUIT
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `config.rs`: [`Config`] (builder-style `with_*`), [`Tls`], [`Credentials`].
//! - `error.rs`: [`Error`] and its predicates, [`Stage`], [`Fault`]; `classify`, the one
//!   mapping from lettre's errors.
//! - `backoff.rs`: `Backoff`, the pure delay function.
//! - `events.rs`: every `event=` name the mailer logs, with its fields.
//! - `email.rs`: [`Email`] and [`Attachment`], what `send_message` sends.
//! - `message.rs`: address and header validation ([`parse_address`]), message building.
//! - `tls.rs`: root certificates and the rustls client for STARTTLS and implicit TLS.
//! - `wire.rs`: the byte stream under lettre: the EHLO tap, TLS upgrade, EOF.
//! - `connection.rs`: one connection: open (TCP_NODELAY, one EHLO), timed commands, one
//!   transaction (pipelined when offered).
//! - `reply.rs`: the replies of a transaction, read off the wire without lettre.
//! - `pool.rs`: up to n connections lent one send at a time; idle reaper; shrink and grow.
//! - `rate.rs`: the token bucket of `with_rate`.
//! - `smtp.rs`: [`SmtpMailer`]: connect late, the retry policy, logging.
//! - `stats.rs`: [`Stats`] counters.
//! - `dry_run.rs`: [`DryRunMailer`].

use std::future::Future;
use std::pin::Pin;

mod backoff;
mod config;
mod connection;
mod dry_run;
mod email;
mod error;
pub mod events;
mod message;
mod pool;
mod rate;
mod reply;
mod smtp;
mod stats;
mod tls;
mod wire;

pub use config::{Config, Credentials, Tls};
pub use dry_run::DryRunMailer;
pub use email::{Attachment, Email};
pub use error::{Cause, Error, Fault, Stage};
pub use message::{parse_address, parse_mailbox};
pub use smtp::SmtpMailer;
pub use stats::Stats;

/// A boxed, `Send` future: what [`Mailer`] methods return, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that sends mail. Object-safe: services hold an `Arc<dyn Mailer>`.
pub trait Mailer: Send + Sync {
    /// Sends `email`. Everything about the message (addresses, headers, attachments) is
    /// checked before any network I/O; a problem is a permanent [`Error`].
    fn send_message<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<Sent, Error>>;

    /// Sends one text message to `to` (each `addr@example.com` or `Name <addr@example.com>`):
    /// a shortcut for [`Mailer::send_message`]. A bad address is a permanent [`Error`] for
    /// which [`Error::is_bad_address`] holds, found before any I/O.
    fn send_mail<'a>(
        &'a self,
        to: &'a [&'a str],
        subject: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<Sent, Error>> {
        Box::pin(async move { self.send_message(&Email::text(to, subject, body)).await })
    }

    /// Ends the session cleanly (QUIT) and logs `closed`. Sends still waiting end with an
    /// error for which [`Error::is_closed`] holds; a later send connects again.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// The outcome of a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The Message-ID header, with its angle brackets.
    pub message_id: String,
    /// Tries it took (1 when the first succeeded; 0 for [`DryRunMailer`]).
    pub attempts: u32,
    /// The connection was lost after the final dot at least once, so the server may have
    /// delivered the message twice (same Message-ID).
    pub possibly_duplicated: bool,
}
