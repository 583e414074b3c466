//! [`Value`]: a field's value, with the common types kept apart from "anything `Display`".
//!
//! Most values are strings and integers. Rendering those through `core::fmt` costs more than
//! the rest of a line (a `write!` of one `i32` is about 150 instructions); copying a `&str` or
//! formatting digits directly is a tenth of that. The macros pick the variant at compile time
//! (autoref specialisation: a method on the value's own type wins over the blanket one on
//! `&T: Display`), so `attempt = 3` is an `I64` and `peer = addr` is `Display`, with no cost
//! at run time. JSON lines also learn from it which values are numbers and booleans.

use std::borrow::Cow;
use std::fmt;

/// A field's value: a string, an integer, a boolean, or anything else that is `Display`.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Value<'a> {
    /// Text, written as it is (escaped).
    Str(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// `true` or `false`.
    Bool(bool),
    /// Anything else, rendered with `Display`.
    Display(&'a dyn fmt::Display),
}

impl Value<'_> {
    /// Appends the value's text, unescaped.
    pub(crate) fn write_raw(&self, out: &mut String) {
        match *self {
            Value::Str(s) => out.push_str(s),
            Value::I64(n) => {
                if n < 0 {
                    out.push('-');
                }
                push_u64(out, n.unsigned_abs());
            }
            Value::U64(n) => push_u64(out, n),
            Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Value::Display(d) => {
                use fmt::Write as _;
                // Writing to a String cannot fail; a Display impl that errors stops early.
                let _ = write!(out, "{d}");
            }
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Str(s) => f.write_str(s),
            Value::I64(n) => fmt::Display::fmt(&n, f),
            Value::U64(n) => fmt::Display::fmt(&n, f),
            Value::Bool(b) => fmt::Display::fmt(&b, f),
            Value::Display(d) => d.fmt(f),
        }
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Appends `n` in decimal, two digits at a time from a table of pairs.
pub(crate) fn push_u64(out: &mut String, n: u64) {
    use crate::clock::PAIRS;
    // Most values are small: no buffer, no loop.
    if n < 10 {
        out.push(char::from(b'0' + n as u8));
        return;
    }
    if n < 100 {
        let p = n as usize * 2;
        out.push_str(&PAIRS[p..p + 2]);
        return;
    }
    // Pairs from the right into a stack buffer of pair indices, then copied out from the left.
    let mut pairs = [0u8; 10];
    let mut count = 0;
    let mut rest = n;
    while rest >= 100 {
        pairs[count] = (rest % 100) as u8;
        rest /= 100;
        count += 1;
    }
    if rest >= 10 {
        let p = rest as usize * 2;
        out.push_str(&PAIRS[p..p + 2]);
    } else {
        out.push(char::from(b'0' + rest as u8));
    }
    for &pair in pairs[..count].iter().rev() {
        let p = pair as usize * 2;
        out.push_str(&PAIRS[p..p + 2]);
    }
}

/// What the macros call to turn a value into a [`Value`]; not for use outside them.
#[doc(hidden)]
pub mod __private {
    use super::*;
    use crate::record::{KEYS_CLEAN, KEYS_UNRESERVED, MESSAGE_JSON_PLAIN, MESSAGE_PLAIN};

    /// What is true of a format string: the `MESSAGE_PLAIN` bit when it is printable ASCII
    /// without `{` or `}`, and `MESSAGE_JSON_PLAIN` when it also has no `"` or backslash.
    /// Without braces `Arguments::as_str` gives back exactly the literal; with a placeholder
    /// the compiler may inline a literal argument into the string (`format_args!("{}", "a\nb")`
    /// has `as_str() == Some("a\nb")`), so then nothing is claimed.
    pub const fn check_message(format: &str) -> u8 {
        let b = format.as_bytes();
        let (mut plain, mut json) = (true, true);
        let mut i = 0;
        while i < b.len() {
            plain &= b[i] >= 0x20 && b[i] < 0x7f && b[i] != b'{' && b[i] != b'}';
            json &= b[i] != b'"' && b[i] != b'\\';
            i += 1;
        }
        match (plain, json) {
            (true, true) => MESSAGE_PLAIN | MESSAGE_JSON_PLAIN,
            (true, false) => MESSAGE_PLAIN,
            _ => 0,
        }
    }

    /// What is true of all of `keys`: the `KEYS_CLEAN` and `KEYS_UNRESERVED` bits. Evaluated
    /// at compile time by the macros, so a record's keys are checked once per call site, not
    /// once per call.
    pub const fn check_keys(keys: &[&str]) -> u8 {
        let (mut clean, mut unreserved) = (true, true);
        let mut i = 0;
        while i < keys.len() {
            let key = keys[i].as_bytes();
            clean &= !key.is_empty();
            let mut j = 0;
            while j < key.len() {
                let b = key[j];
                clean &= b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-';
                j += 1;
            }
            let mut r = 0;
            while r < crate::json::RESERVED.len() {
                unreserved &= !eq(key, crate::json::RESERVED[r].as_bytes());
                r += 1;
            }
            i += 1;
        }
        (if clean { KEYS_CLEAN } else { 0 }) | if unreserved { KEYS_UNRESERVED } else { 0 }
    }

    const fn eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The specific conversions: strings, integers, booleans. (Not `&String`: the blanket
    /// `DisplayValue for &T` would apply at the same step and make the call ambiguous; a
    /// `&String` value takes the `Display` path.)
    pub trait FastValue {
        fn __logger_field_value(&self) -> Value<'_>;
    }

    /// The fallback for anything `Display`; it is implemented on `&T`, so a `FastValue` on
    /// the type itself is found first.
    pub trait DisplayValue {
        fn __logger_field_value(&self) -> Value<'_>;
    }

    impl<T: fmt::Display> DisplayValue for &T {
        fn __logger_field_value(&self) -> Value<'_> {
            Value::Display(*self)
        }
    }

    macro_rules! fast {
        ($($ty:ty => |$v:ident| $e:expr),* $(,)?) => {$(
            impl FastValue for $ty {
                fn __logger_field_value(&self) -> Value<'_> {
                    let $v = self;
                    $e
                }
            }
        )*};
    }

    fast! {
        str => |s| Value::Str(s),
        &str => |s| Value::Str(s),
        String => |s| Value::Str(s),
        Cow<'_, str> => |s| Value::Str(s),
        bool => |b| Value::Bool(*b),
        i8 => |n| Value::I64(i64::from(*n)),
        i16 => |n| Value::I64(i64::from(*n)),
        i32 => |n| Value::I64(i64::from(*n)),
        i64 => |n| Value::I64(*n),
        isize => |n| Value::I64(*n as i64),
        u8 => |n| Value::U64(u64::from(*n)),
        u16 => |n| Value::U64(u64::from(*n)),
        u32 => |n| Value::U64(u64::from(*n)),
        u64 => |n| Value::U64(*n),
        usize => |n| Value::U64(*n as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::__private::{DisplayValue as _, FastValue as _};
    use super::*;

    fn raw(v: Value<'_>) -> String {
        let mut s = String::new();
        v.write_raw(&mut s);
        assert_eq!(s, v.to_string(), "write_raw and Display agree");
        s
    }

    #[test]
    fn keys_are_checked_as_the_backends_would() {
        use super::__private::check_keys;
        use crate::record::{KEYS_CLEAN, KEYS_UNRESERVED};
        assert_eq!(check_keys(&[]), KEYS_CLEAN | KEYS_UNRESERVED);
        assert_eq!(check_keys(&["attempt", "peer.addr", "x-y_1"]), KEYS_CLEAN | KEYS_UNRESERVED);
        assert_eq!(check_keys(&["attempt", "ключ"]), KEYS_UNRESERVED);
        assert_eq!(check_keys(&["level"]), KEYS_CLEAN);
        assert_eq!(check_keys(&["", "message"]), 0);
    }

    #[test]
    fn format_strings_are_checked_for_what_needs_escaping() {
        use super::__private::check_message;
        use crate::record::{MESSAGE_JSON_PLAIN, MESSAGE_PLAIN};
        assert_eq!(check_message("delivered message"), MESSAGE_PLAIN | MESSAGE_JSON_PLAIN);
        assert_eq!(check_message("sent {} of {{n}}"), 0, "placeholders: nothing is claimed");
        assert_eq!(check_message(r#"say "hi" \ there"#), MESSAGE_PLAIN);
        assert_eq!(check_message("two\nlines"), 0);
        assert_eq!(check_message("héllo"), 0);
        assert_eq!(check_message("tab\tdel\u{7f}"), 0);
    }

    #[test]
    fn integers_render_like_display() {
        for n in [0u64, 1, 9, 10, 99, 100, 101, 999, 1000, 12_345, u64::MAX] {
            assert_eq!(raw(Value::U64(n)), n.to_string());
        }
        for n in [0i64, -1, -10, -99, -100, 42, i64::MIN, i64::MAX] {
            assert_eq!(raw(Value::I64(n)), n.to_string());
        }
    }

    #[test]
    #[allow(clippy::needless_borrow)] // `(&value).method()` is exactly what the macro writes
    fn the_macro_picks_the_specific_variant_where_there_is_one() {
        let (s, owned, n, u, b, f) = ("x", String::from("y"), -3i32, 7usize, true, 0.5f64);
        assert!(matches!((&s).__logger_field_value(), Value::Str("x")));
        assert!(matches!((&owned).__logger_field_value(), Value::Str("y")));
        assert!(matches!((&n).__logger_field_value(), Value::I64(-3)));
        assert!(matches!((&u).__logger_field_value(), Value::U64(7)));
        assert!(matches!((&b).__logger_field_value(), Value::Bool(true)));
        assert!(matches!((&f).__logger_field_value(), Value::Display(_)));
        assert_eq!(raw((&f).__logger_field_value()), "0.5");
        let e = std::io::Error::other("boom");
        assert_eq!(raw((&e).__logger_field_value()), "boom");
    }
}
