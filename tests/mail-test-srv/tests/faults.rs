//! Fault injection with fixed seeds: chance, kinds, stages, close-first, gone-away, and the
//! counters matching what the client saw.

mod common;

use std::time::Duration;

use common::{Client, eventually, get, http};
use mail_test_srv::{ChaosConfig, FaultMode, Options, Stage, TestServer};

const FAULT_421: &str = "421 4.4.2 mail-test-srv.test Error: timeout exceeded\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Closed,
    Reply421,
}

/// Reads a reply that is either `ok` or a fault; after a fault, checks the connection is closed.
async fn outcome(c: &mut Client, reply: String, ok: &str) -> Outcome {
    if reply == ok {
        return Outcome::Accepted;
    }
    let outcome = match reply.as_str() {
        "" => Outcome::Closed,
        FAULT_421 => Outcome::Reply421,
        other => panic!("unexpected reply {other:?}"),
    };
    assert!(c.at_eof().await, "connection not closed after a fault");
    outcome
}

/// Sends `n` MAIL commands, reconnecting after each fault, and returns what each one got.
async fn mails(srv: &TestServer, n: usize) -> Vec<Outcome> {
    let mut seen = Vec::with_capacity(n);
    let mut conn: Option<Client> = None;
    while seen.len() < n {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => {
                let mut c = Client::greeted(srv.smtp_addr()).await;
                c.cmd("EHLO client.test").await;
                conn.insert(c)
            }
        };
        let reply = c.cmd("MAIL FROM:<a@x.test>").await;
        let o = outcome(c, reply, "250 2.1.0 Ok\r\n").await;
        if o == Outcome::Accepted {
            assert_eq!(c.cmd("RSET").await, "250 2.0.0 Ok\r\n");
        } else {
            conn = None;
        }
        seen.push(o);
    }
    seen
}

fn tally(seen: &[Outcome]) -> (usize, usize, usize) {
    let n = |k| seen.iter().filter(|o| **o == k).count();
    (n(Outcome::Accepted), n(Outcome::Closed), n(Outcome::Reply421))
}

#[tokio::test]
async fn at_100_percent_every_mail_faults_both_kinds_and_stats_match() {
    let srv =
        TestServer::start(Options::default().with_close_chance(100.0).with_seed(7)).await.unwrap();
    let seen = mails(&srv, 200).await;
    let (ok, closed, replied) = tally(&seen);
    assert_eq!(ok, 0);
    // Binomial(200, 1/2): sd ~7.1; 60..=140 is more than 5 sd either side.
    assert!((60..=140).contains(&closed), "closed {closed}, 421 {replied}");
    assert_eq!(closed + replied, 200);

    let (status, body) = get(format!("{}/stats", srv.http_url().unwrap())).await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["faults_close"], closed as u64);
    assert_eq!(stats["faults_421"], replied as u64);
    assert_eq!(stats["faults_by_stage"]["mail"], 200);
    assert_eq!(stats["connections"], 200);
    assert_eq!(stats["messages"], 0);
}

#[tokio::test]
async fn at_0_percent_no_mail_faults() {
    let srv =
        TestServer::start(Options::default().with_close_chance(0.0).with_seed(7)).await.unwrap();
    let seen = mails(&srv, 1000).await;
    assert_eq!(tally(&seen), (1000, 0, 0));
    let stats = srv.stats();
    assert_eq!((stats.faults_close, stats.faults_421, stats.connections), (0, 0, 1));
}

