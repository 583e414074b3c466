//! [`Syslog`]: RFC 5424 or 3164 over a unix datagram socket, UDP or TCP, with reconnection,
//! truncation and a stderr fallback.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::clock::{self, Stamp};
use crate::format::{with_line_buffer, write_body};
use crate::recent::Recent;
pub use crate::recent::{REPLAY_BYTES, REPLAY_LINES, REPLAY_WINDOW};
use crate::{Facility, Level, Logger, Record, SyslogFormat, SyslogTarget};

/// rsyslog's default `maxMessageSize`: longer messages would be cut by the daemon anyway.
pub const DEFAULT_MAX_LEN: usize = 8 * 1024;

/// The longest wait between two connection attempts while the daemon stays away: the bound on
/// how long delivery takes to resume after a long outage.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Appended to a message cut down to the maximum length.
pub const TRUNCATION_MARKER: &str = "...[truncated]";

/// Marks a line copied to the fallback because it may not have reached the daemon: the
/// fallback line is `logger: PROGRAM possibly undelivered: MESSAGE`.
pub const REPLAY_MARKER: &str = "possibly undelivered: ";

/// Sends records to a syslog daemon.
///
/// - **Formats**: RFC 5424 (default) `<PRI>1 2026-11-28T22:12:01.617363Z host prog 4242 - -
///   [AUDIT] message key=value`, or RFC 3164 `<PRI>Nov 28 22:12:01 prog[4242]: message`
///   (the hostname is included over UDP and TCP and left to the daemon on a unix socket, as
///   glibc does). Timestamps are UTC. The body is escaped like every text backend.
/// - **Transports**: a unix datagram socket (default `/dev/log`), UDP, or TCP with
///   octet-counting framing (`LEN SP MSG`, RFC 6587).
/// - **Reconnection**: when a send fails, the socket is recreated at once and the line sent
///   again. While the daemon stays away, one thread at a time tries a new connection, the
///   first retry after the retry interval (default 200 ms), each further one after twice the
///   previous wait, up to [`MAX_RETRY_WAIT`]; the others write to the fallback meanwhile. Over
///   TCP a watcher thread notices the daemon closing the connection, so the next line goes to
///   a fresh connection instead of into a dead socket.
/// - **Never fails, never blocks forever**: a line that cannot be delivered is written whole
///   to the fallback (stderr by default) in one write; connects and writes time out (default
///   1 s), so a wedged daemon costs one thread one timeout per retry, not every line a
///   timeout. Going down and coming back are announced on the fallback (at most one outage
///   notice per 10 s). The one wait the sink cannot bound is the fallback itself: stderr
///   redirected to a pipe that nobody reads blocks its writers, as it would any program.
/// - **At-least-once across a daemon's death**: syslog has no acknowledgement, so the last
///   lines the kernel accepted before the daemon went away may be lost without an error (a
///   datagram queued in the dead daemon's socket, a TCP frame written after its FIN). Over a
///   unix socket or TCP the sink keeps the most recent lines (at most [`REPLAY_LINES`] and
///   [`REPLAY_BYTES`], sent within [`REPLAY_WINDOW`] of the failure) in a fixed ring, and
///   when it finds the daemon gone (a send fails, or the TCP watcher sees the hang-up) it
///   copies them to the fallback as `logger: PROGRAM possibly undelivered: MESSAGE`
///   ([`REPLAY_MARKER`]): an outage costs duplicates, not losses. Keeping a line costs one
///   copy into a buffer allocated once (64 KiB per sink), no allocation per line. Not over
///   UDP, where a dead daemon is never noticed.
/// - **Truncation**: messages longer than the maximum (default 8 KiB, rsyslog's default) are
///   cut on a UTF-8 boundary and end with [`TRUNCATION_MARKER`].
///
/// On a unix socket, mind the daemon's parser: rsyslog's `imuxsock` parses local messages
/// with a special RFC 3164 parser by default, which stores RFC 5424 lines intact but with
/// APP-NAME and HOSTNAME wrong. Either set `UseSpecialParser="off"` on the input (as this
/// crate's rsyslog tests do) or send RFC 3164 to `/dev/log`.
///
/// [`Syslog::new`] does no I/O: the first record connects. [`Syslog::connect`] connects at
/// once and reports failure to the caller instead.
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
    timeout: Duration,
    retry_interval: Duration,
    shared: Arc<Shared>,
}

