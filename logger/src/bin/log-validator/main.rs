//! `log-validator FILE...`: checks Boulder's per-line checksums in log files.
//!
//! Each line is checked with [`logger::check_line`] (rsyslog's file formats, Boulder's, and
//! the logger's stdout format). Without `--follow` it reads each file once, prints
//! `FILE: ok=N bad=N malformed=N` per file on stdout and each bad line on stderr, and exits 1
//! when any line is bad (or, with `--strict`, malformed). With `--follow` it tails the files
//! across rotation (rename or truncation) and reports bad lines through the logger, at most one
//! a second, until it is stopped.
//!
//! The arguments are parsed by hand: five flags do not justify clap in the `logger` package,
//! and a `[[bin]]` behind a feature would be skipped without a word by `cargo build`.

mod follow;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use logger::{Config, LineCheck, check_line};

const USAGE: &str = "\
usage: log-validator [OPTIONS] FILE...

Checks Boulder's line checksums (`<checksum> <message>`) in log files: rsyslog's file
formats (Boulder's template, RSYSLOG_FileFormat, RSYSLOG_TraditionalFileFormat) and the
logger's stdout format.

Prints `FILE: ok=N bad=N malformed=N` per file and every bad line on stderr. Exit status: 0
when no line is bad, 1 when a line is bad (with --strict, also malformed), 2 on a usage
error or a file that cannot be read.

Options:
  -f, --follow          Keep reading the files as they grow, across rotation (rename and
                        truncation); report bad lines through the logger, at most one a second
      --strict          Malformed lines (no checksum where one belongs) count as failures
      --syslog TARGET   Also send the reports to syslog (unix:PATH, udp:HOST:PORT, tcp:HOST:PORT)
      --log-checksum    Put Boulder's checksum on the validator's own report lines
  -h, --help            Print this help
  -V, --version         Print the version";

/// What the command line asked for.
#[derive(Debug)]
struct Args {
    files: Vec<PathBuf>,
    follow: bool,
    strict: bool,
    log: Config,
}

/// Parses the arguments after the program name; `Ok(None)` means help or version was
/// printed.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    let mut parsed =
        Args { files: Vec::new(), follow: false, strict: false, log: Config::new(PROGRAM) };
    let mut args = args.into_iter();
    let mut flags_done = false;
    while let Some(arg) = args.next() {
        let flag = if flags_done { None } else { arg.to_str() };
        match flag {
            Some("--") => flags_done = true,
            Some("-f" | "--follow") => parsed.follow = true,
            Some("--strict") => parsed.strict = true,
            Some("--log-checksum") => parsed.log.checksum = true,
            Some("--syslog") => {
                let value = args.next().ok_or("--syslog needs a value")?;
                let value = value.to_str().ok_or("--syslog: not UTF-8")?;
                parsed.log.syslog = Some(value.parse().map_err(|e| format!("--syslog: {e}"))?);
            }
            Some(s) if s.starts_with("--syslog=") => {
                let target =
                    s["--syslog=".len()..].parse().map_err(|e| format!("--syslog: {e}"))?;
                parsed.log.syslog = Some(target);
            }
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            Some("-V" | "--version") => {
                println!("log-validator {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            Some(s) if s.starts_with('-') && s.len() > 1 => {
                return Err(format!("unknown option {s:?}"));
            }
            _ => parsed.files.push(PathBuf::from(arg)),
        }
    }
    if parsed.files.is_empty() {
        return Err("no FILE given".to_owned());
    }
    Ok(Some(parsed))
}

/// The program name of the validator's own log lines, which [`check_line`] accepts without
/// checking (they quote bad lines, so checking them could feed on itself).
const PROGRAM: &str = "log-validator";

/// Lines of one file by verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub ok: u64,
    pub bad: u64,
    pub malformed: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, check: LineCheck) {
        match check {
            LineCheck::Ok => self.ok += 1,
            LineCheck::Bad { .. } => self.bad += 1,
            _ => self.malformed += 1,
        }
    }
}

