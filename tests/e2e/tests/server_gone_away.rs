//! Issue 5, item 3: the server goes away. The `mail-test-srv` binary is killed with SIGKILL in
//! the middle of a `notify-mailer` run and a new one is started on the same ports 5 s later.
//! The mailer keeps backing off and reconnecting through the gap and finishes the list.
//!
//! Nothing is lost across the gap: every message is either on the new server, or was seen on
//! the old one just before the kill, or was accepted by the old one in the moment between that
//! last look and the kill (the mailer logged `event=sent` for it, and the killed server's
//! memory is gone). That last group is counted, printed, and must match what the old server's
//! own count says it took after the listing, give or take what it can have taken between that
//! count and the kill: the run is paced (`--sleep`), so that is bounded by the time the test
//! measured between the two, however long a busy machine made it. The accounting is by counts,
//! never by comparing the log's clock with the kill's: a 250 that reached the mailer before the
//! kill may be logged after it on a busy machine.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e::bins::{self, Mailing};
use e2e::srv::{SrvProcess, stat};
use e2e::tally::summary_number;
use test_support::{field, wait_until};

const RECIPIENTS: usize = 3_000;
const KILL_AT: u64 = 600;
const GAP: Duration = Duration::from_secs(5);
/// `--parallel`: at most this many messages are in flight at any instant, the kill included.
const CONNECTIONS: usize = 2;
/// `--sleep`: each connection stores at most one message per this much time.
const PACE: Duration = Duration::from_millis(2);

fn message_ids(messages: &[serde_json::Value]) -> BTreeSet<String> {
    messages.iter().filter_map(|m| m["message_id"].as_str().map(str::to_owned)).collect()
}

