//! The summary an operator reads at the end of a run, and its `event=summary` log line. Every
//! number has one definition (listed in `--help`); the connection numbers are the mailer's own
//! [`mailer::Stats`], printed as they are.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use logger::Logger;

use crate::run::{Outcomes, State};
use crate::stop::Reason;

/// What happened in a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Distinct valid addresses in the recipients file.
    pub recipients: u64,
    /// Invalid rows skipped (only with `--skip-invalid`).
    pub invalid_skipped: u64,
    /// Repeated addresses skipped.
    pub duplicates: u64,
    /// Recorded as sent by an earlier run: skipped.
    pub skipped: u64,
    /// Accepted by the server in this run (or, in a dry run, logged).
    pub sent: u64,
    /// Refused for good or given up in this run.
    pub failed: u64,
    /// Of `failed`, given up after a try that lost its connection after the final dot (the
    /// server may have them).
    pub failed_unconfirmed: u64,
    /// Left for the resume file.
    pub not_sent: u64,
    /// Of `not_sent`, abandoned in flight by an abort (the server may have them).
    pub abandoned: u64,
    /// Of `not_sent`, stopped after a try that lost its connection after the final dot (the
    /// server may have them).
    pub stopped_unconfirmed: u64,
    /// Sent again after the connection was lost after the final dot (may have arrived twice).
    pub resent_after_fault: u64,
    /// Sent although an earlier run did not know whether it arrived: in flight when that run
    /// ended, or unconfirmed (may have arrived twice).
    pub resent_unconfirmed: u64,
    /// The mailer's counters; `None` in a dry run.
    pub stats: Option<mailer::Stats>,
    /// From the start of sending to the end.
    pub elapsed: Duration,
    /// Why the run stopped early, if it did.
    pub stopped: Option<Reason>,
    /// Whether nothing was really sent.
    pub dry_run: bool,
    /// The journal, if there is one.
    pub journal: Option<PathBuf>,
    /// Where the failures were written.
    pub failures_file: Option<PathBuf>,
    /// Where the rows not sent were written.
    pub resume_file: Option<PathBuf>,
}

impl Summary {
    /// Counts the recipients' states.
    pub fn count(&mut self, outcomes: &Outcomes) {
        self.skipped = outcomes.count(State::SentBefore);
        self.sent = outcomes.count(State::Sent);
        self.failed = outcomes.states.iter().filter(|s| s.is_failed()).count() as u64;
        self.failed_unconfirmed = outcomes.count(State::FailedUnconfirmed);
        self.abandoned = outcomes.count(State::Abandoned);
        self.stopped_unconfirmed = outcomes.count(State::StoppedUnconfirmed);
        self.not_sent = outcomes.states.iter().filter(|s| s.is_left()).count() as u64;
        self.resent_after_fault = outcomes.possibly_duplicated;
        self.resent_unconfirmed = outcomes.resent_unconfirmed;
    }

    /// The process exit status: 130 interrupted, 1 some failed or the run stopped for another
    /// reason, 0 all sent.
    pub fn exit_code(&self) -> u8 {
        match &self.stopped {
            Some(Reason::Signal(_)) => 130,
            Some(_) => 1,
            None if self.failed > 0 || self.not_sent > 0 => 1,
            None => 0,
        }
    }

    /// Why the run ended, in a few words.
    pub fn how(&self) -> String {
        match (&self.stopped, self.dry_run) {
            (_, true) => "dry run, nothing was sent".into(),
            (None, false) => "done".into(),
            (Some(Reason::Signal(name)), _) => format!("interrupted by {name}"),
            (Some(Reason::CircuitOpen), _) => "stopped: the server is unreachable".into(),
            (Some(Reason::CredentialsRefused), _) => {
                "stopped: the server refused the credentials".into()
            }
            (Some(Reason::Failure(what)), _) => format!("stopped: {what}"),
        }
    }

