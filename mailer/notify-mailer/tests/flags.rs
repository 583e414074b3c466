//! Flag values the parsers refuse: exit status 2 and a message naming the flag, before any
//! input file is read or any connection is made. (The end-to-end runs of the binary against
//! real servers are in `tests/e2e/tests/notify_mailer*.rs`.)

use std::process::{Command, Output};

/// Runs the binary with the base flags of a run plus `extra`; the input files do not exist,
/// so a run that got past flag parsing would fail differently (on reading them).
fn run(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notify-mailer"))
        .args(["--server", "127.0.0.1:9", "--from", "ops@example.test", "--subject", "s"])
        .args(["--body", "/nonexistent/body.txt", "--recipients", "/nonexistent/list.txt"])
        .args(extra)
        .output()
        .expect("run notify-mailer")
}

fn assert_refused(extra: &[&str], flag: &str) {
    let out = run(extra);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
    assert!(stderr.contains(flag), "{extra:?}: the error does not name {flag}: {stderr}");
    assert!(!stderr.contains("/nonexistent"), "{extra:?}: inputs were read: {stderr}");
}

#[test]
fn durations_need_a_unit() {
    assert_refused(&["--sleep", "5"], "--sleep");
    assert_refused(&["--retry-base", "2"], "--retry-base");
    assert_refused(&["--circuit-after", "2"], "--circuit-after");
}

#[test]
fn logging_flags_are_checked() {
    assert_refused(&["--log-format", "xml"], "--log-format");
    assert_refused(&["--syslog", "tls:nowhere"], "--syslog");
    assert_refused(&["--syslog-ca", "ca.pem"], "--syslog");
}

#[test]
fn rates_are_a_count_per_duration() {
    assert_refused(&["--rate", "14"], "--rate");
    assert_refused(&["--rate", "0/s"], "--rate");
    assert_refused(&["--rate", "x/1s"], "--rate");
}

#[test]
fn tls_mode_and_server_are_checked() {
    assert_refused(&["--tls", "sometimes"], "--tls");
    assert_refused(&["--server", "no-port"], "--server");
}

#[test]
fn a_header_cannot_break_into_another_header() {
    assert_refused(&["--header", "X-Campaign: a\r\nBcc: victim@example.test"], "--header");
    assert_refused(&["--header", "Not A Name: x"], "--header");
    assert_refused(&["--header", "no colon"], "--header");
}

#[test]
fn with_valid_flags_the_inputs_are_read_next() {
    let out = run(&["--rate", "14/s", "--sleep", "100ms", "--header", "X-Campaign: a"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/body.txt"), "{stderr}");
}
