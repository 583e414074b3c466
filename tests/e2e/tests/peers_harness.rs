//! The peer harness itself: each peer starts, does its job for a real client, and restarts.
//! If these fail, the peer suite's other failures are about the harness, not the code.

use std::process::Command;
use std::time::Duration;

use e2e::peers::{Rsyslog, SinkCounters, SmtpSink, wait_until};

#[test]
#[ignore = "needs smtp-sink and swaks: run by .ci/run"]
fn smtp_sink_counts_a_message_from_swaks() {
    let sink = SmtpSink::start(&[]).expect("start smtp-sink");
    let status = Command::new("swaks")
        .args(["--server", &sink.addr().to_string(), "--from", "a@x.test", "--to", "b@x.test"])
        .args(["--h-Subject", "harness", "--body", "b", "--silent", "2"])
        .status()
        .expect("run swaks");
    assert!(status.success(), "swaks: {status}");
    // smtp-sink reports the message, the QUIT and the session's end one after the other: wait
    // for all three (waiting for the message alone raced the other two on a busy machine).
    let expected = SinkCounters { sessions: 1, quits: 1, messages: 1 };
    wait_until(Duration::from_secs(20), || sink.counters() == expected);
    let counters = sink.counters();
    println!("smtp-sink counters after one swaks message: {counters:?}");
    assert_eq!(counters, expected);
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn rsyslog_receives_over_its_socket_and_again_after_a_restart() {
    let mut rsyslog = Rsyslog::start().expect("start rsyslogd");
    let socket = rsyslog.socket_path();
    let send = |text: &str| {
        let status = Command::new("logger")
            .arg("-u")
            .arg(&socket)
            .arg(text)
            .status()
            .expect("run logger(1)");
        assert!(status.success());
    };
    send("harness-before-restart");
    assert!(
        rsyslog.wait_for_output(Duration::from_secs(20), |o| o.contains("harness-before-restart")),
        "output: {}",
        rsyslog.output()
    );
    rsyslog.kill().unwrap();
    rsyslog.restart().unwrap();
    send("harness-after-restart");
    assert!(
        rsyslog.wait_for_output(Duration::from_secs(20), |o| o.contains("harness-after-restart")),
        "output: {}",
        rsyslog.output()
    );
}
