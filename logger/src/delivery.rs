//! The syslog writer thread: it takes batches of formatted records from the sink's queue and
//! owns everything that can wait on a daemon: connecting, sending, reconnecting, the replay
//! ring and the outage notices. Callers never touch any of it.
//!
//! The policy, in full. A connection that breaks (the daemon restarted) is replaced at once and
//! the records that were not sent go out on the new one. While the daemon stays away, a new
//! attempt is made at most every `retry_wait` (the retry interval, doubling with each failed
//! attempt up to [`MAX_RETRY_WAIT`]); records in between go straight to the fallback. A send
//! that times out (the daemon is alive but not reading) counts as a failed attempt, not a
//! broken connection: the writer backs off instead of filling one fresh socket buffer after
//! another. A datagram too large for the socket falls back alone. Going down and coming back
//! are announced on the fallback, at most one outage notice per [`NOTICE_INTERVAL`].

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::SyslogTarget;
use crate::queue::{Batch, Queue};
use crate::recent::Recent;
use crate::tls::TlsSettings;
use crate::transport::{Conn, TcpConn, closed_by_daemon, is_timeout, is_too_large};

/// The longest wait between two connection attempts while the daemon stays away: the bound on
/// how long delivery takes to resume after a long outage.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Marks a line copied to the fallback because it may not have reached the daemon: the
/// fallback line is `logger: PROGRAM possibly undelivered: MESSAGE`.
pub const REPLAY_MARKER: &str = "possibly undelivered: ";

/// The least time between two outage notices on the fallback.
const NOTICE_INTERVAL: Duration = Duration::from_secs(10);

/// What the writer needs to know about its sink; fixed once the writer runs.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) target: SyslogTarget,
    /// The program name as in the header: it names the sink in notices.
    pub(crate) program: String,
    pub(crate) timeout: Duration,
    pub(crate) retry_interval: Duration,
    pub(crate) tls: TlsSettings,
}

/// One sink's writer: its queue, and the state of its link to the daemon.
pub(crate) struct Writer {
    pub(crate) queue: Queue,
    settings: Settings,
    link: Mutex<Link>,
}

