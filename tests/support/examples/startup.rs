//! Prints how long each peer takes to start (median of a few starts): the figures in
//! `tests/support/README.md`. `cargo run -p test-support --example startup [-- ROUNDS]`.

use std::time::{Duration, Instant};

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn time<T>(rounds: usize, mut start: impl FnMut() -> T) -> Duration {
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                let peer = start();
                let elapsed = t.elapsed();
                drop(peer);
                elapsed
            })
            .collect(),
    )
}

fn main() {
    let rounds = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(5);
    let sink = time(rounds, || test_support::SmtpSink::start(&[]).expect("smtp-sink"));
    println!("smtp-sink  {sink:>10.1?}");
    let rsyslog = time(rounds, || test_support::Rsyslog::start().expect("rsyslogd"));
    println!("rsyslog    {rsyslog:>10.1?}");
    let plain = time(rounds, || test_support::Rsyslog::start_without_tls().expect("rsyslogd"));
    println!("rsyslog without TLS {plain:>10.1?}");
    let postfix = time(rounds, || test_support::Postfix::start().expect("postfix"));
    println!("postfix    {postfix:>10.1?}");
    let journald = time(rounds, || test_support::Journald::start().expect("journald"));
    println!("journald   {journald:>10.1?}");
}
