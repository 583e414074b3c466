//! Behaviour against a tiny scripted SMTP server: faults at each stage, timeouts, a server that
//! drops every MAIL, a server that is gone, idle probes, cancellation, validation.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Action, Scripted, closed_in_a_long_backoff, config, delays, events, field, mock, position,
    wait_until, within,
};
use mailer::{Error, Fault, Mailer, SmtpMailer, Stage};

const T: Duration = Duration::from_secs(20);

fn fault_on_first_connection(
    stage: &'static str,
    action: Action,
) -> impl Fn(&common::Step) -> Action {
    move |s| if s.conn == 0 && s.stage == stage { action.clone() } else { Action::Ok }
}

/// A server that answers `action` to every RCPT of `nobody@...`, and accepts the rest.
fn refusing_nobody(action: Action) -> impl Fn(&common::Step) -> Action {
    move |s| {
        if s.stage == "rcpt" && s.line.contains("nobody") { action.clone() } else { Action::Ok }
    }
}

#[tokio::test]
async fn no_connection_before_the_first_send_and_one_connection_reused() {
    let srv = Scripted::start(|_| Action::Ok).await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()), shared);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(srv.connections(), 0, "connected before any mail");
    assert!(log.get_all().is_empty(), "{:?}", log.get_all());
    for i in 0..25 {
        let sent = within(T, m.send_mail(&["rcpt@example.net"], &format!("n {i}"), "body")).await;
        assert_eq!(sent.unwrap().attempts, 1);
    }
    assert_eq!(srv.connections(), 1);
    assert_eq!(srv.delivered(), 25);
    assert_eq!(log.get_all_matching("event=connect ").len(), 1);
    assert_eq!(log.get_all_matching("event=sent ").len(), 25);
    let st = m.stats();
    assert_eq!((st.sent, st.attempts, st.reconnects, st.faults()), (25, 25, 0, 0));
}

/// A fault at `stage` on the first connection: the log shows the fault, then backoff,
/// reconnected and sent, and the message is delivered once.
/// Checked both pipelined and lock-step.
async fn survives(stage: &'static str, action: Action, event: &str) {
    for pipelining in [true, false] {
        survives_in(stage, action.clone(), event, pipelining).await;
    }
}

async fn survives_in(stage: &'static str, action: Action, event: &str, pipelining: bool) {
    let srv = Scripted::start(fault_on_first_connection(stage, action.clone())).await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()).with_pipelining(pipelining), shared);
    let sent = within(T, m.send_mail(&["rcpt@example.net"], "s", "body")).await.unwrap();
    let ev = events(&log);
    let f = position(&ev, event, 0).unwrap_or_else(|| panic!("no {event} in {ev:?}"));
    let b =
        position(&ev, "backoff", f).unwrap_or_else(|| panic!("no backoff after {event}: {ev:?}"));
    let r = position(&ev, "reconnected", b).unwrap_or_else(|| panic!("no reconnected: {ev:?}"));
    position(&ev, "sent", r).unwrap_or_else(|| panic!("no sent after reconnected: {ev:?}"));
    let want_stage = if stage == "ehlo" {
        "greeting"
    } else if stage == "dot" {
        "after_dot"
    } else {
        stage
    };
    let line = &log.get_all_matching(&format!("event={event} "))[0];
    let got_stage = field(line, "stage");
    if action == Action::Reset && pipelining {
        // A reset discards replies in flight: with MAIL and RCPT in one write, the client
        // may see the reset while reading MAIL's reply.
        assert!(matches!(got_stage.as_deref(), Some("mail" | "rcpt")), "{line}");
    } else {
        assert_eq!(got_stage.as_deref(), Some(want_stage), "{line} (pipelining {pipelining})");
    }
    assert_eq!(field(line, "server").as_deref(), Some(srv.addr.to_string().as_str()), "{line}");
    assert_eq!(sent.attempts, 2);
    assert_eq!(srv.connections(), 2);
    if stage == "dot" {
        // The server had the whole message when the connection died: sent again, same ID.
        assert!(sent.possibly_duplicated);
        assert!(log.expect_match("event=resend ").is_ok());
        let bodies = srv.bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 2);
        let id_line =
            |b: &str| b.lines().find(|l| l.starts_with("Message-ID:")).unwrap().to_owned();
        assert_eq!(id_line(&bodies[0]), id_line(&bodies[1]));
        assert!(id_line(&bodies[0]).contains(&sent.message_id));
        assert_eq!(m.stats().possibly_duplicated, 1);
    } else {
        assert!(!sent.possibly_duplicated);
        assert!(log.get_all_matching("event=resend").is_empty());
    }
    assert_eq!(srv.delivered(), 1);
    let st = m.stats();
    assert_eq!((st.sent, st.attempts, st.reconnects), (1, 2, 1));
    match event {
        "smtp_421" => assert_eq!(st.smtp_421, 1),
        "eof" => assert_eq!(st.eof, 1),
        _ => {}
    }
}

