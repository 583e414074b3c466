//! The pool: many concurrent sends on one `SmtpMailer`, its limits (size, rate, a server that
//! allows fewer connections), and `close` while sends wait, back off or are on the wire.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Action, OpenSockets, Scripted, closed_in_a_long_backoff, config, mock, wait_until, within,
};
use mail_test_srv::{Options, TestServer};
use mailer::{Fault, Mailer, SmtpMailer};

const T: Duration = Duration::from_secs(60);

/// Sends one message to each of `recipients` from its own task; returns each outcome.
async fn send_all(
    m: &Arc<SmtpMailer>,
    recipients: impl IntoIterator<Item = String>,
) -> Vec<(String, Result<mailer::Sent, mailer::Error>)> {
    let tasks: Vec<_> = recipients
        .into_iter()
        .map(|to| {
            let m = Arc::clone(m);
            tokio::spawn(async move {
                let r = m.send_mail(&[to.as_str()], "pooled", "body").await;
                (to, r)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(within(T, t).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_sends_share_four_connections_under_faults() {
    let srv =
        TestServer::start(Options::default().with_close_chance(35.0).with_seed(11)).await.unwrap();
    // The kernel's count of our sockets to the server. (The server's own count lags: it
    // drops a session only once it has read the client's close, and the client may have
    // connected again by then.)
    let open = OpenSockets::watch(srv.smtp_addr().port());
    let (log, shared) = mock();
    let cfg = config(srv.smtp_addr().port())
        .with_max_connections(4)
        .with_retry_base(Duration::from_millis(1))
        .with_retry_max(Duration::from_millis(20))
        .with_max_attempts(30);
    let m = Arc::new(SmtpMailer::new(cfg, shared));
    let to: Vec<String> = (0..100).map(|i| format!("user{i}@example.net")).collect();
    let results = send_all(&m, to.clone()).await;
    for (to, r) in &results {
        assert!(r.is_ok(), "{to}: {r:?}");
    }
    let st = srv.stats();
    // The idle connections are still open: the watch must see them (it is watching).
    assert!(wait_until(T, || open.max() >= 1).await, "the watch never saw a connection");
    assert!(open.max() <= 4, "{} connections open at once", open.max());
    assert!(log.get_all_matching("event=pool_shrunk").is_empty());
    // Each recipient delivered exactly once (faults are at MAIL: nothing half-delivered).
    let mut per_rcpt: HashMap<String, usize> = HashMap::new();
    for msg in srv.store().messages() {
        for r in msg.to {
            *per_rcpt.entry(r).or_default() += 1;
        }
    }
    for r in &to {
        assert_eq!(per_rcpt.get(r), Some(&1), "{r}");
    }
    assert_eq!(per_rcpt.len(), 100);
    let ms = m.stats();
    assert!(st.faults_close + st.faults_421 > 20, "faults were injected: {st:?}");
    assert_eq!(ms.sent, 100);
    assert_eq!(ms.smtp_421 + ms.eof, st.faults_close + st.faults_421);
    assert!(ms.connects >= 4 && ms.connects as u64 == st.connections, "{ms:?} {st:?}");
    println!(
        "at most {} connections open at once; {} connects for {} faults",
        open.max(),
        ms.connects,
        st.faults_close + st.faults_421
    );
    within(T, m.close()).await;
    assert!(wait_until(T, || srv.stats().active_connections == 0).await, "close left some open");
}

#[tokio::test]
async fn sends_beyond_the_pool_wait_for_a_connection_and_reuse_it() {
    let srv = Scripted::start(|s| {
        if s.stage == "dot" { Action::Slow(Duration::from_millis(20)) } else { Action::Ok }
    })
    .await;
    let m = Arc::new(SmtpMailer::new(config(srv.port()).with_max_connections(3), mock().1));
    let results = send_all(&m, (0..30).map(|i| format!("u{i}@example.net"))).await;
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    assert_eq!(srv.connections(), 3, "three connections, each reused");
    assert_eq!(srv.delivered(), 30);
    assert_eq!(m.stats().connects, 3);
}

#[tokio::test]
async fn one_ehlo_per_connection_learns_pipelining() {
    let ehlos = Arc::new(Mutex::new(HashMap::<usize, usize>::new()));
    let seen = ehlos.clone();
    let srv = Scripted::start(move |s| {
        if s.stage == "ehlo" {
            *seen.lock().unwrap().entry(s.conn).or_default() += 1;
        }
        Action::Ok
    })
    .await;
    let (log, shared) = mock();
    let m = Arc::new(SmtpMailer::new(config(srv.port()).with_max_connections(2), shared));
    let results = send_all(&m, (0..6).map(|i| format!("u{i}@example.net"))).await;
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    let ehlos = ehlos.lock().unwrap().clone();
    assert!(
        !ehlos.is_empty() && ehlos.values().all(|n| *n == 1),
        "EHLOs per connection: {ehlos:?}"
    );
    let connected = log.get_all_matching("event=connected ");
    assert!(connected.iter().all(|l| l.contains("pipelining=true")), "{connected:?}");
}

#[tokio::test]
async fn a_rate_limit_spaces_transactions_without_holding_connections() {
    let srv = Scripted::start(|_| Action::Ok).await;
    let cfg = config(srv.port()).with_max_connections(4).with_rate(10, Duration::from_secs(1));
    let m = Arc::new(SmtpMailer::new(cfg, mock().1));
    let started = Instant::now();
    let results = send_all(&m, (0..20).map(|i| format!("u{i}@example.net"))).await;
    let elapsed = started.elapsed();
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    // Ten at once, then one every 100 ms: the twentieth starts at 1 s.
    assert!(elapsed >= Duration::from_millis(990), "{elapsed:?}");
    assert_eq!(srv.delivered(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_allowing_one_connection_shrinks_the_pool_and_every_message_goes() {
    let srv = TestServer::start(Options::default().with_max_connections(1)).await.unwrap();
    let (log, shared) = mock();
    let cfg = config(srv.smtp_addr().port()).with_max_connections(4).with_max_attempts(10);
    let m = Arc::new(SmtpMailer::new(cfg, shared));
    let results = send_all(&m, (0..40).map(|i| format!("u{i}@example.net"))).await;
    for (to, r) in &results {
        assert!(r.is_ok(), "{to}: {r:?}\n{:#?}", log.get_all());
    }
    assert_eq!(srv.store().messages().len(), 40);
    let shrunk = log.get_all_matching("event=pool_shrunk ");
    assert!(!shrunk.is_empty(), "{:#?}", log.get_all());
    assert!(shrunk.iter().all(|l| l.starts_with("WARNING: ")), "{shrunk:?}");
    assert!(log.get_all_matching("event=(gave_up|failed)").is_empty());
    assert!(srv.stats().rejected_connections > 0);
}

#[tokio::test]
async fn close_during_a_long_backoff_returns_at_once_with_a_closed_error() {
    let srv = Scripted::start(|s| if s.stage == "mail" { Action::Close } else { Action::Ok }).await;
    let (err, log, took) = closed_in_a_long_backoff(&srv).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(err.is_closed() && !err.is_permanent() && !err.possibly_delivered(), "{err:#}");
    assert_eq!(err.fault(), Some(Fault::Eof), "the last failure is kept: {err:#}");
    assert!(log.expect_match("event=closed ").is_ok());
    // A send after close connects again.
    let late = Scripted::start(|_| Action::Ok).await;
    let m2 = SmtpMailer::new(config(late.port()), mock().1);
    m2.close().await;
    within(T, m2.send_mail(&["a@example.net"], "s", "b")).await.unwrap();
    assert_eq!(late.delivered(), 1);
}

#[tokio::test]
async fn close_lets_the_transaction_on_the_wire_finish_and_ends_the_sends_waiting_for_a_slot() {
    let at_dot = Arc::new(AtomicBool::new(false));
    let seen = at_dot.clone();
    let srv = Scripted::start(move |s| {
        if s.stage == "dot" && s.conn == 0 && !seen.swap(true, Ordering::SeqCst) {
            Action::Slow(Duration::from_millis(400))
        } else {
            Action::Ok
        }
    })
    .await;
    let (log, shared) = mock();
    let cfg = config(srv.port()).with_command_timeout(Duration::from_secs(3));
    let m = Arc::new(SmtpMailer::new(cfg, shared));
    let on_wire = {
        let m = m.clone();
        tokio::spawn(async move { m.send_mail(&["first@example.net"], "s", "b").await })
    };
    assert!(wait_until(T, || at_dot.load(Ordering::SeqCst)).await);
    // The pool's one connection is busy: these wait for it.
    let waiting: Vec<_> = (0..3)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                m.send_mail(&[format!("w{i}@example.net").as_str()], "s", "b").await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    within(Duration::from_secs(5), m.close()).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "close took {took:?}");
    let first = within(T, on_wire).await.unwrap();
    assert!(first.is_ok(), "the transaction on the wire finished: {first:?}");
    for w in waiting {
        let err = within(T, w).await.unwrap().unwrap_err();
        assert!(err.is_closed(), "{err:#}");
    }
    assert_eq!(srv.delivered(), 1);
    assert!(log.expect_match("event=closed ").is_ok());
    // The connection was QUIT by close (nothing left open), and the mailer works again.
    within(T, m.send_mail(&["again@example.net"], "s", "b")).await.unwrap();
    assert_eq!(srv.connections(), 2);
}
