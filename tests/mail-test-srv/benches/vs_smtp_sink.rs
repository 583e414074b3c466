//! mail-test-srv vs Postfix's `smtp-sink`, both loaded by the same
//! `smtp-source -s 20 -m 20000 -l 1000` (a new connection per message, and with `-d` reusing
//! 20 connections), faults off. smtp-sink stores nothing; mail-test-srv stores every message
//! (and indexes it for search, as it always does), and its HTTP count is checked after each
//! run.
//!
//! Prints msg/s per run, the median of several rounds, the ratio to smtp-sink (goal: at least
//! 1.0 in both modes), and peak RSS (`VmHWM` of each server) against the budget
//! `2 x stored bytes + 20 MiB`. Both servers take turns going first, so drift and warm-up
//! favour neither. On a shared machine, quote medians and ratios only.
//!
//! `cargo bench -p mail-test-srv --bench vs_smtp_sink [-- ROUNDS [MESSAGES]]` (default 5 rounds
//! of 20,000 messages). Needs `/usr/sbin/smtp-sink` and `/usr/sbin/smtp-source` (postfix).
//! smtp-sink runs as a user would benchmark it: without `-c`, whose per-message counter output
//! would slow it down (`SmtpSink::start_uncounted`).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use test_support::{Held, SmtpSink, free_port, loopback, memory_kib, smtp_source};

const SESSIONS: &str = "20";
const LENGTH: &str = "1000";

/// Peak resident set size of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    memory_kib(pid).map_or(0, |(_, peak)| peak)
}

/// Runs smtp-source against `addr`; returns msg/s. A run over 5 minutes is a failure, not a
/// slow result.
fn load(addr: SocketAddr, reuse: bool, messages: u64) -> f64 {
    let count = messages.to_string();
    let mut args = vec!["-s", SESSIONS, "-m", &count, "-l", LENGTH, "-f", "a@x.test"];
    args.extend(["-t", "b@x.test"]);
    if reuse {
        args.insert(0, "-d");
    }
    let run = smtp_source(&args, addr, Duration::from_secs(300)).expect("smtp-source");
    assert!(run.success(), "smtp-source {args:?} failed: {}", run.transcript());
    messages as f64 / run.elapsed.as_secs_f64()
}

struct Run {
    rate: f64,
    rss_kib: u64,
    stored_bytes: u64,
}

fn run_smtp_sink(reuse: bool, messages: u64) -> Run {
    // Without -c: printing counters after every message would slow the sink down.
    let sink = SmtpSink::start_uncounted(&[]).expect("smtp-sink");
    let rate = load(sink.addr(), reuse, messages);
    Run { rate, rss_kib: peak_rss_kib(sink.pid()), stored_bytes: 0 }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    ureq::get(&format!("http://{addr}{path}")).call().expect("HTTP").into_string().expect("body")
}

fn run_mail_test_srv(reuse: bool, messages: u64) -> Run {
    let (smtp, http) = (loopback(free_port()), loopback(free_port()));
    let srv = Held::spawn(
        Command::new(env!("CARGO_BIN_EXE_mail-test-srv"))
            .args(["--smtp", &smtp.to_string(), "--http", &http.to_string()])
            .args(["--max-messages", "10000000", "--log-level", "warning"]),
    )
    .and_then(|srv| {
        srv.wait_ready(Duration::from_secs(10), "listen", |s| {
            s.listens_tcp(smtp.port()) && s.listens_tcp(http.port())
        })
    })
    .expect("mail-test-srv");
    let rate = load(smtp, reuse, messages);
    let count = http_get(http, &format!("/wait?count={messages}&timeout_ms=10000"));
    assert_eq!(count.trim(), messages.to_string(), "mail-test-srv stored {count} of {messages}");
    let stats: serde_json::Value =
        serde_json::from_str(&http_get(http, "/stats")).expect("stats JSON");
    let stored_bytes = stats["stored_bytes"].as_u64().expect("stored_bytes");
    Run { rate, rss_kib: peak_rss_kib(srv.pid()), stored_bytes }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn main() {
    // `cargo bench` passes `--bench`; skip flags.
    let numbers: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = numbers.first().copied().unwrap_or(5).max(1);
    let messages = numbers.get(1).copied().unwrap_or(20_000).max(1);
    println!(
        "mail-test-srv vs smtp-sink: smtp-source -s {SESSIONS} -m {messages} -l {LENGTH}, \
         {rounds} rounds, faults off"
    );
    let mut ratios = Vec::new();
    for reuse in [false, true] {
        let label = if reuse { "-d (20 reused connections)" } else { "new connection per message" };
        println!("\n{label}");
        let (mut sink, mut srv) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let (a, b) = if round % 2 == 0 {
                let a = run_smtp_sink(reuse, messages);
                (a, run_mail_test_srv(reuse, messages))
            } else {
                let b = run_mail_test_srv(reuse, messages);
                (run_smtp_sink(reuse, messages), b)
            };
            println!(
                "  round {round}: smtp-sink {:>8.0} msg/s ({:>6} KiB peak)   mail-test-srv {:>8.0} \
                 msg/s ({:>6} KiB peak, {} KiB stored)",
                a.rate,
                a.rss_kib,
                b.rate,
                b.rss_kib,
                b.stored_bytes / 1024
            );
            sink.push(a);
            srv.push(b);
        }
        let sink_rate = median(sink.iter().map(|r| r.rate).collect());
        let srv_rate = median(srv.iter().map(|r| r.rate).collect());
        let srv_rss = srv.iter().map(|r| r.rss_kib).max().unwrap_or(0);
        let stored = srv.iter().map(|r| r.stored_bytes).max().unwrap_or(0);
        let budget_kib = 2 * stored / 1024 + 20 * 1024;
        let ratio = srv_rate / sink_rate;
        ratios.push((label, ratio));
        println!("  median: smtp-sink {sink_rate:.0} msg/s, mail-test-srv {srv_rate:.0} msg/s");
        println!("  ratio mail-test-srv / smtp-sink: {ratio:.2}x (goal >= 1.00x)");
        println!(
            "  mail-test-srv peak RSS {:.1} MiB for {:.1} MiB stored; budget 2 x stored + 20 MiB \
             = {:.1} MiB: {}",
            srv_rss as f64 / 1024.0,
            stored as f64 / 1048576.0,
            budget_kib as f64 / 1024.0,
            if srv_rss <= budget_kib { "within" } else { "OVER" }
        );
    }
    println!();
    for (label, ratio) in ratios {
        println!("ratio {ratio:.2}x  {label}");
    }
}
