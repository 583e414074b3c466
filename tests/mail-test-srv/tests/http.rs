//! The HTTP API over a real port: Boulder's `/count`, `/mail/N`, `/clear`, and the JSON,
//! `/wait` and `/stats` endpoints.

mod common;

use std::time::Duration;

use common::{Client, get, http};
use mail_test_srv::{Options, TestServer};
use serde_json::Value;

/// A server holding three messages: a->b+c "first", z->b "second", a->d "third".
async fn server_with_mail() -> (TestServer, String) {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let url = srv.http_url().unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    c.cmd("MAIL FROM:<a@x.test>").await;
    c.cmd("RCPT TO:<b@x.test>").await;
    c.cmd("RCPT TO:<c@x.test>").await;
    c.cmd("DATA").await;
    assert_eq!(
        c.cmd("Subject: First one\r\n\r\nbody 1\r\n.").await,
        "250 2.0.0 Ok: queued as 1\r\n"
    );
    c.send_message("z@x.test", "b@x.test", "Subject: second\r\n\r\nbody 2\r\n").await;
    c.send_message("a@x.test", "d@x.test", "Subject: third\r\n\r\nbody 3\r\n").await;
    (srv, url)
}

#[tokio::test]
async fn count_counts_deliveries_with_filters() {
    let (_srv, url) = server_with_mail().await;
    assert_eq!(get(format!("{url}/count")).await, (200, "4\n".into()));
    assert_eq!(get(format!("{url}/count?to=b@x.test")).await, (200, "2\n".into()));
    assert_eq!(get(format!("{url}/count?from=a@x.test")).await, (200, "3\n".into()));
    assert_eq!(get(format!("{url}/count?to=b@x.test&from=a@x.test")).await, (200, "1\n".into()));
    assert_eq!(get(format!("{url}/count?to=nobody@x.test")).await, (200, "0\n".into()));
}

#[tokio::test]
async fn mail_n_is_boulders_text_format() {
    let (_srv, url) = server_with_mail().await;
    let (status, body) = get(format!("{url}/mail/0")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "FROM a@x.test\nTO b@x.test\n\nSubject: First one\r\n\r\nbody 1\r\n\n")
    );
    let (_, body) = get(format!("{url}/mail/1")).await;
    assert!(body.starts_with("FROM a@x.test\nTO c@x.test\n\n"), "{body}");
    let (_, body) = get(format!("{url}/mail/1?to=b@x.test")).await;
    assert!(body.starts_with("FROM z@x.test\nTO b@x.test\n\nSubject: second"), "{body}");
    assert_eq!(get(format!("{url}/mail/4")).await.0, 404);
    assert_eq!(get(format!("{url}/mail/0?from=q@x.test")).await.0, 404);
    assert_eq!(get(format!("{url}/mail/x")).await.0, 400);
    assert_eq!(get(format!("{url}/mail/-1")).await.0, 400);
}

#[tokio::test]
async fn clear_needs_post() {
    let (srv, url) = server_with_mail().await;
    assert_eq!(get(format!("{url}/clear")).await.0, 405);
    assert_eq!(srv.store().count(), 4);
    assert_eq!(http("POST", format!("{url}/clear"), None).await.0, 200);
    assert_eq!(get(format!("{url}/count")).await, (200, "0\n".into()));
    assert_eq!(get(format!("{url}/count?to=b@x.test")).await, (200, "0\n".into()));
}

