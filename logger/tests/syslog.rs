//! `Syslog` against receivers in the test: a unix datagram socket, UDP and TCP on loopback.
//! Exact bytes where the protocol matters; reconnection and the stderr fallback.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
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

#[test]
fn unix_rfc5424_message_is_exact() {
    let (_dir, path, rx) = unix_receiver();
    let log = Syslog::new(SyslogTarget::Unix(path), "probe").with_hostname("host1");
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
    assert!(recv_unix(&rx).ends_with(" - - sent"));
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
    assert_eq!(fallback.text(), "");
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

#[test]
fn tcp_uses_octet_counting_so_messages_never_glue() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let log =
        Syslog::new(SyslogTarget::Tcp(listener.local_addr().unwrap()), "probe").connect().unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(5 * SECOND)).unwrap();
    let mut r = BufReader::new(conn);
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
    let log = Syslog::new(SyslogTarget::Unix(path), "p");
    let huge = "ü".repeat(300_000);
    log.info(&huge);
    let got = recv_unix(&rx);
    assert!(got.len() <= logger::syslog::DEFAULT_MAX_LEN, "{}", got.len());
    assert!(got.len() > logger::syslog::DEFAULT_MAX_LEN - 20);
    assert!(got.ends_with(logger::syslog::TRUNCATION_MARKER));
    assert!(parse_5424(&got).unwrap().msg.starts_with("üüü"));
}

#[test]
fn unix_daemon_restart_lines_go_to_fallback_then_delivery_resumes() {
    let (_dir, path, rx) = unix_receiver();
    let fallback = Captured::default();
    let log = Syslog::new(SyslogTarget::Unix(path.clone()), "p")
        .with_retry_interval(Duration::from_millis(5))
        .with_fallback(fallback.clone());
    log.info("before");
    assert!(recv_unix(&rx).ends_with(" before"));

    // The daemon goes away: its socket is closed and the file removed.
    drop(rx);
    std::fs::remove_file(&path).unwrap();
    log.info("while down 1");
    log.info("while down 2");
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
    }
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    let flaps = accepted.load(Ordering::Relaxed);
    assert!(flaps >= 20, "only {flaps} connections in 5 s");
    let text = fallback.text();
    assert_eq!(text.matches("unavailable").count(), 1, "{flaps} flaps: {text}");
    assert!(text.matches("is back; delivering again").count() <= 1, "{flaps} flaps: {text}");
}

