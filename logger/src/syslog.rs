//! [`Syslog`]: RFC 3164 or 5424 over a unix datagram socket, UDP, TCP or TLS, formatted by the
//! caller, sent by a writer thread, truncated to fit a stock rsyslog, with a stderr fallback.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::clock::{self, Stamp};
pub use crate::delivery::{MAX_RETRY_WAIT, REPLAY_MARKER};
use crate::delivery::{Settings, Writer};
use crate::format::{with_line_buffer, write_body};
use crate::queue::{Fallback, Queue};
pub use crate::queue::{QUEUE_BYTES, QUEUE_LINES, SinkStats};
pub use crate::recent::{REPLAY_BYTES, REPLAY_LINES, REPLAY_WINDOW};
use crate::tls::{CaSource, TlsSettings};
use crate::{Facility, Level, Logger, Record, SyslogFormat, SyslogTarget};

/// The longest frame sent by default, header and truncation marker included: stock rsyslog's
/// `maxMessageSize` (8,096 bytes, not 8 KiB). rsyslog counts PRI, header and message (over
/// TCP, not the octet count in front); past the limit it drops the rest of a datagram, and
/// over TCP parses the rest of the frame as a *new record*, which would let a value forge one.
pub const DEFAULT_MAX_LEN: usize = 8096;

/// The least maximum [`Syslog::with_max_len`] accepts: the longest header (a 255-character
/// hostname, a 48-character program) and the marker always fit, and every receiver takes it
/// (RFC 5424 requires 480 bytes).
pub const MIN_MAX_LEN: usize = 480;

/// Ends a message cut down to the maximum length.
pub const TRUNCATION_MARKER: &str = "...[truncated]";

