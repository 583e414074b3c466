//! One open syslog transport ([`Conn`]): a unix datagram socket, UDP, TCP, or TLS over TCP, and
//! how a batch of queued records goes out on it.
//!
//! Datagrams carry one record each. A stream carries octet-counted frames back to back, so a
//! batch goes out in as few writes as the kernel allows; the records whose bytes it accepted
//! whole count as sent, and the one it took only part of is sent again whole on the next
//! connection (the daemon, gone, never parsed the part).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::queue::Batch;

/// How far [`Conn::send`] got: records `from..from + sent` were accepted; `error` is why it
/// stopped early.
pub(crate) struct Sent {
    pub(crate) sent: usize,
    pub(crate) error: Option<io::Error>,
}

/// One open transport.
pub(crate) enum Conn {
    Unix(UnixDatagram),
    /// Not connected: a connected UDP socket reports the ICMP "port unreachable" of one
    /// datagram as an error on a later send, which would make lines flap between the daemon
    /// and the fallback. UDP syslog is fire-and-forget.
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpConn),
    /// Boxed: a TLS session is a kilobyte of state, the other transports a socket.
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsConn>),
}

impl Conn {
    pub(crate) fn unix(path: &Path, timeout: Duration) -> io::Result<Conn> {
        let socket = UnixDatagram::unbound()?;
        // A daemon that stops reading fills its queue; a timeout turns that into fallback lines
        // instead of a writer stuck for ever.
        socket.set_write_timeout(Some(timeout))?;
        socket.connect(path)?;
        Ok(Conn::Unix(socket))
    }

    pub(crate) fn udp(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let local: SocketAddr =
            if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local)?;
        socket.set_write_timeout(Some(timeout))?;
        Ok(Conn::Udp(socket, addr))
    }

    /// Whether lines sent on this transport are kept for replay: not over UDP, where a dead
    /// daemon is never noticed.
    pub(crate) fn keeps_replay(&self) -> bool {
        !matches!(self, Conn::Udp(..))
    }

    /// Whether this is the stream whose watcher owns `closed`.
    pub(crate) fn is_watched_by(&self, closed: &Arc<AtomicBool>) -> bool {
        match self {
            Conn::Tcp(t) => Arc::ptr_eq(&t.closed, closed),
            #[cfg(feature = "tls")]
            Conn::Tls(t) => Arc::ptr_eq(&t.tcp.closed, closed),
            Conn::Unix(_) | Conn::Udp(..) => false,
        }
    }

    /// Sends records `from..` of `batch`, in order, stopping at the first error.
    pub(crate) fn send(&mut self, batch: &Batch, from: usize) -> Sent {
        match self {
            Conn::Unix(s) => send_datagrams(batch, from, |d| s.send(d)),
            Conn::Udp(s, addr) => send_datagrams(batch, from, |d| s.send_to(d, *addr)),
            Conn::Tcp(t) => {
                if t.is_closed() {
                    return Sent { sent: 0, error: Some(closed_by_daemon()) };
                }
                send_stream(&mut t.stream, batch, from)
            }
            #[cfg(feature = "tls")]
            Conn::Tls(t) => t.send(batch, from),
        }
    }
}

fn send_datagrams(
    batch: &Batch,
    from: usize,
    mut send: impl FnMut(&[u8]) -> io::Result<usize>,
) -> Sent {
    for i in from..batch.len() {
        let frame = batch.frame(i);
        let error = match send(frame) {
            Ok(n) if n == frame.len() => continue,
            Ok(_) => io::Error::new(io::ErrorKind::WriteZero, "datagram sent short"),
            Err(e) => e,
        };
        return Sent { sent: i - from, error: Some(error) };
    }
    Sent { sent: batch.len() - from, error: None }
}

