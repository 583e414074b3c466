//! `Syslog` against receivers in the test: a unix datagram socket, UDP and TCP on loopback.
//! Exact bytes where the protocol matters; reconnection, replay and the stderr fallback.
//!
//! Records go out on the sink's writer thread, so a test that looks at the receiver or the
//! fallback after logging calls `flush()` first (or waits for the receiver).

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::Duration;

use logger::{Facility, Level, Logger, Syslog, SyslogFormat, SyslogTarget};
use test_support::syslog_frame::parse_5424;
use test_support::{Captured, wait_until};

const SECOND: Duration = Duration::from_secs(1);

/// Receives one datagram (the receivers have a read timeout, generous for a busy machine).
fn recv_unix(socket: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 70_000];
    let n = socket.recv(&mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn unix_receiver() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(30 * SECOND)).unwrap();
    (dir, path, socket)
}

/// A sink on a unix socket in RFC 5424, which these tests parse strictly.
fn unix_5424(path: &std::path::Path) -> Syslog {
    Syslog::new(SyslogTarget::Unix(path.to_owned()), "p").with_format(SyslogFormat::Rfc5424)
}

#[test]
fn unix_default_is_rfc3164_exactly_as_glibc_sends_it() {
    let (_dir, path, rx) = unix_receiver();
    let log = Syslog::new(SyslogTarget::Unix(path), "probe").with_hostname("ignored");
    logger::audit_info!(log, "granted {}", "x\n[AUDIT] forged"; user = "al ice");
    let got = recv_unix(&rx);
    // `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, no hostname: the local daemon adds its own.
    let re = regex::Regex::new(r"^<134>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d probe\[(\d+)\]: (.*)$")
        .unwrap();
    let c = re.captures(&got).unwrap_or_else(|| panic!("not glibc's RFC 3164: {got:?}"));
    assert_eq!(c[1].parse::<u32>().unwrap(), std::process::id());
    assert_eq!(&c[2], r#"[AUDIT] granted x\n[AUDIT] forged user="al ice""#);
}

#[test]
fn unix_rfc5424_message_is_exact() {
    let (_dir, path, rx) = unix_receiver();
    let log = Syslog::new(SyslogTarget::Unix(path), "probe")
        .with_format(SyslogFormat::Rfc5424)
        .with_hostname("host1");
    logger::audit_info!(log, "granted {}", "x\n[AUDIT] forged"; user = "al ice", n = 3);
    let got = recv_unix(&rx);
    let m = parse_5424(&got).unwrap_or_else(|| panic!("not RFC 5424: {got:?}"));
    assert_eq!(m.pri, 16 * 8 + 6);
    assert_eq!((m.hostname.as_str(), m.app.as_str()), ("host1", "probe"));
    assert_eq!(m.pid, std::process::id());
    assert_eq!(m.msg, r#"[AUDIT] granted x\n[AUDIT] forged user="al ice" n=3"#);
    assert!(!got.contains('\n'));
}

#[test]
fn unix_rfc3164_with_facility() {
    let (_dir, path, rx) = unix_receiver();
    let log = Syslog::new(SyslogTarget::Unix(path), "probe")
        .with_format(SyslogFormat::Rfc3164)
        .with_facility(Facility::Mail);
    log.err("boom");
    let got = recv_unix(&rx);
    let re = regex::Regex::new(r"^<19>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d probe\[(\d+)\]: boom$")
        .unwrap();
    let c = re.captures(&got).unwrap_or_else(|| panic!("not RFC 3164: {got:?}"));
    assert_eq!(c[1].parse::<u32>().unwrap(), std::process::id());
}

#[test]
fn threshold_is_respected() {
    let (_dir, path, rx) = unix_receiver();
    let log = Syslog::new(SyslogTarget::Unix(path), "p").with_level(Level::Warning);
    assert!(!log.enabled(Level::Info));
    log.info("not sent");
    log.warning("sent");
    assert!(recv_unix(&rx).ends_with("]: sent"));
}

#[test]
fn udp_one_datagram_per_record() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(5 * SECOND)).unwrap();
    let target = SyslogTarget::Udp(rx.local_addr().unwrap());
    let log = Syslog::new(target, "probe").with_hostname("h");
    log.info("one");
    log.warning("two");
    let mut buf = [0u8; 2048];
    let n = rx.recv(&mut buf).unwrap();
    let one = parse_5424(std::str::from_utf8(&buf[..n]).unwrap()).unwrap();
    let n = rx.recv(&mut buf).unwrap();
    let two = parse_5424(std::str::from_utf8(&buf[..n]).unwrap()).unwrap();
    assert_eq!((one.pri, one.msg.as_str()), (134, "one"));
    assert_eq!((two.pri, two.msg.as_str()), (132, "two"));
}

