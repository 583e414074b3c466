//! Against Postfix's `smtp-sink`, a real server with deterministic faults: `-q MAIL` drops
//! every MAIL without a reply, `-Q MAIL` answers 421 and disconnects, `-r RCPT` answers 4xx,
//! `-f DATA` answers 5xx. Each test starts its own sink on a free loopback port and kills it at
//! the end.

mod common;

use std::time::{Duration, Instant};

use common::{config, delays, mock, within};
use mailer::{Error, Fault, Mailer, SmtpMailer, Stage};
use test_support::SmtpSink;

const T: Duration = Duration::from_secs(30);

fn sink(fault_args: &[&str]) -> SmtpSink {
    SmtpSink::start(fault_args).expect("start smtp-sink")
}

#[tokio::test]
#[ignore = "needs /usr/sbin/smtp-sink: run by .ci/run"]
async fn sends_many_messages_over_one_connection_to_smtp_sink() {
    let s = sink(&[]);
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(s.port()), shared);
    for i in 0..200 {
        within(T, m.send_mail(&["a@example.net"], &format!("#{i}"), "body")).await.unwrap();
    }
    within(T, m.close()).await;
    assert_eq!(log.get_all_matching("event=connect ").len(), 1);
    assert_eq!(m.stats().sent, 200);
}

#[tokio::test]
#[ignore = "needs /usr/sbin/smtp-sink: run by .ci/run"]
async fn a_sink_dropping_every_mail_gets_growing_delays_per_the_formula() {
    let s = sink(&["-q", "MAIL"]);
    let (log, shared) = mock();
    let base = 20u64;
    let cfg = config(s.port())
        .with_retry_base(Duration::from_millis(base))
        .with_retry_max(Duration::from_secs(2))
        .with_max_attempts(6);
    let m = SmtpMailer::new(cfg, shared);
    let started = Instant::now();
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, Error::GaveUp { attempts: 7, .. }), "{err:?}");
    assert_eq!(err.fault(), Some(Fault::Eof));
    assert_eq!(err.stage(), Some(Stage::Mail));
    let d = delays(&log);
    assert_eq!(d.len(), 6);
    assert_eq!(d[0], 0, "only the first reconnect is immediate");
    for (n, got) in d.iter().enumerate().skip(1) {
        let ceiling = base << (n - 1);
        assert!(*got >= ceiling * 8 / 10 && *got <= ceiling * 12 / 10, "attempt {n}: {got}");
    }
    let total: u64 = d.iter().sum();
    assert!(elapsed >= Duration::from_millis(total), "no storm: {elapsed:?} >= {total} ms");
    assert_eq!(log.get_all_matching("event=eof .*stage=mail").len(), 7);
}

#[tokio::test]
#[ignore = "needs /usr/sbin/smtp-sink: run by .ci/run"]
async fn a_sink_answering_421_to_mail_is_retried_then_given_up() {
    let s = sink(&["-Q", "MAIL"]);
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(s.port()).with_max_attempts(3), shared);
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert!(matches!(err, Error::GaveUp { attempts: 4, .. }), "{err:?}");
    assert_eq!(err.code(), Some(421));
    assert_eq!(log.get_all_matching("event=smtp_421 .*stage=mail").len(), 4);
    assert_eq!(m.stats().smtp_421, 4);
    assert!(err.to_string().contains("4 attempts"), "{err}");
}

#[tokio::test]
#[ignore = "needs /usr/sbin/smtp-sink: run by .ci/run"]
async fn a_sink_answering_4xx_to_rcpt_is_retried_with_backoff() {
    let s = sink(&["-r", "RCPT"]);
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(s.port()).with_max_attempts(3), shared);
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert!(matches!(err, Error::GaveUp { attempts: 4, .. }), "{err:?}");
    assert_eq!(err.code().map(|c| c / 100), Some(4));
    assert_eq!(err.stage(), Some(Stage::Rcpt));
    assert_eq!(log.get_all_matching("event=deferred .*stage=rcpt").len(), 4);
    assert_eq!(delays(&log).len(), 3);
    assert_eq!(m.stats().transient_4xx, 4);
}

#[tokio::test]
#[ignore = "needs /usr/sbin/smtp-sink: run by .ci/run"]
async fn a_sink_answering_5xx_to_data_fails_at_once_with_the_code() {
    let s = sink(&["-f", "DATA"]);
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(s.port()), shared);
    let err = within(T, m.send_mail(&["a@example.net"], "s", "b")).await.unwrap_err();
    assert!(err.is_permanent() && !err.is_bad_address(), "{err}");
    assert_eq!(err.code().map(|c| c / 100), Some(5));
    assert_eq!(err.stage(), Some(Stage::Data));
    assert!(log.get_all_matching("event=backoff").is_empty());
    assert_eq!(log.get_all_matching("event=rejected ").len(), 1);
}
