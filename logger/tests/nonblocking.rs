//! No log call waits on a syslog daemon: tokio tasks log to a daemon that accepts and never
//! reads, to one that is gone (refused), and to one behind a black hole (connects hang). A
//! blocking sink would hold each call for the whole timeout (2 s here); these return in
//! microseconds. Nothing is lost: every line is in the daemon's sockets or on the fallback,
//! and the counters say how many fell back.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logger::{Logger, Syslog, SyslogTarget};
use test_support::Captured;

const TIMEOUT: Duration = Duration::from_secs(2);
const TASKS: usize = 4;

/// Logs `per_task` numbered lines from each of [`TASKS`] tokio tasks, timing every call.
async fn log_from_tasks(log: &Arc<Syslog>, per_task: usize, padding: usize) -> Vec<Duration> {
    let pad = Arc::new("p".repeat(padding));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (log, pad) = (Arc::clone(log), Arc::clone(&pad));
            tokio::spawn(async move {
                let mut times = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let start = Instant::now();
                    logger::info!(log, "line"; n = t * per_task + i, pad = pad);
                    times.push(start.elapsed());
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                times
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    all
}

/// Checks the call times: none near the timeout, and (allowing for a loaded machine that
/// deschedules a thread now and then) 99 % under 10 ms. Returns (p99, max) for the report.
fn assert_never_waited(times: &[Duration]) -> (Duration, Duration) {
    let p99 = times[times.len() * 99 / 100];
    let max = times[times.len() - 1];
    println!(
        "{} calls: median {:?}, p99 {p99:?}, max {max:?}",
        times.len(),
        times[times.len() / 2]
    );
    assert!(p99 < Duration::from_millis(10), "p99 {p99:?}");
    assert!(max < TIMEOUT / 4, "a call waited {max:?}, as a blocking sink would");
    (p99, max)
}

/// The line numbers on the fallback, not counting replayed copies (duplicates by design).
fn fallback_numbers(text: &str) -> Vec<usize> {
    text.lines()
        .filter(|l| !l.starts_with("logger:"))
        .filter_map(|l| l.split(" n=").nth(1)?.split(' ').next()?.parse().ok())
        .collect()
}

/// A daemon that accepts every connection and never reads from it; at the end, what reached
/// its sockets can be read back.
struct Deaf {
    addr: SocketAddr,
    held: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Deaf {
    fn start() -> Deaf {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (held, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let thread = {
            let (held, stop) = (Arc::clone(&held), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => held.lock().unwrap().push(s),
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Deaf { addr, held, stop, thread: Some(thread) }
    }

    /// Stops accepting and reads every connection to its end: the numbers of the complete
    /// frames (a frame cut by a timeout is not complete, and is sent again elsewhere).
    fn received(mut self) -> Vec<usize> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let mut numbers = Vec::new();
        for mut s in self.held.lock().unwrap().drain(..) {
            s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            let mut rest = &bytes[..];
            while let Some(sp) = rest.iter().position(|&b| b == b' ') {
                let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
                let Some(frame) = rest.get(sp + 1..sp + 1 + len) else { break };
                let frame = std::str::from_utf8(frame).unwrap();
                numbers.push(
                    frame.split(" n=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap(),
                );
                rest = &rest[sp + 1 + len..];
            }
        }
        numbers
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_accepts_and_never_reads_holds_up_no_call_and_loses_nothing() {
    let deaf = Deaf::start();
    let fallback = Captured::default();
    let log = Arc::new(
        Syslog::new(SyslogTarget::Tcp(deaf.addr), "p")
            .with_timeout(TIMEOUT)
            .with_retry_interval(Duration::from_millis(50))
            .with_fallback(fallback.clone()),
    );
    // 4,000 lines of 4 KiB: 16 MB, more than the socket buffers of a connection that is never
    // read take (loopback lets them grow to several megabytes).
    let per_task = 1000;
    let times = log_from_tasks(&log, per_task, 4096).await;
    assert_never_waited(&times);
    let flushed = tokio::task::spawn_blocking({
        let log = Arc::clone(&log);
        move || log.flush()
    });
    flushed.await.unwrap();
    let stats = log.stats();
    let received = deaf.received();
    let on_fallback = fallback_numbers(&fallback.text());
    println!(
        "{stats:?}; {} in the daemon's sockets, {} on stderr",
        received.len(),
        on_fallback.len()
    );
    let all: BTreeSet<usize> = received.iter().chain(&on_fallback).copied().collect();
    let lost: Vec<usize> = (0..TASKS * per_task).filter(|n| !all.contains(n)).collect();
    assert!(lost.is_empty(), "lost {} lines: {lost:?}", lost.len());
    assert_eq!(stats.fell_back, on_fallback.len() as u64, "the counter counts the fallback");
    assert!(stats.fell_back > 0, "a deaf daemon cannot have taken 16 MB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_is_gone_holds_up_no_call_and_every_line_falls_back() {
    // Refused: nothing listens on the port.
    let port = test_support::free_port();
    let fallback = Captured::default();
    let log = Arc::new(
        Syslog::new(SyslogTarget::Tcp(([127, 0, 0, 1], port).into()), "p")
            .with_timeout(TIMEOUT)
            .with_fallback(fallback.clone()),
    );
    let times = log_from_tasks(&log, 500, 0).await;
    assert_never_waited(&times);
    log.flush();
    assert_eq!(fallback_numbers(&fallback.text()).len(), TASKS * 500);
    assert_eq!(log.stats().fell_back, (TASKS * 500) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_behind_a_black_hole_holds_up_no_call() {
    // A listener whose accept queue is full drops new SYNs: a connect hangs for the timeout,
    // on the writer thread only.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    while held.len() < 1000 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    let fallback = Captured::default();
    let log = Arc::new(
        Syslog::new(SyslogTarget::Tcp(addr), "p")
            .with_timeout(TIMEOUT)
            .with_fallback(fallback.clone()),
    );
    let started = Instant::now();
    let times = log_from_tasks(&log, 500, 0).await;
    assert!(started.elapsed() < TIMEOUT, "the calls waited for the connect");
    assert_never_waited(&times);
    let flushed = tokio::task::spawn_blocking({
        let log = Arc::clone(&log);
        move || log.flush()
    });
    flushed.await.unwrap();
    assert_eq!(fallback_numbers(&fallback.text()).len(), TASKS * 500, "{:?}", log.stats());
    assert_eq!(log.stats().fell_back, (TASKS * 500) as u64);
    drop(listener);
}
