//! `notify-mailer`: mail one message to every address in a list (see `--help`).
//!
//! The shape of a run: read and check every input in one streaming pass (nothing connects
//! before that), open the journal (refusing another campaign's), send what the journal does
//! not record as sent through one pooled mailer with progress, then write the resume and
//! failures files, summarise, and exit with a status that says how it went.
//!
//! Layout:
//! - `args.rs`: the flags, and parsers for durations, `HOST:PORT`, rates and headers.
//! - `recipients.rs`: the recipients file (plain list or CSV), streamed and validated.
//! - `template.rs`: `{{column}}` substitution, bound to the file's columns.
//! - `message.rs`: the subject, bodies and headers of one recipient's message.
//! - `input.rs`: loading and checking every input, reporting all problems at once.
//! - `journal.rs`: the append-only journal that makes a rerun resume.
//! - `stop.rs`: stop requests and aborts: signals, the circuit breaker, refused credentials.
//! - `circuit.rs`: when the server looks down (the circuit breaker's rule over all connections).
//! - `run.rs`: the reader thread, the senders, the collector.
//! - `files.rs`: the resume and failures files.
//! - `progress.rs`: the bar on a terminal, periodic lines elsewhere.
//! - `summary.rs`: the summary and its log line.

mod args;
mod circuit;
mod files;
mod input;
mod journal;
mod message;
mod progress;
mod recipients;
mod run;
mod stop;
mod summary;
mod template;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use logger::{Fanout, Logger};
use mailer::{DryRunMailer, SmtpMailer};

use crate::args::Args;
use crate::input::Inputs;
use crate::journal::{Journal, Opened, Prior};
use crate::progress::{Counters, Progress};
use crate::run::{Plan, Sender};
use crate::stop::{Reason, Stop};
use crate::summary::Summary;

