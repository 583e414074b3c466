//! [`Journald`]: the systemd journal's native protocol, one datagram per record, or a sealed
//! memfd for a record larger than a datagram; sent by a writer thread, replayed across a
//! journald restart.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::clock::{self, Stamp};
use crate::delivery::{REPLAY_MARKER, retry_wait};
use crate::format::{escape_into, push_value, with_line_buffer};
use crate::queue::{Batch, Fallback, Queue, SinkStats};
use crate::recent::Recent;
use crate::syslog::TRUNCATION_MARKER;
use crate::transport::{is_timeout, is_too_large};
use crate::{Level, Logger, Record};

/// journald's socket on a systemd machine.
pub const DEFAULT_SOCKET: &str = "/run/systemd/journal/socket";

/// The most fields one record sends. journald ignores, silently, an entry with more than 1,024
/// fields (its fix for CVE-2018-16865); the fields past this many are sent together, as
/// `key=value` text, in one `EXTRA_FIELDS` field.
pub const MAX_FIELDS: usize = 1000;

pub use crate::queue::JOURNALD_QUEUE_BYTES;

/// A payload up to this size is tried as one datagram first; a larger one (or one the socket
/// refuses as too large, beyond its send buffer) goes as a memfd.
const DATAGRAM_TRY: usize = 256 * 1024;

/// Sends each record to the journal: `PRIORITY` (exactly 3, 4, 6 or 7), `SYSLOG_IDENTIFIER`,
/// `SYSLOG_PID`, `MESSAGE` (with `[AUDIT] ` on audit records, as in every text backend),
/// `AUDIT=1` on audit records, and each field under its upper-cased key.
///
/// The journal stores values as they are, so nothing is escaped and nothing is cut: a value
/// holding a newline is sent in the protocol's length-prefixed form and stays one field of one
/// entry, and a record larger than one datagram (the socket's send buffer, about 208 KiB) goes
/// whole through a sealed memfd passed with `SCM_RIGHTS`, as systemd's own clients do. Keys are
/// upper-cased, characters outside `[A-Z0-9_]` become `_`, a leading `_` or digit is prefixed
/// with `F`, and keys that would collide with the ones above get an `F_` prefix. At most
/// [`MAX_FIELDS`] fields go as fields of their own.
///
/// Like [`crate::Syslog`], the caller only encodes and queues (at most
/// [`crate::syslog::QUEUE_LINES`] records and [`JOURNALD_QUEUE_BYTES`]); a writer thread sends each
/// record to the socket path (so a restarted journald is picked up with no state to repair).
/// A record that cannot be sent, or finds the queue full, is written to stderr in the short
/// format (`HH:MM:SS.ffffff 6 prog message KEY=value`), after one notice per outage. When a
/// send fails after others succeeded, journald may have died with records still queued in its
/// socket: the last ones sent (within [`crate::syslog::REPLAY_WINDOW`]) are copied to stderr as
/// `logger: PROG possibly undelivered: ...`, so a restart costs duplicates, not losses.
///
/// ```no_run
/// use logger::{Journald, Level, Logger};
/// let log = Journald::new("svc").with_level(Level::Info);
/// logger::audit_info!(log, "granted"; user = "alice");
/// ```
pub struct Journald {
    path: PathBuf,
    program: String,
    pid: String,
    level: Level,
    retry_interval: Duration,
    fallback: Arc<Fallback>,
    writer: OnceLock<Arc<JournalWriter>>,
}

impl Journald {
    /// A journald sink on [`DEFAULT_SOCKET`], threshold Debug. Never fails: whether the
    /// journal is there is found out by the writer, per record.
    pub fn new(program: &str) -> Self {
        Journald {
            path: PathBuf::from(DEFAULT_SOCKET),
            program: program.to_owned(),
            pid: std::process::id().to_string(),
            level: Level::Debug,
            retry_interval: Duration::from_millis(200),
            fallback: Arc::new(Fallback::stderr()),
            writer: OnceLock::new(),
        }
    }

