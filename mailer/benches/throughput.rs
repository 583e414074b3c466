//! Throughput of `SmtpMailer` against Postfix's `smtp-sink`, side by side in one run with the
//! clients a user would otherwise pick: lettre's `AsyncSmtpConnection` as shipped (Nagle on),
//! the same loop with TCP_NODELAY, and Postfix's C client `smtp-source -d` (lock-step, one
//! command per round trip). 1 KB messages, faults off, one sink for every row.
//!
//! `cargo bench -p mailer --bench throughput [-- --messages 5000 --rounds 3 --shipped 200]`
//! (`MAILER_BENCH_RT=current_thread` to run the clients on a single-thread runtime)
//!
//! Needs `/usr/sbin/smtp-sink` and `/usr/sbin/smtp-source` (Debian package `postfix`).
//! lettre as shipped runs at ~23 msg/s (a 40 ms delayed-ACK stall per message), so its row
//! sends `--shipped` messages (default 200) instead of `--messages`.

use std::net::TcpStream as StdTcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use mailer::{Config, Mailer, SmtpMailer};

const SINK: &str = "/usr/sbin/smtp-sink";
const SOURCE: &str = "/usr/sbin/smtp-source";

/// Kills the sink when the benchmark ends, however it ends.
struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn start_sink() -> (Sink, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(SINK);
    if is_root() {
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .args([&format!("127.0.0.1:{port}"), "1024"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {SINK} (apt-get install postfix): {e}"));
    let sink = Sink(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while StdTcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "smtp-sink did not start listening");
        std::thread::sleep(Duration::from_millis(10));
    }
    (sink, port)
}

fn body_1k() -> String {
    let line = "The quick brown fox jumps over the lazy dog, again and again.\n";
    line.repeat(1024 / line.len() + 1)[..1024].to_owned()
}

fn lettre_message() -> (lettre::address::Envelope, Vec<u8>) {
    let m = Message::builder()
        .from("bench@example.com".parse().unwrap())
        .to("rcpt@example.net".parse().unwrap())
        .subject("bench")
        .date_now()
        .message_id(None)
        .header(ContentType::TEXT_PLAIN)
        .body(body_1k())
        .unwrap();
    (m.envelope().clone(), m.formatted())
}

/// Messages per second of `smtp-source -s sessions -d`.
fn smtp_source(port: u16, sessions: usize, n: usize) -> f64 {
    let started = Instant::now();
    let status = Command::new(SOURCE)
        .args(["-s", &sessions.to_string(), "-d", "-m", &n.to_string(), "-l", "1024"])
        .args(["-f", "bench@example.com", "-t", "rcpt@example.net"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {SOURCE}: {e}"));
    assert!(status.success(), "smtp-source failed: {status}");
    n as f64 / started.elapsed().as_secs_f64()
}

fn config(port: u16, pipelining: bool) -> Config {
    Config::new("127.0.0.1", port, "bench@example.com")
        .with_tls(mailer::Tls::None)
        .with_helo_name("bench.test")
        .with_pipelining(pipelining)
}

/// Messages per second of `conns` SmtpMailers sending `n` messages in total.
async fn smtp_mailer(port: u16, conns: usize, n: usize, pipelining: bool) -> f64 {
    let body = Arc::new(body_1k());
    let mailers: Vec<Arc<SmtpMailer>> = (0..conns)
        .map(|_| {
            let log: Arc<dyn logger::Logger> = Arc::new(Quiet);
            Arc::new(SmtpMailer::new(config(port, pipelining), log))
        })
        .collect();
    // Connect first: the rows compare steady-state sending, as smtp-source's -d does after
    // its connect.
    for m in &mailers {
        m.send_mail(&["rcpt@example.net"], "warm-up", &body).await.unwrap();
    }
    let started = Instant::now();
    let tasks: Vec<_> = mailers
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (m, body) = (m.clone(), body.clone());
            let share = n / conns + usize::from(i < n % conns);
            tokio::spawn(async move {
                for _ in 0..share {
                    m.send_mail(&["rcpt@example.net"], "bench", &body).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    for m in &mailers {
        m.close().await;
    }
    rate
}

/// Messages per second of `DryRunMailer`: validating addresses and building the message
/// (lettre builder, Date, Message-ID, dot-stuffing), the CPU floor of every real send.
async fn build_only(n: usize) -> f64 {
    let body = body_1k();
    let log: Arc<dyn logger::Logger> = Arc::new(Quiet);
    let m = mailer::DryRunMailer::new("bench@example.com", log);
    let started = Instant::now();
    for _ in 0..n {
        m.send_mail(&["rcpt@example.net"], "bench", &body).await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Messages per second of a plain lettre `AsyncSmtpConnection` loop, as shipped (lettre opens
/// the socket, Nagle on) or on a socket we opened with TCP_NODELAY.
async fn lettre_loop(port: u16, nodelay: bool, n: usize) -> f64 {
    let (envelope, bytes) = lettre_message();
    let id = ClientId::Domain("bench.test".into());
    let mut conn = if nodelay {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &id).await.unwrap()
    } else {
        AsyncSmtpConnection::connect_tokio1(("127.0.0.1", port), None, &id, None, None)
            .await
            .unwrap()
    };
    conn.send(&envelope, &bytes).await.unwrap(); // warm-up, as for the others
    let started = Instant::now();
    for _ in 0..n {
        conn.send(&envelope, &bytes).await.unwrap();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let _ = conn.quit().await;
    rate
}

/// A logger that wants nothing: the benchmark measures sending, not logging.
struct Quiet;

impl logger::Logger for Quiet {
    fn enabled(&self, _: logger::Level) -> bool {
        false
    }
    fn log(&self, _: &logger::Record<'_>) {}
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
}

fn main() {
    let n = arg("--messages", 5_000);
    let rounds = arg("--rounds", 3).max(1);
    let shipped_n = arg("--shipped", 200);
    // MAILER_BENCH_RT=current_thread runs every client on one thread (fewer cross-thread
    // wake-ups for lock-step clients; no parallelism for the 4-connection rows).
    let rt = if std::env::var("MAILER_BENCH_RT").as_deref() == Ok("current_thread") {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
    };
    let (_sink, port) = start_sink();
    println!(
        "smtp-sink on 127.0.0.1:{port}; {n} messages of 1 KB per row ({shipped_n} for lettre as \
         shipped); median of {rounds} rounds; {} CPUs",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );

    let mut rows: Vec<(&str, usize, Vec<f64>)> = vec![
        ("smtp-source -s 1 -d (C, lock-step)", n, vec![]),
        ("SmtpMailer, 1 connection (PIPELINING)", n, vec![]),
        ("SmtpMailer, 1 connection, lock-step", n, vec![]),
        ("lettre AsyncSmtpConnection as shipped", shipped_n, vec![]),
        ("lettre AsyncSmtpConnection + TCP_NODELAY", n, vec![]),
        ("smtp-source -s 4 -d", n, vec![]),
        ("SmtpMailer, 4 connections (PIPELINING)", n, vec![]),
        ("SmtpMailer, 4 connections, lock-step", n, vec![]),
    ];
    for _ in 0..rounds {
        for (i, (_, count, results)) in rows.iter_mut().enumerate() {
            let rate = match i {
                0 => smtp_source(port, 1, *count),
                1 => rt.block_on(smtp_mailer(port, 1, *count, true)),
                2 => rt.block_on(smtp_mailer(port, 1, *count, false)),
                3 => rt.block_on(lettre_loop(port, false, *count)),
                4 => rt.block_on(lettre_loop(port, true, *count)),
                5 => smtp_source(port, 4, *count),
                6 => rt.block_on(smtp_mailer(port, 4, *count, true)),
                _ => rt.block_on(smtp_mailer(port, 4, *count, false)),
            };
            results.push(rate);
        }
    }
    let med: Vec<f64> = rows.iter().map(|(_, _, r)| median(r.clone())).collect();
    println!("{:<44} {:>8} {:>12}   rounds (msg/s)", "client", "messages", "median msg/s");
    for ((name, count, results), m) in rows.iter().zip(&med) {
        let all: Vec<String> = results.iter().map(|r| format!("{r:.0}")).collect();
        println!("{name:<44} {count:>8} {m:>12.0}   {}", all.join(" "));
    }
    let build: Vec<f64> = (0..rounds).map(|_| rt.block_on(build_only(n))).collect();
    let build = median(build);
    println!(
        "{:<44} {n:>8} {build:>12.0}   ({:.1} us per message, no I/O)",
        "message building only (DryRunMailer)",
        1e6 / build
    );
    println!();
    let ratio = |name: &str, a: usize, b: usize, goal: &str| {
        println!("{name:<52} {:>8.2}x {goal}", med[a] / med[b]);
    };
    ratio("SmtpMailer 1 conn / smtp-source -s 1", 1, 0, "(goal >= 0.9)");
    ratio("SmtpMailer 1 conn lock-step / smtp-source -s 1", 2, 0, "(both lock-step)");
    ratio("SmtpMailer 1 conn / lettre as shipped", 1, 3, "(goal >= 100)");
    ratio("SmtpMailer 1 conn lock-step / lettre + TCP_NODELAY", 2, 4, "(both lock-step)");
    ratio("SmtpMailer 4 conns / smtp-source -s 4", 6, 5, "(goal >= 0.8)");
    ratio("SmtpMailer 4 conns lock-step / smtp-source -s 4", 7, 5, "(both lock-step)");
}
