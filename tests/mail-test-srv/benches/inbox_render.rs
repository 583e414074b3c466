//! Inbox first render in headless Chromium at 10,000 stored messages (goal: 1 s), beside the
//! same page over 10 messages: the time from navigation start until the page has drawn its
//! first list, chaos panel and counters (its `inbox-first-render` performance mark), median
//! of several fresh loads.
//!
//! `cargo bench -p mail-test-srv --bench inbox_render [-- MESSAGES [ROUNDS]]` (default 10,000
//! and 7). Needs chromium and chromium-driver (test-support's `Browser`).

use std::time::Duration;

use mail_test_srv::{Options, StoredMessage, TestServer};
use test_support::browser::Browser;

fn fill(server: &TestServer, count: usize) {
    let store = server.store();
    for i in 0..count {
        let data = format!(
            "From: Sender <s{}@example.test>\r\nTo: <user{i}@example.test>\r\n\
             Subject: message number {i}\r\n\r\nHello user {i}, this is a short body.\r\n",
            i % 50
        );
        let m = StoredMessage::new(
            "s@example.test".into(),
            vec![format!("user{i}@example.test")],
            data.into_bytes(),
        );
        store.insert(m).expect("insert");
    }
}

/// Milliseconds from navigation start to the page's first full render, per fresh load.
async fn first_render(browser: &Browser, url: &str, rounds: usize) -> Vec<f64> {
    let b = browser.client();
    let mut times = Vec::new();
    for _ in 0..rounds {
        b.goto("about:blank").await.expect("blank");
        b.goto(url).await.expect("load");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mark = b
                .execute(
                    "const m = performance.getEntriesByName('inbox-first-render')[0]; \
                     return m ? m.startTime : null;",
                    vec![],
                )
                .await
                .expect("execute");
            if let Some(ms) = mark.as_f64() {
                times.push(ms);
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the inbox never rendered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rows = b
            .execute("return document.querySelectorAll('#list a.item').length;", vec![])
            .await
            .expect("rows");
        assert!(rows.as_u64().unwrap_or(0) > 0, "rendered without rows");
    }
    times
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let count = numbers.first().copied().unwrap_or(10_000).max(10);
    let rounds = numbers.get(1).copied().unwrap_or(7).max(1);
    let small = TestServer::start(Options::default()).await.expect("start");
    fill(&small, 10);
    let big = TestServer::start(Options::default()).await.expect("start");
    fill(&big, count);
    let browser = Browser::start().await.expect("chromium and chromium-driver");
    // One load of each first, so neither side pays for Chromium's own warm-up.
    first_render(&browser, &format!("{}/", small.http_url().unwrap()), 1).await;
    let small_ms =
        median(first_render(&browser, &format!("{}/", small.http_url().unwrap()), rounds).await);
    let big_ms =
        median(first_render(&browser, &format!("{}/", big.http_url().unwrap()), rounds).await);
    println!("inbox first render in headless Chromium, median of {rounds} fresh loads");
    println!("  10 messages      {small_ms:>7.1} ms");
    println!("  {count:<6} messages  {big_ms:>7.1} ms ({:.2}x of 10 messages)", big_ms / small_ms);
    println!(
        "  goal <= 1000 ms at {count}: {} ({:.2}x of the goal)",
        if big_ms <= 1000.0 { "met" } else { "MISSED" },
        big_ms / 1000.0
    );
    browser.close().await.expect("close");
}
