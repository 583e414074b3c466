//! `Journald` against a datagram receiver in the test that parses the native protocol.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use logger::{Journald, Level, Logger};
use test_support::Captured;

/// Parses one native-protocol datagram: `KEY=value\n`, or `KEY\n<u64 LE len><bytes>\n`.
fn parse(mut d: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let nl = d.iter().position(|&b| b == b'\n').expect("line ends with \\n");
        let line = &d[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            out.push((String::from_utf8(line[..eq].to_vec()).unwrap(), line[eq + 1..].to_vec()));
            d = &d[nl + 1..];
        } else {
            let key = String::from_utf8(line.to_vec()).unwrap();
            let rest = &d[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let value = rest[8..8 + len].to_vec();
            assert_eq!(rest[8 + len], b'\n', "binary value must end with \\n");
            out.push((key, value));
            d = &rest[8 + len + 1..];
        }
    }
    for (key, _) in &out {
        assert!(
            key.len() <= 64
                && !key.starts_with('_')
                && key.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "bad journal key {key:?}"
        );
    }
    out
}

fn receiver() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (dir, path, rx)
}

fn recv(rx: &UnixDatagram) -> BTreeMap<String, String> {
    let mut buf = vec![0u8; 200_000];
    let n = rx.recv(&mut buf).unwrap();
    parse(&buf[..n]).into_iter().map(|(k, v)| (k, String::from_utf8(v).unwrap())).collect()
}

#[test]
fn fields_priority_identifier_and_audit() {
    let (_dir, path, rx) = receiver();
    let log = Journald::new("probe").with_socket_path(&path);
    logger::audit_err!(log, "denied"; user = "alice", delay_ms = 400, message = "clash");
    let e = recv(&rx);
    assert_eq!(e["PRIORITY"], "3");
    assert_eq!(e["SYSLOG_IDENTIFIER"], "probe");
    assert_eq!(e["SYSLOG_PID"], std::process::id().to_string());
    assert_eq!(e["MESSAGE"], "[AUDIT] denied");
    assert_eq!(e["AUDIT"], "1");
    assert_eq!(e["USER"], "alice");
    assert_eq!(e["DELAY_MS"], "400");
    assert_eq!(e["F_MESSAGE"], "clash");
}

#[test]
fn priority_is_exactly_3_4_6_7_and_no_audit_field_otherwise() {
    let (_dir, path, rx) = receiver();
    let log = Journald::new("p").with_socket_path(&path);
    for level in Level::ALL {
        logger::log!(log, level, false, "x");
        let e = recv(&rx);
        assert_eq!(e["PRIORITY"], level.severity().to_string());
        assert!(!e.contains_key("AUDIT"));
    }
    let got: Vec<u8> = Level::ALL.iter().map(|l| l.severity()).collect();
    assert_eq!(got, [3, 4, 6, 7]);
}

#[test]
fn multi_line_values_stay_one_field() {
    let (_dir, path, rx) = receiver();
    let log = Journald::new("p").with_socket_path(&path);
    logger::info!(log, "line one\nPRIORITY=0\nline three"; trace = "a\nb=c\n");
    let e = recv(&rx);
    assert_eq!(e["MESSAGE"], "line one\nPRIORITY=0\nline three");
    assert_eq!(e["PRIORITY"], "6");
    assert_eq!(e["TRACE"], "a\nb=c\n");
}

#[test]
fn huge_values_are_cut_with_the_marker_so_the_datagram_still_fits() {
    let (_dir, path, rx) = receiver();
    let log = Journald::new("p").with_socket_path(&path);
    let huge = "ä".repeat(150_000);
    logger::info!(log, "{}", huge; also = huge);
    let e = recv(&rx);
    for key in ["MESSAGE", "ALSO"] {
        assert!(e[key].ends_with(logger::syslog::TRUNCATION_MARKER), "{key}");
        assert!(e[key].len() <= 48 * 1024, "{key}: {}", e[key].len());
        assert!(e[key].starts_with("ää"));
    }
}

#[test]
fn threshold_and_fallback_when_the_journal_is_absent() {
    let (_dir, path, rx) = receiver();
    let log = Journald::new("p").with_socket_path(&path).with_level(Level::Warning);
    assert!(!log.enabled(Level::Info));
    log.info("dropped");
    log.warning("kept");
    assert_eq!(recv(&rx)["MESSAGE"], "kept");

    drop(rx);
    let fallback = Captured::default();
    let log = Journald::new("p").with_socket_path(&path).with_fallback(fallback.clone());
    log.err("nobody\nlistens");
    let text = fallback.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("unavailable") && text.ends_with("p 3 nobody\\nlistens\n"), "{text}");
}

#[test]
fn a_restarted_journal_is_picked_up_without_reconnecting() {
    let (_dir, path, rx) = receiver();
    let log = Journald::new("p").with_socket_path(&path).with_fallback(Captured::default());
    log.info("one");
    assert_eq!(recv(&rx)["MESSAGE"], "one");
    drop(rx);
    std::fs::remove_file(&path).unwrap();
    log.info("lost");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    log.info("two");
    assert_eq!(recv(&rx)["MESSAGE"], "two");
}

#[test]
fn new_with_journald_only() {
    let (_dir, path, rx) = receiver();
    let mut config = logger::Config::new("svc");
    config.stdout_level = None;
    config.journald = Some(path);
    config.journald_level = Level::Debug;
    let log = logger::new(config);
    log.debug("deep");
    let e = recv(&rx);
    assert_eq!((e["MESSAGE"].as_str(), e["PRIORITY"].as_str()), ("deep", "7"));
    assert_eq!(e["SYSLOG_IDENTIFIER"], "svc");
}

#[test]
fn the_fallback_line_stays_one_line_whatever_the_path_and_program_hold() {
    let dir = tempfile::tempdir().unwrap();
    let fallback = Captured::default();
    let log = Journald::new("p\nforged 3 x")
        .with_socket_path(dir.path().join("no\njournal"))
        .with_fallback(fallback.clone());
    log.err("m");
    let text = fallback.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("no\\njournal") && text.ends_with("p\\nforged 3 x 3 m\n"), "{text}");
}
