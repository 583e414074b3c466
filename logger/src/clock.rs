//! UTC civil time from `SystemTime`, written straight into a line buffer.
//!
//! The backends need three renderings of "now": the short `HH:MM:SS.ffffff` of stdout, the
//! RFC 3339 timestamp of RFC 5424 and the `Mmm dd HH:MM:SS` of RFC 3164. A calendar crate
//! would do, but the arithmetic is a dozen integer operations (Howard Hinnant's
//! `civil_from_days`) and formatting it by hand keeps it out of the profile.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The three timestamp formats the backends write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// `HH:MM:SS.ffffff` (stdout).
    TimeOfDay = 0,
    /// `2026-11-28T22:12:01.617363Z` (RFC 5424).
    Rfc3339 = 1,
    /// `Nov 28 22:12:01` (RFC 3164).
    Rfc3164 = 2,
}

/// Appends the current time in `stamp`'s format; returns it (since the epoch), so a caller
/// that needs the time too does not read the clock twice.
pub(crate) fn write_now(out: &mut String, stamp: Stamp) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    write_at(out, stamp, now);
    now
}

/// Appends `since` (after the epoch) in `stamp`'s format. Everything up to the second is
/// rendered once per second per thread and format, then copied; only the microseconds are
/// rendered per call. A thread that feeds a stdout and a syslog sink alternately keeps both
/// prefixes.
pub(crate) fn write_at(out: &mut String, stamp: Stamp, since: Duration) {
    thread_local! {
        static PREFIXES: RefCell<[(u64, String); 3]> = RefCell::new(Default::default());
    }
    let secs = since.as_secs();
    let cached = PREFIXES.try_with(|p| {
        let mut p = p.try_borrow_mut().ok()?;
        let (at, prefix) = &mut p[stamp as usize];
        if *at != secs || prefix.is_empty() {
            prefix.clear();
            Civil::from_secs(secs).write_prefix(prefix, stamp);
            *at = secs;
        }
        out.push_str(prefix);
        Some(())
    });
    // A thread being torn down has no thread-locals left: render without the cache.
    if !matches!(cached, Ok(Some(()))) {
        Civil::from_secs(secs).write_prefix(out, stamp);
    }
    match stamp {
        Stamp::TimeOfDay => push_micros(out, since.subsec_micros(), ""),
        Stamp::Rfc3339 => push_micros(out, since.subsec_micros(), "Z"),
        Stamp::Rfc3164 => {}
    }
}

/// A whole second broken down into UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    /// `secs` after the epoch, in UTC.
    fn from_secs(secs: u64) -> Civil {
        let rem = (secs % 86_400) as u32;
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        Civil { year, month, day, hour: rem / 3600, minute: rem / 60 % 60, second: rem % 60 }
    }

    /// Appends the part of `stamp` up to and including the seconds, and the `.` before the
    /// microseconds in the formats that have them.
    fn write_prefix(&self, out: &mut String, stamp: Stamp) {
        match stamp {
            Stamp::TimeOfDay => {
                self.write_hms(out);
                out.push('.');
            }
            Stamp::Rfc3339 => {
                push_digits(out, self.year.clamp(0, 9999) as u32, 4);
                out.push('-');
                push2(out, self.month);
                out.push('-');
                push2(out, self.day);
                out.push('T');
                self.write_hms(out);
                out.push('.');
            }
            Stamp::Rfc3164 => {
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                out.push_str(MONTHS[(self.month as usize).clamp(1, 12) - 1]);
                out.push(' ');
                // The day is space-padded: `Nov  8`.
                if self.day < 10 {
                    out.push(' ');
                    push_digits(out, self.day, 1);
                } else {
                    push2(out, self.day);
                }
                out.push(' ');
                self.write_hms(out);
            }
        }
    }

    fn write_hms(&self, out: &mut String) {
        push2(out, self.hour);
        out.push(':');
        push2(out, self.minute);
        out.push(':');
        push2(out, self.second);
    }
}

