//! [`Wire`]: the byte stream a connection hands to lettre, kept in our hands too.
//!
//! lettre's `AsyncSmtpConnection` reads the greeting and sends EHLO itself, then keeps only
//! the features it knows (no PIPELINING), and it upgrades STARTTLS only with its own TLS
//! stack. Sharing the stream lets the mailer:
//! - read the bytes of the greeting and EHLO reply as they pass (a *tap*), so one EHLO is
//!   enough to learn PIPELINING;
//! - check that the reply to STARTTLS is all the server sent before the handshake (bytes
//!   after it would be read as if they came over TLS: the STARTTLS injection attack);
//! - upgrade to TLS in place with rustls (the handshake runs while lettre is not polling);
//! - know for itself that the server closed the connection, whatever lettre's error text.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

#[derive(Default)]
struct State {
    /// `None` only while a STARTTLS handshake has the socket.
    stream: Option<Stream>,
    /// Everything read while the tap is on.
    tap: Option<Vec<u8>>,
    /// A read returned end-of-file: the server closed the connection.
    eof: bool,
}

/// A handle on one connection's byte stream; clones share the stream.
#[derive(Clone)]
pub(crate) struct Wire(Arc<Mutex<State>>);

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wire")
    }
}

impl Wire {
    pub(crate) fn plain(tcp: TcpStream) -> Wire {
        Self::with(Stream::Tcp(tcp))
    }

    pub(crate) fn tls(tls: TlsStream<TcpStream>) -> Wire {
        Self::with(Stream::Tls(Box::new(tls)))
    }

    fn with(stream: Stream) -> Wire {
        Wire(Arc::new(Mutex::new(State { stream: Some(stream), ..State::default() })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock but the inner stream's poll; its state is the
        // stream's own business, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts recording what is read (dropping anything recorded before).
    pub(crate) fn start_tap(&self) {
        self.state().tap = Some(Vec::new());
    }

    /// Stops recording and returns what was read since [`Wire::start_tap`].
    pub(crate) fn take_tap(&self) -> Vec<u8> {
        self.state().tap.take().unwrap_or_default()
    }

    /// The server closed the connection (a read returned end-of-file).
    pub(crate) fn saw_eof(&self) -> bool {
        self.state().eof
    }

    /// Runs the TLS handshake on the plain socket and continues over TLS.
    pub(crate) async fn upgrade(
        &self,
        connector: &TlsConnector,
        name: ServerName<'static>,
    ) -> io::Result<()> {
        let tcp = match self.state().stream.take() {
            Some(Stream::Tcp(tcp)) => tcp,
            other => {
                self.state().stream = other;
                return Err(io::Error::other("STARTTLS on a stream that is not plain TCP"));
            }
        };
        let tls = connector.connect(name, tcp).await?;
        self.state().stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }
}

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream taken by a TLS handshake")
}

impl Wire {
    /// Reads what has arrived (at least one byte, or 0 at end-of-file) onto the end of `buf`:
    /// for the replies the mailer reads itself, bypassing lettre's reader.
    pub(crate) async fn read_some(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let filled = buf.len();
        // Replies are short: a small zeroed window keeps the copy and the memset cheap.
        buf.resize(filled + 512, 0);
        let read = std::future::poll_fn(|cx| {
            let mut window = ReadBuf::new(&mut buf[filled..]);
            self.poll_read_shared(cx, &mut window).map_ok(|()| window.filled().len())
        })
        .await;
        buf.truncate(filled + *read.as_ref().unwrap_or(&0));
        read
    }

    fn poll_read_shared(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut state = self.state();
        let before = buf.filled().len();
        let polled = match state.stream.as_mut() {
            Some(Stream::Tcp(s)) => Pin::new(s).poll_read(cx, buf),
            Some(Stream::Tls(s)) => Pin::new(s.as_mut()).poll_read(cx, buf),
            None => return Poll::Ready(Err(not_connected())),
        };
        if let Poll::Ready(Ok(())) = polled {
            let new = &buf.filled()[before..];
            if new.is_empty() && buf.remaining() > 0 {
                state.eof = true;
            }
            if let Some(tap) = state.tap.as_mut() {
                tap.extend_from_slice(new);
            }
        }
        polled
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_read_shared(cx, buf)
    }
}

impl Wire {
    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.state().stream.as_mut() {
            Some(Stream::Tcp(s)) => Pin::new(s).poll_write(cx, buf),
            Some(Stream::Tls(s)) => Pin::new(s.as_mut()).poll_write(cx, buf),
            None => Poll::Ready(Err(not_connected())),
        }
    }

    /// Writes all of `buf` (one `write(2)` when the socket takes it, as it does a message of
    /// normal size), then flushes TLS. For text the mailer formats itself (a pipelined command
    /// group, a message): going through lettre's `command` would first copy it into a new
    /// `String` by `Display`. Only while lettre is not writing (it never writes on its own).
    pub(crate) async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_write_shared(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        std::future::poll_fn(|cx| match self.state().stream.as_mut() {
            Some(Stream::Tcp(_)) => Poll::Ready(Ok(())),
            Some(Stream::Tls(s)) => Pin::new(s.as_mut()).poll_flush(cx),
            None => Poll::Ready(Err(not_connected())),
        })
        .await
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_shared(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.state().stream.as_mut() {
            Some(Stream::Tcp(s)) => Pin::new(s).poll_flush(cx),
            Some(Stream::Tls(s)) => Pin::new(s.as_mut()).poll_flush(cx),
            None => Poll::Ready(Err(not_connected())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.state().stream.as_mut() {
            Some(Stream::Tcp(s)) => Pin::new(s).poll_shutdown(cx),
            Some(Stream::Tls(s)) => Pin::new(s.as_mut()).poll_shutdown(cx),
            None => Poll::Ready(Err(not_connected())),
        }
    }
}

impl AsyncTokioStream for Wire {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self.state().stream.as_ref() {
            Some(Stream::Tcp(s)) => s.peer_addr(),
            Some(Stream::Tls(s)) => s.get_ref().0.peer_addr(),
            None => Err(not_connected()),
        }
    }
}

/// Whether an EHLO reply, as read off the wire (possibly after the greeting), offers
/// PIPELINING (RFC 2920): a `250-PIPELINING` or `250 PIPELINING` line.
pub(crate) fn offers_pipelining(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line.len() > 4
            && line.starts_with(b"250")
            && matches!(line[3], b'-' | b' ')
            && names_pipelining(&line[4..])
    })
}

/// Whether one EHLO keyword line (without its reply code) is `PIPELINING`.
pub(crate) fn names_pipelining(keyword_line: &[u8]) -> bool {
    keyword_line
        .split(|b| b.is_ascii_whitespace())
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"PIPELINING"))
}

