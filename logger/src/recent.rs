//! [`Recent`]: the last records the kernel accepted for a daemon (syslog lines, journald
//! entries), kept so that they can be copied to the fallback when the daemon turns out to be
//! gone.
//!
//! Plain syslog has no acknowledgement. A unix datagram queued in a daemon's socket when the
//! daemon exits, a TCP frame written after the daemon's FIN (or read by the daemon but not yet
//! written out when it is killed) is gone, and the sender got no error for it. The sender learns
//! that the daemon is gone only a moment later: the next send fails, or the TCP watcher sees
//! the hang-up. At that point the lines sent just before are "possibly undelivered", and
//! [`crate::Syslog`] copies them to the fallback, marked, so an outage costs duplicates
//! instead of losses (at-least-once).
//!
//! The store is a fixed ring: [`REPLAY_LINES`] entries over one [`REPLAY_BYTES`] byte buffer,
//! allocated on the first line and reused ever after, so keeping a line costs one copy of its
//! bytes and no allocation.

use std::time::Duration;

use crate::syslog::TRUNCATION_MARKER;

/// At most this many of the most recently sent lines are kept for replay.
///
/// Measured against rsyslogd stopped with SIGTERM or SIGKILL while a process logs 100 lines/s
/// over a unix socket or TCP (the e2e test `logging_survives_daemon`): usually 0 or 1 line is
/// lost per stop, the last one sent before the failure was noticed; on a loaded machine up to
/// 23 (TCP and SIGTERM: rsyslogd stops writing some 200 ms before it closes its connections).
/// 64 lines leaves a margin over that and still bounds the duplicates one outage causes. At
/// high rates the count is the binding limit: a daemon with a deep backlog (hundreds of queued
/// lines) loses more than any such ring holds; only an acknowledged protocol (RELP) closes that.
pub const REPLAY_LINES: usize = 64;

/// At most this many bytes of them (messages without framing): 64 KiB, fixed, per sink. 64
/// lines of up to 1 KiB, or eight of stock rsyslog's longest (8,096 bytes).
pub const REPLAY_BYTES: usize = 64 * 1024;

/// Only lines sent within this time before the failure are replayed.
///
/// A daemon that keeps up reads a line within milliseconds, so a line sent a second before
/// the failure was either read long ago or is behind a backlog the ring cannot cover anyway.
/// When a send fails, the window is measured back from the last line sent, not from the
/// failing send: a process that logs rarely notices a dead unix socket only on its next line,
/// maybe minutes later, and the lines lost are still the ones sent just before the daemon
/// died (so after a long quiet spell the replay may repeat lines the daemon did get). When the
/// TCP watcher sees the hang-up, which it does at once, the window ends at that moment: a
/// daemon that closes an idle connection causes no replay.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Default)]
struct Entry {
    /// Where the line starts in `bytes` (it may wrap around the end).
    start: usize,
    len: usize,
    /// When it was formatted (time since the epoch, from the line's own timestamp).
    at: Duration,
}

/// The ring. Entries are stored oldest first, their bytes back to back around the buffer, so
/// the free space is always one (wrapping) run after the newest line.
pub(crate) struct Recent {
    bytes: Box<[u8]>,
    entries: [Entry; REPLAY_LINES],
    oldest: usize,
    count: usize,
    used: usize,
    /// Where the next line goes: just after the newest.
    head: usize,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            bytes: Box::default(),
            entries: [Entry::default(); REPLAY_LINES],
            oldest: 0,
            count: 0,
            used: 0,
            head: 0,
        }
    }
}

impl Recent {
    /// Keeps `line`, sent at `at`, forgetting the oldest lines as the bounds require. This is
    /// on every delivered line's path: one copy, a few comparisons, no allocation.
    pub(crate) fn push(&mut self, line: &[u8], at: Duration) {
        if line.len() > REPLAY_BYTES || self.bytes.is_empty() {
            return self.push_cold(line, at);
        }
        let len = line.len();
        while self.count == REPLAY_LINES || self.used + len > REPLAY_BYTES {
            self.forget_oldest();
        }
        let start = self.head;
        if start + len <= REPLAY_BYTES {
            self.bytes[start..start + len].copy_from_slice(line);
        } else {
            let first = REPLAY_BYTES - start;
            self.bytes[start..].copy_from_slice(&line[..first]);
            self.bytes[..len - first].copy_from_slice(&line[first..]);
        }
        self.head = (start + len) % REPLAY_BYTES;
        self.entries[(self.oldest + self.count) % REPLAY_LINES] = Entry { start, len, at };
        self.count += 1;
        self.used += len;
    }

    /// The first line (which allocates the buffer, once) and a line longer than the whole
    /// buffer (kept cut on a UTF-8 boundary, with the truncation marker).
    #[cold]
    fn push_cold(&mut self, line: &[u8], at: Duration) {
        if self.bytes.is_empty() {
            self.bytes = vec![0; REPLAY_BYTES].into_boxed_slice();
        }
        if line.len() <= REPLAY_BYTES {
            return self.push(line, at);
        }
        let mut cut = REPLAY_BYTES - TRUNCATION_MARKER.len();
        // Back up over UTF-8 continuation bytes to the start of a character.
        while cut > 0 && line[cut] & 0xc0 == 0x80 {
            cut -= 1;
        }
        // The cut line and the marker, written as one line into the emptied buffer.
        self.clear();
        self.bytes[..cut].copy_from_slice(&line[..cut]);
        let len = cut + TRUNCATION_MARKER.len();
        self.bytes[cut..len].copy_from_slice(TRUNCATION_MARKER.as_bytes());
        self.entries[0] = Entry { start: 0, len, at };
        self.head = len % REPLAY_BYTES;
        self.count = 1;
        self.used = len;
    }