#[test]
fn sigkill_and_restart_on_the_same_port_loses_nothing() {
    let binary = e2e::srv::binary().expect("mail-test-srv binary");
    let mut old = SrvProcess::start(&binary, 0, 0, &[]).expect("start mail-test-srv");
    let (smtp_port, http_port) = (old.smtp_addr().port(), old.http().addr().port());

    let mailing = Mailing::new(RECIPIENTS, "gone.test").expect("input files");
    let mut args = mailing.args(old.smtp_addr(), "gone@sender.test", "server gone away");
    args.extend(
        [
            "--parallel",
            &CONNECTIONS.to_string(),
            // Paced (at most ~1,000 msg/s over two connections), so the kill lands mid-run.
            "--sleep",
            &format!("{}ms", PACE.as_millis()),
            // Backoff 5 ms doubling to 1 s: 30 attempts span ~25 s, well over the 5 s gap.
            "--retry-base",
            "5ms",
            "--retry-max",
            "1s",
            "--max-attempts",
            "30",
            "--log-level",
            "info",
        ]
        .map(String::from),
    );
    let program = bins::notify_mailer().expect("notify-mailer binary");
    let running = bins::Running::start(&program, &args).expect("start notify-mailer");

    assert!(
        wait_until(Duration::from_secs(60), || old.http().count().is_ok_and(|n| n >= KILL_AT)),
        "the old server never reached {KILL_AT} deliveries"
    );
    // The last look at the old server: which messages it holds (a slow listing), then how
    // many (a fast count), then SIGKILL at once.
    let seen_on_old = message_ids(&old.http().messages().unwrap());
    let window = Instant::now();
    let old_count = old.http().count().unwrap() as usize;
    old.kill().unwrap();
    let window = window.elapsed();
    // What the old server can have stored between the count and the kill: one message per
    // connection per PACE, and one more each in flight.
    let after_count = CONNECTIONS * (window.as_micros() / PACE.as_micros() + 1) as usize;
    std::thread::sleep(GAP); // the scenario itself: the server is away for 5 s
    let new =
        SrvProcess::start(&binary, smtp_port, http_port, &[]).expect("restart on the same ports");

    let out = running.wait(Duration::from_secs(120)).expect("notify-mailer finished");
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let on_new = message_ids(&new.http().messages().unwrap());
    let new_stats = new.http().stats().unwrap();

    // What the mailer says it delivered, and whether it flagged a resend after a fault that
    // left the delivery unknown.
    let sent: Vec<(String, bool)> = out
        .stdout
        .lines()
        .filter(|l| field(l, "event").as_deref() == Some("sent"))
        .map(|l| {
            let id = field(l, "message_id").unwrap();
            (id, field(l, "possibly_duplicated").as_deref() == Some("true"))
        })
        .collect();
    let sent_ids: BTreeSet<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    // Reported sent, but on neither server: accepted by the old one after the last listing.
    let old_only: Vec<&str> = sent
        .iter()
        .map(|(id, _)| id.as_str())
        .filter(|id| !seen_on_old.contains(*id) && !on_new.contains(*id))
        .collect();
    // Resent to the new server after the old one died holding the message, maybe stored: if it
    // was stored after the listing, the old count has it too, uncounted by `on_both`.
    let resent_unlisted = sent
        .iter()
        .filter(|(id, resent)| *resent && !seen_on_old.contains(id) && on_new.contains(id))
        .count();
    let new_count = new.http().count().unwrap() as usize;
    let on_both = seen_on_old.intersection(&on_new).count();
    // What the old server took after the listing, by its own count.
    let old_unlisted = old_count - seen_on_old.len();
    // old count + new count - copies on both = total, except for messages the old server took
    // in the instant between the count and the kill: their fate was unknown at the kill.
    let unknown_fate = RECIPIENTS as i64 - (old_count + new_count - on_both) as i64;
    let refused = out.lines_with("(refused)").len();
    let backoffs: Vec<u64> = out
        .lines_with("event=backoff")
        .iter()
        .filter_map(|l| field(l, "delay_ms")?.parse().ok())
        .collect();
    println!(
        "server gone away: {RECIPIENTS} recipients, old server SIGKILLed at {KILL_AT}+ deliveries, \
         back on port {smtp_port} {GAP:?} later; run took {:?}\n  old server count at the kill \
         {old_count} ({} listed by Message-ID, {} more identified by the mailer's sent events), \
         new server count {new_count}, on both {on_both}, resent after the kill {resent_unlisted}: \
         {old_count} + {new_count} - {on_both} = {} of {RECIPIENTS}, fate unknown at the kill \
         {unknown_fate} (at most {after_count} in the {window:?} from the count to the kill)\n  \
         during the gap: {refused} refused connects, backoff delays up to {} ms, reconnects \
         {:?}; new /stats connections {}",
        out.elapsed,
        seen_on_old.len(),
        old_only.len(),
        old_count + new_count - on_both,
        backoffs.iter().max().copied().unwrap_or(0),
        summary_number(&out.stdout, "reconnects"),
        stat(&new_stats, "connections"),
    );
    assert_eq!(summary_number(&out.stdout, "sent "), Some(RECIPIENTS as u64), "{}", out.stdout);
    assert_eq!(sent_ids.len(), RECIPIENTS, "one sent event per message");
    assert!(old_count + 1000 < RECIPIENTS, "the kill came too late ({old_count} sent)");
    // Every message reported sent but on neither server is one the old server counted after
    // the listing, or one it can have taken between the count and the kill: none was lost.
    assert!(
        old_only.len() <= old_unlisted + after_count,
        "{} messages reported sent are on neither server; the old server took only \
         {old_unlisted} after the listing and at most {after_count} after the count: lost {:?}",
        old_only.len(),
        &old_only[..old_only.len().min(20)]
    );
    // And every message the old server counted after the listing is accounted for: reported
    // sent (and on neither server), or resent to the new one.
    assert!(
        old_only.len() + resent_unlisted.min(CONNECTIONS) >= old_unlisted,
        "old server count unexplained"
    );
    // Only messages in flight at the kill (one per connection) can be on both servers, and
    // only those taken between the count and the kill are of unknown fate (negative when a
    // message the old count had was resent and counted on the new server too).
    assert!(on_both <= CONNECTIONS, "{on_both} messages on both servers");
    let fate = -(resent_unlisted.min(CONNECTIONS) as i64)..=after_count as i64;
    assert!(fate.contains(&unknown_fate), "{unknown_fate} messages of unknown fate");
    // The mailer noticed the gap and rode it out with growing delays, not a storm.
    assert!(refused > 0, "no refused connection during the gap");
    assert!(backoffs.iter().any(|&d| d >= 500), "backoff never grew: {backoffs:?}");
    assert!(refused < 200, "{refused} refused connects in 5 s: a reconnect storm");
}
