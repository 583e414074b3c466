//! Command-line flags, and the parsers for the values clap cannot check by itself (durations,
//! `HOST:PORT`, rates, headers).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

/// Mail one message to every address in a list, surviving server hiccups (421 replies, dropped
/// connections) with bounded exponential backoff, and crashes with a journal.
///
/// Every input is read and validated before the first connection: a bad address stops the run
/// with its file and line number and nothing is sent (unless --skip-invalid). The subject,
/// bodies and --header values may use {{email}}, and with a CSV recipients file any other
/// column, as {{column}}.
#[derive(Debug, Parser)]
#[command(name = "notify-mailer", version, after_help = AFTER_HELP)]
pub struct Args {
    /// SMTP server to send through, as HOST:PORT (not needed with --dry-run or --check).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_server,
          required_unless_present_any = ["dry_run", "check"])]
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

    /// File holding an HTML version of the body, sent as an alternative to the text (values
    /// substituted into it are HTML-escaped).
    #[arg(long, value_name = "FILE")]
    pub html_body: Option<PathBuf>,

    /// An extra header, `Name: value`; repeatable; the value may use {{email}} and CSV
    /// columns, e.g. 'List-Unsubscribe: <https://example.com/u/{{email}}>'.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<HeaderArg>,

    /// Recipients: one address per line (blank lines and `#` comments allowed), or a CSV file
    /// with a header row that has an `email` column (quoted fields may span lines; `#` starts
    /// a comment only at the start of a record).
    #[arg(long, value_name = "FILE")]
    pub recipients: PathBuf,

    /// Send to the valid addresses and report the invalid ones, instead of sending nothing.
    #[arg(long)]
    pub skip_invalid: bool,

    /// Connection security: none, starttls (upgrade after EHLO) or implicit (TLS from the first
    /// byte, usually port 465). Certificates are always verified.
    #[arg(long, value_name = "MODE", default_value = "starttls", value_parser = parse_tls)]
    pub tls: mailer::Tls,

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

    /// Check every input, say how many messages a run would send, and stop: no connection,
    /// no journal.
    #[arg(long, conflicts_with = "dry_run")]
    pub check: bool,

    /// Log what would be sent, one line per message, and send nothing (reads the journal, if
    /// there is one, to skip what is recorded as sent; writes none).
    #[arg(long)]
    pub dry_run: bool,

    /// Pause between two messages of one sender, e.g. 500ms, 2s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub sleep: Duration,

    /// At most N messages per DURATION over all connections, e.g. 14/s, 100/m, 5/10s (a relay's
    /// quota).
    #[arg(long, value_name = "N/DURATION", value_parser = parse_rate)]
    pub rate: Option<Rate>,

    /// Number of messages sent at once, each over its own connection. A server that allows
    /// fewer connections gets fewer; every message still goes.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: u32,

    /// First reconnect delay; doubles on each further attempt, with jitter.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub retry_base: Duration,

    /// Longest delay between two reconnect attempts.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub retry_max: Duration,

    /// Reconnect attempts per message (after its first try) before it is given up.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,

    /// Limit on opening a TCP connection (and the TLS handshake).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub connect_timeout: Duration,

    /// Stop the run (the circuit opens) when no connection has succeeded and no message was
    /// accepted for this long while at least 3 connection attempts failed: the server looks
    /// down [default: 2m, or 5 times --connect-timeout if longer].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub circuit_after: Option<Duration>,

    /// Limit on waiting for the reply to any one SMTP command; also how long a stop waits for
    /// the messages on the wire.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub command_timeout: Duration,

    /// The journal: every recipient's outcome, appended as it happens, so that rerunning the
    /// same command resumes [default: RECIPIENTS.journal].
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Start the campaign over: move an existing journal aside (renamed JOURNAL.UTC-TIME) and send to
    /// everyone.
    #[arg(long)]
    pub fresh: bool,

    /// Keep no journal: a rerun after a crash sends everything again. For test runs and for
    /// measuring what the journal costs.
    #[arg(long, conflicts_with_all = ["journal", "fresh"])]
    pub no_journal: bool,

    /// Where to write the rows that failed, every column kept plus `failure_reason`
    /// [default: RECIPIENTS.failed.csv].
    #[arg(long, value_name = "FILE")]
    pub failures_file: Option<PathBuf>,

    /// Where to write the rows not sent when the run stops early, every column kept (usable
    /// as --recipients) [default: RECIPIENTS.resume].
    #[arg(long, value_name = "FILE")]
    pub resume_file: Option<PathBuf>,

    /// How often to log a progress line when stderr is not a terminal (on a terminal, a
    /// progress bar shows instead); at most 24h.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval, default_value = "5s")]
    pub progress_interval: Duration,

    /// Least severe level written: err, warning, info or debug.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: logger::Level,

    /// The stdout log line format: short (`HH:MM:SS.ffffff 6 notify-mailer message key=value`)
    /// or json (one object per line, for a log collector; the summary text then goes to
    /// stderr, so stdout holds nothing but JSON lines).
    #[arg(long, value_name = "FORMAT", default_value = "short")]
    pub log_format: logger::StdoutFormat,

    /// Put Boulder's line checksum (`<checksum> <message>`, six characters) on every text log
    /// line, on stdout in the short format and on syslog, so `log-validator` can tell a line
    /// that was cut or altered on its way (JSON lines carry none).
    #[arg(long)]
    pub log_checksum: bool,

    /// Also log to syslog: unix:PATH, udp:HOST:PORT, tcp:HOST:PORT, or tls:HOST:PORT (RFC 5425,
    /// the daemon's certificate checked against the system's roots or --syslog-ca).
    #[arg(long, value_name = "TARGET")]
    pub syslog: Option<logger::SyslogTarget>,

    /// PEM file with the CA certificate(s) that sign the syslog daemon's certificate, for
    /// --syslog tls:HOST:PORT, instead of the system's roots.
    #[arg(long, value_name = "FILE", requires = "syslog")]
    pub syslog_ca: Option<PathBuf>,
}

