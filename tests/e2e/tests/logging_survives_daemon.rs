//! Issue 5, item 5: logging survives its daemon. A real child process (`log-100`) logs
//! numbered lines at 100 lines/s through `logger::new(config)` to a real rsyslogd, over the
//! unix socket and over TCP, while rsyslogd is stopped and restarted twice (SIGTERM, as
//! `systemctl restart` does, and SIGKILL). The process never stops: it finishes on schedule and
//! exits 0. Every line is accounted for, in rsyslog's file or on the process's stderr, except
//! what syslog itself cannot account for:
//!
//! A line the kernel accepted into the daemon's socket just before the daemon closed it (or
//! that the daemon read but had not written when it was killed) is gone, and the sender got no
//! error: plain syslog (unix datagram, UDP, RFC 6587 TCP) has no acknowledgement. Measured here,
//! that is 0 or 1 line per stop, always the last one sent before the first line that fell back
//! to stderr. The tests count those, print them, and fail on any loss outside that window: a
//! line sent while the daemon was away, after it came back, or far from a stop.
//! Closing the window needs an acknowledged protocol (RELP) or a sender that replays its last
//! lines to stderr when it finds the daemon gone (at-least-once, like the mailer's resend).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::peers::{Rsyslog, wait_until};
use regex::Regex;

const LINES: u64 = 800;
const RATE: u64 = 100;

/// The line numbers of `run` found in `text`.
fn numbers(text: &str, pattern: &Regex) -> Vec<u64> {
    pattern.captures_iter(text).filter_map(|c| c[1].parse().ok()).collect()
}

/// How rsyslogd is taken away.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    /// SIGTERM: it closes its inputs and writes out its queue.
    Term,
    /// SIGKILL: it vanishes with whatever it had read but not written.
    Kill,
}

/// Only lines sent within this many line intervals before the first line that fell back to
/// stderr may be lost (100 ms at 100 lines/s): the daemon's unacknowledged in-flight lines.
const STOP_WINDOW: u64 = 10;

fn survives_two_daemon_stops(transport: &str, stop: Stop) {
    let mut rsyslog = Rsyslog::start().expect("start rsyslogd");
    let target = match transport {
        "unix" => format!("unix:{}", rsyslog.socket_path().display()),
        "tcp" => format!("tcp:{}", rsyslog.tcp_addr()),
        other => panic!("unknown transport {other}"),
    };
    let run_id = format!("{transport}{}", std::process::id());
    let pattern = Regex::new(&format!(r"run={run_id} line=(\d+)")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_log-100"))
        .args(["--syslog", &target, "--lines", &LINES.to_string(), "--rate", &RATE.to_string()])
        .args(["--run-id", &run_id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start log-100");
    let stderr_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::clone(&stderr_lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let on_stderr = |pattern: &Regex| numbers(&stderr_lines.lock().unwrap().join("\n"), pattern);
    let started = Instant::now();
    let mut outages = Vec::new();
    for kill in 1..=2 {
        // Let a second's worth of lines reach the daemon, then take it away.
        let in_file = numbers(&rsyslog.output(), &pattern).len();
        assert!(
            rsyslog.wait_for_output(Duration::from_secs(10), |o| {
                numbers(o, &pattern).len() >= in_file + RATE as usize
            }),
            "kill {kill}: rsyslog got no lines; stderr: {:?}",
            stderr_lines.lock().unwrap()
        );
        let down_at = Instant::now();
        let before: BTreeSet<u64> = on_stderr(&pattern).into_iter().collect();
        match stop {
            Stop::Term => rsyslog.terminate().unwrap(),
            Stop::Kill => rsyslog.kill().unwrap(),
        }
        // While it is down the process keeps logging: the lines show up on its stderr.
        assert!(
            wait_until(Duration::from_secs(10), || on_stderr(&pattern).len() >= before.len() + 30),
            "kill {kill}: no fallback lines on stderr while rsyslog was down"
        );
        let first_fallback =
            on_stderr(&pattern).into_iter().filter(|n| !before.contains(n)).min().unwrap();
        rsyslog.restart().unwrap();
        outages.push((first_fallback, down_at.elapsed()));
    }
    let status = wait_until(Duration::from_secs(30), || matches!(child.try_wait(), Ok(Some(_))));
    assert!(status, "log-100 did not finish");
    let output = child.wait_with_output().unwrap();
    reader.join().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "log-100 failed: {} {summary}", output.status);
    assert!(summary.contains(&format!("done lines={LINES}")), "{summary}");
    // omfile writes in batches: give the last lines a moment to land.
    let stderr_numbers: BTreeSet<u64> = on_stderr(&pattern).into_iter().collect();
    rsyslog.wait_for_output(Duration::from_secs(3), |o| {
        let file: BTreeSet<u64> = numbers(o, &pattern).into_iter().collect();
        file.union(&stderr_numbers).count() as u64 == LINES
    });
    let file_list = numbers(&rsyslog.output(), &pattern);
    let in_file: BTreeSet<u64> = file_list.iter().copied().collect();
    let all: BTreeSet<u64> = in_file.union(&stderr_numbers).copied().collect();
    let lost: Vec<u64> = (0..LINES).filter(|n| !all.contains(n)).collect();
    let in_both = in_file.intersection(&stderr_numbers).count();
    let repeated_in_file = file_list.len() - in_file.len();
    println!(
        "{transport}, {stop:?}: {LINES} lines at {RATE}/s in {:?} ({summary_line}); rsyslog \
         stopped twice (first fallback line, outage): {outages:?}; in rsyslog's file {}, on \
         stderr {}, in both {in_both}, repeated in the file {repeated_in_file}, lost {} {lost:?}",
        started.elapsed(),
        in_file.len(),
        stderr_numbers.len(),
        lost.len(),
        summary_line = summary.trim(),
    );
    let in_stop_window =
        |n: &u64| outages.iter().any(|(first, _)| *n < *first && *n + STOP_WINDOW >= *first);
    let outside: Vec<u64> = lost.iter().copied().filter(|n| !in_stop_window(n)).collect();
    assert!(outside.is_empty(), "{transport}: lost outside the stop windows: {outside:?}");
    // Never blocked: the schedule held within a second over the whole run, outages included.
    let elapsed_ms: u64 = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("elapsed_ms="))
        .and_then(|v| v.parse().ok())
        .expect("elapsed_ms in the summary");
    assert!(elapsed_ms < LINES * 1000 / RATE + 1000, "log-100 was held up: {elapsed_ms} ms");
    assert!(stderr_numbers.len() >= 60, "two outages should put lines on stderr");
    assert!(in_file.len() as u64 >= LINES / 2, "most lines should reach rsyslog");
    // Every stderr line is one whole record: nothing else but lines and outage notices.
    for line in stderr_lines.lock().unwrap().iter() {
        assert!(pattern.is_match(line) || line.starts_with("logger: log-100 syslog"), "{line:?}");
    }
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn unix_socket_logging_survives_two_rsyslog_restarts() {
    survives_two_daemon_stops("unix", Stop::Term);
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn tcp_logging_survives_two_rsyslog_restarts() {
    survives_two_daemon_stops("tcp", Stop::Term);
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn unix_socket_logging_survives_two_rsyslog_sigkills() {
    survives_two_daemon_stops("unix", Stop::Kill);
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn tcp_logging_survives_two_rsyslog_sigkills() {
    survives_two_daemon_stops("tcp", Stop::Kill);
}
