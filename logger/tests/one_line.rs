//! Property: whatever a message, a key or a field value holds, every text backend writes
//! exactly one line for one call, with no control character in it, and the Mock keeps the raw
//! values. Inputs come from a seeded generator (reproducible, no extra dependency), built from
//! the pieces that could break a line.

use std::sync::Arc;

use logger::{Field, Level, Logger, Mock, Record, Stdout, Syslog, SyslogTarget};

const CASES: usize = 500;

const PIECES: &[&str] = &[
    "\n",
    "\r\n",
    "\r",
    "\u{1b}[31m",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\u{7f}",
    "\0",
    "\t",
    "\"",
    "\\",
    "=",
    " ",
    "[AUDIT] forged",
    "00:00:00.000000 3 p ",
    "INFO: ",
    "<134>1 ",
    "plain",
    "é",
    "✓",
    "\u{10ffff}",
    "",
];

/// xorshift64*: a fixed seed gives the same cases on every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn nasty(&mut self) -> String {
        let n = self.next() % 8;
        (0..n).map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize]).collect()
    }
}

fn assert_clean_line(line: &str, case: &[String]) {
    assert!(
        !line.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
        "control character in {line:?} from {case:?}"
    );
}

#[test]
fn stdout_writes_one_clean_line_per_call() {
    let mut g = Gen(0x5eed_0001);
    for _ in 0..CASES {
        let (msg, key, value) = (g.nasty(), g.nasty(), g.nasty());
        let case = [msg.clone(), key.clone(), value.clone()];
        let out = Stdout::with_writer(Vec::new(), "p", Level::Debug);
        logger::audit_info!(out, "{}", msg; v = value);
        out.log(
            &Record::new(Level::Info, format_args!("k")).with_fields(&[Field::new(&key, &value)]),
        );
        let text = String::from_utf8(out.into_writer()).unwrap();
        assert!(text.ends_with('\n'), "{case:?}");
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2, "{text:?} from {case:?}");
        for line in lines {
            assert_clean_line(line, &case);
        }
    }
}

#[test]
fn mock_lines_are_clean_and_records_keep_the_raw_values() {
    let mut g = Gen(0x5eed_0002);
    for _ in 0..CASES {
        let (msg, value) = (g.nasty(), g.nasty());
        let case = [msg.clone(), value.clone()];
        let log = Mock::new();
        logger::warning!(log, "{}", msg; v = value);
        let lines = log.get_all();
        assert_eq!(lines.len(), 1, "{case:?}");
        assert_clean_line(&lines[0], &case);
        let rec = &log.records()[0];
        assert_eq!(rec.message, msg);
        assert_eq!(rec.field("v"), Some(value.as_str()));
    }
}

#[test]
fn syslog_datagrams_are_one_clean_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let log: Arc<dyn Logger> = Arc::new(Syslog::new(SyslogTarget::Unix(path), "p"));
    let mut g = Gen(0x5eed_0003);
    let mut buf = vec![0u8; 16_384];
    for _ in 0..CASES {
        let (msg, value) = (g.nasty(), g.nasty());
        let case = [msg.clone(), value.clone()];
        logger::err!(log, "{}", msg; v = value);
        let n = rx.recv(&mut buf).unwrap();
        assert_clean_line(std::str::from_utf8(&buf[..n]).unwrap(), &case);
    }
}

#[test]
fn syslog_fallback_notices_and_replayed_lines_are_one_clean_line_each() {
    // The socket path, shown in the outage notice, holds a line break too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log\nlogger: p forged.sock");
    let mut rx = Some(std::os::unix::net::UnixDatagram::bind(&path).unwrap());
    let fallback = test_support::Captured::default();
    let log: Arc<dyn Logger> =
        Arc::new(Syslog::new(SyslogTarget::Unix(path), "p").with_fallback(fallback.clone()));
    let mut g = Gen(0x5eed_0004);
    let mut cases = Vec::new();
    // Delivered (and kept for replay), then the daemon goes: replayed, then fallback lines.
    for i in 0..40 {
        let (msg, value) = (g.nasty(), g.nasty());
        cases.push([msg.clone(), value.clone()]);
        logger::err!(log, "{}", msg; v = value);
        if let Some(socket) = &rx {
            socket.recv(&mut [0u8; 16_384]).unwrap();
        }
        if i == 19 {
            rx = None;
        }
    }
    assert!(rx.is_none());
    let text = fallback.text();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        assert_clean_line(line, &cases.concat());
    }
    // One notice, the 20 delivered lines replayed, and 20 lines of fallback: nothing else.
    let notices = lines.iter().filter(|l| l.contains(" unavailable (")).count();
    let replayed = lines.iter().filter(|l| l.contains(logger::syslog::REPLAY_MARKER)).count();
    assert_eq!((notices, replayed, lines.len()), (1, 20, 41), "{text}");
}
