//! Capturing what a logger writes, and reading the short line format back: tests assert on
//! the real output of the real backends, timestamps included.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A cloneable `io::Write` that appends to one shared buffer: hand one clone to a
/// `logger::Stdout` (or a syslog fallback) and read the text back from another.
#[derive(Clone, Default, Debug)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        SharedBuf::default()
    }

    /// Everything written so far (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The UTC time of day at the start of a short-format line (`HH:MM:SS.ffffff ...`).
pub fn time_of_day(line: &str) -> Option<Duration> {
    let stamp = line.get(..15)?;
    let (hms, micros) = stamp.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let micros: u64 = micros.parse().ok()?;
    Some(Duration::from_micros(((h * 60 + m) * 60 + s) * 1_000_000 + micros))
}

/// The value of `key=value` in a log line (unquoted values only), if present.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!(" {key}=");
    let start = line.find(&needle)? + needle.len();
    line[start..].split(' ').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_short_format() {
        let line = "22:14:03.472920 6 mailer backing off event=backoff attempt=2 delay_ms=41";
        let t = time_of_day(line).unwrap();
        assert_eq!(t, Duration::from_micros(((22 * 60 + 14) * 60 + 3) * 1_000_000 + 472_920));
        assert_eq!(field(line, "event"), Some("backoff"));
        assert_eq!(field(line, "delay_ms"), Some("41"));
        assert_eq!(field(line, "missing"), None);
    }
}
