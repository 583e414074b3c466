//! Cost per event of the logger's backends against what a user would pick instead, side by
//! side in one process and one run: `cargo bench -p logger`.
//!
//! One event everywhere: the literal message "delivered message" and two fields,
//! `recipients=2 server=127.0.0.1:25` (the number through `black_box`, so nothing is formatted
//! at compile time).
//!
//! - to /dev/null: a raw `write(2)` of a preformatted line, our `Stdout`, and
//!   `tracing-subscriber` fmt (compact, ANSI off);
//! - (`Syslog` against a raw `send(2)` and the `syslog` crate, and lines/s into a real rsyslog,
//!   are in `benches/syslog.rs`: its caller side is an enqueue, measured in bursts the queue
//!   holds);
//! - our `Mock`, and a call at a disabled level;
//! - JSON lines to /dev/null: our `Stdout` in JSON against `tracing-subscriber`'s json layer;
//! - the tracing bridge (`TracingLayer` into a logger that only looks at the record), for an
//!   event outside any span and inside two spans with a field each; and our `Stdout` with
//!   Boulder's line checksum on.
//!
//! Timings are noisy on a busy machine; instruction counts are not: `bash
//! logger/benches/instructions.sh` counts each variant under callgrind (`BENCH_ONLY=substring`
//! keeps only the matching variants).
//!
//! Variants run interleaved, round after round, so they share the machine's noise; the figures
//! are medians over the rounds, and each ratio is the median of the per-round ratios. Set `BENCH_ROUNDS` / `BENCH_SCALE` to run longer or shorter.

use std::collections::BTreeMap;
use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use logger::{Level, Logger, Mock, Stdout, StdoutFormat};
use tracing_subscriber::layer::SubscriberExt;

const SERVER: &str = "127.0.0.1:25";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `f` `n` times and returns ns per call.
fn time(n: usize, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Variant<'a> {
    name: &'static str,
    per_round: usize,
    /// Events per call of `run` (calls in a batch, so the harness's own indirect call per run,
    /// or a dispatcher switch, is not counted).
    batch: usize,
    run: Box<dyn FnMut() + 'a>,
    /// Run after each round, untimed (the Mock forgets its lines there).
    reset: Box<dyn FnMut() + 'a>,
    samples: Vec<f64>,
}

impl<'a> Variant<'a> {
    fn new(name: &'static str, per_round: usize, run: impl FnMut() + 'a) -> Self {
        Variant {
            name,
            per_round,
            batch: 1,
            run: Box::new(run),
            reset: Box::new(|| {}),
            samples: vec![],
        }
    }

    /// A variant whose `run` makes `batch` calls.
    fn batched(name: &'static str, per_round: usize, batch: usize, run: impl FnMut() + 'a) -> Self {
        Variant { batch, ..Variant::new(name, per_round / batch, run) }
    }
}

/// A logger that takes every record and only looks at it: what the tracing bridge costs.
struct Null;

impl Logger for Null {
    fn log(&self, record: &logger::Record<'_>) {
        black_box(record.fields().len());
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special, and a
    // quick smoke run is what a test wants.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let rounds = if smoke { 1 } else { env_usize("BENCH_ROUNDS", 9) };
    let scale = if smoke { 1 } else { env_usize("BENCH_SCALE", 100) };

    let devnull = || File::options().write(true).open("/dev/null").unwrap();

    // 1. To /dev/null.
    let mut raw_file = devnull();
    let raw_line =
        format!("00:24:37.123456 6 bench delivered message recipients=2 server={SERVER}\n");
    let stdout: Arc<dyn Logger> = Arc::new(Stdout::with_writer(devnull(), "bench", Level::Info));
    let fmt_subscriber = tracing_subscriber::fmt()
        .compact()
        .with_ansi(false)
        .with_writer(Arc::new(devnull()))
        .finish();
    // This thread's default for the whole run (not a global): only the tracing variant emits
    // tracing events, and none pays for switching dispatchers per event.
    let _fmt_guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(fmt_subscriber));

    // 2. Mock and disabled.
    let mock = Mock::new();
    let mock_dyn: Arc<dyn Logger> = Arc::new(mock.clone());
    let disabled: Arc<dyn Logger> = Arc::new(Stdout::with_writer(devnull(), "bench", Level::Info));

    // 3. JSON lines, the bridge, the checksum.
    let json: Arc<dyn Logger> = Arc::new(
        Stdout::with_writer(devnull(), "bench", Level::Info).with_format(StdoutFormat::Json),
    );
    let fmt_json = tracing::Dispatch::new(
        tracing_subscriber::fmt().json().with_writer(Arc::new(devnull())).finish(),
    );
    let bridge = tracing::Dispatch::new(
        tracing_subscriber::registry().with(logger::TracingLayer::new(Arc::new(Null))),
    );
    let checksummed: Arc<dyn Logger> =
        Arc::new(Stdout::with_writer(devnull(), "bench", Level::Info).with_checksum(true));

