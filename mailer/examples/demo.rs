//! The main job: send 1,000 messages through a server that drops a third of them on the floor,
//! and prove that none were lost.
//!
//! ```sh
//! cargo run --release --example demo                 # every connect, 421, EOF, backoff shown
//! cargo run --release --example demo -- --quiet      # the summary only
//! cargo run --release --example demo -- --messages 5000 --close-chance 50 --seed 7
//! cargo run --release --example demo -- --serve      # then browse the inbox; Ctrl-C ends it
//! ```
//!
//! It starts a `mail-test-srv` in this process on loopback, with a chance per MAIL command of a
//! fault (half a clean close without a reply, half `421` and a close). It sends through
//! `SmtpMailer`, which logs every event in the short stdout format, then asks the server over
//! its HTTP API (the way a CI job would) how many messages it holds, for whom, and which faults it
//! injected, and prints one summary. It exits 1 if any message was lost. It prints the address of
//! the server's web inbox; with `--serve` the server stays up after the summary, so the 1,000
//! messages and the faults they survived can be browsed there, until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use logger::{Level, Logger};
use mail_test_srv::{Options, TestServer};
use mailer::{Config, Mailer, SmtpMailer, Tls};

/// Send messages through a fault-injecting mail-test-srv and check that none were lost.
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Args {
    /// How many messages to send.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    messages: u32,
    /// Chance in percent that the server faults at MAIL (half 421, half a clean close).
    #[arg(long, value_name = "PCT", default_value_t = 35.0, value_parser = parse_percent)]
    close_chance: f64,
    /// Seed for the server's faults, to replay a run (default: random, printed).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Print only the summary (errors still show).
    #[arg(long)]
    quiet: bool,
    /// Keep the server (and its web inbox) up after the summary, until Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// Where the server's HTTP API and inbox listen (loopback, a free port by default).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    http: std::net::SocketAddr,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..100.0).contains(&p) => Ok(p),
        Ok(_) => {
            Err("the chance must be at least 0 and below 100 (100 would never deliver)".into())
        }
        Err(e) => Err(format!("{s:?} is not a number: {e}")),
    }
}

/// Why these retry settings: the faults here are injected, not a server under real load, so a
/// long backoff would only slow the demo down; the formula (base * 2^(n-1), jittered, capped)
/// is exactly what production runs with its 1 s default. With a 35 % fault chance a message
/// needs k+1 tries with probability 0.35^k; 25 attempts make a give-up (0.35^25, about 4e-12
/// per message) practically impossible, and the 50 ms cap bounds the rare long streak.
const RETRY_BASE: Duration = Duration::from_millis(2);
const RETRY_MAX: Duration = Duration::from_millis(50);
const MAX_ATTEMPTS: u32 = 25;

/// The server's own account, read from `GET /stats`.
#[derive(Debug, serde::Deserialize)]
struct ServerStats {
    connections: u64,
    faults_close: u64,
    faults_421: u64,
}

/// One stored message of `GET /api/messages`: only its recipients matter here.
#[derive(Debug, serde::Deserialize)]
struct Stored {
    to: Vec<String>,
}