    fn forget_oldest(&mut self) {
        if self.count == 0 {
            return;
        }
        self.used -= self.entries[self.oldest].len;
        self.oldest = (self.oldest + 1) % REPLAY_LINES;
        self.count -= 1;
    }

    /// Appends `prefix`, the line and `\n` to `out` for every line sent within
    /// [`REPLAY_WINDOW`] before `end` (default: the newest line), oldest first, then forgets
    /// them all (each line is replayed at most once). Returns how many lines were written.
    pub(crate) fn drain_into(
        &mut self,
        out: &mut Vec<u8>,
        prefix: &[u8],
        end: Option<Duration>,
    ) -> usize {
        self.drain(end, |out_line, _| {
            out.extend_from_slice(prefix);
            out.extend_from_slice(out_line);
            out.push(b'\n');
        })
    }

    /// Calls `f` with each line (and when it was sent) sent within [`REPLAY_WINDOW`] before
    /// `end` (default: the newest line), oldest first, then forgets them all. Returns how many.
    pub(crate) fn drain(
        &mut self,
        end: Option<Duration>,
        mut f: impl FnMut(&[u8], Duration),
    ) -> usize {
        let Some(newest) = self.count.checked_sub(1) else {
            return 0;
        };
        let end = end.unwrap_or(self.entries[(self.oldest + newest) % REPLAY_LINES].at);
        let mut line = Vec::new();
        let mut written = 0;
        for i in 0..self.count {
            let e = self.entries[(self.oldest + i) % REPLAY_LINES];
            // A clock stepped back makes older lines look newer: they are replayed (a
            // duplicate), never skipped.
            if end.saturating_sub(e.at) > REPLAY_WINDOW {
                continue;
            }
            let first = e.len.min(REPLAY_BYTES - e.start);
            if first == e.len {
                f(&self.bytes[e.start..e.start + e.len], e.at);
            } else {
                // The line wraps around the end of the buffer.
                line.clear();
                line.extend_from_slice(&self.bytes[e.start..]);
                line.extend_from_slice(&self.bytes[..e.len - first]);
                f(&line, e.at);
            }
            written += 1;
        }
        self.clear();
        written
    }

    /// Forgets every line (they were delivered, or replayed).
    pub(crate) fn clear(&mut self) {
        self.oldest = 0;
        self.count = 0;
        self.used = 0;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(r: &mut Recent) -> Vec<String> {
        let mut out = Vec::new();
        let n = r.drain_into(&mut out, b"> ", None);
        let lines: Vec<String> =
            String::from_utf8(out).unwrap().lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), n);
        lines
    }

    const T0: Duration = Duration::from_secs(1_800_000_000);

    #[test]
    fn keeps_the_last_lines_in_order_and_replays_them_once() {
        let mut r = Recent::default();
        assert!(drained(&mut r).is_empty());
        for i in 0..100 {
            r.push(format!("line {i}").as_bytes(), T0);
        }
        let want: Vec<String> = (100 - REPLAY_LINES..100).map(|i| format!("> line {i}")).collect();
        assert_eq!(drained(&mut r), want);
        assert!(drained(&mut r).is_empty(), "replayed twice");
        r.push(b"after", T0);
        assert_eq!(drained(&mut r), ["> after"]);
    }

    #[test]
    fn keeps_at_most_the_byte_budget_and_wraps_around() {
        let mut r = Recent::default();
        // Lines of 5,000 bytes: thirteen fit in 64 KiB, and the buffer wraps many times over.
        for i in 0..50u8 {
            r.push(&[b'a' + i % 26; 5000], T0);
            assert!(r.used <= REPLAY_BYTES);
        }
        let got = drained(&mut r);
        assert_eq!(got.len(), REPLAY_BYTES / 5000);
        for (line, i) in got.iter().zip(50 - got.len()..50) {
            let c = char::from(b'a' + i as u8 % 26);
            assert_eq!(line.len(), 2 + 5000);
            assert!(line[2..].chars().all(|x| x == c), "line {i} garbled");
        }
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_kept_cut_with_the_marker() {
        let mut r = Recent::default();
        r.push(b"small", T0);
        let long = "é".repeat(REPLAY_BYTES);
        r.push(long.as_bytes(), T0);
        let got = drained(&mut r);
        assert_eq!(got.len(), 1, "the long line takes the whole buffer");
        assert!(got[0].len() <= 2 + REPLAY_BYTES);
        assert!(got[0].ends_with(TRUNCATION_MARKER));
        assert!(got[0][2..got[0].len() - TRUNCATION_MARKER.len()].chars().all(|c| c == 'é'));
    }

    #[test]
    fn only_lines_within_the_window_of_the_newest_are_replayed() {
        let mut r = Recent::default();
        let ms = Duration::from_millis;
        r.push(b"old", T0);
        r.push(b"edge", T0 + ms(500));
        r.push(b"new", T0 + REPLAY_WINDOW + ms(500));
        assert_eq!(drained(&mut r), ["> edge", "> new"]);
        // A clock stepped back: the older-looking line is newer, and it is replayed.
        r.push(b"before the step", T0);
        r.push(b"after the step", T0 - ms(10_000));
        assert_eq!(drained(&mut r), ["> before the step", "> after the step"]);
        // Measured back from a given moment (the TCP hang-up) instead of the newest line.
        r.push(b"idle", T0);
        let mut out = Vec::new();
        assert_eq!(r.drain_into(&mut out, b"", Some(T0 + REPLAY_WINDOW + ms(1))), 0);
        r.push(b"busy", T0);
        assert_eq!(r.drain_into(&mut out, b"", Some(T0 + REPLAY_WINDOW)), 1);
    }
}