fn main() -> ExitCode {
    let args = Args::parse();
    let inputs = match input::load(&args) {
        Ok(inputs) => inputs,
        Err(report) => {
            eprintln!("notify-mailer: {report}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        return ExitCode::from(check(&args, &inputs));
    }
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

/// `--check`: what a run would do, from the inputs and the journal; nothing is written.
fn check(args: &Args, inputs: &Inputs) -> u8 {
    let c = &inputs.checked;
    let prior = match args.journal_path().filter(|_| !args.fresh) {
        Some(path) => match Journal::read(&path, inputs.campaign) {
            Ok(prior) => Some((path, prior)),
            Err(e) => {
                eprintln!("notify-mailer: {e}\nnothing was sent");
                return 2;
            }
        },
        None => None,
    };
    if let Some(report) = &inputs.skipped_report {
        eprint!("{report}");
    }
    let mut out = format!(
        "{}: {} recipients ({} invalid rows skipped, {} repeated addresses skipped)",
        inputs.recipients.path().display(),
        c.count,
        if args.skip_invalid { c.invalid_total } else { 0 },
        c.duplicates_total
    );
    if let Some((path, prior)) = prior.filter(|(_, p)| !p.is_empty()) {
        out.push_str(&format!(
            "; {} recorded as sent in {}: a run would send {}",
            prior.sent,
            path.display(),
            c.count - prior.sent
        ));
    }
    let _ = writeln!(std::io::stdout(), "{out}\nnothing was sent (--check)");
    0
}

/// The mailer configuration from the flags (`None` for a dry run, which needs no server).
fn mailer_config(args: &Args, inputs: &Inputs) -> Result<Option<mailer::Config>, String> {
    let Some(server) = (!args.dry_run).then_some(args.server.as_ref()).flatten() else {
        return Ok(None);
    };
    let mut config = mailer::Config::new(server.host.clone(), server.port, args.from.clone())
        .with_tls(args.tls)
        .with_retry_base(args.retry_base)
        .with_retry_max(args.retry_max)
        .with_max_attempts(args.max_attempts)
        .with_connect_timeout(args.connect_timeout)
        .with_command_timeout(args.command_timeout)
        .with_max_connections(args.parallel as usize);
    if let Some(rate) = args.rate {
        config = config.with_rate(rate.count, rate.per);
    }
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
        .with_format(args.log_format)
        .with_checksum(args.log_checksum)
        .with_colour(std::io::stdout().is_terminal() && !no_colour);
    let mut fanout = Fanout::new().with(Arc::new(stdout), level);
    if let Some(target) = &args.syslog {
        let mut config = logger::Config::new("notify-mailer");
        config.stdout_level = None;
        config.syslog = Some(target.clone());
        config.syslog_level = level;
        config.syslog_tls_ca = args.syslog_ca.clone();
        config.checksum = args.log_checksum;
        fanout = fanout.with(logger::new(config), level);
    }
    Arc::new(fanout)
}

/// The journal of a run, and what earlier runs recorded in it.
struct Journaled {
    /// `None` with --no-journal, and for a dry run (which only reads it).
    journal: Option<Arc<Journal>>,
    prior: Prior,
    /// How the journal was found.
    opened: Option<Opened>,
}

/// Opens the journal (read-only for a dry run).
fn open_journal(args: &Args, inputs: &Inputs) -> Result<Journaled, String> {
    let mut j = Journaled { journal: None, prior: Prior::none(inputs.checked.count), opened: None };
    let Some(path) = args.journal_path() else { return Ok(j) };
    if args.dry_run && args.fresh {
        // What a fresh run would send: everyone.
        return Ok(j);
    }
    if args.dry_run {
        j.prior = Journal::read(&path, inputs.campaign).map_err(|e| e.to_string())?;
        return Ok(j);
    }
    let (journal, prior, opened) =
        Journal::open(&path, inputs.campaign, args.fresh).map_err(|e| e.to_string())?;
    Ok(Journaled { journal: Some(Arc::new(journal)), prior, opened: Some(opened) })
}

async fn send(args: Args, inputs: Inputs, config: Option<mailer::Config>) -> u8 {
    if let Err(e) = input::preflight(&inputs, &args.from).await {
        eprintln!("notify-mailer: {e}");
        return 2;
    }
    let Journaled { journal, prior, opened } = match open_journal(&args, &inputs) {
        Ok(journaled) => journaled,
        Err(e) => {
            eprintln!("notify-mailer: {e}\nnothing was sent");
            return 2;
        }
    };
    let Inputs { recipients, checked, message, skipped_report, .. } = inputs;
    let total = checked.count;
    let to_send = total - prior.sent;
    if let Some(report) = &skipped_report {
        // Before the progress bar exists: it redraws stderr, so text written there while it
        // shows would be torn up.
        eprint!("{report}");
    }
    let counters = Arc::new(Counters::default());
    let terminal = std::io::stderr().is_terminal();
    let progress =
        Progress::new(to_send as u64, counters.clone(), terminal, args.progress_interval);
    let log = build_logger(&args, &progress);

    log_start(&*log, &args, config.is_none(), total, to_send);
    log_journal(&*log, journal.as_deref(), &prior, opened.as_ref());
    if let Some(server) = args.server.as_ref().filter(|_| config.is_some())
        && args.tls == mailer::Tls::None
        && !is_loopback(&server.host)
    {
        logger::warning!(log, "--tls none: mail (and any password) crosses the network in plain text";
            event = "plaintext", server = server);
    }
    if skipped_report.is_some() {
        logger::warning!(log, "skipping {} invalid row(s) (--skip-invalid)", checked.invalid_total;
            event = "skipped_invalid", count = checked.invalid_total);
    }
    if let Some((line, _)) = checked.duplicates.first() {
        logger::warning!(log, "skipping {} repeated address(es)", checked.duplicates_total;
            event = "skipped_duplicates", count = checked.duplicates_total, first_line = line);
    }

    let smtp = config.map(|config| Arc::new(SmtpMailer::new(config, log.clone())));
    let sender = match &smtp {
        Some(smtp) => Sender { mailer: smtp.clone(), smtp: Some(smtp.clone()) },
        None => Sender { mailer: Arc::new(DryRunMailer::new(&args.from, log.clone())), smtp: None },
    };
    let stop = Stop::default();
    if let Err(e) = stop.on_signals(log.clone()) {
        // Without handlers a signal still stops the process; the journal keeps what was sent.
        logger::warning!(log, "cannot handle Ctrl-C: {e}"; event = "no_signal_handler");
    }
    let started = Instant::now();
    let plan = Arc::new(Plan {
        recipients,
        checked: Arc::new(checked),
        prior: Arc::new(prior),
        message,
        sleep: args.sleep,
        parallel: args.parallel as usize,
        circuit_after: args.circuit_window(),
    });
    let outcomes = run::run(
        plan.clone(),
        sender.clone(),
        journal.clone(),
        log.clone(),
        &progress,
        counters,
        stop.clone(),
    )
    .await;
    // After an abort the operator wants out now, not a polite QUIT that may wait for a
    // command timeout on a connection whose send was just abandoned.
    tokio::select! {
        () = sender.mailer.close() => {}
        () = stop.aborted() => {}
    }
    progress.finish();

    let mut code = 0;
    if let Some(journal) = &journal
        && let Err(e) = journal.finish()
    {
        eprintln!("notify-mailer: cannot sync the journal: {e}");
        code = 1;
    }
    let mut summary = Summary {
        recipients: total as u64,
        invalid_skipped: if skipped_report.is_some() { plan.checked.invalid_total } else { 0 },
        duplicates: plan.checked.duplicates_total,
        elapsed: started.elapsed(),
        stopped: stop.reason().cloned(),
        dry_run: smtp.is_none(),
        stats: smtp.as_ref().map(|m| m.stats()),
        journal: args.journal_path().filter(|_| !args.dry_run),
        ..Summary::default()
    };
    summary.count(&outcomes);
    let why = summary.stopped.as_ref().map(|_| resume_reason(&summary));
    // A dry run writes nothing (and must not remove a real run's resume file either).
    let written = match summary.dry_run {
        true => Ok(files::Written::default()),
        false => files::write(
            &plan,
            &outcomes,
            &args.resume_path(),
            &args.failures_path(),
            why.as_deref(),
        ),
    };
    match written {
        Ok(written) => {
            for path in &written.removed {
                logger::info!(log, "removed the stale {} of an earlier run", path.display();
                    event = "removed_stale_file", path = path.display());
            }
            summary.resume_file = written.resume;
            summary.failures_file = written.failures;
        }
        Err(e) => {
            eprintln!("notify-mailer: cannot write the resume or failures file: {e}");
            if summary.journal.is_some() {
                eprintln!(
                    "notify-mailer: the journal has every outcome: rerun the same command to resume"
                );
            }
            code = 1;
        }
    }
    summary.log(&*log);
    log.flush();
    // Not print!, which panics when stdout is gone (`notify-mailer ... | head`): the files
    // are written by now, and the exit status still has to say how the run went. With JSON
    // log lines, stdout stays JSON for the collector: the summary text goes to stderr (the
    // same numbers are in the event=summary line).
    let _ = match args.log_format {
        logger::StdoutFormat::Json => write!(std::io::stderr(), "{summary}"),
        _ => write!(std::io::stdout(), "{summary}"),
    };
    code.max(summary.exit_code())
}

/// What the resume file's first line says about why the run stopped.
fn resume_reason(summary: &Summary) -> String {
    match &summary.stopped {
        Some(Reason::CircuitOpen) => "not attempted: server unreachable".into(),
        _ => summary.how(),
    }
}

/// Whether `host` names this machine (where plain text is harmless).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The one start-up line: version and effective configuration, no secrets.
fn log_start(log: &dyn Logger, args: &Args, dry_run: bool, total: usize, to_send: usize) {
    let server = args.server.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
    let syslog = args.syslog.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
    let rate = args.rate.map_or_else(
        || "-".to_owned(),
        |r| format!("{}/{}", r.count, humantime::format_duration(r.per)),
    );
    logger::info!(log, "notify-mailer {} starting", env!("CARGO_PKG_VERSION");
        event = "start", version = env!("CARGO_PKG_VERSION"), server = server, tls = args.tls,
        auth = args.username.is_some(), from = args.from, recipients = total, to_send = to_send,
        parallel = args.parallel, rate = rate, dry_run = dry_run,
        sleep_ms = args.sleep.as_millis(), retry_base_ms = args.retry_base.as_millis(),
        retry_max_ms = args.retry_max.as_millis(), max_attempts = args.max_attempts,
        circuit_after_ms = args.circuit_window().as_millis(),
        log_level = format_args!("{:?}", args.log_level).to_string().to_ascii_lowercase(),
        log_format = args.log_format, log_checksum = args.log_checksum, syslog = syslog);
}

/// What the journal said at the start.
fn log_journal(
    log: &dyn Logger,
    journal: Option<&Journal>,
    prior: &Prior,
    opened: Option<&Opened>,
) {
    let path = journal.map_or_else(|| "-".to_owned(), |j| j.path().display().to_string());
    match opened {
        Some(Opened::Replaced(aside)) => {
            logger::info!(log, "--fresh: the old journal was moved to {}", aside.display();
                event = "journal_replaced", journal = path, old = aside.display());
        }
        Some(Opened::Resumed { repaired: true }) => {
            logger::warning!(log, "the journal's last line was torn (a crash mid-write): dropped";
                event = "journal_repaired", journal = path);
        }
        _ => {}
    }
    if !prior.is_empty() {
        logger::info!(log, "resuming: the journal records {} as sent already", prior.sent;
            event = "resumed", journal = path, skipped = prior.sent, failed_before = prior.failed,
            in_flight_before = prior.in_flight, unconfirmed_before = prior.unconfirmed);
    }
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