/// Sends records to a syslog daemon without ever making its caller wait on it.
///
/// - **Formats**: RFC 3164 by default on a unix socket, `<PRI>Mmm dd hh:mm:ss prog[pid]: msg`,
///   exactly what glibc's `syslog(3)` sends, which stock rsyslog's imuxsock and journald's
///   `/dev/log` parse (APP-NAME, PROCID, the daemon's own HOSTNAME); RFC 5424 by default over
///   UDP, TCP and TLS, `<PRI>1 2026-11-28T22:12:01.617363Z host prog 4242 - - msg`; either on
///   request ([`Syslog::with_format`]). RFC 3164 over the network carries the hostname too.
///   Timestamps are UTC, also in RFC 3164 (glibc writes local time there): the local daemons
///   stamp each record with its time of arrival and ignore the sender's, an RFC 3164 stamp has
///   no zone for a remote one to read, and a local time needs the zone database, which this
///   crate does not read; on a host in UTC, the usual server setting, the bytes are glibc's.
///   The message is escaped like every text backend: one call, one line.
/// - **Transports**: a unix datagram socket (default `/dev/log`), UDP, TCP or TLS (RFC 5425,
///   with the `tls` feature), the last two with octet-counting framing (`LEN SP MSG`,
///   RFC 6587). TLS verifies the daemon's certificate against the system's roots or the CA
///   given ([`Syslog::with_tls_ca_file`]), for the target's host or the name given.
/// - **Frame size**: the whole frame, PRI and header included, is at most [`DEFAULT_MAX_LEN`]
///   bytes (stock rsyslog's limit; [`Syslog::with_max_len`]). A longer message is cut on a
///   character boundary, never inside one of the escapes (`\n`, `\u{1b}`), and ends with
///   [`TRUNCATION_MARKER`], so the daemon keeps the marker and no byte of a value can reach it
///   as a second record.
/// - **Never blocks its caller**: a call formats the record and copies it into a bounded queue
///   ([`QUEUE_LINES`], [`QUEUE_BYTES`]); a writer thread per sink does the socket I/O,
///   connecting, reconnecting and replaying. When the queue is full the line goes to the
///   fallback (stderr) at once and [`SinkStats::queue_full`] grows: never dropped silently.
///   [`Logger::flush`] waits until what was queued is sent or fell back; dropping the sink
///   does too. A process that exits with the sink still alive (set as the global logger, or
///   `std::process::exit`) calls `flush()` first, or the records still queued are lost with
///   it, as with any asynchronous logger. Records reach the daemon in the order they were
///   logged.
/// - **Reconnection**: a broken connection is replaced at once and the records not yet sent go
///   out on the new one; while the daemon stays away, the writer tries again after the retry
///   interval (default 200 ms), doubling up to [`MAX_RETRY_WAIT`], and sends records to the
///   fallback meanwhile. Over TCP and TLS a watcher thread notices the daemon closing the
///   connection, so the next record goes to a fresh connection instead of into a dead socket.
///   Going down and coming back are announced on the fallback (at most one outage notice per
///   10 s).
/// - **At-least-once across a daemon's death**: syslog has no acknowledgement, so the last
///   lines the kernel accepted before the daemon went away may be lost without an error (a
///   datagram queued in the dead daemon's socket, a TCP frame written after its FIN). Over a
///   unix socket, TCP and TLS the writer keeps the most recent lines (at most [`REPLAY_LINES`]
///   and [`REPLAY_BYTES`], sent within [`REPLAY_WINDOW`] of the failure) in a fixed ring, and
///   when it finds the daemon gone it copies them to the fallback as
///   `logger: PROGRAM possibly undelivered: MESSAGE` ([`REPLAY_MARKER`]): an outage costs
///   duplicates, not losses. Not over UDP, where a dead daemon is never noticed.
/// - **Line checksum** (optional, [`Syslog::with_checksum`]): Boulder's `<checksum> message`,
///   computed over the message as sent.
/// - **Accounting**: [`Syslog::stats`] counts what was sent, what fell back (and of that, what
///   found the queue full) and what was replayed.
///
/// The one wait the sink cannot bound is the fallback itself: stderr redirected to a pipe that
/// nobody reads blocks its writers, as it would any program.
///
/// [`Syslog::new`] does no I/O: the first record starts the writer, which connects.
/// [`Syslog::connect`] connects at once on the calling thread and reports failure instead.
///
/// ```no_run
/// use logger::{Level, Logger, Syslog};
/// let log = Syslog::new("udp:127.0.0.1:514".parse().unwrap(), "svc")
///     .with_level(Level::Info)
///     .connect()
///     .expect("syslog");
/// logger::info!(log, "started"; version = "1.0");
/// ```
pub struct Syslog {
    format: SyslogFormat,
    facility: Facility,
    level: Level,
    hostname: String,
    pid: u32,
    /// The header text that does not change between records, rebuilt by every `with_*`
    /// that affects it: the hot path only appends.
    header: Header,
    max_len: usize,
    /// Boulder's line checksum before the message.
    checksum: bool,
    settings: Settings,
    fallback: Arc<Fallback>,
    /// Started by the first record (or connect); the settings are fixed from then on, and a
    /// `with_*` that changes them afterwards starts a new writer.
    writer: OnceLock<Arc<Writer>>,
}

impl Syslog {
    /// A syslog sink for `target` in its default format ([`SyslogFormat::for_target`]),
    /// facility local0, threshold Debug (everything; put it behind a [`crate::Fanout`] or use
    /// [`Syslog::with_level`]). No I/O happens here.
    pub fn new(target: SyslogTarget, program: &str) -> Self {
        let mut syslog = Syslog {
            format: SyslogFormat::for_target(&target),
            facility: Facility::default(),
            level: Level::Debug,
            hostname: header_word(&gethostname::gethostname().to_string_lossy(), 255),
            pid: std::process::id(),
            header: Header::default(),
            max_len: DEFAULT_MAX_LEN,
            checksum: false,
            settings: Settings {
                target,
                program: header_word(program, 48),
                timeout: Duration::from_secs(1),
                retry_interval: Duration::from_millis(200),
                tls: TlsSettings::default(),
            },
            fallback: Arc::new(Fallback::stderr()),
            writer: OnceLock::new(),
        };
        syslog.header = Header::new(&syslog);
        syslog
    }