#[test]
fn udp_with_nobody_listening_neither_fails_nor_flaps() {
    // The ICMP "port unreachable" for one datagram must not turn later lines into fallback
    // lines and outage notices: UDP syslog is fire-and-forget.
    let port = test_support::free_port();
    let fallback = Captured::default();
    let log = Syslog::new(SyslogTarget::Udp(([127, 0, 0, 1], port).into()), "p")
        .with_fallback(fallback.clone())
        .connect()
        .unwrap();
    for i in 0..20 {
        logger::info!(log, "into the void"; i = i);
    }
    log.flush();
    assert_eq!(fallback.text(), "");
    assert_eq!(log.stats().sent, 20);
}

/// Reads octet-counted frames: `LEN SP MSG`.
fn read_frame(r: &mut impl BufRead) -> String {
    let mut len = Vec::new();
    r.read_until(b' ', &mut len).unwrap();
    let len: usize = std::str::from_utf8(&len[..len.len() - 1]).unwrap().parse().unwrap();
    let mut msg = vec![0u8; len];
    r.read_exact(&mut msg).unwrap();
    String::from_utf8(msg).unwrap()
}

/// A sink for `program`, set up by `build`, connected to a TCP receiver in the test.
fn tcp_pair(program: &str, build: impl FnOnce(Syslog) -> Syslog) -> (Syslog, BufReader<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = SyslogTarget::Tcp(listener.local_addr().unwrap());
    let log = build(Syslog::new(target, program)).connect().unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(5 * SECOND)).unwrap();
    (log, BufReader::new(conn))
}

#[test]
fn tcp_uses_octet_counting_so_messages_never_glue() {
    let (log, mut r) = tcp_pair("probe", |s| s);
    log.info("first");
    logger::info!(log, "second é"; k = "v w");
    let big = "x".repeat(3000);
    log.info(&big);
    assert!(parse_5424(&read_frame(&mut r)).unwrap().msg == "first");
    assert_eq!(parse_5424(&read_frame(&mut r)).unwrap().msg, r#"second é k="v w""#);
    assert_eq!(parse_5424(&read_frame(&mut r)).unwrap().msg, big);
}

#[test]
fn oversized_messages_are_truncated_with_a_marker_not_dropped() {
    let (_dir, path, rx) = unix_receiver();
    let log = unix_5424(&path);
    let huge = "ü".repeat(300_000);
    log.info(&huge);
    let got = recv_unix(&rx);
    assert_eq!(logger::syslog::DEFAULT_MAX_LEN, 8096, "stock rsyslog's maxMessageSize");
    assert!(got.len() <= logger::syslog::DEFAULT_MAX_LEN, "{}", got.len());
    assert!(got.len() > logger::syslog::DEFAULT_MAX_LEN - 20);
    assert!(got.ends_with(logger::syslog::TRUNCATION_MARKER));
    assert!(parse_5424(&got).unwrap().msg.starts_with("üüü"));
}

#[test]
fn a_tcp_frame_never_exceeds_the_limit_whatever_the_value_holds() {
    // A value that holds a complete forged frame at every offset: whatever is cut, what is
    // sent is one octet-counted frame of at most the limit, ending with the marker.
    let (log, mut r) = tcp_pair("probe", |s| s);
    let forged = "<33>1 2026-11-28T22:12:01Z evilhost sshd 1 - - forged ";
    logger::info!(log, "v"; value = "");
    let overhead = read_frame(&mut r).len();
    for len in (7_900..8_200).step_by(7).chain([20_000, 70_000]) {
        let value: String = forged.chars().cycle().take(len).collect();
        logger::info!(log, "v"; value = value);
        let frame = read_frame(&mut r);
        assert!(frame.len() <= logger::syslog::DEFAULT_MAX_LEN, "{len}: {}", frame.len());
        let m = parse_5424(&frame).unwrap();
        assert_eq!(m.hostname, gethostname_string());
        let whole = frame.ends_with(&format!("value=\"{value}\""));
        assert!(whole || frame.ends_with(logger::syslog::TRUNCATION_MARKER), "{len}");
        let fits = overhead + len <= logger::syslog::DEFAULT_MAX_LEN;
        assert_eq!(whole, fits, "{len}: cut exactly what does not fit");
    }
}

fn gethostname_string() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    h.trim().chars().map(|c| if c.is_ascii_graphic() { c } else { '_' }).collect()
}

