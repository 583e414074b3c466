//! Behaviour against `mail-test-srv` (in-process, port 0): faults at each stage in both modes,
//! connect-late, reuse, gone-away, a long run under random faults, TLS and AUTH. Deliveries are
//! counted over the server's HTTP API, as an operator would.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, events, field, mock, position, within};
use mail_test_srv::{FaultMode, Options, Stage, TestServer, TlsOptions};
use mailer::{Error, Mailer, SmtpMailer, Tls};

const T: Duration = Duration::from_secs(30);

/// `GET /count` over HTTP (blocking client, off the runtime's threads).
async fn http_count(srv: &TestServer) -> usize {
    let url = format!("{}/count", srv.http_url().expect("http enabled"));
    tokio::task::spawn_blocking(move || {
        ureq::get(&url).call().unwrap().into_string().unwrap().trim().parse().unwrap()
    })
    .await
    .unwrap()
}

fn mailer_for(srv: &TestServer, log: Arc<dyn logger::Logger>) -> SmtpMailer {
    SmtpMailer::new(config(srv.smtp_addr().port()), log)
}

/// The first connection faults at `stage` in `mode`; the send survives: the fault event, then
/// backoff, reconnected, sent. Delivered once, except after the final dot (twice, same
/// Message-ID, reported as possibly duplicated).
async fn survives(stage: Stage, mode: FaultMode) {
    let srv = TestServer::start(
        Options::default()
            .with_close_first(1)
            .with_fault_stage(stage)
            .with_fault_mode(mode)
            .with_seed(7),
    )
    .await
    .unwrap();
    let (log, shared) = mock();
    let m = mailer_for(&srv, shared);
    let sent = within(T, m.send_mail(&["rcpt@example.net"], "hello", "body")).await.unwrap();
    let event = if mode == FaultMode::Close { "eof" } else { "smtp_421" };
    let ev = events(&log);
    let f = position(&ev, event, 0).unwrap_or_else(|| panic!("no {event}: {ev:?}"));
    let b = position(&ev, "backoff", f).unwrap_or_else(|| panic!("no backoff: {ev:?}"));
    let r = position(&ev, "reconnected", b).unwrap_or_else(|| panic!("no reconnected: {ev:?}"));
    position(&ev, "sent", r).unwrap_or_else(|| panic!("no sent: {ev:?}"));
    let line = &log.get_all_matching(&format!("event={event} "))[0];
    assert_eq!(field(line, "stage").as_deref(), Some(stage.as_str()), "{line}");
    assert_eq!(sent.attempts, 2);
    let count = http_count(&srv).await;
    let stored = srv.store().messages();
    if stage == Stage::AfterDot {
        assert_eq!(count, 2, "stored before the fault, then sent again");
        assert!(sent.possibly_duplicated);
        assert!(log.expect_match("event=resend ").is_ok());
        assert!(stored.iter().all(|s| s.message_id.as_deref() == Some(sent.message_id.as_str())));
    } else {
        assert_eq!(count, 1, "{stage:?} {mode:?}");
        assert!(!sent.possibly_duplicated);
        assert_eq!(stored[0].message_id.as_deref(), Some(sent.message_id.as_str()));
    }
    let st = srv.stats();
    assert_eq!(st.faults_close + st.faults_421, 1);
    assert_eq!(st.connections, 2);
}

#[tokio::test]
async fn reconnects_after_eof_at_greeting() {
    survives(Stage::Greeting, FaultMode::Close).await;
}
#[tokio::test]
async fn reconnects_after_421_at_greeting() {
    survives(Stage::Greeting, FaultMode::Reply421).await;
}
#[tokio::test]
async fn reconnects_after_eof_at_mail() {
    survives(Stage::Mail, FaultMode::Close).await;
}
#[tokio::test]
async fn reconnects_after_421_at_mail() {
    survives(Stage::Mail, FaultMode::Reply421).await;
}
#[tokio::test]
async fn reconnects_after_eof_at_rcpt() {
    survives(Stage::Rcpt, FaultMode::Close).await;
}
#[tokio::test]
async fn reconnects_after_421_at_rcpt() {
    survives(Stage::Rcpt, FaultMode::Reply421).await;
}
#[tokio::test]
async fn reconnects_after_eof_at_data() {
    survives(Stage::Data, FaultMode::Close).await;
}
#[tokio::test]
async fn reconnects_after_421_at_data() {
    survives(Stage::Data, FaultMode::Reply421).await;
}
#[tokio::test]
async fn resends_with_the_same_message_id_after_eof_after_the_dot() {
    survives(Stage::AfterDot, FaultMode::Close).await;
}
#[tokio::test]
async fn resends_with_the_same_message_id_after_421_after_the_dot() {
    survives(Stage::AfterDot, FaultMode::Reply421).await;
}

