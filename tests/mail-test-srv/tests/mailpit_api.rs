//! Mailpit's published npm client, `mailpit-api` (pinned in `mailpit-api/package.json`),
//! unchanged against an in-process server: list, summary (text, HTML, attachments), headers,
//! raw, render, search, read status, wait, chaos, delete, info. The Node side is
//! `mailpit-api/client.mjs`; this side stores the mail and answers its prompts.
//!
//! Needs `node` (18 or later) and `npm`, which installs the pinned client into a temporary
//! directory (`npm ci`, one package without dependencies).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::Client;
use mail_test_srv::{Options, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const FIRST: &str = "From: \"Jo Q\" <jo@x.test>\r\nTo: bob@x.test\r\nSubject: First\r\n\
Message-ID: <first@x.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n\
--BOUNDARY\r\nContent-Type: multipart/alternative; boundary=\"ALT\"\r\n\r\n\
--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe plain part.\r\n\
--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The <b>HTML</b> part.</p>\r\n--ALT--\r\n\
--BOUNDARY\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\
Content-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
JVBERi0xLjQgdGVzdA==\r\n--BOUNDARY--\r\n";

const SECOND: &str =
    "From: amy@x.test\r\nTo: carol@x.test\r\nSubject: Second\r\n\r\nJust text.\r\n";

const THIRD: &str = "From: amy@x.test\r\nTo: dan@x.test\r\nSubject: Third\r\n\r\n\
Arrived while the client waited.\r\n";

async fn deliver(srv: &TestServer, from: &str, to: &str, content: &str) {
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    let reply = c.send_message(from, to, content).await;
    assert!(reply.starts_with("250 "), "{reply}");
    c.cmd("QUIT").await;
}

/// `npm ci` of the committed package.json + lock into a fresh directory, with the script.
async fn install() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mailpit-api");
    for file in ["package.json", "package-lock.json", "client.mjs"] {
        std::fs::copy(here.join(file), dir.path().join(file)).unwrap();
    }
    let npm = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), npm)
        .await
        .expect("npm ci took over 3 minutes")
        .expect("npm not found: install Node.js 18+ and npm");
    assert!(out.status.success(), "npm ci failed: {}", String::from_utf8_lossy(&out.stderr));
    dir
}

#[tokio::test]
#[ignore = "needs node + mailpit-api: run by .ci/run"]
async fn mailpit_api_client_works_unchanged() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    deliver(&srv, "jo@x.test", "bob@x.test", FIRST).await;
    deliver(&srv, "amy@x.test", "carol@x.test", SECOND).await;
    let dir = install().await;

    let mut node = Command::new("node")
        .arg("client.mjs")
        .arg(srv.http_url().unwrap())
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node not found");
    let mut stdin = node.stdin.take().unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut passed = Vec::new();
    let conversation = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            match line.as_str() {
                "waiting" => deliver(&srv, "amy@x.test", "dan@x.test", THIRD).await,
                "chaos on" => {
                    // Mailpit's Sender trigger is our reject fault at MAIL, seen over SMTP.
                    let mut c = Client::greeted(srv.smtp_addr()).await;
                    c.cmd("EHLO client.test").await;
                    let reply = c.cmd("MAIL FROM:<a@x.test>").await;
                    assert!(reply.starts_with("451 "), "MAIL under the chaos trigger: {reply}");
                    stdin.write_all(b"next\n").await.unwrap();
                }
                "done" => return,
                other => passed.push(other.to_owned()),
            }
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(60), conversation).await;
    let status = tokio::time::timeout(Duration::from_secs(10), node.wait()).await;
    let mut stderr = String::new();
    if let Some(mut e) = node.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = e.read_to_string(&mut stderr).await;
    }
    assert!(finished.is_ok(), "the client hung after {passed:?}; stderr: {stderr}");
    let status = status.expect("node did not exit").unwrap();
    assert!(status.success(), "client failed after {passed:?}: {stderr}");
    let want = [
        "info",
        "list",
        "summary",
        "attachment",
        "headers",
        "raw",
        "render",
        "search",
        "read status",
        "wait",
        "chaos",
        "delete",
    ];
    assert_eq!(passed, want.map(|s| format!("ok {s}")));
    assert_eq!(srv.store().len(), 0);
}
