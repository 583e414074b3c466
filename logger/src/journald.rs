//! [`Journald`]: the systemd journal's native protocol over its datagram socket.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::format::with_line_buffer;
use crate::{Level, Logger, Record};

/// journald's socket on a systemd machine.
pub const DEFAULT_SOCKET: &str = "/run/systemd/journal/socket";

/// The longest value sent; a longer one is cut (with [`crate::syslog::TRUNCATION_MARKER`]
/// appended) so the datagram stays well below the socket's limit.
const MAX_VALUE: usize = 48 * 1024;

/// Sends each record as one native-protocol datagram: `PRIORITY` (exactly 3, 4, 6 or 7),
/// `SYSLOG_IDENTIFIER`, `SYSLOG_PID`, `MESSAGE` (with `[AUDIT] ` on audit records, as in
/// every text backend), `AUDIT=1` on audit records, and each field under its upper-cased key.
///
/// The journal stores values as they are, so nothing is escaped: a value holding a newline is
/// sent in the protocol's length-prefixed form and stays one field of one entry. Keys are
/// upper-cased, characters outside `[A-Z0-9_]` become `_`, a leading `_` or digit is
/// prefixed with `F`, and keys that would collide with the ones above get an `F_` prefix.
///
/// Each record is a `send_to` on the socket path, so a restarted journald is picked up with
/// no reconnect logic; a record that cannot be sent is written to stderr instead.
///
/// ```no_run
/// use logger::{Journald, Level, Logger};
/// let log = Journald::new("svc").with_level(Level::Info);
/// logger::audit_info!(log, "granted"; user = "alice");
/// ```
pub struct Journald {
    /// Created once; `Err` only when the process was out of file descriptors, in which case
    /// each record tries a fresh socket.
    socket: io::Result<UnixDatagram>,
    path: PathBuf,
    program: String,
    pid: String,
    level: Level,
    fallback: Mutex<Box<dyn Write + Send>>,
}

impl Journald {
    /// A journald sink on [`DEFAULT_SOCKET`], threshold Debug. Never fails: whether the
    /// journal is there is found out per record.
    pub fn new(program: &str) -> Self {
        Journald {
            // Never connected: `send_to` per record follows a restarted journald without any
            // state to repair.
            socket: unbound(),
            path: PathBuf::from(DEFAULT_SOCKET),
            program: program.to_owned(),
            pid: std::process::id().to_string(),
            level: Level::Debug,
            fallback: Mutex::new(Box::new(io::stderr())),
        }
    }

    /// Sends to `path` instead of [`DEFAULT_SOCKET`] (tests bind their own receiver).
    pub fn with_socket_path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = path.as_ref().to_owned();
        self
    }

    /// The threshold: records at this level or more severe are sent.
    pub fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Where records go when the journal cannot take them (default stderr).
    pub fn with_fallback(mut self, fallback: impl Write + Send + 'static) -> Self {
        self.fallback = Mutex::new(Box::new(fallback));
        self
    }

    /// The socket path records are sent to.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Appends the datagram for `record` to `out`.
    fn encode(&self, out: &mut Vec<u8>, record: &Record<'_>) {
        push_field(out, "PRIORITY", &[b'0' + record.level().severity()]);
        push_field(out, "SYSLOG_IDENTIFIER", self.program.as_bytes());
        push_field(out, "SYSLOG_PID", self.pid.as_bytes());
        if record.is_audit() {
            push_field(out, "AUDIT", b"1");
        }
        with_line_buffer(|text| {
            if record.is_audit() {
                text.push_str("[AUDIT] ");
            }
            write_message_raw(text, record);
            push_field(out, "MESSAGE", text.as_bytes());
            let mut key = String::new();
            for field in record.fields() {
                text.clear();
                // Writing to a String cannot fail; a failing Display impl just stops early.
                let _ = write!(text, "{}", field.value);
                journal_key(&mut key, field.key);
                push_field(out, &key, text.as_bytes());
            }
        });
    }
}

/// The message unescaped: the journal keeps values binary-safe, so a newline stays a newline.
fn write_message_raw(out: &mut String, record: &Record<'_>) {
    match record.message().as_str() {
        Some(s) => out.push_str(s),
        None => {
            // Writing to a String cannot fail; a failing Display impl just stops early.
            let _ = out.write_fmt(record.message());
        }
    }
}

