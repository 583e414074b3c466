//! Throughput of `SmtpMailer` side by side in one run with the clients a user would otherwise
//! pick: Postfix's C client `smtp-source -d` (lock-step, one command per round trip), lettre's
//! `AsyncSmtpConnection` as shipped (Nagle on) and the same loop with TCP_NODELAY. 1 KB
//! messages, faults off, against one `smtp-sink` for the sink rows and one real Postfix
//! (stock, delivering to `discard:`) for the Postfix rows; both from `test-support`.
//!
//! `cargo bench -p mailer --bench throughput [-- --messages 5000 --rounds 3 --shipped 200
//! --postfix-messages 2000 --only TEXT]` (`MAILER_BENCH_RT=current_thread` for a single-thread
//! runtime; `--only` runs the rows whose name contains TEXT, or one of `A|B|...`).
//!
//! `-- --callgrind` counts instructions instead (valgrind; stable on a loaded machine): it runs
//! itself under callgrind for the one-connection rows and message building, with `--messages`
//! N and 2N, counting only what runs on the runtime, and prints the difference per message:
//! what one more message costs this process (client side only: smtp-sink is another process).
//!
//! Needs `/usr/sbin/smtp-sink`, `/usr/sbin/smtp-source` and Postfix (Debian package
//! `postfix`), and root for Postfix (its rows are skipped, saying so, without it).
//! lettre as shipped runs at ~23 msg/s (a 40 ms delayed-ACK stall per message), so its row
//! sends `--shipped` messages (default 200) instead of `--messages`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use mailer::{Config, Mailer, SmtpMailer};
use test_support::postfix::{DISCARD_DOMAIN, Postfix};
use test_support::{SmtpSink, callgrind, smtp_source};

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

/// Messages per second of `smtp-source -s sessions -d` sending `n` messages to `rcpt`.
fn smtp_source_rate(addr: SocketAddr, sessions: usize, n: usize, rcpt: &str) -> f64 {
    let (sessions, n) = (sessions.to_string(), n.to_string());
    let args =
        ["-s", &sessions, "-d", "-m", &n, "-l", "1024", "-f", "bench@example.com", "-t", rcpt];
    let done = smtp_source(&args, addr, Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("cannot run smtp-source: {e}"));
    assert!(done.status.success(), "smtp-source failed: {}\n{}", done.status, done.stderr);
    n.parse::<f64>().unwrap() / done.elapsed.as_secs_f64()
}

fn config(addr: SocketAddr, pipelining: bool, connections: usize) -> Config {
    Config::new(addr.ip().to_string(), addr.port(), "bench@example.com")
        .with_tls(mailer::Tls::None)
        .with_helo_name("bench.test")
        .with_pipelining(pipelining)
        .with_max_connections(connections)
}