#[tokio::test]
async fn api_messages_lists_json_with_filters() {
    let (_srv, url) = server_with_mail().await;
    let (status, body) = get(format!("{url}/api/messages")).await;
    assert_eq!(status, 200);
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 3);
    let first = &list[0];
    assert_eq!(first["from"], "a@x.test");
    assert_eq!(first["to"], serde_json::json!(["b@x.test", "c@x.test"]));
    assert_eq!(first["subject"], "First one");
    assert_eq!(first["body"], "body 1\r\n");
    assert_eq!(first["size"], 30);
    assert_eq!(first["tls"], false);
    assert_eq!(first["headers"], serde_json::json!([["Subject", "First one"]]));
    assert!(first["received_at"].as_str().unwrap().ends_with('Z'));
    assert!(first.get("raw").is_none());

    let subjects = |body: &str| -> Vec<String> {
        let list: Vec<Value> = serde_json::from_str(body).unwrap();
        list.iter().map(|m| m["subject"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(
        subjects(&get(format!("{url}/api/messages?to=b@x.test")).await.1),
        ["First one", "second"]
    );
    assert_eq!(
        subjects(&get(format!("{url}/api/messages?from=a@x.test")).await.1),
        ["First one", "third"]
    );
    assert_eq!(
        subjects(&get(format!("{url}/api/messages?subject=ON")).await.1),
        ["First one", "second"]
    );

    // By id, the id of the `queued as` reply and of the JSON: not an index.
    let (status, body) = get(format!("{url}/api/messages/3")).await;
    assert_eq!(status, 200);
    let third: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((third["id"].as_u64(), third["subject"].as_str()), (Some(3), Some("third")));
    assert_eq!(third["raw"], "Subject: third\r\n\r\nbody 3\r\n");
    assert_eq!(list[0]["id"], 1);
    assert_eq!(get(format!("{url}/api/messages/4")).await.0, 404);
    assert_eq!(get(format!("{url}/api/messages/0")).await.0, 404);
    assert_eq!(get(format!("{url}/api/messages/abc")).await.0, 400);
}

#[tokio::test]
async fn wait_long_polls_until_the_count_and_408s_on_timeout() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let url = srv.http_url().unwrap();
    let (status, body) = get(format!("{url}/wait?count=1&timeout_ms=50")).await;
    assert_eq!((status, body.as_str()), (408, "0\n"));

    let waiter = tokio::spawn(get(format!("{url}/wait?count=2&to=b@x.test&timeout_ms=10000")));
    // The request must be waiting before any mail arrives, or this tests a plain count.
    let store = srv.store();
    assert!(common::eventually(Duration::from_secs(10), || store.waiters() == 1).await);
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    c.send_message("a@x.test", "b@x.test", "1\r\n").await;
    c.send_message("a@x.test", "other@x.test", "2\r\n").await;
    // Woken by both inserts, it is still waiting: one of the two matches.
    assert_eq!(store.waiters(), 1);
    c.send_message("a@x.test", "b@x.test", "3\r\n").await;
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
    assert_eq!((status, body.as_str()), (200, "2\n"));

    assert_eq!(get(format!("{url}/wait?count=3")).await, (200, "3\n".into()));
    assert_eq!(get(format!("{url}/wait?count=many")).await.0, 400);
    assert_eq!(get(format!("{url}/wait")).await.0, 400);
}

#[tokio::test]
async fn stats_is_json_with_every_counter() {
    let (_srv, url) = server_with_mail().await;
    let (status, body) = get(format!("{url}/stats")).await;
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&body).unwrap();
    for key in [
        "connections",
        "active_connections",
        "messages",
        "deliveries",
        "bytes",
        "faults_close",
        "faults_421",
        "faults_reject",
        "refused",
        "rejected_full",
        "rejected_too_big",
        "rejected_connections",
        "tls_handshake_failures",
        "stored_messages",
        "stored_deliveries",
        "stored_bytes",
        "max_messages",
        "store_full",
    ] {
        assert!(stats.get(key).is_some(), "{key} missing from {stats}");
    }
    assert_eq!((stats["messages"].as_u64(), stats["deliveries"].as_u64()), (Some(3), Some(4)));
    assert_eq!(
        stats["faults_by_stage"],
        serde_json::json!({"greeting":0,"mail":0,"rcpt":0,"data":0,"after_dot":0})
    );
}

#[tokio::test]
async fn no_http_listener_when_disabled() {
    let srv = TestServer::start(Options::default().with_http_addr(None)).await.unwrap();
    assert!(srv.http_addr().is_none());
    assert!(srv.http_url().is_none());
}

#[tokio::test]
async fn shutdown_ends_a_pending_wait() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let url = srv.http_url().unwrap();
    let waiter = tokio::spawn(get(format!("{url}/wait?count=1&timeout_ms=60000")));
    // The request must be waiting before shutdown.
    let store = srv.store();
    assert!(common::eventually(Duration::from_secs(10), || store.waiters() == 1).await);
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), srv.shutdown()).await.expect("shutdown hung");
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!((status, body.as_str()), (408, "0\n"));
}
