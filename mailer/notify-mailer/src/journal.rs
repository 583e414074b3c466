//! The journal: an append-only text file that records, per recipient, that a send is being
//! attempted and how it ended, so that rerunning the same command after a crash sends only
//! what is not recorded as sent.
//!
//! ```text
//! notify-mailer journal 1 fingerprint=4be3…91 recipients=5000
//! # run started 2026-12-01T10:00:00Z pid 4242
//! A  0  user1@example.com
//! S  0  user1@example.com
//! A  1  user2@example.com
//! F  1  user2@example.com  server replied 550 at rcpt: 5.1.1 no such user
//! ```
//!
//! (Fields are separated by tabs, which no valid address holds.) `A` (attempting) is written
//! before a message goes out and `S` (sent), `F` (failed), `U` (unconfirmed: a connection was
//! lost after the final dot, so the server may have it, then the send failed or was stopped;
//! the reason follows) or `N` (not sent: stopped before it could be delivered) after; each
//! line is one `write(2)`, done
//! before the sender moves on, so a killed process has recorded every outcome it learnt. A
//! background thread makes the writes durable (`fdatasync`) once a second when there are new
//! ones. The recipient is its number among the distinct valid addresses of the recipients file,
//! in file order; the address is there for people reading the file.
//!
//! On resume the last mark of each recipient counts (a sent one stays sent): `S` is skipped,
//! everything else is sent again. An `A` with nothing after it was in flight when the earlier
//! run died, and a `U` was never confirmed: either may have been delivered, so sending it again
//! can duplicate it; those are counted and reported, and they are the only possible
//! duplicates. A torn last line (a write
//! cut short by a crash or power loss) is dropped and the file truncated before appending.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime};

/// The first words of every journal, and its format version.
const MAGIC: &str = "notify-mailer journal 1";

/// How often new lines are made durable.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies a campaign: a SHA-256 prefix over the from address, subject, bodies, headers
/// and recipients file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 16]);

impl Fingerprint {
    /// The fingerprint of labelled parts (each label and length hashed too, so parts cannot
    /// run into each other).
    pub fn of(parts: &[(&str, &[u8])]) -> Fingerprint {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for (label, bytes) in parts {
            ctx.update(label.as_bytes());
            ctx.update(&(bytes.len() as u64).to_le_bytes());
            ctx.update(bytes);
        }
        let mut out = [0u8; 16];
        out.copy_from_slice(&ctx.finish().as_ref()[..16]);
        Fingerprint(out)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The campaign a journal belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Campaign {
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// How many recipients it has.
    pub recipients: usize,
}

impl Campaign {
    fn header(&self) -> String {
        format!("{MAGIC} fingerprint={} recipients={}\n", self.fingerprint, self.recipients)
    }
}

/// One line's verdict about a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark<'a> {
    /// About to be sent.
    Attempt,
    /// Accepted by the server.
    Sent,
    /// Refused for good (the reason follows).
    Failed(&'a str),
    /// Failed or stopped after a try that may have delivered it (the reason follows).
    Unconfirmed(&'a str),
    /// Stopped before it could have been delivered.
    NotSent,
}

impl Mark<'_> {
    fn tag(self) -> u8 {
        match self {
            Mark::Attempt => b'A',
            Mark::Sent => b'S',
            Mark::Failed(_) => b'F',
            Mark::Unconfirmed(_) => b'U',
            Mark::NotSent => b'N',
        }
    }
}

/// What earlier runs recorded: the last mark of each recipient.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    marks: Vec<u8>,
    /// Recorded as sent.
    pub sent: usize,
    /// Recorded as failed (they are tried again).
    pub failed: usize,
    /// In flight when an earlier run ended (attempted, no outcome): may have been delivered.
    pub in_flight: usize,
    /// Failed or stopped after a try that may have delivered it.
    pub unconfirmed: usize,
}

impl Prior {
    fn new(recipients: usize) -> Prior {
        Prior { marks: vec![0; recipients], ..Prior::default() }
    }

    fn set(&mut self, index: usize, tag: u8) {
        let mark = &mut self.marks[index];
        if *mark != b'S' {
            *mark = tag;
        }
    }

    fn count(&mut self) {
        for &m in &self.marks {
            match m {
                b'S' => self.sent += 1,
                b'F' => self.failed += 1,
                b'A' => self.in_flight += 1,
                b'U' => self.unconfirmed += 1,
                _ => {}
            }
        }
    }