/// The address of message `i`.
fn recipient(i: u32) -> String {
    format!("user{i}@example.test")
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let options = Options::default()
        .with_close_chance(args.close_chance)
        .with_seed(seed)
        .with_http_addr(Some(args.http));
    let server = TestServer::start(options).await?;
    let http = server.http_addr().ok_or("the test server has no HTTP API")?;
    let smtp = server.smtp_addr();
    println!("demo: the server's web inbox is at http://{http}/");

    // --quiet keeps errors: a message that fails for good must never pass silently.
    let level = if args.quiet { Level::Err } else { Level::Info };
    let log: Arc<dyn Logger> = Arc::new(logger::Stdout::new("demo", level));
    logger::info!(log, "demo: sending {} messages to mail-test-srv at {smtp} (close chance {}%, seed {seed})",
        args.messages, args.close_chance; event = "start", http = http);

    // The in-process server speaks plain text on loopback: say so (STARTTLS is the default).
    let config = Config::new(smtp.ip().to_string(), smtp.port(), "demo@example.test")
        .with_tls(Tls::None)
        .with_retry_base(RETRY_BASE)
        .with_retry_max(RETRY_MAX)
        .with_max_attempts(MAX_ATTEMPTS);
    let mailer = SmtpMailer::new(config, log.clone());

    let started = Instant::now();
    let mut sent = 0u64;
    let mut failed = 0u64;
    for i in 1..=args.messages {
        let to = recipient(i);
        let body = format!("Message {i} of {}.\n", args.messages);
        match mailer.send_mail(&[to.as_str()], &format!("demo message {i}"), &body).await {
            Ok(_) => sent += 1,
            Err(e) => {
                failed += 1;
                logger::err!(log, "message {i} failed: {e}"; event = "failed", n = i);
            }
        }
    }
    mailer.close().await;
    let elapsed = started.elapsed();
    let stats = mailer.stats();

    let (received, stored, server_stats) = ask_server(http).await?;
    // Lost is counted per recipient, not as sent minus received: a duplicate must not hide a
    // loss.
    let delivered: std::collections::HashSet<&str> =
        stored.iter().flat_map(|m| m.to.iter().map(String::as_str)).collect();
    let lost = (1..=args.messages).filter(|&i| !delivered.contains(recipient(i).as_str())).count();
    let duplicates = received.saturating_sub(delivered.len() as u64);
    let per_sec = f64::from(args.messages) / elapsed.as_secs_f64().max(1e-9);

    println!("demo summary (seed {seed}, close chance {}%)", args.close_chance);
    println!("  sent         {sent} of {} (failed: {failed})", args.messages);
    println!("  received     {received} (the server's GET /count)");
    println!("  lost         {lost}");
    if duplicates > 0 {
        println!("  duplicates   {duplicates} (delivered twice after a fault)");
    }
    println!(
        "  faults       {} survived: {} x 421, {} x clean close (the server's GET /stats)",
        server_stats.faults_421 + server_stats.faults_close,
        server_stats.faults_421,
        server_stats.faults_close
    );
    println!(
        "  reconnects   {} over {} connections (mailer: 421 {}, eof {}, reset {}, timeout {})",
        stats.reconnects,
        server_stats.connections,
        stats.smtp_421,
        stats.eof,
        stats.reset,
        stats.timeout
    );
    println!(
        "  elapsed      {:.2}s ({per_sec:.0} msg/s, retry_base {RETRY_BASE:?})",
        elapsed.as_secs_f64()
    );
    println!("  inbox        http://{http}/ (every message, search, the fault counters)");
    println!(
        "result: sent={sent} received={received} lost={lost} faults_421={} faults_close={} reconnects={} elapsed_ms={}",
        server_stats.faults_421,
        server_stats.faults_close,
        stats.reconnects,
        elapsed.as_millis()
    );
    let code = if lost > 0 || failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS };
    if args.serve {
        println!("serving the inbox at http://{http}/ until Ctrl-C");
        tokio::signal::ctrl_c().await?;
        server.shutdown().await;
    }
    Ok(code)
}

/// `GET /count`, `GET /api/messages` and `GET /stats`, on a blocking thread (ureq is a
/// blocking client).
async fn ask_server(
    http: SocketAddr,
) -> Result<(u64, Vec<Stored>, ServerStats), Box<dyn std::error::Error>> {
    let answer = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
        let count = agent
            .get(&format!("http://{http}/count"))
            .call()
            .map_err(|e| format!("GET /count: {e}"))?
            .into_string()
            .map_err(|e| format!("GET /count: {e}"))?;
        let count: u64 = count.trim().parse().map_err(|e| format!("GET /count: {count:?}: {e}"))?;
        let stored: Vec<Stored> = agent
            .get(&format!("http://{http}/api/messages"))
            .call()
            .map_err(|e| format!("GET /api/messages: {e}"))?
            .into_json()
            .map_err(|e| format!("GET /api/messages: {e}"))?;
        let stats: ServerStats = agent
            .get(&format!("http://{http}/stats"))
            .call()
            .map_err(|e| format!("GET /stats: {e}"))?
            .into_json()
            .map_err(|e| format!("GET /stats: {e}"))?;
        Ok((count, stored, stats))
    })
    .await??;
    Ok(answer)
}