const CLOSE_421: &str = "421 4.4.2 scripted.test Error: timeout exceeded";

#[tokio::test]
async fn reconnects_after_421_at_greeting() {
    survives("greeting", Action::ReplyClose(CLOSE_421.into()), "smtp_421").await;
}
#[tokio::test]
async fn reconnects_after_eof_at_greeting() {
    survives("greeting", Action::Close, "eof").await;
}
#[tokio::test]
async fn reconnects_after_421_at_ehlo() {
    survives("ehlo", Action::ReplyClose(CLOSE_421.into()), "smtp_421").await;
}
#[tokio::test]
async fn reconnects_after_421_at_mail() {
    survives("mail", Action::ReplyClose(CLOSE_421.into()), "smtp_421").await;
}
#[tokio::test]
async fn reconnects_after_eof_at_mail() {
    survives("mail", Action::Close, "eof").await;
}
#[tokio::test]
async fn reconnects_after_421_at_rcpt() {
    survives("rcpt", Action::ReplyClose(CLOSE_421.into()), "smtp_421").await;
}
#[tokio::test]
async fn reconnects_after_eof_at_rcpt() {
    survives("rcpt", Action::Close, "eof").await;
}
#[tokio::test]
async fn reconnects_after_reset_at_rcpt() {
    survives("rcpt", Action::Reset, "connection_lost").await;
}
#[tokio::test]
async fn reconnects_after_421_at_data() {
    survives("data", Action::ReplyClose(CLOSE_421.into()), "smtp_421").await;
}
#[tokio::test]
async fn reconnects_after_eof_at_data() {
    survives("data", Action::Close, "eof").await;
}
#[tokio::test]
async fn resends_after_eof_after_the_final_dot() {
    survives("dot", Action::Close, "eof").await;
}
#[tokio::test]
async fn resends_after_421_after_the_final_dot() {
    survives("dot", Action::ReplyClose(CLOSE_421.into()), "smtp_421").await;
}

/// The first connection is lost after the final dot; every later one gets `then` at
/// `stage`.
fn lost_after_the_dot_then(stage: &'static str, then: Action) -> impl Fn(&common::Step) -> Action {
    move |s| match (s.conn, s.stage) {
        (0, "dot") => Action::Close,
        (1.., st) if st == stage => then.clone(),
        _ => Action::Ok,
    }
}

