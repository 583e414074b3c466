//! [`Options`]: everything a server is started with, with builder-style `with_*` setters.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::data::BareLf;
use crate::fault::{FaultMode, Stage};
use crate::http::HttpLimits;
use crate::tls::TlsOptions;

/// Server settings. `Default` is what tests want: loopback port 0 for SMTP and HTTP, no
/// faults, no TLS, no AUTH, quiet.
#[derive(Clone)]
pub struct Options {
    /// SMTP listen address (default `127.0.0.1:0`; a fixed port lets a test restart on it).
    pub smtp_addr: SocketAddr,
    /// HTTP API listen address (default `Some(127.0.0.1:0)`); `None` starts no HTTP listener.
    pub http_addr: Option<SocketAddr>,
    /// Host name in the greeting and replies (default `mail-test-srv.test`).
    pub hostname: String,
    /// Fault probability in percent (0 to 100) at [`Options::fault_stage`].
    pub close_chance: f64,
    /// The first this-many connections fault at the stage for certain.
    pub close_first: u64,
    /// RNG seed for reproducible faults (`None`: seeded from the OS).
    pub seed: Option<u64>,
    /// Where faults happen (default MAIL).
    pub fault_stage: Stage,
    /// How faults look (default mixed: half clean close, half 421).
    pub fault_mode: FaultMode,
    /// The reply code of [`FaultMode::Reject`] (400 to 599, default 451).
    pub reject_code: u16,
    /// Every reply at the fault stage is held back this long (default none).
    pub fault_delay: Duration,
    /// TLS: none, STARTTLS or implicit.
    pub tls: TlsOptions,
    /// `AUTH PLAIN LOGIN` credentials; when set, MAIL needs a successful AUTH.
    pub auth: Option<(String, String)>,
    /// Largest message in bytes (default 10 MiB); bigger ones get `552`.
    pub max_message_size: usize,
    /// Memory for messages being received, all connections together (default 64 MiB, and at
    /// least `max_message_size`). Each connection holds its first 64 KiB of content outside
    /// it; a message that needs more than is left gets `452 4.3.1` after its final dot, and
    /// `/stats` counts it in `rejected_memory`. This bounds what many clients sending big
    /// messages at once can take.
    pub max_in_flight_bytes: usize,
    /// What a bare LF (or bare CR) from a client does; either way only `CRLF.CRLF` ends DATA.
    pub bare_lf: BareLf,
    /// Concurrent SMTP connections (default 1,000); more get `421` and are closed.
    pub max_connections: usize,
    /// Messages kept (default 100,000); past it messages get `452` and `/stats` says so.
    pub max_messages: usize,
    /// A connection idle longer than this is closed with `421` (default 5 minutes).
    pub idle_timeout: Duration,
    /// Where the server logs its events; `None` is quiet.
    pub logger: Option<Arc<dyn logger::Logger>>,
    /// HTTP connection limits: header/idle timeout, connection cap.
    pub http_limits: HttpLimits,
}

impl Default for Options {
    fn default() -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Options {
            smtp_addr: loopback,
            http_addr: Some(loopback),
            hostname: "mail-test-srv.test".to_owned(),
            close_chance: 0.0,
            close_first: 0,
            seed: None,
            fault_stage: Stage::Mail,
            fault_mode: FaultMode::Mixed,
            reject_code: crate::fault::DEFAULT_REJECT_CODE,
            fault_delay: Duration::ZERO,
            tls: TlsOptions::None,
            auth: None,
            max_message_size: 10 * 1024 * 1024,
            max_in_flight_bytes: 64 * 1024 * 1024,
            bare_lf: BareLf::Normalize,
            max_connections: 1000,
            max_messages: 100_000,
            idle_timeout: Duration::from_secs(300),
            logger: None,
            http_limits: HttpLimits::default(),
        }
    }
}

impl fmt::Debug for Options {
    // By hand: the password must never be printed, and a logger has no Debug.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("smtp_addr", &self.smtp_addr)
            .field("http_addr", &self.http_addr)
            .field("hostname", &self.hostname)
            .field("close_chance", &self.close_chance)
            .field("close_first", &self.close_first)
            .field("seed", &self.seed)
            .field("fault_stage", &self.fault_stage)
            .field("fault_mode", &self.fault_mode)
            .field("reject_code", &self.reject_code)
            .field("fault_delay", &self.fault_delay)
            .field("tls", &self.tls_name())
            .field("auth_user", &self.auth.as_ref().map(|(u, _)| u))
            .field("max_message_size", &self.max_message_size)
            .field("max_in_flight_bytes", &self.max_in_flight_bytes)
            .field("bare_lf", &self.bare_lf)
            .field("max_connections", &self.max_connections)
            .field("max_messages", &self.max_messages)
            .field("idle_timeout", &self.idle_timeout)
            .field("logger", &self.logger.is_some())
            .field("http_limits", &self.http_limits)
            .finish()
    }
}

impl Options {
    /// `none`, `starttls` or `implicit`.
    pub fn tls_name(&self) -> &'static str {
        match self.tls {
            TlsOptions::None => "none",
            TlsOptions::StartTls(_) => "starttls",
            TlsOptions::Implicit(_) => "implicit",
        }
    }

    /// Sets the SMTP listen address.
    pub fn with_smtp_addr(mut self, addr: SocketAddr) -> Self {
        self.smtp_addr = addr;
        self
    }

    /// Sets (or, with `None`, disables) the HTTP listen address.
    pub fn with_http_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.http_addr = addr;
        self
    }

    /// Sets the host name.
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = hostname.into();
        self
    }

    /// Sets the fault chance in percent.
    pub fn with_close_chance(mut self, percent: f64) -> Self {
        self.close_chance = percent;
        self
    }

    /// Faults the first `n` connections.
    pub fn with_close_first(mut self, n: u64) -> Self {
        self.close_first = n;
        self
    }

    /// Seeds the fault RNG.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the stage that faults.
    pub fn with_fault_stage(mut self, stage: Stage) -> Self {
        self.fault_stage = stage;
        self
    }

    /// Sets the fault mode.
    pub fn with_fault_mode(mut self, mode: FaultMode) -> Self {
        self.fault_mode = mode;
        self
    }

    /// Sets the reply code of [`FaultMode::Reject`].
    pub fn with_reject_code(mut self, code: u16) -> Self {
        self.reject_code = code;
        self
    }

    /// Holds back every reply at the fault stage for `delay`.
    pub fn with_fault_delay(mut self, delay: Duration) -> Self {
        self.fault_delay = delay;
        self
    }

    /// Sets the TLS mode.
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// Requires AUTH with these credentials.
    pub fn with_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// Sets the largest message size in bytes.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets the memory for messages being received, all connections together.
    pub fn with_max_in_flight_bytes(mut self, bytes: usize) -> Self {
        self.max_in_flight_bytes = bytes;
        self
    }

    /// Sets what a bare LF (or bare CR) from a client does.
    pub fn with_bare_lf(mut self, policy: BareLf) -> Self {
        self.bare_lf = policy;
        self
    }

    /// Sets the concurrent connection cap.
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets the stored message cap.
    pub fn with_max_messages(mut self, n: usize) -> Self {
        self.max_messages = n;
        self
    }

    /// Sets the idle timeout.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Logs the server's events to `logger`.
    pub fn with_logger(mut self, logger: Arc<dyn logger::Logger>) -> Self {
        self.logger = Some(logger);
        self
    }

    /// Sets the HTTP connection limits.
    pub fn with_http_limits(mut self, limits: HttpLimits) -> Self {
        self.http_limits = limits;
        self
    }
}
