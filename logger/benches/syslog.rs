//! `Syslog` against what a user would pick instead, side by side in one run:
//! `cargo bench -p logger --bench syslog`.
//!
//! 1. **Caller-side cost** over a unix datagram socket drained by a thread, in both header
//!    formats: a raw `send(2)` of the same bytes our sink sends, our `Syslog` (a format and an
//!    enqueue; its writer thread sends), and the `syslog` crate (a format and a blocking send
//!    in the caller). Calls come in bursts of [`BURST`], which the queue holds; between bursts,
//!    untimed, `flush()` lets the writer catch up (a caller that logs faster than the daemon
//!    reads for long has its lines on stderr instead, which is not what is measured here).
//!    The same event everywhere: "delivered message" and two fields. Then the distribution of
//!    single calls (median, p99, max, each including two clock reads).
//! 2. **Lines/s delivered to a real rsyslog over TCP** (test-support's stock rsyslogd): our
//!    `Syslog` (octet-counted frames, written in batches by its writer; the caller flushes
//!    every [`BURST`] lines so nothing falls back) against the `syslog` crate (one blocking
//!    write per line; its TCP backend frames nothing, so each message ends with `\n`, which
//!    imtcp splits on). The time runs until rsyslog has written the last line to its file.
//!
//! Variants run interleaved, round after round, so they share the machine's noise; figures are
//! medians over rounds, each ratio the median of per-round ratios. `BENCH_ROUNDS`,
//! `BENCH_SCALE` and `BENCH_LINES` (lines per rsyslog round) set the size.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{Read, Seek};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use logger::{Logger, Syslog, SyslogFormat, SyslogTarget};

const SERVER: &str = "127.0.0.1:25";

/// Calls per timed burst: well within the queue (4,096 records).
const BURST: usize = 500;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A unix datagram receiver in a temp dir, drained by a thread until dropped.
struct Drain {
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drain {
    fn start() -> Drain {
        let dir = tempfile::tempdir().unwrap();
        let socket = UnixDatagram::bind(dir.path().join("log.sock")).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 9000];
            while !flag.load(Ordering::Relaxed) {
                let _ = socket.recv(&mut buf);
            }
        });
        Drain { dir, stop, thread: Some(thread) }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("log.sock")
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One contender: `call` is one log call, `settle` runs untimed after each burst.
struct Variant<'a> {
    name: &'static str,
    call: Box<dyn FnMut() + 'a>,
    settle: Box<dyn FnMut() + 'a>,
    samples: Vec<f64>,
}

impl<'a> Variant<'a> {
    fn new(name: &'static str, call: impl FnMut() + 'a) -> Self {
        Variant { name, call: Box::new(call), settle: Box::new(|| {}), samples: Vec::new() }
    }

    fn settled(mut self, settle: impl FnMut() + 'a) -> Self {
        self.settle = Box::new(settle);
        self
    }