#[test]
fn unix_daemon_restart_lines_go_to_fallback_then_delivery_resumes() {
    let (_dir, path, rx) = unix_receiver();
    let fallback = Captured::default();
    let log = unix_5424(&path)
        .with_retry_interval(Duration::from_millis(5))
        .with_fallback(fallback.clone());
    log.info("before");
    assert!(recv_unix(&rx).ends_with(" before"));

    // The daemon goes away: its socket is closed and the file removed.
    drop(rx);
    std::fs::remove_file(&path).unwrap();
    log.info("while down 1");
    log.info("while down 2");
    log.flush();
    let text = fallback.text();
    assert!(text.contains("unavailable"), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("while down")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (i, line) in lines.iter().enumerate() {
        let m = parse_5424(line).unwrap_or_else(|| panic!("whole line expected: {line:?}"));
        assert_eq!(m.msg, format!("while down {}", i + 1));
    }

    // It comes back on the same path: delivery resumes within a few retry intervals.
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    let resumed = wait_until(5 * SECOND, || {
        log.info("after");
        log.flush();
        rx.recv(&mut buf).is_ok_and(|n| std::str::from_utf8(&buf[..n]).unwrap().ends_with(" after"))
    });
    assert!(resumed, "delivery did not resume: {}", fallback.text());
    assert!(fallback.text().contains("is back"), "{}", fallback.text());
}

#[test]
fn tcp_reconnects_after_the_daemon_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let log = Syslog::new(SyslogTarget::Tcp(listener.local_addr().unwrap()), "p")
        .with_retry_interval(Duration::from_millis(5))
        .with_fallback(Captured::default())
        .connect()
        .unwrap();
    let (first, _) = listener.accept().unwrap();
    first.set_read_timeout(Some(5 * SECOND)).unwrap();
    let mut r = BufReader::new(first);
    log.info("on the first connection");
    assert!(read_frame(&mut r).ends_with(" on the first connection"));
    // The daemon hangs up (as a restarting rsyslogd does).
    drop(r);
    listener.set_nonblocking(true).unwrap();
    let mut second = None;
    let reconnected = wait_until(5 * SECOND, || {
        log.info("after the hang-up");
        second = listener.accept().ok();
        second.is_some()
    });
    assert!(reconnected, "no new connection");
    let (second, _) = second.unwrap();
    second.set_nonblocking(false).unwrap();
    second.set_read_timeout(Some(5 * SECOND)).unwrap();
    log.info("delivered on the second connection");
    let mut r = BufReader::new(second);
    let found =
        (0..1000).map(|_| read_frame(&mut r)).find(|m| m.ends_with(" on the second connection"));
    assert!(found.is_some());
}

