//! Issue 5, item 7: bad input to the mailer and the logger.
//!
//! - Subjects and display names with CR/LF, NUL and 10 KB of non-ASCII, and addresses that are
//!   invalid or carry CR/LF: the raw message the server stored is inspected byte by byte; no
//!   header is ever broken or added, nothing panics, a bad address is refused before any I/O.
//! - Log messages and field values with CR/LF, NUL and ANSI escapes: one call is one line (one
//!   datagram, one frame, one journal entry) in every backend, with no raw control byte.
//! - An AUTH session with debug logging everywhere (mailer, server, the tracing bridge and the
//!   `log` adapter all capturing): the password, the AUTH PLAIN blob and the body never appear.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use logger::{Level, Logger};
use mail_test_srv::{Options, TestServer, TlsOptions};
use mailer::{Config, Mailer, SmtpMailer, Tls};
use test_support::{Captured, TestCa};

// ---------------------------------------------------------------------------------------------
// The mailer: headers on the wire.

/// Header names lettre's builder writes for a text message; anything else is an injection.
const EXPECTED_HEADERS: &[&str] = &[
    "date",
    "message-id",
    "from",
    "to",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// Checks the raw stored message: a header block of well-formed lines (`Name: value` or a
/// folded continuation), each at most 998 bytes (RFC 5322), no NUL or bare CR/LF, only the
/// expected header names, each once. Returns the header names seen.
fn assert_headers_intact(raw: &[u8], context: &str) -> Vec<String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{context}: no end of headers"));
    // Up to and including the last header line's CRLF.
    let head = &raw[..end + 2];
    assert!(!head.contains(&0), "{context}: NUL in the headers");
    let mut names = Vec::new();
    for line in head.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").unwrap_or_else(|| panic!("{context}: bare LF"));
        assert!(
            !line.contains(&b'\r'),
            "{context}: bare CR in {:?}",
            String::from_utf8_lossy(line)
        );
        assert!(line.len() <= 998, "{context}: header line of {} bytes", line.len());
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue; // folded continuation of the previous header
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or_else(|| {
            panic!("{context}: not a header line: {:?}", String::from_utf8_lossy(line))
        });
        let name = &line[..colon];
        assert!(
            !name.is_empty() && name.iter().all(|b| (33..=126).contains(b)),
            "{context}: bad header name {:?}",
            String::from_utf8_lossy(name)
        );
        names.push(String::from_utf8_lossy(name).to_ascii_lowercase());
    }
    for name in &names {
        assert!(EXPECTED_HEADERS.contains(&name.as_str()), "{context}: injected header {name:?}");
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{context}: a header appears twice: {names:?}");
    names
}

async fn plain_server() -> TestServer {
    TestServer::start(Options::default()).await.expect("start mail-test-srv")
}

fn plain_mailer(srv: &TestServer, from: &str, log: &logger::Mock) -> SmtpMailer {
    let config = Config::new("127.0.0.1", srv.smtp_addr().port(), from)
        .with_retry_base(Duration::from_millis(5))
        .with_max_attempts(2);
    SmtpMailer::new(config, Arc::new(log.clone()))
}

fn hostile_texts() -> Vec<(&'static str, String)> {
    vec![
        ("CRLF + Bcc", "Hello\r\nBcc: victim@evil.test".to_owned()),
        ("LF + header", "a\nX-Injected: yes".to_owned()),
        ("blank line + body", "subject\r\n\r\nINJECTED BODY".to_owned()),
        ("bare CR", "a\rTo: victim@evil.test".to_owned()),
        ("NUL", "nul\0byte".to_owned()),
        ("ANSI", "\x1b[31mred\x1b[0m".to_owned()),
        ("10 KB non-ASCII", "Grüße €😀 ".repeat(10 * 1024 / 16)),
        ("10 KB one word", "ü".repeat(5 * 1024)),
        (
            "encoded-word lookalike",
            "=?utf-8?b?QmNjOiB2QGV2aWwudGVzdA==?=\r\nBcc: v@evil.test".to_owned(),
        ),
    ]
}

