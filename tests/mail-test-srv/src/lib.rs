//! A fake SMTP server for tests: it stores every accepted message in memory, serves them over
//! an HTTP API, and injects faults on request (Boulder's `test/mail-test-srv`, grown up).
//!
//! Faults are seeded and per stage: at the greeting, MAIL, RCPT, DATA or after the final dot
//! (the message is then stored but not acknowledged), each either a clean close with no reply
//! or `421 4.4.2 <host> Error: timeout exceeded` then close ([`FaultMode::Mixed`] draws one or
//! the other per fault), or a configurable 4xx/5xx reply that keeps the session
//! ([`FaultMode::Reject`]). Replies at the stage can be delayed, to test client timeouts. A
//! "gone away" window refuses new connections. Every fault is counted by kind and stage in
//! [`Stats`]; [`Chaos`] changes all of it at run time (also over HTTP, `PUT /chaos`).
//!
//! Faithful where the clients under test meet real servers: only `CRLF.CRLF` ends DATA, as in
//! Postfix ≥ 3.9, so no smuggled second message can ever be stored; a bare LF is a line end
//! inside content by default and refused with [`BareLf::Reject`]; `SMTPUTF8` (RFC 6531)
//! addresses are accepted when the client declares them. The id in `250 2.0.0 Ok: queued as
//! <id>` is [`StoredMessage::id`], the one id of the message in the HTTP API.
//!
//! Limits: command lines up to [`MAX_COMMAND_LINE`] bytes (longer ones get `500 5.5.2` and are
//! discarded as they stream in), messages up to [`Options::max_message_size`] (`552`), at most
//! [`Options::max_in_flight_bytes`] of messages being received at once (`452`), at most
//! [`Options::max_messages`] stored (`452`), [`Options::max_connections`] at once (`421`).
//!
//! # Layout
//!
//! - `command.rs`: SMTP command lines to commands, pure and fuzzed.
//! - `reply.rs`: replies and their wire form.
//! - `session.rs`: the SMTP state machine (command in, reply and action out), pure.
//! - `data.rs`: message content: the end-of-data rule, dot-unstuffing, bare LF ([`BareLf`]);
//!   pure and fuzzed.
//! - `connection.rs`: one socket: capped command lines, content under the size cap and the
//!   server-wide memory budget, batched replies.
//! - `mime.rs`: RFC 5322 unfolding and MIME parsing (`mail-parser`): [`Address`], [`Attachment`].
//! - `store.rs`: [`Store`] and [`StoredMessage`], the mailbox by id, counts by recipient in O(1).
//! - `search.rs`: Mailpit's search syntax; `index.rs`: the inverted index, built in the background.
//! - `fault.rs`: [`Chaos`], [`ChaosConfig`], [`Stage`], [`FaultMode`]: when and how to fault.
//! - `stats.rs`: [`Stats`], counters since start-up.
//! - `tls.rs`: [`TlsOptions`], certificates, the plaintext-or-TLS stream.
//! - `server.rs`: the accept loop and the per-connection handler.
//! - `http.rs`: the HTTP API router (Boulder's endpoints), [`HttpLimits`] and the server loop.
//! - `mailpit.rs`: the Mailpit-compatible `/api/v1`; `inbox.rs` (+ `inbox/`): the web inbox.
//! - `options.rs`: [`Options`].
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use mail_test_srv::{Options, TestServer};
//!
//! let server = TestServer::start(Options::default()).await?;
//! let mut smtp = tokio::net::TcpStream::connect(server.smtp_addr()).await?;
//! smtp.write_all(b"EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n\
//!                  Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n").await?;
//! let mut replies = String::new();
//! smtp.read_to_string(&mut replies).await?;
//! assert!(replies.ends_with("221 2.0.0 Bye\r\n"));
//! assert_eq!(server.store().wait_for(1, Duration::from_secs(5)).await, Ok(1));
//! assert_eq!(server.store().messages()[0].subject.as_deref(), Some("hi"));
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod command;
mod connection;
mod data;
mod fault;
mod http;
mod inbox;
mod index;
mod mailpit;
mod mime;
mod options;
mod reply;
mod search;
mod server;
mod session;
mod stats;
mod store;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use connection::MAX_COMMAND_LINE;
pub use data::BareLf;
pub use fault::{Chaos, ChaosConfig, FaultKind, FaultMode, Stage};
pub use http::HttpLimits;
pub use mime::{Address, Attachment};
pub use options::Options;
pub use stats::{FaultsByStage, Stats};
pub use store::{Filter, Store, StoreError, StoredMessage};
pub use tls::{TlsOptions, self_signed};