    /// RFC 5424 or RFC 3164 headers.
    pub fn with_format(mut self, format: SyslogFormat) -> Self {
        self.format = format;
        self.header = Header::new(&self);
        self
    }

    /// The facility (default local0).
    pub fn with_facility(mut self, facility: Facility) -> Self {
        self.facility = facility;
        self.header = Header::new(&self);
        self
    }

    /// The threshold: records at this level or more severe are sent.
    pub fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The HOSTNAME field (default: this machine's name).
    pub fn with_hostname(mut self, hostname: &str) -> Self {
        self.hostname = header_word(hostname, 255);
        self.header = Header::new(&self);
        self
    }

    /// The longest frame sent, header and marker included, in bytes (default
    /// [`DEFAULT_MAX_LEN`], at least [`MIN_MAX_LEN`]). Raise it only as far as the daemon's own
    /// limit (rsyslog's `maxMessageSize`): past it, rsyslog drops the tail of a datagram and
    /// parses the tail of a TCP frame as a record of its own. Over UDP at most 65,507.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(MIN_MAX_LEN);
        self
    }

    /// Boulder's line checksum on or off (default off): the message is `<checksum> [AUDIT]
    /// message k=v`, the checksum computed over what follows it as sent, after truncation
    /// (see [`crate::checksum()`]), so `log-validator` (ours or Boulder's) accepts the line as
    /// rsyslog writes it to a file, and rejects it if it was cut or altered on the way.
    pub fn with_checksum(mut self, on: bool) -> Self {
        self.checksum = on;
        self
    }

