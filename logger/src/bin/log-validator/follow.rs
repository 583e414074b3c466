//! `--follow`: tail files across rotation, as `tail -F` does, with nothing but `std`.
//!
//! Each [`Follower::poll`] reads what the files gained since the last one. A file whose path
//! now names another file (renamed away by logrotate, a new one created) is read to its end,
//! then the new one is read from its start; a file that shrank (copytruncate) is read again
//! from its start; a file that does not exist yet is opened when it appears. Polling, not
//! inotify: a few stat calls every 200 ms cost nothing and need no platform code.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logger::{LineCheck, Logger, check_line};

use crate::{Counts, MAX_LINE, describe, quote};

/// At most one bad line is logged per this interval; the others are counted.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often the per-file counts are logged (when they changed).
const COUNTS_EVERY: Duration = Duration::from_secs(60);

/// Follows a set of files and reports through a [`Logger`].
pub(crate) struct Follower {
    files: Vec<Followed>,
    log: Arc<dyn Logger>,
    last_report: Option<Instant>,
    /// Bad lines not logged since the last report (the one-a-second limit).
    suppressed: u64,
    last_counts: Instant,
}

/// One followed path.
struct Followed {
    path: PathBuf,
    open: Option<Open>,
    counts: Counts,
    reported: Counts,
    /// Whether "waiting for it to appear" was said for the current absence.
    missing_said: bool,
    /// Whether a read error was said since the file was last read without one.
    error_said: bool,
}

/// The file currently read for a path.
struct Open {
    file: File,
    /// (device, inode): a path naming another file means rotation.
    id: (u64, u64),
    pos: u64,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
}