#[test]
fn a_flapping_daemon_is_announced_once_not_per_line() {
    // A daemon that takes each connection and hangs up at once: every few lines are a new
    // outage and a recovery. One notice each way, not one per flap.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (flag, count) = (Arc::clone(&stop), Arc::clone(&accepted));
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((conn, _)) => {
                    count.fetch_add(1, Ordering::Relaxed);
                    drop(conn);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    let fallback = Captured::default();
    let log = Syslog::new(SyslogTarget::Tcp(addr), "p")
        .with_retry_interval(Duration::ZERO)
        .with_fallback(fallback.clone());
    let deadline = std::time::Instant::now() + 5 * SECOND;
    let mut i = 0;
    while accepted.load(Ordering::Relaxed) < 20 && std::time::Instant::now() < deadline {
        i += 1;
        logger::info!(log, "flap"; i = i);
        // Paced by the writer, so the fallback holds hundreds of lines, not millions.
        log.flush();
    }
    log.flush();
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    let flaps = accepted.load(Ordering::Relaxed);
    assert!(flaps >= 20, "only {flaps} connections in 5 s");
    let text = fallback.text();
    assert_eq!(text.matches("unavailable").count(), 1, "{flaps} flaps: {text}");
    assert!(text.matches("is back; delivering again").count() <= 1, "{flaps} flaps: {text}");
}

#[test]
fn a_wedged_daemon_never_holds_up_a_caller_and_nothing_is_lost() {
    // The daemon is alive but stopped reading: its queue fills, and sends block until the
    // write timeout, on the writer thread. Callers keep going; every line is in the daemon's
    // socket or on the fallback, and the counters say which.
    let (_dir, path, rx) = unix_receiver();
    let fallback = Captured::default();
    let log = Syslog::new(SyslogTarget::Unix(path), "p")
        .with_timeout(Duration::from_millis(300))
        .with_retry_interval(Duration::from_millis(10))
        .with_fallback(fallback.clone());
    let start = std::time::Instant::now();
    let (mut slowest, mut sent) = (Duration::ZERO, 0u32);
    while sent < 20_000 && start.elapsed() < SECOND {
        let t = std::time::Instant::now();
        logger::info!(log, "wedged"; i = sent);
        slowest = slowest.max(t.elapsed());
        sent += 1;
    }
    // A timeout is 300 ms; a call that waited for one would show.
    assert!(slowest < Duration::from_millis(150), "a call took {slowest:?}");
    log.flush();
    rx.set_nonblocking(true).unwrap();
    let mut in_socket = 0;
    let mut buf = [0u8; 2048];
    while rx.recv(&mut buf).is_ok() {
        in_socket += 1;
    }
    let text = fallback.text();
    // Replayed lines (sent, then copied as possibly undelivered) are duplicates: not counted.
    let on_fallback =
        text.lines().filter(|l| l.contains(" wedged i=") && !l.starts_with("logger:")).count();
    let stats = log.stats();
    assert_eq!(in_socket + on_fallback, sent as usize, "lost lines: {stats:?}");
    assert_eq!(stats.fell_back, on_fallback as u64, "{stats:?}");
    assert_eq!(stats.sent, in_socket as u64, "{stats:?}");
    assert!(text.contains("unavailable"), "the outage is announced");
}

#[test]
fn lines_logged_before_the_first_connection_opens_are_delivered() {
    for _ in 0..20 {
        let (_dir, path, rx) = unix_receiver();
        let fallback = Captured::default();
        let log = Syslog::new(SyslogTarget::Unix(path), "p").with_fallback(fallback.clone());
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = &log;
                s.spawn(move || logger::info!(log, "first"; t = t));
            }
        });
        for _ in 0..4 {
            assert!(recv_unix(&rx).contains("]: first t="));
        }
        log.flush();
        assert_eq!(fallback.text(), "");
    }
}

#[test]
fn tcp_daemon_down_goes_to_fallback_and_connect_reports_it() {
    let port = test_support::free_port();
    let target = SyslogTarget::Tcp(([127, 0, 0, 1], port).into());
    let err = Syslog::new(target.clone(), "p").connect().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let fallback = Captured::default();
    let log = Syslog::new(target, "p").with_fallback(fallback.clone());
    assert!(log.try_connect().is_err());
    log.err("nobody listens");
    log.flush();
    let text = fallback.text();
    // One notice for the outage, then the line itself, whole.
    assert_eq!(text.matches("unavailable").count(), 1, "{text}");
    assert_eq!(parse_5424(text.lines().last().unwrap()).unwrap().msg, "nobody listens");
    assert_eq!(log.fallback_count(), 1);
}