    /// The TCP connect timeout, the TLS handshake timeout and the write timeout of every
    /// transport (default 1 s). Only the writer thread ever waits for it.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        // A zero timeout means "block forever" to the socket API: never that.
        self.settings.timeout = timeout.max(Duration::from_millis(1));
        self.restart_writer()
    }

    /// The wait before the first new connection attempt while the daemon is away (default
    /// 200 ms); it doubles with each failed attempt, up to [`MAX_RETRY_WAIT`].
    pub fn with_retry_interval(mut self, interval: Duration) -> Self {
        self.settings.retry_interval = interval;
        self.restart_writer()
    }

    /// For a `tls:` target: the name the daemon's certificate must hold (default: the host of
    /// the target, a name or an IP address).
    pub fn with_tls_server_name(mut self, name: &str) -> Self {
        self.settings.tls.server_name = Some(name.to_owned());
        self.restart_writer()
    }

    /// For a `tls:` target: trust the CA certificates in this PEM file instead of the
    /// system's roots. The file is read at the first connection attempt; if it cannot be read,
    /// that attempt fails (and says why), as an unreachable daemon would.
    pub fn with_tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.tls.ca = CaSource::File(path.into());
        self.restart_writer()
    }

    /// For a `tls:` target: trust the CA certificates in `pem` instead of the system's roots.
    pub fn with_tls_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.settings.tls.ca = CaSource::Pem(pem.as_ref().into());
        self.restart_writer()
    }

    /// Where undeliverable lines, replayed lines and outage notices go (default stderr).
    pub fn with_fallback(self, fallback: impl Write + Send + 'static) -> Self {
        self.fallback.replace(Box::new(fallback));
        self
    }

    /// Connects now, on the calling thread, returning the error if the daemon cannot be
    /// reached (for UDP this only opens a local socket: whether anyone listens is never known).
    pub fn connect(self) -> io::Result<Self> {
        self.writer().connect_now(false)?;
        Ok(self)
    }

    /// Connects now, on the calling thread, unless already connected. On failure the error is
    /// also announced once on the fallback, and the sink stays usable: the writer tries again
    /// and sends records to the fallback meanwhile.
    pub fn try_connect(&self) -> io::Result<()> {
        self.writer().connect_now(true)
    }

    /// Starts the writer, which connects in the background at once (so an unreachable daemon
    /// is announced at start-up), without waiting for it. What [`crate::new`] does.
    pub(crate) fn start(&self) {
        self.writer.get_or_init(|| self.spawn_writer(true));
    }

    /// Where this sink sends.
    pub fn target(&self) -> &SyslogTarget {
        &self.settings.target
    }

    /// What this sink did with its records so far (since its writer started).
    pub fn stats(&self) -> SinkStats {
        self.writer.get().map(|w| w.queue.stats()).unwrap_or_default()
    }

    /// How many records went to the fallback instead of the daemon ([`SinkStats::fell_back`]).
    pub fn fallback_count(&self) -> u64 {
        self.stats().fell_back
    }

    fn writer(&self) -> &Arc<Writer> {
        self.writer.get_or_init(|| self.spawn_writer(false))
    }

    fn spawn_writer(&self, eager: bool) -> Arc<Writer> {
        let queue = Queue::new(Arc::clone(&self.fallback), QUEUE_BYTES);
        Writer::start(self.settings.clone(), queue, eager)
    }

    /// A setting of the writer changed: the running writer (if any) finishes its queue and
    /// stops; the next record starts one with the new settings.
    fn restart_writer(mut self) -> Self {
        if let Some(w) = self.writer.take() {
            self.stop(&w);
        }
        self
    }

    fn stop(&self, writer: &Writer) {
        writer.queue.flush(self.patience());
        writer.queue.close();
    }

    /// How long `flush` waits for a writer that makes no progress: a failing connect and a
    /// failing send, each bounded by the timeout.
    fn patience(&self) -> Duration {
        self.settings.timeout.saturating_mul(2) + Duration::from_secs(1)
    }

    /// Appends the syslog message for `record` (no framing, no newline), truncated; returns
    /// the time in its timestamp (since the epoch).
    fn format_message(&self, out: &mut String, record: &Record<'_>) -> Duration {
        let start = out.len();
        // `pri` is indexed in `Level::ALL` order, which is the declaration order.
        out.push_str(&self.header.pri[record.level() as usize]);
        let stamp = match self.format {
            SyslogFormat::Rfc5424 => Stamp::Rfc3339,
            SyslogFormat::Rfc3164 => Stamp::Rfc3164,
        };
        let at = clock::write_now(out, stamp);
        out.push_str(&self.header.tail);
        let sum = out.len();
        if self.checksum {
            out.push_str("------ ");
        }
        let body = out.len();
        write_body(out, record);
        truncate(out, start, body, self.max_len);
        if self.checksum {
            let value = crate::checksum(&out.as_bytes()[body..]);
            // Six ASCII bytes over six ASCII bytes: the string stays valid UTF-8.
            out.replace_range(sum..sum + 6, std::str::from_utf8(&value).unwrap_or("------"));
        }
        at
    }
}

impl Logger for Syslog {
    fn enabled(&self, level: Level) -> bool {
        level <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() > self.level {
            return;
        }
        let writer = self.writer();
        with_line_buffer(|line| {
            let at = self.format_message(line, record);
            let mut digits = [0u8; 24];
            let framing = match self.settings.target.is_stream() {
                true => octet_count(&mut digits, line.len()),
                false => &[],
            };
            if !writer.queue.push(framing, line.as_bytes(), at) {
                line.push('\n');
                writer.queue.fallback.write(line.as_bytes());
                writer.queue.count_fell_back(1);
            }
        });
    }

    fn flush(&self) {
        if let Some(w) = self.writer.get() {
            w.queue.flush(self.patience());
        }
        self.fallback.flush();
    }
}