use connection::Budget;
use http::{HttpState, router};
use server::{Shared, run};
use session::SessionConfig;
use stats::Counters;
use tls::ServerTls;

/// A running server: SMTP (and HTTP unless disabled) on the addresses it bound. Dropping it
/// shuts it down (listeners close, connections get `421` and close); [`TestServer::shutdown`]
/// also waits until every task has finished.
pub struct TestServer {
    smtp_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    store: Store,
    chaos: Chaos,
    counters: Arc<Counters>,
    certificate_pem: Option<String>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("smtp_addr", &self.smtp_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

/// The logger used when none is given: discards everything.
struct Quiet;

impl logger::Logger for Quiet {
    fn enabled(&self, _: logger::Level) -> bool {
        false
    }
    fn log(&self, _: &logger::Record<'_>) {}
}

impl TestServer {
    /// Binds the listeners and starts serving. Must be called inside a tokio runtime.
    /// Fails when an address cannot be bound or the TLS certificate/key is unusable.
    pub async fn start(options: Options) -> io::Result<TestServer> {
        let tls = match &options.tls {
            TlsOptions::None => None,
            other => Some(ServerTls::new(other.pem())?),
        };
        let smtp = TcpListener::bind(options.smtp_addr).await?;
        let http = match options.http_addr {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let smtp_addr = smtp.local_addr()?;
        let http_addr = http.as_ref().map(TcpListener::local_addr).transpose()?;

        let store = Store::new(options.max_messages);
        let chaos = Chaos::new(
            ChaosConfig {
                chance: options.close_chance,
                stage: options.fault_stage,
                mode: options.fault_mode,
                close_first: options.close_first,
                reject_code: options.reject_code,
                delay_ms: u64::try_from(options.fault_delay.as_millis()).unwrap_or(u64::MAX),
                gone_away_ms: 0,
            },
            options.seed,
        );
        let counters = Arc::new(Counters::default());
        let hostname: Arc<str> = options.hostname.as_str().into();
        let shared = Arc::new(Shared {
            session: Arc::new(SessionConfig {
                hostname,
                // Stored spans are u32 (store.rs); no test message comes near 4 GiB.
                max_message_size: options.max_message_size.min(u32::MAX as usize / 2),
                starttls: matches!(options.tls, TlsOptions::StartTls(_)),
                auth: options.auth.clone(),
                bare_lf: options.bare_lf,
            }),
            certificate_pem: tls.as_ref().map(|t| t.certificate_pem.clone()),
            implicit_tls: matches!(options.tls, TlsOptions::Implicit(_)),
            tls,
            store: store.clone(),
            chaos: chaos.clone(),
            counters: Arc::clone(&counters),
            // One message of the largest size must always fit.
            budget: Arc::new(Budget::new(
                options.max_in_flight_bytes.max(options.max_message_size),
                Arc::clone(&counters),
            )),
            logger: options.logger.clone().unwrap_or_else(|| Arc::new(Quiet)),
            max_connections: options.max_connections,
            idle_timeout: options.idle_timeout,
        });
        let certificate_pem = shared.certificate_pem.clone();

        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(run(smtp, Arc::clone(&shared), shutdown.clone(), tracker.clone()));
        if let Some(http) = http {
            let state = HttpState {
                store: store.clone(),
                chaos: chaos.clone(),
                counters: Arc::clone(&counters),
                shutdown: shutdown.clone(),
                started: std::time::Instant::now(),
                smtp_addr,
                limits: options.http_limits,
            };
            tracker.spawn(http::serve(
                http,
                router(state),
                options.http_limits,
                shutdown.clone(),
                tracker.clone(),
                Arc::clone(&shared.logger),
            ));
        }
        Ok(TestServer {
            smtp_addr,
            http_addr,
            store,
            chaos,
            counters,
            certificate_pem,
            shutdown,
            tracker,
        })
    }

    /// The SMTP address actually bound.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addr
    }

    /// The HTTP address actually bound, if HTTP is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// `http://ADDR` for the HTTP API, if HTTP is on.
    pub fn http_url(&self) -> Option<String> {
        self.http_addr.map(|a| format!("http://{a}"))
    }

    /// The mailbox (a cheap handle).
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The fault controller (a cheap handle).
    pub fn chaos(&self) -> Chaos {
        self.chaos.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot(&self.store)
    }

    /// The server certificate (PEM) when TLS is on: clients use it as their root.
    pub fn certificate_pem(&self) -> Option<String> {
        self.certificate_pem.clone()
    }

    /// Stops accepting, tells open sessions `421` and closes them, and waits for every task
    /// (so the ports are free when this returns).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
