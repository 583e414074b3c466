//! `Syslog` against a real `rsyslogd` started by the test (foreground, own config, loopback):
//! lines arrive intact and rsyslog parses them; a restart in the middle of a run loses nothing
//! silently. Run by `.ci/run` with `--include-ignored`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use logger::{Facility, Logger, Syslog, SyslogFormat, SyslogTarget};
use test_support::syslog_frame::parse_5424;
use test_support::{Captured, Rsyslog, wait_until};

const WAIT: Duration = Duration::from_secs(10);

/// A stock rsyslog (no TLS input: these tests do not use it, and it costs a second).
fn rsyslog() -> Rsyslog {
    Rsyslog::start_without_tls().expect("start rsyslogd")
}

/// How many records rsyslog wrote whose raw message contains `needle`.
fn count(rsyslog: &Rsyslog, needle: &str) -> usize {
    rsyslog.records().iter().filter(|r| r.raw.contains(needle)).count()
}

fn check_delivery(rsyslog: &Rsyslog, target: SyslogTarget, tag: &str) {
    let log = Syslog::new(target, "probe").with_hostname("testhost");
    let needle = format!("intact-{tag}");
    logger::audit_info!(log, "{} é\n[AUDIT] forged", needle; user = "al ice", n = 3);
    let r = rsyslog.wait_for(WAIT, |r| r.raw.contains(&needle)).unwrap_or_else(|| {
        panic!("{tag}: nothing arrived; rsyslog wrote {:#?}", rsyslog.records())
    });
    let pid = std::process::id().to_string();
    let header = (r.protocol_version.as_str(), r.facility, r.severity, r.hostname.as_str());
    assert_eq!(header, ("1", 16, 6, "testhost"), "{r:?}");
    assert_eq!((r.app_name.as_str(), r.procid.as_str()), ("probe", pid.as_str()), "{r:?}");
    let body = format!(r#"[AUDIT] {needle} é\n[AUDIT] forged user="al ice" n=3"#);
    assert_eq!(r.msg.trim_start(), body, "{r:?}");
    // The raw message is exactly what was sent: one RFC 5424 line, header and all.
    let raw = parse_5424(&r.raw).unwrap_or_else(|| panic!("raw message not RFC 5424: {r:?}"));
    assert_eq!(raw.msg, body);
    assert_eq!(count(rsyslog, &needle), 1, "one call, one line");
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn rfc5424_arrives_intact_over_unix_udp_and_tcp() {
    let rsyslog = rsyslog();
    // Stock imuxsock misparses RFC 5424: the socket whose input has UseSpecialParser="off".
    let unix = SyslogTarget::Unix(rsyslog.socket_path_no_special_parser());
    check_delivery(&rsyslog, unix, "unix");
    check_delivery(&rsyslog, SyslogTarget::Udp(rsyslog.udp_addr()), "udp");
    check_delivery(&rsyslog, SyslogTarget::Tcp(rsyslog.tcp_addr()), "tcp");
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn rfc3164_is_parsed_too() {
    let rsyslog = rsyslog();
    for (tag, target) in [
        ("unix", SyslogTarget::Unix(rsyslog.socket_path())),
        ("tcp", SyslogTarget::Tcp(rsyslog.tcp_addr())),
    ] {
        let log = Syslog::new(target, "probe")
            .with_format(SyslogFormat::Rfc3164)
            .with_facility(Facility::Mail)
            .with_hostname("testhost");
        logger::warning!(log, "bsd-{tag}"; k = "v");
        let needle = format!("bsd-{tag}");
        let r = rsyslog.wait_for(WAIT, |r| r.raw.contains(&needle)).expect("arrived");
        let pid = std::process::id().to_string();
        assert_eq!((r.facility, r.severity), (2, 4), "{r:?}");
        assert_eq!((r.app_name.as_str(), r.procid.as_str()), ("probe", pid.as_str()), "{r:?}");
        assert_eq!(r.msg.trim_start(), format!("bsd-{tag} k=v"), "{r:?}");
    }
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn tcp_framing_keeps_many_messages_apart() {
    let rsyslog = rsyslog();
    let log = Syslog::new(SyslogTarget::Tcp(rsyslog.tcp_addr()), "probe");
    for i in 0..500 {
        logger::info!(log, "burst"; i = i);
    }
    let records = rsyslog.wait_for_count(WAIT, 500, |r| r.msg.contains("burst"));
    assert_eq!(records.len(), 500, "only {} of 500 arrived", records.len());
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.msg.trim_start(), format!("burst i={i}"), "{r:?}");
    }
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn oversized_message_is_truncated_with_the_marker() {
    let rsyslog = rsyslog();
    let log = Syslog::new(SyslogTarget::Unix(rsyslog.socket_path()), "probe");
    log.info(&format!("huge-{}", "x".repeat(100_000)));
    let line = rsyslog.wait_for(WAIT, |r| r.raw.contains("huge-")).expect("arrived").raw;
    assert!(line.ends_with(logger::syslog::TRUNCATION_MARKER), "{}", &line[line.len() - 40..]);
}

/// The daemon restarts in the middle of a run: the process keeps going, lines sent while it
/// was down appear on the fallback (stderr in production), and delivery resumes.
fn restart_in_the_middle(target: fn(&Rsyslog) -> SyslogTarget, tag: &str) {
    let mut rsyslog = rsyslog();
    let fallback = Captured::default();
    let log = Syslog::new(target(&rsyslog), "probe")
        .with_retry_interval(Duration::from_millis(20))
        .with_fallback(fallback.clone());
    log.info(&format!("{tag}-before"));
    assert!(rsyslog.wait_for(WAIT, |r| r.raw.contains(&format!("{tag}-before"))).is_some());

    rsyslog.kill().unwrap();
    // Over TCP the hang-up is noticed by the connection's watcher thread; give it a moment
    // by logging until the fallback shows the outage.
    let mut n = 0;
    let noticed = wait_until(WAIT, || {
        n += 1;
        log.info(&format!("{tag}-down-{n}"));
        fallback.text().contains(&format!("{tag}-down-{n}"))
    });
    assert!(noticed, "lines sent while down did not reach the fallback");
    for i in 0..5 {
        log.info(&format!("{tag}-surely-down-{i}"));
    }
    let text = fallback.text();
    assert_eq!(text.matches("unavailable").count(), 1, "one outage notice: {text}");
    for i in 0..5 {
        let line = text
            .lines()
            .find(|l| l.ends_with(&format!(" {tag}-surely-down-{i}")))
            .unwrap_or_else(|| panic!("missing from the fallback: {tag}-surely-down-{i}\n{text}"));
        assert!(parse_5424(line).is_some(), "whole line on the fallback: {line}");
    }

    rsyslog.restart().unwrap();
    let mut m = 0;
    let resumed = wait_until(WAIT, || {
        m += 1;
        log.info(&format!("{tag}-after-{m}"));
        count(&rsyslog, &format!("{tag}-after-")) > 0
    });
    assert!(resumed, "delivery did not resume; fallback: {}", fallback.text());
    assert!(fallback.text().contains("is back"), "{}", fallback.text());
    // From now on lines go to the daemon, not the fallback.
    let before = fallback.text().len();
    log.info(&format!("{tag}-steady"));
    assert!(rsyslog.wait_for(WAIT, |r| r.raw.contains(&format!("{tag}-steady"))).is_some());
    assert_eq!(fallback.text().len(), before);
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn restart_over_unix() {
    restart_in_the_middle(|r| SyslogTarget::Unix(r.socket_path_no_special_parser()), "unix");
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn restart_over_tcp() {
    restart_in_the_middle(|r| SyslogTarget::Tcp(r.tcp_addr()), "tcp");
}

/// The environment variable that turns [`child_logs_what_stdin_says`] into a probe.
const CHILD_SOCKET: &str = "LOGGER_TEST_CHILD_SYSLOG_SOCKET";

/// Helper for [`undeliverable_lines_reach_the_real_stderr`], run in a child process: logs each
/// stdin line through a `Syslog` with the default fallback (the real stderr) and answers
/// `CHILD-OK` on stdout. Without the environment variable it has nothing to do.
#[test]
#[ignore = "helper: runs in a child process of undeliverable_lines_reach_the_real_stderr"]
fn child_logs_what_stdin_says() {
    let Some(socket) = std::env::var_os(CHILD_SOCKET) else { return };
    let log = Syslog::new(SyslogTarget::Unix(socket.into()), "probe")
        .with_retry_interval(Duration::from_millis(10));
    for line in std::io::stdin().lock().lines() {
        log.info(&line.unwrap());
        println!("CHILD-OK");
    }
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn undeliverable_lines_reach_the_real_stderr() {
    let mut rsyslog = rsyslog();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_logs_what_stdin_says", "--include-ignored", "--nocapture"])
        .env(CHILD_SOCKET, rsyslog.socket_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut say = |text: &str| {
        writeln!(stdin, "{text}").unwrap();
        let acked = stdout.by_ref().map(Result::unwrap).any(|l| l == "CHILD-OK");
        assert!(acked, "the child exited before logging {text:?}");
    };
    say("child-before");
    assert!(rsyslog.wait_for(WAIT, |r| r.raw.contains("child-before")).is_some());
    rsyslog.kill().unwrap();
    say("child-while-down");
    rsyslog.restart().unwrap();
    let mut n = 0;
    let resumed = wait_until(WAIT, || {
        n += 1;
        say(&format!("child-after-{n}"));
        count(&rsyslog, "child-after-") > 0
    });
    assert!(resumed);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unavailable"), "{stderr}");
    let line = stderr.lines().find(|l| l.ends_with(" child-while-down")).unwrap_or_else(|| {
        panic!("the line sent while rsyslog was down is not on stderr: {stderr}")
    });
    assert!(parse_5424(line).is_some(), "{line}");
    assert!(stderr.contains("is back; delivering again"), "{stderr}");
    assert_eq!(count(&rsyslog, "child-while-down"), 0);
}
