//! Every `event=` name the mailer logs, in one place. Tests and dashboards match on these.
//!
//! | event | level | fields |
//! |---|---|---|
//! | [`CONNECT`] | info | `server` |
//! | [`CONNECTED`] | info | `server`, `tls`, `pipelining` |
//! | [`SMTP_421`] | warning | `server`, `stage`, `reply` |
//! | [`EOF`] | warning | `server`, `stage` |
//! | [`CONNECTION_LOST`] | warning | `server`, `stage`, `error` (`reset`, `broken_pipe`, `timeout`, `network`), `detail` |
//! | [`DEFERRED`] | warning | `server`, `stage`, `code`, `reply` (a 4xx other than 421; retried) |
//! | [`BACKOFF`] | info | `attempt`, `delay_ms` |
//! | [`RECONNECT_FAILED`] | warning | `attempt`, `error` |
//! | [`RECONNECTED`] | info | `server`, `attempts` |
//! | [`RESEND`] | warning | `message_id`, `stage` (delivery unknown: sent again, same Message-ID) |
//! | [`SENT`] | info | `message_id`, `recipients` (a count), `attempts`, `possibly_duplicated` |
//! | [`REJECTED`] | err | `code`, `reply`, `stage`, `bad_address` |
//! | [`FAILED`] | err | `error` (TLS, protocol or configuration failures: not retried); a send ended by `close`, at warning, adds `possibly_delivered` |
//! | [`GAVE_UP`] | err | `attempts`, `error`, `possibly_delivered` (a try lost its connection after the final dot: the server may have the message) |
//! | [`CLOSED`] | info | `server` |
//! | [`POOL_SHRUNK`] | warning | `server`, `connections` (the pool's new size) |
//! | [`POOL_GROWN`] | info | `server`, `connections` (the pool's new size) |
//! | [`IDLE_CLOSED`] | info | `server`, `connections` (how many), `idle_ms` (the idle limit) |
//!
//! Addresses appear only at debug level (`event=envelope`); credentials and bodies never.

/// Opening a connection.
pub const CONNECT: &str = "connect";
/// Connected, greeted, TLS and AUTH done.
pub const CONNECTED: &str = "connected";
/// The server replied 421 (closing the channel) at some stage.
pub const SMTP_421: &str = "smtp_421";
/// The server closed the connection (EOF) at some stage.
pub const EOF: &str = "eof";
/// The connection broke after it was open: reset, broken pipe, a timeout or another socket
/// error. (A refused connect is a [`RECONNECT_FAILED`].)
pub const CONNECTION_LOST: &str = "connection_lost";
/// A transient 4xx reply other than 421; the send is retried with backoff.
pub const DEFERRED: &str = "deferred";
/// Sleeping before a reconnect attempt.
pub const BACKOFF: &str = "backoff";
/// A reconnect attempt failed.
pub const RECONNECT_FAILED: &str = "reconnect_failed";
/// Connected again after one or more failures in this send.
pub const RECONNECTED: &str = "reconnected";
/// The connection was lost after the whole message was written: it is sent again with the
/// same Message-ID and may arrive twice.
pub const RESEND: &str = "resend";
/// A message was accepted by the server.
pub const SENT: &str = "sent";
/// A permanent 5xx reply; the send fails at once.
pub const REJECTED: &str = "rejected";
/// A failure that is not retried and is not a reply (TLS, protocol, configuration).
pub const FAILED: &str = "failed";
/// The send gave up after the maximum number of reconnect attempts.
pub const GAVE_UP: &str = "gave_up";
/// `close` finished (QUIT sent on every open connection).
pub const CLOSED: &str = "closed";
/// A `421` to a new connection while the pool had others alive: the pool allows one
/// connection fewer and the send waits for one.
pub const POOL_SHRUNK: &str = "pool_shrunk";
/// After a cool-down the pool allows one connection more again.
pub const POOL_GROWN: &str = "pool_grown";
/// Connections unused for the idle limit were closed with QUIT.
pub const IDLE_CLOSED: &str = "idle_closed";
/// Debug only: the envelope addresses of a send.
pub const ENVELOPE: &str = "envelope";
/// [`crate::DryRunMailer`]: what would have been sent.
pub const DRY_RUN: &str = "dry_run";

/// Every event name above, for tests that check a log line names a known event.
pub const ALL: &[&str] = &[
    CONNECT,
    CONNECTED,
    SMTP_421,
    EOF,
    CONNECTION_LOST,
    DEFERRED,
    BACKOFF,
    RECONNECT_FAILED,
    RECONNECTED,
    RESEND,
    SENT,
    REJECTED,
    FAILED,
    GAVE_UP,
    CLOSED,
    POOL_SHRUNK,
    POOL_GROWN,
    IDLE_CLOSED,
    ENVELOPE,
    DRY_RUN,
];