#[tokio::test]
async fn hostile_subjects_never_break_a_header() {
    let srv = plain_server().await;
    let log = logger::Mock::new();
    let mailer = plain_mailer(&srv, "sender@x.test", &log);
    let cases = hostile_texts();
    for (name, subject) in &cases {
        let sent = mailer.send_mail(&["rcpt@x.test"], subject, "body\r\n.\r\nnot the end\n").await;
        sent.unwrap_or_else(|e| panic!("subject {name}: {e}"));
    }
    let stored = srv.store().messages();
    assert_eq!(stored.len(), cases.len());
    for ((name, subject), message) in cases.iter().zip(&stored) {
        let names = assert_headers_intact(&message.data, &format!("subject {name}"));
        assert!(names.contains(&"subject".to_owned()), "subject {name}: no Subject header");
        assert_eq!(message.to, ["rcpt@x.test"], "subject {name}: envelope changed");
        assert!(!message.body.starts_with("INJECTED"), "subject {name}: body injected");
        // The server decodes RFC 2047: the words survive (line breaks need not).
        let decoded = message.subject.clone().unwrap_or_default();
        let first_word: String = subject.chars().take_while(|c| c.is_alphanumeric()).collect();
        assert!(decoded.contains(&first_word), "subject {name}: decoded to {decoded:?}");
        // A dot line in the body is stuffed on the wire and arrives whole.
        assert!(
            message.body.contains(".\r\nnot the end") || message.body.contains(".\nnot the end")
        );
    }
    println!(
        "hostile subjects: {} sent, headers intact in every raw message (largest {} bytes)",
        stored.len(),
        stored.iter().map(|m| m.data.len()).max().unwrap_or(0)
    );
}

#[tokio::test]
async fn hostile_display_names_are_refused_or_encoded_never_broken() {
    let srv = plain_server().await;
    let log = logger::Mock::new();
    let mailer = plain_mailer(&srv, "sender@x.test", &log);
    let long_name = format!("{} <long@x.test>", "Ünïcödé ".repeat(10 * 1024 / 16));
    let quoted = "\"Smith, \\\"J\\\"\" <quoted@x.test>".to_owned();
    let ok = mailer.send_mail(&[long_name.as_str(), quoted.as_str()], "names", "b").await;
    ok.unwrap_or_else(|e| panic!("a long non-ASCII display name is legal: {e}"));
    let stored = srv.store().messages();
    assert_headers_intact(&stored[0].data, "10 KB display name");
    assert_eq!(stored[0].to, ["long@x.test", "quoted@x.test"]);

    let mut refused = 0;
    for (name, text) in hostile_texts() {
        let to = format!("{text} <victim@x.test>");
        match mailer.send_mail(&[to.as_str()], "display name", "b").await {
            Err(e) => {
                assert!(e.is_bad_address() && e.is_permanent(), "display name {name}: {e}");
                refused += 1;
            }
            Ok(_) => {
                let last = srv.store().messages().pop().unwrap();
                assert_headers_intact(&last.data, &format!("display name {name}"));
                assert_eq!(last.to, ["victim@x.test"], "display name {name}");
            }
        }
    }
    println!("hostile display names: {refused} refused as bad addresses, the rest encoded intact");
    // No envelope ever went to an address smuggled in a display name.
    for m in srv.store().messages() {
        assert!(m.to.iter().all(|t| !t.contains("evil")), "{:?}", m.to);
    }
}

