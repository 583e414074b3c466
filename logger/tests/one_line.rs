//! Property: whatever a message or a field value holds, every text backend writes exactly one
//! line for one call, with no control character in it, and the Mock keeps the raw values.

use std::sync::Arc;

use logger::{Level, Logger, Mock, Stdout, Syslog, SyslogTarget};
use proptest::prelude::*;

/// Strings rich in what could break a line: CR, LF, other C0 and C1 controls, DEL, the Unicode
/// line and paragraph separators, quotes, backslashes, `=`, spaces, and ordinary text.
fn nasty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{1b}[31m".to_owned()),
        Just("\u{85}".to_owned()),
        Just("\u{2028}".to_owned()),
        Just("\u{7f}".to_owned()),
        Just("\0".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        Just("[AUDIT] forged".to_owned()),
        "[a-zé✓]{0,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn assert_clean_line(line: &str) {
    assert!(
        !line.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
        "control character in {line:?}"
    );
}

proptest! {
    #[test]
    fn stdout_writes_one_clean_line(msg in nasty(), value in nasty(), key in nasty()) {
        let out = Stdout::with_writer(Vec::new(), "p", Level::Debug);
        logger::audit_info!(out, "{}", msg; v = value);
        out.log(&logger::Record::new(Level::Info, format_args!("k"))
            .with_fields(&[logger::Field::new(&key, &value)]));
        let text = String::from_utf8(out.into_writer()).unwrap();
        prop_assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        prop_assert_eq!(lines.len(), 2, "{:?}", text);
        for line in lines {
            assert_clean_line(line);
        }
    }

    #[test]
    fn mock_lines_are_clean_and_records_raw(msg in nasty(), value in nasty()) {
        let log = Mock::new();
        logger::warning!(log, "{}", msg; v = value);
        let lines = log.get_all();
        prop_assert_eq!(lines.len(), 1);
        assert_clean_line(&lines[0]);
        let rec = &log.records()[0];
        prop_assert_eq!(&rec.message, &msg);
        prop_assert_eq!(rec.field("v"), Some(value.as_str()));
    }

    #[test]
    fn syslog_datagrams_are_one_clean_line(msg in nasty(), value in nasty()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let log: Arc<dyn Logger> = Arc::new(Syslog::new(SyslogTarget::Unix(path), "p"));
        logger::err!(log, "{}", msg; v = value);
        let mut buf = vec![0u8; 16_384];
        let n = rx.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert_clean_line(got);
    }
}
