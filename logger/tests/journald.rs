//! `Journald` against a datagram receiver in the test that speaks the native protocol as
//! journald does: a datagram is one entry, and an empty datagram carrying a file descriptor
//! (a sealed memfd) holds an entry too large for one datagram.

use std::collections::BTreeMap;
use std::io::{IoSliceMut, Read, Seek};
use std::mem::MaybeUninit;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use logger::{Journald, Level, Logger};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use test_support::{Captured, wait_until};

/// Parses one native-protocol entry: `KEY=value\n`, or `KEY\n<u64 LE len><bytes>\n`.
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
    rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (dir, path, rx)
}

/// Receives one entry as journald does: the datagram, or the memfd it carries (which must be
/// sealed, or journald would refuse it). Also says which it was.
fn recv_entry(rx: &UnixDatagram) -> (Vec<(String, Vec<u8>)>, bool) {
    let mut buf = vec![0u8; 300_000];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        rx,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if fds.is_empty() {
        return (parse(&buf[..got.bytes]), false);
    }
    assert_eq!((got.bytes, fds.len()), (0, 1), "a memfd comes alone, in an empty datagram");
    let fd = fds.pop().unwrap();
    let seals = rustix::fs::fcntl_get_seals(&fd).unwrap();
    use rustix::fs::SealFlags;
    let all = SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL;
    assert!(seals.contains(all), "journald takes only a sealed memfd: {seals:?}");
    // From the start, as journald maps it (the sender's writes moved the shared offset).
    let mut file = std::fs::File::from(fd);
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    let mut contents = Vec::new();
    file.read_to_end(&mut contents).unwrap();
    (parse(&contents), true)
}

fn recv(rx: &UnixDatagram) -> BTreeMap<String, String> {
    let (fields, _) = recv_entry(rx);
    fields.into_iter().map(|(k, v)| (k, String::from_utf8(v).unwrap())).collect()
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
fn records_larger_than_a_datagram_go_whole_through_a_sealed_memfd() {
    let (_dir, path, rx) = receiver();
    let fallback = Captured::default();
    let log = Journald::new("p").with_socket_path(&path).with_fallback(fallback.clone());
    // Five 100 KB fields: 500 KB, more than the 208 KiB one datagram may hold.
    let values: Vec<String> = (0..5).map(|i| format!("{i}").repeat(100_000)).collect();
    logger::info!(log, "big"; a = values[0], b = values[1], c = values[2], d = values[3], e = values[4]);
    let (fields, memfd) = recv_entry(&rx);
    assert!(memfd, "500 KB cannot be one datagram");
    let e: BTreeMap<String, Vec<u8>> = fields.into_iter().collect();
    for (key, value) in ["A", "B", "C", "D", "E"].iter().zip(&values) {
        assert_eq!(e[*key], value.as_bytes(), "{key} arrived whole");
    }
    // A 1 MB message with every kind of byte in it, too.
    let mut huge: String = (0..=0x7f_u8).map(char::from).cycle().take(1_000_000).collect();
    huge.push('ä');
    log.info(&huge);
    let (fields, memfd) = recv_entry(&rx);
    assert!(memfd);
    let e: BTreeMap<String, Vec<u8>> = fields.into_iter().collect();
    assert_eq!(e["MESSAGE"], huge.as_bytes());
    // Small records still go as datagrams.
    log.info("small");
    let (fields, memfd) = recv_entry(&rx);
    assert!(!memfd && fields.iter().any(|(k, v)| k == "MESSAGE" && v == b"small"));
    log.flush();
    assert_eq!(fallback.text(), "");
    assert_eq!(log.stats().sent, 3);
}

#[test]
fn thousands_of_fields_make_one_entry_journald_accepts() {
    let (_dir, path, rx) = receiver();
    let log = Journald::new("p").with_socket_path(&path);
    let keys: Vec<String> = (0..3000).map(|i| format!("k{i}")).collect();
    let fields: Vec<logger::Field<'_>> = keys.iter().map(|k| logger::Field::new(k, k)).collect();
    log.log(&logger::Record::new(Level::Info, format_args!("many")).with_fields(&fields));
    let (got, _) = recv_entry(&rx);
    assert_eq!(got.len(), logger::journald::MAX_FIELDS, "journald ignores more than 1,024");
    let (key, extra) = got.last().unwrap();
    assert_eq!(key, "EXTRA_FIELDS");
    let extra = String::from_utf8(extra.clone()).unwrap();
    assert!(extra.starts_with("k995=k995 ") && extra.ends_with(" k2999=k2999"), "{extra}");
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
    log.flush();
    let text = fallback.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "a notice, then the record: {text}");
    assert!(lines[0].starts_with("logger: p journald ") && lines[0].contains("unavailable"));
    // The short format: `HH:MM:SS.ffffff 3 p message`, escaped.
    assert_eq!(&lines[1][15..], " 3 p nobody\\nlistens", "{text}");
    assert_eq!(log.fallback_count(), 1);
}

#[test]
fn a_journald_restart_loses_nothing() {
    // journald reads "one", then dies with "queued" still in its socket; the sink learns it
    // only when the next send fails: "queued" (and "one", which it cannot tell apart) is
    // replayed, what is logged while it is down goes to the fallback, and once it is back on
    // the same path delivery resumes.
    let (_dir, path, rx) = receiver();
    let fallback = Captured::default();
    let log = Journald::new("p")
        .with_socket_path(&path)
        .with_retry_interval(Duration::from_millis(5))
        .with_fallback(fallback.clone());
    log.info("one");
    assert_eq!(recv(&rx)["MESSAGE"], "one");
    log.info("queued");
    log.flush();
    drop(rx);
    std::fs::remove_file(&path).unwrap();
    log.info("while down");
    log.flush();
    let text = fallback.text();
    let replay = format!("logger: p {}", logger::syslog::REPLAY_MARKER);
    let replayed: Vec<&str> = text.lines().filter(|l| l.starts_with(&replay)).collect();
    assert_eq!(replayed.len(), 2, "{text}");
    assert!(replayed[0].ends_with(" 6 p one") && replayed[1].ends_with(" 6 p queued"), "{text}");
    assert!(text.lines().any(|l| l.ends_with(" 6 p while down") && !l.starts_with("logger:")));

    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut n = 0;
    assert!(wait_until(Duration::from_secs(5), || {
        n += 1;
        logger::info!(log, "back"; n = n);
        log.flush();
        fallback.text().contains("is back; delivering again")
    }));
    let e = recv(&rx);
    assert_eq!((e["MESSAGE"].as_str(), e["N"].as_str()), ("back", n.to_string().as_str()));
    let stats = log.stats();
    assert_eq!((stats.replayed, stats.sent), (2, 3), "{stats:?}");
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
fn the_fallback_lines_stay_lines_whatever_the_path_and_program_hold() {
    let dir = tempfile::tempdir().unwrap();
    let fallback = Captured::default();
    let log = Journald::new("p\nforged 3 x")
        .with_socket_path(dir.path().join("no\njournal"))
        .with_fallback(fallback.clone());
    log.err("m");
    log.flush();
    let text = fallback.text();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("no\\njournal"), "{text}");
    // The program column is one word, as on stdout.
    assert!(text.ends_with(" 3 p_forged_3_x m\n"), "{text}");
}
