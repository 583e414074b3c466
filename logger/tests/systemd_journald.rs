//! `Journald` against the real systemd-journald (test-support's: stock limits, a private
//! mount namespace, entries read back with journalctl): large records arrive whole through a
//! memfd, priorities are exactly 3/4/6/7, and a journald killed and restarted while a process
//! logs at 100 lines/s costs no line: each is in the journal or on stderr. Needs root; run by
//! `.ci/run` with `--ignored`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use logger::{Journald, Level, Logger};
use test_support::Captured;
use test_support::journald::Entry;

const WAIT: Duration = Duration::from_secs(20);

fn start() -> test_support::Journald {
    test_support::Journald::start().expect("start systemd-journald (as root)")
}

fn ours(e: &Entry, tag: &str) -> bool {
    e.identifier().as_deref() == Some("probe") && e.get("RUN").as_deref() == Some(tag)
}

#[test]
#[ignore = "needs systemd-journald and root: run by .ci/run"]
fn five_100_kb_fields_arrive_whole_and_priorities_are_exact() {
    let journald = start();
    let fallback = Captured::default();
    let log = Journald::new("probe")
        .with_socket_path(journald.socket_path())
        .with_fallback(fallback.clone());
    let values: Vec<String> = (0..5).map(|i| format!("{i}\n").repeat(50_000)).collect();
    logger::info!(log, "five big fields"; run = "big", a = values[0], b = values[1], c = values[2],
        d = values[3], e = values[4]);
    // A 1 MB message with control characters and a line break in it.
    let huge = "é\u{1b}x\n".repeat(200_000);
    logger::info!(log, "{}", huge; run = "huge");
    for level in Level::ALL {
        logger::log!(log, level, false, "priority"; run = "prio");
    }
    logger::audit_err!(log, "audited"; run = "audit");
    log.flush();
    let big = journald.wait_for(WAIT, |e| ours(e, "big")).expect("the big record arrived");
    for (key, value) in ["A", "B", "C", "D", "E"].iter().zip(&values) {
        assert_eq!(big.bytes(key), Some(value.as_bytes()), "{key} arrived whole");
    }
    assert_eq!(big.message().as_deref(), Some("five big fields"));
    let huge_entry = journald.wait_for(WAIT, |e| ours(e, "huge")).expect("the 1 MB record arrived");
    assert_eq!(huge_entry.bytes("MESSAGE"), Some(huge.as_bytes()));
    let prio = journald.wait_for_count(WAIT, 4, |e| ours(e, "prio"));
    let got: Vec<u8> = prio.iter().filter_map(Entry::priority).collect();
    assert_eq!(got, [3, 4, 6, 7]);
    let audit = journald.wait_for(WAIT, |e| ours(e, "audit")).expect("arrived");
    assert_eq!((audit.priority(), audit.get("AUDIT").as_deref()), (Some(3), Some("1")));
    assert_eq!(audit.message().as_deref(), Some("[AUDIT] audited"));
    assert_eq!(fallback.text(), "");
    assert_eq!(log.stats().sent, 7);
}

#[test]
#[ignore = "needs systemd-journald and root: run by .ci/run"]
fn three_thousand_fields_make_one_entry() {
    let journald = start();
    let log = Journald::new("probe").with_socket_path(journald.socket_path());
    let keys: Vec<String> = (0..3000).map(|i| format!("k{i}")).collect();
    let mut fields: Vec<logger::Field<'_>> = vec![logger::Field::new("run", &"many")];
    fields.extend(keys.iter().map(|k| logger::Field::new(k, k)));
    log.log(&logger::Record::new(Level::Info, format_args!("many fields")).with_fields(&fields));
    log.flush();
    let e = journald.wait_for(WAIT, |e| ours(e, "many")).expect("journald kept the entry");
    // `run` and k0 to k993 as fields of their own, with the five the sink sets: 1,000.
    assert_eq!(e.get("K993").as_deref(), Some("k993"));
    assert_eq!(e.get("K994"), None);
    let extra = e.get("EXTRA_FIELDS").expect("the rest, folded");
    assert!(extra.starts_with("k994=k994 ") && extra.ends_with(" k2999=k2999"), "{extra}");
}