#[tokio::test]
async fn every_try_lost_after_the_dot_gives_up_as_possibly_delivered() {
    // Every reply to the final dot is a close or a 421, after the server stored the message.
    let options =
        Options::default().with_close_chance(100.0).with_fault_stage(Stage::AfterDot).with_seed(3);
    let srv = TestServer::start(options).await.unwrap();
    let (log, shared) = mock();
    let cfg = config(srv.smtp_addr().port())
        .with_retry_base(Duration::from_millis(5))
        .with_max_attempts(1);
    let m = SmtpMailer::new(cfg, shared);
    let err = within(T, m.send_mail(&["rcpt@example.net"], "hello", "body")).await.unwrap_err();
    assert!(
        matches!(err, Error::GaveUp { attempts: 2, .. }) && err.possibly_delivered(),
        "{err:#}"
    );
    assert_eq!(http_count(&srv).await, 2, "both tries reached the server");
    assert_eq!(log.get_all_matching("event=resend ").len(), 1, "one resend, then it gave up");
    assert_eq!(log.get_all_matching("event=gave_up .*possibly_delivered=true").len(), 1);
    assert_eq!(m.stats().possibly_duplicated, 1, "one message whose delivery is unknown");
}

#[tokio::test]
async fn connects_late_and_reuses_one_connection() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let (log, shared) = mock();
    let m = mailer_for(&srv, shared);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(srv.stats().connections, 0, "connected before the first send_mail");
    for i in 0..50 {
        within(T, m.send_mail(&["a@example.net", "b@example.net"], &format!("#{i}"), "x"))
            .await
            .unwrap();
    }
    assert_eq!(srv.stats().connections, 1);
    assert_eq!(http_count(&srv).await, 100, "50 messages x 2 recipients");
    assert_eq!(log.get_all_matching("event=sent .*recipients=2").len(), 50);
    within(T, m.close()).await;
    assert!(log.expect_match("event=closed ").is_ok());
}

#[tokio::test]
async fn a_server_that_starts_two_seconds_late_is_reached() {
    let (_sent, log, srv) = common::send_to_a_late_server(|port| async move {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        TestServer::start(Options::default().with_smtp_addr(addr)).await.unwrap()
    })
    .await;
    assert_eq!(http_count(&srv).await, 1);
    assert!(log.get_all_matching("event=reconnect_failed ").len() >= 2);
}

#[tokio::test]
async fn survives_a_gone_away_window() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let (log, shared) = mock();
    let cfg = config(srv.smtp_addr().port())
        .with_retry_base(Duration::from_millis(50))
        .with_retry_max(Duration::from_millis(400))
        .with_max_attempts(30);
    let m = SmtpMailer::new(cfg, shared);
    within(T, m.send_mail(&["a@example.net"], "before", "b")).await.unwrap();
    within(T, m.close()).await;
    srv.chaos().gone_away(Duration::from_millis(800));
    let sent = within(T, m.send_mail(&["a@example.net"], "during", "b")).await.unwrap();
    assert!(sent.attempts >= 2, "{sent:?} {:?}", log.get_all());
    assert!(log.expect_match("event=reconnect_failed ").is_ok());
    assert_eq!(http_count(&srv).await, 2);
}