    /// Sends to `path` instead of [`DEFAULT_SOCKET`] (tests bind their own receiver).
    pub fn with_socket_path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = path.as_ref().to_owned();
        self.restart_writer()
    }

    /// The threshold: records at this level or more severe are sent.
    pub fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// While the journal is away, the wait before the next attempt (default 200 ms, doubling
    /// with each failure up to [`crate::syslog::MAX_RETRY_WAIT`]); records go to stderr
    /// meanwhile.
    pub fn with_retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self.restart_writer()
    }

    /// Where records go when the journal cannot take them (default stderr).
    pub fn with_fallback(self, fallback: impl Write + Send + 'static) -> Self {
        self.fallback.replace(Box::new(fallback));
        self
    }

    /// The socket path records are sent to.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// What this sink did with its records so far.
    pub fn stats(&self) -> SinkStats {
        self.writer.get().map(|w| w.queue.stats()).unwrap_or_default()
    }

    /// How many records went to the fallback instead of the journal.
    pub fn fallback_count(&self) -> u64 {
        self.stats().fell_back
    }

    fn writer(&self) -> &Arc<JournalWriter> {
        self.writer.get_or_init(|| {
            JournalWriter::start(JournalWriter {
                queue: Queue::new(Arc::clone(&self.fallback), JOURNALD_QUEUE_BYTES),
                path: self.path.clone(),
                program: crate::stdout::sanitize_program(&self.program),
                retry_interval: self.retry_interval,
                link: Mutex::new(Link::default()),
            })
        })
    }

    fn restart_writer(mut self) -> Self {
        if let Some(w) = self.writer.take() {
            w.stop();
        }
        self
    }

    /// Appends the native-protocol payload for `record` to `out`.
    fn encode(&self, out: &mut Vec<u8>, record: &Record<'_>) {
        push_field(out, "PRIORITY", &[b'0' + record.level().severity()]);
        push_field(out, "SYSLOG_IDENTIFIER", self.program.as_bytes());
        push_field(out, "SYSLOG_PID", self.pid.as_bytes());
        if record.is_audit() {
            push_field(out, "AUDIT", b"1");
        }
        with_line_buffer(|text| {
            if record.is_audit() {
                text.push_str("[AUDIT] ");
            }
            write_message_raw(text, record);
            push_field(out, "MESSAGE", text.as_bytes());
            let fields = record.fields();
            let own = MAX_FIELDS - 5;
            for field in fields.iter().take(own) {
                text.clear();
                // Writing to a String cannot fail; a failing Display impl just stops early.
                let _ = write!(text, "{}", field.value);
                let key_start = out.len();
                push_key(out, field.key);
                push_value_bytes(out, key_start, text.as_bytes());
            }
            if fields.len() > own {
                text.clear();
                crate::format::write_fields(text, &fields[own..]);
                push_field(out, "EXTRA_FIELDS", text.trim_start().as_bytes());
            }
        });
    }
}

impl Logger for Journald {
    fn enabled(&self, level: Level) -> bool {
        level <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() > self.level {
            return;
        }
        let writer = self.writer();
        let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        with_payload_buffer(|payload| {
            self.encode(payload, record);
            if !writer.queue.push(&[], payload, at) {
                writer.fall_back(&[(payload, at)]);
            }
        });
    }

    fn flush(&self) {
        if let Some(w) = self.writer.get() {
            w.queue.flush(PATIENCE);
        }
        self.fallback.flush();
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            w.stop();
        }
    }
}

impl std::fmt::Debug for Journald {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journald")
            .field("path", &self.path)
            .field("program", &self.program)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// The write timeout of the journal socket: journald reads fast, but a wedged one must not
/// wedge the writer for long.
const TIMEOUT: Duration = Duration::from_secs(1);

/// How long `flush` waits for a writer that makes no progress.
const PATIENCE: Duration = Duration::from_secs(3);

/// The journald writer thread and the state of its link.
struct JournalWriter {
    queue: Queue,
    path: PathBuf,
    program: String,
    retry_interval: Duration,
    link: Mutex<Link>,
}

#[derive(Default)]
struct Link {
    /// Never connected: `send_to` per record follows a restarted journald.
    socket: Option<UnixDatagram>,
    failing: bool,
    announced: bool,
    last_notice: Option<Instant>,
    last_attempt: Option<Instant>,
    failed_attempts: u32,
    recent: Recent,
}

impl JournalWriter {
    fn start(writer: JournalWriter) -> Arc<JournalWriter> {
        let writer = Arc::new(writer);
        let w = Arc::clone(&writer);
        let spawned = std::thread::Builder::new().name("journald-writer".into()).spawn(move || {
            w.queue.run(|batch| w.deliver(batch), |batch| w.fall_back_batch(batch, 0));
        });
        if let Err(e) = spawned {
            writer.notice(&format!("cannot start the journald writer thread ({e})"));
            writer.queue.close();
        }
        writer
    }

    fn stop(&self) {
        self.queue.flush(PATIENCE);
        self.queue.close();
    }