/// What the TCP watcher thread needs too: it reports a hang-up itself, so the lines that may
/// be lost reach the fallback even if the process logs nothing more.
struct Shared {
    target: SyslogTarget,
    program: String,
    state: Mutex<State>,
    /// Signalled when a connection attempt made outside the lock ends.
    attempt_done: Condvar,
    fallback: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct State {
    conn: Option<Conn>,
    /// When the last connection attempt ended.
    last_attempt: Option<Instant>,
    /// Failed attempts since the last success: the wait before the next one doubles with each.
    failed_attempts: u32,
    /// Whether the daemon is away (set by a failure, cleared on recovery).
    failing: bool,
    /// Whether some thread is opening a new connection, outside the lock: a TCP connect to a
    /// host that drops SYNs takes the whole timeout, and during an outage no other thread
    /// waits for it.
    connecting: bool,
    /// Whether this outage was announced on the fallback (so its end is announced too).
    announced: bool,
    /// When an outage was last announced: a daemon that flaps (accepts, then hangs up, again
    /// and again) gets one notice per [`NOTICE_INTERVAL`], not two per line.
    last_notice: Option<Instant>,
    /// The lines sent on the current connection that may not have been delivered yet
    /// (unix and TCP only).
    recent: Recent,
}

/// The least time between two outage notices on the fallback.
const NOTICE_INTERVAL: Duration = Duration::from_secs(10);

impl Syslog {
    /// A syslog sink for `target` with RFC 5424, facility local0, threshold Debug (everything;
    /// put it behind a [`crate::Fanout`] or use [`Syslog::with_level`]). No I/O happens here.
    pub fn new(target: SyslogTarget, program: &str) -> Self {
        let mut syslog = Syslog {
            format: SyslogFormat::default(),
            facility: Facility::default(),
            level: Level::Debug,
            hostname: header_word(&gethostname::gethostname().to_string_lossy(), 255),
            pid: std::process::id(),
            header: Header::default(),
            max_len: DEFAULT_MAX_LEN,
            timeout: Duration::from_secs(1),
            retry_interval: Duration::from_millis(200),
            shared: Arc::new(Shared {
                target,
                program: header_word(program, 48),
                state: Mutex::new(State::default()),
                attempt_done: Condvar::new(),
                fallback: Mutex::new(Box::new(io::stderr())),
            }),
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

    /// The longest message sent, header included, in bytes (default [`DEFAULT_MAX_LEN`]).
    /// Values below 64 are raised to 64 so the header and marker always fit.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(64);
        self
    }

    /// The TCP connect timeout and the write timeout of every transport (default 1 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        // A zero timeout means "block forever" to the socket API: never that.
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The wait before the first new connection attempt while the daemon is away (default
    /// 200 ms); it doubles with each failed attempt, up to [`MAX_RETRY_WAIT`].
    pub fn with_retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Where undeliverable lines, replayed lines and outage notices go (default stderr).
    pub fn with_fallback(self, fallback: impl Write + Send + 'static) -> Self {
        *self.shared.fallback.lock().unwrap_or_else(PoisonError::into_inner) = Box::new(fallback);
        self
    }

    /// Connects now, returning the error if the daemon cannot be reached (for UDP this only
    /// opens a local socket: whether anyone listens is never known).
    pub fn connect(self) -> io::Result<Self> {
        self.open_now()?;
        Ok(self)
    }

    /// Connects now unless already connected. On failure the error is also announced once on
    /// the fallback, and the sink stays usable: later records try again and go to the
    /// fallback meanwhile. This is what [`crate::new`] uses.
    pub fn try_connect(&self) -> io::Result<()> {
        self.open_now().inspect_err(|e| self.shared.notice_down(&mut self.shared.lock_state(), e))
    }

    fn open_now(&self) -> io::Result<()> {
        let mut state = self.shared.lock_state();
        if state.conn.is_none() {
            let conn = self.open_conn();
            state.last_attempt = Some(Instant::now());
            state.conn = Some(conn?);
        }
        Ok(())
    }

    /// Where this sink sends.
    pub fn target(&self) -> &SyslogTarget {
        &self.shared.target
    }

    fn open_conn(&self) -> io::Result<Conn> {
        Conn::open(&self.shared.target, self.timeout, Arc::downgrade(&self.shared))
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
        write_body(out, record);
        truncate(out, start, self.max_len);
        at
    }

    /// Sends one message (`msg[body..]` without its framing), reconnecting as the policy
    /// allows; false when it was not delivered. A message the kernel accepts is kept in the
    /// replay ring under the same lock as the send, so a failure noticed by another thread
    /// replays either all of it or none.
    fn deliver(&self, msg: &[u8], body: usize, at: Duration) -> bool {
        let mut state = self.shared.lock_state();
        if state.connecting && !state.failing {
            // The first connection (or a reconnect before any failure was seen) is under way,
            // normally for microseconds: wait for it rather than divert a line that would
            // have been delivered. Bounded, like everything here.
            let limit = self.timeout.saturating_mul(2) + Duration::from_millis(100);
            let done = &self.shared.attempt_done;
            state = match done.wait_timeout_while(state, limit, |s| s.connecting) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        let had_conn = match state.conn.as_mut().map(|c| c.send(msg)) {
            Some(Ok(())) => {
                state.remember(msg, body, at);
                return true;
            }
            Some(Err(e)) => {
                state.conn = None;
                self.shared.notice_down(&mut state, &e);
                self.shared.replay(&mut state, None);
                true
            }
            None => false,
        };
        // A connection that just broke is replaced at once (the daemon restarted); while the
        // daemon stays away, attempts are spaced by `retry_wait`, so a busy service does not
        // spend its time in connect(). One thread connects; during an outage the others fall
        // back meanwhile.
        let wait = retry_wait(self.retry_interval, state.failed_attempts);
        let due = state.last_attempt.is_none_or(|t| t.elapsed() >= wait);
        if state.connecting || (!had_conn && !due) {
            return false;
        }
        state.connecting = true;
        drop(state);
        let result = self.open_conn().and_then(|mut conn| {
            conn.send(msg)?;
            Ok(conn)
        });
        let mut state = self.shared.lock_state();
        state.connecting = false;
        state.last_attempt = Some(Instant::now());
        self.shared.attempt_done.notify_all();
        match result {
            Ok(conn) => {
                let hung_up = matches!(&conn, Conn::Tcp(t) if t.closed.load(Ordering::Acquire));
                state.conn = Some(conn);
                state.remember(msg, body, at);
                state.failed_attempts = 0;
                if state.failing {
                    state.failing = false;
                    if state.announced {
                        let target = &self.shared.target;
                        self.shared.notice(&format!("syslog {target} is back; delivering again"));
                    }
                }
                if hung_up {
                    // The daemon hung up before the connection was installed, so its watcher
                    // found nothing to replay: do it here.
                    self.shared.notice_down(&mut state, &closed_by_daemon());
                    self.shared.replay(&mut state, None);
                }
                true
            }
            Err(e) => {
                // A connection that broke a moment ago and cannot be replaced at once is an
                // outage starting; count it so the waits grow from the base interval.
                state.failed_attempts = state.failed_attempts.saturating_add(1);
                self.shared.notice_down(&mut state, &e);
                false
            }
        }
    }
}

impl State {
    /// Keeps a delivered message for replay, except over UDP (whose failures are never seen).
    fn remember(&mut self, msg: &[u8], body: usize, at: Duration) {
        if !matches!(self.conn, Some(Conn::Udp(..))) {
            self.recent.push(&msg[body..], at);
        }
    }
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-built State behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies the lines that may not have reached the daemon to the fallback, marked, in one
    /// write; each at most once. `noticed_at` (since the epoch) ends the replay window when
    /// the failure was seen as it happened; otherwise the window ends at the last line sent.
    fn replay(&self, state: &mut State, noticed_at: Option<Duration>) {
        let prefix = format!("logger: {} {REPLAY_MARKER}", self.program);
        let mut out = Vec::new();
        if state.recent.drain_into(&mut out, prefix.as_bytes(), noticed_at) > 0 {
            self.write_fallback(&out);
        }
    }

    /// Called by the TCP watcher when the daemon closed connection `closed`: if it is still
    /// the current one, the outage is announced and the lines that may be lost replayed now,
    /// without waiting for the next line. The connection stays in place, marked closed, so
    /// the next line replaces it at once.
    fn hung_up(&self, closed: &Arc<AtomicBool>) {
        let mut state = self.lock_state();
        let current = matches!(&state.conn, Some(Conn::Tcp(t)) if Arc::ptr_eq(&t.closed, closed));
        if current {
            self.notice_down(&mut state, &closed_by_daemon());
            // The hang-up is seen as it happens: lines sent long before it were read.
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            self.replay(&mut state, Some(now));
        }
    }

    fn notice_down(&self, state: &mut State, e: &io::Error) {
        if state.failing {
            return;
        }
        state.failing = true;
        let now = Instant::now();
        state.announced =
            state.last_notice.is_none_or(|t| now.duration_since(t) >= NOTICE_INTERVAL);
        if state.announced {
            state.last_notice = Some(now);
            self.notice(&format!(
                "syslog {} unavailable ({e}); lines go to stderr until it is back",
                self.target
            ));
        }
    }

    /// One line on the fallback. `text` names the target (a unix path may hold any byte) and
    /// an OS error, so it is escaped like a message: a notice cannot forge a line either.
    fn notice(&self, text: &str) {
        let mut line = format!("logger: {} ", self.program);
        crate::escape_into(&mut line, text);
        line.push('\n');
        self.write_fallback(line.as_bytes());
    }

    fn write_fallback(&self, bytes: &[u8]) {
        let mut w = self.fallback.lock().unwrap_or_else(PoisonError::into_inner);
        // The fallback is the last resort: if stderr fails too there is nowhere left to say so.
        let _ = w.write_all(bytes);
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
        with_line_buffer(|line| {
            let at = self.format_message(line, record);
            let mut body = 0;
            if matches!(self.shared.target, SyslogTarget::Tcp(_)) {
                // Octet counting: the frame is `LEN SP MSG`, built in place to keep one write
                // (the length rendered on the stack: no allocation per line).
                let mut digits = [0u8; 24];
                let mut w = &mut digits[..];
                // 24 bytes hold any usize and the space, so this write cannot fail.
                let _ = write!(w, "{} ", line.len());
                let n = 24 - w.len();
                line.insert_str(0, std::str::from_utf8(&digits[..n]).unwrap_or_default());
                body = n;
            }
            if !self.deliver(line.as_bytes(), body, at) {
                line.push('\n');
                self.shared.write_fallback(&line.as_bytes()[body..]);
            }
        });
    }

    fn flush(&self) {
        let _ = self.shared.fallback.lock().unwrap_or_else(PoisonError::into_inner).flush();
    }
}

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syslog")
            .field("target", &self.shared.target)
            .field("format", &self.format)
            .field("facility", &self.facility)
            .field("level", &self.level)
            .field("program", &self.shared.program)
            .finish_non_exhaustive()
    }
}

/// The constant parts of a header: per level `<PRI>` (and the `1 ` version for RFC 5424), and
/// what follows the timestamp: ` HOST APP PID - - ` (5424) or ` [HOST ]APP[PID]: ` (3164).
#[derive(Default)]
struct Header {
    pri: [String; 4],
    tail: String,
}

impl Header {
    fn new(s: &Syslog) -> Header {
        let program = &s.shared.program;
        let version = match s.format {
            SyslogFormat::Rfc5424 => "1 ",
            SyslogFormat::Rfc3164 => "",
        };
        let pri = Level::ALL.map(|level| {
            let pri = u32::from(s.facility.code()) * 8 + u32::from(level.severity());
            format!("<{pri}>{version}")
        });
        let tail = match s.format {
            SyslogFormat::Rfc5424 => format!(" {} {program} {} - - ", s.hostname, s.pid),
            // On a local socket the daemon adds the hostname, as glibc's syslog(3) expects.
            SyslogFormat::Rfc3164 if matches!(s.shared.target, SyslogTarget::Unix(_)) => {
                format!(" {program}[{}]: ", s.pid)
            }
            SyslogFormat::Rfc3164 => format!(" {} {program}[{}]: ", s.hostname, s.pid),
        };
        Header { pri, tail }
    }
}

/// One open transport.
enum Conn {
    Unix(UnixDatagram),
    /// Not connected: a connected UDP socket reports the ICMP "port unreachable" of one
    /// datagram as an error on a later send, which would make lines flap between the daemon
    /// and the fallback. UDP syslog is fire-and-forget.
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpConn),
}

impl Conn {
    /// Opens a connection; a TCP watcher reports a hang-up to `shared` (if it still exists).
    fn open(target: &SyslogTarget, timeout: Duration, shared: Weak<Shared>) -> io::Result<Conn> {
        match target {
            SyslogTarget::Unix(path) => open_unix(path, timeout).map(Conn::Unix),
            SyslogTarget::Udp(addr) => {
                let local: SocketAddr =
                    if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                let socket = UdpSocket::bind(local)?;
                socket.set_write_timeout(Some(timeout))?;
                Ok(Conn::Udp(socket, *addr))
            }
            SyslogTarget::Tcp(addr) => TcpConn::open(*addr, timeout, shared).map(Conn::Tcp),
        }
    }

    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let sent = match self {
            Conn::Unix(s) => s.send(msg)?,
            Conn::Udp(s, addr) => s.send_to(msg, *addr)?,
            Conn::Tcp(t) => return t.send(msg),
        };
        if sent == msg.len() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::WriteZero, "datagram sent short"))
        }
    }
}