#[tokio::test]
async fn giving_up_after_a_loss_after_the_dot_says_the_message_may_have_been_delivered() {
    // The last failure is a refused greeting; the first try's loss must not be forgotten.
    let srv =
        Scripted::start(lost_after_the_dot_then("greeting", Action::ReplyClose(CLOSE_421.into())))
            .await;
    let (log, shared) = mock();
    let cfg = config(srv.port()).with_retry_base(Duration::from_millis(5)).with_max_attempts(2);
    let m = SmtpMailer::new(cfg, shared);
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert!(matches!(err, Error::GaveUp { attempts: 3, .. }), "{err:?}");
    assert_eq!(err.stage(), Some(Stage::Greeting), "the last failure is still the cause");
    assert!(err.possibly_delivered(), "{err:#}");
    assert!(format!("{err:#}").contains("may have been delivered"), "{err:#}");
    let gave_up = log.get_all_matching("event=gave_up ");
    assert_eq!(gave_up.len(), 1, "{:#?}", log.get_all());
    assert_eq!(field(&gave_up[0], "possibly_delivered").as_deref(), Some("true"), "{gave_up:?}");
    assert_eq!(srv.bodies.lock().unwrap().len(), 1, "the server had the whole message once");
    assert_eq!(m.stats().possibly_duplicated, 1);
}

#[tokio::test]
async fn a_refusal_after_a_loss_after_the_dot_is_no_proof_the_message_was_not_delivered() {
    let srv =
        Scripted::start(lost_after_the_dot_then("rcpt", Action::Reply("550 5.1.1 gone".into())))
            .await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()).with_retry_base(Duration::from_millis(5)), shared);
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert!(matches!(err, Error::GaveUp { attempts: 2, .. }), "{err:?}");
    assert!(err.possibly_delivered() && !err.is_permanent(), "{err:#}");
    assert_eq!(err.code(), Some(550));
    assert_eq!(log.get_all_matching("event=gave_up .*possibly_delivered=true").len(), 1);
    // A refusal with nothing uncertain before it stays what it was.
    let srv = Scripted::start(refusing_nobody(Action::Reply("550 5.1.1 gone".into()))).await;
    let m = SmtpMailer::new(config(srv.port()), mock().1);
    let err = within(T, m.send_mail(&["nobody@example.net"], "s", "b")).await.unwrap_err();
    assert!(err.is_permanent() && err.is_bad_address() && !err.possibly_delivered(), "{err:#}");
}