impl Drop for Syslog {
    /// What was logged is sent (or falls back) before the sink goes, within the flush bound;
    /// the writer thread then exits.
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            self.stop(&w);
        }
    }
}

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syslog")
            .field("target", &self.settings.target)
            .field("format", &self.format)
            .field("facility", &self.facility)
            .field("level", &self.level)
            .field("program", &self.settings.program)
            .field("max_len", &self.max_len)
            .field("checksum", &self.checksum)
            .finish_non_exhaustive()
    }
}

/// `LEN SP`, the octet-counting prefix of a frame of `len` bytes, rendered into `buf`.
fn octet_count(buf: &mut [u8; 24], len: usize) -> &[u8] {
    let mut w = &mut buf[..];
    // 24 bytes hold any usize and the space, so this write cannot fail.
    let _ = write!(w, "{len} ");
    let n = 24 - w.len();
    &buf[..n]
}

/// The constant parts of a header: per level `<PRI>` (and the `1 ` version for RFC 5424), and
/// what follows the timestamp: ` HOST APP PID - - ` (5424) or ` [HOST ]TAG[PID]: ` (3164).
#[derive(Default)]
struct Header {
    pri: [String; 4],
    tail: String,
}

impl Header {
    fn new(s: &Syslog) -> Header {
        let program = &s.settings.program;
        let version = match s.format {
            SyslogFormat::Rfc5424 => "1 ",
            SyslogFormat::Rfc3164 => "",
        };
        let pri = Level::ALL.map(|level| {
            let pri = u32::from(s.facility.code()) * 8 + u32::from(level.severity());
            format!("<{pri}>{version}")
        });
        // An RFC 3164 TAG ends at `[` or `:`: those would cut the program name short.
        let tag = || program.replace(['[', ']', ':'], "_");
        let tail = match s.format {
            SyslogFormat::Rfc5424 => format!(" {} {program} {} - - ", s.hostname, s.pid),
            // On a local socket the daemon adds the hostname, as glibc's syslog(3) expects.
            SyslogFormat::Rfc3164 if matches!(s.settings.target, SyslogTarget::Unix(_)) => {
                format!(" {}[{}]: ", tag(), s.pid)
            }
            SyslogFormat::Rfc3164 => format!(" {} {}[{}]: ", s.hostname, tag(), s.pid),
        };
        Header { pri, tail }
    }
}

/// A header field (HOSTNAME, APP-NAME) must be printable ASCII without spaces (RFC 5424
/// PRINTUSASCII), at most `max` characters; anything else becomes `_`, and empty becomes `-`.
fn header_word(s: &str, max: usize) -> String {
    let w: String =
        s.chars().take(max).map(|c| if c.is_ascii_graphic() { c } else { '_' }).collect();
    if w.is_empty() { "-".to_owned() } else { w }
}

/// Cuts the message `out[start..]` (whose body, the escaped text, starts at `body`) to at most
/// `max` bytes ending with the marker: on a character boundary, and not inside an escape.
fn truncate(out: &mut String, start: usize, body: usize, max: usize) {
    if out.len() - start <= max {
        return;
    }
    let mut cut = (start + max.saturating_sub(TRUNCATION_MARKER.len())).max(body);
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = escape_boundary(out.as_bytes(), body, cut);
    out.truncate(cut);
    out.push_str(TRUNCATION_MARKER);
}