    /// The `event=summary` line, with the same numbers.
    pub fn log(&self, log: &dyn Logger) {
        let s = self.stats.clone().unwrap_or_default();
        let level =
            if self.exit_code() == 0 { logger::Level::Info } else { logger::Level::Warning };
        logger::log!(log, level, false, "summary: {} sent, {} failed, {} not sent", self.sent, self.failed, self.not_sent;
            event = "summary", how = self.how(), recipients = self.recipients,
            skipped = self.skipped, sent = self.sent, failed = self.failed,
            not_sent = self.not_sent, abandoned = self.abandoned,
            unconfirmed = self.failed_unconfirmed + self.stopped_unconfirmed,
            resent_after_fault = self.resent_after_fault,
            resent_unconfirmed = self.resent_unconfirmed,
            connects = s.connects, connect_failures = s.connect_failures,
            reconnects = s.reconnects, smtp_421 = s.smtp_421, eof = s.eof, reset = s.reset,
            timeout = s.timeout, refused = s.refused, transient_4xx = s.transient_4xx,
            permanent_5xx = s.permanent_5xx, elapsed_ms = self.elapsed.as_millis(),
            dry_run = self.dry_run);
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "notify-mailer summary ({}), elapsed {:.2}s",
            self.how(),
            self.elapsed.as_secs_f64()
        )?;
        write!(f, "  recipients   {}", self.recipients)?;
        if self.invalid_skipped > 0 || self.duplicates > 0 {
            write!(
                f,
                " ({} invalid skipped, {} duplicates skipped)",
                self.invalid_skipped, self.duplicates
            )?;
        }
        writeln!(f)?;
        if self.journal.is_some() {
            writeln!(
                f,
                "  skipped      {} (delivered by an earlier run, per the journal)",
                self.skipped
            )?;
        }
        let sent_label = if self.dry_run { "would send" } else { "sent" };
        write!(f, "  {sent_label:<12} {}", self.sent)?;
        if self.resent_after_fault > 0 {
            write!(f, " ({} possibly delivered twice after a fault)", self.resent_after_fault)?;
        }
        writeln!(f)?;
        if self.resent_unconfirmed > 0 {
            writeln!(
                f,
                "  resent       {} (unconfirmed when an earlier run ended: possibly delivered twice)",
                self.resent_unconfirmed
            )?;
        }
        write!(f, "  failed       {}", self.failed)?;
        if self.failed_unconfirmed > 0 {
            write!(
                f,
                " ({} may have been delivered: a connection was lost after the final dot)",
                self.failed_unconfirmed
            )?;
        }
        writeln!(f)?;
        write!(f, "  not sent     {}", self.not_sent)?;
        let may_have =
            [(self.abandoned, "abandoned in flight"), (self.stopped_unconfirmed, "unconfirmed")];
        let parts: Vec<String> = may_have
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if !parts.is_empty() {
            write!(f, " ({}: the server may have them)", parts.join(", "))?;
        }
        writeln!(f)?;
        if let Some(s) = &self.stats {
            writeln!(f, "  connections  {} opened, {} failed", s.connects, s.connect_failures)?;
            writeln!(f, "  reconnects   {}", s.reconnects)?;
            writeln!(
                f,
                "  faults       421: {}, closed: {}, reset: {}, timeout: {}, refused: {}, other 4xx: {}, 5xx: {}",
                s.smtp_421, s.eof, s.reset, s.timeout, s.refused, s.transient_4xx, s.permanent_5xx
            )?;
        }
        if let Some(path) = &self.journal {
            writeln!(f, "  journal      {}", path.display())?;
        }
        if let Some(path) = &self.failures_file {
            writeln!(f, "  failures     {}", path.display())?;
        }
        if let Some(path) = &self.resume_file {
            writeln!(f, "  resume with  --recipients {}", path.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let mut s = Summary { sent: 3, ..Summary::default() };
        assert_eq!(s.exit_code(), 0);
        s.failed = 1;
        assert_eq!(s.exit_code(), 1);
        s.stopped = Some(Reason::Signal("SIGTERM"));
        assert_eq!(s.exit_code(), 130);
        s.stopped = Some(Reason::CircuitOpen);
        assert_eq!(s.exit_code(), 1);
    }

    #[test]
    fn summary_reads_well() {
        let mut stats = mailer::Stats::default();
        (stats.reconnects, stats.smtp_421, stats.eof, stats.connects) = (7, 3, 4, 9);
        stats.connect_failures = 1;
        let s = Summary {
            recipients: 500,
            sent: 497,
            failed: 2,
            failed_unconfirmed: 1,
            not_sent: 1,
            stopped_unconfirmed: 1,
            resent_after_fault: 2,
            stats: Some(stats),
            elapsed: Duration::from_millis(2310),
            journal: Some("list.txt.journal".into()),
            failures_file: Some("list.txt.failed.csv".into()),
            ..Summary::default()
        };
        let text = s.to_string();
        assert!(text.starts_with("notify-mailer summary (done), elapsed 2.31s\n"), "{text}");
        assert!(
            text.contains("  skipped      0 (delivered by an earlier run, per the journal)\n"),
            "{text}"
        );
        assert!(
            text.contains("  sent         497 (2 possibly delivered twice after a fault)\n"),
            "{text}"
        );
        assert!(!text.contains("resent"), "{text}");
        assert!(
            text.contains(
                "  failed       2 (1 may have been delivered: a connection was lost after the \
                 final dot)\n  not sent     1 (1 unconfirmed: the server may have them)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  connections  9 opened, 1 failed\n  reconnects   7\n  faults       421: 3, closed: 4, reset: 0"
            ),
            "{text}"
        );
        assert!(text.contains("failures     list.txt.failed.csv"), "{text}");
        assert!(!text.contains("resume"), "{text}");
        let first_sent = text.lines().find(|l| l.contains("sent ")).unwrap();
        assert!(
            first_sent.starts_with("  sent "),
            "a parser looking for `sent ` finds the sent line first: {text}"
        );
    }
}