#[tokio::test]
async fn close_during_the_backoff_after_a_loss_after_the_dot_says_it_may_have_been_delivered() {
    // Attempt 0 (after the dot) retries at once and fails at MAIL; close comes in the next.
    let srv = Scripted::start(lost_after_the_dot_then("mail", Action::Close)).await;
    let (err, log, _) = closed_in_a_long_backoff(&srv).await;
    assert!(err.is_closed() && err.possibly_delivered(), "{err:#}");
    assert_eq!(err.stage(), Some(Stage::Mail), "the last failure");
    let failed = log.get_all_matching("event=failed ");
    assert_eq!(failed.len(), 1, "{:#?}", log.get_all());
    assert_eq!(field(&failed[0], "possibly_delivered").as_deref(), Some("true"), "{failed:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_mail_times_out_and_the_connection_is_dropped() {
    let srv = Scripted::start(fault_on_first_connection("mail", Action::Silent)).await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(
        config(srv.port()).with_command_timeout(Duration::from_millis(300)),
        shared,
    );
    let started = Instant::now();
    let sent = within(T, m.send_mail(&["rcpt@example.net"], "s", "b")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sent.attempts, 2);
    assert_eq!(srv.connections(), 2, "the timed-out connection was reused");
    let lost = log.get_all_matching("event=connection_lost ");
    assert_eq!(lost.len(), 1, "{:?}", log.get_all());
    assert_eq!(field(&lost[0], "stage").as_deref(), Some("mail"));
    assert_eq!(field(&lost[0], "error").as_deref(), Some("timeout"));
    assert_eq!(m.stats().timeout, 1);
    // The next send uses the new connection.
    within(T, m.send_mail(&["rcpt@example.net"], "s", "b")).await.unwrap();
    assert_eq!(srv.connections(), 2);
}

#[tokio::test]
async fn a_server_that_drops_every_mail_gets_growing_delays_not_a_storm() {
    let srv = Scripted::start(|s| if s.stage == "mail" { Action::Close } else { Action::Ok }).await;
    let (log, shared) = mock();
    let base = Duration::from_millis(20);
    let cfg = config(srv.port())
        .with_retry_base(base)
        .with_retry_max(Duration::from_secs(1))
        .with_max_attempts(5);
    let m = SmtpMailer::new(cfg, shared);
    let started = Instant::now();
    let err = within(T, m.send_mail(&["rcpt@example.net"], "s", "b")).await.unwrap_err();
    let elapsed = started.elapsed();
    let Error::GaveUp { attempts, last, .. } = &err else { panic!("{err}") };
    assert_eq!(*attempts, 6, "1 try + 5 reconnects");
    assert_eq!(last.fault(), Some(Fault::Eof));
    assert_eq!(last.stage(), Some(Stage::Mail));
    assert!(err.to_string().contains("6 attempts"), "{err}");
    let delays = delays(&log);
    let attempts: Vec<u32> = log
        .get_all_matching("event=backoff ")
        .iter()
        .map(|l| field(l, "attempt").unwrap().parse().unwrap())
        .collect();
    assert_eq!(attempts, [0, 1, 2, 3, 4]);
    assert_eq!(delays[0], 0);
    for (n, d) in delays.iter().enumerate().skip(1) {
        let ceiling = 20u64 << (n - 1);
        assert!(*d >= ceiling * 8 / 10 && *d < ceiling * 12 / 10 + 1, "attempt {n}: {d} ms");
    }
    let min_total: u64 = delays.iter().sum();
    assert!(elapsed >= Duration::from_millis(min_total), "{elapsed:?} < {min_total} ms");
    assert_eq!(srv.connections(), 6);
    assert_eq!(log.get_all_matching("event=gave_up ").len(), 1);
    assert_eq!(field(&log.get_all_matching("event=gave_up ")[0], "attempts").as_deref(), Some("6"));
    let st = m.stats();
    assert_eq!((st.gave_up, st.eof, st.sent), (1, 6, 0));
    // The counter resets for the next send: its first backoff is 0 again.
    log.clear();
    let _ = within(T, m.send_mail(&["rcpt@example.net"], "s", "b")).await.unwrap_err();
    let first = &log.get_all_matching("event=backoff ")[0];
    assert_eq!(field(first, "attempt").as_deref(), Some("0"));
}

#[tokio::test]
async fn a_bad_recipient_is_rejected_at_once_with_its_code_and_the_connection_is_kept() {
    let refusal = "550 5.1.1 <nobody@example.net>: Recipient address rejected";
    let srv = Scripted::start(refusing_nobody(Action::Reply(refusal.into()))).await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()), shared);
    let err = within(T, m.send_mail(&["nobody@example.net"], "s", "b")).await.unwrap_err();
    assert_eq!(err.code(), Some(550));
    assert!(err.is_permanent() && err.is_bad_address() && !err.needs_reconnect(), "{err}");
    assert_eq!(err.stage(), Some(Stage::Rcpt));
    assert!(err.to_string().contains("Recipient address rejected"), "{err}");
    assert!(log.get_all_matching("event=backoff").is_empty());
    let rejected = log.get_all_matching("event=rejected ");
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].starts_with("ERR: "), "{}", rejected[0]);
    assert_eq!(field(&rejected[0], "code").as_deref(), Some("550"));
    assert_eq!(m.stats().permanent_5xx, 1);
    // RSET cleaned the transaction; the same connection carries the next message.
    within(T, m.send_mail(&["ok@example.net"], "s", "b")).await.unwrap();
    assert_eq!(srv.connections(), 1);
    assert_eq!(srv.delivered(), 1);
}

