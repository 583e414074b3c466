//! The circuit breaker: when the server looks down, stop the run instead of spending every
//! message's attempts on it.
//!
//! [`Breaker`] watches the whole pool through the mailer's counters. It opens when no
//! connection has succeeded and no message was accepted for the *window* (`--circuit-after`)
//! while at least [`ATTEMPTS`] connection attempts failed (refused, timed out, or dropped or
//! answered 421 before the session was ready). Any connection that succeeds, or any message
//! the server accepts, starts it over: a server that is merely flaky (some connections
//! refused, faults during transactions) never opens it, and neither does one restarting for
//! less than the window. Requiring a few failures as well as the time means one slow connect
//! never opens it either. The other rule, a message that gives up on connecting while nothing
//! else got through, lives with the senders (`run.rs`).

use std::time::Duration;

use mailer::Stats;
use tokio::time::Instant;

/// Failed connection attempts, since the last success, that the breaker needs to open.
pub const ATTEMPTS: u64 = 3;

/// The default window: two minutes, or five connect timeouts when those are longer (so a few
/// attempts that each wait for the whole connect timeout fit in it).
pub fn default_window(connect_timeout: Duration) -> Duration {
    (5 * connect_timeout).max(Duration::from_secs(120))
}

/// How often the breaker looks at the counters for a window: often enough that it opens
/// within a few percent of the window, and never busily.
pub fn tick(window: Duration) -> Duration {
    (window / 20).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Why the circuit opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// Connection attempts that failed since the last success (or the start).
    pub failed_attempts: u64,
    /// How long nothing got through.
    pub quiet_for: Duration,
}

/// The state of the breaker: when something last got through, and the failure count then.
#[derive(Debug)]
pub struct Breaker {
    window: Duration,
    /// When a connection last succeeded or a message was last accepted (or the run started).
    progress_at: Instant,
    /// The counters as last seen.
    seen: (u64, u64, u64),
    /// `connect_failures` when something last got through.
    failures_then: u64,
}

impl Breaker {
    /// A closed breaker with this window, starting from the mailer's counters `stats` at `now`.
    pub fn new(window: Duration, now: Instant, stats: &Stats) -> Breaker {
        Breaker {
            window,
            progress_at: now,
            seen: (stats.connects, stats.sent, stats.connect_failures),
            failures_then: stats.connect_failures,
        }
    }

    /// Looks at the counters at `now`; `Some` once the circuit opens.
    pub fn observe(&mut self, now: Instant, stats: &Stats) -> Option<Open> {
        let (connects, sent, _) = self.seen;
        if stats.connects > connects || stats.sent > sent {
            self.progress_at = now;
            self.failures_then = stats.connect_failures;
        }
        self.seen = (stats.connects, stats.sent, stats.connect_failures);
        let failed_attempts = stats.connect_failures.saturating_sub(self.failures_then);
        let quiet_for = now.saturating_duration_since(self.progress_at);
        (failed_attempts >= ATTEMPTS && quiet_for >= self.window)
            .then_some(Open { failed_attempts, quiet_for })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn stats(connects: u64, sent: u64, connect_failures: u64) -> Stats {
        let mut s = Stats::default();
        (s.connects, s.sent, s.connect_failures) = (connects, sent, connect_failures);
        s
    }

    #[test]
    fn opens_after_the_window_with_enough_failures_and_no_success() {
        let t0 = Instant::now();
        let mut b = Breaker::new(120 * S, t0, &stats(0, 0, 0));
        assert_eq!(b.observe(t0 + 10 * S, &stats(0, 0, 8)), None, "too early");
        let open = b.observe(t0 + 120 * S, &stats(0, 0, 9));
        assert_eq!(open, Some(Open { failed_attempts: 9, quiet_for: 120 * S }));
    }

    #[test]
    fn a_long_quiet_spell_needs_failed_attempts_too() {
        let t0 = Instant::now();
        let mut b = Breaker::new(10 * S, t0, &stats(1, 5, 0));
        // Nothing happens for a long time (a slow connect, a paced run): no reason to open.
        assert_eq!(b.observe(t0 + 100 * S, &stats(1, 5, 2)), None);
        assert!(b.observe(t0 + 101 * S, &stats(1, 5, 3)).is_some());
    }

    #[test]
    fn any_connection_or_accepted_message_starts_it_over() {
        let t0 = Instant::now();
        let mut b = Breaker::new(10 * S, t0, &stats(0, 0, 0));
        // A flaky server: failures, but a connection succeeds now and then.
        assert_eq!(b.observe(t0 + 9 * S, &stats(0, 0, 5)), None);
        assert_eq!(b.observe(t0 + 12 * S, &stats(1, 0, 6)), None, "a connection succeeded");
        assert_eq!(b.observe(t0 + 21 * S, &stats(1, 0, 20)), None, "10 s not over yet");
        // Messages accepted over a connection that stays open count as well.
        assert_eq!(b.observe(t0 + 21 * S, &stats(1, 1, 20)), None);
        assert_eq!(b.observe(t0 + 30 * S, &stats(1, 1, 22)), None, "two failures since");
        let open = b.observe(t0 + 31 * S, &stats(1, 1, 23));
        assert_eq!(open, Some(Open { failed_attempts: 3, quiet_for: 10 * S }));
    }

    #[test]
    fn the_default_window_fits_a_few_connect_timeouts() {
        assert_eq!(default_window(10 * S), 120 * S);
        assert_eq!(default_window(60 * S), 300 * S);
        assert_eq!(tick(120 * S), S);
        assert_eq!(tick(S), Duration::from_millis(50));
        assert_eq!(tick(Duration::ZERO), Duration::from_millis(10));
    }
}