/// Whether `raw` is exactly one complete `220` reply (every line `220-...`, the last
/// `220 ...`, nothing after its CRLF): what may precede a STARTTLS handshake.
pub(crate) fn is_one_starttls_reply(raw: &[u8]) -> bool {
    let Some(body) = raw.strip_suffix(b"\r\n") else { return false };
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let Some((last, earlier)) = lines.split_last() else { return false };
    last.starts_with(b"220 ")
        && !last.contains(&b'\r')
        && earlier.iter().all(|l| l.starts_with(b"220-") && l.ends_with(b"\r"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_is_found_in_the_ehlo_reply_after_the_greeting() {
        let raw = b"220 mx.test ESMTP\r\n250-mx.test\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
        assert!(offers_pipelining(raw));
        assert!(offers_pipelining(b"250-mx\r\n250 pipelining\r\n"));
        assert!(!offers_pipelining(b"220 PIPELINING ESMTP\r\n250-mx\r\n250 8BITMIME\r\n"));
        assert!(!offers_pipelining(b"250-mx\r\n250-PIPELININGX\r\n250 8BITMIME\r\n"));
        assert!(!offers_pipelining(b""));
    }

    #[test]
    fn only_a_lone_220_reply_may_precede_the_handshake() {
        assert!(is_one_starttls_reply(b"220 2.0.0 Ready to start TLS\r\n"));
        assert!(is_one_starttls_reply(b"220-one\r\n220 two\r\n"));
        assert!(!is_one_starttls_reply(b"220 Ready\r\n250 injected\r\n"));
        assert!(!is_one_starttls_reply(b"220 Ready\r\nMAIL"));
        assert!(!is_one_starttls_reply(b"220 Ready"));
        assert!(!is_one_starttls_reply(b"454 TLS not available\r\n"));
        assert!(!is_one_starttls_reply(b""));
    }
}
