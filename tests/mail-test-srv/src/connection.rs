//! Bytes <-> lines on one socket: capped line reading, DATA with dot-unstuffing and a size
//! cap, and batched reply writing (replies to pipelined commands go out in one write).

use std::io;
use std::ops::Range;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::reply::Reply;

/// The longest command line accepted, without its CRLF. RFC 5321 says 512 octets, but AUTH
/// responses and long EHLO names go past that in practice; 4 KiB stays small per connection.
/// Longer lines are read to their end, discarded, and answered `500 5.5.2`.
pub const MAX_COMMAND_LINE: usize = 4096;

const READ_CHUNK: usize = 16 * 1024;
/// Replies are flushed before every socket read; this bounds the batch when a client pipelines
/// a flood of commands without reading.
const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// Runs a write to a client under the idle timeout and the shutdown token, so that a client
/// that never reads pins its task neither forever nor past shutdown. The write is polled
/// first: what fits in the socket buffer still goes out, so a closing `421` reaches every
/// client that reads, while a write that would wait is given up once the server shuts down.
async fn bounded<T>(
    idle_timeout: Duration,
    shutdown: &CancellationToken,
    write: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::select! {
        biased;
        written = tokio::time::timeout(idle_timeout, write) => written.unwrap_or_else(|_| {
            Err(io::Error::new(io::ErrorKind::TimedOut, "write timeout"))
        }),
        () = shutdown.cancelled() => {
            Err(io::Error::new(io::ErrorKind::ConnectionAborted, "server shutting down"))
        }
    }
}

/// The result of reading one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadLine {
    /// A complete line; the range indexes [`Connection::line`], CR and LF stripped.
    Line(Range<usize>),
    /// A line longer than the cap, read to its LF and thrown away.
    TooLong,
    /// The peer closed (a partial last line is dropped).
    Eof,
}

/// The message content read after `354`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// The content, dot-unstuffed, CRLF line endings, without the terminating dot line.
    Complete(Vec<u8>),
    /// The content went past the size cap: it was read to the final dot but not kept.
    TooBig,
    /// The peer closed before the final dot.
    Eof,
}

