//! An SMTP mailer for services that send notifications: it connects late (no connection until
//! there is mail), reuses one connection, and treats a `421` reply or a server closing the
//! connection as "back off, reconnect, send again", logging every step through an injected
//! [`logger::Logger`] so tests can assert on the lines.
//!
//! Built on lettre's `AsyncSmtpConnection` and tokio, with what lettre 0.11.23 lacks added
//! here: TCP_NODELAY on every socket (lettre as shipped stalls 40 ms per message), a timeout
//! on every command, bounded exponential backoff with jitter that does not reset within a
//! send, stage-aware fault classification, and resending with the same Message-ID when the
//! connection is lost after the final dot.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailer::Error> {
//! use std::{sync::Arc, time::Duration};
//! use mailer::Mailer;
//! let log: Arc<dyn logger::Logger> = Arc::new(logger::Mock::new());
//! let config = mailer::Config::new("127.0.0.1", 2525, "noreply@example.com")
//!     .with_retry_base(Duration::from_millis(100))
//!     .with_max_attempts(5);
//! let mailer: Arc<dyn Mailer> = Arc::new(mailer::SmtpMailer::new(config, log));
//! mailer.send_mail(&["a@example.com"], "subject", "body").await?; // connects here
//! mailer.close().await; // QUIT
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `config.rs`: [`Config`] (builder-style `with_*`), [`Tls`], [`Credentials`].
//! - `error.rs`: [`Error`] and its predicates, [`Stage`], [`Fault`], [`classify`].
//! - `backoff.rs`: [`Backoff`], the pure delay function.
//! - `events.rs`: every `event=` name the mailer logs, with its fields.
//! - `message.rs`: address validation ([`parse_address`]) and message building.
//! - `tls.rs`: root certificates, implicit TLS on our own socket, STARTTLS parameters.
//! - `connection.rs`: one connection: open (TCP_NODELAY), timed commands, one transaction.
//! - `smtp.rs`: [`SmtpMailer`]: connect late, the retry policy, logging.
//! - `stats.rs`: [`Stats`] counters.
//! - `dry_run.rs`: [`DryRunMailer`].

use std::future::Future;
use std::pin::Pin;

mod backoff;
mod config;
mod connection;
mod dry_run;
mod error;
pub mod events;
mod message;
mod smtp;
mod stats;
mod tls;

pub use backoff::Backoff;
pub use config::{Config, Credentials, Tls};
pub use dry_run::DryRunMailer;
pub use error::{Error, Fault, Stage, classify, classify_io};
pub use message::{parse_address, parse_mailbox};
pub use smtp::SmtpMailer;
pub use stats::Stats;

/// A boxed, `Send` future: what [`Mailer`] methods return, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that sends mail. Object-safe: services hold an `Arc<dyn Mailer>`.
pub trait Mailer: Send + Sync {
    /// Sends one text message to `to` (each `addr@example.com` or `Name <addr@example.com>`).
    /// Addresses are validated before any I/O; a bad one is a permanent [`Error`] for which
    /// [`Error::is_bad_address`] holds.
    fn send_mail<'a>(
        &'a self,
        to: &'a [&'a str],
        subject: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<Sent, Error>>;

    /// Ends the session cleanly (QUIT) and logs `closed`. A later send connects again.
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