/// 1,000 MAILs at 35 %: the number of faults is Binomial(1000, 0.35), mean 350, sd
/// sqrt(1000 * 0.35 * 0.65) ~ 15.1. The bound 350 +- 70 is 4.6 sd: a correct server with an
/// arbitrary seed fails it with probability ~4e-6, while a server that ignores the chance
/// (0 or 1,000 faults) or uses the wrong scale (0.35 % or 65 %) is far outside. With the
/// fixed seed the run is deterministic anyway, so this cannot flake.
#[tokio::test]
async fn at_35_percent_over_1000_mails_the_rate_is_within_4_6_sd() {
    let srv =
        TestServer::start(Options::default().with_close_chance(35.0).with_seed(35)).await.unwrap();
    let seen = mails(&srv, 1000).await;
    let (ok, closed, replied) = tally(&seen);
    let faults = closed + replied;
    assert!((280..=420).contains(&faults), "faults {faults}");
    assert_eq!(ok + faults, 1000);
    // The kinds split Binomial(faults, 1/2): sd <= ~10.3; +-55 is > 5 sd.
    assert!(closed.abs_diff(replied) <= 110, "closed {closed}, 421 {replied}");
    let stats = srv.stats();
    assert_eq!((stats.faults_close as usize, stats.faults_421 as usize), (closed, replied));
    assert_eq!(stats.connections as usize, faults + 1);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    let a =
        TestServer::start(Options::default().with_close_chance(50.0).with_seed(99)).await.unwrap();
    let b =
        TestServer::start(Options::default().with_close_chance(50.0).with_seed(99)).await.unwrap();
    let c =
        TestServer::start(Options::default().with_close_chance(50.0).with_seed(100)).await.unwrap();
    let (sa, sb, sc) = (mails(&a, 100).await, mails(&b, 100).await, mails(&c, 100).await);
    assert_eq!(sa, sb);
    assert_ne!(sa, sc);
}

/// Runs one message through a server faulting at `stage` in `mode`; returns what the client
/// saw at the faulting step.
async fn one_message(stage: Stage, mode: FaultMode) -> (Outcome, TestServer) {
    let opts =
        Options::default().with_close_chance(100.0).with_fault_stage(stage).with_fault_mode(mode);
    let srv = TestServer::start(opts).await.unwrap();
    let mut c = Client::connect(srv.smtp_addr()).await;
    let greeting = c.reply().await;
    let greeting_ok = "220 mail-test-srv.test ESMTP mail-test-srv\r\n";
    if stage == Stage::Greeting {
        return (outcome(&mut c, greeting, greeting_ok).await, srv);
    }
    assert_eq!(greeting, greeting_ok);
    c.cmd("EHLO client.test").await;
    let steps: [(&str, &str, Stage); 4] = [
        ("MAIL FROM:<a@x.test>", "250 2.1.0 Ok\r\n", Stage::Mail),
        ("RCPT TO:<b@x.test>", "250 2.1.5 Ok\r\n", Stage::Rcpt),
        ("DATA", "354 End data with <CR><LF>.<CR><LF>\r\n", Stage::Data),
        (
            "Message-ID: <resend@x.test>\r\n\r\nbody\r\n.",
            "250 2.0.0 Ok: queued as 1\r\n",
            Stage::AfterDot,
        ),
    ];
    for (line, ok, at) in steps {
        let reply = c.cmd(line).await;
        let o = outcome(&mut c, reply, ok).await;
        if at == stage {
            return (o, srv);
        }
        assert_eq!(o, Outcome::Accepted, "fault at {at:?} while faulting at {stage:?}");
    }
    unreachable!("stage {stage:?} never reached")
}

#[tokio::test]
async fn each_stage_faults_in_each_mode_and_only_after_dot_stores() {
    for stage in Stage::ALL {
        for (mode, want) in
            [(FaultMode::Close, Outcome::Closed), (FaultMode::Reply421, Outcome::Reply421)]
        {
            let (seen, srv) = one_message(stage, mode).await;
            assert_eq!(seen, want, "{stage:?} {mode:?}");
            let stats = srv.stats();
            let by_stage = [
                stats.faults_by_stage.greeting,
                stats.faults_by_stage.mail,
                stats.faults_by_stage.rcpt,
                stats.faults_by_stage.data,
                stats.faults_by_stage.after_dot,
            ];
            let mut expected = [0; 5];
            expected[Stage::ALL.iter().position(|s| *s == stage).unwrap()] = 1;
            assert_eq!(by_stage, expected, "{stage:?} {mode:?}");
            let stored = srv.store().count();
            if stage == Stage::AfterDot {
                assert_eq!(stored, 1, "after the dot the message is stored");
                let m = &srv.store().messages()[0];
                assert_eq!(m.message_id.as_deref(), Some("<resend@x.test>"));
            } else {
                assert_eq!(stored, 0, "{stage:?}: nothing of a faulted transaction is stored");
            }
        }
    }
}