fn unbound() -> io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    // journald reads fast, but a wedged one must not wedge the service.
    s.set_write_timeout(Some(Duration::from_secs(1)))?;
    Ok(s)
}

/// Appends `KEY=value\n`, or `KEY\n<u64 LE length>value\n` when the value holds a newline.
fn push_field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let value = cut(value);
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(&value);
    out.push(b'\n');
}

fn cut(value: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if value.len() <= MAX_VALUE {
        return value.into();
    }
    let marker = crate::syslog::TRUNCATION_MARKER.as_bytes();
    let mut end = MAX_VALUE - marker.len();
    // Back up to a UTF-8 boundary: continuation bytes are 0b10xx_xxxx.
    while end > 0 && value[end] & 0xc0 == 0x80 {
        end -= 1;
    }
    let mut v = value[..end].to_vec();
    v.extend_from_slice(marker);
    v.into()
}

/// Names a journal field: `[A-Z0-9_]`, not starting with `_` or a digit, at most 64 bytes, and
/// never one of the fields this backend sets itself.
fn journal_key(out: &mut String, key: &str) {
    out.clear();
    for c in key.chars() {
        out.push(match c.to_ascii_uppercase() {
            c @ ('A'..='Z' | '0'..='9' | '_') => c,
            _ => '_',
        });
    }
    let reserved = matches!(
        out.as_str(),
        "MESSAGE" | "PRIORITY" | "SYSLOG_IDENTIFIER" | "SYSLOG_PID" | "AUDIT"
    );
    if reserved {
        out.insert_str(0, "F_");
    } else if out.is_empty() || out.starts_with(|c: char| c == '_' || c.is_ascii_digit()) {
        out.insert(0, 'F');
    }
    out.truncate(64);
}

impl Logger for Journald {
    fn enabled(&self, level: Level) -> bool {
        level <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() > self.level {
            return;
        }
        let mut datagram = Vec::with_capacity(256);
        self.encode(&mut datagram, record);
        let sent = match &self.socket {
            Ok(socket) => socket.send_to(&datagram, &self.path),
            Err(_) => unbound().and_then(|s| s.send_to(&datagram, &self.path)),
        };
        if let Err(e) = sent {
            // The same text a Stdout would print, so nothing is lost or unreadable.
            let line = with_line_buffer(|line| {
                // The path and the program name may hold any character: escaped, so the
                // fallback line stays one line.
                line.push_str("logger: journald ");
                crate::escape_into(line, &self.path.to_string_lossy());
                line.push_str(" unavailable (");
                crate::escape_into(line, &e.to_string());
                line.push_str("): ");
                crate::escape_into(line, &self.program);
                line.push(' ');
                line.push(char::from(b'0' + record.level().severity()));
                line.push(' ');
                crate::format::write_body(line, record);
                line.push('\n');
                line.clone()
            });
            let mut w = self.fallback.lock().unwrap_or_else(PoisonError::into_inner);
            // stderr is the last resort; nowhere is left to report its failure.
            let _ = w.write_all(line.as_bytes());
        }
    }
}

impl std::fmt::Debug for Journald {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journald")
            .field("path", &self.path)
            .field("program", &self.program)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_journal_names() {
        let mut k = String::new();
        for (input, want) in [
            ("delay_ms", "DELAY_MS"),
            ("peer.addr", "PEER_ADDR"),
            ("message", "F_MESSAGE"),
            ("priority", "F_PRIORITY"),
            ("_secret", "F_SECRET"),
            ("2fa", "F2FA"),
            ("", "F"),
        ] {
            journal_key(&mut k, input);
            assert_eq!(k, want, "{input}");
        }
        journal_key(&mut k, &"k".repeat(100));
        assert_eq!(k.len(), 64);
    }

    #[test]
    fn multi_line_values_are_length_prefixed() {
        let mut out = Vec::new();
        push_field(&mut out, "MESSAGE", b"a\nb");
        assert_eq!(out, b"MESSAGE\n\x03\0\0\0\0\0\0\0a\nb\n");
        out.clear();
        push_field(&mut out, "K", b"v");
        assert_eq!(out, b"K=v\n");
    }
}