#[tokio::test]
async fn bad_addresses_are_refused_before_any_io() {
    let srv = plain_server().await;
    let log = logger::Mock::new();
    let mailer = plain_mailer(&srv, "sender@x.test", &log);
    let bad = [
        "",
        "not an address",
        "a@",
        "@x.test",
        "a b@x.test",
        "a@x.test\r\nRCPT TO:<victim@evil.test>",
        "a@x.test\nvictim@evil.test",
        "<a@x.test>\r\n",
        "a@x.test, victim@evil.test",
        "a\0@x.test",
        "a@x.test>",
    ];
    for address in bad {
        let error = mailer
            .send_mail(&["good@x.test", address], "s", "b")
            .await
            .expect_err(&format!("{address:?} must be refused"));
        assert!(error.is_bad_address(), "{address:?}: {error}");
        assert!(error.is_permanent(), "{address:?}: {error}");
        // The message shows the address escaped: the error is one line too.
        assert!(!error.to_string().contains('\n'), "{address:?}: {error:?}");
    }
    // A from address with CR/LF: the first send says so, before connecting.
    let evil_from = plain_mailer(&srv, "Evil\r\nBcc: victim@evil.test <from@x.test>", &log);
    let error = evil_from.send_mail(&["good@x.test"], "s", "b").await.expect_err("bad from");
    println!(
        "bad addresses: {} refused before any I/O (e.g. {}); bad from: {error}",
        bad.len(),
        log.get_all_matching("invalid address").first().cloned().unwrap_or_default()
    );
    assert!(error.is_permanent(), "{error}");
    assert_eq!(srv.stats().connections, 0, "a connection was made for an invalid message");
    assert!(log.get_all().iter().all(|l| !l.contains('\n') && !l.contains('\r')));
}

// ---------------------------------------------------------------------------------------------
// The logger: one call, one line, in every backend.

fn hostile_log_texts() -> Vec<String> {
    let mut texts: Vec<String> = vec![
        "line one\nline two".into(),
        "\r\n[AUDIT] forged audit line".into(),
        "12:00:00.000000 3 prog forged stdout line\nnext".into(),
        "<13>1 2026-01-01T00:00:00Z host forged - - - syslog header\n".into(),
        "\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[2J".into(),
        "nul\0byte, del\x7f, bell\x07, tab\t, vt\x0b, ff\x0c".into(),
        "PRIORITY=0\nMESSAGE=forged journal field".into(),
        "unicode line sep\u{2028}para sep\u{2029}next line\u{85}".into(),
    ];
    texts.push("é€😀".repeat(10 * 1024 / 9));
    texts
}

/// Logs every hostile text twice: as the message and as a field value.
fn log_all(log: &dyn Logger) -> usize {
    let texts = hostile_log_texts();
    for text in &texts {
        logger::warning!(log, "{text}"; value = text, n = 1);
        logger::info!(log, "plain message"; value = text);
    }
    texts.len() * 2
}

fn assert_no_raw_control(text: &str, what: &str) {
    for c in ['\r', '\0', '\x1b', '\x07', '\x0b', '\x0c', '\x7f', '\u{85}', '\u{2028}', '\u{2029}']
    {
        assert!(!text.contains(c), "{what}: raw {c:?} in {:?}", &text[..text.len().min(200)]);
    }
}

#[test]
fn stdout_and_mock_write_one_line_per_call() {
    let buf = Captured::new();
    let stdout = logger::Stdout::with_writer(buf.clone(), "bad-input", Level::Debug);
    let calls = log_all(&stdout);
    let text = buf.text();
    assert_eq!(text.lines().count(), calls, "stdout lines\n{text}");
    assert!(text.lines().all(|l| l.split(' ').nth(2) == Some("bad-input")), "a forged line");
    assert_no_raw_control(&text, "stdout");

    let mock = logger::Mock::new();
    assert_eq!(log_all(&mock), mock.get_all().len());
    for line in mock.get_all() {
        assert!(!line.contains('\n'), "mock: {line:?}");
        assert_no_raw_control(&line, "mock");
    }
    assert_eq!(mock.get_all_matching(r"^WARNING: \[AUDIT\]").len(), 0, "forged audit marker");
    println!("stdout and Mock: {calls} hostile calls, {calls} lines each, no raw control bytes");
}

