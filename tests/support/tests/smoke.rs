//! One smoke test per peer: it starts, accepts one record or message from a real client,
//! stops, and leaves no process behind. If these fail, the peer suite's other failures are
//! about the harness, not the code under test.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use test_support::process::{group_members, processes_with_arg};
use test_support::rsyslog::Input;
use test_support::{Rsyslog, SinkCounters, SmtpSink, smtp_source, wait_until};

const WAIT: Duration = Duration::from_secs(20);

/// Nothing started from `dir` (or in process group `pgid`) is left once the peer is dropped.
fn assert_gone(needle: &str, pgid: u32) {
    let gone = wait_until(Duration::from_secs(10), || {
        processes_with_arg(needle).is_empty() && group_members(pgid).is_empty()
    });
    assert!(
        gone,
        "left behind: {:?} / group {:?}",
        processes_with_arg(needle),
        group_members(pgid)
    );
}

fn rfc5424(app: &str, msg: &str) -> String {
    format!("<134>1 2026-01-01T00:00:00.000000Z smoke-host {app} 4242 - - {msg}")
}

fn send_tls(rsyslog: &Rsyslog, frame: &[u8]) {
    let config = test_support::certs::client_config(rsyslog.ca_pem());
    let name = "localhost".try_into().unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(rsyslog.tls_addr()).unwrap());
    tls.write_all(frame).unwrap();
    tls.flush().unwrap();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

#[test]
#[ignore = "needs rsyslogd and rsyslog-gnutls: run by .ci/run"]
fn rsyslog_parses_one_record_per_input_and_again_after_a_restart() {
    let started = Instant::now();
    let mut rsyslog = Rsyslog::start().expect("start rsyslogd");
    println!("rsyslog started in {:?} (daemon {:?})", started.elapsed(), rsyslog.start_time());
    let dir = rsyslog.dir().display().to_string();
    let send_all = |rsyslog: &Rsyslog, round: &str| {
        let unix = UnixDatagram::unbound().unwrap();
        let bsd = format!("<134>Jan  1 00:00:00 smoke[4242]: unix-{round}");
        unix.send_to(bsd.as_bytes(), rsyslog.socket_path()).unwrap();
        let no_special = rfc5424("smoke", &format!("nsp-{round}"));
        unix.send_to(no_special.as_bytes(), rsyslog.socket_path_no_special_parser()).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(rfc5424("smoke", &format!("udp-{round}")).as_bytes(), rsyslog.udp_addr())
            .unwrap();
        let tcp_frame = rfc5424("smoke", &format!("tcp-{round}"));
        let mut tcp = TcpStream::connect(rsyslog.tcp_addr()).unwrap();
        tcp.write_all(format!("{} {tcp_frame}", tcp_frame.len()).as_bytes()).unwrap();
        drop(tcp);
        let tls_frame = rfc5424("smoke", &format!("tls-{round}"));
        send_tls(rsyslog, format!("{} {tls_frame}", tls_frame.len()).as_bytes());
    };
    send_all(&rsyslog, "one");
    let records = rsyslog.wait_for_count(WAIT, 5, |r| r.msg.ends_with("-one"));
    assert_eq!(records.len(), 5, "{records:#?}\n{}", rsyslog.diagnostics());
    for r in &records {
        assert_eq!((r.severity, r.facility, r.app_name.as_str()), (6, 16, "smoke"), "{r:?}");
        let expected_host = if r.input == Input::Unix { None } else { Some("smoke-host") };
        if let Some(host) = expected_host {
            assert_eq!(r.hostname, host, "{r:?}");
            assert_eq!((r.procid.as_str(), r.protocol_version.as_str()), ("4242", "1"), "{r:?}");
        }
        let prefix = match r.input {
            Input::Unix => " unix",
            Input::UnixNoSpecialParser => "nsp",
            Input::Udp => "udp",
            Input::Tcp => "tcp",
            Input::Tls => "tls",
            other => panic!("unexpected input {other:?}"),
        };
        assert!(r.msg.starts_with(prefix), "{r:?}");
    }
    let pid = rsyslog.pid().unwrap();
    rsyslog.kill().unwrap();
    assert_gone(&dir, pid);
    rsyslog.restart().unwrap();
    println!("rsyslog restarted in {:?}", rsyslog.start_time());
    send_all(&rsyslog, "two");
    assert_eq!(rsyslog.wait_for_count(WAIT, 5, |r| r.msg.ends_with("-two")).len(), 5);
    rsyslog.terminate().unwrap();
    rsyslog.restart().unwrap();
    let pid = rsyslog.pid().unwrap();
    drop(rsyslog);
    assert_gone(&dir, pid);
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn rsyslog_without_tls_has_the_other_inputs() {
    let rsyslog = Rsyslog::start_without_tls().expect("start rsyslogd");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(rfc5424("smoke", "plain-udp").as_bytes(), rsyslog.udp_addr()).unwrap();
    let record = rsyslog.wait_for(WAIT, |r| r.msg == "plain-udp").expect("stored");
    assert_eq!(record.input, Input::Udp);
    let tls = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rsyslog.tls_addr()));
    assert!(tls.is_err(), "no TLS input, so no TLS address");
}