fn open_unix(path: &Path, timeout: Duration) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    // A daemon that stops reading fills its queue; a timeout turns that into a fallback line
    // instead of a blocked service.
    socket.set_write_timeout(Some(timeout))?;
    socket.connect(path)?;
    Ok(socket)
}

/// A TCP connection plus a watcher thread that marks it closed when the daemon hangs up and
/// replays the lines that may have been lost. A daemon never sends anything on a syslog
/// connection, so any return from `read` means the connection is over; without this the first
/// line after a daemon restart would be written into a dead socket and lost without an error.
struct TcpConn {
    stream: TcpStream,
    closed: Arc<AtomicBool>,
}

impl TcpConn {
    fn open(addr: SocketAddr, timeout: Duration, shared: Weak<Shared>) -> io::Result<TcpConn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let closed = Arc::new(AtomicBool::new(false));
        let mut reader = stream.try_clone()?;
        let flag = Arc::clone(&closed);
        std::thread::Builder::new().name("syslog-tcp-watch".into()).spawn(move || {
            let mut buf = [0u8; 256];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            // Set before taking the state lock: a send that holds the lock now either sees the
            // flag or has its line in the ring before `hung_up` replays it.
            flag.store(true, Ordering::Release);
            // A weak handle: the watcher of a dropped sink must not keep it alive.
            if let Some(shared) = shared.upgrade() {
                shared.hung_up(&flag);
            }
        })?;
        Ok(TcpConn { stream, closed })
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_by_daemon());
        }
        self.stream.write_all(frame)
    }
}

