//! What the journal costs, and notify-mailer beside Postfix's own client: 5,000 messages to
//! Postfix's `smtp-sink` with `--parallel 1` and `4`, the journal on and off (`--no-journal`),
//! then `smtp-source -s 4 -d` sending as many messages of the same size.
//!
//! `cargo bench -p notify-mailer --bench journal` (release; needs Postfix's smtp-sink and
//! smtp-source). Each figure is the median over the runs of the sending window the summary
//! reports (from the first message to the last outcome recorded; the whole process's wall
//! time beside it, which adds start-up, validation and the journal's opening and final
//! fsync); runs alternate so a load that comes and goes hits both sides. The bars: the journal costs at most 10 % of throughput; `--parallel 4`
//! reaches at least 0.9× `smtp-source -s 4 -d`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use test_support::{SmtpSink, callgrind, smtp_source};

const MESSAGES: usize = 5_000;
const RUNS: usize = 7;

fn main() {
    let sink = SmtpSink::start(&[]).expect("smtp-sink (apt-get install postfix)");
    let dir = tempfile::tempdir().expect("temp dir");
    let list = dir.path().join("list.txt");
    let recipients: Vec<String> = (1..=MESSAGES).map(|i| format!("user{i}@sink.test")).collect();
    std::fs::write(&list, recipients.join("\n") + "\n").unwrap();
    // About 1 KB on the wire with the headers, as smtp-source's -l 1000.
    let body = dir.path().join("body.txt");
    std::fs::write(
        &body,
        "Hello {{email}},\n".to_owned() + &"the service restarts tonight.\n".repeat(23),
    )
    .unwrap();
    let journal = dir.path().join("list.journal");

    println!(
        "notify-mailer, {MESSAGES} messages to smtp-sink, medians of {RUNS} runs \
         (release build; a loaded machine: preliminary)"
    );
    let mut parallel_4_on = 0.0;
    for parallel in [1, 4] {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            off.push(notify_mailer(sink.addr(), &list, &body, parallel, None));
            let _ = std::fs::remove_file(&journal);
            on.push(notify_mailer(sink.addr(), &list, &body, parallel, Some(&journal)));
        }
        let (off_wall, on_wall) = (
            rate(&mut off.iter().map(|r| r.0).collect::<Vec<_>>()),
            rate(&mut on.iter().map(|r| r.0).collect::<Vec<_>>()),
        );
        let (off, on) = (
            rate(&mut off.iter().map(|r| r.1).collect::<Vec<_>>()),
            rate(&mut on.iter().map(|r| r.1).collect::<Vec<_>>()),
        );
        println!(
            "  --parallel {parallel}: journal off {off:>7.0} msg/s, on {on:>7.0} msg/s: \
             on/off {:.3} (bar: >= 0.90); whole process {off_wall:.0} and {on_wall:.0} msg/s: {:.3}",
            on / off,
            on_wall / off_wall
        );
        if parallel == 4 {
            parallel_4_on = on_wall;
        }
    }
    if std::env::args().any(|a| a == "--callgrind") {
        for parallel in [1, 4] {
            let off = instructions(sink.addr(), &list, &body, parallel, None);
            let _ = std::fs::remove_file(&journal);
            let on = instructions(sink.addr(), &list, &body, parallel, Some(&journal));
            println!(
                "  --parallel {parallel}, in instructions (callgrind, the whole process): \
                 journal off {off}, on {on}: on/off {:.3}",
                on as f64 / off as f64
            );
        }
    }
    let args = [
        "-s",
        "4",
        "-d",
        "-m",
        "5000",
        "-l",
        "1000",
        "-f",
        "ops@sender.test",
        "-t",
        "user@sink.test",
    ];
    let mut source = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let done = smtp_source(&args, sink.addr(), Duration::from_secs(300)).expect("smtp-source");
        assert!(done.status.success(), "smtp-source: {done:?}");
        source.push(started.elapsed());
    }
    let source = rate(&mut source);
    println!(
        "  notify-mailer --parallel 4 (journal on, whole process) {parallel_4_on:>7.0} msg/s vs \
         smtp-source -s 4 -d {source:>7.0} msg/s: {:.3} (bar: >= 0.90)",
        parallel_4_on / source
    );
}

/// One run's wall time, and its sending window.
fn notify_mailer(
    server: SocketAddr,
    list: &Path,
    body: &Path,
    parallel: usize,
    journal: Option<&Path>,
) -> (Duration, Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notify-mailer"));
    with_args(&mut command, server, list, body, parallel, journal);
    let started = Instant::now();
    let out = command.output().expect("notify-mailer");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("  sent         {MESSAGES}\n")),
        "{stdout}"
    );
    let window = stdout
        .lines()
        .find_map(|l| {
            let secs = l.strip_prefix("notify-mailer summary ")?.rsplit_once("elapsed ")?.1;
            secs.strip_suffix('s')?.parse().ok()
        })
        .map(Duration::from_secs_f64)
        .expect("the summary's elapsed time");
    (elapsed, window)
}

/// The instructions one run executes, counted by valgrind's callgrind.
fn instructions(
    server: SocketAddr,
    list: &Path,
    body: &Path,
    parallel: usize,
    journal: Option<&Path>,
) -> u64 {
    let mut command = callgrind::command(&[], env!("CARGO_BIN_EXE_notify-mailer"));
    with_args(&mut command, server, list, body, parallel, journal);
    callgrind::instructions(&mut command).expect("callgrind")
}

/// Adds a run's flags to `command`.
fn with_args(
    command: &mut Command,
    server: SocketAddr,
    list: &Path,
    body: &Path,
    parallel: usize,
    journal: Option<&Path>,
) {
    command
        .args(["--server", &server.to_string(), "--tls", "none", "--from", "ops@sender.test"])
        .args(["--subject", "Maintenance tonight", "--log-level", "warning"])
        .args(["--parallel", &parallel.to_string()])
        .arg("--body")
        .arg(body)
        .arg("--recipients")
        .arg(list);
    match journal {
        Some(path) => command.arg("--journal").arg(path),
        None => command.arg("--no-journal"),
    };
}

/// Messages per second at the median time.
fn rate(times: &mut [Duration]) -> f64 {
    times.sort_unstable();
    MESSAGES as f64 / times[times.len() / 2].as_secs_f64()
}
