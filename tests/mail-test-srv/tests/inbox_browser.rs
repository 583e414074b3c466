//! The web inbox in a real headless Chromium (test-support's `Browser`, over WebDriver):
//! new mail shows without a reload; a message opens at its own address, also loaded directly;
//! text and HTML show, and a `<script>` in the HTML body never runs in the inbox; search
//! narrows the list; "Delete all" empties it; the chaos panel changes the fault settings that
//! the next SMTP session meets.

mod common;

use std::time::Duration;

use common::Client;
use mail_test_srv::{Options, TestServer};
use serde_json::Value;
use test_support::browser::Browser;
use test_support::browser::fantoccini::{Client as WebDriver, Locator};
use test_support::wait_until_async;

/// Chromium on a loaded 2-core machine: generous, and every wait ends as soon as it holds.
const UI: Duration = Duration::from_secs(20);

/// Polls a JavaScript expression until it is truthy; returns its value.
async fn until(browser: &WebDriver, expression: &str) -> Value {
    let script = format!("return ({expression});");
    let deadline = tokio::time::Instant::now() + UI;
    loop {
        let value = browser.execute(&script, vec![]).await.expect("execute");
        let truthy = match &value {
            Value::Null | Value::Bool(false) => false,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "never true: {expression} (last {value})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The subjects in the list, in order.
const SUBJECTS: &str =
    "[...document.querySelectorAll('#list a.item .subject')].map(e => e.textContent)";

async fn deliver(srv: &TestServer, to: &str, content: &str) -> u64 {
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    let reply = c.send_message("sender@x.test", to, content).await;
    c.cmd("QUIT").await;
    assert!(reply.starts_with("250 "), "{reply}");
    srv.store().latest_id().expect("stored")
}

const HOSTILE: &str = "From: Mallory <m@x.test>\r\nTo: victim@x.test\r\nSubject: Live one\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nThe text part.\r\n\
--B\r\nContent-Type: text/html\r\n\r\n<p id=\"greeting\">The <b>HTML</b> part.</p>\
<script>top.document.title = \"pwned\"; parent.pwned = 1; document.body.dataset.ran = \"yes\";</script>\
<img src=\"data:,x\" onerror=\"top.pwned = 2\">\r\n--B--\r\n";

#[tokio::test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
async fn new_mail_shows_live_and_a_message_script_never_runs_in_the_inbox() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let url = srv.http_url().unwrap();
    let browser = Browser::start().await.expect("chromium");
    let b = browser.client();
    b.goto(&format!("{url}/")).await.unwrap();
    until(b, "document.querySelector('#list-info').textContent.startsWith('0 messages')").await;
    until(b, "!document.querySelector('#live').classList.contains('off')").await;
    // A mark on this document: it must survive until the mail shows, so no reload happened.
    b.execute("window.sameDocument = 42; return 0;", vec![]).await.unwrap();

    let id = deliver(&srv, "victim@x.test", HOSTILE).await;
    until(b, &format!("{SUBJECTS}.includes('Live one')")).await;
    assert_eq!(b.execute("return window.sameDocument;", vec![]).await.unwrap(), 42);

    // Each entry is a real link to the message's own address.
    let link = b.find(Locator::Css("#list a.item")).await.unwrap();
    assert_eq!(link.attr("href").await.unwrap(), Some(format!("/view/{id}")));
    link.click().await.unwrap();
    until(b, "document.querySelector('#m-subject').textContent === 'Live one'").await;
    assert_eq!(b.current_url().await.unwrap().path(), format!("/view/{id}"));
    let text = b.find(Locator::Id("tab-text")).await.unwrap();
    assert_eq!(text.prop("textContent").await.unwrap().as_deref(), Some("The text part."));

    // The HTML body renders in its frame, and its script did not run there or here.
    b.find(Locator::Id("m-html")).await.unwrap().enter_frame().await.unwrap();
    let deadline = tokio::time::Instant::now() + UI;
    let greeting = loop {
        match b.find(Locator::Id("greeting")).await {
            Ok(e) => break e,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the HTML body never rendered: {e}"),
        }
    };
    assert_eq!(greeting.text().await.unwrap(), "The HTML part.");
    let body = b.find(Locator::Css("body")).await.unwrap();
    assert_eq!(body.attr("data-ran").await.unwrap(), None, "the script ran in the frame");
    b.enter_parent_frame().await.unwrap();
    let top = b.execute("return [document.title, typeof window.pwned];", vec![]).await.unwrap();
    assert_eq!(top, serde_json::json!(["Live one - mail-test-srv", "undefined"]));

    // The address loads directly, as a new tab or a reload would.
    b.goto(&format!("{url}/view/{id}")).await.unwrap();
    until(b, "document.querySelector('#m-subject').textContent === 'Live one'").await;
    b.refresh().await.unwrap();
    until(b, "document.querySelector('#m-subject').textContent === 'Live one'").await;
    until(b, &format!("{SUBJECTS}.length === 1")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
async fn search_narrows_the_list_and_delete_all_empties_it() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let url = srv.http_url().unwrap();
    for (to, subject) in
        [("a@x.test", "alpha report"), ("b@x.test", "beta report"), ("c@x.test", "gamma note")]
    {
        deliver(&srv, to, &format!("Subject: {subject}\r\nTo: {to}\r\n\r\nbody\r\n")).await;
    }
    let browser = Browser::start().await.expect("chromium");
    let b = browser.client();
    b.goto(&format!("{url}/")).await.unwrap();
    until(b, &format!("{SUBJECTS}.length === 3")).await;

    // A live update keeps the entries whose message did not change: the very elements (one a
    // user may be about to click), not copies of them.
    let alpha = b.find(Locator::Css("#list li:last-child a.item")).await.unwrap();
    b.execute("document.querySelector('#list li:last-child').kept = 1; return 0;", vec![])
        .await
        .unwrap();
    deliver(&srv, "d@x.test", "Subject: delta note\r\nTo: d@x.test\r\n\r\nbody\r\n").await;
    until(b, &format!("{SUBJECTS}.length === 4")).await;
    let kept = "return [...document.querySelectorAll('#list li')].map((li) => li.kept === 1);";
    let kept = b.execute(kept, vec![]).await.unwrap();
    assert_eq!(kept, serde_json::json!([false, false, false, true]), "the entries were redrawn");
    assert!(alpha.text().await.unwrap().contains("alpha report"), "the element went stale");

    let query = b.find(Locator::Id("query")).await.unwrap();
    query.send_keys("subject:beta").await.unwrap();
    b.find(Locator::Css("#search button")).await.unwrap().click().await.unwrap();
    until(b, &format!("JSON.stringify({SUBJECTS}) === '[\"beta report\"]'")).await;

    query.clear().await.unwrap();
    query.send_keys("report -to:a@x.test").await.unwrap();
    b.find(Locator::Css("#search button")).await.unwrap().click().await.unwrap();
    until(b, &format!("JSON.stringify({SUBJECTS}) === '[\"beta report\"]'")).await;
    query.clear().await.unwrap();
    query.send_keys("report").await.unwrap();
    b.find(Locator::Css("#search button")).await.unwrap().click().await.unwrap();
    until(b, &format!("JSON.stringify({SUBJECTS}) === '[\"beta report\",\"alpha report\"]'")).await;

    b.find(Locator::Id("clear")).await.unwrap().click().await.unwrap();
    until(b, &format!("{SUBJECTS}.length === 0")).await;
    until(b, "document.querySelector('#list-info').textContent.includes('of 0 messages')").await;
    assert_eq!(srv.store().len(), 0);
    browser.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
async fn the_chaos_panel_changes_what_the_next_smtp_session_meets() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let url = srv.http_url().unwrap();
    let browser = Browser::start().await.expect("chromium");
    let b = browser.client();
    b.goto(&format!("{url}/")).await.unwrap();
    until(b, "document.querySelector('#chaos-status').textContent.startsWith('Now: 0%')").await;

    let chance = b.find(Locator::Id("chance")).await.unwrap();
    chance.clear().await.unwrap();
    chance.send_keys("100").await.unwrap();
    b.find(Locator::Id("mode")).await.unwrap().select_by_value("reply421").await.unwrap();
    b.find(Locator::Id("stage")).await.unwrap().select_by_value("rcpt").await.unwrap();
    b.find(Locator::Id("chaos-apply")).await.unwrap().click().await.unwrap();
    let chaos = srv.chaos();
    assert!(wait_until_async(UI, || chaos.get().chance == 100.0).await, "{:?}", chaos.get());
    until(b, "document.querySelector('#chaos-status').textContent.startsWith('Now: 100% at rcpt')")
        .await;

    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(
        c.cmd("RCPT TO:<b@x.test>").await,
        "421 4.4.2 mail-test-srv.test Error: timeout exceeded\r\n"
    );
    assert!(c.at_eof().await);

    // The gone-away window: the next connection is closed before any greeting.
    let gone = b.find(Locator::Id("gone-ms")).await.unwrap();
    gone.clear().await.unwrap();
    gone.send_keys("60000").await.unwrap();
    b.find(Locator::Id("gone-apply")).await.unwrap().click().await.unwrap();
    assert!(wait_until_async(UI, || chaos.get().gone_away_ms > 0).await);
    until(b, "document.querySelector('#chaos-status').textContent.includes('gone away for')").await;
    let mut c = Client::connect(srv.smtp_addr()).await;
    assert!(c.at_eof().await);
    browser.close().await.unwrap();
}