    let n = 1_000 * scale;
    let mut variants = vec![
        Variant::new("raw write(2) /dev/null", n, || {
            raw_file.write_all(black_box(raw_line.as_bytes())).unwrap();
        }),
        Variant::new("logger Stdout /dev/null", n, || {
            logger::info!(stdout, "delivered message"; recipients = black_box(2), server = SERVER);
        }),
        Variant::new("tracing fmt compact /dev/null", n, || {
            tracing::info!(recipients = black_box(2), server = SERVER, "delivered message");
        }),
        {
            let mut v = Variant::new("logger Mock", n, || {
                logger::info!(mock_dyn, "delivered message"; recipients = black_box(2), server = SERVER);
            });
            let m = mock.clone();
            v.reset = Box::new(move || m.clear());
            v
        },
        Variant::batched("disabled level (debug! at Info)", n * 100, 100, || {
            for _ in 0..100 {
                let log = black_box(&disabled);
                logger::debug!(log, "delivered message"; recipients = 2, server = SERVER);
            }
        }),
        Variant::new("logger Stdout JSON /dev/null", n, || {
            logger::info!(json, "delivered message"; recipients = black_box(2), server = SERVER);
        }),
        Variant::batched("tracing fmt json /dev/null", n, 100, || {
            tracing::dispatcher::with_default(&fmt_json, || {
                for _ in 0..100 {
                    tracing::info!(recipients = black_box(2), server = SERVER, "delivered message");
                }
            })
        }),
        Variant::batched("bridge, no span", n, 100, || {
            tracing::dispatcher::with_default(&bridge, || {
                for _ in 0..100 {
                    tracing::info!(recipients = black_box(2), server = SERVER, "delivered message");
                }
            })
        }),
        Variant::batched("bridge, 2 spans", n, 100, || {
            tracing::dispatcher::with_default(&bridge, || {
                let outer = tracing::info_span!("request", request_id = 7).entered();
                let inner = tracing::info_span!("send", peer = SERVER).entered();
                for _ in 0..100 {
                    tracing::info!(recipients = black_box(2), server = SERVER, "delivered message");
                }
                drop((inner, outer));
            })
        }),
        Variant::new("logger Stdout checksum /dev/null", n, || {
            logger::info!(checksummed, "delivered message"; recipients = black_box(2), server = SERVER);
        }),
    ];

    // BENCH_ONLY=substring keeps matching variants only (for valgrind --tool=callgrind).
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        variants.retain(|v| v.name.contains(&only));
    }
    // Warm up (buffers grow, sockets connect, pages fault in), then measure.
    for v in &mut variants {
        time(v.per_round / 10 + 1, &mut v.run);
        (v.reset)();
    }
    for _ in 0..rounds {
        for v in &mut variants {
            let ns = time(v.per_round, &mut v.run);
            v.samples.push(ns);
            (v.reset)();
        }
    }

    for v in &mut variants {
        let batch = v.batch as f64;
        v.samples.iter_mut().for_each(|ns| *ns /= batch);
    }
    // Samples in round order, for per-round ratios: both sides of a ratio ran back to back in
    // the same round, so a burst of load from elsewhere hits both.
    let rounds_of: BTreeMap<&str, Vec<f64>> =
        variants.iter().map(|v| (v.name, v.samples.clone())).collect();
    let med: BTreeMap<&str, f64> =
        variants.iter_mut().map(|v| (v.name, median(&mut v.samples))).collect();
    if med.len() < 10 {
        // A partial run (BENCH_ONLY), as instructions.sh makes one: timings, and how many
        // events ran in all (warm-up included), to divide an instruction count by.
        for v in &variants {
            let calls = v.per_round / 10 + 1 + v.per_round * rounds;
            println!("{}: {:.1} ns/event, events {}", v.name, med[v.name], calls * v.batch);
        }
        return;
    }
    println!("logger benchmark: {rounds} rounds, medians in ns/event (same event everywhere)");
    for v in &variants {
        let mut s = v.samples.clone();
        s.sort_by(f64::total_cmp);
        println!(
            "  {:<34} {:>9.1} ns   (min {:.1}, max {:.1})",
            v.name,
            med[v.name],
            s[0],
            s[s.len() - 1]
        );
    }
    // The median over rounds of the per-round ratio.
    let ratio = |a: &str, b: &str| {
        let mut r: Vec<f64> = rounds_of[a].iter().zip(&rounds_of[b]).map(|(x, y)| x / y).collect();
        median(&mut r)
    };
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let r1 = ratio("logger Stdout /dev/null", "raw write(2) /dev/null");
    let r2 = ratio("tracing fmt compact /dev/null", "logger Stdout /dev/null");
    let mock_ns = med["logger Mock"];
    let off_ns = med["disabled level (debug! at Info)"];
    println!("ratios (median of per-round ratios) and goals:");
    println!("  Stdout / raw write        {r1:>6.2}x   goal <= 1.5x   {}", verdict(r1 <= 1.5));
    println!("  tracing fmt / Stdout      {r2:>6.2}x   goal >= 2.5x   {}", verdict(r2 >= 2.5));
    println!(
        "  Mock                      {mock_ns:>6.1} ns  goal <= 100 ns {}",
        verdict(mock_ns <= 100.0)
    );
    println!(
        "  disabled                  {off_ns:>6.2} ns  goal <= 2 ns   {}",
        verdict(off_ns <= 2.0)
    );
    let r5 = ratio("tracing fmt json /dev/null", "logger Stdout JSON /dev/null");
    let r6 = ratio("bridge, 2 spans", "bridge, no span");
    let r7 = ratio("logger Stdout checksum /dev/null", "logger Stdout /dev/null");
    println!("  tracing json / Stdout JSON {r5:>5.2}x   goal >= 2x     {}", verdict(r5 >= 2.0));
    println!("  bridge 2 spans / no span  {r6:>6.2}x   (span context's cost)");
    println!("  Stdout checksum / Stdout  {r7:>6.2}x   (the checksum's cost)");
}