#[test]
#[ignore = "needs smtp-sink, smtp-source and swaks: run by .ci/run"]
fn smtp_sink_counts_one_message_from_swaks_and_smtp_source() {
    let started = Instant::now();
    let sink = SmtpSink::start(&[]).expect("start smtp-sink");
    println!("smtp-sink started in {:?}", started.elapsed());
    let status = Command::new("swaks")
        .args(["--server", &sink.addr().to_string(), "--from", "a@x.test", "--to", "b@x.test"])
        .args(["--h-Subject", "smoke", "--body", "b", "--silent", "2"])
        .status()
        .expect("run swaks");
    assert!(status.success(), "swaks: {status}");
    let one = SinkCounters { sessions: 1, quits: 1, messages: 1 };
    assert_eq!(sink.wait_for_counters(WAIT, one), one);
    let source = smtp_source(&["-m", "1", "-f", "a@x.test", "-t", "b@x.test"], sink.addr(), WAIT)
        .expect("run smtp-source");
    assert!(source.success(), "{}", source.transcript());
    let two = SinkCounters { sessions: 2, quits: 2, messages: 2 };
    assert_eq!(sink.wait_for_counters(WAIT, two), two);
    let (pid, needle) = (sink.pid(), sink.addr().to_string());
    drop(sink);
    assert_gone(&needle, pid);
}

#[test]
#[ignore = "needs postfix and swaks (as root): run by .ci/run"]
fn postfix_delivers_one_message_to_discard_and_one_to_its_maildir() {
    use test_support::postfix::{DISCARD_DOMAIN, MAILDIR_DOMAIN};
    let started = Instant::now();
    let postfix = test_support::Postfix::start().expect("start postfix");
    println!("postfix started in {:?}", started.elapsed());
    for (to, id) in [
        (format!("a@{DISCARD_DOMAIN}"), "<one@x.test>"),
        (format!("b@{MAILDIR_DOMAIN}"), "<two@x.test>"),
    ] {
        let status = Command::new("swaks")
            .args(["--server", &postfix.addr().to_string(), "--from", "s@x.test", "--to", &to])
            .args(["--h-Subject", "smoke", "--h-Message-Id", id])
            .args(["--body", "smoke body", "--silent", "2"])
            .status()
            .expect("run swaks");
        assert!(status.success(), "swaks: {status}\n{}", postfix.log());
    }
    let sent = postfix.wait_for_sent(WAIT, 2);
    assert_eq!(sent.len(), 2, "{}", postfix.log());
    assert_eq!(sent[0].message_id.as_deref(), Some("<one@x.test>"));
    assert_eq!((sent[1].relay.as_str(), sent[1].to.as_str()), ("virtual", "b@maildir.test"));
    assert_eq!(postfix.message_ids(), ["<one@x.test>", "<two@x.test>"]);
    let stored = postfix.wait_for_maildir(WAIT, 1);
    assert_eq!(stored.len(), 1);
    assert_eq!(postfix.maildir_message_ids(), [Some("<two@x.test>".to_owned())]);
    let sessions = postfix.sessions();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s.ok("ehlo") == 1 && s.ok("data") == 1), "{sessions:?}");
    let (pid, dir) = (postfix.pid(), postfix.dir().display().to_string());
    drop(postfix);
    assert_gone(&dir, pid);
}