#[tokio::test]
async fn close_first_faults_exactly_the_first_n_connections() {
    let opts = Options::default().with_close_first(3).with_fault_mode(FaultMode::Reply421);
    let srv = TestServer::start(opts).await.unwrap();
    let seen = mails(&srv, 6).await;
    use Outcome::*;
    assert_eq!(seen, [Reply421, Reply421, Reply421, Accepted, Accepted, Accepted]);
    assert_eq!(srv.chaos().get().close_first, 0);
    // Runtime control: the next 2 connections fault again.
    srv.chaos().set(ChaosConfig { close_first: 2, mode: FaultMode::Close, ..srv.chaos().get() });
    assert_eq!(mails(&srv, 3).await, [Closed, Closed, Accepted]);
}

#[tokio::test]
async fn a_close_first_connection_in_reject_mode_is_refused_once_then_served() {
    let opts = Options::default().with_close_first(1).with_fault_mode(FaultMode::Reject);
    let srv = TestServer::start(opts).await.unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    let refused = "451 4.3.0 mail-test-srv.test Error: injected fault\r\n";
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, refused);
    // A client that retries on the same session (as a mailer does after a 4xx) gets through.
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(srv.stats().faults_reject, 1);
}

#[tokio::test]
async fn a_gone_away_window_refuses_connections_then_ends() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let chaos = srv.chaos();
    chaos.gone_away(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let mut c = Client::connect(srv.smtp_addr()).await;
    assert!(c.at_eof().await, "no greeting while gone away");
    assert_eq!(srv.stats().refused, 1);
    // Wait for the window to end by trying, as a reconnecting client would.
    let mut refused = 1;
    loop {
        let mut c = Client::connect(srv.smtp_addr()).await;
        let greeting = c.reply().await;
        if !greeting.is_empty() {
            assert_eq!(greeting, "220 mail-test-srv.test ESMTP mail-test-srv\r\n");
            break;
        }
        refused += 1;
        assert!(started.elapsed() < Duration::from_secs(5), "window never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(srv.stats().refused, refused);
    assert_eq!(chaos.get().gone_away_ms, 0);
}

#[tokio::test]
async fn chaos_is_controlled_over_http() {
    let srv = TestServer::start(Options::default().with_seed(1)).await.unwrap();
    let url = srv.http_url().unwrap();
    let (status, body) = get(format!("{url}/chaos")).await;
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    let expected = serde_json::json!({
        "chance": 0.0, "stage": "mail", "mode": "mixed", "close_first": 0, "reject_code": 451, "delay_ms": 0,
        "gone_away_ms": 0
    });
    assert_eq!(config, expected);

    let patch = r#"{"chance": 100, "stage": "rcpt", "mode": "421"}"#.to_owned();
    let (status, body) = http("PUT", format!("{url}/chaos"), Some(patch)).await;
    assert_eq!(status, 200, "{body}");
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (config["stage"].as_str(), config["mode"].as_str()),
        (Some("rcpt"), Some("reply421"))
    );
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd("RCPT TO:<b@x.test>").await, FAULT_421);
    assert_eq!(srv.stats().faults_by_stage.rcpt, 1);

    // Partial update: only the chance changes.
    let (status, _) = http("PUT", format!("{url}/chaos"), Some(r#"{"chance": 0}"#.into())).await;
    assert_eq!(status, 200);
    assert_eq!(srv.chaos().get().stage, Stage::Rcpt);
    assert_eq!(srv.chaos().get().chance, 0.0);

    for bad in [r#"{"chance": 101}"#, r#"{"chance": -1}"#, r#"{"reject_code": 250}"#] {
        let (status, _) = http("PUT", format!("{url}/chaos"), Some(bad.into())).await;
        assert_eq!(status, 400, "{bad}");
    }
    for bad in [r#"{"stage": "lunch"}"#, r#"{"chanse": 5}"#, "not json"] {
        let (status, _) = http("PUT", format!("{url}/chaos"), Some(bad.into())).await;
        assert!((400..500).contains(&status), "{bad}: {status}");
    }

    let (status, body) = http("POST", format!("{url}/chaos/gone-away?ms=60000"), None).await;
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["gone_away_ms"].as_u64().unwrap()
            > 59_000
    );
    let mut c = Client::connect(srv.smtp_addr()).await;
    assert!(c.at_eof().await);
    let (_, _) = http("PUT", format!("{url}/chaos"), Some(r#"{"gone_away_ms": 0}"#.into())).await;
    assert!(eventually(Duration::from_secs(2), || !srv.chaos().is_gone_away()).await);
    let _c = Client::greeted(srv.smtp_addr()).await;
}

#[tokio::test]
async fn reject_mode_refuses_the_command_and_keeps_the_session() {
    let opts = Options::default()
        .with_close_chance(100.0)
        .with_fault_mode(FaultMode::Reject)
        .with_reject_code(450);
    let srv = TestServer::start(opts.with_fault_stage(Stage::Rcpt)).await.unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(
        c.cmd("RCPT TO:<b@x.test>").await,
        "450 4.3.0 mail-test-srv.test Error: injected fault\r\n"
    );
    // The recipient was not added.
    assert_eq!(c.cmd("DATA").await, "503 5.5.1 Error: need RCPT command\r\n");
    srv.chaos().set(ChaosConfig { chance: 0.0, ..srv.chaos().get() });
    assert_eq!(c.cmd("RCPT TO:<c@x.test>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.cmd("DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_eq!(c.cmd("x\r\n.").await, "250 2.0.0 Ok: queued as 1\r\n");
    assert_eq!(srv.store().messages()[0].to, ["c@x.test"]);

    // After the dot a rejection means "not accepted": nothing is stored.
    srv.chaos().set(ChaosConfig {
        chance: 100.0,
        stage: Stage::AfterDot,
        reject_code: 554,
        ..srv.chaos().get()
    });
    assert_eq!(
        c.send_message("a@x.test", "b@x.test", "refused\r\n").await,
        "554 5.3.0 mail-test-srv.test Error: injected fault\r\n"
    );
    assert_eq!(srv.store().count(), 1);
    // MAIL and DATA refusals, then the session still works.
    srv.chaos().set(ChaosConfig { stage: Stage::Mail, reject_code: 451, ..srv.chaos().get() });
    assert_eq!(
        c.cmd("MAIL FROM:<a@x.test>").await,
        "451 4.3.0 mail-test-srv.test Error: injected fault\r\n"
    );
    assert_eq!(c.cmd("RCPT TO:<b@x.test>").await, "503 5.5.1 Error: need MAIL command\r\n");
    srv.chaos().set(ChaosConfig { stage: Stage::Data, ..srv.chaos().get() });
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd("RCPT TO:<b@x.test>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.cmd("DATA").await, "451 4.3.0 mail-test-srv.test Error: injected fault\r\n");
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 Ok\r\n", "still in command mode, not reading data");
    let stats = srv.stats();
    assert_eq!((stats.faults_reject, stats.faults_close, stats.faults_421), (4, 0, 0));
    let by_stage = stats.faults_by_stage;
    assert_eq!((by_stage.mail, by_stage.rcpt, by_stage.data, by_stage.after_dot), (1, 1, 1, 1));

    // A rejected greeting sends the code and closes.
    let opts = Options::default()
        .with_close_chance(100.0)
        .with_fault_mode(FaultMode::Reject)
        .with_reject_code(554);
    let srv = TestServer::start(opts.with_fault_stage(Stage::Greeting)).await.unwrap();
    let mut c = Client::connect(srv.smtp_addr()).await;
    assert_eq!(c.reply().await, "554 5.3.0 mail-test-srv.test Error: injected fault\r\n");
    assert!(c.at_eof().await);
}

#[tokio::test]
async fn a_delay_holds_back_the_reply_at_the_stage_only() {
    // Long enough that a loaded CI machine answering MAIL late is not mistaken for a delay.
    let delay = Duration::from_millis(400);
    let srv =
        TestServer::start(Options::default().with_fault_stage(Stage::Rcpt).with_fault_delay(delay))
            .await
            .unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    let t = std::time::Instant::now();
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    let mail_took = t.elapsed();
    let t = std::time::Instant::now();
    assert_eq!(c.cmd("RCPT TO:<b@x.test>").await, "250 2.1.5 Ok\r\n");
    assert!(t.elapsed() >= delay, "RCPT answered after {:?}", t.elapsed());
    assert!(mail_took < delay, "MAIL was delayed too: {mail_took:?}");

    // A stalled reply does not hold up shutdown.
    srv.chaos().set(ChaosConfig { delay_ms: 600_000, ..srv.chaos().get() });
    c.send(b"RCPT TO:<c@x.test>\r\n").await;
    tokio::time::timeout(Duration::from_secs(10), srv.shutdown())
        .await
        .expect("shutdown waited for the delay");
    assert_eq!(c.reply().await, "421 4.3.2 mail-test-srv.test Service shutting down\r\n");
}
