//! `mail-test-srv`: parse flags, start the server, log one start-up line, run until SIGINT or
//! SIGTERM, then shut down gracefully (open sessions get `421`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mail_test_srv::{BareLf, FaultMode, HttpLimits, Options, Stage, TestServer, TlsOptions};

/// A fake SMTP server for tests: stores mail in memory, serves it over HTTP, injects faults.
#[derive(Debug, Parser)]
#[command(name = "mail-test-srv", version)]
struct Args {
    /// SMTP listen address.
    #[arg(long, default_value = "127.0.0.1:9380")]
    smtp: SocketAddr,
    /// HTTP API listen address.
    #[arg(long, default_value = "127.0.0.1:9381")]
    http: SocketAddr,
    /// Do not start the HTTP API.
    #[arg(long)]
    no_http: bool,
    /// Host name in the greeting and replies.
    #[arg(long, default_value = "mail-test-srv.test")]
    hostname: String,
    /// Fault probability in percent (0 to 100) at the fault stage.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    close_chance: f64,
    /// Fault the first N connections for certain.
    #[arg(long, default_value_t = 0)]
    close_first: u64,
    /// Seed for reproducible faults.
    #[arg(long)]
    seed: Option<u64>,
    /// Where faults happen: greeting, mail, rcpt, data, after_dot.
    #[arg(long, default_value = "mail")]
    fault_stage: Stage,
    /// How faults look: close, 421, mixed, reject (reply --reject-code, keep the session).
    #[arg(long, default_value = "mixed")]
    fault_mode: FaultMode,
    /// The reply code of --fault-mode reject (400 to 599).
    #[arg(long, default_value_t = 451, value_parser = clap::value_parser!(u16).range(400..=599))]
    reject_code: u16,
    /// Hold back every reply at the fault stage this long (e.g. 500ms, 30s).
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    fault_delay: Duration,
    /// Certificate chain (PEM) for TLS; with --key and without --starttls: implicit TLS.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) for --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Offer STARTTLS (with --cert/--key, or a generated self-signed certificate).
    #[arg(long)]
    starttls: bool,
    /// Implicit TLS with a generated self-signed certificate (when no --cert is given).
    #[arg(long, conflicts_with = "starttls")]
    implicit_tls: bool,
    /// Require AUTH PLAIN/LOGIN with these credentials (USER:PASS).
    #[arg(long, value_parser = parse_auth)]
    auth: Option<(String, String)>,
    /// Largest message in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    max_message_size: usize,
    /// Memory for messages being received, all connections together, in bytes (at least
    /// --max-message-size); past it messages get 452.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_in_flight_bytes: usize,
    /// A bare LF (or CR) from a client: normalize (a line end, stored as CRLF) or reject (550).
    /// Either way only CRLF.CRLF ends DATA.
    #[arg(long, default_value = "normalize")]
    bare_lf: BareLf,
    /// Concurrent SMTP connections.
    #[arg(long, default_value_t = 1000)]
    max_connections: usize,
    /// Messages kept in memory; past it, messages get 452.
    #[arg(long, default_value_t = 100_000)]
    max_messages: usize,
    /// Idle limit per connection, e.g. 30s, 5m, 1h.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    idle_timeout: Duration,
    /// HTTP: a request head (or body) must arrive whole within this time; also the idle limit
    /// of a kept-alive HTTP connection, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    http_timeout: Duration,
    /// HTTP connections served at once; more wait in the kernel's accept queue.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    http_max_connections: u64,
    /// Log level: err, warning, info, debug.
    #[arg(long, default_value = "info")]
    log_level: logger::Level,
    /// Log line format on stdout: short (`HH:MM:SS.ffffff 6 mail-test-srv message k=v`) or
    /// json (one object per line, for container log collectors).
    #[arg(long, default_value = "short")]
    log_format: logger::StdoutFormat,
    /// Prefix each short-format log line with Boulder's checksum, for log-validator.
    #[arg(long)]
    log_checksum: bool,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}

fn parse_auth(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok((u.to_owned(), p.to_owned())),
        // Never echo the value: it holds a password.
        _ => Err("expected USER:PASS".to_owned()),
    }
}

/// A duration as humantime writes it (`500ms`, `30s`, `5m`, `1h 30m`); a bare `0` is zero,
/// as in notify-mailer. Any other bare number is refused rather than guessed at.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} has no unit: add one, e.g. {s}s or {s}ms"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}): write e.g. 500ms, 30s or 5m"))
}

/// A duration that must not be zero: a zero idle timeout would drop every client at once.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        Duration::ZERO => Err(format!("{s:?}: the timeout must be longer than zero")),
        d => Ok(d),
    }
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn options(args: &Args, log: Arc<dyn logger::Logger>) -> Result<Options, String> {
    let pem = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
        _ => None,
    };
    let tls = if args.starttls {
        TlsOptions::StartTls(pem)
    } else if pem.is_some() || args.implicit_tls {
        TlsOptions::Implicit(pem)
    } else {
        TlsOptions::None
    };
    let mut o = Options::default()
        .with_smtp_addr(args.smtp)
        .with_http_addr((!args.no_http).then_some(args.http))
        .with_hostname(args.hostname.clone())
        .with_close_chance(args.close_chance)
        .with_close_first(args.close_first)
        .with_fault_stage(args.fault_stage)
        .with_fault_mode(args.fault_mode)
        .with_reject_code(args.reject_code)
        .with_fault_delay(args.fault_delay)
        .with_tls(tls)
        .with_max_message_size(args.max_message_size)
        .with_max_in_flight_bytes(args.max_in_flight_bytes)
        .with_bare_lf(args.bare_lf)
        .with_max_connections(args.max_connections)
        .with_max_messages(args.max_messages)
        .with_idle_timeout(args.idle_timeout)
        .with_http_limits(HttpLimits {
            header_timeout: args.http_timeout,
            max_connections: args.http_max_connections as usize,
        })
        .with_logger(log);
    o.seed = args.seed;
    o.auth = args.auth.clone();
    Ok(o)
}

