//! Command-line flags, and the parsers for the values clap cannot check by itself (durations,
//! `HOST:PORT`, TLS mode).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Mail one message to every address in a list, surviving server hiccups (421 replies, dropped
/// connections) with bounded exponential backoff.
///
/// Every input is read and validated before the first connection: a bad address stops the run
/// with its file and line number and nothing is sent (unless --skip-invalid). The body and the
/// subject may use {{email}}, and with a CSV recipients file any other column, as {{column}}.
#[derive(Debug, Parser)]
#[command(name = "notify-mailer", version, after_help = AFTER_HELP)]
pub struct Args {
    /// SMTP server to send through, as HOST:PORT (not needed with --dry-run).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_server, required_unless_present = "dry_run")]
    pub server: Option<Server>,

    /// Sender address: `user@example.com` or `Name <user@example.com>`.
    #[arg(long, value_name = "ADDR")]
    pub from: String,

    /// Subject line; may use {{email}} and CSV columns.
    #[arg(long, value_name = "TEXT")]
    pub subject: String,

    /// File holding the message body (UTF-8 text); may use {{email}} and CSV columns.
    #[arg(long, value_name = "FILE")]
    pub body: PathBuf,

    /// Recipients: one address per line (blank lines and `#` comments allowed), or a CSV file
    /// with a header row that has an `email` column.
    #[arg(long, value_name = "FILE")]
    pub recipients: PathBuf,

    /// Send to the valid addresses and report the invalid ones, instead of sending nothing.
    #[arg(long)]
    pub skip_invalid: bool,

    /// Connection security: none, starttls (upgrade after EHLO) or implicit (TLS from the first
    /// byte, usually port 465). Certificates are always verified.
    #[arg(long, value_enum, default_value_t = TlsMode::Starttls, value_name = "MODE")]
    pub tls: TlsMode,

    /// PEM file with the root CA certificate(s) to trust instead of the system store.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// User name for SMTP AUTH (needs --password-file).
    #[arg(long, value_name = "USER", requires = "password_file")]
    pub username: Option<String>,

    /// File holding the SMTP AUTH password (first line; never logged).
    #[arg(long, value_name = "FILE", requires = "username")]
    pub password_file: Option<PathBuf>,

    /// Name to announce in EHLO (default: this host's name).
    #[arg(long, value_name = "NAME")]
    pub helo_name: Option<String>,

    /// Log what would be sent, one line per message, and send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Pause between two messages on one connection, e.g. 500ms, 2s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub sleep: Duration,

    /// Number of SMTP connections sending at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: u32,

    /// First reconnect delay; doubles on each further attempt, with jitter.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub retry_base: Duration,

    /// Longest delay between two reconnect attempts.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub retry_max: Duration,

    /// Reconnect attempts per message (after its first try) before it is recorded as failed.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,

    /// Limit on opening a TCP connection (and the TLS handshake).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub connect_timeout: Duration,

    /// Limit on waiting for the reply to any one SMTP command.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub command_timeout: Duration,

    /// Where to write the addresses that failed, with the reason (CSV: email,reason)
    /// [default: RECIPIENTS.failed.csv].
    #[arg(long, value_name = "FILE")]
    pub failures_file: Option<PathBuf>,

    /// Where to write the addresses not yet sent when the run stops early (Ctrl-C, refused
    /// credentials): one per line, usable as --recipients [default: RECIPIENTS.resume].
    #[arg(long, value_name = "FILE")]
    pub resume_file: Option<PathBuf>,

    /// How often to log a progress line when stderr is not a terminal (on a terminal, a
    /// progress bar shows instead); at most 24h.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval, default_value = "5s")]
    pub progress_interval: Duration,

    /// Least severe level written: err, warning, info or debug.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: logger::Level,

    /// Also log to syslog: unix:PATH, udp:HOST:PORT or tcp:HOST:PORT.
    #[arg(long, value_name = "TARGET")]
    pub syslog: Option<logger::SyslogTarget>,
}

const AFTER_HELP: &str = "\
Progress: a progress bar when stderr is a terminal, otherwise a progress log line every
--progress-interval.
Ctrl-C (or SIGTERM): stops after the messages in flight, prints the summary and writes the
addresses not yet sent to the resume file; a second Ctrl-C abandons the messages in flight too.
A server that refuses the credentials (5xx to AUTH) stops the run the same way: every further
message would be refused too, and repeated failed logins can lock the account.

Exit status: 0 every message was sent; 1 some messages failed (see the failures file);
2 bad flags or bad input (nothing was sent); 130 interrupted by Ctrl-C or SIGTERM (see the
resume file).

Example:
  notify-mailer --server smtp.example.com:587 --from ops@example.com \\
    --subject 'Maintenance tonight' --body notice.txt --recipients customers.csv \\
    --username ops --password-file ~/.smtp-password --parallel 4 --sleep 100ms";

