//! [`Backoff`]: the delay before each reconnect attempt, as a pure function of the attempt.

use std::time::Duration;

/// Exponential backoff with jitter, capped.
///
/// Attempt 0 waits nothing (the first reconnect after a dropped connection is immediate: the
/// usual cause is an idle timeout on the server). Attempt `n >= 1` waits
/// `min(base * 2^(n-1), max)` times a jitter factor in `[0.8, 1.2)`, and never more than `max`
/// after jitter (Boulder applied the jitter after the cap and could exceed it).
/// With base 100 ms and max 1 s, a jitter sample of 0.5 (factor 1.0) gives 0, 100, 200,
/// 400 ms for attempts 0 to 3; attempt 30 with any jitter gives 1 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// Lowest jitter factor.
    pub(crate) const JITTER_MIN: f64 = 0.8;
    /// Jitter factors lie in `[JITTER_MIN, JITTER_MIN + JITTER_SPAN)`.
    pub(crate) const JITTER_SPAN: f64 = 0.4;

    /// A backoff from `base` doubling up to `max`.
    pub(crate) const fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max }
    }

    /// The delay before attempt `attempt` without jitter: 0 for attempt 0, then
    /// `min(base * 2^(attempt-1), max)`. Saturates instead of overflowing.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).map_or(self.max, |d| d.min(self.max))
    }

    /// The delay before attempt `attempt` given a uniform sample `jitter_sample` in `[0, 1)`
    /// (values outside are clamped): `ceiling(attempt) * (0.8 + 0.4 * sample)`, at most `max`.
    pub(crate) fn delay(&self, attempt: u32, jitter_sample: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        if ceiling.is_zero() {
            return ceiling;
        }
        let sample = if jitter_sample.is_nan() { 0.5 } else { jitter_sample.clamp(0.0, 1.0) };
        let factor = Self::JITTER_MIN + Self::JITTER_SPAN * sample;
        // What `mul_f64` computes, without its panic when the product overflows a Duration
        // (a ceiling near `Duration::MAX`, from an unbounded `max`): such a delay is `max`.
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * factor)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// [`Backoff::delay`] with a fresh random jitter sample.
    pub(crate) fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn attempt_zero_is_zero_whatever_the_jitter() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        for s in [0.0, 0.3, 0.999_999, 1.0, -5.0, f64::NAN] {
            assert_eq!(b.delay(0, s), Duration::ZERO);
        }
    }

    #[test]
    fn delays_stay_within_the_jitter_bounds() {
        let base = 10 * MS;
        let max = 1_000 * MS;
        let b = Backoff::new(base, max);
        for attempt in 1..40u32 {
            let ceiling = if attempt > 32 {
                max
            } else {
                base.saturating_mul(1u32 << (attempt - 1).min(31)).min(max)
            };
            assert_eq!(b.ceiling(attempt), ceiling, "attempt {attempt}");
            for i in 0..100 {
                let s = f64::from(i) / 100.0;
                let d = b.delay(attempt, s);
                assert!(d >= ceiling.mul_f64(0.8), "attempt {attempt} sample {s}: {d:?}");
                assert!(d <= max, "attempt {attempt} sample {s}: {d:?} above max");
                if ceiling.mul_f64(1.2) <= max {
                    assert!(d < ceiling.mul_f64(1.2), "attempt {attempt} sample {s}: {d:?}");
                }
            }
        }
    }

    #[test]
    fn the_documented_example() {
        let b = Backoff::new(100 * MS, Duration::from_secs(1));
        assert_eq!(b.delay(0, 0.5), Duration::ZERO);
        assert_eq!(b.delay(1, 0.5), 100 * MS);
        assert_eq!(b.delay(3, 0.5), 400 * MS);
        assert_eq!(b.delay(30, 0.99), Duration::from_secs(1));
    }

    #[test]
    fn grows_by_doubling_until_the_cap() {
        let b = Backoff::new(100 * MS, 1_000 * MS);
        let mid: Vec<_> = (0..7).map(|n| b.delay(n, 0.5)).collect();
        assert_eq!(mid, [0, 100, 200, 400, 800, 1000, 1000].map(|ms| ms * MS));
    }

    #[test]
    fn never_above_max_after_jitter() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        for attempt in [9, 10, 20, 64, u32::MAX] {
            assert_eq!(b.delay(attempt, 0.999_999), Duration::from_secs(300), "{attempt}");
            assert!(b.delay_random(attempt) <= Duration::from_secs(300));
        }
    }

    #[test]
    fn huge_base_saturates_instead_of_overflowing() {
        let b = Backoff::new(Duration::MAX, Duration::from_secs(5));
        assert_eq!(b.ceiling(40), Duration::from_secs(5));
        assert_eq!(b.delay(40, 0.0), Duration::from_secs(4));
        assert_eq!(b.delay(2, 0.99), Duration::from_secs(5));
    }

    #[test]
    fn an_unbounded_max_caps_instead_of_overflowing() {
        // A ceiling near Duration::MAX times a jitter above 1 does not fit a Duration.
        let b = Backoff::new(Duration::from_secs(1 << 62), Duration::MAX);
        assert_eq!(b.delay(1, 0.5), Duration::from_secs(1 << 62));
        assert_eq!(b.delay(3, 0.999_999), Duration::MAX);
        assert!(b.delay(3, 0.0) >= Duration::MAX.mul_f64(0.79));
        let b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(4));
    }

    #[test]
    fn random_delays_cover_the_jitter_range() {
        let b = Backoff::new(1_000 * MS, Duration::from_secs(60));
        let samples: Vec<_> = (0..2_000).map(|_| b.delay_random(1)).collect();
        assert!(samples.iter().all(|d| *d >= 800 * MS && *d < 1_200 * MS));
        assert!(samples.iter().any(|d| *d < 900 * MS));
        assert!(samples.iter().any(|d| *d > 1_100 * MS));
    }
}
