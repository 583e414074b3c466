//! A shared, cloneable byte buffer that implements `io::Write`: hand one clone to the code
//! under test (a logger's output or fallback, a child's stdout reader) and read the other.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

/// A cloneable `io::Write` whose clones append to one buffer.
#[derive(Clone, Default, Debug)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// An empty buffer.
    pub fn new() -> Self {
        Captured::default()
    }

    fn buffer(&self) -> MutexGuard<'_, Vec<u8>> {
        // A writer that panicked mid-append leaves bytes, not a broken invariant.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything written so far (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer()).into_owned()
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.buffer().clone()
    }

    /// The complete lines written so far (a last line without its line feed is left out:
    /// it may still be growing).
    pub fn lines(&self) -> Vec<String> {
        let text = self.text();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete.split('\n').filter(|_| !complete.is_empty()).map(str::to_owned).collect()
    }

    /// How many bytes were written so far.
    pub fn len(&self) -> usize {
        self.buffer().len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets what was written so far.
    pub fn clear(&self) {
        self.buffer().clear();
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_buffer_and_lines_are_complete_ones() {
        let captured = Captured::new();
        let mut writer = captured.clone();
        writer.write_all(b"one\ntwo\nthr").unwrap();
        assert_eq!(captured.text(), "one\ntwo\nthr");
        assert_eq!(captured.lines(), ["one", "two"]);
        writer.write_all(b"ee\n").unwrap();
        assert_eq!(captured.lines(), ["one", "two", "three"]);
        captured.clear();
        assert!(captured.is_empty() && captured.lines().is_empty());
    }
}
