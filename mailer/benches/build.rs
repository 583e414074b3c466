//! Message building with LF line endings: the mailer (line endings normalised once, before
//! lettre sees the body) against lettre's builder as shipped (one `String::insert` per LF:
//! quadratic), side by side, in release.
//!
//! `cargo bench -p mailer --bench build [-- --mb 100]`
//!
//! The bar: a 100 MB LF body is built in under 2 s. The lettre rows stop at 8 MB
//! (FACTS.md: 8 MB took 6.3 s; 100 MB did not finish in 10 minutes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::message::header::ContentType;
use mailer::{DryRunMailer, Mailer};

fn body(mb: usize) -> String {
    let line = "The quick brown fox jumps over the lazy dog, again and again and again.\n";
    line.repeat(mb * 1024 * 1024 / line.len() + 1)
}

/// A logger that wants nothing.
struct Quiet;

impl logger::Logger for Quiet {
    fn enabled(&self, _: logger::Level) -> bool {
        false
    }
    fn log(&self, _: &logger::Record<'_>) {}
}

fn mailer_build(rt: &tokio::runtime::Runtime, text: &str) -> Duration {
    let log: Arc<dyn logger::Logger> = Arc::new(Quiet);
    let m = DryRunMailer::new("bench@example.com", log);
    let started = Instant::now();
    rt.block_on(m.send_mail(&["rcpt@example.net"], "big", text)).unwrap();
    started.elapsed()
}

fn lettre_build(text: &str) -> Duration {
    let started = Instant::now();
    let m = Message::builder()
        .from("bench@example.com".parse().unwrap())
        .to("rcpt@example.net".parse().unwrap())
        .subject("big")
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_owned())
        .unwrap();
    let _ = std::hint::black_box(m.formatted());
    started.elapsed()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let big = args
        .iter()
        .position(|a| a == "--mb")
        .and_then(|i| args.get(i + 1))
        .map_or(100, |v| v.parse().expect("--mb takes a number"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    println!("{:<34} {:>8} {:>10} {:>12}", "builder", "MB", "seconds", "s per MB");
    let row = |name: &str, mb: usize, d: Duration| {
        let s = d.as_secs_f64();
        println!("{name:<34} {mb:>8} {s:>10.3} {:>12.4}", s / mb as f64);
    };
    let mut ours = Vec::new();
    for mb in [1, 10, big] {
        let text = body(mb);
        let d = mailer_build(&rt, &text);
        row("mailer (DryRunMailer, whole send)", mb, d);
        ours.push((mb, d));
    }
    let mut theirs = Vec::new();
    for mb in [1, 2, 4, 8] {
        let d = lettre_build(&body(mb));
        row("lettre builder as shipped", mb, d);
        theirs.push((mb, d));
    }
    let (_, our8) = (8, mailer_build(&rt, &body(8)));
    let their8 = theirs.last().map(|(_, d)| *d).unwrap();
    println!();
    println!(
        "8 MB: lettre as shipped / mailer = {:.0}x",
        their8.as_secs_f64() / our8.as_secs_f64()
    );
    let (mb, d) = ours.last().copied().unwrap();
    let verdict = if d < Duration::from_secs(2) { "under" } else { "OVER" };
    println!("{mb} MB LF body built in {:.2} s: {verdict} the 2 s bar", d.as_secs_f64());
}