/// The line numbers of run `tag` in `text` (stderr), not counting replayed copies.
fn numbers_on_stderr(text: &str, tag: &str) -> (Vec<u64>, Vec<u64>) {
    let (mut fell_back, mut replayed) = (Vec::new(), Vec::new());
    let key = format!("RUN={tag} N=");
    for line in text.lines() {
        let Some(n) = line.split(&key).nth(1).and_then(|r| r.split(' ').next()) else { continue };
        let Ok(n) = n.parse() else { continue };
        if line.starts_with("logger: probe possibly undelivered: ") {
            replayed.push(n);
        } else {
            fell_back.push(n);
        }
    }
    (fell_back, replayed)
}

#[test]
#[ignore = "needs systemd-journald and root: run by .ci/run"]
fn a_journald_killed_and_restarted_while_logging_costs_no_line() {
    let mut journald = start();
    let fallback = Captured::default();
    let log = Journald::new("probe")
        .with_socket_path(journald.socket_path())
        .with_retry_interval(Duration::from_millis(20))
        .with_fallback(fallback.clone());
    const LINES: u64 = 600;
    let interval = Duration::from_millis(10);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for n in 0..LINES {
        // A fixed schedule: 100 lines/s. Killed at 2 s, back at 3 s; killed at 4 s, back at 4.5 s.
        let due = started + interval * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        match n {
            200 | 400 => journald.kill().unwrap(),
            300 | 450 => journald.restart().unwrap(),
            _ => {}
        }
        let t = Instant::now();
        logger::info!(log, "numbered"; run = "restart", n = n);
        slowest = slowest.max(t.elapsed());
    }
    log.flush();
    let in_journal = || -> BTreeSet<u64> {
        journald
            .entries()
            .iter()
            .filter(|e| ours(e, "restart"))
            .filter_map(|e| e.get("N")?.parse().ok())
            .collect()
    };
    // The journal is written as journald reads: wait for the last line.
    assert!(test_support::wait_until(WAIT, || in_journal().contains(&(LINES - 1))));
    let journal = in_journal();
    let text = fallback.text();
    let (fell_back, replayed) = numbers_on_stderr(&text, "restart");
    let all: BTreeSet<u64> = journal.iter().chain(&fell_back).chain(&replayed).copied().collect();
    let lost: Vec<u64> = (0..LINES).filter(|n| !all.contains(n)).collect();
    println!(
        "{LINES} lines: {} in the journal, {} on stderr, {} replayed; lost {lost:?}; slowest \
         call {slowest:?}; {:?}",
        journal.len(),
        fell_back.len(),
        replayed.len(),
        log.stats()
    );
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(fell_back.len() >= 50, "two outages of 0.5 s and more put lines on stderr");
    assert_eq!(log.stats().fell_back, fell_back.len() as u64);
    assert!(text.contains("is back; delivering again"), "{text}");
    for line in text.lines() {
        assert!(line.starts_with("logger: probe ") || line.contains(" 6 probe "), "{line}");
    }
}

#[test]
#[ignore = "needs systemd-journald and root: run by .ci/run"]
fn the_default_syslog_format_parses_on_journalds_syslog_socket() {
    // journald's `/dev/log` (its syslog socket) reads glibc's format, which is the default on
    // a unix socket: identifier, pid, priority, facility and message come out right.
    let journald = start();
    let syslog =
        logger::Syslog::new(logger::SyslogTarget::Unix(journald.syslog_socket_path()), "probe");
    logger::warning!(syslog, "via dev-log é"; user = "al ice");
    syslog.flush();
    let e = journald
        .wait_for(WAIT, |e| e.message().is_some_and(|m| m.starts_with("via dev-log")))
        .expect("journald took the syslog line");
    assert_eq!(e.identifier().as_deref(), Some("probe"));
    assert_eq!(e.get("SYSLOG_PID"), Some(std::process::id().to_string()));
    assert_eq!((e.priority(), e.get("SYSLOG_FACILITY").as_deref()), (Some(4), Some("16")));
    assert_eq!(e.message().as_deref(), Some(r#"via dev-log é user="al ice""#));
}