/// Writes the frames of records `from..` back to back, in as few writes as the socket takes.
pub(crate) fn send_stream(stream: &mut impl Write, batch: &Batch, from: usize) -> Sent {
    let bytes = batch.bytes();
    let mut off = batch.span(from).0;
    // The first record not yet accepted whole.
    let mut next = from;
    while next < batch.len() {
        match stream.write(&bytes[off..]) {
            Ok(0) => {
                let error = io::Error::new(io::ErrorKind::WriteZero, "connection took no bytes");
                return Sent { sent: next - from, error: Some(error) };
            }
            Ok(n) => {
                off += n;
                while next < batch.len() && batch.span(next).1 <= off {
                    next += 1;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Sent { sent: next - from, error: Some(e) },
        }
    }
    Sent { sent: batch.len() - from, error: None }
}

/// Whether a send error means the datagram itself was too large for the socket (the record
/// falls back alone; the connection is fine).
pub(crate) fn is_too_large(e: &io::Error) -> bool {
    // EMSGSIZE (90 on Linux): larger than the socket's send buffer or UDP's 65,507 bytes.
    e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error())
}

/// Whether a send error is a timeout: the daemon is alive but not reading.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// A TCP connection plus a watcher thread that marks it closed when the daemon hangs up and
/// calls `on_hang_up`. A daemon never sends anything on a syslog connection (over TLS, only
/// session tickets and alerts, which the watcher reads past), so an end of stream or an error
/// means the connection is over; without the watcher, the first line after a daemon restart
/// would be written into a dead socket and lost without an error.
pub(crate) struct TcpConn {
    pub(crate) stream: TcpStream,
    closed: Arc<AtomicBool>,
}

impl TcpConn {
    /// Connects within `timeout`, with `timeout` on every write too.
    pub(crate) fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Starts watching `stream` (whose reads must block without a timeout from now on).
    pub(crate) fn watch(
        stream: TcpStream,
        closed: Arc<AtomicBool>,
        on_hang_up: impl FnOnce() + Send + 'static,
    ) -> io::Result<TcpConn> {
        let mut reader = stream.try_clone()?;
        let flag = Arc::clone(&closed);
        std::thread::Builder::new().name("syslog-tcp-watch".into()).spawn(move || {
            let mut buf = [0u8; 512];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            // Set before the callback takes the writer's lock: a send in progress either sees
            // the flag or has its line in the ring before the callback replays it.
            flag.store(true, Ordering::Release);
            on_hang_up();
        })?;
        Ok(TcpConn { stream, closed })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Drop for TcpConn {
    fn drop(&mut self) {
        // Wakes the watcher thread so it exits and releases its handle on the socket.
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

pub(crate) fn closed_by_daemon() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the daemon")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `chunk` bytes per write, then fails after `limit` bytes in all.
    struct Dribble {
        got: Vec<u8>,
        chunk: usize,
        limit: usize,
    }

    impl Write for Dribble {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.got.len() >= self.limit {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
            }
            let n = buf.len().min(self.chunk).min(self.limit - self.got.len());
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn batch(frames: &[&str]) -> Batch {
        Batch::of(frames.iter().map(|f| f.as_bytes()))
    }

    #[test]
    fn a_stream_counts_only_records_it_took_whole() {
        let b = batch(&["aaaa", "bbbb", "cccc"]);
        let mut w = Dribble { got: Vec::new(), chunk: 3, limit: 6 };
        let r = send_stream(&mut w, &b, 0);
        assert_eq!(r.sent, 1, "the second record was cut at byte 6");
        assert!(r.error.is_some());
        let mut w = Dribble { got: Vec::new(), chunk: 5, limit: usize::MAX };
        let r = send_stream(&mut w, &b, 1);
        assert_eq!((r.sent, w.got.as_slice()), (2, &b"bbbbcccc"[..]));
        assert!(r.error.is_none());
    }

    #[test]
    fn datagrams_stop_at_the_first_error() {
        let b = batch(&["a", "b", "c"]);
        let mut n = 0;
        let r = send_datagrams(&b, 0, |d| {
            n += 1;
            if n == 2 { Err(io::Error::from_raw_os_error(90)) } else { Ok(d.len()) }
        });
        assert_eq!(r.sent, 1);
        assert!(is_too_large(r.error.as_ref().unwrap()));
    }
}