/// Messages per second of one `SmtpMailer` with a pool of `connections`, sending `n`
/// messages to `rcpt` from twice as many tasks as connections (so a connection never waits
/// while its task builds the next message).
async fn smtp_mailer(
    addr: SocketAddr,
    connections: usize,
    n: usize,
    pipelining: bool,
    rcpt: &str,
) -> f64 {
    let body = Arc::new(body_1k());
    let log: Arc<dyn logger::Logger> = Arc::new(Quiet);
    let m = Arc::new(SmtpMailer::new(config(addr, pipelining, connections), log));
    // Open every connection first: the rows compare steady-state sending, as smtp-source's
    // -d does after its connects.
    let warm: Vec<_> = (0..connections)
        .map(|_| {
            let (m, body, rcpt) = (m.clone(), body.clone(), rcpt.to_owned());
            tokio::spawn(async move { m.send_mail(&[rcpt.as_str()], "warm-up", &body).await })
        })
        .collect();
    for w in warm {
        w.await.unwrap().unwrap();
    }
    let tasks_n = if connections == 1 { 1 } else { connections * 2 };
    let started = Instant::now();
    let tasks: Vec<_> = (0..tasks_n)
        .map(|i| {
            let (m, body, rcpt) = (m.clone(), body.clone(), rcpt.to_owned());
            let share = n / tasks_n + usize::from(i < n % tasks_n);
            tokio::spawn(async move {
                for _ in 0..share {
                    m.send_mail(&[rcpt.as_str()], "bench", &body).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    m.close().await;
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
async fn lettre_loop(addr: SocketAddr, nodelay: bool, n: usize) -> f64 {
    let (envelope, bytes) = lettre_message();
    let id = ClientId::Domain("bench.test".into());
    let mut conn = if nodelay {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &id).await.unwrap()
    } else {
        AsyncSmtpConnection::connect_tokio1(addr, None, &id, None, None).await.unwrap()
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

/// The value after flag `name`, if given.
fn arg_text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn arg(name: &str, default: usize) -> usize {
    arg_text(name)
        .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
}

/// The rows `--callgrind` counts, as `--only` filters.
const COUNTED: [&str; 4] = [
    "message building only",
    "SmtpMailer, 1 connection (PIPELINING)",
    "SmtpMailer, 1 connection, lock-step",
    "lettre AsyncSmtpConnection + TCP_NODELAY",
];

/// Runs this benchmark under callgrind for each row of [`COUNTED`], with `n` and `2n`
/// messages, and prints the instructions the `n` more cost, per message.
fn callgrind(n: usize) {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let count = |row: &str, messages: usize| -> u64 {
        // Only what runs on the runtime: not the peers' start-up, whose polling varies.
        let mut run = callgrind::command(&["--toggle-collect=*Runtime::block_on*"], &exe);
        run.args(["--only", row, "--rounds", "1", "--messages", &messages.to_string()])
            .env("MAILER_BENCH_RT", "current_thread");
        callgrind::instructions(&mut run).expect("callgrind")
    };
    println!(
        "instructions per message (callgrind, {n} vs {} messages, current_thread runtime):",
        2 * n
    );
    for row in COUNTED {
        let (one, two) = (count(row, n), count(row, 2 * n));
        println!("{row:<44} {:>10.0}", two.saturating_sub(one) as f64 / n as f64);
    }
}

fn main() {
    let n = arg("--messages", 5_000);
    if std::env::args().any(|a| a == "--callgrind") {
        return callgrind(arg("--messages", 2_000));
    }
    let rounds = arg("--rounds", 3).max(1);
    let shipped_n = arg("--shipped", 200);
    let postfix_n = arg("--postfix-messages", 2_000);
    let only = arg_text("--only");
    let wanted = |row: &str| only.as_ref().is_none_or(|o| o.split('|').any(|o| row.contains(o)));
    // MAILER_BENCH_RT=current_thread runs every client on one thread (fewer cross-thread
    // wake-ups for lock-step clients; no parallelism for the 4-connection rows).
    let rt = if std::env::var("MAILER_BENCH_RT").as_deref() == Ok("current_thread") {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
    };
    let sink = SmtpSink::start(&[]).unwrap_or_else(|e| panic!("smtp-sink: {e}"));
    let postfix = match wanted("Postfix: ").then(Postfix::start) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            println!("Postfix rows skipped: {e}");
            None
        }
    };
    let s = sink.addr();
    let discard = format!("bench@{DISCARD_DOMAIN}");
    println!(
        "smtp-sink on {s}, Postfix on {:?}; {n} messages of 1 KB per sink row ({shipped_n} for \
         lettre as shipped, {postfix_n} per Postfix row); median of {rounds} rounds; {} CPUs",
        postfix.as_ref().map(Postfix::addr),
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );

    type Row = (&'static str, usize, Vec<f64>);
    let mut rows: Vec<Row> = vec![
        ("smtp-source -s 1 -d (C, lock-step)", n, vec![]),
        ("SmtpMailer, 1 connection (PIPELINING)", n, vec![]),
        ("SmtpMailer, 1 connection, lock-step", n, vec![]),
        ("lettre AsyncSmtpConnection as shipped", shipped_n, vec![]),
        ("lettre AsyncSmtpConnection + TCP_NODELAY", n, vec![]),
        ("smtp-source -s 4 -d", n, vec![]),
        ("SmtpMailer, pool of 4 (PIPELINING)", n, vec![]),
        ("SmtpMailer, pool of 4, lock-step", n, vec![]),
        ("Postfix: smtp-source -s 4 -d", postfix_n, vec![]),
        ("Postfix: SmtpMailer, pool of 4", postfix_n, vec![]),
    ];
    for _ in 0..rounds {
        for (i, (name, count, results)) in rows.iter_mut().enumerate() {
            let count = *count;
            let rate = match (i, &postfix) {
                _ if !wanted(name) => f64::NAN,
                (0, _) => smtp_source_rate(s, 1, count, "rcpt@example.net"),
                (1, _) => rt.block_on(smtp_mailer(s, 1, count, true, "rcpt@example.net")),
                (2, _) => rt.block_on(smtp_mailer(s, 1, count, false, "rcpt@example.net")),
                (3, _) => rt.block_on(lettre_loop(s, false, count)),
                (4, _) => rt.block_on(lettre_loop(s, true, count)),
                (5, _) => smtp_source_rate(s, 4, count, "rcpt@example.net"),
                (6, _) => rt.block_on(smtp_mailer(s, 4, count, true, "rcpt@example.net")),
                (7, _) => rt.block_on(smtp_mailer(s, 4, count, false, "rcpt@example.net")),
                (8, Some(p)) => smtp_source_rate(p.addr(), 4, count, &discard),
                (9, Some(p)) => rt.block_on(smtp_mailer(p.addr(), 4, count, true, &discard)),
                _ => f64::NAN,
            };
            results.push(rate);
        }
    }
    let med: Vec<f64> = rows.iter().map(|(_, _, r)| median(r.clone())).collect();
    println!("{:<44} {:>8} {:>12}   rounds (msg/s)", "client", "messages", "median msg/s");
    for ((name, count, results), m) in rows.iter().zip(&med).filter(|(_, m)| !m.is_nan()) {
        let all: Vec<String> = results.iter().map(|r| format!("{r:.0}")).collect();
        println!("{name:<44} {count:>8} {m:>12.0}   {}", all.join(" "));
    }
    let build = match wanted("message building only") {
        true => median((0..rounds).map(|_| rt.block_on(build_only(n))).collect()),
        false => f64::NAN,
    };
    if !build.is_nan() {
        println!(
            "{:<44} {n:>8} {build:>12.0}   ({:.1} us per message, no I/O)",
            "message building only (DryRunMailer)",
            1e6 / build
        );
    }
    println!();
    // On a shared machine the rate of a whole round can change several times over (the
    // client and the sink on one core or on two): the ratio within each round, where the two
    // rows ran seconds apart, is printed beside the ratio of the medians.
    println!("{:<52} {:>9} {:>10}", "", "medians", "per round");
    let ratio = |name: &str, a: usize, b: usize, goal: &str| {
        if med[a].is_nan() || med[b].is_nan() {
            return;
        }
        let per_round = median(rows[a].2.iter().zip(&rows[b].2).map(|(x, y)| x / y).collect());
        println!("{name:<52} {:>8.2}x {per_round:>9.2}x {goal}", med[a] / med[b]);
    };
    ratio("SmtpMailer 1 conn / smtp-source -s 1", 1, 0, "(goal >= 1.5: pipelining)");
    ratio("SmtpMailer 1 conn lock-step / smtp-source -s 1", 2, 0, "(both lock-step)");
    ratio("SmtpMailer 1 conn / lettre as shipped", 1, 3, "(goal >= 100)");
    ratio("SmtpMailer 1 conn lock-step / lettre + TCP_NODELAY", 2, 4, "(both lock-step)");
    ratio("SmtpMailer pool of 4 / smtp-source -s 4", 6, 5, "(goal >= 1.0)");
    ratio("SmtpMailer pool of 4 lock-step / smtp-source -s 4", 7, 5, "(both lock-step)");
    ratio("Postfix: SmtpMailer pool of 4 / smtp-source -s 4", 9, 8, "(goal >= 0.9)");
}