#[test]
fn many_threads_share_one_syslog_in_order_per_thread() {
    let (_dir, path, rx) = unix_receiver();
    let fallback = Captured::default();
    // The receiver's queue holds few datagrams, so the writer waits for the reader; a generous
    // timeout keeps a busy machine from turning that wait into fallback lines.
    let log = Arc::new(
        unix_5424(&path).with_timeout(Duration::from_secs(30)).with_fallback(fallback.clone()),
    );
    let reader = std::thread::spawn(move || (0..800).map(|_| recv_unix(&rx)).collect::<Vec<_>>());
    std::thread::scope(|s| {
        for t in 0..4 {
            let log = Arc::clone(&log);
            s.spawn(move || {
                for i in 0..200 {
                    logger::info!(log, "m"; t = t, i = i);
                }
            });
        }
    });
    let got = reader.join().unwrap();
    assert_eq!(fallback.text(), "");
    let mut next = [0; 4];
    for m in &got {
        let msg = parse_5424(m).unwrap().msg;
        let (t, i) = msg.strip_prefix("m t=").unwrap().split_once(" i=").unwrap();
        let t: usize = t.parse().unwrap();
        assert_eq!(i.parse::<i32>().unwrap(), next[t], "thread {t} out of order");
        next[t] += 1;
    }
}

#[test]
fn new_builds_a_fanout_with_syslog_and_never_fails() {
    let (_dir, path, rx) = unix_receiver();
    let mut config = logger::Config::new("svc");
    config.stdout_level = None;
    config.syslog = Some(SyslogTarget::Unix(path));
    config.syslog_level = Level::Warning;
    config.facility = Facility::Daemon;
    let log = logger::new(config);
    assert!(!log.enabled(Level::Info));
    log.info("dropped");
    log.warning("kept");
    let got = recv_unix(&rx);
    assert!(got.starts_with("<28>") && got.ends_with("]: kept"), "{got}");

    // A target nobody listens on: still a logger (the sink reports on stderr and retries).
    let mut config = logger::Config::new("svc");
    config.stdout_level = None;
    config.syslog = Some(SyslogTarget::Unix("/nonexistent/dir/log.sock".into()));
    config.syslog_format = Some(SyslogFormat::Rfc5424);
    let log = logger::new(config);
    log.info("goes to stderr");
}

/// The lines of `text` that the sink replayed as possibly undelivered, as their messages.
fn replayed(text: &str) -> Vec<String> {
    let prefix = format!("logger: p {}", logger::syslog::REPLAY_MARKER);
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|m| parse_5424(m).unwrap_or_else(|| panic!("whole message expected: {m:?}")).msg)
        .collect()
}