impl Args {
    /// The journal's path (`None` with --no-journal).
    pub fn journal_path(&self) -> Option<PathBuf> {
        if self.no_journal {
            return None;
        }
        Some(self.journal.clone().unwrap_or_else(|| beside(&self.recipients, "journal")))
    }

    /// How long everything may fail before the circuit opens.
    pub fn circuit_window(&self) -> Duration {
        self.circuit_after.unwrap_or_else(|| crate::circuit::default_window(self.connect_timeout))
    }

    /// The failures file's path.
    pub fn failures_path(&self) -> PathBuf {
        self.failures_file.clone().unwrap_or_else(|| beside(&self.recipients, "failed.csv"))
    }

    /// The resume file's path.
    pub fn resume_path(&self) -> PathBuf {
        self.resume_file.clone().unwrap_or_else(|| beside(&self.recipients, "resume"))
    }
}

/// The default path of a file written next to the recipients file: `RECIPIENTS.<suffix>`.
pub fn beside(recipients: &Path, suffix: &str) -> PathBuf {
    let mut name = recipients.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

const AFTER_HELP: &str = "\
Journal and resume: every recipient's outcome is appended to the journal (RECIPIENTS.journal)
before the run moves on. Rerunning the same command after a crash, a kill or a stop sends only
what the journal does not record as sent (event=resumed says how many it skipped); rerunning a
finished campaign sends nothing. Messages in flight when a run died (attempted, no outcome
recorded), and unconfirmed ones (a connection was lost after the final dot, so the server may
have them, and then the send failed or was stopped) are sent again, since a duplicate is better
than a loss: they are the only ones a rerun can send twice, and the resumed run's summary counts
them ('resent'). Resume one way: rerun
the same command, or send the resume file as a new list (with its own journal), not both. Another campaign (a different from
address, subject, body, header or recipients file) on the same journal is refused: use
--fresh or --journal.

Stopping: the first Ctrl-C or SIGTERM ends backoff waits at once, lets the messages already on
the wire finish (at most --command-timeout), records them, writes the rows not sent to the
resume file and exits 130. Signals within 1 s of the first count as the same request (timeout(1)
sends two). Another one after that abandons the messages in flight (they go to the resume file,
marked: the server may have them). A server that refuses the credentials (5xx to AUTH) stops the
run the same way: every further message would be refused too, and repeated failed logins can
lock the account.

Circuit breaker: when the server looks down the run stops (event=circuit_open) instead of
spending every message's attempts: the rows not sent go to the resume file ('not attempted:
server unreachable') and the exit status is 1. It opens when no connection has succeeded and
no message was accepted for --circuit-after (default 2 min, or 5 times --connect-timeout if
that is longer) while at least 3 connection attempts failed (refused, timed out, or dropped or
answered 421 before the session was ready), counted over all the connections; or sooner, when
a message gives up on connecting while nothing else got through. Any connection that succeeds
or message the server accepts starts the count over, so a server that is merely flaky, or
restarts for less than that time, keeps it closed. With the defaults a server that refuses
connections stops the run about 2 minutes after it went away; one that accepts connections
but never answers takes up to a --command-timeout (60 s) longer per attempt.

Summary (one definition each; the connection numbers are the mailer's own counters):
  recipients     distinct valid addresses in the recipients file
  skipped        recorded as sent in the journal by an earlier run: not sent again
  sent           accepted by the server in this run; 'possibly delivered twice after a fault':
                 of those, sent again after the connection was lost after the final dot
  resent         sent in this run although an earlier run did not know whether it arrived (in
                 flight when that run ended, or unconfirmed): possibly delivered twice (the
                 only duplicates a crash or a rerun can cause)
  failed         refused for good or given up in this run: see the failures file ('may have
                 been delivered': a connection was lost after the final dot, so the server
                 may have it; marked in the failures file, 'U' in the journal)
  not sent       neither: never started, stopped, or the server was unreachable: see the
                 resume file ('abandoned in flight' and 'unconfirmed': the server may have
                 them; marked in the resume file)
  connections    connections opened, and connection attempts that failed
  reconnects     connections opened for a send that had already failed once
  faults         failures by kind (421 replies, closed, reset, timeout, refused, other 4xx,
                 5xx), each counted once

Exit status: 0 every message was sent; 1 some messages failed, or the server was unreachable
(see the failures and resume files); 2 bad flags or bad input (nothing was sent); 130
interrupted by Ctrl-C or SIGTERM (see the resume file).

Example:
  notify-mailer --server smtp.example.com:587 --from ops@example.com \\
    --subject 'Maintenance tonight' --body notice.txt --recipients customers.csv \\
    --header 'List-Unsubscribe: <https://example.com/unsubscribe/{{email}}>' \\
    --username ops --password-file ~/.smtp-password --parallel 4 --rate 14/s";

/// An extra header from `--header`: its name, and its value template (not yet parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderArg {
    /// The field name, as written.
    pub name: String,
    /// The value, trimmed; may hold `{{variables}}`.
    pub value: String,
}

/// Headers the mailer writes itself, which `--header` must not duplicate.
const OWN_HEADERS: &[(&str, &str)] = &[
    ("from", "--from"),
    ("to", "the recipients file"),
    ("subject", "--subject"),
    ("date", "the mailer"),
    ("message-id", "the mailer"),
    ("mime-version", "the mailer"),
    ("content-type", "--body and --html-body"),
    ("content-transfer-encoding", "the mailer"),
];

/// Parses `Name: value`: the name is printable ASCII without a colon or space (RFC 5322), and
/// neither may hold a line break.
pub fn parse_header(s: &str) -> Result<HeaderArg, String> {
    let (name, value) =
        s.split_once(':').ok_or_else(|| format!("{s:?}: write a header as 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(format!("{name:?} is not a header name (letters, digits and dashes)"));
    }
    if let Some((_, flag)) = OWN_HEADERS.iter().find(|(own, _)| name.eq_ignore_ascii_case(own)) {
        return Err(format!("{name} is set by {flag}, not by --header"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("the value of {name} holds a line break or another control character"));
    }
    Ok(HeaderArg { name: name.to_owned(), value: value.trim().to_owned() })
}

/// A rate limit: `count` messages per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Messages.
    pub count: u32,
    /// Per this long.
    pub per: Duration,
}

/// Parses `N/DURATION`: `14/s`, `100/m`, `5/10s`, `1/500ms` (a unit alone means one of it).
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let bad = || format!("{s:?} is not a rate: write N/DURATION, e.g. 14/s, 100/m or 5/10s");
    let (count, per) = s.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let per = per.trim();
    let per = if per.starts_with(|c: char| c.is_ascii_alphabetic()) {
        parse_duration(&format!("1{per}"))
    } else {
        parse_duration(per)
    }
    .map_err(|_| bad())?;
    if count == 0 || per.is_zero() {
        return Err(format!("{s:?}: the rate must allow at least one message in a non-zero time"));
    }
    Ok(Rate { count, per })
}

/// Parses the `--tls` mode through the mailer's own names.
pub fn parse_tls(s: &str) -> Result<mailer::Tls, String> {
    s.parse()
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

    /// A dry run's required flags, then `extra`.
    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = ["notify-mailer", "--dry-run", "--from", "a@b.c", "--subject", "s", "--body"];
        Args::try_parse_from(base.iter().chain(&["b", "--recipients", "/d/list.csv"]).chain(extra))
    }

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
        assert_eq!(args.tls, mailer::Tls::StartTls);
        assert_eq!(args.parallel, 1);
        assert_eq!(args.max_attempts, 10);
        assert_eq!(args.retry_base, Duration::from_secs(1));
        assert_eq!(args.retry_max, Duration::from_secs(300));
        assert_eq!(args.sleep, Duration::ZERO);
        assert_eq!(args.log_level, logger::Level::Info);
        assert_eq!(args.circuit_after, None);
        assert_eq!(args.circuit_window(), Duration::from_secs(120));
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
        assert!(parse(&["--username", "u"]).is_err());
        assert!(parse(&["--username", "u", "--password-file", "pw"]).is_ok());
    }

    #[test]
    fn syslog_targets_are_checked_by_the_parser() {
        assert!(parse(&["--syslog", "udp:127.0.0.1:514"]).unwrap().syslog.is_some());
        assert!(parse(&["--syslog", "tls:127.0.0.1:6514"]).unwrap().syslog.is_some());
        assert!(parse(&["--syslog", "syslog.example.com"]).is_err());
        assert!(parse(&["--syslog-ca", "ca.pem"]).is_err(), "--syslog-ca without --syslog");
    }

    #[test]
    fn log_formats_and_the_checksum() {
        let args = parse(&[]).unwrap();
        assert_eq!((args.log_format, args.log_checksum), (logger::StdoutFormat::Short, false));
        let args = parse(&["--log-format", "json", "--log-checksum"]).unwrap();
        assert_eq!((args.log_format, args.log_checksum), (logger::StdoutFormat::Json, true));
        assert!(parse(&["--log-format", "xml"]).is_err());
    }

    #[test]
    fn rates_in_the_documented_forms() {
        let r = |count, ms| Ok(Rate { count, per: Duration::from_millis(ms) });
        assert_eq!(parse_rate("14/s"), r(14, 1000));
        assert_eq!(parse_rate("100/m"), r(100, 60_000));
        assert_eq!(parse_rate("5/10s"), r(5, 10_000));
        assert_eq!(parse_rate("1/500ms"), r(1, 500));
        for bad in ["14", "x/s", "0/s", "3/0s", "-1/s", "5/parsec"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn headers_are_checked_when_parsed() {
        let h = parse_header("List-Unsubscribe: <https://example.com/u/{{email}}>").unwrap();
        assert_eq!(h.name, "List-Unsubscribe");
        assert_eq!(h.value, "<https://example.com/u/{{email}}>");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header(": x").is_err());
        assert!(parse_header("X-Evil: a\r\nBcc: victim@example.com").is_err());
        assert!(parse_header("subject: again").unwrap_err().contains("--subject"));
    }

    #[test]
    fn tls_modes_are_the_mailers() {
        assert_eq!(parse(&["--tls", "implicit"]).unwrap().tls, mailer::Tls::Implicit);
        assert_eq!(parse(&["--tls", "none"]).unwrap().tls, mailer::Tls::None);
        assert!(parse(&["--tls", "ssl3"]).is_err());
    }

    #[test]
    fn journal_flags() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.journal_path(), Some(PathBuf::from("/d/list.csv.journal")));
        assert_eq!(args.resume_path(), PathBuf::from("/d/list.csv.resume"));
        assert_eq!(args.failures_path(), PathBuf::from("/d/list.csv.failed.csv"));
        assert_eq!(parse(&["--no-journal"]).unwrap().journal_path(), None);
        assert!(parse(&["--no-journal", "--fresh"]).is_err());
        assert!(parse(&["--check", "--dry-run"]).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