fn id(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl Follower {
    pub(crate) fn new(paths: Vec<PathBuf>, log: Arc<dyn Logger>) -> Follower {
        let files = paths
            .into_iter()
            .map(|path| Followed {
                path,
                open: None,
                counts: Counts::default(),
                reported: Counts::default(),
                missing_said: false,
                error_said: false,
            })
            .collect();
        Follower { files, log, last_report: None, suppressed: 0, last_counts: Instant::now() }
    }

    /// Reads what every file gained, following rotation; logs bad lines (rate-limited) and,
    /// now and then, the counts.
    pub(crate) fn poll(&mut self) {
        for i in 0..self.files.len() {
            match self.poll_file(i) {
                Ok(()) => self.files[i].error_said = false,
                Err(e) => {
                    // Said once per spell of errors, not at every poll.
                    let f = &mut self.files[i];
                    if !f.error_said {
                        logger::warning!(self.log, "cannot read {}", f.path.display(); error = e);
                        f.error_said = true;
                    }
                    f.open = None;
                }
            }
        }
        if self.last_counts.elapsed() >= COUNTS_EVERY {
            self.log_counts();
        }
    }

    /// The counts so far, per file, in the order given.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> Vec<Counts> {
        self.files.iter().map(|f| f.counts).collect()
    }

    /// Logs `counts` for each file whose counts changed since they were last logged.
    pub(crate) fn log_counts(&mut self) {
        self.last_counts = Instant::now();
        for f in &mut self.files {
            if f.counts != f.reported {
                let c = f.counts;
                logger::info!(self.log, "counts"; file = f.path.display(), ok = c.ok, bad = c.bad, malformed = c.malformed);
                f.reported = c;
            }
        }
    }

    fn poll_file(&mut self, i: usize) -> io::Result<()> {
        let path = self.files[i].path.clone();
        if self.files[i].open.is_none() {
            match File::open(&path) {
                Ok(file) => {
                    let id = id(&file.metadata()?);
                    self.files[i].open = Some(Open { file, id, pos: 0, partial: Vec::new() });
                    self.files[i].missing_said = false;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !self.files[i].missing_said {
                        logger::info!(self.log, "waiting for {} to appear", path.display());
                        self.files[i].missing_said = true;
                    }
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        let len = self.open(i).file.metadata()?.len();
        if len < self.open(i).pos {
            logger::warning!(
                self.log,
                "{} was truncated; reading it from the start",
                path.display()
            );
            let open = self.open(i);
            open.file.seek(SeekFrom::Start(0))?;
            open.pos = 0;
            open.partial.clear();
        }
        self.read_new(i)?;
        // Rotated: the path names another file now. What the old one still had was read just
        // above; a line it left without an end is checked as it is.
        let renamed = match std::fs::metadata(&path) {
            Ok(meta) => id(&meta) != self.open(i).id,
            Err(_) => false, // gone and not yet re-created: keep reading the old one
        };
        if renamed {
            let rest = std::mem::take(&mut self.open(i).partial);
            if !rest.is_empty() {
                self.check(i, &rest);
            }
            logger::info!(self.log, "{} was rotated; following the new file", path.display());
            self.files[i].open = None;
            return self.poll_file(i);
        }
        Ok(())
    }

    fn open(&mut self, i: usize) -> &mut Open {
        self.files[i].open.as_mut().expect("poll_file opens the file before reading it")
    }

    /// Reads to the end of the file, checking each complete line.
    fn read_new(&mut self, i: usize) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let n = self.open(i).file.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            self.open(i).pos += n as u64;
            let mut data = &chunk[..n];
            while let Some(at) = data.iter().position(|&b| b == b'\n') {
                let mut line = std::mem::take(&mut self.open(i).partial);
                line.extend_from_slice(&data[..at]);
                data = &data[at + 1..];
                if !line.is_empty() {
                    self.check(i, &line);
                }
                // Keep the buffer's allocation for the next partial line.
                line.clear();
                self.open(i).partial = line;
            }
            let open = self.open(i);
            open.partial.extend_from_slice(data);
            if open.partial.len() >= MAX_LINE {
                let line = std::mem::take(&mut open.partial);
                self.check(i, &line);
            }
        }
    }

    fn check(&mut self, i: usize, line: &[u8]) {
        let check = check_line(line);
        self.files[i].counts.add(check);
        if !matches!(check, LineCheck::Bad { .. }) {
            return;
        }
        let now = Instant::now();
        if self.last_report.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
            self.suppressed += 1;
            return;
        }
        self.last_report = Some(now);
        let suppressed = std::mem::take(&mut self.suppressed);
        logger::err!(self.log, "{}: {}", self.files[i].path.display(), describe(check);
            line = quote(line), suppressed = suppressed);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn good(message: &str) -> String {
        let mut line = String::from("2026-12-01T10:00:00+00:00 host svc[1]: ");
        logger::write_checksummed(&mut line, message);
        line.push('\n');
        line
    }

    fn append(path: &std::path::Path, text: &str) {
        let mut f = File::options().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn setup() -> (tempfile::TempDir, PathBuf, logger::Mock, Follower) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mock = logger::Mock::new();
        let follower = Follower::new(vec![path.clone()], Arc::new(mock.clone()));
        (dir, path, mock, follower)
    }

    fn counts(f: &Follower) -> (u64, u64, u64) {
        let c = f.counts()[0];
        (c.ok, c.bad, c.malformed)
    }

    #[test]
    fn waits_for_the_file_then_reads_complete_lines_only() {
        let (_dir, path, mock, mut f) = setup();
        f.poll();
        f.poll();
        assert_eq!(mock.get_all_matching("waiting for .*app.log to appear").len(), 1);
        let line = good("one");
        append(&path, &line[..20]);
        f.poll();
        assert_eq!(counts(&f), (0, 0, 0), "half a line is not checked yet");
        append(&path, &line[20..]);
        append(&path, "no checksum here at all\n");
        f.poll();
        assert_eq!(counts(&f), (1, 0, 1));
    }

    #[test]
    fn follows_rename_rotation_and_truncation() {
        let (dir, path, mock, mut f) = setup();
        append(&path, &good("before"));
        f.poll();
        // logrotate: rename, a last line into the old file, a new file.
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        append(&dir.path().join("app.log.1"), &good("late line in the old file"));
        f.poll(); // the path is gone: the old file is still read
        assert_eq!(counts(&f), (2, 0, 0));
        append(&path, &good("new file"));
        f.poll();
        assert_eq!(counts(&f), (3, 0, 0));
        assert_eq!(mock.get_all_matching("was rotated").len(), 1);
        // copytruncate: the file shrinks and starts over (seen when a poll finds it shorter
        // than what was read; a file truncated and refilled past that point between two
        // polls cannot be told from one that grew, here as for `tail -F`).
        std::fs::write(&path, good("x")).unwrap();
        f.poll();
        assert_eq!(counts(&f), (4, 0, 0));
        File::options().write(true).open(&path).unwrap().set_len(0).unwrap();
        f.poll();
        append(&path, &good("after the second truncation, a longer line"));
        f.poll();
        assert_eq!(counts(&f), (5, 0, 0));
        assert_eq!(mock.get_all_matching("was truncated").len(), 2);
    }

    #[test]
    fn bad_lines_are_logged_at_most_once_a_second() {
        let (_dir, path, mock, mut f) = setup();
        let flipped = good("Hello, World!").replace("World", "Wor1d");
        for _ in 0..5 {
            append(&path, &flipped);
        }
        f.poll();
        assert_eq!(counts(&f), (0, 5, 0));
        let reports = mock.get_all_matching("^ERR: .*app.log: bad checksum");
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].contains("Wor1d") && reports[0].contains("suppressed=0"), "{reports:?}");
        f.log_counts();
        assert_eq!(
            mock.get_all_matching(r"^INFO: counts file=.*app.log ok=0 bad=5 malformed=0$").len(),
            1
        );
        // The next report, a second later, says how many were left out.
        f.last_report = Some(Instant::now() - REPORT_EVERY);
        append(&path, &flipped);
        f.poll();
        assert_eq!(mock.get_all_matching("suppressed=4").len(), 1);
    }

    #[test]
    fn a_path_that_cannot_be_read_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let mock = logger::Mock::new();
        let mut f = Follower::new(vec![dir.path().to_owned()], Arc::new(mock.clone()));
        for _ in 0..3 {
            f.poll();
        }
        assert_eq!(
            mock.get_all_matching("^WARNING: cannot read ").len(),
            1,
            "{:?}",
            mock.get_all()
        );
    }

    #[test]
    fn a_file_without_line_breaks_is_checked_in_bounded_pieces() {
        let (_dir, path, _mock, mut f) = setup();
        append(&path, &"x".repeat(MAX_LINE * 2 + 10));
        f.poll();
        assert_eq!(counts(&f), (0, 0, 2));
    }
}