#[tokio::test]
async fn a_long_run_under_random_faults_loses_nothing() {
    let srv =
        TestServer::start(Options::default().with_close_chance(35.0).with_seed(42)).await.unwrap();
    let (log, shared) = mock();
    let m = SmtpMailer::new(
        config(srv.smtp_addr().port())
            .with_retry_base(Duration::from_millis(1))
            .with_retry_max(Duration::from_millis(10))
            .with_max_attempts(20),
        shared,
    );
    for i in 0..200 {
        within(T, m.send_mail(&["a@example.net"], &format!("#{i}"), "b")).await.unwrap();
    }
    assert_eq!(http_count(&srv).await, 200);
    let st = m.stats();
    let srv_st = srv.stats();
    assert_eq!(st.sent, 200);
    assert!(srv_st.faults_close + srv_st.faults_421 > 20, "{srv_st:?}");
    assert_eq!(st.smtp_421, srv_st.faults_421);
    assert_eq!(st.eof, srv_st.faults_close);
    assert_eq!(log.get_all_matching("event=sent ").len(), 200);
    assert_eq!(st.reconnects, srv_st.faults_close + srv_st.faults_421);
}

fn tls_server(tls: TlsOptions) -> Options {
    Options::default().with_tls(tls).with_auth("mailer", "correct horse")
}

async fn tls_send(mode: Tls, server_tls: TlsOptions) {
    let srv = TestServer::start(tls_server(server_tls)).await.unwrap();
    let (log, shared) = mock();
    let cfg = config(srv.smtp_addr().port())
        .with_tls(mode)
        .with_root_ca_pem(srv.certificate_pem().unwrap())
        .with_credentials("mailer", "correct horse");
    let m = SmtpMailer::new(cfg, shared);
    within(T, m.send_mail(&["a@example.net"], "secret", "the body")).await.unwrap();
    let stored = srv.store().messages();
    assert!(stored[0].tls);
    assert_eq!(stored[0].auth_user.as_deref(), Some("mailer"));
    assert!(log.expect_match(&format!("event=connected .*tls={}", mode.as_str())).is_ok());
    assert!(log.get_all_matching("correct horse|the body").is_empty(), "{:?}", log.get_all());
}

#[tokio::test]
async fn sends_over_starttls_with_auth() {
    tls_send(Tls::StartTls, TlsOptions::StartTls(None)).await;
}

#[tokio::test]
async fn sends_over_implicit_tls_with_auth() {
    tls_send(Tls::Implicit, TlsOptions::Implicit(None)).await;
}

#[tokio::test]
async fn an_untrusted_certificate_fails_at_once_without_retries() {
    for (mode, server_tls) in
        [(Tls::StartTls, TlsOptions::StartTls(None)), (Tls::Implicit, TlsOptions::Implicit(None))]
    {
        let srv = TestServer::start(Options::default().with_tls(server_tls)).await.unwrap();
        // A different self-signed CA: verification must fail.
        let other = TestServer::start(Options::default().with_tls(TlsOptions::Implicit(None)))
            .await
            .unwrap();
        let (log, shared) = mock();
        let cfg = config(srv.smtp_addr().port())
            .with_tls(mode)
            .with_root_ca_pem(other.certificate_pem().unwrap());
        let m = SmtpMailer::new(cfg, shared);
        let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{mode:?}: {err:?}");
        assert!(err.is_permanent());
        assert!(log.get_all_matching("event=backoff").is_empty(), "{:?}", log.get_all());
        assert_eq!(http_count(&srv).await, 0);
    }
}

#[tokio::test]
async fn starttls_required_but_not_offered_never_falls_back_to_plain_text() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let (_log, shared) = mock();
    let m = SmtpMailer::new(config(srv.smtp_addr().port()).with_tls(Tls::StartTls), shared);
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert!(err.is_permanent() && err.to_string().contains("STARTTLS"), "{err}");
    assert_eq!(http_count(&srv).await, 0);
}

#[tokio::test]
async fn a_wrong_password_is_permanent_and_never_logged() {
    let srv = TestServer::start(tls_server(TlsOptions::StartTls(None))).await.unwrap();
    let (log, shared) = mock();
    let cfg = config(srv.smtp_addr().port())
        .with_tls(Tls::StartTls)
        .with_root_ca_pem(srv.certificate_pem().unwrap())
        .with_credentials("mailer", "wrong-pass-word");
    let m = SmtpMailer::new(cfg, shared);
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert_eq!(err.code().map(|c| c / 100), Some(5), "{err}");
    assert_eq!(err.stage(), Some(mailer::Stage::Auth));
    assert!(log.get_all_matching("wrong-pass-word").is_empty(), "{:?}", log.get_all());
}