#[tokio::test]
async fn a_221_in_answer_to_rset_drops_the_connection() {
    // The server refuses the recipient, then hangs up with 221 before the client's RSET.
    let srv = Scripted::start(refusing_nobody(Action::ReplyClose(
        "550 5.1.1 no such user\r\n221 2.0.0 bye".into(),
    )))
    .await;
    let m = SmtpMailer::new(config(srv.port()).with_pipelining(false), mock().1);
    let err = within(T, m.send_mail(&["nobody@example.net"], "s", "b")).await.unwrap_err();
    assert_eq!(err.code(), Some(550));
    // The 221 was not taken for RSET's 250: the next send connects afresh at its first try.
    let sent = within(T, m.send_mail(&["ok@example.net"], "s", "b")).await.unwrap();
    assert_eq!((sent.attempts, srv.connections()), (1, 2));
}

#[tokio::test]
async fn a_rejected_message_is_not_a_bad_address() {
    let srv = Scripted::start(|s| {
        if s.stage == "dot" { Action::Reply("554 5.7.1 spam".into()) } else { Action::Ok }
    })
    .await;
    let (_log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()), shared);
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert_eq!(err.code(), Some(554));
    assert!(err.is_permanent() && !err.is_bad_address());
}

#[tokio::test]
async fn a_transient_450_is_retried_with_backoff() {
    let first = Arc::new(AtomicBool::new(true));
    let srv = Scripted::start(move |s| {
        if s.stage == "rcpt" && first.swap(false, Ordering::SeqCst) {
            Action::Reply("450 4.2.0 mailbox busy".into())
        } else {
            Action::Ok
        }
    })
    .await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()), shared);
    let sent = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap();
    assert_eq!(sent.attempts, 2);
    assert!(
        log.expect_match(r"^WARNING: .* event=deferred .*code=450").is_ok(),
        "{:?}",
        log.get_all()
    );
    assert!(log.expect_match("event=backoff attempt=0").is_ok());
    assert_eq!(m.stats().transient_4xx, 1);
    assert_eq!(srv.delivered(), 1);
}

#[tokio::test]
async fn invalid_addresses_fail_before_any_io_and_never_panic() {
    let srv = Scripted::start(|_| Action::Ok).await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()), shared);
    for bad in [
        "Evil\r\nBcc: x@y.test <a@example.net>",
        "a@example.net\nRCPT TO:<b@x.test>",
        "not an address",
        "a@b.test, c@d.test",
    ] {
        let err = within(T, m.send_mail(&[bad], "s", "b")).await.unwrap_err();
        assert!(err.is_bad_address() && err.is_permanent(), "{bad:?}: {err}");
    }
    let err = within(T, m.send_mail(&[], "s", "b")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidMessage(_)));
    // A bad from address, with CR/LF in its display name: an error from every send, no panic.
    let mut bad_from = config(srv.port());
    bad_from.from = "Evil\r\nBcc: x@y.test <a@example.com>".into();
    let m2 = SmtpMailer::new(bad_from, mock().1);
    let err = within(T, m2.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert!(err.is_bad_address(), "{err}");
    // Every send above was awaited to its end: a connection would have been counted by now.
    assert_eq!(srv.connections(), 0);
    // The log never carries the address itself at error level.
    assert!(log.get_all_matching("Bcc").is_empty(), "{:?}", log.get_all());
}

#[tokio::test]
async fn header_injection_through_the_subject_is_neutralised_on_the_wire() {
    let srv = Scripted::start(|_| Action::Ok).await;
    let m = SmtpMailer::new(config(srv.port()), mock().1);
    let subject = "Hello\r\nBcc: victim@example.org\r\nX-Evil: 1";
    within(T, m.send_mail(&["a@example.net"], subject, "body\r\n.\r\nMAIL FROM:<x@y>\r\n"))
        .await
        .unwrap();
    let bodies = srv.bodies.lock().unwrap().clone();
    let headers: Vec<&str> = bodies[0].split("\r\n").take_while(|l| !l.is_empty()).collect();
    assert!(
        !headers.iter().any(|l| l.starts_with("Bcc:") || l.starts_with("X-Evil:")),
        "{headers:?}"
    );
    // The body's lone dot was stuffed, so the server saw one message, not a second command.
    assert_eq!(srv.delivered(), 1);
    assert!(bodies[0].contains("\r\n..\r\n"), "{:?}", bodies[0]);
}