/// One thread runs every session and the HTTP API, as smtp-sink runs on one event loop:
/// measured against `smtp-source -s 20`, a multi-threaded runtime spent 10-20 % more CPU per
/// message waking its second worker and stealing tasks, and was 15 % slower on two cores. CPU
/// heavy work (search, the indexer) runs on its own threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let log: Arc<dyn logger::Logger> = Arc::new(
        logger::Stdout::new("mail-test-srv", args.log_level)
            .with_format(args.log_format)
            .with_checksum(args.log_checksum),
    );
    let opts = match options(&args, Arc::clone(&log)) {
        Ok(o) => o,
        Err(e) => {
            logger::err!(log, "bad configuration: {}", e);
            return ExitCode::from(2);
        }
    };
    let signalled = match shutdown_signal() {
        Ok(signalled) => signalled,
        Err(e) => {
            logger::err!(log, "cannot listen for SIGTERM and SIGINT"; error = e);
            return ExitCode::FAILURE;
        }
    };
    let tls = opts.tls_name();
    let auth_user = opts.auth.as_ref().map_or("-", |(u, _)| u.as_str()).to_owned();
    let server = match TestServer::start(opts.clone()).await {
        Ok(s) => s,
        Err(e) => {
            logger::err!(log, "cannot start"; error = e, smtp = args.smtp);
            return ExitCode::FAILURE;
        }
    };
    let http = server.http_addr().map_or_else(|| "off".to_owned(), |a| a.to_string());
    logger::info!(log, "mail-test-srv {} started", env!("CARGO_PKG_VERSION");
        smtp = server.smtp_addr(), http = http, hostname = args.hostname, tls = tls,
        auth_user = auth_user, close_chance = args.close_chance, close_first = args.close_first,
        fault_stage = args.fault_stage, fault_mode = format!("{:?}", args.fault_mode),
        reject_code = args.reject_code, fault_delay_ms = args.fault_delay.as_millis(),
        seed = args.seed.map_or_else(|| "random".to_owned(), |s| s.to_string()),
        max_message_size = args.max_message_size, max_in_flight_bytes = args.max_in_flight_bytes,
        bare_lf = args.bare_lf, max_connections = args.max_connections,
        max_messages = args.max_messages, idle_timeout = humantime::format_duration(args.idle_timeout),
        log_format = args.log_format, log_checksum = args.log_checksum);
    signalled.await;
    let stats = server.stats();
    server.shutdown().await;
    logger::info!(log, "mail-test-srv stopped"; connections = stats.connections, messages = stats.messages,
        deliveries = stats.deliveries, faults_close = stats.faults_close, faults_421 = stats.faults_421);
    log.flush();
    ExitCode::SUCCESS
}

/// SIGTERM or SIGINT, listened for from the moment this is called: main calls it before the
/// listeners are bound, so a signal sent as soon as the server answers is never missed (the
/// default action would kill the process without its 421s and summary).
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_humantime_with_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5"), Err("\"5\" has no unit: add one, e.g. 5s or 5ms".into()));
        for bad in ["", "fast", "-1s", "2 parsecs", "999999999999999999999h"] {
            assert!(parse_duration(bad).unwrap_err().contains("is not a duration"), "{bad:?}");
        }
        assert!(parse_timeout("0s").unwrap_err().contains("longer than zero"));
        assert_eq!(parse_timeout("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn the_flags_reach_the_options() {
        let args = Args::try_parse_from([
            "mail-test-srv",
            "--bare-lf",
            "reject",
            "--idle-timeout",
            "1h",
            "--max-in-flight-bytes",
            "1000",
            "--http-timeout",
            "2s",
            "--http-max-connections",
            "3",
        ])
        .unwrap();
        let log: Arc<dyn logger::Logger> = Arc::new(logger::Mock::new());
        let o = options(&args, log).unwrap();
        assert_eq!(
            (o.bare_lf, o.idle_timeout, o.max_in_flight_bytes),
            (BareLf::Reject, Duration::from_secs(3600), 1000)
        );
        let limits = HttpLimits { header_timeout: Duration::from_secs(2), max_connections: 3 };
        assert_eq!(o.http_limits, limits);
        let defaults = options(
            &Args::try_parse_from(["mail-test-srv"]).unwrap(),
            Arc::new(logger::Mock::new()),
        )
        .unwrap();
        assert_eq!(
            defaults.http_limits,
            HttpLimits::default(),
            "the flags' defaults are the library's"
        );
        for bad in [["--http-max-connections", "0"], ["--http-timeout", "0s"]] {
            assert!(Args::try_parse_from(["mail-test-srv", bad[0], bad[1]]).is_err(), "{bad:?}");
        }
        let err = Args::try_parse_from(["mail-test-srv", "--bare-lf", "maybe"]).unwrap_err();
        assert!(err.to_string().contains("unknown bare-LF policy"), "{err}");
    }
}