impl Drop for TcpConn {
    fn drop(&mut self) {
        // Wakes the watcher thread so it exits and releases its handle on the socket.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

fn closed_by_daemon() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the daemon")
}

/// The wait before the next connection attempt after `failed` failed ones in a row: `base`,
/// then doubling, at most [`MAX_RETRY_WAIT`] (or `base`, if that is longer).
fn retry_wait(base: Duration, failed: u32) -> Duration {
    let doublings = failed.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(MAX_RETRY_WAIT.max(base))
}

/// A header field (HOSTNAME, APP-NAME) must be printable ASCII without spaces (RFC 5424
/// PRINTUSASCII), at most `max` characters; anything else becomes `_`, and empty becomes `-`.
fn header_word(s: &str, max: usize) -> String {
    let w: String =
        s.chars().take(max).map(|c| if c.is_ascii_graphic() { c } else { '_' }).collect();
    if w.is_empty() { "-".to_owned() } else { w }
}

/// Cuts `out[start..]` to at most `max` bytes, on a char boundary, ending with the marker.
fn truncate(out: &mut String, start: usize, max: usize) {
    if out.len() - start <= max {
        return;
    }
    let mut cut = start + max.saturating_sub(TRUNCATION_MARKER.len());
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    out.push_str(TRUNCATION_MARKER);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(s: &Syslog, record: &Record<'_>) -> String {
        let mut out = String::new();
        s.format_message(&mut out, record);
        out
    }

    #[test]
    fn rfc5424_header() {
        let s = Syslog::new(SyslogTarget::default(), "my app").with_hostname("host1");
        let m = message(&s, &Record::new(Level::Warning, format_args!("hi")).with_audit(true));
        // local0 (16) * 8 + 4
        let rest = m.strip_prefix("<132>1 ").unwrap();
        let (ts, rest) = rest.split_once(' ').unwrap();
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        assert_eq!(rest, format!("host1 my_app {} - - [AUDIT] hi", std::process::id()));
    }

    #[test]
    fn rfc3164_header_with_and_without_hostname() {
        let rec = Record::new(Level::Err, format_args!("x"));
        let unix = Syslog::new(SyslogTarget::default(), "p")
            .with_format(SyslogFormat::Rfc3164)
            .with_facility(Facility::Mail);
        let m = message(&unix, &rec);
        // mail (2) * 8 + 3; "<19>Nov 28 22:12:01 p[pid]: x"
        assert!(m.starts_with("<19>"), "{m}");
        assert_eq!(&m[19..], format!(" p[{}]: x", std::process::id()), "{m}");
        let udp = Syslog::new("udp:127.0.0.1:9".parse().unwrap(), "p")
            .with_format(SyslogFormat::Rfc3164)
            .with_hostname("h");
        let m = message(&udp, &rec);
        assert!(m.ends_with(&format!(" h p[{}]: x", std::process::id())), "{m}");
    }

    #[test]
    fn truncates_on_a_char_boundary_with_marker() {
        let s = Syslog::new(SyslogTarget::default(), "p").with_max_len(100);
        let long = "é".repeat(500);
        let m = message(&s, &Record::new(Level::Info, format_args!("{long}")));
        assert!(m.len() <= 100, "{}", m.len());
        assert!(m.ends_with(TRUNCATION_MARKER));
        assert!(m.len() > 90, "cut too much: {}", m.len());
        let short = message(&s, &Record::new(Level::Info, format_args!("short")));
        assert!(short.ends_with(" short"));
    }

    #[test]
    fn retry_waits_double_up_to_the_cap() {
        let ms = Duration::from_millis;
        let waits: Vec<Duration> = (0..8).map(|n| retry_wait(ms(200), n)).collect();
        assert_eq!(
            waits,
            [ms(200), ms(200), ms(400), ms(800), ms(1600), ms(3200), ms(5000), ms(5000)]
        );
        assert_eq!(retry_wait(ms(200), u32::MAX), MAX_RETRY_WAIT);
        assert_eq!(retry_wait(Duration::ZERO, 5), Duration::ZERO);
        assert_eq!(retry_wait(Duration::from_secs(9), 3), Duration::from_secs(9));
    }

    #[test]
    fn header_words_are_printable() {
        assert_eq!(header_word("a b\u{e9}", 48), "a_b_");
        assert_eq!(header_word("", 48), "-");
        assert_eq!(header_word(&"x".repeat(60), 48).len(), 48);
    }
}
