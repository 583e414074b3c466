//! What the journal costs, and notify-mailer beside Postfix's own client: 5,000 messages to
//! Postfix's `smtp-sink` with `--parallel 1` and `4`, the journal on and off (`--no-journal`),
//! then `smtp-source -s 4 -d` sending as many messages of the same size.
//!
//! `cargo bench -p notify-mailer --bench journal` (release; needs Postfix's smtp-sink and
//! smtp-source). Each figure is the median of the runs' wall times (the whole process: start,
//! validation, journal, sending, summary); runs alternate so a load that comes and goes hits
//! both sides. The bars: the journal costs at most 10 % of throughput; `--parallel 4`
//! reaches at least 0.9× `smtp-source -s 4 -d`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use test_support::{SmtpSink, smtp_source};

const MESSAGES: usize = 5_000;
const RUNS: usize = 5;

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
        let (off, on) = (rate(&mut off), rate(&mut on));
        println!(
            "  --parallel {parallel}: journal off {off:>7.0} msg/s, on {on:>7.0} msg/s: \
             on/off {:.3} (bar: >= 0.90)",
            on / off
        );
        if parallel == 4 {
            parallel_4_on = on;
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
        "  notify-mailer --parallel 4 (journal on) {parallel_4_on:>7.0} msg/s vs smtp-source -s 4 -d \
         {source:>7.0} msg/s: {:.3} (bar: >= 0.90)",
        parallel_4_on / source
    );
}

/// One run's wall time.
fn notify_mailer(
    server: std::net::SocketAddr,
    list: &Path,
    body: &Path,
    parallel: usize,
    journal: Option<&Path>,
) -> Duration {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notify-mailer"));
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
    let started = Instant::now();
    let out = command.output().expect("notify-mailer");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("  sent         {MESSAGES}\n")),
        "{stdout}"
    );
    elapsed
}

/// Messages per second at the median wall time.
fn rate(times: &mut [Duration]) -> f64 {
    times.sort_unstable();
    MESSAGES as f64 / times[times.len() / 2].as_secs_f64()
}