#[tokio::test]
async fn a_server_that_comes_back_is_reached_with_growing_backoff() {
    let (_sent, log, srv) = common::send_to_a_late_server(|port| async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        Scripted::serve(listener, Arc::new(|_: &common::Step| Action::Ok))
    })
    .await;
    assert_eq!(srv.delivered(), 1);
    let failed = log.get_all_matching("event=reconnect_failed ");
    assert!(failed.len() >= 3, "{:?}", log.get_all());
    assert!(failed[0].contains("refused"), "{}", failed[0]);
}

#[tokio::test]
async fn a_server_that_never_comes_back_gives_up_with_the_count_and_the_cause() {
    let port = common::unused_port();
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(port).with_max_attempts(3), shared);
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert!(matches!(err, Error::GaveUp { attempts: 4, .. }), "{err:?}");
    assert!(err.is_unreachable(), "{err:#}");
    let text = format!("{err:#}");
    assert!(text.contains("4 attempts") && text.contains("refused"), "{text}");
    assert_eq!(err.fault(), Some(Fault::Refused));
    let gave_up = log.get_all_matching("event=gave_up ");
    assert_eq!(gave_up.len(), 1);
    assert!(gave_up[0].starts_with("ERR: "));
    assert_eq!(log.get_all_matching("event=reconnect_failed ").len(), 4);
    assert_eq!(m.stats().gave_up, 1);
}

#[tokio::test]
async fn an_unused_connection_is_quit_after_the_idle_limit_and_the_next_send_connects_again() {
    let quits = Arc::new(AtomicUsize::new(0));
    let q = quits.clone();
    let srv = Scripted::start(move |s| {
        if s.stage == "quit" {
            q.fetch_add(1, Ordering::SeqCst);
        }
        Action::Ok
    })
    .await;
    let (log, shared) = mock();
    let idle = Duration::from_millis(200);
    let m = SmtpMailer::new(config(srv.port()).with_idle_limit(idle), shared);
    within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap();
    // No send comes: the reaper alone frees the server's slot.
    assert!(wait_until(T, || quits.load(Ordering::SeqCst) == 1).await, "no QUIT after idling");
    // The reaper logs once the server has answered the QUIT.
    let logged = wait_until(T, || log.expect_match("event=idle_closed .*connections=1").is_ok());
    assert!(logged.await, "{:?}", log.get_all());
    let sent = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap();
    assert_eq!(sent.attempts, 1, "a reaped connection costs no attempt");
    assert_eq!(srv.connections(), 2);
    assert_eq!(srv.delivered(), 2);
    assert_eq!(m.stats().connects, 2);
}

#[tokio::test]
async fn close_sends_quit_and_the_next_send_connects_again() {
    let quits = Arc::new(AtomicUsize::new(0));
    let q = quits.clone();
    let srv = Scripted::start(move |s| {
        if s.stage == "quit" {
            q.fetch_add(1, Ordering::SeqCst);
        }
        Action::Ok
    })
    .await;
    let (log, shared) = mock();
    let m: Arc<dyn Mailer> = Arc::new(SmtpMailer::new(config(srv.port()), shared));
    within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap();
    within(T, m.close()).await;
    assert!(wait_until(Duration::from_secs(5), || quits.load(Ordering::SeqCst) == 1).await);
    assert!(
        log.expect_match(r"^INFO: .*event=closed server=127\.0\.0\.1:").is_ok(),
        "{:?}",
        log.get_all()
    );
    within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap();
    assert_eq!(srv.connections(), 2);
}