/// Moves `cut` back (not before `from`) so that `s[..cut]` does not end inside an escape the
/// text backends write: an opened `\u{...}`, or a backslash whose escaped character is past
/// the cut (an odd run of backslashes: pairs are escaped backslashes). Only ASCII bytes are
/// stepped over, so a character boundary stays one.
fn escape_boundary(s: &[u8], from: usize, mut cut: usize) -> usize {
    // `\u{10ffff}` is the longest escape: an unclosed one starts at most 9 bytes back.
    let window = cut.saturating_sub(9).max(from);
    if let Some(p) = s[window..cut].iter().rposition(|&b| b == b'\\') {
        let tail = &s[window + p + 1..cut];
        let open = tail.first() == Some(&b'u')
            && tail[1..].iter().all(|&b| b == b'{' || b.is_ascii_hexdigit())
            && tail.get(1).is_none_or(|&b| b == b'{');
        if open {
            cut = window + p;
        }
    }
    let run = s[from..cut].iter().rev().take_while(|&&b| b == b'\\').count();
    if run % 2 == 1 {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(s: &Syslog, record: &Record<'_>) -> String {
        let mut out = String::new();
        s.format_message(&mut out, record);
        out
    }

    fn udp() -> SyslogTarget {
        "udp:127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn rfc5424_header() {
        let s = Syslog::new(udp(), "my app").with_hostname("host1");
        let m = message(&s, &Record::new(Level::Warning, format_args!("hi")).with_audit(true));
        // local0 (16) * 8 + 4
        let rest = m.strip_prefix("<132>1 ").unwrap();
        let (ts, rest) = rest.split_once(' ').unwrap();
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        assert_eq!(rest, format!("host1 my_app {} - - [AUDIT] hi", std::process::id()));
    }

    #[test]
    fn the_default_format_follows_the_transport() {
        let rec = Record::new(Level::Err, format_args!("x"));
        let unix = Syslog::new(SyslogTarget::default(), "p").with_facility(Facility::Mail);
        let m = message(&unix, &rec);
        // mail (2) * 8 + 3; "<19>Nov 28 22:12:01 p[pid]: x", as glibc writes it
        assert!(m.starts_with("<19>"), "{m}");
        assert_eq!(&m[19..], format!(" p[{}]: x", std::process::id()), "{m}");
        for target in [udp(), "tcp:127.0.0.1:9".parse().unwrap()] {
            assert!(message(&Syslog::new(target, "p"), &rec).starts_with("<131>1 "));
        }
        let explicit = Syslog::new(SyslogTarget::default(), "p").with_format(SyslogFormat::Rfc5424);
        assert!(message(&explicit, &rec).starts_with("<131>1 "));
    }

    #[test]
    fn rfc3164_over_the_network_carries_the_hostname_and_a_clean_tag() {
        let rec = Record::new(Level::Err, format_args!("x"));
        let s = Syslog::new(udp(), "a:b[c]").with_format(SyslogFormat::Rfc3164).with_hostname("h");
        let m = message(&s, &rec);
        assert!(m.ends_with(&format!(" h a_b_c_[{}]: x", std::process::id())), "{m}");
    }

    #[test]
    fn truncates_the_whole_frame_on_a_char_boundary_with_marker() {
        let s = Syslog::new(udp(), "p").with_max_len(500);
        for pad in 0..4 {
            let long = format!("{}{}", "x".repeat(pad), "é".repeat(500));
            let m = message(&s, &Record::new(Level::Info, format_args!("{long}")));
            assert!(m.len() <= 500 && m.len() >= 499, "{}", m.len());
            assert!(m.ends_with(TRUNCATION_MARKER));
        }
        let short = message(&s, &Record::new(Level::Info, format_args!("short")));
        assert!(short.ends_with(" short"));
        let exact = Syslog::new(udp(), "p").with_max_len(500);
        let header = message(&exact, &Record::new(Level::Info, format_args!(""))).len();
        let fits = "y".repeat(500 - header);
        let m = message(&exact, &Record::new(Level::Info, format_args!("{fits}")));
        assert_eq!((m.len(), m.ends_with('y')), (500, true), "exactly the limit is not cut");
        let over = format!("{fits}y");
        let m = message(&exact, &Record::new(Level::Info, format_args!("{over}")));
        assert_eq!((m.len(), m.ends_with(TRUNCATION_MARKER)), (500, true));
        assert_eq!(Syslog::new(udp(), "p").with_max_len(1).max_len, MIN_MAX_LEN);
    }

    #[test]
    fn the_cut_never_splits_an_escape() {
        let s = Syslog::new(udp(), "p").with_max_len(500);
        let header = message(&s, &Record::new(Level::Info, format_args!(""))).len();
        let room = 500 - TRUNCATION_MARKER.len() - header;
        // Every alignment of each escape against the cut.
        for escape in ["\n", "\u{1b}", "\u{10ffff}\u{85}", "\\", "\""] {
            for shift in 0..12 {
                let text = format!("{}{}", "a".repeat(room - shift), escape.repeat(30));
                let value = format!("v {text}");
                let fields = [crate::Field::new("k", &value)];
                for m in [
                    message(&s, &Record::new(Level::Info, format_args!("{text}"))),
                    message(&s, &Record::new(Level::Info, format_args!("")).with_fields(&fields)),
                ] {
                    assert!(m.len() <= 500, "{}", m.len());
                    let kept = m.strip_suffix(TRUNCATION_MARKER).unwrap_or_else(|| panic!("{m}"));
                    let tail = &kept[kept.len().saturating_sub(12)..];
                    let backslashes = kept.bytes().rev().take_while(|&b| b == b'\\').count();
                    assert!(backslashes % 2 == 0, "{escape:?} shift {shift}: dangling: {tail}");
                    let open = kept.rfind("\\u").is_some_and(|i| !kept[i..].contains('}'));
                    assert!(!open, "{escape:?} shift {shift}: open \\u{{: {tail}");
                    assert!(kept.len() + 12 >= 500 - TRUNCATION_MARKER.len(), "cut too much");
                }
            }
        }
    }

    #[test]
    fn escape_boundary_cases() {
        let cut = |s: &str| escape_boundary(s.as_bytes(), 0, s.len());
        assert_eq!(cut("ab"), 2);
        assert_eq!(cut("ab\\"), 2);
        assert_eq!(cut("ab\\\\"), 4);
        assert_eq!(cut("ab\\\\\\"), 4);
        assert_eq!(cut("ab\\u"), 2);
        assert_eq!(cut("ab\\u{1"), 2);
        assert_eq!(cut("ab\\u{1b}"), 8);
        assert_eq!(cut("ab\\\\u{1b"), 2, "a literal backslash then u{{1b: cut before the pair");
        assert_eq!(cut("ab\\n"), 4);
    }

    #[test]
    fn the_checksum_covers_the_message_as_sent_after_truncation() {
        for max in [DEFAULT_MAX_LEN, MIN_MAX_LEN] {
            let s = Syslog::new(udp(), "p").with_checksum(true).with_max_len(max);
            for text in ["short é \n", &"long ".repeat(3000)] {
                let m = message(&s, &Record::new(Level::Info, format_args!("{text}")));
                assert!(m.len() <= max, "{}", m.len());
                let after = m.split_once(" - - ").unwrap().1;
                let (sum, body) = after.split_once(' ').unwrap();
                assert_eq!(sum.as_bytes(), crate::checksum(body.as_bytes()), "{m}");
                let line = format!("2026-11-28T22:12:01+00:00 h p[1]: {after}");
                assert_eq!(crate::check_line(line.as_bytes()), crate::LineCheck::Ok, "{line}");
            }
        }
    }

    #[test]
    fn octet_counting_prefix() {
        let mut buf = [0u8; 24];
        assert_eq!(octet_count(&mut buf, 8096), b"8096 ");
        assert_eq!(octet_count(&mut buf, usize::MAX).len(), 21);
    }

    #[test]
    fn header_words_are_printable() {
        assert_eq!(header_word("a b\u{e9}", 48), "a_b_");
        assert_eq!(header_word("", 48), "-");
        assert_eq!(header_word(&"x".repeat(60), 48).len(), 48);
    }
}
