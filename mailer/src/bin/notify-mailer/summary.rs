//! The end of a run: the summary an operator reads, the failures file (address and reason, CSV)
//! and the resume file (addresses not yet sent, one per line: a valid `--recipients` file).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Connection faults survived, by cause (summed over every connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconnects {
    /// Reconnections made.
    pub total: u64,
    /// `421` replies.
    pub smtp_421: u64,
    /// Connections closed without a reply.
    pub eof: u64,
    /// Connections reset or broken.
    pub reset: u64,
    /// Commands or connects that timed out.
    pub timeout: u64,
    /// Connection attempts refused.
    pub refused: u64,
    /// Other `4xx` replies, retried.
    pub transient_4xx: u64,
}

/// What happened in a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Valid, distinct recipients read.
    pub recipients: usize,
    /// Lines skipped as invalid (only with `--skip-invalid`).
    pub invalid_skipped: usize,
    /// Repeated addresses skipped.
    pub duplicates: usize,
    /// Messages the server accepted (or, in a dry run, that were logged).
    pub sent: u64,
    /// Messages sent after a fault that may have delivered them already.
    pub possibly_duplicated: u64,
    /// Messages that failed.
    pub failed: u64,
    /// Messages not sent when interrupted: never started, or abandoned in flight.
    pub unsent: u64,
    /// Of `unsent`, those abandoned in flight by the second Ctrl-C (the server may have them).
    pub abandoned: u64,
    /// Faults by cause; `None` in a dry run.
    pub reconnects: Option<Reconnects>,
    /// Wall time from the first connection to the end.
    pub elapsed: Duration,
    /// Whether Ctrl-C stopped the run.
    pub interrupted: bool,
    /// Whether the run stopped because the server refused the credentials.
    pub credentials_refused: bool,
    /// Whether nothing was really sent.
    pub dry_run: bool,
    /// Where the failures were written, if any failed.
    pub failures_file: Option<PathBuf>,
    /// Where the unsent addresses were written, if the run stopped early.
    pub resume_file: Option<PathBuf>,
}