#[test]
fn during_an_outage_a_slow_reconnect_blocks_only_the_thread_that_makes_it() {
    // A listener whose accept queue is full drops SYNs, so a connect hangs until its timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    let hangs = |addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100));
    while held.len() < 1000 {
        match hangs(addr) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    assert!(hangs(addr).is_err(), "could not fill the accept queue");

    let log = Syslog::new(SyslogTarget::Tcp(addr), "p")
        .with_timeout(Duration::from_millis(1500))
        .with_retry_interval(Duration::ZERO)
        .with_fallback(Captured::default());
    // The outage is known (the first connect timed out): from now on one thread retries and
    // the others do not wait for it.
    assert!(log.try_connect().is_err());
    let times: Vec<Duration> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..4)
            .map(|i| {
                let log = &log;
                s.spawn(move || {
                    let start = std::time::Instant::now();
                    logger::info!(log, "line"; i = i);
                    start.elapsed()
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let slow = times.iter().filter(|t| **t >= Duration::from_millis(700)).count();
    assert_eq!(slow, 1, "only the connecting thread may wait: {times:?}");
    drop(listener);
}

#[test]
fn a_wedged_daemon_costs_a_timeout_per_retry_not_per_line() {
    // The daemon is alive but stopped reading: its queue fills, and sends block until the
    // write timeout. Lines go to the fallback; only the occasional retry waits. (Thresholds
    // are far above scheduling noise: a timeout is 200 ms, "slow" is 150 ms or more.)
    let (_dir, path, _rx_never_read) = unix_receiver();
    let fallback = Captured::default();
    let log = Syslog::new(SyslogTarget::Unix(path), "p")
        .with_timeout(Duration::from_millis(200))
        .with_retry_interval(Duration::from_millis(10))
        .with_fallback(fallback.clone());
    let start = std::time::Instant::now();
    let (mut slow, mut sent) = (0, 0);
    while sent < 1_000_000 && start.elapsed() < 3 * SECOND {
        let t = std::time::Instant::now();
        logger::info!(log, "wedged"; i = sent);
        sent += 1;
        if t.elapsed() >= Duration::from_millis(150) {
            slow += 1;
        }
    }
    let text = fallback.text();
    assert!(text.lines().filter(|l| l.contains(" wedged i=")).count() > sent / 2, "{text}");
    // The first failure costs two timeouts (the send, then the immediate reconnect); retries
    // then wait 10, 20, 40 ... 640 ms, each costing a timeout: 7 slow calls in three seconds.
    // Retrying at a fixed interval would make 13.
    assert!(slow <= 9, "{slow} of {sent} calls waited for a timeout in {:?}", start.elapsed());
}

#[test]
fn lines_logged_while_the_first_connection_opens_wait_for_it() {
    // No outage: threads that log while another opens the first connection are delivered, not
    // diverted to the fallback.
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
        assert_eq!(fallback.text(), "");
        for _ in 0..4 {
            assert!(recv_unix(&rx).contains(" - - first t="));
        }
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
    let text = fallback.text();
    // One notice for the outage, then the line itself, whole.
    assert_eq!(text.matches("unavailable").count(), 1, "{text}");
    assert_eq!(parse_5424(text.lines().last().unwrap()).unwrap().msg, "nobody listens");
}

#[test]
fn many_threads_share_one_syslog() {
    let (_dir, path, rx) = unix_receiver();
    let fallback = Captured::default();
    // The receiver's queue holds 10 datagrams, so writers wait for the reader; a generous
    // timeout keeps a busy machine from turning that wait into fallback lines.
    let log = Arc::new(
        Syslog::new(SyslogTarget::Unix(path), "p")
            .with_timeout(Duration::from_secs(30))
            .with_fallback(fallback.clone()),
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
    assert_eq!(fallback.text(), "");
    let got = reader.join().unwrap();
    assert!(got.iter().all(|m| parse_5424(m).is_some_and(|m| m.msg.starts_with("m t="))));
}

#[test]
fn new_builds_a_fanout_with_syslog_and_never_fails() {
    let (_dir, path, rx) = unix_receiver();
    let mut config = logger::Config::new("svc");
    config.stdout_level = None;
    config.syslog = Some(SyslogTarget::Unix(path));
    config.syslog_level = Level::Warning;
    config.syslog_format = SyslogFormat::Rfc3164;
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
    let log = Syslog::new(SyslogTarget::Unix(path.clone()), "p")
        .with_retry_interval(Duration::from_millis(5))
        .with_fallback(fallback.clone());
    log.info("read 1");
    assert!(recv_unix(&rx).ends_with(" read 1"));
    log.info("queued 2");
    log.info("queued 3");
    drop(rx);
    assert_eq!(fallback.text(), "", "nothing is known to be wrong yet");
    log.info("after 4");
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
    assert_eq!(replayed(&fallback.text()).len(), 3, "{}", fallback.text());

    // The daemon comes back: only lines sent on the new connection can be replayed next time.
    std::fs::remove_file(&path).unwrap();
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(30 * SECOND)).unwrap();
    assert!(wait_until(5 * SECOND, || {
        log.info("probe");
        fallback.text().contains("is back; delivering again")
    }));
    log.info("second life");
    drop(rx);
    log.info("after second death");
    let again = replayed(&fallback.text());
    assert_eq!(again.last().map(String::as_str), Some("second life"), "{again:?}");
    assert!(again[3..].iter().all(|m| m == "probe" || m == "second life"), "{again:?}");
}

#[test]
fn tcp_hang_up_replays_at_once_without_waiting_for_the_next_line() {
    // A frame written after the daemon's FIN is accepted by the kernel and lost. The watcher
    // thread sees the hang-up and replays by itself: a process that logs nothing more still
    // gets its possibly lost lines onto stderr.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fallback = Captured::default();
    let log = Syslog::new(SyslogTarget::Tcp(listener.local_addr().unwrap()), "p")
        .with_fallback(fallback.clone())
        .connect()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(5 * SECOND)).unwrap();
    let mut r = BufReader::new(conn);
    log.info("one");
    log.info("two");
    assert!(read_frame(&mut r).ends_with(" one"));
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
    let log = Syslog::new(SyslogTarget::Unix(path), "p").with_fallback(fallback.clone());
    for i in 0..100 {
        logger::info!(log, "n"; i = i);
        assert!(recv_unix(&rx).ends_with(&format!(" n i={i}")));
    }
    drop(rx);
    log.info("after");
    let want: Vec<String> =
        (100 - logger::syslog::REPLAY_LINES..100).map(|i| format!("n i={i}")).collect();
    assert_eq!(replayed(&fallback.text()), want);
}

#[test]
fn replay_skips_lines_older_than_the_window_before_the_last_one() {
    let (_dir, path, rx) = unix_receiver();
    let fallback = Captured::default();
    let log = Syslog::new(SyslogTarget::Unix(path), "p").with_fallback(fallback.clone());
    log.info("long ago");
    std::thread::sleep(logger::syslog::REPLAY_WINDOW + Duration::from_millis(200));
    log.info("just before");
    drop(rx);
    log.info("after");
    assert_eq!(replayed(&fallback.text()), ["just before"]);
}

#[test]
fn tcp_daemon_closing_an_idle_connection_causes_no_replay() {
    // The watcher sees a hang-up as it happens: lines sent more than REPLAY_WINDOW before it
    // were read long ago, so they are not repeated on the fallback.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fallback = Captured::default();
    let log = Syslog::new(SyslogTarget::Tcp(listener.local_addr().unwrap()), "p")
        .with_fallback(fallback.clone())
        .connect()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(5 * SECOND)).unwrap();
    let mut r = BufReader::new(conn);
    log.info("read long ago");
    assert!(read_frame(&mut r).ends_with(" read long ago"));
    std::thread::sleep(logger::syslog::REPLAY_WINDOW + Duration::from_millis(200));
    drop(r);
    assert!(wait_until(5 * SECOND, || fallback.text().contains("unavailable")));
    assert_eq!(replayed(&fallback.text()), Vec::<String>::new(), "{}", fallback.text());
}
