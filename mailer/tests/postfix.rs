//! Against a real Postfix 3.7 (a private instance from `test-support`, stock limits but for
//! the one knob each test is about): its own idle timeout, its connection count and message
//! rate limits, and a rich message delivered into its maildir and parsed back by Python's
//! `email` module. Delivery is read from Postfix's log, EHLOs from its `disconnect` lines.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{field, mock, within};
use mailer::{Attachment, Email, Mailer, SmtpMailer, Tls};
use test_support::postfix::{DISCARD_DOMAIN, MAILDIR_DOMAIN, Postfix};

const T: Duration = Duration::from_secs(120);

fn config(postfix: &Postfix) -> mailer::Config {
    mailer::Config::new("127.0.0.1", postfix.port(), "sender@example.com")
        .with_tls(Tls::None)
        .with_helo_name("client.test")
        .with_retry_base(Duration::from_millis(50))
        .with_retry_max(Duration::from_secs(2))
        .with_max_attempts(10)
}

/// Each Message-ID Postfix's cleanup accepted, with how often.
fn accepted(postfix: &Postfix) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for id in postfix.message_ids() {
        *ids.entry(id).or_default() += 1;
    }
    ids
}

fn assert_one_ehlo_per_session(postfix: &Postfix) {
    let sessions = postfix.sessions();
    assert!(!sessions.is_empty());
    for s in &sessions {
        // A session refused at the greeting (anvil) never gets to EHLO.
        assert!(s.ok("ehlo") <= 1, "{s:?}");
        if s.ok("mail") > 0 {
            assert_eq!(s.ok("ehlo"), 1, "{s:?}");
        }
    }
}