#[test]
fn syslog_sends_one_clean_message_per_call_over_unix_udp_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    // Unix datagram: one datagram per call.
    let path = dir.path().join("log.sock");
    let receiver = UnixDatagram::bind(&path).unwrap();
    let calls = hostile_log_texts().len() * 2;
    // A unix datagram queue holds only ~10 datagrams: read while logging.
    let unix_datagrams = receive(move |buf| receiver.recv(buf), calls);
    let fallback = Captured::new();
    let unix = logger::Syslog::new(logger::SyslogTarget::Unix(path), "bad-input")
        .with_fallback(fallback.clone());
    assert_eq!(log_all(&unix), calls);
    for (i, datagram) in unix_datagrams.join().unwrap().iter().enumerate() {
        let text = String::from_utf8_lossy(datagram);
        assert!(!text.contains('\n'), "unix datagram {i}: {text:?}");
        assert_no_raw_control(&text, "unix datagram");
        assert!(text.len() <= logger::syslog::DEFAULT_MAX_LEN, "{} bytes", text.len());
    }
    // UDP: the same, one datagram per call.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let udp_datagrams = receive(move |buf| udp.recv(buf), calls);
    let sink = logger::Syslog::new(logger::SyslogTarget::Udp(udp_addr), "bad-input")
        .with_fallback(fallback.clone());
    assert_eq!(log_all(&sink), calls);
    for (i, datagram) in udp_datagrams.join().unwrap().iter().enumerate() {
        let text = String::from_utf8_lossy(datagram);
        assert!(!text.contains('\n'), "udp datagram {i}: {text:?}");
        assert_no_raw_control(&text, "udp datagram");
    }
    // TCP: octet-counted frames (RFC 6587), one per call, none containing a newline.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp =
        logger::Syslog::new(logger::SyslogTarget::Tcp(listener.local_addr().unwrap()), "bad-input")
            .with_fallback(fallback.clone());
    assert_eq!(log_all(&tcp), calls);
    drop(tcp); // closes the connection: the reader sees EOF after the last frame
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let mut frames = 0;
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').expect("frame length");
        let len: usize = std::str::from_utf8(&rest[..space]).unwrap().parse().expect("a length");
        let frame = &rest[space + 1..space + 1 + len];
        let text = String::from_utf8_lossy(frame);
        assert!(!text.contains('\n'), "tcp frame {frames}: {text:?}");
        assert_no_raw_control(&text, "tcp frame");
        frames += 1;
        rest = &rest[space + 1 + len..];
    }
    assert_eq!(frames, calls, "tcp frames");
    assert_eq!(fallback.text(), "", "nothing should have fallen back to stderr");
    println!(
        "syslog: {calls} hostile calls -> {calls} unix datagrams, {calls} UDP datagrams, {frames} TCP frames, all clean"
    );
}

/// Receives `n` datagrams on a thread with `recv` (5 s timeout each, then it panics).
fn receive(
    recv: impl Fn(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
    n: usize,
) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        (0..n)
            .map(|i| {
                let len = recv(&mut buf).unwrap_or_else(|e| panic!("datagram {i} of {n}: {e}"));
                buf[..len].to_vec()
            })
            .collect()
    })
}

/// Parses one journald native-protocol datagram into (key, value) pairs.
fn parse_journal(datagram: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut fields = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'=' || b == b'\n').expect("key end");
        let key = String::from_utf8(rest[..end].to_vec()).unwrap();
        if rest[end] == b'=' {
            let nl = rest[end..].iter().position(|&b| b == b'\n').expect("value end") + end;
            fields.push((key, rest[end + 1..nl].to_vec()));
            rest = &rest[nl + 1..];
        } else {
            let len = u64::from_le_bytes(rest[end + 1..end + 9].try_into().unwrap()) as usize;
            let value = rest[end + 9..end + 9 + len].to_vec();
            assert_eq!(rest[end + 9 + len], b'\n', "binary field not closed");
            fields.push((key, value));
            rest = &rest[end + 10 + len..];
        }
    }
    fields
}

