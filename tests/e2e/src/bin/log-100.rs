//! A small real process for the "logging survives its daemon" test: it logs numbered lines
//! through `logger::new(config)` to a syslog target at a steady rate, then prints a summary on
//! stdout and exits 0. Lines the daemon could not take go to stderr (the logger's fallback), and
//! so do, marked `logger: log-100 possibly undelivered: `, the last lines sent before the logger
//! found the daemon gone, so the test can account for every line: in the daemon's file or on
//! stderr.
//!
//! ```text
//! log-100 --syslog unix:/tmp/x/log.sock --lines 600 --rate 100 --run-id r1
//! log-100 --syslog tls:127.0.0.1:6514 --tls-ca /tmp/x/ca.pem
//! ```

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag =
        |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let usage = "usage: log-100 --syslog TARGET [--lines N] [--rate PER_SECOND] [--run-id ID] [--tls-ca PEM]";
    let Some(target) = flag("--syslog") else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let target: logger::SyslogTarget = match target.parse() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("log-100: {e}");
            std::process::exit(2);
        }
    };
    let number = |name: &str, default: u64| match flag(name).map(|v| v.parse::<u64>()) {
        None => default,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("log-100: {name} takes a positive number\n{usage}");
            std::process::exit(2);
        }
    };
    let lines = number("--lines", 600);
    let rate = number("--rate", 100);
    let run_id = flag("--run-id").unwrap_or_else(|| "run".to_owned());

    let mut config = logger::Config::new("log-100");
    // stdout carries only the summary; every log line goes to syslog or, failing that, stderr.
    config.stdout_level = None;
    config.syslog = Some(target);
    config.syslog_level = logger::Level::Info;
    config.syslog_tls_ca = flag("--tls-ca").map(Into::into);
    let log = logger::new(config);

    // A fixed schedule (not sleep-after-each) so the rate holds even while the logger is
    // slowed down by reconnect attempts.
    let interval = Duration::from_secs(1) / rate as u32;
    let started = Instant::now();
    let mut late = 0u64;
    for n in 0..lines {
        let due = started + interval * n as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > interval {
            late += 1;
        }
        logger::info!(log, "numbered line"; run = run_id, line = n);
    }
    log.flush();
    println!("log-100 done lines={lines} elapsed_ms={} late={late}", started.elapsed().as_millis());
}