    fn lock_link(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deliver(&self, batch: &Batch) {
        let mut link = self.lock_link();
        for i in 0..batch.len() {
            if link.failing {
                let wait = retry_wait(self.retry_interval, link.failed_attempts);
                if link.last_attempt.is_some_and(|t| t.elapsed() < wait) {
                    drop(link);
                    return self.fall_back_batch(batch, i);
                }
            }
            let payload = batch.message(i);
            match self.send(&mut link, payload) {
                Ok(()) => {
                    link.recent.push(payload, batch.at(i));
                    self.queue.count_sent(1);
                    link.failed_attempts = 0;
                    if std::mem::take(&mut link.failing) && link.announced {
                        let path = self.path.display();
                        self.notice(&format!("journald {path} is back; delivering again"));
                    }
                }
                Err(e) => {
                    if !link.failing {
                        self.notice_down(&mut link, &e);
                        self.replay(&mut link);
                    }
                    link.failing = true;
                    link.last_attempt = Some(Instant::now());
                    link.failed_attempts = link.failed_attempts.saturating_add(1);
                    if is_timeout(&e) {
                        // A socket that blocked for the timeout needs a fresh start.
                        link.socket = None;
                    }
                    self.fall_back(&[(payload, batch.at(i))]);
                }
            }
            self.queue.advance(1);
        }
    }

    /// One record to the journal: a datagram if it fits, else a sealed memfd.
    fn send(&self, link: &mut Link, payload: &[u8]) -> io::Result<()> {
        let socket = match &mut link.socket {
            Some(socket) => socket,
            none => {
                let socket = UnixDatagram::unbound()?;
                socket.set_write_timeout(Some(TIMEOUT))?;
                none.insert(socket)
            }
        };
        if payload.len() <= DATAGRAM_TRY {
            match socket.send_to(payload, &self.path) {
                Ok(n) if n == payload.len() => return Ok(()),
                Ok(_) => {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "datagram sent short"));
                }
                Err(e) if is_too_large(&e) || is_no_buffer(&e) => {}
                Err(e) => return Err(e),
            }
        }
        send_memfd(socket, &self.path, payload)
    }

    /// Records `from..` of `batch` to the fallback, the notice of the outage first if the
    /// queue was the reason (the writer announces its own failures).
    fn fall_back_batch(&self, batch: &Batch, from: usize) {
        let records: Vec<(&[u8], Duration)> =
            (from..batch.len()).map(|i| (batch.message(i), batch.at(i))).collect();
        self.fall_back(&records);
        self.queue.advance(records.len());
    }

    /// Writes records as short-format lines to the fallback, in one write.
    fn fall_back(&self, records: &[(&[u8], Duration)]) {
        let mut out = String::new();
        for (payload, at) in records {
            text_line(&mut out, payload, *at);
        }
        self.queue.fallback.write(out.as_bytes());
        self.queue.count_fell_back(records.len());
    }

    /// The records sent just before the failure may have died in journald's socket: copied to
    /// the fallback, marked, each at most once.
    fn replay(&self, link: &mut Link) {
        let mut out = String::new();
        let prefix = format!("logger: {} {REPLAY_MARKER}", self.program);
        let n = link.recent.drain(None, |payload, at| {
            out.push_str(&prefix);
            text_line(&mut out, payload, at);
        });
        if n > 0 {
            self.queue.fallback.write(out.as_bytes());
            self.queue.count_replayed(n);
        }
    }

    fn notice_down(&self, link: &mut Link, e: &io::Error) {
        let now = Instant::now();
        link.announced = link.last_notice.is_none_or(|t| now.duration_since(t) >= NOTICE_INTERVAL);
        if link.announced {
            link.last_notice = Some(now);
            let path = self.path.display();
            self.notice(&format!(
                "journald {path} unavailable ({e}); records go to stderr until it is back"
            ));
        }
    }

    /// One line on the fallback, escaped (a path may hold any byte).
    fn notice(&self, text: &str) {
        let mut line = format!("logger: {} ", self.program);
        escape_into(&mut line, text);
        line.push('\n');
        self.queue.fallback.write(line.as_bytes());
    }
}

/// The least time between two outage notices.
const NOTICE_INTERVAL: Duration = Duration::from_secs(10);

/// ENOBUFS: the datagram is larger than the socket can ever take (seen for big payloads).
fn is_no_buffer(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::NOBUFS.raw_os_error())
}

