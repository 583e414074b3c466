//! The bounded queue between a sink's callers and its writer thread, the fallback they share,
//! and the counters a sink reports as [`SinkStats`].
//!
//! A caller formats its record into a reused buffer and copies the bytes into the queue under a
//! mutex held for that copy only; the writer thread takes everything queued at once by swapping
//! the pending buffer with its own, and does the socket I/O without holding the lock. So a log
//! call never waits on a daemon: at worst it waits for another caller's copy. The two buffers
//! are reused for ever, so a record costs no allocation once they have grown. The writer is
//! woken only when it sleeps (a flag under the same lock), not with a system call per record.
//!
//! When the pending buffer is full ([`QUEUE_LINES`] records or [`QUEUE_BYTES`] bytes), the
//! caller writes the line to the fallback itself and `queue_full` grows: nothing is dropped
//! silently. Records reach the daemon in the order they were queued; a line that found the
//! queue full reaches stderr before the queued lines that are still on their way.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// At most this many records wait for a sink's writer thread (besides the batch it is
/// writing); a record that finds the queue full goes to the fallback.
pub const QUEUE_LINES: usize = 4096;

/// At most this many bytes of them in a syslog sink (one record is always accepted into an
/// empty queue, however large). With the batch in flight, a sink holds at most twice this in
/// memory, and only once it was that busy.
pub const QUEUE_BYTES: usize = 1 << 20;

/// The same bound for a journald sink, whose records may be megabytes each.
pub const JOURNALD_QUEUE_BYTES: usize = 8 << 20;

/// What a sink did with its records since it started: the answer to "did anything fall back?".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// Records the daemon's socket accepted.
    pub sent: u64,
    /// Records written to the fallback (stderr) instead, for any reason.
    pub fell_back: u64,
    /// Of `fell_back`, the records that found the queue full, so the caller wrote them itself.
    pub queue_full: u64,
    /// Records sent and later copied to the fallback as possibly undelivered, because the
    /// daemon was found gone soon after (at-least-once: these may be duplicates).
    pub replayed: u64,
}

/// Where lines go that the daemon cannot take: stderr unless a test or service says otherwise.
/// Each call is one `write_all` under a lock, so lines from the writer thread and from callers
/// never interleave.
pub(crate) struct Fallback(Mutex<Box<dyn Write + Send>>);

impl Fallback {
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Fallback {
        Fallback(Mutex::new(out))
    }

    pub(crate) fn stderr() -> Fallback {
        Fallback::new(Box::new(std::io::stderr()))
    }

    pub(crate) fn write(&self, bytes: &[u8]) {
        let mut w = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // The fallback is the last resort: if stderr fails too there is nowhere left to say so.
        let _ = w.write_all(bytes);
    }

    pub(crate) fn flush(&self) {
        let _ = self.0.lock().unwrap_or_else(PoisonError::into_inner).flush();
    }

    /// Writes to `out` from now on.
    pub(crate) fn replace(&self, out: Box<dyn Write + Send>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = out;
    }
}

/// One queued record: `bytes[start..end]`, of which `bytes[body..end]` is the message without
/// transport framing (what the replay ring keeps and the fallback prints).
#[derive(Clone, Copy, Debug)]
struct Slot {
    start: usize,
    body: usize,
    end: usize,
    /// When the record was made (since the epoch): the replay window is measured with it.
    at: Duration,
}

/// Records back to back in one buffer, with their bounds.
#[derive(Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    slots: Vec<Slot>,
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// All the records' bytes, framing included, back to back.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Record `i` as sent on the wire.
    pub(crate) fn frame(&self, i: usize) -> &[u8] {
        let s = self.slots[i];
        &self.bytes[s.start..s.end]
    }

    /// Record `i` without its framing.
    pub(crate) fn message(&self, i: usize) -> &[u8] {
        let s = self.slots[i];
        &self.bytes[s.body..s.end]
    }

    /// Where record `i` starts and ends in [`Batch::bytes`].
    pub(crate) fn span(&self, i: usize) -> (usize, usize) {
        (self.slots[i].start, self.slots[i].end)
    }

    pub(crate) fn at(&self, i: usize) -> Duration {
        self.slots[i].at
    }

    fn push(&mut self, framing: &[u8], message: &[u8], at: Duration) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(framing);
        self.bytes.extend_from_slice(message);
        self.slots.push(Slot { start, body: start + framing.len(), end: self.bytes.len(), at });
    }

    /// A batch of unframed records, for tests.
    #[cfg(test)]
    pub(crate) fn of<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Batch {
        let mut b = Batch::default();
        for (i, m) in messages.into_iter().enumerate() {
            b.push(b"", m, Duration::from_millis(i as u64));
        }
        b
    }

    /// Empties the batch; a buffer that grew past `keep` bytes for a huge record (journald
    /// takes one of any size) does not pin that memory for ever.
    fn clear(&mut self, keep: usize) {
        self.bytes.clear();
        self.slots.clear();
        if self.bytes.capacity() > keep {
            self.bytes.shrink_to(keep);
        }
    }
}

