//! `notify-mailer` stopped, killed and resumed, as an operator (or a service manager, or
//! `timeout(1)`) would do it, against a real server: the journal, the resume file, stopping
//! during a backoff and with messages on the wire, and a server that allows fewer
//! connections than `--parallel`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::bins::{self, Mailing, Running};
use e2e::srv::Http;
use e2e::tally::Tally;
use mail_test_srv::{Options, Stage, TestServer};
use rand::{Rng, SeedableRng};
use test_support::{signal, wait_until};

/// A debug build on a busy 2-core machine.
const LIMIT: Duration = Duration::from_secs(120);

/// The rows of a resume file: its lines that are not `#` comments.
fn rows(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

/// The value of `key=` in the first log line with `event=NAME`, as a number.
fn event_number(out: &str, event: &str, key: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.contains(&format!("event={event} ")))?;
    test_support::field(line, key)?.parse().ok()
}

#[test]
fn sigkill_at_random_moments_then_the_same_command_loses_nothing() {
    const N: usize = 2000;
    const PARALLEL: usize = 4;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(Options::default())).expect("mail-test-srv");
    let http = Http::new(server.http_addr().expect("http api"));
    let mailing = Mailing::new(N, "kill.test").expect("input files");
    let mut args = mailing.args(server.smtp_addr(), "ops@sender.test", "killed and resumed");
    // Paced (at most ~2,000 msg/s over the four connections) so every kill lands mid-run.
    args.extend(["--parallel", "4", "--sleep", "2ms"].map(String::from));
    let program = bins::notify_mailer().expect("notify-mailer binary");

    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut in_flight_at_kills = 0;
    let mut kills = 0;
    let mut runs = Vec::new();
    // Four kills: one early (start-up, validation, the journal's first lines), then three at
    // random counts of deliveries, in order.
    let mut targets: Vec<u64> = (0..3).map(|_| rng.random_range(100..(N as u64 - 100))).collect();
    targets.sort_unstable();
    for round in 0..4 {
        let running = Running::start(&program, &args).expect("start notify-mailer");
        if round == 0 {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        } else {
            let target = targets[round - 1];
            let reached = http.wait(target, Duration::from_secs(25)).expect("GET /wait");
            assert!(
                reached.is_ok(),
                "round {round}: {reached:?} deliveries, {}",
                running.stdout_so_far()
            );
        }
        signal(running.pid(), "KILL").expect("kill -KILL");
        let out = running.wait(LIMIT).expect("killed");
        assert_eq!(out.code(), None, "round {round}: not killed\n{}", out.transcript());
        in_flight_at_kills += event_number(&out.stdout, "resumed", "in_flight_before").unwrap_or(0);
        kills += 1;
        println!("kill {kills}: {} stored so far", http.count().unwrap());
        runs.push(out);
    }
    let last = bins::run(&program, &args, LIMIT).expect("the same command, to the end");
    assert_eq!(last.code(), Some(0), "{}", last.transcript());
    in_flight_at_kills += event_number(&last.stdout, "resumed", "in_flight_before").unwrap_or(0);

    let tally = Tally::from_messages(&http.messages().expect("GET /api/messages"));
    let lost = tally.lost(mailing.addresses());
    let duplicates = tally.duplicate_deliveries();
    println!(
        "{N} recipients, --parallel {PARALLEL}, {kills} SIGKILLs: lost {}, duplicated {duplicates}, \
         in flight at the kills (the journal's count) {in_flight_at_kills}, at most {}",
        lost.len(),
        kills * PARALLEL
    );
    assert!(lost.is_empty(), "lost {lost:?}\n{}", last.transcript());
    assert!(
        duplicates as u64 <= in_flight_at_kills,
        "{duplicates} duplicates, but the journal counted {in_flight_at_kills} in flight"
    );
    assert!(in_flight_at_kills <= (kills * PARALLEL) as u64, "more in flight than senders");
    assert!(tally.unexpected(mailing.addresses()).is_empty());
    // The final run's summary says how many it sent again that were in flight.
    assert!(last.stdout.contains(&format!("  recipients   {N}\n")), "{}", last.stdout);
}

