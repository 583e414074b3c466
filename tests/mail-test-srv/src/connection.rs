//! Bytes <-> lines on one socket: capped command lines, message content streamed through the
//! [`Decoder`] under a size cap and a server-wide memory [`Budget`], and batched reply writing
//! (replies to pipelined commands go out in one write).
//!
//! Memory per connection: a read buffer of [`READ_CHUNK`] (a command line may grow it to
//! [`MAX_COMMAND_LINE`] + one chunk; content never does, however long its lines), queued
//! replies up to [`MAX_PENDING_OUTPUT`] plus one, and the content of the message being received:
//! up to [`DATA_ALLOWANCE`] of it free, beyond that only what the shared [`Budget`] grants,
//! and never more than the message size cap.

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

use crate::data::{Bare, BareLf, Decoder, Outcome};
use crate::reply::Reply;
use crate::stats::Counters;

/// The longest command line accepted, without its CRLF. RFC 5321 says 512 octets, but AUTH
/// responses and long EHLO names go past that in practice; 4 KiB stays small per connection.
/// Longer lines are read to their end, discarded, and answered `500 5.5.2`.
pub const MAX_COMMAND_LINE: usize = 4096;

/// Bytes asked of the socket per read.
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// Replies are flushed before every socket read; this bounds the batch when a client pipelines
/// a flood of commands without reading.
pub(crate) const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// Content buffer each connection may hold without asking the [`Budget`] (and keeps between
/// messages): typical messages never touch the shared budget, and a client is served even
/// while others have used it all up.
pub(crate) const DATA_ALLOWANCE: usize = 64 * 1024;

/// The memory that messages being received may take, all connections together, beyond each
/// one's [`DATA_ALLOWANCE`]. Without it, fifty clients each sending a message just under the
/// size cap would hold fifty times the cap. What is taken is kept in
/// `Counters::in_flight_bytes`, so `/stats` shows it.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    counters: Arc<Counters>,
}

impl Budget {
    pub(crate) fn new(limit: usize, counters: Arc<Counters>) -> Budget {
        Budget { limit: limit as u64, counters }
    }

    /// The limit in bytes.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes `n` bytes if that stays within the limit.
    fn take(&self, n: usize) -> bool {
        self.counters
            .in_flight_bytes
            .fetch_update(Relaxed, Relaxed, |used| {
                used.checked_add(n as u64).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.counters.in_flight_bytes.fetch_sub(n as u64, Relaxed);
    }

    /// Bytes taken now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.counters.in_flight_bytes.load(Relaxed)
    }
}

fn idle() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "idle timeout")
}

/// The result of reading one command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadLine {
    /// A complete line: `range` indexes [`Connection::line`], CR and LF stripped; `bare_lf`:
    /// it ended in an LF without a CR before it.
    Line { range: Range<usize>, bare_lf: bool },
    /// A line longer than the cap, read to its LF and thrown away.
    TooLong,
    /// The peer closed (a partial last line is dropped).
    Eof,
}

/// How the message content read after `354` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Data {
    /// Read whole: [`Connection::content`] holds it (dot-unstuffed, CRLF line endings, without
    /// the final dot line) until [`Connection::release_content`].
    Complete,
    /// Over the size cap: read to the final dot, not kept.
    TooBig,
    /// Held a bare LF or CR under [`BareLf::Reject`]: read to the final dot, not kept.
    Bare(Bare),
    /// The server-wide [`Budget`] had no room left: read to the final dot, not kept.
    NoRoom,
    /// The peer closed before the final dot.
    Eof,
}

/// One client connection: a read buffer, an output buffer, the content buffer and the stream.
///
/// Every read and write waits at most `idle_timeout` (then `TimedOut`). That is one timer per
/// connection, armed once and moved on only when it fires early (see [`Connection::idle`]),
/// not one per read: a timer per read cost more than the read. Shutdown is not watched here
/// but around the whole session (`server.rs`): every method is cancel-safe, so the session
/// can be dropped at any await and a `421` still sent on the connection.
#[derive(Debug)]
pub(crate) struct Connection<S> {
    stream: S,
    /// Input: `buf[start..]` is not yet consumed, `buf[scan..]` not yet searched for LF;
    /// `buf.len()` is the end of what was read. Reads go into the spare capacity, so the
    /// buffer is never zeroed.
    buf: Vec<u8>,
    start: usize,
    scan: usize,
    discarding: bool,
    /// Replies queued; `out[written..]` is still to be sent.
    out: Vec<u8>,
    written: usize,
    content: Vec<u8>,
    /// Bytes of `content`'s capacity taken from `budget`.
    charged: usize,
    budget: Arc<Budget>,
    idle_timeout: Duration,
    /// When a read or write last made progress.
    last_io: Instant,
    /// Fires no earlier than `last_io + idle_timeout`.
    timer: Pin<Box<Sleep>>,
}

