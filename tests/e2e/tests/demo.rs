//! The README's main command, `cargo run --release --example demo`, run as a user would: the
//! built example as a child process, judged by what it prints and how it exits.

use std::time::Duration;

use e2e::bins::{self, Output, Running};
use test_support::{signal, wait_until};

/// Generous: a debug build on a busy 2-core CI machine; a run takes a few seconds.
const LIMIT: Duration = Duration::from_secs(120);

fn demo(args: &[&str]) -> Output {
    let program = bins::demo().expect("demo example");
    bins::run(&program, args, LIMIT).expect("demo ran")
}

/// The number after `label` on the summary line that starts with it (`  lost         0`).
fn figure(out: &Output, label: &str) -> u64 {
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line\n{}", out.transcript()));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number on {line:?}"))
}

#[test]
fn quiet_demo_prints_only_a_summary_with_nothing_lost() {
    let out = demo(&["--quiet", "--messages", "300", "--seed", "11"]);
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(figure(&out, "lost"), 0, "{}", out.transcript());
    assert_eq!(figure(&out, "received"), figure(&out, "sent"), "{}", out.transcript());
    assert_eq!(figure(&out, "sent"), 300);
    // 35 % of MAIL commands fault: with 300 messages, many faults were survived.
    assert!(figure(&out, "faults") > 50, "{}", out.transcript());
    assert!(out.stdout.contains("lost=0"), "no machine-readable result line\n{}", out.stdout);
    assert!(out.lines_with("event=").is_empty(), "--quiet still logged events\n{}", out.stdout);
}

#[test]
fn demo_shows_every_fault_and_reconnect_in_the_log() {
    let out = demo(&["--messages", "150", "--seed", "3"]);
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    for event in [
        "event=connect ",
        "event=smtp_421",
        "event=eof",
        "event=backoff",
        "event=reconnected",
        "event=sent",
    ] {
        assert!(!out.lines_with(event).is_empty(), "no {event} line\n{}", out.transcript());
    }
    assert_eq!(out.lines_with("event=sent").len(), 150, "{}", out.transcript());
    assert_eq!(figure(&out, "lost"), 0);
}

#[test]
fn demo_without_faults_needs_no_reconnect() {
    let out = demo(&["--quiet", "--messages", "50", "--close-chance", "0"]);
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(figure(&out, "faults"), 0, "{}", out.transcript());
    assert_eq!(figure(&out, "reconnects"), 0, "{}", out.transcript());
}

#[test]
fn demo_serve_keeps_the_inbox_up_with_every_message_until_ctrl_c() {
    let program = bins::demo().expect("demo example");
    let args = ["--quiet", "--messages", "40", "--seed", "5", "--serve"];
    let running = Running::start(&program, &args).expect("demo started");
    let serving = |out: &str| {
        out.lines().find_map(|l| l.strip_prefix("serving the inbox at ")).map(|rest| {
            rest.split_whitespace().next().unwrap_or_default().trim_end_matches('/').to_owned()
        })
    };
    assert!(
        wait_until(LIMIT, || serving(&running.stdout_so_far()).is_some()),
        "no 'serving' line\n{}",
        running.stdout_so_far()
    );
    let url = serving(&running.stdout_so_far()).unwrap();
    assert!(running.stdout_so_far().contains(&format!("inbox        {url}/")));
    let page = ureq::get(&format!("{url}/")).call().expect("the inbox").into_string().unwrap();
    assert!(page.contains("<title>mail-test-srv inbox</title>"));
    let list: serde_json::Value =
        ureq::get(&format!("{url}/api/v1/messages")).call().unwrap().into_json().unwrap();
    assert_eq!(list["total"], 40, "{list}");
    signal(running.pid(), "INT").expect("kill -INT");
    let out = running.wait(LIMIT).expect("demo exited after Ctrl-C");
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(figure(&out, "lost"), 0);
}

#[test]
fn demo_refuses_a_certain_fault() {
    let out = demo(&["--close-chance", "100"]);
    assert_eq!(out.code(), Some(2), "{}", out.transcript());
    assert!(out.stderr.contains("below 100"), "{}", out.transcript());
}

#[test]
fn readme_demo_flags_exist() {
    let readme = bins::readme().expect("README.md");
    let section = bins::readme_section(&readme, "## Set up");
    let flags = bins::flags_in(section);
    for expected in ["--quiet", "--messages", "--close-chance", "--seed"] {
        assert!(flags.contains(expected), "README's demo text lost {expected}: {flags:?}");
    }
    let help = demo(&["--help"]).stdout;
    for flag in &flags {
        assert!(
            help.contains(flag.as_str()),
            "README mentions demo flag {flag}, which --help lacks\n{help}"
        );
    }
}

#[test]
fn help_mentions_every_flag() {
    let out = demo(&["--help"]);
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    for flag in ["--messages", "--close-chance", "--seed", "--quiet", "--help"] {
        assert!(out.stdout.contains(flag), "demo --help does not mention {flag}\n{}", out.stdout);
    }
    for default in ["1000", "35"] {
        assert!(out.stdout.contains(&format!("[default: {default}]")), "{}", out.stdout);
    }
}