#[test]
fn journald_sends_one_entry_per_call_and_no_forged_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sock");
    let receiver = UnixDatagram::bind(&path).unwrap();
    let texts = hostile_log_texts();
    let entries = receive(move |buf| receiver.recv(buf), texts.len() * 2);
    let journald = logger::Journald::new("bad-input").with_socket_path(&path);
    let calls = log_all(&journald);
    for (i, datagram) in entries.join().unwrap().iter().enumerate() {
        let fields = parse_journal(datagram);
        let count = |k: &str| fields.iter().filter(|(key, _)| key == k).count();
        assert_eq!(count("PRIORITY"), 1, "entry {i}: {fields:?}");
        assert_eq!(count("MESSAGE"), 1, "entry {i}");
        assert_eq!(count("SYSLOG_IDENTIFIER"), 1, "entry {i}");
        let priority = &fields.iter().find(|(k, _)| k == "PRIORITY").unwrap().1;
        assert!(priority == b"4" || priority == b"6", "entry {i}: PRIORITY {priority:?}");
        // The journal keeps values verbatim: the hostile text is one field, whole.
        if i % 2 == 0 {
            let message = &fields.iter().find(|(k, _)| k == "MESSAGE").unwrap().1;
            let expected = &texts[i / 2];
            if expected.len() < 40 * 1024 {
                assert_eq!(String::from_utf8_lossy(message), *expected, "entry {i}");
            }
        }
    }
    println!(
        "journald: {calls} hostile calls -> {calls} entries, one PRIORITY and one MESSAGE each"
    );
}