impl Summary {
    /// The process exit status: 130 interrupted, 1 some failed, 0 all sent.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            130
        } else if self.failed > 0 {
            1
        } else {
            0
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match (self.dry_run, self.interrupted, self.credentials_refused) {
            (true, ..) => "dry run, nothing was sent",
            (false, true, _) => "interrupted",
            (false, false, true) => "stopped: the server refused the credentials",
            (false, false, false) => "done",
        };
        writeln!(f, "notify-mailer summary ({how}), elapsed {:.2}s", self.elapsed.as_secs_f64())?;
        write!(f, "  recipients   {}", self.recipients)?;
        if self.invalid_skipped > 0 || self.duplicates > 0 {
            write!(
                f,
                " ({} invalid skipped, {} duplicates skipped)",
                self.invalid_skipped, self.duplicates
            )?;
        }
        writeln!(f)?;
        let sent_label = if self.dry_run { "would send" } else { "sent" };
        write!(f, "  {sent_label:<12} {}", self.sent)?;
        if self.possibly_duplicated > 0 {
            write!(f, " ({} possibly delivered twice after a fault)", self.possibly_duplicated)?;
        }
        writeln!(f)?;
        writeln!(f, "  failed       {}", self.failed)?;
        write!(f, "  not sent     {}", self.unsent)?;
        if self.abandoned > 0 {
            write!(f, " ({} abandoned in flight: the server may have them)", self.abandoned)?;
        }
        writeln!(f)?;
        if let Some(r) = &self.reconnects {
            writeln!(f, "  reconnects   {}", r.total)?;
            writeln!(
                f,
                "  faults       421: {}, closed: {}, reset: {}, timeout: {}, refused: {}, other 4xx: {}",
                r.smtp_421, r.eof, r.reset, r.timeout, r.refused, r.transient_4xx
            )?;
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

/// The default path of a file written next to the recipients file: `RECIPIENTS.<suffix>`.
pub fn beside(recipients: &Path, suffix: &str) -> PathBuf {
    let mut name = recipients.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `email,reason` rows (with a header, so the file is itself a CSV recipients file).
pub fn write_failures(path: &Path, failures: &[(String, String)]) -> io::Result<()> {
    let mut out = csv::Writer::from_path(path)?;
    out.write_record(["email", "reason"])?;
    for (email, reason) in failures {
        let mut clean = String::new();
        logger::escape_into(&mut clean, reason);
        out.write_record([email.as_str(), clean.as_str()])?;
    }
    out.flush()
}

/// Writes one address per line, with comments saying what the file is and which addresses were
/// abandoned in flight: those are in it too (sending again is the safe side), marked, since the
/// server may have taken them already.
pub fn write_resume(path: &Path, abandoned: &[&str], unsent: &[&str]) -> io::Result<()> {
    let mut text =
        String::from("# notify-mailer: addresses not yet sent when the run stopped early\n");
    if !abandoned.is_empty() {
        text.push_str("# abandoned in flight: the server may have taken these already\n");
        for email in abandoned {
            text.push_str(email);
            text.push('\n');
        }
        text.push_str("# never started\n");
    }
    for email in unsent {
        text.push_str(email);
        text.push('\n');
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipients;

    #[test]
    fn exit_codes() {
        let mut s = Summary { sent: 3, ..Summary::default() };
        assert_eq!(s.exit_code(), 0);
        s.failed = 1;
        assert_eq!(s.exit_code(), 1);
        s.interrupted = true;
        assert_eq!(s.exit_code(), 130);
    }

    #[test]
    fn summary_reads_well() {
        let s = Summary {
            recipients: 500,
            sent: 498,
            possibly_duplicated: 2,
            failed: 2,
            reconnects: Some(Reconnects { total: 7, smtp_421: 3, eof: 4, ..Reconnects::default() }),
            elapsed: Duration::from_millis(2310),
            failures_file: Some("list.txt.failed.csv".into()),
            ..Summary::default()
        };
        let text = s.to_string();
        assert!(text.starts_with("notify-mailer summary (done), elapsed 2.31s\n"), "{text}");
        assert!(text.contains("  sent         498 (2 possibly delivered twice"), "{text}");
        assert!(text.contains("  failed       2\n"), "{text}");
        assert!(
            text.contains("  reconnects   7\n  faults       421: 3, closed: 4, reset: 0"),
            "{text}"
        );
        assert!(text.contains("failures     list.txt.failed.csv"), "{text}");
        assert!(!text.contains("resume"), "{text}");
    }

    #[test]
    fn default_paths_sit_beside_the_recipients_file() {
        assert_eq!(
            beside(Path::new("/data/list.csv"), "resume"),
            Path::new("/data/list.csv.resume")
        );
    }

    #[test]
    fn failures_file_is_a_valid_recipients_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("failed.csv");
        let failures = vec![
            ("a@example.com".to_owned(), "gave up after 2 attempts: refused, \"twice\"".to_owned()),
            ("b@example.com".to_owned(), "550 no such user\r\nforged".to_owned()),
        ];
        write_failures(&path, &failures).unwrap();
        let list = recipients::read(&path).unwrap();
        let emails: Vec<&str> = list.recipients.iter().map(|r| r.email.as_str()).collect();
        assert_eq!(emails, ["a@example.com", "b@example.com"]);
        assert!(list.recipients[0].vars["reason"].contains("\"twice\""));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "a reason forged a line: {text:?}");
    }

    #[test]
    fn resume_file_is_a_valid_recipients_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.resume");
        write_resume(&path, &["b@example.com"], &["c@example.com", "d@example.com"]).unwrap();
        let list = recipients::read(&path).unwrap();
        assert_eq!(list.recipients.len(), 3);
        assert_eq!(list.recipients[0].email, "b@example.com");
        assert_eq!(list.recipients[2].email, "d@example.com");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# abandoned in flight"), "{text}");
    }
}