#[test]
fn messages_lost_after_the_dot_are_unconfirmed_and_a_rerun_counts_their_resend() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The server stores every message, then closes or answers 421 instead of its 250.
    let lossy = Options::default().with_close_chance(100.0).with_fault_stage(Stage::AfterDot);
    let lossy = runtime.block_on(TestServer::start(lossy.with_seed(5))).expect("mail-test-srv");
    let mailing = Mailing::new(3, "lost.test").expect("input files");
    let mut args = mailing.args(lossy.smtp_addr(), "ops@sender.test", "unconfirmed");
    args.extend(["--max-attempts", "1", "--retry-base", "5ms"].map(String::from));
    let program = bins::notify_mailer().expect("notify-mailer binary");
    let out = bins::run(&program, &args, LIMIT).expect("notify-mailer");

    assert_eq!(out.code(), Some(1), "{}", out.transcript());
    assert!(
        out.stdout.contains(
            "  failed       3 (3 may have been delivered: a connection was lost after the final dot)\n"
        ),
        "{}",
        out.transcript()
    );
    let failed = out.lines_with("event=failed ");
    assert_eq!(failed.len(), 3, "{}", out.transcript());
    assert!(failed.iter().all(|l| l.contains("possibly_delivered=true")), "{failed:#?}");
    assert!(out.lines_with("event=summary ").iter().all(|l| l.contains(" unconfirmed=3 ")));
    let journal = std::fs::read_to_string(mailing.path("recipients.txt.journal")).unwrap();
    for (i, address) in mailing.recipients.iter().enumerate() {
        assert!(
            journal.contains(&format!("U\t{i}\t{address}\tgave up after 2 attempts; it may")),
            "{journal}"
        );
    }
    let failures = std::fs::read_to_string(mailing.path("recipients.txt.failed.csv")).unwrap();
    let marked = "# may have been delivered already: a connection was lost after the final dot\n";
    assert_eq!(failures.matches(marked).count(), 3, "{failures}");
    assert_eq!(rows(&failures).len(), 1 + 3, "header and three rows: {failures}");

    // The same command against a server that works: all three go again, counted as
    // possible duplicates.
    let healthy = runtime.block_on(TestServer::start(Options::default())).expect("mail-test-srv");
    let server_flag = args.iter().position(|a| a == "--server").unwrap() + 1;
    args[server_flag] = healthy.smtp_addr().to_string();
    let rerun = bins::run(&program, &args, LIMIT).expect("notify-mailer again");
    assert_eq!(rerun.code(), Some(0), "{}", rerun.transcript());
    assert_eq!(event_number(&rerun.stdout, "resumed", "unconfirmed_before"), Some(3));
    assert!(
        rerun.stdout.contains(
            "  resent       3 (unconfirmed when an earlier run ended: possibly delivered twice)\n"
        ),
        "{}",
        rerun.transcript()
    );
    assert!(!mailing.path("recipients.txt.failed.csv").exists(), "the stale failures file is gone");
}

#[test]
fn sigterm_during_a_long_backoff_exits_130_within_two_seconds() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Every MAIL is refused with a 421 or a close: every message backs off.
    let options = Options::default().with_close_chance(100.0).with_seed(3);
    let server = runtime.block_on(TestServer::start(options)).expect("mail-test-srv");
    let mailing = Mailing::new(20, "backoff.test").expect("input files");
    let mut args = mailing.args(server.smtp_addr(), "ops@sender.test", "backoff");
    args.extend(["--retry-base", "60s", "--retry-max", "5m", "--parallel", "2"].map(String::from));
    let program = bins::notify_mailer().expect("notify-mailer binary");
    let running = Running::start(&program, &args).expect("start notify-mailer");
    assert!(
        wait_until(Duration::from_secs(30), || running
            .stdout_so_far()
            .contains("event=backoff attempt=1")),
        "{}",
        running.stdout_so_far()
    );
    let sent_at = Instant::now();
    signal(running.pid(), "TERM").expect("kill -TERM");
    let out = running.wait(LIMIT).expect("notify-mailer exits");
    let took = sent_at.elapsed();
    println!("SIGTERM during a 60 s backoff: exit {:?} after {took:?}", out.code());

    assert_eq!(out.code(), Some(130), "{}", out.transcript());
    assert!(took < Duration::from_secs(2), "took {took:?}\n{}", out.transcript());
    let resume = std::fs::read_to_string(mailing.path("recipients.txt.resume")).expect("resume");
    assert_eq!(rows(&resume).len(), 20, "{resume}");
    assert!(!resume.contains("may have been delivered"), "nothing got past MAIL: {resume}");
}