impl<S> Drop for Connection<S> {
    fn drop(&mut self) {
        self.budget.give_back(self.charged);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps a stream. A read or write that waits longer than `idle_timeout` fails with
    /// `TimedOut`. Message content beyond [`DATA_ALLOWANCE`] is charged to `budget`.
    pub(crate) fn new(stream: S, idle_timeout: Duration, budget: Arc<Budget>) -> Connection<S> {
        let now = Instant::now();
        Connection {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            scan: 0,
            discarding: false,
            out: Vec::with_capacity(1024),
            written: 0,
            content: Vec::new(),
            charged: 0,
            budget,
            idle_timeout,
            last_io: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
        }
    }

    /// Waits until the connection has been idle for `idle_timeout` since the last progress.
    /// The timer is only moved when it fires before that (progress happened meanwhile), so a
    /// busy connection touches the timer wheel once per idle period, not once per read.
    async fn idle(timer: &mut Pin<Box<Sleep>>, last_io: Instant, idle_timeout: Duration) {
        loop {
            timer.as_mut().await;
            let deadline = last_io + idle_timeout;
            if Instant::now() >= deadline {
                return;
            }
            timer.as_mut().reset(deadline);
        }
    }

    /// The bytes of a line returned by [`Connection::read_line`], valid until the next read.
    pub(crate) fn line(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Queues a reply; it is written before the next socket read or on [`Connection::flush`].
    pub(crate) fn push_reply(&mut self, reply: &Reply) {
        reply.write_to(&mut self.out);
    }

    /// Writes every queued reply; fails with `TimedOut` when the client reads nothing for the
    /// idle timeout. Cancel-safe: what was written stays written.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        while self.written < self.out.len() {
            let Connection { stream, out, written, timer, last_io, idle_timeout, .. } = self;
            let n = tokio::select! {
                biased;
                n = stream.write(&out[*written..]) => n?,
                () = Self::idle(timer, *last_io, *idle_timeout) => return Err(idle()),
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written += n;
            self.last_io = Instant::now();
        }
        if !self.out.is_empty() {
            self.out.clear();
            self.written = 0;
            // TLS buffers; plain TCP returns at once.
            let Connection { stream, timer, last_io, idle_timeout, .. } = self;
            tokio::select! {
                biased;
                r = stream.flush() => r?,
                () = Self::idle(timer, *last_io, *idle_timeout) => return Err(idle()),
            }
        }
        Ok(())
    }

    /// Flushes, sends FIN, then reads and discards what the client still sends for up to
    /// `linger`: closing a socket with unread input makes the kernel send RST, and the client
    /// would see "connection reset" instead of the clean close (or the 421) it was given.
    pub(crate) async fn close(&mut self, linger: Duration) -> io::Result<()> {
        self.finish().await?;
        self.drain(linger).await;
        Ok(())
    }

    /// Ends the connection after `221` to QUIT: flushes, sends FIN, and reads what input is
    /// already there without waiting for more. A client sends nothing after QUIT (RFC 5321
    /// makes it the last command of a pipeline), so with nothing unread the socket closes
    /// without a reset at once, as Postfix's and smtp-sink's do; only a client that did send
    /// more gets the lingering drain of [`Connection::close`].
    pub(crate) async fn quit(&mut self, linger: Duration) -> io::Result<()> {
        let buffered = self.start < self.buf.len();
        self.finish().await?;
        let unread = buffered
            || tokio::select! {
                biased;
                r = self.stream.read_buf(&mut self.buf) => matches!(r, Ok(n) if n > 0),
                () = std::future::ready(()) => false,
            };
        if unread {
            self.drain(linger).await;
        }
        Ok(())
    }

    /// Flushes the replies and sends FIN (TLS: close_notify, which can wait for room like any
    /// write); forgets buffered input.
    async fn finish(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.buf.clear();
        self.start = 0;
        self.scan = 0;
        let Connection { stream, timer, last_io, idle_timeout, .. } = self;
        tokio::select! {
            biased;
            r = stream.shutdown() => r?,
            () = Self::idle(timer, *last_io, *idle_timeout) => return Err(idle()),
        }
        Ok(())
    }

    /// Reads and drops input until EOF, an error or `linger` (bounded: at most 64 reads of
    /// the read buffer's capacity, 1 MiB).
    async fn drain(&mut self, linger: Duration) {
        self.timer.as_mut().reset(Instant::now() + linger);
        for _ in 0..64 {
            self.buf.clear();
            let read = tokio::select! {
                biased;
                r = self.stream.read_buf(&mut self.buf) => r,
                () = self.timer.as_mut() => break,
            };
            if !matches!(read, Ok(n) if n > 0) {
                break;
            }
        }
        self.buf.clear();
    }

    /// Swaps in another stream and returns the old one, dropping buffered input: after
    /// STARTTLS, plaintext that was pipelined behind the command must never be taken as if it
    /// came over TLS (RFC 3207; the CVE-2011-0411 class of command injection).
    pub(crate) fn replace_stream(&mut self, stream: S) -> S {
        self.buf.clear();
        self.start = 0;
        self.scan = 0;
        self.discarding = false;
        self.out.clear();
        self.written = 0;
        std::mem::replace(&mut self.stream, stream)
    }

    /// The stream.
    pub(crate) fn stream(&self) -> &S {
        &self.stream
    }

    /// Reads one line of at most `max` bytes (without CR LF). Lines end at LF; a CR before it
    /// is stripped, and the caller learns whether there was one.
    pub(crate) async fn read_line(&mut self, max: usize) -> io::Result<ReadLine> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.scan..]) {
                let lf = self.scan + i;
                let line_start = self.start;
                self.start = lf + 1;
                self.scan = self.start;
                if std::mem::take(&mut self.discarding) {
                    return Ok(ReadLine::TooLong);
                }
                let crlf = lf > line_start && self.buf[lf - 1] == b'\r';
                let line_end = if crlf { lf - 1 } else { lf };
                if line_end - line_start > max {
                    return Ok(ReadLine::TooLong);
                }
                return Ok(ReadLine::Line { range: line_start..line_end, bare_lf: !crlf });
            }
            // No LF buffered. Past the cap (+1 for a CR), stop keeping the line: memory stays
            // bounded however long the line is.
            if self.discarding || self.buf.len() - self.start > max + 1 {
                self.discarding = true;
                self.start = self.buf.len();
            }
            self.scan = self.buf.len();
            self.make_room(max);
            if self.fill().await? == 0 {
                return Ok(ReadLine::Eof);
            }
        }
    }

    /// Flushes queued replies, then reads once into the spare capacity of `buf`: the number
    /// of bytes read, 0 at EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        if !self.out.is_empty() {
            self.flush().await?;
        }
        let Connection { stream, buf, timer, last_io, idle_timeout, .. } = self;
        let n = tokio::select! {
            biased;
            n = stream.read_buf(buf) => n?,
            () = Self::idle(timer, *last_io, *idle_timeout) => return Err(idle()),
        };
        self.last_io = Instant::now();
        Ok(n)
    }

    /// Moves the unconsumed input to the front and makes sure a read has room: at least half
    /// a chunk, and never more than a line of `max` bytes needs.
    fn make_room(&mut self, max: usize) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scan = 0;
        } else if self.start > 0 && self.buf.capacity() - self.buf.len() < READ_CHUNK {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.scan -= self.start;
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            let want = (self.buf.len() + READ_CHUNK)
                .min(max.saturating_add(2 + READ_CHUNK))
                .max(self.buf.len() + 1024);
            self.buf.reserve_exact(want - self.buf.len());
        }
    }

    /// Reads message content up to `CRLF.CRLF` (see [`crate::data`] for the rules; `after_crlf`:
    /// the `DATA` line ended in CRLF). Content past `max_size` bytes, or past what the budget
    /// grants, is read and dropped. What follows the final dot stays buffered for
    /// [`Connection::read_line`].
    pub(crate) async fn read_data(
        &mut self,
        max_size: usize,
        policy: BareLf,
        after_crlf: bool,
    ) -> io::Result<Data> {
        self.release_content();
        let mut decoder = Decoder::new(max_size, policy, after_crlf);
        let mut content = std::mem::take(&mut self.content);
        loop {
            if self.start < self.buf.len() {
                let chunk_len = self.buf.len() - self.start;
                if decoder.keeping() && !self.reserve(&mut content, chunk_len, max_size) {
                    decoder.drop_content(&mut content);
                }
                let ended = decoder.feed(&self.buf[self.start..], &mut content);
                if !decoder.keeping() && content.capacity() > DATA_ALLOWANCE {
                    // Refused (too big, no room, a bare LF under reject): nothing more is
                    // kept, so the memory goes back now rather than at the final dot.
                    content = Vec::new();
                    self.budget.give_back(std::mem::take(&mut self.charged));
                }
                if let Some(n) = ended {
                    self.start += n;
                    self.scan = self.start;
                    break;
                }
            }
            // Everything buffered was content: the whole buffer is free for the next read.
            self.buf.clear();
            self.start = 0;
            self.scan = 0;
            let read = self.fill().await;
            if !matches!(read, Ok(n) if n > 0) {
                // Nothing of this message is kept, and its charge is given back.
                self.content = content;
                self.release_content();
                return read.map(|_| Data::Eof);
            }
        }
        self.content = content;
        Ok(match decoder.outcome() {
            Outcome::Complete => Data::Complete,
            Outcome::TooBig => Data::TooBig,
            Outcome::Bare(bare) => Data::Bare(bare),
            Outcome::Dropped => Data::NoRoom,
        })
    }

    /// Grows `content` so that decoding `chunk_len` more input bytes cannot reallocate it,
    /// charging the budget for capacity beyond the allowance; false if the budget says no.
    fn reserve(&mut self, content: &mut Vec<u8>, chunk_len: usize, max_size: usize) -> bool {
        // The decoder never lets content past max_size, and appends at most 2n + 2 per chunk.
        let need = (content.len() + 2 * chunk_len + 2).min(max_size);
        if need <= content.capacity() {
            return true;
        }
        let want = need.max(content.capacity().saturating_mul(2).min(max_size));
        let charge = want.saturating_sub(DATA_ALLOWANCE).saturating_sub(self.charged);
        if charge > 0 && !self.budget.take(charge) {
            return false;
        }
        self.charged += charge;
        content.reserve_exact(want - content.len());
        true
    }

    /// The content of the last message read whole ([`Data::Complete`]).
    pub(crate) fn content(&self) -> &[u8] {
        &self.content
    }

    /// Forgets the last message's content, giving back what it took from the budget; a buffer
    /// within the allowance is kept for the next message.
    pub(crate) fn release_content(&mut self) {
        if self.content.capacity() > DATA_ALLOWANCE {
            self.content = Vec::new();
        }
        self.content.clear();
        self.budget.give_back(std::mem::take(&mut self.charged));
    }

    /// Sends the queued replies, then waits `delay` (an injected slow reply).
    pub(crate) async fn pause(&mut self, delay: Duration) -> io::Result<()> {
        self.flush().await?;
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Flushes replies if a flood of pipelined commands has queued many of them.
    pub(crate) async fn flush_if_large(&mut self) -> io::Result<()> {
        if self.out.len() > MAX_PENDING_OUTPUT { self.flush().await } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn connection<S: AsyncRead + AsyncWrite + Unpin>(stream: S, budget: usize) -> Connection<S> {
        let budget = Arc::new(Budget::new(budget, Arc::default()));
        Connection::new(stream, Duration::from_secs(5), budget)
    }

    async fn lines(input: &[u8], max: usize) -> Vec<Result<(String, bool), ReadLine>> {
        let (mut client, server) = duplex(1 << 16);
        client.write_all(input).await.unwrap();
        drop(client);
        let mut c = connection(server, 0);
        let mut got = Vec::new();
        loop {
            match c.read_line(max).await.unwrap() {
                ReadLine::Line { range, bare_lf } => {
                    got.push(Ok((String::from_utf8_lossy(c.line(range)).into_owned(), bare_lf)))
                }
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
                Ok(("one".into(), false)),
                Ok(("two".into(), true)),
                Ok(("".into(), false)),
                Err(ReadLine::TooLong),
                Ok(("ok".into(), false))
            ]
        );
        // Exactly at the cap is fine; the CR does not count.
        assert_eq!(lines(b"12345678\r\n", 8).await, [Ok(("12345678".into(), false))]);
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
        let mut c = connection(server, 0);
        assert_eq!(c.read_line(100).await.unwrap(), ReadLine::TooLong);
        assert!(c.buf.capacity() <= 3 * READ_CHUNK, "buffer grew to {}", c.buf.capacity());
        let ReadLine::Line { range, .. } = c.read_line(100).await.unwrap() else {
            panic!("no line")
        };
        assert_eq!(c.line(range), b"NOOP");
        writer.await.unwrap();
    }

    /// The idle timeout counts from the last progress, not from the start: a slow client that
    /// keeps sending is never cut off, a silent one is after the timeout. (Paused time: the
    /// clock moves only when every task waits.)
    #[tokio::test(start_paused = true)]
    async fn idle_means_no_progress_for_the_timeout() {
        let (mut client, server) = duplex(1 << 16);
        let budget = Arc::new(Budget::new(0, Arc::default()));
        let mut c = Connection::new(server, Duration::from_millis(200), budget);
        let started = Instant::now();
        let writer = tokio::spawn(async move {
            for _ in 0..10 {
                client.write_all(b"x").await.unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            client.write_all(b"\r\n").await.unwrap();
            client
        });
        let ReadLine::Line { range, .. } = c.read_line(100).await.unwrap() else { panic!() };
        assert_eq!(c.line(range), b"xxxxxxxxxx");
        assert!(started.elapsed() >= Duration::from_millis(1500));
        let _client = writer.await.unwrap();
        let silent = Instant::now();
        let err = c.read_line(100).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(silent.elapsed(), Duration::from_millis(200));
    }

    async fn data(input: &[u8], max: usize, policy: BareLf) -> (Data, Vec<u8>) {
        let (mut client, server) = duplex(1 << 20);
        client.write_all(input).await.unwrap();
        drop(client);
        let mut c = connection(server, usize::MAX);
        let outcome = c.read_data(max, policy, true).await.unwrap();
        (outcome, c.content().to_vec())
    }

    #[tokio::test]
    async fn content_ends_at_the_dot_and_the_next_command_is_kept() {
        let (mut client, server) = duplex(1 << 16);
        client.write_all(b"Subject: x\r\n\r\n..dot\nlf\r\n.\r\nQUIT\r\n").await.unwrap();
        let mut c = connection(server, 0);
        assert_eq!(c.read_data(1000, BareLf::Normalize, true).await.unwrap(), Data::Complete);
        assert_eq!(c.content(), b"Subject: x\r\n\r\n.dot\r\nlf\r\n");
        let ReadLine::Line { range, .. } = c.read_line(100).await.unwrap() else { panic!() };
        assert_eq!(c.line(range), b"QUIT");
        assert_eq!(
            data(b"a\nb\r\n.\r\n", 1000, BareLf::Reject).await,
            (Data::Bare(Bare::Lf), Vec::new())
        );
        assert_eq!(data(b"no end\r\n", 1000, BareLf::Normalize).await.0, Data::Eof);
    }

    #[tokio::test]
    async fn content_over_the_cap_is_read_to_the_dot_then_refused() {
        let mut input = b"line\r\n".repeat(100);
        input.extend_from_slice(b".\r\nQUIT\r\n");
        assert_eq!(data(&input, 300, BareLf::Normalize).await.0, Data::TooBig);
        let mut input = vec![b'y'; 5000];
        input.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(data(&input, 300, BareLf::Normalize).await.0, Data::TooBig);
    }

    /// A 4 MiB line without an LF: the read buffer stays one chunk, the content buffer stays
    /// within the cap, and past the budget the message is dropped and the budget given back.
    #[tokio::test]
    async fn long_content_lines_stream_within_the_cap_and_the_budget() {
        let (mut client, server) = duplex(1 << 16);
        let budget = Arc::new(Budget::new(1 << 20, Arc::default()));
        let mut c = Connection::new(server, Duration::from_secs(5), Arc::clone(&budget));
        let writer = tokio::spawn(async move {
            let chunk = vec![b'z'; 64 * 1024];
            for _ in 0..64 {
                client.write_all(&chunk).await.unwrap();
            }
            client.write_all(b"\r\n.\r\nsmall\r\n.\r\n").await.unwrap();
            client
        });
        assert_eq!(c.read_data(8 << 20, BareLf::Normalize, true).await.unwrap(), Data::NoRoom);
        assert!(c.buf.capacity() <= READ_CHUNK, "read buffer grew to {}", c.buf.capacity());
        assert!(budget.used() <= 1 << 20);
        assert_eq!(c.read_data(8 << 20, BareLf::Normalize, true).await.unwrap(), Data::Complete);
        assert_eq!(c.content(), b"small\r\n");
        assert_eq!(budget.used(), 0, "a small message needs no budget");
        drop(writer.await.unwrap());

        let budget = Arc::new(Budget::new(16 << 20, Arc::default()));
        let (mut client, server) = duplex(1 << 16);
        let mut c = Connection::new(server, Duration::from_secs(5), Arc::clone(&budget));
        let mut input = vec![b'w'; 3 << 20];
        input.extend_from_slice(b"\r\n.\r\n");
        let writer = tokio::spawn(async move { client.write_all(&input).await });
        assert_eq!(c.read_data(2 << 20, BareLf::Normalize, true).await.unwrap(), Data::TooBig);
        assert!(c.content.capacity() <= 2 << 20, "capacity {}", c.content.capacity());
        writer.await.unwrap().unwrap();
        drop(c);
        assert_eq!(budget.used(), 0, "a dropped connection gives its share back");
    }
}