    /// No journal: nothing recorded for `recipients` recipients.
    pub fn none(recipients: usize) -> Prior {
        Prior::new(recipients)
    }

    /// Recorded as sent: skip it.
    pub fn is_sent(&self, index: usize) -> bool {
        self.marks.get(index) == Some(&b'S')
    }

    /// In flight when an earlier run ended: it may have been delivered already.
    pub fn was_in_flight(&self, index: usize) -> bool {
        self.marks.get(index) == Some(&b'A')
    }

    /// An earlier run does not know whether it arrived (in flight when that run ended, or
    /// unconfirmed): sending it again may deliver it twice.
    pub fn may_have_arrived(&self, index: usize) -> bool {
        matches!(self.marks.get(index), Some(b'A' | b'U'))
    }

    /// Whether any earlier run recorded anything.
    pub fn is_empty(&self) -> bool {
        self.marks.iter().all(|&m| m == 0)
    }
}

/// A journal that cannot be used.
#[derive(Debug)]
pub enum JournalError {
    /// It belongs to another campaign.
    OtherCampaign {
        /// The journal.
        path: PathBuf,
    },
    /// A line in the middle cannot be read.
    Damaged {
        /// The journal.
        path: PathBuf,
        /// 1-based.
        line: u64,
        /// What is wrong.
        why: String,
    },
    /// Reading, writing or renaming failed.
    Io {
        /// The journal.
        path: PathBuf,
        /// What failed.
        error: io::Error,
    },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::OtherCampaign { path } => write!(
                f,
                "{}: this journal belongs to another campaign (the from address, subject, a body, \
                 a header or the recipients file differ). Rerun the campaign that wrote it to \
                 resume it, pass --fresh to start this one over (the old journal is kept beside \
                 it), or name another file with --journal",
                path.display()
            ),
            JournalError::Damaged { path, line, why } => write!(
                f,
                "{}:{line}: the journal is damaged ({why}); move it away or pass --fresh",
                path.display()
            ),
            JournalError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

/// How [`Journal::open`] found the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// There was none (or an empty one): a new journal.
    New,
    /// An earlier run's journal of this campaign, appended to.
    Resumed {
        /// A torn last line was dropped.
        repaired: bool,
    },
    /// `--fresh`: the old journal was moved here and a new one started.
    Replaced(PathBuf),
}

/// An open journal, appending.
#[derive(Debug)]
pub struct Journal {
    file: Arc<File>,
    path: PathBuf,
    dirty: Arc<AtomicBool>,
    syncer: std::sync::Mutex<Option<(mpsc::Sender<()>, thread::JoinHandle<()>)>>,
}

impl Journal {
    /// Opens the journal at `path` for `campaign`, creating it if it does not exist, and
    /// returns what earlier runs recorded. With `fresh`, an existing journal is moved aside
    /// (to `PATH.<UTC time>`) and a new one started.
    pub fn open(
        path: &Path,
        campaign: Campaign,
        fresh: bool,
    ) -> Result<(Journal, Prior, Opened), JournalError> {
        let io_err = |error| JournalError::Io { path: path.to_owned(), error };
        let mut opened = Opened::New;
        if fresh && path.exists() {
            let aside = aside_path(path);
            std::fs::rename(path, &aside).map_err(io_err)?;
            opened = Opened::Replaced(aside);
        }
        let file =
            OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io_err)?;
        let scan = scan(&file, path, campaign)?;
        let (prior, end) = match scan {
            Some(Scan { prior, end, torn }) => {
                if torn {
                    file.set_len(end).map_err(io_err)?;
                }
                if opened == Opened::New {
                    opened = Opened::Resumed { repaired: torn };
                }
                (prior, end)
            }
            None => (Prior::new(campaign.recipients), 0),
        };
        if end == 0 {
            // New, or only a torn header: start it.
            file.set_len(0).map_err(io_err)?;
            (&file).write_all(campaign.header().as_bytes()).map_err(io_err)?;
        }
        let started = humantime::format_rfc3339_seconds(SystemTime::now());
        let note = format!("# run started {started} pid {}\n", std::process::id());
        (&file).write_all(note.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        sync_dir(path);
        let journal = Journal::with_syncer(file, path);
        Ok((journal, prior, opened))
    }