/// "00" to "99" back to back: a pair of digits is a two-byte copy out of this.
pub(crate) const PAIRS: &str = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// Appends `micros` (below 1,000,000) as six digits, then `suffix`: three pairs copied from
/// [`PAIRS`], the only part of a timestamp rendered per call.
fn push_micros(out: &mut String, micros: u32, suffix: &str) {
    let n = (micros % 1_000_000) as usize;
    for pair in [n / 10_000, n / 100 % 100, n % 100] {
        out.push_str(&PAIRS[pair * 2..pair * 2 + 2]);
    }
    out.push_str(suffix);
}

/// Appends `n % 100` as two digits. The arithmetic keeps both bytes provably ASCII, so each
/// push is a single byte store with no UTF-8 branch.
fn push2(out: &mut String, n: u32) {
    let n = (n % 100) as u8;
    out.push(char::from(b'0' + n / 10));
    out.push(char::from(b'0' + n % 10));
}

/// Appends the low `width` decimal digits of `n`, zero-padded (`width` 1, 2, 4 or 6).
fn push_digits(out: &mut String, n: u32, width: usize) {
    match width {
        1 => out.push(char::from(b'0' + (n % 10) as u8)),
        2 => push2(out, n),
        4 => {
            push2(out, n / 100);
            push2(out, n);
        }
        _ => {
            push2(out, n / 10_000);
            push2(out, n / 100);
            push2(out, n);
        }
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
/// Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms".
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(stamp: Stamp, secs: u64, micros: u32) -> String {
        let mut s = String::new();
        write_at(&mut s, stamp, Duration::new(secs, micros * 1000));
        s
    }

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_420), (2025, 11, 28));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn renders_all_three_formats() {
        // 2026-11-28T22:12:01.617363Z
        let t = 1_795_903_921;
        assert_eq!(at(Stamp::Rfc3339, t, 617_363), "2026-11-28T22:12:01.617363Z");
        assert_eq!(at(Stamp::TimeOfDay, t, 617_363), "22:12:01.617363");
        assert_eq!(at(Stamp::Rfc3164, t, 617_363), "Nov 28 22:12:01");
        assert_eq!(at(Stamp::Rfc3164, 1_794_182_400 + 3_600 * 5 + 7, 5), "Nov  9 05:00:07");
        assert_eq!(at(Stamp::TimeOfDay, 0, 7), "00:00:00.000007");
    }

    #[test]
    fn the_per_second_cache_never_serves_a_stale_or_foreign_prefix() {
        // Interleaved formats and seconds, as a thread feeding stdout and syslog sees them.
        let t = 1_795_903_921;
        for round in 0..3 {
            for dt in [0, 0, 1, 1, 0, 86_400, 2] {
                let micros = round * 1000 + dt as u32;
                let day = if dt == 86_400 { "29" } else { "28" };
                let sec = if dt == 86_400 { 1 } else { 1 + dt };
                assert_eq!(
                    at(Stamp::Rfc3339, t + dt, micros),
                    format!("2026-11-{day}T22:12:{sec:02}.{micros:06}Z")
                );
                assert_eq!(
                    at(Stamp::TimeOfDay, t + dt, micros),
                    format!("22:12:{sec:02}.{micros:06}")
                );
                assert_eq!(at(Stamp::Rfc3164, t + dt, micros), format!("Nov {day} 22:12:{sec:02}"));
            }
        }
    }

    #[test]
    fn now_is_today() {
        let mut s = String::new();
        write_now(&mut s, Stamp::Rfc3339);
        assert_eq!(s.len(), 27, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }

    #[test]
    fn agrees_with_day_counting_over_many_years() {
        // Walk day by day from 1970 through 2100 and check the calendar never skips or repeats.
        let mut prev = civil_from_days(0);
        for z in 1..(131 * 366) {
            let cur = civil_from_days(z);
            let next_day = (prev.0, prev.1, prev.2 + 1) == cur;
            let next_month = cur.2 == 1 && ((prev.0, prev.1 + 1) == (cur.0, cur.1));
            let next_year = (cur.1, cur.2) == (1, 1) && prev.0 + 1 == cur.0 && prev.1 == 12;
            assert!(next_day || next_month || next_year, "{prev:?} -> {cur:?}");
            prev = cur;
        }
    }
}