#[test]
fn unix_daemon_death_replays_the_lines_it_may_have_lost() {
    // The daemon reads one line, then exits with two more still queued in its socket: the
    // kernel accepted them, so the sender saw no error. The next send fails, and the lines
    // sent just before go to the fallback, marked, once.
    let (_dir, path, rx) = unix_receiver();
    let fallback = Captured::default();
    let log = unix_5424(&path)
        .with_retry_interval(Duration::from_millis(5))
        .with_fallback(fallback.clone());
    log.info("read 1");
    assert!(recv_unix(&rx).ends_with(" read 1"));
    log.info("queued 2");
    log.info("queued 3");
    log.flush();
    drop(rx);
    assert_eq!(fallback.text(), "", "nothing is known to be wrong yet");
    log.info("after 4");
    log.flush();
    let text = fallback.text();
    assert_eq!(replayed(&text), ["read 1", "queued 2", "queued 3"], "{text}");
    // The notice first, then the replayed lines, then the line at hand.
    let notice = text.find("unavailable").unwrap();
    let replay = text.find(logger::syslog::REPLAY_MARKER).unwrap();
    let after = text.find(" after 4").unwrap();
    assert!(notice < replay && replay < after, "{text}");
    assert!(!text.lines().any(|l| l.contains(" after 4") && l.starts_with("logger:")), "{text}");
    // Nothing is replayed twice, and lines that went to the fallback are not replayed.
    log.info("after 5");
    log.flush();
    assert_eq!(replayed(&fallback.text()).len(), 3, "{}", fallback.text());
    assert_eq!(log.stats().replayed, 3);

    // The daemon comes back: only lines sent on the new connection can be replayed next time.
    std::fs::remove_file(&path).unwrap();
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(30 * SECOND)).unwrap();
    assert!(wait_until(5 * SECOND, || {
        log.info("probe");
        log.flush();
        fallback.text().contains("is back; delivering again")
    }));
    log.info("second life");
    log.flush();
    drop(rx);
    log.info("after second death");
    log.flush();
    let again = replayed(&fallback.text());
    assert_eq!(again.last().map(String::as_str), Some("second life"), "{again:?}");
    assert!(again[3..].iter().all(|m| m == "probe" || m == "second life"), "{again:?}");
}

#[test]
fn tcp_hang_up_replays_at_once_without_waiting_for_the_next_line() {
    // A frame written after the daemon's FIN is accepted by the kernel and lost. The watcher
    // thread sees the hang-up and replays by itself: a process that logs nothing more still
    // gets its possibly lost lines onto stderr.
    let fallback = Captured::default();
    let (log, mut r) = tcp_pair("p", |s| s.with_fallback(fallback.clone()));
    log.info("one");
    log.info("two");
    assert!(read_frame(&mut r).ends_with(" one"));
    log.flush();
    drop(r);
    assert!(
        wait_until(5 * SECOND, || replayed(&fallback.text()).len() == 2),
        "{}",
        fallback.text()
    );
    assert_eq!(replayed(&fallback.text()), ["one", "two"]);
    assert_eq!(fallback.text().matches("unavailable").count(), 1, "{}", fallback.text());
}

#[test]
fn replay_is_bounded_to_the_last_lines() {
    let (_dir, path, rx) = unix_receiver();
    let fallback = Captured::default();
    let log = unix_5424(&path).with_fallback(fallback.clone());
    for i in 0..100 {
        logger::info!(log, "n"; i = i);
        assert!(recv_unix(&rx).ends_with(&format!(" n i={i}")));
    }
    drop(rx);
    log.info("after");
    log.flush();
    let want: Vec<String> =
        (100 - logger::syslog::REPLAY_LINES..100).map(|i| format!("n i={i}")).collect();
    assert_eq!(replayed(&fallback.text()), want);
}

#[test]
fn replay_skips_lines_older_than_the_window_before_the_last_one() {
    let (_dir, path, rx) = unix_receiver();
    let fallback = Captured::default();
    let log = unix_5424(&path).with_fallback(fallback.clone());
    log.info("long ago");
    std::thread::sleep(logger::syslog::REPLAY_WINDOW + Duration::from_millis(200));
    log.info("just before");
    log.flush();
    drop(rx);
    log.info("after");
    log.flush();
    assert_eq!(replayed(&fallback.text()), ["just before"]);
}

#[test]
fn tcp_daemon_closing_an_idle_connection_causes_no_replay() {
    // The watcher sees a hang-up as it happens: lines sent more than REPLAY_WINDOW before it
    // were read long ago, so they are not repeated on the fallback.
    let fallback = Captured::default();
    let (log, mut r) = tcp_pair("p", |s| s.with_fallback(fallback.clone()));
    log.info("read long ago");
    assert!(read_frame(&mut r).ends_with(" read long ago"));
    std::thread::sleep(logger::syslog::REPLAY_WINDOW + Duration::from_millis(200));
    drop(r);
    assert!(wait_until(5 * SECOND, || fallback.text().contains("unavailable")));
    assert_eq!(replayed(&fallback.text()), Vec::<String>::new(), "{}", fallback.text());
}