    /// What earlier runs recorded, without writing anything (for `--dry-run`); nothing when
    /// there is no journal.
    pub fn read(path: &Path, campaign: Campaign) -> Result<Prior, JournalError> {
        match File::open(path) {
            Ok(file) => Ok(scan(&file, path, campaign)?
                .map_or_else(|| Prior::new(campaign.recipients), |s| s.prior)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Prior::new(campaign.recipients)),
            Err(error) => Err(JournalError::Io { path: path.to_owned(), error }),
        }
    }

    fn with_syncer(file: File, path: &Path) -> Journal {
        let file = Arc::new(file);
        let dirty = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let syncer = {
            let (file, dirty) = (file.clone(), dirty.clone());
            thread::Builder::new().name("journal-sync".into()).spawn(move || {
                // Until `finish` drops the sender.
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(SYNC_INTERVAL) {
                    if dirty.swap(false, Ordering::AcqRel) {
                        // A failed sync is retried on the next tick; the writes themselves
                        // report their errors to the run.
                        if file.sync_data().is_err() {
                            dirty.store(true, Ordering::Release);
                        }
                    }
                }
            })
        };
        // Without the thread (the system refused one) every `finish` still syncs once.
        let syncer = syncer.ok().map(|handle| (tx, handle));
        Journal { file, path: path.to_owned(), dirty, syncer: std::sync::Mutex::new(syncer) }
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line for recipient `index` (one `write(2)`: it survives the process being
    /// killed right after).
    #[cfg(test)]
    pub fn record(&self, index: usize, email: &str, mark: Mark<'_>) -> io::Result<()> {
        let mut buf = Vec::new();
        Journal::line(&mut buf, index, email, mark);
        self.write(&mut buf)
    }

    /// Appends the line for recipient `index` to `buf`, for [`Journal::write`].
    pub fn line(buf: &mut Vec<u8>, index: usize, email: &str, mark: Mark<'_>) {
        buf.push(mark.tag());
        buf.push(b'\t');
        buf.extend_from_slice(itoa(index, &mut [0u8; 20]).as_bytes());
        buf.push(b'\t');
        buf.extend_from_slice(email.as_bytes());
        if let Mark::Failed(reason) | Mark::Unconfirmed(reason) = mark {
            let mut escaped = String::with_capacity(reason.len());
            logger::escape_into(&mut escaped, reason);
            buf.push(b'\t');
            buf.extend_from_slice(escaped.as_bytes());
        }
        buf.push(b'\n');
    }

    /// Appends `buf`'s lines in one `write(2)` (so a process killed right after has them all,
    /// and none torn) and empties it.
    pub fn write(&self, buf: &mut Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        (&*self.file).write_all(buf)?;
        buf.clear();
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Stops the sync thread and makes everything written durable.
    pub fn finish(&self) -> io::Result<()> {
        let syncer = self.syncer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((tx, handle)) = syncer {
            drop(tx);
            let _ = handle.join();
        }
        self.file.sync_data()
    }
}

/// `n` in decimal, without allocating.
fn itoa(mut n: usize, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// Where `--fresh` moves an old journal: `PATH.<UTC time>`, with a counter if that exists.
fn aside_path(path: &Path) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(&stamp);
    let mut candidate = PathBuf::from(&name);
    let mut n = 1;
    while candidate.exists() {
        let mut numbered = name.clone();
        numbered.push(format!(".{n}"));
        candidate = PathBuf::from(numbered);
        n += 1;
    }
    candidate
}

/// Makes a created or renamed directory entry durable (best effort: not every file system
/// lets a directory be opened for syncing).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

struct Scan {
    prior: Prior,
    /// The end of the last complete, valid line.
    end: u64,
    /// Bytes after `end` are dropped.
    torn: bool,
}

/// Reads a journal. `None` for an empty file or one whose header line was torn before it was
/// complete (nothing can follow a header that was never finished).
fn scan(file: &File, path: &Path, campaign: Campaign) -> Result<Option<Scan>, JournalError> {
    let damaged = |line: u64, why: &str| JournalError::Damaged {
        path: path.to_owned(),
        line,
        why: why.into(),
    };
    let io_err = |error| JournalError::Io { path: path.to_owned(), error };
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut buf = Vec::new();
    let n = reader.read_until(b'\n', &mut buf).map_err(io_err)?;
    if n == 0 || buf.last() != Some(&b'\n') {
        return Ok(None);
    }
    let header = String::from_utf8_lossy(&buf);
    let mut words = header.split_whitespace();
    let magic: Vec<&str> = words.by_ref().take(3).collect();
    if magic.join(" ") != MAGIC {
        return Err(damaged(1, "this is not a notify-mailer journal"));
    }
    let rest: Vec<&str> = words.collect();
    if rest
        != [
            format!("fingerprint={}", campaign.fingerprint).as_str(),
            format!("recipients={}", campaign.recipients).as_str(),
        ]
    {
        return Err(JournalError::OtherCampaign { path: path.to_owned() });
    }
    let mut prior = Prior::new(campaign.recipients);
    let mut end = n as u64;
    let mut line_no = 1u64;
    let mut junk_from: Option<u64> = None;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            // The last write was cut short (with a junk tail before it, that is dropped too).
            break;
        }
        match parse_line(&buf, campaign.recipients) {
            Ok(None) => {}
            Ok(Some(_)) if junk_from.is_some() => {
                return Err(damaged(junk_from.unwrap_or(line_no), "unreadable line"));
            }
            Ok(Some((tag, index))) => prior.set(index, tag),
            // Zero-filled blocks are what a file system may leave after a power loss: a tail of
            // them is dropped, but only if no valid line follows.
            Err(_) if buf.contains(&0) => {
                junk_from.get_or_insert(line_no);
                continue;
            }
            Err(why) => return Err(damaged(line_no, why)),
        }
        if junk_from.is_none() {
            end += n as u64;
        }
    }
    let torn = end < file.metadata().map_err(io_err)?.len();
    prior.count();
    Ok(Some(Scan { prior, end, torn }))
}

/// One record line: `TAG\tINDEX\tEMAIL[\tREASON]\n`. `None` for a comment.
fn parse_line(line: &[u8], recipients: usize) -> Result<Option<(u8, usize)>, &'static str> {
    if line.starts_with(b"#") {
        return Ok(None);
    }
    let mut fields = line.strip_suffix(b"\n").unwrap_or(line).split(|&b| b == b'\t');
    let tag = match fields.next() {
        Some([tag @ (b'A' | b'S' | b'F' | b'U' | b'N')]) => *tag,
        _ => return Err("unknown mark"),
    };
    let index = fields
        .next()
        .and_then(|f| std::str::from_utf8(f).ok())
        .and_then(|f| f.parse::<usize>().ok())
        .ok_or("no recipient number")?;
    if index >= recipients {
        return Err("recipient number out of range");
    }
    if fields.next().is_none_or(<[u8]>::is_empty) {
        return Err("no address");
    }
    Ok(Some((tag, index)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(n: usize) -> Campaign {
        Campaign { fingerprint: Fingerprint::of(&[("x", b"1")]), recipients: n }
    }

    fn journal_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("list.txt.journal")
    }

    #[test]
    fn a_new_journal_then_a_resume_sees_every_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_in(&dir);
        let (j, prior, opened) = Journal::open(&path, campaign(5), false).unwrap();
        assert_eq!(opened, Opened::New);
        assert!(prior.is_empty());
        for (i, mark) in [(0, Mark::Attempt), (0, Mark::Sent), (1, Mark::Attempt)] {
            j.record(i, "a@x.test", mark).unwrap();
        }
        j.record(2, "c@x.test", Mark::Attempt).unwrap();
        j.record(2, "c@x.test", Mark::Failed("550 no\tsuch\nuser")).unwrap();
        j.record(3, "d@x.test", Mark::Attempt).unwrap();
        j.record(3, "d@x.test", Mark::NotSent).unwrap();
        j.record(4, "e@x.test", Mark::Attempt).unwrap();
        j.record(4, "e@x.test", Mark::Unconfirmed("gave up; it may have been delivered")).unwrap();
        j.finish().unwrap();

        let (_j, prior, opened) = Journal::open(&path, campaign(5), false).unwrap();
        assert_eq!(opened, Opened::Resumed { repaired: false });
        assert!(prior.is_sent(0) && !prior.is_sent(1) && !prior.is_sent(2) && !prior.is_sent(4));
        assert!(prior.was_in_flight(1) && !prior.was_in_flight(3) && !prior.was_in_flight(4));
        assert!(prior.may_have_arrived(1) && prior.may_have_arrived(4));
        assert!(!prior.may_have_arrived(2) && !prior.may_have_arrived(3));
        assert_eq!((prior.sent, prior.failed, prior.in_flight, prior.unconfirmed), (1, 1, 1, 1));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("F\t2\tc@x.test\t550 no\\tsuch\\nuser\n"), "{text}");
        assert!(text.contains("U\t4\te@x.test\tgave up; it may"), "{text}");
        assert_eq!(text.matches("# run started").count(), 2, "{text}");
    }