/// How to secure the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsMode {
    /// Plain text (loopback test servers only, please).
    None,
    /// STARTTLS after EHLO; fail if the server does not offer it.
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

/// A server address as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Host name or IP address (brackets removed from IPv6 literals).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `HOST:PORT`, `[IPV6]:PORT`.
pub fn parse_server(s: &str) -> Result<Server, String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| {
        format!("{s:?} has no port: expected HOST:PORT, e.g. smtp.example.com:587")
    })?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(format!("{s:?} has no host: expected HOST:PORT"));
    }
    if host.contains(':') && !s.starts_with('[') {
        return Err(format!("{s:?}: write an IPv6 address in brackets, e.g. [::1]:25"));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(format!("{s:?}: the host name holds a character no host name has"));
    }
    let port: u16 =
        port.parse().map_err(|_| format!("{s:?}: the port must be a number from 1 to 65535"))?;
    if port == 0 {
        return Err(format!("{s:?}: the port must be a number from 1 to 65535"));
    }
    Ok(Server { host: host.to_owned(), port })
}

/// The longest interval [`parse_interval`] takes: a day is "rarely" enough, and a timer that
/// far ahead can never overflow the clock (`--progress-interval 500000000000y` once panicked).
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// A duration that must not be zero (a timer firing constantly) and at most a day.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        Duration::ZERO => Err("the interval must be longer than zero".into()),
        d if d > MAX_INTERVAL => Err(format!("{s:?}: the interval must be at most 24h")),
        d => Ok(d),
    }
}

/// Parses a duration written `500ms`, `2s`, `5m`, `1h 30m`; a bare `0` means zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}): write e.g. 500ms, 2s or 5m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_documented_forms() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn intervals_are_never_zero() {
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
        assert!(parse_interval("0s").is_err());
        assert_eq!(parse_interval("24h"), Ok(MAX_INTERVAL));
        assert!(parse_interval("500000000000y").unwrap_err().contains("at most 24h"));
    }

    #[test]
    fn durations_without_a_unit_or_garbage_are_refused() {
        for bad in ["5", "", "fast", "-1s", "2 parsecs"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("500ms"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn servers_with_host_and_port() {
        assert_eq!(
            parse_server("smtp.example.com:587"),
            Ok(Server { host: "smtp.example.com".into(), port: 587 })
        );
        assert_eq!(parse_server("127.0.0.1:25").unwrap().to_string(), "127.0.0.1:25");
        let v6 = parse_server("[::1]:2525").unwrap();
        assert_eq!(v6, Server { host: "::1".into(), port: 2525 });
        assert_eq!(v6.to_string(), "[::1]:2525");
    }

    #[test]
    fn servers_missing_parts_are_refused() {
        for bad in ["smtp.example.com", ":25", "host:", "host:0", "host:99999", "::1:25", "a b:25"]
        {
            assert!(parse_server(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn flags_parse_with_defaults() {
        let args = Args::try_parse_from([
            "notify-mailer",
            "--server",
            "127.0.0.1:2525",
            "--from",
            "ops@example.com",
            "--subject",
            "hello",
            "--body",
            "body.txt",
            "--recipients",
            "list.txt",
        ])
        .unwrap();
        assert_eq!(args.tls, TlsMode::Starttls);
        assert_eq!(args.parallel, 1);
        assert_eq!(args.max_attempts, 10);
        assert_eq!(args.retry_base, Duration::from_secs(1));
        assert_eq!(args.retry_max, Duration::from_secs(300));
        assert_eq!(args.sleep, Duration::ZERO);
        assert_eq!(args.log_level, logger::Level::Info);
    }

    #[test]
    fn server_is_optional_only_for_a_dry_run() {
        let base = ["notify-mailer", "--from", "a@b.c", "--subject", "s", "--body", "b"];
        let mut without = base.to_vec();
        without.extend(["--recipients", "r"]);
        assert!(Args::try_parse_from(&without).is_err());
        without.push("--dry-run");
        assert!(Args::try_parse_from(&without).is_ok());
    }

    #[test]
    fn username_needs_a_password_file() {
        let args = [
            "notify-mailer",
            "--dry-run",
            "--from",
            "a@b.c",
            "--subject",
            "s",
            "--body",
            "b",
            "--recipients",
            "r",
            "--username",
            "u",
        ];
        assert!(Args::try_parse_from(args).is_err());
    }

    #[test]
    fn syslog_targets_are_checked_by_the_parser() {
        let base = [
            "notify-mailer",
            "--dry-run",
            "--from",
            "a@b.c",
            "--subject",
            "s",
            "--body",
            "b",
            "--recipients",
            "r",
            "--syslog",
        ];
        let ok = [&base[..], &["udp:127.0.0.1:514"]].concat();
        assert!(Args::try_parse_from(ok).unwrap().syslog.is_some());
        let bad = [&base[..], &["syslog.example.com"]].concat();
        assert!(Args::try_parse_from(bad).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