#[test]
#[ignore = "needs postfix (as root): run by .ci/run"]
fn postfix_knobs_reach_smtpd_timeout_and_anvil() {
    use std::io::{BufRead, BufReader};
    let postfix = test_support::Postfix::builder()
        .smtpd_timeout(Duration::from_secs(1))
        .connection_count_limit(1)
        .start()
        .expect("start postfix");
    let greeting = |stream: &TcpStream| {
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line
    };
    let first = TcpStream::connect(postfix.addr()).unwrap();
    first.set_read_timeout(Some(WAIT)).unwrap();
    assert!(greeting(&first).starts_with("220 postfix.test"));
    let second = TcpStream::connect(postfix.addr()).unwrap();
    second.set_read_timeout(Some(WAIT)).unwrap();
    let refused = greeting(&second);
    assert!(refused.starts_with("421 4.7.0 postfix.test Error: too many connections"), "{refused}");
    // The first client says nothing: smtpd_timeout ends its session.
    let timeout = greeting(&first);
    assert_eq!(timeout, "421 4.4.2 postfix.test Error: timeout exceeded\r\n");
}

#[test]
#[ignore = "needs systemd-journald and root: run by .ci/run"]
fn journald_stores_one_native_record_and_again_after_a_restart() {
    let send = |journald: &test_support::Journald, text: &str| {
        // The native protocol; a value with a line break is length-prefixed.
        let mut datagram =
            format!("MESSAGE={text}\nPRIORITY=6\nSYSLOG_IDENTIFIER=smoke\nBIN\n").into_bytes();
        datagram.extend_from_slice(&5u64.to_le_bytes());
        datagram.extend_from_slice(b"a\nb\xffc\n");
        UnixDatagram::unbound().unwrap().send_to(&datagram, journald.socket_path()).unwrap();
    };
    let started = Instant::now();
    let mut journald = test_support::Journald::start().expect("start journald");
    println!("journald started in {:?}", started.elapsed());
    send(&journald, "smoke-one");
    let entry = journald
        .wait_for(WAIT, |e| e.message().as_deref() == Some("smoke-one"))
        .unwrap_or_else(|| panic!("not stored; {}", journald.diagnostics()));
    assert_eq!((entry.priority(), entry.identifier().as_deref()), (Some(6), Some("smoke")));
    assert_eq!(entry.bytes("BIN"), Some(&b"a\nb\xffc"[..]));
    assert_eq!(entry.get("_TRANSPORT").as_deref(), Some("journal"));
    let pid = journald.pid().unwrap();
    let dir = journald.dir().display().to_string();
    journald.kill().unwrap();
    assert_gone(&dir, pid);
    journald.restart().unwrap();
    println!("journald restarted in {:?}", journald.start_time());
    send(&journald, "smoke-two");
    assert!(journald.wait_for(WAIT, |e| e.message().as_deref() == Some("smoke-two")).is_some());
    let pid = journald.pid().unwrap();
    drop(journald);
    assert_gone(&dir, pid);
    let mounted = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounted.contains(&dir), "a mount outlived the namespace: {mounted}");
}