#[derive(Default)]
struct Link {
    conn: Option<Conn>,
    /// Connected, nothing sent on it yet: a first send that fails is a failed attempt, so a
    /// daemon that accepts and hangs up at once is retried at the backoff's pace.
    fresh: bool,
    /// When the last connection attempt ended.
    last_attempt: Option<Instant>,
    /// Failed attempts since the last success: the wait before the next one doubles with each.
    failed_attempts: u32,
    /// Whether the daemon is away (set by a failure, cleared by a delivery).
    failing: bool,
    /// Whether this outage was announced on the fallback (so its end is announced too).
    announced: bool,
    last_notice: Option<Instant>,
    /// The lines sent on the current connection that may not have been delivered yet.
    recent: Recent,
    /// Fallback lines are built here and written in one call.
    scratch: Vec<u8>,
    #[cfg(feature = "tls")]
    tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl Writer {
    /// Starts the writer thread for a sink; `eager` connects at once instead of at the first
    /// record (so an unreachable daemon is announced at start-up). When no thread can be
    /// started, the queue is closed and every record goes to the fallback.
    pub(crate) fn start(settings: Settings, queue: Queue, eager: bool) -> Arc<Writer> {
        let writer = Arc::new(Writer { queue, settings, link: Mutex::new(Link::default()) });
        let w = Arc::clone(&writer);
        let spawned = std::thread::Builder::new().name("syslog-writer".into()).spawn(move || {
            if eager {
                let mut link = w.lock_link();
                if link.conn.is_none() {
                    w.reconnect(&mut link, false);
                }
            }
            w.queue
                .run(|batch| w.deliver(batch), |batch| w.fall_back(&mut w.lock_link(), batch, 0));
        });
        if let Err(e) = spawned {
            writer.notice(&format!(
                "cannot start the syslog writer thread ({e}); lines go to stderr"
            ));
            writer.queue.close();
        }
        writer
    }

    fn lock_link(&self) -> MutexGuard<'_, Link> {
        // A panic while holding the lock cannot leave a half-built Link behind.
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connects now unless connected (on the caller's thread: this is the one place a caller
    /// waits, by asking to). `announce` reports a failure on the fallback too.
    pub(crate) fn connect_now(self: &Arc<Self>, announce: bool) -> io::Result<()> {
        let mut link = self.lock_link();
        if link.conn.is_some() {
            return Ok(());
        }
        let result = self.open(&mut link);
        link.last_attempt = Some(Instant::now());
        match result {
            Ok(conn) => {
                link.conn = Some(conn);
                link.fresh = true;
                Ok(())
            }
            Err(e) => {
                link.failed_attempts = link.failed_attempts.saturating_add(1);
                if announce {
                    self.notice_down(&mut link, &e);
                }
                Err(e)
            }
        }
    }

    /// Sends a batch: every record is either accepted by the daemon's socket or written to
    /// the fallback, in order.
    fn deliver(self: &Arc<Self>, batch: &Batch) {
        let mut link = self.lock_link();
        let mut i = 0;
        let mut just_broke = false;
        while i < batch.len() {
            if link.conn.is_none() && !self.reconnect(&mut link, just_broke) {
                return self.fall_back(&mut link, batch, i);
            }
            just_broke = false;
            let Some(conn) = link.conn.as_mut() else { break };
            let out = conn.send(batch, i);
            if conn.keeps_replay() {
                for j in i..i + out.sent {
                    link.recent.push(batch.message(j), batch.at(j));
                }
            }
            self.queue.count_sent(out.sent);
            self.queue.advance(out.sent);
            i += out.sent;
            if out.sent > 0 && std::mem::take(&mut link.fresh) {
                self.recovered(&mut link);
            }
            let Some(e) = out.error else { continue };
            if is_too_large(&e) {
                // This record alone cannot go as one datagram; the connection is fine.
                self.fall_back_one(&mut link, batch, i);
                i += 1;
                continue;
            }
            let fresh = std::mem::take(&mut link.fresh);
            link.conn = None;
            self.notice_down(&mut link, &e);
            self.replay(&mut link, None);
            if fresh || is_timeout(&e) {
                // A connection that fails at once, or a daemon that stopped reading: back off.
                link.failed_attempts = link.failed_attempts.saturating_add(1);
                link.last_attempt = Some(Instant::now());
            } else {
                just_broke = true;
            }
        }
    }

    /// Opens a new connection if one is due; false when the records at hand must fall back.
    fn reconnect(self: &Arc<Self>, link: &mut Link, just_broke: bool) -> bool {
        let wait = retry_wait(self.settings.retry_interval, link.failed_attempts);
        let due = just_broke || link.last_attempt.is_none_or(|t| t.elapsed() >= wait);
        if !due {
            return false;
        }
        let result = self.open(link);
        link.last_attempt = Some(Instant::now());
        match result {
            Ok(conn) => {
                link.conn = Some(conn);
                link.fresh = true;
                true
            }
            Err(e) => {
                link.failed_attempts = link.failed_attempts.saturating_add(1);
                self.notice_down(link, &e);
                false
            }
        }
    }

    fn open(self: &Arc<Self>, link: &mut Link) -> io::Result<Conn> {
        let timeout = self.settings.timeout;
        match &self.settings.target {
            SyslogTarget::Unix(path) => Conn::unix(path, timeout),
            SyslogTarget::Udp(addr) => Conn::udp(*addr, timeout),
            SyslogTarget::Tcp(addr) => {
                let stream = TcpConn::connect(*addr, timeout)?;
                let (closed, on_hang_up) = self.watcher();
                TcpConn::watch(stream, closed, on_hang_up).map(Conn::Tcp)
            }
            #[cfg(feature = "tls")]
            SyslogTarget::Tls { addr, host } => {
                let config = match &link.tls_config {
                    Some(c) => Arc::clone(c),
                    None => {
                        let c = crate::tls::client_config(&self.settings.tls)?;
                        link.tls_config = Some(Arc::clone(&c));
                        c
                    }
                };
                let name = self.settings.tls.server_name.as_deref().unwrap_or(host);
                let (closed, on_hang_up) = self.watcher();
                crate::tls::TlsConn::open(*addr, name, timeout, &config, closed, on_hang_up)
                    .map(|t| Conn::Tls(Box::new(t)))
            }
            #[cfg(not(feature = "tls"))]
            SyslogTarget::Tls { .. } => {
                let _ = link;
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this build of the logger has no TLS (feature `tls`)",
                ))
            }
        }
    }

