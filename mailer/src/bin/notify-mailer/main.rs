//! `notify-mailer`: mail one message to every address in a list (see `--help`).
//!
//! The shape of a run: read and check every input (nothing connects before that), build the
//! logger and one mailer per connection, send with progress, then summarise, write the
//! failures and resume files, and exit with a status that says how it went.
//!
//! Layout:
//! - `args.rs`: the flags, and parsers for durations and `HOST:PORT`.
//! - `recipients.rs`: the recipients file (plain list or CSV), validated with line numbers.
//! - `template.rs`: `{{email}}`-style substitution in the subject and body.
//! - `input.rs`: loading and checking every input, reporting all problems at once.
//! - `run.rs`: the workers, the collector, and the two-stage Ctrl-C.
//! - `progress.rs`: the bar on a terminal, periodic lines elsewhere.
//! - `summary.rs`: the summary, the failures file and the resume file.

mod args;
mod input;
mod progress;
mod recipients;
mod run;
mod summary;
mod template;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use logger::{Fanout, Logger};
use mailer::{DryRunMailer, Mailer, SmtpMailer};

use crate::args::{Args, TlsMode};
use crate::input::Inputs;
use crate::progress::{Counters, Progress};
use crate::run::{Job, Outcome, Stop};
use crate::summary::{Reconnects, Summary};

