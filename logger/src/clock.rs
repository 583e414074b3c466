//! UTC civil time from `SystemTime`, written straight into a line buffer.
//!
//! The backends need three renderings of "now": the short `HH:MM:SS.ffffff` of stdout, the
//! RFC 3339 timestamp of RFC 5424 and the `Mmm dd HH:MM:SS` of RFC 3164. A calendar crate
//! would do, but the arithmetic is a dozen integer operations (Howard Hinnant's
//! `civil_from_days`) and formatting it by hand keeps it out of the profile.

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time broken down into UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
    pub(crate) micros: u32,
}

impl Civil {
    /// The current time, in UTC.
    pub(crate) fn now() -> Civil {
        Civil::from_system_time(SystemTime::now())
    }

    /// `t` in UTC. Times before 1970 (a clock set very wrong) clamp to the epoch.
    pub(crate) fn from_system_time(t: SystemTime) -> Civil {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let days = (secs / 86_400) as i64;
        let rem = (secs % 86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            micros: since.subsec_micros(),
        }
    }

    /// Appends the current UTC time of day, `HH:MM:SS.ffffff`, without the calendar work
    /// (the stdout hot path).
    pub(crate) fn write_time_of_day_now(out: &mut String) {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let rem = (since.as_secs() % 86_400) as u32;
        out.reserve(15);
        push2(out, rem / 3600);
        out.push(':');
        push2(out, rem / 60 % 60);
        out.push(':');
        push2(out, rem % 60);
        out.push('.');
        push_digits(out, since.subsec_micros(), 6);
    }

    /// Appends `HH:MM:SS.ffffff`.
    pub(crate) fn write_time_of_day(&self, out: &mut String) {
        push2(out, self.hour);
        out.push(':');
        push2(out, self.minute);
        out.push(':');
        push2(out, self.second);
        out.push('.');
        push_digits(out, self.micros, 6);
    }

    /// Appends the RFC 3339 timestamp RFC 5424 wants: `2026-11-28T22:12:01.617363Z`.
    pub(crate) fn write_rfc3339(&self, out: &mut String) {
        push_digits(out, self.year.clamp(0, 9999) as u32, 4);
        out.push('-');
        push2(out, self.month);
        out.push('-');
        push2(out, self.day);
        out.push('T');
        self.write_time_of_day(out);
        out.push('Z');
    }

    /// Appends the RFC 3164 timestamp: `Nov  8 22:12:01` (day space-padded).
    pub(crate) fn write_rfc3164(&self, out: &mut String) {
        const MONTHS: [&str; 12] =
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        out.push_str(MONTHS[(self.month as usize).clamp(1, 12) - 1]);
        out.push(' ');
        if self.day < 10 {
            out.push(' ');
            push_digits(out, self.day, 1);
        } else {
            push2(out, self.day);
        }
        out.push(' ');
        push2(out, self.hour);
        out.push(':');
        push2(out, self.minute);
        out.push(':');
        push2(out, self.second);
    }
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
    use std::time::Duration;

    fn at(secs: u64, micros: u32) -> Civil {
        Civil::from_system_time(UNIX_EPOCH + Duration::new(secs, micros * 1000))
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
        let c = at(1_795_903_921, 617_363);
        let mut s = String::new();
        c.write_rfc3339(&mut s);
        assert_eq!(s, "2026-11-28T22:12:01.617363Z");
        s.clear();
        c.write_time_of_day(&mut s);
        assert_eq!(s, "22:12:01.617363");
        s.clear();
        c.write_rfc3164(&mut s);
        assert_eq!(s, "Nov 28 22:12:01");
        s.clear();
        at(1_794_182_400 + 3_600 * 5 + 7, 5).write_rfc3164(&mut s);
        assert_eq!(s, "Nov  9 05:00:07");
    }

    #[test]
    fn fast_time_of_day_agrees_with_civil() {
        let before = Civil::now();
        let mut s = String::new();
        Civil::write_time_of_day_now(&mut s);
        let after = Civil::now();
        let (mut a, mut b) = (String::new(), String::new());
        before.write_time_of_day(&mut a);
        after.write_time_of_day(&mut b);
        assert_eq!(s.len(), 15);
        assert!(a <= s && s <= b || b < a, "{a} <= {s} <= {b}");
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