/// One client connection: a read buffer, an output buffer and the stream.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    buf: Vec<u8>,
    start: usize,
    scan: usize,
    end: usize,
    discarding: bool,
    out: Vec<u8>,
    data: Vec<u8>,
    idle_timeout: Duration,
    shutdown: CancellationToken,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps a stream. A read or write that waits longer than `idle_timeout` fails with
    /// `TimedOut`; a read or write waiting when `shutdown` is cancelled fails with
    /// `ConnectionAborted`.
    pub fn new(stream: S, idle_timeout: Duration, shutdown: CancellationToken) -> Connection<S> {
        Connection {
            stream,
            buf: vec![0; READ_CHUNK],
            start: 0,
            scan: 0,
            end: 0,
            discarding: false,
            out: Vec::with_capacity(1024),
            data: Vec::new(),
            idle_timeout,
            shutdown,
        }
    }

    /// The bytes of a line returned by [`Connection::read_line`], valid until the next read.
    pub fn line(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Whether input is already buffered past the last line returned (pipelined commands).
    pub fn has_buffered_input(&self) -> bool {
        self.start < self.end
    }

    /// Queues a reply; it is written before the next socket read or on [`Connection::flush`].
    pub fn push_reply(&mut self, reply: &Reply) {
        reply.write_to(&mut self.out);
    }

    /// Writes every queued reply. Fails with `TimedOut` after the idle timeout, and with
    /// `ConnectionAborted` once the server shuts down and the write would have to wait.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let Connection { stream, out, idle_timeout, shutdown, .. } = self;
            let write = async {
                stream.write_all(out).await?;
                stream.flush().await
            };
            bounded(*idle_timeout, shutdown, write).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Flushes, sends FIN, then reads and discards what the client still sends for up to
    /// `linger`: closing a socket with unread input makes the kernel send RST, and the client
    /// would see "connection reset" instead of the clean close (or the 421) it was given.
    pub async fn close(&mut self, linger: Duration) -> io::Result<()> {
        self.flush().await?;
        // TLS writes a close_notify here, which can wait for room like any write.
        bounded(self.idle_timeout, &self.shutdown, self.stream.shutdown()).await?;
        let drain = async {
            let mut scratch = [0u8; 4096];
            // Bounded: at most 1 MiB of leftover input is read.
            for _ in 0..256 {
                match self.stream.read(&mut scratch).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        // Shutdown must not wait for clients that keep their end open.
        tokio::select! {
            _ = tokio::time::timeout(linger, drain) => {}
            () = self.shutdown.cancelled() => {}
        }
        Ok(())
    }

    /// Swaps in another stream and returns the old one, dropping buffered input: after
    /// STARTTLS, plaintext that was pipelined behind the command must never be taken as if it
    /// came over TLS (RFC 3207; the CVE-2011-0411 class of command injection).
    pub fn replace_stream(&mut self, stream: S) -> S {
        self.start = 0;
        self.scan = 0;
        self.end = 0;
        self.discarding = false;
        self.out.clear();
        std::mem::replace(&mut self.stream, stream)
    }

    /// The token that ends waits when the server shuts down.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Reads one line of at most `max` bytes (without CR LF). Lines end at LF; a CR before it
    /// is stripped, so bare-LF clients work too.
    pub async fn read_line(&mut self, max: usize) -> io::Result<ReadLine> {
        loop {
            if let Some(i) = self.buf[self.scan..self.end].iter().position(|&b| b == b'\n') {
                let lf = self.scan + i;
                let line_start = self.start;
                self.start = lf + 1;
                self.scan = self.start;
                if std::mem::take(&mut self.discarding) {
                    return Ok(ReadLine::TooLong);
                }
                let line_end =
                    if lf > line_start && self.buf[lf - 1] == b'\r' { lf - 1 } else { lf };
                if line_end - line_start > max {
                    return Ok(ReadLine::TooLong);
                }
                return Ok(ReadLine::Line(line_start..line_end));
            }
            // No LF buffered. Past the cap (+1 for a CR), stop keeping the line: memory stays
            // bounded however long the line is.
            if self.discarding || self.end - self.start > max + 1 {
                self.discarding = true;
                self.start = self.end;
            }
            self.scan = self.end;
            if !self.out.is_empty() {
                self.flush().await?;
            }
            self.make_room(max);
            let read = tokio::time::timeout(
                self.idle_timeout,
                self.stream.read(&mut self.buf[self.end..]),
            );
            let n = tokio::select! {
                r = read => match r {
                    Ok(n) => n?,
                    Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
                },
                () = self.shutdown.cancelled() => {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "server shutting down"));
                }
            };
            if n == 0 {
                return Ok(ReadLine::Eof);
            }
            self.end += n;
        }
    }

    /// Moves the partial line to the front and makes sure a read has room.
    fn make_room(&mut self, max: usize) {
        if self.start == self.end {
            self.start = 0;
            self.scan = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < READ_CHUNK {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scan -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK / 2 {
            let want = (self.end + READ_CHUNK)
                .min(max.saturating_add(2 + READ_CHUNK))
                .max(self.end + 1024);
            self.buf.resize(want, 0);
        }
    }

    /// Reads message content up to the line `.`, undoing dot-stuffing. Content past
    /// `max_size` bytes is read and discarded (the client is still sending it), then reported
    /// as [`Data::TooBig`]. Replies queued before this are flushed first.
    ///
    /// The content is gathered in a buffer reused across messages and returned as an exact-size
    /// copy: a stored message then costs its length, not the doubling slack of a growing Vec.
    pub async fn read_data(&mut self, max_size: usize) -> io::Result<Data> {
        self.flush().await?;
        let mut data = std::mem::take(&mut self.data);
        data.clear();
        let result = self.read_data_into(&mut data, max_size).await.map(|outcome| match outcome {
            Data::Complete(_) => Data::Complete(data.as_slice().to_vec()),
            other => other,
        });
        // Keep a modest buffer for the next message, not the largest one ever seen.
        if data.capacity() <= 256 * 1024 {
            self.data = data;
        }
        result
    }

    async fn read_data_into(&mut self, data: &mut Vec<u8>, max_size: usize) -> io::Result<Data> {
        let mut too_big = false;
        loop {
            // A single content line may be as long as the whole message may be.
            match self.read_line(max_size).await? {
                ReadLine::Eof => return Ok(Data::Eof),
                ReadLine::TooLong => too_big = true,
                ReadLine::Line(range) => {
                    let line = &self.buf[range];
                    if line == b"." {
                        return Ok(if too_big { Data::TooBig } else { Data::Complete(Vec::new()) });
                    }
                    if too_big {
                        continue;
                    }
                    let line = line.strip_prefix(b".").unwrap_or(line);
                    if data.len() + line.len() + 2 > max_size {
                        too_big = true;
                        data.clear();
                        continue;
                    }
                    data.extend_from_slice(line);
                    data.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// Sends the queued replies, then waits `delay` (an injected slow reply); fails with
    /// `ConnectionAborted` if the server shuts down meanwhile.
    pub async fn pause(&mut self, delay: Duration) -> io::Result<()> {
        self.flush().await?;
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            () = self.shutdown.cancelled() => {
                Err(io::Error::new(io::ErrorKind::ConnectionAborted, "server shutting down"))
            }
        }
    }

    /// Flushes replies if a flood of pipelined commands has queued many of them.
    pub async fn flush_if_large(&mut self) -> io::Result<()> {
        if self.out.len() > MAX_PENDING_OUTPUT { self.flush().await } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    async fn lines(input: &[u8], max: usize) -> Vec<Result<String, ReadLine>> {
        let (mut client, server) = duplex(1 << 16);
        client.write_all(input).await.unwrap();
        drop(client);
        let mut c = Connection::new(server, Duration::from_secs(5), CancellationToken::new());
        let mut got = Vec::new();
        loop {
            match c.read_line(max).await.unwrap() {
                ReadLine::Line(r) => got.push(Ok(String::from_utf8_lossy(c.line(r)).into_owned())),
                ReadLine::Eof => return got,
                other => got.push(Err(other)),
            }
        }
    }

    #[tokio::test]
    async fn splits_lines_and_caps_length() {
        let got = lines(b"one\r\ntwo\n\r\n0123456789\r\nok\r\npartial", 8).await;
        assert_eq!(
            got,
            [
                Ok("one".into()),
                Ok("two".into()),
                Ok("".into()),
                Err(ReadLine::TooLong),
                Ok("ok".into())
            ]
        );
        // Exactly at the cap is fine; the CR does not count.
        assert_eq!(lines(b"12345678\r\n", 8).await, [Ok("12345678".into())]);
    }

    #[tokio::test]
    async fn a_huge_line_is_discarded_with_bounded_memory() {
        let (mut client, server) = duplex(1 << 16);
        let writer = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..16 {
                client.write_all(&chunk).await.unwrap();
            }
            client.write_all(b"\r\nNOOP\r\n").await.unwrap();
        });
        let mut c = Connection::new(server, Duration::from_secs(5), CancellationToken::new());
        assert_eq!(c.read_line(100).await.unwrap(), ReadLine::TooLong);
        assert!(c.buf.len() <= 3 * READ_CHUNK, "buffer grew to {}", c.buf.len());
        let ReadLine::Line(r) = c.read_line(100).await.unwrap() else { panic!("no line") };
        assert_eq!(c.line(r), b"NOOP");
        writer.await.unwrap();
    }

    async fn data(input: &[u8], max: usize) -> Data {
        let (mut client, server) = duplex(1 << 20);
        client.write_all(input).await.unwrap();
        drop(client);
        let mut c = Connection::new(server, Duration::from_secs(5), CancellationToken::new());
        c.read_data(max).await.unwrap()
    }

    #[tokio::test]
    async fn data_is_unstuffed_and_ends_at_the_dot() {
        let got = data(b"Subject: x\r\n\r\n..leading dot\r\n.\r\nafter\r\n", 1000).await;
        assert_eq!(got, Data::Complete(b"Subject: x\r\n\r\n.leading dot\r\n".to_vec()));
        assert_eq!(
            data(b"a\r\n. \r\nb\r\n.\r\n", 1000).await,
            Data::Complete(b"a\r\n \r\nb\r\n".to_vec())
        );
        assert_eq!(data(b"no end\r\n", 1000).await, Data::Eof);
    }

    #[tokio::test]
    async fn data_over_the_cap_is_read_to_the_dot_then_refused() {
        let mut input = b"line\r\n".repeat(100);
        input.extend_from_slice(b".\r\nQUIT\r\n");
        assert_eq!(data(&input, 300).await, Data::TooBig);
        let mut input = vec![b'y'; 5000];
        input.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(data(&input, 300).await, Data::TooBig);
    }
}