    #[test]
    fn a_sent_mark_is_never_undone() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_in(&dir);
        let (j, ..) = Journal::open(&path, campaign(1), false).unwrap();
        j.record(0, "a@x.test", Mark::Sent).unwrap();
        j.record(0, "a@x.test", Mark::Attempt).unwrap();
        drop(j);
        assert!(Journal::read(&path, campaign(1)).unwrap().is_sent(0));
    }

    #[test]
    fn a_torn_last_line_is_dropped_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_in(&dir);
        let (j, ..) = Journal::open(&path, campaign(3), false).unwrap();
        j.record(0, "a@x.test", Mark::Sent).unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"S\t1\tb@x").unwrap();
        drop(f);
        let (j, prior, opened) = Journal::open(&path, campaign(3), false).unwrap();
        assert_eq!(opened, Opened::Resumed { repaired: true });
        assert!(prior.is_sent(0) && !prior.is_sent(1));
        j.record(2, "c@x.test", Mark::Sent).unwrap();
        drop(j);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("b@x"), "{text}");
        assert!(Journal::read(&path, campaign(3)).unwrap().is_sent(2), "{text}");
    }

    #[test]
    fn a_zero_filled_tail_is_dropped_but_damage_in_the_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_in(&dir);
        let (j, ..) = Journal::open(&path, campaign(3), false).unwrap();
        j.record(0, "a@x.test", Mark::Sent).unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0u8; 700]).unwrap();
        f.write_all(b"\n\0\0\n\0\0").unwrap();
        drop(f);
        let (_j, prior, opened) = Journal::open(&path, campaign(3), false).unwrap();
        assert_eq!(opened, Opened::Resumed { repaired: true });
        assert!(prior.is_sent(0));

        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"S\tnot a number\tb@x\nS\t2\tc@x\n").unwrap();
        drop(f);
        let err = Journal::open(&path, campaign(3), false).unwrap_err().to_string();
        assert!(
            err.contains("list.txt.journal:5: the journal is damaged (no recipient number)"),
            "{err}"
        );
    }

    #[test]
    fn another_campaign_is_refused_and_fresh_keeps_the_old_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_in(&dir);
        let (j, ..) = Journal::open(&path, campaign(2), false).unwrap();
        j.record(0, "a@x.test", Mark::Sent).unwrap();
        drop(j);
        let other = Campaign { fingerprint: Fingerprint::of(&[("x", b"2")]), recipients: 2 };
        let err = Journal::open(&path, other, false).unwrap_err();
        assert!(matches!(err, JournalError::OtherCampaign { .. }), "{err}");
        assert!(err.to_string().contains("--fresh"), "{err}");
        assert!(Journal::open(&path, campaign(3), false).is_err(), "a different count");

        let (_j, prior, opened) = Journal::open(&path, other, true).unwrap();
        assert!(prior.is_empty());
        let Opened::Replaced(aside) = opened else { panic!("{opened:?}") };
        assert!(std::fs::read_to_string(aside).unwrap().contains("S\t0\ta@x.test"));
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_in(&dir);
        std::fs::write(&path, "user1@example.com\n").unwrap();
        let err = Journal::open(&path, campaign(1), false).unwrap_err().to_string();
        assert!(
            err.contains(":1: the journal is damaged (this is not a notify-mailer journal)"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_or_torn_header_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_in(&dir);
        std::fs::write(&path, "notify-mailer jour").unwrap();
        let (j, prior, _) = Journal::open(&path, campaign(1), false).unwrap();
        assert!(prior.is_empty());
        drop(j);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("notify-mailer journal 1 fingerprint="), "{text}");
    }

    #[test]
    fn numbers_without_allocating() {
        let mut buf = [0u8; 20];
        assert_eq!(itoa(0, &mut buf), "0");
        assert_eq!(itoa(usize::MAX, &mut buf), usize::MAX.to_string());
    }
}
