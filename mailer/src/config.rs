//! [`Config`]: where to send, how to secure and authenticate, and how patiently to retry.

use std::fmt;
use std::time::Duration;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tls {
    /// Plain text: an explicit choice, only sensible on loopback or inside a trusted network.
    /// AUTH over plain text is refused unless the host is loopback.
    None,
    /// Plain connect, then `STARTTLS` before anything else; a server that does not offer it is
    /// an error (never a silent downgrade to plain text). The default.
    #[default]
    StartTls,
    /// TLS from the first byte ("SMTPS", usually port 465).
    Implicit,
}

impl Tls {
    /// The name used in log lines and flags: `none`, `starttls`, `implicit`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tls::None => "none",
            Tls::StartTls => "starttls",
            Tls::Implicit => "implicit",
        }
    }
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tls {
    type Err = String;

    /// Parses `none`, `starttls` or `implicit` (any case).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "plain" => Ok(Tls::None),
            "starttls" => Ok(Tls::StartTls),
            "implicit" | "tls" | "smtps" => Ok(Tls::Implicit),
            _ => Err(format!("unknown TLS mode {s:?} (expected none, starttls or implicit)")),
        }
    }
}

/// AUTH credentials. `Debug` never shows the password, so a `Config` can be printed safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password; never logged or printed.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything an [`crate::SmtpMailer`] needs. Build with [`Config::new`] and the `with_*`
/// methods; the defaults follow DESIGN.md (STARTTLS required, one connection, no rate limit).
///
/// ```
/// use std::time::Duration;
/// let config = mailer::Config::new("smtp.example.com", 587, "noreply@example.com")
///     .with_credentials("noreply", "secret")
///     .with_max_connections(4)
///     .with_rate(14, Duration::from_secs(1))
///     .with_retry_base(Duration::from_millis(50))
///     .with_max_attempts(5);
/// assert_eq!(config.server(), "smtp.example.com:587");
/// assert_eq!(config.tls, mailer::Tls::StartTls);
/// assert!(config.validate().is_ok());
/// // Credentials in plain text to a remote host: refused before any I/O.
/// assert!(config.with_tls(mailer::Tls::None).validate().is_err());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Server host name or IP address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// How the connection is secured. Default [`Tls::StartTls`].
    pub tls: Tls,
    /// PEM root certificates to trust *instead of* the system store (for private CAs and
    /// tests). Certificate verification is always on.
    pub root_ca_pem: Option<Vec<u8>>,
    /// The name the server certificate must match; default: `host`.
    pub tls_server_name: Option<String>,
    /// AUTH PLAIN / LOGIN credentials, if any.
    pub credentials: Option<Credentials>,
    /// The envelope and header sender: `addr@example.com` or `Name <addr@example.com>`.
    pub from: String,
    /// The EHLO name; default: this machine's host name.
    pub helo_name: Option<String>,
    /// Backoff base: the delay before the second reconnect of one send. Default 1 s.
    pub retry_base: Duration,
    /// Backoff ceiling. Default 5 min.
    pub retry_max: Duration,
    /// Reconnect attempts per send before giving up. Default 10. A send makes at most
    /// `1 + max_attempts` tries; [`crate::Error::GaveUp`] reports the tries made.
    pub max_attempts: u32,
    /// Limit on TCP connect plus implicit TLS handshake. Default 30 s.
    pub connect_timeout: Duration,
    /// Limit on every SMTP exchange (greeting+EHLO, STARTTLS, AUTH, each command, and writing
    /// the whole message plus waiting for the reply to its final dot). Default 60 s. A
    /// connection whose exchange timed out is never reused.
    pub command_timeout: Duration,
    /// A connection unused this long is closed with QUIT (freeing the server's slot) and
    /// never reused. Default 30 s.
    pub idle_limit: Duration,
    /// How many connections concurrent sends may share. Default 1.
    pub max_connections: usize,
    /// At most `n` transactions at once, then `n` per `per` (a token bucket shared by the
    /// pool), if set. Default none.
    pub rate: Option<(u32, Duration)>,
    /// Send MAIL, RCPT and DATA in one write when the server offers PIPELINING (RFC 2920):
    /// two round trips per message instead of 3 + recipients. Default on.
    pub pipelining: bool,
}

impl Config {
    /// A configuration for `host:port` sending as `from`: STARTTLS required, default limits.
    pub fn new(host: impl Into<String>, port: u16, from: impl Into<String>) -> Self {
        Config {
            host: host.into(),
            port,
            tls: Tls::StartTls,
            root_ca_pem: None,
            tls_server_name: None,
            credentials: None,
            from: from.into(),
            helo_name: None,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            max_attempts: 10,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(60),
            idle_limit: Duration::from_secs(30),
            max_connections: 1,
            rate: None,
            pipelining: true,
        }
    }

    /// `host:port` as written in log lines (`server=`); IPv6 literals get brackets.
    pub fn server(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Sets the TLS mode.
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Trusts these PEM root certificates instead of the system store.
    pub fn with_root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_ca_pem = Some(pem.into());
        self
    }