#[tokio::test]
#[ignore = "needs postfix: run by .ci/run"]
async fn postfixs_own_idle_timeout_is_survived_and_each_message_delivered_once() {
    let postfix = Postfix::builder().smtpd_timeout(Duration::from_secs(2)).start().unwrap();
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(&postfix), shared);
    let mut ids = Vec::new();
    for i in 0..3 {
        if i > 0 {
            // The scenario itself: the connection idles past Postfix's smtpd_timeout.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let to = format!("idle{i}@{DISCARD_DOMAIN}");
        let sent = within(T, m.send_mail(&[to.as_str()], "idle", "body")).await.unwrap();
        ids.push(sent.message_id);
    }
    m.close().await;
    postfix.wait_for_sent(T, 3);
    let accepted = accepted(&postfix);
    for id in &ids {
        assert_eq!(accepted.get(id), Some(&1), "{id} in {accepted:?}");
    }
    let timeouts = log.get_all_matching("event=smtp_421 ");
    assert_eq!(timeouts.len(), 2, "{:#?}", log.get_all());
    for line in &timeouts {
        assert!(line.contains("4.4.2") && line.contains("Error: timeout exceeded"), "{line}");
        assert_eq!(field(line, "stage").as_deref(), Some("mail"), "{line}");
    }
    assert_eq!(log.get_all_matching("event=reconnected ").len(), 2, "{:#?}", log.get_all());
    assert!(postfix.log().contains("timeout after"), "Postfix logged its own timeout");
    assert_one_ehlo_per_session(&postfix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs postfix: run by .ci/run"]
async fn a_connection_count_limit_of_one_shrinks_a_pool_of_four_and_all_forty_go() {
    let postfix = Postfix::builder().connection_count_limit(1).start().unwrap();
    let (log, shared) = mock();
    let m = Arc::new(SmtpMailer::new(config(&postfix).with_max_connections(4), shared));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                let to = format!("count{i}@{DISCARD_DOMAIN}");
                m.send_mail(&[to.as_str()], "count limit", "body").await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        let sent = within(T, t).await.unwrap();
        ids.push(sent.unwrap_or_else(|e| panic!("{e:#}\n{:#?}", log.get_all())).message_id);
    }
    m.close().await;
    postfix.wait_for_sent(T, 40);
    let accepted = accepted(&postfix);
    for id in &ids {
        assert_eq!(accepted.get(id), Some(&1), "{id}");
    }
    let shrunk = log.get_all_matching("event=pool_shrunk ");
    assert!(!shrunk.is_empty(), "{:#?}", log.get_all());
    assert!(log.get_all_matching("event=(gave_up|failed|rejected) ").is_empty());
    assert!(postfix.log().contains("Connection concurrency limit exceeded"), "anvil refused some");
    println!(
        "pool_shrunk {} times, pool_grown {}, connects {}, connect failures {}",
        shrunk.len(),
        log.get_all_matching("event=pool_grown ").len(),
        m.stats().connects,
        m.stats().connect_failures
    );
    assert_one_ehlo_per_session(&postfix);
}

#[tokio::test]
#[ignore = "needs postfix: run by .ci/run (takes about a minute: anvil's stock time unit)"]
async fn a_message_rate_limit_defers_at_mail_and_every_message_goes() {
    // Two messages per anvil_rate_time_unit (stock: 60 s): the third gets
    // `450 4.7.1 ... too much mail` at MAIL until the minute is over.
    let postfix = Postfix::builder().message_rate_limit(2).start().unwrap();
    let (log, shared) = mock();
    let cfg = config(&postfix)
        .with_retry_base(Duration::from_secs(2))
        .with_retry_max(Duration::from_secs(16))
        .with_max_attempts(12);
    let m = SmtpMailer::new(cfg, shared);
    let mut ids = Vec::new();
    for i in 0..3 {
        let to = format!("rate{i}@{DISCARD_DOMAIN}");
        let sent = within(T, m.send_mail(&[to.as_str()], "rate", "body")).await;
        ids.push(sent.unwrap_or_else(|e| panic!("{e:#}\n{:#?}", log.get_all())).message_id);
    }
    m.close().await;
    postfix.wait_for_sent(T, 3);
    let accepted = accepted(&postfix);
    for id in &ids {
        assert_eq!(accepted.get(id), Some(&1), "{id}");
    }
    let deferred = log.get_all_matching("event=deferred ");
    assert!(!deferred.is_empty(), "{:#?}", log.get_all());
    for line in &deferred {
        assert_eq!(field(line, "code").as_deref(), Some("450"), "{line}");
        assert_eq!(field(line, "stage").as_deref(), Some("mail"), "{line}");
    }
    assert!(log.get_all().iter().any(|l| l.contains("too much mail")), "{:#?}", log.get_all());
    assert!(m.stats().transient_4xx >= 1);
}

/// What Python's `email` module finds in a delivered message.
const PARSE: &str = r#"
import email, email.policy, json, sys, base64
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
out = {
    "mime_version": m["MIME-Version"],
    "list_unsubscribe": m["List-Unsubscribe"],
    "list_unsubscribe_post": m["List-Unsubscribe-Post"],
    "subject": m["Subject"],
    "cc": m["Cc"],
    "reply_to": m["Reply-To"],
    "content_type": m.get_content_type(),
    "text": m.get_body(preferencelist=("plain",)).get_content(),
    "html": m.get_body(preferencelist=("html",)).get_content(),
    "attachments": [
        {"name": a.get_filename(), "type": a.get_content_type(),
         "b64": base64.b64encode(a.get_content() if isinstance(a.get_content(), bytes)
                                 else a.get_content().encode()).decode()}
        for a in m.iter_attachments()
    ],
    "defects": [str(d) for part in m.walk() for d in part.defects],
}
print(json.dumps(out))
"#;

#[tokio::test]
#[ignore = "needs postfix and python3: run by .ci/run"]
async fn a_rich_message_reaches_the_maildir_intact() {
    let postfix = Postfix::start().unwrap();
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(&postfix), shared);
    let pdf: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let to = format!("Alice <alice@{MAILDIR_DOMAIN}>");
    let unsubscribe = "<https://example.com/unsubscribe/alice?list=news>";
    let email = Email::new(to, "Grüße: your report")
        .with_text("Hello Alice,\n.\nyour report is attached.\n")
        .with_html("<p>Hello Alice,</p>\n<p>your report is attached.</p>\n")
        .with_cc(format!("bob@{MAILDIR_DOMAIN}"))
        .with_reply_to("Help <help@example.com>")
        .with_header("List-Unsubscribe", unsubscribe)
        .with_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        .with_attachment(Attachment::from_bytes("report.pdf", pdf.clone()));
    let sent = within(T, m.send_message(&email)).await.unwrap();
    m.close().await;
    // Two recipients, both in the one maildir.
    let files = {
        postfix.wait_for_maildir(T, 2);
        postfix.maildir_files()
    };
    assert_eq!(files.len(), 2, "{:#?}", log.get_all());
    let out = Command::new("python3").arg("-c").arg(PARSE).arg(&files[0]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |k: &str| parsed[k].as_str().unwrap_or_default().to_owned();
    assert_eq!(s("mime_version"), "1.0");
    assert_eq!(s("list_unsubscribe"), unsubscribe);
    assert_eq!(s("list_unsubscribe_post"), "List-Unsubscribe=One-Click");
    assert_eq!(s("subject"), "Grüße: your report");
    assert_eq!(s("cc"), format!("bob@{MAILDIR_DOMAIN}"));
    assert_eq!(s("reply_to"), "Help <help@example.com>");
    assert_eq!(s("content_type"), "multipart/mixed");
    assert_eq!(s("text").replace("\r\n", "\n"), "Hello Alice,\n.\nyour report is attached.\n");
    assert!(s("html").contains("<p>your report is attached.</p>"), "{}", s("html"));
    let attachments = parsed["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{parsed}");
    assert_eq!(attachments[0]["name"], "report.pdf");
    assert_eq!(attachments[0]["type"], "application/pdf");
    let b64 = attachments[0]["b64"].as_str().unwrap();
    assert_eq!(b64, base64_of(&pdf), "the attachment arrived byte for byte");
    assert_eq!(parsed["defects"], serde_json::json!([]), "{parsed}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains(&sent.message_id), "same Message-ID in the maildir");
    let sessions = postfix.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].ok("ehlo"), 1, "one EHLO: {sessions:?}");
    assert_eq!(sessions[0].ok("rcpt"), 2);
}

/// Standard base64 with padding, for comparing with Python's output.
fn base64_of(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