#[test]
fn the_tracing_bridge_logs_one_line_per_event() {
    use tracing_subscriber::layer::SubscriberExt;
    let mock = logger::Mock::new();
    let subscriber =
        tracing_subscriber::registry().with(logger::TracingLayer::new(Arc::new(mock.clone())));
    let texts = hostile_log_texts();
    tracing::subscriber::with_default(subscriber, || {
        for text in &texts {
            tracing::warn!(value = %text, "{text}");
        }
    });
    let lines = mock.get_all();
    assert_eq!(lines.len(), texts.len());
    for line in &lines {
        assert!(!line.contains('\n'), "{line:?}");
        assert_no_raw_control(line, "tracing bridge");
    }
    println!("tracing bridge: {} hostile events -> {} lines", texts.len(), lines.len());
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn rsyslog_receives_one_line_per_call_without_raw_control_bytes() {
    let rsyslog = test_support::Rsyslog::start_without_tls().expect("start rsyslogd");
    for target in [
        format!("unix:{}", rsyslog.socket_path().display()),
        format!("tcp:{}", rsyslog.tcp_addr()),
        format!("udp:{}", rsyslog.udp_addr()),
    ] {
        let mut config = logger::Config::new(&format!("bad-{}", &target[..3]));
        config.stdout_level = None;
        config.syslog = Some(target.parse().unwrap());
        config.syslog_level = Level::Debug;
        let log = logger::new(config);
        let calls = log_all(log.as_ref());
        log.flush();
        let tag = format!("bad-{}", &target[..3]);
        let ours = |o: &str| o.lines().filter(|l| l.contains(&tag)).count();
        assert!(
            rsyslog.wait_for_output(Duration::from_secs(20), |o| ours(o) >= calls),
            "{target}: {} of {calls} lines arrived",
            ours(&rsyslog.output())
        );
        let output = rsyslog.output();
        let lines: Vec<&str> = output.lines().filter(|l| l.contains(&tag)).collect();
        assert_eq!(lines.len(), calls, "{target}: one line per call");
        for line in &lines {
            // rsyslog shows raw control bytes it received as #ooo escapes.
            for escape in ["#012", "#015", "#033", "#000", "#007"] {
                assert!(!line.contains(escape), "{target}: raw control byte arrived: {line}");
            }
        }
        println!(
            "rsyslog over {target}: {calls} hostile calls -> {} lines, no raw control bytes",
            lines.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials never reach a log.

/// The `log` crate's logger is process-wide: installed once, into a Mock kept here.
fn log_crate_capture() -> &'static logger::Mock {
    static CAPTURE: OnceLock<logger::Mock> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let mock = logger::Mock::new();
        logger::LogAdapter::install(Arc::new(mock.clone())).expect("no other log logger");
        mock
    })
}

#[test]
fn credentials_and_bodies_never_appear_in_any_log() {
    const USER: &str = "mailer-user";
    const PASSWORD: &str = "pa55-W0rd-never-logged";
    const BODY: &str = "BODY-MARKER-7f3a confidential";
    let plain_blob =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    let login_password = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    let secrets = [PASSWORD, plain_blob.as_str(), login_password.as_str(), BODY];

    let log_crate = log_crate_capture();
    let mock = logger::Mock::new();
    let stdout_buf = Captured::new();
    let traced = logger::Mock::new();
    // Everything at Debug: the mailer's Mock and stdout, the server's log, the tracing bridge.
    let everything: Arc<dyn Logger> =
        Arc::new(logger::Fanout::new().with(Arc::new(mock.clone()), Level::Debug).with(
            Arc::new(logger::Stdout::with_writer(stdout_buf.clone(), "auth", Level::Debug)),
            Level::Debug,
        ));
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber =
        tracing_subscriber::registry().with(logger::TracingLayer::new(Arc::new(traced.clone())));
    let ca = TestCa::new(&["localhost", "127.0.0.1"]);
    let (sent, stored) = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let srv = TestServer::start(
                Options::default()
                    .with_tls(TlsOptions::StartTls(ca.server_pair()))
                    .with_auth(USER, PASSWORD)
                    .with_logger(Arc::clone(&everything)),
            )
            .await
            .expect("start mail-test-srv");
            let config = Config::new("127.0.0.1", srv.smtp_addr().port(), "auth@sender.test")
                .with_tls(Tls::StartTls)
                .with_root_ca_pem(ca.ca_pem.clone().into_bytes())
                .with_tls_server_name("localhost")
                .with_credentials(USER, PASSWORD);
            let mailer = SmtpMailer::new(config, Arc::clone(&everything));
            let mut sent = 0;
            for i in 0..3 {
                mailer.send_mail(&["rcpt@x.test"], &format!("auth {i}"), BODY).await.unwrap();
                sent += 1;
            }
            // A wrong password too: the failure is logged, the password is not.
            let wrong = Config::new("127.0.0.1", srv.smtp_addr().port(), "auth@sender.test")
                .with_tls(Tls::StartTls)
                .with_root_ca_pem(ca.ca_pem.clone().into_bytes())
                .with_tls_server_name("localhost")
                .with_credentials(USER, format!("{PASSWORD}-wrong"))
                .with_max_attempts(1)
                .with_retry_base(Duration::from_millis(1));
            let rejected = SmtpMailer::new(wrong, Arc::clone(&everything));
            assert!(rejected.send_mail(&["rcpt@x.test"], "wrong", BODY).await.is_err());
            mailer.close().await;
            tracing::debug!(target: "e2e", "bridge check: events reach the tracing layer");
            let stored = srv.store().messages();
            srv.shutdown().await;
            (sent, stored)
        })
    });
    assert_eq!(sent, 3);
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|m| m.tls && m.auth_user.as_deref() == Some(USER)));

    let captured = [
        ("mailer+server Mock", mock.get_all().join("\n")),
        ("stdout backend", stdout_buf.text()),
        ("tracing bridge", traced.get_all().join("\n")),
        ("log crate adapter", log_crate.get_all().join("\n")),
    ];
    for (what, text) in &captured {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} contains {secret:?}:\n{text}");
        }
        // Nor any part of the password long enough to matter.
        assert!(!text.contains(&PASSWORD[..10]), "{what} contains part of the password");
    }
    // The capture really captured: the session is there in detail.
    let all = &captured[0].1;
    for event in ["event=connect ", "event=connected", "event=sent", "event=envelope"] {
        assert!(all.contains(event), "no {event} captured:\n{all}");
    }
    assert!(captured[2].1.contains("bridge check"), "the tracing bridge captured nothing");
    println!(
        "credentials: AUTH over STARTTLS, 3 messages + 1 wrong password, debug everywhere; \
         captured lines: Mock {}, stdout {}, tracing bridge {}, log adapter {}; none contains \
         the password, its base64, the AUTH PLAIN blob or the body",
        mock.get_all().len(),
        stdout_buf.text().lines().count(),
        traced.get_all().len(),
        log_crate.get_all().len()
    );
}
