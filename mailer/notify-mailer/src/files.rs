//! The files a run leaves for the operator: the resume file (the rows not sent, every column
//! kept: usable as `--recipients` with the same templates) and the failures file (the rows that
//! failed, every column plus `failure_reason` last). Both are written by reading the
//! recipients file once more, in file order, into a temporary file that is then renamed into
//! place, so a crash while writing never leaves half a file. A stale one from an earlier run
//! (recognised by its first line) is removed when this run leaves nothing to put in it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use csv::StringRecord;

use crate::recipients::{Format, RecipientsFile, Row};
use crate::run::{Outcomes, Plan, State};

/// The first words of both files.
const MARKER: &str = "# notify-mailer ";

/// The mark before a row whose send lost its connection after the final dot.
const LOST_AFTER_THE_DOT: &str =
    "may have been delivered already: a connection was lost after the final dot";

/// The name of the column the failures file adds.
pub const FAILURE_REASON: &str = "failure_reason";

/// What was written (and removed).
#[derive(Debug, Default)]
pub struct Written {
    /// The resume file, if any row was left.
    pub resume: Option<PathBuf>,
    /// The failures file, if any row failed.
    pub failures: Option<PathBuf>,
    /// Stale files of an earlier run, removed.
    pub removed: Vec<PathBuf>,
}

/// Writes both files. `why` says why the run stopped early (`None`: it did not).
pub fn write(
    plan: &Plan,
    outcomes: &Outcomes,
    resume: &Path,
    failures: &Path,
    why: Option<&str>,
) -> Result<Written, String> {
    let file = &*plan.recipients;
    let left = outcomes.states.iter().any(|s| s.is_left());
    let failed = outcomes.states.iter().any(|s| s.is_failed());
    let mut written = Written::default();
    let mut resume_out = match left {
        true => Some(Output::create(resume, file.format(), file.header().cloned())?),
        false => None,
    };
    let mut failures_out = match failed {
        true => Some(Output::create(failures, Format::Csv, Some(failures_header(file)))?),
        false => None,
    };
    let source = file.path().display().to_string();
    if let Some(out) = &mut resume_out {
        let why = why.unwrap_or("some rows were not sent");
        out.comment(&format!(
            "notify-mailer resume file: the rows of {source} not sent when the run stopped ({why})"
        ))
        .map_err(io(resume))?;
        out.comment("use it as --recipients with the same templates to send them")
            .map_err(io(resume))?;
        out.header().map_err(io(resume))?;
    }
    if let Some(out) = &mut failures_out {
        out.comment(&format!(
            "notify-mailer failures file: the rows of {source} that failed, with the reason last"
        ))
        .map_err(io(failures))?;
        out.header().map_err(io(failures))?;
    }

    let mut recipients = file.recipients(&plan.checked).map_err(|e| e.to_string())?;
    let mut row = Row::default();
    let replace_reason = file.columns().names.last().is_some_and(|n| n == FAILURE_REASON);
    while resume_out.is_some() || failures_out.is_some() {
        let Some(i) = recipients.next_into(&mut row).map_err(|e| e.to_string())? else { break };
        match outcomes.states[i] {
            state if state.is_failed() => {
                if let Some(out) = &mut failures_out {
                    if state == State::FailedUnconfirmed {
                        out.comment(LOST_AFTER_THE_DOT).map_err(io(failures))?;
                    }
                    let mut fields = row.fields.clone();
                    if replace_reason {
                        fields.truncate(fields.len() - 1);
                    }
                    let mut reason = String::new();
                    logger::escape_into(
                        &mut reason,
                        outcomes.reasons.get(&i).map_or("", String::as_str),
                    );
                    fields.push_field(&reason);
                    out.row(&fields).map_err(io(failures))?;
                }
            }
            state if state.is_left() => {
                if let Some(out) = &mut resume_out {
                    let mark = match state {
                        State::Abandoned => Some(
                            "may have been delivered already: in flight when the run was stopped",
                        ),
                        State::StoppedUnconfirmed => Some(LOST_AFTER_THE_DOT),
                        State::Pending if plan.prior.was_in_flight(i) => Some(
                            "may have been delivered already: in flight when an earlier run ended",
                        ),
                        State::Pending if plan.prior.may_have_arrived(i) => Some(
                            "may have been delivered already: unconfirmed in an earlier run \
                             (a connection was lost after the final dot)",
                        ),
                        _ => None,
                    };
                    if let Some(mark) = mark {
                        out.comment(mark).map_err(io(resume))?;
                    }
                    out.row(&row.fields).map_err(io(resume))?;
                }
            }
            _ => {}
        }
    }
    for (out, path, slot) in
        [(resume_out, resume, &mut written.resume), (failures_out, failures, &mut written.failures)]
    {
        match out {
            Some(out) => {
                out.finish().map_err(io(path))?;
                *slot = Some(path.to_owned());
            }
            None if is_ours(path) && !same_file(path, file.path()) => {
                std::fs::remove_file(path).map_err(io(path))?;
                written.removed.push(path.to_owned());
            }
            None => {}
        }
    }
    Ok(written)
}