    /// ns per call over `bursts` bursts.
    fn measure(&mut self, bursts: usize) -> f64 {
        let mut busy = Duration::ZERO;
        for _ in 0..bursts {
            let start = Instant::now();
            for _ in 0..BURST {
                (self.call)();
            }
            busy += start.elapsed();
            (self.settle)();
        }
        busy.as_nanos() as f64 / (bursts * BURST) as f64
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (a smoke run) runs one short round.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let rounds = if smoke { 1 } else { env_usize("BENCH_ROUNDS", 9) };
    let bursts = if smoke { 2 } else { env_usize("BENCH_SCALE", 100) };
    caller_side(rounds, bursts);
    match test_support::Rsyslog::start_without_tls() {
        Ok(rsyslog) => {
            delivered(&rsyslog, if smoke { 1 } else { 3 }, env_usize("BENCH_LINES", 50_000))
        }
        Err(e) => println!("lines/s into rsyslog: skipped, no rsyslog ({e})"),
    }
}

fn caller_side(rounds: usize, bursts: usize) {
    let drain = Drain::start();
    let pid = std::process::id();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let raw_sock = UnixDatagram::unbound().unwrap();
    raw_sock.connect(drain.path()).unwrap();
    // The bytes our sink sends for the event (the timestamps are as long as real ones).
    let body = format!("delivered message recipients=2 server={SERVER}");
    let raw_5424 = format!("<134>1 2026-11-28T22:12:01.617363Z {host} bench {pid} - - {body}");
    let raw_3164 = format!("<134>Nov 28 22:12:01 bench[{pid}]: {body}");
    let ours = |format| {
        Syslog::new(SyslogTarget::Unix(drain.path()), "bench")
            .with_format(format)
            .connect()
            .expect("our syslog")
    };
    let ours_5424 = ours(SyslogFormat::Rfc5424);
    let ours_3164 = ours(SyslogFormat::Rfc3164);
    let mut crate_5424 = syslog::unix_custom(
        syslog::Formatter5424 {
            facility: syslog::Facility::LOG_LOCAL0,
            hostname: Some(host.clone()),
            process: "bench".into(),
            pid,
        },
        drain.path(),
    )
    .expect("syslog crate");
    let mut crate_3164 = syslog::unix_custom(
        syslog::Formatter3164 {
            facility: syslog::Facility::LOG_LOCAL0,
            hostname: None,
            process: "bench".into(),
            pid,
        },
        drain.path(),
    )
    .expect("syslog crate");
    let event = |log: &Syslog| {
        logger::info!(log, "delivered message"; recipients = black_box(2), server = SERVER);
    };
    let mut variants = vec![
        Variant::new("raw send(2) 5424", || {
            raw_sock.send(black_box(raw_5424.as_bytes())).unwrap();
        }),
        Variant::new("logger Syslog 5424", || event(&ours_5424)).settled(|| ours_5424.flush()),
        Variant::new("syslog crate 5424", || {
            let args =
                format_args!("delivered message recipients={} server={SERVER}", black_box(2));
            let _ = crate_5424.info((1u32, BTreeMap::new(), args));
        }),
        Variant::new("raw send(2) 3164", || {
            raw_sock.send(black_box(raw_3164.as_bytes())).unwrap();
        }),
        Variant::new("logger Syslog 3164", || event(&ours_3164)).settled(|| ours_3164.flush()),
        Variant::new("syslog crate 3164", || {
            let args =
                format_args!("delivered message recipients={} server={SERVER}", black_box(2));
            let _ = crate_3164.info(args);
        }),
    ];
    for v in &mut variants {
        v.measure(bursts / 10 + 1);
    }
    for _ in 0..rounds {
        for v in &mut variants {
            let ns = v.measure(bursts);
            v.samples.push(ns);
        }
    }
    let rounds_of: BTreeMap<&str, Vec<f64>> =
        variants.iter().map(|v| (v.name, v.samples.clone())).collect();
    println!("syslog caller-side cost: {rounds} rounds of {bursts} bursts of {BURST}, medians");
    for v in &mut variants {
        let ns = median(&mut v.samples);
        println!(
            "  {:<22} {ns:>8.1} ns/call   (min {:.1}, max {:.1})",
            v.name,
            v.samples[0],
            v.samples[v.samples.len() - 1]
        );
    }
    let ratio = |a: &str, b: &str| {
        let mut r: Vec<f64> = rounds_of[a].iter().zip(&rounds_of[b]).map(|(x, y)| x / y).collect();
        median(&mut r)
    };
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    for f in ["5424", "3164"] {
        let ours = ratio(&format!("logger Syslog {f}"), &format!("raw send(2) {f}"));
        let theirs = ratio(&format!("syslog crate {f}"), &format!("raw send(2) {f}"));
        println!(
            "  RFC {f}: Syslog / raw send {ours:.2}x (goal <= 1.2x {}), syslog crate / raw send \
             {theirs:.2}x",
            verdict(ours <= 1.2)
        );
    }
    drop(variants);
    // Single calls, in the default format: what one call costs when it is unlucky.
    let mut times = Vec::with_capacity(bursts * BURST);
    for _ in 0..bursts.max(20) {
        for _ in 0..BURST {
            let t = Instant::now();
            event(&ours_3164);
            times.push(t.elapsed());
        }
        ours_3164.flush();
    }
    times.sort();
    let at = |q: usize| times[(times.len() - 1) * q / 100];
    println!(
        "  single calls (RFC 3164, {} calls): median {:?}, p99 {:?}, max {:?}",
        times.len(),
        at(50),
        at(99),
        times[times.len() - 1]
    );
    let stats = ours_3164.stats();
    println!("  fell back: {} (queue full: {})", stats.fell_back, stats.queue_full);
}

/// Lines in `path` from `offset` on; moves `offset` past what it counted.
fn count_lines(file: &mut std::fs::File, offset: &mut u64, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    if file.seek(std::io::SeekFrom::Start(*offset)).is_err() || file.read_to_end(buf).is_err() {
        return 0;
    }
    let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    *offset += complete as u64;
    buf[..complete].iter().filter(|&&b| b == b'\n').count()
}

/// Waits until rsyslog has written `n` more lines to its file: the time since `start`.
fn until_written(
    rsyslog: &test_support::Rsyslog,
    offset: &mut u64,
    n: usize,
    start: Instant,
) -> Option<Duration> {
    let mut file = std::fs::File::open(rsyslog.output_path()).ok()?;
    let mut buf = Vec::new();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < n {
        seen += count_lines(&mut file, offset, &mut buf);
        if Instant::now() > deadline {
            return None;
        }
        if seen < n {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Some(start.elapsed())
}

fn delivered(rsyslog: &test_support::Rsyslog, rounds: usize, lines: usize) {
    let addr = rsyslog.tcp_addr();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let pid = std::process::id();
    let mut offset = std::fs::metadata(rsyslog.output_path()).map_or(0, |m| m.len());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let log = Syslog::new(SyslogTarget::Tcp(addr), "bench").connect().expect("our syslog");
        let start = Instant::now();
        for i in 0..lines {
            logger::info!(log, "delivered message"; n = i, server = SERVER);
            if i % BURST == BURST - 1 {
                log.flush();
            }
        }
        log.flush();
        let Some(t) = until_written(rsyslog, &mut offset, lines, start) else {
            println!("lines/s into rsyslog: ours did not all arrive within 2 minutes");
            return;
        };
        assert_eq!(log.stats().fell_back, 0, "nothing may fall back in this measure");
        ours.push(lines as f64 / t.as_secs_f64());

        let formatter = syslog::Formatter5424 {
            facility: syslog::Facility::LOG_LOCAL0,
            hostname: Some(host.clone()),
            process: "bench".into(),
            pid,
        };
        let mut other = syslog::tcp(formatter, addr).expect("syslog crate over TCP");
        let start = Instant::now();
        for i in 0..lines {
            let args = format_args!("delivered message n={i} server={SERVER}\n");
            other.info((1u32, BTreeMap::new(), args)).expect("the syslog crate's TCP write");
        }
        let Some(t) = until_written(rsyslog, &mut offset, lines, start) else {
            println!(
                "lines/s into rsyslog: the syslog crate's did not all arrive within 2 minutes"
            );
            return;
        };
        theirs.push(lines as f64 / t.as_secs_f64());
    }
    let mut ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a / b).collect();
    let r = median(&mut ratios);
    println!(
        "lines/s delivered to rsyslog over TCP ({rounds} rounds of {lines} lines): logger Syslog \
         {:.0}, syslog crate {:.0}; ratio {r:.2}x (goal >= 1x {})",
        median(&mut ours),
        median(&mut theirs),
        if r >= 1.0 { "ok" } else { "MISSED" }
    );
}