#[tokio::test]
async fn dropping_a_send_cancels_it_and_discards_its_connection() {
    let at_data = Arc::new(AtomicBool::new(false));
    let seen = at_data.clone();
    let srv = Scripted::start(move |s| {
        if s.conn == 0 && s.stage == "data" {
            seen.store(true, Ordering::SeqCst);
            Action::Silent
        } else {
            Action::Ok
        }
    })
    .await;
    let (_log, shared) = mock();
    let m =
        SmtpMailer::new(config(srv.port()).with_command_timeout(Duration::from_secs(30)), shared);
    // Cancel once the send is known to be waiting for the reply to DATA (not after a fixed
    // time, which a slow machine may spend before even connecting).
    let mut send = m.send_mail(&["a@example.net"], "s", "b");
    tokio::select! {
        r = &mut send => panic!("the send ended while the server held DATA: {r:?}"),
        held = wait_until(T, || at_data.load(Ordering::SeqCst)) => assert!(held, "DATA never sent"),
    }
    drop(send);
    // The half-used connection is gone: the next send opens a new one and succeeds quickly.
    let sent =
        within(Duration::from_secs(5), m.send_mail(&["a@example.net"], "s", "b")).await.unwrap();
    assert_eq!(sent.attempts, 1);
    assert_eq!(srv.connections(), 2);
    assert_eq!(srv.delivered(), 1);
}

#[tokio::test]
async fn every_logged_event_is_a_known_name_and_bodies_never_reach_the_log() {
    // Connection 0 is the AUTH failure below; connection 1, the second mailer's first, is
    // dropped at MAIL so its log holds the whole eof, backoff, reconnect path.
    let srv =
        Scripted::start(
            |s| {
                if s.conn == 1 && s.stage == "mail" { Action::Close } else { Action::Ok }
            },
        )
        .await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()).with_credentials("u", "pw"), shared);
    // AUTH is not offered by the scripted server: a permanent protocol failure, no retry.
    let err = within(T, m.send_mail(&["a@example.net"], "s", "SECRET-BODY")).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    let m = SmtpMailer::new(config(srv.port()), shared_of(&log));
    within(T, m.send_mail(&["a@example.net"], "s", "SECRET-BODY")).await.unwrap();
    let ev = events(&log);
    for want in ["failed", "eof", "backoff", "reconnected", "sent"] {
        assert!(ev.iter().any(|e| e == want), "no {want} in {ev:?}");
    }
    for e in ev {
        assert!(mailer::events::ALL.contains(&e.as_str()), "unknown event {e}");
    }
    assert!(log.get_all_matching("SECRET-BODY|pw").is_empty(), "{:?}", log.get_all());
    // Addresses only at debug.
    for line in log.get_all_matching("a@example.net") {
        assert!(line.starts_with("DEBUG: "), "{line}");
    }
}

fn shared_of(log: &logger::Mock) -> Arc<dyn logger::Logger> {
    Arc::new(log.clone())
}

#[tokio::test]
async fn concurrent_sends_share_one_connection_in_turn() {
    let srv = Scripted::start(|_| Action::Ok).await;
    let m: Arc<dyn Mailer> = Arc::new(SmtpMailer::new(config(srv.port()), mock().1));
    let ids = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (m, ids) = (m.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let s = m.send_mail(&["a@example.net"], &format!("{i}"), "b").await.unwrap();
            ids.lock().unwrap().push(s.message_id);
        }));
    }
    for t in tasks {
        within(T, t).await.unwrap();
    }
    let mut ids = ids.lock().unwrap().clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    assert_eq!(srv.connections(), 1);
    assert_eq!(srv.bodies.lock().unwrap().len(), 8, "each message sent once");
}