    /// Verifies the server certificate against this name instead of the host.
    pub fn with_tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.tls_server_name = Some(name.into());
        self
    }

    /// Authenticates with AUTH PLAIN or LOGIN (whichever the server offers).
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials { user: user.into(), password: password.into() });
        self
    }

    /// Sets the EHLO name.
    pub fn with_helo_name(mut self, name: impl Into<String>) -> Self {
        self.helo_name = Some(name.into());
        self
    }

    /// Sets the backoff base.
    pub fn with_retry_base(mut self, base: Duration) -> Self {
        self.retry_base = base;
        self
    }

    /// Sets the backoff ceiling.
    pub fn with_retry_max(mut self, max: Duration) -> Self {
        self.retry_max = max;
        self
    }

    /// Sets how many reconnect attempts one send may make before giving up.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets the connect (and implicit TLS handshake) timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the timeout on every SMTP exchange.
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets how long a connection may stay unused before it is closed with QUIT.
    pub fn with_idle_limit(mut self, limit: Duration) -> Self {
        self.idle_limit = limit;
        self
    }

    /// Lets up to `n` concurrent sends each use their own connection (opened when needed).
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Limits sending to `n` transactions at once and `n` per `per` on average (a relay
    /// quota such as 14 per second); sends wait for their turn without holding a connection.
    pub fn with_rate(mut self, n: u32, per: Duration) -> Self {
        self.rate = Some((n, per));
        self
    }

    /// Uses PIPELINING when the server offers it (default), or always sends lock-step.
    pub fn with_pipelining(mut self, on: bool) -> Self {
        self.pipelining = on;
        self
    }

    /// Checks everything that can be checked without I/O: the from address, the HELO name, the
    /// host, the pool size and rate, that the root CA PEM holds at least one certificate, and
    /// that credentials never go over plain text to a host that is not loopback.
    pub fn validate(&self) -> Result<(), crate::Error> {
        crate::message::parse_mailbox(&self.from)?;
        if self.host.is_empty() || self.host.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(crate::Error::Config(format!("invalid host {:?}", self.host)));
        }
        if let Some(helo) = &self.helo_name
            && (helo.is_empty() || helo.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(crate::Error::Config(format!("invalid HELO name {helo:?}")));
        }
        if let Some(pem) = &self.root_ca_pem {
            crate::tls::parse_roots(pem)?;
        }
        if self.max_connections == 0 {
            return Err(crate::Error::Config("max_connections must be at least 1".into()));
        }
        if let Some((n, per)) = self.rate
            && (n == 0 || per.is_zero())
        {
            return Err(crate::Error::Config(format!(
                "rate {n} per {per:?} would never send (both must be above zero)"
            )));
        }
        if self.credentials.is_some() && self.tls == Tls::None && !is_loopback(&self.host) {
            return Err(crate::Error::Config(format!(
                "refusing to send AUTH credentials in plain text to {}: use Tls::StartTls or \
                 Tls::Implicit (plain-text AUTH is allowed only to loopback)",
                self.server()
            )));
        }
        Ok(())
    }
}

/// `localhost`, `*.localhost` (RFC 6761) or a loopback IP address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design() {
        let c = Config::new("mx.example.com", 25, "a@example.com");
        assert_eq!(c.retry_base, Duration::from_secs(1));
        assert_eq!(c.retry_max, Duration::from_secs(300));
        assert_eq!(c.max_attempts, 10);
        assert_eq!(c.tls, Tls::StartTls);
        assert_eq!(c.max_connections, 1);
        assert_eq!(c.rate, None);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn plain_text_auth_is_allowed_only_to_loopback() {
        let auth = |host: &str| {
            Config::new(host, 25, "a@example.com").with_tls(Tls::None).with_credentials("u", "p")
        };
        for host in ["127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost", "mx.LOCALHOST"] {
            assert!(auth(host).validate().is_ok(), "{host}");
        }
        for host in ["mx.example.com", "10.0.0.1", "192.168.1.1", "localhost.example.com"] {
            let err = auth(host).validate().unwrap_err();
            assert!(err.is_permanent() && err.to_string().contains("plain text"), "{host}: {err}");
        }
        assert!(auth("mx.example.com").with_tls(Tls::StartTls).validate().is_ok());
        let no_auth = Config::new("mx.example.com", 25, "a@example.com").with_tls(Tls::None);
        assert!(no_auth.validate().is_ok());
    }

    #[test]
    fn a_pool_of_zero_or_a_rate_of_zero_is_refused() {
        let c = Config::new("h", 25, "a@example.com");
        assert!(c.clone().with_max_connections(0).validate().is_err());
        assert!(c.clone().with_rate(0, Duration::from_secs(1)).validate().is_err());
        assert!(c.clone().with_rate(5, Duration::ZERO).validate().is_err());
        assert!(c.with_rate(14, Duration::from_secs(1)).with_max_connections(8).validate().is_ok());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Config::new("h", 25, "a@example.com").with_credentials("user", "s3cret-pw");
        let shown = format!("{c:?}");
        assert!(shown.contains("user"));
        assert!(!shown.contains("s3cret-pw"), "{shown}");
    }

    #[test]
    fn server_brackets_ipv6() {
        assert_eq!(Config::new("::1", 25, "a@b.c").server(), "[::1]:25");
        assert_eq!(Config::new("localhost", 25, "a@b.c").server(), "localhost:25");
    }

    #[test]
    fn validate_rejects_crlf_in_from_and_helo() {
        let bad_from = Config::new("h", 25, "Evil\r\nBcc: x@y.z <a@example.com>");
        assert!(bad_from.validate().unwrap_err().is_bad_address());
        let bad_helo = Config::new("h", 25, "a@example.com").with_helo_name("x\r\nMAIL FROM:<>");
        assert!(matches!(bad_helo.validate(), Err(crate::Error::Config(_))));
    }

    #[test]
    fn validate_rejects_a_pem_without_certificates() {
        let c = Config::new("h", 25, "a@example.com").with_root_ca_pem("not a pem");
        assert!(matches!(c.validate(), Err(crate::Error::Config(_))));
    }

    #[test]
    fn tls_parses_its_names() {
        assert_eq!("StartTLS".parse::<Tls>(), Ok(Tls::StartTls));
        assert_eq!("implicit".parse::<Tls>(), Ok(Tls::Implicit));
        assert!("ssl3".parse::<Tls>().is_err());
    }
}