struct State {
    pending: Batch,
    /// Records accepted since the start.
    enqueued: u64,
    /// Whether the writer sleeps on `work` (so the next push must wake it).
    writer_idle: bool,
    /// No more records: the sink was dropped (or its writer thread could not start).
    closed: bool,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    fell_back: AtomicU64,
    queue_full: AtomicU64,
    replayed: AtomicU64,
}

/// The queue, the writer's progress and the counters of one sink.
pub(crate) struct Queue {
    state: Mutex<State>,
    /// The writer waits here for records.
    work: Condvar,
    /// Records the writer has finished with (sent or fell back), for `flush`.
    done: AtomicU64,
    /// Threads waiting in `flush`: the writer signals `progress` only when there are some.
    flushers: AtomicUsize,
    progress: Condvar,
    counters: Counters,
    pub(crate) fallback: Arc<Fallback>,
    /// The byte bound of the pending records.
    max_bytes: usize,
}

impl Queue {
    /// A queue of at most [`QUEUE_LINES`] records and `max_bytes` bytes.
    pub(crate) fn new(fallback: Arc<Fallback>, max_bytes: usize) -> Queue {
        Queue {
            state: Mutex::new(State {
                pending: Batch::default(),
                enqueued: 0,
                writer_idle: false,
                closed: false,
            }),
            work: Condvar::new(),
            done: AtomicU64::new(0),
            flushers: AtomicUsize::new(0),
            progress: Condvar::new(),
            counters: Counters::default(),
            fallback,
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Only copies happen under this lock; a panic there cannot leave a half-built record
        // that matters (the slot is pushed after the bytes).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `framing` + `message` (one record); false when the queue is full or closed, in
    /// which case the caller writes the record to the fallback (and calls
    /// [`Queue::count_fell_back`]).
    pub(crate) fn push(&self, framing: &[u8], message: &[u8], at: Duration) -> bool {
        let len = framing.len() + message.len();
        let mut s = self.lock();
        let full = s.pending.len() >= QUEUE_LINES
            || (!s.pending.is_empty() && s.pending.bytes.len() + len > self.max_bytes);
        if s.closed || full {
            drop(s);
            self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        s.pending.push(framing, message, at);
        s.enqueued += 1;
        let wake = std::mem::take(&mut s.writer_idle);
        drop(s);
        if wake {
            self.work.notify_one();
        }
        true
    }

    /// The writer thread's loop: hands each batch of queued records to `deliver`, until the
    /// queue is closed and empty. A panic in `deliver` (a bug) costs that batch its delivery,
    /// not the sink its writer: the batch goes to `fall_back` and the loop goes on.
    pub(crate) fn run(&self, mut deliver: impl FnMut(&Batch), fall_back: impl Fn(&Batch)) {
        let mut batch = Batch::default();
        loop {
            let mut s = self.lock();
            while s.pending.is_empty() {
                if s.closed {
                    return;
                }
                s.writer_idle = true;
                s = self.work.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            s.writer_idle = false;
            std::mem::swap(&mut s.pending, &mut batch);
            drop(s);
            let n = batch.len();
            let before = self.done.load(Ordering::Acquire);
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| deliver(&batch)));
            if run.is_err() {
                fall_back(&batch);
            }
            // `deliver` reports progress as it goes; whatever it did not report is done now.
            let reported = self.done.load(Ordering::Acquire) - before;
            self.advance(n.saturating_sub(reported as usize));
            batch.clear(2 * self.max_bytes);
        }
    }

    /// The writer finished `n` more records (sent, or written to the fallback).
    pub(crate) fn advance(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.done.fetch_add(n as u64, Ordering::AcqRel);
        if self.flushers.load(Ordering::Acquire) > 0 {
            // Taking the lock orders this signal after the flusher's check of `done`.
            drop(self.lock());
            self.progress.notify_all();
        }
    }

    /// Waits until every record queued before the call was sent or fell back, as long as the
    /// writer keeps making progress: it gives up after `patience` without any (a daemon that
    /// blocks every send costs the writer a timeout per attempt, bounded). True when all done.
    pub(crate) fn flush(&self, patience: Duration) -> bool {
        self.flushers.fetch_add(1, Ordering::AcqRel);
        let mut s = self.lock();
        let target = s.enqueued;
        let mut seen = self.done.load(Ordering::Acquire);
        let mut since = Instant::now();
        while seen < target && !s.closed {
            let left = patience.saturating_sub(since.elapsed());
            if left.is_zero() {
                break;
            }
            s = self.progress.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
            let now = self.done.load(Ordering::Acquire);
            if now > seen {
                seen = now;
                since = Instant::now();
            }
        }
        drop(s);
        self.flushers.fetch_sub(1, Ordering::AcqRel);
        seen >= target
    }

    /// No more records: the writer finishes what is queued and exits.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
        self.progress.notify_all();
    }

    pub(crate) fn count_sent(&self, n: usize) {
        self.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn count_fell_back(&self, n: usize) {
        self.counters.fell_back.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn count_replayed(&self, n: usize) {
        self.counters.replayed.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> SinkStats {
        let c = &self.counters;
        SinkStats {
            sent: c.sent.load(Ordering::Relaxed),
            fell_back: c.fell_back.load(Ordering::Relaxed),
            queue_full: c.queue_full.load(Ordering::Relaxed),
            replayed: c.replayed.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Queue {
        Queue::new(Arc::new(Fallback::new(Box::new(std::io::sink()))), QUEUE_BYTES)
    }

    const T0: Duration = Duration::from_secs(1_800_000_000);

    #[test]
    fn batches_keep_records_apart_with_their_framing() {
        let mut b = Batch::default();
        b.push(b"5 ", b"hello", T0);
        b.push(b"", b"x", T0 + Duration::from_secs(1));
        assert_eq!(b.bytes(), b"5 hellox");
        assert_eq!((b.frame(0), b.message(0)), (&b"5 hello"[..], &b"hello"[..]));
        assert_eq!((b.frame(1), b.message(1), b.span(1)), (&b"x"[..], &b"x"[..], (7, 8)));
        assert_eq!(b.at(1), T0 + Duration::from_secs(1));
    }

    #[test]
    fn a_full_queue_refuses_and_counts_but_an_empty_one_takes_any_record() {
        let q = queue();
        assert!(q.push(b"", &vec![b'x'; 3 * QUEUE_BYTES], T0), "one huge record fits");
        assert!(!q.push(b"", b"more", T0));
        let q = queue();
        for _ in 0..QUEUE_LINES {
            assert!(q.push(b"", b"l", T0));
        }
        assert!(!q.push(b"", b"l", T0));
        assert_eq!(q.stats().queue_full, 1);
    }

    #[test]
    fn the_writer_gets_everything_in_order_and_flush_waits_for_it() {
        let q = Arc::new(queue());
        let got = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let (q, got) = (Arc::clone(&q), Arc::clone(&got));
            std::thread::spawn(move || {
                q.run(
                    |batch| {
                        std::thread::sleep(Duration::from_millis(1));
                        let mut got = got.lock().unwrap();
                        for i in 0..batch.len() {
                            got.push(String::from_utf8(batch.message(i).to_vec()).unwrap());
                        }
                    },
                    |_| {},
                )
            })
        };
        for i in 0..2000 {
            while !q.push(b"", format!("{i}").as_bytes(), T0) {
                std::thread::yield_now();
            }
        }
        assert!(q.flush(Duration::from_secs(30)));
        let want: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
        assert_eq!(*got.lock().unwrap(), want);
        q.close();
        writer.join().unwrap();
    }

    #[test]
    fn a_panicking_writer_falls_back_and_keeps_going() {
        let q = Arc::new(queue());
        let fell = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (q, fell) = (Arc::clone(&q), Arc::clone(&fell));
            std::thread::spawn(move || {
                q.run(
                    |batch| assert!(batch.message(0) != b"boom", "a bug"),
                    |batch| {
                        fell.fetch_add(batch.len(), Ordering::Relaxed);
                    },
                )
            })
        };
        assert!(q.push(b"", b"boom", T0));
        assert!(q.flush(Duration::from_secs(30)));
        assert!(q.push(b"", b"fine", T0));
        assert!(q.flush(Duration::from_secs(30)));
        assert_eq!(fell.load(Ordering::Relaxed), 1);
        q.close();
        writer.join().unwrap();
    }

    #[test]
    fn flush_gives_up_when_the_writer_makes_no_progress() {
        let q = queue();
        assert!(q.push(b"", b"never taken", T0));
        let start = Instant::now();
        assert!(!q.flush(Duration::from_millis(50)));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