    /// The flag a stream's watcher sets and what it calls when the daemon hangs up. A weak
    /// handle: the watcher of a dropped sink must not keep it alive.
    fn watcher(self: &Arc<Self>) -> (Arc<AtomicBool>, impl FnOnce() + Send + 'static) {
        let closed = Arc::new(AtomicBool::new(false));
        let (flag, writer) = (Arc::clone(&closed), Arc::downgrade(self));
        (closed, move || {
            if let Some(w) = writer.upgrade() {
                w.hung_up(&flag);
            }
        })
    }

    /// The daemon closed the connection watched by `closed`: if it is still the current one,
    /// the outage is announced and the lines that may be lost replayed now, without waiting
    /// for the next record. The connection stays in place, marked closed, so the next record
    /// replaces it at once.
    fn hung_up(&self, closed: &Arc<AtomicBool>) {
        let mut link = self.lock_link();
        if link.conn.as_ref().is_some_and(|c| c.is_watched_by(closed)) {
            self.notice_down(&mut link, &closed_by_daemon());
            // The hang-up is seen as it happens: lines sent long before it were read.
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            self.replay(&mut link, Some(now));
        }
    }

    /// Records `from..` of `batch` go to the fallback, one line each, in one write.
    fn fall_back(&self, link: &mut Link, batch: &Batch, from: usize) {
        let Link { scratch, .. } = link;
        scratch.clear();
        for i in from..batch.len() {
            scratch.extend_from_slice(batch.message(i));
            scratch.push(b'\n');
        }
        let n = batch.len().saturating_sub(from);
        if n > 0 {
            self.queue.fallback.write(scratch);
            self.queue.count_fell_back(n);
            self.queue.advance(n);
        }
    }

    fn fall_back_one(&self, link: &mut Link, batch: &Batch, i: usize) {
        let Link { scratch, .. } = link;
        scratch.clear();
        scratch.extend_from_slice(batch.message(i));
        scratch.push(b'\n');
        self.queue.fallback.write(scratch);
        self.queue.count_fell_back(1);
        self.queue.advance(1);
    }

    /// Copies the lines that may not have reached the daemon to the fallback, marked, in one
    /// write; each at most once. `noticed_at` (since the epoch) ends the replay window when
    /// the failure was seen as it happened; otherwise the window ends at the last line sent.
    fn replay(&self, link: &mut Link, noticed_at: Option<Duration>) {
        let prefix = format!("logger: {} {REPLAY_MARKER}", self.settings.program);
        let Link { recent, scratch, .. } = link;
        scratch.clear();
        let n = recent.drain_into(scratch, prefix.as_bytes(), noticed_at);
        if n > 0 {
            self.queue.fallback.write(scratch);
            self.queue.count_replayed(n);
        }
    }

    fn recovered(&self, link: &mut Link) {
        link.failed_attempts = 0;
        if std::mem::take(&mut link.failing) && link.announced {
            let target = &self.settings.target;
            self.notice(&format!("syslog {target} is back; delivering again"));
        }
    }

    fn notice_down(&self, link: &mut Link, e: &io::Error) {
        if link.failing {
            return;
        }
        link.failing = true;
        let now = Instant::now();
        link.announced = link.last_notice.is_none_or(|t| now.duration_since(t) >= NOTICE_INTERVAL);
        if link.announced {
            link.last_notice = Some(now);
            self.notice(&format!(
                "syslog {} unavailable ({e}); lines go to stderr until it is back",
                self.settings.target
            ));
        }
    }

    /// One line on the fallback. `text` names the target (a unix path may hold any byte) and
    /// an OS error, so it is escaped like a message: a notice cannot forge a line either.
    fn notice(&self, text: &str) {
        let mut line = format!("logger: {} ", self.settings.program);
        crate::escape_into(&mut line, text);
        line.push('\n');
        self.queue.fallback.write(line.as_bytes());
    }
}

/// The wait before the next connection attempt after `failed` failed ones in a row: `base`,
/// then doubling, at most [`MAX_RETRY_WAIT`] (or `base`, if that is longer).
pub(crate) fn retry_wait(base: Duration, failed: u32) -> Duration {
    let doublings = failed.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(MAX_RETRY_WAIT.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