#[tokio::test]
async fn a_partly_rejected_pipelined_envelope_never_reuses_a_connection_left_in_data_mode() {
    for pipelining in [true, false] {
        let srv =
            Scripted::start(refusing_nobody(Action::Reply("550 5.1.1 no such user".into()))).await;
        let m = SmtpMailer::new(config(srv.port()).with_pipelining(pipelining), mock().1);
        let err = within(T, m.send_mail(&["ok@example.net", "nobody@example.net"], "s", "b"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(550));
        assert!(err.is_bad_address());
        within(T, m.send_mail(&["ok@example.net"], "s", "b")).await.unwrap();
        // Pipelined, DATA was already accepted (354) for the abandoned transaction: that
        // connection is unusable and was dropped. Lock-step stopped before DATA: RSET kept it.
        let want = if pipelining { 2 } else { 1 };
        assert_eq!(srv.connections(), want, "pipelining {pipelining}");
        assert_eq!(srv.delivered(), 1, "the abandoned transaction delivered nothing");
    }
}

#[test]
fn a_mailer_can_be_built_and_dropped_outside_a_runtime() {
    // lettre's pooled transport panics in a destructor here; ours holds no runtime resources.
    let m = SmtpMailer::new(config(25), mock().1);
    assert_eq!(m.stats(), mailer::Stats::default());
    drop(m);
}

#[tokio::test]
async fn authenticates_with_auth_login_when_plain_is_not_offered() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let srv = Scripted::start_with_auth_login(move |s| {
        if s.stage == "auth" {
            s2.lock().unwrap().push(s.line.clone());
            // base64("mailer") base64("s3cret")
            if s.line == "bWFpbGVy czNjcmV0" {
                return Action::Ok;
            }
            return Action::Reply("535 5.7.8 Authentication credentials invalid".into());
        }
        Action::Ok
    })
    .await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()).with_credentials("mailer", "s3cret"), shared);
    within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(srv.delivered(), 1);
    let bad =
        SmtpMailer::new(config(srv.port()).with_credentials("mailer", "nope"), shared_of(&log));
    let err = within(T, bad.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert_eq!(err.code(), Some(535));
    assert_eq!(err.stage(), Some(Stage::Auth));
    assert!(err.is_permanent());
    assert!(log.get_all_matching("s3cret|czNjcmV0|nope").is_empty(), "{:?}", log.get_all());
}

#[tokio::test]
async fn an_unsolicited_221_is_never_taken_for_a_reply() {
    // After each message the server says 221 and closes, unasked (lettre #743): the buffered
    // 221 must not pass as the reply to the next NOOP or MAIL.
    let srv = Scripted::start(|s| {
        if s.stage == "dot" {
            Action::ReplyClose("250 2.0.0 Ok: queued\r\n221 2.0.0 idle, bye".into())
        } else {
            Action::Ok
        }
    })
    .await;
    for pipelining in [true, false] {
        let (log, shared) = mock();
        let cfg = config(srv.port()).with_pipelining(pipelining);
        let m = SmtpMailer::new(cfg, shared);
        within(T, m.send_mail(&["a@example.net"], "1", "b")).await.unwrap();
        // Not idle: MAIL reads the stale 221, which counts as EOF at MAIL; resent at once.
        let sent = within(T, m.send_mail(&["a@example.net"], "2", "b")).await.unwrap();
        assert_eq!(sent.attempts, 2, "{:?}", log.get_all());
        assert!(log.expect_match("event=eof .*stage=mail").is_ok(), "{:?}", log.get_all());
        // Idle past the limit: reaped (its QUIT meets a closed socket), so the next send
        // opens a fresh connection and spends no attempt.
        let m = SmtpMailer::new(
            config(srv.port())
                .with_pipelining(pipelining)
                .with_idle_limit(Duration::from_millis(20)),
            shared_of(&log),
        );
        within(T, m.send_mail(&["a@example.net"], "3", "b")).await.unwrap();
        assert!(wait_until(T, || log.expect_match("event=idle_closed ").is_ok()).await);
        let sent = within(T, m.send_mail(&["a@example.net"], "4", "b")).await.unwrap();
        assert_eq!(sent.attempts, 1);
    }
    assert_eq!(srv.bodies.lock().unwrap().len(), 8, "each message sent once");
}