/// What to say about a line that failed: `bad checksum (found X, expected Y)` or why it is
/// malformed.
pub(crate) fn describe(check: LineCheck) -> String {
    match check {
        LineCheck::Ok => "ok".to_owned(),
        LineCheck::Bad { found, expected } => format!(
            "bad checksum (found {}, expected {})",
            String::from_utf8_lossy(&found),
            String::from_utf8_lossy(&expected)
        ),
        LineCheck::Malformed(why) => format!("malformed: {why}"),
        _ => format!("{check:?}"),
    }
}

/// The longest piece of a failing line quoted in a report: enough to find it, never a report
/// so long that a daemon truncates it.
pub(crate) const QUOTE_MAX: usize = 300;

/// `line` for a report: lossily decoded, cut at [`QUOTE_MAX`] bytes (the logger escapes it).
pub(crate) fn quote(line: &[u8]) -> String {
    let cut = &line[..line.len().min(QUOTE_MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < line.len() {
        s.push_str("...");
    }
    s
}

/// A line longer than this is checked in pieces of this size (each then fails): a file with
/// no line breaks cannot make the validator hold it all in memory.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// Reads `path` once, printing each failing line on `errors`; the lines of one file, blank
/// lines skipped (as Boulder's validator does).
fn check_file(path: &PathBuf, strict: bool, errors: &mut dyn Write) -> io::Result<Counts> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut counts = Counts::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line)? == 0 {
            return Ok(counts);
        }
        number += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.is_empty() {
            continue;
        }
        let check = check_line(text);
        counts.add(check);
        let fails = matches!(check, LineCheck::Bad { .. })
            || (strict && matches!(check, LineCheck::Malformed(_)));
        if fails {
            // The quoted line is escaped so a forged line in the file stays one line here.
            let mut quoted = String::new();
            logger::escape_into(&mut quoted, &quote(text));
            let _ = writeln!(errors, "{}:{number}: {}: {quoted}", path.display(), describe(check));
        }
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("log-validator: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.follow {
        let log = logger::new(args.log.clone());
        log.info(&format!(
            "log-validator {} following {} file(s) {}",
            env!("CARGO_PKG_VERSION"),
            args.files.len(),
            args.log
        ));
        let mut follower = follow::Follower::new(args.files, log);
        loop {
            follower.poll();
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let (stdout, stderr) = (io::stdout(), io::stderr());
    let mut failed = false;
    let mut unreadable = false;
    for path in &args.files {
        match check_file(path, args.strict, &mut stderr.lock()) {
            Ok(c) => {
                let _ = writeln!(
                    stdout.lock(),
                    "{}: ok={} bad={} malformed={}",
                    path.display(),
                    c.ok,
                    c.bad,
                    c.malformed
                );
                failed |= c.bad > 0 || (args.strict && c.malformed > 0);
            }
            Err(e) => {
                eprintln!("log-validator: {}: {e}", path.display());
                unreadable = true;
            }
        }
    }
    if unreadable {
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse(list.iter().map(OsString::from))
    }

    #[test]
    fn parses_flags_and_files() {
        let a = args(&["-f", "--strict", "--log-checksum", "--syslog", "udp:127.0.0.1:514", "a"])
            .unwrap()
            .unwrap();
        assert!(a.follow && a.strict && a.log.checksum);
        assert_eq!(a.log.syslog.unwrap().to_string(), "udp:127.0.0.1:514");
        assert_eq!(a.files, [PathBuf::from("a")]);
        let a = args(&["--syslog=unix:/dev/log", "--", "-dash-file", "b"]).unwrap().unwrap();
        assert_eq!(a.files, [PathBuf::from("-dash-file"), PathBuf::from("b")]);
        assert!(!a.follow && !a.strict && !a.log.checksum);
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert_eq!(args(&[]).unwrap_err(), "no FILE given");
        assert!(args(&["--nope", "a"]).unwrap_err().contains("\"--nope\""));
        assert!(args(&["a", "--syslog"]).unwrap_err().contains("needs a value"));
        assert!(args(&["--syslog", "nowhere", "a"]).unwrap_err().contains("--syslog: bad syslog"));
    }

    #[test]
    fn quotes_are_cut() {
        assert_eq!(quote(b"short"), "short");
        let long = vec![b'x'; QUOTE_MAX + 10];
        assert_eq!(quote(&long).len(), QUOTE_MAX + 3);
    }
}