/// An error about `path`, as a sentence.
fn io(path: &Path) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// The failures file's header: the input's columns (`email` for a plain list) and
/// `failure_reason`, which replaces a last column of that name (a failures file given again
/// as --recipients).
fn failures_header(file: &RecipientsFile) -> StringRecord {
    let mut header = file.header().cloned().unwrap_or_else(|| StringRecord::from(vec!["email"]));
    if file.columns().names.last().is_some_and(|n| n == FAILURE_REASON) {
        header.truncate(header.len() - 1);
    }
    header.push_field(FAILURE_REASON);
    header
}

/// Whether both paths name one file (a resume file given again as --recipients, and as its
/// own --resume-file: it is never removed).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Whether `path` is a file this program wrote (its first line says so).
fn is_ours(path: &Path) -> bool {
    let mut start = [0u8; MARKER.len()];
    File::open(path).and_then(|mut f| io::Read::read_exact(&mut f, &mut start)).is_ok()
        && start == MARKER.as_bytes()
}

/// One file being written: rows in the input's format, to a temporary name.
struct Output {
    tmp: Tmp,
    path: PathBuf,
    header: Option<StringRecord>,
    sink: Sink,
}

enum Sink {
    Plain(BufWriter<File>),
    /// The csv crate's writer, and the same open file (sharing its offset) for comment lines
    /// written between records.
    Csv(Box<csv::Writer<BufWriter<File>>>, File),
}

impl Output {
    fn create(path: &Path, format: Format, header: Option<StringRecord>) -> Result<Output, String> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let error = |e: io::Error| format!("{}: {e}", tmp.display());
        let file = File::create(&tmp).map_err(error)?;
        let raw = file.try_clone().map_err(error)?;
        let out = BufWriter::with_capacity(64 * 1024, file);
        let sink = match format {
            Format::Plain => Sink::Plain(out),
            // `#` at the start of a field is quoted, so no value can turn its row into a comment.
            Format::Csv => Sink::Csv(
                Box::new(csv::WriterBuilder::new().comment(Some(b'#')).from_writer(out)),
                raw,
            ),
        };
        Ok(Output { tmp: Tmp(tmp), path: path.to_owned(), header, sink })
    }

    fn header(&mut self) -> io::Result<()> {
        match self.header.take() {
            Some(header) => self.row(&header),
            None => Ok(()),
        }
    }

    fn comment(&mut self, text: &str) -> io::Result<()> {
        let mut line = String::from("# ");
        logger::escape_into(&mut line, text);
        line.push('\n');
        match &mut self.sink {
            Sink::Plain(out) => out.write_all(line.as_bytes()),
            Sink::Csv(out, raw) => {
                out.flush()?;
                raw.write_all(line.as_bytes())
            }
        }
    }

    fn row(&mut self, fields: &StringRecord) -> io::Result<()> {
        match &mut self.sink {
            Sink::Plain(out) => {
                out.write_all(fields.get(0).unwrap_or("").as_bytes())?;
                out.write_all(b"\n")
            }
            Sink::Csv(out, _) => out.write_record(fields).map_err(io::Error::other),
        }
    }

    fn finish(self) -> io::Result<()> {
        let file = match self.sink {
            Sink::Plain(out) => out.into_inner().map_err(|e| e.into_error())?,
            Sink::Csv(out, _) => out
                .into_inner()
                .map_err(|e| io::Error::other(e.to_string()))?
                .into_inner()
                .map_err(|e| e.into_error())?,
        };
        file.sync_all()?;
        std::fs::rename(&self.tmp.0, &self.path)
    }
}

/// A temporary file, removed when dropped unless it was renamed away first.
struct Tmp(PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