/// Sends `payload` as the contents of a sealed memfd: an empty datagram carrying the file
/// descriptor. journald reads the file (it must be sealed against change) as one entry.
fn send_memfd(socket: &UnixDatagram, path: &Path, payload: &[u8]) -> io::Result<()> {
    use std::mem::MaybeUninit;
    use std::os::fd::AsFd;

    use rustix::fs::{MemfdFlags, SealFlags};
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix};

    let fd = rustix::fs::memfd_create(
        "logger-journald",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(payload)?;
    let seals = SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL;
    rustix::fs::fcntl_add_seals(&file, seals)?;
    let addr = SocketAddrUnix::new(path)?;
    let fds = [file.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg_addr(socket, &addr, &[], &mut control, SendFlags::empty())?;
    Ok(())
}

/// Runs `f` with an empty, reused, thread-local byte buffer (a payload is not UTF-8: its
/// lengths are binary).
fn with_payload_buffer<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    thread_local! {
        static PAYLOAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    crate::format::with_reused(&PAYLOAD, f)
}

/// The message unescaped: the journal keeps values binary-safe, so a newline stays a newline.
fn write_message_raw(out: &mut String, record: &Record<'_>) {
    match record.message().as_str() {
        Some(s) => out.push_str(s),
        None => {
            // Writing to a String cannot fail; a failing Display impl just stops early.
            let _ = out.write_fmt(record.message());
        }
    }
}

/// Appends `KEY=value\n`, or `KEY\n<u64 LE length>value\n` when the value holds a newline.
fn push_field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let key_start = out.len();
    out.extend_from_slice(key.as_bytes());
    push_value_bytes(out, key_start, value);
}

/// Appends the value of the field whose key was just written (from `key_start`).
fn push_value_bytes(out: &mut Vec<u8>, key_start: usize, value: &[u8]) {
    debug_assert!(out.len() > key_start);
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Appends `key` as a journal field name: `[A-Z0-9_]`, not starting with `_` or a digit, at
/// most 64 bytes, and never one of the fields this backend sets itself.
fn push_key(out: &mut Vec<u8>, key: &str) {
    let start = out.len();
    out.extend(key.bytes().map(|b| match b.to_ascii_uppercase() {
        c @ (b'A'..=b'Z' | b'0'..=b'9' | b'_') => c,
        _ => b'_',
    }));
    // A multi-byte character became several `_`: one per byte, as before, harmless.
    let name = &out[start..];
    let reserved = matches!(
        name,
        b"MESSAGE"
            | b"PRIORITY"
            | b"SYSLOG_IDENTIFIER"
            | b"SYSLOG_PID"
            | b"AUDIT"
            | b"EXTRA_FIELDS"
    );
    if reserved {
        out.splice(start..start, *b"F_");
    } else if name.is_empty() || name[0] == b'_' || name[0].is_ascii_digit() {
        out.insert(start, b'F');
    }
    out.truncate(start + (out.len() - start).min(64));
}

/// A payload's `(key, value)` pairs, and whether it was cut short.
type Fields<'a> = (Vec<(&'a [u8], &'a [u8])>, bool);

/// The fields of a payload, leniently: a payload cut short (the replay ring keeps at most
/// 64 KiB of one) ends with the part of its last value that is there, and `true`.
fn payload_fields(mut p: &[u8]) -> Fields<'_> {
    let mut fields = Vec::new();
    while !p.is_empty() {
        let Some(nl) = p.iter().position(|&b| b == b'\n') else {
            // A cut `KEY=val`: keep what is there.
            return match p.iter().position(|&b| b == b'=') {
                Some(eq) => {
                    fields.push((&p[..eq], &p[eq + 1..]));
                    (fields, true)
                }
                None => (fields, true),
            };
        };
        let line = &p[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((&line[..eq], &line[eq + 1..]));
            p = &p[nl + 1..];
            continue;
        }
        let rest = &p[nl + 1..];
        let Some(len) = rest.get(..8) else { return (fields, true) };
        let len = u64::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        let value = &rest[8..];
        if value.len() <= len {
            fields.push((line, value));
            return (fields, true);
        }
        fields.push((line, &value[..len]));
        p = value.get(len + 1..).unwrap_or_default();
    }
    (fields, false)
}