fn main() -> ExitCode {
    let args = Args::parse();
    let inputs = match input::load(&args) {
        Ok(inputs) => inputs,
        Err(report) => {
            eprintln!("notify-mailer: {report}");
            return ExitCode::from(2);
        }
    };
    let config = match mailer_config(&args, &inputs) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("notify-mailer: {e}\nnothing was sent");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("notify-mailer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(send(args, inputs, config));
    ExitCode::from(code)
}

/// The mailer configuration from the flags (`None` for a dry run, which needs no server).
fn mailer_config(args: &Args, inputs: &Inputs) -> Result<Option<mailer::Config>, String> {
    let Some(server) = (!args.dry_run).then_some(args.server.as_ref()).flatten() else {
        return Ok(None);
    };
    let tls = match args.tls {
        TlsMode::None => mailer::Tls::None,
        TlsMode::Starttls => mailer::Tls::StartTls,
        TlsMode::Implicit => mailer::Tls::Implicit,
    };
    let mut config = mailer::Config::new(server.host.clone(), server.port, args.from.clone())
        .with_tls(tls)
        .with_retry_base(args.retry_base)
        .with_retry_max(args.retry_max)
        .with_max_attempts(args.max_attempts)
        .with_connect_timeout(args.connect_timeout)
        .with_command_timeout(args.command_timeout);
    if let Some(pem) = &inputs.ca_pem {
        config = config.with_root_ca_pem(pem.as_bytes().to_vec());
    }
    if let (Some(user), Some(password)) = (&args.username, &inputs.password) {
        config = config.with_credentials(user.clone(), password.clone());
    }
    if let Some(name) = &args.helo_name {
        config = config.with_helo_name(name.clone());
    }
    config.validate().map_err(|e| format!("invalid mail settings: {e}"))?;
    Ok(Some(config))
}

/// The logger: the short format on stdout (through the progress bar, so they do not garble
/// each other), plus syslog when asked for.
fn build_logger(args: &Args, progress: &Progress) -> Arc<dyn Logger> {
    let level = args.log_level;
    // The same colour rule as logger::Stdout::new: a terminal, and NO_COLOR unset or empty.
    let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let stdout = logger::Stdout::with_writer(progress.writer(), "notify-mailer", level)
        .with_colour(std::io::stdout().is_terminal() && !no_colour);
    let mut fanout = Fanout::new().with(Arc::new(stdout), level);
    if let Some(target) = &args.syslog {
        let mut config = logger::Config::new("notify-mailer");
        config.stdout_level = None;
        config.syslog = Some(target.clone());
        config.syslog_level = level;
        fanout = fanout.with(logger::new(config), level);
    }
    Arc::new(fanout)
}

async fn send(args: Args, inputs: Inputs, config: Option<mailer::Config>) -> u8 {
    let Inputs { list, subject, body, skipped_report, .. } = inputs;
    let total = list.recipients.len();
    if let Some(report) = &skipped_report {
        // Before the progress bar exists: it redraws stderr, so text written there while it
        // shows would be torn up.
        eprint!("{report}");
    }
    let counters = Arc::new(Counters::default());
    let terminal = std::io::stderr().is_terminal();
    let progress = Progress::new(total as u64, counters.clone(), terminal, args.progress_interval);
    let log = build_logger(&args, &progress);

    log_start(&*log, &args, config.as_ref(), total);
    if let Some(server) = args.server.as_ref().filter(|_| config.is_some())
        && args.tls == TlsMode::None
        && !is_loopback(&server.host)
    {
        logger::warning!(log, "--tls none: mail (and any password) crosses the network in plain text";
            event = "plaintext", server = server);
    }
    if skipped_report.is_some() {
        logger::warning!(log, "skipping {} invalid address(es) (--skip-invalid)", list.invalid.len();
            event = "skipped_invalid", count = list.invalid.len());
    }
    if !list.duplicates.is_empty() {
        logger::warning!(log, "skipping {} repeated address(es)", list.duplicates.len();
            event = "skipped_duplicates", count = list.duplicates.len(),
            first_line = list.duplicates[0].0);
    }

    // One mailer per connection: an SMTP connection carries one message at a time.
    let smtp: Vec<Arc<SmtpMailer>> = match &config {
        Some(config) => (0..args.parallel)
            .map(|_| Arc::new(SmtpMailer::new(config.clone(), log.clone())))
            .collect(),
        None => Vec::new(),
    };
    // What to close at the end: each distinct mailer once.
    let distinct: Vec<Arc<dyn Mailer>> = if config.is_some() {
        smtp.iter().map(|m| m.clone() as Arc<dyn Mailer>).collect()
    } else {
        vec![Arc::new(DryRunMailer::new(&args.from, log.clone()))]
    };
    let workers = distinct.iter().cycle().take(args.parallel as usize).cloned().collect();

    let stop = Stop::default();
    if let Err(e) = stop.on_signals(log.clone()) {
        // Without handlers a signal still stops the process, just without the resume file.
        logger::warning!(log, "cannot handle Ctrl-C: {e}"; event = "no_signal_handler");
    }
    let started = Instant::now();
    let job = Arc::new(Job { recipients: list.recipients, subject, body, sleep: args.sleep });
    let outcomes =
        run::run(job.clone(), workers, log.clone(), &progress, counters, stop.clone()).await;
    // After a second Ctrl-C the operator wants out now, not a polite QUIT that may wait for a
    // command timeout on a connection whose send was just abandoned: also when that second
    // Ctrl-C comes while the QUITs are under way.
    let close_all = async {
        for mailer in &distinct {
            mailer.close().await;
        }
    };
    tokio::select! {
        () = close_all => {}
        () = stop.abort.cancelled() => {}
    }
    progress.finish();

    let mut summary = Summary {
        recipients: total,
        invalid_skipped: if skipped_report.is_some() { list.invalid.len() } else { 0 },
        duplicates: list.duplicates.len(),
        elapsed: started.elapsed(),
        interrupted: stop.stop.is_cancelled(),
        credentials_refused: stop.refused.is_cancelled(),
        dry_run: config.is_none(),
        reconnects: config.is_some().then(|| reconnects(&smtp)),
        ..Summary::default()
    };
    let code = tally(&args, &job, &outcomes, &mut summary);
    log_summary(&*log, &summary);
    log.flush();
    // Not print!, which panics when stdout is gone (`notify-mailer ... | head`): the files
    // are written by now, and the exit status still has to say how the run went.
    let _ = write!(std::io::stdout(), "{summary}");
    code.max(summary.exit_code())
}

/// Counts the outcomes into `summary` and writes the failures and resume files. Returns 1 if
/// a file could not be written (its addresses then go to stderr, so none is lost), else 0.
fn tally(args: &Args, job: &Job, outcomes: &[Option<Outcome>], summary: &mut Summary) -> u8 {
    let mut failures = Vec::new();
    let mut abandoned = Vec::new();
    let mut unsent = Vec::new();
    for (recipient, outcome) in job.recipients.iter().zip(outcomes) {
        match outcome {
            Some(Outcome::Sent { possibly_duplicated }) => {
                summary.sent += 1;
                summary.possibly_duplicated += u64::from(*possibly_duplicated);
            }
            Some(Outcome::Failed(reason)) => {
                failures.push((recipient.email.clone(), reason.clone()))
            }
            Some(Outcome::Abandoned) => abandoned.push(recipient.email.as_str()),
            None => unsent.push(recipient.email.as_str()),
        }
    }
    summary.failed = failures.len() as u64;
    summary.abandoned = abandoned.len() as u64;
    summary.unsent = (abandoned.len() + unsent.len()) as u64;

    let mut code = 0;
    if !failures.is_empty() {
        let path = args
            .failures_file
            .clone()
            .unwrap_or_else(|| summary::beside(&args.recipients, "failed.csv"));
        match summary::write_failures(&path, &failures) {
            Ok(()) => summary.failures_file = Some(path),
            Err(e) => {
                eprintln!("notify-mailer: cannot write the failures file {}: {e}", path.display());
                eprintln!("notify-mailer: the failed addresses:");
                for (email, _) in &failures {
                    eprintln!("{email}");
                }
                code = 1;
            }
        }
    }
    if !unsent.is_empty() || !abandoned.is_empty() {
        let path =
            args.resume_file.clone().unwrap_or_else(|| summary::beside(&args.recipients, "resume"));
        match summary::write_resume(&path, &abandoned, &unsent) {
            Ok(()) => summary.resume_file = Some(path),
            Err(e) => {
                eprintln!("notify-mailer: cannot write the resume file {}: {e}", path.display());
                eprintln!("notify-mailer: the addresses not yet sent:");
                for email in abandoned.iter().chain(&unsent) {
                    eprintln!("{email}");
                }
                code = 1;
            }
        }
    }
    code
}

/// Whether `host` names this machine (where plain text is harmless).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Faults survived, summed over every connection.
fn reconnects(mailers: &[Arc<SmtpMailer>]) -> Reconnects {
    let mut r = Reconnects::default();
    for stats in mailers.iter().map(|m| m.stats()) {
        r.total += stats.reconnects;
        r.smtp_421 += stats.smtp_421;
        r.eof += stats.eof;
        r.reset += stats.reset;
        r.timeout += stats.timeout;
        r.refused += stats.refused;
        r.transient_4xx += stats.transient_4xx;
    }
    r
}

/// The one start-up line: version and effective configuration, no secrets.
fn log_start(log: &dyn Logger, args: &Args, config: Option<&mailer::Config>, total: usize) {
    let server = args.server.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
    let syslog = args.syslog.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
    logger::info!(log, "notify-mailer {} starting", env!("CARGO_PKG_VERSION");
        event = "start", version = env!("CARGO_PKG_VERSION"), server = server,
        tls = format_args!("{:?}", args.tls).to_string().to_ascii_lowercase(),
        auth = args.username.is_some(), from = args.from, recipients = total,
        parallel = args.parallel, dry_run = config.is_none(),
        sleep_ms = args.sleep.as_millis(), retry_base_ms = args.retry_base.as_millis(),
        retry_max_ms = args.retry_max.as_millis(), max_attempts = args.max_attempts,
        log_level = format_args!("{:?}", args.log_level).to_string().to_ascii_lowercase(),
        syslog = syslog);
}

fn log_summary(log: &dyn Logger, s: &Summary) {
    let r = s.reconnects.unwrap_or_default();
    let level =
        if s.failed > 0 || s.interrupted { logger::Level::Warning } else { logger::Level::Info };
    logger::log!(log, level, false, "summary: {} sent, {} failed, {} not sent", s.sent, s.failed, s.unsent;
        event = "summary", sent = s.sent, failed = s.failed, unsent = s.unsent,
        possibly_duplicated = s.possibly_duplicated, reconnects = r.total, smtp_421 = r.smtp_421,
        eof = r.eof, reset = r.reset, timeout = r.timeout, refused = r.refused,
        transient_4xx = r.transient_4xx, elapsed_ms = s.elapsed.as_millis(),
        interrupted = s.interrupted, dry_run = s.dry_run);
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.3.2.1", "::1"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["smtp.example.com", "10.0.0.1", "localhost.example.com", "::2"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
