//! Issue 5, item 2: faults at every stage. The `mail-test-srv` binary is told over
//! `PUT /chaos` to fault one stage (greeting, MAIL, RCPT, DATA, after the final dot) at 30 %
//! (60 % at the greeting), half clean closes and half `421`, seeded; the real `notify-mailer`
//! sends to 300 recipients over 2 connections (1 at the greeting, see `parallel_at`). Every
//! recipient receives the message. At every stage but the last nothing arrives twice; after the
//! final dot the server has stored the message before it hangs up, the mailer cannot know, and
//! resends it with the same Message-ID: the test counts those duplicates and requires exactly
//! one extra copy per after-dot fault, each with its original's Message-ID.

use std::time::Duration;

use e2e::bins::{self, Mailing};
use e2e::srv::{SrvProcess, stat};
use e2e::tally::{Tally, summary_number};
use serde_json::json;

const RECIPIENTS: usize = 300;

struct Outcome {
    tally: Tally,
    stats: serde_json::Value,
    summary: String,
}

/// The fault chance at `stage`, in percent. A connection is greeted once and then reused, so
/// at the greeting a higher chance is needed to see more than a couple of faults; 60 % still
/// leaves 25 attempts a 1-in-500,000 chance of all failing (and the seed is fixed).
fn chance_at(stage: &str) -> f64 {
    if stage == "greeting" { 60.0 } else { 30.0 }
}

/// Connections faulted unconditionally first (Boulder's close-first): at the greeting, where
/// only new connections draw, this makes sure there are a dozen greeting faults to survive.
fn close_first_at(stage: &str) -> u64 {
    if stage == "greeting" { 12 } else { 0 }
}

/// Connections at once. At the greeting one: there every new connection draws, and whether a
/// close-first connection or a chance-drawing one reaches the server's RNG first is up to the
/// scheduler when two connect at once, so the faults drawn (and whether any beyond the
/// close-first ones fire) would change from run to run. One at a time, the seeded draws are
/// the same every run. At the other stages each message draws in turn whichever connection
/// carries it, so two connections give the same counts every run too.
fn parallel_at(stage: &str) -> &'static str {
    if stage == "greeting" { "1" } else { "2" }
}

fn run_with_chaos_at(stage: &str) -> Outcome {
    let srv = SrvProcess::start(&e2e::srv::binary().expect("mail-test-srv binary"), 0, 0, &[])
        .expect("start mail-test-srv");
    let http = srv.http();
    let chaos = http
        .set_chaos(&json!({
            "chance": chance_at(stage),
            "stage": stage,
            "mode": "mixed",
            "seed": 11,
            "close_first": close_first_at(stage),
        }))
        .expect("PUT /chaos");
    assert_eq!(chaos["stage"], stage, "{chaos}");
    assert_eq!(http.chaos().unwrap()["chance"], chance_at(stage));

    let mailing = Mailing::new(RECIPIENTS, &format!("{stage}.test")).expect("input files");
    let mut args = mailing.args(srv.smtp_addr(), "stages@sender.test", "fault at a stage");
    args.extend(bins::FAST_RETRIES.map(String::from));
    args.extend(["--parallel", parallel_at(stage), "--log-level", "warning"].map(String::from));
    let program = bins::notify_mailer().expect("notify-mailer binary");
    let out = bins::run(&program, &args, Duration::from_secs(120)).expect("notify-mailer ran");
    assert_eq!(out.code(), Some(0), "{}", out.transcript());

    let tally = Tally::from_messages(&http.messages().unwrap());
    let stats = http.stats().unwrap();
    let lost = tally.lost(mailing.addresses());
    let faults = stat(&stats, "faults_421") + stat(&stats, "faults_close");
    println!(
        "chaos at {stage} ({} %): {RECIPIENTS} recipients in {:?}; faults {faults} (421 {}, close {}), \
         by stage {}; stored {} deliveries, lost {}, duplicates {}, repeated Message-IDs {}, \
         mailer says possibly duplicated {:?}",
        chance_at(stage),
        out.elapsed,
        stat(&stats, "faults_421"),
        stat(&stats, "faults_close"),
        stats["faults_by_stage"],
        tally.deliveries,
        lost.len(),
        tally.duplicate_deliveries(),
        tally.repeated_message_ids().len(),
        possibly_duplicated(&out.stdout),
    );
    assert!(lost.is_empty(), "{stage}: lost {lost:?}");
    assert!(tally.unexpected(mailing.addresses()).is_empty());
    assert!(faults > close_first_at(stage), "{stage}: too few faults injected: {stats}");
    // Every fault happened at the chosen stage and nowhere else.
    assert_eq!(stat(&stats["faults_by_stage"], stage), faults, "{stats}");
    assert!(stat(&stats, "faults_421") > 0 && stat(&stats, "faults_close") > 0, "{stats}");
    assert_eq!(summary_number(&out.stdout, "421:"), Some(stat(&stats, "faults_421")));
    assert_eq!(summary_number(&out.stdout, "closed:"), Some(stat(&stats, "faults_close")));
    Outcome { tally, stats, summary: out.stdout }
}

/// `N` in the summary's "(N possibly delivered twice after a fault)", 0 when absent.
fn possibly_duplicated(summary: &str) -> u64 {
    let re = regex::Regex::new(r"\((\d+) possibly delivered twice").unwrap();
    re.captures(summary).map_or(0, |c| c[1].parse().unwrap())
}

fn delivered_once_each(stage: &str) {
    let outcome = run_with_chaos_at(stage);
    assert_eq!(outcome.tally.deliveries, RECIPIENTS);
    assert_eq!(outcome.tally.duplicate_deliveries(), 0, "{stage}: nothing may arrive twice");
    assert!(outcome.tally.repeated_message_ids().is_empty());
    assert_eq!(possibly_duplicated(&outcome.summary), 0, "{}", outcome.summary);
}

#[test]
fn faults_at_the_greeting_lose_nothing() {
    delivered_once_each("greeting");
}

#[test]
fn faults_at_mail_lose_nothing() {
    delivered_once_each("mail");
}

#[test]
fn faults_at_rcpt_lose_nothing() {
    delivered_once_each("rcpt");
}

#[test]
fn faults_at_data_lose_nothing() {
    delivered_once_each("data");
}

#[test]
fn faults_after_the_final_dot_resend_with_the_same_message_id() {
    let Outcome { tally, stats, summary } = run_with_chaos_at("after_dot");
    let after_dot = stat(&stats["faults_by_stage"], "after_dot");
    // Each after-dot fault stored a copy the mailer could not know about, and the mailer
    // sent it again: exactly one extra copy per fault (a resend can be faulted in turn).
    assert_eq!(tally.duplicate_deliveries() as u64, after_dot, "{stats}");
    assert_eq!(tally.deliveries as u64, RECIPIENTS as u64 + after_dot);
    // The extra copies are the same messages: the same Message-ID, never a new one.
    let extra_copies: usize = tally.per_message_id.values().map(|n| n - 1).sum();
    assert_eq!(extra_copies as u64, after_dot, "resends must keep their Message-ID");
    assert_eq!(tally.per_message_id.len(), RECIPIENTS, "one Message-ID per recipient");
    // The mailer flags exactly the messages that may have arrived twice.
    let repeated = tally.repeated_message_ids().len() as u64;
    assert_eq!(possibly_duplicated(&summary), repeated, "{summary}");
    println!(
        "after the final dot: {after_dot} faults produced {after_dot} duplicate deliveries over \
         {repeated} messages, all with their original Message-ID; the mailer reported {} as \
         possibly delivered twice",
        possibly_duplicated(&summary)
    );
}