/// Appends the short-format line for a payload sent (or meant to be sent) at `at`:
/// `HH:MM:SS.ffffff 6 prog [AUDIT] message KEY=value`, escaped, and `\n`.
fn text_line(out: &mut String, payload: &[u8], at: Duration) {
    // A whole payload ends with `\n`; one the replay ring had to cut ends with the marker.
    let marked = payload.strip_suffix(TRUNCATION_MARKER.as_bytes());
    let (fields, cut) = payload_fields(marked.unwrap_or(payload));
    let cut = cut || marked.is_some();
    let get = |key: &[u8]| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    clock::write_at(out, Stamp::TimeOfDay, at);
    out.push(' ');
    escape_into(out, &text(get(b"PRIORITY").unwrap_or(b"6")));
    out.push(' ');
    // One word, as the program column of stdout.
    out.push_str(&crate::stdout::sanitize_program(&text(
        get(b"SYSLOG_IDENTIFIER").unwrap_or(b"-"),
    )));
    out.push(' ');
    escape_into(out, &text(get(b"MESSAGE").unwrap_or_default()));
    for (key, value) in &fields {
        let own = matches!(
            *key,
            b"PRIORITY" | b"SYSLOG_IDENTIFIER" | b"SYSLOG_PID" | b"MESSAGE" | b"AUDIT"
        );
        if !own {
            out.push(' ');
            escape_into(out, &text(key));
            out.push('=');
            push_value(out, &text(value));
        }
    }
    if cut {
        out.push_str(TRUNCATION_MARKER);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> String {
        let mut out = Vec::new();
        push_key(&mut out, k);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keys_are_journal_names() {
        for (input, want) in [
            ("delay_ms", "DELAY_MS"),
            ("peer.addr", "PEER_ADDR"),
            ("message", "F_MESSAGE"),
            ("priority", "F_PRIORITY"),
            ("extra_fields", "F_EXTRA_FIELDS"),
            ("_secret", "F_SECRET"),
            ("2fa", "F2FA"),
            ("", "F"),
        ] {
            assert_eq!(key(input), want, "{input}");
        }
        assert_eq!(key(&"k".repeat(100)).len(), 64);
    }

    #[test]
    fn multi_line_values_are_length_prefixed() {
        let mut out = Vec::new();
        push_field(&mut out, "MESSAGE", b"a\nb");
        assert_eq!(out, b"MESSAGE\n\x03\0\0\0\0\0\0\0a\nb\n");
        out.clear();
        push_field(&mut out, "K", b"v");
        assert_eq!(out, b"K=v\n");
    }

    #[test]
    fn a_payload_reads_back_as_one_short_format_line() {
        let mut p = Vec::new();
        push_field(&mut p, "PRIORITY", b"3");
        push_field(&mut p, "SYSLOG_IDENTIFIER", b"svc");
        push_field(&mut p, "SYSLOG_PID", b"42");
        push_field(&mut p, "AUDIT", b"1");
        push_field(&mut p, "MESSAGE", b"[AUDIT] two\nlines");
        push_field(&mut p, "USER", b"al ice");
        let mut out = String::new();
        // 2026-11-28T22:12:01.617363Z
        text_line(&mut out, &p, Duration::new(1_795_903_921, 617_363_000));
        assert_eq!(out, "22:12:01.617363 3 svc [AUDIT] two\\nlines USER=\"al ice\"\n");
        // Cut anywhere (and marked, as the replay ring keeps a payload too large for it), it
        // is still one line, marked.
        for cut in 1..p.len() {
            let mut kept = p[..cut].to_vec();
            kept.extend_from_slice(TRUNCATION_MARKER.as_bytes());
            out.clear();
            text_line(&mut out, &kept, Duration::ZERO);
            assert_eq!(out.matches('\n').count(), 1, "cut at {cut}: {out:?}");
            assert!(out.ends_with("...[truncated]\n"), "cut at {cut}: {out:?}");
        }
    }

    #[test]
    fn too_many_fields_fold_into_one() {
        let values: Vec<String> = (0..1500).map(|i| format!("v{i}")).collect();
        let keys: Vec<String> = (0..1500).map(|i| format!("k{i}")).collect();
        let fields: Vec<crate::Field<'_>> =
            keys.iter().zip(&values).map(|(k, v)| crate::Field::new(k, v)).collect();
        let log = Journald::new("p");
        let mut p = Vec::new();
        log.encode(&mut p, &Record::new(Level::Info, format_args!("m")).with_fields(&fields));
        let (got, cut) = payload_fields(&p);
        assert!(!cut);
        assert_eq!(got.len(), MAX_FIELDS);
        let (k, v) = got.last().unwrap();
        assert_eq!(*k, b"EXTRA_FIELDS");
        let v = std::str::from_utf8(v).unwrap();
        assert!(v.starts_with("k995=v995 k996=v996") && v.ends_with(" k1499=v1499"), "{v}");
    }
}
