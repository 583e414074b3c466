//! [`Rate`]: the token bucket of `Config::with_rate`, shared by every send of one mailer.
//!
//! A bucket of `n` tokens refilled at `n` per `per`: up to `n` transactions at once, then one
//! every `per / n`. Kept as GCRA (one "theoretical arrival time" instead of a token count):
//! each transaction reserves the next instant the bucket allows and sleeps until then on
//! tokio's clock, holding nothing (no connection, no lock). Hand-written rather than
//! `governor`: its waits run on `futures-timer`, which tokio's paused test clock cannot drive,
//! and the arithmetic is these few lines.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub(crate) struct Rate {
    /// `per / n`: the spacing once the burst is used up.
    interval: Duration,
    /// `per - interval`: how far ahead of the steady pace a burst may run.
    tolerance: Duration,
    /// When the bucket will next be full again at the steady pace ("theoretical arrival").
    next: Mutex<Option<Instant>>,
}

impl Rate {
    /// A bucket for `n` per `per`; `None` for no limit (`n == 0` is refused by
    /// `Config::validate`).
    pub(crate) fn new(n: u32, per: Duration) -> Option<Rate> {
        if n == 0 || per.is_zero() {
            return None;
        }
        // Rounded up, so that rounding never lets the bucket run faster than `n` per `per`.
        let nanos = per.as_nanos().div_ceil(u128::from(n));
        let interval = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)).min(per);
        Some(Rate { interval, tolerance: per - interval, next: Mutex::new(None) })
    }

    /// Reserves the next token and returns when it may be used (`now` or later).
    pub(crate) fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let t = next.map_or(now, |t| t.max(now));
        *next = Some(t + self.interval);
        t.checked_sub(self.tolerance).map_or(now, |at| at.max(now))
    }

    /// Waits for a token; `false` if `cancel` fired first (the token is then lost, which only
    /// ever slows later sends down, never speeds them up).
    pub(crate) async fn wait(&self, cancel: &CancellationToken) -> bool {
        let at = self.reserve(Instant::now());
        if at <= Instant::now() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep_until(at) => true,
            () = cancel.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_of_n_then_one_every_per_over_n() {
        let rate = Rate::new(4, 1_000 * MS).unwrap();
        let t0 = Instant::now();
        let at: Vec<u128> =
            (0..8).map(|_| rate.reserve(t0).duration_since(t0).as_millis()).collect();
        assert_eq!(at, [0, 0, 0, 0, 250, 500, 750, 1000]);
    }

    #[test]
    fn an_idle_bucket_refills_but_never_beyond_n() {
        let rate = Rate::new(2, 1_000 * MS).unwrap();
        let t0 = Instant::now();
        rate.reserve(t0);
        rate.reserve(t0);
        // Ten seconds later the bucket is full again: two at once, not twenty.
        let later = t0 + 10_000 * MS;
        let at: Vec<u128> =
            (0..3).map(|_| rate.reserve(later).duration_since(later).as_millis()).collect();
        assert_eq!(at, [0, 0, 500]);
    }

    #[test]
    fn in_any_window_of_per_at_most_two_n_minus_one_start() {
        // The token bucket's bound: n at the start of a window plus the refills within it.
        let rate = Rate::new(14, 1_000 * MS).unwrap();
        let t0 = Instant::now();
        let at: Vec<Instant> = (0..200).map(|_| rate.reserve(t0)).collect();
        for (i, start) in at.iter().enumerate() {
            let within = at[i..].iter().take_while(|t| **t < *start + 1_000 * MS).count();
            assert!(within <= 27, "{within} in the window starting at {i}");
        }
        assert!(at[199] - t0 >= 185 * (1_000 * MS) / 14);
    }

    #[test]
    fn no_limit_when_n_or_per_is_zero() {
        assert!(Rate::new(0, 1_000 * MS).is_none());
        assert!(Rate::new(5, Duration::ZERO).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn waits_on_tokios_clock_and_stops_when_cancelled() {
        let rate = Rate::new(2, 1_000 * MS).unwrap();
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(rate.wait(&cancel).await);
        }
        assert_eq!(Instant::now() - t0, 1_000 * MS);
        let waiting = rate.wait(&cancel);
        cancel.cancel();
        assert!(!waiting.await);
        assert_eq!(Instant::now() - t0, 1_000 * MS, "a cancelled wait returns at once");
    }
}