#[test]
fn timeout_5_lets_the_messages_on_the_wire_finish() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Every reply to the final dot comes 2 s late: at any moment two messages are on the wire.
    let options = Options::default()
        .with_fault_stage(Stage::AfterDot)
        .with_fault_delay(Duration::from_secs(2));
    let server = runtime.block_on(TestServer::start(options)).expect("mail-test-srv");
    let http = Http::new(server.http_addr().expect("http api"));
    let mailing = Mailing::new(20, "timeout.test").expect("input files");
    let mut args = vec!["5".to_owned(), bins::notify_mailer().unwrap().to_string_lossy().into()];
    args.extend(mailing.args(server.smtp_addr(), "ops@sender.test", "timeout"));
    args.extend(["--parallel", "2"].map(String::from));
    let out = bins::run(Path::new("timeout"), &args, LIMIT).expect("timeout ran");

    // timeout(1) sends SIGTERM twice (to the child, then to its group): one request.
    assert_eq!(out.code(), Some(124), "timeout's own status\n{}", out.transcript());
    assert_eq!(out.lines_with("event=interrupted ").len(), 1, "{}", out.transcript());
    assert!(out.lines_with("event=aborted").is_empty(), "{}", out.transcript());
    assert!(out.elapsed < Duration::from_secs(5 + 2 + 3), "{:?}", out.elapsed);
    let stored = http.count().unwrap();
    // Two at ~2 s, two at ~4 s, and the two on the wire at 5 s, finished at ~6 s.
    println!("timeout 5: {stored} stored, exit after {:?}", out.elapsed);
    assert!(stored >= 4, "{stored}\n{}", out.transcript());
    assert!(out.stdout.contains(&format!("  sent         {stored}\n")), "{}", out.transcript());
    assert!(
        out.stdout.contains(&format!("  not sent     {}\n", 20 - stored)),
        "{}",
        out.transcript()
    );
    let journal = std::fs::read_to_string(mailing.path("recipients.txt.journal")).unwrap();
    let mut last: BTreeMap<&str, char> = BTreeMap::new();
    for line in journal.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let mut f = line.split('\t');
        let (mark, index) = (f.next().unwrap(), f.next().unwrap());
        last.insert(index, mark.chars().next().unwrap());
    }
    assert!(last.values().all(|&m| m != 'A'), "an attempt without an outcome: {journal}");
    assert_eq!(last.values().filter(|&&m| m == 'S').count() as u64, stored, "{journal}");
    let resume = std::fs::read_to_string(mailing.path("recipients.txt.resume")).unwrap();
    assert_eq!(rows(&resume).len() as u64, 20 - stored, "{resume}");
}

#[test]
fn a_server_allowing_one_connection_gets_one_and_every_message_goes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(TestServer::start(Options::default().with_max_connections(1)))
        .expect("mail-test-srv");
    let http = Http::new(server.http_addr().expect("http api"));
    let mailing = Mailing::new(200, "one.test").expect("input files");
    let mut args = mailing.args(server.smtp_addr(), "ops@sender.test", "one connection");
    args.extend(["--parallel", "4"].map(String::from));
    let out = bins::run(&bins::notify_mailer().unwrap(), &args, LIMIT).expect("notify-mailer");

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let tally = Tally::from_messages(&http.messages().unwrap());
    assert!(tally.lost(mailing.addresses()).is_empty(), "{}", out.transcript());
    assert_eq!(tally.duplicate_deliveries(), 0);
    assert!(out.stdout.contains("  sent         200\n"), "{}", out.transcript());
}

#[test]
#[ignore = "needs Postfix: run by .ci/run"]
fn postfix_with_a_connection_limit_of_one_gets_every_message_once() {
    const N: usize = 300;
    let postfix = test_support::Postfix::builder()
        .connection_count_limit(1)
        .start()
        .expect("Postfix (apt-get install postfix)");
    let mailing = Mailing::new(N, test_support::postfix::DISCARD_DOMAIN).expect("input files");
    let mut args = mailing.args(postfix.addr(), "ops@sender.test", "one connection");
    args.extend(["--parallel", "4"].map(String::from));
    let out = bins::run(&bins::notify_mailer().unwrap(), &args, LIMIT).expect("notify-mailer");

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let deliveries = postfix.wait_for_sent(Duration::from_secs(60), N);
    let mut per_recipient: BTreeMap<&str, usize> = BTreeMap::new();
    for d in deliveries.iter().filter(|d| d.status == "sent") {
        *per_recipient.entry(d.to.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = per_recipient.iter().filter(|(_, n)| **n > 1).collect();
    let missing: Vec<_> = mailing.addresses().filter(|a| !per_recipient.contains_key(a)).collect();
    println!(
        "Postfix, smtpd_client_connection_count_limit=1, --parallel 4: {} delivered, {} twice, \
         {} missing; {} sessions",
        per_recipient.len(),
        twice.len(),
        missing.len(),
        postfix.sessions().len()
    );
    assert!(missing.is_empty(), "{missing:?}\n{}", out.transcript());
    assert!(twice.is_empty(), "{twice:?}");
    // Every session the client opened ended with QUIT: no idle connection was left to hold
    // the only slot.
    let sessions = postfix.sessions();
    let mailed: Vec<_> = sessions.iter().filter(|s| s.ok("mail") > 0).collect();
    assert!(mailed.iter().all(|s| s.ok("quit") == 1), "{sessions:#?}");
}
